//! `rkt gc`: mark pods that are done with, then sweep them once their grace period is over.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use super::{Phase, Pod, PodError, PodState, Pods, lock_idle, now};

/// What `rkt gc` is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Exited pods are kept this long after being marked, so `rkt status` can still read them.
    pub grace_period: Duration,
    /// Prepared pods older than this are thrown away.
    pub expire_prepared: Duration,
    /// Only mark, delete nothing (use as `ExecStopPost=` to timestamp the exit).
    pub mark_only: bool,
}

/// What one `rkt gc` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub marked: Vec<crate::PodUuid>,
    pub removed: Vec<crate::PodUuid>,
    /// Pods that could not be handled now, with why; they are tried again next time.
    pub skipped: Vec<(crate::PodUuid, String)>,
}

impl Pods {
    /// Marks exited, abandoned and expired pods as garbage, then deletes garbage whose grace
    /// period is over. A pod that someone holds locked is left alone.
    pub fn gc(&self, opts: GcOptions, release: Release) -> Result<GcReport, PodError> {
        let mut report = GcReport::default();
        let now = now();
        for pod in self.list()? {
            let target = match pod.state {
                PodState::Exited => Some(Phase::ExitedGarbage),
                PodState::Embryo | PodState::AbortedPrepare => Some(Phase::Garbage),
                PodState::Prepared
                    if pod.created().is_some_and(|c| {
                        now.saturating_sub(c) >= opts.expire_prepared.as_secs()
                    }) =>
                {
                    Some(Phase::Garbage)
                }
                _ => None,
            };
            if let Some(phase) = target {
                match self.mark(&pod, phase) {
                    Ok(true) => report.marked.push(pod.uuid.clone()),
                    Ok(false) => {}
                    Err(e) => report.skipped.push((pod.uuid.clone(), e.to_string())),
                }
            }
        }
        if opts.mark_only {
            return Ok(report);
        }
        for pod in self.list()? {
            let due = match pod.state {
                PodState::Garbage => true,
                // The rename that marked it set the directory's ctime.
                PodState::ExitedGarbage => fs::metadata(&pod.path).is_ok_and(|m| {
                    now.saturating_sub(m.ctime().max(0) as u64) >= opts.grace_period.as_secs()
                }),
                _ => false,
            };
            if due {
                match self.sweep(&pod, release) {
                    Ok(true) => report.removed.push(pod.uuid.clone()),
                    Ok(false) => {}
                    Err(e) => report.skipped.push((pod.uuid.clone(), e.to_string())),
                }
            }
        }
        Ok(report)
    }

    /// Whether a pod of this UUID exists in any phase. The phases are looked at in life-cycle
    /// order, the order pods move in, so one moving meanwhile is still found.
    pub fn exists(&self, uuid: &str) -> bool {
        Phase::ALL
            .iter()
            .any(|phase| self.phase_path(*phase, uuid).exists())
    }

    /// Moves the pod to `phase` if nobody holds it; false if it was busy or gone.
    fn mark(&self, pod: &Pod, phase: Phase) -> Result<bool, PodError> {
        let Ok(Some(_locks)) = lock_idle(&pod.path) else {
            return Ok(false);
        };
        self.rename(&pod.path, &self.phase_path(phase, &pod.uuid))?;
        Ok(true)
    }

    fn sweep(&self, pod: &Pod, release: Release) -> Result<bool, PodError> {
        let Ok(Some(_locks)) = lock_idle(&pod.path) else {
            return Ok(false);
        };
        delete_locked(&pod.path, release)?;
        Ok(true)
    }
}

/// Releases what a pod holds outside its directory (its CNI network address, which a stage1
/// that died left taken, and its sockets in /run), given the pod's directory and UUID. The
/// runtime knows how; the pod layer only says when: before the directory goes, while the
/// pod's network namespace is still mounted below it.
pub type Release<'a> =
    &'a dyn Fn(&Path, &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Releases what the pod holds outside `path` (see [`Release`]), undoes every mount below it
/// (deepest first; lazily, so a busy one cannot block gc forever) and removes the directory.
/// The caller holds the pod's lock. If the release fails the pod stays, to be tried again.
pub(crate) fn delete_locked(path: &Path, release: Release) -> Result<(), PodError> {
    let uuid = path.file_name().unwrap_or_default().to_string_lossy();
    release(path, &uuid).map_err(|e| {
        PodError::io(
            "tearing down the network of",
            path,
            std::io::Error::other(e),
        )
    })?;
    let mounts = mounts_below(path);
    for mount in mounts.iter().rev() {
        if let Err(e) = rustix::mount::unmount(mount.as_str(), rustix::mount::UnmountFlags::DETACH)
        {
            return Err(PodError::io("unmounting", Path::new(mount), e.into()));
        }
    }
    // A host volume still bound below the pod would have its files deleted with it.
    if let Some(left) = mounts_below(path).first() {
        return Err(PodError::io(
            "unmounting",
            Path::new(left),
            std::io::Error::other("still mounted; the pod is kept"),
        ));
    }
    fs::remove_dir_all(path).map_err(|e| PodError::io("removing", path, e))
}

/// Mount points at or below `path`, in the order they were mounted.
fn mounts_below(path: &Path) -> Vec<String> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let prefix = path.to_string_lossy().into_owned();
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
