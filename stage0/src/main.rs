//! `rkt`, the stage0 command: fetches, verifies and stores images (and, later, prepares pods and
//! hands them to systemd). A thin shell over the `rkt` library: parse, dispatch, report.
#![forbid(unsafe_code)]

mod app_args;
mod cli;
mod commands;
mod handoff;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

/// rkt's own failures exit with 254, so they are never mistaken for an app's exit status.
const EXIT_FAILURE: u8 = 254;

fn main() -> ExitCode {
    let (argv, per_app) =
        match app_args::split_app_options(std::env::args().collect(), cli::Cli::option_takes_value)
        {
            Ok(split) => split,
            Err(e) => {
                eprintln!("rkt: {e:#}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
    let mut cli = match cli::Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(EXIT_FAILURE);
        }
        Err(e) => {
            // A usage error: one line, like every other rkt failure.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("rkt: {first} (see 'rkt --help')");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match &mut cli.command {
        cli::Command::Run(args) => args.spec.app_overrides = per_app,
        cli::Command::Prepare(args) => args.spec.app_overrides = per_app,
        cli::Command::App(cli::AppCommand::Add(args)) => {
            *args.app_overrides = per_app.into_iter().next().unwrap_or_default()
        }
        _ => {}
    }
    init_logging(cli.global.debug);
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rkt: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn init_logging(debug: bool) {
    let level = if debug { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RKT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .init();
}
