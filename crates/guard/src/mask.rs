//! What happens to a detected span: kept, redacted (`[EMAIL]`), partially masked
//! (`****-4242`), hashed under a key (`[EMAIL:9f86d08188]`), replaced by a reversible token
//! (`<EMAIL_1>`) that is restored in the response, or the whole request blocked.
//!
//! Tokens are stable within one [`Masker`] (one request): the same value gets the same token
//! in every message, so the model can still tell that two mentions are the same person.
//! [`StreamRestorer`] restores tokens in a streamed response with a bounded hold-back, so a
//! token split across chunks is still restored.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The action a policy assigns to a kind of detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Leave the text as it is (the detection is still counted).
    Allow,
    /// Replace with `[LABEL]`.
    Redact,
    /// Keep the last four letters or digits (or an e-mail's domain), star the rest.
    Partial,
    /// Replace with `[LABEL:hash]`, a keyed hash: equal values stay linkable, not readable.
    Hash,
    /// Replace with `<LABEL_N>` and restore the original in the response.
    Token,
    /// Refuse the request.
    Block,
}

impl Action {
    /// Parse a config word.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "allow" | "none" | "off" => Self::Allow,
            "redact" => Self::Redact,
            "partial" | "mask" => Self::Partial,
            "hash" => Self::Hash,
            "token" | "tokenize" | "reversible" => Self::Token,
            "block" => Self::Block,
            _ => return None,
        })
    }

    /// Config word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Redact => "redact",
            Self::Partial => "partial",
            Self::Hash => "hash",
            Self::Token => "token",
            Self::Block => "block",
        }
    }
}

/// A span of text to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span<'a> {
    /// Byte start.
    pub start: usize,
    /// Byte end.
    pub end: usize,
    /// Label, e.g. `EMAIL` or `SECRET`.
    pub label: &'a str,
    /// What to do.
    pub action: Action,
}

/// Result of masking one text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Masked {
    /// The text with spans replaced (unchanged when blocked).
    pub text: String,
    /// Count of spans acted on, by label.
    pub counts: BTreeMap<String, usize>,
    /// The label that caused a block, if any.
    pub blocked: Option<String>,
}

/// Longest token we ever emit (`<` + 32-char label + `_` + 6 digits + `>`), the stream
/// restorer's hold-back bound.
pub const MAX_TOKEN_LEN: usize = 41;
/// Most distinct tokens one request may create; beyond it values are redacted instead, so a
/// hostile prompt cannot grow the map without bound.
pub const MAX_TOKENS: usize = 10_000;

/// Masks spans and remembers reversible tokens for one request.
#[derive(Clone)]
pub struct Masker {
    hash_key: [u8; 32],
    by_value: HashMap<(String, String), String>,
    by_token: HashMap<String, String>,
    counters: HashMap<String, u32>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Masker({} tokens)", self.by_token.len())
    }
}

fn partial(value: &str, label: &str) -> String {
    if label == "EMAIL" {
        if let Some((local, domain)) = value.split_once('@') {
            let first: String = local.chars().take(1).collect();
            return format!("{first}***@{domain}");
        }
    }
    let total = value.chars().filter(|c| c.is_alphanumeric()).count();
    let keep = if total > 8 { 4 } else { 0 };
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                seen += 1;
                if seen > total - keep { c } else { '*' }
            } else {
                c
            }
        })
        .collect()
}

impl Masker {
    /// A masker whose `Hash` action is keyed with `hash_key` (unkeyed hashes of phone numbers
    /// or SSNs are reversible by enumeration).
    pub fn new(hash_key: [u8; 32]) -> Self {
        Self {
            hash_key,
            by_value: HashMap::new(),
            by_token: HashMap::new(),
            counters: HashMap::new(),
        }
    }

    /// Whether any reversible token was issued.
    pub fn has_tokens(&self) -> bool {
        !self.by_token.is_empty()
    }

    fn token_for(&mut self, label: &str, value: &str) -> Option<String> {
        let key = (label.to_owned(), value.to_owned());
        if let Some(t) = self.by_value.get(&key) {
            return Some(t.clone());
        }
        if self.by_token.len() >= MAX_TOKENS {
            return None;
        }
        let n = self.counters.entry(label.to_owned()).or_insert(0);
        *n += 1;
        let token = format!("<{label}_{n}>");
        self.by_value.insert(key, token.clone());
        self.by_token.insert(token.clone(), value.to_owned());
        Some(token)
    }

    fn hash(&self, label: &str, value: &str) -> String {
        let digest = match Hmac::<Sha256>::new_from_slice(&self.hash_key) {
            Ok(mut mac) => {
                mac.update(value.as_bytes());
                mac.finalize().into_bytes()
            }
            Err(_) => return format!("[{label}]"),
        };
        let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
        format!("[{label}:{hex}]")
    }

    /// Apply `spans` (sorted, non-overlapping, on char boundaries of `text`) to `text`.
    /// Spans that violate those rules are skipped rather than corrupting the text.
    pub fn apply(&mut self, text: &str, spans: &[Span<'_>]) -> Masked {
        let mut out = Masked::default();
        if let Some(b) = spans.iter().find(|s| s.action == Action::Block) {
            out.blocked = Some(b.label.to_owned());
            *out.counts.entry(b.label.to_owned()).or_insert(0) += 1;
            out.text = text.to_owned();
            return out;
        }
        let mut result = String::with_capacity(text.len());
        let mut pos = 0;
        for s in spans {
            if s.start < pos
                || s.end > text.len()
                || s.start >= s.end
                || !text.is_char_boundary(s.start)
                || !text.is_char_boundary(s.end)
            {
                continue;
            }
            *out.counts.entry(s.label.to_owned()).or_insert(0) += 1;
            let value = &text[s.start..s.end];
            let replacement = match s.action {
                Action::Allow => continue,
                Action::Redact | Action::Block => format!("[{}]", s.label),
                Action::Partial => partial(value, s.label),
                Action::Hash => self.hash(s.label, value),
                Action::Token => self
                    .token_for(s.label, value)
                    .unwrap_or_else(|| format!("[{}]", s.label)),
            };
            result.push_str(&text[pos..s.start]);
            result.push_str(&replacement);
            pos = s.end;
        }
        result.push_str(&text[pos..]);
        out.text = result;
        out
    }

    /// Restore every known token in `text`.
    pub fn restore(&self, text: &str) -> String {
        restore_with(&self.by_token, text)
    }

    /// A restorer for a streamed response, owning a snapshot of the token map.
    pub fn stream_restorer(&self) -> StreamRestorer {
        StreamRestorer {
            map: Arc::new(self.by_token.clone()),
            pending: String::new(),
        }
    }
}

fn restore_with(map: &HashMap<String, String>, text: &str) -> String {
    if map.is_empty() || !text.contains('<') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let mut limit = tail.len().min(MAX_TOKEN_LEN);
        while !tail.is_char_boundary(limit) {
            limit -= 1;
        }
        let close = tail[..limit].find('>');
        match close.and_then(|j| map.get(&tail[..=j]).map(|v| (j, v))) {
            Some((j, v)) => {
                out.push_str(v);
                rest = &tail[j + 1..];
            }
            None => {
                out.push('<');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Restores tokens in text that arrives in pieces, holding back at most
/// [`MAX_TOKEN_LEN`] bytes that might be the start of a token.
#[derive(Debug, Clone)]
pub struct StreamRestorer {
    map: Arc<HashMap<String, String>>,
    pending: String,
}

impl StreamRestorer {
    /// Whether there is anything to restore at all (if not, chunks can pass untouched).
    pub fn is_active(&self) -> bool {
        !self.map.is_empty()
    }

    /// Feed a chunk; returns the text that is safe to emit now.
    pub fn push(&mut self, chunk: &str) -> String {
        if !self.is_active() {
            return chunk.to_owned();
        }
        self.pending.push_str(chunk);
        // Hold back from the last '<' that has no '>' after it and is close enough to the
        // end to be an unfinished token.
        let hold_from = match self.pending.rfind('<') {
            Some(i)
                if !self.pending[i..].contains('>') && self.pending.len() - i < MAX_TOKEN_LEN =>
            {
                i
            }
            _ => self.pending.len(),
        };
        let ready: String = self.pending[..hold_from].to_owned();
        self.pending.drain(..hold_from);
        restore_with(&self.map, &ready)
    }

    /// End of stream: everything left.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        restore_with(&self.map, &rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: usize, end: usize, label: &str, action: Action) -> Span<'_> {
        Span {
            start,
            end,
            label,
            action,
        }
    }

    #[test]
    fn each_action() {
        let t = "mail bob@example.com now";
        let (s, e) = (5, 20);
        let mut m = Masker::new([1; 32]);
        assert_eq!(
            m.apply(t, &[span(s, e, "EMAIL", Action::Redact)]).text,
            "mail [EMAIL] now"
        );
        assert_eq!(
            m.apply(t, &[span(s, e, "EMAIL", Action::Partial)]).text,
            "mail b***@example.com now"
        );
        let h = m.apply(t, &[span(s, e, "EMAIL", Action::Hash)]).text;
        assert!(
            h.starts_with("mail [EMAIL:") && h.len() == "mail [EMAIL:0123456789] now".len(),
            "{h}"
        );
        assert_eq!(
            m.apply(t, &[span(s, e, "EMAIL", Action::Token)]).text,
            "mail <EMAIL_1> now"
        );
        assert_eq!(m.apply(t, &[span(s, e, "EMAIL", Action::Allow)]).text, t);
        let b = m.apply(t, &[span(s, e, "EMAIL", Action::Block)]);
        assert_eq!(b.blocked.as_deref(), Some("EMAIL"));
    }

    #[test]
    fn partial_keeps_last_four() {
        assert_eq!(
            partial("4111 1111 1111 1234", "CARD"),
            "**** **** **** 1234"
        );
        assert_eq!(partial("123-45-6789", "SSN"), "***-**-6789");
        assert_eq!(partial("1234", "X"), "****");
    }

    #[test]
    fn tokens_are_stable_and_restored() {
        let mut m = Masker::new([0; 32]);
        let a = m.apply(
            "a@x.io and b@y.io",
            &[
                span(0, 6, "EMAIL", Action::Token),
                span(11, 17, "EMAIL", Action::Token),
            ],
        );
        assert_eq!(a.text, "<EMAIL_1> and <EMAIL_2>");
        let again = m.apply("b@y.io", &[span(0, 6, "EMAIL", Action::Token)]);
        assert_eq!(again.text, "<EMAIL_2>");
        assert_eq!(
            m.restore("Reply to <EMAIL_2> or <EMAIL_9> <"),
            "Reply to b@y.io or <EMAIL_9> <"
        );
    }

    #[test]
    fn stream_restorer_handles_tokens_split_anywhere() {
        let mut m = Masker::new([0; 32]);
        m.apply("jane@corp.com", &[span(0, 13, "EMAIL", Action::Token)]);
        let answer = "Write to <EMAIL_1> today, <not a token> ok";
        for cut1 in 0..answer.len() {
            for cut2 in cut1..answer.len() {
                let mut r = m.stream_restorer();
                let mut out = r.push(&answer[..cut1]);
                out += &r.push(&answer[cut1..cut2]);
                out += &r.push(&answer[cut2..]);
                out += &r.finish();
                assert_eq!(out, "Write to jane@corp.com today, <not a token> ok");
            }
        }
    }

    #[test]
    fn bad_spans_are_skipped_not_panics() {
        let mut m = Masker::new([0; 32]);
        let t = "héllo";
        let out = m.apply(
            t,
            &[
                span(1, 2, "X", Action::Redact),
                span(4, 99, "X", Action::Redact),
                span(3, 1, "X", Action::Redact),
            ],
        );
        assert_eq!(out.text, t);
    }

    proptest::proptest! {
        #[test]
        fn mask_then_restore_is_identity(text in "\\PC{0,80}", cuts in proptest::collection::vec(0usize..80, 0..6)) {
            let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).filter(|&c| text.is_char_boundary(c)).collect();
            bounds.sort_unstable();
            bounds.dedup();
            let spans: Vec<Span<'_>> = bounds.chunks(2).filter(|c| c.len() == 2 && c[0] < c[1]).map(|c| span(c[0], c[1], "PII", Action::Token)).collect();
            let mut m = Masker::new([0; 32]);
            let masked = m.apply(&text, &spans);
            // Only exact when the original text has no token-like pieces of its own.
            if !text.contains("<PII_") {
                proptest::prop_assert_eq!(m.restore(&masked.text), text.clone());
                let mut r = m.stream_restorer();
                let mid = (0..=masked.text.len()).rev().find(|&i| masked.text.is_char_boundary(i) && i <= masked.text.len() / 2).unwrap_or(0);
                let out = r.push(&masked.text[..mid]) + &r.push(&masked.text[mid..]) + &r.finish();
                proptest::prop_assert_eq!(out, text);
            }
        }
    }
}
