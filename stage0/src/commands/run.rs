//! `rkt run`: prepare a pod and hand it to systemd, which runs stage1 as the pod's own unit
//! (`rkt-<uuid>.service` in `machine.slice`); wait for it and exit with the app's status.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use rkt_pod::{Pod, Pods};

use crate::app_output::{Follower, Printer};
use crate::cli::{GlobalArgs, RunArgs, RunPreparedArgs};
use crate::handoff::{PodUnit, Systemd};

pub fn run(global: &GlobalArgs, args: &RunArgs) -> Result<u8> {
    require_systemd()?;
    if args.interactive && !std::io::stdin().is_terminal() {
        bail!("--interactive needs a terminal on stdin (run it from one, or under `script`)");
    }
    let pod = super::pods::prepare_pod(global, &args.spec)?;
    if args.interactive {
        let apps = pod.manifest()?.apps.len();
        if apps != 1 {
            bail!("--interactive attaches the terminal to one app, and this pod has {apps}");
        }
    }
    run_pod_with(global, &pod, args.interactive, true)
}

pub fn run_prepared(global: &GlobalArgs, args: &RunPreparedArgs) -> Result<u8> {
    require_systemd()?;
    if args.interactive && !std::io::stdin().is_terminal() {
        bail!("--interactive needs a terminal on stdin (run it from one, or under `script`)");
    }
    let pods = Pods::open(&global.dir)?;
    let pod = pods.find(&args.pod.uuid()?)?;
    if pod.state != rkt_pod::PodState::Prepared {
        bail!(
            "pod {} is {}: only a prepared pod can be run",
            pod.uuid,
            pod.state
        );
    }
    if args.interactive {
        let apps = pod.manifest()?.apps.len();
        if apps != 1 {
            bail!("--interactive attaches the terminal to one app, and this pod has {apps}");
        }
    }
    // What the original let run-prepared change: kept in the pod's options, read at start.
    let mut options = pod.options()?;
    let before = options.clone();
    if let Some(name) = args.hostname.as_deref() {
        options.hostname = rkt_pod::pod_hostname(Some(name))?;
    }
    if !args.dns.is_empty() || !args.dns_search.is_empty() || !args.dns_opt.is_empty() {
        options.dns = rkt_pod::DnsOptions::parse(&args.dns, &args.dns_search, &args.dns_opt)?;
    }
    if !args.hosts_entry.is_empty() {
        options.hosts = rkt_pod::HostsOptions::parse(&args.hosts_entry)?;
    }
    if options != before {
        pod.replace_options(&options)?;
    }
    run_pod_with(global, &pod, args.interactive, false)
}

/// Hands the pod to systemd and waits for it. `made_here`: the pod was prepared by this
/// command, and goes if it could not be started.
fn run_pod_with(global: &GlobalArgs, pod: &Pod, interactive: bool, made_here: bool) -> Result<u8> {
    let pods = Pods::open(&global.dir)?;
    // Held until the apps' statuses are read: a `rkt gc` in the meantime leaves the pod be
    // once it has exited. (If this process dies, the kernel lets go of it, and the pod is
    // collected as any other.)
    let watch = pods.watch(pod)?;
    let started = start_and_wait(global, pod, interactive);
    drop(watch);
    if made_here && started.is_err() {
        remove_if_never_started(&pods, pod);
    }
    started
}

/// A pod this command prepared whose stage1 never took it (the hand-off failed, or stage1
/// died before it started the pod) is not left behind for gc's 24 hours.
fn remove_if_never_started(pods: &Pods, pod: &Pod) {
    if let Ok(now) = pods.find(&pod.uuid)
        && now.state == rkt_pod::PodState::Prepared
        && let Err(e) = pods.remove(&now, &super::pods::release_pod)
    {
        eprintln!("rkt: removing pod {} that never started: {e}", pod.uuid);
    }
}

fn start_and_wait(global: &GlobalArgs, pod: &Pod, interactive: bool) -> Result<u8> {
    let stage1 = stage1_binary()?;
    let mutable = pod.options()?.mutable;
    let mut apps: Vec<String> = pod
        .manifest()?
        .apps
        .iter()
        .map(|a| a.name.to_string())
        .collect();
    let unit = pod.uuid.unit_name();
    let dir = std::fs::canonicalize(&global.dir).unwrap_or_else(|_| global.dir.clone());
    let description = format!("rkt pod {} ({})", pod.uuid, apps.join(", "));
    let caller = calling_unit();
    let systemd = Systemd::connect()?;
    // Socket activation: the sockets systemd gave us go to the pod's stage1, which asks for
    // them as it starts.
    let sockets = rkt_runtime::take_listen_fds()?;
    if !sockets.is_empty() {
        tracing::debug!("passing {} listening sockets to the pod", sockets.len());
        rkt_runtime::offer_listen_fds(&pod.uuid, sockets)?;
    }
    tracing::debug!("handing pod {} to systemd as {unit}", pod.uuid);
    systemd.start_pod(&PodUnit {
        name: &unit,
        description: &description,
        stage1: &stage1,
        dir: &dir,
        uuid: &pod.uuid,
        bound_to: caller.as_deref(),
        interactive,
    })?;
    // The pod's unit is active (its apps started, and those that speak sd_notify said
    // READY=1): a Type=notify unit running `rkt run` is ready now too.
    if let Err(e) = rkt_runtime::systemd::sd_notify("READY=1") {
        eprintln!("rkt: telling systemd the pod is ready: {e}");
    }
    // The apps' output, from the pod's journal (an --interactive app has the terminal).
    let follower = (!interactive).then(|| {
        Follower::start(
            &pod.uuid.machine_name(),
            Printer::new(apps.clone(), mutable),
        )
    });
    if caller.is_none() {
        // Ctrl-C or SIGTERM to `rkt run` stops the pod, as it did with the original rkt.
        // (Under a unit, BindsTo= does that.)
        stop_pod_on_signal(&unit)?;
    }
    systemd.wait_inactive(&unit)?;
    // stage1 holds the pod's lock until its very end; wait for that too (bounded: it is
    // exiting), so that `rkt status` right after `rkt run` says exited.
    let pods = Pods::open(&dir)?;
    for _ in 0..400 {
        match pods.find(&pod.uuid) {
            Ok(p) if p.state == rkt_pod::PodState::Running => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            _ => break,
        }
    }
    if let Some(follower) = follower {
        let journal = pods
            .find(&pod.uuid)
            .ok()
            .map(|p| crate::app_output::journal_dir(&p.path, &pod.uuid));
        follower.finish(journal.as_deref());
    }
    if mutable {
        // Its apps now, with those added while it ran.
        apps = pods
            .find(&pod.uuid)
            .and_then(|p| p.manifest())
            .map(|m| m.apps.iter().map(|a| a.name.to_string()).collect())
            .unwrap_or(apps);
    }
    let statuses: Vec<i32> = apps
        .iter()
        .filter_map(|a| rkt_runtime::read_app_status(&pods.run_dir().join(&pod.uuid), a))
        .collect();
    // A mutable pod's apps may never have been started, or removed: what they recorded counts.
    if statuses.len() != apps.len() && !mutable {
        bail!(
            "pod {} failed before its apps finished; see journalctl -u {unit}",
            pod.uuid
        );
    }
    let first = statuses.iter().copied().find(|s| *s != 0).unwrap_or(0);
    Ok(u8::try_from(first).unwrap_or(254))
}

/// Watches for SIGINT/SIGTERM on a thread and asks systemd to stop `unit` when one comes;
/// `rkt run` then sees the pod end and exits with the apps' statuses as usual.
fn stop_pod_on_signal(unit: &str) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing signal handlers")?;
    let unit = unit.to_owned();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            tracing::debug!("signal {signal}: stopping {unit}");
            if let Err(e) = Systemd::connect().and_then(|s| s.stop_unit(&unit)) {
                eprintln!("rkt: {e:#}");
            }
        }
    });
    Ok(())
}

/// Pods are systemd units: refuse early, before anything is made, without systemd.
fn require_systemd() -> Result<()> {
    // The same test sd_booted(3) makes.
    if !Path::new("/run/systemd/system").is_dir() {
        bail!("running pods needs systemd as the host's init (PID 1), and this host has none");
    }
    Ok(())
}

/// Where an installed rkt keeps stage1 (the package's layout).
const LIB_DIR: &str = "/usr/lib/rkt";

/// stage1: the one next to `rkt` (a build tree, or both binaries copied into one directory),
/// else the installed one in `/usr/lib/rkt`. Neighbour first, so a build tree's rkt never
/// hands its pods to an installed stage1 of another version.
fn stage1_binary() -> Result<PathBuf> {
    let me = std::env::current_exe().context("finding rkt's own path")?;
    let candidates = [
        me.with_file_name("rkt-stage1"),
        Path::new(LIB_DIR).join("rkt-stage1"),
    ];
    match candidates.iter().find(|c| c.is_file()) {
        Some(found) => Ok(found.clone()),
        None => bail!(
            "stage1 is missing: looked for {} and {}",
            candidates[0].display(),
            candidates[1].display()
        ),
    }
}

/// The service unit this process runs in, if it runs in one (systemd sets INVOCATION_ID).
fn calling_unit() -> Option<String> {
    std::env::var_os("INVOCATION_ID")?;
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let unit = path.rsplit('/').find(|c| c.ends_with(".service"))?;
    Some(unit.to_owned())
}

/// `rkt stop`: asks systemd to stop the pods' units. Gracefully, stage1 gets SIGTERM and shuts
/// the pod down (its apps get SIGTERM, then post-stop); `--force` kills everything at once.
pub fn stop(global: &GlobalArgs, args: &crate::cli::StopArgs) -> Result<u8> {
    let pods = Pods::open(&global.dir)?;
    let uuids = args.pods.uuids()?;
    let mut failed = 0;
    for query in &uuids {
        let result = pods
            .find(query)
            .map_err(anyhow::Error::from)
            .and_then(|pod| {
                if pod.state != rkt_pod::PodState::Running {
                    bail!("pod {} is {}, not running", pod.uuid, pod.state);
                }
                let unit = pod.uuid.unit_name();
                let status = if args.force {
                    Command::new("systemctl")
                        .args(["kill", "--signal=SIGKILL", &unit])
                        .status()
                } else {
                    Command::new("systemctl").args(["stop", &unit]).status()
                }
                .context("asking systemd to stop the pod")?;
                if !status.success() {
                    bail!("systemd could not stop {unit} ({status})");
                }
                Ok(pod)
            });
        match result {
            Ok(pod) => println!("{}", pod.uuid),
            Err(e) if uuids.len() == 1 => return Err(e),
            Err(e) => {
                eprintln!("rkt: stopping pod {query}: {e:#}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} pods could not be stopped", uuids.len());
    }
    Ok(0)
}

/// `rkt enter`: runs a command inside a running pod, in an app's root filesystem, as a
/// transient unit of the pod's systemd (so it is seen, logged and cleaned up like the apps).
pub fn enter(global: &GlobalArgs, args: &crate::cli::EnterArgs) -> Result<u8> {
    let pods = Pods::open(&global.dir)?;
    let pod = pods.find(&args.uuid)?;
    if pod.state != rkt_pod::PodState::Running {
        bail!(
            "pod {} is {}: only a running pod can be entered",
            pod.uuid,
            pod.state
        );
    }
    let apps: Vec<String> = pod
        .manifest()?
        .apps
        .iter()
        .map(|a| a.name.to_string())
        .collect();
    let app = match (&args.app, apps.as_slice()) {
        (Some(app), _) if apps.contains(app) => app.clone(),
        (Some(app), _) => bail!(
            "pod {} has no app {app:?}; its apps: {}",
            pod.uuid,
            apps.join(", ")
        ),
        (None, [only]) => only.clone(),
        (None, _) => bail!(
            "pod {} has several apps; choose one with --app ({})",
            pod.uuid,
            apps.join(", ")
        ),
    };
    let command = if args.command.is_empty() {
        vec!["/bin/sh".to_owned()]
    } else {
        args.command.clone()
    };
    let io = if std::io::stdin().is_terminal() {
        "--pty"
    } else {
        "--pipe"
    };
    let status = Command::new("systemd-run")
        .args(["--quiet", "--wait", "--collect", io])
        .arg(format!("--machine={}", pod.uuid.machine_name()))
        .arg(format!(
            "--property=RootDirectory={}",
            rkt_runtime::app_rootfs_in_pod(&app)
        ))
        .arg("--property=MountAPIVFS=yes")
        .arg(format!("--setenv=AC_APP_NAME={app}"))
        .arg("--")
        .args(&command)
        .status()
        .context("running systemd-run to enter the pod")?;
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(254))
}
