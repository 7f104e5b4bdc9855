//! rkt's system tests: rkt against a real systemd, journald, D-Bus and (later) machined.
//!
//! When the host's PID 1 is systemd (a laptop, a VM), the tests use it, unless
//! `RKT_SYSTEST_SANDBOX=1`. Otherwise (as on the CI machines) the harness boots a throwaway
//! systemd as PID 1 in namespaces (`sandbox-boot.sh`) and runs each test's commands inside it
//! with `nsenter`. Needs root.
//!
//! Usage: rkt-systest [NAME-FILTER]    (env: RKT_BIN, RKT_TEST_IMAGES)
//! Prints one line per test and a last line `N passed, N failed[, N skipped]`.

use rkt_test_support::gpg;
use rkt_test_support::nginx;
mod sandbox;
mod tests;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use sandbox::Systemd;

/// What a test gets: the systemd to run commands against, and where rkt and its images are.
pub struct Ctx {
    pub systemd: Systemd,
    pub rkt: PathBuf,
    pub images: PathBuf,
    /// The source tree (units, scripts).
    pub checkout: PathBuf,
}

/// A test's verdict; `Err` explains the failure (or, from [`skip`], why it could not run).
pub type TestResult = Result<(), String>;

/// How a skip is told from a failure in a [`TestResult`].
const SKIPPED: &str = "skipped: ";

/// Ends a test that cannot run here, saying why. A skip is reported as such and fails the run:
/// `tests/run-all` installs everything the tests need, so a skip means something is missing.
pub fn skip(why: &str) -> TestResult {
    Err(format!("{SKIPPED}{why}"))
}

fn main() -> ExitCode {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let checkout = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let checkout = checkout.canonicalize().expect("checkout path");
    let rkt = std::env::var_os("RKT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| checkout.join("target/debug/rkt"));
    let images = std::env::var_os("RKT_TEST_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| checkout.join("target/test-images"));

    let selected: Vec<_> = tests::all()
        .into_iter()
        .filter(|(name, _)| name.contains(&filter))
        .collect();
    if selected.is_empty() {
        eprintln!("rkt-systest: no test matches {filter:?}");
        return ExitCode::FAILURE;
    }
    let started = Instant::now();
    let systemd = match Systemd::start(&checkout) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rkt-systest: cannot get a systemd to test against: {e}");
            println!("0 passed, {} failed", selected.len());
            return ExitCode::FAILURE;
        }
    };
    println!(
        "systemd: {} (ready in {:.2} s)",
        systemd.describe(),
        started.elapsed().as_secs_f64()
    );
    let ctx = Ctx {
        systemd,
        rkt,
        images,
        checkout,
    };
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (name, test) in selected {
        let t = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&ctx)))
            .unwrap_or_else(|_| Err("panicked".to_owned()));
        let secs = t.elapsed().as_secs_f64();
        match result {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({secs:.2} s)");
            }
            Err(why) if why.starts_with(SKIPPED) => {
                skipped += 1;
                println!(
                    "test {name} ... SKIPPED ({secs:.2} s): {}",
                    &why[SKIPPED.len()..]
                );
            }
            Err(why) => {
                failed += 1;
                println!(
                    "test {name} ... FAILED ({secs:.2} s)\n    {}",
                    why.replace('\n', "\n    ")
                );
            }
        }
    }
    drop(ctx);
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 && skipped == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
