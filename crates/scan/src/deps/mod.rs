//! Manifests and lockfiles: pinning of AI packages (SC-1) and known vulnerabilities (SC-4).
//!
//! Each parser turns one file into [`Dep`]s: what the manifest *declares* (with whether the
//! requirement is an exact pin and carries hashes) and what the lockfile *locks* (exact
//! versions). Declared AI packages without an exact pin, and projects whose manifest has no
//! lockfile beside it, are SC-1 findings; every locked (or exactly pinned) version is matched
//! against the offline OSV database ([`crate::osv`]) for SC-4.
//!
//! Parsers: [`python`] (requirements with `-r`/`-c` includes and hashes, pyproject PEP 621 /
//! Poetry / uv, poetry.lock, uv.lock, Pipfile, Pipfile.lock), [`node`] (package.json,
//! package-lock.json, pnpm-lock.yaml, yarn.lock), [`rust_go`] (Cargo.toml, Cargo.lock,
//! go.mod, go.sum). A file that does not parse is reported, not skipped.

pub mod ai;
pub mod node;
pub mod python;
pub mod rust_go;
pub mod version;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::finding::{Finding, Severity};
use crate::osv::Database;

/// Largest manifest or lockfile read.
pub const MAX_MANIFEST_BYTES: u64 = 32 * 1024 * 1024;

/// A package ecosystem, named as OSV names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ecosystem {
    /// Python packages.
    PyPI,
    /// JavaScript packages.
    Npm,
    /// Rust crates.
    Cargo,
    /// Go modules.
    Go,
}

impl Ecosystem {
    /// The OSV ecosystem name.
    pub fn osv_name(self) -> &'static str {
        match self {
            Self::PyPI => "PyPI",
            Self::Npm => "npm",
            Self::Cargo => "crates.io",
            Self::Go => "Go",
        }
    }

    /// Parse an OSV ecosystem name (ignoring any `:suffix`).
    pub fn from_osv(name: &str) -> Option<Self> {
        match name.split(':').next().unwrap_or(name) {
            "PyPI" => Some(Self::PyPI),
            "npm" => Some(Self::Npm),
            "crates.io" => Some(Self::Cargo),
            "Go" => Some(Self::Go),
            _ => None,
        }
    }

    /// Canonical form of a package name (PEP 503 for PyPI; `_` = `-` for crates).
    pub fn normalize(self, name: &str) -> String {
        match self {
            Self::PyPI => {
                let lower = name.trim().to_ascii_lowercase();
                let mut out = String::with_capacity(lower.len());
                for c in lower.chars() {
                    let c = if matches!(c, '_' | '.') { '-' } else { c };
                    if !(c == '-' && out.ends_with('-')) {
                        out.push(c);
                    }
                }
                out
            }
            Self::Cargo => name.trim().to_ascii_lowercase().replace('_', "-"),
            Self::Npm | Self::Go => name.trim().to_owned(),
        }
    }
}

/// Whether a dependency entry declares a requirement or locks a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A manifest requirement.
    Declared,
    /// A lockfile entry.
    Locked,
}

/// One dependency entry of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// Ecosystem.
    pub ecosystem: Ecosystem,
    /// Package name as written.
    pub name: String,
    /// The requirement as written (`==1.2.3`, `^4.20.0`, a URL).
    pub spec: String,
    /// The exact version, when the entry pins one.
    pub version: Option<String>,
    /// Declared or locked.
    pub role: Role,
    /// Hashes recorded for it.
    pub hashed: bool,
    /// 1-based line in the file.
    pub line: usize,
}

/// What a parser returns for one file.
#[derive(Debug, Default, Clone)]
pub struct Parsed {
    /// The entries.
    pub deps: Vec<Dep>,
    /// Problems that stopped part of the parse.
    pub errors: Vec<String>,
}

impl Parsed {
    /// Parse `text` as TOML; a syntax error is recorded and `None` returned, so each parser
    /// reports an unreadable file the same way.
    pub(crate) fn toml(&mut self, text: &str) -> Option<toml::Value> {
        toml::from_str(text)
            .map_err(|e| self.errors.push(e.message().to_owned()))
            .ok()
    }

    /// Parse `text` as JSON, recording a syntax error as [`Parsed::toml`] does.
    pub(crate) fn json(&mut self, text: &str) -> Option<serde_json::Value> {
        serde_json::from_str(text)
            .map_err(|e| self.errors.push(e.to_string()))
            .ok()
    }
}

/// Lockfiles by name, per ecosystem family of manifests.
const LOCKFILES: &[&str] = &[
    "poetry.lock",
    "uv.lock",
    "pdm.lock",
    "Pipfile.lock",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "bun.lockb",
    "bun.lock",
    "Cargo.lock",
    "go.sum",
];

fn file_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

fn is_requirements(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    (lower.starts_with("requirements")
        || lower.ends_with("requirements.txt")
        || lower.starts_with("constraints"))
        && (lower.ends_with(".txt") || lower.ends_with(".in"))
}

/// `requirements/base.txt`, `requirements/prod.in`: the split-requirements layout.
fn in_requirements_dir(rel: &str) -> bool {
    let dir = dir_of(rel);
    let last = dir.rsplit('/').next().unwrap_or(dir);
    last == "requirements" && (rel.ends_with(".txt") || rel.ends_with(".in"))
}

/// PEP 751 lockfiles: `pylock.toml` and `pylock.NAME.toml`.
fn is_pylock(name: &str) -> bool {
    name.starts_with("pylock.") && name.ends_with(".toml")
}

/// True when `rel` names a manifest or lockfile.
pub fn is_manifest(rel: &str) -> bool {
    let name = file_name(rel);
    is_requirements(name)
        || in_requirements_dir(rel)
        || is_pylock(name)
        || LOCKFILES.contains(&name)
        || matches!(
            name,
            "pyproject.toml" | "Pipfile" | "package.json" | "Cargo.toml" | "go.mod"
        )
}

/// Parse one file by its name.
pub fn parse_file(rel: &str, path: &Path, text: &str) -> Parsed {
    let name = file_name(rel);
    match name {
        n if is_requirements(n) || in_requirements_dir(rel) => python::requirements(path, text),
        "pyproject.toml" => python::pyproject(text),
        "poetry.lock" | "uv.lock" | "pdm.lock" => python::toml_lock(text),
        n if is_pylock(n) => python::toml_lock(text),
        "Pipfile" => python::pipfile(text),
        "Pipfile.lock" => python::pipfile_lock(text),
        "package.json" => node::package_json(text),
        "package-lock.json" | "npm-shrinkwrap.json" => node::package_lock(text),
        "pnpm-lock.yaml" => node::pnpm_lock(text),
        "yarn.lock" => node::yarn_lock(text),
        "Cargo.toml" => rust_go::cargo_toml(text),
        "Cargo.lock" => rust_go::cargo_lock(text),
        "go.mod" => rust_go::go_mod(text),
        _ => Parsed::default(),
    }
}

/// Which lockfiles satisfy a manifest, and whether an ancestor directory's lockfile counts
/// (workspaces: Cargo and npm lock at the root).
fn lock_for(manifest: &str) -> Option<(&'static [&'static str], bool)> {
    match manifest {
        // A compiled requirements.txt (pip-tools) or a PEP 751 pylock.toml also lock.
        "pyproject.toml" => Some((
            &[
                "poetry.lock",
                "uv.lock",
                "pdm.lock",
                "pylock.toml",
                "requirements.txt",
                "requirements.lock",
            ],
            true,
        )),
        "Pipfile" => Some((&["Pipfile.lock"], false)),
        "package.json" => Some((
            &[
                "package-lock.json",
                "npm-shrinkwrap.json",
                "pnpm-lock.yaml",
                "yarn.lock",
                "bun.lockb",
                "bun.lock",
            ],
            true,
        )),
        "Cargo.toml" => Some((&["Cargo.lock"], true)),
        "go.mod" => Some((&["go.sum"], false)),
        _ => None,
    }
}

fn dir_of(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(d, _)| d)
}

/// Check all manifests of a tree together. `files` are (relative path, absolute path).
pub fn scan_manifests(files: &[(String, PathBuf)], db: Option<&Database>) -> Vec<Finding> {
    let mut out = Vec::new();
    let present: HashSet<(String, String)> = files
        .iter()
        .map(|(rel, _)| (dir_of(rel).to_owned(), file_name(rel).to_owned()))
        .collect();
    // (ecosystem, name, version) → first place it was seen, to report each once per file.
    let mut matched: BTreeMap<(String, Ecosystem, String, String), ()> = BTreeMap::new();
    for (rel, path) in files {
        let text = match read_manifest(path) {
            Ok(t) => t,
            Err(e) => {
                out.push(Finding::new(
                    "SC-1",
                    "manifest-unparseable",
                    Severity::Warning,
                    rel,
                    1,
                    format!("cannot read: {e}"),
                ));
                continue;
            }
        };
        let parsed = parse_file(rel, path, &text);
        for e in &parsed.errors {
            out.push(Finding::new(
                "SC-1",
                "manifest-unparseable",
                Severity::Warning,
                rel,
                1,
                format!("could not be parsed ({e}); its dependencies were not checked"),
            ));
        }
        let name = file_name(rel);
        let lock = lock_for(name);
        // With a lockfile beside it, the lockfile says what is installed: match that, not
        // the manifest's pins, so each vulnerable version is reported once.
        let locked_here =
            lock.is_some_and(|(locks, anc)| has_lock(&present, dir_of(rel), locks, anc));
        for d in &parsed.deps {
            let ai = ai::is_ai(d.ecosystem, &d.name);
            if d.role == Role::Declared && ai && d.version.is_none() {
                out.push(Finding::new(
                    "SC-1",
                    "unpinned-ai-package",
                    Severity::Warning,
                    rel,
                    d.line,
                    format!(
                        "AI package {} is not pinned to an exact version ({}); pin it to the reviewed version",
                        d.name,
                        if d.spec.is_empty() { "any version" } else { d.spec.as_str() }
                    ),
                ));
            }
            if d.role == Role::Declared && locked_here {
                continue;
            }
            if let (Some(db), Some(v)) = (db, d.version.as_deref()) {
                let key = (
                    rel.clone(),
                    d.ecosystem,
                    d.ecosystem.normalize(&d.name),
                    v.to_owned(),
                );
                if matched.insert(key, ()).is_some() {
                    continue;
                }
                for adv in db.matching(d.ecosystem, &d.name, v) {
                    out.push(
                        Finding::new(
                            "SC-4",
                            "known-vulnerability",
                            Severity::Error,
                            rel,
                            d.line,
                            format!(
                                "{}{} {v}: {}{} — {}; severity {}; {}",
                                if ai { "AI/ML package " } else { "" },
                                d.name,
                                adv.id,
                                if adv.aliases.is_empty() {
                                    String::new()
                                } else {
                                    format!(" ({})", adv.aliases.join(", "))
                                },
                                adv.summary,
                                adv.severity,
                                adv.fixed
                                    .as_deref()
                                    .map_or("no fixed version".to_owned(), |f| format!(
                                        "fixed in {f}"
                                    )),
                            ),
                        )
                        .with_identity(&format!("{}@{v}:{}", d.name, adv.id)),
                    );
                }
            }
        }
        if let Some((locks, ancestors)) = lock {
            let declares = parsed.deps.iter().any(|d| d.role == Role::Declared);
            if declares && !has_lock(&present, dir_of(rel), locks, ancestors) {
                out.push(Finding::new(
                    "SC-1",
                    "missing-lockfile",
                    Severity::Warning,
                    rel,
                    1,
                    format!(
                        "no lockfile ({}) next to this manifest: installs are not reproducible",
                        locks.join(", ")
                    ),
                ));
            }
        }
    }
    out
}

fn has_lock(
    present: &HashSet<(String, String)>,
    dir: &str,
    locks: &[&str],
    ancestors: bool,
) -> bool {
    let mut d = dir.to_owned();
    loop {
        if locks
            .iter()
            .any(|l| present.contains(&(d.clone(), (*l).to_owned())))
        {
            return true;
        }
        if !ancestors || d.is_empty() {
            return false;
        }
        d = dir_of(&d).to_owned();
    }
}

fn read_manifest(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(format!("larger than {MAX_MANIFEST_BYTES} bytes"));
    }
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| e.to_string())
}

/// 1-based line of the first line containing `needle` (1 when absent).
pub fn line_containing(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(1, |i| i + 1)
}

#[cfg(test)]
mod tests;
