//! Files named on the command line, read with a bound: a path such as /dev/zero or a huge
//! file by mistake gets one line, not all of memory.

use std::io::{self, Read};
use std::path::Path;

/// The whole of `path`, or an error if it holds more than `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::other(format!(
            "it is larger than {}",
            rkt_store::aci::human_size(limit)
        )));
    }
    Ok(bytes)
}

/// [`read_limited`] as UTF-8 text.
pub fn read_limited_text(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_limited(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "it is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_limited(&file, 5).unwrap(), b"12345");
        let err = read_limited(&file, 4).unwrap_err().to_string();
        assert!(err.contains("larger than 4 B"), "{err}");
        let err = read_limited(Path::new("/dev/zero"), 1 << 10).unwrap_err();
        assert!(err.to_string().contains("1 KiB"), "{err}");
        std::fs::write(&file, b"\xff").unwrap();
        assert!(read_limited_text(&file, 5).is_err());
    }
}
