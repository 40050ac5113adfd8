//! Rust and Go manifests and lockfiles.

use toml::Value;

use super::{Dep, Ecosystem, Parsed, Role, line_containing};

fn dep(
    eco: Ecosystem,
    name: &str,
    spec: &str,
    version: Option<String>,
    role: Role,
    hashed: bool,
    line: usize,
) -> Dep {
    Dep {
        ecosystem: eco,
        name: name.to_owned(),
        spec: spec.to_owned(),
        version,
        role,
        hashed,
        line,
    }
}

/// Cargo's `=1.2.3` is the only exact requirement (a bare `1.2.3` means `^1.2.3`).
fn cargo_exact(spec: &str) -> Option<String> {
    let v = spec.trim().strip_prefix('=')?.trim();
    semver::Version::parse(v).ok().map(|_| v.to_owned())
}

fn cargo_table(text: &str, table: Option<&Value>, out: &mut Parsed) {
    for (name, spec) in table.and_then(Value::as_table).into_iter().flatten() {
        let (spec_s, version) = match spec {
            Value::String(s) => (s.clone(), cargo_exact(s)),
            Value::Table(t) => {
                if t.contains_key("path")
                    || t.get("workspace").and_then(Value::as_bool) == Some(true)
                {
                    continue;
                }
                if t.contains_key("git") {
                    let rev = t.get("rev").and_then(Value::as_str).unwrap_or("");
                    (
                        format!("git {rev}"),
                        (rev.len() >= 40).then(|| rev.to_owned()),
                    )
                } else {
                    let v = t.get("version").and_then(Value::as_str).unwrap_or("*");
                    (v.to_owned(), cargo_exact(v))
                }
            }
            _ => continue,
        };
        let crate_name = match spec {
            Value::Table(t) => t.get("package").and_then(Value::as_str).unwrap_or(name),
            _ => name,
        };
        let line = line_containing(text, &format!("{name} ="));
        out.deps.push(dep(
            Ecosystem::Cargo,
            crate_name,
            &spec_s,
            version,
            Role::Declared,
            false,
            line,
        ));
    }
}

/// `Cargo.toml`: every dependency table, including target-specific and workspace ones.
pub fn cargo_toml(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let Some(v) = out.toml(text) else {
        return out;
    };
    let sections = ["dependencies", "dev-dependencies", "build-dependencies"];
    for s in sections {
        cargo_table(text, v.get(s), &mut out);
    }
    if let Some(ws) = v.get("workspace") {
        cargo_table(text, ws.get("dependencies"), &mut out);
    }
    for target in v
        .get("target")
        .and_then(Value::as_table)
        .into_iter()
        .flat_map(|t| t.values())
    {
        for s in sections {
            cargo_table(text, target.get(s), &mut out);
        }
    }
    out
}

/// `Cargo.lock`: registry packages (workspace members have no `source`).
pub fn cargo_lock(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let Some(v) = out.toml(text) else {
        return out;
    };
    for p in v
        .get("package")
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
        if p.get("source").is_none() {
            continue;
        }
        let hashed = p.get("checksum").is_some();
        let line = line_containing(text, &format!("name = \"{name}\""));
        out.deps.push(dep(
            Ecosystem::Cargo,
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

/// `go.mod`: `require` lines. Go's minimal version selection makes each an exact version,
/// so they are both declared and locked.
pub fn go_mod(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut in_block = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split("//").next().unwrap_or("").trim();
        if in_block {
            if line == ")" {
                in_block = false;
                continue;
            }
        } else if line == "require (" {
            in_block = true;
            continue;
        }
        let entry = if in_block {
            line
        } else if let Some(rest) = line.strip_prefix("require ") {
            rest.trim()
        } else {
            continue;
        };
        let mut parts = entry.split_whitespace();
        if let (Some(module), Some(version)) = (parts.next(), parts.next()) {
            out.deps.push(dep(
                Ecosystem::Go,
                module,
                version,
                Some(version.to_owned()),
                Role::Declared,
                false,
                i + 1,
            ));
            out.deps.push(dep(
                Ecosystem::Go,
                module,
                version,
                Some(version.to_owned()),
                Role::Locked,
                false,
                i + 1,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_pins_and_tables() {
        let t = "[dependencies]\ncandle-core = \"0.6\"\ntokenizers = \"=0.19.1\"\nlocal = { path = \"../x\" }\nsafetensors = { version = \"=0.4.3\" }\n[target.'cfg(unix)'.dependencies]\ntch = \"0.17\"\n";
        let p = cargo_toml(t);
        let got: Vec<_> = p
            .deps
            .iter()
            .map(|d| (d.name.as_str(), d.version.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("candle-core", None),
                ("safetensors", Some("0.4.3")),
                ("tokenizers", Some("0.19.1")),
                ("tch", None)
            ]
        );
    }

    #[test]
    fn go_mod_block_and_single() {
        let t = "module x\n\nrequire github.com/a/b v1.0.0\nrequire (\n\tgithub.com/ollama/ollama v0.1.30 // indirect\n)\n";
        let p = go_mod(t);
        let locked: Vec<_> = p
            .deps
            .iter()
            .filter(|d| d.role == Role::Locked)
            .map(|d| (d.name.as_str(), d.line))
            .collect();
        assert_eq!(
            locked,
            [("github.com/a/b", 3), ("github.com/ollama/ollama", 5)]
        );
    }
}
