use std::io::{self, BufRead, BufReader, Read};

use super::AciError;

/// The compressions the ACI spec allows on top of the tar archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "tar",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }

    /// Detects the format from the first bytes (at least 512 for a plain tar), as the reference
    /// reader does: by magic number, then by a valid tar header.
    pub fn detect(head: &[u8]) -> Result<Compression, AciError> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Ok(Compression::Gzip)
        } else if head.starts_with(b"BZh") {
            Ok(Compression::Bzip2)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Ok(Compression::Xz)
        } else if looks_like_tar(head) {
            Ok(Compression::None)
        } else {
            Err(AciError::UnknownFormat)
        }
    }
}

/// A tar header block has a checksum over itself; "ustar" magic alone is not required (v7 tar).
fn looks_like_tar(head: &[u8]) -> bool {
    if head.len() < 512 {
        return false;
    }
    let block = &head[..512];
    if block.iter().all(|&b| b == 0) {
        // An empty archive is still a tar archive; the layout check rejects it later.
        return true;
    }
    let field = &block[148..156];
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0 && b != b' ')
        .map(|&b| b as char)
        .collect();
    let Ok(stored) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(b)
            }
        })
        .sum();
    sum == stored
}

/// Wraps `input` in the decoder its first bytes call for.
pub fn decoder<R: Read + Send + 'static>(
    input: R,
) -> Result<(Compression, Box<dyn Read + Send>), AciError> {
    let mut input = BufReader::with_capacity(256 * 1024, input);
    let head = fill_head(&mut input)
        .map_err(|e| AciError::Io(rkt_common::IoError::new("reading", "image", e)))?;
    let compression = Compression::detect(&head)?;
    let reader: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(input)),
    };
    Ok((compression, reader))
}

/// Peeks at up to 512 bytes without consuming them.
fn fill_head<R: Read>(input: &mut BufReader<R>) -> io::Result<Vec<u8>> {
    // BufReader::fill_buf returns what one read gave; a pipe may give fewer than 512 bytes, so
    // keep the first buffer only when it is long enough or the stream ended.
    let buf = input.fill_buf()?;
    Ok(buf[..buf.len().min(512)].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_magic_numbers() {
        assert_eq!(
            Compression::detect(&[0x1f, 0x8b, 8, 0]).unwrap(),
            Compression::Gzip
        );
        assert_eq!(Compression::detect(b"BZh91AY").unwrap(), Compression::Bzip2);
        assert_eq!(
            Compression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]).unwrap(),
            Compression::Xz
        );
        assert!(Compression::detect(b"hello world, not an image").is_err());
    }

    #[test]
    fn detects_tar_by_header_checksum() {
        let mut header = tar::Header::new_gnu();
        header.set_path("manifest").unwrap();
        header.set_size(0);
        header.set_cksum();
        assert_eq!(
            Compression::detect(header.as_bytes()).unwrap(),
            Compression::None
        );
        let mut broken = header.as_bytes().to_vec();
        broken[0] ^= 1;
        assert!(Compression::detect(&broken).is_err());
    }
}
