//! Token estimates for text whose provider reports no usage (the echo provider, failed
//! streams). Budgets and logs need a number; a heuristic close to BPE tokenisers on English
//! and code is better than zero.

/// Estimate the number of tokens in `text`: about four bytes of English per token, with a
/// floor of one token per word so that short words are not undercounted.
pub fn estimate(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    let by_bytes = text.len().div_ceil(4) as u64;
    let words = text.split_whitespace().count() as u64;
    by_bytes.max(words)
}

#[cfg(test)]
mod tests {
    use super::estimate;

    #[test]
    fn empty_is_zero() {
        assert_eq!(estimate(""), 0);
    }

    #[test]
    fn rough_english_ratio() {
        let t = "The quick brown fox jumps over the lazy dog";
        let n = estimate(t);
        assert!((9..=12).contains(&n), "{n}");
    }
}
