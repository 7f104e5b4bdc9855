//! The metadata service, seen from inside an app: `rkt metadata-service` started by its
//! shipped socket unit on the first connection, a pod run with `--mds-register` whose app
//! asks for its uuid, annotations and image, signs content and has it verified.

use super::{PodTest, Test, app_lines, check, last_value, wait_for};
use crate::{Ctx, TestResult};

pub(crate) const TESTS: &[(&str, Test)] = &[
    (
        "metadata_service_answers_a_registered_app",
        metadata_service_answers_a_registered_app,
    ),
    (
        "metadata_service_reached_from_a_cni_network",
        metadata_service_reached_from_a_cni_network,
    ),
];

const SOCKET_UNIT: &str = "/run/systemd/system/rkt-metadata.socket";
const SERVICE_UNIT: &str = "/run/systemd/system/rkt-metadata.service";

/// Installs the shipped units with this build's rkt and the test's store.
fn install_units(t: &PodTest) -> TestResult {
    let read = |name: &str| {
        std::fs::read_to_string(t.ctx.checkout.join("units").join(name))
            .map_err(|e| format!("reading units/{name}: {e}"))
    };
    let service = read("rkt-metadata.service")?.replace(
        "ExecStart=/usr/bin/rkt metadata-service",
        &format!("ExecStart={} --dir {} metadata-service", t.rkt, t.dir),
    );
    check(service.contains(&t.dir), || {
        "the service unit's ExecStart changed shape".into()
    })?;
    for (path, text) in [
        (SOCKET_UNIT, read("rkt-metadata.socket")?),
        (SERVICE_UNIT, service),
    ] {
        t.ctx
            .systemd
            .ok(&["sh", "-c", &format!("cat > {path} <<'UNIT'\n{text}UNIT\n")])?;
    }
    t.ctx.systemd.ok(&["systemctl", "daemon-reload"])?;
    t.ctx
        .systemd
        .ok(&["systemctl", "start", "rkt-metadata.socket"])
        .map(|_| ())
}

fn remove_units(t: &PodTest) {
    let _ = t.ctx.systemd.run(&[
        "systemctl",
        "stop",
        "rkt-metadata.socket",
        "rkt-metadata.service",
    ]);
    let _ = t.ctx.systemd.run(&["rm", "-f", SOCKET_UNIT, SERVICE_UNIT]);
    let _ = t.ctx.systemd.run(&["systemctl", "daemon-reload"]);
}

fn is_active(t: &PodTest, unit: &str) -> String {
    t.ctx
        .systemd
        .run(&["systemctl", "is-active", unit])
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn metadata_service_answers_a_registered_app(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    // Without a service, --mds-register is refused before anything is made.
    let out = t.rkt(&["run", "--mds-register", &t.image("inspect")])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(
        out.status.code() == Some(254) && stderr.contains("no metadata service answers"),
        || format!("run without a service: {} {stderr}", out.status),
    )?;
    check(t.ok(&["list", "--no-legend"])?.trim().is_empty(), || {
        "a pod was made".into()
    })?;

    install_units(&t)?;
    let result = registered_app_sees_its_metadata(&t);
    let service_log = t.journal(&["-u", "rkt-metadata.service", "-n", "20"]);
    remove_units(&t);
    result.map_err(|e| format!("{e}\nservice log:\n{service_log}"))?;
    let uuid = t.read_uuid().unwrap_or_default();
    t.gc_leaves_nothing(&uuid)
}

fn registered_app_sees_its_metadata(t: &PodTest) -> TestResult {
    check(is_active(t, "rkt-metadata.service") != "active", || {
        "the service runs before any connection".into()
    })?;
    // Relative to $AC_METADATA_URL (inspect adds it: systemd would expand a `$` argument).
    let api = "/acMetadata/v1";
    let get = |label: &'static str, path: &str| -> [String; 3] {
        ["--http-get".into(), label.into(), format!("{api}{path}")]
    };
    let mut app_args: Vec<String> = vec!["--print-env".into()];
    for request in [
        get("uuid", "/pod/uuid"),
        get("pod_annotations", "/pod/annotations"),
        get("pod_manifest", "/pod/manifest"),
        get("app_annotations", "/apps/mds-app/annotations"),
        get("image_manifest", "/apps/mds-app/image/manifest"),
        get("image_id", "/apps/mds-app/image/id"),
        get("other_app", "/apps/nobody/image/id"),
        get("no_path", "/pod/nothing"),
    ] {
        app_args.extend(request);
    }
    app_args.extend(
        [
            "--http-get",
            "bad_token",
            "http://127.0.0.1:18112/0123456789abcdef0123456789abcdef/acMetadata/v1/pod/uuid",
            "--mds-sign-verify",
            "signed by the app",
        ]
        .map(String::from),
    );
    let image = t.image("inspect");
    let uuid_file = t.uuid_file();
    let mut args = vec![
        "run",
        "--net=host",
        "--mds-register",
        "--uuid-file-save",
        &uuid_file,
        &image,
        "--name=mds-app",
        "--",
    ];
    args.extend(app_args.iter().map(String::as_str));
    let out = t.rkt(&args)?;
    check(out.status.success(), || {
        format!(
            "rkt run --mds-register exited {}: {}\napp:\n{}\njournal:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            app_lines(t, "mds-app").join("\n"),
            t.journal(&["-n", "40", "-o", "short"]),
        )
    })?;
    check(
        wait_for(10, || is_active(t, "rkt-metadata.service") == "active"),
        || "the socket did not start the service".into(),
    )?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    let lines = app_lines(t, "mds-app");
    let value = |key: &str| last_value(&lines, key).unwrap_or_default();
    let shown = || lines.join("\n");

    // The URL: loopback (host network), the port, a 256-bit token.
    let url = value("env:AC_METADATA_URL");
    let token = url.strip_prefix("http://127.0.0.1:18112/").unwrap_or("");
    check(
        token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        || format!("AC_METADATA_URL={url:?}\n{}", shown()),
    )?;
    let token_file = format!("{}/pods/run/{uuid}/mds-token", t.dir);
    let mode = t.ctx.systemd.ok(&["stat", "-c", "%a", &token_file])?;
    check(mode.trim() == "600", || format!("token file mode {mode}"))?;

    const TEXT: &str = "text/plain; charset=us-ascii";
    const JSON: &str = "application/json";
    let expect = |label: &str, status: &str, content_type: &str| {
        let got = (
            value(&format!("http:{label}:status")),
            value(&format!("http:{label}:content-type")),
        );
        check(got == (status.to_owned(), content_type.to_owned()), || {
            format!(
                "{label}: {got:?}, expected {status} {content_type}\n{}",
                shown()
            )
        })
    };
    expect("uuid", "200", TEXT)?;
    check(value("http:uuid:body") == uuid, || {
        format!("pod uuid {:?} != {uuid}", value("http:uuid:body"))
    })?;
    expect("pod_annotations", "200", JSON)?;
    check(value("http:pod_annotations:body") == "[]", shown)?;
    expect("pod_manifest", "200", JSON)?;
    let manifest = t.ok(&["cat-manifest", &uuid])?;
    let served: serde_json::Value = serde_json::from_str(&value("http:pod_manifest:body"))
        .map_err(|e| format!("served pod manifest: {e}"))?;
    let stored: serde_json::Value =
        serde_json::from_str(&manifest).map_err(|e| format!("cat-manifest: {e}"))?;
    check(served == stored, || {
        format!("served manifest {served} != rkt cat-manifest {stored}")
    })?;
    // The image's own annotation (tests/images/build.sh) comes through the app's list.
    expect("app_annotations", "200", JSON)?;
    check(
        value("http:app_annotations:body")
            == r#"[{"name":"created","value":"2026-01-01T00:00:00Z"}]"#,
        shown,
    )?;
    expect("image_manifest", "200", JSON)?;
    check(
        value("http:image_manifest:body").contains(r#""name": "example.com/inspect""#),
        shown,
    )?;
    expect("image_id", "200", TEXT)?;
    let image_id = stored["apps"][0]["image"]["id"].as_str().unwrap_or("?");
    check(value("http:image_id:body") == image_id, || {
        format!("image id {:?} != {image_id}", value("http:image_id:body"))
    })?;
    expect("other_app", "404", TEXT)?;
    expect("no_path", "404", TEXT)?;
    expect("bad_token", "401", TEXT)?;

    // Signed by the app, verified by the service: the same content passes, other content not.
    let signed = (
        value("mds:sign_status"),
        value("mds:sign_content_type"),
        value("mds:signature").len(),
        value("mds:verify_status"),
        value("mds:verify_content_type"),
        value("mds:verify_other_content_status"),
    );
    check(
        signed
            == (
                "200".into(),
                TEXT.into(),
                88,
                "200".into(),
                TEXT.into(),
                "403".into(),
            ),
        || format!("sign/verify: {signed:?}\n{}", shown()),
    )?;

    // A pod run without --mds-register gets no URL.
    let out = t.rkt(&[
        "run",
        &image,
        "--name=mds-unregistered",
        "--",
        "--print-env",
        "--print-msg",
        "done",
    ])?;
    check(out.status.success(), || {
        String::from_utf8_lossy(&out.stderr).into_owned()
    })?;
    let lines = app_lines(t, "mds-unregistered");
    check(
        lines.iter().any(|l| l == "done")
            && !lines.iter().any(|l| l.starts_with("env:AC_METADATA_URL=")),
        || format!("unregistered app: {}", lines.join("\n")),
    )
}

/// A pod on a CNI bridge reaches the service on the host side of its network (the gateway).
fn metadata_service_reached_from_a_cni_network(ctx: &Ctx) -> TestResult {
    const BRIDGE: &str = "rkt-systest-md";
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
    let conf = format!(
        r#"{{"cniVersion":"0.4.0","name":"mdsnet","type":"bridge","bridge":"{BRIDGE}","isGateway":true,"ipMasq":false,"ipam":{{"type":"host-local","subnet":"10.222.34.0/24","dataDir":"{}/ipam"}}}}"#,
        t.dir
    );
    ctx.systemd
        .ok(&["mkdir", "-p", &format!("{config}/net.d")])?;
    ctx.systemd.ok(&[
        "sh",
        "-c",
        r#"printf '%s' "$1" > "$2""#,
        "sh",
        &conf,
        &format!("{config}/net.d/10-mdsnet.conf"),
    ])?;
    install_units(&t)?;
    let result = (|| {
        let uuid_file = t.uuid_file();
        let image = t.image("inspect");
        let out = t.rkt(&[
            "--local-config",
            &config,
            "run",
            "--net=mdsnet",
            "--mds-register",
            "--uuid-file-save",
            &uuid_file,
            &image,
            "--name=mds-cni",
            "--",
            "--print-env",
            "--http-get",
            "uuid",
            "/acMetadata/v1/pod/uuid",
        ])?;
        let lines = app_lines(&t, "mds-cni");
        check(out.status.success(), || {
            format!(
                "rkt run --net=mdsnet --mds-register exited {}: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                lines.join("\n")
            )
        })?;
        let uuid = t.read_uuid().ok_or("no UUID saved")?;
        let url = last_value(&lines, "env:AC_METADATA_URL").unwrap_or_default();
        check(url.starts_with("http://10.222.34.1:18112/"), || {
            format!("AC_METADATA_URL={url:?}")
        })?;
        let got = (
            last_value(&lines, "http:uuid:status"),
            last_value(&lines, "http:uuid:body"),
        );
        check(got == (Some("200".into()), Some(uuid.clone())), || {
            format!("pod uuid over the gateway: {got:?}, expected {uuid}")
        })?;
        t.gc_leaves_nothing(&uuid)
    })();
    remove_units(&t);
    let _ = ctx.systemd.run(&["ip", "link", "del", BRIDGE]);
    result
}
