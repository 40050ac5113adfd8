//! `[telemetry]`: where the gateway sends its OpenTelemetry traces (checklist MI-1), over
//! OTLP/HTTP, and how many.
//!
//! Off when the section is absent: no span is built, no header is read or sent, nothing is
//! queued. The exporter itself is [`crate::telemetry`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigDuration, Problem};
use crate::credential::CredentialRef;

/// Default `service.name` resource attribute.
pub const DEFAULT_SERVICE_NAME: &str = "tollgate";
/// Default bound of the export queue, in spans (each request makes one, plus one per
/// upstream attempt).
pub const DEFAULT_QUEUE_SIZE: usize = 4096;
/// Largest export queue accepted: a span is a few hundred bytes, so this bounds the memory
/// a dead collector can pin at a few tens of megabytes.
pub const MAX_QUEUE_SIZE: usize = 100_000;
/// Default limit on one export call.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest export timeout accepted: the exporter holds one batch while it waits.
pub const MAX_EXPORT_TIMEOUT: Duration = Duration::from_secs(60);
/// Most headers accepted (collectors want one or two: a token, a tenant).
pub const MAX_HEADERS: usize = 16;

/// `[telemetry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP endpoint of the collector, e.g. `http://otel-collector:4318`; `/v1/traces`
    /// is appended unless the URL already ends with it. `http` or `https`, no credentials
    /// or query in the URL (put them in `headers`).
    pub endpoint: String,
    /// Headers sent with every export (an API token, a tenant id), by name; each value is a
    /// credential reference (`keystore://`, `file://`, `vault://`, `aws-sm://`, `env:`),
    /// never a literal, and is re-read as provider credentials are.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The `service.name` resource attribute of every span (default `tollgate`).
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Share of new traces recorded, 0 to 1 (default 1). A request that arrives with a W3C
    /// `traceparent` follows its caller's sampled flag instead.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
    /// Spans waiting for export at most (default 4096), besides the one batch (at most
    /// 512) being sent; when full, new spans are dropped and counted in
    /// `tollgate_trace_spans_dropped_total`, never waited for.
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
    /// Limit on one export call (default `"10s"`); a batch that times out is dropped and
    /// counted.
    #[serde(default = "default_export_timeout")]
    pub export_timeout: ConfigDuration,
}

fn default_service_name() -> String {
    DEFAULT_SERVICE_NAME.to_owned()
}

fn default_sample_ratio() -> f64 {
    1.0
}

fn default_queue_size() -> usize {
    DEFAULT_QUEUE_SIZE
}

fn default_export_timeout() -> ConfigDuration {
    ConfigDuration(DEFAULT_EXPORT_TIMEOUT)
}

/// Headers the exporter sets itself, which a config may not override.
const RESERVED_HEADERS: &[&str] = &["content-type", "content-length", "host", "traceparent"];

impl TelemetryConfig {
    /// The URL spans are POSTed to: the endpoint with `/v1/traces` appended, if valid.
    pub fn traces_url(&self) -> Result<reqwest::Url, String> {
        let base = self.endpoint.trim_end_matches('/');
        let full = if base.ends_with("/v1/traces") {
            base.to_owned()
        } else {
            format!("{base}/v1/traces")
        };
        let url = reqwest::Url::parse(&full).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "scheme {}:// is not supported; OTLP/HTTP needs http:// or https://",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("the URL has no host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "credentials do not belong in the URL; give them as a header reference in telemetry.headers"
                    .into(),
            );
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("the URL may not have a query or fragment".into());
        }
        Ok(url)
    }

    /// Every problem with this section, with its location; warnings go to `warnings`.
    pub fn validate(
        &self,
        secrets: &crate::secrets::SecretsConfig,
        out: &mut Vec<Problem>,
        warnings: &mut Vec<super::Warning>,
    ) {
        let problem = |field: &str, message: String| Problem {
            path: format!("telemetry.{field}"),
            line: None,
            message,
        };
        if let Err(e) = self.traces_url() {
            out.push(problem("endpoint", format!("{:?}: {e}", self.endpoint)));
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            out.push(problem(
                "sample_ratio",
                format!(
                    "{} is not between 0 and 1 (1 records every trace, 0.1 one in ten)",
                    self.sample_ratio
                ),
            ));
        }
        if self.queue_size == 0 || self.queue_size > MAX_QUEUE_SIZE {
            out.push(problem(
                "queue_size",
                format!("must be between 1 and {MAX_QUEUE_SIZE} spans"),
            ));
        }
        let t = self.export_timeout.0;
        if t.is_zero() || t > MAX_EXPORT_TIMEOUT {
            out.push(problem(
                "export_timeout",
                format!(
                    "must be above 0 and at most {}s",
                    MAX_EXPORT_TIMEOUT.as_secs()
                ),
            ));
        }
        let name = self.service_name.trim();
        if name.is_empty() || name.len() > 128 {
            out.push(problem(
                "service_name",
                "must be 1 to 128 characters".into(),
            ));
        }
        if self.headers.len() > MAX_HEADERS {
            out.push(problem("headers", format!("at most {MAX_HEADERS} headers")));
        }
        for (name, value) in &self.headers {
            let at = format!("headers.{name}");
            let lower = name.to_ascii_lowercase();
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                out.push(problem(&at, "not a valid HTTP header name".into()));
            } else if RESERVED_HEADERS.contains(&lower.as_str()) {
                out.push(problem(&at, "set by the exporter itself".into()));
            }
            match CredentialRef::parse(value) {
                Ok(r) => {
                    if let Some(w) = r.warning() {
                        warnings.push(super::Warning {
                            path: format!("telemetry.{at}"),
                            message: w,
                        });
                    }
                    if let Some(m) = secrets.missing_backend(&r) {
                        out.push(problem(&at, m.to_owned()));
                    }
                }
                Err(e) => out.push(problem(&at, e.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> TelemetryConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn problems(c: &TelemetryConfig) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        c.validate(&Default::default(), &mut out, &mut warnings);
        out
    }

    #[test]
    fn defaults_and_the_traces_path() {
        let c = section(r#"endpoint = "http://collector:4318""#);
        assert_eq!(c.service_name, "tollgate");
        assert!((c.sample_ratio - 1.0).abs() < f64::EPSILON);
        assert_eq!(c.queue_size, DEFAULT_QUEUE_SIZE);
        assert_eq!(c.export_timeout.0, DEFAULT_EXPORT_TIMEOUT);
        assert_eq!(
            c.traces_url().unwrap().as_str(),
            "http://collector:4318/v1/traces"
        );
        let c = section(r#"endpoint = "https://otlp.example.com/v1/traces/""#);
        assert_eq!(
            c.traces_url().unwrap().as_str(),
            "https://otlp.example.com/v1/traces"
        );
        assert!(problems(&c).is_empty());
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let c = section(
            r#"
            endpoint = "grpc://collector:4317"
            sample_ratio = 1.5
            queue_size = 0
            export_timeout = "5m"
            service_name = " "
            headers = { authorization = "Bearer abc123", "bad header" = "file:///run/secrets/x", host = "file:///run/secrets/h" }
            "#,
        );
        let p = problems(&c);
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "telemetry.endpoint",
            "telemetry.sample_ratio",
            "telemetry.queue_size",
            "telemetry.export_timeout",
            "telemetry.service_name",
            "telemetry.headers.authorization",
            "telemetry.headers.bad header",
            "telemetry.headers.host",
        ] {
            assert!(paths.contains(&want), "{want} missing from {p:?}");
        }
        // A literal token is refused without being echoed.
        assert!(!p.iter().any(|p| p.message.contains("abc123")), "{p:?}");
    }

    #[test]
    fn urls_with_credentials_or_no_host_are_refused() {
        for bad in [
            "http://user:pw@collector:4318",
            "http://collector:4318?token=x",
            "collector:4318",
            "not a url",
        ] {
            let c = section(&format!("endpoint = {bad:?}"));
            assert_eq!(problems(&c).len(), 1, "{bad}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(
            toml::from_str::<TelemetryConfig>("endpoint = \"http://c:4318\"\nsampler = 1").is_err()
        );
    }
}
