//! The pod's stage1 root: `<pod>/stage1/rootfs`, booted by systemd-nspawn.

use rkt_common::fs::{replace_atomic, write_atomic};
use std::ffi::CString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

use super::Stage1Error;
use rkt_pod::PodDir;

/// The unit the pod's systemd boots to: journald and D-Bus (to start apps), nothing else,
/// which is most of why a pod starts fast. journald's flush to the journal files the host
/// reads is not part of the boot (it took ~11 ms of it, mostly creating the journal file):
/// stage1 asks for it once the apps are started and waits for it before the pod halts
/// (`journal::flush_pod_journal`, `journal::pod_journal_flushed`).
pub const POD_TARGET: &str = "rkt-pod.target";

const POD_TARGET_UNIT: &str = "\
[Unit]
Description=rkt pod
Documentation=man:rkt(1)
Wants=systemd-journald.socket dbus.socket dbus.service
After=systemd-journald.socket dbus.socket
AllowIsolate=yes
";

/// The host units a pod's systemd needs: journald and D-Bus to run apps and keep their
/// logs, the slices the apps' units go into, and what shutting down takes.
const POD_UNITS: &[&str] = &[
    "systemd-journald.service",
    "systemd-journald.socket",
    "systemd-journald-dev-log.socket",
    "dbus.service",
    "dbus.socket",
    "-.slice",
    "system.slice",
    "sockets.target",
    "sysinit.target",
    "paths.target",
    "timers.target",
    "slices.target",
    "local-fs.target",
    "swap.target",
    "shutdown.target",
    "umount.target",
    "final.target",
    "halt.target",
    "systemd-halt.service",
    "poweroff.target",
    "systemd-poweroff.service",
    "reboot.target",
    "systemd-reboot.service",
    "exit.target",
    "systemd-exit.service",
];

/// An empty directory: where the pod's systemd looks for generators (it runs none).
pub const POD_NO_GENERATORS: &str = "/etc/systemd/no-generators";

/// Where the pod's systemd looks for units (see [`POD_UNITS`]).
pub const POD_UNIT_PATH: &str = "/etc/systemd/system";

pub fn stage1_rootfs(pod_dir: &Path) -> PathBuf {
    PodDir::at(pod_dir).stage1_root()
}

/// Where app `app` sees its root, as a path inside the pod (for `RootDirectory=`).
pub fn app_rootfs_in_pod(app: &str) -> String {
    format!("/opt/stage2/{app}/rootfs")
}

/// Creates the stage1 root of a pod: empty mount points, `/usr`-merged links, `/etc` with the
/// pod's machine ID, the users D-Bus needs, and the lean default target.
pub fn build_stage1_root(pod_dir: &Path, machine_id: &str) -> Result<PathBuf, Stage1Error> {
    let root = stage1_rootfs(pod_dir);
    for dir in [
        "usr",
        "etc/systemd/system",
        "etc/systemd/no-generators",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "var",
        "opt/stage2",
    ] {
        let path = root.join(dir);
        fs::create_dir_all(&path).map_err(|e| Stage1Error::io("creating", &path, e))?;
    }
    // Debian and most distributions merge /bin, /sbin and /lib into /usr.
    for link in ["bin", "sbin", "lib", "lib64"] {
        if fs::symlink_metadata(Path::new("/").join(link)).is_ok_and(|m| m.is_symlink()) {
            let path = root.join(link);
            if !path.exists() {
                symlink(format!("usr/{link}"), &path)
                    .map_err(|e| Stage1Error::io("creating", &path, e))?;
            }
        }
    }
    // Without a persistent journal on the host for nspawn to link in, the pod's journald
    // keeps its journal here (it writes to /var/log/journal when the directory exists).
    if !Path::new("/var/log/journal").is_dir() {
        let journal = root.join("var/log/journal").join(machine_id);
        fs::create_dir_all(&journal).map_err(|e| Stage1Error::io("creating", &journal, e))?;
    }
    // systemd insists on /var/run being /run.
    let var_run = root.join("var/run");
    if fs::symlink_metadata(&var_run).is_err() {
        symlink("../run", &var_run).map_err(|e| Stage1Error::io("creating", &var_run, e))?;
    }
    let etc = root.join("etc");
    write(&etc.join("machine-id"), &format!("{machine_id}\n"))?;
    write(&etc.join("passwd"), &passwd())?;
    write(&etc.join("group"), &group())?;
    // nspawn checks for it before /usr is bound in, so a link into /usr would not do.
    let os_release = fs::read_to_string("/usr/lib/os-release")
        .or_else(|_| fs::read_to_string("/etc/os-release"))
        .unwrap_or_else(|_| "ID=linux\n".to_owned());
    write(&etc.join("os-release"), &os_release)?;
    let units = etc.join("systemd/system");
    write(&units.join(POD_TARGET), POD_TARGET_UNIT)?;
    // The pod's systemd loads only these (SYSTEMD_UNIT_PATH is this directory alone): loading
    // every unit of the host's /usr costs more than the rest of its boot.
    for unit in POD_UNITS {
        let link = units.join(unit);
        if !link.exists() && Path::new("/usr/lib/systemd/system").join(unit).exists() {
            symlink(format!("/usr/lib/systemd/system/{unit}"), &link)
                .map_err(|e| Stage1Error::io("creating", &link, e))?;
        }
    }
    let default = units.join("default.target");
    if !default.exists() {
        symlink(POD_TARGET, &default).map_err(|e| Stage1Error::io("creating", &default, e))?;
    }
    Ok(root)
}

/// The pod's hostname in the stage1 root's `/etc/hostname`, so that the pod's systemd keeps
/// the one nspawn set.
pub fn write_pod_hostname(stage1_root: &Path, hostname: &str) -> Result<(), Stage1Error> {
    write(&stage1_root.join("etc/hostname"), &format!("{hostname}\n"))
}

/// root, plus the host's entry for D-Bus's `messagebus` user (its IDs must match the host's
/// `/usr`, which the pod shares).
fn passwd() -> String {
    let host = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let mut out = "root:x:0:0:root:/root:/bin/sh\n".to_owned();
    out.extend(
        host.lines()
            .filter(|l| l.starts_with("messagebus:"))
            .map(|l| format!("{l}\n")),
    );
    out
}

fn group() -> String {
    let host = fs::read_to_string("/etc/group").unwrap_or_default();
    let mut out = "root:x:0:\n".to_owned();
    out.extend(
        host.lines()
            .filter(|l| l.starts_with("messagebus:"))
            .map(|l| format!("{l}\n")),
    );
    out
}

/// Gives the apps' UIDs and GIDs entries in the pod's own /etc/passwd and /etc/group: the
/// pod's systemd looks a unit's `User=`/`Group=` up there (not in the app's root) and refuses
/// to start an app whose IDs it cannot find.
pub fn add_app_identities(
    stage1_root: &Path,
    users: &[(u32, u32)],
    groups: &[u32],
) -> Result<(), Stage1Error> {
    let add = |db: &str, lines: Vec<(u32, String)>| -> Result<(), Stage1Error> {
        let path = stage1_root.join("etc").join(db);
        let mut text =
            fs::read_to_string(&path).map_err(|e| Stage1Error::io("reading", &path, e))?;
        for (id, line) in lines {
            let taken = text
                .lines()
                .any(|l| l.split(':').nth(2) == Some(id.to_string().as_str()));
            if !taken {
                text.push_str(&line);
            }
        }
        write(&path, &text)
    };
    add(
        "passwd",
        users
            .iter()
            .map(|&(uid, gid)| (uid, format!("app{uid}:x:{uid}:{gid}::/:/sbin/nologin\n")))
            .collect(),
    )?;
    add(
        "group",
        groups
            .iter()
            .map(|&gid| (gid, format!("app{gid}:x:{gid}:\n")))
            .collect(),
    )
}

fn write(path: &Path, text: &str) -> Result<(), Stage1Error> {
    fs::write(path, text).map_err(|e| Stage1Error::io("writing", path, e))
}

/// Mounts app `app`'s root filesystem in the pod: an overlay whose lower layer is the image's
/// rendered tree in the store, with a per-pod upper layer, so that starting a pod costs the
/// same whatever the image's size, and the store's tree is never written to.
pub fn mount_app_rootfs(
    pod_dir: &Path,
    app: &str,
    layers: &[PathBuf],
) -> Result<PathBuf, Stage1Error> {
    let pod = PodDir::at(pod_dir);
    let target = pod.app_rootfs(app);
    let upper = pod.overlay(app).join("upper");
    let work = pod.overlay(app).join("work");
    for dir in [&target, &upper, &work] {
        fs::create_dir_all(dir).map_err(|e| Stage1Error::io("creating", dir, e))?;
    }
    // The image's tree on top, its dependencies below (`:` separates them, `,` options).
    let lower = layers
        .iter()
        .map(|l| l.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    if layers
        .iter()
        .any(|l| l.to_string_lossy().contains([':', ',']))
    {
        return Err(Stage1Error::io(
            "mounting",
            &target,
            std::io::Error::other("the store's path holds ':' or ',', which overlayfs cannot take"),
        ));
    }
    let options = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    let options = CString::new(options)
        .map_err(|e| Stage1Error::io("mounting", &target, std::io::Error::other(e)))?;
    rustix::mount::mount(
        "overlay",
        &target,
        "overlay",
        MountFlags::empty(),
        options.as_c_str(),
    )
    .map_err(|e| Stage1Error::Overlay {
        app: app.to_owned(),
        target: target.clone(),
        error: e.into(),
    })?;
    Ok(target)
}

/// Mounts at `target`, read-only, what app `app` of a pod that is no longer running saw as
/// its root: its own upper layer over the image's trees `layers` (for `rkt export`). Unmount
/// it with `rustix::mount::unmount(target, DETACH)`.
pub fn mount_app_tree_read_only(
    pod_dir: &Path,
    app: &str,
    layers: &[PathBuf],
    target: &Path,
) -> Result<(), Stage1Error> {
    let upper = PodDir::at(pod_dir).overlay(app).join("upper");
    let all: Vec<&Path> = std::iter::once(upper.as_path())
        .chain(layers.iter().map(PathBuf::as_path))
        .collect();
    if all.iter().any(|l| l.to_string_lossy().contains([':', ','])) {
        return Err(Stage1Error::io(
            "mounting",
            target,
            std::io::Error::other("a layer's path holds ':' or ',', which overlayfs cannot take"),
        ));
    }
    // Only lower layers: whiteouts and opaque directories of the upper one are honoured, and
    // nothing can be written.
    let lower = all
        .iter()
        .map(|l| l.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let options = CString::new(format!("lowerdir={lower}"))
        .map_err(|e| Stage1Error::io("mounting", target, std::io::Error::other(e)))?;
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        MountFlags::RDONLY,
        options.as_c_str(),
    )
    .map_err(|e| Stage1Error::Overlay {
        app: app.to_owned(),
        target: target.to_owned(),
        error: e.into(),
    })
}

/// Unmounts everything mounted below the pod directory, deepest first.
pub fn unmount_pod(pod_dir: &Path) -> Result<(), Stage1Error> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = format!("{}/", pod_dir.display());
    let mounts: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    for mount in mounts.iter().rev() {
        rustix::mount::unmount(*mount, UnmountFlags::DETACH)
            .map_err(|e| Stage1Error::io("unmounting", Path::new(mount), e))?;
    }
    Ok(())
}

/// Records the host PID of the pod's PID 1 (`pid`); its mtime is when the pod started.
pub fn write_pod_pid(pod_dir: &Path, pid: &str) -> Result<(), Stage1Error> {
    let path = PodDir::at(pod_dir).pid();
    // Meaningless after a crash, which ends the pod too; read while the pod starts.
    replace_atomic(&path, format!("{pid}\n").as_bytes(), 0o644)
        .map_err(|e| Stage1Error::io("writing", &path, e))
}

/// The host PID of the pod's PID 1 and when it started, once stage1 recorded them.
pub fn read_pod_pid(pod_dir: &Path) -> Option<(u32, u64)> {
    let path = PodDir::at(pod_dir).pid();
    let pid = fs::read_to_string(&path).ok()?.trim().parse().ok()?;
    let started = rkt_pod::mtime_of(&path)?;
    Some((pid, started))
}

/// Records app `app`'s exit status in the pod directory (`apps/<app>/exit`).
pub fn write_app_status(pod_dir: &Path, app: &str, status: i32) -> Result<(), Stage1Error> {
    let dir = PodDir::at(pod_dir).app(app);
    fs::create_dir_all(&dir).map_err(|e| Stage1Error::io("creating", &dir, e))?;
    let path = PodDir::at(pod_dir).app_exit(app);
    write_atomic(&path, format!("{status}\n").as_bytes(), 0o644)
        .map_err(|e| Stage1Error::io("writing", &path, e))
}

/// App `app`'s exit status, if it has exited.
pub fn read_app_status(pod_dir: &Path, app: &str) -> Option<i32> {
    fs::read_to_string(PodDir::at(pod_dir).app_exit(app))
        .ok()?
        .trim()
        .parse()
        .ok()
}
