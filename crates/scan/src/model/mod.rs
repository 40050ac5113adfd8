//! Model files (SC-2): recognised by content, parsed as bytes, never loaded.
use std::path::Path;

use crate::finding::Finding;

/// Formats the scanner recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A raw pickle stream.
    Pickle,
}

/// Recognise a model file from its name, first bytes and size.
pub fn sniff(_rel: &str, _head: &[u8], _size: u64) -> Option<Kind> {
    None
}

/// True when a text-looking file is in fact a protocol-0 pickle.
pub fn is_text_pickle(_bytes: &[u8]) -> bool {
    false
}

/// Check one model file.
pub fn scan_model(_path: &Path, _rel: &str, _kind: Kind, _size: u64, _out: &mut Vec<Finding>) {}
