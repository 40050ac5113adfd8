//! Versioned prompts and their environments (checklist DO-3, DO-4).
//!
//! A prompt is stored as immutable [`PromptVersion`]s: each change gets the next version
//! number, its author, time, a content hash and the diff from the version before. Two
//! environments, [`PromptEnv::Staging`] and [`PromptEnv::Production`], point at versions
//! through an append-only deployment log ([`Deployment`]); the latest entry per prompt and
//! environment is the version in force, so a promotion or rollback is one atomic insert and
//! the log is the history of what ran where. Every gateway instance reads
//! [`PromptStore::deployed`] every few hundred milliseconds.
//!
//! The store does not interpret the content (canonical JSON written by the gateway crate's
//! `prompt` module); it only keeps it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::Result;

/// An environment a prompt version can be deployed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptEnv {
    /// What staging keys (`tg_test_`) are served.
    Staging,
    /// What production keys (`tg_live_`) are served.
    Production,
}

impl PromptEnv {
    /// Both environments.
    pub const ALL: [Self; 2] = [Self::Staging, Self::Production];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }

    /// Parse a stored or typed name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// The recorded outcome of an evaluation suite run against a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvalRecord {
    /// Whether every case passed.
    pub passed: bool,
    /// The report (JSON text written by the CLI).
    pub report: String,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

/// One immutable version of a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptVersion {
    /// Prompt name.
    pub name: String,
    /// Version number, from 1.
    pub version: i64,
    /// Canonical content (JSON text).
    pub content: String,
    /// Hex SHA-256 of `content`.
    pub content_hash: String,
    /// Who created it (admin credential id).
    pub author: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Unified line diff from the previous version (empty for version 1).
    pub diff: String,
    /// The latest evaluation recorded on this version, if any.
    pub eval: Option<EvalRecord>,
}

/// A version to store: everything but the number, which the store assigns.
#[derive(Debug, Clone)]
pub struct NewPromptVersion<'a> {
    /// Prompt name.
    pub name: &'a str,
    /// Canonical content.
    pub content: &'a str,
    /// Hex SHA-256 of the content.
    pub content_hash: &'a str,
    /// Author.
    pub author: &'a str,
    /// Diff from the previous version.
    pub diff: &'a str,
    /// When.
    pub at: DateTime<Utc>,
}

/// One entry of the deployment log: `version` went into `env`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployment {
    /// Prompt name.
    pub name: String,
    /// Environment.
    pub env: PromptEnv,
    /// Position in this prompt's and environment's log, from 1.
    pub seq: i64,
    /// Version deployed.
    pub version: i64,
    /// Who did it.
    pub set_by: String,
    /// When.
    pub set_at: DateTime<Utc>,
    /// `push`, `promote` or `rollback`.
    pub action: String,
}

/// The version in force for one prompt in one environment, with its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// Prompt name.
    pub name: String,
    /// Environment.
    pub env: PromptEnv,
    /// Version in force.
    pub version: i64,
    /// Its content.
    pub content: String,
}

/// Prompt persistence.
#[async_trait]
pub trait PromptStore: Send + Sync {
    /// Store the next version of a prompt and point staging at it, in one transaction.
    async fn add_prompt_version(&self, v: &NewPromptVersion<'_>) -> Result<PromptVersion>;
    /// Every version of a prompt, oldest first.
    async fn prompt_versions(&self, name: &str) -> Result<Vec<PromptVersion>>;
    /// One version.
    async fn prompt_version(&self, name: &str, version: i64) -> Result<Option<PromptVersion>>;
    /// Record an evaluation on a version; false if there is no such version.
    async fn record_prompt_eval(&self, name: &str, version: i64, eval: &EvalRecord)
    -> Result<bool>;
    /// Point `env` at `version` (an existing version), appending to the deployment log.
    async fn deploy_prompt(
        &self,
        name: &str,
        env: PromptEnv,
        version: i64,
        by: &str,
        action: &str,
    ) -> Result<Deployment>;
    /// The deployment log of one prompt, oldest first.
    async fn prompt_deployments(&self, name: &str) -> Result<Vec<Deployment>>;
    /// The version in force for every prompt and environment (what the gateways serve).
    async fn deployed_prompts(&self) -> Result<Vec<Deployed>>;
}
