//! Schema errors, and the JSON decoding that turns serde's failures into them.
//!
//! Every rejection names the JSON path of the offending field (`app.environment[2].name`) and
//! the rule it broke, so a user can fix a manifest without reading the spec.

use std::fmt::Display;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::error::Category;

/// Why a manifest, a name or an ID was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The bytes are not JSON at all (syntax error, truncated input, trailing data).
    #[error("malformed json: {error}")]
    Json {
        /// The parser's error, with line and column.
        error: serde_json::Error,
    },
    /// A value breaks a rule of the spec.
    #[error("invalid {field}: {rule}")]
    Invalid {
        /// JSON path of the value (`labels[0].name`), or what was parsed for a standalone value.
        field: String,
        /// The rule broken, lower-case, one line.
        rule: String,
    },
}

impl SchemaError {
    pub(crate) fn invalid(field: impl Into<String>, rule: impl Display) -> Self {
        SchemaError::Invalid {
            field: shorten_quoted(&field.into()),
            rule: shorten_quoted(&rule.to_string()),
        }
    }

    /// The JSON path of the offending value, when the error is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            SchemaError::Invalid { field, .. } => Some(field),
            SchemaError::Json { .. } => None,
        }
    }

    /// The rule that was broken, when the error is about a value.
    pub fn rule(&self) -> Option<&str> {
        match self {
            SchemaError::Invalid { rule, .. } => Some(rule),
            SchemaError::Json { .. } => None,
        }
    }
}

pub(crate) type Result<T, E = SchemaError> = std::result::Result<T, E>;

/// `text` with every quoted value in it ("…" or `…`, as serde and the checks here quote what
/// the document held) cut to its first [`rkt_common::excerpt::MAX_QUOTED_CHARS`] characters: a
/// rejected value may be megabytes long, and the message stays one short line.
fn shorten_quoted(text: &str) -> String {
    let limit = rkt_common::excerpt::MAX_QUOTED_CHARS;
    let mut out = String::with_capacity(text.len().min(1024));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' && c != '`' {
            continue;
        }
        let (mut kept, mut cut, mut closed) = (0, false, false);
        while let Some(inner) = chars.next() {
            if inner == c {
                if cut {
                    out.push('…');
                }
                out.push(c);
                closed = true;
                break;
            }
            let escape = (c == '"' && inner == '\\').then(|| chars.next()).flatten();
            if kept < limit {
                out.push(inner);
                out.extend(escape);
                kept += 1;
            } else {
                cut = true;
            }
        }
        if cut && !closed {
            out.push('…');
        }
    }
    out
}

/// `prefix.name`, or `name` alone at the top level.
pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The deepest that arrays and objects may nest in a document rkt keeps: far beyond any real
/// manifest, and well within what serde_json reads back into a `Value` (128 levels), as
/// `rkt image cat-manifest` and stage1 do. (serde skips unknown keys without that limit, so a
/// document that parses into a manifest may still be unreadable as a `Value`.)
pub const MAX_JSON_DEPTH: usize = 64;

/// Whether `bytes` nest arrays and objects no deeper than [`MAX_JSON_DEPTH`]. Only brackets
/// outside strings count; whether the rest is valid JSON is for the parser to say.
pub fn nesting_within_limit(bytes: &[u8]) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Parses a whole document; `root` names the document in errors about the top level.
pub(crate) fn from_json<T: DeserializeOwned>(bytes: &[u8], root: &str) -> Result<T> {
    if !nesting_within_limit(bytes) {
        return Err(SchemaError::invalid(
            root,
            format!("nests arrays and objects more than {MAX_JSON_DEPTH} levels deep"),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = format_path(e.path());
        from_serde(e.into_inner(), "", &path, root)
    })?;
    de.end().map_err(|error| SchemaError::Json { error })?;
    Ok(value)
}

/// Decodes an already parsed JSON value found at `field` (isolator values are kept raw).
pub(crate) fn from_value<T: DeserializeOwned>(value: &serde_json::Value, field: &str) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = format_path(e.path());
        from_serde(e.into_inner(), field, &path, field)
    })
}

/// Maps a serde_json error raised at `prefix` + `path` to a [`SchemaError`].
fn from_serde(err: serde_json::Error, prefix: &str, path: &str, root: &str) -> SchemaError {
    if err.classify() != Category::Data {
        return SchemaError::Json { error: err };
    }
    let mut message = err.to_string();
    if err.line() != 0 {
        let position = format!(" at line {} column {}", err.line(), err.column());
        if let Some(stripped) = message.strip_suffix(&position) {
            message = stripped.to_owned();
        }
    }
    let base = match (prefix.is_empty(), path.is_empty()) {
        (_, true) => prefix.to_owned(),
        (true, false) => path.to_owned(),
        (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, false) => format!("{prefix}.{path}"),
    };
    // serde reports a missing field at its parent; name the field itself instead.
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        return SchemaError::invalid(join(&base, name), "is required");
    }
    let field = if base.is_empty() {
        root.to_owned()
    } else {
        base
    };
    SchemaError::invalid(field, message)
}

/// `apps[0].image.id` style, matching how the errors of `validate()` name fields.
fn format_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// Reads `null` as the default, as Go's encoder writes absent lists as `null`.
pub(crate) fn nullable<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        port: u16,
        name: String,
    }

    #[test]
    fn data_errors_carry_the_field_path_without_position() {
        let err = from_json::<Outer>(
            br#"{"items":[{"port":1,"name":"a"},{"port":"x","name":"b"}]}"#,
            "doc",
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("items[1].port"));
        assert!(
            err.rule().unwrap().starts_with("invalid type: string"),
            "{err}"
        );
        assert!(!err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn missing_fields_are_named_by_their_own_path() {
        let err = from_json::<Outer>(br#"{"items":[{"port":1}]}"#, "doc").unwrap_err();
        assert_eq!(err.to_string(), "invalid items[0].name: is required");
        let err = from_json::<Outer>(b"{}", "doc").unwrap_err();
        assert_eq!(err.to_string(), "invalid items: is required");
    }

    #[test]
    fn top_level_type_errors_name_the_document() {
        let err = from_json::<Outer>(b"[]", "manifest").unwrap_err();
        assert_eq!(err.field(), Some("manifest"));
    }

    #[test]
    fn quoted_values_are_cut_short() {
        let long = "s".repeat(10_000);
        let err = from_json::<Outer>(
            format!(r#"{{"items":[{{"port":"{long}"}}]}}"#).as_bytes(),
            "doc",
        )
        .unwrap_err()
        .to_string();
        assert!(err.len() < 200 && err.contains("ssss…\""), "{err}");
        assert_eq!(shorten_quoted(r#"a "b\"c" `d`"#), r#"a "b\"c" `d`"#);
        let cut = shorten_quoted(&format!("unknown variant `{long}`, expected `a`"));
        assert!(
            cut.ends_with("…`, expected `a`") && cut.len() < 100,
            "{cut}"
        );
    }

    #[test]
    fn documents_nested_too_deep_to_read_back_are_refused() {
        let deep = |n: usize| format!(r#"{{"x": {}{}}}"#, "[".repeat(n), "]".repeat(n));
        let err = from_json::<Outer>(deep(MAX_JSON_DEPTH).as_bytes(), "doc").unwrap_err();
        assert_eq!(err.field(), Some("doc"), "{err}");
        assert!(err.to_string().contains("levels deep"), "{err}");
        // One level less is only missing its items.
        let err = from_json::<Outer>(deep(MAX_JSON_DEPTH - 1).as_bytes(), "doc").unwrap_err();
        assert_eq!(err.field(), Some("items"), "{err}");
        // Brackets in strings do not count.
        let quoted = format!(
            r#"{{"x": "{}\"{}", "items": []}}"#,
            "[".repeat(200),
            "{".repeat(9)
        );
        assert!(from_json::<Outer>(quoted.as_bytes(), "doc").is_ok());
    }

    #[test]
    fn syntax_errors_and_trailing_data_are_json_errors() {
        for bad in [&b"{"[..], b"{\"items\":[]} x", b""] {
            let err = from_json::<Outer>(bad, "doc").unwrap_err();
            assert!(matches!(err, SchemaError::Json { .. }), "{err}");
        }
    }

    #[test]
    fn value_errors_are_prefixed() {
        let v = serde_json::json!({"port": 70000, "name": "a"});
        let err = from_value::<Inner>(&v, "app.isolators[0].value").unwrap_err();
        assert_eq!(err.field(), Some("app.isolators[0].value.port"));
        let err = from_value::<u8>(&serde_json::json!("x"), "x.value").unwrap_err();
        assert_eq!(err.field(), Some("x.value"));
    }
}
