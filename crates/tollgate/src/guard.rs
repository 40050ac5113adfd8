//! `tollgate guard`: run the detectors on text from stdin (`check`) and measure them on
//! labelled sets (`eval`) in the shared scorers' formats.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tollgate_guard::pii::{PiiDetector, PiiType};

use crate::Outcome;

/// Largest text `check` reads from stdin.
const MAX_CHECK_BYTES: u64 = 16 * 1024 * 1024;
/// Largest line `eval` accepts from a set file.
const MAX_EVAL_LINE_BYTES: usize = 1024 * 1024;

/// Guard subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum GuardCommand {
    /// Read text from stdin and print what every guard finds (never the matched values).
    Check {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Score a detector on a labelled JSONL set (see shared/eval/README.md).
    Eval {
        /// Which detector.
        #[arg(long, value_enum)]
        kind: EvalKind,
        /// The labelled set.
        #[arg(long)]
        set: PathBuf,
        /// Write one prediction line per input line, in the shared scorers' format.
        #[arg(long)]
        predictions: Option<PathBuf>,
    },
}

/// Detector kinds `eval` knows.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EvalKind {
    /// PII spans.
    Pii,
}

/// Run a guard subcommand.
pub fn run(cmd: GuardCommand) -> Result<Outcome> {
    match cmd {
        GuardCommand::Check { json } => check(json),
        GuardCommand::Eval {
            kind,
            set,
            predictions,
        } => match kind {
            EvalKind::Pii => eval_pii(&set, predictions.as_deref()),
        },
    }
}

fn check(json: bool) -> Result<Outcome> {
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_CHECK_BYTES)
        .read_to_string(&mut text)
        .context("reading stdin (UTF-8 text expected)")?;
    let pii = PiiDetector::default().detect(&text);
    let secrets = tollgate_guard::secret::find_secrets(&text);
    let mut out = std::io::stdout().lock();
    let flagged = !pii.is_empty() || !secrets.is_empty();
    if json {
        let v = json!({
            "pii": pii.iter().map(|d| json!({"type": d.kind.label(), "start": d.start, "end": d.end, "score": d.score})).collect::<Vec<_>>(),
            "secrets": secrets.iter().map(|m| json!({"rule": m.rule, "start": m.start, "end": m.end})).collect::<Vec<_>>(),
        });
        writeln!(out, "{v}")?;
    } else if !flagged {
        writeln!(out, "PASS: no PII or credentials found")?;
    } else {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for d in &pii {
            *counts.entry(d.kind.label()).or_default() += 1;
        }
        for m in &secrets {
            *counts.entry(m.rule).or_default() += 1;
        }
        let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{k}×{n}")).collect();
        writeln!(out, "FLAGGED: {}", summary.join(", "))?;
        for d in &pii {
            writeln!(
                out,
                "  {:<10} bytes {}..{}  score {:.2}",
                d.kind.label(),
                d.start,
                d.end,
                d.score
            )?;
        }
        for m in &secrets {
            writeln!(
                out,
                "  {:<10} bytes {}..{}  {}",
                "SECRET", m.start, m.end, m.rule
            )?;
        }
    }
    Ok(if flagged {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}

fn read_set(path: &std::path::Path) -> Result<Vec<Value>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut rows = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        if line.len() > MAX_EVAL_LINE_BYTES {
            bail!(
                "{}:{}: line longer than {MAX_EVAL_LINE_BYTES} bytes",
                path.display(),
                n + 1
            );
        }
        let v: Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
        rows.push(v);
    }
    Ok(rows)
}

/// The scorers' type normalisation (shared/eval/eval_pii.py).
fn norm(t: &str) -> &str {
    match t {
        "GPE" | "STREET_ADDRESS" => "LOCATION",
        "DOMAIN_NAME" => "URL",
        "ORG" => "ORGANIZATION",
        other => other,
    }
}

fn eval_pii(set: &std::path::Path, predictions: Option<&std::path::Path>) -> Result<Outcome> {
    let rows = read_set(set)?;
    let detector = PiiDetector::default();
    let supported: BTreeSet<&str> = PiiType::ALL
        .iter()
        .map(|t| norm(t.presidio_name()))
        .collect();
    let mut pred_lines = Vec::with_capacity(rows.len());
    let (mut tp, mut fp, mut fn_) = (
        BTreeMap::<String, usize>::new(),
        BTreeMap::<String, usize>::new(),
        BTreeMap::<String, usize>::new(),
    );
    let started = std::time::Instant::now();
    let mut bytes = 0usize;
    for row in &rows {
        let text = row.get("text").and_then(Value::as_str).unwrap_or_default();
        bytes += text.len();
        let found = detector.detect(text);
        // Byte offsets to Unicode code points, as the scorers expect.
        let cp = |b: usize| text[..b].chars().count();
        let spans: Vec<(usize, usize, String)> = found
            .iter()
            .map(|d| (cp(d.start), cp(d.end), d.kind.presidio_name().to_owned()))
            .collect();
        pred_lines.push(json!({"spans": spans.iter().map(|(s, e, t)| json!({"start": s, "end": e, "type": t})).collect::<Vec<_>>()}));
        let gold: Vec<(usize, usize, String)> = row
            .get("spans")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| {
                        Some((
                            s.get("start")?.as_u64()? as usize,
                            s.get("end")?.as_u64()? as usize,
                            norm(s.get("type")?.as_str()?).to_owned(),
                        ))
                    })
                    .filter(|(_, _, t)| supported.contains(t.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        let mut used = vec![false; gold.len()];
        for (s, e, t) in &spans {
            let t = norm(t);
            let hit = gold
                .iter()
                .enumerate()
                .position(|(i, (gs, ge, gt))| !used[i] && gt == t && s < ge && gs < e);
            match hit {
                Some(i) => {
                    used[i] = true;
                    *tp.entry(t.to_owned()).or_default() += 1;
                }
                None => *fp.entry(t.to_owned()).or_default() += 1,
            }
        }
        for (i, (_, _, t)) in gold.iter().enumerate() {
            if !used[i] {
                *fn_.entry(t.clone()).or_default() += 1;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if let Some(p) = predictions {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        );
        for l in &pred_lines {
            writeln!(f, "{l}")?;
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "PII on {} ({} texts), supported types only, overlap match:",
        set.display(),
        rows.len()
    )?;
    writeln!(
        out,
        "{:<16} {:>6} {:>6} {:>6}   tp/fp/fn",
        "type", "P", "R", "F1"
    )?;
    let types: BTreeSet<&String> = tp.keys().chain(fp.keys()).chain(fn_.keys()).collect();
    let prf = |t: usize, f: usize, n: usize| {
        let p = if t + f > 0 {
            t as f64 / (t + f) as f64
        } else {
            0.0
        };
        let r = if t + n > 0 {
            t as f64 / (t + n) as f64
        } else {
            0.0
        };
        let f1 = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        (p, r, f1)
    };
    for t in types {
        let (a, b, c) = (
            tp.get(t).copied().unwrap_or(0),
            fp.get(t).copied().unwrap_or(0),
            fn_.get(t).copied().unwrap_or(0),
        );
        let (p, r, f1) = prf(a, b, c);
        writeln!(out, "{t:<16} {p:>6.3} {r:>6.3} {f1:>6.3}   {a}/{b}/{c}")?;
    }
    let (a, b, c) = (tp.values().sum(), fp.values().sum(), fn_.values().sum());
    let (p, r, f1) = prf(a, b, c);
    writeln!(
        out,
        "{:<16} {p:>6.3} {r:>6.3} {f1:>6.3}   {a}/{b}/{c}",
        "micro"
    )?;
    writeln!(
        out,
        "speed: {:.0} texts/s, {:.1} MB/s (one core)",
        rows.len() as f64 / secs,
        bytes as f64 / secs / 1e6
    )?;
    Ok(Outcome::Ok)
}
