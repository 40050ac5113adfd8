//! Writing the judged items: text for a terminal (verdict, items, then what to do), JSON for
//! machines (a stable shape) and Markdown for an auditor.

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::json;

use super::evidence::{Facts, ScanFacts};
use super::{Item, Status, Summary};

/// The verdict line every format leads with.
pub fn verdict(items: &[Item]) -> String {
    let s = Summary::of(items);
    format!(
        "tollgate report: {} PASS, {} WARN, {} FAIL",
        s.pass, s.warn, s.fail
    )
}

/// Human text: the verdict, each item with its evidence, then what to do.
pub fn text(items: &[Item]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", verdict(items));
    for i in items {
        let _ = writeln!(out, "\n{} {}  {}", i.status.as_str(), i.id, i.title);
        for e in &i.evidence {
            let _ = writeln!(out, "    - {e}");
        }
    }
    let todo: Vec<&Item> = items.iter().filter(|i| i.action.is_some()).collect();
    if !todo.is_empty() {
        let _ = writeln!(out, "\nWhat to do:");
        // Failures first: they are what an auditor will not sign.
        for status in [Status::Fail, Status::Warn] {
            for i in todo.iter().filter(|i| i.status == status) {
                if let Some(a) = &i.action {
                    let _ = writeln!(out, "  {} {}: {a}", i.status.as_str(), i.id);
                }
            }
        }
    }
    out
}

/// The JSON document: `{summary, items: [{id, title, status, evidence, action}]}`.
pub fn json(items: &[Item], facts: &Facts) -> Result<String> {
    let s = Summary::of(items);
    let v = json!({
        "summary": {
            "pass": s.pass,
            "warn": s.warn,
            "fail": s.fail,
            "verdict": if s.fail > 0 { "FAIL" } else if s.warn > 0 { "WARN" } else { "PASS" },
            "generated_at": facts.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
        "items": items,
    });
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}

/// Markdown for an auditor: what was examined, the verdict, a table, then the evidence.
pub fn markdown(items: &[Item], facts: &Facts) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# tollgate checklist report\n");
    let _ = writeln!(md, "**{}**\n", verdict(items));
    let _ = writeln!(
        md,
        "- Generated: {}",
        facts.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let _ = writeln!(
        md,
        "- Configuration: {}",
        facts
            .config_path
            .as_ref()
            .map_or("built-in defaults".to_owned(), |p| format!(
                "`{}`",
                p.display()
            ))
    );
    let _ = writeln!(
        md,
        "- Runtime evidence: {}",
        match &facts.store {
            Ok(_) => "read from the store".to_owned(),
            Err(why) => format!("unavailable ({why})"),
        }
    );
    let _ = writeln!(
        md,
        "- Repository scan: {}",
        match &facts.scan {
            ScanFacts::Skipped => "not run".to_owned(),
            ScanFacts::Failed(why) => format!("failed ({why})"),
            ScanFacts::Done { root, files, .. } => format!("`{}`, {files} file(s)", root.display()),
        }
    );
    let _ = writeln!(
        md,
        "- Live probe: {}\n",
        if facts.probes.is_some() {
            "yes (--gateway)"
        } else {
            "no"
        }
    );
    let _ = writeln!(md, "| ID | Status | Item |\n|---|---|---|");
    for i in items {
        let _ = writeln!(
            md,
            "| {} | **{}** | {} |",
            i.id,
            i.status.as_str(),
            cell(i.title)
        );
    }
    for i in items {
        let _ = writeln!(md, "\n## {} — {}\n", i.id, i.status.as_str());
        let _ = writeln!(md, "_{}_\n", i.title);
        for e in &i.evidence {
            let _ = writeln!(md, "- {e}");
        }
        if let Some(a) = &i.action {
            let _ = writeln!(md, "\n**To do:** {a}");
        }
    }
    md
}

/// Text safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}
