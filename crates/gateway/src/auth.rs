//! Authentication of data-plane calls with virtual keys (checklist AC-2).
//!
//! There is no switch to turn this off. The presented key is checksum-verified before any
//! lookup, then found by its HMAC. Records are cached for [`KEY_CACHE_TTL`] so the hot path
//! rarely touches the store, while a revocation written by the CLI or another instance
//! reaches this one within a second. Last-use times are batched off the request path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::time::Instant;
use tollgate_store::KeyStore;
use tollgate_store::key::{KeyFormatError, KeyHash, KeyHasher, KeyRecord, KeyState, VirtualKey};

use crate::error::GatewayError;

/// How long a key record is trusted before it is re-read (bounds revocation latency).
pub const KEY_CACHE_TTL: Duration = Duration::from_millis(500);
/// Cache size bound; beyond it the cache is cleared rather than grown.
pub const MAX_CACHED_KEYS: usize = 100_000;
/// Longest header value considered as a key (anything longer cannot be a key).
pub const MAX_KEY_HEADER_BYTES: usize = 256;

/// Why authentication failed, for metrics (never shown with key material).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No key.
    Missing,
    /// Not a tollgate key or bad checksum.
    Malformed,
    /// Not in the store.
    Unknown,
    /// Past expiry.
    Expired,
    /// Revoked.
    Revoked,
}

impl AuthFailure {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// Authenticates requests against the key store.
pub struct Authenticator {
    store: Arc<dyn KeyStore>,
    hasher: KeyHasher,
    cache: Mutex<HashMap<KeyHash, (Arc<KeyRecord>, Instant)>>,
    touched: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator")
    }
}

/// The presented credential text: `Authorization: Bearer …` first, then `x-api-key`.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?.trim();
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .map(str::trim)
            .unwrap_or_default();
        if !token.is_empty() {
            return Some(token);
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl Authenticator {
    /// The key hasher (also used for admin credentials).
    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    /// Authenticator over `store`, hashing with `hasher`.
    pub fn new(store: Arc<dyn KeyStore>, hasher: KeyHasher) -> Self {
        Self {
            store,
            hasher,
            cache: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// Authenticate a request by its headers.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<Arc<KeyRecord>, (GatewayError, AuthFailure)> {
        let Some(text) = presented(headers) else {
            return Err((GatewayError::missing_key(), AuthFailure::Missing));
        };
        if text.len() > MAX_KEY_HEADER_BYTES {
            return Err((
                GatewayError::invalid_key("malformed API key"),
                AuthFailure::Malformed,
            ));
        }
        let key = VirtualKey::parse(text).map_err(|e| {
            let msg = match e {
                KeyFormatError::Prefix => "invalid API key: not a tollgate key (tg_live_… or tg_test_…); provider keys are never accepted here".to_owned(),
                other => format!("invalid API key: {other}"),
            };
            (GatewayError::invalid_key(msg), AuthFailure::Malformed)
        })?;
        let hash = self.hasher.hash(&key);
        let record = self.lookup(hash).await?;
        let now = Utc::now();
        match record.state(now) {
            KeyState::Active => {}
            KeyState::Expired => {
                return Err((
                    GatewayError::invalid_key(format!("API key {} has expired", record.id)),
                    AuthFailure::Expired,
                ));
            }
            KeyState::Revoked => {
                return Err((
                    GatewayError::invalid_key(format!("API key {} has been revoked", record.id)),
                    AuthFailure::Revoked,
                ));
            }
        }
        self.touched.lock().insert(record.id.clone(), now);
        Ok(record)
    }

    async fn lookup(&self, hash: KeyHash) -> Result<Arc<KeyRecord>, (GatewayError, AuthFailure)> {
        if let Some((rec, at)) = self.cache.lock().get(&hash) {
            if at.elapsed() < KEY_CACHE_TTL {
                return Ok(rec.clone());
            }
        }
        let found = self.store.key_by_hash(&hash).await.map_err(|e| {
            tracing::error!(error = %e, "key store lookup failed");
            (
                GatewayError::internal("key store unavailable"),
                AuthFailure::Unknown,
            )
        })?;
        let Some(rec) = found else {
            self.cache.lock().remove(&hash);
            return Err((
                GatewayError::invalid_key("invalid API key: unknown key"),
                AuthFailure::Unknown,
            ));
        };
        let rec = Arc::new(rec);
        let mut cache = self.cache.lock();
        if cache.len() >= MAX_CACHED_KEYS {
            cache.clear();
        }
        cache.insert(hash, (rec.clone(), Instant::now()));
        Ok(rec)
    }

    /// Write batched last-use times to the store.
    pub async fn flush_last_used(&self) {
        let batch: Vec<(String, DateTime<Utc>)> = self.touched.lock().drain().collect();
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.store.touch_keys(&batch).await {
            tracing::warn!(error = %e, "could not record key last-use times");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn key_is_taken_from_bearer_then_x_api_key() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert("x-api-key", HeaderValue::from_static("tg_b"));
        assert_eq!(presented(&h), Some("tg_b"));
        h.insert("authorization", HeaderValue::from_static("Bearer tg_a"));
        assert_eq!(presented(&h), Some("tg_a"));
        h.insert("authorization", HeaderValue::from_static("Basic xyz"));
        assert_eq!(presented(&h), Some("tg_b"));
        h.insert("authorization", HeaderValue::from_static("Bearer "));
        assert_eq!(presented(&h), Some("tg_b"));
    }
}
