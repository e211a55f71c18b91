//! `firehose-kit send`: push log lines into the stream — packed into records (Firehose bills each record in
//! 5 KB steps), batched within the PutRecordBatch limits, several batches in flight, failed entries (and only
//! those) resent with backoff, nothing dropped silently — and leave the run manifest `verify` needs and the
//! checkpoints that let a re-run resume.
//!
//! Retry ownership: this loop owns every PutRecordBatch retry (whole-call throttling, 5xx, timeouts, and
//! failed entries); the client it uses has SDK retries disabled, so no call is retried at two levels.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_firehose::operation::put_record_batch::{PutRecordBatchError, PutRecordBatchOutput};
use aws_sdk_firehose::primitives::Blob;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::aws::firehose as fh;
use crate::aws::{Clients, sdk_error};
use crate::cli::SendFormat;
use crate::error::{Error, ExitCode, Result};
use crate::firehose::partitioning::MAX_SUB_RECORDS;
use crate::firehose::types::{StreamStatus, entry_is_throttled};
use crate::pipeline::checkpoint::{
    AckTracker, Checkpoint, FileIdentity, InputLock, Locked, plan_resume, try_lock_input, wait_for_lock,
};
use crate::pipeline::control::{Concurrency, ThrottleGate, retry_delay};
use crate::pipeline::manifest::{self, Destination, Digest, HashWriter, InputSummary, RunManifest, RunStatus};
use crate::pipeline::reader::{self, Event, Input, ReaderConfig, Reject, Rejects, Source};
use crate::pipeline::records::{Batch, Record, billable, rebatch};
use crate::settings::{Global, SendSettings};
use crate::ui::{Printer, Reporter, Unit, format_bytes, format_count, format_duration, plural};

/// What a send did; also the JSON document of `send -o json`.
#[derive(Debug, Clone, Serialize)]
pub struct SendReport {
    pub run_id: String,
    pub stream: String,
    /// `None` when there was nothing to send (every input already sent).
    pub manifest: Option<PathBuf>,
    pub status: RunStatus,
    pub lines: u64,
    pub bytes: u64,
    pub records: u64,
    pub batches: u64,
    /// Records resent after failing inside a batch (each resent entry counts once per resend).
    pub retried_records: u64,
    /// Whole PutRecordBatch calls retried (throttled, 5xx, timeouts, connection failures).
    pub retried_calls: u64,
    pub throttled: u64,
    pub rejected_lines: u64,
    /// Records given up after --retry-timeout without progress.
    pub failed_records: u64,
    pub duration_ms: u128,
    pub mb_per_s: f64,
    pub lines_per_s: f64,
    pub billable_bytes: u64,
    pub billable_bytes_one_line_per_record: u64,
    pub one_line_per_record: bool,
    pub one_line_per_record_reason: Option<String>,
    pub rejects: Option<PathBuf>,
    pub resumed: Vec<String>,
    pub already_sent: Vec<String>,
    /// A partitioned stream: ingestion and dynamic partitioning's charges for this send (us-east-1 prices).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitioned_cost: Option<crate::firehose::billing::PartitionedCost>,
    /// The last error a record or a call got (`code: message`).
    pub last_error: Option<String>,
    /// The emulator's latest storage error, when the endpoint announced one (a full disk).
    pub storage_error: Option<String>,
    /// What to do about records given up, in words that fit the last error.
    pub hint: Option<String>,
}

/// What to do when records were given up, from the last error they got: wait out a quota, free the emulator's
/// disk, restart an endpoint, and in every case run the same send again (it resumes after what was
/// acknowledged).
fn give_up_hint(last_error: Option<&str>, storage_error: Option<&str>, resend: &str) -> String {
    let again = format!("run `{resend}` again: it resumes after the last acknowledged line");
    let error = last_error.unwrap_or("");
    if let Some(storage) = storage_error {
        return format!(
            "the endpoint could not store the records ({storage}): free disk space where it keeps its data, then {again}"
        );
    }
    if error.contains("ServiceUnavailableException") || error.contains("Slow down") {
        return format!(
            "the stream's throughput quota was exceeded the whole time: lower --rate or --concurrency, or raise the quota, then {again}"
        );
    }
    if error.contains("dispatch failure") || error.contains("connection") || error.contains("unreachable") {
        return format!("the endpoint stopped answering: check that it is up, then {again}");
    }
    if error.contains("InternalFailure") {
        return format!("the service failed to store the records: {again}, later");
    }
    again
}

/// Expands FILE arguments (globs, `-`) into inputs; every problem is a usage error before anything is sent.
pub fn resolve_inputs(s: &SendSettings) -> Result<Vec<Input>> {
    if let Some(lines) = s.generate {
        return Ok(vec![Input::new("generated".into(), Source::Generate { lines, seed: s.seed })]);
    }
    let mut inputs = Vec::new();
    for arg in &s.inputs {
        if arg == "-" {
            inputs.push(Input::new("stdin".into(), Source::Stdin));
            continue;
        }
        let paths: Vec<PathBuf> = if arg.contains(['*', '?', '[']) {
            let matches =
                glob::glob(arg).map_err(|e| Error::usage(format!("`{arg}` is not a valid glob pattern: {e}")))?;
            let mut found: Vec<PathBuf> = matches.filter_map(|m| m.ok()).filter(|p| p.is_file()).collect();
            found.sort();
            if found.is_empty() {
                return Err(Error::usage(format!("no files match `{arg}`")));
            }
            found
        } else {
            vec![PathBuf::from(arg)]
        };
        for path in paths {
            let meta = std::fs::metadata(&path).map_err(|source| Error::Input { path: path.clone(), source })?;
            if meta.is_dir() {
                return Err(Error::usage(format!("`{}` is a directory: expected a file", path.display()))
                    .with_hint(format!("to send the files in it, use a glob: `{}/*.log`", path.display())));
            }
            let gzip = path.extension().is_some_and(|e| e == "gz");
            inputs.push(Input::new(path.display().to_string(), Source::File { path, gzip }));
        }
    }
    Ok(inputs)
}

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

type PutResult = std::result::Result<PutRecordBatchOutput, SdkError<PutRecordBatchError, HttpResponse>>;
type PutOutcome = (Batch, u32, PutResult);
type PutFuture = Pin<Box<dyn std::future::Future<Output = PutOutcome> + Send>>;

fn put(clients: &Clients, stream: &str, batch: Batch, attempt: u32) -> PutFuture {
    let client = clients.put.clone();
    let stream = stream.to_string();
    Box::pin(async move {
        let records: Vec<aws_sdk_firehose::types::Record> = batch
            .records
            .iter()
            .map(|r| {
                aws_sdk_firehose::types::Record::builder().data(Blob::new(r.data.clone())).build().expect("data is set")
            })
            .collect();
        let result = client.put_record_batch().delivery_stream_name(stream).set_records(Some(records)).send().await;
        (batch, attempt, result)
    })
}

/// What to do with a PutRecordBatch call that failed as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RetryClass {
    /// The stream's throughput quota: retry, paced to what the stream accepts.
    Throttled,
    /// A 5xx, a timeout or a broken connection: retry with backoff.
    Transient,
    /// The request itself is wrong (no such stream, bad argument, KMS key): stop.
    Permanent,
}

/// Classifies a failed call by the SDK's typed error; only an error the model does not name falls back to its
/// HTTP status.
fn classify(err: &SdkError<PutRecordBatchError, HttpResponse>) -> RetryClass {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => RetryClass::Transient,
        SdkError::ServiceError(se) => match se.err() {
            PutRecordBatchError::ServiceUnavailableException(_) => RetryClass::Throttled,
            PutRecordBatchError::ResourceNotFoundException(_)
            | PutRecordBatchError::InvalidArgumentException(_)
            | PutRecordBatchError::InvalidKmsResourceException(_)
            | PutRecordBatchError::InvalidSourceException(_) => RetryClass::Permanent,
            _ => match se.raw().status().as_u16() {
                429 => RetryClass::Throttled,
                s if s >= 500 => RetryClass::Transient,
                _ => RetryClass::Permanent,
            },
        },
        _ => RetryClass::Permanent,
    }
}

fn permanent_hint(err: &SdkError<PutRecordBatchError, HttpResponse>) -> Option<String> {
    match err.as_service_error()? {
        PutRecordBatchError::ResourceNotFoundException(_) => Some(
            "the stream is missing or not ACTIVE: create it with `firehose-kit setup` (it waits until ACTIVE)".into(),
        ),
        PutRecordBatchError::InvalidArgumentException(_) => {
            Some("Firehose refused the request; check the stream's configuration with `firehose-kit status`".into())
        }
        PutRecordBatchError::InvalidKmsResourceException(_) => {
            Some("the stream's KMS key is disabled, missing or not usable by Firehose".into())
        }
        _ => None,
    }
}

/// The sender's counters.
#[derive(Default)]
struct Tally {
    lines: u64,
    bytes: u64,
    records: u64,
    batches: u64,
    retried_records: u64,
    retried_calls: u64,
    throttled: u64,
    failed_records: u64,
    failed_lines: u64,
    billable: u64,
    billable_one: u64,
    digest: Digest,
    /// The last error a record or a call got (`code: message`), for the summary of a run that gives up.
    last_error: Option<String>,
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
struct Sender {
    stream: String,
    retry_timeout: Duration,
    state_dir: PathBuf,
    checkpoints_dir: PathBuf,
    run: RunManifest,
    hashes: HashWriter,
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
}

impl Sender {
    /// A sender for `run` (saved under `state_dir`, with its hash file), before anything is read.
    fn new(
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
        })
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
    fn can_take(&self, inflight: usize, now: Instant) -> bool {
        !self.reader_done
            && matches!(self.ending, Ending::Running)
            && self.gate.ready_at(now).is_none()
            && inflight < self.concurrency.limit()
    }

    /// When the loop must wake up without an event: the next retry, or the end of the throttle gate's wait.
    fn wake_at(&self, now: Instant) -> Option<Instant> {
        let next_retry = self.retry_queue.iter().map(|q| q.ready).min();
        match (next_retry, self.gate.ready_at(now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the run is over: nothing more will be read, nothing is in flight, and nothing is left to retry
    /// (or the run failed, and what is left is not retried).
    fn finished(&self, inflight: usize) -> bool {
        let no_more_input = self.reader_done || !matches!(self.ending, Ending::Running);
        no_more_input && inflight == 0 && (self.retry_queue.is_empty() || self.fatal())
    }

    /// The retries that are due (and within the throttle gate's allowance), to launch now.
    fn due_retries(&mut self, inflight: usize, now: Instant) -> Vec<(Batch, u32)> {
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
    fn on_reader_event(&mut self, event: Option<Event>, now: Instant) -> Option<Batch> {
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
        for span in &record.spans {
            if let Some(st) = self.states.get_mut(&span.input) {
                st.tracker.complete(span.start, span.end, span.lines);
            }
        }
        Ok(())
    }

    /// The answer to one PutRecordBatch call.
    fn on_put_result(&mut self, batch: Batch, attempt: u32, result: PutResult, now: Instant) -> Result<()> {
        match result {
            Ok(out) => {
                let responses = out.request_responses();
                let mut failed: Vec<Record> = Vec::new();
                let (mut throttled, mut accepted_bytes, mut acked_any) = (0u64, 0u64, false);
                for (i, record) in batch.records.into_iter().enumerate() {
                    match responses.get(i).map(|r| r.error_code()) {
                        Some(None) => {
                            acked_any = true;
                            accepted_bytes += record.data.len() as u64;
                            self.acknowledge(&record)?;
                        }
                        code => {
                            if code.flatten().is_some_and(entry_is_throttled) {
                                throttled += 1;
                            }
                            if let Some(r) = responses.get(i) {
                                let code = r.error_code().unwrap_or("no answer for the entry");
                                self.t.last_error = Some(format!("{code}: {}", r.error_message().unwrap_or("")));
                            }
                            failed.push(record);
                        }
                    }
                }
                self.t.batches += 1;
                self.t.throttled += throttled;
                self.gate.on_response(accepted_bytes, throttled > 0, now);
                if acked_any {
                    self.last_progress = now;
                }
                if failed.is_empty() {
                    self.concurrency.on_success();
                } else {
                    if throttled > 0 {
                        self.concurrency.on_throttled();
                    }
                    self.t.retried_records += failed.len() as u64;
                    let all_throttled = throttled as usize == failed.len();
                    let ready = now + retry_delay(attempt + 1, all_throttled, self.last_progress.elapsed());
                    tracing::debug!(
                        "{} of {} entries failed; resending them after backoff (attempt {})",
                        failed.len(),
                        responses.len(),
                        attempt + 1
                    );
                    for batch in rebatch(&self.stream, failed) {
                        self.retry_queue.push(Queued { ready, batch, attempt: attempt + 1 });
                    }
                }
            }
            Err(err) => match classify(&err) {
                class @ (RetryClass::Throttled | RetryClass::Transient) => {
                    let code = err.code().unwrap_or("transport error").to_string();
                    let cause = sdk_error("PutRecordBatch", err).causes().join(": ");
                    self.t.last_error = Some(cause.clone());
                    if class == RetryClass::Throttled {
                        self.t.throttled += batch.records.len() as u64;
                        self.concurrency.on_throttled();
                        self.gate.on_response(0, true, now);
                    }
                    self.t.retried_calls += 1;
                    tracing::debug!("PutRecordBatch failed ({code}), retrying the batch");
                    if self.last_progress.elapsed() >= self.retry_timeout {
                        let reason =
                            format!("no record accepted for {}s; last error: {cause}", self.retry_timeout.as_secs());
                        self.retry_queue.push(Queued { ready: now, batch, attempt: attempt + 1 });
                        self.give_up(reason);
                    } else {
                        let delay =
                            retry_delay(attempt + 1, class == RetryClass::Throttled, self.last_progress.elapsed());
                        self.retry_queue.push(Queued { ready: now + delay, batch, attempt: attempt + 1 });
                    }
                }
                RetryClass::Permanent => {
                    let hint = permanent_hint(&err);
                    let mut e = sdk_error(format!("send to delivery stream `{}`", self.stream), err);
                    if let Some(h) = hint {
                        e = e.with_hint(h);
                    }
                    self.retry_queue.push(Queued { ready: now, batch, attempt });
                    self.fail(e);
                }
            },
        }
        if !self.retry_queue.is_empty() && self.last_progress.elapsed() >= self.retry_timeout {
            self.give_up(format!("no record accepted for {}s", self.retry_timeout.as_secs()));
        }
        self.reject_if_giving_up()
    }

    /// Whether a Ctrl-C would still change anything (the run is not already ending).
    fn accepts_signal(&self) -> bool {
        matches!(self.ending, Ending::Running)
    }

    /// Ctrl-C or SIGTERM: stop reading, finish what is in flight.
    fn on_signal(&mut self, reporter: &dyn Reporter) {
        if matches!(self.ending, Ending::Running) {
            self.ending = Ending::Stopping;
            self.stop_reader();
            reporter.note("stopping: finishing the batches in flight, then saving the checkpoint");
        }
    }

    /// The periodic tick: progress, and the manifest and checkpoints once a second.
    fn on_tick(&mut self, task: &dyn crate::ui::Task, started: Instant) -> Result<()> {
        let t = &self.t;
        let elapsed = started.elapsed().as_secs_f64().max(1e-3);
        task.set_position(t.bytes);
        task.set_message(format!(
            "{} lines · {} records · {:.1} MB/s · {} retried · {} throttled",
            format_count(t.lines),
            format_count(t.records),
            t.bytes as f64 / 1e6 / elapsed,
            format_count(t.retried_records + t.retried_calls),
            format_count(t.throttled),
        ));
        if self.last_save.elapsed() >= Duration::from_secs(1) {
            self.save()?;
            self.last_save = Instant::now();
        }
        Ok(())
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
    fn save(&mut self) -> Result<()> {
        self.hashes.flush()?;
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
    fn finish(mut self, reader: std::thread::Result<()>) -> Result<(RunManifest, Tally, Result<()>)> {
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

/// Locks the checkpoint of every file input for `destination`, in path order (two sends with overlapping inputs
/// cannot deadlock). A file another send is sending to this stream is waited for, with a note naming it; Ctrl-C
/// while waiting stops the send before anything is sent.
async fn lock_inputs(
    inputs: &[Input],
    dir: &std::path::Path,
    destination: &Destination,
    run_id: &str,
    stream: &str,
    reporter: &dyn Reporter,
    stop: &CancellationToken,
) -> Result<Vec<InputLock>> {
    let mut files: Vec<(PathBuf, &str)> = inputs
        .iter()
        .filter_map(|i| match &i.source {
            Source::File { path, .. } => std::fs::canonicalize(path).ok().map(|p| (p, i.name.as_str())),
            _ => None,
        })
        .collect();
    files.sort();
    files.dedup_by(|a, b| a.0 == b.0);
    let mut locks = Vec::with_capacity(files.len());
    for (path, name) in files {
        match try_lock_input(dir, destination, &path, run_id)? {
            Locked::Now(lock) => locks.push(lock),
            Locked::Busy { holder, file } => {
                reporter.note(&format!(
                    "{name}: another send to `{stream}` is sending it ({holder}); waiting for it to finish, then sending what it did not"
                ));
                let id = run_id.to_string();
                let wait = tokio::task::spawn_blocking(move || wait_for_lock(file, &id));
                tokio::select! {
                    lock = wait => locks.push(lock.map_err(|e| Error::failed(format!("waiting for the lock of `{name}` failed: {e}")))??),
                    _ = stop.cancelled() => return Err(Error::Interrupted),
                }
            }
        }
    }
    Ok(locks)
}

/// Sends everything the inputs hold; `stop` ends it early (in-flight batches are finished first).
pub async fn send(
    global: &Global,
    s: &SendSettings,
    clients: &Clients,
    reporter: &dyn Reporter,
    stop: CancellationToken,
) -> Result<SendReport> {
    let inputs = resolve_inputs(s)?;
    let stream = global.stream.clone();
    let info = fh::describe(&clients.firehose, &stream).await?.ok_or_else(|| {
        Error::aws(
            format!("send to delivery stream `{stream}`"),
            Some("ResourceNotFoundException"),
            format!("the stream does not exist in {}", clients.backend()),
            Some(format!("create it with `{}`", global.command("setup"))),
        )
    })?;
    if info.status != StreamStatus::Active {
        return Err(Error::aws(
            format!("send to delivery stream `{stream}`"),
            None,
            format!("the stream is {}, not ACTIVE", info.status),
            Some("wait for it: `firehose-kit setup` waits until the stream is ACTIVE".into()),
        ));
    }
    // A partitioned stream extracts its keys with jq from JSON records: lines are sent as JSON, still packed
    // (up to 500 per record, what deaggregation splits) when the stream deaggregates them.
    let mut json = s.format == SendFormat::Json;
    let max_lines_per_record = info.partitioning.as_ref().filter(|p| p.deaggregates).map(|_| MAX_SUB_RECORDS as u32);
    if let Some(p) = info.partitioning.as_ref().filter(|p| p.query.is_some()) {
        if !json && s.format_explicit {
            return Err(Error::usage(format!(
                "delivery stream `{stream}` partitions records by a jq query over JSON ({}), but --format raw sends raw lines: every line would land in the error output",
                p.query.as_deref().unwrap_or_default()
            ))
            .with_hint("drop --format raw (send converts Apache lines to JSON for partitioned streams) or pass --format json"));
        }
        if !json {
            reporter
                .note("the stream partitions JSON records with a jq query: sending the lines as JSON (--format json)");
            json = true;
        }
    }
    let one_line_reason = info.per_record_processing.clone();
    let one_line_per_record = s.one_line_per_record || one_line_reason.is_some();
    if let Some(reason) = &one_line_reason {
        reporter.note(&format!("{reason}: sending one line per record (packing would merge events)"));
    }
    let account_id = clients.account_id().await?;
    let started_at = chrono::Utc::now();
    let run_id = manifest::new_run_id(started_at);
    let state_dir = global.state_dir.clone();
    let checkpoints_dir = manifest::checkpoints_dir(&state_dir);
    let destination = Destination {
        stream_arn: info.arn.clone(),
        stream_created: info.created,
        endpoint: clients.endpoint_url.clone(),
    };
    // Held until the run ends: a second send of one of these files to this stream waits for this one.
    let locks_dir = manifest::locks_dir(&state_dir);
    let _locks = lock_inputs(&inputs, &locks_dir, &destination, &run_id, &stream, reporter, &stop).await?;
    let plan = plan_resume(inputs, &checkpoints_dir, &destination, &stream, s.from_start, s.follow)?;
    for note in &plan.notes {
        reporter.note(note);
    }
    if plan.inputs.is_empty() {
        return Ok(nothing_to_send(&stream, plan.already_sent, one_line_per_record));
    }
    let total_bytes: Option<u64> = plan
        .inputs
        .iter()
        .map(|i| match &i.source {
            Source::File { path, gzip: false } => {
                std::fs::metadata(path).ok().map(|m| m.len().saturating_sub(i.start_offset))
            }
            _ => None,
        })
        .sum();

    let mut run = RunManifest::start(run_id.clone(), stream.clone(), clients.region.clone(), started_at);
    run.endpoint = clients.endpoint_url.clone();
    run.account_id = account_id;
    run.buffer_interval_s = info.destination.as_ref().map(|d| d.buffer_interval_s.max(0) as u32);
    run.resumed_from = plan.resumed_from.clone();
    run.destination = Some(destination);
    run.save(&state_dir)?;
    let rejects = Arc::new(Rejects::new(manifest::rejects_path(&state_dir, &run_id)));
    let reader_stop = Arc::new(AtomicBool::new(false));
    let mut sender = Sender::new(
        stream.clone(),
        s.retry_timeout,
        s.concurrency,
        state_dir.clone(),
        run,
        rejects.clone(),
        reader_stop.clone(),
    )?;

    let config = ReaderConfig {
        stream: stream.clone(),
        record_size: s.record_size,
        one_line_per_record,
        max_lines_per_record,
        json,
        rate: s.rate,
        follow: s.follow,
        linger: s.linger,
    };
    let (tx, mut rx) = mpsc::channel::<Event>(s.concurrency.max(2) * 2);
    let reader = reader::spawn(plan.inputs, config, tx, reader_stop, rejects.clone());

    let task = reporter.task("send", total_bytes, Unit::Bytes);
    let started = Instant::now();
    let mut inflight: FuturesUnordered<PutFuture> = FuturesUnordered::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now = Instant::now();
        for (batch, attempt) in sender.due_retries(inflight.len(), now) {
            inflight.push(put(clients, &stream, batch, attempt));
        }
        if sender.finished(inflight.len()) {
            break;
        }
        let can_take = sender.can_take(inflight.len(), now);
        let wake = sender.wake_at(now).filter(|_| inflight.len() < sender.concurrency.limit());
        tokio::select! {
            Some((batch, attempt, result)) = inflight.next(), if !inflight.is_empty() => {
                sender.on_put_result(batch, attempt, result, Instant::now())?;
            }
            event = rx.recv(), if can_take => {
                if let Some(batch) = sender.on_reader_event(event, Instant::now()) {
                    inflight.push(put(clients, &stream, batch, 0));
                }
            }
            _ = async { match wake { Some(at) => tokio::time::sleep_until(at.into()).await, None => std::future::pending().await } }, if wake.is_some() => {}
            _ = stop.cancelled(), if sender.accepts_signal() => sender.on_signal(reporter),
            _ = tick.tick() => sender.on_tick(task.as_ref(), started)?,
        }
    }
    drop(rx);
    let joined = tokio::task::spawn_blocking(move || reader.join()).await.unwrap_or_else(|e| {
        Err(Box::new(format!("cannot join the reader thread: {e}")) as Box<dyn std::any::Any + Send>)
    });
    let duration = started.elapsed();
    let (run, t, outcome) = sender.finish(joined)?;
    if let Err(e) = outcome {
        task.finish(format!("stopped after {} lines", format_count(t.lines)));
        return Err(e);
    }
    task.finish(format!("{} lines sent in {}", format_count(t.lines), format_duration(duration)));
    let secs = duration.as_secs_f64().max(1e-6);
    let rejected = rejects.count();
    Ok(SendReport {
        run_id,
        stream,
        manifest: Some(RunManifest::path(&state_dir, &run.run_id)),
        status: run.status,
        lines: t.lines,
        bytes: t.bytes,
        records: t.records,
        batches: t.batches,
        retried_records: t.retried_records,
        retried_calls: t.retried_calls,
        throttled: t.throttled,
        rejected_lines: rejected,
        failed_records: t.failed_records,
        duration_ms: duration.as_millis(),
        mb_per_s: t.bytes as f64 / 1e6 / secs,
        lines_per_s: t.lines as f64 / secs,
        billable_bytes: t.billable,
        billable_bytes_one_line_per_record: t.billable_one,
        one_line_per_record,
        one_line_per_record_reason: one_line_reason,
        rejects: (rejected > 0).then(|| rejects.path().to_path_buf()),
        resumed: plan.resumed,
        already_sent: plan.already_sent,
        partitioned_cost: info
            .partitioning
            .as_ref()
            .map(|_| crate::firehose::billing::partitioned_cost(t.billable, t.bytes)),
        hint: (t.failed_records > 0).then(|| {
            give_up_hint(
                t.last_error.as_deref(),
                clients.emulator.storage_error().as_deref(),
                &resend_command(global, s),
            )
        }),
        last_error: t.last_error,
        storage_error: clients.emulator.storage_error(),
    })
}

/// The command that sends the same inputs to the same stream again.
fn resend_command(global: &Global, s: &SendSettings) -> String {
    let inputs = match s.generate {
        Some(n) => format!("--generate {n}"),
        None => s.inputs.iter().map(|i| crate::settings::shell_word(i)).collect::<Vec<_>>().join(" "),
    };
    global.command(&format!("send {inputs}"))
}

fn nothing_to_send(stream: &str, already_sent: Vec<String>, one_line_per_record: bool) -> SendReport {
    SendReport {
        run_id: String::new(),
        stream: stream.to_string(),
        manifest: None,
        status: RunStatus::Completed,
        lines: 0,
        bytes: 0,
        records: 0,
        batches: 0,
        retried_records: 0,
        retried_calls: 0,
        throttled: 0,
        rejected_lines: 0,
        failed_records: 0,
        duration_ms: 0,
        mb_per_s: 0.0,
        lines_per_s: 0.0,
        billable_bytes: 0,
        billable_bytes_one_line_per_record: 0,
        one_line_per_record,
        one_line_per_record_reason: None,
        rejects: None,
        resumed: Vec::new(),
        already_sent,
        partitioned_cost: None,
        last_error: None,
        storage_error: None,
        hint: None,
    }
}

/// The human summary of a report.
pub fn summary(r: &SendReport) -> String {
    if r.manifest.is_none() {
        return format!("nothing sent to `{}`: every input was already sent (--from-start sends again)", r.stream);
    }
    let mut out = vec![format!(
        "sent {} ({}) to `{}` in {}: {:.1} MB/s, {} lines/s",
        plural(r.lines, "line"),
        format_bytes(r.bytes),
        r.stream,
        format_duration(Duration::from_millis(r.duration_ms as u64)),
        r.mb_per_s,
        format_count(r.lines_per_s as u64)
    )];
    let packing = if r.one_line_per_record {
        "one line per record".to_string()
    } else {
        "lines packed up to the record size".to_string()
    };
    out.push(format!(
        "  {} ({packing}) in {} · {} resent · {} retried · {} throttled",
        plural(r.records, "record"),
        plural(r.batches, "batch|batches"),
        plural(r.retried_records, "entry|entries"),
        plural(r.retried_calls, "call"),
        format_count(r.throttled)
    ));
    let ratio =
        if r.billable_bytes > 0 { r.billable_bytes_one_line_per_record as f64 / r.billable_bytes as f64 } else { 1.0 };
    out.push(format!(
        "  billable {} (each record rounded up to 5 KB) vs {} one line per record{}",
        format_bytes(r.billable_bytes),
        format_bytes(r.billable_bytes_one_line_per_record),
        if ratio > 1.05 { format!(": {ratio:.1}× cheaper") } else { String::new() }
    ));
    if let Some(c) = &r.partitioned_cost {
        out.push(format!(
            "  cost with dynamic partitioning (us-east-1): ingestion ${:.4} + partitioning ${:.4} (per GB) + ${} per 1,000 objects delivered",
            c.ingestion_usd, c.partitioning_usd, c.per_1000_objects_usd
        ));
    }
    if r.rejected_lines > 0 || r.failed_records > 0 {
        out.push(format!(
            "  NOT SENT: {} rejected{} — see {}",
            plural(r.rejected_lines, "line"),
            if r.failed_records > 0 {
                format!(" ({} given up after --retry-timeout)", plural(r.failed_records, "record"))
            } else {
                String::new()
            },
            r.rejects.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
        ));
    }
    if r.failed_records > 0 {
        if let Some(e) = &r.last_error {
            out.push(format!("  last error: {e}"));
        }
        if let Some(e) = &r.storage_error {
            out.push(format!("  the endpoint reported a storage error: {e}"));
        }
        if let Some(h) = &r.hint {
            out.push(format!("  hint: {h}"));
        }
    }
    if let Some(m) = &r.manifest {
        out.push(format!("  run {} · manifest {}", r.run_id, m.display()));
    }
    out.join("\n")
}

pub async fn run(global: &Global, s: &SendSettings, clients: &Clients, printer: &Printer) -> Result<ExitCode> {
    let stop = CancellationToken::new();
    let signal_stop = stop.clone();
    let signals = tokio::spawn(async move {
        crate::util::signal::wait_for_signal().await;
        signal_stop.cancel();
    });
    printer.status(&format!("send to `{}` via {}", global.stream, clients.backend()));
    let reporter = printer.reporter();
    let report = send(global, s, clients, reporter.as_ref(), stop).await;
    signals.abort();
    let report = report?;
    if printer.json() {
        printer.result_json(&json!(report));
    } else {
        printer.result(&summary(&report));
    }
    let complete = report.rejected_lines == 0 && report.failed_records == 0;
    let code = match report.status {
        RunStatus::Completed if complete => ExitCode::Success,
        RunStatus::Interrupted if complete && s.follow => ExitCode::Success,
        _ => ExitCode::Failed,
    };
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_clean_end_completes_and_a_signal_interrupts() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sender(dir.path());
        s.on_reader_event(Some(Event::Done), Instant::now());
        let (run, _, outcome) = s.finish(Ok(())).unwrap();
        assert_eq!(run.status, RunStatus::Completed);
        assert!(outcome.is_ok());
        let mut s = sender(dir.path());
        s.on_signal(&crate::ui::SilentReporter);
        assert!(!s.can_take(0, Instant::now()), "no new batches after Ctrl-C");
        s.on_reader_event(None, Instant::now());
        let (run, _, outcome) = s.finish(Ok(())).unwrap();
        assert_eq!(run.status, RunStatus::Interrupted);
        assert!(outcome.is_ok(), "a channel closed while stopping is not a failure");
    }
}
