use std::fs;
use std::path::{Path, PathBuf};

use crate::pod::{Pod, split_words};
use crate::{Report, generate};

fn run(files: &[(&str, &str)]) -> (tempfile::TempDir, Report) {
    let tmp = tempfile::tempdir().unwrap();
    let pods = tmp.path().join("pods");
    let out = tmp.path().join("out");
    fs::create_dir_all(&pods).unwrap();
    fs::create_dir_all(&out).unwrap();
    for (name, text) in files {
        fs::write(pods.join(name), text).unwrap();
    }
    let report = generate(&[pods], &out);
    (tmp, report)
}

fn unit(tmp: &Path, name: &str) -> String {
    fs::read_to_string(tmp.join("out").join(name)).unwrap()
}

const WEB: &str = "\
# a web server
[Unit]
Description=The web site
After=db.pod network.target
Requires=db.service

[Pod]
Network=default
Port=http:8080
Volume=data,kind=host,source=/srv/web

[App]
Image=example.com/web:1.0
Name=web
Memory=64M
Mount=volume=data,target=/data
Args=--listen :80 \"a b\"

[App]
Image=docker://busybox
Exec=/bin/sh
Args=-c 'echo $HOME; sleep 1'

[Service]
Restart=on-failure
RestartSec=5s

[Install]
WantedBy=multi-user.target
";

#[test]
fn a_pod_file_becomes_a_notify_unit_running_rkt_run() {
    let (tmp, report) = run(&[("web.pod", WEB)]);
    assert_eq!(report.made, ["web.service"]);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let text = unit(tmp.path(), "web.service");
    for expected in [
        "Description=The web site",
        "After=db.service network.target",
        "Requires=db.service",
        "Type=notify",
        "KillMode=mixed",
        "Restart=on-failure",
        "RestartSec=5s",
        "ExecStart=/usr/bin/rkt run --net=default --port=http:8080 \
         --volume=data,kind=host,source=/srv/web example.com/web:1.0 --name=web --memory=64M \
         --mount=volume=data,target=/data -- --listen :80 \"a b\" --- docker://busybox \
         --exec=/bin/sh -- -c \"echo $$HOME; sleep 1\" ---",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    let link = tmp.path().join("out/multi-user.target.wants/web.service");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        tmp.path().join("out/web.service")
    );
}

#[test]
fn a_bad_file_makes_no_unit_and_says_which_line() {
    let bad =
        "[Pod]\nImage=docker://busybox\nNetwrok=host\n[Install]\nWantedBy=multi-user.target\n";
    let (tmp, report) = run(&[
        ("bad.pod", bad),
        ("good.pod", "[Pod]\nImage=docker://busybox\n"),
    ]);
    assert_eq!(report.made, ["good.service"]);
    assert_eq!(report.failed.len(), 1);
    let (path, why) = &report.failed[0];
    assert!(path.ends_with("bad.pod"));
    assert!(
        why.starts_with("line 3: [Pod] Netwrok= is not a pod key"),
        "{why}"
    );
    let left: Vec<PathBuf> = fs::read_dir(tmp.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, [tmp.path().join("out/good.service")]);
}

#[test]
fn refusals() {
    let cases = [
        ("[Pod]\n", "no app"),
        ("Image=x\n", "line 1: Image= comes before any section"),
        (
            "[Pod]\nImage=x\n[Service]\nExecStart=/bin/true\n",
            "line 4: [Service] ExecStart= is the generator's",
        ),
        (
            "[Pod]\nImage=x\n[Service]\nType=simple\n",
            "line 4: [Service] Type= is the generator's",
        ),
        ("[Podd]\n", "line 1: unknown section [Podd]"),
        ("[App]\nName=a\n", "an [App] section (a) has no Image="),
        (
            "[App]\nImage=x\nImage=y\n",
            "line 3: an [App] has one Image=",
        ),
        (
            "[Pod]\nImage=x\nPrivateUsers=maybe\n",
            "line 3: PrivateUsers=maybe is not a boolean",
        ),
        (
            "[Pod]\nImage=x\nPodManifest=m.json\n",
            "PodManifest= describes the apps",
        ),
        ("[App]\nImage=x\nArgs=\"open\n", "line 3: unbalanced quote"),
        (
            "[Pod]\nImage=x\n[Install]\nAlias=y.service\n",
            "line 4: [Install] Alias= is not supported",
        ),
        (
            "[Pod]\nImage=x\nbroken line\n",
            "line 3: \"broken line\" is not Key=value",
        ),
    ];
    for (text, expected) in cases {
        let err = Pod::parse(text, Path::new("/etc/rkt/pods"), None).unwrap_err();
        assert!(err.starts_with(expected), "{text:?}: {err}");
    }
    let (_tmp, report) = run(&[("a@b.pod", "[Pod]\nImage=x\n")]);
    assert!(report.failed[0].1.contains("cannot be a unit's"));
}

#[test]
fn a_manifest_alone_or_named_runs_with_pod_manifest() {
    let (tmp, report) = run(&[
        ("solo.json", "{}"),
        (
            "named.pod",
            "[Pod]\nPodManifest=/srv/other.json\nNetwork=host\n",
        ),
        (
            "web.pod",
            "[Pod]\nNetwork=host\n[Service]\nRestart=always\n",
        ),
        ("web.json", "{}"),
    ]);
    assert_eq!(
        report.made,
        ["named.service", "solo.service", "web.service"]
    );
    let pods = tmp.path().join("pods");
    let expect = |unit_name: &str, exec: String| {
        let text = unit(tmp.path(), unit_name);
        assert!(
            text.contains(&format!("ExecStart=/usr/bin/rkt run {exec}\n")),
            "{text}"
        );
    };
    expect(
        "solo.service",
        format!("--pod-manifest={}/solo.json", pods.display()),
    );
    expect(
        "named.service",
        "--net=host --pod-manifest=/srv/other.json".to_owned(),
    );
    expect(
        "web.service",
        format!("--net=host --pod-manifest={}/web.json", pods.display()),
    );
}

#[test]
fn earlier_directories_win_and_pod_files_beat_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let (etc, lib, out) = (
        tmp.path().join("etc"),
        tmp.path().join("lib"),
        tmp.path().join("out"),
    );
    for d in [&etc, &lib, &out] {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(etc.join("a.pod"), "[Pod]\nImage=from-etc\n").unwrap();
    fs::write(etc.join("a.json"), "{}").unwrap();
    fs::write(lib.join("a.pod"), "[Pod]\nImage=from-lib\n").unwrap();
    fs::write(lib.join("b.pod"), "[Pod]\nImage=only-lib\n").unwrap();
    let report = generate(&[etc, lib], &out);
    assert_eq!(report.made, ["a.service", "b.service"]);
    assert!(
        fs::read_to_string(out.join("a.service"))
            .unwrap()
            .contains("run from-etc\n")
    );
}

#[test]
fn words_split_like_systemd() {
    assert_eq!(
        split_words(r#"a "b c" 'd "e"' f\ g"#).unwrap(),
        ["a", "b c", "d \"e\"", "f g"]
    );
}
