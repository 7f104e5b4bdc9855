//! Pods and images for the metadata service, read from rkt's store (`--dir`).
//!
//! The service keeps no registry of its own: a pod is served while it is running (its
//! directory in `pods/run/` is locked by its stage1) and its directory holds the token the
//! app presents. So a service restarted, or started after the pod, answers for every pod at
//! once, and a pod that ends stops being served without anyone telling the service.

use std::path::Path;

use crate::pod::{Pod, PodError, PodState, Pods};
use crate::schema::ImageId;
use crate::store::{Store, StoreError};

use super::{PodData, PodSource, constant_time_eq};

/// The running pods of one store.
#[derive(Debug, Clone)]
pub struct StorePods {
    pods: Pods,
    store: Store,
}

/// Why the store cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error(transparent)]
    Pods(#[from] PodError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StorePods {
    pub fn open(dir: &Path) -> Result<StorePods, SourceError> {
        Ok(StorePods {
            pods: Pods::open(dir)?,
            store: Store::open(dir)?,
        })
    }

    fn data(pod: &Pod) -> Option<PodData> {
        let manifest_json = pod.manifest_bytes().ok()?;
        Some(PodData {
            uuid: uuid::Uuid::parse_str(&pod.uuid).ok()?,
            manifest: pod.manifest().ok()?,
            manifest_json,
        })
    }
}

impl PodSource for StorePods {
    fn pod_by_token(&self, token: &str) -> Option<PodData> {
        // A handful of running pods: reading their token files is cheaper than keeping an
        // index that could go stale.
        let pods = self.pods.list().ok()?;
        let found = pods
            .iter()
            .filter(|p| p.state == PodState::Running)
            .find(|p| {
                p.mds_token()
                    .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
            })?;
        Self::data(found)
    }

    fn image_manifest(&self, id: &ImageId) -> Option<Vec<u8>> {
        self.store.manifest_bytes(id).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::PodManifest;

    fn manifest() -> PodManifest {
        let json = format!(
            r#"{{"acVersion":"0.8.11","acKind":"PodManifest",
                "apps":[{{"name":"a","image":{{"id":"sha512-{}"}}}}]}}"#,
            "cd".repeat(64)
        );
        PodManifest::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn only_a_running_pod_is_found_and_only_by_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let source = StorePods::open(dir.path()).unwrap();
        let pods = Pods::open(dir.path()).unwrap();
        let preparing = pods.create().unwrap();
        preparing.write_manifest(&manifest()).unwrap();
        preparing.write_mds_token().unwrap();
        let token_path = preparing.path.join(crate::pod::MDS_TOKEN_FILE);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let prepared = preparing.finish().unwrap();
        let token = prepared.mds_token().unwrap();

        // Prepared, not running: not served.
        assert!(source.pod_by_token(&token).is_none());
        let running = pods.take_for_run(&prepared).unwrap();
        let found = source.pod_by_token(&token).expect("running pod found");
        assert_eq!(found.uuid.hyphenated().to_string(), running.uuid);
        assert_eq!(found.manifest.apps[0].name.as_str(), "a");
        assert!(source.pod_by_token(&token[1..]).is_none());
        assert!(source.pod_by_token("").is_none());
        // Stage1 gone (lock dropped): exited, no longer served.
        drop(running);
        assert!(source.pod_by_token(&token).is_none());
    }
}
