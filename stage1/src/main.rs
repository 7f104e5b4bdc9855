//! rkt's stage1: systemd starts it as the pod's own unit (`rkt-<uuid>.service`) and it runs the
//! pod under systemd-nspawn. Pods arrive with the pods issue; until then this binary only says
//! so, and fails, so that nothing mistakes it for a working stage1.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    if matches!(arg.as_deref(), Some("--version")) {
        println!("rkt-stage1 {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    eprintln!("rkt-stage1: running pods is not implemented yet (this build only stores images)");
    ExitCode::from(254)
}
