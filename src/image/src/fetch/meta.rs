//! A small, tolerant scanner for `<meta name=… content=…>` tags in an HTML page: all that appc
//! discovery reads. It never fails: anything it cannot make sense of is skipped.

/// One `<meta>` tag's `name` and `content` attributes (entities decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaTag {
    pub name: String,
    pub content: String,
}

/// Every `<meta>` tag that has both a `name` and a `content` attribute, in page order.
/// Comments are skipped; tag and attribute names are case-insensitive; values may be quoted
/// with `"` or `'`, or unquoted.
pub fn meta_tags(html: &str) -> Vec<MetaTag> {
    let mut tags = Vec::new();
    let bytes = html.as_bytes();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        i += off;
        if html[i..].starts_with("<!--") {
            i = match html[i + 4..].find("-->") {
                Some(end) => i + 4 + end + 3,
                None => break,
            };
            continue;
        }
        let is_meta = bytes.len() >= i + 5
            && bytes[i + 1..i + 5].eq_ignore_ascii_case(b"meta")
            && bytes
                .get(i + 5)
                .is_some_and(|b| b.is_ascii_whitespace() || *b == b'/' || *b == b'>');
        if !is_meta {
            i += 1;
            continue;
        }
        let (attrs, end) = attributes(html, i + 5);
        i = end;
        let get = |key: &str| {
            attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        if let (Some(name), Some(content)) = (get("name"), get("content")) {
            tags.push(MetaTag { name, content });
        }
    }
    tags
}

/// Parses attributes from `start` up to the tag's closing `>`; returns them and the index just
/// past the tag.
fn attributes(html: &str, start: usize) -> (Vec<(String, String)>, usize) {
    let bytes = html.as_bytes();
    let mut attrs = Vec::new();
    let mut i = start;
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return (attrs, i);
        }
        if bytes[i] == b'>' {
            return (attrs, i + 1);
        }
        let key_start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
        {
            i += 1;
        }
        let key = html[key_start..i].to_owned();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            attrs.push((key, String::new()));
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let value_start = i + 1;
                let end = html[value_start..]
                    .find(q as char)
                    .map_or(bytes.len(), |e| value_start + e);
                i = (end + 1).min(bytes.len());
                &html[value_start..end]
            }
            _ => {
                let value_start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                &html[value_start..i]
            }
        };
        attrs.push((key, decode_entities(value)));
    }
}

/// Decodes the entities a URL in an attribute may carry (`&amp;` above all).
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(name: &str, content: &str) -> MetaTag {
        MetaTag {
            name: name.into(),
            content: content.into(),
        }
    }

    #[test]
    fn finds_meta_tags_in_any_quoting_and_case() {
        let html = r#"<!DOCTYPE html><html><head>
            <META NAME="ac-discovery" CONTENT="example.com https://example.com/{name}.{ext}">
            <meta content='example.com https://example.com/keys.gpg' name='ac-discovery-pubkeys'/>
            <meta name=other content=plain>
            <meta charset="utf-8">
            <metadata name="x" content="y">
            </head></html>"#;
        assert_eq!(
            meta_tags(html),
            vec![
                tag(
                    "ac-discovery",
                    "example.com https://example.com/{name}.{ext}"
                ),
                tag(
                    "ac-discovery-pubkeys",
                    "example.com https://example.com/keys.gpg"
                ),
                tag("other", "plain"),
            ]
        );
    }

    #[test]
    fn skips_comments_and_decodes_entities() {
        let html = r#"<!-- <meta name="ac-discovery" content="evil.com https://evil.com/x"> -->
            <meta name="ac-discovery" content="a.com https://a.com/get?n={name}&amp;e={ext}&#x21;">"#;
        assert_eq!(
            meta_tags(html),
            vec![tag(
                "ac-discovery",
                "a.com https://a.com/get?n={name}&e={ext}!"
            )]
        );
    }

    #[test]
    fn survives_truncated_and_odd_markup() {
        for html in [
            "<meta",
            "<meta name=\"x",
            "<meta name=",
            "<",
            "<!--",
            "<meta name=a content=b",
            "&&&<meta name=a content='&bogus;'>",
        ] {
            let _ = meta_tags(html);
        }
        assert_eq!(
            meta_tags("<meta name=a content='&bogus; &amp'>"),
            vec![tag("a", "&bogus; &amp")]
        );
    }
}
