//! Pod commands that need no systemd: prepare, list, status, cat-manifest, rm, gc.

use std::io::Write;

use anyhow::{Context, Result, bail};
use rkt_pod::{GcOptions, Pod, PodState, Pods};
use rkt_store::Store;
use serde::Serialize;

use super::fetch::resolve_image;
use crate::cli::{
    Format, GcArgs, GlobalArgs, ListArgs, PodSpecArgs, PodsArgs, PrepareArgs, StatusArgs,
};
use crate::output::format_time;

pub fn prepare(global: &GlobalArgs, args: &PrepareArgs) -> Result<()> {
    let pod = prepare_pod(global, &args.spec)?;
    println!("{}", pod.uuid);
    Ok(())
}

/// Fetches or finds the images and prepares a pod of them (for `prepare` and `run`).
pub fn prepare_pod(global: &GlobalArgs, spec: &PodSpecArgs) -> Result<Pod> {
    // A UUID file that cannot be written stops us before anything is made.
    if let Some(file) = &spec.uuid_file_save {
        check_writable(file, &global.dir)
            .with_context(|| format!("--uuid-file-save {}", file.display()))?;
    }
    // Bad network options stop us before any image is fetched.
    let ipam_dir = global.dir.join("net").join("ipam");
    let options = rkt_pod::PodOptions {
        no_overlay: spec.no_overlay,
        net: match spec.net.as_str() {
            "host" | "none" => spec.net.parse()?,
            _ => rkt_pod::PodNet::Cni,
        },
        network: match spec.net.as_str() {
            "host" | "none" => None,
            name => {
                let conf = rkt_runtime::load_network(&global.local_config, name, &ipam_dir)?;
                rkt_runtime::check_plugins(&conf)?;
                Some(conf)
            }
        },
        hostname: rkt_pod::pod_hostname(spec.hostname.as_deref())?,
        dns: rkt_pod::DnsOptions::parse(&spec.dns, &spec.dns_search, &spec.dns_opt)?,
        hosts: rkt_pod::HostsOptions::parse(&spec.hosts_entry)?,
        all_capabilities: global
            .insecure_options
            .allows(rkt_common::insecure::Insecure::Capabilities),
        no_seccomp: global
            .insecure_options
            .allows(rkt_common::insecure::Insecure::Seccomp),
        open_kernel_paths: global
            .insecure_options
            .allows(rkt_common::insecure::Insecure::Paths),
        private_users: spec.private_users,
        mds_register: spec.mds_register,
        mutable: spec.mutable,
    };
    if spec.mds_register {
        super::metadata::check_reachable(options.net)?;
    }
    if options.mutable && options.private_users {
        // `rkt app` reaches the pod's bus and mount namespace as the host's root, which a
        // user-namespaced pod does not let in.
        bail!("--mutable and --private-users cannot be used together yet; drop one of them");
    }
    if let Some(file) = &spec.pod_manifest {
        return prepare_from_manifest(global, spec, file, &options);
    }
    let volumes = spec
        .volume
        .iter()
        .map(|v| rkt_pod::parse_volume(v))
        .collect::<Result<Vec<_>, _>>()?;
    let pod_mounts = spec
        .mount
        .iter()
        .map(|m| rkt_pod::parse_mount(m))
        .collect::<Result<Vec<_>, _>>()?;
    // A missing host source stops us before any image is fetched.
    rkt_pod::check_volumes(&volumes)?;
    let mut pod_level = pod_level(spec, &options)?;
    pod_level.volumes = volumes;
    let store = global.store()?;
    let pods = Pods::open(&global.dir)?;
    let pod_env = pod_environment(spec)?;
    let mut apps = Vec::new();
    for (i, image) in spec.images.iter().enumerate() {
        let id = resolve_image(global, &store, image, spec.pull_policy().into())?;
        unpack_with_progress(&store, &id)?;
        let mut overrides = spec.app_overrides.get(i).cloned().unwrap_or_default();
        if spec.inherit_env {
            overrides.base_environment = std::env::vars().collect();
        }
        // Precedence: the pod's --set-env-file and --set-env, then the app's own options.
        overrides.environment.splice(0..0, pod_env.iter().cloned());
        // --mount before the first image is every app's.
        overrides.mounts.splice(0..0, pod_mounts.iter().cloned());
        apps.push((id, overrides));
    }
    let pod = pods
        .prepare_pod(&store, &apps, &pod_level, &options)
        .context("preparing the pod")?;
    warn_implicit_volumes(&pod, &pod_level.volumes);
    save_uuid(&pods, &pod, spec.uuid_file_save.as_deref())?;
    Ok(pod)
}

/// Whether `file` can be written, without changing it (a new file is made and removed again).
fn check_writable(file: &std::path::Path, rkt_dir: &std::path::Path) -> std::io::Result<()> {
    // Asked of the kernel, not tried: a probe file would race with another `rkt run` given
    // the same path.
    let target = match std::fs::symlink_metadata(file) {
        Ok(_) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match file.parent() {
            // rkt makes its own directory before the pod: a file in it can be written then.
            Some(dir) if dir == rkt_dir && !dir.exists() => return Ok(()),
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => std::path::Path::new("."),
        },
        Err(e) => return Err(e),
    };
    rustix::fs::access(target, rustix::fs::Access::WRITE_OK)?;
    Ok(())
}

/// `--uuid-file-save`: writes the new pod's UUID; if that fails, the pod goes (nobody would
/// know its UUID to run or remove it).
fn save_uuid(pods: &Pods, pod: &Pod, file: Option<&std::path::Path>) -> Result<()> {
    let Some(file) = file else { return Ok(()) };
    if let Err(e) = std::fs::write(file, format!("{}\n", pod.uuid)) {
        if let Err(rm) = pods.remove(pod, &release_pod) {
            eprintln!("rkt: removing the pod {}: {rm}", pod.uuid);
        }
        return Err(e).with_context(|| format!("writing {}", file.display()));
    }
    Ok(())
}

/// Renders an OCI image's tree at its first use (it is only stored at fetch), with a progress
/// line on a terminal: a big image takes a while. Anything else is a no-op.
fn unpack_with_progress(store: &Store, id: &rkt_schema::ImageId) -> Result<()> {
    let Some(total) = store.unrendered_size(id)? else {
        return Ok(());
    };
    let label = store.info(id)?.record.name;
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let _bar = crate::progress::Progress::start(format!("unpacking {label}"), read.clone(), total);
    store
        .rootfs_with_progress(id, &read)
        .with_context(|| format!("unpacking {label}"))?;
    Ok(())
}

/// `--pod-manifest FILE`: the pod as written, with only the pod options that a manifest
/// cannot hold (network, DNS, hostname, --no-overlay).
fn prepare_from_manifest(
    global: &GlobalArgs,
    spec: &PodSpecArgs,
    file: &std::path::Path,
    options: &rkt_pod::PodOptions,
) -> Result<Pod> {
    let in_manifest = [
        ("images", !spec.images.is_empty()),
        ("per-app options", !spec.app_overrides.is_empty()),
        ("--volume", !spec.volume.is_empty()),
        ("--mount", !spec.mount.is_empty()),
        ("--set-env", !spec.set_env.is_empty()),
        ("--set-env-file", !spec.set_env_file.is_empty()),
        ("--inherit-env", spec.inherit_env),
        ("--port", !spec.port.is_empty()),
        ("--sysctl", !spec.sysctl.is_empty()),
    ];
    if let Some((what, _)) = in_manifest.iter().find(|(_, given)| *given) {
        bail!(
            "{what} cannot be given with --pod-manifest: write them into the manifest {}",
            file.display()
        );
    }
    let bytes = crate::input::read_limited(file, rkt_store::aci::MAX_MANIFEST_BYTES)
        .with_context(|| format!("reading --pod-manifest {}", file.display()))?;
    let manifest = rkt_schema::PodManifest::from_json_template(&bytes)
        .with_context(|| format!("--pod-manifest {}", file.display()))?;
    if manifest.ac_version.is_newer_major() {
        eprintln!(
            "rkt: warning: {} is written for appc spec {}, newer than {}: reading it as {}",
            file.display(),
            manifest.ac_version,
            rkt_schema::APPC_SPEC_VERSION,
            rkt_schema::APPC_SPEC_VERSION
        );
    }
    let store = global.store()?;
    let pods = Pods::open(&global.dir)?;
    let given = manifest.volumes.clone();
    let pod = pods
        .prepare_manifest(&store, manifest, options)
        .with_context(|| format!("preparing the pod of {}", file.display()))?;
    warn_implicit_volumes(&pod, &given);
    save_uuid(&pods, &pod, spec.uuid_file_save.as_deref())?;
    Ok(pod)
}

/// The original rkt's warning for a mount point no volume was given for.
fn warn_implicit_volumes(pod: &Pod, given: &[rkt_schema::Volume]) {
    let Ok(manifest) = pod.manifest() else { return };
    for volume in &manifest.volumes {
        if !given.iter().any(|v| v.name == volume.name) {
            eprintln!(
                "rkt: warning: no volume given for a mount point of the image; made empty volume {:?}, removed with the pod",
                volume.name.as_str()
            );
        }
    }
}

/// `--port` and `--sysctl`, checked against the pod's network: both need a network namespace
/// of the pod's own (forwarding to the host's own ports, or setting the host's parameters,
/// is not what they are for).
fn pod_level(spec: &PodSpecArgs, options: &rkt_pod::PodOptions) -> Result<rkt_pod::PodLevel> {
    use rkt_pod::PodNet;
    let net = options.net;
    let mut level = rkt_pod::PodLevel::default();
    for value in &spec.port {
        match &options.network {
            _ if net != PodNet::Cni => bail!(
                "--port={value}: with --net={} the pod has no network of its own to forward to; use --net=default or a CNI network with the portmap plugin",
                net.as_str()
            ),
            Some(conf) if !rkt_runtime::forwards_ports(conf) => bail!(
                "--port={value}: network {} has no plugin that forwards ports; add {{\"type\": \"portmap\", \"capabilities\": {{\"portMappings\": true}}}} to its .conflist",
                conf["name"].as_str().unwrap_or("?")
            ),
            _ => {}
        }
        level.ports.push(rkt_pod::parse_port_flag(value)?);
    }
    let key_value = |flag: &str, value: &String| -> Result<(String, String)> {
        match value.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => bail!(
                "--{flag}={}: give KEY=VALUE",
                rkt_common::excerpt::shown(value)
            ),
        }
    };
    for value in &spec.user_annotation {
        let (key, value) = key_value("user-annotation", value)?;
        level.user_annotations.insert(key, value);
    }
    for value in &spec.user_label {
        let (key, value) = key_value("user-label", value)?;
        level.user_labels.insert(key, value);
    }
    for value in &spec.sysctl {
        let (name, value) = rkt_pod::parse_sysctl(value)?;
        if net == PodNet::Host {
            return Err(rkt_pod::SysctlError::HostNetwork(name).into());
        }
        level.sysctls.insert(name, value);
    }
    Ok(level)
}

/// The most an environment file (`--set-env-file`) may hold.
pub const ENV_FILE_LIMIT: u64 = 1 << 20;

/// The pod-wide `--set-env-file` then `--set-env` variables, in precedence order.
fn pod_environment(spec: &PodSpecArgs) -> Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    for file in &spec.set_env_file {
        let text = crate::input::read_limited_text(file, ENV_FILE_LIMIT)
            .with_context(|| format!("reading --set-env-file {}", file.display()))?;
        env.extend(
            rkt_pod::parse_env_file(&text)
                .map_err(|e| anyhow::anyhow!("--set-env-file {}: {e}", file.display()))?,
        );
    }
    for var in &spec.set_env {
        env.push(
            rkt_pod::parse_env_assignment(var).map_err(|e| anyhow::anyhow!("--set-env: {e}"))?,
        );
    }
    Ok(env)
}

/// One app of a pod in `rkt list`/`rkt status --format=json`: the original rkt's `v1.App`
/// (times in nanoseconds since the epoch), and `image_name` besides.
#[derive(Serialize)]
struct AppJson {
    name: String,
    /// created, running, exited or unknown.
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    image_id: String,
    /// Not in the original's object: the image's name, as the table shows it.
    image_name: String,
}

/// One pod in `rkt list`/`rkt status --format=json`: the original rkt's `v1.Pod` (`name` is
/// the UUID; `created_at`/`started_at` in seconds since the epoch), and `pid` besides while
/// the pod runs. Fields are added here, never renamed: tools written for rkt parse them.
#[derive(Serialize)]
struct PodJson {
    name: String,
    state: &'static str,
    /// The pod's addresses on a CNI network (none on the host's network or with none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    networks: Vec<NetInfoJson>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    app_names: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    apps: Vec<AppJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<i64>,
    /// Not in the original's object: host PID of the pod's PID 1, while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
}

/// One address of a pod on a network: the original rkt's `netinfo.NetInfo`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NetInfoJson {
    net_name: String,
    /// The network's configuration file (empty for the built-in `default`).
    net_conf: String,
    if_name: String,
    ip: String,
    args: String,
    mask: String,
}

/// The dotted netmask of a prefix length (`24` → `255.255.255.0`; IPv6: `ffff:…`).
fn netmask(ip: &str, prefix: u32) -> String {
    if ip.contains(':') {
        let bits = u128::MAX.checked_shl(128 - prefix.min(128)).unwrap_or(0);
        std::net::Ipv6Addr::from(bits).to_string()
    } else {
        let bits = u32::MAX.checked_shl(32 - prefix.min(32)).unwrap_or(0);
        std::net::Ipv4Addr::from(bits).to_string()
    }
}

fn net_infos(net: &rkt_runtime::PodNetStatus) -> Vec<NetInfoJson> {
    net.ips
        .iter()
        .map(|cidr| {
            let (ip, prefix) = cidr.split_once('/').unwrap_or((cidr, "32"));
            NetInfoJson {
                net_name: net.name.clone(),
                net_conf: String::new(),
                if_name: "eth0".to_owned(),
                ip: ip.to_owned(),
                args: String::new(),
                mask: netmask(ip, prefix.parse().unwrap_or(32)),
            }
        })
        .collect()
}

/// `name:version` when the image was chosen by a version label, as the original showed it.
fn image_name(image: &rkt_schema::RuntimeImage) -> String {
    let name = image
        .name
        .as_ref()
        .map(|n| n.to_string())
        .unwrap_or_default();
    match image.labels.iter().find(|l| l.name.as_str() == "version") {
        Some(version) => format!("{name}:{}", version.value),
        None => name,
    }
}

fn secs(unix: u64) -> i64 {
    i64::try_from(unix).unwrap_or(i64::MAX)
}

fn pod_json(pod: &Pod) -> PodJson {
    let created = pod.created();
    let started = rkt_runtime::read_pod_pid(&pod.path);
    // As the original inferred an app's state from its pod's.
    let pod_app_state = match pod.state {
        PodState::Prepared => "created",
        PodState::Running => "running",
        PodState::Exited | PodState::ExitedGarbage | PodState::Garbage | PodState::Deleting => {
            "exited"
        }
        PodState::Embryo | PodState::Preparing | PodState::AbortedPrepare => "unknown",
    };
    let manifest = pod.manifest().ok();
    let apps: Vec<AppJson> = manifest
        .iter()
        .flat_map(|m| &m.apps)
        .map(|a| {
            let exit_code = rkt_runtime::read_app_status(&pod.path, a.name.as_str());
            let finished = rkt_pod::mtime_of(&pod.dir().app_exit(a.name.as_str()));
            AppJson {
                name: a.name.to_string(),
                state: if exit_code.is_some() {
                    "exited"
                } else {
                    pod_app_state
                },
                created_at: created.map(crate::output::unix_nanos),
                started_at: started.map(|(_, t)| crate::output::unix_nanos(t)),
                finished_at: finished
                    .filter(|_| exit_code.is_some())
                    .map(crate::output::unix_nanos),
                exit_code,
                image_id: a
                    .image
                    .id
                    .as_ref()
                    .map(|i| i.to_string())
                    .unwrap_or_default(),
                image_name: image_name(&a.image),
            }
        })
        .collect();
    PodJson {
        name: pod.uuid.to_string(),
        state: pod.state.as_str(),
        networks: rkt_runtime::read_pod_network(&pod.path)
            .map(|net| net_infos(&net))
            .unwrap_or_default(),
        app_names: apps.iter().map(|a| a.name.clone()).collect(),
        apps,
        created_at: created.map(secs),
        started_at: started.map(|(_, t)| secs(t)),
        pid: started
            .filter(|_| pod.state == PodState::Running)
            .map(|(pid, _)| pid),
    }
}

/// The network a pod was given, by name: host, none, or its CNI network (whose addresses
/// go with the pod).
fn network_name(pod: &Pod) -> String {
    pod.options()
        .map(|o| match &o.network {
            Some(conf) => conf["name"].as_str().unwrap_or("cni").to_owned(),
            None => o.net.as_str().to_owned(),
        })
        .unwrap_or_default()
}

/// `NAME:ip4=ADDR` while the pod holds addresses on a CNI network, else the network's name
/// (`host`, `none`, `default`, …), as `rkt status` and `rkt list` show it.
fn networks_summary(pod: &Pod) -> String {
    match rkt_runtime::read_pod_network(&pod.path) {
        Some(net) => net.summary(),
        None => network_name(pod),
    }
}

pub fn list(global: &GlobalArgs, args: &ListArgs) -> Result<()> {
    let pods = Pods::open(&global.dir)?.list()?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer(&mut out, &pods.iter().map(pod_json).collect::<Vec<_>>())?;
            writeln!(out)?;
        }
        Format::JsonPretty => {
            serde_json::to_writer_pretty(&mut out, &pods.iter().map(pod_json).collect::<Vec<_>>())?;
            writeln!(out)?;
        }
        Format::Table => {
            // The original's columns; --full adds the image ID (its first 19 characters).
            let mut header = vec!["UUID", "APP", "IMAGE NAME", "STATE", "CREATED", "STARTED"];
            if args.full {
                header.insert(3, "IMAGE ID");
            }
            header.push("NETWORKS");
            let mut rows: Vec<Vec<String>> = Vec::new();
            for pod in &pods {
                let json = pod_json(pod);
                let uuid = if args.full {
                    pod.uuid.to_string()
                } else {
                    pod.uuid[..8].to_owned()
                };
                let created = pod
                    .created()
                    .map(|t| format_time(t, args.full))
                    .unwrap_or_default();
                let started = rkt_runtime::read_pod_pid(&pod.path)
                    .map(|(_, t)| format_time(t, args.full))
                    .unwrap_or_default();
                let mut pod_cells = Some([
                    uuid,
                    json.state.to_owned(),
                    created,
                    started,
                    networks_summary(pod),
                ]);
                let apps: Vec<(String, String, String)> = if json.apps.is_empty() {
                    vec![("-".into(), "-".into(), "-".into())]
                } else {
                    json.apps
                        .iter()
                        .map(|a| {
                            let id: String = a.image_id.chars().take(19).collect();
                            (a.name.clone(), a.image_name.clone(), id)
                        })
                        .collect()
                };
                // The pod's own cells on its first app's row only, as the original did.
                for (app, image, id) in apps {
                    let [uuid, state, created, started, nets] =
                        pod_cells.take().unwrap_or_default();
                    let mut row = vec![uuid, app, image, state, created, started];
                    if args.full {
                        row.insert(3, id);
                    }
                    row.push(nets);
                    rows.push(row);
                }
            }
            let table = crate::output::DynTable::new(header, rows);
            table.write(&mut out, !args.no_legend)?;
        }
    }
    Ok(())
}

/// `--wait`/`--wait-ready` as the original took them: absent, `false` or `0s`: no wait
/// (`None`); `true` (or the flag alone): forever (`Some(None)`); a duration: at most that.
fn wait_limit(arg: Option<&str>) -> Result<Option<Option<std::time::Duration>>> {
    Ok(match arg {
        None | Some("false") => None,
        Some("forever" | "true" | "") => Some(None),
        Some(text) => {
            let limit = text
                .parse::<crate::cli::DurationArg>()
                .map_err(anyhow::Error::msg)?
                .0;
            (!limit.is_zero()).then_some(Some(limit))
        }
    })
}

pub fn status(global: &GlobalArgs, args: &StatusArgs) -> Result<()> {
    let pods = Pods::open(&global.dir)?;
    let mut pod = pods.find(&args.pod.uuid()?)?;
    if let Some(limit) = wait_limit(args.wait_ready.as_deref())? {
        let start = std::time::Instant::now();
        let unit = pod.uuid.unit_name();
        let systemd = rkt_runtime::systemd::Systemd::system()?;
        // Ready: stage1 said READY=1 (the pod booted, its apps started, notify apps ready),
        // which makes the pod's unit active.
        loop {
            match pod.state {
                PodState::Running
                    if systemd
                        .service_state(&unit)?
                        .is_some_and(|s| s.active_state == "active") =>
                {
                    break;
                }
                PodState::Embryo | PodState::Preparing | PodState::Prepared | PodState::Running => {
                }
                state => bail!("pod {} is {state}: it ended before it was ready", pod.uuid),
            }
            if limit.is_some_and(|l| start.elapsed() >= l) {
                bail!(
                    "pod {} is not ready after {:?}",
                    pod.uuid,
                    limit.unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            pod = pods.find(&pod.uuid)?;
        }
    }
    if let Some(limit) = wait_limit(args.wait.as_deref())? {
        let start = std::time::Instant::now();
        // Until stage1 has let go of the pod (the kernel drops its lock when it exits).
        while matches!(
            pod.state,
            PodState::Embryo | PodState::Preparing | PodState::Prepared | PodState::Running
        ) {
            if limit.is_some_and(|l| start.elapsed() >= l) {
                bail!(
                    "pod {} is still {} after {:?}",
                    pod.uuid,
                    pod.state,
                    limit.unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            pod = pods.find(&pod.uuid)?;
        }
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json | Format::JsonPretty => {
            let json = pod_json(&pod);
            if args.format == Format::Json {
                serde_json::to_writer(&mut out, &json)?;
            } else {
                serde_json::to_writer_pretty(&mut out, &json)?;
            }
            writeln!(out)?;
        }
        Format::Table => {
            // The original's keys and times; networks= for every pod, and logs=, besides.
            writeln!(out, "state={}", pod.state)?;
            let json = pod_json(&pod);
            if let Some(created) = pod.created() {
                writeln!(out, "created={}", crate::output::exact_time(created))?;
            }
            let started = rkt_runtime::read_pod_pid(&pod.path);
            if let Some((_, t)) = started {
                writeln!(out, "started={}", crate::output::exact_time(t))?;
            }
            writeln!(out, "networks={}", networks_summary(&pod))?;
            if let Some((pid, _)) = started.filter(|_| pod.state >= PodState::Running) {
                writeln!(out, "pid={pid}")?;
                writeln!(
                    out,
                    "exited={}",
                    matches!(pod.state, PodState::Exited | PodState::ExitedGarbage)
                )?;
            }
            if pod.state != PodState::Prepared {
                // Apps log into the pod's journal, which stays readable from the host.
                writeln!(
                    out,
                    "logs=journalctl -m _MACHINE_ID={}",
                    pod.uuid.machine_id()
                )?;
            }
            for app in json.apps {
                if let Some(code) = app.exit_code {
                    writeln!(out, "app-{}={code}", app.name)?;
                }
            }
        }
    }
    Ok(())
}

pub fn cat_manifest(global: &GlobalArgs, args: &crate::cli::CatPodManifestArgs) -> Result<()> {
    let pod = Pods::open(&global.dir)?.find(&args.pod.uuid()?)?;
    let bytes = pod.manifest_bytes()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("pod {} has a corrupt manifest", pod.uuid))?;
    let mut out = std::io::stdout().lock();
    if args.pretty_print {
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
    } else {
        serde_json::to_writer(&mut out, &value)?;
        writeln!(out)?;
    }
    Ok(())
}

pub fn rm(global: &GlobalArgs, args: &PodsArgs) -> Result<()> {
    let pods = Pods::open(&global.dir)?;
    let uuids = args.uuids()?;
    let mut failed = 0;
    for query in &uuids {
        let result = pods.find(query).and_then(|pod| {
            if pod.state == PodState::Running {
                return Err(rkt_pod::PodError::Busy {
                    uuid: pod.uuid.clone(),
                    state: pod.state,
                });
            }
            pods.remove(&pod, &release_pod)?;
            reset_failed_pod_units(&global.dir, &pods);
            Ok(pod)
        });
        match result {
            Ok(pod) => println!("{}", pod.uuid),
            Err(e) if uuids.len() == 1 => return Err(e.into()),
            Err(e) => {
                eprintln!("rkt: removing pod {query}: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} pods could not be removed", uuids.len());
    }
    Ok(())
}

pub fn gc(global: &GlobalArgs, args: &GcArgs) -> Result<()> {
    let pods = Pods::open(&global.dir)?;
    let report = pods.gc(
        GcOptions {
            grace_period: args.grace_period.0,
            expire_prepared: args.expire_prepared.0,
            mark_only: args.mark_only,
        },
        &release_pod,
    )?;
    // Addresses of the default network whose pods are gone (their stage1 and gc both died).
    let ipam = global.dir.join("net").join("ipam");
    let (released, release_error) =
        match rkt_runtime::release_orphaned_leases(&ipam, |uuid| pods.exists(uuid)) {
            Ok(released) => (released, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
    for uuid in &report.marked {
        println!("marked {uuid}");
    }
    for uuid in &report.removed {
        println!("removed {uuid}");
    }
    for (ip, uuid) in &released {
        println!("released address {ip} of removed pod {uuid}");
    }
    for (uuid, why) in &report.skipped {
        eprintln!("rkt: gc: skipped pod {uuid}: {why}");
    }
    if let Some(why) = &release_error {
        eprintln!("rkt: gc: freeing the addresses of removed pods: {why}");
    }
    if !args.mark_only {
        reset_failed_pod_units(&global.dir, &pods);
        // What a killed `rkt fetch` was downloading.
        Store::open(&global.dir)?.remove_stale_temp_dirs();
    }
    Ok(())
}

/// What `rkt rm` and `rkt gc` release before a pod's directory goes: its CNI network address
/// and its sockets in /run, if its stage1 died holding them.
pub(crate) fn release_pod(
    pod_dir: &std::path::Path,
    uuid: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    rkt_runtime::teardown_pod_network(pod_dir, uuid)?;
    rkt_runtime::remove_notify_socket(uuid)?;
    rkt_runtime::remove_listen_fds_socket(uuid)?;
    Ok(())
}

/// A pod's unit that failed (the pod was killed, or an app exited non-zero) stays loaded
/// until reset: once the pod is gone, it goes too. Only units of this directory's pods (their
/// stage1 command names it), and only where systemd can be reached (gc runs without it too).
fn reset_failed_pod_units(dir: &std::path::Path, pods: &Pods) {
    let Ok(systemd) = rkt_runtime::systemd::Systemd::system() else {
        return;
    };
    let (Ok(failed), Ok(live)) = (systemd.failed_units("rkt-*.service"), pods.list()) else {
        return;
    };
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let dir = dir.to_string_lossy();
    for unit in failed {
        let Some(uuid) = unit
            .strip_prefix("rkt-")
            .and_then(|u| u.strip_suffix(".service"))
        else {
            continue;
        };
        if live.iter().any(|p| p.uuid == uuid) {
            continue;
        }
        let ours = systemd.exec_start(&unit).is_ok_and(|commands| {
            commands.iter().any(|argv| {
                argv.last().is_some_and(|last| last == uuid)
                    && argv.windows(2).any(|w| w[0] == "--dir" && w[1] == dir)
            })
        });
        if ours && let Err(e) = systemd.reset_failed_unit(&unit) {
            eprintln!("rkt: gc: {e}");
        }
    }
}
