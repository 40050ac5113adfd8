//! The operational endpoints beside the data plane: the model list, the fallback for unknown
//! paths, health, readiness and Prometheus metrics.

use super::*;
/// `GET /v1/models`: the aliases this key may call, in the caller's format (Anthropic's when
/// an `anthropic-version` header is present).
pub async fn models(State(gw): State<AppState>, headers: HeaderMap) -> Response {
    let format = if headers.contains_key("anthropic-version") {
        WireFormat::Anthropic
    } else {
        WireFormat::OpenAi
    };
    let mut ctx = RequestContext::new("models", format);
    let key = match authenticate(&gw, &mut ctx, &headers).await {
        Ok(k) => k,
        Err(e) => return reject(&gw, ctx, e),
    };
    let ids: Vec<&String> = gw.routes.keys().filter(|m| key.allows_model(m)).collect();
    let body = match format {
        WireFormat::OpenAi => json!({
            "object": "list",
            "data": ids.iter().map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "tollgate"})).collect::<Vec<_>>(),
        }),
        WireFormat::Anthropic => json!({
            "data": ids.iter().map(|id| json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"})).collect::<Vec<_>>(),
            "has_more": false,
            "first_id": ids.first(),
            "last_id": ids.last(),
        }),
    };
    let id = ctx.id.clone();
    ctx.finish(&gw);
    with_request_id(axum::Json(body).into_response(), &id)
}

/// Any other path. Under `/v1/` a key is still required first, so probing reveals nothing.
pub async fn fallback(
    State(gw): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_owned();
    let format = if path.starts_with("/v1/messages") {
        WireFormat::Anthropic
    } else {
        WireFormat::OpenAi
    };
    let mut ctx = RequestContext::new("other", format);
    if let Err(e) = authenticate(&gw, &mut ctx, &headers).await {
        return reject(&gw, ctx, e);
    }
    reject(&gw, ctx, GatewayError::not_found(&path))
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: the store answers, so requests can be authenticated.
pub async fn readyz(State(gw): State<AppState>) -> Response {
    if gw.audit.refusing() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unavailable", "reason": "audit store cannot be written (audit.fail_closed)"})),
        )
            .into_response();
    }
    // Shared limits and budgets (Redis): refusing requests is unavailable, per-instance
    // limits or budgets in the store degraded. The limiter's check asks Redis; the budgets
    // then read the same link's state.
    let limits = match (gw.rate_limiter.readiness().await, gw.budgets.readiness()) {
        (crate::limits::Readiness::Unavailable(a), crate::limits::Readiness::Unavailable(b)) => {
            crate::limits::Readiness::Unavailable(format!("{a}; {b}"))
        }
        (u @ crate::limits::Readiness::Unavailable(_), _)
        | (_, u @ crate::limits::Readiness::Unavailable(_)) => u,
        (crate::limits::Readiness::Degraded(a), crate::limits::Readiness::Degraded(b)) => {
            crate::limits::Readiness::Degraded(format!("{a}; {b}"))
        }
        (d @ crate::limits::Readiness::Degraded(_), _)
        | (_, d @ crate::limits::Readiness::Degraded(_)) => d,
        _ => crate::limits::Readiness::Ready,
    };
    if let crate::limits::Readiness::Unavailable(reason) = &limits {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unavailable", "reason": reason})),
        )
            .into_response();
    }
    match gw.store.keys.ping().await {
        Ok(()) if !gw.audit.healthy() => axum::Json(json!({
            "status": "degraded",
            "reason": "audit store cannot be written; serving because audit.fail_closed = false",
        }))
        .into_response(),
        Ok(()) => match limits {
            crate::limits::Readiness::Degraded(reason) => {
                axum::Json(json!({"status": "degraded", "reason": reason})).into_response()
            }
            _ => axum::Json(json!({"status": "ready"})).into_response(),
        },
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "unavailable", "reason": "store unreachable"})),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text. Requires a valid key like every non-health route (AC-2).
pub async fn metrics(State(gw): State<AppState>, headers: HeaderMap) -> Response {
    if let Err((e, _)) = gw.auth.authenticate(&headers).await {
        return e.into_response_for(WireFormat::OpenAi);
    }
    let mut resp = gw.metrics.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}
