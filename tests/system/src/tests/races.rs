//! Races and crashes: many pods at once while gc runs, and stage1 killed at any point of a
//! pod's start and life. Afterwards nothing of the pods may be left on the host: no mounts,
//! units, machines, network namespaces, links, iptables rules, address leases or temporary
//! files. Bounded: a few rounds and tries, each waited on with a deadline.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{PodTest, check, wait_for};
use crate::{Ctx, TestResult};

pub(crate) const TESTS: &[(&str, super::Test)] = &[
    (
        "concurrent_runs_under_gc_keep_their_status_and_leave_nothing",
        concurrent_runs_under_gc_keep_their_status_and_leave_nothing,
    ),
    (
        "a_stage1_killed_anywhere_leaves_nothing_after_gc",
        a_stage1_killed_anywhere_leaves_nothing_after_gc,
    ),
    (
        "a_pod_outlives_a_killed_rkt_run_and_is_collected_after",
        a_pod_outlives_a_killed_rkt_run_and_is_collected_after,
    ),
    (
        "a_uuid_file_rkt_run_cannot_write_leaves_no_pod",
        a_uuid_file_rkt_run_cannot_write_leaves_no_pod,
    ),
];

/// How a command ended (`None` when it had to be killed) and what it said on stderr.
struct Ran {
    status: Option<i32>,
    stderr: String,
}

/// Waits for `child` at most `secs` seconds (then kills it), with its output.
fn finish(mut child: Child, secs: u64) -> Ran {
    let mut stderr = child.stderr.take();
    // Read on a thread: a child blocked on a full pipe would never end.
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Ran {
        status,
        stderr: err.join().unwrap_or_default(),
    }
}

/// `rkt ARGS` started inside the systemd, its stderr captured.
fn spawn_rkt(t: &PodTest, args: &[&str]) -> Result<Child, String> {
    let all = t.args(args);
    t.ctx
        .systemd
        .command(all[0])
        .args(&all[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {args:?}: {e}"))
}

fn out(t: &PodTest, args: &[&str]) -> String {
    t.ctx
        .systemd
        .run(args)
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// What of the host's network exists before the pods: links and network namespaces that
/// are not the pods' to remove.
struct Before {
    links: BTreeSet<String>,
    netns: BTreeSet<String>,
}

fn links(t: &PodTest) -> BTreeSet<String> {
    // "3: veth1234@if2: <...>": the name, without the peer.
    out(t, &["ip", "-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect()
}

fn net_namespaces(t: &PodTest) -> BTreeSet<String> {
    out(
        t,
        &["lsns", "--type", "net", "--noheadings", "--output", "NS"],
    )
    .lines()
    .map(|l| l.trim().to_owned())
    .filter(|l| !l.is_empty())
    .collect()
}

fn before(t: &PodTest) -> Before {
    Before {
        links: links(t),
        netns: net_namespaces(t),
    }
}

/// The state of a pod's unit, "" once it is not loaded.
fn unit_state(t: &PodTest, uuid: &str) -> String {
    out(
        t,
        &[
            "systemctl",
            "show",
            "--property=ActiveState",
            "--value",
            &format!("rkt-{uuid}.service"),
        ],
    )
    .trim()
    .to_owned()
}

/// Waits (bounded) until none of the pods' units is still running or stopping.
fn wait_units_down(t: &PodTest, uuids: &[String]) -> TestResult {
    let up = || {
        uuids
            .iter()
            .filter(|u| {
                matches!(
                    unit_state(t, u).as_str(),
                    "active" | "activating" | "deactivating" | "reloading"
                )
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    check(wait_for(60, || up().is_empty()), || {
        format!("pod units still up: {:?}", up())
    })
}

/// Nothing of the pods `uuids` is left after gc: no pod, mount, unit, machine, network
/// namespace, link (beyond those there before), iptables rule, lease or temporary file.
fn nothing_left(t: &PodTest, uuids: &[String], before: &Before) -> TestResult {
    let mut left = Vec::new();
    let pods = t.ok(&["list", "--no-legend"])?;
    if !pods.trim().is_empty() {
        left.push(format!("pods:\n{pods}"));
    }
    let mounts: Vec<String> = out(t, &["findmnt", "--list", "--noheadings", "-o", "TARGET"])
        .lines()
        .filter(|m| m.starts_with(&t.dir))
        .map(str::to_owned)
        .collect();
    if !mounts.is_empty() {
        left.push(format!("mounts: {mounts:?}"));
    }
    let units = out(
        t,
        &[
            "systemctl",
            "list-units",
            "--all",
            "--no-legend",
            "--plain",
            "rkt-*",
        ],
    );
    let units: Vec<&str> = units
        .lines()
        .filter(|l| uuids.iter().any(|u| l.contains(u.as_str())))
        .collect();
    if !units.is_empty() {
        left.push(format!("units: {units:?}"));
    }
    let machines = out(t, &["machinectl", "list", "--no-legend"]);
    let machines: Vec<&str> = machines
        .lines()
        .filter(|l| uuids.iter().any(|u| l.contains(u.as_str())))
        .collect();
    if !machines.is_empty() {
        left.push(format!("machines: {machines:?}"));
    }
    let netns: Vec<String> = net_namespaces(t)
        .difference(&before.netns)
        .cloned()
        .collect();
    if !netns.is_empty() {
        left.push(format!(
            "network namespaces: {netns:?}\n{}",
            out(t, &["lsns", "--type", "net"])
        ));
    }
    let links: Vec<String> = links(t).difference(&before.links).cloned().collect();
    if !links.is_empty() {
        left.push(format!("links: {links:?}"));
    }
    let rules: Vec<String> = ["nat", "filter"]
        .iter()
        .flat_map(|table| {
            out(t, &["iptables", "-w", "-t", table, "-S"])
                .lines()
                .filter(|l| uuids.iter().any(|u| l.contains(u.as_str())))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    if !rules.is_empty() {
        left.push(format!("iptables rules: {rules:?}"));
    }
    // host-local keeps one file per leased address, named by the address.
    let leases: Vec<String> = out(t, &["ls", &format!("{}/net/ipam/default", t.dir)])
        .lines()
        .filter(|f| f.parse::<std::net::IpAddr>().is_ok())
        .map(str::to_owned)
        .collect();
    if !leases.is_empty() {
        left.push(format!("leases: {leases:?}"));
    }
    let temps = out(t, &["ls", "-A", &format!("{}/cas/tmp", t.dir)]);
    if !temps.trim().is_empty() {
        left.push(format!("store temporaries: {temps}"));
    }
    check(left.is_empty(), || {
        format!("left after gc:\n{}", left.join("\n"))
    })
}

/// Output of anything that panicked, for the failure message.
fn panics(outputs: &[String]) -> Vec<String> {
    outputs
        .iter()
        .filter(|o| o.contains("panicked"))
        .cloned()
        .collect()
}

/// 3 rounds of 20 `rkt run` at once, half on the default network, apps exiting 7 or 0, while
/// `rkt gc --grace-period=0s` and `rkt image gc` run over and over: every `rkt run` exits
/// with its app's status, nothing panics (stage0, stage1 or gc), and after a last gc nothing
/// of the 60 pods is left.
fn concurrent_runs_under_gc_keep_their_status_and_leave_nothing(ctx: &Ctx) -> TestResult {
    const ROUNDS: usize = 3;
    const PODS: usize = 20;
    let t = PodTest::new(ctx)?;
    let before = before(&t);
    let (exit7, exit0) = (t.image("inspect-exit7"), t.image("inspect-print"));
    // Stored once, so that the rounds race over pods rather than imports.
    t.ok(&["fetch", &exit7])?;
    t.ok(&["fetch", &exit0])?;
    let done = AtomicBool::new(false);
    let collector_output = Mutex::new(Vec::<String>::new());
    let mut failures = Vec::new();
    let mut uuids = Vec::new();
    let mut outputs = Vec::new();
    std::thread::scope(|s| {
        for gc in [&["gc", "--grace-period=0s"][..], &["image", "gc"][..]] {
            let (done, collector_output, t) = (&done, &collector_output, &t);
            s.spawn(move || {
                // Bounded even if the runs hang: they are killed after 180 s each.
                let deadline = Instant::now() + Duration::from_secs(900);
                while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                    if let Ok(child) = spawn_rkt(t, gc) {
                        let ran = finish(child, 60);
                        let mut seen = collector_output.lock().unwrap();
                        if ran.status != Some(0) {
                            seen.push(format!(
                                "rkt {gc:?} exited {:?}: {}",
                                ran.status, ran.stderr
                            ));
                        }
                        seen.push(ran.stderr);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
        for round in 0..ROUNDS {
            let mut runs = Vec::new();
            for i in 0..PODS {
                let (image, want) = match i % 4 {
                    0 | 1 => (&exit7, 7),
                    _ => (&exit0, 0),
                };
                let net = if i % 2 == 0 {
                    "--net=default"
                } else {
                    "--net=none"
                };
                let uuid_file = format!("{}/uuid-{round}-{i}", t.dir);
                let child = spawn_rkt(
                    &t,
                    &["run", net, "--uuid-file-save", &uuid_file, image.as_str()],
                );
                runs.push((uuid_file, want, net, child));
            }
            for (uuid_file, want, net, child) in runs {
                let ran = match child {
                    Ok(child) => finish(child, 180),
                    Err(e) => {
                        failures.push(e);
                        continue;
                    }
                };
                let uuid = out(&t, &["cat", &uuid_file]).trim().to_owned();
                if ran.status != Some(want) {
                    // The pod's unit says why stage1 gave up: the sandbox is gone after the run.
                    let unit_log = t.journal(&["-u", &format!("rkt-{uuid}.service")]);
                    failures.push(format!(
                        "round {round}: rkt run {net} of pod {uuid} exited {:?}, its app {want}: {}\n{unit_log}",
                        ran.status,
                        ran.stderr.trim()
                    ));
                }
                if !uuid.is_empty() {
                    uuids.push(uuid);
                }
                outputs.push(ran.stderr);
            }
        }
        done.store(true, Ordering::Relaxed);
    });
    outputs.extend(collector_output.into_inner().unwrap_or_default());
    for uuid in &uuids {
        outputs.push(t.journal(&["-u", &format!("rkt-{uuid}.service")]));
    }
    let panicked = panics(&outputs);
    check(panicked.is_empty(), || {
        format!("panics:\n{}", panicked.join("\n---\n"))
    })?;
    check(failures.is_empty(), || failures.join("\n"))?;
    check(uuids.len() == ROUNDS * PODS, || {
        format!("{} UUIDs saved of {}", uuids.len(), ROUNDS * PODS)
    })?;
    wait_units_down(&t, &uuids)?;
    t.ok(&["gc", "--grace-period=0s"])?;
    nothing_left(&t, &uuids, &before)?;
    t.ctx.systemd.ok(&["rm", "-rf", &t.dir]).map(|_| ())
}

/// The host PID of the first process whose command line (its arguments, empty ones left out)
/// `matches`.
fn find_process(matches: impl Fn(&[&[u8]]) -> bool) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .collect();
            matches(&args).then_some(pid)
        })
}

/// The host PID of the pod's stage1, found from this side (asking systemd for the unit's
/// main PID takes longer than stage1 needs to reach its network's ADD).
fn stage1_pid(uuid: &str) -> Option<u32> {
    find_process(|args| {
        args.first().is_some_and(|p| p.ends_with(b"/rkt-stage1"))
            && args.last() == Some(&uuid.as_bytes())
    })
}

/// When a try of the crash test kills stage1.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// This long after stage1 started.
    Delay(u64),
    /// As soon as the pod's address is leased: ADD has begun and not yet told stage1 what it
    /// did (the lease is host-local's first step; the pod's link and the port forwarding
    /// follow).
    Leased,
}

/// The addresses leased on the default network of `t`'s store, as the test sees them.
fn leases(t: &PodTest) -> BTreeSet<String> {
    let dir = t
        .ctx
        .systemd
        .outside_path(&format!("{}/net/ipam/default", t.dir));
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter(|f| f.parse::<std::net::IpAddr>().is_ok())
                .collect()
        })
        .unwrap_or_default()
}

/// stage1 (the pod unit's main process) killed with SIGKILL at points through the pod's
/// start (before, during and after its network's ADD, nspawn booting, apps starting) and
/// while it runs, on the default network: `rkt run` fails as rkt (254), never with a status
/// the app did not give, and after `rkt gc` nothing is left, address leases included.
fn a_stage1_killed_anywhere_leaves_nothing_after_gc(ctx: &Ctx) -> TestResult {
    // The pod is up in about a second; its ADD comes after its roots are mounted.
    const TRIES: [KillAt; 13] = [
        KillAt::Delay(0),
        KillAt::Leased,
        KillAt::Delay(20),
        KillAt::Delay(50),
        KillAt::Leased,
        KillAt::Delay(100),
        KillAt::Delay(150),
        KillAt::Leased,
        KillAt::Delay(250),
        KillAt::Delay(400),
        KillAt::Delay(600),
        KillAt::Delay(900),
        KillAt::Delay(1500),
    ];
    let t = PodTest::new(ctx)?;
    let before = before(&t);
    let image = t.image("inspect-sleep");
    t.ok(&["fetch", &image])?;
    let mut uuids = Vec::new();
    let mut outputs = Vec::new();
    let mut killed_in_add = 0;
    for (try_no, kill_at) in TRIES.iter().enumerate() {
        let leased_before = leases(&t);
        let uuid_file = format!("{}/uuid-{try_no}", t.dir);
        let child = spawn_rkt(
            &t,
            &[
                "run",
                "--net=default",
                "--uuid-file-save",
                &uuid_file,
                &image,
            ],
        )?;
        // Both polled tightly from this side: stage1 reaches its network's ADD some 30 ms after
        // it starts, and the delays count from its start.
        let deadline = Instant::now() + Duration::from_secs(30);
        let saved = t.ctx.systemd.outside_path(&uuid_file);
        let mut uuid = String::new();
        while uuid.is_empty() && Instant::now() < deadline {
            uuid = std::fs::read_to_string(&saved)
                .map(|s| s.trim().to_owned())
                .unwrap_or_default();
            std::thread::sleep(Duration::from_micros(200));
        }
        let uuid_seen = !uuid.is_empty();
        let mut pid = None;
        while uuid_seen && pid.is_none() && Instant::now() < deadline {
            pid = stage1_pid(&uuid);
        }
        if let Some(pid) = pid {
            match kill_at {
                KillAt::Delay(ms) => std::thread::sleep(Duration::from_millis(*ms)),
                KillAt::Leased => {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    while leases(&t).is_subset(&leased_before) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            }
            // Directly, not through kill(1): the window after a lease is a few milliseconds.
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).ok_or("PID 0")?,
                rustix::process::Signal::KILL,
            );
            // Whether the kill came while the pod's address was taken but ADD's result not yet
            // recorded: the window this kind of try is for.
            let net = out(&t, &["cat", &format!("{}/pods/run/{uuid}/net.json", t.dir)]);
            if matches!(kill_at, KillAt::Leased) && !net.contains("\"result\"") {
                killed_in_add += 1;
            }
        }
        let ran = finish(child, 60);
        check(uuid_seen && pid.is_some(), || {
            format!(
                "try {try_no}: the pod's stage1 never ran: rkt run exited {:?}: {}",
                ran.status, ran.stderr
            )
        })?;
        // Killed before it said READY=1, the unit did not start; killed after, the pod ended
        // early: rkt's own failure either way.
        check(ran.status == Some(254), || {
            format!(
                "try {try_no} (kill at {kill_at:?}): rkt run exited {:?}: {}",
                ran.status, ran.stderr
            )
        })?;
        outputs.push(ran.stderr);
        uuids.push(uuid);
    }
    check(killed_in_add > 0, || {
        "no kill came between a pod's lease and ADD's result: the test proves nothing there".into()
    })?;
    check(!leases(&t).is_empty(), || {
        "the killed pods hold no address before gc: the test proves nothing about leases".into()
    })?;
    wait_units_down(&t, &uuids)?;
    let gc = t.rkt(&["gc", "--grace-period=0s"])?;
    outputs.push(String::from_utf8_lossy(&gc.stderr).into_owned());
    for uuid in &uuids {
        outputs.push(t.journal(&["-u", &format!("rkt-{uuid}.service")]));
    }
    let panicked = panics(&outputs);
    check(panicked.is_empty(), || {
        format!("panics:\n{}", panicked.join("\n---\n"))
    })?;
    // Each pod's own record freed its address: none was left for the sweep of addresses
    // whose pod is gone (which would hide a record that came too late).
    let gc_said = String::from_utf8_lossy(&gc.stdout);
    check(!gc_said.contains("released address"), || {
        format!("addresses freed only as leftovers: {gc_said}")
    })?;
    check(gc.status.success(), || {
        format!("rkt gc: {}", String::from_utf8_lossy(&gc.stderr))
    })?;
    nothing_left(&t, &uuids, &before)?;
    t.ctx.systemd.ok(&["rm", "-rf", &t.dir]).map(|_| ())
}

/// The host PID of the `rkt run` that saves its pod's UUID to `uuid_file`.
fn rkt_run_pid(uuid_file: &str) -> Option<u32> {
    find_process(|args| {
        args.first().is_some_and(|p| p.ends_with(b"/rkt"))
            && args.contains(&b"run".as_slice())
            && args.contains(&uuid_file.as_bytes())
    })
}

/// `rkt run` holds its pod only while it lives: killed (SIGKILL, nothing to clean up), its
/// pod, which systemd runs, goes on; stopped later, the pod is collected by gc like any other.
fn a_pod_outlives_a_killed_rkt_run_and_is_collected_after(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let (mut child, uuid, _machine) = t.spawn_sleeper()?;
    let result = (|| {
        let pid = rkt_run_pid(&t.uuid_file()).ok_or("no rkt run process found")?;
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).ok_or("PID 0")?,
            rustix::process::Signal::KILL,
        )
        .map_err(|e| format!("killing rkt run: {e}"))?;
        check(
            wait_for(30, || matches!(child.try_wait(), Ok(Some(_)))),
            || "the killed rkt run did not end".into(),
        )?;
        let status = t.ok(&["status", &uuid])?;
        check(status.contains("state=running"), || {
            format!("the pod did not outlive its rkt run: {status}")
        })?;
        t.ok(&["stop", &uuid])?;
        check(
            wait_for(30, || {
                t.ok(&["status", &uuid])
                    .is_ok_and(|s| s.contains("state=exited"))
            }),
            || "the pod did not exit after rkt stop".into(),
        )?;
        let gc = t.ok(&["gc", "--grace-period=0s"])?;
        check(gc.contains(&format!("removed {uuid}")), || {
            format!("gc kept the pod its killed rkt run watched: {gc}")
        })?;
        t.gc_leaves_nothing(&uuid)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// `rkt run --uuid-file-save` to a file that cannot be written fails with one line, before
/// any pod is made (none is left for gc to keep for a day).
fn a_uuid_file_rkt_run_cannot_write_leaves_no_pod(ctx: &Ctx) -> TestResult {
    let t = PodTest::new(ctx)?;
    let out = t.rkt(&[
        "run",
        "--uuid-file-save",
        "/nonexistent/dir/uuid",
        &t.image("inspect-print"),
    ])?;
    let err = String::from_utf8_lossy(&out.stderr);
    check(
        out.status.code() == Some(254) && err.lines().count() == 1,
        || format!("rkt run exited {}: {err}", out.status),
    )?;
    let pods = t.ok(&["list", "--no-legend"])?;
    check(pods.trim().is_empty(), || format!("pods left: {pods}"))?;
    t.ctx.systemd.ok(&["rm", "-rf", &t.dir]).map(|_| ())
}
