//! The shared appc value types (spec/types.md): AC Identifier, AC Name, AC Kind, AC Version,
//! Image ID, labels and annotations, plus the small checks several manifests share.
//!
//! The newtypes validate on construction and on deserialization, so holding one means the
//! value is well-formed; rules that depend on context (uniqueness, reserved names) live in the
//! manifests' `validate()`.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use super::error::{Result, SchemaError};

/// The appc spec version this module implements, written into new manifests.
pub const APPC_SPEC_VERSION: &str = "0.8.11";

const AC_IDENTIFIER_RE: &str = "^[a-z0-9]+([-._~/][a-z0-9]+)*$";
const AC_NAME_RE: &str = "^[a-z0-9]+([-][a-z0-9]+)*$";

/// Lowercase letters, digits and `separators`, starting and ending with a letter or digit:
/// what the reference implementation checks (schema/types/acidentifier.go, acname.go). The
/// spec's regular expression also refuses two separators in a row, which the spec's own
/// examples (`example.com/~user/app_v1`) and the names other tools wrote (`shorthash--18`)
/// have; those are accepted, as the reference accepts them.
fn is_separated_alnum(s: &str, separators: &[u8]) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) if alnum(first) && alnum(last) => {
            bytes.iter().all(|b| alnum(b) || separators.contains(b))
        }
        _ => false,
    }
}

pub(crate) fn check_ac_identifier(s: &str) -> Result<(), String> {
    if is_separated_alnum(s, b"-._~/") {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not an ac identifier (must match {AC_IDENTIFIER_RE})"
        ))
    }
}

pub(crate) fn check_ac_name(s: &str) -> Result<(), String> {
    if is_separated_alnum(s, b"-") {
        Ok(())
    } else {
        Err(format!("{s:?} is not an ac name (must match {AC_NAME_RE})"))
    }
}

fn check_image_id(s: &str) -> Result<(), String> {
    let hex = s.strip_prefix(ImageId::PREFIX).unwrap_or("");
    // 64 digits: the key length of the original rkt's store, which wrote such IDs into pod
    // manifests and dependencies; the store resolves them as a prefix of a full ID.
    if (hex.len() == 128 || hex.len() == 64)
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not an image id (must be \"sha512-\" and 128 (or 64) lowercase hex digits)"
        ))
    }
}

/// A string newtype whose every value passed `$check`.
macro_rules! checked_string {
    ($(#[$doc:meta])* $ty:ident, $check:path, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(String);

        impl $ty {
            /// The validated string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = SchemaError;
            fn from_str(s: &str) -> Result<Self> {
                $check(s).map_err(|rule| SchemaError::invalid($what, rule))?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $ty {
            type Error = SchemaError;
            fn try_from(s: String) -> Result<Self> {
                $check(&s).map_err(|rule| SchemaError::invalid($what, rule))?;
                Ok(Self(s))
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = SchemaError;
            fn try_from(s: &str) -> Result<Self> {
                s.parse()
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $check(&s).map_err(de::Error::custom)?;
                Ok(Self(s))
            }
        }
    };
}

checked_string!(
    /// Image names, label, annotation and isolator names: `^[a-z0-9]+([-._~/][a-z0-9]+)*$`.
    ///
    /// The full regex is enforced, stricter than the reference code (which accepts `a..b`).
    AcIdentifier,
    check_ac_identifier,
    "ac identifier"
);

checked_string!(
    /// Pod app, volume, mount point and port names: `^[a-z0-9]+([-][a-z0-9]+)*$` (DNS-label-like).
    AcName,
    check_ac_name,
    "ac name"
);

checked_string!(
    /// `sha512-` and the 128 lowercase hex digits of the SHA-512 of the image's uncompressed tar.
    ///
    /// types.md defines the value as "the hex encoded string of the digest", so only full
    /// digests are IDs; abbreviated prefixes (as the CLI shows them) are plain strings.
    ImageId,
    check_image_id,
    "image id"
);

/// Replaces runs of characters outside `[a-z0-9]` and `keep` with one `-`, after lowercasing.
fn sanitize(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut separated = true;
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
            separated = false;
        } else if !separated {
            out.push(if c.is_ascii() && keep.contains(&(c as u8)) {
                c
            } else {
                '-'
            });
            separated = true;
        }
    }
    while out.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        out.pop();
    }
    out
}

impl AcIdentifier {
    /// Lowercases `s` and turns invalid characters (and separator runs) into single separators.
    pub fn sanitize(s: &str) -> Result<AcIdentifier> {
        let out = sanitize(s, b"-._~/");
        if out.is_empty() {
            return Err(SchemaError::invalid(
                "ac identifier",
                format!("{s:?} has no characters usable in an ac identifier"),
            ));
        }
        Ok(AcIdentifier(out))
    }
}

impl AcName {
    /// Lowercases `s` and turns runs of invalid characters into single `-`.
    pub fn sanitize(s: &str) -> Result<AcName> {
        let out = sanitize(s, b"-");
        if out.is_empty() {
            return Err(SchemaError::invalid(
                "ac name",
                format!("{s:?} has no characters usable in an ac name"),
            ));
        }
        Ok(AcName(out))
    }

    /// Default pod app name for an image: its last path element, sanitized
    /// (`coreos.com/ace-validator-main` → `ace-validator-main`), as rkt derives it.
    pub fn from_image_name(image: &AcIdentifier) -> Result<AcName> {
        let last = image.as_str().rsplit('/').next().unwrap_or(image.as_str());
        AcName::sanitize(last)
    }
}

impl From<AcName> for AcIdentifier {
    /// Every AC Name is also an AC Identifier.
    fn from(name: AcName) -> AcIdentifier {
        AcIdentifier(name.0)
    }
}

impl ImageId {
    /// The only hash algorithm the spec permits.
    pub const PREFIX: &'static str = "sha512-";

    /// Parses an image ID: `sha512-` and 128 lowercase hex digits, or 64 as the original rkt
    /// wrote them (the store resolves those as the prefix of a full ID).
    pub fn parse(s: &str) -> Result<ImageId> {
        s.parse()
    }

    /// The ID of an image whose uncompressed tar has this SHA-512 digest.
    pub fn from_sha512_digest(digest: &[u8; 64]) -> ImageId {
        ImageId(format!("{}{}", Self::PREFIX, hex::encode(digest)))
    }

    /// All 128 digits of the digest (not the original's 64-digit form).
    pub fn is_full(&self) -> bool {
        self.hex().len() == 128
    }

    /// The hex digest without the `sha512-` prefix.
    pub fn hex(&self) -> &str {
        &self.0[Self::PREFIX.len()..]
    }
}

/// Reads an optional image ID where Go writes an absent one as `""`.
pub(crate) fn optional_image_id<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<ImageId>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => {
            check_image_id(&s).map_err(de::Error::custom)?;
            Ok(Some(ImageId(s)))
        }
    }
}

/// The kind of manifest a document says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcKind {
    /// An image manifest (`manifest` in an ACI).
    ImageManifest,
    /// A pod manifest.
    PodManifest,
}

impl AcKind {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AcKind::ImageManifest => "ImageManifest",
            AcKind::PodManifest => "PodManifest",
        }
    }
}

impl fmt::Display for AcKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AcKind {
    type Err = SchemaError;
    fn from_str(s: &str) -> Result<AcKind> {
        match s {
            "ImageManifest" => Ok(AcKind::ImageManifest),
            "PodManifest" => Ok(AcKind::PodManifest),
            _ => Err(SchemaError::invalid(
                "ac kind",
                format!("{s:?} is not an ac kind (must be \"ImageManifest\" or \"PodManifest\")"),
            )),
        }
    }
}

impl Serialize for AcKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AcKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<AcKind>()
            .map_err(|e| de::Error::custom(e.rule().unwrap_or_default()))
    }
}

/// A SemVer 2.0 version, as `acVersion` requires.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AcVersion {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Option<String>,
    build: Option<String>,
}

/// `0` or digits without a leading zero.
fn parse_numeric(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// Dot-separated non-empty `[0-9A-Za-z-]` identifiers; pre-release numerics have no leading zero.
fn valid_dot_identifiers(s: &str, pre_release: bool) -> bool {
    s.split('.').all(|id| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !(pre_release
                && id.bytes().all(|b| b.is_ascii_digit())
                && id.len() > 1
                && id.starts_with('0'))
    })
}

impl AcVersion {
    /// A release version without pre-release or build metadata.
    pub fn new(major: u64, minor: u64, patch: u64) -> AcVersion {
        AcVersion {
            major,
            minor,
            patch,
            pre: None,
            build: None,
        }
    }

    /// The version this module implements ([`APPC_SPEC_VERSION`]).
    pub fn current() -> AcVersion {
        APPC_SPEC_VERSION
            .parse()
            .expect("APPC_SPEC_VERSION is a valid semver")
    }

    /// Major version.
    pub fn major(&self) -> u64 {
        self.major
    }

    /// Written for a later major version of the spec than this implementation's: read as
    /// this version, with a warning.
    pub fn is_newer_major(&self) -> bool {
        self.major > AcVersion::current().major
    }

    /// Minor version.
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// Patch version.
    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// Pre-release identifiers after `-`, if any.
    pub fn pre_release(&self) -> Option<&str> {
        self.pre.as_deref()
    }

    /// Build metadata after `+`, if any.
    pub fn build(&self) -> Option<&str> {
        self.build.as_deref()
    }

    fn parse_semver(s: &str) -> Option<AcVersion> {
        let (rest, build) = match s.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (s, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let mut parts = core.split('.');
        let major = parse_numeric(parts.next()?)?;
        let minor = parse_numeric(parts.next()?)?;
        let patch = parse_numeric(parts.next()?)?;
        if parts.next().is_some()
            || pre.is_some_and(|p| !valid_dot_identifiers(p, true))
            || build.is_some_and(|b| !valid_dot_identifiers(b, false))
        {
            return None;
        }
        Some(AcVersion {
            major,
            minor,
            patch,
            pre: pre.map(str::to_owned),
            build: build.map(str::to_owned),
        })
    }

    /// types.md: a tagged spec version (so not 0.0.0), compatible on major version with ours.
    /// A newer major is let through, as the reference implementation lets it through (it
    /// refuses only an older one): callers warn about it ([`AcVersion::is_newer_major`]).
    pub(crate) fn check_supported(&self) -> Result<(), String> {
        let ours = AcVersion::current();
        if *self == AcVersion::new(0, 0, 0) {
            return Err("0.0.0 is not a version of the appc spec".to_owned());
        }
        if self.major < ours.major {
            return Err(format!(
                "version {self} is not compatible with appc spec {ours} (major version must be {})",
                ours.major
            ));
        }
        Ok(())
    }
}

impl fmt::Display for AcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

fn semver_rule(s: &str) -> String {
    format!("{s:?} is not a semver 2.0 version (major.minor.patch)")
}

impl FromStr for AcVersion {
    type Err = SchemaError;
    fn from_str(s: &str) -> Result<AcVersion> {
        AcVersion::parse_semver(s).ok_or_else(|| SchemaError::invalid("version", semver_rule(s)))
    }
}

impl Serialize for AcVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AcVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AcVersion::parse_semver(&s).ok_or_else(|| de::Error::custom(semver_rule(&s)))
    }
}

/// A `{name, value}` label: used for image discovery and dependency matching.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Label {
    /// Label name; `name` itself is reserved.
    pub name: AcIdentifier,
    /// Free-form value.
    pub value: String,
}

impl Label {
    /// A label; the name is already validated by its type.
    pub fn new(name: AcIdentifier, value: impl Into<String>) -> Label {
        Label {
            name,
            value: value.into(),
        }
    }
}

/// A `{name, value}` annotation: metadata that may be served by the metadata service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Annotation {
    /// Annotation name (an AC Name in pod manifests, an AC Identifier in image manifests).
    pub name: AcIdentifier,
    /// Free-form value.
    pub value: String,
}

impl Annotation {
    /// An annotation; the name is already validated by its type.
    pub fn new(name: AcIdentifier, value: impl Into<String>) -> Annotation {
        Annotation {
            name,
            value: value.into(),
        }
    }
}

/// `os` label values and the `arch` values allowed with each (`types.ValidOSArch`).
const VALID_OS_ARCH: &[(&str, &[&str])] = &[
    ("darwin", &["x86_64", "i386"]),
    ("freebsd", &["amd64", "i386", "arm"]),
    (
        "linux",
        &[
            "amd64",
            "i386",
            "aarch64",
            "aarch64_be",
            "armv6l",
            "armv7l",
            "armv7b",
            "ppc64",
            "ppc64le",
            "s390x",
        ],
    ),
];

/// Label rules: unique names, `name` reserved, known `os`, and `arch` valid for that `os`.
pub(crate) fn validate_labels(labels: &[Label], field: &str) -> Result<()> {
    for (i, label) in labels.iter().enumerate() {
        if label.name == "name" {
            return Err(SchemaError::invalid(
                format!("{field}[{i}].name"),
                "\"name\" cannot be a label name (it would be confused with the image name)",
            ));
        }
        if labels[..i].iter().any(|l| l.name == label.name) {
            return Err(SchemaError::invalid(
                format!("{field}[{i}].name"),
                format!("duplicate label {:?}", label.name.as_str()),
            ));
        }
    }
    let find = |name: &str| labels.iter().position(|l| l.name == name);
    // arch is meaningful only with os (aci.md), so without os any arch is accepted.
    let Some(os_at) = find("os") else {
        return Ok(());
    };
    let os = labels[os_at].value.as_str();
    let Some((_, arches)) = VALID_OS_ARCH.iter().find(|(o, _)| *o == os) else {
        let oses: Vec<&str> = VALID_OS_ARCH.iter().map(|(o, _)| *o).collect();
        return Err(SchemaError::invalid(
            format!("{field}[{os_at}].value"),
            format!("unsupported os {os:?} (must be one of {})", oses.join(", ")),
        ));
    };
    if let Some(arch_at) = find("arch") {
        let arch = labels[arch_at].value.as_str();
        if !arches.contains(&arch) {
            return Err(SchemaError::invalid(
                format!("{field}[{arch_at}].value"),
                format!(
                    "unsupported arch {arch:?} for os {os:?} (must be one of {})",
                    arches.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Which name grammar an annotation list uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnnotationNames {
    /// Image manifests (aci.md).
    AcIdentifier,
    /// Pod and pod-app annotations (pods.md says AC Name, stricter than the Go type).
    AcName,
}

/// Unique names, the name grammar, and for image manifests the values of recognized names.
pub(crate) fn validate_annotations(
    annotations: &[Annotation],
    field: &str,
    names: AnnotationNames,
) -> Result<()> {
    for (i, a) in annotations.iter().enumerate() {
        let name = a.name.as_str();
        if names == AnnotationNames::AcName {
            check_ac_name(name)
                .map_err(|rule| SchemaError::invalid(format!("{field}[{i}].name"), rule))?;
        }
        if annotations[..i].iter().any(|b| b.name == a.name) {
            return Err(SchemaError::invalid(
                format!("{field}[{i}].name"),
                format!("duplicate annotation {name:?}"),
            ));
        }
        if names == AnnotationNames::AcIdentifier {
            check_annotation_value(name, &a.value)
                .map_err(|rule| SchemaError::invalid(format!("{field}[{i}].value"), rule))?;
        }
    }
    Ok(())
}

/// Values of the annotations aci.md recognizes.
fn check_annotation_value(name: &str, value: &str) -> Result<(), String> {
    match name {
        "created" => check_timestamp(value),
        "homepage" | "documentation" => {
            let ok = url::Url::parse(value)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if ok {
                Ok(())
            } else {
                Err(format!("{value:?} is not an http or https url"))
            }
        }
        "appc.io/executor/supports-systemd-notify" => match value {
            "true" | "false" => Ok(()),
            _ => Err(format!(
                "{value:?} is not a boolean (must be \"true\" or \"false\")"
            )),
        },
        _ => Ok(()),
    }
}

/// types.md timestamps: RFC 3339 `date-time`, with an upper-case `T` between date and time.
pub(crate) fn check_timestamp(value: &str) -> Result<(), String> {
    let parsed = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339);
    if parsed.is_ok() && value.as_bytes().get(10) == Some(&b'T') {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not an rfc 3339 timestamp (like 2014-10-27T19:32:27Z)"
        ))
    }
}

/// Paths the spec requires to be absolute.
pub(crate) fn check_absolute(path: &str, field: &str) -> Result<()> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(SchemaError::invalid(
            field,
            format!("{path:?} is not an absolute path"),
        ))
    }
}

/// Environment variable names: `^[A-Za-z_][A-Za-z_0-9.-]*$` (appc v0.8.11 schema).
pub(crate) fn check_env_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not an environment variable name (must match ^[A-Za-z_][A-Za-z_0-9.-]*$)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ac_identifier_is_checked_as_the_reference_checks_it() {
        for ok in [
            "database",
            "example.com/database",
            "example.com/user~1/app_v1",
            // Two separators in a row: the regex refuses them, the reference and the spec's
            // own example (types.md) do not.
            "example.com/~user/app_v1",
            "a..b",
            "example.com//x",
            "a-.b",
            "sub-domain.example.com/org/product/release",
            "a",
            "0",
            "coreos.com/rkt/stage1/run",
        ] {
            assert!(ok.parse::<AcIdentifier>().is_ok(), "{ok}");
        }
        for bad in ["", "Database", "-a", "a-", "a b", "a:b", "/a", "a/", "é"] {
            let err = bad.parse::<AcIdentifier>().unwrap_err();
            assert!(
                err.to_string().contains("is not an ac identifier"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn ac_name_is_checked_as_the_reference_checks_it() {
        for ok in [
            "database",
            "product-database",
            "product-database-release",
            "a1-2b",
            "shorthash--18",
        ] {
            assert!(AcName::try_from(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a_b", "a.b", "a/b", "-a", "a-", "A"] {
            assert!(AcName::try_from(bad.to_owned()).is_err(), "{bad}");
        }
        let id: AcIdentifier = AcName::try_from("web").unwrap().into();
        assert_eq!(id, "web");
    }

    #[test]
    fn sanitize_makes_names_valid() {
        assert_eq!(
            AcName::sanitize("Reduce_Worker..v2").unwrap(),
            "reduce-worker-v2"
        );
        assert_eq!(AcName::sanitize("--a--").unwrap(), "a");
        assert!(AcName::sanitize("__").is_err());
        assert_eq!(
            AcIdentifier::sanitize("Example.COM//My App").unwrap(),
            "example.com/my-app"
        );
        let image: AcIdentifier = "coreos.com/ace-validator-main".parse().unwrap();
        assert_eq!(
            AcName::from_image_name(&image).unwrap(),
            "ace-validator-main"
        );
        let image: AcIdentifier = "example.com/reduce_worker".parse().unwrap();
        assert_eq!(AcName::from_image_name(&image).unwrap(), "reduce-worker");
    }

    #[test]
    fn image_id_requires_a_full_lowercase_sha512() {
        let id = ImageId::from_sha512_digest(&[0xab; 64]);
        assert_eq!(id.as_str().len(), 7 + 128);
        assert_eq!(ImageId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.hex(), "ab".repeat(64));
        let upper = format!("sha512-{}", "AB".repeat(64));
        let short = format!("sha512-{}", "ab".repeat(16));
        let sha256 = format!("sha256-{}", "ab".repeat(64));
        // The original's store keys: half the digest.
        let half = format!("sha512-{}", "ab".repeat(32));
        assert_eq!(ImageId::parse(&half).unwrap().as_str(), half);
        for bad in ["", "sha512-", "sha512-...", &upper, &short, &sha256] {
            let err = ImageId::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid image id: "), "{err}");
        }
    }

    #[test]
    fn semver_parsing_is_strict() {
        for ok in [
            "0.8.11",
            "1.0.0-alpha.1+build.007",
            "0.3.0",
            "10.20.30-rc.1",
            "1.0.0+x",
        ] {
            let v: AcVersion = ok.parse().unwrap();
            assert_eq!(v.to_string(), ok);
        }
        for bad in [
            "0.8",
            "0.8.11.1",
            "01.0.0",
            "0.08.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0+",
            "v1.0.0",
            "1.0.0-a..b",
            "",
        ] {
            assert!(bad.parse::<AcVersion>().is_err(), "{bad}");
        }
        assert_eq!(AcVersion::current().to_string(), APPC_SPEC_VERSION);
        assert!(AcVersion::new(0, 3, 0).check_supported().is_ok());
        assert!(AcVersion::new(0, 0, 0).check_supported().is_err());
        // A newer major is read, as the reference reads it (callers warn).
        assert!(AcVersion::new(1, 0, 0).check_supported().is_ok());
        assert!(AcVersion::new(1, 0, 0).is_newer_major());
        assert!(!AcVersion::new(0, 8, 11).is_newer_major());
    }

    #[test]
    fn env_names_and_timestamps() {
        for ok in ["PATH", "_x", "a.b-c", "REDUCE_WORKER_DEBUG"] {
            assert!(check_env_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "-a", "A B", "A=B", ".a"] {
            assert!(check_env_name(bad).is_err(), "{bad}");
        }
        for ok in [
            "2014-10-27T19:32:27.67021798Z",
            "2015-05-18T13:49:28.351729952-04:00",
        ] {
            assert!(check_timestamp(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2014-10-27 19:32:27Z",
            "2014-10-27t19:32:27Z",
            "2014-10-27",
            "yesterday",
        ] {
            assert!(check_timestamp(bad).is_err(), "{bad}");
        }
    }
}
