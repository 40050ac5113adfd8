//! Training of the content model: the data sets, which heads each one teaches, thresholds by
//! cross-validation, and the report on the held-out parts.
//!
//! Two fits. The *base* fit is the moderation model as it was before the surge set: the 70%
//! training split of `content/openai_moderation.jsonl` plus the safe templates of
//! [`augment_content`]; every head but harassment is taken from it, byte for byte. The *full*
//! fit adds the 70% training split of `content/surge_toxicity.jsonl` and safe small talk
//! ([`chat_small_talk`]); only its harassment head is kept. Heads never share a weight in
//! [`train`], so keeping one head of a fit is the same as training that head alone. The kept
//! harassment head stands on its own at run time (`content::PARAM_OWN_HEADS`): it is not
//! capped by the harmful head, which never saw a surge row.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::augment::{augment_content, chat_small_talk};
use crate::logreg::{
    Row, RowInfo, TrainConfig, featurize, knob, metrics, print_metrics, read_jsonl, train,
    write_predictions,
};
use crate::{comparable, handwritten_lines};

use tollgate_guard::content::{self, ContentClassifier};
use tollgate_guard::injection::SHARED_FAMILIES;
use tollgate_guard::injection::model::LinearModel;

const CONTENT_WINDOW: usize = 256;
/// Index of the harassment head in `content::LEARNED_HEADS`.
const HARASSMENT: usize = 2;

fn in_train_split(text: &str) -> bool {
    // FNV-1a of the text: a deterministic 70/30 split that does not depend on file order.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h % 10 < 7
}

/// Where a content training row comes from, which decides the heads its label may teach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// OpenAI moderation release: an overall label and every category.
    Moderation,
    /// Surge AI toxicity: one binary "toxic" label (insults, rude and profane comments,
    /// mostly about people in public life).
    Surge,
    /// The safe template rows of [`augment_content`].
    Template,
    /// The safe small-talk rows of [`chat_small_talk`].
    SmallTalk,
}

/// Targets per head (`content::LEARNED_HEADS` order); `None` where the row says nothing
/// about a head.
fn targets(r: &Row, origin: Origin) -> Vec<Option<f32>> {
    let c = |k: &str| r.cats.get(k).copied().unwrap_or(0);
    let any = |ks: &[&str]| Some(f32::from(u8::from(ks.iter().any(|k| c(k) == 1))));
    let label = Some(f32::from(r.label));
    match origin {
        Origin::Moderation | Origin::Template | Origin::SmallTalk => vec![
            label,
            any(&["H", "H2"]),
            any(&["HR"]),
            any(&["SH"]),
            any(&["S"]),
            any(&["S3"]),
            any(&["V", "V2"]),
        ],
        // Surge's "toxic" is MG-2's harassment (insults, bullying and threats aimed at a
        // person), which is what its positives are: insults of a named person, sometimes
        // crude. It teaches only that head. It does not say which toxic comments attack a
        // group (hate), wish harm (violence) or are sexual: a 1 would teach the hate head
        // that any insult of a politician is hate, a 0 would unteach hate on the toxic rows
        // that are. Nor is its bar the moderation set's "harmful" (surge calls rude comments
        // toxic that the moderation set labels safe), and teaching the harmful head both bars
        // cost held-out moderation F1 in every trial. The non-toxic rows are masked the same
        // way, so that the other heads keep the moderation set's base rates.
        Origin::Surge => {
            let mut t = vec![None; content::LEARNED_HEADS.len()];
            t[HARASSMENT] = label;
            t
        }
    }
}

/// What cross-validation and training give on one set of rows.
struct Fit {
    /// Out-of-fold logits per row and head, with the lexicon boosts added.
    oof: Vec<Vec<f32>>,
    /// Whether a lexicon floor alone flags the row.
    floor_flag: Vec<bool>,
    /// Weights (bucket-major) and biases trained on every row.
    w: Vec<f32>,
    b: Vec<f32>,
}

/// Model shape and hyper-parameters shared by both fits.
struct Settings {
    bits: u8,
    heads: usize,
    families: u8,
    lexicon_features: bool,
    boost_scale: f32,
    /// `[lexicon features, boost scale, minimum count]`: the parameters after the offsets.
    extra_params: Vec<f32>,
}

impl Settings {
    /// A classifier with zero offsets, for raw logits.
    fn classifier(&self, w: &[f32], b: Vec<f32>) -> ContentClassifier {
        let mut params = vec![0.0; self.heads];
        params.extend_from_slice(&self.extra_params);
        let m = LinearModel::from_floats(
            self.bits,
            self.heads,
            CONTENT_WINDOW,
            self.families,
            b,
            w,
            params,
        )
        .unwrap();
        ContentClassifier::from_model(m).unwrap()
    }

    /// Raw logits of `text` per head with the lexicon boosts added (what a head's offset is
    /// compared with), and whether a lexicon floor alone flags it.
    fn boosted(&self, clf: &ContentClassifier, text: &str) -> (Vec<f32>, bool) {
        let hits = content::lexicon::scan(&tollgate_guard::normalize::normalize_text(text));
        let floor = content::Category::ALL
            .iter()
            .any(|&c| hits.for_category(c).1 >= 0.5);
        let mut l = clf.raw_logits(text);
        for (h, x) in l.iter_mut().enumerate() {
            *x += self.boost_scale
                * content::LEARNED_HEADS[h]
                    .category
                    .map_or_else(|| hits.total_boost(), |c| hits.for_category(c).0);
        }
        (l, floor)
    }
}

/// 5-fold out-of-fold logits, then a model trained on every row.
fn cross_fit(s: &Settings, cfg: &TrainConfig, rows: &[(&Row, Origin)], info: &[RowInfo]) -> Fit {
    let xs: Vec<Vec<u32>> = rows
        .iter()
        .map(|(r, _)| featurize(&r.text, s.bits, s.families, s.lexicon_features))
        .collect();
    let ys: Vec<Vec<Option<f32>>> = rows.iter().map(|(r, o)| targets(r, *o)).collect();
    // Class balance per head, over the rows that supervise it.
    let pos_weight: Vec<f32> = (0..s.heads)
        .map(|h| {
            let labelled = ys.iter().filter(|y| y[h].is_some()).count() as f32;
            let pos = ys
                .iter()
                .filter(|y| y[h].is_some_and(|v| v > 0.5))
                .count()
                .max(1) as f32;
            ((labelled - pos) / pos).sqrt().clamp(1.0, 4.0)
        })
        .collect();
    let mut oof: Vec<Vec<f32>> = vec![vec![0.0; s.heads]; xs.len()];
    let mut floor_flag = vec![false; xs.len()];
    for fold in 0..5 {
        let idx: Vec<usize> = (0..xs.len()).filter(|i| i % 5 != fold).collect();
        let fx: Vec<Vec<u32>> = idx.iter().map(|&i| xs[i].clone()).collect();
        let fy: Vec<Vec<Option<f32>>> = idx.iter().map(|&i| ys[i].clone()).collect();
        let fi: Vec<RowInfo> = idx.iter().map(|&i| info[i]).collect();
        let (w, b) = train(cfg, &fx, &fy, &fi, &pos_weight);
        let clf = s.classifier(&w, b);
        for i in (0..xs.len()).filter(|i| i % 5 == fold) {
            (oof[i], floor_flag[i]) = s.boosted(&clf, &rows[i].0.text);
        }
    }
    let (w, b) = train(cfg, &xs, &ys, info, &pos_weight);
    Fit {
        oof,
        floor_flag,
        w,
        b,
    }
}

/// The best-F1 threshold of `scores` against `labels`: flagged when `score >= t` or
/// `always[i]`. Ties keep the lowest threshold.
fn best_f1(scores: &[f32], always: &[bool], labels: &[u8]) -> (f64, f32) {
    let mut cands: Vec<f32> = scores.to_vec();
    cands.sort_by(f32::total_cmp);
    cands.dedup();
    let mut best = (0.0f64, 0.0f32);
    for &t in &cands {
        let flagged: Vec<f32> = scores
            .iter()
            .zip(always)
            .map(|(&x, &a)| f32::from(u8::from(x >= t || a)))
            .collect();
        let f1 = metrics(&flagged, labels, 0.5).f1;
        if f1 > best.0 {
            best = (f1, t);
        }
    }
    best
}

/// Threshold of the harassment head once it stands on its own: it adds to the harmful score,
/// so it is chosen for that score, out of fold, against the overall label. The moderation
/// rows' F1 may drop by at most `tol` below its best; among those thresholds, the one with
/// the best surge F1. Returns (logit, moderation F1, surge F1).
fn own_threshold(
    own: &[f32],
    flagged_anyway: &[bool],
    labels: &[u8],
    is_surge: &[bool],
    tol: f64,
) -> (f32, f64, f64) {
    let f1_of = |t: f32, surge: bool| {
        let (mut s, mut l) = (Vec::new(), Vec::new());
        for i in (0..own.len()).filter(|&i| is_surge[i] == surge) {
            s.push(f32::from(u8::from(own[i] >= t || flagged_anyway[i])));
            l.push(labels[i]);
        }
        metrics(&s, &l, 0.5).f1
    };
    let mut cands: Vec<f32> = own.to_vec();
    cands.sort_by(f32::total_cmp);
    cands.dedup();
    // Above every score the head adds nothing: the moderation F1 of the harmful head alone.
    cands.push(f32::INFINITY);
    let fits: Vec<(f32, f64, f64)> = cands
        .iter()
        .map(|&t| (t, f1_of(t, false), f1_of(t, true)))
        .collect();
    let best_mod = fits.iter().map(|f| f.1).fold(0.0, f64::max);
    fits.into_iter()
        .filter(|f| f.1 + tol >= best_mod)
        .fold(None::<(f32, f64, f64)>, |best, f| match best {
            Some(b) if b.2 >= f.2 => Some(b),
            _ => Some(f),
        })
        .unwrap()
}

pub fn content(eval: &Path, out_dir: &Path, pred_dir: Option<&Path>) {
    let rows = read_jsonl(&eval.join("content/openai_moderation.jsonl"));
    let surge = read_jsonl(&eval.join("content/surge_toxicity.jsonl"));
    // The same hash split for both sets: neither held-out 30% is ever trained on.
    let (train_rows, held): (Vec<&Row>, Vec<&Row>) =
        rows.iter().partition(|r| in_train_split(&r.text));
    let (surge_train, surge_held): (Vec<&Row>, Vec<&Row>) =
        surge.iter().partition(|r| in_train_split(&r.text));
    // `TG_SURGE=0` makes the previous weights, from the moderation set alone.
    let use_surge = knob("TG_SURGE", 1.0) > 0.5;
    println!(
        "content: openai_moderation {} training rows, {} held out; surge_toxicity {} training rows{}, {} held out",
        train_rows.len(),
        held.len(),
        surge_train.len(),
        if use_surge { "" } else { " (not used)" },
        surge_held.len()
    );
    let lexicon_features = knob("TG_LEXFEAT", 1.0) > 0.5;
    let boost_scale = knob("TG_BOOST", 1.0);
    let s = Settings {
        bits: content::BUCKETS_LOG2,
        heads: content::LEARNED_HEADS.len(),
        families: knob("TG_CFAM", f32::from(SHARED_FAMILIES)) as u8,
        lexicon_features,
        boost_scale,
        extra_params: vec![
            if lexicon_features { 1.0 } else { 0.0 },
            boost_scale,
            knob("TG_CMINN", 100.0),
        ],
    };
    let cfg = TrainConfig {
        bits: s.bits,
        heads: s.heads,
        epochs: knob("TG_CEPOCHS", 15.0) as usize,
        lr: knob("TG_CLR", 0.2),
        l2: knob("TG_CL2", 1e-3),
        min_count: knob("TG_CMINN", 100.0) as usize,
    };
    let safe_row = |text: String| Row {
        text,
        label: 0,
        cats: HashMap::new(),
    };
    let aug_rows: Vec<Row> = augment_content().into_iter().map(safe_row).collect();

    // The base fit: every head but (with surge) harassment.
    let mut base_rows: Vec<(&Row, Origin)> = train_rows
        .iter()
        .map(|&r| (r, Origin::Moderation))
        .collect();
    let n_mod = base_rows.len();
    base_rows.extend(aug_rows.iter().map(|r| (r, Origin::Template)));
    println!("content: {} template rows (safe)", aug_rows.len());
    let base = cross_fit(&s, &cfg, &base_rows, &vec![RowInfo::PLAIN; base_rows.len()]);
    let mut offsets = Vec::new();
    for h in 0..s.heads {
        // Thresholds are chosen on the real rows only: the template rows are easy negatives
        // that would pull every threshold down.
        let scores: Vec<f32> = base.oof[..n_mod].iter().map(|l| l[h]).collect();
        let always: Vec<bool> = base.floor_flag[..n_mod]
            .iter()
            .map(|&f| h == 0 && f)
            .collect();
        let labels: Vec<u8> = base_rows[..n_mod]
            .iter()
            .map(|(r, o)| u8::from(targets(r, *o)[h].is_some_and(|v| v > 0.5)))
            .collect();
        let (f1, t) = best_f1(&scores, &always, &labels);
        println!(
            "content head {h} ({}): CV F1 {f1:.3} at logit {t:.3}",
            content::LEARNED_HEADS[h].as_str()
        );
        offsets.push(t);
    }
    let (mut w, mut b) = (base.w.clone(), base.b.clone());
    let mut params_tail = s.extra_params.clone();

    if use_surge {
        // The full fit, for the harassment head.
        let small_talk_weight = knob("TG_CHATSAFE", 0.25);
        // Small-talk rows equal to a line of `chat.txt` are dropped, as for injection, so
        // that the list stays a test.
        let held_chat: Vec<String> = handwritten_lines("chat.txt")
            .iter()
            .map(|l| comparable(l))
            .collect();
        let small_talk: Vec<Row> = chat_small_talk()
            .into_iter()
            .filter(|t| !held_chat.contains(&comparable(t)))
            .map(safe_row)
            .collect();
        let mut full_rows: Vec<(&Row, Origin)> = base_rows[..n_mod].to_vec();
        full_rows.extend(surge_train.iter().map(|&r| (r, Origin::Surge)));
        let n_real = full_rows.len();
        full_rows.extend(aug_rows.iter().map(|r| (r, Origin::Template)));
        if small_talk_weight > 0.0 {
            full_rows.extend(small_talk.iter().map(|r| (r, Origin::SmallTalk)));
        }
        println!(
            "content: harassment head also on {} surge rows and {} small-talk rows (weight {small_talk_weight})",
            surge_train.len(),
            small_talk.len()
        );
        // Surge rows are half toxic, the moderation rows' harassment label is rare: a bias of
        // their own, dropped after training, keeps that base rate out of the shipped bias, so
        // that a short text (scored close to the bias) is not harassment because surge's
        // short comments often are.
        let surge_group = u8::from(knob("TG_SURGEBIAS", 1.0) > 0.5);
        let info: Vec<RowInfo> = full_rows
            .iter()
            .map(|(_, o)| match o {
                Origin::Surge => RowInfo {
                    weight: 1.0,
                    group: surge_group,
                },
                Origin::SmallTalk => RowInfo {
                    weight: small_talk_weight,
                    group: 0,
                },
                _ => RowInfo::PLAIN,
            })
            .collect();
        let full = cross_fit(&s, &cfg, &full_rows, &info);
        // Whether the harmful score flags each real row without the harassment head: the
        // base fit's out-of-fold harmful logit for a moderation row, its final model's for a
        // surge row (which it never trained on).
        let base_clf = s.classifier(&base.w, base.b.clone());
        let flagged_anyway: Vec<bool> = (0..n_real)
            .map(|i| {
                if i < n_mod {
                    base.oof[i][0] >= offsets[0] || base.floor_flag[i]
                } else {
                    let (l, floor) = s.boosted(&base_clf, &full_rows[i].0.text);
                    l[0] >= offsets[0] || floor
                }
            })
            .collect();
        let own: Vec<f32> = full.oof[..n_real].iter().map(|l| l[HARASSMENT]).collect();
        let labels: Vec<u8> = full_rows[..n_real].iter().map(|(r, _)| r.label).collect();
        let is_surge: Vec<bool> = (0..n_real).map(|i| i >= n_mod).collect();
        let tol = f64::from(knob("TG_THRTOL", 0.005));
        let (t, mod_f1, surge_f1) = own_threshold(&own, &flagged_anyway, &labels, &is_surge, tol);
        let surge_auc = {
            let pick = n_mod..n_real;
            let scores: Vec<f32> = own[pick.clone()].to_vec();
            metrics(&scores, &labels[pick], 0.5).auc
        };
        println!(
            "content head 2 (harassment, on its own): logit {t:.3}; CV harmful score F1 moderation {mod_f1:.3}, surge {surge_f1:.3}; CV AUC of the head on surge {surge_auc:.4}"
        );
        offsets[HARASSMENT] = t;
        let h = s.heads;
        for k in 0..(1usize << s.bits) {
            w[k * h + HARASSMENT] = full.w[k * h + HARASSMENT];
        }
        b[HARASSMENT] = full.b[HARASSMENT];
        params_tail.push(f32::from(1u8 << HARASSMENT));
    }

    let mut params = offsets;
    params.append(&mut params_tail);
    let model =
        LinearModel::from_floats(s.bits, s.heads, CONTENT_WINDOW, s.families, b, &w, params)
            .unwrap();
    let bytes = model.to_bytes();
    std::fs::create_dir_all(out_dir).unwrap();
    std::fs::write(out_dir.join("content.tgm"), &bytes).unwrap();
    let clf = ContentClassifier::from_weights(&bytes).unwrap();
    variants(&clf, boost_scale, "openai_moderation_heldout30", &held);
    variants(&clf, boost_scale, "surge_toxicity_heldout30", &surge_held);
    handwritten(&clf);
    evaluate(&clf, pred_dir, "openai_moderation_train70", &train_rows);
    evaluate(&clf, pred_dir, "openai_moderation_heldout30", &held);
    evaluate(&clf, pred_dir, "surge_toxicity_train70", &surge_train);
    evaluate(&clf, pred_dir, "surge_toxicity_heldout30", &surge_held);
    // The whole file, comparable with the figures of models that never saw it.
    let surge_all: Vec<&Row> = surge.iter().collect();
    evaluate(&clf, pred_dir, "surge_toxicity", &surge_all);
    write_gold(pred_dir, "openai_moderation_heldout30", &held);
    write_gold(pred_dir, "surge_toxicity_heldout30", &surge_held);
}

/// Scores of the harmful output on `rows`, printed and written as predictions.
fn evaluate(clf: &ContentClassifier, pred_dir: Option<&Path>, name: &str, rows: &[&Row]) {
    let scores: Vec<f32> = rows.iter().map(|r| clf.classify(&r.text).harmful).collect();
    let labels: Vec<u8> = rows.iter().map(|r| r.label).collect();
    print_metrics(
        &format!("content {name}"),
        &metrics(&scores, &labels, 0.5),
        0.5,
    );
    write_predictions(pred_dir, &format!("{name}.pred.jsonl"), &scores);
}

/// Gold file of a held-out split, so that `eval_binary.py` can score its predictions.
fn write_gold(pred_dir: Option<&Path>, name: &str, rows: &[&Row]) {
    let Some(dir) = pred_dir else { return };
    let mut gold = String::new();
    for r in rows {
        writeln!(
            gold,
            "{}",
            serde_json::json!({"text": r.text, "label": r.label})
        )
        .unwrap();
    }
    std::fs::write(dir.join(format!("{name}.gold.jsonl")), gold).unwrap();
}

/// Variants of the overall score, for the record: the harmful head alone and with the
/// lexicon boosts (the shipped score adds the category scores and the lexicon floors).
fn variants(clf: &ContentClassifier, boost_scale: f32, name: &str, rows: &[&Row]) {
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
}

/// The hand-written lists through the content classifier at the default thresholds: the
/// benign look-alikes (`src/content/testdata/benign.txt`, none may be flagged) and the short
/// chat lines of `src/injection/testdata/chat.txt` (greetings and thanks must not be; its
/// insults and threats may).
fn handwritten(clf: &ContentClassifier) {
    let look_alikes = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/content/testdata/benign.txt"),
    )
    .unwrap_or_default();
    let look_alikes: Vec<String> = look_alikes
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    for (name, lines) in [
        ("content benign look-alikes", look_alikes),
        ("chat.txt through content", handwritten_lines("chat.txt")),
    ] {
        let mut flagged = 0;
        for line in &lines {
            let v = clf.classify(line);
            let f = v.flagged(&content::Thresholds::default());
            if !f.is_empty() {
                flagged += 1;
                println!("  flagged {:.3} {:?} {line}", v.harmful, f);
            }
        }
        println!("handwritten {name}: {flagged}/{} flagged", lines.len());
    }
}
