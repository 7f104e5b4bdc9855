//! Applying one layer blob (gzip-compressed or plain tar) onto a root filesystem.

use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;

use super::{Digest, OciError};
use crate::aci::{AciError, Extractor};

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
    let layer_err = |source: AciError| OciError::Layer {
        digest: digest.to_string(),
        source,
    };
    let mut input = BufReader::with_capacity(256 * 1024, input);
    let head = input.fill_buf().map_err(|e| layer_err(AciError::Tar(e)))?;
    if head.starts_with(ZSTD_MAGIC) {
        return Err(OciError::UnsupportedCompression {
            digest: digest.to_string(),
            compression: "zstd",
        });
    }
    let (compression, mut stream): (&'static str, Box<dyn Read + '_>) =
        if head.starts_with(GZIP_MAGIC) {
            ("gzip", Box::new(MultiGzDecoder::new(&mut input)))
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
