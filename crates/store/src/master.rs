//! The master key: the one root secret of an installation.
//!
//! It lives in a 0600 file (by default `DATA_DIR/master.key`, or the file named by
//! `TOLLGATE_MASTER_KEY_FILE`, e.g. a mounted Kubernetes secret) and never in the database,
//! so a stolen database alone reveals neither provider credentials nor usable keys. Purpose
//! keys are derived from it with HKDF-SHA256 so that no two uses share key material.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;

use crate::StoreError;

/// The 32-byte root secret.
pub struct MasterKey {
    bytes: [u8; 32],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// What loading the master key found worth telling an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeyNote {
    /// A new key file was created.
    Created,
    /// The key file can be read by group or others.
    LoosePermissions(u32),
}

impl MasterKey {
    /// Build from raw bytes (tests, or keys supplied by a secrets manager).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self { bytes }
    }

    /// Load the key from `path`; if it does not exist and `create` is set, generate one and
    /// write it with mode 0600. The file holds 64 hex characters.
    pub fn load_or_create(
        path: &Path,
        create: bool,
    ) -> Result<(Self, Vec<MasterKeyNote>), StoreError> {
        let mut notes = Vec::new();
        if !path.exists() {
            if !create {
                return Err(StoreError::Io {
                    context: format!("master key file {}", path.display()),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            }
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|source| StoreError::Io {
                    context: format!("creating master key file {}", path.display()),
                    source,
                })?;
            file.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|source| StoreError::Io {
                    context: format!("writing master key file {}", path.display()),
                    source,
                })?;
            notes.push(MasterKeyNote::Created);
            return Ok((Self { bytes }, notes));
        }
        let meta = fs::metadata(path).map_err(|source| StoreError::Io {
            context: format!("master key file {}", path.display()),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            notes.push(MasterKeyNote::LoosePermissions(mode));
        }
        let text = fs::read_to_string(path).map_err(|source| StoreError::Io {
            context: format!("reading master key file {}", path.display()),
            source,
        })?;
        let bad = |reason| StoreError::BadMasterKey {
            path: path.display().to_string(),
            reason,
        };
        let raw = hex::decode(text.trim()).map_err(|_| bad("expected 64 hex characters"))?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| bad("expected 32 bytes (64 hex characters)"))?;
        Ok((Self { bytes }, notes))
    }

    fn derive(&self, info: &[u8]) -> [u8; 32] {
        let hk = Hkdf::<Sha256>::new(Some(b"tollgate"), &self.bytes);
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
        if hk.expand(info, &mut out).is_err() {
            out = [0; 32];
        }
        out
    }

    /// Pepper for the HMAC under which virtual keys and admin credentials are stored.
    pub fn key_pepper(&self) -> [u8; 32] {
        self.derive(b"tollgate/virtual-key-pepper/v1")
    }

    /// Key of the gateway's `hash` masking action (keyed, so hashed PII cannot be reversed by
    /// enumerating phone numbers).
    pub fn mask_hash_key(&self) -> [u8; 32] {
        self.derive(b"tollgate/mask-hash/v1")
    }

    /// Key of the per-record HMAC of the audit chain.
    pub fn audit_mac_key(&self) -> [u8; 32] {
        self.derive(b"tollgate/audit-mac/v1")
    }

    /// Key that wraps the audit payloads' per-day data keys.
    pub fn audit_wrap_key(&self) -> [u8; 32] {
        self.derive(b"tollgate/audit-payload-wrap/v1")
    }

    /// Key of the keystore's AEAD.
    pub fn keystore_key(&self) -> [u8; 32] {
        self.derive(b"tollgate/keystore/v1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_file_is_0600_and_reloads_to_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (a, notes) = MasterKey::load_or_create(&path, true).unwrap();
        assert_eq!(notes, vec![MasterKeyNote::Created]);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (b, notes) = MasterKey::load_or_create(&path, false).unwrap();
        assert!(notes.is_empty());
        assert_eq!(a.key_pepper(), b.key_pepper());
        assert_ne!(a.key_pepper(), a.keystore_key());
    }

    #[test]
    fn malformed_key_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(&path, "not hex").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = MasterKey::load_or_create(&path, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("64 hex"), "{err}");
        fs::write(&path, "abcd").unwrap();
        assert!(MasterKey::load_or_create(&path, false).is_err());
    }

    #[test]
    fn loose_permissions_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(&path, hex::encode([7u8; 32])).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let (_, notes) = MasterKey::load_or_create(&path, false).unwrap();
        assert_eq!(notes, vec![MasterKeyNote::LoosePermissions(0o644)]);
    }

    #[test]
    fn missing_file_without_create_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(MasterKey::load_or_create(&dir.path().join("nope"), false).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(
            format!("{:?}", MasterKey::from_bytes([9; 32])),
            "MasterKey([redacted])"
        );
    }
}
