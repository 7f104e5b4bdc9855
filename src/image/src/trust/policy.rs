//! The trust policy per prefix, and sigstore public keys, beside the OpenPGP keys:
//!
//! ```text
//! <root>/trustedkeys/root.d/policy.json                         the default for every image
//! <root>/trustedkeys/prefix.d/<escaped prefix>/policy.json      for images under the prefix
//! <root>/trustedkeys/{root.d,prefix.d/<prefix>}/sigstore-<hex>  a sigstore (cosign) public key
//! ```
//!
//! `policy.json` is `{"accept": ["signedBy", "sigstoreSigned"], "identity": "exact"}`: which
//! ways of vouching for an image are enough (podman's names: `signedBy` = an OpenPGP
//! signature, simple signing for registry images and detached `.asc` for ACIs;
//! `sigstoreSigned`; `insecureAcceptAnything` = unsigned images too, checked against their
//! digests only), and which identity a signature must claim (`exact`: the reference asked
//! for; `matchRepository`: any tag of the same repository). The most specific prefix with a
//! policy decides; without any, signatures of both formats are accepted and unsigned images
//! refused. A local file shadows the system file of the same scope.

use std::fs;
use std::path::PathBuf;

use p256::ecdsa::VerifyingKey;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::{IoContext, TrustError};
use super::store::{
    ImageSubject, KeyOrigin, KeyScope, TrustStore, create_dirs, read_dir, scopes_in, sync_dir,
    write_atomic,
};

const POLICY_FILE: &str = "policy.json";
const SIGSTORE_PREFIX: &str = "sigstore-";

/// One way of vouching for an image that a policy accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Requirement {
    /// An OpenPGP signature by a trusted key (simple signing; an ACI's `.asc`).
    SignedBy,
    /// A sigstore signature by a trusted sigstore public key.
    SigstoreSigned,
    /// Anything, unsigned too (the digests are still checked).
    InsecureAcceptAnything,
}

impl Requirement {
    pub fn name(self) -> &'static str {
        match self {
            Requirement::SignedBy => "signedBy",
            Requirement::SigstoreSigned => "sigstoreSigned",
            Requirement::InsecureAcceptAnything => "insecureAcceptAnything",
        }
    }

    pub fn parse(s: &str) -> Option<Requirement> {
        [
            Requirement::SignedBy,
            Requirement::SigstoreSigned,
            Requirement::InsecureAcceptAnything,
        ]
        .into_iter()
        .find(|r| r.name().eq_ignore_ascii_case(s))
    }
}

/// Which identity a registry image's signature must claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IdentityRule {
    /// The reference asked for: its repository, and its tag when asked by tag (a claim
    /// naming no tag covers the repository).
    #[default]
    Exact,
    /// Any reference in the same repository.
    MatchRepository,
}

/// A prefix's policy (`policy.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    pub accept: Vec<Requirement>,
    #[serde(default)]
    pub identity: IdentityRule,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            accept: vec![Requirement::SignedBy, Requirement::SigstoreSigned],
            identity: IdentityRule::Exact,
        }
    }
}

impl Policy {
    pub fn accepts(&self, requirement: Requirement) -> bool {
        self.accept.contains(&requirement)
    }

    /// `signedBy,sigstoreSigned` as `rkt trust --list` shows it.
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.accept.iter().map(|r| r.name()).collect();
        match self.identity {
            IdentityRule::Exact => names.join(","),
            IdentityRule::MatchRepository => format!("{} (matchRepository)", names.join(",")),
        }
    }
}

/// The policy that applies to an image, and the scope whose file says so (`None`: the
/// built-in default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedPolicy {
    pub scope: Option<KeyScope>,
    pub policy: Policy,
}

/// A policy file, as `rkt trust --list` shows it.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    pub scope: KeyScope,
    pub origin: KeyOrigin,
    pub path: PathBuf,
    pub policy: Policy,
}

/// A trusted sigstore public key (ECDSA P-256, PEM), named by the SHA-256 of its DER
/// encoding (`SHA256:<hex>`).
#[derive(Debug, Clone)]
pub struct SigstoreKey {
    pub scope: KeyScope,
    pub origin: KeyOrigin,
    pub path: PathBuf,
    pub id: String,
    pub key: VerifyingKey,
}

/// Parses a sigstore (cosign) public key: PEM `PUBLIC KEY`, ECDSA P-256. Returns the key
/// and its ID.
pub fn parse_sigstore_key(pem: &[u8]) -> Result<(VerifyingKey, String), TrustError> {
    let text = std::str::from_utf8(pem)
        .map_err(|_| TrustError::MalformedSigstoreKey("it is not text".into()))?;
    if text.contains("PRIVATE KEY") {
        return Err(TrustError::SecretKey);
    }
    let key = p256::PublicKey::from_public_key_pem(text.trim())
        .map_err(|e| TrustError::MalformedSigstoreKey(e.to_string()))?;
    let der = key
        .to_public_key_der()
        .map_err(|e| TrustError::MalformedSigstoreKey(e.to_string()))?;
    let id = hex::encode(Sha256::digest(der.as_bytes()));
    Ok((VerifyingKey::from(key), format!("SHA256:{id}")))
}

/// Whether bytes look like a sigstore public key rather than an OpenPGP one.
pub fn is_sigstore_key(bytes: &[u8]) -> bool {
    String::from_utf8_lossy(bytes).contains("-----BEGIN PUBLIC KEY-----")
}

impl TrustStore {
    /// The policy for `image`: the most specific covering prefix that has one, else the root
    /// scope's, else the built-in default.
    pub fn policy_for(&self, image: &ImageSubject<'_>) -> Result<AppliedPolicy, TrustError> {
        let mut best: Option<PolicyFile> = None;
        for file in self.policies()? {
            if !file.scope.covers_subject(image) {
                continue;
            }
            let better = match (&best, &file.scope) {
                (None, _) => true,
                (Some(b), KeyScope::Prefix(p)) => match &b.scope {
                    KeyScope::Root => true,
                    KeyScope::Prefix(bp) => p.as_str().len() > bp.as_str().len(),
                },
                (Some(_), KeyScope::Root) => false,
            };
            if better {
                best = Some(file);
            }
        }
        Ok(match best {
            Some(file) => AppliedPolicy {
                scope: Some(file.scope),
                policy: file.policy,
            },
            None => AppliedPolicy {
                scope: None,
                policy: Policy::default(),
            },
        })
    }

    /// Every policy file, local first; a local file shadows the system's for the same scope.
    /// A file that does not parse is an error: a policy silently ignored could trust more.
    pub fn policies(&self) -> Result<Vec<PolicyFile>, TrustError> {
        let mut out: Vec<PolicyFile> = Vec::new();
        for (origin, root) in self.roots() {
            for scope in scopes_in(root)? {
                if out.iter().any(|p| p.scope == scope) {
                    continue;
                }
                let path = self.scope_dir(root, &scope).join(POLICY_FILE);
                let bytes = match fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e).ctx("reading", &path).map_err(Into::into),
                };
                let policy: Policy =
                    serde_json::from_slice(&bytes).map_err(|e| TrustError::BadPolicy {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                if policy.accept.is_empty() {
                    return Err(TrustError::BadPolicy {
                        path,
                        reason: "\"accept\" is empty, which would refuse every image; remove the file for the default".into(),
                    });
                }
                out.push(PolicyFile {
                    scope,
                    origin,
                    path,
                    policy,
                });
            }
        }
        Ok(out)
    }

    /// Writes the policy of `scope` in the local root (replacing it).
    pub fn set_policy(&self, scope: &KeyScope, policy: &Policy) -> Result<PathBuf, TrustError> {
        let dir = self.scope_dir(self.local_root(), scope);
        create_dirs(&dir)?;
        let mut json = serde_json::to_vec_pretty(policy).expect("policy serializes");
        json.push(b'\n');
        write_atomic(&dir, POLICY_FILE, &json)
    }

    /// Removes the local policy of `scope`; returns its path if there was one.
    pub fn remove_policy(&self, scope: &KeyScope) -> Result<Option<PathBuf>, TrustError> {
        let dir = self.scope_dir(self.local_root(), scope);
        let path = dir.join(POLICY_FILE);
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&dir)?;
                Ok(Some(path))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx("removing", &path).map_err(Into::into),
        }
    }

    /// Trusts a sigstore public key (PEM) for `scope`.
    pub fn add_sigstore_key(
        &self,
        scope: &KeyScope,
        pem: &[u8],
    ) -> Result<SigstoreKey, TrustError> {
        let (key, id) = parse_sigstore_key(pem)?;
        let text = p256::PublicKey::from(&key)
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| TrustError::MalformedSigstoreKey(e.to_string()))?;
        let dir = self.scope_dir(self.local_root(), scope);
        create_dirs(&dir)?;
        let path = write_atomic(&dir, &sigstore_file_name(&id), text.as_bytes())?;
        Ok(SigstoreKey {
            scope: scope.clone(),
            origin: KeyOrigin::Local,
            path,
            id,
            key,
        })
    }

    /// Every trusted sigstore key in both roots (local shadows system, per scope). Files that
    /// do not parse, or whose name is not their key's ID, are skipped with a warning.
    pub fn sigstore_keys(&self) -> Result<Vec<SigstoreKey>, TrustError> {
        let mut out: Vec<SigstoreKey> = Vec::new();
        for (origin, root) in self.roots() {
            for scope in scopes_in(root)? {
                for entry in read_dir(&self.scope_dir(root, &scope))? {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !name.starts_with(SIGSTORE_PREFIX) {
                        continue;
                    }
                    if out
                        .iter()
                        .any(|k| k.scope == scope && sigstore_file_name(&k.id) == name)
                    {
                        continue;
                    }
                    let path = entry.path();
                    let parsed = fs::read(&path)
                        .map_err(|e| e.to_string())
                        .and_then(|b| parse_sigstore_key(&b).map_err(|e| e.to_string()));
                    match parsed {
                        Ok((key, id)) if sigstore_file_name(&id) == name => out.push(SigstoreKey {
                            scope: scope.clone(),
                            origin,
                            path,
                            id,
                            key,
                        }),
                        Ok((_, id)) => tracing::warn!(
                            "ignoring sigstore key {}: it holds key {id}, not the one its name says",
                            path.display()
                        ),
                        Err(e) => tracing::warn!("ignoring sigstore key {}: {e}", path.display()),
                    }
                }
            }
        }
        Ok(out)
    }

    /// Stops trusting a sigstore key (`SHA256:<hex>`) in every scope of the local root.
    pub fn remove_sigstore_key(&self, id: &str) -> Result<Vec<PathBuf>, TrustError> {
        let hex = id
            .strip_prefix("SHA256:")
            .or_else(|| id.strip_prefix("sha256:"))
            .unwrap_or(id)
            .to_ascii_lowercase();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TrustError::BadFingerprint(id.to_owned()));
        }
        let name = sigstore_file_name(&format!("SHA256:{hex}"));
        let mut removed = Vec::new();
        for scope in scopes_in(self.local_root())? {
            let dir = self.scope_dir(self.local_root(), &scope);
            let path = dir.join(&name);
            match fs::remove_file(&path) {
                Ok(()) => {
                    sync_dir(&dir)?;
                    removed.push(path);
                    if matches!(scope, KeyScope::Prefix(_)) {
                        let _ = fs::remove_dir(&dir);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).ctx("removing", &path).map_err(Into::into),
            }
        }
        if removed.is_empty() {
            return Err(TrustError::KeyNotFound(id.to_owned()));
        }
        Ok(removed)
    }

    /// The sigstore keys that may vouch for `image`.
    pub(crate) fn sigstore_keys_for(
        &self,
        image: &ImageSubject<'_>,
    ) -> Result<Vec<SigstoreKey>, TrustError> {
        Ok(self
            .sigstore_keys()?
            .into_iter()
            .filter(|k| k.scope.covers_subject(image))
            .collect())
    }
}

/// `SHA256:<hex>` → `sigstore-<hex>`.
fn sigstore_file_name(id: &str) -> String {
    format!(
        "{SIGSTORE_PREFIX}{}",
        id.strip_prefix("SHA256:").unwrap_or(id)
    )
}
