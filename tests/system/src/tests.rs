//! The system tests, one function each.

use crate::{Ctx, TestResult};

type Test = fn(&Ctx) -> TestResult;

/// Every test, in the order they run.
pub const ALL: &[(&str, Test)] = &[
    ("systemd_is_running", systemd_is_running),
    ("systemd_run_wait", systemd_run_wait),
    ("rkt_fetch_list_rm_in_systemd", rkt_fetch_list_rm_in_systemd),
    ("oci_images_run_like_acis", oci_images_run_like_acis),
    (
        "an_image_runs_on_its_dependency",
        an_image_runs_on_its_dependency,
    ),
    (
        "rkt_refuses_unverified_images",
        rkt_refuses_unverified_images,
    ),
    (
        "rkt_run_exits_with_the_app_status",
        rkt_run_exits_with_the_app_status,
    ),
    (
        "two_apps_share_namespaces_not_roots",
        two_apps_share_namespaces_not_roots,
    ),
    (
        "machinectl_sees_and_terminates_a_pod",
        machinectl_sees_and_terminates_a_pod,
    ),
    ("rkt_run_in_a_unit_file", rkt_run_in_a_unit_file),
    (
        "rkt_stop_sends_sigterm_to_the_app",
        rkt_stop_sends_sigterm_to_the_app,
    ),
    ("gc_unit_collects_exited_pods", gc_unit_collects_exited_pods),
    ("no_overlay_copies_the_root", no_overlay_copies_the_root),
    (
        "interrupting_rkt_run_stops_the_pod",
        interrupting_rkt_run_stops_the_pod,
    ),
    (
        "per_app_options_reach_the_app",
        per_app_options_reach_the_app,
    ),
    ("isolators_reach_the_app", isolators_reach_the_app),
    (
        "unknown_user_or_isolator_stops_before_the_pod",
        unknown_user_or_isolator_stops_before_the_pod,
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

/// Polls `cond` every 100 ms for at most `secs` seconds.
fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 10 {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

struct PodTest<'a> {
    ctx: &'a Ctx,
    dir: String,
    rkt: String,
}

impl<'a> PodTest<'a> {
    fn new(ctx: &'a Ctx) -> Result<Self, String> {
        Ok(PodTest {
            ctx,
            dir: store_dir(ctx)?,
            rkt: ctx.rkt.to_str().ok_or("rkt path")?.to_owned(),
        })
    }

    fn image(&self, name: &str) -> String {
        self.ctx
            .images
            .join(format!("{name}.aci"))
            .display()
            .to_string()
    }

    /// `rkt --dir DIR --insecure-options=image ARGS…`
    fn args<'b>(&'b self, args: &[&'b str]) -> Vec<&'b str> {
        let mut all = vec![
            self.rkt.as_str(),
            "--dir",
            &self.dir,
            "--insecure-options=image",
        ];
        all.extend_from_slice(args);
        all
    }

    fn rkt(&self, args: &[&str]) -> Result<std::process::Output, String> {
        self.ctx.systemd.run(&self.args(args))
    }

    fn ok(&self, args: &[&str]) -> Result<String, String> {
        self.ctx.systemd.ok(&self.args(args))
    }

    fn uuid_file(&self) -> String {
        format!("{}/uuid", self.dir)
    }

    fn read_uuid(&self) -> Option<String> {
        let out = self.ctx.systemd.run(&["cat", &self.uuid_file()]).ok()?;
        let uuid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!uuid.is_empty()).then_some(uuid)
    }

    fn machines(&self) -> String {
        self.ctx
            .systemd
            .run(&["machinectl", "list", "--no-legend"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    fn journal(&self, args: &[&str]) -> String {
        let mut cmd = vec!["journalctl", "--no-pager", "-o", "cat"];
        cmd.extend_from_slice(args);
        self.ctx
            .systemd
            .run(&cmd)
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Starts `rkt run` of the sleeping image in the background and waits (bounded) until
    /// its app says it started. Returns the child (nsenter running rkt), UUID and machine.
    fn spawn_sleeper(&self) -> Result<(std::process::Child, String, String), String> {
        let uuid_file = self.uuid_file();
        let image = self.image("inspect-sleep");
        let mut child = self
            .ctx
            .systemd
            .command(&self.rkt)
            .args(["--dir", &self.dir, "--insecure-options=image", "run"])
            .args(["--uuid-file-save", &uuid_file, &image])
            .spawn()
            .map_err(|e| format!("starting rkt run: {e}"))?;
        let started = (|| {
            check(wait_for(30, || self.read_uuid().is_some()), || {
                "no UUID saved".into()
            })?;
            let uuid = self.read_uuid().unwrap_or_default();
            let machine = format!("rkt-{}", uuid.replace('-', ""));
            check(
                wait_for(30, || {
                    self.journal(&["-M", &machine, "-t", "inspect-sleep"])
                        .contains("started")
                }),
                || "the app never started".into(),
            )?;
            Ok((uuid, machine))
        })();
        match started {
            Ok((uuid, machine)) => Ok((child, uuid, machine)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// gc with no grace period: the pod must be gone, with nothing mounted.
    fn gc_leaves_nothing(&self, uuid: &str) -> TestResult {
        self.ok(&["gc", "--grace-period=0s"])?;
        let mounts = self
            .ctx
            .systemd
            .ok(&["findmnt", "--list", "--noheadings", "-o", "TARGET"])?;
        check(!mounts.contains(uuid), || {
            format!("pod mounts left: {mounts}")
        })?;
        let list = self.ok(&["list", "--no-legend"])?;
        check(list.trim().is_empty(), || {
            format!("pods left after gc: {list}")
        })?;
        self.ctx.systemd.ok(&["rm", "-rf", &self.dir]).map(|_| ())
    }
}

/// `rkt run` of an app that prints and exits 7: rkt exits 7, the output is in the journal,
/// `rkt status` agrees, and gc leaves nothing mounted.
fn rkt_run_exits_with_the_app_status(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let uuid_file = t.uuid_file();
    let image = t.image("inspect-exit7");
    let out = t.rkt(&["run", "--uuid-file-save", &uuid_file, &image])?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    let unit_log = t.journal(&["-u", &format!("rkt-{uuid}.service")]);
    check(out.status.code() == Some(7), || {
        format!(
            "rkt run exited {} (want the app's 7): {}\n{unit_log}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let app_log = t.journal(&["-m", "-t", "inspect-exit7"]);
    check(app_log.contains("hello from inspect"), || {
        format!("app output not in the journal: {app_log:?}\n{unit_log}")
    })?;
    let status = t.ok(&["status", &uuid])?;
    check(
        status.contains("state=exited") && status.contains("app-inspect-exit7=7"),
        || format!("rkt status says: {status}"),
    )?;
    // The command rkt status gives for the logs works once the pod is gone.
    let logs = status
        .lines()
        .find_map(|l| l.strip_prefix("logs="))
        .ok_or_else(|| format!("no logs= in rkt status: {status}"))?;
    let mut cmd: Vec<&str> = logs.split_whitespace().collect();
    cmd.extend(["--no-pager", "-o", "cat"]);
    let text = ctx.systemd.ok(&cmd)?;
    check(text.contains("hello from inspect"), || {
        format!("`{logs}` does not show the app's output: {text}")
    })?;
    t.gc_leaves_nothing(&uuid)
}

/// An image whose app binary and /etc come from its appc dependency runs: the app's root is
/// the overlay of both trees. Without the dependency stored, prepare says which one to fetch.
fn an_image_runs_on_its_dependency(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let top = t.image("inspect-on-base");
    let missing = t.rkt(&["prepare", &top])?;
    let err = String::from_utf8_lossy(&missing.stderr);
    check(
        missing.status.code() == Some(254) && err.contains("example.com/inspect-base"),
        || format!("prepare without the dependency: {} {err}", missing.status),
    )?;
    t.ok(&["fetch", &t.image("inspect-base")])?;
    let uuid_file = t.uuid_file();
    let out = t.rkt(&["run", "--uuid-file-save", &uuid_file, &top])?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    check(out.status.code() == Some(3), || {
        format!(
            "rkt run exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let log = t.journal(&["-m", "-t", "inspect-on-base"]);
    check(
        log.contains("file:/top=from the top image") && log.contains("file:/etc/group=root:x:0:"),
        || format!("the app's view of its root: {log:?}"),
    )?;
    t.gc_leaves_nothing(&uuid)
}

/// An OCI image (two layers, the second whiting out a file of the first) runs from an
/// oci-archive and from a layout directory: Entrypoint+Cmd as the app, the layers' files in its
/// root, its exit status and output as for an ACI; both name the same stored image.
fn oci_images_run_like_acis(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let uuid_file = t.uuid_file();
    let archive = ctx.images.join("inspect-oci.tar").display().to_string();
    let out = t.rkt(&[
        "run",
        "--uuid-file-save",
        &uuid_file,
        &format!("oci-archive:{archive}"),
    ])?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    check(out.status.code() == Some(7), || {
        format!(
            "rkt run of the OCI image exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let log = t.journal(&["-m", "-t", "inspect-oci"]);
    check(
        log.contains("hello from an OCI image") && log.contains("from the second layer"),
        || format!("the OCI app's output: {log:?}"),
    )?;
    let status = t.ok(&["status", &uuid])?;
    check(status.contains("app-inspect-oci=7"), || {
        format!("rkt status: {status}")
    })?;
    // The layout directory the archive was made from is the same image (same manifest).
    let layout = ctx.images.join("inspect-oci").display().to_string();
    let id = t.ok(&["fetch", &layout])?;
    let images = t.ok(&["image", "list", "--format=json"])?;
    check(images.matches("\"id\"").count() == 1, || {
        format!("archive and layout should be one image: {images}")
    })?;
    let rendered = format!("{}/rendered", t.dir);
    t.ok(&["image", "render", id.trim(), &rendered])?;
    let added = ctx.systemd.ok(&["cat", &format!("{rendered}/added")])?;
    let gone = ctx
        .systemd
        .run(&["test", "-e", &format!("{rendered}/gone")])?;
    check(
        added.trim() == "from the second layer" && !gone.status.success(),
        || {
            format!(
                "rendered tree: added={added:?}, whited-out file present={}",
                gone.status.success()
            )
        },
    )?;
    t.gc_leaves_nothing(&uuid)
}

/// Two apps in one pod share the network, IPC, UTS and PID namespaces, and each has its own
/// mount namespace and root (each app's write lands in its own overlay).
fn two_apps_share_namespaces_not_roots(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let uuid_file = t.uuid_file();
    let (a, b) = (t.image("inspect-exit7"), t.image("inspect-print"));
    let out = t.rkt(&["run", "--uuid-file-save", &uuid_file, &a, &b])?;
    check(out.status.code() == Some(7), || {
        format!(
            "rkt run exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    let ns = |app: &str, kind: &str| {
        let prefix = format!("ns:{kind}=");
        t.journal(&["-m", "-t", app])
            .lines()
            .rev()
            .find(|l| l.starts_with(&prefix))
            .map(str::to_owned)
    };
    for kind in ["net", "ipc", "uts", "pid"] {
        let (a, b) = (ns("inspect-exit7", kind), ns("inspect-print", kind));
        check(a.is_some() && a == b, || {
            format!("{kind} namespaces differ: {a:?} {b:?}")
        })?;
    }
    let (a, b) = (ns("inspect-exit7", "mnt"), ns("inspect-print", "mnt"));
    check(a.is_some() && b.is_some() && a != b, || {
        format!("the apps share a mount namespace: {a:?} {b:?}")
    })?;
    for (app, want) in [("inspect-exit7", "exit7"), ("inspect-print", "print")] {
        let marker = format!("{}/pods/run/{uuid}/overlay/{app}/upper/marker", t.dir);
        let got = ctx.systemd.ok(&["cat", &marker])?;
        check(got == want, || {
            format!("{app} wrote {got:?} into its root, want {want:?}")
        })?;
    }
    let status = t.ok(&["status", &uuid])?;
    check(
        status.contains("app-inspect-exit7=7") && status.contains("app-inspect-print=0"),
        || format!("rkt status: {status}"),
    )?;
    t.gc_leaves_nothing(&uuid)
}

/// While a pod runs, machinectl lists it and shows its app's unit; `machinectl terminate`
/// ends it, `rkt run` returns, and rkt says it exited.
fn machinectl_sees_and_terminates_a_pod(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let (mut child, uuid, machine) = t.spawn_sleeper()?;
    let result = (|| {
        check(wait_for(30, || t.machines().contains(&machine)), || {
            format!("machinectl list does not show {machine}: {}", t.machines())
        })?;
        let row = t.machines();
        let row = row
            .lines()
            .find(|l| l.contains(&machine))
            .unwrap_or_default()
            .to_owned();
        check(row.split_whitespace().nth(2) == Some("rkt"), || {
            format!("machinectl list should show service \"rkt\": {row}")
        })?;
        check(
            wait_for(30, || {
                t.journal(&["-M", &machine, "-t", "inspect-sleep"])
                    .contains("started")
            }),
            || "journalctl -M does not show the app's output".into(),
        )?;
        let status = t.ok(&["status", &uuid])?;
        check(
            status.contains("state=running")
                && status.contains("pid=")
                && status.contains("started="),
            || format!("rkt status: {status}"),
        )?;
        let entered = t.ok(&[
            "enter",
            "--app",
            "inspect-sleep",
            &uuid[..8],
            "--",
            "/inspect",
            "--print-msg",
            "entered",
            "--print-pid1-cmdline",
        ])?;
        check(
            entered.contains("entered")
                && entered.contains("pid1_cmdline=/usr/lib/systemd/systemd"),
            || format!("rkt enter printed {entered:?}"),
        )?;
        let waited = t.rkt(&["status", "--wait=1s", &uuid])?;
        check(waited.status.code() == Some(254), || {
            "status --wait=1s returned while the pod still runs".into()
        })?;
        let mstatus = ctx
            .systemd
            .ok(&["machinectl", "status", &machine, "--no-pager"])?;
        // The pod's cgroup tree holds the app's process. (Whether its unit's own cgroup shows
        // depends on the host: on a cgroup-v1 hybrid host machinectl shows the flat v2 tree.)
        check(
            mstatus.contains("Service: rkt") && mstatus.contains("/inspect --print-msg started"),
            || format!("machinectl status does not show the pod's app: {mstatus}"),
        )?;
        let unit = ctx.systemd.ok(&[
            "systemctl",
            "-M",
            &machine,
            "show",
            "-p",
            "ActiveState,Description",
            "inspect-sleep.service",
        ])?;
        check(
            unit.contains("ActiveState=active") && unit.contains("rkt app inspect-sleep"),
            || format!("the app's unit in the pod: {unit}"),
        )?;
        ctx.systemd.ok(&["machinectl", "terminate", &machine])?;
        check(
            wait_for(30, || matches!(child.try_wait(), Ok(Some(_)))),
            || "rkt run did not return after machinectl terminate".into(),
        )?;
        let status = t.ok(&["status", "--wait=30s", &uuid])?;
        check(status.contains("state=exited"), || {
            format!("rkt status after terminate: {status}")
        })?;
        t.gc_leaves_nothing(&uuid)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// `rkt run` as a unit's main process: the unit's result is the app's exit status, and
/// stopping the unit stops the pod.
fn rkt_run_in_a_unit_file(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let exit7 = t.image("inspect-exit7");
    let mut cmd = vec![
        "systemd-run",
        "--wait",
        "--quiet",
        "--unit=rkt-caller-exit7",
        "--",
    ];
    cmd.extend(t.args(&["run", &exit7]));
    let out = ctx.systemd.run(&cmd)?;
    check(out.status.code() == Some(7), || {
        format!("the caller unit ended with {} (want 7)", out.status)
    })?;

    let uuid_file = t.uuid_file();
    let sleep = t.image("inspect-sleep");
    let mut cmd = vec!["systemd-run", "--quiet", "--unit=rkt-caller-sleep", "--"];
    cmd.extend(t.args(&["run", "--uuid-file-save", &uuid_file, &sleep]));
    ctx.systemd.ok(&cmd)?;
    check(wait_for(30, || t.read_uuid().is_some()), || {
        "no UUID saved".into()
    })?;
    let uuid = t.read_uuid().unwrap_or_default();
    let machine = format!("rkt-{}", uuid.replace('-', ""));
    check(wait_for(30, || t.machines().contains(&machine)), || {
        format!("pod never showed up: {}", t.machines())
    })?;
    ctx.systemd
        .ok(&["systemctl", "stop", "rkt-caller-sleep.service"])?;
    let pod_unit = format!("rkt-{uuid}.service");
    check(
        wait_for(30, || {
            ctx.systemd
                .run(&["systemctl", "is-active", &pod_unit])
                .map(|o| !o.status.success())
                .unwrap_or(false)
        }),
        || format!("{pod_unit} still active after its caller stopped"),
    )?;
    check(wait_for(30, || !t.machines().contains(&machine)), || {
        "machine still registered".into()
    })?;
    t.gc_leaves_nothing(&uuid)
}

/// `rkt stop` shuts a long-running pod down gracefully: the app gets SIGTERM (and, not
/// handling it, dies of it: status 128+15), `rkt run` returns, and the pod is exited.
fn rkt_stop_sends_sigterm_to_the_app(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let (mut child, uuid, _machine) = t.spawn_sleeper()?;
    let result = (|| {
        let out = t.ok(&["stop", &uuid[..8]])?;
        check(out.trim() == uuid, || format!("rkt stop printed {out:?}"))?;
        check(
            wait_for(30, || matches!(child.try_wait(), Ok(Some(_)))),
            || "rkt run did not return after rkt stop".into(),
        )?;
        let status = t.ok(&["status", &uuid])?;
        check(
            status.contains("state=exited") && status.contains("app-inspect-sleep=143"),
            || format!("rkt status after stop (want the app killed by SIGTERM, 143): {status}"),
        )?;
        let again = t.rkt(&["stop", &uuid])?;
        check(again.status.code() == Some(254), || {
            "stopping an exited pod must fail".into()
        })?;
        t.gc_leaves_nothing(&uuid)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// The shipped `rkt-gc.service` (pointed at this build and store, with no grace period)
/// marks and removes an exited pod.
fn gc_unit_collects_exited_pods(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let uuid_file = t.uuid_file();
    let image = t.image("inspect-exit7");
    t.rkt(&["run", "--uuid-file-save", &uuid_file, &image])?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    let unit = std::fs::read_to_string(ctx.checkout.join("units/rkt-gc.service"))
        .map_err(|e| format!("reading units/rkt-gc.service: {e}"))?;
    let unit = unit.replace(
        "/usr/bin/rkt gc --grace-period=24h",
        &format!("{} --dir {} gc --grace-period=0s", t.rkt, t.dir),
    );
    check(unit.contains(&t.dir), || {
        "the unit's ExecStart changed shape".into()
    })?;
    let path = "/run/systemd/system/rkt-gc.service";
    ctx.systemd
        .ok(&["sh", "-c", &format!("cat > {path} <<'UNIT'\n{unit}UNIT\n")])?;
    ctx.systemd.ok(&["systemctl", "daemon-reload"])?;
    ctx.systemd.ok(&["systemctl", "start", "rkt-gc.service"])?;
    let list = t.ok(&["list", "--no-legend"])?;
    check(!list.contains(&uuid[..8]), || {
        format!("pod not collected: {list}")
    })?;
    let log = t.journal(&["-u", "rkt-gc.service"]);
    check(log.contains(&format!("removed {uuid}")), || {
        format!("gc unit log: {log}")
    })?;
    ctx.systemd.ok(&["rm", "-f", path])?;
    ctx.systemd.ok(&["systemctl", "daemon-reload"])?;
    t.gc_leaves_nothing(&uuid)
}

/// Ctrl-C (SIGINT) to a `rkt run` started from a shell stops its pod, and rkt run returns.
fn interrupting_rkt_run_stops_the_pod(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let (mut child, uuid, _machine) = t.spawn_sleeper()?;
    let uuid_file = t.uuid_file();
    let result = (|| {
        // Our child is nsenter; the signal goes to rkt itself, as a terminal would send it.
        ctx.systemd.ok(&[
            "pkill",
            "-INT",
            "-f",
            &format!("run --uuid-file-save {uuid_file}"),
        ])?;
        check(
            wait_for(30, || matches!(child.try_wait(), Ok(Some(_)))),
            || "rkt run did not return after SIGINT".into(),
        )?;
        let status = t.ok(&["status", "--wait=30s", &uuid])?;
        check(status.contains("app-inspect-sleep=143"), || {
            format!("the app was not stopped with SIGTERM: {status}")
        })?;
        t.gc_leaves_nothing(&uuid)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// `--no-overlay`: the app runs in a copy of its image's tree, not an overlay.
fn no_overlay_copies_the_root(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let uuid_file = t.uuid_file();
    let image = t.image("inspect-exit7");
    let out = t.rkt(&[
        "run",
        "--no-overlay",
        "--uuid-file-save",
        &uuid_file,
        &image,
    ])?;
    check(out.status.code() == Some(7), || {
        format!(
            "rkt run --no-overlay exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    let pod = format!("{}/pods/run/{uuid}", t.dir);
    let marker = format!("{pod}/stage1/rootfs/opt/stage2/inspect-exit7/rootfs/marker");
    let got = ctx.systemd.ok(&["cat", &marker])?;
    check(got == "exit7", || {
        format!("marker in the copied root: {got:?}")
    })?;
    let overlay = ctx
        .systemd
        .run(&["test", "-e", &format!("{pod}/overlay")])?;
    check(!overlay.status.success(), || {
        "an overlay was set up anyway".into()
    })?;
    t.gc_leaves_nothing(&uuid)
}

/// The app's journal lines (`key=value` as inspect prints them), latest run last.
fn app_lines(t: &PodTest, app: &str) -> Vec<String> {
    t.journal(&["-m", "-t", app])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The last value of `key` the app printed.
fn last_value(lines: &[String], key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::to_owned)
}

/// Runs rkt with `INHERITED=from-rkt` in its environment (for --inherit-env); it must succeed.
fn run_ok(t: &PodTest, args: &[&str]) -> TestResult {
    let mut cmd = vec!["env", "INHERITED=from-rkt"];
    cmd.extend(t.args(args));
    let out = t.ctx.systemd.run(&cmd)?;
    check(out.status.success(), || {
        let log = t.journal(&["-m", "-n", "30", "-o", "short"]);
        format!(
            "rkt {args:?} exited {}: {}\n{log}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Per-app options after an image reach that app only: name, user, group, supplementary
/// groups, working directory, environment (pod-wide and per app), command and arguments, and
/// a read-only root (for the second app alone). What the apps print is what they saw.
fn per_app_options_reach_the_app(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let image = t.image("inspect");
    let env_file = format!("{}/app.env", t.dir);
    ctx.systemd.ok(&[
        "sh",
        "-c",
        &format!("printf 'FROM_FILE=f\\nAPP=file\\n' > {env_file}"),
    ])?;
    let uuid_file = t.uuid_file();
    run_ok(
        &t,
        &[
            "run",
            "--inherit-env",
            "--set-env=POD=p",
            &image,
            "--name=opts-user",
            "--user=user",
            "--group=user",
            "--supplementary-gids=10,20",
            "--working-dir=/tmp",
            "--set-env-file",
            &env_file,
            "--set-env=APP=cli",
            "--",
            "--print-env",
            "--print-user",
            "--print-caps",
            "--print-cwd",
            "--print-args",
            "---",
            &image,
            "--name=opts-ro",
            "--readonly-rootfs",
            "--exec=/inspect",
            "--",
            "--try-write",
            "/marker",
            "--print-env",
            "---",
            "--uuid-file-save",
            &uuid_file,
        ],
    )?;
    let user = app_lines(&t, "opts-user");
    let want = [
        ("uid", "1000 1000 1000 1000"),
        ("gid", "1000 1000 1000 1000"),
        // The supplementary groups, and the primary group as systemd adds it.
        ("groups", "10 20 1000"),
        ("cwd", "/tmp"),
        ("env:POD", "p"),
        ("env:INHERITED", "from-rkt"),
        ("env:FROM_FILE", "f"),
        ("env:APP", "cli"),
        ("env:AC_APP_NAME", "opts-user"),
        ("arg:1", "--print-env"),
        ("arg:5", "--print-args"),
        // A non-root app gets the default set as ambient capabilities.
        ("cap_ambient", "00000000a80425fb"),
    ];
    for (key, value) in want {
        let got = last_value(&user, key);
        check(got.as_deref() == Some(value), || {
            format!(
                "app opts-user: {key}={got:?}, want {value:?}\n{}",
                user.join("\n")
            )
        })?;
    }
    let ro = app_lines(&t, "opts-ro");
    // EROFS: the root is read-only, though the app is root.
    check(
        last_value(&ro, "write:/marker").as_deref() == Some("errno:30")
            && last_value(&ro, "env:POD").as_deref() == Some("p")
            && last_value(&ro, "env:APP").is_none(),
        || format!("app opts-ro:\n{}", ro.join("\n")),
    )?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    t.gc_leaves_nothing(&uuid)
}

/// Isolator flags become limits the app is under: capability sets (bounding and effective),
/// the memory limit of its cgroup, a syscall refused by seccomp with the errno asked for,
/// and its OOM score adjustment; an app without flags gets the default capability set.
fn isolators_reach_the_app(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let image = t.image("inspect");
    let uuid_file = t.uuid_file();
    run_ok(
        &t,
        &[
            "run",
            "--uuid-file-save",
            &uuid_file,
            &image,
            "--name=iso-limited",
            "--memory=64M",
            "--cpu=500m",
            "--caps-retain=CAP_KILL,CAP_NET_RAW",
            "--seccomp=mode=remove,errno=ENOTTY,chroot",
            "--oom-score-adj=300",
            "--",
            "--print-caps",
            "--print-memory-limit",
            "--print-cpu-quota",
            "--try-chroot",
            "--read-file",
            "/proc/self/oom_score_adj",
            "--read-file",
            "/proc/self/cgroup",
            "---",
        ],
    )?;
    let limited = app_lines(&t, "iso-limited");
    let want = [
        ("cap_bounding", "0000000000002020"),
        ("cap_effective", "0000000000002020"),
        // appc quantities are SI: 64M is 64 000 000 bytes. Under cgroup v1 it is the pod's
        // limit (the app's only memory cgroup), under v2 the app's own.
        ("memory_max", "64000000"),
        // 500m: half of each 100 ms period.
        ("cpu_quota", "50000/100000"),
        // ENOTTY, from the filter: root with CAP_SYS_CHROOT gone would get EPERM.
        ("chroot", "errno:25"),
        ("file:/proc/self/oom_score_adj", "300"),
    ];
    for (key, value) in want {
        let got = last_value(&limited, key);
        check(got.as_deref() == Some(value), || {
            format!(
                "app iso-limited: {key}={got:?}, want {value:?}\n{}",
                limited.join("\n")
            )
        })?;
    }
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    t.gc_leaves_nothing(&uuid)?;
    run_ok(
        &t,
        &[
            "run",
            "--uuid-file-save",
            &uuid_file,
            &image,
            "--name=iso-default",
            "--",
            "--print-caps",
            "--try-chroot",
            "---",
        ],
    )?;
    let default = app_lines(&t, "iso-default");
    check(
        last_value(&default, "cap_bounding").as_deref() == Some("00000000a80425fb")
            && last_value(&default, "chroot").as_deref() == Some("ok"),
        || format!("app iso-default:\n{}", default.join("\n")),
    )?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    t.gc_leaves_nothing(&uuid)?;
    // The same isolators written in the image manifest.
    let isolated = t.image("inspect-isolated");
    run_ok(&t, &["run", "--uuid-file-save", &uuid_file, &isolated])?;
    let lines = app_lines(&t, "inspect-isolated");
    let want = [
        ("no_new_privs", "1"),
        // The default set without CAP_CHOWN (bit 0).
        ("cap_bounding", "00000000a80425fa"),
        ("chroot", "errno:25"),
    ];
    for (key, value) in want {
        let got = last_value(&lines, key);
        check(got.as_deref() == Some(value), || {
            format!(
                "app inspect-isolated: {key}={got:?}, want {value:?}\n{}",
                lines.join("\n")
            )
        })?;
    }
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    t.gc_leaves_nothing(&uuid)?;
    // --insecure-options=capabilities,seccomp turns both off, whatever the manifest says (the
    // app keeps what the pod has: more than the default set, CAP_CHOWN included); a non-root
    // app next to it still starts (its ambient set cannot exceed the pod's).
    let out = ctx.systemd.run(&[
        &t.rkt,
        "--dir",
        &t.dir,
        "--insecure-options=image,capabilities,seccomp",
        "run",
        "--uuid-file-save",
        &uuid_file,
        &isolated,
        &image,
        "--name=iso-insecure-user",
        "--user=user",
        "--",
        "--print-caps",
        "---",
    ])?;
    check(out.status.success(), || {
        format!(
            "rkt run exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let lines = app_lines(&t, "inspect-isolated");
    let bounding = last_value(&lines, "cap_bounding")
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .unwrap_or(0);
    check(
        last_value(&lines, "chroot").as_deref() == Some("ok")
            && bounding & 1 == 1
            && bounding.count_ones() > 14,
        || format!("app inspect-isolated, insecure:\n{}", lines.join("\n")),
    )?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    t.gc_leaves_nothing(&uuid)
}

/// A user the image does not have, or an isolator value rkt cannot apply: one clear line,
/// exit 254, and no pod made.
fn unknown_user_or_isolator_stops_before_the_pod(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let image = t.image("inspect");
    let cases: [(&[&str], &str); 3] = [
        (
            &["--user=nobody"],
            "user \"nobody\" is not in the image's /etc/passwd",
        ),
        (
            &["--group=staff"],
            "group \"staff\" is not in the image's /etc/group",
        ),
        (
            &["--caps-retain=CAP_FLY"],
            "\"CAP_FLY\" is not a Linux capability",
        ),
    ];
    for (flags, want) in cases {
        let mut args = vec!["run", image.as_str()];
        args.extend_from_slice(flags);
        let out = t.rkt(&args)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        check(
            out.status.code() == Some(254) && stderr.contains(want) && stderr.lines().count() == 1,
            || {
                format!(
                    "rkt {flags:?} exited {}: {stderr:?}, want {want:?}",
                    out.status
                )
            },
        )?;
    }
    let pods = t.ok(&["list", "--no-legend"])?;
    check(pods.trim().is_empty(), || format!("pods were made: {pods}"))
}
