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
///
/// Only word starts are tried: testing every byte offset against every word made context
/// look-ups a fifth of the PII scan of a prompt (callgrind).
pub fn contains_word(window: &str, words: &[&str]) -> bool {
    let hay = window.as_bytes();
    // A word that opens with punctuation ("#id", from a custom recognizer) can start
    // anywhere: those few take the slow path.
    if contains_odd_word_anywhere(hay, words) {
        return true;
    }
    let mut i = 0;
    while i < hay.len() {
        if !hay[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        // `i` starts a word: the byte before it, if any, is not an ASCII letter or digit.
        // The first byte settles most words (a context list has dozens), before any slicing.
        let first = hay[i].to_ascii_lowercase();
        for w in words {
            let w = w.as_bytes();
            if w.first().map(u8::to_ascii_lowercase) != Some(first) {
                continue;
            }
            let end = i + w.len();
            if opens_with_alphanumeric(w)
                && end <= hay.len()
                && hay[i..end].eq_ignore_ascii_case(w)
                && (end == hay.len() || !hay[end].is_ascii_alphanumeric())
            {
                return true;
            }
        }
        while i < hay.len() && hay[i].is_ascii_alphanumeric() {
            i += 1;
        }
    }
    false
}

fn opens_with_alphanumeric(w: &[u8]) -> bool {
    w.first().is_some_and(u8::is_ascii_alphanumeric)
}

/// [`contains_word`] trying every byte offset, for the words that open with punctuation.
fn contains_odd_word_anywhere(hay: &[u8], words: &[&str]) -> bool {
    for w in words {
        let w = w.as_bytes();
        if w.is_empty() || opens_with_alphanumeric(w) || w.len() > hay.len() {
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
        assert!(contains_word("(phone)", &["phone"]));
        assert!(contains_word("é-phone", &["phone"]));
        assert!(!contains_word("iphone", &["phone"]));
        assert!(!contains_word("phone2", &["phone"]));
        assert!(!contains_word("ph", &["phone", ""]));
        assert!(contains_word("ref #id 12", &["#id"]));
        assert!(!contains_word("ref a#idx 12", &["#id"]));
    }

    #[test]
    fn window_respects_char_boundaries() {
        let t = "ééééééééééééééééééééééééééééééééééééééé phone 123";
        let s = t.find("123").unwrap();
        assert!(near(t, s, t.len(), &["phone"]));
    }
}
