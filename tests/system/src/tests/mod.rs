//! The system tests, one function each.

use crate::{Ctx, TestResult};

mod apps;
mod compat;
mod isolation;
mod mds;
mod notify;
mod package;
mod ports;
mod races;
mod registry;
mod script_compat;
mod signatures;
mod volumes;

pub(crate) type Test = fn(&Ctx) -> TestResult;

/// Every test, in the order they run: this file's, then each topic module's.
pub fn all() -> Vec<(&'static str, Test)> {
    let groups: &[&[(&str, Test)]] = &[
        CORE,
        notify::TESTS,
        mds::TESTS,
        apps::TESTS,
        compat::TESTS,
        script_compat::TESTS,
        registry::TESTS,
        signatures::TESTS,
        volumes::TESTS,
        ports::TESTS,
        isolation::TESTS,
        races::TESTS,
        package::TESTS,
    ];
    groups.iter().flat_map(|g| g.iter().copied()).collect()
}

/// The tests in this file.
const CORE: &[(&str, Test)] = &[
    ("systemd_is_running", systemd_is_running),
    ("systemd_run_wait", systemd_run_wait),
    ("rkt_fetch_list_rm_in_systemd", rkt_fetch_list_rm_in_systemd),
    ("oci_images_run_like_acis", oci_images_run_like_acis),
    ("a_long_store_path_works", a_long_store_path_works),
    (
        "a_signed_image_found_by_name_is_trusted_and_run",
        a_signed_image_found_by_name_is_trusted_and_run,
    ),
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
        "net_none_hostname_dns_hosts_seen_by_the_app",
        net_none_hostname_dns_hosts_seen_by_the_app,
    ),
    (
        "net_host_with_the_hosts_dns_and_hosts",
        net_host_with_the_hosts_dns_and_hosts,
    ),
    (
        "net_cni_bridge_gives_the_app_an_address",
        net_cni_bridge_gives_the_app_an_address,
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

pub(crate) fn check(cond: bool, why: impl FnOnce() -> String) -> TestResult {
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
pub(crate) fn store_dir(ctx: &Ctx) -> Result<String, String> {
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
        image["id"] == id && image["name"] == "example.com/busybox:0.1",
        || format!("listed {image}"),
    )?;
    for key in ["size", "import_time", "last_used_time"] {
        check(!image[key].is_null(), || format!("no {key} in {image}"))?;
    }
    let rootfs = format!("{dir}/cas/images/{id}/rootfs/bin/busybox");
    ctx.systemd.ok(&["test", "-x", &rootfs])?;

    in_unit(&["image", "rm", id])?;
    // Only the store-wide lock that removals take may stay (an empty file, as the store's
    // directories do); the image's own lock goes with it.
    let left = ctx.systemd.ok(&[
        "find",
        &dir,
        "-mindepth",
        "1",
        "-not",
        "-type",
        "d",
        "-not",
        "-path",
        "*/cas/locks/image-users",
    ])?;
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
pub(crate) fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 10 {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

pub(crate) struct PodTest<'a> {
    pub(crate) ctx: &'a Ctx,
    pub(crate) dir: String,
    pub(crate) rkt: String,
}

impl<'a> PodTest<'a> {
    pub(crate) fn new(ctx: &'a Ctx) -> Result<Self, String> {
        Ok(PodTest {
            ctx,
            dir: store_dir(ctx)?,
            rkt: ctx.rkt.to_str().ok_or("rkt path")?.to_owned(),
        })
    }

    pub(crate) fn image(&self, name: &str) -> String {
        self.ctx
            .images
            .join(format!("{name}.aci"))
            .display()
            .to_string()
    }

    /// `rkt --dir DIR --insecure-options=image ARGS…`
    pub(crate) fn args<'b>(&'b self, args: &[&'b str]) -> Vec<&'b str> {
        let mut all = vec![
            self.rkt.as_str(),
            "--dir",
            &self.dir,
            "--insecure-options=image",
        ];
        all.extend_from_slice(args);
        all
    }

    pub(crate) fn rkt(&self, args: &[&str]) -> Result<std::process::Output, String> {
        self.ctx.systemd.run(&self.args(args))
    }

    pub(crate) fn ok(&self, args: &[&str]) -> Result<String, String> {
        self.ctx.systemd.ok(&self.args(args))
    }

    pub(crate) fn uuid_file(&self) -> String {
        format!("{}/uuid", self.dir)
    }

    pub(crate) fn read_uuid(&self) -> Option<String> {
        let out = self.ctx.systemd.run(&["cat", &self.uuid_file()]).ok()?;
        let uuid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!uuid.is_empty()).then_some(uuid)
    }

    pub(crate) fn machines(&self) -> String {
        self.ctx
            .systemd
            .run(&["machinectl", "list", "--no-legend"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    pub(crate) fn journal(&self, args: &[&str]) -> String {
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
    pub(crate) fn spawn_sleeper(&self) -> Result<(std::process::Child, String, String), String> {
        self.spawn_sleeper_with(&[])
    }

    /// [`Self::spawn_sleeper`] with more `rkt run` flags.
    pub(crate) fn spawn_sleeper_with(
        &self,
        flags: &[&str],
    ) -> Result<(std::process::Child, String, String), String> {
        let uuid_file = self.uuid_file();
        let image = self.image("inspect-sleep");
        let mut child = self
            .ctx
            .systemd
            .command(&self.rkt)
            .args(["--dir", &self.dir, "--insecure-options=image", "run"])
            .args(["--uuid-file-save", &uuid_file])
            .args(flags)
            .arg(&image)
            // What the app prints (rkt run shows it) is read from the journal here.
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("starting rkt run: {e}"))?;
        let started = (|| {
            check(wait_for(30, || self.read_uuid().is_some()), || {
                "no UUID saved".into()
            })?;
            let uuid = self.read_uuid().unwrap_or_default();
            let machine = format!("rkt-{uuid}");
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

    /// Kills the pod's stage1 as a crash would (SIGKILL to its unit), then waits (bounded)
    /// until `rkt run` returned and the pod counts as exited.
    pub(crate) fn kill_stage1(&self, child: &mut std::process::Child, uuid: &str) -> TestResult {
        self.ctx.systemd.ok(&[
            "systemctl",
            "kill",
            "--signal=SIGKILL",
            &format!("rkt-{uuid}.service"),
        ])?;
        check(
            wait_for(30, || matches!(child.try_wait(), Ok(Some(_)))),
            || "rkt run did not return after its pod was killed".into(),
        )?;
        check(
            wait_for(30, || {
                self.ok(&["status", uuid])
                    .is_ok_and(|s| s.contains("state=exited"))
            }),
            || "the killed pod is not exited".into(),
        )
    }

    /// gc with no grace period: the pod must be gone, with nothing mounted.
    pub(crate) fn gc_leaves_nothing(&self, uuid: &str) -> TestResult {
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

/// The appc flow end to end, with no insecure option anywhere: an image signed with GnuPG is
/// published with discovery tags by nginx over HTTPS (a throwaway CA); `rkt trust --prefix`
/// takes the key discovery offers, `rkt fetch NAME` verifies and stores the image, and
/// `rkt run NAME` in systemd runs it. (The network part runs in a private network namespace
/// where example.test is 127.0.0.1 and nginx has port 443; the store is shared with the
/// sandbox through the checkout.)
fn a_signed_image_found_by_name_is_trusted_and_run(ctx: &Ctx) -> TestResult {
    use crate::nginx::{Netns, Nginx, NginxConfig, TestCa};
    let Some(gpg) = crate::gpg::Gpg::new() else {
        return Err("gpg is missing (CI installs gnupg)".into());
    };
    let base = ctx.checkout.join("target");
    let work = tempfile::Builder::new()
        .prefix("systest-trust-")
        .tempdir_in(&base)
        .map_err(|e| e.to_string())?;
    let w = work.path();
    let (store, config, www) = (w.join("store"), w.join("etc-rkt"), w.join("www"));
    // The image: inspect-exit7's files under the name example.test/hello.
    let unpacked = w.join("aci");
    std::fs::create_dir_all(&unpacked).map_err(|e| e.to_string())?;
    let aci = w.join("hello.aci");
    let script = format!(
        "set -e; tar -xzf {src} -C {dir}; \
         sed -i 's#\"example.com/inspect-exit7\"#\"example.test/hello\"#' {dir}/manifest; \
         tar -C {dir} -czf {out} manifest rootfs",
        src = ctx.images.join("inspect-exit7.aci").display(),
        dir = unpacked.display(),
        out = aci.display()
    );
    let made = std::process::Command::new("sh")
        .args(["-c", &script])
        .status();
    check(made.is_ok_and(|s| s.success()), || {
        "building the test image".into()
    })?;
    let fpr = gpg.gen_key(
        "Hello Publisher <keys@example.test>",
        "ed25519",
        "never",
        None,
    );
    let files = www.join("files/example.test");
    std::fs::create_dir_all(&files).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(www.join("hello")).map_err(|e| e.to_string())?;
    std::fs::copy(&aci, files.join("hello-0.1-linux-amd64.aci")).map_err(|e| e.to_string())?;
    let write = |path: std::path::PathBuf, bytes: &[u8]| std::fs::write(path, bytes);
    write(
        files.join("hello-0.1-linux-amd64.aci.asc"),
        &gpg.sign_file(&fpr, &aci, None),
    )
    .and_then(|()| write(www.join("keys.asc"), &gpg.export(&fpr)))
    .and_then(|()| {
        write(
            www.join("hello/index.html"),
            b"<html><head>\n<meta name=\"ac-discovery\" content=\"example.test/hello \
                  https://example.test/files/{name}-{version}-{os}-{arch}.{ext}\">\n\
                  <meta name=\"ac-discovery-pubkeys\" content=\"example.test/hello \
                  https://example.test/keys.asc\">\n</head></html>\n",
        )
    })
    .map_err(|e| e.to_string())?;
    let ca = TestCa::new(&w.join("ca"), &["example.test"])?;
    let netns = Netns::new(&["example.test"])?;
    let _nginx = Nginx::start(NginxConfig::new(&www).tls(&ca).netns(&netns))?;
    let flags = |extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "--dir".to_owned(),
            store.display().to_string(),
            "--local-config".to_owned(),
            config.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let online = |extra: &[&str]| -> Result<std::process::Output, String> {
        netns
            .command(&ctx.rkt)
            .args(flags(extra))
            .env("SSL_CERT_FILE", &ca.ca_cert)
            .output()
            .map_err(|e| e.to_string())
    };
    let refused = online(&["fetch", "example.test/hello:0.1"])?;
    check(refused.status.code() == Some(254), || {
        "an image signed by a key nobody trusted was fetched".into()
    })?;
    let trusted = online(&[
        "trust",
        "--prefix",
        "example.test/hello",
        "--skip-fingerprint-review",
    ])?;
    check(trusted.status.success(), || {
        format!("rkt trust: {}", String::from_utf8_lossy(&trusted.stderr))
    })?;
    let fetched = online(&["fetch", "example.test/hello:0.1"])?;
    check(fetched.status.success(), || {
        format!("rkt fetch: {}", String::from_utf8_lossy(&fetched.stderr))
    })?;
    // In systemd: run by name, from the store, verified at fetch; no insecure option.
    let rkt = ctx.rkt.display().to_string();
    let mut run: Vec<String> = vec![rkt.clone()];
    run.extend(flags(&["run", "example.test/hello:0.1"]));
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    let out = ctx.systemd.run(&run)?;
    let stage1_log = || {
        ctx.systemd
            .ok(&[
                "journalctl",
                "--no-pager",
                "-o",
                "cat",
                "-n",
                "15",
                "-t",
                "rkt-stage1",
            ])
            .unwrap_or_default()
    };
    check(out.status.code() == Some(7), || {
        format!(
            "rkt run of the trusted image exited {}: {}\nstage1: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            stage1_log()
        )
    })?;
    let mut gc: Vec<String> = vec![rkt];
    gc.extend(flags(&["gc", "--grace-period=0s"]));
    let gc: Vec<&str> = gc.iter().map(String::as_str).collect();
    ctx.systemd.ok(&gc)?;
    Ok(())
}

/// A store whose path is long (pod directories then pass the 108 bytes a Unix socket path may
/// have) still runs pods: nothing rkt binds lives under the pod directory.
fn a_long_store_path_works(ctx: &Ctx) -> TestResult {
    let mut t = PodTest::new(ctx)?;
    t.dir = format!("{}/{}", t.dir, "a-rather-long-directory-name".repeat(3));
    ctx.systemd.ok(&["mkdir", "-p", &t.dir])?;
    let uuid_file = t.uuid_file();
    let out = t.rkt(&[
        "run",
        "--uuid-file-save",
        &uuid_file,
        &t.image("inspect-exit7"),
    ])?;
    check(out.status.code() == Some(7), || {
        format!(
            "rkt run with --dir {} exited {}: {}",
            t.dir,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
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
    let added = ctx
        .systemd
        .ok(&["cat", &format!("{rendered}/rootfs/added")])?;
    let gone = ctx
        .systemd
        .run(&["test", "-e", &format!("{rendered}/rootfs/gone")])?;
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
    let machine = format!("rkt-{uuid}");
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
        // `rkt run` stays with its pod for as long as the pod runs.
        std::thread::sleep(std::time::Duration::from_secs(3));
        check(matches!(child.try_wait(), Ok(None)), || {
            "rkt run returned while its pod was still running".into()
        })?;
        let out = t.ok(&["stop", &uuid[..8]])?;
        check(out.trim() == uuid, || format!("rkt stop printed {out:?}"))?;
        check(
            wait_for(30, || matches!(child.try_wait(), Ok(Some(_)))),
            || "rkt run did not return after rkt stop".into(),
        )?;
        let code = child.try_wait().ok().flatten().and_then(|s| s.code());
        check(code == Some(143), || {
            format!("rkt run exited {code:?} after rkt stop, want the app's 143")
        })?;
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
        .run(&["test", "-e", &format!("{pod}/overlay/inspect-exit7")])?;
    check(!overlay.status.success(), || {
        "an overlay was set up anyway".into()
    })?;
    t.gc_leaves_nothing(&uuid)
}

impl PodTest<'_> {
    /// Runs the `inspect-net` image with `flags`; returns the UUID and what the app printed
    /// (its journal lines, this pod's only: its machine ID is the UUID).
    fn run_inspect_net(&self, flags: &[&str]) -> Result<(String, String), String> {
        let uuid_file = self.uuid_file();
        let image = self.image("inspect-net");
        let mut args = vec!["run", "--uuid-file-save", &uuid_file];
        args.extend_from_slice(flags);
        args.push(&image);
        let out = self.rkt(&args)?;
        let uuid = self.read_uuid().ok_or("no UUID saved")?;
        let machine_id = format!("_MACHINE_ID={}", uuid.replace('-', ""));
        let log = self.journal(&["-m", "-t", "inspect-net", &machine_id]);
        check(out.status.success(), || {
            format!(
                "rkt run {flags:?} exited {}: {}\napp output: {log}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        Ok((uuid, log))
    }

    /// The network namespace of the systemd the tests run against (the host's network).
    fn host_netns(&self) -> Result<String, String> {
        Ok(self
            .ctx
            .systemd
            .ok(&["readlink", "/proc/1/ns/net"])?
            .trim()
            .to_owned())
    }
}

pub(crate) fn log_value<'a>(log: &'a str, key: &str) -> Option<&'a str> {
    log.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// `--net=none`: the app sees only `lo`, in a network namespace that is not the host's; it
/// has the hostname, resolver and hosts entries it was given, written in its overlay (the
/// store's tree untouched); `rkt status` says `networks=none`. Bad values stop prepare.
fn net_none_hostname_dns_hosts_seen_by_the_app(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let image = t.image("inspect-net");
    for bad in [
        "--net=bridge",
        "--dns=10.0.0",
        "--hosts-entry=db.example",
        "--hostname=bad_name",
    ] {
        let out = t.rkt(&["prepare", bad, &image])?;
        let err = String::from_utf8_lossy(&out.stderr);
        check(
            out.status.code() == Some(254) && err.contains(bad.split('=').next().unwrap_or(bad)),
            || format!("prepare {bad}: {} {err}", out.status),
        )?;
    }
    let list = t.ok(&["list", "--no-legend"])?;
    check(list.trim().is_empty(), || {
        format!("refused prepares left pods: {list}")
    })?;

    let (uuid, log) = t.run_inspect_net(&[
        "--net=none",
        "--hostname=web-1",
        "--dns=10.0.0.53",
        "--dns=2001:db8::53",
        "--dns-search=a.example",
        "--dns-opt=ndots:2",
        "--hosts-entry=10.1.2.3=db.example",
    ])?;
    check(log_value(&log, "net_devs") == Some("lo"), || {
        format!("the app should see only lo: {log}")
    })?;
    let host_netns = t.host_netns()?;
    let netns = log_value(&log, "netns").unwrap_or_default();
    check(netns.starts_with("net:[") && netns != host_netns, || {
        format!("app netns {netns:?}, host's {host_netns:?}")
    })?;
    check(log_value(&log, "hostname") == Some("web-1"), || {
        format!("hostname: {log}")
    })?;
    for line in [
        "nameserver 10.0.0.53",
        "nameserver 2001:db8::53",
        "search a.example",
        "options ndots:2",
        "10.1.2.3 db.example",
        "127.0.1.1 web-1",
        "127.0.0.1 localhost localhost.localdomain localhost4 localhost4.localdomain4",
    ] {
        check(log.lines().any(|l| l.ends_with(line)), || {
            format!("the app's /etc does not say {line:?}: {log}")
        })?;
    }
    let pod = format!("{}/pods/run/{uuid}", t.dir);
    let upper = ctx.systemd.ok(&[
        "cat",
        &format!("{pod}/overlay/inspect-net/upper/etc/resolv.conf"),
    ])?;
    check(upper.contains("nameserver 10.0.0.53"), || {
        format!("resolv.conf in the overlay's upper layer: {upper:?}")
    })?;
    let in_store = ctx.systemd.run(&[
        "sh",
        "-c",
        &format!(
            "ls {}/cas/images/*/rootfs/etc/resolv.conf {}/cas/images/*/rootfs/etc/hosts",
            t.dir, t.dir
        ),
    ])?;
    check(!in_store.status.success(), || {
        format!(
            "the store's tree was written to: {}",
            String::from_utf8_lossy(&in_store.stdout)
        )
    })?;
    let status = t.ok(&["status", &uuid])?;
    check(status.lines().any(|l| l == "networks=none"), || {
        format!("rkt status: {status}")
    })?;
    let json = t.ok(&["status", "--format=json", &uuid])?;
    // As the original: no networks without a CNI network.
    check(!json.contains("networks"), || {
        format!("rkt status --format=json: {json}")
    })?;
    t.gc_leaves_nothing(&uuid)
}

/// The default `--net=host`: the app is in the host's network namespace, named rkt-<uuid>,
/// with the host's resolv.conf (`--dns=host`) and the host's hosts file plus an entry
/// (`--hosts-entry=host`).
fn net_host_with_the_hosts_dns_and_hosts(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let host_resolv = ctx.systemd.run(&["cat", "/etc/resolv.conf"])?;
    if !host_resolv.status.success() {
        return crate::skip("the test's systemd has no /etc/resolv.conf to copy");
    }
    let host_resolv = String::from_utf8_lossy(&host_resolv.stdout).into_owned();
    let host_hosts = ctx.systemd.ok(&["cat", "/etc/hosts"])?;
    let (uuid, log) = t.run_inspect_net(&[
        "--net=host",
        "--dns=host",
        "--hosts-entry=host",
        "--hosts-entry=10.9.8.7=extra.example",
    ])?;
    let host_netns = t.host_netns()?;
    check(
        log_value(&log, "netns") == Some(host_netns.as_str()),
        || format!("the app should share the host's netns {host_netns}: {log}"),
    )?;
    let want_hostname = format!("rkt-{uuid}");
    check(
        log_value(&log, "hostname") == Some(want_hostname.as_str()),
        || format!("hostname, want {want_hostname}: {log}"),
    )?;
    // The journal keeps lines, not blank ones or trailing spaces.
    for line in host_resolv
        .lines()
        .chain(host_hosts.lines())
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .chain([
            "10.9.8.7 extra.example",
            &format!("127.0.1.1 {want_hostname}"),
        ])
    {
        check(log.lines().any(|l| l.ends_with(line)), || {
            format!("the app's /etc lacks the line {line:?}: {log}")
        })?;
    }
    let status = t.ok(&["status", &uuid])?;
    check(status.lines().any(|l| l == "networks=host"), || {
        format!("rkt status: {status}")
    })?;
    t.gc_leaves_nothing(&uuid)
}

/// `--net=NAME` with a bridge network from `<local-config>/net.d` (Debian's CNI plugins): the
/// app sees `lo` and `eth0` with an address from the network's range in a namespace of its own;
/// the host has the bridge's gateway address; once the pod is gone its address is free again.
fn net_cni_bridge_gives_the_app_an_address(ctx: &Ctx) -> TestResult {
    const BRIDGE: &str = "rkt-systest0";
    if ctx
        .systemd
        .run(&["test", "-x", "/usr/lib/cni/bridge"])?
        .status
        .code()
        != Some(0)
    {
        return crate::skip("no /usr/lib/cni/bridge (install containernetworking-plugins)");
    }
    let t = PodTest::new(ctx)?;
    let config = format!("{}/config", t.dir);
    let ipam = format!("{}/ipam", t.dir);
    let conf = format!(
        r#"{{"cniVersion":"0.4.0","name":"systest","type":"bridge","bridge":"{BRIDGE}","isGateway":true,"ipMasq":false,"ipam":{{"type":"host-local","subnet":"10.222.33.0/24","dataDir":"{ipam}"}}}}"#
    );
    ctx.systemd
        .ok(&["mkdir", "-p", &format!("{config}/net.d")])?;
    ctx.systemd.ok(&[
        "sh",
        "-c",
        r#"printf '%s' "$1" > "$2""#,
        "sh",
        &conf,
        &format!("{config}/net.d/10-systest.conf"),
    ])?;
    let missing = t.rkt(&[
        "--local-config",
        &config,
        "prepare",
        "--net=nosuchnet",
        &t.image("inspect-net"),
    ])?;
    let err = String::from_utf8_lossy(&missing.stderr);
    check(
        missing.status.code() == Some(254) && err.contains("--net=nosuchnet"),
        || format!("prepare --net=nosuchnet: {} {err}", missing.status),
    )?;
    let result = (|| {
        let (uuid, log) = t.run_inspect_net(&[
            "--local-config",
            &config,
            "--net=systest",
            "--dns=10.222.33.1",
        ])?;
        check(log_value(&log, "net_devs") == Some("lo,eth0"), || {
            format!("the app should see lo and eth0: {log}")
        })?;
        let addrs = log_value(&log, "addrs").unwrap_or_default();
        let pod_ip = addrs
            .split(',')
            .find(|a| a.starts_with("10.222.33."))
            .ok_or_else(|| format!("no address of the network in the app: {log}"))?
            .to_owned();
        check(pod_ip != "10.222.33.1", || "the app got the gateway".into())?;
        let host_netns = t.host_netns()?;
        check(
            log_value(&log, "netns") != Some(host_netns.as_str()),
            || format!("the app is in the host's netns: {log}"),
        )?;
        let gateway = ctx
            .systemd
            .ok(&["ip", "-4", "-o", "addr", "show", BRIDGE])?;
        check(gateway.contains("10.222.33.1/24"), || {
            format!("the host's bridge: {gateway}")
        })?;
        // DEL gave the address back: host-local keeps one file per address in use.
        let leases = ctx.systemd.ok(&["ls", &format!("{ipam}/systest")])?;
        check(!leases.lines().any(|l| l == pod_ip), || {
            format!("{pod_ip} is still leased after the pod exited: {leases}")
        })?;
        let status = t.ok(&["status", &uuid])?;
        check(status.lines().any(|l| l == "networks=systest"), || {
            format!("rkt status: {status}")
        })?;
        crashed_pod_network_freed_by_gc(&t, &config, &ipam)?;
        t.gc_leaves_nothing(&uuid)
    })();
    let _ = ctx.systemd.run(&["ip", "link", "del", BRIDGE]);
    result
}

/// A running pod on the CNI network shows its address in `rkt status`; killed with its stage1
/// (SIGKILL to the whole unit: no teardown), it keeps the address until `rkt gc` frees it.
fn crashed_pod_network_freed_by_gc(t: &PodTest, config: &str, ipam: &str) -> TestResult {
    // The first pod's UUID must not be taken for this one's.
    t.ctx.systemd.ok(&["rm", "-f", &t.uuid_file()])?;
    let (mut child, uuid, _machine) =
        t.spawn_sleeper_with(&["--local-config", config, "--net=systest"])?;
    let result = (|| {
        let status = t.ok(&["status", &uuid])?;
        let ip = status
            .lines()
            .find_map(|l| l.strip_prefix("networks=systest:ip4="))
            .ok_or_else(|| format!("rkt status of the running pod: {status}"))?
            .to_owned();
        let leased = || {
            t.ctx
                .systemd
                .run(&["test", "-e", &format!("{ipam}/systest/{ip}")])
                .is_ok_and(|o| o.status.success())
        };
        check(leased(), || {
            format!("{ip} is not leased while the pod runs")
        })?;
        t.kill_stage1(&mut child, &uuid)?;
        check(leased(), || {
            "the killed stage1 freed its address: this test proves nothing".into()
        })?;
        t.ok(&["gc", "--grace-period=0s"])?;
        check(!leased(), || format!("{ip} is still leased after rkt gc"))
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// The app's journal lines (`key=value` as inspect prints them), latest run last.
pub(crate) fn app_lines(t: &PodTest, app: &str) -> Vec<String> {
    t.journal(&["-m", "-t", app])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The last value of `key` the app printed.
pub(crate) fn last_value(lines: &[String], key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::to_owned)
}

/// Runs rkt with `INHERITED=from-rkt` in its environment (for --inherit-env); it must succeed.
pub(crate) fn run_ok(t: &PodTest, args: &[&str]) -> TestResult {
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
            // Arguments are literal: systemd must not expand `$HOME` in them.
            "--print-msg",
            "literal=$HOME-$$-${X}",
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
        ("literal", "$HOME-$$-${X}"),
        // A non-root app gets the default set as ambient capabilities.
        ("cap_ambient", "00000000a00405fb"),
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
            "--try-get-mempolicy",
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
        // The app's own seccomp set replaces the default filter.
        ("get_mempolicy", "ok"),
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
            "--try-get-mempolicy",
            "---",
        ],
    )?;
    // The default capability set, and the default seccomp filter: get_mempolicy (harmless,
    // unprivileged) refused with EPERM, chroot (not in it) allowed.
    let default = app_lines(&t, "iso-default");
    check(
        last_value(&default, "cap_bounding").as_deref() == Some("00000000a00405fb")
            && last_value(&default, "chroot").as_deref() == Some("ok")
            && last_value(&default, "get_mempolicy").as_deref() == Some("errno:1"),
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
        ("cap_bounding", "00000000a00405fa"),
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
        "--try-get-mempolicy",
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
    let user = app_lines(&t, "iso-insecure-user");
    check(
        last_value(&user, "get_mempolicy").as_deref() == Some("ok"),
        || format!("app iso-insecure-user (no filter):\n{}", user.join("\n")),
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
