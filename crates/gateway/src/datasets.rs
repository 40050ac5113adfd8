//! The fine-tuning endpoints, for data stewards only (checklist AC-3): OpenAI's `/v1/files`
//! (upload, list, get, content, delete) and `/v1/fine_tuning/jobs` (create, list, get, cancel,
//! events), proxied to the provider named by `[datasets] provider`.
//!
//! Training data is the most sensitive thing a team hands a provider, and a fine-tuning job
//! spends money and changes a model, so these calls are refused (403, OpenAI's error shape)
//! to every virtual key not bound to the `data-steward` role (`tollgate keys create --role
//! data-steward`), and to every key when `[datasets]` is absent (404). Each call, refusals
//! included, leaves an audit record whose `endpoint` names the operation (`files.create`,
//! `fine_tuning.cancel`, …), and passes the kill switches (key, team, provider, lockdown;
//! `tollgate kill route datasets` stops them all) and provider policy (DP-4: the provider's
//! review must approve the key's data class, else the default class).
//!
//! Bodies are never held whole: the audit record is written before the answer without
//! digesting its body, an upload is streamed to the provider and cut off with 413
//! past `[datasets] max_upload_bytes` (checked against `Content-Length` first, then counted,
//! so a chunked body cannot slip past); a job body is JSON read within
//! `[server] max_body_bytes`; responses (file content included) stream back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use futures_util::StreamExt;

use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::pipeline::{AppState, authenticate, read_body, reject, with_request_id};
use crate::policy::Admission;
use crate::wire::WireFormat;

/// The role a key must be bound to.
pub const STEWARD_ROLE: &str = "data-steward";
/// Kill-switch route name covering every dataset endpoint (`tollgate kill route datasets`).
pub const KILL_ROUTE: &str = "datasets";
/// Longest file or job id accepted in a path (OpenAI's are about 30 characters).
pub const MAX_ID_LEN: usize = 128;
/// Longest query string forwarded on list calls.
pub const MAX_QUERY_LEN: usize = 2048;
/// Time allowed for an upload or a content download, which may be hundreds of megabytes.
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// One proxied operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    FilesCreate,
    FilesList,
    FilesGet,
    FilesContent,
    FilesDelete,
    JobsCreate,
    JobsList,
    JobsGet,
    JobsCancel,
    JobsEvents,
}

impl Op {
    /// The audit record's `endpoint`.
    fn endpoint(self) -> &'static str {
        match self {
            Self::FilesCreate => "files.create",
            Self::FilesList => "files.list",
            Self::FilesGet => "files.get",
            Self::FilesContent => "files.content",
            Self::FilesDelete => "files.delete",
            Self::JobsCreate => "fine_tuning.create",
            Self::JobsList => "fine_tuning.list",
            Self::JobsGet => "fine_tuning.get",
            Self::JobsCancel => "fine_tuning.cancel",
            Self::JobsEvents => "fine_tuning.events",
        }
    }

    fn method(self) -> reqwest::Method {
        match self {
            Self::FilesCreate | Self::JobsCreate | Self::JobsCancel => reqwest::Method::POST,
            Self::FilesDelete => reqwest::Method::DELETE,
            _ => reqwest::Method::GET,
        }
    }

    /// The path under the provider's base URL (`…/v1`).
    fn path(self, id: &str) -> String {
        match self {
            Self::FilesCreate | Self::FilesList => "/files".to_owned(),
            Self::FilesGet | Self::FilesDelete => format!("/files/{id}"),
            Self::FilesContent => format!("/files/{id}/content"),
            Self::JobsCreate | Self::JobsList => "/fine_tuning/jobs".to_owned(),
            Self::JobsGet => format!("/fine_tuning/jobs/{id}"),
            Self::JobsCancel => format!("/fine_tuning/jobs/{id}/cancel"),
            Self::JobsEvents => format!("/fine_tuning/jobs/{id}/events"),
        }
    }

    /// Whether the response may be large and slow (so the longer timeout applies).
    fn transfers(self) -> bool {
        matches!(self, Self::FilesCreate | Self::FilesContent)
    }
}

/// The routes of this module (merged into the data-plane router, under the audit layer).
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/files", get(files_list).post(files_create))
        .route("/v1/files/{id}", get(files_get).delete(files_delete))
        .route("/v1/files/{id}/content", get(files_content))
        .route("/v1/fine_tuning/jobs", get(jobs_list).post(jobs_create))
        .route("/v1/fine_tuning/jobs/{id}", get(jobs_get))
        .route("/v1/fine_tuning/jobs/{id}/cancel", post(jobs_cancel))
        .route("/v1/fine_tuning/jobs/{id}/events", get(jobs_events))
}

async fn files_create(State(gw): State<AppState>, uri: Uri, h: HeaderMap, b: Body) -> Response {
    proxy(gw, Op::FilesCreate, String::new(), uri, h, b).await
}
async fn files_list(State(gw): State<AppState>, uri: Uri, h: HeaderMap, b: Body) -> Response {
    proxy(gw, Op::FilesList, String::new(), uri, h, b).await
}
async fn files_get(
    State(gw): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    h: HeaderMap,
    b: Body,
) -> Response {
    proxy(gw, Op::FilesGet, id, uri, h, b).await
}
async fn files_delete(
    State(gw): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    h: HeaderMap,
    b: Body,
) -> Response {
    proxy(gw, Op::FilesDelete, id, uri, h, b).await
}
async fn files_content(
    State(gw): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    h: HeaderMap,
    b: Body,
) -> Response {
    proxy(gw, Op::FilesContent, id, uri, h, b).await
}
async fn jobs_create(State(gw): State<AppState>, uri: Uri, h: HeaderMap, b: Body) -> Response {
    proxy(gw, Op::JobsCreate, String::new(), uri, h, b).await
}
async fn jobs_list(State(gw): State<AppState>, uri: Uri, h: HeaderMap, b: Body) -> Response {
    proxy(gw, Op::JobsList, String::new(), uri, h, b).await
}
async fn jobs_get(
    State(gw): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    h: HeaderMap,
    b: Body,
) -> Response {
    proxy(gw, Op::JobsGet, id, uri, h, b).await
}
async fn jobs_cancel(
    State(gw): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    h: HeaderMap,
    b: Body,
) -> Response {
    proxy(gw, Op::JobsCancel, id, uri, h, b).await
}
async fn jobs_events(
    State(gw): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    h: HeaderMap,
    b: Body,
) -> Response {
    proxy(gw, Op::JobsEvents, id, uri, h, b).await
}

/// Whether `id` may be put in an upstream path: letters, digits, `-` and `_` only, so it can
/// neither climb out of the path (`..`, an encoded `/`) nor add a query.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The stages of a dataset call, in order: authenticate, the role, the id, the kill
/// switches, the configured provider and its policy, the body, the upstream call.
async fn proxy(
    gw: AppState,
    op: Op,
    id: String,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = RequestContext::new(op.endpoint(), WireFormat::OpenAi);
    let key = match authenticate(&gw, &mut ctx, &headers).await {
        Ok(k) => k,
        Err(e) => return reject(&gw, ctx, e),
    };
    ctx.route = Some(KILL_ROUTE.to_owned());
    let role = match &gw.config.datasets {
        Some(d) => d.role_of(key.role.as_deref(), key.team.as_deref()),
        None => key.role.as_deref(),
    };
    if role != Some(STEWARD_ROLE) {
        let e = GatewayError::forbidden(format!(
            "key {} may not use {}: fine-tuning files and jobs need a key bound to the {STEWARD_ROLE} role (tollgate keys create --role {STEWARD_ROLE}, or its team in [datasets] steward_teams)",
            key.id,
            op.endpoint()
        ));
        return reject(&gw, ctx, e);
    }
    if !id.is_empty() && !valid_id(&id) {
        let e = GatewayError::bad_request(format!(
            "invalid id: 1-{MAX_ID_LEN} characters of letters, digits, '-' and '_'"
        ));
        return reject(&gw, ctx, e);
    }
    if let Err(e) = gw.switches.check(
        &key.id,
        key.team.as_deref(),
        KILL_ROUTE,
        &gw.config.incident.break_glass_keys,
    ) {
        return reject(&gw, ctx, e);
    }
    let Some(cfg) = gw.config.datasets.as_ref() else {
        let e = GatewayError::not_found(&format!(
            "{} (the fine-tuning endpoints are off: set [datasets] provider in tollgate.toml)",
            uri.path()
        ));
        return reject(&gw, ctx, e);
    };
    let Some(provider) = gw.providers.get(&cfg.provider).cloned() else {
        return reject(
            &gw,
            ctx,
            GatewayError::internal("the datasets provider is not configured"),
        );
    };
    ctx.target = Some(format!("{}/{}", provider.name, op.endpoint()));
    if let Some(why) = gw.switches.target_blocked(&provider.name, "") {
        return reject(&gw, ctx, GatewayError::suspended(why));
    }
    let class = key
        .data_class
        .unwrap_or_else(|| gw.config.policy.default_class());
    ctx.data_class = Some(class);
    match crate::policy::admit(
        &provider,
        class,
        crate::config::review::today(),
        gw.config.policy.expired_review,
    ) {
        Admission::Allowed => {}
        Admission::AllowedExpired(w) => tracing::warn!(request_id = %ctx.id, "{w}"),
        Admission::Refused(why) => {
            return reject(&gw, ctx, crate::policy::refusal(&[why]));
        }
    }
    let mut path = op.path(&id);
    if let Some(q) = uri.query().filter(|q| !q.is_empty()) {
        if q.len() > MAX_QUERY_LEN {
            let e = GatewayError::bad_request(format!(
                "query string longer than {MAX_QUERY_LEN} bytes"
            ));
            return reject(&gw, ctx, e);
        }
        path = format!("{path}?{q}");
    }
    let mut rb = match provider.passthrough(op.method(), &path).await {
        Ok(rb) => rb,
        Err(e) => return reject(&gw, ctx, e),
    };
    rb = rb.timeout(if op.transfers() {
        TRANSFER_TIMEOUT
    } else {
        provider.resilience.total_timeout
    });
    let cut = Arc::new(AtomicBool::new(false));
    let cap = cfg.max_upload_bytes;
    match op {
        Op::FilesCreate => {
            let declared = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > cap) {
                return reject(&gw, ctx, too_large(cap));
            }
            if let Some(ct) = headers.get(header::CONTENT_TYPE) {
                rb = rb.header(header::CONTENT_TYPE, ct.clone());
            }
            if let Some(n) = declared {
                rb = rb.header(header::CONTENT_LENGTH, n);
            }
            rb = rb.body(reqwest::Body::wrap_stream(capped(body, cap, cut.clone())));
        }
        Op::JobsCreate | Op::JobsCancel => {
            let bytes = match read_body(&gw, &headers, body).await {
                Ok(b) => b,
                Err(e) => return reject(&gw, ctx, e),
            };
            if !bytes.is_empty() {
                rb = rb
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(bytes);
            }
        }
        _ => {}
    }
    let started = std::time::Instant::now();
    ctx.attempts = 1;
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(_) if cut.load(Ordering::SeqCst) => return reject(&gw, ctx, too_large(cap)),
        Err(e) => {
            tracing::warn!(request_id = %ctx.id, provider = %provider.name, error = %e, "dataset call failed");
            let err = if e.is_timeout() {
                GatewayError::unavailable(format!("provider {:?} timed out", provider.name))
            } else {
                GatewayError::upstream_bad(format!("provider {:?} is unreachable", provider.name))
            };
            return reject(&gw, ctx, err);
        }
    };
    ctx.upstream_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    let status = resp.status().as_u16();
    ctx.status = status;
    if status >= 400 {
        ctx.error_class = Some(if status == 401 || status == 403 {
            "upstream_auth"
        } else {
            "upstream"
        });
    }
    let mut out = Response::builder().status(status);
    for name in [header::CONTENT_TYPE, header::CONTENT_DISPOSITION] {
        if let Some(v) = resp.headers().get(&name) {
            if let Ok(v) = HeaderValue::from_bytes(v.as_bytes()) {
                out = out.header(name, v);
            }
        }
    }
    let id = ctx.id.clone();
    // The record is durable before the answer goes out (as the audit layer guarantees for
    // the model endpoints), but the body is not held to digest it: it may be a whole file.
    if let Err(e) = ctx.finish_unbuffered(&gw).durable().await {
        if gw.audit.fail_closed() {
            tracing::error!(request_id = %id, error = %e, "response withheld: its audit record could not be written");
            let err = GatewayError::unavailable(format!(
                "the audit trail cannot be written, so tollgate withholds the response (audit.fail_closed) [request {id}]"
            ));
            return with_request_id(err.into_response_for(WireFormat::OpenAi), &id);
        }
    }
    let body = Body::from_stream(resp.bytes_stream());
    match out.body(body) {
        Ok(r) => with_request_id(r, &id),
        Err(_) => GatewayError::internal("could not build the response")
            .into_response_for(WireFormat::OpenAi),
    }
}

fn too_large(cap: u64) -> GatewayError {
    GatewayError::too_large(usize::try_from(cap).unwrap_or(usize::MAX))
}

/// `body` as a stream that fails (and sets `cut`) once more than `cap` bytes have passed.
fn capped(
    body: Body,
    cap: u64,
    cut: Arc<AtomicBool>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    let mut seen: u64 = 0;
    body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        seen = seen.saturating_add(chunk.len() as u64);
        if seen > cap {
            cut.store(true, Ordering::SeqCst);
            return Err(std::io::Error::other("upload larger than the limit"));
        }
        Ok(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_leave_the_path() {
        assert!(valid_id("file-abc123"));
        assert!(valid_id("ftjob-AbC_9"));
        for bad in [
            "",
            "..",
            "a/b",
            "a%2Fb",
            "a?b",
            "a.b",
            &"x".repeat(MAX_ID_LEN + 1),
        ] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn uploads_are_cut_past_the_cap() {
        let cut = Arc::new(AtomicBool::new(false));
        let body = Body::from(vec![0u8; 2048]);
        let parts: Vec<_> = capped(body, 1024, cut.clone()).collect().await;
        assert!(parts.iter().any(Result::is_err));
        assert!(cut.load(Ordering::SeqCst));
        let cut = Arc::new(AtomicBool::new(false));
        let parts: Vec<_> = capped(Body::from(vec![0u8; 1024]), 1024, cut.clone())
            .collect()
            .await;
        assert!(parts.iter().all(Result::is_ok));
        assert!(!cut.load(Ordering::SeqCst));
    }
}
