//! Apps added to and removed from a running mutable pod (`rkt app add`, `rkt app rm`).
//!
//! stage1 holds the pod directory's lock for the pod's whole life, so edits of the manifest
//! take a lock of their own, `manifest.lock` (as the original's "manifest lock"): two
//! concurrent `rkt app add` cannot lose each other's app, and every reader sees the old
//! manifest or the new one (it is replaced by `rename(2)`), never a part.

use std::path::Path;

use rkt_common::lock::{FileLock, LockKind};
use rkt_schema::{App, ImageId, PodManifest, RuntimeApp};
use rkt_store::Store;

use super::{AppOverrides, Pod, PodDir, PodError, PodState, Pods, write_atomic};

/// The lock file that serializes edits of a running pod's manifest.
pub const MANIFEST_LOCK_FILE: &str = "manifest.lock";

/// What an app of a mutable pod is doing, as `rkt app list/status` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppState {
    /// In the manifest, its root ready, never started.
    Created,
    Running,
    Exited,
}

impl AppState {
    pub fn as_str(self) -> &'static str {
        match self {
            AppState::Created => "created",
            AppState::Running => "running",
            AppState::Exited => "exited",
        }
    }
}

impl std::fmt::Display for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A running mutable pod's manifest, locked for editing until dropped.
#[derive(Debug)]
pub struct ManifestEdit {
    pub manifest: PodManifest,
    uuid: crate::PodUuid,
    path: std::path::PathBuf,
    _lock: FileLock,
}

impl ManifestEdit {
    /// The app named `name`, or an error naming the apps there are.
    pub fn app(&self, name: &str) -> Result<&RuntimeApp, PodError> {
        self.manifest
            .apps
            .iter()
            .find(|a| a.name.as_str() == name)
            .ok_or_else(|| PodError::UnknownApp {
                uuid: self.uuid.clone(),
                app: name.to_owned(),
                apps: app_names(&self.manifest),
            })
    }

    /// Adds an app; its name must be new to the pod.
    pub fn add(&mut self, app: RuntimeApp) -> Result<(), PodError> {
        if self.manifest.apps.iter().any(|a| a.name == app.name) {
            return Err(PodError::DuplicateApp {
                name: app.name.to_string(),
            });
        }
        self.manifest.apps.push(app);
        Ok(())
    }

    /// Completes a new app's mounts from its mount points as `rkt prepare` does (a mount
    /// point no `--mount` fills gets the pod volume of its name, or an empty volume of its
    /// own, added to the manifest) and checks them against the pod's volumes.
    pub fn complete_mounts(&mut self, app: &mut RuntimeApp, app_def: &App) -> Result<(), PodError> {
        super::complete_app_mounts(
            &app.name,
            app_def,
            &mut app.mounts,
            &mut self.manifest.volumes,
        )?;
        Ok(())
    }

    /// Takes the app named `name` out of the manifest.
    pub fn remove(&mut self, name: &str) -> Result<RuntimeApp, PodError> {
        self.app(name)?;
        let at = self
            .manifest
            .apps
            .iter()
            .position(|a| a.name.as_str() == name)
            .expect("found above");
        Ok(self.manifest.apps.remove(at))
    }

    /// Replaces the manifest on disk (atomically) with the edited one.
    pub fn commit(&self) -> Result<(), PodError> {
        self.manifest.validate().map_err(|e| PodError::Invalid {
            reason: e.to_string(),
        })?;
        write_atomic(
            &PodDir::at(&self.path).manifest(),
            self.manifest.to_json_pretty().as_bytes(),
        )
    }
}

impl Pods {
    /// Locks the manifest of a running mutable pod for editing. Fails with one clear error
    /// if the pod is not running or not mutable.
    pub fn edit_running_manifest(&self, pod: &Pod) -> Result<ManifestEdit, PodError> {
        if pod.state != PodState::Running {
            return Err(PodError::WrongState {
                uuid: pod.uuid.clone(),
                state: pod.state,
                action: "changing its apps",
                needed: "running",
            });
        }
        if !pod.options()?.mutable {
            return Err(PodError::NotMutable {
                uuid: pod.uuid.clone(),
            });
        }
        let lock = lock_manifest(&pod.path)?;
        // Read under the lock: an edit that finished while we waited is kept.
        let manifest = pod.manifest()?;
        Ok(ManifestEdit {
            manifest,
            uuid: pod.uuid.clone(),
            path: pod.path.clone(),
            _lock: lock,
        })
    }

    /// The manifest entry `rkt app add` would add for this image and its per-app options,
    /// checked like `rkt prepare` checks its apps.
    pub fn new_app(
        &self,
        store: &Store,
        image: &ImageId,
        overrides: &AppOverrides,
    ) -> Result<RuntimeApp, PodError> {
        let app = super::prepare::runtime_app(store, image, overrides)?;
        // Bookkeeping for `image list`/`image gc` only.
        let _ = store.touch(image);
        Ok(app)
    }
}

fn lock_manifest(pod_dir: &Path) -> Result<FileLock, PodError> {
    let path = pod_dir.join(MANIFEST_LOCK_FILE);
    FileLock::acquire(&path, LockKind::Exclusive).map_err(|e| PodError::io("locking", &path, e))
}

fn app_names(manifest: &PodManifest) -> String {
    if manifest.apps.is_empty() {
        return "none".to_owned();
    }
    manifest
        .apps
        .iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
