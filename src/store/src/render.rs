//! What an app's root filesystem is made of: an image and its appc dependencies, in the order
//! the appc reference renderer (`acirenderer`) uses, filtered by path whitelists.
//!
//! The list is the image first, then a depth-first walk of its dependencies where a later
//! dependency (and its own dependencies) sits above an earlier one: for A with dependencies
//! (B, C) and C with (D), the list is A, C, D, B. A path comes from the first image in the
//! list that has it. An image's `pathWhitelist` keeps only the listed non-directory files of
//! that image, and the nearest ancestor's whitelist filters everything below it.
//!
//! Without whitelists this is exactly an overlay with those trees as lower directories, top
//! first, so a pod pays nothing for dependencies; with one, the tree is rendered as a copy.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha512};

use super::error::IoContext;
use super::{Store, StoreError};
use crate::aci::{self, EntryPlace, Extractor};
use rkt_schema::{ImageId, ImageManifest};

/// How deep dependencies may nest, and how many images one root may be made of: generous for
/// real images, and a bound on a loop of dependencies.
const MAX_DEPTH: u16 = 32;
const MAX_IMAGES: usize = 128;

/// One image of a dependency list.
#[derive(Debug, Clone)]
pub struct LayeredImage {
    pub id: ImageId,
    /// 0 for the image itself, 1 for its dependencies, and so on.
    pub level: u16,
    pub manifest: ImageManifest,
}

impl Store {
    /// The image and its dependencies, top first (see the module documentation). Every
    /// dependency must be in the store: by its `imageID` if the manifest gives one, else the
    /// newest stored image with its name and labels.
    pub fn dependency_list(&self, id: &ImageId) -> Result<Vec<LayeredImage>, StoreError> {
        let top = self.manifest(id)?;
        let mut stack = vec![LayeredImage {
            id: id.clone(),
            level: 0,
            manifest: top.clone(),
        }];
        let mut list = Vec::new();
        while let Some(image) = stack.pop() {
            if image.level > MAX_DEPTH || list.len() >= MAX_IMAGES {
                return Err(StoreError::DependencyLoop {
                    name: top.name.to_string(),
                });
            }
            for dep in &image.manifest.dependencies {
                let labels: BTreeMap<String, String> = dep
                    .labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.clone()))
                    .collect();
                let found = match &dep.image_id {
                    // A 64-digit ID (as the original wrote them) is a prefix of the full one.
                    Some(dep_id) => self.resolve(dep_id.as_str()).ok(),
                    None => self.find_by_name(dep.image_name.as_str(), &labels)?,
                };
                let Some(found) = found else {
                    let wanted = std::iter::once(dep.image_name.to_string())
                        .chain(labels.iter().map(|(k, v)| format!("{k}={v}")))
                        .collect::<Vec<_>>()
                        .join(",");
                    return Err(StoreError::MissingDependency {
                        name: image.manifest.name.to_string(),
                        dependency: wanted,
                    });
                };
                stack.push(LayeredImage {
                    manifest: self.manifest(&found.id)?,
                    id: found.id,
                    level: image.level + 1,
                });
            }
            list.push(image);
        }
        Ok(list)
    }

    /// The lower directories of an overlay that shows the image with its dependencies (top
    /// first), or `None` when a path whitelist filters them and the tree must be rendered
    /// with [`Store::render`] instead. Trees not rendered yet are rendered now (see
    /// [`Store::rootfs`]).
    pub fn rootfs_layers(&self, id: &ImageId) -> Result<Option<Vec<PathBuf>>, StoreError> {
        let list = self.dependency_list(id)?;
        if list.iter().any(|i| !i.manifest.path_whitelist.is_empty()) {
            return Ok(None);
        }
        // An OCI image's tree is rendered here at its first use.
        let layers: Result<Vec<PathBuf>, StoreError> =
            list.iter().map(|i| self.rootfs(&i.id)).collect();
        layers.map(Some)
    }

    /// Renders an image with dependencies into `dest` (an empty directory): each ACI is read
    /// again from its kept blob, checked against its ID, and only the entries the rules above
    /// give it are unpacked, with the importer's checks.
    pub(super) fn render_layered(
        &self,
        list: &[LayeredImage],
        dest: &Path,
    ) -> Result<(), StoreError> {
        let mut taken: HashSet<Vec<u8>> = HashSet::new();
        for (pos, image) in list.iter().enumerate() {
            if self.info(&image.id)?.record.oci.is_some() {
                return Err(StoreError::Refused(format!(
                    "image {} depends on the OCI image {}, which path whitelists cannot filter",
                    list[0].manifest.name, image.manifest.name
                )));
            }
            let own = whitelist(&image.manifest);
            let inherited = inherited_whitelist(list, pos);
            let blob = self.image_dir(&image.id).join("blob");
            let input = File::open(&blob).ctx("opening", &blob)?;
            let (_, stream) = aci::decoder(input)?;
            let mut hashing = HashingReader {
                inner: stream,
                hasher: Sha512::new(),
            };
            let mut extractor = Extractor::new(dest)?;
            {
                let mut archive = tar::Archive::new(&mut hashing);
                for entry in archive.entries().map_err(aci::AciError::Tar)? {
                    let mut entry = entry.map_err(aci::AciError::Tar)?;
                    let name = entry.path_bytes().into_owned();
                    let keep = match aci::classify_entry_name(&name)? {
                        EntryPlace::Manifest => true,
                        EntryPlace::RootfsDir => pos == 0,
                        EntryPlace::InRootfs(path) => {
                            let is_dir = entry.header().entry_type() == tar::EntryType::Directory;
                            let allowed = (is_dir
                                || own.as_ref().is_none_or(|w| w.contains(&path)))
                                && inherited.as_ref().is_none_or(|w| w.contains(&path));
                            allowed && taken.insert(path)
                        }
                    };
                    if keep {
                        extractor.entry(&mut entry)?;
                    }
                }
            }
            io::copy(&mut hashing, &mut io::sink()).ctx("reading", &blob)?;
            let digest: [u8; 64] = hashing.hasher.finalize().into();
            let actual = ImageId::from_sha512_digest(&digest);
            if actual != image.id {
                return Err(StoreError::Tampered {
                    id: image.id.to_string(),
                    actual: actual.to_string(),
                });
            }
            extractor.finish()?;
        }
        Ok(())
    }
}

/// An image's own whitelist as paths relative to its root, or `None` if it has none.
fn whitelist(manifest: &ImageManifest) -> Option<HashSet<Vec<u8>>> {
    if manifest.path_whitelist.is_empty() {
        return None;
    }
    Some(
        manifest
            .path_whitelist
            .iter()
            .map(|p| {
                p.trim_start_matches('/')
                    .trim_end_matches('/')
                    .as_bytes()
                    .to_vec()
            })
            .collect(),
    )
}

/// The whitelist that filters the image at `pos` from above: that of the top-most ancestor on
/// its branch that has one (as acirenderer's getUpperPWLM).
fn inherited_whitelist(list: &[LayeredImage], pos: usize) -> Option<HashSet<Vec<u8>>> {
    let mut found = None;
    let mut level = list[pos].level;
    for image in list[..=pos].iter().rev() {
        if image.level < level {
            if let Some(w) = whitelist(&image.manifest) {
                found = Some(w);
            }
            level = image.level;
        }
    }
    found
}

/// Hashes what it reads: the ID of an ACI is the SHA-512 of its decompressed tar.
struct HashingReader<R> {
    inner: R,
    hasher: Sha512,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
