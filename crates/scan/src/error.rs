//! Errors of the scanner.

use std::path::PathBuf;

/// What can stop a scan (as opposed to a finding, which is a result).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The root or a file under it could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The advisory database could not be used.
    #[error("advisory database {path}: {message}")]
    Advisories {
        /// The path given with `--advisories`.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// A baseline file could not be read or parsed.
    #[error("baseline {path}: {message}")]
    Baseline {
        /// The baseline path.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
}
