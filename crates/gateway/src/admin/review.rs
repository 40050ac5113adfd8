//! The review queue and drift on the admin API (MI-4).
//!
//! - `GET /admin/v1/review` lists sampled interactions (ReportsRead: owner, admin, approver,
//!   data-steward, auditor). The items are PII-masked, but they are still users' words, so
//!   reading them is a reporting permission, not something every admin role has.
//! - `POST /admin/v1/review/{id}/label` records a verdict (ReviewLabel: owner, admin,
//!   approver; see [`Permission::ReviewLabel`] for why not the prompt engineer). The store
//!   keeps the reviewer's name and the credential that recorded it; the audit trail keeps
//!   every label, a later one included.
//! - `GET /admin/v1/drift/{id}` is `tollgate drift ROUTE`: the daily series and the PSI
//!   score against the baseline (ReportsRead).
//!
//! The queue page, the label's limits and the drift report are computed by the same
//! functions the CLI calls on the store ([`crate::review`], [`crate::drift`]).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tollgate_store::review::{Labelling, MAX_REVIEW_PAGE, ReviewLabel, ReviewQuery};

use super::rbac::Permission;
use super::{AppState, authorize, error, parse_body, record};
use crate::config::sampling::MAX_WINDOW_DAYS;

/// Items per page unless `limit` says otherwise.
pub const DEFAULT_PAGE: u32 = 50;

/// The routes of this module (merged into the admin router).
pub(super) fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/admin/v1/review", get(list))
        .route("/admin/v1/review/{id}/label", post(label))
        .route("/admin/v1/drift/{id}", get(drift))
}

fn bad(msg: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", msg)
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        e.to_string(),
    )
}

/// Query of `GET /admin/v1/review`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only this route.
    route: Option<String>,
    /// Labelled items too.
    #[serde(default)]
    all: bool,
    /// At most this many (1 to [`MAX_REVIEW_PAGE`]).
    limit: Option<u32>,
}

async fn list(
    State(gw): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let (who, _) =
        or_respond!(authorize(&gw, &headers, Permission::ReportsRead, "review.list").await);
    let Ok(Query(q)) = q else {
        return bad("query: route (a route alias), all (true or false), limit (a number)");
    };
    let limit = match q.limit {
        None => DEFAULT_PAGE,
        Some(n) if (1..=MAX_REVIEW_PAGE).contains(&n) => n,
        Some(_) => return bad(format!("limit must be 1 to {MAX_REVIEW_PAGE}")),
    };
    let query = ReviewQuery {
        route: q.route,
        pending_only: !q.all,
        limit,
    };
    match crate::review::queue_page(&gw.store, &gw.config, &query).await {
        Ok(page) => {
            record(
                &gw,
                "review.list",
                &who.id,
                query.route.as_deref(),
                "ok",
                json!({"items": page.items.len(), "all": q.all}),
            );
            Json(page).into_response()
        }
        Err(e) => unavailable(e),
    }
}

/// Body of `POST /admin/v1/review/{id}/label`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelBody {
    /// good, wrong, harmful, refused or hallucinated.
    label: String,
    /// Who reviewed it (default: the credential's name).
    reviewer: Option<String>,
    /// A note for whoever reads the label later.
    note: Option<String>,
}

async fn label(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (who, _) =
        or_respond!(authorize(&gw, &headers, Permission::ReviewLabel, "review.label").await);
    let req: LabelBody = or_respond!(parse_body(&body));
    let Some(verdict) = ReviewLabel::parse(&req.label) else {
        return bad(format!(
            "unknown label {:?}: use good, wrong, harmful, refused or hallucinated",
            req.label
        ));
    };
    if let Some(why) =
        crate::review::labelling_problem(req.reviewer.as_deref(), req.note.as_deref())
    {
        return bad(why);
    }
    let reviewer = req
        .reviewer
        .as_deref()
        .map_or_else(|| who.name.clone(), |r| r.trim().to_owned());
    let found = match gw
        .store
        .reviews
        .label_review(
            &id,
            &Labelling {
                label: verdict,
                reviewer: &reviewer,
                labelled_by: &who.id,
                note: req.note.as_deref(),
                at: tollgate_store::now(),
            },
        )
        .await
    {
        Ok(f) => f,
        Err(e) => return unavailable(e),
    };
    record(
        &gw,
        "review.label",
        &who.id,
        Some(&id),
        if found { "ok" } else { "not_found" },
        json!({"label": verdict.as_str(), "reviewer": reviewer, "note": req.note.is_some()}),
    );
    if !found {
        return error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("no review item {id}"),
        );
    }
    match gw.store.reviews.review_item(&id).await {
        Ok(Some(item)) => Json(json!({"item": item})).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("no review item {id}"),
        ),
        Err(e) => unavailable(e),
    }
}

/// Query of `GET /admin/v1/drift/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DriftQuery {
    /// Days in the recent window, today included (default `[review.drift] recent_days`).
    days: Option<u32>,
    /// Days in the baseline before it (default `[review.drift] baseline_days`).
    baseline_days: Option<u32>,
}

async fn drift(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(route): Path<String>,
    q: Result<Query<DriftQuery>, QueryRejection>,
) -> Response {
    let (who, _) =
        or_respond!(authorize(&gw, &headers, Permission::ReportsRead, "drift.show").await);
    let Ok(Query(q)) = q else {
        return bad("query: days and baseline_days are numbers of days");
    };
    let mut cfg = gw.config.review.drift;
    for (name, v, slot) in [
        ("days", q.days, &mut cfg.recent_days),
        ("baseline_days", q.baseline_days, &mut cfg.baseline_days),
    ] {
        match v {
            None => {}
            Some(d) if (1..=MAX_WINDOW_DAYS).contains(&d) => *slot = d,
            Some(_) => return bad(format!("{name}: give 1 to {MAX_WINDOW_DAYS} days")),
        }
    }
    let today = chrono::Utc::now().date_naive();
    let report = match crate::drift::report(&gw.store, &route, today, &cfg).await {
        Ok(r) => r,
        Err(e) => return unavailable(e),
    };
    if !gw.config.routes.contains_key(&route) && report.series.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("route {route:?} is not in the config and has no statistics"),
        );
    }
    record(
        &gw,
        "drift.show",
        &who.id,
        Some(&route),
        if report.drifted { "drifted" } else { "ok" },
        json!({"score": report.score}),
    );
    Json(report).into_response()
}
