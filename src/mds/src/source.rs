//! Pods and images for the metadata service, read from rkt's store (`--dir`).
//!
//! The service keeps no registry of its own: a pod is served while it is running (its
//! directory in `pods/run/` is locked by its stage1) and its directory holds the token the
//! app presents. So a service restarted, or started after the pod, answers for every pod at
//! once, and a pod that ends stops being served without anyone telling the service.

use std::path::{Path, PathBuf};

use rkt_pod::{Pod, PodError, Pods};
use rkt_schema::ImageId;
use rkt_store::{Store, StoreError};

use super::{PodData, PodSource, constant_time_eq};

/// The running pods of one store.
#[derive(Debug, Clone)]
pub struct StorePods {
    pods: Pods,
    store: Store,
    /// `<dir>/pods/run`: the only phase whose pods can be running.
    run_dir: PathBuf,
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
        let pods = Pods::open(dir)?;
        Ok(StorePods {
            run_dir: pods.run_dir(),
            pods,
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
        // The token files of the pods in run/ (a handful): cheaper than keeping an index that
        // could go stale. Only the match is then checked to be running (locked by stage1).
        let uuid = std::fs::read_dir(&self.run_dir)
            .ok()?
            .filter_map(Result::ok)
            .find(|entry| {
                rkt_pod::read_mds_token(&entry.path())
                    .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
            })?
            .file_name();
        let pod = self.pods.running(uuid.to_str()?).ok()??;
        Self::data(&pod)
    }

    fn image_manifest(&self, id: &ImageId) -> Option<Vec<u8>> {
        self.store.manifest_bytes(id).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkt_schema::PodManifest;

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
        let token_path = preparing.dir().mds_token();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let prepared = preparing.finish().unwrap();
        let token = prepared.mds_token().unwrap();

        // Prepared, not running: not served.
        assert!(source.pod_by_token(&token).is_none());
        let running = pods.take_for_run(&prepared).unwrap();
        let found = source.pod_by_token(&token).expect("running pod found");
        assert_eq!(found.uuid.hyphenated().to_string(), running.uuid.as_str());
        assert_eq!(found.manifest.apps[0].name.as_str(), "a");
        assert!(source.pod_by_token(&token[1..]).is_none());
        assert!(source.pod_by_token("").is_none());
        // Stage1 gone (lock dropped): exited, no longer served.
        drop(running);
        assert!(source.pod_by_token(&token).is_none());
    }
}
