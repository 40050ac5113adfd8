//! Trains the injection and content models embedded in `tollgate-guard`, calibrates them and
//! prints their metrics on held-out data.
//!
//! ```text
//! cargo run --release -p tollgate-guard --example train_guard -- \
//!     [--eval ../shared/eval] [--out crates/guard/models] [--predictions DIR] [--only injection|content]
//! cargo run --release -p tollgate-guard --example train_guard -- --score FILE [--out DIR]
//! ```
//!
//! `--score` prints the injection score of each line of FILE with the model in `--out`.
//!
//! ```text
//! ```
//!
//! Deterministic: a fixed seed ([`logreg::SEED`]) drives the only randomness (example order), and the
//! feature hash is fixed, so the same data gives byte-identical weight files.
//!
//! Injection: logistic regression over hashed n-grams ([`tollgate_guard::injection::features`])
//! trained on `injection/slabs_train.jsonl` plus template-generated instruction-style examples
//! (see [`augment_injection`]: benign imperatives like "ignore the typos" and attacks that
//! differ from them only in their object), calibrated on `slabs_validation.jsonl`, reported on
//! `slabs_test.jsonl`. Content ([`content`]): one head per category, trained on the 70% of
//! `content/openai_moderation.jsonl` whose text hash falls in the training split; the
//! harassment head also on the same 70% split of `content/surge_toxicity.jsonl`; thresholds
//! chosen by 5-fold cross-validation inside those splits, reported on the other 30% of each.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "offline tool"
)]

mod augment;
mod content;
mod logreg;

use std::path::{Path, PathBuf};

use augment::{augment_chat, augment_injection};
use logreg::{
    RowInfo, TrainConfig, featurize, knob, metrics, print_metrics, read_jsonl, train,
    write_predictions,
};

use tollgate_guard::content::ContentClassifier;
use tollgate_guard::injection::SHARED_FAMILIES;
use tollgate_guard::injection::model::LinearModel;
use tollgate_guard::injection::{InjectionDetector, Source};

const INJECTION_BUCKETS_LOG2_DEFAULT: u8 = tollgate_guard::injection::SHARED_BUCKETS_LOG2;
const INJECTION_WINDOW: usize = 64;
/// Injection windows with fewer features are scored as if they had this many (see
/// `LinearModel::with_min_count`): about five words. Shrinks the logit of a very short text
/// toward the bias, the prior, instead of letting its two or three features decide alone.
const INJECTION_MIN_COUNT: f32 = 30.0;
/// Target false-positive rate on validation for the user threshold (0.5 after calibration).
const INJECTION_TARGET_FPR: f64 = 0.003;

fn injection(eval: &Path, out_dir: &Path, pred_dir: Option<&Path>) {
    #[expect(non_snake_case, reason = "reads like the constant it overrides")]
    let INJECTION_BUCKETS_LOG2 = knob("TG_IBITS", f32::from(INJECTION_BUCKETS_LOG2_DEFAULT)) as u8;
    let train_rows = read_jsonl(&eval.join("injection/slabs_train.jsonl"));
    let val = read_jsonl(&eval.join("injection/slabs_validation.jsonl"));
    let test = read_jsonl(&eval.join("injection/slabs_test.jsonl"));
    let mut texts: Vec<(String, u8)> = train_rows
        .iter()
        .map(|r| (r.text.clone(), r.label))
        .collect();
    let aug = augment_injection();
    // Chat rows equal to a line of the hand-written chat test list are dropped, so that the
    // list stays a test of generalisation.
    let held: Vec<String> = handwritten_lines("chat.txt")
        .iter()
        .map(|l| comparable(l))
        .collect();
    let chat: Vec<(String, u8)> = augment_chat()
        .into_iter()
        .filter(|(t, _)| !held.contains(&comparable(t)))
        .collect();
    println!(
        "injection: {} training rows + {} template rows + {} chat template rows ({} dropped as test lines)",
        texts.len(),
        aug.len(),
        chat.len(),
        augment_chat().len() - chat.len(),
    );
    let chat_repeat = knob("TG_CHATW", 3.0) as usize;
    for _ in 0..chat_repeat {
        texts.extend(chat.iter().cloned());
    }
    // The template rows stand for a whole style that the training set lacks; repeating them
    // gives that style the weight of a real slice of traffic.
    let repeat = knob("TG_AUGW", 3.0) as usize;
    for _ in 0..repeat.max(1) {
        texts.extend(aug.iter().cloned());
    }
    let families = knob("TG_IFAM", f32::from(SHARED_FAMILIES)) as u8;
    let xs: Vec<Vec<u32>> = texts
        .iter()
        .map(|(t, _)| featurize(t, INJECTION_BUCKETS_LOG2, families, false))
        .collect();
    let ys: Vec<Vec<Option<f32>>> = texts
        .iter()
        .map(|(_, l)| vec![Some(f32::from(*l))])
        .collect();
    let cfg = TrainConfig {
        bits: INJECTION_BUCKETS_LOG2,
        heads: 1,
        epochs: knob("TG_EPOCHS", 12.0) as usize,
        lr: knob("TG_LR", 0.05),
        l2: knob("TG_L2", 1e-5),
        min_count: knob("TG_IMINN", INJECTION_MIN_COUNT) as usize,
    };
    let (w, b) = train(&cfg, &xs, &ys, &vec![RowInfo::PLAIN; xs.len()], &[1.0]);
    let model = LinearModel::from_floats(
        INJECTION_BUCKETS_LOG2,
        1,
        INJECTION_WINDOW,
        families,
        b.clone(),
        &w,
        vec![0.0, 1.0, knob("TG_IMINN", INJECTION_MIN_COUNT)],
    )
    .unwrap();
    let raw = InjectionDetector::from_model(model.clone()).unwrap();

    // Calibrate: the user threshold (0.5) sits where validation FPR reaches the target.
    let val_b: Vec<_> = val
        .iter()
        .map(|r| raw.breakdown(&r.text, Source::User))
        .collect();
    let mut neg_logits: Vec<f32> = val_b
        .iter()
        .zip(&val)
        .filter(|(b, r)| r.label == 0 && b.floor < 0.5)
        .map(|(b, _)| b.logit)
        .collect();
    neg_logits.sort_by(|a, b| b.total_cmp(a));
    let negatives = val.iter().filter(|r| r.label == 0).count();
    let floor_fp = val_b
        .iter()
        .zip(&val)
        .filter(|(b, r)| r.label == 0 && b.floor >= 0.5)
        .count();
    let target = f64::from(knob("TG_TFPR", INJECTION_TARGET_FPR as f32));
    let allowed = ((target * negatives as f64) as usize).saturating_sub(floor_fp);
    let offset = neg_logits.get(allowed).copied().unwrap_or(0.0) + 1e-3;
    println!(
        "injection: calibration offset {offset:.4} (rule floors alone flag {floor_fp} validation negatives)"
    );
    let final_model = LinearModel::from_floats(
        INJECTION_BUCKETS_LOG2,
        1,
        INJECTION_WINDOW,
        families,
        b,
        &w,
        vec![offset, 1.0, knob("TG_IMINN", INJECTION_MIN_COUNT)],
    )
    .unwrap();
    let bytes = final_model.to_bytes();
    std::fs::create_dir_all(out_dir).unwrap();
    std::fs::write(out_dir.join("injection.tgm"), &bytes).unwrap();
    let det = InjectionDetector::from_weights(&bytes).unwrap();

    for (name, rows) in [("slabs_validation", &val), ("slabs_test", &test)] {
        let scores: Vec<f32> = rows
            .iter()
            .map(|r| det.score(&r.text, Source::User).score)
            .collect();
        let labels: Vec<u8> = rows.iter().map(|r| r.label).collect();
        print_metrics(
            &format!("injection {name} (user)"),
            &metrics(&scores, &labels, 0.5),
            0.5,
        );
        let model_only: Vec<f32> = rows
            .iter()
            .map(|r| {
                tollgate_guard::injection::model::sigmoid(
                    det.breakdown(&r.text, Source::User).model_logit - offset,
                )
            })
            .collect();
        print_metrics(
            &format!("injection {name} (model only)"),
            &metrics(&model_only, &labels, 0.5),
            0.5,
        );
        let untrusted: Vec<f32> = rows
            .iter()
            .map(|r| det.score(&r.text, Source::Untrusted).score)
            .collect();
        print_metrics(
            &format!("injection {name} (untrusted)"),
            &metrics(&untrusted, &labels, 0.3),
            0.3,
        );
        write_predictions(pred_dir, &format!("{name}.pred.jsonl"), &scores);
    }
    handwritten(&det);
}

/// The lines of a hand-written list in `src/injection/testdata/` (`\\n` is a line break).
fn handwritten_lines(file: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/injection/testdata")
        .join(file);
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.replace("\\n", "\n"))
        .collect()
}

/// A text with case, punctuation and spacing removed, to compare template rows with the
/// hand-written test lists.
fn comparable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn handwritten(det: &InjectionDetector) {
    for (file, label) in [("benign.txt", 0u8), ("chat.txt", 0u8), ("attacks.txt", 1u8)] {
        let lines = handwritten_lines(file);
        let mut flagged = Vec::new();
        let mut untrusted = 0;
        for l in &lines {
            untrusted += usize::from(det.score(l, Source::Untrusted).is_injection());
            let v = det.score(l, Source::User);
            if v.is_injection() {
                flagged.push((v.score, l.clone()));
            }
            if (label == 0) == v.is_injection() {
                println!(
                    "  {} {:.3} {:?} {l}",
                    if label == 0 { "FP" } else { "FN" },
                    v.score,
                    v.rules
                );
            }
        }
        let highest = lines
            .iter()
            .map(|l| (det.score(l, Source::User).score, l))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        println!(
            "handwritten {file}: {}/{} flagged at the user threshold, {untrusted}/{} as untrusted content; highest user score {highest:.3?}",
            flagged.len(),
            lines.len(),
            lines.len()
        );
    }
}

/// Score the benchmark's 4 KB prompt `n` times with both detectors through one
/// `PreparedText`, for instruction counts that a shared machine cannot disturb:
/// `valgrind --tool=callgrind target/release/examples/train_guard --profile 200`.
fn profile(n: usize) {
    let paragraph = "Our team is planning the migration of the billing service to the new cluster next \
        quarter. Please review the rollout plan below and point out any risks we may have missed, \
        especially around database schema changes, feature flags and the order in which the \
        downstream consumers should be switched over. We also need a short summary for the \
        leadership update on Friday, written in plain language without jargon. ";
    let mut text = String::new();
    while text.len() < 4096 {
        text.push_str(paragraph);
    }
    text.truncate(4096);
    let injection = InjectionDetector::new().unwrap();
    let content = ContentClassifier::new().unwrap();
    let mut total = 0.0f32;
    // One untimed call compiles the lazily built rule sets.
    for _ in 0..=n {
        let prepared = tollgate_guard::injection::PreparedText::new(std::hint::black_box(&text));
        total += injection.score_prepared(&prepared, Source::User).score;
        total += content.classify_prepared(&prepared).harmful;
    }
    println!("{total}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let eval = arg("--eval").map_or_else(|| root.join("../../../shared/eval"), PathBuf::from);
    let out = arg("--out").map_or_else(|| root.join("models"), PathBuf::from);
    let preds = arg("--predictions").map(PathBuf::from);
    let only = arg("--only");
    if let Some(n) = arg("--profile") {
        profile(n.parse().unwrap());
        return;
    }
    if let Some(file) = arg("--score") {
        // Score each line of FILE with the injection model in --out (for looking at texts).
        let det =
            InjectionDetector::from_weights(&std::fs::read(out.join("injection.tgm")).unwrap())
                .unwrap();
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let v = det.score(line, Source::User);
            println!("{:.3} {:?} {line}", v.score, v.rules);
        }
        return;
    }
    if only.as_deref() != Some("content") {
        injection(&eval, &out, preds.as_deref());
    }
    if only.as_deref() != Some("injection") {
        content::content(&eval, &out, preds.as_deref());
    }
}
