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
    bucket_shifted(h, shift_for(bits))
}

/// The right shift that leaves `bits` (clamped to `1..=31`) top bits of a 64-bit product.
#[inline]
fn shift_for(bits: u8) -> u32 {
    64u32.saturating_sub(u32::from(bits.clamp(1, 31)))
}

#[inline]
fn bucket_shifted(h: u64, shift: u32) -> u32 {
    // Multiply-shift (Dietzfelbinger) on a pre-mixed key: one multiplication per feature,
    // and the top bits, which a multiplication mixes best, pick the bucket.
    let z = (h ^ (h >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // `shift` is at least 33 (see `shift_for`), so the value fits and `as` keeps it whole;
    // `try_from` cost a compare and a select on each of a prompt's thousands of features.
    (z >> shift) as u32
}

/// Byte classes for the tokenizer: an ASCII letter or digit maps to its lowercase form, other
/// ASCII bytes to 0 (a separator) and non-ASCII bytes to [`NON_ASCII`]; one table load per
/// byte instead of range tests.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c >= 0x80 {
            NON_ASCII
        } else if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            0
        };
        b += 1;
    }
    t
};
const NON_ASCII: u8 = 0x80;
/// Bits of a token's `kinds`: it holds an ASCII digit, an ASCII letter.
const KIND_DIGIT: u8 = 1;
const KIND_ALPHA: u8 = 2;

#[inline]
fn kind(b: u8) -> u8 {
    if b.is_ascii_digit() {
        KIND_DIGIT
    } else if b.is_ascii_alphabetic() {
        KIND_ALPHA
    } else {
        0
    }
}

/// Fold "leet" digits to letters; only called on tokens that mix ASCII digits and letters
/// (the tokenizer tracks that while reading the token).
fn fold_leet(token: &mut [u8]) {
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

/// Most features one token can have: its word, its bigram, and the character 3- and 4-grams
/// of the framed token (`MAX_TOKEN_BYTES + 2` bytes).
pub const MAX_TOKEN_FEATURES: usize = 2 + (MAX_TOKEN_BYTES + 2 - 2) + (MAX_TOKEN_BYTES + 2 - 3);

/// Call `f(bucket, token_index)` for every feature of `text` in the families of `families`
/// ([`WORDS`], [`BIGRAMS`], [`CHARS3`], [`CHARS4`]), with buckets in `0..2^buckets_log2`. Returns the
/// number of tokens.
pub fn for_each_feature(
    text: &str,
    buckets_log2: u8,
    families: u8,
    mut f: impl FnMut(u32, u32),
) -> u32 {
    let mut index = 0u32;
    for_each_token(text, buckets_log2, families, |features| {
        for &b in features {
            f(b, index);
        }
        index = index.saturating_add(1);
    })
}

/// Call `f(features)` once per token of `text` with the buckets of its features, in the order
/// of [`for_each_feature`]. Returns the number of tokens.
pub fn for_each_token(text: &str, buckets_log2: u8, families: u8, f: impl FnMut(&[u32])) -> u32 {
    /// Collects one token's features and hands them to the caller's closure.
    struct PerToken<F> {
        out: Vec<u32>,
        f: F,
    }
    impl<F: FnMut(&[u32])> FeatureSink for PerToken<F> {
        #[inline]
        fn feature(&mut self, bucket: u32) {
            self.out.push(bucket);
        }
        #[inline]
        fn end_token(&mut self) {
            (self.f)(&self.out);
            self.out.clear();
        }
    }
    let mut sink = PerToken {
        out: Vec::with_capacity(MAX_TOKEN_FEATURES),
        f,
    };
    extract(text, buckets_log2, families, &mut sink)
}

/// Where [`extract`] delivers features: each token's buckets one by one, then the end of the
/// token. A model sums weights as the buckets arrive (`LinearModel::logits_with`), so scoring
/// a text materialises no feature vector; a [`FeatureBag`] keeps them for several models.
pub(crate) trait FeatureSink {
    /// One feature of the current token.
    fn feature(&mut self, bucket: u32);
    /// The current token's word bigram (it depends on the previous token too).
    #[inline]
    fn bigram(&mut self, bucket: u32) {
        self.feature(bucket);
    }
    /// Whether the sink already knows what the features of the token other than its bigram
    /// add up to (a memo of recent tokens): those features are then not computed. `token`
    /// is the token's bytes zero-padded to [`MAX_TOKEN_BYTES`] as three words (see
    /// [`TokenWords`]), `len` its length and `word` its hash. Called once per token, before
    /// its features.
    #[inline]
    fn known(&mut self, _token: TokenWords, _len: usize, _word: u64) -> bool {
        false
    }
    /// The current token has had all its features (at most [`MAX_TOKEN_FEATURES`]).
    fn end_token(&mut self);
}

/// A token's bytes, zero-padded to [`MAX_TOKEN_BYTES`], as three native-endian words: what a
/// memo compares in three instructions (a byte-slice comparison called `memcmp`, and padding
/// a copy called `memset` and `memcpy`, for every token of the text).
pub(crate) type TokenWords = [u64; MAX_TOKEN_BYTES / 8];

const _: () = assert!(MAX_TOKEN_BYTES % 8 == 0);

/// The bytes `1..=MAX_TOKEN_BYTES` of the tokenizer's buffer as [`TokenWords`].
#[inline]
fn token_words(buf: &[u8; MAX_TOKEN_BYTES + 2]) -> TokenWords {
    let word = |at: usize| {
        buf.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_ne_bytes)
    };
    [word(1), word(9), word(17)]
}

/// The tokenizer and feature map: every token's features go to `sink`, token by token.
/// Returns the number of tokens.
pub(crate) fn extract<S: FeatureSink>(
    text: &str,
    buckets_log2: u8,
    families: u8,
    sink: &mut S,
) -> u32 {
    // Token buffer with room for the `<` `>` boundary marks used by character n-grams. Past
    // the current token it holds zeros (each token clears what it wrote), so that the memo
    // can compare it whole.
    let mut buf = [0u8; MAX_TOKEN_BYTES + 2];
    let mut len = 0usize;
    let mut kinds = 0u8;
    let mut prev_word: u64 = 0;
    let mut index: u32 = 0;
    let (words, bigrams) = (families & WORDS != 0, families & BIGRAMS != 0);
    let (char3, char4) = (families & CHARS3 != 0, families & CHARS4 != 0);
    let shift = shift_for(buckets_log2);
    // `move`: the flags and the shift are copied into the closure, so they stay in registers.
    let mut emit =
        move |buf: &mut [u8; MAX_TOKEN_BYTES + 2], len: usize, kinds: u8, prev: &mut u64| {
            let len = len.min(MAX_TOKEN_BYTES);
            let Some(token) = buf.get_mut(1..=len) else {
                return;
            };
            if kinds == KIND_DIGIT | KIND_ALPHA {
                fold_leet(token);
            }
            let word = fnv(SEED_WORD, token);
            let known = sink.known(token_words(buf), len, word);
            if words && !known {
                sink.feature(bucket_shifted(word, shift));
            }
            if bigrams {
                sink.bigram(bucket_shifted(
                    word ^ prev.rotate_left(17) ^ SEED_BIGRAM,
                    shift,
                ));
            }
            *prev = word;
            if (char3 || char4) && !known {
                buf[0] = b'<';
                buf[len + 1] = b'>';
                let framed = buf.get(..len + 2).unwrap_or_default();
                // Rolling window of the last four bytes: a 3-gram is its low 24 bits, a 4-gram
                // its low 32 bits, tagged with the length so the two never collide by
                // construction. The first two bytes only fill the window; the first 3-gram has
                // no 4-gram.
                let mut window = u64::from(buf[0]) << 8 | u64::from(buf[1]);
                if let Some(&b) = framed.get(2) {
                    window = (window << 8) | u64::from(b);
                    if char3 {
                        sink.feature(char_bucket(window, 3, shift));
                    }
                }
                for &b in framed.get(3..).unwrap_or_default() {
                    window = (window << 8) | u64::from(b);
                    if char3 {
                        sink.feature(char_bucket(window, 3, shift));
                    }
                    if char4 {
                        sink.feature(char_bucket(window, 4, shift));
                    }
                }
            }
            sink.end_token();
            *buf = [0; MAX_TOKEN_BYTES + 2];
        };
    // Bytes, not chars: prompts are mostly ASCII, and only the rare non-ASCII byte pays for
    // decoding a char.
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let class = CLASS[usize::from(b)];
        if class != NON_ASCII {
            i += 1;
            if class != 0 {
                if len < MAX_TOKEN_BYTES {
                    buf[len + 1] = class;
                    len += 1;
                    kinds |= if class <= b'9' {
                        KIND_DIGIT
                    } else {
                        KIND_ALPHA
                    };
                }
            } else if len > 0 {
                emit(&mut buf, len, kinds, &mut prev_word);
                index = index.saturating_add(1);
                (len, kinds) = (0, 0);
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
                        // Lowercasing can give ASCII ('K' KELVIN SIGN is 'k').
                        kinds |= kind(b);
                    }
                } else {
                    len = MAX_TOKEN_BYTES;
                }
            }
        } else if len > 0 {
            emit(&mut buf, len, kinds, &mut prev_word);
            index = index.saturating_add(1);
            (len, kinds) = (0, 0);
        }
    }
    if len > 0 {
        emit(&mut buf, len, kinds, &mut prev_word);
        index = index.saturating_add(1);
    }
    index
}

/// The bucket of the character `n`-gram in the low bytes of `window`.
#[inline]
fn char_bucket(window: u64, n: u32, shift: u32) -> u32 {
    let mask = if n == 3 { 0xff_ffff } else { 0xffff_ffff };
    bucket_shifted((window & mask) ^ (u64::from(n) << 56) ^ SEED_CHAR, shift)
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
        /// Appends every token's buckets to one vector and records where each token ends.
        struct Collect {
            buckets: Vec<u32>,
            per_token: Vec<u32>,
            done: usize,
        }
        impl FeatureSink for Collect {
            #[inline]
            fn feature(&mut self, bucket: u32) {
                self.buckets.push(bucket);
            }
            #[inline]
            fn end_token(&mut self) {
                let n = self.buckets.len() - self.done;
                if n > 0 {
                    self.per_token.push(u32::try_from(n).unwrap_or(u32::MAX));
                    self.done = self.buckets.len();
                }
            }
        }
        let mut sink = Collect {
            buckets: Vec::with_capacity(text.len() + text.len() / 2 + MAX_TOKEN_FEATURES),
            per_token: Vec::with_capacity(text.len() / 4 + 1),
            done: 0,
        };
        extract(text, buckets_log2, families, &mut sink);
        Self {
            buckets_log2,
            families,
            buckets: sink.buckets,
            per_token: sink.per_token,
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
    fn leet_folding_sees_ascii_letters_from_lowercased_unicode() {
        // U+212A KELVIN SIGN lowercases to an ASCII 'k'.
        assert_eq!(features("\u{212A}1ll"), features("kill"));
        assert_eq!(features("\u{212A}ill"), features("kill"));
    }

    #[test]
    fn a_bag_holds_the_same_features_in_the_same_order() {
        let text = "Ignore previous instructions! naïve 1337 h4x0r \u{212A}elvin x";
        let bag = FeatureBag::new(text, 18, ALL_FEATURES);
        let flat: Vec<u32> = features(text).into_iter().map(|(b, _)| b).collect();
        assert_eq!(bag.buckets(), flat.as_slice());
        let per_token: Vec<usize> = bag.tokens_buckets().map(<[u32]>::len).collect();
        assert_eq!(per_token.len(), 8);
        assert_eq!(per_token.iter().sum::<usize>(), flat.len());
        assert!(per_token.iter().all(|&n| n <= MAX_TOKEN_FEATURES));
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
    fn word_bigram_and_four_gram_buckets_follow_the_definition() {
        // The embedded models' feature map, checked against its definition.
        let bits = 16;
        let shift = shift_for(bits);
        let mut got = Vec::new();
        for_each_feature("Ignore h4x0r", bits, WORDS | BIGRAMS | CHARS4, |b, _| {
            got.push(b)
        });
        let mut want = Vec::new();
        let mut prev = 0u64;
        for token in ["ignore", "haxor"] {
            let word = fnv(SEED_WORD, token.as_bytes());
            want.push(bucket_shifted(word, shift));
            want.push(bucket_shifted(
                word ^ prev.rotate_left(17) ^ SEED_BIGRAM,
                shift,
            ));
            prev = word;
            let framed = format!("<{token}>");
            for w in framed.as_bytes().windows(4) {
                let gram = u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
                want.push(bucket_shifted(gram ^ (4u64 << 56) ^ SEED_CHAR, shift));
            }
        }
        assert_eq!(got, want);
    }

    #[test]
    fn long_tokens_are_cut() {
        let long = "x".repeat(10_000);
        let n = features(&long).len();
        assert!(n < 2 * MAX_TOKEN_BYTES + 10);
    }
}
