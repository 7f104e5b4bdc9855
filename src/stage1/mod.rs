//! What stage1 does to a pod before and after systemd-nspawn runs it: the pod's stage1 root
//! (the host's `/usr` read-only, a minimal `/etc`, a lean boot target), each app's root
//! filesystem as an overlay on the image's rendered tree, the nspawn command line, and the
//! apps' exit statuses.

mod cni;
mod error;
mod etc;
mod nspawn;
mod root;
mod unit;
mod volumes;

pub use cni::{
    CNI_PLUGIN_DIR, CniError, PodNetStatus, load_network, netns_path, read_pod_network,
    setup_pod_network, teardown_pod_network,
};
pub use error::Stage1Error;
pub use etc::write_app_net_files;
pub use nspawn::{NspawnOptions, machine_name, nspawn_command};
pub use root::{
    POD_TARGET, add_app_identities, app_rootfs_in_pod, build_stage1_root, mount_app_rootfs,
    read_app_status, read_pod_pid, resolve_id, stage1_rootfs, unmount_pod, write_app_status,
    write_pod_hostname, write_pod_pid,
};
pub use unit::{
    APP_PATH, AppPlan, Limits, UnitError, app_unit_properties, capability_mask, limits, plan_app,
    pod_cpu_quota, pod_memory_limit,
};
pub use volumes::{mount_app_volumes, resolve_target, shared_volume_dir, writable_volume_targets};
