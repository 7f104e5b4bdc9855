//! Input quoted in error messages: on one line, control characters escaped, and short, so
//! that a message about a file or an argument never prints the whole of it.

use std::borrow::Cow;

/// The most characters of input an error message quotes.
pub const MAX_QUOTED_CHARS: usize = 64;

/// `text` quoted and escaped as Rust's `{:?}` does, cut to [`MAX_QUOTED_CHARS`] characters
/// with its full length said when it is longer: `"root:x:0:0:root:/root…" (1290 bytes)`.
pub fn excerpt(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(MAX_QUOTED_CHARS).collect();
    if chars.next().is_none() {
        format!("{head:?}")
    } else {
        let quoted = format!("{head:?}");
        format!(
            "{}…\" ({} bytes)",
            quoted.strip_suffix('"').unwrap_or(&quoted),
            text.len()
        )
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
        assert_eq!(
            shown(&"é".repeat(200)).chars().count(),
            67 + " (400 bytes)".len()
        );
    }
}
