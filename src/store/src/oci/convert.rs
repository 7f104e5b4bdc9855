//! The appc image manifest rkt makes from an OCI image's config, as docker2aci did: so that
//! `rkt run`, `image list` and `cat-manifest` treat the image like any ACI.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{ImageConfig, OciError, ResolvedImage, appc_arch};
use rkt_schema::{AcIdentifier, AcName, ImageManifest};

/// Builds (and validates) the appc manifest of `image`; returns it with its JSON bytes.
///
/// - name: the image's name made a valid AC Identifier (`127.0.0.1:5000/app` →
///   `127.0.0.1-5000/app`); labels `version` (the tag), `os`, `arch` (appc's names);
/// - app: exec = Entrypoint + Cmd, user/group from `User` (`0` when unset), environment,
///   working directory, ports from ExposedPorts;
/// - annotations: the config's labels (names made valid), its author and creation time, and
///   where the image came from.
pub fn appc_manifest(
    image: &ResolvedImage,
    config: &ImageConfig,
) -> Result<(ImageManifest, Vec<u8>), OciError> {
    let name = AcIdentifier::sanitize(&image.name)?;
    let mut labels = Vec::new();
    if let Some(tag) = &image.tag {
        labels.push(json!({"name": "version", "value": tag}));
    }
    if config.os == "linux" {
        labels.push(json!({"name": "os", "value": "linux"}));
        if let Some(arch) = appc_arch(&config.architecture, config.variant.as_deref()) {
            labels.push(json!({"name": "arch", "value": arch}));
        }
    }

    let container = config.config.clone().unwrap_or_default();
    let exec: Vec<String> = container
        .entrypoint
        .iter()
        .flatten()
        .chain(container.cmd.iter().flatten())
        .cloned()
        .collect();
    let (user, group) = match container.user.as_deref().filter(|u| !u.is_empty()) {
        Some(u) => match u.split_once(':') {
            Some((user, group)) => (user.to_owned(), group.to_owned()),
            None => (u.to_owned(), "0".to_owned()),
        },
        None => ("0".to_owned(), "0".to_owned()),
    };
    // Later definitions win, as in a shell.
    let mut env: Vec<(String, String)> = Vec::new();
    for var in container.env.iter().flatten() {
        let (k, v) = var.split_once('=').unwrap_or((var, ""));
        env.retain(|(name, _)| name != k);
        env.push((k.to_owned(), v.to_owned()));
    }
    let mut ports = Vec::new();
    for spec in container.exposed_ports.iter().flat_map(|p| p.keys()) {
        let (port, protocol) = spec.split_once('/').unwrap_or((spec, "tcp"));
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        let name = AcName::sanitize(&format!("{port}-{protocol}"))?;
        ports.push(json!({"name": name.as_str(), "protocol": protocol, "port": port}));
    }
    let mut app = json!({
        "exec": exec,
        "user": user,
        "group": group,
        "environment": env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "ports": ports,
    });
    if let Some(dir) = container
        .working_dir
        .as_deref()
        .filter(|d| d.starts_with('/'))
    {
        app["workingDirectory"] = json!(dir);
    }

    let mut annotations: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in container.labels.iter().flatten() {
        if let Ok(key) = AcIdentifier::sanitize(key) {
            annotations.insert(key.as_str().to_owned(), value.clone());
        }
    }
    if let Some(author) = &config.author {
        annotations.insert("authors".into(), author.clone());
    }
    if let Some(created) = &config.created {
        annotations.insert("created".into(), created.clone());
    }
    annotations.insert("appc.io/oci/source".into(), image.source.clone());
    annotations.insert(
        "appc.io/oci/manifest-digest".into(),
        image.manifest_digest.to_string(),
    );
    let manifest = json!({
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": name.as_str(),
        "labels": labels,
        "app": app,
        "annotations": annotations
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect::<Vec<Value>>(),
    });
    let bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    let parsed = ImageManifest::from_json(&bytes)?;
    Ok((parsed, bytes))
}
