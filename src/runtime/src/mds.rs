//! `AC_METADATA_URL` for the apps of a pod registered with the metadata service: where the
//! pod reaches the host (loopback when it shares the host's network, the gateway of its CNI
//! network otherwise) and the pod's token.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use rkt_pod::{PodNet, read_mds_token};

use super::PodNetStatus;

/// Why a registered pod's apps get no URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MdsUrlError {
    #[error("the pod has no network to reach the metadata service on (--net=none)")]
    NoNetwork,
    #[error(
        "CNI network {0:?} gave the pod no gateway to reach the metadata service on; set the \
         gateway in its ipam section (or isGateway for bridge)"
    )]
    NoGateway(String),
}

/// The URL for the pod in `pod_dir`: `Ok(None)` when it was not registered.
pub fn metadata_url(
    pod_dir: &Path,
    net: PodNet,
    network: Option<&PodNetStatus>,
) -> Result<Option<String>, MdsUrlError> {
    let Some(token) = read_mds_token(pod_dir) else {
        return Ok(None);
    };
    let host = match (net, network) {
        (PodNet::Host, _) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        (PodNet::Cni, Some(status)) => status
            .gateway
            .as_deref()
            .and_then(|g| g.split('/').next()?.parse().ok())
            .ok_or_else(|| MdsUrlError::NoGateway(status.name.clone()))?,
        _ => return Err(MdsUrlError::NoNetwork),
    };
    Ok(Some(rkt_pod::registration::metadata_url(host, &token)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(gateway: Option<&str>) -> PodNetStatus {
        PodNetStatus {
            name: "br".into(),
            ips: vec!["10.1.0.2/24".into()],
            conf: serde_json::Value::Null,
            gateway: gateway.map(str::to_owned),
            ports: Vec::new(),
            result: serde_json::Value::Null,
            masquerade: None,
        }
    }

    #[test]
    fn url_by_network() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(metadata_url(dir.path(), PodNet::Host, None), Ok(None));
        std::fs::write(rkt_pod::PodDir::at(dir.path()).mds_token(), "tok\n").unwrap();
        assert_eq!(
            metadata_url(dir.path(), PodNet::Host, None)
                .unwrap()
                .unwrap(),
            "http://127.0.0.1:18112/tok"
        );
        assert_eq!(
            metadata_url(dir.path(), PodNet::Cni, Some(&status(Some("10.1.0.1"))))
                .unwrap()
                .unwrap(),
            "http://10.1.0.1:18112/tok"
        );
        assert_eq!(
            metadata_url(dir.path(), PodNet::Cni, Some(&status(None))),
            Err(MdsUrlError::NoGateway("br".into()))
        );
        assert_eq!(
            metadata_url(dir.path(), PodNet::None, None),
            Err(MdsUrlError::NoNetwork)
        );
    }
}
