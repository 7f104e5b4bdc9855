//! What a root app in a default pod cannot do to the host or to its pod, tried from inside the
//! app (the `inspect` probes report each call's result): write the host's kernel tunables,
//! make cgroups, open raw or packet sockets, make block devices, signal the pod's PID 1 (which
//! would stop the pod's other apps), or reach the sockets another pod is started with; and
//! what an image or `--insecure-options` can still ask for.

use std::process::Stdio;

use super::{PodTest, check, wait_for};
use crate::{Ctx, TestResult};

pub(crate) const TESTS: &[(&str, super::Test)] = &[
    (
        "isolation_a_root_app_cannot_reach_the_host_kernel_or_the_pods_init",
        a_root_app_cannot_reach_the_host_kernel_or_the_pods_init,
    ),
    (
        "isolation_with_net_host_too_and_no_pods_notify_socket_is_reachable",
        with_net_host_too_and_no_pods_notify_socket_is_reachable,
    ),
    (
        "isolation_images_and_insecure_options_can_still_ask_for_more",
        images_and_insecure_options_can_still_ask_for_more,
    ),
];

const OVERCOMMIT: &str = "/proc/sys/vm/overcommit_ratio";
const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";
/// SIGRTMIN+4 (glibc's SIGRTMIN is 34): the pod's systemd halts on it.
const SIGRTMIN_4: &str = "38";

/// The host's kernel tunables the probe tries, read before the pod runs. Dropped, it puts
/// back a ratio an app changed (as it would without the protection).
struct HostTunables<'a> {
    ctx: &'a Ctx,
    overcommit: String,
    core_pattern: String,
}

impl<'a> HostTunables<'a> {
    fn read(ctx: &'a Ctx) -> Result<Self, String> {
        Ok(HostTunables {
            ctx,
            overcommit: ctx.systemd.ok(&["cat", OVERCOMMIT])?.trim().to_owned(),
            core_pattern: ctx.systemd.ok(&["cat", CORE_PATTERN])?,
        })
    }

    /// A valid value the host does not have: what the app tries to write.
    fn other_overcommit(&self) -> String {
        match self.overcommit.parse::<u32>() {
            Ok(100) => "99".to_owned(),
            Ok(n) => (n + 1).to_string(),
            Err(_) => "51".to_owned(),
        }
    }

    fn overcommit_now(&self) -> String {
        self.ctx
            .systemd
            .ok(&["cat", OVERCOMMIT])
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    }

    /// The host still has the values read before.
    fn unchanged(&self) -> TestResult {
        let now = self.overcommit_now();
        check(now == self.overcommit, || {
            format!(
                "the app changed the host's {OVERCOMMIT}: {} -> {now}",
                self.overcommit
            )
        })?;
        let pattern = self.ctx.systemd.ok(&["cat", CORE_PATTERN])?;
        check(pattern == self.core_pattern, || {
            format!("the host's core_pattern changed to {pattern:?}")
        })
    }
}

impl Drop for HostTunables<'_> {
    fn drop(&mut self) {
        if self.overcommit_now() != self.overcommit {
            let _ = self.ctx.systemd.run(&[
                "sh",
                "-c",
                &format!("echo {} > {OVERCOMMIT}", self.overcommit),
            ]);
        }
    }
}

/// The `inspect` arguments trying every escape, as root, after a second (so that the other
/// app runs) and with a second to spare (so that a halting pod shows before the app ends).
fn probe_args(overcommit: &str) -> Vec<String> {
    let args = [
        "--sleep",
        "1",
        "--try-write-text",
        OVERCOMMIT,
        overcommit,
        // Its own value back: the attempt alone changes nothing on the host.
        "--try-rewrite",
        CORE_PATTERN,
        "--try-mkdir-cgroup",
        "--try-socket",
        "inet",
        "--try-socket",
        "packet",
        "--try-mknod-block",
        "/tmp/probe-blk",
        "--try-kill",
        "1",
        "15",
        "--try-kill",
        "1",
        SIGRTMIN_4,
        "--try-sigio-owner",
        "1",
        SIGRTMIN_4,
        "--try-pidfd-open",
        "1",
        "--print-caps",
        "--sleep",
        "1",
        "--print-msg",
        "probe-done",
    ];
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// What each probe must have answered: read-only file systems for the kernel's tunables and
/// the cgroup tree, EPERM for the rest.
fn want_refused(overcommit_path: &str) -> Vec<(String, &'static str)> {
    vec![
        (format!("write:{overcommit_path}"), "errno:30"),
        (format!("rewrite:{CORE_PATTERN}"), "errno:30"),
        ("cgroup_mkdir".to_owned(), "errno:30"),
        ("socket:inet".to_owned(), "errno:1"),
        ("socket:packet".to_owned(), "errno:1"),
        ("mknod:/tmp/probe-blk".to_owned(), "errno:1"),
        ("kill:1:15".to_owned(), "errno:1"),
        (format!("kill:1:{SIGRTMIN_4}"), "errno:1"),
        (format!("sigio_owner:1:{SIGRTMIN_4}"), "errno:1"),
        ("pidfd_open:1".to_owned(), "errno:1"),
    ]
}

/// The app's lines in the journal of the pod `uuid`.
fn pod_app_lines(t: &PodTest, uuid: &str, app: &str) -> Vec<String> {
    let machine_id = format!("_MACHINE_ID={}", uuid.replace('-', ""));
    t.journal(&["-m", "-t", app, &machine_id])
        .lines()
        .map(str::to_owned)
        .collect()
}

fn value<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    lines.iter().rev().find_map(|l| l.strip_prefix(&prefix))
}

/// `rkt run [flags] inspect --name=probe -- PROBES… --- inspect --name=bystander`, in the
/// background; the bystander only sleeps `bystander_secs`, and says when it is done.
fn spawn_probe_pod(
    t: &PodTest,
    uuid_file: &str,
    flags: &[&str],
    (probe, args): (&str, &[String]),
    bystander_secs: u32,
) -> Result<std::process::Child, String> {
    let image = t.image("inspect");
    t.ctx
        .systemd
        .command(&t.rkt)
        .args(["--dir", &t.dir, "--insecure-options=image", "run"])
        .args(["--uuid-file-save", uuid_file])
        .args(flags)
        .args([&image, &format!("--name={probe}"), "--"])
        .args(args)
        .args(["---", &image, "--name=bystander", "--"])
        .args(["--print-msg", "bystander-started", "--sleep"])
        .arg(bystander_secs.to_string())
        .args(["--print-msg", "bystander-done"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting rkt run: {e}"))
}

/// A probe pod that has ended: how `rkt run` exited and what its apps printed.
struct ProbePod {
    uuid: String,
    out: std::process::Output,
    probe: String,
    lines: Vec<String>,
    bystander: Vec<String>,
}

impl ProbePod {
    /// Waits (at most a minute) for `rkt run` of the probe pod to end.
    fn wait(
        t: &PodTest,
        mut child: std::process::Child,
        uuid_file: &str,
        probe: &str,
    ) -> Result<Self, String> {
        if !wait_for(60, || matches!(child.try_wait(), Ok(Some(_)))) {
            let _ = child.kill();
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for rkt run: {e}"))?;
        let uuid = t
            .ctx
            .systemd
            .ok(&["cat", uuid_file])
            .map_err(|e| {
                format!(
                    "no UUID saved ({e}); rkt run exited {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )
            })?
            .trim()
            .to_owned();
        Ok(ProbePod {
            lines: pod_app_lines(t, &uuid, probe),
            bystander: pod_app_lines(t, &uuid, "bystander"),
            uuid,
            out,
            probe: probe.to_owned(),
        })
    }

    fn report(&self) -> String {
        format!(
            "rkt run exited {}: {}\n{}:\n{}\nbystander:\n{}",
            self.out.status,
            String::from_utf8_lossy(&self.out.stderr),
            self.probe,
            self.lines.join("\n"),
            self.bystander.join("\n")
        )
    }

    /// Every probe was refused, the host's tunables are as they were, and the pod, its
    /// bystander app and the probe itself ran to their end (the pod's systemd did not halt).
    fn check_refused(&self, host: &HostTunables) -> TestResult {
        for (key, want) in want_refused(OVERCOMMIT) {
            let got = value(&self.lines, &key);
            check(got == Some(want), || {
                format!("{key}={got:?}, want {want}\n{}", self.report())
            })?;
        }
        host.unchanged()?;
        check(
            self.bystander.iter().any(|l| l == "bystander-done")
                && self.lines.iter().any(|l| l == "probe-done")
                && self.out.status.success(),
            || format!("the pod did not come through the probes\n{}", self.report()),
        )
    }
}

/// A default pod (its own network, no flags): the root app's every try fails, the host's
/// tunables are as they were, and the pod's other app runs to its end.
fn a_root_app_cannot_reach_the_host_kernel_or_the_pods_init(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let host = HostTunables::read(ctx)?;
    let uuid_file = t.uuid_file();
    let args = probe_args(&host.other_overcommit());
    let child = spawn_probe_pod(&t, &uuid_file, &[], ("probe-default", &args), 4)?;
    let pod = ProbePod::wait(&t, child, &uuid_file, "probe-default")?;
    pod.check_refused(&host)?;
    // CAP_NET_RAW and CAP_MKNOD (bits 13, 27) are not in the default bounding set.
    let bounding = value(&pod.lines, "cap_bounding")
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or_else(|| format!("no cap_bounding\n{}", pod.report()))?;
    check(bounding & (1 << 13 | 1 << 27) == 0, || {
        format!("bounding set {bounding:#x} has CAP_NET_RAW or CAP_MKNOD")
    })?;
    t.gc_leaves_nothing(&pod.uuid)
}

/// The same probes in a pod on the host's network. Meanwhile a socket-activated pod starts,
/// and the probe tries to reach the sockets stage0 and stage1 use for it (the listening
/// sockets' handoff, nspawn's READY=1), which it sees appear in the host's /proc/net/unix.
fn with_net_host_too_and_no_pods_notify_socket_is_reachable(ctx: &Ctx) -> TestResult {
    use std::io::Read;
    let t = PodTest::new(ctx)?;
    let host = HostTunables::read(ctx)?;
    let uuid_file = t.uuid_file();
    // First the watch (8 s; rkt's sockets have "rkt" in their address), then the other
    // probes, while the bystander still runs.
    let mut args: Vec<String> = ["--watch-unix-sockets", "rkt", "8"]
        .map(str::to_owned)
        .into();
    args.extend(probe_args(&host.other_overcommit()));
    let mut child = spawn_probe_pod(&t, &uuid_file, &["--net=host"], ("probe-host", &args), 14)?;
    let watching = wait_for(30, || {
        t.journal(&["-m", "-t", "probe-host"])
            .lines()
            .any(|l| l == "watching=rkt")
    });
    if !watching {
        let _ = child.kill();
        let out = child.wait_with_output();
        return Err(format!(
            "the probe never started watching; rkt run: {}",
            out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default()
        ));
    }
    // A socket unit that starts `rkt run` of a pod answering on the socket it is passed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("finding a free port: {e}"))?
        .port();
    let unit = "rkt-iso-caller";
    let other_uuid_file = format!("{}/uuid-other", t.dir);
    let image = t.image("inspect-listen");
    let listen = format!("--socket-property=ListenStream=127.0.0.1:{port}");
    let mut cmd = vec![
        "systemd-run",
        "--quiet",
        "--unit",
        unit,
        &listen,
        "--socket-property=FileDescriptorName=web",
        "--",
    ];
    cmd.extend(t.args(&["run", "--uuid-file-save", &other_uuid_file, &image]));
    let answered = ctx.systemd.ok(&cmd).and_then(|_| {
        let socket_unit = format!("{unit}.socket");
        check(
            wait_for(10, || {
                ctx.systemd
                    .ok(&["systemctl", "is-active", &socket_unit])
                    .is_ok_and(|s| s.trim() == "active")
            }),
            || format!("{socket_unit} is not active"),
        )?;
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| format!("connecting to 127.0.0.1:{port}: {e}"))?;
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        let _ = client.read_to_string(&mut answer);
        Ok(answer)
    });
    let pod = ProbePod::wait(&t, child, &uuid_file, "probe-host");
    let _ = ctx
        .systemd
        .run(&["systemctl", "stop", &format!("{unit}.socket")]);
    let pod = pod?;
    let answer = answered?;
    let other_uuid = ctx
        .systemd
        .ok(&["cat", &other_uuid_file])?
        .trim()
        .to_owned();
    let seen: Vec<&str> = pod
        .lines
        .iter()
        .filter_map(|l| l.strip_prefix("unix_seen="))
        .collect();
    for kind in ["listen-fds/", "notify/"] {
        check(
            pod.lines.iter().any(|l| l == "watch_done=rkt")
                && seen
                    .iter()
                    .any(|a| a.contains(kind) && a.contains(&other_uuid)),
            || {
                format!(
                    "the probe did not see the other pod's ({other_uuid}) {kind} socket appear, \
                     so this proves nothing\n{}",
                    pod.report()
                )
            },
        )?;
    }
    let reached: Vec<&&str> = seen
        .iter()
        .filter(|a| a.contains("rkt"))
        .filter(|a| {
            !value(&pod.lines, &format!("unix_reach:{a}")).is_some_and(|s| s.starts_with("errno:"))
        })
        .collect();
    check(reached.is_empty(), || {
        format!("a --net=host app reached {reached:?}\n{}", pod.report())
    })?;
    // The other pod's app got its socket all the same.
    check(answer == "hello through the caller's socket\n", || {
        format!("the socket-activated pod answered {answer:?}")
    })?;
    pod.check_refused(&host)?;
    let left = ctx.systemd.ok(&[
        "find",
        "/run/rkt/notify",
        "/run/rkt/listen-fds",
        "-mindepth",
        "1",
    ])?;
    check(left.trim().is_empty(), || {
        format!("sockets left in /run/rkt after the pods: {left}")
    })?;
    t.gc_leaves_nothing(&pod.uuid)
}

/// An image whose capabilities-retain-set has CAP_NET_RAW opens raw sockets; with
/// `--insecure-options=paths` an app can write a kernel tunable (its own value back) and make
/// a cgroup, as in the original rkt.
fn images_and_insecure_options_can_still_ask_for_more(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let uuid_file = t.uuid_file();
    let out = t.rkt(&[
        "run",
        "--net=host",
        "--uuid-file-save",
        &uuid_file,
        &t.image("inspect-netraw"),
    ])?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    let lines = pod_app_lines(&t, &uuid, "inspect-netraw");
    check(
        out.status.success()
            && value(&lines, "socket:inet") == Some("ok")
            && value(&lines, "socket:packet") == Some("ok"),
        || {
            format!(
                "rkt run exited {}: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                lines.join("\n")
            )
        },
    )?;
    t.ok(&["gc", "--grace-period=0s"])?;
    let out = ctx.systemd.run(&[
        &t.rkt,
        "--dir",
        &t.dir,
        "--insecure-options=image,paths",
        "run",
        "--net=none",
        "--uuid-file-save",
        &uuid_file,
        &t.image("inspect"),
        "--name=open-paths",
        "--",
        "--try-rewrite",
        CORE_PATTERN,
        "--try-mkdir-cgroup",
    ])?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    let lines = pod_app_lines(&t, &uuid, "open-paths");
    check(
        out.status.success()
            && value(&lines, &format!("rewrite:{CORE_PATTERN}")) == Some("ok")
            && value(&lines, "cgroup_mkdir") == Some("ok"),
        || {
            format!(
                "--insecure-options=paths: rkt run exited {}: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                lines.join("\n")
            )
        },
    )?;
    t.gc_leaves_nothing(&uuid)
}
