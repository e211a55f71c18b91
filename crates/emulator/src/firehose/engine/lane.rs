//! A lane: one journal, its buffer, and the worker that runs its stage on each sealed range, in order.
//!
//! Records are journaled first (acknowledgeable once [`Lane::append`] returns), buffered by the lane's hints, and
//! each sealed range goes through the lane's stage ([`super::stage`]). The worker repeats a range until its stage
//! succeeds: an I/O error, a delivery the role may not make, or a panic (caught, and the stream named in the
//! warning) keeps the range and retries it with backoff from 0.5 s to 5 s (divided by `--speed`), until its oldest
//! record is older than the retry horizon; then it is dropped, counted and traced. The stage itself records the
//! progress ([`Lane::commit`]); at a restart the lane re-seals an intent's exact range first, so a repeat writes
//! the names the intent chose.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) use crate::lock;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{Notify, mpsc};

use super::Context;
use super::buffer::{Buffer, Hints, Record, Sealed};
use super::stage::Stage;
use crate::faults;
use crate::firehose::gate::Failure;
use crate::firehose::journal::{self, Frame, Journal, Mark, Pending, Progress};

/// Why a stage did not finish a range.
pub enum StageError {
    /// The destination refused (the role, the bucket): counted and logged where the stream logs errors.
    Delivery(Failure),
    /// The emulator's own storage.
    Storage(std::io::Error),
    /// A panic, caught.
    Panic(String),
}

impl From<std::io::Error> for StageError {
    fn from(e: std::io::Error) -> Self {
        StageError::Storage(e)
    }
}

impl From<Failure> for StageError {
    fn from(f: Failure) -> Self {
        StageError::Delivery(f)
    }
}

struct State {
    journal: Journal,
    buffer: Buffer,
    hints: Hints,
    stage: Arc<Stage>,
}

/// One journal, its buffer and its stage.
pub struct Lane {
    pub dir: PathBuf,
    /// The stream (and part) it works for, in logs.
    pub label: String,
    /// The journal's id: the seed of the names derived from its ranges.
    pub id: u64,
    state: Mutex<State>,
    tx: Mutex<Option<mpsc::UnboundedSender<Sealed>>>,
    /// Ranges sealed and not yet through the stage.
    in_flight: AtomicUsize,
    drained: Notify,
    /// Set when the stream is deleted: ranges that cannot be delivered are then dropped instead of retried.
    gone: AtomicBool,
    pub ctx: Arc<Context>,
    pub reader: journal::Reader,
    /// Every record before this offset has gone through the stage (what `delivered.json` says).
    committed: AtomicU64,
    /// A partition's lane: where its records go when delivery keeps failing past `RetryOptions`.
    give_up: Mutex<Option<GiveUp>>,
}

/// Where a lane's records go once its delivery has failed for `after` (a partition's `RetryOptions`): the
/// partitions' error output.
pub struct GiveUp {
    pub after: Duration,
    pub to: std::sync::Weak<super::partitions::Partitions>,
}

impl Lane {
    /// Opens a lane on its journal directory, re-sealing the range an intent was about when the process died and
    /// re-buffering every later record, and starts its worker.
    pub fn open(
        dir: PathBuf,
        label: String,
        hints: Hints,
        stage: Arc<Stage>,
        ctx: Arc<Context>,
    ) -> std::io::Result<Arc<Lane>> {
        let progress = journal::read_progress(&dir)?;
        let mut journal = Journal::open(&dir, ctx.durability, progress.offset, progress.absorbed.clone())?;
        if progress.offset > journal.end() {
            tracing::warn!(
                "journal `{}` ends at {} but records up to {} went through its stage: new records continue after them",
                dir.display(),
                journal.end(),
                progress.offset
            );
            journal.skip_to(progress.offset)?;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = journal::Reader::new(&dir, journal.v1_before());
        let lane = Arc::new(Lane {
            id: journal.id(),
            state: Mutex::new(State { journal, buffer: Buffer::at(progress.offset), hints, stage }),
            dir,
            label,
            tx: Mutex::new(Some(tx)),
            in_flight: AtomicUsize::new(0),
            drained: Notify::new(),
            gone: AtomicBool::new(false),
            ctx,
            reader,
            committed: AtomicU64::new(progress.offset),
            give_up: Mutex::new(None),
        });
        lane.recover(progress)?;
        tokio::spawn(work(lane.clone(), rx));
        Ok(lane)
    }

    /// Re-buffers what the journal holds past the progress: first the exact range of an intent (a delivery's
    /// names, or a function's journaled answer), then the rest by the hints.
    fn recover(&self, progress: Progress) -> std::io::Result<()> {
        let mut state = lock(&self.state);
        let stage = state.stage.clone();
        let pinned_end = match (&progress.pending, &*stage) {
            (Some(p), _) if p.end > progress.offset => Some(p.end),
            (_, Stage::Transform(_)) => super::answer::pending_end(&self.dir, progress.offset)?,
            _ => None,
        };
        let end = state.journal.end();
        let State { buffer, hints, .. } = &mut *state;
        let mut sealed = Vec::new();
        let mut records = 0u64;
        let whole = Hints { size_bytes: usize::MAX, interval_ms: i64::MAX };
        self.reader.scan(progress.offset, end, |frame| {
            let in_pin = pinned_end.is_some_and(|p| frame_end(&frame) <= p);
            match frame {
                Frame::Record { arrival_ms, len, end } => {
                    records += 1;
                    let h = if in_pin { &whole } else { &*hints };
                    sealed.extend(buffer.append(h, &stage, Record::OnDisk(len as usize), arrival_ms, end, None));
                }
                Frame::Mark { end } => buffer.take_mark(end),
            }
            if in_pin && pinned_end == Some(frame_end(&frame)) {
                sealed.extend(buffer.seal(&stage).map(|mut s| {
                    s.pinned = progress.pending.clone().filter(|p| p.end == s.end);
                    s
                }));
            }
        })?;
        if records > 0 {
            tracing::info!(stream = %self.label, records, "re-buffering records acknowledged before a restart");
        }
        drop(state);
        for s in sealed {
            self.dispatch(s);
        }
        Ok(())
    }

    fn dispatch(&self, sealed: Sealed) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let sent = lock(&self.tx).as_ref().map(|tx| tx.send(sealed).is_ok()).unwrap_or(false);
        if !sent {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// How far `source`'s output reached this lane.
    pub fn absorbed(&self, source: &str) -> Option<u64> {
        lock(&self.state).journal.absorbed(source)
    }

    /// Every source's reach.
    pub fn marks(&self) -> BTreeMap<String, u64> {
        lock(&self.state).journal.marks().clone()
    }

    /// Journals and buffers records as one batch, ended by `mark` (blocking I/O: call from a blocking thread, or
    /// inline for a small batch). Only after this returns may the records be acknowledged. A marked batch whose
    /// source already reached this far is not appended again (its records were): `None` then.
    pub fn append<'a>(
        &self,
        records: impl Iterator<Item = (i64, &'a [u8])> + Clone,
        mark: Option<Mark<'_>>,
    ) -> std::io::Result<Option<Vec<u64>>> {
        let mut state = lock(&self.state);
        if let Some(m) = &mark
            && state.journal.absorbed(m.source).is_some_and(|at| at >= m.position)
        {
            return Ok(None);
        }
        let ends = state.journal.append(records.clone(), mark)?;
        let State { journal, buffer, hints, stage } = &mut *state;
        let budget = stage.caches().then_some(&self.ctx.budget);
        let mut sealed = Vec::new();
        for ((arrival_ms, data), &end) in records.zip(&ends) {
            sealed.extend(buffer.append(hints, stage, Record::InMemory(data), arrival_ms, end, budget));
        }
        if mark.is_some() {
            buffer.take_mark(journal.end());
        }
        if hints.interval_ms == 0 {
            sealed.extend(buffer.seal(stage));
        }
        drop(state);
        for s in sealed {
            self.dispatch(s);
        }
        Ok(Some(ends))
    }

    /// Cuts the buffer if its oldest record has waited the interval (or `force`).
    pub fn flush_due(&self, now_ms: i64, force: bool) {
        let mut state = lock(&self.state);
        if !state.buffer.due(&state.hints, now_ms, force) {
            return;
        }
        let State { buffer, stage, .. } = &mut *state;
        let sealed = buffer.seal(stage);
        drop(state);
        if let Some(s) = sealed {
            self.dispatch(s);
        }
    }

    /// Hands what is buffered to the current stage, then switches to a new one (UpdateDestination).
    pub fn retarget(&self, hints: Hints, stage: Arc<Stage>) {
        self.flush_due(0, true);
        let mut state = lock(&self.state);
        state.hints = hints;
        state.stage = stage;
    }

    /// Whether nothing is buffered or on its way through the stage.
    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0 && lock(&self.state).buffer.records == 0
    }

    /// Records buffered and not yet sealed, and their bytes.
    pub fn buffered(&self) -> (usize, usize) {
        let state = lock(&self.state);
        (state.buffer.records, state.buffer.data_len)
    }

    /// Waits until every sealed range is through the stage, or `timeout`; returns whether all were.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.drained.notified();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight.load(Ordering::SeqCst) == 0;
            }
        }
    }

    /// Ends the worker once its queue is empty (an idle partition; its directory is the caller's to remove).
    pub fn close(&self) {
        lock(&self.tx).take();
    }

    /// The stream was deleted: deliver what is buffered if possible (what cannot be is dropped, not retried).
    pub fn retire(&self) {
        self.flush_due(0, true);
        self.gone.store(true, Ordering::SeqCst);
        self.close();
    }

    /// The first half of the commit protocol: the names a delivery of the range up to `pending.end` will write,
    /// recorded before any is written.
    pub fn intend(&self, pending: Pending) -> std::io::Result<()> {
        let progress =
            Progress { offset: self.committed.load(Ordering::SeqCst), pending: Some(pending), absorbed: self.marks() };
        journal::write_progress(&self.dir, &progress, self.ctx.durability)
    }

    /// The last step of the commit protocol: every record before `end` has gone through the stage (or was
    /// dropped). Until this is written a repeat redoes the range, finding or rewriting the same outputs.
    pub fn commit(&self, end: u64) -> std::io::Result<()> {
        let progress = Progress { offset: end, pending: None, absorbed: self.marks() };
        journal::write_progress(&self.dir, &progress, self.ctx.durability)?;
        self.committed.store(end, Ordering::SeqCst);
        if let Err(e) = lock(&self.state).journal.trim(end) {
            tracing::warn!(stream = %self.label, "cannot remove delivered journal segments under {}: {e}", self.dir.display());
        }
        Ok(())
    }

    /// Runs the range's stage once, on a blocking thread or as a task; a panic comes back as an error.
    async fn attempt(self: &Arc<Self>, sealed: &Arc<Sealed>) -> Result<(), StageError> {
        let (lane, s) = (self.clone(), sealed.clone());
        let stage = sealed.stage.clone();
        let run = async move {
            match &*stage {
                Stage::Write(target) => {
                    let target = target.clone();
                    blocking(move || super::writer::write(&lane, &s, &target)).await
                }
                Stage::Route(parts) => {
                    let parts = parts.clone();
                    blocking(move || super::partitions::route(&lane, &s, &parts)).await
                }
                Stage::Transform(t) => super::transform::run(&lane, &s, t).await,
            }
        };
        match std::panic::AssertUnwindSafe(run).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => Err(StageError::Panic(panic_message(&*panic))),
        }
    }

    /// Makes this lane hand its records to an error output once its delivery has failed for a while.
    pub fn set_give_up(&self, give_up: GiveUp) {
        *lock(&self.give_up) = Some(give_up);
    }

    /// After a delivery failure: when it has failed for the lane's retry duration, its records go to the error
    /// output (each in an error document with the failure), ended by a mark of this range, and the range is
    /// committed. `true` when the range is done.
    async fn given_up(self: &Arc<Self>, sealed: &Arc<Sealed>, failing_for: Duration, f: &Failure) -> bool {
        let to = match &*lock(&self.give_up) {
            Some(g) if failing_for >= g.after => g.to.upgrade(),
            _ => None,
        };
        let Some(parts) = to else { return false };
        let (lane, s) = (self.clone(), sealed.clone());
        let message = format!("{} (retried for the RetryOptions duration, then given up)", f.detail);
        let code = f.code.code.to_string();
        let result = blocking(move || {
            let now = crate::s3::store::now_ms();
            let mut docs = Vec::new();
            lane.reader.for_each(s.start, s.end, |arrival, data| {
                docs.push((
                    arrival,
                    firehose_kit_domain::partitioning::error_record(&code, &message, data, arrival, now),
                ));
                Ok(())
            })?;
            let mark = Mark { source: &lane.label, position: s.end };
            parts.give_up(docs.iter().map(|(a, d)| (*a, d.as_slice())), mark)?;
            Ok(lane.commit(s.end)?)
        })
        .await;
        match result {
            Ok(()) => {
                tracing::warn!(stream = %self.label, records = sealed.records, "delivery retried past RetryOptions: the records went to the error output");
                true
            }
            Err(e) => {
                let e = match e {
                    StageError::Storage(e) => e.to_string(),
                    StageError::Panic(m) => m,
                    StageError::Delivery(f) => f.detail,
                };
                tracing::warn!(stream = %self.label, "cannot hand the records to the error output yet: {e}");
                false
            }
        }
    }

    /// Repeats a sealed range's stage until it succeeds or the range is dropped.
    async fn process(self: &Arc<Self>, sealed: Sealed) {
        let sealed = Arc::new(sealed);
        let mut failing_since: Option<tokio::time::Instant> = None;
        let speed = self.ctx.speed;
        let mut backoff = Duration::from_millis(500).div_f64(speed);
        let max_backoff = MAX_BACKOFF.div_f64(speed);
        let horizon_ms = self.ctx.horizon.as_millis().min(i64::MAX as u128) as i64;
        loop {
            let age_ms = crate::s3::store::now_ms() - sealed.oldest_ms;
            if age_ms >= horizon_ms {
                self.drop_range(
                    &sealed,
                    &format!("it could not be delivered within the retry horizon of {:?}", self.ctx.horizon),
                )
                .await;
                return;
            }
            let error = match self.attempt(&sealed).await {
                Ok(()) => return,
                Err(e) => e,
            };
            match error {
                StageError::Delivery(f) if self.gone.load(Ordering::SeqCst) => {
                    self.drop_range(&sealed, &format!("its stream was deleted ({}: {})", f.code.code, f.detail)).await;
                    return;
                }
                StageError::Delivery(f) => {
                    self.ctx.gate.record_failure(&stage_target(&sealed.stage), &f);
                    let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                    if self.given_up(&sealed, since.elapsed(), &f).await {
                        return;
                    }
                    tracing::warn!(stream = %self.label, code = f.code.code, "delivery failed, keeping the data and retrying in {backoff:?}: {}", f.detail);
                }
                StageError::Storage(e) => {
                    let what = format!("{} (under {})", e, self.dir.display());
                    self.ctx.gate.storage.record(&self.label, "delivery", &what, "the records are kept and retried");
                }
                StageError::Panic(message) => {
                    self.ctx.gate.storage.record(&self.label, "panic", &message, "the records are kept and retried");
                }
            }
            let wait = backoff.min(Duration::from_millis((horizon_ms - age_ms).max(1) as u64));
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(max_backoff);
        }
    }

    /// Gives up on a range: its records are past the progress, as if delivered; counted and traced.
    async fn drop_range(self: &Arc<Self>, sealed: &Arc<Sealed>, why: &str) {
        self.ctx.gate.dropped_records.fetch_add(sealed.records as u64, Ordering::Relaxed);
        tracing::warn!(stream = %self.label, records = sealed.records, bytes = sealed.data_len, "dropping data: {why}");
        let (lane, end) = (self.clone(), sealed.end);
        if let Err(e) = blocking(move || lane.commit(end).map_err(StageError::from)).await {
            let e = match e {
                StageError::Storage(e) => e.to_string(),
                StageError::Panic(m) => m,
                StageError::Delivery(f) => f.detail,
            };
            tracing::error!(stream = %self.label, "cannot record dropped data in the journal: {e}");
        }
    }
}

/// The offset just after a frame.
fn frame_end(frame: &Frame) -> u64 {
    match frame {
        Frame::Record { end, .. } | Frame::Mark { end } => *end,
    }
}

/// The destination a stage's failures are logged against.
fn stage_target(stage: &Stage) -> crate::firehose::target::Target {
    match stage {
        Stage::Write(t) => (**t).clone(),
        Stage::Route(p) => p.target(),
        Stage::Transform(t) => t.target.clone(),
    }
}

/// Runs blocking work off the runtime's workers; its panic comes back as an error.
pub async fn blocking(f: impl FnOnce() -> Result<(), StageError> + Send + 'static) -> Result<(), StageError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(join) if join.is_panic() => Err(StageError::Panic(panic_message(&*join.into_panic()))),
        Err(join) => Err(StageError::Panic(join.to_string())),
    }
}

/// The text of a caught panic.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    format!("panicked: {text}")
}

/// The longest wait between two attempts at one range.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

async fn work(lane: Arc<Lane>, mut rx: mpsc::UnboundedReceiver<Sealed>) {
    while let Some(sealed) = rx.recv().await {
        let cached = sealed.cached.as_ref().map_or(0, Vec::len);
        lane.process(sealed).await;
        lane.ctx.budget.release(cached);
        lane.in_flight.fetch_sub(1, Ordering::SeqCst);
        lane.drained.notify_waiters();
    }
}

/// Removes a directory atomically (renamed aside first, so a kill never leaves half of it), off the runtime's
/// workers' way.
pub fn remove_dir(dir: &std::path::Path) {
    let Some(name) = dir.file_name() else { return };
    let aside = dir.with_file_name(format!(".{}.removed-{}", name.to_string_lossy(), uuid::Uuid::new_v4().simple()));
    let result = faults::check(faults::DIR_REMOVE, &dir)
        .and_then(|()| std::fs::rename(dir, &aside))
        .and_then(|()| std::fs::remove_dir_all(&aside));
    if let Err(e) = result
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("cannot remove `{}`: {e}", dir.display());
    }
}

/// Removes what [`remove_dir`] renamed aside and could not finish (at start-up).
pub fn sweep_removed(parent: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".removed-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
