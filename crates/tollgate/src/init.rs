//! `tollgate init`: a commented config, the data directory, and a bootstrap admin credential.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use secrecy::ExposeSecret;
use tollgate_store::AdminCredential;
use tollgate_store::key::{new_admin_credential, random_base62};

use crate::{Outcome, setup};

/// The config written by `init`: safe to run as is (echo provider), with the real providers
/// commented so that no credential is ever needed to get started. `{TODAY}` and
/// `{NEXT_YEAR}` are filled in by [`template`].
pub const TEMPLATE: &str = r#"# tollgate.toml — written by `tollgate init`. Every setting is documented in the README.
# Credentials are references, never literal keys (checklist AC-1): store a key with
#   tollgate secrets set openai < openai-key.txt
# and refer to it as "keystore://openai". file:///run/secrets/NAME and env:NAME also work.

[server]
listen = "127.0.0.1:8787"
# Requests larger than this get 413.
max_body_bytes = 2097152
# Hosts providers may live on (SC-3). When set, a provider elsewhere is a config error.
# egress_allow = ["api.openai.com", "api.anthropic.com", "*.openai.azure.com", "127.0.0.1"]

[storage]
# Relative to this file. Holds the SQLite store and master.key (back it up).
data_dir = "tollgate-data"

[logging]
# Include prompt and completion text in request logs. Off: prompts are user data.
log_payloads = false

# ---- Traces (MI-1) ---------------------------------------------------------------------
# OpenTelemetry traces over OTLP/HTTP: a span per call with the GenAI conventions (model,
# tokens, cost, guard verdicts; never prompt text), continuing callers' W3C traceparent.
# Off without this section.
# [telemetry]
# endpoint = "http://otel-collector:4318"     # /v1/traces is appended
# headers = { authorization = "file:///run/secrets/otel-token" }    # references only
# service_name = "tollgate"
# sample_ratio = 1.0                          # share of new traces recorded, 0 to 1
# queue_size = 4096                           # spans held; beyond that dropped and counted

# ---- Provider policy (DP-4) ------------------------------------------------------------
# Every provider except the built-in echo needs a [providers.NAME.review]: without a current
# one it receives nothing. Data classes, least sensitive first: public, internal,
# confidential, pii, phi. A request's class is the more sensitive of its route's
# (data_class = "...", default below) and its key's (`tollgate keys create --data-class`).
# `tollgate providers` lists every review and exits 1 if one is missing or expired.

[policy]
default_data_class = "internal"
expired_review = "refuse"      # or "warn": send anyway, logging a warning per request

# ---- Providers -------------------------------------------------------------------------
# kind: "openai" (OpenAI and OpenAI-compatible servers: vLLM, Ollama, llama.cpp),
#       "azure" (Azure OpenAI), "anthropic", or "echo" (built in; replies with its input).

[providers.echo]
kind = "echo"

# [providers.openai]
# kind = "openai"
# api_key = "keystore://openai"
# connect_timeout = "5s"       # establishing a connection
# first_byte_timeout = "60s"   # until response headers
# total_timeout = "600s"       # whole exchange, streams included
# max_retries = 2              # on 429, 5xx and connection errors, with jittered backoff
# breaker_failures = 5         # consecutive failures that open the circuit breaker
# breaker_cooldown = "30s"
# [providers.openai.review]    # fill in from your own review of the provider's terms
# reviewed_by = "security@example.com"
# reviewed_on = {TODAY}
# expires = {NEXT_YEAR}         # from this day on the provider receives nothing
# retention_days = 30
# zero_data_retention = false
# trains_on_customer_data = false
# regions = ["us"]
# dpa_signed = true
# certifications = ["SOC 2 Type II"]
# data_classes = ["public", "internal"]

# [providers.anthropic]
# kind = "anthropic"
# api_key = "keystore://anthropic"
# [providers.anthropic.review]
# reviewed_by = "security@example.com"
# reviewed_on = {TODAY}
# expires = {NEXT_YEAR}
# retention_days = 30
# zero_data_retention = false
# trains_on_customer_data = false
# regions = ["us"]
# dpa_signed = true
# certifications = ["SOC 2 Type II"]
# data_classes = ["public", "internal"]

# [providers.local]
# kind = "openai"
# base_url = "http://127.0.0.1:11434/v1"   # Ollama; no credential needed locally
# [providers.local.review]                 # data stays on this machine
# reviewed_by = "platform-team"
# reviewed_on = {TODAY}
# expires = {NEXT_YEAR}
# retention_days = 0
# zero_data_retention = true
# trains_on_customer_data = false
# regions = ["on-premises"]
# dpa_signed = false
# data_classes = ["public", "internal", "confidential", "pii"]

# [providers.azure]
# kind = "azure"
# base_url = "https://YOUR-RESOURCE.openai.azure.com"
# api_version = "2024-10-21"
# api_key = "keystore://azure-openai"
# [providers.azure.review]
# reviewed_by = "security@example.com"
# reviewed_on = {TODAY}
# expires = {NEXT_YEAR}
# retention_days = 30
# zero_data_retention = false
# trains_on_customer_data = false
# regions = ["westeurope"]
# dpa_signed = true
# certifications = ["SOC 2 Type II", "ISO 27001"]
# data_classes = ["public", "internal", "confidential"]

# ---- Routes ----------------------------------------------------------------------------
# A route maps the model name your apps send to targets tried in order (fallback).
# A fallback may cross providers: OpenAI-format requests are translated for Anthropic and back.

[routes.echo]
targets = [{ provider = "echo", model = "echo" }]

# [routes."gpt-4o"]
# data_class = "internal"      # the class of data this route carries (default: policy's)
# targets = [
#   { provider = "openai", model = "gpt-4o" },
#   { provider = "anthropic", model = "claude-sonnet-4-5" },
# ]
"#;

/// [`TEMPLATE`] with its review dates: today, and a year from today.
pub fn template(today: chrono::NaiveDate) -> String {
    let next_year = today
        .checked_add_months(chrono::Months::new(12))
        .unwrap_or(today);
    TEMPLATE
        .replace("{TODAY}", &today.to_string())
        .replace("{NEXT_YEAR}", &next_year.to_string())
}

/// Run `init`.
pub async fn run(global: &setup::GlobalArgs, dir: Option<PathBuf>) -> Result<Outcome> {
    setup::init_logging(false);
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let config_path = dir.join(setup::DEFAULT_CONFIG);
    if config_path.exists() {
        bail!(
            "{} already exists; not overwriting it",
            config_path.display()
        );
    }
    std::fs::write(&config_path, template(chrono::Utc::now().date_naive()))
        .with_context(|| format!("writing {}", config_path.display()))?;
    let data_dir = match &global.data_dir {
        Some(d) => d.clone(),
        None => dir.join(setup::DEFAULT_DATA_DIR),
    };
    let opened = setup::open(global, &data_dir).await?;
    let credential = new_admin_credential();
    let record = AdminCredential {
        id: format!("adm_{}", random_base62(16)),
        hash: opened.hasher.hash_text(credential.expose_secret()),
        name: "bootstrap".to_owned(),
        role: "owner".to_owned(),
        created_at: tollgate_store::now(),
    };
    opened.store.admins.insert_admin(&record).await?;
    println!("Wrote {}", config_path.display());
    println!(
        "Data directory {} (mode 0700; back up master.key inside it)",
        data_dir.display()
    );
    println!();
    println!(
        "Bootstrap admin credential ({}, role owner). It is shown only this once:",
        record.id
    );
    println!();
    println!("{}", credential.expose_secret());
    println!();
    println!("Next steps:");
    println!("  tollgate secrets set openai < openai-key.txt   # then enable [providers.openai]");
    println!("  tollgate keys create --name my-app              # a virtual key for your app");
    println!("  tollgate serve");
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_loads_as_is_and_with_every_example_enabled() {
        let today = chrono::Utc::now().date_naive();
        let text = template(today);
        let path = std::path::Path::new("tollgate.toml");
        let (config, warnings) = tollgate_gateway::config::Config::parse(&text, path).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.providers.len(), 1);
        let day = chrono::NaiveDate::from_ymd_opt(2030, 2, 1).unwrap_or_default();
        assert!(template(day).contains("reviewed_on = 2030-02-01\n# expires = 2031-02-01"));
        // Uncomment every setting: each commented provider carries a valid review.
        let enabled: String = text
            .lines()
            .map(|l| {
                let body = l.strip_prefix("# ").unwrap_or(l);
                let setting = body.starts_with('[')
                    || body.starts_with(']')
                    || body.starts_with("  {")
                    || body.split_once(" = ").is_some_and(|(k, _)| {
                        k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    });
                format!("{}\n", if setting { body } else { l })
            })
            .collect();
        let (config, warnings) = tollgate_gateway::config::Config::parse(&enabled, path)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.providers.len(), 5);
        assert!(
            config
                .providers
                .values()
                .all(|p| p.review_status(today).is_current())
        );
    }
}
