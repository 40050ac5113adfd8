//! Prompt-injection defence (checklist MG-4).
//!
//! [`InjectionDetector`] scores a text in `0..1` by combining three things:
//!
//! 1. [`crate::normalize`]: Unicode tricks are undone first, and the tricks themselves are
//!    evidence (`obfuscation.*` signals); encoded payloads (base64, hex, rot13, percent, tag
//!    characters) are decoded and scored as well.
//! 2. [`rules`]: hand-written patterns per attack family (instruction overrides, jailbreak
//!    personas, system-prompt extraction, chat-template tokens and fake role turns, tool-call
//!    hijacking, exfiltration). Each rule adds to the model's logit and sets a floor on the
//!    score, with a per-[`Source`] strength.
//! 3. [`model`]: a logistic regression over hashed word and character n-grams
//!    ([`features`]), trained by `examples/train_guard.rs` and embedded with `include_bytes!`.
//!    Its calibration (stored in the weight file) maps the default user threshold to 0.5.
//!
//! Content that did not come from the user (tool results, retrieved documents) is scored
//! with a stricter threshold and stronger rules, see [`Source`]. [`spotlight`] delimits and
//! datamarks such content before it is sent, and [`new_canary`] / [`contains_canary`] detect
//! a system prompt leaking into a response.
//!
//! To score one prompt with both this detector and [`crate::content::ContentClassifier`],
//! build a [`PreparedText`] once and call [`InjectionDetector::score_prepared`] and
//! `ContentClassifier::classify_prepared`: normalisation and the rule scan are shared, and
//! the features are extracted once into a bag when both models read them (one model alone
//! sums its weights while tokenizing, which is cheaper than building the bag).
//!
//! A verdict reports rule ids, never the matched text.

pub mod features;
pub mod model;
pub mod rules;
mod spotlight;

pub use spotlight::{
    CANARY_PREFIX, SpotlightOptions, contains_canary, new_canary, spotlight, spotlight_instructions,
};

use std::sync::{LazyLock, OnceLock};

use regex::bytes::{RegexSet, RegexSetBuilder};

use crate::normalize::{Normalized, Signals, normalize, normalize_text};
use features::FeatureBag;
use model::{LinearModel, ModelError, sigmoid};
use rules::Strength;

/// The embedded injection model (see `models/README.md` for how it was trained).
static EMBEDDED: &[u8] = include_bytes!("../../models/injection.tgm");

/// Where a text came from: untrusted content is judged more strictly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Typed by the user of the application.
    User,
    /// Tool results, retrieved documents, web pages, e-mails: text that the user did not
    /// write and that should never contain instructions for the model.
    Untrusted,
}

impl Source {
    /// The default threshold for this source; see [`default_threshold`].
    pub fn default_threshold(self) -> f32 {
        default_threshold(self)
    }
}

/// Default blocking threshold on [`InjectionVerdict::score`] for a source.
///
/// 0.5 for user text is the calibrated point chosen on `slabs_validation` (see
/// `models/README.md`); untrusted content uses 0.3, trading some false positives for recall
/// because a retrieved document has no business instructing the model at all.
pub fn default_threshold(source: Source) -> f32 {
    match source {
        Source::User => 0.5,
        Source::Untrusted => 0.3,
    }
}

/// The verdict on one text.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectionVerdict {
    /// Injection likelihood in `0..1`.
    pub score: f32,
    /// The threshold it was compared with ([`default_threshold`] of the source).
    pub threshold: f32,
    /// The source it was scored as.
    pub source: Source,
    /// Ids of the rules and obfuscation signals that fired, in a stable order, deduplicated.
    pub rules: Vec<&'static str>,
    /// Unicode tricks found while normalising.
    pub signals: Signals,
}

impl InjectionVerdict {
    /// Whether the score reaches the threshold.
    pub fn is_injection(&self) -> bool {
        self.score >= self.threshold
    }

    /// Whether the score reaches a caller-chosen threshold (a route's override).
    pub fn exceeds(&self, threshold: f32) -> bool {
        self.score >= threshold
    }
}

/// The uncalibrated parts of a score, for calibration and debugging.
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown {
    /// The model's logit on the normalised text (highest window).
    pub model_logit: f32,
    /// Model logit plus the boosts of the rules that fired (highest over text and payloads).
    pub logit: f32,
    /// Noisy-OR of the floors of the rules that fired.
    pub floor: f32,
    /// Rule ids that fired.
    pub rules: Vec<&'static str>,
    /// Unicode signals.
    pub signals: Signals,
}

/// Hash space shared by the embedded injection and content models, so that one
/// [`PreparedText`] serves both.
pub const SHARED_BUCKETS_LOG2: u8 = 16;
/// Feature families of the embedded models: words, word bigrams and character 4-grams.
/// Character 3-grams added nothing on the validation sets and cost a third of the time.
pub const SHARED_FAMILIES: u8 = features::WORDS | features::BIGRAMS | features::CHARS4;

/// A text normalised and featurised once, for every detector that reads it: scoring one
/// prompt with [`InjectionDetector::score_prepared`] and
/// [`crate::content::ContentClassifier::classify_prepared`] does the shared work once.
#[derive(Clone)]
pub struct PreparedText {
    normalized: Normalized,
    /// Built on first use: a detector that reads the text alone sums its weights while
    /// tokenizing (`LinearModel::logits_with`), which costs about half of building the bag
    /// and then reading it; the bag pays off once a second model reads the same text.
    bag: OnceLock<FeatureBag>,
    /// Indexes of the injection rules that matched.
    rule_hits: Vec<usize>,
    /// Indexes of the content lexicon rules that matched.
    lexicon_hits: Vec<usize>,
}

/// The injection rules and the content lexicon in one set, so that a prepared text is
/// scanned once: the lazy DFA costs the same per byte however many patterns it carries.
static COMBINED: LazyLock<Option<(RegexSet, usize)>> = LazyLock::new(|| {
    let injection: Vec<String> = rules::patterns().collect();
    let split = injection.len();
    let set = RegexSetBuilder::new(
        injection
            .into_iter()
            .chain(crate::content::lexicon::patterns()),
    )
    .case_insensitive(true)
    .unicode(false)
    .size_limit(128 << 20)
    .dfa_size_limit(128 << 20)
    .build()
    .ok()?;
    Some((set, split))
});

// The normalised text is untrusted prompt content: Debug shows sizes and signals only.
impl std::fmt::Debug for PreparedText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedText")
            .field("normalized", &self.normalized)
            .field("features", &self.bag.get().map(|b| b.buckets().len()))
            .finish()
    }
}

impl PreparedText {
    /// Normalise `text` and run the rule and lexicon scan; features are extracted when a
    /// detector first needs them.
    pub fn new(text: &str) -> Self {
        let normalized = normalize(text);
        let (mut rule_hits, mut lexicon_hits) = (Vec::new(), Vec::new());
        // Most texts match no rule. `is_match` runs the lazy DFA in its plain, stop-at-first-
        // match mode, which costs about half of the overlapping search that `matches` needs
        // (callgrind, 4 KB of prose: 98k against 178k instructions); a text that does match
        // pays for the scan up to its first match twice.
        if let Some((set, split)) = COMBINED.as_ref()
            && set.is_match(normalized.text.as_bytes())
        {
            for i in set.matches(normalized.text.as_bytes()).into_iter() {
                match i.checked_sub(*split) {
                    None => rule_hits.push(i),
                    Some(j) => lexicon_hits.push(j),
                }
            }
        }
        Self {
            normalized,
            bag: OnceLock::new(),
            rule_hits,
            lexicon_hits,
        }
    }

    /// The normalised text, its signals and decoded payloads.
    pub fn normalized(&self) -> &Normalized {
        &self.normalized
    }

    /// The extracted features (extracted on the first call).
    pub fn features(&self) -> &FeatureBag {
        self.bag.get_or_init(|| {
            FeatureBag::new(&self.normalized.text, SHARED_BUCKETS_LOG2, SHARED_FAMILIES)
        })
    }

    /// The features, if some detector has already extracted them.
    pub fn features_if_extracted(&self) -> Option<&FeatureBag> {
        self.bag.get()
    }

    /// The content lexicon's hits on the normalised text.
    pub fn lexicon_hits(&self) -> crate::content::lexicon::Hits {
        crate::content::lexicon::hits_from(self.lexicon_hits.iter().copied())
    }
}

/// The prompt-injection detector. Build once ([`InjectionDetector::new`]) and share by
/// reference or `Arc`: scoring takes `&self` and holds no lock.
#[derive(Debug, Clone)]
pub struct InjectionDetector {
    model: LinearModel,
    offset: f32,
    slope: f32,
}

const OBFUSCATION_TAG_CHARS: &str = "obfuscation.tag_chars";
const OBFUSCATION_INVISIBLE: &str = "obfuscation.invisible_chars";
const OBFUSCATION_BIDI: &str = "obfuscation.bidi_controls";
const OBFUSCATION_HOMOGLYPHS: &str = "obfuscation.homoglyphs";
const OBFUSCATION_PAYLOAD: &str = "obfuscation.encoded_instructions";

const fn strength(boost: f32, floor: f32) -> Strength {
    Strength { boost, floor }
}

impl InjectionDetector {
    /// Load the embedded model.
    pub fn new() -> Result<Self, ModelError> {
        Self::from_weights(EMBEDDED)
    }

    /// Load a model from weight-file bytes (the training program uses this to evaluate a
    /// freshly trained model). Calibration comes from the file's parameters
    /// `[offset, slope, min_count]`; a file without them is uncalibrated (`offset` 0,
    /// `slope` 1, no minimum count).
    pub fn from_weights(bytes: &[u8]) -> Result<Self, ModelError> {
        Self::from_model(LinearModel::from_bytes(bytes)?)
    }

    /// Wrap an already loaded model.
    pub fn from_model(model: LinearModel) -> Result<Self, ModelError> {
        if model.heads() != 1 {
            return Err(ModelError::Heads {
                expected: 1,
                actual: model.heads(),
            });
        }
        let offset = model.params().first().copied().unwrap_or(0.0);
        let slope = model.params().get(1).copied().unwrap_or(1.0);
        // Optional third parameter: see `LinearModel::with_min_count`. Saturating conversion
        // of a small stored count.
        let min_count = model.params().get(2).copied().unwrap_or(0.0).max(0.0) as u32;
        let model = model.with_min_count(min_count);
        Ok(Self {
            model,
            offset,
            slope,
        })
    }

    /// The same model with another calibration: `score = sigmoid(slope * (logit - offset))`.
    pub fn with_calibration(mut self, offset: f32, slope: f32) -> Self {
        self.offset = offset;
        self.slope = slope;
        self
    }

    /// The underlying model.
    pub fn model(&self) -> &LinearModel {
        &self.model
    }

    /// Score `text` as coming from `source`.
    pub fn score(&self, text: &str, source: Source) -> InjectionVerdict {
        self.score_prepared(&PreparedText::new(text), source)
    }

    /// Score a text prepared once for several detectors (see [`PreparedText`]).
    pub fn score_prepared(&self, text: &PreparedText, source: Source) -> InjectionVerdict {
        let b = self.breakdown_prepared(text, source);
        InjectionVerdict {
            score: self.calibrate(&b),
            threshold: default_threshold(source),
            source,
            rules: b.rules,
            signals: b.signals,
        }
    }

    /// The final score of a breakdown: calibrated logit, or the rules' floor if higher.
    pub fn calibrate(&self, b: &Breakdown) -> f32 {
        sigmoid(self.slope * (b.logit - self.offset)).max(b.floor)
    }

    /// The uncalibrated parts of the score of `text`.
    pub fn breakdown(&self, text: &str, source: Source) -> Breakdown {
        self.breakdown_prepared(&PreparedText::new(text), source)
    }

    /// [`InjectionDetector::breakdown`] of a prepared text.
    pub fn breakdown_prepared(&self, text: &PreparedText, source: Source) -> Breakdown {
        let normalized = &text.normalized;
        let mut rules = Vec::new();
        let mut boost = 0.0f32;
        let mut keep_floor = 1.0f32;
        let mut add = |id: &'static str, s: Strength, rules: &mut Vec<&'static str>| {
            if !rules.contains(&id) {
                rules.push(id);
                boost += s.boost;
                keep_floor *= 1.0 - s.floor;
            }
        };
        // Features already extracted for another detector are read; otherwise the weights
        // are summed while tokenizing (the same sums, with no feature vector built).
        let model_logit = match text.bag.get() {
            Some(bag) if self.model.accepts(bag) => {
                let mut out = [0.0f32];
                self.model.logits_bag(bag, &[], &mut out);
                out[0]
            }
            _ => self.model_logit(&normalized.text),
        };
        for rule in text.rule_hits.iter().filter_map(|&i| rules::rules().get(i)) {
            add(rule.id, pick(rule, source), &mut rules);
        }
        signal_rules(normalized, source, |id, s| add(id, s, &mut rules));
        let mut logit = model_logit + boost;
        let mut floor = 1.0 - keep_floor;
        // Decoded payloads are scored on their own; one that looks like an injection makes the
        // whole text one, since nobody base64-encodes "what is the capital of France".
        for payload in &normalized.payloads {
            let (p_logit, p_floor, p_rules) = self.score_plain(&payload.text, source);
            let p_score = sigmoid(self.slope * (p_logit - self.offset)).max(p_floor);
            if p_score >= default_threshold(source) {
                let s = pick_strength(source, strength(2.0, 0.6), strength(4.0, 0.9));
                logit = logit.max(p_logit) + s.boost;
                floor = 1.0 - (1.0 - floor.max(p_floor)) * (1.0 - s.floor);
                for id in std::iter::once(OBFUSCATION_PAYLOAD).chain(p_rules) {
                    if !rules.contains(&id) {
                        rules.push(id);
                    }
                }
            }
        }
        Breakdown {
            model_logit,
            logit,
            floor,
            rules,
            signals: normalized.signals,
        }
    }

    fn model_logit(&self, text: &str) -> f32 {
        let mut out = [0.0f32];
        self.model.logits(text, &mut out);
        out[0]
    }

    /// Model plus rules on already decoded text (no further decoding: bounded recursion).
    fn score_plain(&self, text: &str, source: Source) -> (f32, f32, Vec<&'static str>) {
        let text = normalize_text(text);
        let mut logit = self.model_logit(&text);
        let mut keep = 1.0f32;
        let mut ids = Vec::new();
        for rule in rules::matching(&text) {
            let s = pick(rule, source);
            logit += s.boost;
            keep *= 1.0 - s.floor;
            ids.push(rule.id);
        }
        (logit, 1.0 - keep, ids)
    }
}

fn pick(rule: &rules::Rule, source: Source) -> Strength {
    pick_strength(source, rule.user, rule.untrusted)
}

fn pick_strength(source: Source, user: Strength, untrusted: Strength) -> Strength {
    match source {
        Source::User => user,
        Source::Untrusted => untrusted,
    }
}

/// Unicode tricks as pseudo-rules. Tag characters have no legitimate use in prompts; a few
/// zero-width characters inside words do (copy-paste from web pages), so they count less.
fn signal_rules(n: &Normalized, source: Source, mut add: impl FnMut(&'static str, Strength)) {
    let s = n.signals;
    if s.tag_chars > 0 {
        add(
            OBFUSCATION_TAG_CHARS,
            pick_strength(source, strength(2.0, 0.45), strength(4.0, 0.9)),
        );
    }
    if s.zero_width >= 3 {
        add(
            OBFUSCATION_INVISIBLE,
            pick_strength(source, strength(1.0, 0.15), strength(2.0, 0.3)),
        );
    }
    if s.bidi_controls > 0 {
        add(
            OBFUSCATION_BIDI,
            pick_strength(source, strength(1.0, 0.15), strength(2.0, 0.3)),
        );
    }
    if s.confusable_words > 0 {
        add(
            OBFUSCATION_HOMOGLYPHS,
            pick_strength(source, strength(1.5, 0.2), strength(2.5, 0.4)),
        );
    }
}

#[cfg(test)]
mod tests;
