//! The one result type every check produces, and its severity scale.

use serde::Serialize;

/// How bad a finding is. Ordered: `Note < Warning < Error`.
///
/// The three levels are SARIF's: `Error` is a confirmed credential, a malicious or invalid
/// model file, or a known vulnerability; `Warning` is suspicious (an unknown pickle import,
/// an unpinned AI package); `Note` is information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Information only.
    Note,
    /// Suspicious; review it.
    Warning,
    /// Confirmed problem.
    Error,
}

impl Severity {
    /// Parse `error|warning|note` and the common aliases (`high`, `medium`, `low`, `info`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "error" | "high" | "critical" => Some(Self::Error),
            "warning" | "warn" | "medium" => Some(Self::Warning),
            "note" | "info" | "low" => Some(Self::Note),
            _ => None,
        }
    }

    /// Lower-case name as shown and as SARIF's `level`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Note => "note",
        }
    }
}

/// One thing the scanner found, with enough evidence to act on it and nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Checklist item the finding counts against, e.g. `AC-1`.
    pub checklist_id: &'static str,
    /// Rule that produced it, e.g. `openai-api-key` or `pickle-dangerous-global`.
    pub rule: String,
    /// How bad it is.
    pub severity: Severity,
    /// File path relative to the scanned root, with `/` separators.
    #[serde(rename = "file")]
    pub path: String,
    /// 1-based line number (1 for findings about a whole file).
    pub line: usize,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Evidence with any credential redacted.
    pub evidence: String,
    /// Stable identity for baselines: survives line moves, never contains a secret.
    pub fingerprint: String,
}

impl Finding {
    /// A finding about `path:line`, fingerprinted by rule, path and message.
    pub fn new(
        checklist_id: &'static str,
        rule: impl Into<String>,
        severity: Severity,
        path: &str,
        line: usize,
        message: impl Into<String>,
    ) -> Self {
        let rule = rule.into();
        let message = message.into();
        let fingerprint = fingerprint(&[&rule, path, &message]);
        Self {
            checklist_id,
            rule,
            severity,
            path: path.to_owned(),
            line: line.max(1),
            message,
            evidence: String::new(),
            fingerprint,
        }
    }

    /// Attach (already redacted) evidence.
    pub fn with_evidence(mut self, evidence: impl Into<String>) -> Self {
        self.evidence = evidence.into();
        self
    }

    /// Fingerprint by `identity` (e.g. the matched credential, which is hashed and never
    /// stored) instead of the message, so two keys on one line stay distinct.
    pub fn with_identity(mut self, identity: &str) -> Self {
        self.fingerprint = fingerprint(&[&self.rule, &self.path, identity]);
        self
    }
}

/// 64-bit FNV-1a over the parts (separated), as 16 hex digits. Not a security boundary: it
/// only has to be stable across runs and platforms, which `DefaultHasher` is not.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// 1-based line number of byte offset `pos` in `text`.
pub fn line_of(text: &[u8], pos: usize) -> usize {
    let end = pos.min(text.len());
    text[..end].iter().filter(|b| **b == b'\n').count() + 1
}
