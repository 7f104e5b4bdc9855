//! The default network, `--port` forwarding through the portmap plugin, the pod's address in
//! `rkt list`, and pod sysctls: proven from the host side (a TCP answer through the forwarded
//! port) and from inside the app (what it reads in /proc/sys).

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{PodTest, Test, check, wait_for};
use crate::{Ctx, TestResult};

pub(crate) const TESTS: &[(&str, Test)] = &[
    (
        "port_forward_on_the_default_network_reaches_the_app",
        port_forward_on_the_default_network_reaches_the_app,
    ),
    (
        "port_forward_through_a_conflist_from_net_d",
        port_forward_through_a_conflist_from_net_d,
    ),
    (
        "sysctl_is_set_in_the_pods_network_only",
        sysctl_is_set_in_the_pods_network_only,
    ),
];

/// The host port the tests forward (loopback only).
const HOST_PORT: u16 = 18080;

/// Skips the test unless the tools the default network needs are there.
fn default_network_tools(ctx: &Ctx) -> TestResult {
    for tool in [
        "/usr/lib/cni/ptp",
        "/usr/lib/cni/portmap",
        "/usr/sbin/iptables",
    ] {
        if ctx.systemd.run(&["test", "-x", tool])?.status.code() != Some(0) {
            return crate::skip(&format!(
                "no {tool} (install containernetworking-plugins and iptables)"
            ));
        }
    }
    Ok(())
}

/// `rkt prepare` with `args` fails with 254 and a message holding `words`, leaving no pod.
fn refused(t: &PodTest, args: &[&str], words: &[&str]) -> TestResult {
    let mut all = vec!["prepare"];
    all.extend_from_slice(args);
    let out = t.rkt(&all)?;
    let err = String::from_utf8_lossy(&out.stderr);
    check(
        out.status.code() == Some(254)
            && err.trim().lines().count() == 1
            && words.iter().all(|w| err.contains(w)),
        || format!("prepare {args:?}: {} {err}", out.status),
    )?;
    let list = t.ok(&["list", "--no-legend"])?;
    check(list.trim().is_empty(), || {
        format!("prepare {args:?} left a pod: {list}")
    })
}

/// What the server at `addr` answers (bounded: 3 s to connect, 3 s to read).
fn answer(addr: &str) -> Result<String, String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    conn.read_to_string(&mut text)
        .map_err(|e| format!("reading from {addr}: {e}"))?;
    Ok(text)
}

/// `rkt run --port=http:127.0.0.1:18080` (the default network, no --net) of an app that declares port http
/// (8080): a connection from the host to 127.0.0.1:18080 gets the app's answer; `rkt list`
/// (table and JSON) shows the pod's address on the default network; the app sees itself on
/// 172.16.28.0/24. After `rkt stop` the address and the forwarding rules are gone; a pod
/// killed with its stage1 keeps them until `rkt gc`. Undeclared ports and --port without a
/// network of the pod's own are refused before anything starts.
fn port_forward_on_the_default_network_reaches_the_app(ctx: &Ctx) -> TestResult {
    default_network_tools(ctx)?;
    let t = PodTest::new(ctx)?;
    let image = t.image("inspect-serve");
    refused(
        &t,
        &["--net=default", "--port=nope:18080", &image],
        &["\"nope\"", "http (8080/tcp)"],
    )?;
    refused(
        &t,
        &["--net=host", "--port=http:18080", &image],
        &["--net=host"],
    )?;
    refused(
        &t,
        &["--net=none", "--port=http:18080", &image],
        &["--net=none"],
    )?;
    refused(&t, &["--net=default", "--port=http:0", &image], &["http:0"])?;

    let ipam = format!("{}/net/ipam/default", t.dir);
    let leased = |ip: &str| {
        t.ctx
            .systemd
            .run(&["test", "-e", &format!("{ipam}/{ip}")])
            .is_ok_and(|o| o.status.success())
    };
    // The plugins' NAT rules (masquerade, DNAT) carry the pod's UUID (CNI's container ID) in
    // a comment; rules of other pods, or left by an earlier run, do not count.
    let nat_mentions = |uuid: &str| {
        t.ctx
            .systemd
            .ok(&["iptables", "-t", "nat", "-S"])
            .map(|nat| nat.contains(&format!("id: \\\"{uuid}\\\"")))
    };

    let port_flag = format!("--port=http:127.0.0.1:{HOST_PORT}");
    let (mut child, uuid) = spawn_server(&t, &[&port_flag])?;
    let result = (|| {
        let machine = format!("rkt-{uuid}");
        let app_log = || t.journal(&["-M", &machine, "-t", "inspect-serve"]);
        let list = t.ok(&["list", "--no-legend", "--full"])?;
        let row = list
            .lines()
            .find(|l| l.starts_with(&uuid))
            .ok_or_else(|| format!("rkt list: {list}"))?;
        let ip = row
            .split_whitespace()
            .find_map(|w| w.strip_prefix("default:ip4="))
            .ok_or_else(|| format!("no default:ip4= in rkt list: {row}"))?
            .to_owned();
        check(ip.starts_with("172.16.28."), || {
            format!("address {ip} is not in 172.16.28.0/24")
        })?;
        let json = t.ok(&["list", "--format=json"])?;
        let pods: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| format!("list json: {e}: {json}"))?;
        let net = &pods[0]["networks"][0];
        check(
            net["netName"] == "default"
                && net["ip"] == ip.as_str()
                && net["mask"] == "255.255.255.0",
            || format!("rkt list --format=json networks: {json}"),
        )?;
        check(app_log().contains(&ip), || {
            format!("the app does not see {ip}: {}", app_log())
        })?;
        check(leased(&ip), || {
            format!("{ip} is not leased while the pod runs")
        })?;
        check(nat_mentions(&uuid)?, || {
            "no NAT rules name the running pod: this test proves nothing".into()
        })?;
        // rkt's own masquerading of the default network: one rule for the pod's address.
        let masquerade = format!("-A POSTROUTING -s {ip}/32 ! -d 172.16.28.0/24");
        let masquerades = || {
            t.ctx
                .systemd
                .ok(&["iptables", "-t", "nat", "-S"])
                .map(|nat| {
                    nat.lines()
                        .any(|l| l.starts_with(&masquerade) && l.ends_with("-j MASQUERADE"))
                })
        };
        check(masquerades()?, || {
            format!("no masquerading rule for {ip} while the pod runs")
        })?;

        let answered = answer(&format!("127.0.0.1:{HOST_PORT}"))?;
        check(answered == "hello-through-port\n", || {
            format!("answer through the forwarded port: {answered:?}")
        })?;
        check(wait_for(5, || app_log().contains("served=")), || {
            format!("the app did not see the connection: {}", app_log())
        })?;

        t.ok(&["stop", &uuid])?;
        check(
            wait_for(30, || matches!(child.try_wait(), Ok(Some(_)))),
            || "rkt run did not return after rkt stop".into(),
        )?;
        check(!leased(&ip), || {
            format!("{ip} is still leased after the pod stopped")
        })?;
        check(!nat_mentions(&uuid)?, || {
            format!("NAT rules for pod {uuid} are left after it stopped")
        })?;
        check(!masquerades()?, || {
            format!("the masquerading rule for {ip} is left after the pod stopped")
        })?;
        check(answer(&format!("127.0.0.1:{HOST_PORT}")).is_err(), || {
            "the port still answers after the pod stopped".into()
        })?;
        killed_pod_network_freed_by_gc(&t, &port_flag, &leased, &nat_mentions)?;
        t.gc_leaves_nothing(&uuid)
    })();
    stop_pod(&t, &uuid, &mut child);
    result
}

/// Stops the pod and collects it, so that its network is torn down even when a check failed
/// (the sandbox shares the machine's network namespace: no NAT rules may be left behind),
/// and ends `rkt run`.
fn stop_pod(t: &PodTest, uuid: &str, child: &mut std::process::Child) {
    let _ = t.rkt(&["stop", uuid]);
    if !wait_for(30, || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
    }
    let _ = child.wait();
    let _ = t.rkt(&["gc", "--grace-period=0s"]);
}

/// A pod on the default network killed with its stage1 (no teardown) keeps its address and
/// forwarding until `rkt gc` runs the chain's DEL.
fn killed_pod_network_freed_by_gc(
    t: &PodTest,
    port_flag: &str,
    leased: &dyn Fn(&str) -> bool,
    nat_mentions: &dyn Fn(&str) -> Result<bool, String>,
) -> TestResult {
    t.ctx.systemd.ok(&["rm", "-f", &t.uuid_file()])?;
    let (mut child, uuid) = spawn_server(t, &["--net=default", port_flag])?;
    let result = (|| {
        let status = t.ok(&["status", &uuid])?;
        let ip = status
            .lines()
            .find_map(|l| l.strip_prefix("networks=default:ip4="))
            .ok_or_else(|| format!("rkt status of the running pod: {status}"))?
            .to_owned();
        t.kill_stage1(&mut child, &uuid)?;
        check(leased(&ip) && nat_mentions(&uuid)?, || {
            "the killed stage1 tore its network down: this test proves nothing".into()
        })?;
        t.ok(&["gc", "--grace-period=0s"])?;
        check(!leased(&ip), || {
            format!("{ip} is still leased after rkt gc")
        })?;
        check(!nat_mentions(&uuid)?, || {
            format!("NAT rules for pod {uuid} are left after rkt gc")
        })
    })();
    stop_pod(t, &uuid, &mut child);
    result
}

/// A user's `.conflist` in net.d (bridge + host-local, then portmap) chains its plugins: the
/// app gets an address of the bridge's range, and a connection from the host to the bridge's
/// address on the forwarded port (no host IP given: every local address) reaches it. A
/// `.conf` network without portmap refuses --port before anything starts.
fn port_forward_through_a_conflist_from_net_d(ctx: &Ctx) -> TestResult {
    const BRIDGE: &str = "rkt-systest1";
    for tool in [
        "/usr/lib/cni/bridge",
        "/usr/lib/cni/portmap",
        "/usr/sbin/iptables",
    ] {
        if ctx.systemd.run(&["test", "-x", tool])?.status.code() != Some(0) {
            return crate::skip(&format!(
                "no {tool} (install containernetworking-plugins and iptables)"
            ));
        }
    }
    let t = PodTest::new(ctx)?;
    let config = format!("{}/config", t.dir);
    let ipam = format!("{}/ipam", t.dir);
    let chain = format!(
        r#"{{"cniVersion":"1.0.0","name":"chain","plugins":[
  {{"type":"bridge","bridge":"{BRIDGE}","isGateway":true,"ipMasq":false,
    "ipam":{{"type":"host-local","subnet":"10.222.44.0/24","dataDir":"{ipam}"}}}},
  {{"type":"portmap","capabilities":{{"portMappings":true}}}}]}}"#
    );
    let plain = format!(
        r#"{{"cniVersion":"0.4.0","name":"plain","type":"bridge","bridge":"{BRIDGE}","ipam":{{"type":"host-local","subnet":"10.222.44.0/24","dataDir":"{ipam}"}}}}"#
    );
    ctx.systemd
        .ok(&["mkdir", "-p", &format!("{config}/net.d")])?;
    for (file, text) in [("10-chain.conflist", &chain), ("20-plain.conf", &plain)] {
        ctx.systemd.ok(&[
            "sh",
            "-c",
            r#"printf '%s' "$1" > "$2""#,
            "sh",
            text,
            &format!("{config}/net.d/{file}"),
        ])?;
    }
    let image = t.image("inspect-serve");
    refused(
        &t,
        &[
            "--local-config",
            &config,
            "--net=plain",
            "--port=http:18081",
            &image,
        ],
        &["plain", "portmap"],
    )?;
    let result = (|| {
        let (mut child, uuid) = spawn_server(
            &t,
            &[
                "--local-config",
                &config,
                "--net=chain",
                "--port=http:18081",
            ],
        )?;
        let served = (|| {
            let list = t.ok(&["list", "--no-legend", "--full"])?;
            let ip = list
                .split_whitespace()
                .find_map(|w| w.strip_prefix("chain:ip4="))
                .ok_or_else(|| format!("no chain:ip4= in rkt list: {list}"))?
                .to_owned();
            check(ip.starts_with("10.222.44.") && ip != "10.222.44.1", || {
                format!("address {ip} is not the bridge's range")
            })?;
            let answered = answer("10.222.44.1:18081")?;
            check(answered == "hello-through-port\n", || {
                format!("answer through the forwarded port: {answered:?}")
            })?;
            t.ok(&["stop", &uuid])?;
            check(
                wait_for(30, || matches!(child.try_wait(), Ok(Some(_)))),
                || "rkt run did not return after rkt stop".into(),
            )?;
            let leases = ctx.systemd.ok(&["ls", &format!("{ipam}/chain")])?;
            check(!leases.lines().any(|l| l == ip), || {
                format!("{ip} is still leased after the pod stopped: {leases}")
            })
        })();
        stop_pod(&t, &uuid, &mut child);
        served?;
        t.gc_leaves_nothing(&uuid)
    })();
    let _ = ctx.systemd.run(&["ip", "link", "del", BRIDGE]);
    result
}

/// Starts `rkt run FLAGS inspect-serve` in the background and waits (bounded) until the app
/// listens. Returns the child and the pod's UUID.
fn spawn_server(t: &PodTest, flags: &[&str]) -> Result<(std::process::Child, String), String> {
    let uuid_file = t.uuid_file();
    let mut child = t
        .ctx
        .systemd
        .command(&t.rkt)
        .args(["--dir", &t.dir, "--insecure-options=image", "run"])
        .args(["--uuid-file-save", &uuid_file])
        .args(flags)
        .arg(t.image("inspect-serve"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting rkt run: {e}"))?;
    let started = (|| -> Result<String, String> {
        check(wait_for(30, || t.read_uuid().is_some()), || {
            "no UUID saved".into()
        })?;
        let uuid = t.read_uuid().unwrap_or_default();
        let machine = format!("rkt-{uuid}");
        check(
            wait_for(30, || {
                t.journal(&["-M", &machine, "-t", "inspect-serve"])
                    .contains("serving=8080")
            }),
            || "the app never listened".into(),
        )?;
        Ok(uuid)
    })();
    match started {
        Ok(uuid) => Ok((child, uuid)),
        Err(e) => {
            if let Some(uuid) = t.read_uuid() {
                let _ = t.rkt(&["stop", &uuid]);
            }
            let _ = child.kill();
            let out = child.wait_with_output().ok();
            let stderr = out
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default();
            Err(format!("{e}; rkt run said: {stderr}"))
        }
    }
}

/// `--sysctl=net.ipv4.ip_unprivileged_port_start=123` with `--net=none`: the app reads 123
/// from /proc/sys, the host keeps its own value. A parameter outside the pod's network
/// namespace, or one under --net=host, is refused before anything starts.
fn sysctl_is_set_in_the_pods_network_only(ctx: &Ctx) -> TestResult {
    const KEY: &str = "net.ipv4.ip_unprivileged_port_start";
    const FILE: &str = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
    let t = PodTest::new(ctx)?;
    let image = t.image("inspect-net");
    refused(
        &t,
        &["--net=none", "--sysctl=kernel.msgmax=1", &image],
        &["kernel.msgmax", "net.*"],
    )?;
    refused(
        &t,
        &["--net=host", &format!("--sysctl={KEY}=123"), &image],
        &["--net=host"],
    )?;
    refused(
        &t,
        &["--net=none", "--sysctl=net.ipv4.x", &image],
        &["NAME=VALUE"],
    )?;
    let host_before = ctx.systemd.ok(&["cat", FILE])?;
    check(host_before.trim() != "123", || {
        "the host already has the value the test sets".into()
    })?;
    let uuid_file = t.uuid_file();
    let sysctl = format!("--sysctl={KEY}=123");
    let out = t.rkt(&[
        "run",
        "--uuid-file-save",
        &uuid_file,
        "--net=none",
        &sysctl,
        &image,
        "--exec=/inspect",
        "--",
        "--read-file",
        FILE,
        "---",
    ])?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    let machine_id = format!("_MACHINE_ID={}", uuid.replace('-', ""));
    let log = t.journal(&["-m", "-t", "inspect-net", &machine_id]);
    check(out.status.success(), || {
        format!(
            "rkt run exited {}: {}\napp output: {log}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    check(log.lines().any(|l| l == format!("file:{FILE}=123")), || {
        format!("the app should read 123 from {FILE}: {log}")
    })?;
    let manifest = t.ok(&["cat-manifest", &uuid])?;
    check(
        manifest.contains("os/unix/sysctl") && manifest.contains(KEY),
        || format!("the pod manifest has no sysctl isolator: {manifest}"),
    )?;
    let host_after = ctx.systemd.ok(&["cat", FILE])?;
    check(host_after == host_before, || {
        format!("the host's {KEY} changed: {host_before:?} -> {host_after:?}")
    })?;
    t.gc_leaves_nothing(&uuid)
}
