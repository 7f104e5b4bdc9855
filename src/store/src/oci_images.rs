//! OCI and Docker images in the store.
//!
//! ```text
//! cas/layers/sha256-<hex>            a layer blob as fetched (compressed), checked against its
//!                                    digest; shared by every image that lists it
//! cas/images/<image-id>/manifest     the appc manifest made from the image's config
//!                      /oci-manifest the OCI/Docker image manifest as fetched
//!                      /oci-config   the image config as fetched
//!                      /rootfs/      the layers applied in order, made at first use
//!                      /info.json    as for ACIs, plus `oci`: source, digests, layers
//! cas/locks/layers                   shared while importing, exclusive to remove layers
//! ```
//!
//! The image ID of an OCI image is `sha512-` + the SHA-512 of its image manifest bytes (the
//! platform's manifest, not an index): the manifest names the config and every layer by
//! digest, so the ID pins the whole image as an appc ID pins an ACI, and fetching the same
//! image from a registry or a layout gives the same ID. (`docker-archive:` tarballs hold no
//! manifest; rkt writes one from `manifest.json`, so their IDs differ from the registry's.)

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha512};

use super::error::IoContext;
use super::{
    CountingReader, ImageInfo, ImageRecord, Staging, Store, StoreError, create_new, now, sync_dir,
    write_new,
};
use crate::aci::{AciError, Budget, Extractor};
use crate::oci::{self, Digest, ImageSource, OciError, VerifyingReader};
use rkt_common::lock::{FileLock, LockKind};
use rkt_schema::ImageId;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

/// How many layers decode at once (the one being unpacked and those after it), and how many
/// 256 KiB chunks of tar each may hold ready (≤ 8 MiB): the next layer inflates on the other
/// core while this one's files are written, with memory bounded whatever the layer sizes.
const DECODE_AHEAD: usize = 3;
const DECODE_DEPTH: usize = 32;

/// Where an OCI image came from and what it is made of (`info.json`'s `oci`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciRecord {
    /// `docker://…`, `oci:…`, `oci-archive:…` or `docker-archive:…`.
    pub source: String,
    pub manifest_digest: String,
    pub config_digest: String,
    /// Layer digests, lowest first.
    pub layers: Vec<String>,
    /// The layers' compressed sizes summed: what `rkt image list` shows before the image is
    /// rendered. Shared layers count in every image that lists them, as in `podman images`.
    #[serde(default)]
    pub layers_size: u64,
}

/// How [`Store::import_oci`] takes an image in: a progress counter for the layer bytes, and
/// how many layer blobs download at once.
#[derive(Debug, Clone)]
pub struct OciImportOptions {
    pub progress: TransferProgress,
    /// At least 1.
    pub parallel_downloads: usize,
}

/// Bytes received and expected (0 while unknown), for a progress display.
#[derive(Debug, Clone, Default)]
pub struct TransferProgress {
    pub received: Arc<AtomicU64>,
    pub total: Arc<AtomicU64>,
}

/// The outcome of [`Store::import_oci`].
#[derive(Debug)]
pub struct OciImportOutcome {
    pub info: ImageInfo,
    /// False when the image was already in the store.
    pub newly_stored: bool,
    /// Layers that had to be fetched (the others were already stored).
    pub layers_fetched: usize,
}

impl Store {
    fn layers_dir(&self) -> PathBuf {
        self.cas.join("layers")
    }

    fn layer_path(&self, digest: &Digest) -> PathBuf {
        self.layers_dir().join(digest.file_name())
    }

    fn layers_lock(&self, kind: LockKind) -> Result<FileLock, StoreError> {
        let path = self.cas.join("locks").join("layers");
        FileLock::acquire(&path, kind)
            .ctx("locking", path)
            .map_err(Into::into)
    }

    /// Takes an OCI or Docker image into the store from the source that `open` gives (it may
    /// unpack an archive into the scratch directory it is handed, which the store removes):
    /// each layer not stored yet is fetched once, up to `options.parallel_downloads` at a
    /// time, each into its own file through a digest check. An image already stored is not
    /// fetched again (only its manifest is read). Like ACI imports, it is all or nothing; the
    /// layers are applied at first use ([`Store::rootfs`]).
    pub fn import_oci(
        &self,
        open: impl FnOnce(&Path) -> Result<Box<dyn ImageSource>, OciError>,
        options: &OciImportOptions,
    ) -> Result<OciImportOutcome, StoreError> {
        self.remove_stale_temp_dirs();
        let staging = Staging::create(&self.cas.join("tmp"))?;
        let result = self.import_oci_into(&staging, open, options);
        if result.is_err() {
            staging.discard();
        }
        result.map_err(|e| self.no_space(e))
    }

    fn import_oci_into(
        &self,
        staging: &Staging,
        open: impl FnOnce(&Path) -> Result<Box<dyn ImageSource>, OciError>,
        options: &OciImportOptions,
    ) -> Result<OciImportOutcome, StoreError> {
        let dir = &staging.path;
        let scratch = dir.join("source");
        let mut src = open(&scratch)?;
        let image = src.resolve()?;
        // The source decided whether the image may come in (signatures, policy) as it
        // resolved it; the decision is kept with the image.
        let admission = src.admission();
        let id = ImageId::from_sha512_digest(&Sha512::digest(&image.manifest_bytes).into());
        let record_admission = |store: &Store| match &admission {
            Some(a) => store.record_admission(&id, a),
            None => Ok(()),
        };
        let stored = self.image_dir(&id).exists();

        // Held until the image is in place, so `image gc` cannot take layers from under us.
        let _layers = self.layers_lock(LockKind::Shared)?;
        // Layers not stored yet, each fetched once even if the manifest lists it twice. For
        // an image already stored this is empty, unless a damaged layer was dropped since.
        let mut to_fetch: Vec<&oci::Descriptor> = Vec::new();
        for layer in &image.manifest.layers {
            if !self.layer_path(&layer.digest).exists()
                && !to_fetch.iter().any(|l| l.digest == layer.digest)
            {
                to_fetch.push(layer);
            }
        }
        if stored && to_fetch.is_empty() {
            staging.discard();
            record_admission(self)?;
            return Ok(OciImportOutcome {
                info: self.info(&id)?,
                newly_stored: false,
                layers_fetched: 0,
            });
        }
        let config_bytes = match stored {
            true => None,
            false => Some(image.read_config(&mut *src)?),
        };

        self.download_layers(dir, &mut *src, &image.source, &to_fetch, options)?;
        // New layers join the store only with the image, so a failed import leaves none.
        for layer in &to_fetch {
            let stored_path = self.layer_path(&layer.digest);
            fs::rename(partial_path(dir, &layer.digest), &stored_path)
                .ctx("storing", &stored_path)?;
        }
        if !to_fetch.is_empty() {
            sync_dir(&self.layers_dir())?;
        }
        let layers_fetched = to_fetch.len();
        let Some((config_bytes, config)) = config_bytes else {
            // The image was stored already: its missing layers are back.
            staging.discard();
            record_admission(self)?;
            return Ok(OciImportOutcome {
                info: self.info(&id)?,
                newly_stored: false,
                layers_fetched,
            });
        };
        if scratch.exists() {
            fs::remove_dir_all(&scratch).ctx("removing", &scratch)?;
        }

        let (manifest, manifest_bytes) = oci::appc_manifest(&image, &config)?;
        let record = ImageRecord {
            name: manifest.name.to_string(),
            labels: manifest
                .labels
                .iter()
                .map(|l| (l.name.to_string(), l.value.clone()))
                .collect(),
            import_time: now(),
            compression: "oci".to_owned(),
            // Known once the root filesystem is rendered, at first use (`rootfs`).
            tar_size: 0,
            // Layers are shared and counted apart: see `layers`.
            blob_size: 0,
            rootfs_size: 0,
            oci: Some(OciRecord {
                source: image.source.clone(),
                manifest_digest: image.manifest_digest.to_string(),
                config_digest: image.manifest.config.digest.to_string(),
                layers: image
                    .manifest
                    .layers
                    .iter()
                    .map(|l| l.digest.to_string())
                    .collect(),
                layers_size: image.manifest.layers.iter().map(|l| l.size).sum(),
            }),
        };
        write_new(&dir.join("manifest"), &manifest_bytes)?;
        write_new(&dir.join("oci-manifest"), &image.manifest_bytes)?;
        write_new(&dir.join("oci-config"), &config_bytes)?;
        let record_json = serde_json::to_vec_pretty(&record).expect("record serializes");
        write_new(&dir.join("info.json"), &record_json)?;
        create_new(&dir.join("last-used"))?;
        if let Some(admission) = &admission {
            self.write_admission(dir, admission, false)?;
        }
        rustix::fs::syncfs(staging.lock.file()).ctx("syncing", dir)?;

        let _image_lock = self.image_lock(&id)?;
        let target = self.image_dir(&id);
        if target.exists() {
            staging.discard();
            drop(_image_lock);
            record_admission(self)?;
            return Ok(OciImportOutcome {
                info: self.info(&id)?,
                newly_stored: false,
                layers_fetched,
            });
        }
        fs::rename(dir, &target).ctx("storing", &target)?;
        sync_dir(&self.images_dir())?;
        Ok(OciImportOutcome {
            info: ImageInfo {
                id,
                last_used: record.import_time,
                record,
            },
            newly_stored: true,
            layers_fetched,
        })
    }

    /// Downloads `layers` into `dir` (see [`partial_path`]), at most
    /// `options.parallel_downloads` at once, each checked against its digest and size as it
    /// streams in. The first failure stops the others and is returned.
    fn download_layers(
        &self,
        dir: &Path,
        src: &mut dyn ImageSource,
        source_name: &str,
        layers: &[&oci::Descriptor],
        options: &OciImportOptions,
    ) -> Result<(), StoreError> {
        let progress = &options.progress;
        progress.received.store(0, Ordering::Relaxed);
        progress
            .total
            .store(layers.iter().map(|l| l.size).sum(), Ordering::Relaxed);
        let transfers: Vec<oci::Transfer> = layers.iter().map(|_| Default::default()).collect();
        let abort = AtomicBool::new(false);
        let parallel = options.parallel_downloads.max(1);
        thread::scope(|scope| {
            let (transfers, abort) = (&transfers, &abort);
            for (k, layer) in layers.iter().enumerate() {
                if k >= parallel {
                    transfers[k - parallel].wait_finished();
                }
                let started = (|| -> Result<_, StoreError> {
                    if abort.load(Ordering::Relaxed) {
                        return Err(oci::OciError::Abandoned.into());
                    }
                    let out = create_new(&partial_path(dir, &layer.digest))?;
                    let blob = src.open_blob(layer)?;
                    Ok((out, blob))
                })();
                match started {
                    Ok((out, blob)) => {
                        let what = format!("layer {} of {source_name}", layer.digest);
                        scope.spawn(move || {
                            let transfer = &transfers[k];
                            transfer.run(blob, out, layer, &what, &progress.received, abort);
                            if transfer.failed() {
                                abort.store(true, Ordering::Relaxed);
                            }
                        });
                    }
                    Err(e) => {
                        abort.store(true, Ordering::Relaxed);
                        transfers[k].fail(store_to_oci(e));
                        for t in &transfers[k + 1..] {
                            t.fail(oci::OciError::Abandoned);
                        }
                        break;
                    }
                }
            }
        });
        // The first layer that failed says why; others were abandoned for it.
        let mut errors: Vec<oci::OciError> =
            transfers.iter().filter_map(|t| t.wait().err()).collect();
        match errors
            .iter()
            .position(|e| !matches!(e, oci::OciError::Abandoned))
        {
            Some(first) => Err(errors.swap_remove(first).into()),
            None => errors.into_iter().next().map_or(Ok(()), |e| Err(e.into())),
        }
    }

    /// The rendered root filesystem of a stored image, made now if it is not there yet: an
    /// OCI image's layers are only stored at fetch and applied at first use, as the original
    /// rkt rendered its tree store at `prepare`. The tree is made under `tmp/` and renamed
    /// into place, under the image's lock, so a second caller waits and then uses it.
    pub fn rootfs(&self, id: &ImageId) -> Result<PathBuf, StoreError> {
        self.rootfs_with_progress(id, &Arc::default())
    }

    /// The bytes of stored layers a first [`Store::rootfs`] of this image would read, or
    /// `None` when its tree is there already (or it is an ACI, always rendered at import):
    /// for a progress display.
    pub fn unrendered_size(&self, id: &ImageId) -> Result<Option<u64>, StoreError> {
        if self.rootfs_path(id).exists() {
            return Ok(None);
        }
        let Some(oci) = self.info(id)?.record.oci else {
            return Ok(None);
        };
        let sizes: std::collections::BTreeMap<String, u64> = self
            .layers()?
            .into_iter()
            .map(|(d, size)| (d.to_string(), size))
            .collect();
        Ok(Some(oci.layers.iter().filter_map(|l| sizes.get(l)).sum()))
    }

    /// [`Store::rootfs`], adding the bytes of stored layers read to `progress` as it goes.
    pub fn rootfs_with_progress(
        &self,
        id: &ImageId,
        progress: &Arc<AtomicU64>,
    ) -> Result<PathBuf, StoreError> {
        let rootfs = self.rootfs_path(id);
        if rootfs.exists() {
            return Ok(rootfs);
        }
        let info = self.info(id)?;
        if info.record.oci.is_none() {
            return Err(StoreError::Corrupt {
                path: rootfs,
                reason:
                    "the rendered tree of this ACI is missing; remove the image and fetch it again"
                        .to_owned(),
            });
        }
        let _image_lock = self.image_lock(id)?;
        if rootfs.exists() {
            return Ok(rootfs);
        }
        self.remove_stale_temp_dirs();
        let staging = Staging::create(&self.cas.join("tmp"))?;
        let result = self.render_oci_rootfs(&staging, id, info.record, progress);
        staging.discard();
        result.map(|()| rootfs).map_err(|e| self.no_space(e))
    }

    fn render_oci_rootfs(
        &self,
        staging: &Staging,
        id: &ImageId,
        mut record: ImageRecord,
        progress: &Arc<AtomicU64>,
    ) -> Result<(), StoreError> {
        let tree = staging.path.join("rootfs");
        fs::create_dir(&tree).ctx("creating", &tree)?;
        let (tar_size, file_bytes) = self.apply_oci_layers(id, &tree, progress)?;
        crate::close_tree(&tree)?;
        rustix::fs::syncfs(staging.lock.file()).ctx("syncing", &tree)?;
        let rootfs = self.rootfs_path(id);
        fs::rename(&tree, &rootfs).ctx("storing", &rootfs)?;
        // The sizes are known now; info.json is replaced whole, so readers see old or new.
        record.tar_size = tar_size;
        record.rootfs_size = file_bytes;
        let record_json = serde_json::to_vec_pretty(&record).expect("record serializes");
        let info_path = self.image_dir(id).join("info.json");
        rkt_common::fs::write_atomic(&info_path, &record_json, 0o644)
            .ctx("storing", &info_path)
            .map_err(Into::into)
    }

    /// Applies an OCI image's stored layers in order onto `rootfs` (an existing empty
    /// directory), each checked against its digest while it is read. A few layers decode
    /// ahead on their own threads, so the next inflates while this one's files are written.
    /// Returns the size of the layers' tars and the bytes of file content written.
    fn apply_oci_layers(
        &self,
        id: &ImageId,
        rootfs: &Path,
        progress: &Arc<AtomicU64>,
    ) -> Result<(u64, u64), StoreError> {
        let manifest = self.oci_manifest(id)?;
        let _layers = self.layers_lock(LockKind::Shared)?;
        let mut extractor = Extractor::for_layers(rootfs).map_err(StoreError::Aci)?;
        let layers = &manifest.layers;
        // The layers count against one bound together, however the image splits its bytes.
        let budget = &Budget::new(self.size_limit.bound(layers.iter().map(|l| l.size).sum()));
        let whats: Vec<String> = layers
            .iter()
            .map(|l| format!("stored layer {}", l.digest))
            .collect();
        let tar_size = thread::scope(|scope| -> Result<u64, StoreError> {
            let mut pending = VecDeque::new();
            let mut tar_size = 0;
            for (i, layer) in layers.iter().enumerate() {
                for ahead in i + pending.len()..layers.len().min(i + DECODE_AHEAD) {
                    let next = &layers[ahead];
                    let blob = self.open_layer(&next.digest)?;
                    let blob = CountingReader {
                        inner: blob,
                        read: progress.clone(),
                    };
                    pending.push_back(oci::Decoding::start(
                        scope,
                        Box::new(blob),
                        next,
                        None,
                        &whats[ahead],
                        DECODE_DEPTH,
                        Some(budget),
                    ));
                }
                let decoding = pending.pop_front().expect("started above");
                tar_size += decoding.apply(&mut extractor).map_err(|e| {
                    if budget.exceeded() {
                        StoreError::Aci(AciError::TooLarge(budget.bound()))
                    } else {
                        self.stored_layer_error(layer, e)
                    }
                })?;
            }
            Ok(tar_size)
        })?;
        let stats = extractor.finish_layers().map_err(StoreError::Aci)?;
        Ok((tar_size, stats.file_bytes))
    }

    /// Opens a stored layer blob; a missing one says to fetch the image again.
    fn open_layer(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.layer_path(digest);
        match File::open(&path) {
            Ok(file) => Ok(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::LayerMissing {
                digest: digest.to_string(),
            }),
            Err(e) => Err(e).ctx("opening", &path).map_err(Into::into),
        }
    }

    /// A stored layer that no longer matches its digest is removed (the next fetch gets it
    /// again) and reported as damaged.
    fn stored_layer_error(&self, layer: &oci::Descriptor, e: oci::OciError) -> StoreError {
        let damaged = |actual: String| {
            let _ = fs::remove_file(self.layer_path(&layer.digest));
            StoreError::LayerDamaged {
                digest: layer.digest.to_string(),
                actual,
            }
        };
        match e {
            oci::OciError::DigestMismatch { actual, .. } => damaged(actual),
            oci::OciError::SizeMismatch { actual, .. } => damaged(format!("{actual} bytes")),
            e => e.into(),
        }
    }

    /// The stored OCI manifest of an image, checked against the image ID.
    fn oci_manifest(&self, id: &ImageId) -> Result<oci::Manifest, StoreError> {
        let path = self.image_dir(id).join("oci-manifest");
        let bytes = fs::read(&path).ctx("reading", &path)?;
        let actual = ImageId::from_sha512_digest(&Sha512::digest(&bytes).into());
        if &actual != id {
            return Err(StoreError::Tampered {
                id: id.to_string(),
                actual: actual.to_string(),
            });
        }
        match oci::Document::parse(&bytes, None, &path.display().to_string())? {
            oci::Document::Manifest(m) => Ok(m),
            oci::Document::Index(_) => Err(StoreError::Corrupt {
                path,
                reason: "an index where an image manifest was expected".to_owned(),
            }),
        }
    }

    /// Renders an OCI image's root filesystem again into `rootfs` (an existing empty
    /// directory) from its stored layers, each checked against its digest.
    pub(super) fn extract_oci(&self, id: &ImageId, rootfs: &Path) -> Result<(), StoreError> {
        self.apply_oci_layers(id, rootfs, &Arc::default()).map(drop)
    }

    /// Checks an OCI image's manifest against its ID and every layer against its digest.
    pub(super) fn verify_oci(&self, id: &ImageId) -> Result<(), StoreError> {
        let manifest = self.oci_manifest(id)?;
        for layer in &manifest.layers {
            let file = self.open_layer(&layer.digest)?;
            VerifyingReader::new(io::BufReader::new(file), layer.size).finish(
                &layer.digest,
                layer.size,
                &format!("stored layer {}", layer.digest),
            )?;
        }
        Ok(())
    }

    /// Stored layers with their sizes.
    pub fn layers(&self) -> Result<Vec<(Digest, u64)>, StoreError> {
        let dir = self.layers_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).ctx("reading", &dir)? {
            let entry = entry.ctx("reading", &dir)?;
            let name = entry.file_name();
            let Some(digest) = name
                .to_str()
                .and_then(|n| n.strip_prefix("sha256-"))
                .and_then(|hex| Digest::parse(&format!("sha256:{hex}")).ok())
            else {
                continue;
            };
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((digest, size));
        }
        out.sort();
        Ok(out)
    }

    /// Removes the stored layers that no image lists; returns their digests.
    pub fn remove_unused_layers(&self) -> Result<Vec<Digest>, StoreError> {
        let _layers = self.layers_lock(LockKind::Exclusive)?;
        let used: BTreeSet<String> = self
            .list()?
            .into_iter()
            .filter_map(|i| i.record.oci)
            .flat_map(|o| o.layers)
            .collect();
        let mut removed = Vec::new();
        for (digest, _) in self.layers()? {
            if !used.contains(digest.as_str()) {
                let path = self.layer_path(&digest);
                fs::remove_file(&path).ctx("removing", &path)?;
                removed.push(digest);
            }
        }
        if !removed.is_empty() {
            sync_dir(&self.layers_dir())?;
        }
        Ok(removed)
    }
}

/// Where a layer download goes inside an import's staging directory.
fn partial_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join(format!("layer-{}", digest.hex()))
}

/// A failure to start a download, kept as the transfer's error.
fn store_to_oci(e: StoreError) -> oci::OciError {
    match e {
        StoreError::Oci(e) => e,
        other => oci::OciError::invalid("a layer download", other),
    }
}
