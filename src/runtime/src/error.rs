use std::io;
use std::path::{Path, PathBuf};

/// Why setting up or tearing down a pod's root failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Stage1Error {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `mount` says which: "app web: mounting volume data at /data".
    #[error("{mount}: {source}")]
    Volume {
        mount: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "mounting the root filesystem of app {app} at {target}: {source} (if the store's filesystem cannot be an overlay lower layer, use --no-overlay)"
    )]
    Overlay {
        app: String,
        target: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Stage1Error {
    pub(crate) fn io(action: &'static str, path: &Path, source: impl Into<io::Error>) -> Self {
        Stage1Error::Io {
            action,
            path: path.to_owned(),
            source: source.into(),
        }
    }
}
