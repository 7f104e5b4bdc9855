//! The Debian package, used as an administrator would: installed with apt, then rkt with no
//! `--dir` or path flags, man pages, completion, the gc timer, the rkt group, a pod declared
//! as a unit file; then purged.
//!
//! It runs in a systemd of its own, booted on an overlay of the host's root whatever PID 1
//! is: the package's files, its group and its store go to the overlay's tmpfs and leave with
//! the sandbox, so no installed /usr/bin/rkt outlives the test to shadow the build tree's.

use std::path::PathBuf;
use std::time::Instant;

use super::{Test, check, wait_for};
use crate::sandbox::Systemd;
use crate::{Ctx, TestResult, skip};

pub(crate) const TESTS: &[(&str, Test)] = &[(
    "the_deb_installs_runs_pods_and_purges_clean",
    the_deb_installs_runs_pods_and_purges_clean,
)];

/// A long-running pod declared as a unit file.
const SLEEPER_POD: &str = "\
[Unit]
Description=rkt test pod
[Pod]
Network=none
[App]
Image=example.com/busybox
Exec=/bin/sh
Args=-c \"echo sleeper-started; exec sleep 600\"
[Service]
Restart=on-failure
RestartSec=1s
";

/// A pod file with a misspelt key on line 3.
const BAD_POD: &str = "[Pod]\nImage=example.com/busybox\nNetwrok=none\n";

fn the_deb_installs_runs_pods_and_purges_clean(ctx: &Ctx) -> TestResult {
    let Some(deb) = built_deb(ctx) else {
        return skip("no target/packages/rkt_*.deb: build it with packaging/build.sh deb");
    };
    let deb = deb.to_str().ok_or("package path")?.to_owned();
    let sb = Systemd::sandbox(&ctx.checkout, "package")?;
    // The store must not be on the sandbox's overlay: overlayfs cannot be the upper layer of
    // the pods' own overlays.
    sb.ok(&["mkdir", "-p", "/var/lib/rkt"])?;
    sb.ok(&["mount", "-t", "tmpfs", "tmpfs", "/var/lib/rkt"])?;
    // The sandbox's PID 1 logs to its console; a host's logs to the journal, where
    // `journalctl -u` finds what systemd says about a pod's unit.
    sb.ok(&["systemctl", "log-target", "journal"])?;

    let started = Instant::now();
    install(&sb, &deb)?;
    let install_secs = started.elapsed().as_secs_f64();

    let rkt = sb.ok(&["sh", "-c", "command -v rkt"])?;
    check(rkt.trim() == "/usr/bin/rkt", || format!("rkt is {rkt:?}"))?;
    let enabled = sb.run(&["systemctl", "is-enabled", "rkt-gc.timer"])?;
    let enabled = String::from_utf8_lossy(&enabled.stdout).trim().to_owned();
    check(enabled == "enabled", || {
        format!("systemctl is-enabled rkt-gc.timer says {enabled:?}")
    })?;
    let page = sb.ok(&["man", "-w", "rkt-run"])?;
    check(page.trim() == "/usr/share/man/man1/rkt-run.1.gz", || {
        format!("man -w rkt-run says {page:?}")
    })?;
    let completions = sb.ok(&[
        "bash",
        "-c",
        ". /usr/share/bash-completion/bash_completion; _completion_loader rkt; \
         COMP_WORDS=(rkt ru); COMP_CWORD=1; COMP_LINE='rkt ru'; COMP_POINT=6; \
         $(complete -p rkt | sed 's/.*-F \\([^ ]*\\) .*/\\1/') rkt ru rkt; \
         printf '%s\\n' \"${COMPREPLY[@]}\"",
    ])?;
    check(completions.lines().any(|l| l == "run"), || {
        format!("bash completes `rkt ru` to {completions:?}")
    })?;

    // The bundled example, as the README runs it, with the installed rkt's defaults.
    let first_pod = Instant::now();
    let hello = ctx.images.join("hello.aci");
    let busybox = ctx.images.join("busybox.aci");
    for aci in [&hello, &busybox] {
        let aci = aci.to_str().ok_or("image path")?;
        sb.ok(&["rkt", "--insecure-options=image", "fetch", aci])?;
    }
    sb.ok(&[
        "rkt",
        "run",
        "--uuid-file-save=/tmp/hello.uuid",
        "example.com/hello",
    ])?;
    let first_pod_secs = first_pod.elapsed().as_secs_f64();
    let uuid = sb.ok(&["cat", "/tmp/hello.uuid"])?.trim().to_owned();
    let said = sb.ok(&["journalctl", "-m", "-t", "hello", "-o", "cat", "--no-pager"])?;
    check(said.contains("Hello from hello, a rkt pod"), || {
        format!("the example's output in the journal: {said:?}")
    })?;
    eprintln!(
        "    package: installed in {install_secs:.1} s; example fetched and run in \
         {first_pod_secs:.1} s"
    );

    group_reads_others_are_refused(&sb, &uuid)?;
    pod_file_runs_stops_restarts(&sb)?;
    a_bad_pod_file_makes_no_unit(&sb)?;
    purge_leaves_nothing(&sb)
}

/// The newest package `packaging/build.sh deb` left.
fn built_deb(ctx: &Ctx) -> Option<PathBuf> {
    let dir = ctx.checkout.join("target/packages");
    let mut debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("rkt_") && n.ends_with(".deb"))
        })
        .collect();
    debs.sort_by_key(|p| p.metadata().and_then(|m| m.modified()).ok());
    debs.pop()
}

/// `apt-get install ./rkt_….deb`, its dependencies from Debian's archive (already there on
/// a machine that ran tests/run-all; else the lists are fetched first).
fn install(sb: &Systemd, deb: &str) -> TestResult {
    let apt = |args: &[&str]| {
        let mut all = vec![
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "-y",
            "-q",
            "-o",
            "Dpkg::Use-Pty=0",
        ];
        all.extend_from_slice(args);
        sb.run(&all)
    };
    let mut out = apt(&["install", "--no-install-recommends", deb])?;
    if !out.status.success() {
        apt(&["update"])?;
        out = apt(&["install", "--no-install-recommends", deb])?;
    }
    check(out.status.success(), || {
        format!(
            "apt-get install {deb}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The rkt group's members read the store; other users are refused with one line.
fn group_reads_others_are_refused(sb: &Systemd, uuid: &str) -> TestResult {
    sb.ok(&[
        "useradd",
        "--no-create-home",
        "--groups",
        "rkt",
        "rkt-reader",
    ])?;
    sb.ok(&["useradd", "--no-create-home", "rkt-stranger"])?;
    let as_reader = |args: &[&str]| {
        let mut all = vec!["runuser", "-u", "rkt-reader", "--", "rkt"];
        all.extend_from_slice(args);
        sb.ok(&all)
    };
    let list = as_reader(&["list", "--no-legend"])?;
    check(list.contains(&uuid[..8]) && list.contains("exited"), || {
        format!("rkt list as a member of the rkt group: {list:?}")
    })?;
    let status = as_reader(&["status", uuid])?;
    check(status.contains("state=exited"), || {
        format!("rkt status as a member of the rkt group: {status:?}")
    })?;
    let images = as_reader(&["image", "list", "--no-legend"])?;
    check(images.contains("example.com/hello"), || {
        format!("rkt image list as a member of the rkt group: {images:?}")
    })?;
    let manifest = as_reader(&["cat-manifest", uuid])?;
    check(manifest.contains("\"acKind\": \"PodManifest\""), || {
        format!("rkt cat-manifest as a member of the rkt group: {manifest:?}")
    })?;
    // Never the trees: they can hold setuid binaries.
    let peek = sb.run(&[
        "runuser",
        "-u",
        "rkt-reader",
        "--",
        "sh",
        "-c",
        "ls /var/lib/rkt/cas/images/*/rootfs /var/lib/rkt/pods/*/*/stage1",
    ])?;
    check(!peek.status.success(), || {
        format!(
            "a member of the rkt group listed image or pod trees: {}",
            String::from_utf8_lossy(&peek.stdout)
        )
    })?;

    let out = sb.run(&["runuser", "-u", "rkt-stranger", "--", "rkt", "list"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    check(
        out.status.code() == Some(254)
            && err.lines().count() == 1
            && err.contains("rkt group")
            && out.stdout.is_empty(),
        || format!("rkt list as another user: {} {err:?}", out.status),
    )
}

/// `/etc/rkt/pods/sleeper.pod` + daemon-reload → `sleeper.service`: start (ready once the pod
/// runs), stop (the pod goes), restart (a new pod), and Restart=on-failure after rkt run dies.
fn pod_file_runs_stops_restarts(sb: &Systemd) -> TestResult {
    sb.ok(&[
        "sh",
        "-c",
        &format!("cat >/etc/rkt/pods/sleeper.pod <<'EOF'\n{SLEEPER_POD}EOF"),
    ])?;
    sb.ok(&["systemctl", "daemon-reload"])?;
    let show = |prop: &str| -> Result<String, String> {
        Ok(sb
            .ok(&[
                "systemctl",
                "show",
                "--value",
                "-p",
                prop,
                "sleeper.service",
            ])?
            .trim()
            .to_owned())
    };
    check(show("Type")? == "notify", || {
        "sleeper.service is not Type=notify".into()
    })?;
    let machines = || {
        sb.ok(&["machinectl", "list", "--no-legend"])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .filter(|m| m.starts_with("rkt-"))
            .collect::<Vec<String>>()
    };
    // `systemctl start` returns once rkt run said READY=1: the pod is up by then.
    sb.ok(&["systemctl", "start", "sleeper.service"])?;
    let first = machines();
    check(first.len() == 1, || {
        format!("after systemctl start, the pods are {first:?}")
    })?;
    check(
        wait_for(20, || {
            sb.ok(&[
                "journalctl",
                "-m",
                "-t",
                "busybox",
                "-o",
                "cat",
                "--no-pager",
            ])
            .is_ok_and(|o| o.contains("sleeper-started"))
        }),
        || "the pod's app never said it started".into(),
    )?;
    let status = sb
        .run(&["systemctl", "status", "--no-pager", "sleeper.service"])?
        .stdout;
    let status = String::from_utf8_lossy(&status);
    check(
        status.contains("active (running)") && status.contains("/usr/bin/rkt run"),
        || format!("systemctl status sleeper: {status}"),
    )?;

    sb.ok(&["systemctl", "restart", "sleeper.service"])?;
    let second = machines();
    check(second.len() == 1 && second != first, || {
        format!("after a restart the pods are {second:?} (before: {first:?})")
    })?;

    // rkt run killed: the pod goes with its caller, and Restart=on-failure starts a new one.
    sb.ok(&[
        "systemctl",
        "kill",
        "--signal=SIGKILL",
        "--kill-whom=main",
        "sleeper.service",
    ])?;
    check(
        wait_for(60, || {
            let now = machines();
            now.len() == 1 && now != second && show("ActiveState").is_ok_and(|s| s == "active")
        }),
        || {
            format!(
                "no new pod after rkt run was killed: pods {:?}, NRestarts={:?}",
                machines(),
                show("NRestarts")
            )
        },
    )?;

    sb.ok(&["systemctl", "stop", "sleeper.service"])?;
    check(wait_for(30, || machines().is_empty()), || {
        format!("pods left after systemctl stop: {:?}", machines())
    })?;
    let result = show("Result")?;
    check(result == "success", || {
        format!("sleeper.service ended with Result={result}")
    })?;
    let log = sb.ok(&[
        "journalctl",
        "-u",
        "sleeper.service",
        "-o",
        "cat",
        "--no-pager",
    ])?;
    // The journal tells the unit's story: started, killed, restarted, stopped.
    for said in [
        "Started sleeper.service",
        "code=killed, status=9/KILL",
        "Scheduled restart job",
        "Stopped sleeper.service",
    ] {
        check(log.contains(said), || {
            format!("journalctl -u sleeper has no {said:?}: {log}")
        })?;
    }
    sb.ok(&["rm", "/etc/rkt/pods/sleeper.pod"])?;
    sb.ok(&["systemctl", "daemon-reload"])?;
    Ok(())
}

/// A pod file with a mistake: no unit at all, and the reason in the journal.
fn a_bad_pod_file_makes_no_unit(sb: &Systemd) -> TestResult {
    sb.ok(&[
        "sh",
        "-c",
        &format!("cat >/etc/rkt/pods/bad.pod <<'EOF'\n{BAD_POD}EOF"),
    ])?;
    sb.ok(&["systemctl", "daemon-reload"])?;
    let unit = sb.run(&["systemctl", "cat", "bad.service"])?;
    check(!unit.status.success(), || {
        format!(
            "a unit was made from bad.pod: {}",
            String::from_utf8_lossy(&unit.stdout)
        )
    })?;
    let expected = "/etc/rkt/pods/bad.pod: line 3: [Pod] Netwrok= is not a pod key";
    check(
        wait_for(10, || {
            sb.ok(&[
                "journalctl",
                "-t",
                "rkt-pod-generator",
                "-o",
                "cat",
                "--no-pager",
            ])
            .is_ok_and(|log| log.contains(expected))
        }),
        || "the generator's message about bad.pod is not in the journal".into(),
    )?;
    sb.ok(&["rm", "/etc/rkt/pods/bad.pod"])?;
    Ok(())
}

/// `apt-get purge rkt`: every file the package installed is gone, and no rkt unit runs.
fn purge_leaves_nothing(sb: &Systemd) -> TestResult {
    let files = sb.ok(&["sh", "-c", "dpkg -L rkt | tee /tmp/rkt.files"])?;
    check(files.lines().count() > 40, || {
        format!("dpkg -L rkt lists only {files}")
    })?;
    sb.ok(&[
        "env",
        "DEBIAN_FRONTEND=noninteractive",
        "apt-get",
        "-y",
        "-q",
        "purge",
        "rkt",
    ])?;
    // Files (not directories, which other packages may share) and rkt's own directories.
    let left = sb.ok(&[
        "sh",
        "-c",
        "while read -r f; do if [ -e \"$f\" ] && [ ! -d \"$f\" ]; then echo \"$f\"; fi; done </tmp/rkt.files; \
         for d in /usr/lib/rkt /usr/share/doc/rkt; do [ ! -e \"$d\" ] || echo \"$d\"; done",
    ])?;
    check(left.trim().is_empty(), || {
        format!("left after purge: {left}")
    })?;
    let units = sb.ok(&[
        "systemctl",
        "list-units",
        "--no-legend",
        "--all",
        "--state=active,activating,deactivating,reloading",
        "rkt*",
    ])?;
    check(units.trim().is_empty(), || {
        format!("rkt units still there after purge: {units}")
    })
}
