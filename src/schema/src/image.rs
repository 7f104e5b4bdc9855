//! The image manifest (spec/aci.md "Image Manifest Schema") and the `app` object it shares
//! with pod manifests.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::error::{Result, SchemaError, from_json, nullable};
use super::isolator::{Isolator, IsolatorScope, validate_isolators};
use super::types::{
    AcIdentifier, AcKind, AcName, AcVersion, Annotation, AnnotationNames, ImageId, Label,
    check_absolute, check_env_name, optional_image_id, validate_annotations, validate_labels,
};

/// The `manifest` file of an ACI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always [`AcKind::ImageManifest`] in a valid manifest.
    pub ac_kind: AcKind,
    /// Spec version the manifest was written for.
    pub ac_version: AcVersion,
    /// Image name, URL-like for discovery (`example.com/reduce-worker`).
    pub name: AcIdentifier,
    /// Discovery and dependency-matching labels (`version`, `os`, `arch`, …).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub labels: Vec<Label>,
    /// How to run the image as an app, if it is runnable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<App>,
    /// Images rendered beneath this one, in order.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dependencies: Vec<Dependency>,
    /// Absolute paths kept in the rendered rootfs; empty keeps everything.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub path_whitelist: Vec<String>,
    /// Free-form metadata (`created`, `authors`, `homepage`, …).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub annotations: Vec<Annotation>,
}

impl ImageManifest {
    /// A minimal manifest for `name` at the current spec version.
    pub fn new(name: AcIdentifier) -> ImageManifest {
        ImageManifest {
            ac_kind: AcKind::ImageManifest,
            ac_version: AcVersion::current(),
            name,
            labels: Vec::new(),
            app: None,
            dependencies: Vec::new(),
            path_whitelist: Vec::new(),
            annotations: Vec::new(),
        }
    }

    /// Parses and validates a manifest.
    pub fn from_json(bytes: &[u8]) -> Result<ImageManifest> {
        let manifest: ImageManifest = from_json(bytes, "manifest")?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks every rule of aci.md and types.md that the types alone don't guarantee.
    pub fn validate(&self) -> Result<()> {
        if self.ac_kind != AcKind::ImageManifest {
            return Err(SchemaError::invalid(
                "acKind",
                format!("must be \"ImageManifest\", not {:?}", self.ac_kind.as_str()),
            ));
        }
        self.ac_version
            .check_supported()
            .map_err(|rule| SchemaError::invalid("acVersion", rule))?;
        validate_labels(&self.labels, "labels")?;
        if let Some(app) = &self.app {
            app.validate_at("app")?;
        }
        for (i, dep) in self.dependencies.iter().enumerate() {
            validate_labels(&dep.labels, &format!("dependencies[{i}].labels"))?;
        }
        for (i, path) in self.path_whitelist.iter().enumerate() {
            check_absolute(path, &format!("pathWhitelist[{i}]"))?;
        }
        validate_annotations(
            &self.annotations,
            "annotations",
            AnnotationNames::AcIdentifier,
        )
    }

    /// Pretty JSON in the spec's field names; empty optional lists are left out.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifests have string keys only")
    }

    /// The value of label `name`, e.g. `version`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
    }

    /// The value of annotation `name`, e.g. `appc.io/executor/supports-systemd-notify`.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    }
}

/// How to run an image: the `app` object of an image manifest, or its replacement in a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    /// Command and arguments; a name without `/` is searched in `PATH` (exec(3)).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exec: Vec<String>,
    /// User name, numeric UID, or an absolute path whose owner is used.
    pub user: String,
    /// Group name, numeric GID, or an absolute path whose group is used.
    pub group: String,
    /// Extra GIDs. The Go schema writes `supplementaryGIDs`, the spec example `supplementaryGids`.
    #[serde(
        rename = "supplementaryGIDs",
        alias = "supplementaryGids",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub supplementary_gids: Vec<u32>,
    /// `pre-start` / `post-stop` hooks.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub event_handlers: Vec<EventHandler>,
    /// Absolute working directory; empty means `/`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub working_directory: String,
    /// Environment variables, added to the executor's.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub environment: Vec<EnvironmentVariable>,
    /// Isolators for this app.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub isolators: Vec<Isolator>,
    /// Where the app expects volumes.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mount_points: Vec<MountPoint>,
    /// Ports the app listens on (informational).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<Port>,
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

impl App {
    /// An app running `exec` as `user`:`group`.
    pub fn new(exec: Vec<String>, user: impl Into<String>, group: impl Into<String>) -> App {
        App {
            exec,
            user: user.into(),
            group: group.into(),
            supplementary_gids: Vec::new(),
            event_handlers: Vec::new(),
            working_directory: String::new(),
            environment: Vec::new(),
            isolators: Vec::new(),
            mount_points: Vec::new(),
            ports: Vec::new(),
            user_annotations: BTreeMap::new(),
            user_labels: BTreeMap::new(),
        }
    }

    /// Checks the app on its own, with errors rooted at `app`.
    pub fn validate(&self) -> Result<()> {
        self.validate_at("app")
    }

    /// Checks the app found at `field` (`app`, `apps[1].app`).
    pub(crate) fn validate_at(&self, field: &str) -> Result<()> {
        // exec is not checked: v0.8.11 made it optional and PATH-searched.
        if self.user.is_empty() {
            return Err(SchemaError::invalid(
                format!("{field}.user"),
                "must not be empty",
            ));
        }
        if self.group.is_empty() {
            return Err(SchemaError::invalid(
                format!("{field}.group"),
                "must not be empty",
            ));
        }
        for (i, handler) in self.event_handlers.iter().enumerate() {
            if self.event_handlers[..i]
                .iter()
                .any(|h| h.name == handler.name)
            {
                return Err(SchemaError::invalid(
                    format!("{field}.eventHandlers[{i}].name"),
                    format!("only one {} event handler is allowed", handler.name),
                ));
            }
        }
        if !self.working_directory.is_empty() {
            check_absolute(
                &self.working_directory,
                &format!("{field}.workingDirectory"),
            )?;
        }
        for (i, var) in self.environment.iter().enumerate() {
            let name_field = format!("{field}.environment[{i}].name");
            check_env_name(&var.name).map_err(|rule| SchemaError::invalid(&name_field, rule))?;
            if self.environment[..i].iter().any(|v| v.name == var.name) {
                return Err(SchemaError::invalid(
                    name_field,
                    format!("duplicate environment variable {:?}", var.name),
                ));
            }
        }
        validate_isolators(
            &self.isolators,
            &format!("{field}.isolators"),
            IsolatorScope::App,
        )?;
        for (i, mp) in self.mount_points.iter().enumerate() {
            let at = format!("{field}.mountPoints[{i}]");
            if self.mount_points[..i].iter().any(|m| m.name == mp.name) {
                return Err(SchemaError::invalid(
                    format!("{at}.name"),
                    format!("duplicate mount point {:?}", mp.name.as_str()),
                ));
            }
            check_absolute(&mp.path, &format!("{at}.path"))?;
        }
        for (i, port) in self.ports.iter().enumerate() {
            let at = format!("{field}.ports[{i}]");
            if self.ports[..i].iter().any(|p| p.name == port.name) {
                return Err(SchemaError::invalid(
                    format!("{at}.name"),
                    format!("duplicate port {:?}", port.name.as_str()),
                ));
            }
            port.validate_at(&at)?;
        }
        Ok(())
    }

    /// The value of environment variable `name`.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.environment
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.value.as_str())
    }

    /// The handler for `name`, if any.
    pub fn event_handler(&self, name: EventName) -> Option<&EventHandler> {
        self.event_handlers.iter().find(|h| h.name == name)
    }
}

/// A lifecycle hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventHandler {
    /// When it runs.
    pub name: EventName,
    /// Command and arguments.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exec: Vec<String>,
}

/// The lifecycle events the spec defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventName {
    /// Runs, and must exit, before the main process starts.
    PreStart,
    /// Runs after the main process exits or is killed (best effort).
    PostStop,
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventName::PreStart => "pre-start",
            EventName::PostStop => "post-stop",
        })
    }
}

/// One environment variable; names are checked by `validate()`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    /// `^[A-Za-z_][A-Za-z_0-9.-]*$`.
    pub name: String,
    /// Passed as is, without substitution.
    pub value: String,
}

/// Where an app expects a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountPoint {
    /// Name a pod's mounts may refer to.
    pub name: AcName,
    /// Absolute path inside the app's rootfs.
    pub path: String,
    /// Whether the app wants the volume read-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// A port, or a range of `count` ports, an app listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    /// Name the pod's `ports` refer to.
    pub name: AcName,
    /// Usually `tcp` or `udp`.
    pub protocol: String,
    /// First port, 1..=65535.
    #[serde(deserialize_with = "port_number")]
    pub port: u16,
    /// Number of ports in the range, at least 1.
    #[serde(default = "one", deserialize_with = "port_count")]
    pub count: u16,
    /// Whether the app expects these ports as sd_listen_fds(3) sockets.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub socket_activated: bool,
}

impl Port {
    /// The last port of the range.
    pub fn last(&self) -> u32 {
        u32::from(self.port) + u32::from(self.count.max(1)) - 1
    }

    pub(crate) fn validate_at(&self, field: &str) -> Result<()> {
        if self.protocol.is_empty() {
            return Err(SchemaError::invalid(
                format!("{field}.protocol"),
                "must not be empty",
            ));
        }
        if self.port == 0 {
            return Err(SchemaError::invalid(format!("{field}.port"), PORT_RULE));
        }
        if self.count == 0 {
            return Err(SchemaError::invalid(
                format!("{field}.count"),
                "must be at least 1",
            ));
        }
        if self.last() > 65535 {
            return Err(SchemaError::invalid(
                format!("{field}.count"),
                format!("the range {}-{} ends above 65535", self.port, self.last()),
            ));
        }
        Ok(())
    }
}

const PORT_RULE: &str = "must be between 1 and 65535";

fn one() -> u16 {
    1
}

/// A port number 1..=65535, with that rule in the error instead of "expected u16".
pub(crate) fn port_number<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let n = u64::deserialize(d)?;
    u16::try_from(n)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| serde::de::Error::custom(format_args!("{n} {PORT_RULE}")))
}

fn port_count<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let n = u64::deserialize(d)?;
    u16::try_from(n)
        .ok()
        .filter(|&c| c != 0)
        .ok_or_else(|| serde::de::Error::custom(format_args!("{n} must be between 1 and 65535")))
}

/// An image rendered beneath this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// Name to discover the dependency by.
    pub image_name: AcIdentifier,
    /// If given, the discovered image must have this ID.
    #[serde(
        rename = "imageID",
        default,
        deserialize_with = "optional_image_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub image_id: Option<ImageId>,
    /// Labels to discover the dependency by.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub labels: Vec<Label>,
    /// Expected size in bytes, against "endless data" attacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}
