//! [`PodRuntime`]: a pod's whole run, as the main process of its unit. It takes the prepared
//! pod, builds its stage1 root and its apps' roots, brings up its network, boots it under
//! systemd-nspawn, registers it with machined, starts each app as a unit of the pod's systemd
//! over the pod's own bus, tells the host's systemd when the pod is ready, waits for the apps
//! (or a stop request), records their exits, and halts the pod leaving nothing mounted or
//! leased. The `rkt-stage1` binary is a shim around it.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::thread;
use std::time::{Duration, Instant};

use rkt_pod::{PodNet, PodOptions, Pods, RunningPod};
use rkt_schema::PodManifest;
use rkt_store::Store;

use crate::NspawnOptions;
use crate::systemd::{Machine, ServiceRun, Systemd};

/// The status recorded for an app that could not run or whose end was not seen (as rkt's own
/// failures: 254).
const APP_FAILED: u8 = 254;
/// How long the pod's systemd may take to boot to the pod target.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a pod could not run (or not to its end).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The pod, as prepared, is not one the runtime can run (its options contradict it).
    #[error("{0}")]
    Refused(String),
    /// The pod, or a part of it, failed as it ran.
    #[error("{0}")]
    Failed(String),
    /// A step of the run failed; the cause is its source.
    #[error("{step}")]
    Step {
        step: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An error of one of the layers below, whole.
    #[error(transparent)]
    Layer(Box<dyn std::error::Error + Send + Sync>),
}

macro_rules! layer_errors {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for RuntimeError {
            fn from(e: $t) -> RuntimeError {
                RuntimeError::Layer(Box::new(e))
            }
        }
    )*};
}

layer_errors!(
    rkt_pod::PodError,
    rkt_pod::PortError,
    rkt_pod::SysctlError,
    rkt_store::StoreError,
    crate::Stage1Error,
    crate::CniError,
    crate::SocketsError,
    crate::AppSetupError,
    crate::systemd::SystemdError,
    std::io::Error,
);

/// Names the step a failure happened in: `result.step("starting systemd-nspawn")?`.
trait Step<T> {
    fn step(self, step: &str) -> Result<T, RuntimeError>;
    fn with_step(self, step: impl FnOnce() -> String) -> Result<T, RuntimeError>;
}

impl<T, E: Into<Box<dyn std::error::Error + Send + Sync>>> Step<T> for Result<T, E> {
    fn step(self, step: &str) -> Result<T, RuntimeError> {
        self.with_step(|| step.to_owned())
    }

    fn with_step(self, step: impl FnOnce() -> String) -> Result<T, RuntimeError> {
        self.map_err(|e| RuntimeError::Step {
            step: step(),
            source: e.into(),
        })
    }
}

impl<T> Step<T> for Option<T> {
    /// `None` is a pod the runtime cannot run: `step` says what is missing.
    fn step(self, missing: &str) -> Result<T, RuntimeError> {
        self.ok_or_else(|| RuntimeError::Refused(missing.to_owned()))
    }

    fn with_step(self, missing: impl FnOnce() -> String) -> Result<T, RuntimeError> {
        self.ok_or_else(|| RuntimeError::Refused(missing()))
    }
}

/// Runs pods: see the module's documentation.
#[derive(Debug, Clone)]
pub struct PodRuntime {
    dir: PathBuf,
    bus_helper: PathBuf,
}

impl PodRuntime {
    /// The runtime for the pods of the rkt directory `dir`; `bus_helper` is the stage1 binary,
    /// which reaches a `--private-users` pod's bus from inside its user namespace
    /// (`rkt-stage1 --connect-pod-bus LEADER`, see [`connect_pod_bus`]).
    pub fn new(dir: &Path, bus_helper: &Path) -> PodRuntime {
        PodRuntime {
            dir: dir.to_owned(),
            bus_helper: bus_helper.to_owned(),
        }
    }

    /// Runs prepared pod `uuid` until its apps are done (or, for a mutable pod, until `stop`
    /// is set), as the main process of the pod's unit: takes the pod (it is running while
    /// this holds its lock), boots it, starts its apps, reports readiness to the systemd that
    /// started us, records each app's exit, and leaves nothing mounted or leased. Returns the
    /// first non-zero app status (0 if none). Setting `stop` stops the apps, then the pod.
    pub fn run(&self, uuid: &rkt_pod::PodUuid, stop: &AtomicBool) -> Result<u8, RuntimeError> {
        let pods = Pods::open(&self.dir)?;
        let store = Store::open(&self.dir)?;
        let pod = pods.find(uuid)?;
        let manifest = pod.manifest()?;
        let options = pod.options()?;
        let running = pods.take_for_run(&pod)?;
        let result = run_pod(
            &store,
            &running,
            &manifest,
            &options,
            stop,
            &self.bus_helper,
        );
        release(&running);
        result
    }
}

/// What the pod holds outside its directory goes: its network address back to the network
/// (gc does it if we die before this), and nothing of it stays mounted.
fn release(running: &RunningPod) {
    if let Err(e) = crate::teardown_pod_network(&running.path, &running.uuid) {
        tracing::warn!("{e}");
    }
    if let Err(e) = crate::unmount_pod(&running.path) {
        tracing::warn!("{e}");
    }
}

fn run_pod(
    store: &Store,
    pod: &RunningPod,
    manifest: &PodManifest,
    options: &PodOptions,
    stop: &AtomicBool,
    bus_helper: &Path,
) -> Result<u8, RuntimeError> {
    let apps = &manifest.apps;
    let volumes = &manifest.volumes;
    // Checked at prepare; checked again, as the manifest is read back from disk.
    let sysctls = rkt_pod::pod_sysctls(manifest)?;
    if !sysctls.is_empty() && options.net == PodNet::Host {
        return Err(RuntimeError::Refused(
            "the pod's sysctls would change the host's network: it has --net=host".to_owned(),
        ));
    }
    let machine_id = pod.uuid.machine_id();
    let root = crate::build_stage1_root(&pod.path, &machine_id)?;
    let hostname = options
        .hostname
        .clone()
        .unwrap_or_else(|| rkt_pod::default_hostname(&pod.uuid));
    crate::write_pod_hostname(&root, &hostname)?;
    let mut plans = Vec::new();
    // Apps whose image says they send READY=1 (Type=notify units).
    let mut notify = Vec::new();
    // The ports each app declares (where passed sockets go in a pod of several apps).
    let mut ports = Vec::new();
    for app in apps {
        let id = app
            .image
            .id
            .as_ref()
            .step("pod manifest without image ID")?;
        let manifest = store.manifest(id)?;
        let image_app = match &app.app {
            Some(a) => a.clone(),
            None => manifest.app.clone().step("image has no app")?,
        };
        plans.push(crate::prepare_app(
            store, &pod.path, app, &image_app, volumes, options, &hostname,
        )?);
        ports.push(image_app.ports.clone());
        notify.push(crate::supports_notify(&manifest));
    }

    let users: Vec<(u32, u32)> = plans.iter().map(|p| (p.uid, p.gid)).collect();
    let groups: Vec<u32> = plans
        .iter()
        .flat_map(|p| std::iter::once(p.gid).chain(p.supplementary_gids.iter().copied()))
        .collect();
    crate::add_app_identities(&root, &users, &groups)?;
    // A mutable pod's apps change while it runs: a limit summed from the first ones would
    // confine those added later.
    if !options.mutable {
        limit_pod_on_cgroup_v1(&pod.uuid, &plans)?;
    }
    let mut network = None;
    let netns = match (&options.net, &options.network) {
        (PodNet::Cni, Some(conf)) => {
            let mappings = rkt_pod::port_mappings(&manifest.ports, &ports.concat())?;
            network = Some(crate::setup_pod_network(
                &pod.path, &pod.uuid, conf, &mappings,
            )?);
            Some(crate::netns_path(&pod.path))
        }
        (PodNet::Cni, None) => {
            return Err(RuntimeError::Refused(
                "the pod's options name a CNI network without its configuration".to_owned(),
            ));
        }
        _ if !manifest.ports.is_empty() => {
            return Err(RuntimeError::Refused(
                "the pod forwards ports but has no network of its own (--net=host or none)"
                    .to_owned(),
            ));
        }
        _ => None,
    };
    // Only known once the pod's network is up (its gateway).
    match crate::metadata_url(&pod.path, options.net, network.as_ref()) {
        Ok(Some(url)) => {
            for plan in &mut plans {
                plan.set_metadata_url(&url);
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("apps get no AC_METADATA_URL: {e}"),
    }
    // The listening sockets `rkt run` was given (socket activation), for the pod's one app.
    let sockets = crate::receive_listen_fds(&pod.uuid)?;
    let passed = sockets.len();
    let takers: Vec<(&str, &[rkt_schema::Port])> = plans
        .iter()
        .zip(&ports)
        .map(|(plan, ports)| (plan.name.as_str(), ports.as_slice()))
        .collect();
    // Per app: the sockets it gets (an app that gets some is socket-activated).
    let routed = match passed {
        0 => plans.iter().map(|_| Vec::new()).collect(),
        _ => crate::route_sockets(sockets, &takers)?,
    };
    for ((plan, sockets), notify) in plans.iter().zip(&routed).zip(&notify) {
        if sockets.is_empty() {
            continue;
        }
        let mut unit = crate::AppUnit::for_app(plan);
        if *notify {
            unit.expect_ready_notification();
        }
        crate::write_socket_units(
            &root.join(crate::POD_UNIT_PATH.trim_start_matches('/')),
            &plan.name,
            sockets,
            &unit.unit_file(),
        )?;
    }
    let socket_activated: Vec<bool> = routed.iter().map(|s| !s.is_empty()).collect();
    let sockets: Vec<crate::ListenSocket> = routed.into_iter().flatten().collect();
    let mut nspawn = start_nspawn(pod, &root, &hostname, options, netns.as_deref(), &sockets)?;
    // `rkt run --interactive` gave us its terminal: nspawn connects the pod's console to it.
    let interactive = std::io::stdin().is_terminal();
    if interactive && plans.len() != 1 {
        return Err(RuntimeError::Refused(format!(
            "an interactive pod has one app, and this one has {}",
            plans.len()
        )));
    }
    // The pod's systemd has them now (nspawn passed them on).
    drop(sockets);
    let machine = pod.uuid.machine_name();
    let started = register_machine(&machine, &pod.uuid, nspawn.id(), &root).and_then(|leader| {
        // In the pod's network namespace, before any app can look.
        crate::apply_sysctls(leader, &sysctls)?;
        let bus = PodBus {
            leader,
            user_namespace: options.private_users,
            helper: bus_helper.to_owned(),
        };
        if options.mutable {
            // Before any app starts, so that no exit is missed.
            record_app_exits(&bus, &pod.path)?;
        }
        let apps = start_apps(&bus, plans, &notify, &socket_activated, interactive)?;
        // Off the boot's critical path, while the apps run; halt_pod waits for it.
        let (journal_bus, pod_dir, uuid) = (bus.clone(), pod.path.clone(), pod.uuid.clone());
        thread::spawn(move || keep_journal(&journal_bus, &pod_dir, &uuid));
        Ok((bus, apps))
    });
    let (bus, runs) = match started {
        Ok(started) => started,
        Err(e) => {
            stop_nspawn(&mut nspawn);
            let _ = nspawn.wait();
            return Err(e);
        }
    };
    if options.mutable {
        drop(runs);
        return run_mutable_pod(pod, &bus, &mut nspawn, stop);
    }
    // Each app thread says when it is ready and how it ended, so the pod is ready once every
    // app is, and ends as soon as the last app does. (The status comes with the message: a
    // thread's own end could lag behind it, and waiting on that cost up to a poll period.)
    let (event_tx, event_rx) = std::sync::mpsc::channel::<AppEvent>();
    let ready = Arc::new(AtomicUsize::new(0));
    let app_count = runs.len();
    for (index, ((name, bus, mut run), notify)) in runs.into_iter().zip(notify).enumerate() {
        let events = event_tx.clone();
        let machine = machine.clone();
        let ready = ready.clone();
        let pod_dir = pod.path.clone();
        thread::spawn(move || {
            if notify && let Err(e) = run.wait_active() {
                tracing::warn!("app {name}: waiting for READY=1: {e}");
            }
            // An app that ended before it was ready does not hold the pod back either.
            ready.fetch_add(1, Ordering::Relaxed);
            let _ = events.send(AppEvent::Ready);
            let status = match run.wait() {
                Ok(Some(exit)) => exit.shell_status(),
                Ok(None) => {
                    tracing::warn!(
                        "app {name} did not run; see journalctl -M {machine} -u {name}.service"
                    );
                    APP_FAILED as i32
                }
                Err(e) => {
                    tracing::warn!("app {name}: {e}");
                    APP_FAILED as i32
                }
            };
            drop(bus);
            // At once, for `rkt app status` while the other apps run (rewritten below).
            if let Err(e) = crate::write_app_status(&pod_dir, &name, status) {
                tracing::warn!("app {name}: {e}");
            }
            let _ = events.send(AppEvent::Ended(index, status));
        });
    }
    // Only the threads hold senders now: if one died without a word, the channel says so.
    drop(event_tx);
    let mut statuses: Vec<Option<i32>> = vec![None; app_count];
    let mut told_ready = false;
    // Wait for the apps, or for a request to stop the pod.
    while statuses.iter().any(Option::is_none) {
        if !told_ready && ready.load(Ordering::Relaxed) == app_count {
            // The pod's unit becomes active: `rkt run` (and a Type=notify unit running it) go on.
            notify_systemd("READY=1");
            told_ready = true;
        }
        if stop.swap(false, Ordering::Relaxed) {
            tracing::warn!("stopping pod {}", pod.uuid);
            // Apps first (SIGTERM, then SIGKILL after their stop timeout), so that their
            // exit statuses are known; the pod itself goes down afterwards.
            match bus.connect() {
                Ok(bus) => {
                    for app in apps {
                        if let Err(e) = bus.stop_unit(&format!("{}.service", app.name)) {
                            tracing::warn!("{e}");
                        }
                    }
                }
                Err(e) => tracing::warn!("{e}"),
            }
        }
        if let Ok(Some(status)) = nspawn.try_wait() {
            tracing::warn!("the pod's systemd-nspawn ended early ({status})");
            break;
        }
        // Wakes at once when an app ends; otherwise looks at the stop flag now and then.
        match event_rx.recv_timeout(Duration::from_millis(50)) {
            Ok(AppEvent::Ended(index, status)) => statuses[index] = Some(status),
            Ok(AppEvent::Ready) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if !told_ready {
        // Apps that ended before this loop saw them ready (a quick one, like /bin/true): the
        // pod was ready all the same. Without READY=1 systemd would count the pod's start as
        // failed (a Type=notify service that exited first).
        notify_systemd("READY=1");
    }
    let mut first_failure = 0u8;
    for (app, status) in apps.iter().zip(statuses) {
        let status = status.unwrap_or(APP_FAILED as i32);
        crate::write_app_status(&pod.path, app.name.as_str(), status)?;
        if first_failure == 0 && status != 0 {
            first_failure = u8::try_from(status).unwrap_or(APP_FAILED);
        }
    }
    // The apps are done: the pod's network goes while its systemd halts (neither needs the
    // other), which takes the CNI DEL (20-40 ms) off the end of a pod with a network. `run`
    // tries again if this failed.
    thread::scope(|s| {
        s.spawn(|| {
            if let Err(e) = crate::teardown_pod_network(&pod.path, &pod.uuid) {
                tracing::warn!("{e}");
            }
        });
        halt_pod(&bus, &mut nspawn, &pod.path, &pod.uuid);
    });
    Ok(first_failure)
}

/// What an app's thread tells the pod's main loop.
enum AppEvent {
    /// Started (and, for a `Type=notify` app, said READY=1), or ended before that.
    Ready,
    /// Ended with this shell status (the index is the app's in the pod manifest).
    Ended(usize, i32),
}

/// In a mutable pod, apps are started and stopped by `rkt app` while the pod runs, and their
/// units are collected as they end: a thread of ours watches the pod's systemd for as long
/// as the pod runs and records each app's exit as it happens (`apps/<app>/exit`, what `rkt
/// app status` and `rkt status` read).
fn record_app_exits(pod_bus: &PodBus, pod_dir: &Path) -> Result<(), RuntimeError> {
    let bus = pod_bus.connect()?;
    let exits = bus.service_exits()?;
    let pod_dir = pod_dir.to_owned();
    thread::spawn(move || {
        let _bus = bus;
        for (unit, exit) in exits {
            let Some(app) = unit.strip_suffix(".service") else {
                continue;
            };
            // Only the pod's apps (not its D-Bus or journald), as the manifest says now.
            let is_app = std::fs::read(rkt_pod::PodDir::at(&pod_dir).manifest())
                .ok()
                .and_then(|b| rkt_schema::PodManifest::from_json(&b).ok())
                .is_some_and(|m| m.apps.iter().any(|a| a.name.as_str() == app));
            if is_app && let Err(e) = crate::write_app_status(&pod_dir, app, exit.shell_status()) {
                tracing::warn!("app {app}: {e}");
            }
        }
    });
    Ok(())
}

/// A mutable pod stays up, whatever its apps do, until it is asked to stop; `rkt app`
/// changes its apps meanwhile. Then every app in its manifest *now* (added ones too) is
/// stopped and its exit, as its unit recorded it, written for `rkt status`.
fn run_mutable_pod(
    pod: &RunningPod,
    pod_bus: &PodBus,
    nspawn: &mut Child,
    stop: &AtomicBool,
) -> Result<u8, RuntimeError> {
    notify_systemd("READY=1");
    while !stop.load(Ordering::Relaxed) {
        if let Ok(Some(status)) = nspawn.try_wait() {
            tracing::warn!("the pod's systemd-nspawn ended early ({status})");
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    tracing::warn!("stopping pod {}", pod.uuid);
    // Under the manifest lock, so that no `rkt app add` is half done while we look.
    let _lock = rkt_common::lock::FileLock::acquire(
        &pod.path.join(rkt_pod::MANIFEST_LOCK_FILE),
        rkt_common::lock::LockKind::Exclusive,
    )
    .step("locking the pod manifest")?;
    let manifest_path = pod.dir().manifest();
    let manifest = std::fs::read(&manifest_path)
        .with_step(|| format!("reading {}", manifest_path.display()))
        .and_then(|b| {
            rkt_schema::PodManifest::from_json(&b)
                .with_step(|| format!("reading {}", manifest_path.display()))
        })?;
    let mut stopped = Vec::new();
    if let Ok(bus) = pod_bus.connect() {
        for app in &manifest.apps {
            let unit = format!("{}.service", app.name);
            if bus
                .service_state(&unit)
                .ok()
                .flatten()
                .is_some_and(|s| s.is_running())
            {
                // Its exit is recorded anew by the watching thread.
                let _ = std::fs::remove_file(pod.dir().app_exit(app.name.as_str()));
                if let Err(e) = bus.stop_unit(&unit) {
                    tracing::warn!("{e}");
                }
                stopped.push(app.name.as_str());
            }
        }
        for app in &stopped {
            if let Err(e) = bus.wait_unit_inactive(&format!("{app}.service")) {
                tracing::warn!("{e}");
            }
        }
    }
    // The watching thread writes each stopped app's exit as systemd reports it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && !stopped
            .iter()
            .all(|app| crate::read_app_status(&pod.path, app).is_some())
    {
        thread::sleep(Duration::from_millis(10));
    }
    let first_failure = manifest
        .apps
        .iter()
        .filter_map(|app| crate::read_app_status(&pod.path, app.name.as_str()))
        .find(|status| *status != 0)
        .map_or(0, |status| u8::try_from(status).unwrap_or(APP_FAILED));
    halt_pod(pod_bus, nspawn, &pod.path, &pod.uuid);
    Ok(first_failure)
}

/// Under cgroup v1 (hybrid hosts) the apps' MemoryMax and CPUQuota cannot take effect inside
/// the pod (its systemd has no memory or cpu controller of its own): the host's systemd limits
/// the pod's own unit instead (see [`rkt_pod::plan::pod_memory_limit`]).
fn limit_pod_on_cgroup_v1(
    uuid: &rkt_pod::PodUuid,
    plans: &[rkt_pod::plan::AppPlan],
) -> Result<(), RuntimeError> {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return Ok(());
    }
    let mut properties = Vec::new();
    if let Some(bytes) = rkt_pod::plan::pod_memory_limit(plans) {
        properties.push(format!("MemoryMax={bytes}"));
    }
    if let Some(usec) = rkt_pod::plan::pod_cpu_quota(plans) {
        // systemctl takes a percentage of one CPU: 10 000 µs per s is 1 %.
        properties.push(format!("CPUQuota={}%", usec.div_ceil(10_000)));
    }
    if properties.is_empty() {
        return Ok(());
    }
    let status = Command::new("systemctl")
        .args(["set-property", "--runtime", &uuid.unit_name()])
        .args(&properties)
        .status()
        .step("running systemctl set-property for the pod's limits")?;
    if !status.success() {
        return Err(RuntimeError::Failed(format!(
            "could not set the pod's limits {properties:?} (systemctl set-property: {status})"
        )));
    }
    Ok(())
}

/// Starts every app as `<name>.service` in the pod, over a connection of its own to the pod's
/// systemd, and returns the runs to wait on.
fn start_apps(
    pod_bus: &PodBus,
    plans: Vec<rkt_pod::plan::AppPlan>,
    notify: &[bool],
    socket_activated: &[bool],
    interactive: bool,
) -> Result<Vec<(String, Systemd, ServiceRun)>, RuntimeError> {
    let mut runs = Vec::new();
    // Each app's stderr, as a journal stream of its own (in the order of the apps that get one).
    let mut streams = if interactive {
        Vec::new()
    } else {
        let apps: Vec<&str> = plans
            .iter()
            .zip(socket_activated)
            .filter(|(_, socket)| !**socket)
            .map(|(plan, _)| plan.name.as_str())
            .collect();
        pod_bus.stderr_streams(&apps)?
    }
    .into_iter();
    for ((plan, notify), socket_activated) in plans.into_iter().zip(notify).zip(socket_activated) {
        let bus = pod_bus.connect()?;
        if *socket_activated {
            // A unit file next to its socket (written before the boot); its socket may have
            // started it already.
            let run = bus
                .run_service_unit(&format!("{}.service", plan.name))
                .with_step(|| format!("starting app {}", plan.name))?;
            runs.push((plan.name, bus, run));
            continue;
        }
        let mut unit = crate::AppUnit::for_app(&plan);
        if *notify {
            unit.expect_ready_notification();
        }
        if interactive {
            unit.attach_to_console();
        } else if let Some(stream) = streams.next() {
            unit.send_stderr_to(stream);
        }
        let run = bus
            .start_service(&format!("{}.service", plan.name), &unit.dbus_properties())
            .with_step(|| format!("starting app {}", plan.name))?;
        runs.push((plan.name, bus, run));
    }
    Ok(runs)
}

/// Runs systemd-nspawn for the pod and waits until the pod's systemd has booted: nspawn gets
/// its own notification socket (ours is for telling systemd that the *apps* have started).
fn start_nspawn(
    pod: &RunningPod,
    root: &Path,
    hostname: &str,
    options: &PodOptions,
    netns: Option<&Path>,
    sockets: &[crate::ListenSocket],
) -> Result<Child, RuntimeError> {
    // A file-system socket of the host's (see `NOTIFY_DIR`): reachable from wherever nspawn
    // starts (inside the pod's network namespace too, under --private-users on a CNI
    // network), and from no pod. Removed when this function returns: the boot is over.
    let notify = crate::bind_notify_socket(&pod.uuid)?;
    let socket = &notify.socket;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut command = crate::nspawn_command(&NspawnOptions {
        uuid: &pod.uuid,
        stage1_root: root,
        // We register the pod ourselves, as service "rkt" (nspawn would say "nspawn").
        register: false,
        hostname,
        private_network: options.net == PodNet::None,
        netns,
        private_users: options.private_users,
    });
    command.env("NOTIFY_SOCKET", &notify.path);
    if std::io::stdin().is_terminal() {
        // The console is the user's terminal: the pod's systemd keeps its messages off it.
        command.arg("--log-target=null");
    }
    // Passed sockets go to nspawn as its LISTEN_FDS; it hands them to the pod's systemd.
    let (mut command, _inherited) = match sockets {
        [] => (command, Vec::new()),
        sockets => crate::with_listen_fds(&command, sockets)?,
    };
    // nspawn and the whole pod under it, unless the user lifted seccomp filtering.
    if !options.no_seccomp {
        match crate::InitGuard::new() {
            Some(guard) => guard.apply_to(&mut command),
            None => {
                tracing::warn!("apps can signal the pod's PID 1: no filter for this architecture")
            }
        }
    }
    let mut child = command.spawn().step(
        "starting systemd-nspawn under the pod's seccomp filter (is the systemd-container \
         package installed?)",
    )?;
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < BOOT_TIMEOUT {
        if let Ok(n) = socket.recv(&mut buf)
            && String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == "READY=1")
        {
            return Ok(child);
        }
        if let Some(status) = child.try_wait()? {
            return Err(RuntimeError::Failed(format!(
                "systemd-nspawn exited before the pod was up ({status}); see journalctl -u {}",
                pod.uuid.unit_name()
            )));
        }
    }
    stop_nspawn(&mut child);
    Err(RuntimeError::Failed(format!(
        "the pod did not boot within {BOOT_TIMEOUT:?}"
    )))
}

/// Registers the pod with machined as `machine`, service "rkt", class container, its leader
/// the pod's PID 1 (nspawn's child), so that machinectl, `journalctl -M` and `systemd-run -M`
/// know it; returns the leader's PID.
fn register_machine(
    machine: &str,
    uuid: &str,
    nspawn_pid: u32,
    root: &Path,
) -> Result<u32, RuntimeError> {
    let children =
        std::fs::read_to_string(format!("/proc/{nspawn_pid}/task/{nspawn_pid}/children"))
            .step("finding the pod's PID 1")?;
    let leader: u32 = children
        .split_whitespace()
        .next()
        .and_then(|pid| pid.parse().ok())
        .step("systemd-nspawn has no child: the pod's PID 1 is gone")?;
    // For `rkt status` (pid=, started=) and `rkt enter`.
    crate::write_pod_pid(
        root.parent().and_then(Path::parent).unwrap_or(root),
        &leader.to_string(),
    )?;
    let mut id = [0u8; 16];
    let hex = uuid.replace('-', "");
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
    }
    Systemd::system()?.register_machine(&Machine {
        name: machine,
        id,
        service: "rkt",
        leader,
        root,
    })?;
    Ok(leader)
}

/// Ends a pod whose apps are done: a forced halt of its systemd (nothing left to stop in
/// order, and ~40 ms faster than stopping journald, D-Bus and the mounts one by one), then
/// the clean nspawn shutdown if that did not end it.
fn halt_pod(bus: &PodBus, nspawn: &mut Child, pod_dir: &Path, uuid: &str) {
    wait_journal_flushed(bus.leader, pod_dir, uuid);
    sync_journal(bus);
    if let Err(e) = bus.connect().and_then(|bus| Ok(bus.halt_now()?)) {
        tracing::warn!("{e}; shutting the pod down through nspawn");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = nspawn.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    stop_nspawn(nspawn);
    let _ = nspawn.wait();
}

/// Before the pod halts: its journal must have reached `/var/log/journal` (the host's, or
/// the pod's own; the flush asked for once the apps started), or what the apps logged goes
/// with the pod's `/run`. Bounded.
fn wait_journal_flushed(leader: u32, pod_dir: &Path, uuid: &str) {
    if !crate::pod_journal_dir(pod_dir, uuid).is_dir() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while !crate::pod_journal_flushed(leader) {
        if Instant::now() > deadline {
            tracing::warn!(
                "the pod's journald did not write its journal to /var in time; \
                 its last lines may be missing after the pod ends"
            );
            return;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Before the pod halts: journald has read every line the apps wrote (an app's last lines
/// may still sit in its stream socket when its unit ends, and the halt would drop them).
/// SIGRTMIN+1 asks journald to sync, which it does after every event queued before, and
/// then touches `/run/systemd/journal/synced`. Bounded.
fn sync_journal(bus: &PodBus) {
    let synced = PathBuf::from(format!(
        "/proc/{}/root/run/systemd/journal/synced",
        bus.leader
    ));
    let mtime = || std::fs::metadata(&synced).and_then(|m| m.modified()).ok();
    let before = mtime();
    let asked = bus
        .connect()
        .and_then(|b| Ok(b.kill_main("systemd-journald.service", libc::SIGRTMIN() + 1)?));
    if let Err(e) = asked {
        tracing::warn!("asking the pod's journald to sync: {e}");
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while mtime() == before {
        if Instant::now() > deadline {
            tracing::warn!("the pod's journald did not sync in time");
            return;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Asks nspawn to shut the pod down cleanly (it passes SIGRTMIN+3 to the pod's systemd).
fn stop_nspawn(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        // Not reaped yet (try_wait said so), so the PID is still nspawn's.
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(child),
            rustix::process::Signal::TERM,
        );
    }
}

/// Sends a notification to the systemd that started us, if it asked for one.
fn notify_systemd(message: &str) {
    if let Err(e) = crate::systemd::sd_notify(message) {
        tracing::warn!("telling systemd {message}: {e}");
    }
}

/// Makes the pod's journal outlive it: asks its journald to write to the host-linked
/// `/var/log/journal/<machine-id>` (not done at boot, see `crate::POD_TARGET`), after
/// giving that directory to the pod's root under `--private-users`
/// (`crate::give_journal_to_pod` says why). Only warns: the pod runs either way, and
/// `journalctl -M` reads its journal while it does.
fn keep_journal(bus: &PodBus, pod_dir: &Path, uuid: &str) {
    let dir = crate::pod_journal_dir(pod_dir, uuid);
    if !dir.is_dir() {
        tracing::warn!("the pod has no journal directory: its journal ends with the pod");
        return;
    }
    let kept = (|| -> Result<(), RuntimeError> {
        // (The pod's own directory was in its root when nspawn gave the root to the pod.)
        if bus.user_namespace && dir == crate::host_journal_dir(uuid) {
            crate::give_journal_to_pod(&dir, bus.leader)
                .with_step(|| format!("giving {} to the pod", dir.display()))?;
        }
        Ok(crate::flush_pod_journal(&bus.connect()?)?)
    })();
    if let Err(e) = kept {
        tracing::warn!("keeping the pod's journal after it ends: {e:#}");
    }
}

/// How stage1 reaches the pod's systemd: its bus, through the pod's PID 1 (a host PID).
#[derive(Clone)]
struct PodBus {
    leader: u32,
    /// The pod has a user namespace of its own (`--private-users`).
    user_namespace: bool,
    /// The stage1 binary, which connects from inside that namespace.
    helper: PathBuf,
}

impl PodBus {
    /// A new connection. In a user namespace the host's root is nobody to the pod's bus, so
    /// the connection is made by a helper in that namespace (this binary, entered into it by
    /// nsenter) and handed back over a socket pair.
    fn connect(&self) -> Result<Systemd, RuntimeError> {
        if !self.user_namespace {
            return Ok(Systemd::pod(self.leader)?);
        }
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let leader = self.leader.to_string();
        // The helper is handed over open, as stdin, and run as /proc/self/fd/0: as the pod's
        // root, the host's root is "other" to the directories on its path, which may be closed.
        let helper = std::fs::File::open(&self.helper)
            .with_step(|| format!("opening {}", self.helper.display()))?;
        let status = Command::new("nsenter")
            .args(["--user", "--target", &leader, "--", "/proc/self/fd/0"])
            .args(["--connect-pod-bus", &leader])
            .stdin(helper)
            .stdout(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                theirs,
            )))
            .status()
            .step("running nsenter to reach the pod's bus from its user namespace")?;
        if !status.success() {
            return Err(RuntimeError::Failed(format!(
                "could not reach the pod's bus from its user namespace ({status})"
            )));
        }
        ours.set_read_timeout(Some(Duration::from_secs(10)))?;
        let fd = crate::recv_sockets(&ours)
            .step("receiving the pod's bus connection")?
            .into_iter()
            .next()
            .step("the helper sent no connection to the pod's bus")?
            .fd;
        let path = crate::systemd::pod_bus_path(self.leader);
        Ok(Systemd::pod_over(
            std::os::unix::net::UnixStream::from(fd),
            path,
        )?)
    }
}

impl PodBus {
    /// Opens the stderr journal stream of each app in `apps` (see `crate::journal_streams`),
    /// through a helper in the pod's PID namespace.
    fn stderr_streams(&self, apps: &[&str]) -> Result<Vec<std::os::fd::OwnedFd>, RuntimeError> {
        if apps.is_empty() {
            return Ok(Vec::new());
        }
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let leader = self.leader.to_string();
        let helper = std::fs::File::open(&self.helper)
            .with_step(|| format!("opening {}", self.helper.display()))?;
        let status = Command::new("nsenter")
            .args(["--pid", "--target", &leader, "--", "/proc/self/fd/0"])
            .args(["--journal-streams", &leader])
            .args(apps)
            .stdin(helper)
            .stdout(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                theirs,
            )))
            .status()
            .step("running nsenter to open the apps' stderr streams")?;
        if !status.success() {
            return Err(RuntimeError::Failed(format!(
                "could not open the apps' stderr streams in the pod ({status})"
            )));
        }
        ours.set_read_timeout(Some(Duration::from_secs(10)))?;
        let streams: Vec<_> = crate::recv_sockets(&ours)
            .step("receiving the apps' stderr streams")?
            .into_iter()
            .map(|s| s.fd)
            .collect();
        if streams.len() != apps.len() {
            return Err(RuntimeError::Failed(format!(
                "{} stderr streams for {} apps",
                streams.len(),
                apps.len()
            )));
        }
        Ok(streams)
    }
}

/// `rkt-stage1 --journal-streams LEADER APP…`, run in the pod's PID namespace: opens each
/// app's stderr stream and sends them back on stdout (a unix socket), in order.
pub fn journal_streams(leader: &str, apps: &[String]) -> Result<(), RuntimeError> {
    use std::os::fd::AsFd;
    let leader: u32 = leader.parse().step("--journal-streams takes a PID")?;
    let mut streams = Vec::new();
    for app in apps {
        streams.push(crate::ListenSocket {
            fd: crate::app_streams::open_stderr_stream(leader, app)
                .with_step(|| format!("app {app}"))?,
            name: app.clone(),
        });
    }
    let stdout = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .step("stdout")?;
    crate::send_sockets(&std::os::unix::net::UnixStream::from(stdout), &streams)
        .step("sending the streams back")?;
    Ok(())
}

/// `rkt-stage1 --connect-pod-bus LEADER`, run in the pod's user namespace: connects to the
/// pod's bus and sends the connection back on stdout (a unix socket).
pub fn connect_pod_bus(leader: &str) -> Result<(), RuntimeError> {
    use std::os::fd::AsFd;
    let leader: u32 = leader.parse().step("--connect-pod-bus takes a PID")?;
    let path = crate::systemd::pod_bus_path(leader);
    let bus = std::os::unix::net::UnixStream::connect(&path)
        .with_step(|| format!("connecting to {path}"))?;
    let stdout = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .step("stdout")?;
    let back = std::os::unix::net::UnixStream::from(stdout);
    crate::send_sockets(
        &back,
        &[crate::ListenSocket {
            fd: bus.into(),
            name: "bus".into(),
        }],
    )
    .step("sending the connection back")?;
    Ok(())
}
