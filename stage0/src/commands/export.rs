//! `rkt export`: an app of a pod that has exited, as an ACI: the image's manifest and the
//! root filesystem as the app left it (the original's `rkt export UUID FILE.aci`).

use anyhow::{Context, Result, anyhow, bail};
use rkt_pod::{PodDir, PodState, Pods};

use crate::cli::{ExportArgs, GlobalArgs};

pub fn run(global: &GlobalArgs, args: &ExportArgs) -> Result<()> {
    if args.output.extension().is_none_or(|e| e != "aci") {
        bail!(
            "extension must be .aci (given {})",
            rkt_common::excerpt::shown(&args.output.display().to_string())
        );
    }
    let pods = Pods::open(&global.dir)?;
    let pod = pods.find(&args.uuid)?;
    if !matches!(pod.state, PodState::Exited | PodState::ExitedGarbage) {
        bail!(
            "pod {} is {}: only an exited pod can be exported",
            pod.uuid,
            pod.state
        );
    }
    // Held while the tree is read: a `rkt gc` meanwhile leaves the pod be.
    let _watch = pods.watch(&pod)?;
    let manifest = pod.manifest()?;
    let app = match &args.app {
        Some(name) => manifest
            .apps
            .iter()
            .find(|a| a.name.as_str() == name)
            .ok_or_else(|| anyhow!("pod {} has no app {name:?} (see rkt status)", pod.uuid))?,
        None => match manifest.apps.as_slice() {
            [only] => only,
            apps => bail!(
                "pod {} has {} apps: name the one to export with --app",
                pod.uuid,
                apps.len()
            ),
        },
    };
    let name = app.name.as_str();
    let id = app
        .image
        .id
        .as_ref()
        .ok_or_else(|| anyhow!("app {name} of pod {} names no image ID", pod.uuid))?;
    let store = global.store()?;
    let image_manifest = store.manifest_bytes(id)?;
    let write = |tree: &std::path::Path| {
        rkt_store::aci::write_aci(&image_manifest, tree, &args.output, args.overwrite)
            .with_context(|| format!("exporting app {name} to {}", args.output.display()))
    };
    if pod.options()?.private_users {
        // Its files are owned by the pod's shifted IDs, which the ACI would carry.
        bail!(
            "pod {} ran with --private-users, which rkt export does not undo yet",
            pod.uuid
        );
    }
    // A copied root (--no-overlay, path whitelists), or an overlay still mounted: as it is,
    // unless something is still mounted in it (a volume's host files would go in the ACI).
    let rootfs = PodDir::at(&pod.path).app_rootfs(name);
    let inside = format!("{}/", rootfs.display());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| m.starts_with(&inside))
    {
        bail!(
            "app {name} of pod {} still has mounts in its root filesystem; run `rkt gc` first",
            pod.uuid
        );
    }
    if std::fs::read_dir(&rootfs).is_ok_and(|mut d| d.next().is_some()) {
        return write(&rootfs);
    }
    // An overlay no longer mounted: its upper layer over the image's trees, read-only.
    let layers = store
        .rootfs_layers(id)?
        .ok_or_else(|| anyhow!("the root filesystem of app {name} is gone"))?;
    let tmp = store.temp_dir()?;
    let tree = tmp.path().join("rootfs");
    std::fs::create_dir(&tree).with_context(|| format!("creating {}", tree.display()))?;
    rkt_runtime::mount_app_tree_read_only(&pod.path, name, &layers, &tree)?;
    let written = write(&tree);
    let _ = rustix::mount::unmount(&tree, rustix::mount::UnmountFlags::DETACH);
    written
}
