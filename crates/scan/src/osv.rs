//! Offline OSV advisory database (SC-4).
use std::path::Path;

use crate::ScanError;

/// Loaded advisories.
#[derive(Debug, Default)]
pub struct Database {
    count: usize,
}

impl Database {
    /// Load from a directory.
    pub fn load(_dir: &Path) -> Result<Self, ScanError> {
        Ok(Self::default())
    }
    /// True when no advisory was loaded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Number of advisories.
    pub fn len(&self) -> usize {
        self.count
    }
}
