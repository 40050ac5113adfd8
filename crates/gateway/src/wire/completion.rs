//! Legacy OpenAI text completions (`POST /v1/completions`): validation of the request, the
//! texts the guards read, and the body sent upstream.
//!
//! The request stays a JSON object, so `suffix`, `echo`, `n`, `best_of`, `logprobs`, `stop`,
//! `temperature` and whatever a provider adds later pass through untouched. Only what
//! tollgate relies on is checked: `model`, `stream`, and a `prompt` that is text. Token-id
//! prompts (arrays of integers) are refused: the guards cannot read them, so they would be a
//! way around every input control.

use serde_json::{Map, Value, json};

use crate::error::GatewayError;

/// `max_tokens` of a text completion that names none: the legacy API's own default, so
/// limits and budgets reserve what the provider will actually allow.
pub const DEFAULT_COMPLETION_MAX_TOKENS: u64 = 16;

/// Most prompts in one request. Each prompt is a separate completion (times `n`) and each is
/// scored by the guards; LangChain's `OpenAI` LLM batches 20 prompts per request by default.
pub const MAX_PROMPTS: usize = 128;

/// Longest single prompt (or `suffix`), in bytes. The body cap (`server.max_body_bytes`)
/// normally binds first; this bounds a deployment that raised it.
pub const MAX_PROMPT_BYTES: usize = 4 * 1024 * 1024;

/// A validated text-completion request.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    /// The full body as received (prompts masked in place by the input guards).
    pub body: Map<String, Value>,
    /// The requested model alias.
    pub model: String,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether the client asked for the final usage chunk.
    pub include_usage: bool,
}

fn token_ids_refused() -> GatewayError {
    GatewayError::bad_request(
        "`prompt` as token ids is not accepted: tollgate's input guards (PII, secrets, injection) cannot read token ids; send the prompt as a string or an array of strings",
    )
}

fn check_len(what: &str, s: &str) -> Result<(), GatewayError> {
    if s.len() > MAX_PROMPT_BYTES {
        return Err(GatewayError::bad_request(format!(
            "{what} is {} bytes, more than the {MAX_PROMPT_BYTES} bytes tollgate accepts for one prompt",
            s.len()
        )));
    }
    Ok(())
}

impl CompletionRequest {
    /// Validate a text-completion body.
    pub fn parse(body: Value) -> Result<Self, GatewayError> {
        let Value::Object(body) = body else {
            return Err(GatewayError::bad_request(
                "request body must be a JSON object",
            ));
        };
        let model = match body.get("model") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(_) => {
                return Err(GatewayError::bad_request(
                    "`model` must be a non-empty string",
                ));
            }
            None => return Err(GatewayError::bad_request("missing required field `model`")),
        };
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(GatewayError::bad_request("`stream` must be a boolean")),
        };
        match body.get("prompt") {
            Some(Value::String(s)) => check_len("`prompt`", s)?,
            Some(Value::Array(items)) if items.is_empty() => {
                return Err(GatewayError::bad_request("`prompt` must not be empty"));
            }
            Some(Value::Array(items)) => {
                if items.len() > MAX_PROMPTS {
                    return Err(GatewayError::bad_request(format!(
                        "`prompt` has {} prompts, more than the {MAX_PROMPTS} tollgate accepts in one request; split the batch",
                        items.len()
                    )));
                }
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => check_len(&format!("`prompt[{i}]`"), s)?,
                        Value::Number(_) | Value::Array(_) => return Err(token_ids_refused()),
                        _ => {
                            return Err(GatewayError::bad_request(format!(
                                "`prompt[{i}]` must be a string"
                            )));
                        }
                    }
                }
            }
            Some(Value::Null) | None => {
                return Err(GatewayError::bad_request("missing required field `prompt`"));
            }
            Some(_) => {
                return Err(GatewayError::bad_request(
                    "`prompt` must be a string or an array of strings",
                ));
            }
        }
        match body.get("suffix") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => check_len("`suffix`", s)?,
            Some(_) => return Err(GatewayError::bad_request("`suffix` must be a string")),
        }
        let include_usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Self {
            body,
            model,
            stream,
            include_usage,
        })
    }

    /// The prompts, in order (one for a string prompt).
    pub fn prompts(&self) -> Vec<&str> {
        match self.body.get("prompt") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Every text the model reads: the prompts, then the `suffix` (text inserted after the
    /// completion is user text like any prompt).
    pub fn texts(&self) -> Vec<&str> {
        let mut out = self.prompts();
        if let Some(s) = self.body.get("suffix").and_then(Value::as_str) {
            out.push(s);
        }
        out
    }

    /// All text of the request, for token estimates, the guard model and payload logging.
    pub fn prompt_text(&self) -> String {
        self.texts().join("\n")
    }

    /// Call `f` on every text position (prompts and suffix), to mask them in place.
    pub fn for_each_text(&mut self, f: &mut impl FnMut(&mut String)) {
        match self.body.get_mut("prompt") {
            Some(Value::String(s)) => f(s),
            Some(Value::Array(items)) => {
                for item in items {
                    if let Value::String(s) = item {
                        f(s);
                    }
                }
            }
            _ => {}
        }
        if let Some(Value::String(s)) = self.body.get_mut("suffix") {
            f(s);
        }
    }

    /// The answer's largest size in tokens: `max_tokens`, else the legacy default of 16.
    pub fn max_tokens(&self) -> u64 {
        self.body
            .get("max_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_COMPLETION_MAX_TOKENS)
    }

    /// The body for an OpenAI-compatible target serving upstream model `model`.
    pub fn for_target(&self, model: &str) -> Value {
        let mut body = self.body.clone();
        body.insert("model".into(), Value::String(model.to_owned()));
        if self.stream {
            // Always ask for usage so that tokens and cost are known; the extra chunk is
            // removed again for clients that did not ask for it.
            let opts = body.entry("stream_options").or_insert_with(|| json!({}));
            if let Value::Object(o) = opts {
                o.insert("include_usage".into(), Value::Bool(true));
            }
        }
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(v: Value) -> String {
        CompletionRequest::parse(v).unwrap_err().message
    }

    #[test]
    fn validation_says_what_is_wrong() {
        assert!(err(json!([])).contains("JSON object"));
        assert!(err(json!({"prompt": "x"})).contains("`model`"));
        assert!(err(json!({"model": "m"})).contains("missing required field `prompt`"));
        assert!(err(json!({"model": "m", "prompt": null})).contains("`prompt`"));
        assert!(err(json!({"model": "m", "prompt": 5})).contains("string or an array"));
        assert!(err(json!({"model": "m", "prompt": {}})).contains("string or an array"));
        assert!(err(json!({"model": "m", "prompt": []})).contains("must not be empty"));
        assert!(err(json!({"model": "m", "prompt": ["a", {}]})).contains("`prompt[1]`"));
        assert!(err(json!({"model": "m", "prompt": "x", "stream": 1})).contains("boolean"));
        assert!(err(json!({"model": "m", "prompt": "x", "suffix": 3})).contains("`suffix`"));
    }

    #[test]
    fn token_id_prompts_are_refused_because_guards_cannot_read_them() {
        for p in [json!([1, 2, 3]), json!([[1, 2], [3]]), json!(["text", [4]])] {
            let e = err(json!({"model": "m", "prompt": p}));
            assert!(e.contains("token ids") && e.contains("guards"), "{e}");
        }
    }

    #[test]
    fn prompt_count_limit() {
        let ok: Vec<String> = (0..MAX_PROMPTS).map(|i| format!("p{i}")).collect();
        assert!(CompletionRequest::parse(json!({"model": "m", "prompt": ok})).is_ok());
        let over: Vec<String> = (0..=MAX_PROMPTS).map(|i| format!("p{i}")).collect();
        let e = err(json!({"model": "m", "prompt": over}));
        assert!(e.contains(&MAX_PROMPTS.to_string()), "{e}");
    }

    #[test]
    fn prompt_size_limit() {
        let at = "a".repeat(MAX_PROMPT_BYTES);
        assert!(CompletionRequest::parse(json!({"model": "m", "prompt": at})).is_ok());
        let over = "a".repeat(MAX_PROMPT_BYTES + 1);
        assert!(err(json!({"model": "m", "prompt": over.clone()})).contains("bytes"));
        assert!(err(json!({"model": "m", "prompt": ["ok", over.clone()]})).contains("prompt[1]"));
        assert!(err(json!({"model": "m", "prompt": "x", "suffix": over})).contains("`suffix`"));
    }

    #[test]
    fn fields_pass_through_and_texts_include_the_suffix() {
        let mut r = CompletionRequest::parse(json!({
            "model": "alias", "prompt": ["one", "two"], "suffix": "end", "echo": true, "n": 2,
            "best_of": 3, "logprobs": 2, "stop": ["\n"], "temperature": 0.2, "stream": true
        }))
        .unwrap();
        assert!(r.stream && !r.include_usage);
        assert_eq!(r.prompts(), vec!["one", "two"]);
        assert_eq!(r.prompt_text(), "one\ntwo\nend");
        assert_eq!(r.max_tokens(), DEFAULT_COMPLETION_MAX_TOKENS);
        r.for_each_text(&mut |s| s.make_ascii_uppercase());
        let up = r.for_target("gpt-3.5-turbo-instruct");
        assert_eq!(up["model"], "gpt-3.5-turbo-instruct");
        assert_eq!(up["prompt"], json!(["ONE", "TWO"]));
        assert_eq!(up["suffix"], "END");
        for k in ["echo", "n", "best_of", "logprobs", "stop", "temperature"] {
            assert!(up.get(k).is_some(), "{k} passes through");
        }
        assert_eq!(up["stream_options"]["include_usage"], true);
    }
}
