//! PII detection (checklist DP-1): recognizers with validation wherever the format has one
//! (Luhn, IBAN mod-97, Verhoeff, mod-11, ABA, base58check, bech32, EIP-55, SSN ranges…),
//! context words that raise scores (as Presidio does), and custom recognizers from config.
//!
//! [`PiiDetector::detect`] returns non-overlapping [`Detection`]s with byte offsets into the
//! input and a score in 0..1; only detections at or above the detector's threshold are kept.
//! Masking them is [`crate::mask`]'s job.
//!
//! Limits: person names and places are found from context cues and lexicons (US Census
//! names and international first names and surnames from about thirty locales, GeoNames
//! places ≥ 1,000 people; see `data/lexicon/generate.py`), so a rare surname alone without a
//! cue ("Unlike the Szöllösy novel") is missed, names written all in lower case are missed,
//! and a capitalised common word after a cue ("Dear Customer") is filtered by a small stop
//! list rather than understood. Street addresses need a house number, or a post box (see
//! `address.rs` for the formats); a street named without a number is missed.

mod address;
mod checksum;
mod context;
mod names;
mod patterns;
mod phones;

use std::fmt;

pub use checksum::{
    aba_routing, base58check, bech32, eip55, es_id, iban, itin, luhn, nhs, ssn, verhoeff,
};

/// Longest text scanned in one call; longer input is scanned in windows by the caller.
pub const MAX_SCAN_BYTES: usize = 8 * 1024 * 1024;

/// The kinds of PII tollgate recognizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiType {
    /// E-mail address.
    Email,
    /// Phone number (international and national formats).
    Phone,
    /// Payment card number (Luhn-valid, known network prefix).
    CreditCard,
    /// International bank account number.
    Iban,
    /// US Social Security number.
    UsSsn,
    /// US Individual Taxpayer Identification number.
    UsItin,
    /// US bank routing (ABA) number.
    UsRouting,
    /// IPv4 or IPv6 address.
    IpAddress,
    /// MAC address.
    MacAddress,
    /// Bitcoin or Ethereum wallet address.
    CryptoWallet,
    /// UK National Insurance number.
    UkNino,
    /// UK NHS number.
    UkNhs,
    /// India Aadhaar number.
    InAadhaar,
    /// Spanish DNI.
    EsDni,
    /// Spanish NIE.
    EsNie,
    /// A date of birth (a date with birth context).
    DateOfBirth,
    /// Any other calendar date.
    Date,
    /// Street address.
    StreetAddress,
    /// City, region or country.
    Location,
    /// Person name.
    Person,
    /// URL.
    Url,
    /// A custom recognizer from config, by index.
    Custom(u16),
}

impl PiiType {
    /// Every built-in type.
    pub const ALL: [PiiType; 21] = [
        Self::Email,
        Self::Phone,
        Self::CreditCard,
        Self::Iban,
        Self::UsSsn,
        Self::UsItin,
        Self::UsRouting,
        Self::IpAddress,
        Self::MacAddress,
        Self::CryptoWallet,
        Self::UkNino,
        Self::UkNhs,
        Self::InAadhaar,
        Self::EsDni,
        Self::EsNie,
        Self::DateOfBirth,
        Self::Date,
        Self::StreetAddress,
        Self::Location,
        Self::Person,
        Self::Url,
    ];

    /// Short upper-case label used in masks (`[EMAIL]`, `<EMAIL_1>`) and config.
    pub fn label(self) -> &'static str {
        match self {
            Self::Email => "EMAIL",
            Self::Phone => "PHONE",
            Self::CreditCard => "CARD",
            Self::Iban => "IBAN",
            Self::UsSsn => "SSN",
            Self::UsItin => "ITIN",
            Self::UsRouting => "ROUTING",
            Self::IpAddress => "IP",
            Self::MacAddress => "MAC",
            Self::CryptoWallet => "WALLET",
            Self::UkNino => "NINO",
            Self::UkNhs => "NHS",
            Self::InAadhaar => "AADHAAR",
            Self::EsDni => "DNI",
            Self::EsNie => "NIE",
            Self::DateOfBirth => "DOB",
            Self::Date => "DATE",
            Self::StreetAddress => "ADDRESS",
            Self::Location => "LOCATION",
            Self::Person => "PERSON",
            Self::Url => "URL",
            Self::Custom(_) => "CUSTOM",
        }
    }

    /// Parse a label as written in config (case-insensitive).
    pub fn from_label(s: &str) -> Option<Self> {
        let up = s.to_ascii_uppercase();
        Self::ALL.into_iter().find(|t| t.label() == up)
    }

    /// Presidio's entity name, used by the shared evaluation scorers.
    pub fn presidio_name(self) -> &'static str {
        match self {
            Self::Email => "EMAIL_ADDRESS",
            Self::Phone => "PHONE_NUMBER",
            Self::CreditCard => "CREDIT_CARD",
            Self::Iban => "IBAN_CODE",
            Self::UsSsn => "US_SSN",
            Self::UsItin => "US_ITIN",
            Self::UsRouting => "ABA_ROUTING_NUMBER",
            Self::IpAddress => "IP_ADDRESS",
            Self::MacAddress => "MAC_ADDRESS",
            Self::CryptoWallet => "CRYPTO",
            Self::UkNino => "UK_NINO",
            Self::UkNhs => "UK_NHS",
            Self::InAadhaar => "IN_AADHAAR",
            Self::EsDni => "ES_NIF",
            Self::EsNie => "ES_NIE",
            Self::DateOfBirth | Self::Date => "DATE_TIME",
            Self::StreetAddress => "STREET_ADDRESS",
            Self::Location => "LOCATION",
            Self::Person => "PERSON",
            Self::Url => "URL",
            Self::Custom(_) => "CUSTOM",
        }
    }
}

impl fmt::Display for PiiType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One detected PII span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// What it is.
    pub kind: PiiType,
    /// Confidence 0..1 after context.
    pub score: f32,
}

/// A recognizer defined in config: a regex or a word list, with a label and score.
#[derive(Debug, Clone)]
pub struct CustomRecognizer {
    /// Label used in masks, e.g. `EMPLOYEE_ID`.
    pub label: String,
    regex: regex::Regex,
    score: f32,
    context: Vec<String>,
}

/// Why a custom recognizer is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecognizerError {
    /// The regex does not compile (or is too large).
    #[error("custom recognizer {label}: invalid pattern: {reason}")]
    Pattern {
        /// Recognizer label.
        label: String,
        /// Why.
        reason: String,
    },
    /// The label is not usable in a mask token.
    #[error("custom recognizer label {0:?} must be 1-32 characters of A-Z, 0-9 and _")]
    Label(String),
    /// A word list is empty.
    #[error("custom recognizer {0}: needs a pattern or at least one word")]
    Empty(String),
}

/// Compiled-size cap for custom regexes: config is trusted, but a pathological pattern must
/// not make every request slow.
const MAX_CUSTOM_REGEX_BYTES: usize = 1 << 20;

impl CustomRecognizer {
    fn check_label(label: &str) -> Result<(), RecognizerError> {
        if label.is_empty()
            || label.len() > 32
            || !label
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(RecognizerError::Label(label.to_owned()));
        }
        Ok(())
    }

    /// A regex recognizer.
    pub fn regex(
        label: &str,
        pattern: &str,
        score: f32,
        context: Vec<String>,
    ) -> Result<Self, RecognizerError> {
        Self::check_label(label)?;
        let regex = regex::RegexBuilder::new(pattern)
            .size_limit(MAX_CUSTOM_REGEX_BYTES)
            .build()
            .map_err(|e| RecognizerError::Pattern {
                label: label.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            label: label.to_owned(),
            regex,
            score: score.clamp(0.0, 1.0),
            context: context.into_iter().map(|w| w.to_lowercase()).collect(),
        })
    }

    /// A dictionary recognizer: whole-word, case-insensitive matches of `words`.
    pub fn words(label: &str, words: &[String], score: f32) -> Result<Self, RecognizerError> {
        Self::check_label(label)?;
        let words: Vec<String> = words
            .iter()
            .filter(|w| !w.trim().is_empty())
            .map(|w| regex::escape(w.trim()))
            .collect();
        if words.is_empty() {
            return Err(RecognizerError::Empty(label.to_owned()));
        }
        let pattern = format!(r"(?i)\b(?:{})\b", words.join("|"));
        Self::regex(label, &pattern, score, Vec::new())
    }
}

/// Finds PII in text. Cheap to share: build once, call [`PiiDetector::detect`] from any thread.
#[derive(Debug, Clone)]
pub struct PiiDetector {
    threshold: f32,
    custom: Vec<CustomRecognizer>,
}

impl Default for PiiDetector {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

/// Default minimum score for a detection to count.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

impl PiiDetector {
    /// A detector with the built-in recognizers plus `custom` ones.
    pub fn new(custom: Vec<CustomRecognizer>) -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            custom,
        }
    }

    /// Change the minimum score.
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold.clamp(0.0, 1.0);
        self
    }

    /// Label of a type, custom ones included.
    pub fn label(&self, kind: PiiType) -> &str {
        match kind {
            PiiType::Custom(i) => self
                .custom
                .get(usize::from(i))
                .map_or("CUSTOM", |c| c.label.as_str()),
            k => k.label(),
        }
    }

    /// Every detection at or above the threshold, sorted, without overlaps (the stronger of
    /// two overlapping detections wins; on a tie, the longer).
    pub fn detect(&self, text: &str) -> Vec<Detection> {
        let text = if text.len() > MAX_SCAN_BYTES {
            let mut end = MAX_SCAN_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            &text[..end]
        } else {
            text
        };
        let mut found = Vec::new();
        patterns::scan(text, &mut found);
        names::scan(text, &mut found);
        for (i, c) in self.custom.iter().enumerate() {
            for m in c.regex.find_iter(text) {
                if m.start() == m.end() {
                    continue;
                }
                let mut score = c.score;
                if !c.context.is_empty()
                    && context::near(
                        text,
                        m.start(),
                        m.end(),
                        &c.context.iter().map(String::as_str).collect::<Vec<_>>(),
                    )
                {
                    score = (score + context::BOOST).min(1.0);
                }
                found.push(Detection {
                    start: m.start(),
                    end: m.end(),
                    kind: PiiType::Custom(u16::try_from(i).unwrap_or(u16::MAX)),
                    score,
                });
            }
        }
        resolve(text, found, self.threshold)
    }
}

/// A recognizer family: scans text and appends detections.
pub type Recognizer = fn(&str, &mut Vec<Detection>);

/// Each recognizer family by name, for profiling (`examples/pii_profile.rs`).
#[doc(hidden)]
pub fn profile_families() -> Vec<(&'static str, Recognizer)> {
    patterns::families()
        .into_iter()
        .chain([("names", names::scan as Recognizer)])
        .collect()
}

/// Drop detections under `threshold` and resolve overlaps.
fn resolve(text: &str, mut found: Vec<Detection>, threshold: f32) -> Vec<Detection> {
    found.retain(|d| d.score >= threshold && d.end > d.start);
    address_wins_over_its_parts(&mut found);
    // Strongest first, then longest; keep a detection only if it overlaps nothing kept.
    found.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<Detection> = Vec::with_capacity(found.len());
    for d in found {
        if kept.iter().all(|k| d.end <= k.start || d.start >= k.end) {
            kept.push(d);
        }
    }
    kept.sort_by_key(|d| d.start);
    address::extend_tails(text, merge_address_parts(kept))
}

/// A street address that contains a name or a place ("Rua João Pessoa 1636", "Victor Hugo
/// u. 49.") is an address: it takes the score of the strongest such part, so that the
/// longer address wins the overlap instead of losing its street name to a person.
fn address_wins_over_its_parts(found: &mut [Detection]) {
    if !found.iter().any(|d| d.kind == PiiType::StreetAddress) {
        return;
    }
    let parts: Vec<(usize, usize, f32)> = found
        .iter()
        .filter(|d| matches!(d.kind, PiiType::Person | PiiType::Location))
        .map(|d| (d.start, d.end, d.score))
        .collect();
    for d in found
        .iter_mut()
        .filter(|d| d.kind == PiiType::StreetAddress)
    {
        for &(s, e, score) in &parts {
            if d.start <= s && e <= d.end && (d.start, d.end) != (s, e) {
                d.score = d.score.max(score);
            }
        }
    }
}

/// Longest gap bridged between two parts of one street address.
const ADDRESS_GAP: usize = 40;

/// An address is often found in parts (street, unit, "State ZIP"); report it as one span so
/// that it is masked as one value.
fn merge_address_parts(found: Vec<Detection>) -> Vec<Detection> {
    let mut out: Vec<Detection> = Vec::with_capacity(found.len());
    for d in found {
        if let Some(last) = out.last_mut() {
            if last.kind == PiiType::StreetAddress
                && d.kind == PiiType::StreetAddress
                && d.start >= last.end
                && d.start - last.end <= ADDRESS_GAP
            {
                last.end = d.end;
                last.score = last.score.max(d.score);
                continue;
            }
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests;
