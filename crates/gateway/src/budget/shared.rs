//! Budget reservations shared by every instance through Redis (DO-2 at scale), next to the
//! rate limits of [`crate::limits::shared`] and over the same link.
//!
//! **Reserve** is one round trip ([`RESERVE_SCRIPT`]): the call's largest cost is reserved in
//! every budget that applies, or in none, on the Redis server's clock. **Settle** is one
//! more, off the request path ([`SETTLE_SCRIPT`]), after the actual cost has been added to
//! the store's ledger — the store stays the durable record of spend (`tollgate budgets`, a
//! Redis restart), Redis holds the live counters that every instance checks against.
//!
//! **With shared rate limits too**, a request is admitted and reserved in ONE round trip
//! ([`ADMIT_RESERVE_SCRIPT`]: the budgets first, then the rate limits, and the budget hold
//! given back in the same call if admission refuses, so either refusal takes nothing), and
//! settled in one ([`SETTLE_BOTH_SCRIPT`]). Both are built from the single scripts' text,
//! never a copy. A budget needing a seed costs a second round trip, as alone.
//!
//! **Reservations are leases**: each expires [`RESERVATION_TTL`] after it was taken or last
//! renewed, and a call in flight renews its own every third of the TTL ([`RENEW_SCRIPT`]).
//! So the room held by an instance that dies mid-call comes back by itself, one TTL later.
//!
//! **Seeding**: a budget's counters are missing in Redis at the start of a period, after a
//! day without calls ([`KEY_IDLE_TTL`]), or when Redis lost its data. The reserve script
//! then reserves nothing and names the budgets it needs; the caller reads their spend from
//! the store and calls again with it, and the first seed wins. Settlements that land while a
//! budget is unseeded are kept aside and added to the seed, so a settlement racing a seed can
//! be counted twice in Redis but never lost: the shared figure errs towards refusing.
//!
//! Keys are `tollgate:v1[:NAMESPACE]:g:BUDGET:PERIOD` (a hash: spent, reserved, each lease's
//! amount) and `…:gr:BUDGET:PERIOD` (the leases' expiries), e.g.
//! `tollgate:v1:g:team:search/month:2026-11-01`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tollgate_store::budget::Spend;

use crate::limits::shared::{AdmitPlan, RateSettlement, RedisLink, RedisUnavailable};

/// The reservation script: KEYS and ARGV are documented at its top.
pub const RESERVE_SCRIPT: &str = include_str!("redis_budget_reserve.v1.lua");
/// The settlement (and read) script: KEYS and ARGV are documented at its top.
pub const SETTLE_SCRIPT: &str = include_str!("redis_budget_settle.v1.lua");
/// The lease renewal script: KEYS and ARGV are documented at its top.
pub const RENEW_SCRIPT: &str = include_str!("redis_budget_renew.v1.lua");
/// Budget reservation and rate admission in one round trip (one script, all or nothing):
/// the dispatcher `redis_admit_reserve.v1.lua` (KEYS and ARGV documented at its top) after
/// the reservation, admission and settlement scripts, each included unchanged as a local
/// function, and the KEYS/ARGV split it shares with [`SETTLE_BOTH_SCRIPT`]
/// (`redis_split.v1.lua`), so every piece of logic is written once.
pub const ADMIT_RESERVE_SCRIPT: &str = concat!(
    "local function reserve(KEYS, ARGV)\n",
    include_str!("redis_budget_reserve.v1.lua"),
    "\nend\nlocal function admit(KEYS, ARGV)\n",
    include_str!("../limits/redis_admit.v1.lua"),
    "\nend\nlocal function release(KEYS, ARGV)\n",
    include_str!("redis_budget_settle.v1.lua"),
    "\nend\n",
    include_str!("redis_split.v1.lua"),
    include_str!("redis_admit_reserve.v1.lua"),
);
/// Budget settlement and rate settlement in one round trip: the dispatcher
/// `redis_settle_both.v1.lua` (KEYS and ARGV documented at its top) after both settlement
/// scripts, included unchanged as local functions.
pub const SETTLE_BOTH_SCRIPT: &str = concat!(
    "local function settle_budget(KEYS, ARGV)\n",
    include_str!("redis_budget_settle.v1.lua"),
    "\nend\nlocal function settle_rate(KEYS, ARGV)\n",
    include_str!("../limits/redis_settle.v1.lua"),
    "\nend\n",
    include_str!("redis_split.v1.lua"),
    include_str!("redis_settle_both.v1.lua"),
);
/// How long a reservation lives unless renewed or settled: bounds how long a dead
/// instance's calls keep their room. Calls in flight renew theirs every third of it.
pub const RESERVATION_TTL: Duration = Duration::from_secs(120);
/// How long a budget's keys live without a call: then they go, and the next call seeds them
/// from the store again.
pub const KEY_IDLE_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug)]
struct Inner {
    link: RedisLink,
    reserve: redis::Script,
    settle: redis::Script,
    renew: redis::Script,
    admit_reserve: redis::Script,
    settle_both: redis::Script,
    ttl: Duration,
}

/// The Redis side of [`super::Budgets`]; see the module doc.
#[derive(Debug, Clone)]
pub struct SharedBudgets {
    inner: Arc<Inner>,
}

/// One budget a call asks room in.
#[derive(Debug, Clone)]
pub(crate) struct Ask {
    /// Ledger name (`scope/period`).
    pub(crate) budget: String,
    /// Period label.
    pub(crate) period: String,
    /// Hard limit, nano-USD.
    pub(crate) limit: i64,
    /// The store's spend, to seed the counters with; None: not read.
    pub(crate) seed: Option<i64>,
    /// Spend settled in the store alone, to add to the counters of the generation named.
    pub(crate) catch_up: Option<(String, i64)>,
}

/// The reserve script's answer.
#[derive(Debug)]
pub(crate) enum Reserved {
    /// Room was reserved in every budget; each one's counter generation; and the admission
    /// script's answer when asked to admit too (an admission, see [`Reserved::Unadmitted`]).
    Held(Reservation, Vec<String>, Option<Vec<i64>>),
    /// Room was reserved, but the rate admission asked for with it refused (its answer), so
    /// the reservation was given back in the same call: nothing is held. Each budget's
    /// counter generation.
    Unadmitted(Vec<String>, Vec<i64>),
    /// The budget at this index of the asks has no room; nothing was reserved. Each
    /// budget's counter generation (seeds and catch-ups were applied).
    Refused(usize, Spend, Vec<String>),
    /// These budgets (indices of the asks) need a seed from the store; nothing was reserved.
    Unseeded(Vec<usize>),
}

/// A call's reservation in Redis: its id and keys, and the task renewing it.
#[derive(Debug)]
pub(crate) struct Reservation {
    pub(crate) id: String,
    pub(crate) keys: Vec<String>,
    heartbeat: Option<tokio::task::AbortHandle>,
}

impl Reservation {
    /// Stop renewing (the call ended).
    pub(crate) fn stop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.stop();
    }
}

impl SharedBudgets {
    /// Budget counters on the Redis behind `link` (the shared rate limiter's).
    pub fn new(link: RedisLink) -> Self {
        Self {
            inner: Arc::new(Inner {
                link,
                reserve: redis::Script::new(RESERVE_SCRIPT),
                settle: redis::Script::new(SETTLE_SCRIPT),
                renew: redis::Script::new(RENEW_SCRIPT),
                admit_reserve: redis::Script::new(ADMIT_RESERVE_SCRIPT),
                settle_both: redis::Script::new(SETTLE_BOTH_SCRIPT),
                ttl: RESERVATION_TTL,
            }),
        }
    }

    /// Reservations live `ttl` unless renewed (default [`RESERVATION_TTL`]); set before
    /// sharing.
    pub fn with_reservation_ttl(mut self, ttl: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.ttl = ttl;
        }
        self
    }

    /// What happens while Redis is unreachable (`[limits] redis_unavailable`).
    pub fn policy(&self) -> RedisUnavailable {
        self.inner.link.policy()
    }

    /// Why Redis counts as unreachable right now, or None.
    pub fn down_reason(&self) -> Option<String> {
        self.inner.link.down_reason()
    }

    /// The two keys of `budget` in `period`: the counters' hash and the leases' set.
    pub fn keys(&self, budget: &str, period: &str) -> [String; 2] {
        let p = self.inner.link.prefix();
        [
            format!("{p}:g:{budget}:{period}"),
            format!("{p}:gr:{budget}:{period}"),
        ]
    }

    fn idle_ms(&self) -> u64 {
        KEY_IDLE_TTL.max(self.inner.ttl * 4).as_millis() as u64
    }

    /// Reserve `amount` nano-USD in every budget of `asks`, all or none. Err: Redis cannot
    /// be reached (the reason, for messages).
    pub(crate) async fn reserve(
        &self,
        asks: &[Ask],
        amount: i64,
        admit: Option<&AdmitPlan>,
    ) -> Result<Reserved, String> {
        let inner = &self.inner;
        let link = &inner.link;
        let mut c = link.conn().await?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut keys = Vec::with_capacity(asks.len() * 2);
        for a in asks {
            keys.extend(self.keys(&a.budget, &a.period));
        }
        let mut args = vec![
            amount.max(0).to_string(),
            id.clone(),
            (inner.ttl.as_millis() as u64).to_string(),
            self.idle_ms().to_string(),
        ];
        for a in asks {
            args.push(a.limit.to_string());
            args.push(
                a.seed
                    .map_or_else(|| "-".to_owned(), |s| s.max(0).to_string()),
            );
            args.push(match &a.catch_up {
                Some((generation, nanos)) => format!("{generation}:{}", nanos.max(&0)),
                None => "-".to_owned(),
            });
        }
        let (reply, admitted): (Vec<String>, Option<Vec<i64>>) = match admit {
            None => {
                let mut call = inner.reserve.prepare_invoke();
                for k in &keys {
                    call.key(k);
                }
                for a in &args {
                    call.arg(a);
                }
                match call.invoke_async(&mut c).await {
                    Ok(v) => (v, None),
                    Err(e) => return Err(link.down(format!("reserving budget: {e}"))),
                }
            }
            Some(plan) => {
                let mut call = inner.admit_reserve.prepare_invoke();
                for k in keys.iter().chain(plan.keys()) {
                    call.key(k);
                }
                call.arg(keys.len()).arg(args.len());
                for a in args.iter().chain(plan.args()) {
                    call.arg(a);
                }
                match call.invoke_async::<(Vec<String>, Vec<i64>)>(&mut c).await {
                    Ok((r, a)) => (r, Some(a)),
                    Err(e) => {
                        return Err(link.down(format!("reserving budget and admitting: {e}")));
                    }
                }
            }
        };
        link.up();
        let odd = || {
            format!(
                "the budget reservation script answered {reply:?}; is another tollgate version sharing this Redis?"
            )
        };
        let int = |v: &String| v.parse::<i64>().map_err(|_| odd());
        let index = |v: &String| int(v).map(|i| (i.max(1) - 1) as usize);
        let n = asks.len();
        match reply.as_slice() {
            [code, gens @ ..]
                if code == "1"
                    && gens.len() == n
                    && admitted.as_ref().is_some_and(|a| a.first() != Some(&1)) =>
            {
                Ok(Reserved::Unadmitted(
                    gens.to_vec(),
                    admitted.unwrap_or_default(),
                ))
            }
            [code, gens @ ..] if code == "1" && gens.len() == n => {
                let heartbeat = (amount > 0)
                    .then(|| heartbeat(inner.clone(), id.clone(), keys.clone(), self.idle_ms()));
                Ok(Reserved::Held(
                    Reservation {
                        id,
                        keys,
                        heartbeat,
                    },
                    gens.to_vec(),
                    admitted,
                ))
            }
            [code, i, spent, reserved, gens @ ..] if code == "0" && gens.len() == n => {
                Ok(Reserved::Refused(
                    index(i)?,
                    Spend {
                        spent: int(spent)?,
                        reserved: int(reserved)?,
                    },
                    gens.to_vec(),
                ))
            }
            [code, rest @ ..] if code == "2" && !rest.is_empty() => Ok(Reserved::Unseeded(
                rest.iter().map(index).collect::<Result<_, _>>()?,
            )),
            _ => Err(odd()),
        }
    }

    /// Release the reservation `hold` (`""`: none) held under `keys` and add `actual`
    /// nano-USD to the spend; returns each budget's counters (None: unseeded).
    pub(crate) async fn settle(
        &self,
        keys: &[String],
        hold: &str,
        actual: i64,
        rate: Option<&RateSettlement>,
    ) -> Result<Vec<Option<Spend>>, String> {
        let inner = &self.inner;
        let link = &inner.link;
        let mut c = link.conn().await?;
        let args = [
            hold.to_owned(),
            actual.max(0).to_string(),
            self.idle_ms().to_string(),
        ];
        let reply: Vec<i64> = match rate {
            None => {
                let mut call = inner.settle.prepare_invoke();
                for k in keys {
                    call.key(k);
                }
                for a in &args {
                    call.arg(a);
                }
                match call.invoke_async(&mut c).await {
                    Ok(v) => v,
                    Err(e) => return Err(link.down(format!("settling budget: {e}"))),
                }
            }
            Some(rate) => {
                let mut call = inner.settle_both.prepare_invoke();
                for k in keys.iter().chain(rate.keys()) {
                    call.key(k);
                }
                call.arg(keys.len()).arg(args.len());
                for a in args.iter().chain(rate.args()) {
                    call.arg(a);
                }
                match call.invoke_async::<(Vec<i64>, i64)>(&mut c).await {
                    Ok((v, _released)) => v,
                    Err(e) => {
                        return Err(link.down(format!("settling budget and rate limits: {e}")));
                    }
                }
            }
        };
        link.up();
        Ok(reply
            .chunks(2)
            .map(|p| match p {
                [spent, reserved] if *spent >= 0 => Some(Spend {
                    spent: *spent,
                    reserved: *reserved,
                }),
                _ => None,
            })
            .collect())
    }

    /// The live counters of `budget` in `period` (None: unseeded).
    pub async fn read(&self, budget: &str, period: &str) -> Result<Option<Spend>, String> {
        let keys = self.keys(budget, period);
        Ok(self
            .settle(&keys, "", 0, None)
            .await?
            .into_iter()
            .next()
            .flatten())
    }
}

/// Renew the reservation `id` under `keys` every third of the TTL until aborted. Only the
/// process dying (or the call ending) stops it, so a dead instance's reservations expire.
fn heartbeat(
    inner: Arc<Inner>,
    id: String,
    keys: Vec<String>,
    idle_ms: u64,
) -> tokio::task::AbortHandle {
    let every = (inner.ttl / 3).max(Duration::from_millis(10));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Ok(mut c) = inner.link.conn().await else {
                // Redis is down: the next tick tries again; past the TTL the reservation
                // expires, as every other counter then does.
                continue;
            };
            let mut call = inner.renew.prepare_invoke();
            for k in &keys {
                call.key(k);
            }
            call.arg(&id)
                .arg(inner.ttl.as_millis() as u64)
                .arg(idle_ms);
            match call.invoke_async::<i64>(&mut c).await {
                Ok(n) if (n as usize) < keys.len() / 2 => tracing::warn!(
                    hold = %id,
                    renewed = n,
                    "a budget reservation expired while its call was in flight (Redis unreachable for longer than the lease); its room is no longer held"
                ),
                Ok(_) => {}
                Err(e) => {
                    inner.link.down(format!("renewing a budget reservation: {e}"));
                }
            }
        }
    })
    .abort_handle()
}
