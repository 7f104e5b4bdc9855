//! `rkt prepare`: a pod made from stored images, ready for stage1.

use std::collections::BTreeMap;

use crate::schema::{
    AcName, App, ExposedPort, ImageId, IsolatorValue, PodManifest, RuntimeApp, RuntimeImage,
};
use crate::store::Store;

use super::{AppOverrides, Pod, PodError, PodOptions, Pods};

impl Pods {
    /// Creates a prepared pod running one app per image, named after the last part of the
    /// image name (as rkt does). On any error the half-made pod is thrown away.
    pub fn prepare(
        &self,
        store: &Store,
        images: &[ImageId],
        options: &PodOptions,
    ) -> Result<Pod, PodError> {
        let apps: Vec<_> = images
            .iter()
            .map(|id| (id.clone(), AppOverrides::default()))
            .collect();
        self.prepare_apps(store, &apps, options)
    }

    /// [`Pods::prepare`] with per-app options (`--exec`, `--user`, `--memory`, ...) applied
    /// to each image's app. A user or group the image does not know is refused here, before
    /// anything runs.
    pub fn prepare_apps(
        &self,
        store: &Store,
        apps: &[(ImageId, AppOverrides)],
        options: &PodOptions,
    ) -> Result<Pod, PodError> {
        self.prepare_pod(store, apps, &PodLevel::default(), options)
    }

    /// [`Pods::prepare_apps`] with pod-level parts of the manifest: forwarded ports (each
    /// must name a port an app declares) and sysctls (checked).
    pub fn prepare_pod(
        &self,
        store: &Store,
        apps: &[(ImageId, AppOverrides)],
        pod_level: &PodLevel,
        options: &PodOptions,
    ) -> Result<Pod, PodError> {
        let images: Vec<ImageId> = apps.iter().map(|(id, _)| id.clone()).collect();
        let images = images.as_slice();
        let pod = self.create()?;
        match build_manifest(store, apps, pod_level) {
            Ok(manifest) => {
                let written = pod
                    .write_manifest(&manifest)
                    .and_then(|()| pod.write_options(options))
                    .and_then(|()| match options.mds_register {
                        true => pod.write_mds_token(),
                        false => Ok(()),
                    });
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

/// What the pod manifest holds besides its apps, from `--port` and `--sysctl`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodLevel {
    /// Host ports forwarded to the apps' declared ports (`ports`).
    pub ports: Vec<ExposedPort>,
    /// Kernel parameters of the pod's network namespace (an `os/unix/sysctl` isolator).
    pub sysctls: BTreeMap<String, String>,
}

fn build_manifest(
    store: &Store,
    apps: &[(ImageId, AppOverrides)],
    pod_level: &PodLevel,
) -> Result<PodManifest, PodError> {
    if apps.is_empty() {
        return Err(PodError::NoImages);
    }
    let mut manifest = PodManifest::new();
    for (id, overrides) in apps {
        let image = store.manifest(id)?;
        // Every dependency must be stored before the pod is made, not found missing by stage1.
        store.dependency_list(id)?;
        let Some(image_app) = &image.app else {
            return Err(PodError::NoApp {
                image: image.name.to_string(),
            });
        };
        let name = match &overrides.name {
            Some(name) => AcName::try_from(name.as_str()),
            None => AcName::from_image_name(&image.name),
        }
        .map_err(|e| PodError::Invalid {
            reason: e.to_string(),
        })?;
        let app = (!overrides.is_empty()).then(|| overrides.apply(image_app));
        let effective = app.as_ref().unwrap_or(image_app);
        check_identity(store, id, name.as_str(), effective)?;
        // An isolator stage1 cannot apply is refused now, before anything starts.
        crate::stage1::limits(name.as_str(), effective).map_err(|e| PodError::Invalid {
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
            app,
            read_only_root_fs: overrides.readonly_rootfs,
            mounts: Vec::new(),
            annotations: Vec::new(),
        });
    }
    // A port no app declares is refused now, not found out by stage1.
    let declared: Vec<_> = manifest
        .apps
        .iter()
        .map(|a| match &a.app {
            Some(app) => Ok(app.ports.clone()),
            None => Ok(store
                .manifest(a.image.id.as_ref().expect("set above"))?
                .app
                .map(|app| app.ports)
                .unwrap_or_default()),
        })
        .collect::<Result<Vec<_>, PodError>>()?
        .concat();
    crate::pod::port_mappings(&pod_level.ports, &declared)?;
    manifest.ports = pod_level.ports.clone();
    for (name, value) in &pod_level.sysctls {
        crate::stage1::check_sysctl(name, value)?;
    }
    if !pod_level.sysctls.is_empty() {
        manifest
            .isolators
            .push(IsolatorValue::Sysctl(pod_level.sysctls.clone()).into());
    }
    manifest.validate().map_err(|e| PodError::Invalid {
        reason: e.to_string(),
    })?;
    Ok(manifest)
}

/// Checks that the app's user and group (names are looked up in the image's own /etc/passwd
/// and /etc/group, as stage1 will) exist, so that a typo fails `rkt run` with one clear error
/// instead of a pod that starts and cannot run its app.
fn check_identity(store: &Store, id: &ImageId, app_name: &str, app: &App) -> Result<(), PodError> {
    // A tree filtered by a path whitelist is only known once rendered: stage1 checks it then.
    let Some(layers) = store.rootfs_layers(id)? else {
        return Ok(());
    };
    for (db, what, value) in [
        ("passwd", "user", &app.user),
        ("group", "group", &app.group),
    ] {
        if value.parse::<u32>().is_ok() || value.starts_with('/') {
            continue;
        }
        // The overlay shows the file of the topmost layer that has one.
        let layer = layers
            .iter()
            .find(|l| l.join("etc").join(db).symlink_metadata().is_ok());
        let found = layer.is_some_and(|l| crate::stage1::resolve_id(l, db, value).is_ok());
        if !found {
            return Err(PodError::UnknownIdentity {
                app: app_name.to_owned(),
                what,
                name: value.clone(),
                db,
            });
        }
    }
    Ok(())
}
