//! One app of a pod made ready to start: its root filesystem mounted (or copied), its network
//! files written, its unit planned. The same steps whether stage1 does them as the pod starts
//! or `rkt app add` does them for a running mutable pod.

use std::path::{Path, PathBuf};

use rkt_pod::{PodDir, PodOptions};
use rkt_schema::{App, RuntimeApp, Volume};
use rkt_store::{Store, StoreError};

use super::podns;
use rkt_pod::plan::{AppPlan, PlanError, plan_app};

use super::{
    Stage1Error, app_rootfs_in_pod, mount_app_rootfs, mount_app_volumes, stage1_rootfs,
    writable_volume_targets, write_app_net_files,
};

/// Why an app's root or plan could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppSetupError {
    #[error("app {app}: the pod manifest names no image ID")]
    NoImageId { app: String },
    #[error("app {app}: its image has no app to run")]
    NoApp { app: String },
    #[error("app {app}: {error}")]
    Store { app: String, error: StoreError },
    #[error(transparent)]
    Root(#[from] Stage1Error),
    #[error(transparent)]
    Unit(#[from] PlanError),
}

/// The app's root filesystem as the host sees it: `<pod>/stage1/rootfs/opt/stage2/<app>/rootfs`.
pub fn app_rootfs_on_host(pod_dir: &Path, app: &str) -> PathBuf {
    stage1_rootfs(pod_dir).join(app_rootfs_in_pod(app).trim_start_matches('/'))
}

/// Makes the app's root filesystem at [`app_rootfs_on_host`] (an overlay on the stored trees,
/// or a copy with `--no-overlay` or a path whitelist), and writes its resolv.conf and hosts
/// into it (into the app's own upper layer, never the store's tree).
pub fn make_app_root(
    store: &Store,
    pod_dir: &Path,
    app: &RuntimeApp,
    options: &PodOptions,
    hostname: &str,
) -> Result<PathBuf, AppSetupError> {
    let name = app.name.as_str();
    let id = image_id(app)?;
    let app_root = app_rootfs_on_host(pod_dir, name);
    let layers = match options.no_overlay {
        true => None,
        false => store.rootfs_layers(id).map_err(store_error(name))?,
    };
    match layers {
        Some(layers) => {
            mount_app_rootfs(pod_dir, name, &layers)?;
        }
        None => {
            // A copy, unpacked again from the kept ACIs with the importer's checks.
            if let Some(parent) = app_root.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Stage1Error::io("creating", parent, e))?;
            }
            store
                .render(id, &app_root, false)
                .map_err(store_error(name))?;
        }
    }
    write_app_net_files(&app_root, hostname, &options.dns, &options.hosts)?;
    Ok(app_root)
}

/// The app as it runs: the pod manifest's own definition, else its image's.
pub fn effective_app(store: &Store, app: &RuntimeApp) -> Result<App, AppSetupError> {
    if let Some(def) = &app.app {
        return Ok(def.clone());
    }
    let name = app.name.as_str();
    store
        .manifest(image_id(app)?)
        .map_err(store_error(name))?
        .app
        .ok_or_else(|| AppSetupError::NoApp {
            app: name.to_owned(),
        })
}

/// The app's unit, planned from its manifest entry and the app that runs (`image_app`, see
/// [`effective_app`]), with its user, group and executable looked up in the root it will see
/// (made already by [`make_app_root`]), and the pod's `--insecure-options`.
pub fn plan_pod_app_with(
    pod_dir: &Path,
    app: &RuntimeApp,
    image_app: &App,
    volumes: &[Volume],
    options: &PodOptions,
) -> Result<AppPlan, AppSetupError> {
    let name = app.name.as_str();
    let app_root = app_rootfs_on_host(pod_dir, name);
    let mut plan = plan_app(name, image_app, app.read_only_root_fs, &app_root)?;
    plan.limits.relax(options);
    // Its volumes stay writable under --readonly-rootfs.
    plan.writable_paths = writable_volume_targets(app, image_app, volumes);
    Ok(plan)
}

/// Makes one app of a pod ready to start, the same way as the pod starts and for `rkt app
/// add`: its root filesystem (see [`make_app_root`]), its volumes bound in before anything
/// runs in it, and its plan, with user, group and executable looked up in the root the app
/// will see. On failure, what was mounted stays for the caller to remove
/// ([`remove_app_root`], or the pod's unmount).
pub fn prepare_app(
    store: &Store,
    pod_dir: &Path,
    app: &RuntimeApp,
    image_app: &App,
    volumes: &[Volume],
    options: &PodOptions,
    hostname: &str,
) -> Result<AppPlan, AppSetupError> {
    let app_root = make_app_root(store, pod_dir, app, options, hostname)?;
    mount_app_volumes(pod_dir, &app_root, app, image_app, volumes)?;
    plan_pod_app_with(pod_dir, app, image_app, volumes, options)
}

fn image_id(app: &RuntimeApp) -> Result<&rkt_schema::ImageId, AppSetupError> {
    app.image
        .id
        .as_ref()
        .ok_or_else(|| AppSetupError::NoImageId {
            app: app.name.to_string(),
        })
}

fn store_error(app: &str) -> impl FnOnce(StoreError) -> AppSetupError {
    let app = app.to_owned();
    move |source| AppSetupError::Store { app, error: source }
}

/// Makes sure the pod sees the app root mounted on the host after the pod started: where
/// the host's mounts do not propagate into the pod, a copy of the mount is attached inside.
pub fn expose_app_root(pod_dir: &Path, leader: u32, app: &str) -> Result<(), Stage1Error> {
    let on_host = app_rootfs_on_host(pod_dir, app);
    let in_pod = app_rootfs_in_pod(app);
    // A copy (--no-overlay) is a plain directory of the pod's root: seen as it is.
    if !podns::mounted_here(&on_host) || podns::mounted_in_pod(leader, &in_pod) {
        return Ok(());
    }
    podns::clone_mount_into_pod(leader, &on_host, &in_pod)
        .map_err(|e| Stage1Error::io("mounting inside the pod", &on_host, e))
}

/// Takes an app's root away: unmounted in the pod and on the host, and deleted with its
/// overlay's upper layer and its recorded exit.
pub fn remove_app_root(pod_dir: &Path, leader: u32, app: &str) -> Result<(), Stage1Error> {
    let on_host = app_rootfs_on_host(pod_dir, app);
    let in_pod = app_rootfs_in_pod(app);
    if podns::mounted_in_pod(leader, &in_pod) {
        podns::unmount_in_pod(leader, &in_pod)
            .map_err(|e| Stage1Error::io("unmounting inside the pod", &on_host, e))?;
    }
    if podns::mounted_here(&on_host) {
        rustix::mount::unmount(&on_host, rustix::mount::UnmountFlags::DETACH)
            .map_err(|e| Stage1Error::io("unmounting", &on_host, e))?;
    }
    for dir in [
        PodDir::at(pod_dir).stage2(app),
        PodDir::at(pod_dir).overlay(app),
        PodDir::at(pod_dir).app(app),
    ] {
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Stage1Error::io("removing", &dir, e));
            }
            _ => {}
        }
    }
    Ok(())
}
