//! Credential scanning of one text file with the shared rule set of `tollgate-guard` (AC-1).
//!
//! The rules run over the raw text, so a key in a notebook's *outputs* or in a JSON string
//! with escaped quotes is found at its real line. A credential in a `.env` file is reported
//! under its own rule, `dotenv-credential`: the checklist forbids env files as a home for
//! provider keys, whatever the provider.

use tollgate_guard::secret::{find_secrets, redact};

use crate::finding::{Finding, Severity};
use crate::suppress::LineIndex;

/// Env-file names that are templates meant to be committed; keys there are still findings,
/// but of the ordinary kind.
const DOTENV_TEMPLATES: &[&str] = &["example", "sample", "template", "dist", "defaults"];

/// True for `.env`, `.env.local`, `prod.env`, but not `.env.example`.
pub fn is_dotenv(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let lower = name.to_ascii_lowercase();
    let env_like = lower == ".env" || lower.starts_with(".env.") || lower.ends_with(".env");
    env_like && !DOTENV_TEMPLATES.iter().any(|t| lower.contains(t))
}

/// Report every credential in `text` (the contents of `rel`).
pub fn scan_text(rel: &str, text: &str, lines: &LineIndex, out: &mut Vec<Finding>) {
    let masked;
    let text = if rel.ends_with(".ipynb") && text.contains("\"image/") {
        // Notebook image outputs are megabytes of base64 in which a vendor prefix shows up by
        // chance; they never hold a typed credential.
        masked = mask_notebook_images(text);
        masked.as_str()
    } else {
        text
    };
    let dotenv = is_dotenv(rel);
    for m in find_secrets(text) {
        let line = lines.line_of(m.start);
        if lines.suppressed(text, line) {
            continue;
        }
        let value = text.get(m.start..m.end).unwrap_or_default();
        let (rule, message) = if dotenv {
            (
                "dotenv-credential".to_owned(),
                format!(
                    "{} in an env file; provider keys belong in a secrets manager, not in .env files",
                    m.description()
                ),
            )
        } else {
            (
                m.rule.to_owned(),
                format!("{} committed in source", m.description()),
            )
        };
        out.push(
            Finding::new("AC-1", rule, Severity::Error, rel, line, message)
                .with_evidence(redact(value))
                .with_identity(value),
        );
    }
}

fn mask_notebook_images(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            if line.trim_start().starts_with("\"image/") {
                // Keep the newline so line numbers stay right.
                let keep_nl = if line.ends_with('\n') { "\n" } else { "" };
                format!("{}{keep_nl}", " ".repeat(line.trim_end_matches('\n').len()))
            } else {
                line.to_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(rel: &str, text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        scan_text(rel, text, &LineIndex::new(text.as_bytes()), &mut out);
        out
    }

    #[test]
    fn finds_key_with_line_and_redacts_it() {
        // tollgate:ignore-next-line (test fixture: a fake, format-valid key)
        let key = "AIzaSyD4bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x";
        let f = scan("app.py", &format!("x = 1\nKEY = '{key}'\n"));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].line, 2);
        assert_eq!(f[0].rule, "google-api-key");
        assert!(!f[0].evidence.contains(key));
        assert!(!f[0].fingerprint.contains(key));
    }

    #[test]
    fn env_files_are_their_own_kind() {
        // tollgate:ignore-next-line (test fixture: a fake, format-valid key)
        let text = "GROQ_API_KEY=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\n";
        assert_eq!(scan(".env", text)[0].rule, "dotenv-credential");
        assert_eq!(
            scan("deploy/.env.production", text)[0].rule,
            "dotenv-credential"
        );
        assert_eq!(scan(".env.example", text)[0].rule, "groq-api-key");
    }

    #[test]
    fn text_files_over_the_size_limit_are_not_searched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.py");
        // tollgate:ignore-next-line (test fixture: a fake, format-valid key)
        let mut body = "KEY = 'AIzaSyD4bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x'\n".to_owned();
        body.push_str(&"#".repeat(crate::walk::MAX_TEXT_BYTES as usize));
        std::fs::write(&path, &body).unwrap();
        assert!(crate::walk::scan_file(&path, "big.py").is_empty());
        std::fs::write(&path, &body[..100]).unwrap();
        assert_eq!(crate::walk::scan_file(&path, "big.py").len(), 1);
    }

    #[test]
    fn inline_ignore_suppresses_one_line() {
        // tollgate:ignore-next-line (test fixture: a fake, format-valid key)
        let key = "AIzaSyD4bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x";
        let text = format!("a = '{key}'  # tollgate:ignore\nb = '{key}'\n");
        let f = scan("x.py", &text);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].line, 2);
    }

    #[test]
    fn notebook_outputs_are_scanned_but_images_are_not() {
        let nb = concat!(
            "{\"outputs\": [{\"text\": [\"Using key\\nhf_Q2w3E4r5T6y7U8i9O0pAsDfGhJkLzXcVbN\\n\"]},\n",
            "  {\"data\": {\n",
            // tollgate:ignore-next-line (test fixture: a fake, format-valid key)
            "   \"image/png\": \"iVBOR+AKIAQWERTYUIOPASDFGH/xyz\"\n",
            "}}]}\n"
        );
        let f = scan("nb.ipynb", nb);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].rule, "huggingface-token");
        assert_eq!(f[0].line, 1);
    }
}
