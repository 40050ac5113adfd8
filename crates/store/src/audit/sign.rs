//! Signed checkpoints of audit chains (Ed25519).
//!
//! A checkpoint says "instance I's chain had record `seq` with hash `h` at time `t`", signed
//! with the deployment's audit signing key, which lives sealed in the keystore. Kept outside
//! the database (`tollgate audit checkpoint --out`), it proves that records up to `seq` were
//! neither altered nor cut off, even by someone who can rewrite the whole database.

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier, VerifyingKey};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::keystore::Keystore;
use crate::{Result, StoreError};

/// Keystore name of the audit signing key.
pub const SIGNING_KEY_NAME: &str = "tollgate/audit-signing-key";
/// Domain separator of signed checkpoint messages.
const CHECKPOINT_DOMAIN: &str = "tollgate-audit-checkpoint/v1";

/// A signed statement of a chain's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The chain.
    pub instance: String,
    /// Sequence number of the record vouched for.
    pub seq: u64,
    /// That record's hash, hex.
    pub hash: String,
    /// When it was signed.
    pub time: DateTime<Utc>,
    /// Ed25519 public key, hex.
    pub public_key: String,
    /// Ed25519 signature over [`Checkpoint::message`], hex.
    pub signature: String,
}

impl Checkpoint {
    /// The signed bytes.
    pub fn message(instance: &str, seq: u64, hash_hex: &str, time: DateTime<Utc>) -> Vec<u8> {
        format!(
            "{CHECKPOINT_DOMAIN}\n{instance}\n{seq}\n{hash_hex}\n{}",
            crate::to_millis(time)
        )
        .into_bytes()
    }

    /// Check the signature against `trusted` (or, if None, the embedded public key, which only
    /// proves internal consistency). Returns why it fails.
    pub fn check(&self, trusted: Option<&VerifyingKey>) -> std::result::Result<(), String> {
        let embedded = decode_key(&self.public_key)?;
        if let Some(t) = trusted {
            if t.as_bytes() != embedded.as_bytes() {
                return Err("signed by a key other than this deployment's audit key".to_owned());
            }
        }
        let sig_bytes: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| "signature is not 64 hex-encoded bytes".to_owned())?;
        let sig = Signature::from_bytes(&sig_bytes);
        let msg = Self::message(&self.instance, self.seq, &self.hash, self.time);
        embedded
            .verify(&msg, &sig)
            .map_err(|_| "signature does not verify".to_owned())
    }

    /// The hash as bytes, if well-formed.
    pub fn hash_bytes(&self) -> Option<[u8; 32]> {
        hex::decode(&self.hash).ok().and_then(|b| b.try_into().ok())
    }
}

fn decode_key(hex_key: &str) -> std::result::Result<VerifyingKey, String> {
    let bytes: [u8; 32] = hex::decode(hex_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "public key is not 32 hex-encoded bytes".to_owned())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "public key is not a valid Ed25519 key".to_owned())
}

/// The audit signing key.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field(
                "public_key",
                &hex::encode(self.key.verifying_key().as_bytes()),
            )
            .finish()
    }
}

impl Signer {
    /// A signer from raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&bytes),
        }
    }

    /// A fresh random key (tests, or a keystore-less harness).
    pub fn generate() -> Self {
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        Self::from_bytes(b)
    }

    /// Load the deployment's key from the keystore, creating it on first use.
    pub async fn load_or_create(keystore: &Keystore) -> Result<Self> {
        if let Some(s) = keystore.get(SIGNING_KEY_NAME).await? {
            let bytes: [u8; 32] = hex::decode(s.expose_secret().trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or(StoreError::Corrupt {
                    what: "audit signing key in the keystore",
                })?;
            return Ok(Self::from_bytes(bytes));
        }
        let signer = Self::generate();
        let text = SecretString::from(hex::encode(signer.key.to_bytes()));
        keystore.set(SIGNING_KEY_NAME, &text).await?;
        // Read back so two processes starting together agree on one key.
        match keystore.get(SIGNING_KEY_NAME).await? {
            Some(s) => {
                let bytes: [u8; 32] = hex::decode(s.expose_secret().trim())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or(StoreError::Corrupt {
                        what: "audit signing key in the keystore",
                    })?;
                Ok(Self::from_bytes(bytes))
            }
            None => Ok(signer),
        }
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Sign a checkpoint of `instance` at (`seq`, `hash`).
    pub fn checkpoint(&self, instance: &str, seq: u64, hash: &[u8; 32]) -> Checkpoint {
        let time = crate::now();
        let hash_hex = hex::encode(hash);
        let sig = self
            .key
            .sign(&Checkpoint::message(instance, seq, &hash_hex, time));
        Checkpoint {
            instance: instance.to_owned(),
            seq,
            hash: hash_hex,
            time,
            public_key: hex::encode(self.key.verifying_key().as_bytes()),
            signature: hex::encode(sig.to_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_and_any_change_breaks_it() {
        let s = Signer::generate();
        let cp = s.checkpoint("gw-1", 42, &[9; 32]);
        let vk = s.verifying_key();
        assert!(cp.check(Some(&vk)).is_ok());
        let mut bad = cp.clone();
        bad.seq = 41;
        assert!(bad.check(Some(&vk)).is_err());
        let mut bad = cp.clone();
        bad.hash = hex::encode([8u8; 32]);
        assert!(bad.check(Some(&vk)).is_err());
        let other = Signer::generate();
        let forged = other.checkpoint("gw-1", 42, &[9; 32]);
        assert!(forged.check(None).is_ok());
        assert!(forged.check(Some(&vk)).is_err());
        let mut junk = cp;
        junk.signature = "zz".to_owned();
        assert!(junk.check(Some(&vk)).is_err());
    }
}
