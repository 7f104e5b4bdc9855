//! systemd conveniences: readiness passthrough from an app to the unit that runs `rkt run`,
//! socket activation passthrough from the caller's socket to the app, `rkt run --interactive`
//! and `--private-users`.

use super::{PodTest, check, wait_for};
use crate::{Ctx, TestResult};

pub(crate) const TESTS: &[(&str, super::Test)] = &[
    (
        "readiness_reaches_a_type_notify_caller",
        readiness_reaches_a_type_notify_caller,
    ),
    (
        "a_socket_activated_app_answers_on_the_callers_socket",
        a_socket_activated_app_answers_on_the_callers_socket,
    ),
    (
        "interactive_attaches_the_terminal_to_the_app",
        interactive_attaches_the_terminal_to_the_app,
    ),
    (
        "private_users_makes_the_pods_root_nobody_on_the_host",
        private_users_makes_the_pods_root_nobody_on_the_host,
    ),
];

/// The caller unit's ActiveState, from systemctl in the booted systemd.
fn active_state(ctx: &Ctx, unit: &str) -> String {
    ctx.systemd
        .run(&[
            "systemctl",
            "show",
            "--property=ActiveState",
            "--value",
            unit,
        ])
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Starts `rkt run IMAGE` as the main process of a Type=notify unit, without waiting for it.
fn start_notify_caller(t: &PodTest, unit: &str, image: &str) -> TestResult {
    let uuid_file = t.uuid_file();
    let mut cmd = vec![
        "systemd-run",
        "--quiet",
        "--no-block",
        "--property=Type=notify",
    ];
    let unit_arg = format!("--unit={unit}");
    cmd.push(&unit_arg);
    cmd.push("--");
    cmd.extend(t.args(&["run", "--uuid-file-save", &uuid_file, image]));
    t.ctx.systemd.ok(&cmd).map(|_| ())
}

/// Stops the caller (which stops the pod) and collects the pod.
fn stop_caller(t: &PodTest, unit: &str) -> TestResult {
    t.ctx.systemd.ok(&["systemctl", "stop", unit])?;
    let _ = t.ctx.systemd.run(&["systemctl", "reset-failed", unit]);
    let uuid = t.read_uuid().unwrap_or_default();
    let pod_unit = format!("rkt-{uuid}.service");
    check(
        wait_for(30, || {
            !matches!(
                active_state(t.ctx, &pod_unit).as_str(),
                "active" | "activating" | "deactivating"
            )
        }),
        || format!("{pod_unit} still up after its caller stopped"),
    )?;
    t.gc_leaves_nothing(&uuid)
}

/// A unit `Type=notify ExecStart=rkt run IMAGE` is "activating" while the app (whose image
/// says it speaks sd_notify) has started but not yet sent READY=1, and "active" once it did;
/// the app saw a NOTIFY_SOCKET and its READY=1 went through. An app without the annotation
/// makes the caller active as soon as it started (rkt run says READY=1 for the pod).
fn readiness_reaches_a_type_notify_caller(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let unit = "rkt-caller-notify.service";
    start_notify_caller(&t, unit, &t.image("inspect-notify"))?;
    let result = (|| -> TestResult {
        check(wait_for(30, || t.read_uuid().is_some()), || {
            format!("no UUID saved; the caller is {}", active_state(ctx, unit))
        })?;
        let uuid = t.read_uuid().unwrap_or_default();
        let machine = format!("rkt-{uuid}");
        let app_log = || t.journal(&["-M", &machine, "-t", "inspect-notify"]);
        check(wait_for(30, || app_log().contains("started")), || {
            format!(
                "the app never started (caller {}): {}",
                active_state(ctx, unit),
                t.journal(&["-m", "-n", "60", "-o", "short"])
            )
        })?;
        // The app waits 3 s before READY=1: the caller must not be ready yet.
        let before = active_state(ctx, unit);
        check(before == "activating", || {
            format!("before the app's READY=1 the caller is {before:?} (want \"activating\")")
        })?;
        check(wait_for(30, || active_state(ctx, unit) == "active"), || {
            format!(
                "the caller never became active ({}); app said: {}",
                active_state(ctx, unit),
                app_log()
            )
        })?;
        // Its line reaches the journal a moment after its READY=1.
        check(wait_for(10, || app_log().contains("notify=sent")), || {
            format!("the app did not send READY=1: {}", app_log())
        })?;
        Ok(())
    })();
    let stopped = stop_caller(&t, unit);
    result?;
    stopped?;

    // Without the annotation: ready once the app runs.
    let t = PodTest::new(ctx)?;
    let unit = "rkt-caller-plain.service";
    start_notify_caller(&t, unit, &t.image("inspect-sleep"))?;
    let result = check(wait_for(30, || active_state(ctx, unit) == "active"), || {
        format!(
            "a Type=notify caller of a plain app never became active ({})",
            active_state(ctx, unit)
        )
    });
    let stopped = stop_caller(&t, unit);
    result?;
    stopped
}

/// A `.socket` unit on 127.0.0.1:PORT in the booted systemd starts `rkt run` on the first
/// connection; that connection is answered by the app in the pod, on the very socket the unit
/// listens on (passed down as LISTEN_FDS, named as the socket unit names it).
fn a_socket_activated_app_answers_on_the_callers_socket(ctx: &Ctx) -> TestResult {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;
    let t = PodTest::new(ctx)?;
    // A free port on loopback (the sandbox shares this network namespace).
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("finding a free port: {e}"))?
        .port();
    let unit = "rkt-caller-web";
    let listen = format!("--socket-property=ListenStream=127.0.0.1:{port}");
    let uuid_file = t.uuid_file();
    let image = t.image("inspect-listen");
    let unit_arg = format!("--unit={unit}");
    let mut cmd = vec![
        "systemd-run",
        "--quiet",
        &unit_arg,
        &listen,
        "--socket-property=FileDescriptorName=web",
        "--",
    ];
    cmd.extend(t.args(&["run", "--uuid-file-save", &uuid_file, &image]));
    ctx.systemd.ok(&cmd)?;
    let socket_unit = format!("{unit}.socket");
    let result = (|| -> TestResult {
        check(
            wait_for(10, || active_state(ctx, &socket_unit) == "active"),
            || format!("{socket_unit} is {}", active_state(ctx, &socket_unit)),
        )?;
        let mut client = TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| format!("connecting to 127.0.0.1:{port}: {e}"))?;
        client
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        let read = client.read_to_string(&mut answer);
        // The app's lines reach the host's journal a moment after its answer.
        wait_for(10, || {
            super::last_value(&super::app_lines(&t, "inspect-listen"), "answered").is_some()
        });
        let app = super::app_lines(&t, "inspect-listen");
        check(answer == "hello through the caller's socket\n", || {
            format!(
                "the client got {answer:?} ({read:?}); the app said {app:?}; log:\n{}",
                t.journal(&["-n", "40", "-o", "short", "-u", &format!("{unit}.service")])
            )
        })?;
        check(
            super::last_value(&app, "listen_fds").as_deref() == Some("1")
                && super::last_value(&app, "listen_fdnames").as_deref() == Some("web")
                && super::last_value(&app, "listen_pid_ok").as_deref() == Some("true"),
            || format!("the app was passed: {app:?}"),
        )?;
        // The app answered and exited: the pod and the caller end with it.
        check(
            wait_for(30, || {
                matches!(
                    active_state(ctx, &format!("{unit}.service")).as_str(),
                    "inactive" | "failed" | ""
                )
            }),
            || "the caller did not end after its app did".into(),
        )?;
        Ok(())
    })();
    let _ = ctx.systemd.run(&["systemctl", "stop", &socket_unit]);
    let uuid = t.read_uuid().unwrap_or_default();
    let collected = t.gc_leaves_nothing(&uuid);
    result?;
    collected
}

/// `rkt run --interactive` on a terminal (a pty from `script`): the app's stdin is a terminal,
/// what is typed reaches it, what it prints comes back, and rkt exits with its status. Without
/// a terminal, --interactive is refused before anything starts.
fn interactive_attaches_the_terminal_to_the_app(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let busybox = t.image("busybox");
    let app = "test -t 0 && echo tty:yes; read line; echo got:$line; exit 3";
    let command: Vec<String> = t
        .args(&[
            "run",
            "--interactive",
            &busybox,
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            app,
        ])
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    // The line is typed once the app is likely up; the terminal keeps it until it reads.
    let typed = format!(
        "(sleep 1; printf 'hello\\n'; sleep 3) | timeout 60 script -qfec \"{}\" /dev/null",
        command.join(" ").replace('"', "\\\"").replace('$', "\\$")
    );
    let out = ctx.systemd.run(&["bash", "-c", &typed])?;
    let seen = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    check(
        seen.lines().any(|l| l.ends_with("tty:yes")) && seen.lines().any(|l| l == "got:hello"),
        || {
            format!(
                "on the terminal: {seen:?} ({})",
                String::from_utf8_lossy(&out.stderr)
            )
        },
    )?;
    check(out.status.code() == Some(3), || {
        format!(
            "script (running rkt) ended with {} (want 3): {seen}",
            out.status
        )
    })?;
    let refused = t.rkt(&["run", "--interactive", &busybox])?;
    let err = String::from_utf8_lossy(&refused.stderr);
    check(
        refused.status.code() == Some(254) && err.contains("needs a terminal"),
        || format!("--interactive without a terminal: {} {err}", refused.status),
    )?;
    let list = t.ok(&["list", "--no-legend"])?;
    let pods = list.lines().count();
    check(pods == 1, || {
        format!("want only the interactive pod, got: {list}")
    })?;
    let uuid = list
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    t.gc_leaves_nothing(&uuid)
}

/// `rkt run --private-users`: the app runs as root of a user namespace of the pod's own, which
/// the host sees as an unprivileged UID (read from the host's /proc of the app's process); the
/// pod still starts, is stopped by `rkt stop` (its bus reached from inside that namespace) and
/// reports the app's status.
fn private_users_makes_the_pods_root_nobody_on_the_host(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let uuid_file = t.uuid_file();
    let image = t.image("inspect-sleep");
    let mut child = ctx
        .systemd
        .command(&t.rkt)
        .args([
            "--dir",
            &t.dir,
            "--insecure-options=image",
            "run",
            "--private-users",
        ])
        .args(["--uuid-file-save", &uuid_file, &image])
        .spawn()
        .map_err(|e| format!("starting rkt run: {e}"))?;
    let result = (|| -> TestResult {
        check(wait_for(30, || t.read_uuid().is_some()), || {
            "no UUID saved".into()
        })?;
        let uuid = t.read_uuid().unwrap_or_default();
        // The app's process, as the host sees it (newest match: this test's pod).
        let app_pid = || {
            ctx.systemd
                .run(&[
                    "pgrep",
                    "-n",
                    "-f",
                    "^/inspect --print-msg started --sleep 600",
                ])
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .filter(|p| !p.is_empty())
        };
        check(wait_for(30, || app_pid().is_some()), || {
            format!(
                "the app never ran; log:\n{}",
                t.journal(&[
                    "-n",
                    "30",
                    "-o",
                    "short",
                    "-u",
                    &format!("rkt-{uuid}.service")
                ])
            )
        })?;
        let pid = app_pid().unwrap_or_default();
        let status = ctx.systemd.ok(&["cat", &format!("/proc/{pid}/status")])?;
        let uid_map = ctx.systemd.ok(&["cat", &format!("/proc/{pid}/uid_map")])?;
        let host_uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next())
            .unwrap_or_default()
            .to_owned();
        let map: Vec<&str> = uid_map.split_whitespace().collect();
        check(
            host_uid != "0"
                && !host_uid.is_empty()
                && map.first() == Some(&"0")
                && map.get(1) == Some(&host_uid.as_str()),
            || format!("the app is uid {host_uid} on the host, its uid_map: {uid_map:?}"),
        )?;
        t.ok(&["stop", &uuid])?;
        let exited = wait_for(30, || matches!(child.try_wait(), Ok(Some(_))));
        check(exited, || "rkt run did not end after rkt stop".into())?;
        let code = child.wait().map(|s| s.code()).unwrap_or(None);
        check(code == Some(143), || {
            format!("rkt run exited {code:?} (want 143: the app died of SIGTERM)")
        })?;
        // The pod is gone; what its app logged is still in the host's journal.
        let machine_id = format!("_MACHINE_ID={}", uuid.replace('-', ""));
        let log = t.journal(&["-m", &machine_id, "-t", "inspect-sleep"]);
        check(log.contains("started"), || {
            format!(
                "the app's output is gone with the pod: {log:?}; stage1 said:\n{}",
                t.journal(&["-n", "20", "-u", &format!("rkt-{uuid}.service")])
            )
        })?;
        t.gc_leaves_nothing(&uuid)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}
