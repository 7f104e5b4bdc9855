//! The spec's example manifests, round-trips, and tables of invalid manifests: each rejection
//! must name the right field and rule.

use serde_json::{Value, json};

use super::*;

/// sha512 of "" — the spec examples write `sha512-...`, which is not an image ID.
const H0: &str = "sha512-cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";
const H1: &str = "sha512-1f40fc92da241694750979ee6cf582f2d5d7d28e18335de05abc54d0560e0f5302860c652bf08d560252aa5e74210546f369fbbbce8c12cfc7957b2652fe9a75";
const H2: &str = "sha512-5267768822ee624d48fce15ec5ca79cbd602cb7f4c2157a516556991f22ef8c7b5ef7b18d1ff41c59370efb0858651d44a936c11b7b144c48fe04df3c6a3e8da";

/// spec/aci.md "Image Manifest Schema" (v0.8.10 text). Two edits: the dependency's `imageID`
/// is a real ID instead of `sha512-...`, and the systemd-notify annotation value is the string
/// `"false"` (the spec writes a JSON `false`, which the string-valued annotation type rejects).
const IMAGE_SPEC_EXAMPLE: &str = r#"{
    "acKind": "ImageManifest",
    "acVersion": "0.8.10",
    "name": "example.com/reduce-worker",
    "labels": [
        {"name": "version", "value": "1.0.0"},
        {"name": "arch", "value": "amd64"},
        {"name": "os", "value": "linux"}
    ],
    "app": {
        "exec": ["/usr/bin/reduce-worker", "--quiet"],
        "user": "100",
        "group": "300",
        "supplementaryGids": [400, 500],
        "eventHandlers": [
            {"exec": ["/usr/bin/data-downloader"], "name": "pre-start"},
            {"exec": ["/usr/bin/deregister-worker", "--verbose"], "name": "post-stop"}
        ],
        "workingDirectory": "/opt/work",
        "environment": [{"name": "REDUCE_WORKER_DEBUG", "value": "true"}],
        "isolators": [
            {"name": "resource/cpu", "value": {"request": "250m", "limit": "500m"}},
            {"name": "resource/memory", "value": {"request": "1G", "limit": "2G"}},
            {"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_NET_BIND_SERVICE"]}}
        ],
        "mountPoints": [{"name": "work", "path": "/var/lib/work", "readOnly": false}],
        "ports": [
            {"name": "health", "port": 4000, "protocol": "tcp", "socketActivated": true},
            {"name": "ftp-data", "port": 20000, "count": 1000, "protocol": "tcp"}
        ]
    },
    "dependencies": [
        {
            "imageName": "example.com/reduce-worker-base",
            "imageID": "sha512-cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
            "labels": [{"name": "os", "value": "linux"}, {"name": "env", "value": "canary"}],
            "size": 22017258
        }
    ],
    "pathWhitelist": [
        "/etc/ca/example.com/crt",
        "/usr/bin/map-reduce-worker",
        "/opt/libs/reduce-toolkit.so",
        "/etc/reduce-worker.conf",
        "/etc/systemd/system/"
    ],
    "annotations": [
        {"name": "authors", "value": "Carly Container <carly@example.com>, Nat Network <[nat@example.com](mailto:nat@example.com)>"},
        {"name": "created", "value": "2014-10-27T19:32:27.67021798Z"},
        {"name": "documentation", "value": "https://example.com/docs"},
        {"name": "homepage", "value": "https://example.com"},
        {"name": "appc.io/executor/supports-systemd-notify", "value": "false"}
    ]
}"#;

/// appc/spec examples/image.json, with a real dependency `imageID`.
const IMAGE_EXAMPLE_FILE: &str = r#"{
    "acKind": "ImageManifest",
    "acVersion": "0.8.10",
    "name": "example.com/reduce-worker",
    "labels": [
        {"name": "version", "value": "1.0.0"},
        {"name": "arch", "value": "amd64"},
        {"name": "os", "value": "linux"}
    ],
    "app": {
        "exec": ["/usr/bin/reduce-worker", "--quiet"],
        "user": "100",
        "group": "300",
        "eventHandlers": [
            {"exec": ["/usr/bin/data-downloader"], "name": "pre-start"},
            {"exec": ["/usr/bin/deregister-worker", "--verbose"], "name": "post-stop"}
        ],
        "environment": [{"name": "REDUCE_WORKER_DEBUG", "value": "true"}],
        "isolators": [
            {"name": "resource/cpu", "value": {"limit": "20m"}},
            {"name": "resource/memory", "value": {"limit": "1G"}},
            {"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"]}},
            {"name": "os/linux/no-new-privileges", "value": true},
            {"name": "os/linux/seccomp-remove-set", "value": {"errno": "EACCESS", "set": ["clock_settime", "clock_adjtime", "reboot"]}}
        ],
        "mountPoints": [{"name": "database", "path": "/var/lib/db", "readOnly": false}],
        "ports": [{"name": "health", "port": 4000, "protocol": "tcp", "socketActivated": true}]
    },
    "dependencies": [
        {
            "imageName": "example.com/reduce-worker-base",
            "imageID": "sha512-cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
            "labels": [{"name": "os", "value": "linux"}, {"name": "env", "value": "canary"}]
        }
    ],
    "pathWhitelist": ["/etc/ca/example.com/crt", "/usr/bin/map-reduce-worker"],
    "annotations": [
        {"name": "created", "value": "2014-10-27T19:32:27.67021798Z"},
        {"name": "appc.io/executor/supports-systemd-notify", "value": "false"}
    ]
}"#;

/// spec/pods.md "Pod Manifest Schema", with real image IDs instead of `sha512-...`.
const POD_SPEC_EXAMPLE: &str = r#"{
    "acVersion": "0.8.10",
    "acKind": "PodManifest",
    "apps": [
        {
            "name": "reduce-worker",
            "image": {
                "name": "example.com/reduce-worker",
                "id": "sha512-cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
                "labels": [{"name": "version", "value": "1.0.0"}]
            },
            "app": {
                "exec": ["/bin/reduce-worker", "--debug=true", "--data-dir=/mnt/foo"],
                "group": "0",
                "user": "0",
                "mountPoints": [{"name": "work", "path": "/var/lib/work"}]
            },
            "readOnlyRootFS": true,
            "mounts": [{"volume": "worklib", "path": "/var/lib/work"}]
        },
        {
            "name": "backup",
            "image": {
                "name": "example.com/worker-backup",
                "id": "sha512-1f40fc92da241694750979ee6cf582f2d5d7d28e18335de05abc54d0560e0f5302860c652bf08d560252aa5e74210546f369fbbbce8c12cfc7957b2652fe9a75",
                "labels": [{"name": "version", "value": "1.0.0"}]
            },
            "app": {
                "exec": ["/bin/reduce-backup"],
                "group": "0",
                "user": "0",
                "mountPoints": [{"name": "backup", "path": "/mnt/bar"}],
                "isolators": [{"name": "resource/memory", "value": {"limit": "1G"}}]
            },
            "mounts": [{"volume": "worklib", "path": "/mnt/bar"}],
            "annotations": [{"name": "foo", "value": "baz"}]
        },
        {
            "name": "register",
            "image": {
                "name": "example.com/reduce-worker-register",
                "id": "sha512-5267768822ee624d48fce15ec5ca79cbd602cb7f4c2157a516556991f22ef8c7b5ef7b18d1ff41c59370efb0858651d44a936c11b7b144c48fe04df3c6a3e8da",
                "labels": [{"name": "version", "value": "1.0.0"}]
            }
        }
    ],
    "volumes": [
        {"name": "worklib", "kind": "host", "source": "/opt/tenant1/work", "readOnly": true, "recursive": true}
    ],
    "isolators": [{"name": "resource/memory", "value": {"limit": "4G"}}],
    "annotations": [{"name": "ip-address", "value": "10.1.2.3"}],
    "ports": [{"name": "ftp", "hostPort": 2121}]
}"#;

/// appc/spec examples/pod_runtime.json, unchanged.
const POD_RUNTIME_EXAMPLE: &str = r#"{
    "acKind": "PodManifest",
    "acVersion": "0.8.10",
    "apps": [
        {
            "name": "reduce-worker",
            "image": {
                "name": "example.com/reduce-worker",
                "id": "sha512-8d3fffddf79e9a232ffd19f9ccaa4d6b37a6a243dbe0f23137b108a043d9da13121a9b505c804956b22e93c7f93969f4a7ba8ddea45bf4aab0bebc8f814e0990"
            },
            "app": {
                "exec": ["/usr/bin/reduce-worker", "--debug=true", "--data-dir=/mnt/foo"],
                "group": "0",
                "user": "0",
                "mountPoints": [{"name": "database", "path": "/var/lib/db"}],
                "isolators": [{"name": "resource/memory", "value": {"limit": "1G"}}]
            },
            "mounts": [{"volume": "dbvolume", "path": "/var/lib/db"}]
        },
        {
            "name": "backup",
            "image": {
                "name": "example.com/worker-backup",
                "id": "sha512-d603c29df0214c9b6681ed591871d40cc4bfabf9914383ce95ada0f2333defa7e97e21ca347e1d8dfde0b3edfe703688729cd25cec895a9a5b5c856da2f031fe",
                "labels": [{"name": "version", "value": "latest"}]
            },
            "mounts": [
                {"volume": "dbvolume", "path": "/mnt/db"},
                {"volume": "buildoutput", "path": "/mnt/out"}
            ],
            "annotations": [{"name": "foo", "value": "baz"}]
        },
        {
            "name": "register",
            "image": {
                "name": "example.com/reduce-worker-register",
                "id": "sha512-57007df523db8aa55e11260aaaab5e8242eb7a2a431196da7ba8204c4aacc6215db289242d17e5a5e45cb0cd0c2e22c7be9c77b61401a8f7e3eba66c2e6e42eb",
                "labels": [{"name": "version", "value": "3.0.0"}]
            }
        }
    ],
    "volumes": [
        {"name": "dbvolume", "kind": "host", "source": "/opt/tenant1/database", "readOnly": true},
        {"name": "buildoutput", "kind": "empty", "mode": "0777", "uid": 0, "gid": 0}
    ],
    "isolators": [
        {"name": "resource/memory", "value": {"limit": "4G"}},
        {"name": "os/unix/sysctl", "value": {"net.ipv4.tcp_fin_timeout": "6"}}
    ],
    "annotations": [{"name": "ip-address", "value": "10.1.2.3"}]
}"#;

/// A template in the style of appc's pod_template.json: images by name and labels only.
const POD_TEMPLATE: &str = r#"{
    "acVersion": "0.3.0",
    "acKind": "PodManifest",
    "apps": [
        {
            "name": "reduce-worker",
            "image": {"name": "example.com/reduce-worker", "labels": [{"name": "version", "value": "1.0.0"}]},
            "mounts": [{"volume": "work", "path": "/var/lib/work"}]
        },
        {
            "name": "backup",
            "image": {"name": "example.com/worker-backup", "id": ""}
        }
    ],
    "volumes": null,
    "isolators": null,
    "annotations": null,
    "ports": null
}"#;

fn assert_image_round_trip(json: &str) -> ImageManifest {
    let m = ImageManifest::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let again = ImageManifest::from_json(m.to_json_pretty().as_bytes()).unwrap();
    assert_eq!(m, again);
    m
}

fn assert_pod_round_trip(json: &str) -> PodManifest {
    let m = PodManifest::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let again = PodManifest::from_json(m.to_json_pretty().as_bytes()).unwrap();
    assert_eq!(m, again);
    m
}

#[test]
fn spec_image_example_validates_and_round_trips() {
    let m = assert_image_round_trip(IMAGE_SPEC_EXAMPLE);
    assert_eq!(m.name, "example.com/reduce-worker");
    assert_eq!(m.label("version"), Some("1.0.0"));
    assert_eq!(m.label("missing"), None);
    assert_eq!(m.annotation("homepage"), Some("https://example.com"));
    let app = m.app.as_ref().unwrap();
    assert_eq!(app.supplementary_gids, [400, 500]);
    assert_eq!(app.env("REDUCE_WORKER_DEBUG"), Some("true"));
    assert_eq!(app.ports[0].count, 1);
    assert_eq!(app.ports[1].last(), 20999);
    assert_eq!(
        app.event_handler(EventName::PostStop).unwrap().exec[0],
        "/usr/bin/deregister-worker"
    );
    let cpu = app.isolators[0].parse().unwrap().unwrap();
    let IsolatorValue::ResourceCpu(cpu) = cpu else {
        panic!("{cpu:?}")
    };
    assert_eq!(
        (
            cpu.request_or_limit().milli_value(),
            cpu.limit.milli_value()
        ),
        (250, 500)
    );
    assert_eq!(m.dependencies[0].image_id.as_ref().unwrap().as_str(), H0);
    assert_eq!(m.dependencies[0].size, Some(22_017_258));

    // The Go field name is written; the spec example's spelling is read.
    let out = m.to_json_pretty();
    assert!(out.contains("\"supplementaryGIDs\""), "{out}");
    assert!(!out.contains("supplementaryGids"), "{out}");
}

#[test]
fn example_image_file_validates_and_round_trips() {
    let m = assert_image_round_trip(IMAGE_EXAMPLE_FILE);
    let isolators = &m.app.as_ref().unwrap().isolators;
    assert_eq!(
        isolators[4].parse().unwrap(),
        Some(IsolatorValue::SeccompRemoveSet(SeccompSet {
            set: vec![
                "clock_settime".into(),
                "clock_adjtime".into(),
                "reboot".into()
            ],
            errno: Some("EACCESS".into()),
        }))
    );
}

#[test]
fn spec_pod_examples_validate_and_round_trip() {
    let m = assert_pod_round_trip(POD_SPEC_EXAMPLE);
    assert_eq!(m.apps.len(), 3);
    let worker = m.app("reduce-worker").unwrap();
    assert!(worker.read_only_root_fs);
    assert_eq!(worker.image.id.as_ref().unwrap().as_str(), H0);
    let vol = m.volume(&worker.mounts[0].volume).unwrap();
    assert_eq!(
        (vol.kind, vol.read_only(), vol.recursive()),
        (VolumeKind::Host, true, true)
    );
    assert_eq!(m.annotation("ip-address"), Some("10.1.2.3"));
    assert_eq!(m.ports[0].host_port, 2121);

    let m = assert_pod_round_trip(POD_RUNTIME_EXAMPLE);
    let empty = &m.volumes[1];
    assert_eq!((empty.mode_bits(), empty.uid(), empty.gid()), (0o777, 0, 0));
    let sysctl = m.isolators[1].parse().unwrap().unwrap();
    assert_eq!(sysctl.name(), UNIX_SYSCTL);
}

#[test]
fn templates_validate_only_as_templates() {
    let t = PodManifest::from_json_template(POD_TEMPLATE.as_bytes()).unwrap();
    assert_eq!(t.apps[1].image.id, None);
    assert!(t.volumes.is_empty());
    let again = PodManifest::from_json_template(t.to_json_pretty().as_bytes()).unwrap();
    assert_eq!(t, again);
    let err = PodManifest::from_json(POD_TEMPLATE.as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid apps[0].image.id: is required in a reified pod manifest"
    );
}

#[test]
fn serialization_shape() {
    // Image manifests leave empty lists out ...
    let name: AcIdentifier = "example.com/minimal".parse().unwrap();
    let mut m = ImageManifest::new(name);
    m.app = Some(App::new(vec!["/bin/sh".into()], "0", "0"));
    let v: Value = serde_json::from_str(&m.to_json_pretty()).unwrap();
    assert_eq!(
        v,
        json!({
            "acKind": "ImageManifest",
            "acVersion": APPC_SPEC_VERSION,
            "name": "example.com/minimal",
            "app": {"exec": ["/bin/sh"], "user": "0", "group": "0"}
        })
    );
    m.validate().unwrap();

    // ... pod manifests always write their lists, so `annotations` is `[]`, never absent.
    let p = PodManifest::new();
    let v: Value = serde_json::from_str(&p.to_json_pretty()).unwrap();
    assert_eq!(
        v,
        json!({
            "acVersion": APPC_SPEC_VERSION,
            "acKind": "PodManifest",
            "apps": [],
            "volumes": [],
            "isolators": [],
            "annotations": [],
            "ports": []
        })
    );
    p.validate().unwrap();
}

#[test]
fn nulls_and_unknown_fields_are_accepted() {
    let m = ImageManifest::from_json(
        br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"a","labels":null,"app":null,
            "dependencies":null,"pathWhitelist":null,"annotations":null,"futureField":{"x":1}}"#,
    )
    .unwrap();
    assert!(m.labels.is_empty() && m.app.is_none());
}

#[test]
fn user_maps_round_trip() {
    let json = json!({
        "acKind": "ImageManifest", "acVersion": "0.8.11", "name": "a",
        "app": {"user": "0", "group": "0", "userAnnotations": {"Any Key": "v"}, "userLabels": {"tier": "x"}}
    });
    let m = assert_image_round_trip(&json.to_string());
    assert_eq!(m.app.as_ref().unwrap().user_labels["tier"], "x");
    let mut p: Value = serde_json::from_str(POD_SPEC_EXAMPLE).unwrap();
    p["userAnnotations"] = json!({"Owner": "ops"});
    p["userLabels"] = json!({"env": "prod"});
    let pod = assert_pod_round_trip(&p.to_string());
    assert_eq!(pod.user_annotations["Owner"], "ops");
}

/// JSON-pointer edits of a base manifest.
type Edits = Vec<(&'static str, Value)>;
/// Edits, and the field and rule (substring) the rejection must name.
type Rejected = (Edits, &'static str, &'static str);

/// Marker for "remove this key" in [`edited`].
const REMOVE: &str = "\u{0}remove";

/// `base` with each `(JSON pointer, value)` set (or removed, for [`REMOVE`]).
fn edited(base: &Value, edits: &[(&str, Value)]) -> Vec<u8> {
    let mut v = base.clone();
    for (pointer, new) in edits {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer has a slash");
        let parent = v
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {parent}"));
        match parent {
            Value::Object(map) if *new == json!(REMOVE) => {
                map.remove(key).unwrap_or_else(|| panic!("no {pointer}"));
            }
            Value::Object(map) => {
                map.insert(key.to_owned(), new.clone());
            }
            Value::Array(items) => {
                let i: usize = key.parse().unwrap();
                if i == items.len() {
                    items.push(new.clone());
                } else {
                    items[i] = new.clone();
                }
            }
            other => panic!("cannot edit {pointer} in {other}"),
        }
    }
    serde_json::to_vec(&v).unwrap()
}

fn base_image() -> Value {
    json!({
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": "example.com/app",
        "labels": [
            {"name": "version", "value": "1.0.0"},
            {"name": "os", "value": "linux"},
            {"name": "arch", "value": "amd64"}
        ],
        "app": {
            "exec": ["/bin/app"],
            "user": "0",
            "group": "0",
            "environment": [{"name": "A", "value": "1"}],
            "eventHandlers": [{"name": "pre-start", "exec": ["/bin/pre"]}],
            "mountPoints": [{"name": "work", "path": "/work"}],
            "ports": [{"name": "http", "protocol": "tcp", "port": 80}],
            "isolators": [{"name": "resource/memory", "value": {"limit": "1G"}}]
        },
        "dependencies": [
            {"imageName": "example.com/base", "imageID": H0, "labels": [{"name": "os", "value": "linux"}]}
        ],
        "pathWhitelist": ["/bin/app"],
        "annotations": [{"name": "created", "value": "2014-10-27T19:32:27Z"}]
    })
}

fn iso(name: &str, value: Value) -> Value {
    json!({"name": name, "value": value})
}

#[test]
fn image_edits_that_stay_valid() {
    let base = base_image();
    assert_image_round_trip(std::str::from_utf8(&edited(&base, &[])).unwrap());
    let cases: Vec<Edits> = vec![
        // arch is only checked when os is present.
        vec![("/labels", json!([{"name": "arch", "value": "anything"}]))],
        vec![("/labels/2/value", json!("aarch64"))],
        vec![("/app/environment/0/name", json!("a.b-c_D"))],
        vec![("/app/workingDirectory", json!(""))],
        vec![("/app/exec", json!(["sh", "-c", "x"]))],
        vec![("/app/ports/0/port", json!(65535))],
        vec![("/app/ports/0/count", json!(1))],
        vec![("/app/supplementaryGIDs", json!([0, 4294967295u32]))],
        vec![("/dependencies/0/imageID", json!(""))],
        vec![("/dependencies/0/imageID", json!(REMOVE))],
        vec![(
            "/annotations/0/value",
            json!("2015-05-18T13:49:28.351729952-04:00"),
        )],
        vec![(
            "/app/isolators",
            json!([
                iso("resource/cpu", json!({"request": "0.25", "limit": 1})),
                iso(
                    "resource/memory",
                    json!({"request": "1Gi", "limit": "2Gi", "default": false})
                ),
                iso(
                    "resource/block-bandwidth",
                    json!({"default": true, "limit": "2M"})
                ),
                iso(
                    "resource/block-iops",
                    json!({"default": true, "limit": "1000"})
                ),
                iso(
                    "resource/network-bandwidth",
                    json!({"default": true, "limit": "1G"})
                ),
                iso(
                    "os/linux/capabilities-remove-set",
                    json!({"set": ["CAP_MKNOD"]})
                ),
                iso(
                    "os/linux/capabilities-remove-set",
                    json!({"set": ["CAP_KILL"]})
                ),
                iso("os/linux/no-new-privileges", json!(false)),
                iso(
                    "os/linux/seccomp-retain-set",
                    json!({"set": ["@appc.io/all"], "errno": ""})
                ),
                iso(
                    "os/linux/selinux-context",
                    json!({"user": "u", "role": "r", "type": "t", "level": "s0:c1"})
                ),
                iso("os/linux/apparmor-profile", json!({"profile": "rkt"})),
                iso("os/linux/oom-score-adj", json!(-1000)),
                iso("os/linux/cpu-shares", json!(262144)),
            ]),
        )],
    ];
    for edits in cases {
        let bytes = edited(&base, &edits);
        if let Err(e) = ImageManifest::from_json(&bytes) {
            panic!("{edits:?}: {e}");
        }
        assert_image_round_trip(std::str::from_utf8(&bytes).unwrap());
    }
}

#[test]
fn image_edits_that_are_rejected_name_field_and_rule() {
    let base = base_image();
    let one_iso = |v: Value| vec![("/app/isolators", json!([v]))];
    let two_isos = |a: Value, b: Value| vec![("/app/isolators", json!([a, b]))];
    let cases: Vec<Rejected> = vec![
        (
            vec![("/acKind", json!("PodManifest"))],
            "acKind",
            "must be \"ImageManifest\"",
        ),
        (
            vec![("/acKind", json!("Image"))],
            "acKind",
            "is not an ac kind",
        ),
        (vec![("/acKind", json!(REMOVE))], "acKind", "is required"),
        (
            vec![("/acVersion", json!("0.8"))],
            "acVersion",
            "not a semver",
        ),
        (
            vec![("/acVersion", json!("0.0.0"))],
            "acVersion",
            "not a version of the appc spec",
        ),
        (
            vec![("/name", json!("Example.com/App"))],
            "name",
            "is not an ac identifier",
        ),
        (
            vec![("/name", json!("example.com/app/"))],
            "name",
            "is not an ac identifier",
        ),
        (
            vec![("/name", json!("a.b."))],
            "name",
            "is not an ac identifier",
        ),
        (vec![("/name", json!(REMOVE))], "name", "is required"),
        (vec![("/name", json!(7))], "name", "invalid type: integer"),
        (
            vec![("/labels/0/name", json!("name"))],
            "labels[0].name",
            "cannot be a label name",
        ),
        (
            vec![("/labels/0/name", json!("Version"))],
            "labels[0].name",
            "is not an ac identifier",
        ),
        (
            vec![("/labels/2/name", json!("os"))],
            "labels[2].name",
            "duplicate label \"os\"",
        ),
        (
            vec![("/labels/1/value", json!("plan9"))],
            "labels[1].value",
            "unsupported os \"plan9\"",
        ),
        (
            vec![("/labels/2/value", json!("x86_64"))],
            "labels[2].value",
            "unsupported arch \"x86_64\" for os \"linux\"",
        ),
        (vec![("/labels", json!({}))], "labels", "invalid type: map"),
        (
            vec![("/labels/0/value", json!(REMOVE))],
            "labels[0].value",
            "is required",
        ),
        (
            vec![("/app/user", json!(REMOVE))],
            "app.user",
            "is required",
        ),
        (
            vec![("/app/user", json!(""))],
            "app.user",
            "must not be empty",
        ),
        (
            vec![("/app/group", json!(""))],
            "app.group",
            "must not be empty",
        ),
        (
            vec![("/app/workingDirectory", json!("opt/work"))],
            "app.workingDirectory",
            "not an absolute path",
        ),
        (
            vec![("/app/environment/0/name", json!("1A"))],
            "app.environment[0].name",
            "not an environment variable name",
        ),
        (
            vec![("/app/environment/0/name", json!("A=B"))],
            "app.environment[0].name",
            "not an environment variable name",
        ),
        (
            vec![("/app/environment/1", json!({"name": "A", "value": "2"}))],
            "app.environment[1].name",
            "duplicate environment variable \"A\"",
        ),
        (
            vec![("/app/eventHandlers/0/name", json!("pre-stop"))],
            "app.eventHandlers[0].name",
            "unknown variant `pre-stop`",
        ),
        (
            vec![("/app/eventHandlers/1", json!({"name": "pre-start"}))],
            "app.eventHandlers[1].name",
            "only one pre-start event handler",
        ),
        (
            vec![("/app/mountPoints/0/name", json!("Work"))],
            "app.mountPoints[0].name",
            "is not an ac name",
        ),
        (
            vec![("/app/mountPoints/0/path", json!("work"))],
            "app.mountPoints[0].path",
            "not an absolute path",
        ),
        (
            vec![("/app/mountPoints/1", json!({"name": "work", "path": "/w2"}))],
            "app.mountPoints[1].name",
            "duplicate mount point \"work\"",
        ),
        (
            vec![("/app/ports/0/port", json!(0))],
            "app.ports[0].port",
            "0 must be between 1 and 65535",
        ),
        (
            vec![("/app/ports/0/port", json!(65536))],
            "app.ports[0].port",
            "65536 must be between 1 and 65535",
        ),
        (
            vec![("/app/ports/0/port", json!("80"))],
            "app.ports[0].port",
            "invalid type: string",
        ),
        (
            vec![("/app/ports/0/count", json!(0))],
            "app.ports[0].count",
            "must be between 1 and 65535",
        ),
        (
            vec![
                ("/app/ports/0/port", json!(65000)),
                ("/app/ports/0/count", json!(1000)),
            ],
            "app.ports[0].count",
            "ends above 65535",
        ),
        (
            vec![("/app/ports/0/protocol", json!(REMOVE))],
            "app.ports[0].protocol",
            "is required",
        ),
        (
            vec![("/app/ports/0/protocol", json!(""))],
            "app.ports[0].protocol",
            "must not be empty",
        ),
        (
            vec![("/app/ports/0/name", json!("http_alt"))],
            "app.ports[0].name",
            "is not an ac name",
        ),
        (
            vec![(
                "/app/ports/1",
                json!({"name": "http", "protocol": "udp", "port": 81}),
            )],
            "app.ports[1].name",
            "duplicate port \"http\"",
        ),
        (
            vec![("/app/supplementaryGids", json!([-1]))],
            "app.supplementaryGids[0]",
            "invalid value: integer `-1`",
        ),
        (
            one_iso(iso("example.com/custom", json!({}))),
            "app.isolators[0].name",
            "unknown isolator \"example.com/custom\"",
        ),
        (
            one_iso(iso("Resource/CPU", json!({}))),
            "app.isolators[0].name",
            "is not an ac identifier",
        ),
        (
            one_iso(json!({"name": "resource/cpu"})),
            "app.isolators[0].value",
            "is required",
        ),
        (
            one_iso(iso("resource/memory", json!({"limit": "1GB"}))),
            "app.isolators[0].value.limit",
            "\"1GB\" is not a resource quantity",
        ),
        (
            one_iso(iso("resource/memory", json!({"limit": "-1"}))),
            "app.isolators[0].value.limit",
            "is not a resource quantity",
        ),
        (
            one_iso(iso("resource/memory", json!({"request": "1G"}))),
            "app.isolators[0].value.limit",
            "is required",
        ),
        (
            one_iso(iso("resource/memory", json!("1G"))),
            "app.isolators[0].value",
            "invalid type: string",
        ),
        (
            one_iso(iso("resource/cpu", json!({"default": true, "limit": "1"}))),
            "app.isolators[0].value.default",
            "must be false for resource/cpu",
        ),
        (
            one_iso(iso("resource/block-bandwidth", json!({"limit": "2M"}))),
            "app.isolators[0].value.default",
            "must be true for resource/block-bandwidth",
        ),
        (
            one_iso(iso(
                "resource/block-iops",
                json!({"default": true, "request": "1", "limit": "2"}),
            )),
            "app.isolators[0].value.request",
            "is not supported by resource/block-iops",
        ),
        (
            one_iso(iso(
                "resource/network-bandwidth",
                json!({"default": false, "limit": "1G"}),
            )),
            "app.isolators[0].value.default",
            "must be true",
        ),
        (
            one_iso(iso("os/linux/capabilities-retain-set", json!({"set": []}))),
            "app.isolators[0].value.set",
            "must not be empty",
        ),
        (
            one_iso(iso(
                "os/linux/capabilities-remove-set",
                json!({"set": [""]}),
            )),
            "app.isolators[0].value.set[0]",
            "must not be empty",
        ),
        (
            one_iso(iso("os/linux/capabilities-remove-set", json!({}))),
            "app.isolators[0].value.set",
            "is required",
        ),
        (
            two_isos(
                iso(
                    "os/linux/capabilities-remove-set",
                    json!({"set": ["CAP_KILL"]}),
                ),
                iso(
                    "os/linux/capabilities-retain-set",
                    json!({"set": ["CAP_CHOWN"]}),
                ),
            ),
            "app.isolators[1].name",
            "os/linux/capabilities-retain-set cannot be used together with os/linux/capabilities-remove-set",
        ),
        (
            two_isos(
                iso("os/linux/seccomp-retain-set", json!({"set": ["read"]})),
                iso("os/linux/seccomp-remove-set", json!({"set": ["reboot"]})),
            ),
            "app.isolators[1].name",
            "cannot be used together with os/linux/seccomp-retain-set",
        ),
        (
            two_isos(
                iso("os/linux/seccomp-remove-set", json!({"set": ["reboot"]})),
                iso(
                    "os/linux/seccomp-remove-set",
                    json!({"set": ["kexec_load"]}),
                ),
            ),
            "app.isolators[1].name",
            "only one os/linux/seccomp-remove-set isolator is allowed per app",
        ),
        (
            one_iso(iso("os/linux/seccomp-remove-set", json!({"set": []}))),
            "app.isolators[0].value.set",
            "must not be empty",
        ),
        (
            one_iso(iso("os/linux/seccomp-remove-set", json!({"set": ["@all"]}))),
            "app.isolators[0].value.set[0]",
            "not a scoped wildcard",
        ),
        (
            one_iso(iso(
                "os/linux/seccomp-retain-set",
                json!({"set": ["read"], "errno": "eperm"}),
            )),
            "app.isolators[0].value.errno",
            "not an upper-case errno name",
        ),
        (
            one_iso(iso("os/linux/no-new-privileges", json!("yes"))),
            "app.isolators[0].value",
            "invalid type: string",
        ),
        (
            one_iso(iso(
                "os/linux/selinux-context",
                json!({"user": "a:b", "role": "r", "type": "t", "level": "s0"}),
            )),
            "app.isolators[0].value.user",
            "contain no ':'",
        ),
        (
            one_iso(iso(
                "os/linux/selinux-context",
                json!({"user": "u", "role": "r", "type": "t"}),
            )),
            "app.isolators[0].value.level",
            "is required",
        ),
        (
            one_iso(iso(
                "os/linux/selinux-context",
                json!({"user": "u", "role": "r", "type": "t", "level": ""}),
            )),
            "app.isolators[0].value.level",
            "must not be empty",
        ),
        (
            two_isos(
                iso(
                    "os/linux/selinux-context",
                    json!({"user": "u", "role": "r", "type": "t", "level": "s0"}),
                ),
                iso(
                    "os/linux/selinux-context",
                    json!({"user": "u", "role": "r", "type": "t", "level": "s1"}),
                ),
            ),
            "app.isolators[1].name",
            "only one os/linux/selinux-context isolator",
        ),
        (
            one_iso(iso("os/linux/apparmor-profile", json!({"profile": ""}))),
            "app.isolators[0].value.profile",
            "must not be empty",
        ),
        (
            one_iso(iso("os/linux/oom-score-adj", json!(1001))),
            "app.isolators[0].value",
            "1001 is not between -1000 and 1000",
        ),
        (
            one_iso(iso("os/linux/cpu-shares", json!(1))),
            "app.isolators[0].value",
            "1 is not between 2 and 262144",
        ),
        (
            one_iso(iso("os/linux/cpu-shares", json!(1.5))),
            "app.isolators[0].value",
            "invalid type: floating point",
        ),
        (
            one_iso(iso("os/unix/sysctl", json!({"net.x": "1"}))),
            "app.isolators[0].name",
            "os/unix/sysctl is not allowed at app level",
        ),
        (
            vec![("/dependencies/0/imageName", json!(REMOVE))],
            "dependencies[0].imageName",
            "is required",
        ),
        (
            vec![("/dependencies/0/imageName", json!("Base"))],
            "dependencies[0].imageName",
            "is not an ac identifier",
        ),
        (
            vec![("/dependencies/0/imageID", json!("sha512-abc"))],
            "dependencies[0].imageID",
            "is not an image id",
        ),
        (
            vec![(
                "/dependencies/0/imageID",
                json!(H0.replace("sha512", "sha256")),
            )],
            "dependencies[0].imageID",
            "is not an image id",
        ),
        (
            vec![(
                "/dependencies/0/imageID",
                json!(H0.to_uppercase().replace("SHA512", "sha512")),
            )],
            "dependencies[0].imageID",
            "is not an image id",
        ),
        (
            vec![(
                "/dependencies/0/labels/1",
                json!({"name": "os", "value": "linux"}),
            )],
            "dependencies[0].labels[1].name",
            "duplicate label",
        ),
        (
            vec![("/dependencies/0/size", json!(-1))],
            "dependencies[0].size",
            "invalid value",
        ),
        (
            vec![("/pathWhitelist/1", json!("etc/passwd"))],
            "pathWhitelist[1]",
            "\"etc/passwd\" is not an absolute path",
        ),
        (
            vec![(
                "/annotations/1",
                json!({"name": "created", "value": "2014-10-27T19:32:27Z"}),
            )],
            "annotations[1].name",
            "duplicate annotation \"created\"",
        ),
        (
            vec![("/annotations/0/name", json!("Created"))],
            "annotations[0].name",
            "is not an ac identifier",
        ),
        (
            vec![("/annotations/0/value", json!("2014-10-27 19:32:27Z"))],
            "annotations[0].value",
            "not an rfc 3339 timestamp",
        ),
        (
            vec![("/annotations/0/value", json!("yesterday"))],
            "annotations[0].value",
            "not an rfc 3339 timestamp",
        ),
        (
            vec![(
                "/annotations/0",
                json!({"name": "homepage", "value": "ftp://example.com"}),
            )],
            "annotations[0].value",
            "not an http or https url",
        ),
        (
            vec![(
                "/annotations/0",
                json!({"name": "documentation", "value": "example.com/docs"}),
            )],
            "annotations[0].value",
            "not an http or https url",
        ),
        (
            vec![(
                "/annotations/0",
                json!({"name": "appc.io/executor/supports-systemd-notify", "value": "yes"}),
            )],
            "annotations[0].value",
            "is not a boolean",
        ),
        (
            vec![("/annotations/0/value", json!(false))],
            "annotations[0].value",
            "invalid type: boolean",
        ),
    ];
    for (edits, field, rule) in cases {
        let err = ImageManifest::from_json(&edited(&base, &edits))
            .expect_err(&format!("{edits:?} should be rejected"));
        assert_error(&err, field, rule, &format!("{edits:?}"));
    }
}

fn assert_error(err: &SchemaError, field: &str, rule: &str, case: &str) {
    assert_eq!(err.field(), Some(field), "{case}: {err}");
    assert!(err.rule().unwrap().contains(rule), "{case}: {err}");
    let text = err.to_string();
    assert!(
        !text.contains('\n') && !text.ends_with('.'),
        "{case}: {text}"
    );
    assert_eq!(text, format!("invalid {field}: {}", err.rule().unwrap()));
}

#[test]
fn documents_that_are_not_manifests() {
    for bad in [
        &b"{"[..],
        b"",
        b"{\"acKind\": }",
        br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"a"} x"#,
    ] {
        let err = ImageManifest::from_json(bad).unwrap_err();
        assert!(matches!(err, SchemaError::Json { .. }), "{err}");
        assert!(err.to_string().starts_with("malformed json: "), "{err}");
    }
    let err = ImageManifest::from_json(b"[]").unwrap_err();
    assert_error(&err, "manifest", "invalid length 0", "[]");
    let err = PodManifest::from_json(b"\"x\"").unwrap_err();
    assert_error(&err, "manifest", "invalid type: string", "\"x\"");
}

fn base_pod() -> Value {
    json!({
        "acVersion": "0.8.11",
        "acKind": "PodManifest",
        "apps": [
            {
                "name": "web",
                "image": {"name": "example.com/web", "id": H1},
                "app": {
                    "exec": ["/bin/web"],
                    "user": "0",
                    "group": "0",
                    "mountPoints": [{"name": "data", "path": "/data"}],
                    "ports": [{"name": "http", "protocol": "tcp", "port": 80}]
                },
                "mounts": [{"volume": "data", "path": "/data"}],
                "annotations": [{"name": "role", "value": "frontend"}]
            },
            {"name": "db", "image": {"id": H2}}
        ],
        "volumes": [
            {"name": "data", "kind": "host", "source": "/srv/data"},
            {"name": "scratch", "kind": "empty", "mode": "0700", "uid": 1, "gid": 1}
        ],
        "isolators": [{"name": "resource/memory", "value": {"limit": "4G"}}],
        "annotations": [{"name": "ip-address", "value": "10.1.2.3"}],
        "ports": [{"name": "http", "hostPort": 8080, "hostIP": "127.0.0.1"}]
    })
}

#[test]
fn pod_edits_that_stay_valid() {
    let base = base_pod();
    let cases: Vec<Edits> = vec![
        vec![],
        vec![("/apps", json!([]))],
        // Unknown pod-level isolators are kept.
        vec![("/isolators/1", iso("example.com/custom", json!([1, 2])))],
        vec![(
            "/isolators/1",
            iso("os/unix/sysctl", json!({"net.ipv4.ip_forward": "1"})),
        )],
        vec![(
            "/isolators/1",
            iso(
                "os/linux/selinux-context",
                json!({"user": "u", "role": "r", "type": "t", "level": "s0"}),
            ),
        )],
        // The older convention: a mount named after the mount point satisfies it.
        vec![("/apps/0/mounts/0/path", json!("/elsewhere"))],
        vec![(
            "/apps/0/mounts/0/appVolume",
            json!({"name": "own", "kind": "empty"}),
        )],
        vec![
            ("/apps/0/mounts/0/volume", json!("own")),
            (
                "/apps/0/mounts/0/appVolume",
                json!({"name": "own", "kind": "empty"}),
            ),
        ],
        vec![
            ("/volumes/1/recursive", json!(false)),
            ("/volumes/1/readOnly", json!(true)),
        ],
        vec![("/volumes/1/mode", json!("1777"))],
        vec![(
            "/ports/0/podPort",
            json!({"name": "http", "protocol": "tcp", "port": 8080, "count": 2}),
        )],
        vec![("/ports/0/hostIP", json!(REMOVE))],
    ];
    for edits in cases {
        let bytes = edited(&base, &edits);
        if let Err(e) = PodManifest::from_json(&bytes) {
            panic!("{edits:?}: {e}");
        }
        assert_pod_round_trip(std::str::from_utf8(&bytes).unwrap());
    }
}

#[test]
fn pod_edits_that_are_rejected_name_field_and_rule() {
    let base = base_pod();
    let cases: Vec<Rejected> = vec![
        (
            vec![("/acKind", json!("ImageManifest"))],
            "acKind",
            "must be \"PodManifest\"",
        ),
        (
            vec![("/acVersion", json!(REMOVE))],
            "acVersion",
            "is required",
        ),
        (
            vec![("/acVersion", json!("0.0.0"))],
            "acVersion",
            "not a version of the appc spec",
        ),
        (vec![("/apps", json!(REMOVE))], "apps", "is required"),
        (
            vec![("/apps/1/name", json!("web"))],
            "apps[1].name",
            "duplicate app name \"web\"",
        ),
        (
            vec![("/apps/1/name", json!("My_DB"))],
            "apps[1].name",
            "is not an ac name",
        ),
        (
            vec![("/apps/1/image/id", json!(REMOVE))],
            "apps[1].image.id",
            "is required in a reified pod manifest",
        ),
        (
            vec![("/apps/1/image/id", json!(""))],
            "apps[1].image.id",
            "is required in a reified pod manifest",
        ),
        (
            vec![("/apps/1/image/id", json!("sha512-123"))],
            "apps[1].image.id",
            "is not an image id",
        ),
        (
            vec![("/apps/1/image/name", json!("DB"))],
            "apps[1].image.name",
            "is not an ac identifier",
        ),
        (
            vec![(
                "/apps/1/image/labels",
                json!([{"name": "name", "value": "x"}]),
            )],
            "apps[1].image.labels[0].name",
            "cannot be a label name",
        ),
        (
            vec![("/apps/1/image", json!(REMOVE))],
            "apps[1].image",
            "is required",
        ),
        (
            vec![("/apps/0/app/user", json!(REMOVE))],
            "apps[0].app.user",
            "is required",
        ),
        (
            vec![("/apps/0/app/group", json!(""))],
            "apps[0].app.group",
            "must not be empty",
        ),
        (
            vec![(
                "/apps/0/app/isolators",
                json!([iso("example.com/x", json!(1))]),
            )],
            "apps[0].app.isolators[0].name",
            "unknown isolator",
        ),
        (
            vec![("/apps/0/mounts/0/path", json!("data"))],
            "apps[0].mounts[0].path",
            "not an absolute path",
        ),
        (
            vec![("/apps/0/mounts/0/volume", json!("nope"))],
            "apps[0].mounts[0].volume",
            "no volume named \"nope\"",
        ),
        (
            vec![("/apps/0/mounts/0/volume", json!("Data"))],
            "apps[0].mounts[0].volume",
            "is not an ac name",
        ),
        (
            vec![
                ("/apps/0/mounts/0/path", json!("/other")),
                ("/apps/0/mounts/0/volume", json!("scratch")),
            ],
            "apps[0].app.mountPoints[0]",
            "mount point \"data\" (/data) is not satisfied by any mount",
        ),
        (
            vec![(
                "/apps/0/mounts/0/appVolume",
                json!({"name": "own", "kind": "host"}),
            )],
            "apps[0].mounts[0].appVolume.source",
            "is required for host volumes",
        ),
        (
            vec![("/apps/0/annotations/0/name", json!("example.com/role"))],
            "apps[0].annotations[0].name",
            "is not an ac name",
        ),
        (
            vec![(
                "/apps/0/annotations/1",
                json!({"name": "role", "value": "x"}),
            )],
            "apps[0].annotations[1].name",
            "duplicate annotation \"role\"",
        ),
        (
            vec![(
                "/apps/1/app",
                json!({"user": "0", "group": "0", "ports": [{"name": "http", "protocol": "udp", "port": 53}]}),
            )],
            "apps[1].app.ports[0].name",
            "duplicate port \"http\" (already used by app \"web\")",
        ),
        (
            vec![("/volumes/1/name", json!("data"))],
            "volumes[1].name",
            "duplicate volume \"data\"",
        ),
        (
            vec![("/volumes/0/source", json!(REMOVE))],
            "volumes[0].source",
            "is required for host volumes",
        ),
        (
            vec![("/volumes/0/source", json!("srv/data"))],
            "volumes[0].source",
            "not an absolute path",
        ),
        (
            vec![("/volumes/0/mode", json!("0755"))],
            "volumes[0].mode",
            "is only allowed for empty volumes",
        ),
        (
            vec![("/volumes/0/gid", json!(0))],
            "volumes[0].gid",
            "is only allowed for empty volumes",
        ),
        (
            vec![("/volumes/1/source", json!("/tmp"))],
            "volumes[1].source",
            "is only allowed for host volumes",
        ),
        (
            vec![("/volumes/1/mode", json!("rwx"))],
            "volumes[1].mode",
            "not an octal mode",
        ),
        (
            vec![("/volumes/1/mode", json!("0789"))],
            "volumes[1].mode",
            "not an octal mode",
        ),
        (
            vec![("/volumes/1/mode", json!("17777"))],
            "volumes[1].mode",
            "not an octal mode",
        ),
        (
            vec![("/volumes/1/uid", json!(-1))],
            "volumes[1].uid",
            "invalid value",
        ),
        (
            vec![("/volumes/1/kind", json!("tmpfs"))],
            "volumes[1].kind",
            "unknown variant `tmpfs`",
        ),
        (
            vec![(
                "/isolators/0",
                iso(
                    "os/linux/capabilities-retain-set",
                    json!({"set": ["CAP_KILL"]}),
                ),
            )],
            "isolators[0].name",
            "is not allowed at pod level",
        ),
        (
            vec![("/isolators/0/value/limit", json!("4GB"))],
            "isolators[0].value.limit",
            "is not a resource quantity",
        ),
        (
            vec![
                ("/isolators/1", iso("os/unix/sysctl", json!({}))),
                ("/isolators/2", iso("os/unix/sysctl", json!({}))),
            ],
            "isolators[2].name",
            "only one os/unix/sysctl isolator is allowed per pod",
        ),
        (
            vec![("/isolators/1", iso("os/unix/sysctl", json!({"net.x": 1})))],
            "isolators[1].value.net.x",
            "invalid type: integer",
        ),
        (
            vec![("/isolators/1", iso("os/linux/apparmor-profile", json!({})))],
            "isolators[1].value.profile",
            "is required",
        ),
        (
            vec![("/annotations/0/name", json!("example.com/ip"))],
            "annotations[0].name",
            "is not an ac name",
        ),
        (
            vec![(
                "/annotations/1",
                json!({"name": "ip-address", "value": "x"}),
            )],
            "annotations[1].name",
            "duplicate annotation",
        ),
        (
            vec![("/ports/0/hostPort", json!(0))],
            "ports[0].hostPort",
            "must be between 1 and 65535",
        ),
        (
            vec![("/ports/0/hostPort", json!(REMOVE))],
            "ports[0].hostPort",
            "is required",
        ),
        (
            vec![("/ports/0/hostIP", json!("10.0.0"))],
            "ports[0].hostIP",
            "is not an ipv4 address in dotted-quad notation",
        ),
        (
            vec![("/ports/0/hostIP", json!("::1"))],
            "ports[0].hostIP",
            "is not an ipv4 address in dotted-quad notation",
        ),
        (
            vec![("/ports/0/name", json!("HTTP"))],
            "ports[0].name",
            "is not an ac name",
        ),
        (
            vec![(
                "/ports/0/podPort",
                json!({"name": "http", "protocol": "tcp", "port": 80, "count": 0}),
            )],
            "ports[0].podPort.count",
            "must be between 1 and 65535",
        ),
        (
            vec![(
                "/ports/0/podPort",
                json!({"name": "http", "protocol": "tcp", "port": 65535, "count": 2}),
            )],
            "ports[0].podPort.count",
            "ends above 65535",
        ),
    ];
    for (edits, field, rule) in cases {
        let err = PodManifest::from_json(&edited(&base, &edits))
            .expect_err(&format!("{edits:?} should be rejected"));
        assert_error(&err, field, rule, &format!("{edits:?}"));
    }
}

#[test]
fn validate_catches_values_built_in_code() {
    // Fields that are plain types in Rust are checked by validate(), not only by from_json.
    let mut app = App::new(vec![], "0", "0");
    app.ports.push(Port {
        name: "p".parse().unwrap(),
        protocol: "tcp".into(),
        port: 0,
        count: 1,
        socket_activated: false,
    });
    assert_eq!(
        app.validate().unwrap_err().field(),
        Some("app.ports[0].port")
    );
    app.ports[0].port = 65535;
    app.ports[0].count = 2;
    assert_eq!(
        app.validate().unwrap_err().field(),
        Some("app.ports[0].count")
    );

    let mut pod = PodManifest::new();
    pod.volumes
        .push(Volume::host("v".parse().unwrap(), "relative"));
    assert_eq!(
        pod.validate().unwrap_err().field(),
        Some("volumes[0].source")
    );
    pod.volumes[0] = Volume::new("v".parse().unwrap(), VolumeKind::Empty);
    pod.validate().unwrap();
    assert_eq!(pod.volumes[0].mode_bits(), 0o755);
}
