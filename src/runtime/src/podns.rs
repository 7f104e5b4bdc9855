//! Mounts inside a running pod's mount namespace. nspawn gives the pod a namespace of its
//! own, and where the host's mounts are private (as under a booted sandbox) a mount made on the
//! host below the pod's root after the pod started never reaches the pod: the app root that
//! `rkt app add` mounts is cloned (`open_tree`) and attached inside the pod by a thread that
//! joined the pod's mount namespace.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::mount::{MoveMountFlags, OpenTreeFlags, UnmountFlags};
use rustix::thread::{LinkNameSpaceType, UnshareFlags};

/// Runs `f` on a thread of its own that has joined the mount namespace of the pod whose PID 1
/// is `leader` (paths in `f` are the pod's paths). The rest of the process stays where it is.
fn in_pod_mount_namespace<T: Send>(
    leader: u32,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    let namespace = File::open(format!("/proc/{leader}/ns/mnt"))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: only this thread's filesystem context (root, cwd, umask) is made its
                // own, as setns(2) needs for a mount namespace; no file descriptor table is
                // unshared (UnshareFlags::FS only), and the thread ends right after `f`.
                #[allow(unsafe_code)]
                unsafe {
                    rustix::thread::unshare_unsafe(UnshareFlags::FS)?
                };
                rustix::thread::move_into_link_name_space(
                    namespace.as_fd(),
                    Some(LinkNameSpaceType::Mount),
                )?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the mount thread panicked")))
    })
}

/// Whether `path` is a mount point in the pod's mount table.
pub(crate) fn mounted_in_pod(leader: u32, path_in_pod: &str) -> bool {
    mount_points(Path::new(&format!("/proc/{leader}/mountinfo")))
        .iter()
        .any(|m| m == path_in_pod)
}

/// Whether `path` is a mount point in our own mount table.
pub(crate) fn mounted_here(path: &Path) -> bool {
    let path = path.display().to_string();
    mount_points(Path::new("/proc/self/mountinfo")).contains(&path)
}

/// Attaches a copy of the host's mount at `on_host`, with the mounts below it (an app's
/// volumes), at `path_in_pod` inside the pod (an existing directory there).
pub(crate) fn clone_mount_into_pod(
    leader: u32,
    on_host: &Path,
    path_in_pod: &str,
) -> io::Result<()> {
    let tree = rustix::mount::open_tree(
        rustix::fs::CWD,
        on_host,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )?;
    in_pod_mount_namespace(leader, || {
        rustix::mount::move_mount(
            tree.as_fd(),
            "",
            rustix::fs::CWD,
            path_in_pod,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )?;
        Ok(())
    })
}

/// Unmounts `path_in_pod` inside the pod (lazily: nothing of the app runs any more).
pub(crate) fn unmount_in_pod(leader: u32, path_in_pod: &str) -> io::Result<()> {
    in_pod_mount_namespace(leader, || {
        rustix::mount::unmount(path_in_pod, UnmountFlags::DETACH)?;
        Ok(())
    })
}

/// The mount points (field 5 of mountinfo) of a mount table.
fn mount_points(mountinfo: &Path) -> Vec<String> {
    std::fs::read_to_string(mountinfo)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .collect()
}
