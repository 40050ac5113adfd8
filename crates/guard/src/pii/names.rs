//! Person names and places: capitalised tokens confirmed by a lexicon (US Census first and
//! last names, GeoNames places) or by a cue ("my name is", "Dear", "Dr.", "lives in").
//!
//! A name needs two signals — first name *and* surname, or a cue and a capitalised word — so
//! a lone "Will" or "Grant" at the start of a sentence is not a person.

use std::collections::HashSet;
use std::sync::LazyLock;

use super::{Detection, PiiType};

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
    "said", "says", "spent", "is", "was", "has", "had", "went", "will", "would", "told", "asked",
    "wrote", "lives", "lived", "works", "worked", "joined", "left", "called", "met", "sent",
    "wants", "thinks", "believes", "just", "and",
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
    "shvili", "dze", "ssen", "ulis", "aitis", "opoulos", "akis", "ero", "etti",
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
        toks.push(Tok {
            start,
            end: i,
            title,
        });
    }
    toks
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
            i += 1;
            continue;
        }
        let w = lower(text, t);
        // "Paris, France", "Austin, TX": the region after a place is a place too.
        if let Some(p) = last_place {
            let region = PLACES.contains(&w)
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
        let found = full_name_at(text, &toks, i, &w)
            .map(|(e, s)| (e, s, PiiType::Person))
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
    // at a sentence start followed by a verb: "I met Emma", "Magnus spent a year".
    if is_first && !AMBIGUOUS_FIRST_SET.contains(&w) {
        let mid_sentence = i > 0 && {
            let gap = &text[toks[i - 1].end..toks[i].start];
            !gap.contains(['.', '!', '?', '\n', ':', '"', '(']) && !toks[i - 1].title
        };
        let verb_after = toks.get(i + 1).is_some_and(|n| {
            !n.title
                && &text[toks[i].end..n.start] == " "
                && AFTER_NAME_VERBS_SET.contains(&lower(text, *n).as_str())
        });
        let followed_by_noun = next(i + 1).is_some();
        if (mid_sentence || verb_after) && !followed_by_noun {
            return Some((extend_suffixes(text, toks, i), 0.55));
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

fn cued_person_at(text: &str, toks: &[Tok], i: usize, w: &str) -> Option<(usize, f32)> {
    let before = words_before(text, toks, i);
    let honorific = before
        .last()
        .is_some_and(|b| HONORIFICS_SET.contains(&b.as_str()));
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
    let followed_by_region = toks.get(i + 1).is_some_and(|n| {
        &text[t_end(toks, i)..n.start] == ", "
            && (PLACES.contains(&lower(text, *n))
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
}
