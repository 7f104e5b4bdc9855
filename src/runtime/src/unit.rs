//! An app's unit: the plan of one app (see `rkt_pod::plan`) as typed unit settings, with two
//! renderings of the one value — the properties of a transient unit of the pod's systemd, and
//! a unit file (for a socket-activated app, whose unit must exist when the pod boots).

use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use zbus::zvariant::{Fd, Value};

use rkt_pod::plan::{AppPlan, capability_names};

use super::{POD_CONSOLE, app_rootfs_in_pod};

/// One setting's value, typed by how systemd takes it.
#[derive(Debug, Clone)]
pub enum Setting {
    Text(String),
    Flag(bool),
    Number(u64),
    Signed(i32),
    /// Space-separated words in a file; an array of strings on the bus.
    Words(Vec<String>),
    /// One setting per entry in a file (`Environment=`); an array of strings on the bus.
    Lines(Vec<String>),
    /// Command lines (`ExecStart=` and kin), each argv literal: `$` is escaped in both
    /// renderings, since systemd expands `$NAME` at exec time.
    Commands(Vec<Vec<String>>),
    /// A capability set, as a mask of capability numbers.
    Capabilities(u64),
    /// Microseconds, `u64::MAX` for infinity. The bus name ends in `USec`, the file's in `Sec`.
    Duration(u64),
    /// CPU time per second of wall time, in µs (`CPUQuotaPerSecUSec`; `CPUQuota=N%` in a file).
    CpuQuota(u64),
    /// `SystemCallFilter=`: allowed (or, with `allow` false, denied) system calls.
    SyscallFilter {
        allow: bool,
        calls: Vec<String>,
    },
    /// A descriptor the unit's process gets (`Standard*FileDescriptor`): a transient unit's
    /// alone, as a unit file cannot carry one.
    Descriptor(Rc<OwnedFd>),
}

/// A unit of the pod's systemd that runs one app: settings by their D-Bus property names,
/// in order, each at most once.
#[derive(Debug, Clone)]
pub struct AppUnit {
    settings: Vec<(&'static str, Setting)>,
}

impl AppUnit {
    /// The app's unit: its own root, identity and environment, output to the journal under
    /// the app's name, and its isolators.
    pub fn for_app(plan: &AppPlan) -> AppUnit {
        use Setting::*;
        let env: Vec<String> = plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut unit = AppUnit {
            settings: Vec::new(),
        };
        let limits = &plan.limits;
        for (name, value) in [
            ("Description", Text(format!("rkt app {}", plan.name))),
            // Reports a failed exec as a failed start, not as a run that exited.
            ("Type", Text("exec".into())),
            ("RootDirectory", Text(app_rootfs_in_pod(&plan.name))),
            ("WorkingDirectory", Text(plan.workdir.clone())),
            ("User", Text(plan.uid.to_string())),
            ("Group", Text(plan.gid.to_string())),
            ("SyslogIdentifier", Text(plan.name.clone())),
            ("StandardOutput", Text("journal".into())),
            ("StandardError", Text("journal".into())),
            // The spec promises /proc, /sys and /dev in every app.
            ("MountAPIVFS", Flag(true)),
            ("Environment", Lines(env)),
            ("ExecStart", Commands(vec![plan.exec.clone()])),
            // Nothing of an ended app lingers (its status is read as it ends).
            ("CollectMode", Text("inactive-or-failed".into())),
            ("CapabilityBoundingSet", Capabilities(limits.capabilities)),
            ("NoNewPrivileges", Flag(limits.no_new_privileges)),
        ] {
            unit.set(name, value);
        }
        if !limits.open_kernel_paths {
            // MountAPIVFS gives the app a /proc of its own, writable, which would undo
            // nspawn's read-only /proc/sys: the host's tunables (kernel.core_pattern runs a
            // program as the host's root). These make /proc/sys, /sys and the cgroup tree
            // read-only again, hide the kernel log and refuse module loading, in the app's
            // own mount namespace.
            for name in [
                "ProtectKernelTunables",
                "ProtectControlGroups",
                "ProtectKernelModules",
                "ProtectKernelLogs",
            ] {
                unit.set(name, Flag(true));
            }
        }
        if plan.uid != 0 {
            // A non-root app gets its bounding set as ambient capabilities, as rkt did; root
            // has them all already.
            unit.set("AmbientCapabilities", Capabilities(limits.capabilities));
        }
        if !plan.supplementary_gids.is_empty() {
            let gids = plan.supplementary_gids.iter().map(u32::to_string).collect();
            unit.set("SupplementaryGroups", Words(gids));
        }
        if plan.read_only_root {
            // Inside RootDirectory: the app's whole tree (API file systems stay as they are).
            unit.set("ProtectSystem", Text("strict".into()));
            if !plan.writable_paths.is_empty() {
                // Writable volumes stay writable; "+": the paths are inside RootDirectory.
                let paths = plan
                    .writable_paths
                    .iter()
                    .map(|p| format!("+{p}"))
                    .collect();
                unit.set("ReadWritePaths", Words(paths));
            }
        }
        // systemd runs both in the unit's root, as the app's user, with its environment.
        if let Some(exec) = &plan.pre_start {
            unit.set("ExecStartPre", Commands(vec![exec.clone()]));
        }
        if let Some(exec) = &plan.post_stop {
            unit.set("ExecStopPost", Commands(vec![exec.clone()]));
        }
        if let Some(bytes) = limits.memory_max {
            unit.set("MemoryMax", Number(bytes));
        }
        if let Some(usec) = limits.cpu_quota_usec {
            unit.set("CPUQuotaPerSecUSec", CpuQuota(usec));
        }
        if let Some(weight) = limits.cpu_weight {
            unit.set("CPUWeight", Number(weight));
        }
        if let Some((allow, calls)) = &limits.syscall_filter {
            let (allow, calls) = (*allow, calls.clone());
            unit.set("SystemCallFilter", SyscallFilter { allow, calls });
        }
        if let Some(errno) = limits.syscall_errno {
            unit.set("SystemCallErrorNumber", Signed(errno));
        }
        if let Some(adj) = limits.oom_score_adj {
            unit.set("OOMScoreAdjust", Signed(adj));
        }
        unit
    }

    /// Sets `name` (a D-Bus property name), replacing what it was.
    pub fn set(&mut self, name: &'static str, value: Setting) {
        match self.settings.iter_mut().find(|(n, _)| *n == name) {
            Some((_, old)) => *old = value,
            None => self.settings.push((name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Setting> {
        self.settings
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// A `Type=notify` unit: active once its main process sent `READY=1`, not as soon as it
    /// was executed (see [`super::supports_notify`]).
    pub fn expect_ready_notification(&mut self) {
        self.set("Type", Setting::Text("notify".into()));
        // Only the app itself may say it is ready, not whatever it runs.
        self.set("NotifyAccess", Setting::Text("main".into()));
        // As long as it takes (as in rkt): the caller's own start timeout is the bound.
        self.set("TimeoutStartUSec", Setting::Duration(u64::MAX));
    }

    /// The app attached to the pod's console (`rkt run --interactive`): its stdin, stdout and
    /// stderr, and its controlling terminal.
    pub fn attach_to_console(&mut self) {
        self.set("TTYPath", Setting::Text(POD_CONSOLE.into()));
        for stream in ["StandardInput", "StandardOutput", "StandardError"] {
            self.set(stream, Setting::Text("tty".into()));
        }
        // Like a login: the terminal is reset for the app, and the app's output on it is not
        // cut off by the pod's end before nspawn copied it.
        self.set("TTYReset", Setting::Flag(true));
    }

    /// The app's stderr goes to `stream` (a journal stream of its own, see
    /// `app_streams`), not with its stdout.
    pub fn send_stderr_to(&mut self, stream: OwnedFd) {
        self.settings.retain(|(name, _)| *name != "StandardError");
        self.set(
            "StandardErrorFileDescriptor",
            Setting::Descriptor(Rc::new(stream)),
        );
    }

    /// The unit as the properties of a transient unit (`StartTransientUnit`).
    pub fn dbus_properties(&self) -> Vec<(&'static str, Value<'_>)> {
        self.settings
            .iter()
            .map(|(name, setting)| (*name, dbus_value(setting)))
            .collect()
    }

    /// The unit as a unit file with the same meaning. `CollectMode` is left out, so that
    /// stage1 can still read how an app that ended before it looked has ended.
    pub fn unit_file(&self) -> String {
        let mut unit = String::from("[Unit]\n");
        if let Some(Setting::Text(description)) = self.get("Description") {
            unit.push_str(&format!("Description={}\n", escape(description)));
        }
        unit.push_str("\n[Service]\n");
        for (name, setting) in &self.settings {
            if matches!(*name, "Description" | "CollectMode") {
                continue;
            }
            for line in file_lines(name, setting) {
                unit.push_str(&line);
                unit.push('\n');
            }
        }
        unit
    }
}

/// The bus's form: `(path, argv, ignore failure)` per command, masks and µs as `t`.
fn dbus_value(setting: &Setting) -> Value<'_> {
    match setting {
        Setting::Text(s) => Value::from(s.clone()),
        Setting::Flag(b) => Value::from(*b),
        Setting::Number(n) | Setting::Capabilities(n) => Value::from(*n),
        Setting::Duration(n) | Setting::CpuQuota(n) => Value::from(*n),
        Setting::Signed(n) => Value::from(*n),
        Setting::Words(items) | Setting::Lines(items) => Value::from(items.clone()),
        Setting::Commands(commands) => Value::from(
            commands
                .iter()
                .map(|argv| (argv[0].clone(), escape_dollars(argv), false))
                .collect::<Vec<_>>(),
        ),
        Setting::SyscallFilter { allow, calls } => Value::from((*allow, calls.clone())),
        Setting::Descriptor(fd) => Value::from(Fd::from(fd.as_fd())),
    }
}

fn file_lines(name: &str, setting: &Setting) -> Vec<String> {
    let one = |value: String| vec![format!("{name}={value}")];
    match setting {
        Setting::Text(s) => one(escape(s)),
        Setting::Flag(b) => one(if *b { "yes" } else { "no" }.into()),
        Setting::Number(n) => one(n.to_string()),
        Setting::Signed(n) => one(n.to_string()),
        Setting::Words(items) => one(items
            .iter()
            .map(|i| escape(i))
            .collect::<Vec<_>>()
            .join(" ")),
        Setting::Lines(items) => items
            .iter()
            .map(|i| format!("{name}={}", quote(i)))
            .collect(),
        Setting::Commands(commands) => commands
            .iter()
            .map(|argv| {
                let words: Vec<String> = escape_dollars(argv).iter().map(|a| quote(a)).collect();
                format!("{name}={}", words.join(" "))
            })
            .collect(),
        Setting::Capabilities(mask) => one(capability_names(*mask).join(" ")),
        Setting::Duration(usec) => {
            let key = name.replace("USec", "Sec");
            match *usec {
                u64::MAX => vec![format!("{key}=infinity")],
                usec => vec![format!("{key}={usec}us")],
            }
        }
        // A percentage of one CPU: 10 000 µs per s is 1 %.
        Setting::CpuQuota(usec) => vec![format!("CPUQuota={}%", usec.div_ceil(10_000))],
        Setting::SyscallFilter { allow, calls } => {
            let sign = if *allow { "" } else { "~" };
            one(format!("{sign}{}", calls.join(" ")))
        }
        Setting::Descriptor(_) => Vec::new(),
    }
}

/// An app's arguments are literal: `$$` is how a literal `$` reaches it.
fn escape_dollars(argv: &[String]) -> Vec<String> {
    argv.iter().map(|a| a.replace('$', "$$")).collect()
}

/// A value as it is read back: `%` starts a specifier, a newline ends the setting.
fn escape(s: &str) -> String {
    s.replace('%', "%%").replace('\n', "\\n")
}

/// One word in double quotes, C-style escapes inside.
fn quote(s: &str) -> String {
    let inner = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .replace('%', "%%");
    format!("\"{inner}\"")
}

#[cfg(test)]
mod tests {
    use rkt_pod::PodOptions;
    use rkt_pod::plan::{Limits, limits};
    use rkt_schema::App;

    use super::*;

    fn root_plan(limits: Limits) -> AppPlan {
        AppPlan {
            name: "web".into(),
            exec: vec!["/bin/x".into()],
            uid: 0,
            gid: 0,
            supplementary_gids: vec![],
            workdir: "/".into(),
            env: vec![],
            read_only_root: false,
            limits,
            pre_start: None,
            post_stop: None,
            writable_paths: vec![],
        }
    }

    /// An app with everything a unit can carry, and what needs escaping.
    fn full_plan() -> AppPlan {
        AppPlan {
            name: "web".into(),
            exec: vec!["/bin/serve".into(), "50% $HOME".into(), "a \"b\"".into()],
            uid: 1000,
            gid: 1000,
            supplementary_gids: vec![10, 11],
            workdir: "/srv".into(),
            env: vec![("GREETING".into(), "hi there".into())],
            read_only_root: true,
            pre_start: Some(vec!["/bin/prepare".into(), "$X".into()]),
            post_stop: None,
            writable_paths: vec!["/data".into()],
            limits: Limits {
                capabilities: (1 << 10) | (1 << 13),
                memory_max: Some(1 << 20),
                cpu_quota_usec: Some(500_000),
                syscall_filter: Some((false, vec!["chroot".into(), "mount".into()])),
                syscall_errno: Some(1),
                ..Limits::default()
            },
        }
    }

    const KERNEL_PROTECTIONS: [&str; 4] = [
        "ProtectKernelTunables",
        "ProtectControlGroups",
        "ProtectKernelModules",
        "ProtectKernelLogs",
    ];

    fn app(isolators: &str) -> App {
        serde_json::from_str(&format!(
            r#"{{"exec": ["/bin/x"], "user": "0", "group": "0", "isolators": {isolators}}}"#
        ))
        .unwrap()
    }

    fn property<'u>(unit: &'u AppUnit, name: &str) -> Value<'u> {
        let props = unit.dbus_properties();
        let mut found = props.into_iter().filter(|(n, _)| *n == name);
        let (_, value) = found.next().unwrap_or_else(|| panic!("no {name}"));
        assert!(found.next().is_none(), "{name} twice");
        value
    }

    #[test]
    fn every_app_gets_read_only_kernel_paths_unless_paths_are_insecure() {
        let unit = AppUnit::for_app(&root_plan(limits("t", &app("[]")).unwrap()));
        for name in KERNEL_PROTECTIONS {
            assert_eq!(property(&unit, name), Value::from(true), "{name}");
        }
        let mut open = limits("t", &app("[]")).unwrap();
        open.relax(&PodOptions {
            open_kernel_paths: true,
            ..PodOptions::default()
        });
        let unit = AppUnit::for_app(&root_plan(open));
        let props = unit.dbus_properties();
        for name in KERNEL_PROTECTIONS {
            assert!(!props.iter().any(|(n, _)| *n == name), "{name} still set");
        }
        // The other isolators stay: only the kernel paths were opened.
        assert!(props.iter().any(|(n, _)| *n == "SystemCallFilter"));
    }

    #[test]
    fn properties_carry_identity_and_limits() {
        let mut plan = full_plan();
        plan.limits.cpu_quota_usec = None;
        let unit = AppUnit::for_app(&plan);
        assert_eq!(property(&unit, "User"), Value::from("1000"));
        assert_eq!(property(&unit, "WorkingDirectory"), Value::from("/srv"));
        assert_eq!(property(&unit, "MemoryMax"), Value::from(1u64 << 20));
        let caps = (1u64 << 10) | (1 << 13);
        assert_eq!(property(&unit, "AmbientCapabilities"), Value::from(caps));
        assert_eq!(property(&unit, "ProtectSystem"), Value::from("strict"));
        assert_eq!(
            property(&unit, "SupplementaryGroups"),
            Value::from(vec!["10".to_owned(), "11".to_owned()])
        );
        let props = unit.dbus_properties();
        assert!(!props.iter().any(|(n, _)| *n == "CPUQuotaPerSecUSec"));
        assert!(!props.iter().any(|(n, _)| *n == "ExecStopPost"));
        assert_eq!(
            property(&unit, "ExecStartPre"),
            Value::from(vec![(
                "/bin/prepare".to_owned(),
                vec!["/bin/prepare".to_owned(), "$$X".to_owned()],
                false
            )])
        );
        assert_eq!(
            property(&unit, "ReadWritePaths"),
            Value::from(vec!["+/data".to_owned()])
        );
    }

    #[test]
    fn an_app_unit_reads_as_a_unit_file() {
        let unit = AppUnit::for_app(&full_plan()).unit_file();
        for line in [
            "Description=rkt app web",
            r#"ExecStart="/bin/serve" "50%% $$HOME" "a \"b\"""#,
            r#"ExecStartPre="/bin/prepare" "$$X""#,
            "ReadWritePaths=+/data",
            "RootDirectory=/opt/stage2/web/rootfs",
            "User=1000",
            r#"Environment="GREETING=hi there""#,
            "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_RAW",
            "AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW",
            "SupplementaryGroups=10 11",
            "ProtectSystem=strict",
            "MemoryMax=1048576",
            "CPUQuota=50%",
            "SystemCallFilter=~chroot mount",
            "SystemCallErrorNumber=1",
            "MountAPIVFS=yes",
            "ProtectKernelTunables=yes",
            "ProtectControlGroups=yes",
            "ProtectKernelModules=yes",
            "ProtectKernelLogs=yes",
        ] {
            assert!(unit.lines().any(|l| l == line), "{line:?} not in:\n{unit}");
        }
        assert!(!unit.contains("CollectMode"), "{unit}");
        assert_eq!(unit.matches("Description=").count(), 1, "{unit}");
        // Every setting the bus gets is in the file, but the one left out on purpose.
        for (name, _) in AppUnit::for_app(&full_plan()).dbus_properties() {
            let key = match name {
                "CPUQuotaPerSecUSec" => "CPUQuota",
                "CollectMode" => continue,
                name => name,
            };
            assert!(unit.contains(&format!("{key}=")), "{key} not in:\n{unit}");
        }
    }

    #[test]
    fn a_notify_unit_has_one_type_in_both_renderings() {
        let mut unit = AppUnit::for_app(&full_plan());
        unit.expect_ready_notification();
        assert_eq!(property(&unit, "Type"), Value::from("notify"));
        assert_eq!(property(&unit, "TimeoutStartUSec"), Value::from(u64::MAX));
        let file = unit.unit_file();
        for line in [
            "Type=notify",
            "NotifyAccess=main",
            "TimeoutStartSec=infinity",
        ] {
            assert!(file.lines().any(|l| l == line), "{line:?} not in:\n{file}");
        }
        assert_eq!(file.matches("Type=").count(), 1, "{file}");
        assert!(!file.contains("USec"), "{file}");
    }

    #[test]
    fn stderr_can_be_a_stream_of_its_own() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut unit = AppUnit::for_app(&full_plan());
        unit.send_stderr_to(a.into());
        let props = unit.dbus_properties();
        let names: Vec<&str> = props.iter().map(|(n, _)| *n).collect();
        assert!(!names.contains(&"StandardError"), "{names:?}");
        assert!(names.contains(&"StandardErrorFileDescriptor"), "{names:?}");
        assert!(names.contains(&"StandardOutput"), "{names:?}");
    }

    #[test]
    fn an_interactive_unit_uses_the_console_alone() {
        let mut unit = AppUnit::for_app(&full_plan());
        unit.attach_to_console();
        for stream in ["StandardInput", "StandardOutput", "StandardError"] {
            assert_eq!(property(&unit, stream), Value::from("tty"), "{stream}");
        }
        assert_eq!(property(&unit, "TTYPath"), Value::from(POD_CONSOLE));
        assert_eq!(
            unit.unit_file().matches("StandardOutput=").count(),
            1,
            "{}",
            unit.unit_file()
        );
    }
}
