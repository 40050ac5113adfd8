//! Prompt versions on the admin API (DO-3, DO-4): read a prompt's history (PromptsStage),
//! promote its staging version and roll production back (PromptsPromote), with the same gates
//! as `tollgate prompts promote` (a passed evaluation; four-eyes when configured). Every action
//! and refusal is audited; this instance applies the change at once, the others within a
//! second.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tollgate_store::prompt::PromptEnv;

use super::rbac::Permission;
use super::{AppState, authorize, error, record};
use crate::prompt::{self, deployed_version};

/// The routes of this module (merged into the admin router).
pub(super) fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/admin/v1/prompts/{id}", get(history))
        .route("/admin/v1/prompts/{id}/promote", post(promote))
        .route("/admin/v1/prompts/{id}/rollback", post(rollback))
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        e.to_string(),
    )
}

fn no_prompt(name: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found_error",
        format!("no prompt {name:?}"),
    )
}

async fn history(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if let Err(r) = authorize(&gw, &headers, Permission::PromptsStage, "prompts.history").await {
        return r;
    }
    let (versions, log) = match tokio::try_join!(
        gw.store.prompts.prompt_versions(&name),
        gw.store.prompts.prompt_deployments(&name)
    ) {
        Ok(x) => x,
        Err(e) => return unavailable(e),
    };
    if versions.is_empty() {
        return no_prompt(&name);
    }
    Json(json!({
        "name": name,
        "staging": deployed_version(&log, PromptEnv::Staging),
        "production": deployed_version(&log, PromptEnv::Production),
        "versions": versions.iter().map(|v| json!({
            "version": v.version, "author": v.author, "created_at": v.created_at.to_rfc3339(),
            "sha256": v.content_hash, "diff": v.diff,
            "eval": v.eval.as_ref().map(|e| json!({"passed": e.passed, "at": e.at.to_rfc3339()})),
        })).collect::<Vec<_>>(),
        "deployments": log,
    }))
    .into_response()
}

async fn promote(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let (who, _) =
        match authorize(&gw, &headers, Permission::PromptsPromote, "prompts.promote").await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let log = match gw.store.prompts.prompt_deployments(&name).await {
        Ok(l) => l,
        Err(e) => return unavailable(e),
    };
    let Some(staged) = deployed_version(&log, PromptEnv::Staging) else {
        return no_prompt(&name);
    };
    let v = match gw.store.prompts.prompt_version(&name, staged).await {
        Ok(Some(v)) => v,
        Ok(None) => return no_prompt(&name),
        Err(e) => return unavailable(e),
    };
    if let Some(why) = prompt::promotion_refusal(&v, &who.id, gw.config.governance.four_eyes) {
        record(
            &gw,
            "prompts.promote",
            &who.id,
            Some(&name),
            "denied",
            json!({"version": staged, "reason": why}),
        );
        return error(StatusCode::CONFLICT, "invalid_request_error", why);
    }
    let previous = deployed_version(&log, PromptEnv::Production);
    if previous != Some(staged) {
        if let Err(e) = gw
            .store
            .prompts
            .deploy_prompt(&name, PromptEnv::Production, staged, &who.id, "promote")
            .await
        {
            return unavailable(e);
        }
        crate::refresh_prompts(&gw).await;
    }
    record(
        &gw,
        "prompts.promote",
        &who.id,
        Some(&name),
        "ok",
        json!({"version": staged, "previous": previous, "author": v.author}),
    );
    Json(json!({"name": name, "production": staged, "previous": previous})).into_response()
}

/// Body of `POST /admin/v1/prompts/{id}/rollback` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    /// The version to restore (default: the previous production version).
    to: Option<i64>,
}

async fn rollback(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (who, _) = match authorize(
        &gw,
        &headers,
        Permission::PromptsPromote,
        "prompts.rollback",
    )
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let req: RollbackBody = if body.is_empty() {
        RollbackBody::default()
    } else {
        match super::parse_body(&body) {
            Ok(r) => r,
            Err(resp) => return resp,
        }
    };
    let log = match gw.store.prompts.prompt_deployments(&name).await {
        Ok(l) => l,
        Err(e) => return unavailable(e),
    };
    if log.is_empty() {
        return no_prompt(&name);
    }
    let (now, target) = match prompt::rollback_target(&name, &log, req.to) {
        Ok(x) => x,
        Err(msg) => return error(StatusCode::CONFLICT, "invalid_request_error", msg),
    };
    match gw
        .store
        .prompts
        .deploy_prompt(&name, PromptEnv::Production, target, &who.id, "rollback")
        .await
    {
        Ok(_) => {}
        Err(tollgate_store::StoreError::NoSuchPromptVersion { version, .. }) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found_error",
                format!("{name} has no version {version}"),
            );
        }
        Err(e) => return unavailable(e),
    }
    crate::refresh_prompts(&gw).await;
    record(
        &gw,
        "prompts.rollback",
        &who.id,
        Some(&name),
        "ok",
        json!({"from": now, "to": target}),
    );
    Json(json!({"name": name, "production": target, "previous": now})).into_response()
}
