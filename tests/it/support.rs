//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rkt_store::Store;
use tempfile::TempDir;

/// A store in a fresh temporary directory, plus a place for input files.
pub struct Fixture {
    pub dir: TempDir,
    pub store: Store,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        Fixture { dir, store }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Writes `bytes` as an input file and returns its path.
    pub fn input(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
    }
}

/// Every path under `root` with its type, size, mode and content hash: equal snapshots mean
/// nothing was added, removed or changed.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(root).unwrap().to_owned();
        let desc = if meta.is_dir() {
            walk(root, &path, out);
            format!("dir {:o}", meta.mode())
        } else if meta.file_type().is_symlink() {
            format!("link {}", fs::read_link(&path).unwrap().display())
        } else {
            let content = fs::read(&path).unwrap_or_default();
            format!(
                "file {:o} {} {}",
                meta.mode(),
                meta.len(),
                crate::aci::image_id(&content)
            )
        };
        out.insert(rel, desc);
    }
}
