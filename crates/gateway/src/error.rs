//! The gateway's request error and the one function that turns it into an HTTP response.
//!
//! Every error carries three facts (pingora's model): what went wrong ([`ErrorKind`]), whose
//! fault it is ([`Fault`]) and whether a retry can help. [`GatewayError::into_response_for`]
//! is the single place where those become a status code and a body in the caller's wire
//! format, so the OpenAI and Anthropic SDKs raise their usual exception types.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::wire::WireFormat;

/// Whose fault an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The caller sent something we refuse.
    Client,
    /// The provider failed, timed out or spoke garbage.
    Upstream,
    /// A bug or a broken local dependency (store, keystore).
    Internal,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// No key was presented (401).
    MissingKey,
    /// The presented key is malformed, unknown, expired or revoked (401).
    InvalidKey,
    /// The key may not use this model or endpoint (403).
    Forbidden,
    /// No provider of the route may receive the request's data class (403, DP-4).
    Policy,
    /// Malformed JSON or missing fields (400).
    BadRequest,
    /// A rate, token or concurrency limit of the key, team, IP or route (429, DO-1).
    RateLimited,
    /// A budget's hard limit is reached (429 `budget_exceeded`, DO-2).
    BudgetExceeded,
    /// The key is suspended (abuse) or switched off (kill switch) (403).
    Suspended,
    /// Body larger than the configured cap (413).
    PayloadTooLarge,
    /// No route for the requested model (404).
    ModelNotFound,
    /// Unknown path (404).
    NotFound,
    /// Upstream did not answer in time (504).
    UpstreamTimeout,
    /// Upstream failed or sent something unusable (502).
    UpstreamBad,
    /// Every target is unavailable, e.g. all breakers open (503).
    Unavailable,
    /// The upstream rejected the request as the client's fault; status passed through.
    UpstreamRejected(u16),
    /// A guard refused the request or the answer (400, `content_filter`); names the guard.
    Blocked(&'static str),
    /// Our own failure (500).
    Internal,
}

/// A request failure, ready to be shown to the client in its own wire format.
#[derive(Debug, Clone)]
pub struct GatewayError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Whose fault.
    pub fault: Fault,
    /// Whether retrying the same request later can succeed.
    pub retryable: bool,
    /// Message for the client: says what is wrong and what to change. Never holds secrets.
    pub message: String,
    /// Seconds to suggest in `Retry-After`, if any.
    pub retry_after: Option<u64>,
}

impl GatewayError {
    fn new(kind: ErrorKind, fault: Fault, retryable: bool, message: impl Into<String>) -> Self {
        Self {
            kind,
            fault,
            retryable,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 401: no key presented.
    pub fn missing_key() -> Self {
        Self::new(
            ErrorKind::MissingKey,
            Fault::Client,
            false,
            "missing API key: send a tollgate virtual key as `Authorization: Bearer tg_…` or `x-api-key: tg_…` (AC-2)",
        )
    }
    /// 401: key rejected, with the reason.
    pub fn invalid_key(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidKey, Fault::Client, false, reason)
    }
    /// 403.
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, Fault::Client, false, msg)
    }
    /// 403: no target's provider is approved for the request's data (DP-4); the message
    /// names each provider and why.
    pub fn policy(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Policy, Fault::Client, false, msg)
    }
    /// 400.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, Fault::Client, false, msg)
    }
    /// 413.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            ErrorKind::PayloadTooLarge,
            Fault::Client,
            false,
            format!("request body exceeds the {limit}-byte limit (server.max_body_bytes)"),
        )
    }
    /// 404 for a model alias.
    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            ErrorKind::ModelNotFound,
            Fault::Client,
            false,
            format!(
                "model {model:?} is not routed by this gateway; GET /v1/models lists the models your key may use"
            ),
        )
    }
    /// 404 for a path.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            Fault::Client,
            false,
            format!("no such endpoint: {path}"),
        )
    }
    /// 504.
    pub fn upstream_timeout(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::UpstreamTimeout, Fault::Upstream, true, msg)
    }
    /// 502.
    pub fn upstream_bad(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::UpstreamBad, Fault::Upstream, true, msg)
    }
    /// 503.
    pub fn unavailable(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, Fault::Upstream, true, msg)
    }
    /// Upstream said the request itself is wrong (4xx other than auth and rate limits).
    pub fn upstream_rejected(status: u16, msg: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::UpstreamRejected(status),
            Fault::Client,
            false,
            msg,
        )
    }
    /// 400 from a guard: names the guard and the kind of finding, never the matched text.
    pub fn blocked(guard: &'static str, kind: &str) -> Self {
        Self::new(
            ErrorKind::Blocked(guard),
            Fault::Client,
            false,
            format!(
                "request blocked by the {guard} guard ({kind} found); remove it from the input or change this route's guards.{guard} policy"
            ),
        )
    }
    /// 429 from a local limit, with when to retry.
    pub fn rate_limited(msg: impl Into<String>, retry_after: std::time::Duration) -> Self {
        let mut e = Self::new(ErrorKind::RateLimited, Fault::Client, true, msg);
        e.retry_after = Some(retry_after.as_secs_f64().ceil().max(1.0) as u64);
        e
    }

    /// 429 `budget_exceeded`.
    pub fn budget_exceeded(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::BudgetExceeded, Fault::Client, false, msg)
    }

    /// 403: the key is suspended or switched off.
    pub fn suspended(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Suspended, Fault::Client, false, msg)
    }

    /// 500.
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, Fault::Internal, true, msg)
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::MissingKey | ErrorKind::InvalidKey => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden | ErrorKind::Policy | ErrorKind::Suspended => {
                StatusCode::FORBIDDEN
            }
            ErrorKind::RateLimited | ErrorKind::BudgetExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::BadRequest | ErrorKind::Blocked(_) => StatusCode::BAD_REQUEST,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::ModelNotFound | ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::UpstreamBad => StatusCode::BAD_GATEWAY,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::UpstreamRejected(s) => {
                StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Short class for logs and metrics.
    pub fn class(&self) -> &'static str {
        match self.kind {
            ErrorKind::MissingKey | ErrorKind::InvalidKey => "auth",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Policy => "policy",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::BudgetExceeded => "budget_exceeded",
            ErrorKind::Suspended => "suspended",
            ErrorKind::PayloadTooLarge => "too_large",
            ErrorKind::ModelNotFound | ErrorKind::NotFound => "not_found",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::UpstreamBad => "upstream_error",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::UpstreamRejected(_) => "upstream_rejected",
            ErrorKind::Blocked(_) => "blocked",
            ErrorKind::Internal => "internal",
        }
    }

    /// The JSON error body in `format`'s shape.
    pub fn body(&self, format: WireFormat) -> serde_json::Value {
        let status = self.status().as_u16();
        match format {
            WireFormat::OpenAi => {
                let (ty, code) = match self.kind {
                    ErrorKind::MissingKey | ErrorKind::InvalidKey => {
                        ("authentication_error", "invalid_api_key")
                    }
                    ErrorKind::Forbidden => ("permission_error", "model_not_allowed"),
                    ErrorKind::Policy => ("permission_error", "provider_not_approved"),
                    ErrorKind::RateLimited => ("rate_limit_error", "rate_limit_exceeded"),
                    ErrorKind::BudgetExceeded => ("insufficient_quota", "budget_exceeded"),
                    ErrorKind::Suspended => ("permission_error", "key_suspended"),
                    ErrorKind::ModelNotFound => ("invalid_request_error", "model_not_found"),
                    ErrorKind::NotFound => ("invalid_request_error", "unknown_url"),
                    ErrorKind::PayloadTooLarge => ("invalid_request_error", "request_too_large"),
                    ErrorKind::BadRequest | ErrorKind::UpstreamRejected(_) => {
                        ("invalid_request_error", "invalid_request")
                    }
                    ErrorKind::UpstreamTimeout => ("api_error", "upstream_timeout"),
                    ErrorKind::UpstreamBad => ("api_error", "upstream_error"),
                    ErrorKind::Unavailable => ("api_error", "service_unavailable"),
                    ErrorKind::Internal => ("api_error", "internal_error"),
                    // OpenAI/Azure's convention, recognised by SDKs and red-team tools.
                    ErrorKind::Blocked(_) => ("invalid_request_error", "content_filter"),
                };
                let ty = if status == 429 && self.kind != ErrorKind::BudgetExceeded {
                    "rate_limit_error"
                } else {
                    ty
                };
                json!({"error": {"message": self.message, "type": ty, "param": null, "code": code}})
            }
            WireFormat::Anthropic => {
                let ty = match status {
                    400 => "invalid_request_error",
                    401 => "authentication_error",
                    403 => "permission_error",
                    404 => "not_found_error",
                    413 => "request_too_large",
                    429 => "rate_limit_error",
                    503 | 529 => "overloaded_error",
                    s if s < 500 => "invalid_request_error",
                    _ => "api_error",
                };
                json!({"type": "error", "error": {"type": ty, "message": self.message}})
            }
        }
    }

    /// The HTTP response in `format`'s shape.
    pub fn into_response_for(self, format: WireFormat) -> Response {
        let mut resp = (self.status(), axum::Json(self.body(format))).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if matches!(self.kind, ErrorKind::MissingKey | ErrorKind::InvalidKey) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tollgate\""),
            );
        }
        resp
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status().as_u16(),
            self.class(),
            self.message
        )
    }
}

impl std::error::Error for GatewayError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_shapes() {
        let e = GatewayError::missing_key();
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            e.body(WireFormat::OpenAi)["error"]["type"],
            "authentication_error"
        );
        assert_eq!(
            e.body(WireFormat::Anthropic)["error"]["type"],
            "authentication_error"
        );
        assert_eq!(e.body(WireFormat::Anthropic)["type"], "error");
        assert_eq!(
            GatewayError::too_large(10).status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            GatewayError::model_not_found("x").body(WireFormat::Anthropic)["error"]["type"],
            "not_found_error"
        );
        let p = GatewayError::policy("provider \"x\" is not approved");
        assert_eq!(p.status(), StatusCode::FORBIDDEN);
        assert_eq!(p.class(), "policy");
        assert_eq!(
            p.body(WireFormat::OpenAi)["error"]["code"],
            "provider_not_approved"
        );
        assert_eq!(
            p.body(WireFormat::Anthropic)["error"]["type"],
            "permission_error"
        );
        assert_eq!(
            GatewayError::upstream_timeout("t").status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            GatewayError::upstream_rejected(422, "x").status().as_u16(),
            422
        );
        assert_eq!(
            GatewayError::upstream_rejected(999_u16, "x")
                .status()
                .as_u16(),
            999
        );
    }
}
