//! `firehose-kit send`: push log lines into the stream — packed into records (Firehose bills each record in
//! 5 KB steps), batched within the PutRecordBatch limits, several batches in flight, failed entries (and only
//! those) resent with backoff, nothing dropped silently — and leave the run manifest `verify` needs and the
//! checkpoints that let a re-run resume.
//!
//! Retry ownership: this loop owns every PutRecordBatch retry (whole-call throttling, 5xx, timeouts, and
//! failed entries), decided by its state machine (`pipeline::sender`); the client it uses has SDK retries
//! disabled, so no call is retried at two levels.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::aws::Clients;
use crate::aws::firehose as fh;
use crate::aws::kinesis;
use crate::aws::put::put_record_batch;
use crate::error::{ExitCode, Result};
use crate::pipeline::checkpoint::plan_resume;
use crate::pipeline::manifest::{self, Destination, RunManifest, RunStatus};
use crate::pipeline::reader::{self, Event, ReaderConfig, Rejects};
use crate::pipeline::records::Batch;
use crate::pipeline::sender::{PutAnswer, Sender, Tally};
use crate::settings::{Global, SendSettings};
use crate::ui::{Printer, Reporter, Task, Unit, format_bytes, format_count, format_duration, plural};

mod inputs;
mod stream;

pub use inputs::resolve_inputs;
use inputs::{bytes_to_send, lock_inputs};
use stream::{Framing, active_stream, framing, function_takes_many_lines};

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
    /// A chained pipeline: the data stream written to, and how records spread over its shards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_stream: Option<DataStreamSpread>,
}

/// Records accepted per shard of the data stream in front of a chained pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct DataStreamSpread {
    pub name: String,
    pub records_per_shard: std::collections::BTreeMap<String, u64>,
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

type PutFuture = Pin<Box<dyn std::future::Future<Output = (Batch, u32, PutAnswer)> + Send>>;

/// Where send's records go: the delivery stream (PutRecordBatch), or the Kinesis data stream in front of it
/// (PutRecords, each record with a random partition key so records spread evenly over the shards).
#[derive(Clone)]
enum Sink {
    Firehose {
        client: aws_sdk_firehose::Client,
        stream: String,
    },
    Kinesis {
        client: aws_sdk_kinesis::Client,
        stream: String,
        spread: kinesis::Spread,
        /// `--partition-key FIELD`: each record's key is this field of its (one) JSON line.
        key_field: Option<String>,
    },
}

impl Sink {
    fn of(clients: &Clients, stream: &str, info: &fh::StreamInfo, key_field: Option<&str>) -> Self {
        match &info.source {
            Some(source) => Sink::Kinesis {
                client: clients.kinesis_put.clone(),
                stream: source.stream_name().to_string(),
                spread: kinesis::Spread::default(),
                key_field: key_field.map(str::to_string),
            },
            None => Sink::Firehose { client: clients.put.clone(), stream: stream.to_string() },
        }
    }
}

/// One put call for `batch`, answering with the batch and its attempt number.
fn put(sink: &Sink, batch: Batch, attempt: u32) -> PutFuture {
    let sink = sink.clone();
    Box::pin(async move {
        let answer = match &sink {
            Sink::Firehose { client, stream } => {
                put_record_batch(client, stream, batch.records.iter().map(|r| r.data.as_slice())).await
            }
            Sink::Kinesis { client, stream, spread, key_field } => {
                let key = |data: &[u8]| match key_field {
                    Some(field) => kinesis::field_partition_key(data, field),
                    None => kinesis::random_partition_key(),
                };
                let records = batch.records.iter().map(|r| (r.data.as_slice(), key(&r.data)));
                kinesis::put_records(client, stream, records, spread).await
            }
        };
        (batch, attempt, answer)
    })
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
    let info = active_stream(global, clients).await?;
    let many_lines = function_takes_many_lines(&info, clients).await;
    let framing = framing(s, &info, many_lines, reporter)?;
    let account_id = clients.account_id().await?;
    let started_at = chrono::Utc::now();
    let run_id = manifest::new_run_id(started_at);
    let state_dir = global.state_dir.clone();
    let destination = Destination {
        stream_arn: info.arn.clone(),
        stream_created: info.created,
        endpoint: clients.endpoint_url.clone(),
    };
    // Held until the run ends: a second send of one of these files to this stream waits for this one.
    let locks_dir = manifest::locks_dir(&state_dir);
    let _locks = lock_inputs(&inputs, &locks_dir, &destination, &run_id, &stream, reporter, &stop).await?;
    let checkpoints_dir = manifest::checkpoints_dir(&state_dir);
    let plan = plan_resume(inputs, &checkpoints_dir, &destination, &stream, s.from_start, s.follow)?;
    for note in &plan.notes {
        reporter.note(note);
    }
    if plan.inputs.is_empty() {
        return Ok(nothing_to_send(&stream, plan.already_sent, framing.one_line_per_record));
    }
    let total_bytes = bytes_to_send(&plan.inputs);
    let mut run = RunManifest::start(run_id.clone(), stream.clone(), clients.region.clone(), started_at);
    run.endpoint = clients.endpoint_url.clone();
    run.account_id = account_id;
    run.buffer_interval_s = info.destination.as_ref().map(|d| d.buffer_interval_s.max(0) as u32);
    run.resumed_from = plan.resumed_from.clone();
    run.destination = Some(destination);
    run.source = info.source.as_ref().map(|s| s.stream_arn.clone());
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
    if info.destination.as_ref().is_some_and(|d| d.transform.is_some()) {
        sender.keep_lines()?;
    }
    let sink = Sink::of(clients, &stream, &info, s.partition_key.as_deref());
    if let Sink::Kinesis { stream: data_stream, .. } = &sink {
        // A hot shard's throttled entries are resent alone; only a call throttled whole slows every shard.
        sender.throttle_per_entry();
        reporter.note(&format!("writing to data stream `{data_stream}` (PutRecords); Firehose reads it into S3"));
    }
    let config = ReaderConfig {
        stream: stream.clone(),
        record_size: s.record_size,
        one_line_per_record: framing.one_line_per_record,
        max_lines_per_record: framing.max_lines_per_record,
        json: framing.json,
        utc_times: info.converts_formats && framing.json,
        rate: s.rate,
        follow: s.follow,
        linger: s.linger,
    };
    let (tx, rx) = mpsc::channel::<Event>(s.concurrency.max(2) * 2);
    let reader = reader::spawn(plan.inputs, config, tx, reader_stop, rejects.clone());
    let task = reporter.task("send", total_bytes, Unit::Bytes);
    let started = Instant::now();
    let sender = drive(sender, rx, &sink, task.as_ref(), reporter, &stop).await?;
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
    let ended = Ended { run, t, duration, rejects: &rejects, resumed: plan.resumed, already_sent: plan.already_sent };
    let mut report = report(global, s, clients, &info, framing, ended);
    if let Sink::Kinesis { stream, spread, .. } = sink {
        report.data_stream = Some(DataStreamSpread { name: stream, records_per_shard: spread.counts() });
    }
    Ok(report)
}

/// The send loop: launches batches from the reader and due retries (up to the concurrency limit), and hands
/// every answer, tick and signal to the sender until it is finished.
async fn drive(
    mut sender: Sender,
    mut rx: mpsc::Receiver<Event>,
    sink: &Sink,
    task: &dyn Task,
    reporter: &dyn Reporter,
    stop: &CancellationToken,
) -> Result<Sender> {
    let mut inflight: FuturesUnordered<PutFuture> = FuturesUnordered::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    loop {
        let now = Instant::now();
        for (batch, attempt) in sender.due_retries(inflight.len(), now) {
            inflight.push(put(sink, batch, attempt));
        }
        if sender.finished(inflight.len()) {
            return Ok(sender);
        }
        let can_take = sender.can_take(inflight.len(), now);
        let wake = sender.wake_at(now).filter(|_| inflight.len() < sender.concurrency_limit());
        tokio::select! {
            Some((batch, attempt, result)) = inflight.next(), if !inflight.is_empty() => {
                sender.on_put_result(batch, attempt, result, Instant::now())?;
            }
            event = rx.recv(), if can_take => {
                if let Some(batch) = sender.on_reader_event(event, Instant::now()) {
                    inflight.push(put(sink, batch, 0));
                }
            }
            _ = async { match wake { Some(at) => tokio::time::sleep_until(at.into()).await, None => std::future::pending().await } }, if wake.is_some() => {}
            _ = stop.cancelled(), if sender.accepts_signal() => {
                if sender.on_signal() {
                    reporter.note("stopping: finishing the batches in flight, then saving the checkpoint");
                }
            }
            _ = tick.tick() => {
                let (position, progress) = sender.on_tick(started)?;
                task.set_position(position);
                task.set_message(progress);
            }
        }
    }
}

/// What a finished run leaves for its report.
struct Ended<'a> {
    run: RunManifest,
    t: Tally,
    duration: Duration,
    rejects: &'a Rejects,
    resumed: Vec<String>,
    already_sent: Vec<String>,
}

fn report(
    global: &Global,
    s: &SendSettings,
    clients: &Clients,
    info: &fh::StreamInfo,
    framing: Framing,
    e: Ended,
) -> SendReport {
    let (t, secs) = (e.t, e.duration.as_secs_f64().max(1e-6));
    let rejected = e.rejects.count();
    SendReport {
        run_id: e.run.run_id.clone(),
        stream: global.stream.clone(),
        manifest: Some(RunManifest::path(&global.state_dir, &e.run.run_id)),
        status: e.run.status,
        lines: t.lines,
        bytes: t.bytes,
        records: t.records,
        batches: t.batches,
        retried_records: t.retried_records,
        retried_calls: t.retried_calls,
        throttled: t.throttled,
        rejected_lines: rejected,
        failed_records: t.failed_records,
        duration_ms: e.duration.as_millis(),
        mb_per_s: t.bytes as f64 / 1e6 / secs,
        lines_per_s: t.lines as f64 / secs,
        billable_bytes: t.billable,
        billable_bytes_one_line_per_record: t.billable_one,
        one_line_per_record: framing.one_line_per_record,
        one_line_per_record_reason: framing.one_line_reason,
        rejects: (rejected > 0).then(|| e.rejects.path().to_path_buf()),
        resumed: e.resumed,
        already_sent: e.already_sent,
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
        data_stream: None,
    }
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
        data_stream: None,
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
    if let Some(d) = &r.data_stream {
        let spread: Vec<String> =
            d.records_per_shard.iter().map(|(shard, n)| format!("{shard} {}", format_count(*n))).collect();
        out.push(format!("  via data stream `{}`: records per shard: {}", d.name, spread.join(" · ")));
    }
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
