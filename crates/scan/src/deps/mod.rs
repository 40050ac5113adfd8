//! Manifests and lockfiles (SC-1, SC-4).
use std::path::PathBuf;

use crate::finding::Finding;

/// True when `rel` names a manifest or lockfile.
pub fn is_manifest(_rel: &str) -> bool {
    false
}

/// Check all manifests of a tree together.
pub fn scan_manifests(
    _files: &[(String, PathBuf)],
    _db: Option<&crate::osv::Database>,
) -> Vec<Finding> {
    Vec::new()
}
