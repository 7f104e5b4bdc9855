//! The OCI image-spec documents rkt reads (index, manifest, config), the Docker schema 2
//! equivalents (same shapes, other media types), and choosing the host's entry in an index.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Digest, OciError};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The largest manifest, index or config accepted: far above real ones, small enough that a
/// hostile server cannot make us hold gigabytes.
pub const MAX_DOCUMENT_BYTES: u64 = 4 << 20;

/// What the `Accept` header of a manifest request lists.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// Layer media types rkt applies (compression is detected from the bytes anyway).
const LAYER_MEDIA_TYPES: &[&str] = &[
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    DOCKER_LAYER_GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The parts of an image configuration rkt uses.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// A manifest or an index, told apart by media type (or by shape when it has none, as in
/// early OCI layouts).
#[derive(Debug)]
pub enum Document {
    Manifest(Manifest),
    Index(Index),
}

impl Document {
    /// Parses a manifest or index; `content_type` is what the server said, if anything.
    pub fn parse(
        bytes: &[u8],
        content_type: Option<&str>,
        what: &str,
    ) -> Result<Document, OciError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            schema_version: Option<u32>,
            media_type: Option<String>,
            manifests: Option<serde_json::Value>,
        }
        check_nesting(bytes, what)?;
        let probe: Probe = serde_json::from_slice(bytes)
            .map_err(|e| OciError::invalid(what, format!("not a JSON manifest or index: {e}")))?;
        if probe.schema_version != Some(2) {
            return Err(OciError::invalid(
                what,
                format!(
                    "schemaVersion is {:?}, only 2 is supported (Docker schema 1 images are not)",
                    probe.schema_version
                ),
            ));
        }
        let content_type = content_type.map(|c| c.split(';').next().unwrap_or("").trim());
        let media_type = probe
            .media_type
            .as_deref()
            .or(content_type.filter(|c| MANIFEST_MEDIA_TYPES.contains(c)));
        let is_index = match media_type {
            Some(OCI_INDEX | DOCKER_LIST) => true,
            Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
            Some(other) => {
                return Err(OciError::MediaType {
                    what: what.to_owned(),
                    media_type: other.to_owned(),
                });
            }
            None => probe.manifests.is_some(),
        };
        let bad = |e: serde_json::Error| OciError::invalid(what, e);
        if is_index {
            Ok(Document::Index(serde_json::from_slice(bytes).map_err(bad)?))
        } else {
            let manifest: Manifest = serde_json::from_slice(bytes).map_err(bad)?;
            manifest.check(what)?;
            Ok(Document::Manifest(manifest))
        }
    }
}

impl Manifest {
    fn check(&self, what: &str) -> Result<(), OciError> {
        if !matches!(self.config.media_type.as_str(), OCI_CONFIG | DOCKER_CONFIG) {
            return Err(OciError::MediaType {
                what: format!("the config of {what}"),
                media_type: self.config.media_type.clone(),
            });
        }
        for layer in &self.layers {
            if !LAYER_MEDIA_TYPES.contains(&layer.media_type.as_str()) {
                return Err(OciError::MediaType {
                    what: format!("layer {} of {what}", layer.digest),
                    media_type: layer.media_type.clone(),
                });
            }
        }
        Ok(())
    }
}

impl ImageConfig {
    pub fn parse(bytes: &[u8], what: &str) -> Result<ImageConfig, OciError> {
        check_nesting(bytes, what)?;
        serde_json::from_slice(bytes).map_err(|e| OciError::invalid(what, e))
    }
}

/// Manifests and configs are kept in the store as fetched: one nested deeper than other
/// tools (or rkt's own readers) could read back is refused before it is kept.
fn check_nesting(bytes: &[u8], what: &str) -> Result<(), OciError> {
    if rkt_schema::nesting_within_limit(bytes) {
        return Ok(());
    }
    Err(OciError::invalid(
        what,
        format!(
            "it nests arrays and objects more than {} levels deep",
            rkt_schema::MAX_JSON_DEPTH
        ),
    ))
}

/// The platform rkt runs on, in OCI's names (Rust says `x86_64`, OCI says `amd64`).
pub fn host_platform() -> Platform {
    let (architecture, variant) = oci_arch(std::env::consts::ARCH);
    Platform {
        architecture: architecture.to_owned(),
        os: std::env::consts::OS.to_owned(),
        variant: variant.map(str::to_owned),
    }
}

/// Rust's `target_arch` names → OCI (Go's GOARCH) names and variant.
pub fn oci_arch(rust_arch: &str) -> (&str, Option<&str>) {
    match rust_arch {
        "x86_64" => ("amd64", None),
        "x86" => ("386", None),
        "aarch64" => ("arm64", None),
        "arm" => ("arm", Some("v7")),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
        "powerpc64" => ("ppc64", None),
        "riscv64" => ("riscv64", None),
        "s390x" => ("s390x", None),
        "loongarch64" => ("loong64", None),
        other => (other, None),
    }
}

/// OCI architecture names → appc's `arch` label values (aci.md's table).
pub fn appc_arch(oci_arch: &str, variant: Option<&str>) -> Option<&'static str> {
    Some(match (oci_arch, variant) {
        ("amd64", _) => "amd64",
        ("386", _) => "i386",
        ("arm64", _) => "aarch64",
        ("arm", Some("v6")) => "armv6l",
        ("arm", _) => "armv7l",
        ("ppc64", _) => "ppc64",
        ("ppc64le", _) => "ppc64le",
        ("s390x", _) => "s390x",
        _ => return None,
    })
}

/// Picks the index entry for `platform`: same os and architecture, and the same variant when
/// both name one. Entries without a platform (attestations, nested indexes) are used only if
/// the index has nothing else.
pub fn choose_manifest<'a>(
    index: &'a Index,
    platform: &Platform,
    image: &str,
) -> Result<&'a Descriptor, OciError> {
    let matches = |p: &Platform| {
        p.os == platform.os
            && p.architecture == platform.architecture
            && match (&p.variant, &platform.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    };
    if let Some(found) = index
        .manifests
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(matches))
    {
        return Ok(found);
    }
    let without_platform: Vec<_> = index
        .manifests
        .iter()
        .filter(|d| d.platform.is_none())
        .collect();
    if without_platform.len() == 1 && without_platform.len() == index.manifests.len() {
        return Ok(without_platform[0]);
    }
    let available: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref().map(ToString::to_string))
        .collect();
    Err(OciError::NoPlatform {
        image: image.to_owned(),
        wanted: platform.to_string(),
        available: if available.is_empty() {
            "no platforms".to_owned()
        } else {
            available.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(arch: &str, variant: Option<&str>, n: char) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: Digest::parse(&format!("sha256:{}", n.to_string().repeat(64))).unwrap(),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(Into::into),
            }),
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn host_is_mapped_to_oci_names() {
        assert_eq!(oci_arch("x86_64"), ("amd64", None));
        assert_eq!(oci_arch("aarch64"), ("arm64", None));
        assert_eq!(appc_arch("arm64", Some("v8")), Some("aarch64"));
        let host = host_platform();
        assert_eq!(host.os, "linux");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(host.architecture, "amd64");
        }
    }

    #[test]
    fn index_resolves_to_the_requested_platform() {
        let index = Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: vec![
                desc("arm", Some("v6"), 'a'),
                desc("arm", Some("v7"), 'b'),
                desc("amd64", None, 'c'),
            ],
        };
        let want = |arch: &str, variant: Option<&str>| Platform {
            architecture: arch.into(),
            os: "linux".into(),
            variant: variant.map(Into::into),
        };
        assert_eq!(
            choose_manifest(&index, &want("amd64", None), "x")
                .unwrap()
                .digest
                .hex(),
            "c".repeat(64)
        );
        assert_eq!(
            choose_manifest(&index, &want("arm", Some("v7")), "x")
                .unwrap()
                .digest
                .hex(),
            "b".repeat(64)
        );
        let err = choose_manifest(&index, &want("s390x", None), "x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linux/s390x") && err.contains("linux/arm/v6"),
            "{err}"
        );
    }

    #[test]
    fn documents_are_told_apart() {
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"sha256:{h}","size":3}},"layers":[]}}"#,
            h = "0".repeat(64)
        );
        assert!(matches!(
            Document::parse(m.as_bytes(), None, "m").unwrap(),
            Document::Manifest(_)
        ));
        let i = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            Document::parse(i.as_bytes(), None, "i").unwrap(),
            Document::Index(_)
        ));
        assert!(
            Document::parse(b"<html>", None, "g")
                .unwrap_err()
                .to_string()
                .contains("not a JSON")
        );
        assert!(Document::parse(br#"{"schemaVersion":1}"#, None, "s1").is_err());
    }
}
