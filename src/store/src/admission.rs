//! Why an image was let into the store, kept with it.
//!
//! ```text
//! cas/images/<id>/trust.json             the decision (`Admission::decision`)
//!                 signatures/<name>      the signatures it rests on, as fetched
//! ```
//!
//! The store does not read or check signatures: it keeps what the caller (rkt-image) decided
//! and the bytes it decided on, so that `rkt image list` can say why each image was trusted and
//! `rkt image verify` or an offline run can check the signatures again. `trust.json` is
//! replaced atomically; a stronger decision replaces a weaker one, never the other way (a
//! signed image fetched again with `--insecure-options=image` stays signed).

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::IoContext;
use super::{Store, StoreError, sync_dir, write_new};
use rkt_schema::ImageId;

/// How an image was admitted, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TrustKind {
    /// `--insecure-options=image`: nothing but the content digests was checked.
    Insecure,
    /// A trust policy for the image's prefix accepts it unsigned (digests checked).
    Policy,
    /// A good signature by a trusted key.
    Signed,
}

/// The decision recorded for an image (`trust.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustDecision {
    pub kind: TrustKind,
    /// `openpgp` (an ACI's detached signature), `simple-signing`, `sigstore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The signing key: an OpenPGP fingerprint, or `SHA256:<hex>` of a sigstore public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The OpenPGP key's user IDs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_ids: Vec<String>,
    /// What the key or policy is trusted for: `root`, or the prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The identity the signature claims (a docker reference), or the name checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The manifest digest the signature claims (registry images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    /// The reference the image was asked for when this was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Files under `signatures/` the decision rests on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<String>,
    /// Seconds since the Unix epoch.
    pub decided_at: u64,
}

impl TrustDecision {
    /// One line for people: `signed by NAME (FINGERPRINT)`, `digest-only by policy PREFIX`,
    /// `insecure (--insecure-options=image)`.
    pub fn summary(&self) -> String {
        match self.kind {
            TrustKind::Signed => {
                let key = self.key.as_deref().unwrap_or("(unnamed)");
                match self.user_ids.first() {
                    Some(who) => format!("signed by {who} ({key})"),
                    None => format!("signed by key {key}"),
                }
            }
            TrustKind::Policy => format!(
                "digest-only by policy {}",
                self.scope.as_deref().unwrap_or("(default)")
            ),
            TrustKind::Insecure => "insecure (--insecure-options=image)".to_owned(),
        }
    }
}

/// A signature kept with an image: a file name (no `/`) and its bytes as fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptSignature {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What the caller decided about an image, and the signatures behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub decision: TrustDecision,
    pub signatures: Vec<KeptSignature>,
}

const DECISION_FILE: &str = "trust.json";
const SIGNATURES_DIR: &str = "signatures";

impl Store {
    /// The decision recorded for a stored image; `None` for images stored before rkt kept one.
    pub fn trust_decision(&self, id: &ImageId) -> Result<Option<TrustDecision>, StoreError> {
        let path = self.image_dir(id).join(DECISION_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt {
                        path,
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx("reading", path).map_err(Into::into),
        }
    }

    /// The signatures kept with a stored image, as its decision names them.
    pub fn kept_signatures(&self, id: &ImageId) -> Result<Vec<KeptSignature>, StoreError> {
        let Some(decision) = self.trust_decision(id)? else {
            return Ok(Vec::new());
        };
        let dir = self.image_dir(id).join(SIGNATURES_DIR);
        decision
            .signatures
            .iter()
            .map(|name| {
                let path = dir.join(checked_name(name)?);
                let bytes = fs::read(&path).ctx("reading", &path)?;
                Ok(KeptSignature {
                    name: name.clone(),
                    bytes,
                })
            })
            .collect()
    }

    /// Records `admission` for a stored image, under the image's lock, unless the image holds
    /// a stronger decision already. Signature files are written first, then `trust.json` is
    /// replaced, so a reader sees the old decision or the new one with its files.
    pub fn record_admission(&self, id: &ImageId, admission: &Admission) -> Result<(), StoreError> {
        let _lock = self.image_lock(id)?;
        let dir = self.image_dir(id);
        if !dir.exists() {
            return Err(StoreError::NotFound(id.to_string()));
        }
        if let Some(old) = self.trust_decision(id)? {
            if old.kind > admission.decision.kind {
                return Ok(());
            }
            // The same decision on the same signatures (a fetch of an unchanged image):
            // nothing to write, and no fsyncs on every `--pull-policy=update`.
            let same_decision = TrustDecision {
                decided_at: old.decided_at,
                ..admission.decision.clone()
            } == old;
            if same_decision && self.kept_signatures(id)? == admission.signatures {
                return Ok(());
            }
        }
        self.write_admission(&dir, admission, true)
    }

    /// Writes the files of `admission` into the image directory `dir` (a staging directory,
    /// or a stored image's under its lock when `replace`).
    pub(crate) fn write_admission(
        &self,
        dir: &std::path::Path,
        admission: &Admission,
        replace: bool,
    ) -> Result<(), StoreError> {
        let signatures = dir.join(SIGNATURES_DIR);
        if !admission.signatures.is_empty() {
            fs::create_dir_all(&signatures).ctx("creating", &signatures)?;
            for sig in &admission.signatures {
                let path = signatures.join(checked_name(&sig.name)?);
                if replace {
                    rkt_common::fs::write_atomic(&path, &sig.bytes, 0o600).ctx("writing", &path)?;
                } else {
                    write_new(&path, &sig.bytes)?;
                }
            }
            if replace {
                sync_dir(&signatures)?;
            }
        }
        let json = serde_json::to_vec_pretty(&admission.decision).expect("decision serializes");
        let path = dir.join(DECISION_FILE);
        if replace {
            rkt_common::fs::write_atomic(&path, &json, 0o600).ctx("writing", &path)?;
            sync_dir(dir)?;
        } else {
            write_new(&path, &json)?;
        }
        Ok(())
    }
}

/// A kept signature's name is one plain path component.
fn checked_name(name: &str) -> Result<PathBuf, StoreError> {
    if name.is_empty()
        || name.starts_with('.')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.=".contains(&b))
    {
        return Err(StoreError::Corrupt {
            path: PathBuf::from(SIGNATURES_DIR).join(name),
            reason: "not a plain signature file name".to_owned(),
        });
    }
    Ok(PathBuf::from(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_read_as_people_say_them() {
        let mut d = TrustDecision {
            kind: TrustKind::Signed,
            format: Some("sigstore".into()),
            key: Some("SHA256:ab".into()),
            user_ids: vec![],
            scope: Some("docker://r/x".into()),
            identity: None,
            manifest_digest: None,
            reference: None,
            signatures: vec![],
            decided_at: 0,
        };
        assert_eq!(d.summary(), "signed by key SHA256:ab");
        d.user_ids = vec!["A <a@b>".into()];
        assert_eq!(d.summary(), "signed by A <a@b> (SHA256:ab)");
        d.kind = TrustKind::Policy;
        assert_eq!(d.summary(), "digest-only by policy docker://r/x");
        assert!(TrustKind::Signed > TrustKind::Policy && TrustKind::Policy > TrustKind::Insecure);
        assert!(checked_name("../x").is_err() && checked_name("sigstore-1").is_ok());
    }
}
