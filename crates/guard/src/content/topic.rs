//! Topic allow and deny lists, for routes that must stay on their subject.
//!
//! A support bot for a bank should not write poems or give medical advice: a route lists the
//! phrases of the topics it allows and of those it denies. Deny wins over allow; with an allow
//! list, a text that names none of its topics is off-topic. Phrases match whole words,
//! case-insensitively, on normalised text (so Unicode tricks do not hide a denied topic).

use regex::bytes::{RegexSet, RegexSetBuilder};

use crate::normalize::normalize_text;

/// Most phrases in one list: the lists come from config, which an operator controls, but a
/// bounded list keeps the compiled automaton small.
pub const MAX_TOPIC_PHRASES: usize = 2_000;
/// Longest phrase, in bytes.
pub const MAX_TOPIC_PHRASE_BYTES: usize = 200;

/// Why a topic policy could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopicError {
    /// Too many phrases in one list.
    #[error("topic list has {0} phrases, the limit is {MAX_TOPIC_PHRASES}")]
    TooManyPhrases(usize),
    /// A phrase is empty or too long.
    #[error("topic phrase {index} is empty or longer than {MAX_TOPIC_PHRASE_BYTES} bytes")]
    BadPhrase {
        /// Position of the phrase in its list.
        index: usize,
    },
    /// The phrases could not be compiled (size limit).
    #[error("topic list too large to compile")]
    Compile,
}

/// The outcome of a topic check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicVerdict {
    /// On topic (or no allow list and nothing denied).
    Allowed,
    /// A denied phrase occurs; `index` is its position in the deny list (never the text).
    Denied {
        /// Index into the deny list.
        index: usize,
    },
    /// The policy has an allow list and the text matches none of it.
    OffTopic,
}

/// Allow and deny phrase lists, each compiled once into one automaton.
#[derive(Debug, Clone, Default)]
pub struct TopicPolicy {
    allow: Option<RegexSet>,
    deny: Option<RegexSet>,
}

/// One pattern per phrase: whole words, case-insensitive, any whitespace run between words;
/// punctuation inside a phrase stays literal.
fn pattern(phrase: &str) -> String {
    let words = phrase
        .split_whitespace()
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(r"\s+");
    format!(r"(?:^|[^\pL\pN])(?:{words})(?:$|[^\pL\pN])")
}

fn compile(phrases: &[String]) -> Result<Option<RegexSet>, TopicError> {
    if phrases.is_empty() {
        return Ok(None);
    }
    RegexSetBuilder::new(phrases.iter().map(|p| pattern(p)))
        .case_insensitive(true)
        .size_limit(64 << 20)
        .build()
        .map(Some)
        .map_err(|_| TopicError::Compile)
}

fn check_list(phrases: &[&str]) -> Result<Vec<String>, TopicError> {
    if phrases.len() > MAX_TOPIC_PHRASES {
        return Err(TopicError::TooManyPhrases(phrases.len()));
    }
    phrases
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let p = normalize_text(p.trim());
            if p.is_empty() || p.len() > MAX_TOPIC_PHRASE_BYTES {
                Err(TopicError::BadPhrase { index })
            } else {
                Ok(p)
            }
        })
        .collect()
}

impl TopicPolicy {
    /// Build a policy. An empty allow list allows every topic not denied.
    pub fn new(allow: &[&str], deny: &[&str]) -> Result<Self, TopicError> {
        let allow = compile(&check_list(allow)?)?;
        let deny = compile(&check_list(deny)?)?;
        Ok(Self { allow, deny })
    }

    /// Check a text against the policy.
    pub fn check(&self, text: &str) -> TopicVerdict {
        let text = normalize_text(text);
        let bytes = text.as_bytes();
        // The lowest index wins, so a verdict does not depend on match order.
        if let Some(index) = self
            .deny
            .as_ref()
            .and_then(|d| d.matches(bytes).into_iter().next())
        {
            return TopicVerdict::Denied { index };
        }
        match &self.allow {
            Some(allow) if !allow.is_match(bytes) => TopicVerdict::OffTopic,
            _ => TopicVerdict::Allowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_wins_and_allow_list_flags_off_topic() {
        let p = TopicPolicy::new(
            &["account", "credit card", "mortgage"],
            &["medical advice", "crypto"],
        )
        .unwrap();
        assert_eq!(p.check("How do I close my account?"), TopicVerdict::Allowed);
        assert_eq!(
            p.check("Can I pay my mortgage by CREDIT   CARD?"),
            TopicVerdict::Allowed
        );
        assert_eq!(
            p.check("Give me medical advice about my account"),
            TopicVerdict::Denied { index: 0 }
        );
        assert_eq!(
            p.check("Should I buy crypto?"),
            TopicVerdict::Denied { index: 1 }
        );
        assert_eq!(p.check("Write a poem about spring"), TopicVerdict::OffTopic);
        // Whole words only: "cryptography" is not "crypto".
        assert_eq!(p.check("cryptography of my account"), TopicVerdict::Allowed);
    }

    #[test]
    fn unicode_tricks_do_not_hide_a_denied_topic() {
        let p = TopicPolicy::new(&[], &["crypto"]).unwrap();
        assert_eq!(
            p.check("buy cr\u{200B}ypto now"),
            TopicVerdict::Denied { index: 0 }
        );
        assert_eq!(p.check("ｃｒｙｐｔｏ"), TopicVerdict::Denied { index: 0 });
        assert_eq!(p.check("anything"), TopicVerdict::Allowed);
    }

    #[test]
    fn limits_are_enforced() {
        let many: Vec<String> = (0..=MAX_TOPIC_PHRASES).map(|i| format!("t{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            TopicPolicy::new(&refs, &[]).unwrap_err(),
            TopicError::TooManyPhrases(MAX_TOPIC_PHRASES + 1)
        );
        let long = "x".repeat(MAX_TOPIC_PHRASE_BYTES + 1);
        assert_eq!(
            TopicPolicy::new(&[&long], &[]).unwrap_err(),
            TopicError::BadPhrase { index: 0 }
        );
        assert_eq!(
            TopicPolicy::new(&["  "], &[]).unwrap_err(),
            TopicError::BadPhrase { index: 0 }
        );
    }
}
