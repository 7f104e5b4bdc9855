//! A pod's journal on the host. nspawn's `--link-journal=try-host` bind-mounts the host's
//! `/var/log/journal/<machine-id>` into the pod; the pod's journald writes there once asked to
//! flush (SIGUSR1), which stage1 does after the apps are started (off the boot, see
//! `root::POD_TARGET`) and waits for before the pod halts. Under `--private-users` that
//! directory is owned by the host's root, nobody in the pod's user namespace, so journald
//! could not write there and kept its journal in the pod's `/run`, gone with the pod: once
//! the pod runs (and its ID range is known), the directory is first given to the pod's root.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The host's directory for the journal of the pod `pod_uuid` (its machine ID is the UUID's
/// hex digits), which nspawn links into the pod.
pub fn host_journal_dir(pod_uuid: &str) -> PathBuf {
    Path::new("/var/log/journal").join(pod_uuid.replace('-', ""))
}

/// The pod's own journal directory, in its stage1 root: where the pod's journald keeps the
/// journal when the host keeps none (no `/var/log/journal` for nspawn to link in), so that
/// the apps' output is still there, until the pod is collected, after the pod ends.
pub fn pod_local_journal_dir(pod_dir: &Path, pod_uuid: &str) -> PathBuf {
    crate::stage1_rootfs(pod_dir)
        .join("var/log/journal")
        .join(pod_uuid.replace('-', ""))
}

/// Where the pod's journal is written once flushed: the host's directory if the host keeps a
/// persistent journal, else the pod's own.
pub fn pod_journal_dir(pod_dir: &Path, pod_uuid: &str) -> PathBuf {
    if Path::new("/var/log/journal").is_dir() {
        host_journal_dir(pod_uuid)
    } else {
        pod_local_journal_dir(pod_dir, pod_uuid)
    }
}

/// The host uid (or gid) that is 0 in a user namespace, from its `uid_map` (`gid_map`) text:
/// the line `0 <host> <count>`.
pub fn root_of_id_map(map: &str) -> Option<u32> {
    map.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next()) {
            (Some("0"), Some(host)) => host.parse().ok(),
            _ => None,
        }
    })
}

/// Gives `dir` (the pod's journal directory on the host) to the pod's root: the host ids
/// that are 0 in the user namespace of the process `leader`.
pub fn give_journal_to_pod(dir: &Path, leader: u32) -> io::Result<()> {
    let id = |map: &str| -> io::Result<u32> {
        let path = format!("/proc/{leader}/{map}");
        root_of_id_map(&fs::read_to_string(&path)?)
            .ok_or_else(|| io::Error::other(format!("{path} maps no id 0")))
    };
    std::os::unix::fs::chown(dir, Some(id("uid_map")?), Some(id("gid_map")?))
}

/// Whether the pod (PID 1 `leader`) has had its journal flushed to `/var`: journald touches
/// this file when it has.
pub fn pod_journal_flushed(leader: u32) -> bool {
    Path::new(&format!("/proc/{leader}/root/run/systemd/journal/flushed")).exists()
}

/// Asks the pod's journald to move what it has logged to `/run` into `/var` and to go on
/// there (SIGUSR1, what `journalctl --flush` asks for). Pods boot without it (see
/// `root::POD_TARGET`): stage1 asks once the apps are started.
pub fn flush_pod_journal(
    pod_bus: &crate::systemd::Systemd,
) -> Result<(), crate::systemd::SystemdError> {
    pod_bus.kill_main("systemd-journald.service", libc::SIGUSR1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_root_is_read_from_the_id_map() {
        assert_eq!(
            root_of_id_map("         0 1837432832      65536\n"),
            Some(1837432832)
        );
        assert_eq!(
            root_of_id_map("      1000       1000          1\n         0     200000      1000\n"),
            Some(200000)
        );
        assert_eq!(
            root_of_id_map("         0          0 4294967295\n"),
            Some(0)
        );
        assert_eq!(root_of_id_map("      1000       1000          1\n"), None);
        assert_eq!(root_of_id_map(""), None);
    }

    #[test]
    fn the_journal_lives_under_the_machine_id() {
        assert_eq!(
            host_journal_dir("01234567-89ab-cdef-0123-456789abcdef"),
            Path::new("/var/log/journal/0123456789abcdef0123456789abcdef")
        );
    }
}
