//! Getting a real systemd: the host's, or one booted in namespaces, torn down on drop.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a booting systemd may take to reach a settled state before we give up.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

pub enum Systemd {
    /// The host's own PID 1.
    Host,
    /// A systemd booted by `sandbox-boot.sh`; killed (with everything in it) on drop.
    Sandbox {
        pid: u32,
        unshare_pid: u32,
        state: PathBuf,
    },
}

impl Systemd {
    /// Uses the host's systemd if PID 1 is systemd, else boots one in namespaces.
    pub fn start(checkout: &Path) -> Result<Systemd, String> {
        let pid1 = fs::read_to_string("/proc/1/comm").unwrap_or_default();
        let forced = std::env::var("RKT_SYSTEST_SANDBOX").is_ok_and(|v| v == "1");
        if pid1.trim() == "systemd" && !forced {
            let systemd = Systemd::Host;
            systemd.wait_until_settled()?;
            return Ok(systemd);
        }
        Systemd::sandbox(checkout, "main")
    }

    /// Boots a systemd in namespaces on an overlay of the host's root (whatever PID 1 is), so
    /// that what a test installs goes to the overlay's tmpfs and leaves with the sandbox;
    /// `name` tells several apart.
    pub fn sandbox(checkout: &Path, name: &str) -> Result<Systemd, String> {
        let state = std::env::temp_dir().join(format!("rkt-systest-{}-{name}", std::process::id()));
        let script = checkout.join("tests/system/sandbox-boot.sh");
        let out = Command::new(&script)
            .arg(&state)
            .arg(checkout)
            .output()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let read_pid = |name: &str| -> Result<u32, String> {
            fs::read_to_string(state.join(name))
                .map_err(|e| format!("reading {name}: {e}"))?
                .trim()
                .parse()
                .map_err(|e| format!("{name}: {e}"))
        };
        let systemd = Systemd::Sandbox {
            pid: read_pid("pid")?,
            unshare_pid: read_pid("unshare.pid")?,
            state,
        };
        systemd.wait_until_settled()?;
        Ok(systemd)
    }

    pub fn describe(&self) -> String {
        match self {
            Systemd::Host => "the host's PID 1".to_owned(),
            Systemd::Sandbox { pid, .. } => format!("booted in namespaces, host PID {pid}"),
        }
    }

    /// A command that runs inside this systemd's namespaces.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match self {
            Systemd::Host => Command::new(program),
            Systemd::Sandbox { pid, .. } => {
                let mut cmd = Command::new("nsenter");
                cmd.args(["-t", &pid.to_string(), "-m", "-p", "-u", "--"])
                    .arg(program);
                cmd
            }
        }
    }

    /// Where this process finds `path` of this systemd's file system (its `/tmp` is its own).
    pub fn outside_path(&self, path: &str) -> PathBuf {
        match self {
            Systemd::Host => PathBuf::from(path),
            Systemd::Sandbox { pid, .. } => PathBuf::from(format!("/proc/{pid}/root{path}")),
        }
    }

    /// Runs `args` inside and returns what it did.
    pub fn run(&self, args: &[&str]) -> Result<Output, String> {
        self.command(args[0])
            .args(&args[1..])
            .output()
            .map_err(|e| format!("running {args:?}: {e}"))
    }

    /// Runs `args` inside; it must succeed. Returns its stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String, String> {
        let out = self.run(args)?;
        if !out.status.success() {
            return Err(format!(
                "{args:?} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Waits (bounded) until `systemctl is-system-running` says running or degraded.
    fn wait_until_settled(&self) -> Result<(), String> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < BOOT_TIMEOUT {
            if let Ok(out) = self.run(&["systemctl", "is-system-running"]) {
                last = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                if last == "running" || last == "degraded" {
                    return Ok(());
                }
            }
            sleep(Duration::from_millis(50));
        }
        let console = match self {
            Systemd::Sandbox { state, .. } => {
                let log = fs::read_to_string(state.join("console.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            }
            Systemd::Host => String::new(),
        };
        Err(format!(
            "systemd did not settle within {BOOT_TIMEOUT:?} (last state {last:?})\n{console}"
        ))
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        if let Systemd::Sandbox {
            pid,
            unshare_pid,
            state,
        } = self
        {
            // Killing PID 1 of the namespace kills every process in it; its mounts go with
            // the mount namespace.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            for _ in 0..200 {
                if !Path::new(&format!("/proc/{unshare_pid}")).exists() {
                    break;
                }
                sleep(Duration::from_millis(25));
            }
            let _ = fs::remove_dir_all(state);
        }
    }
}
