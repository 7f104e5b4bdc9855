//! Mutable pods: `rkt app add/start/stop/rm/list/status` on a running pod, each app a
//! transient unit of the pod's systemd.

use super::{PodTest, check, wait_for};
use crate::{Ctx, TestResult};

pub(crate) const TESTS: &[(&str, super::Test)] = &[
    (
        "apps_added_to_a_running_pod_start_stop_and_go",
        apps_added_to_a_running_pod_start_stop_and_go,
    ),
    (
        "an_empty_mutable_pod_waits_for_apps",
        an_empty_mutable_pod_waits_for_apps,
    ),
    (
        "app_status_in_a_pod_that_is_not_mutable",
        app_status_in_a_pod_that_is_not_mutable,
    ),
    (
        "app_commands_refuse_what_they_cannot_do",
        app_commands_refuse_what_they_cannot_do,
    ),
    (
        "an_app_added_with_mount_uses_the_pods_volume",
        an_app_added_with_mount_uses_the_pods_volume,
    ),
];

/// The pod's mount table (as the pod's PID 1 sees it).
fn pod_mounts(t: &PodTest, uuid: &str) -> Result<String, String> {
    let pid = t
        .ctx
        .systemd
        .ok(&["cat", &format!("{}/pods/run/{uuid}/pid", t.dir)])?;
    t.ctx
        .systemd
        .ok(&["cat", &format!("/proc/{}/mountinfo", pid.trim())])
}

fn host_mounts(t: &PodTest) -> Result<String, String> {
    t.ctx
        .systemd
        .ok(&["findmnt", "--list", "--noheadings", "-o", "TARGET"])
}

/// Nothing of the removed app `app` (its `what`: root, volume) is mounted in the pod or on the
/// host.
fn check_unmounted(t: &PodTest, uuid: &str, app: &str, what: &str) -> TestResult {
    let in_pod = pod_mounts(t, uuid)?;
    let on_host = host_mounts(t)?;
    let path = format!("/opt/stage2/{app}/");
    check(!in_pod.contains(&path) && !on_host.contains(&path), || {
        format!("a removed app's {what} is still mounted: pod {in_pod}\nhost {on_host}")
    })
}

/// `rkt stop` of the pod, and its `rkt run` (`child`) returns.
fn stop_and_wait(t: &PodTest, uuid: &str, child: &mut std::process::Child) -> TestResult {
    t.ok(&["stop", uuid])?;
    check(
        wait_for(30, || matches!(child.try_wait(), Ok(Some(_)))),
        || "rkt run did not return after rkt stop".into(),
    )
}

/// A rkt command that must fail as rkt's own failures do: exit 254, one line on stderr that
/// says `want`.
fn refused(t: &PodTest, args: &[&str], want: &str) -> TestResult {
    let out = t.rkt(args)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(
        out.status.code() == Some(254)
            && stderr.trim().lines().count() == 1
            && stderr.contains(want),
        || {
            format!(
                "rkt {args:?}: want exit 254 and one line with {want:?}, got {} {stderr:?}",
                out.status
            )
        },
    )
}

/// In a running mutable pod: an app added (not started: its root is mounted where the pod
/// sees it), started (its output in the pod's journal, its exit code in `app status`), a
/// second app added while the first runs, stopped (SIGTERM → 143) and removed (gone from
/// `app list` and the manifest, its root unmounted in the pod and on the host). The pod
/// stays up when its apps end; `rkt stop` records the added apps' exits; gc leaves nothing.
fn apps_added_to_a_running_pod_start_stop_and_go(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let (mut child, uuid, machine) = t.spawn_sleeper_with(&["--mutable"])?;
    let result = (|| {
        let status = |app: &str| {
            t.ok(&["app", "status", &uuid, &format!("--app={app}")])
                .unwrap_or_else(|e| e)
        };
        let added = t.ok(&[
            "app",
            "add",
            &uuid,
            &t.image("inspect"),
            "--name=probe",
            "--set-env=GREETING=from-app-add",
            "--",
            "--print-msg",
            "added-app-ran",
            "--print-env",
            "--exit-code",
            "3",
        ])?;
        check(added.trim() == "probe", || {
            format!("app add printed {added:?}")
        })?;
        check(status("probe").contains("state=created"), || {
            format!("a new app is created, not started: {}", status("probe"))
        })?;
        let mounts = pod_mounts(&t, &uuid)?;
        check(mounts.contains(" /opt/stage2/probe/rootfs "), || {
            format!("the added app's root is not mounted in the pod: {mounts}")
        })?;

        t.ok(&["app", "start", &uuid, "--app=probe"])?;
        let journal = || t.journal(&["-M", &machine, "-t", "probe"]);
        check(wait_for(30, || journal().contains("added-app-ran")), || {
            format!(
                "no output of the added app in the pod's journal: {}",
                journal()
            )
        })?;
        check(journal().contains("GREETING=from-app-add"), || {
            format!("the added app's --set-env did not reach it: {}", journal())
        })?;
        check(
            wait_for(30, || status("probe").contains("state=exited")),
            || {
                format!(
                    "the added app never exited: {}\n{}",
                    status("probe"),
                    t.journal(&["-M", &machine, "-o", "short", "-n", "40"])
                )
            },
        )?;
        let probe = status("probe");
        check(
            probe.contains("exit-code=3") && probe.contains("finished="),
            || format!("app status after its exit (want exit-code=3): {probe}"),
        )?;
        let json = t.ok(&["app", "status", &uuid, "--app=probe", "--format=json"])?;
        let json: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| format!("app status json {json:?}: {e}"))?;
        check(json["state"] == "exited" && json["exitCode"] == 3, || {
            format!("app status --format=json: {json}")
        })?;
        // The pod stays up when an app ends, and its first app still runs.
        check(matches!(child.try_wait(), Ok(None)), || {
            "a mutable pod ended when an app exited".into()
        })?;

        // A second app while the first one runs.
        t.ok(&[
            "app",
            "add",
            &uuid,
            &t.image("inspect-sleep"),
            "--name=sleeper2",
        ])?;
        t.ok(&["app", "start", &uuid, "--app=sleeper2"])?;
        check(
            wait_for(30, || {
                t.journal(&["-M", &machine, "-t", "sleeper2"])
                    .contains("started")
            }),
            || "the second added app never started".into(),
        )?;
        let running = status("sleeper2");
        check(
            running.contains("state=running")
                && running.contains("pid=")
                && running.contains("started="),
            || format!("app status of a running app: {running}"),
        )?;
        let list = t.ok(&["app", "list", &uuid, "--no-legend"])?;
        let states: Vec<(String, String)> = list
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                Some((words.next()?.to_owned(), words.next()?.to_owned()))
            })
            .collect();
        let want = [
            ("inspect-sleep", "running"),
            ("probe", "exited"),
            ("sleeper2", "running"),
        ]
        .map(|(a, s)| (a.to_owned(), s.to_owned()));
        check(states == want, || format!("app list: {list}"))?;

        // A running app cannot be removed, and the pod is left as it was.
        let before = t.ok(&["cat-manifest", &uuid])?;
        refused(&t, &["app", "rm", &uuid, "--app=sleeper2"], "stop it first")?;
        check(t.ok(&["cat-manifest", &uuid])? == before, || {
            "a refused app rm changed the manifest".into()
        })?;

        t.ok(&["app", "stop", &uuid, "--app=sleeper2"])?;
        let stopped = status("sleeper2");
        check(
            stopped.contains("state=exited") && stopped.contains("exit-code=143"),
            || format!("app status after app stop (want SIGTERM, 143): {stopped}"),
        )?;
        t.ok(&["app", "rm", &uuid, "--app=sleeper2"])?;
        let list = t.ok(&["app", "list", &uuid, "--no-legend"])?;
        check(!list.contains("sleeper2"), || {
            format!("a removed app is still listed: {list}")
        })?;
        check(
            !t.ok(&["cat-manifest", &uuid])?.contains("sleeper2"),
            || "a removed app is still in the manifest".into(),
        )?;
        check_unmounted(&t, &uuid, "sleeper2", "root")?;

        stop_and_wait(&t, &uuid, &mut child)?;
        let pod_status = t.ok(&["status", &uuid])?;
        check(
            pod_status.contains("state=exited")
                && pod_status.contains("app-probe=3")
                && pod_status.contains("app-inspect-sleep=143"),
            || format!("rkt status of the stopped pod (want the added app's 3): {pod_status}"),
        )?;
        t.gc_leaves_nothing(&uuid)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Unknown pod, pod not running, pod not mutable, app name taken, unknown app: one line,
/// exit 254, and the pod as it was.
fn app_commands_refuse_what_they_cannot_do(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let image = t.image("inspect");
    refused(
        &t,
        &["app", "add", "00000000-dead", &image],
        "no matches found for",
    )?;
    let prepared = t.ok(&["prepare", "--mutable", &image])?;
    let prepared = prepared.trim();
    refused(
        &t,
        &["app", "add", prepared, &image, "--name=other"],
        "needs a pod that is running",
    )?;
    t.ok(&["rm", prepared])?;

    let (mut child, uuid, _machine) = t.spawn_sleeper()?;
    let result: TestResult = (|| {
        let before = t.ok(&["cat-manifest", &uuid])?;
        refused(&t, &["app", "add", &uuid, &image], "is not mutable")?;
        refused(
            &t,
            &["app", "start", &uuid, "--app=inspect-sleep"],
            "is not mutable",
        )?;
        check(t.ok(&["cat-manifest", &uuid])? == before, || {
            "a refused app add changed the manifest".into()
        })?;
        stop_and_wait(&t, &uuid, &mut child)?;
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    result?;

    // The next pod's UUID goes to the same file.
    t.ctx.systemd.ok(&["rm", "-f", &t.uuid_file()])?;
    let (mut child, uuid, _machine) = t.spawn_sleeper_with(&["--mutable"])?;
    let result = (|| {
        let before = t.ok(&["cat-manifest", &uuid])?;
        refused(
            &t,
            &["app", "add", &uuid, &t.image("inspect-sleep")],
            "two apps would be named \"inspect-sleep\"",
        )?;
        refused(
            &t,
            &["app", "start", &uuid, "--app=nope"],
            "has no app \"nope\"",
        )?;
        refused(
            &t,
            &["app", "status", &uuid, "--app=nope"],
            "has no app \"nope\"",
        )?;
        refused(
            &t,
            &["app", "rm", &uuid, "--app=nope"],
            "has no app \"nope\"",
        )?;
        check(t.ok(&["cat-manifest", &uuid])? == before, || {
            "a refused app command changed the manifest".into()
        })?;
        let mounts = pod_mounts(&t, &uuid)?;
        check(mounts.matches("/opt/stage2/").count() == 1, || {
            format!("a refused app add left a mount in the pod: {mounts}")
        })?;
        stop_and_wait(&t, &uuid, &mut child)?;
        t.gc_leaves_nothing(&uuid)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// `rkt run --mutable` with no image (the original's `rkt app sandbox`): a pod with no app
/// that stays up until an app is added and started, and until `rkt stop`.
fn an_empty_mutable_pod_waits_for_apps(ctx: &Ctx) -> TestResult {
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
            "run",
            "--mutable",
        ])
        .args(["--uuid-file-save", &uuid_file])
        .spawn()
        .map_err(|e| format!("starting rkt run --mutable: {e}"))?;
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
            || format!("the empty pod never ran: {}", status()),
        )?;
        std::thread::sleep(std::time::Duration::from_secs(1));
        check(matches!(child.try_wait(), Ok(None)), || {
            format!("an empty mutable pod ended by itself: {}", status())
        })?;
        let list = t.ok(&["app", "list", &uuid, "--no-legend"])?;
        check(list.trim().is_empty(), || {
            format!("apps of an empty pod: {list}")
        })?;

        t.ok(&[
            "app",
            "add",
            &uuid,
            &t.image("inspect"),
            "--name=first",
            "--",
            "--print-msg",
            "hello-from-the-sandbox",
        ])?;
        t.ok(&["app", "start", &uuid, "--app=first"])?;
        check(
            wait_for(30, || {
                t.journal(&["-M", &machine, "-t", "first"])
                    .contains("hello-from-the-sandbox")
            }),
            || "no output of the app added to the empty pod".into(),
        )?;
        let app = || {
            t.ok(&["app", "status", &uuid, "--app=first"])
                .unwrap_or_else(|e| e)
        };
        check(
            wait_for(30, || {
                app().contains("state=exited") && app().contains("exit-code=0")
            }),
            || format!("app status: {}", app()),
        )?;
        stop_and_wait(&t, &uuid, &mut child)?;
        let code = child.try_wait().ok().flatten().and_then(|s| s.code());
        check(code == Some(0), || {
            format!("rkt run of the empty pod exited {code:?}, want 0 (its one app exited 0)")
        })?;
        check(status().contains("app-first=0"), || {
            format!("rkt status of the stopped pod: {}", status())
        })?;
        t.gc_leaves_nothing(&uuid)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// `rkt app list/status` read any running pod: an app that ended shows its exit code while
/// the other still runs.
fn app_status_in_a_pod_that_is_not_mutable(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let quick = t.image("inspect");
    let (mut child, uuid, _machine) =
        t.spawn_sleeper_with(&[&quick, "--name=quick", "--", "--exit-code", "4", "---"])?;
    let result = (|| {
        let app = || {
            t.ok(&["app", "status", &uuid, "--app=quick"])
                .unwrap_or_else(|e| e)
        };
        check(wait_for(30, || app().contains("state=exited")), || {
            format!("app status of the app that ended: {}", app())
        })?;
        check(app().contains("exit-code=4"), || {
            format!("app status of the app that exited 4: {}", app())
        })?;
        let list = t.ok(&["app", "list", &uuid, "--format=json"])?;
        let list: serde_json::Value =
            serde_json::from_str(&list).map_err(|e| format!("app list json {list:?}: {e}"))?;
        let sleeper = list
            .as_array()
            .and_then(|apps| apps.iter().find(|a| a["name"] == "inspect-sleep"));
        check(
            sleeper.is_some_and(|a| a["state"] == "running" && a["pid"].as_u64().is_some()),
            || format!("app list --format=json: {list}"),
        )?;
        stop_and_wait(&t, &uuid, &mut child)?;
        let code = child.try_wait().ok().flatten().and_then(|s| s.code());
        check(code == Some(4), || {
            format!("rkt run exited {code:?}, want 4")
        })?;
        t.gc_leaves_nothing(&uuid)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// `rkt app add --mount volume=NAME,target=PATH`: the added app sees the pod's host volume
/// (reads what the host put there, writes what the host then reads), also under
/// `--readonly-rootfs`; an unknown volume is refused with the pod left as it was; `app rm`
/// unmounts the volume with the app's root, in the pod and on the host.
fn an_app_added_with_mount_uses_the_pods_volume(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let shared = format!("{}/shared", t.dir);
    t.ctx.systemd.ok(&["mkdir", "-p", &shared])?;
    t.ctx
        .systemd
        .ok(&["sh", "-c", &format!("echo from-the-host > {shared}/seed")])?;
    let volume = format!("--volume=data,kind=host,source={shared}");
    let (mut child, uuid, machine) = t.spawn_sleeper_with(&["--mutable", &volume])?;
    let result = (|| {
        let image = t.image("inspect");
        let before = t.ok(&["cat-manifest", &uuid])?;
        refused(
            &t,
            &[
                "app",
                "add",
                &uuid,
                &image,
                "--name=lost",
                "--mount=volume=nope,target=/data",
            ],
            "nope",
        )?;
        check(t.ok(&["cat-manifest", &uuid])? == before, || {
            "a refused app add changed the manifest".into()
        })?;

        t.ok(&[
            "app",
            "add",
            &uuid,
            &image,
            "--name=writer",
            "--readonly-rootfs=true",
            "--mount=volume=data,target=/data",
            "--",
            "--read-file",
            "/data/seed",
            "--write-file",
            "/data/out",
            "from-the-added-app",
        ])?;
        let mounts = pod_mounts(&t, &uuid)?;
        check(mounts.contains(" /opt/stage2/writer/rootfs/data "), || {
            format!("the added app's volume is not mounted in the pod: {mounts}")
        })?;
        t.ok(&["app", "start", &uuid, "--app=writer"])?;
        let status = || {
            t.ok(&["app", "status", &uuid, "--app=writer"])
                .unwrap_or_else(|e| e)
        };
        check(wait_for(30, || status().contains("state=exited")), || {
            format!("the added app never exited: {}", status())
        })?;
        let journal = t.journal(&["-M", &machine, "-t", "writer"]);
        check(journal.contains("file:/data/seed=from-the-host"), || {
            format!("the added app did not read the volume: {journal}")
        })?;
        check(status().contains("exit-code=0"), || {
            format!("the added app failed: {}\n{journal}", status())
        })?;
        let written = t.ctx.systemd.ok(&["cat", &format!("{shared}/out")])?;
        check(written == "from-the-added-app", || {
            format!("the host reads {written:?} from the volume")
        })?;

        t.ok(&["app", "rm", &uuid, "--app=writer"])?;
        check_unmounted(&t, &uuid, "writer", "volume")?;
        stop_and_wait(&t, &uuid, &mut child)?;
        t.gc_leaves_nothing(&uuid)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}
