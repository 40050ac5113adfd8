//! The embedded keystore: provider credentials sealed at rest.
//!
//! Values are sealed with XChaCha20-Poly1305 under a key derived from the master key, with a
//! random 192-bit nonce per write and the secret's name as associated data, so a sealed value
//! copied onto another name fails to open instead of silently swapping credentials.

use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::master::MasterKey;
use crate::{SecretStore, StoreError};

/// Longest accepted secret name.
pub const MAX_NAME_LEN: usize = 128;
/// Largest accepted secret value (a PEM bundle or service-account JSON fits easily).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Seals and opens keystore values on top of a [`SecretStore`].
#[derive(Clone)]
pub struct Keystore {
    store: Arc<dyn SecretStore>,
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Keystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keystore")
    }
}

/// Whether `name` is an acceptable keystore name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
}

impl Keystore {
    /// Keystore over `store`, sealing with a key derived from `master`.
    pub fn new(store: Arc<dyn SecretStore>, master: &MasterKey) -> Self {
        let key = master.keystore_key();
        Self {
            store,
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// Seal and store `value` under `name`, replacing any previous value.
    pub async fn set(&self, name: &str, value: &SecretString) -> Result<(), StoreError> {
        if !valid_name(name) {
            return Err(StoreError::BadSecretName(name.to_owned()));
        }
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.expose_secret().as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Decrypt {
                name: name.to_owned(),
            })?;
        self.store.put_sealed(name, &nonce, &sealed).await
    }

    /// Open the value stored under `name`, if any.
    pub async fn get(&self, name: &str) -> Result<Option<SecretString>, StoreError> {
        let Some((nonce, sealed)) = self.store.get_sealed(name).await? else {
            return Ok(None);
        };
        let fail = || StoreError::Decrypt {
            name: name.to_owned(),
        };
        if nonce.len() != 24 {
            return Err(fail());
        }
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| fail())?;
        let text = String::from_utf8(plain).map_err(|_| fail())?;
        Ok(Some(SecretString::from(text)))
    }

    /// Names of stored secrets.
    pub async fn names(&self) -> Result<Vec<String>, StoreError> {
        self.store.secret_names().await
    }

    /// Delete a secret.
    pub async fn delete(&self, name: &str) -> Result<bool, StoreError> {
        self.store.delete_secret(name).await
    }
}
