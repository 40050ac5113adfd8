//! Refusal detection for drift statistics (checklist MI-4): does a completion decline to
//! answer?
//!
//! A rising refusal rate is one of the clearest signs that a model, a prompt or a provider's
//! safety layer changed under a route. The detector is deliberately simple and documented so
//! that its rate is comparable from day to day:
//!
//! 1. Only the **opening** of the answer is examined: its first [`OPENING_CHARS`] characters,
//!    lower-cased, with curly apostrophes straightened. Refusals come first ("I'm sorry, but I
//!    can't…"); a long helpful answer that *mentions* "I can't" deep inside is not one.
//! 2. The opening is a refusal when it contains one of [`PHRASES`], the common refusal
//!    phrasings of current chat models ("i can't help with", "i cannot assist", "i'm not able
//!    to provide", "as an ai language model", "i must decline", …), or starts with an apology
//!    ("sorry", "i'm sorry", "i apologize") followed within the opening by a negated ability
//!    ("can't", "cannot", "unable", "not able", "won't").
//!
//! It is a rate estimator, not a classifier for single answers: some refusals are phrased
//! otherwise and a few apologies are not refusals, but both errors are stable over time, so
//! a *change* in the rate is meaningful. Cost: one lower-cased copy of at most
//! [`OPENING_CHARS`] characters and a handful of substring searches.

/// Characters of the answer's opening that are examined.
pub const OPENING_CHARS: usize = 300;

/// Phrasings that make an opening a refusal on their own (lower case, straight apostrophes).
pub const PHRASES: &[&str] = &[
    "i can't help with",
    "i cannot help with",
    "i can't assist with",
    "i cannot assist with",
    "i can't provide",
    "i cannot provide",
    "i can't comply",
    "i cannot comply",
    "i can't do that",
    "i cannot do that",
    "i can't answer",
    "i cannot answer",
    "i won't be able to",
    "i'm not able to help",
    "i'm not able to provide",
    "i am not able to help",
    "i am not able to provide",
    "i'm unable to help",
    "i'm unable to provide",
    "i'm unable to assist",
    "i am unable to help",
    "i am unable to provide",
    "i am unable to assist",
    "i must decline",
    "i have to decline",
    "i'm not comfortable",
    "i am not comfortable",
    "i can't fulfill",
    "i cannot fulfill",
    "as an ai language model",
    "i'm not allowed to",
    "i am not allowed to",
    "that request violates",
    "against my guidelines",
];

/// Openings of an apology; with a negated ability after them, a refusal.
const APOLOGIES: &[&str] = &[
    "sorry",
    "i'm sorry",
    "i am sorry",
    "i apologize",
    "apologies",
];

/// Negated abilities that turn an apology into a refusal.
const NEGATIONS: &[&str] = &["can't", "cannot", "unable", "not able", "won't", "will not"];

/// Whether `completion` opens with a refusal; see the module doc for the rule.
pub fn is_refusal(completion: &str) -> bool {
    let opening: String = completion
        .trim_start()
        .chars()
        .take(OPENING_CHARS)
        .map(|c| match c {
            '\u{2019}' | '\u{2018}' | '\u{02bc}' => '\'',
            c => c,
        })
        .collect::<String>()
        .to_lowercase();
    if opening.is_empty() {
        return false;
    }
    if PHRASES.iter().any(|p| opening.contains(p)) {
        return true;
    }
    APOLOGIES.iter().any(|a| opening.starts_with(a))
        && NEGATIONS.iter().any(|n| opening.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_refusals_are_detected() {
        for t in [
            "I can't help with that.",
            "I’m sorry, but I can’t assist with that request.",
            "Sorry, I cannot share instructions for making weapons.",
            "I'm unable to provide medical diagnoses. Please consult a doctor.",
            "As an AI language model, I do not have opinions.",
            "  I must decline to answer this question.",
            "I apologize, but I won't write that.",
            "I'm not comfortable writing that story.",
        ] {
            assert!(is_refusal(t), "{t}");
        }
    }

    #[test]
    fn helpful_answers_are_not_refusals() {
        for t in [
            "",
            "   ",
            "Paris is the capital of France.",
            "Sorry for the delay! Here is the summary you asked for: ...",
            "Here is the code. Note that you can't call it twice.",
            "Sure. I cannot stress enough how important backups are.",
        ] {
            assert!(!is_refusal(t), "{t}");
        }
    }

    #[test]
    fn only_the_opening_counts() {
        let long = format!(
            "{} I can't help with that.",
            "Here is a long answer. ".repeat(20)
        );
        assert!(!is_refusal(&long));
        let mut near = "x".repeat(OPENING_CHARS - 5);
        near.push_str(" i can't help with");
        assert!(!is_refusal(&near), "cut at the opening boundary");
        let multibyte = format!("{}I can't help with that", "é".repeat(10));
        assert!(is_refusal(&multibyte));
    }
}
