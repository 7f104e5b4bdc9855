//! `rkt completion SHELL`: shell completions, and (for the package build) the manual pages,
//! both made from the clap definitions so they never drift from `--help`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  source <(rkt completion bash)
  rkt completion zsh >\"${fpath[1]}/_rkt\"
  rkt completion fish >~/.config/fish/completions/rkt.fish

The package installs them where each shell looks (bash-completion, zsh's site-functions,
fish's vendor_completions.d).")]
pub struct CompletionArgs {
    /// The shell to print completions for
    #[arg(required_unless_present = "man_pages")]
    shell: Option<Shell>,
    /// Write the manual pages (rkt.1, rkt-run.1, rkt-app-add.1…) into DIR instead
    #[arg(long, value_name = "DIR", hide = true, conflicts_with = "shell")]
    man_pages: Option<PathBuf>,
}

pub fn run(args: &CompletionArgs) -> Result<()> {
    if let Some(dir) = &args.man_pages {
        return man_pages(dir);
    }
    let shell = args.shell.context("no shell named")?;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "rkt", &mut out);
    std::io::stdout()
        .write_all(&out)
        .context("writing the completions")
}

/// Writes one page per command: `rkt.1`, then `rkt-SUB.1` for each subcommand, nested ones
/// joined with `-` (`rkt-image-list.1`).
fn man_pages(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cli = Cli::command();
    // Global options are copied into each subcommand, so every page lists them.
    cli.build();
    write_page(&cli, "rkt", dir)
}

fn write_page(cmd: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    // clap takes names as &'static str; this runs once, in a process that then exits.
    let static_name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    let page = cmd.clone().name(static_name);
    let mut text = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut text)
        .context("rendering a manual page")?;
    let path = dir.join(format!("{name}.1"));
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        write_page(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
