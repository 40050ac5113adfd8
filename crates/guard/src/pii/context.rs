//! Context words: a detection with a telling word nearby ("phone", "born", "SSN") is more
//! likely real, as in Presidio's context enhancer.

/// Score added when a context word is near.
pub const BOOST: f32 = 0.35;
/// Bytes before a detection searched for context words.
const BEFORE: usize = 64;
/// Bytes after a detection searched for context words.
const AFTER: usize = 24;

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Whether any of `words` (lower-case; may contain spaces) appears as whole words near the
/// span `start..end` of `text`.
pub fn near(text: &str, start: usize, end: usize, words: &[&str]) -> bool {
    let from = floor_boundary(text, start.saturating_sub(BEFORE));
    let to = ceil_boundary(text, (end + AFTER).min(text.len()));
    let before = &text[from..start];
    let after = &text[end..to];
    contains_word(before, words) || contains_word(after, words)
}

/// Whether one of `words` occurs in `window` as a whole word (ASCII case-insensitive).
pub fn contains_word(window: &str, words: &[&str]) -> bool {
    let hay = window.as_bytes();
    for w in words {
        let w = w.as_bytes();
        if w.is_empty() || w.len() > hay.len() {
            continue;
        }
        for i in 0..=hay.len() - w.len() {
            if hay[i..i + w.len()].eq_ignore_ascii_case(w) {
                let before_ok = i == 0 || !hay[i - 1].is_ascii_alphanumeric();
                let after_ok =
                    i + w.len() == hay.len() || !hay[i + w.len()].is_ascii_alphanumeric();
                if before_ok && after_ok {
                    return true;
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_whole_words_only() {
        assert!(contains_word("my phone is", &["phone"]));
        assert!(contains_word("My PHONE: ", &["phone"]));
        assert!(!contains_word("smartphones", &["phone"]));
        assert!(contains_word("date of birth", &["date of birth"]));
    }

    #[test]
    fn window_respects_char_boundaries() {
        let t = "ééééééééééééééééééééééééééééééééééééééé phone 123";
        let s = t.find("123").unwrap();
        assert!(near(t, s, t.len(), &["phone"]));
    }
}
