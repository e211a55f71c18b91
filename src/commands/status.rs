//! `firehose-kit status`: the stream, its settings, what has been delivered so far, recent delivery errors and
//! whether data is waiting (or was dropped), the emulator's own condition when it is one, and the last send
//! run. [`status`] builds the typed [`StatusReport`] (`-o json` prints it); [`summary`] words it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::aws::Clients;
use crate::aws::firehose::{self as fh, DestinationSpec, ErrorLogging};
use crate::aws::logs::{self, ErrorSummary};
use crate::aws::s3;
use crate::error::{Error, ExitCode, Result};
use crate::firehose::prefix;
use crate::pipeline::manifest::{self, Destination, RunManifest};
use crate::settings::Global;
use crate::ui::{Printer, format_bytes, format_count, format_duration, plural};

/// What is under the stream's static prefix.
#[derive(Debug, Clone, Serialize)]
pub struct Delivered {
    /// This stream's data objects (not its error output, even under the data prefix).
    pub objects: usize,
    pub bytes: u64,
    pub newest: Option<DateTime<Utc>>,
    pub prefix: String,
    /// This stream's objects under the error output prefix (other streams may share it).
    pub error_objects: usize,
}

/// Everything `status` reports (`-o json`).
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub stream: String,
    pub arn: String,
    pub status: crate::firehose::types::StreamStatus,
    pub version: String,
    pub created: Option<DateTime<Utc>>,
    pub failure: Option<String>,
    pub destination: Option<DestinationSpec>,
    pub role: Option<String>,
    pub tags: serde_json::Map<String, serde_json::Value>,
    pub managed: bool,
    /// `None`: the bucket does not exist.
    pub delivered: Option<Delivered>,
    pub error_logging: Option<ErrorLogging>,
    pub errors_last_hour: Option<Vec<ErrorSummary>>,
    /// Delivery is failing now, and undelivered data has waited since then.
    pub failing_since: Option<DateTime<Utc>>,
    /// Delivery has failed for longer than the retry horizon: data that arrived before this was dropped.
    pub dropped_before: Option<DateTime<Utc>>,
    /// How long undeliverable data is retried (24 h on AWS; an emulator's `--delivery-retry-horizon`).
    pub retry_horizon_s: f64,
    pub emulator_speed: f64,
    /// The emulator's latest storage error (a full disk), when it announced one.
    pub emulator_storage_error: Option<String>,
    pub last_run: Option<RunManifest>,
    /// The transformation function, when the stream has a Lambda processor.
    pub transform: Option<TransformStatus>,
    /// The Kinesis data stream in front, for a chained pipeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceStatus>,
}

/// A chained pipeline's data stream, and how far behind it Firehose's reading is.
#[derive(Debug, Clone, Serialize)]
pub struct SourceStatus {
    pub arn: String,
    /// `None`: the data stream does not exist (Firehose has nothing to read).
    pub data_stream: Option<crate::aws::kinesis::DataStream>,
    /// Milliseconds behind the newest record (the emulator says; on AWS, CloudWatch's
    /// `DataReadFromKinesisStream` metrics do).
    pub millis_behind: Option<i64>,
}

/// A transformed stream's function, as Lambda reports it.
#[derive(Debug, Clone, Serialize)]
pub struct TransformStatus {
    pub function: String,
    /// `false`: every transformation fails with Lambda.ResourceNotFound.
    pub exists: bool,
    pub runtime: Option<String>,
    pub handler: Option<String>,
}

async fn transform_status(clients: &Clients, dest: Option<&DestinationSpec>) -> Result<Option<TransformStatus>> {
    let Some(function) = dest.and_then(|d| d.transform.clone()) else { return Ok(None) };
    let info = crate::aws::lambda::get_function(&clients.lambda, &function).await?;
    Ok(Some(TransformStatus {
        exists: info.is_some(),
        runtime: info.as_ref().and_then(|f| f.runtime.clone()),
        handler: info.and_then(|f| f.handler),
        function,
    }))
}

pub async fn run(global: &Global, clients: &Clients, printer: &Printer) -> Result<ExitCode> {
    let report = status(global, clients, printer).await?;
    if printer.json() {
        printer.result_json(&serde_json::json!(report));
    } else {
        printer.result(&summary(&report, global));
    }
    Ok(ExitCode::Success)
}

/// Reads the stream, its bucket, its error log and the state dir.
pub async fn status(global: &Global, clients: &Clients, printer: &Printer) -> Result<StatusReport> {
    let Some(info) = fh::describe(&clients.firehose, &global.stream).await? else {
        return Err(Error::failed(format!(
            "delivery stream `{}` does not exist in {}",
            global.stream,
            clients.backend()
        ))
        .with_hint(format!("create it with `{}`", global.command("setup"))));
    };
    let tags = fh::tags(&clients.firehose, &global.stream).await?;
    let dest = info.destination.clone();
    let delivered = match &dest {
        Some(d) => delivered(clients, d, &info.name).await?,
        None => None,
    };
    let here = Destination {
        stream_arn: info.arn.clone(),
        stream_created: info.created,
        endpoint: clients.endpoint_url.clone(),
    };
    let (last_run, runs) = manifest::latest_run_to(&global.state_dir, &global.stream, &here);
    if let Some(w) = runs.warning() {
        printer.reporter().warn(&w);
    }
    let now = Utc::now();
    let errors = match dest.as_ref().and_then(|d| d.error_logging.clone()) {
        Some(l) => logs::delivery_errors(&clients.logs, &l.group, &l.stream, now - chrono::Duration::hours(1), now)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("cannot read the error log: {e}");
                None
            }),
        None => None,
    };
    let horizon = clients.emulator.retry_horizon();
    // Data is buffered up to the interval before its first delivery attempt (and error).
    let interval = dest.as_ref().map(|d| d.buffer_interval_s.max(0) as f64 / clients.emulator.speed()).unwrap_or(0.0);
    let newest = delivered.as_ref().and_then(|d| d.newest);
    let (failing_since, dropped_before) = waiting(errors.as_deref(), newest, horizon, interval, now);
    let transform = transform_status(clients, dest.as_ref()).await?;
    let source = match &info.source {
        Some(s) => Some(SourceStatus {
            arn: s.stream_arn.clone(),
            data_stream: crate::aws::kinesis::describe(&clients.kinesis, s.stream_name()).await?,
            millis_behind: clients.emulator.source_lag_ms(),
        }),
        None => None,
    };
    Ok(StatusReport {
        stream: info.name.clone(),
        arn: info.arn.clone(),
        status: info.status.clone(),
        version: info.version_id.clone(),
        created: info.created,
        failure: info.failure.clone(),
        role: dest.as_ref().map(|d| d.role_arn.rsplit('/').next().unwrap_or(&d.role_arn).to_string()),
        error_logging: dest.as_ref().and_then(|d| d.error_logging.clone()),
        destination: dest,
        managed: crate::aws::policy::is_managed(&tags),
        tags: tags.into_iter().map(|(k, v)| (k, serde_json::json!(v))).collect(),
        delivered,
        errors_last_hour: errors,
        failing_since,
        dropped_before,
        retry_horizon_s: horizon.as_secs_f64(),
        emulator_speed: clients.emulator.speed(),
        emulator_storage_error: clients.emulator.storage_error(),
        last_run: last_run.ok(),
        transform,
        source,
    })
}

/// What is under the stream's static prefix: its objects, their bytes, the newest (`None`: no bucket).
async fn delivered(clients: &Clients, d: &DestinationSpec, stream: &str) -> Result<Option<Delivered>> {
    let static_prefix = prefix::static_part_of(d.prefix.as_deref()).to_string();
    if s3::bucket_state(&clients.s3, d.bucket()).await? != s3::BucketState::Exists {
        return Ok(None);
    }
    let name = format!("{stream}-");
    let error_prefix = d.error_prefix.as_deref().map(|p| prefix::static_part_of(Some(p))).filter(|p| !p.is_empty());
    let objects = s3::list_objects(&clients.s3, d.bucket(), &static_prefix).await?;
    let ours: Vec<_> = objects
        .iter()
        .filter(|o| o.key.rsplit('/').next().is_some_and(|n| n.starts_with(&name)))
        .filter(|o| error_prefix.is_none_or(|ep| !o.key.starts_with(ep)))
        .collect();
    let error_objects = match error_prefix {
        Some(ep) => s3::list_objects(&clients.s3, d.bucket(), ep)
            .await?
            .iter()
            .filter(|o| crate::firehose::keys::written_by(&o.key, stream))
            .count(),
        None => 0,
    };
    Ok(Some(Delivered {
        objects: ours.len(),
        bytes: ours.iter().map(|o| o.size).sum(),
        newest: ours.iter().filter_map(|o| o.last_modified).max(),
        prefix: static_prefix,
        error_objects,
    }))
}

/// While errors keep coming (the last within two minutes) and no object is newer than the last error,
/// undelivered data is at least as old as the first error (and arrived up to `interval_s` before it). Once
/// that is longer ago than the retry horizon, data that arrived more than the horizon ago has been dropped.
fn waiting(
    errors: Option<&[ErrorSummary]>,
    newest_object: Option<DateTime<Utc>>,
    horizon: std::time::Duration,
    interval_s: f64,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let Some(list) = errors else { return (None, None) };
    let (Some(first), Some(last)) = (list.iter().map(|e| e.first).min(), list.iter().map(|e| e.last).max()) else {
        return (None, None);
    };
    let ongoing = now - last < chrono::Duration::minutes(2) && newest_object.is_none_or(|n| n < last);
    if !ongoing {
        return (None, None);
    }
    let horizon = chrono::Duration::from_std(horizon).unwrap_or(chrono::Duration::hours(24));
    let arrived = first - chrono::Duration::milliseconds((interval_s * 1000.0) as i64);
    let dropped = (now - arrived > horizon).then(|| now - horizon);
    (Some(first), dropped)
}

/// The human report.
pub fn summary(r: &StatusReport, global: &Global) -> String {
    let mut out = vec![
        format!("stream      {} ({})", r.stream, r.status),
        format!("arn         {}", r.arn),
        format!("version     {}", r.version),
    ];
    if let Some(f) = &r.failure {
        out.push(format!("failure     {f}"));
    }
    if let Some(d) = &r.destination {
        out.extend(destination_lines(d, r));
    }
    out.extend(error_lines(r));
    if let Some(e) = &r.emulator_storage_error {
        out.push(format!(
            "emulator    storage error {e}: records it cannot journal are refused (InternalFailure) and objects it cannot write wait; free disk space in its data dir"
        ));
    }
    out.push(format!("managed     {}", if r.managed { "yes (firehose-kit:managed)" } else { "no" }));
    out.push(match &r.delivered {
        Some(d) => format!(
            "delivered   {}, {}{}",
            plural(d.objects as u64, "object"),
            format_bytes(d.bytes),
            d.newest.map(|t| format!(", newest {}", t.format("%Y-%m-%d %H:%M:%S UTC"))).unwrap_or_default()
        ),
        None => "delivered   (bucket not found)".into(),
    });
    out.push(match &r.last_run {
        Some(run) => format!(
            "last run    {} ({:?}): {}, {}, {} sent{}",
            run.run_id,
            run.status,
            plural(run.lines, "line"),
            plural(run.records, "record"),
            format_bytes(run.bytes),
            run.ended.map(|t| format!(", ended {}", t.format("%Y-%m-%d %H:%M:%S UTC"))).unwrap_or_default()
        ),
        None => format!("last run    none to this stream in {}", global.state_dir.display()),
    });
    out.join("\n")
}

fn destination_lines(d: &DestinationSpec, r: &StatusReport) -> Vec<String> {
    let mut out = vec![
        format!("bucket      s3://{}/{}", d.bucket(), d.prefix.as_deref().unwrap_or("")),
        format!("buffering   {} MiB or {} s, whichever first", d.buffer_size_mib, d.buffer_interval_s),
    ];
    let speed = r.emulator_speed;
    if speed != 1.0 {
        out.push(format!(
            "speed       the emulator runs {speed}× faster than AWS: the {} s interval flushes after {:.1} s",
            d.buffer_interval_s,
            d.buffer_interval_s as f64 / speed
        ));
    }
    if let Some(q) = &d.partition_query {
        out.push(format!("partitions  by {q} under {}", d.prefix.as_deref().unwrap_or("")));
    }
    let compression = if d.compression == crate::firehose::types::Compression::Uncompressed {
        "none"
    } else {
        d.compression.as_str()
    };
    out.push(format!("compression {compression}"));
    if let Some(c) = &d.conversion {
        out.push(format!("format      {c} (records that do not convert: format-conversion-failed)"));
    }
    if let Some(s) = &r.source {
        let lag = match s.millis_behind {
            Some(ms) => {
                format!(", Firehose {} behind", format_duration(std::time::Duration::from_millis(ms.max(0) as u64)))
            }
            None => ", lag: see the KinesisMillisBehindLatest metric".to_string(),
        };
        out.push(match &s.data_stream {
            Some(d) => format!(
                "data stream {} {} ({}, {} h retention){lag}",
                d.name,
                d.status,
                if d.on_demand { format!("on-demand, {} shards", d.shards) } else { format!("{} shards", d.shards) },
                d.retention_hours
            ),
            None => format!("data stream {} does not exist: Firehose has nothing to read", s.arn),
        });
    }
    if let Some(t) = &r.transform {
        out.push(if t.exists {
            format!(
                "transform   records transformed by {} ({} {})",
                t.function,
                t.runtime.as_deref().unwrap_or("image"),
                t.handler.as_deref().unwrap_or("")
            )
        } else {
            format!("transform   {} does not exist: every transformation fails (Lambda.ResourceNotFound)", t.function)
        });
    }
    if let Some(e) = &d.error_prefix {
        let held = match &r.delivered {
            Some(x) if x.error_objects > 0 => {
                format!(
                    ": {} of this stream (records it could not deliver or process)",
                    plural(x.error_objects as u64, "object")
                )
            }
            Some(_) => ": nothing of this stream".to_string(),
            None => String::new(),
        };
        out.push(format!("error out   s3://{}/{e}{held}", d.bucket()));
    }
    out.push(format!("role        {}", r.role.clone().unwrap_or_default()));
    out.push(match &d.error_logging {
        Some(l) => format!("error log   {l}"),
        None => "error log   off: delivery errors cannot be seen".into(),
    });
    out
}

fn error_lines(r: &StatusReport) -> Vec<String> {
    let mut out = Vec::new();
    match &r.errors_last_hour {
        Some(list) if list.is_empty() => out.push("errors      none in the last hour".into()),
        Some(list) => {
            for e in list {
                out.push(format!(
                    "errors      {} × {} in the last hour (last {}): {}",
                    e.code,
                    format_count(e.count),
                    e.last.format("%H:%M:%S UTC"),
                    e.hint.as_deref().unwrap_or(&e.message)
                ));
            }
        }
        None => {}
    }
    let horizon = format_duration(std::time::Duration::from_secs_f64(r.retry_horizon_s));
    let now = Utc::now();
    match (r.failing_since, r.dropped_before) {
        (Some(since), Some(before)) => out.push(format!(
            "dropped     delivery has failed since {} ({} ago), longer than Firehose retries ({horizon}): data that arrived before {} was dropped and will not arrive; newer data is still retried",
            since.format("%H:%M:%S UTC"),
            format_duration((now - since).to_std().unwrap_or_default()),
            before.format("%H:%M:%S UTC")
        )),
        (Some(since), None) => out.push(format!(
            "undelivered data waiting since {} ({} ago, when delivery began to fail); Firehose drops it {horizon} after it arrived",
            since.format("%H:%M:%S UTC"),
            format_duration((now - since).to_std().unwrap_or_default())
        )),
        _ => {}
    }
    out
}
