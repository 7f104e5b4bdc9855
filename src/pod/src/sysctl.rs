//! The pod-level `os/unix/sysctl` isolator: kernel parameters set in the pod's own network
//! namespace before its apps start. Only parameters that belong to that namespace (`net.*`)
//! are accepted: anything else would change the host.

use std::collections::BTreeMap;

use rkt_schema::{IsolatorValue, PodManifest};

/// A sysctl the pod cannot be given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SysctlError {
    #[error("--sysctl={0}: give NAME=VALUE, e.g. net.ipv4.ip_unprivileged_port_start=0")]
    Syntax(String),
    #[error(
        "sysctl {0:?}: only the pod's own network parameters (net.*, e.g. net.ipv4.ip_unprivileged_port_start) can be set; others would change the host"
    )]
    NotNamespaced(String),
    #[error("sysctl {name}={value:?}: the value must be one line of printable characters")]
    BadValue { name: String, value: String },
    #[error(
        "sysctl {0}: the pod shares the host's network (--net=host); give it its own (--net=none, --net=default or a CNI network)"
    )]
    HostNetwork(String),
    #[error("{0}")]
    Isolator(String),
    #[error("setting sysctl {name} in the pod's network namespace: {error}")]
    Apply { name: String, error: std::io::Error },
}

/// The `NAME=VALUE` of a `--sysctl` flag, checked.
pub fn parse_sysctl(flag: &str) -> Result<(String, String), SysctlError> {
    let (name, value) = flag
        .split_once('=')
        .ok_or_else(|| SysctlError::Syntax(flag.to_owned()))?;
    check_sysctl(name, value)?;
    Ok((name.to_owned(), value.to_owned()))
}

/// A `net.` name of plain words (no `/`, no `..`: it becomes a path under /proc/sys), and a
/// value the kernel reads as one line.
pub fn check_sysctl(name: &str, value: &str) -> Result<(), SysctlError> {
    let words_ok = name.split('.').all(|w| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    if !name.starts_with("net.") || !words_ok {
        return Err(SysctlError::NotNamespaced(name.to_owned()));
    }
    if value.is_empty()
        || !value
            .chars()
            .all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic())
    {
        return Err(SysctlError::BadValue {
            name: name.to_owned(),
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// The sysctls of the pod manifest's `os/unix/sysctl` isolators, each checked.
pub fn pod_sysctls(manifest: &PodManifest) -> Result<BTreeMap<String, String>, SysctlError> {
    let mut out = BTreeMap::new();
    for isolator in &manifest.isolators {
        if let Some(IsolatorValue::Sysctl(map)) = isolator
            .parse()
            .map_err(|e| SysctlError::Isolator(e.to_string()))?
        {
            for (name, value) in map {
                check_sysctl(&name, &value)?;
                out.insert(name, value);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_network_sysctls_with_sane_values() {
        assert_eq!(
            parse_sysctl("net.ipv4.ip_unprivileged_port_start=80").unwrap(),
            ("net.ipv4.ip_unprivileged_port_start".into(), "80".into())
        );
        check_sysctl("net.ipv4.ping_group_range", "0 2147483647").unwrap();
        for bad in [
            "kernel.hostname=x",
            "vm.swappiness=1",
            "net..x=1",
            "net.ipv4/../../kernel.x=1",
            "net=1",
        ] {
            assert!(
                matches!(parse_sysctl(bad), Err(SysctlError::NotNamespaced(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_sysctl("net.ipv4.x"),
            Err(SysctlError::Syntax(_))
        ));
        assert!(matches!(
            check_sysctl("net.ipv4.x", "1\nkernel.x=2"),
            Err(SysctlError::BadValue { .. })
        ));
        assert!(check_sysctl("net.ipv4.x", "").is_err());
    }

    #[test]
    fn read_from_the_pod_manifest() {
        let manifest: PodManifest = serde_json::from_value(serde_json::json!({
            "acVersion": "0.8.11", "acKind": "PodManifest", "apps": [],
            "isolators": [{"name": "os/unix/sysctl",
                           "value": {"net.ipv4.ip_forward": "1"}}]
        }))
        .unwrap();
        let sysctls = pod_sysctls(&manifest).unwrap();
        assert_eq!(
            sysctls.get("net.ipv4.ip_forward").map(String::as_str),
            Some("1")
        );
        let host: PodManifest = serde_json::from_value(serde_json::json!({
            "acVersion": "0.8.11", "acKind": "PodManifest", "apps": [],
            "isolators": [{"name": "os/unix/sysctl", "value": {"kernel.msgmax": "1"}}]
        }))
        .unwrap();
        assert!(matches!(
            pod_sysctls(&host),
            Err(SysctlError::NotNamespaced(_))
        ));
    }
}
