//! One module per subcommand.

mod fetch;
mod image;

use anyhow::Result;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fetch(args) => fetch::run(&cli.global, &args),
        Command::Image(cmd) => image::run(&cli.global, cmd),
        Command::Version => {
            println!("rkt Version: {}", env!("CARGO_PKG_VERSION"));
            println!("appc Version: {}", rkt::schema::APPC_SPEC_VERSION);
            Ok(())
        }
    }
}
