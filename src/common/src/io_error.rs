//! The one I/O error of rkt's libraries: what was being done, to which path, and what the
//! system said. Every crate's error enum wraps it (`Io(IoError)`), so the three are always
//! said the same way, once.

use std::io;
use std::path::{Path, PathBuf};

/// `"reading /var/lib/rkt/pods: Permission denied (os error 13)"`. The system's error is part
/// of the line and deliberately not also the `source()`: rkt prints an error's whole chain,
/// which would say it twice.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {error}", .path.display())]
pub struct IoError {
    pub action: &'static str,
    pub path: PathBuf,
    pub error: io::Error,
}

impl IoError {
    pub fn new(
        action: &'static str,
        path: impl Into<PathBuf>,
        error: impl Into<io::Error>,
    ) -> Self {
        IoError {
            action,
            path: path.into(),
            error: error.into(),
        }
    }

    /// A closure for `map_err`: `fs::read(p).map_err(IoError::with("reading", p))`.
    pub fn with<E: Into<io::Error>>(
        action: &'static str,
        path: &Path,
    ) -> impl FnOnce(E) -> IoError + use<E> {
        let path = path.to_owned();
        move |error| IoError::new(action, path, error)
    }

    pub fn kind(&self) -> io::ErrorKind {
        self.error.kind()
    }
}

/// Adds what was being done, and to which path, to an I/O error: `fs::read(p).ctx("reading", p)?`
/// (each crate's error converts from [`IoError`]).
pub trait IoContext<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T, IoError>;
}

impl<T, E: Into<io::Error>> IoContext<T> for Result<T, E> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T, IoError> {
        self.map_err(|e| IoError::new(action, path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn the_system_error_is_said_once() {
        let e = IoError::new("reading", "/x", io::Error::from_raw_os_error(2));
        assert_eq!(
            e.to_string(),
            "reading /x: No such file or directory (os error 2)"
        );
        assert!(e.source().is_none());
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
