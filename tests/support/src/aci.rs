//! Builds ACI archives for tests, including hostile ones that no honest tool would write:
//! names are put into tar headers byte for byte, without the tar crate's path checks.

use std::io::Write;

/// What one archive entry is.
#[derive(Clone, Debug)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    HardLink(String),
    CharDevice(u32, u32),
    Fifo,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// An ACI under construction; entries are written in the order they were added.
#[derive(Clone, Debug, Default)]
pub struct AciBuilder {
    pub entries: Vec<Entry>,
}

pub const MTIME: u64 = 1_600_000_000;

/// A valid image manifest named `name`.
pub fn manifest_json(name: &str, version: &str) -> String {
    format!(
        r#"{{"acKind":"ImageManifest","acVersion":"0.8.11","name":"{name}","labels":[{{"name":"version","value":"{version}"}},{{"name":"os","value":"linux"}},{{"name":"arch","value":"amd64"}}],"app":{{"exec":["/bin/true"],"user":"0","group":"0"}}}}"#
    )
}

impl AciBuilder {
    /// No entries at all.
    pub fn empty() -> Self {
        AciBuilder::default()
    }

    /// A valid ACI: a manifest, the rootfs directory and one file.
    pub fn valid(name: &str) -> Self {
        AciBuilder::empty()
            .file("manifest", manifest_json(name, "1.0").as_bytes(), 0o644)
            .dir("rootfs", 0o755)
            .file("rootfs/hello", b"hello\n", 0o644)
    }

    pub fn entry(mut self, name: &str, kind: Kind, mode: u32) -> Self {
        self.entries.push(Entry {
            name: name.to_owned(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: MTIME,
            xattrs: Vec::new(),
        });
        self
    }

    pub fn file(self, name: &str, data: &[u8], mode: u32) -> Self {
        self.entry(name, Kind::File(data.to_vec()), mode)
    }

    pub fn dir(self, name: &str, mode: u32) -> Self {
        self.entry(name, Kind::Dir, mode)
    }

    pub fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(name, Kind::Symlink(target.to_owned()), 0o777)
    }

    pub fn hardlink(self, name: &str, target: &str) -> Self {
        self.entry(name, Kind::HardLink(target.to_owned()), 0o644)
    }

    /// Changes the last entry's owner, time or extended attributes.
    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        let e = self.entries.last_mut().expect("an entry");
        e.uid = uid;
        e.gid = gid;
        self
    }

    pub fn mtime(mut self, mtime: u64) -> Self {
        self.entries.last_mut().expect("an entry").mtime = mtime;
        self
    }

    pub fn xattr(mut self, key: &str, value: &[u8]) -> Self {
        let e = self.entries.last_mut().expect("an entry");
        e.xattrs.push((key.to_owned(), value.to_vec()));
        self
    }

    /// The uncompressed tar stream (its SHA-512 is the image ID).
    pub fn tar(&self) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for e in &self.entries {
            if !e.xattrs.is_empty() {
                let records: Vec<(String, &[u8])> = e
                    .xattrs
                    .iter()
                    .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
                    .collect();
                builder
                    .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
                    .unwrap();
            }
            let mut header = tar::Header::new_gnu();
            let name = e.name.as_bytes();
            assert!(name.len() < 100, "test names must fit the header");
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.set_mode(e.mode);
            header.set_uid(e.uid);
            header.set_gid(e.gid);
            header.set_mtime(e.mtime);
            let mut data: &[u8] = &[];
            match &e.kind {
                Kind::File(bytes) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(bytes.len() as u64);
                    data = bytes;
                }
                Kind::Dir => header.set_entry_type(tar::EntryType::Directory),
                Kind::Symlink(target) | Kind::HardLink(target) => {
                    header.set_entry_type(if matches!(e.kind, Kind::Symlink(_)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    let t = target.as_bytes();
                    header.as_old_mut().linkname[..t.len()].copy_from_slice(t);
                }
                Kind::CharDevice(major, minor) => {
                    header.set_entry_type(tar::EntryType::Char);
                    header.set_device_major(*major).unwrap();
                    header.set_device_minor(*minor).unwrap();
                }
                Kind::Fifo => header.set_entry_type(tar::EntryType::Fifo),
            }
            if !matches!(e.kind, Kind::File(_)) {
                header.set_size(0);
            }
            header.set_cksum();
            builder.append(&header, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    pub fn gzip(&self) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&self.tar()).unwrap();
        enc.finish().unwrap()
    }

    pub fn bzip2(&self) -> Vec<u8> {
        let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        enc.write_all(&self.tar()).unwrap();
        enc.finish().unwrap()
    }

    pub fn xz(&self) -> Vec<u8> {
        let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 1);
        enc.write_all(&self.tar()).unwrap();
        enc.finish().unwrap()
    }
}

/// `sha512-` + hex SHA-512, the image ID of a tar stream.
pub fn image_id(tar: &[u8]) -> String {
    use sha2::Digest;
    format!("sha512-{}", hex::encode(sha2::Sha512::digest(tar)))
}
