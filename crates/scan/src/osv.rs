//! Offline OSV advisory database (SC-4).
//!
//! `--advisories DIR` accepts the layouts OSV publishes: a directory of advisory JSON files
//! (any depth), per-ecosystem `ECOSYSTEM/all.zip` archives, or one `all.zip`. Matching follows
//! the OSV schema: a version is affected when it is listed in `versions`, or when the
//! `ECOSYSTEM`/`SEMVER` range events put it after an `introduced` and before the next
//! `fixed` (or at/before `last_affected`), compared with the ecosystem's own version order.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::ScanError;
use crate::deps::Ecosystem;
use crate::deps::version::{self, Version};
use crate::model::zip;

/// Most advisories loaded.
pub const MAX_ADVISORIES: usize = 2_000_000;
/// Largest advisory JSON read.
pub const MAX_ADVISORY_BYTES: u64 = 8 * 1024 * 1024;
/// Deepest directory searched for advisory files.
pub const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone)]
enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
}

#[derive(Debug, Clone)]
struct Range {
    semver: bool,
    events: Vec<Event>,
}

#[derive(Debug, Clone)]
struct Affected {
    ranges: Vec<Range>,
    versions: Vec<String>,
}

#[derive(Debug, Clone)]
struct Advisory {
    id: String,
    aliases: Vec<String>,
    summary: String,
    severity: String,
}

/// An advisory that affects a given version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Advisory id (`PYSEC-…`, `GHSA-…`, `RUSTSEC-…`).
    pub id: String,
    /// CVE and other aliases.
    pub aliases: Vec<String>,
    /// One-line summary.
    pub summary: String,
    /// Severity (`HIGH (8.1)`, a CVSS vector, or `unknown`).
    pub severity: String,
    /// First fixed version after the affected one.
    pub fixed: Option<String>,
}

/// Loaded advisories, indexed by ecosystem and normalised package name.
#[derive(Debug, Default)]
pub struct Database {
    advisories: Vec<Advisory>,
    index: HashMap<(Ecosystem, String), Vec<(usize, Affected)>>,
}

impl Database {
    /// Load from a directory or a zip file.
    pub fn load(path: &Path) -> Result<Self, ScanError> {
        let err = |message: String| ScanError::Advisories {
            path: path.to_path_buf(),
            message,
        };
        let mut db = Self::default();
        if path.is_file() {
            db.load_zip(path).map_err(err)?;
        } else if path.is_dir() {
            db.load_dir(path, 0).map_err(err)?;
        } else {
            return Err(err("no such file or directory".to_owned()));
        }
        if db.advisories.is_empty() {
            return Err(err(
                "no OSV advisories found (expected *.json files or all.zip)".to_owned(),
            ));
        }
        Ok(db)
    }

    /// True when no advisory was loaded.
    pub fn is_empty(&self) -> bool {
        self.advisories.is_empty()
    }

    /// Number of advisories.
    pub fn len(&self) -> usize {
        self.advisories.len()
    }

    fn load_dir(&mut self, dir: &Path, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                self.load_dir(&p, depth + 1)?;
            } else if p.extension().is_some_and(|e| e == "zip") {
                self.load_zip(&p)?;
            } else if p.extension().is_some_and(|e| e == "json") {
                let small = std::fs::metadata(&p).is_ok_and(|m| m.len() <= MAX_ADVISORY_BYTES);
                if let Some(bytes) = small.then(|| std::fs::read(&p).ok()).flatten() {
                    self.add_json(&bytes);
                }
            }
        }
        Ok(())
    }

    fn load_zip(&mut self, path: &Path) -> Result<(), String> {
        let src = std::fs::File::open(path)
            .and_then(zip::FileSource::new)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let archive = zip::parse(&src).map_err(|e| format!("{}: {e}", path.display()))?;
        for entry in archive.entries.iter().filter(|e| e.name.ends_with(".json")) {
            if let Ok(bytes) = zip::read_entry(&src, entry, MAX_ADVISORY_BYTES as usize) {
                self.add_json(&bytes);
            }
        }
        Ok(())
    }

    /// Add one advisory from its JSON; malformed or withdrawn ones are ignored.
    fn add_json(&mut self, bytes: &[u8]) {
        if self.advisories.len() >= MAX_ADVISORIES {
            return;
        }
        let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
            return;
        };
        if v.get("withdrawn").is_some() {
            return;
        }
        let Some(id) = v.get("id").and_then(Value::as_str) else {
            return;
        };
        let strings = |key: &str| -> Vec<String> {
            v.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        let summary = v
            .get("summary")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| v.get("details").and_then(Value::as_str))
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(160)
            .collect();
        let n = self.advisories.len();
        let mut severity = severity_of(&v);
        for a in v
            .get("affected")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let pkg = a.get("package");
            let eco = pkg
                .and_then(|p| p.get("ecosystem"))
                .and_then(Value::as_str)
                .and_then(Ecosystem::from_osv);
            let name = pkg.and_then(|p| p.get("name")).and_then(Value::as_str);
            let (Some(eco), Some(name)) = (eco, name) else {
                continue;
            };
            if severity == "unknown" {
                if let Some(s) = a
                    .get("database_specific")
                    .and_then(|d| d.get("severity").or_else(|| d.get("cvss")))
                    .and_then(Value::as_str)
                {
                    severity = cvss_label(s);
                }
            }
            let ranges = a
                .get("ranges")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    let ty = r.get("type").and_then(Value::as_str)?;
                    if ty != "ECOSYSTEM" && ty != "SEMVER" {
                        return None;
                    }
                    let events = r
                        .get("events")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|e| {
                            let s = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_owned);
                            s("introduced")
                                .map(Event::Introduced)
                                .or_else(|| s("fixed").map(Event::Fixed))
                                .or_else(|| s("last_affected").map(Event::LastAffected))
                        })
                        .collect();
                    Some(Range {
                        semver: ty == "SEMVER",
                        events,
                    })
                })
                .collect();
            let versions = a
                .get("versions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            self.index
                .entry((eco, eco.normalize(name)))
                .or_default()
                .push((n, Affected { ranges, versions }));
        }
        self.advisories.push(Advisory {
            id: id.to_owned(),
            aliases: strings("aliases"),
            summary,
            severity,
        });
    }

    /// Advisories that affect `name` at `version` in `eco`.
    pub fn matching(&self, eco: Ecosystem, name: &str, version: &str) -> Vec<Match> {
        let Some(list) = self.index.get(&(eco, eco.normalize(name))) else {
            return Vec::new();
        };
        let version = version.trim().trim_start_matches("==");
        let parsed = version::parse(eco, version);
        let mut out: Vec<Match> = Vec::new();
        for (i, affected) in list {
            let mut hit = affected.versions.iter().any(|v| v == version);
            let mut fixed = None;
            for r in &affected.ranges {
                let eco_r = if r.semver && eco == Ecosystem::PyPI {
                    Ecosystem::Cargo
                } else {
                    eco
                };
                let Some(v) = (if eco_r == eco {
                    parsed.clone()
                } else {
                    version::parse(eco_r, version)
                }) else {
                    continue;
                };
                let (in_range, f) = evaluate(eco_r, &r.events, &v);
                if in_range {
                    hit = true;
                    fixed = fixed.or(f);
                }
            }
            if hit && !out.iter().any(|m| m.id == self.advisories[*i].id) {
                let a = &self.advisories[*i];
                out.push(Match {
                    id: a.id.clone(),
                    aliases: a.aliases.clone(),
                    summary: a.summary.clone(),
                    severity: a.severity.clone(),
                    fixed,
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

/// Is `v` inside the range described by `events`? Also returns the first fix after `v`.
fn evaluate(eco: Ecosystem, events: &[Event], v: &Version) -> (bool, Option<String>) {
    let key = |s: &str| -> Option<Version> {
        if s == "0" {
            None
        } else {
            version::parse(eco, s)
        }
    };
    let mut sorted: Vec<(Option<Version>, &Event)> = events
        .iter()
        .filter_map(|e| {
            let s = match e {
                Event::Introduced(s) | Event::Fixed(s) | Event::LastAffected(s) => s,
            };
            // Unparseable versions cannot be placed; "0" sorts first.
            if s == "0" {
                Some((None, e))
            } else {
                key(s).map(|k| (Some(k), e))
            }
        })
        .collect();
    sorted.sort_by(|a, b| match (&a.0, &b.0) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, _) => std::cmp::Ordering::Less,
        (_, None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal),
    });
    let mut affected = false;
    let mut fixed_after = None;
    for (k, e) in &sorted {
        let le = k.as_ref().is_none_or(|k| k <= v);
        let lt = k.as_ref().is_none_or(|k| k < v);
        match e {
            Event::Introduced(_) if le => affected = true,
            Event::Fixed(_) if le => affected = false,
            Event::LastAffected(_) if lt => affected = false,
            Event::Fixed(s) if !le && affected && fixed_after.is_none() => {
                fixed_after = Some(s.clone())
            }
            _ => {}
        }
    }
    (affected, fixed_after)
}

fn severity_of(v: &Value) -> String {
    let db = v
        .get("database_specific")
        .and_then(|d| d.get("severity"))
        .and_then(Value::as_str);
    let vector = v.get("severity").and_then(Value::as_array).and_then(|a| {
        a.iter()
            .find_map(|s| s.get("score").and_then(Value::as_str))
    });
    match (db, vector) {
        (_, Some(vec)) if vec.starts_with("CVSS:3") => cvss_label(vec),
        (Some(s), _) => s.to_ascii_uppercase(),
        (None, Some(vec)) => vec.to_owned(),
        (None, None) => "unknown".to_owned(),
    }
}

fn cvss_label(s: &str) -> String {
    match cvss3_score(s) {
        Some(score) => {
            let rating = match score {
                x if x >= 9.0 => "CRITICAL",
                x if x >= 7.0 => "HIGH",
                x if x >= 4.0 => "MEDIUM",
                x if x > 0.0 => "LOW",
                _ => "NONE",
            };
            format!("{rating} ({score:.1})")
        }
        None => s.to_owned(),
    }
}

/// CVSS v3.x base score from a vector (FIRST CVSS v3.1 specification, section 7.1).
pub fn cvss3_score(vector: &str) -> Option<f64> {
    let mut m: HashMap<&str, &str> = HashMap::new();
    for part in vector.split('/').skip(1) {
        let (k, v) = part.split_once(':')?;
        m.insert(k, v);
    }
    let scope_changed = *m.get("S")? == "C";
    let av = match *m.get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match *m.get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (*m.get("PR")?, scope_changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match *m.get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |k: &str| -> Option<f64> {
        match *m.get(k)? {
            "H" => Some(0.56),
            "L" => Some(0.22),
            "N" => Some(0.0),
            _ => None,
        }
    };
    let iss = 1.0 - (1.0 - cia("C")?) * (1.0 - cia("I")?) * (1.0 - cia("A")?);
    let impact = if scope_changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if scope_changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    Some(roundup(raw))
}

fn roundup(x: f64) -> f64 {
    let int_input = (x * 100_000.0).round() as i64;
    if int_input % 10_000 == 0 {
        int_input as f64 / 100_000.0
    } else {
        ((int_input / 10_000) + 1) as f64 / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(json: &str) -> Database {
        let mut d = Database::default();
        d.add_json(json.as_bytes());
        d
    }

    #[test]
    fn ecosystem_range_with_fix() {
        let d = db(
            r#"{"id":"PYSEC-1","aliases":["CVE-1"],"details":"bad\nmore","affected":[{"package":{"name":"Llama_Index","ecosystem":"PyPI"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"0.9.35"}]}]}]}"#,
        );
        let m = d.matching(Ecosystem::PyPI, "llama-index", "0.9.20");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].fixed.as_deref(), Some("0.9.35"));
        assert_eq!(m[0].summary, "bad");
        assert!(
            d.matching(Ecosystem::PyPI, "llama-index", "0.9.35")
                .is_empty()
        );
        assert!(
            d.matching(Ecosystem::PyPI, "llama-index", "0.10.0")
                .is_empty()
        );
    }

    #[test]
    fn semver_ranges_with_several_branches_and_last_affected() {
        let d = db(
            r#"{"id":"RUSTSEC-1","affected":[{"package":{"name":"h2","ecosystem":"crates.io"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0.0.0-0"},{"fixed":"0.3.24"},{"introduced":"0.4.0"},{"last_affected":"0.4.1"}]}]}]}"#,
        );
        assert_eq!(d.matching(Ecosystem::Cargo, "h2", "0.3.20").len(), 1);
        assert!(d.matching(Ecosystem::Cargo, "h2", "0.3.24").is_empty());
        assert_eq!(d.matching(Ecosystem::Cargo, "h2", "0.4.1").len(), 1);
        assert!(d.matching(Ecosystem::Cargo, "h2", "0.4.2").is_empty());
    }

    #[test]
    fn explicit_versions_and_withdrawn() {
        let d = db(
            r#"{"id":"X","affected":[{"package":{"name":"a","ecosystem":"npm"},"versions":["1.0.0"]}]}"#,
        );
        assert_eq!(d.matching(Ecosystem::Npm, "a", "1.0.0").len(), 1);
        let w = db(
            r#"{"id":"X","withdrawn":"2024-01-01T00:00:00Z","affected":[{"package":{"name":"a","ecosystem":"npm"},"versions":["1.0.0"]}]}"#,
        );
        assert!(w.is_empty());
    }

    #[test]
    fn cvss_scores_match_the_spec() {
        assert_eq!(
            cvss3_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            Some(9.8)
        );
        assert_eq!(
            cvss3_score("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H"),
            Some(9.9)
        );
        assert_eq!(
            cvss3_score("CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"),
            Some(1.8)
        );
        assert_eq!(cvss3_score("garbage"), None);
    }
}
