//! `rkt fetch`: import image files into the store.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result, bail};
use rkt::insecure::Insecure;
use rkt::schema::ImageId;
use rkt::store::Store;

use crate::cli::{FetchArgs, GlobalArgs};
use crate::progress::Progress;

pub fn run(global: &GlobalArgs, args: &FetchArgs) -> Result<()> {
    for image in &args.images {
        check_fetchable(global, image)?;
    }
    let store = Store::open(&global.dir)?;
    for image in &args.images {
        println!("{}", fetch_file(&store, image)?);
    }
    Ok(())
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
    let path = Path::new(arg);
    if path.is_file() {
        check_fetchable(global, path)?;
        return fetch_file(store, path);
    }
    Ok(store.resolve(arg)?.id)
}
