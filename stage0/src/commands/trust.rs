//! `rkt trust`: add OpenPGP keys to the trust store (after a fingerprint review), list them,
//! remove them.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{ArgGroup, Args};
use rkt_common::insecure::Insecure;
use rkt_image::fetch::{AppQuery, Fetcher};
use rkt_image::trust::{Fingerprint, KeyOrigin, KeyScope, PublicKey, TrustStore, TrustedKey};

use crate::cli::{Format, GlobalArgs};
use crate::output::Table;

// Which action is checked in `run`, so that a bare `rkt trust` gets a one-line hint.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("action").args(["prefix", "root", "list", "remove"])))]
pub struct TrustArgs {
    /// Trust the keys for images named PREFIX or PREFIX/... (e.g. example.com/app)
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Trust the keys for every image
    #[arg(long)]
    pub root: bool,
    /// Add the keys without showing their fingerprints and asking (for scripts; as does
    /// --insecure-options=pubkey)
    #[arg(long)]
    pub skip_fingerprint_review: bool,
    /// List the trusted keys
    #[arg(long)]
    pub list: bool,
    /// Output format of --list
    #[arg(long, value_enum, default_value = "table", requires = "list")]
    pub format: Format,
    /// Stop trusting the keys with these fingerprints (as --list shows them)
    #[arg(long, value_name = "FINGERPRINT", num_args = 1..)]
    pub remove: Vec<String>,
    /// ASCII-armored public keys (`gpg --armor --export`): files, https:// URLs, or - for
    /// standard input. With --prefix and none given, the keys that appc discovery offers for
    /// the prefix (ac-discovery-pubkeys), each shown for review
    #[arg(value_name = "KEYFILE", conflicts_with_all = ["list", "remove"])]
    pub keys: Vec<PathBuf>,
}

pub fn run(global: &GlobalArgs, args: &TrustArgs) -> Result<()> {
    let store = global.trust_store();
    if args.list {
        return list(&store, args.format);
    }
    if !args.remove.is_empty() {
        return remove(&store, &args.remove);
    }
    let scope = match (&args.prefix, args.root) {
        (Some(prefix), _) => KeyScope::prefix(prefix)?,
        (None, true) => KeyScope::Root,
        (None, false) => bail!(
            "say what to trust the keys for: --prefix PREFIX (images named PREFIX or \
             PREFIX/...) or --root (every image); or use --list or --remove FINGERPRINT"
        ),
    };
    let sources: Vec<String> = if args.keys.is_empty() {
        discover_keys(global, &scope)?
    } else {
        args.keys.iter().map(|k| k.display().to_string()).collect()
    };
    // Read and check every key before trusting any, so a bad file adds nothing.
    let mut keys = Vec::new();
    for source in &sources {
        let bytes = read_key(global, source)?;
        PublicKey::from_armored(&bytes).with_context(|| format!("reading key {source}"))?;
        keys.push((source, bytes));
    }
    for (source, bytes) in &keys {
        // `--insecure-options=pubkey`, as in the original rkt: accept keys without review.
        let skip_review =
            args.skip_fingerprint_review || global.insecure_options.allows(Insecure::Pubkey);
        let added = review_and_add(&store, &scope, source, bytes, skip_review)?;
        println!(
            "Added key {} for {} at {}",
            added.key.fingerprint(),
            describe(&scope),
            added.path.display()
        );
    }
    Ok(())
}

/// Shows the key's fingerprint and user IDs and asks (unless `skip_review`), then trusts it
/// for `scope`. `source` says where the key came from (a file, or the URL that discovery
/// fetched it from: `ac-discovery-pubkeys` keys go through here too).
pub fn review_and_add(
    store: &TrustStore,
    scope: &KeyScope,
    source: &str,
    armored: &[u8],
    skip_review: bool,
) -> Result<TrustedKey> {
    let key = PublicKey::from_armored(armored).with_context(|| format!("reading key {source}"))?;
    if !skip_review {
        if !io::stdin().is_terminal() {
            bail!(
                "cannot ask you to review the fingerprint of key {} from {source}: standard \
                 input is not a terminal; check the fingerprint yourself and pass \
                 --skip-fingerprint-review",
                key.fingerprint()
            );
        }
        if !confirm(scope, source, &key)? {
            bail!(
                "not trusting key {} from {source}: the fingerprint review was declined",
                key.fingerprint()
            );
        }
    }
    Ok(store.add_key(scope, armored)?)
}

/// The keys that appc discovery offers for a prefix (`ac-discovery-pubkeys`), as the original
/// rkt did for `rkt trust --prefix NAME` without key files.
fn discover_keys(global: &GlobalArgs, scope: &KeyScope) -> Result<Vec<String>> {
    let KeyScope::Prefix(prefix) = scope else {
        bail!("no key files given: rkt trust --root KEYFILE...");
    };
    let store = global.store()?;
    let query = AppQuery::parse(prefix.as_str())?;
    let endpoints = Fetcher::new(&store, global.http_policy())
        .discover(&query)
        .with_context(|| format!("discovering the keys of {prefix}"))?;
    if endpoints.pubkeys.is_empty() {
        bail!(
            "discovery for {prefix} offers no keys (no ac-discovery-pubkeys at {}); give the key \
             files: rkt trust --prefix {prefix} KEYFILE...",
            endpoints.page
        );
    }
    Ok(endpoints.pubkeys)
}

/// A key from a file, standard input (`-`) or an https:// URL.
fn read_key(global: &GlobalArgs, source: &str) -> Result<Vec<u8>> {
    if source.starts_with("https://") || source.starts_with("http://") {
        let store = global.store()?;
        return Fetcher::new(&store, global.http_policy())
            .fetch_key(source)
            .with_context(|| format!("fetching key {source}"));
    }
    let file = Path::new(source);
    let mut bytes = Vec::new();
    if file == Path::new("-") {
        io::stdin()
            .lock()
            .take(1 << 20)
            .read_to_end(&mut bytes)
            .context("reading a key from standard input")?;
    } else {
        // Keys are small; a huge file is a mistake, not a key.
        std::fs::File::open(file)
            .and_then(|f| f.take(1 << 20).read_to_end(&mut bytes))
            .with_context(|| format!("reading key {}", file.display()))?;
    }
    Ok(bytes)
}

/// Shows the fingerprint and user IDs on stderr and asks; only `y`/`yes` trusts.
fn confirm(scope: &KeyScope, source: &str, key: &PublicKey) -> Result<bool> {
    let mut err = io::stderr().lock();
    writeln!(err, "Key: {source}")?;
    writeln!(err, "Fingerprint: {}", spaced(key.fingerprint()))?;
    for uid in key.user_ids() {
        writeln!(err, "  {uid}")?;
    }
    write!(err, "Trust this key for {}? [y/N] ", describe(scope))?;
    err.flush()?;
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer)?;
    let yes = matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
    if !yes {
        writeln!(err, "Not trusting the key.")?;
    }
    Ok(yes)
}

fn describe(scope: &KeyScope) -> String {
    match scope {
        KeyScope::Root => "all images (root key)".into(),
        KeyScope::Prefix(prefix) => format!("prefix \"{prefix}\""),
    }
}

/// The fingerprint in groups of four, as gpg shows it, so it is easy to compare by eye.
fn spaced(fingerprint: &Fingerprint) -> String {
    let upper = fingerprint.as_str().to_ascii_uppercase();
    let groups: Vec<&str> = upper
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    groups.join(" ")
}

fn remove(store: &TrustStore, fingerprints: &[String]) -> Result<()> {
    let fingerprints: Vec<Fingerprint> = fingerprints
        .iter()
        .map(|f| f.parse())
        .collect::<Result<_, _>>()?;
    for fingerprint in &fingerprints {
        for path in store.remove(fingerprint)? {
            println!("Removed key {fingerprint} ({})", path.display());
        }
    }
    Ok(())
}

/// One key as `rkt trust --list --format=json` prints it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyJson<'a> {
    fingerprint: &'a str,
    /// `"root"` or `"prefix"`.
    scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<&'a str>,
    user_ids: &'a [String],
    /// `"local"` or `"system"`.
    origin: &'static str,
    path: &'a Path,
}

fn list(store: &TrustStore, format: Format) -> Result<()> {
    let keys = store.list()?;
    let mut out = io::stdout().lock();
    match format {
        Format::Table => {
            let mut table = Table::new(["PREFIX", "FINGERPRINT", "ORIGIN", "USER IDS"]);
            for k in &keys {
                table.row([
                    match &k.scope {
                        KeyScope::Root => "(root)".to_owned(),
                        KeyScope::Prefix(prefix) => prefix.to_string(),
                    },
                    k.key.fingerprint().to_string(),
                    origin(k.origin).to_owned(),
                    k.key.user_ids().join(", "),
                ]);
            }
            table.write(&mut out, true)?;
        }
        Format::Json | Format::JsonPretty => {
            let rows: Vec<KeyJson<'_>> = keys
                .iter()
                .map(|k| KeyJson {
                    fingerprint: k.key.fingerprint().as_str(),
                    scope: match k.scope {
                        KeyScope::Root => "root",
                        KeyScope::Prefix(_) => "prefix",
                    },
                    prefix: match &k.scope {
                        KeyScope::Root => None,
                        KeyScope::Prefix(prefix) => Some(prefix.as_str()),
                    },
                    user_ids: k.key.user_ids(),
                    origin: origin(k.origin),
                    path: &k.path,
                })
                .collect();
            if format == Format::Json {
                serde_json::to_writer(&mut out, &rows)?;
            } else {
                serde_json::to_writer_pretty(&mut out, &rows)?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

fn origin(origin: KeyOrigin) -> &'static str {
    match origin {
        KeyOrigin::Local => "local",
        KeyOrigin::System => "system",
    }
}
