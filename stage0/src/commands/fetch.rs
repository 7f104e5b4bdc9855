//! `rkt fetch`: import image files into the store.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result, bail};
use rkt::http::HttpPolicy;
use rkt::insecure::Insecure;
use rkt::oci::OciSource;
use rkt::schema::ImageId;
use rkt::store::Store;

use crate::cli::{FetchArgs, GlobalArgs};
use crate::progress::Progress;

pub fn run(global: &GlobalArgs, args: &FetchArgs) -> Result<()> {
    let mut oci_sources = Vec::new();
    for image in &args.images {
        let source = match image.to_str().and_then(OciSource::parse) {
            Some(parsed) => Some(parsed?),
            None => {
                check_fetchable(global, image)?;
                None
            }
        };
        oci_sources.push(source);
    }
    let store = Store::open(&global.dir)?;
    for (image, source) in args.images.iter().zip(&oci_sources) {
        let id = match source {
            Some(source) => fetch_oci(global, &store, source)?,
            None => fetch_file(&store, image)?,
        };
        println!("{id}");
    }
    Ok(())
}

/// Fetches an OCI/Docker image. Its blobs are checked against the digests of its manifest,
/// which is what `--insecure-options=image` would otherwise waive; signatures do not apply.
pub fn fetch_oci(global: &GlobalArgs, store: &Store, source: &OciSource) -> Result<ImageId> {
    let policy = HttpPolicy {
        allow_http: global.insecure_options.allows(Insecure::Http),
        skip_tls_verify: global.insecure_options.allows(Insecure::Tls),
    };
    let outcome = store
        .import_oci(source, policy)
        .with_context(|| format!("fetching {source}"))?;
    tracing::debug!(
        "{} {} ({}), {} layers fetched",
        if outcome.newly_stored {
            "stored"
        } else {
            "already had"
        },
        outcome.info.record.name,
        outcome.info.id,
        outcome.layers_fetched
    );
    Ok(outcome.info.id)
}

/// Refuses what cannot be fetched before anything is written.
pub fn check_fetchable(global: &GlobalArgs, image: &Path) -> Result<()> {
    if !image.is_file() {
        bail!("{}: no such image file", image.display());
    }
    // Signature checks come with image trust; until then nothing local can be verified, and
    // rkt never uses an unverified image unless told to.
    if !global.insecure_options.allows(Insecure::Image) {
        bail!(
            "cannot verify {}: signature verification is not available yet; pass \
             --insecure-options=image to fetch it without verification",
            image.display()
        );
    }
    Ok(())
}

/// Imports one ACI file (checked with [`check_fetchable`]), with progress on a terminal.
pub fn fetch_file(store: &Store, image: &Path) -> Result<ImageId> {
    let read = Arc::new(AtomicU64::new(0));
    let total = std::fs::metadata(image).map(|m| m.len()).unwrap_or(0);
    let progress = Progress::start(
        format!("importing {}", image.display()),
        read.clone(),
        total,
    );
    let outcome = store.import_file_with_progress(image, read);
    drop(progress);
    let outcome = outcome.with_context(|| format!("fetching {}", image.display()))?;
    tracing::debug!(
        "{} {} ({})",
        if outcome.newly_stored {
            "stored"
        } else {
            "already had"
        },
        outcome.info.record.name,
        outcome.info.id
    );
    Ok(outcome.info.id)
}

/// An image argument of `prepare`/`run`: a stored image by ID or name[:version], or a file
/// (which is fetched first). Names win over files only when no such file exists.
pub fn resolve_image(global: &GlobalArgs, store: &Store, arg: &str) -> Result<ImageId> {
    if let Some(source) = OciSource::parse(arg) {
        return fetch_oci(global, store, &source?);
    }
    let path = Path::new(arg);
    if path.is_file() {
        check_fetchable(global, path)?;
        return fetch_file(store, path);
    }
    Ok(store.resolve(arg)?.id)
}
