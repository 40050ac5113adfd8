//! Repository scanner: the supply-chain half of the checklist (AC-1, SC-1..SC-4).
//!
//! The scanner never executes or loads what it reads. Today it walks a tree and reports
//! credentials with the rule set of `tollgate-guard` ([`secrets::scan_tree`]); manifests,
//! lockfiles, advisories, model files and exposure checks join it as separate modules, each
//! producing the same [`Finding`] type so that reports and SARIF output stay uniform.

pub mod error;
pub mod secrets;

pub use error::ScanError;

/// One thing the scanner found, with enough evidence to act on it and nothing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Checklist item the finding counts against, e.g. `AC-1`.
    pub checklist_id: &'static str,
    /// Rule that produced it, e.g. `openai-api-key`.
    pub rule: &'static str,
    /// File path relative to the scanned root.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// Evidence with any credential redacted.
    pub evidence: String,
}
