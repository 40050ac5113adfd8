//! Repository scanner: the supply-chain half of the checklist (AC-1, SC-1..SC-4).
//!
//! The scanner never executes, imports or deserialises what it reads: model files are parsed
//! as bytes, with explicit limits on every length, count and depth. A scan is
//! [`walk::discover`] (which files, honouring `.gitignore` and `.tollgateignore`), then per
//! file, in parallel, the checks that apply:
//!
//! - [`secrets`]: credentials, with the one rule set of `tollgate-guard` (AC-1);
//! - [`model`]: pickles, PyTorch/NumPy/Keras archives, safetensors, GGUF, ONNX (SC-2);
//! - [`pysource`]: risky loading code in Python (`trust_remote_code=True`, `torch.load`) (SC-2);
//! - [`exposure`]: model servers published on public interfaces (SC-3);
//!
//! and once per tree [`deps`]: manifests and lockfiles, pinning of AI packages (SC-1) and,
//! with an offline OSV database ([`osv`]), known vulnerabilities (SC-4). Every check yields
//! the same [`Finding`], so [`report`] renders human, JSON and SARIF output uniformly and
//! applies baselines. [`history`] searches every commit's added lines (`--history`);
//! [`suppress`] handles inline `tollgate:ignore` markers.
//!
//! Severities follow SARIF: `error` for a confirmed credential, a malicious or invalid model
//! file, a known vulnerability; `warning` for something to review (an unknown pickle import,
//! an unpinned AI package, an exposed server); `note` for information.

pub mod deps;
pub mod error;
pub mod exposure;
pub mod finding;
pub mod history;
pub mod model;
pub mod osv;
pub mod pysource;
pub mod report;
pub mod secrets;
pub mod suppress;
pub mod walk;

use std::path::PathBuf;

pub use error::ScanError;
pub use finding::{Finding, Severity};

/// What to scan and how.
#[derive(Debug, Default, Clone)]
pub struct ScanOptions {
    /// Files or directories to scan; paths in findings are relative to each.
    pub roots: Vec<PathBuf>,
    /// Offline OSV advisory database (a directory, or per-ecosystem `all.zip` files).
    pub advisories: Option<PathBuf>,
}

/// The outcome of a scan: findings sorted by path and line, and what was covered.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Everything found.
    pub findings: Vec<Finding>,
    /// Number of files read.
    pub files_scanned: usize,
    /// Number of advisories loaded (0 without `--advisories`).
    pub advisories_loaded: usize,
}

/// Scan every root; `progress` is called with (done, total) files.
pub fn scan(
    options: &ScanOptions,
    progress: Option<walk::Progress<'_>>,
) -> Result<Report, ScanError> {
    let db = match &options.advisories {
        Some(dir) => Some(osv::Database::load(dir)?),
        None => None,
    };
    let mut report = Report {
        advisories_loaded: db.as_ref().map_or(0, osv::Database::len),
        ..Report::default()
    };
    for root in &options.roots {
        let (findings, files) = walk::scan_root(root, db.as_ref(), progress)?;
        report.findings.extend(findings);
        report.files_scanned += files;
    }
    report
        .findings
        .sort_by(|a, b| (&a.path, a.line, &a.rule).cmp(&(&b.path, b.line, &b.rule)));
    report.findings.dedup();
    Ok(report)
}
