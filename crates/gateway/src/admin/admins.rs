//! Admin credentials over the admin API (AC-3): issue one bound to a role, list them, revoke
//! one. Only an owner makes or revokes an owner, and the store never lets the last active
//! owner go, so the admin plane cannot be locked out of itself.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use tollgate_store::{AdminCredential, AdminEntry, AdminRevocation, OWNER_ROLE};

use super::rbac::{Permission, Role};
use super::{AppState, authorize, error, parse_body, record, unavailable};

/// Longest name of an admin credential's holder.
pub const MAX_ADMIN_NAME_BYTES: usize = 200;

/// The routes of this module (merged into the admin router).
pub(super) fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/admin/v1/admins", get(list_admins).post(create_admin))
        .route("/admin/v1/admins/{id}/revoke", post(revoke_admin))
}

/// Body of `POST /admin/v1/admins`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAdmin {
    name: String,
    role: String,
}

async fn create_admin(
    State(gw): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (who, who_role) =
        or_respond!(authorize(&gw, &headers, Permission::AdminsManage, "admins.create").await);
    let req: NewAdmin = or_respond!(parse_body(&body));
    let name = req.name.trim();
    if name.is_empty() || name.len() > MAX_ADMIN_NAME_BYTES {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("name must be 1 to {MAX_ADMIN_NAME_BYTES} bytes: whose credential this is"),
        );
    }
    let Some(role) = Role::parse(&req.role).filter(|r| *r != Role::App) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "role must be one of owner, admin, model-admin, prompt-engineer, approver, data-steward, auditor, incident-responder",
        );
    };
    // Only an owner makes owners: an admin cannot raise anyone above itself.
    if role == Role::Owner && who_role != Role::Owner {
        record(
            &gw,
            "admins.create",
            &who.id,
            None,
            "denied",
            json!({"role": "owner"}),
        );
        return error(
            StatusCode::FORBIDDEN,
            "permission_error",
            "only an owner may create an owner",
        );
    }
    let secret = tollgate_store::key::new_admin_credential();
    let cred = AdminCredential {
        id: format!("adm_{}", tollgate_store::key::random_base62(16)),
        hash: gw
            .auth
            .hasher()
            .hash_text(secrecy::ExposeSecret::expose_secret(&secret)),
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        created_at: tollgate_store::now(),
    };
    if let Err(e) = gw.store.admins.insert_admin(&cred).await {
        return unavailable(e);
    }
    record(
        &gw,
        "admins.create",
        &who.id,
        Some(&cred.id),
        "ok",
        json!({"role": role.as_str()}),
    );
    (
        StatusCode::CREATED,
        Json(json!({
            "id": cred.id,
            "role": role.as_str(),
            "credential": secrecy::ExposeSecret::expose_secret(&secret),
            "note": "the credential is shown only this once",
        })),
    )
        .into_response()
}

/// `GET /admin/v1/admins`: every admin credential with its role and state, never its hash.
async fn list_admins(State(gw): State<AppState>, headers: HeaderMap) -> Response {
    let (who, _) =
        or_respond!(authorize(&gw, &headers, Permission::AdminsManage, "admins.list").await);
    match gw.store.admins.list_admins().await {
        Ok(list) => {
            record(
                &gw,
                "admins.list",
                &who.id,
                None,
                "ok",
                json!({"count": list.len()}),
            );
            let admins: Vec<_> = list.iter().map(AdminEntry::to_json).collect();
            Json(json!({"admins": admins})).into_response()
        }
        Err(e) => unavailable(e),
    }
}

/// `POST /admin/v1/admins/{id}/revoke`: the credential stops working at once (every admin
/// call looks it up in the store).
async fn revoke_admin(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (who, who_role) =
        or_respond!(authorize(&gw, &headers, Permission::AdminsManage, "admins.revoke").await);
    let target_role = match gw.store.admins.list_admins().await {
        Ok(list) => list.into_iter().find(|a| a.id == id).map(|a| a.role),
        Err(e) => return unavailable(e),
    };
    // As with creating: an admin cannot remove those above it.
    if target_role.as_deref() == Some(OWNER_ROLE) && who_role != Role::Owner {
        record(
            &gw,
            "admins.revoke",
            &who.id,
            Some(&id),
            "denied",
            json!({"role": OWNER_ROLE}),
        );
        return error(
            StatusCode::FORBIDDEN,
            "permission_error",
            "only an owner may revoke an owner",
        );
    }
    let outcome = match gw.store.admins.revoke_admin(&id, Utc::now()).await {
        Ok(o) => o,
        Err(e) => return unavailable(e),
    };
    let refused = |status, kind, message: String, why: &str| {
        record(
            &gw,
            "admins.revoke",
            &who.id,
            Some(&id),
            "refused",
            json!({"reason": why}),
        );
        error(status, kind, message)
    };
    match outcome {
        AdminRevocation::Revoked => {
            record(
                &gw,
                "admins.revoke",
                &who.id,
                Some(&id),
                "ok",
                json!({"role": target_role}),
            );
            Json(json!({"id": id, "revoked": true})).into_response()
        }
        AdminRevocation::NotFound => refused(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("no admin credential {id}"),
            "not found",
        ),
        AdminRevocation::AlreadyRevoked => refused(
            StatusCode::CONFLICT,
            "conflict_error",
            format!("admin credential {id} is already revoked"),
            "already revoked",
        ),
        AdminRevocation::LastOwner => refused(
            StatusCode::CONFLICT,
            "conflict_error",
            format!(
                "{id} is the last active owner credential: create another owner first, or nobody could administer owners again"
            ),
            "last owner",
        ),
    }
}
