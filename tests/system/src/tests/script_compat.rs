//! What scripts written for the original rkt rely on: `rkt run` shows the apps' output (stdout
//! on stdout, stderr on stderr, `APP: ` before each line with several apps), under a unit
//! too; killing `rkt run` harms neither the pod nor its journal; and the JSON of `rkt list`,
//! `rkt status` and `rkt image list` has the original's fields.

use std::io::BufRead;
use std::process::Stdio;

use super::{PodTest, check, wait_for};
use crate::{Ctx, TestResult};

pub(crate) const TESTS: &[(&str, super::Test)] = &[
    (
        "rkt_run_prints_stdout_and_stderr_apart",
        rkt_run_prints_stdout_and_stderr_apart,
    ),
    (
        "several_apps_lines_name_their_app",
        several_apps_lines_name_their_app,
    ),
    (
        "rkt_run_output_reaches_the_callers_unit",
        rkt_run_output_reaches_the_callers_unit,
    ),
    (
        "sigkill_of_rkt_run_leaves_the_pod_and_its_journal",
        sigkill_of_rkt_run_leaves_the_pod_and_its_journal,
    ),
    (
        "a_script_for_the_original_rkt_runs_unchanged",
        a_script_for_the_original_rkt_runs_unchanged,
    ),
];

/// `rkt run` of busybox running `script` with `sh -c`: its output and exit status.
fn run_sh(t: &PodTest, script: &str) -> Result<std::process::Output, String> {
    let image = t.image("busybox");
    t.rkt(&[
        "run",
        "--net=none",
        &image,
        "--exec=/bin/sh",
        "--",
        "-c",
        script,
    ])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn rkt_run_prints_stdout_and_stderr_apart(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let out = run_sh(
        &t,
        "echo out1; echo err1 >&2; echo out2; echo err2 >&2; printf 'no newline'",
    )?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    check(out.status.success(), || {
        format!("rkt run exited {}: {stderr}", out.status)
    })?;
    check(stdout == "out1\nout2\nno newline\n", || {
        format!("stdout {stdout:?}, stderr {stderr:?}")
    })?;
    check(stderr == "err1\nerr2\n", || {
        format!("stderr {stderr:?}, stdout {stdout:?}")
    })?;
    // Everything is in the journal as well.
    let log = t.journal(&["-m", "-t", "busybox"]);
    for line in ["out1", "err1", "out2", "err2", "no newline"] {
        check(log.contains(line), || {
            format!("{line} not in the journal: {log}")
        })?;
    }
    // The app's own unit still owns both streams.
    let uuid_less = t.journal(&["-m", "-u", "busybox.service"]);
    check(
        uuid_less.contains("out1") && uuid_less.contains("err1"),
        || format!("journalctl -u busybox.service: {uuid_less}"),
    )?;
    t.ctx.systemd.ok(&["rm", "-rf", &t.dir]).map(|_| ())
}

fn several_apps_lines_name_their_app(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let image = t.image("busybox");
    let out = t.rkt(&[
        "run",
        "--net=none",
        &image,
        "--name=first",
        "--exec=/bin/sh",
        "--",
        "-c",
        "echo one; echo bad >&2",
        "---",
        &image,
        "--name=second",
        "--exec=/bin/sh",
        "--",
        "-c",
        "echo two",
    ])?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    check(out.status.success(), || {
        format!("rkt run exited {}: {stderr}", out.status)
    })?;
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_unstable();
    check(lines == ["first: one", "second: two"], || {
        format!("stdout {stdout:?}, stderr {stderr:?}")
    })?;
    check(stderr == "first: bad\n", || format!("stderr {stderr:?}"))?;
    t.ctx.systemd.ok(&["rm", "-rf", &t.dir]).map(|_| ())
}

fn rkt_run_output_reaches_the_callers_unit(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let unit = format!("rkt-output-{}", std::process::id());
    let image = t.image("busybox");
    let mut cmd = vec!["systemd-run", "--wait", "--quiet", "--unit", unit.as_str()];
    cmd.extend(t.args(&[
        "run",
        "--net=none",
        &image,
        "--exec=/bin/sh",
        "--",
        "-c",
        "echo from-the-app; echo complaint >&2",
    ]));
    ctx.systemd.ok(&cmd)?;
    let log = t.journal(&["-u", &format!("{unit}.service")]);
    check(
        log.contains("from-the-app") && log.contains("complaint"),
        || format!("journalctl -u {unit}: {log}"),
    )?;
    t.ctx.systemd.ok(&["rm", "-rf", &t.dir]).map(|_| ())
}

fn sigkill_of_rkt_run_leaves_the_pod_and_its_journal(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let image = t.image("busybox");
    let pid_file = format!("{}/rkt.pid", t.dir);
    let uuid_file = t.uuid_file();
    // Forty lines, a tenth of a second apart.
    let script = "i=0; while [ $i -lt 40 ]; do echo line$i; i=$((i+1)); sleep 0.1; done";
    let rkt = t.args(&[
        "run",
        "--net=none",
        "--uuid-file-save",
        &uuid_file,
        &image,
        "--exec=/bin/sh",
        "--",
        "-c",
        script,
    ]);
    let quoted: Vec<String> = rkt.iter().map(|a| format!("'{a}'")).collect();
    let mut child = ctx
        .systemd
        .command("sh")
        .args([
            "-c",
            &format!("echo $$ > {pid_file}; exec {}", quoted.join(" ")),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting rkt run: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let result = (|| {
        check(first == "line0", || format!("first line {first:?}"))?;
        let pid = ctx.systemd.ok(&["cat", &pid_file])?;
        ctx.systemd.ok(&["kill", "-KILL", pid.trim()])?;
        let uuid = t.read_uuid().ok_or("no UUID saved")?;
        let status = t.ok(&["status", &uuid])?;
        check(status.contains("state=running"), || {
            format!("after SIGKILL of rkt run: {status}")
        })?;
        check(
            wait_for(30, || {
                t.ok(&["status", &uuid])
                    .is_ok_and(|s| s.contains("state=exited"))
            }),
            || "the pod did not end on its own".into(),
        )?;
        let log = t.journal(&[
            "-m",
            "-t",
            "busybox",
            &format!("_MACHINE_ID={}", uuid.replace('-', "")),
        ]);
        let missing: Vec<String> = (0..40)
            .map(|i| format!("line{i}"))
            .filter(|l| !log.lines().any(|x| x == l))
            .collect();
        check(missing.is_empty(), || {
            format!("missing from the journal: {missing:?}")
        })?;
        // No journalctl follower outlived rkt run.
        let left = ctx
            .systemd
            .run(&["pgrep", "-f", &format!("journalctl.*rkt-{uuid}")])?;
        check(!left.status.success(), || {
            format!("a follower is left: {}", text(&left.stdout))
        })
    })();
    let _ = child.kill();
    let _ = child.wait();
    result?;
    t.ctx.systemd.ok(&["rm", "-rf", &t.dir]).map(|_| ())
}

/// Exactly what a script for the original rkt does: run a pod in the background, find its
/// address in `rkt status --format=json`, its state in `rkt list --format=json`, and read
/// the app's output from `rkt run`'s stdout.
fn a_script_for_the_original_rkt_runs_unchanged(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let image = t.image("busybox");
    let uuid_file = t.uuid_file();
    let mut child = ctx
        .systemd
        .command(&t.rkt)
        .args(["--dir", &t.dir, "--insecure-options=image", "run"])
        .arg(format!("--uuid-file-save={uuid_file}"))
        .arg(&image)
        .args(["--exec=/bin/sh", "--", "-c", "echo serving; sleep 300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting rkt run: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let result = (|| {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        check(first == "serving", || format!("rkt run printed {first:?}"))?;
        let uuid = t.read_uuid().ok_or("no UUID saved")?;
        t.ok(&["status", "--wait-ready=30s", &uuid])?;
        let status = t.ok(&["status", "--format=json", &uuid])?;
        let status: serde_json::Value =
            serde_json::from_str(&status).map_err(|e| format!("status JSON: {e}: {status}"))?;
        check(status["name"] == uuid.as_str(), || {
            format!("status {status}")
        })?;
        check(status["state"] == "running", || format!("status {status}"))?;
        let ip = status["networks"][0]["ip"].as_str().unwrap_or_default();
        check(ip.parse::<std::net::Ipv4Addr>().is_ok(), || {
            format!("no networks[0].ip in {status}")
        })?;
        check(status["networks"][0]["netName"] == "default", || {
            format!("netName in {status}")
        })?;
        check(status["app_names"][0] == "busybox", || {
            format!("app_names in {status}")
        })?;
        for key in ["created_at", "started_at", "pid"] {
            check(status[key].is_i64(), || {
                format!("no number {key} in {status}")
            })?;
        }
        let list = t.ok(&["list", "--format=json"])?;
        let list: serde_json::Value =
            serde_json::from_str(&list).map_err(|e| format!("list JSON: {e}: {list}"))?;
        let pod = list
            .as_array()
            .and_then(|pods| pods.iter().find(|p| p["name"] == uuid.as_str()))
            .ok_or_else(|| format!("pod not in rkt list: {list}"))?;
        check(pod["state"] == "running", || format!("listed {pod}"))?;
        // The human forms: the table's header and rkt status's keys.
        let table = t.ok(&["list"])?;
        check(
            table.lines().next().is_some_and(|h| {
                h.split_whitespace().collect::<Vec<_>>()
                    == [
                        "UUID", "APP", "IMAGE", "NAME", "STATE", "CREATED", "STARTED", "NETWORKS",
                    ]
            }),
            || format!("rkt list: {table}"),
        )?;
        let human = t.ok(&["status", &uuid])?;
        check(
            human.contains(&format!("networks=default:ip4={ip}")),
            || format!("rkt status: {human}"),
        )?;
        t.ok(&["stop", &uuid])?;
        t.ok(&["status", "--wait=30s", &uuid])?;
        let list = t.ok(&["list", "--format=json"])?;
        check(list.contains("\"exited\""), || {
            format!("after stop: {list}")
        })?;
        let images = t.ok(&["image", "list", "--format=json"])?;
        let images: serde_json::Value =
            serde_json::from_str(&images).map_err(|e| format!("image list JSON: {e}"))?;
        let first = &images[0];
        check(first["name"] == "example.com/busybox:0.1", || {
            format!("image {first}")
        })?;
        for key in ["import_time", "last_used_time", "size"] {
            check(first[key].is_i64(), || {
                format!("no number {key} in {first}")
            })?;
        }
        check(
            first["id"]
                .as_str()
                .is_some_and(|i| i.starts_with("sha512-")),
            || format!("image {first}"),
        )
    })();
    let _ = child.kill();
    let _ = child.wait();
    result?;
    t.gc_leaves_nothing(&t.read_uuid().unwrap_or_default())
}
