//! An app's transient unit: the plan of one app (see `rkt_pod::plan`) as the properties the
//! pod's systemd gets for it.

use zbus::zvariant::Value;

use rkt_pod::plan::AppPlan;

use super::app_rootfs_in_pod;

/// One command for ExecStart= and its kin: (path, argv, ignore failure). systemd expands
/// `$NAME` in them at exec time; an app's arguments are literal, and `$$` is how a literal
/// `$` reaches it.
fn exec_command(argv: &[String]) -> Value<'static> {
    let escaped: Vec<String> = argv.iter().map(|a| a.replace('$', "$$")).collect();
    Value::from(vec![(argv[0].clone(), escaped, false)])
}

/// The app's transient unit: its own root, identity and environment, output to the journal
/// under the app's name, and its isolators.
pub fn app_unit_properties(plan: &AppPlan) -> Vec<(&'static str, Value<'static>)> {
    let exec_start = exec_command(&plan.exec);
    let env: Vec<String> = plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut props = vec![
        ("Description", Value::from(format!("rkt app {}", plan.name))),
        // Reports a failed exec as a failed start, not as a run that exited.
        ("Type", Value::from("exec")),
        ("RootDirectory", Value::from(app_rootfs_in_pod(&plan.name))),
        ("WorkingDirectory", Value::from(plan.workdir.clone())),
        ("User", Value::from(plan.uid.to_string())),
        ("Group", Value::from(plan.gid.to_string())),
        ("SyslogIdentifier", Value::from(plan.name.clone())),
        ("StandardOutput", Value::from("journal")),
        ("StandardError", Value::from("journal")),
        // The spec promises /proc, /sys and /dev in every app.
        ("MountAPIVFS", Value::from(true)),
        ("Environment", Value::from(env)),
        ("ExecStart", exec_start),
        // Nothing of an ended app lingers (its status is read as it ends).
        ("CollectMode", Value::from("inactive-or-failed")),
        (
            "CapabilityBoundingSet",
            Value::from(plan.limits.capabilities),
        ),
        (
            "NoNewPrivileges",
            Value::from(plan.limits.no_new_privileges),
        ),
    ];
    if !plan.limits.open_kernel_paths {
        // MountAPIVFS gives the app a /proc of its own, writable, which would undo nspawn's
        // read-only /proc/sys: the host's tunables (kernel.core_pattern runs a program as the
        // host's root). These make /proc/sys, /sys and the cgroup tree read-only again, hide
        // the kernel log and refuse module loading, in the app's own mount namespace.
        for property in [
            "ProtectKernelTunables",
            "ProtectControlGroups",
            "ProtectKernelModules",
            "ProtectKernelLogs",
        ] {
            props.push((property, Value::from(true)));
        }
    }
    if plan.uid != 0 {
        // A non-root app gets its bounding set as ambient capabilities, as rkt did; root has
        // them all already.
        props.push(("AmbientCapabilities", Value::from(plan.limits.capabilities)));
    }
    if !plan.supplementary_gids.is_empty() {
        let gids: Vec<String> = plan.supplementary_gids.iter().map(u32::to_string).collect();
        props.push(("SupplementaryGroups", Value::from(gids)));
    }
    if plan.read_only_root {
        // Inside RootDirectory: the app's whole tree (API file systems stay as they are).
        props.push(("ProtectSystem", Value::from("strict")));
        if !plan.writable_paths.is_empty() {
            // Writable volumes stay writable; "+": the paths are inside RootDirectory.
            let paths: Vec<String> = plan
                .writable_paths
                .iter()
                .map(|p| format!("+{p}"))
                .collect();
            props.push(("ReadWritePaths", Value::from(paths)));
        }
    }
    // systemd runs both in the unit's root, as the app's user, with its environment.
    if let Some(exec) = &plan.pre_start {
        props.push(("ExecStartPre", exec_command(exec)));
    }
    if let Some(exec) = &plan.post_stop {
        props.push(("ExecStopPost", exec_command(exec)));
    }
    if let Some(bytes) = plan.limits.memory_max {
        props.push(("MemoryMax", Value::from(bytes)));
    }
    if let Some(usec) = plan.limits.cpu_quota_usec {
        props.push(("CPUQuotaPerSecUSec", Value::from(usec)));
    }
    if let Some(weight) = plan.limits.cpu_weight {
        props.push(("CPUWeight", Value::from(weight)));
    }
    if let Some((allow, syscalls)) = &plan.limits.syscall_filter {
        props.push(("SystemCallFilter", Value::from((*allow, syscalls.clone()))));
    }
    if let Some(errno) = plan.limits.syscall_errno {
        props.push(("SystemCallErrorNumber", Value::from(errno)));
    }
    if let Some(adj) = plan.limits.oom_score_adj {
        props.push(("OOMScoreAdjust", Value::from(adj)));
    }
    props
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

    #[test]
    fn every_app_gets_read_only_kernel_paths_unless_paths_are_insecure() {
        let props = app_unit_properties(&root_plan(limits("t", &app("[]")).unwrap()));
        for name in KERNEL_PROTECTIONS {
            let values: Vec<&Value> = props
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v)
                .collect();
            assert_eq!(values, [&Value::from(true)], "{name}");
        }
        let mut open = limits("t", &app("[]")).unwrap();
        open.relax(&PodOptions {
            open_kernel_paths: true,
            ..PodOptions::default()
        });
        let props = app_unit_properties(&root_plan(open));
        for name in KERNEL_PROTECTIONS {
            assert!(!props.iter().any(|(n, _)| *n == name), "{name} still set");
        }
        // The other isolators stay: only the kernel paths were opened.
        assert!(props.iter().any(|(n, _)| *n == "SystemCallFilter"));
    }

    #[test]
    fn properties_carry_identity_and_limits() {
        let plan = AppPlan {
            name: "web".into(),
            exec: vec!["/bin/x".into(), "a".into()],
            uid: 1000,
            gid: 1000,
            supplementary_gids: vec![10, 20],
            workdir: "/srv".into(),
            env: vec![("A".into(), "1".into())],
            read_only_root: true,
            limits: Limits {
                memory_max: Some(1 << 20),
                capabilities: 1,
                ..Limits::default()
            },
            pre_start: Some(vec!["/bin/pre".into(), "x".into()]),
            post_stop: None,
            writable_paths: vec!["/data".into()],
        };
        let props = app_unit_properties(&plan);
        let get = |k: &str| {
            props
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {k}"))
        };
        assert_eq!(get("User"), Value::from("1000"));
        assert_eq!(get("WorkingDirectory"), Value::from("/srv"));
        assert_eq!(get("MemoryMax"), Value::from(1u64 << 20));
        assert_eq!(get("AmbientCapabilities"), Value::from(1u64));
        assert_eq!(get("ProtectSystem"), Value::from("strict"));
        assert_eq!(
            get("SupplementaryGroups"),
            Value::from(vec!["10".to_owned(), "20".to_owned()])
        );
        assert!(!props.iter().any(|(n, _)| *n == "CPUQuotaPerSecUSec"));
        assert_eq!(
            get("ExecStartPre"),
            Value::from(vec![(
                "/bin/pre".to_owned(),
                vec!["/bin/pre".to_owned(), "x".to_owned()],
                false
            )])
        );
        assert!(!props.iter().any(|(n, _)| *n == "ExecStopPost"));
        assert_eq!(
            get("ReadWritePaths"),
            Value::from(vec!["+/data".to_owned()])
        );
    }
}
