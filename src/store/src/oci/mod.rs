//! The OCI image format as the store keeps it: the image-spec documents, digests checked while
//! blobs stream in, layers applied with their whiteouts, the appc manifest made from an
//! image's config, and [`ImageSource`], the one thing the store asks of wherever an image
//! comes from (a registry, a layout, an archive: see the `rkt-image` crate).

mod convert;
mod digest;
mod error;
mod layer;
pub mod spec;
mod transfer;

use std::io::Read;

pub use convert::appc_manifest;
pub use digest::{Digest, VerifyingReader};
pub use error::OciError;
pub use layer::{Decoding, apply_layer, apply_layer_checked};
pub use spec::{
    ContainerConfig, Descriptor, Document, ImageConfig, Index, Manifest, Platform, appc_arch,
    choose_manifest, host_platform, oci_arch,
};
pub use transfer::{Transfer, is_timeout, read_error};

/// An image resolved at its source: manifest and config, both checked against their digests.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// Where it came from, as the user would write it (`docker://…`, `oci-archive:…`).
    pub source: String,
    /// What the appc name is made from (`127.0.0.1:5000/app`, a file's stem).
    pub name: String,
    /// The tag, which becomes the `version` label.
    pub tag: Option<String>,
    /// The image manifest exactly as the source held it: the store's image ID hashes it.
    pub manifest_bytes: Vec<u8>,
    pub manifest_digest: Digest,
    pub manifest: Manifest,
}

impl ResolvedImage {
    /// Reads the image's config from `src`, checked against its digest. Kept apart from
    /// [`ImageSource::resolve`] so that an image already stored costs one manifest request.
    pub fn read_config(
        &self,
        src: &mut dyn ImageSource,
    ) -> Result<(Vec<u8>, ImageConfig), OciError> {
        let what = format!("the config of {}", self.source);
        let blob = src.open_blob(&self.manifest.config)?;
        let bytes = read_document(blob, &self.manifest.config, &what)?;
        let config = ImageConfig::parse(&bytes, &what)?;
        Ok((bytes, config))
    }
}

/// Somewhere an OCI image can be read from. `Send`: blobs are requested from a thread of
/// their own while layers are applied.
pub trait ImageSource: Send {
    /// Finds the image (resolving an index to the host's platform) and reads its manifest.
    fn resolve(&mut self) -> Result<ResolvedImage, OciError>;
    /// Opens a blob named by `desc`. The bytes are not checked yet: the caller reads them
    /// through a [`VerifyingReader`].
    fn open_blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + Send + 'static>, OciError>;
    /// Why the image may be stored, decided while it was resolved (signatures checked, a
    /// policy applied), to be kept with it; `None` records nothing.
    fn admission(&mut self) -> Option<crate::Admission> {
        None
    }
}

/// Reads a small JSON document (manifest, index, config) through a digest check.
pub fn read_document(input: impl Read, desc: &Descriptor, what: &str) -> Result<Vec<u8>, OciError> {
    if desc.size > spec::MAX_DOCUMENT_BYTES {
        return Err(OciError::invalid(
            what,
            format!("{} bytes is larger than the 4 MiB allowed", desc.size),
        ));
    }
    let mut reader = VerifyingReader::new(input, desc.size);
    let mut bytes = Vec::with_capacity(desc.size as usize);
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| read_error(what, &e))?;
    reader.finish(&desc.digest, desc.size, what)?;
    Ok(bytes)
}
