//! `--history`: credentials in any commit of the git history, not only in the working tree.
//!
//! A key deleted in a later commit is still exposed: anyone with a clone has it. This runs
//! `git log -p` over all refs and searches every *added* line with the same rule set; each
//! distinct credential is reported once, at the commit that introduced it.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use tollgate_guard::secret::{find_secrets, redact};

use crate::ScanError;
use crate::finding::{Finding, Severity};

/// Longest diff line searched; longer lines are minified or generated files.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Search the history of the git repository at `root`.
pub fn scan_history(root: &Path) -> Result<Vec<Finding>, ScanError> {
    let io_err = |source| ScanError::Io {
        path: root.to_path_buf(),
        source,
    };
    let mut child = Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "log",
            "--all",
            "-p",
            "--no-color",
            "--no-ext-diff",
            "--no-renames",
            "--unified=0",
            "--format=commit %H",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io_err)?;
    let mut findings = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        findings = parse_log(BufReader::new(stdout));
    }
    // Paths the team excluded in the working tree stay excluded in history.
    let mut builder = ignore::gitignore::GitignoreBuilder::new(root);
    for name in [crate::walk::IGNORE_FILE, ".gitignore"] {
        let _ = builder.add(root.join(name));
    }
    if let Ok(matcher) = builder.build() {
        findings.retain(|f| {
            !matcher
                .matched_path_or_any_parents(Path::new(&f.path), false)
                .is_ignore()
        });
    }
    let status = child.wait().map_err(io_err)?;
    if !status.success() {
        return Err(ScanError::Io {
            path: root.to_path_buf(),
            source: std::io::Error::other("git log failed (is this a git repository?)"),
        });
    }
    Ok(findings)
}

/// Parse `git log -p --unified=0` output and search the added lines.
pub fn parse_log(reader: impl BufRead) -> Vec<Finding> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut findings = Vec::new();
    let (mut commit, mut file, mut line_no) = (String::new(), String::new(), 0usize);
    for raw in reader.split(b'\n') {
        let Ok(raw) = raw else { break };
        if raw.len() > MAX_LINE_BYTES {
            line_no += 1;
            continue;
        }
        let line = String::from_utf8_lossy(&raw);
        if let Some(c) = line.strip_prefix("commit ") {
            commit = c.chars().take(12).collect();
        } else if let Some(f) = line.strip_prefix("+++ ") {
            file = f.strip_prefix("b/").unwrap_or(f).to_owned();
        } else if line.starts_with("@@") {
            // `@@ -a,b +c,d @@`: added lines start at c.
            line_no = line
                .split_whitespace()
                .find_map(|t| t.strip_prefix('+'))
                .and_then(|t| t.split(',').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
        } else if let Some(added) = line.strip_prefix('+') {
            for m in find_secrets(added) {
                let value = added.get(m.start..m.end).unwrap_or_default();
                let f = Finding::new(
                    "AC-1",
                    m.rule,
                    Severity::Error,
                    &file,
                    line_no,
                    format!(
                        "{} in git history (commit {commit}); it stays exposed until rotated",
                        m.description()
                    ),
                )
                .with_evidence(redact(value))
                .with_identity(value);
                if seen.insert(f.fingerprint.clone()) {
                    findings.push(f);
                }
            }
            line_no += 1;
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_lines_are_searched_with_their_line_numbers() {
        // tollgate:ignore-next-line (test fixture: a fake, format-valid key)
        let log = "commit 0123456789abcdef\n\ndiff --git a/x.py b/x.py\n--- /dev/null\n+++ b/x.py\n@@ -0,0 +1,2 @@\n+a = 1\n+KEY = 'AIzaSyD4bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x'\ncommit fedcba\n+++ b/y.py\n@@ -1 +7 @@\n-KEY = 'AIzaSyD4bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x'\n";
        let f = parse_log(log.as_bytes());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "x.py");
        assert_eq!(f[0].line, 2);
        assert!(f[0].message.contains("0123456789ab"));
    }

    #[test]
    fn overlong_lines_are_skipped() {
        let long = format!(
            // tollgate:ignore-next-line (test fixture: a fake, format-valid key)
            "+{}AIzaSyD4bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x\n",
            " ".repeat(MAX_LINE_BYTES)
        );
        let log = format!("commit 1\n+++ b/x.min.js\n@@ -0,0 +1 @@\n{long}");
        assert!(parse_log(log.as_bytes()).is_empty());
    }
}
