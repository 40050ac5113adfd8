//! Risky model-loading code in Python sources and notebooks (SC-2).
//!
//! These calls turn a model download into code execution: `trust_remote_code=True` runs the
//! repository's Python; `torch.load` without `weights_only=True` and `pickle.load` unpickle
//! arbitrary objects; `from_pretrained("org/model")` without a pinned `revision` lets the
//! next push to that repository change what runs. The checks are textual (no Python parser),
//! so each looks at the call's own argument list only.

use std::sync::LazyLock;

use regex::Regex;

use crate::finding::{Finding, Severity};
use crate::suppress::LineIndex;

/// Longest argument list inspected for a call; longer ones are treated as unclosed.
pub const MAX_CALL_BYTES: usize = 4096;

static TRUST_REMOTE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"trust_remote_code\s*=\s*True").ok());
static TORCH_LOAD: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\btorch\.load\s*\(").ok());
static PICKLE_LOAD: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"\b(?:c?[Pp]ickle|dill|joblib|cloudpickle|_pickle)\.loads?\s*\(").ok()
});
static FROM_PRETRAINED: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"\b(?:from_pretrained|hf_hub_download|snapshot_download|pipeline)\s*\("#).ok()
});
static HUB_ID: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"^\s*(?:(?:model|repo_id|pretrained_model_name_or_path|task)\s*=\s*)?["']([A-Za-z0-9][\w.-]*/[\w.-]+)["']"#)
        .ok()
});

/// Words that suggest a file fetches data from elsewhere before unpickling it.
const DOWNLOAD_HINTS: &[&str] = &[
    "requests.get",
    "urlopen",
    "urlretrieve",
    "hf_hub_download",
    "snapshot_download",
    "download",
    "boto3",
    "http://",
    "https://",
];

/// Check one Python source or notebook.
pub fn scan_source(rel: &str, text: &str, lines: &LineIndex, out: &mut Vec<Finding>) {
    let notebook = rel.ends_with(".ipynb");
    if !(rel.ends_with(".py") || notebook) {
        return;
    }
    let owned;
    let text = if notebook {
        // Notebook sources are JSON strings: unescape quotes in place (same length).
        owned = text.replace("\\\"", " \"");
        owned.as_str()
    } else {
        text
    };
    let mut push = |pos: usize, rule: &str, severity: Severity, message: &str| {
        let line = lines.line_of(pos);
        // A call named in a comment (`# torch.load()`) is documentation, not code.
        let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
        if text[line_start..pos].contains('#') {
            return;
        }
        if !lines.suppressed(text, line) {
            let snippet = lines
                .line_text(text, line)
                .trim()
                .chars()
                .take(120)
                .collect::<String>();
            out.push(
                Finding::new("SC-2", rule, severity, rel, line, message).with_evidence(snippet),
            );
        }
    };
    if let Some(re) = TRUST_REMOTE.as_ref() {
        for m in re.find_iter(text) {
            push(
                m.start(),
                "trust-remote-code",
                Severity::Warning,
                "trust_remote_code=True runs Python code from the model repository",
            );
        }
    }
    if let Some(re) = TORCH_LOAD.as_ref() {
        for m in re.find_iter(text) {
            let args = call_args(text, m.end());
            if !args.contains("weights_only=True") && !args.contains("weights_only = True") {
                push(
                    m.start(),
                    "torch-load-unsafe",
                    Severity::Warning,
                    "torch.load without weights_only=True unpickles arbitrary objects",
                );
            }
        }
    }
    if let Some(re) = PICKLE_LOAD.as_ref() {
        let downloads = DOWNLOAD_HINTS.iter().any(|h| text.contains(h));
        for m in re.find_iter(text) {
            let (severity, message) = if downloads {
                (
                    Severity::Warning,
                    "unpickling in a file that downloads data: a fetched pickle runs code on load",
                )
            } else {
                (
                    Severity::Note,
                    "unpickling runs code from the file; only load pickles you created",
                )
            };
            push(m.start(), "pickle-load", severity, message);
        }
    }
    if let (Some(re), Some(hub)) = (FROM_PRETRAINED.as_ref(), HUB_ID.as_ref()) {
        for m in re.find_iter(text) {
            let args = call_args(text, m.end());
            if hub.is_match(args) && !args.contains("revision") {
                push(
                    m.start(),
                    "unpinned-model-revision",
                    Severity::Warning,
                    "model pulled from a hub without a pinned revision= (commit hash)",
                );
            }
        }
    }
}

/// The argument list of a call whose `(` ends at `open_end`, up to the matching `)`.
fn call_args(text: &str, open_end: usize) -> &str {
    let rest = text.get(open_end..).unwrap_or("");
    let mut depth = 1usize;
    for (i, c) in rest.char_indices() {
        if i > MAX_CALL_BYTES {
            break;
        }
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return &rest[..i];
                }
            }
            _ => {}
        }
    }
    let mut end = rest.len().min(MAX_CALL_BYTES);
    while !rest.is_char_boundary(end) {
        end -= 1;
    }
    &rest[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(rel: &str, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        scan_source(rel, text, &LineIndex::new(text.as_bytes()), &mut out);
        out.into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn risky_calls_are_found() {
        let src = "m = AutoModel.from_pretrained('org/model', trust_remote_code=True)\nsd = torch.load(path)\n";
        assert_eq!(
            rules("a.py", src),
            [
                "trust-remote-code",
                "torch-load-unsafe",
                "unpinned-model-revision"
            ]
        );
    }

    #[test]
    fn safe_forms_are_quiet() {
        let src = "m = AutoModel.from_pretrained('org/model', revision='a1b2c3')\nsd = torch.load(path, map_location='cpu', weights_only=True)\nx = AutoModel.from_pretrained('./local')\n";
        assert!(rules("a.py", src).is_empty());
        assert!(rules("a.txt", "torch.load(x)").is_empty());
        assert!(rules("a.py", "x = 1  # torch.load() is unsafe\n").is_empty());
    }

    #[test]
    fn pickle_load_is_a_warning_when_the_file_downloads() {
        let mut out = Vec::new();
        let src = "r = requests.get(url)\nobj = pickle.loads(r.content)\n";
        scan_source("a.py", src, &LineIndex::new(src.as_bytes()), &mut out);
        assert_eq!(out[0].severity, Severity::Warning);
        assert_eq!(out[0].line, 2);
    }

    #[test]
    fn unclosed_call_is_bounded() {
        let src = format!("torch.load({}", "a".repeat(10 * MAX_CALL_BYTES));
        assert_eq!(rules("a.py", &src), ["torch-load-unsafe"]);
    }
}
