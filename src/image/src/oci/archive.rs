//! Local image sources: OCI image layout directories, `oci-archive:` (a tar of a layout) and
//! `docker-archive:` (`docker save` output). Archives are unpacked into a scratch directory
//! first, keeping only plain files with names from a strict alphabet, so nothing in them can
//! name a path outside it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::spec::{self, DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, MAX_DOCUMENT_BYTES};
use super::{
    Descriptor, Digest, Document, ImageSource, Index, Manifest, OciError, ResolvedImage,
    read_document,
};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/<hex>`).
pub struct LayoutDir {
    dir: PathBuf,
    tag: Option<String>,
    source: String,
    name: String,
}

impl LayoutDir {
    pub fn new(dir: PathBuf, tag: Option<String>, source: String) -> Result<LayoutDir, OciError> {
        let marker = dir.join("oci-layout");
        let bytes = read_small(&marker)?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Marker {
            image_layout_version: String,
        }
        let marker_doc: Marker = serde_json::from_slice(&bytes)
            .map_err(|e| OciError::invalid(marker.display().to_string(), e))?;
        if !marker_doc.image_layout_version.starts_with("1.") {
            return Err(OciError::invalid(
                marker.display().to_string(),
                format!(
                    "image layout version {} is not supported (1.x is)",
                    marker_doc.image_layout_version
                ),
            ));
        }
        let mut layout = LayoutDir {
            name: String::new(),
            dir,
            tag,
            source,
        };
        let dir = layout.dir.clone();
        layout.set_name_from(&dir);
        Ok(layout)
    }

    /// Names the image after a file or directory (`/tmp/web.tar` → `web`).
    pub fn set_name_from(&mut self, path: &Path) {
        let stem = path
            .canonicalize()
            .unwrap_or_else(|_| path.to_owned())
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.name = if stem.is_empty() {
            "oci-image".to_owned()
        } else {
            stem
        };
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs").join("sha256").join(digest.hex())
    }
}

impl ImageSource for LayoutDir {
    fn resolve(&mut self) -> Result<ResolvedImage, OciError> {
        let index_path = self.dir.join("index.json");
        let index_bytes = read_small(&index_path)?;
        let what = format!("{} index.json", self.source);
        let index: Index =
            serde_json::from_slice(&index_bytes).map_err(|e| OciError::invalid(&what, e))?;
        let top = match &self.tag {
            Some(tag) => index
                .manifests
                .iter()
                .find(|d| d.annotations.get(REF_NAME) == Some(tag))
                .ok_or_else(|| OciError::invalid(&what, format!("no image is tagged {tag:?}")))?,
            None if index.manifests.len() == 1 => &index.manifests[0],
            None if index.manifests.iter().all(|d| d.platform.is_none()) => {
                let tags: Vec<&str> = index
                    .manifests
                    .iter()
                    .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
                    .collect();
                return Err(OciError::invalid(
                    &what,
                    format!(
                        "it holds {} images; name one as PATH:TAG (tags: {})",
                        index.manifests.len(),
                        tags.join(", ")
                    ),
                ));
            }
            None => spec::choose_manifest(&index, &spec::host_platform(), &self.source)?,
        };
        let tag = self
            .tag
            .clone()
            .or_else(|| top.annotations.get(REF_NAME).cloned());
        let top = top.clone();
        let source = self.source.clone();
        let (manifest_bytes, manifest, manifest_digest) = descend_from(&top, &source, |d| {
            read_document(
                open(&self.blob_path(&d.digest))?,
                d,
                &format!("{source} blob {}", d.digest),
            )
        })?;
        Ok(ResolvedImage {
            source,
            name: self.name.clone(),
            tag,
            manifest_bytes,
            manifest_digest,
            manifest,
        })
    }

    fn open_blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + Send + 'static>, OciError> {
        Ok(Box::new(open(&self.blob_path(&desc.digest))?))
    }
}

/// Reads the manifest `desc` names, following (nested) indexes to the host's platform.
pub(crate) fn descend_from(
    desc: &Descriptor,
    image: &str,
    mut fetch: impl FnMut(&Descriptor) -> Result<Vec<u8>, OciError>,
) -> Result<(Vec<u8>, Manifest, Digest), OciError> {
    let mut desc = desc.clone();
    // Indexes may nest; a few levels are plenty, and the bound stops a loop.
    for _ in 0..4 {
        let bytes = fetch(&desc)?;
        let media = (!desc.media_type.is_empty()).then_some(desc.media_type.as_str());
        match Document::parse(
            &bytes,
            media,
            &format!("manifest {} of {image}", desc.digest),
        )? {
            Document::Manifest(m) => return Ok((bytes, m, desc.digest.clone())),
            Document::Index(index) => {
                desc = spec::choose_manifest(&index, &spec::host_platform(), image)?.clone();
            }
        }
    }
    Err(OciError::invalid(image, "indexes nested more than 4 deep"))
}

/// Unpacks an `oci-archive:` tarball into `scratch` (created here): only `oci-layout`,
/// `index.json` and `blobs/sha256/<hex>` regular files are kept.
pub fn unpack_oci_archive(archive: &Path, scratch: &Path) -> Result<(), OciError> {
    fs::create_dir_all(scratch.join("blobs").join("sha256"))
        .map_err(|e| OciError::io("creating", scratch, e))?;
    each_file(archive, |name, entry| {
        let keep = name == "oci-layout"
            || name == "index.json"
            || name
                .strip_prefix("blobs/sha256/")
                .is_some_and(|hex| Digest::parse(&format!("sha256:{hex}")).is_ok());
        if keep {
            copy_new(entry, &scratch.join(name))?;
        }
        Ok(())
    })
}

/// A `docker save` tarball: `manifest.json` lists each image's config and layer files.
pub struct DockerArchive {
    image: ResolvedImage,
    blobs: BTreeMap<Digest, PathBuf>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl DockerArchive {
    /// Unpacks `archive` into `scratch` and describes its first image with a Docker schema 2
    /// manifest made here (the archive has none), so it gets a stable image ID.
    pub fn open(archive: &Path, scratch: &Path, source: String) -> Result<DockerArchive, OciError> {
        fs::create_dir_all(scratch).map_err(|e| OciError::io("creating", scratch, e))?;
        let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut links: BTreeMap<String, String> = BTreeMap::new();
        let mut count = 0u32;
        let input = File::open(archive).map_err(|e| OciError::io("opening", archive, e))?;
        let mut tar = tar::Archive::new(input);
        let bad = |e: io::Error| OciError::invalid(&source, format!("corrupt tar archive: {e}"));
        for entry in tar.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let Some(name) = clean_name(&entry.path_bytes()) else {
                continue;
            };
            match entry.header().entry_type() {
                t if t.is_file() => {
                    count += 1;
                    let path = scratch.join(format!("f{count}"));
                    copy_new(&mut entry, &path)?;
                    files.insert(name, path);
                }
                // Old `docker save` links repeated layers to the first copy (`../<id>/layer.tar`).
                t if t.is_symlink() => {
                    let target = entry.link_name_bytes().unwrap_or_default();
                    let parent = name.rsplit_once('/').map_or("", |(p, _)| p);
                    let joined = format!("{parent}/{}", String::from_utf8_lossy(&target));
                    if let Some(resolved) = resolve_lexically(&joined) {
                        links.insert(name, resolved);
                    }
                }
                _ => {}
            }
        }
        let lookup = |name: &str| -> Option<PathBuf> {
            let name = clean_name(name.as_bytes())?;
            let mut name = name;
            for _ in 0..8 {
                if let Some(path) = files.get(&name) {
                    return Some(path.clone());
                }
                name = links.get(&name)?.clone();
            }
            None
        };
        let missing =
            |what: &str| OciError::invalid(&source, format!("{what} is missing from the archive"));
        let manifest_json = lookup("manifest.json").ok_or_else(|| missing("manifest.json"))?;
        let entries: Vec<SaveEntry> = serde_json::from_slice(&read_small(&manifest_json)?)
            .map_err(|e| OciError::invalid(format!("{source} manifest.json"), e))?;
        let entry = entries
            .into_iter()
            .next()
            .ok_or_else(|| OciError::invalid(&source, "manifest.json lists no image"))?;

        let mut blobs = BTreeMap::new();
        let mut describe = |name: &str, media_type: Option<&str>| -> Result<Descriptor, OciError> {
            let path = lookup(name).ok_or_else(|| missing(name))?;
            let (digest, size, gzip) = hash_file(&path)?;
            blobs.insert(digest.clone(), path);
            Ok(Descriptor {
                media_type: media_type
                    .unwrap_or(if gzip {
                        DOCKER_LAYER_GZIP
                    } else {
                        spec::OCI_LAYER
                    })
                    .to_owned(),
                digest,
                size,
                platform: None,
                annotations: BTreeMap::new(),
            })
        };
        let config_desc = describe(&entry.config, Some(DOCKER_CONFIG))?;
        let layers = entry
            .layers
            .iter()
            .map(|l| describe(l, None))
            .collect::<Result<Vec<_>, _>>()?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST.to_owned()),
            config: config_desc,
            layers,
            annotations: BTreeMap::new(),
        };
        let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
        let (name, tag) = match entry.repo_tags.as_deref().and_then(|t| t.first()) {
            Some(repo_tag) => match repo_tag.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => (repo.to_owned(), Some(tag.to_owned())),
                _ => (repo_tag.clone(), None),
            },
            None => (
                archive
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "docker-image".to_owned()),
                None,
            ),
        };
        Ok(DockerArchive {
            image: ResolvedImage {
                source,
                name,
                tag,
                manifest_digest: Digest::of(&manifest_bytes),
                manifest_bytes,
                manifest,
            },
            blobs,
        })
    }
}

impl ImageSource for DockerArchive {
    fn resolve(&mut self) -> Result<ResolvedImage, OciError> {
        Ok(self.image.clone())
    }

    fn open_blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + Send + 'static>, OciError> {
        let path = self.blobs.get(&desc.digest).ok_or_else(|| {
            OciError::invalid(&self.image.source, format!("no blob {}", desc.digest))
        })?;
        Ok(Box::new(open(path)?))
    }
}

/// Calls `f` with the cleaned name of every regular file of a tar archive.
fn each_file(
    archive: &Path,
    mut f: impl FnMut(&str, &mut dyn Read) -> Result<(), OciError>,
) -> Result<(), OciError> {
    let input = File::open(archive).map_err(|e| OciError::io("opening", archive, e))?;
    let mut tar = tar::Archive::new(BufReader::new(input));
    let what = archive.display().to_string();
    let bad = |e: io::Error| OciError::invalid(&what, format!("corrupt tar archive: {e}"));
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        if let Some(name) = clean_name(&entry.path_bytes()) {
            f(&name, &mut entry)?;
        }
    }
    Ok(())
}

/// `./a//b` → `a/b`, if every component is made of letters, digits and `._:-` and none is
/// `..`; anything else is not a name these archives use, and is skipped.
fn clean_name(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let parts: Vec<&str> = text
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let ok = !parts.is_empty()
        && !text.starts_with('/')
        && parts.len() <= 4
        && parts.iter().all(|p| {
            *p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        });
    ok.then(|| parts.join("/"))
}

/// Resolves `..` in a relative path without leaving its top; `None` if it would.
fn resolve_lexically(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            p => out.push(p),
        }
    }
    clean_name(out.join("/").as_bytes())
}

fn copy_new(input: &mut dyn Read, path: &Path) -> Result<(), OciError> {
    let mut out = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| OciError::io("creating", path, e))?;
    io::copy(input, &mut out).map_err(|e| OciError::io("writing", path, e))?;
    Ok(())
}

fn open(path: &Path) -> Result<File, OciError> {
    File::open(path).map_err(|e| OciError::io("opening", path, e))
}

fn read_small(path: &Path) -> Result<Vec<u8>, OciError> {
    let mut bytes = Vec::new();
    open(path)?
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| OciError::io("reading", path, e))?;
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(OciError::invalid(
            path.display().to_string(),
            "larger than 4 MiB",
        ));
    }
    Ok(bytes)
}

/// Digest, size, and whether it is gzip-compressed.
fn hash_file(path: &Path) -> Result<(Digest, u64, bool), OciError> {
    use sha2::{Digest as _, Sha256};
    let mut reader = BufReader::new(open(path)?);
    let gzip = reader
        .fill_buf()
        .map_err(|e| OciError::io("reading", path, e))?
        .starts_with(&[0x1f, 0x8b]);
    let mut hasher = Sha256::new();
    let size = io::copy(&mut reader, &mut hasher).map_err(|e| OciError::io("reading", path, e))?;
    let digest = Digest::parse(&format!("sha256:{}", hex::encode(hasher.finalize())))
        .expect("a fresh digest is valid");
    Ok((digest, size, gzip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_stay_inside() {
        assert_eq!(
            clean_name(b"./blobs//sha256/ab").as_deref(),
            Some("blobs/sha256/ab")
        );
        assert_eq!(clean_name(b"../x"), None);
        assert_eq!(clean_name(b"/etc/passwd"), None);
        assert_eq!(clean_name(b"a b"), None);
        assert_eq!(
            resolve_lexically("abc/../def/layer.tar").as_deref(),
            Some("def/layer.tar")
        );
        assert_eq!(resolve_lexically("abc/../../etc/passwd"), None);
    }
}
