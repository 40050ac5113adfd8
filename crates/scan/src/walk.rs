//! Discovery and dispatch: which files to read, and which checks each one gets.
//!
//! The walk honours `.gitignore` (also outside a git checkout), `.ignore` and
//! `.tollgateignore`, skips `.git` and dependency folders, and keeps hidden files because
//! `.env` is exactly where credentials hide. Files are then checked in parallel (rayon);
//! results are sorted so output is deterministic.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::finding::{Finding, Severity};
use crate::suppress::LineIndex;
use crate::{ScanError, deps, exposure, model, pysource, secrets};

/// Text files larger than this are not searched for credentials: keys live in source and
/// config, and reading huge generated files would make the scan slow.
pub const MAX_TEXT_BYTES: u64 = 8 * 1024 * 1024;
/// How many bytes are read to recognise a file's format by content.
const SNIFF_BYTES: usize = 64;

/// Directories that hold dependencies, caches or build output, never a team's own files.
const SKIP_DIRS: &[&str] = &[
    ".git",
    "node_modules",
    "target",
    ".venv",
    "venv",
    "__pycache__",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
];

/// Name of the per-repository ignore file (gitignore syntax).
pub const IGNORE_FILE: &str = ".tollgateignore";

/// Called with (files done, files total) as the scan progresses.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// List the files under `root` that the scan should read, relative paths sorted.
pub fn discover(root: &Path) -> Result<Vec<PathBuf>, ScanError> {
    let meta = fs::metadata(root).map_err(|source| ScanError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    if meta.is_file() {
        return Ok(vec![root.to_path_buf()]);
    }
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .require_git(false)
        .git_global(false)
        .parents(true)
        .add_custom_ignore_filename(IGNORE_FILE)
        .filter_entry(|e| {
            !(e.file_type().is_some_and(|t| t.is_dir())
                && SKIP_DIRS.iter().any(|s| e.file_name() == *s))
        })
        .build();
    let mut files: Vec<PathBuf> = walker
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .map(ignore::DirEntry::into_path)
        .collect();
    files.sort();
    Ok(files)
}

/// Path of `path` relative to `root`, with `/` separators.
pub fn relative(root: &Path, path: &Path) -> String {
    let rel = if root.is_file() {
        path.file_name()
            .map_or_else(|| path.to_path_buf(), PathBuf::from)
    } else {
        path.strip_prefix(root).unwrap_or(path).to_path_buf()
    };
    rel.to_string_lossy().replace('\\', "/")
}

/// Check every file under `root`; returns the findings and the number of files read.
pub fn scan_root(
    root: &Path,
    advisories: Option<&crate::osv::Database>,
    progress: Option<Progress<'_>>,
) -> Result<(Vec<Finding>, usize), ScanError> {
    let files = discover(root)?;
    let total = files.len();
    let done = AtomicUsize::new(0);
    let mut findings: Vec<Finding> = files
        .par_iter()
        .flat_map_iter(|path| {
            let rel = relative(root, path);
            let out = scan_file(path, &rel);
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(p) = progress {
                p(n, total);
            }
            out
        })
        .collect();
    let manifests: Vec<(String, PathBuf)> = files
        .iter()
        .map(|p| (relative(root, p), p.clone()))
        .filter(|(rel, _)| deps::is_manifest(rel))
        .collect();
    findings.extend(deps::scan_manifests(&manifests, advisories));
    Ok((findings, total))
}

/// All checks that apply to one file.
pub fn scan_file(path: &Path, rel: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let Ok(mut file) = fs::File::open(path) else {
        out.push(unreadable(rel, "cannot open the file"));
        return out;
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut head = [0u8; SNIFF_BYTES];
    let n = read_up_to(&mut file, &mut head);
    let head = &head[..n];
    if let Some(kind) = model::sniff(rel, head, size) {
        drop(file);
        model::scan_model(path, rel, kind, size, &mut out);
        return out;
    }
    if size > MAX_TEXT_BYTES {
        return out;
    }
    let Ok(bytes) = fs::read(path) else {
        out.push(unreadable(rel, "cannot read the file"));
        return out;
    };
    // Binary files are not text sources of credentials; lossy decoding keeps keys in
    // mostly-text files with a stray invalid byte.
    if bytes.iter().take(8192).any(|b| *b == 0) {
        return out;
    }
    if model::is_text_pickle(&bytes) {
        model::scan_model(path, rel, model::Kind::Pickle, size, &mut out);
        return out;
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines = LineIndex::new(text.as_bytes());
    secrets::scan_text(rel, &text, &lines, &mut out);
    pysource::scan_source(rel, &text, &lines, &mut out);
    exposure::scan_config(rel, &text, &lines, &mut out);
    out
}

fn read_up_to(file: &mut fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

fn unreadable(rel: &str, why: &str) -> Finding {
    Finding::new(
        "SC-2",
        "unreadable-file",
        Severity::Warning,
        rel,
        1,
        format!("{why}; it was not checked"),
    )
}
