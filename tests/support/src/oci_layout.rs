//! OCI image layouts written byte for byte, for tests that fetch from a layout directory.

use std::fs;
use std::path::{Path, PathBuf};

use rkt_store::oci::Digest;
use serde_json::json;

/// Writes an OCI image layout at `dir` with these layer blobs (tar or gzip bytes), lowest
/// first, and a config with an entrypoint; returns the layout's path.
pub fn write_layout(dir: &Path, layers: &[Vec<u8>]) -> PathBuf {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let digest = Digest::of(bytes);
        fs::write(blobs.join(digest.hex()), bytes).unwrap();
        (digest.to_string(), bytes.len())
    };
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/bin/app"], "Env": ["A=1"], "User": "1000:100"},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .unwrap();
    let (config_digest, config_size) = put(&config);
    let layer_descs: Vec<_> = layers
        .iter()
        .map(|l| {
            let (digest, size) = put(l);
            let media_type = if l.starts_with(&[0x1f, 0x8b]) {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            } else {
                "application/vnd.oci.image.layer.v1.tar"
            };
            json!({"mediaType": media_type, "digest": digest, "size": size})
        })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": layer_descs,
    }))
    .unwrap();
    let (manifest_digest, manifest_size) = put(&manifest);
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "1.0"}}]}))
        .unwrap(),
    )
    .unwrap();
    dir.to_owned()
}
