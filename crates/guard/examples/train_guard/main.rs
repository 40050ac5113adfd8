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
//! `slabs_test.jsonl`. Content: one head per category, trained on the 70% of
//! `content/openai_moderation.jsonl` whose text hash falls in the training split, thresholds
//! chosen by 5-fold cross-validation inside that split, reported on the other 30% and on
//! `surge_toxicity.jsonl` (never trained on).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "offline tool"
)]

mod augment;
mod logreg;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use augment::{augment_chat, augment_content, augment_injection};
use logreg::{
    Row, TrainConfig, featurize, knob, metrics, print_metrics, read_jsonl, train, write_predictions,
};

use tollgate_guard::content::{self, ContentClassifier};
use tollgate_guard::injection::SHARED_FAMILIES;
use tollgate_guard::injection::model::LinearModel;
use tollgate_guard::injection::{InjectionDetector, Source};

const INJECTION_BUCKETS_LOG2_DEFAULT: u8 = tollgate_guard::injection::SHARED_BUCKETS_LOG2;
const INJECTION_WINDOW: usize = 64;
const CONTENT_WINDOW: usize = 256;
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
    let ys: Vec<Vec<f32>> = texts.iter().map(|(_, l)| vec![f32::from(*l)]).collect();
    let cfg = TrainConfig {
        bits: INJECTION_BUCKETS_LOG2,
        heads: 1,
        epochs: knob("TG_EPOCHS", 12.0) as usize,
        lr: knob("TG_LR", 0.05),
        l2: knob("TG_L2", 1e-5),
        min_count: knob("TG_IMINN", INJECTION_MIN_COUNT) as usize,
    };
    let (w, b) = train(&cfg, &xs, &ys, &[1.0]);
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

// ---------------------------------------------------------------------------------------
// Content

fn in_train_split(text: &str) -> bool {
    // FNV-1a of the text: a deterministic 70/30 split that does not depend on file order.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h % 10 < 7
}

fn content_targets(r: &Row) -> Vec<f32> {
    let c = |k: &str| r.cats.get(k).copied().unwrap_or(0);
    let any = |ks: &[&str]| f32::from(u8::from(ks.iter().any(|k| c(k) == 1)));
    // Heads in `content::LEARNED_HEADS` order.
    vec![
        f32::from(r.label),
        any(&["H", "H2"]),
        any(&["HR"]),
        any(&["SH"]),
        any(&["S"]),
        any(&["S3"]),
        any(&["V", "V2"]),
    ]
}

fn content(eval: &Path, out_dir: &Path, pred_dir: Option<&Path>) {
    let rows = read_jsonl(&eval.join("content/openai_moderation.jsonl"));
    let surge = read_jsonl(&eval.join("content/surge_toxicity.jsonl"));
    let (train_rows, held): (Vec<&Row>, Vec<&Row>) =
        rows.iter().partition(|r| in_train_split(&r.text));
    println!(
        "content: {} training rows, {} held out",
        train_rows.len(),
        held.len()
    );
    let bits = content::BUCKETS_LOG2;
    let heads = content::LEARNED_HEADS.len();
    let families = knob("TG_CFAM", f32::from(SHARED_FAMILIES)) as u8;
    let lexicon_features = knob("TG_LEXFEAT", 1.0) > 0.5;
    let boost_scale = knob("TG_BOOST", 1.0);
    let aug_rows: Vec<Row> = augment_content()
        .into_iter()
        .map(|text| Row {
            text,
            label: 0,
            cats: HashMap::new(),
        })
        .collect();
    println!("content: {} template rows (safe)", aug_rows.len());
    let n_real = train_rows.len();
    let train_rows: Vec<&Row> = train_rows.into_iter().chain(aug_rows.iter()).collect();
    let xs: Vec<Vec<u32>> = train_rows
        .iter()
        .map(|r| featurize(&r.text, bits, families, lexicon_features))
        .collect();
    let min_count = knob("TG_CMINN", 100.0);
    let mut extra_params = vec![
        if lexicon_features { 1.0 } else { 0.0 },
        boost_scale,
        min_count,
    ];
    let ys: Vec<Vec<f32>> = train_rows.iter().map(|r| content_targets(r)).collect();
    let pos_weight: Vec<f32> = (0..heads)
        .map(|h| {
            let pos = ys.iter().filter(|y| y[h] > 0.5).count().max(1) as f32;
            ((ys.len() as f32 - pos) / pos).sqrt().clamp(1.0, 4.0)
        })
        .collect();
    let cfg = TrainConfig {
        bits,
        heads,
        epochs: knob("TG_CEPOCHS", 15.0) as usize,
        lr: knob("TG_CLR", 0.2),
        l2: knob("TG_CL2", 1e-3),
        min_count: knob("TG_CMINN", 100.0) as usize,
    };
    // 5-fold out-of-fold logits choose each head's offset (best F1), so thresholds are not
    // tuned on the held-out part.
    let mut oof: Vec<Vec<f32>> = vec![vec![0.0; heads]; xs.len()];
    // Whether a lexicon floor alone flags the text: the harmful threshold is chosen for the
    // final score, which includes those floors.
    let mut floor_flag = vec![false; xs.len()];
    for fold in 0..5 {
        let idx_train: Vec<usize> = (0..xs.len()).filter(|i| i % 5 != fold).collect();
        let fx: Vec<Vec<u32>> = idx_train.iter().map(|&i| xs[i].clone()).collect();
        let fy: Vec<Vec<f32>> = idx_train.iter().map(|&i| ys[i].clone()).collect();
        let (w, b) = train(&cfg, &fx, &fy, &pos_weight);
        let mut params = vec![0.0; heads];
        params.extend_from_slice(&extra_params);
        let m =
            LinearModel::from_floats(bits, heads, CONTENT_WINDOW, families, b, &w, params).unwrap();
        let clf = ContentClassifier::from_model(m).unwrap();
        for i in (0..xs.len()).filter(|i| i % 5 == fold) {
            let hits = content::lexicon::scan(&tollgate_guard::normalize::normalize_text(
                &train_rows[i].text,
            ));
            floor_flag[i] = content::Category::ALL
                .iter()
                .any(|&c| hits.for_category(c).1 >= 0.5);
            oof[i] = clf.raw_logits(&train_rows[i].text);
            for (h, l) in oof[i].iter_mut().enumerate() {
                *l += boost_scale
                    * content::LEARNED_HEADS[h]
                        .category
                        .map_or_else(|| hits.total_boost(), |c| hits.for_category(c).0);
            }
        }
    }
    let mut offsets = Vec::new();
    for h in 0..heads {
        // Thresholds are chosen on the real rows only: the template rows are easy negatives
        // that would pull every threshold down.
        let oof = &oof[..n_real];
        let ys = &ys[..n_real];
        let floor_flag = &floor_flag[..n_real];
        let mut cands: Vec<f32> = oof.iter().map(|l| l[h]).collect();
        cands.sort_by(f32::total_cmp);
        cands.dedup();
        let mut best = (0.0f64, 0.0f32);
        for &t in &cands {
            let scores: Vec<f32> = oof
                .iter()
                .zip(floor_flag)
                .map(|(l, &f)| if l[h] >= t || (h == 0 && f) { 1.0 } else { 0.0 })
                .collect();
            let labels: Vec<u8> = ys.iter().map(|y| u8::from(y[h] > 0.5)).collect();
            let f1 = metrics(&scores, &labels, 0.5).f1;
            if f1 > best.0 {
                best = (f1, t);
            }
        }
        println!(
            "content head {} ({}): CV F1 {:.3} at logit {:.3}",
            h,
            content::LEARNED_HEADS[h].as_str(),
            best.0,
            best.1
        );
        offsets.push(best.1);
    }
    let (w, b) = train(&cfg, &xs, &ys, &pos_weight);
    let mut params = offsets;
    params.append(&mut extra_params);
    let model =
        LinearModel::from_floats(bits, heads, CONTENT_WINDOW, families, b, &w, params).unwrap();
    let bytes = model.to_bytes();
    std::fs::create_dir_all(out_dir).unwrap();
    std::fs::write(out_dir.join("content.tgm"), &bytes).unwrap();
    let clf = ContentClassifier::from_weights(&bytes).unwrap();
    let eval_set = |name: &str, rows: &[&Row]| {
        let scores: Vec<f32> = rows.iter().map(|r| clf.classify(&r.text).harmful).collect();
        let labels: Vec<u8> = rows.iter().map(|r| r.label).collect();
        print_metrics(
            &format!("content {name}"),
            &metrics(&scores, &labels, 0.5),
            0.5,
        );
        write_predictions(pred_dir, &format!("{name}.pred.jsonl"), &scores);
        scores
    };
    // Variants of the overall score, for the record.
    let variants = |name: &str, rows: &[&Row]| {
        let labels: Vec<u8> = rows.iter().map(|r| r.label).collect();
        let mut head = Vec::new();
        let mut boosted = Vec::new();
        for r in rows {
            let l = clf.raw_logits(&r.text);
            let hits = content::lexicon::scan(&tollgate_guard::normalize::normalize_text(&r.text));
            let off = clf.offsets()[0];
            head.push(tollgate_guard::injection::model::sigmoid(l[0] - off));
            boosted.push(tollgate_guard::injection::model::sigmoid(
                l[0] - off + boost_scale * hits.total_boost(),
            ));
        }
        print_metrics(
            &format!("  {name} harmful head only"),
            &metrics(&head, &labels, 0.5),
            0.5,
        );
        print_metrics(
            &format!("  {name} harmful head + lexicon"),
            &metrics(&boosted, &labels, 0.5),
            0.5,
        );
    };
    variants("heldout30", &held);
    variants("surge", &surge.iter().collect::<Vec<_>>());
    let look_alikes = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/content/testdata/benign.txt"),
    )
    .unwrap_or_default();
    let mut shown = 0;
    let mut total = 0;
    for line in look_alikes
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        total += 1;
        let v = clf.classify(line);
        let f = v.flagged(&content::Thresholds::default());
        if !f.is_empty() {
            shown += 1;
            println!("  FP {:.3} {:?} {line}", v.harmful, f);
        }
    }
    println!("handwritten content benign look-alikes: {shown}/{total} flagged");
    eval_set("openai_moderation_train70", &train_rows);
    eval_set("openai_moderation_heldout30", &held);
    let surge_refs: Vec<&Row> = surge.iter().collect();
    eval_set("surge_toxicity", &surge_refs);
    if let Some(dir) = pred_dir {
        // Gold files for the held-out split so that eval_binary.py can score it.
        let mut gold = String::new();
        for r in &held {
            writeln!(
                gold,
                "{}",
                serde_json::json!({"text": r.text, "label": r.label})
            )
            .unwrap();
        }
        std::fs::write(dir.join("openai_moderation_heldout30.gold.jsonl"), gold).unwrap();
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
        content(&eval, &out, preds.as_deref());
    }
}
