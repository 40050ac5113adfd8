//! Credential scanning of a directory tree with the shared rule set.

use std::fs;
use std::path::{Path, PathBuf};

use tollgate_guard::secret::find_secrets;

use crate::{Finding, ScanError};

/// Files larger than this are skipped: credentials live in source and config, not in blobs,
/// and reading multi-gigabyte model files into memory would make the scan slow and unsafe.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Directories that hold dependencies or build output, never a team's own credentials.
const SKIP_DIRS: &[&str] = &[
    ".git",
    "node_modules",
    "target",
    ".venv",
    "venv",
    "__pycache__",
];

/// Scan every regular file under `root` for credentials.
pub fn scan_tree(root: &Path) -> Result<Vec<Finding>, ScanError> {
    let mut findings = Vec::new();
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|source| ScanError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                let name = entry.file_name();
                if !SKIP_DIRS.iter().any(|s| name == *s) {
                    stack.push(path);
                }
            } else if kind.is_file() {
                scan_file(root, &path, &mut findings);
            }
        }
    }
    Ok(findings)
}

fn scan_file(root: &Path, path: &Path, findings: &mut Vec<Finding>) {
    let Ok(meta) = fs::metadata(path) else { return };
    if meta.len() > MAX_FILE_BYTES {
        return;
    }
    let Ok(bytes) = fs::read(path) else { return };
    // Binary files are not text sources of credentials; lossy decoding keeps keys in
    // mostly-text files with a stray invalid byte.
    if bytes.contains(&0) {
        return;
    }
    let text = String::from_utf8_lossy(&bytes);
    let rel = path
        .strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned();
    for m in find_secrets(&text) {
        let line = text[..m.start].matches('\n').count() + 1;
        findings.push(Finding {
            checklist_id: "AC-1",
            rule: m.rule,
            path: rel.clone(),
            line,
            evidence: m.redacted(&text),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_key_with_line_and_redacts_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = "AIzaSyD4bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x";
        fs::write(dir.path().join("app.py"), format!("x = 1\nKEY = '{key}'\n")).unwrap();
        fs::create_dir(dir.path().join("node_modules")).unwrap();
        fs::write(dir.path().join("node_modules/k.js"), key).unwrap();
        let f = scan_tree(dir.path()).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "app.py");
        assert_eq!(f[0].line, 2);
        assert!(!f[0].evidence.contains(key));
    }

    #[test]
    fn missing_root_is_an_error() {
        assert!(scan_tree(Path::new("/nonexistent/tollgate")).is_err());
    }
}
