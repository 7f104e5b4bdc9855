//! A minimal HTTP/1.0 client (std only: test images hold a static binary and nothing else),
//! enough to ask the metadata service what an app may learn and print what it answered.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// What came back.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// A URL starting with `/` is taken relative to `$AC_METADATA_URL` (the app's command line
/// cannot expand variables itself, and systemd would expand `$…` in it).
pub fn expand(arg: &str) -> String {
    match arg.starts_with('/') {
        true => format!(
            "{}{arg}",
            std::env::var("AC_METADATA_URL").unwrap_or_default()
        ),
        false => arg.to_owned(),
    }
}

/// GET (no form) or POST (a urlencoded form) to an `http://host:port/path` URL.
pub fn request(url: &str, form: Option<&str>) -> Result<Answer, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http:// URLs"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = host
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connecting to {host}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut head = format!(
        "{} {path} HTTP/1.0\r\nHost: {host}\r\nMetadata-Flavor: AppContainer\r\nConnection: close\r\n",
        if form.is_some() { "POST" } else { "GET" }
    );
    if let Some(form) = form {
        head.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            form.len()
        ));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(form.unwrap_or_default().as_bytes()))
        .map_err(|e| format!("sending to {host}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("reading from {host}: {e}"))?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{host}: not an HTTP response"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{host}: no status line"))?;
    let content_type = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    Ok(Answer {
        status,
        content_type,
        body: body.to_owned(),
    })
}

/// Percent-encodes a form value.
pub fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Prints an answer as `http:LABEL:status=…`, `…:content-type=…`, `…:body=…` (newlines in
/// the body as spaces, so it stays one line).
pub fn print(out: &mut impl Write, label: &str, answer: &Answer) {
    let _ = writeln!(out, "http:{label}:status={}", answer.status);
    let _ = writeln!(out, "http:{label}:content-type={}", answer.content_type);
    let _ = writeln!(
        out,
        "http:{label}:body={}",
        answer.body.replace(['\n', '\r'], " ")
    );
}

/// Signs CONTENT with the pod's key, then has the service verify the signature, the same
/// signature over other content, and a garbled one: the three statuses and the signature.
pub fn sign_and_verify(out: &mut impl Write, content: &str) -> Result<(), String> {
    let base = std::env::var("AC_METADATA_URL").map_err(|_| "no AC_METADATA_URL".to_owned())?;
    let api = format!("{base}/acMetadata/v1");
    let uuid = request(&format!("{api}/pod/uuid"), None)?.body;
    let signed = request(
        &format!("{api}/pod/hmac/sign"),
        Some(&format!("content={}", form_encode(content))),
    )?;
    let _ = writeln!(out, "mds:sign_status={}", signed.status);
    let _ = writeln!(out, "mds:sign_content_type={}", signed.content_type);
    let _ = writeln!(out, "mds:signature={}", signed.body);
    let verify = |content: &str, signature: &str| {
        request(
            &format!("{api}/pod/hmac/verify"),
            Some(&format!(
                "content={}&uuid={}&signature={}",
                form_encode(content),
                form_encode(&uuid),
                form_encode(signature)
            )),
        )
    };
    let good = verify(content, &signed.body)?;
    let _ = writeln!(out, "mds:verify_status={}", good.status);
    let _ = writeln!(out, "mds:verify_content_type={}", good.content_type);
    let other = verify(&format!("{content}-changed"), &signed.body)?;
    let _ = writeln!(out, "mds:verify_other_content_status={}", other.status);
    Ok(())
}
