//! appc image discovery (spec/discovery.md): from a name such as `example.com/app:1.0` to the
//! URLs of the ACI, its signature and the publisher's keys, read from `ac-discovery` and
//! `ac-discovery-pubkeys` meta tags at `https://{name}?ac-discovery=1`.
//!
//! Names carry no port (an AC Identifier has no `:`), so discovery always asks port 443.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use rkt_schema::{AcIdentifier, ImageManifest};

use super::error::{FetchError, request_error};
use super::meta::meta_tags;

/// The largest discovery page read; the tags are in the head of a small page.
const MAX_PAGE: u64 = 1 << 20;

/// What a user asked for: an image name and labels. `version` defaults to `latest` for
/// discovery; `os` and `arch` to the host's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppQuery {
    pub name: AcIdentifier,
    /// Labels the user gave (`name:VERSION`, `,label=value`): the image must carry them.
    pub labels: BTreeMap<String, String>,
}

impl AppQuery {
    /// Parses `NAME[:VERSION][,LABEL=VALUE…]` (as the original rkt), e.g.
    /// `example.com/app:1.0,arch=aarch64`.
    pub fn parse(s: &str) -> Result<AppQuery, FetchError> {
        let bad = |reason: String| FetchError::BadImageName {
            name: s.to_owned(),
            reason,
        };
        let mut parts = s.split(',');
        let head = parts.next().unwrap_or_default();
        let (name, version) = rkt_store::split_name_version(head);
        let name: AcIdentifier = name.parse().map_err(|e| bad(format!("{e}")))?;
        let mut labels = BTreeMap::new();
        if let Some(version) = version {
            if version.is_empty() {
                return Err(bad("the version after ':' is empty".into()));
            }
            labels.insert("version".to_owned(), version.to_owned());
        }
        for part in parts {
            let Some((key, value)) = part.split_once('=') else {
                return Err(bad(format!("{part:?} is not LABEL=VALUE")));
            };
            key.parse::<AcIdentifier>()
                .map_err(|e| bad(format!("label {key:?}: {e}")))?;
            if key == "name" {
                return Err(bad("\"name\" is not a label".into()));
            }
            if labels.insert(key.to_owned(), value.to_owned()).is_some() {
                return Err(bad(format!("label {key:?} given twice")));
            }
        }
        Ok(AppQuery { name, labels })
    }

    /// The labels discovery fills templates with: the asked ones, plus `version=latest`,
    /// `os` and `arch` of this host where not asked.
    pub fn discovery_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        labels
            .entry("version".into())
            .or_insert_with(|| "latest".into());
        labels
            .entry("os".into())
            .or_insert_with(|| host_os().into());
        labels
            .entry("arch".into())
            .or_insert_with(|| host_arch().into());
        labels
    }

    /// Checks that a fetched image is the one asked for: the same name, every asked label
    /// present with the same value, and no `os`/`arch` label that contradicts this host's
    /// defaults (an image without them is taken to run anywhere).
    pub fn check(&self, manifest: &ImageManifest) -> Result<(), String> {
        if manifest.name != *self.name.as_str() {
            return Err(format!(
                "discovery for {self} returned image named {}; refusing it",
                manifest.name
            ));
        }
        let defaults = self.discovery_labels();
        for (key, want) in &defaults {
            let asked = self.labels.contains_key(key);
            if !asked && key == "version" {
                continue;
            }
            match manifest.label(key) {
                Some(have) if have == want => {}
                Some(have) => {
                    return Err(format!(
                        "discovery for {self} returned {} with {key}={have}, not {key}={want}; refusing it",
                        manifest.name
                    ));
                }
                None if asked => {
                    return Err(format!(
                        "discovery for {self} returned {} without the label {key}={want}; refusing it",
                        manifest.name
                    ));
                }
                None => {}
            }
        }
        Ok(())
    }
}

impl fmt::Display for AppQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name.as_str())?;
        if let Some(version) = self.labels.get("version") {
            write!(f, ":{version}")?;
        }
        for (key, value) in self.labels.iter().filter(|(k, _)| *k != "version") {
            write!(f, ",{key}={value}")?;
        }
        Ok(())
    }
}

/// The appc `os` label value of this host.
pub fn host_os() -> &'static str {
    std::env::consts::OS
}

/// The appc `arch` label value of this host (appc says `amd64` and `i386` where Rust says
/// `x86_64` and `x86`).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "arm" => "armv7l",
        other => other,
    }
}

/// Where an image and its signature are, from one `ac-discovery` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AciEndpoint {
    pub aci: String,
    pub signature: String,
}

/// What discovery found for a name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoints {
    /// Best match first: only templates that filled every placeholder and with the most
    /// labels filled (the spec's "best matching"), longest prefix first among those.
    pub aci: Vec<AciEndpoint>,
    /// `ac-discovery-pubkeys` URLs whose prefix matches the name (not templates).
    pub pubkeys: Vec<String>,
    /// The discovery URL the tags came from.
    pub page: String,
}

/// Picks the usable endpoints from a page's meta tags. A tag whose prefix is not a prefix of
/// the name is ignored, and so is a template left with an unfilled `{…}` or whose scheme rkt
/// cannot fetch (`https`, or `http` when `allow_http`).
pub fn endpoints_from_tags(
    query: &AppQuery,
    html: &str,
    allow_http: bool,
) -> (Vec<AciEndpoint>, Vec<String>) {
    let labels = query.discovery_labels();
    let name = query.name.as_str();
    // (labels filled, prefix length, endpoint)
    let mut ranked: Vec<(usize, usize, AciEndpoint)> = Vec::new();
    let mut pubkeys = Vec::new();
    for tag in meta_tags(html) {
        let mut words = tag.content.split_whitespace();
        let (Some(prefix), Some(target), None) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        if !name.starts_with(prefix) {
            continue;
        }
        match tag.name.as_str() {
            "ac-discovery" => {
                let Some((aci, filled)) = render(target, name, &labels, "aci") else {
                    continue;
                };
                let Some((signature, _)) = render(target, name, &labels, "aci.asc") else {
                    continue;
                };
                if fetchable(&aci, allow_http) && fetchable(&signature, allow_http) {
                    ranked.push((filled, prefix.len(), AciEndpoint { aci, signature }));
                }
            }
            "ac-discovery-pubkeys"
                if fetchable(target, allow_http) && !pubkeys.iter().any(|k| k == target) =>
            {
                pubkeys.push(target.to_owned());
            }
            _ => {}
        }
    }
    let best = ranked.iter().map(|(filled, ..)| *filled).max();
    ranked.retain(|(filled, ..)| Some(*filled) == best);
    // Stable: page order among equals.
    ranked.sort_by_key(|r| std::cmp::Reverse(r.1));
    let mut aci: Vec<AciEndpoint> = Vec::new();
    for (_, _, endpoint) in ranked {
        if !aci.contains(&endpoint) {
            aci.push(endpoint);
        }
    }
    (aci, pubkeys)
}

/// Fills `{name}`, `{ext}` and `{LABEL}` placeholders; `None` if any `{…}` is left. Also
/// returns how many label placeholders were filled (the spec ranks templates by it).
fn render(
    template: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
    ext: &str,
) -> Option<(String, usize)> {
    let mut url = template.replace("{name}", name).replace("{ext}", ext);
    let mut filled = 0;
    for (key, value) in labels {
        let placeholder = format!("{{{key}}}");
        if url.contains(&placeholder) {
            url = url.replace(&placeholder, value);
            filled += 1;
        }
    }
    let unfilled = url.find('{').is_some_and(|open| url[open..].contains('}'));
    (!unfilled).then_some((url, filled))
}

fn fetchable(url: &str, allow_http: bool) -> bool {
    match url::Url::parse(url) {
        Ok(u) => {
            u.host_str().is_some()
                && (u.scheme() == "https" || (allow_http && u.scheme() == "http"))
        }
        Err(_) => false,
    }
}

/// `a/b/c` → `a/b/c`, `a/b`, `a`: where discovery looks, most specific first.
fn walk_up(name: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(name);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.rsplit_once('/').map(|(parent, _)| parent);
        Some(current)
    })
}

/// Runs discovery for `query`: asks `https://{name}?ac-discovery=1`, and on a 4xx answer or a
/// page without usable tags, each parent path in turn. Redirects are followed (HTTPS only,
/// unless the agent allows HTTP; then an unreachable HTTPS host is also asked over HTTP). A transport or TLS failure ends the search at once, since a
/// parent path on the same host would fail the same way.
pub fn discover(
    agent: &ureq::Agent,
    query: &AppQuery,
    allow_http: bool,
) -> Result<Endpoints, FetchError> {
    let mut tried = Vec::new();
    for path in walk_up(query.name.as_str()) {
        let mut page = format!("https://{path}?ac-discovery=1");
        tracing::debug!("discovery: GET {page}");
        let mut response = match agent.get(&page).call() {
            Ok(response) => response,
            // As the reference client: with --insecure-options=http, a host that cannot be
            // reached over HTTPS is asked over plain HTTP.
            Err(e) if allow_http => {
                let plain = format!("http://{path}?ac-discovery=1");
                tracing::debug!("discovery: {e}; GET {plain}");
                match agent.get(&plain).call() {
                    Ok(response) => {
                        page = plain;
                        response
                    }
                    Err(_) => return Err(request_error(&page, e)),
                }
            }
            Err(e) => return Err(request_error(&page, e)),
        };
        let status = response.status().as_u16();
        if status != 200 {
            if (400..500).contains(&status) {
                tried.push(format!("{page} ({status})"));
                continue;
            }
            return Err(FetchError::Status { url: page, status });
        }
        let mut html = String::new();
        response
            .body_mut()
            .as_reader()
            .take(MAX_PAGE)
            .read_to_string(&mut html)
            .map_err(|e| FetchError::Request {
                url: page.clone(),
                reason: e.to_string(),
            })?;
        let (aci, pubkeys) = endpoints_from_tags(query, &html, allow_http);
        if aci.is_empty() {
            tried.push(format!("{page} (no usable ac-discovery tag)"));
            continue;
        }
        return Ok(Endpoints { aci, pubkeys, page });
    }
    Err(FetchError::NotDiscovered {
        query: query.to_string(),
        tried: tried.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(s: &str) -> AppQuery {
        AppQuery::parse(s).unwrap()
    }

    fn meta(name: &str, content: &str) -> String {
        format!("<meta name=\"{name}\" content=\"{content}\">\n")
    }

    #[test]
    fn parses_names_versions_and_labels() {
        let q = query("example.com/app:1.0,arch=aarch64");
        assert_eq!(q.name.as_str(), "example.com/app");
        assert_eq!(q.labels["version"], "1.0");
        assert_eq!(q.labels["arch"], "aarch64");
        assert_eq!(q.to_string(), "example.com/app:1.0,arch=aarch64");
        let d = query("example.com/app").discovery_labels();
        assert_eq!(d["version"], "latest");
        assert_eq!(d["os"], "linux");
        assert!(!d["arch"].is_empty());
        for bad in [
            "Example.com",
            "example.com/app:",
            "a,b",
            "a,name=x",
            "a,v=1,v=2",
        ] {
            assert!(AppQuery::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn walks_up_the_name() {
        assert_eq!(
            walk_up("a.com/b/c").collect::<Vec<_>>(),
            ["a.com/b/c", "a.com/b", "a.com"]
        );
        assert_eq!(walk_up("a.com").collect::<Vec<_>>(), ["a.com"]);
    }

    #[test]
    fn fills_templates_and_prefers_the_best_match() {
        let q = query("example.com/app:1.0");
        let arch = host_arch();
        let html = [
            meta(
                "ac-discovery",
                "example.com https://s.example.com/{name}-latest.{ext}",
            ),
            meta(
                "ac-discovery",
                "example.com https://s.example.com/{os}/{arch}/{name}-{version}.{ext}",
            ),
            meta(
                "ac-discovery",
                "example.com/app https://m.example.com/{os}/{arch}/{name}-{version}.{ext}",
            ),
            meta(
                "ac-discovery",
                "example.com https://x.example.com/{name}-{flavor}.{ext}",
            ),
            meta(
                "ac-discovery",
                "example.com hdfs://s.example.com/{name}.{ext}",
            ),
            meta(
                "ac-discovery-pubkeys",
                "example.com https://example.com/keys.gpg",
            ),
        ]
        .concat();
        let (aci, keys) = endpoints_from_tags(&q, &html, false);
        assert_eq!(
            aci,
            vec![
                AciEndpoint {
                    aci: format!("https://m.example.com/linux/{arch}/example.com/app-1.0.aci"),
                    signature: format!(
                        "https://m.example.com/linux/{arch}/example.com/app-1.0.aci.asc"
                    ),
                },
                AciEndpoint {
                    aci: format!("https://s.example.com/linux/{arch}/example.com/app-1.0.aci"),
                    signature: format!(
                        "https://s.example.com/linux/{arch}/example.com/app-1.0.aci.asc"
                    ),
                },
            ]
        );
        assert_eq!(keys, ["https://example.com/keys.gpg"]);
    }

    #[test]
    fn ignores_tags_whose_prefix_is_not_the_names() {
        let q = query("example.com/app");
        let html = [
            meta("ac-discovery", "evil.com https://evil.com/{name}.{ext}"),
            meta(
                "ac-discovery",
                "example.com/other https://e.com/{name}.{ext}",
            ),
            meta("ac-discovery-pubkeys", "evil.com https://evil.com/keys.gpg"),
        ]
        .concat();
        assert_eq!(endpoints_from_tags(&q, &html, false), (vec![], vec![]));
        // The ACI may live on another host: only the prefix must match the name.
        let html = meta(
            "ac-discovery",
            "example.com https://cdn.other.net/{name}.{ext}",
        );
        let (aci, _) = endpoints_from_tags(&q, &html, false);
        assert_eq!(aci[0].aci, "https://cdn.other.net/example.com/app.aci");
    }

    #[test]
    fn plain_http_templates_only_when_allowed() {
        let q = query("example.com/app");
        let html = meta(
            "ac-discovery",
            "example.com http://example.com/{name}.{ext}",
        );
        assert!(endpoints_from_tags(&q, &html, false).0.is_empty());
        assert_eq!(endpoints_from_tags(&q, &html, true).0.len(), 1);
    }

    fn manifest(json: &str) -> ImageManifest {
        ImageManifest::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn checks_the_fetched_manifest_against_the_query() {
        let arch = host_arch();
        let m = manifest(&format!(
            r#"{{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/app",
               "labels":[{{"name":"version","value":"1.0"}},{{"name":"os","value":"linux"}},
                         {{"name":"arch","value":"{arch}"}}]}}"#
        ));
        query("example.com/app:1.0").check(&m).unwrap();
        query("example.com/app").check(&m).unwrap();
        let err = query("example.com/other").check(&m).unwrap_err();
        assert!(
            err.contains("discovery for example.com/other returned image named example.com/app"),
            "{err}"
        );
        let err = query("example.com/app:2.0").check(&m).unwrap_err();
        assert!(err.contains("version=1.0, not version=2.0"), "{err}");
        let bare =
            manifest(r#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/app"}"#);
        query("example.com/app").check(&bare).unwrap();
        let err = query("example.com/app:1.0").check(&bare).unwrap_err();
        assert!(err.contains("without the label version=1.0"), "{err}");
    }
}
