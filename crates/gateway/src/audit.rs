//! The audit stage (checklist DP-2): every data-plane call, allowed or refused, becomes a
//! chained record that is durable before the client sees the end of its response.
//!
//! - [`Auditor`] owns one writer thread per process. The submitting task seals its own
//!   record (payload encryption, canonical body), so that work runs on every core. If the
//!   writer is idle, the store is embedded and traffic is sparse ([`DIRECT_MIN_GAP`]), the
//!   task commits the record itself (`append_one_blocking`: one small SQLite commit into the
//!   store's staging table, no thread hand-off); otherwise records queue on a channel and
//!   the writer writes them in batches, one transaction each (group commit), so durability
//!   costs one commit per batch rather than per request. It signs a checkpoint every `checkpoint_every` records,
//!   every [`CHECKPOINT_INTERVAL`] and at shutdown.
//! - [`audit_layer`] wraps the data-plane routes. It refuses new calls with 503 while the
//!   audit store cannot be written and `audit.fail_closed` is on (nothing goes upstream), and
//!   for a complete (non-streamed) response it adds the response digest, waits until the
//!   record is committed, and only then returns the response. Streamed responses do the same
//!   before their final event (see `pipeline::stream_response`).
//! - A record that could not be written stays queued and is retried; under fail-closed the
//!   client got a 503 instead, and the record says so.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tollgate_store::audit::payload::{Keyring, MAX_PAYLOAD_BYTES, digest};
use tollgate_store::audit::{
    AuditStore, ChainPos, NewRecord, PayloadKind, RecordKind, SealedPayload, Signer, canonical_json,
};

mod layer;
pub use layer::{
    RequestScope, audit_layer, client_ip, deposit, run_retention, set_headroom, take_trace,
};

/// Most records written in one transaction.
pub const MAX_BATCH: usize = 1_024;
/// Most records held in memory while the store cannot be written; beyond this the oldest
/// are dropped (and counted, and alerted on).
pub const MAX_PENDING: usize = 100_000;
/// Queue depth between request handlers and the writer.
pub const QUEUE_DEPTH: usize = 65_536;
/// How often a failing store is retried.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(250);
/// A request commits its own record only if none was committed that way within this gap: sparse traffic
/// then waits for one commit and no hand-off, while a burst (even from one task submitting
/// record after record) is queued and group-committed, which amortizes the commit.
pub const DIRECT_MIN_GAP: Duration = Duration::from_micros(200);
/// A checkpoint is signed at least this often while records arrive.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// Audit settings of one process.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// This process's chain.
    pub instance: String,
    /// Refuse requests while the audit store cannot be written.
    pub fail_closed: bool,
    /// Sign a checkpoint every this many records.
    pub checkpoint_every: u64,
}

/// What one route stores beside its records (payload policy, DP-2/DP-3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PayloadPolicy {
    /// The request as sent upstream (after masking).
    pub prompts: bool,
    /// The response as returned.
    pub completions: bool,
    /// The prompt before masking: only when a route explicitly asks.
    pub original_prompts: bool,
    /// Embedding vectors as returned (inputs follow `prompts`).
    pub embedding_vectors: bool,
}

/// A record being assembled for one request.
#[derive(Debug)]
pub struct Draft {
    /// Request id.
    pub request_id: String,
    /// When the request arrived.
    pub time: DateTime<Utc>,
    /// Key id.
    pub key_id: Option<String>,
    /// Team.
    pub team: Option<String>,
    /// Record fields.
    pub fields: Map<String, Value>,
    /// Plaintext payloads to seal.
    pub payloads: Vec<(PayloadKind, Vec<u8>)>,
    /// Class under which the response body is stored, if the route stores it.
    pub response_payload: Option<PayloadKind>,
}

impl Draft {
    /// Record the digest of the response as returned (and keep it, if the route says so).
    pub fn set_response(&mut self, bytes: &[u8]) {
        let kept = (self.response_payload.is_some() && bytes.len() <= MAX_PAYLOAD_BYTES)
            .then(|| bytes.to_vec());
        self.set_response_digest(digest(bytes), kept);
    }

    /// Record a response digest computed elsewhere (streams hash as they send), with the
    /// bytes to store if the route stores responses and they fitted.
    pub fn set_response_digest(&mut self, digest: [u8; 32], kept: Option<Vec<u8>>) {
        self.fields.insert(
            "response_sha256".to_owned(),
            Value::String(hex::encode(digest)),
        );
        if let Some(kind) = self.response_payload {
            match kept {
                Some(b) => self.payloads.push((kind, b)),
                None => {
                    self.fields
                        .insert("response_payload_skipped".to_owned(), json!("too large"));
                }
            }
        }
    }
}

/// Answers a request waiting for its record.
type Waiter = oneshot::Sender<Result<(), String>>;
/// A record on its way to the chain. The submitting task seals it itself when the day key
/// is in memory (nearly always), so sealing runs on every core in parallel and the single
/// writer only chains and commits; a draft is left for the writer otherwise.
enum Entry {
    /// Sealed by the writer (its day key has to be loaded from the store first).
    Draft(Draft),
    /// Payloads sealed and body made canonical.
    Sealed(NewRecord),
}

/// A record and, if a request waits for it, how to answer.
type Item = (Entry, Option<Waiter>);

enum Job {
    Append(Entry, Option<Waiter>),
    /// A record committed by its own request made a checkpoint due.
    Checkpoint,
    Flush(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
}

/// Waits for one record to be committed.
#[derive(Debug)]
pub struct Ticket(TicketState);

#[derive(Debug)]
enum TicketState {
    /// The writer has stopped.
    Lost,
    /// Committed before the ticket was issued.
    Done,
    /// Queued for the writer.
    Queued(oneshot::Receiver<Result<(), String>>),
}

impl Ticket {
    /// Wait until the record is durable; the error says why it is not.
    pub async fn durable(self) -> Result<(), String> {
        match self.0 {
            TicketState::Lost => Err("the audit writer has stopped".to_owned()),
            TicketState::Done => Ok(()),
            TicketState::Queued(rx) => rx
                .await
                .unwrap_or_else(|_| Err("the audit writer has stopped".to_owned())),
        }
    }
}

/// Handle to the audit writer.
#[derive(Debug)]
pub struct Auditor {
    tx: std::sync::mpsc::SyncSender<Job>,
    keyring: Keyring,
    mac_key: [u8; 32],
    verifying_key: ed25519_dalek::VerifyingKey,
    shared: Arc<Shared>,
    writer: Arc<Mutex<Writer>>,
}

#[derive(Debug)]
struct Shared {
    healthy: AtomicBool,
    fail_closed: bool,
    instance: String,
    written: AtomicU64,
    dropped: AtomicU64,
    failures: AtomicU64,
    /// Jobs sent and not yet taken by the writer thread.
    queued: AtomicU64,
    /// The store commits on the calling thread (embedded), so an idle writer can be skipped.
    direct: AtomicBool,
    /// When a request last committed its own record, in nanoseconds since `epoch`.
    last_direct: AtomicU64,
    epoch: std::time::Instant,
}

impl Auditor {
    /// Start the writer for `settings.instance` on `store`.
    pub fn start(
        store: Arc<dyn AuditStore>,
        keyring: Keyring,
        signer: Signer,
        mac_key: [u8; 32],
        settings: AuditSettings,
    ) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_DEPTH);
        let shared = Arc::new(Shared {
            healthy: AtomicBool::new(true),
            fail_closed: settings.fail_closed,
            instance: settings.instance.clone(),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            direct: AtomicBool::new(true),
            last_direct: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
        });
        let verifying_key = signer.verifying_key();
        let writer = Arc::new(Mutex::new(Writer {
            store,
            keyring: keyring.clone(),
            signer,
            mac_key,
            settings,
            shared: shared.clone(),
            pending: VecDeque::new(),
            head: None,
            last_checkpoint: 0,
        }));
        // The writer is an OS thread, not a task: a request waits for one wake-up to reach
        // it and one to come back, and an embedded store commits right on that thread.
        let rt = tokio::runtime::Handle::current();
        let thread_writer = writer.clone();
        let spawned = std::thread::Builder::new()
            .name("tollgate-audit".into())
            .spawn(move || Writer::run(thread_writer, rx, rt));
        if let Err(e) = spawned {
            tracing::error!(target: "tollgate::alert", error = %e, "cannot start the audit writer thread");
            shared.healthy.store(false, Ordering::Relaxed);
        }
        Self {
            tx,
            keyring,
            mac_key,
            verifying_key,
            shared,
            writer,
        }
    }

    /// Key of the records' MAC (for verification through the admin API).
    pub fn mac_key(&self) -> &[u8; 32] {
        &self.mac_key
    }

    /// Public key of the checkpoint signatures.
    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.verifying_key
    }

    /// This process's chain.
    pub fn instance(&self) -> &str {
        &self.shared.instance
    }

    /// Whether the last write succeeded.
    pub fn healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed)
    }

    /// Whether a failing audit store refuses requests (`audit.fail_closed`).
    pub fn fail_closed(&self) -> bool {
        self.shared.fail_closed
    }

    /// Whether requests are refused because the audit store is failing.
    pub fn refusing(&self) -> bool {
        self.shared.fail_closed && !self.healthy()
    }

    /// Records committed since start.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Records dropped because the store stayed unwritable too long.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Failed batch writes since start.
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::Relaxed)
    }

    /// Queue a record nobody waits for (a refusal, an admin action, a stream's own record).
    /// Under fail-closed such a record is still written when the store recovers, but it never
    /// reads as a withheld response.
    pub fn record(&self, draft: Draft) {
        let entry = match self.seal_and_commit(draft) {
            Ok(()) => return,
            Err(entry) => entry,
        };
        self.send(Job::Append(entry, None));
    }

    /// Queue a record; the ticket resolves once it is committed.
    pub fn submit(&self, draft: Draft) -> Ticket {
        let entry = match self.seal_and_commit(draft) {
            Ok(()) => return Ticket(TicketState::Done),
            Err(entry) => entry,
        };
        let (tx, rx) = oneshot::channel();
        match self.send(Job::Append(entry, Some(tx))) {
            true => Ticket(TicketState::Queued(rx)),
            false => Ticket(TicketState::Lost),
        }
    }

    /// Seal `draft` here if its day key is loaded and commit it here if the writer is idle;
    /// otherwise what is left for the writer.
    #[expect(
        clippy::result_large_err,
        reason = "the record comes back by value only when it must queue; boxing would allocate for every record"
    )]
    fn seal_and_commit(&self, draft: Draft) -> Result<(), Entry> {
        match seal_cached(&self.keyring, &draft) {
            Some(payloads) => {
                let record = assemble(&self.shared.instance, draft, payloads);
                self.commit_if_idle(record).map_err(Entry::Sealed)
            }
            None => Err(Entry::Draft(draft)),
        }
    }

    /// When the writer is idle (nothing queued, not busy, nothing to retry) and the store is
    /// embedded, commit the record on this thread: a lone request then waits for one SQLite
    /// commit and no thread hand-offs. Under load the writer is busy, this declines, and
    /// records are group-committed by the writer as before.
    #[expect(
        clippy::result_large_err,
        reason = "the record comes back by value only when it must queue; boxing would allocate for every record"
    )]
    fn commit_if_idle(&self, record: NewRecord) -> Result<(), NewRecord> {
        let since_epoch = |t: std::time::Instant| {
            u64::try_from((t - self.shared.epoch).as_nanos()).unwrap_or(u64::MAX)
        };
        let now = since_epoch(std::time::Instant::now());
        let last = self.shared.last_direct.load(Ordering::Relaxed);
        if !self.shared.direct.load(Ordering::Relaxed)
            || self.shared.queued.load(Ordering::Acquire) != 0
            || now.saturating_sub(last) < DIRECT_MIN_GAP.as_nanos() as u64
        {
            return Err(record);
        }
        let Some(mut w) = self.writer.try_lock() else {
            return Err(record);
        };
        let due = w.commit_now(record)?;
        drop(w);
        self.shared
            .last_direct
            .store(since_epoch(std::time::Instant::now()), Ordering::Relaxed);
        if due {
            self.send(Job::Checkpoint);
        }
        Ok(())
    }

    /// Queue a job; a full queue is waited out off the async runtime (back-pressure rather
    /// than loss). False if the writer has stopped.
    fn send(&self, job: Job) -> bool {
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(job) {
            Ok(()) => true,
            Err(std::sync::mpsc::TrySendError::Full(job)) => {
                let sender = self.tx.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = sender.send(job);
                });
                true
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                self.shared.queued.fetch_sub(1, Ordering::AcqRel);
                false
            }
        }
    }

    /// Wait until everything queued so far is written (or the writer gave up on it for now).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Job::Flush(tx)) {
            let _ = rx.await;
        }
    }

    /// Write what is queued, sign a final checkpoint and stop the writer.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Job::Stop(tx)) {
            let _ = rx.await;
        }
    }
}

struct Writer {
    store: Arc<dyn AuditStore>,
    keyring: Keyring,
    signer: Signer,
    mac_key: [u8; 32],
    settings: AuditSettings,
    shared: Arc<Shared>,
    /// Records that failed to write and wait for a retry, oldest first.
    pending: VecDeque<Item>,
    head: Option<ChainPos>,
    last_checkpoint: u64,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("instance", &self.settings.instance)
            .field("pending", &self.pending.len())
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// The writer thread: waits for jobs (or a retry or checkpoint tick), batches whatever is
    /// queued, and drives the async parts (sealing, non-embedded stores) on the runtime. It
    /// holds the writer's lock only while it works, so an idle writer lets a request commit
    /// its own record ([`Auditor::submit`]).
    #[expect(
        clippy::await_holding_lock,
        reason = "this thread holds the lock while it works, awaits included, on its own block_on; request tasks only try_lock it and never wait"
    )]
    fn run(
        writer: Arc<Mutex<Writer>>,
        rx: std::sync::mpsc::Receiver<Job>,
        rt: tokio::runtime::Handle,
    ) {
        rt.block_on(async {
            let mut w = writer.lock();
            if let Ok(Some(h)) = w.store.head(&w.settings.instance).await {
                w.head = Some(h);
            }
            if let Ok(cps) = w.store.checkpoints(&w.settings.instance).await {
                w.last_checkpoint = cps.last().map_or(0, |c| c.seq);
            }
        });
        let shared = writer.lock().shared.clone();
        let mut next_checkpoint = std::time::Instant::now() + CHECKPOINT_INTERVAL;
        let mut stop = None;
        loop {
            let retry = {
                let w = writer.lock();
                !w.pending.is_empty() || !w.shared.healthy.load(Ordering::Relaxed)
            };
            let now = std::time::Instant::now();
            let wait = next_checkpoint.saturating_duration_since(now);
            let wait = if retry {
                wait.min(RETRY_INTERVAL)
            } else {
                wait
            };
            let job = match rx.recv_timeout(wait) {
                Ok(j) => j,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let mut w = writer.lock();
                    if retry {
                        rt.block_on(w.retry());
                    }
                    if std::time::Instant::now() >= next_checkpoint {
                        rt.block_on(w.checkpoint());
                        next_checkpoint = std::time::Instant::now() + CHECKPOINT_INTERVAL;
                    }
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = Vec::new();
            let mut flushes = Vec::new();
            let mut sign = false;
            let mut push = |job: Job, batch: &mut Vec<_>| {
                shared.queued.fetch_sub(1, Ordering::AcqRel);
                match job {
                    Job::Append(d, w) => batch.push((d, w)),
                    Job::Checkpoint => sign = true,
                    Job::Flush(f) => flushes.push(f),
                    Job::Stop(f) => {
                        // Records after the final checkpoint go through the queue (and
                        // find it closed) rather than onto the chain behind its back.
                        shared.direct.store(false, Ordering::Relaxed);
                        stop = Some(f);
                    }
                }
            };
            push(job, &mut batch);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => push(j, &mut batch),
                    Err(_) => break,
                }
            }
            let mut w = writer.lock();
            rt.block_on(async {
                if !batch.is_empty() {
                    w.write(batch).await;
                }
                if !flushes.is_empty() || stop.is_some() {
                    if !w.pending.is_empty() {
                        w.retry().await;
                    }
                    w.checkpoint().await;
                    // The process may exit without dropping the store (which settles too):
                    // leave nothing staged behind a stopped gateway. A failure only delays
                    // it: staged records are durable, and the next open settles them.
                    if stop.is_some()
                        && let Err(e) = w.store.settle().await
                    {
                        tracing::warn!(error = %e, "settling staged audit records at shutdown failed; the next open settles them");
                    }
                } else if sign {
                    w.checkpoint().await;
                }
            });
            drop(w);
            for f in flushes {
                let _ = f.send(());
            }
            if stop.is_some() {
                break;
            }
        }
        // Stop signed the head already; a dropped handle (the runtime may be gone) just ends.
        if let Some(f) = stop {
            let _ = f.send(());
        }
    }

    /// Commit one sealed record right here, on the caller's thread, if the store is embedded
    /// and nothing waits for a retry; `Ok(true)` when a checkpoint is now due. The record
    /// comes back for the queue otherwise, and a failure is left to the writer, which
    /// retries it and applies `audit.fail_closed`.
    #[expect(
        clippy::result_large_err,
        reason = "the record comes back by value only when it must queue; boxing would allocate for every record"
    )]
    fn commit_now(&mut self, record: NewRecord) -> Result<bool, NewRecord> {
        if !self.pending.is_empty() || !self.shared.healthy.load(Ordering::Relaxed) {
            return Err(record);
        }
        let done = self
            .store
            .append_one_blocking(&self.settings.instance, &record, &self.mac_key);
        let head = match done {
            Some(Ok(h)) => h,
            None => {
                self.shared.direct.store(false, Ordering::Relaxed);
                return Err(record);
            }
            Some(Err(_)) => return Err(record),
        };
        self.head = Some(head);
        self.shared.written.fetch_add(1, Ordering::Relaxed);
        Ok(self.checkpoint_due(head))
    }

    fn checkpoint_due(&self, head: ChainPos) -> bool {
        let every = self.settings.checkpoint_every.max(1);
        head.seq / every > self.last_checkpoint / every
    }

    /// Seal what the submitting task could not (its day key was not loaded yet).
    async fn seal(&self, entry: Entry) -> Result<NewRecord, (Entry, String)> {
        let d = match entry {
            Entry::Sealed(r) => return Ok(r),
            Entry::Draft(d) => d,
        };
        let mut payloads = Vec::with_capacity(d.payloads.len());
        for (kind, bytes) in &d.payloads {
            match self.keyring.seal(&d.request_id, *kind, d.time, bytes).await {
                Ok(p) => payloads.push(p),
                Err(e) => return Err((Entry::Draft(d), e.to_string())),
            }
        }
        Ok(assemble(&self.settings.instance, d, payloads))
    }

    async fn write(&mut self, batch: Vec<Item>) {
        // Earlier failures go first so the chain keeps arrival order.
        if !self.pending.is_empty() {
            self.pending.extend(batch);
            self.retry().await;
            return;
        }
        match self.try_write(batch).await {
            Ok(waiters) => answer_ok(waiters),
            Err((batch, e)) => self.failed(batch, &e),
        }
    }

    /// Seal, chain and commit `batch`; on success the waiters to answer, on failure the
    /// batch back, in order, with the reason.
    async fn try_write(
        &mut self,
        batch: Vec<Item>,
    ) -> Result<Vec<Option<Waiter>>, (Vec<Item>, String)> {
        let mut records = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        let mut rest = batch.into_iter();
        while let Some((entry, w)) = rest.next() {
            match self.seal(entry).await {
                Ok(r) => {
                    records.push(r);
                    waiters.push(w);
                }
                Err((entry, e)) => {
                    let mut back = unsealed(records, waiters);
                    back.push((entry, w));
                    back.extend(rest);
                    return Err((back, e));
                }
            }
        }
        // This runs on the writer thread, so an embedded store commits right here (a SQLite
        // commit takes tens of microseconds); handing the batch to yet another thread and
        // back would cost more than the commit itself.
        let direct = self
            .store
            .append_blocking(&self.settings.instance, &records, &self.mac_key);
        let head = match direct {
            Some(r) => r,
            None => {
                self.store
                    .append(&self.settings.instance, &records, &self.mac_key)
                    .await
            }
        };
        let head = match head {
            Ok(h) => h,
            Err(e) => return Err((unsealed(records, waiters), e.to_string())),
        };
        self.head = Some(head);
        self.shared
            .written
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        if !self.shared.healthy.swap(true, Ordering::Relaxed) {
            tracing::warn!(target: "tollgate::alert", instance = %self.settings.instance, "audit store writable again; requests are admitted");
        }
        if self.checkpoint_due(head) {
            self.checkpoint().await;
        }
        Ok(waiters)
    }

    fn failed(&mut self, batch: Vec<Item>, error: &str) {
        self.shared.failures.fetch_add(1, Ordering::Relaxed);
        if self.shared.healthy.swap(false, Ordering::Relaxed) {
            tracing::error!(
                target: "tollgate::alert",
                instance = %self.settings.instance,
                error = %error,
                fail_closed = self.settings.fail_closed,
                "audit store cannot be written; {}",
                if self.settings.fail_closed { "refusing requests until it can (audit.fail_closed)" } else { "serving anyway (audit.fail_closed = false); records are queued" }
            );
        }
        for item in batch {
            let item = self.answer_failed(item, error);
            self.pending.push_back(item);
        }
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_front();
            let n = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_power_of_two() {
                tracing::error!(target: "tollgate::alert", dropped = n, "audit records dropped: the store has been unwritable too long");
            }
        }
    }

    /// Tell a waiting request that its record is not durable yet: under fail-closed its client
    /// gets a 503 instead of the response (and the record is amended to say so); otherwise it
    /// is served and the record stays queued.
    fn answer_failed(&self, (mut entry, w): Item, error: &str) -> Item {
        // A dropped ticket means nobody waits for this record (a refusal, a stream's
        // fire-and-forget record): there is no response to withhold.
        if let Some(w) = w.filter(|w| !w.is_closed()) {
            if self.settings.fail_closed {
                amend_withheld(&mut entry);
                let _ = w.send(Err(error.to_owned()));
            } else {
                let _ = w.send(Ok(()));
            }
        }
        (entry, None)
    }

    async fn retry(&mut self) {
        if self.pending.is_empty() {
            if self.store.writable().await.is_ok() {
                self.shared.healthy.store(true, Ordering::Relaxed);
            }
            return;
        }
        while !self.pending.is_empty() {
            let n = self.pending.len().min(MAX_BATCH);
            let batch: Vec<_> = self.pending.drain(..n).collect();
            match self.try_write(batch).await {
                Ok(waiters) => answer_ok(waiters),
                Err((batch, e)) => {
                    // Put them back in front, in order, and wait for the next retry; nobody
                    // is kept waiting meanwhile.
                    for item in batch.into_iter().rev() {
                        let item = self.answer_failed(item, &e);
                        self.pending.push_front(item);
                    }
                    self.shared.failures.fetch_add(1, Ordering::Relaxed);
                    self.shared.healthy.store(false, Ordering::Relaxed);
                    tracing::debug!(error = %e, pending = self.pending.len(), "audit retry failed");
                    return;
                }
            }
        }
    }

    async fn checkpoint(&mut self) {
        let Some(head) = self.head else { return };
        if head.seq == 0 || head.seq <= self.last_checkpoint {
            return;
        }
        let cp = self
            .signer
            .checkpoint(&self.settings.instance, head.seq, &head.hash);
        match self.store.put_checkpoint(&cp).await {
            Ok(()) => self.last_checkpoint = head.seq,
            Err(e) => tracing::warn!(error = %e, "cannot store an audit checkpoint"),
        }
    }
}

/// Seal `d`'s payloads with day keys already in memory; `None` if any key is not loaded (or
/// sealing failed), so the writer seals the draft and reports a failure properly.
fn seal_cached(keyring: &Keyring, d: &Draft) -> Option<Vec<SealedPayload>> {
    d.payloads
        .iter()
        .map(|(kind, bytes)| {
            keyring
                .seal_cached(&d.request_id, *kind, d.time, bytes)
                .and_then(Result::ok)
        })
        .collect()
}

/// The chain record of `d`, with its sealed payloads referenced by digest.
fn assemble(instance: &str, d: Draft, payloads: Vec<SealedPayload>) -> NewRecord {
    let Draft {
        request_id,
        time,
        key_id,
        team,
        mut fields,
        ..
    } = d;
    fields.insert("request_id".to_owned(), Value::String(request_id.clone()));
    fields.insert(
        "time".to_owned(),
        Value::String(time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    );
    fields.insert("key_id".to_owned(), json!(key_id));
    fields.insert("team".to_owned(), json!(team));
    fields.insert("instance".to_owned(), json!(instance));
    if !payloads.is_empty() {
        let stored: Map<String, Value> = payloads
            .iter()
            .map(|p| {
                (
                    p.kind.as_str().to_owned(),
                    Value::String(hex::encode(p.digest)),
                )
            })
            .collect();
        fields.insert("payloads".to_owned(), Value::Object(stored));
    }
    let kind = if fields.contains_key("action") {
        RecordKind::Admin
    } else {
        RecordKind::Request
    };
    let mut r = NewRecord::new(time, kind, request_id, key_id, team, &Value::Object(fields));
    r.payloads = payloads;
    r
}

/// Mark a record whose response was withheld because it could not be made durable.
fn amend_withheld(entry: &mut Entry) {
    let extra = [
        ("status", json!(503)),
        ("error_class", json!("audit_unavailable")),
        ("response_withheld", json!(true)),
    ];
    match entry {
        Entry::Draft(d) => {
            for (k, v) in extra {
                d.fields.insert(k.to_owned(), v);
            }
        }
        Entry::Sealed(r) => {
            // The body is canonical JSON this module made, so it parses; it is re-made
            // canonical here, before it is chained.
            if let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(&r.body) {
                for (k, v) in extra {
                    fields.insert(k.to_owned(), v);
                }
                r.body = canonical_json(&Value::Object(fields));
            }
        }
    }
}

/// Records back into queue items, in order, after a failed write.
fn unsealed(records: Vec<NewRecord>, waiters: Vec<Option<Waiter>>) -> Vec<Item> {
    records
        .into_iter()
        .map(Entry::Sealed)
        .zip(waiters)
        .collect()
}

fn answer_ok(waiters: Vec<Option<Waiter>>) {
    for w in waiters.into_iter().flatten() {
        let _ = w.send(Ok(()));
    }
}
