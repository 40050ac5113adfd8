//! `tollgate scan`: the repository side of the checklist. Today: leaked credentials (AC-1).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;

use crate::Outcome;

/// Options of `scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Directory to scan (default: current directory).
    path: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Run `scan`; exit 1 when something is found.
pub fn run(args: ScanArgs) -> Result<Outcome> {
    let root = args.path.unwrap_or_else(|| PathBuf::from("."));
    let findings = tollgate_scan::secrets::scan_tree(&root)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let v: Vec<_> = findings
            .iter()
            .map(|f| serde_json::json!({"checklist_id": f.checklist_id, "rule": f.rule, "file": f.path, "line": f.line, "evidence": f.evidence}))
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(v))?;
    } else if findings.is_empty() {
        writeln!(
            out,
            "PASS AC-1: no credentials found under {}",
            root.display()
        )?;
    } else {
        writeln!(
            out,
            "FAIL AC-1: {} credential(s) found under {}",
            findings.len(),
            root.display()
        )?;
        for f in &findings {
            writeln!(out, "  {}:{}  {}  {}", f.path, f.line, f.rule, f.evidence)?;
        }
        writeln!(
            out,
            "Move each into a secrets manager (tollgate secrets set NAME) and rotate it: it has been exposed."
        )?;
    }
    Ok(if findings.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Findings
    })
}
