//! Applying one layer blob (gzip- or zstd-compressed, or plain tar) onto a root filesystem.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{self, Scope, ScopedJoinHandle};

use flate2::bufread::MultiGzDecoder;

use super::{Descriptor, Digest, OciError, VerifyingReader};
use crate::aci::{AciError, Budget, ChunkReader, Extractor};

/// Chunks handed from the reading thread to the unpacking one, and how many may wait.
const CHUNK: usize = 256 * 1024;
const DEPTH: usize = 16;

/// Applies the layer `desc` names, reading its blob from `blob` on another thread that also
/// checks its size and digest and, when `copy` is given, writes the bytes there (the store
/// keeps the blob). Reading (network, SHA-256) and unpacking (gunzip, files) overlap, which on
/// two cores makes a registry fetch about as fast as the download alone.
///
/// A blob that does not match its digest is reported as such, even when unpacking failed
/// first (the mismatch is the cause).
pub fn apply_layer_checked(
    extractor: &mut Extractor,
    blob: Box<dyn Read + Send>,
    desc: &Descriptor,
    copy: Option<&File>,
    what: &str,
) -> Result<u64, OciError> {
    thread::scope(|scope| {
        Decoding::start(scope, blob, desc, copy, what, DEPTH, None).apply(extractor)
    })
}

/// A layer blob being read and decompressed on two threads of its own, ahead of being
/// unpacked: several can run at once, so the next layer inflates on the other core while
/// this one's files are written.
pub struct Decoding<'scope> {
    tar: Receiver<Vec<u8>>,
    reader: ScopedJoinHandle<'scope, Result<(), OciError>>,
    inflater: ScopedJoinHandle<'scope, Result<(), (&'static str, io::Error)>>,
    digest: Digest,
}

impl<'scope> Decoding<'scope> {
    /// Starts reading `blob` (checked against `desc`, and copied into `copy` if given) and
    /// decompressing it; up to `depth` chunks of 256 KiB of its tar wait for [`Decoding::apply`].
    /// Decompression stops once the tar passes what `budget` has left (the budget says so
    /// afterwards: [`Budget::exceeded`]).
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        blob: Box<dyn Read + Send + 'env>,
        desc: &'env Descriptor,
        copy: Option<&'env File>,
        what: &'env str,
        depth: usize,
        budget: Option<&'env Budget>,
    ) -> Decoding<'scope> {
        let (tx, rx) = sync_channel::<Vec<u8>>(DEPTH);
        let reader = scope.spawn(move || -> Result<(), OciError> {
            let mut verified = VerifyingReader::new(blob, desc.size);
            forward(&mut verified, tx, copy, what)?;
            verified.finish(&desc.digest, desc.size, what)
        });
        let (plain_tx, plain_rx) = sync_channel::<Vec<u8>>(depth);
        let inflater = scope.spawn(move || -> Result<(), (&'static str, io::Error)> {
            let mut compressed = BufReader::with_capacity(CHUNK, ChunkReader::new(rx));
            let head = compressed.fill_buf().map_err(|e| ("tar", e))?;
            let compression = compression_of(head);
            let result = match compression {
                "gzip" => pump(&mut MultiGzDecoder::new(&mut compressed), &plain_tx, budget),
                "zstd" => zstd_frames(&mut compressed, &plain_tx, budget),
                _ => pump(&mut compressed, &plain_tx, budget),
            };
            drop(plain_tx);
            // Read the blob to its end so that the digest check covers every byte.
            let _ = io::copy(&mut compressed, &mut io::sink());
            result.map_err(|e| (compression, e))
        });
        Decoding {
            tar: plain_rx,
            reader,
            inflater,
            digest: desc.digest.clone(),
        }
    }

    /// Unpacks the layer with `extractor`; returns the size of its tar. A blob that does not
    /// match its digest is reported as such, even when unpacking failed first (the mismatch
    /// is the cause), then bad compression, then what the tar said.
    pub fn apply(self, extractor: &mut Extractor) -> Result<u64, OciError> {
        let mut chunks = ChunkReader::new(self.tar);
        let applied = apply_tar(extractor, &mut chunks, &self.digest);
        let _ = io::copy(&mut chunks, &mut io::sink());
        drop(chunks);
        let inflated = self
            .inflater
            .join()
            .expect("layer inflater thread panicked");
        let verified = self.reader.join().expect("layer reader thread panicked");
        verified?;
        if let Err((compression, source)) = inflated {
            return Err(OciError::Layer {
                digest: self.digest.to_string(),
                error: AciError::Decompress {
                    compression,
                    error: source,
                },
            });
        }
        applied
    }
}

/// Decompresses one or more concatenated zstd frames (what `zstd` writes) into `out`.
fn zstd_frames(
    input: &mut impl BufRead,
    out: &SyncSender<Vec<u8>>,
    budget: Option<&Budget>,
) -> io::Result<()> {
    pump(
        &mut zstd::stream::read::Decoder::with_buffer(input)?,
        out,
        budget,
    )
}

/// Unpacks a tar stream with `extractor`; returns its size.
fn apply_tar(
    extractor: &mut Extractor,
    input: &mut dyn Read,
    digest: &Digest,
) -> Result<u64, OciError> {
    let mut counted = Counted { inner: input, n: 0 };
    let mut archive = tar::Archive::new(&mut counted);
    let applied = extractor.apply_layer(&mut archive);
    applied.map_err(|error| OciError::Layer {
        digest: digest.to_string(),
        error,
    })?;
    Ok(counted.n)
}

/// Sends `blob` to `tx` in chunks (and into `copy`); the channel closes when it returns.
fn forward(
    blob: &mut dyn Read,
    tx: SyncSender<Vec<u8>>,
    copy: Option<&File>,
    what: &str,
) -> Result<(), OciError> {
    loop {
        let chunk = read_chunk(blob).map_err(|e| super::read_error(what, &e))?;
        if chunk.is_empty() {
            return Ok(());
        }
        if let Some(mut file) = copy {
            file.write_all(&chunk).map_err(|e| OciError::Store {
                what: what.to_owned(),
                error: e,
            })?;
        }
        // The unpacker hung up only after reading everything it will read.
        let _ = tx.send(chunk);
    }
}

/// Copies `input` to `out` in chunks, until the end, until the receiver hangs up, or until a
/// chunk would take the stream past the budget.
fn pump(
    input: &mut dyn Read,
    out: &SyncSender<Vec<u8>>,
    budget: Option<&Budget>,
) -> io::Result<()> {
    loop {
        let chunk = read_chunk(input)?;
        if budget.is_some_and(|b| !b.take(chunk.len() as u64)) {
            return Err(io::Error::other("stopped: the image passed its size limit"));
        }
        if chunk.is_empty() || out.send(chunk).is_err() {
            return Ok(());
        }
    }
}

/// Up to [`CHUNK`] bytes (fewer only at the end), without zeroing a buffer first.
fn read_chunk(input: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut chunk = Vec::with_capacity(CHUNK);
    input.take(CHUNK as u64).read_to_end(&mut chunk)?;
    Ok(chunk)
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// A layer's compression, from its first bytes (the media type is not trusted for it).
fn compression_of(head: &[u8]) -> &'static str {
    if head.starts_with(GZIP_MAGIC) {
        "gzip"
    } else if head.starts_with(ZSTD_MAGIC) {
        "zstd"
    } else {
        "tar"
    }
}

/// Applies the layer read from `input` (its blob bytes, compressed as stored) with
/// `extractor` (made by [`Extractor::for_layers`]), and reads the blob to its end so that a
/// digest check on `input` covers every byte. Returns the size of the uncompressed tar.
pub fn apply_layer(
    extractor: &mut Extractor,
    input: &mut dyn Read,
    digest: &Digest,
) -> Result<u64, OciError> {
    let layer_err = |error: AciError| OciError::Layer {
        digest: digest.to_string(),
        error,
    };
    let mut input = BufReader::with_capacity(256 * 1024, input);
    let head = input.fill_buf().map_err(|e| layer_err(AciError::Tar(e)))?;
    let compression = compression_of(head);
    let mut stream: Box<dyn Read + '_> = match compression {
        "gzip" => Box::new(MultiGzDecoder::new(&mut input)),
        "zstd" => Box::new(
            zstd::stream::read::Decoder::with_buffer(&mut input).map_err(|source| {
                layer_err(AciError::Decompress {
                    compression,
                    error: source,
                })
            })?,
        ),
        _ => Box::new(&mut input),
    };
    let mut counted = Counted {
        inner: &mut stream,
        n: 0,
    };
    let mut archive = tar::Archive::new(&mut counted);
    let applied = extractor.apply_layer(&mut archive);
    // Decompression errors explain the tar errors they cause, so they win.
    let drained = io::copy(&mut counted, &mut io::sink());
    if let Err(source) = drained {
        return Err(layer_err(AciError::Decompress {
            compression,
            error: source,
        }));
    }
    applied.map_err(layer_err)?;
    let tar_bytes = counted.n;
    drop(stream);
    io::copy(&mut input, &mut io::sink()).map_err(|e| layer_err(AciError::Tar(e)))?;
    Ok(tar_bytes)
}

struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}
