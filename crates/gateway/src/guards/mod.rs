//! Guard stages in the live path: input masking of PII and credentials before a request
//! leaves (DP-1, AC-1), and restoration of reversible tokens in the response, streamed or
//! not.
//!
//! A route's [`GuardSet`] is built once from config. Per request, one
//! [`tollgate_guard::mask::Masker`] holds the token map, so the same value gets the same
//! token in every message and comes back in the answer. Only text positions are touched:
//! message contents, text parts, tool-call arguments, tool results, the system prompt.

pub mod checks;
pub mod remote;
pub mod schema;

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};
use tollgate_guard::mask::{Action, Masker, Span, StreamRestorer};
use tollgate_guard::pii::{CustomRecognizer, PiiDetector, PiiType};

use crate::config::{GuardsConfig, PiiPolicyConfig};
use crate::error::GatewayError;
use crate::sse::SseEvent;
use crate::wire::WireFormat;

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

/// One text channel of a stream (the message text, one tool call's arguments, one Anthropic
/// content block): tokens restored, then held back until the output checks have seen them.
#[derive(Debug, Clone)]
struct Channel {
    restorer: StreamRestorer,
    pending: String,
}

/// Restores tokens in a client-format event stream and runs the output checks on it, one
/// [`Channel`] per text channel, flushing a channel's held-back tail just before the event
/// that closes it. A violation replaces the rest of the stream with one error event.
#[derive(Debug)]
pub struct StreamOutputGuard {
    format: WireFormat,
    template: StreamRestorer,
    channels: BTreeMap<i64, Channel>,
    last_chunk: Option<Value>,
    checker: Option<checks::StreamChecker>,
    hold_back: usize,
    json_channels: std::collections::BTreeSet<i64>,
    /// What the output checks found.
    pub report: checks::CheckReport,
    /// The violation that ended the stream, if any.
    pub violation: Option<GatewayError>,
}

impl StreamOutputGuard {
    /// A guard restoring `masker`'s tokens (unless `restore` is off) and running `checker`;
    /// `None` when there is nothing to do, so such streams pass untouched.
    pub fn new(
        format: WireFormat,
        masker: &Masker,
        restore: bool,
        checker: Option<checks::StreamChecker>,
    ) -> Option<Self> {
        let restoring = restore && masker.has_tokens();
        if !restoring && checker.is_none() {
            return None;
        }
        let template = if restoring {
            masker.stream_restorer()
        } else {
            Masker::new([0; 32]).stream_restorer()
        };
        Some(Self {
            format,
            template,
            channels: BTreeMap::new(),
            last_chunk: None,
            hold_back: if checker.is_some() {
                checks::STREAM_HOLD_BACK
            } else {
                0
            },
            json_channels: std::collections::BTreeSet::new(),
            checker,
            report: checks::CheckReport::default(),
            violation: None,
        })
    }

    /// Whether a violation ended the stream.
    pub fn ended(&self) -> bool {
        self.violation.is_some()
    }

    /// Feed text of channel `id`; returns what may be released now (or `None` on a violation).
    fn push(&mut self, id: i64, text: &str, out: &mut Vec<SseEvent>) -> Option<String> {
        let template = self.template.clone();
        let ch = self.channels.entry(id).or_insert_with(|| Channel {
            restorer: template,
            pending: String::new(),
        });
        let restored = ch.restorer.push(text);
        ch.pending.push_str(&restored);
        if let Some(c) = self.checker.as_mut() {
            if let Err(e) = c.check(&restored, false, &mut self.report) {
                self.fail(e, out);
                return None;
            }
        }
        let ch = self.channels.get_mut(&id)?;
        let mut cut = ch.pending.len().saturating_sub(self.hold_back);
        while !ch.pending.is_char_boundary(cut) {
            cut -= 1;
        }
        Some(ch.pending.drain(..cut).collect())
    }

    /// Close channel `id`; returns its remaining text (or `None` on a violation).
    fn close(&mut self, id: i64, out: &mut Vec<SseEvent>) -> Option<String> {
        let mut ch = self.channels.remove(&id)?;
        let rest = ch.restorer.finish();
        ch.pending.push_str(&rest);
        if let Some(c) = self.checker.as_mut() {
            if let Err(e) = c.check(&rest, true, &mut self.report) {
                self.fail(e, out);
                return None;
            }
        }
        Some(ch.pending)
    }

    fn fail(&mut self, e: GatewayError, out: &mut Vec<SseEvent>) {
        out.push(match self.format {
            WireFormat::OpenAi => SseEvent::data(e.body(WireFormat::OpenAi).to_string()),
            WireFormat::Anthropic => {
                SseEvent::named("error", e.body(WireFormat::Anthropic).to_string())
            }
        });
        self.violation = Some(e);
    }

    /// Process one outgoing event; the result goes to the client in its place.
    pub fn process(&mut self, ev: SseEvent, out: &mut Vec<SseEvent>) {
        if self.ended() {
            return;
        }
        match self.format {
            WireFormat::OpenAi => self.process_openai(ev, out),
            WireFormat::Anthropic => self.process_anthropic(ev, out),
        }
    }

    fn flush_openai(&mut self, out: &mut Vec<SseEvent>) {
        let ids: Vec<i64> = self.channels.keys().copied().collect();
        for id in ids {
            let Some(rest) = self.close(id, out) else {
                return;
            };
            if rest.is_empty() {
                continue;
            }
            let Some(template) = self.last_chunk.clone() else {
                continue;
            };
            let delta = if id < 0 {
                serde_json::json!({"content": rest})
            } else {
                serde_json::json!({"tool_calls": [{"index": id, "function": {"arguments": rest}}]})
            };
            let mut chunk = template;
            chunk["choices"] =
                serde_json::json!([{"index": 0, "delta": delta, "finish_reason": null}]);
            out.push(SseEvent::data(chunk.to_string()));
        }
    }

    fn process_openai(&mut self, ev: SseEvent, out: &mut Vec<SseEvent>) {
        if ev.data.trim() == "[DONE]" {
            self.flush_openai(out);
            if !self.ended() {
                out.push(ev);
            }
            return;
        }
        let Ok(mut v) = serde_json::from_str::<Value>(&ev.data) else {
            out.push(ev);
            return;
        };
        let finishing = v["choices"]
            .as_array()
            .is_none_or(|c| c.is_empty() || c.iter().any(|c| !c["finish_reason"].is_null()));
        if !finishing {
            let mut template = v.clone();
            template["choices"] = Value::Array(Vec::new());
            self.last_chunk = Some(template);
        }
        if finishing {
            self.flush_openai(out);
            if self.ended() {
                return;
            }
        }
        let mut changed = false;
        if let Some(t) = v
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
            .map(str::to_owned)
        {
            let Some(released) = self.push(-1, &t, out) else {
                return;
            };
            if let Some(Value::String(t)) = v.pointer_mut("/choices/0/delta/content") {
                *t = released;
            }
            changed = true;
        }
        if let Some(Value::Array(calls)) = v.pointer("/choices/0/delta/tool_calls").cloned() {
            for (k, c) in calls.iter().enumerate() {
                let idx = c["index"].as_i64().unwrap_or(0);
                if let Some(args) = c.pointer("/function/arguments").and_then(Value::as_str) {
                    let Some(released) = self.push(idx, args, out) else {
                        return;
                    };
                    if let Some(Value::String(a)) = v.pointer_mut(&format!(
                        "/choices/0/delta/tool_calls/{k}/function/arguments"
                    )) {
                        *a = released;
                    }
                    changed = true;
                }
            }
        }
        out.push(if changed {
            SseEvent {
                event: ev.event,
                data: v.to_string(),
            }
        } else {
            ev
        });
    }

    fn process_anthropic(&mut self, ev: SseEvent, out: &mut Vec<SseEvent>) {
        let Ok(mut v) = serde_json::from_str::<Value>(&ev.data) else {
            out.push(ev);
            return;
        };
        let index = v["index"].as_i64().unwrap_or(0);
        match v["type"].as_str() {
            Some("content_block_delta") => {
                let field = match v["delta"]["type"].as_str() {
                    Some("text_delta") => "text",
                    Some("input_json_delta") => "partial_json",
                    _ => {
                        out.push(ev);
                        return;
                    }
                };
                if field == "partial_json" {
                    self.json_channels.insert(index);
                }
                let text = v["delta"][field].as_str().unwrap_or_default().to_owned();
                let Some(released) = self.push(index, &text, out) else {
                    return;
                };
                v["delta"][field] = Value::String(released);
                out.push(SseEvent {
                    event: ev.event,
                    data: v.to_string(),
                });
            }
            Some("content_block_stop") => {
                let kind = if self.channels.contains_key(&index) {
                    Some(())
                } else {
                    None
                };
                if kind.is_some() {
                    let Some(rest) = self.close(index, out) else {
                        return;
                    };
                    if !rest.is_empty() {
                        let delta = if self.json_channels.contains(&index) {
                            serde_json::json!({"type": "input_json_delta", "partial_json": rest})
                        } else {
                            serde_json::json!({"type": "text_delta", "text": rest})
                        };
                        out.push(SseEvent::named(
                            "content_block_delta",
                            serde_json::json!({"type": "content_block_delta", "index": index, "delta": delta}).to_string(),
                        ));
                    }
                }
                out.push(ev);
            }
            _ => out.push(ev),
        }
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

    #[test]
    fn openai_stream_tokens_split_across_chunks_are_restored() {
        let mut masker = Masker::new([0; 32]);
        masker.apply(
            "bob@x.io",
            &[Span {
                start: 0,
                end: 8,
                label: "EMAIL",
                action: Action::Token,
            }],
        );
        let mut g = StreamOutputGuard::new(WireFormat::OpenAi, &masker, true, None).unwrap();
        let chunk = |c: &str| {
            SseEvent::data(json!({"id": "x", "choices": [{"index": 0, "delta": {"content": c}, "finish_reason": null}]}).to_string())
        };
        let mut out = Vec::new();
        for piece in ["Mail <EM", "AIL_", "1> now <EMAIL_"] {
            g.process(chunk(piece), &mut out);
        }
        g.process(
            SseEvent::data(
                json!({"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                    .to_string(),
            ),
            &mut out,
        );
        g.process(SseEvent::data("[DONE]"), &mut out);
        let text: String = out
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(text, "Mail bob@x.io now <EMAIL_");
    }

    #[test]
    fn anthropic_stream_is_flushed_before_block_stop() {
        let mut masker = Masker::new([0; 32]);
        masker.apply(
            "bob@x.io",
            &[Span {
                start: 0,
                end: 8,
                label: "EMAIL",
                action: Action::Token,
            }],
        );
        let mut g = StreamOutputGuard::new(WireFormat::Anthropic, &masker, true, None).unwrap();
        let mut out = Vec::new();
        for piece in ["Hi <EMA", "IL_1"] {
            g.process(SseEvent::named("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}).to_string()), &mut out);
        }
        g.process(
            SseEvent::named(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}).to_string(),
            ),
            &mut out,
        );
        let text: String = out
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
            .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(text, "Hi <EMAIL_1");
        assert_eq!(
            out.last().unwrap().event.as_deref(),
            Some("content_block_stop")
        );
    }
}
