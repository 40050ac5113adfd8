//! Admission stages of the pipeline: request caps, rate limits (local or shared through
//! Redis), budget reservations, and the abuse counting that suspends a key which keeps
//! being refused.

use super::*;
/// A key that keeps tripping guards or asking for what it may not have is suspended (DO-1).
/// With shared limits the events are counted in Redis across every instance; the one event
/// that reaches the threshold suspends the key as an expiring kill switch in the shared
/// store (so every instance refuses it within a second, [`crate::killswitch`]), raises one
/// alert and is audited.
pub(super) fn count_abuse(gw: &AppState, ctx: &RequestContext, err: &GatewayError) {
    let Some(key_id) = ctx.key_id.clone() else {
        return;
    };
    let a = gw.config.limits.abuse;
    let (kind, threshold) = match err.kind {
        crate::error::ErrorKind::Blocked(_) => ("guard_block", a.guard_blocks),
        crate::error::ErrorKind::Forbidden => ("denial", a.denials),
        _ => return,
    };
    if threshold == 0 {
        return;
    }
    let team = ctx.team.clone();
    if !gw.rate_limiter.shares_abuse() {
        // This instance's count decides at once, so the very next request is refused.
        if gw.limiter.abuse(
            &key_id,
            kind,
            threshold,
            a.window.0,
            a.suspend_for.0,
            tokio::time::Instant::now(),
        ) {
            suspend(gw, key_id, team, kind, threshold);
        }
        return;
    }
    let gw = gw.clone();
    tokio::spawn(async move {
        if gw
            .rate_limiter
            .abuse(&key_id, kind, threshold, a.window.0, a.suspend_for.0)
            .await
        {
            gw.limiter
                .suspend(&key_id, tokio::time::Instant::now() + a.suspend_for.0);
            suspend(&gw, key_id, team, kind, threshold);
        }
    });
}

/// Suspend `key_id` on every instance (an expiring kill switch in the shared store, written
/// in the background), alert and audit; this instance already refuses it.
fn suspend(
    gw: &AppState,
    key_id: String,
    team: Option<String>,
    kind: &'static str,
    threshold: u32,
) {
    let a = gw.config.limits.abuse;
    let secs = a.suspend_for.0.as_secs();
    let now = tollgate_store::now();
    let until = chrono::Duration::from_std(a.suspend_for.0)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    gw.alerts.raise(crate::alert::Alert {
        kind: "key_suspended",
        severity: crate::alert::Severity::Critical,
        subject: format!("key:{key_id}"),
        dedup_key: format!("key_suspended:{key_id}"),
        message: format!(
            "key {key_id} suspended automatically for {secs}s after {threshold} {kind}s; lift it early with `tollgate unkill key {key_id}`"
        ),
        details: json!({"key_id": key_id, "reason": kind, "threshold": threshold, "seconds": secs, "until": until.to_rfc3339()}),
    });
    let mut fields = serde_json::Map::new();
    fields.insert("action".into(), json!("keys.suspend"));
    fields.insert("actor".into(), json!("abuse-detector"));
    fields.insert("target".into(), json!(key_id));
    fields.insert("outcome".into(), json!("ok"));
    fields.insert(
        "details".into(),
        json!({"reason": kind, "threshold": threshold, "seconds": secs, "until": until.to_rfc3339()}),
    );
    gw.audit.record(crate::audit::Draft {
        request_id: format!("act_{}", uuid::Uuid::now_v7().simple()),
        time: chrono::Utc::now(),
        key_id: Some(key_id.clone()),
        team,
        fields,
        payloads: Vec::new(),
        response_payload: None,
    });
    let switch = tollgate_store::control::KillSwitch {
        kind: tollgate_store::control::SwitchKind::Key,
        target: key_id,
        reason: format!("suspended automatically after {threshold} {kind}s"),
        set_by: "abuse-detector".into(),
        set_at: now,
        expires_at: Some(until),
    };
    let gw = gw.clone();
    tokio::spawn(async move {
        match gw.store.control.set_switch(&switch).await {
            Ok(()) => {
                gw.limiter.suspension_stored(&switch.target);
                crate::refresh_switches(&gw).await;
            }
            // Still suspended here; the other instances count on until they suspend it too.
            Err(e) => tracing::error!(
                target: "tollgate::alert",
                error = %e,
                key_id = %switch.target,
                "cannot store a suspension: it holds on this instance only"
            ),
        }
    });
}

/// Tokens reserved for the answer when a request names no `max_tokens`.
pub const DEFAULT_RESERVED_OUTPUT_TOKENS: u64 = 1_024;

/// The admission stages in their order: the route's request caps, then limits, then
/// budgets. `body` is the parsed request and its length in bytes; `prompt_tokens` estimates
/// the input (computed only when a token limit or a budget needs it) and `max_out` is the
/// most the answer may take.
pub(super) async fn admit(
    gw: &AppState,
    ctx: &mut RequestContext,
    key: &KeyRecord,
    route: &Route,
    body: (&serde_json::Map<String, Value>, usize),
    prompt_tokens: impl Fn() -> u64,
    max_out: u64,
) -> Result<(), GatewayError> {
    check_caps(&route.limits.caps, body.0, body.1)?;
    limit(gw, ctx, key, route, || prompt_tokens() + max_out).await?;
    budget(gw, ctx, key, route, prompt_tokens, max_out).await
}

/// Stage: request-shape caps of the route (DO-1).
pub(super) fn check_caps(
    caps: &crate::config::limits::Caps,
    body: &serde_json::Map<String, Value>,
    body_len: usize,
) -> Result<(), GatewayError> {
    if let Some(max) = caps.max_body_bytes {
        if body_len > max {
            return Err(GatewayError::too_large(max));
        }
    }
    if let Some(max) = caps.max_messages {
        let n = body
            .get("messages")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if n > max {
            return Err(GatewayError::bad_request(format!(
                "{n} messages is more than this route allows ({max}); shorten the conversation"
            )));
        }
    }
    if let Some(max) = caps.max_n {
        if let Some(n) = body.get("n").and_then(Value::as_u64).filter(|n| *n > max) {
            return Err(GatewayError::bad_request(format!(
                "`n` = {n} is more than this route allows ({max})"
            )));
        }
    }
    if let Some(max) = caps.max_tokens {
        for field in ["max_tokens", "max_completion_tokens"] {
            if let Some(n) = body.get(field).and_then(Value::as_u64).filter(|n| *n > max) {
                return Err(GatewayError::bad_request(format!(
                    "`{field}` = {n} is more than this route allows ({max})"
                )));
            }
        }
    }
    Ok(())
}

/// Stage: limits (DO-1). A suspended key is refused; then requests, tokens (prompt estimate
/// plus the answer's `max_tokens`, reserved now and settled at the end) and concurrency per
/// key, team, client IP and route. With shared (Redis) limits and a budget that applies,
/// the admission is left to the budgets stage, which makes it in the same round trip as the
/// reservation; the two stages always run one after the other.
pub(super) async fn limit(
    gw: &AppState,
    ctx: &mut RequestContext,
    key: &KeyRecord,
    route: &Route,
    tokens: impl FnOnce() -> u64,
) -> Result<(), GatewayError> {
    use crate::limits::{Scope, Subject};
    gw.switches.check(
        &key.id,
        key.team.as_deref(),
        &route.alias,
        &gw.config.incident.break_glass_keys,
    )?;
    let now = tokio::time::Instant::now();
    if let Some(until) = gw.limiter.suspended(&key.id, now) {
        return Err(GatewayError::suspended(format!(
            "key {} is suspended for {}s after repeated guard blocks or denials; an admin can review its audit records",
            key.id,
            until.saturating_duration_since(now).as_secs()
        )));
    }
    let l = &gw.config.limits;
    let mut subjects = vec![Subject {
        scope: Scope::Key,
        id: key.id.clone(),
        rule: route.limits.key,
    }];
    if let Some(team) = &key.team {
        subjects.push(Subject {
            scope: Scope::Team,
            id: team.clone(),
            rule: l.team,
        });
    }
    if let Some(ip) = crate::audit::client_ip() {
        subjects.push(Subject {
            scope: Scope::Ip,
            id: ip.to_string(),
            rule: l.ip,
        });
    }
    subjects.push(Subject {
        scope: Scope::Route,
        id: route.alias.clone(),
        rule: route.limits.route,
    });
    if subjects.iter().all(|s| s.rule.is_empty()) {
        return Ok(());
    }
    let reserve = if subjects.iter().any(|s| s.rule.tpm.is_some()) {
        tokens()
    } else {
        0
    };
    // Shared limits and a budget too: the budgets stage admits and reserves in one round
    // trip to Redis (crate::budget::Budgets::reserve_and_admit).
    if gw.rate_limiter.shared().is_some() && gw.budgets.applies(&key.id, key.team.as_deref()) {
        ctx.deferred_admission = Some((subjects, reserve));
        return Ok(());
    }
    match gw.rate_limiter.admit(&subjects, reserve, now).await {
        Ok(a) => {
            crate::audit::set_headroom(a.headroom);
            ctx.admission = Some(a);
            Ok(())
        }
        Err(e) => Err(limit_error(gw, e)),
    }
}

/// A rate limit's refusal (429 with Retry-After) or unavailability (503) as the answer.
fn limit_error(gw: &AppState, e: crate::limits::LimitError) -> GatewayError {
    match e {
        crate::limits::LimitError::Unavailable(why) => {
            let mut e = GatewayError::unavailable(why);
            e.fault = crate::error::Fault::Internal;
            e
        }
        crate::limits::LimitError::Refused(r) => {
            gw.metrics.rate_limited(r.scope.as_str(), r.limit);
            GatewayError::rate_limited(
                format!(
                    "{r}; retry in {}s",
                    r.retry_after.as_secs_f64().ceil().max(1.0)
                ),
                r.retry_after,
            )
        }
    }
}

/// Stage: budgets (DO-2). Reserve the call's largest possible cost — `tokens_in` plus
/// `tokens_out` priced at the dearest of the route's targets — in every budget of the key,
/// its team and the gateway; refused with 429 `budget_exceeded` when one has no room
/// ([`crate::budget`]). The reservation is settled with the actual cost on finish. Makes
/// the rate admission the limits stage deferred too (`ctx.deferred_admission`), all or
/// nothing in one round trip ([`crate::budget::Budgets::reserve_and_admit`]).
pub(super) async fn budget(
    gw: &AppState,
    ctx: &mut RequestContext,
    key: &KeyRecord,
    route: &Route,
    tokens_in: impl FnOnce() -> u64,
    tokens_out: u64,
) -> Result<(), GatewayError> {
    if !gw.budgets.applies(&key.id, key.team.as_deref()) {
        return Ok(());
    }
    let input = tokens_in();
    let max = route
        .targets
        .iter()
        .filter_map(|t| gw.prices.cost(&t.model, input, 0, tokens_out))
        .reduce(f64::max);
    if let (Some((subjects, tokens)), Some(limiter)) =
        (ctx.deferred_admission.take(), gw.rate_limiter.shared())
    {
        use crate::budget::AdmitError;
        return match gw
            .budgets
            .reserve_and_admit(
                &key.id,
                key.team.as_deref(),
                max,
                limiter,
                &subjects,
                tokens,
            )
            .await
        {
            Ok((hold, a)) => {
                crate::audit::set_headroom(a.headroom);
                ctx.admission = Some(a);
                ctx.budget = hold;
                Ok(())
            }
            Err(AdmitError::Budget(e)) => Err(e),
            Err(AdmitError::Rate(e)) => Err(limit_error(gw, e)),
        };
    }
    ctx.budget = gw
        .budgets
        .reserve(&key.id, key.team.as_deref(), max)
        .await?;
    Ok(())
}
