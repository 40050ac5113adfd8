//! Reading data, featurising, training and scoring: the parts shared by both models.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use tollgate_guard::content;
use tollgate_guard::injection::features::for_each_feature;

/// Seed for the example shuffle.
pub const SEED: u64 = 0x7011_6a7e_2026_0003;

pub struct Row {
    pub text: String,
    pub label: u8,
    pub cats: HashMap<String, u8>,
}

pub fn read_jsonl(path: &Path) -> Vec<Row> {
    let data = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    data.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let cats = v
                .get("categories")
                .and_then(|c| c.as_object())
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                u8::try_from(v.as_u64().unwrap_or(0)).unwrap_or(0),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Row {
                text: v["text"].as_str().unwrap_or_default().to_owned(),
                label: u8::try_from(v["label"].as_u64().unwrap_or(0)).unwrap_or(0),
                cats,
            }
        })
        .collect()
}

pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

pub fn featurize(text: &str, bits: u8, families: u8, lexicon: bool) -> Vec<u32> {
    let normalized = tollgate_guard::normalize::normalize_text(text);
    let mut f = Vec::new();
    for_each_feature(&normalized, bits, families, |b, _| f.push(b));
    if lexicon {
        for id in content::lexicon::scan(&normalized).ids {
            f.push(content::lexicon_feature(id, bits));
        }
    }
    f.sort_unstable();
    f.dedup();
    f
}

/// Hyper-parameter override from the environment, for experiments; the defaults are the
/// values that produced the committed weights.
pub fn knob(name: &str, default: f32) -> f32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How one training row counts.
#[derive(Debug, Clone, Copy)]
pub struct RowInfo {
    /// Multiplier of the row's loss.
    pub weight: f32,
    /// 0, or a data set with a base rate of its own: rows of group `g > 0` add a bias per head
    /// that is learned with the weights and then thrown away. It absorbs what is particular to
    /// that data set as a whole (its share of positives, its labelling bar), so that the kept
    /// bias and weights describe the texts, not which file they came from.
    pub group: u8,
}

impl RowInfo {
    /// A row of weight 1 in the main group.
    pub const PLAIN: Self = Self {
        weight: 1.0,
        group: 0,
    };
}

pub struct TrainConfig {
    pub bits: u8,
    pub heads: usize,
    pub epochs: usize,
    pub lr: f32,
    pub l2: f32,
    /// See `LinearModel::with_min_count`.
    pub min_count: usize,
}

/// Multi-head logistic regression with AdaGrad on L2-normalised binary features.
/// `pos_weight[h]` up-weights the positive class of head `h`. `ys[i][h]` is `None` where row
/// `i` says nothing about head `h` (a data set that labels only some categories): that head
/// gets no gradient from the row, neither toward 0 nor toward 1. With every target `Some`,
/// the arithmetic is exactly that of plain multi-head training. `rows[i]` weighs row `i`'s
/// loss and names its group (see [`RowInfo`]); `RowInfo::PLAIN` for every row is plain
/// training, bit for bit.
pub fn train(
    cfg: &TrainConfig,
    xs: &[Vec<u32>],
    ys: &[Vec<Option<f32>>],
    rows: &[RowInfo],
    pos_weight: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let h = cfg.heads;
    let n = 1usize << cfg.bits;
    let mut w = vec![0f32; n * h];
    let mut g2 = vec![1e-6f32; n * h];
    let mut b = vec![0f32; h];
    let mut bg2 = vec![1e-6f32; h];
    let groups = rows.iter().map(|r| usize::from(r.group)).max().unwrap_or(0);
    let mut gb = vec![vec![0f32; h]; groups];
    let mut gbg2 = vec![vec![1e-6f32; h]; groups];
    let mut order: Vec<usize> = (0..xs.len()).collect();
    let mut rng = Rng(SEED);
    // Polyak averaging of the per-epoch weights over the second half of training: lowers the
    // variance that a small training set gives single SGD runs.
    let average = knob("TG_AVG", 1.0) > 0.5;
    let mut w_avg = vec![0f32; n * h];
    let mut b_avg = vec![0f32; h];
    let mut snapshots = 0f32;
    for epoch in 0..cfg.epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            let x = &xs[i];
            let norm = 1.0 / (x.len().max(cfg.min_count).max(1) as f32).sqrt();
            for head in 0..h {
                let Some(y) = ys[i][head] else { continue };
                let group = usize::from(rows[i].group);
                let mut z = b[head];
                if group > 0 {
                    z += gb[group - 1][head];
                }
                for &f in x {
                    z += w[f as usize * h + head] * norm;
                }
                let p = 1.0 / (1.0 + (-z).exp());
                let weight = rows[i].weight * if y > 0.5 { pos_weight[head] } else { 1.0 };
                let g = (p - y) * weight;
                bg2[head] += g * g;
                b[head] -= cfg.lr * g / bg2[head].sqrt();
                if group > 0 {
                    let (bias, acc) = (&mut gb[group - 1][head], &mut gbg2[group - 1][head]);
                    *acc += g * g;
                    *bias -= cfg.lr * g / acc.sqrt();
                }
                for &f in x {
                    let k = f as usize * h + head;
                    let gk = g * norm + cfg.l2 * w[k];
                    g2[k] += gk * gk;
                    w[k] -= cfg.lr * gk / g2[k].sqrt();
                }
            }
        }
        if average && epoch >= cfg.epochs / 2 {
            for (a, x) in w_avg.iter_mut().zip(&w) {
                *a += x;
            }
            for (a, x) in b_avg.iter_mut().zip(&b) {
                *a += x;
            }
            snapshots += 1.0;
        }
    }
    if !average || snapshots == 0.0 {
        return (w, b);
    }
    w_avg.iter_mut().for_each(|x| *x /= snapshots);
    b_avg.iter_mut().for_each(|x| *x /= snapshots);
    (w_avg, b_avg)
}

pub struct Metrics {
    pub auc: f64,
    pub tpr_at_1: f64,
    pub fpr: f64,
    pub tpr: f64,
    pub f1: f64,
}

pub fn metrics(scores: &[f32], labels: &[u8], threshold: f32) -> Metrics {
    let pos = labels.iter().filter(|&&l| l == 1).count() as f64;
    let neg = labels.len() as f64 - pos;
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // AUC via ranks with ties averaged.
    let mut ranks = vec![0f64; scores.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        for k in i..=j {
            ranks[idx[k]] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    let rank_sum: f64 = (0..labels.len())
        .filter(|&i| labels[i] == 1)
        .map(|i| ranks[i])
        .sum();
    let auc = (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg);
    // TPR at FPR <= 1%, thresholds between distinct scores.
    let mut best = 0.0;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut k = idx.len();
    while k > 0 {
        let t = scores[idx[k - 1]];
        while k > 0 && scores[idx[k - 1]] == t {
            if labels[idx[k - 1]] == 1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            k -= 1;
        }
        if fp / neg <= 0.01 {
            best = f64::max(best, tp / pos);
        }
    }
    let tp = (0..labels.len())
        .filter(|&i| labels[i] == 1 && scores[i] >= threshold)
        .count() as f64;
    let fp = (0..labels.len())
        .filter(|&i| labels[i] == 0 && scores[i] >= threshold)
        .count() as f64;
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let recall = tp / pos.max(1.0);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    Metrics {
        auc,
        tpr_at_1: best,
        fpr: fp / neg.max(1.0),
        tpr: recall,
        f1,
    }
}

pub fn print_metrics(name: &str, m: &Metrics, threshold: f32) {
    println!(
        "{name:<40} AUC {:.4}  TPR@1%FPR {:.4}  @{threshold}: TPR {:.4} FPR {:.4} F1 {:.4}",
        m.auc, m.tpr_at_1, m.tpr, m.fpr, m.f1
    );
}

pub fn write_predictions(dir: Option<&Path>, name: &str, scores: &[f32]) {
    let Some(dir) = dir else { return };
    std::fs::create_dir_all(dir).unwrap();
    let mut out = String::new();
    for s in scores {
        writeln!(out, "{{\"score\": {s:.6}}}").unwrap();
    }
    std::fs::write(dir.join(name), out).unwrap();
}
