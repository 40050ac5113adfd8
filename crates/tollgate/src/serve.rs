//! `tollgate serve`: run the gateway on the embedded store.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use tollgate_gateway::config::{ProviderConfig, RouteConfig};
use tollgate_gateway::state::Gateway;
use tollgate_store::key::{Environment, KeyRecord, VirtualKey};

use crate::{Outcome, setup};

/// Options of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (default from config, else 127.0.0.1:8787).
    #[arg(long, env = "TOLLGATE_LISTEN")]
    listen: Option<String>,
    /// Add the built-in `echo` provider and model, and print a demo key.
    #[arg(long)]
    demo: bool,
    /// Redis shared by every instance for rate, token and concurrency limits
    /// (redis://[:PASSWORD@]HOST:PORT/DB); overrides `[limits] redis`.
    #[arg(long, env = "TOLLGATE_REDIS", hide_env_values = true)]
    redis: Option<String>,
}

/// How long the key printed by `--demo` stays valid.
const DEMO_KEY_TTL_DAYS: i64 = 7;

fn add_demo_routes(config: &mut tollgate_gateway::config::Config) -> Result<()> {
    let echo: ProviderConfig = toml::from_str("kind = \"echo\"").context("demo provider")?;
    config.providers.entry("echo".to_owned()).or_insert(echo);
    let route: RouteConfig =
        toml::from_str("targets = [{ provider = \"echo\", model = \"echo\" }]")
            .context("demo route")?;
    config.routes.entry("echo".to_owned()).or_insert(route);
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}

/// Run `serve`.
pub async fn run(global: &setup::GlobalArgs, args: ServeArgs) -> Result<Outcome> {
    setup::init_logging(true);
    let mut loaded = setup::load(global)?;
    for w in &loaded.warnings {
        tracing::warn!(setting = %w.path, "{}", w.message);
    }
    if args.demo {
        add_demo_routes(&mut loaded.config)?;
    }
    if let Some(url) = args.redis.clone() {
        if !url.starts_with("redis://") {
            bail!("--redis / TOLLGATE_REDIS must be a redis:// URL");
        }
        loaded.config.limits.redis = Some(url);
    }
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| loaded.config.server.listen.clone());
    let opened = setup::open(global, &loaded.data_dir).await?;
    let demo_key = if args.demo {
        let key = VirtualKey::generate(Environment::Staging);
        let mut rec = KeyRecord::new(&key, opened.hasher.hash(&key), "demo");
        rec.owner = Some("tollgate serve --demo".to_owned());
        rec.allowed_models = vec!["echo".to_owned()];
        rec.expires_at = Some(Utc::now() + chrono::Duration::days(DEMO_KEY_TTL_DAYS));
        opened.store.keys.insert_key(&rec).await?;
        Some(key)
    } else {
        None
    };
    let auditor = setup::start_auditor(&opened, &loaded.config, &loaded.data_dir).await?;
    let gw = Gateway::new(
        loaded.config,
        opened.store,
        Some(opened.keystore),
        opened.hasher,
        opened.mask_key,
        auditor,
    )
    .map_err(|e| anyhow!(e))?;
    let problems = gw.check_credentials().await;
    if !problems.is_empty() {
        bail!(
            "provider credentials are not available:\n  - {}",
            problems.join("\n  - ")
        );
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    println!("tollgate listening on http://{addr}");
    if let Some(k) = demo_key {
        println!("demo key: {}", k.expose());
    }
    tracing::info!(
        listen = %addr,
        data_dir = %loaded.data_dir.display(),
        routes = gw.routes.len(),
        providers = gw.providers.len(),
        "tollgate serving"
    );
    tollgate_gateway::serve(listener, Arc::new(gw), shutdown_signal()).await?;
    Ok(Outcome::Ok)
}
