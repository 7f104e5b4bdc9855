//! rkt's stage1. systemd starts it as the pod's own unit (`rkt-<uuid>.service`, Type=notify):
//!
//! 1. take the prepared pod (lock it and move it to `run/`; the lock is held until we exit, which
//!    is what "running" means to every other rkt command);
//! 2. build the stage1 root and mount each app's root filesystem as an overlay;
//! 3. run systemd-nspawn booting the host's systemd to the lean pod target, registered with
//!    machined under this unit, and wait for it to be ready;
//! 4. start each app as a transient unit inside the pod, tell systemd we are ready;
//! 5. when the apps have exited (or we are asked to stop), record their exit statuses, shut the
//!    pod down, unmount, and exit with the first non-zero app status.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use rkt_runtime::{PodRuntime, connect_pod_bus, journal_streams};

/// rkt's own failures, as in stage0.
const EXIT_FAILURE: u8 = 254;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--version") {
        println!("rkt-stage1 {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let (dir, uuid) = match args.as_slice() {
        [flag, dir, uuid] if flag == "--dir" => (PathBuf::from(dir), uuid.clone()),
        [flag, leader] if flag == "--connect-pod-bus" => {
            return match connect_pod_bus(leader).map_err(anyhow::Error::from) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rkt-stage1: {e:#}");
                    ExitCode::from(EXIT_FAILURE)
                }
            };
        }
        [flag, leader, apps @ ..] if flag == "--journal-streams" => {
            return match journal_streams(leader, apps).map_err(anyhow::Error::from) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rkt-stage1: {e:#}");
                    ExitCode::from(EXIT_FAILURE)
                }
            };
        }
        _ => {
            eprintln!("usage: rkt-stage1 --dir DIR UUID (started by `rkt run` as the pod's unit)");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    // Warnings go to stderr, which systemd gives to the journal of the pod's unit.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_level(false)
        .with_ansi(false)
        .init();
    match run(&dir, &uuid) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rkt-stage1: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn run(dir: &Path, uuid: &str) -> Result<u8> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    let uuid = rkt_pod::PodUuid::parse(uuid)?;
    let me = std::env::current_exe().context("finding rkt-stage1's own path")?;
    Ok(PodRuntime::new(dir, &me).run(&uuid, &stop)?)
}
