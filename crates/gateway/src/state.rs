//! The gateway's shared state: resolved providers and routes, the authenticator, metrics.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tollgate_store::Store;
use tollgate_store::key::KeyHasher;
use tollgate_store::keystore::Keystore;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::provider::{Provider, ProviderRef};
use crate::resilience::CircuitBreaker;

/// One target of a route, with the breaker it shares with every route using the same
/// provider and model.
#[derive(Debug, Clone)]
pub struct Target {
    /// The provider.
    pub provider: ProviderRef,
    /// Upstream model (Azure: deployment).
    pub model: String,
    /// `provider/model`, for logs and metrics.
    pub label: String,
    /// Circuit breaker of this provider+model.
    pub breaker: Arc<CircuitBreaker>,
}

/// A model alias and its targets in fallback order.
#[derive(Debug, Clone)]
pub struct Route {
    /// The alias clients send as `model`.
    pub alias: String,
    /// Targets in order.
    pub targets: Vec<Target>,
    /// Guards of this route.
    pub guards: crate::guards::GuardSet,
    /// Payloads this route stores beside its audit records.
    pub payloads: crate::audit::PayloadPolicy,
    /// Class of the data this route carries (DP-4).
    pub data_class: crate::config::DataClass,
    /// Limits of all callers together on this route, per key on it, and request caps.
    pub limits: RouteLimits,
}

/// A route's resolved limits (DO-1).
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteLimits {
    /// All callers of the route together.
    pub route: crate::config::limits::Rule,
    /// Each key (the route's own rule, else `[limits] key`).
    pub key: crate::config::limits::Rule,
    /// Request-shape caps.
    pub caps: crate::config::limits::Caps,
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct Gateway {
    /// The validated configuration.
    pub config: Config,
    /// Routes by alias.
    pub routes: BTreeMap<String, Arc<Route>>,
    /// Providers by name.
    pub providers: BTreeMap<String, ProviderRef>,
    /// Key authentication.
    pub auth: Authenticator,
    /// Metrics registry.
    pub metrics: Metrics,
    /// Persistence.
    pub store: Store,
    /// Key of the `hash` masking action (derived from the master key).
    pub mask_key: [u8; 32],
    /// The audit writer.
    pub audit: crate::audit::Auditor,
    /// Local rate, token and concurrency limits (and abuse suspensions).
    pub limiter: Arc<crate::limits::Limiter>,
    /// What admits requests: the local limiter, or Redis shared by every instance
    /// (`[limits] redis`) falling back to the local one as `redis_unavailable` says.
    pub rate_limiter: Arc<dyn crate::limits::RateLimiter>,
    /// Prices per model.
    pub prices: tollgate_guard::cost::PriceTable,
    /// Proxies trusted to set `X-Forwarded-For`.
    pub proxies: Vec<ipnet::IpNet>,
    /// Alert sinks, dedup and the anomaly detector (MI-2).
    pub alerts: Arc<crate::alert::Alerter>,
    /// Budgets and their ledger (DO-2).
    pub budgets: Arc<crate::budget::Budgets>,
    /// The review sample and daily route statistics (MI-4).
    pub reviews: Arc<crate::review::Reviews>,
    /// Kill switches in force (refreshed from the store).
    pub switches: crate::killswitch::Switches,
    /// Deployed prompt versions (refreshed from the store).
    pub prompts: crate::prompt::Prompts,
    /// Deployed route versions (refreshed from the store), served over the config's targets.
    pub route_versions: crate::rollout::RouteVersions,
    /// Secrets managers (provider credentials; rotated keys' destinations).
    pub secrets: crate::secrets::SecretBackends,
    /// OpenTelemetry trace export (MI-1); off without `[telemetry]`.
    pub tracer: crate::telemetry::Tracer,
}

impl Gateway {
    /// Resolve a validated config into providers and routes.
    pub fn new(
        config: Config,
        store: Store,
        keystore: Option<Keystore>,
        hasher: KeyHasher,
        mask_key: [u8; 32],
        audit: crate::audit::Auditor,
    ) -> Result<Self, String> {
        let backends = crate::secrets::SecretBackends::from_config(&config.secrets, keystore)?;
        let mut providers = BTreeMap::new();
        for (name, cfg) in &config.providers {
            let p =
                Provider::new(name, cfg, &backends).map_err(|e| format!("provider {name}: {e}"))?;
            providers.insert(name.clone(), Arc::new(p));
        }
        let mut breakers: HashMap<String, Arc<CircuitBreaker>> = HashMap::new();
        let mut routes = BTreeMap::new();
        for (alias, rc) in &config.routes {
            let mut targets = Vec::new();
            for t in &rc.targets {
                let provider = providers
                    .get(&t.provider)
                    .cloned()
                    .ok_or_else(|| format!("route {alias}: unknown provider {}", t.provider))?;
                let label = format!("{}/{}", t.provider, t.model);
                let r = provider.resilience;
                let breaker = breakers
                    .entry(label.clone())
                    .or_insert_with(|| {
                        Arc::new(CircuitBreaker::new(r.breaker_failures, r.breaker_cooldown))
                    })
                    .clone();
                targets.push(Target {
                    provider,
                    model: t.model.clone(),
                    label,
                    breaker,
                });
            }
            let guards = crate::guards::GuardSet::build(&config.guards, rc.guards.as_ref())
                .map_err(|e| format!("route {alias}: {e}"))?;
            routes.insert(
                alias.clone(),
                Arc::new(Route {
                    alias: alias.clone(),
                    targets,
                    guards,
                    payloads: crate::config::PayloadConfig::resolve(
                        &config.audit.payloads,
                        rc.audit.as_ref(),
                    ),
                    data_class: rc.data_class(&config.policy),
                    limits: {
                        let l = rc.limits.as_ref();
                        RouteLimits {
                            route: l.and_then(|l| l.route).unwrap_or(config.limits.route),
                            key: l.and_then(|l| l.key).unwrap_or(config.limits.key),
                            caps: l.and_then(|l| l.caps).unwrap_or(config.limits.caps),
                        }
                    },
                }),
            );
        }
        let auth = Authenticator::new(store.keys.clone(), hasher);
        let alerts = Arc::new(
            crate::alert::Alerter::new(&config.alerts, store.alerts.clone())
                .with_secrets(&backends),
        );
        let limiter = crate::limits::Limiter::new();
        let mut budgets =
            crate::budget::Budgets::new(&config, store.budgets.clone(), alerts.clone());
        let rate_limiter: Arc<dyn crate::limits::RateLimiter> =
            match crate::limits::shared::RedisLimiter::from_config(&config.limits, limiter.clone())?
            {
                Some(r) => {
                    let r = r.with_alerts(alerts.clone());
                    // Budget reservations share the limiter's Redis, link and policy.
                    budgets =
                        budgets.with_shared(crate::budget::shared::SharedBudgets::new(r.link()));
                    Arc::new(r)
                }
                None => Arc::new(crate::limits::LocalLimits(limiter.clone())),
            };
        let budgets = Arc::new(budgets);
        let reviews = Arc::new(crate::review::Reviews::new(
            config.review,
            config
                .routes
                .iter()
                .map(|(alias, rc)| (alias.clone(), config.review.rate_for(rc.review.as_ref())))
                .collect(),
            store.reviews.clone(),
        ));
        let metrics = Metrics::new();
        let tracer = crate::telemetry::Tracer::new(config.telemetry.as_ref(), &backends, &metrics)?;
        Ok(Self {
            tracer,
            alerts,
            budgets,
            reviews,
            limiter,
            rate_limiter,
            prices: config.price_table(),
            proxies: config.limits.proxies(),
            switches: crate::killswitch::Switches::default(),
            prompts: crate::prompt::Prompts::default(),
            route_versions: crate::rollout::RouteVersions::default(),
            secrets: backends,
            config,
            routes,
            providers,
            auth,
            metrics,
            store,
            mask_key,
            audit,
        })
    }

    /// Fetch every provider credential once; returns the problems (safe to print).
    pub async fn check_credentials(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for p in self.providers.values() {
            if let Some(c) = p.credential() {
                if let Err(e) = c.get().await {
                    problems.push(format!("provider {}: {e}", p.name));
                }
            }
        }
        problems
    }
}
