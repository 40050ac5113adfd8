//! Credential rules: which strings are live provider keys, cloud keys or private keys.
//!
//! One rule set serves every caller, so a key that `scan` reports is also a key that the
//! config loader refuses. Rules are anchored on vendor prefixes, which keeps them quiet on
//! ordinary text; placeholders such as `sk-xxxx` or `your-api-key` are filtered out because a
//! finding that blocks a real user for a fake key is a bug.

use std::sync::LazyLock;

use regex::Regex;

/// One credential rule: a stable id (used in findings and reports) and its pattern.
#[derive(Debug)]
pub struct SecretRule {
    /// Stable identifier, e.g. `openai-api-key`.
    pub id: &'static str,
    /// Human description, shown next to findings.
    pub description: &'static str,
    regex: Regex,
}

/// A credential found in a piece of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMatch {
    /// Id of the rule that matched.
    pub rule: &'static str,
    /// Byte range of the credential in the scanned text.
    pub start: usize,
    /// End of the byte range (exclusive).
    pub end: usize,
}

impl SecretMatch {
    /// The matched text with everything but a short prefix hidden, safe to print.
    pub fn redacted(&self, text: &str) -> String {
        let value = text.get(self.start..self.end).unwrap_or_default();
        redact(value)
    }
}

/// Hide all but the first few characters of a credential, so findings can be shown safely.
pub fn redact(value: &str) -> String {
    let keep: String = value.chars().take(6).collect();
    format!("{keep}…[redacted {} chars]", value.chars().count())
}

// Patterns are written against the published formats of each vendor. `\b` anchors keep a key
// embedded in a longer identifier from matching; JSON-escaped quotes are handled because the
// character classes never include a backslash.
const RULES: &[(&str, &str, &str)] = &[
    (
        "openai-api-key",
        "OpenAI API key",
        r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}\b|\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}\b",
    ),
    (
        "anthropic-api-key",
        "Anthropic API key",
        r"\bsk-ant-(?:api03|admin01)-[A-Za-z0-9_-]{80,}\b",
    ),
    (
        "huggingface-token",
        "Hugging Face access token",
        r"\b(?:hf_|api_org_)[A-Za-z0-9]{34}\b",
    ),
    (
        "google-api-key",
        "Google / Gemini API key",
        r"\bAIza[0-9A-Za-z_-]{35}\b",
    ),
    (
        "aws-access-key-id",
        "AWS access key id",
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b",
    ),
    (
        "github-token",
        "GitHub token",
        r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{82}\b",
    ),
    (
        "slack-token",
        "Slack token",
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",
    ),
    ("groq-api-key", "Groq API key", r"\bgsk_[A-Za-z0-9]{52}\b"),
    (
        "private-key",
        "PEM private key",
        r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----",
    ),
    (
        "tollgate-key",
        "tollgate virtual key",
        r"\btg_(?:live|test|admin)_[0-9A-Za-z]{36}\b",
    ),
];

static COMPILED: LazyLock<Vec<SecretRule>> = LazyLock::new(|| {
    RULES
        .iter()
        .filter_map(|(id, description, pattern)| {
            // The patterns are constants covered by tests; a bad one is dropped rather than
            // panicking in a server.
            Regex::new(pattern).ok().map(|regex| SecretRule {
                id,
                description,
                regex,
            })
        })
        .collect()
});

/// The compiled rule set.
pub fn rules() -> &'static [SecretRule] {
    &COMPILED
}

/// Words that mark a value as a documentation placeholder rather than a credential.
const PLACEHOLDER_MARKERS: &[&str] = &[
    "xxxx",
    "example",
    "your",
    "placeholder",
    "dummy",
    "redacted",
];

fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    PLACEHOLDER_MARKERS.iter().any(|m| lower.contains(m))
}

/// Find every credential in `text`, in order of position.
pub fn find_secrets(text: &str) -> Vec<SecretMatch> {
    let mut found: Vec<SecretMatch> = Vec::new();
    for rule in rules() {
        for m in rule.regex.find_iter(text) {
            if rule.id != "private-key" && is_placeholder(m.as_str()) {
                continue;
            }
            found.push(SecretMatch {
                rule: rule.id,
                start: m.start(),
                end: m.end(),
            });
        }
    }
    found.sort_by_key(|m| (m.start, m.end));
    found.dedup_by(|a, b| a.start < b.end && b.start < a.end);
    found
}

/// True when the whole of `value` (trimmed) looks like a credential of a known kind.
pub fn looks_like_secret(value: &str) -> bool {
    !find_secrets(value).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_compiles() {
        assert_eq!(rules().len(), RULES.len());
    }

    #[test]
    fn finds_openai_project_key() {
        let key = format!(
            "sk-proj-{}",
            "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG1hJ3"
        );
        let text = format!("api_key = \"{key}\"");
        let found = find_secrets(&text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rule, "openai-api-key");
        assert_eq!(&text[found[0].start..found[0].end], key);
    }

    #[test]
    fn finds_key_inside_json_escaped_string() {
        let text = r#"{"k": "{\"key\": \"AIzaSyD4bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x\"}"}"#;
        assert_eq!(find_secrets(text)[0].rule, "google-api-key");
    }

    #[test]
    fn placeholders_are_not_secrets() {
        assert!(find_secrets("sk-proj-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx").is_empty());
        assert!(find_secrets("AKIAIOSFODNN7EXAMPLE").is_empty());
        assert!(find_secrets("your-api-key").is_empty());
    }

    #[test]
    fn ordinary_text_is_quiet() {
        assert!(find_secrets("the task is to summarise the skills of our team").is_empty());
    }

    #[test]
    fn redaction_hides_the_body() {
        let r = redact("sk-ant-api03-abcdefghijkl");
        assert!(r.starts_with("sk-ant"));
        assert!(!r.contains("abcdefghijkl"));
    }
}
