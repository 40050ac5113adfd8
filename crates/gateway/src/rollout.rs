//! Versioned route configurations (checklist DO-4: a rollback plan for model updates).
//!
//! A route's targets (which providers and upstream models serve an alias, in fallback order)
//! can be versioned like prompts: `tollgate routes push` stores a [`RouteSpec`] as a new
//! version under the store name `route:ALIAS` ([`STORE_PREFIX`]) and points staging at it;
//! `promote` and `rollback` move production. Keys of each environment are served that
//! environment's version of the route's targets *over* the ones in `tollgate.toml`; everything
//! else about the route (guards, limits, data class, payloads) stays as configured. With no
//! version deployed, the config's targets apply.
//!
//! [`RouteVersions`] is reloaded with the prompts every 400 ms, so a model update or its
//! rollback reaches every instance within a second.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tollgate_store::prompt::{Deployed, PromptEnv};

use crate::provider::ProviderRef;
use crate::resilience::CircuitBreaker;
use crate::state::{Gateway, Route, Target};

/// Prefix of the store names under which route versions are kept.
pub const STORE_PREFIX: &str = "route:";
/// Most targets in one route version.
pub const MAX_TARGETS: usize = 16;

/// One target of a route version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// Provider name from the config.
    pub provider: String,
    /// Upstream model (Azure: deployment).
    pub model: String,
}

/// A route configuration version: what `tollgate routes push` reads (YAML, TOML or JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// The route (model alias) of the config it applies to.
    pub route: String,
    /// Targets in fallback order.
    pub targets: Vec<TargetSpec>,
}

impl RouteSpec {
    /// Every problem with this version against the providers and routes of the config.
    pub fn validate<R, P>(
        &self,
        routes: &BTreeMap<String, R>,
        providers: &BTreeMap<String, P>,
    ) -> Vec<String> {
        let mut p = Vec::new();
        if !routes.contains_key(&self.route) {
            p.push(format!(
                "route {:?} is not a route of this gateway's config",
                self.route
            ));
        }
        if self.targets.is_empty() || self.targets.len() > MAX_TARGETS {
            p.push(format!("targets: 1 to {MAX_TARGETS} targets"));
        }
        for (i, t) in self.targets.iter().enumerate() {
            if !providers.contains_key(&t.provider) {
                p.push(format!(
                    "targets[{i}].provider {:?} is not a provider of this gateway's config",
                    t.provider
                ));
            }
            if t.model.trim().is_empty() {
                p.push(format!("targets[{i}].model: name the upstream model"));
            }
        }
        p
    }

    /// Canonical JSON: what is stored, hashed and diffed.
    pub fn canonical(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The store name of this route's versions.
    pub fn store_name(&self) -> String {
        format!("{STORE_PREFIX}{}", self.route)
    }
}

/// Route alias and environment → the deployed version and the route built from it.
type Active = HashMap<(String, PromptEnv), (i64, Arc<Route>)>;

/// The deployed route versions, built into routes, as of the last refresh.
#[derive(Debug, Default)]
pub struct RouteVersions {
    active: RwLock<Active>,
    /// Breakers of targets no configured route has, shared across reloads.
    breakers: Mutex<HashMap<String, Arc<CircuitBreaker>>>,
}

impl RouteVersions {
    /// Rebuild from the deployed versions (entries not named `route:…` are ignored). A version
    /// that does not parse or names an unknown route or provider is left out and logged, so
    /// its route keeps the config's targets.
    pub fn load(&self, gw: &Gateway, list: &[Deployed]) {
        let old = self.active.read().clone();
        let mut next = HashMap::new();
        for d in list {
            let Some(alias) = d.name.strip_prefix(STORE_PREFIX) else {
                continue;
            };
            let k = (alias.to_owned(), d.env);
            if let Some(a) = old.get(&k).filter(|a| a.0 == d.version) {
                next.insert(k, a.clone());
                continue;
            }
            match self.build(gw, alias, &d.content) {
                Ok(route) => {
                    next.insert(k, (d.version, Arc::new(route)));
                }
                Err(e) => tracing::warn!(
                    route = alias,
                    version = d.version,
                    env = d.env.as_str(),
                    error = %e,
                    "stored route version cannot be served; the config's targets apply"
                ),
            }
        }
        *self.active.write() = next;
    }

    fn build(&self, gw: &Gateway, alias: &str, content: &str) -> Result<Route, String> {
        let spec: RouteSpec = serde_json::from_str(content).map_err(|e| e.to_string())?;
        let problems = spec.validate(&gw.routes, &gw.providers);
        if spec.route != alias || !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let Some(base) = gw.routes.get(alias) else {
            return Err(format!("no route {alias:?}"));
        };
        let mut route = Route::clone(base);
        route.targets = spec
            .targets
            .iter()
            .filter_map(|t| {
                let provider: ProviderRef = gw.providers.get(&t.provider)?.clone();
                let label = format!("{}/{}", t.provider, t.model);
                Some(Target {
                    breaker: self.breaker(gw, &label, &provider),
                    provider,
                    model: t.model.clone(),
                    label,
                })
            })
            .collect();
        Ok(route)
    }

    /// The breaker of `label`: the one configured routes share, else one kept here.
    fn breaker(&self, gw: &Gateway, label: &str, provider: &ProviderRef) -> Arc<CircuitBreaker> {
        if let Some(b) = gw
            .routes
            .values()
            .flat_map(|r| r.targets.iter())
            .find(|t| t.label == label)
        {
            return b.breaker.clone();
        }
        let r = provider.resilience;
        self.breakers
            .lock()
            .entry(label.to_owned())
            .or_insert_with(|| {
                Arc::new(CircuitBreaker::new(r.breaker_failures, r.breaker_cooldown))
            })
            .clone()
    }

    /// The version of `alias` deployed in `env`, if any.
    pub fn version(&self, alias: &str, env: PromptEnv) -> Option<i64> {
        self.active
            .read()
            .get(&(alias.to_owned(), env))
            .map(|a| a.0)
    }

    /// The route `alias` as served in `env`: its deployed version, else the config's.
    pub fn route(&self, gw: &Gateway, alias: &str, env: PromptEnv) -> Option<Arc<Route>> {
        self.served(gw, alias, env).map(|(r, _)| r)
    }

    /// The route `alias` as served in `env` and the version it is (None: the config's), read
    /// together so a reload in between cannot pair one version's targets with another's
    /// number (what `tollgate routes test` checks the gateway served).
    pub fn served(
        &self,
        gw: &Gateway,
        alias: &str,
        env: PromptEnv,
    ) -> Option<(Arc<Route>, Option<i64>)> {
        if let Some((v, r)) = self.active.read().get(&(alias.to_owned(), env)) {
            return Some((r.clone(), Some(*v)));
        }
        gw.routes.get(alias).cloned().map(|r| (r, None))
    }
}
