//! Pods on disk: prepare, the life cycle by rename and lock, rm and gc.

use std::fs;
use std::time::Duration;

use rkt_pod::{GcOptions, PodError, PodOptions, PodState, Pods};

use crate::aci::{AciBuilder, manifest_json};
use crate::support::Fixture;

fn setup() -> (Fixture, Pods, Vec<rkt_schema::ImageId>) {
    let fx = Fixture::new();
    let pods = Pods::open(&fx.data()).unwrap();
    let a = fx
        .store
        .import_file(&fx.input("a.aci", &AciBuilder::valid("example.com/alpha").gzip()));
    let b = fx
        .store
        .import_file(&fx.input("b.aci", &AciBuilder::valid("example.com/beta").gzip()));
    (fx, pods, vec![a.unwrap().info.id, b.unwrap().info.id])
}

fn gc_opts(grace: u64, expire: u64, mark_only: bool) -> GcOptions {
    GcOptions {
        grace_period: Duration::from_secs(grace),
        expire_prepared: Duration::from_secs(expire),
        mark_only,
    }
}

/// Every pod directory that exists, in any phase.
fn pod_dirs(fx: &Fixture) -> Vec<String> {
    let mut found = Vec::new();
    for phase in fs::read_dir(fx.data().join("pods")).unwrap() {
        for pod in fs::read_dir(phase.unwrap().path()).unwrap() {
            found.push(pod.unwrap().path().display().to_string());
        }
    }
    found
}

#[test]
fn prepare_writes_a_reified_manifest_and_the_pod_is_found_by_prefix() {
    let (fx, pods, ids) = setup();
    let pod = pods
        .prepare(&fx.store, &ids, &PodOptions::default())
        .unwrap();
    assert_eq!(pod.state, PodState::Prepared);
    let manifest = pod.manifest().unwrap();
    let apps: Vec<_> = manifest.apps.iter().map(|a| a.name.to_string()).collect();
    assert_eq!(apps, ["alpha", "beta"]);
    assert_eq!(manifest.apps[0].image.id.as_ref(), Some(&ids[0]));
    assert_eq!(pods.find(&pod.uuid[..6]).unwrap().uuid, pod.uuid);
    assert!(matches!(pods.find("zzzz"), Err(PodError::NotFound(_))));
    pods.prepare(&fx.store, &ids[..1], &PodOptions::default())
        .unwrap();
    assert_eq!(pods.list().unwrap().len(), 2);
    assert!(pod.created().is_some());
}

#[test]
fn a_failed_prepare_leaves_no_pod_behind() {
    let (fx, pods, ids) = setup();
    let dup = pods.prepare(
        &fx.store,
        &[ids[0].clone(), ids[0].clone()],
        &PodOptions::default(),
    );
    assert!(matches!(dup, Err(PodError::DuplicateApp { .. })), "{dup:?}");
    let no_app = AciBuilder::empty()
        .file(
            "manifest",
            manifest_json("example.com/lib", "1")
                .replace(
                    r#","app":{"exec":["/bin/true"],"user":"0","group":"0"}"#,
                    "",
                )
                .as_bytes(),
            0o644,
        )
        .dir("rootfs", 0o755);
    let lib = fx
        .store
        .import_file(&fx.input("lib.aci", &no_app.tar()))
        .unwrap()
        .info
        .id;
    let err = pods
        .prepare(&fx.store, &[lib], &PodOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("no app"), "{err}");
    assert!(pod_dirs(&fx).is_empty(), "left: {:?}", pod_dirs(&fx));
}

#[test]
fn running_pods_are_locked_and_cannot_be_removed_or_collected() {
    let (fx, pods, ids) = setup();
    let pod = pods
        .prepare(&fx.store, &ids, &PodOptions::default())
        .unwrap();
    let running = pods.take_for_run(&pod).unwrap();
    let seen = pods.find(&pod.uuid).unwrap();
    assert_eq!(seen.state, PodState::Running);
    assert!(matches!(
        pods.take_for_run(&seen),
        Err(PodError::WrongState { .. })
    ));
    assert!(matches!(
        pods.remove(&seen, &no_release),
        Err(PodError::Busy { .. })
    ));
    let report = pods.gc(gc_opts(0, 0, false), &no_release).unwrap();
    assert!(
        report.marked.is_empty() && report.removed.is_empty(),
        "{report:?}"
    );
    assert!(running.path.exists());

    // The holder dies: the kernel drops the lock and the pod is exited.
    drop(running);
    assert_eq!(pods.find(&pod.uuid).unwrap().state, PodState::Exited);
    let report = pods.gc(gc_opts(3600, 0, true), &no_release).unwrap();
    assert_eq!(report.marked, [pod.uuid.as_str()]);
    assert_eq!(pods.find(&pod.uuid).unwrap().state, PodState::ExitedGarbage);
    let report = pods.gc(gc_opts(3600, 0, false), &no_release).unwrap();
    assert!(report.removed.is_empty(), "kept during the grace period");
    let report = pods.gc(gc_opts(0, 0, false), &no_release).unwrap();
    assert_eq!(report.removed, [pod.uuid.as_str()]);
    assert!(pod_dirs(&fx).is_empty());
}

/// `rkt run` watches its pod from the hand-off until it has read the apps' exit statuses:
/// once stage1 is gone the pod is exited, yet neither gc nor rm may take it from the watcher;
/// when the watcher lets go (or dies), gc collects it as usual.
#[test]
fn a_watched_pod_outlives_its_stage1_until_the_watcher_lets_go() {
    let (fx, pods, ids) = setup();
    let pod = pods
        .prepare(&fx.store, &ids, &PodOptions::default())
        .unwrap();
    let watch = pods.watch(&pod).unwrap();
    let running = pods.take_for_run(&pod).unwrap();
    fs::write(running.path.join("status-read-later"), b"7").unwrap();
    drop(running);
    let exited = pods.find(&pod.uuid).unwrap();
    assert_eq!(exited.state, PodState::Exited);
    let report = pods.gc(gc_opts(0, 0, false), &no_release).unwrap();
    assert!(
        report.marked.is_empty() && report.removed.is_empty(),
        "{report:?}"
    );
    assert!(matches!(
        pods.remove(&exited, &no_release),
        Err(PodError::Busy { .. })
    ));
    assert!(exited.path.join("status-read-later").exists());
    // Watchers share: a second one does not wait for the first.
    let second = pods.watch(&exited).unwrap();
    drop((watch, second));
    let report = pods.gc(gc_opts(0, 0, false), &no_release).unwrap();
    assert_eq!(report.removed, [pod.uuid.as_str()]);
    assert!(pod_dirs(&fx).is_empty());
}

#[test]
fn gc_finishes_off_aborted_prepares_and_expired_prepared_pods_but_not_live_ones() {
    let (fx, pods, ids) = setup();
    // A prepare that crashed midway: still in prepare/, nobody holds it.
    let crashed = pods.create().unwrap();
    let crashed_uuid = crashed.uuid.clone();
    drop(crashed);
    assert_eq!(
        pods.find(&crashed_uuid).unwrap().state,
        PodState::AbortedPrepare
    );
    // A prepare in progress: left alone.
    let live = pods.create().unwrap();
    assert_eq!(pods.find(&live.uuid).unwrap().state, PodState::Preparing);
    let prepared = pods
        .prepare(&fx.store, &ids, &PodOptions::default())
        .unwrap();

    let report = pods.gc(gc_opts(1800, 3600, false), &no_release).unwrap();
    assert_eq!(report.removed, [crashed_uuid.as_str()]);
    assert_eq!(pods.find(&prepared.uuid).unwrap().state, PodState::Prepared);
    assert_eq!(pods.find(&live.uuid).unwrap().state, PodState::Preparing);
    let report = pods.gc(gc_opts(1800, 0, false), &no_release).unwrap();
    assert_eq!(
        report.removed,
        [prepared.uuid.as_str()],
        "expired prepared pod"
    );
    assert!(pods.find(&live.uuid).is_ok());
}

#[test]
fn rm_and_gc_undo_mounts_inside_the_pod() {
    let (fx, pods, ids) = setup();
    let pod = pods
        .prepare(&fx.store, &ids, &PodOptions::default())
        .unwrap();
    let target = pod.path.join("stage1/rootfs");
    fs::create_dir_all(&target).unwrap();
    rustix::mount::mount(
        "tmpfs",
        &target,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .unwrap();
    fs::write(target.join("x"), b"x").unwrap();
    pods.remove(&pod, &no_release).unwrap();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(pod.uuid.as_str()),
        "a mount of the pod is left: {mounts}"
    );
    assert!(pod_dirs(&fx).is_empty());
}

#[test]
fn a_hand_written_pod_manifest_is_reified_from_the_store() {
    let (fx, pods, ids) = setup();
    let json = format!(
        r#"{{"acVersion": "0.8.11", "acKind": "PodManifest",
            "apps": [
              {{"name": "first", "image": {{"name": "example.com/alpha"}},
                "mounts": [{{"volume": "shared", "path": "/shared"}}]}},
              {{"name": "second", "image": {{"id": "{}"}},
                "annotations": [{{"name": "role", "value": "reader"}}]}}
            ],
            "volumes": [{{"name": "shared", "kind": "empty", "mode": "0700"}}],
            "annotations": [{{"name": "owner", "value": "ops"}}]}}"#,
        ids[1]
    );
    let manifest = rkt_schema::PodManifest::from_json_template(json.as_bytes()).unwrap();
    let pod = pods
        .prepare_manifest(&fx.store, manifest, &PodOptions::default())
        .unwrap();
    let m = pod.manifest().unwrap();
    assert_eq!(m.apps[0].image.id.as_ref(), Some(&ids[0]));
    assert_eq!(m.apps[1].image.id.as_ref(), Some(&ids[1]));
    assert_eq!(
        m.apps[1]
            .image
            .name
            .as_ref()
            .map(|n| n.to_string())
            .as_deref(),
        Some("example.com/beta")
    );
    assert_eq!(m.annotation("owner"), Some("ops"));
    assert_eq!(m.apps[0].mounts[0].path, "/shared");
    assert_eq!(m.volumes[0].mode_bits(), 0o700);

    // An image that is not stored, or a mount of no volume: refused, no pod left behind.
    let before = pod_dirs(&fx);
    for (json, want) in [
        (
            r#"{"acVersion": "0.8.11", "acKind": "PodManifest",
                "apps": [{"name": "x", "image": {"name": "example.com/missing"}}]}"#,
            "fetch its image first",
        ),
        (
            r#"{"acVersion": "0.8.11", "acKind": "PodManifest",
                "apps": [{"name": "x", "image": {"name": "example.com/alpha"},
                          "mounts": [{"volume": "nope", "path": "/x"}]}]}"#,
            "no volume named \"nope\"",
        ),
    ] {
        let manifest = rkt_schema::PodManifest::from_json_template(json.as_bytes()).unwrap();
        let e = pods
            .prepare_manifest(&fx.store, manifest, &PodOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}");
    }
    assert_eq!(pod_dirs(&fx), before);
}

#[test]
fn bad_volumes_leave_no_pod_behind() {
    let (fx, pods, ids) = setup();
    let missing = rkt_pod::parse_volume(&format!(
        "v,kind=host,source={}",
        fx.data().join("no-such-dir").display()
    ))
    .unwrap();
    let apps = vec![(ids[0].clone(), rkt_pod::AppOverrides::default())];
    let e = pods
        .prepare_pod(
            &fx.store,
            &apps,
            &rkt_pod::PodLevel {
                volumes: vec![missing],
                ..Default::default()
            },
            &PodOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(e, PodError::Volume(_)), "{e:?}");
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(pod_dirs(&fx).is_empty(), "{:?}", pod_dirs(&fx));
}

/// `rkt image rm` racing `rkt prepare`: while a pod is being made from stored images
/// (`Store::hold_images`), a removal waits; it then decides seeing the new pod's manifest and
/// keeps the image. (Before, it could check for users, find none, and remove the image under
/// the pod being prepared.)
#[test]
fn an_image_removal_waits_for_a_pod_being_made_and_then_keeps_the_image() {
    let (fx, pods, ids) = setup();
    let making = fx.store.hold_images().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let remover = {
        let (store, pods, id) = (fx.store.clone(), pods.clone(), ids[0].clone());
        std::thread::spawn(move || {
            let removed = store.remove_unless(&id, || match pods.users_of(&store, &id)?.first() {
                None => Ok(()),
                Some(user) => Err(PodError::Invalid {
                    reason: format!("used by {}", user.uuid),
                }),
            });
            tx.send(removed).unwrap();
        })
    };
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "the removal decided while a pod was being made"
    );
    let pod = pods
        .prepare(&fx.store, &ids[..1], &PodOptions::default())
        .unwrap();
    drop(making);
    let removed = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    remover.join().unwrap();
    let err = removed.unwrap_err().to_string();
    assert!(err.contains(&format!("used by {}", pod.uuid)), "{err}");
    assert!(
        fx.store.info(&ids[0]).is_ok(),
        "the pod's image is still stored"
    );

    // Once the pod is gone, nothing holds the image back.
    pods.remove(&pod, &no_release).unwrap();
    assert!(pods.users_of(&fx.store, &ids[0]).unwrap().is_empty());
    fx.store.remove(&ids[0]).unwrap();
    assert!(fx.store.info(&ids[0]).is_err());
}

/// These pods never had a network: nothing to release outside their directories.
fn no_release(
    _: &std::path::Path,
    _: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Ok(())
}
