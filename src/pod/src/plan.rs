//! What to run for one app: its command, identity, environment and root, and its isolators
//! as the limits systemd will apply. Pure planning: the runtime turns a plan into a unit.

use std::path::Path;

use rkt_schema::{App, EventName, IsolatorValue, SeccompSet};

use crate::{PodError, PodOptions};

/// The spec's PATH for apps (and for looking up a relative `exec[0]` in the image).
pub const APP_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why an app cannot be planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    #[error("app {app}: nothing to execute (its \"exec\" is empty)")]
    NoExec { app: String },
    #[error("app {app}: {exec:?} is not in the image's PATH; give an absolute path with --exec")]
    NotInPath { app: String, exec: String },
    #[error("app {app}: {what} {name:?}: {error}")]
    Identity {
        app: String,
        what: &'static str,
        name: String,
        error: Box<PodError>,
    },
    #[error("app {app}: isolator {isolator}: {reason}")]
    Isolator {
        app: String,
        isolator: &'static str,
        reason: String,
    },
}

/// Everything needed to start one app inside the pod.
#[derive(Debug, Clone, PartialEq)]
pub struct AppPlan {
    pub name: String,
    pub exec: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub supplementary_gids: Vec<u32>,
    pub workdir: String,
    pub env: Vec<(String, String)>,
    pub read_only_root: bool,
    pub limits: Limits,
    /// The image's `pre-start` handler (ExecStartPre): runs and ends before the app starts.
    pub pre_start: Option<Vec<String>>,
    /// The image's `post-stop` handler (ExecStopPost): runs after the app ended.
    pub post_stop: Option<Vec<String>>,
    /// Volume targets that stay writable under a read-only root (ReadWritePaths).
    pub writable_paths: Vec<String>,
}

impl AppPlan {
    /// Gives the app `AC_METADATA_URL` (replacing one its image or the user set: the
    /// executor owns it, as the spec says).
    pub fn set_metadata_url(&mut self, url: &str) {
        self.env.retain(|(k, _)| k != "AC_METADATA_URL");
        self.env
            .push(("AC_METADATA_URL".to_owned(), url.to_owned()));
    }
}

/// The app's isolators, as systemd understands them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Limits {
    /// Bytes (MemoryMax).
    pub memory_max: Option<u64>,
    /// Microseconds of CPU time per second (CPUQuota).
    pub cpu_quota_usec: Option<u64>,
    /// CPUWeight, from cpu-shares.
    pub cpu_weight: Option<u64>,
    /// The capability bounding set, as a bit mask.
    pub capabilities: u64,
    pub no_new_privileges: bool,
    /// (allow-list?, syscalls) for SystemCallFilter.
    pub syscall_filter: Option<(bool, Vec<String>)>,
    /// The errno refused syscalls get (SystemCallErrorNumber); without one they kill the app.
    pub syscall_errno: Option<i32>,
    pub oom_score_adj: Option<i32>,
    /// `--insecure-options=paths`: the app may write the kernel's tunables (`/proc/sys`,
    /// `/sys`) and the cgroup tree, and load modules and read the kernel log if its
    /// capabilities allow. Off by default: those are the host's, not the pod's.
    pub open_kernel_paths: bool,
}

impl Limits {
    /// Drops the checks the user turned off with `--insecure-options`: the capability bounding
    /// set (every capability stays), the syscall filter, and the read-only kernel paths.
    pub fn relax(&mut self, options: &PodOptions) {
        if options.all_capabilities {
            self.capabilities = (1u64 << CAPABILITIES.len()) - 1;
        }
        if options.no_seccomp {
            self.syscall_filter = None;
            self.syscall_errno = None;
        }
        if options.open_kernel_paths {
            self.open_kernel_paths = true;
        }
    }
}

/// Plans `app` (the pod manifest's app, or the image's) for the pod app `name`; users, groups
/// and a relative executable are looked up in `image_rootfs`, the root the app will see.
pub fn plan_app(
    name: &str,
    app: &App,
    read_only_root: bool,
    image_rootfs: &Path,
) -> Result<AppPlan, PlanError> {
    if app.exec.is_empty() {
        return Err(PlanError::NoExec { app: name.into() });
    }
    let exec = in_image_path(name, &app.exec, image_rootfs)?;
    // Event handlers run in the app's root like the app, so their commands are found there.
    let handler = |event| {
        app.event_handler(event)
            .filter(|h| !h.exec.is_empty())
            .map(|h| in_image_path(name, &h.exec, image_rootfs))
            .transpose()
    };
    let pre_start = handler(EventName::PreStart)?;
    let post_stop = handler(EventName::PostStop)?;
    let identity = |db, what, value: &str| {
        resolve_id(image_rootfs, db, value).map_err(|source| PlanError::Identity {
            app: name.into(),
            what,
            name: value.into(),
            error: Box::new(source),
        })
    };
    let uid = identity("passwd", "user", &app.user)?;
    let gid = identity("group", "group", &app.group)?;
    // The spec's environment, then the manifest's (which may override PATH).
    let mut env = vec![
        ("PATH".to_owned(), APP_PATH.to_owned()),
        ("AC_APP_NAME".to_owned(), name.to_owned()),
        ("container".to_owned(), "rkt".to_owned()),
    ];
    for var in &app.environment {
        env.retain(|(k, _)| k != &var.name);
        env.push((var.name.clone(), var.value.clone()));
    }
    let workdir = if app.working_directory.is_empty() {
        "/".to_owned()
    } else {
        app.working_directory.clone()
    };
    Ok(AppPlan {
        name: name.to_owned(),
        exec,
        uid,
        gid,
        supplementary_gids: app.supplementary_gids.clone(),
        workdir,
        env,
        read_only_root,
        limits: limits(name, app)?,
        pre_start,
        post_stop,
        writable_paths: Vec::new(),
    })
}

/// `exec` with a relative `exec[0]` looked up exec(3)-style in the image's PATH (not the
/// host's).
fn in_image_path(
    name: &str,
    exec: &[String],
    image_rootfs: &Path,
) -> Result<Vec<String>, PlanError> {
    let mut exec = exec.to_vec();
    if !exec[0].starts_with('/') {
        exec[0] = APP_PATH
            .split(':')
            .map(|d| format!("{d}/{}", exec[0]))
            .find(|p| image_rootfs.join(p.trim_start_matches('/')).exists())
            .ok_or_else(|| PlanError::NotInPath {
                app: name.into(),
                exec: exec[0].clone(),
            })?;
    }
    Ok(exec)
}

/// The capability bounding set an app gets when its isolators name none: the spec's default
/// set ([`rkt_schema::DEFAULT_CAPABILITIES`]) less `CAP_NET_RAW` and `CAP_MKNOD`, as
/// podman's. With raw and packet sockets an app on the host's network (`--net=host`) reads
/// and forges the host's traffic; with mknod it makes nodes of the host's block devices. An
/// image that needs either asks for it in a capabilities isolator.
pub const DEFAULT_APP_CAPABILITIES: [&str; 12] = [
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETFCAP",
    "CAP_SYS_CHROOT",
];

/// The app's isolators as limits. Capabilities start from [`DEFAULT_APP_CAPABILITIES`].
pub fn limits(name: &str, app: &App) -> Result<Limits, PlanError> {
    let mut limits = Limits {
        capabilities: capability_mask(name, DEFAULT_APP_CAPABILITIES.iter().copied())?,
        ..Limits::default()
    };
    let bad = |isolator: &'static str, reason: String| PlanError::Isolator {
        app: name.into(),
        isolator,
        reason,
    };
    let mut seccomp_given = false;
    for isolator in &app.isolators {
        let value = isolator
            .parse()
            .map_err(|e| bad("(unreadable)", e.to_string()))?;
        let Some(value) = value else {
            // The spec: executors ignore isolators they do not know.
            continue;
        };
        let kind = value.name();
        match value {
            IsolatorValue::ResourceMemory(r) => limits.memory_max = Some(r.limit.value()),
            IsolatorValue::ResourceCpu(r) => {
                // Millicores to µs per s: 1 core = 1 000 000 µs/s.
                let usec = u64::try_from(r.limit.milli_value().saturating_mul(1000))
                    .map_err(|_| bad(kind, format!("{} is too large", r.limit)))?;
                if usec == 0 {
                    return Err(bad(kind, "a CPU limit of 0 would never run the app".into()));
                }
                limits.cpu_quota_usec = Some(usec);
            }
            // systemd's own conversion: shares 1024 = weight 100.
            IsolatorValue::CpuShares(shares) => {
                limits.cpu_weight = Some((u64::from(shares) * 100 / 1024).clamp(1, 10_000))
            }
            IsolatorValue::CapabilitiesRetainSet(set) => {
                limits.capabilities = capability_mask(name, set.set.iter().map(String::as_str))?
            }
            IsolatorValue::CapabilitiesRemoveSet(set) => {
                limits.capabilities &= !capability_mask(name, set.set.iter().map(String::as_str))?
            }
            IsolatorValue::NoNewPrivileges(on) => limits.no_new_privileges = on,
            IsolatorValue::SeccompRetainSet(set) => {
                seccomp_given = true;
                seccomp(name, &set, true, &mut limits)?;
            }
            IsolatorValue::SeccompRemoveSet(set) => {
                seccomp_given = true;
                seccomp(name, &set, false, &mut limits)?;
            }
            IsolatorValue::OomScoreAdj(adj) => limits.oom_score_adj = Some(adj),
            IsolatorValue::ResourceBlockBandwidth(_)
            | IsolatorValue::ResourceBlockIops(_)
            | IsolatorValue::ResourceNetworkBandwidth(_)
            | IsolatorValue::SelinuxContext(_)
            | IsolatorValue::ApparmorProfile(_)
            | IsolatorValue::Sysctl(_) => {
                return Err(bad(
                    kind,
                    "not supported by this rkt; remove it from the manifest".into(),
                ));
            }
        }
    }
    if !seccomp_given {
        // Like the original rkt: an app that asks for no filter still gets the default one.
        // EPERM rather than SIGSYS, so that a program probing for a feature fails softly.
        limits.syscall_filter = Some((false, owned(DEFAULT_SECCOMP_REMOVE_SET)));
        limits.syscall_errno = Some(libc::EPERM);
    }
    Ok(limits)
}

/// The syscalls every app is refused unless its isolators say otherwise (`@rkt/default-blacklist`,
/// also accepted as `@docker/default-blacklist`): the original rkt's list — kernel modules,
/// keyrings, clocks, mounts and namespaces, reboot and swap, tracing other processes, NUMA
/// policy, obsolete calls — less `personality`, which ordinary programs call to query the
/// execution domain. Names this architecture lacks are ignored by systemd.
pub const DEFAULT_SECCOMP_REMOVE_SET: &[&str] = &[
    "_sysctl",
    "add_key",
    "adjtimex",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "sysfs",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
];

fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn seccomp(
    name: &str,
    set: &SeccompSet,
    retain: bool,
    limits: &mut Limits,
) -> Result<(), PlanError> {
    let kind = if retain {
        rkt_schema::LINUX_SECCOMP_RETAIN_SET
    } else {
        rkt_schema::LINUX_SECCOMP_REMOVE_SET
    };
    let bad = |reason: String| PlanError::Isolator {
        app: name.into(),
        isolator: kind,
        reason,
    };
    let mut syscalls = Vec::new();
    for entry in &set.set {
        match entry.as_str() {
            // Retaining everything, or removing nothing, is no filter at all.
            "@appc.io/all" if retain => return Ok(()),
            "@appc.io/empty" if !retain => return Ok(()),
            "@rkt/default-blacklist" | "@docker/default-blacklist" if !retain => {
                syscalls.extend(owned(DEFAULT_SECCOMP_REMOVE_SET))
            }
            e if e.starts_with('@') => {
                return Err(bad(format!(
                    "the wildcard {e:?} is not supported here (known: @appc.io/all to retain; \
                     @appc.io/empty, @rkt/default-blacklist to remove); list the syscalls by name"
                )));
            }
            e if !e
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
            {
                return Err(bad(format!("{e:?} is not a syscall name")));
            }
            e => syscalls.push(e.to_owned()),
        }
    }
    limits.syscall_filter = Some((retain, syscalls));
    if let Some(errno) = set.errno.as_deref().filter(|e| !e.is_empty()) {
        limits.syscall_errno =
            Some(errno_number(errno).ok_or_else(|| bad(format!("unknown errno {errno:?}")))?);
    }
    Ok(())
}

/// The Linux capabilities by number.
const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capability names of a bit mask (as [`capability_mask`] makes them).
pub fn capability_names(mask: u64) -> Vec<&'static str> {
    CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// The bit mask of capability names (`CAP_NET_RAW` or `net_raw`, any case).
pub fn capability_mask<'a>(
    app: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<u64, PlanError> {
    let mut mask = 0u64;
    for name in names {
        let upper = name.to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        let bit = CAPABILITIES
            .iter()
            .position(|c| *c == full)
            .ok_or_else(|| PlanError::Isolator {
                app: app.into(),
                isolator: "capabilities",
                reason: format!("{name:?} is not a Linux capability (like CAP_NET_RAW)"),
            })?;
        mask |= 1 << bit;
    }
    Ok(mask)
}

/// The errno names seccomp sets use most; the number systemd wants.
fn errno_number(name: &str) -> Option<i32> {
    Some(match name {
        "EPERM" => libc::EPERM,
        "ENOENT" => libc::ENOENT,
        "EIO" => libc::EIO,
        "E2BIG" => libc::E2BIG,
        "EBADF" => libc::EBADF,
        "EAGAIN" => libc::EAGAIN,
        "ENOMEM" => libc::ENOMEM,
        "EACCES" => libc::EACCES,
        "EFAULT" => libc::EFAULT,
        "EBUSY" => libc::EBUSY,
        "EEXIST" => libc::EEXIST,
        "EXDEV" => libc::EXDEV,
        "ENODEV" => libc::ENODEV,
        "EINVAL" => libc::EINVAL,
        "ENOSPC" => libc::ENOSPC,
        "EROFS" => libc::EROFS,
        "ENOTTY" => libc::ENOTTY,
        "ENOSYS" => libc::ENOSYS,
        "EOPNOTSUPP" => libc::EOPNOTSUPP,
        "ENOTSUP" => libc::ENOTSUP,
        "ECONNREFUSED" => libc::ECONNREFUSED,
        _ => return None,
    })
}

/// The memory limit for the whole pod where per-app limits cannot work: under cgroup v1 the
/// pod's systemd has no memory controller of its own, so the apps share the pod's memory
/// cgroup, which gets the sum of their limits (only when every app has one).
pub fn pod_memory_limit(plans: &[AppPlan]) -> Option<u64> {
    sum_if_all(plans.iter().map(|p| p.limits.memory_max))
}

/// The CPU quota (µs per s) for the whole pod under cgroup v1, as [`pod_memory_limit`].
pub fn pod_cpu_quota(plans: &[AppPlan]) -> Option<u64> {
    sum_if_all(plans.iter().map(|p| p.limits.cpu_quota_usec))
}

fn sum_if_all(values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    let mut values = values.peekable();
    // A pod with no app (a mutable pod waiting for `rkt app add`) has no limit, not 0.
    values.peek()?;
    values.try_fold(0u64, |sum, v| Some(sum.saturating_add(v?)))
}

/// Resolves an app's `user`/`group` to a number the way the appc spec says: a number as is,
/// a name from the image's own `/etc/passwd` or `/etc/group` (read inside the image's root, so
/// a hostile image cannot point us at a host file).
pub fn resolve_id(image_rootfs: &Path, db: &str, name: &str) -> Result<u32, PodError> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    let path = image_rootfs.join("etc").join(db);
    let not_found = || {
        PodError::io(
            "resolving",
            &path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{name:?} is not in the image's /etc/{db}"),
            ),
        )
    };
    let root = rustix::fs::open(
        image_rootfs,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| PodError::io("opening", image_rootfs, e.into()))?;
    let fd = rustix::fs::openat2(
        &root,
        format!("etc/{db}"),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
        rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|_| not_found())?;
    let text = std::io::read_to_string(std::fs::File::from(fd))
        .map_err(|e| PodError::io("reading", &path, e))?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(2)?.parse().ok())
        .ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(isolators: &str) -> App {
        serde_json::from_str(&format!(
            r#"{{"exec": ["/bin/x"], "user": "0", "group": "0", "isolators": {isolators}}}"#
        ))
        .unwrap()
    }

    fn mask(names: &[&str]) -> u64 {
        capability_mask("t", names.iter().copied()).unwrap()
    }

    #[test]
    fn default_capabilities_are_the_spec_set_without_raw_sockets_or_mknod() {
        let l = limits("t", &app("[]")).unwrap();
        assert_eq!(l.capabilities, mask(&DEFAULT_APP_CAPABILITIES));
        let spec = mask(&rkt_schema::DEFAULT_CAPABILITIES);
        assert_eq!(l.capabilities, spec & !mask(&["CAP_NET_RAW", "CAP_MKNOD"]));
        assert_eq!(l.capabilities.count_ones(), 12);
        assert_eq!(mask(&["CAP_CHOWN"]), 1);
        assert_eq!(mask(&["net_raw"]), 1 << 13);
        assert_eq!(mask(&["mknod"]), 1 << 27);
    }

    #[test]
    fn an_image_that_asks_for_raw_sockets_gets_them() {
        let l = limits(
            "t",
            &app(r#"[{"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_NET_RAW", "CAP_MKNOD"]}}]"#),
        )
        .unwrap();
        assert_eq!(l.capabilities, mask(&["CAP_NET_RAW", "CAP_MKNOD"]));
    }

    #[test]
    fn capability_sets_retain_and_remove() {
        let retain = limits(
            "t",
            &app(r#"[{"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_KILL", "CAP_SYS_ADMIN"]}}]"#),
        )
        .unwrap();
        assert_eq!(retain.capabilities, (1 << 5) | (1 << 21));
        let remove = limits(
            "t",
            &app(r#"[{"name": "os/linux/capabilities-remove-set", "value": {"set": ["CAP_CHOWN"]}}]"#),
        )
        .unwrap();
        assert_eq!(remove.capabilities, mask(&DEFAULT_APP_CAPABILITIES) & !1);
        let unknown = limits(
            "web",
            &app(
                r#"[{"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_FLY"]}}]"#,
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(
            unknown.contains("app web") && unknown.contains("CAP_FLY"),
            "{unknown}"
        );
    }

    #[test]
    fn resources_become_systemd_units() {
        let l = limits(
            "t",
            &app(r#"[{"name": "resource/memory", "value": {"limit": "64Mi"}},
                     {"name": "resource/cpu", "value": {"limit": "500m"}},
                     {"name": "os/linux/cpu-shares", "value": 2048},
                     {"name": "os/linux/oom-score-adj", "value": 300},
                     {"name": "os/linux/no-new-privileges", "value": true}]"#),
        )
        .unwrap();
        assert_eq!(l.memory_max, Some(64 << 20));
        assert_eq!(l.cpu_quota_usec, Some(500_000));
        assert_eq!(l.cpu_weight, Some(200));
        assert_eq!(l.oom_score_adj, Some(300));
        assert!(l.no_new_privileges);
    }

    #[test]
    fn seccomp_sets_and_errno() {
        let l = limits(
            "t",
            &app(r#"[{"name": "os/linux/seccomp-remove-set", "value": {"set": ["chroot", "uname"], "errno": "ENOTTY"}}]"#),
        )
        .unwrap();
        assert_eq!(
            l.syscall_filter,
            Some((false, vec!["chroot".to_owned(), "uname".to_owned()]))
        );
        assert_eq!(l.syscall_errno, Some(libc::ENOTTY));
        let all = limits(
            "t",
            &app(
                r#"[{"name": "os/linux/seccomp-retain-set", "value": {"set": ["@appc.io/all"]}}]"#,
            ),
        )
        .unwrap();
        assert_eq!(all.syscall_filter, None);
        let defaults = limits(
            "t",
            &app(
                r#"[{"name": "os/linux/seccomp-remove-set", "value": {"set": ["@docker/default-blacklist", "chroot"]}}]"#,
            ),
        )
        .unwrap();
        let (allow, removed) = defaults.syscall_filter.unwrap();
        assert!(!allow);
        assert!(removed.iter().any(|s| s == "unshare") && removed.iter().any(|s| s == "chroot"));
        // No errno given: systemd's default, the app is killed.
        assert_eq!(defaults.syscall_errno, None);
        let bad = limits(
            "t",
            &app(
                r#"[{"name": "os/linux/seccomp-retain-set", "value": {"set": ["@rkt/default-blacklist"]}}]"#,
            ),
        );
        assert!(bad.unwrap_err().to_string().contains("not supported"));
        let none = limits(
            "t",
            &app(r#"[{"name": "os/linux/seccomp-remove-set", "value": {"set": ["@appc.io/empty"]}}]"#),
        )
        .unwrap();
        assert_eq!(none.syscall_filter, None);
    }

    #[test]
    fn an_app_without_seccomp_isolators_gets_the_default_filter() {
        let l = limits("t", &app("[]")).unwrap();
        let (allow, removed) = l.syscall_filter.clone().unwrap();
        assert!(!allow);
        for call in [
            "mount",
            "unshare",
            "setns",
            "keyctl",
            "ptrace",
            "reboot",
            "init_module",
        ] {
            assert!(removed.iter().any(|s| s == call), "{call} not refused");
        }
        assert!(!removed.iter().any(|s| s == "personality"));
        assert_eq!(l.syscall_errno, Some(libc::EPERM));
        let mut relaxed = l;
        relaxed.relax(&PodOptions {
            no_seccomp: true,
            ..PodOptions::default()
        });
        assert_eq!(relaxed.syscall_filter, None);
    }

    #[test]
    fn the_pod_limit_is_the_sum_when_every_app_has_one() {
        let plan = |memory_max| AppPlan {
            name: "a".into(),
            exec: vec!["/x".into()],
            uid: 0,
            gid: 0,
            supplementary_gids: vec![],
            workdir: "/".into(),
            env: vec![],
            read_only_root: false,
            limits: Limits {
                memory_max,
                ..Limits::default()
            },
            pre_start: None,
            post_stop: None,
            writable_paths: vec![],
        };
        assert_eq!(pod_memory_limit(&[plan(Some(1)), plan(Some(2))]), Some(3));
        assert_eq!(pod_memory_limit(&[plan(Some(1)), plan(None)]), None);
        assert_eq!(pod_memory_limit(&[]), None);
        assert_eq!(pod_cpu_quota(&[plan(Some(1))]), None);
    }

    #[test]
    fn insecure_options_relax_the_limits() {
        let mut l = limits(
            "t",
            &app(r#"[{"name": "os/linux/seccomp-remove-set", "value": {"set": ["chroot"], "errno": "EPERM"}}]"#),
        )
        .unwrap();
        l.relax(&PodOptions::default());
        assert!(l.syscall_filter.is_some() && l.capabilities == mask(&DEFAULT_APP_CAPABILITIES));
        assert!(!l.open_kernel_paths);
        l.relax(&PodOptions {
            all_capabilities: true,
            no_seccomp: true,
            open_kernel_paths: true,
            ..PodOptions::default()
        });
        assert_eq!((l.syscall_filter, l.syscall_errno), (None, None));
        assert_eq!(l.capabilities.count_ones(), 41);
        assert!(l.open_kernel_paths);
    }

    #[test]
    fn event_handlers_are_found_in_the_image() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("bin")).unwrap();
        std::fs::write(root.path().join("bin/hook"), "").unwrap();
        let mut app: App = serde_json::from_str(
            r#"{"exec": ["/x"], "user": "0", "group": "0",
                "eventHandlers": [{"name": "pre-start", "exec": ["hook", "a"]},
                                  {"name": "post-stop", "exec": ["/abs", "b"]}]}"#,
        )
        .unwrap();
        let plan = plan_app("web", &app, false, root.path()).unwrap();
        assert_eq!(plan.pre_start.unwrap(), ["/bin/hook", "a"]);
        assert_eq!(plan.post_stop.unwrap(), ["/abs", "b"]);
        app.event_handlers[0].exec = vec!["missing".into()];
        let e = plan_app("web", &app, false, root.path()).unwrap_err();
        assert!(
            e.to_string()
                .contains("\"missing\" is not in the image's PATH"),
            "{e}"
        );
    }
}
