//! `rkt prepare`: a pod made from stored images, ready for stage1.

use std::collections::BTreeMap;

use rkt_schema::{
    AcName, App, ExposedPort, ImageId, IsolatorValue, PodManifest, RuntimeApp, RuntimeImage, Volume,
};
use rkt_store::Store;

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

    /// [`Pods::prepare_apps`] with pod-level parts of the manifest: volumes (`--volume`; each
    /// app's `--mount`s are in its overrides), forwarded ports (each must name a port an app
    /// declares) and sysctls (checked). A mount point of an image no volume fills gets an
    /// empty volume of its own (as the original rkt did): the pod manifest's `volumes` then
    /// holds more than the pod level's. Bad input is refused here, before anything runs.
    pub fn prepare_pod(
        &self,
        store: &Store,
        apps: &[(ImageId, AppOverrides)],
        pod_level: &PodLevel,
        options: &PodOptions,
    ) -> Result<Pod, PodError> {
        self.write_pod(
            store,
            || build_manifest(store, apps, pod_level, options),
            options,
        )
    }

    /// `--pod-manifest`: a pod written by hand (apps, volumes, annotations, isolators). Each
    /// app's image must be in the store, named by ID (or ID prefix) or by name and labels;
    /// the result is reified (image IDs filled in, mount points given volumes) and checked
    /// as [`Pods::prepare_pod`] checks the command line's pods.
    pub fn prepare_manifest(
        &self,
        store: &Store,
        manifest: PodManifest,
        options: &PodOptions,
    ) -> Result<Pod, PodError> {
        self.write_pod(store, || reify_manifest(store, manifest), options)
    }

    /// Creates the pod with the manifest `build` makes from the stored images; on any error
    /// the half-made pod is thrown away.
    fn write_pod(
        &self,
        store: &Store,
        build: impl FnOnce() -> Result<PodManifest, PodError>,
        options: &PodOptions,
    ) -> Result<Pod, PodError> {
        // From reading the images to the manifest naming them: see `Store::hold_images`.
        let _images = store.hold_images()?;
        let pod = self.create()?;
        match build() {
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
                for id in manifest.apps.iter().filter_map(|a| a.image.id.as_ref()) {
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

fn invalid(reason: impl ToString) -> PodError {
    PodError::Invalid {
        reason: reason.to_string(),
    }
}

/// Fills in a hand-written manifest: every app's image found in the store (by ID, ID prefix,
/// or name and labels), its app checked as the command line's are, mount points given
/// volumes; then the whole checked as a reified manifest.
fn reify_manifest(store: &Store, mut manifest: PodManifest) -> Result<PodManifest, PodError> {
    manifest.validate_template().map_err(invalid)?;
    if manifest.apps.is_empty() {
        return Err(PodError::NoImages);
    }
    super::check_volumes(&manifest.volumes)?;
    let mut volumes = std::mem::take(&mut manifest.volumes);
    for app in &mut manifest.apps {
        check_app_name(app.name.as_str())?;
        let info = match (&app.image.id, &app.image.name) {
            (Some(id), _) => store.resolve(id.as_str()),
            (None, Some(name)) => {
                let labels = app
                    .image
                    .labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.clone()))
                    .collect();
                store
                    .find_by_name(name.as_str(), &labels)?
                    .ok_or_else(|| rkt_store::StoreError::NotFound(name.to_string()))
            }
            (None, None) => {
                return Err(invalid(format!(
                    "app {}: its image has neither an id nor a name",
                    app.name
                )));
            }
        }
        .map_err(|e| {
            invalid(format!(
                "app {}: {e}; fetch its image first (rkt fetch)",
                app.name
            ))
        })?;
        let id = info.id;
        store.dependency_list(&id)?;
        let image = store.manifest(&id)?;
        app.image.id = Some(id.clone());
        app.image.name.get_or_insert_with(|| image.name.clone());
        let effective = match (&app.app, &image.app) {
            (Some(app), _) | (None, Some(app)) => app.clone(),
            (None, None) => {
                return Err(PodError::NoApp {
                    image: image.name.to_string(),
                });
            }
        };
        check_identity(store, &id, app.name.as_str(), &effective)?;
        check_exec(store, &id, app.name.as_str(), &effective)?;
        crate::plan::limits(app.name.as_str(), &effective).map_err(invalid)?;
        super::complete_app_mounts(&app.name, &effective, &mut app.mounts, &mut volumes)?;
    }
    manifest.volumes = volumes;
    manifest.validate().map_err(invalid)?;
    Ok(manifest)
}

/// What the pod manifest holds besides its apps: `--volume`, `--port` and `--sysctl`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodLevel {
    /// The pod's volumes.
    pub volumes: Vec<Volume>,
    /// Host ports forwarded to the apps' declared ports (`ports`).
    pub ports: Vec<ExposedPort>,
    /// Kernel parameters of the pod's network namespace (an `os/unix/sysctl` isolator).
    pub sysctls: BTreeMap<String, String>,
    /// The pod manifest's `userAnnotations` and `userLabels` (`rkt app sandbox
    /// --user-annotation`, `--user-label`).
    pub user_annotations: BTreeMap<String, String>,
    pub user_labels: BTreeMap<String, String>,
}

fn build_manifest(
    store: &Store,
    apps: &[(ImageId, AppOverrides)],
    pod_level: &PodLevel,
    options: &PodOptions,
) -> Result<PodManifest, PodError> {
    // A mutable pod may start empty (`rkt app add` fills it).
    if apps.is_empty() && !options.mutable {
        return Err(PodError::NoImages);
    }
    super::check_volumes(&pod_level.volumes)?;
    let mut manifest = PodManifest::new();
    manifest.volumes = pod_level.volumes.clone();
    manifest.user_annotations = pod_level.user_annotations.clone();
    manifest.user_labels = pod_level.user_labels.clone();
    for (id, overrides) in apps {
        let mut app = runtime_app(store, id, overrides)?;
        if manifest.apps.iter().any(|a| a.name == app.name) {
            return Err(PodError::DuplicateApp {
                name: app.name.to_string(),
            });
        }
        let effective = match &app.app {
            Some(a) => a.clone(),
            None => store
                .manifest(id)?
                .app
                .ok_or_else(|| invalid("the image has no app"))?,
        };
        super::complete_app_mounts(
            &app.name,
            &effective,
            &mut app.mounts,
            &mut manifest.volumes,
        )?;
        manifest.apps.push(app);
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
    crate::port_mappings(&pod_level.ports, &declared)?;
    manifest.ports = pod_level.ports.clone();
    for (name, value) in &pod_level.sysctls {
        crate::check_sysctl(name, value)?;
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

/// The pod manifest's entry for one stored image with its per-app options, checked as far as
/// it can be before anything runs (dependencies stored, user and group known, isolators
/// stage1 can apply).
pub(super) fn runtime_app(
    store: &Store,
    id: &ImageId,
    overrides: &AppOverrides,
) -> Result<RuntimeApp, PodError> {
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
    check_app_name(name.as_str())?;
    let app = (!overrides.is_empty()).then(|| overrides.apply(image_app));
    let effective = app.as_ref().unwrap_or(image_app);
    check_identity(store, id, name.as_str(), effective)?;
    check_exec(store, id, name.as_str(), effective)?;
    // An isolator stage1 cannot apply is refused now, before anything starts.
    crate::plan::limits(name.as_str(), effective).map_err(|e| PodError::Invalid {
        reason: e.to_string(),
    })?;
    Ok(RuntimeApp {
        name,
        image: RuntimeImage {
            name: Some(image.name.clone()),
            id: Some(id.clone()),
            labels: image.labels.clone(),
        },
        app,
        read_only_root_fs: overrides.readonly_rootfs,
        mounts: overrides.mounts.clone(),
        annotations: Vec::new(),
    })
}

/// An app's name becomes its unit's (`NAME.service`) and directories' (`/opt/stage2/NAME`):
/// one too long for those is refused here, not by stage1.
fn check_app_name(name: &str) -> Result<(), PodError> {
    if name.len() > super::MAX_APP_NAME {
        return Err(PodError::AppNameTooLong {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Checks that the app has something to execute and that a bare command name is found in the
/// image's PATH (as stage1 looks it up, see `stage1::plan_app`), so that the pod is refused
/// now rather than made and then unable to start its app.
fn check_exec(store: &Store, id: &ImageId, app_name: &str, app: &App) -> Result<(), PodError> {
    let Some(exec) = app.exec.first().filter(|e| !e.trim().is_empty()) else {
        return Err(PodError::NoExec {
            app: app_name.to_owned(),
        });
    };
    if exec.contains('/') {
        return Ok(());
    }
    // A tree filtered by a path whitelist is only known once rendered: stage1 checks it then.
    let Some(layers) = store.rootfs_layers(id)? else {
        return Ok(());
    };
    // Lenient where stage1 is: any layer's entry, a dangling symlink included, will do.
    let found = crate::plan::APP_PATH.split(':').any(|dir| {
        layers.iter().any(|layer| {
            let candidate = layer.join(dir.trim_start_matches('/')).join(exec);
            candidate.exists() || candidate.symlink_metadata().is_ok()
        })
    });
    if found {
        Ok(())
    } else {
        Err(PodError::ExecNotFound {
            app: app_name.to_owned(),
            exec: exec.clone(),
            path: crate::plan::APP_PATH,
        })
    }
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
        let found = layer.is_some_and(|l| crate::plan::resolve_id(l, db, value).is_ok());
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
