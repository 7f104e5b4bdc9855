//! Volumes, mounts, event handlers and hand-written pod manifests, proven from inside the
//! apps (what they read and write) and from the host (files, mounts left).

use super::{PodTest, Test, app_lines, check, last_value, run_ok};
use crate::{Ctx, TestResult};

pub(crate) const TESTS: &[(&str, Test)] = &[
    (
        "volumes_host_read_written_and_read_only",
        host_volumes_are_read_written_and_read_only,
    ),
    (
        "volumes_empty_shared_by_two_apps",
        an_empty_volume_is_shared_by_two_apps,
    ),
    (
        "volumes_bad_input_stops_before_the_pod",
        bad_volumes_stop_before_the_pod,
    ),
    (
        "volumes_event_handlers_and_mount_points",
        event_handlers_run_around_the_app,
    ),
    (
        "volumes_image_symlink_cannot_aim_at_the_host",
        an_image_symlink_cannot_aim_a_mount_at_the_host,
    ),
    (
        "volumes_pod_manifest_runs_a_hand_written_pod",
        pod_manifest_runs_a_hand_written_pod,
    ),
    (
        "volumes_unmounted_by_gc_after_a_kill",
        gc_unmounts_the_volumes_of_a_killed_pod,
    ),
];

fn sh(t: &PodTest, script: &str) -> Result<String, String> {
    t.ctx.systemd.ok(&["sh", "-c", script])
}

/// A host volume's file is read by the app and what the app writes shows on the host, at a
/// target the image does not have (made in its overlay), though the app's root is read-only;
/// a read-only volume refuses writes with EROFS, even to root, and so does a mount below its
/// source (host volumes are recursive: the whole tree is read-only, not just its top), seen by
/// a second app whose own root is writable.
fn host_volumes_are_read_written_and_read_only(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let (rw, ro) = (format!("{}/vol-rw", t.dir), format!("{}/vol-ro", t.dir));
    sh(
        &t,
        &format!(
            "mkdir -p {rw} {ro}/sub && echo from the host > {rw}/in && echo read only > {ro}/in \
             && mount -t tmpfs tmpfs {ro}/sub && echo below > {ro}/sub/in"
        ),
    )?;
    let result = run_host_volumes(&t, &rw, &ro);
    let _ = sh(&t, &format!("umount {ro}/sub"));
    t.gc_leaves_nothing(&result?)
}

/// Runs the pod and checks what its app saw; returns the pod's UUID.
fn run_host_volumes(t: &PodTest, rw: &str, ro: &str) -> Result<String, String> {
    let image = t.image("inspect");
    let uuid_file = t.uuid_file();
    run_ok(
        t,
        &[
            "run",
            "--uuid-file-save",
            &uuid_file,
            &format!("--volume=rw,kind=host,source={rw}"),
            "--volume",
            &format!("ro,kind=host,source={ro},readOnly=true"),
            &image,
            "--name=vol-host",
            // A read-only root keeps writable volumes writable.
            "--readonly-rootfs",
            "--mount=volume=rw,target=/mnt/rw",
            "--mount",
            "volume=ro,target=/mnt/ro",
            "--",
            "--read-file",
            "/mnt/rw/in",
            "--write-file",
            "/mnt/rw/out",
            "from the app",
            "--read-file",
            "/mnt/ro/in",
            "--try-write",
            "/mnt/ro/new",
            "--try-write",
            "/marker",
            "---",
            // Its root is writable: only the volume's own mounts can refuse the writes.
            &image,
            "--name=vol-ro",
            "--mount",
            "volume=ro,target=/mnt/ro",
            "--",
            "--read-file",
            "/mnt/ro/sub/in",
            "--try-write",
            "/mnt/ro/new",
            "--try-write",
            "/mnt/ro/sub/new",
            "--try-write",
            "/marker",
            "---",
        ],
    )?;
    for (app, key, want) in [
        ("vol-host", "file:/mnt/rw/in", "from the host"),
        ("vol-host", "file:/mnt/ro/in", "read only"),
        // EROFS
        ("vol-host", "write:/mnt/ro/new", "errno:30"),
        ("vol-host", "write:/marker", "errno:30"),
        ("vol-ro", "file:/mnt/ro/sub/in", "below"),
        ("vol-ro", "write:/marker", "ok"),
        ("vol-ro", "write:/mnt/ro/new", "errno:30"),
        ("vol-ro", "write:/mnt/ro/sub/new", "errno:30"),
    ] {
        let lines = app_lines(t, app);
        let got = last_value(&lines, key);
        check(got.as_deref() == Some(want), || {
            format!("{app}: {key}={got:?}, want {want:?}\n{}", lines.join("\n"))
        })?;
    }
    let out = sh(t, &format!("cat {rw}/out"))?;
    check(out == "from the app", || format!("host sees {out:?}"))?;
    for written in [format!("{ro}/new"), format!("{ro}/sub/new")] {
        let missing = t.ctx.systemd.run(&["test", "-e", &written])?;
        check(!missing.status.success(), || {
            format!("the read-only volume was written: {written}")
        })?;
    }
    t.read_uuid().ok_or_else(|| "no UUID saved".into())
}

/// One empty volume mounted by two apps: what one writes the other reads; its directory has
/// the mode and owner asked for.
fn an_empty_volume_is_shared_by_two_apps(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let (inspect, busybox) = (t.image("inspect"), t.image("busybox"));
    let uuid_file = t.uuid_file();
    // The reader waits (bounded) for the writer's file.
    let reader = "i=0; while [ ! -f /shared/note ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; \
                  echo note=$(cat /shared/note); echo perms=$(ls -lnd /shared | sed -E 's/^([^ ]+) +[^ ]+ +([^ ]+) +([^ ]+).*/\\1 \\2 \\3/')";
    run_ok(
        &t,
        &[
            "run",
            "--uuid-file-save",
            &uuid_file,
            "--volume=shared,kind=empty,mode=0770,uid=1000,gid=1000",
            // Before the first image: for every app.
            "--mount=volume=shared,target=/shared",
            &inspect,
            "--name=vol-writer",
            "--",
            "--write-file",
            "/shared/note",
            "written by vol-writer",
            "---",
            &busybox,
            "--name=vol-reader",
            "--",
            "-c",
            reader,
            "---",
        ],
    )?;
    let lines = app_lines(&t, "vol-reader");
    let note = last_value(&lines, "note");
    check(note.as_deref() == Some("written by vol-writer"), || {
        format!("reader saw note={note:?}\n{}", lines.join("\n"))
    })?;
    let perms = last_value(&lines, "perms");
    check(perms.as_deref() == Some("drwxrwx--- 1000 1000"), || {
        format!("reader saw perms={perms:?}\n{}", lines.join("\n"))
    })?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    t.gc_leaves_nothing(&uuid)
}

/// Bad volumes and mounts: one line, exit 254, no pod made.
fn bad_volumes_stop_before_the_pod(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let image = t.image("inspect");
    let missing = format!("{}/no-such-dir", t.dir);
    let (a, b) = (format!("{}/a", t.dir), format!("{}/b", t.dir));
    sh(&t, &format!("mkdir {a} && ln -s {a} {b}"))?;
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec![
                format!("--volume=v,kind=host,source={missing}"),
                image.clone(),
                "--mount=volume=v,target=/v".into(),
            ],
            format!("volume v: its source {missing} does not exist"),
        ),
        (
            vec![image.clone(), "--mount=volume=nope,target=/v".into()],
            "app inspect: no volume named \"nope\"".into(),
        ),
        (
            vec![
                "--volume=v,kind=empty".into(),
                "--volume=v,kind=empty".into(),
                image.clone(),
            ],
            "two volumes are named \"v\"".into(),
        ),
        (
            vec![
                "--volume=v,kind=empty".into(),
                image.clone(),
                "--mount=volume=v,target=/x".into(),
                "--mount=volume=v,target=/x/y".into(),
            ],
            "mount targets /x and /x/y overlap".into(),
        ),
        (
            vec![format!("--volume=v,kind=host,source={b}"), image.clone()],
            "goes through a symlink".into(),
        ),
        (
            vec!["--volume=v,kind=nfs".into(), image.clone()],
            "neither host nor empty".into(),
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["run"];
        all.extend(args.iter().map(String::as_str));
        let out = t.rkt(&all)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        check(
            out.status.code() == Some(254) && stderr.contains(&want) && stderr.lines().count() == 1,
            || {
                format!(
                    "rkt {args:?} exited {}: {stderr:?}, want {want:?}",
                    out.status
                )
            },
        )?;
    }
    let pods = t.ok(&["list", "--no-legend"])?;
    check(pods.trim().is_empty(), || format!("pods were made: {pods}"))?;
    t.ctx.systemd.ok(&["rm", "-rf", &t.dir]).map(|_| ())
}

/// The image's pre-start handler runs and ends before the app (which reads its file), its
/// post-stop handler after it (its file is in the app's root once the pod is done); the
/// image's mount point /data is filled by the volume named after it.
fn event_handlers_run_around_the_app(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let data = format!("{}/data", t.dir);
    sh(
        &t,
        &format!("mkdir {data} && echo on the data volume > {data}/in"),
    )?;
    let image = t.image("inspect-volumes");
    let uuid_file = t.uuid_file();
    run_ok(
        &t,
        &[
            "run",
            "--uuid-file-save",
            &uuid_file,
            &format!("--volume=data,kind=host,source={data}"),
            &image,
            "--name=vol-hooks",
            "--",
            "--read-file",
            "/prestart",
            "--read-file",
            "/data/in",
            "---",
        ],
    )?;
    let lines = app_lines(&t, "vol-hooks");
    for (key, want) in [
        ("file:/prestart", "from pre-start"),
        ("file:/data/in", "on the data volume"),
    ] {
        let got = last_value(&lines, key);
        check(got.as_deref() == Some(want), || {
            format!("{key}={got:?}, want {want:?}\n{}", lines.join("\n"))
        })?;
    }
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    let upper = format!("{}/pods/run/{uuid}/overlay/vol-hooks/upper", t.dir);
    let post = sh(&t, &format!("cat {upper}/poststop"))?;
    check(post == "from post-stop", || {
        format!("post-stop wrote {post:?}")
    })?;
    // Without a volume for /data: an empty one is made for it, with a warning.
    let out = t.rkt(&["run", &image, "--name=vol-implicit"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(
        out.status.success() && stderr.contains("made empty volume \"vol-implicit-data\""),
        || format!("run without a data volume exited {}: {stderr}", out.status),
    )?;
    t.gc_leaves_nothing(&uuid)
}

/// An image whose /evil is a symlink to /tmp: a mount at /evil/... lands in the app's own
/// /tmp, never in the host's.
fn an_image_symlink_cannot_aim_a_mount_at_the_host(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let src = format!("{}/src", t.dir);
    sh(
        &t,
        &format!("mkdir {src} && echo through the link > {src}/in"),
    )?;
    let name = format!("rkt-hostile-{}", t.dir.rsplit('.').next().unwrap_or("x"));
    let image = t.image("inspect-hostile");
    let uuid_file = t.uuid_file();
    run_ok(
        &t,
        &[
            "run",
            "--uuid-file-save",
            &uuid_file,
            &format!("--volume=v,kind=host,source={src}"),
            &image,
            "--name=vol-hostile",
            &format!("--mount=volume=v,target=/evil/{name}"),
            "--",
            "--read-file",
            &format!("/tmp/{name}/in"),
            "---",
        ],
    )?;
    let lines = app_lines(&t, "vol-hostile");
    let got = last_value(&lines, &format!("file:/tmp/{name}/in"));
    check(got.as_deref() == Some("through the link"), || {
        format!(
            "the app did not see the volume at its /tmp\n{}",
            lines.join("\n")
        )
    })?;
    let host = t
        .ctx
        .systemd
        .run(&["test", "-e", &format!("/tmp/{name}")])?;
    check(!host.status.success(), || {
        format!("/tmp/{name} was made on the host")
    })?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    t.gc_leaves_nothing(&uuid)
}

/// `--pod-manifest`: a pod written by hand (an app replaced in the manifest, an image named
/// by name and one by ID, a host volume mounted by both, an annotation) runs as written; with
/// images on the command line it is refused.
fn pod_manifest_runs_a_hand_written_pod(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let vol = format!("{}/pm", t.dir);
    sh(&t, &format!("mkdir {vol}"))?;
    t.ok(&["fetch", &t.image("inspect")])?;
    let hooks_id = t
        .ok(&["fetch", &t.image("inspect-volumes")])?
        .trim()
        .to_owned();
    let manifest = format!(
        r#"{{"acVersion": "0.8.11", "acKind": "PodManifest",
  "apps": [
    {{"name": "pm-writer", "image": {{"name": "example.com/inspect"}},
      "app": {{"exec": ["/inspect", "--write-file", "/v/out", "from the pod manifest", "--print-env"],
               "user": "0", "group": "0",
               "environment": [{{"name": "FROM", "value": "manifest"}}]}},
      "mounts": [{{"volume": "v", "path": "/v"}}]}},
    {{"name": "pm-hooks", "image": {{"id": "{hooks_id}"}},
      "mounts": [{{"volume": "v", "path": "/data"}}]}}
  ],
  "volumes": [{{"name": "v", "kind": "host", "source": "{vol}"}}],
  "annotations": [{{"name": "owner", "value": "systest"}}]
}}"#
    );
    let file = format!("{}/pod.json", t.dir);
    sh(&t, &format!("cat > {file} <<'EOF'\n{manifest}\nEOF"))?;
    let uuid_file = t.uuid_file();
    run_ok(
        &t,
        &[
            "run",
            "--pod-manifest",
            &file,
            "--uuid-file-save",
            &uuid_file,
        ],
    )?;
    let writer = app_lines(&t, "pm-writer");
    check(
        last_value(&writer, "env:FROM").as_deref() == Some("manifest"),
        || format!("pm-writer:\n{}", writer.join("\n")),
    )?;
    let out = sh(&t, &format!("cat {vol}/out"))?;
    check(out == "from the pod manifest", || {
        format!("the host sees {out:?}")
    })?;
    let hooks = app_lines(&t, "pm-hooks");
    check(
        last_value(&hooks, "file:/prestart").as_deref() == Some("from pre-start"),
        || format!("pm-hooks:\n{}", hooks.join("\n")),
    )?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    let shown = t.ok(&["cat-manifest", &uuid])?;
    check(
        shown.contains("\"owner\"") && shown.contains(&hooks_id),
        || format!("cat-manifest: {shown}"),
    )?;
    let out = t.rkt(&["run", "--pod-manifest", &file, &t.image("inspect")])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(
        out.status.code() == Some(254)
            && stderr.contains("images cannot be given with --pod-manifest")
            && stderr.lines().count() == 1,
        || {
            format!(
                "run --pod-manifest with an image exited {}: {stderr:?}",
                out.status
            )
        },
    )?;
    t.gc_leaves_nothing(&uuid)
}

/// A pod killed with its volumes mounted (recursive bind of a directory with a mount of its
/// own): `rkt gc` unmounts them all and leaves the host's files alone.
fn gc_unmounts_the_volumes_of_a_killed_pod(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let src = format!("{}/src", t.dir);
    sh(
        &t,
        &format!(
            "mkdir -p {src}/sub && echo keep me > {src}/file && mount -t tmpfs tmpfs {src}/sub && echo nested > {src}/sub/file"
        ),
    )?;
    let (mut child, uuid, _machine) = t.spawn_sleeper_with(&[
        &format!("--volume=v,kind=host,source={src}"),
        "--volume=e,kind=empty",
        "--mount=volume=v,target=/v",
        "--mount=volume=e,target=/e",
    ])?;
    let pod_mounts = || {
        t.ctx
            .systemd
            .ok(&["findmnt", "--list", "--noheadings", "-o", "TARGET"])
            .map(|m| {
                m.lines()
                    .filter(|l| l.contains(&uuid))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let result = (|| {
        let mounts = pod_mounts();
        for want in ["/rootfs/v", "/rootfs/v/sub", "/rootfs/e"] {
            check(mounts.iter().any(|m| m.ends_with(want)), || {
                format!("no mount at …{want} while the pod runs: {mounts:?}")
            })?;
        }
        t.kill_stage1(&mut child, &uuid)?;
        check(!pod_mounts().is_empty(), || {
            "the killed stage1 unmounted its volumes: this test proves nothing".into()
        })?;
        t.ok(&["gc", "--grace-period=0s"])?;
        let left = pod_mounts();
        check(left.is_empty(), || {
            format!("mounts left after gc: {left:?}")
        })?;
        let kept = sh(&t, &format!("cat {src}/file {src}/sub/file"))?;
        check(kept == "keep me\nnested\n", || {
            format!("the host's files changed: {kept:?}")
        })
    })();
    let _ = child.kill();
    let _ = child.wait();
    let _ = sh(&t, &format!("umount {src}/sub"));
    result?;
    t.gc_leaves_nothing(&uuid)
}
