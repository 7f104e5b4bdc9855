//! Images with appc dependencies: the order the trees are laid in, path whitelists, and what a
//! missing dependency does — checked on the files a user would see.

use std::fs;
use std::path::Path;

use rkt_pod::{PodOptions, Pods};
use rkt_schema::ImageId;
use rkt_store::StoreError;

use crate::aci::AciBuilder;
use crate::support::Fixture;

/// An ACI named `example.com/NAME` with `deps` (names) and `whitelist`, holding `files`.
fn image(name: &str, deps: &[&str], whitelist: &[&str], files: &[(&str, &str)]) -> AciBuilder {
    let deps = deps
        .iter()
        .map(|d| format!(r#"{{"imageName":"example.com/{d}"}}"#))
        .collect::<Vec<_>>()
        .join(",");
    let whitelist = whitelist
        .iter()
        .map(|p| format!("{p:?}"))
        .collect::<Vec<_>>()
        .join(",");
    let manifest = format!(
        r#"{{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/{name}","labels":[{{"name":"version","value":"1.0"}}],"app":{{"exec":["/bin/true"],"user":"0","group":"0"}},"dependencies":[{deps}],"pathWhitelist":[{whitelist}]}}"#
    );
    let mut aci = AciBuilder::empty()
        .file("manifest", manifest.as_bytes(), 0o644)
        .dir("rootfs", 0o755);
    for (path, content) in files {
        aci = aci.file(&format!("rootfs/{path}"), content.as_bytes(), 0o644);
    }
    aci
}

fn store_all(fx: &Fixture, images: &[(&str, AciBuilder)]) -> Vec<ImageId> {
    images
        .iter()
        .map(|(name, aci)| {
            let file = fx.input(&format!("{name}.aci"), &aci.gzip());
            fx.store.import_file(&file).unwrap().info.id
        })
        .collect()
}

fn read(root: &Path, path: &str) -> Option<String> {
    fs::read_to_string(root.join(path)).ok()
}

/// A depends on (B, C), C on (D): the trees are A, C, D, B from the top (as the appc
/// reference renderer), so a later dependency wins over an earlier one and over its own
/// dependencies' files; the overlay layers and a rendered copy agree.
#[test]
fn dependencies_are_laid_in_spec_order() {
    let fx = Fixture::new();
    let ids = store_all(
        &fx,
        &[
            (
                "d",
                image("d", &[], &[], &[("shared", "D"), ("c", "D"), ("d", "D")]),
            ),
            ("b", image("b", &[], &[], &[("shared", "B"), ("b", "B")])),
            ("c", image("c", &["d"], &[], &[("shared", "C"), ("c", "C")])),
            ("a", image("a", &["b", "c"], &[], &[("a", "A")])),
        ],
    );
    let (d, b, c, a) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let layers = fx
        .store
        .rootfs_layers(a)
        .unwrap()
        .expect("no whitelist: an overlay");
    let want: Vec<_> = [a, c, d, b]
        .iter()
        .map(|id| fx.store.rootfs_path(id))
        .collect();
    assert_eq!(layers, want);

    let out = fx.data().join("rendered");
    fx.store.render(a, &out, false).unwrap();
    assert_eq!(read(&out, "shared").as_deref(), Some("C"));
    assert_eq!(read(&out, "c").as_deref(), Some("C"));
    for (file, from) in [("a", "A"), ("b", "B"), ("d", "D")] {
        assert_eq!(read(&out, file).as_deref(), Some(from), "{file}");
    }
}

/// A path whitelist keeps only the listed files of the image and of what it depends on, and
/// forces a rendered copy (an overlay cannot filter).
#[test]
fn a_path_whitelist_filters_the_dependencies() {
    let fx = Fixture::new();
    let ids = store_all(
        &fx,
        &[
            (
                "base",
                image("base", &[], &[], &[("kept", "base"), ("dropped", "base")]),
            ),
            (
                "app",
                image(
                    "app",
                    &["base"],
                    &["/app", "/kept"],
                    &[("app", "app"), ("extra", "x")],
                ),
            ),
        ],
    );
    let app = &ids[1];
    assert_eq!(fx.store.rootfs_layers(app).unwrap(), None);
    let out = fx.data().join("rendered");
    fx.store.render(app, &out, false).unwrap();
    assert_eq!(read(&out, "app").as_deref(), Some("app"));
    assert_eq!(read(&out, "kept").as_deref(), Some("base"));
    assert!(!out.join("dropped").exists());
    assert!(!out.join("extra").exists());
}

/// A dependency that is not stored: rendering and preparing a pod fail with an error naming
/// it, and leave no rendered tree and no pod behind.
#[test]
fn a_missing_dependency_is_named_and_nothing_is_left() {
    let fx = Fixture::new();
    let ids = store_all(
        &fx,
        &[("app", image("app", &["absent"], &[], &[("app", "app")]))],
    );
    let out = fx.data().join("rendered");
    let err = fx.store.render(&ids[0], &out, false).unwrap_err();
    assert!(matches!(err, StoreError::MissingDependency { .. }), "{err}");
    assert!(err.to_string().contains("example.com/absent"), "{err}");
    assert!(!out.exists() || fs::read_dir(&out).unwrap().next().is_none());

    let pods = Pods::open(&fx.data()).unwrap();
    let err = pods
        .prepare(&fx.store, &ids, &PodOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("example.com/absent"), "{err}");
    assert!(pods.list().unwrap().is_empty());
}

/// A prepared pod needs its apps' dependencies too: `rkt image rm` and `image gc` ask this.
#[test]
fn a_pod_uses_the_dependencies_of_its_images() {
    let fx = Fixture::new();
    let ids = store_all(
        &fx,
        &[
            ("base", image("base", &[], &[], &[("base", "base")])),
            ("app", image("app", &["base"], &[], &[("app", "app")])),
            ("other", image("other", &[], &[], &[("other", "other")])),
        ],
    );
    let pods = Pods::open(&fx.data()).unwrap();
    let pod = pods
        .prepare(&fx.store, &ids[1..2], &PodOptions::default())
        .unwrap();
    let users = pods.users_of(&fx.store, &ids[0]).unwrap();
    assert_eq!(
        users.iter().map(|p| &p.uuid).collect::<Vec<_>>(),
        vec![&pod.uuid]
    );
    assert!(pods.users_of(&fx.store, &ids[2]).unwrap().is_empty());
}
