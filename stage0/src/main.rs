//! `rkt`, the stage0 command: fetches, verifies and stores images (and, later, prepares pods and
//! hands them to systemd). A thin shell over the `rkt` library: parse, dispatch, report.
#![forbid(unsafe_code)]

mod app_args;
mod app_output;
mod cli;
mod commands;
mod compat;
mod handoff;
mod input;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

/// rkt's own failures exit with 254, so they are never mistaken for an app's exit status.
const EXIT_FAILURE: u8 = 254;

fn main() -> ExitCode {
    let argv = match utf8_args() {
        Ok(argv) => argv,
        Err(line) => {
            eprintln!("rkt: {}", one_line(&line));
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let (argv, per_app) = match original_command_line(argv) {
        Ok(split) => split,
        Err(e) => {
            eprintln!("rkt: {}", one_line(&format!("{e:#}")));
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
            eprintln!("rkt: {} (see 'rkt --help')", usage_line(&e));
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
            eprintln!("rkt: {}", one_line(&format!("{e:#}")));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// The command line in the forms the original rkt accepted, made into what clap reads, with
/// the per-app options of `run`/`prepare`/`app add` taken out.
fn original_command_line(argv: Vec<String>) -> anyhow::Result<(Vec<String>, app_args::PerApp)> {
    use clap::CommandFactory;
    let root = cli::Cli::command();
    let argv = compat::subcommand_options_after_name(argv, &root)?;
    let (argv, per_app) = app_args::split_app_options(argv, cli::Cli::option_takes_value)?;
    Ok((compat::boolean_values(argv, &root)?, per_app))
}

/// The command line as UTF-8 (paths and names rkt handles are UTF-8); an argument that is
/// not is refused, shown escaped.
fn utf8_args() -> Result<Vec<String>, String> {
    std::env::args_os()
        .map(|arg| {
            arg.into_string().map_err(|bad| {
                format!(
                    "argument {} is not valid UTF-8; rkt takes UTF-8 names and paths",
                    rkt_common::excerpt::excerpt(&bad.to_string_lossy())
                )
            })
        })
        .collect()
}

/// The first line of clap's message, with the values it quotes from the command line escaped
/// and cut short: a value holding a newline would end the line early, a huge one would fill
/// the screen.
fn usage_line(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let value = |kind| match e.get(kind) {
        Some(ContextValue::String(text)) => Some(text.as_str()),
        _ => None,
    };
    // clap drops what looks like a terminal escape from its message, value and all: say the
    // value escaped instead.
    if let (ErrorKind::InvalidValue | ErrorKind::ValueValidation, Some(bad), Some(arg)) = (
        e.kind(),
        value(ContextKind::InvalidValue),
        value(ContextKind::InvalidArg),
    ) && bad.contains('\u{1b}')
    {
        let why = std::error::Error::source(e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        return one_line(&format!(
            "invalid value '{}' for '{arg}'{why}",
            rkt_common::excerpt::escaped(bad)
        ));
    }
    let mut rendered = e.render().to_string();
    for (_, value) in e.context() {
        if let ContextValue::String(text) = value {
            let shown = rkt_common::excerpt::escaped(text);
            if shown != *text {
                rendered = rendered.replace(text.as_str(), &shown);
            }
        }
    }
    // The message runs to the first blank line: "required arguments were not provided:" has
    // them on the lines after it.
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    one_line(message.strip_prefix("error: ").unwrap_or(&message))
}

/// An error as one line of reasonable length, whatever it quotes: control characters are
/// escaped and any word longer than [`LONG_WORD`] characters (a path or value from the command
/// line, say) is cut.
fn one_line(message: &str) -> String {
    const LONG_WORD: usize = 256;
    message
        .split(' ')
        .map(|word| {
            let cut: String = word.chars().take(LONG_WORD).collect();
            let mut word: String = if cut.len() < word.len() {
                cut + "…"
            } else {
                cut
            };
            if word.chars().any(char::is_control) {
                word = word
                    .chars()
                    .flat_map(|c| {
                        let escaped: Vec<char> = if c.is_control() {
                            c.escape_debug().collect()
                        } else {
                            vec![c]
                        };
                        escaped
                    })
                    .collect();
            }
            word
        })
        .collect::<Vec<_>>()
        .join(" ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line_of_reasonable_length() {
        assert_eq!(one_line("reading x: gone"), "reading x: gone");
        assert_eq!(one_line("a\nb\tc"), "a\\nb\\tc");
        let long = format!("reading {}: File name too long", "a".repeat(100_000));
        let line = one_line(&long);
        assert!(
            line.len() < 300 && line.ends_with("… File name too long"),
            "{line}"
        );
    }
}
