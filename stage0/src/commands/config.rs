//! `rkt config`: the configuration rkt reads, as the original printed it: a `stage0` list of
//! configuration entries, one `auth` entry per domain and one `dockerAuth` entry per registry
//! (as merged from --system-config, --local-config and --user-config), and a `paths` entry.

use std::io::Write;

use anyhow::Result;
use rkt_image::auth::HostAuth;
use serde::Serialize;

use crate::cli::{ConfigArgs, GlobalArgs};

/// One entry, its fields in the order the original printed them.
#[derive(Serialize)]
struct Entry<'a> {
    #[serde(rename = "rktVersion")]
    rkt_version: &'static str,
    #[serde(rename = "rktKind")]
    rkt_kind: &'static str,
    #[serde(flatten)]
    body: Body<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Body<'a> {
    Auth {
        domains: [&'a str; 1],
        #[serde(rename = "type")]
        kind: &'static str,
        credentials: Credentials<'a>,
    },
    DockerAuth {
        registries: [&'a str; 1],
        credentials: Credentials<'a>,
    },
    Paths {
        data: &'a std::path::Path,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
enum Credentials<'a> {
    Basic { user: &'a str, password: &'a str },
    Token { token: &'a str },
}

#[derive(Serialize)]
struct Config<'a> {
    stage0: Vec<Entry<'a>>,
}

pub fn run(global: &GlobalArgs, args: &ConfigArgs) -> Result<()> {
    let auth = global.auth_config()?;
    let mut stage0 = Vec::new();
    for (domain, host) in auth.hosts() {
        let (kind, credentials) = match host {
            HostAuth::Basic(b) => (
                "basic",
                Credentials::Basic {
                    user: &b.user,
                    password: &b.password,
                },
            ),
            HostAuth::Bearer(token) => ("oauth", Credentials::Token { token }),
        };
        stage0.push(Entry {
            rkt_version: "v1",
            rkt_kind: "auth",
            body: Body::Auth {
                domains: [domain],
                kind,
                credentials,
            },
        });
    }
    for (registry, creds) in auth.registries() {
        stage0.push(Entry {
            rkt_version: "v1",
            rkt_kind: "dockerAuth",
            body: Body::DockerAuth {
                registries: [registry],
                credentials: Credentials::Basic {
                    user: &creds.basic.user,
                    password: &creds.basic.password,
                },
            },
        });
    }
    stage0.push(Entry {
        rkt_version: "v1",
        rkt_kind: "paths",
        body: Body::Paths { data: &global.dir },
    });
    let config = Config { stage0 };
    let mut out = std::io::stdout().lock();
    if args.pretty_print {
        let mut ser = serde_json::Serializer::with_formatter(
            &mut out,
            serde_json::ser::PrettyFormatter::with_indent(b"\t"),
        );
        config.serialize(&mut ser)?;
    } else {
        serde_json::to_writer(&mut out, &config)?;
    }
    writeln!(out)?;
    Ok(())
}
