//! Test support: an in-process mock model provider that speaks the OpenAI and Anthropic wire
//! formats, streaming (SSE) included, with failure injection.
//!
//! Behaviour is chosen by the *upstream model name* a request carries, so one mock serves
//! every test at once:
//!
//! | model          | behaviour                                                              |
//! |----------------|------------------------------------------------------------------------|
//! | anything else  | answers `mock:<format>:<last user text>`                               |
//! | `tool`         | answers with a `get_weather` tool call                                 |
//! | `fail-500`     | HTTP 500 every time                                                     |
//! | `fail-429`     | HTTP 429 with `retry-after: 0`                                          |
//! | `flaky-N`      | HTTP 503 for the first N calls, then answers                           |
//! | `slow-MS`      | waits MS milliseconds before the response headers                      |
//! | `hang`         | never answers; counts the call as cancelled when the caller hangs up   |
//! | `garbage`      | HTTP 200 with a body that is not JSON                                   |
//! | `truncate`     | streams two chunks and ends without the terminal event                 |
//! | `drip-MS`      | streams one word every MS milliseconds                                  |
//! | `bad-request`  | HTTP 400 with a provider-shaped error                                   |
//! | `json-valid`   | answers `{"city":"Paris"}` (OpenAI format)                             |
//! | `json-repair`  | answers prose first, valid JSON once re-asked                          |
//! | `guard`        | Llama Guard style: `unsafe` if the conversation mentions "kaboom"      |
//! | `chunks`       | like the default, but streams split at each `\|` (removed from the text) |
//! | `leak-system`  | answers with its system prompt, streamed in 7-byte pieces             |
//! | `judge`        | an LLM judge: passes an answer containing the criteria's last word     |
//!
//! Legacy text completions (`/v1/completions`, streamed or not) answer each prompt with one
//! choice `mock:completion:<prompt>` (`echo: true` puts the prompt first, as OpenAI does); the
//! failure models above, `chunks`, `drip-MS`, `truncate` and `no-usage` behave the same.
//!
//! It also speaks OpenAI's fine-tuning endpoints, `/v1/files` and `/v1/fine_tuning/jobs`,
//! in memory ([`files`]); [`MockUpstream::files`] shows what was uploaded.
//!
//! Every request must carry [`MOCK_KEY`] (as `Authorization: Bearer`, `x-api-key` or
//! `api-key`), otherwise the mock answers 401, like a real provider.
//!
//! [`collector::MockCollector`] is an OTLP/HTTP trace collector for the telemetry tests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use parking_lot::Mutex;
use serde_json::{Value, json};

pub mod collector;
pub mod files;
pub mod services;

/// The credential the mock expects from the gateway.
pub const MOCK_KEY: &str = "mock-upstream-secret-value";

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Request path and query.
    pub path: String,
    /// `model` field of the body.
    pub model: String,
    /// Parsed body.
    pub body: Value,
    /// Request headers (lower-case names).
    pub headers: HashMap<String, String>,
}

#[derive(Default)]
struct MockState {
    requests: Mutex<Vec<Recorded>>,
    counts: Mutex<HashMap<String, usize>>,
    cancelled: AtomicUsize,
    streams_cut: AtomicUsize,
    datasets: Arc<files::Datasets>,
}

/// A running mock provider.
pub struct MockUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<MockState>,
    _task: tokio::task::JoinHandle<()>,
}

impl MockUpstream {
    /// Start on 127.0.0.1 with an OS-assigned port.
    pub async fn start() -> std::io::Result<Self> {
        let state = Arc::new(MockState::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(openai_chat))
            .route("/v1/completions", post(openai_completions))
            .route("/v1/embeddings", post(openai_embeddings))
            .route("/v1/messages", post(anthropic_messages))
            .route(
                "/openai/deployments/{dep}/chat/completions",
                post(openai_chat),
            )
            .route(
                "/openai/deployments/{dep}/completions",
                post(openai_completions),
            )
            .with_state(state.clone())
            .merge(files::router(state.datasets.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            state,
            _task: task,
        })
    }

    /// Base URL for an `openai` provider.
    pub fn openai_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Base URL for `anthropic` and `azure` providers.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().clone()
    }

    /// Number of requests received for an upstream model.
    pub fn count(&self, model: &str) -> usize {
        self.state.counts.lock().get(model).copied().unwrap_or(0)
    }

    /// Files uploaded through `/v1/files`, oldest first.
    pub fn files(&self) -> Vec<files::MockFile> {
        self.state.datasets.files.lock().clone()
    }

    /// Fine-tuning jobs created, oldest first.
    pub fn jobs(&self) -> Vec<files::MockJob> {
        self.state.datasets.jobs.lock().clone()
    }

    /// Number of `hang` calls whose caller went away.
    pub fn cancelled(&self) -> usize {
        self.state.cancelled.load(Ordering::SeqCst)
    }

    /// Number of streams whose reader went away before the last event.
    pub fn streams_cut(&self) -> usize {
        self.state.streams_cut.load(Ordering::SeqCst)
    }
}

struct StreamGuard {
    state: Arc<MockState>,
    finished: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.state.streams_cut.fetch_add(1, Ordering::SeqCst);
        }
    }
}

struct CancelGuard(Arc<MockState>);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.0.cancelled.fetch_add(1, Ordering::SeqCst);
    }
}

enum Format {
    OpenAi,
    Anthropic,
}

/// Record the request and apply failure behaviour common to both formats. `Ok(n)` means
/// "answer normally"; n is the call number for this model.
async fn common(
    state: &Arc<MockState>,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Value,
    format: &Format,
) -> Result<String, Response> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut hs = HashMap::new();
    for (k, v) in headers {
        hs.insert(
            k.as_str().to_owned(),
            v.to_str().unwrap_or_default().to_owned(),
        );
    }
    let presented = hs
        .get("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| hs.get("x-api-key").map(String::as_str))
        .or_else(|| hs.get("api-key").map(String::as_str))
        .map(str::to_owned);
    state.requests.lock().push(Recorded {
        path: uri.to_string(),
        model: model.clone(),
        body: body.clone(),
        headers: hs,
    });
    let n = {
        let mut c = state.counts.lock();
        let e = c.entry(model.clone()).or_insert(0);
        *e += 1;
        *e
    };
    let error = |status: StatusCode, msg: &str| -> Response {
        let body = match format {
            Format::OpenAi => json!({"error": {"message": msg, "type": "api_error", "code": null}}),
            Format::Anthropic => {
                json!({"type": "error", "error": {"type": "api_error", "message": msg}})
            }
        };
        (status, axum::Json(body)).into_response()
    };
    if presented.as_deref() != Some(MOCK_KEY) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid upstream credential",
        ));
    }
    if model == "fail-500" {
        return Err(error(StatusCode::INTERNAL_SERVER_ERROR, "mock failure"));
    }
    if model == "fail-429" {
        let mut r = error(StatusCode::TOO_MANY_REQUESTS, "mock rate limit");
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("0"));
        return Err(r);
    }
    if model == "bad-request" {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "mock says the request is invalid",
        ));
    }
    if model == "garbage" {
        return Err((StatusCode::OK, "<html>this is not json").into_response());
    }
    if model == "hang" {
        let _guard = CancelGuard(state.clone());
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return Err(error(StatusCode::INTERNAL_SERVER_ERROR, "unreachable"));
    }
    if let Some(k) = model
        .strip_prefix("flaky-")
        .and_then(|k| k.parse::<usize>().ok())
    {
        if n <= k {
            return Err(error(StatusCode::SERVICE_UNAVAILABLE, "mock flaky failure"));
        }
    }
    if let Some(ms) = model
        .strip_prefix("slow-")
        .and_then(|k| k.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    Ok(model)
}

fn last_user_text(body: &Value) -> String {
    let msgs = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(m) = msgs
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
    else {
        return String::new();
    };
    match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// A stand-in LLM judge for `tollgate prompts test`: it passes an answer that contains the
/// last word of the criteria, and replies in a fenced JSON block as real models often do.
fn judge_verdict(prompt: &str) -> String {
    let criteria = prompt
        .split("Criteria:")
        .nth(1)
        .and_then(|r| r.split("\n\n").next())
        .unwrap_or_default();
    let word = criteria
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .trim_matches(|c: char| !c.is_alphanumeric());
    let answer = prompt.rsplit("Answer to judge:").next().unwrap_or_default();
    let pass = !word.is_empty() && answer.contains(word);
    format!(
        "Here is my verdict.\n```json\n{{\"pass\": {pass}, \"reason\": \"looked for {word} in the answer\"}}\n```"
    )
}

/// The system prompt of a request in either format (OpenAI system messages, Anthropic
/// `system` string or text blocks).
fn system_text(body: &Value) -> String {
    let text_of = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    let mut out: Vec<String> = Vec::new();
    if let Some(s) = body.get("system") {
        out.push(text_of(s));
    }
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if m.get("role").and_then(Value::as_str) == Some("system") {
            out.push(text_of(m.get("content").unwrap_or(&Value::Null)));
        }
    }
    out.join("\n")
}

/// The answer text of `model`, and the pieces it is streamed in.
fn answer_pieces(model: &str, text: &str) -> (String, Vec<String>) {
    if model == "chunks" {
        let pieces: Vec<String> = text.split('|').map(str::to_owned).collect();
        return (pieces.concat(), pieces);
    }
    if model == "leak-system" {
        let mut pieces = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let mut end = rest.len().min(7);
            while !rest.is_char_boundary(end) {
                end += 1;
            }
            pieces.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
        return (text.to_owned(), pieces);
    }
    (
        text.to_owned(),
        text.split_inclusive(' ').map(str::to_owned).collect(),
    )
}

fn sse(
    state: &Arc<MockState>,
    events: Vec<(Option<&'static str>, String)>,
    delay: Option<Duration>,
) -> Response {
    let guard = StreamGuard {
        state: state.clone(),
        finished: false,
    };
    let stream = async_stream::stream! {
        // Move the whole guard in: it must drop with the stream, not with this function.
        let mut guard = guard;
        for (name, data) in events {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            let mut s = String::new();
            if let Some(n) = name {
                s.push_str(&format!("event: {n}\n"));
            }
            s.push_str(&format!("data: {data}\n\n"));
            yield Ok::<Bytes, Infallible>(Bytes::from(s));
        }
        guard.finished = true;
    };
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn drip(model: &str) -> Option<Duration> {
    model
        .strip_prefix("drip-")
        .and_then(|k| k.parse::<u64>().ok())
        .map(Duration::from_millis)
}

async fn openai_chat(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad json").into_response();
    };
    let model = match common(&state, &uri, &headers, &body, &Format::OpenAi).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    // Structured-output models: `json-valid` always answers JSON, `json-repair` only once it
    // has been told its first answer was wrong (a re-ask adds an assistant turn).
    let reasked = body
        .get("messages")
        .and_then(Value::as_array)
        .is_some_and(|m| {
            m.iter()
                .any(|x| x.get("role").and_then(Value::as_str) == Some("assistant"))
        });
    let text = match model.as_str() {
        "json-valid" => r#"{"city":"Paris"}"#.to_owned(),
        "json-repair" if reasked => r#"{"city":"Paris"}"#.to_owned(),
        "json-repair" => "Sure! The city is Paris.".to_owned(),
        // A guard model in Llama Guard's output format: anything mentioning "kaboom" is unsafe.
        "guard" if body.to_string().contains("kaboom") => "unsafe\nS9".to_owned(),
        "guard" => "safe".to_owned(),
        "leak-system" => system_text(&body),
        "judge" => judge_verdict(&last_user_text(&body)),
        _ => format!("mock:openai:{}", last_user_text(&body)),
    };
    let (text, pieces) = answer_pieces(&model, &text);
    let tool = model == "tool";
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let usage = json!({"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18});
    if !stream {
        let message = if tool {
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]})
        } else {
            json!({"role": "assistant", "content": text})
        };
        return axum::Json(json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": if tool { "tool_calls" } else { "stop" }}],
            "usage": usage,
        }))
        .into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let mut events = vec![(
        None,
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
    )];
    if tool {
        events.push((None, chunk(json!({"tool_calls": [{"index": 0, "id": "call_mock", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}), Value::Null)));
        events.push((
            None,
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
                Value::Null,
            ),
        ));
        events.push((
            None,
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
                Value::Null,
            ),
        ));
        events.push((None, chunk(json!({}), json!("tool_calls"))));
    } else {
        for w in &pieces {
            events.push((None, chunk(json!({"content": w}), Value::Null)));
        }
        if model == "truncate" {
            events.truncate(3);
            return sse(&state, events, None);
        }
        events.push((None, chunk(json!({}), json!("stop"))));
    }
    let include_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // Model `no-usage` ignores `stream_options`, as some OpenAI-compatible servers do.
    if include_usage && model != "no-usage" {
        events.push((
            None,
            json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [], "usage": usage}).to_string(),
        ));
    }
    events.push((None, "[DONE]".to_owned()));
    sse(&state, events, drip(&model))
}

/// `POST /v1/completions`: one choice per prompt (string or array of strings), each
/// `mock:completion:<prompt>`, streamed as `text_completion` chunks when asked.
async fn openai_completions(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad json").into_response();
    };
    let model = match common(&state, &uri, &headers, &body, &Format::OpenAi).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let prompts: Vec<String> = match body.get("prompt") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
            .collect(),
        _ => vec![String::new()],
    };
    let echo = body.get("echo").and_then(Value::as_bool).unwrap_or(false);
    let answers: Vec<(String, Vec<String>)> = prompts
        .iter()
        .map(|p| {
            let (text, mut pieces) = answer_pieces(&model, &format!("mock:completion:{p}"));
            if echo {
                pieces.insert(0, p.clone());
                (format!("{p}{text}"), pieces)
            } else {
                (text, pieces)
            }
        })
        .collect();
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let usage = json!({"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15});
    if !stream {
        let choices: Vec<Value> = answers
            .iter()
            .enumerate()
            .map(|(i, (text, _))| json!({"index": i, "text": text, "finish_reason": "stop", "logprobs": null}))
            .collect();
        return axum::Json(json!({
            "id": "cmpl-mock", "object": "text_completion", "created": 1, "model": model,
            "choices": choices, "usage": usage,
        }))
        .into_response();
    }
    let chunk = |i: usize, text: &str, finish: Value| {
        json!({"id": "cmpl-mock", "object": "text_completion", "created": 1, "model": model,
               "choices": [{"index": i, "text": text, "finish_reason": finish, "logprobs": null}]})
        .to_string()
    };
    let mut events: Vec<(Option<&'static str>, String)> = Vec::new();
    for (i, (_, pieces)) in answers.iter().enumerate() {
        for piece in pieces {
            events.push((None, chunk(i, piece, Value::Null)));
        }
    }
    if model == "truncate" {
        events.truncate(2);
        return sse(&state, events, None);
    }
    for i in 0..answers.len() {
        events.push((None, chunk(i, "", json!("stop"))));
    }
    let include_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if include_usage && model != "no-usage" {
        events.push((
            None,
            json!({"id": "cmpl-mock", "object": "text_completion", "created": 1, "model": model, "choices": [], "usage": usage}).to_string(),
        ));
    }
    events.push((None, "[DONE]".to_owned()));
    sse(&state, events, drip(&model))
}

async fn openai_embeddings(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad json").into_response();
    };
    let model = match common(&state, &uri, &headers, &body, &Format::OpenAi).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let n = match body.get("input") {
        Some(Value::Array(a)) => a.len(),
        _ => 1,
    };
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}))
        .collect();
    axum::Json(json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 5, "total_tokens": 5}})).into_response()
}

async fn anthropic_messages(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad json").into_response();
    };
    if !headers.contains_key("anthropic-version") {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"type": "error", "error": {"type": "invalid_request_error", "message": "anthropic-version header is required"}}))).into_response();
    }
    let model = match common(&state, &uri, &headers, &body, &Format::Anthropic).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let text = match model.as_str() {
        "leak-system" => system_text(&body),
        _ => format!("mock:anthropic:{}", last_user_text(&body)),
    };
    let (text, pieces) = answer_pieces(&model, &text);
    let tool = model == "tool";
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if !stream {
        let content = if tool {
            json!([{"type": "tool_use", "id": "toolu_mock", "name": "get_weather", "input": {"city": "Paris"}}])
        } else {
            json!([{"type": "text", "text": text}])
        };
        return axum::Json(json!({
            "id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": if tool { "tool_use" } else { "end_turn" }, "stop_sequence": null,
            "usage": {"input_tokens": 13, "output_tokens": 5},
        }))
        .into_response();
    }
    let mut events: Vec<(Option<&'static str>, String)> = vec![(
        Some("message_start"),
        json!({"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 13, "output_tokens": 1}}}).to_string(),
    )];
    if tool {
        events.push((Some("content_block_start"), json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_mock", "name": "get_weather", "input": {}}}).to_string()));
        events.push((Some("content_block_delta"), json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"city\":"}}).to_string()));
        events.push((Some("content_block_delta"), json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}).to_string()));
    } else {
        events.push((Some("content_block_start"), json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}).to_string()));
        events.push((Some("ping"), json!({"type": "ping"}).to_string()));
        for w in &pieces {
            events.push((Some("content_block_delta"), json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}).to_string()));
        }
        if model == "truncate" {
            events.truncate(4);
            return sse(&state, events, None);
        }
    }
    events.push((
        Some("content_block_stop"),
        json!({"type": "content_block_stop", "index": 0}).to_string(),
    ));
    events.push((
        Some("message_delta"),
        json!({"type": "message_delta", "delta": {"stop_reason": if tool { "tool_use" } else { "end_turn" }, "stop_sequence": null}, "usage": {"output_tokens": 5}}).to_string(),
    ));
    events.push((
        Some("message_stop"),
        json!({"type": "message_stop"}).to_string(),
    ));
    sse(&state, events, drip(&model))
}
