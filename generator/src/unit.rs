//! The service unit made for a pod.

use std::path::Path;

use crate::pod::Pod;

/// The rkt that the package installs.
const RKT: &str = "/usr/bin/rkt";

/// The unit file text for pod `name` defined in `source`.
pub fn render(name: &str, source: &Path, pod: &Pod) -> Result<String, String> {
    let source = source
        .to_str()
        .ok_or_else(|| "its path is not UTF-8".to_owned())?;
    let mut exec = RKT.to_owned();
    for arg in pod.rkt_args() {
        exec.push(' ');
        exec.push_str(&quote(&arg));
    }
    let mut text = String::new();
    let mut line = |s: &str| {
        text.push_str(s);
        text.push('\n');
    };
    line(&format!(
        "# Made by rkt-pod-generator from {source}: edit that file, then `systemctl daemon-reload`."
    ));
    line("[Unit]");
    line(&format!("Description=rkt pod {name}"));
    line("Documentation=man:rkt-run(1)");
    line(&format!("SourcePath={source}"));
    line("RequiresMountsFor=/var/lib/rkt");
    if pod.network_online {
        // Images are fetched at the first start, and servers in pods want the network.
        line("Wants=network-online.target");
        line("After=network-online.target");
    }
    for (key, value) in &pod.unit {
        line(&format!("{key}={value}"));
    }
    line("");
    line("[Service]");
    // `rkt run` says READY=1 once the pod runs and its notify apps (images annotated
    // appc.io/executor/supports-systemd-notify) said READY=1.
    line("Type=notify");
    line("NotifyAccess=main");
    line(&format!("ExecStart={exec}"));
    // SIGTERM to `rkt run` alone: it stops the pod's unit in order (apps first) and waits.
    line("KillMode=mixed");
    // An app stopped by SIGTERM exits 143, which is how a stop ends.
    line("SuccessExitStatus=143");
    // The first start may download images.
    line("TimeoutStartSec=15min");
    // The pod's own unit has 30 s to stop; rkt run waits for it.
    line("TimeoutStopSec=45s");
    line(&format!("SyslogIdentifier={name}"));
    for (key, value) in &pod.service {
        line(&format!("{key}={value}"));
    }
    Ok(text)
}

/// One word of ExecStart=, quoted so that systemd reads it back as it is: no `$VAR`
/// expansion, no `%` specifier, no split at spaces.
fn quote(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && escaped
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | ';'));
    if plain {
        return escaped;
    }
    let mut quoted = String::from("\"");
    for c in escaped.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn words_come_back_as_they_were() {
        assert_eq!(quote("docker://busybox"), "docker://busybox");
        assert_eq!(quote("--exec=/bin/sh"), "--exec=/bin/sh");
        assert_eq!(quote("echo $HOME 100%"), "\"echo $$HOME 100%%\"");
        assert_eq!(quote("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(quote(";"), "\";\"");
        assert_eq!(quote(""), "\"\"");
    }
}
