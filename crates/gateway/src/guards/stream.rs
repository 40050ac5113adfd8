//! Output guards on streamed answers (SSE), in the client's wire format, after translation,
//! so an OpenAI client of an Anthropic upstream (and the reverse) gets the same guards.
//!
//! [`StreamOutputGuard`] keeps one [`Channel`] per text channel (a choice's message text, a
//! legacy text completion's `choices[].text`, a tool call's arguments, an Anthropic content
//! block). Each piece of upstream text, still
//! carrying the request's reversible tokens, goes through these steps in order:
//!
//! 1. the output checks ([`checks::StreamChecker`]) see it as it arrives: canary, credentials,
//!    exfiltration links, deny patterns and length on every piece; PII leakage and content
//!    every few hundred bytes and at the end; required patterns at the end. They see the text
//!    the non-streamed path checks: the user's own data is still a token, so it is not a leak;
//! 2. with `output.pii_leak = "redact"`, leaked PII is replaced by `[TYPE]`, detected over
//!    the held-back text plus [`REDACT_CONTEXT_BYTES`] of already released text (context words
//!    raise detector scores), so an e-mail split across chunks is still caught whole;
//! 3. the last [`checks::STREAM_HOLD_BACK`] bytes are held back (and more, down to the start
//!    of any PII detection that reaches into them), so a canary, a credential, a link or a PII
//!    value split across chunks is judged before any of it reaches the client;
//! 4. reversible tokens are restored ([`StreamRestorer`] holds back an unfinished token).
//!
//! A channel's held-back tail is flushed just before the event that closes it. A violation
//! replaces the rest of the stream with one well-formed error event in the client's format.
//!
//! **Bounds.** Held-back text per channel is at most `STREAM_HOLD_BACK` bytes plus the
//! longest PII value that reaches into it; a value longer than the hold-back window that
//! started more than `STREAM_HOLD_BACK` bytes before the end can be partly released before it
//! is recognisable (no real e-mail, card or phone number is that long). The text kept for the
//! end-of-stream stages (guard model, JSON Schema) is capped by [`StreamOutputGuard::with_capture`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tollgate_guard::mask::{Action, Masker, Span, StreamRestorer};

use super::checks;
use crate::error::GatewayError;
use crate::sse::SseEvent;
use crate::wire::WireFormat;

/// Released text kept before a channel's held-back text when looking for PII to redact, so a
/// context word just before a value still counts.
pub const REDACT_CONTEXT_BYTES: usize = 64;

/// Channel key: (choice index, slot); slot -1 is the message text, otherwise the tool-call
/// index (OpenAI) or the content-block index (Anthropic, choice 0).
type ChannelKey = (i64, i64);

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One text channel of a stream: raw text not yet released, the tail of released raw text
/// (redaction context), and the token restorer.
#[derive(Debug, Clone)]
struct Channel {
    raw: String,
    context: String,
    restorer: StreamRestorer,
}

impl Channel {
    /// Release raw text, keeping `hold` bytes back (unless `all`), redacting leaked PII when
    /// `redact`; returns the released (redacted, still tokenized) text.
    fn release(&mut self, hold: usize, redact: bool, all: bool) -> String {
        let mut cut = if all {
            self.raw.len()
        } else {
            floor_boundary(&self.raw, self.raw.len().saturating_sub(hold))
        };
        let mut spans: Vec<(usize, usize, &'static str)> = Vec::new();
        if redact && !self.raw.is_empty() {
            let ctx_len = self.context.len();
            let joined = format!("{}{}", self.context, self.raw);
            for (s, e, label) in checks::pii_leaks(&joined) {
                // Wholly inside text already released: it was judged (and let go) then.
                if e <= ctx_len {
                    continue;
                }
                spans.push((s.saturating_sub(ctx_len), e - ctx_len, label));
            }
            // A value that reaches past the cut may still grow: hold it back whole.
            loop {
                let before = cut;
                for &(s, e, _) in &spans {
                    if s < cut && e > cut {
                        cut = s;
                    }
                }
                if cut == before {
                    break;
                }
            }
        }
        let segment: String = self.raw.drain(..cut).collect();
        self.context.push_str(&segment);
        if self.context.len() > REDACT_CONTEXT_BYTES {
            let from = self.context.len() - REDACT_CONTEXT_BYTES;
            let mut from = from;
            while !self.context.is_char_boundary(from) {
                from += 1;
            }
            self.context.drain(..from);
        }
        let spans: Vec<Span<'_>> = spans
            .iter()
            .filter(|(_, e, _)| *e <= cut)
            .map(|&(start, end, label)| Span {
                start,
                end,
                label,
                action: Action::Redact,
            })
            .collect();
        if spans.is_empty() {
            segment
        } else {
            Masker::new([0; 32]).apply(&segment, &spans).text
        }
    }
}

/// Restores tokens in a client-format event stream, redacts leaked PII and runs the output
/// checks on it (see the module doc). A violation replaces the rest of the stream with one
/// error event.
#[derive(Debug)]
pub struct StreamOutputGuard {
    format: WireFormat,
    template: StreamRestorer,
    channels: BTreeMap<ChannelKey, Channel>,
    last_chunk: Option<Value>,
    checker: Option<checks::StreamChecker>,
    redact: bool,
    hold_back: usize,
    json_channels: BTreeSet<i64>,
    captured: String,
    capture_cap: usize,
    capture_overflowed: bool,
    /// Whether the stream is a legacy text completion (`choices[].text`), so held-back tails
    /// go out in that shape.
    text_completion: bool,
    /// What the output checks found.
    pub report: checks::CheckReport,
    /// The violation that ended the stream, if any.
    pub violation: Option<GatewayError>,
}

impl StreamOutputGuard {
    /// A guard restoring `masker`'s tokens (unless `restore` is off) and running `checker`
    /// (which also says whether leaked PII is redacted); `None` when there is nothing to do,
    /// so such streams pass untouched.
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
            redact: checker.as_ref().is_some_and(checks::StreamChecker::redacts),
            json_channels: BTreeSet::new(),
            checker,
            captured: String::new(),
            capture_cap: 0,
            capture_overflowed: false,
            text_completion: false,
            report: checks::CheckReport::default(),
            violation: None,
        })
    }

    /// Keep up to `cap` bytes of the answer's message text (as the model wrote it: tokens
    /// unrestored, leaked PII redacted) for the end-of-stream stages.
    pub fn with_capture(mut self, cap: usize) -> Self {
        self.capture_cap = cap;
        self
    }

    /// The captured message text, or `None` when it outgrew the capture cap.
    pub fn captured(&self) -> Option<&str> {
        (!self.capture_overflowed).then_some(self.captured.as_str())
    }

    /// The first bytes of the captured message text, whatever its length.
    pub fn captured_head(&self) -> &str {
        &self.captured
    }

    /// Whether a violation ended the stream.
    pub fn ended(&self) -> bool {
        self.violation.is_some()
    }

    fn is_text(&self, key: ChannelKey) -> bool {
        match self.format {
            WireFormat::OpenAi => key == (0, -1),
            WireFormat::Anthropic => !self.json_channels.contains(&key.1),
        }
    }

    fn capture(&mut self, key: ChannelKey, text: &str) {
        if self.capture_cap == 0 || text.is_empty() || !self.is_text(key) {
            return;
        }
        let room = self.capture_cap.saturating_sub(self.captured.len());
        if text.len() > room {
            self.capture_overflowed = true;
        }
        let end = floor_boundary(text, room);
        self.captured.push_str(&text[..end]);
    }

    /// Feed text of channel `key`; returns what may be released now (or `None` on a violation).
    fn push(&mut self, key: ChannelKey, text: &str, out: &mut Vec<SseEvent>) -> Option<String> {
        if let Some(c) = self.checker.as_mut() {
            if let Err(e) = c.check(text, false, &mut self.report) {
                self.fail(e, out);
                return None;
            }
        }
        let template = &self.template;
        let ch = self.channels.entry(key).or_insert_with(|| Channel {
            raw: String::new(),
            context: String::new(),
            restorer: template.clone(),
        });
        ch.raw.push_str(text);
        let released = ch.release(self.hold_back, self.redact, false);
        let restored = ch.restorer.push(&released);
        self.capture(key, &released);
        Some(restored)
    }

    /// Close channel `key`; returns its remaining text (or `None` on a violation).
    fn close(&mut self, key: ChannelKey, out: &mut Vec<SseEvent>) -> Option<String> {
        let mut ch = self.channels.remove(&key)?;
        if let Some(c) = self.checker.as_mut() {
            // Everything was checked on arrival; this runs the end-of-answer checks.
            if let Err(e) = c.check("", true, &mut self.report) {
                self.fail(e, out);
                return None;
            }
        }
        let released = ch.release(0, self.redact, true);
        let mut rest = ch.restorer.push(&released);
        rest.push_str(&ch.restorer.finish());
        self.capture(key, &released);
        Some(rest)
    }

    fn fail(&mut self, e: GatewayError, out: &mut Vec<SseEvent>) {
        out.push(error_event(self.format, &e));
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

    /// Close every open channel, each tail as its own chunk shaped like the last one seen.
    fn flush_openai(&mut self, out: &mut Vec<SseEvent>) {
        let keys: Vec<ChannelKey> = self.channels.keys().copied().collect();
        for key in keys {
            let Some(rest) = self.close(key, out) else {
                return;
            };
            let Some(mut chunk) = self.last_chunk.clone().filter(|_| !rest.is_empty()) else {
                continue;
            };
            let (choice, slot) = key;
            if self.text_completion && slot < 0 {
                chunk["choices"] = serde_json::json!([{"index": choice, "text": rest, "finish_reason": null, "logprobs": null}]);
                out.push(SseEvent::data(chunk.to_string()));
                continue;
            }
            let delta = if slot < 0 {
                serde_json::json!({"content": rest})
            } else {
                serde_json::json!({"tool_calls": [{"index": slot, "function": {"arguments": rest}}]})
            };
            chunk["choices"] =
                serde_json::json!([{"index": choice, "delta": delta, "finish_reason": null}]);
            out.push(SseEvent::data(chunk.to_string()));
        }
    }

    fn process_openai(&mut self, ev: SseEvent, out: &mut Vec<SseEvent>) {
        // `None` means a violation ended the stream (its error event is already in `out`).
        let _ = self.process_openai_event(ev, out);
    }

    fn process_openai_event(&mut self, ev: SseEvent, out: &mut Vec<SseEvent>) -> Option<()> {
        if ev.data.trim() == "[DONE]" {
            self.flush_openai(out);
            if !self.ended() {
                out.push(ev);
            }
            return Some(());
        }
        let Ok(mut v) = serde_json::from_str::<Value>(&ev.data) else {
            out.push(ev);
            return Some(());
        };
        let n = v["choices"].as_array().map_or(0, Vec::len);
        if n == 0 {
            // A usage-only chunk (or an error): everything before it must be out first.
            self.flush_openai(out);
            if !self.ended() {
                out.push(ev);
            }
            return Some(());
        }
        let mut template = v.clone();
        template["choices"] = Value::Array(Vec::new());
        self.last_chunk = Some(template);
        for k in 0..n {
            let choice = v["choices"][k]["index"].as_i64().unwrap_or(k as i64);
            if let Some(t) = v["choices"][k]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
            {
                let released = self.push((choice, -1), &t, out)?;
                v["choices"][k]["delta"]["content"] = Value::String(released);
            }
            // A legacy text completion carries its text in the choice itself.
            if let Some(t) = v["choices"][k]["text"].as_str().map(str::to_owned) {
                self.text_completion = true;
                let released = self.push((choice, -1), &t, out)?;
                v["choices"][k]["text"] = Value::String(released);
            }
            let calls = v["choices"][k]["delta"]["tool_calls"]
                .as_array()
                .map_or(0, Vec::len);
            for j in 0..calls {
                let call = &v["choices"][k]["delta"]["tool_calls"][j];
                let idx = call["index"].as_i64().unwrap_or(0);
                if let Some(args) = call["function"]["arguments"].as_str().map(str::to_owned) {
                    let released = self.push((choice, idx), &args, out)?;
                    v["choices"][k]["delta"]["tool_calls"][j]["function"]["arguments"] =
                        Value::String(released);
                }
            }
            if !v["choices"][k]["finish_reason"].is_null() {
                // The choice ends here: its held-back tails ride in this chunk's delta, which
                // the wire format allows, so they arrive before the finish reason.
                let keys: Vec<ChannelKey> = self
                    .channels
                    .keys()
                    .copied()
                    .filter(|(c, _)| *c == choice)
                    .collect();
                for key in keys {
                    let rest = self.close(key, out)?;
                    if rest.is_empty() {
                        continue;
                    }
                    if self.text_completion && key.1 < 0 {
                        append_text_tail(&mut v["choices"][k], rest);
                    } else {
                        append_tail(&mut v["choices"][k]["delta"], key.1, rest);
                    }
                }
            }
        }
        out.push(SseEvent {
            event: ev.event,
            data: v.to_string(),
        });
        Some(())
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
                let Some(released) = self.push((0, index), &text, out) else {
                    return;
                };
                v["delta"][field] = Value::String(released);
                out.push(SseEvent {
                    event: ev.event,
                    data: v.to_string(),
                });
            }
            Some("content_block_start")
                if v["content_block"]["type"] == "text"
                    && v["content_block"]["text"]
                        .as_str()
                        .is_some_and(|t| !t.is_empty()) =>
            {
                // Text in the block's start event is text like any delta: it is guarded as
                // one, so it cannot bypass the checks.
                let text = v["content_block"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                v["content_block"]["text"] = Value::String(String::new());
                out.push(SseEvent {
                    event: ev.event,
                    data: v.to_string(),
                });
                let delta = serde_json::json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": text}});
                self.process_anthropic(
                    SseEvent::named("content_block_delta", delta.to_string()),
                    out,
                );
            }
            Some("content_block_stop") => {
                if !self.flush_anthropic(Some(index), out) {
                    return;
                }
                out.push(ev);
            }
            Some("message_delta" | "message_stop") => {
                // A block left open by the upstream still has its tail flushed first.
                if !self.flush_anthropic(None, out) {
                    return;
                }
                out.push(ev);
            }
            _ => out.push(ev),
        }
    }

    /// Close block `only` (or every open block), each tail as a delta; false on a violation.
    fn flush_anthropic(&mut self, only: Option<i64>, out: &mut Vec<SseEvent>) -> bool {
        let keys: Vec<ChannelKey> = self
            .channels
            .keys()
            .copied()
            .filter(|(_, b)| only.is_none_or(|o| o == *b))
            .collect();
        for key in keys {
            let Some(rest) = self.close(key, out) else {
                return false;
            };
            if rest.is_empty() {
                continue;
            }
            let delta = if self.json_channels.contains(&key.1) {
                serde_json::json!({"type": "input_json_delta", "partial_json": rest})
            } else {
                serde_json::json!({"type": "text_delta", "text": rest})
            };
            out.push(SseEvent::named(
                "content_block_delta",
                serde_json::json!({"type": "content_block_delta", "index": key.1, "delta": delta})
                    .to_string(),
            ));
        }
        true
    }
}

/// Add a channel's tail to an OpenAI delta: text to `content`, arguments to the tool call.
/// Written without indexing assignments, which panic on unexpected shapes from upstream.
fn append_tail(delta: &mut Value, slot: i64, rest: String) {
    if !delta.is_object() {
        *delta = serde_json::json!({});
    }
    let Some(d) = delta.as_object_mut() else {
        return;
    };
    if slot < 0 {
        let before = d.get("content").and_then(Value::as_str).unwrap_or_default();
        let text = format!("{before}{rest}");
        d.insert("content".into(), Value::String(text));
        return;
    }
    if !d.get("tool_calls").is_some_and(Value::is_array) {
        d.insert("tool_calls".into(), Value::Array(Vec::new()));
    }
    let Some(Value::Array(calls)) = d.get_mut("tool_calls") else {
        return;
    };
    let existing = calls.iter_mut().find(|c| {
        c.get("index").and_then(Value::as_i64) == Some(slot)
            && c.get("function").is_none_or(Value::is_object)
    });
    match existing {
        Some(Value::Object(call)) => {
            let f = call
                .entry("function")
                .or_insert_with(|| serde_json::json!({}));
            if let Value::Object(f) = f {
                let before = f
                    .get("arguments")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let args = format!("{before}{rest}");
                f.insert("arguments".into(), Value::String(args));
            }
        }
        _ => calls.push(serde_json::json!({"index": slot, "function": {"arguments": rest}})),
    }
}

/// Add a text channel's tail to a legacy text-completion choice's `text`.
fn append_text_tail(choice: &mut Value, rest: String) {
    if let Some(c) = choice.as_object_mut() {
        let before = c.get("text").and_then(Value::as_str).unwrap_or_default();
        let text = format!("{before}{rest}");
        c.insert("text".into(), Value::String(text));
    }
}

/// A client-format error event; after it the stream ends.
pub fn error_event(format: WireFormat, e: &GatewayError) -> SseEvent {
    match format {
        WireFormat::OpenAi => SseEvent::data(e.body(WireFormat::OpenAi).to_string()),
        WireFormat::Anthropic => {
            SseEvent::named("error", e.body(WireFormat::Anthropic).to_string())
        }
    }
}

/// Whether a client-format event ends (part of) the answer: from it on, the rest of the
/// stream is the tail that end-of-stream stages may still withhold.
pub fn is_finishing(format: WireFormat, ev: &SseEvent) -> bool {
    match format {
        WireFormat::OpenAi => {
            if ev.data.trim() == "[DONE]" {
                return true;
            }
            serde_json::from_str::<Value>(&ev.data).is_ok_and(|v| {
                v["choices"].as_array().is_some_and(|c| {
                    c.is_empty() || c.iter().any(|c| !c["finish_reason"].is_null())
                })
            })
        }
        WireFormat::Anthropic => matches!(
            ev.event.as_deref(),
            Some("content_block_stop" | "message_delta" | "message_stop")
        ),
    }
}

#[cfg(test)]
mod tests;
