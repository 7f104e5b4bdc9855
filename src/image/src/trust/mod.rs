//! Image trust: which OpenPGP keys may vouch for which images, and checking an image's
//! detached signature against them.
//!
//! - `key` — one armored public key: fingerprint, user IDs, and whether it may sign now
//!   (revocation, expiry, signing capability, subkey bindings).
//! - `store` — the keys on disk under the local and system config roots, by scope (root or
//!   image name prefix); atomic writes to the local root only.
//! - `verify` — [`TrustStore::verify`]: the signature over the image bytes, streamed.
//!
//! For `rkt fetch`: build a [`TrustStore`] from `--local-config`/`--system-config`, then
//! `store.verify(&manifest_name, || File::open(&aci), &signature_bytes)?`; a missing `.asc` is
//! [`TrustError::NoSignature`]. For key discovery: [`PublicKey::from_armored`] to show the
//! fingerprint for review, then [`TrustStore::add_key`].

mod error;
mod key;
mod policy;
mod signed_image;
mod store;
mod verify;

#[cfg(test)]
mod tests;

pub use error::TrustError;
pub use key::{Fingerprint, PublicKey};
pub use policy::{
    AppliedPolicy, IdentityRule, Policy, PolicyFile, Requirement, SigstoreKey, is_sigstore_key,
    parse_sigstore_key,
};
pub use signed_image::{FoundSignature, SignedImage, admit_insecure};
pub use store::{
    DEFAULT_LOCAL_CONFIG, DEFAULT_SYSTEM_CONFIG, ImagePrefix, ImageSubject, KeyOrigin, KeyScope,
    TrustStore, TrustedKey, docker_name, escape_prefix, unescape_prefix,
};
pub use verify::Verified;
