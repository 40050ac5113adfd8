//! Client requests: validation of the fields tollgate relies on, and translation of a chat
//! request between the OpenAI and Anthropic formats.

use serde_json::{Map, Value, json};

use super::WireFormat;
use crate::error::GatewayError;

/// Default `max_tokens` when an OpenAI request without one goes to Anthropic, which requires it.
pub const DEFAULT_ANTHROPIC_MAX_TOKENS: u64 = 4096;

/// A validated chat request in its client's format.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// Format the client spoke.
    pub format: WireFormat,
    /// The full body as received.
    pub body: Map<String, Value>,
    /// The requested model alias.
    pub model: String,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether an OpenAI client asked for the final usage chunk.
    pub include_usage: bool,
}

fn object(v: Value) -> Result<Map<String, Value>, GatewayError> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(GatewayError::bad_request(
            "request body must be a JSON object",
        )),
    }
}

fn required_model(body: &Map<String, Value>) -> Result<String, GatewayError> {
    match body.get("model") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(_) => Err(GatewayError::bad_request(
            "`model` must be a non-empty string",
        )),
        None => Err(GatewayError::bad_request("missing required field `model`")),
    }
}

fn stream_flag(body: &Map<String, Value>) -> Result<bool, GatewayError> {
    match body.get("stream") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(GatewayError::bad_request("`stream` must be a boolean")),
    }
}

/// Parse the JSON text of a request body, with a message that says where it broke.
pub fn parse_json(bytes: &[u8]) -> Result<Value, GatewayError> {
    if bytes.is_empty() {
        return Err(GatewayError::bad_request(
            "request body is empty; expected a JSON object",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| GatewayError::bad_request(format!("request body is not valid JSON: {e}")))
}

impl ChatRequest {
    /// Validate a chat body in `format`.
    pub fn parse(format: WireFormat, body: Value) -> Result<Self, GatewayError> {
        let body = object(body)?;
        let model = required_model(&body)?;
        let stream = stream_flag(&body)?;
        match body.get("messages") {
            Some(Value::Array(msgs)) if !msgs.is_empty() => {
                for (i, m) in msgs.iter().enumerate() {
                    let role = m.get("role").and_then(Value::as_str);
                    if role.is_none() {
                        return Err(GatewayError::bad_request(format!(
                            "messages[{i}] needs a string `role`"
                        )));
                    }
                    if format == WireFormat::Anthropic
                        && !matches!(role, Some("user" | "assistant"))
                    {
                        return Err(GatewayError::bad_request(format!(
                            "messages[{i}].role must be \"user\" or \"assistant\" (put system text in the top-level `system` field)"
                        )));
                    }
                }
            }
            Some(Value::Array(_)) => {
                return Err(GatewayError::bad_request("`messages` must not be empty"));
            }
            Some(_) => return Err(GatewayError::bad_request("`messages` must be an array")),
            None => {
                return Err(GatewayError::bad_request(
                    "missing required field `messages`",
                ));
            }
        }
        if format == WireFormat::Anthropic {
            match body.get("max_tokens") {
                Some(v) if v.as_u64().is_some_and(|n| n > 0) => {}
                Some(_) => {
                    return Err(GatewayError::bad_request(
                        "`max_tokens` must be a positive integer",
                    ));
                }
                None => {
                    return Err(GatewayError::bad_request(
                        "missing required field `max_tokens`",
                    ));
                }
            }
        }
        let include_usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Self {
            format,
            body,
            model,
            stream,
            include_usage,
        })
    }

    /// The body to send to a target speaking `target` with upstream model `model`.
    pub fn for_target(&self, target: WireFormat, model: &str) -> Result<Value, GatewayError> {
        let mut body = match (self.format, target) {
            (WireFormat::OpenAi, WireFormat::OpenAi)
            | (WireFormat::Anthropic, WireFormat::Anthropic) => self.body.clone(),
            (WireFormat::OpenAi, WireFormat::Anthropic) => openai_to_anthropic(&self.body)?,
            (WireFormat::Anthropic, WireFormat::OpenAi) => anthropic_to_openai(&self.body)?,
        };
        body.insert("model".into(), Value::String(model.to_owned()));
        if target == WireFormat::OpenAi && self.stream {
            // Always ask for usage so that tokens and cost are known; the extra chunk is
            // removed again for clients that did not ask for it.
            let opts = body.entry("stream_options").or_insert_with(|| json!({}));
            if let Value::Object(o) = opts {
                o.insert("include_usage".into(), Value::Bool(true));
            }
        }
        Ok(Value::Object(body))
    }

    /// All text of the prompt, for token estimates and opt-in payload logging.
    pub fn prompt_text(&self) -> String {
        let mut out = String::new();
        if let Some(s) = self.body.get("system") {
            push_text(s, &mut out);
        }
        if let Some(Value::Array(msgs)) = self.body.get("messages") {
            for m in msgs {
                if let Some(c) = m.get("content") {
                    push_text(c, &mut out);
                }
            }
        }
        out
    }
}

fn push_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(s);
        }
        Value::Array(parts) => {
            for p in parts {
                if let Some(t) = p.get("text") {
                    push_text(t, out);
                } else if let Some(c) = p.get("content") {
                    push_text(c, out);
                }
            }
        }
        _ => {}
    }
}

/// Validated embeddings request (OpenAI format only: Anthropic has no embeddings API).
#[derive(Debug, Clone)]
pub struct EmbeddingsRequest {
    /// Full body.
    pub body: Map<String, Value>,
    /// Requested alias.
    pub model: String,
}

impl EmbeddingsRequest {
    /// Validate.
    pub fn parse(body: Value) -> Result<Self, GatewayError> {
        let body = object(body)?;
        let model = required_model(&body)?;
        match body.get("input") {
            Some(Value::String(_)) => {}
            Some(Value::Array(a)) if !a.is_empty() => {
                let ok = a.iter().all(|x| {
                    x.is_string()
                        || x.is_u64()
                        || x.as_array().is_some_and(|t| t.iter().all(Value::is_u64))
                });
                if !ok {
                    return Err(GatewayError::bad_request(
                        "`input` must be a string, an array of strings, or token arrays",
                    ));
                }
            }
            Some(Value::Array(_)) => {
                return Err(GatewayError::bad_request("`input` must not be empty"));
            }
            Some(_) => {
                return Err(GatewayError::bad_request(
                    "`input` must be a string or an array",
                ));
            }
            None => return Err(GatewayError::bad_request("missing required field `input`")),
        }
        Ok(Self { body, model })
    }

    /// The inputs as texts (token arrays are not text and are skipped).
    pub fn texts(&self) -> Vec<String> {
        match self.body.get("input") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn text_of_content(v: &Value) -> String {
    let mut s = String::new();
    match v {
        Value::String(t) => s.push_str(t),
        Value::Array(parts) => {
            for p in parts {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    if !s.is_empty() {
                        s.push('\n');
                    }
                    s.push_str(t);
                }
            }
        }
        _ => {}
    }
    s
}

fn unsupported(what: &str) -> GatewayError {
    GatewayError::bad_request(format!(
        "{what} cannot be translated for this route's provider"
    ))
}

/// OpenAI content (string or parts) → Anthropic content blocks.
fn openai_content_to_blocks(content: &Value) -> Result<Vec<Value>, GatewayError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(if s.is_empty() {
            Vec::new()
        } else {
            vec![json!({"type": "text", "text": s})]
        }),
        Value::Array(parts) => {
            let mut blocks = Vec::new();
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let t = p.get("text").and_then(Value::as_str).unwrap_or_default();
                        blocks.push(json!({"type": "text", "text": t}));
                    }
                    Some("image_url") => {
                        let url = p
                            .get("image_url")
                            .and_then(|i| i.get("url").or(Some(i)))
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                GatewayError::bad_request("image_url part needs a url")
                            })?;
                        blocks.push(image_block(url)?);
                    }
                    Some(other) => {
                        return Err(unsupported(&format!("content part type {other:?}")));
                    }
                    None => return Err(GatewayError::bad_request("content parts need a `type`")),
                }
            }
            Ok(blocks)
        }
        _ => Err(GatewayError::bad_request(
            "message `content` must be a string, an array or null",
        )),
    }
}

fn image_block(url: &str) -> Result<Value, GatewayError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| GatewayError::bad_request("malformed data: URL in image_url"))?;
        let media = meta
            .strip_suffix(";base64")
            .ok_or_else(|| GatewayError::bad_request("image data: URLs must be base64"))?;
        Ok(
            json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}),
        )
    } else {
        Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
    }
}

fn push_message(messages: &mut Vec<Value>, role: &str, mut blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    // Anthropic expects alternating roles; merge consecutive turns of the same role.
    if let Some(last) = messages.last_mut() {
        if last.get("role").and_then(Value::as_str) == Some(role) {
            if let Some(Value::Array(existing)) = last.get_mut("content") {
                existing.append(&mut blocks);
                return;
            }
        }
    }
    messages.push(json!({"role": role, "content": blocks}));
}

/// Translate an OpenAI chat request body to an Anthropic Messages body.
pub fn openai_to_anthropic(body: &Map<String, Value>) -> Result<Map<String, Value>, GatewayError> {
    let mut out = Map::new();
    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    let msgs = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, m) in msgs.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => {
                let t = text_of_content(content);
                if !t.is_empty() {
                    system.push(t);
                }
            }
            "user" => push_message(&mut messages, "user", openai_content_to_blocks(content)?),
            "assistant" => {
                let mut blocks = openai_content_to_blocks(content)?;
                if let Some(Value::Array(calls)) = m.get("tool_calls") {
                    for c in calls {
                        let f = c.get("function").cloned().unwrap_or(Value::Null);
                        let args = f.get("arguments").and_then(Value::as_str).unwrap_or("{}");
                        let input: Value = if args.trim().is_empty() {
                            json!({})
                        } else {
                            serde_json::from_str(args).map_err(|_| {
                                GatewayError::bad_request(format!(
                                    "messages[{i}].tool_calls arguments are not valid JSON"
                                ))
                            })?
                        };
                        blocks.push(json!({
                            "type": "tool_use",
                            "id": c.get("id").cloned().unwrap_or(Value::Null),
                            "name": f.get("name").cloned().unwrap_or(Value::Null),
                            "input": input,
                        }));
                    }
                }
                push_message(&mut messages, "assistant", blocks);
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        GatewayError::bad_request(format!(
                            "messages[{i}] (tool) needs `tool_call_id`"
                        ))
                    })?;
                let block = json!({"type": "tool_result", "tool_use_id": id, "content": text_of_content(content)});
                push_message(&mut messages, "user", vec![block]);
            }
            other => return Err(unsupported(&format!("message role {other:?}"))),
        }
    }
    if messages.is_empty() {
        return Err(GatewayError::bad_request(
            "the request has no user or assistant messages",
        ));
    }
    match body
        .get("response_format")
        .and_then(|r| r.get("type"))
        .and_then(Value::as_str)
    {
        Some("json_object") => {
            system.push("Respond only with a single valid JSON object and no other text.".into())
        }
        Some("json_schema") => {
            let schema = body
                .get("response_format")
                .and_then(|r| r.get("json_schema"))
                .and_then(|s| s.get("schema"))
                .cloned()
                .unwrap_or(Value::Null);
            system.push(format!(
                "Respond only with a single JSON value that validates against this JSON Schema, and no other text: {schema}"
            ));
        }
        _ => {}
    }
    if !system.is_empty() {
        out.insert("system".into(), Value::String(system.join("\n\n")));
    }
    out.insert("messages".into(), Value::Array(messages));
    let max = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_ANTHROPIC_MAX_TOKENS);
    out.insert("max_tokens".into(), json!(max));
    if let Some(t) = body.get("temperature").and_then(Value::as_f64) {
        // OpenAI accepts 0..2, Anthropic 0..1.
        out.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    if let Some(p) = body.get("top_p") {
        out.insert("top_p".into(), p.clone());
    }
    match body.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if body.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(unsupported("`n` > 1"));
    }
    if let Some(s) = body.get("stream") {
        out.insert("stream".into(), s.clone());
    }
    if let Some(u) = body.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": u}));
    }
    if let Some(Value::Array(tools)) = body.get("tools") {
        let mut ts = Vec::new();
        for t in tools {
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(unsupported("non-function tools"));
            }
            let f = t.get("function").cloned().unwrap_or(Value::Null);
            let mut tool = json!({
                "name": f.get("name").cloned().unwrap_or(Value::Null),
                "input_schema": f.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            });
            if let Some(d) = f.get("description") {
                tool["description"] = d.clone();
            }
            ts.push(tool);
        }
        if !ts.is_empty() {
            out.insert("tools".into(), Value::Array(ts));
        }
    }
    let parallel_off = body.get("parallel_tool_calls") == Some(&Value::Bool(false));
    let choice = match body.get("tool_choice") {
        Some(Value::String(s)) if s == "none" => Some(json!({"type": "none"})),
        Some(Value::String(s)) if s == "required" => Some(json!({"type": "any"})),
        Some(Value::String(_)) => Some(json!({"type": "auto"})),
        Some(Value::Object(o)) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .cloned()
                .unwrap_or(Value::Null);
            Some(json!({"type": "tool", "name": name}))
        }
        _ if parallel_off && out.contains_key("tools") => Some(json!({"type": "auto"})),
        _ => None,
    };
    if let Some(mut c) = choice {
        if parallel_off && c["type"] != "none" {
            c["disable_parallel_tool_use"] = Value::Bool(true);
        }
        if out.contains_key("tools") {
            out.insert("tool_choice".into(), c);
        }
    }
    Ok(out)
}

fn anthropic_blocks(content: &Value) -> Vec<Value> {
    match content {
        Value::String(s) => vec![json!({"type": "text", "text": s})],
        Value::Array(a) => a.clone(),
        _ => Vec::new(),
    }
}

/// Translate an Anthropic Messages body to an OpenAI chat body.
pub fn anthropic_to_openai(body: &Map<String, Value>) -> Result<Map<String, Value>, GatewayError> {
    let mut out = Map::new();
    let mut messages: Vec<Value> = Vec::new();
    if let Some(system) = body.get("system") {
        let t = text_of_content(system);
        if !t.is_empty() {
            messages.push(json!({"role": "system", "content": t}));
        }
    }
    let msgs = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for m in &msgs {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let blocks = anthropic_blocks(m.get("content").unwrap_or(&Value::Null));
        if role == "assistant" {
            let mut text = String::new();
            let mut calls = Vec::new();
            for b in &blocks {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or_default()),
                    Some("tool_use") => calls.push(json!({
                        "id": b.get("id").cloned().unwrap_or(Value::Null),
                        "type": "function",
                        "function": {
                            "name": b.get("name").cloned().unwrap_or(Value::Null),
                            "arguments": b.get("input").cloned().unwrap_or_else(|| json!({})).to_string(),
                        }
                    })),
                    // Thinking blocks are the provider's own; they do not carry across.
                    Some("thinking" | "redacted_thinking") => {}
                    Some(other) => return Err(unsupported(&format!("assistant content block {other:?}"))),
                    None => return Err(GatewayError::bad_request("content blocks need a `type`")),
                }
            }
            let mut msg = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
            if !calls.is_empty() {
                msg["tool_calls"] = Value::Array(calls);
            }
            messages.push(msg);
        } else {
            let mut parts = Vec::new();
            for b in &blocks {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => parts.push(json!({"type": "text", "text": b.get("text").cloned().unwrap_or(Value::Null)})),
                    Some("image") => {
                        let src = b.get("source").cloned().unwrap_or(Value::Null);
                        let url = match src.get("type").and_then(Value::as_str) {
                            Some("base64") => format!(
                                "data:{};base64,{}",
                                src.get("media_type").and_then(Value::as_str).unwrap_or("image/png"),
                                src.get("data").and_then(Value::as_str).unwrap_or_default()
                            ),
                            Some("url") => src.get("url").and_then(Value::as_str).unwrap_or_default().to_owned(),
                            _ => return Err(unsupported("this image source")),
                        };
                        parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
                    }
                    Some("tool_result") => messages.push(json!({
                        "role": "tool",
                        "tool_call_id": b.get("tool_use_id").cloned().unwrap_or(Value::Null),
                        "content": text_of_content(b.get("content").unwrap_or(&Value::Null)),
                    })),
                    Some(other) => return Err(unsupported(&format!("user content block {other:?}"))),
                    None => return Err(GatewayError::bad_request("content blocks need a `type`")),
                }
            }
            if !parts.is_empty() {
                let content = if parts.len() == 1 && parts[0]["type"] == "text" {
                    parts[0]["text"].clone()
                } else {
                    Value::Array(parts)
                };
                messages.push(json!({"role": "user", "content": content}));
            }
        }
    }
    out.insert("messages".into(), Value::Array(messages));
    if let Some(m) = body.get("max_tokens") {
        out.insert("max_tokens".into(), m.clone());
    }
    for k in ["temperature", "top_p", "stream"] {
        if let Some(v) = body.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    if let Some(s) = body.get("stop_sequences") {
        out.insert("stop".into(), s.clone());
    }
    if let Some(u) = body.get("metadata").and_then(|m| m.get("user_id")) {
        out.insert("user".into(), u.clone());
    }
    if let Some(Value::Array(tools)) = body.get("tools") {
        let mut ts = Vec::new();
        for t in tools {
            if t.get("input_schema").is_none() {
                return Err(unsupported("server tools (tools without input_schema)"));
            }
            let mut f = json!({"name": t.get("name").cloned().unwrap_or(Value::Null), "parameters": t["input_schema"].clone()});
            if let Some(d) = t.get("description") {
                f["description"] = d.clone();
            }
            ts.push(json!({"type": "function", "function": f}));
        }
        out.insert("tools".into(), Value::Array(ts));
    }
    if let Some(c) = body.get("tool_choice") {
        let choice = match c.get("type").and_then(Value::as_str) {
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => {
                json!({"type": "function", "function": {"name": c.get("name").cloned().unwrap_or(Value::Null)}})
            }
            _ => json!("auto"),
        };
        out.insert("tool_choice".into(), choice);
        if c.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
            out.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
