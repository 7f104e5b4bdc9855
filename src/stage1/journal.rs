//! A pod's journal on the host under `--private-users`. nspawn's `--link-journal=try-host`
//! bind-mounts the host's `/var/log/journal/<machine-id>` into the pod, but makes it owned by
//! the host's root, which is nobody in the pod's user namespace: the pod's journald cannot
//! write there and keeps its journal in the pod's `/run`, gone when the pod ends. Once the pod
//! runs (and its ID range is known), the directory is given to the pod's root, and journald
//! is asked to flush to it (SIGUSR1), as it does at boot when `/var` is writable.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The host's directory for the journal of the machine `machine_id` (32 hex digits).
pub fn host_journal_dir(machine_id: &str) -> PathBuf {
    Path::new("/var/log/journal").join(machine_id)
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
/// that are 0 in the user namespace of the process `leader`. Returns false when there is no
/// such directory (nspawn linked nothing: no `/var/log/journal` on the host).
pub fn give_journal_to_pod(dir: &Path, leader: u32) -> io::Result<bool> {
    if !dir.is_dir() {
        return Ok(false);
    }
    let id = |map: &str| -> io::Result<u32> {
        let path = format!("/proc/{leader}/{map}");
        root_of_id_map(&fs::read_to_string(&path)?)
            .ok_or_else(|| io::Error::other(format!("{path} maps no id 0")))
    };
    std::os::unix::fs::chown(dir, Some(id("uid_map")?), Some(id("gid_map")?))?;
    Ok(true)
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
            host_journal_dir("0123456789abcdef0123456789abcdef"),
            Path::new("/var/log/journal/0123456789abcdef0123456789abcdef")
        );
    }
}
