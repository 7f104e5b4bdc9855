//! `--port NAME:[HOSTIP:]HOSTPORT`: a host port forwarded to the port an app of the pod
//! declares under NAME (image manifest `app.ports`). Kept in the pod manifest's `ports` (as
//! the appc spec and the original rkt do); stage1 turns them into the CNI portmap plugin's
//! `portMappings`.

use std::net::Ipv4Addr;

use rkt_schema::{AcName, ExposedPort, Port};

/// One host port forwarded to the pod, as the portmap plugin's `portMappings` capability
/// takes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Only connections to this host address are forwarded; empty: every address.
    #[serde(rename = "hostIP", default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}

/// A `--port` that cannot be forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    #[error(
        "--port={0}: give NAME:[HOSTIP:]HOSTPORT, NAME a port the image declares (e.g. http:8080 or http:127.0.0.1:8080)"
    )]
    Syntax(String),
    #[error(
        "--port={name}:…: no app in the pod declares a port named {name:?} (declared: {declared})"
    )]
    Undeclared { name: String, declared: String },
    #[error("--port: host port {0} is given twice")]
    HostPortTwice(u16),
    #[error(
        "--port={name}:{host_port}: the port range {name:?} ({count} ports) would go past host port 65535"
    )]
    RangeTooHigh {
        name: String,
        host_port: u16,
        count: u16,
    },
}

/// Parses one `--port` value.
pub fn parse_port_flag(value: &str) -> Result<ExposedPort, PortError> {
    let bad = || PortError::Syntax(value.to_owned());
    let (name, rest) = value.split_once(':').ok_or_else(bad)?;
    let (host_ip, host_port) = match rest.rsplit_once(':') {
        Some((ip, port)) => (Some(ip.parse::<Ipv4Addr>().map_err(|_| bad())?), port),
        None => (None, rest),
    };
    let host_port: u16 = host_port.parse().map_err(|_| bad())?;
    if host_port == 0 {
        return Err(bad());
    }
    Ok(ExposedPort {
        name: AcName::try_from(name).map_err(|_| bad())?,
        host_port,
        host_ip,
        pod_port: None,
    })
}

/// The mappings the exposed ports make, given the ports the pod's apps declare: each name
/// must be declared by an app; a range of `count` ports takes as many host ports.
pub fn port_mappings(
    exposed: &[ExposedPort],
    declared: &[Port],
) -> Result<Vec<PortMapping>, PortError> {
    let mut out: Vec<PortMapping> = Vec::new();
    for port in exposed {
        let app_port = port
            .pod_port
            .as_ref()
            .filter(|p| p.name == port.name)
            .or_else(|| declared.iter().find(|p| p.name == port.name))
            .ok_or_else(|| PortError::Undeclared {
                name: port.name.to_string(),
                declared: match declared.is_empty() {
                    true => "none".to_owned(),
                    false => declared
                        .iter()
                        .map(|p| format!("{} ({}/{})", p.name, p.port, p.protocol))
                        .collect::<Vec<_>>()
                        .join(", "),
                },
            })?;
        let count = app_port.count.max(1);
        if u32::from(port.host_port) + u32::from(count) - 1 > u32::from(u16::MAX) {
            return Err(PortError::RangeTooHigh {
                name: port.name.to_string(),
                host_port: port.host_port,
                count,
            });
        }
        for i in 0..count {
            let host_port = port.host_port + i;
            let protocol = app_port.protocol.to_ascii_lowercase();
            if out
                .iter()
                .any(|m| m.host_port == host_port && m.protocol == protocol)
            {
                return Err(PortError::HostPortTwice(host_port));
            }
            out.push(PortMapping {
                host_port,
                container_port: app_port.port.saturating_add(i),
                protocol,
                host_ip: port.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(name: &str, protocol: &str, port: u16, count: u16) -> Port {
        Port {
            name: AcName::try_from(name).unwrap(),
            protocol: protocol.into(),
            port,
            count,
            socket_activated: false,
        }
    }

    #[test]
    fn flags_parse() {
        let p = parse_port_flag("http:8080").unwrap();
        assert_eq!(
            (p.name.as_str(), p.host_port, p.host_ip),
            ("http", 8080, None)
        );
        let p = parse_port_flag("http:127.0.0.1:8080").unwrap();
        assert_eq!(p.host_ip, Some(Ipv4Addr::LOCALHOST));
        for bad in [
            "http",
            "http:",
            "http:0",
            "http:70000",
            "http:1.2.3:80",
            ":80",
            "Bad_Name:80",
            "http:[::1]:80",
        ] {
            assert_eq!(
                parse_port_flag(bad).err(),
                Some(PortError::Syntax(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_map_to_declared_ports() {
        let apps = [
            declared("http", "tcp", 80, 1),
            declared("dns", "UDP", 53, 1),
            declared("range", "tcp", 9000, 3),
        ];
        let exposed = [
            parse_port_flag("http:127.0.0.1:8080").unwrap(),
            parse_port_flag("dns:5353").unwrap(),
            parse_port_flag("range:19000").unwrap(),
        ];
        let maps = port_mappings(&exposed, &apps).unwrap();
        let short: Vec<_> = maps
            .iter()
            .map(|m| {
                format!(
                    "{}:{}->{}/{}",
                    m.host_ip, m.host_port, m.container_port, m.protocol
                )
            })
            .collect();
        assert_eq!(
            short,
            [
                "127.0.0.1:8080->80/tcp",
                ":5353->53/udp",
                ":19000->9000/tcp",
                ":19001->9001/tcp",
                ":19002->9002/tcp"
            ]
        );
    }

    #[test]
    fn undeclared_and_clashing_ports_are_refused() {
        let apps = [declared("http", "tcp", 80, 1), declared("r", "tcp", 1, 2)];
        let err = port_mappings(&[parse_port_flag("ftp:2121").unwrap()], &apps).unwrap_err();
        assert!(matches!(&err, PortError::Undeclared { name, .. } if name == "ftp"));
        assert!(err.to_string().contains("http (80/tcp)"), "{err}");
        let err = port_mappings(&[parse_port_flag("http:80").unwrap()], &[]).unwrap_err();
        assert!(err.to_string().contains("declared: none"), "{err}");
        let twice = [
            parse_port_flag("http:8080").unwrap(),
            parse_port_flag("r:8079").unwrap(),
        ];
        assert_eq!(
            port_mappings(&twice, &apps),
            Err(PortError::HostPortTwice(8080))
        );
        assert!(matches!(
            port_mappings(&[parse_port_flag("r:65535").unwrap()], &apps),
            Err(PortError::RangeTooHigh { .. })
        ));
    }
}
