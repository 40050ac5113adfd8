//! `[guards]` and `[routes.NAME.guards]`: the per-route policy of the input and output guards
//! (PII, injection, content, output validation; checklist DP-1, MG-1, MG-2, MG-4).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ConfigDuration;

/// Guard settings, globally under `[guards]` or per route under `[routes.NAME.guards]`
/// (a route's setting replaces the global one of the same name).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardsConfig {
    /// PII detection and masking (DP-1).
    pub pii: Option<PiiPolicyConfig>,
    /// Action on credentials found in prompts: `redact` (default), `hash`, `block` or `allow`.
    pub secrets: Option<String>,
    /// Prompt-injection defence (MG-4).
    pub injection: Option<InjectionPolicyConfig>,
    /// Content filtering of answers and, optionally, of inputs (MG-2).
    pub content: Option<ContentPolicyConfig>,
    /// Output validation (MG-1).
    pub output: Option<OutputPolicyConfig>,
}

/// Prompt-injection policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectionPolicyConfig {
    /// Set to false to turn injection scoring off for the route.
    pub enabled: Option<bool>,
    /// `block` (default) or `flag` (record only).
    pub action: Option<String>,
    /// Score from which user text is an injection (default 0.5).
    pub user_threshold: Option<f32>,
    /// Score from which tool results and retrieved content are (default 0.3: stricter).
    pub untrusted_threshold: Option<f32>,
    /// Delimit and datamark tool results before sending, and tell the model (default off).
    pub spotlight: Option<bool>,
    /// Put a random canary in the system prompt and block answers that leak it (default off).
    pub canary: Option<bool>,
}

/// Content policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentPolicyConfig {
    /// Set to false to turn content filtering off for the route.
    pub enabled: Option<bool>,
    /// Also classify inputs (default: answers only).
    pub inputs: Option<bool>,
    /// `block` (default) or `flag`.
    pub action: Option<String>,
    /// Per-category thresholds 0..1 (`hate`, `harassment`, `self-harm`, `sexual`, `violence`,
    /// `weapons`); `sexual/minors` is always blocked.
    #[serde(default)]
    pub thresholds: BTreeMap<String, f32>,
    /// Phrases an answer must touch (off-topic answers are refused); empty = any topic.
    #[serde(default)]
    pub allow_topics: Vec<String>,
    /// Phrases an answer must not contain.
    #[serde(default)]
    pub deny_topics: Vec<String>,
    /// Route alias of a guard model (e.g. Llama Guard) asked about each answer (and each
    /// input when `inputs = true`); it must answer `safe` or `unsafe`.
    pub guard_route: Option<String>,
    /// Time allowed for the guard model's verdict (default 2s).
    pub guard_timeout: Option<ConfigDuration>,
    /// When the guard model cannot answer: `open` (default: let through, log) or `closed`.
    pub guard_fail: Option<String>,
    /// How a guard model judges streamed answers. `end` (default): the answer streams
    /// without added latency and the guard model judges the complete text before the
    /// stream's last events go out; an unsafe verdict ends the stream with an error event,
    /// but what streamed before it was seen. `buffer`: the whole answer is held (up to
    /// `output.stream_buffer_bytes`) until the verdict, so nothing unsafe is shown, at the
    /// cost of time to first token.
    pub guard_stream: Option<String>,
}

/// Output validation policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputPolicyConfig {
    /// A credential in an answer: `block` (default) or `flag`.
    pub secrets: Option<String>,
    /// Links and images carrying data to domains not allowed: `block` (default) or `flag`.
    pub exfil_links: Option<String>,
    /// Domains (and their subdomains) links may point to with data.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Regular expressions an answer must not match.
    #[serde(default)]
    pub deny_patterns: Vec<String>,
    /// Regular expressions a complete answer must match.
    #[serde(default)]
    pub require_patterns: Vec<String>,
    /// PII in an answer that did not come from the prompt (prompt PII is tokenized, so any
    /// raw identifier is new): `flag` (default), `redact` or `block`.
    pub pii_leak: Option<String>,
    /// Longest answer in characters.
    pub max_chars: Option<usize>,
    /// A JSON Schema every answer on this route must satisfy (requests' own
    /// `response_format: json_schema` is enforced without it).
    pub json_schema: Option<toml::Value>,
    /// When an answer fails its schema: `reask` (default: once, with the error), `fallback`
    /// (answer with `fallback_message`) or `block`.
    pub on_invalid: Option<String>,
    /// The safe answer given when the model fails or its output stays invalid (MG-3).
    pub fallback_message: Option<String>,
    /// Streams whose answer must be judged whole (a JSON Schema applies, or the guard model
    /// runs with `guard_stream = "buffer"`) are held in memory up to this many bytes of
    /// events (default 1 MiB, at most 16 MiB), then validated, re-asked or replaced exactly
    /// like whole answers and sent as a stream. An answer outgrowing the buffer is released
    /// and streams live; if it then fails, the stream ends with an error event.
    pub stream_buffer_bytes: Option<usize>,
}

/// PII policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiPolicyConfig {
    /// Set to false to turn PII masking off for the route.
    pub enabled: Option<bool>,
    /// Action for types not listed in `actions` (default: `token` for identifiers, `allow`
    /// for URL, DATE and LOCATION).
    pub default_action: Option<String>,
    /// Action per type label (`EMAIL = "redact"`, `SSN = "block"`, …).
    #[serde(default)]
    pub actions: BTreeMap<String, String>,
    /// Minimum detection score, 0..1 (default 0.5).
    pub threshold: Option<f32>,
    /// Custom recognizers.
    #[serde(default)]
    pub custom: Vec<CustomRecognizerConfig>,
}

/// A custom recognizer: a regex or a word list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRecognizerConfig {
    /// Label used in masks, e.g. `EMPLOYEE_ID` (A-Z, 0-9, _).
    pub label: String,
    /// Regular expression (Rust `regex` syntax).
    pub pattern: Option<String>,
    /// Or: whole words matched case-insensitively.
    pub words: Option<Vec<String>>,
    /// Score 0..1 (default 0.8).
    pub score: Option<f32>,
    /// Words that raise the score when near.
    #[serde(default)]
    pub context: Vec<String>,
    /// Action (default `token`).
    pub action: Option<String>,
}
