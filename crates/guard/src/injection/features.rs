//! Hashed word and character n-gram features, shared by the injection and content models.
//!
//! The feature map must be identical at training time (`examples/train_guard/`) and at
//! inference time, so it lives here, in one place, and is deterministic: fixed FNV-1a and
//! multiply-shift hashing (not `std`'s randomly seeded one) and no allocation per feature.
//!
//! Features of each token (an alphanumeric run, lowercased, "leet" digits folded to letters
//! when the token mixes digits and letters, cut at [`MAX_TOKEN_BYTES`]):
//! the word ([`WORDS`]), the word bigram ending at it ([`BIGRAMS`]), and the character 3- and
//! 4-grams of `<token>` ([`CHARS3`], [`CHARS4`]); a model records which families it was
//! trained on (the embedded ones use words, bigrams and 4-grams). Character n-grams make the
//! model robust to inflections and misspellings (`ignoring`, `instrucitons`) that an
//! attacker uses to dodge word lists.

/// Tokens are cut at this many bytes: long runs (hashes, base64) carry no more signal.
pub const MAX_TOKEN_BYTES: usize = 24;
/// Shortest character n-gram.
pub const CHAR_NGRAM_MIN: usize = 3;
/// Longest character n-gram.
pub const CHAR_NGRAM_MAX: usize = 4;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const SEED_WORD: u64 = 0x5741_4f52_4400_0001;
const SEED_BIGRAM: u64 = 0x4249_4752_4100_0002;
const SEED_CHAR: u64 = 0x4348_4152_0000_0003;
const SEED_NAMED: u64 = 0x4e41_4d45_4400_0004;

#[inline]
fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET ^ seed;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

#[inline]
fn bucket(h: u64, bits: u8) -> u32 {
    // Multiply-shift (Dietzfelbinger) on a pre-mixed key: one multiplication per feature,
    // and the top bits, which a multiplication mixes best, pick the bucket.
    let shift = 64u32.saturating_sub(u32::from(bits.clamp(1, 31)));
    let z = (h ^ (h >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    u32::try_from(z >> shift).unwrap_or(0)
}

fn fold_leet(token: &mut [u8]) {
    let has_digit = token.iter().any(u8::is_ascii_digit);
    let has_alpha = token.iter().any(u8::is_ascii_alphabetic);
    if !(has_digit && has_alpha) {
        return;
    }
    for b in token.iter_mut() {
        *b = match *b {
            b'0' => b'o',
            b'1' => b'i',
            b'3' => b'e',
            b'4' => b'a',
            b'5' => b's',
            b'7' => b't',
            b'8' => b'b',
            other => other,
        };
    }
}

/// Feature family: the token itself.
pub const WORDS: u8 = 1;
/// Feature family: the bigram of the previous and the current token.
pub const BIGRAMS: u8 = 2;
/// Feature family: character 3-grams of the token.
pub const CHARS3: u8 = 4;
/// Feature family: character 4-grams of the token.
pub const CHARS4: u8 = 8;
/// Every feature family.
pub const ALL_FEATURES: u8 = WORDS | BIGRAMS | CHARS3 | CHARS4;

/// The bucket of a named feature that is not an n-gram (e.g. a lexicon rule that fired).
pub fn named_bucket(name: &str, buckets_log2: u8) -> u32 {
    bucket(fnv(SEED_NAMED, name.as_bytes()), buckets_log2)
}

/// Call `f(bucket, token_index)` for every feature of `text` in the families of `families`
/// ([`WORDS`], [`BIGRAMS`], [`CHARS3`], [`CHARS4`]), with buckets in `0..2^buckets_log2`. Returns the
/// number of tokens.
pub fn for_each_feature(
    text: &str,
    buckets_log2: u8,
    families: u8,
    mut f: impl FnMut(u32, u32),
) -> u32 {
    // Token buffer with room for the `<` `>` boundary marks used by character n-grams.
    let mut buf = [0u8; MAX_TOKEN_BYTES + 2];
    let mut len = 0usize;
    let mut prev_word: u64 = 0;
    let mut index: u32 = 0;
    let mut emit = |buf: &mut [u8; MAX_TOKEN_BYTES + 2], len: usize, index: u32, prev: &mut u64| {
        let Some(token) = buf.get_mut(1..=len) else {
            return;
        };
        fold_leet(token);
        let word = fnv(SEED_WORD, token);
        if families & WORDS != 0 {
            f(bucket(word, buckets_log2), index);
        }
        if families & BIGRAMS != 0 {
            f(
                bucket(word ^ prev.rotate_left(17) ^ SEED_BIGRAM, buckets_log2),
                index,
            );
        }
        *prev = word;
        let (char3, char4) = (families & CHARS3 != 0, families & CHARS4 != 0);
        if !(char3 || char4) {
            return;
        }
        buf[0] = b'<';
        if let Some(end) = buf.get_mut(len + 1) {
            *end = b'>';
        }
        let framed = buf.get(..len + 2).unwrap_or_default();
        // Rolling window of the last four bytes: a 3-gram is its low 24 bits, a 4-gram its
        // low 32 bits, tagged with the length so the two never collide by construction.
        let mut window: u64 = 0;
        for (i, &b) in framed.iter().enumerate() {
            window = (window << 8) | u64::from(b);
            if char3 && i + 1 >= CHAR_NGRAM_MIN {
                f(
                    bucket((window & 0xff_ffff) ^ (3 << 56) ^ SEED_CHAR, buckets_log2),
                    index,
                );
            }
            if char4 && i + 1 >= CHAR_NGRAM_MAX {
                f(
                    bucket((window & 0xffff_ffff) ^ (4 << 56) ^ SEED_CHAR, buckets_log2),
                    index,
                );
            }
        }
    };
    // Bytes, not chars: prompts are mostly ASCII, and only the rare non-ASCII byte pays for
    // decoding a char.
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b < 0x80 {
            i += 1;
            if b.is_ascii_alphanumeric() {
                if len < MAX_TOKEN_BYTES {
                    buf[len + 1] = b.to_ascii_lowercase();
                    len += 1;
                }
            } else if len > 0 {
                emit(&mut buf, len, index, &mut prev_word);
                index = index.saturating_add(1);
                len = 0;
            }
            continue;
        }
        let Some(c) = text.get(i..).and_then(|rest| rest.chars().next()) else {
            break;
        };
        i += c.len_utf8();
        if c.is_alphanumeric() {
            for lower in c.to_lowercase() {
                let mut tmp = [0u8; 4];
                let encoded = lower.encode_utf8(&mut tmp).as_bytes();
                if len + encoded.len() <= MAX_TOKEN_BYTES {
                    for &b in encoded {
                        buf[len + 1] = b;
                        len += 1;
                    }
                } else {
                    len = MAX_TOKEN_BYTES;
                }
            }
        } else if len > 0 {
            emit(&mut buf, len, index, &mut prev_word);
            index = index.saturating_add(1);
            len = 0;
        }
    }
    if len > 0 {
        emit(&mut buf, len, index, &mut prev_word);
        index = index.saturating_add(1);
    }
    index
}

/// The features of one text, extracted once and scored by every model that shares its hash
/// space and feature families (the injection and content models do).
#[derive(Debug, Clone, Default)]
pub struct FeatureBag {
    buckets_log2: u8,
    families: u8,
    /// Buckets in token order.
    buckets: Vec<u32>,
    /// Number of features of each token, in order (tokens without features are skipped).
    per_token: Vec<u32>,
}

impl FeatureBag {
    /// Extract the features of `text`.
    pub fn new(text: &str, buckets_log2: u8, families: u8) -> Self {
        let mut buckets = Vec::with_capacity(text.len() + text.len() / 2);
        let mut per_token: Vec<u32> = Vec::with_capacity(text.len() / 4 + 1);
        let mut current = u32::MAX;
        for_each_feature(text, buckets_log2, families, |b, i| {
            buckets.push(b);
            if i != current {
                current = i;
                per_token.push(0);
            }
            if let Some(n) = per_token.last_mut() {
                *n += 1;
            }
        });
        Self {
            buckets_log2,
            families,
            buckets,
            per_token,
        }
    }

    /// Hash space, as a power of two.
    pub fn buckets_log2(&self) -> u8 {
        self.buckets_log2
    }

    /// Feature families extracted.
    pub fn families(&self) -> u8 {
        self.families
    }

    /// Number of tokens that have features.
    pub fn tokens(&self) -> usize {
        self.per_token.len()
    }

    /// All buckets, in token order.
    pub fn buckets(&self) -> &[u32] {
        &self.buckets
    }

    /// The buckets of each token, in order.
    pub fn tokens_buckets(&self) -> impl Iterator<Item = &[u32]> {
        let mut rest = self.buckets.as_slice();
        self.per_token.iter().map(move |&n| {
            let (head, tail) = rest.split_at(usize::try_from(n).unwrap_or(0).min(rest.len()));
            rest = tail;
            head
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(text: &str) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for_each_feature(text, 18, ALL_FEATURES, |b, i| out.push((b, i)));
        out
    }

    #[test]
    fn deterministic_and_case_insensitive() {
        assert_eq!(features("Ignore ALL"), features("ignore all"));
        assert_eq!(features("ignore, all!"), features("ignore all"));
    }

    #[test]
    fn leet_digits_fold_only_in_mixed_tokens() {
        assert_eq!(features("f0rg3t"), features("forget"));
        assert_ne!(features("2024"), features("zoza"));
    }

    #[test]
    fn buckets_stay_in_range_and_tokens_are_counted() {
        let mut max = 0;
        let n = for_each_feature("a bb ccc dddd ünïcödé", 10, ALL_FEATURES, |b, _| {
            max = max.max(b)
        });
        assert_eq!(n, 5);
        assert!(max < 1024);
    }

    #[test]
    fn long_tokens_are_cut() {
        let long = "x".repeat(10_000);
        let n = features(&long).len();
        assert!(n < 2 * MAX_TOKEN_BYTES + 10);
    }
}
