//! Person names and places: capitalised tokens confirmed by a lexicon (US Census first and
//! last names, GeoNames places) or by a cue ("my name is", "Dear", "Dr.", "lives in").
//!
//! A name needs two signals — first name *and* surname, or a cue and a capitalised word — so
//! a lone "Will" or "Grant" at the start of a sentence is not a person.

mod lexicon;
mod places;

use lexicon::*;
use places::{caps_place_at, place_at, strong_place_at};

use super::{Detection, PiiType};

#[derive(Debug, Clone, Copy)]
struct Tok {
    start: usize,
    end: usize,
    title: bool,
    /// All capitals, three letters or more ("LAPPEENRANTA", "NASA").
    upper: bool,
}

/// ASCII byte classes of the name tokenizer: one table load per byte instead of range tests
/// (the tokenizer reads every byte of the text, and was most of the name scan's cost).
const OTHER: u8 = 0;
const LOWER: u8 = 1;
const UPPER: u8 = 2;
/// An apostrophe or a hyphen, which may join two parts of a name (O'Connor, Smith-Jones).
const JOINER: u8 = 3;
const NON_ASCII: u8 = 4;
const CLASS: [u8; 256] = {
    let mut t = [NON_ASCII; 256];
    let mut b = 0;
    while b < 0x80 {
        let c = b as u8;
        t[b] = if c.is_ascii_lowercase() {
            LOWER
        } else if c.is_ascii_uppercase() {
            UPPER
        } else if c == b'\'' || c == b'-' {
            JOINER
        } else {
            OTHER
        };
        b += 1;
    }
    t
};

// Not inlined: inlined into `scan`, the same loop cost 14k more instructions on the 4 KB
// benchmark prompt (callgrind), the scan's own state crowding the tokenizer's registers.
#[inline(never)]
fn tokenize(text: &str) -> Vec<Tok> {
    let bytes = text.as_bytes();
    // About one word per five bytes of prose: growing the vector mid-scan copied it whole.
    let mut toks = Vec::with_capacity(text.len() / 4 + 1);
    let mut i = 0;
    // Byte loop with an ASCII fast path: prose is mostly ASCII and this runs on every word.
    while let Some(&b) = bytes.get(i) {
        let start = i;
        let first_upper = match CLASS[usize::from(b)] {
            LOWER => false,
            UPPER => true,
            NON_ASCII => {
                let Some(c) = text.get(i..).and_then(|rest| rest.chars().next()) else {
                    break;
                };
                i += c.len_utf8();
                if !c.is_alphabetic() {
                    continue;
                }
                c.is_uppercase()
            }
            _ => {
                i += 1;
                continue;
            }
        };
        if b < 0x80 {
            i += 1;
        }
        let mut rest_lower = true;
        let mut len_chars = 1usize;
        while let Some(&b) = bytes.get(i) {
            match CLASS[usize::from(b)] {
                LOWER => {
                    len_chars += 1;
                    i += 1;
                }
                UPPER => {
                    rest_lower = false;
                    len_chars += 1;
                    i += 1;
                }
                // Apostrophes and hyphens inside a word: O'Connor, Smith-Jones; but a
                // possessive "'s" ends the word, so that "Szczepańska's" is looked up as
                // "Szczepańska".
                JOINER
                    if bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic)
                        && !(b == b'\'' && possessive_s(bytes, i + 1)) =>
                {
                    i += 1;
                }
                NON_ASCII => {
                    let Some(d) = text.get(i..).and_then(|rest| rest.chars().next()) else {
                        break;
                    };
                    if d.is_alphabetic() {
                        rest_lower &= !d.is_uppercase();
                        len_chars += 1;
                        i += d.len_utf8();
                    } else if d == '’'
                        && text
                            .get(i + d.len_utf8()..)
                            .is_some_and(|rest| rest.starts_with(char::is_alphabetic))
                        && !possessive_s(bytes, i + d.len_utf8())
                    {
                        i += d.len_utf8();
                    } else {
                        break;
                    }
                }
                _ => break,
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

/// Whether `bytes[at..]` is the "s" of a possessive: an `s` or `S` that ends the word.
fn possessive_s(bytes: &[u8], at: usize) -> bool {
    matches!(bytes.get(at), Some(b's' | b'S'))
        && bytes
            .get(at + 1)
            .is_none_or(|&b| b.is_ascii() && !b.is_ascii_alphanumeric())
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
                strong_place_at(text, &toks, i)
                    .or_else(|| caps_place_at(text, &toks, i))
                    .map(|(e, s)| (e, s, PiiType::Location))
            } else if t.end - t.start >= 3
                && i.checked_sub(1)
                    .and_then(|k| toks.get(k))
                    .and_then(|p| cue_key_at(text.as_bytes(), p))
                    .is_some_and(|k| matches!(k, IS | IM | AM | ME | IN | FROM | TO | NEAR | VIA))
            {
                lowercase_at(text, &toks, i)
            } else {
                None
            };
            if let Some((end_tok, score, kind)) = found {
                out.push(Detection {
                    start: t.start,
                    end: toks[end_tok].end,
                    kind,
                    score,
                });
                last_place = (kind == PiiType::Location).then_some(end_tok);
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
        let found = street_name_at(text, &toks, i)
            .map(|(e, s)| (e, s, PiiType::StreetAddress))
            .or_else(|| strong_place_at(text, &toks, i).map(|(e, s)| (e, s, PiiType::Location)))
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

/// A cue word of [`lowercase_at`] (two to four bytes) as one integer, with ASCII letters
/// folded to lower case (`| 0x20`): comparing integers costs no `memcmp` per word.
const fn cue_key(word: &[u8]) -> u32 {
    let mut k = 0u32;
    let mut n = 0;
    while n < word.len() {
        k |= ((word[n] | 0x20) as u32) << (8 * n);
        n += 1;
    }
    k
}
const IS: u32 = cue_key(b"is");
const IM: u32 = cue_key(b"i'm");
const AM: u32 = cue_key(b"am");
const ME: u32 = cue_key(b"me");
const IN: u32 = cue_key(b"in");
const FROM: u32 = cue_key(b"from");
const TO: u32 = cue_key(b"to");
const NEAR: u32 = cue_key(b"near");
const VIA: u32 = cue_key(b"via");

/// The key of token `t` if it is two to four bytes long, the length of every cue.
#[inline]
fn cue_key_at(bytes: &[u8], t: &Tok) -> Option<u32> {
    let word = bytes.get(t.start..t.end)?;
    match *word {
        [a, b] => Some(u32::from_le_bytes([a | 0x20, b | 0x20, 0, 0])),
        [a, b, c] => Some(u32::from_le_bytes([a | 0x20, b | 0x20, c | 0x20, 0])),
        [a, b, c, d] => Some(u32::from_le_bytes([a | 0x20, b | 0x20, c | 0x20, d | 0x20])),
        _ => None,
    }
}

/// Countries that are also common lower-case words ("stuffing the turkey", "fine china").
const LOWERCASE_AMBIGUOUS_COUNTRIES: &[&str] = &[
    "turkey", "chad", "jordan", "georgia", "guinea", "jersey", "niger", "china", "mali", "togo",
];

/// A name or a country typed in lower case, as people type in chat: only right after an
/// explicit cue ("my name is john smith", "i'm sarah.", "i'm originally from switzerland"),
/// and only words of the lexicons. The cue is tested first, with byte comparisons of the
/// words before: this runs on every lower-case word of a text, which is most of them.
#[inline(never)]
fn lowercase_at(text: &str, toks: &[Tok], i: usize) -> Option<(usize, f32, PiiType)> {
    let t = toks[i];
    let prev = i.checked_sub(1).and_then(|k| toks.get(k))?;
    let p = cue_key_at(text.as_bytes(), prev)?;
    let (cue_name, cue_place) = match p {
        IS | IM | AM | ME => (true, false),
        IN | FROM | TO | NEAR | VIA => (false, true),
        _ => return None,
    };
    // One space between cue and word (a byte test: a slice comparison called `memcmp`).
    if t.start != prev.end + 1 || text.as_bytes().get(prev.end) != Some(&b' ') {
        return None;
    }
    let word = |k: usize| {
        toks.get(k)
            .and_then(|x| text.get(x.start..x.end))
            .unwrap_or_default()
    };
    let is = |k: Option<usize>, w: &str| k.is_some_and(|k| word(k).eq_ignore_ascii_case(w));
    let two_back = i.checked_sub(2);
    let lower_word = text.get(t.start..t.end)?;
    // "my name is", "name is": whatever follows is a name.
    let named = cue_name && p == IS && is(two_back, "name");
    // "i'm", "i am", "call me", "this is": a first name, then a surname or the clause's end.
    let introduced = cue_name
        && (p == IM
            || p == AM && is(two_back, "i")
            || p == ME && (is(two_back, "call") || is(two_back, "calls"))
            || p == IS && is(two_back, "this"));
    if named || introduced {
        let known_first = FIRST.contains(lower_word)
            && lower_word.len() >= 3
            && !AMBIGUOUS_FIRST_SET.contains(lower_word)
            && !NOT_NAMES_SET.contains(lower_word)
            && !COUNTRIES.contains(lower_word);
        let surname = toks
            .get(i + 1)
            .filter(|n| text.get(t.end..n.start) == Some(" "))
            .is_some_and(|n| text.get(n.start..n.end).is_some_and(|s| LAST.contains(s)));
        let clause_end = text
            .get(t.end..)
            .and_then(|rest| rest.chars().next())
            .is_none_or(|c| matches!(c, '.' | ',' | '!' | '?' | ';' | ':' | '\n' | ')'));
        let found = if named {
            known_first || LAST.contains(lower_word) && lower_word.len() >= 3
        } else {
            known_first && (surname || clause_end)
        };
        if found {
            let end = if surname { i + 1 } else { i };
            return Some((end, 0.7, PiiType::Person));
        }
        return None;
    }
    // "from switzerland", "moved to new zealand".
    if !cue_place || lower_word.len() < 3 {
        return None;
    }
    if COUNTRIES.contains(lower_word) {
        return (!LOWERCASE_AMBIGUOUS_COUNTRIES.contains(&lower_word)).then_some((
            i,
            0.7,
            PiiType::Location,
        ));
    }
    // Two words only when the first begins a two-word country ("new", "south", "costa").
    if !COUNTRY_FIRST_WORDS.contains(lower_word) {
        return None;
    }
    let next = toks.get(i + 1)?;
    let two = text.get(t.start..next.end)?;
    (next.start == t.end + 1 && COUNTRIES.contains(two)).then_some((i + 1, 0.7, PiiType::Location))
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
            if STREET_WORDS_SET.contains(nw.as_str()) {
                return None;
            }
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
                let ending = surname_shaped(&nw, 1);
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
        // "Leif, can I…": a comma and a lower-case word after a name that opens a line.
        let after = &text[toks[i].end..];
        let addressed = after.starts_with(':')
            || after
                .strip_prefix(", ")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_lowercase()));
        // "from Alabama to Atlanta": a known place after a locative cue is the place.
        let place_cued = PLACES.contains(w)
            && cue_matches(&words_before(text, toks, i), LOCATIVE_CUES).is_some();
        let in_list = listed_with_first_name(text, toks, i);
        let verb_after = verb_after(text, toks, i);
        let followed_by_noun = next(i + 1).is_some();
        if (mid_sentence || verb_after || in_list || line_start && addressed)
            && !followed_by_noun
            && !place_cued
        {
            return Some((extend_suffixes(text, toks, i), 0.55));
        }
    }
    // Two capitalised words, one a known first name or surname, that are a line of their
    // own (a signature or a contact card: "Maha Cazares\nSpain"), or that a verb said of
    // people follows ("Tosh Olsen lives at…", "Willemine Pas said").
    if let Some(n) = next(i + 1) {
        let nw = lower(text, *n);
        let known = is_first && !AMBIGUOUS_FIRST_SET.contains(w) || LAST.contains(&nw);
        let plain = |x: &str| {
            !NOT_NAMES_SET.contains(x)
                && !NOT_AFTER_NAME_SET.contains(x)
                && !STREET_WORDS_SET.contains(x)
                && !PLACES.contains(x)
                && !COUNTRIES.contains(x)
        };
        if known
            && plain(w)
            && plain(&nw)
            && (own_line(text, toks, i, i + 1) || person_verb_after(text, toks, i + 1))
        {
            return Some((extend_suffixes(text, toks, i + 1), 0.6));
        }
    }
    // A capitalised word with letters outside ASCII and a known surname: "Calquín Cazares".
    if !is_first && !w.is_ascii() && !PLACES.contains(w) {
        if let Some(n) = next(i + 1) {
            let nw = lower(text, *n);
            if LAST.contains(&nw)
                && !PLACES.contains(&nw)
                && !STREET_WORDS_SET.contains(nw.as_str())
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
        if surname_shaped(&nw, 2)
            && !STREET_WORDS_SET.contains(nw.as_str())
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

/// Whether a verb said of people ("said", "lives", "was") follows token `i`.
fn verb_after(text: &str, toks: &[Tok], i: usize) -> bool {
    toks.get(i + 1).is_some_and(|n| {
        !n.title
            && &text[toks[i].end..n.start] == " "
            && AFTER_NAME_VERBS_SET.contains(&lower(text, *n).as_str())
    })
}

/// Verbs of [`AFTER_NAME_VERBS`] said of people only: firms and titles are, have and will
/// too ("Berkshire Hathaway is…", "Entertainment Weekly and…").
const NOT_PERSON_ONLY_VERBS: &[&str] = &["is", "was", "has", "had", "will", "would", "and", "just"];

/// Whether a verb said of people only ("lives", "said", "told") follows token `i`.
fn person_verb_after(text: &str, toks: &[Tok], i: usize) -> bool {
    verb_after(text, toks, i)
        && toks
            .get(i + 1)
            .is_some_and(|n| !NOT_PERSON_ONLY_VERBS.contains(&lower(text, *n).as_str()))
}

/// Whether tokens `first..=last` make a line of their own: nothing but spaces and quoting
/// marks ("> ", "??? ") before them on their line, and nothing but spaces after.
fn own_line(text: &str, toks: &[Tok], first: usize, last: usize) -> bool {
    let head = &text[..toks[first].start];
    let line_head = head.rsplit('\n').next().unwrap_or(head);
    let tail = &text[toks[last].end..];
    let line_tail = tail.split('\n').next().unwrap_or(tail);
    line_head
        .chars()
        .all(|c| c.is_whitespace() || matches!(c, '>' | '?' | '*' | '-' | '|'))
        && line_tail.trim().is_empty()
}

/// Whether `word` (lower case) ends like a surname ("Kucharski", "Petersson") with at least
/// `extra` letters before the ending. Nouns in "-person" ("Salesperson") end in "son" too.
fn surname_shaped(word: &str, extra: usize) -> bool {
    !word.ends_with("person")
        && SURNAME_ENDINGS
            .iter()
            .any(|e| word.ends_with(e) && word.len() > e.len() + extra)
}

/// A street named after a person or a thing, written without a number after a conjunction
/// or a preposition: "the corner of Kuusiku 7 and Alexander Flat", "on Inna Loop". Such a
/// name is a street, not a person.
fn street_name_at(text: &str, toks: &[Tok], i: usize) -> Option<(usize, f32)> {
    let prev = *toks.get(i.checked_sub(1)?)?;
    let n = *toks.get(i + 1)?;
    if !n.title
        || !joined(text, toks[i], n)
        || &text[prev.end..toks[i].start] != " "
        || !STREET_WORDS_SET.contains(lower(text, n).as_str())
        || !["and", "on", "at", "of"].contains(&lower(text, prev).as_str())
    {
        return None;
    }
    Some((i + 1, 0.6))
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
                Some(n) if STREET_WORDS_SET.contains(lower(text, *n).as_str()) => return None,
                Some(n) if !NOT_NAMES_SET.contains(&lower(text, *n).as_str()) => end += 1,
                _ => break,
            }
        }
        let score = if honorific || in_lexicon { 0.85 } else { 0.7 };
        return Some((extend_suffixes(text, toks, end), score));
    }
    None
}

#[cfg(test)]
mod tests;
