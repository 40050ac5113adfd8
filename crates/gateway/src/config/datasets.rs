//! `[datasets]`: where the fine-tuning file and job endpoints (`/v1/files`,
//! `/v1/fine_tuning/jobs`) are proxied, and how large an upload may be (AC-3, data-steward).
//!
//! Training data is the most sensitive thing a team sends a provider, so these endpoints are
//! off unless this section names the provider that receives it, and only keys bound to the
//! `data-steward` role may use them ([`crate::datasets`]).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Problem, ProviderConfig, ProviderKind};

/// Largest upload unless configured: 512 MiB, OpenAI's own limit on one file.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 512 * 1024 * 1024;
/// Smallest `max_upload_bytes` accepted (a fine-tuning file is never smaller).
pub const MIN_MAX_UPLOAD_BYTES: u64 = 1024;

/// `[datasets]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetsConfig {
    /// The provider (of kind `openai`) that files and fine-tuning jobs go to. One provider
    /// per gateway: file ids and job ids are that provider's, so they cannot be routed by
    /// model the way chat calls are.
    pub provider: String,
    /// Largest upload body in bytes (default 512 MiB); a larger one is refused with 413.
    /// Uploads are streamed to the provider, never held whole in memory.
    #[serde(default = "default_max_upload_bytes")]
    pub max_upload_bytes: u64,
    /// Teams bound to the `data-steward` role: each of their keys is a data steward unless
    /// the key itself is bound to another role (a key's own binding is the more specific).
    #[serde(default)]
    pub steward_teams: Vec<String>,
}

fn default_max_upload_bytes() -> u64 {
    DEFAULT_MAX_UPLOAD_BYTES
}

impl DatasetsConfig {
    /// Every problem with this section against the configured providers.
    pub fn validate(&self, providers: &BTreeMap<String, ProviderConfig>, out: &mut Vec<Problem>) {
        match providers.get(&self.provider) {
            None => out.push(Problem {
                path: "datasets.provider".into(),
                line: None,
                message: format!("{:?} is not a provider of this config", self.provider),
            }),
            Some(p) if p.kind != ProviderKind::Openai => out.push(Problem {
                path: "datasets.provider".into(),
                line: None,
                message: format!(
                    "{:?} is not of kind \"openai\"; only OpenAI-compatible providers serve /v1/files and /v1/fine_tuning/jobs",
                    self.provider
                ),
            }),
            Some(_) => {}
        }
        if self.max_upload_bytes < MIN_MAX_UPLOAD_BYTES {
            out.push(Problem {
                path: "datasets.max_upload_bytes".into(),
                line: None,
                message: format!("must be at least {MIN_MAX_UPLOAD_BYTES} bytes"),
            });
        }
        for (i, t) in self.steward_teams.iter().enumerate() {
            if t.trim().is_empty() {
                out.push(Problem {
                    path: format!("datasets.steward_teams[{i}]"),
                    line: None,
                    message: "a team name cannot be empty".into(),
                });
            }
        }
    }

    /// The data-plane role of a key: its own binding, else its team's.
    pub fn role_of<'a>(&self, role: Option<&'a str>, team: Option<&str>) -> Option<&'a str> {
        role.or_else(|| {
            team.is_some_and(|t| self.steward_teams.iter().any(|s| s == t))
                .then_some(crate::datasets::STEWARD_ROLE)
        })
    }
}
