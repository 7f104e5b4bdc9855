//! An app's volumes: each mount of the pod manifest bound into the app's root before the pod
//! starts. Targets are resolved inside the app's root (`openat2(RESOLVE_IN_ROOT)`: an image's
//! symlink cannot point a mount at a host path), missing ones are created there (in the
//! overlay's upper layer), and the bind is made onto the resolved descriptor. Everything
//! mounted here is below the pod directory, so [`super::unmount_pod`] and `rkt gc` undo it.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags, StatVfsMountFlags};
use rustix::mount::MountFlags;

use super::Stage1Error;
use rkt_schema::{App, Mount, RuntimeApp, Volume, VolumeKind};

/// Where the pod's empty volume `name` lives (one directory shared by every app mounting it).
pub fn shared_volume_dir(pod_dir: &Path, name: &str) -> PathBuf {
    rkt_pod::PodDir::at(pod_dir).shared_volume(name)
}

/// Binds every mount of `app` into its root `app_root` (the app's overlay, or its copy).
/// `app_def` is the app that runs (the manifest's or the image's), for its mount points'
/// `readOnly`.
pub fn mount_app_volumes(
    pod_dir: &Path,
    app_root: &Path,
    app: &RuntimeApp,
    app_def: &App,
    volumes: &[Volume],
) -> Result<(), Stage1Error> {
    for mount in &app.mounts {
        let volume = mount
            .app_volume
            .as_ref()
            .or_else(|| volumes.iter().find(|v| v.name == mount.volume))
            .ok_or_else(|| {
                volume_error(
                    app,
                    mount,
                    io::Error::other(format!("no volume named {:?}", mount.volume.as_str())),
                )
            })?;
        let source = volume_source(pod_dir, volume).map_err(|e| volume_error(app, mount, e))?;
        bind(
            app_root,
            &source,
            mount,
            volume,
            read_only(volume, mount, app_def),
        )
        .map_err(|e| volume_error(app, mount, e))?;
    }
    Ok(())
}

fn volume_error(app: &RuntimeApp, mount: &Mount, source: io::Error) -> Stage1Error {
    Stage1Error::Volume {
        mount: format!(
            "app {}: mounting volume {} at {}",
            app.name, mount.volume, mount.path
        ),
        error: source,
    }
}

/// The targets of `app`'s mounts that are not read-only (kept writable under a read-only
/// root).
pub fn writable_volume_targets(app: &RuntimeApp, app_def: &App, volumes: &[Volume]) -> Vec<String> {
    app.mounts
        .iter()
        .filter(|m| {
            m.app_volume
                .as_ref()
                .or_else(|| volumes.iter().find(|v| v.name == m.volume))
                .is_some_and(|v| !read_only(v, m, app_def))
        })
        .map(|m| m.path.clone())
        .collect()
}

/// The original rkt's rule: the volume's `readOnly` when given, else the mount point's.
fn read_only(volume: &Volume, mount: &Mount, app: &App) -> bool {
    volume.read_only.unwrap_or_else(|| {
        app.mount_points
            .iter()
            .find(|p| p.path == mount.path || p.name == mount.volume)
            .is_some_and(|p| p.read_only)
    })
}

/// A host volume's source (it must exist: rkt never creates host paths), or the pod's
/// directory for an empty volume, made on first use with the volume's mode and owner.
fn volume_source(pod_dir: &Path, volume: &Volume) -> io::Result<PathBuf> {
    match (volume.kind, &volume.source) {
        (VolumeKind::Host, Some(source)) => {
            fs::metadata(source)
                .map_err(|e| io::Error::new(e.kind(), format!("its source {source}: {e}")))?;
            Ok(PathBuf::from(source))
        }
        (VolumeKind::Host, None) => Err(io::Error::other("a host volume without a source")),
        (VolumeKind::Empty, _) => {
            let dir = shared_volume_dir(pod_dir, volume.name.as_str());
            if !dir.exists() {
                let parent = dir.parent().unwrap_or(pod_dir);
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)?;
                fs::DirBuilder::new().mode(0o700).create(&dir)?;
                // chown first: it would clear setgid bits the mode asks for.
                std::os::unix::fs::chown(&dir, Some(volume.uid()), Some(volume.gid()))?;
                fs::set_permissions(
                    &dir,
                    std::os::unix::fs::PermissionsExt::from_mode(volume.mode_bits()),
                )?;
            }
            Ok(dir)
        }
    }
}

fn bind(
    app_root: &Path,
    source: &Path,
    mount: &Mount,
    volume: &Volume,
    read_only: bool,
) -> io::Result<()> {
    let is_dir = fs::metadata(source)?.is_dir();
    let root = rustix::fs::open(
        app_root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let target = resolve_target(&root, &mount.path, is_dir)?;
    let target_path = fd_path(&target);
    // Host volumes are recursive unless asked otherwise (pods.md); an empty volume has
    // nothing mounted below it.
    let recursive = volume.kind == VolumeKind::Host && volume.recursive();
    if recursive {
        rustix::mount::mount_bind_recursive(source, &target_path)?;
    } else {
        rustix::mount::mount_bind(source, &target_path)?;
    }
    if read_only {
        // The descriptor still names the directory under the new mount: open the target
        // again (through the same in-root resolution) to reach the mount itself.
        let mounted = open_in_root(&root, relative(&mount.path), OFlags::PATH)?;
        match set_read_only(&mounted, recursive) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) && !recursive => {
                remount_read_only(&mounted)?
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                return Err(io::Error::other(
                    "a read-only recursive volume needs Linux 5.12 or later (mount_setattr); \
                     on this kernel give the volume recursive=false",
                ));
            }
            other => other?,
        }
    }
    Ok(())
}

/// Makes the mount at `mounted`, and with `recursive` every mount below it, read-only, keeping
/// its other flags (nosuid, nodev, noexec): `mount_setattr(2)`, Linux 5.12. A remount would
/// reach the top mount only, leaving a recursive volume's submounts writable.
fn set_read_only(mounted: &OwnedFd, recursive: bool) -> io::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: the descriptor is open for the whole call, the path is a NUL-terminated empty
    // string, and `attr` is a live `mount_attr` whose size is passed with it; the kernel only
    // reads both. rustix has no wrapper for this call.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mounted.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Kernels before 5.12: a read-only bind remount of the top mount only.
fn remount_read_only(mounted: &OwnedFd) -> io::Result<()> {
    // Keep the source's nosuid/nodev/noexec: a remount would otherwise drop them.
    let kept = rustix::fs::fstatvfs(mounted)?.f_flag;
    let mut flags = MountFlags::BIND | MountFlags::RDONLY;
    for (have, keep) in [
        (StatVfsMountFlags::NOSUID, MountFlags::NOSUID),
        (StatVfsMountFlags::NODEV, MountFlags::NODEV),
        (StatVfsMountFlags::NOEXEC, MountFlags::NOEXEC),
    ] {
        if kept.contains(have) {
            flags |= keep;
        }
    }
    rustix::mount::mount_remount(fd_path(mounted), flags, "")?;
    Ok(())
}

fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

fn relative(target: &str) -> &str {
    target.trim_start_matches('/')
}

fn open_in_root(root: &OwnedFd, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let path = if path.is_empty() { "." } else { path };
    Ok(rustix::fs::openat2(
        root,
        path,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?)
}

/// Opens (`O_PATH`) the mount target `target` inside the root `root`, creating what is
/// missing: directories owned by root with mode 0755 (the spec's rule), and an empty file as
/// the last component when the source is a file. Every step resolves from `root` as if it
/// were `/`, so an image's symlink (`/data -> /etc`, `-> /../../host`) stays inside.
pub fn resolve_target(root: &OwnedFd, target: &str, is_dir: bool) -> io::Result<OwnedFd> {
    let components: Vec<&str> = relative(target)
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if components.contains(&"..") {
        return Err(io::Error::other("the target must not hold \"..\""));
    }
    let mut current = open_in_root(root, "", OFlags::PATH | OFlags::DIRECTORY)?;
    for (i, name) in components.iter().enumerate() {
        let so_far = components[..=i].join("/");
        let last = i + 1 == components.len();
        let want_dir = !last || is_dir;
        let kind = if want_dir {
            OFlags::DIRECTORY
        } else {
            OFlags::empty()
        };
        match open_in_root(root, &so_far, OFlags::PATH | kind) {
            Ok(fd) => current = fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Created relative to the resolved parent; a name that is a dangling symlink
                // is not followed (mkdirat and O_EXCL never follow the last component).
                let made = if want_dir {
                    rustix::fs::mkdirat(&current, *name, Mode::from_raw_mode(0o755))
                } else {
                    rustix::fs::openat(
                        &current,
                        *name,
                        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    )
                    .map(drop)
                };
                made.map_err(|e| {
                    let why = if e == rustix::io::Errno::EXIST {
                        "it is a symlink to a path the app's root does not have".to_owned()
                    } else {
                        e.to_string()
                    };
                    io::Error::new(
                        io::Error::from(e).kind(),
                        format!("creating /{so_far} in the app's root: {why}"),
                    )
                })?;
                current = open_in_root(root, &so_far, OFlags::PATH | kind)?;
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("/{so_far} in the app's root: {e}"),
                ));
            }
        }
    }
    // The file or directory the bind goes onto must match the source's kind.
    let is_dir_target = rustix::fs::fstat(&current)?.st_mode & 0o170000 == 0o040000;
    if is_dir_target != is_dir {
        return Err(io::Error::other(format!(
            "the target is a {} but the source a {}",
            if is_dir_target { "directory" } else { "file" },
            if is_dir { "directory" } else { "file" },
        )));
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn root_fd(dir: &Path) -> OwnedFd {
        rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn missing_directories_are_made_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let fd = resolve_target(&root_fd(dir.path()), "/var/lib/data", true).unwrap();
        let made = dir.path().join("var/lib/data");
        assert!(made.is_dir());
        let m = fs::metadata(&made).unwrap();
        assert_eq!((m.dev(), m.ino()), {
            let st = rustix::fs::fstat(&fd).unwrap();
            (st.st_dev, st.st_ino)
        });
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(dir.path().join("var"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o755
        );
    }

    #[test]
    fn an_image_symlink_out_of_the_root_stays_inside() {
        // The "host" directory a hostile image points at, outside the app's root.
        let host = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(host.path(), root.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../../..", root.path().join("up")).unwrap();
        // The link's target does not exist inside the root: refused, nothing made anywhere.
        let e = resolve_target(&root_fd(root.path()), "/abs/x", true).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        assert!(!host.path().join("x").exists());
        // Once it does, the mount goes there, inside the root.
        let inside = root.path().join(host.path().strip_prefix("/").unwrap());
        fs::create_dir_all(&inside).unwrap();
        let fd = resolve_target(&root_fd(root.path()), "/abs/x", true).unwrap();
        let fd2 = resolve_target(&root_fd(root.path()), "/up/y", true).unwrap();
        assert!(!host.path().join("x").exists());
        assert!(inside.join("x").is_dir(), "{inside:?}");
        assert!(root.path().join("y").is_dir());
        for fd in [fd, fd2] {
            let link = fs::read_link(fd_path(&fd)).unwrap();
            assert!(link.starts_with(root.path()), "{link:?}");
        }
    }

    #[test]
    fn a_dangling_symlink_target_is_not_followed() {
        let host = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let victim = host.path().join("victim");
        std::os::unix::fs::symlink(&victim, root.path().join("file")).unwrap();
        // As a file target: the link resolves (in the root) to a missing path whose parent
        // does not exist there either; nothing is created on the host.
        assert!(resolve_target(&root_fd(root.path()), "/file", false).is_err());
        assert!(!victim.exists());
    }

    #[test]
    fn files_and_directories_must_match() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("d")).unwrap();
        fs::write(root.path().join("f"), "x").unwrap();
        let e = resolve_target(&root_fd(root.path()), "/d", false).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        let e = resolve_target(&root_fd(root.path()), "/f", true).unwrap_err();
        assert!(
            e.to_string().contains("Not a directory") || e.kind() == io::ErrorKind::NotADirectory,
            "{e}"
        );
        // A file target is created as an empty file.
        resolve_target(&root_fd(root.path()), "/etc/conf", false).unwrap();
        assert!(root.path().join("etc/conf").is_file());
    }
}
