//! Reading only the manifest of an ACI, without unpacking it: what signature checks need to
//! know (the image name) before anything is written.

use std::io::Read;

use super::layout::{EntryPlace, classify_entry_name};
use super::limit::{Bounded, SizeBound};
use super::{AciError, MAX_MANIFEST_BYTES, decoder};
use rkt_schema::ImageManifest;

/// The parsed manifest of the ACI read from `input` (any supported compression). Reads up to
/// the `manifest` entry, which ACI writers put first; nothing is written anywhere, and no more
/// than `bound` bytes are decompressed looking for it.
pub fn read_manifest<R: Read + Send + 'static>(
    input: R,
    bound: Option<SizeBound>,
) -> Result<ImageManifest, AciError> {
    let (_, stream) = decoder(input)?;
    let mut stream = Bounded::new(stream, bound.map_or(u64::MAX, |b| b.bytes));
    let found = find_manifest(&mut stream);
    match bound {
        Some(bound) if stream.passed() => Err(AciError::TooLarge(bound)),
        _ => found,
    }
}

fn find_manifest(stream: &mut dyn Read) -> Result<ImageManifest, AciError> {
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().map_err(AciError::Tar)? {
        let mut entry = entry.map_err(AciError::Tar)?;
        let name = entry.path_bytes().into_owned();
        if classify_entry_name(&name)? != EntryPlace::Manifest {
            continue;
        }
        if !entry.header().entry_type().is_file() {
            return Err(AciError::layout(&name, "'manifest' must be a regular file"));
        }
        if entry.size() > MAX_MANIFEST_BYTES {
            return Err(AciError::layout(&name, "the manifest is larger than 4 MiB"));
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(AciError::Tar)?;
        return Ok(ImageManifest::from_json(&bytes)?);
    }
    Err(AciError::Missing("the archive has no 'manifest' file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn reads_the_manifest_and_nothing_else() {
        let manifest = br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/a"}"#;
        let aci = tar(&[("rootfs/x", b"x"), ("manifest", manifest)]);
        let read = read_manifest(std::io::Cursor::new(aci), None).unwrap();
        assert_eq!(read.name, "example.com/a");
        let err =
            read_manifest(std::io::Cursor::new(tar(&[("rootfs/x", b"x")])), None).unwrap_err();
        assert!(err.to_string().contains("no 'manifest'"), "{err}");
    }

    #[test]
    fn stops_looking_past_the_size_bound() {
        let manifest = br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/a"}"#;
        let aci = tar(&[("rootfs/zeros", &[0; 64 << 10]), ("manifest", manifest)]);
        let bound = crate::aci::ImageSizeLimit::Max(16 << 10).bound(0);
        let err = read_manifest(std::io::Cursor::new(aci.clone()), Some(bound)).unwrap_err();
        assert!(matches!(err, AciError::TooLarge(b) if b == bound), "{err}");
        let roomy = crate::aci::ImageSizeLimit::Max(1 << 20).bound(0);
        assert!(read_manifest(std::io::Cursor::new(aci), Some(roomy)).is_ok());
    }
}
