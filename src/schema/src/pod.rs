//! The pod manifest (spec/pods.md): apps, volumes, pod isolators, annotations and exposed ports.
//!
//! A pod manifest is either a template or, before execution, *reified*: every app names its
//! image by ID and every mount names a volume. [`PodManifest::validate`] checks the reified
//! form; [`PodManifest::validate_template`] the rest.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Deserializer, Serialize};

use super::error::{Result, SchemaError, from_json, nullable};
use super::image::{App, MountPoint, Port, port_number};
use super::isolator::{Isolator, IsolatorScope, validate_isolators};
use super::types::{
    AcIdentifier, AcKind, AcName, AcVersion, Annotation, AnnotationNames, ImageId, Label,
    check_absolute, optional_image_id, validate_annotations, validate_labels,
};

/// A pod: apps sharing PID, network, IPC and UTS namespaces.
///
/// The pod-level lists are always written, as `[]` when empty: the metadata service serves
/// `annotations` on its own and validators compare the two (Go writes `null` for absent lists,
/// which this type also reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodManifest {
    /// Spec version the manifest was written for.
    pub ac_version: AcVersion,
    /// Always [`AcKind::PodManifest`] in a valid manifest.
    pub ac_kind: AcKind,
    /// The apps, with unique names.
    #[serde(deserialize_with = "nullable")]
    pub apps: Vec<RuntimeApp>,
    /// Volumes the apps' mounts refer to.
    #[serde(default, deserialize_with = "nullable")]
    pub volumes: Vec<Volume>,
    /// Isolators bounding the whole pod.
    #[serde(default, deserialize_with = "nullable")]
    pub isolators: Vec<Isolator>,
    /// Served by the metadata service at `/pod/annotations`.
    #[serde(default, deserialize_with = "nullable")]
    pub annotations: Vec<Annotation>,
    /// Ports to expose on the host.
    #[serde(default, deserialize_with = "nullable")]
    pub ports: Vec<ExposedPort>,
    /// End-user data; must not affect the executor.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub user_annotations: BTreeMap<String, String>,
    /// End-user labels; must not affect the executor.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub user_labels: BTreeMap<String, String>,
}

impl Default for PodManifest {
    /// An empty pod at the current spec version.
    fn default() -> PodManifest {
        PodManifest {
            ac_version: AcVersion::current(),
            ac_kind: AcKind::PodManifest,
            apps: Vec::new(),
            volumes: Vec::new(),
            isolators: Vec::new(),
            annotations: Vec::new(),
            ports: Vec::new(),
            user_annotations: BTreeMap::new(),
            user_labels: BTreeMap::new(),
        }
    }
}

impl PodManifest {
    /// An empty pod at the current spec version.
    pub fn new() -> PodManifest {
        PodManifest::default()
    }

    /// Parses and validates a reified manifest.
    pub fn from_json(bytes: &[u8]) -> Result<PodManifest> {
        let manifest: PodManifest = from_json(bytes, "manifest")?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Parses and validates a template (image IDs and volumes may still be missing).
    pub fn from_json_template(bytes: &[u8]) -> Result<PodManifest> {
        let manifest: PodManifest = from_json(bytes, "manifest")?;
        manifest.validate_template()?;
        Ok(manifest)
    }

    /// Checks a reified manifest: [`PodManifest::validate_template`] plus every app's image ID,
    /// every mount's volume, and every mount point of an app given here being mounted.
    pub fn validate(&self) -> Result<()> {
        self.check(true)
    }

    /// Checks the rules that hold for templates too.
    pub fn validate_template(&self) -> Result<()> {
        self.check(false)
    }

    fn check(&self, reified: bool) -> Result<()> {
        if self.ac_kind != AcKind::PodManifest {
            return Err(SchemaError::invalid(
                "acKind",
                format!("must be \"PodManifest\", not {:?}", self.ac_kind.as_str()),
            ));
        }
        self.ac_version
            .check_supported()
            .map_err(|rule| SchemaError::invalid("acVersion", rule))?;
        for (i, app) in self.apps.iter().enumerate() {
            let at = format!("apps[{i}]");
            if self.apps[..i].iter().any(|a| a.name == app.name) {
                return Err(SchemaError::invalid(
                    format!("{at}.name"),
                    format!("duplicate app name {:?}", app.name.as_str()),
                ));
            }
            self.check_app(app, &at, reified)?;
        }
        self.check_port_names_across_apps()?;
        for (i, vol) in self.volumes.iter().enumerate() {
            if self.volumes[..i].iter().any(|v| v.name == vol.name) {
                return Err(SchemaError::invalid(
                    format!("volumes[{i}].name"),
                    format!("duplicate volume {:?}", vol.name.as_str()),
                ));
            }
            vol.validate_at(&format!("volumes[{i}]"))?;
        }
        validate_isolators(&self.isolators, "isolators", IsolatorScope::Pod)?;
        validate_annotations(&self.annotations, "annotations", AnnotationNames::AcName)?;
        for (i, port) in self.ports.iter().enumerate() {
            if let Some(pod_port) = &port.pod_port {
                pod_port.validate_at(&format!("ports[{i}].podPort"))?;
            }
            if port.host_port == 0 {
                return Err(SchemaError::invalid(
                    format!("ports[{i}].hostPort"),
                    "must be between 1 and 65535",
                ));
            }
        }
        Ok(())
    }

    fn check_app(&self, app: &RuntimeApp, at: &str, reified: bool) -> Result<()> {
        if reified && app.image.id.is_none() {
            return Err(SchemaError::invalid(
                format!("{at}.image.id"),
                "is required in a reified pod manifest",
            ));
        }
        validate_labels(&app.image.labels, &format!("{at}.image.labels"))?;
        if let Some(inner) = &app.app {
            inner.validate_at(&format!("{at}.app"))?;
        }
        for (j, mount) in app.mounts.iter().enumerate() {
            let mount_at = format!("{at}.mounts[{j}]");
            check_absolute(&mount.path, &format!("{mount_at}.path"))?;
            match &mount.app_volume {
                Some(vol) => vol.validate_at(&format!("{mount_at}.appVolume"))?,
                None if reified && self.volume(&mount.volume).is_none() => {
                    return Err(SchemaError::invalid(
                        format!("{mount_at}.volume"),
                        format!("no volume named {:?} in volumes", mount.volume.as_str()),
                    ));
                }
                None => {}
            }
        }
        if let (true, Some(inner)) = (reified, &app.app) {
            for (k, mp) in inner.mount_points.iter().enumerate() {
                if app.mount_for(mp).is_none() {
                    return Err(SchemaError::invalid(
                        format!("{at}.app.mountPoints[{k}]"),
                        format!(
                            "mount point {:?} ({}) is not satisfied by any mount",
                            mp.name.as_str(),
                            mp.path
                        ),
                    ));
                }
            }
        }
        validate_annotations(
            &app.annotations,
            &format!("{at}.annotations"),
            AnnotationNames::AcName,
        )
    }

    /// pods.md: port names must be unique among apps, since pod `ports` refer to them by name.
    /// Only apps whose `app` is given here can be checked without their images.
    fn check_port_names_across_apps(&self) -> Result<()> {
        let mut seen: Vec<(&AcName, &AcName)> = Vec::new();
        for (i, app) in self.apps.iter().enumerate() {
            let Some(inner) = &app.app else { continue };
            for (k, port) in inner.ports.iter().enumerate() {
                if let Some((_, owner)) = seen.iter().find(|(name, _)| *name == &port.name) {
                    return Err(SchemaError::invalid(
                        format!("apps[{i}].app.ports[{k}].name"),
                        format!(
                            "duplicate port {:?} (already used by app {:?})",
                            port.name.as_str(),
                            owner.as_str()
                        ),
                    ));
                }
            }
            seen.extend(inner.ports.iter().map(|p| (&p.name, &app.name)));
        }
        Ok(())
    }

    /// Pretty JSON in the spec's field names.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifests have string keys only")
    }

    /// The app named `name`.
    pub fn app(&self, name: &str) -> Option<&RuntimeApp> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// The pod volume named `name`.
    pub fn volume(&self, name: &AcName) -> Option<&Volume> {
        self.volumes.iter().find(|v| &v.name == name)
    }

    /// The value of pod annotation `name`.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    }
}

/// An app of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeApp {
    /// Unique in the pod; `AC_APP_NAME` inside the app.
    pub name: AcName,
    /// The image providing the app.
    pub image: RuntimeImage,
    /// Replaces the image manifest's `app` when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<App>,
    /// Mount the rootfs read-only.
    #[serde(
        rename = "readOnlyRootFS",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub read_only_root_fs: bool,
    /// Volumes mapped into the app.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mounts: Vec<Mount>,
    /// Merged over the image's annotations by the metadata service (these win).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub annotations: Vec<Annotation>,
}

impl RuntimeApp {
    /// The mount that satisfies `mount_point`: one at the same path, or (the older
    /// convention) one whose volume has the mount point's name.
    pub fn mount_for(&self, mount_point: &MountPoint) -> Option<&Mount> {
        self.mounts
            .iter()
            .find(|m| m.path == mount_point.path)
            .or_else(|| self.mounts.iter().find(|m| m.volume == mount_point.name))
    }
}

/// Which image an app runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeImage {
    /// Image name, informational once the ID is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<AcIdentifier>,
    /// Image ID; required once reified. `""` (as Go writes it) reads as absent.
    #[serde(
        default,
        deserialize_with = "optional_image_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<ImageId>,
    /// Labels the image was chosen by.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub labels: Vec<Label>,
}

/// A volume mounted into an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    /// Pod volume to mount, unless `app_volume` is given.
    pub volume: AcName,
    /// Absolute target path inside the app.
    pub path: String,
    /// A volume for this mount only, overriding the lookup by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_volume: Option<Volume>,
}

/// The kinds of volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeKind {
    /// A bind mount of a host directory.
    Host,
    /// A directory created for the pod, shared by its apps, removed with the pod.
    Empty,
}

/// A pod volume. Optional fields stay `None` when absent so manifests round-trip; the
/// accessors give the spec's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// Name mounts refer to.
    pub name: AcName,
    /// `host` or `empty`.
    pub kind: VolumeKind,
    /// Absolute host path (host volumes only, required there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Mount read-only (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Recursive bind mount (host volumes; the executor should default to true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recursive: Option<bool>,
    /// Octal mode of the directory (empty volumes only, default `0755`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Owner (empty volumes only, default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Group (empty volumes only, default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

impl Volume {
    /// A host volume bind-mounting `source`.
    pub fn host(name: AcName, source: impl Into<String>) -> Volume {
        Volume {
            source: Some(source.into()),
            ..Volume::new(name, VolumeKind::Host)
        }
    }

    /// A volume of `kind` with nothing else set.
    pub fn new(name: AcName, kind: VolumeKind) -> Volume {
        Volume {
            name,
            kind,
            source: None,
            read_only: None,
            recursive: None,
            mode: None,
            uid: None,
            gid: None,
        }
    }

    /// Whether to mount read-only.
    pub fn read_only(&self) -> bool {
        self.read_only.unwrap_or(false)
    }

    /// Whether to bind recursively (pods.md: executors should default to recursive).
    pub fn recursive(&self) -> bool {
        self.recursive.unwrap_or(true)
    }

    /// Permission bits of an empty volume's directory.
    pub fn mode_bits(&self) -> u32 {
        self.mode
            .as_deref()
            .and_then(|m| u32::from_str_radix(m, 8).ok())
            .unwrap_or(0o755)
    }

    /// Owner of an empty volume's directory.
    pub fn uid(&self) -> u32 {
        self.uid.unwrap_or(0)
    }

    /// Group of an empty volume's directory.
    pub fn gid(&self) -> u32 {
        self.gid.unwrap_or(0)
    }

    pub(crate) fn validate_at(&self, field: &str) -> Result<()> {
        match self.kind {
            VolumeKind::Host => {
                let Some(source) = &self.source else {
                    return Err(SchemaError::invalid(
                        format!("{field}.source"),
                        "is required for host volumes",
                    ));
                };
                check_absolute(source, &format!("{field}.source"))?;
                let empty_only = [
                    ("mode", self.mode.is_some()),
                    ("uid", self.uid.is_some()),
                    ("gid", self.gid.is_some()),
                ];
                if let Some((key, _)) = empty_only.iter().find(|(_, set)| *set) {
                    return Err(SchemaError::invalid(
                        format!("{field}.{key}"),
                        "is only allowed for empty volumes",
                    ));
                }
            }
            VolumeKind::Empty => {
                if self.source.is_some() {
                    return Err(SchemaError::invalid(
                        format!("{field}.source"),
                        "is only allowed for host volumes",
                    ));
                }
                if let Some(mode) = &self.mode {
                    let octal = !mode.is_empty()
                        && mode.len() <= 5
                        && mode.bytes().all(|b| (b'0'..=b'7').contains(&b))
                        && u32::from_str_radix(mode, 8).is_ok_and(|m| m <= 0o7777);
                    if !octal {
                        return Err(SchemaError::invalid(
                            format!("{field}.mode"),
                            format!("{mode:?} is not an octal mode like \"0755\""),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A port forwarded from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExposedPort {
    /// Name of an app port, or of `pod_port`.
    pub name: AcName,
    /// Host port, 1..=65535.
    #[serde(deserialize_with = "port_number")]
    pub host_port: u16,
    /// Host address to forward from; all when absent.
    #[serde(
        rename = "hostIP",
        default,
        deserialize_with = "optional_ipv4",
        skip_serializing_if = "Option::is_none"
    )]
    pub host_ip: Option<Ipv4Addr>,
    /// Overrides the app ports of the same name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_port: Option<Port>,
}

/// pods.md: an IPv4 address in dotted-quad notation.
fn optional_ipv4<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ipv4Addr>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    s.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format_args!(
            "{s:?} is not an ipv4 address in dotted-quad notation"
        ))
    })
}
