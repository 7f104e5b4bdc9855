//! `--insecure-options`: the checks a user chose to skip. Everything is checked by default.

use std::fmt;
use std::str::FromStr;

/// One check that can be turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Insecure {
    /// Image signature verification.
    Image,
    /// TLS certificate checks when fetching.
    Tls,
    /// Fetching over plain HTTP.
    Http,
    /// Trusting keys without a fingerprint check.
    Pubkey,
    /// Restricting app capabilities.
    Capabilities,
    /// Keeping the kernel's tunables (/proc/sys, /sys) and the cgroup tree read-only in apps.
    Paths,
    /// The seccomp filter.
    Seccomp,
}

const ALL: [(&str, Insecure); 7] = [
    ("image", Insecure::Image),
    ("tls", Insecure::Tls),
    ("http", Insecure::Http),
    ("pubkey", Insecure::Pubkey),
    ("capabilities", Insecure::Capabilities),
    ("paths", Insecure::Paths),
    ("seccomp", Insecure::Seccomp),
];

/// The set given to `--insecure-options` (a comma-separated list, as in the original rkt).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsecureOptions(Vec<Insecure>);

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown insecure option {0:?}; valid ones are none, image, tls, http, pubkey, capabilities, \
     paths, seccomp, ondisk, all-fetch, all-run, all"
)]
pub struct UnknownInsecureOption(String);

impl InsecureOptions {
    pub fn allows(&self, check: Insecure) -> bool {
        self.0.contains(&check)
    }
}

impl FromStr for InsecureOptions {
    type Err = UnknownInsecureOption;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = Vec::new();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let add: &[Insecure] = match word {
                "none" => &[],
                // The original's `ondisk` check is always done here; accepted for compatibility.
                "ondisk" => &[],
                "all-fetch" => &[
                    Insecure::Image,
                    Insecure::Tls,
                    Insecure::Http,
                    Insecure::Pubkey,
                ],
                "all-run" => &[Insecure::Capabilities, Insecure::Paths, Insecure::Seccomp],
                "all" => &[
                    Insecure::Image,
                    Insecure::Tls,
                    Insecure::Http,
                    Insecure::Pubkey,
                    Insecure::Capabilities,
                    Insecure::Paths,
                    Insecure::Seccomp,
                ],
                other => match ALL.iter().find(|(name, _)| *name == other) {
                    Some((_, check)) => std::slice::from_ref(check),
                    None => return Err(UnknownInsecureOption(other.to_owned())),
                },
            };
            set.extend_from_slice(add);
        }
        set.sort();
        set.dedup();
        Ok(InsecureOptions(set))
    }
}

impl fmt::Display for InsecureOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = ALL
            .iter()
            .filter(|(_, c)| self.allows(*c))
            .map(|(n, _)| *n)
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_groups() {
        let o: InsecureOptions = "image,tls".parse().unwrap();
        assert!(o.allows(Insecure::Image) && o.allows(Insecure::Tls));
        assert!(!o.allows(Insecure::Http));
        let o: InsecureOptions = "all-fetch".parse().unwrap();
        assert!(o.allows(Insecure::Pubkey) && !o.allows(Insecure::Seccomp));
        assert_eq!(
            "none".parse::<InsecureOptions>().unwrap().to_string(),
            "none"
        );
        let err = "imgae".parse::<InsecureOptions>().unwrap_err().to_string();
        assert!(err.contains("\"imgae\"") && err.contains("valid ones"));
    }
}
