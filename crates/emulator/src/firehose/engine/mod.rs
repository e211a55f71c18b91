//! The delivery engine: one runtime per delivery stream that journals accepted records, buffers them, cuts an
//! object when the buffer reaches SizeInMBs or its oldest record is IntervalInSeconds old (whichever first),
//! and delivers objects to S3 in order.
//!
//! Records are concatenated byte-exact with no delimiter. Keys follow AWS's layout:
//! `<evaluated prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><ext>` in UTC from the oldest record's
//! arrival. Before each object is written, [`Gate::check`] decides whether the role may write it (as IAM and S3
//! would); a failed object is kept (journaled, in order) and retried with backoff, its failure counted and logged
//! where the stream logs errors, until it is delivered or its oldest record is older than the retry horizon
//! (24 h as on AWS; `local --delivery-retry-horizon`), when it is dropped, counted and traced. A stream with a
//! Lambda processor buffers for the function first and hands each buffer to its `transform` stage; the records
//! the function returns go through a second runtime to S3 (see `Stages`).

/// The Lambda processor's stage: a sealed buffer handed to the function instead of S3.
mod transform;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc};

use std::collections::BTreeMap;

use super::gate::{Failure, Gate};
use super::journal::{self, Journal, Pending, Progress};
use super::quota::Limiter;
pub use super::target::{PartitionSpec, Target};
use crate::s3::{PutAttrs, Store, StoreError};
use firehose_kit_domain::keys;
use firehose_kit_domain::partitioning::{self, Route};
use firehose_kit_domain::prefix::Context;
use firehose_kit_domain::util::persist::Durability;

/// The partitions of a partitioned stream: one runtime (journal, buffer, delivery loop) per partition, plus one
/// for the error output, each in `<stream dir>/partitions/<id>/`.
struct Partitions {
    by_id: BTreeMap<String, Arc<Runtime>>,
    store: Arc<Store>,
    next_record: u64,
}

/// Records routed to one partition in one call: its id, its keys, the records' bytes.
type Group = (String, BTreeMap<String, String>, Vec<Vec<u8>>);

/// The id (directory name) of a partition: a hash of its keys, or `errors`.
fn partition_id(keys: Option<&BTreeMap<String, String>>) -> String {
    match keys {
        None => "errors".into(),
        Some(keys) => {
            let text = serde_json::to_string(keys).expect("keys serialize");
            format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
        }
    }
}

/// The emulator's budget for buffered record bytes held in memory, shared by every stream. Buffered records are
/// always in the journal on disk; a buffer keeps a copy in memory only while the budget allows, so delivery need
/// not read it back. Past the budget nothing is refused: new buffers simply stay on disk, and their objects are
/// streamed from the journal.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Self {
        MemoryBudget { limit, used: AtomicUsize::new(0) }
    }

    /// Takes `n` bytes of the budget, if they are left.
    fn try_reserve(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| used.checked_add(n).filter(|&u| u <= self.limit))
            .is_ok()
    }

    fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Bytes of buffered records held in memory now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// A cut buffer on its way to S3: the journal range of its records, and their bytes when they are in memory.
pub(super) struct Sealed {
    /// The journal range `[start, end_offset)`.
    pub(super) start: u64,
    pub(super) end_offset: u64,
    pub(super) data_len: usize,
    pub(super) cached: Option<Vec<u8>>,
    pub(super) records: usize,
    pub(super) oldest_ms: i64,
    pub(super) target: Target,
}

#[derive(Default)]
struct Buffer {
    /// Journal offset of the first record's frame.
    start: u64,
    /// Journal offset just after the last record.
    end_offset: u64,
    data_len: usize,
    /// The records' bytes while the memory budget allows; `None` once the buffer has spilled to the journal.
    cached: Option<Vec<u8>>,
    records: usize,
    oldest_ms: Option<i64>,
}

struct Inner {
    journal: Journal,
    buffer: Buffer,
    target: Target,
    limiter: Option<Limiter>,
    budget: Arc<MemoryBudget>,
}

/// One delivery stream's data plane.
pub struct Runtime {
    pub(super) dir: PathBuf,
    inner: Mutex<Inner>,
    tx: Mutex<Option<mpsc::UnboundedSender<Sealed>>>,
    /// Objects sealed and not yet delivered (or dropped).
    in_flight: Arc<AtomicUsize>,
    drained: Arc<Notify>,
    /// Set when the stream is deleted: undeliverable objects are then dropped instead of retried.
    gone: Arc<AtomicBool>,
    /// Delivery checks and failure accounting (shared by every stream of the emulator).
    pub(super) gate: Arc<Gate>,
    budget: Arc<MemoryBudget>,
    /// Set on a partitioned stream's runtime: its records go to these, never to its own journal.
    partitions: Option<Mutex<Partitions>>,
    /// Set on a transforming stream's runtime (at its start, or when UpdateDestination adds a Lambda processor):
    /// it buffers records for the function, and what the function makes of them goes to these.
    pub(super) stages: std::sync::OnceLock<Stages>,
    /// The emulator's S3, where this runtime (and stages started later) deliver.
    store: Arc<Store>,
    /// Every record before this journal offset is in S3 (or dropped): what `delivered.json` says, kept here so a
    /// failure to rewrite that file after an object landed can neither deliver the object again nor roll the
    /// file's offset back.
    delivered: std::sync::atomic::AtomicU64,
}

/// Where a transforming stream's records go once the function has answered: the transformed records to the
/// destination's runtime (`<dir>/transformed`, partitioned when the stream is), the failed ones to the error
/// output's (`<dir>/processing-failed`).
pub(super) struct Stages {
    pub(super) downstream: Arc<Runtime>,
    pub(super) errors: Arc<Runtime>,
}

/// Opens a runtime's journal and its progress, settling an object that was being written when the process died
/// (delivered if the store has it).
fn open_journal(dir: &Path, store: &Store, durability: Durability) -> std::io::Result<(Journal, Progress)> {
    let mut journal = Journal::open(dir, durability)?;
    let mut progress = journal::read_progress(dir)?;
    if let Some(pending) = progress.pending.take() {
        if store.contains(&pending.bucket, &pending.key) {
            progress.offset = pending.end;
        }
        journal::write_progress(dir, &progress, durability)?;
    }
    if progress.offset > journal.end() {
        tracing::warn!(
            "journal `{}` ends at {} but records up to {} were delivered: new records continue after them",
            dir.display(),
            journal.end(),
            progress.offset
        );
        journal.skip_to(progress.offset)?;
    }
    Ok((journal, progress))
}

/// The targets of a transforming stream's two stages.
fn stage_targets(target: &Target) -> (Target, Target) {
    let p = target.processing.clone().expect("a transforming target");
    let downstream =
        Target { processing: None, size_bytes: p.size_bytes, interval_ms: p.interval_ms, ..target.clone() };
    let errors = Target {
        processing: None,
        partitioning: None,
        conversion: None,
        keys: None,
        prefix: p.error_prefix.clone(),
        output_type: Some(firehose_kit_domain::transform::ERROR_OUTPUT_TYPE),
        ..downstream.clone()
    };
    (downstream, errors)
}

/// Records accepted into the journal: their end offsets (used as record ids).
pub struct Accepted {
    pub ends: Vec<u64>,
}

fn seal(buffer: &mut Buffer, target: &Target) -> Option<Sealed> {
    let oldest_ms = buffer.oldest_ms.take()?;
    let buf = std::mem::take(buffer);
    buffer.end_offset = buf.end_offset;
    buffer.start = buf.end_offset;
    Some(Sealed {
        start: buf.start,
        end_offset: buf.end_offset,
        data_len: buf.data_len,
        cached: buf.cached,
        records: buf.records,
        oldest_ms,
        target: target.clone(),
    })
}

impl Runtime {
    /// Opens a stream's runtime on its journal directory, re-buffering every record not yet delivered (after
    /// settling an object that was being written when the process died), and starts its delivery task.
    pub fn start(
        dir: PathBuf,
        target: Target,
        limiter: Option<Limiter>,
        store: Arc<Store>,
        gate: Arc<Gate>,
        budget: Arc<MemoryBudget>,
    ) -> std::io::Result<Arc<Self>> {
        let (journal, progress) = open_journal(&dir, &store, gate.durability)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let partitions = (target.partitioning.is_some() && target.processing.is_none()).then(|| {
            let first = (crate::s3::store::now_ms().max(0) as u64) << 16;
            Mutex::new(Partitions { by_id: BTreeMap::new(), store: store.clone(), next_record: first })
        });
        let transforming = target.processing.is_some();
        let rt = Arc::new(Runtime {
            dir: dir.clone(),
            inner: Mutex::new(Inner {
                journal,
                buffer: Buffer { start: progress.offset, end_offset: progress.offset, ..Default::default() },
                target,
                limiter,
                budget: budget.clone(),
            }),
            tx: Mutex::new(Some(tx)),
            in_flight: Arc::default(),
            drained: Arc::default(),
            gone: Arc::default(),
            gate,
            budget,
            partitions,
            stages: std::sync::OnceLock::new(),
            store: store.clone(),
            delivered: std::sync::atomic::AtomicU64::new(progress.offset),
        });
        if transforming {
            let target = rt.inner.lock().expect("runtime lock").target.clone();
            rt.start_stages(&target)?;
        }
        rt.restart_partitions()?;
        rt.rebuffer(progress.offset)?;
        tokio::spawn(deliver_loop(rt.clone(), rx, store));
        Ok(rt)
    }

    /// Starts the stages of a transforming runtime (the transformed records' runtime and the processing-failed
    /// one, in subdirectories), once.
    fn start_stages(&self, target: &Target) -> std::io::Result<()> {
        if self.stages.get().is_some() {
            return Ok(());
        }
        let (downstream, errors) = stage_targets(target);
        let start = |name: &str, t: Target| {
            Runtime::start(self.dir.join(name), t, None, self.store.clone(), self.gate.clone(), self.budget.clone())
        };
        let stages =
            Stages { downstream: start("transformed", downstream)?, errors: start("processing-failed", errors)? };
        let _ = self.stages.set(stages);
        Ok(())
    }

    /// A partitioned stream's records live in its partitions' journals: restarts each of them.
    fn restart_partitions(&self) -> std::io::Result<()> {
        let Some(parts) = &self.partitions else { return Ok(()) };
        let mut parts = parts.lock().expect("partitions lock");
        let root = self.dir.join("partitions");
        std::fs::create_dir_all(&root)?;
        for entry in std::fs::read_dir(&root)? {
            let entry = entry?;
            let keys: Option<Option<BTreeMap<String, String>>> =
                firehose_kit_domain::util::persist::read_json(&entry.path().join("partition.json"))?;
            if let Some(keys) = keys {
                self.child(&mut parts, keys)?;
            }
        }
        Ok(())
    }

    /// Re-buffers what was acknowledged but not delivered (from `offset` on), from the frame headers alone: the
    /// bytes stay in the journal and are streamed into the objects.
    fn rebuffer(&self, offset: u64) -> std::io::Result<()> {
        let mut inner = self.inner.lock().expect("runtime lock");
        let mut sealed = Vec::new();
        let mut records = 0u64;
        let Inner { buffer, target, .. } = &mut *inner;
        journal::scan_from(&self.dir, offset, |arrival_ms, len, end| {
            records += 1;
            sealed.extend(append(buffer, target, Record::OnDisk(len as usize), arrival_ms, end, None));
        })?;
        if records > 0 {
            tracing::info!(stream = %target.stream, records, "re-buffering records acknowledged before a restart");
        }
        drop(inner);
        for s in sealed {
            self.dispatch(s);
        }
        Ok(())
    }

    fn dispatch(&self, sealed: Sealed) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let sent = self.tx.lock().expect("runtime tx").as_ref().map(|tx| tx.send(sealed).is_ok()).unwrap_or(false);
        if !sent {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The stream (or partition) this runtime delivers for, and its journal directory.
    pub fn describe(&self) -> (String, PathBuf) {
        (self.inner.lock().expect("runtime lock").target.stream.clone(), self.dir.clone())
    }

    /// The target this runtime delivers to now.
    pub fn target(&self) -> Target {
        self.inner.lock().expect("runtime lock").target.clone()
    }

    /// Applies the quota to a request; `false` means the whole call is throttled.
    pub fn admit_request(&self) -> bool {
        let mut inner = self.inner.lock().expect("runtime lock");
        inner.limiter.as_mut().is_none_or(Limiter::admit_request)
    }

    /// Applies the quota to one record; `false` means it is throttled.
    pub fn admit_record(&self, size: usize) -> bool {
        let mut inner = self.inner.lock().expect("runtime lock");
        inner.limiter.as_mut().is_none_or(|l| l.admit_record(size))
    }

    /// Journals and buffers records (blocking I/O: call from a blocking thread). Only after this returns may the
    /// records be acknowledged.
    pub fn accept(&self, records: &[&[u8]], arrival_ms: i64) -> std::io::Result<Accepted> {
        if let Some(parts) = &self.partitions {
            return self.accept_partitioned(parts, records, arrival_ms);
        }
        let mut inner = self.inner.lock().expect("runtime lock");
        let ends = inner.journal.append(arrival_ms, records.iter().copied())?;
        let mut sealed = Vec::new();
        {
            let Inner { buffer, target, budget, .. } = &mut *inner;
            for (record, &end) in records.iter().zip(&ends) {
                sealed.extend(append(buffer, target, Record::InMemory(record), arrival_ms, end, Some(budget)));
            }
        }
        drop(inner);
        for s in sealed {
            self.dispatch(s);
        }
        Ok(Accepted { ends })
    }

    /// Cuts the buffer if its oldest record has waited IntervalInSeconds (or `force`); a partitioned stream
    /// does it for each partition, and forgets partitions that are idle (delivered, nothing buffered).
    pub fn flush_due(&self, now_ms: i64, force: bool) {
        if let Some(parts) = &self.partitions {
            let children: Vec<Arc<Runtime>> = {
                let mut parts = parts.lock().expect("partitions lock");
                if !force {
                    let idle: Vec<String> =
                        parts.by_id.iter().filter(|(_, rt)| rt.is_idle()).map(|(id, _)| id.clone()).collect();
                    for id in idle {
                        if let Some(rt) = parts.by_id.remove(&id) {
                            rt.close();
                            let _ = std::fs::remove_dir_all(&rt.dir);
                        }
                    }
                }
                parts.by_id.values().cloned().collect()
            };
            for child in children {
                child.flush_due(now_ms, force);
            }
            return;
        }
        if let Some(stages) = self.stages.get() {
            stages.downstream.flush_due(now_ms, force);
            stages.errors.flush_due(now_ms, force);
        }
        let mut inner = self.inner.lock().expect("runtime lock");
        let due = inner.buffer.oldest_ms.is_some_and(|oldest| force || now_ms - oldest >= inner.target.interval_ms);
        if !due {
            return;
        }
        let Inner { buffer, target, .. } = &mut *inner;
        let sealed = seal(buffer, target);
        drop(inner);
        if let Some(s) = sealed {
            self.dispatch(s);
        }
    }

    /// Delivers what is buffered under the current target, then switches to a new one (UpdateDestination).
    pub fn retarget(&self, target: Target) {
        self.flush_due(0, true);
        let transforming = target.processing.is_some();
        if let Some(stages) = self.stages.get()
            && transforming
        {
            let (downstream, errors) = stage_targets(&target);
            stages.downstream.retarget(downstream);
            stages.errors.retarget(errors);
        }
        // A Lambda processor added by UpdateDestination: the stages start before the new target is published, so
        // every buffer sealed for the function finds them (deliver_loop waits for them otherwise).
        if transforming && let Err(e) = self.start_stages(&target) {
            tracing::error!("cannot start the transformation stages under {}: {e}", self.dir.display());
        }
        self.inner.lock().expect("runtime lock").target = target;
        if let Some(parts) = &self.partitions {
            let parts = parts.lock().expect("partitions lock");
            for child in parts.by_id.values() {
                let keys = child.inner.lock().expect("runtime lock").target.keys.clone();
                child.retarget(self.child_target(keys));
            }
        }
    }

    /// Whether nothing is buffered or on its way to S3.
    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0 && self.inner.lock().expect("runtime lock").buffer.records == 0
    }

    /// Ends the delivery loop of an idle runtime (its directory is the caller's to remove).
    fn close(&self) {
        self.tx.lock().expect("runtime tx").take();
    }

    /// The target of one partition (`keys`) or of the error output (`None`).
    fn child_target(&self, keys: Option<BTreeMap<String, String>>) -> Target {
        let base = self.inner.lock().expect("runtime lock").target.clone();
        let spec = base.partitioning.clone().expect("a partitioned runtime");
        Target {
            prefix: if keys.is_some() { base.prefix.clone() } else { spec.error_prefix.clone() },
            output_type: keys.is_none().then_some(partitioning::ERROR_OUTPUT_TYPE),
            partitioning: None,
            conversion: if keys.is_some() { base.conversion.clone() } else { None },
            keys,
            ..base
        }
    }

    /// The runtime of a partition, started (in `<dir>/partitions/<id>`) if it is not running.
    fn child(&self, parts: &mut Partitions, keys: Option<BTreeMap<String, String>>) -> std::io::Result<Arc<Runtime>> {
        let id = partition_id(keys.as_ref());
        if let Some(rt) = parts.by_id.get(&id) {
            return Ok(rt.clone());
        }
        let dir = self.dir.join("partitions").join(&id);
        std::fs::create_dir_all(&dir)?;
        firehose_kit_domain::util::persist::write_json(&dir.join("partition.json"), &keys)?;
        let target = self.child_target(keys);
        let rt = Runtime::start(dir, target, None, parts.store.clone(), self.gate.clone(), self.budget.clone())?;
        parts.by_id.insert(id, rt.clone());
        Ok(rt)
    }

    /// Routes records to their partitions (deaggregated, keys extracted, delimiter appended) and journals them
    /// there; records that cannot be partitioned, or that would open a partition beyond the limit, go to the error
    /// output in an error document. Returns an id per record.
    fn accept_partitioned(
        &self,
        parts: &Mutex<Partitions>,
        records: &[&[u8]],
        arrival_ms: i64,
    ) -> std::io::Result<Accepted> {
        let spec = self.inner.lock().expect("runtime lock").target.partitioning.clone().expect("partitioned");
        let now = crate::s3::store::now_ms();
        // Partitions in the order their first record came (the order the limit is applied in).
        let mut groups: Vec<Group> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut errors: Vec<Vec<u8>> = Vec::new();
        for record in records {
            for route in spec.partitioner.route(record) {
                match route {
                    Route::Partition { keys, data } => {
                        let id = partition_id(Some(&keys));
                        let at = *index.entry(id.clone()).or_insert_with(|| {
                            groups.push((id, keys, Vec::new()));
                            groups.len() - 1
                        });
                        groups[at].2.push(data);
                    }
                    Route::Failed { code, message, data } => {
                        errors.push(partitioning::error_record(code, &message, &data, arrival_ms, now))
                    }
                }
            }
        }
        let mut parts = parts.lock().expect("partitions lock");
        let mut active = parts.by_id.iter().filter(|(id, rt)| *id != "errors" && !rt.is_idle()).count();
        for (id, keys, datas) in groups {
            let is_active = parts.by_id.get(&id).is_some_and(|rt| !rt.is_idle());
            if !is_active && active >= spec.limit {
                let message = format!("the stream already has {} active partitions (the limit)", spec.limit);
                let original = |d: &Vec<u8>| -> Vec<u8> {
                    let d = if spec.partitioner.append_delimiter { d.strip_suffix(b"\n").unwrap_or(d) } else { d };
                    d.to_vec()
                };
                errors.extend(datas.iter().map(|d| {
                    partitioning::error_record(
                        partitioning::PARTITIONS_EXCEEDED,
                        &message,
                        &original(d),
                        arrival_ms,
                        now,
                    )
                }));
                continue;
            }
            active += usize::from(!is_active);
            let rt = self.child(&mut parts, Some(keys))?;
            let refs: Vec<&[u8]> = datas.iter().map(Vec::as_slice).collect();
            rt.accept(&refs, arrival_ms)?;
        }
        if !errors.is_empty() {
            let rt = self.child(&mut parts, None)?;
            let refs: Vec<&[u8]> = errors.iter().map(Vec::as_slice).collect();
            rt.accept(&refs, arrival_ms)?;
        }
        let first = parts.next_record;
        parts.next_record += records.len() as u64;
        Ok(Accepted { ends: (first..parts.next_record).collect() })
    }

    /// Waits until every sealed object is delivered, or `timeout`; returns whether all were.
    pub async fn drain(&self, timeout: Duration) -> bool {
        if let Some(parts) = &self.partitions {
            let children: Vec<Arc<Runtime>> = parts.lock().expect("partitions lock").by_id.values().cloned().collect();
            let mut all = true;
            for child in children {
                all &= Box::pin(child.drain(timeout)).await;
            }
            return all;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let own = loop {
            let notified = self.drained.notified();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                break true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break self.in_flight.load(Ordering::SeqCst) == 0;
            }
        };
        match self.stages.get() {
            // What the function made of the last buffers is buffered downstream now: cut and deliver it too.
            Some(stages) => {
                stages.downstream.flush_due(0, true);
                stages.errors.flush_due(0, true);
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let downstream = Box::pin(stages.downstream.drain(left)).await;
                let errors = Box::pin(stages.errors.drain(left)).await;
                own && downstream && errors
            }
            None => own,
        }
    }

    /// The stream was deleted: deliver what is queued if possible, then remove the journal.
    pub fn retire(&self) {
        if let Some(parts) = &self.partitions {
            for child in parts.lock().expect("partitions lock").by_id.values() {
                child.retire();
            }
        }
        if let Some(stages) = self.stages.get() {
            stages.downstream.retire();
            stages.errors.retire();
        }
        self.flush_due(0, true);
        self.gone.store(true, Ordering::SeqCst);
        // Dropping the sender ends the delivery loop once the queue is empty.
        self.tx.lock().expect("runtime tx").take();
    }
}

/// A record being buffered: its bytes (just accepted), or only its length (re-buffered after a restart; the
/// bytes are read from the journal at delivery).
#[derive(Clone, Copy)]
enum Record<'a> {
    InMemory(&'a [u8]),
    OnDisk(usize),
}

impl Record<'_> {
    fn len(&self) -> usize {
        match self {
            Record::InMemory(data) => data.len(),
            Record::OnDisk(len) => *len,
        }
    }
}

/// Appends one record that ends at journal offset `end`. A record that would take the buffer past the size
/// hint first cuts the buffer as it is, so objects stay at or under SizeInMBs ("about" the hint, by record
/// boundaries); a buffer that reaches the hint exactly is cut at once. The bytes are kept in memory while
/// `budget` allows (never without one); otherwise the buffer spills: its copy is dropped and delivery reads
/// the journal. Returns the objects cut.
fn append(
    buffer: &mut Buffer,
    target: &Target,
    record: Record<'_>,
    arrival_ms: i64,
    end: u64,
    budget: Option<&MemoryBudget>,
) -> Vec<Sealed> {
    let len = record.len();
    let mut sealed = Vec::new();
    if buffer.records > 0 && buffer.data_len + len > target.size_bytes {
        sealed.extend(seal(buffer, target));
    }
    if buffer.oldest_ms.is_none() {
        buffer.oldest_ms = Some(arrival_ms);
        buffer.start = end - journal::FRAME_HEADER - len as u64;
        buffer.cached = Some(Vec::new());
    }
    match (&mut buffer.cached, record, budget) {
        (Some(cached), Record::InMemory(data), Some(budget)) if budget.try_reserve(len) => {
            cached.extend_from_slice(data)
        }
        (cached, _, budget) => {
            if let (Some(dropped), Some(budget)) = (cached.take(), budget) {
                budget.release(dropped.len());
            }
        }
    }
    buffer.data_len += len;
    buffer.records += 1;
    buffer.end_offset = end;
    if buffer.data_len >= target.size_bytes {
        sealed.extend(seal(buffer, target));
    }
    sealed
}

/// The object key for a buffer whose oldest record arrived at `oldest_ms`.
pub fn object_key(target: &Target, oldest_ms: i64) -> String {
    let at: DateTime<Utc> = DateTime::from_timestamp_millis(oldest_ms).unwrap_or_default();
    let mut ctx = Context::new(at, target.zone);
    ctx.partition_keys = target.keys.as_ref();
    if let Some(t) = target.output_type {
        ctx.error_output_type = t;
    }
    // A partition's runtime has every key its prefix names (the query was checked against the prefix at create).
    let prefix = target.prefix.evaluate(&ctx).unwrap_or_else(|_| target.prefix.static_part());
    keys::object_key(&prefix, &target.stream, target.version, at, target.zone, &uuid::Uuid::new_v4(), &target.extension)
}

async fn deliver_loop(rt: Arc<Runtime>, mut rx: mpsc::UnboundedReceiver<Sealed>, store: Arc<Store>) {
    let horizon_ms = rt.gate.horizon.as_millis().min(i64::MAX as u128) as i64;
    while let Some(sealed) = rx.recv().await {
        let sealed = Arc::new(sealed);
        let mut backoff = Duration::from_millis(500).div_f64(rt.gate.speed);
        let max_backoff = MAX_BACKOFF.div_f64(rt.gate.speed);
        loop {
            let age_ms = crate::s3::store::now_ms() - sealed.oldest_ms;
            if age_ms >= horizon_ms {
                let (rt2, s2) = (rt.clone(), sealed.clone());
                let result = tokio::task::spawn_blocking(move || discard(&rt2, &s2)).await;
                rt.gate.dropped_records.fetch_add(sealed.records as u64, Ordering::Relaxed);
                tracing::warn!(stream = %sealed.target.stream, bucket = %sealed.target.bucket, records = sealed.records, bytes = sealed.data_len, "dropping data that could not be delivered within the retry horizon of {:?}", rt.gate.horizon);
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!("cannot record dropped data in the journal: {e}"),
                    Err(e) => tracing::error!("cannot record dropped data in the journal: {e}"),
                }
                break;
            }
            if sealed.target.processing.is_some() {
                // Sealed for the function: never delivered untransformed, whatever happened to the stages.
                if rt.stages.get().is_none() {
                    let target = sealed.target.clone();
                    if let Err(e) = rt.start_stages(&target) {
                        rt.gate.storage.record(&target.stream, "transformation", &e.to_string(), "retried");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(max_backoff);
                        continue;
                    }
                }
                match transform::run(&rt, &sealed).await {
                    Ok(()) => break,
                    Err(e) => {
                        let what = format!(
                            "transforming records of {} (under {}): {e}",
                            sealed.target.stream,
                            rt.dir.display()
                        );
                        rt.gate.storage.record(
                            &sealed.target.stream,
                            "transformation",
                            &what,
                            "the records are kept and transformed again",
                        );
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(max_backoff);
                        continue;
                    }
                }
            }
            let (rt2, store2, s2) = (rt.clone(), store.clone(), sealed.clone());
            let result = tokio::task::spawn_blocking(move || deliver(&rt2, &store2, &s2)).await;
            match result {
                Ok(Ok(key)) => {
                    tracing::debug!(stream = %sealed.target.stream, %key, bytes = sealed.data_len, records = sealed.records, in_memory = sealed.cached.is_some(), "delivered");
                    break;
                }
                Ok(Err(e)) if rt.gone.load(Ordering::SeqCst) => {
                    tracing::warn!(stream = %sealed.target.stream, bucket = %sealed.target.bucket, "dropping {} records of a deleted stream: {} ({})", sealed.records, e.code.code, e.detail);
                    break;
                }
                Ok(Err(e)) => {
                    rt.gate.record_failure(&sealed.target, &e);
                    let wait = backoff.min(Duration::from_millis((horizon_ms - age_ms).max(1) as u64));
                    tracing::warn!(stream = %sealed.target.stream, bucket = %sealed.target.bucket, code = e.code.code, "delivery failed, keeping the data and retrying in {wait:?}: {}", e.detail);
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(max_backoff);
                }
                Err(join) => {
                    tracing::error!("delivery task failed: {join}");
                    break;
                }
            }
        }
        if let Some(cached) = &sealed.cached {
            rt.budget.release(cached.len());
        }
        rt.in_flight.fetch_sub(1, Ordering::SeqCst);
        rt.drained.notify_waiters();
    }
    if rt.gone.load(Ordering::SeqCst) && rt.partitions.is_none() && rt.stages.get().is_none() {
        let _ = std::fs::remove_dir_all(&rt.dir);
    }
}

/// The longest wait between two delivery attempts of one object.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Gives up on a sealed buffer: its records are past the journal's delivered offset, as if delivered.
pub(super) fn discard(rt: &Runtime, sealed: &Sealed) -> std::io::Result<()> {
    rt.delivered.store(sealed.end_offset, Ordering::SeqCst);
    journal::write_progress(&rt.dir, &Progress { offset: sealed.end_offset, pending: None }, rt.gate.durability)?;
    rt.inner.lock().expect("runtime lock").journal.trim(sealed.end_offset)
}

/// Writes one object: records the intent, compresses, stores, then advances the delivered offset.
fn deliver(rt: &Runtime, store: &Store, sealed: &Sealed) -> Result<String, Failure> {
    let target = &sealed.target;
    let key = object_key(target, sealed.oldest_ms);
    rt.gate.check(target, store, &key)?;
    let body = match &target.conversion {
        Some(c) => converted(rt, store, sealed, c, &key)?,
        None => None,
    };
    let (key, body) = match body {
        Some((key, bytes)) => (key, Some(bytes)),
        None => (key, None),
    };
    write_object(rt, store, sealed, key.clone(), body).map_err(|e| match e {
        StoreError::NoSuchBucket => {
            Failure::new("S3.NoSuchBucket", format!("the bucket {} does not exist", target.bucket))
        }
        other => {
            let what = format!("writing s3://{}/{key} (under {}): {other}", target.bucket, rt.dir.display());
            rt.gate.storage.record(&target.stream, "delivery", &what, "the object is kept and retried");
            Failure::new("InternalError", format!("storage error: {other}"))
        }
    })
}

/// Streams a buffer's records into `out` encoded as the destination's `CompressionFormat`: GZIP (one gzip
/// member), ZIP (an archive of one deflated entry named as the object without `.zip`, written as a stream:
/// sizes in data descriptors), Snappy (the Snappy framing format) or HADOOP_SNAPPY (Hadoop's block format).
fn write_encoded(rt: &Runtime, sealed: &Sealed, key: &str, out: &mut impl Write) -> std::io::Result<()> {
    use firehose_kit_domain::types::Compression;
    match &sealed.target.compression {
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            write_records(rt, sealed, &mut gz)?;
            gz.finish().map(|_| ())
        }
        Compression::Snappy => {
            let mut frames = snap::write::FrameEncoder::new(out);
            write_records(rt, sealed, &mut frames)?;
            frames.into_inner().map(|_| ()).map_err(|e| std::io::Error::other(e.to_string()))
        }
        Compression::HadoopSnappy => {
            let mut blocks = firehose_kit_domain::hadoop_snappy::Writer::new(out);
            write_records(rt, sealed, &mut blocks)?;
            blocks.finish().map(|_| ())
        }
        Compression::Zip => {
            let name = key.rsplit('/').next().unwrap_or(key);
            let entry = name.strip_suffix(".zip").unwrap_or(name);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .large_file(true);
            let mut archive = zip::ZipWriter::new_stream(out);
            archive.start_file(entry, options).map_err(std::io::Error::other)?;
            write_records(rt, sealed, &mut archive)?;
            archive.finish().map(|_| ()).map_err(std::io::Error::other)
        }
        _ => write_records(rt, sealed, out),
    }
}

/// A converting stream's object: the Parquet file under `key`, after the records that failed conversion were
/// written to the error output; when none converted, the error output is the object the delivery commits.
fn converted(
    rt: &Runtime,
    store: &Store,
    sealed: &Sealed,
    c: &super::target::ConversionTarget,
    key: &str,
) -> Result<Option<(String, Vec<u8>)>, Failure> {
    let out = super::convert::convert(&rt.gate, c, &sealed.target.region, |f| {
        journal::for_each_record(&rt.dir, sealed.start, sealed.end_offset, f)
    })?;
    let error_target = Target {
        prefix: c.error_prefix.clone(),
        output_type: Some(firehose_kit_domain::conversion::ERROR_OUTPUT_TYPE),
        extension: String::new(),
        conversion: None,
        ..sealed.target.clone()
    };
    let error_key = object_key(&error_target, sealed.oldest_ms);
    match (out.parquet, out.failed) {
        (Some(parquet), Some(failed)) => {
            let attrs = PutAttrs { content_type: Some("application/octet-stream".into()), ..Default::default() };
            store
                .begin_write(&sealed.target.bucket)
                .and_then(|mut w| match w.write_all(&failed) {
                    Ok(()) => store.commit(&sealed.target.bucket, &error_key, w, attrs),
                    Err(e) => {
                        w.abort();
                        Err(e.into())
                    }
                })
                .map_err(|e| {
                    Failure::new("InternalError", format!("writing the format-conversion-failed output: {e}"))
                })?;
            Ok(Some((key.to_string(), parquet)))
        }
        (Some(parquet), None) => Ok(Some((key.to_string(), parquet))),
        (None, Some(failed)) => Ok(Some((error_key, failed))),
        (None, None) => Ok(Some((key.to_string(), Vec::new()))),
    }
}

/// Writes one object: the intent (the object's key and the journal offset it covers) first, then the object,
/// then the progress. Once the object is committed the delivery has happened, whatever follows: a progress
/// file that cannot be rewritten then is a storage error to warn about, not a failed delivery to retry (a retry
/// would write the object again). After a kill the intent says whether the object landed.
fn write_object(
    rt: &Runtime,
    store: &Store,
    sealed: &Sealed,
    key: String,
    body: Option<Vec<u8>>,
) -> Result<String, StoreError> {
    let target = &sealed.target;
    let pending = Pending { end: sealed.end_offset, bucket: target.bucket.clone(), key: key.clone() };
    let previous = rt.delivered.load(Ordering::SeqCst);
    let durability = rt.gate.durability;
    journal::write_progress(&rt.dir, &Progress { offset: previous, pending: Some(pending) }, durability)?;
    let attrs = PutAttrs { content_type: Some("application/octet-stream".into()), ..Default::default() };
    let result = store.begin_write(&target.bucket).and_then(|mut writer| {
        // The records stream into the object (through its compression) from memory or from the journal; a
        // 128 MiB object is never copied whole.
        let written = match &body {
            Some(bytes) => writer.write_all(bytes),
            None => write_encoded(rt, sealed, &key, &mut writer),
        };
        match written {
            Ok(()) => store.commit(&target.bucket, &key, writer, attrs),
            Err(e) => {
                writer.abort();
                Err(e.into())
            }
        }
    });
    match result {
        Ok(_) => {
            rt.delivered.store(sealed.end_offset, Ordering::SeqCst);
            let done = Progress { offset: sealed.end_offset, pending: None };
            let recorded = journal::write_progress(&rt.dir, &done, durability)
                .and_then(|_| rt.inner.lock().expect("runtime lock").journal.trim(sealed.end_offset));
            if let Err(e) = recorded {
                let what =
                    format!("recording the delivery of s3://{}/{key} under {}: {e}", target.bucket, rt.dir.display());
                rt.gate.storage.record(
                    &target.stream,
                    "delivery",
                    &what,
                    "the object is delivered; its intent record stays",
                );
            }
            Ok(key)
        }
        Err(e) => {
            journal::write_progress(&rt.dir, &Progress { offset: previous, pending: None }, durability)?;
            Err(e)
        }
    }
}

/// The bytes of a sealed buffer's records, in order.
fn write_records(rt: &Runtime, sealed: &Sealed, sink: &mut dyn Write) -> std::io::Result<()> {
    match &sealed.cached {
        Some(data) => sink.write_all(data),
        None => journal::copy_range(&rt.dir, sealed.start, sealed.end_offset, sink),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firehose::gate::test_gate;
    use firehose_kit_domain::prefix;

    fn target(size: usize) -> Target {
        Target {
            stream: "S".into(),
            stream_arn: "arn:aws:firehose:us-east-1:000000000000:deliverystream/S".into(),
            region: "us-east-1".into(),
            role_arn: "arn:aws:iam::000000000000:role/writer".into(),
            logging: None,
            version: 1,
            bucket: "b".into(),
            prefix: prefix::validate(None, None, false).unwrap().data,
            zone: chrono_tz::Tz::UTC,
            compression: firehose_kit_domain::types::Compression::Uncompressed,
            extension: String::new(),
            size_bytes: size,
            interval_ms: 60_000,
            partitioning: None,
            keys: None,
            output_type: None,
            processing: None,
            conversion: None,
        }
    }

    fn cached(s: &Sealed) -> &[u8] {
        s.cached.as_deref().expect("in memory")
    }

    #[test]
    fn buffer_is_cut_before_a_record_that_would_pass_the_hint() {
        let t = target(10);
        let budget = MemoryBudget::new(1 << 20);
        let mut b = Buffer::default();
        let add = |b: &mut Buffer, data: &'static [u8], at, end| {
            append(b, &t, Record::InMemory(data), at, end, Some(&budget))
        };
        assert!(add(&mut b, b"12345", 1, 17).is_empty());
        let sealed = add(&mut b, b"678901", 2, 35);
        assert_eq!(sealed.len(), 1, "5 + 6 bytes would pass 10: the first record goes alone");
        assert_eq!(
            (cached(&sealed[0]), sealed[0].records, sealed[0].oldest_ms, sealed[0].start, sealed[0].end_offset),
            (&b"12345"[..], 1, 1, 0, 17)
        );
        assert_eq!((b.cached.as_deref(), b.oldest_ms, b.start), (Some(&b"678901"[..]), Some(2), 17));
        let sealed = add(&mut b, b"abcd", 3, 51);
        assert_eq!(sealed.len(), 1, "exactly at the hint: cut at once");
        assert_eq!(cached(&sealed[0]), b"678901abcd");
        assert_eq!((sealed[0].start, sealed[0].end_offset, sealed[0].data_len), (17, 51, 10));
        assert!(b.oldest_ms.is_none() && b.records == 0);
        assert_eq!((b.start, b.end_offset), (51, 51));
        assert_eq!(budget.used(), 15, "released only when delivered");
    }

    #[test]
    fn past_the_memory_budget_a_buffer_spills_to_the_journal() {
        let t = target(100);
        let budget = MemoryBudget::new(8);
        let mut b = Buffer::default();
        append(&mut b, &t, Record::InMemory(b"12345"), 1, 17, Some(&budget));
        assert_eq!((b.cached.as_deref(), budget.used()), (Some(&b"12345"[..]), 5));
        append(&mut b, &t, Record::InMemory(b"6789"), 1, 33, Some(&budget));
        assert_eq!((b.cached.as_deref(), budget.used()), (None, 0), "spilled: the copy is dropped and released");
        append(&mut b, &t, Record::InMemory(b"x"), 1, 46, Some(&budget));
        assert_eq!((b.cached.as_deref(), budget.used(), b.data_len), (None, 0, 10), "stays on disk");
        let sealed = seal(&mut b, &t).unwrap();
        assert_eq!((sealed.start, sealed.end_offset, sealed.cached.is_none()), (0, 46, true));
        // Re-buffered after a restart: never in memory.
        append(&mut b, &t, Record::OnDisk(3), 1, 61, Some(&budget));
        assert_eq!((b.cached.as_deref(), b.start), (None, 46));
    }

    /// Objects of spilled buffers are streamed from the journal, byte for byte, gzip or not.
    #[test]
    fn spilled_buffers_deliver_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("s3")).unwrap());
        store.create_bucket("b", None).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        for gzip in [false, true] {
            let jdir = dir.path().join(format!("journal-{gzip}"));
            let records: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 1000 + i as usize]).collect();
            rt.block_on(async {
                let mut t = target(1 << 20);
                t.compression = if gzip {
                    firehose_kit_domain::types::Compression::Gzip
                } else {
                    firehose_kit_domain::types::Compression::Uncompressed
                };
                let budget = Arc::new(MemoryBudget::new(10_000));
                let (gate, _) = test_gate(&jdir.with_extension("gate"), None, Duration::from_secs(3600));
                let runtime = Runtime::start(jdir.clone(), t, None, store.clone(), gate, budget.clone()).unwrap();
                for r in &records {
                    runtime.accept(&[r.as_slice()], crate::s3::store::now_ms()).unwrap();
                }
                runtime.flush_due(i64::MAX, true);
                assert!(runtime.drain(Duration::from_secs(5)).await);
                assert_eq!(budget.used(), 0);
            });
            let page = store.list("b", "", None, None, 10).unwrap();
            assert_eq!(page.objects.len(), 1);
            let key = page.objects[0].key.clone();
            let (_, path) = store.get("b", &key).unwrap();
            let raw = std::fs::read(path).unwrap();
            let body = if gzip {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out).unwrap();
                out
            } else {
                raw
            };
            assert_eq!(body, records.concat(), "gzip {gzip}");
            store.delete("b", &key).unwrap();
        }
    }

    #[test]
    fn a_pending_object_that_landed_is_not_delivered_again_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("s3")).unwrap());
        store.create_bucket("b", None).unwrap();
        let jdir = dir.path().join("journal");
        let mut j = Journal::open(&jdir, Default::default()).unwrap();
        let ends = j.append(1, [b"a".as_slice(), b"b".as_slice()].into_iter()).unwrap();
        drop(j);
        // Killed after the object was written but before the progress was advanced.
        store.put_bytes("b", "landed", b"ab", PutAttrs::default()).unwrap();
        let pending = Pending { end: ends[1], bucket: "b".into(), key: "landed".into() };
        journal::write_progress(&jdir, &Progress { offset: 0, pending: Some(pending) }, Default::default()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let runtime = Runtime::start(
                jdir.clone(),
                target(1024),
                None,
                store.clone(),
                test_gate(&dir.path().join("gate"), None, Duration::from_secs(3600)).0,
                Arc::new(MemoryBudget::new(1024)),
            )
            .unwrap();
            runtime.flush_due(i64::MAX, true);
            assert!(runtime.drain(Duration::from_secs(2)).await);
        });
        assert_eq!(journal::read_progress(&jdir).unwrap(), Progress { offset: ends[1], pending: None });
        assert_eq!(store.usage("b").unwrap().0, 1, "nothing re-delivered");
    }

    /// Data that keeps failing is retried until its oldest record passes the horizon, then dropped and counted,
    /// and the journal moves past it so a restart does not bring it back.
    #[test]
    fn undeliverable_data_is_dropped_after_the_retry_horizon() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("s3")).unwrap());
        store.create_bucket("b", None).unwrap();
        let jdir = dir.path().join("journal");
        let fail = Some("S3.AccessDenied".parse().unwrap());
        let (gate, _) = test_gate(&dir.path().join("gate"), fail, Duration::from_millis(300));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let ends = rt.block_on(async {
            let runtime = Runtime::start(
                jdir.clone(),
                target(1024),
                None,
                store.clone(),
                gate.clone(),
                Arc::new(MemoryBudget::new(1024)),
            )
            .unwrap();
            let accepted = runtime.accept(&[b"a", b"b", b"c"], crate::s3::store::now_ms()).unwrap();
            runtime.flush_due(i64::MAX, true);
            assert!(runtime.drain(Duration::from_secs(5)).await);
            accepted.ends
        });
        assert_eq!(gate.dropped_records.load(Ordering::Relaxed), 3);
        assert!(gate.failures.load(Ordering::Relaxed) >= 1);
        assert_eq!(store.usage("b").unwrap().0, 0);
        assert_eq!(journal::read_progress(&jdir).unwrap(), Progress { offset: ends[2], pending: None });
    }

    mod round_trip {
        use proptest::prelude::*;

        use super::super::object_key;
        use crate::firehose::model::{BufferingHints, DestinationInput, StreamState};
        use crate::firehose::{target_of, validate};
        use firehose_kit_domain::keys::{layout_problems, parse_key};
        use firehose_kit_domain::prefix::static_part_of;

        const PATTERNS: &[&str] =
            &["yyyy", "yyyy/MM/dd/", "yyyy'-'MM'-'dd", "HH", "DDD", "yy-M-d", "'year='yyyy/", "mm'm'ss's'"];

        fn prefix_part() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-zA-Z0-9/=_.é -]{1,12}",
                proptest::sample::select(PATTERNS).prop_map(|p| format!("!{{timestamp:{p}}}")),
                Just("!{firehose:random-string}".to_string()),
            ]
        }

        fn extension() -> impl Strategy<Value = Option<String>> {
            prop_oneof![Just(None), Just(Some(String::new())), "\\.[0-9a-z!_.*'()-]{1,10}".prop_map(Some)]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            /// Every key the emulator writes (any stream name, prefix expression, time zone, extension and
            /// compression) is parsed back by the client's parser to the same stream, version, time and id, and
            /// follows the layout the client expects for that destination.
            #[test]
            fn every_key_the_emulator_writes_parses_back(
                stream in "[a-zA-Z0-9_.-]{1,64}",
                version in 1u64..=u32::MAX as u64,
                oldest_ms in 946_684_800_000i64..4_102_444_800_000,
                zone in proptest::sample::select(chrono_tz::TZ_VARIANTS.to_vec()),
                parts in proptest::collection::vec(prefix_part(), 0..5),
                gzip in any::<bool>(),
                file_extension in extension(),
            ) {
                let prefix: String = parts.concat();
                let expressions = prefix.contains("!{");
                let input = DestinationInput {
                    role_arn: Some("arn:aws:iam::000000000000:role/r".into()),
                    bucket_arn: Some("arn:aws:s3:::b".into()),
                    prefix: Some(prefix.clone()),
                    error_output_prefix: expressions.then(|| "err/!{firehose:error-output-type}/".to_string()),
                    buffering_hints: Some(BufferingHints { size_in_mbs: Some(1), interval_in_seconds: Some(60) }),
                    compression_format: Some(if gzip { "GZIP" } else { "UNCOMPRESSED" }.into()),
                    file_extension,
                    custom_time_zone: Some(zone.name().to_string()),
                    ..Default::default()
                };
                let destination = validate::destination_from(input, true, "p").unwrap();
                let (prefixes, tz) = validate::destination(&destination, "p").map_err(|e| e.message).unwrap();
                let state = StreamState {
                    name: stream.clone(),
                    region: "us-east-2".into(),
                    arn: String::new(),
                    incarnation: "i".into(),
                    created_ms: 0,
                    updated_ms: 0,
                    version,
                    deleting_since_ms: None,
                    destination,
                    tags: Vec::new(),
                    encryption: None,
                    source: None,
                };
                let target = target_of(&state, prefixes, tz, &crate::firehose::test_config());
                let key = object_key(&target, oldest_ms);

                let info = parse_key(&key, &stream, zone).unwrap_or_else(|e| panic!("{key}: {e}"));
                prop_assert_eq!(&info.stream, &stream);
                prop_assert_eq!(info.version, version);
                prop_assert_eq!(&info.extension, &target.extension);
                prop_assert!(key.contains(&info.uuid));
                let sent = chrono::DateTime::from_timestamp_millis(oldest_ms).unwrap();
                let same_wall_clock = info.time.with_timezone(&zone).naive_local() == sent.with_timezone(&zone).naive_local().with_nanosecond(0).unwrap();
                prop_assert!(same_wall_clock, "{key}: {} vs {sent}", info.time);
                // A wall-clock time that occurs twice (a clock going back) names the earlier instant.
                use chrono::{TimeZone, Timelike};
                if zone.from_local_datetime(&sent.with_timezone(&zone).naive_local()).single().is_some() {
                    prop_assert_eq!(info.time.timestamp(), sent.timestamp());
                }
                let problems = layout_problems(&info, static_part_of(Some(&prefix)), &target.extension, !expressions);
                prop_assert!(problems.is_empty(), "{key}: {problems:?}");
            }
        }
    }
}
