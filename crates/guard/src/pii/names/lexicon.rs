//! Word lists and lexicons for the name and place rules: the census and GeoNames lexicons
//! (`data/lexicon/`), and the short hand-written lists of cues, honorifics and stop words.

use std::collections::HashSet as StdHashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

/// An FxHash-style hasher for the word sets. Their keys are fixed lexicon words, so no input
/// can shape the tables, and SipHash's flooding protection only cost time: hashing was a
/// sixth of the name scan, which runs a few look-ups per capitalised word.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct WordHasher(u64);

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

pub(super) type HashSet<T> = StdHashSet<T, BuildHasherDefault<WordHasher>>;

pub(super) fn lexicon(text: &'static str) -> HashSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_lowercase)
        .collect()
}

// Word lists as hash sets: they are consulted for every capitalised token.
pub(super) static NOT_NAMES_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| NOT_NAMES.iter().copied().collect());
pub(super) static NOT_AFTER_NAME_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| NOT_AFTER_NAME.iter().copied().collect());
pub(super) static PLACE_PREFIXES_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| PLACE_PREFIXES.iter().copied().collect());
pub(super) static HONORIFICS_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| HONORIFICS.iter().copied().collect());
pub(super) static SUFFIXES_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| SUFFIXES.iter().copied().collect());
pub(super) static AMBIGUOUS_FIRST_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| AMBIGUOUS_FIRST.iter().copied().collect());
pub(super) static AFTER_NAME_VERBS_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| AFTER_NAME_VERBS.iter().copied().collect());
pub(super) static AMBIGUOUS_COUNTRIES_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| AMBIGUOUS_COUNTRIES.iter().copied().collect());
pub(super) static STREET_WORDS_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| STREET_WORDS.iter().copied().collect());

/// Words that end a street's name ("Inna Loop", "Philip Bypass", "Radolič Harbor") and are
/// rarely surnames: after a first name they make a street, not a person. Street words that
/// are common surnames too ("Parks", "Lane", "Hill", "Brooks", "Wells") are left out, so
/// "Rosa Parks" stays a person.
pub(super) const STREET_WORDS: &[&str] = &[
    "loop",
    "harbor",
    "harbour",
    "bypass",
    "forge",
    "forges",
    "flat",
    "flats",
    "trail",
    "isle",
    "cove",
    "coves",
    "route",
    "point",
    "dam",
    "union",
    "extension",
    "extensions",
    "gateway",
    "mall",
    "turnpike",
    "radial",
    "courts",
    "crossing",
    "expressway",
    "freeway",
    "motorway",
    "skyway",
    "underpass",
    "overpass",
    "viaduct",
    "throughway",
    "parkway",
    "causeway",
    "spur",
    "plaza",
    "junction",
    "landing",
    "estates",
    "heights",
    "shoals",
    "summit",
    "canyon",
    "creek",
    "bluff",
    "bluffs",
    "knoll",
    "knolls",
    "inlet",
    "rapids",
    "ridge",
    "shores",
    "squares",
    "trace",
    "tunnel",
    "vista",
    "crescent",
    "terrace",
    "boulevard",
    "avenue",
    "drive",
    "passage",
    "ramp",
];

pub(super) static FIRST: LazyLock<HashSet<String>> =
    LazyLock::new(|| lexicon(include_str!("../../../data/lexicon/first_names.txt")));
pub(super) static LAST: LazyLock<HashSet<String>> =
    LazyLock::new(|| lexicon(include_str!("../../../data/lexicon/last_names.txt")));
/// The most common surnames (the census list is ordered by frequency): "Mitchell" or
/// "Williams" in a list is more often part of a firm's name than a first name.
pub(super) static COMMON_SURNAMES: LazyLock<HashSet<String>> = LazyLock::new(|| {
    include_str!("../../../data/lexicon/last_names.txt")
        .lines()
        .take(3000)
        .map(str::to_lowercase)
        .collect()
});
pub(super) static COUNTRIES: LazyLock<HashSet<String>> =
    LazyLock::new(|| lexicon(include_str!("../../../data/lexicon/countries.txt")));
/// The first words of the two-word countries ("new" of "new zealand").
pub(super) static COUNTRY_FIRST_WORDS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    COUNTRIES
        .iter()
        .filter_map(|c| c.split_once(' ').map(|(first, _)| first.to_owned()))
        .collect()
});
/// Country names that are also common words or names; they need a locative cue.
pub(super) const AMBIGUOUS_COUNTRIES: &[&str] = &[
    "turkey", "chad", "jordan", "georgia", "china", "guinea", "niger", "jersey", "israel", "kenya",
    "india", "cuba", "peru", "mali", "togo",
];
/// First names that are also everyday capitalised words (months, virtues, verbs).
pub(super) const AMBIGUOUS_FIRST: &[&str] = &[
    "will", "may", "june", "april", "august", "grace", "hope", "faith", "joy", "summer", "autumn",
    "rose", "mark", "bill", "art", "sue", "pat", "jack", "rich", "guy", "major", "king", "page",
    "sky", "star", "dawn", "eve", "lane", "chance", "case", "cash", "price", "rock", "river",
    "story", "miles", "long", "young", "paris", "florence", "victoria", "georgia", "virginia",
    "carolina", "dakota", "austin", "jordan", "sydney", "madison", "phoenix", "lincoln",
    // Terms of endearment, used to address people as names are: "Honey, we can't".
    "honey", "darling", "baby", "babe", "buddy", "sugar", "angel", "sweetie", "love",
];
/// Verbs that, right after a lone first name at a sentence start, make it a person.
pub(super) const AFTER_NAME_VERBS: &[&str] = &[
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
pub(super) static PLACES: LazyLock<HashSet<String>> =
    LazyLock::new(|| lexicon(include_str!("../../../data/lexicon/places.txt")));

/// Capitalised words that open sentences or greetings and are never names on their own.
pub(super) const NOT_NAMES: &[&str] = &[
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
    // Greetings and "dear" in other languages (see `PERSON_CUES`).
    "liebe",
    "lieber",
    "hallo",
    "cher",
    "chère",
    "bonjour",
    "querido",
    "querida",
    "estimado",
    "estimada",
    "hola",
    "gentile",
    "ciao",
    "beste",
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
pub(super) const NOT_AFTER_NAME: &[&str] = &[
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
pub(super) const SURNAME_ENDINGS: &[&str] = &[
    "ski", "ska", "sky", "ov", "ova", "ev", "eva", "vić", "vic", "ić", "sen", "son", "sson", "ez",
    "ini", "elli", "escu", "poulos", "idis", "enko", "chuk", "yan", "ian", "stein", "berg",
    "berger", "mann", "ková", "ová", "czyk", "wicz", "nen", "inen", "aki", "oglu", "oğlu",
    "shvili", "dze", "ssen", "ulis", "aitis", "opoulos", "akis", "ero", "etti", "dóttir", "dottir",
    "yama", "kawa", "gawa", "moto", "mura", "hara", "guchi", "saki", "zaki", "shita", "hashi",
    "kami", "uchi", "zawa",
];
pub(super) const HONORIFICS: &[&str] = &[
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
    // German, French, Spanish, Italian and Dutch forms of address.
    "herr",
    "frau",
    "monsieur",
    "madame",
    "mme",
    "mlle",
    "señor",
    "señora",
    "sra",
    "srta",
    "signor",
    "signora",
    "sig",
    "dhr",
    "mevr",
    "mevrouw",
];
pub(super) const SUFFIXES: &[&str] = &[
    "jr", "sr", "ii", "iii", "iv", "md", "dds", "phd", "dvm", "esq", "rn", "cpa",
];
/// Words that, right before a capitalised word, say it is a person's name.
pub(super) const PERSON_CUES: &[&[&str]] = &[
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
    &["call", "me"],
    &["calls", "me"],
    &["my", "son"],
    &["my", "daughter"],
    &["my", "kid"],
    &["my", "child"],
    &["my", "wife"],
    &["my", "husband"],
    &["my", "partner"],
    &["my", "brother"],
    &["my", "sister"],
    &["my", "mother"],
    &["my", "father"],
    &["my", "friend"],
    &["my", "boss"],
    // "My name is" in the languages most often seen after English (German, French, Spanish,
    // Italian, Dutch, Portuguese, Polish, Russian): what follows is a name whatever its
    // shape. Greetings and "dear" in those languages are weak cues (below): German
    // capitalises every noun ("Liebe Grüße", "Hallo Welt").
    &["mein", "name", "ist"],
    &["ich", "heiße"],
    &["ich", "heisse"],
    &["je", "m'appelle"],
    &["mon", "nom", "est"],
    &["me", "llamo"],
    &["mi", "nombre", "es"],
    &["mi", "chiamo"],
    &["mio", "nome", "è"],
    &["ik", "heet"],
    &["mijn", "naam", "is"],
    &["meu", "nome", "é"],
    &["me", "chamo"],
    &["nazywam", "się"],
    &["меня", "зовут"],
    &["liebe"],
    &["lieber"],
    &["hallo"],
    &["cher"],
    &["chère"],
    &["bonjour"],
    &["querido"],
    &["querida"],
    &["estimado"],
    &["estimada"],
    &["hola"],
    &["gentile"],
    &["ciao"],
    &["beste"],
];
/// Cues that need a lexicon hit to count (they often precede non-names too).
pub(super) const WEAK_PERSON_CUES: &[&str] = &[
    "from", "by", "with", "and", "met", "ask", "tell", "this", "liebe", "lieber", "hallo", "cher",
    "chère", "bonjour", "querido", "querida", "estimado", "estimada", "hola", "gentile", "ciao",
    "beste",
];
pub(super) const LOCATIVE_CUES: &[&[&str]] = &[
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
pub(super) const PLACE_PREFIXES: &[&str] = &[
    "north", "south", "east", "west", "new", "lake", "port", "mount", "fort", "saint", "st", "san",
    "santa", "los", "las", "el", "port", "upper", "lower", "great",
];
pub(super) const PLACE_SUFFIXES: &[&str] = &[
    "ton", "town", "ville", "burg", "burgh", "bury", "borough", "boro", "mouth", "port", "side",
    "view", "haven", "land", "field", "ford", "furt", "stad", "berg", "chester", "shire", "fort",
    "ham", "wick", "worth", "wood", "stead", "dale", "mont", "mouth", "polis", "by", "thorpe",
    "minster", "caster", "cester",
];
