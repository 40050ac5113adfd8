//! `tollgate audit verify`: recompute every chain and name the first bad record.
//!
//! For each instance: records must run without gaps from the pruning anchor (or 1), each
//! `prev_hash` must equal the previous record's hash, each hash must match the record's
//! canonical bytes, each MAC must match (when the master key is at hand), and the key/team
//! columns must agree with the body. Stored and external checkpoints must carry a valid
//! signature by this deployment's key and match the record at their sequence number; a
//! checkpoint past the last record, or a head row past it, means the chain was cut short.

use ed25519_dalek::VerifyingKey;
use serde::Serialize;

use super::{AuditStore, Checkpoint, GENESIS, record_hash, record_mac};
use crate::Result;

/// Records fetched per page while walking a chain.
const PAGE: u32 = 2_000;

/// One thing wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The first sequence number affected.
    pub seq: u64,
    /// What is wrong.
    pub what: String,
}

/// The result for one chain.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChainReport {
    /// The chain.
    pub instance: String,
    /// First sequence number present (after any pruning).
    pub first_seq: u64,
    /// Last sequence number verified.
    pub last_seq: u64,
    /// Records checked.
    pub records: u64,
    /// Checkpoints whose signature and hash were confirmed.
    pub checkpoints_verified: u64,
    /// Records after the last signed checkpoint (covered by the chain, not yet by a
    /// signature).
    pub unsigned_tail: u64,
    /// The first problem found, if any: the walk stops there, since every later hash depends
    /// on it.
    pub problem: Option<Problem>,
    /// Checkpoint problems (bad signatures, mismatches, truncation).
    pub checkpoint_problems: Vec<Problem>,
}

impl ChainReport {
    /// Whether the chain verified.
    pub fn ok(&self) -> bool {
        self.problem.is_none() && self.checkpoint_problems.is_empty()
    }
}

/// The result of a whole verification.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// One entry per chain.
    pub chains: Vec<ChainReport>,
    /// Problems with externally supplied checkpoints that match no chain.
    pub external_problems: Vec<String>,
    /// Whether MACs were checked (needs the master key).
    pub macs_checked: bool,
}

impl VerifyReport {
    /// Whether everything verified.
    pub fn ok(&self) -> bool {
        self.external_problems.is_empty() && self.chains.iter().all(ChainReport::ok)
    }
}

fn json_field<'a>(body: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(serde_json::Value::as_str)
}

/// Verify every chain in `store`. `mac_key` enables the MAC check, `trusted` pins the
/// signing key, `external` are checkpoints kept outside the database.
pub async fn verify(
    store: &dyn AuditStore,
    mac_key: Option<&[u8; 32]>,
    trusted: Option<&VerifyingKey>,
    external: &[Checkpoint],
) -> Result<VerifyReport> {
    let mut report = VerifyReport {
        macs_checked: mac_key.is_some(),
        ..VerifyReport::default()
    };
    let instances = store.instances().await?;
    for cp in external {
        if !instances.contains(&cp.instance) {
            report.external_problems.push(format!(
                "checkpoint for chain {:?} at seq {}: no such chain in the store (deleted?)",
                cp.instance, cp.seq
            ));
        }
    }
    for instance in instances {
        // One snapshot per chain, taken before the walk: the head and checkpoints a running
        // gateway writes meanwhile are for records past the snapshot, not a truncation.
        let head = store.head(&instance).await?;
        let stored = store.checkpoints(&instance).await?;
        let mut chain = verify_chain(store, &instance, mac_key, head).await?;
        let cps: Vec<(&str, Checkpoint)> = stored
            .into_iter()
            .map(|c| ("stored checkpoint", c))
            .chain(
                external
                    .iter()
                    .filter(|c| c.instance == instance)
                    .map(|c| ("external checkpoint", c.clone())),
            )
            .collect();
        let mut last_signed = 0;
        for (origin, cp) in &cps {
            if let Err(why) = cp.check(trusted) {
                chain.checkpoint_problems.push(Problem {
                    seq: cp.seq,
                    what: format!("{origin} at seq {}: {why}", cp.seq),
                });
                continue;
            }
            if cp.seq > chain.last_seq || (chain.problem.is_some() && cp.seq >= chain.last_seq) {
                if chain.problem.is_none() {
                    chain.checkpoint_problems.push(Problem {
                        seq: chain.last_seq + 1,
                        what: format!(
                            "chain truncated: {origin} vouches for seq {} but records end at {}",
                            cp.seq, chain.last_seq
                        ),
                    });
                }
                continue;
            }
            if cp.seq < chain.first_seq {
                // Pruned by retention; the anchor check covers it.
                continue;
            }
            match store.record_at(&instance, cp.seq).await? {
                Some(r) if Some(r.hash) == cp.hash_bytes() => {
                    chain.checkpoints_verified += 1;
                    last_signed = last_signed.max(cp.seq);
                }
                Some(_) => chain.checkpoint_problems.push(Problem {
                    seq: cp.seq,
                    what: format!("{origin} at seq {} does not match the record", cp.seq),
                }),
                None => chain.checkpoint_problems.push(Problem {
                    seq: cp.seq,
                    what: format!("{origin} at seq {}: record missing", cp.seq),
                }),
            }
        }
        if let Some(anchor) = store.anchor(&instance).await? {
            let vouched = cps.iter().any(|(_, c)| {
                c.seq == anchor.seq
                    && c.hash_bytes() == Some(anchor.hash)
                    && c.check(trusted).is_ok()
            });
            if !vouched {
                chain.checkpoint_problems.push(Problem {
                    seq: anchor.seq,
                    what: "the pruning anchor is not covered by a valid signed checkpoint"
                        .to_owned(),
                });
            }
        }
        chain.unsigned_tail = chain.last_seq.saturating_sub(last_signed);
        report.chains.push(chain);
    }
    Ok(report)
}

async fn verify_chain(
    store: &dyn AuditStore,
    instance: &str,
    mac_key: Option<&[u8; 32]>,
    head: Option<super::ChainPos>,
) -> Result<ChainReport> {
    // Records past the snapshot's head were appended after it (by a live writer) and are
    // left for the next run; without a head row every record is walked.
    let end = head.map_or(u64::MAX, |h| h.seq);
    let (start, mut prev) = match store.anchor(instance).await? {
        Some(a) => (a.seq + 1, a.hash),
        None => (1, GENESIS),
    };
    let mut rep = ChainReport {
        instance: instance.to_owned(),
        first_seq: start,
        last_seq: start - 1,
        ..ChainReport::default()
    };
    let mut expected = start;
    'walk: loop {
        let page = store.records(instance, expected, PAGE).await?;
        if page.is_empty() || expected > end {
            break;
        }
        for r in page {
            if r.seq > end {
                break 'walk;
            }
            let problem = if r.seq != expected {
                Some(format!(
                    "record {expected} is missing (deleted); the next present is {}",
                    r.seq
                ))
            } else if r.prev_hash != prev {
                Some(
                    "prev_hash does not match the previous record (a record was deleted, \
                     inserted or reordered)"
                        .to_owned(),
                )
            } else if record_hash(
                instance,
                r.seq,
                crate::to_millis(r.time),
                &r.kind,
                &r.ref_id,
                &r.prev_hash,
                &r.body,
            ) != r.hash
            {
                Some("content does not match its hash (record modified)".to_owned())
            } else if mac_key.is_some_and(|k| record_mac(k, &r.hash) != r.mac) {
                Some(
                    "MAC does not match (record forged or inserted without the master key)"
                        .to_owned(),
                )
            } else {
                match serde_json::from_str::<serde_json::Value>(&r.body) {
                    Err(_) => Some("body is not valid JSON".to_owned()),
                    Ok(b)
                        if json_field(&b, "key_id") != r.key_id.as_deref()
                            || json_field(&b, "team") != r.team.as_deref() =>
                    {
                        Some("key or team column disagrees with the record body".to_owned())
                    }
                    Ok(_) => None,
                }
            };
            if let Some(what) = problem {
                rep.problem = Some(Problem {
                    seq: expected,
                    what,
                });
                break 'walk;
            }
            prev = r.hash;
            rep.last_seq = r.seq;
            rep.records += 1;
            expected += 1;
        }
    }
    if rep.problem.is_none() {
        if let Some(head) = head {
            if head.seq > rep.last_seq {
                rep.problem = Some(Problem {
                    seq: rep.last_seq + 1,
                    what: format!(
                        "chain truncated: the head says {} records, the chain ends at {}",
                        head.seq, rep.last_seq
                    ),
                });
            } else if head.seq == rep.last_seq && head.hash != prev && head.seq > 0 {
                rep.problem = Some(Problem {
                    seq: head.seq,
                    what: "the head's hash does not match the last record".to_owned(),
                });
            }
        }
    }
    Ok(rep)
}
