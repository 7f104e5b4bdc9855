//! `rkt app add|start|stop|rm|list|status`: the apps of a running mutable pod, each a
//! transient unit of the pod's own systemd, as the apps stage1 starts are.

use anyhow::{Context, Result, bail};
use rkt_pod::{AppState, Pod, PodState, Pods};
use rkt_runtime as s1;
use rkt_runtime::systemd::Systemd;
use rkt_schema::RuntimeApp;
use serde::Serialize;

use super::fetch::resolve_image;
use crate::cli::{AppAddArgs, AppArgs, AppCommand, AppListArgs, AppStatusArgs, Format, GlobalArgs};
use crate::output::{Table, rfc3339};

/// Runs the command; `Ok(code)` is the exit status (the pod's, for `rkt app sandbox`).
pub fn run(global: &GlobalArgs, command: AppCommand) -> Result<u8> {
    let done = match command {
        AppCommand::Sandbox(args) => return super::run::run(global, &args.run_args()),
        AppCommand::Exec(args) => return super::run::enter(global, &args),
        AppCommand::Add(args) => add(global, &args),
        AppCommand::Start(args) => start(global, &args),
        AppCommand::Stop(args) => stop(global, &args),
        AppCommand::Rm(args) => rm(global, &args),
        AppCommand::List(args) => list(global, &args),
        AppCommand::Status(args) => status(global, &args),
    };
    done.map(|()| 0)
}

/// Adds the app to the manifest with its root ready (mounted where the pod sees it), not
/// started. On any error the pod is left as it was: no mount, no manifest change.
fn add(global: &GlobalArgs, args: &AppAddArgs) -> Result<()> {
    let pods = Pods::open(&global.dir)?;
    let pod = pods.find(&args.uuid)?;
    // A pod that cannot take apps is refused before anything is fetched.
    drop(pods.edit_running_manifest(&pod)?);
    let store = global.store()?;
    let id = resolve_image(global, &store, &args.image, args.pull_policy.into())?;
    // Until the manifest names the app's image, `rkt image rm` waits (Store::hold_images).
    let _images = store.hold_images()?;
    let mut app = pods.new_app(&store, &id, &args.app_overrides)?;
    let app_def = s1::effective_app(&store, &app)?;
    let mut edit = pods.edit_running_manifest(&pod)?;
    // --mount names the pod's volumes; the image's mount points get theirs as at `rkt run`.
    edit.complete_mounts(&mut app, &app_def)?;
    edit.add(app.clone())?;
    let options = pod.options()?;
    let leader = leader(&pod)?;
    let hostname = options
        .hostname
        .clone()
        .unwrap_or_else(|| rkt_pod::default_hostname(&pod.uuid));
    let name = app.name.as_str();
    let volumes = edit.manifest.volumes.clone();
    let ready = s1::prepare_app(
        &store, &pod.path, &app, &app_def, &volumes, &options, &hostname,
    )
    .map_err(anyhow::Error::from)
    .and_then(|plan| {
        s1::expose_app_root(&pod.path, leader, name)?;
        // The pod's systemd looks User=/Group= up in the pod's own /etc.
        let groups: Vec<u32> = std::iter::once(plan.gid)
            .chain(plan.supplementary_gids.iter().copied())
            .collect();
        s1::add_app_identities(
            &s1::stage1_rootfs(&pod.path),
            &[(plan.uid, plan.gid)],
            &groups,
        )?;
        Ok(edit.commit()?)
    });
    if let Err(e) = ready {
        if let Err(undo) = s1::remove_app_root(&pod.path, leader, name) {
            eprintln!("rkt: {undo}");
        }
        return Err(e.context(format!("adding app {name} to pod {}", pod.uuid)));
    }
    println!("{name}");
    Ok(())
}

/// Starts the app's unit in the pod; returns once systemd has taken the start.
fn start(global: &GlobalArgs, args: &AppArgs) -> Result<()> {
    let pods = Pods::open(&global.dir)?;
    let pod = pods.find(&args.uuid)?;
    // Held while starting, so that `rkt app rm` cannot take the root away meanwhile.
    let edit = pods.edit_running_manifest(&pod)?;
    let app = edit.app(&args.app)?.clone();
    let leader = leader(&pod)?;
    let bus = Systemd::pod(leader)?;
    let unit = unit_name(&app);
    if bus.service_state(&unit)?.is_some_and(|s| s.is_running()) {
        bail!(
            "app {} of pod {} is already running (rkt app stop {} --app={} first)",
            args.app,
            pod.uuid,
            pod.uuid,
            args.app
        );
    }
    let store = global.store()?;
    let options = pod.options()?;
    let app_def = s1::effective_app(&store, &app)?;
    let mut plan =
        s1::plan_pod_app_with(&pod.path, &app, &app_def, &edit.manifest.volumes, &options)?;
    // As stage1 does for the pod's first apps: the metadata service's URL, and readiness.
    let network = s1::read_pod_network(&pod.path);
    if let Some(url) = s1::metadata_url(&pod.path, options.net, network.as_ref())? {
        plan.set_metadata_url(&url);
    }
    let mut unit_settings = s1::AppUnit::for_app(&plan);
    let image = app
        .image
        .id
        .as_ref()
        .context("the pod manifest's app has no image ID")?;
    if s1::supports_notify(&store.manifest(image)?) {
        unit_settings.expect_ready_notification();
    }
    // The previous run's exit goes, so `rkt app status` shows this run.
    let exit = pod.dir().app_exit(app.name.as_str());
    match std::fs::remove_file(&exit) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", exit.display()));
        }
        _ => {}
    }
    bus.start_service(&unit, &unit_settings.dbus_properties())
        .with_context(|| format!("starting app {} in pod {}", args.app, pod.uuid))?;
    Ok(())
}

/// Stops the app's unit (SIGTERM, then SIGKILL after its stop timeout) and waits until it
/// has stopped and its exit is recorded.
fn stop(global: &GlobalArgs, args: &AppArgs) -> Result<()> {
    let pods = Pods::open(&global.dir)?;
    let pod = pods.find(&args.uuid)?;
    let edit = pods.edit_running_manifest(&pod)?;
    let app = edit.app(&args.app)?.clone();
    drop(edit);
    let bus = Systemd::pod(leader(&pod)?)?;
    let unit = unit_name(&app);
    if !bus.service_state(&unit)?.is_some_and(|s| s.is_running()) {
        bail!("app {} of pod {} is not running", args.app, pod.uuid);
    }
    bus.stop_unit(&unit)?;
    bus.wait_unit_inactive(&unit)?;
    // stage1 records the exit as systemd reports it; wait for that (bounded), so that
    // `rkt app status` right after says how the app ended.
    for _ in 0..200 {
        if s1::read_app_status(&pod.path, app.name.as_str()).is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}

/// Removes a stopped app: its root unmounted (in the pod and on the host) and deleted, its
/// entry taken out of the manifest.
fn rm(global: &GlobalArgs, args: &AppArgs) -> Result<()> {
    let pods = Pods::open(&global.dir)?;
    let pod = pods.find(&args.uuid)?;
    let mut edit = pods.edit_running_manifest(&pod)?;
    let app = edit.app(&args.app)?.clone();
    let leader = leader(&pod)?;
    let state = app_status(&pod, Some(leader), &app)?;
    if state.state == AppState::Running {
        return Err(rkt_pod::PodError::AppRunning {
            uuid: pod.uuid.clone(),
            app: args.app.clone(),
            state: state.state.as_str(),
        }
        .into());
    }
    s1::remove_app_root(&pod.path, leader, app.name.as_str())?;
    edit.remove(&args.app)?;
    edit.commit()?;
    Ok(())
}

/// One app as `rkt app list/status --format=json` print it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AppStatusJson {
    name: String,
    state: &'static str,
    image_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
}

/// What is known about one app of a pod.
struct AppStatus {
    state: AppState,
    pid: Option<u32>,
    exit_code: Option<i32>,
    started: Option<u64>,
    finished: Option<u64>,
}

impl AppStatus {
    fn json(&self, app: &RuntimeApp) -> AppStatusJson {
        AppStatusJson {
            name: app.name.to_string(),
            state: self.state.as_str(),
            image_id: app
                .image
                .id
                .as_ref()
                .map(|i| i.to_string())
                .unwrap_or_default(),
            pid: self.pid,
            exit_code: self.exit_code,
            started_at: self.started.map(rfc3339),
            finished_at: self.finished.map(rfc3339),
        }
    }
}

/// A running app as the pod's systemd sees it (state, main PID, start), else how it ended
/// (its exit record while the pod runs, the pod's record after), else never started.
fn app_status(pod: &Pod, leader: Option<u32>, app: &RuntimeApp) -> Result<AppStatus> {
    let name = app.name.as_str();
    if let Some(leader) = leader {
        let bus = Systemd::pod(leader)?;
        if let Some(unit) = bus.service_state(&unit_name(app))?
            && unit.is_running()
        {
            return Ok(AppStatus {
                state: AppState::Running,
                pid: (unit.main_pid != 0).then_some(unit.main_pid),
                exit_code: None,
                started: (unit.started_usec != 0).then_some(unit.started_usec / 1_000_000),
                finished: None,
            });
        }
    }
    if let Some(code) = s1::read_app_status(&pod.path, name) {
        let finished = rkt_pod::mtime_of(&pod.dir().app_exit(name));
        return Ok(exited(code, finished));
    }
    Ok(AppStatus {
        state: AppState::Created,
        pid: None,
        exit_code: None,
        started: None,
        finished: None,
    })
}

fn exited(code: i32, finished: Option<u64>) -> AppStatus {
    AppStatus {
        state: AppState::Exited,
        pid: None,
        exit_code: Some(code),
        started: None,
        finished,
    }
}

/// The pod and its leader while it runs (apps of an exited pod are listed from its records).
fn pod_and_leader(global: &GlobalArgs, uuid: &str) -> Result<(Pod, Option<u32>)> {
    let pods = Pods::open(&global.dir)?;
    let pod = pods.find(uuid)?;
    let leader = match pod.state {
        PodState::Running => Some(leader(&pod)?),
        _ => None,
    };
    Ok((pod, leader))
}

fn list(global: &GlobalArgs, args: &AppListArgs) -> Result<()> {
    let (pod, leader) = pod_and_leader(global, &args.uuid)?;
    let apps = pod.manifest()?.apps;
    let mut rows = Vec::new();
    for app in &apps {
        rows.push(app_status(&pod, leader, app)?.json(app));
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Table => {
            let mut table = Table::new(["NAME", "STATE", "PID", "EXIT", "IMAGE ID"]);
            for row in rows {
                let image = row.image_id.get(..19).unwrap_or(&row.image_id).to_owned();
                table.row([
                    row.name,
                    row.state.to_owned(),
                    row.pid.map(|p| p.to_string()).unwrap_or_default(),
                    row.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                    image,
                ]);
            }
            table.write(&mut out, !args.no_legend)?;
        }
        Format::Json => serde_json::to_writer(&mut out, &rows).map(|()| println!())?,
        Format::JsonPretty => serde_json::to_writer_pretty(&mut out, &rows).map(|()| println!())?,
    }
    Ok(())
}

fn status(global: &GlobalArgs, args: &AppStatusArgs) -> Result<()> {
    let (pod, leader) = pod_and_leader(global, &args.uuid)?;
    let manifest = pod.manifest()?;
    let Some(app) = manifest.apps.iter().find(|a| a.name.as_str() == args.app) else {
        return Err(rkt_pod::PodError::UnknownApp {
            uuid: pod.uuid.clone(),
            app: args.app.clone(),
            apps: manifest
                .apps
                .iter()
                .map(|a| a.name.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into());
    };
    let json = app_status(&pod, leader, app)?.json(app);
    match args.format {
        Format::Table => {
            println!("name={}", json.name);
            println!("state={}", json.state);
            println!("image-id={}", json.image_id);
            if let Some(pid) = json.pid {
                println!("pid={pid}");
            }
            if let Some(code) = json.exit_code {
                println!("exit-code={code}");
            }
            if let Some(t) = &json.started_at {
                println!("started={t}");
            }
            if let Some(t) = &json.finished_at {
                println!("finished={t}");
            }
        }
        Format::Json => println!("{}", serde_json::to_string(&json)?),
        Format::JsonPretty => println!("{}", serde_json::to_string_pretty(&json)?),
    }
    Ok(())
}

fn unit_name(app: &RuntimeApp) -> String {
    format!("{}.service", app.name)
}

/// The host PID of the running pod's PID 1.
fn leader(pod: &Pod) -> Result<u32> {
    s1::read_pod_pid(&pod.path)
        .map(|(pid, _)| pid)
        .with_context(|| format!("pod {} has no PID 1 yet: is it still starting?", pod.uuid))
}
