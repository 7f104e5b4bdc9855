//! The network files each app finds in its `/etc` (`resolv.conf`, `hosts`), written into the
//! app's root (its overlay's upper layer, or its copy) before the apps start.
//!
//! The app's root comes from an image, so every path in it is resolved inside it
//! (`openat2(RESOLVE_IN_ROOT)`), and a file already there is replaced rather than written
//! through: an image's `/etc/resolv.conf -> /etc/shadow` link cannot make us write elsewhere.

use std::fs;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

use super::Stage1Error;
use rkt_pod::{DnsOptions, HostsOptions};

/// Writes the app's `/etc/resolv.conf` (only if DNS options were given: otherwise the
/// image's own stays) and `/etc/hosts` (the given entries; without any, a default one with
/// localhost and the hostname, only if the image has none).
pub fn write_app_net_files(
    app_root: &Path,
    hostname: &str,
    dns: &DnsOptions,
    hosts: &HostsOptions,
) -> Result<(), Stage1Error> {
    let etc = open_etc(app_root)?;
    let etc_path = app_root.join("etc");
    if dns.is_set() {
        let text = match dns.resolv_conf() {
            Some(text) => text,
            None => read_host_file("/etc/resolv.conf")?,
        };
        replace_file(&etc, &etc_path, "resolv.conf", text.as_bytes())?;
    }
    if hosts.is_set() {
        let base = match hosts.from_host {
            true => Some(read_host_file("/etc/hosts")?),
            false => None,
        };
        let text = hosts.hosts_file(base.as_deref(), hostname);
        replace_file(&etc, &etc_path, "hosts", text.as_bytes())?;
    } else if rustix::fs::statat(&etc, "hosts", AtFlags::SYMLINK_NOFOLLOW).is_err() {
        let text = hosts.hosts_file(None, hostname);
        replace_file(&etc, &etc_path, "hosts", text.as_bytes())?;
    }
    Ok(())
}

fn read_host_file(path: &str) -> Result<String, Stage1Error> {
    fs::read_to_string(path).map_err(|e| Stage1Error::io("reading the host's", Path::new(path), e))
}

/// The app's `/etc`, resolved inside its root; created if the image has none.
fn open_etc(app_root: &Path) -> Result<OwnedFd, Stage1Error> {
    let root = rustix::fs::open(
        app_root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Stage1Error::io("opening", app_root, e))?;
    let open = || {
        rustix::fs::openat2(
            &root,
            "etc",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    };
    let etc_path = app_root.join("etc");
    match open() {
        Ok(fd) => Ok(fd),
        Err(rustix::io::Errno::NOENT) => {
            // A dangling `/etc` link makes this fail (EEXIST): we do not follow it.
            rustix::fs::mkdirat(&root, "etc", Mode::from_raw_mode(0o755))
                .map_err(|e| Stage1Error::io("creating", &etc_path, e))?;
            open().map_err(|e| Stage1Error::io("opening", &etc_path, e))
        }
        Err(e) => Err(Stage1Error::io("opening", &etc_path, e)),
    }
}

/// Replaces `etc/<name>` with a new regular file (whatever was there, link or file, is
/// unlinked first, never followed).
fn replace_file(
    etc: &OwnedFd,
    etc_path: &Path,
    name: &str,
    text: &[u8],
) -> Result<(), Stage1Error> {
    let path = etc_path.join(name);
    match rustix::fs::unlinkat(etc, name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(Stage1Error::io("replacing", &path, e)),
    }
    let fd = rustix::fs::openat(
        etc,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .map_err(|e| Stage1Error::io("creating", &path, e))?;
    let mut file = fs::File::from(fd);
    file.write_all(text)
        .map_err(|e: io::Error| Stage1Error::io("writing", &path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn dns(servers: &[&str]) -> DnsOptions {
        let servers: Vec<String> = servers.iter().map(|s| s.to_string()).collect();
        DnsOptions::parse(&servers, &[], &[]).unwrap()
    }

    #[test]
    fn writes_resolv_conf_and_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = HostsOptions::parse(&["10.0.0.2=db".to_owned()]).unwrap();
        write_app_net_files(dir.path(), "pod", &dns(&["10.0.0.53"]), &hosts).unwrap();
        let resolv = fs::read_to_string(dir.path().join("etc/resolv.conf")).unwrap();
        assert!(resolv.contains("nameserver 10.0.0.53\n"), "{resolv}");
        let hosts = fs::read_to_string(dir.path().join("etc/hosts")).unwrap();
        assert!(hosts.contains("127.0.1.1 pod\n10.0.0.2 db\n"), "{hosts}");
    }

    #[test]
    fn an_image_link_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, "untouched").unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        symlink(&victim, root.join("etc/resolv.conf")).unwrap();
        write_app_net_files(&root, "pod", &dns(&["10.0.0.53"]), &HostsOptions::default()).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
        let meta = fs::symlink_metadata(root.join("etc/resolv.conf")).unwrap();
        assert!(meta.is_file());
    }

    #[test]
    fn an_etc_link_out_of_the_root_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("real-etc")).unwrap();
        // Absolute: resolved inside the root, so it lands in root/<outside path>, not outside.
        symlink(outside.path(), root.join("etc")).unwrap();
        let result =
            write_app_net_files(&root, "pod", &dns(&["10.0.0.53"]), &HostsOptions::default());
        assert!(!outside.path().join("resolv.conf").exists());
        assert!(!outside.path().join("hosts").exists());
        // Either refused (the link's target does not exist inside the root) or written inside.
        if result.is_ok() {
            assert!(
                root.join(outside.path().strip_prefix("/").unwrap())
                    .join("resolv.conf")
                    .exists()
            );
        }
    }

    #[test]
    fn an_image_hosts_file_stays_without_entries() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::write(dir.path().join("etc/hosts"), "1.2.3.4 mine\n").unwrap();
        write_app_net_files(
            dir.path(),
            "pod",
            &DnsOptions::default(),
            &HostsOptions::default(),
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("etc/hosts")).unwrap(),
            "1.2.3.4 mine\n"
        );
        assert!(!dir.path().join("etc/resolv.conf").exists());
        let empty = tempfile::tempdir().unwrap();
        write_app_net_files(
            empty.path(),
            "pod",
            &DnsOptions::default(),
            &HostsOptions::default(),
        )
        .unwrap();
        let hosts = fs::read_to_string(empty.path().join("etc/hosts")).unwrap();
        assert!(hosts.contains("127.0.0.1 localhost") && hosts.contains("127.0.1.1 pod"));
    }
}
