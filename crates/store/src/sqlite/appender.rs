//! How audit records reach the SQLite file: the appender, the staging of lone records, and
//! the background checkpointer.
//!
//! Appends run on a dedicated connection ([`Appender`]), on its own thread or on the
//! caller's: a batch is a handful of prepared statements executed back to back, where going
//! through the async pool costs a thread hop per statement (measured: ~50 µs each, which made
//! one record take ~0.5 ms and capped the writer near 10,000 records/s). Transactions begin
//! IMMEDIATE so that concurrent writers (the gateway and the CLI) queue on the database lock
//! instead of forking a chain.
//!
//! **Staging.** A commit costs one WAL frame (a 4 KiB page write) per B-tree it touches, and
//! a record lands in six: the records table and its primary-key, request-id and time
//! indexes, the chain head, and with payloads the payload table and its three indexes. For a
//! lone record that page I/O is most of what a request waits for. So a record that a
//! request commits alone on its own thread (`append_one_blocking`) goes into `audit_staged`
//! (and `audit_staged_payloads`), plain tables without indexes, where appending touches one
//! page each; it is as durable there as anywhere in the file.
//!
//! [`SETTLE`] moves staged rows into their real tables, off the request's path: the
//! [`Checkpointer`] thread does it every [`SETTLE_PERIOD`] (in transactions of
//! [`SETTLE_CHUNK`] records with a pause between, so a lone commit never waits long), the
//! next larger batch does it first, every reader of the trail does it before reading, and
//! closing the store does it last, so nobody ever sees a chain with a gap. If settling fails
//! (a full disk, a broken table), the next lone record settles first instead of staging past
//! it, so the failure reaches the caller (and `audit.fail_closed`) rather than piling up
//! staged rows. The chain itself is computed at staging time (the head is the last staged
//! row of the instance, else `audit_heads`), so settling copies rows verbatim and cannot
//! change what `audit verify` checks.
//!
//! **Checkpoints.** No connection of the store checkpoints the WAL in the course of a commit
//! (the pool sets `wal_autocheckpoint = 0`, the appender only past a large safety net): a
//! checkpoint copies the WAL into the database and fsyncs both, milliseconds on a cloud
//! disk, and SQLite runs it inside whichever commit crosses the threshold — so one request
//! in a few hundred waited for it. The [`Checkpointer`] thread does it in the background.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::{OptionalExtension, params};

use crate::audit::{ChainPos, GENESIS, NewRecord, chain_batch};
use crate::{Result, StoreError, to_millis};

use super::audit::{hash32, seq_i64};

/// Most appends queued for the appender thread.
const APPEND_QUEUE: usize = 64;

type AppendJob = (
    String,
    Vec<NewRecord>,
    [u8; 32],
    tokio::sync::oneshot::Sender<Result<ChainPos>>,
);

/// How often the checkpointer thread settles staged records. Each settle is a transaction
/// with a fixed cost (about a dozen page writes), so settling often costs lone commits
/// more waits than it saves (every 10 ms: p90 0.5-0.8 ms with payloads); settling right
/// after each lone commit cost that commit a cross-core wake-up of the thread (p50 +30 µs).
pub const SETTLE_PERIOD: std::time::Duration = std::time::Duration::from_millis(100);
/// How often the checkpointer thread copies the WAL into the database.
pub const CHECKPOINT_PERIOD: std::time::Duration = std::time::Duration::from_millis(100);
/// WAL size (pages of 4 KiB: 64 MiB) beyond which the appender checkpoints in its own
/// commit after all (SQLite's autocheckpoint): the safety net that bounds the WAL when
/// writes never pause long enough for a background pass to finish.
pub const WAL_SAFETY_PAGES: i64 = 16_384;

/// Most time an audit connection waits for the database lock before its write fails.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// The sleep between the first [`LOCK_FINE_POLLS`] tries for the lock; 1 ms after that.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_micros(20);
/// Tries at the fine interval: a few milliseconds' worth, longer than any settle or batch.
const LOCK_FINE_POLLS: u32 = 200;

/// Most time a lone record's commit waits for the lock on the caller's thread before it
/// gives up and leaves the record to the appender thread (see [`wait_briefly`]).
pub const LONE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(2);

/// The busy handler of the connection that stages lone records on the caller's thread: a
/// few fine polls ([`LONE_LOCK_WAIT`]), enough to wait out a settle chunk or a batch, then
/// give up. That thread is an async worker: had it waited [`LOCK_WAIT`], a writer that
/// needs the same worker to finish its transaction (a key-use flush, a reader settling)
/// could not, and both stalled until the wait ran out (5 s, then a 503 under fail-closed).
/// Given up, the record goes to the appender thread, which may wait.
fn wait_briefly(attempt: i32) -> bool {
    let attempt = u32::try_from(attempt).unwrap_or(u32::MAX);
    if LOCK_POLL * attempt >= LONE_LOCK_WAIT {
        return false;
    }
    std::thread::sleep(LOCK_POLL);
    true
}

/// The busy handler of the audit connections: wait for the lock in short sleeps first.
/// SQLite's own busy timeout sleeps 1 ms before its first retry (then 2, 5, 10 ms …), so a
/// lone commit that met the checkpointer settling (a fraction of a millisecond) waited a
/// whole millisecond or more.
fn wait_for_lock(attempt: i32) -> bool {
    let attempt = u32::try_from(attempt).unwrap_or(0);
    let fine = attempt.min(LOCK_FINE_POLLS);
    let coarse = attempt - fine;
    let waited = LOCK_POLL * fine + std::time::Duration::from_millis(1) * coarse;
    if waited >= LOCK_WAIT {
        return false;
    }
    std::thread::sleep(if attempt < LOCK_FINE_POLLS {
        LOCK_POLL
    } else {
        std::time::Duration::from_millis(1)
    });
    true
}

/// Statements that move every staged record with a rowid up to `?1` and payload into the trail's tables and advances each staged
/// chain's head, in staging order; run inside a write transaction. Rows are copied verbatim
/// (their hashes were computed when they were staged). A staged row whose `(instance, seq)`
/// already exists fails the whole statement: that is a forked or tampered chain, and it stays
/// staged and visible as an error rather than being dropped.
pub(super) const SETTLE: [&str; 5] = [
    "INSERT INTO audit_records (instance, seq, ts, kind, ref_id, key_id, team, body, prev_hash, hash, mac)
     SELECT instance, seq, ts, kind, ref_id, key_id, team, body, prev_hash, hash, mac
     FROM audit_staged WHERE rowid <= ?1 ORDER BY rowid",
    "INSERT OR REPLACE INTO audit_payloads (request_id, kind, digest, day, ts, key_id, team, nonce, ciphertext)
     SELECT request_id, kind, digest, day, ts, key_id, team, nonce, ciphertext
     FROM audit_staged_payloads
     WHERE request_id IN (SELECT ref_id FROM audit_staged WHERE rowid <= ?1) ORDER BY rowid",
    "INSERT INTO audit_heads (instance, seq, hash)
     SELECT instance, seq, hash FROM audit_staged
     WHERE rowid IN (SELECT MAX(rowid) FROM audit_staged WHERE rowid <= ?1 GROUP BY instance)
     ON CONFLICT(instance) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    "DELETE FROM audit_staged_payloads
     WHERE request_id IN (SELECT ref_id FROM audit_staged WHERE rowid <= ?1)",
    "DELETE FROM audit_staged WHERE rowid <= ?1",
];

/// The bound for [`SETTLE`] that settles everything staged.
pub(super) const SETTLE_ALL: i64 = i64::MAX;

/// Most records the checkpointer settles in one transaction. A lone commit that meets a
/// settle waits for its transaction; a hundred records with payloads in one held the lock
/// for milliseconds (lone p99 0.9-4 ms against 0.2-0.6 ms before staging).
pub const SETTLE_CHUNK: i64 = 8;

/// The pause between settle chunks (see [`settle_on`]): several of a waiter's polls.
const SETTLE_PAUSE: std::time::Duration = std::time::Duration::from_micros(200);

/// The rowid bound that settles the first [`SETTLE_CHUNK`] staged records.
const CHUNK_BOUND: &str =
    "SELECT COALESCE((SELECT rowid FROM audit_staged ORDER BY rowid LIMIT 1 OFFSET ?1), ?2)";

/// Whether anything is staged (cheap: the first row of a small table).
pub(super) const ANY_STAGED: &str = "SELECT EXISTS (SELECT 1 FROM audit_staged)";

/// A write transaction (`BEGIN IMMEDIATE`) whose BEGIN and COMMIT are cached statements:
/// rusqlite's own transactions parse both anew each time, a few microseconds that a lone
/// record's commit is short enough to notice. Dropped uncommitted, it rolls back.
struct WriteTx<'c> {
    conn: &'c rusqlite::Connection,
    done: bool,
}

impl<'c> WriteTx<'c> {
    fn begin(conn: &'c rusqlite::Connection) -> Result<Self> {
        conn.prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
            .map_err(sqlite_err)?;
        Ok(Self { conn, done: false })
    }

    fn commit(mut self) -> Result<()> {
        self.conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
            .map_err(sqlite_err)?;
        self.done = true;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = rusqlite::Connection;
    fn deref(&self) -> &rusqlite::Connection {
        self.conn
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        // A failed COMMIT (SQLITE_BUSY) leaves the transaction open too.
        if !self.done && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Settle staged rows on `conn`, [`SETTLE_CHUNK`] records per transaction so that the lock
/// is free between chunks, and record whether that worked.
fn settle_on(conn: &rusqlite::Connection, ok: &AtomicBool) -> Result<()> {
    let done = (|| loop {
        let tx = WriteTx::begin(conn)?;
        if !any_staged(&tx)? {
            return tx.commit();
        }
        let bound: i64 = tx
            .prepare_cached(CHUNK_BOUND)
            .and_then(|mut s| s.query_row(params![SETTLE_CHUNK - 1, SETTLE_ALL], |r| r.get(0)))
            .map_err(sqlite_err)?;
        settle_to(&tx, bound)?;
        tx.commit()?;
        if bound == SETTLE_ALL {
            return Ok(());
        }
        // Let a lone commit that waited for this chunk in: it polls every `LOCK_POLL`, and
        // without a pause the next chunk took the lock first, every time, until all were done.
        std::thread::sleep(SETTLE_PAUSE);
    })();
    ok.store(done.is_ok(), Ordering::Relaxed);
    done
}

fn any_staged(tx: &rusqlite::Connection) -> Result<bool> {
    tx.prepare_cached(ANY_STAGED)
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(sqlite_err)
}

/// Settle staged records with a rowid up to `bound` inside the caller's write transaction.
fn settle_to(tx: &rusqlite::Connection, bound: i64) -> Result<()> {
    for sql in SETTLE {
        tx.prepare_cached(sql)
            .and_then(|mut s| s.execute(params![bound]))
            .map_err(sqlite_err)?;
    }
    Ok(())
}

/// Settle everything staged inside the caller's write transaction, if there is anything.
fn settle_in(tx: &rusqlite::Connection) -> Result<()> {
    if any_staged(tx)? {
        settle_to(tx, SETTLE_ALL)?;
    }
    Ok(())
}

/// Settles staged records and copies the WAL into the database off the commit path, on its
/// own thread and connection.
///
/// A PASSIVE checkpoint never blocks a writer, and once it has copied every frame the next
/// commit starts the WAL again from its beginning (reusing its disk blocks). Under
/// sustained writes a passive pass can lag behind the frames appended meanwhile; then the
/// appender's own autocheckpoint at [`WAL_SAFETY_PAGES`] finishes the job inside one commit,
/// copying only what the passive passes left. (A RESTART checkpoint from this thread was
/// tried and dropped: it holds writers while it waits for readers, which stalled one
/// commit for a second in the bench.)
#[derive(Debug)]
struct Checkpointer {
    /// Dropped first to stop the thread (its `recv_timeout` sees the disconnect).
    stop: Option<std::sync::mpsc::Sender<()>>,
    /// Joined on drop, so that a store closed in an orderly way leaves nothing staged.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &std::path::Path, settle_ok: Arc<AtomicBool>) -> Result<Self> {
        use std::sync::mpsc::RecvTimeoutError;
        use std::time::Instant;
        let conn = rusqlite::Connection::open(path).map_err(sqlite_err)?;
        conn.busy_handler(Some(wait_for_lock)).map_err(sqlite_err)?;
        // Its settles commit like every other write of the store: NORMAL sync (no fsync per
        // commit in WAL; a FULL one held the lock through an fsync that lone commits then
        // waited out, p99 2-8 ms), and no checkpoint inside the commit.
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;")
            .map_err(sqlite_err)?;
        let (stop, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tollgate-wal-checkpoint".into())
            .spawn(move || {
                let mut next_checkpoint = Instant::now() + CHECKPOINT_PERIOD;
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(SETTLE_PERIOD) {
                    // A failure is retried on the next tick; meanwhile staged rows wait (the
                    // next batch or reader settles them too) and lone records settle first,
                    // which reports the failure to their callers.
                    if let Err(e) = settle_on(&conn, &settle_ok) {
                        tracing::warn!(error = %e, "settling staged audit records failed; retrying");
                    }
                    // Until a checkpoint succeeds the WAL grows, up to the safety net.
                    if Instant::now() >= next_checkpoint {
                        if let Err(e) =
                            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                        {
                            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                        }
                        next_checkpoint = Instant::now() + CHECKPOINT_PERIOD;
                    }
                }
                if let Err(e) = settle_on(&conn, &settle_ok) {
                    tracing::warn!(error = %e, "settling staged audit records at close failed; the next open settles them");
                }
            })
            .map_err(|e| StoreError::Io {
                context: "starting the WAL checkpointer thread".into(),
                source: e,
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The audit appender: one rusqlite connection owned by one thread, started on first use,
/// and one for appends on the caller's thread.
#[derive(Debug)]
pub(super) struct Appender {
    path: std::path::PathBuf,
    tx: std::sync::OnceLock<std::sync::mpsc::SyncSender<AppendJob>>,
    /// A second connection for appends on the caller's thread (see `append_blocking`).
    direct: parking_lot::Mutex<Option<rusqlite::Connection>>,
    /// The connection that stages lone records on a request's thread; it waits for the lock
    /// only briefly ([`wait_briefly`]).
    lone: parking_lot::Mutex<Option<rusqlite::Connection>>,
    /// Whether the last attempt to settle staged records worked; while not, nothing more is
    /// staged (see the module docs).
    settle_ok: Arc<AtomicBool>,
    /// Lives as long as the store: every connection of the store leaves checkpoints and
    /// settling to it.
    _checkpointer: Checkpointer,
}

impl Appender {
    pub(super) fn new(path: std::path::PathBuf) -> Result<Self> {
        let settle_ok = Arc::new(AtomicBool::new(true));
        Ok(Self {
            _checkpointer: Checkpointer::start(&path, settle_ok.clone())?,
            settle_ok,
            path,
            tx: std::sync::OnceLock::new(),
            direct: parking_lot::Mutex::new(None),
            lone: parking_lot::Mutex::new(None),
        })
    }

    /// A connection for appends.
    fn open(&self) -> Result<rusqlite::Connection> {
        open_appender(&self.path)
    }

    /// Record the outcome of a settle that ran elsewhere (a reader's).
    pub(super) fn settled(&self, ok: bool) {
        self.settle_ok.store(ok, Ordering::Relaxed);
    }

    /// Run `f` on the caller's-thread connection, opening it on first use.
    fn with_direct<T>(&self, f: impl FnOnce(&mut rusqlite::Connection) -> Result<T>) -> Result<T> {
        Self::with_conn(&self.direct, || self.open(), f)
    }

    /// Run `f` on the connection in `slot`, opening it with `open` on first use.
    fn with_conn<T>(
        slot: &parking_lot::Mutex<Option<rusqlite::Connection>>,
        open: impl FnOnce() -> Result<rusqlite::Connection>,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T>,
    ) -> Result<T> {
        let mut guard = slot.lock();
        if guard.is_none() {
            *guard = Some(open()?);
        }
        match guard.as_mut() {
            Some(conn) => f(conn),
            None => Err(StoreError::Corrupt {
                what: "audit appender connection",
            }),
        }
    }

    /// Append `batch` on the caller's thread.
    pub(super) fn append_direct(
        &self,
        instance: &str,
        batch: &[NewRecord],
        mac_key: &[u8; 32],
    ) -> Result<ChainPos> {
        self.with_direct(|conn| append_blocking(conn, instance, batch, mac_key))
    }

    /// Commit one record into the staging tables on the caller's thread (see the module
    /// docs); after a failed settle, settle first in the same transaction.
    pub(super) fn stage_direct(
        &self,
        instance: &str,
        record: &NewRecord,
        mac_key: &[u8; 32],
    ) -> Result<ChainPos> {
        let settle_first = !self.settle_ok.load(Ordering::Relaxed);
        let open = || {
            let conn = self.open()?;
            conn.busy_handler(Some(wait_briefly)).map_err(sqlite_err)?;
            Ok(conn)
        };
        let done = Self::with_conn(&self.lone, open, |conn| {
            write_blocking(
                conn,
                instance,
                std::slice::from_ref(record),
                mac_key,
                Target::Staged { settle_first },
            )
        });
        if settle_first && done.is_ok() {
            self.settle_ok.store(true, Ordering::Relaxed);
        }
        done
    }

    fn sender(&self) -> Result<std::sync::mpsc::SyncSender<AppendJob>> {
        if let Some(s) = self.tx.get() {
            return Ok(s.clone());
        }
        let conn = self.open()?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<AppendJob>(APPEND_QUEUE);
        std::thread::Builder::new()
            .name("tollgate-audit-append".into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok((instance, batch, mac, reply)) = rx.recv() {
                    let _ = reply.send(append_blocking(&mut conn, &instance, &batch, &mac));
                }
            })
            .map_err(|e| StoreError::Io {
                context: "starting the audit appender thread".into(),
                source: e,
            })?;
        // Another caller may have raced us; theirs wins and this thread exits when its
        // sender is dropped.
        Ok(self.tx.get_or_init(|| tx).clone())
    }

    pub(super) async fn append(
        &self,
        instance: &str,
        batch: &[NewRecord],
        mac_key: &[u8; 32],
    ) -> Result<ChainPos> {
        let sender = self.sender()?;
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = (instance.to_owned(), batch.to_vec(), *mac_key, reply);
        // The queue is short and the thread drains it quickly; a full queue waits off the
        // async runtime.
        let sent = match sender.try_send(job) {
            Ok(()) => Ok(()),
            Err(std::sync::mpsc::TrySendError::Full(job)) => {
                tokio::task::spawn_blocking(move || sender.send(job))
                    .await
                    .map_err(|_| ())
                    .and_then(|r| r.map_err(|_| ()))
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => Err(()),
        };
        if sent.is_err() {
            return Err(StoreError::Corrupt {
                what: "audit appender thread stopped",
            });
        }
        rx.await.map_err(|_| StoreError::Corrupt {
            what: "audit appender thread stopped",
        })?
    }
}

fn sqlite_err(e: rusqlite::Error) -> StoreError {
    StoreError::Append(e.to_string())
}

fn open_appender(path: &std::path::Path) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path).map_err(sqlite_err)?;
    conn.busy_handler(Some(wait_for_lock)).map_err(sqlite_err)?;
    // The pool set WAL on the file already; NORMAL sync in WAL survives a process crash
    // (kill -9) without an fsync per commit. Checkpoints are the `Checkpointer`'s job, up
    // to a WAL of `WAL_SAFETY_PAGES`.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = {WAL_SAFETY_PAGES};"
    ))
    .map_err(sqlite_err)?;
    Ok(conn)
}

/// The head of `instance`'s chain as of this transaction: its last staged row, else its
/// settled head, else the genesis position.
fn chain_head(tx: &rusqlite::Connection, instance: &str) -> Result<ChainPos> {
    let head_from = |sql: &str| {
        tx.prepare_cached(sql)
            .and_then(|mut s| {
                s.query_row(params![instance], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .optional()
            })
            .map_err(sqlite_err)
    };
    let head = match head_from(
        "SELECT seq, hash FROM audit_staged WHERE instance = ?1 ORDER BY rowid DESC LIMIT 1",
    )? {
        Some(h) => Some(h),
        None => head_from("SELECT seq, hash FROM audit_heads WHERE instance = ?1")?,
    };
    Ok(match head {
        Some((seq, hash)) => ChainPos {
            seq: u64::try_from(seq).map_err(|_| StoreError::Corrupt {
                what: "audit_heads.seq",
            })?,
            hash: hash32(hash, "audit_heads.hash")?,
        },
        None => ChainPos {
            seq: 0,
            hash: GENESIS,
        },
    })
}

/// Where [`write_blocking`] puts a batch.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The trail's tables, after settling what was staged before the batch.
    Trail,
    /// The staging tables, settling first only if asked to.
    Staged { settle_first: bool },
}

/// Append `batch` to the trail in one transaction (settling staged records first, so the
/// chain stays in order).
fn append_blocking(
    conn: &mut rusqlite::Connection,
    instance: &str,
    batch: &[NewRecord],
    mac_key: &[u8; 32],
) -> Result<ChainPos> {
    write_blocking(conn, instance, batch, mac_key, Target::Trail)
}

/// Chain `batch` onto `instance`'s head and commit it to `target`, in one transaction.
fn write_blocking(
    conn: &mut rusqlite::Connection,
    instance: &str,
    batch: &[NewRecord],
    mac_key: &[u8; 32],
    target: Target,
) -> Result<ChainPos> {
    let tx = WriteTx::begin(conn)?;
    let staged = match target {
        Target::Trail => {
            settle_in(&tx)?;
            false
        }
        Target::Staged { settle_first } => {
            if settle_first {
                settle_in(&tx)?;
            }
            true
        }
    };
    let head = chain_head(&tx, instance)?;
    if batch.is_empty() {
        tx.commit()?;
        return Ok(head);
    }
    let (records_table, payloads_table) = if staged {
        ("audit_staged", "audit_staged_payloads")
    } else {
        ("audit_records", "audit_payloads")
    };
    let records = chain_batch(instance, head, batch, mac_key);
    {
        let mut ins = tx
            .prepare_cached(&format!(
                "INSERT INTO {records_table} (instance, seq, ts, kind, ref_id, key_id, team, body, prev_hash, hash, mac)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))
            .map_err(sqlite_err)?;
        // Staged payloads settle with INSERT OR REPLACE, as these do.
        let mut pay = tx
            .prepare_cached(&format!(
                "INSERT OR REPLACE INTO {payloads_table} (request_id, kind, digest, day, ts, key_id, team, nonce, ciphertext)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))
            .map_err(sqlite_err)?;
        for (r, new) in records.iter().zip(batch) {
            ins.execute(params![
                r.instance,
                seq_i64(r.seq)?,
                to_millis(r.time),
                r.kind,
                r.ref_id,
                r.key_id,
                r.team,
                r.body,
                &r.prev_hash[..],
                &r.hash[..],
                &r.mac[..],
            ])
            .map_err(sqlite_err)?;
            for p in &new.payloads {
                pay.execute(params![
                    r.ref_id,
                    p.kind.as_str(),
                    &p.digest[..],
                    p.day,
                    to_millis(p.time),
                    r.key_id,
                    r.team,
                    &p.nonce[..],
                    p.ciphertext,
                ])
                .map_err(sqlite_err)?;
            }
        }
    }
    let last = records.last().map_or(head, |r| ChainPos {
        seq: r.seq,
        hash: r.hash,
    });
    // A staged record's head is its own row until it settles.
    if !staged {
        tx.prepare_cached(
            "INSERT INTO audit_heads (instance, seq, hash) VALUES (?1, ?2, ?3)
             ON CONFLICT(instance) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )
        .and_then(|mut s| {
            s.execute(params![
                instance,
                seq_i64(last.seq).unwrap_or(i64::MAX),
                &last.hash[..]
            ])
        })
        .map_err(sqlite_err)?;
    }
    tx.commit()?;
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_handler_gives_up_once_lock_wait_is_spent() {
        let fine = LOCK_POLL * LOCK_FINE_POLLS;
        let last = LOCK_FINE_POLLS + u32::try_from((LOCK_WAIT - fine).as_millis()).unwrap();
        assert!(wait_for_lock(0));
        assert!(wait_for_lock(i32::try_from(last - 1).unwrap()));
        assert!(!wait_for_lock(i32::try_from(last).unwrap()));
        assert!(!wait_for_lock(i32::MAX));
    }
}
