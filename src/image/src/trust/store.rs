//! The trust store on disk: armored public keys under two config roots.
//!
//! ```text
//! <root>/trustedkeys/root.d/<fingerprint>                    trusted for every image
//! <root>/trustedkeys/prefix.d/<escaped prefix>/<fingerprint> trusted for images under prefix
//! ```
//!
//! Both the local root (`/etc/rkt`, the admin's) and the system root (`/usr/lib/rkt`, the
//! vendor's) are read; a local file shadows a system file of the same path. Writes go to the
//! local root only. A prefix (`example.com/app`) is stored as one path component with its `/`
//! written as `%2F`: an AC identifier never holds `%`, so the name decodes back unambiguously
//! and can never be `..` or hold a separator.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rkt_schema::AcIdentifier;

use super::error::{IoContext, TrustError};
use super::key::{Fingerprint, PublicKey};

/// What a prefix names: appc image names (`example.com/app`) or registry images
/// (`docker://registry.example.com/team`). The two never cover each other's images.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ImagePrefix {
    Appc(AcIdentifier),
    /// `docker://HOST[:PORT][/PATH]`, as written (Docker Hub as `docker.io`).
    Docker(String),
}

impl ImagePrefix {
    /// Parses a `--prefix` argument: `docker://…` names registry images (and the names
    /// archives carry), anything else an appc name.
    pub fn parse(name: &str) -> Result<ImagePrefix, TrustError> {
        if let Some(rest) = name.strip_prefix("docker://") {
            return docker_name(rest)
                .map(|n| ImagePrefix::Docker(format!("docker://{n}")))
                .ok_or_else(|| TrustError::DockerPrefix(name.to_owned()));
        }
        name.parse()
            .map(ImagePrefix::Appc)
            .map_err(TrustError::Prefix)
    }

    pub fn as_str(&self) -> &str {
        match self {
            ImagePrefix::Appc(name) => name.as_str(),
            ImagePrefix::Docker(name) => name,
        }
    }

    fn covers(&self, image: &ImageSubject<'_>) -> bool {
        let (prefix, image) = match (self, image) {
            (ImagePrefix::Appc(p), ImageSubject::Appc(i)) => (p.as_str(), i.as_str()),
            (ImagePrefix::Docker(p), ImageSubject::Docker(i)) => {
                (p.strip_prefix("docker://").unwrap_or(p), *i)
            }
            _ => return false,
        };
        image == prefix
            || image
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

impl std::fmt::Display for ImagePrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The image a key or policy is asked about: an appc name, or a registry image's
/// `HOST[:PORT]/REPOSITORY` (as [`docker_name`] normalizes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSubject<'a> {
    Appc(&'a AcIdentifier),
    Docker(&'a str),
}

impl std::fmt::Display for ImageSubject<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageSubject::Appc(name) => write!(f, "{name}"),
            ImageSubject::Docker(name) => write!(f, "docker://{name}"),
        }
    }
}

/// `HOST[:PORT][/PATH]` with Docker Hub's spellings made one (`docker.io`, and `library/`
/// for its one-part names), lowercase, no tag or digest; `None` if it is not such a name.
pub fn docker_name(name: &str) -> Option<String> {
    let name = name.trim_end_matches('/');
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (name, None),
    };
    let is_host = first.contains('.') || first.contains(':') || first == "localhost";
    let (host, path) = if is_host {
        (first.to_owned(), rest.map(str::to_owned))
    } else {
        ("docker.io".to_owned(), Some(name.to_owned()))
    };
    let host = match host.as_str() {
        "registry-1.docker.io" | "index.docker.io" => "docker.io".to_owned(),
        _ => host,
    };
    let path = match path {
        Some(p) if host == "docker.io" && !p.contains('/') => Some(format!("library/{p}")),
        p => p,
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:[]".contains(&b));
    let path_ok = path.as_deref().is_none_or(|p| {
        p.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        })
    });
    (host_ok && path_ok).then(|| match path {
        Some(p) => format!("{host}/{p}"),
        None => host,
    })
}

/// Where a key is trusted: for every image, or for images whose name is under a prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyScope {
    /// `--root`: trusted for every image name.
    Root,
    /// `--prefix NAME`: trusted for `NAME` and names below it (`NAME/...`).
    Prefix(ImagePrefix),
}

impl KeyScope {
    /// Parses a `--prefix` argument.
    pub fn prefix(name: &str) -> Result<KeyScope, TrustError> {
        ImagePrefix::parse(name).map(KeyScope::Prefix)
    }

    /// Whether a key in this scope may vouch for the appc image `image`: `example.com/app`
    /// covers `example.com/app` and `example.com/app/sub`, never `example.com/apple`.
    pub fn covers(&self, image: &AcIdentifier) -> bool {
        self.covers_subject(&ImageSubject::Appc(image))
    }

    /// [`KeyScope::covers`] for any image: a root key covers every image, a prefix only
    /// images of its own kind.
    pub fn covers_subject(&self, image: &ImageSubject<'_>) -> bool {
        match self {
            KeyScope::Root => true,
            KeyScope::Prefix(prefix) => prefix.covers(image),
        }
    }
}

impl std::fmt::Display for KeyScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyScope::Root => f.write_str("root"),
            KeyScope::Prefix(prefix) => write!(f, "prefix {prefix}"),
        }
    }
}

/// Which config root a key file lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyOrigin {
    /// The local config dir (`--local-config`, default `/etc/rkt`).
    Local,
    /// The system (vendor) config dir (`--system-config`, default `/usr/lib/rkt`).
    System,
}

/// A key in the trust store, as `rkt trust --list` shows it.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub scope: KeyScope,
    pub origin: KeyOrigin,
    pub path: PathBuf,
    pub key: PublicKey,
}

/// The trust store over a local and a system config root.
#[derive(Debug, Clone)]
pub struct TrustStore {
    local: PathBuf,
    system: PathBuf,
}

/// The original rkt's defaults.
pub const DEFAULT_LOCAL_CONFIG: &str = "/etc/rkt";
pub const DEFAULT_SYSTEM_CONFIG: &str = "/usr/lib/rkt";

const KEYS_DIR: &str = "trustedkeys";
const ROOT_DIR: &str = "root.d";
const PREFIX_DIR: &str = "prefix.d";

impl TrustStore {
    /// A store over `local_config` (written) and `system_config` (only read). Neither needs to
    /// exist: a missing directory holds no keys.
    pub fn new(local_config: impl Into<PathBuf>, system_config: impl Into<PathBuf>) -> TrustStore {
        TrustStore {
            local: local_config.into(),
            system: system_config.into(),
        }
    }

    /// Trusts one ASCII-armored public key for `scope`, after checking that it is exactly one
    /// well-formed public key. Adding a key again replaces its file (e.g. a refreshed expiry).
    /// Returns the key as stored (its fingerprint is `.key.fingerprint()`).
    pub fn add_key(&self, scope: &KeyScope, armored: &[u8]) -> Result<TrustedKey, TrustError> {
        let key = PublicKey::from_armored(armored)?;
        let bytes = key.to_armored()?;
        let dir = self.scope_dir(&self.local, scope);
        create_dirs(&dir)?;
        let path = write_atomic(&dir, key.fingerprint().as_str(), &bytes)?;
        Ok(TrustedKey {
            scope: scope.clone(),
            origin: KeyOrigin::Local,
            path,
            key,
        })
    }

    /// Every trusted key in both roots, local first, each scope's keys by fingerprint. Files that
    /// are not keys are skipped with a warning (they trust nothing).
    pub fn list(&self) -> Result<Vec<TrustedKey>, TrustError> {
        let mut keys = BTreeMap::new();
        for (origin, root) in self.roots() {
            for scope in scopes_in(root)? {
                for (fingerprint, path) in key_files(&self.scope_dir(root, &scope))? {
                    let slot = (scope.clone(), fingerprint);
                    if keys.contains_key(&slot) {
                        continue; // shadowed by the local root
                    }
                    if let Some(key) = read_key(&path, &slot.1) {
                        keys.insert(
                            slot,
                            TrustedKey {
                                scope: scope.clone(),
                                origin,
                                path,
                                key,
                            },
                        );
                    }
                }
            }
        }
        let mut keys: Vec<TrustedKey> = keys.into_values().collect();
        keys.sort_by(|a, b| (a.origin, &a.scope).cmp(&(b.origin, &b.scope)));
        Ok(keys)
    }

    /// Stops trusting a key in every scope of the local root; returns the files removed. A key
    /// found only in the system root is refused: rkt never changes the vendor's directory.
    pub fn remove(&self, fingerprint: &Fingerprint) -> Result<Vec<PathBuf>, TrustError> {
        let mut removed = Vec::new();
        for scope in scopes_in(&self.local)? {
            let dir = self.scope_dir(&self.local, &scope);
            let path = dir.join(fingerprint.as_str());
            match fs::remove_file(&path) {
                Ok(()) => {
                    sync_dir(&dir)?;
                    removed.push(path);
                    if matches!(scope, KeyScope::Prefix(_)) {
                        // Only succeeds when empty, which is when the prefix trusts nothing.
                        let _ = fs::remove_dir(&dir);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).ctx("removing", &path).map_err(Into::into),
            }
        }
        if !removed.is_empty() {
            return Ok(removed);
        }
        for scope in scopes_in(&self.system)? {
            let path = self
                .scope_dir(&self.system, &scope)
                .join(fingerprint.as_str());
            if path.exists() {
                return Err(TrustError::VendorKey {
                    fingerprint: fingerprint.to_string(),
                    path,
                });
            }
        }
        Err(TrustError::KeyNotFound(fingerprint.to_string()))
    }

    /// The keys that may vouch for `image`: root keys and keys of every prefix covering it.
    pub(crate) fn keys_for(&self, image: &ImageSubject<'_>) -> Result<Vec<TrustedKey>, TrustError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|k| k.scope.covers_subject(image))
            .collect())
    }

    pub(crate) fn local_root(&self) -> &Path {
        &self.local
    }

    pub(crate) fn roots(&self) -> [(KeyOrigin, &Path); 2] {
        [
            (KeyOrigin::Local, &self.local),
            (KeyOrigin::System, &self.system),
        ]
    }

    pub(crate) fn scope_dir(&self, root: &Path, scope: &KeyScope) -> PathBuf {
        let keys = root.join(KEYS_DIR);
        match scope {
            KeyScope::Root => keys.join(ROOT_DIR),
            KeyScope::Prefix(prefix) => keys.join(PREFIX_DIR).join(escape_prefix(prefix)),
        }
    }
}

/// `example.com/app` → `example.com%2Fapp`, `docker://r:5000/t` → `docker:%2F%2Fr:5000%2Ft`:
/// one path component.
pub fn escape_prefix(prefix: &ImagePrefix) -> String {
    prefix.as_str().replace('/', "%2F")
}

/// The inverse of [`escape_prefix`]; `None` for names it never makes.
pub fn unescape_prefix(name: &str) -> Option<ImagePrefix> {
    let decoded = name.replace("%2F", "/");
    if decoded.contains('%') {
        return None;
    }
    let prefix = ImagePrefix::parse(&decoded).ok()?;
    (escape_prefix(&prefix) == name).then_some(prefix)
}

/// The scopes that have a directory under `root`.
pub(crate) fn scopes_in(root: &Path) -> Result<Vec<KeyScope>, TrustError> {
    let mut scopes = vec![KeyScope::Root];
    let prefixes = root.join(KEYS_DIR).join(PREFIX_DIR);
    for entry in read_dir(&prefixes)? {
        let name = entry.file_name();
        match name.to_str().and_then(unescape_prefix) {
            Some(prefix) => scopes.push(KeyScope::Prefix(prefix)),
            None => tracing::warn!(
                "ignoring {}: not an escaped image name prefix",
                entry.path().display()
            ),
        }
    }
    scopes.sort();
    Ok(scopes)
}

/// The key files in a scope's directory: files named by a fingerprint (temporary files and
/// anything else are not keys).
fn key_files(dir: &Path) -> Result<Vec<(Fingerprint, PathBuf)>, TrustError> {
    let mut files: Vec<(Fingerprint, PathBuf)> = read_dir(dir)?
        .into_iter()
        .filter_map(|entry| {
            let fingerprint: Fingerprint = entry.file_name().to_str()?.parse().ok()?;
            // Only our own lowercase spelling, so one key has one file name.
            (entry.file_name().to_str()? == fingerprint.as_str())
                .then(|| (fingerprint, entry.path()))
        })
        .collect();
    files.sort();
    Ok(files)
}

pub(crate) fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, TrustError> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .collect::<Result<Vec<_>, _>>()
            .ctx("listing", dir)
            .map_err(Into::into),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).ctx("listing", dir).map_err(Into::into),
    }
}

/// Reads a stored key; one that does not parse, or whose fingerprint is not its file name,
/// is skipped with a warning: it can only ever have trusted less, never more.
fn read_key(path: &Path, expected: &Fingerprint) -> Option<PublicKey> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!("ignoring trusted key {}: {e}", path.display());
            return None;
        }
    };
    match PublicKey::from_armored(&bytes) {
        Ok(key) if key.fingerprint() == expected => Some(key),
        Ok(key) => {
            tracing::warn!(
                "ignoring trusted key {}: it holds key {}, not the one its name says",
                path.display(),
                key.fingerprint()
            );
            None
        }
        Err(e) => {
            tracing::warn!("ignoring trusted key {}: {e}", path.display());
            None
        }
    }
}

/// Creates `dir` and its missing parents with mode 0755 whatever the umask: keys are public,
/// and tools that are not root may verify with them.
pub(crate) fn create_dirs(dir: &Path) -> Result<(), TrustError> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.is_dir())
        .collect();
    for path in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(0o755).create(path) {
            Ok(()) => fs::set_permissions(path, fs::Permissions::from_mode(0o755))
                .ctx("setting the mode of", path)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).ctx("creating", path).map_err(Into::into),
        }
    }
    Ok(())
}

/// Writes `dir/name` so that readers see the old key file or the new one, never a part.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, TrustError> {
    let path = dir.join(name);
    rkt_common::fs::write_atomic(&path, bytes, 0o644).ctx("writing", &path)?;
    sync_dir(dir)?;
    Ok(path)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), TrustError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("syncing", dir)
        .map_err(Into::into)
}
