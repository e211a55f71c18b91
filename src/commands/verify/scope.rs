//! What verify compares against and where it looks: the expected lines, the stream as Describe reports it, the
//! window of delivery times that can hold the runs' objects, the keys to list and how long to wait.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::aws::Clients;
use crate::aws::firehose::{self as fh, DestinationSpec};
use crate::delivery::compare::Expected;
use crate::delivery::partitions::PartitionCheck;
use crate::error::{Error, Result};
use crate::firehose::prefix;
use crate::pipeline::manifest::{self, Destination, RunManifest};
use crate::settings::{Global, VerifySettings};
use crate::ui::Reporter;

use super::runs::{allow_other_runs, expected_from_files, expected_from_runs, latest_run, named_runs, with_ancestors};
use super::transformed::{self, Transform};

/// Objects delivered a little before the run started still count (clocks differ; a buffer may already hold
/// records of the run when its object is named).
const CLOCK_SLACK: chrono::Duration = chrono::Duration::minutes(5);

/// What verify compares against: the runs (or source files) it was asked about, the expected lines, the window
/// of delivery times that can hold them, and the stream as Describe reports it.
pub(super) struct Expectations {
    pub(super) runs: Vec<RunManifest>,
    pub(super) stream: String,
    pub(super) expected: Arc<Mutex<Expected>>,
    /// Objects delivered before this are not the runs' (see [`window_start`]).
    pub(super) window_start: Option<DateTime<Utc>>,
    /// The runs' own start (or `--since`): hour partitions from then on are listed; without it, everything.
    pub(super) list_from: Option<DateTime<Utc>>,
    pub(super) info: fh::StreamInfo,
    pub(super) dest: DestinationSpec,
    /// The transformation function, what it makes of the sent lines and the proof (a transformed stream).
    pub(super) transform: Option<Transform>,
    /// How far behind its Kinesis source the stream read when verify began (the emulator reports it).
    pub(super) source_lag_ms: Option<i64>,
}

/// Where the stream delivers and how to read what it delivered.
pub(super) struct Layout {
    pub(super) bucket: String,
    pub(super) extension: String,
    pub(super) expected_prefix: String,
    pub(super) hourly: bool,
    pub(super) zone: chrono_tz::Tz,
    /// The key prefixes to list.
    pub(super) prefixes: Vec<String>,
    /// The literal part of the error output prefix (failed deliveries and records land under it).
    pub(super) error_prefix: Option<String>,
    /// `<stream>-`: the start of this stream's file names.
    pub(super) name_prefix: String,
    /// A partitioned stream: every line is checked against the partition its own fields map to.
    pub(super) partition_check: Option<Arc<PartitionCheck>>,
    pub(super) speed: f64,
    /// The interval that applied: the hint, divided by an emulator's `--speed` (fractions kept).
    pub(super) effective_interval_s: f64,
}

/// The runs to verify, the expected lines, the stream and the delivery window.
pub(super) async fn expectations(
    global: &Global,
    s: &VerifySettings,
    clients: &Clients,
    reporter: &dyn Reporter,
) -> Result<Expectations> {
    let named = named_runs(global, s)?;
    if named.is_empty() && s.expect.is_empty() && manifest::latest_run(&global.state_dir, &global.stream).0.is_none() {
        return Err(Error::usage(format!(
            "no send run for stream `{}` in `{}`",
            global.stream,
            manifest::runs_dir(&global.state_dir).display()
        ))
        .with_hint(format!(
            "send something first (`{}`), or compare with the files another producer sent: verify --expect FILE",
            global.command("send --generate 10000"),
        )));
    }
    let stream = match named.first() {
        Some((first, _)) => {
            if named.iter().any(|(r, _)| r.stream != first.stream) {
                return Err(Error::usage("the manifests are for different streams: verify one stream at a time"));
            }
            first.stream.clone()
        }
        None => global.stream.clone(),
    };
    let info = fh::describe(&clients.firehose, &stream).await?.ok_or_else(|| {
        Error::aws(
            format!("verify delivery stream `{stream}`"),
            Some("ResourceNotFoundException"),
            format!("the stream does not exist in {}: its destination bucket is unknown", clients.backend()),
            Some("verify before `teardown`, or look at the bucket yourself with `aws s3 ls`".into()),
        )
    })?;
    let dest =
        info.destination.clone().ok_or_else(|| Error::failed(format!("stream `{stream}` has no S3 destination")))?;
    if dest.conversion.is_some() && !s.expect.is_empty() {
        return Err(Error::usage(format!(
            "stream `{stream}` converts records to Parquet: --expect compares lines, and its rows are the JSON send made of each line"
        ))
        .with_hint(format!("verify the runs send recorded (`{}`)", global.command("verify"))));
    }
    if s.match_path.is_some() && dest.transform.is_none() {
        return Err(Error::usage(format!(
            "--match names the field of a transformed stream's documents that carries the source line: stream `{stream}` does not transform records"
        ))
        .with_hint("leave --match out: each delivered line is compared with a sent line as it is"));
    }
    let here = Destination {
        stream_arn: info.arn.clone(),
        stream_created: info.created,
        endpoint: clients.endpoint_url.clone(),
    };
    let named =
        if named.is_empty() && s.expect.is_empty() { vec![latest_run(global, &here, reporter)?] } else { named };
    let runs = with_ancestors(named)?;
    let (expected, transform) = match dest.transform.as_deref() {
        Some(function) => {
            let (expected, x) = transformed::expect(global, s, clients, reporter, &runs, (&info.arn, function)).await?;
            (expected, Some(x))
        }
        None if s.expect.is_empty() => (expected_from_runs(&runs)?, None),
        None => (expected_from_files(&s.expect)?, None),
    };
    let runs: Vec<RunManifest> = runs.into_iter().map(|(m, _)| m).collect();
    let list_from = runs_start(s, &runs);
    let window_start = window_start(list_from, &runs, &info, &here, reporter);
    let mut expected = expected;
    if let (None, true, Some(start)) = (&transform, s.expect.is_empty(), window_start) {
        allow_other_runs(global, &stream, &here, &runs, start, &mut expected);
    }
    let expected = Arc::new(Mutex::new(expected));
    let source_lag_ms = info.source.as_ref().and(clients.emulator.source_lag_ms());
    Ok(Expectations { runs, stream, expected, window_start, list_from, info, dest, transform, source_lag_ms })
}

/// `--since`, or the first run's start less clock slack.
pub(super) fn runs_start(s: &VerifySettings, runs: &[RunManifest]) -> Option<DateTime<Utc>> {
    match (s.since, runs.iter().map(|r| r.started).min()) {
        (Some(since), _) => Some(since),
        (None, Some(started)) => Some(started - CLOCK_SLACK),
        (None, None) => None,
    }
}

/// The earliest delivery time an object of these runs can have: [`runs_start`], and never before the stream
/// instance was created when the runs went to it (objects from before are a previous instance's, e.g. a stream
/// re-created with other partitioning, and not this run's).
pub(super) fn window_start(
    start: Option<DateTime<Utc>>,
    runs: &[RunManifest],
    info: &fh::StreamInfo,
    here: &Destination,
    reporter: &dyn Reporter,
) -> Option<DateTime<Utc>> {
    let elsewhere = runs.iter().find(|r| r.destination.as_ref().is_some_and(|d| !d.same_stream(here)));
    if let Some(run) = elsewhere {
        reporter.warn(&format!(
            "run {} went to {}, not to this `{}` ({}): its objects may be gone with that stream",
            run.run_id,
            run.destination.as_ref().map(Destination::describe).unwrap_or_default(),
            info.name,
            here.describe()
        ));
        return start;
    }
    // LastModified may be whole seconds: a second of slack.
    let created = info.created.map(|c| c - chrono::Duration::seconds(1));
    match (start, created) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Where the stream delivers: bucket, prefixes to list, time zone, extension, error prefix, partitions.
pub(super) fn layout(e: &Expectations, clients: &Clients, reporter: &dyn Reporter) -> Result<Layout> {
    let dest = &e.dest;
    // Describe reports what AWS accepted; a zone this build does not know falls back to UTC (with a note).
    let zone = prefix::parse_time_zone(dest.time_zone.as_deref()).unwrap_or_else(|err| {
        reporter.note(&format!("{err}: reading key times as UTC"));
        chrono_tz::Tz::UTC
    });
    let partition_check = match &dest.partition_query {
        Some(query) => {
            let prefixes = prefix::validate(dest.prefix.as_deref(), dest.error_prefix.as_deref(), true)
                .map_err(|err| Error::failed(format!("the stream's prefix: {err}")))?;
            PartitionCheck::new(query, prefixes.data, zone, &e.stream)
                .map_err(|err| Error::failed(format!("the stream's partitioning query: {err}")))?
                .map(Arc::new)
        }
        None => None,
    };
    let speed = clients.emulator.speed();
    Ok(Layout {
        bucket: dest.bucket().to_string(),
        extension: dest.extension(),
        expected_prefix: prefix::static_part_of(dest.prefix.as_deref()).to_string(),
        hourly: hourly_layout(dest),
        zone,
        prefixes: list_prefixes(dest, zone, e.list_from),
        error_prefix: dest.error_prefix.as_ref().map(|p| p.split("!{").next().unwrap_or("").to_string()),
        name_prefix: format!("{}-", e.stream),
        partition_check,
        speed,
        effective_interval_s: dest.buffer_interval_s as f64 / speed,
    })
}

/// Whether the destination uses the default `<static prefix>yyyy/MM/dd/HH/` layout (no expressions).
pub(super) fn hourly_layout(dest: &DestinationSpec) -> bool {
    !dest.prefix.as_deref().unwrap_or("").contains("!{")
}

/// The keys to list: one prefix per hour partition in the window (default layout), or the static prefix.
pub(super) fn list_prefixes(dest: &DestinationSpec, zone: chrono_tz::Tz, since: Option<DateTime<Utc>>) -> Vec<String> {
    let static_part = prefix::static_part_of(dest.prefix.as_deref());
    match since {
        Some(start) if hourly_layout(dest) && (Utc::now() - start).num_hours() <= 48 => {
            use chrono::DurationRound;
            let now = Utc::now();
            let mut hour = start.duration_trunc(chrono::TimeDelta::hours(1)).unwrap_or(start);
            let mut out = Vec::new();
            while hour <= now {
                out.push(prefix::hour_prefix(static_part, hour, zone));
                hour += chrono::TimeDelta::hours(1);
            }
            out
        }
        _ => vec![static_part.to_string()],
    }
}

/// When polling stops: the deadline (run end + IntervalInSeconds + 60 s, `--wait`, or at once with
/// `--no-wait`), and when to stop once nothing is missing (duplicates possible: after the last buffer's
/// interval). An emulator running `speed` times faster than AWS cuts buffers that much sooner.
pub(super) fn deadlines(
    e: &Expectations,
    s: &VerifySettings,
    speed: f64,
    started: tokio::time::Instant,
) -> (tokio::time::Instant, tokio::time::Instant) {
    let runs = &e.runs;
    let hinted =
        runs.iter().filter_map(|r| r.buffer_interval_s).max().unwrap_or(e.dest.buffer_interval_s.max(0) as u32);
    // Every buffer on the path: the Lambda processor's before the destination's, and a Kinesis source's backlog
    // (how far behind its reader is, as the emulator reports it) before both.
    let processor = e.info.transform_interval_s.unwrap_or(0).max(0) as u32;
    let behind_s = e.source_lag_ms.unwrap_or(0).max(0) as f64 / 1000.0;
    let interval = ((hinted + processor) as f64 / speed.max(1.0) + behind_s).ceil() as u32;
    let until = |at: DateTime<Utc>| started + (at - Utc::now()).to_std().unwrap_or_default();
    let last = runs.iter().filter_map(|r| r.ended).max();
    let deadline = if s.no_wait {
        started
    } else if let Some(w) = s.wait {
        started + w
    } else {
        // Objects arrive up to IntervalInSeconds after the last record, plus delivery time.
        until(last.unwrap_or_else(Utc::now) + chrono::Duration::seconds(interval as i64 + 60))
    };
    // Even with every line found, a run's last buffer (and any duplicate in it) lands up to IntervalInSeconds
    // after the run. When duplicates are possible (entries were resent, or a run resumed another), wait for
    // that moment before concluding there are none.
    let duplicates_possible = runs.iter().any(|r| r.retries > 0 || !r.resumed_from.is_empty());
    let settle = match last {
        Some(last) if !s.no_wait && duplicates_possible => {
            until(last + chrono::Duration::seconds(interval as i64) + chrono::Duration::seconds(2))
        }
        _ => started,
    };
    (deadline, settle)
}
