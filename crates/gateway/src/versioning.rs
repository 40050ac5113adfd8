//! The steps shared by every way of changing a versioned subject (a prompt, or a route's
//! targets stored as `route:ALIAS`, DO-3): pushing a new staging version, diffing two
//! versions, recording an evaluation. The admin API (`/admin/v1/{prompts,routes}/…`) and the
//! CLI working on the store (`tollgate prompts`, `tollgate routes`) both call these, so a
//! version pushed or evaluated either way is the same row with the same hash and diff. Who
//! may do it and the audit record stay with the caller, which knows the credential.

use tollgate_store::StoreError;
use tollgate_store::prompt::{EvalRecord, NewPromptVersion, PromptEnv, PromptStore};

use crate::prompt::{content_hash, deployed_version, line_diff};

/// Largest evaluation report recorded on a version (the JSON a suite run produced).
pub const MAX_EVAL_REPORT_BYTES: usize = 1024 * 1024;

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The latest version already has this content: nothing was written.
    Unchanged(i64),
    /// A new version, now in staging.
    Added(i64),
}

impl Pushed {
    /// The version that holds the content now.
    pub fn version(self) -> i64 {
        match self {
            Self::Unchanged(v) | Self::Added(v) => v,
        }
    }
}

/// Store canonical `content` of the subject stored as `key` as its next version, by
/// `author`, and point staging at it, unless the latest version already has it. Returns what
/// happened and the content's hex SHA-256.
pub async fn push(
    store: &dyn PromptStore,
    key: &str,
    content: &str,
    author: &str,
) -> Result<(Pushed, String), StoreError> {
    let hash = content_hash(content);
    let versions = store.prompt_versions(key).await?;
    if let Some(last) = versions.last().filter(|v| v.content_hash == hash) {
        return Ok((Pushed::Unchanged(last.version), hash));
    }
    let diff = versions
        .last()
        .map(|v| line_diff(&v.content, content))
        .unwrap_or_default();
    let v = store
        .add_prompt_version(&NewPromptVersion {
            name: key,
            content,
            content_hash: &hash,
            author,
            diff: &diff,
            at: tollgate_store::now(),
        })
        .await?;
    Ok((Pushed::Added(v.version), hash))
}

/// Two versions of a subject and the line diff between them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diff {
    /// From this version (0: nothing, before the first).
    pub from: i64,
    /// To this version.
    pub to: i64,
    /// `-`/`+`/` ` prefixed lines; empty when the two are the same.
    pub diff: String,
}

/// Why a diff could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// The subject has no version at all.
    #[error("no versions")]
    NoSubject,
    /// A version asked for does not exist.
    #[error("no version {0}")]
    NoVersion(i64),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The diff of the subject stored as `key` from `from` to `to`. Defaults: `to` is the latest
/// version; `from` is the production version when that differs from `to`, else the version
/// before `to` (0, the empty text, before the first) — so with neither given it shows what a
/// promotion would change.
pub async fn diff(
    store: &dyn PromptStore,
    key: &str,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Diff, DiffError> {
    let versions = store.prompt_versions(key).await?;
    let Some(last) = versions.last() else {
        return Err(DiffError::NoSubject);
    };
    let to = to.unwrap_or(last.version);
    let from = match from {
        Some(f) => f,
        None => {
            let log = store.prompt_deployments(key).await?;
            deployed_version(&log, PromptEnv::Production)
                .filter(|v| *v != to)
                .unwrap_or(to - 1)
        }
    };
    let text = |v: i64| {
        if v == 0 {
            return Ok(String::new());
        }
        versions
            .iter()
            .find(|x| x.version == v)
            .map(|x| x.content.clone())
            .ok_or(DiffError::NoVersion(v))
    };
    // `to` first: with `from` defaulted from it, an unknown `to` is what to report.
    let new = text(to)?;
    let old = text(from)?;
    Ok(Diff {
        from,
        to,
        diff: line_diff(&old, &new),
    })
}

/// Why an evaluation could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The version does not exist.
    #[error("no version {0}")]
    NoVersion(i64),
    /// The report is larger than [`MAX_EVAL_REPORT_BYTES`].
    #[error("the report is larger than {MAX_EVAL_REPORT_BYTES} bytes")]
    TooLarge,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Record on `version` of the subject stored as `key` that its evaluation `passed`, with the
/// suite's `report` (JSON text): what `promote` checks.
pub async fn record_eval(
    store: &dyn PromptStore,
    key: &str,
    version: i64,
    passed: bool,
    report: &str,
) -> Result<(), EvalError> {
    if report.len() > MAX_EVAL_REPORT_BYTES {
        return Err(EvalError::TooLarge);
    }
    let found = store
        .record_prompt_eval(
            key,
            version,
            &EvalRecord {
                passed,
                report: report.to_owned(),
                at: tollgate_store::now(),
            },
        )
        .await?;
    if found {
        Ok(())
    } else {
        Err(EvalError::NoVersion(version))
    }
}
