//! An app's unit as a unit file, for the one case where it cannot be a transient unit: a
//! socket-activated app, whose `<app>.socket` must exist (with its service) when the pod's
//! systemd boots, since that is the only moment it takes in the sockets it was given.

use zbus::zvariant::Value;

use rkt_pod::plan::capability_names;

/// Why an app's unit properties cannot be written as a unit file.
#[derive(Debug, thiserror::Error)]
#[error("app unit property {name} cannot be written into a unit file ({value})")]
pub struct UnitFileError {
    pub name: String,
    pub value: String,
}

/// The `[Service]` unit file with the same meaning as the transient unit `properties` (as
/// [`super::app_unit_properties`] makes them); `CollectMode` is left out, so that stage1 can
/// still read how an app that ended before it looked has ended.
pub fn service_unit_file(
    description: &str,
    properties: &[(&str, Value<'_>)],
) -> Result<String, UnitFileError> {
    let mut unit = format!("[Unit]\nDescription={}\n\n[Service]\n", escape(description));
    for (name, value) in properties {
        let bad = || UnitFileError {
            name: (*name).to_owned(),
            value: value.to_string(),
        };
        let line = match (*name, value) {
            ("Description" | "CollectMode", _) => continue,
            ("CapabilityBoundingSet" | "AmbientCapabilities", Value::U64(mask)) => {
                format!("{name}={}", capability_names(*mask).join(" "))
            }
            // CPUQuota= takes a percentage of one CPU: 10 000 µs per s is 1 %.
            ("CPUQuotaPerSecUSec", Value::U64(usec)) => {
                format!("CPUQuota={}%", usec.div_ceil(10_000))
            }
            // Microseconds on the bus, a time span in the file.
            ("TimeoutStartUSec" | "TimeoutStopUSec", Value::U64(usec)) => {
                let key = name.replace("USec", "Sec");
                match *usec {
                    u64::MAX => format!("{key}=infinity"),
                    usec => format!("{key}={usec}us"),
                }
            }
            ("ExecStart" | "ExecStartPre" | "ExecStopPost", Value::Array(commands)) => {
                let mut lines = Vec::new();
                for command in commands.iter() {
                    let Value::Structure(fields) = command else {
                        return Err(bad());
                    };
                    let [_, Value::Array(argv), Value::Bool(_)] = fields.fields() else {
                        return Err(bad());
                    };
                    // Already escaped for systemd's `$` expansion (app_unit_properties).
                    let argv: Vec<String> = argv
                        .iter()
                        .map(|a| string(a).map(|a| quote(&a)))
                        .collect::<Option<_>>()
                        .ok_or_else(bad)?;
                    lines.push(format!("{name}={}", argv.join(" ")));
                }
                lines.join("\n")
            }
            ("Environment", Value::Array(vars)) => vars
                .iter()
                .map(|v| string(v).map(|v| format!("Environment={}", quote(&v))))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(bad)?
                .join("\n"),
            // (allow-list?, syscalls): a deny list starts with "~".
            ("SystemCallFilter", Value::Structure(fields)) => match fields.fields() {
                [Value::Bool(allow), Value::Array(calls)] => {
                    let calls: Vec<String> = calls
                        .iter()
                        .map(string)
                        .collect::<Option<_>>()
                        .ok_or_else(bad)?;
                    let sign = if *allow { "" } else { "~" };
                    format!("{name}={sign}{}", calls.join(" "))
                }
                _ => return Err(bad()),
            },
            (_, Value::Str(s)) => format!("{name}={}", escape(s)),
            (_, Value::Bool(b)) => format!("{name}={}", if *b { "yes" } else { "no" }),
            (_, Value::U64(n)) => format!("{name}={n}"),
            (_, Value::U32(n)) => format!("{name}={n}"),
            (_, Value::I32(n)) => format!("{name}={n}"),
            (_, Value::I64(n)) => format!("{name}={n}"),
            (_, Value::Array(items)) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|i| string(i).map(|i| escape(&i)))
                    .collect::<Option<_>>()
                    .ok_or_else(bad)?;
                format!("{name}={}", items.join(" "))
            }
            _ => return Err(bad()),
        };
        unit.push_str(&line);
        unit.push('\n');
    }
    Ok(unit)
}

fn string(value: &Value<'_>) -> Option<String> {
    match value {
        Value::Str(s) => Some(s.to_string()),
        _ => None,
    }
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
    use super::*;
    use crate::app_unit_properties;
    use rkt_pod::plan::{AppPlan, Limits};

    fn plan() -> AppPlan {
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

    #[test]
    fn an_app_unit_reads_as_a_unit_file() {
        let unit = service_unit_file("rkt app web", &app_unit_properties(&plan())).unwrap();
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
    }

    #[test]
    fn a_notify_app_unit_reads_as_a_unit_file() {
        let mut props = app_unit_properties(&plan());
        crate::make_notify_unit(&mut props);
        let unit = service_unit_file("rkt app web", &props).unwrap();
        for line in [
            "Type=notify",
            "NotifyAccess=main",
            "TimeoutStartSec=infinity",
        ] {
            assert!(unit.lines().any(|l| l == line), "{line:?} not in:\n{unit}");
        }
        assert!(!unit.contains("USec"), "{unit}");
    }

    #[test]
    fn an_unknown_shape_is_refused() {
        let props = [("BindPaths", Value::from((1u8, 2u8)))];
        let err = service_unit_file("x", &props).unwrap_err();
        assert_eq!(err.name, "BindPaths");
    }
}
