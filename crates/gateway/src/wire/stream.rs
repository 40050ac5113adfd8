//! Streamed responses: one translator per stream turns upstream SSE events into client SSE
//! events, in the same or the other format, while collecting usage (and, when configured,
//! the completion text) for logs and metrics.
//!
//! The translator is a small state machine fed one event at a time, so memory stays bounded
//! whatever the length of the stream. A stream that ends without its terminal event is
//! completed with a well-formed error event, never left truncated.

use serde_json::{Value, json};

use super::{Usage, WireFormat, finish_to_stop_reason, stop_to_finish_reason, unix_now};
use crate::error::GatewayError;
use crate::sse::SseEvent;

/// Longest completion text kept for payload logging.
pub const MAX_CAPTURED_TEXT: usize = 64 * 1024;

#[derive(Debug, Default)]
struct ToOpenAi {
    id: String,
    model: Value,
    created: u64,
    tool_index: Vec<(u64, usize)>,
    finish: Option<&'static str>,
}

#[derive(Debug, Default)]
struct ToAnthropic {
    started: bool,
    open_block: Option<OpenBlock>,
    next_index: usize,
    tool_blocks: Vec<(u64, usize)>,
    stop: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text(usize),
    Tool(usize),
}

/// Bytes and words of a text seen in pieces: the inputs of [`tollgate_guard::tokens::estimate`]
/// over the whole text, without keeping it.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    bytes: u64,
    words: u64,
    in_word: bool,
}

impl Tally {
    fn add(&mut self, piece: &str) {
        self.bytes += piece.len() as u64;
        for c in piece.chars() {
            if c.is_whitespace() {
                self.in_word = false;
            } else if !self.in_word {
                self.in_word = true;
                self.words += 1;
            }
        }
    }

    /// The same estimate as [`tollgate_guard::tokens::estimate`] of the concatenated pieces.
    fn estimate(&self) -> u64 {
        self.bytes.div_ceil(4).max(self.words)
    }
}

/// Translates one upstream stream into the client's format.
#[derive(Debug)]
pub struct StreamTranslator {
    from: WireFormat,
    to: WireFormat,
    include_usage: bool,
    capture_text: bool,
    usage: Option<Usage>,
    text: String,
    /// The completion text streamed so far, tallied for a token estimate when the upstream
    /// reports no usage (bounded: counts, not the text).
    tally: Tally,
    /// Estimated prompt tokens, for the same case.
    prompt_estimate: u64,
    saw_finish: bool,
    done: bool,
    errored: bool,
    to_openai: ToOpenAi,
    to_anthropic: ToAnthropic,
}

fn malformed() -> GatewayError {
    GatewayError::upstream_bad("upstream sent a malformed stream event")
}

impl StreamTranslator {
    /// A translator from upstream format `from` to client format `to`.
    pub fn new(from: WireFormat, to: WireFormat, include_usage: bool, capture_text: bool) -> Self {
        Self {
            from,
            to,
            include_usage,
            capture_text,
            usage: None,
            text: String::new(),
            tally: Tally::default(),
            prompt_estimate: 0,
            saw_finish: false,
            done: false,
            errored: false,
            to_openai: ToOpenAi {
                created: unix_now(),
                ..ToOpenAi::default()
            },
            to_anthropic: ToAnthropic::default(),
        }
    }

    /// Usage seen so far.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The prompt's estimated tokens, used by [`Self::usage_or_estimate`].
    pub fn with_prompt_estimate(mut self, tokens: u64) -> Self {
        self.prompt_estimate = tokens;
        self
    }

    /// The usage the upstream reported, or else an estimate from the prompt and the text
    /// streamed so far, so that token limits and budgets count a stream without usage too.
    pub fn usage_or_estimate(&self) -> Usage {
        self.usage.unwrap_or(Usage {
            input: self.prompt_estimate,
            output: self.tally.estimate(),
        })
    }

    /// Completion text captured so far (only when capture was requested).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the stream reached its terminal event.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the stream reached its terminal event normally (not an error event): only
    /// then may the end-of-stream guards release the answer's last events.
    pub fn completed(&self) -> bool {
        self.done && !self.errored
    }

    fn capture(&mut self, t: &str) {
        self.tally.add(t);
        if self.capture_text && self.text.len() < MAX_CAPTURED_TEXT {
            let room = MAX_CAPTURED_TEXT - self.text.len();
            let mut end = t.len().min(room);
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            self.text.push_str(&t[..end]);
        }
    }

    /// Feed one upstream event; client events are appended to `out`.
    pub fn push(&mut self, ev: SseEvent, out: &mut Vec<SseEvent>) -> Result<(), GatewayError> {
        if self.done {
            return Ok(());
        }
        match self.from {
            WireFormat::OpenAi => self.push_openai(ev, out),
            WireFormat::Anthropic => self.push_anthropic(ev, out),
        }
    }

    /// Upstream ended. Complete the client stream if the upstream finished its answer, or end
    /// it with an error event if it was cut off.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if self.done {
            return;
        }
        if self.saw_finish {
            match self.from {
                WireFormat::OpenAi => {
                    let _ = self.push_openai(SseEvent::data("[DONE]"), out);
                }
                WireFormat::Anthropic => {
                    let _ = self.push_anthropic(
                        SseEvent::named("message_stop", "{\"type\":\"message_stop\"}"),
                        out,
                    );
                }
            }
        } else {
            out.push(self.error_event(&GatewayError::upstream_bad(
                "upstream stream ended before the response was complete",
            )));
            self.done = true;
            self.errored = true;
        }
    }

    /// A client-format error event; after it the stream must end.
    pub fn error_event(&self, err: &GatewayError) -> SseEvent {
        match self.to {
            WireFormat::OpenAi => SseEvent::data(err.body(WireFormat::OpenAi).to_string()),
            WireFormat::Anthropic => {
                SseEvent::named("error", err.body(WireFormat::Anthropic).to_string())
            }
        }
    }

    fn upstream_error(&mut self, message: &str, out: &mut Vec<SseEvent>) {
        let err = GatewayError::upstream_bad(format!("upstream stream error: {message}"));
        out.push(self.error_event(&err));
        self.done = true;
        self.errored = true;
    }

    fn push_openai(&mut self, ev: SseEvent, out: &mut Vec<SseEvent>) -> Result<(), GatewayError> {
        if ev.data.trim() == "[DONE]" {
            self.done = true;
            match self.to {
                WireFormat::OpenAi => out.push(ev),
                WireFormat::Anthropic => self.anthropic_close(out),
            }
            return Ok(());
        }
        let v: Value = serde_json::from_str(&ev.data).map_err(|_| malformed())?;
        if let Some(e) = v.get("error") {
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
                .to_owned();
            self.upstream_error(&msg, out);
            return Ok(());
        }
        if let Some(u) = v
            .get("usage")
            .filter(|u| !u.is_null())
            .and_then(Usage::from_openai)
        {
            self.usage = Some(u);
        }
        let choice = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .cloned();
        // A chat chunk's text is its delta's content; a legacy text completion's, `text`.
        if let Some(t) = choice.as_ref().and_then(|c| {
            c.get("delta")
                .and_then(|d| d.get("content"))
                .or_else(|| c.get("text"))?
                .as_str()
        }) {
            self.capture(t);
        }
        let finish = choice
            .as_ref()
            .and_then(|c| c.get("finish_reason"))
            .and_then(Value::as_str);
        if finish.is_some() {
            self.saw_finish = true;
        }
        match self.to {
            WireFormat::OpenAi => {
                let usage_only = choice.is_none() && v.get("usage").is_some_and(|u| !u.is_null());
                if !usage_only || self.include_usage {
                    out.push(ev);
                }
            }
            WireFormat::Anthropic => self.openai_to_anthropic(&v, choice.as_ref(), finish, out),
        }
        Ok(())
    }

    fn anthropic_start(&mut self, v: &Value, out: &mut Vec<SseEvent>) {
        if self.to_anthropic.started {
            return;
        }
        self.to_anthropic.started = true;
        let id = v.get("id").and_then(Value::as_str).unwrap_or("tollgate");
        let msg = json!({"type": "message_start", "message": {
            "id": format!("msg_{id}"), "type": "message", "role": "assistant",
            "model": v.get("model").cloned().unwrap_or(Value::Null), "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}
        }});
        out.push(SseEvent::named("message_start", msg.to_string()));
    }

    fn close_block(&mut self, out: &mut Vec<SseEvent>) {
        if let Some(b) = self.to_anthropic.open_block.take() {
            let index = match b {
                OpenBlock::Text(i) | OpenBlock::Tool(i) => i,
            };
            out.push(SseEvent::named(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}).to_string(),
            ));
        }
    }

    fn openai_to_anthropic(
        &mut self,
        v: &Value,
        choice: Option<&Value>,
        finish: Option<&str>,
        out: &mut Vec<SseEvent>,
    ) {
        self.anthropic_start(v, out);
        let delta = choice.and_then(|c| c.get("delta"));
        if let Some(t) = delta
            .and_then(|d| d.get("content"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            let index = match self.to_anthropic.open_block {
                Some(OpenBlock::Text(i)) => i,
                _ => {
                    self.close_block(out);
                    let i = self.to_anthropic.next_index;
                    self.to_anthropic.next_index += 1;
                    self.to_anthropic.open_block = Some(OpenBlock::Text(i));
                    out.push(SseEvent::named(
                        "content_block_start",
                        json!({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}).to_string(),
                    ));
                    i
                }
            };
            out.push(SseEvent::named(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": t}}).to_string(),
            ));
        }
        if let Some(calls) = delta
            .and_then(|d| d.get("tool_calls"))
            .and_then(Value::as_array)
        {
            for c in calls {
                let oi = c.get("index").and_then(Value::as_u64).unwrap_or(0);
                let known = self
                    .to_anthropic
                    .tool_blocks
                    .iter()
                    .find(|(k, _)| *k == oi)
                    .map(|(_, b)| *b);
                let block = match known {
                    Some(b) => b,
                    None => {
                        self.close_block(out);
                        let i = self.to_anthropic.next_index;
                        self.to_anthropic.next_index += 1;
                        self.to_anthropic.tool_blocks.push((oi, i));
                        self.to_anthropic.open_block = Some(OpenBlock::Tool(i));
                        let f = c.get("function").cloned().unwrap_or(Value::Null);
                        out.push(SseEvent::named(
                            "content_block_start",
                            json!({"type": "content_block_start", "index": i, "content_block": {
                                "type": "tool_use", "id": c.get("id").cloned().unwrap_or(Value::Null),
                                "name": f.get("name").cloned().unwrap_or(Value::Null), "input": {}
                            }})
                            .to_string(),
                        ));
                        i
                    }
                };
                if let Some(args) = c
                    .get("function")
                    .and_then(|f| f.get("arguments"))
                    .and_then(Value::as_str)
                    .filter(|a| !a.is_empty())
                {
                    out.push(SseEvent::named(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": block, "delta": {"type": "input_json_delta", "partial_json": args}}).to_string(),
                    ));
                }
            }
        }
        if let Some(f) = finish {
            self.to_anthropic.stop = Some(finish_to_stop_reason(f));
        }
    }

    fn anthropic_close(&mut self, out: &mut Vec<SseEvent>) {
        self.anthropic_start(&json!({}), out);
        self.close_block(out);
        let u = self.usage.unwrap_or_default();
        out.push(SseEvent::named(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": self.to_anthropic.stop.unwrap_or("end_turn"), "stop_sequence": null},
                   "usage": {"input_tokens": u.input, "output_tokens": u.output}})
            .to_string(),
        ));
        out.push(SseEvent::named(
            "message_stop",
            "{\"type\":\"message_stop\"}",
        ));
    }

    fn push_anthropic(
        &mut self,
        ev: SseEvent,
        out: &mut Vec<SseEvent>,
    ) -> Result<(), GatewayError> {
        let v: Value = serde_json::from_str(&ev.data).map_err(|_| malformed())?;
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .or(ev.event.as_deref())
            .unwrap_or_default()
            .to_owned();
        match ty.as_str() {
            "message_start" => {
                if let Some(u) = v
                    .get("message")
                    .and_then(|m| m.get("usage"))
                    .and_then(Usage::from_anthropic)
                {
                    self.usage = Some(u);
                }
            }
            "message_delta" => {
                if let Some(u) = v.get("usage").and_then(Usage::from_anthropic) {
                    let mut cur = self.usage.unwrap_or_default();
                    cur.output = u.output;
                    if u.input > 0 {
                        cur.input = u.input;
                    }
                    self.usage = Some(cur);
                }
                if v.get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .is_some_and(|s| !s.is_null())
                {
                    self.saw_finish = true;
                }
            }
            "content_block_delta" => {
                if let Some(t) = v
                    .get("delta")
                    .and_then(|d| d.get("text"))
                    .and_then(Value::as_str)
                {
                    let t = t.to_owned();
                    self.capture(&t);
                }
            }
            "error" => {
                let msg = v
                    .get("error")
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_owned();
                self.upstream_error(&msg, out);
                return Ok(());
            }
            _ => {}
        }
        match self.to {
            WireFormat::Anthropic => {
                if ty == "message_stop" {
                    self.done = true;
                }
                out.push(ev);
            }
            WireFormat::OpenAi => self.anthropic_to_openai(&ty, &v, out),
        }
        Ok(())
    }

    fn openai_chunk(&self, delta: Value, finish: Option<&str>) -> SseEvent {
        let c = &self.to_openai;
        SseEvent::data(
            json!({"id": c.id, "object": "chat.completion.chunk", "created": c.created, "model": c.model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]})
            .to_string(),
        )
    }

    fn anthropic_to_openai(&mut self, ty: &str, v: &Value, out: &mut Vec<SseEvent>) {
        match ty {
            "message_start" => {
                let m = v.get("message").cloned().unwrap_or(Value::Null);
                self.to_openai.id = format!(
                    "chatcmpl-{}",
                    m.get("id").and_then(Value::as_str).unwrap_or("tollgate")
                );
                self.to_openai.model = m.get("model").cloned().unwrap_or(Value::Null);
                out.push(self.openai_chunk(json!({"role": "assistant", "content": ""}), None));
            }
            "content_block_start" => {
                let b = v.get("content_block").cloned().unwrap_or(Value::Null);
                match b.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let block = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                        let oi = self.to_openai.tool_index.len();
                        self.to_openai.tool_index.push((block, oi));
                        out.push(self.openai_chunk(
                            json!({"tool_calls": [{"index": oi, "id": b.get("id").cloned().unwrap_or(Value::Null), "type": "function",
                                   "function": {"name": b.get("name").cloned().unwrap_or(Value::Null), "arguments": ""}}]}),
                            None,
                        ));
                    }
                    Some("text") => {
                        if let Some(t) = b
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(self.openai_chunk(json!({"content": t}), None));
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let d = v.get("delta").cloned().unwrap_or(Value::Null);
                match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let t = d.get("text").cloned().unwrap_or(Value::Null);
                        out.push(self.openai_chunk(json!({"content": t}), None));
                    }
                    Some("input_json_delta") => {
                        let block = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                        if let Some(oi) = self
                            .to_openai
                            .tool_index
                            .iter()
                            .find(|(b, _)| *b == block)
                            .map(|(_, o)| *o)
                        {
                            let args = d.get("partial_json").cloned().unwrap_or(Value::Null);
                            out.push(self.openai_chunk(json!({"tool_calls": [{"index": oi, "function": {"arguments": args}}]}), None));
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(s) = v
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str)
                {
                    self.to_openai.finish = Some(stop_to_finish_reason(s));
                }
            }
            "message_stop" => {
                self.done = true;
                out.push(
                    self.openai_chunk(json!({}), Some(self.to_openai.finish.unwrap_or("stop"))),
                );
                if self.include_usage {
                    let u = self.usage.unwrap_or_default();
                    let c = &self.to_openai;
                    out.push(SseEvent::data(
                        json!({"id": c.id, "object": "chat.completion.chunk", "created": c.created, "model": c.model, "choices": [],
                               "usage": {"prompt_tokens": u.input, "completion_tokens": u.output, "total_tokens": u.input + u.output}})
                        .to_string(),
                    ));
                }
                out.push(SseEvent::data("[DONE]"));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
