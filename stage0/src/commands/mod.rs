//! One module per subcommand.

mod fetch;
mod image;
mod pods;

use anyhow::Result;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fetch(args) => fetch::run(&cli.global, &args),
        Command::Image(cmd) => image::run(&cli.global, cmd),
        Command::Prepare(args) => pods::prepare(&cli.global, &args),
        Command::List(args) => pods::list(&cli.global, &args),
        Command::Status(args) => pods::status(&cli.global, &args),
        Command::CatManifest(args) => pods::cat_manifest(&cli.global, &args),
        Command::Rm(args) => pods::rm(&cli.global, &args),
        Command::Gc(args) => pods::gc(&cli.global, &args),
        Command::Version => {
            println!("rkt Version: {}", env!("CARGO_PKG_VERSION"));
            println!("appc Version: {}", rkt::schema::APPC_SPEC_VERSION);
            Ok(())
        }
    }
}
