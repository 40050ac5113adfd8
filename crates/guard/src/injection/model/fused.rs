//! The per-token sums of [`LinearModel::logits_with`], taken while the tokenizer produces
//! the features ([`FeatureSink`]s), so that scoring a text builds no feature vector: one
//! sink per row layout (one head, packed rows of 2 to 8 heads, plain rows), each giving the
//! same integer sums as the matching loop over a [`super::FeatureBag`].

use super::{Accumulator, LinearModel, MAX_HEADS, PACKED_OFFSET};
use crate::injection::features::{FeatureSink, MAX_TOKEN_FEATURES, TokenWords};

/// A one-head model's weights summed per token as the features arrive (the fused form of
/// [`LinearModel::sum_single`]), with a memo of recent tokens.
///
/// Prose repeats its words ("the", "and", a subject's name): a token seen before gets the
/// sum of its word and character n-gram weights from the memo, and only its bigram (which
/// depends on the token before) is looked up. The memo compares the token's bytes, not only
/// its hash, so the sums are exactly those of the plain loop.
pub(super) struct SingleSink<'a> {
    weights: &'a [i8],
    /// The current token's sum and feature count.
    sum: i32,
    count: u32,
    /// Of those, the part that depends on the token alone (all but the bigram).
    own: i32,
    own_count: u32,
    /// Where the current token's own sum is to be remembered, when it was not known.
    slot: Option<usize>,
    memo: &'a mut MemoTable,
    acc: &'a mut Accumulator,
}

/// The memo's slots, reused from text to text on a thread: a slot is valid only for the
/// text whose `epoch` it carries, so starting a text costs one increment instead of zeroing
/// 10 KiB (a `calloc` and `memset` for every text scored).
pub(super) struct MemoTable {
    slots: Vec<Memo>,
    epoch: u32,
}

impl MemoTable {
    pub(super) fn new() -> Self {
        Self {
            slots: vec![Memo::EMPTY; MEMO_SLOTS],
            epoch: 0,
        }
    }

    /// Forget every slot (in O(1) but once per 2^32 texts).
    fn next_text(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.slots.fill(Memo::EMPTY);
            self.epoch = 1;
        }
    }
}

thread_local! {
    /// The memo of the texts scored on this thread (see [`MemoTable`]).
    pub(super) static MEMO: std::cell::RefCell<MemoTable> = std::cell::RefCell::new(MemoTable::new());
}

/// Slots of [`SingleSink`]'s memo (direct-mapped by the top bits of the token's hash): a
/// few hundred distinct words cover most of a prompt's tokens.
const MEMO_SLOTS: usize = 256;

/// A remembered token: its bytes (zero-padded), length, and its own sum and count, valid
/// for the text of `epoch`.
#[derive(Clone, Copy)]
struct Memo {
    token: TokenWords,
    len: u32,
    epoch: u32,
    sum: i32,
    count: u32,
}

impl Memo {
    /// An empty slot: epoch 0 is never a text's.
    const EMPTY: Self = Self {
        token: [0; 3],
        len: 0,
        epoch: 0,
        sum: 0,
        count: 0,
    };
}

impl<'a> SingleSink<'a> {
    pub(super) fn new(
        weights: &'a [i8],
        memo: &'a mut MemoTable,
        acc: &'a mut Accumulator,
    ) -> Self {
        memo.next_text();
        Self {
            weights,
            sum: 0,
            count: 0,
            own: 0,
            own_count: 0,
            slot: None,
            memo,
            acc,
        }
    }
}

impl FeatureSink for SingleSink<'_> {
    #[inline]
    fn feature(&mut self, bucket: u32) {
        self.own += i32::from(self.weights.get(bucket as usize).copied().unwrap_or(0));
        self.own_count += 1;
    }

    #[inline]
    fn bigram(&mut self, bucket: u32) {
        self.sum += i32::from(self.weights.get(bucket as usize).copied().unwrap_or(0));
        self.count += 1;
    }

    #[inline]
    fn known(&mut self, token: TokenWords, len: usize, word: u64) -> bool {
        let index = (word >> 56) as usize % MEMO_SLOTS;
        let epoch = self.memo.epoch;
        let Some(memo) = self.memo.slots.get_mut(index) else {
            return false;
        };
        let [a, b, c] = memo.token;
        // A token is at most `MAX_TOKEN_BYTES` long, so `as` keeps it whole.
        let len = len as u32;
        if memo.epoch == epoch
            && memo.len == len
            && (a ^ token[0]) | (b ^ token[1]) | (c ^ token[2]) == 0
        {
            (self.own, self.own_count) = (memo.sum, memo.count);
            self.slot = None;
            return true;
        }
        // Overwritten now, filled in at the end of the token.
        (memo.token, memo.len, memo.epoch) = (token, len, epoch);
        self.slot = Some(index);
        false
    }

    #[inline]
    fn end_token(&mut self) {
        if let Some(memo) = self.slot.take().and_then(|i| self.memo.slots.get_mut(i)) {
            (memo.sum, memo.count) = (self.own, self.own_count);
        }
        let (sum, count) = (self.sum + self.own, self.count + self.own_count);
        if count > 0 {
            self.acc.push_row([sum], count);
        }
        (self.sum, self.count, self.own, self.own_count) = (0, 0, 0, 0);
    }
}

// The packed lanes hold the sum of at most 257 offset weights (see `sum_packed`); a token
// never has more features than this.
const _: () = assert!(MAX_TOKEN_FEATURES <= 257);

/// A 2-to-8-head model's packed rows summed per token as the features arrive (the fused form
/// of [`LinearModel::sum_packed`], with the same lanes and offsets).
pub(super) struct PackedSink<'a> {
    packed: &'a [u64],
    even: u64,
    odd: u64,
    count: u32,
    acc: &'a mut Accumulator,
}

impl<'a> PackedSink<'a> {
    pub(super) fn new(packed: &'a [u64], acc: &'a mut Accumulator) -> Self {
        Self {
            packed,
            even: 0,
            odd: 0,
            count: 0,
            acc,
        }
    }
}

impl FeatureSink for PackedSink<'_> {
    #[inline]
    fn feature(&mut self, bucket: u32) {
        const EVEN: u64 = 0x00ff_00ff_00ff_00ff;
        let x = self
            .packed
            .get(bucket as usize)
            .copied()
            .unwrap_or(PACKED_OFFSET);
        self.even += x & EVEN;
        self.odd += (x >> 8) & EVEN;
        self.count += 1;
    }

    #[inline]
    fn end_token(&mut self) {
        if self.count > 0 {
            let mut cur = [0i32; 8];
            let offset = 128 * i32::try_from(self.count).unwrap_or(0);
            for (lane, pair) in cur.chunks_exact_mut(2).enumerate() {
                let shift = 16 * lane;
                if let [e, o] = pair {
                    *e = i32::from((self.even >> shift) as u16) - offset;
                    *o = i32::from((self.odd >> shift) as u16) - offset;
                }
            }
            self.acc.push_row(cur, self.count);
        }
        (self.even, self.odd, self.count) = (0, 0, 0);
    }
}

/// Any other model's rows summed per token as the features arrive.
pub(super) struct RowSink<'a> {
    model: &'a LinearModel,
    cur: [i32; MAX_HEADS],
    count: u32,
    acc: &'a mut Accumulator,
}

impl<'a> RowSink<'a> {
    pub(super) fn new(model: &'a LinearModel, acc: &'a mut Accumulator) -> Self {
        Self {
            model,
            cur: [0; MAX_HEADS],
            count: 0,
            acc,
        }
    }
}

impl FeatureSink for RowSink<'_> {
    #[inline]
    fn feature(&mut self, bucket: u32) {
        for (c, w) in self.cur.iter_mut().zip(self.model.row(bucket)) {
            *c += i32::from(w);
        }
        self.count += 1;
    }

    #[inline]
    fn end_token(&mut self) {
        if self.count > 0 {
            let row = self.acc.row;
            self.acc
                .sums
                .extend_from_slice(self.cur.get(..row).unwrap_or_default());
            self.acc.counts.push(self.count);
        }
        (self.cur, self.count) = ([0; MAX_HEADS], 0);
    }
}
