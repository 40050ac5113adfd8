//! Content filtering (checklist MG-2).
//!
//! [`ContentClassifier`] gives every [`Category`] a severity score in `0..1`, from two sources:
//!
//! - a multi-head logistic regression over the same hashed n-grams as the injection model
//!   ([`crate::injection::features`]), trained by `examples/train_guard/` on the training
//!   split of the OpenAI moderation release (the harassment head also on that of the surge
//!   toxicity set) and calibrated so that 0.5 is each head's cross-validated best-F1 point;
//! - [`lexicon`] rules that add to a category's logit and set a floor, for what a small
//!   training set covers poorly: slurs and insults, explicit threats, self-harm intent,
//!   and the weapons/illegal category, which the training set does not label at all.
//!
//! Sexual content involving minors is always blocked: its threshold cannot be loosened by a
//! route (see [`Thresholds::effective`]). [`TopicPolicy`] adds allow and deny lists for
//! off-topic answers. Verdicts carry categories, scores and rule ids, never matched text.

pub mod lexicon;
mod topic;

pub use topic::{MAX_TOPIC_PHRASE_BYTES, MAX_TOPIC_PHRASES, TopicError, TopicPolicy, TopicVerdict};

use crate::injection::PreparedText;
use crate::injection::model::{LinearModel, ModelError, sigmoid};
use crate::normalize::normalize;

/// The embedded content model (see `models/README.md`).
static EMBEDDED: &[u8] = include_bytes!("../../models/content.tgm");

/// Hash space of the content model, as a power of two: the same as the injection model's so
/// that one [`PreparedText`] serves both.
pub const BUCKETS_LOG2: u8 = crate::injection::SHARED_BUCKETS_LOG2;

/// A content category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Hateful content about a protected group, including threats against it.
    Hate,
    /// Insults, bullying and threats aimed at a person.
    Harassment,
    /// Promotion of, intent for, or instructions for self-harm and suicide.
    SelfHarm,
    /// Sexually explicit content.
    Sexual,
    /// Sexual content involving minors: always blocked.
    SexualMinors,
    /// Violence, threats and graphic injury.
    Violence,
    /// Making weapons or explosives, synthesising drugs, and other serious crime how-tos.
    WeaponsIllegal,
}

impl Category {
    /// Every category, in index order.
    pub const ALL: [Category; 7] = [
        Self::Hate,
        Self::Harassment,
        Self::SelfHarm,
        Self::Sexual,
        Self::SexualMinors,
        Self::Violence,
        Self::WeaponsIllegal,
    ];

    /// Stable name used in config, logs and metrics (OpenAI moderation style).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hate => "hate",
            Self::Harassment => "harassment",
            Self::SelfHarm => "self-harm",
            Self::Sexual => "sexual",
            Self::SexualMinors => "sexual/minors",
            Self::Violence => "violence",
            Self::WeaponsIllegal => "weapons-illegal",
        }
    }

    /// Parse a name produced by [`Category::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Position in [`Category::ALL`] and in [`ContentVerdict::scores`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Default blocking threshold. Scores are calibrated so that 0.5 is the best-F1 point;
    /// sexual/minors cannot be set above [`SEXUAL_MINORS_MAX_THRESHOLD`].
    pub fn default_threshold(self) -> f32 {
        match self {
            Self::SexualMinors => SEXUAL_MINORS_MAX_THRESHOLD,
            _ => 0.5,
        }
    }
}

/// The highest threshold a route may set for [`Category::SexualMinors`]: the calibrated
/// default. A route may tighten it, never loosen it.
pub const SEXUAL_MINORS_MAX_THRESHOLD: f32 = 0.5;

/// One head of the learned model: the overall "harmful" head or a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelHead {
    /// The category this head scores, or `None` for the overall harmful head.
    pub category: Option<Category>,
}

impl ModelHead {
    /// Name of the head.
    pub fn as_str(self) -> &'static str {
        self.category.map_or("harmful", Category::as_str)
    }
}

/// Heads of the content model, in weight-file order. Weapons/illegal has no learned head:
/// the training data does not label it, so it is scored by [`lexicon`] rules alone.
pub const LEARNED_HEADS: [ModelHead; 7] = [
    ModelHead { category: None },
    ModelHead {
        category: Some(Category::Hate),
    },
    ModelHead {
        category: Some(Category::Harassment),
    },
    ModelHead {
        category: Some(Category::SelfHarm),
    },
    ModelHead {
        category: Some(Category::Sexual),
    },
    ModelHead {
        category: Some(Category::SexualMinors),
    },
    ModelHead {
        category: Some(Category::Violence),
    },
];

/// Logit used for a category without a learned head before rules add to it.
const RULES_ONLY_PRIOR: f32 = -4.0;

/// Per-category thresholds of a route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds(pub [f32; 7]);

impl Default for Thresholds {
    fn default() -> Self {
        Self(Category::ALL.map(Category::default_threshold))
    }
}

impl Thresholds {
    /// Set one category's threshold.
    pub fn with(mut self, category: Category, threshold: f32) -> Self {
        if let Some(t) = self.0.get_mut(category.index()) {
            *t = threshold;
        }
        self
    }

    /// The threshold actually applied: sexual/minors can be tightened, never loosened.
    pub fn effective(&self, category: Category) -> f32 {
        let t = self.0.get(category.index()).copied().unwrap_or(0.5);
        match category {
            Category::SexualMinors => t.min(SEXUAL_MINORS_MAX_THRESHOLD),
            _ => t,
        }
    }
}

/// The verdict on one text.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentVerdict {
    /// Severity per category, indexed by [`Category::index`].
    pub scores: [f32; 7],
    /// Overall harmfulness in `0..1`: the learned harmful head or the worst category.
    pub harmful: f32,
    /// Lexicon rule ids that fired.
    pub rules: Vec<&'static str>,
}

impl ContentVerdict {
    /// Score of one category.
    pub fn score(&self, category: Category) -> f32 {
        self.scores.get(category.index()).copied().unwrap_or(0.0)
    }

    /// Categories at or above their thresholds, most severe first.
    pub fn flagged(&self, thresholds: &Thresholds) -> Vec<Category> {
        let mut out: Vec<Category> = Category::ALL
            .into_iter()
            .filter(|&c| self.score(c) >= thresholds.effective(c))
            .collect();
        out.sort_by(|a, b| self.score(*b).total_cmp(&self.score(*a)));
        out
    }

    /// Whether any category reaches its threshold.
    pub fn is_blocked(&self, thresholds: &Thresholds) -> bool {
        !self.flagged(thresholds).is_empty()
    }
}

/// The content classifier. Build once and share: classification takes `&self`.
#[derive(Debug, Clone)]
pub struct ContentClassifier {
    model: LinearModel,
    offsets: [f32; 7],
    /// Whether the model was trained with lexicon hits as extra features.
    lexicon_features: bool,
    /// Multiplier of the hand-set lexicon boosts on categories with a learned head.
    boost_scale: f32,
    /// Bit `h` set: the category of [`LEARNED_HEADS`]`[h]` keeps its own score instead of
    /// being capped by the harmful head (see [`PARAM_OWN_HEADS`]).
    own_heads: u32,
}

/// Position of the lexicon-features flag in the weight file's parameters.
pub const PARAM_LEXICON_FEATURES: usize = 7;
/// Position of the boost scale in the weight file's parameters.
pub const PARAM_BOOST_SCALE: usize = 8;
/// Position of the minimum feature count (see [`LinearModel::with_min_count`]).
pub const PARAM_MIN_COUNT: usize = 9;
/// Position of the set of heads whose category score stands on its own, as a bit mask over
/// [`LEARNED_HEADS`] indexes. A category head trained on a few dozen examples is capped by
/// the harmful head (both must agree); one trained on a data set of its own (harassment, on
/// the surge toxicity set as well as the moderation set) knows things the harmful head was
/// not taught, and a cap would throw them away. Absent (older files): every head is capped.
pub const PARAM_OWN_HEADS: usize = 10;

/// The named feature of a lexicon rule, when lexicon hits are model inputs.
pub fn lexicon_feature(id: &str, buckets_log2: u8) -> u32 {
    crate::injection::features::named_bucket(&format!("lexicon:{id}"), buckets_log2)
}

impl ContentClassifier {
    /// Load the embedded model.
    pub fn new() -> Result<Self, ModelError> {
        Self::from_weights(EMBEDDED)
    }

    /// Load a model from weight-file bytes. Parameters are the per-head calibration offsets.
    pub fn from_weights(bytes: &[u8]) -> Result<Self, ModelError> {
        Self::from_model(LinearModel::from_bytes(bytes)?)
    }

    /// Wrap an already loaded model.
    pub fn from_model(model: LinearModel) -> Result<Self, ModelError> {
        if model.heads() != LEARNED_HEADS.len() {
            return Err(ModelError::Heads {
                expected: LEARNED_HEADS.len(),
                actual: model.heads(),
            });
        }
        let mut offsets = [0.0f32; 7];
        for (o, p) in offsets.iter_mut().zip(model.params()) {
            *o = *p;
        }
        let lexicon_features = model
            .params()
            .get(PARAM_LEXICON_FEATURES)
            .is_some_and(|&f| f > 0.5);
        let boost_scale = model
            .params()
            .get(PARAM_BOOST_SCALE)
            .copied()
            .unwrap_or(1.0);
        // Saturating float-to-int conversion of a small stored count.
        let min_count = model
            .params()
            .get(PARAM_MIN_COUNT)
            .copied()
            .unwrap_or(0.0)
            .max(0.0) as u32;
        let model = model.with_min_count(min_count);
        // A small bit mask stored as an exactly representable float.
        let own_heads = model
            .params()
            .get(PARAM_OWN_HEADS)
            .copied()
            .unwrap_or(0.0)
            .clamp(0.0, 127.0) as u32;
        Ok(Self {
            model,
            offsets,
            lexicon_features,
            boost_scale,
            own_heads,
        })
    }

    /// Calibration offsets per head ([`LEARNED_HEADS`] order): a head's score is
    /// `sigmoid(logit - offset + lexicon boost)`.
    pub fn offsets(&self) -> [f32; 7] {
        self.offsets
    }

    /// The model's uncalibrated logits per head ([`LEARNED_HEADS`] order) on normalised text.
    pub fn raw_logits(&self, text: &str) -> Vec<f32> {
        let normalized = normalize(text);
        let hits = lexicon::scan(&normalized.text);
        let mut out = vec![0.0f32; LEARNED_HEADS.len()];
        self.model_logits(&normalized.text, &hits, &mut out);
        out
    }

    fn extra_features(&self, hits: &lexicon::Hits) -> Vec<u32> {
        if !self.lexicon_features {
            return Vec::new();
        }
        hits.ids
            .iter()
            .map(|id| lexicon_feature(id, self.model.buckets_log2()))
            .collect()
    }

    fn model_logits(&self, text: &str, hits: &lexicon::Hits, out: &mut [f32]) {
        self.model
            .logits_with(text, &self.extra_features(hits), out);
    }

    /// Score `text` in every category.
    pub fn classify(&self, text: &str) -> ContentVerdict {
        self.classify_prepared(&PreparedText::new(text))
    }

    /// Score a text prepared once for several detectors (see [`PreparedText`]).
    pub fn classify_prepared(&self, text: &PreparedText) -> ContentVerdict {
        let normalized = text.normalized();
        let hits = text.lexicon_hits();
        let mut logits = [0.0f32; 7];
        // As in `InjectionDetector::breakdown_prepared`: a bag another detector built is
        // read, otherwise the weights are summed while tokenizing.
        match text.features_if_extracted() {
            Some(bag) if self.model.accepts(bag) => {
                let extra = self.extra_features(&hits);
                self.model.logits_bag(bag, &extra, &mut logits);
            }
            _ => self.model_logits(&normalized.text, &hits, &mut logits),
        }
        // The harmful head was trained on every labelled text; most category heads on a few
        // dozen examples each. Such a category score is therefore capped by the harmful score
        // (both must agree), unless a lexicon rule sets a floor on its own or the head was
        // trained on enough data of its own (`own_heads`).
        let harmful_head =
            sigmoid(logits[0] - self.offsets[0] + hits.total_boost() * self.boost_scale);
        let mut scores = [0.0f32; 7];
        for category in Category::ALL {
            let head = LEARNED_HEADS
                .iter()
                .position(|h| h.category == Some(category));
            let (boost, floor) = hits.for_category(category);
            let score = match head.and_then(|h| Some((h, logits.get(h)? - self.offsets.get(h)?))) {
                Some((h, base)) if self.own_heads & (1 << h) != 0 => {
                    sigmoid(base + boost * self.boost_scale)
                }
                Some((_, base)) => sigmoid(base + boost * self.boost_scale).min(harmful_head),
                None => sigmoid(RULES_ONLY_PRIOR + boost),
            };
            if let Some(s) = scores.get_mut(category.index()) {
                *s = score.max(floor);
            }
        }
        // The sexual/minors head saw 60 examples: it only counts when the text is sexual too.
        // Sexual content plus a reference to a minor is sexual/minors, whatever the model says.
        let sexual = scores.get(Category::Sexual.index()).copied().unwrap_or(0.0);
        let (_, minors_floor) = hits.for_category(Category::SexualMinors);
        if let Some(s) = scores.get_mut(Category::SexualMinors.index()) {
            *s = s.min(sexual).max(minors_floor);
        }
        if sexual >= 0.5 && lexicon::mentions_minor(&normalized.text) {
            if let Some(s) = scores.get_mut(Category::SexualMinors.index()) {
                *s = s.max(sexual.max(0.9));
            }
        }
        let harmful = scores.iter().copied().fold(harmful_head, f32::max);
        ContentVerdict {
            scores,
            harmful,
            rules: hits.ids,
        }
    }
}

#[cfg(test)]
mod tests;
