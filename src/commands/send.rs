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
use crate::pipeline::checkpoint::{AckTracker, Checkpoint, FileIdentity};
use crate::pipeline::control::{Concurrency, ThrottleGate, retry_delay};
use crate::pipeline::manifest::{self, Digest, HashWriter, InputSummary, RunManifest, RunStatus};
use crate::pipeline::reader::{self, Event, Input, ReaderConfig, Reject, Rejects, Source};
use crate::pipeline::records::{Batch, Record, billable, rebatch};
use crate::settings::{Global, SendSettings};
use crate::ui::{Printer, Reporter, Unit, format_bytes, format_count, format_duration};

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
}

/// Expands FILE arguments (globs, `-`) into inputs; every problem is a usage error before anything is sent.
pub fn resolve_inputs(s: &SendSettings) -> Result<Vec<Input>> {
    if let Some(lines) = s.generate {
        return Ok(vec![Input {
            name: "generated".into(),
            source: Source::Generate { lines, seed: s.seed },
            start_offset: 0,
            start_lines: 0,
        }]);
    }
    let mut inputs = Vec::new();
    for arg in &s.inputs {
        if arg == "-" {
            inputs.push(Input { name: "stdin".into(), source: Source::Stdin, start_offset: 0, start_lines: 0 });
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
            inputs.push(Input {
                name: path.display().to_string(),
                source: Source::File { path, gzip },
                start_offset: 0,
                start_lines: 0,
            });
        }
    }
    Ok(inputs)
}

struct InputState {
    name: String,
    path: Option<PathBuf>,
    identity: Option<FileIdentity>,
    tracker: AckTracker,
    resumed_at: u64,
    lines: u64,
    bytes: u64,
}

type PutOutcome = (Batch, u32, std::result::Result<PutRecordBatchOutput, SdkError<PutRecordBatchError, HttpResponse>>);
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

/// How a failed call should be handled: retried (and whether it was throttling) or not.
fn classify(err: &SdkError<PutRecordBatchError, HttpResponse>) -> Option<bool> {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Some(false),
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("");
            let status = se.raw().status().as_u16();
            if code == "ServiceUnavailableException"
                || code.starts_with("Throttl")
                || code == "SlowDown"
                || status == 429
            {
                Some(true)
            } else if status >= 500 {
                Some(false)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn permanent_hint(code: Option<&str>) -> Option<String> {
    match code {
        Some("ResourceNotFoundException") => Some(
            "the stream is missing or not ACTIVE: create it with `firehose-kit setup` (it waits until ACTIVE)".into(),
        ),
        Some("InvalidArgumentException") => {
            Some("Firehose refused the request; check the stream's configuration with `firehose-kit status`".into())
        }
        _ => None,
    }
}

/// The sender's bookkeeping.
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
}

/// Sends everything the inputs hold; `stop` ends it early (in-flight batches are finished first).
pub async fn send(
    global: &Global,
    s: &SendSettings,
    clients: &Clients,
    reporter: &dyn Reporter,
    stop: CancellationToken,
) -> Result<SendReport> {
    let mut inputs = resolve_inputs(s)?;
    let stream = global.stream.clone();
    let info = fh::describe(&clients.firehose, &stream).await?.ok_or_else(|| {
        Error::aws(
            format!("send to delivery stream `{stream}`"),
            Some("ResourceNotFoundException"),
            format!("the stream does not exist in {}", clients.backend()),
            Some(format!("create it with `firehose-kit{} setup`", super::setup::stream_flag(&stream))),
        )
    })?;
    if info.status != "ACTIVE" {
        return Err(Error::aws(
            format!("send to delivery stream `{stream}`"),
            None,
            format!("the stream is {}, not ACTIVE", info.status),
            Some("wait for it: `firehose-kit setup` waits until the stream is ACTIVE".into()),
        ));
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

    // Resume files from their checkpoints.
    let mut resumed = Vec::new();
    let mut resumed_from = Vec::new();
    let mut already_sent = Vec::new();
    let mut keep = Vec::new();
    for mut input in inputs.drain(..) {
        if let Source::File { path, .. } = &input.source
            && !s.from_start
        {
            let canonical =
                std::fs::canonicalize(path).map_err(|source| Error::Input { path: path.clone(), source })?;
            if let Some(cp) = Checkpoint::load(&checkpoints_dir, &stream, &canonical)? {
                if cp.identity.still_matches(path).unwrap_or(false) {
                    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                    let plain = matches!(input.source, Source::File { gzip: false, .. });
                    if plain && cp.offset >= size && !s.follow {
                        already_sent.push(input.name.clone());
                        reporter.note(&format!(
                            "{}: already sent ({} lines acknowledged by run {}); nothing to do (--from-start sends it again)",
                            input.name,
                            format_count(cp.lines),
                            cp.run_id
                        ));
                        continue;
                    }
                    if cp.offset > 0 {
                        reporter.note(&format!(
                            "{}: resuming after line {} (byte {}), acknowledged by run {}",
                            input.name,
                            format_count(cp.lines),
                            format_count(cp.offset),
                            cp.run_id
                        ));
                        input.start_offset = cp.offset;
                        input.start_lines = cp.lines;
                        resumed.push(input.name.clone());
                        if !resumed_from.contains(&cp.run_id) {
                            resumed_from.push(cp.run_id.clone());
                        }
                    }
                } else {
                    reporter.note(&format!(
                        "{}: changed since its checkpoint (rotated or rewritten); sending it from the start",
                        input.name
                    ));
                }
            }
        }
        keep.push(input);
    }
    let inputs = keep;
    if inputs.is_empty() {
        return Ok(nothing_to_send(&stream, already_sent, one_line_per_record));
    }
    let total_bytes: Option<u64> = inputs
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
    run.resumed_from = resumed_from;
    run.save(&state_dir)?;
    let mut hashes = HashWriter::create(RunManifest::hashes_path(&state_dir, &run_id))?;
    let rejects = Arc::new(Rejects::new(manifest::rejects_path(&state_dir, &run_id)));

    let config = ReaderConfig {
        stream: stream.clone(),
        record_size: s.record_size,
        one_line_per_record,
        json: s.format == SendFormat::Json,
        rate: s.rate,
        follow: s.follow,
        linger: s.linger,
    };
    let (tx, mut rx) = mpsc::channel::<Event>(s.concurrency.max(2) * 2);
    let reader_stop = Arc::new(AtomicBool::new(false));
    let reader = reader::spawn(inputs, config, tx, reader_stop.clone(), rejects.clone());

    let task = reporter.task("send", total_bytes, Unit::Bytes);
    let started = Instant::now();
    let mut states: HashMap<usize, InputState> = HashMap::new();
    let mut t = Tally::default();
    let mut inflight: FuturesUnordered<PutFuture> = FuturesUnordered::new();
    let mut retry_queue: Vec<(Instant, Batch, u32)> = Vec::new();
    let mut concurrency = Concurrency::new(s.concurrency);
    let mut gate = ThrottleGate::default();
    let mut reader_done = false;
    let mut stopping = false;
    let mut giving_up: Option<String> = None;
    let mut fatal: Option<Error> = None;
    let mut last_progress = Instant::now();
    let mut last_save = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let save = |run: &mut RunManifest,
                t: &Tally,
                states: &HashMap<usize, InputState>,
                hashes: &mut HashWriter,
                rejected: u64|
     -> Result<()> {
        hashes.flush()?;
        run.lines = t.lines;
        run.bytes = t.bytes;
        run.records = t.records;
        run.batches = t.batches;
        run.retries = t.retried_records + t.retried_calls;
        run.throttled = t.throttled;
        run.rejected_lines = rejected;
        run.failed_records = t.failed_records;
        run.billable_bytes = t.billable;
        run.billable_bytes_one_line_per_record = t.billable_one;
        run.digest = t.digest;
        let mut indices: Vec<&usize> = states.keys().collect();
        indices.sort();
        run.inputs = indices
            .iter()
            .map(|i| {
                let st = &states[i];
                InputSummary { name: st.name.clone(), lines: st.lines, bytes: st.bytes, resumed_at: st.resumed_at }
            })
            .collect();
        // Manifest first, then checkpoints: a checkpoint never covers lines the manifest does not.
        run.save(&state_dir)?;
        for i in indices {
            let st = &states[i];
            if let (Some(path), Some(identity)) = (&st.path, &st.identity) {
                let cp = Checkpoint {
                    stream: run.stream.clone(),
                    path: path.clone(),
                    identity: identity.clone(),
                    offset: st.tracker.contiguous(),
                    lines: st.tracker.lines(),
                    run_id: run.run_id.clone(),
                };
                cp.save(&checkpoints_dir)?;
            }
        }
        Ok(())
    };

    loop {
        // Launch ready retries first, then new batches, up to the concurrency limit.
        let now = Instant::now();
        while inflight.len() < concurrency.limit() {
            let Some(pos) = retry_queue.iter().position(|(ready, _, _)| *ready <= now) else { break };
            let batch = match gate.allowance(now) {
                None => {
                    let (_, batch, attempt) = retry_queue.swap_remove(pos);
                    (batch, attempt)
                }
                Some(budget) if budget < 0.0 => break,
                Some(budget) => {
                    // Throttled: send only what the stream has lately been accepting; the rest waits its turn.
                    let part = retry_queue[pos].1.take_within(budget, &stream);
                    let attempt = retry_queue[pos].2;
                    if retry_queue[pos].1.records.is_empty() {
                        retry_queue.swap_remove(pos);
                    }
                    (part, attempt)
                }
            };
            gate.spend(batch.0.data_bytes(), now);
            inflight.push(put(clients, &stream, batch.0, batch.1));
        }
        // While the stream throttles, the gate holds new and retried batches to its acceptance rate.
        let gate_wait = gate.ready_at(now);
        let can_take = !reader_done
            && !stopping
            && giving_up.is_none()
            && fatal.is_none()
            && gate_wait.is_none()
            && inflight.len() < concurrency.limit();
        let next_retry = retry_queue.iter().map(|(ready, _, _)| *ready).min();
        let wake = match (next_retry, gate_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if (reader_done || stopping || giving_up.is_some() || fatal.is_some())
            && inflight.is_empty()
            && (retry_queue.is_empty() || fatal.is_some())
        {
            break;
        }
        tokio::select! {
            Some((batch, attempt, result)) = inflight.next(), if !inflight.is_empty() => {
                match result {
                    Ok(out) => {
                        let mut failed: Vec<Record> = Vec::new();
                        let mut throttled = 0u64;
                        let responses = out.request_responses();
                        let mut acked_any = false;
                        let mut accepted_bytes = 0u64;
                        for (i, record) in batch.records.into_iter().enumerate() {
                            let code = responses.get(i).and_then(|r| r.error_code());
                            match code {
                                None if i < responses.len() => {
                                    acked_any = true;
                                    accepted_bytes += record.data.len() as u64;
                                    t.lines += record.lines as u64;
                                    t.bytes += record.data.len() as u64;
                                    t.records += 1;
                                    t.billable += billable(record.data.len() as u64);
                                    t.billable_one += record.billable_one_per_record;
                                    for h in &record.hashes {
                                        t.digest.add(*h);
                                    }
                                    hashes.write(&record.hashes)?;
                                    for span in &record.spans {
                                        if let Some(st) = states.get_mut(&span.input) {
                                            st.tracker.complete(span.start, span.end, span.lines);
                                        }
                                    }
                                }
                                code => {
                                    if code == Some("ServiceUnavailableException") {
                                        throttled += 1;
                                    }
                                    failed.push(record);
                                }
                            }
                        }
                        t.batches += 1;
                        t.throttled += throttled;
                        gate.on_response(accepted_bytes, throttled > 0, Instant::now());
                        if acked_any {
                            last_progress = Instant::now();
                        }
                        if failed.is_empty() {
                            concurrency.on_success();
                        } else {
                            if throttled > 0 {
                                concurrency.on_throttled();
                            }
                            t.retried_records += failed.len() as u64;
                            let reason = format!("{} of {} entries failed", failed.len(), responses.len());
                            let all_throttled = throttled as usize == failed.len();
                            let ready = Instant::now() + retry_delay(attempt + 1, all_throttled, last_progress.elapsed());
                            for b in rebatch(&stream, failed) {
                                retry_queue.push((ready, b, attempt + 1));
                            }
                            tracing::debug!("{reason}; resending them after backoff (attempt {})", attempt + 1);
                        }
                    }
                    Err(err) => match classify(&err) {
                        Some(throttled) => {
                            if throttled {
                                t.throttled += batch.records.len() as u64;
                                concurrency.on_throttled();
                                gate.on_response(0, true, Instant::now());
                            }
                            t.retried_calls += 1;
                            tracing::debug!("PutRecordBatch failed ({}), retrying the batch", err.code().unwrap_or("transport error"));
                            if last_progress.elapsed() >= s.retry_timeout {
                                giving_up.get_or_insert_with(|| format!("no record accepted for {}s; last error: {}", s.retry_timeout.as_secs(), sdk_error("PutRecordBatch", err).causes().join(": ")));
                                retry_queue.push((Instant::now(), batch, attempt + 1));
                            } else {
                                let delay = retry_delay(attempt + 1, throttled, last_progress.elapsed());
                                retry_queue.push((Instant::now() + delay, batch, attempt + 1));
                            }
                        }
                        None => {
                            let code = err.code().map(str::to_string);
                            let mut e = sdk_error(format!("send to delivery stream `{stream}`"), err);
                            if let Some(h) = permanent_hint(code.as_deref()) {
                                e = e.with_hint(h);
                            }
                            fatal.get_or_insert(e);
                            reader_stop.store(true, Ordering::Relaxed);
                            retry_queue.push((Instant::now(), batch, attempt));
                        }
                    },
                }
                if giving_up.is_none() && !retry_queue.is_empty() && last_progress.elapsed() >= s.retry_timeout {
                    giving_up = Some(format!("no record accepted for {}s", s.retry_timeout.as_secs()));
                }
                if giving_up.is_some() || fatal.is_some() {
                    reader_stop.store(true, Ordering::Relaxed);
                }
            }
            event = rx.recv(), if can_take => {
                match event {
                    None => reader_done = true,
                    Some(Event::Batch(mut batch)) => {
                        let now = Instant::now();
                        if let Some(budget) = gate.allowance(now) {
                            let part = batch.take_within(budget, &stream);
                            if !batch.records.is_empty() {
                                retry_queue.push((now, batch, 0));
                            }
                            batch = part;
                        }
                        gate.spend(batch.data_bytes(), now);
                        inflight.push(put(clients, &stream, batch, 0));
                    }
                    Some(Event::Opened { input, name, path, identity, start_offset, start_lines }) => {
                        let path = path.and_then(|p| std::fs::canonicalize(p).ok());
                        states.insert(input, InputState { name, path, identity, tracker: AckTracker::new(start_offset, start_lines), resumed_at: start_offset, lines: 0, bytes: 0 });
                    }
                    Some(Event::Skipped(span)) => {
                        if let Some(st) = states.get_mut(&span.input) {
                            st.tracker.complete(span.start, span.end, span.lines);
                        }
                    }
                    Some(Event::Finished { input, lines, bytes }) => {
                        if let Some(st) = states.get_mut(&input) {
                            st.lines = lines;
                            st.bytes = bytes;
                        }
                    }
                    Some(Event::Failed(e)) => {
                        fatal.get_or_insert(e);
                        reader_stop.store(true, Ordering::Relaxed);
                    }
                }
            }
            _ = async { match wake { Some(at) => tokio::time::sleep_until(at.into()).await, None => std::future::pending().await } }, if wake.is_some() && inflight.len() < concurrency.limit() => {}
            _ = stop.cancelled(), if !stopping => {
                stopping = true;
                reader_stop.store(true, Ordering::Relaxed);
                reporter.note("stopping: finishing the batches in flight, then saving the checkpoint");
            }
            _ = tick.tick() => {
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
                if last_save.elapsed() >= Duration::from_secs(1) {
                    save(&mut run, &t, &states, &mut hashes, rejects.count())?;
                    last_save = Instant::now();
                }
            }
        }
        // Records that will not be retried any more (gave up): to the rejects file, counted.
        if let Some(reason) = &giving_up {
            let doomed: Vec<(Instant, Batch, u32)> = std::mem::take(&mut retry_queue);
            for (_, batch, _) in doomed {
                reject_batch(&rejects, &states, &batch, reason, &mut t)?;
            }
        }
    }
    drop(rx);
    let _ = tokio::task::spawn_blocking(move || reader.join()).await;
    if let Some(reason) = &giving_up {
        for (_, batch, _) in std::mem::take(&mut retry_queue) {
            reject_batch(&rejects, &states, &batch, reason, &mut t)?;
        }
    }

    let duration = started.elapsed();
    run.ended = Some(chrono::Utc::now());
    run.status = if fatal.is_some() || giving_up.is_some() {
        RunStatus::Failed
    } else if stopping {
        RunStatus::Interrupted
    } else {
        RunStatus::Completed
    };
    save(&mut run, &t, &states, &mut hashes, rejects.count())?;
    if let Some(e) = fatal {
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
        resumed,
        already_sent,
    })
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
    }
}

fn reject_batch(
    rejects: &Rejects,
    states: &HashMap<usize, InputState>,
    batch: &Batch,
    reason: &str,
    t: &mut Tally,
) -> Result<()> {
    for record in &batch.records {
        let span = record.spans.first();
        let name = span.and_then(|s| states.get(&s.input)).map(|s| s.name.as_str()).unwrap_or("input");
        rejects.write(&Reject {
            input: name,
            line: None,
            offset: span.map(|s| s.start),
            lines: record.lines as u64,
            bytes: record.data.len() as u64,
            reason: &format!("not accepted: {reason}"),
            text: &record.data,
        })?;
        t.failed_records += 1;
        t.failed_lines += record.lines as u64;
    }
    Ok(())
}

/// The human summary of a report.
pub fn summary(r: &SendReport) -> String {
    if r.manifest.is_none() {
        return format!("nothing sent to `{}`: every input was already sent (--from-start sends again)", r.stream);
    }
    let mut out = vec![format!(
        "sent {} lines ({}) to `{}` in {}: {:.1} MB/s, {} lines/s",
        format_count(r.lines),
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
        "  {} records ({packing}) in {} batches · {} entries resent · {} calls retried · {} throttled",
        format_count(r.records),
        format_count(r.batches),
        format_count(r.retried_records),
        format_count(r.retried_calls),
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
    if r.rejected_lines > 0 || r.failed_records > 0 {
        out.push(format!(
            "  NOT SENT: {} lines rejected{} — see {}",
            format_count(r.rejected_lines),
            if r.failed_records > 0 {
                format!(" ({} records given up after --retry-timeout)", format_count(r.failed_records))
            } else {
                String::new()
            },
            r.rejects.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
        ));
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
        super::local::wait_for_signal().await;
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
