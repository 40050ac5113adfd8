//! Virtual keys on the admin API (AC-2, AC-4): list, show and audit against the rotation
//! policy (KeysRead); create, revoke and rotate (KeysWrite). A key bound to the `data-steward` role may also be created only by a
//! role that manages datasets. The key text is returned once, at creation or rotation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_store::key::{Environment, KeyRecord, KeyState, VirtualKey};

use super::rbac::Permission;
use super::{AppState, authorize, error, parse_body, record, unavailable};

/// Grace period of a rotation unless the body names one.
pub const DEFAULT_ROTATION_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Longest grace period a rotation may give the old key.
pub const MAX_ROTATION_GRACE: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// The routes of this module (merged into the admin router).
pub(super) fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/admin/v1/keys", get(list_keys).post(create_key))
        .route("/admin/v1/keys/audit", get(audit_keys))
        .route("/admin/v1/keys/{id}", get(show_key))
        .route("/admin/v1/keys/{id}/revoke", post(revoke_key))
        .route("/admin/v1/keys/{id}/rotate", post(rotate_key))
}

pub(super) fn key_json(k: &KeyRecord) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "prefix": k.display_prefix,
        "owner": k.owner,
        "team": k.team,
        "environment": k.environment.as_str(),
        "models": k.allowed_models,
        "data_class": k.data_class,
        "role": k.role.as_deref().unwrap_or("app"),
        "created_at": k.created_at,
        "expires_at": k.expires_at,
        "revoked_at": k.revoked_at,
        "last_used_at": k.last_used_at,
        "state": format!("{:?}", k.state(Utc::now())).to_ascii_lowercase(),
    })
}

async fn list_keys(State(gw): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&gw, &headers, Permission::KeysRead, "keys.list").await {
        return r;
    }
    match gw.store.keys.list_keys().await {
        Ok(keys) => {
            Json(json!({"keys": keys.iter().map(key_json).collect::<Vec<_>>()})).into_response()
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
    }
}

/// Body of `POST /admin/v1/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    owner: Option<String>,
    team: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    models: Option<Vec<String>>,
    expires_in_days: Option<u32>,
    /// Data-plane role: `app` (default) or `data-steward` (fine-tuning files and jobs).
    #[serde(default)]
    role: Option<String>,
    /// Class of the data the key's requests carry (DP-4); default: the route's.
    #[serde(default)]
    data_class: Option<String>,
}

async fn create_key(
    State(gw): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (who, who_role) =
        or_respond!(authorize(&gw, &headers, Permission::KeysWrite, "keys.create").await);
    let req: NewKey = or_respond!(parse_body(&body));
    if req.name.trim().is_empty() || req.name.len() > 200 {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "name must be 1-200 characters",
        );
    }
    let env = match req.environment.as_deref().map(Environment::parse) {
        None => Environment::Production,
        Some(Some(e)) => e,
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "environment must be production or staging",
            );
        }
    };
    let role = match req.role.as_deref() {
        None | Some("app") => None,
        Some(crate::datasets::STEWARD_ROLE) => Some(crate::datasets::STEWARD_ROLE.to_owned()),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "role must be app or data-steward",
            );
        }
    };
    // A key that may ship training data out is a dataset decision, not only a key one.
    if role.is_some() && !who_role.allows(Permission::DataManage) {
        record(
            &gw,
            "keys.create",
            &who.id,
            None,
            "denied",
            json!({"role": who_role.as_str(), "key_role": crate::datasets::STEWARD_ROLE, "needs": Permission::DataManage}),
        );
        return error(
            StatusCode::FORBIDDEN,
            "permission_error",
            format!(
                "role {} may not create a data-steward key; it needs the data_manage permission as well as keys_write",
                who_role.as_str()
            ),
        );
    }
    let data_class = match req.data_class.as_deref().map(str::parse) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            let e: tollgate_store::class::UnknownDataClass = e;
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                e.to_string(),
            );
        }
    };
    let key = VirtualKey::generate(env);
    let mut rec = KeyRecord::new(&key, gw.auth.hasher().hash(&key), req.name);
    rec.role = role;
    rec.data_class = data_class;
    rec.owner = req.owner;
    rec.team = req.team;
    rec.allowed_models = req.models.unwrap_or_else(|| vec!["*".to_owned()]);
    rec.expires_at = req
        .expires_in_days
        .map(|d| Utc::now() + chrono::Duration::days(i64::from(d)));
    if let Err(e) = gw.store.keys.insert_key(&rec).await {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        );
    }
    record(
        &gw,
        "keys.create",
        &who.id,
        Some(&rec.id),
        "ok",
        json!({"team": rec.team, "environment": env.as_str(), "role": rec.role}),
    );
    (
        StatusCode::CREATED,
        Json(json!({"key": key.expose(), "record": key_json(&rec), "note": "the key is shown only this once"})),
    )
        .into_response()
}

async fn revoke_key(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (who, _) =
        or_respond!(authorize(&gw, &headers, Permission::KeysWrite, "keys.revoke").await);
    match gw.store.keys.revoke_key(&id, Utc::now()).await {
        Ok(true) => {
            record(&gw, "keys.revoke", &who.id, Some(&id), "ok", json!({}));
            Json(json!({"id": id, "revoked": true})).into_response()
        }
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("no key {id}"),
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
    }
}

/// `tollgate keys audit` over the API: every key under a `[rotation]` policy with its age
/// against it. Key ids are `key_…`, so the static `audit` segment never hides a key.
async fn audit_keys(State(gw): State<AppState>, headers: HeaderMap) -> Response {
    let (who, _) = or_respond!(authorize(&gw, &headers, Permission::KeysRead, "keys.audit").await);
    match crate::rotation::audit_keys(&gw.store, gw.config.rotation.as_ref(), Utc::now()).await {
        Ok(report) => {
            record(
                &gw,
                "keys.audit",
                &who.id,
                None,
                if report.policy && report.due == 0 {
                    "ok"
                } else {
                    "findings"
                },
                json!({"policy": report.policy, "due": report.due, "checked": report.keys.len()}),
            );
            Json(report).into_response()
        }
        Err(e) => unavailable(e),
    }
}

async fn show_key(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = authorize(&gw, &headers, Permission::KeysRead, "keys.show").await {
        return r;
    }
    match gw.store.keys.key_by_id(&id).await {
        Ok(Some(k)) => Json(json!({"key": key_json(&k)})).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("no key {id}"),
        ),
        Err(e) => unavailable(e),
    }
}

/// Body of `POST /admin/v1/keys/{id}/rotate` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// How long the old key stays valid, e.g. `24h` (default 24 h, at most 30 days).
    grace: Option<String>,
}

async fn rotate_key(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (who, _) =
        or_respond!(authorize(&gw, &headers, Permission::KeysWrite, "keys.rotate").await);
    let req: Rotate = if body.is_empty() {
        Rotate::default()
    } else {
        or_respond!(parse_body(&body))
    };
    let grace = match req.grace.as_deref().map(humantime::parse_duration) {
        None => DEFAULT_ROTATION_GRACE,
        Some(Ok(d)) if d <= MAX_ROTATION_GRACE => d,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "grace is a duration like 24h, at most 30 days",
            );
        }
    };
    let old = match gw.store.keys.key_by_id(&id).await {
        Ok(Some(k)) => k,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found_error",
                format!("no key {id}"),
            );
        }
        Err(e) => return unavailable(e),
    };
    if old.state(Utc::now()) != KeyState::Active {
        return error(
            StatusCode::CONFLICT,
            "invalid_request_error",
            format!("key {id} is not active and cannot be rotated; create a new key instead"),
        );
    }
    let (key, rec) = old.successor(gw.auth.hasher());
    let until = tollgate_store::now()
        + chrono::Duration::from_std(grace).unwrap_or_else(|_| chrono::Duration::hours(24));
    if let Err(e) = gw.store.keys.insert_key(&rec).await {
        return unavailable(e);
    }
    if let Err(e) = gw.store.keys.mark_rotated(&old.id, &rec.id, until).await {
        return unavailable(e);
    }
    record(
        &gw,
        "keys.rotate",
        &who.id,
        Some(&old.id),
        "ok",
        json!({"new": rec.id, "old_valid_until": until}),
    );
    (
        StatusCode::CREATED,
        Json(json!({
            "key": key.expose(), "record": key_json(&rec),
            "old": {"id": old.id, "valid_until": until},
            "note": "the key is shown only this once",
        })),
    )
        .into_response()
}
