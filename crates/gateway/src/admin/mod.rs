//! The admin plane: `/admin/v1/…` JSON API with role-based access (checklist AC-3).
//!
//! Admin credentials (`tg_admin_…`) are distinct from data-plane keys and each is bound to one
//! [`rbac::Role`]. [`ENDPOINTS`] lists every operation with the permission it needs; the
//! router, the OpenAPI document at `/admin/v1/openapi.json` and the role × endpoint test all
//! read that one table. Every action and every denial is written to the audit trail.

/// The admin handlers' `?`: the value of a `Result<T, Response>`, or return its refusal
/// (already audited and shaped as the admin API's error) from the handler.
macro_rules! or_respond {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(refusal) => return refusal,
        }
    };
}

mod admins;
mod audit;
mod endpoints;
mod keys;
mod prompts;
pub mod rbac;
mod review;

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tollgate_store::AdminCredential;

use crate::audit::Draft;
use crate::state::Gateway;
use rbac::{Permission, Role};

pub use endpoints::{ENDPOINTS, Endpoint};

type AppState = Arc<Gateway>;

/// The admin router (merged into the main one).
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/admin/v1/openapi.json", get(openapi))
        .route("/admin/v1/whoami", get(whoami))
        .route("/admin/v1/providers", get(providers))
        .route("/admin/v1/audit/requests/{id}", get(audit_request))
        .route("/admin/v1/audit/verify", get(audit_verify))
        .route("/admin/v1/audit/records", delete(audit_delete))
        .route("/admin/v1/roles", get(roles))
        .route(
            "/admin/v1/killswitches",
            get(list_switches).post(set_switch),
        )
        .route(
            "/admin/v1/killswitches/{kind}/{target}",
            delete(clear_switch),
        )
        .merge(admins::router())
        .merge(keys::router())
        .merge(prompts::router())
        .merge(audit::router())
        .merge(review::router())
}

/// The store could not be reached: 503, with the store's error (never a secret).
fn unavailable(e: impl std::fmt::Display) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        e.to_string(),
    )
}

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": {"type": kind, "message": message.into()}})),
    )
        .into_response()
}

/// A JSON request body, or the 400 that says what is wrong with it.
#[expect(
    clippy::result_large_err,
    reason = "the error is the response itself, returned at once by every caller"
)]
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("invalid body: {e}"),
        )
    })
}

/// Write an admin record (action, actor, outcome) to the audit trail.
fn record(
    gw: &Gateway,
    action: &str,
    actor: &str,
    target: Option<&str>,
    outcome: &str,
    details: Value,
) {
    let mut fields = Map::new();
    fields.insert("action".into(), json!(action));
    fields.insert("actor".into(), json!(actor));
    fields.insert("target".into(), json!(target));
    fields.insert("outcome".into(), json!(outcome));
    fields.insert("details".into(), details);
    fields.insert("via".into(), json!("admin_api"));
    gw.audit.record(Draft {
        request_id: format!("act_{}", uuid::Uuid::now_v7().simple()),
        time: Utc::now(),
        key_id: None,
        team: None,
        fields,
        payloads: Vec::new(),
        response_payload: None,
    });
}

/// Authenticate the admin credential and check `permission`; a refusal is audited.
async fn authorize(
    gw: &Gateway,
    headers: &HeaderMap,
    permission: Permission,
    action: &str,
) -> Result<(AdminCredential, Role), Response> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        record(
            gw,
            action,
            "anonymous",
            None,
            "denied",
            json!({"reason": "no credential"}),
        );
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "admin API: send an admin credential as `Authorization: Bearer tg_admin_…`",
        ));
    };
    let cred = match gw
        .store
        .admins
        .admin_by_hash(&gw.auth.hasher().hash_text(token))
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "admin credential lookup failed");
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the store is unavailable",
            ));
        }
    };
    let Some(cred) = cred else {
        record(
            gw,
            action,
            "unknown",
            None,
            "denied",
            json!({"reason": "invalid credential"}),
        );
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "admin API: the credential is not valid (unknown or revoked); data-plane keys are not admin credentials",
        ));
    };
    let role = Role::parse(&cred.role).unwrap_or(Role::App);
    if !role.allows(permission) {
        record(
            gw,
            action,
            &cred.id,
            None,
            "denied",
            json!({"role": role.as_str(), "needs": permission}),
        );
        return Err(error(
            StatusCode::FORBIDDEN,
            "permission_error",
            format!(
                "role {} may not {action}; it needs the {} permission, held by the roles {}",
                role.as_str(),
                serde_json::to_value(permission)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                holders_of(permission)
            ),
        ));
    }
    Ok((cred, role))
}

/// The roles holding `p`, for refusals that say who may.
fn holders_of(p: Permission) -> String {
    let names = p.holders();
    if names.is_empty() {
        "none (no role may)".to_owned()
    } else {
        names.join(", ")
    }
}

async fn openapi() -> Response {
    let mut paths = Map::new();
    for e in ENDPOINTS {
        let path = paths.entry(e.path.to_owned()).or_insert_with(|| json!({}));
        let mut op = json!({
            "summary": e.summary,
            "x-tollgate-permission": e.permission,
            "x-tollgate-roles": Role::ALL.iter().filter(|r| r.allows(e.permission)).map(|r| r.as_str()).collect::<Vec<_>>(),
            "security": [{"adminCredential": []}],
            "responses": {
                "200": {"description": "OK"},
                "401": {"description": "No or invalid admin credential"},
                "403": {"description": "The credential's role lacks the permission"},
            },
        });
        let params: Vec<Value> = e
            .path
            .split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(name, _)| name))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        path[e.method.to_ascii_lowercase()] = op;
    }
    Json(json!({
        "openapi": "3.0.3",
        "info": {"title": "tollgate admin API", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"adminCredential": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }))
    .into_response()
}

async fn whoami(State(gw): State<AppState>, headers: HeaderMap) -> Response {
    match authorize(&gw, &headers, Permission::ReportsRead, "whoami").await {
        Ok((c, r)) => Json(json!({"id": c.id, "name": c.name, "role": r.as_str()})).into_response(),
        // Any valid credential may ask who it is, whatever its role.
        Err(resp) if resp.status() == StatusCode::FORBIDDEN => {
            let token = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            match gw
                .store
                .admins
                .admin_by_hash(&gw.auth.hasher().hash_text(token.trim()))
                .await
            {
                Ok(Some(c)) => {
                    Json(json!({"id": c.id, "name": c.name, "role": c.role})).into_response()
                }
                _ => resp,
            }
        }
        Err(resp) => resp,
    }
}

async fn providers(State(gw): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&gw, &headers, Permission::ModelsRead, "providers.list").await {
        return r;
    }
    let providers: Vec<Value> = gw
        .providers
        .values()
        .map(|p| json!({"name": p.name, "kind": format!("{:?}", p.kind).to_ascii_lowercase()}))
        .collect();
    let routes: Vec<Value> = gw
        .routes
        .values()
        .map(|r| json!({"alias": r.alias, "targets": r.targets.iter().map(|t| t.label.clone()).collect::<Vec<_>>()}))
        .collect();
    Json(json!({"providers": providers, "routes": routes})).into_response()
}

async fn audit_request(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (who, _) = or_respond!(authorize(&gw, &headers, Permission::AuditRead, "audit.show").await);
    let records = match gw.store.audit.records_by_ref(&id).await {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            );
        }
    };
    record(
        &gw,
        "audit.show",
        &who.id,
        Some(&id),
        if records.is_empty() {
            "not_found"
        } else {
            "ok"
        },
        json!({}),
    );
    if records.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("no audit record for {id}"),
        );
    }
    let list: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "instance": r.instance, "seq": r.seq, "hash": hex::encode(r.hash),
                "record": serde_json::from_str::<Value>(&r.body).unwrap_or(Value::Null),
            })
        })
        .collect();
    Json(json!({"records": list})).into_response()
}

/// Query of `GET /admin/v1/audit/verify`.
#[derive(Debug, Deserialize)]
struct VerifyQuery {}

async fn audit_verify(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Query(_q): Query<VerifyQuery>,
) -> Response {
    let (who, _) =
        or_respond!(authorize(&gw, &headers, Permission::AuditRead, "audit.verify").await);
    let report = tollgate_store::audit::verify::verify(
        gw.store.audit.as_ref(),
        Some(gw.audit.mac_key()),
        Some(&gw.audit.verifying_key()),
        &[],
    )
    .await;
    match report {
        Ok(rep) => {
            record(
                &gw,
                "audit.verify",
                &who.id,
                None,
                if rep.ok() { "ok" } else { "failed" },
                json!({}),
            );
            Json(json!({"ok": rep.ok(), "report": rep})).into_response()
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
    }
}

async fn audit_delete(State(gw): State<AppState>, headers: HeaderMap) -> Response {
    match authorize(&gw, &headers, Permission::AuditDelete, "audit.delete").await {
        Err(r) => r,
        // No role holds this permission; kept as an arm so the policy, not this code, decides.
        Ok(_) => error(
            StatusCode::FORBIDDEN,
            "permission_error",
            "audit records cannot be deleted",
        ),
    }
}

async fn roles(State(gw): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&gw, &headers, Permission::ReportsRead, "roles.list").await {
        return r;
    }
    let table: Vec<Value> = Role::ALL
        .iter()
        .map(|r| {
            json!({
                "role": r.as_str(),
                "permissions": Permission::ALL.iter().filter(|p| r.allows(**p)).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({"roles": table})).into_response()
}

async fn list_switches(State(gw): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&gw, &headers, Permission::KillSwitch, "killswitch.list").await {
        return r;
    }
    match gw.store.control.switches().await {
        Ok(list) => Json(json!({"switches": list})).into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
    }
}

/// Body of `POST /admin/v1/killswitches`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSwitch {
    kind: String,
    #[serde(default)]
    target: Option<String>,
    reason: String,
}

async fn set_switch(
    State(gw): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (who, _) =
        or_respond!(authorize(&gw, &headers, Permission::KillSwitch, "killswitch.set").await);
    let req: NewSwitch = or_respond!(parse_body(&body));
    let Some(kind) = tollgate_store::control::SwitchKind::parse(&req.kind) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "kind must be key, team, route, provider, model or lockdown",
        );
    };
    let target = match (kind, req.target) {
        (tollgate_store::control::SwitchKind::Lockdown, _) => "*".to_owned(),
        (_, Some(t)) if !t.trim().is_empty() && t.len() <= 200 => t,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "target is required (1-200 characters)",
            );
        }
    };
    let sw = tollgate_store::control::KillSwitch {
        kind,
        target: target.clone(),
        reason: req.reason.chars().take(500).collect(),
        set_by: who.id.clone(),
        set_at: tollgate_store::now(),
        expires_at: None,
    };
    if let Err(e) = gw.store.control.set_switch(&sw).await {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        );
    }
    crate::refresh_switches(&gw).await;
    record(
        &gw,
        "killswitch.set",
        &who.id,
        Some(&format!("{}:{target}", kind.as_str())),
        "ok",
        json!({"reason": sw.reason}),
    );
    tracing::warn!(target: "tollgate::alert", kind = kind.as_str(), target = %target, by = %who.id, "kill switch on");
    (StatusCode::CREATED, Json(json!({"switch": sw}))).into_response()
}

async fn clear_switch(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path((kind, target)): Path<(String, String)>,
) -> Response {
    let (who, _) =
        or_respond!(authorize(&gw, &headers, Permission::KillSwitch, "killswitch.clear").await);
    let Some(k) = tollgate_store::control::SwitchKind::parse(&kind) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("no kill switch kind {kind:?}"),
        );
    };
    match gw.store.control.clear_switch(k, &target).await {
        Ok(true) => {
            crate::refresh_switches(&gw).await;
            record(
                &gw,
                "killswitch.clear",
                &who.id,
                Some(&format!("{kind}:{target}")),
                "ok",
                json!({}),
            );
            Json(json!({"cleared": true})).into_response()
        }
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("no {kind} switch on {target}"),
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
    }
}

/// Whether `method` is one this API serves at all (for the matrix test's request builder).
pub fn method_of(e: &Endpoint) -> Method {
    Method::from_bytes(e.method.as_bytes()).unwrap_or(Method::GET)
}
