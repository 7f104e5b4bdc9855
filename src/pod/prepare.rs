//! `rkt prepare`: a pod made from stored images, ready for stage1.

use crate::schema::{AcName, ImageId, PodManifest, RuntimeApp, RuntimeImage};
use crate::store::Store;

use super::{Pod, PodError, PodOptions, Pods};

impl Pods {
    /// Creates a prepared pod running one app per image, named after the last part of the
    /// image name (as rkt does). On any error the half-made pod is thrown away.
    pub fn prepare(
        &self,
        store: &Store,
        images: &[ImageId],
        options: &PodOptions,
    ) -> Result<Pod, PodError> {
        let pod = self.create()?;
        match build_manifest(store, images) {
            Ok(manifest) => {
                let written = pod
                    .write_manifest(&manifest)
                    .and_then(|()| pod.write_options(options));
                if let Err(e) = written {
                    pod.abort();
                    return Err(e);
                }
                for id in images {
                    // Only bookkeeping for `image list`/`image gc`: not worth failing over.
                    let _ = store.touch(id);
                }
                pod.finish()
            }
            Err(e) => {
                pod.abort();
                Err(e)
            }
        }
    }
}

fn build_manifest(store: &Store, images: &[ImageId]) -> Result<PodManifest, PodError> {
    if images.is_empty() {
        return Err(PodError::NoImages);
    }
    let mut manifest = PodManifest::new();
    for id in images {
        let image = store.manifest(id)?;
        // Every dependency must be stored before the pod is made, not found missing by stage1.
        store.dependency_list(id)?;
        if image.app.is_none() {
            return Err(PodError::NoApp {
                image: image.name.to_string(),
            });
        }
        let name = AcName::from_image_name(&image.name).map_err(|e| PodError::Invalid {
            reason: e.to_string(),
        })?;
        if manifest.apps.iter().any(|a| a.name == name) {
            return Err(PodError::DuplicateApp {
                name: name.to_string(),
            });
        }
        manifest.apps.push(RuntimeApp {
            name,
            image: RuntimeImage {
                name: Some(image.name.clone()),
                id: Some(id.clone()),
                labels: image.labels.clone(),
            },
            app: None,
            read_only_root_fs: false,
            mounts: Vec::new(),
            annotations: Vec::new(),
        });
    }
    manifest.validate().map_err(|e| PodError::Invalid {
        reason: e.to_string(),
    })?;
    Ok(manifest)
}
