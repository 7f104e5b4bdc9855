//! Isolators (types.md "Isolator Type", ace.md "Isolators"): the raw `{name, value}` pair as
//! it appears in manifests, the typed value of every isolator the spec defines, and the rules
//! for isolator lists (scope, single instance, conflicts).
//!
//! The value is kept as raw JSON so that manifests round-trip byte-for-byte in meaning and
//! unknown pod-level isolators survive; [`Isolator::parse`] gives the typed view.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::error::{Result, SchemaError, from_value};
use super::types::AcIdentifier;

/// `resource/cpu`: cores (`250m`).
pub const RESOURCE_CPU: &str = "resource/cpu";
/// `resource/memory`: bytes (`1G`, `1Gi`).
pub const RESOURCE_MEMORY: &str = "resource/memory";
/// `resource/block-bandwidth`: bytes per second on all block devices.
pub const RESOURCE_BLOCK_BANDWIDTH: &str = "resource/block-bandwidth";
/// `resource/block-iops`: I/O operations per second on all block devices.
pub const RESOURCE_BLOCK_IOPS: &str = "resource/block-iops";
/// `resource/network-bandwidth`: bytes per second on all interfaces but localhost.
pub const RESOURCE_NETWORK_BANDWIDTH: &str = "resource/network-bandwidth";
/// `os/linux/capabilities-retain-set`: the bounding set is exactly these.
pub const LINUX_CAPABILITIES_RETAIN_SET: &str = "os/linux/capabilities-retain-set";
/// `os/linux/capabilities-remove-set`: removed from the default bounding set.
pub const LINUX_CAPABILITIES_REMOVE_SET: &str = "os/linux/capabilities-remove-set";
/// `os/linux/no-new-privileges`: `PR_SET_NO_NEW_PRIVS`.
pub const LINUX_NO_NEW_PRIVILEGES: &str = "os/linux/no-new-privileges";
/// `os/linux/seccomp-remove-set`: blocked syscalls.
pub const LINUX_SECCOMP_REMOVE_SET: &str = "os/linux/seccomp-remove-set";
/// `os/linux/seccomp-retain-set`: the only allowed syscalls.
pub const LINUX_SECCOMP_RETAIN_SET: &str = "os/linux/seccomp-retain-set";
/// `os/linux/selinux-context`: the SELinux label of the app or pod.
pub const LINUX_SELINUX_CONTEXT: &str = "os/linux/selinux-context";
/// `os/linux/apparmor-profile`: the AppArmor profile of the app or pod.
pub const LINUX_APPARMOR_PROFILE: &str = "os/linux/apparmor-profile";
/// `os/linux/oom-score-adj`: `/proc/<pid>/oom_score_adj` (schema code only, not in ace.md).
pub const LINUX_OOM_SCORE_ADJ: &str = "os/linux/oom-score-adj";
/// `os/linux/cpu-shares`: CFS weight (schema code only, not in ace.md).
pub const LINUX_CPU_SHARES: &str = "os/linux/cpu-shares";
/// `os/unix/sysctl`: kernel parameters for the pod.
pub const UNIX_SYSCTL: &str = "os/unix/sysctl";

/// The capability bounding set an app gets without a capability isolator (ace.md).
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETFCAP",
    "CAP_SYS_CHROOT",
];

/// An isolator as written in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolator {
    /// Which isolator this is.
    pub name: AcIdentifier,
    /// Its value, any JSON; see [`Isolator::parse`].
    pub value: serde_json::Value,
}

impl Isolator {
    /// The typed value, or `None` for a name the spec does not define.
    pub fn parse(&self) -> Result<Option<IsolatorValue>> {
        self.parse_at("value")
    }

    /// [`Isolator::parse`] with errors reported at `field` (the path of `value`).
    pub(crate) fn parse_at(&self, field: &str) -> Result<Option<IsolatorValue>> {
        let v = &self.value;
        let name = self.name.as_str();
        let parsed = match name {
            RESOURCE_CPU => IsolatorValue::ResourceCpu(Resource::parse(v, field, name, false)?),
            RESOURCE_MEMORY => {
                IsolatorValue::ResourceMemory(Resource::parse(v, field, name, false)?)
            }
            RESOURCE_BLOCK_BANDWIDTH => {
                IsolatorValue::ResourceBlockBandwidth(Resource::parse(v, field, name, true)?)
            }
            RESOURCE_BLOCK_IOPS => {
                IsolatorValue::ResourceBlockIops(Resource::parse(v, field, name, true)?)
            }
            RESOURCE_NETWORK_BANDWIDTH => {
                IsolatorValue::ResourceNetworkBandwidth(Resource::parse(v, field, name, true)?)
            }
            LINUX_CAPABILITIES_RETAIN_SET => {
                IsolatorValue::CapabilitiesRetainSet(CapabilitySet::parse(v, field)?)
            }
            LINUX_CAPABILITIES_REMOVE_SET => {
                IsolatorValue::CapabilitiesRemoveSet(CapabilitySet::parse(v, field)?)
            }
            LINUX_NO_NEW_PRIVILEGES => IsolatorValue::NoNewPrivileges(from_value(v, field)?),
            LINUX_SECCOMP_REMOVE_SET => {
                IsolatorValue::SeccompRemoveSet(SeccompSet::parse(v, field)?)
            }
            LINUX_SECCOMP_RETAIN_SET => {
                IsolatorValue::SeccompRetainSet(SeccompSet::parse(v, field)?)
            }
            LINUX_SELINUX_CONTEXT => {
                IsolatorValue::SelinuxContext(SelinuxContext::parse(v, field)?)
            }
            LINUX_APPARMOR_PROFILE => {
                IsolatorValue::ApparmorProfile(ApparmorProfile::parse(v, field)?)
            }
            LINUX_OOM_SCORE_ADJ => {
                IsolatorValue::OomScoreAdj(int_in_range(v, field, -1000, 1000)? as i32)
            }
            LINUX_CPU_SHARES => {
                IsolatorValue::CpuShares(int_in_range(v, field, 2, 262_144)? as u32)
            }
            UNIX_SYSCTL => {
                let map: BTreeMap<String, String> = from_value(v, field)?;
                if map.keys().any(String::is_empty) {
                    return Err(SchemaError::invalid(
                        field,
                        "sysctl names must not be empty",
                    ));
                }
                IsolatorValue::Sysctl(map)
            }
            _ => return Ok(None),
        };
        Ok(Some(parsed))
    }
}

impl From<IsolatorValue> for Isolator {
    /// Builds the manifest form of a typed value (e.g. from `--memory=1G`).
    fn from(value: IsolatorValue) -> Isolator {
        let json = match &value {
            IsolatorValue::ResourceCpu(r)
            | IsolatorValue::ResourceMemory(r)
            | IsolatorValue::ResourceBlockBandwidth(r)
            | IsolatorValue::ResourceBlockIops(r)
            | IsolatorValue::ResourceNetworkBandwidth(r) => serde_json::to_value(r),
            IsolatorValue::CapabilitiesRetainSet(s) | IsolatorValue::CapabilitiesRemoveSet(s) => {
                serde_json::to_value(s)
            }
            IsolatorValue::NoNewPrivileges(b) => serde_json::to_value(b),
            IsolatorValue::SeccompRemoveSet(s) | IsolatorValue::SeccompRetainSet(s) => {
                serde_json::to_value(s)
            }
            IsolatorValue::SelinuxContext(c) => serde_json::to_value(c),
            IsolatorValue::ApparmorProfile(p) => serde_json::to_value(p),
            IsolatorValue::OomScoreAdj(n) => serde_json::to_value(n),
            IsolatorValue::CpuShares(n) => serde_json::to_value(n),
            IsolatorValue::Sysctl(m) => serde_json::to_value(m),
        }
        .expect("isolator values have string keys and serialize infallibly");
        Isolator {
            name: value
                .name()
                .parse()
                .expect("isolator name constants are ac identifiers"),
            value: json,
        }
    }
}

/// Where an isolator list sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolatorScope {
    /// `app.isolators`: bounds one app.
    App,
    /// The pod manifest's `isolators`: bounds the whole pod.
    Pod,
}

impl fmt::Display for IsolatorScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IsolatorScope::App => "app",
            IsolatorScope::Pod => "pod",
        })
    }
}

/// The typed value of an isolator the spec defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsolatorValue {
    /// `resource/cpu`.
    ResourceCpu(Resource),
    /// `resource/memory`.
    ResourceMemory(Resource),
    /// `resource/block-bandwidth`.
    ResourceBlockBandwidth(Resource),
    /// `resource/block-iops`.
    ResourceBlockIops(Resource),
    /// `resource/network-bandwidth`.
    ResourceNetworkBandwidth(Resource),
    /// `os/linux/capabilities-retain-set`.
    CapabilitiesRetainSet(CapabilitySet),
    /// `os/linux/capabilities-remove-set`.
    CapabilitiesRemoveSet(CapabilitySet),
    /// `os/linux/no-new-privileges`.
    NoNewPrivileges(bool),
    /// `os/linux/seccomp-remove-set`.
    SeccompRemoveSet(SeccompSet),
    /// `os/linux/seccomp-retain-set`.
    SeccompRetainSet(SeccompSet),
    /// `os/linux/selinux-context`.
    SelinuxContext(SelinuxContext),
    /// `os/linux/apparmor-profile`.
    ApparmorProfile(ApparmorProfile),
    /// `os/linux/oom-score-adj`, −1000..=1000.
    OomScoreAdj(i32),
    /// `os/linux/cpu-shares`, 2..=262144.
    CpuShares(u32),
    /// `os/unix/sysctl`: name → value; which names are allowed is the executor's policy.
    Sysctl(BTreeMap<String, String>),
}

impl IsolatorValue {
    /// The isolator name this value belongs to.
    pub fn name(&self) -> &'static str {
        match self {
            IsolatorValue::ResourceCpu(_) => RESOURCE_CPU,
            IsolatorValue::ResourceMemory(_) => RESOURCE_MEMORY,
            IsolatorValue::ResourceBlockBandwidth(_) => RESOURCE_BLOCK_BANDWIDTH,
            IsolatorValue::ResourceBlockIops(_) => RESOURCE_BLOCK_IOPS,
            IsolatorValue::ResourceNetworkBandwidth(_) => RESOURCE_NETWORK_BANDWIDTH,
            IsolatorValue::CapabilitiesRetainSet(_) => LINUX_CAPABILITIES_RETAIN_SET,
            IsolatorValue::CapabilitiesRemoveSet(_) => LINUX_CAPABILITIES_REMOVE_SET,
            IsolatorValue::NoNewPrivileges(_) => LINUX_NO_NEW_PRIVILEGES,
            IsolatorValue::SeccompRemoveSet(_) => LINUX_SECCOMP_REMOVE_SET,
            IsolatorValue::SeccompRetainSet(_) => LINUX_SECCOMP_RETAIN_SET,
            IsolatorValue::SelinuxContext(_) => LINUX_SELINUX_CONTEXT,
            IsolatorValue::ApparmorProfile(_) => LINUX_APPARMOR_PROFILE,
            IsolatorValue::OomScoreAdj(_) => LINUX_OOM_SCORE_ADJ,
            IsolatorValue::CpuShares(_) => LINUX_CPU_SHARES,
            IsolatorValue::Sysctl(_) => UNIX_SYSCTL,
        }
    }

    /// Whether ace.md lets this isolator appear at `scope`. oom-score-adj and cpu-shares have
    /// no scope in the spec text and are accepted at both.
    pub fn allowed_in(&self, scope: IsolatorScope) -> bool {
        match self {
            IsolatorValue::CapabilitiesRetainSet(_)
            | IsolatorValue::CapabilitiesRemoveSet(_)
            | IsolatorValue::NoNewPrivileges(_)
            | IsolatorValue::SeccompRemoveSet(_)
            | IsolatorValue::SeccompRetainSet(_) => scope == IsolatorScope::App,
            IsolatorValue::Sysctl(_) => scope == IsolatorScope::Pod,
            _ => true,
        }
    }

    /// Whether at most one isolator of this name may appear in one list.
    pub fn single_instance(&self) -> bool {
        matches!(
            self,
            IsolatorValue::SeccompRemoveSet(_)
                | IsolatorValue::SeccompRetainSet(_)
                | IsolatorValue::SelinuxContext(_)
                | IsolatorValue::ApparmorProfile(_)
                | IsolatorValue::OomScoreAdj(_)
                | IsolatorValue::CpuShares(_)
                | IsolatorValue::Sysctl(_)
        )
    }

    /// The isolator that must not appear in the same list (ace.md).
    pub fn conflicts_with(&self) -> Option<&'static str> {
        match self {
            IsolatorValue::CapabilitiesRetainSet(_) => Some(LINUX_CAPABILITIES_REMOVE_SET),
            IsolatorValue::CapabilitiesRemoveSet(_) => Some(LINUX_CAPABILITIES_RETAIN_SET),
            IsolatorValue::SeccompRemoveSet(_) => Some(LINUX_SECCOMP_RETAIN_SET),
            IsolatorValue::SeccompRetainSet(_) => Some(LINUX_SECCOMP_REMOVE_SET),
            _ => None,
        }
    }
}

/// Checks every isolator of a list at `field` (`app.isolators`, `isolators`).
///
/// An app rejects names the spec does not define (as the reference schema does); a pod keeps
/// them, since pod-level isolators are not checked by name in the reference schema.
pub(crate) fn validate_isolators(
    isolators: &[Isolator],
    field: &str,
    scope: IsolatorScope,
) -> Result<()> {
    let mut seen: Vec<&'static str> = Vec::new();
    for (i, iso) in isolators.iter().enumerate() {
        let name_field = format!("{field}[{i}].name");
        let Some(value) = iso.parse_at(&format!("{field}[{i}].value"))? else {
            if scope == IsolatorScope::App {
                return Err(SchemaError::invalid(
                    name_field,
                    format!("unknown isolator {:?}", iso.name.as_str()),
                ));
            }
            continue;
        };
        let name = value.name();
        if !value.allowed_in(scope) {
            return Err(SchemaError::invalid(
                name_field,
                format!("{name} is not allowed at {scope} level"),
            ));
        }
        if value.single_instance() && seen.contains(&name) {
            return Err(SchemaError::invalid(
                name_field,
                format!("only one {name} isolator is allowed per {scope}"),
            ));
        }
        if let Some(other) = value.conflicts_with().filter(|o| seen.contains(o)) {
            return Err(SchemaError::invalid(
                name_field,
                format!("{name} cannot be used together with {other}"),
            ));
        }
        seen.push(name);
    }
    Ok(())
}

fn int_in_range(v: &serde_json::Value, field: &str, min: i64, max: i64) -> Result<i64> {
    let n: i64 = from_value(v, field)?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(SchemaError::invalid(
            field,
            format!("{n} is not between {min} and {max}"),
        ))
    }
}

/// A resource isolator's value: `request` defaults to `limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// Whether the limit applies to every device/interface: must be true for block and
    /// network isolators, false or absent for cpu and memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// Guaranteed amount (cpu and memory only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Quantity>,
    /// Maximum amount.
    pub limit: Quantity,
}

impl Resource {
    /// A value with only a limit, as `--memory=1G` gives.
    pub fn with_limit(limit: Quantity) -> Resource {
        Resource {
            default: None,
            request: None,
            limit,
        }
    }

    /// The effective request: `request`, or `limit` when it is omitted (ace.md).
    pub fn request_or_limit(&self) -> &Quantity {
        self.request.as_ref().unwrap_or(&self.limit)
    }

    fn parse(
        v: &serde_json::Value,
        field: &str,
        name: &str,
        device_wide: bool,
    ) -> Result<Resource> {
        let r: Resource = from_value(v, field)?;
        let default = r.default.unwrap_or(false);
        if device_wide {
            if !default {
                return Err(SchemaError::invalid(
                    format!("{field}.default"),
                    format!("must be true for {name}"),
                ));
            }
            if r.request.is_some() {
                return Err(SchemaError::invalid(
                    format!("{field}.request"),
                    format!("is not supported by {name}"),
                ));
            }
        } else if default {
            return Err(SchemaError::invalid(
                format!("{field}.default"),
                format!("must be false for {name}"),
            ));
        }
        Ok(r)
    }
}

/// A resource quantity (ace.md "Resource Isolators"; the grammar of Kubernetes'
/// `resource.Quantity` that the reference vendors): a non-negative decimal with an optional
/// suffix `m` (milli), `k`/`K`, `M`, `G`, `T`, `P`, `E` (powers of 1000) or `Ki`..`Ei` (powers of
/// 1024). `1GB`, signs and exponents are rejected.
///
/// The text is kept for round-trips; the value is an integer in milli-units, as the spec
/// requires quantities to be processed as integers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Quantity {
    text: String,
    milli: u128,
}

/// The multiplier of a suffix, in milli-units.
fn suffix_milli(suffix: &str) -> Option<u128> {
    const K: u128 = 1000;
    const KI: u128 = 1024;
    Some(match suffix {
        "m" => 1,
        "" => K,
        "k" | "K" => K * K,
        "M" => K.pow(3),
        "G" => K.pow(4),
        "T" => K.pow(5),
        "P" => K.pow(6),
        "E" => K.pow(7),
        "Ki" => K * KI,
        "Mi" => K * KI.pow(2),
        "Gi" => K * KI.pow(3),
        "Ti" => K * KI.pow(4),
        "Pi" => K * KI.pow(5),
        "Ei" => K * KI.pow(6),
        _ => return None,
    })
}

impl Quantity {
    /// Parses `500m`, `0.3`, `1.5Gi`, `128974848`, `125952Ki`, `1G`.
    pub fn parse(s: &str) -> Result<Quantity> {
        s.parse()
    }

    /// The quantity as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Thousandths of the base unit (milli-cores for cpu).
    pub fn milli_value(&self) -> u128 {
        self.milli
    }

    /// Whole base units (bytes, cores), rounded up as Kubernetes does.
    pub fn value(&self) -> u64 {
        u64::try_from(self.milli.div_ceil(1000)).expect("checked at parse time")
    }

    fn compute(s: &str) -> Option<u128> {
        let digits_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(digits_end);
        let multiplier = suffix_milli(suffix)?;
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return None;
        }
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        if int.len() + frac.len() > 30 {
            return None;
        }
        let mantissa: u128 = format!("0{int}{frac}").parse().ok()?;
        let scale = 10u128.pow(u32::try_from(frac.len()).ok()?);
        let milli = mantissa.checked_mul(multiplier)?.div_ceil(scale);
        // Kubernetes keeps values in an int64; so do we, for the base units.
        (milli.div_ceil(1000) <= i64::MAX as u128).then_some(milli)
    }
}

impl FromStr for Quantity {
    type Err = SchemaError;
    fn from_str(s: &str) -> Result<Quantity> {
        Quantity::compute(s)
            .map(|milli| Quantity {
                text: s.to_owned(),
                milli,
            })
            .ok_or_else(|| SchemaError::invalid("quantity", quantity_rule(s)))
    }
}

fn quantity_rule(s: &str) -> String {
    format!(
        "{s:?} is not a resource quantity (a number with an optional suffix m, k, M, G, T, P, E or Ki..Ei, like 500m or 1Gi)"
    )
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    /// Accepts a string, or a non-negative JSON integer as Kubernetes' decoder does.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;
        impl Visitor<'_> for QuantityVisitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity string like \"500m\" or \"1Gi\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Quantity, E> {
                s.parse()
                    .map_err(|_: SchemaError| E::custom(quantity_rule(s)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Quantity, E> {
                self.visit_str(&n.to_string())
            }
        }
        d.deserialize_any(QuantityVisitor)
    }
}

/// A capability isolator's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitySet {
    /// Capability names, e.g. `CAP_NET_BIND_SERVICE`.
    pub set: Vec<String>,
}

impl CapabilitySet {
    fn parse(v: &serde_json::Value, field: &str) -> Result<CapabilitySet> {
        let s: CapabilitySet = from_value(v, field)?;
        check_set(&s.set, &format!("{field}.set"))?;
        Ok(s)
    }
}

fn check_set(set: &[String], field: &str) -> Result<()> {
    if set.is_empty() {
        return Err(SchemaError::invalid(field, "must not be empty"));
    }
    if let Some(i) = set.iter().position(String::is_empty) {
        return Err(SchemaError::invalid(
            format!("{field}[{i}]"),
            "must not be empty",
        ));
    }
    Ok(())
}

/// A seccomp isolator's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompSet {
    /// Syscall names, or `@scope/wildcard` values such as `@appc.io/all`.
    pub set: Vec<String>,
    /// Upper-case errno name returned by blocked syscalls; absent or empty means `SIGSYS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
}

impl SeccompSet {
    fn parse(v: &serde_json::Value, field: &str) -> Result<SeccompSet> {
        let s: SeccompSet = from_value(v, field)?;
        check_set(&s.set, &format!("{field}.set"))?;
        for (i, entry) in s.set.iter().enumerate() {
            if let Some(wildcard) = entry.strip_prefix('@') {
                let scoped = wildcard
                    .split_once('/')
                    .is_some_and(|(scope, name)| !scope.is_empty() && !name.is_empty());
                if !scoped {
                    return Err(SchemaError::invalid(
                        format!("{field}.set[{i}]"),
                        format!("{entry:?} is not a scoped wildcard like @appc.io/all"),
                    ));
                }
            }
        }
        if let Some(errno) = s.errno.as_deref().filter(|e| !e.is_empty()) {
            let ok = errno.len() > 1
                && errno.starts_with('E')
                && errno
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if !ok {
                return Err(SchemaError::invalid(
                    format!("{field}.errno"),
                    format!("{errno:?} is not an upper-case errno name like EPERM"),
                ));
            }
        }
        Ok(s)
    }
}

/// An SELinux context: `user:role:type:level`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelinuxContext {
    /// SELinux user.
    pub user: String,
    /// SELinux role.
    pub role: String,
    /// SELinux type (domain).
    #[serde(rename = "type")]
    pub type_: String,
    /// SELinux level (may contain `:`, as in `s0:c1,c2`).
    pub level: String,
}

impl SelinuxContext {
    fn parse(v: &serde_json::Value, field: &str) -> Result<SelinuxContext> {
        let c: SelinuxContext = from_value(v, field)?;
        for (key, part) in [("user", &c.user), ("role", &c.role), ("type", &c.type_)] {
            if part.is_empty() || part.contains(':') {
                return Err(SchemaError::invalid(
                    format!("{field}.{key}"),
                    "must be non-empty and contain no ':'",
                ));
            }
        }
        if c.level.is_empty() {
            return Err(SchemaError::invalid(
                format!("{field}.level"),
                "must not be empty",
            ));
        }
        Ok(c)
    }
}

impl fmt::Display for SelinuxContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.user, self.role, self.type_, self.level
        )
    }
}

/// An AppArmor isolator's value; the executor must refuse to run if the profile isn't loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApparmorProfile {
    /// Profile name.
    pub profile: String,
}

impl ApparmorProfile {
    fn parse(v: &serde_json::Value, field: &str) -> Result<ApparmorProfile> {
        let p: ApparmorProfile = from_value(v, field)?;
        if p.profile.is_empty() {
            return Err(SchemaError::invalid(
                format!("{field}.profile"),
                "must not be empty",
            ));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_follow_the_kubernetes_grammar() {
        let cases: &[(&str, u128)] = &[
            ("128974848", 128_974_848_000),
            ("125952Ki", 128_974_848_000),
            ("123Mi", 128_974_848_000),
            ("300m", 300),
            ("0.3", 300),
            (".5", 500),
            ("5.", 5000),
            ("1.5Gi", 1_610_612_736_000),
            ("1G", 1_000_000_000_000),
            ("1K", 1_000_000),
            ("1k", 1_000_000),
            ("2E", 2_000_000_000_000_000_000_000),
            ("0", 0),
            ("0.0001", 1), // rounded up to a whole milli
        ];
        for (text, milli) in cases {
            let q = Quantity::parse(text).unwrap();
            assert_eq!(q.milli_value(), *milli, "{text}");
            assert_eq!(q.as_str(), *text);
        }
        assert_eq!(Quantity::parse("250m").unwrap().value(), 1);
        assert_eq!(Quantity::parse("1Gi").unwrap().value(), 1 << 30);
        for bad in [
            "1GB", "", "abc", "-1", "+1", "1e3", "1.2.3", "1 G", "Mi", ".", "1mi", "10E", "1g",
        ] {
            let err = Quantity::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("is not a resource quantity"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn quantities_accept_json_integers_and_serialize_as_written() {
        let r: Resource = serde_json::from_value(json!({"limit": 1000, "request": "0.5"})).unwrap();
        assert_eq!(r.limit.value(), 1000);
        assert_eq!(r.request_or_limit().milli_value(), 500);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"limit": "1000", "request": "0.5"})
        );
    }

    #[test]
    fn typed_values_build_isolators_that_parse_back() {
        let values = [
            IsolatorValue::ResourceMemory(Resource::with_limit(Quantity::parse("1G").unwrap())),
            IsolatorValue::CapabilitiesRetainSet(CapabilitySet {
                set: vec!["CAP_NET_ADMIN".into()],
            }),
            IsolatorValue::NoNewPrivileges(true),
            IsolatorValue::SeccompRetainSet(SeccompSet {
                set: vec!["@appc.io/all".into()],
                errno: Some("ENOSYS".into()),
            }),
            IsolatorValue::SelinuxContext(SelinuxContext {
                user: "system_u".into(),
                role: "system_r".into(),
                type_: "svirt_lxc_net_t".into(),
                level: "s0:c1,c2".into(),
            }),
            IsolatorValue::ApparmorProfile(ApparmorProfile {
                profile: "rkt-default".into(),
            }),
            IsolatorValue::OomScoreAdj(-500),
            IsolatorValue::CpuShares(1024),
            IsolatorValue::Sysctl(BTreeMap::from([("net.ipv4.ip_forward".into(), "1".into())])),
        ];
        for value in values {
            let iso = Isolator::from(value.clone());
            assert_eq!(iso.name.as_str(), value.name());
            assert_eq!(iso.parse().unwrap(), Some(value));
        }
        let ctx = SelinuxContext::parse(
            &json!({"user": "u", "role": "r", "type": "t", "level": "s0"}),
            "v",
        )
        .unwrap();
        assert_eq!(ctx.to_string(), "u:r:t:s0");
    }

    #[test]
    fn unknown_names_parse_to_none() {
        let iso = Isolator {
            name: "example.com/custom".parse().unwrap(),
            value: json!({"anything": [1, 2]}),
        };
        assert_eq!(iso.parse().unwrap(), None);
        assert!(
            validate_isolators(std::slice::from_ref(&iso), "isolators", IsolatorScope::Pod).is_ok()
        );
        let err = validate_isolators(&[iso], "app.isolators", IsolatorScope::App).unwrap_err();
        assert_eq!(err.field(), Some("app.isolators[0].name"));
    }
}
