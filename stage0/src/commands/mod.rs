//! One module per subcommand.

mod apps;
pub mod completion;
mod config;
mod export;
mod fetch;
mod image;
pub mod metadata;
mod pods;
mod run;
pub mod trust;

pub use pods::ENV_FILE_LIMIT;

use anyhow::Result;

use crate::cli::{Cli, Command};

/// Runs the command; `Ok(code)` is the exit status (an app's, for `rkt run`).
pub fn run(cli: Cli) -> Result<u8> {
    if !matches!(
        cli.command,
        Command::Version | Command::Completion(_) | Command::Trust(_) | Command::MetadataService(_)
    ) {
        check_store_access(&cli.global.dir)?;
    }
    let done = match cli.command {
        Command::Run(args) => return run::run(&cli.global, &args),
        Command::RunPrepared(args) => return run::run_prepared(&cli.global, &args),
        Command::Stop(args) => return run::stop(&cli.global, &args),
        Command::Enter(args) => return run::enter(&cli.global, &args),
        Command::Fetch(args) => fetch::run(&cli.global, &args),
        Command::Image(cmd) => image::run(&cli.global, cmd),
        Command::Prepare(args) => pods::prepare(&cli.global, &args),
        Command::List(args) => pods::list(&cli.global, &args),
        Command::Status(args) => pods::status(&cli.global, &args),
        Command::CatManifest(args) => pods::cat_manifest(&cli.global, &args),
        Command::Rm(args) => pods::rm(&cli.global, &args),
        Command::Gc(args) => pods::gc(&cli.global, &args),
        Command::Trust(args) => trust::run(&cli.global, &args),
        Command::MetadataService(args) => metadata::run(&cli.global, &args),
        Command::App(cmd) => return apps::run(&cli.global, cmd),
        Command::Config(args) => config::run(&cli.global, &args),
        Command::Export(args) => export::run(&cli.global, &args),
        Command::Completion(args) => completion::run(&args),
        Command::Version => {
            println!("rkt Version: {}", env!("CARGO_PKG_VERSION"));
            println!("appc Version: {}", rkt_schema::APPC_SPEC_VERSION);
            Ok(())
        }
    };
    done.map(|()| 0)
}

/// A user who may not enter the store is told so in one line, rather than with the first
/// directory that refused (the packaged store is open to root and the rkt group).
fn check_store_access(dir: &std::path::Path) -> Result<()> {
    use rustix::fs::{Access, access};
    if rustix::process::geteuid().is_root() {
        return Ok(());
    }
    match access(dir, Access::READ_OK | Access::EXEC_OK) {
        Err(rustix::io::Errno::ACCESS) => anyhow::bail!(
            "permission denied: {} is open only to root and the rkt group (whose members may \
             run rkt list, status, image list and cat-manifest)",
            dir.display()
        ),
        _ => Ok(()),
    }
}
