//! Credential rules: which strings are live provider keys, cloud keys or private keys.
//!
//! One rule set serves every caller, so a key that `scan` reports is also a key that the
//! config loader refuses and that prompt masking hides. Two kinds of rule run over the text:
//!
//! - **prefix rules** anchored on a vendor's published key format (`sk-proj-…`, `hf_…`,
//!   `AIza…`); they are quiet on ordinary text because the prefix is rare;
//! - **assignment rules** for keys without a prefix (Cohere, Mistral, Azure OpenAI, Together,
//!   Weights & Biases, AWS secrets, and any high-entropy value assigned to a `*_KEY`,
//!   `*_TOKEN` or `*_SECRET` name). They need both a credential-like name and a value that
//!   looks random, so hashes, UUIDs and identifiers stay quiet.
//!
//! Placeholders (`sk-xxxx`, `your-api-key`, `${VAR}`, documentation `EXAMPLE` keys, all-`A`
//! fixtures) are filtered out because a finding that blocks a real user for a fake key is a
//! bug. tollgate's own keys are reported only when their CRC32 checksum holds.
//!
//! Keys hidden behind string escapes (`\"sk-…\"` in JSON, `\nhf_…` in a notebook output) are
//! found because rules run over an *escape-neutral view* of the text: the same bytes, with
//! `\n`, `\"` and friends replaced by two spaces, so offsets still point into the original.

use std::sync::LazyLock;

use regex::Regex;

/// One credential rule: a stable id (used in findings and reports) and its pattern.
#[derive(Debug)]
pub struct SecretRule {
    /// Stable identifier, e.g. `openai-api-key`.
    pub id: &'static str,
    /// Human description, shown next to findings.
    pub description: &'static str,
    regex: Regex,
    /// Literals of which at least one must occur (case-sensitively) for the regex to run.
    keywords: &'static [&'static str],
    check: Check,
}

/// Extra validation a prefix match must pass besides the regex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Placeholder and low-entropy filtering only.
    Random,
    /// A tollgate key: the trailing CRC32 checksum must hold.
    TollgateChecksum,
    /// A PEM header: the key body must follow, not `...` or an immediate END line.
    Pem,
    /// A JWT: skipped when its payload says it is a public (`anon`) key.
    Jwt,
    /// A password chosen by a person: placeholders and dictionary-like values skipped.
    Password,
}

/// A credential found in a piece of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMatch {
    /// Id of the rule that matched.
    pub rule: &'static str,
    /// Byte range of the credential in the scanned text.
    pub start: usize,
    /// End of the byte range (exclusive).
    pub end: usize,
}

impl SecretMatch {
    /// The matched text with everything but a short prefix hidden, safe to print.
    pub fn redacted(&self, text: &str) -> String {
        let value = text.get(self.start..self.end).unwrap_or_default();
        redact(value)
    }

    /// Human description of the rule that matched.
    pub fn description(&self) -> &'static str {
        describe(self.rule)
    }
}

/// Hide all but the first few characters of a credential, so findings can be shown safely.
pub fn redact(value: &str) -> String {
    let keep: String = value.chars().take(6).collect();
    format!("{keep}…[redacted {} chars]", value.chars().count())
}

/// Human description of a rule id (prefix or assignment rule); the id itself when unknown.
pub fn describe(rule: &'static str) -> &'static str {
    if let Some(r) = rules().iter().find(|r| r.id == rule) {
        return r.description;
    }
    ASSIGNMENT_PROVIDERS
        .iter()
        .find(|(_, id, _)| *id == rule)
        .map(|(_, _, d)| *d)
        .unwrap_or(match rule {
            "aws-secret-access-key" => "AWS secret access key",
            "gcp-service-account" => "Google Cloud service-account private key",
            "generic-secret" => "high-entropy value assigned to a credential name",
            _ => rule,
        })
}

mod catalog;
mod keywords;
use catalog::{
    ASSIGNMENT, ASSIGNMENT_PROVIDERS, BEARER, BENIGN_NAME_WORDS, BENIGN_SQUASHED_NAMES, DOCKER_ENV,
    NAME_VALUE, RULES, STRONG_NAME_WORDS, XML_ELEMENT,
};
use keywords::rules_with_keywords;

static COMPILED: LazyLock<Vec<SecretRule>> = LazyLock::new(|| {
    RULES
        .iter()
        .filter_map(|(id, description, keywords, pattern, check)| {
            // The patterns are constants covered by tests; a bad one is dropped rather than
            // panicking in a server.
            Regex::new(pattern).ok().map(|regex| SecretRule {
                id,
                description,
                regex,
                keywords,
                check: *check,
            })
        })
        .collect()
});

static ASSIGNMENT_RES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [ASSIGNMENT, NAME_VALUE, BEARER, DOCKER_ENV, XML_ELEMENT]
        .iter()
        .filter_map(|p| Regex::new(p).ok())
        .collect()
});

/// The compiled prefix rules.
pub fn rules() -> &'static [SecretRule] {
    &COMPILED
}

/// Words that mark a value as a documentation placeholder rather than a credential.
const PLACEHOLDER_MARKERS: &[&str] = &[
    "xxxx",
    "example",
    "your",
    "placeholder",
    "dummy",
    "redacted",
    "changeme",
    "replace",
    "insert",
    "sample",
    "fake",
    "...",
    "****",
    "<",
    "${",
    "{{",
];

/// True when `value` is a documentation placeholder or an obviously fabricated fixture.
pub fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if PLACEHOLDER_MARKERS.iter().any(|m| lower.contains(m)) {
        return true;
    }
    has_sequential_run(value.as_bytes(), 7)
}

/// `abcdefg`, `1234567`: typed by a person, not drawn at random.
fn has_sequential_run(bytes: &[u8], len: usize) -> bool {
    let mut run = 1;
    for w in bytes.windows(2) {
        if w[0].is_ascii_alphanumeric() && w[1] == w[0].wrapping_add(1) {
            run += 1;
            if run >= len {
                return true;
            }
        } else {
            run = 1;
        }
    }
    false
}

/// Shannon entropy in bits per character.
pub fn shannon_entropy(value: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in value.bytes() {
        counts[usize::from(b)] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = f64::from(n);
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Minimum entropy of a prefixed key's body: `hf_aaaa…` and `AKIAAAAA…` fixtures fall below.
const MIN_PREFIXED_ENTROPY: f64 = 2.5;
/// Shortest hex-only value taken for a key (Azure OpenAI keys: 32).
const MIN_HEX_KEY: usize = 32;
/// Minimum entropy of an unprefixed value: random base62/hex sit well above, words below.
const MIN_ASSIGNED_ENTROPY: f64 = 3.2;

/// The text with string escapes (`\n`, `\"`, `\\`, …) replaced by two spaces. Same length,
/// still valid UTF-8 (only ASCII bytes are replaced), so offsets carry over unchanged.
fn escape_neutral(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\\') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut bytes = text.as_bytes().to_vec();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\\'
            && matches!(
                bytes[i + 1],
                b'n' | b'r' | b't' | b'"' | b'\'' | b'\\' | b'/'
            )
        {
            bytes[i] = b' ';
            bytes[i + 1] = b' ';
            i += 2;
        } else {
            i += 1;
        }
    }
    std::borrow::Cow::Owned(String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned()))
}

/// Find every credential in `text`, in order of position.
pub fn find_secrets(text: &str) -> Vec<SecretMatch> {
    let view = escape_neutral(text);
    let view: &str = &view;
    let mut found: Vec<SecretMatch> = Vec::new();
    let wanted = rules_with_keywords(view);
    for (rule, _) in rules().iter().zip(&wanted).filter(|(_, w)| **w) {
        for caps in rule.regex.captures_iter(view) {
            let Some(m) = caps.get(1).or_else(|| caps.get(0)) else {
                continue;
            };
            if !accept_prefixed(rule, m.as_str()) {
                continue;
            }
            if rule.check == Check::Pem && !pem_has_body(&view[m.end()..]) {
                continue;
            }
            // A private key inside a service-account JSON is a GCP credential.
            let id = if rule.check == Check::Pem
                && surroundings(view, m.start(), m.end()).contains("service_account")
            {
                "gcp-service-account"
            } else {
                rule.id
            };
            found.push(SecretMatch {
                rule: id,
                start: m.start(),
                end: m.end(),
            });
        }
    }
    find_assigned(view, &mut found);
    found.sort_by_key(|m| (m.start, std::cmp::Reverse(m.end)));
    found.dedup_by(|later, kept| later.start < kept.end && kept.start < later.end);
    found
}

fn accept_prefixed(rule: &SecretRule, value: &str) -> bool {
    match rule.check {
        Check::Pem => true,
        Check::Jwt => !jwt_is_public(value),
        Check::Password => {
            let lower = value.to_ascii_lowercase();
            !is_placeholder(value)
                && ![
                    "password", "passwd", "secret", "changeme", "pass", "pwd", "user",
                ]
                .iter()
                .any(|w| lower.contains(w))
                && shannon_entropy(value) >= 3.0
        }
        Check::TollgateChecksum => tollgate_checksum_holds(value),
        Check::Random => {
            if is_placeholder(value) {
                return false;
            }
            // Entropy of the body only: the prefix is constant and would inflate it.
            let body = value
                .rsplit(['-', '_'])
                .next()
                .filter(|b| b.len() >= 16)
                .unwrap_or(value);
            shannon_entropy(body) >= MIN_PREFIXED_ENTROPY
        }
    }
}

fn find_assigned(view: &str, found: &mut Vec<SecretMatch>) {
    if !value_run::has_value_run(view, value_run::MIN_VALUE_RUN) {
        return;
    }
    for re in ASSIGNMENT_RES.iter() {
        find_assigned_with(re, view, found);
    }
}

fn find_assigned_with(re: &Regex, view: &str, found: &mut Vec<SecretMatch>) {
    for caps in re.captures_iter(view) {
        // Groups: 1 the name, 2 the operator, 3 the value.
        let (Some(name), Some(op), Some(value)) = (caps.get(1), caps.get(2), caps.get(3)) else {
            continue;
        };
        // `f("X_KEY", "value")` is an assignment only for unmistakable credential names:
        // otherwise any list of strings after a `*_key` string would qualify.
        let lname = name.as_str().to_ascii_lowercase();
        let quoted_name = view[name.end()..].starts_with(['"', '\'', '`']);
        let quoted_value = view[..value.start()].ends_with(['"', '\'', '`']);
        if op.as_str() == ","
            && !(quoted_name && quoted_value && STRONG_NAME_WORDS.iter().any(|w| lname.contains(w)))
        {
            continue;
        }
        // `arn:aws:secretsmanager:…:secret:name`: a path segment, not an assignment (but
        // PowerShell's `$env:NAME = …` is one).
        let before = &view[..name.start()];
        if before.ends_with(':') {
            let token = before
                .rsplit(|c: char| c.is_whitespace() || "\"'`=,(".contains(c))
                .next()
                .unwrap_or("");
            if token.matches(':').count() >= 2 || token.contains("arn:") || token.contains("urn:") {
                continue;
            }
        }
        // The value must end at a delimiter, not in the middle of a longer token.
        let next = view[value.end()..].chars().next();
        // `<` only as the start of a closing tag: `Type<'a>` is a generic, not a value's end.
        let closing_tag = view[value.end()..].starts_with("</");
        if next.is_some_and(|c| !(c.is_whitespace() || "\"'`,;)}]#".contains(c) || closing_tag)) {
            continue;
        }
        if found
            .iter()
            .any(|f| f.start < value.end() && value.start() < f.end)
        {
            continue;
        }
        let near = surroundings(view, value.start(), value.end());
        if let Some(rule) = classify_assignment(name.as_str(), value.as_str(), near) {
            found.push(SecretMatch {
                rule,
                start: value.start(),
                end: value.end(),
            });
        }
    }
}

/// A few lines around a match: Azure keys are recognised by an `*.openai.azure.com` host
/// next to them.
fn surroundings(view: &str, start: usize, end: usize) -> &str {
    const WINDOW: usize = 400;
    let mut lo = start.saturating_sub(WINDOW);
    while !view.is_char_boundary(lo) {
        lo -= 1;
    }
    let mut hi = (end + WINDOW).min(view.len());
    while !view.is_char_boundary(hi) {
        hi += 1;
    }
    &view[lo..hi]
}

/// Decide whether `name = value` is a credential, and which rule it counts under.
fn classify_assignment(name: &str, value: &str, near: &str) -> Option<&'static str> {
    let lname = name.to_ascii_lowercase();
    let squashed: String = lname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    if BENIGN_NAME_WORDS.iter().any(|w| lname.contains(w))
        || BENIGN_SQUASHED_NAMES.iter().any(|w| squashed.contains(w))
    {
        return None;
    }
    if is_placeholder(value) || value.starts_with("http") {
        return None;
    }
    let has_digit = value.bytes().any(|b| b.is_ascii_digit());
    let has_alpha = value.bytes().any(|b| b.is_ascii_alphabetic());
    if !has_digit || !has_alpha || shannon_entropy(value) < MIN_ASSIGNED_ENTROPY {
        return None;
    }
    if looks_like_identifier(value) {
        return None;
    }
    let strong_name = STRONG_NAME_WORDS.iter().any(|w| lname.contains(w));
    if !strong_name && value.contains('/') {
        // `key=cloudformation/7870825a-…`: a path or object key under a generic name.
        return None;
    }
    let provider = ASSIGNMENT_PROVIDERS
        .iter()
        .find(|(w, _, _)| lname.contains(w))
        .map(|(_, id, _)| *id)
        .or_else(|| {
            near.to_ascii_lowercase()
                .contains(".openai.azure.com")
                .then_some("azure-openai-api-key")
        });
    let strong = strong_name;
    let hex = value.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && value.len() < MIN_HEX_KEY {
        // Resource ids and short digests; hex API keys are 32 characters or more.
        return None;
    }
    if (hex || is_uuid(value)) && provider.is_none() && !strong {
        // A bare hex string under a weak name (CACHE_KEY, MODEL_SHA256) is a digest.
        return None;
    }
    if is_uuid(value) && provider != Some("pinecone-api-key") {
        return None;
    }
    if lname.contains("aws") && lname.contains("secret") {
        return Some("aws-secret-access-key");
    }
    Some(provider.unwrap_or("generic-secret"))
}

/// Longest stretch after a PEM header searched for the key body.
const PEM_LOOKAHEAD: usize = 200;

/// True when real key material follows a PEM header: a run of at least 40 base64 characters
/// (after comment markers and RFC 1421 headers), and no `...`/`EXAMPLE` elision, which is
/// how documentation shows a key.
fn pem_has_body(after: &str) -> bool {
    let mut end = after.len().min(PEM_LOOKAHEAD);
    while !after.is_char_boundary(end) {
        end -= 1;
    }
    let window = &after[..end];
    let body = window.split("-----END").next().unwrap_or(window);
    let lower = body.to_ascii_lowercase();
    if ["...", "xxxx", "example", "<", "your"]
        .iter()
        .any(|m| lower.contains(m))
    {
        return false;
    }
    let mut rest = body;
    // Encrypted legacy keys carry RFC 1421 headers before the body.
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || "/!#*\"'`;".contains(c));
        match rest.find('\n') {
            Some(nl) if rest.starts_with("Proc-Type:") || rest.starts_with("DEK-Info:") => {
                rest = &rest[nl..];
            }
            _ => break,
        }
    }
    rest.bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/' || *b == b'=')
        .count()
        >= 40
}

/// Supabase-style anon JWTs are public by design (shipped to browsers); their payload says
/// `"role":"anon"`.
fn jwt_is_public(token: &str) -> bool {
    let Some(payload) = token.split('.').nth(1) else {
        return false;
    };
    let decoded = base64url_decode(payload);
    let text = String::from_utf8_lossy(&decoded);
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    compact.contains("\"role\":\"anon\"")
}

/// Decode base64url without padding; invalid characters end the output.
fn base64url_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => break,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// `task-classification-risk-scorer-model`, `my.module.path`: several short segments read
/// as words, not random characters.
fn looks_like_identifier(value: &str) -> bool {
    let segments: Vec<&str> = value.split(['-', '_', '.', '/']).collect();
    if segments.len() >= 3 && segments.iter().all(|s| s.len() <= 12) {
        return true;
    }
    // `X25519PrivateKey`, `MLKEM768X25519PublicKey`: a type named after what it holds.
    const TYPE_SUFFIXES: &[&str] = &[
        "Key",
        "Keys",
        "Token",
        "Secret",
        "Password",
        "Credential",
        "Credentials",
        "Auth",
    ];
    if value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && TYPE_SUFFIXES.iter().any(|t| value.ends_with(t))
    {
        return true;
    }
    // `AUTODETECT_SIGV4`: a constant's name.
    if value.contains('_')
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && value
            .split('_')
            .any(|w| w.len() >= 4 && w.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return true;
    }
    // `import-token-5ott6ho5nts7bbcg`: a value that names itself a token or key.
    let lower = value.to_ascii_lowercase();
    if lower
        .split(['-', '_', '.'])
        .any(|seg| matches!(seg, "token" | "key" | "secret" | "password" | "credential"))
    {
        return true;
    }
    // `win32api.RegEnumKey`, `settings.OPENAI_KEY2`: an attribute path in code.
    if value.contains('.')
        && value.split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
    {
        return true;
    }
    wordy(value)
}

/// `X509RequestInheritOptions`, `PassWordMustBeAtLeast6Chars`: most characters sit in runs
/// that read as words (a capital and three lower-case letters, or four lower-case, with a
/// vowel). Random keys rarely do: simulated on random base62, under 1% of 32-character
/// values and under 0.5% of 40-character ones.
fn wordy(value: &str) -> bool {
    let bytes = value.as_bytes();
    let mut in_words = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if bytes[i].is_ascii_uppercase() {
            i += 1;
        }
        let lower_start = i;
        while i < bytes.len() && bytes[i].is_ascii_lowercase() {
            i += 1;
        }
        let run = &bytes[lower_start..i];
        // `Pass`, `Word`: a capital and three lower-case letters; else four lower-case.
        let need = if lower_start > start { 3 } else { 4 };
        if run.len() >= need && run.iter().any(|b| b"aeiou".contains(b)) {
            in_words += i - start;
        }
        if i == start {
            i += 1;
        }
    }
    in_words * 2 >= bytes.len()
}

fn is_uuid(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// True when the whole of `value` (trimmed) looks like a credential of a known kind.
pub fn looks_like_secret(value: &str) -> bool {
    !find_secrets(value.trim()).is_empty()
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Length of the checksum at the end of a tollgate key (DESIGN.md "Keys").
const TOLLGATE_CHECKSUM_LEN: usize = 6;

/// True when `key` (`tg_live_…`, `tg_test_…`, `tg_admin_…`) carries a valid base62 CRC32
/// checksum of everything before it. A key with a broken checksum is a typo or a made-up
/// example, not a leaked credential.
pub fn tollgate_checksum_holds(key: &str) -> bool {
    if key.len() <= TOLLGATE_CHECKSUM_LEN || !key.is_ascii() {
        return false;
    }
    let (body, sum) = key.split_at(key.len() - TOLLGATE_CHECKSUM_LEN);
    let mut n = u64::from(crc32(body.as_bytes()));
    let mut expected = [b'0'; TOLLGATE_CHECKSUM_LEN];
    for slot in expected.iter_mut().rev() {
        // `n % 62` is below 62, so the index is in range.
        *slot = BASE62.get((n % 62) as usize).copied().unwrap_or(b'0');
        n /= 62;
    }
    expected == sum.as_bytes()
}

/// CRC-32 (IEEE), bitwise: keys are short, and the guard crate stays dependency-light.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

mod value_run;

#[cfg(test)]
mod tests;
