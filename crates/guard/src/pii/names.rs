//! Person names and places: capitalised tokens confirmed by a lexicon (US Census first and
//! last names, GeoNames places) or by a cue ("my name is", "Dear", "Dr.", "lives in").
//!
//! A name needs two signals — first name *and* surname, or a cue and a capitalised word — so
//! a lone "Will" or "Grant" at the start of a sentence is not a person.

use std::collections::HashSet as StdHashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

use super::{Detection, PiiType};

/// An FxHash-style hasher for the word sets. Their keys are fixed lexicon words, so no input
/// can shape the tables, and SipHash's flooding protection only cost time: hashing was a
/// sixth of the name scan, which runs a few look-ups per capitalised word.
#[derive(Debug, Default, Clone, Copy)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let v = c.iter().rev().fold(0u64, |a, &b| a << 8 | u64::from(b));
            h = (h.rotate_left(5) ^ v).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type HashSet<T> = StdHashSet<T, BuildHasherDefault<WordHasher>>;

fn lexicon(text: &'static str) -> HashSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_lowercase)
        .collect()
}

// Word lists as hash sets: they are consulted for every capitalised token.
static NOT_NAMES_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| NOT_NAMES.iter().copied().collect());
static NOT_AFTER_NAME_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| NOT_AFTER_NAME.iter().copied().collect());
static PLACE_PREFIXES_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| PLACE_PREFIXES.iter().copied().collect());
static HONORIFICS_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| HONORIFICS.iter().copied().collect());
static SUFFIXES_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| SUFFIXES.iter().copied().collect());
static AMBIGUOUS_FIRST_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| AMBIGUOUS_FIRST.iter().copied().collect());
static AFTER_NAME_VERBS_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| AFTER_NAME_VERBS.iter().copied().collect());
static AMBIGUOUS_COUNTRIES_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| AMBIGUOUS_COUNTRIES.iter().copied().collect());

static FIRST: LazyLock<HashSet<String>> =
    LazyLock::new(|| lexicon(include_str!("../../data/lexicon/first_names.txt")));
static LAST: LazyLock<HashSet<String>> =
    LazyLock::new(|| lexicon(include_str!("../../data/lexicon/last_names.txt")));
/// The most common surnames (the census list is ordered by frequency): "Mitchell" or
/// "Williams" in a list is more often part of a firm's name than a first name.
static COMMON_SURNAMES: LazyLock<HashSet<String>> = LazyLock::new(|| {
    include_str!("../../data/lexicon/last_names.txt")
        .lines()
        .take(3000)
        .map(str::to_lowercase)
        .collect()
});
static COUNTRIES: LazyLock<HashSet<String>> =
    LazyLock::new(|| lexicon(include_str!("../../data/lexicon/countries.txt")));
/// Country names that are also common words or names; they need a locative cue.
const AMBIGUOUS_COUNTRIES: &[&str] = &[
    "turkey", "chad", "jordan", "georgia", "china", "guinea", "niger", "jersey", "israel", "kenya",
    "india", "cuba", "peru", "mali", "togo",
];
/// First names that are also everyday capitalised words (months, virtues, verbs).
const AMBIGUOUS_FIRST: &[&str] = &[
    "will", "may", "june", "april", "august", "grace", "hope", "faith", "joy", "summer", "autumn",
    "rose", "mark", "bill", "art", "sue", "pat", "jack", "rich", "guy", "major", "king", "page",
    "sky", "star", "dawn", "eve", "lane", "chance", "case", "cash", "price", "rock", "river",
    "story", "miles", "long", "young", "paris", "florence", "victoria", "georgia", "virginia",
    "carolina", "dakota", "austin", "jordan", "sydney", "madison", "phoenix", "lincoln",
];
/// Verbs that, right after a lone first name at a sentence start, make it a person.
const AFTER_NAME_VERBS: &[&str] = &[
    "said",
    "says",
    "spent",
    "is",
    "was",
    "has",
    "had",
    "went",
    "will",
    "would",
    "told",
    "asked",
    "wrote",
    "lives",
    "lived",
    "works",
    "worked",
    "joined",
    "left",
    "called",
    "met",
    "sent",
    "wants",
    "thinks",
    "believes",
    "just",
    "and",
    "shouted",
    "explained",
    "replied",
    "answered",
    "added",
    "noted",
    "laughed",
    "smiled",
];
static PLACES: LazyLock<HashSet<String>> =
    LazyLock::new(|| lexicon(include_str!("../../data/lexicon/places.txt")));

/// Capitalised words that open sentences or greetings and are never names on their own.
const NOT_NAMES: &[&str] = &[
    "the",
    "a",
    "an",
    "this",
    "that",
    "these",
    "those",
    "it",
    "i",
    "we",
    "you",
    "he",
    "she",
    "they",
    "my",
    "your",
    "our",
    "their",
    "his",
    "her",
    "please",
    "thanks",
    "thank",
    "hello",
    "hi",
    "hey",
    "dear",
    "team",
    "all",
    "everyone",
    "sir",
    "madam",
    "customer",
    "customers",
    "support",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "today",
    "tomorrow",
    "yesterday",
    "here",
    "there",
    "what",
    "when",
    "where",
    "why",
    "how",
    "who",
    "which",
    "can",
    "could",
    "would",
    "should",
    "will",
    "shall",
    "is",
    "are",
    "was",
    "were",
    "be",
    "do",
    "does",
    "did",
    "not",
    "no",
    "yes",
    "ok",
    "okay",
    "if",
    "and",
    "or",
    "but",
    "so",
    "to",
    "for",
    "from",
    "with",
    "in",
    "on",
    "at",
    "by",
    "of",
    "as",
    "about",
    "after",
    "before",
    "just",
    "also",
    "again",
    "then",
    "now",
    "new",
    "good",
    "great",
    "best",
    "kind",
    "warm",
    "sincerely",
    "regards",
    "cheers",
    "god",
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "admin",
    "user",
    "manager",
    "director",
    "hr",
    "it",
    "ceo",
    "cto",
    "friend",
    "friends",
    "folks",
    "guys",
    "world",
    "there",
    "english",
    "french",
    "german",
    "spanish",
    "python",
    "rust",
    "java",
    "javascript",
    "sql",
    "json",
    "api",
    "ai",
    "gpt",
    "claude",
    "person",
    "organization",
    "general",
    "islam",
    "allah",
];

/// Capitalised nouns that make a "Name Word" pair a place, a firm or a building, not a person.
const NOT_AFTER_NAME: &[&str] = &[
    "street",
    "road",
    "river",
    "lake",
    "park",
    "station",
    "hall",
    "house",
    "center",
    "centre",
    "college",
    "university",
    "school",
    "hospital",
    "church",
    "bank",
    "group",
    "inc",
    "ltd",
    "llc",
    "corp",
    "company",
    "club",
    "hotel",
    "bridge",
    "tower",
    "square",
    "avenue",
    "fort",
    "mountain",
    "valley",
    "island",
    "bay",
    "beach",
    "airport",
    "lodge",
    "flat",
    "royal",
    "sons",
    "brothers",
    "associates",
    "partners",
    "foundation",
    "institute",
    "museum",
    "library",
    "county",
    "city",
    "state",
    "international",
    "global",
    "studios",
    "records",
    "press",
    "media",
    "labs",
    "systems",
    "solutions",
];
/// Surname endings common across European languages, for names outside the US Census lists.
const SURNAME_ENDINGS: &[&str] = &[
    "ski", "ska", "sky", "ov", "ova", "ev", "eva", "vić", "vic", "ić", "sen", "son", "sson", "ez",
    "ini", "elli", "escu", "poulos", "idis", "enko", "chuk", "yan", "ian", "stein", "berg",
    "berger", "mann", "ková", "ová", "czyk", "wicz", "nen", "inen", "aki", "oglu", "oğlu",
    "shvili", "dze", "ssen", "ulis", "aitis", "opoulos", "akis", "ero", "etti", "dóttir", "dottir",
    "yama", "kawa", "gawa", "moto", "mura", "hara", "guchi", "saki", "zaki", "shita", "hashi",
    "kami", "uchi", "zawa",
];
const HONORIFICS: &[&str] = &[
    "mr",
    "mrs",
    "ms",
    "miss",
    "mx",
    "dr",
    "prof",
    "professor",
    "sir",
    "dame",
    "lady",
    "lord",
    "rev",
    "capt",
    "sgt",
];
const SUFFIXES: &[&str] = &[
    "jr", "sr", "ii", "iii", "iv", "md", "dds", "phd", "dvm", "esq", "rn", "cpa",
];
/// Words that, right before a capitalised word, say it is a person's name.
const PERSON_CUES: &[&[&str]] = &[
    &["my", "name", "is"],
    &["name", "is"],
    &["i", "am"],
    &["i'm"],
    &["this", "is"],
    &["dear"],
    &["hi"],
    &["hello"],
    &["hey"],
    &["regards"],
    &["thanks"],
    &["sincerely"],
    &["signed"],
    &["named"],
    &["called"],
    &["patient"],
    &["employee"],
    &["contact"],
    &["from"],
    &["attn"],
    &["cc"],
    &["by"],
    &["with"],
    &["and"],
    &["met"],
    &["ask"],
    &["tell"],
    &["said"],
    &["says"],
    &["starring"],
    &["asked"],
    &["told"],
    &["replied"],
    &["wrote"],
    &["colleague"],
    &["manager"],
    &["client"],
    &["tenant"],
    &["landlord"],
];
/// Cues that need a lexicon hit to count (they often precede non-names too).
const WEAK_PERSON_CUES: &[&str] = &["from", "by", "with", "and", "met", "ask", "tell", "this"];
const LOCATIVE_CUES: &[&[&str]] = &[
    &["in"],
    &["from"],
    &["to"],
    &["near"],
    &["at"],
    &["visit"],
    &["visiting"],
    &["visited"],
    &["city", "of"],
    &["moved", "to"],
    &["based", "in"],
    &["located", "in"],
    &["lives", "in"],
    &["born", "in"],
    &["flight", "to"],
    &["outside"],
    &["around"],
    &["toward"],
    &["towards"],
    &["across"],
    &["via"],
];
const PLACE_PREFIXES: &[&str] = &[
    "north", "south", "east", "west", "new", "lake", "port", "mount", "fort", "saint", "st", "san",
    "santa", "los", "las", "el", "port", "upper", "lower", "great",
];
const PLACE_SUFFIXES: &[&str] = &[
    "ton", "town", "ville", "burg", "burgh", "bury", "borough", "boro", "mouth", "port", "side",
    "view", "haven", "land", "field", "ford", "furt", "stad", "berg", "chester", "shire", "fort",
    "ham", "wick", "worth", "wood", "stead", "dale", "mont", "mouth", "polis", "by", "thorpe",
    "minster", "caster", "cester",
];

#[derive(Debug, Clone, Copy)]
struct Tok {
    start: usize,
    end: usize,
    title: bool,
    /// All capitals, three letters or more ("LAPPEENRANTA", "NASA").
    upper: bool,
}

fn tokenize(text: &str) -> Vec<Tok> {
    let bytes = text.as_bytes();
    let mut toks = Vec::with_capacity(text.len() / 6);
    let mut i = 0;
    // Byte loop with an ASCII fast path: prose is mostly ASCII and this runs on every word.
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() && !b.is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        if !c.is_alphabetic() {
            i += c.len_utf8();
            continue;
        }
        let start = i;
        let first_upper = c.is_uppercase();
        let mut rest_lower = true;
        let mut len_chars = 1usize;
        i += c.len_utf8();
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_alphabetic() {
                rest_lower &= !b.is_ascii_uppercase();
                len_chars += 1;
                i += 1;
                continue;
            }
            if b.is_ascii() {
                // Apostrophes and hyphens inside a word: O'Connor, Smith-Jones.
                if (b == b'\'' || b == b'-')
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic)
                {
                    i += 1;
                    continue;
                }
                break;
            }
            let Some(d) = text[i..].chars().next() else {
                break;
            };
            if d.is_alphabetic() {
                rest_lower &= !d.is_uppercase();
                len_chars += 1;
                i += d.len_utf8();
            } else if d == '’' && text[i + d.len_utf8()..].starts_with(char::is_alphabetic) {
                i += d.len_utf8();
            } else {
                break;
            }
        }
        // Title case: capital first, then lower case ("McDowell" and "DeShawn" count, "NASA" does not).
        let word = &text[start..i];
        let title = first_upper
            && (len_chars == 1
                || rest_lower
                || word.chars().skip(1).any(char::is_lowercase)
                    && len_chars > 2
                    && !word.chars().skip(1).all(char::is_uppercase));
        // Letters glued to digits ("ef79df15cc", "x86") are identifiers, not words: they must
        // not act as cues ("cc") or names.
        let glued = start > 0 && bytes[start - 1].is_ascii_digit()
            || bytes.get(i).is_some_and(u8::is_ascii_digit);
        if glued {
            continue;
        }
        let upper = first_upper && !title && len_chars >= 3 && rest_upper(word);
        toks.push(Tok {
            start,
            end: i,
            title,
            upper,
        });
    }
    toks
}

fn rest_upper(word: &str) -> bool {
    word.chars().all(|c| !c.is_alphabetic() || c.is_uppercase())
}

fn lower(text: &str, t: Tok) -> String {
    text[t.start..t.end].to_lowercase()
}

/// The gap between two tokens is a single space (optionally after an initial's period).
fn joined(text: &str, a: Tok, b: Tok) -> bool {
    let gap = &text[a.end..b.start];
    gap == " " || gap == ". " && a.end - a.start == 1
}

/// Lower-cased words (up to 3) right before token `i`, nearest last, if only spaces or
/// light punctuation separate them.
fn words_before(text: &str, toks: &[Tok], i: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut k = i;
    while k > 0 && out.len() < 3 {
        let gap = &text[toks[k - 1].end..toks[k].start];
        let prev = lower(text, toks[k - 1]);
        if gap == ". " && HONORIFICS_SET.contains(&prev.as_str()) {
            out.push(prev);
            k -= 1;
            continue;
        }
        if gap.len() > 3
            || gap.contains(['\n', '.', '!', '?', ';', '(', ')', '"'])
                && out.is_empty()
                && gap.trim() != ","
                && gap.trim() != ":"
        {
            break;
        }
        out.push(prev);
        k -= 1;
    }
    out.reverse();
    out
}

fn cue_matches(before: &[String], cues: &[&[&str]]) -> Option<usize> {
    for (n, cue) in cues.iter().enumerate() {
        if cue.len() <= before.len()
            && before[before.len() - cue.len()..]
                .iter()
                .zip(cue.iter())
                .all(|(a, b)| a == b)
        {
            return Some(n);
        }
    }
    None
}

fn has_place_suffix(word: &str) -> bool {
    PLACE_SUFFIXES
        .iter()
        .any(|s| word.len() > s.len() + 2 && word.ends_with(s))
}

/// Find person names and places.
pub fn scan(text: &str, out: &mut Vec<Detection>) {
    let toks = tokenize(text);
    let mut i = 0;
    let mut last_place: Option<usize> = None;
    while i < toks.len() {
        let t = toks[i];
        if !t.title {
            // "grew up in SUND": a word in capitals only after a cue. (Lower-case words are
            // most of the text: nothing is looked up for them, for speed.)
            let found = if t.upper {
                strong_place_at(text, &toks, i).or_else(|| caps_place_at(text, &toks, i))
            } else {
                None
            };
            if let Some((end_tok, score)) = found {
                out.push(Detection {
                    start: t.start,
                    end: toks[end_tok].end,
                    kind: PiiType::Location,
                    score,
                });
                last_place = Some(end_tok);
                i = end_tok + 1;
                continue;
            }
            i += 1;
            continue;
        }
        let w = lower(text, t);
        // "Paris, France", "Austin, TX": the region after a place is a place too.
        if let Some(p) = last_place {
            // "Detroit, Los Angeles": a prefix starts a place of its own, found below.
            let region = PLACES.contains(&w) && !PLACE_PREFIXES_SET.contains(w.as_str())
                || t.end - t.start == 2
                    && text[t.start..t.end].bytes().all(|b| b.is_ascii_uppercase());
            if p + 1 == i && &text[toks[p].end..t.start] == ", " && region {
                out.push(Detection {
                    start: t.start,
                    end: t.end,
                    kind: PiiType::Location,
                    score: 0.8,
                });
                last_place = Some(i);
                i += 1;
                continue;
            }
        }
        // Most capitalised words are sentence openers ("The", "Please"): nothing below can
        // match them (bar multi-word places starting with a prefix such as "New").
        if NOT_NAMES_SET.contains(w.as_str()) && !PLACE_PREFIXES_SET.contains(w.as_str()) {
            i += 1;
            continue;
        }
        // A full name beats a place ("Jordan Smith"); a place after a locative cue beats a
        // cue-only name ("from Paris, France").
        let found = strong_place_at(text, &toks, i)
            .map(|(e, s)| (e, s, PiiType::Location))
            .or_else(|| full_name_at(text, &toks, i, &w).map(|(e, s)| (e, s, PiiType::Person)))
            .or_else(|| place_at(text, &toks, i, &w).map(|(e, s)| (e, s, PiiType::Location)))
            .or_else(|| cued_person_at(text, &toks, i, &w).map(|(e, s)| (e, s, PiiType::Person)));
        if let Some((end_tok, score, kind)) = found {
            last_place = (kind == PiiType::Location).then_some(end_tok);
            out.push(Detection {
                start: t.start,
                end: toks[end_tok].end,
                kind,
                score,
            });
            i = end_tok + 1;
            continue;
        }
        i += 1;
    }
}

fn extend_suffixes(text: &str, toks: &[Tok], mut end: usize) -> usize {
    while end + 1 < toks.len() {
        let gap = &text[toks[end].end..toks[end + 1].start];
        if (gap == " " || gap == ", ")
            && SUFFIXES_SET.contains(&lower(text, toks[end + 1]).as_str())
        {
            end += 1;
        } else {
            break;
        }
    }
    end
}

fn full_name_at(text: &str, toks: &[Tok], i: usize, w: &str) -> Option<(usize, f32)> {
    let next = |k: usize| {
        toks.get(k)
            .filter(|n| n.title && joined(text, toks[k - 1], **n))
    };
    if NOT_NAMES_SET.contains(&w) || PLACE_PREFIXES_SET.contains(&w) {
        return None;
    }
    // "Rhode Island", "Santa Rosa": a known place of two or three words is no name.
    for len in [3usize, 2] {
        if i + len <= toks.len()
            && (i + 1..i + len).all(|k| next(k).is_some())
            && PLACES.contains(&text[toks[i].start..toks[i + len - 1].end].to_lowercase())
        {
            return None;
        }
    }
    let is_first = FIRST.contains(w);
    // First name + (middle initial or name) + surname.
    if is_first {
        let mut j = i + 1;
        if let Some(n) = next(j) {
            if n.end - n.start == 1 {
                j += 1;
            }
        }
        if let Some(n) = next(j) {
            let nw = lower(text, *n);
            if LAST.contains(&nw) && !NOT_NAMES_SET.contains(&nw.as_str()) {
                let mut end = j;
                if let Some(n2) = next(j + 1) {
                    if LAST.contains(&lower(text, *n2)) && FIRST.contains(&nw) {
                        end = j + 1;
                    }
                }
                return Some((extend_suffixes(text, toks, end), 0.85));
            }
            // First name + a capitalised word with a surname ending, or any capitalised word
            // that is not a place, a firm word or a common opener: "Benito Bianchi".
            let plain = !NOT_NAMES_SET.contains(&nw.as_str())
                && !NOT_AFTER_NAME_SET.contains(&nw.as_str())
                && !PLACES.contains(&nw);
            if plain && !LAST.contains(&nw) {
                let ending = SURNAME_ENDINGS
                    .iter()
                    .any(|e| nw.ends_with(e) && nw.len() > e.len() + 1);
                return Some((
                    extend_suffixes(text, toks, j),
                    if ending { 0.8 } else { 0.65 },
                ));
            }
        }
    }
    // A lone first name in mid-sentence (capitalised where a common word would not be), or
    // at a sentence start followed by a verb: "I met Emma", "Magnus spent a year"; in a list
    // with another first name ("Gaetane, Hannah and Derek"); or as a speaker or the person
    // addressed at a line start ("Nicole: Remember me", "Leif, can I…").
    if is_first && !AMBIGUOUS_FIRST_SET.contains(&w) && !COUNTRIES.contains(w) {
        let gap_before = (i > 0).then(|| &text[toks[i - 1].end..toks[i].start]);
        let mid_sentence = gap_before.is_some_and(|gap| {
            !gap.contains(['.', '!', '?', '\n', ':', '"', '(']) && !toks[i - 1].title
        });
        let line_start = gap_before.is_none_or(|gap| gap.contains(['\n', '.', '!', '?', '"']));
        let addressed = text[toks[i].end..].starts_with(':');
        // "from Alabama to Atlanta": a known place after a locative cue is the place.
        let place_cued = PLACES.contains(w)
            && cue_matches(&words_before(text, toks, i), LOCATIVE_CUES).is_some();
        let in_list = listed_with_first_name(text, toks, i);
        let verb_after = toks.get(i + 1).is_some_and(|n| {
            !n.title
                && &text[toks[i].end..n.start] == " "
                && AFTER_NAME_VERBS_SET.contains(&lower(text, *n).as_str())
        });
        let followed_by_noun = next(i + 1).is_some();
        if (mid_sentence || verb_after || in_list || line_start && addressed)
            && !followed_by_noun
            && !place_cued
        {
            return Some((extend_suffixes(text, toks, i), 0.55));
        }
    }
    // A capitalised word with letters outside ASCII and a known surname: "Calquín Cazares".
    if !is_first && !w.is_ascii() && !PLACES.contains(w) {
        if let Some(n) = next(i + 1) {
            let nw = lower(text, *n);
            if LAST.contains(&nw)
                && !PLACES.contains(&nw)
                && !NOT_NAMES_SET.contains(nw.as_str())
                && !NOT_AFTER_NAME_SET.contains(nw.as_str())
            {
                return Some((extend_suffixes(text, toks, i + 1), 0.6));
            }
        }
    }
    // Capitalised word + capitalised word with a surname ending: "Przemek Kucharski".
    if let Some(n) = next(i + 1) {
        let nw = lower(text, *n);
        let ending = SURNAME_ENDINGS
            .iter()
            .any(|e| nw.ends_with(e) && nw.len() > e.len() + 2);
        if ending
            && !NOT_NAMES_SET.contains(&w)
            && !PLACES.contains(w)
            && !PLACES.contains(&nw)
            && !NOT_AFTER_NAME_SET.contains(&nw.as_str())
        {
            return Some((extend_suffixes(text, toks, i + 1), 0.6));
        }
    }
    None
}

/// Whether token `i` stands in a list next to another (unambiguous) first name: "Gaetane,
/// Hannah, Anthony and Derek". A list of surnames ("Jones, Mitchell and Williams") is more
/// often a firm and does not count.
fn listed_with_first_name(text: &str, toks: &[Tok], i: usize) -> bool {
    let first = |k: usize| {
        toks.get(k).is_some_and(|t| {
            let w = lower(text, *t);
            t.title
                && FIRST.contains(&w)
                && !AMBIGUOUS_FIRST_SET.contains(w.as_str())
                && !COMMON_SURNAMES.contains(&w)
        })
    };
    if COMMON_SURNAMES.contains(&lower(text, toks[i])) {
        return false;
    }
    let gap = |a: usize, b: usize| &text[toks[a].end..toks[b].start];
    let is_and = |k: usize| toks.get(k).is_some_and(|t| &text[t.start..t.end] == "and");
    let before = i >= 1 && gap(i - 1, i) == ", " && first(i - 1)
        || i >= 2
            && is_and(i - 1)
            && gap(i - 1, i) == " "
            && first(i - 2)
            && matches!(gap(i - 2, i - 1), " " | ", ");
    let after = i + 1 < toks.len() && gap(i, i + 1) == ", " && first(i + 1)
        || i + 2 < toks.len()
            && is_and(i + 1)
            && gap(i + 1, i + 2) == " "
            && first(i + 2)
            && matches!(gap(i, i + 1), " " | ", ");
    before || after
}

/// Words before "name:" that make it the name of a thing, not of a person.
const THING_NAMES: &[&str] = &[
    "file", "user", "host", "domain", "project", "company", "product", "brand", "app", "package",
    "variable", "column", "field", "table", "class", "function", "model", "display", "screen",
    "code", "business", "account", "bank", "street", "network", "device", "server",
];

/// "Name: Abby Laidlaw", "What's your last name? Arcuri": a name label or question right
/// before token `i` (line breaks and runs of spaces allowed in between).
fn name_label_before(text: &str, start: usize) -> bool {
    let head = text[..start].trim_end_matches([' ', '\t', '\n', '\r']);
    if start - head.len() > 16 {
        return false;
    }
    let Some(rest) = head.strip_suffix([':', '?']) else {
        return false;
    };
    let rest = rest.trim_end();
    let b = rest.as_bytes();
    if b.len() < 4 || !b[b.len() - 4..].eq_ignore_ascii_case(b"name") {
        return false;
    }
    let head = &rest[..rest.len() - 4];
    // "username:" is not "name:"; "file name:" names a thing.
    if head.ends_with(|c: char| c.is_alphanumeric()) {
        return false;
    }
    let prev_word = head
        .trim_end()
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    !THING_NAMES.contains(&prev_word.as_str())
}

fn cued_person_at(text: &str, toks: &[Tok], i: usize, w: &str) -> Option<(usize, f32)> {
    let before = words_before(text, toks, i);
    let honorific = before
        .last()
        .is_some_and(|b| HONORIFICS_SET.contains(&b.as_str()))
        || name_label_before(text, toks[i].start);
    let next = |k: usize| {
        toks.get(k)
            .filter(|n| n.title && joined(text, toks[k - 1], **n))
    };
    if NOT_NAMES_SET.contains(&w) || PLACE_PREFIXES_SET.contains(&w) && !FIRST.contains(w) {
        return None;
    }
    let is_first = FIRST.contains(w);
    // A cue or an honorific, then one to three capitalised words.
    let cue = cue_matches(&before, PERSON_CUES);
    if honorific || cue.is_some() {
        let weak = cue.is_some_and(|n| {
            PERSON_CUES[n].len() == 1 && WEAK_PERSON_CUES.contains(&PERSON_CUES[n][0])
        }) && !honorific;
        let in_lexicon = is_first || LAST.contains(w);
        // After a weak cue ("and", "with") only a known first name counts: "Jones, Mitchell
        // and Williams" is a firm, "Jack and Jill" are people.
        if weak && !is_first || PLACES.contains(w) && !in_lexicon || NOT_AFTER_NAME_SET.contains(&w)
        {
            return None;
        }
        let mut end = i;
        while end - i < 2 {
            match next(end + 1) {
                Some(n) if !NOT_NAMES_SET.contains(&lower(text, *n).as_str()) => end += 1,
                _ => break,
            }
        }
        let score = if honorific || in_lexicon { 0.85 } else { 0.7 };
        return Some((extend_suffixes(text, toks, end), score));
    }
    None
}

fn place_at(text: &str, toks: &[Tok], i: usize, w: &str) -> Option<(usize, f32)> {
    let before = words_before(text, toks, i);
    let cue = cue_matches(&before, LOCATIVE_CUES).is_some();
    let next = |k: usize| {
        toks.get(k)
            .filter(|n| n.title && joined(text, toks[k - 1], **n))
    };
    // Multi-word places from the lexicon ("New Zealand", "Rio de Janeiro" needs lower words).
    for len in [3usize, 2] {
        if i + len <= toks.len() && (i + 1..i + len).all(|k| next(k).is_some()) {
            let phrase = text[toks[i].start..toks[i + len - 1].end].to_lowercase();
            if PLACES.contains(&phrase) {
                return Some((i + len - 1, if cue { 0.85 } else { 0.7 }));
            }
        }
    }
    // Directional or generic prefix + capitalised word: "East Loriside", "Port Jennifer".
    if PLACE_PREFIXES_SET.contains(&w) {
        if let Some(n) = next(i + 1) {
            let nw = lower(text, *n);
            if !NOT_NAMES_SET.contains(&nw.as_str()) {
                return Some((i + 1, if cue { 0.8 } else { 0.6 }));
            }
        }
        return None;
    }
    // Countries are places wherever they appear, bar the ambiguous ones.
    if COUNTRIES.contains(w) && (cue || !AMBIGUOUS_COUNTRIES_SET.contains(&w)) {
        return Some((i, 0.75));
    }
    if NOT_NAMES_SET.contains(&w) {
        return None;
    }
    let known = PLACES.contains(w);
    let shaped = has_place_suffix(w);
    // "Paris, France" / "Austin, TX": a place followed by its region.
    // The region must be a country or a state, not any town: "Jones, Mitchell" are people.
    let followed_by_region = toks.get(i + 1).is_some_and(|n| {
        &text[t_end(toks, i)..n.start] == ", "
            && (COUNTRIES.contains(&lower(text, *n))
                || US_STATES.contains(&lower(text, *n).as_str())
                || text[n.start..n.end].len() == 2
                    && text[n.start..n.end].bytes().all(|b| b.is_ascii_uppercase()))
    });
    // "to Teresa" is a person even though Teresa is also a town.
    let also_name = FIRST.contains(w);
    if (known || shaped) && (cue && !also_name || followed_by_region) {
        return Some((i, 0.8));
    }
    None
}

/// US states, the regions written after a town ("Austin, Texas").
const US_STATES: &[&str] = &[
    "alabama",
    "alaska",
    "arizona",
    "arkansas",
    "california",
    "colorado",
    "connecticut",
    "delaware",
    "florida",
    "georgia",
    "hawaii",
    "idaho",
    "illinois",
    "indiana",
    "iowa",
    "kansas",
    "kentucky",
    "louisiana",
    "maine",
    "maryland",
    "massachusetts",
    "michigan",
    "minnesota",
    "mississippi",
    "missouri",
    "montana",
    "nebraska",
    "nevada",
    "ohio",
    "oklahoma",
    "oregon",
    "pennsylvania",
    "tennessee",
    "texas",
    "utah",
    "vermont",
    "virginia",
    "washington",
    "wisconsin",
    "wyoming",
];

/// Cues after which even a place missing from the lexicon is a place: "grew up in Remniku",
/// "flew to LEPPEN". Cues that also precede teams or languages ("moved to", "I'm in") need
/// a known place (see [`LOCATIVE_CUES`]).
const STRONG_LOCATIVE_CUES: &[&[&str]] = &[
    &["flew", "to"],
    &["grew", "up", "in"],
    &["born", "in"],
    &["lives", "in"],
    &["live", "in"],
    &["living", "in"],
    &["arrived", "at"],
    &["arrived", "in"],
    &["here", "from"],
    &["originally", "from"],
    &["travelling", "to"],
    &["traveling", "to"],
    &["trip", "to"],
    &["returned", "to"],
    &["based", "in"],
    &["located", "in"],
    &["headquartered", "in"],
    &["city", "of"],
    &["town", "of"],
    &["village", "of"],
    &["university", "of"],
];
/// Last words of the strong cues: a cheap test before the cue itself is read.
const STRONG_CUE_LAST: &[&str] = &["to", "in", "at", "from", "of"];
/// Lower-case words inside place names ("Villafranca del Cid", "Novo mesto" is not covered).
const PLACE_PARTICLES: &[&str] = &[
    "de", "del", "della", "di", "do", "da", "dos", "la", "le", "les", "sur", "am", "an", "nad",
    "upon", "en", "y",
];
/// Words that make a capitalised phrase an organisation, not a place ("based in Acme Labs").
const ORG_WORDS: &[&str] = &[
    "inc",
    "ltd",
    "llc",
    "corp",
    "company",
    "group",
    "labs",
    "systems",
    "solutions",
    "media",
    "press",
    "records",
    "studios",
    "partners",
    "associates",
    "foundation",
    "institute",
    "international",
    "global",
    "bank",
    "club",
    "hotel",
    "university",
    "college",
    "school",
    "hospital",
    "church",
    "museum",
    "library",
    "team",
    "department",
];

fn capitalised(t: Tok) -> bool {
    t.title || t.upper
}

/// A place after a strong locative cue, known or not, of up to four words.
fn strong_place_at(text: &str, toks: &[Tok], i: usize) -> Option<(usize, f32)> {
    let prev = *toks.get(i.checked_sub(1)?)?;
    if &text[prev.end..toks[i].start] != " "
        || !STRONG_CUE_LAST
            .iter()
            .any(|c| text[prev.start..prev.end].eq_ignore_ascii_case(c))
    {
        return None;
    }
    let before = words_before(text, toks, i);
    cue_matches(&before, STRONG_LOCATIVE_CUES)?;
    let w = lower(text, toks[i]);
    if NOT_NAMES_SET.contains(w.as_str()) && !PLACE_PREFIXES_SET.contains(w.as_str()) {
        return None;
    }
    // "flew to Maria Garcia" is a person.
    let spaced = |k: usize| {
        toks.get(k)
            .copied()
            .filter(|n| &text[toks[k - 1].end..n.start] == " ")
    };
    if let Some(n) = spaced(i + 1).filter(|n| n.title) {
        if FIRST.contains(&w) && LAST.contains(&lower(text, n)) {
            return None;
        }
    }
    let mut end = i;
    while end - i < 3 {
        match spaced(end + 1) {
            Some(n) if capitalised(n) => {
                let nw = lower(text, n);
                if NOT_NAMES_SET.contains(nw.as_str()) {
                    break;
                }
                end += 1;
            }
            Some(n)
                if PLACE_PARTICLES.contains(&lower(text, n).as_str())
                    && spaced(end + 2).is_some_and(|m| {
                        capitalised(m) && !NOT_NAMES_SET.contains(lower(text, m).as_str())
                    })
                    && end + 2 - i <= 3 =>
            {
                end += 2;
            }
            _ => break,
        }
    }
    if (i..=end).any(|k| ORG_WORDS.contains(&lower(text, toks[k]).as_str())) {
        return None;
    }
    let phrase = text[toks[i].start..toks[end].end].to_lowercase();
    let known = PLACES.contains(&phrase) || PLACES.contains(&w);
    Some((end, if known { 0.85 } else { 0.6 }))
}

/// A known place in capitals after a locative cue ("in TRONDHEIM"), or a country in capitals.
fn caps_place_at(text: &str, toks: &[Tok], i: usize) -> Option<(usize, f32)> {
    let w = lower(text, toks[i]);
    let mut end = i;
    // "UPTON SCUDAMORE", "UNITED KINGDOM".
    for len in [3usize, 2] {
        if i + len <= toks.len()
            && (i + 1..i + len)
                .all(|k| toks[k].upper && &text[toks[k - 1].end..toks[k].start] == " ")
            && PLACES.contains(&text[toks[i].start..toks[i + len - 1].end].to_lowercase())
        {
            end = i + len - 1;
            break;
        }
    }
    let known = end > i || PLACES.contains(&w);
    if !known {
        return None;
    }
    let before = words_before(text, toks, i);
    // In shouted text ("MUCH MORE TO COME") every word is in capitals: only a strong cue
    // ("GREW UP IN") says the word is a place there.
    let caps = |t: &Tok| t.upper || t.end - t.start >= 2 && rest_upper(&text[t.start..t.end]);
    let shouting = i > 0 && caps(&toks[i - 1]) || toks.get(end + 1).is_some_and(caps);
    let cues = if shouting {
        STRONG_LOCATIVE_CUES
    } else {
        LOCATIVE_CUES
    };
    let cue = cue_matches(&before, cues).is_some();
    if cue || end > i && COUNTRIES.contains(&text[toks[i].start..toks[end].end].to_lowercase()) {
        return Some((end, 0.8));
    }
    if end == i && COUNTRIES.contains(&w) && !AMBIGUOUS_COUNTRIES_SET.contains(w.as_str()) {
        return Some((i, 0.75));
    }
    None
}

fn t_end(toks: &[Tok], i: usize) -> usize {
    toks[i].end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(String, PiiType)> {
        let mut out = Vec::new();
        scan(text, &mut out);
        out.iter()
            .filter(|d| d.score >= 0.5)
            .map(|d| (text[d.start..d.end].to_owned(), d.kind))
            .collect()
    }

    #[test]
    fn first_and_last_name() {
        assert_eq!(
            found("Yesterday Jessica Smith called."),
            vec![("Jessica Smith".into(), PiiType::Person)]
        );
        assert_eq!(
            found("ask Laura Garcia MD about it"),
            vec![("Laura Garcia MD".into(), PiiType::Person)]
        );
        assert_eq!(
            found("John A. Smith signed"),
            vec![("John A. Smith".into(), PiiType::Person)]
        );
    }

    #[test]
    fn cues_and_honorifics() {
        assert_eq!(
            found("Hi, my name is Kari Ford and"),
            vec![("Kari Ford".into(), PiiType::Person)]
        );
        assert_eq!(
            found("Please forward to Dr. Okonkwo today"),
            vec![("Okonkwo".into(), PiiType::Person)]
        );
        assert_eq!(found("Dear Customer, thanks"), vec![]);
    }

    #[test]
    fn lone_common_words_are_not_names() {
        assert!(found("Will you grant me access? May I ask?").is_empty());
        assert!(found("The Python code is in Rust").is_empty());
    }

    #[test]
    fn places() {
        assert_eq!(
            found("They met in North Katiebury on Friday"),
            vec![("North Katiebury".into(), PiiType::Location)]
        );
        assert_eq!(
            found("I moved to Smithtown last year"),
            vec![("Smithtown".into(), PiiType::Location)]
        );
        assert_eq!(
            found("flights from Paris, France"),
            vec![
                ("Paris".into(), PiiType::Location),
                ("France".into(), PiiType::Location)
            ]
        );
        assert_eq!(
            found("She lives in New Zealand"),
            vec![("New Zealand".into(), PiiType::Location)]
        );
        assert!(found("I work in Python and in December").is_empty());
    }

    #[test]
    fn international_names() {
        assert_eq!(
            found("Yesterday Krisztián Szöllösy sent the files"),
            vec![("Krisztián Szöllösy".into(), PiiType::Person)]
        );
        assert_eq!(
            found("A coda by Elínborg Guðmundsdóttir closes it"),
            vec![("Elínborg Guðmundsdóttir".into(), PiiType::Person)]
        );
        assert_eq!(
            found("Tickets for Calquín Cazares are gone"),
            vec![("Calquín Cazares".into(), PiiType::Person)]
        );
    }

    #[test]
    fn lists_labels_and_speakers() {
        let f = found("Olivia, Mateo and Sofia were late.");
        assert!(f.contains(&("Olivia".into(), PiiType::Person)), "{f:?}");
        assert!(f.contains(&("Sofia".into(), PiiType::Person)), "{f:?}");
        assert_eq!(
            found("Margaret: can you check this?"),
            vec![("Margaret".into(), PiiType::Person)]
        );
        assert_eq!(
            found("Full name:\n   Ingrid Haugen"),
            vec![("Ingrid Haugen".into(), PiiType::Person)]
        );
        let f = found("Jones, Mitchell and Williams won the bid");
        assert!(
            !f.iter()
                .any(|(v, k)| v == "Jones" || *k == PiiType::Location),
            "surnames in a list are not towns: {f:?}"
        );
    }

    #[test]
    fn common_words_and_things_are_not_names() {
        for t in [
            "File name: Report",
            "Username: Admin",
            "Many began to leave early.",
            "Honey, we can't do that.",
            "Islam is a religion.",
            "Let's go: Python, Rust and Go are fine.",
            "Summary: Apple and Microsoft released updates.",
        ] {
            let f = found(t);
            assert!(!f.iter().any(|(_, k)| *k == PiiType::Person), "{t}: {f:?}");
        }
    }

    #[test]
    fn places_after_strong_cues_and_in_capitals() {
        assert_eq!(
            found("She grew up in Vøringsfoss before the war"),
            vec![("Vøringsfoss".into(), PiiType::Location)]
        );
        assert_eq!(
            found("He flew to TRONDHEIM on Monday"),
            vec![("TRONDHEIM".into(), PiiType::Location)]
        );
        assert_eq!(
            found("we rushed back from Alabama to Atlanta"),
            vec![
                ("Alabama".into(), PiiType::Location),
                ("Atlanta".into(), PiiType::Location)
            ]
        );
        assert!(found("THANKS! MUCH MORE TO COME").is_empty());
        assert!(found("The team is based in Acme Labs now").is_empty());
        assert!(found("we moved to Kubernetes last year").is_empty());
    }

    #[test]
    fn odd_unicode_is_safe() {
        for t in [
            "İstanbul'dan ǅemal Bijedić geldi",
            "flew to \u{202e}Oslo\u{202c} today",
            "Ünïcödé Jürgen\u{301} Müller\u{200b}Schmidt",
            "grew up in É",
            "Name:",
            "name? ",
            "flew to",
            "Ａｌｉｃｅ Ｓｍｉｔｈ",
        ] {
            let mut out = Vec::new();
            scan(t, &mut out);
            for d in out {
                assert!(
                    t.is_char_boundary(d.start) && t.is_char_boundary(d.end),
                    "{t}"
                );
            }
        }
    }
}
