//! rkt's directories under `/run/rkt` where stage0, stage1 and nspawn meet over unix sockets.
//! A socket there is reached only through the host's file system, which no pod sees, and only
//! by root; an abstract socket would live in the host's network namespace, where any
//! `--net=host` pod (or other container) could reach it or take its name first.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Makes `dir` a directory of this user's (root's, for rkt) that no one else can enter,
/// whoever made it first, with its parents (mode 0755) as needed.
pub(crate) fn private_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)?;
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(io::Error::other("not a directory of rkt's own"));
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Removes a socket file, if it is there.
pub(crate) fn remove_socket(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_dir_is_ours_alone_even_if_it_was_open() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run/notify");
        private_dir(&dir).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // A symlink in its place is not followed.
        let link = tmp.path().join("run/link");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        assert!(private_dir(&link).is_err());
    }
}
