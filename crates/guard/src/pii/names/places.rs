//! Places: known places from the GeoNames lexicon after a locative cue, place-shaped words
//! ("Smithtown", "East Loriside"), countries, places in capitals, and unknown places after a
//! strong cue ("grew up in Remniku").

use super::lexicon::*;
use super::{Tok, cue_matches, joined, lower, rest_upper, words_before};

pub(super) fn has_place_suffix(word: &str) -> bool {
    PLACE_SUFFIXES
        .iter()
        .any(|s| word.len() > s.len() + 2 && word.ends_with(s))
}

pub(super) fn place_at(text: &str, toks: &[Tok], i: usize, w: &str) -> Option<(usize, f32)> {
    // Whether a locative cue ("lives in") precedes: looked up only where it decides, since
    // most capitalised words are no place at all and the look-up allocates the words.
    let cue = || cue_matches(&words_before(text, toks, i), LOCATIVE_CUES).is_some();
    let next = |k: usize| {
        toks.get(k)
            .filter(|n| n.title && joined(text, toks[k - 1], **n))
    };
    // Multi-word places from the lexicon ("New Zealand", "Rio de Janeiro" needs lower words).
    for len in [3usize, 2] {
        if i + len <= toks.len() && (i + 1..i + len).all(|k| next(k).is_some()) {
            let phrase = text[toks[i].start..toks[i + len - 1].end].to_lowercase();
            if PLACES.contains(&phrase) {
                return Some((i + len - 1, if cue() { 0.85 } else { 0.7 }));
            }
        }
    }
    // Directional or generic prefix + capitalised word: "East Loriside", "Port Jennifer".
    if PLACE_PREFIXES_SET.contains(&w) {
        if let Some(n) = next(i + 1) {
            let nw = lower(text, *n);
            if !NOT_NAMES_SET.contains(&nw.as_str()) {
                return Some((i + 1, if cue() { 0.8 } else { 0.6 }));
            }
        }
        return None;
    }
    // Countries are places wherever they appear, bar the ambiguous ones.
    if COUNTRIES.contains(w) && (cue() || !AMBIGUOUS_COUNTRIES_SET.contains(&w)) {
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
    let also_name = || FIRST.contains(w);
    if (known || shaped) && (cue() && !also_name() || followed_by_region) {
        return Some((i, 0.8));
    }
    None
}

/// US states, the regions written after a town ("Austin, Texas").
pub(super) const US_STATES: &[&str] = &[
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
pub(super) const STRONG_LOCATIVE_CUES: &[&[&str]] = &[
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
    &["home", "city"],
    &["home", "town"],
    &["hometown"],
];
/// Last words of the strong cues: a cheap test before the cue itself is read.
pub(super) const STRONG_CUE_LAST: &[&str] =
    &["to", "in", "at", "from", "of", "city", "town", "hometown"];
/// Lower-case words inside place names ("Villafranca del Cid", "Novo mesto" is not covered).
pub(super) const PLACE_PARTICLES: &[&str] = &[
    "de", "del", "della", "di", "do", "da", "dos", "la", "le", "les", "sur", "am", "an", "nad",
    "upon", "en", "y",
];
/// Words that make a capitalised phrase an organisation, not a place ("based in Acme Labs").
pub(super) const ORG_WORDS: &[&str] = &[
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

pub(super) fn capitalised(t: Tok) -> bool {
    t.title || t.upper
}

/// A place after a strong locative cue, known or not, of up to four words.
pub(super) fn strong_place_at(text: &str, toks: &[Tok], i: usize) -> Option<(usize, f32)> {
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
pub(super) fn caps_place_at(text: &str, toks: &[Tok], i: usize) -> Option<(usize, f32)> {
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

pub(super) fn t_end(toks: &[Tok], i: usize) -> usize {
    toks[i].end
}
