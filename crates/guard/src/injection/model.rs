//! A multi-head logistic-regression model over hashed features, and its weight file format.
//!
//! The same format serves the injection model (one head) and the content model (one head per
//! category). Weights are quantised to `i8` per head so that the embedded files stay small
//! and a feature's weights for every head share one cache line.
//!
//! Long texts are scored in overlapping windows of [`LinearModel::window`] tokens and the
//! highest window wins: an instruction hidden in the middle of a long retrieved document must
//! not be diluted by the pages of benign text around it.
//!
//! File layout (little-endian): magic `TGLM0003`, `buckets_log2: u8`, `heads: u8`,
//! `window: u16`, `n_params: u16`, `families: u8` (feature families, see
//! [`super::features`]), one reserved zero byte, `bias: [f32; heads]`, `scale: [f32; heads]`,
//! `params: [f32; n_params]`, `weights: [i8; 2^buckets_log2 * heads]` (bucket-major).

use super::features::{ALL_FEATURES, FeatureBag, extract};

mod fused;
use fused::{PackedSink, RowSink, SingleSink};

/// Magic bytes at the start of a weight file.
pub const MAGIC: &[u8; 8] = b"TGLM0003";
/// Bytes before the bias values.
const HEADER_BYTES: usize = 16;
/// Largest hash space a weight file may declare: bounds memory when loading.
pub const MAX_BUCKETS_LOG2: u8 = 22;
/// Most heads a model may have.
pub const MAX_HEADS: usize = 16;
/// Most free parameters (calibration) a weight file may carry.
pub const MAX_PARAMS: usize = 64;

/// Why a weight file could not be loaded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    /// The file does not start with [`MAGIC`].
    #[error("not a tollgate model file (bad magic)")]
    BadMagic,
    /// The header declares sizes beyond the limits.
    #[error("model header out of limits: {0}")]
    Limits(&'static str),
    /// The file is shorter or longer than its header says.
    #[error("model file has {actual} bytes, header says {expected}")]
    Length {
        /// Bytes the header implies.
        expected: usize,
        /// Bytes present.
        actual: usize,
    },
    /// A file made for another detector (wrong number of heads).
    #[error("model has {actual} heads, expected {expected}")]
    Heads {
        /// Heads the detector needs.
        expected: usize,
        /// Heads in the file.
        actual: usize,
    },
}

/// A loaded model. Cheap to share by reference; scoring allocates only a per-call scratch
/// vector proportional to the number of tokens.
#[derive(Clone)]
pub struct LinearModel {
    buckets_log2: u8,
    heads: usize,
    window: usize,
    families: u8,
    bias: Vec<f32>,
    scale: Vec<f32>,
    params: Vec<f32>,
    /// Weights, bucket-major, `stride` (= heads) per bucket, for models of 1 or more than 8
    /// heads; empty otherwise.
    weights: Vec<i8>,
    /// For models of 2 to 8 heads: each bucket's eight `i8` weights (padded with zeros) as one
    /// `u64` whose bytes are offset by 128, the form [`LinearModel::sum_packed`] adds.
    packed: Vec<u64>,
    /// Values per bucket row: the heads, or 8 for packed rows.
    stride: usize,
    /// Windows with fewer features are normalised as if they had this many (see
    /// [`LinearModel::with_min_count`]).
    min_count: u32,
}

impl std::fmt::Debug for LinearModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinearModel")
            .field("buckets_log2", &self.buckets_log2)
            .field("heads", &self.heads)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

fn read_f32s(bytes: &[u8], at: &mut usize, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut b = [0u8; 4];
        if let Some(src) = bytes.get(*at..*at + 4) {
            b.copy_from_slice(src);
        }
        out.push(f32::from_le_bytes(b));
        *at += 4;
    }
    out
}

impl LinearModel {
    /// Build a model from float weights (bucket-major, `2^buckets_log2 * heads`), quantising
    /// them. Used by the training program.
    pub fn from_floats(
        buckets_log2: u8,
        heads: usize,
        window: usize,
        families: u8,
        bias: Vec<f32>,
        weights: &[f32],
        params: Vec<f32>,
    ) -> Result<Self, ModelError> {
        if buckets_log2 == 0 || buckets_log2 > MAX_BUCKETS_LOG2 {
            return Err(ModelError::Limits("buckets_log2"));
        }
        if heads == 0 || heads > MAX_HEADS || bias.len() != heads {
            return Err(ModelError::Limits("heads"));
        }
        if params.len() > MAX_PARAMS {
            return Err(ModelError::Limits("params"));
        }
        if window == 0 || window > usize::from(u16::MAX) {
            return Err(ModelError::Limits("window"));
        }
        let expected = (1usize << buckets_log2) * heads;
        if weights.len() != expected {
            return Err(ModelError::Length {
                expected,
                actual: weights.len(),
            });
        }
        let mut scale = vec![0f32; heads];
        for (i, w) in weights.iter().enumerate() {
            let h = i % heads;
            if let Some(s) = scale.get_mut(h) {
                *s = s.max(w.abs());
            }
        }
        for s in &mut scale {
            *s = if *s > 0.0 {
                *s / f32::from(i8::MAX)
            } else {
                1.0
            };
        }
        let quantised: Vec<i8> = weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let s = scale.get(i % heads).copied().unwrap_or(1.0);
                // Saturating float-to-int `as` is the intended rounding here.
                (w / s)
                    .round()
                    .clamp(f32::from(i8::MIN), f32::from(i8::MAX)) as i8
            })
            .collect();
        Ok(Self {
            buckets_log2,
            heads,
            window,
            families: if families & ALL_FEATURES == 0 {
                ALL_FEATURES
            } else {
                families & ALL_FEATURES
            },
            bias,
            scale,
            params,
            stride: stride_for(heads),
            weights: unpacked(&quantised, heads),
            packed: packed(&quantised, heads),
            min_count: 0,
        })
    }

    /// Parse a weight file (see the module documentation for the layout).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        if bytes.get(..8) != Some(MAGIC.as_slice()) {
            return Err(ModelError::BadMagic);
        }
        let header = bytes.get(8..HEADER_BYTES).ok_or(ModelError::Length {
            expected: HEADER_BYTES,
            actual: bytes.len(),
        })?;
        let buckets_log2 = header.first().copied().unwrap_or(0);
        let heads = usize::from(header.get(1).copied().unwrap_or(0));
        let window = usize::from(u16::from_le_bytes([
            header.get(2).copied().unwrap_or(0),
            header.get(3).copied().unwrap_or(0),
        ]));
        let n_params = usize::from(u16::from_le_bytes([
            header.get(4).copied().unwrap_or(0),
            header.get(5).copied().unwrap_or(0),
        ]));
        let families = header.get(6).copied().unwrap_or(0);
        if buckets_log2 == 0 || buckets_log2 > MAX_BUCKETS_LOG2 {
            return Err(ModelError::Limits("buckets_log2"));
        }
        if families == 0 || families & !ALL_FEATURES != 0 {
            return Err(ModelError::Limits("families"));
        }
        if heads == 0 || heads > MAX_HEADS {
            return Err(ModelError::Limits("heads"));
        }
        if n_params > MAX_PARAMS {
            return Err(ModelError::Limits("params"));
        }
        if window == 0 {
            return Err(ModelError::Limits("window"));
        }
        let n_weights = (1usize << buckets_log2) * heads;
        let expected = HEADER_BYTES + 8 * heads + 4 * n_params + n_weights;
        if bytes.len() != expected {
            return Err(ModelError::Length {
                expected,
                actual: bytes.len(),
            });
        }
        let mut at = HEADER_BYTES;
        let bias = read_f32s(bytes, &mut at, heads);
        let scale = read_f32s(bytes, &mut at, heads);
        let params = read_f32s(bytes, &mut at, n_params);
        let weights: Vec<i8> = bytes
            .get(at..)
            .unwrap_or_default()
            .iter()
            .map(|&b| i8::from_le_bytes([b]))
            .collect();
        Ok(Self {
            buckets_log2,
            heads,
            window,
            families,
            bias,
            scale,
            params,
            stride: stride_for(heads),
            packed: packed(&weights, heads),
            weights: unpacked(&weights, heads),
            min_count: 0,
        })
    }

    /// Serialise to the weight file format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let buckets = 1usize << self.buckets_log2;
        let mut out = Vec::with_capacity(HEADER_BYTES + 8 * self.heads + buckets * self.heads);
        out.extend_from_slice(MAGIC);
        out.push(self.buckets_log2);
        out.push(u8::try_from(self.heads).unwrap_or(u8::MAX));
        out.extend_from_slice(&u16::try_from(self.window).unwrap_or(u16::MAX).to_le_bytes());
        out.extend_from_slice(&u16::try_from(self.params.len()).unwrap_or(0).to_le_bytes());
        out.push(self.families);
        out.push(0);
        for v in self.bias.iter().chain(&self.scale).chain(&self.params) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for bucket in 0..buckets {
            let row = self.row(u32::try_from(bucket).unwrap_or(u32::MAX));
            for w in row.iter().take(self.heads) {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out
    }

    /// The weights of one bucket, one per head (the rest zeros).
    fn row(&self, bucket: u32) -> [i8; MAX_HEADS] {
        let mut out = [0i8; MAX_HEADS];
        if self.packed.is_empty() {
            let base = bucket as usize * self.stride;
            let src = self
                .weights
                .get(base..base + self.heads)
                .unwrap_or_default();
            for (o, &w) in out.iter_mut().zip(src) {
                *o = w;
            }
        } else if let Some(&p) = self.packed.get(bucket as usize) {
            for (o, b) in out.iter_mut().zip((p ^ PACKED_OFFSET).to_le_bytes()) {
                *o = i8::from_le_bytes([b]);
            }
        }
        out
    }

    /// Hash space size, as a power of two.
    pub fn buckets_log2(&self) -> u8 {
        self.buckets_log2
    }

    /// Number of heads (outputs).
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// Feature families the model was trained on.
    pub fn families(&self) -> u8 {
        self.families
    }

    /// Window length in tokens.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Normalise windows of fewer than `min_count` features as if they had `min_count`: a
    /// model trained on paragraphs would otherwise give a five-word text the full weight of
    /// its few features (L2 normalisation makes each count more the fewer there are). The
    /// training program must use the same value.
    pub fn with_min_count(mut self, min_count: u32) -> Self {
        self.min_count = min_count;
        self
    }

    /// Free parameters stored with the weights (calibration chosen by the training program).
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// The same weights with other parameters, as a weight file written with them would load.
    #[cfg(test)]
    pub(crate) fn with_params(mut self, params: Vec<f32>) -> Self {
        self.params = params;
        self
    }

    /// Raw logits per head for `text`: the maximum over windows of
    /// `bias + Σ weights / sqrt(feature count)` (the L2-normalised binary bag of features the
    /// model was trained on). `out` receives one value per head.
    pub fn logits(&self, text: &str, out: &mut [f32]) {
        self.logits_with(text, &[], out);
    }

    /// Like [`LinearModel::logits`], with extra named features (see
    /// [`super::features::named_bucket`]) that count as present in every window.
    ///
    /// Weights are summed as the tokenizer produces the features, so no feature vector is
    /// built: the same integer sums as [`LinearModel::logits_bag`] on a [`FeatureBag`] of
    /// `text`, at about half the cost when one model reads the text.
    pub fn logits_with(&self, text: &str, extra: &[u32], out: &mut [f32]) {
        // A token is at least one byte followed by a separator, bar the last.
        let mut acc = Accumulator::new(self.heads, self.stride, text.len() / 2 + 1);
        let (bits, families) = (self.buckets_log2, self.families);
        match self.heads {
            1 => {
                let mut run = |memo: &mut fused::MemoTable| {
                    let mut sink = SingleSink::new(&self.weights, memo, &mut acc);
                    extract(text, bits, families, &mut sink);
                };
                // The thread's memo, or a fresh one if it is in use (it never is: scoring
                // does not nest) or the thread is being torn down.
                let reused = fused::MEMO
                    .try_with(|m| m.try_borrow_mut().map(|mut m| run(&mut m)).is_ok())
                    .unwrap_or(false);
                if !reused {
                    run(&mut fused::MemoTable::new());
                }
            }
            2..=8 => {
                let mut sink = PackedSink::new(&self.packed, &mut acc);
                extract(text, bits, families, &mut sink);
            }
            _ => {
                let mut sink = RowSink::new(self, &mut acc);
                extract(text, bits, families, &mut sink);
            }
        }
        self.finish(acc, extra, out);
    }

    /// Whether `bag` was extracted with this model's hash space and feature families, so
    /// that [`LinearModel::logits_bag`] can use it.
    pub fn accepts(&self, bag: &FeatureBag) -> bool {
        bag.buckets_log2() == self.buckets_log2 && bag.families() == self.families
    }

    /// Like [`LinearModel::logits_with`] on features extracted once for several models. A bag
    /// from another hash space ([`LinearModel::accepts`] is false) gives only the biases.
    pub fn logits_bag(&self, bag: &FeatureBag, extra: &[u32], out: &mut [f32]) {
        let mut acc = Accumulator::new(self.heads, self.stride, bag.tokens() + 1);
        if self.accepts(bag) {
            match self.heads {
                1 => self.sum_single(bag, &mut acc),
                2..=8 => self.sum_packed(bag, &mut acc),
                _ => {
                    for (index, token) in bag.tokens_buckets().enumerate() {
                        let index = u32::try_from(index).unwrap_or(u32::MAX);
                        for &bucket in token {
                            acc.add(&self.weights, self.stride, bucket, index);
                        }
                    }
                }
            }
        }
        self.finish(acc, extra, out);
    }

    /// The hot loop of a one-head model: a weight per feature, read by index.
    fn sum_single(&self, bag: &FeatureBag, acc: &mut Accumulator) {
        for token in bag.tokens_buckets() {
            let sum: i32 = token
                .iter()
                .map(|&b| i32::from(self.weights.get(b as usize).copied().unwrap_or(0)))
                .sum();
            acc.push_row([sum], u32::try_from(token.len()).unwrap_or(u32::MAX));
        }
    }

    /// The hot loop of a model with 2 to 8 heads, in SIMD-within-a-register: a row of eight
    /// `i8` weights is read as one `u64`, each byte offset by 128 so that it is unsigned, and
    /// split into two `u64`s of four 16-bit lanes (even and odd heads), so one feature costs a
    /// handful of integer instructions instead of eight widening adds. A 16-bit lane holds
    /// the sum of 257 offset weights (at most 255 each) without carrying into its neighbour;
    /// a token has at most `MAX_TOKEN_FEATURES` (49) features, and longer ones, which
    /// [`FeatureBag`] never builds, take the plain loop. Exact: the offsets are removed per
    /// token.
    fn sum_packed(&self, bag: &FeatureBag, acc: &mut Accumulator) {
        const EVEN: u64 = 0x00ff_00ff_00ff_00ff;
        for token in bag.tokens_buckets() {
            let mut cur = [0i32; 8];
            if token.len() <= 257 {
                let (mut even, mut odd) = (0u64, 0u64);
                for &bucket in token {
                    let x = self
                        .packed
                        .get(bucket as usize)
                        .copied()
                        .unwrap_or(PACKED_OFFSET);
                    even += x & EVEN;
                    odd += (x >> 8) & EVEN;
                }
                let offset = 128 * i32::try_from(token.len()).unwrap_or(0);
                for (lane, pair) in cur.chunks_exact_mut(2).enumerate() {
                    let shift = 16 * lane;
                    if let [e, o] = pair {
                        *e = i32::from((even >> shift) as u16) - offset;
                        *o = i32::from((odd >> shift) as u16) - offset;
                    }
                }
            } else {
                for &bucket in token {
                    for (c, w) in cur.iter_mut().zip(self.row(bucket)) {
                        *c += i32::from(w);
                    }
                }
            }
            let count = u32::try_from(token.len()).unwrap_or(u32::MAX);
            acc.push_row(cur, count);
        }
    }

    fn finish(&self, acc: Accumulator, extra: &[u32], out: &mut [f32]) {
        self.finish_with(acc, extra, out, true);
    }

    /// [`LinearModel::finish`], with the half-window blocks optional so that a test can
    /// compare them with the plain window loop.
    fn finish_with(&self, acc: Accumulator, extra: &[u32], out: &mut [f32], blocks: bool) {
        let heads = self.heads;
        let (mut sums, mut counts, row) = acc.into_parts();
        let mut extra_sums = vec![0i64; heads];
        for &bucket in extra {
            for (a, w) in extra_sums.iter_mut().zip(self.row(bucket)) {
                *a += i64::from(w);
            }
        }
        let extra_count = u32::try_from(extra.len()).unwrap_or(u32::MAX);
        if counts.is_empty() {
            // No tokens: one empty window (extra features alone).
            sums.resize(row, 0);
            counts.push(0);
        }
        let mut tokens = counts.len();
        let mut window = self.window.min(tokens);
        let mut stride = (window / 2).max(1);
        if blocks && window == 2 * stride && stride > 1 {
            // Windows overlap by half: window `k` is blocks `k` and `k + 1` of `stride`
            // tokens. Summing each block once and then scoring windows of two blocks visits
            // every token once instead of twice, with the same integer sums. A block's sum
            // fits an `i32`: at most 32,767 tokens (a window is at most `u16::MAX`) of at most
            // `MAX_TOKEN_FEATURES` (49) weights of magnitude at most 128.
            let blocks = tokens.div_ceil(stride);
            let mut block_sums = vec![0i32; blocks * row];
            let mut block_counts = vec![0u32; blocks];
            for ((bs, bc), (ss, cs)) in block_sums
                .chunks_exact_mut(row.max(1))
                .zip(block_counts.iter_mut())
                .zip(sums.chunks(stride * row).zip(counts.chunks(stride)))
            {
                for token in ss.chunks_exact(row.max(1)) {
                    for (a, &v) in bs.iter_mut().zip(token) {
                        *a += v;
                    }
                }
                *bc = cs.iter().sum();
            }
            (sums, counts) = (block_sums, block_counts);
            (tokens, window, stride) = (blocks, 2, 1);
        }
        let mut best = vec![f32::NEG_INFINITY; heads];
        let mut start = 0;
        loop {
            let end = (start + window).min(tokens);
            let n: u32 = counts
                .get(start..end)
                .unwrap_or_default()
                .iter()
                .sum::<u32>()
                + extra_count;
            let norm = 1.0 / (n.max(self.min_count).max(1) as f32).sqrt();
            for (h, b) in best.iter_mut().enumerate() {
                let s: i64 = (start..end)
                    .map(|t| i64::from(sums.get(t * row + h).copied().unwrap_or(0)))
                    .sum::<i64>()
                    + extra_sums.get(h).copied().unwrap_or(0);
                let logit = self.bias.get(h).copied().unwrap_or(0.0)
                    + self.scale.get(h).copied().unwrap_or(0.0) * s as f32 * norm;
                *b = b.max(logit);
            }
            if end >= tokens {
                break;
            }
            start += stride;
        }
        for (o, b) in out.iter_mut().zip(best) {
            *o = b;
        }
    }
}

/// Per-token integer sums of quantised weights and per-token feature counts. The current
/// token is summed in a fixed array and pushed when the token changes, so the hot path does
/// no allocation and no bounds-checked slicing of growing vectors.
#[derive(Clone)]
struct Accumulator {
    heads: usize,
    /// Values per token in `sums`: `heads`, or the lanes of the loop that filled it (the
    /// extra lanes hold zeros).
    row: usize,
    current: u32,
    cur: [i32; MAX_HEADS],
    cur_count: u32,
    sums: Vec<i32>,
    counts: Vec<u32>,
}

impl Accumulator {
    fn new(heads: usize, row: usize, tokens: usize) -> Self {
        let heads = heads.min(MAX_HEADS);
        Self {
            heads,
            row: row.max(heads),
            current: u32::MAX,
            cur: [0; MAX_HEADS],
            cur_count: 0,
            sums: Vec::with_capacity(row.max(heads) * tokens),
            counts: Vec::with_capacity(tokens),
        }
    }

    fn flush(&mut self) {
        if self.cur_count > 0 {
            self.sums
                .extend_from_slice(self.cur.get(..self.row).unwrap_or_default());
            self.counts.push(self.cur_count);
        }
        self.cur = [0; MAX_HEADS];
        self.cur_count = 0;
    }

    #[inline]
    fn add(&mut self, weights: &[i8], stride: usize, bucket: u32, index: u32) {
        if index != self.current {
            self.flush();
            self.current = index;
        }
        let heads = self.heads;
        let base = bucket as usize * stride;
        if let Some(row) = weights.get(base..base + heads) {
            for (a, &w) in self.cur.iter_mut().zip(row) {
                *a += i32::from(w);
            }
        }
        self.cur_count += 1;
    }

    /// Append a finished token's sums (used by `sum_single` and `sum_packed`). A row of
    /// compile-time length is copied inline, where a slice of run-time length called `memcpy`.
    fn push_row<const L: usize>(&mut self, sums: [i32; L], count: u32) {
        debug_assert_eq!(L, self.row);
        self.sums.extend_from_slice(&sums);
        self.counts.push(count);
    }

    fn into_parts(mut self) -> (Vec<i32>, Vec<u32>, usize) {
        self.flush();
        (self.sums, self.counts, self.row)
    }
}

/// Values per bucket row in memory: see [`LinearModel`]'s `stride`.
fn stride_for(heads: usize) -> usize {
    if (2..=8).contains(&heads) { 8 } else { heads }
}

/// Offset added to every byte of a packed row, so that each `i8` weight is a `u8`.
const PACKED_OFFSET: u64 = 0x8080_8080_8080_8080;

/// Bucket-major `i8` weights kept as they are, for models of 1 or more than 8 heads.
fn unpacked(weights: &[i8], heads: usize) -> Vec<i8> {
    if (2..=8).contains(&heads) {
        Vec::new()
    } else {
        weights.to_vec()
    }
}

/// Packed rows (see [`LinearModel`]'s `packed`) for models of 2 to 8 heads.
fn packed(weights: &[i8], heads: usize) -> Vec<u64> {
    if !(2..=8).contains(&heads) {
        return Vec::new();
    }
    weights
        .chunks(heads)
        .map(|row| {
            let mut bytes = [0u8; 8];
            for (b, &w) in bytes.iter_mut().zip(row) {
                *b = w.to_le_bytes()[0];
            }
            u64::from_le_bytes(bytes) ^ PACKED_OFFSET
        })
        .collect()
}

/// The logistic function.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests;
