//! Virtual keys: format, parsing, generation and the stored record.
//!
//! Format (DESIGN.md): `tg_live_` or `tg_test_`, then 30 random base62 characters, then a
//! 6-character base62 CRC32 of everything before it. The checksum lets the gateway reject a
//! typo or a truncated key without a store lookup, and lets scanners verify a hit. Keys are
//! stored only as HMAC-SHA256 under a server pepper, so a copy of the database does not
//! yield usable keys.

use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::class::DataClass;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Number of random base62 characters in a key.
pub const RANDOM_LEN: usize = 30;
/// Number of checksum characters at the end of a key.
pub const CHECKSUM_LEN: usize = 6;

/// Environment a key belongs to; staging keys resolve staging versions of prompts and routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Production traffic; keys start with `tg_live_`.
    Production,
    /// Staging and tests; keys start with `tg_test_`.
    Staging,
}

impl Environment {
    /// The key prefix for this environment.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Production => "tg_live_",
            Self::Staging => "tg_test_",
        }
    }

    /// Lower-case name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Staging => "staging",
        }
    }

    /// Parse `production`/`prod`/`live` or `staging`/`test`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "production" | "prod" | "live" => Some(Self::Production),
            "staging" | "stage" | "test" => Some(Self::Staging),
            _ => None,
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a virtual key. Deliberately coarse: the text is never echoed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    /// Not a `tg_live_`/`tg_test_` key at all.
    #[error("not a tollgate key (expected tg_live_… or tg_test_…)")]
    Prefix,
    /// Right prefix, wrong length or characters.
    #[error("malformed tollgate key (wrong length or characters)")]
    Shape,
    /// Well formed, but the checksum does not match: a typo or a truncated copy.
    #[error("tollgate key checksum mismatch (typo or truncated key)")]
    Checksum,
}

/// A syntactically valid virtual key whose checksum held. The text is secret.
pub struct VirtualKey {
    text: SecretString,
    environment: Environment,
}

impl fmt::Debug for VirtualKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VirtualKey({}…[redacted])", self.environment.prefix())
    }
}

fn checksum(body: &str) -> String {
    encode_base62_fixed(crc32fast::hash(body.as_bytes()) as u64, CHECKSUM_LEN)
}

fn encode_base62_fixed(mut n: u64, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Random base62 text of `len` characters from the OS CSPRNG.
pub fn random_base62(len: usize) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| BASE62[rng.gen_range(0..BASE62.len())] as char)
        .collect()
}

impl VirtualKey {
    /// Generate a fresh key for `environment`.
    pub fn generate(environment: Environment) -> Self {
        let body = format!("{}{}", environment.prefix(), random_base62(RANDOM_LEN));
        let text = format!("{body}{}", checksum(&body));
        Self {
            text: SecretString::from(text),
            environment,
        }
    }

    /// Parse and checksum-verify a presented key.
    pub fn parse(text: &str) -> Result<Self, KeyFormatError> {
        let environment = if text.starts_with(Environment::Production.prefix()) {
            Environment::Production
        } else if text.starts_with(Environment::Staging.prefix()) {
            Environment::Staging
        } else {
            return Err(KeyFormatError::Prefix);
        };
        let prefix_len = environment.prefix().len();
        if text.len() != prefix_len + RANDOM_LEN + CHECKSUM_LEN
            || !text.as_bytes()[prefix_len..]
                .iter()
                .all(u8::is_ascii_alphanumeric)
        {
            return Err(KeyFormatError::Shape);
        }
        let (body, sum) = text.split_at(prefix_len + RANDOM_LEN);
        if checksum(body) != sum {
            return Err(KeyFormatError::Checksum);
        }
        Ok(Self {
            text: SecretString::from(text.to_owned()),
            environment,
        })
    }

    /// The environment encoded in the prefix.
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// The full key text, for showing once at creation.
    pub fn expose(&self) -> &str {
        self.text.expose_secret()
    }

    /// A short, non-secret prefix shown in listings (`tg_live_AbC4`).
    pub fn display_prefix(&self) -> String {
        self.expose().chars().take(12).collect()
    }
}

/// Prefix of admin-plane credentials, distinct from data-plane keys so one can never be used
/// as the other.
pub const ADMIN_PREFIX: &str = "tg_admin_";

/// A new admin credential: `tg_admin_` + 30 random base62 + 6-character checksum.
pub fn new_admin_credential() -> SecretString {
    let body = format!("{ADMIN_PREFIX}{}", random_base62(RANDOM_LEN));
    SecretString::from(format!("{body}{}", checksum(&body)))
}

/// HMAC-SHA256 of a key under the server pepper: the only form a key is stored in.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({}…)", hex::encode(&self.0[..4]))
    }
}

/// Computes key hashes with the pepper derived from the master key.
#[derive(Clone)]
pub struct KeyHasher {
    pepper: [u8; 32],
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHasher([redacted])")
    }
}

impl KeyHasher {
    /// Build from a 32-byte pepper (see [`crate::master::MasterKey::key_pepper`]).
    pub fn new(pepper: [u8; 32]) -> Self {
        Self { pepper }
    }

    /// HMAC of any credential text (virtual keys and admin credentials).
    pub fn hash_text(&self, text: &str) -> KeyHash {
        // HMAC accepts keys of any length, so construction cannot fail; fall back to an
        // all-zero hash that matches nothing rather than panicking.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.pepper) else {
            return KeyHash([0; 32]);
        };
        mac.update(text.as_bytes());
        KeyHash(mac.finalize().into_bytes().into())
    }

    /// HMAC of a virtual key.
    pub fn hash(&self, key: &VirtualKey) -> KeyHash {
        self.hash_text(key.expose())
    }
}

/// Stored metadata of a virtual key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRecord {
    /// Stable id, e.g. `key_3fA9…`; what logs and audit records name.
    pub id: String,
    /// HMAC of the key text.
    #[serde(skip)]
    pub hash: KeyHash,
    /// Non-secret start of the key, to help people recognise it.
    pub display_prefix: String,
    /// Human name of the key.
    pub name: String,
    /// Person or service responsible for it.
    pub owner: Option<String>,
    /// Team it is billed and limited under.
    pub team: Option<String>,
    /// Environment it belongs to.
    pub environment: Environment,
    /// Model aliases it may call; `*` allows every route.
    pub allowed_models: Vec<String>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was last seen on a request (written in batches, so up to a few seconds late).
    pub last_used_at: Option<DateTime<Utc>>,
    /// The key this one succeeded in a rotation.
    pub rotated_from: Option<String>,
    /// The key that succeeded this one.
    pub rotated_to: Option<String>,
    /// Class of the data this key's requests carry (DP-4); a request's class is the more
    /// sensitive of its key's and its route's. None: the route's class alone.
    pub data_class: Option<DataClass>,
    /// Data-plane role the key is bound to (AC-3): `data-steward` may also use the
    /// fine-tuning file and job endpoints. None: `app`, the model endpoints only.
    pub role: Option<String>,
}

/// Why a stored key may not be used right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Usable.
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

impl KeyRecord {
    /// New record for a freshly generated key.
    pub fn new(key: &VirtualKey, hash: KeyHash, name: impl Into<String>) -> Self {
        Self {
            id: format!("key_{}", random_base62(16)),
            hash,
            display_prefix: key.display_prefix(),
            name: name.into(),
            owner: None,
            team: None,
            environment: key.environment(),
            allowed_models: vec!["*".to_owned()],
            created_at: crate::now(),
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            rotated_from: None,
            rotated_to: None,
            data_class: None,
            role: None,
        }
    }

    /// A successor for this key (AC-4): a fresh key with the same name, owner, team,
    /// environment, models, data class, role and lifetime, linked back to this one. The caller
    /// stores it and marks this one rotated with a grace period.
    pub fn successor(&self, hasher: &KeyHasher) -> (VirtualKey, KeyRecord) {
        let key = VirtualKey::generate(self.environment);
        let mut rec = KeyRecord::new(&key, hasher.hash(&key), self.name.clone());
        rec.owner = self.owner.clone();
        rec.team = self.team.clone();
        rec.allowed_models = self.allowed_models.clone();
        rec.data_class = self.data_class;
        rec.role = self.role.clone();
        rec.rotated_from = Some(self.id.clone());
        if let Some(exp) = self.expires_at {
            // Keep the same lifetime for the successor.
            rec.expires_at = Some(rec.created_at + (exp - self.created_at));
        }
        (key, rec)
    }

    /// Whether the key may be used at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> KeyState {
        if self.revoked_at.is_some_and(|t| t <= now) {
            KeyState::Revoked
        } else if self.expires_at.is_some_and(|t| t <= now) {
            KeyState::Expired
        } else {
            KeyState::Active
        }
    }

    /// Whether the key may call the model alias `model`.
    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_models.iter().any(|m| {
            m == "*" || m == model || m.strip_suffix('*').is_some_and(|p| model.starts_with(p))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_have_the_documented_shape() {
        for env in [Environment::Production, Environment::Staging] {
            let k = VirtualKey::generate(env);
            assert_eq!(k.expose().len(), 8 + RANDOM_LEN + CHECKSUM_LEN);
            assert!(k.expose().starts_with(env.prefix()));
            let parsed = VirtualKey::parse(k.expose()).unwrap();
            assert_eq!(parsed.environment(), env);
        }
    }

    #[test]
    fn a_one_character_typo_fails_the_checksum() {
        let k = VirtualKey::generate(Environment::Production);
        let mut text: Vec<u8> = k.expose().as_bytes().to_vec();
        let i = 12;
        text[i] = if text[i] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(text).unwrap();
        assert_eq!(
            VirtualKey::parse(&typo).unwrap_err(),
            KeyFormatError::Checksum
        );
    }

    #[test]
    fn malformed_keys_are_rejected() {
        assert_eq!(VirtualKey::parse("").unwrap_err(), KeyFormatError::Prefix);
        assert_eq!(
            VirtualKey::parse("sk-abc").unwrap_err(),
            KeyFormatError::Prefix
        );
        assert_eq!(
            VirtualKey::parse("tg_live_short").unwrap_err(),
            KeyFormatError::Shape
        );
        let k = VirtualKey::generate(Environment::Staging);
        let truncated = &k.expose()[..k.expose().len() - 1];
        assert_eq!(
            VirtualKey::parse(truncated).unwrap_err(),
            KeyFormatError::Shape
        );
        let non_ascii = format!("tg_test_{}", "é".repeat(18));
        assert!(VirtualKey::parse(&non_ascii).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_checksummed_keys(s in "\\PC{0,60}") {
            if let Ok(k) = VirtualKey::parse(&s) {
                proptest::prop_assert_eq!(k.expose(), s.as_str());
            }
        }

        #[test]
        fn any_single_character_change_is_caught(pos in 8usize..44, c in "[0-9A-Za-z]") {
            let k = VirtualKey::generate(Environment::Production);
            let mut text = k.expose().to_owned();
            let c = c.chars().next().unwrap();
            if text.as_bytes()[pos] as char != c {
                text.replace_range(pos..=pos, &c.to_string());
                proptest::prop_assert!(VirtualKey::parse(&text).is_err());
            }
        }
    }

    #[test]
    fn admin_credentials_are_not_virtual_keys() {
        let a = new_admin_credential();
        assert!(a.expose_secret().starts_with(ADMIN_PREFIX));
        assert_eq!(
            a.expose_secret().len(),
            ADMIN_PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN
        );
        assert_eq!(
            VirtualKey::parse(a.expose_secret()).unwrap_err(),
            KeyFormatError::Prefix
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = VirtualKey::generate(Environment::Production);
        let shown = format!("{k:?}");
        assert!(!shown.contains(&k.expose()[8..]));
    }

    #[test]
    fn hash_depends_on_pepper() {
        let k = VirtualKey::generate(Environment::Production);
        let a = KeyHasher::new([1; 32]).hash(&k);
        let b = KeyHasher::new([2; 32]).hash(&k);
        assert_ne!(a, b);
        assert_eq!(a, KeyHasher::new([1; 32]).hash(&k));
    }

    #[test]
    fn model_scope_supports_exact_wildcard_and_prefix() {
        let k = VirtualKey::generate(Environment::Production);
        let mut r = KeyRecord::new(&k, KeyHash([0; 32]), "t");
        assert!(r.allows_model("anything"));
        r.allowed_models = vec!["gpt-4o".into(), "claude-*".into()];
        assert!(r.allows_model("gpt-4o"));
        assert!(r.allows_model("claude-3-5-haiku"));
        assert!(!r.allows_model("gpt-4o-mini"));
    }

    #[test]
    fn state_reflects_expiry_and_revocation() {
        let k = VirtualKey::generate(Environment::Production);
        let mut r = KeyRecord::new(&k, KeyHash([0; 32]), "t");
        let now = Utc::now();
        assert_eq!(r.state(now), KeyState::Active);
        r.expires_at = Some(now - chrono::Duration::seconds(1));
        assert_eq!(r.state(now), KeyState::Expired);
        r.revoked_at = Some(now);
        assert_eq!(r.state(now), KeyState::Revoked);
    }
}
