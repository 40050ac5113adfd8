//! `tollgate guard`: run the detectors on text from stdin (`check`) and measure them on
//! labelled sets (`eval`) in the shared scorers' formats.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tollgate_guard::content::{Category, ContentClassifier, Thresholds};
use tollgate_guard::injection::{InjectionDetector, Source};
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
    /// Prompt injection (binary, score 0..1).
    Injection,
    /// Harmful content (binary, score 0..1: the `harmful` head).
    Content,
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
            EvalKind::Injection | EvalKind::Content => {
                eval_binary(kind, &set, predictions.as_deref())
            }
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
    let injection = InjectionDetector::new().context("loading the injection model")?;
    let content = ContentClassifier::new().context("loading the content model")?;
    let inj_user = injection.score(&text, Source::User);
    let inj_untrusted = injection.score(&text, Source::Untrusted);
    let verdict = content.classify(&text);
    let flagged_content = verdict.flagged(&Thresholds::default());
    let flagged = !pii.is_empty()
        || !secrets.is_empty()
        || inj_user.is_injection()
        || !flagged_content.is_empty();
    let mut out = std::io::stdout().lock();
    if json {
        let v = json!({
            "pii": pii.iter().map(|d| json!({"type": d.kind.label(), "start": d.start, "end": d.end, "score": d.score})).collect::<Vec<_>>(),
            "secrets": secrets.iter().map(|m| json!({"rule": m.rule, "start": m.start, "end": m.end})).collect::<Vec<_>>(),
            "injection": {
                "score": inj_user.score,
                "blocked_as_user_text": inj_user.is_injection(),
                "blocked_as_tool_output": inj_untrusted.is_injection(),
                "rules": inj_user.rules,
            },
            "content": {
                "harmful": verdict.harmful,
                "scores": Category::ALL.iter().map(|c| (c.as_str().to_owned(), json!(verdict.score(*c)))).collect::<serde_json::Map<_, _>>(),
                "flagged": flagged_content.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            },
        });
        writeln!(out, "{v}")?;
        return Ok(if flagged {
            Outcome::Findings
        } else {
            Outcome::Ok
        });
    }
    if !flagged {
        writeln!(
            out,
            "PASS: no PII, credentials, prompt injection or harmful content found"
        )?;
        writeln!(
            out,
            "  injection score {:.2} (user threshold {:.2}); content harmful {:.2}",
            inj_user.score, inj_user.threshold, verdict.harmful
        )?;
        return Ok(Outcome::Ok);
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &pii {
        *counts.entry(d.kind.label()).or_default() += 1;
    }
    for m in &secrets {
        *counts.entry(m.rule).or_default() += 1;
    }
    if inj_user.is_injection() {
        counts.insert("INJECTION", 1);
    }
    for c in &flagged_content {
        counts.insert(c.as_str(), 1);
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
    let word = |b: bool| if b { "BLOCK" } else { "pass" };
    let rules = if inj_user.rules.is_empty() {
        String::new()
    } else {
        format!(" (rules: {})", inj_user.rules.join(", "))
    };
    writeln!(
        out,
        "  INJECTION  score {:.2}: {} as user text, {} as tool output{rules}",
        inj_user.score,
        word(inj_user.is_injection()),
        word(inj_untrusted.is_injection())
    )?;
    for c in &flagged_content {
        writeln!(out, "  CONTENT    {} {:.2}", c.as_str(), verdict.score(*c))?;
    }
    writeln!(
        out,
        "Values are never printed. Route policies decide what the gateway does with each finding."
    )?;
    Ok(Outcome::Findings)
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

/// Score a binary detector on a `{"text","label"}` set: AUC, TPR at 1% FPR and P/R/F1/FPR at
/// the detector's default threshold, computed as `shared/eval/eval_binary.py` does.
fn eval_binary(
    kind: EvalKind,
    set: &std::path::Path,
    predictions: Option<&std::path::Path>,
) -> Result<Outcome> {
    let rows = read_set(set)?;
    let injection = InjectionDetector::new().context("loading the injection model")?;
    let content = ContentClassifier::new().context("loading the content model")?;
    let started = std::time::Instant::now();
    let mut scored: Vec<(f64, bool)> = Vec::with_capacity(rows.len());
    let mut lines = Vec::with_capacity(rows.len());
    for row in &rows {
        let text = row.get("text").and_then(Value::as_str).unwrap_or_default();
        let label = row.get("label").and_then(Value::as_i64).unwrap_or(0) == 1;
        let t0 = std::time::Instant::now();
        let score = match kind {
            EvalKind::Injection => f64::from(injection.score(text, Source::User).score),
            _ => f64::from(content.classify(text).harmful),
        };
        lines.push(json!({"score": score, "ms": t0.elapsed().as_secs_f64() * 1000.0}));
        scored.push((score, label));
    }
    let secs = started.elapsed().as_secs_f64();
    if let Some(p) = predictions {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        );
        for l in &lines {
            writeln!(f, "{l}")?;
        }
    }
    let pos = scored.iter().filter(|s| s.1).count();
    let neg = scored.len() - pos;
    // AUC by the rank-sum (Mann-Whitney) statistic, ties averaged.
    let mut order: Vec<usize> = (0..scored.len()).collect();
    order.sort_by(|&a, &b| scored[a].0.total_cmp(&scored[b].0));
    let mut ranks = vec![0.0; scored.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scored[order[j + 1]].0 == scored[order[i]].0 {
            j += 1;
        }
        for &o in &order[i..=j] {
            ranks[o] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    let rank_sum: f64 = (0..scored.len())
        .filter(|&k| scored[k].1)
        .map(|k| ranks[k])
        .sum();
    let auc = if pos > 0 && neg > 0 {
        (rank_sum - (pos * (pos + 1)) as f64 / 2.0) / (pos * neg) as f64
    } else {
        f64::NAN
    };
    let mut desc = scored.clone();
    desc.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp, mut best) = (0usize, 0usize, 0.0f64);
    let mut k = 0;
    while k < desc.len() {
        let t = desc[k].0;
        while k < desc.len() && desc[k].0 == t {
            if desc[k].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            k += 1;
        }
        if neg > 0 && pos > 0 && fp as f64 / neg as f64 <= 0.01 {
            best = best.max(tp as f64 / pos as f64);
        }
    }
    let threshold = match kind {
        EvalKind::Injection => f64::from(Source::User.default_threshold()),
        _ => 0.5,
    };
    let tp = scored.iter().filter(|s| s.1 && s.0 >= threshold).count();
    let fp = scored.iter().filter(|s| !s.1 && s.0 >= threshold).count();
    let p = if tp + fp > 0 {
        tp as f64 / (tp + fp) as f64
    } else {
        0.0
    };
    let r = if pos > 0 { tp as f64 / pos as f64 } else { 0.0 };
    let f1 = if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    };
    let fpr = if neg > 0 { fp as f64 / neg as f64 } else { 0.0 };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{kind:?} on {} ({} texts: {pos} positive, {neg} negative)",
        set.display(),
        rows.len()
    )?;
    writeln!(out, "AUC {auc:.4}   TPR at 1% FPR {best:.4}")?;
    writeln!(
        out,
        "at threshold {threshold}: precision {p:.3} recall {r:.3} F1 {f1:.3} FPR {fpr:.4}"
    )?;
    writeln!(
        out,
        "speed: {:.0} texts/s (one core)",
        rows.len() as f64 / secs
    )?;
    Ok(Outcome::Ok)
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
