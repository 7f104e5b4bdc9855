//! The systemd-nspawn command line for a pod, and the socket it says the pod booted on.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Stage1Error, rundir};
use rkt_pod::PodUuid;

/// Where stage1 listens for nspawn's `READY=1`, one socket per pod (`<uuid>`), in a
/// root-only directory (see [`super::rundir`]: no pod can send a false `READY=1` or take the
/// name first). Short enough for a socket address (108 bytes) whatever `--dir` is.
pub const NOTIFY_DIR: &str = "/run/rkt/notify";

/// The pod's notify socket in [`NOTIFY_DIR`].
pub fn notify_socket_path(uuid: &str) -> PathBuf {
    Path::new(NOTIFY_DIR).join(uuid)
}

/// nspawn's notify socket for one pod, removed when dropped.
#[derive(Debug)]
pub struct NotifySocket {
    pub socket: UnixDatagram,
    pub path: PathBuf,
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the pod's notify socket in [`NOTIFY_DIR`] (made root-only if it was not), replacing
/// one a killed stage1 left for this pod.
pub fn bind_notify_socket(uuid: &str) -> Result<NotifySocket, Stage1Error> {
    let dir = Path::new(NOTIFY_DIR);
    rundir::private_dir(dir).map_err(|e| Stage1Error::io("preparing", dir, e))?;
    let path = notify_socket_path(uuid);
    rundir::remove_socket(&path).map_err(|e| Stage1Error::io("removing", &path, e))?;
    let socket = UnixDatagram::bind(&path).map_err(|e| Stage1Error::io("binding", &path, e))?;
    Ok(NotifySocket { socket, path })
}

/// Removes the pod's notify socket, if a stage1 that died left it.
pub fn remove_notify_socket(uuid: &str) -> io::Result<()> {
    rundir::remove_socket(&notify_socket_path(uuid))
}

/// What varies between pods.
#[derive(Debug, Clone)]
pub struct NspawnOptions<'a> {
    pub uuid: &'a PodUuid,
    pub stage1_root: &'a Path,
    /// Register with machined under the calling unit (`--keep-unit`).
    pub register: bool,
    /// The pod's hostname (nspawn's default would be the machine name).
    pub hostname: &'a str,
    /// A network namespace of the pod's own, with only loopback (`--net=none`).
    pub private_network: bool,
    /// A network namespace made beforehand (a CNI network's).
    pub netns: Option<&'a Path>,
    /// A user namespace of the pod's own, its files chowned into it.
    pub private_users: bool,
}

/// `systemd-nspawn` booting the host's systemd in the stage1 root, to the lean pod target,
/// with the journal linked to the host so `journalctl -M` works while the pod runs.
pub fn nspawn_command(opts: &NspawnOptions<'_>) -> Command {
    // In a user namespace of its own, nspawn cannot join a network namespace the host's user
    // namespace owns (EPERM from setns): it is started inside that namespace instead, and the
    // pod shares it as nspawn's own.
    let enter_netns = opts.private_users.then_some(opts.netns).flatten();
    let mut cmd = match enter_netns {
        Some(path) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", path.display()))
                .arg("--")
                .arg("systemd-nspawn");
            c
        }
        None => Command::new("systemd-nspawn"),
    };
    cmd.arg("--quiet")
        .arg("--keep-unit")
        .arg(format!(
            "--register={}",
            if opts.register { "yes" } else { "no" }
        ))
        .arg(format!("--machine={}", opts.uuid.machine_name()))
        .arg(format!("--uuid={}", opts.uuid))
        .arg(format!("--hostname={}", opts.hostname))
        .arg("--directory")
        .arg(opts.stage1_root)
        .arg("--bind-ro=/usr")
        .arg("--link-journal=try-host")
        .arg("--notify-ready=yes")
        .arg("--kill-signal=SIGRTMIN+3")
        .arg(format!(
            "--setenv=SYSTEMD_UNIT_PATH={}",
            super::root::POD_UNIT_PATH
        ))
        // No generators: a pod has no fstab, gettys or SysV scripts to turn into units, and
        // running a dozen of them costs more than the rest of its unit loading.
        .arg(format!(
            "--setenv=SYSTEMD_GENERATOR_PATH={}",
            super::root::POD_NO_GENERATORS
        ))
        .arg(format!(
            "--setenv=SYSTEMD_ENVIRONMENT_GENERATOR_PATH={}",
            super::root::POD_NO_GENERATORS
        ))
        .args(opts.private_network.then_some("--private-network"))
        .args(
            opts.netns
                .filter(|_| enter_netns.is_none())
                .map(|p| format!("--network-namespace-path={}", p.display())),
        )
        // The stage1 root is chowned into the range (idmapped mounts fail on it: it has
        // mounts below it); the apps' overlays and /usr are other file systems and stay as
        // they are (owned by the range's nobody, readable).
        .args(opts.private_users.then_some("--private-users=pick"))
        .args(
            opts.private_users
                .then_some("--private-users-ownership=chown"),
        )
        .arg("--boot")
        // Arguments for the pod's systemd: no boot status lines in stage1's log.
        .arg("--")
        .arg("--show-status=no");
    // nspawn's own seccomp allow-list costs ~40 ms to compile at every start (measured: pod
    // systemd exec'd 55–60 ms after nspawn's spawn with it, 16–19 ms without). Every app unit
    // carries its own filter, applied by the pod's systemd (rkt's default blocklist unless the
    // image or `--insecure-options=seccomp` say otherwise), and its own capability bounding
    // set; what runs outside app units is the host's systemd, journald and dbus, from the
    // host's /usr. This only reaches nspawn: the pod's systemd gets a fresh environment.
    cmd.env("SYSTEMD_SECCOMP", "0");
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nspawn_skips_its_own_seccomp_filter_which_the_app_units_carry() {
        let cmd = nspawn_command(&NspawnOptions {
            uuid: &uuid(),
            stage1_root: Path::new("/pod/stage1/rootfs"),
            register: true,
            hostname: "h",
            private_network: false,
            netns: None,
            private_users: false,
        });
        let env: Vec<_> = cmd.get_envs().collect();
        assert!(env.contains(&(
            std::ffi::OsStr::new("SYSTEMD_SECCOMP"),
            Some(std::ffi::OsStr::new("0"))
        )));
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
        assert!(
            !args.iter().any(|a| a.contains("SYSTEMD_SECCOMP")),
            "not passed into the pod: {args:?}"
        );
    }

    #[test]
    fn notify_socket_paths_fit_a_socket_address() {
        let path = notify_socket_path("397d9a96-ff3c-4a2f-8de9-f00b02540300");
        assert!(path.as_os_str().len() < 108, "{}", path.display());
        assert!(path.starts_with(NOTIFY_DIR));
    }

    fn uuid() -> PodUuid {
        PodUuid::parse("397d9a96-ff3c-4a2f-8de9-f00b02540300").unwrap()
    }

    fn args(private_network: bool) -> Vec<String> {
        let root = Path::new("/pod/stage1/rootfs");
        let cmd = nspawn_command(&NspawnOptions {
            uuid: &uuid(),
            stage1_root: root,
            register: false,
            hostname: "web-1",
            private_network,
            netns: None,
            private_users: false,
        });
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn net_none_gets_a_private_network_before_the_boot_arguments() {
        let private = args(true);
        let at = private.iter().position(|a| a == "--private-network");
        let boot_args = private.iter().position(|a| a == "--");
        assert!(at.is_some() && at < boot_args, "{private:?}");
        assert!(!args(false).iter().any(|a| a == "--private-network"));
        assert!(private.iter().any(|a| a == "--hostname=web-1"));
    }

    #[test]
    fn private_users_on_a_cni_network_start_inside_its_namespace() {
        let netns = Path::new("/pod/netns");
        let cmd = nspawn_command(&NspawnOptions {
            uuid: &uuid(),
            stage1_root: Path::new("/pod/stage1/rootfs"),
            register: false,
            hostname: "web-1",
            private_network: false,
            netns: Some(netns),
            private_users: true,
        });
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(cmd.get_program(), "nsenter");
        assert_eq!(args[..3], ["--net=/pod/netns", "--", "systemd-nspawn"]);
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("--network-namespace-path"))
        );
    }

    #[test]
    fn private_users_pick_a_range_and_chown_the_root_before_the_boot_arguments() {
        let cmd = nspawn_command(&NspawnOptions {
            uuid: &uuid(),
            stage1_root: Path::new("/pod/stage1/rootfs"),
            register: false,
            hostname: "web-1",
            private_network: false,
            netns: None,
            private_users: true,
        });
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let boot_args = args.iter().position(|a| a == "--");
        for flag in ["--private-users=pick", "--private-users-ownership=chown"] {
            let at = args.iter().position(|a| a == flag);
            assert!(at.is_some() && at < boot_args, "{flag}: {args:?}");
        }
        assert!(
            !self::tests::args(false)
                .iter()
                .any(|a| a.starts_with("--private-users"))
        );
    }
}
