//! Bounding rules for text that reaches the audit tables.
//!
//! Every bounded column is cut at a character boundary (never inside a UTF-8
//! sequence) and marked with a trailing `…` when cut, so unicode and emoji round-trip
//! and no input can make an insert fail on length.

/// Cuts `s` to at most `max` characters, ending in `…` when it was longer.
pub(crate) fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some(_) => {
            let keep = max.saturating_sub(1);
            let end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
            let mut out = String::with_capacity(end + 3);
            out.push_str(&s[..end]);
            out.push('…');
            out
        }
    }
}

/// [`bounded`], with an empty string meaning "none".
pub(crate) fn bounded_opt(s: String, max: usize) -> Option<String> {
    if s.is_empty() {
        None
    } else if s.chars().nth(max).is_none() {
        Some(s)
    } else {
        Some(bounded(&s, max))
    }
}

/// Removes control characters (newlines, escapes, NUL) that have no place in a header-like value.
pub(crate) fn strip_control(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_char_boundary_and_marks() {
        assert_eq!(bounded("abcdef", 4), "abc…");
        assert_eq!(bounded("abcd", 4), "abcd");
        assert_eq!(bounded("🦀🦀🦀🦀🦀", 3), "🦀🦀…");
        assert_eq!(bounded("héllo wörld", 5).chars().count(), 5);
    }

    #[test]
    fn empty_is_none() {
        assert_eq!(bounded_opt(String::new(), 5), None);
        assert_eq!(bounded_opt("abcdefgh".into(), 5).as_deref(), Some("abcd…"));
    }

    #[test]
    fn control_chars_removed() {
        assert_eq!(strip_control("a\r\nb\u{1b}[0m\0"), "ab[0m");
    }
}
