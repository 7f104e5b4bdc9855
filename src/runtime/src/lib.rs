//! What stage1 does to a pod before and after systemd-nspawn runs it: the pod's stage1 root
//! (the host's `/usr` read-only, a minimal `/etc`, a lean boot target), each app's root
//! filesystem as an overlay on the image's rendered tree, the nspawn command line, and the
//! apps' exit statuses.

mod app;
mod app_streams;
mod cni;
mod console;
mod error;
mod etc;
mod init_guard;
mod journal;
mod masquerade;
mod mds;
mod notify;
mod nspawn;
mod pod_runtime;
mod podns;
mod root;
mod rundir;
mod sockets;
mod sysctl;
mod unit;
mod volumes;

pub mod systemd;

pub use app::{
    AppSetupError, app_rootfs_on_host, effective_app, expose_app_root, make_app_root,
    plan_pod_app_with, prepare_app, remove_app_root,
};
pub use app_streams::STDERR_PRIORITY;
pub use cni::{
    CNI_PLUGIN_DIR, CniError, DEFAULT_NETWORK, DEFAULT_SUBNET, PodNetStatus, check_plugins,
    default_network, forwards_ports, load_network, netns_path, network_plugins, read_pod_network,
    release_orphaned_leases, setup_pod_network, teardown_pod_network,
};
pub use console::POD_CONSOLE;
pub use error::Stage1Error;
pub use etc::write_app_net_files;
pub use init_guard::InitGuard;
pub use journal::{
    flush_pod_journal, give_journal_to_pod, host_journal_dir, pod_journal_dir, pod_journal_flushed,
    pod_local_journal_dir,
};
pub use mds::{MdsUrlError, metadata_url};
pub use notify::{SUPPORTS_SYSTEMD_NOTIFY, supports_notify};
pub use nspawn::{
    NOTIFY_DIR, NotifySocket, NspawnOptions, bind_notify_socket, notify_socket_path,
    nspawn_command, remove_notify_socket,
};
pub use pod_runtime::{PodRuntime, RuntimeError, connect_pod_bus, journal_streams};
pub use root::{
    POD_TARGET, POD_UNIT_PATH, add_app_identities, app_rootfs_in_pod, build_stage1_root,
    mount_app_rootfs, mount_app_tree_read_only, read_app_status, read_pod_pid, stage1_rootfs,
    unmount_pod, write_app_status, write_pod_hostname, write_pod_pid,
};
pub use sockets::{
    LISTEN_FDS_DIR, ListenSocket, SocketsError, listen_directive, offer_listen_fds,
    receive_listen_fds, recv_sockets, remove_listen_fds_socket, route_sockets, send_sockets,
    take_listen_fds, with_listen_fds, write_socket_units,
};
pub use sysctl::apply_sysctls;
pub use unit::{AppUnit, Setting};
pub use volumes::{mount_app_volumes, resolve_target, shared_volume_dir, writable_volume_targets};
