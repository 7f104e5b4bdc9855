//! Input quoted in error messages: on one line, control characters escaped, and short, so
//! that a message about a file or an argument never prints the whole of it.

use std::borrow::Cow;

/// The most characters of input an error message quotes.
pub const MAX_QUOTED_CHARS: usize = 64;

/// The first [`MAX_QUOTED_CHARS`] characters of `text`, escaped as Rust's `{:?}` escapes a
/// string's contents (`\n`, `\"`, `\u{1b}`), with `…` when there is more.
pub fn escaped(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .by_ref()
        .take(MAX_QUOTED_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// `text` quoted and [`escaped`], with its full length said when it was cut:
/// `"root:x:0:0:root:/root…" (1290 bytes)`.
pub fn excerpt(text: &str) -> String {
    let shown = escaped(text);
    if shown.ends_with('…') && text.chars().count() > MAX_QUOTED_CHARS {
        format!("\"{shown}\" ({} bytes)", text.len())
    } else {
        format!("\"{shown}\"")
    }
}

/// `text` as it is when it is short and printable (`--memory=lots`), else its [`excerpt`].
pub fn shown(text: &str) -> Cow<'_, str> {
    if text.chars().count() <= MAX_QUOTED_CHARS && !text.chars().any(char::is_control) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(excerpt(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_escaped_and_say_how_long_the_text_was() {
        assert_eq!(excerpt("a\nb"), r#""a\nb""#);
        let long = "x\n".repeat(1000);
        let cut = excerpt(&long);
        assert!(cut.ends_with("…\" (2000 bytes)"), "{cut}");
        assert!(cut.len() < 120 && !cut.contains('\n'), "{cut}");
        assert_eq!(shown("lots"), "lots");
        assert_eq!(shown("a\tb"), r#""a\tb""#);
        assert_eq!(escaped("a\u{1b}[2J"), r"a\u{1b}[2J");
        let wide = shown(&"é".repeat(200)).into_owned();
        assert_eq!(wide, format!("\"{}…\" (400 bytes)", "é".repeat(64)));
        // Text that ends in … itself is not taken for a cut one.
        assert_eq!(excerpt("wait…"), "\"wait…\"");
    }
}
