//! A pod's own network namespace joined to a host network through CNI plugins (Debian's
//! `containernetworking-plugins`), configured by `<local-config>/net.d/*.conf` as in the
//! original rkt. The namespace is a bind mount at `<pod>/netns` (so unmounting the pod ends
//! it); what ADD gave is kept in `<pod>/net.json`, so that DEL (at stage1's exit, else at gc)
//! uses the configuration the pod started with.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where Debian installs the plugins (`CNI_PATH` overrides).
pub const CNI_PLUGIN_DIR: &str = "/usr/lib/cni";
/// The interface the pod sees.
const POD_IFNAME: &str = "eth0";
/// What ADD gave, in the pod directory.
const NET_STATUS_FILE: &str = "net.json";
/// The namespace's bind mount, in the pod directory.
const NETNS_FILE: &str = "netns";

/// Why a CNI network could not be found, set up or torn down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CniError {
    #[error(
        "--net={name}: no network of that name in {dir}/*.conf (networks: host, none, or one configured there)"
    )]
    NotFound { name: String, dir: PathBuf },
    #[error("{path}: {reason}")]
    BadConfig { path: PathBuf, reason: String },
    #[error("CNI plugin {plugin} {command} for network {network}: {reason}")]
    Plugin {
        plugin: String,
        command: &'static str,
        network: String,
        reason: String,
    },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CniError {
    let path = path.to_owned();
    move |source| CniError::Io {
        action,
        path,
        source,
    }
}

/// The configuration of network `name` from `<config_dir>/net.d/*.conf` (its `"name"`).
pub fn load_network(config_dir: &Path, name: &str) -> Result<serde_json::Value, CniError> {
    let dir = config_dir.join("net.d");
    let not_found = || CniError::NotFound {
        name: name.to_owned(),
        dir: dir.clone(),
    };
    let Ok(entries) = fs::read_dir(&dir) else {
        return Err(not_found());
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    paths.sort();
    for path in paths {
        let bytes = fs::read(&path).map_err(io("reading", &path))?;
        let conf: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| CniError::BadConfig {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if conf["name"] != name {
            continue;
        }
        let plugin = conf["type"].as_str().unwrap_or_default();
        if plugin.is_empty()
            || !plugin
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(CniError::BadConfig {
                path,
                reason: "\"type\" must name a plugin (e.g. \"bridge\")".to_owned(),
            });
        }
        return Ok(conf);
    }
    Err(not_found())
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
    pod_dir.join(NETNS_FILE)
}

/// Creates the pod's network namespace (util-linux `unshare --net=FILE` bind-mounts it) and
/// joins it to the network with the plugin's ADD; records the result.
pub fn setup_pod_network(
    pod_dir: &Path,
    uuid: &str,
    conf: &serde_json::Value,
) -> Result<PodNetStatus, CniError> {
    let netns = netns_path(pod_dir);
    fs::write(&netns, "").map_err(io("creating", &netns))?;
    let out = Command::new("unshare")
        .arg(format!("--net={}", netns.display()))
        .arg("true")
        .output()
        .map_err(io("running unshare (util-linux) for", &netns))?;
    if !out.status.success() {
        return Err(CniError::Io {
            action: "creating the network namespace",
            path: netns,
            source: std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        });
    }
    let result = run_plugin("ADD", conf, uuid, &netns)?;
    let ips = result["ips"]
        .as_array()
        .map(|ips| {
            ips.iter()
                .filter_map(|ip| ip["address"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let gateway = result["ips"]
        .as_array()
        .and_then(|ips| ips.iter().find_map(|ip| ip["gateway"].as_str()))
        .map(str::to_owned);
    let status = PodNetStatus {
        name: conf["name"].as_str().unwrap_or_default().to_owned(),
        ips,
        conf: conf.clone(),
        gateway,
    };
    let path = pod_dir.join(NET_STATUS_FILE);
    let json = serde_json::to_vec_pretty(&status).expect("status serializes");
    fs::write(&path, json).map_err(io("writing", &path))?;
    Ok(status)
}

/// What the pod got from its network, if it has one.
pub fn read_pod_network(pod_dir: &Path) -> Option<PodNetStatus> {
    serde_json::from_slice(&fs::read(pod_dir.join(NET_STATUS_FILE)).ok()?).ok()
}

/// The plugin's DEL (frees the pod's address and host link), then forgets the network. Does
/// nothing for a pod without one; safe to repeat (stage1 at exit, gc after a crash).
pub fn teardown_pod_network(pod_dir: &Path, uuid: &str) -> Result<(), CniError> {
    let Some(status) = read_pod_network(pod_dir) else {
        return Ok(());
    };
    run_plugin("DEL", &status.conf, uuid, &netns_path(pod_dir))?;
    let path = pod_dir.join(NET_STATUS_FILE);
    fs::remove_file(&path).map_err(io("removing", &path))
}

fn run_plugin(
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
    let cni_path = std::env::var("CNI_PATH").unwrap_or_else(|_| CNI_PLUGIN_DIR.to_owned());
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
        .env("CNI_PATH", &cni_path)
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
        assert_eq!(load_network(dir.path(), "a").unwrap()["type"], "bridge");
        assert!(matches!(
            load_network(dir.path(), "b"),
            Err(CniError::NotFound { .. })
        ));
        assert!(matches!(
            load_network(dir.path(), "bad"),
            Err(CniError::BadConfig { .. })
        ));
    }

    #[test]
    fn status_summary() {
        let status = PodNetStatus {
            name: "n".into(),
            ips: vec!["10.1.0.2/24".into(), "fd00::2/64".into()],
            conf: serde_json::Value::Null,
            gateway: None,
        };
        assert_eq!(status.summary(), "n:ip4=10.1.0.2,ip6=fd00::2");
    }
}
