//! Rendering a [`Report`]: human text (verdict first), JSON, SARIF 2.1.0; and baselines.
//!
//! SARIF follows what GitHub code scanning accepts: one run, `tool.driver.rules` with every
//! rule used, and per result a `ruleId`, a `level` (`error`, `warning`, `note`), a message and
//! a physical location whose URI is relative to the scanned root, with `startLine`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::finding::{Finding, Severity};
use crate::{Report, ScanError};

/// The checklist items `scan` covers, with their titles and what to do about a finding.
pub const ITEMS: &[(&str, &str, &str)] = &[
    (
        "AC-1",
        "no provider credentials in code, config or .env files",
        "Move each credential into a secrets manager (`tollgate secrets set NAME`), reference it, and rotate it: it has been exposed.",
    ),
    (
        "SC-1",
        "AI libraries pinned to reviewed versions",
        "Pin AI packages exactly (`==`, `=`, exact versions) and commit a lockfile with hashes.",
    ),
    (
        "SC-2",
        "third-party models free of unsafe code and malformed files",
        "Do not load flagged files; prefer safetensors/GGUF, `torch.load(..., weights_only=True)`, pinned `revision=` and no `trust_remote_code`.",
    ),
    (
        "SC-3",
        "self-hosted model servers not exposed publicly",
        "Bind model servers to 127.0.0.1 or an internal network, and put the tollgate gateway in front of them.",
    ),
    (
        "SC-4",
        "no known vulnerabilities in locked dependencies",
        "Upgrade each package to at least the first fixed version named in the finding.",
    ),
];

/// Notes are listed one by one only up to this many; beyond, a count per rule.
pub const MAX_LISTED_NOTES: usize = 20;

/// Verdict of one checklist item: the worst severity among its findings.
pub fn verdict(findings: &[Finding], item: &str) -> &'static str {
    match findings
        .iter()
        .filter(|f| f.checklist_id == item)
        .map(|f| f.severity)
        .max()
    {
        Some(Severity::Error) => "FAIL",
        Some(Severity::Warning) => "WARN",
        Some(Severity::Note) | None => "PASS",
    }
}

/// Overall verdict: FAIL when something at or above `fail_on` was found, WARN when anything
/// else but notes was found, PASS otherwise.
pub fn overall(findings: &[Finding], fail_on: Severity) -> &'static str {
    if findings.iter().any(|f| f.severity >= fail_on) {
        "FAIL"
    } else if findings.iter().any(|f| f.severity > Severity::Note) {
        "WARN"
    } else {
        "PASS"
    }
}

/// Human output: the verdict, one line per checklist item, the findings, then what to do.
pub fn human(report: &Report, fail_on: Severity, advisories: bool) -> String {
    let f = &report.findings;
    let count = |s: Severity| f.iter().filter(|x| x.severity == s).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} error(s), {} warning(s), {} note(s) in {} file(s)",
        overall(f, fail_on),
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Note),
        report.files_scanned
    );
    for (id, title, _) in ITEMS {
        let n = f.iter().filter(|x| x.checklist_id == *id).count();
        if *id == "SC-4" && !advisories {
            let _ = writeln!(
                out,
                "  SKIP {id}  {title} (no advisory database: pass --advisories DIR)"
            );
            continue;
        }
        let _ = writeln!(out, "  {} {id}  {title} ({n} finding(s))", verdict(f, id));
    }
    if f.is_empty() {
        return out;
    }
    let _ = writeln!(out);
    let notes = f.iter().filter(|x| x.severity == Severity::Note).count();
    let list_notes = notes <= MAX_LISTED_NOTES;
    for x in f
        .iter()
        .filter(|x| list_notes || x.severity > Severity::Note)
    {
        let _ = write!(
            out,
            "{}:{}  {}  {} [{}] {}",
            x.path,
            x.line,
            x.severity.as_str(),
            x.checklist_id,
            x.rule,
            x.message
        );
        if !x.evidence.is_empty() {
            let _ = write!(out, "  ({})", x.evidence);
        }
        out.push('\n');
    }
    if !list_notes {
        let mut by_rule: BTreeMap<&str, usize> = BTreeMap::new();
        for x in f.iter().filter(|x| x.severity == Severity::Note) {
            *by_rule.entry(x.rule.as_str()).or_default() += 1;
        }
        let summary: Vec<String> = by_rule.iter().map(|(r, n)| format!("{r} ×{n}")).collect();
        let _ = writeln!(
            out,
            "({notes} notes not listed: {}; --format json lists them)",
            summary.join(", ")
        );
    }
    let _ = writeln!(out, "\nWhat to do:");
    for (id, _, todo) in ITEMS {
        if f.iter().any(|x| x.checklist_id == *id) {
            let _ = writeln!(out, "  {id}: {todo}");
        }
    }
    let _ = writeln!(
        out,
        "  Accepted risk: add `tollgate:ignore` on the line, list the path in .tollgateignore, or record a baseline with --write-baseline."
    );
    out
}

/// JSON output: verdicts per item and the findings.
pub fn json(report: &Report, fail_on: Severity) -> Value {
    let items: Vec<Value> = ITEMS
        .iter()
        .map(|(id, title, _)| {
            let v = if *id == "SC-4" && report.advisories_loaded == 0 {
                "SKIP"
            } else {
                verdict(&report.findings, id)
            };
            json!({"id": id, "title": title, "verdict": v})
        })
        .collect();
    json!({
        "verdict": overall(&report.findings, fail_on),
        "files_scanned": report.files_scanned,
        "advisories_loaded": report.advisories_loaded,
        "checklist": items,
        "findings": report.findings,
    })
}

/// SARIF 2.1.0 log of the findings.
pub fn sarif(report: &Report) -> Value {
    let rules: BTreeMap<&str, &Finding> = report
        .findings
        .iter()
        .map(|f| (f.rule.as_str(), f))
        .collect();
    let rule_objs: Vec<Value> = rules
        .iter()
        .map(|(id, f)| {
            let (title, todo) = ITEMS
                .iter()
                .find(|(item, _, _)| *item == f.checklist_id)
                .map_or(("", ""), |(_, t, d)| (*t, *d));
            json!({
                "id": id,
                "name": id,
                "shortDescription": {"text": format!("{} {}", f.checklist_id, id)},
                "fullDescription": {"text": format!("{}: {title}", f.checklist_id)},
                "help": {"text": todo},
                "defaultConfiguration": {"level": f.severity.as_str()},
                "properties": {"tags": ["security", f.checklist_id]},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let text = if f.evidence.is_empty() {
                f.message.clone()
            } else {
                format!("{} ({})", f.message, f.evidence)
            };
            json!({
                "ruleId": f.rule,
                "level": f.severity.as_str(),
                "message": {"text": text},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.path},
                        "region": {"startLine": f.line},
                    }
                }],
                "partialFingerprints": {"tollgate/v1": f.fingerprint},
                "properties": {"checklist": f.checklist_id},
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "tollgate",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rule_objs,
            }},
            "results": results,
        }],
    })
}

/// Fingerprints of accepted findings, read from a baseline file.
#[derive(Debug, Default, Clone)]
pub struct Baseline {
    fingerprints: BTreeSet<String>,
}

/// Largest baseline file accepted.
pub const MAX_BASELINE_BYTES: u64 = 64 * 1024 * 1024;

impl Baseline {
    /// Read a baseline written by [`Baseline::write`].
    pub fn load(path: &Path) -> Result<Self, ScanError> {
        let err = |message: String| ScanError::Baseline {
            path: path.to_path_buf(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if meta.len() > MAX_BASELINE_BYTES {
            return Err(err(format!("larger than {MAX_BASELINE_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        let fingerprints = v
            .get("findings")
            .and_then(Value::as_array)
            .ok_or_else(|| err("expected {\"findings\": [...]}".to_owned()))?
            .iter()
            .filter_map(|f| f.get("fingerprint").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        Ok(Self { fingerprints })
    }

    /// Write the findings' fingerprints (with rule, path and line for review, no secrets).
    pub fn write(path: &Path, findings: &[Finding]) -> Result<(), ScanError> {
        let list: Vec<Value> = findings
            .iter()
            .map(|f| json!({"fingerprint": f.fingerprint, "rule": f.rule, "file": f.path, "line": f.line}))
            .collect();
        let text = serde_json::to_string_pretty(&json!({"version": 1, "findings": list}))
            .unwrap_or_default();
        std::fs::write(path, text + "\n").map_err(|e| ScanError::Baseline {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Drop findings recorded in the baseline; returns how many were dropped.
    pub fn apply(&self, findings: &mut Vec<Finding>) -> usize {
        let before = findings.len();
        findings.retain(|f| !self.fingerprints.contains(&f.fingerprint));
        before - findings.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            findings: vec![
                Finding::new("AC-1", "openai-api-key", Severity::Error, "a.py", 3, "key")
                    .with_evidence("sk-pro…"),
                Finding::new(
                    "SC-1",
                    "unpinned-ai-package",
                    Severity::Warning,
                    "requirements.txt",
                    1,
                    "torch",
                ),
            ],
            files_scanned: 2,
            advisories_loaded: 0,
        }
    }

    #[test]
    fn human_output_leads_with_the_verdict() {
        let text = human(&report(), Severity::Warning, false);
        assert!(text.starts_with("FAIL: 1 error(s), 1 warning(s)"), "{text}");
        assert!(text.contains("FAIL AC-1"));
        assert!(text.contains("WARN SC-1"));
        assert!(text.contains("PASS SC-2"));
        assert!(text.contains("SKIP SC-4"));
        assert!(text.contains("What to do:"));
    }

    #[test]
    fn human_report_snapshot() {
        insta::assert_snapshot!(human(&report(), Severity::Warning, true));
    }

    #[test]
    fn many_notes_are_summarised() {
        let mut r = report();
        for i in 0..=MAX_LISTED_NOTES {
            r.findings.push(Finding::new(
                "SC-2",
                "pickle-load",
                Severity::Note,
                "x.py",
                i + 1,
                "n",
            ));
        }
        let text = human(&r, Severity::Warning, false);
        assert!(
            text.contains(&format!(
                "{} notes not listed: pickle-load ×{}",
                MAX_LISTED_NOTES + 1,
                MAX_LISTED_NOTES + 1
            )),
            "{text}"
        );
        assert!(!text.contains("x.py:1 "));
    }

    #[test]
    fn sarif_has_rule_level_and_relative_location() {
        let v = sarif(&report());
        assert_eq!(v["version"], "2.1.0");
        let r = &v["runs"][0]["results"][0];
        assert_eq!(r["ruleId"], "openai-api-key");
        assert_eq!(r["level"], "error");
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "a.py"
        );
        assert_eq!(
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
            3
        );
        assert_eq!(
            v["runs"][0]["tool"]["driver"]["rules"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn oversized_baseline_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.json");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(MAX_BASELINE_BYTES + 1).unwrap();
        assert!(Baseline::load(&path).is_err());
    }

    #[test]
    fn baseline_round_trip_drops_known_findings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.json");
        let r = report();
        Baseline::write(&path, &r.findings[..1]).unwrap();
        let mut findings = r.findings.clone();
        assert_eq!(Baseline::load(&path).unwrap().apply(&mut findings), 1);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule, "unpinned-ai-package");
    }
}
