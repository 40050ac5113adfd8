//! Street addresses: a grammar of the ways people write them, not one country's format.
//!
//! A street *core* always carries a number, so the core recognizers run only in the digit
//! windows the pattern scan cuts:
//! - number first, street type last (US, UK, AU): "1600 Pennsylvania Avenue", "10 Downing St";
//! - street type first, number last or first (FR, ES, IT, PT, PL, GR): "Rue de la Paix 12",
//!   "12 rue de la Paix", "C/ Mayor 5", "Avda. Rio Nalon 58", "ul. Jesionowa 127";
//! - street type glued or after the name, number last (DE, NL, Nordic, HU, CZ):
//!   "Hauptstraße 5", "Keizersgracht 123", "Kiannonkatu 98", "Erzsébet tér 19.";
//! - a house number before a name and a number ("28245 Puruntie 82"), when what follows looks
//!   like the rest of an address (a line end, a comma, "Apt", a place name);
//! - post boxes and US military mail ("P.O. Box 242", "PSC 1234, Box 5678, APO AE 09012");
//! - units and "State ZIP" tails, and UK postcodes with an address word near.
//!
//! [`extend_tails`] then runs on the resolved detections and the whole text: the lines or
//! comma-separated parts after a street (unit, town, region, country, postcode) join it, so
//! "12 Rue X\nLyon\nFrance 69001" is masked as one value rather than three.

use std::sync::LazyLock;

use regex::Regex;

use super::patterns::{boosted, push, push_near, re};
use super::{Detection, PiiType};

const STREET_TYPES: &str = "street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|ter|circle|cir|parkway|pkwy|highway|hwy|square|sq|trail|trl|crescent|cres|close|row|loop|alley|pike|route|rte|path|walk|gardens|heights|hill|park|point|ridge|view|mill|mills|springs|summit|valley|village|vista|plaza|expressway|freeway|grove|harbor|junction|manor|meadows|orchard|pass|port|shores|station|turnpike|gate|green|mews|parade|esplanade|quay|strasse|straße|rue|calle|via|katu|gatan|vej|weg|laan|plein|utca";

/// A capitalised word in any cased script, with an optional abbreviation dot.
const NAME: &str = r"\p{Lu}[\p{L}'’\-]*\.?";
/// Lower-case words that sit inside street names ("Rua do Arenque", "Via dei Fiorentini").
const PARTICLE: &str = "de|do|da|dos|das|del|dei|della|delle|di|du|des|la|le|les|van|von|der|den|ten|ter|y|e|al|el|nad|pod|am|an|im|auf";
/// Street types written before the name.
const TYPES_BEFORE: &str = r"Via|Viale|Vicolo|Corso|Largo|Piazza|Piazzale|Strada|Rue|Avenue|Boulevard|Bd\.|Allée|Impasse|Chemin|Quai|Cours|Calle|C/|Avda\.|Avenida|Av\.|Paseo|Camino|Carrer|Passeig|Plaza|Rua|Rúa|Praça|Travessa|Estrada|Rodovia|Largo|Ulica|ul\.|al\.|Aleja|Λεωφόρος|Λ\.|Οδός";
/// Street types glued to the name ("Hauptstraße", "Keizersgracht", "Kiannonkatu").
const TYPES_GLUED: &str = "strasse|straße|str\\.|gasse|platz|allee|damm|weg|straat|steeg|gracht|kade|singel|dijk|laan|plein|katu|tie|kuja|polku|gatan|vägen|gata|gränd|vej|gade|vænget|stræde|stræti|straeti|braut|vegur|veien|utca|ulica|tänav";
/// Street types written as a word after the name ("Erzsébet tér 19.", "Stensås terrasse 38").
const TYPES_AFTER: &str = "u\\.|utca|út|útja|tér|köz|körút|rkp\\.|kapu|sor|terrasse|allé|allee|plads|gate|vei|veien|vej|gade|gata|gatan|väg|vägen|gränd|tänav|maantee|cesta|ulica|námestie|trieda|straat|steeg|laan|weg|str\\.|strasse|straße|gasse|platz|caddesi|sokak|sokağı|prospekti";

static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"\b\d{{1,6}}[A-Za-z]?,? (?:\p{{Lu}}[\w'\-]*\.? ){{0,4}}(?i:{STREET_TYPES})\b\.?(?:,? (?i:apt|apartment|suite|ste|unit|floor|fl|#)\.? ?#?\d+[A-Za-z]?)?(?:,? [A-Z][a-z]+(?: [A-Z][a-z]+){{0,2}},? (?:[A-Z]{{2}}|[A-Z][a-z]+) \d{{5}}(?:-\d{{4}})?)?"
    ))
});

/// Type first: "Rua do Arenque 1634", "12 rue de la Paix", "C/ Señores Curas 88".
static TYPE_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?:\b\d{{1,6}},?\s)?(?:\b|\s)(?i:{TYPES_BEFORE})\s+(?:(?:{PARTICLE})\s){{0,2}}{NAME}(?:\s(?:{NAME}|{PARTICLE})){{0,4}}(?:,?\s\d{{1,5}}[A-Za-z]?\b\.?)?"
    ))
});

/// Type glued or after: "Hauptstraße 5", "Kálmán Imre u. 12.", "Villacher Strasse 89".
static TYPE_LAST: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?:\b\d{{1,6}},?\s)?\b(?:{NAME}\s(?:{NAME}\s)?)?(?:\p{{Lu}}[\p{{L}}\-]*(?i:{TYPES_GLUED})|{NAME}(?:\s{NAME})?\s(?i:{TYPES_AFTER}))\s?\d{{1,5}}[A-Za-z]?\b\.?"
    ))
});

/// House number, name, number: "28245 Puruntie 82", "0138 Brisas 6802".
static ANCHORED: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"\b\d{{2,6}},?\s\p{{Lu}}\p{{Ll}}[\p{{L}}'’\-]*(?:\s(?:{NAME}|{PARTICLE})){{0,3}}\s\d{{1,5}}[A-Za-z]?\b\.?"
    ))
});

/// Post boxes and US military mail (PSC/Unit + Box + APO/FPO/DPO + AA/AE/AP + ZIP).
static POST_BOX: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:(?:PSC|CMR|Unit)\s\d{3,5},?\s+Box\s\d{3,5}(?:\s*,?\s*[AFD]PO\s+A[AEP]\s+\d{5}\b)?|(?:USNS|USNV|USS|USCGC)\s+\p{L}[\p{L}'\-]*(?:\s\p{Lu}[\p{L}'\-]*)?\s*,?\s*FPO\s+A[AEP]\s+\d{5}\b|(?:P\.?\s?O\.?\s?Box|Post\s?box|Postfach|Apartado|Caixa Postal|Casella Postale)\s\d{1,6}\b)",
    )
});

static UNIT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:Apt|Apartment|Suite|Ste|Unit|Flat)\.?\s?#?\d{1,5}[A-Za-z]?\b|,\s(?:[A-Z]{2}|[A-Z][a-z]+)\s\d{5}(?:-\d{4})?\b",
    )
});

/// UK postcode areas (Royal Mail): the outward code must start with one of these.
const UK_AREAS: &str = "AB|AL|B|BA|BB|BD|BH|BL|BN|BR|BS|BT|CA|CB|CF|CH|CM|CO|CR|CT|CV|CW|DA|DD|DE|DG|DH|DL|DN|DT|DY|E|EC|EH|EN|EX|FK|FY|G|GL|GU|HA|HD|HG|HP|HR|HS|HU|HX|IG|IP|IV|KA|KT|KW|KY|L|LA|LD|LE|LL|LN|LS|LU|M|ME|MK|ML|N|NE|NG|NN|NP|NR|NW|OL|OX|PA|PE|PH|PL|PO|PR|RG|RH|RM|S|SA|SE|SG|SK|SL|SM|SN|SO|SP|SR|SS|ST|SW|SY|TA|TD|TF|TN|TQ|TR|TS|TW|UB|W|WA|WC|WD|WF|WN|WR|WS|WV|YO|ZE";
static UK_POSTCODE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"\b(?:{UK_AREAS})\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{{2}}\b"
    ))
});

const ADDRESS_CONTEXT: &[&str] = &[
    "address",
    "live",
    "lives",
    "living",
    "located",
    "ship",
    "deliver",
    "home",
    "residence",
    "mail",
    "send",
    "sent",
    "postcode",
    "post code",
    "zip",
];

/// Words that end a date, not a street: "12 March 2020" is not "12 <street> 2020".
const NOT_STREET_NAMES: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Sept",
    "Oct",
    "Nov",
    "Dec",
];

/// Whether a house number is more likely a year ("in 2012 National Book Critics Circle"):
/// such a core counts only with an address word near.
fn year_like(core: &str) -> bool {
    let digits: String = core.chars().take_while(char::is_ascii_digit).collect();
    digits.len() == 4 && (digits.starts_with("19") || digits.starts_with("20"))
}

/// Whether what follows a street core looks like the rest of an address: the end, a line
/// break, a comma, a unit, or a capitalised place name — not prose ("3 Windows 10 machines").
fn ends_like_address(after: &str) -> bool {
    let rest = after.trim_start_matches([' ', '\t']);
    // "441 Male 98,149": a table of figures.
    if rest.starts_with(',') && rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    match rest.chars().next() {
        None => true,
        Some('\n' | '\r' | ',' | ';' | ')' | '>' | '.') => true,
        Some(c) if c.is_uppercase() => true,
        _ => {
            let low = rest.get(..4).unwrap_or("").to_ascii_lowercase();
            low.starts_with("apt") || low.starts_with("suit") || low.starts_with("st.")
        }
    }
}

/// Find street cores, units, post boxes and postcodes in one digit window.
pub fn scan(text: &str, out: &mut Vec<Detection>) {
    // Units and "State ZIP" tails are parts of an address even when the rest is not found.
    for m in UNIT.find_iter(text) {
        let s = m.as_str();
        let skip = if s.starts_with(',') { 2 } else { 0 };
        push(
            out,
            m.start() + skip,
            m.end(),
            PiiType::StreetAddress,
            boosted(text, m.start(), m.end(), 0.55, ADDRESS_CONTEXT),
        );
    }
    for m in POST_BOX.find_iter(text) {
        push(out, m.start(), m.end(), PiiType::StreetAddress, 0.8);
    }
    for m in UK_POSTCODE.find_iter(text) {
        push_near(text, out, &m, PiiType::StreetAddress, 0.45, ADDRESS_CONTEXT);
    }
    for m in TYPE_FIRST.find_iter(text) {
        let s = m.as_str();
        let start = m.start() + (s.len() - s.trim_start().len());
        let s = s.trim_start();
        // Needs a number, and a lower-case type only after a house number ("via Slack 2").
        let numbered_first = s.starts_with(|c: char| c.is_ascii_digit());
        if !s.bytes().any(|b| b.is_ascii_digit())
            || !numbered_first && s.starts_with(|c: char| c.is_lowercase())
            || !ends_like_address(&text[m.end()..])
        {
            continue;
        }
        let score = boosted(text, start, m.end(), 0.6, ADDRESS_CONTEXT);
        push(out, start, m.end(), PiiType::StreetAddress, score);
    }
    for m in TYPE_LAST.find_iter(text) {
        if ends_like_address(&text[m.end()..]) {
            push_near(text, out, &m, PiiType::StreetAddress, 0.6, ADDRESS_CONTEXT);
        }
    }
    for m in ANCHORED.find_iter(text) {
        let s = m.as_str();
        let name = s
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .trim_end_matches('.');
        if NOT_STREET_NAMES.contains(&name) || !ends_like_address(&text[m.end()..]) {
            continue;
        }
        let base = if year_like(s) { 0.2 } else { 0.55 };
        push_near(text, out, &m, PiiType::StreetAddress, base, ADDRESS_CONTEXT);
    }
    for m in ADDRESS.find_iter(text) {
        let s = m.as_str();
        // "3 way handshake", "2 st" are not addresses: need a capitalised street name.
        let words: Vec<&str> = s.split_whitespace().collect();
        if words.len() < 3 || !words[1].starts_with(|c: char| c.is_uppercase()) {
            continue;
        }
        let base = if year_like(s) { 0.2 } else { 0.6 };
        push_near(text, out, &m, PiiType::StreetAddress, base, ADDRESS_CONTEXT);
    }
}

/// Most parts joined to one street address (unit, town, region, country, postcode).
const MAX_TAIL_PARTS: usize = 6;
/// Most bytes a tail may add.
const MAX_TAIL_BYTES: usize = 160;

static TAIL_SEP: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:[ \t]*(?:\r?\n[ \t>]*){1,2},?[ \t]*|[ \t]*,[ \t]*|[ \t]+)"));
static TAIL_UNIT: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?i:apt|apartment|suite|ste|unit|flat|floor|fl)\.?\s?#?\d{1,5}[A-Za-z]?\b")
});
static TAIL_POSTCODE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"^(?:(?:{UK_AREAS})\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{{2}}\b|[A-Z]\d[A-Z] ?\d[A-Z]\d\b|\d{{4}} ?[A-Z]{{2}}\b|\d{{4,6}}(?:-\d{{3,4}})?\b)"
    ))
});
static TAIL_REGION: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Z]{2,3}\b"));
/// A town or country: one to four capitalised (or all-capital) words, maybe "(Greek)".
static TAIL_PLACE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\p{Lu}[\p{L}'’\-]*(?: (?:\p{Lu}[\p{L}'’\-]*|de|del|do|da|la|le|sur|am|an|nad)){0,3}(?: \(\p{Lu}\p{L}*\))?",
    )
});

/// Whether a part just parsed is followed by something that may end an address.
fn part_ends(rest: &str) -> bool {
    match rest.chars().next() {
        None => true,
        Some(c) => matches!(
            c,
            '\n' | '\r' | ',' | '.' | '?' | '!' | ';' | ')' | ' ' | '\t'
        ),
    }
}

/// Extend each street address over the parts that follow it, absorbing places and names
/// found inside those parts; stop before any other kind of detection.
pub fn extend_tails(text: &str, found: Vec<Detection>) -> Vec<Detection> {
    if !found.iter().any(|d| d.kind == PiiType::StreetAddress) {
        return found;
    }
    let mut out: Vec<Detection> = Vec::with_capacity(found.len());
    let mut i = 0;
    while i < found.len() {
        let mut d = found[i];
        i += 1;
        if d.kind != PiiType::StreetAddress {
            out.push(d);
            continue;
        }
        // The next detection that is not a place, a name or an address part bounds the tail.
        let limit = found[i..]
            .iter()
            .find(|n| {
                !matches!(
                    n.kind,
                    PiiType::Location | PiiType::Person | PiiType::StreetAddress
                ) || n.kind == PiiType::Person && n.score >= 0.85
            })
            .map_or(text.len(), |n| n.start)
            .min(d.end + MAX_TAIL_BYTES);
        let mut end = d.end;
        let mut parts = 0;
        while parts < MAX_TAIL_PARTS && end < limit {
            let Some(rest) = text.get(end..limit) else {
                break;
            };
            let Some(sep) = TAIL_SEP.find(rest) else {
                break;
            };
            let after = &rest[sep.end()..];
            let part = TAIL_UNIT
                .find(after)
                .or_else(|| TAIL_POSTCODE.find(after))
                .or_else(|| TAIL_REGION.find(after))
                .or_else(|| TAIL_PLACE.find(after));
            let Some(p) = part else { break };
            let tail = &after[p.end()..];
            // A label ("Mobile:") or more digits (a phone) is not an address part.
            if tail.starts_with(':')
                || tail
                    .trim_start_matches([' ', '\t'])
                    .starts_with(|c: char| c.is_ascii_digit())
                    && !TAIL_POSTCODE.is_match(tail.trim_start_matches([' ', '\t']))
                || !part_ends(tail)
            {
                break;
            }
            end += sep.end() + p.end();
            parts += 1;
        }
        if end > d.end {
            d.end = end;
            // Places and names inside the tail are parts of the address.
            while i < found.len() && found[i].start < end {
                let n = found[i];
                if n.end > end {
                    d.end = n.end.max(d.end);
                }
                d.score = d.score.max(n.score.min(0.9));
                i += 1;
            }
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cores(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        scan(text, &mut out);
        out.iter()
            .filter(|d| d.score >= 0.5)
            .map(|d| text[d.start..d.end].to_owned())
            .collect()
    }

    #[test]
    fn european_street_cores() {
        assert!(cores("Wir wohnen in der Hauptstraße 5, Berlin").contains(&"Hauptstraße 5".into()));
        assert!(cores("Adres: Keizersgracht 123\nAmsterdam").contains(&"Keizersgracht 123".into()));
        assert!(
            cores("lives at Rua do Arenque 1634, Goiânia").contains(&"Rua do Arenque 1634".into())
        );
        assert!(cores("office at Kálmán Imre u. 12.\n").contains(&"Kálmán Imre u. 12.".into()));
        assert!(cores("send it to 12 rue de la Paix, Paris").contains(&"12 rue de la Paix".into()));
        assert!(cores("C/ Señores Curas 88, Madrid").contains(&"C/ Señores Curas 88".into()));
        assert!(
            cores("lives at 86036 Rua do Arenque 1634, X")
                .contains(&"86036 Rua do Arenque 1634".into())
        );
    }

    #[test]
    fn anchored_and_post_boxes() {
        assert!(cores("28245 Puruntie 82\nLAPPEENRANTA").contains(&"28245 Puruntie 82".into()));
        assert!(
            cores("Meet me at PSC 1437, Box 3833\nAPO AA 66791")
                .contains(&"PSC 1437, Box 3833\nAPO AA 66791".into())
        );
        assert!(cores("USNS Møller\nFPO AA 85844").contains(&"USNS Møller\nFPO AA 85844".into()));
        assert!(cores("write to P.O. Box 242 please").contains(&"P.O. Box 242".into()));
        assert!(cores("address: SW1A 2AA").contains(&"SW1A 2AA".into()));
    }

    #[test]
    fn prose_with_numbers_is_not_an_address() {
        for t in [
            "we bought 3 Windows 10 machines",
            "on 12 March 2020, we met",
            "sent via Slack 2 days ago",
            "it took 30 Python 3 scripts and 5 Ubuntu 22 boxes to run",
            "Chapter 5 covers Section 3 in detail",
            "PS5 4GB and RTX 3080 cards",
        ] {
            assert!(cores(t).is_empty(), "{t}: {:?}", cores(t));
        }
    }
}
