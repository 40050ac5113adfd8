//! The tamper-evident audit trail (checklist DP-2, DP-3).
//!
//! Every instance (a gateway process, or the CLI) appends to its own hash chain: record `n`
//! carries `prev_hash` = the hash of record `n-1` and `hash` = SHA-256 over its canonical
//! bytes ([`record_hash`]). A second column holds an HMAC of that hash under a key derived
//! from the master key, so a record forged by someone with write access to the database but
//! not the master key is named exactly, not only where the chain next breaks. Every N records
//! and on shutdown the instance signs its head with Ed25519 ([`Checkpoint`]); a checkpoint kept
//! elsewhere proves that nothing was cut off the end.
//!
//! Payloads (prompt and completion text) live apart from the chain, sealed with a per-day data
//! key ([`payload`]) and referenced by digest, so retention can delete them or destroy the
//! day's key (crypto-shredding) while [`verify::verify`] still proves nothing else changed.

pub mod payload;
pub(crate) mod retention;
pub mod sign;
pub mod verify;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Result;

pub use payload::{PayloadKind, SealedPayload};
pub use sign::{Checkpoint, Signer};

/// `prev_hash` of the first record of a chain.
pub const GENESIS: [u8; 32] = [0; 32];
/// Domain separator of record hashes; bump the version if the canonical form ever changes.
const RECORD_DOMAIN: &str = "tollgate-audit-record/v1";
/// Longest instance id, record kind or reference id accepted (they are part of the hash input
/// and must not contain the newline separator).
pub const MAX_ID_LEN: usize = 128;

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// One data-plane call, allowed or refused.
    Request,
    /// An administrative action (keys, secrets, config, versions, kill switches, audit access).
    Admin,
}

impl RecordKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Admin => "admin",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "request" => Some(Self::Request),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// A record waiting to be appended: its place in the chain is assigned by the store, inside
/// the transaction that writes it.
#[derive(Debug, Clone)]
pub struct NewRecord {
    /// When it happened (stored at millisecond precision).
    pub time: DateTime<Utc>,
    /// Request or admin action.
    pub kind: RecordKind,
    /// Request id or action id.
    pub ref_id: String,
    /// Key the record concerns (for legal holds and queries).
    pub key_id: Option<String>,
    /// Team the record concerns.
    pub team: Option<String>,
    /// Canonical JSON of the record's fields ([`canonical_json`]).
    pub body: String,
    /// Sealed payloads stored beside the record.
    pub payloads: Vec<SealedPayload>,
}

impl NewRecord {
    /// A record of `kind` with `fields` made canonical.
    pub fn new(
        time: DateTime<Utc>,
        kind: RecordKind,
        ref_id: impl Into<String>,
        key_id: Option<String>,
        team: Option<String>,
        fields: &Value,
    ) -> Self {
        Self {
            time: crate::from_millis(crate::to_millis(time)),
            kind,
            ref_id: sanitize_id(ref_id.into()),
            key_id,
            team,
            body: canonical_json(fields),
            payloads: Vec::new(),
        }
    }
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The chain (instance) it belongs to.
    pub instance: String,
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// `request` or `admin` (kept as text so a tampered value is reported, not rejected).
    pub kind: String,
    /// Request or action id.
    pub ref_id: String,
    /// Key id column (must agree with the body).
    pub key_id: Option<String>,
    /// Team column (must agree with the body).
    pub team: Option<String>,
    /// Canonical JSON body.
    pub body: String,
    /// Hash of the previous record ([`GENESIS`] for the first).
    pub prev_hash: [u8; 32],
    /// SHA-256 over the canonical bytes.
    pub hash: [u8; 32],
    /// HMAC of `hash` under the master-derived audit key.
    pub mac: [u8; 32],
}

/// The head of a chain: the last sequence number and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPos {
    /// Sequence number (0 = empty chain).
    pub seq: u64,
    /// Hash of that record ([`GENESIS`] for an empty chain).
    pub hash: [u8; 32],
}

/// Replaces characters that would make the hash input ambiguous; ids come from us, so this
/// only ever fires on a bug, and then it keeps the record instead of losing it.
fn sanitize_id(mut s: String) -> String {
    if s.len() > MAX_ID_LEN || s.contains(['\n', '\r']) {
        s = s.replace(['\n', '\r'], " ");
        let mut cut = s.len().min(MAX_ID_LEN);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// SHA-256 of a record's canonical bytes. The fields are joined with newlines (none of the
/// ids may contain one) and the body comes last, so no two records share an input.
pub fn record_hash(
    instance: &str,
    seq: u64,
    time_ms: i64,
    kind: &str,
    ref_id: &str,
    prev_hash: &[u8; 32],
    body: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(RECORD_DOMAIN.as_bytes());
    for part in [
        instance,
        &seq.to_string(),
        &time_ms.to_string(),
        kind,
        ref_id,
        &hex::encode(prev_hash),
    ] {
        h.update(b"\n");
        h.update(part.as_bytes());
    }
    h.update(b"\n");
    h.update(body.as_bytes());
    h.finalize().into()
}

/// HMAC-SHA256 of a record hash under the audit MAC key.
pub fn record_mac(mac_key: &[u8; 32], hash: &[u8; 32]) -> [u8; 32] {
    let mut m = match <Hmac<Sha256> as Mac>::new_from_slice(mac_key) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this arm cannot run.
        Err(_) => return [0; 32],
    };
    m.update(hash);
    m.finalize().into_bytes().into()
}

/// Seal a batch onto a chain whose head is `head`: assigns sequence numbers and hashes.
/// Used by every backend inside its append transaction, so the chain logic lives once.
pub fn chain_batch(
    instance: &str,
    head: ChainPos,
    batch: &[NewRecord],
    mac_key: &[u8; 32],
) -> Vec<AuditRecord> {
    let mut prev = head;
    batch
        .iter()
        .map(|r| {
            let seq = prev.seq + 1;
            let time_ms = crate::to_millis(r.time);
            let hash = record_hash(
                instance,
                seq,
                time_ms,
                r.kind.as_str(),
                &r.ref_id,
                &prev.hash,
                &r.body,
            );
            let rec = AuditRecord {
                instance: instance.to_owned(),
                seq,
                time: r.time,
                kind: r.kind.as_str().to_owned(),
                ref_id: r.ref_id.clone(),
                key_id: r.key_id.clone(),
                team: r.team.clone(),
                body: r.body.clone(),
                prev_hash: prev.hash,
                hash,
                mac: record_mac(mac_key, &hash),
            };
            prev = ChainPos { seq, hash };
            rec
        })
        .collect()
}

/// JSON with object keys sorted at every level and no insignificant whitespace, so that the
/// same fields always give the same bytes whatever order they were built in.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(x) = map.get(*k) {
                    write_canonical(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A legal hold: deletion is suspended for everything of this key or team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalHold {
    /// `key` or `team`.
    pub scope: HoldScope,
    /// Key id or team name.
    pub value: String,
    /// Why (case number, ticket).
    pub reason: String,
    /// Who placed it.
    pub placed_by: String,
    /// When.
    pub placed_at: DateTime<Utc>,
}

/// What a legal hold covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldScope {
    /// One virtual key.
    Key,
    /// Every key of a team.
    Team,
}

impl HoldScope {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Team => "team",
        }
    }
    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "key" => Some(Self::Key),
            "team" => Some(Self::Team),
            _ => None,
        }
    }
}

/// What a retention run deletes: per payload class, everything stored before the cutoff;
/// chain records (metadata) before `metadata_before`, only up to a signed checkpoint.
#[derive(Debug, Clone, Default)]
pub struct PurgePlan {
    /// Payload class and the time before which it is deleted.
    pub payloads: Vec<(PayloadKind, DateTime<Utc>)>,
    /// Chain records older than this are pruned (None = keep metadata forever).
    pub metadata_before: Option<DateTime<Utc>>,
    /// Review-queue items queued before this are deleted (None = kept).
    pub reviews_before: Option<DateTime<Utc>>,
    /// Count only; delete nothing.
    pub dry_run: bool,
}

/// What a retention run did (or would do, in a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    /// Payloads deleted, by class.
    pub payloads_deleted: std::collections::BTreeMap<String, u64>,
    /// Payloads kept because of a legal hold.
    pub payloads_held: u64,
    /// Day keys destroyed (crypto-shredding).
    pub day_keys_destroyed: Vec<String>,
    /// Chain records pruned, per instance, with the checkpoint now anchoring the chain.
    pub records_pruned: std::collections::BTreeMap<String, u64>,
    /// Review-queue items deleted.
    pub reviews_deleted: u64,
    /// Review-queue items kept because their request is under a legal hold.
    pub reviews_held: u64,
}

/// A pruning anchor: records up to `seq` were removed by retention; the chain now starts at
/// `seq + 1`, whose `prev_hash` must equal `hash`, which a signed checkpoint vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// Last pruned sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: [u8; 32],
}

/// A payload as stored (still sealed).
#[derive(Debug, Clone)]
pub struct StoredPayload {
    /// Request it belongs to.
    pub request_id: String,
    /// The sealed payload.
    pub sealed: SealedPayload,
    /// Whether the day key that opens it still exists.
    pub key_destroyed: bool,
}

/// Audit persistence. Backends do the chain bookkeeping with [`chain_batch`] inside one
/// transaction per batch, which is what makes the group commit atomic and the chains of
/// concurrent writers (gateway and CLI) consistent.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Append `batch` to `instance`'s chain, with its payloads, atomically; returns the new
    /// head. `mac_key` keys the per-record HMAC.
    async fn append(
        &self,
        instance: &str,
        batch: &[NewRecord],
        mac_key: &[u8; 32],
    ) -> Result<ChainPos>;
    /// Append on the calling thread, if this backend can do so without I/O waits worth
    /// yielding for (the embedded SQLite file): saves the writer a hop to another thread on
    /// every batch. `None`: this backend has no such path; use [`Self::append`].
    fn append_blocking(
        &self,
        _instance: &str,
        _batch: &[NewRecord],
        _mac_key: &[u8; 32],
    ) -> Option<Result<ChainPos>> {
        None
    }
    /// Commit one record on the calling thread with the least work the backend can make
    /// durable, for a request that waits alone for its record: the embedded SQLite file
    /// stages it in a table without indexes and files it into the trail soon after (readers
    /// never see the difference). `None`: no such path; use [`Self::append`].
    fn append_one_blocking(
        &self,
        _instance: &str,
        _record: &NewRecord,
        _mac_key: &[u8; 32],
    ) -> Option<Result<ChainPos>> {
        None
    }
    /// File every record staged by [`Self::append_one_blocking`] into the trail's tables now:
    /// what a writer does when it stops, so that a stopped gateway leaves its file complete
    /// for tools that read it directly. (Readers of this store never need it: they settle
    /// first.) Backends that stage nothing do nothing.
    async fn settle(&self) -> Result<()> {
        Ok(())
    }
    /// The head row of a chain (what the writer last committed).
    async fn head(&self, instance: &str) -> Result<Option<ChainPos>>;
    /// Every instance that has a chain.
    async fn instances(&self) -> Result<Vec<String>>;
    /// Up to `limit` records of a chain with `seq >= from`, in order.
    async fn records(&self, instance: &str, from: u64, limit: u32) -> Result<Vec<AuditRecord>>;
    /// One record by position.
    async fn record_at(&self, instance: &str, seq: u64) -> Result<Option<AuditRecord>>;
    /// Records of a request or action id (normally one).
    async fn records_by_ref(&self, ref_id: &str) -> Result<Vec<AuditRecord>>;
    /// Up to `limit` records with `since <= time < until`, across instances, ordered by time,
    /// instance and seq, after the cursor `(time_ms, instance, seq)`.
    async fn records_between(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<(i64, String, u64)>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>>;
    /// Store a signed checkpoint.
    async fn put_checkpoint(&self, cp: &Checkpoint) -> Result<()>;
    /// Checkpoints of a chain, oldest first.
    async fn checkpoints(&self, instance: &str) -> Result<Vec<Checkpoint>>;
    /// The pruning anchor of a chain, if retention removed its beginning.
    async fn anchor(&self, instance: &str) -> Result<Option<Anchor>>;
    /// A day's wrapped data key: `(nonce, wrapped)`, or None if never made; `Some(None)` if
    /// destroyed.
    async fn day_key(&self, day: &str) -> Result<Option<Option<(Vec<u8>, Vec<u8>)>>>;
    /// Store a day's wrapped key unless one exists (another instance may have won the race).
    async fn put_day_key(&self, day: &str, nonce: &[u8], wrapped: &[u8]) -> Result<()>;
    /// Sealed payloads of a request.
    async fn payloads(&self, request_id: &str) -> Result<Vec<StoredPayload>>;
    /// Place a legal hold.
    async fn put_hold(&self, hold: &LegalHold) -> Result<()>;
    /// Lift a legal hold; false if there was none.
    async fn remove_hold(&self, scope: HoldScope, value: &str) -> Result<bool>;
    /// All legal holds.
    async fn holds(&self) -> Result<Vec<LegalHold>>;
    /// The time of the oldest payload still stored, per kind (held ones included), kinds
    /// without payloads left out: what `tollgate report` sets against the retention TTLs
    /// (DP-3) to show whether purging keeps up.
    async fn oldest_payloads(&self) -> Result<Vec<(PayloadKind, DateTime<Utc>)>>;
    /// Apply a retention plan at `now`, honouring legal holds.
    async fn purge(&self, plan: &PurgePlan, now: DateTime<Utc>) -> Result<PurgeReport>;
    /// Whether the audit store accepts writes (used by `/readyz` and fail-closed recovery).
    async fn writable(&self) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = json!({"b": 1, "a": {"z": [1, {"y": 2, "x": 1}], "c": null}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":null,"z":[1,{"x":1,"y":2}]},"b":1}"#
        );
    }

    #[test]
    fn chain_links_each_record_to_the_last() {
        let t = Utc::now();
        let batch: Vec<NewRecord> = (0..3)
            .map(|i| {
                NewRecord::new(
                    t,
                    RecordKind::Request,
                    format!("r{i}"),
                    None,
                    None,
                    &json!({"i": i}),
                )
            })
            .collect();
        let recs = chain_batch(
            "gw",
            ChainPos {
                seq: 0,
                hash: GENESIS,
            },
            &batch,
            &[1; 32],
        );
        assert_eq!(recs[0].seq, 1);
        assert_eq!(recs[0].prev_hash, GENESIS);
        assert_eq!(recs[1].prev_hash, recs[0].hash);
        assert_eq!(recs[2].prev_hash, recs[1].hash);
        assert_ne!(recs[1].hash, recs[2].hash);
        let again = record_hash(
            "gw",
            2,
            crate::to_millis(t),
            "request",
            "r1",
            &recs[0].hash,
            &recs[1].body,
        );
        assert_eq!(again, recs[1].hash);
    }

    #[test]
    fn ids_with_newlines_or_excess_length_are_made_safe() {
        assert_eq!(sanitize_id("a\nb".to_owned()), "a b");
        let long = "é".repeat(200);
        let s = sanitize_id(long);
        assert!(s.len() <= MAX_ID_LEN);
    }
}
