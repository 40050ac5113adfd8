//! Wire formats: the OpenAI and Anthropic request, response and stream shapes, and the
//! translations between them that let a route fall back across providers; legacy OpenAI
//! text completions ([`completion`]) go to OpenAI-compatible providers only.
//!
//! Requests and responses stay `serde_json::Value`s: fields we do not translate pass through
//! untouched when client and target speak the same format, so a new provider parameter works
//! through tollgate the day the provider ships it.

pub mod completion;
pub mod request;
pub mod response;
pub mod stream;

use serde_json::Value;

/// The two wire formats clients and providers speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireFormat {
    /// OpenAI Chat Completions / Embeddings.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl WireFormat {
    /// Lower-case name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        }
    }
}

/// Token usage reported by a provider (or estimated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    pub input: u64,
    /// Completion tokens.
    pub output: u64,
}

impl Usage {
    /// Read usage from an OpenAI `usage` object.
    pub fn from_openai(u: &Value) -> Option<Self> {
        let input = u.get("prompt_tokens")?.as_u64()?;
        let output = u
            .get("completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Some(Self { input, output })
    }

    /// Read usage from an Anthropic `usage` object (cache reads and writes count as input).
    pub fn from_anthropic(u: &Value) -> Option<Self> {
        let get = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
        if u.get("input_tokens").is_none() && u.get("output_tokens").is_none() {
            return None;
        }
        Some(Self {
            input: get("input_tokens")
                + get("cache_read_input_tokens")
                + get("cache_creation_input_tokens"),
            output: get("output_tokens"),
        })
    }
}

/// Map an OpenAI `finish_reason` to an Anthropic `stop_reason`.
pub fn finish_to_stop_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Map an Anthropic `stop_reason` to an OpenAI `finish_reason`.
pub fn stop_to_finish_reason(stop: &str) -> &'static str {
    match stop {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// Seconds since the epoch, for `created` fields.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
