//! The admin API client the CLI uses when pointed at a running gateway (`--gateway URL`,
//! `TOLLGATE_GATEWAY`): keys (and their rotation audit), kill switches, prompt and route
//! versions (push, diff, evaluation results, promotion, rollback), the review queue, drift and
//! audit export go over `/admin/v1/…` with an admin credential instead of opening the store,
//! so an operator needs neither the database nor the master key, and the gateway checks the
//! role and audits the action.
//!
//! Every failure is an error (exit 2) that says what happened: a 401 names the credential as
//! the problem, a 403 carries the gateway's message naming the permission and the roles
//! that hold it.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::setup::{AdminArgs, GlobalArgs};

/// How long one admin call may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest admin API response read (an audit export page is the largest).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A client of one gateway's admin API with one credential.
pub struct AdminClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl AdminClient {
    /// The client for `--gateway`, if one is given; the credential is `--admin-key`
    /// (`TOLLGATE_ADMIN_KEY`), else the command's own `--admin-token` / `--admin-token-file`.
    pub fn from_args(global: &GlobalArgs, admin: Option<&AdminArgs>) -> Result<Option<Self>> {
        let Some(base) = global.gateway.as_deref() else {
            return Ok(None);
        };
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--gateway must be an http:// or https:// URL, like http://127.0.0.1:8787");
        }
        let token = match (
            &global.admin_key,
            admin.and_then(|a| a.admin_token_file.as_ref()),
            admin.and_then(|a| a.admin_token.as_ref()),
        ) {
            (Some(k), _, _) => k.expose().to_owned(),
            (None, Some(p), _) => std::fs::read_to_string(p)
                .with_context(|| format!("reading {}", p.display()))?
                .trim()
                .to_owned(),
            (None, None, Some(t)) => t.trim().to_owned(),
            (None, None, None) => bail!(
                "--gateway needs an admin credential: pass --admin-key or set TOLLGATE_ADMIN_KEY (a tg_admin_… credential)"
            ),
        };
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tollgate-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Some(Self { base, token, http }))
    }

    /// `GET path` (with its query).
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.http.get(self.url(path)), "GET", path).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(self.http.post(self.url(path)).json(body), "POST", path)
            .await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.send(self.http.delete(self.url(path)), "DELETE", path)
            .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, rb: reqwest::RequestBuilder, method: &str, path: &str) -> Result<Value> {
        let resp = rb
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("calling the gateway's admin API at {}", self.base))?;
        let status = resp.status();
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            bail!(
                "the gateway's answer to {method} {path} is larger than {MAX_RESPONSE_BYTES} bytes"
            );
        }
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("reading the answer to {method} {path}"))?;
        if bytes.len() > MAX_RESPONSE_BYTES {
            bail!(
                "the gateway's answer to {method} {path} is larger than {MAX_RESPONSE_BYTES} bytes"
            );
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let message = body["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
        match status.as_u16() {
            401 => bail!(
                "the gateway refused the admin credential ({message}); pass a valid tg_admin_… credential with --admin-key or TOLLGATE_ADMIN_KEY"
            ),
            403 => bail!("permission denied by the gateway: {message}"),
            404 if body.is_null() => bail!(
                "{method} {path}: the gateway at {} has no such admin endpoint (is it an older version?)",
                self.base
            ),
            s => bail!("{message} (HTTP {s} from {method} {path})"),
        }
    }
}

/// `s` as one path segment: everything but unreserved characters percent-encoded, so an id
/// can never add a path segment or a query; `.` and `..` (which URLs resolve, encoded or not)
/// and the empty string are refused.
pub fn segment(s: &str) -> Result<String> {
    if s.is_empty() || s == "." || s == ".." {
        bail!("{s:?} is not a valid name or id");
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_escape_the_path() {
        assert_eq!(segment("key_abc-1.2").unwrap(), "key_abc-1.2");
        assert_eq!(segment("a/b?c#d").unwrap(), "a%2Fb%3Fc%23d");
        assert_eq!(segment("é").unwrap(), "%C3%A9");
        for bad in ["", ".", ".."] {
            assert!(segment(bad).is_err(), "{bad:?}");
        }
    }
}
