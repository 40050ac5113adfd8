//! Audit export on the admin API (DP-2, AuditRead): records in a time window, a page at a
//! time, in the shape `tollgate audit export` prints, so the CLI pointed at a gateway
//! (`--gateway URL`) writes the same JSON lines as it does from the store. Every export is
//! itself audited.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::rbac::Permission;
use super::{AppState, authorize, error, record};

/// Records per page unless `limit` asks for fewer.
pub const EXPORT_PAGE: u32 = 1_000;

/// The routes of this module (merged into the admin router).
pub(super) fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/admin/v1/audit/export", get(export))
}

/// Query of `GET /admin/v1/audit/export`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    /// Start, RFC 3339 (default: the beginning).
    since: Option<String>,
    /// End, exclusive, RFC 3339 (default: now).
    until: Option<String>,
    /// Cursor from the previous page's `next`.
    after: Option<String>,
    /// Page size, 1 to [`EXPORT_PAGE`].
    limit: Option<u32>,
}

fn bad(msg: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", msg)
}

fn time(s: Option<&str>, default: DateTime<Utc>, what: &str) -> Result<DateTime<Utc>, String> {
    match s {
        None => Ok(default),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| format!("{what} must be an RFC 3339 time like 2026-11-01T00:00:00Z")),
    }
}

/// A cursor is `TIME_MS.SEQ.INSTANCE` (the instance last: it is the only free-form part).
fn parse_cursor(s: &str) -> Option<(i64, String, u64)> {
    let mut it = s.splitn(3, '.');
    let ms = it.next()?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    let instance = it.next()?.to_owned();
    Some((ms, instance, seq))
}

async fn export(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ExportQuery>,
) -> Response {
    let (who, _) =
        or_respond!(authorize(&gw, &headers, Permission::AuditRead, "audit.export").await);
    let now = Utc::now();
    let since = match time(q.since.as_deref(), DateTime::<Utc>::UNIX_EPOCH, "since") {
        Ok(t) => t,
        Err(m) => return bad(m),
    };
    let until = match time(
        q.until.as_deref(),
        now + chrono::Duration::seconds(1),
        "until",
    ) {
        Ok(t) => t,
        Err(m) => return bad(m),
    };
    let after = match q.after.as_deref().map(parse_cursor) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => return bad("after must be a cursor returned as `next`"),
    };
    let limit = match q.limit {
        None => EXPORT_PAGE,
        Some(n) if (1..=EXPORT_PAGE).contains(&n) => n,
        Some(_) => return bad(format!("limit must be 1 to {EXPORT_PAGE}")),
    };
    // The first page of an export is what is audited: one record per export, not per page.
    if after.is_none() {
        record(
            &gw,
            "audit.export",
            &who.id,
            None,
            "ok",
            json!({"since": since, "until": until}),
        );
    }
    let page = match gw
        .store
        .audit
        .records_between(since, until, after, limit)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            );
        }
    };
    let next = (page.len() == limit as usize)
        .then(|| page.last())
        .flatten()
        .map(|r| format!("{}.{}.{}", r.time.timestamp_millis(), r.seq, r.instance));
    let records: Vec<Value> = page
        .iter()
        .map(|r| {
            json!({
                "instance": r.instance,
                "seq": r.seq,
                "time": r.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "kind": r.kind,
                "ref_id": r.ref_id,
                "prev_hash": hex::encode(r.prev_hash),
                "hash": hex::encode(r.hash),
                "record": serde_json::from_str::<Value>(&r.body).unwrap_or(Value::String(r.body.clone())),
            })
        })
        .collect();
    Json(json!({"records": records, "next": next})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_with_dots_in_the_instance() {
        assert_eq!(
            parse_cursor("1700000000000.42.gw.eu-1"),
            Some((1_700_000_000_000, "gw.eu-1".to_owned(), 42))
        );
        assert_eq!(parse_cursor("x.1.gw"), None);
        assert_eq!(parse_cursor("1.2"), None);
    }
}
