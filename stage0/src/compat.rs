//! Command lines as the original rkt's parser (cobra and pflag) read them, rewritten into
//! the form clap reads:
//!
//! - a subcommand may be named by a unique prefix (`rkt ver`), as cobra's prefix matching
//!   allowed;
//! - a subcommand's own options may come before its name (`rkt --net=host run IMAGE`): cobra
//!   parsed every option left of the subcommand with the subcommand's flags. As in cobra, an
//!   option given there as `--name VALUE` takes the next word as its value, so a boolean
//!   option there must be written `--name=true`;
//! - a boolean option takes a value as Go's flag package reads it (`--mark-only=false`,
//!   `--debug=1`, `--no-overlay=TRUE`), and when repeated the last one wins.

use anyhow::{Result, anyhow, bail};
use clap::{ArgAction, Command};

/// Go's `strconv.ParseBool`: what pflag accepts as a boolean flag's value.
pub fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The long names of `cmd`'s options, by how they take values.
struct Options {
    /// Flags (`--debug`): present or not.
    flags: Vec<String>,
    /// Boolean options that take `=true|false` in clap as well (`--pretty-print`).
    valued_bools: Vec<String>,
    /// Options that take a value.
    valued: Vec<String>,
}

impl Options {
    fn of<'a>(args: impl Iterator<Item = &'a clap::Arg>) -> Options {
        let mut options = Options {
            flags: Vec::new(),
            valued_bools: Vec::new(),
            valued: Vec::new(),
        };
        for arg in args {
            let Some(long) = arg.get_long() else { continue };
            let mut names: Vec<String> = vec![long.to_owned()];
            names.extend(
                arg.get_all_aliases()
                    .unwrap_or_default()
                    .into_iter()
                    .map(String::from),
            );
            let bool_values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_owned())
                .collect();
            let list = match arg.get_action() {
                ArgAction::SetTrue | ArgAction::SetFalse => &mut options.flags,
                ArgAction::Set if bool_values == ["true", "false"] => &mut options.valued_bools,
                action if action.takes_values() => &mut options.valued,
                _ => continue,
            };
            list.extend(names);
        }
        options
    }

    fn is_flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    fn is_valued_bool(&self, name: &str) -> bool {
        self.valued_bools.iter().any(|f| f == name)
    }

    fn takes_value(&self, name: &str) -> bool {
        self.valued.iter().any(|f| f == name)
    }
}

/// The subcommand of `cmd` that `word` names, exactly or by a unique prefix.
fn find_subcommand<'a>(cmd: &'a Command, word: &str) -> Option<&'a Command> {
    if let Some(exact) = cmd.find_subcommand(word) {
        return Some(exact);
    }
    let mut matches = cmd
        .get_subcommands()
        .filter(|s| !word.is_empty() && s.get_name().starts_with(word));
    match (matches.next(), matches.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// Moves the options given before the subcommand's name after it, and names the subcommand
/// in full. Global options stay where they are.
pub fn subcommand_options_after_name(argv: Vec<String>, root: &Command) -> Result<Vec<String>> {
    let globals = Options::of(root.get_arguments());
    let mut out = Vec::with_capacity(argv.len());
    let mut early: Vec<String> = Vec::new();
    let mut iter = argv.into_iter();
    out.extend(iter.next());
    let mut cmd = root;
    while let Some(token) = iter.next() {
        if token == "--" || token == "-" || !token.starts_with('-') {
            let Some(sub) = find_subcommand(cmd, &token).filter(|_| token != "--") else {
                // Not a subcommand (a positional argument, or a mistake clap will name).
                out.append(&mut early);
                out.push(token);
                out.extend(iter);
                return Ok(out);
            };
            out.push(sub.get_name().to_owned());
            cmd = sub;
            if !cmd.has_subcommands() {
                out.append(&mut early);
                out.extend(iter);
                return Ok(out);
            }
            continue;
        }
        let Some(long) = token.strip_prefix("--") else {
            // A short option (-h): clap's.
            out.push(token);
            continue;
        };
        let (name, inline) = match long.split_once('=') {
            Some((n, _)) => (n, true),
            None => (long, false),
        };
        if globals.takes_value(name) || globals.is_flag(name) || name == "help" || name == "version"
        {
            let needs_value = !inline && globals.takes_value(name);
            out.push(token);
            if needs_value {
                out.extend(iter.next());
            }
            continue;
        }
        // A subcommand's option: cobra took the next word as its value unless it was given
        // with `=`, flag or not.
        if inline {
            early.push(token);
            continue;
        }
        let value = iter.next();
        let target = value.as_deref().and_then(|v| find_subcommand(cmd, v));
        if let Some(sub) = target {
            bail!(
                "--{name} before the subcommand takes the next word ({}) as its value, as the \
                 original rkt did: write --{name}=VALUE, or put it after {}",
                sub.get_name(),
                sub.get_name()
            );
        }
        early.push(token);
        early.extend(value);
    }
    out.append(&mut early);
    Ok(out)
}

/// Gives every boolean option the form clap reads: a flag set to true stays (once, where it
/// was last given), one set to false goes; `--pretty-print` alone is `--pretty-print=true`.
/// Words after `--` are left alone.
pub fn boolean_values(argv: Vec<String>, root: &Command) -> Result<Vec<String>> {
    // The options of the subcommand named, with the global ones (built: positionals know
    // their places).
    let mut built = root.clone();
    built.build();
    let root = &built;
    let mut args: Vec<&clap::Arg> = root.get_arguments().collect();
    let mut cmd = root;
    for word in argv.iter().skip(1) {
        if word == "--" {
            break;
        }
        if word.starts_with('-') {
            continue;
        }
        match cmd.find_subcommand(word) {
            Some(sub) => {
                args.extend(sub.get_arguments());
                cmd = sub;
            }
            None if cmd.has_subcommands() => {}
            None => break,
        }
    }
    let options = Options::of(args.into_iter());
    // A command whose last positional takes the rest of the line (`enter UUID CMD ARGS…`):
    // the words from there on are that command's, not rkt's.
    let rest_from = cmd
        .get_positionals()
        .find(|a| a.is_trailing_var_arg_set())
        .and_then(|a| a.get_index());
    let mut positionals = 0;
    let mut past_subcommand = false;
    // Each flag's last value and where it was given.
    let mut last: Vec<(String, bool, usize)> = Vec::new();
    let mut out: Vec<Option<String>> = Vec::with_capacity(argv.len());
    let mut rest = argv.into_iter();
    for token in rest.by_ref() {
        if token == "--" {
            out.push(Some(token));
            break;
        }
        let Some(long) = token.strip_prefix("--") else {
            if !token.starts_with('-') {
                if past_subcommand {
                    positionals += 1;
                } else if token == cmd.get_name() {
                    past_subcommand = true;
                }
            }
            let taken = rest_from.is_some_and(|at| past_subcommand && positionals >= at);
            out.push(Some(token));
            if taken {
                break;
            }
            continue;
        };
        let (name, value) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (long, None),
        };
        let parse = |value: Option<&str>| -> Result<bool> {
            match value {
                None => Ok(true),
                Some(v) => parse_go_bool(v).ok_or_else(|| {
                    anyhow!(
                        "invalid value '{}' for '--{name}': give true or false (or 1, 0, t, f, TRUE, FALSE)",
                        rkt_common::excerpt::escaped(v)
                    )
                }),
            }
        };
        if options.is_flag(name) {
            let on = parse(value)?;
            let name = name.to_owned();
            last.retain(|(n, _, _)| *n != name);
            last.push((name, on, out.len()));
            out.push(None);
        } else if options.is_valued_bool(name) {
            let on = parse(value)?;
            out.push(Some(format!("--{name}={on}")));
        } else {
            out.push(Some(token));
        }
    }
    for (name, on, at) in last {
        if on {
            out[at] = Some(format!("--{name}"));
        }
    }
    Ok(out.into_iter().flatten().chain(rest).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn argv(words: &str) -> Vec<String> {
        words.split(' ').map(str::to_owned).collect()
    }

    fn moved(words: &str) -> Result<String> {
        subcommand_options_after_name(argv(words), &crate::cli::Cli::command()).map(|v| v.join(" "))
    }

    fn bools(words: &str) -> Result<String> {
        boolean_values(argv(words), &crate::cli::Cli::command()).map(|v| v.join(" "))
    }

    #[test]
    fn go_booleans() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(f), Some(false), "{f}");
        }
        for bad in ["yes", "on", "tRUE", "", "2"] {
            assert_eq!(parse_go_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn boolean_flags_take_values() {
        assert_eq!(
            bools("rkt gc --mark-only=false --grace-period=0s").unwrap(),
            "rkt gc --grace-period=0s"
        );
        assert_eq!(
            bools("rkt gc --mark-only=TRUE").unwrap(),
            "rkt gc --mark-only"
        );
        assert_eq!(
            bools("rkt --debug=1 list --full=t").unwrap(),
            "rkt --debug list --full"
        );
        // The last one wins, as in Go.
        assert_eq!(
            bools("rkt run --inherit-env --inherit-env=false img").unwrap(),
            "rkt run img"
        );
        assert_eq!(
            bools("rkt run --mds-register=0 --mds-register=True img").unwrap(),
            "rkt run --mds-register img"
        );
        // Options that take true|false in clap get it spelled out.
        assert_eq!(
            bools("rkt image cat-manifest --pretty-print=f sha512-1").unwrap(),
            "rkt image cat-manifest --pretty-print=false sha512-1"
        );
        assert_eq!(
            bools("rkt image cat-manifest --pretty-print sha512-1").unwrap(),
            "rkt image cat-manifest --pretty-print=true sha512-1"
        );
        // Words after `--` are the app's, and so is a command given without it.
        assert_eq!(
            bools("rkt enter u -- sh --debug=false").unwrap(),
            "rkt enter u -- sh --debug=false"
        );
        assert_eq!(
            bools("rkt --debug=true enter u sh --debug=false").unwrap(),
            "rkt --debug enter u sh --debug=false"
        );
        assert_eq!(
            bools("rkt app exec --app=a u sh -c x --debug=0").unwrap(),
            "rkt app exec --app=a u sh -c x --debug=0"
        );
        let err = bools("rkt gc --mark-only=yes").unwrap_err().to_string();
        assert!(
            err.contains("invalid value 'yes' for '--mark-only'"),
            "{err}"
        );
    }

    #[test]
    fn subcommand_options_before_its_name() {
        assert_eq!(
            moved("rkt --net=host --dir /d run img --exec=/x").unwrap(),
            "rkt --dir /d run --net=host img --exec=/x"
        );
        assert_eq!(
            moved("rkt --uuid-file-save /tmp/u prepare img").unwrap(),
            "rkt prepare --uuid-file-save /tmp/u img"
        );
        assert_eq!(
            moved("rkt --mds-register=true run img").unwrap(),
            "rkt run --mds-register=true img"
        );
        // Into nested subcommands.
        assert_eq!(
            moved("rkt --format=json image list").unwrap(),
            "rkt image list --format=json"
        );
        // cobra took the subcommand's name for the bare boolean's value: said plainly here.
        let err = moved("rkt --mds-register run img").unwrap_err().to_string();
        assert!(err.contains("--mds-register=VALUE"), "{err}");
        // Unique prefixes name subcommands.
        assert_eq!(moved("rkt ver").unwrap(), "rkt version");
        assert_eq!(moved("rkt im li").unwrap(), "rkt image list");
        assert_eq!(moved("rkt r x").unwrap(), "rkt r x");
        // Anything after the subcommand is left as it is.
        assert_eq!(
            moved("rkt run img --name=run -- run").unwrap(),
            "rkt run img --name=run -- run"
        );
    }
}
