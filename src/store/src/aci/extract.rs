//! Unpacking tar entries into a root directory without ever leaving it.
//!
//! Every path is resolved relative to a directory file descriptor of the root with
//! `openat2(RESOLVE_IN_ROOT)`, so `..` and symlinks (absolute or relative) in the *parent* part of
//! a name are resolved as if the root were `/`. The last component is always created with
//! calls that do not follow symlinks (`O_EXCL|O_NOFOLLOW`, `mkdirat`, `symlinkat`, `linkat`
//! without `AT_SYMLINK_FOLLOW`, `*at(AT_SYMLINK_NOFOLLOW)`), so nothing is written through a
//! symlink either. Unlike the tar crate's `unpack_in`, no check is made by canonicalizing paths
//! (racy, and many wasted `readlink` calls per entry).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timestamps};
use rustix::io::Errno;
use rustix::time::Timespec;
use tar::EntryType;

use super::layout::{EntryPlace, classify_entry_name};
use super::{AciError, MAX_MANIFEST_BYTES};

/// What an extraction produced, for the store's bookkeeping.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExtractStats {
    /// Entries unpacked, the manifest included.
    pub entries: u64,
    /// Bytes of regular file content written under rootfs.
    pub file_bytes: u64,
}

/// The metadata of one entry that is applied to what it creates.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Unpacks the entries of one ACI into `<dir>/rootfs` and keeps its manifest in memory.
pub struct Extractor {
    root: OwnedFd,
    /// How the parent part of a name is resolved: see [`Extractor::follow_symlinks_in_root`].
    resolve: ResolveFlags,
    /// Consecutive entries mostly share a parent directory; keep its descriptor. A descriptor
    /// of a directory inside the root stays inside the root, so reuse is safe.
    parent_cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
    /// Directory times are set last: creating children would change them again.
    dir_times: Vec<(Vec<u8>, Timespec)>,
    seen: HashSet<Vec<u8>>,
    manifest: Option<Vec<u8>>,
    saw_rootfs: bool,
    buf: Vec<u8>,
    stats: ExtractStats,
    /// Set in layer mode ([`Extractor::for_layers`]): what the current layer wrote.
    layer: Option<LayerState>,
}

/// Layer mode's memory of the layer being applied: every path it wrote and all their
/// ancestors, so that whiteouts remove only lower layers' content, whatever the entry order.
#[derive(Default)]
struct LayerState {
    paths: HashSet<Vec<u8>>,
}

impl Extractor {
    /// Prepares to unpack into `rootfs`, an existing empty directory.
    pub fn new(rootfs: &Path) -> Result<Self, AciError> {
        let root = rfs::open(
            rootfs,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| AciError::Io(rkt_common::IoError::new("opening", rootfs, e)))?;
        Ok(Extractor {
            root,
            resolve: ResolveFlags::IN_ROOT
                | ResolveFlags::NO_MAGICLINKS
                | ResolveFlags::NO_SYMLINKS,
            parent_cache: None,
            dir_times: Vec::new(),
            seen: HashSet::new(),
            manifest: None,
            saw_rootfs: false,
            buf: vec![0; 128 * 1024],
            stats: ExtractStats::default(),
            layer: None,
        })
    }

    /// Prepares to apply OCI/Docker image layers, in order, onto `rootfs` (an existing empty
    /// directory). Entry names are relative to the root (no `manifest`, no `rootfs/`); later
    /// layers replace earlier entries; `.wh.NAME` removes NAME of lower layers and
    /// `.wh..wh..opq` empties its directory of lower layers' content. Symlinks made by earlier
    /// layers are followed in parent paths, resolved as if the root were `/`, except by
    /// whiteouts, which may not go through a symlink at all.
    pub fn for_layers(rootfs: &Path) -> Result<Self, AciError> {
        let mut extractor = Extractor::new(rootfs)?.follow_symlinks_in_root();
        extractor.layer = Some(LayerState::default());
        Ok(extractor)
    }

    /// By default no entry may be written through a symlink (an ACI lists every file at its real
    /// path, so one that does is hostile or broken). Layered formats (OCI) legitimately add
    /// files under a directory that an earlier layer made a symlink; for them, symlinks are
    /// followed, but always resolved as if the root were `/`.
    pub fn follow_symlinks_in_root(mut self) -> Self {
        self.resolve = in_root();
        self
    }

    /// Unpacks every entry of `archive`.
    pub fn unpack_all<R: Read>(&mut self, archive: &mut tar::Archive<R>) -> Result<(), AciError> {
        for entry in archive.entries().map_err(AciError::Tar)? {
            let mut entry = entry.map_err(AciError::Tar)?;
            self.entry(&mut entry)?;
        }
        Ok(())
    }

    /// Unpacks one archive entry.
    pub fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), AciError> {
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            // A pax global header (e.g. from `git archive`) carries no file.
            return Ok(());
        }
        let name = entry.path_bytes().into_owned();
        let place = classify_entry_name(&name)?;
        let key = match &place {
            EntryPlace::Manifest => b"manifest".to_vec(),
            EntryPlace::RootfsDir => b"rootfs".to_vec(),
            EntryPlace::InRootfs(path) => [b"rootfs/", path.as_slice()].concat(),
        };
        if !self.seen.insert(key) {
            return Err(AciError::layout(&name, "duplicate entry"));
        }
        self.stats.entries += 1;
        match place {
            EntryPlace::Manifest => self.read_manifest(&name, entry),
            EntryPlace::RootfsDir => {
                if kind != EntryType::Directory {
                    return Err(AciError::layout(&name, "'rootfs' must be a directory"));
                }
                self.saw_rootfs = true;
                let meta = read_meta(&name, entry)?;
                apply_fd_meta(self.root.as_fd(), &meta).map_err(|e| AciError::unpack(&name, e))?;
                self.dir_times.push((Vec::new(), meta.mtime));
                Ok(())
            }
            EntryPlace::InRootfs(path) => {
                self.saw_rootfs = true;
                self.unpack_in_root(&name, &path, kind, entry)
            }
        }
    }

    /// Sets the directory times and hands back the manifest.
    pub fn finish(mut self) -> Result<(Vec<u8>, ExtractStats), AciError> {
        let manifest = self
            .manifest
            .take()
            .ok_or(AciError::Missing("the archive has no 'manifest' file"))?;
        if !self.saw_rootfs {
            return Err(AciError::Missing("the archive has no 'rootfs' directory"));
        }
        self.set_dir_times()?;
        Ok((manifest, self.stats))
    }

    /// Applies one layer (a tar stream) on top of what earlier layers made.
    pub fn apply_layer<R: Read>(&mut self, archive: &mut tar::Archive<R>) -> Result<(), AciError> {
        assert!(
            self.layer.is_some(),
            "apply_layer needs Extractor::for_layers"
        );
        self.layer = Some(LayerState::default());
        for entry in archive.entries().map_err(AciError::Tar)? {
            let mut entry = entry.map_err(AciError::Tar)?;
            self.layer_entry(&mut entry)?;
        }
        Ok(())
    }

    /// Sets the directory times once every layer is applied.
    pub fn finish_layers(self) -> Result<ExtractStats, AciError> {
        self.set_dir_times()?;
        Ok(self.stats)
    }

    fn set_dir_times(&self) -> Result<(), AciError> {
        for (path, mtime) in self.dir_times.iter().rev() {
            let dir = if path.is_empty() {
                rustix::io::fcntl_dupfd_cloexec(&self.root, 0)
            } else {
                rfs::openat2(
                    &self.root,
                    OsStr::from_bytes(path),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                    self.resolve,
                )
            };
            match dir {
                Ok(fd) => {
                    rfs::futimens(&fd, &times(*mtime)).map_err(|e| AciError::unpack(path, e))?
                }
                // A later entry replaced the directory: its time no longer matters.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => {}
                Err(e) => return Err(AciError::unpack(path, e)),
            }
        }
        Ok(())
    }

    fn layer_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), AciError> {
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            return Ok(());
        }
        let name = entry.path_bytes().into_owned();
        let Some(path) = clean_layer_name(&name)? else {
            // `./`: the root directory itself.
            if kind != EntryType::Directory {
                return Err(AciError::layout(
                    &name,
                    "the layer's root must be a directory",
                ));
            }
            let meta = read_meta(&name, entry)?;
            apply_fd_meta(self.root.as_fd(), &meta).map_err(|e| AciError::unpack(&name, e))?;
            self.dir_times.push((Vec::new(), meta.mtime));
            return Ok(());
        };
        let (parent_path, file_name) = split_last(&path);
        if let Some(target) = file_name.strip_prefix(WHITEOUT) {
            return self.whiteout(&name, parent_path, target);
        }
        let layer = self.layer.as_mut().expect("layer mode");
        let mut prefix = path.as_slice();
        while layer.paths.insert(prefix.to_vec()) {
            prefix = split_last(prefix).0;
            if prefix.is_empty() {
                break;
            }
        }
        self.stats.entries += 1;
        self.unpack_in_root(&name, &path, kind, entry)
    }

    /// Applies `.wh.TARGET` found in `parent_path` (`TARGET` = `.wh..opq`: opaque directory).
    fn whiteout(&mut self, name: &[u8], parent_path: &[u8], target: &[u8]) -> Result<(), AciError> {
        if target.is_empty() || target == b"." || target == b".." {
            return Err(AciError::layout(
                name,
                "a whiteout must name an entry of its own directory",
            ));
        }
        let opaque = target == OPAQUE;
        if !opaque && target.starts_with(WHITEOUT) {
            // Other `.wh..wh.*` names are aufs bookkeeping, not whiteouts.
            return Ok(());
        }
        // A whiteout removes lower layers' entries at their real paths: going through a symlink
        // would remove something else than the layer's author saw.
        let strict =
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_SYMLINKS;
        let parent = if parent_path.is_empty() {
            rustix::io::fcntl_dupfd_cloexec(&self.root, 0).map_err(|e| AciError::unpack(name, e))
        } else {
            match rfs::openat2(
                &self.root,
                OsStr::from_bytes(parent_path),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                strict,
            ) {
                Ok(fd) => Ok(fd),
                // Nothing of lower layers there: nothing to remove.
                Err(Errno::NOENT | Errno::NOTDIR) => return Ok(()),
                Err(Errno::LOOP) => {
                    return Err(AciError::layout(
                        name,
                        "a whiteout may not go through a symlink",
                    ));
                }
                Err(e) => Err(AciError::unpack(name, e)),
            }
        }?;
        // Removals can invalidate cached parents (a directory replaced or gone).
        self.parent_cache = None;
        let result = if opaque {
            self.remove_lower_children(parent.as_fd(), parent_path)
        } else {
            self.remove_lower(parent.as_fd(), parent_path, target)
        };
        result.map_err(|e| AciError::unpack(name, e))
    }

    /// Removes `parent_path/child` unless the current layer wrote it; a directory the layer
    /// wrote (or wrote into) keeps the layer's entries and loses the rest.
    fn remove_lower(
        &self,
        parent: BorrowedFd<'_>,
        parent_path: &[u8],
        child: &[u8],
    ) -> rustix::io::Result<()> {
        let child_path = join_path(parent_path, child);
        let layer = self.layer.as_ref().expect("layer mode");
        let child = OsStr::from_bytes(child);
        if !layer.paths.contains(&child_path) {
            return match remove_tree_at(parent, child) {
                Err(Errno::NOENT) => Ok(()),
                other => other,
            };
        }
        match rfs::openat(
            parent,
            child,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(dir) => self.remove_lower_children(dir.as_fd(), &child_path),
            // The layer's own file or symlink: kept.
            Err(Errno::NOTDIR | Errno::LOOP | Errno::NOENT) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn remove_lower_children(
        &self,
        dir: BorrowedFd<'_>,
        dir_path: &[u8],
    ) -> rustix::io::Result<()> {
        for child in list_dir(dir)? {
            self.remove_lower(dir, dir_path, &child)?;
        }
        Ok(())
    }

    fn read_manifest<R: Read>(
        &mut self,
        name: &[u8],
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), AciError> {
        if !entry.header().entry_type().is_file() {
            return Err(AciError::layout(name, "'manifest' must be a regular file"));
        }
        if entry.size() > MAX_MANIFEST_BYTES {
            return Err(AciError::layout(name, "the manifest is larger than 4 MiB"));
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(AciError::Tar)?;
        self.manifest = Some(bytes);
        Ok(())
    }

    fn unpack_in_root<R: Read>(
        &mut self,
        name: &[u8],
        path: &[u8],
        kind: EntryType,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), AciError> {
        let (parent_path, file_name) = split_last(path);
        let file_name = OsStr::from_bytes(file_name);
        let meta = read_meta(name, entry)?;
        let parent = self
            .parent_dir(parent_path)
            .map_err(|e| self.path_error(name, e))?;
        let parent = parent.as_fd();
        let wrap = |e: Errno| AciError::unpack(name, e);
        if self.layer.is_some() && kind != EntryType::Directory {
            // A later layer replaces whatever an earlier one put there, directories included.
            match rfs::statat(parent, file_name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => {
                    remove_tree_at_stat(parent, file_name, st.st_mode).map_err(wrap)?;
                    self.parent_cache = None;
                }
                Err(Errno::NOENT) => {}
                Err(e) => return Err(wrap(e)),
            }
        }
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                let file = create_excl(parent, file_name, |p, n| {
                    rfs::openat(
                        p,
                        n,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                })
                .map_err(wrap)?;
                let mut file = File::from(file);
                let written = copy_with(&mut self.buf, entry, &mut file)
                    .map_err(|e| AciError::unpack(name, e))?;
                if written != entry.size() {
                    // The tar crate reports an early end of data as a short read.
                    return Err(AciError::Tar(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the archive ends inside {:?}",
                            String::from_utf8_lossy(name)
                        ),
                    )));
                }
                self.stats.file_bytes += written;
                apply_fd_meta(file.as_fd(), &meta).map_err(|e| AciError::unpack(name, e))?;
                rfs::futimens(&file, &times(meta.mtime)).map_err(wrap)?;
            }
            EntryType::Directory => {
                match rfs::mkdirat(parent, file_name, Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        let st = rfs::statat(parent, file_name, AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(wrap)?;
                        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                            // It may have been a symlink that a cached parent went through.
                            self.parent_cache = None;
                            rfs::unlinkat(parent, file_name, AtFlags::empty()).map_err(wrap)?;
                            rfs::mkdirat(parent, file_name, Mode::from_raw_mode(0o700))
                                .map_err(wrap)?;
                        }
                    }
                    Err(e) => return Err(wrap(e)),
                }
                let dir = rfs::openat(
                    parent,
                    file_name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(wrap)?;
                apply_fd_meta(dir.as_fd(), &meta).map_err(|e| AciError::unpack(name, e))?;
                self.dir_times.push((path.to_vec(), meta.mtime));
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| AciError::layout(name, "symlink without a target"))?;
                let target = OsStr::from_bytes(&target);
                create_excl(parent, file_name, |p, n| rfs::symlinkat(target, p, n))
                    .map_err(wrap)?;
                apply_nofollow_meta(parent, file_name, &meta, false).map_err(wrap)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| AciError::layout(name, "hard link without a target"))?
                    .into_owned();
                let target_path = if self.layer.is_some() {
                    // Layers may link to files of lower layers; the target is resolved in
                    // the root like any other path.
                    clean_layer_name(&target)?
                        .ok_or_else(|| AciError::layout(name, "hard link to the root directory"))?
                } else {
                    let EntryPlace::InRootfs(target_path) = classify_entry_name(&target)? else {
                        return Err(AciError::layout(
                            name,
                            "hard links must point inside rootfs",
                        ));
                    };
                    target_path
                };
                if self.layer.is_none()
                    && !self
                        .seen
                        .contains(&[b"rootfs/", target_path.as_slice()].concat())
                {
                    return Err(AciError::layout(
                        name,
                        "hard link target is not an earlier entry of the archive",
                    ));
                }
                let (target_parent, target_name) = split_last(&target_path);
                let target_parent =
                    open_dir_in_root(self.root.as_fd(), target_parent, self.resolve)
                        .map_err(|e| self.path_error(name, e))?;
                let target_name = OsStr::from_bytes(target_name);
                create_excl(parent, file_name, |p, n| {
                    rfs::linkat(&target_parent, target_name, p, n, AtFlags::empty())
                })
                .map_err(wrap)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let file_type = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let header = entry.header();
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let dev = rfs::makedev(major, minor);
                create_excl(parent, file_name, |p, n| {
                    rfs::mknodat(p, n, file_type, Mode::from_raw_mode(0o600), dev)
                })
                .map_err(wrap)?;
                apply_nofollow_meta(parent, file_name, &meta, true).map_err(wrap)?;
            }
            EntryType::GNUSparse => {
                return Err(AciError::layout(name, "sparse files are not supported"));
            }
            _ => return Err(AciError::layout(name, "unsupported tar entry type")),
        }
        Ok(())
    }

    /// Explains the refusal to go through a symlink, which the kernel reports as `ELOOP`.
    fn path_error(&self, name: &[u8], e: io::Error) -> AciError {
        if self.resolve.contains(ResolveFlags::NO_SYMLINKS)
            && e.raw_os_error() == Some(Errno::LOOP.raw_os_error())
        {
            AciError::layout(
                name,
                "the path goes through a symlink, which ACIs may not do",
            )
        } else {
            AciError::unpack(name, e)
        }
    }

    /// The directory that will hold an entry, created (mode 0755) if the archive did not list it.
    fn parent_dir(&mut self, parent_path: &[u8]) -> io::Result<Rc<OwnedFd>> {
        if let Some((cached, fd)) = &self.parent_cache
            && cached == parent_path
        {
            return Ok(fd.clone());
        }
        let fd = Rc::new(ensure_dir_in_root(
            self.root.as_fd(),
            parent_path,
            self.resolve,
        )?);
        self.parent_cache = Some((parent_path.to_vec(), fd.clone()));
        Ok(fd)
    }
}

/// The prefix of whiteout names, and what follows it in an opaque directory marker.
const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..opq";

/// Cleans a layer entry name (`./a//b/` → `a/b`) by the ACI rules; `None` for the root itself.
fn clean_layer_name(raw: &[u8]) -> Result<Option<Vec<u8>>, AciError> {
    let parts = super::layout::clean_entry_name(raw)?;
    Ok((!parts.is_empty()).then(|| parts.join(&b'/')))
}

fn join_path(parent: &[u8], child: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        child.to_vec()
    } else {
        [parent, b"/", child].concat()
    }
}

/// The names in a directory, without `.` and `..`.
fn list_dir(dir: BorrowedFd<'_>) -> rustix::io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in rfs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    Ok(names)
}

/// Removes `name` in `parent`, a whole directory tree included, never following symlinks.
fn remove_tree_at(parent: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<()> {
    let st = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
    remove_tree_at_stat(parent, name, st.st_mode)
}

fn remove_tree_at_stat(parent: BorrowedFd<'_>, name: &OsStr, mode: u32) -> rustix::io::Result<()> {
    if FileType::from_raw_mode(mode) != FileType::Directory {
        return rfs::unlinkat(parent, name, AtFlags::empty());
    }
    let dir = rfs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for child in list_dir(dir.as_fd())? {
        remove_tree_at(dir.as_fd(), OsStr::from_bytes(&child))?;
    }
    rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}

fn in_root() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

fn times(mtime: Timespec) -> Timestamps {
    Timestamps {
        last_access: mtime,
        last_modification: mtime,
    }
}

/// Splits `a/b/c` into (`a/b`, `c`); a single component has an empty parent.
fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// Opens a directory of the tree as if `root` were `/`: `..` and symlinks cannot leave it.
fn open_dir_in_root(
    root: BorrowedFd<'_>,
    path: &[u8],
    resolve: ResolveFlags,
) -> io::Result<OwnedFd> {
    if path.is_empty() {
        return Ok(rustix::io::fcntl_dupfd_cloexec(root, 0)?);
    }
    Ok(rfs::openat2(
        root,
        OsStr::from_bytes(path),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        resolve,
    )?)
}

/// Like [`open_dir_in_root`], creating missing directories along the way.
fn ensure_dir_in_root(
    root: BorrowedFd<'_>,
    path: &[u8],
    resolve: ResolveFlags,
) -> io::Result<OwnedFd> {
    match open_dir_in_root(root, path, resolve) {
        Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {}
        other => return other,
    }
    let mut end = 0;
    while end < path.len() {
        end = path[end + 1..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(path.len(), |i| end + 1 + i);
        let prefix = &path[..end];
        let (parent, name) = split_last(prefix);
        let parent = open_dir_in_root(root, parent, resolve)?;
        match rfs::mkdirat(&parent, OsStr::from_bytes(name), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    open_dir_in_root(root, path, resolve)
}

/// Runs `create`; if the name is taken by a non-directory (an earlier entry reached through a
/// symlinked path), removes it and tries once more, as GNU tar does. Directories are never
/// replaced by something else.
fn create_excl<T>(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    create: impl Fn(BorrowedFd<'_>, &OsStr) -> rustix::io::Result<T>,
) -> rustix::io::Result<T> {
    match create(parent, name) {
        Err(Errno::EXIST) => {
            let st = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                return Err(Errno::ISDIR);
            }
            rfs::unlinkat(parent, name, AtFlags::empty())?;
            create(parent, name)
        }
        other => other,
    }
}

/// Owner, then mode (chown clears setuid bits), then extended attributes.
fn apply_fd_meta(fd: BorrowedFd<'_>, meta: &Meta) -> io::Result<()> {
    rfs::fchown(
        fd,
        Some(rfs::Uid::from_raw(meta.uid)),
        Some(rfs::Gid::from_raw(meta.gid)),
    )?;
    rfs::fchmod(fd, Mode::from_raw_mode(meta.mode))?;
    for (key, value) in &meta.xattrs {
        rfs::fsetxattr(fd, OsStr::from_bytes(key), value, rfs::XattrFlags::empty())?;
    }
    Ok(())
}

/// Metadata of symlinks and device nodes, which are never opened. Extended attributes on them
/// are not restored: `user.*` ones are not allowed on such files anyway.
fn apply_nofollow_meta(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    meta: &Meta,
    set_mode: bool,
) -> rustix::io::Result<()> {
    rfs::chownat(
        parent,
        name,
        Some(rfs::Uid::from_raw(meta.uid)),
        Some(rfs::Gid::from_raw(meta.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if set_mode {
        // fchmodat cannot refuse to follow symlinks on Linux; `name` is the node just made.
        rfs::chmodat(
            parent,
            name,
            Mode::from_raw_mode(meta.mode),
            AtFlags::empty(),
        )?;
    }
    rfs::utimensat(parent, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
}

/// Reads the header fields and pax records (owner, times, `SCHILY.xattr.*`) of an entry.
fn read_meta<R: Read>(name: &[u8], entry: &mut tar::Entry<'_, R>) -> Result<Meta, AciError> {
    let header = entry.header();
    let bad = |e: io::Error| AciError::Unpack {
        entry: String::from_utf8_lossy(name).into_owned(),
        error: e,
    };
    let mode = header.mode().map_err(bad)? & 0o7777;
    let mut uid = u32::try_from(header.uid().map_err(bad)?).unwrap_or(u32::MAX);
    let mut gid = u32::try_from(header.gid().map_err(bad)?).unwrap_or(u32::MAX);
    let mut mtime = Timespec {
        tv_sec: header.mtime().map_err(bad)?.try_into().unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    let mut xattrs = Vec::new();
    if let Some(pax) = entry.pax_extensions().map_err(bad)? {
        for ext in pax {
            let ext = ext.map_err(bad)?;
            let key = ext.key_bytes();
            let value = ext.value_bytes();
            if let Some(attr) = key.strip_prefix(b"SCHILY.xattr.") {
                xattrs.push((attr.to_vec(), value.to_vec()));
            } else if key == b"uid" {
                uid = parse_decimal(value).ok_or_else(|| bad(invalid("pax uid")))?;
            } else if key == b"gid" {
                gid = parse_decimal(value).ok_or_else(|| bad(invalid("pax gid")))?;
            } else if key == b"mtime" {
                mtime = parse_pax_time(value).ok_or_else(|| bad(invalid("pax mtime")))?;
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("invalid {what} record"))
}

fn parse_decimal(value: &[u8]) -> Option<u32> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Pax times are decimal seconds with an optional fraction: `1700000000.123456789`.
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let tv_nsec = if digits.is_empty() {
        0
    } else {
        digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32)
    };
    Some(Timespec { tv_sec, tv_nsec })
}

fn copy_with(buf: &mut [u8], from: &mut impl Read, to: &mut File) -> io::Result<u64> {
    let mut total = 0;
    loop {
        let n = match from.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pax_times() {
        assert_eq!(
            parse_pax_time(b"1700000000.5"),
            Some(Timespec {
                tv_sec: 1_700_000_000,
                tv_nsec: 500_000_000
            })
        );
        assert_eq!(
            parse_pax_time(b"12"),
            Some(Timespec {
                tv_sec: 12,
                tv_nsec: 0
            })
        );
        assert_eq!(parse_pax_time(b"x"), None);
    }

    #[test]
    fn splits_last_component() {
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
    }
}
