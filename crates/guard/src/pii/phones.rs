//! Phone numbers: international (+CC, checked against each country's number length),
//! North American (NANP area and exchange rules), national with a trunk 0, after a label
//! ("Phone: 467 3395"), and grouped digits with a phone word near.

use std::sync::LazyLock;

use regex::Regex;

use super::patterns::{IPV4, push, push_near, re};
use super::{Detection, PiiType};

static PHONE_INTL: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\+\d{1,3}(?:[ .\-]?\(0?\d{1,4}\))?(?:[ .\-]?\d{1,5}){1,5}(?:\s?(?:x|ext\.?)\s?\d{1,6})?\b")
});
static PHONE_NANP: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?:\(\d{3}\)\s?|\b\d{3}[ .\-])\d{3}[ .\-]\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,6})?\b")
});
static PHONE_NATIONAL: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:\(0\d{1,4}\)|\b0\d{1,4})(?:[ \-]?\d{2,8}){1,4}\b"));
/// Digits in two to five groups ("78 651 450", "(37) 788-063", "71-33-52-22"): the shape of
/// a national number in many countries, but also of amounts and references, so it counts
/// only with a phone word near (see [`PHONE_GROUPED_CONTEXT`]).
static PHONE_GROUPED: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:\(\d{2,4}\)[ .\-]?|\b\d{2,4}[ .\-])\d{2,4}(?:[ .\-]\d{2,4}){0,3}\b"));
/// Score of a grouped number alone: under the threshold until a phone word is near.
const PHONE_GROUPED_BASE: f32 = 0.3;
/// Words that make a grouped number a phone: the usual phone words, and the labels written
/// after a number in signatures ("416 60 039 office") or around one in calls.
const PHONE_GROUPED_CONTEXT: &[&str] = &[
    "phone",
    "call",
    "tel",
    "telephone",
    "mobile",
    "cell",
    "fax",
    "whatsapp",
    "text me",
    "sms",
    "dial",
    "landline",
    "office",
    "answering",
    "voicemail",
];
const PHONE_CONTEXT: &[&str] = &[
    "phone",
    "call",
    "tel",
    "telephone",
    "mobile",
    "cell",
    "fax",
    "whatsapp",
    "contact",
    "reach",
    "text me",
    "sms",
    "dial",
    "ring",
    "landline",
];

/// Digits of a national significant number allowed per country calling code, for the
/// countries the checklist names (ITU-T E.164 national plans); others: E.164's 4..14.
fn plausible_international(cc_and_rest: &[u8]) -> bool {
    let plans: &[(&[u8], usize, usize)] = &[
        (b"1", 10, 10),
        (b"44", 9, 10),
        (b"49", 6, 13),
        (b"33", 9, 9),
        (b"34", 9, 9),
        (b"31", 9, 9),
        (b"91", 10, 10),
    ];
    for (cc, lo, hi) in plans {
        if let Some(rest) = cc_and_rest.strip_prefix(*cc) {
            return (*lo..=*hi).contains(&rest.len());
        }
    }
    (8..=15).contains(&cc_and_rest.len())
}

static PHONE_LABELLED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:phone|mobile|mob|tel|telephone|cell|fax|desk|office|whatsapp|call me (?:on|at)|reach me (?:on|at))\b\.?:?\s{0,3}(\(?\+?\d{1,4}\)?(?:[ .\-]?\d{2,5}){1,5})",
    )
});

pub(super) fn phones(text: &str, out: &mut Vec<Detection>) {
    // After an explicit label ("Phone: 467 3395") local formats without a country or trunk
    // prefix count too.
    for c in PHONE_LABELLED.captures_iter(text) {
        let Some(m) = c.get(1) else { continue };
        let n = m.as_str().bytes().filter(u8::is_ascii_digit).count();
        if (7..=15).contains(&n) {
            push(out, m.start(), m.end(), PiiType::Phone, 0.8);
        }
    }
    for m in PHONE_INTL.find_iter(text) {
        let s = m.as_str();
        let main = s.split(['x', 'e']).next().unwrap_or(s);
        let mut d: Vec<u8> = main.bytes().filter(u8::is_ascii_digit).collect();
        // "+44 (0)20 …": the trunk 0 in brackets is not dialled internationally.
        if main.contains("(0") {
            if let Some(i) = main.find("(0") {
                let before = main[..i].bytes().filter(u8::is_ascii_digit).count();
                if before < d.len() {
                    d.remove(before);
                }
            }
        }
        if plausible_international(&d) {
            push_near(text, out, &m, PiiType::Phone, 0.75, PHONE_CONTEXT);
        }
    }
    for m in PHONE_NANP.find_iter(text) {
        let d: Vec<u8> = m
            .as_str()
            .split(['x', 'e'])
            .next()
            .unwrap_or("")
            .bytes()
            .filter(u8::is_ascii_digit)
            .collect();
        if d.len() != 10 {
            continue;
        }
        // NANP: area and exchange codes start with 2-9. Numbers breaking that rule but
        // written in the 3-3-4 phone layout still look like phones, with less confidence.
        let valid = d[0] >= b'2' && d[3] >= b'2';
        let base = if valid { 0.65 } else { 0.45 };
        push_near(text, out, &m, PiiType::Phone, base, PHONE_CONTEXT);
    }
    for m in PHONE_NATIONAL.find_iter(text) {
        let s = m.as_str();
        let d: Vec<u8> = s.bytes().filter(u8::is_ascii_digit).collect();
        // National numbers with a trunk 0: UK 10-11 digits, DE 6-14, FR/NL/IN 10-11.
        if !(9..=12).contains(&d.len()) || d.get(1) == Some(&b'0') && d.len() < 11 {
            continue;
        }
        let grouped = s.contains([' ', '-', '(']);
        let base = if grouped { 0.6 } else { 0.35 };
        push_near(text, out, &m, PiiType::Phone, base, PHONE_CONTEXT);
    }
    for m in PHONE_GROUPED.find_iter(text) {
        let s = m.as_str();
        let digits = s.bytes().filter(u8::is_ascii_digit).count();
        // A dotted quad is an IP address, and d/m/y or y-m-d shapes are dates.
        if !(7..=12).contains(&digits) || IPV4.is_match(s) || date_shaped(s) {
            continue;
        }
        push_near(
            text,
            out,
            &m,
            PiiType::Phone,
            PHONE_GROUPED_BASE,
            PHONE_GROUPED_CONTEXT,
        );
    }
}

/// Whether `s` (digits and separators) reads as a date: three groups with one of four
/// digits at either end ("12-05-2020", "2020.05.12").
fn date_shaped(s: &str) -> bool {
    let groups: Vec<&str> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    groups.len() == 3
        && (groups[0].len() == 4 && groups[1].len() <= 2 && groups[2].len() <= 2
            || groups[2].len() == 4 && groups[0].len() <= 2 && groups[1].len() <= 2)
}
