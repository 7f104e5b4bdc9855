//! Setting the pod's sysctls (checked by `rkt_pod::sysctl`) in its network namespace.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use rkt_pod::SysctlError;

/// Writes each sysctl under `/proc/sys/net` from a thread that joined the network namespace
/// of process `pid` (the pod's PID 1): `/proc/sys/net` shows the namespace of the thread
/// that opens it, and the thread ends with the job done, so nothing else of ours moves.
pub fn apply_sysctls(pid: u32, sysctls: &BTreeMap<String, String>) -> Result<(), SysctlError> {
    if sysctls.is_empty() {
        return Ok(());
    }
    let apply_err = |name: &str| {
        let name = name.to_owned();
        move |source| SysctlError::Apply {
            name,
            error: source,
        }
    };
    let first = sysctls.keys().next().cloned().unwrap_or_default();
    let ns = File::open(format!("/proc/{pid}/ns/net")).map_err(apply_err(&first))?;
    let sysctls = sysctls.clone();
    std::thread::spawn(move || -> Result<(), SysctlError> {
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&ns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| apply_err(&first)(e.into()))?;
        for (name, value) in &sysctls {
            let path: PathBuf = ["/proc/sys"].into_iter().chain(name.split('.')).collect();
            let mut file = File::options()
                .write(true)
                .open(&path)
                .map_err(apply_err(name))?;
            file.write_all(value.as_bytes()).map_err(apply_err(name))?;
        }
        Ok(())
    })
    .join()
    .map_err(|_| SysctlError::Isolator("the sysctl thread panicked".to_owned()))?
}
