//! Advisory `flock(2)` locks held for as long as a value lives.
//!
//! Locks taken on a path are checked after locking: if the file was unlinked and re-created in
//! between (by a cleaner that held the lock), the lock is on a dead inode and is taken again.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A held lock; dropping it (or the process dying) releases it.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Shared,
    Exclusive,
}

impl FileLock {
    /// Waits for the lock on `path`, creating the file if needed.
    pub fn acquire(path: &Path, kind: LockKind) -> io::Result<FileLock> {
        Self::take(path, kind, true, true).map(|l| l.expect("blocking lock"))
    }

    /// Takes the lock on an existing file or directory if it is free; `None` if it is held.
    pub fn try_acquire_existing(path: &Path, kind: LockKind) -> io::Result<Option<FileLock>> {
        Self::take(path, kind, false, false)
    }

    fn take(path: &Path, kind: LockKind, create: bool, wait: bool) -> io::Result<Option<Self>> {
        // A bounded loop: each retry means a cleaner removed the file under us, which cannot
        // go on forever in practice; give up loudly rather than spin.
        for _ in 0..100 {
            let file = if create {
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o600)
                    .open(path)?
            } else {
                File::open(path)?
            };
            if wait {
                match kind {
                    LockKind::Shared => file.lock_shared()?,
                    LockKind::Exclusive => file.lock()?,
                }
            } else {
                let got = match kind {
                    LockKind::Shared => file.try_lock_shared(),
                    LockKind::Exclusive => file.try_lock(),
                };
                match got {
                    Ok(()) => {}
                    Err(TryLockError::WouldBlock) => return Ok(None),
                    Err(TryLockError::Error(e)) => return Err(e),
                }
            }
            let held = file.metadata()?;
            match std::fs::symlink_metadata(path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    return Ok(Some(FileLock {
                        file,
                        path: path.to_owned(),
                    }));
                }
                Err(e) if !create && e.kind() == io::ErrorKind::NotFound => {
                    return Err(e);
                }
                _ => continue,
            }
        }
        Err(io::Error::other(format!(
            "{} keeps being replaced while locking it",
            path.display()
        )))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self) -> &File {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_lock_excludes_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        let held = FileLock::acquire(&path, LockKind::Exclusive).unwrap();
        assert!(
            FileLock::try_acquire_existing(&path, LockKind::Shared)
                .unwrap()
                .is_none()
        );
        drop(held);
        let shared = FileLock::try_acquire_existing(&path, LockKind::Shared).unwrap();
        assert!(shared.is_some());
        assert!(
            FileLock::try_acquire_existing(&path, LockKind::Shared)
                .unwrap()
                .is_some()
        );
        assert!(
            FileLock::try_acquire_existing(&path, LockKind::Exclusive)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn directories_can_be_locked() {
        let dir = tempfile::tempdir().unwrap();
        let lock = FileLock::try_acquire_existing(dir.path(), LockKind::Exclusive).unwrap();
        assert!(lock.is_some());
    }
}
