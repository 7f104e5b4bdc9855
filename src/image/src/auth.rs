//! Credentials for servers that ask for them, from the original rkt's configuration files:
//! `<system-config>/auth.d/*.json` and then `<local-config>/auth.d/*.json` (the local one wins,
//! host by host).
//!
//! ```json
//! {"rktKind": "dockerAuth", "rktVersion": "v1", "registries": ["quay.io"],
//!  "credentials": {"user": "foo", "password": "bar"}}
//! {"rktKind": "auth", "rktVersion": "v1", "domains": ["example.com"], "type": "basic",
//!  "credentials": {"user": "foo", "password": "bar"}}
//! ```
//!
//! `dockerAuth` entries are used by the registry client (HTTP Basic, or basic credentials on
//! the bearer-token request); `auth` entries (`basic` or `oauth`) add an `Authorization`
//! header to https:// fetches of ACIs, signatures and keys from those hosts. As in the
//! original, a host named twice within one directory is an error. Passwords are never
//! printed; a file that others may read is used but warned about.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

/// Why the credentials configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Io(#[from] rkt_common::IoError),
    #[error("credentials file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("credentials for {host} are given twice in {dir} ({first} and {second}); keep one")]
    Duplicate {
        host: String,
        dir: PathBuf,
        first: PathBuf,
        second: PathBuf,
    },
}

/// A user name and password. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct BasicCredentials {
    pub user: String,
    pub password: String,
}

impl BasicCredentials {
    /// The `Authorization` header value for HTTP Basic.
    pub fn header(&self) -> String {
        let pair = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Credentials for a registry, and the file they came from (named in errors, so a user knows
/// which file to fix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryCredentials {
    pub basic: BasicCredentials,
    pub file: PathBuf,
}

/// What an `auth` entry sends to its domains.
#[derive(Clone, PartialEq, Eq)]
pub enum HostAuth {
    Basic(BasicCredentials),
    /// `type: oauth`: `Authorization: Bearer <token>`.
    Bearer(String),
}

impl HostAuth {
    pub fn header(&self) -> String {
        match self {
            HostAuth::Basic(basic) => basic.header(),
            HostAuth::Bearer(token) => format!("Bearer {token}"),
        }
    }
}

impl fmt::Debug for HostAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostAuth::Basic(b) => write!(f, "Basic({b:?})"),
            HostAuth::Bearer(_) => f.write_str("Bearer(<hidden>)"),
        }
    }
}

/// Every credential configured, by host (`host` or `host:port`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    registries: BTreeMap<String, RegistryCredentials>,
    hosts: BTreeMap<String, HostAuth>,
    /// Where a user should add a file, for error messages.
    local_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    rkt_kind: String,
    rkt_version: String,
}

#[derive(Deserialize)]
struct DockerAuthV1 {
    // The original's documentation also shows `domains` in a dockerAuth file; accept both.
    #[serde(default, alias = "domains")]
    registries: Vec<String>,
    credentials: BasicCredentials,
}

#[derive(Deserialize)]
struct AuthV1 {
    domains: Vec<String>,
    #[serde(rename = "type")]
    kind: String,
    credentials: serde_json::Value,
}

impl AuthConfig {
    /// Reads `<system>/auth.d` and then `<local>/auth.d` (either may be missing). Only regular
    /// `*.json` files are read; files of other kinds (`paths`, …) are skipped.
    pub fn load(local_config: &Path, system_config: &Path) -> Result<AuthConfig, AuthError> {
        AuthConfig::load_with_user(local_config, system_config, None)
    }

    /// As [`AuthConfig::load`], then `<user>/auth.d`, whose entries win (the original's
    /// `--user-config`).
    pub fn load_with_user(
        local_config: &Path,
        system_config: &Path,
        user_config: Option<&Path>,
    ) -> Result<AuthConfig, AuthError> {
        let mut config = AuthConfig {
            local_dir: Some(local_config.join("auth.d")),
            ..AuthConfig::default()
        };
        for base in [Some(system_config), Some(local_config), user_config]
            .into_iter()
            .flatten()
        {
            let layer = read_dir(&base.join("auth.d"))?;
            config.registries.extend(layer.registries);
            config.hosts.extend(layer.hosts);
        }
        Ok(config)
    }

    /// Credentials for a registry (`host[:port]`, as in `docker://host:port/…`).
    pub fn registry(&self, registry: &str) -> Option<&RegistryCredentials> {
        self.registries.get(registry)
    }

    /// What to send to `host` (`host[:port]`) on https:// fetches.
    pub fn host(&self, host: &str) -> Option<&HostAuth> {
        self.hosts.get(host)
    }

    /// Every registry's credentials, by registry, in order (for `rkt config`).
    pub fn registries(&self) -> impl Iterator<Item = (&str, &RegistryCredentials)> {
        self.registries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Every host's credentials, by host, in order (for `rkt config`).
    pub fn hosts(&self) -> impl Iterator<Item = (&str, &HostAuth)> {
        self.hosts.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Adds credentials for a registry (for callers that do not read files, and tests).
    pub fn add_registry(&mut self, registry: &str, basic: BasicCredentials, file: PathBuf) {
        self.registries
            .insert(registry.to_owned(), RegistryCredentials { basic, file });
    }

    /// Where a user should put a credentials file: named in "asks for credentials" errors.
    pub fn local_dir(&self) -> PathBuf {
        self.local_dir
            .clone()
            .unwrap_or_else(|| Path::new(crate::trust::DEFAULT_LOCAL_CONFIG).join("auth.d"))
    }
}

/// The entries of one `auth.d` directory; a host named in two of its files is an error.
fn read_dir(dir: &Path) -> Result<AuthConfig, AuthError> {
    let mut out = AuthConfig::default();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(error) => {
            return Err(rkt_common::IoError::new("reading credentials", dir, error).into());
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && p.is_file())
        .collect();
    paths.sort();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut claim = |host: &str, path: &Path| match seen.get(host) {
        Some(first) => Err(AuthError::Duplicate {
            host: host.to_owned(),
            dir: dir.to_owned(),
            first: first.clone(),
            second: path.to_owned(),
        }),
        None => {
            seen.insert(host.to_owned(), path.to_owned());
            Ok(())
        }
    };
    for path in paths {
        let io_err = |error| rkt_common::IoError::new("reading credentials", &path, error);
        let bytes = fs::read(&path).map_err(io_err)?;
        let invalid = |reason: String| AuthError::Invalid {
            path: path.clone(),
            reason,
        };
        let header: Header = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("not an rkt configuration file: {e}")))?;
        match (header.rkt_kind.as_str(), header.rkt_version.as_str()) {
            ("dockerAuth", "v1") => {
                let entry: DockerAuthV1 = serde_json::from_slice(&bytes)
                    .map_err(|e| invalid(format!("invalid dockerAuth v1: {}", describe(&e))))?;
                check_basic(&entry.credentials).map_err(invalid)?;
                if entry.registries.is_empty() {
                    return Err(invalid("\"registries\" is empty".to_owned()));
                }
                warn_if_readable(&path);
                for registry in &entry.registries {
                    claim(registry, &path)?;
                    out.add_registry(registry, entry.credentials.clone(), path.clone());
                }
            }
            ("auth", "v1") => {
                let entry: AuthV1 = serde_json::from_slice(&bytes)
                    .map_err(|e| invalid(format!("invalid auth v1: {}", describe(&e))))?;
                if entry.domains.is_empty() {
                    return Err(invalid("\"domains\" is empty".to_owned()));
                }
                let auth = match entry.kind.as_str() {
                    "basic" => {
                        let basic: BasicCredentials = serde_json::from_value(entry.credentials)
                            .map_err(|e| {
                                invalid(format!(
                                    "basic credentials need user and password: {}",
                                    describe(&e)
                                ))
                            })?;
                        check_basic(&basic).map_err(invalid)?;
                        HostAuth::Basic(basic)
                    }
                    "oauth" => {
                        let token = entry
                            .credentials
                            .get("token")
                            .and_then(|t| t.as_str())
                            .filter(|t| !t.is_empty())
                            .ok_or_else(|| {
                                invalid("oauth credentials need a non-empty token".to_owned())
                            })?;
                        HostAuth::Bearer(token.to_owned())
                    }
                    other => {
                        return Err(invalid(format!(
                            "unknown auth type {other:?} (expected basic or oauth)"
                        )));
                    }
                };
                warn_if_readable(&path);
                for domain in &entry.domains {
                    claim(domain, &path)?;
                    out.hosts.insert(domain.clone(), auth.clone());
                }
            }
            ("auth" | "dockerAuth", version) => {
                return Err(invalid(format!("unsupported rktVersion {version:?}")));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A JSON error without the values it quotes: a wrongly typed password must not be printed.
fn describe(e: &serde_json::Error) -> String {
    let message = e.to_string();
    if message.starts_with("missing field") {
        message
    } else {
        format!(
            "a field is missing or of the wrong type (line {}, column {})",
            e.line(),
            e.column()
        )
    }
}

fn check_basic(basic: &BasicCredentials) -> Result<(), String> {
    if basic.user.is_empty() || basic.password.is_empty() {
        return Err("credentials need a non-empty user and password".to_owned());
    }
    Ok(())
}

/// The original rkt read these files whatever their mode; rkt warns instead of refusing, so an
/// upgrade does not break fetches, but says how to fix it.
fn warn_if_readable(path: &Path) {
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o044 != 0
    {
        tracing::warn!(
            "{} holds a password and other users can read it; run chmod 600 on it",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        fs::create_dir_all(dir.join("auth.d")).unwrap();
        fs::write(dir.join("auth.d").join(name), body).unwrap();
    }

    #[test]
    fn local_overrides_system_host_by_host() {
        let tmp = tempfile::tempdir().unwrap();
        let (local, system) = (tmp.path().join("etc"), tmp.path().join("lib"));
        write(
            &system,
            "d.json",
            r#"{"rktKind":"dockerAuth","rktVersion":"v1","registries":["a.io","b.io"],"credentials":{"user":"sys","password":"p1"}}"#,
        );
        write(
            &local,
            "d.json",
            r#"{"rktKind":"dockerAuth","rktVersion":"v1","registries":["b.io"],"credentials":{"user":"loc","password":"p2"}}"#,
        );
        write(
            &local,
            "h.json",
            r#"{"rktKind":"auth","rktVersion":"v1","domains":["c.io"],"type":"oauth","credentials":{"token":"t"}}"#,
        );
        write(&local, "notes.txt", "ignored");
        write(
            &local,
            "paths.json",
            r#"{"rktKind":"paths","rktVersion":"v1","data":"/x"}"#,
        );
        let config = AuthConfig::load(&local, &system).unwrap();
        assert_eq!(config.registry("a.io").unwrap().basic.user, "sys");
        assert_eq!(config.registry("b.io").unwrap().basic.user, "loc");
        assert!(config.registry("c.io").is_none());
        assert_eq!(config.host("c.io").unwrap().header(), "Bearer t");
        // "user:pass" in base64.
        assert_eq!(
            BasicCredentials {
                user: "user".into(),
                password: "pass".into()
            }
            .header(),
            "Basic dXNlcjpwYXNz"
        );
    }

    #[test]
    fn user_config_is_read_last_and_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = ["lib", "etc", "home"].map(|d| tmp.path().join(d));
        for (dir, user) in dirs.iter().zip(["sys", "loc", "usr"]) {
            write(
                dir,
                "h.json",
                &format!(
                    r#"{{"rktKind":"auth","rktVersion":"v1","domains":["{user}.io","all.io"],"type":"basic","credentials":{{"user":"{user}","password":"p"}}}}"#
                ),
            );
        }
        let [system, local, user] = &dirs;
        let config = AuthConfig::load_with_user(local, system, Some(user)).unwrap();
        let who = |host: &str| match config.host(host) {
            Some(HostAuth::Basic(b)) => b.user.clone(),
            other => format!("{other:?}"),
        };
        assert_eq!(who("all.io"), "usr");
        assert_eq!((who("sys.io"), who("loc.io")), ("sys".into(), "loc".into()));
        assert_eq!(
            config.hosts().map(|(h, _)| h).collect::<Vec<_>>(),
            ["all.io", "loc.io", "sys.io", "usr.io"]
        );
        // Without it, as before.
        let config = AuthConfig::load(local, system).unwrap();
        assert!(config.host("usr.io").is_none());
    }

    #[test]
    fn duplicates_and_bad_files_are_errors_without_passwords() {
        let tmp = tempfile::tempdir().unwrap();
        let d = r#"{"rktKind":"dockerAuth","rktVersion":"v1","registries":["a.io"],"credentials":{"user":"u","password":"secret"}}"#;
        write(tmp.path(), "1.json", d);
        write(tmp.path(), "2.json", d);
        let err = AuthConfig::load(tmp.path(), Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("a.io") && err.contains("twice"), "{err}");
        assert!(!err.contains("secret"), "{err}");

        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "1.json",
            r#"{"rktKind":"auth","rktVersion":"v1","domains":["a.io"],"type":"digest","credentials":{"user":"u","password":"secret"}}"#,
        );
        let err = AuthConfig::load(tmp.path(), Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown auth type"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let creds = BasicCredentials {
            user: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{creds:?}").contains("secret"));
    }
}
