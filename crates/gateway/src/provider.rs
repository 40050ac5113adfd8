//! Provider adapters: how to reach each kind of provider (URL, auth header, wire format), and
//! the built-in `echo` provider.
//!
//! One `reqwest::Client` per provider carries that provider's connect timeout and connection
//! pool; first-byte and total timeouts are applied per attempt by the pipeline.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{ProviderConfig, ProviderKind, Resilience, Review};
use crate::credential::{CredentialRef, CredentialSource};
use crate::error::GatewayError;
use crate::secrets::SecretBackends;
use crate::sse::SseEvent;
use crate::wire::WireFormat;
use crate::wire::completion::CompletionRequest;
use crate::wire::request::{ChatRequest, EmbeddingsRequest};
use crate::wire::unix_now;

/// Anthropic API version sent when the client did not choose one.
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// Which API an upstream call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Chat completions / messages.
    Chat,
    /// Embeddings.
    Embeddings,
    /// Legacy text completions (`/v1/completions`), OpenAI-compatible providers only.
    Completions,
}

/// A configured provider, ready to call.
pub struct Provider {
    /// Name from the config.
    pub name: String,
    /// Adapter kind.
    pub kind: ProviderKind,
    /// Timeouts, retries, breaker settings.
    pub resilience: Resilience,
    /// Its data-handling review, if it has a valid one (DP-4).
    pub review: Option<Review>,
    base_url: String,
    api_version: Option<String>,
    credential: Option<CredentialSource>,
    headers: HeaderMap,
    client: reqwest::Client,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Build from validated config; `backends` resolve `keystore://`, `vault://` and
    /// `aws-sm://` references.
    pub fn new(
        name: &str,
        cfg: &ProviderConfig,
        backends: &SecretBackends,
    ) -> Result<Self, String> {
        let resilience = cfg.resilience();
        let review = match &cfg.review {
            Some(r) => Some(r.resolve().map_err(|errors| {
                let msgs: Vec<String> = errors
                    .into_iter()
                    .map(|e| format!("review.{}: {}", e.field, e.message))
                    .collect();
                msgs.join("; ")
            })?),
            None => None,
        };
        let credential = match &cfg.api_key {
            Some(r) => Some(CredentialSource::with_backends(
                CredentialRef::parse(r.get_ref()).map_err(|e| e.to_string())?,
                backends.clone(),
            )),
            None => None,
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("invalid header name {k:?}"))?;
            let value = HeaderValue::from_str(v.get_ref())
                .map_err(|_| format!("invalid value for header {k:?}"))?;
            headers.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(resilience.connect_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .tcp_nodelay(true)
            // Upstreams must not bounce us to other hosts (SC-3 egress control, SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            kind: cfg.kind,
            resilience,
            review,
            base_url: cfg.effective_base_url(),
            api_version: cfg.api_version.clone(),
            credential,
            headers,
            client,
        })
    }

    /// The wire format this provider speaks.
    pub fn wire(&self) -> WireFormat {
        match self.kind {
            ProviderKind::Anthropic => WireFormat::Anthropic,
            _ => WireFormat::OpenAi,
        }
    }

    /// Whether the provider serves `endpoint`.
    pub fn supports(&self, endpoint: Endpoint) -> bool {
        // Anthropic has neither embeddings nor text completions; a text completion is never
        // translated into a chat (its prompt is not a conversation).
        !(matches!(endpoint, Endpoint::Embeddings | Endpoint::Completions)
            && self.kind == ProviderKind::Anthropic)
    }

    /// Credential source, for checks at start-up and reports.
    pub fn credential(&self) -> Option<&CredentialSource> {
        self.credential.as_ref()
    }

    /// Drop the cached credential (after an upstream 401).
    pub fn invalidate_credential(&self) {
        if let Some(c) = &self.credential {
            c.invalidate();
        }
    }

    fn url(&self, endpoint: Endpoint, model: &str) -> String {
        match (self.kind, endpoint) {
            (ProviderKind::Anthropic, _) => format!("{}/v1/messages", self.base_url),
            (ProviderKind::Azure, ep) => format!(
                "{}/openai/deployments/{}/{}?api-version={}",
                self.base_url,
                model,
                match ep {
                    Endpoint::Chat => "chat/completions",
                    Endpoint::Embeddings => "embeddings",
                    Endpoint::Completions => "completions",
                },
                self.api_version.as_deref().unwrap_or_default()
            ),
            (_, Endpoint::Chat) => format!("{}/chat/completions", self.base_url),
            (_, Endpoint::Embeddings) => format!("{}/embeddings", self.base_url),
            (_, Endpoint::Completions) => format!("{}/completions", self.base_url),
        }
    }

    /// Build an upstream HTTP request. `client_headers` contributes only the
    /// provider-specific headers a client may choose (`anthropic-version`, `anthropic-beta`).
    pub async fn request(
        &self,
        endpoint: Endpoint,
        model: &str,
        body: bytes::Bytes,
        client_headers: &HeaderMap,
    ) -> Result<reqwest::RequestBuilder, GatewayError> {
        let mut rb = self
            .client
            .post(self.url(endpoint, model))
            .headers(self.headers.clone())
            .header("content-type", "application/json")
            .timeout(self.resilience.total_timeout)
            .body(body);
        rb = self.with_credential(rb).await?;
        if self.kind == ProviderKind::Anthropic {
            let version = client_headers
                .get("anthropic-version")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(DEFAULT_ANTHROPIC_VERSION);
            rb = rb.header("anthropic-version", version);
            if let Some(beta) = client_headers.get("anthropic-beta") {
                rb = rb.header("anthropic-beta", beta.clone());
            }
        }
        Ok(rb)
    }

    /// Add this provider's credential header to `rb`.
    async fn with_credential(
        &self,
        mut rb: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, GatewayError> {
        if let Some(cred) = &self.credential {
            let secret = cred.get().await.map_err(|e| {
                tracing::error!(provider = %self.name, error = %e, "provider credential unavailable");
                GatewayError::upstream_bad(format!("provider {:?} credential is unavailable", self.name))
            })?;
            let value = secret.expose_secret();
            rb = match self.kind {
                ProviderKind::Anthropic => rb.header("x-api-key", value),
                ProviderKind::Azure => rb.header("api-key", value),
                _ => rb.bearer_auth(value),
            };
        }
        Ok(rb)
    }

    /// A request to `path` under the base URL (e.g. `/files/file-abc`) with this provider's
    /// headers and credential, for the pass-through endpoints of [`crate::datasets`]. The
    /// caller sets the body, content type and timeout.
    pub async fn passthrough(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, GatewayError> {
        let rb = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .headers(self.headers.clone());
        self.with_credential(rb).await
    }
}

/// Shared handle to a provider.
pub type ProviderRef = Arc<Provider>;

/// The echo provider's reply: the text of the last user message as the model received it,
/// so a newcomer can see what guards did to a prompt.
fn echo_text(body: &Value) -> String {
    let msgs = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let last_user = msgs
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"));
    let Some(m) = last_user else {
        return String::new();
    };
    match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Echo reply to an OpenAI-format chat body, non-streamed.
pub fn echo_chat(body: &Value, request: &ChatRequest) -> Value {
    let text = echo_text(body);
    let prompt = tollgate_guard::tokens::estimate(&request.prompt_text());
    let completion = tollgate_guard::tokens::estimate(&text);
    json!({
        "id": format!("chatcmpl-echo-{}", uuid::Uuid::new_v4().simple()),
        "object": "chat.completion",
        "created": unix_now(),
        "model": body.get("model").cloned().unwrap_or(Value::Null),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null}, "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    })
}

/// Echo reply as OpenAI stream events (one chunk per word, then usage and `[DONE]`).
pub fn echo_chat_stream(body: &Value, request: &ChatRequest) -> Vec<SseEvent> {
    let full = echo_chat(body, request);
    let id = full["id"].clone();
    let model = full["model"].clone();
    let created = full["created"].clone();
    let chunk = |delta: Value, finish: Value| {
        SseEvent::data(
            json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]})
            .to_string(),
        )
    };
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let text = full["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for piece in text.split_inclusive(' ') {
        out.push(chunk(json!({"content": piece}), Value::Null));
    }
    out.push(chunk(json!({}), json!("stop")));
    out.push(SseEvent::data(
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [], "usage": full["usage"]})
            .to_string(),
    ));
    out.push(SseEvent::data("[DONE]"));
    out
}

/// Echo reply to a text completion, non-streamed: one choice per prompt, its text the prompt
/// as the model received it.
pub fn echo_completion(body: &Value, request: &CompletionRequest) -> Value {
    let prompts: Vec<String> = match body.get("prompt") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let prompt = tollgate_guard::tokens::estimate(&request.prompt_text());
    let completion: u64 = prompts
        .iter()
        .map(|p| tollgate_guard::tokens::estimate(p))
        .sum();
    let choices: Vec<Value> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"index": i, "text": p, "finish_reason": "stop", "logprobs": null}))
        .collect();
    json!({
        "id": format!("cmpl-echo-{}", uuid::Uuid::new_v4().simple()),
        "object": "text_completion",
        "created": unix_now(),
        "model": body.get("model").cloned().unwrap_or(Value::Null),
        "choices": choices,
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    })
}

/// Echo text completion as stream events (one chunk per word of each choice, then usage and
/// `[DONE]`).
pub fn echo_completion_stream(body: &Value, request: &CompletionRequest) -> Vec<SseEvent> {
    let full = echo_completion(body, request);
    let head = |choices: Value| json!({"id": full["id"], "object": "text_completion", "created": full["created"], "model": full["model"], "choices": choices});
    let mut out = Vec::new();
    for (i, c) in full["choices"].as_array().into_iter().flatten().enumerate() {
        let text = c["text"].as_str().unwrap_or_default();
        for piece in text.split_inclusive(' ') {
            out.push(SseEvent::data(
                head(json!([{"index": i, "text": piece, "finish_reason": null, "logprobs": null}]))
                    .to_string(),
            ));
        }
        out.push(SseEvent::data(
            head(json!([{"index": i, "text": "", "finish_reason": "stop", "logprobs": null}]))
                .to_string(),
        ));
    }
    let mut usage = head(json!([]));
    usage["usage"] = full["usage"].clone();
    out.push(SseEvent::data(usage.to_string()));
    out.push(SseEvent::data("[DONE]"));
    out
}

/// Echo embeddings: deterministic unit vectors derived from SHA-256 of each input.
pub fn echo_embeddings(request: &EmbeddingsRequest, model: &str) -> Value {
    let dims = request
        .body
        .get("dimensions")
        .and_then(Value::as_u64)
        .map_or(16, |d| d.clamp(1, 4096)) as usize;
    let texts = request.texts();
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut v = Vec::with_capacity(dims);
            let mut block = Sha256::digest(t.as_bytes());
            while v.len() < dims {
                for b in block.iter() {
                    if v.len() == dims {
                        break;
                    }
                    v.push(f64::from(*b) / 127.5 - 1.0);
                }
                block = Sha256::digest(block);
            }
            let norm = v
                .iter()
                .map(|x| x * x)
                .sum::<f64>()
                .sqrt()
                .max(f64::EPSILON);
            let v: Vec<f64> = v.iter().map(|x| x / norm).collect();
            json!({"object": "embedding", "index": i, "embedding": v})
        })
        .collect();
    let tokens: u64 = texts
        .iter()
        .map(|t| tollgate_guard::tokens::estimate(t))
        .sum();
    json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> ChatRequest {
        ChatRequest::parse(WireFormat::OpenAi, v).unwrap()
    }

    #[test]
    fn echo_replies_with_the_last_user_message() {
        let body = json!({"model": "echo", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "hello there"}]}]});
        let r = echo_chat(&body, &req(body.clone()));
        assert_eq!(r["choices"][0]["message"]["content"], "hello there");
        assert!(r["usage"]["completion_tokens"].as_u64().unwrap() > 0);
        let s = echo_chat_stream(&body, &req(body.clone()));
        let text: String = s
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(text, "hello there");
        assert_eq!(s.last().unwrap().data, "[DONE]");
    }

    #[test]
    fn echo_embeddings_are_deterministic_unit_vectors() {
        let r =
            EmbeddingsRequest::parse(json!({"model": "e", "input": ["a", "b"], "dimensions": 40}))
                .unwrap();
        let a = echo_embeddings(&r, "e");
        let b = echo_embeddings(&r, "e");
        assert_eq!(a, b);
        let v: Vec<f64> = a["data"][0]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(v.len(), 40);
        assert!((v.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-9);
        assert_ne!(a["data"][0], a["data"][1]);
    }

    #[test]
    fn urls_per_kind() {
        let mk = |toml_text: &str| {
            let cfg: ProviderConfig = toml::from_str(toml_text).unwrap();
            Provider::new("p", &cfg, &SecretBackends::default()).unwrap()
        };
        let o = mk("kind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1/\"");
        assert_eq!(
            o.url(Endpoint::Chat, "m"),
            "http://127.0.0.1:1/v1/chat/completions"
        );
        let a = mk("kind = \"anthropic\"\nbase_url = \"http://127.0.0.1:1\"\napi_key = \"env:X\"");
        assert_eq!(a.url(Endpoint::Chat, "m"), "http://127.0.0.1:1/v1/messages");
        assert!(!a.supports(Endpoint::Embeddings));
        assert!(!a.supports(Endpoint::Completions));
        assert_eq!(
            o.url(Endpoint::Completions, "m"),
            "http://127.0.0.1:1/v1/completions"
        );
        let z = mk(
            "kind = \"azure\"\nbase_url = \"https://r.example\"\napi_key = \"env:X\"\napi_version = \"2024-10-21\"",
        );
        assert_eq!(
            z.url(Endpoint::Embeddings, "dep"),
            "https://r.example/openai/deployments/dep/embeddings?api-version=2024-10-21"
        );
    }
}
