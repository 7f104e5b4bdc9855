//! `rkt trust`: add OpenPGP and sigstore keys to the trust store (after a fingerprint review),
//! set a prefix's trust policy, list them, remove them.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{ArgGroup, Args};
use rkt_common::insecure::Insecure;
use rkt_image::fetch::{AppQuery, Fetcher};
use rkt_image::trust::{
    Fingerprint, KeyOrigin, KeyScope, Policy, PublicKey, Requirement, TrustStore, TrustedKey,
    is_sigstore_key, parse_sigstore_key,
};

use crate::cli::{Format, GlobalArgs};
use crate::output::Table;

// Which action is checked in `run`, so that a bare `rkt trust` gets a one-line hint.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("action").args(["prefix", "root", "list", "remove"])))]
pub struct TrustArgs {
    /// Trust the keys for images named PREFIX or PREFIX/... (e.g. example.com/app), or for
    /// registry images under docker://HOST[:PORT][/REPOSITORY] (and archives naming them)
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
    /// Set the trust policy of the prefix (or, with --root, of every image): which of
    /// signedBy (OpenPGP), sigstoreSigned, insecureAcceptAnything (unsigned images too) are
    /// enough, comma-separated; "default" removes the prefix's policy
    #[arg(long, value_name = "REQUIREMENTS", conflicts_with_all = ["list", "remove"])]
    pub policy: Option<String>,
    /// With --policy: accept signatures for any tag of the image's repository, not only the
    /// reference asked for
    #[arg(long, requires = "policy")]
    pub match_repository: bool,
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
    let policy = args
        .policy
        .as_deref()
        .map(|p| parse_policy(p, args.match_repository))
        .transpose()?;
    let sources: Vec<String> = if args.keys.is_empty() && policy.is_none() {
        discover_keys(global, &scope)?
    } else {
        args.keys.iter().map(|k| k.display().to_string()).collect()
    };
    // Read and check every key before trusting any, so a bad file adds nothing.
    let mut keys = Vec::new();
    for source in &sources {
        let bytes = read_key(global, source)?;
        if is_sigstore_key(&bytes) {
            parse_sigstore_key(&bytes).with_context(|| format!("reading key {source}"))?;
        } else {
            PublicKey::from_armored(&bytes).with_context(|| format!("reading key {source}"))?;
        }
        keys.push((source, bytes));
    }
    // `--insecure-options=pubkey`, as in the original rkt: accept keys without review.
    let skip_review =
        args.skip_fingerprint_review || global.insecure_options.allows(Insecure::Pubkey);
    for (source, bytes) in &keys {
        let path = if is_sigstore_key(bytes) {
            review_and_add_sigstore(&store, &scope, source, bytes, skip_review)?
        } else {
            review_and_add(&store, &scope, source, bytes, skip_review)?.path
        };
        match &scope {
            KeyScope::Root => println!("Added root key at {:?}", path.display().to_string()),
            KeyScope::Prefix(prefix) => println!(
                "Added key for prefix {:?} at {:?}",
                prefix.as_str(),
                path.display().to_string()
            ),
        }
    }
    match policy {
        Some(None) => match store.remove_policy(&scope)? {
            Some(path) => println!(
                "Removed the policy of {} ({})",
                describe(&scope),
                path.display()
            ),
            None => println!("{} has no policy of its own", describe(&scope)),
        },
        Some(Some(policy)) => {
            let path = store.set_policy(&scope, &policy)?;
            println!(
                "Policy for {}: {} ({})",
                describe(&scope),
                policy.describe(),
                path.display()
            );
        }
        None => {}
    }
    Ok(())
}

/// `signedBy,sigstoreSigned` → a policy; `default` → `None` (remove the prefix's policy).
fn parse_policy(list: &str, match_repository: bool) -> Result<Option<Policy>> {
    if list == "default" {
        return Ok(None);
    }
    let mut accept = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let Some(requirement) = Requirement::parse(name) else {
            bail!(
                "unknown policy requirement {:?}: give signedBy, sigstoreSigned or insecureAcceptAnything (comma-separated), or default",
                rkt_common::excerpt::excerpt(name)
            );
        };
        if !accept.contains(&requirement) {
            accept.push(requirement);
        }
    }
    if accept.is_empty() {
        bail!("--policy needs at least one of signedBy, sigstoreSigned, insecureAcceptAnything");
    }
    Ok(Some(Policy {
        accept,
        identity: if match_repository {
            rkt_image::trust::IdentityRule::MatchRepository
        } else {
            rkt_image::trust::IdentityRule::Exact
        },
    }))
}

/// [`review_and_add`] for a sigstore public key: shows its SHA-256 and asks.
fn review_and_add_sigstore(
    store: &TrustStore,
    scope: &KeyScope,
    source: &str,
    pem: &[u8],
    skip_review: bool,
) -> Result<PathBuf> {
    let (_, id) = parse_sigstore_key(pem).with_context(|| format!("reading key {source}"))?;
    if !skip_review {
        if !io::stdin().is_terminal() {
            bail!(
                "cannot ask you to review the fingerprint of key {id} from {source}: standard \
                 input is not a terminal; check the fingerprint yourself and pass \
                 --skip-fingerprint-review"
            );
        }
        if !confirm(
            scope,
            source,
            &format!("Sigstore key fingerprint is: {id}"),
            &[],
        )? {
            bail!("not trusting key {id} from {source}: the fingerprint review was declined");
        }
    } else {
        announce_unreviewed(scope, source);
    }
    Ok(store.add_sigstore_key(scope, pem)?.path)
}

/// What the original rkt said when it added a key without asking.
fn announce_unreviewed(scope: &KeyScope, source: &str) {
    eprintln!(
        "Trusting {source:?} for prefix {:?} without fingerprint review.",
        prefix_text(scope)
    );
}

fn prefix_text(scope: &KeyScope) -> &str {
    match scope {
        KeyScope::Root => "",
        KeyScope::Prefix(prefix) => prefix.as_str(),
    }
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
        let fingerprint = format!("GPG key fingerprint is: {}", spaced(key.fingerprint()));
        if !confirm(scope, source, &fingerprint, key.user_ids())? {
            bail!(
                "not trusting key {} from {source}: the fingerprint review was declined",
                key.fingerprint()
            );
        }
    } else {
        announce_unreviewed(scope, source);
    }
    Ok(store.add_key(scope, armored)?)
}

/// The keys that appc discovery offers for a prefix (`ac-discovery-pubkeys`), as the original
/// rkt did for `rkt trust --prefix NAME` without key files.
fn discover_keys(global: &GlobalArgs, scope: &KeyScope) -> Result<Vec<String>> {
    let KeyScope::Prefix(prefix) = scope else {
        bail!("no key files given: rkt trust --root KEYFILE...");
    };
    if matches!(prefix, rkt_image::trust::ImagePrefix::Docker(_)) {
        bail!(
            "registries offer no keys to discover; give the key files (OpenPGP, or a sigstore \
             cosign.pub): rkt trust --prefix {prefix} KEYFILE..., or a policy: rkt trust \
             --prefix {prefix} --policy=REQUIREMENTS"
        );
    }
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

/// Shows the key as the original rkt did, on stderr, and asks until the answer is `yes` or
/// `no`:
///
/// ```text
/// Prefix: "example.com/app"
/// Key: "./key.asc"
/// GPG key fingerprint is: 8B86 DE38 890D DB72 9186  7B02 5210 BD88 8818 2190
///     Example Signer <signer@example.com>
/// Are you sure you want to trust this key (yes/no)? yes
/// Trusting "./key.asc" for prefix "example.com/app" after fingerprint review.
/// ```
fn confirm(scope: &KeyScope, source: &str, fingerprint: &str, user_ids: &[String]) -> Result<bool> {
    let mut err = io::stderr().lock();
    writeln!(err, "Prefix: {:?}", prefix_text(scope))?;
    writeln!(err, "Key: {source:?}")?;
    writeln!(err, "{fingerprint}")?;
    for uid in user_ids {
        writeln!(err, "\t{uid}")?;
    }
    let mut input = io::stdin().lock();
    loop {
        write!(err, "Are you sure you want to trust this key (yes/no)? ")?;
        err.flush()?;
        let mut answer = String::new();
        if input.read_line(&mut answer)? == 0 {
            writeln!(err)?;
            return Ok(false);
        }
        match answer.trim().to_ascii_lowercase().as_str() {
            "yes" => {
                writeln!(
                    err,
                    "Trusting {source:?} for prefix {:?} after fingerprint review.",
                    prefix_text(scope)
                )?;
                return Ok(true);
            }
            "no" => return Ok(false),
            _ => writeln!(err, "Please enter 'yes' or 'no'")?,
        }
    }
}

fn describe(scope: &KeyScope) -> String {
    match scope {
        KeyScope::Root => "all images (root key)".into(),
        KeyScope::Prefix(prefix) => format!("prefix \"{prefix}\""),
    }
}

/// The fingerprint in groups of four, with two spaces in the middle, as gpg (and the original
/// rkt) shows it, so it is easy to compare by eye.
fn spaced(fingerprint: &Fingerprint) -> String {
    let upper = fingerprint.as_str().to_ascii_uppercase();
    let groups: Vec<&str> = upper
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let half = groups.len() / 2;
    format!("{}  {}", groups[..half].join(" "), groups[half..].join(" "))
}

fn remove(store: &TrustStore, fingerprints: &[String]) -> Result<()> {
    let (sigstore, openpgp): (Vec<&String>, Vec<&String>) = fingerprints
        .iter()
        .partition(|f| f.to_ascii_uppercase().starts_with("SHA256:"));
    let fingerprints: Vec<Fingerprint> = openpgp
        .iter()
        .map(|f| f.parse())
        .collect::<Result<_, _>>()?;
    for id in sigstore {
        for path in store.remove_sigstore_key(id)? {
            println!("Removed key {id} ({})", path.display());
        }
    }
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
    /// `"openpgp"`, `"sigstore"`, or `"policy"` (then `policy` says which, and there is no
    /// fingerprint).
    kind: &'static str,
    fingerprint: &'a str,
    /// `"root"` or `"prefix"`.
    scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<&'a str>,
    user_ids: &'a [String],
    /// `"local"` or `"system"`.
    origin: &'static str,
    path: &'a Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a Policy>,
}

fn list(store: &TrustStore, format: Format) -> Result<()> {
    let keys = store.list()?;
    let sigstore = store.sigstore_keys()?;
    let policies = store.policies()?;
    let scope_text = |scope: &KeyScope| match scope {
        KeyScope::Root => "(root)".to_owned(),
        KeyScope::Prefix(prefix) => prefix.to_string(),
    };
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
            for k in &sigstore {
                table.row([
                    scope_text(&k.scope),
                    k.id.clone(),
                    origin(k.origin).to_owned(),
                    "(sigstore key)".to_owned(),
                ]);
            }
            table.write(&mut out, true)?;
            if !policies.is_empty() {
                writeln!(out)?;
                let mut table = Table::new(["PREFIX", "POLICY", "ORIGIN"]);
                for p in &policies {
                    table.row([
                        scope_text(&p.scope),
                        p.policy.describe(),
                        origin(p.origin).to_owned(),
                    ]);
                }
                table.write(&mut out, true)?;
            }
        }
        Format::Json | Format::JsonPretty => {
            let scope_kind = |scope: &KeyScope| match scope {
                KeyScope::Root => "root",
                KeyScope::Prefix(_) => "prefix",
            };
            let mut rows: Vec<KeyJson<'_>> = keys
                .iter()
                .map(|k| KeyJson {
                    kind: "openpgp",
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
                    policy: None,
                })
                .collect();
            rows.extend(sigstore.iter().map(|k| KeyJson {
                kind: "sigstore",
                fingerprint: &k.id,
                scope: scope_kind(&k.scope),
                prefix: match &k.scope {
                    KeyScope::Root => None,
                    KeyScope::Prefix(prefix) => Some(prefix.as_str()),
                },
                user_ids: &[],
                origin: origin(k.origin),
                path: &k.path,
                policy: None,
            }));
            rows.extend(policies.iter().map(|p| KeyJson {
                kind: "policy",
                fingerprint: "",
                scope: scope_kind(&p.scope),
                prefix: match &p.scope {
                    KeyScope::Root => None,
                    KeyScope::Prefix(prefix) => Some(prefix.as_str()),
                },
                user_ids: &[],
                origin: origin(p.origin),
                path: &p.path,
                policy: Some(&p.policy),
            }));
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
