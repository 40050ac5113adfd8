//! A cheap, exact test that lets the assignment rules skip text they cannot match.
//!
//! Every assignment pattern (`NAME = value`, `name: … value: …`, `ENV NAME value`,
//! `<NameKey>value</`, `Bearer value`) needs a value of at least [`MIN_VALUE_RUN`] bytes
//! from `[A-Za-z0-9_+/=.~-]`. Prose has no such run (words are shorter and spaces end
//! them), and running the five capture regexes over it cost about two thirds of the
//! credential scan of plain English (callgrind: 33 of 48 instructions per byte).

/// Shortest value any assignment pattern accepts (`{16,256}`; `Bearer` needs 24).
pub(super) const MIN_VALUE_RUN: usize = 16;

/// Bytes a value may be made of. Non-ASCII bytes count too: under `(?i)` the class
/// `[A-Za-z]` also matches the Kelvin sign and the long s, so they must not end a run here.
const VALUE_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c >= 0x80
            || c.is_ascii_alphanumeric()
            || matches!(c, b'_' | b'+' | b'/' | b'=' | b'.' | b'~' | b'-');
        b += 1;
    }
    t
};

/// Whether `text` holds a run of at least `min` value bytes: when it does not, no
/// assignment pattern can match.
///
/// Every window of `min` bytes holds one of the probe positions `min - 1`, `2 min - 1`, …
/// (counted from the end of the last run measured), so only runs through a probe are
/// measured: a probe lands in a word, the word is measured, and the next probe is `min`
/// bytes past its end (callgrind, the 4 KB benchmark prompt: 21k instructions byte by byte,
/// 9k probing).
pub(super) fn has_value_run(text: &str, min: usize) -> bool {
    let bytes = text.as_bytes();
    let Some(step) = min.checked_sub(1) else {
        return true;
    };
    let value = |i: usize| bytes.get(i).is_some_and(|&b| VALUE_BYTES[usize::from(b)]);
    let mut probe = step;
    while probe < bytes.len() {
        if !value(probe) {
            // A run that is still to be found starts after the probe.
            probe += min;
            continue;
        }
        let mut start = probe;
        while start > 0 && value(start - 1) {
            start -= 1;
        }
        let mut end = probe + 1;
        while value(end) {
            end += 1;
        }
        if end - start >= min {
            return true;
        }
        // `end` is no value byte: the next run starts after it.
        probe = end + min;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_has_no_value_run_and_a_key_has_one() {
        let prose = "The committee met on a quiet afternoon to review the proposal.";
        assert!(!has_value_run(prose, MIN_VALUE_RUN));
        assert!(has_value_run("api_key = abcdef0123456789", MIN_VALUE_RUN));
        assert!(!has_value_run("api_key = abcdef012345678", MIN_VALUE_RUN));
        // A case-folded Kelvin sign inside a value keeps the run going.
        assert!(has_value_run(
            "token=abcdefgh\u{212A}ijklmnop",
            MIN_VALUE_RUN
        ));
    }

    /// The byte-by-byte definition that the probing search must agree with.
    fn has_value_run_naive(text: &str, min: usize) -> bool {
        let mut run = 0usize;
        for &b in text.as_bytes() {
            if VALUE_BYTES[usize::from(b)] {
                run += 1;
                if run >= min {
                    return true;
                }
            } else {
                run = 0;
            }
        }
        false
    }

    proptest::proptest! {
        #[test]
        fn probing_agrees_with_reading_every_byte(
            text in "[a b_=é\\n-]{0,80}",
            min in 1usize..20,
        ) {
            proptest::prop_assert_eq!(has_value_run(&text, min), has_value_run_naive(&text, min));
        }
    }

    #[test]
    fn text_without_a_run_gets_no_assignment_finding() {
        // The patterns themselves agree: with the prefilter off they find nothing here.
        let text = "password = hunter2 and token: short-one, key=abc.def/ghi";
        assert!(!has_value_run(text, MIN_VALUE_RUN));
        for re in super::super::ASSIGNMENT_RES.iter() {
            assert!(re.captures_iter(text).all(|c| c.get(3).is_none()));
        }
    }
}
