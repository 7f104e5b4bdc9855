use std::io;
use std::path::{Path, PathBuf};

/// Why setting up or tearing down a pod's root failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Stage1Error {
    #[error(transparent)]
    Io(#[from] rkt_common::IoError),
    /// `mount` says which: "app web: mounting volume data at /data".
    #[error("{mount}: {error}")]
    Volume { mount: String, error: io::Error },
    #[error(
        "mounting the root filesystem of app {app} at {target}: {error} (if the store's filesystem cannot be an overlay lower layer, use --no-overlay)"
    )]
    Overlay {
        app: String,
        target: PathBuf,
        error: io::Error,
    },
}

impl Stage1Error {
    pub(crate) fn io(action: &'static str, path: &Path, source: impl Into<io::Error>) -> Self {
        Stage1Error::Io(rkt_common::IoError::new(
            action,
            path.to_owned(),
            source.into(),
        ))
    }
}
