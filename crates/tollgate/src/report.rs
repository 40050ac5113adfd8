//! `tollgate report`: the checklist report. Each of the 24 items of `CHECKLIST.md`, in order,
//! with PASS / WARN / FAIL, the evidence behind it and, for WARN and FAIL, what to do.
//!
//! An item is implemented only when tollgate enforces it *and* shows evidence for it here
//! (DESIGN.md, "How each checklist item is enforced and shown"). The report judges three
//! sources: the config (static policy), the store (runtime evidence: keys, the audit chain,
//! payloads, alerts, reviews, versions) and a scan of the repository (AC-1, SC-1..SC-4); with
//! `--gateway URL` it also probes each data-plane route without a credential (AC-2).
//!
//! It is split in three: [`evidence`] gathers facts, [`items`] judges them (pure functions,
//! unit-tested), [`render`] writes text, JSON or Markdown. Evidence that cannot be gathered
//! (no store yet, `--no-scan`) is said so and the item is a WARN, never a silent PASS.
//!
//! Exit codes: 0 when nothing FAILs, 1 when an item FAILs, 2 on usage or runtime errors.

mod evidence;
mod items;
mod render;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::{Outcome, setup};

/// Output formats of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The verdict, each item with its evidence, then what to do.
    Text,
    /// One JSON object: `{summary, items: [{id, title, status, evidence, action}]}`.
    Json,
    /// A Markdown document to hand to an auditor.
    Markdown,
}

/// Options of `report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Repository to scan for AC-1 and SC-1..SC-4 (default: the current directory).
    #[arg(long)]
    repo: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Shorthand for `--format json`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Do not scan the repository (AC-1's scan half and SC-1..SC-4 are then WARN).
    #[arg(long)]
    no_scan: bool,
    /// Offline OSV advisory database for SC-4 (as `tollgate scan --advisories`).
    #[arg(long, env = "TOLLGATE_ADVISORIES")]
    advisories: Option<PathBuf>,
}

/// An item's verdict. Ordered: `Pass < Warn < Fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Enforced, and the evidence shows it.
    Pass,
    /// Enforced, but the evidence is missing or shows something to fix.
    Warn,
    /// Not met.
    Fail,
}

impl Status {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        }
    }
}

/// One checklist item as judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// Checklist id, e.g. `AC-1`.
    pub id: &'static str,
    /// The checklist's wording.
    pub title: &'static str,
    /// The verdict: the worst of what was found.
    pub status: Status,
    /// Facts behind the verdict, one per line; never secrets, key material or raw PII.
    pub evidence: Vec<String>,
    /// What to do (WARN and FAIL only), one line.
    pub action: Option<String>,
}

impl Item {
    /// A passing item with no evidence yet.
    pub fn new(id: &'static str) -> Self {
        let title = items::CHECKLIST
            .iter()
            .find(|(i, _)| *i == id)
            .map_or("", |(_, t)| *t);
        Self {
            id,
            title,
            status: Status::Pass,
            evidence: Vec::new(),
            action: None,
        }
    }

    /// Add an evidence line.
    pub fn fact(&mut self, line: impl Into<String>) -> &mut Self {
        self.evidence.push(line.into());
        self
    }

    /// Raise the status to `status` (never lower it) and add what to do about it. The
    /// actions of the worst status lead; milder ones follow.
    pub fn flag(&mut self, status: Status, todo: impl Into<String>) -> &mut Self {
        let todo = todo.into();
        self.action = Some(match self.action.take() {
            None => todo,
            Some(prev) if status > self.status => format!("{todo} {prev}"),
            Some(prev) => format!("{prev} {todo}"),
        });
        self.status = self.status.max(status);
        self
    }

    /// WARN with `todo`.
    pub fn warn(&mut self, todo: impl Into<String>) -> &mut Self {
        self.flag(Status::Warn, todo)
    }

    /// FAIL with `todo`.
    pub fn fail(&mut self, todo: impl Into<String>) -> &mut Self {
        self.flag(Status::Fail, todo)
    }
}

/// Counts of each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Items that pass.
    pub pass: usize,
    /// Items with a warning.
    pub warn: usize,
    /// Items that fail.
    pub fail: usize,
}

impl Summary {
    /// Count `items`.
    pub fn of(items: &[Item]) -> Self {
        let n = |s| items.iter().filter(|i| i.status == s).count();
        Self {
            pass: n(Status::Pass),
            warn: n(Status::Warn),
            fail: n(Status::Fail),
        }
    }
}

/// Run `report`: exit 1 when an item fails.
pub async fn run(global: &setup::GlobalArgs, args: ReportArgs) -> Result<Outcome> {
    setup::init_logging(false);
    let loaded = setup::load(global)?;
    let now = chrono::Utc::now();
    let store = evidence::store_facts(global, &loaded, now).await;
    let scan = if args.no_scan {
        evidence::ScanFacts::Skipped
    } else {
        let root = match &args.repo {
            Some(r) => r.clone(),
            None => std::env::current_dir().context("reading the current directory")?,
        };
        if !root.exists() {
            anyhow::bail!("--repo {}: no such file or directory", root.display());
        }
        evidence::scan(&root, args.advisories.as_deref())
    };
    let probes = match &global.gateway {
        Some(url) => Some(evidence::probe(url, &loaded.config).await?),
        None => None,
    };
    let config_path = match &global.config {
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from(setup::DEFAULT_CONFIG)).filter(|p| p.exists()),
    };
    let facts = evidence::Facts {
        config: loaded.config,
        config_path,
        now,
        store,
        scan,
        probes,
    };
    let items = items::judge(&facts);
    let format = if args.json { Format::Json } else { args.format };
    let text = match format {
        Format::Text => render::text(&items),
        Format::Json => render::json(&items, &facts)?,
        Format::Markdown => render::markdown(&items, &facts),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(if items.iter().any(|i| i.status == Status::Fail) {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}
