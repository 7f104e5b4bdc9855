use std::io;
use std::path::PathBuf;

use crate::aci::AciError;
use crate::oci::OciError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(transparent)]
    Aci(#[from] AciError),
    #[error(transparent)]
    Io(#[from] rkt_common::IoError),
    #[error("no matches found for {} (see `rkt image list`)", rkt_common::excerpt::excerpt(.0))]
    NotFound(String),
    #[error("{query:?} matches {count} images; give more of the ID: {candidates}")]
    Ambiguous {
        query: String,
        count: usize,
        candidates: String,
    },
    #[error("corrupt store entry {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "stored image {id} does not match its ID any more (got {actual}); remove it with `rkt image rm` and fetch it again"
    )]
    Tampered { id: String, actual: String },
    #[error("{0} already exists (use --overwrite to replace it)")]
    DestinationExists(PathBuf),
    #[error(
        "refusing to empty {path} for --overwrite: {reason}; write the image to a directory of its own"
    )]
    WontReplace { path: PathBuf, reason: &'static str },
    /// The caller's check of the manifest (see `Store::import_file_checked`) said no.
    #[error("{0}")]
    Refused(String),
    #[error(
        "image {name} depends on {dependency}, which is not in the store; fetch it first (rkt fetch {dependency})"
    )]
    MissingDependency { name: String, dependency: String },
    #[error("the dependencies of image {name} nest too deep or loop")]
    DependencyLoop { name: String },
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error(
        "image {name} is an OCI image, which has no ACI to export; use `rkt image extract` or `rkt image render` for its files"
    )]
    NotAnAci { name: String },
    #[error(
        "stored layer {digest} is damaged (got {actual}); it was removed, fetch the image again"
    )]
    LayerDamaged { digest: String, actual: String },
    #[error("stored layer {digest} is missing from the store; fetch the image again")]
    LayerMissing { digest: String },
    #[error(
        "no space left on device for the image in {dir}; free some (rkt gc, rkt image gc) or use a --dir with more room"
    )]
    NoSpace { dir: PathBuf },
}

impl StoreError {
    /// The system's error under this one, if it carries one (to tell a full disk apart).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            StoreError::Io(rkt_common::IoError { error, .. }) => Some(error),
            StoreError::Aci(e) => e.io_error(),
            StoreError::Oci(e) => e.io_error(),
            _ => None,
        }
    }
}

pub(crate) use rkt_common::IoContext;
