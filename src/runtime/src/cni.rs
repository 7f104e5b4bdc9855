//! A pod's own network namespace joined to a host network through CNI plugins (Debian's
//! `containernetworking-plugins`), configured by `<local-config>/net.d/*.conf` (one plugin) and
//! `*.conflist` (a chain of plugins, e.g. bridge then portmap) as in the original rkt, or the
//! built-in `default` network. The namespace is a bind mount at `<pod>/netns` (so unmounting
//! the pod ends it); what ADD gave is kept in `<pod>/net.json`, so that DEL (at stage1's exit,
//! else at gc) uses the configuration and port mappings the pod started with.

use rkt_pod::{PodDir, PortMapping};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::masquerade;

/// Where Debian installs the plugins (`CNI_PATH` overrides).
pub const CNI_PLUGIN_DIR: &str = "/usr/lib/cni";
/// The interface the pod sees.
const POD_IFNAME: &str = "eth0";

/// Why a CNI network could not be found, set up or torn down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CniError {
    #[error(
        "--net={name}: no network of that name in {dir}/*.conf or *.conflist (networks: host, none, default, or one configured there)"
    )]
    NotFound { name: String, dir: PathBuf },
    #[error("{path}: {reason}")]
    BadConfig { path: PathBuf, reason: String },
    #[error(
        "network {network} needs {what}, not found in {path}: install Debian's containernetworking-plugins and iptables, or run the pod with --net=host"
    )]
    Missing {
        network: String,
        what: String,
        path: String,
    },
    #[error("CNI plugin {plugin} {command} for network {network}: {reason}")]
    Plugin {
        plugin: String,
        command: &'static str,
        network: String,
        reason: String,
    },
    #[error("masquerading for network {network}: {reason}")]
    Masquerade { network: String, reason: String },
    #[error(transparent)]
    Io(#[from] rkt_common::IoError),
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CniError {
    let path = path.to_owned();
    move |source| CniError::Io(rkt_common::IoError::new(action, path, source))
}

/// The network `--net` gives when no file in net.d is named so: like the original rkt's
/// `default` (ptp + host-local 172.16.28.0/24 with masquerading), with portmap chained for
/// `--port`. The masquerading is rkt's own (see `masquerade.rs`), asked for by the list-level
/// key [`MASQUERADE_KEY`] that plugins never see.
pub const DEFAULT_NETWORK: &str = "default";
/// The built-in default network's address range.
pub const DEFAULT_SUBNET: &str = "172.16.28.0/24";
/// A network list's key naming a subnet that rkt masquerades itself for each pod.
pub const MASQUERADE_KEY: &str = "rktMasquerade";

/// The built-in [`DEFAULT_NETWORK`]; host-local keeps its leases under `ipam_dir`.
pub fn default_network(ipam_dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": DEFAULT_NETWORK,
        MASQUERADE_KEY: DEFAULT_SUBNET,
        "plugins": [
            {
                "type": "ptp",
                "ipam": {
                    "type": "host-local",
                    "subnet": DEFAULT_SUBNET,
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir,
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
        ],
    })
}

/// The configuration of network `name` from `<config_dir>/net.d/*.conf` and `*.conflist`
/// (its `"name"`), or the built-in [`DEFAULT_NETWORK`] (leases under `ipam_dir`) when no
/// file there names itself so.
pub fn load_network(
    config_dir: &Path,
    name: &str,
    ipam_dir: &Path,
) -> Result<serde_json::Value, CniError> {
    let dir = config_dir.join("net.d");
    let not_found = || CniError::NotFound {
        name: name.to_owned(),
        dir: dir.clone(),
    };
    let mut paths: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "conf" || e == "conflist")
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    paths.sort();
    for path in paths {
        let bytes = fs::read(&path).map_err(io("reading", &path))?;
        let mut conf: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| CniError::BadConfig {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        canonical_keys(&mut conf);
        if conf["name"] != name {
            continue;
        }
        let is_list = path.extension().is_some_and(|e| e == "conflist");
        check_config(&conf, is_list).map_err(|reason| CniError::BadConfig { path, reason })?;
        return Ok(conf);
    }
    match name {
        DEFAULT_NETWORK => Ok(default_network(ipam_dir)),
        _ => Err(not_found()),
    }
}

/// The keys rkt reads, spelled as the CNI spec spells them: the original rkt and the plugins
/// read configurations with Go's JSON decoder, which matches keys regardless of case (a
/// `"Name"` names the network), preferring a key spelled exactly.
const CNI_KEYS: [&str; 6] = [
    "name",
    "type",
    "plugins",
    "cniVersion",
    "capabilities",
    "ipMasq",
];

/// Renames, in a configuration and in each of its plugins, a key that matches one of
/// [`CNI_KEYS`] but for case to its canonical spelling (unless that is there already).
fn canonical_keys(conf: &mut serde_json::Value) {
    fn fix(obj: &mut serde_json::Map<String, serde_json::Value>) {
        for key in CNI_KEYS {
            if obj.contains_key(key) {
                continue;
            }
            let found = obj.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned();
            if let Some(found) = found
                && let Some(value) = obj.remove(&found)
            {
                obj.insert(key.to_owned(), value);
            }
        }
    }
    let Some(obj) = conf.as_object_mut() else {
        return;
    };
    fix(obj);
    if let Some(plugins) = obj.get_mut("plugins").and_then(|p| p.as_array_mut()) {
        for plugin in plugins.iter_mut().filter_map(|p| p.as_object_mut()) {
            fix(plugin);
        }
    }
}

/// A `.conf` names one plugin in `"type"`; a `.conflist` has a non-empty `"plugins"` list of
/// such objects. Plugin types are file names in the plugin directory, nothing more.
fn check_config(conf: &serde_json::Value, is_list: bool) -> Result<(), String> {
    let check_type = |plugin: &serde_json::Value| {
        let kind = plugin["type"].as_str().unwrap_or_default();
        match !kind.is_empty()
            && kind
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            true => Ok(()),
            false => Err("\"type\" must name a plugin (e.g. \"bridge\")".to_owned()),
        }
    };
    if !is_list {
        return check_type(conf);
    }
    match conf["plugins"].as_array() {
        Some(plugins) if !plugins.is_empty() => plugins.iter().try_for_each(check_type),
        _ => Err("a .conflist needs a non-empty \"plugins\" list".to_owned()),
    }
}

/// The plugins a network runs, in ADD order, each as the configuration it is given: a
/// `.conf` is itself; a list's plugins get the list's `name` and `cniVersion` (CNI spec,
/// "Network configuration lists").
pub fn network_plugins(conf: &serde_json::Value) -> Vec<serde_json::Value> {
    let Some(plugins) = conf["plugins"].as_array() else {
        return vec![conf.clone()];
    };
    plugins
        .iter()
        .map(|plugin| {
            let mut plugin = plugin.clone();
            if let Some(obj) = plugin.as_object_mut() {
                obj.insert("name".to_owned(), conf["name"].clone());
                obj.insert("cniVersion".to_owned(), conf["cniVersion"].clone());
            }
            plugin
        })
        .collect()
}

/// Whether a plugin of the network takes port mappings (declares the `portMappings`
/// capability, as portmap does): without one, `--port` would forward nothing.
pub fn forwards_ports(conf: &serde_json::Value) -> bool {
    network_plugins(conf)
        .iter()
        .any(|p| p["capabilities"]["portMappings"] == true)
}

/// What one plugin of the chain is given: its configuration, the previous plugin's result
/// (for lists), and the runtime values of the capabilities it declares.
fn plugin_input(
    plugin: &serde_json::Value,
    prev_result: Option<&serde_json::Value>,
    ports: &[PortMapping],
) -> serde_json::Value {
    let mut input = plugin.clone();
    let Some(obj) = input.as_object_mut() else {
        return input;
    };
    if let Some(prev) = prev_result.filter(|p| !p.is_null()) {
        obj.insert("prevResult".to_owned(), prev.clone());
    }
    if plugin["capabilities"]["portMappings"] == true && !ports.is_empty() {
        obj.insert(
            "runtimeConfig".to_owned(),
            serde_json::json!({ "portMappings": ports }),
        );
    }
    input
}

/// What a pod got from its network.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PodNetStatus {
    /// The network's name.
    pub name: String,
    /// The pod's addresses with prefix length (`10.1.0.2/24`).
    pub ips: Vec<String>,
    /// The configuration ADD was given (DEL gets the same).
    pub conf: serde_json::Value,
    /// The pod's gateway: the host side of the network (where it reaches host services such
    /// as the metadata service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The host ports forwarded to the pod (given to DEL as they were to ADD).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
    /// The chain's final ADD result (a list's DEL gets it as `prevResult`).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub result: serde_json::Value,
    /// The subnet rkt masquerades the pod's addresses out of (its rules go with the pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masquerade: Option<String>,
}

impl PodNetStatus {
    /// `name:ip4=10.1.0.2` as `rkt status` shows it (address without prefix).
    pub fn summary(&self) -> String {
        let ips: Vec<String> = self
            .ips
            .iter()
            .map(|ip| {
                let addr = ip.split('/').next().unwrap_or(ip);
                let family = if addr.contains(':') { "ip6" } else { "ip4" };
                format!("{family}={addr}")
            })
            .collect();
        match ips.is_empty() {
            true => self.name.clone(),
            false => format!("{}:{}", self.name, ips.join(",")),
        }
    }
}

/// The pod's namespace, as nspawn's `--network-namespace-path` takes it.
pub fn netns_path(pod_dir: &Path) -> PathBuf {
    PodDir::at(pod_dir).netns()
}

/// Creates the pod's network namespace (util-linux `unshare --net=FILE` bind-mounts it) and
/// joins it to the network with each plugin's ADD in order, forwarding `ports` through the
/// plugins that declare the `portMappings` capability; records the result.
pub fn setup_pod_network(
    pod_dir: &Path,
    uuid: &str,
    conf: &serde_json::Value,
    ports: &[PortMapping],
) -> Result<PodNetStatus, CniError> {
    let netns = netns_path(pod_dir);
    fs::write(&netns, "").map_err(io("creating", &netns))?;
    let out = Command::new("unshare")
        .arg(format!("--net={}", netns.display()))
        .arg("true")
        .output()
        .map_err(io("running unshare (util-linux) for", &netns))?;
    if !out.status.success() {
        return Err(CniError::Io(rkt_common::IoError::new(
            "creating the network namespace",
            netns,
            std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        )));
    }
    join_network(&plugin_path(), pod_dir, uuid, conf, ports, &netns)
}

/// ADD of the pod's namespace `netns` to the network, recorded in `net.json` before and after.
fn join_network(
    cni_path: &str,
    pod_dir: &Path,
    uuid: &str,
    conf: &serde_json::Value,
    ports: &[PortMapping],
    netns: &Path,
) -> Result<PodNetStatus, CniError> {
    // Recorded before ADD, which takes an address (and may add the portmap plugin's rules)
    // before its result is known: from here on, whenever stage1 dies, the record tells its
    // teardown (or gc) to DEL. Written again with the result before the masquerading rules
    // exist, so that they are known too. On a failure below, the record stays for the
    // teardown that follows it.
    let mut status = PodNetStatus {
        name: conf["name"].as_str().unwrap_or_default().to_owned(),
        ips: Vec::new(),
        conf: conf.clone(),
        gateway: None,
        ports: ports.to_vec(),
        result: serde_json::Value::Null,
        masquerade: conf[MASQUERADE_KEY].as_str().map(str::to_owned),
    };
    write_pod_network(pod_dir, &status)?;
    let result = add_chain(cni_path, conf, ports, uuid, netns)?;
    status.ips = result["ips"]
        .as_array()
        .map(|ips| {
            ips.iter()
                .filter_map(|ip| ip["address"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    status.gateway = result["ips"]
        .as_array()
        .and_then(|ips| ips.iter().find_map(|ip| ip["gateway"].as_str()))
        .map(str::to_owned);
    status.result = result;
    write_pod_network(pod_dir, &status)?;
    if let Some(subnet) = &status.masquerade {
        masquerade::add(&status.name, uuid, subnet, &status.ips)?;
    }
    Ok(status)
}

/// Replaces `net.json` in one step: a reader (or a stage1 killed midway) sees the old record
/// or the new one, never a part that reads as no record at all.
fn write_pod_network(pod_dir: &Path, status: &PodNetStatus) -> Result<(), CniError> {
    let path = PodDir::at(pod_dir).net_status();
    let json = serde_json::to_vec_pretty(status).expect("status serializes");
    // Durable: after a crash, gc reads it to give the address back.
    rkt_common::fs::write_atomic(&path, &json, 0o644).map_err(io("writing", &path))
}

/// What the pod got from its network, if it has one.
pub fn read_pod_network(pod_dir: &Path) -> Option<PodNetStatus> {
    serde_json::from_slice(&fs::read(PodDir::at(pod_dir).net_status()).ok()?).ok()
}

/// The plugin's DEL (frees the pod's address and host link), then forgets the network. Does
/// nothing for a pod without one; safe to repeat (stage1 at exit, gc after a crash).
pub fn teardown_pod_network(pod_dir: &Path, uuid: &str) -> Result<(), CniError> {
    leave_network(&plugin_path(), pod_dir, uuid)
}

fn leave_network(cni_path: &str, pod_dir: &Path, uuid: &str) -> Result<(), CniError> {
    let Some(status) = read_pod_network(pod_dir) else {
        return Ok(());
    };
    if let Some(subnet) = &status.masquerade {
        masquerade::remove(&status.name, uuid, subnet, &status.ips)?;
    }
    // A namespace that is no longer there (the host rebooted since) is no namespace to DEL
    // in: the plugins are then given none, as the CNI spec allows, and still free what they
    // hold on the host.
    let netns = netns_path(pod_dir);
    let netns = match is_netns(&netns) {
        true => netns,
        false => PathBuf::new(),
    };
    del_chain(
        cni_path,
        &status.conf,
        &status.result,
        &status.ports,
        uuid,
        &netns,
    )?;
    let path = PodDir::at(pod_dir).net_status();
    fs::remove_file(&path).map_err(io("removing", &path))
}

/// Frees the addresses of the built-in [`DEFAULT_NETWORK`] (host-local keeps one file per
/// address under `ipam_dir`, naming the pod that has it) whose pod no longer exists (`exists`
/// says which do): a pod removed without its network's DEL (by an rkt that did not record
/// the network before ADD, or by hand). Each goes by the plugins' DEL for that pod, without a
/// namespace, and its masquerading rule with it. Returns the (address, pod) pairs freed.
pub fn release_orphaned_leases(
    ipam_dir: &Path,
    exists: impl Fn(&str) -> bool,
) -> Result<Vec<(String, String)>, CniError> {
    release_orphans(&plugin_path(), ipam_dir, exists, |uuid, ip| {
        masquerade::remove(DEFAULT_NETWORK, uuid, DEFAULT_SUBNET, &[ip.to_owned()])
    })
}

fn release_orphans(
    cni_path: &str,
    ipam_dir: &Path,
    exists: impl Fn(&str) -> bool,
    unmasquerade: impl Fn(&str, &str) -> Result<(), CniError>,
) -> Result<Vec<(String, String)>, CniError> {
    let dir = ipam_dir.join(DEFAULT_NETWORK);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("reading", &dir)(e)),
    };
    let conf = default_network(ipam_dir);
    let mut released = Vec::new();
    for entry in entries.flatten() {
        let Some(ip) = entry
            .file_name()
            .to_str()
            .filter(|name| name.parse::<std::net::IpAddr>().is_ok())
            .map(str::to_owned)
        else {
            continue;
        };
        // "<container ID>\r\n<interface>" (older plugins: the ID alone).
        let Some(uuid) = fs::read_to_string(entry.path())
            .ok()
            .and_then(|text| text.lines().next().map(|l| l.trim().to_owned()))
            .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        else {
            continue;
        };
        if exists(&uuid) {
            continue;
        }
        unmasquerade(&uuid, &ip)?;
        del_chain(
            cni_path,
            &conf,
            &serde_json::Value::Null,
            &[],
            &uuid,
            Path::new(""),
        )?;
        released.push((ip, uuid));
    }
    Ok(released)
}

/// Whether `path` is a network namespace (a bind mount of one), not the empty file under it.
fn is_netns(path: &Path) -> bool {
    // NSFS_MAGIC from linux/magic.h.
    const NSFS_MAGIC: u64 = 0x6e73_6673;
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type as u64 == NSFS_MAGIC)
}

/// ADD of every plugin in order, each given the previous one's result; the last result is
/// the network's. If one fails, the plugins before it are undone (DEL) before the error.
fn add_chain(
    cni_path: &str,
    conf: &serde_json::Value,
    ports: &[PortMapping],
    uuid: &str,
    netns: &Path,
) -> Result<serde_json::Value, CniError> {
    let plugins = network_plugins(conf);
    let is_list = conf.get("plugins").is_some();
    let mut prev = serde_json::Value::Null;
    for (i, plugin) in plugins.iter().enumerate() {
        let input = plugin_input(plugin, is_list.then_some(&prev), ports);
        match run_plugin(cni_path, "ADD", &input, uuid, netns) {
            Ok(result) => prev = result,
            Err(e) => {
                for done in plugins[..i].iter().rev() {
                    let input = plugin_input(done, is_list.then_some(&prev), ports);
                    let _ = run_plugin(cni_path, "DEL", &input, uuid, netns);
                }
                return Err(e);
            }
        }
    }
    Ok(prev)
}

/// DEL of every plugin in reverse order, each given the ADD result (lists only, as the spec
/// says); every plugin is tried, the first failure is reported.
fn del_chain(
    cni_path: &str,
    conf: &serde_json::Value,
    add_result: &serde_json::Value,
    ports: &[PortMapping],
    uuid: &str,
    netns: &Path,
) -> Result<(), CniError> {
    let is_list = conf.get("plugins").is_some();
    let mut first_error = None;
    for plugin in network_plugins(conf).iter().rev() {
        let input = plugin_input(plugin, is_list.then_some(add_result), ports);
        if let Err(e) = run_plugin(cni_path, "DEL", &input, uuid, netns) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Checks that what the network's plugins need is installed (the plugins themselves, and
/// iptables for masquerading and port forwarding), so that a pod on a host without them is
/// refused with one line before it is made, not failed by stage1.
pub fn check_plugins(conf: &serde_json::Value) -> Result<(), CniError> {
    let network = conf["name"].as_str().unwrap_or_default().to_owned();
    let cni_path = plugin_path();
    let found = |dirs: &str, name: &str| dirs.split(':').any(|d| Path::new(d).join(name).exists());
    let mut needs_iptables = false;
    for plugin in network_plugins(conf) {
        let name = plugin["type"].as_str().unwrap_or_default();
        if !found(&cni_path, name) {
            return Err(CniError::Missing {
                network,
                what: format!("the CNI plugin {name}"),
                path: cni_path,
            });
        }
        needs_iptables |= name == "portmap" || plugin["ipMasq"] == true;
    }
    needs_iptables |= conf.get(MASQUERADE_KEY).is_some();
    let sbin = "/usr/sbin:/sbin:/usr/bin:/bin";
    if needs_iptables && !found(sbin, "iptables") {
        return Err(CniError::Missing {
            network,
            what: "iptables".to_owned(),
            path: sbin.to_owned(),
        });
    }
    Ok(())
}

/// Where plugins are looked for: `CNI_PATH` (directories separated by `:`), else Debian's.
fn plugin_path() -> String {
    std::env::var("CNI_PATH").unwrap_or_else(|_| CNI_PLUGIN_DIR.to_owned())
}

fn run_plugin(
    cni_path: &str,
    command: &'static str,
    conf: &serde_json::Value,
    uuid: &str,
    netns: &Path,
) -> Result<serde_json::Value, CniError> {
    let plugin = conf["type"].as_str().unwrap_or_default().to_owned();
    let network = conf["name"].as_str().unwrap_or_default().to_owned();
    let fail = |reason: String| CniError::Plugin {
        plugin: plugin.clone(),
        command,
        network: network.clone(),
        reason,
    };
    let binary = cni_path
        .split(':')
        .map(|d| Path::new(d).join(&plugin))
        .find(|p| p.exists())
        .ok_or_else(|| {
            fail(format!(
                "not found in {cni_path} (install containernetworking-plugins)"
            ))
        })?;
    let mut child = Command::new(&binary)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", uuid)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", POD_IFNAME)
        .env("CNI_PATH", cni_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let input = serde_json::to_vec(conf).expect("conf serializes");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&input).map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        // Plugins report errors as JSON on stdout: {"code": N, "msg": "...", "details": "..."}.
        let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let msg = match err["msg"].as_str() {
            Some(msg) => format!("{msg} {}", err["details"].as_str().unwrap_or_default()),
            None => String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        return Err(fail(msg.trim().to_owned()));
    }
    if out.stdout.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&out.stdout).map_err(|e| fail(format!("unreadable result: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_found_by_name() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("net.d")).unwrap();
        fs::write(
            dir.path().join("net.d/10-a.conf"),
            r#"{"cniVersion":"0.4.0","name":"a","type":"bridge"}"#,
        )
        .unwrap();
        fs::write(
            dir.path().join("net.d/20-bad.conf"),
            r#"{"name":"bad","type":"../../bin/sh"}"#,
        )
        .unwrap();
        let ipam = dir.path().join("ipam");
        assert_eq!(
            load_network(dir.path(), "a", &ipam).unwrap()["type"],
            "bridge"
        );
        assert!(matches!(
            load_network(dir.path(), "b", &ipam),
            Err(CniError::NotFound { .. })
        ));
        // Plugins that are not installed are named before any pod is made.
        let conf = serde_json::json!({"name": "x", "type": "no-such-plugin-here"});
        let err = check_plugins(&conf).unwrap_err().to_string();
        assert!(
            err.contains("no-such-plugin-here") && err.contains("--net=host"),
            "{err}"
        );
        assert!(matches!(
            load_network(dir.path(), "bad", &ipam),
            Err(CniError::BadConfig { .. })
        ));
    }

    #[test]
    fn keys_match_regardless_of_case_as_go_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("net.d")).unwrap();
        fs::write(
            dir.path().join("net.d/10-a.conf"),
            r#"{"CNIVersion":"0.4.0","Name":"a","TYPE":"bridge"}"#,
        )
        .unwrap();
        fs::write(
            dir.path().join("net.d/20-b.conflist"),
            r#"{"cniversion":"0.4.0","NAME":"b","Plugins":[{"Type":"ptp"},
                {"type":"portmap","Capabilities":{"portMappings":true}}]}"#,
        )
        .unwrap();
        // An exact key wins over one that differs in case.
        fs::write(
            dir.path().join("net.d/30-c.conf"),
            r#"{"NAME":"not-c","name":"c","type":"bridge"}"#,
        )
        .unwrap();
        let ipam = dir.path().join("ipam");
        let a = load_network(dir.path(), "a", &ipam).unwrap();
        assert_eq!(
            (&a["type"], &a["cniVersion"]),
            (&"bridge".into(), &"0.4.0".into())
        );
        let b = load_network(dir.path(), "b", &ipam).unwrap();
        let plugins = network_plugins(&b);
        assert_eq!(plugins[0]["type"], "ptp");
        assert_eq!(plugins[0]["name"], "b");
        assert!(forwards_ports(&b));
        assert!(load_network(dir.path(), "c", &ipam).is_ok());
        assert!(load_network(dir.path(), "not-c", &ipam).is_err());
    }

    #[test]
    fn conflists_are_chains_and_default_is_built_in() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = dir.path().join("ipam");
        // Without any file, "default" is the built-in ptp + portmap chain.
        let builtin = load_network(dir.path(), DEFAULT_NETWORK, &ipam).unwrap();
        let plugins = network_plugins(&builtin);
        let types: Vec<_> = plugins.iter().map(|p| p["type"].clone()).collect();
        assert_eq!(types, ["ptp", "portmap"]);
        assert_eq!(plugins[0]["ipam"]["subnet"], DEFAULT_SUBNET);
        assert_eq!(plugins[0]["ipam"]["dataDir"], ipam.to_str().unwrap());
        assert!(plugins.iter().all(|p| p["name"] == "default"));
        assert!(forwards_ports(&builtin));
        // rkt masquerades the subnet itself; the key stays out of what plugins are given.
        assert_eq!(builtin[MASQUERADE_KEY], DEFAULT_SUBNET);
        assert!(plugins[0].get("ipMasq").is_none());
        assert!(
            plugins
                .iter()
                .all(|p| plugin_input(p, None, &[]).get(MASQUERADE_KEY).is_none())
        );

        fs::create_dir_all(dir.path().join("net.d")).unwrap();
        fs::write(
            dir.path().join("net.d/10-chain.conflist"),
            r#"{"cniVersion":"1.0.0","name":"chain","plugins":[
                {"type":"bridge","bridge":"b0"},
                {"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        )
        .unwrap();
        fs::write(
            dir.path().join("net.d/20-empty.conflist"),
            r#"{"cniVersion":"1.0.0","name":"empty","plugins":[]}"#,
        )
        .unwrap();
        fs::write(
            dir.path().join("net.d/30-evil.conflist"),
            r#"{"name":"evil","plugins":[{"type":"bridge"},{"type":"../sh"}]}"#,
        )
        .unwrap();
        // A file named "default" replaces the built-in one.
        fs::write(
            dir.path().join("net.d/99-default.conf"),
            r#"{"cniVersion":"0.4.0","name":"default","type":"bridge"}"#,
        )
        .unwrap();
        let chain = load_network(dir.path(), "chain", &ipam).unwrap();
        let plugins = network_plugins(&chain);
        assert_eq!(plugins.len(), 2);
        // Each plugin gets the list's name and version.
        assert_eq!(plugins[1]["name"], "chain");
        assert_eq!(plugins[1]["cniVersion"], "1.0.0");
        assert_eq!(plugins[1]["type"], "portmap");
        assert!(forwards_ports(&chain));
        for bad in ["empty", "evil"] {
            assert!(
                matches!(
                    load_network(dir.path(), bad, &ipam),
                    Err(CniError::BadConfig { .. })
                ),
                "{bad}"
            );
        }
        let mine = load_network(dir.path(), DEFAULT_NETWORK, &ipam).unwrap();
        assert_eq!(network_plugins(&mine), std::slice::from_ref(&mine));
        assert!(!forwards_ports(&mine));
    }

    /// A fake plugin: logs `TYPE COMMAND` and the configuration it was given, answers with
    /// a result naming itself (and what it was handed before).
    fn fake_plugin(dir: &Path, name: &str, fail_add: bool) {
        let log = dir.join("log");
        let script = format!(
            r#"#!/bin/sh
input=$(cat)
printf '%s %s %s\n' "{name}" "$CNI_COMMAND" "$input" >> "{log}"
if [ "$CNI_COMMAND" = ADD ]; then
  {fail}
  printf '{{"cniVersion":"1.0.0","ips":[{{"address":"10.9.9.2/24"}}],"dns":{{"domain":"{name}"}}}}'
fi
"#,
            log = log.display(),
            fail = match fail_add {
                true => r#"printf '{"code":7,"msg":"no luck"}'; exit 1"#,
                false => "",
            },
        );
        let path = dir.join(name);
        fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn log_lines(dir: &Path) -> Vec<(String, String, serde_json::Value)> {
        fs::read_to_string(dir.join("log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let mut parts = l.splitn(3, ' ');
                let name = parts.next().unwrap().to_owned();
                let cmd = parts.next().unwrap().to_owned();
                (
                    name,
                    cmd,
                    serde_json::from_str(parts.next().unwrap()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn chain_passes_results_along_and_deletes_in_reverse() {
        let dir = tempfile::tempdir().unwrap();
        fake_plugin(dir.path(), "first", false);
        fake_plugin(dir.path(), "second", false);
        let conf = serde_json::json!({"cniVersion":"1.0.0","name":"n","plugins":[
            {"type":"first"},
            {"type":"second","capabilities":{"portMappings":true}}]});
        let ports = [PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: "127.0.0.1".into(),
        }];
        let cni_path = dir.path().to_str().unwrap();
        let netns = dir.path().join("netns");
        let result = add_chain(cni_path, &conf, &ports, "u", &netns).unwrap();
        // The network's result is the last plugin's.
        assert_eq!(result["dns"]["domain"], "second");
        del_chain(cni_path, &conf, &result, &ports, "u", &netns).unwrap();
        let log = log_lines(dir.path());
        let order: Vec<_> = log.iter().map(|(n, c, _)| format!("{n} {c}")).collect();
        assert_eq!(
            order,
            ["first ADD", "second ADD", "second DEL", "first DEL"]
        );
        // The first plugin has nothing before it; the second gets its result.
        assert!(log[0].2.get("prevResult").is_none());
        assert_eq!(log[1].2["prevResult"]["dns"]["domain"], "first");
        assert_eq!(log[1].2["name"], "n");
        // Only the plugin declaring the capability gets the port mappings.
        assert!(log[0].2.get("runtimeConfig").is_none());
        assert_eq!(
            log[1].2["runtimeConfig"]["portMappings"],
            serde_json::json!([{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":"127.0.0.1"}])
        );
        // DEL gets the final ADD result, and the same mappings.
        for (_, _, input) in &log[2..] {
            assert_eq!(input["prevResult"]["dns"]["domain"], "second");
        }
        assert!(log[2].2["runtimeConfig"]["portMappings"].is_array());
    }

    #[test]
    fn a_failing_plugin_undoes_the_ones_before_it() {
        let dir = tempfile::tempdir().unwrap();
        fake_plugin(dir.path(), "first", false);
        fake_plugin(dir.path(), "broken", true);
        fake_plugin(dir.path(), "third", false);
        let conf = serde_json::json!({"cniVersion":"1.0.0","name":"n","plugins":[
            {"type":"first"},{"type":"broken"},{"type":"third"}]});
        let cni_path = dir.path().to_str().unwrap();
        let err = add_chain(cni_path, &conf, &[], "u", &dir.path().join("netns")).unwrap_err();
        assert!(err.to_string().contains("no luck"), "{err}");
        assert!(err.to_string().contains("broken ADD"), "{err}");
        let order: Vec<_> = log_lines(dir.path())
            .iter()
            .map(|(n, c, _)| format!("{n} {c}"))
            .collect();
        assert_eq!(order, ["first ADD", "broken ADD", "first DEL"]);
    }

    #[test]
    fn a_single_plugin_conf_is_run_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        fake_plugin(dir.path(), "solo", false);
        let conf = serde_json::json!({"cniVersion":"0.4.0","name":"n","type":"solo"});
        let cni_path = dir.path().to_str().unwrap();
        let netns = dir.path().join("netns");
        let result = add_chain(cni_path, &conf, &[], "u", &netns).unwrap();
        del_chain(cni_path, &conf, &result, &[], "u", &netns).unwrap();
        let log = log_lines(dir.path());
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].2, conf);
        assert_eq!(log[1].2, conf);
    }

    #[test]
    fn status_summary() {
        let status = PodNetStatus {
            name: "n".into(),
            ips: vec!["10.1.0.2/24".into(), "fd00::2/64".into()],
            conf: serde_json::Value::Null,
            gateway: None,
            ports: Vec::new(),
            result: serde_json::Value::Null,
            masquerade: None,
        };
        assert_eq!(status.summary(), "n:ip4=10.1.0.2,ip6=fd00::2");
    }

    /// A plugin that leases like host-local: ADD writes `<leases>/<address>` naming the
    /// container, DEL removes the container's lease. It logs each call with CNI_NETNS, and on
    /// ADD keeps a copy of the pod's `net.json` as it is at that moment. `fail_add`: ADD exits
    /// with an error after taking the address, as a stage1 killed right then would leave it.
    fn leasing_plugin(dir: &Path, name: &str, pod_dir: &Path, leases: &Path, fail_add: bool) {
        let script = format!(
            r#"#!/bin/sh
cat > /dev/null
echo "{name} $CNI_COMMAND $CNI_CONTAINERID netns=$CNI_NETNS" >> "{dir}/calls"
if [ "$CNI_COMMAND" = ADD ]; then
  cp "{pod}/net.json" "{dir}/record-at-add" 2>/dev/null
  mkdir -p "{leases}"
  printf '%s\r\neth0' "$CNI_CONTAINERID" > "{leases}/10.9.9.2"
  {fail}
  printf '{{"cniVersion":"0.4.0","ips":[{{"address":"10.9.9.2/24"}}]}}'
fi
if [ "$CNI_COMMAND" = DEL ]; then
  for lease in "{leases}"/*; do
    [ "$(head -n 1 "$lease" | tr -d '\r')" = "$CNI_CONTAINERID" ] && rm -f "$lease"
  done
fi
exit 0
"#,
            dir = dir.display(),
            pod = pod_dir.display(),
            leases = leases.display(),
            fail = match fail_add {
                true => r#"printf '{"code":11,"msg":"gone"}'; exit 1"#,
                false => "",
            },
        );
        let path = dir.join(name);
        fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn calls(dir: &Path) -> Vec<String> {
        fs::read_to_string(dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The pod's network is on disk before ADD runs: a stage1 that dies while ADD holds an
    /// address (here: the plugin fails after taking it) leaves a record from which the
    /// teardown, stage1's own or gc's, gives the address back. The namespace, not mounted
    /// any more, is not handed to DEL.
    #[test]
    fn the_network_is_recorded_before_add_so_a_crash_midway_is_torn_down() {
        let dir = tempfile::tempdir().unwrap();
        let (cni, pod, leases) = (
            dir.path().join("cni"),
            dir.path().join("pod"),
            dir.path().join("leases"),
        );
        fs::create_dir_all(&cni).unwrap();
        fs::create_dir_all(&pod).unwrap();
        leasing_plugin(&cni, "leaser", &pod, &leases, true);
        let conf = serde_json::json!({"cniVersion":"0.4.0","name":"n","type":"leaser"});
        let netns = PodDir::at(&pod).netns();
        fs::write(&netns, "").unwrap();
        let cni_path = cni.to_str().unwrap();
        let uuid = "6f1a4e8e-3a52-4b8f-9c55-7f7b2d0e1c11";
        let err = join_network(cni_path, &pod, uuid, &conf, &[], &netns).unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");
        let at_add: PodNetStatus =
            serde_json::from_slice(&fs::read(cni.join("record-at-add")).unwrap())
                .expect("no network record on disk while ADD ran");
        assert_eq!(at_add.conf, conf);
        assert!(
            leases.join("10.9.9.2").exists(),
            "the plugin took no address"
        );
        // What stage1's exit or gc does with the pod directory.
        leave_network(cni_path, &pod, uuid).unwrap();
        assert!(
            !leases.join("10.9.9.2").exists(),
            "the address is still taken"
        );
        assert!(read_pod_network(&pod).is_none());
        assert_eq!(
            calls(&cni),
            [
                format!("leaser ADD {uuid} netns={}", netns.display()),
                format!("leaser DEL {uuid} netns="),
            ]
        );
        // Done: a second teardown has nothing to do.
        leave_network(cni_path, &pod, uuid).unwrap();
        assert_eq!(calls(&cni).len(), 2);
    }

    /// gc frees the default network's addresses whose pods are gone (removed before their
    /// network's DEL), and leaves those of pods that exist.
    #[test]
    fn addresses_of_pods_that_are_gone_are_released() {
        let dir = tempfile::tempdir().unwrap();
        let (cni, ipam) = (dir.path().join("cni"), dir.path().join("ipam"));
        let leases = ipam.join(DEFAULT_NETWORK);
        fs::create_dir_all(&cni).unwrap();
        fs::create_dir_all(&leases).unwrap();
        for plugin in ["ptp", "portmap"] {
            leasing_plugin(&cni, plugin, dir.path(), &leases, false);
        }
        let gone = "0b6a2a8e-5d55-4f0e-8a0c-2d4c7b0f9a01";
        let live = "9e3c1f2a-7b6d-4c1e-b0a4-5f8e2d3c4b02";
        fs::write(
            leases.join("172.16.28.5"),
            format!(
                "{gone}
eth0"
            ),
        )
        .unwrap();
        fs::write(
            leases.join("172.16.28.6"),
            format!(
                "{live}
eth0"
            ),
        )
        .unwrap();
        // host-local's own files, and a lease that is no pod's.
        fs::write(leases.join("last_reserved_ip.0"), "172.16.28.6").unwrap();
        fs::write(leases.join("lock"), "").unwrap();
        fs::write(
            leases.join("172.16.28.7"),
            "not-a-pod
eth0",
        )
        .unwrap();
        let unmasqueraded = std::cell::RefCell::new(Vec::new());
        let released = release_orphans(
            cni.to_str().unwrap(),
            &ipam,
            |uuid| uuid == live,
            |uuid, ip| {
                unmasqueraded.borrow_mut().push(format!("{uuid} {ip}"));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(released, [("172.16.28.5".to_owned(), gone.to_owned())]);
        assert_eq!(*unmasqueraded.borrow(), [format!("{gone} 172.16.28.5")]);
        assert_eq!(
            calls(&cni),
            [
                format!("portmap DEL {gone} netns="),
                format!("ptp DEL {gone} netns="),
            ]
        );
        let mut left: Vec<String> = fs::read_dir(&leases)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["172.16.28.6", "172.16.28.7", "last_reserved_ip.0", "lock"]
        );
    }
}
