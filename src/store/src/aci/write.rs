//! Writing an ACI of a directory tree (`rkt export`): a gzip'ed tar of `manifest` and the
//! tree under `rootfs/`, owners, modes and times kept, symlinks stored as links.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::Path;

use crate::error::{IoContext, StoreError};

/// Writes `manifest` and the tree at `tree` as the ACI `out` (refused if it exists, unless
/// `overwrite`). The file appears whole or not at all.
pub fn write_aci(
    manifest: &[u8],
    tree: &Path,
    out: &Path,
    overwrite: bool,
) -> Result<(), StoreError> {
    if !overwrite && out.exists() {
        return Err(StoreError::DestinationExists(out.to_owned()));
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = out.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let written = write_to(manifest, tree, &partial);
    match written {
        Ok(()) => fs::rename(&partial, out)
            .ctx("writing", out)
            .map_err(Into::into),
        Err(e) => {
            let _ = fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn write_to(manifest: &[u8], tree: &Path, path: &Path) -> Result<(), StoreError> {
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .ctx("creating", path)?;
    let gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
    );
    header.set_cksum();
    tar.append_data(&mut header, "manifest", manifest)
        .ctx("writing", path)?;
    tar.append_dir_all("rootfs", tree).ctx("reading", tree)?;
    let gz = tar.into_inner().ctx("writing", path)?;
    let file = gz.finish().ctx("writing", path)?;
    let file = file
        .into_inner()
        .map_err(|e| e.into_error())
        .ctx("writing", path)?;
    file.sync_all().ctx("writing", path).map_err(Into::into)
}
