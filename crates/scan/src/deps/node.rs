//! JavaScript manifests and lockfiles.

use serde_json::Value;

use super::{Dep, Ecosystem, Parsed, Role, line_containing};

/// Most lines of a YAML/yarn lockfile read.
pub const MAX_LOCK_LINES: usize = 5_000_000;

fn dep(
    name: &str,
    spec: &str,
    version: Option<String>,
    role: Role,
    hashed: bool,
    line: usize,
) -> Dep {
    Dep {
        ecosystem: Ecosystem::Npm,
        name: name.to_owned(),
        spec: spec.to_owned(),
        version,
        role,
        hashed,
        line,
    }
}

/// An npm range that names exactly one version: `1.2.3`, `=1.2.3`, `v1.2.3`; or a git URL
/// pinned to a full commit hash.
fn exact(spec: &str) -> Option<String> {
    let s = spec.trim();
    if s.contains("://") || s.starts_with("git") || s.starts_with("github:") {
        let commit = s.rsplit('#').next().unwrap_or("");
        return (commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| s.to_owned());
    }
    let v = s.strip_prefix('=').unwrap_or(s).trim();
    let v = v.strip_prefix('v').unwrap_or(v);
    semver::Version::parse(v).ok().map(|_| v.to_owned())
}

/// `package.json`: dependencies, devDependencies, optionalDependencies.
pub fn package_json(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let Some(v) = out.json(text) else {
        return out;
    };
    for section in ["dependencies", "devDependencies", "optionalDependencies"] {
        for (name, spec) in v
            .get(section)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let Some(spec) = spec.as_str() else { continue };
            if ["file:", "link:", "workspace:", "portal:"]
                .iter()
                .any(|p| spec.starts_with(p))
            {
                continue;
            }
            // `npm:real-name@range` aliases: judge the range.
            let range = spec
                .strip_prefix("npm:")
                .and_then(|a| a.rsplit_once('@'))
                .map_or(spec, |(_, r)| r);
            let line = line_containing(text, &format!("\"{name}\""));
            out.deps
                .push(dep(name, spec, exact(range), Role::Declared, false, line));
        }
    }
    out
}

/// `package-lock.json` / `npm-shrinkwrap.json`, lockfile versions 1–3.
pub fn package_lock(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let Some(v) = out.json(text) else {
        return out;
    };
    if let Some(packages) = v.get("packages").and_then(Value::as_object) {
        for (key, entry) in packages {
            let Some(pos) = key.rfind("node_modules/") else {
                continue;
            };
            let name = &key[pos + "node_modules/".len()..];
            if entry.get("link").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let Some(version) = entry.get("version").and_then(Value::as_str) else {
                continue;
            };
            let hashed = entry.get("integrity").is_some();
            let line = line_containing(text, &format!("\"{key}\""));
            out.deps.push(dep(
                name,
                version,
                Some(version.to_owned()),
                Role::Locked,
                hashed,
                line,
            ));
        }
    } else if let Some(deps) = v.get("dependencies").and_then(Value::as_object) {
        let mut stack: Vec<(&String, &Value)> = deps.iter().collect();
        let mut visited = 0usize;
        while let Some((name, entry)) = stack.pop() {
            visited += 1;
            if visited > MAX_LOCK_LINES {
                out.errors.push("too many entries".to_owned());
                break;
            }
            if let Some(version) = entry.get("version").and_then(Value::as_str) {
                let hashed = entry.get("integrity").is_some();
                let line = line_containing(text, &format!("\"{name}\""));
                out.deps.push(dep(
                    name,
                    version,
                    Some(version.to_owned()),
                    Role::Locked,
                    hashed,
                    line,
                ));
            }
            if let Some(nested) = entry.get("dependencies").and_then(Value::as_object) {
                stack.extend(nested.iter());
            }
        }
    }
    out
}

/// Split `@scope/name@1.2.3` or `name@1.2.3(peer@x)` into name and version.
fn split_at_version(key: &str) -> Option<(&str, &str)> {
    let key = key.trim().trim_matches(['\'', '"']).trim_start_matches('/');
    let at = key[1..].find('@').map(|i| i + 1)?;
    let version = key[at + 1..].split('(').next().unwrap_or("");
    Some((&key[..at], version))
}

/// `pnpm-lock.yaml`: package keys under `packages:` (`/name@1.2.3:` in v6, `name@1.2.3:` in v9,
/// `/name/1.2.3:` in v5).
pub fn pnpm_lock(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut in_packages = false;
    for (i, line) in text.lines().enumerate().take(MAX_LOCK_LINES) {
        if !line.starts_with(' ') && !line.is_empty() {
            in_packages = line.trim_end() == "packages:";
            continue;
        }
        if !in_packages || !line.starts_with("  ") || line.starts_with("   ") {
            continue;
        }
        let Some(key) = line.trim().strip_suffix(':') else {
            continue;
        };
        let parsed = split_at_version(key).or_else(|| {
            // v5: /name/1.2.3 or /@scope/name/1.2.3
            let k = key.trim_matches(['\'', '"']).trim_start_matches('/');
            k.rsplit_once('/')
        });
        if let Some((name, version)) = parsed {
            if semver::Version::parse(version).is_ok() {
                out.deps.push(dep(
                    name,
                    version,
                    Some(version.to_owned()),
                    Role::Locked,
                    true,
                    i + 1,
                ));
            }
        }
    }
    out
}

/// `yarn.lock`, classic (v1) and berry: entry headers then a `version` line.
pub fn yarn_lock(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut current: Option<(String, usize)> = None;
    for (i, line) in text.lines().enumerate().take(MAX_LOCK_LINES) {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            // `"name@^1.0.0", name@~1.1:` or `"@scope/name@npm:^1.0.0":`
            let first = line.trim_end_matches(':').split(',').next().unwrap_or("");
            current = split_at_version(first).map(|(n, _)| (n.to_owned(), i + 1));
            if first.trim_matches('"') == "__metadata" {
                current = None;
            }
            continue;
        }
        let t = line.trim();
        let version = t
            .strip_prefix("version ")
            .or_else(|| t.strip_prefix("version: "))
            .map(|v| v.trim().trim_matches('"'));
        if let (Some(v), Some((name, line_no))) = (version, current.as_ref()) {
            out.deps.push(dep(
                name,
                v,
                Some(v.to_owned()),
                Role::Locked,
                true,
                *line_no,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_ranges() {
        assert_eq!(exact("1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(exact("=1.2.3").as_deref(), Some("1.2.3"));
        assert!(exact("^1.2.3").is_none());
        assert!(exact("~2.17.0").is_none());
        assert!(exact("latest").is_none());
        assert!(exact("git+https://x/y.git#main").is_none());
    }

    #[test]
    fn pnpm_and_yarn_keys() {
        let pnpm = "lockfileVersion: '9.0'\npackages:\n  openai@4.56.0:\n    resolution: {integrity: x}\n  '@langchain/core@0.2.1(openai@4.56.0)':\n    resolution: {}\n";
        let p = pnpm_lock(pnpm);
        let got: Vec<_> = p
            .deps
            .iter()
            .map(|d| (d.name.as_str(), d.version.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("openai", Some("4.56.0")),
                ("@langchain/core", Some("0.2.1"))
            ]
        );
        let yarn = "# yarn lockfile v1\n\n\"@anthropic-ai/sdk@^0.20.0\":\n  version \"0.20.1\"\n\nopenai@^4.0.0, openai@^4.20.0:\n  version \"4.56.0\"\n";
        let y = yarn_lock(yarn);
        let got: Vec<_> = y
            .deps
            .iter()
            .map(|d| (d.name.as_str(), d.version.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("@anthropic-ai/sdk", Some("0.20.1")),
                ("openai", Some("4.56.0"))
            ]
        );
    }
}
