//! The send loop's state machine: one method per event (a reader event, the answer to a PutRecordBatch call, a
//! tick, a signal) and the questions the loop asks between events (what to launch, whether to read more, when to
//! wake, whether done). It owns retries (failed entries rebatched, whole calls retried by their
//! [`RetryClass`], giving up after `--retry-timeout` without progress), acknowledgement (line hashes, run
//! digest, per-file trackers) and saving the manifest and checkpoints. Everything here is synchronous and makes
//! no AWS call: `commands::send` owns the futures, the select and the terminal.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::checkpoint::Checkpoint;
use super::control::{Concurrency, ThrottleGate, retry_delay};
use super::manifest::{self, Digest, HashWriter, InputSummary, RunManifest, RunStatus};
use super::position::{AckTracker, FileIdentity};
use super::reader::{Event, Reject, Rejects};
use super::records::{Batch, Record, billable, rebatch};
use crate::error::{Error, Result};
use crate::firehose::types::entry_is_throttled;
use crate::ui::format_count;
use crate::util::retry::{EntryError, Failed, RetryClass};

/// The answer to one PutRecordBatch call: per entry, `None` when accepted or its error; or the call's failure.
pub type PutAnswer = std::result::Result<Vec<Option<EntryError>>, Failed>;

/// One input as the sender tracks it (per opened file instance).
struct InputState {
    name: String,
    path: Option<PathBuf>,
    identity: Option<FileIdentity>,
    tracker: AckTracker,
    resumed_at: u64,
    lines: u64,
    bytes: u64,
}

/// The sender's counters.
#[derive(Default)]
pub struct Tally {
    pub lines: u64,
    pub bytes: u64,
    pub records: u64,
    pub batches: u64,
    pub retried_records: u64,
    pub retried_calls: u64,
    pub throttled: u64,
    pub failed_records: u64,
    pub failed_lines: u64,
    pub billable: u64,
    pub billable_one: u64,
    pub digest: Digest,
    /// The last error a record or a call got (`code: message`), for the summary of a run that gives up.
    pub last_error: Option<String>,
}

/// A batch waiting to be (re)sent.
struct Queued {
    ready: Instant,
    batch: Batch,
    attempt: u32,
}

/// How the run ends, once it does.
#[derive(Default)]
enum Ending {
    /// Still running, or ran to completion.
    #[default]
    Running,
    /// Ctrl-C: finish what is in flight, then stop.
    Stopping,
    /// No progress for --retry-timeout: what is left goes to the rejects file.
    GivingUp(String),
    /// A failure that ends the run (the stream is gone, an input cannot be read, the reader died).
    Fatal(Error),
}

/// The send loop's state: one method per event (a reader event, a put result, a tick, a signal), plus the
/// questions the loop asks between events (what to launch, whether to read more, when to wake, whether done).
/// Everything here is synchronous; `send` owns the futures and the select.
pub struct Sender {
    stream: String,
    retry_timeout: Duration,
    state_dir: PathBuf,
    checkpoints_dir: PathBuf,
    run: RunManifest,
    hashes: HashWriter,
    /// The acknowledged lines, for a transformed stream (see [`Sender::keep_lines`]).
    lines: Option<manifest::LinesWriter>,
    rejects: Arc<Rejects>,
    reader_stop: Arc<AtomicBool>,
    states: HashMap<usize, InputState>,
    t: Tally,
    retry_queue: Vec<Queued>,
    concurrency: Concurrency,
    gate: ThrottleGate,
    reader_done: bool,
    /// The reader's own failure (an input that broke mid-file): what it read before is still sent, then the run
    /// ends with this error.
    reader_error: Option<Error>,
    ending: Ending,
    last_progress: Instant,
    last_save: Instant,
    /// Throttled entries are a shard's, not the stream's (Kinesis): they are resent with backoff, and only a
    /// call whose every entry was throttled slows the whole send down.
    per_entry_throttling: bool,
}

impl Sender {
    /// A sender for `run` (saved under `state_dir`, with its hash file), before anything is read.
    pub fn new(
        stream: String,
        retry_timeout: Duration,
        concurrency: usize,
        state_dir: PathBuf,
        run: RunManifest,
        rejects: Arc<Rejects>,
        reader_stop: Arc<AtomicBool>,
    ) -> Result<Self> {
        let hashes = HashWriter::create(RunManifest::hashes_path(&state_dir, &run.run_id))?;
        Ok(Sender {
            stream,
            retry_timeout,
            checkpoints_dir: manifest::checkpoints_dir(&state_dir),
            state_dir,
            run,
            hashes,
            lines: None,
            rejects,
            reader_stop,
            states: HashMap::new(),
            t: Tally::default(),
            retry_queue: Vec::new(),
            concurrency: Concurrency::new(concurrency),
            gate: ThrottleGate::default(),
            reader_done: false,
            reader_error: None,
            ending: Ending::Running,
            last_progress: Instant::now(),
            last_save: Instant::now(),
            per_entry_throttling: false,
        })
    }

    /// Keeps the acknowledged lines beside the hashes (`<run-id>.lines.gz`): verify needs them to predict what a
    /// transforming stream delivers.
    /// Entries are throttled per shard (a Kinesis data stream): see `per_entry_throttling`.
    pub fn throttle_per_entry(&mut self) {
        self.per_entry_throttling = true;
    }

    pub fn keep_lines(&mut self) -> Result<()> {
        self.lines = Some(manifest::LinesWriter::create(RunManifest::lines_path(&self.state_dir, &self.run.run_id))?);
        Ok(())
    }

    fn stop_reader(&self) {
        self.reader_stop.store(true, Ordering::Relaxed);
    }

    fn fail(&mut self, e: Error) {
        if !matches!(self.ending, Ending::Fatal(_)) {
            self.ending = Ending::Fatal(e);
        }
        self.stop_reader();
    }

    fn give_up(&mut self, reason: String) {
        if matches!(self.ending, Ending::Running | Ending::Stopping) {
            self.ending = Ending::GivingUp(reason);
        }
        self.stop_reader();
    }

    fn fatal(&self) -> bool {
        matches!(self.ending, Ending::Fatal(_))
    }

    /// Whether new batches may be taken from the reader now.
    pub fn can_take(&self, inflight: usize, now: Instant) -> bool {
        !self.reader_done
            && matches!(self.ending, Ending::Running)
            && self.gate.ready_at(now).is_none()
            && inflight < self.concurrency.limit()
    }

    /// When the loop must wake up without an event: the next retry, but not before the throttle gate lets it go
    /// (a retry that is due while the gate waits would wake the loop for nothing, again and again: a spin), or the
    /// end of the gate's wait.
    pub fn wake_at(&self, now: Instant) -> Option<Instant> {
        let next_retry = self.retry_queue.iter().map(|q| q.ready).min();
        match (next_retry, self.gate.ready_at(now)) {
            (Some(retry), Some(gate)) => Some(retry.max(gate)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the run is over: nothing more will be read, nothing is in flight, and nothing is left to retry
    /// (or the run failed, and what is left is not retried).
    pub fn finished(&self, inflight: usize) -> bool {
        let no_more_input = self.reader_done || !matches!(self.ending, Ending::Running);
        no_more_input && inflight == 0 && (self.retry_queue.is_empty() || self.fatal())
    }

    /// The retries that are due (and within the throttle gate's allowance), to launch now.
    pub fn due_retries(&mut self, inflight: usize, now: Instant) -> Vec<(Batch, u32)> {
        let mut out = Vec::new();
        while inflight + out.len() < self.concurrency.limit() {
            let Some(pos) = self.retry_queue.iter().position(|q| q.ready <= now) else { break };
            let (batch, attempt) = match self.gate.allowance(now) {
                None => {
                    let q = self.retry_queue.swap_remove(pos);
                    (q.batch, q.attempt)
                }
                Some(budget) if budget < 0.0 => break,
                Some(budget) => {
                    // Throttled: send only what the stream has lately been accepting; the rest waits its turn.
                    let part = self.retry_queue[pos].batch.take_within(budget, &self.stream);
                    let attempt = self.retry_queue[pos].attempt;
                    if self.retry_queue[pos].batch.records.is_empty() {
                        self.retry_queue.swap_remove(pos);
                    }
                    (part, attempt)
                }
            };
            self.gate.spend(batch.data_bytes(), now);
            out.push((batch, attempt));
        }
        out
    }

    /// A reader event; returns a batch to launch now.
    pub fn on_reader_event(&mut self, event: Option<Event>, now: Instant) -> Option<Batch> {
        match event {
            None => {
                self.reader_done = true;
                if !self.fatal() && !matches!(self.ending, Ending::Stopping | Ending::GivingUp(_)) {
                    // The channel closed without `Done`: the reader thread died (a panic).
                    self.fail(Error::failed(
                        "the reader thread stopped unexpectedly; lines after the last acknowledged one were not sent",
                    ));
                }
                None
            }
            Some(Event::Done) => {
                self.reader_done = true;
                None
            }
            Some(Event::Batch(mut batch)) => {
                if let Some(budget) = self.gate.allowance(now) {
                    let part = batch.take_within(budget, &self.stream);
                    if !batch.records.is_empty() {
                        self.retry_queue.push(Queued { ready: now, batch, attempt: 0 });
                    }
                    batch = part;
                }
                self.gate.spend(batch.data_bytes(), now);
                Some(batch)
            }
            Some(Event::Opened { input, name, path, identity, start_offset, start_lines, acked }) => {
                let path = path.and_then(|p| std::fs::canonicalize(p).ok());
                let tracker = AckTracker::resume(start_offset, start_lines, &acked);
                let state = InputState { name, path, identity, tracker, resumed_at: start_offset, lines: 0, bytes: 0 };
                self.states.insert(input, state);
                None
            }
            Some(Event::Skipped(span)) => {
                if let Some(st) = self.states.get_mut(&span.input) {
                    st.tracker.complete(span.start, span.end, span.lines);
                }
                None
            }
            Some(Event::Finished { input, lines, bytes }) => {
                if let Some(st) = self.states.get_mut(&input) {
                    st.lines = lines;
                    st.bytes = bytes;
                }
                None
            }
            Some(Event::Failed(e)) => {
                // The reader stops at its failure and hands over what it read before it (then `Done`): send
                // that, so the checkpoint covers every line before the failure.
                self.reader_error.get_or_insert(match e {
                    Error::Input { path, source } => Error::InputFailed { path, source },
                    other => other,
                });
                None
            }
        }
    }

    /// One record accepted by Firehose: count it, remember its lines' hashes, advance its inputs' checkpoints.
    fn acknowledge(&mut self, record: &Record) -> Result<()> {
        let t = &mut self.t;
        t.lines += record.lines as u64;
        t.bytes += record.data.len() as u64;
        t.records += 1;
        t.billable += billable(record.data.len() as u64);
        t.billable_one += record.billable_one_per_record;
        for h in &record.hashes {
            t.digest.add(*h);
        }
        self.hashes.write(&record.hashes)?;
        if let Some(lines) = &mut self.lines {
            lines.write(&record.data)?;
        }
        for span in &record.spans {
            if let Some(st) = self.states.get_mut(&span.input) {
                st.tracker.complete(span.start, span.end, span.lines);
            }
        }
        Ok(())
    }

    /// The answer to one PutRecordBatch call.
    pub fn on_put_result(&mut self, batch: Batch, attempt: u32, answer: PutAnswer, now: Instant) -> Result<()> {
        match answer {
            Ok(entries) => self.on_entries(batch, attempt, &entries, now)?,
            Err(failed) if failed.class.retries() => self.on_retryable(batch, attempt, failed, now),
            Err(failed) => {
                self.retry_queue.push(Queued { ready: now, batch, attempt });
                self.fail(failed.error);
            }
        }
        if !self.retry_queue.is_empty() && self.last_progress.elapsed() >= self.retry_timeout {
            self.give_up(format!("no record accepted for {}s", self.retry_timeout.as_secs()));
        }
        self.reject_if_giving_up()
    }

    /// A call that was answered: accepted entries are acknowledged, the others rebatched and retried.
    fn on_entries(&mut self, batch: Batch, attempt: u32, entries: &[Option<EntryError>], now: Instant) -> Result<()> {
        let mut failed: Vec<Record> = Vec::new();
        let (mut throttled, mut accepted_bytes, mut acked_any) = (0u64, 0u64, false);
        for (record, entry) in batch.records.into_iter().zip(entries) {
            match entry {
                None => {
                    acked_any = true;
                    accepted_bytes += record.data.len() as u64;
                    self.acknowledge(&record)?;
                }
                Some(e) => {
                    if entry_is_throttled(&e.code) {
                        throttled += 1;
                    }
                    self.t.last_error = Some(format!("{}: {}", e.code, e.message));
                    failed.push(record);
                }
            }
        }
        self.t.batches += 1;
        self.t.throttled += throttled;
        let all_entries_throttled = throttled as usize == entries.len();
        let slow_down = throttled > 0 && (!self.per_entry_throttling || all_entries_throttled);
        self.gate.on_response(accepted_bytes, slow_down, now);
        if acked_any {
            self.last_progress = now;
        }
        if failed.is_empty() {
            self.concurrency.on_success();
            return Ok(());
        }
        if slow_down {
            self.concurrency.on_throttled();
        }
        self.t.retried_records += failed.len() as u64;
        let all_throttled = throttled as usize == failed.len();
        let ready = now + retry_delay(attempt + 1, all_throttled, self.last_progress.elapsed());
        tracing::debug!(
            "{} of {} entries failed; resending them after backoff (attempt {})",
            failed.len(),
            entries.len(),
            attempt + 1
        );
        for batch in rebatch(&self.stream, failed) {
            self.retry_queue.push(Queued { ready, batch, attempt: attempt + 1 });
        }
        Ok(())
    }

    /// A whole call failed in a way a retry may fix (throttled, 5xx, timeout, connection): the batch is retried
    /// with backoff, unless nothing has been accepted for `--retry-timeout`.
    fn on_retryable(&mut self, batch: Batch, attempt: u32, failed: Failed, now: Instant) {
        let cause = failed.error.causes().join(": ");
        self.t.last_error = Some(cause.clone());
        let throttled = failed.class == RetryClass::Throttled;
        if throttled {
            self.t.throttled += batch.records.len() as u64;
            self.concurrency.on_throttled();
            self.gate.on_response(0, true, now);
        }
        self.t.retried_calls += 1;
        tracing::debug!("PutRecordBatch failed ({}), retrying the batch", failed.code);
        if self.last_progress.elapsed() >= self.retry_timeout {
            let reason = format!("no record accepted for {}s; last error: {cause}", self.retry_timeout.as_secs());
            self.retry_queue.push(Queued { ready: now, batch, attempt: attempt + 1 });
            self.give_up(reason);
        } else {
            let delay = retry_delay(attempt + 1, throttled, self.last_progress.elapsed());
            if throttled {
                // The whole call was refused: every call waits, not only this batch (the others would meet the
                // same refusal, and resending them at once spins).
                self.gate.hold(delay, now);
            }
            self.retry_queue.push(Queued { ready: now + delay, batch, attempt: attempt + 1 });
        }
    }

    /// Whether a Ctrl-C would still change anything (the run is not already ending).
    pub fn accepts_signal(&self) -> bool {
        matches!(self.ending, Ending::Running)
    }

    /// Ctrl-C or SIGTERM: stop reading, finish what is in flight. Whether the run started stopping now.
    pub fn on_signal(&mut self) -> bool {
        if !matches!(self.ending, Ending::Running) {
            return false;
        }
        self.ending = Ending::Stopping;
        self.stop_reader();
        true
    }

    /// The most batches in flight at once, now.
    pub fn concurrency_limit(&self) -> usize {
        self.concurrency.limit()
    }

    /// The periodic tick: the bytes acknowledged and a progress line; the manifest and checkpoints are saved
    /// once a second.
    pub fn on_tick(&mut self, started: Instant) -> Result<(u64, String)> {
        let t = &self.t;
        let elapsed = started.elapsed().as_secs_f64().max(1e-3);
        let progress = format!(
            "{} lines · {} records · {:.1} MB/s · {} retried · {} throttled",
            format_count(t.lines),
            format_count(t.records),
            t.bytes as f64 / 1e6 / elapsed,
            format_count(t.retried_records + t.retried_calls),
            format_count(t.throttled),
        );
        let position = t.bytes;
        if self.last_save.elapsed() >= Duration::from_secs(1) {
            self.save()?;
            self.last_save = Instant::now();
        }
        Ok((position, progress))
    }

    /// Records that will not be retried any more (the run gave up): to the rejects file, counted.
    fn reject_if_giving_up(&mut self) -> Result<()> {
        let Ending::GivingUp(reason) = &self.ending else { return Ok(()) };
        let reason = format!("not accepted: {reason}");
        for q in std::mem::take(&mut self.retry_queue) {
            for record in &q.batch.records {
                let span = record.spans.first();
                let name = span.and_then(|s| self.states.get(&s.input)).map(|s| s.name.as_str()).unwrap_or("input");
                self.rejects.write(&Reject {
                    input: name,
                    line: None,
                    offset: span.map(|s| s.start),
                    lines: record.lines as u64,
                    bytes: record.data.len() as u64,
                    reason: &reason,
                    text: &record.data,
                })?;
                self.t.failed_records += 1;
                self.t.failed_lines += record.lines as u64;
            }
        }
        Ok(())
    }

    /// Writes the hash file, the run manifest, then the checkpoints: a checkpoint never covers lines the
    /// manifest does not.
    pub fn save(&mut self) -> Result<()> {
        self.hashes.flush()?;
        if let Some(lines) = &mut self.lines {
            lines.flush()?;
        }
        let (t, run) = (&self.t, &mut self.run);
        run.lines = t.lines;
        run.bytes = t.bytes;
        run.records = t.records;
        run.batches = t.batches;
        run.retries = t.retried_records + t.retried_calls;
        run.throttled = t.throttled;
        run.rejected_lines = self.rejects.count();
        run.failed_records = t.failed_records;
        run.billable_bytes = t.billable;
        run.billable_bytes_one_line_per_record = t.billable_one;
        run.digest = t.digest;
        let mut indices: Vec<&usize> = self.states.keys().collect();
        indices.sort();
        run.inputs = indices
            .iter()
            .map(|i| {
                let st = &self.states[i];
                InputSummary { name: st.name.clone(), lines: st.lines, bytes: st.bytes, resumed_at: st.resumed_at }
            })
            .collect();
        run.save(&self.state_dir)?;
        for i in indices {
            let st = &self.states[i];
            if let (Some(path), Some(identity)) = (&st.path, &st.identity) {
                let cp = Checkpoint {
                    stream: run.stream.clone(),
                    path: path.clone(),
                    identity: identity.clone(),
                    offset: st.tracker.contiguous(),
                    lines: st.tracker.lines(),
                    ahead: st.tracker.ahead(),
                    run_id: run.run_id.clone(),
                    destination: run.destination.clone(),
                };
                if cp.destination.is_some() {
                    cp.save(&self.checkpoints_dir)?;
                }
            }
        }
        Ok(())
    }

    /// Ends the run: the final status, the manifest, and the report (or the error that ended it).
    pub fn finish(mut self, reader: std::thread::Result<()>) -> Result<(RunManifest, Tally, Result<()>)> {
        if let Err(panic) = reader {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            self.fail(Error::failed(format!("the reader thread failed: {what}")));
        }
        if let Some(e) = self.reader_error.take() {
            self.fail(e);
        }
        self.reject_if_giving_up()?;
        self.run.ended = Some(chrono::Utc::now());
        self.run.status = match self.ending {
            Ending::Fatal(_) | Ending::GivingUp(_) => RunStatus::Failed,
            Ending::Stopping => RunStatus::Interrupted,
            Ending::Running => RunStatus::Completed,
        };
        self.save()?;
        let outcome = match std::mem::take(&mut self.ending) {
            Ending::Fatal(e) => Err(e),
            _ => Ok(()),
        };
        Ok((self.run, self.t, outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExitCode;

    fn sender(dir: &std::path::Path) -> Sender {
        let run = RunManifest::start("r1".into(), "S".into(), "us-east-2".into(), chrono::Utc::now());
        Sender::new(
            "S".into(),
            Duration::from_secs(5),
            4,
            dir.to_path_buf(),
            run,
            Arc::new(Rejects::new(manifest::rejects_path(dir, "r1"))),
            Arc::default(),
        )
        .unwrap()
    }

    #[test]
    fn a_reader_that_ends_without_done_fails_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sender(dir.path());
        assert!(s.on_reader_event(None, Instant::now()).is_none());
        assert!(s.finished(0) && s.reader_stop.load(Ordering::Relaxed));
        let (run, _, outcome) = s.finish(Ok(())).unwrap();
        assert_eq!(run.status, RunStatus::Failed);
        assert!(outcome.unwrap_err().to_string().contains("stopped unexpectedly"));
        let saved = RunManifest::load(&RunManifest::path(dir.path(), "r1")).unwrap();
        assert_eq!(saved.status, RunStatus::Failed, "the manifest on disk says so");
    }

    #[test]
    fn a_reader_thread_that_panics_fails_the_run_with_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sender(dir.path());
        s.on_reader_event(Some(Event::Done), Instant::now());
        let panic: Box<dyn std::any::Any + Send> = Box::new("index out of bounds");
        let (run, _, outcome) = s.finish(Err(panic)).unwrap();
        assert_eq!(run.status, RunStatus::Failed);
        let err = outcome.unwrap_err();
        assert!(err.to_string().contains("index out of bounds"), "{err}");
        assert_eq!(err.exit_code(), ExitCode::Failed);
    }

    #[test]
    fn a_due_retry_does_not_wake_the_loop_while_a_throttled_call_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sender(dir.path());
        let now = Instant::now();
        let batch = Batch { records: Vec::new(), encoded_bytes: 0 };
        s.retry_queue.push(Queued { ready: now, batch, attempt: 1 });
        assert_eq!(s.wake_at(now), Some(now), "nothing holds it: the retry is due");
        s.gate.hold(Duration::from_secs(1), now);
        assert_eq!(s.wake_at(now), Some(now + Duration::from_secs(1)), "not before the hold ends (no spin)");
        assert!(s.due_retries(0, now).is_empty(), "and nothing is resent meanwhile");
        assert_eq!(s.due_retries(0, now + Duration::from_secs(1)).len(), 1);
    }

    #[test]
    fn a_clean_end_completes_and_a_signal_interrupts() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sender(dir.path());
        s.on_reader_event(Some(Event::Done), Instant::now());
        let (run, _, outcome) = s.finish(Ok(())).unwrap();
        assert_eq!(run.status, RunStatus::Completed);
        assert!(outcome.is_ok());
        let mut s = sender(dir.path());
        assert!(s.on_signal(), "the first signal stops the run");
        assert!(!s.on_signal(), "a second one changes nothing");
        assert!(!s.can_take(0, Instant::now()), "no new batches after Ctrl-C");
        s.on_reader_event(None, Instant::now());
        let (run, _, outcome) = s.finish(Ok(())).unwrap();
        assert_eq!(run.status, RunStatus::Interrupted);
        assert!(outcome.is_ok(), "a channel closed while stopping is not a failure");
    }
}
