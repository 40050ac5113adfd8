//! Guard stages in the live path: input masking of PII and credentials before a request
//! leaves (DP-1, AC-1), and restoration of reversible tokens in the response, streamed or
//! not.
//!
//! A route's [`GuardSet`] is built once from config. Per request, one
//! [`tollgate_guard::mask::Masker`] holds the token map, so the same value gets the same
//! token in every message and comes back in the answer. Only text positions are touched:
//! message contents, text parts, tool-call arguments, tool results, the system prompt, and a
//! text completion's prompts and suffix.

pub mod checks;
pub mod remote;
pub mod schema;
pub mod stream;

pub use stream::StreamOutputGuard;

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};
use tollgate_guard::mask::{Action, Masker, Span};
use tollgate_guard::pii::{CustomRecognizer, PiiDetector, PiiType};

use crate::config::{GuardsConfig, PiiPolicyConfig};
use crate::error::GatewayError;
use crate::wire::WireFormat;
use crate::wire::completion::CompletionRequest;

/// Label used for credentials found in prompts.
pub const SECRET_LABEL: &str = "SECRET";

/// Default PII action per type: reversible tokens for identifiers, detection only for what
/// prompts legitimately carry (links, ordinary dates, city names).
pub fn default_action(kind: PiiType) -> Action {
    match kind {
        PiiType::Url | PiiType::Date | PiiType::Location => Action::Allow,
        _ => Action::Token,
    }
}

/// The PII stage of a route.
#[derive(Debug, Clone)]
pub struct PiiStage {
    detector: PiiDetector,
    actions: HashMap<PiiType, Action>,
    custom_actions: Vec<Action>,
    default: Option<Action>,
}

impl PiiStage {
    fn action(&self, kind: PiiType) -> Action {
        if let PiiType::Custom(i) = kind {
            return self
                .custom_actions
                .get(usize::from(i))
                .copied()
                .unwrap_or(Action::Token);
        }
        self.actions
            .get(&kind)
            .copied()
            .or(self.default)
            .unwrap_or_else(|| default_action(kind))
    }
}

/// The guards of one route, built from `[guards]` and the route's own `guards` table.
#[derive(Debug, Clone)]
pub struct GuardSet {
    pii: Option<PiiStage>,
    secrets: Action,
    /// Injection, content and output checks.
    pub checks: checks::Checks,
}

/// What the input guards did to one request (counts by label, never values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputReport {
    /// PII detections acted on or seen, by label.
    pub pii: BTreeMap<String, usize>,
    /// Credentials found, by label.
    pub secrets: BTreeMap<String, usize>,
}

impl InputReport {
    /// Compact text for logs and the `x-tollgate-guards` header: `pii=EMAIL:1,PHONE:2;secrets=SECRET:1`.
    pub fn summary(&self) -> Option<String> {
        let part = |name: &str, m: &BTreeMap<String, usize>| {
            (!m.is_empty()).then(|| {
                format!(
                    "{name}={}",
                    m.iter()
                        .map(|(k, v)| format!("{k}:{v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                )
            })
        };
        let parts: Vec<String> = [part("pii", &self.pii), part("secrets", &self.secrets)]
            .into_iter()
            .flatten()
            .collect();
        (!parts.is_empty()).then(|| parts.join(";"))
    }
}

impl GuardSet {
    /// Build from the global and route guard config (route settings replace global ones).
    pub fn build(global: &GuardsConfig, route: Option<&GuardsConfig>) -> Result<Self, String> {
        let pii_cfg = route.and_then(|r| r.pii.as_ref()).or(global.pii.as_ref());
        let secrets_word = route
            .and_then(|r| r.secrets.as_deref())
            .or(global.secrets.as_deref())
            .unwrap_or("redact");
        let secrets = Action::parse(secrets_word)
            .ok_or_else(|| format!("unknown secrets action {secrets_word:?}"))?;
        if matches!(secrets, Action::Token | Action::Partial) {
            // A credential must never come back in an answer, nor be half-visible.
            return Err("secrets action must be redact, hash, block or allow".into());
        }
        let pii = match pii_cfg {
            Some(PiiPolicyConfig {
                enabled: Some(false),
                ..
            }) => None,
            cfg => Some(pii_stage(cfg)?),
        };
        let checks = checks::Checks::build(global, route)?;
        Ok(Self {
            pii,
            secrets,
            checks,
        })
    }

    /// Mask every text position of a chat body in `format`. Blocks return the guard error.
    pub fn mask_chat(
        &self,
        format: WireFormat,
        body: &mut Map<String, Value>,
        masker: &mut Masker,
        report: &mut InputReport,
    ) -> Result<(), GatewayError> {
        let mut blocked: Option<String> = None;
        for_each_request_text(format, body, &mut |s: &mut String| {
            if blocked.is_none() {
                if let Err(label) = self.mask_text(s, masker, report) {
                    blocked = Some(label);
                }
            }
        });
        match blocked {
            Some(label) => Err(GatewayError::blocked("pii", &label)),
            None => Ok(()),
        }
    }

    /// Mask every prompt (and the suffix) of a legacy text completion, exactly as chat user
    /// text. Blocks return the guard error.
    pub fn mask_completion(
        &self,
        request: &mut CompletionRequest,
        masker: &mut Masker,
        report: &mut InputReport,
    ) -> Result<(), GatewayError> {
        let mut blocked: Option<String> = None;
        request.for_each_text(&mut |s: &mut String| {
            if blocked.is_none() {
                if let Err(label) = self.mask_text(s, masker, report) {
                    blocked = Some(label);
                }
            }
        });
        match blocked {
            Some(label) => Err(GatewayError::blocked("pii", &label)),
            None => Ok(()),
        }
    }

    /// Mask embeddings inputs.
    pub fn mask_embeddings(
        &self,
        body: &mut Map<String, Value>,
        masker: &mut Masker,
        report: &mut InputReport,
    ) -> Result<(), GatewayError> {
        let mut blocked = None;
        match body.get_mut("input") {
            Some(Value::String(s)) => {
                if let Err(l) = self.mask_text(s, masker, report) {
                    blocked = Some(l);
                }
            }
            Some(Value::Array(items)) => {
                for v in items {
                    if let Value::String(s) = v {
                        if let Err(l) = self.mask_text(s, masker, report) {
                            blocked = Some(l);
                            break;
                        }
                    }
                }
            }
            _ => {}
        }
        match blocked {
            Some(label) => Err(GatewayError::blocked("pii", &label)),
            None => Ok(()),
        }
    }

    /// Mask one string in place; `Err(label)` when a blocking type was found.
    fn mask_text(
        &self,
        s: &mut String,
        masker: &mut Masker,
        report: &mut InputReport,
    ) -> Result<(), String> {
        let secrets = tollgate_guard::secret::find_secrets(s);
        let pii = match &self.pii {
            Some(stage) => stage.detector.detect(s),
            None => Vec::new(),
        };
        if secrets.is_empty() && pii.is_empty() {
            return Ok(());
        }
        let mut spans: Vec<Span<'_>> = Vec::with_capacity(secrets.len() + pii.len());
        let mut labels: Vec<String> = Vec::new();
        for m in &secrets {
            *report.secrets.entry(SECRET_LABEL.to_owned()).or_default() += 1;
            spans.push(Span {
                start: m.start,
                end: m.end,
                label: SECRET_LABEL,
                action: self.secrets,
            });
        }
        if let Some(stage) = &self.pii {
            for d in &pii {
                labels.push(stage.detector.label(d.kind).to_owned());
            }
            for (d, label) in pii.iter().zip(labels.iter()) {
                // Credentials win over a PII reading of the same characters.
                if secrets.iter().any(|m| d.start < m.end && m.start < d.end) {
                    continue;
                }
                *report.pii.entry(label.clone()).or_default() += 1;
                spans.push(Span {
                    start: d.start,
                    end: d.end,
                    label,
                    action: stage.action(d.kind),
                });
            }
        }
        spans.sort_by_key(|s| s.start);
        let masked = masker.apply(s, &spans);
        if let Some(label) = masked.blocked {
            return Err(label);
        }
        *s = masked.text;
        Ok(())
    }
}

fn pii_stage(cfg: Option<&PiiPolicyConfig>) -> Result<PiiStage, String> {
    let mut actions = HashMap::new();
    let mut custom = Vec::new();
    let mut custom_actions = Vec::new();
    let mut default = None;
    let mut threshold = tollgate_guard::pii::DEFAULT_THRESHOLD;
    if let Some(c) = cfg {
        if let Some(d) = &c.default_action {
            default = Some(Action::parse(d).ok_or_else(|| format!("unknown PII action {d:?}"))?);
        }
        for (label, word) in &c.actions {
            let kind =
                PiiType::from_label(label).ok_or_else(|| format!("unknown PII type {label:?}"))?;
            let action = Action::parse(word)
                .ok_or_else(|| format!("unknown PII action {word:?} for {label}"))?;
            actions.insert(kind, action);
        }
        if let Some(t) = c.threshold {
            threshold = t;
        }
        for r in &c.custom {
            let rec = match (&r.pattern, &r.words) {
                (Some(p), _) => {
                    CustomRecognizer::regex(&r.label, p, r.score.unwrap_or(0.8), r.context.clone())
                }
                (None, Some(w)) => CustomRecognizer::words(&r.label, w, r.score.unwrap_or(0.8)),
                (None, None) => {
                    return Err(format!(
                        "custom recognizer {} needs `pattern` or `words`",
                        r.label
                    ));
                }
            }
            .map_err(|e| e.to_string())?;
            custom.push(rec);
            let word = r.action.as_deref().unwrap_or("token");
            custom_actions.push(
                Action::parse(word)
                    .ok_or_else(|| format!("unknown PII action {word:?} for {}", r.label))?,
            );
        }
    }
    Ok(PiiStage {
        detector: PiiDetector::new(custom).with_threshold(threshold),
        actions,
        custom_actions,
        default,
    })
}

fn walk_strings(v: &mut Value, f: &mut impl FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter_mut().for_each(|x| walk_strings(x, f)),
        Value::Object(o) => o.values_mut().for_each(|x| walk_strings(x, f)),
        _ => {}
    }
}

fn text_blocks(v: &mut Value, f: &mut impl FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(blocks) => {
            for b in blocks {
                if let Some(Value::String(t)) = b.get_mut("text") {
                    f(t);
                }
            }
        }
        _ => {}
    }
}

/// Call `f` on every user-data text position of a chat request.
pub fn for_each_request_text(
    format: WireFormat,
    body: &mut Map<String, Value>,
    f: &mut impl FnMut(&mut String),
) {
    if let Some(system) = body.get_mut("system") {
        text_blocks(system, f);
    }
    let Some(Value::Array(messages)) = body.get_mut("messages") else {
        return;
    };
    for m in messages {
        match format {
            WireFormat::OpenAi => {
                if let Some(c) = m.get_mut("content") {
                    text_blocks(c, f);
                }
                if let Some(Value::Array(calls)) = m.get_mut("tool_calls") {
                    for c in calls {
                        if let Some(Value::String(a)) =
                            c.get_mut("function").and_then(|x| x.get_mut("arguments"))
                        {
                            f(a);
                        }
                    }
                }
            }
            WireFormat::Anthropic => match m.get_mut("content") {
                Some(Value::String(s)) => f(s),
                Some(Value::Array(blocks)) => {
                    for b in blocks {
                        match b.get("type").and_then(Value::as_str) {
                            Some("text") => {
                                if let Some(Value::String(t)) = b.get_mut("text") {
                                    f(t);
                                }
                            }
                            Some("tool_result") => {
                                if let Some(c) = b.get_mut("content") {
                                    text_blocks(c, f);
                                }
                            }
                            Some("tool_use") => {
                                if let Some(input) = b.get_mut("input") {
                                    walk_strings(input, f);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            },
        }
    }
}

/// Redact PII that appears in a non-streamed answer (`output.pii_leak = "redact"`); run
/// before tokens are restored, so the user's own (tokenized) data comes back untouched.
pub fn redact_leaks(v: &mut Value) {
    walk_strings(v, &mut |s: &mut String| {
        if let Some(r) = checks::redact_pii(s) {
            *s = r;
        }
    });
}

/// Restore tokens everywhere in a non-streamed response.
pub fn restore_json(v: &mut Value, masker: &Masker) {
    if masker.has_tokens() {
        walk_strings(v, &mut |s: &mut String| {
            if s.contains('<') {
                *s = masker.restore(s);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set() -> GuardSet {
        GuardSet::build(&GuardsConfig::default(), None).unwrap()
    }

    #[test]
    fn masks_every_text_position_with_shared_tokens() {
        let mut body = json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "Agent for jane@corp.com"},
                {"role": "user", "content": [{"type": "text", "text": "mail jane@corp.com about 4111 1111 1111 1111"}]},
                {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{\"to\":\"jane@corp.com\"}"}}]}
            ]
        });
        let Value::Object(map) = &mut body else {
            unreachable!()
        };
        let mut masker = Masker::new([0; 32]);
        let mut report = InputReport::default();
        set()
            .mask_chat(WireFormat::OpenAi, map, &mut masker, &mut report)
            .unwrap();
        let text = body.to_string();
        assert!(
            !text.contains("jane@corp.com") && !text.contains("4111"),
            "{text}"
        );
        assert_eq!(body["messages"][0]["content"], "Agent for <EMAIL_1>");
        assert!(
            body["messages"][2]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
                .contains("<EMAIL_1>")
        );
        assert_eq!(report.pii["EMAIL"], 3);
        assert_eq!(report.summary().unwrap(), "pii=CARD:1,EMAIL:3");
        let mut answer = json!({"choices": [{"message": {"content": "Sent to <EMAIL_1>."}}]});
        restore_json(&mut answer, &masker);
        assert_eq!(
            answer["choices"][0]["message"]["content"],
            "Sent to jane@corp.com."
        );
    }

    #[test]
    fn secrets_are_redacted_and_never_tokenized() {
        // tollgate:ignore-next-line (test fixture: a fake, format-valid key)
        let key = "AIzaSyD4bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x";
        let mut body = json!({"model": "m", "max_tokens": 5, "system": format!("use {key}"), "messages": [{"role": "user", "content": "hi"}]});
        let Value::Object(map) = &mut body else {
            unreachable!()
        };
        let mut masker = Masker::new([0; 32]);
        let mut report = InputReport::default();
        set()
            .mask_chat(WireFormat::Anthropic, map, &mut masker, &mut report)
            .unwrap();
        assert_eq!(body["system"], "use [SECRET]");
        assert!(
            GuardSet::build(
                &GuardsConfig {
                    secrets: Some("token".into()),
                    ..GuardsConfig::default()
                },
                None
            )
            .is_err()
        );
    }

    #[test]
    fn block_action_refuses_with_content_filter() {
        let cfg = GuardsConfig {
            pii: Some(PiiPolicyConfig {
                actions: [("SSN".to_owned(), "block".to_owned())].into(),
                ..PiiPolicyConfig::default()
            }),
            ..GuardsConfig::default()
        };
        let g = GuardSet::build(&cfg, None).unwrap();
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "my SSN is 123-45-6789"}]});
        let Value::Object(map) = &mut body else {
            unreachable!()
        };
        let e = g
            .mask_chat(
                WireFormat::OpenAi,
                map,
                &mut Masker::new([0; 32]),
                &mut InputReport::default(),
            )
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(
            e.body(WireFormat::OpenAi)["error"]["code"],
            "content_filter"
        );
        assert!(!e.message.contains("6789"));
    }
}
