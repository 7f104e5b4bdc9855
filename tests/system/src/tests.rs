//! The system tests, one function each.

use crate::{Ctx, TestResult};

type Test = fn(&Ctx) -> TestResult;

/// Every test, in the order they run.
pub const ALL: &[(&str, Test)] = &[
    ("systemd_is_running", systemd_is_running),
    ("systemd_run_wait", systemd_run_wait),
    ("rkt_fetch_list_rm_in_systemd", rkt_fetch_list_rm_in_systemd),
    (
        "rkt_refuses_unverified_images",
        rkt_refuses_unverified_images,
    ),
    (
        "stage1_runs_a_pod_as_a_machine",
        stage1_runs_a_pod_as_a_machine,
    ),
];

fn check(cond: bool, why: impl FnOnce() -> String) -> TestResult {
    if cond { Ok(()) } else { Err(why()) }
}

/// The booted systemd reached a settled state, with journald and D-Bus up.
fn systemd_is_running(ctx: &Ctx) -> TestResult {
    let state = ctx.systemd.run(&["systemctl", "is-system-running"])?;
    let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
    check(state == "running" || state == "degraded", || {
        format!("is-system-running says {state:?}")
    })?;
    for unit in ["systemd-journald.service", "dbus.socket"] {
        let active = ctx.systemd.run(&["systemctl", "is-active", unit])?;
        let active = String::from_utf8_lossy(&active.stdout).trim().to_owned();
        check(active == "active", || format!("{unit} is {active:?}"))?;
    }
    Ok(())
}

/// Transient units run and report their result: what stage0's hand-off will rely on.
fn systemd_run_wait(ctx: &Ctx) -> TestResult {
    let out = ctx.systemd.ok(&[
        "systemd-run",
        "--wait",
        "--pipe",
        "-q",
        "/bin/echo",
        "hello",
    ])?;
    check(out.trim() == "hello", || format!("output {out:?}"))?;
    let failing = ctx
        .systemd
        .run(&["systemd-run", "--wait", "-q", "/bin/false"])?;
    check(!failing.status.success(), || {
        "systemd-run --wait of /bin/false succeeded".to_owned()
    })
}

/// A fresh store directory inside the systemd's world (a tmpfs in the sandbox).
fn store_dir(ctx: &Ctx) -> Result<String, String> {
    Ok(ctx
        .systemd
        .ok(&["mktemp", "-d", "/tmp/rkt-systest.XXXXXX"])?
        .trim()
        .to_owned())
}

/// `rkt fetch`, `image list` and `image rm`, run as systemd units.
fn rkt_fetch_list_rm_in_systemd(ctx: &Ctx) -> TestResult {
    let dir = store_dir(ctx)?;
    let rkt = ctx.rkt.to_str().ok_or("rkt path")?;
    let aci = ctx.images.join("busybox.aci");
    let aci = aci.to_str().ok_or("image path")?;
    let in_unit = |args: &[&str]| -> Result<String, String> {
        let mut cmd = vec![
            "systemd-run",
            "--wait",
            "--pipe",
            "-q",
            "--",
            rkt,
            "--dir",
            &dir,
        ];
        cmd.extend_from_slice(args);
        ctx.systemd.ok(&cmd)
    };

    let id = in_unit(&["--insecure-options=image", "fetch", aci])?;
    let id = id.trim();
    let sum = ctx.systemd.ok(&[
        "bash",
        "-c",
        &format!("gzip -dc '{aci}' | sha512sum | cut -d' ' -f1"),
    ])?;
    let want = format!("sha512-{}", sum.trim());
    check(id == want, || format!("fetch printed {id:?}, want {want}"))?;

    let list = in_unit(&["image", "list", "--format=json"])?;
    let list: serde_json::Value =
        serde_json::from_str(&list).map_err(|e| format!("image list JSON: {e}: {list}"))?;
    let images = list.as_array().ok_or("image list is not an array")?;
    check(images.len() == 1, || {
        format!("{} images listed", images.len())
    })?;
    let image = &images[0];
    check(
        image["id"] == id && image["name"] == "example.com/busybox",
        || format!("listed {image}"),
    )?;
    for key in ["size", "importTime", "lastUsed"] {
        check(!image[key].is_null(), || format!("no {key} in {image}"))?;
    }
    let rootfs = format!("{dir}/cas/images/{id}/rootfs/bin/busybox");
    ctx.systemd.ok(&["test", "-x", &rootfs])?;

    in_unit(&["image", "rm", id])?;
    let left = ctx
        .systemd
        .ok(&["find", &dir, "-mindepth", "1", "-not", "-type", "d"])?;
    check(left.trim().is_empty(), || {
        format!("files left after rm: {left}")
    })?;
    let left = ctx
        .systemd
        .ok(&["find", &dir, "-name", &format!("*{}*", &id[7..20])])?;
    check(left.trim().is_empty(), || {
        format!("traces left after rm: {left}")
    })?;
    ctx.systemd.ok(&["rm", "-rf", &dir])?;
    Ok(())
}

/// Without `--insecure-options=image`, fetching is refused, with one line saying what to do.
fn rkt_refuses_unverified_images(ctx: &Ctx) -> TestResult {
    let dir = store_dir(ctx)?;
    let rkt = ctx.rkt.to_str().ok_or("rkt path")?;
    let aci = ctx.images.join("busybox.aci");
    let out = ctx.systemd.run(&[
        rkt,
        "--dir",
        &dir,
        "fetch",
        aci.to_str().ok_or("image path")?,
    ])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(out.status.code() == Some(254), || {
        format!("exit {}", out.status)
    })?;
    check(stderr.lines().count() == 1, || format!("stderr: {stderr}"))?;
    check(stderr.contains("--insecure-options=image"), || {
        format!("stderr: {stderr}")
    })?;
    let list = ctx
        .systemd
        .ok(&[rkt, "--dir", &dir, "image", "list", "--format=json"])?;
    check(list.trim() == "[]", || {
        format!("images after refusal: {list}")
    })?;
    ctx.systemd.ok(&["rm", "-rf", &dir])?;
    Ok(())
}

/// stage1, started as the pod's unit the way `rkt run` will start it, boots the pod under
/// systemd-nspawn, runs the app as a unit inside, and ends with the app's exit status; the
/// app's output is in the journal; gc then leaves nothing mounted.
fn stage1_runs_a_pod_as_a_machine(ctx: &Ctx) -> TestResult {
    let dir = store_dir(ctx)?;
    let rkt = ctx.rkt.to_str().ok_or("rkt path")?;
    let stage1 = ctx.rkt.with_file_name("rkt-stage1");
    let stage1 = stage1.to_str().ok_or("stage1 path")?;
    let aci = ctx.images.join("inspect-exit7.aci");
    let uuid = ctx.systemd.ok(&[
        rkt,
        "--dir",
        &dir,
        "--insecure-options=image",
        "prepare",
        aci.to_str().ok_or("image path")?,
    ])?;
    let uuid = uuid.trim();
    let unit = format!("rkt-{uuid}.service");
    let out = ctx.systemd.run(&[
        "systemd-run",
        "--quiet",
        "--wait",
        &format!("--unit={unit}"),
        "--slice=machine.slice",
        "--property=Delegate=yes",
        "--property=KillMode=mixed",
        "--property=Type=notify",
        stage1,
        "--dir",
        &dir,
        uuid,
    ])?;
    let log = ctx
        .systemd
        .run(&["journalctl", "--no-pager", "-u", &unit])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    check(out.status.code() == Some(7), || {
        format!(
            "the pod unit ended with {} (want the app's 7): {}\n{log}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let app_log = ctx.systemd.ok(&[
        "journalctl",
        "--no-pager",
        "-m",
        "-t",
        "inspect-exit7",
        "-o",
        "cat",
    ])?;
    check(app_log.contains("hello from inspect"), || {
        format!("app output not in the journal: {app_log:?}\n{log}")
    })?;
    let status = ctx.systemd.ok(&[rkt, "--dir", &dir, "status", uuid])?;
    check(
        status.contains("state=exited") && status.contains("app-inspect-exit7=7"),
        || format!("rkt status says: {status}"),
    )?;
    ctx.systemd
        .ok(&[rkt, "--dir", &dir, "gc", "--grace-period=0s"])?;
    let mounts = ctx
        .systemd
        .ok(&["findmnt", "--list", "--noheadings", "-o", "TARGET"])?;
    check(!mounts.contains(uuid), || {
        format!("pod mounts left: {mounts}")
    })?;
    let list = ctx
        .systemd
        .ok(&[rkt, "--dir", &dir, "list", "--no-legend"])?;
    check(list.trim().is_empty(), || {
        format!("pods left after gc: {list}")
    })?;
    ctx.systemd.ok(&["rm", "-rf", &dir])?;
    Ok(())
}
