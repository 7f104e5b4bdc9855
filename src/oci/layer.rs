//! Applying one layer blob (gzip- or zstd-compressed, or plain tar) onto a root filesystem.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::mpsc::sync_channel;
use std::thread;

use flate2::bufread::MultiGzDecoder;

use super::{Descriptor, Digest, OciError, VerifyingReader};
use crate::aci::{AciError, ChunkReader, Extractor};

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
    apply_pipelined(extractor, blob, desc, Some(copy), what)
}

/// Applies a layer whose bytes someone else checks against its digest (a blob download that
/// the caller waits for): decompression and unpacking still overlap.
pub fn apply_layer_streamed(
    extractor: &mut Extractor,
    blob: Box<dyn Read + Send + '_>,
    desc: &Descriptor,
    what: &str,
) -> Result<u64, OciError> {
    apply_pipelined(extractor, blob, desc, None, what)
}

/// `check`: `Some(copy)` to verify the blob here (and copy it), `None` when the caller does.
fn apply_pipelined(
    extractor: &mut Extractor,
    blob: Box<dyn Read + Send + '_>,
    desc: &Descriptor,
    check: Option<Option<&File>>,
    what: &str,
) -> Result<u64, OciError> {
    let (tx, rx) = sync_channel::<Vec<u8>>(DEPTH);
    thread::scope(|scope| {
        let reader = scope.spawn(move || -> Result<(), OciError> {
            let mut verified = VerifyingReader::new(blob, desc.size);
            loop {
                let mut chunk = vec![0u8; CHUNK];
                let n = match verified.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(super::download::read_error(what, &e)),
                };
                chunk.truncate(n);
                if let Some(Some(mut file)) = check {
                    file.write_all(&chunk)
                        .map_err(|e| OciError::invalid(what, format!("storing it failed: {e}")))?;
                }
                // The unpacker hung up only after reading everything it will read.
                let _ = tx.send(chunk);
            }
            drop(tx);
            match check {
                Some(_) => verified.finish(&desc.digest, desc.size, what),
                None => Ok(()),
            }
        });
        // Decompression on a third thread: on two cores, decompressing and writing files
        // overlap (decompression alone is most of a layer's CPU time).
        let (plain_tx, plain_rx) = sync_channel::<Vec<u8>>(DEPTH);
        let inflater = scope.spawn(move || -> Result<(), (&'static str, io::Error)> {
            let mut compressed = BufReader::with_capacity(CHUNK, ChunkReader::new(rx));
            let head = compressed.fill_buf().map_err(|e| ("tar", e))?;
            let compression = if head.starts_with(GZIP_MAGIC) {
                "gzip"
            } else if head.starts_with(ZSTD_MAGIC) {
                "zstd"
            } else {
                "tar"
            };
            let result = match compression {
                "gzip" => pump(&mut MultiGzDecoder::new(&mut compressed), &plain_tx),
                "zstd" => zstd_frames(&mut compressed, &plain_tx),
                _ => pump(&mut compressed, &plain_tx),
            };
            drop(plain_tx);
            // Read the blob to its end so that the digest check covers every byte.
            let _ = io::copy(&mut compressed, &mut io::sink());
            result.map_err(|e| (compression, e))
        });
        let mut chunks = ChunkReader::new(plain_rx);
        let applied = apply_tar(extractor, &mut chunks, &desc.digest);
        let _ = io::copy(&mut chunks, &mut io::sink());
        drop(chunks);
        let inflated = inflater.join().expect("layer inflater thread panicked");
        let verified = reader.join().expect("layer reader thread panicked");
        // The cause first: a wrong blob, then bad compression, then what the tar said.
        verified?;
        if let Err((compression, source)) = inflated {
            return Err(OciError::Layer {
                digest: desc.digest.to_string(),
                error: AciError::Decompress {
                    compression,
                    source,
                },
            });
        }
        applied
    })
}

/// Decompresses one or more concatenated zstd frames (what `zstd` writes) into `out`.
fn zstd_frames(
    input: &mut impl BufRead,
    out: &std::sync::mpsc::SyncSender<Vec<u8>>,
) -> io::Result<()> {
    while !input.fill_buf()?.is_empty() {
        let mut frame = ruzstd::decoding::StreamingDecoder::new(&mut *input)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        pump(&mut frame, out)?;
    }
    Ok(())
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

/// Copies `input` to `out` in chunks, until the end or until the receiver hangs up.
fn pump(input: &mut dyn Read, out: &std::sync::mpsc::SyncSender<Vec<u8>>) -> io::Result<()> {
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let n = match input.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        chunk.truncate(n);
        if out.send(chunk).is_err() {
            return Ok(());
        }
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

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
    let (compression, mut stream): (&'static str, Box<dyn Read + '_>) =
        if head.starts_with(GZIP_MAGIC) {
            ("gzip", Box::new(MultiGzDecoder::new(&mut input)))
        } else if head.starts_with(ZSTD_MAGIC) {
            let frame = ruzstd::decoding::StreamingDecoder::new(&mut input).map_err(|e| {
                layer_err(AciError::Decompress {
                    compression: "zstd",
                    source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
                })
            })?;
            ("zstd", Box::new(frame))
        } else {
            ("tar", Box::new(&mut input))
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
            source,
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
