//! Python manifests and lockfiles.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use toml::Value;

use super::{Dep, Ecosystem, Parsed, Role, line_containing};

/// Deepest chain of `-r`/`-c` includes followed.
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// Largest included requirements file read.
pub const MAX_INCLUDE_BYTES: u64 = 4 * 1024 * 1024;

/// A PEP 508 requirement, reduced to what pinning needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Distribution name.
    pub name: String,
    /// Version specifier or URL, as written.
    pub spec: String,
    /// The version when the requirement is an exact pin (`==1.2.3`, `===1.2.3`, or a URL
    /// pinned to a commit hash, which has no version but counts as pinned).
    pub exact: Option<String>,
}

/// Parse one PEP 508 requirement string (`name[extra] >=1,<2 ; marker`, `name @ url`).
pub fn parse_requirement(s: &str) -> Option<Requirement> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(s.len());
    let name = &s[..end];
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return None;
    }
    let mut rest = s[end..].trim_start();
    if rest.starts_with('[') {
        rest = rest.split_once(']').map_or("", |(_, r)| r).trim_start();
    }
    if let Some(url) = rest.strip_prefix('@') {
        let url = url.split(" ;").next().unwrap_or(url).trim();
        let pinned = url
            .rsplit('@')
            .next()
            .is_some_and(|r| r.len() >= 40 && r[..40].bytes().all(|b| b.is_ascii_hexdigit()))
            || url.contains("#sha256=");
        return Some(Requirement {
            name: name.to_owned(),
            spec: format!("@ {url}"),
            exact: pinned.then(|| url.to_owned()),
        });
    }
    let spec = rest.split(';').next().unwrap_or("").trim();
    let spec = spec.trim_start_matches('(').trim_end_matches(')').trim();
    Some(Requirement {
        name: name.to_owned(),
        spec: spec.to_owned(),
        exact: exact_pin(spec),
    })
}

/// `==1.2.3` or `===1.2.3` as a single clause without wildcards.
fn exact_pin(spec: &str) -> Option<String> {
    if spec.contains(',') {
        return None;
    }
    let v = spec
        .strip_prefix("===")
        .or_else(|| spec.strip_prefix("=="))?
        .trim();
    (!v.is_empty() && !v.contains('*') && !v.contains(' ')).then(|| v.to_owned())
}

/// Poetry/Pipfile style: a bare version (`1.2.3`) or `==1.2.3` is exact.
fn exact_bare(spec: &str) -> Option<String> {
    let v = spec.trim();
    let v = v
        .strip_prefix("==")
        .or_else(|| v.strip_prefix('='))
        .unwrap_or(v)
        .trim();
    let bare = !v.is_empty()
        && v.starts_with(|c: char| c.is_ascii_digit())
        && !v.contains(['^', '~', '<', '>', '*', ',', '!', ' ', '|']);
    bare.then(|| v.to_owned())
}

fn dep(
    name: &str,
    spec: &str,
    version: Option<String>,
    role: Role,
    hashed: bool,
    line: usize,
) -> Dep {
    Dep {
        ecosystem: Ecosystem::PyPI,
        name: name.to_owned(),
        spec: spec.to_owned(),
        version,
        role,
        hashed,
        line,
    }
}

/// `requirements*.txt`: one requirement per logical line; `-r`/`-c` includes are followed
/// unless the included file is itself a requirements file the walk reports on its own.
pub fn requirements(path: &Path, text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut constraints: HashMap<String, String> = HashMap::new();
    let mut seen = HashSet::new();
    seen.insert(path.to_path_buf());
    collect_requirements(path, text, 0, None, &mut seen, &mut constraints, &mut out);
    // A constraints file pins what the requirements leave open.
    for d in &mut out.deps {
        if d.version.is_none() {
            if let Some(v) = constraints.get(&Ecosystem::PyPI.normalize(&d.name)) {
                d.version = Some(v.clone());
            }
        }
    }
    out
}

fn collect_requirements(
    path: &Path,
    text: &str,
    depth: usize,
    include_line: Option<usize>,
    seen: &mut HashSet<PathBuf>,
    constraints: &mut HashMap<String, String>,
    out: &mut Parsed,
) {
    let mut logical = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if logical.is_empty() {
            start = i + 1;
        }
        let line = match raw.find(" #") {
            Some(p) => &raw[..p],
            None if raw.trim_start().starts_with('#') => "",
            None => raw,
        };
        if let Some(cont) = line.trim_end().strip_suffix('\\') {
            logical.push_str(cont);
            logical.push(' ');
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let line_no = include_line.unwrap_or(start);
        let mut words = entry.split_whitespace();
        let first = words.next().unwrap_or("");
        let (opt, arg) = match first.split_once('=') {
            Some((o, a)) if o.starts_with('-') => (o, Some(a.to_owned())),
            _ => (first, None),
        };
        match opt {
            "-r" | "--requirement" | "-c" | "--constraint" => {
                let Some(target) = arg.or_else(|| words.next().map(str::to_owned)) else {
                    continue;
                };
                let constraint = opt == "-c" || opt == "--constraint";
                let file = target.rsplit('/').next().unwrap_or(&target).to_owned();
                if !constraint && super::is_requirements(&file) {
                    continue;
                }
                let inc = path.parent().unwrap_or(Path::new(".")).join(&target);
                if depth >= MAX_INCLUDE_DEPTH {
                    out.errors
                        .push(format!("includes nested deeper than {MAX_INCLUDE_DEPTH}"));
                    continue;
                }
                if !seen.insert(inc.clone()) {
                    continue;
                }
                let body = std::fs::metadata(&inc)
                    .ok()
                    .filter(|m| m.len() <= MAX_INCLUDE_BYTES)
                    .and_then(|_| std::fs::read_to_string(&inc).ok());
                let Some(body) = body else {
                    out.errors
                        .push(format!("cannot read included file {target}"));
                    continue;
                };
                if constraint {
                    let mut sub = Parsed::default();
                    collect_requirements(
                        &inc,
                        &body,
                        depth + 1,
                        Some(line_no),
                        seen,
                        constraints,
                        &mut sub,
                    );
                    for d in sub.deps {
                        if let Some(v) = d.version {
                            constraints.insert(Ecosystem::PyPI.normalize(&d.name), v);
                        }
                    }
                } else {
                    collect_requirements(
                        &inc,
                        &body,
                        depth + 1,
                        Some(line_no),
                        seen,
                        constraints,
                        out,
                    );
                }
            }
            o if o.starts_with('-') => {}
            _ => {
                if first.starts_with('.')
                    || first.starts_with('/')
                    || (first.contains("://") && !entry.contains('@'))
                {
                    continue;
                }
                let hashed = entry.contains("--hash");
                let req_text = entry.split(" --").next().unwrap_or(entry);
                if let Some(r) = parse_requirement(req_text) {
                    out.deps.push(dep(
                        &r.name,
                        &r.spec,
                        r.exact,
                        Role::Declared,
                        hashed,
                        line_no,
                    ));
                }
            }
        }
    }
}

fn requirement_list(text: &str, list: &Value, out: &mut Parsed) {
    for item in list.as_array().into_iter().flatten() {
        if let Some(s) = item.as_str() {
            if let Some(r) = parse_requirement(s) {
                let line = line_containing(text, s);
                out.deps
                    .push(dep(&r.name, &r.spec, r.exact, Role::Declared, false, line));
            }
        }
    }
}

fn poetry_table(text: &str, table: Option<&Value>, out: &mut Parsed) {
    let Some(t) = table.and_then(Value::as_table) else {
        return;
    };
    for (name, spec) in t {
        if name == "python" {
            continue;
        }
        let (spec_s, version) = match spec {
            Value::String(s) => (s.clone(), exact_bare(s)),
            Value::Table(t) => {
                if t.contains_key("path") {
                    continue;
                }
                if let Some(rev) = t.get("rev").and_then(Value::as_str) {
                    (
                        format!("git rev {rev}"),
                        (rev.len() >= 40).then(|| rev.to_owned()),
                    )
                } else {
                    let v = t.get("version").and_then(Value::as_str).unwrap_or("");
                    (v.to_owned(), exact_bare(v))
                }
            }
            _ => continue,
        };
        let line = line_containing(text, &format!("{name} ="));
        out.deps
            .push(dep(name, &spec_s, version, Role::Declared, false, line));
    }
}

/// `pyproject.toml`: PEP 621 `[project]`, PEP 735 `[dependency-groups]`, Poetry and uv.
pub fn pyproject(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let Some(v) = out.toml(text) else {
        return out;
    };
    if let Some(p) = v.get("project") {
        if let Some(d) = p.get("dependencies") {
            requirement_list(text, d, &mut out);
        }
        for list in p
            .get("optional-dependencies")
            .and_then(Value::as_table)
            .into_iter()
            .flat_map(|t| t.values())
        {
            requirement_list(text, list, &mut out);
        }
    }
    for list in v
        .get("dependency-groups")
        .and_then(Value::as_table)
        .into_iter()
        .flat_map(|t| t.values())
    {
        requirement_list(text, list, &mut out);
    }
    if let Some(dev) = v
        .get("tool")
        .and_then(|t| t.get("uv"))
        .and_then(|u| u.get("dev-dependencies"))
    {
        requirement_list(text, dev, &mut out);
    }
    if let Some(poetry) = v.get("tool").and_then(|t| t.get("poetry")) {
        poetry_table(text, poetry.get("dependencies"), &mut out);
        poetry_table(text, poetry.get("dev-dependencies"), &mut out);
        for g in poetry
            .get("group")
            .and_then(Value::as_table)
            .into_iter()
            .flat_map(|t| t.values())
        {
            poetry_table(text, g.get("dependencies"), &mut out);
        }
    }
    out
}

/// `poetry.lock`, `uv.lock`, `pdm.lock`: `[[package]]` tables with name and version.
pub fn toml_lock(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let Some(v) = out.toml(text) else {
        return out;
    };
    for p in v
        .get("package")
        // `[[package]]` in poetry/uv/pdm, `[[packages]]` in PEP 751 pylock.toml.
        .or_else(|| v.get("packages"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(name), Some(version)) = (
            p.get("name").and_then(Value::as_str),
            p.get("version").and_then(Value::as_str),
        ) else {
            continue;
        };
        // The project itself and local packages are not from an index.
        let local = p.get("source").and_then(Value::as_table).is_some_and(|s| {
            s.contains_key("editable")
                || s.contains_key("virtual")
                || s.contains_key("directory")
                || s.contains_key("path")
        });
        if local {
            continue;
        }
        let hashed =
            p.get("files").is_some() || p.get("sdist").is_some() || p.get("wheels").is_some();
        let line = line_containing(text, &format!("name = \"{name}\""));
        out.deps.push(dep(
            name,
            version,
            Some(version.to_owned()),
            Role::Locked,
            hashed,
            line,
        ));
    }
    out
}

/// `Pipfile`: `[packages]` and `[dev-packages]`.
pub fn pipfile(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let Some(v) = out.toml(text) else {
        return out;
    };
    for section in ["packages", "dev-packages"] {
        for (name, spec) in v
            .get(section)
            .and_then(Value::as_table)
            .into_iter()
            .flatten()
        {
            let s = match spec {
                Value::String(s) => s.clone(),
                Value::Table(t) if t.contains_key("path") || t.contains_key("file") => continue,
                Value::Table(t) => t
                    .get("version")
                    .and_then(Value::as_str)
                    .unwrap_or("*")
                    .to_owned(),
                _ => continue,
            };
            let version = if s == "*" { None } else { exact_pin(&s) };
            let line = line_containing(text, &format!("{name} ="));
            out.deps
                .push(dep(name, &s, version, Role::Declared, false, line));
        }
    }
    out
}

/// `Pipfile.lock`: JSON with `default` and `develop` sections.
pub fn pipfile_lock(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let Some(v) = out.json(text) else {
        return out;
    };
    for section in ["default", "develop"] {
        for (name, entry) in v
            .get(section)
            .and_then(Json::as_object)
            .into_iter()
            .flatten()
        {
            let Some(spec) = entry.get("version").and_then(Json::as_str) else {
                continue;
            };
            let hashed = entry
                .get("hashes")
                .and_then(Json::as_array)
                .is_some_and(|h| !h.is_empty());
            let line = line_containing(text, &format!("\"{name}\""));
            out.deps
                .push(dep(name, spec, exact_pin(spec), Role::Locked, hashed, line));
        }
    }
    out
}
