//! Pattern recognizers: identifiers with a fixed shape, confirmed by their check digits or
//! number rules before they count, then scored up by context words.

use std::sync::LazyLock;

use regex::Regex;

use super::checksum;
use super::context::{BOOST, near};
use super::phones::phones;
use super::{Detection, PiiType};

pub(super) fn re(pattern: &str) -> Regex {
    // Every pattern here is a constant exercised by the tests; an impossible failure yields
    // a regex that matches nothing rather than a panic in the request path.
    Regex::new(pattern).unwrap_or_else(|_| unreachable_regex())
}

#[expect(
    clippy::expect_used,
    reason = "a regex of an empty class always compiles"
)]
fn unreachable_regex() -> Regex {
    Regex::new("[^\\s\\S]").expect("empty class")
}

pub(super) fn push(out: &mut Vec<Detection>, start: usize, end: usize, kind: PiiType, score: f32) {
    out.push(Detection {
        start,
        end,
        kind,
        score: score.min(1.0),
    });
}

pub(super) fn boosted(text: &str, start: usize, end: usize, base: f32, words: &[&str]) -> f32 {
    if near(text, start, end, words) {
        base + BOOST
    } else {
        base
    }
}

/// Push match `m` as `kind` with score `base`, raised when a word of `context` is near.
pub(super) fn push_near(
    text: &str,
    out: &mut Vec<Detection>,
    m: &regex::Match<'_>,
    kind: PiiType,
    base: f32,
    context: &[&str],
) {
    push(
        out,
        m.start(),
        m.end(),
        kind,
        boosted(text, m.start(), m.end(), base, context),
    );
}

fn compact(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| b.to_ascii_uppercase())
        .collect()
}

/// Bytes of context kept before a digit when cutting windows (covers context words).
const WINDOW_BEFORE: usize = 72;
/// Bytes kept after a digit (covers a street name and type after a house number).
const WINDOW_AFTER: usize = 96;

/// How far a window edge moves to reach whitespace before it settles for a char boundary.
const MAX_WORD_EXTENSION: usize = 64;

/// Windows of `text` around its digits, merged, cut at whitespace. Every identifier below
/// contains digits, so prose between numbers is never scanned by the numeric recognizers:
/// a 4 KB prompt with one phone number costs one small window, not fourteen full scans.
fn digit_windows(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut windows: Vec<(usize, usize)> = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        // Prose has few digits: eight bytes at a time are skipped until a chunk holds one
        // (a byte-by-byte loop here was most of the PII scan's own cost on a 4 KB prompt).
        if let Some(chunk) = bytes
            .get(pos..pos + 8)
            .and_then(|c| <[u8; 8]>::try_from(c).ok())
            && !has_ascii_digit(chunk)
        {
            pos += 8;
            continue;
        }
        let i = pos;
        pos += 1;
        if !bytes[i].is_ascii_digit() {
            continue;
        }
        // A digit well inside the current window cannot grow it: skip the work.
        if windows.last().is_some_and(|w| i + WINDOW_AFTER <= w.1) {
            continue;
        }
        // Cut at whitespace when there is some nearby, else at a character boundary: a long
        // run without spaces (base64, minified JSON) must not make every digit rescan it.
        let mut start = i.saturating_sub(WINDOW_BEFORE);
        let floor = start.saturating_sub(MAX_WORD_EXTENSION);
        while start > floor && !bytes[start - 1].is_ascii_whitespace() {
            start -= 1;
        }
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (i + WINDOW_AFTER).min(bytes.len());
        let ceiling = (end + MAX_WORD_EXTENSION).min(bytes.len());
        while end < ceiling && !bytes[end].is_ascii_whitespace() {
            end += 1;
        }
        while !text.is_char_boundary(end) {
            end += 1;
        }
        match windows.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => windows.push((start, end)),
        }
    }
    windows
}

/// Whether any of eight bytes is an ASCII digit, in one word (SWAR): `b ^ 0x30` maps exactly
/// the digits to `0..=9`, and the classic "has a byte below n" test (exact for n <= 128)
/// finds one.
fn has_ascii_digit(chunk: [u8; 8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let x = u64::from_le_bytes(chunk) ^ (0x30 * ONES);
    x.wrapping_sub(10 * ONES) & !x & HIGHS != 0
}

/// Run every pattern recognizer over `text`.
pub fn scan(text: &str, out: &mut Vec<Detection>) {
    if text.contains('@') {
        email(text, out);
    }
    if text.contains("://") || text.contains("www.") {
        url(text, out);
    }
    for (from, to) in digit_windows(text) {
        // Windows start and end on char boundaries (at whitespace when there is some near).
        let Some(window) = text.get(from..to) else {
            continue;
        };
        let mut local = Vec::new();
        cards(window, &mut local);
        iban(window, &mut local);
        us_ids(window, &mut local);
        phones(window, &mut local);
        ip(window, &mut local);
        mac(window, &mut local);
        wallets(window, &mut local);
        uk_ids(window, &mut local);
        in_aadhaar(window, &mut local);
        es_ids(window, &mut local);
        dates(window, &mut local);
        super::address::scan(window, &mut local);
        out.extend(local.into_iter().map(|d| Detection {
            start: d.start + from,
            end: d.end + from,
            ..d
        }));
    }
}

/// Every family, for profiling.
pub fn families() -> Vec<(&'static str, super::Recognizer)> {
    vec![
        ("email", email),
        ("url", url),
        ("cards", cards),
        ("iban", iban),
        ("us_ids", us_ids),
        ("phones", phones),
        ("ip", ip),
        ("mac", mac),
        ("wallets", wallets),
        ("uk_ids", uk_ids),
        ("in_aadhaar", in_aadhaar),
        ("es_ids", es_ids),
        ("dates", dates),
        ("addresses", super::address::scan),
    ]
}

/// Longest local part (RFC 5321).
const MAX_LOCAL: usize = 64;
/// Longest domain (RFC 1035).
const MAX_DOMAIN: usize = 253;

/// E-mail addresses, found from each `@` outwards: a regex that starts with a character
/// class has no literal to search for and scans every byte, which made this recognizer the
/// slowest of all; anchoring on `@` keeps it at memchr speed.
fn email(text: &str, out: &mut Vec<Detection>) {
    let local_char = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-');
    let domain_char = |c: char| c.is_alphanumeric() || matches!(c, '.' | '-');
    let mut from = 0;
    while let Some(rel) = text[from..].find('@') {
        let at = from + rel;
        from = at + 1;
        // Local part: walk left over allowed characters.
        let mut start = at;
        for (i, c) in text[..at].char_indices().rev() {
            if !local_char(c) || at - i > MAX_LOCAL {
                break;
            }
            start = i;
        }
        // It must begin with a letter or digit (trim leading dots and pluses).
        while start < at && !text[start..].starts_with(char::is_alphanumeric) {
            start += text[start..].chars().next().map_or(1, char::len_utf8);
        }
        if start == at {
            continue;
        }
        let mut end = at + 1;
        for (i, c) in text[at + 1..].char_indices() {
            if !domain_char(c) || i >= MAX_DOMAIN {
                break;
            }
            end = at + 1 + i + c.len_utf8();
        }
        // Sentence punctuation after the address is not part of it.
        while end > at + 1 && text[..end].ends_with(['.', '-']) {
            end -= 1;
        }
        let domain = &text[at + 1..end];
        let labels: Vec<&str> = domain.split('.').collect();
        let tld_ok = labels
            .last()
            .is_some_and(|t| t.chars().count() >= 2 && t.chars().all(char::is_alphabetic));
        let labels_ok = labels.len() >= 2
            && labels
                .iter()
                .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
        if tld_ok && labels_ok {
            push(out, start, end, PiiType::Email, 0.95);
        }
    }
}

static URL: LazyLock<Regex> = LazyLock::new(|| re(r#"(?i)\b(?:https?://|www\.)[^\s<>"'`]+"#));

fn url(text: &str, out: &mut Vec<Detection>) {
    for m in URL.find_iter(text) {
        // Sentence punctuation after a URL is not part of it.
        let s = m
            .as_str()
            .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '\'', '"']);
        if s.len() > 8 {
            push(out, m.start(), m.start() + s.len(), PiiType::Url, 0.6);
        }
    }
}

static CARD: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d(?:[ \-]?\d){11,18}\b"));
const CARD_CONTEXT: &[&str] = &[
    "card",
    "credit",
    "debit",
    "visa",
    "mastercard",
    "amex",
    "cc",
    "payment",
    "pay",
    "cvv",
    "expiry",
];

/// Whether the card number's prefix and length belong to a known network.
fn card_network(d: &[u8]) -> bool {
    let n = |k: usize| -> u32 { d[..k].iter().fold(0, |a, &c| a * 10 + u32::from(c - b'0')) };
    let len = d.len();
    if len < 12 {
        return false;
    }
    match d[0] {
        b'4' => matches!(len, 13 | 16 | 19),
        // Old 15-digit JCB ranges.
        b'1' => n(4) == 1800 && len == 15,
        b'5' => {
            (51..=55).contains(&n(2)) && len == 16
                || (50..=59).contains(&n(2)) && (12..=19).contains(&len)
        }
        b'2' => (2221..=2720).contains(&n(4)) && len == 16 || n(4) == 2131 && len == 15,
        b'3' => {
            (n(2) == 34 || n(2) == 37) && len == 15
                || (3528..=3589).contains(&n(4)) && (16..=19).contains(&len)
                || ((300..=305).contains(&n(3)) || n(2) == 36 || n(2) == 38 || n(2) == 39)
                    && (14..=19).contains(&len)
        }
        b'6' => {
            (16..=19).contains(&len)
                || (12..=19).contains(&len) && (n(2) == 67 || n(2) == 63 || n(2) == 60)
        }
        _ => false,
    }
}

fn cards(text: &str, out: &mut Vec<Detection>) {
    for m in CARD.find_iter(text) {
        let s = m.as_str();
        // Mixed separators ("1234-5678 9012") are not how cards are written.
        if s.contains(' ') && s.contains('-') {
            continue;
        }
        let d = compact(s);
        if !checksum::luhn(&d) || d.iter().all(|&c| c == d[0]) {
            continue;
        }
        // A Luhn-valid number outside the known networks' ranges is a card only when the
        // text says so ("my card 3502…").
        let base = if !card_network(&d) {
            0.3
        } else if s.contains([' ', '-']) || d.len() == 16 {
            0.85
        } else {
            0.6
        };
        push_near(text, out, &m, PiiType::CreditCard, base, CARD_CONTEXT);
    }
}

static IBAN: LazyLock<Regex> = LazyLock::new(|| re(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{1,4}){3,8}\b"));

fn iban(text: &str, out: &mut Vec<Detection>) {
    let mut pos = 0;
    while let Some(m) = IBAN.find_at(text, pos) {
        // The greedy match may swallow following words (even a second IBAN); shrink until
        // the checksum holds, and resume right after what was accepted.
        let s = m.as_str();
        let mut end = s.len();
        let mut accepted = None;
        loop {
            let cand = s[..end].trim_end();
            if checksum::iban(&compact(cand)) {
                accepted = Some(cand.len());
                break;
            }
            match cand.rfind(' ') {
                Some(i) if i > 4 => end = i,
                _ => break,
            }
        }
        match accepted {
            Some(len) => {
                push(out, m.start(), m.start() + len, PiiType::Iban, 0.95);
                pos = m.start() + len;
            }
            None => pos = m.start() + 1,
        }
        while pos < text.len() && !text.is_char_boundary(pos) {
            pos += 1;
        }
    }
}

static SSN: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d{3}([ \-]?)\d{2}([ \-]?)\d{4}\b"));
const SSN_CONTEXT: &[&str] = &[
    "ssn",
    "social security",
    "social",
    "security number",
    "ss#",
    "ssn#",
];
const ITIN_CONTEXT: &[&str] = &["itin", "taxpayer", "tax id", "tin", "tax"];
const ROUTING_CONTEXT: &[&str] = &["routing", "aba", "rtn", "transit", "bank", "wire", "ach"];

fn us_ids(text: &str, out: &mut Vec<Detection>) {
    for c in SSN.captures_iter(text) {
        let Some(m) = c.get(0) else { continue };
        let (s1, s2) = (
            c.get(1).map_or("", |x| x.as_str()),
            c.get(2).map_or("", |x| x.as_str()),
        );
        let d = compact(m.as_str());
        let formatted = !s1.is_empty() && s1 == s2;
        if s1 != s2 {
            continue;
        }
        if checksum::itin(&d) {
            let base = if formatted { 0.6 } else { 0.3 };
            push_near(text, out, &m, PiiType::UsItin, base, ITIN_CONTEXT);
        } else if checksum::ssn(&d) {
            // An unformatted nine-digit run is an SSN only when something says so.
            let base = if formatted { 0.6 } else { 0.2 };
            let score = boosted(text, m.start(), m.end(), base, SSN_CONTEXT);
            push(out, m.start(), m.end(), PiiType::UsSsn, score);
        }
        if !formatted
            && checksum::aba_routing(&d)
            && near(text, m.start(), m.end(), ROUTING_CONTEXT)
        {
            push(out, m.start(), m.end(), PiiType::UsRouting, 0.85);
        }
    }
}

pub(super) static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\b")
});
static IPV6: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?:%\w+)?"));
const IP_ANTI_CONTEXT: &[&str] = &["version", "v", "release", "ver"];

fn ip(text: &str, out: &mut Vec<Detection>) {
    for m in IPV4.find_iter(text) {
        let after = &text[m.end()..];
        // "1.2.3.4.5" is a version or an OID, not an address.
        if after.starts_with('.') && after[1..].starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let before = &text[..m.start()];
        if before.ends_with('.') || before.ends_with('v') || before.ends_with('V') {
            continue;
        }
        let base = if near(text, m.start(), m.end(), IP_ANTI_CONTEXT) {
            0.3
        } else {
            0.7
        };
        push(out, m.start(), m.end(), PiiType::IpAddress, base);
    }
    if text.contains(':') {
        for m in IPV6.find_iter(text) {
            let s = m.as_str();
            let core = s.split('%').next().unwrap_or(s);
            if core.matches(':').count() < 2 || !core.bytes().any(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            // Times ("10:30:00") parse as nothing here; IPv6 needs eight groups or "::".
            if core.parse::<std::net::Ipv6Addr>().is_ok()
                && (core.contains("::") || core.matches(':').count() == 7)
            {
                push(
                    out,
                    m.start(),
                    m.start() + core.len(),
                    PiiType::IpAddress,
                    0.8,
                );
            }
        }
    }
}

static MAC: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b[0-9a-f]{2}([:\-])[0-9a-f]{2}(?:[:\-][0-9a-f]{2}){4}\b|\b[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}\b",
    )
});

fn mac(text: &str, out: &mut Vec<Detection>) {
    for m in MAC.find_iter(text) {
        let s = m.as_str();
        let seps: Vec<char> = s.chars().filter(|c| matches!(c, ':' | '-' | '.')).collect();
        if seps.windows(2).all(|w| w[0] == w[1]) {
            push(out, m.start(), m.end(), PiiType::MacAddress, 0.8);
        }
    }
}

static BTC_BASE58: LazyLock<Regex> = LazyLock::new(|| re(r"\b[13][1-9A-HJ-NP-Za-km-z]{25,34}\b"));
static BTC_BECH32: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\bbc1[02-9ac-hj-np-z]{11,71}\b"));
static ETH: LazyLock<Regex> = LazyLock::new(|| re(r"\b0x[0-9a-fA-F]{40}\b"));
const WALLET_CONTEXT: &[&str] = &[
    "wallet", "address", "btc", "bitcoin", "eth", "ethereum", "crypto", "send", "usdt",
];

fn wallets(text: &str, out: &mut Vec<Detection>) {
    for m in BTC_BASE58.find_iter(text) {
        if checksum::base58check(m.as_str().as_bytes()) {
            push(out, m.start(), m.end(), PiiType::CryptoWallet, 0.95);
        }
    }
    for m in BTC_BECH32.find_iter(text) {
        if checksum::bech32(m.as_str().as_bytes()) {
            push(out, m.start(), m.end(), PiiType::CryptoWallet, 0.95);
        }
    }
    for m in ETH.find_iter(text) {
        let s = m.as_str();
        if !checksum::eip55(s) {
            continue;
        }
        let mixed = s[2..].bytes().any(|b| b.is_ascii_lowercase())
            && s[2..].bytes().any(|b| b.is_ascii_uppercase());
        // A checksummed address is certain; an unchecksummed one may be any 160-bit hash.
        let base = if mixed { 0.95 } else { 0.45 };
        push_near(text, out, &m, PiiType::CryptoWallet, base, WALLET_CONTEXT);
    }
}

static NINO: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
});
static NHS: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d{3}[ \-]?\d{3}[ \-]?\d{4}\b"));
const NHS_CONTEXT: &[&str] = &[
    "nhs",
    "patient",
    "health",
    "hospital",
    "gp",
    "nhs number",
    "medical",
];
const NINO_BAD_PREFIX: &[&str] = &["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"];

fn uk_ids(text: &str, out: &mut Vec<Detection>) {
    for m in NINO.find_iter(text) {
        let up = m.as_str().to_ascii_uppercase();
        if NINO_BAD_PREFIX.contains(&&up[..2]) {
            continue;
        }
        push(
            out,
            m.start(),
            m.end(),
            PiiType::UkNino,
            boosted(
                text,
                m.start(),
                m.end(),
                0.65,
                &["national insurance", "nino", "ni number", "ni"],
            ),
        );
    }
    for m in NHS.find_iter(text) {
        // One random number in eleven passes mod 11, and the layout is a phone's: require a
        // health context.
        if checksum::nhs(&compact(m.as_str())) && near(text, m.start(), m.end(), NHS_CONTEXT) {
            push(out, m.start(), m.end(), PiiType::UkNhs, 0.95);
        }
    }
}

static AADHAAR: LazyLock<Regex> = LazyLock::new(|| re(r"\b[2-9]\d{3}([ \-]?)\d{4}([ \-]?)\d{4}\b"));

fn in_aadhaar(text: &str, out: &mut Vec<Detection>) {
    for c in AADHAAR.captures_iter(text) {
        let Some(m) = c.get(0) else { continue };
        if c.get(1).map(|x| x.as_str()) != c.get(2).map(|x| x.as_str()) {
            continue;
        }
        if checksum::verhoeff(&compact(m.as_str())) {
            let spaced = c.get(1).is_some_and(|x| !x.as_str().is_empty());
            let base = if spaced { 0.45 } else { 0.3 };
            push(
                out,
                m.start(),
                m.end(),
                PiiType::InAadhaar,
                boosted(
                    text,
                    m.start(),
                    m.end(),
                    base,
                    &["aadhaar", "aadhar", "uid", "uidai"],
                ),
            );
        }
    }
}

static ES_ID: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:[XYZ][ \-]?\d{7}|\d{8})[ \-]?[A-Z]\b"));

fn es_ids(text: &str, out: &mut Vec<Detection>) {
    for m in ES_ID.find_iter(text) {
        let d = compact(m.as_str());
        if checksum::es_id(&d) {
            let kind = if d[0].is_ascii_digit() {
                PiiType::EsDni
            } else {
                PiiType::EsNie
            };
            push(
                out,
                m.start(),
                m.end(),
                kind,
                boosted(
                    text,
                    m.start(),
                    m.end(),
                    0.7,
                    &["dni", "nie", "nif", "documento"],
                ),
            );
        }
    }
}

const MONTHS: &str = "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?";
static DATE_NUMERIC: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?|(\d{1,2})([/.\-])(\d{1,2})([/.\-])(\d{4}|\d{2}))\b",
    )
});
static DATE_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)\b(?:(?:{MONTHS})\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}|\d{{1,2}}(?:st|nd|rd|th)?(?: of)? (?:{MONTHS})\.?,? \d{{4}})\b"
    ))
});
const DOB_CONTEXT: &[&str] = &[
    "born",
    "birth",
    "dob",
    "birthday",
    "date of birth",
    "d.o.b",
    "b.",
    "birthdate",
    "age",
];

fn valid_md(month: u32, day: u32) -> bool {
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

static YEAR_WITH_CUE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:in|since|during|from|until|till|by|year|circa|around|before|after|of|early|late|mid)\s+((?:1[89]|20)\d{2})\b",
    )
});

fn dates(text: &str, out: &mut Vec<Detection>) {
    // "in 1977", "since 2017": a year with a temporal preposition is a date (not PII unless
    // it is a birth year, which the context check below decides).
    for c in YEAR_WITH_CUE.captures_iter(text) {
        if let Some(m) = c.get(1) {
            let after = &text[m.end()..];
            if after.starts_with(|ch: char| {
                ch.is_ascii_digit()
                    || ch == '.' && after[1..].starts_with(|d: char| d.is_ascii_digit())
            }) {
                continue;
            }
            if near(text, m.start(), m.end(), DOB_CONTEXT) {
                push(out, m.start(), m.end(), PiiType::DateOfBirth, 0.7);
            } else {
                push(out, m.start(), m.end(), PiiType::Date, 0.55);
            }
        }
    }
    let num =
        |m: Option<regex::Match<'_>>| m.and_then(|x| x.as_str().parse::<u32>().ok()).unwrap_or(0);
    for c in DATE_NUMERIC.captures_iter(text) {
        let Some(m) = c.get(0) else { continue };
        let ok = if c.get(1).is_some() {
            let y = num(c.get(1));
            (1000..=2999).contains(&y) && valid_md(num(c.get(2)), num(c.get(3)))
        } else {
            let (a, b) = (num(c.get(4)), num(c.get(6)));
            let same_sep = c.get(5).map(|x| x.as_str()) == c.get(7).map(|x| x.as_str());
            same_sep && (valid_md(a, b) || valid_md(b, a))
        };
        if ok {
            date_detection(text, m.start(), m.end(), out);
        }
    }
    for m in DATE_WORDS.find_iter(text) {
        date_detection(text, m.start(), m.end(), out);
    }
}

fn date_detection(text: &str, start: usize, end: usize, out: &mut Vec<Detection>) {
    if near(text, start, end, DOB_CONTEXT) {
        push(out, start, end, PiiType::DateOfBirth, 0.85);
    } else {
        push(out, start, end, PiiType::Date, 0.6);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-by-byte windows that `digit_windows` must reproduce exactly.
    fn naive_windows(text: &str) -> Vec<(usize, usize)> {
        let bytes = text.as_bytes();
        let mut windows: Vec<(usize, usize)> = Vec::new();
        for i in (0..bytes.len()).filter(|&i| bytes[i].is_ascii_digit()) {
            if windows.last().is_some_and(|w| i + WINDOW_AFTER <= w.1) {
                continue;
            }
            let mut start = i.saturating_sub(WINDOW_BEFORE);
            let floor = start.saturating_sub(MAX_WORD_EXTENSION);
            while start > floor && !bytes[start - 1].is_ascii_whitespace() {
                start -= 1;
            }
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (i + WINDOW_AFTER).min(bytes.len());
            let ceiling = (end + MAX_WORD_EXTENSION).min(bytes.len());
            while end < ceiling && !bytes[end].is_ascii_whitespace() {
                end += 1;
            }
            while !text.is_char_boundary(end) {
                end += 1;
            }
            match windows.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => windows.push((start, end)),
            }
        }
        windows
    }

    #[test]
    fn swar_digit_test_agrees_with_the_byte_test() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut chunk = [b'a'; 8];
                chunk[at] = b;
                assert_eq!(has_ascii_digit(chunk), b.is_ascii_digit(), "{b} at {at}");
                // Bytes around a digit must not hide it, nor fake one.
                let mut mixed = [0xff; 8];
                mixed[at] = b;
                assert_eq!(has_ascii_digit(mixed), b.is_ascii_digit(), "{b} at {at}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn digit_windows_match_the_byte_loop(s in "[a-z 0-9é\\n.:]{0,600}") {
            proptest::prop_assert_eq!(digit_windows(&s), naive_windows(&s));
        }
    }
}
