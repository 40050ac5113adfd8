//! The Redis side of [`Budgets`]: reservations in Redis (alone, or together with the rate
//! admission in one round trip), their settlement there, and what this instance knows of the
//! counters' generations and of spend it settled in the store alone while Redis was out of
//! reach (caught up on its next reservation there).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tollgate_store::budget::usd_to_nanos;

use super::{BudgetHold, Budgets, shared};
use crate::error::GatewayError;

impl Budgets {
    /// Note `nanos` settled in the store alone, to add to Redis's counters later. Spend
    /// settled before this instance ever saw the counters is not added: counters seeded
    /// since read it from the store (an instance cut off from Redis from its start, while
    /// others kept counting there, is the case this misses).
    pub(super) fn unsynced(&self, i: usize, nanos: i64) {
        if nanos <= 0 {
            return;
        }
        if let Some(st) = self.redis_view.get(i) {
            let mut st = st.lock();
            if st.unsynced == 0 {
                st.unsynced_generation = st.generation.clone();
            }
            st.unsynced = st.unsynced.saturating_add(nanos);
        }
    }

    /// Take the catch-up of budget `i` for a reservation in Redis.
    pub(super) fn take_catch_up(&self, i: usize) -> Option<(String, i64)> {
        let mut st = self.redis_view.get(i)?.lock();
        let n = std::mem::take(&mut st.unsynced);
        let generation = st.unsynced_generation.take()?;
        (n > 0).then_some((generation, n))
    }

    /// Put back a catch-up that did not reach Redis.
    pub(super) fn restore_catch_up(&self, i: usize, catch_up: Option<(String, i64)>) {
        let (Some((generation, n)), Some(st)) = (catch_up, self.redis_view.get(i)) else {
            return;
        };
        let mut st = st.lock();
        if st.unsynced == 0 {
            st.unsynced_generation = Some(generation);
        }
        st.unsynced = st.unsynced.saturating_add(n);
    }

    /// Remember the counters' generations Redis answered with.
    pub(super) fn seen(&self, applying: &[(usize, String)], generations: &[String]) {
        for ((i, _), g) in applying.iter().zip(generations) {
            if let Some(st) = self.redis_view.get(*i) {
                let mut st = st.lock();
                if st.generation.as_deref() != Some(g.as_str()) {
                    st.generation = Some(g.clone());
                }
            }
        }
    }

    /// Reserve `max_cost_usd` as [`Self::reserve`] does AND admit the request under the
    /// shared rate limits of `limiter` over `subjects` reserving `tokens`, all or nothing and
    /// in one round trip to Redis ([`shared::ADMIT_RESERVE_SCRIPT`]; two when a budget must
    /// be seeded first). A budget refusal takes no rate token or slot; a rate refusal holds
    /// no budget. Without budgets in Redis, or with Redis unreachable, it is the two stages
    /// one after the other (rate admission, then the budgets), each following
    /// `[limits] redis_unavailable` as on its own.
    pub async fn reserve_and_admit(
        self: &Arc<Self>,
        key_id: &str,
        team: Option<&str>,
        max_cost_usd: Option<f64>,
        limiter: &crate::limits::shared::RedisLimiter,
        subjects: &[crate::limits::Subject],
        tokens: u64,
    ) -> Result<(Option<BudgetHold>, crate::limits::Admission), AdmitError> {
        use crate::limits::{LimitError, RateLimiter};
        let amount = max_cost_usd.map_or(0, usd_to_nanos);
        let now = self.alerts.now();
        let applying: Vec<(usize, String)> = self
            .list
            .iter()
            .enumerate()
            .filter(|(_, b)| b.applies(key_id, team))
            .map(|(i, b)| (i, self.period_label(b, now)))
            .collect();
        let limited = crate::limits::shared::RedisLimiter::limited(subjects);
        if let (Some(shared), false, false) =
            (&self.shared, applying.is_empty(), limited.is_empty())
        {
            let plan = limiter.plan(&limited, tokens);
            let odd = |why: String| {
                AdmitError::Rate(LimitError::Unavailable(format!(
                    "shared rate limits are unavailable: {why}"
                )))
            };
            match self
                .reserve_fused(shared, &applying, amount, now, Some(&plan))
                .await
            {
                Ok(Fused::Held(hold, Some(reply))) => {
                    return match limiter.admitted(plan, &reply) {
                        Ok(a) => Ok((Some(hold), a)),
                        // The script said admitted; `hold` drops and gives the room back.
                        Err(Ok(r)) => Err(AdmitError::Rate(LimitError::Refused(r))),
                        Err(Err(why)) => Err(odd(why)),
                    };
                }
                Ok(Fused::Held(_, None)) => {
                    return Err(odd("the admission script did not answer".into()));
                }
                Ok(Fused::Unadmitted(reply)) => {
                    return match limiter.admitted(plan, &reply) {
                        Err(Ok(r)) => Err(AdmitError::Rate(LimitError::Refused(r))),
                        Err(Err(why)) => Err(odd(why)),
                        // Admitted, yet the budget hold was given back: never from v1.
                        Ok(_) => Err(odd("the admission script gave a hold back".into())),
                    };
                }
                Err(Shared::Refused(e)) => return Err(AdmitError::Budget(e)),
                // Redis is unreachable: the two stages below each follow the policy (and
                // fail fast, the link now waiting before it tries Redis again).
                Err(Shared::Unreachable(_)) => {}
            }
        }
        let admission = limiter
            .admit(subjects, tokens, tokio::time::Instant::now())
            .await
            .map_err(AdmitError::Rate)?;
        let hold = self
            .reserve(key_id, team, max_cost_usd)
            .await
            .map_err(AdmitError::Budget)?;
        Ok((hold, admission))
    }

    /// Reserve in Redis: one round trip, or two (with a store read between) when a budget's
    /// counters must be seeded first.
    pub(super) async fn reserve_shared(
        self: &Arc<Self>,
        shared: &shared::SharedBudgets,
        applying: &[(usize, String)],
        amount: i64,
        now: DateTime<Utc>,
    ) -> Result<BudgetHold, Shared> {
        match self
            .reserve_fused(shared, applying, amount, now, None)
            .await?
        {
            Fused::Held(hold, _) => Ok(hold),
            Fused::Unadmitted(_) => Err(Shared::Unreachable(
                "the budget script answered an admission nobody asked for".into(),
            )),
        }
    }

    /// [`Self::reserve_shared`], and with `admit` the rate admission in the same round trip
    /// (see [`shared::ADMIT_RESERVE_SCRIPT`]).
    pub(super) async fn reserve_fused(
        self: &Arc<Self>,
        shared: &shared::SharedBudgets,
        applying: &[(usize, String)],
        amount: i64,
        now: DateTime<Utc>,
        admit: Option<&crate::limits::shared::AdmitPlan>,
    ) -> Result<Fused, Shared> {
        let mut asks = Vec::with_capacity(applying.len());
        for (i, period) in applying {
            let Some(b) = self.list.get(*i) else { continue };
            asks.push(shared::Ask {
                budget: b.id(),
                period: period.clone(),
                limit: b.limit_nanos(),
                seed: None,
                catch_up: self.take_catch_up(*i),
            });
        }
        let mut seeded = false;
        let outcome = 'reserve: loop {
            let outcome = match shared.reserve(&asks, amount, admit).await {
                Ok(shared::Reserved::Unseeded(list)) if !seeded => {
                    seeded = true;
                    for at in list {
                        let Some(ask) = asks.get_mut(at) else {
                            continue;
                        };
                        match self.ledger.spend(&ask.budget, &ask.period).await {
                            Ok(s) => ask.seed = Some(s.spent),
                            Err(e) => {
                                tracing::error!(error = %e, budget = %ask.budget, "cannot read budget spend to seed Redis; refusing the call");
                                break 'reserve Err(Shared::Refused(GatewayError::unavailable(
                                    "the budget ledger cannot be reached, so tollgate cannot tell whether this call fits its budget",
                                )));
                            }
                        }
                    }
                    continue;
                }
                Ok(shared::Reserved::Unseeded(list)) => Err(Shared::Unreachable(format!(
                    "the budget script asked again for seeds of {list:?}"
                ))),
                Ok(r) => Ok(r),
                Err(reason) => Err(Shared::Unreachable(reason)),
            };
            break outcome;
        };
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                // Nothing was applied: keep the catch-ups for the next reservation.
                for ((i, _), ask) in applying.iter().zip(asks) {
                    self.restore_catch_up(*i, ask.catch_up);
                }
                return Err(e);
            }
        };
        match outcome {
            shared::Reserved::Unadmitted(generations, reply) => {
                self.seen(applying, &generations);
                Ok(Fused::Unadmitted(reply))
            }
            shared::Reserved::Held(lease, generations, admitted) => {
                self.seen(applying, &generations);
                let hold = BudgetHold {
                    budgets: self.clone(),
                    entries: applying
                        .iter()
                        .map(|(i, p)| (*i, p.clone(), amount))
                        .collect(),
                    lease: Some(lease),
                    done: false,
                };
                Ok(Fused::Held(hold, admitted))
            }
            shared::Reserved::Refused(at, spend, generations) => {
                self.seen(applying, &generations);
                let odd = || Shared::Unreachable(format!("the budget script named budget {at}"));
                let (i, period) = applying.get(at).ok_or_else(odd)?;
                let b = self.list.get(*i).ok_or_else(odd)?;
                Err(Shared::Refused(self.refuse(b, period, spend, amount, now)))
            }
            shared::Reserved::Unseeded(_) => Err(Shared::Unreachable(
                "the budget script asked for seeds twice".into(),
            )),
        }
    }

    /// Settle a reservation held in Redis: the cost goes to the store first (the durable
    /// record), then Redis releases the lease and counts the cost.
    pub(super) async fn settle_shared(
        &self,
        entries: &[(usize, String, i64)],
        lease: &shared::Reservation,
        actual: i64,
        rate: Option<&crate::limits::shared::RateSettlement>,
    ) {
        let mut recorded = Vec::with_capacity(entries.len());
        for (i, period, _) in entries {
            let Some(b) = self.list.get(*i) else { continue };
            if actual > 0 {
                if let Err(e) = self.ledger.settle(&b.id(), period, 0, actual).await {
                    tracing::error!(error = %e, budget = %b.id(), "cannot record a call's cost in the budget ledger");
                    continue;
                }
            }
            recorded.push((*i, b, period));
        }
        if let Some(shared) = &self.shared {
            if let Err(e) = shared.settle(&lease.keys, &lease.id, actual, rate).await {
                // The lease (and a rate settlement sent with it: its concurrency lease, its
                // token reservation refilling) expires by itself; the cost is in the store, and Redis is
                // caught up from there on the next reservation.
                tracing::warn!(error = %e, "cannot settle a budget reservation in Redis");
                for (i, _, _) in &recorded {
                    self.unsynced(*i, actual);
                }
            }
        }
        if actual > 0 {
            for (_, b, period) in recorded {
                self.thresholds(b, period).await;
            }
        }
    }
}

/// What a reservation in Redis (with or without an admission) came to.
pub(super) enum Fused {
    /// Reserved; the admission script's answer when it was asked to admit too.
    Held(BudgetHold, Option<Vec<i64>>),
    /// Room was there, but the rate admission refused (its answer); nothing is held.
    Unadmitted(Vec<i64>),
}

/// Why [`Budgets::reserve_and_admit`] did not admit a request.
#[derive(Debug)]
pub enum AdmitError {
    /// A budget refused it (429 `budget_exceeded`), or budgets cannot be checked.
    Budget(GatewayError),
    /// The rate limits refused it, or cannot be checked.
    Rate(crate::limits::LimitError),
}

/// Why a reservation in Redis did not happen.
pub(super) enum Shared {
    /// A budget refused the call, or the store could not seed Redis: the call's answer.
    Refused(GatewayError),
    /// Redis cannot be reached (why): `[limits] redis_unavailable` decides.
    Unreachable(String),
}
