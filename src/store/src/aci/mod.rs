//! Reading ACI archives: format detection, layout checks and safe extraction.
//!
//! An ACI is a tar archive (maybe gzip-, bzip2- or xz-compressed) holding exactly a `manifest`
//! file and a `rootfs/` directory. [`import`] streams one into a directory while hashing the
//! decompressed tar (the image ID), and never writes outside that directory's `rootfs`.

mod compression;
mod error;
mod extract;
mod import;
mod layout;
mod limit;
mod manifest;
mod write;

pub use compression::{Compression, decoder};
pub use error::AciError;
pub use extract::{ExtractStats, Extractor};
pub(crate) use import::ChunkReader;
pub use import::{Imported, hash_stream, import, unpack};
pub use layout::{EntryPlace, classify_entry_name};
pub use limit::{
    BoundReason, Budget, DEFAULT_MAX_IMAGE_SIZE, ImageSizeLimit, MAX_RATIO, RATIO_FLOOR, SizeBound,
    human_size,
};
pub use manifest::read_manifest;
pub use write::write_aci;

/// The largest manifest accepted: far above any real one, low enough that a hostile archive
/// cannot make us hold gigabytes in memory.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
