//! Audit payloads sealed with per-day data keys (envelope encryption).
//!
//! Each UTC day gets a random 256-bit data key, stored only wrapped (XChaCha20-Poly1305) by a
//! key derived from the master key. Payloads are sealed under their day's key with the
//! request id, class and digest as associated data, so a payload moved onto another request
//! fails to open. Destroying a day key makes that day's payloads unreadable for good
//! (crypto-shredding), even in backups taken before the purge.

use std::collections::HashMap;
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::AuditStore;
use crate::{Result, StoreError};

/// Largest payload stored; a larger one is recorded by digest only (and the record says so).
pub const MAX_PAYLOAD_BYTES: usize = 8 * 1024 * 1024;

/// Which retention class a payload belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PayloadKind {
    /// The request as sent to the provider (after masking).
    Prompt,
    /// The response as returned to the client.
    Completion,
    /// Embedding inputs as sent to the provider.
    EmbeddingInput,
    /// Embedding vectors as returned (stored only if a route asks).
    EmbeddingVector,
    /// The prompt before masking (stored only if a route explicitly asks).
    OriginalPrompt,
}

impl PayloadKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::Prompt,
        Self::Completion,
        Self::EmbeddingInput,
        Self::EmbeddingVector,
        Self::OriginalPrompt,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prompt => "prompt",
            Self::Completion => "completion",
            Self::EmbeddingInput => "embedding_input",
            Self::EmbeddingVector => "embedding_vector",
            Self::OriginalPrompt => "original_prompt",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A payload sealed under its day key.
#[derive(Clone)]
pub struct SealedPayload {
    /// Retention class.
    pub kind: PayloadKind,
    /// SHA-256 of the plaintext (what the chain record references).
    pub digest: [u8; 32],
    /// UTC day of the data key, `YYYY-MM-DD`.
    pub day: String,
    /// When it was stored.
    pub time: DateTime<Utc>,
    /// AEAD nonce.
    pub nonce: [u8; 24],
    /// Ciphertext with tag.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for SealedPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedPayload")
            .field("kind", &self.kind)
            .field("day", &self.day)
            .field("bytes", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The UTC day of `t`, as day keys are named.
pub fn day_of(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

fn aad(request_id: &str, kind: PayloadKind, digest: &[u8; 32]) -> Vec<u8> {
    format!(
        "tollgate-audit-payload/v1\n{request_id}\n{}\n{}",
        kind.as_str(),
        hex::encode(digest)
    )
    .into_bytes()
}

fn day_aad(day: &str) -> Vec<u8> {
    format!("tollgate-audit-day-key/v1\n{day}").into_bytes()
}

fn seal_with(
    cipher: &XChaCha20Poly1305,
    day: String,
    request_id: &str,
    kind: PayloadKind,
    time: DateTime<Utc>,
    plaintext: &[u8],
) -> Result<SealedPayload> {
    let d = digest(plaintext);
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad(request_id, kind, &d),
            },
        )
        .map_err(|_| StoreError::Corrupt {
            what: "audit payload (seal)",
        })?;
    Ok(SealedPayload {
        kind,
        digest: d,
        day,
        time,
        nonce,
        ciphertext,
    })
}

/// Seals and opens payloads, creating, caching and unwrapping day keys through the store.
#[derive(Clone)]
pub struct Keyring {
    wrap: XChaCha20Poly1305,
    store: Arc<dyn AuditStore>,
    days: Arc<Mutex<HashMap<String, XChaCha20Poly1305>>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring")
    }
}

impl Keyring {
    /// A keyring wrapping day keys with `wrap_key` (from [`crate::master::MasterKey`]).
    pub fn new(store: Arc<dyn AuditStore>, wrap_key: [u8; 32]) -> Self {
        Self {
            wrap: XChaCha20Poly1305::new(&wrap_key.into()),
            store,
            days: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    async fn cipher_for(&self, day: &str, create: bool) -> Result<Option<XChaCha20Poly1305>> {
        if let Some(c) = self.days.lock().get(day) {
            return Ok(Some(c.clone()));
        }
        let mut stored = self.store.day_key(day).await?;
        if stored.is_none() && create {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            let mut nonce = [0u8; 24];
            rand::rngs::OsRng.fill_bytes(&mut nonce);
            let wrapped = self
                .wrap
                .encrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &key,
                        aad: &day_aad(day),
                    },
                )
                .map_err(|_| StoreError::Corrupt {
                    what: "audit day key (wrap)",
                })?;
            self.store.put_day_key(day, &nonce, &wrapped).await?;
            // Read back: another instance may have stored its key for this day first.
            stored = self.store.day_key(day).await?;
        }
        let Some(Some((nonce, wrapped))) = stored else {
            return Ok(None);
        };
        if nonce.len() != 24 {
            return Err(StoreError::Corrupt {
                what: "audit_day_keys.nonce",
            });
        }
        let key = self
            .wrap
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &wrapped,
                    aad: &day_aad(day),
                },
            )
            .map_err(|_| StoreError::Decrypt {
                name: format!("audit day key {day}"),
            })?;
        let key: [u8; 32] = key.try_into().map_err(|_| StoreError::Corrupt {
            what: "audit day key length",
        })?;
        let cipher = XChaCha20Poly1305::new(&key.into());
        self.days.lock().insert(day.to_owned(), cipher.clone());
        Ok(Some(cipher))
    }

    /// Seal `plaintext` for `request_id` under the key of `time`'s day.
    pub async fn seal(
        &self,
        request_id: &str,
        kind: PayloadKind,
        time: DateTime<Utc>,
        plaintext: &[u8],
    ) -> Result<SealedPayload> {
        let day = day_of(time);
        let cipher = self
            .cipher_for(&day, true)
            .await?
            .ok_or(StoreError::Corrupt {
                what: "audit day key was destroyed for the current day",
            })?;
        seal_with(&cipher, day, request_id, kind, time, plaintext)
    }

    /// Seal with a day key already in memory, without touching the store; `None` while the
    /// day's key has not been loaded (use [`Keyring::seal`] then). Request tasks use this to
    /// seal their own payloads in parallel rather than queue the work on the one writer.
    pub fn seal_cached(
        &self,
        request_id: &str,
        kind: PayloadKind,
        time: DateTime<Utc>,
        plaintext: &[u8],
    ) -> Option<Result<SealedPayload>> {
        let day = day_of(time);
        let cipher = self.days.lock().get(&day).cloned()?;
        Some(seal_with(&cipher, day, request_id, kind, time, plaintext))
    }

    /// Open a stored payload; `Ok(None)` if its day key was destroyed. The digest is checked
    /// against the plaintext, so a payload that opens is the one the chain references.
    pub async fn open(&self, request_id: &str, p: &SealedPayload) -> Result<Option<Vec<u8>>> {
        let Some(cipher) = self.cipher_for(&p.day, false).await? else {
            return Ok(None);
        };
        let plain = cipher
            .decrypt(
                XNonce::from_slice(&p.nonce),
                Payload {
                    msg: &p.ciphertext,
                    aad: &aad(request_id, p.kind, &p.digest),
                },
            )
            .map_err(|_| StoreError::Decrypt {
                name: format!("audit payload {} of {request_id}", p.kind.as_str()),
            })?;
        if digest(&plain) != p.digest {
            return Err(StoreError::Corrupt {
                what: "audit payload digest",
            });
        }
        Ok(Some(plain))
    }

    /// Forget cached day keys (after a purge destroyed some).
    pub fn forget(&self) {
        self.days.lock().clear();
    }
}
