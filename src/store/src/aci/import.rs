//! The import pipeline: read → decompress → (hash ∥ unpack), on three threads.
//!
//! SHA-512 (~370 MB/s here) is slower than decompressing gzip, so hashing runs on its own
//! thread, fed the same decompressed chunks as the unpacker; on two cores the stages overlap.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use sha2::{Digest, Sha512};

use super::AciError;
use super::compression::{Compression, decoder};
use super::extract::{ExtractStats, Extractor};
use super::limit::SizeBound;
use rkt_schema::{ImageId, ImageManifest};

/// Size of the chunks handed between threads: large enough to keep channel traffic low, small
/// enough to stay in cache.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight per channel.
const DEPTH: usize = 8;

/// An ACI unpacked into a directory.
#[derive(Debug)]
pub struct Imported {
    /// `sha512-` + hex SHA-512 of the decompressed tar stream.
    pub id: ImageId,
    pub manifest: ImageManifest,
    /// The manifest exactly as the archive held it.
    pub manifest_bytes: Vec<u8>,
    pub compression: Compression,
    /// Bytes of the decompressed tar stream.
    pub tar_bytes: u64,
    pub stats: ExtractStats,
}

/// Imports the ACI read from `input` into `rootfs` (an existing, empty directory), checking its
/// layout and manifest, and copies the archive's bytes as read into `copy` when one is given
/// (the store keeps the ACI as fetched so that `image export` gives back the same bytes).
/// Decompression stops, and the import fails, once the tar stream passes `bound`.
pub fn import<R: Read + Send + 'static>(
    input: R,
    rootfs: &Path,
    copy: Option<File>,
    bound: Option<SizeBound>,
) -> Result<Imported, AciError> {
    let mut extractor = Extractor::new(rootfs)?;
    let input = Tee { inner: input, copy };
    let (compression, stream) = decoder(input)?;

    let (hash_tx, hash_rx) = sync_channel::<Arc<Vec<u8>>>(DEPTH);
    let (tar_tx, tar_rx) = sync_channel::<Arc<Vec<u8>>>(DEPTH);
    thread::scope(|scope| {
        let producer = scope.spawn(move || produce(stream, hash_tx, tar_tx, bound));
        let hasher = scope.spawn(move || hash(hash_rx));

        let mut reader = ChunkReader::new(tar_rx);
        let mut archive = tar::Archive::new(&mut reader);
        let unpacked = extractor.unpack_all(&mut archive).and_then(|()| {
            // The image ID covers the whole stream, padding after the end blocks included.
            io::copy(&mut reader, &mut io::sink()).map_err(AciError::Tar)?;
            Ok(())
        });
        // On an unpack error the reader is dropped here, which stops the producer.
        drop(reader);
        let produced = producer.join().expect("decompressor thread panicked");
        let (digest, tar_bytes) = hasher.join().expect("hasher thread panicked");
        // A decompression error (or the bound) explains a tar error that follows from it, so
        // it comes first.
        produced.map_err(|e| match e {
            Produce::Read(error) => AciError::Decompress {
                compression: compression.name(),
                error,
            },
            Produce::TooLarge(bound) => AciError::TooLarge(bound),
        })?;
        unpacked?;
        let (manifest_bytes, stats) = extractor.finish()?;
        let manifest = ImageManifest::from_json(&manifest_bytes)?;
        if manifest.ac_version.is_newer_major() {
            tracing::warn!(
                "image {} is written for appc spec {}, newer than {}: reading it as {}",
                manifest.name,
                manifest.ac_version,
                rkt_schema::APPC_SPEC_VERSION,
                rkt_schema::APPC_SPEC_VERSION
            );
        }
        Ok(Imported {
            id: ImageId::from_sha512_digest(&digest),
            manifest,
            manifest_bytes,
            compression,
            tar_bytes,
            stats,
        })
    })
}

/// Unpacks an ACI into `rootfs` without keeping anything else; used to extract a stored image
/// again (`rkt image extract`), with the same safety rules as an import.
pub fn unpack<R: Read + Send + 'static>(input: R, rootfs: &Path) -> Result<Imported, AciError> {
    import(input, rootfs, None, None)
}

/// The image ID of a decompressed tar stream.
pub fn hash_stream(stream: &mut dyn Read) -> io::Result<ImageId> {
    let mut hasher = Sha512::new();
    io::copy(stream, &mut hasher)?;
    Ok(ImageId::from_sha512_digest(&hasher.finalize().into()))
}

/// Why the decompressing thread stopped early.
enum Produce {
    Read(io::Error),
    TooLarge(SizeBound),
}

/// Reads the decompressed stream and hands each chunk to the hasher and the unpacker. Stops
/// quietly when the unpacker hangs up (it failed, and says why itself), and before handing
/// on a chunk that takes the stream past `bound`.
fn produce(
    mut stream: Box<dyn Read + Send>,
    hash_tx: SyncSender<Arc<Vec<u8>>>,
    tar_tx: SyncSender<Arc<Vec<u8>>>,
    bound: Option<SizeBound>,
) -> Result<(), Produce> {
    let mut total = 0u64;
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match stream.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Produce::Read(e)),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        total += filled as u64;
        if let Some(bound) = bound.filter(|b| total > b.bytes) {
            return Err(Produce::TooLarge(bound));
        }
        chunk.truncate(filled);
        let chunk = Arc::new(chunk);
        if hash_tx.send(chunk.clone()).is_err() || tar_tx.send(chunk).is_err() {
            return Ok(());
        }
        if filled < CHUNK {
            return Ok(());
        }
    }
}

fn hash(chunks: Receiver<Arc<Vec<u8>>>) -> ([u8; 64], u64) {
    let mut hasher = Sha512::new();
    let mut total = 0u64;
    for chunk in chunks {
        hasher.update(chunk.as_slice());
        total += chunk.len() as u64;
    }
    (hasher.finalize().into(), total)
}

/// A `Read` over the chunks coming from a producer thread (shared by the ACI and OCI layer
/// pipelines); the end of the channel is the end of the stream.
pub(crate) struct ChunkReader<C> {
    chunks: Receiver<C>,
    current: C,
    pos: usize,
}

/// A chunk of a stream: owned, or shared between consumer threads.
pub(crate) trait Chunk: Default {
    fn bytes(&self) -> &[u8];
}

impl Chunk for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl Chunk for Arc<Vec<u8>> {
    fn bytes(&self) -> &[u8] {
        self.as_slice()
    }
}

impl<C: Chunk> ChunkReader<C> {
    pub(crate) fn new(chunks: Receiver<C>) -> Self {
        ChunkReader {
            chunks,
            current: C::default(),
            pos: 0,
        }
    }
}

impl<C: Chunk> Read for ChunkReader<C> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.bytes().len() {
            match self.chunks.recv() {
                Ok(chunk) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let current = self.current.bytes();
        let n = buf.len().min(current.len() - self.pos);
        buf[..n].copy_from_slice(&current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Copies what is read from `inner` into `copy`.
struct Tee<R> {
    inner: R,
    copy: Option<File>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(copy) = &mut self.copy {
            copy.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}
