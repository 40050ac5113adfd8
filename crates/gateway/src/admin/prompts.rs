//! Prompt and route versions on the admin API (DO-3, DO-4): read a prompt's history
//! (PromptsStage) or a route's (ModelsRead), promote the staging version and roll production
//! back (PromptsPromote), with the same gates as `tollgate prompts promote` and `tollgate
//! routes promote` (a passed evaluation; four-eyes when configured). Route versions are kept
//! under `route:ALIAS` beside the prompts, so one set of handlers serves both. Every action
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
use crate::rollout::STORE_PREFIX;

/// What is versioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Prompt,
    Route,
}

impl Kind {
    /// The store name of `id`.
    fn key(self, id: &str) -> String {
        match self {
            Self::Prompt => id.to_owned(),
            Self::Route => format!("{STORE_PREFIX}{id}"),
        }
    }

    /// Audit action prefix.
    fn group(self) -> &'static str {
        match self {
            Self::Prompt => "prompts",
            Self::Route => "routes",
        }
    }

    /// Who may read the history.
    fn reader(self) -> Permission {
        match self {
            Self::Prompt => Permission::PromptsStage,
            Self::Route => Permission::ModelsRead,
        }
    }
}

/// The routes of this module (merged into the admin router).
pub(super) fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/admin/v1/prompts/{id}",
            get(|s, h, p| history(s, h, p, Kind::Prompt)),
        )
        .route(
            "/admin/v1/prompts/{id}/promote",
            post(|s, h, p| promote(s, h, p, Kind::Prompt)),
        )
        .route(
            "/admin/v1/prompts/{id}/rollback",
            post(|s, h, p, b| rollback(s, h, p, b, Kind::Prompt)),
        )
        .route(
            "/admin/v1/routes/{id}",
            get(|s, h, p| history(s, h, p, Kind::Route)),
        )
        .route(
            "/admin/v1/routes/{id}/promote",
            post(|s, h, p| promote(s, h, p, Kind::Route)),
        )
        .route(
            "/admin/v1/routes/{id}/rollback",
            post(|s, h, p, b| rollback(s, h, p, b, Kind::Route)),
        )
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        e.to_string(),
    )
}

fn no_prompt(kind: Kind, name: &str) -> Response {
    let what = match kind {
        Kind::Prompt => "prompt",
        Kind::Route => "route version of",
    };
    error(
        StatusCode::NOT_FOUND,
        "not_found_error",
        format!("no {what} {name:?}"),
    )
}

async fn history(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    kind: Kind,
) -> Response {
    let action = format!("{}.history", kind.group());
    if let Err(r) = authorize(&gw, &headers, kind.reader(), &action).await {
        return r;
    }
    let key = kind.key(&name);
    let (versions, log) = match tokio::try_join!(
        gw.store.prompts.prompt_versions(&key),
        gw.store.prompts.prompt_deployments(&key)
    ) {
        Ok(x) => x,
        Err(e) => return unavailable(e),
    };
    if versions.is_empty() {
        return no_prompt(kind, &name);
    }
    Json(json!({
        "name": name,
        "staging": deployed_version(&log, PromptEnv::Staging),
        "production": deployed_version(&log, PromptEnv::Production),
        "versions": versions.iter().map(|v| json!({
            "version": v.version, "author": v.author, "created_at": v.created_at.to_rfc3339(),
            "sha256": v.content_hash, "diff": v.diff,
            "targets": (kind == Kind::Route).then(|| serde_json::from_str::<serde_json::Value>(&v.content).ok().map(|c| c["targets"].clone())).flatten(),
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
    kind: Kind,
) -> Response {
    let action = format!("{}.promote", kind.group());
    let (who, _) = match authorize(&gw, &headers, Permission::PromptsPromote, &action).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let key = kind.key(&name);
    let log = match gw.store.prompts.prompt_deployments(&key).await {
        Ok(l) => l,
        Err(e) => return unavailable(e),
    };
    let Some(staged) = deployed_version(&log, PromptEnv::Staging) else {
        return no_prompt(kind, &name);
    };
    let v = match gw.store.prompts.prompt_version(&key, staged).await {
        Ok(Some(v)) => v,
        Ok(None) => return no_prompt(kind, &name),
        Err(e) => return unavailable(e),
    };
    if let Some(why) = prompt::promotion_refusal(&v, &who.id, gw.config.governance.four_eyes) {
        record(
            &gw,
            &action,
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
            .deploy_prompt(&key, PromptEnv::Production, staged, &who.id, "promote")
            .await
        {
            return unavailable(e);
        }
        crate::refresh_prompts(&gw).await;
    }
    record(
        &gw,
        &action,
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
    kind: Kind,
) -> Response {
    let action = format!("{}.rollback", kind.group());
    let (who, _) = match authorize(&gw, &headers, Permission::PromptsPromote, &action).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let key = kind.key(&name);
    let req: RollbackBody = if body.is_empty() {
        RollbackBody::default()
    } else {
        match super::parse_body(&body) {
            Ok(r) => r,
            Err(resp) => return resp,
        }
    };
    let log = match gw.store.prompts.prompt_deployments(&key).await {
        Ok(l) => l,
        Err(e) => return unavailable(e),
    };
    if log.is_empty() {
        return no_prompt(kind, &name);
    }
    let (now, target) = match prompt::rollback_target(&prompt::subject_of(&key).0, &log, req.to) {
        Ok(x) => x,
        Err(msg) => return error(StatusCode::CONFLICT, "invalid_request_error", msg),
    };
    match gw
        .store
        .prompts
        .deploy_prompt(&key, PromptEnv::Production, target, &who.id, "rollback")
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
        &action,
        &who.id,
        Some(&name),
        "ok",
        json!({"from": now, "to": target}),
    );
    Json(json!({"name": name, "production": target, "previous": now})).into_response()
}
