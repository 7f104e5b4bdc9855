//! The original rkt's documented command lines (Documentation/subcommands/*.md), run as its
//! users typed them: boolean options with values, options before the subcommand, `rkt app
//! sandbox`, and the error texts and exit codes scripts match.

use super::{PodTest, check, wait_for};
use crate::{Ctx, TestResult};

pub(crate) const TESTS: &[(&str, super::Test)] = &[
    (
        "the_originals_documented_command_lines_work",
        the_originals_documented_command_lines_work,
    ),
    (
        "app_sandbox_runs_an_empty_pod_for_apps",
        app_sandbox_runs_an_empty_pod_for_apps,
    ),
];

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// run.md's `rkt run --no-overlay=true --insecure-options=image IMAGE`, a run option before
/// the subcommand (as cobra read it), gc.md's `rkt gc --mark-only`, rm.md's error for an
/// unknown UUID, cat-manifest.md's `--pretty-print=false`, image.md's render and extract.
fn the_originals_documented_command_lines_work(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let uuid_file = t.uuid_file();
    let image = t.image("inspect-exit7");
    let out = t.rkt(&[
        "run",
        "--no-overlay=true",
        "--insecure-options=image",
        "--mds-register=false",
        "--uuid-file-save",
        &uuid_file,
        &image,
    ])?;
    check(out.status.code() == Some(7), || {
        format!(
            "rkt run --no-overlay=true exited {}: {}",
            out.status,
            stderr(&out)
        )
    })?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    // A run option before `run`, with its value after `=`.
    let out = t.rkt(&["--inherit-env=true", "run", "--net=none", &image])?;
    check(out.status.code() == Some(7), || {
        format!(
            "rkt --inherit-env=true run exited {}: {}",
            out.status,
            stderr(&out)
        )
    })?;
    let manifest = t.ok(&["cat-manifest", "--pretty-print=false", &uuid])?;
    check(
        manifest.trim().lines().count() == 1 && manifest.contains("\"acKind\":\"PodManifest\""),
        || format!("cat-manifest --pretty-print=false: {manifest}"),
    )?;
    let pretty = t.ok(&["cat-manifest", &uuid])?;
    check(pretty.lines().count() > 1, || {
        format!("cat-manifest is not indented: {pretty}")
    })?;
    t.ok(&["gc", "--mark-only=true"])?;
    let status = t.ok(&["status", &uuid])?;
    check(status.contains("state=exited"), || {
        format!("after gc --mark-only: {status}")
    })?;
    // rm.md / rkt_rm_test.go: an unknown UUID.
    let unknown = "0f746094-3438-42bc-ab37-3cf85f132e60";
    let out = t.rkt(&["rm", unknown])?;
    let err = stderr(&out);
    check(
        out.status.code() == Some(254)
            && err.contains(&format!("no matches found for \"{unknown}\"")),
        || format!("rkt rm of an unknown pod: {} {err}", out.status),
    )?;
    let out = t.rkt(&["gc", "--mark-only=maybe"])?;
    check(out.status.code() == Some(254), || {
        format!("gc --mark-only=maybe: {} {}", out.status, stderr(&out))
    })?;
    // image.md: render writes rootfs/ and manifest; --rootfs-only the tree alone.
    let id = t.ok(&["fetch", &image])?;
    let rendered = format!("{}/rendered", t.dir);
    t.ok(&["image", "render", id.trim(), &rendered])?;
    let only = format!("{}/rootfs-only", t.dir);
    t.ok(&["image", "render", "--rootfs-only=true", id.trim(), &only])?;
    let seen = ctx.systemd.run(&[
        "test",
        "-f",
        &format!("{rendered}/manifest"),
        "-a",
        "-d",
        &format!("{rendered}/rootfs"),
        "-a",
        "!",
        "-e",
        &format!("{only}/manifest"),
    ])?;
    check(seen.status.success(), || {
        "image render: want DIR/rootfs and DIR/manifest, and no manifest with --rootfs-only".into()
    })?;
    // config.md: the effective configuration, in the original's shape.
    let config = t.ok(&["config"])?;
    check(
        config.contains("\"stage0\"") && config.contains("\"rktKind\": \"paths\""),
        || format!("rkt config: {config}"),
    )?;
    t.ok(&["gc", "--grace-period=0s"])?;
    Ok(())
}

/// app.md's `rkt app sandbox`, then `rkt app add` and `rkt app start` into it, as rktlet
/// drove the original; `rkt stop` ends it.
fn app_sandbox_runs_an_empty_pod_for_apps(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let uuid_file = t.uuid_file();
    let mut child = t
        .ctx
        .systemd
        .command(&t.rkt)
        .args([
            "--dir",
            &t.dir,
            "--insecure-options=image",
            "app",
            "sandbox",
        ])
        .args(["--uuid-file-save", &uuid_file, "--hostname=sandbox"])
        .args([
            "--user-annotation=io.kubernetes.pod.name=web",
            "--user-label=tier=front",
        ])
        .spawn()
        .map_err(|e| format!("starting rkt app sandbox: {e}"))?;
    let result = (|| {
        check(wait_for(30, || t.read_uuid().is_some()), || {
            "no UUID saved".into()
        })?;
        let uuid = t.read_uuid().unwrap_or_default();
        let machine = format!("rkt-{uuid}");
        let status = || t.ok(&["status", &uuid]).unwrap_or_else(|e| e);
        check(
            wait_for(30, || {
                let s = status();
                s.contains("state=running") && s.contains("pid=")
            }),
            || format!("the sandbox never ran: {}", status()),
        )?;
        let manifest = t.ok(&["cat-manifest", &uuid])?;
        check(
            manifest.contains("\"io.kubernetes.pod.name\": \"web\"")
                && manifest.contains("\"tier\": \"front\""),
            || format!("the sandbox's manifest lacks its annotation and label: {manifest}"),
        )?;
        t.ok(&[
            "app",
            "add",
            &uuid,
            &t.image("inspect"),
            "--name=first",
            "--",
            "--print-msg",
            "hello-from-app-sandbox",
        ])?;
        t.ok(&["app", "start", &uuid, "--app=first"])?;
        check(
            wait_for(30, || {
                t.journal(&["-M", &machine, "-t", "first"])
                    .contains("hello-from-app-sandbox")
            }),
            || "no output of the app added to the sandbox".into(),
        )?;
        // app.md's `rkt app exec` and enter.md's `rkt enter`, the command given without `--`.
        t.ok(&[
            "app",
            "add",
            &uuid,
            &t.image("inspect-sleep"),
            "--name=sleeper",
        ])?;
        t.ok(&["app", "start", &uuid, "--app=sleeper"])?;
        check(
            wait_for(30, || {
                t.journal(&["-M", &machine, "-t", "sleeper"])
                    .contains("started")
            }),
            || "the sleeper app never started".into(),
        )?;
        let exec = t.ok(&[
            "app",
            "exec",
            "--app=sleeper",
            &uuid,
            "/inspect",
            "--print-msg",
            "from-app-exec",
        ])?;
        let entered = t.ok(&[
            "enter",
            "--app=sleeper",
            &uuid,
            "/inspect",
            "--print-msg",
            "from-enter",
        ])?;
        check(
            exec.contains("from-app-exec") && entered.contains("from-enter"),
            || format!("rkt app exec printed {exec:?}, rkt enter {entered:?}"),
        )?;
        t.ok(&["stop", &uuid])?;
        check(
            wait_for(30, || matches!(child.try_wait(), Ok(Some(_)))),
            || "rkt app sandbox did not return after rkt stop".into(),
        )?;
        t.gc_leaves_nothing(&uuid)
    })();
    if result.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
    result
}
