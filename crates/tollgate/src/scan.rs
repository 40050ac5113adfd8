//! `tollgate scan`: the repository side of the checklist — leaked credentials (AC-1),
//! unpinned AI packages (SC-1), unsafe model files (SC-2), exposed model servers (SC-3) and
//! known vulnerabilities (SC-4, with `--advisories`).
//!
//! Exit codes: 0 nothing at or above `--fail-on`, 1 findings, 2 usage or runtime error.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use tollgate_scan::report::{self, Baseline};
use tollgate_scan::{ScanOptions, Severity};

use crate::Outcome;

/// Output formats of `scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Verdict per checklist item, then findings, then what to do.
    Human,
    /// One JSON object: verdicts and findings.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

/// Options of `scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Files or directories to scan (default: current directory).
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Shorthand for `--format json`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Lowest severity that makes the exit code 1: error, warning or note.
    #[arg(long, default_value = "warning", value_parser = parse_severity)]
    fail_on: Severity,
    /// Ignore findings recorded in this baseline file.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Record the current findings as accepted in this file (exit 0).
    #[arg(long)]
    write_baseline: Option<PathBuf>,
    /// Offline OSV advisory database: a directory of OSV JSON files or per-ecosystem all.zip.
    #[arg(long, env = "TOLLGATE_ADVISORIES")]
    advisories: Option<PathBuf>,
    /// Also search the git history (every added line of every commit) for credentials.
    #[arg(long)]
    history: bool,
    /// Never draw a progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s).ok_or_else(|| format!("unknown severity {s:?} (error, warning, note)"))
}

/// Run `scan`; exit 1 when something at or above `--fail-on` is found.
pub fn run(args: ScanArgs) -> Result<Outcome> {
    let roots = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    for root in &roots {
        if !root.exists() {
            bail!("{}: no such file or directory", root.display());
        }
    }
    let options = ScanOptions {
        roots: roots.clone(),
        advisories: args.advisories.clone(),
    };
    let draw = !args.no_progress && std::io::stderr().is_terminal();
    let progress = |done: usize, total: usize| {
        // Redraw at most every 64 files: stderr writes are not free on huge trees.
        if total >= 200 && (done % 64 == 0 || done == total) {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\rscanning {done}/{total} files");
            if done == total {
                let _ = write!(err, "\r\x1b[2K");
            }
        }
    };
    let mut report =
        tollgate_scan::scan(&options, draw.then_some(&progress as _)).context("scan failed")?;
    if args.history {
        for root in &roots {
            let found = tollgate_scan::history::scan_history(root)
                .with_context(|| format!("scanning git history of {}", root.display()))?;
            report.findings.extend(found);
        }
    }
    if let Some(path) = &args.write_baseline {
        Baseline::write(path, &report.findings)?;
        eprintln!(
            "baseline with {} finding(s) written to {}",
            report.findings.len(),
            path.display()
        );
        return Ok(Outcome::Ok);
    }
    if let Some(path) = &args.baseline {
        Baseline::load(path)?.apply(&mut report.findings);
    }
    let format = if args.json { Format::Json } else { args.format };
    let text = match format {
        Format::Human => report::human(&report, args.fail_on, args.advisories.is_some()),
        Format::Json => serde_json::to_string_pretty(&report::json(&report, args.fail_on))? + "\n",
        Format::Sarif => serde_json::to_string_pretty(&report::sarif(&report))? + "\n",
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        // A closed pipe (`tollgate scan | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e.into()),
    }
    Ok(
        if report.findings.iter().any(|f| f.severity >= args.fail_on) {
            Outcome::Findings
        } else {
            Outcome::Ok
        },
    )
}
