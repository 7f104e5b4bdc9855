//! Signatures of registry images, and the decision to admit an image from any OCI source.
//!
//! Two formats, both a signed JSON claim naming a manifest digest and a docker reference:
//!
//! - simple signing (containers/image's "atomic container signature"): an OpenPGP signed
//!   message whose literal data is the claim, checked with the OpenPGP keys trusted for the
//!   image's prefix, with every rule [`TrustStore::verify`] applies to keys and signatures;
//! - sigstore (cosign): the claim ("cosign container image signature") as a layer of the
//!   `sha256-<hex>.sig` artifact, its ECDSA P-256 signature in the layer's
//!   `dev.cosignproject.cosign/signature` annotation, checked with trusted sigstore public
//!   keys (no Fulcio or Rekor: keys only).
//!
//! A good signature is enough only if its claim names the digest of the manifest that was
//! fetched and the reference that was asked for (or, by policy, the same repository).

use std::io::Read;

use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use pgp::packet::{Packet, PacketParser, Signature, SignatureType};
use pgp::types::Timestamp;
use serde::{Deserialize, Serialize};

use rkt_store::{Admission, KeptSignature, TrustDecision, TrustKind};

use super::error::TrustError;
use super::policy::{IdentityRule, Policy, Requirement};
use super::store::{ImageSubject, KeyScope, TrustStore, docker_name};
use super::verify::{check_hash, check_times, unusable_error};

/// The most a signature's signed data may decompress to: a claim is a few hundred bytes.
const MAX_CLAIM_BYTES: u64 = 1 << 20;
const SIMPLE_SIGNING_TYPE: &str = "atomic container signature";
const SIGSTORE_TYPE: &str = "cosign container image signature";

/// A signature found for a registry image, as fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoundSignature {
    /// A simple-signing blob (an OpenPGP signed message), from a lookaside store or the
    /// registry's signature extension.
    SimpleSigning { bytes: Vec<u8>, origin: String },
    /// A sigstore payload and its base64 signature, from the `sha256-<hex>.sig` artifact.
    Sigstore {
        payload: Vec<u8>,
        signature: String,
        origin: String,
    },
}

/// How a kept sigstore signature is written under the image's `signatures/`.
#[derive(Serialize, Deserialize)]
struct KeptSigstore {
    payload: String,
    signature: String,
}

impl FoundSignature {
    pub fn format(&self) -> &'static str {
        match self {
            FoundSignature::SimpleSigning { .. } => "simple-signing",
            FoundSignature::Sigstore { .. } => "sigstore",
        }
    }

    fn requirement(&self) -> Requirement {
        match self {
            FoundSignature::SimpleSigning { .. } => Requirement::SignedBy,
            FoundSignature::Sigstore { .. } => Requirement::SigstoreSigned,
        }
    }

    /// Where it was found.
    pub fn origin(&self) -> &str {
        match self {
            FoundSignature::SimpleSigning { origin, .. }
            | FoundSignature::Sigstore { origin, .. } => origin,
        }
    }

    /// The signature as a file kept with the image (`simple-signing-N`, `sigstore-N.json`).
    pub fn to_kept(&self, n: usize) -> KeptSignature {
        match self {
            FoundSignature::SimpleSigning { bytes, .. } => KeptSignature {
                name: format!("simple-signing-{n}"),
                bytes: bytes.clone(),
            },
            FoundSignature::Sigstore {
                payload, signature, ..
            } => KeptSignature {
                name: format!("sigstore-{n}.json"),
                bytes: serde_json::to_vec(&KeptSigstore {
                    payload: base64::engine::general_purpose::STANDARD.encode(payload),
                    signature: signature.clone(),
                })
                .expect("kept signature serializes"),
            },
        }
    }

    /// A kept signature read back; `None` for files this version does not know.
    pub fn from_kept(kept: &KeptSignature) -> Option<FoundSignature> {
        let origin = format!("the stored signature {}", kept.name);
        if kept.name.starts_with("simple-signing-") {
            return Some(FoundSignature::SimpleSigning {
                bytes: kept.bytes.clone(),
                origin,
            });
        }
        if kept.name.starts_with("sigstore-") {
            let k: KeptSigstore = serde_json::from_slice(&kept.bytes).ok()?;
            return Some(FoundSignature::Sigstore {
                payload: base64::engine::general_purpose::STANDARD
                    .decode(k.payload)
                    .ok()?,
                signature: k.signature,
                origin,
            });
        }
        None
    }
}

/// A registry image as it was asked for and fetched.
#[derive(Debug, Clone, Copy)]
pub struct SignedImage<'a> {
    /// `HOST[:PORT]/REPOSITORY`, normalized ([`docker_name`]).
    pub repository: &'a str,
    /// The tag asked for, if the image was asked for by tag.
    pub tag: Option<&'a str>,
    /// The digest of the manifest the reference named, as fetched (`sha256:…`).
    pub digest: &'a str,
    /// The image as the user wrote it (`docker://…`), for messages and the record.
    pub source: &'a str,
}

impl SignedImage<'_> {
    fn prefix(&self) -> String {
        format!("docker://{}", self.repository)
    }

    fn expected_reference(&self) -> String {
        match self.tag {
            Some(tag) => format!("{}:{tag}", self.repository),
            None => format!("{}@{}", self.repository, self.digest),
        }
    }
}

/// The decision for `--insecure-options=image`.
pub fn admit_insecure(source: &str) -> Admission {
    Admission {
        decision: TrustDecision {
            kind: TrustKind::Insecure,
            format: None,
            key: None,
            user_ids: Vec::new(),
            scope: None,
            identity: None,
            manifest_digest: None,
            reference: Some(source.to_owned()),
            signatures: Vec::new(),
            decided_at: now_secs(),
        },
        signatures: Vec::new(),
    }
}

impl TrustStore {
    /// Decides whether a registry image may be stored: one signature in a format its policy
    /// accepts, good, by a key trusted for it, claiming its digest and reference; or a policy
    /// that accepts unsigned images. `looked` says where signatures were looked for (for the
    /// message when there are none).
    pub fn admit_signed_image(
        &self,
        image: &SignedImage<'_>,
        found: &[FoundSignature],
        looked: &str,
    ) -> Result<Admission, TrustError> {
        let subject = ImageSubject::Docker(image.repository);
        let applied = self.policy_for(&subject)?;
        let now = Timestamp::now();
        let mut untrusted = None;
        let mut failed = None;
        let mut not_accepted: Vec<&str> = Vec::new();
        for (n, sig) in found.iter().enumerate() {
            if !applied.policy.accepts(sig.requirement()) {
                not_accepted.push(sig.format());
                continue;
            }
            match self.check_signature(image, &subject, sig, &applied.policy, now) {
                Ok(mut decision) => {
                    let kept = sig.to_kept(n + 1);
                    decision.signatures = vec![kept.name.clone()];
                    return Ok(Admission {
                        decision,
                        signatures: vec![kept],
                    });
                }
                Err(
                    e @ (TrustError::UntrustedKey { .. } | TrustError::UntrustedSigstore { .. }),
                ) => {
                    untrusted.get_or_insert(e);
                }
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        if applied.policy.accepts(Requirement::InsecureAcceptAnything) {
            return Ok(policy_admission(applied.scope.as_ref(), image.source));
        }
        // A signature by a trusted key that failed says more than one by an unknown key.
        if let Some(e) = failed.or(untrusted) {
            return Err(e);
        }
        if !not_accepted.is_empty() {
            return Err(TrustError::FormatNotAccepted {
                image: image.source.to_owned(),
                scope: scope_name(applied.scope.as_ref()),
                formats: not_accepted.join(", "),
                accepted: applied.policy.describe(),
            });
        }
        Err(TrustError::Unsigned {
            image: image.source.to_owned(),
            looked: looked.to_owned(),
            hint: unsigned_hint(Some(&image.prefix())),
        })
    }

    /// Decides whether an image without signatures (an archive, a layout) may be stored: only
    /// if the policy of the name it carries (`HOST/REPOSITORY`, if any) accepts unsigned
    /// images.
    pub fn admit_unsigned(
        &self,
        carried_name: Option<&str>,
        source: &str,
    ) -> Result<Admission, TrustError> {
        let applied = match carried_name {
            Some(name) => self.policy_for(&ImageSubject::Docker(name))?,
            None => match self
                .policies()?
                .into_iter()
                .find(|p| p.scope == KeyScope::Root)
            {
                Some(root) => super::policy::AppliedPolicy {
                    scope: Some(root.scope),
                    policy: root.policy,
                },
                None => super::policy::AppliedPolicy {
                    scope: None,
                    policy: Policy::default(),
                },
            },
        };
        if applied.policy.accepts(Requirement::InsecureAcceptAnything) {
            return Ok(policy_admission(applied.scope.as_ref(), source));
        }
        let prefix = carried_name.map(|n| format!("docker://{n}"));
        Err(TrustError::Unsigned {
            image: source.to_owned(),
            looked: match carried_name {
                Some(name) => format!("an archive carries no signatures; it names {name}"),
                None => "an archive carries no signatures, nor this one an image name".to_owned(),
            },
            hint: unsigned_hint(prefix.as_deref()),
        })
    }

    fn check_signature(
        &self,
        image: &SignedImage<'_>,
        subject: &ImageSubject<'_>,
        sig: &FoundSignature,
        policy: &Policy,
        now: Timestamp,
    ) -> Result<TrustDecision, TrustError> {
        match sig {
            FoundSignature::SimpleSigning { bytes, .. } => {
                self.check_simple_signing(image, subject, bytes, policy, now)
            }
            FoundSignature::Sigstore {
                payload, signature, ..
            } => self.check_sigstore(image, subject, payload, signature, policy),
        }
    }

    fn check_simple_signing(
        &self,
        image: &SignedImage<'_>,
        subject: &ImageSubject<'_>,
        blob: &[u8],
        policy: &Policy,
        now: Timestamp,
    ) -> Result<TrustDecision, TrustError> {
        let name = image.source;
        let (claim_bytes, signatures) = parse_signed_message(name, blob)?;
        let keys = self.keys_for(subject)?;
        let candidates = self.trusted_signers(&image.prefix(), &keys, &signatures)?;
        let mut first_error = None;
        for (signature, trusted, signer) in candidates {
            let fingerprint = trusted.key.fingerprint().clone();
            let checked = trusted
                .key
                .usable(&signer, now)
                .map_err(|why| unusable_error(name, &fingerprint, why))
                .and_then(|()| check_hash(name, signature))
                .and_then(|()| check_times(name, signature, now))
                .and_then(|_| {
                    signer
                        .verify(&trusted.key, signature, &claim_bytes[..])
                        .map_err(|_| TrustError::BadSignature {
                            image: name.to_owned(),
                            fingerprint: fingerprint.to_string(),
                        })
                });
            match checked {
                Ok(()) => {
                    let claim = Claim::parse(name, &claim_bytes, SIMPLE_SIGNING_TYPE)?;
                    claim.check(image, policy, fingerprint.as_str())?;
                    return Ok(TrustDecision {
                        kind: TrustKind::Signed,
                        format: Some("simple-signing".into()),
                        key: Some(fingerprint.to_string()),
                        user_ids: trusted.key.user_ids().to_vec(),
                        scope: Some(scope_of(&trusted.scope)),
                        identity: Some(claim.reference),
                        manifest_digest: Some(claim.digest),
                        reference: Some(image.source.to_owned()),
                        signatures: Vec::new(),
                        decided_at: now_secs(),
                    });
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.expect("at least one candidate failed"))
    }

    fn check_sigstore(
        &self,
        image: &SignedImage<'_>,
        subject: &ImageSubject<'_>,
        payload: &[u8],
        signature: &str,
        policy: &Policy,
    ) -> Result<TrustDecision, TrustError> {
        let name = image.source;
        let malformed = |reason: String| TrustError::MalformedSignature {
            image: name.to_owned(),
            reason,
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|e| malformed(format!("its sigstore signature is not base64: {e}")))?;
        let sig = p256::ecdsa::Signature::from_der(&raw)
            .or_else(|_| p256::ecdsa::Signature::from_slice(&raw))
            .map_err(|_| {
                malformed("its sigstore signature is not an ECDSA P-256 signature".into())
            })?;
        let verifies = |key: &p256::ecdsa::VerifyingKey| key.verify(payload, &sig).is_ok();
        let Some(key) = self
            .sigstore_keys_for(subject)?
            .into_iter()
            .find(|k| verifies(&k.key))
        else {
            let elsewhere: Vec<String> = self
                .sigstore_keys()?
                .into_iter()
                .filter(|k| verifies(&k.key))
                .map(|k| k.scope.to_string())
                .collect();
            return Err(TrustError::UntrustedSigstore {
                image: name.to_owned(),
                prefix: image.prefix(),
                elsewhere: if elsewhere.is_empty() {
                    String::new()
                } else {
                    format!(" (its key is trusted only for {})", elsewhere.join(", "))
                },
            });
        };
        let claim = Claim::parse(name, payload, SIGSTORE_TYPE)?;
        claim.check(image, policy, &key.id)?;
        Ok(TrustDecision {
            kind: TrustKind::Signed,
            format: Some("sigstore".into()),
            key: Some(key.id.clone()),
            user_ids: Vec::new(),
            scope: Some(scope_of(&key.scope)),
            identity: Some(claim.reference),
            manifest_digest: Some(claim.digest),
            reference: Some(image.source.to_owned()),
            signatures: Vec::new(),
            decided_at: now_secs(),
        })
    }
}

/// What a signature claims.
#[derive(Debug)]
struct Claim {
    digest: String,
    reference: String,
}

impl Claim {
    fn parse(image: &str, bytes: &[u8], kind: &str) -> Result<Claim, TrustError> {
        #[derive(Deserialize)]
        struct Doc {
            critical: Critical,
        }
        #[derive(Deserialize)]
        struct Critical {
            #[serde(rename = "type")]
            kind: String,
            image: ImagePart,
            identity: Identity,
        }
        #[derive(Deserialize)]
        struct ImagePart {
            #[serde(rename = "docker-manifest-digest")]
            digest: String,
        }
        #[derive(Deserialize)]
        struct Identity {
            #[serde(rename = "docker-reference")]
            reference: String,
        }
        let malformed = |reason: String| TrustError::MalformedSignature {
            image: image.to_owned(),
            reason,
        };
        let doc: Doc = serde_json::from_slice(bytes)
            .map_err(|e| malformed(format!("its signed claim is not the expected JSON: {e}")))?;
        if doc.critical.kind != kind {
            return Err(malformed(format!(
                "its claim is of type {:?}, not {kind:?}",
                rkt_common::excerpt::excerpt(&doc.critical.kind)
            )));
        }
        Ok(Claim {
            digest: doc.critical.image.digest,
            reference: doc.critical.identity.reference,
        })
    }

    /// The claim must name the digest fetched, and the reference asked for: the same
    /// repository, and, when the image was asked for by tag, that tag or none (a claim for
    /// the whole repository, as `cosign sign` makes; the digest pins the image). A claim for
    /// another tag is refused (a signed image moved to a tag it was not signed for), unless
    /// the policy says `matchRepository`.
    fn check(&self, image: &SignedImage<'_>, policy: &Policy, key: &str) -> Result<(), TrustError> {
        let mismatch = |what, claimed: &str, expected: String| TrustError::ClaimMismatch {
            image: image.source.to_owned(),
            key: key.to_owned(),
            what,
            claimed: quoted(claimed),
            expected,
        };
        if !self.digest.eq_ignore_ascii_case(image.digest) {
            return Err(mismatch(
                "manifest digest",
                &self.digest,
                image.digest.to_owned(),
            ));
        }
        let (repository, tag) = split_reference(&self.reference)
            .ok_or_else(|| mismatch("reference", &self.reference, image.expected_reference()))?;
        let same_repository = repository == image.repository;
        let ok = match (policy.identity, image.tag) {
            (IdentityRule::MatchRepository, _) | (IdentityRule::Exact, None) => same_repository,
            (IdentityRule::Exact, Some(wanted)) => {
                same_repository && tag.as_deref().is_none_or(|t| t == wanted)
            }
        };
        if !ok {
            return Err(mismatch(
                "reference",
                &self.reference,
                image.expected_reference(),
            ));
        }
        Ok(())
    }
}

/// A claimed value as a message shows it: whole if it looks like a digest or reference
/// (printable, no spaces, at most 300 bytes), else cut and escaped.
fn quoted(claimed: &str) -> String {
    if claimed.len() <= 300 && claimed.bytes().all(|b| b.is_ascii_graphic()) {
        claimed.to_owned()
    } else {
        rkt_common::excerpt::excerpt(claimed).to_string()
    }
}

/// `HOST/REPO[:TAG][@DIGEST]` → (normalized `HOST/REPO`, tag).
fn split_reference(reference: &str) -> Option<(String, Option<String>)> {
    let without_digest = reference.split('@').next()?;
    let (name, tag) = match without_digest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag.to_owned())),
        _ => (without_digest, None),
    };
    Some((docker_name(name)?, tag))
}

/// The literal data and the signatures of an OpenPGP signed message (possibly compressed).
fn parse_signed_message(image: &str, blob: &[u8]) -> Result<(Vec<u8>, Vec<Signature>), TrustError> {
    let malformed = |reason: String| TrustError::MalformedSignature {
        image: image.to_owned(),
        reason,
    };
    let mut literal: Option<Vec<u8>> = None;
    let mut signatures = Vec::new();
    collect_packets(blob, &mut literal, &mut signatures, 0).map_err(malformed)?;
    let literal = literal.ok_or_else(|| {
        malformed("it holds no signed claim (expected an OpenPGP signed message)".into())
    })?;
    if signatures.is_empty() {
        return Err(malformed("the claim is not signed".into()));
    }
    if let Some(other) = signatures
        .iter()
        .find(|s| s.typ() != Some(SignatureType::Binary))
    {
        return Err(malformed(format!(
            "a {:?} signature, not a signature over the claim",
            other.typ()
        )));
    }
    Ok((literal, signatures))
}

fn collect_packets(
    bytes: &[u8],
    literal: &mut Option<Vec<u8>>,
    signatures: &mut Vec<Signature>,
    depth: u32,
) -> Result<(), String> {
    for packet in PacketParser::new(bytes) {
        match packet.map_err(|e| e.to_string())? {
            Packet::CompressedData(data) if depth == 0 => {
                let mut out = Vec::new();
                data.decompress()
                    .map_err(|e| e.to_string())?
                    .take(MAX_CLAIM_BYTES + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| e.to_string())?;
                if out.len() as u64 > MAX_CLAIM_BYTES {
                    return Err(format!("its claim is larger than {MAX_CLAIM_BYTES} bytes"));
                }
                collect_packets(&out, literal, signatures, depth + 1)?;
            }
            Packet::LiteralData(data) => {
                if literal.is_some() {
                    return Err("it holds more than one claim".into());
                }
                *literal = Some(data.data().to_vec());
            }
            Packet::Signature(sig) => signatures.push(sig),
            Packet::OnePassSignature(_) | Packet::Marker(_) | Packet::Padding(_) => {}
            _ => return Err("it holds packets other than a signed claim".into()),
        }
    }
    Ok(())
}

fn policy_admission(scope: Option<&KeyScope>, source: &str) -> Admission {
    Admission {
        decision: TrustDecision {
            kind: TrustKind::Policy,
            format: None,
            key: None,
            user_ids: Vec::new(),
            scope: Some(scope_name(scope)),
            identity: None,
            manifest_digest: None,
            reference: Some(source.to_owned()),
            signatures: Vec::new(),
            decided_at: now_secs(),
        },
        signatures: Vec::new(),
    }
}

fn scope_of(scope: &KeyScope) -> String {
    match scope {
        KeyScope::Root => "root".to_owned(),
        KeyScope::Prefix(prefix) => prefix.to_string(),
    }
}

fn scope_name(scope: Option<&KeyScope>) -> String {
    scope.map_or_else(|| "(default)".to_owned(), scope_of)
}

/// What lets an unsigned image through.
fn unsigned_hint(prefix: Option<&str>) -> String {
    match prefix {
        Some(prefix) => format!(
            "to accept unsigned images from it, run `rkt trust --prefix {prefix} --policy=insecureAcceptAnything`, or pass --insecure-options=image to fetch this one unverified"
        ),
        None => "pass --insecure-options=image to fetch it unverified".to_owned(),
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_and_normalize() {
        assert_eq!(
            split_reference("127.0.0.1:5000/team/app:1.0"),
            Some(("127.0.0.1:5000/team/app".into(), Some("1.0".into())))
        );
        assert_eq!(
            split_reference("docker.io/library/busybox:latest"),
            Some(("docker.io/library/busybox".into(), Some("latest".into())))
        );
        assert_eq!(
            split_reference("busybox"),
            Some(("docker.io/library/busybox".into(), None))
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/team/app@sha256:ab"),
            Some(("127.0.0.1:5000/team/app".into(), None))
        );
    }

    fn image<'a>(tag: Option<&'a str>) -> SignedImage<'a> {
        SignedImage {
            repository: "r.example/team/app",
            tag,
            digest: "sha256:aa",
            source: "docker://r.example/team/app",
        }
    }

    #[test]
    fn claims_must_name_the_image() {
        let claim = |digest: &str, reference: &str| Claim {
            digest: digest.into(),
            reference: reference.into(),
        };
        let exact = Policy::default();
        let repo = Policy {
            identity: IdentityRule::MatchRepository,
            ..Policy::default()
        };
        let good = claim("sha256:aa", "r.example/team/app:1");
        assert!(good.check(&image(Some("1")), &exact, "k").is_ok());
        assert!(good.check(&image(None), &exact, "k").is_ok());
        assert!(good.check(&image(Some("2")), &exact, "k").is_err());
        assert!(good.check(&image(Some("2")), &repo, "k").is_ok());
        let whole_repository = claim("sha256:aa", "r.example/team/app");
        assert!(
            whole_repository
                .check(&image(Some("1")), &exact, "k")
                .is_ok()
        );
        let other_digest = claim("sha256:bb", "r.example/team/app:1");
        let err = other_digest
            .check(&image(Some("1")), &repo, "k")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("manifest digest sha256:bb, not sha256:aa"),
            "{err}"
        );
        let other_repo = claim("sha256:aa", "r.example/team/other:1");
        assert!(other_repo.check(&image(Some("1")), &repo, "k").is_err());
    }

    #[test]
    fn garbage_is_a_malformed_signature() {
        for blob in [&b"not a signature"[..], b"", &[0xa3, 0x01, 0x02][..]] {
            let err = parse_signed_message("docker://x/y", blob).unwrap_err();
            assert!(
                matches!(err, TrustError::MalformedSignature { .. }),
                "{blob:?}: {err}"
            );
        }
    }

    #[test]
    fn kept_signatures_read_back() {
        let sig = FoundSignature::Sigstore {
            payload: b"{}".to_vec(),
            signature: "MEUC".into(),
            origin: "x".into(),
        };
        let kept = sig.to_kept(1);
        assert_eq!(kept.name, "sigstore-1.json");
        match FoundSignature::from_kept(&kept).unwrap() {
            FoundSignature::Sigstore {
                payload, signature, ..
            } => assert_eq!((payload, signature), (b"{}".to_vec(), "MEUC".to_owned())),
            other => panic!("{other:?}"),
        }
    }
}
