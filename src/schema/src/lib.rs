//! App Container schema (appc spec v0.8.11): typed manifests and their validation. No I/O.
//!
//! Parsing is `from_json` (decode, then `validate()`); every rejection is a [`SchemaError`]
//! naming the JSON path of the field and the rule broken. Validation follows the spec text
//! where the reference Go schema is looser (full AC Identifier/Name regexes, capability
//! retain/remove conflict, AC Name pod annotations, required image IDs once reified).
//!
//! - `types`: names, kinds, versions, image IDs, labels, annotations.
//! - `image`: [`ImageManifest`] and the [`App`] it shares with pods.
//! - `isolator`: [`Isolator`] and the typed [`IsolatorValue`]s.
//! - `pod`: [`PodManifest`].

mod error;
mod image;
mod isolator;
mod pod;
mod types;

#[cfg(test)]
mod tests;

pub use error::{MAX_JSON_DEPTH, SchemaError, nesting_within_limit};
pub use image::{
    App, Dependency, EnvironmentVariable, EventHandler, EventName, ImageManifest, MountPoint, Port,
};
pub use isolator::{
    ApparmorProfile, CapabilitySet, DEFAULT_CAPABILITIES, Isolator, IsolatorScope, IsolatorValue,
    LINUX_APPARMOR_PROFILE, LINUX_CAPABILITIES_REMOVE_SET, LINUX_CAPABILITIES_RETAIN_SET,
    LINUX_CPU_SHARES, LINUX_NO_NEW_PRIVILEGES, LINUX_OOM_SCORE_ADJ, LINUX_SECCOMP_REMOVE_SET,
    LINUX_SECCOMP_RETAIN_SET, LINUX_SELINUX_CONTEXT, Quantity, RESOURCE_BLOCK_BANDWIDTH,
    RESOURCE_BLOCK_IOPS, RESOURCE_CPU, RESOURCE_MEMORY, RESOURCE_NETWORK_BANDWIDTH, Resource,
    SeccompSet, SelinuxContext, UNIX_SYSCTL,
};
pub use pod::{ExposedPort, Mount, PodManifest, RuntimeApp, RuntimeImage, Volume, VolumeKind};
pub use types::{
    APPC_SPEC_VERSION, AcIdentifier, AcKind, AcName, AcVersion, Annotation, ImageId, Label,
};
