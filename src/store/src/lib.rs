//! The content-addressed image store under `<dir>/cas`.
//!
//! ```text
//! cas/images/<image-id>/manifest     the manifest as the ACI held it
//!                      /blob         the ACI exactly as fetched (export gives it back)
//!                      /rootfs/      the rendered root filesystem, shared read-only by pods
//!                      /info.json    name, labels, import time, sizes
//!                      /last-used    its mtime is the last time a pod or command used it
//! cas/tmp/<random>/                  imports in progress, each locked by its importer
//! cas/locks/<image-id>               per-image lock: exclusive to add or remove it
//! ```
//!
//! An image exists exactly when `images/<id>` exists: it is assembled in `tmp/`, synced, and
//! renamed into place in one step, so a crash leaves no image that looks complete. Left-over
//! `tmp/` entries (their importer died) are removed by the next command that writes.

pub mod aci;
mod admission;
mod error;
pub mod oci;
mod oci_images;
mod render;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use admission::{Admission, KeptSignature, TrustDecision, TrustKind};
use error::IoContext;
pub use error::StoreError;
pub use oci_images::{OciImportOptions, OciImportOutcome, OciRecord, TransferProgress};
pub use render::LayeredImage;

use crate::aci::{ImageSizeLimit, SizeBound};
use rkt_common::lock::{FileLock, LockKind};
use rkt_schema::{ImageId, ImageManifest};

/// Facts about a stored image, as `info.json` keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Seconds since the Unix epoch.
    pub import_time: u64,
    pub compression: String,
    /// Size of the decompressed tar (what the ID hashes).
    pub tar_size: u64,
    /// Size of the ACI as fetched.
    pub blob_size: u64,
    /// Bytes of file content in the rendered root filesystem.
    pub rootfs_size: u64,
    /// Set for images made from OCI/Docker images: where from, and which stored layers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<OciRecord>,
}

/// A stored image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: ImageId,
    pub record: ImageRecord,
    /// Seconds since the Unix epoch.
    pub last_used: u64,
}

impl ImageInfo {
    /// Space the image takes in the store: the kept ACI or the OCI layers, and the rendered
    /// tree (none yet for an OCI image not used so far).
    pub fn disk_size(&self) -> u64 {
        let layers = self.record.oci.as_ref().map_or(0, |o| o.layers_size);
        self.record.blob_size + layers + self.record.rootfs_size
    }
}

/// The outcome of [`Store::import_file`].
#[derive(Debug)]
pub struct ImportOutcome {
    pub info: ImageInfo,
    /// False when the image was already in the store (by this or a concurrent import).
    pub newly_stored: bool,
}

/// A handle on the store directory; cheap, holds nothing open.
#[derive(Debug, Clone)]
pub struct Store {
    cas: PathBuf,
    /// How large an image may grow when it is imported or rendered.
    size_limit: ImageSizeLimit,
}

impl Store {
    /// Opens (creating if needed) the store under `<dir>/cas`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let store = Store {
            cas: dir.join("cas"),
            size_limit: ImageSizeLimit::Default,
        };
        // The directory's group (the rkt group, under the packaged /var/lib/rkt, whose setgid
        // bit hands it down) may list images and read their manifests and records; each
        // image's tree (`rootfs/`, which may hold setuid binaries) is root's alone
        // (TREE_MODE), and so are work in progress, locks and layers.
        for (sub, mode) in [
            ("", 0o750),
            ("images", 0o750),
            ("tmp", 0o700),
            ("locks", 0o700),
            ("layers", 0o700),
        ] {
            let path = store.cas.join(sub);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(&path)
                .ctx("creating", &path)?;
        }
        Ok(store)
    }

    /// Sets how large an image may grow once decompressed, at import (ACIs) and when its
    /// tree is rendered (OCI images); an image past it is refused and nothing of it is kept.
    pub fn with_size_limit(mut self, limit: ImageSizeLimit) -> Store {
        self.size_limit = limit;
        self
    }

    fn images_dir(&self) -> PathBuf {
        self.cas.join("images")
    }

    fn image_dir(&self, id: &ImageId) -> PathBuf {
        self.images_dir().join(id.as_str())
    }

    /// Where the rendered root filesystem of a stored image is, or will be once
    /// [`Store::rootfs`] rendered it (an OCI image is rendered at its first use).
    pub fn rootfs_path(&self, id: &ImageId) -> PathBuf {
        self.image_dir(id).join("rootfs")
    }

    fn image_lock(&self, id: &ImageId) -> Result<FileLock, StoreError> {
        let path = self.cas.join("locks").join(id.as_str());
        FileLock::acquire(&path, LockKind::Exclusive)
            .ctx("locking", path)
            .map_err(Into::into)
    }

    /// Imports the ACI file at `path`. Importing an image that is already stored succeeds and
    /// stores nothing new; two imports of one image at once both succeed and store it once.
    pub fn import_file(&self, path: &Path) -> Result<ImportOutcome, StoreError> {
        self.import_file_with_progress(path, Arc::default())
    }

    /// Like [`Store::import_file`], counting the bytes of the file read so far in `read`
    /// (for a progress display).
    pub fn import_file_with_progress(
        &self,
        path: &Path,
        read: Arc<AtomicU64>,
    ) -> Result<ImportOutcome, StoreError> {
        self.import_file_checked(path, read, &|_| Ok(()))
    }

    /// Like [`Store::import_file_with_progress`], but the image is stored only if `accept`
    /// agrees with its manifest (e.g. that it is the image discovery asked for); otherwise the
    /// import fails with [`StoreError::Refused`] and the store is unchanged.
    pub fn import_file_checked(
        &self,
        path: &Path,
        read: Arc<AtomicU64>,
        accept: &dyn Fn(&ImageManifest) -> Result<(), String>,
    ) -> Result<ImportOutcome, StoreError> {
        self.remove_stale_temp_dirs();
        let input = File::open(path).ctx("opening", path)?;
        let compressed = input.metadata().ctx("reading", path)?.len();
        let bound = self.size_limit.bound(compressed);
        let input = CountingReader { inner: input, read };
        let staging = Staging::create(&self.cas.join("tmp"))?;
        let result = self.import_into(&staging, input, bound, accept);
        if result.is_err() {
            staging.discard();
        }
        result.map_err(|e| self.no_space(e))
    }

    fn import_into<R: Read + Send + 'static>(
        &self,
        staging: &Staging,
        input: R,
        bound: SizeBound,
        accept: &dyn Fn(&ImageManifest) -> Result<(), String>,
    ) -> Result<ImportOutcome, StoreError> {
        let dir = &staging.path;
        let rootfs = dir.join("rootfs");
        fs::create_dir(&rootfs).ctx("creating", &rootfs)?;
        let blob_path = dir.join("blob");
        let blob = create_new(&blob_path)?;
        let imported = aci::import(input, &rootfs, Some(blob), Some(bound))?;
        accept(&imported.manifest).map_err(StoreError::Refused)?;
        close_tree(&rootfs)?;

        let record = ImageRecord {
            name: imported.manifest.name.to_string(),
            labels: imported
                .manifest
                .labels
                .iter()
                .map(|l| (l.name.to_string(), l.value.clone()))
                .collect(),
            import_time: now(),
            compression: imported.compression.name().to_owned(),
            tar_size: imported.tar_bytes,
            blob_size: fs::metadata(&blob_path).ctx("reading", &blob_path)?.len(),
            rootfs_size: imported.stats.file_bytes,
            oci: None,
        };
        write_new(&dir.join("manifest"), &imported.manifest_bytes)?;
        let record_json = serde_json::to_vec_pretty(&record).expect("record serializes");
        write_new(&dir.join("info.json"), &record_json)?;
        create_new(&dir.join("last-used"))?;
        // One syncfs instead of an fsync per file: the tree can have tens of thousands.
        rustix::fs::syncfs(staging.lock.file()).ctx("syncing", dir)?;

        let id = imported.id;
        let _image_lock = self.image_lock(&id)?;
        let target = self.image_dir(&id);
        if target.exists() {
            staging.discard();
            return Ok(ImportOutcome {
                info: self.info(&id)?,
                newly_stored: false,
            });
        }
        fs::rename(dir, &target).ctx("storing", &target)?;
        sync_dir(&self.images_dir())?;
        Ok(ImportOutcome {
            info: ImageInfo {
                id,
                last_used: record.import_time,
                record,
            },
            newly_stored: true,
        })
    }

    /// All stored images, oldest import first.
    pub fn list(&self) -> Result<Vec<ImageInfo>, StoreError> {
        let dir = self.images_dir();
        let mut images = Vec::new();
        for entry in fs::read_dir(&dir).ctx("reading", &dir)? {
            let entry = entry.ctx("reading", &dir)?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| ImageId::parse(n).ok())
                .filter(ImageId::is_full)
            else {
                continue;
            };
            images.push(self.info(&id)?);
        }
        images.sort_by(|a, b| {
            (a.record.import_time, a.id.as_str()).cmp(&(b.record.import_time, b.id.as_str()))
        });
        Ok(images)
    }

    /// One stored image by its full ID.
    pub fn info(&self, id: &ImageId) -> Result<ImageInfo, StoreError> {
        let dir = self.image_dir(id);
        let info_path = dir.join("info.json");
        let bytes = match fs::read(&info_path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(id.to_string()));
            }
            other => other.ctx("reading", &info_path)?,
        };
        let record: ImageRecord =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: info_path.clone(),
                reason: e.to_string(),
            })?;
        let last_used = fs::metadata(dir.join("last-used"))
            .and_then(|m| m.modified())
            .map(unix_seconds)
            .unwrap_or(record.import_time);
        Ok(ImageInfo {
            id: id.clone(),
            record,
            last_used,
        })
    }

    /// Finds an image by full ID, unique ID prefix (`sha512-91e98d7f`), or name with optional
    /// `:version` (the most recently imported match wins, as in rkt).
    pub fn resolve(&self, query: &str) -> Result<ImageInfo, StoreError> {
        let images = self.list()?;
        if let Some(hex) = query.strip_prefix("sha512-") {
            let prefix = format!("sha512-{}", hex.to_ascii_lowercase());
            let found: Vec<_> = images
                .into_iter()
                .filter(|i| i.id.as_str().starts_with(&prefix))
                .collect();
            return match found.len() {
                0 => Err(StoreError::NotFound(query.to_owned())),
                1 => Ok(found.into_iter().next().expect("one")),
                count => Err(StoreError::Ambiguous {
                    query: query.to_owned(),
                    count,
                    candidates: found
                        .iter()
                        .map(|i| short_id(&i.id))
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            };
        }
        let (name, version) = split_name_version(query);
        let mut labels = BTreeMap::new();
        if let Some(version) = version {
            labels.insert("version".to_owned(), version.to_owned());
        }
        self.find_by_name(name, &labels)?
            .ok_or_else(|| StoreError::NotFound(query.to_owned()))
    }

    /// The most recently imported image with this name whose labels include `labels`.
    pub fn find_by_name(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Option<ImageInfo>, StoreError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|i| {
                i.record.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| i.record.labels.get(k).is_some_and(|have| have == v))
            })
            .max_by_key(|i| i.record.import_time))
    }

    /// The manifest of a stored image, byte for byte as the ACI held it.
    pub fn manifest_bytes(&self, id: &ImageId) -> Result<Vec<u8>, StoreError> {
        let path = self.image_dir(id).join("manifest");
        fs::read(&path).ctx("reading", path).map_err(Into::into)
    }

    /// The parsed manifest of a stored image.
    pub fn manifest(&self, id: &ImageId) -> Result<ImageManifest, StoreError> {
        let path = self.image_dir(id).join("manifest");
        let bytes = self.manifest_bytes(id)?;
        ImageManifest::from_json(&bytes).map_err(|e| StoreError::Corrupt {
            path,
            reason: e.to_string(),
        })
    }

    /// Records that the image was used now (for `image list` and, later, `image gc`).
    pub fn touch(&self, id: &ImageId) -> Result<(), StoreError> {
        let path = self.image_dir(id).join("last-used");
        let file = File::options()
            .write(true)
            .open(&path)
            .ctx("opening", &path)?;
        file.set_modified(SystemTime::now())
            .ctx("touching", path)
            .map_err(Into::into)
    }

    /// Held (shared) by whoever is about to make a pod or app use images: from looking the
    /// images up until the pod's manifest names them. [`Store::remove_unless`] decides under
    /// the same lock, exclusively, so a removal either sees the manifest (and the pod keeps
    /// its image) or is over before the images are looked up (and the pod is refused with
    /// "not found"): never an image removed under a pod being made.
    pub fn hold_images(&self) -> Result<FileLock, StoreError> {
        self.image_users_lock(LockKind::Shared)
    }

    fn image_users_lock(&self, kind: LockKind) -> Result<FileLock, StoreError> {
        let path = self.cas.join("locks").join("image-users");
        FileLock::acquire(&path, kind)
            .ctx("locking", path)
            .map_err(Into::into)
    }

    /// Removes an image and all its files. It disappears at once (one rename) and its files
    /// are deleted afterwards, so a crash midway leaves only a `tmp/` entry to clean.
    pub fn remove(&self, id: &ImageId) -> Result<(), StoreError> {
        self.remove_unless(id, || Ok::<(), StoreError>(()))
    }

    /// [`Store::remove`], unless `in_use` fails (because a pod still needs the image):
    /// decided while no pod is being made from stored images (see [`Store::hold_images`]).
    pub fn remove_unless<E: From<StoreError>>(
        &self,
        id: &ImageId,
        in_use: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        self.remove_stale_temp_dirs();
        let _users = self.image_users_lock(LockKind::Exclusive)?;
        let lock = self.image_lock(id)?;
        let dir = self.image_dir(id);
        if !dir.exists() {
            return Err(StoreError::NotFound(id.to_string()).into());
        }
        in_use()?;
        // Safe while we hold it: a waiter that locked the unlinked file notices and retries.
        let _ = fs::remove_file(lock.path());
        let graveyard = self.cas.join("tmp").join(format!("rm-{}", unique_name()));
        fs::rename(&dir, &graveyard)
            .ctx("removing", &dir)
            .map_err(StoreError::from)?;
        sync_dir(&self.images_dir())?;
        fs::remove_dir_all(&graveyard)
            .ctx("removing", &graveyard)
            .map_err(StoreError::from)?;
        Ok(())
    }

    /// Writes the ACI as it was fetched to `out`. Its bytes are checked against the image ID on
    /// the way, so a store damaged on disk does not hand out a wrong image.
    pub fn export(&self, id: &ImageId, out: &Path, overwrite: bool) -> Result<(), StoreError> {
        let info = self.info(id)?;
        if info.record.oci.is_some() {
            return Err(StoreError::NotAnAci {
                name: info.record.name,
            });
        }
        if !overwrite && out.exists() {
            return Err(StoreError::DestinationExists(out.to_owned()));
        }
        let blob = self.image_dir(id).join("blob");
        self.verify_blob(id)?;
        let partial = out.with_extension(format!("partial-{}", unique_name()));
        fs::copy(&blob, &partial).ctx("writing", &partial)?;
        fs::rename(&partial, out)
            .ctx("writing", out)
            .map_err(Into::into)
    }

    /// Opens the kept ACI of an image, as it was fetched (what its signature covers).
    pub fn open_aci_blob(&self, id: &ImageId) -> Result<File, StoreError> {
        let blob = self.image_dir(id).join("blob");
        File::open(&blob).ctx("opening", &blob).map_err(Into::into)
    }

    /// Checks that the kept ACI still hashes to the image ID.
    pub fn verify_blob(&self, id: &ImageId) -> Result<(), StoreError> {
        if self.info(id)?.record.oci.is_some() {
            return self.verify_oci(id);
        }
        let blob = self.image_dir(id).join("blob");
        let file = File::open(&blob).ctx("opening", &blob)?;
        let (_, mut stream) = aci::decoder(BufReader::new(file))?;
        let actual = aci::hash_stream(&mut stream).ctx("reading", &blob)?;
        if &actual != id {
            return Err(StoreError::Tampered {
                id: id.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }

    /// Unpacks a stored image into `dest` (`manifest` and `rootfs/`, or the root filesystem
    /// alone), from the kept ACI and with the same checks as an import, including the ID.
    pub fn extract(
        &self,
        id: &ImageId,
        dest: &Path,
        rootfs_only: bool,
        overwrite: bool,
    ) -> Result<(), StoreError> {
        self.prepare_destination(dest, overwrite)?;
        let result = self.extract_into(id, dest, rootfs_only);
        if result.is_err() {
            let _ = fs::remove_dir_all(dest);
        }
        result
    }

    fn extract_into(&self, id: &ImageId, dest: &Path, rootfs_only: bool) -> Result<(), StoreError> {
        let rootfs = if rootfs_only {
            dest.to_owned()
        } else {
            let rootfs = dest.join("rootfs");
            fs::create_dir(&rootfs).ctx("creating", &rootfs)?;
            rootfs
        };
        if self.info(id)?.record.oci.is_some() {
            self.extract_oci(id, &rootfs)?;
            if !rootfs_only {
                write_new(&dest.join("manifest"), &self.manifest_bytes(id)?)?;
            }
            return self.touch(id);
        }
        let blob = self.image_dir(id).join("blob");
        let input = File::open(&blob).ctx("opening", &blob)?;
        let unpacked = aci::unpack(input, &rootfs)?;
        if &unpacked.id != id {
            return Err(StoreError::Tampered {
                id: id.to_string(),
                actual: unpacked.id.to_string(),
            });
        }
        if !rootfs_only {
            write_new(&dest.join("manifest"), &unpacked.manifest_bytes)?;
        }
        self.touch(id)
    }

    /// Writes the root filesystem an app of this image would see: its own, or with its
    /// dependencies laid under it and path whitelists applied (see `render.rs`).
    pub fn render(&self, id: &ImageId, dest: &Path, overwrite: bool) -> Result<(), StoreError> {
        let list = self.dependency_list(id)?;
        if list.len() == 1 && list[0].manifest.path_whitelist.is_empty() {
            return self.extract(id, dest, true, overwrite);
        }
        self.prepare_destination(dest, overwrite)?;
        let result = self.render_layered(&list, dest);
        if result.is_err() {
            let _ = fs::remove_dir_all(dest);
        }
        result?;
        self.touch(id)
    }

    /// Writes what [`Store::render`] writes into `dest/rootfs`, with the image's manifest
    /// beside it in `dest/manifest`: the layout of the original's `rkt image render`.
    pub fn render_with_manifest(
        &self,
        id: &ImageId,
        dest: &Path,
        overwrite: bool,
    ) -> Result<(), StoreError> {
        self.prepare_destination(dest, overwrite)?;
        let result = self
            .render(id, &dest.join("rootfs"), false)
            .and_then(|()| write_new(&dest.join("manifest"), &self.manifest_bytes(id)?));
        if result.is_err() {
            let _ = fs::remove_dir_all(dest);
        }
        result
    }

    /// The store's own directory (`<dir>/cas`), for modules that keep records beside the
    /// images (the HTTP cache under `cas/remote/`).
    pub fn cas_dir(&self) -> &Path {
        &self.cas
    }

    /// A fresh directory under `tmp/`, locked while the returned guard lives and removed when
    /// it is dropped (or by the next writing command, if this process dies first).
    pub fn temp_dir(&self) -> Result<TempDir, StoreError> {
        self.remove_stale_temp_dirs();
        Ok(TempDir(Staging::create(&self.cas.join("tmp"))?))
    }

    /// A write into the store that failed for want of space says so plainly, whatever step it
    /// interrupted (the copy of the ACI, a file of its tree, the records).
    fn no_space(&self, e: StoreError) -> StoreError {
        if e.io_error().and_then(io::Error::raw_os_error) == Some(libc::ENOSPC) {
            StoreError::NoSpace {
                dir: self.cas.clone(),
            }
        } else {
            e
        }
    }

    /// Removes what importers that died (a killed fetch) left in `tmp/`. Entries still
    /// locked are in use.
    pub fn remove_stale_temp_dirs(&self) {
        let tmp = self.cas.join("tmp");
        let Ok(entries) = fs::read_dir(&tmp) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if let Ok(Some(_lock)) = FileLock::try_acquire_existing(&path, LockKind::Exclusive) {
                tracing::debug!("removing stale {}", path.display());
                let _ = fs::remove_dir_all(&path);
            }
        }
    }
}

/// `sha512-` and the first 12 hex digits, as `rkt image list` shows IDs.
pub fn short_id(id: &ImageId) -> String {
    id.as_str().chars().take("sha512-".len() + 12).collect()
}

/// `example.com/app:1.0` → (`example.com/app`, `Some("1.0")`). A colon is not allowed in AC
/// Identifiers, so the last one always starts the version.
pub fn split_name_version(query: &str) -> (&str, Option<&str>) {
    match query.rsplit_once(':') {
        Some((name, version)) => (name, Some(version)),
        None => (query, None),
    }
}

/// A directory under `tmp/` being filled, locked by this process for as long as it lives.
struct Staging {
    path: PathBuf,
    lock: FileLock,
}

impl Staging {
    fn create(tmp: &Path) -> Result<Staging, StoreError> {
        for _ in 0..100 {
            let path = tmp.join(unique_name());
            // Becomes an image's directory (group-readable, see `Store::open`); `tmp/` keeps
            // it private until then.
            fs::DirBuilder::new()
                .mode(0o750)
                .create(&path)
                .ctx("creating", &path)?;
            // A cleaner may lock and delete the directory before we lock it; then we retry.
            match FileLock::try_acquire_existing(&path, LockKind::Exclusive) {
                Ok(Some(lock)) => return Ok(Staging { path, lock }),
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).ctx("locking", path).map_err(Into::into),
            }
        }
        Err(StoreError::Io(rkt_common::IoError::new(
            "creating a temporary directory in",
            tmp.to_owned(),
            io::Error::other("it keeps disappearing"),
        )))
    }

    fn discard(&self) {
        if let Err(e) = fs::remove_dir_all(&self.path) {
            tracing::warn!("could not remove {}: {e}", self.path.display());
        }
    }
}

/// A locked scratch directory under `tmp/` (see [`Store::temp_dir`]).
pub struct TempDir(Staging);

impl TempDir {
    pub fn path(&self) -> &Path {
        &self.0.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        self.0.discard();
    }
}

/// Counts what passes through, for progress reports.
struct CountingReader<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The mode of an image's tree (`rootfs/`): only root may enter it, whatever mode the image
/// gave its root, because the tree may hold setuid binaries and its image's directory is open
/// to the store's group. Pods see their apps' roots through overlays, whose root directory
/// is the pod's own upper layer, so this mode never reaches an app.
pub const TREE_MODE: u32 = 0o700;

/// Gives a freshly made tree its mode (`TREE_MODE`) before it is stored.
pub(crate) fn close_tree(tree: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(tree, fs::Permissions::from_mode(TREE_MODE))
        .ctx("closing", tree)
        .map_err(Into::into)
}

fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn now() -> u64 {
    unix_seconds(SystemTime::now())
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A new file only root reads (blobs, layers, markers).
fn create_new(path: &Path) -> Result<File, StoreError> {
    create_with_mode(path, 0o600)
}

fn create_with_mode(path: &Path, mode: u32) -> Result<File, StoreError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .ctx("creating", path)
        .map_err(Into::into)
}

/// A new record (manifests, `info.json`): readable by the store's group, like its directory.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    create_with_mode(path, 0o644)?
        .write_all(bytes)
        .ctx("writing", path)
        .map_err(Into::into)
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .ctx("syncing", path)
        .map_err(Into::into)
}

impl Store {
    /// `dest` must be missing or an empty directory, unless `overwrite` allows removing it.
    fn prepare_destination(&self, dest: &Path, overwrite: bool) -> Result<(), StoreError> {
        match fs::read_dir(dest) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    if !overwrite {
                        return Err(StoreError::DestinationExists(dest.to_owned()));
                    }
                    self.check_replaceable(dest)?;
                    fs::remove_dir_all(dest).ctx("removing", dest)?;
                    fs::create_dir(dest).ctx("creating", dest)?;
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(dest)
                .ctx("creating", dest)
                .map_err(Into::into),
            Err(e) => Err(e).ctx("reading", dest).map_err(Into::into),
        }
    }

    /// `--overwrite` removes everything under `dest` first: refused for a directory that is
    /// plainly not one an image was written to before (`/`, `/etc`, a mount point, the store or
    /// a directory holding it), where a slip of the keyboard would wipe a system.
    fn check_replaceable(&self, dest: &Path) -> Result<(), StoreError> {
        let real = dest.canonicalize().ctx("reading", dest)?;
        let refuse = |reason: &'static str| {
            Err(StoreError::WontReplace {
                path: real.clone(),
                reason,
            })
        };
        let Some(parent) = real.parent() else {
            return refuse("it is the root directory");
        };
        if parent == Path::new("/") {
            return refuse("it is a top-level directory");
        }
        let cas = self.cas.canonicalize().ctx("reading", &self.cas)?;
        if cas.starts_with(&real) || real.starts_with(&cas) {
            return refuse("it holds the image store or is part of it");
        }
        use std::os::unix::fs::MetadataExt;
        let dev = |p: &Path| fs::metadata(p).map(|m| m.dev()).ctx("reading", p);
        if dev(&real)? != dev(parent)? {
            return refuse("it is a mount point");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the check is called here: it removes nothing itself.
    #[test]
    fn overwrite_refuses_directories_that_are_not_an_images() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("data")).unwrap();
        for path in ["/", "/etc", "/usr", "/tmp"] {
            let err = store.check_replaceable(Path::new(path)).unwrap_err();
            assert!(
                matches!(err, StoreError::WontReplace { .. }),
                "{path}: {err}"
            );
        }
        for path in [
            tmp.path(),
            &tmp.path().join("data"),
            &tmp.path().join("data/cas/images"),
        ] {
            let err = store.check_replaceable(path).unwrap_err();
            assert!(err.to_string().contains("image store"), "{err}");
        }
        let out = tmp.path().join("out");
        fs::create_dir(&out).unwrap();
        store.check_replaceable(&out).unwrap();
    }

    #[test]
    fn splits_versions_off_names() {
        assert_eq!(
            split_name_version("example.com/app:1.0"),
            ("example.com/app", Some("1.0"))
        );
        assert_eq!(
            split_name_version("example.com/app"),
            ("example.com/app", None)
        );
    }
}
