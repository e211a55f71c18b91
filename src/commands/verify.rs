//! `firehose-kit verify`: list and download what the stream delivered, and prove every sent line arrived —
//! exactly which are missing, duplicated (Firehose is at-least-once) or extra — and show how delivery followed
//! the buffering hints. It waits for late objects (they arrive up to IntervalInSeconds after the last record).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;

use crate::aws::firehose::{self as fh, DestinationSpec};
use crate::aws::{Clients, s3, sdk_error};
use crate::delivery::compare::{Expected, Tally};
use crate::delivery::keep;
use crate::delivery::objects::{ObjectLines, read_lines};
use crate::delivery::partitions::{ErrorRecords, LineChecker, PartitionCheck, PartitionSummary, tally_error_records};
use crate::delivery::report::{Buffering, DeliveredObject, flushed_by, summarize};
use crate::delivery::transformed::{Prediction, account, predict};
use crate::error::{Error, ExitCode, Result};
use crate::firehose::keys::{layout_problems, parse_key};
use crate::firehose::prefix;
use crate::firehose::types::Compression;
use crate::pipeline::manifest::{self, Destination, RunManifest, line_hash, read_hashes};
use crate::settings::{Global, VerifySettings};
use crate::ui::{Printer, Reporter, Unit, format_bytes, format_count, plural};

/// Objects delivered a little before the run started still count (clocks differ; a buffer may already hold
/// records of the run when its object is named).
const CLOCK_SLACK: chrono::Duration = chrono::Duration::minutes(5);
/// Objects downloaded at once.
const DOWNLOADS: usize = 8;
/// Missing lines printed with --expect.
const SHOW_MISSING: usize = 20;

/// What verify compared against.
#[derive(Debug, Clone, Serialize)]
pub struct Basis {
    pub runs: Vec<String>,
    pub expect_files: Vec<PathBuf>,
    pub window_start: Option<DateTime<Utc>>,
}

/// The verify report (`-o json`).
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub stream: String,
    pub bucket: String,
    pub basis: Basis,
    #[serde(flatten)]
    pub tally: Tally,
    pub verified: bool,
    pub strict: bool,
    pub objects: Vec<DeliveredObject>,
    pub delivered_bytes: u64,
    pub buffering: Buffering,
    pub layout_ok: bool,
    pub error_objects: Vec<String>,
    pub missing_lines: Vec<String>,
    pub waited_s: f64,
    /// The destination bucket did not exist (at the last listing).
    pub bucket_missing: bool,
    /// The emulator's `--speed` (1 on AWS).
    pub speed: f64,
    /// A partitioned stream's partitions: objects, lines and how they were cut, per partition prefix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<PartitionSummary>,
    /// Lines found in a partition their own fields do not map to (a partitioned stream; any fails verify).
    pub misplaced_lines: u64,
    pub misplaced_example: Option<String>,
    /// Records in the error output, by error code (a partitioned stream).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_records: Vec<ErrorRecords>,
    /// The stream's delivery errors over the run's window and what the role lacks (see `aws::diagnosis`).
    pub causes: Option<crate::aws::diagnosis::Causes>,
    /// On a transformed stream: every sent line accounted for as transformed, dropped, processing-failed or
    /// missing.
    pub transform: Option<crate::delivery::transformed::TransformTally>,
    /// A converting stream: rows, lines that did not convert and why, and the Parquet schema.
    pub conversion: Option<crate::delivery::converted::ConversionReport>,
    /// The interval that applied (the hint, divided by an emulator's `--speed`).
    pub effective_interval_s: f64,
    /// What the runs' lines were billed as (from their manifests).
    pub cost: Option<crate::delivery::html::Cost>,
    /// The endpoint verify read from ("AWS us-east-2" or the custom endpoint).
    pub endpoint: String,
    /// The stream as DescribeDeliveryStream returned it.
    pub stream_description: fh::StreamInfo,
}

/// A run manifest and the directory its hash file is in.
type Run = (RunManifest, PathBuf);

/// The manifests named by `--manifest` and `--run` (each once, however often given).
fn named_runs(global: &Global, s: &VerifySettings) -> Result<Vec<Run>> {
    let mut runs: Vec<Run> = Vec::new();
    let mut add = |m: RunManifest, dir: PathBuf| {
        if !runs.iter().any(|(r, _)| r.run_id == m.run_id) {
            runs.push((m, dir));
        }
    };
    for path in &s.manifests {
        let m = RunManifest::load(path)?;
        add(m, path.parent().map(Path::to_path_buf).unwrap_or_default());
    }
    if let Some(id) = &s.run {
        let path = RunManifest::path(&global.state_dir, id);
        if !path.exists() {
            return Err(Error::usage(format!(
                "no run `{id}` in `{}`",
                manifest::runs_dir(&global.state_dir).display()
            ))
            .with_hint(format!(
                "list runs with `ls {}`, or use --manifest FILE",
                manifest::runs_dir(&global.state_dir).display()
            )));
        }
        add(RunManifest::load(&path)?, manifest::runs_dir(&global.state_dir));
    }
    Ok(runs)
}

/// The latest run of the stream to its current instance (`destination`); a run that went elsewhere (another
/// endpoint, region or account, or the stream before it was re-created) would prove nothing here.
fn latest_run(global: &Global, destination: &Destination, reporter: &dyn Reporter) -> Result<Run> {
    let (found, list) = manifest::latest_run_to(&global.state_dir, &global.stream, destination);
    if let Some(w) = list.warning() {
        reporter.warn(&w);
    }
    let dir = manifest::runs_dir(&global.state_dir);
    match found {
        Ok(run) => Ok((run, dir)),
        Err(elsewhere) => {
            let mut err = Error::usage(format!(
                "no send run to `{}` ({}) in `{}`",
                global.stream,
                destination.describe(),
                dir.display()
            ));
            if let Some(other) = elsewhere {
                let to = other
                    .destination
                    .as_ref()
                    .map(Destination::describe)
                    .unwrap_or_else(|| other.endpoint.clone().unwrap_or_else(|| format!("AWS {}", other.region)));
                err = Error::usage(format!(
                    "{err}: the latest run of `{}`, {}, went to {to}",
                    global.stream, other.run_id
                ));
            }
            Err(err.with_hint(format!(
                "send something to it first (`{}`), name a run with --run or --manifest, or compare with the files you sent with --expect",
                global.command("send --generate 10000"),
            )))
        }
    }
}

/// Adds the runs each run resumed (following `resumed_from` through the manifests beside it), each once.
fn with_ancestors(mut runs: Vec<Run>) -> Result<Vec<Run>> {
    let mut i = 0;
    while i < runs.len() {
        let (parents, dir) = (runs[i].0.resumed_from.clone(), runs[i].1.clone());
        for id in parents {
            let path = dir.join(format!("{id}.json"));
            if !runs.iter().any(|(r, _)| r.run_id == id) && path.exists() {
                runs.push((RunManifest::load(&path)?, dir.clone()));
            }
        }
        i += 1;
    }
    runs.sort_by(|a, b| a.0.started.cmp(&b.0.started).then_with(|| a.0.run_id.cmp(&b.0.run_id)));
    Ok(runs)
}

/// Groups runs into producers: runs linked by `resumed_from` (a send and the sends that resumed it) are one
/// producer's lines, whatever order or how often they were named; different producers' lines add up.
fn chains(runs: &[Run]) -> Vec<Vec<usize>> {
    let mut group: Vec<usize> = (0..runs.len()).collect();
    fn root(group: &mut [usize], mut i: usize) -> usize {
        while group[i] != i {
            group[i] = group[group[i]];
            i = group[i];
        }
        i
    }
    for (i, (run, _)) in runs.iter().enumerate() {
        for parent in &run.resumed_from {
            if let Some(j) = runs.iter().position(|(r, _)| &r.run_id == parent) {
                let (a, b) = (root(&mut group, i), root(&mut group, j));
                group[a] = b;
            }
        }
    }
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut roots: Vec<usize> = Vec::new();
    for i in 0..runs.len() {
        let r = root(&mut group, i);
        match roots.iter().position(|&x| x == r) {
            Some(k) => out[k].push(i),
            None => {
                roots.push(r);
                out.push(vec![i]);
            }
        }
    }
    out
}

/// The expected multiset from run manifests (hash files beside them): within a chain a line both runs
/// acknowledged counts once (per line the larger count), across chains counts add up.
fn expected_from_runs(runs: &[Run]) -> Result<Expected> {
    let mut all: Option<Expected> = None;
    for chain in chains(runs) {
        let mut group: Option<Expected> = None;
        for i in chain {
            let (m, dir) = &runs[i];
            let run = Expected::from_hashes(read_hashes(&dir.join(format!("{}.hashes", m.run_id)))?);
            group = Some(match group {
                None => run,
                Some(earlier) => Expected::resumed(earlier, run),
            });
        }
        if let Some(group) = group {
            all = Some(match all {
                None => group,
                Some(other) => Expected::sum(other, group),
            });
        }
    }
    Ok(all.unwrap_or_default())
}

/// The sent lines themselves (a transformed stream): from `--expect` files, or what send kept of each run.
fn sent_lines(global: &Global, s: &VerifySettings, runs: &[Run]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if !s.expect.is_empty() {
        for path in &s.expect {
            let raw = std::fs::read(path).map_err(|source| Error::Input { path: path.clone(), source })?;
            let text = decompressed(&raw).unwrap_or_default();
            out.extend(text.split(|b| *b == b'\n').map(<[u8]>::to_vec));
        }
        return Ok(out);
    }
    // Within a chain of resumed runs a line both acknowledged counts once (the larger count), as for the hashes.
    for chain in chains(runs) {
        let mut counts: std::collections::HashMap<Vec<u8>, (usize, usize)> = std::collections::HashMap::new();
        for i in chain {
            let mut this: std::collections::HashMap<Vec<u8>, usize> = std::collections::HashMap::new();
            for line in run_lines(global, &runs[i])? {
                *this.entry(line).or_default() += 1;
            }
            for (line, n) in this {
                let next = counts.len();
                let entry = counts.entry(line).or_insert((0, next));
                entry.0 = entry.0.max(n);
            }
        }
        let mut lines: Vec<(Vec<u8>, (usize, usize))> = counts.into_iter().collect();
        lines.sort_by_key(|(_, (_, first))| *first);
        for (line, (n, _)) in lines {
            out.extend(std::iter::repeat_n(line, n));
        }
    }
    Ok(out)
}

/// What send kept of one run's acknowledged lines.
fn run_lines(global: &Global, (m, dir): &Run) -> Result<Vec<Vec<u8>>> {
    let path = dir.join(format!("{}.lines.gz", m.run_id));
    if !path.exists() {
        return Err(Error::usage(format!(
            "run {} kept no lines (`{}`): verify cannot predict what the transformation delivers",
            m.run_id,
            path.display()
        ))
        .with_hint(format!(
            "send again (send keeps the lines when the stream transforms), or give the sent files: `{}`",
            global.command("verify --expect FILE")
        )));
    }
    manifest::read_lines_file(&path)
}

/// The expected multiset from source files.
fn expected_from_files(files: &[PathBuf]) -> Result<Expected> {
    let mut hashes = Vec::new();
    for path in files {
        let file = std::fs::File::open(path).map_err(|source| Error::Input { path: path.clone(), source })?;
        read_lines(file, &Compression::Uncompressed, None, &mut |h| hashes.extend_from_slice(h))
            .map_err(|source| Error::Input { path: path.clone(), source })?;
    }
    Ok(Expected::from_hashes(hashes))
}

/// Prints (up to `max`) expected lines that did not arrive, as `file:line: text`.
fn missing_lines(files: &[PathBuf], expected: &mut Expected, max: usize) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for path in files {
        let raw = std::fs::read(path).map_err(|source| Error::Input { path: path.clone(), source })?;
        let Some(text) = decompressed(&raw) else { continue };
        for (n, line) in text.split(|b| *b == b'\n').enumerate() {
            if out.len() >= max {
                return Ok(out);
            }
            if expected.take_missing(line_hash(line) as u64) {
                out.push(format!("{}:{}: {}", path.display(), n + 1, String::from_utf8_lossy(line)));
            }
        }
    }
    Ok(out)
}

/// The text of a source file (gunzipped when it is gzip), without its final newline.
fn decompressed(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    read_lines(raw, &Compression::Uncompressed, Some(&mut out), &mut |_| {}).ok()?;
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    Some(out)
}

/// Whether the destination uses the default `<static prefix>yyyy/MM/dd/HH/` layout (no expressions).
fn hourly_layout(dest: &DestinationSpec) -> bool {
    !dest.prefix.as_deref().unwrap_or("").contains("!{")
}

/// The keys to list: one prefix per hour partition in the window (default layout), or the static prefix.
fn list_prefixes(dest: &DestinationSpec, zone: chrono_tz::Tz, since: Option<DateTime<Utc>>) -> Vec<String> {
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

/// What one download found: its lines, how many were expected, and (a partitioned stream) how many are in the
/// wrong partition with an example.
type Downloaded = (ObjectLines, u64, Option<(u64, Option<String>)>);

/// Writes to two optional writers.
struct Tee<'a, 'b> {
    a: Option<&'a mut dyn std::io::Write>,
    b: Option<&'a mut LineChecker<'b>>,
}

impl std::io::Write for Tee<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(a) = self.a.as_mut() {
            a.write_all(buf)?;
        }
        if let Some(b) = self.b.as_mut() {
            b.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(a) = self.a.as_mut() {
            a.flush()?;
        }
        Ok(())
    }
}

/// Streams one object through the line hasher into `expected` (and into `keep_as` when given); returns what it
/// held and how many of its lines were expected ones.
async fn download(
    clients: &Clients,
    bucket: &str,
    key: &str,
    keep_as: Option<PathBuf>,
    expected: Arc<Mutex<Expected>>,
    partitions: Option<(Arc<PartitionCheck>, DateTime<Utc>)>,
    compression: Compression,
) -> Result<Downloaded> {
    let out = clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| sdk_error(format!("download `s3://{bucket}/{key}`"), e))?;
    let reader = tokio_util::io::SyncIoBridge::new(out.body.into_async_read());
    let key = key.to_string();
    tokio::task::spawn_blocking(move || -> Result<Downloaded> {
        let mut keep_file = match &keep_as {
            Some(path) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::state("create", parent, e))?;
                }
                Some(std::io::BufWriter::new(
                    std::fs::File::create(path).map_err(|e| Error::state("create", path.clone(), e))?,
                ))
            }
            None => None,
        };
        let mut matched = 0u64;
        let mut observe = |hashes: &[u64]| {
            let mut e = expected.lock().expect("expected lock");
            matched += hashes.iter().filter(|h| e.observe(**h)).count() as u64;
        };
        // The decompressed bytes go to the kept file and, on a partitioned stream, through the partition check.
        let mut checker = partitions.as_ref().map(|(check, at)| check.writer(&key, *at));
        let mut tee = Tee { a: keep_file.as_mut().map(|f| f as &mut dyn std::io::Write), b: checker.as_mut() };
        let sink = (tee.a.is_some() || tee.b.is_some()).then_some(&mut tee as &mut dyn std::io::Write);
        let info = read_lines(reader, &compression, sink, &mut observe)
            .map_err(|e| Error::failed(format!("cannot read object `{key}`: {e}")))?;
        if let (Some(file), Some(path)) = (keep_file.as_mut(), &keep_as) {
            std::io::Write::flush(file).map_err(|e| Error::state("write", path.clone(), e))?;
        }
        let misplaced = checker.map(|mut c| {
            c.finish();
            (c.misplaced, c.example)
        });
        Ok((info, matched, misplaced))
    })
    .await
    .map_err(|e| Error::failed(format!("download task failed: {e}")))?
}

/// What verify compares against: the runs (or source files) it was asked about, the expected lines, the window
/// of delivery times that can hold them, and the stream as Describe reports it.
struct Expectations {
    runs: Vec<RunManifest>,
    stream: String,
    expected: Arc<Mutex<Expected>>,
    /// Objects delivered before this are not the runs' (see [`window_start`]).
    window_start: Option<DateTime<Utc>>,
    /// The runs' own start (or `--since`): hour partitions from then on are listed; without it, everything.
    list_from: Option<DateTime<Utc>>,
    info: fh::StreamInfo,
    dest: DestinationSpec,
    /// The transformation function and what it makes of the sent lines (a transformed stream).
    transform: Option<(String, Prediction)>,
}

/// Where the stream delivers and how to read what it delivered.
struct Layout {
    bucket: String,
    extension: String,
    expected_prefix: String,
    hourly: bool,
    zone: chrono_tz::Tz,
    /// The key prefixes to list.
    prefixes: Vec<String>,
    /// The literal part of the error output prefix (failed deliveries and records land under it).
    error_prefix: Option<String>,
    /// `<stream>-`: the start of this stream's file names.
    name_prefix: String,
    /// A partitioned stream: every line is checked against the partition its own fields map to.
    partition_check: Option<Arc<PartitionCheck>>,
    speed: f64,
    /// The interval that applied: the hint, divided by an emulator's `--speed` (fractions kept).
    effective_interval_s: f64,
}

/// What the listing and downloads found.
#[derive(Default)]
struct Found {
    objects: Vec<DeliveredObject>,
    error_objects: Vec<String>,
    bucket_missing: bool,
    misplaced_lines: u64,
    misplaced_example: Option<String>,
    waited_s: f64,
    /// A converting stream: the error objects of `format-conversion-failed` read so far, and what they held.
    conversion_read: HashSet<String>,
    conversion_codes: std::collections::BTreeMap<String, (u64, String)>,
    conversion_failed: u64,
    conversion_example: Option<String>,
}

pub async fn verify(
    global: &Global,
    s: &VerifySettings,
    clients: &Clients,
    reporter: &dyn Reporter,
) -> Result<VerifyReport> {
    let e = expectations(global, s, clients, reporter).await?;
    let l = layout(&e, clients, reporter)?;
    if let Some(dir) = &s.keep {
        std::fs::create_dir_all(dir).map_err(|err| Error::state("create", dir.clone(), err))?;
    }
    let total = e.expected.lock().expect("expected lock").tally().expected;
    let task = reporter.task("verify", Some(total), Unit::Items);
    let found = poll(&e, &l, s, clients, task.as_ref()).await?;
    let report = conclude(e, l, found, s, clients).await?;
    task.finish(format!(
        "{} of {} found in {}",
        format_count(report.tally.matched),
        plural(report.tally.expected, "line"),
        plural(report.objects.len() as u64, "object")
    ));
    Ok(report)
}

/// The runs to verify, the expected lines, the stream and the delivery window.
async fn expectations(
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
    let here = Destination {
        stream_arn: info.arn.clone(),
        stream_created: info.created,
        endpoint: clients.endpoint_url.clone(),
    };
    let named =
        if named.is_empty() && s.expect.is_empty() { vec![latest_run(global, &here, reporter)?] } else { named };
    let runs = with_ancestors(named)?;
    let (expected, transform) = match dest.transform.clone() {
        Some(function) => {
            let lines = sent_lines(global, s, &runs)?;
            reporter.note(&format!(
                "the stream transforms records with {function}: running it over the {} sent to know what to expect",
                plural(lines.len() as u64, "line")
            ));
            let prediction = predict(&lines, &info.arn, &clients.region, |event| {
                crate::aws::lambda::invoke(&clients.lambda, &function, event)
            })
            .await?;
            (Expected::from_hashes(prediction.outputs.clone()), Some((function, prediction)))
        }
        None if s.expect.is_empty() => (expected_from_runs(&runs)?, None),
        None => (expected_from_files(&s.expect)?, None),
    };
    let runs: Vec<RunManifest> = runs.into_iter().map(|(m, _)| m).collect();
    let list_from = runs_start(s, &runs);
    let window_start = window_start(list_from, &runs, &info, &here, reporter);
    let expected = Arc::new(Mutex::new(expected));
    Ok(Expectations { runs, stream, expected, window_start, list_from, info, dest, transform })
}

/// `--since`, or the first run's start less clock slack.
fn runs_start(s: &VerifySettings, runs: &[RunManifest]) -> Option<DateTime<Utc>> {
    match (s.since, runs.iter().map(|r| r.started).min()) {
        (Some(since), _) => Some(since),
        (None, Some(started)) => Some(started - CLOCK_SLACK),
        (None, None) => None,
    }
}

/// The earliest delivery time an object of these runs can have: [`runs_start`], and never before the stream
/// instance was created when the runs went to it (objects from before are a previous instance's, e.g. a stream
/// re-created with other partitioning, and not this run's).
fn window_start(
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
fn layout(e: &Expectations, clients: &Clients, reporter: &dyn Reporter) -> Result<Layout> {
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

/// When polling stops: the deadline (run end + IntervalInSeconds + 60 s, `--wait`, or at once with
/// `--no-wait`), and when to stop once nothing is missing (duplicates possible: after the last buffer's
/// interval). An emulator running `speed` times faster than AWS cuts buffers that much sooner.
fn deadlines(
    e: &Expectations,
    s: &VerifySettings,
    speed: f64,
    started: tokio::time::Instant,
) -> (tokio::time::Instant, tokio::time::Instant) {
    let runs = &e.runs;
    let hinted =
        runs.iter().filter_map(|r| r.buffer_interval_s).max().unwrap_or(e.dest.buffer_interval_s.max(0) as u32);
    let interval = (hinted as f64 / speed.max(1.0)).ceil() as u32;
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

/// Lists what is new under the layout's prefixes in the window: this stream's objects, not the error output.
async fn list_new(
    e: &Expectations,
    l: &Layout,
    clients: &Clients,
    seen_keys: &mut HashSet<String>,
    found: &mut Found,
) -> Result<Vec<s3::ListedObject>> {
    let mut new = Vec::new();
    for p in &l.prefixes {
        let listed = match s3::list_objects(&clients.s3, &l.bucket, p).await {
            Ok(listed) => listed,
            Err(err) if err.aws_code() == Some("NoSuchBucket") => {
                found.bucket_missing = true;
                Vec::new()
            }
            Err(err) => return Err(err),
        };
        for o in listed {
            let in_window = match (e.window_start, o.last_modified) {
                (Some(start), Some(lm)) => lm >= start,
                _ => true,
            };
            let ours = o.key.rsplit('/').next().is_some_and(|n| n.starts_with(&l.name_prefix));
            // The error output can live under the data prefix (setup's `<prefix>errors/`): not data.
            let error_output = l.error_prefix.as_deref().is_some_and(|ep| !ep.is_empty() && o.key.starts_with(ep));
            if in_window && ours && !error_output && seen_keys.insert(o.key.clone()) {
                new.push(o);
            }
        }
    }
    Ok(new)
}

/// Downloads new objects (several at once), hashing their lines into the expectation; returns what each held.
async fn read_objects(
    e: &Expectations,
    l: &Layout,
    s: &VerifySettings,
    clients: &Clients,
    new: Vec<s3::ListedObject>,
    found: &mut Found,
    task: &dyn crate::ui::Task,
) -> Result<()> {
    let mut downloads = futures::stream::iter(new.into_iter().map(|o| {
        // A Parquet object is kept as the JSON lines its rows were made from: named so.
        let keep_as = s.keep.as_deref().map(|dir| keep::local_path(dir, &o.key)).map(|p| match p.file_name() {
            Some(name) if o.key.ends_with(".parquet") => {
                let mut name = name.to_os_string();
                name.push(".jsonl");
                p.with_file_name(name)
            }
            _ => p,
        });
        let check = l.partition_check.clone().and_then(|c| Some((c, parse_key(&o.key, &e.stream, l.zone).ok()?.time)));
        let (bucket, expected) = (l.bucket.clone(), e.expected.clone());
        async move {
            let compression = e.dest.compression.clone();
            let lines = download(clients, &bucket, &o.key, keep_as.clone(), expected, check, compression).await;
            (o, lines, keep_as)
        }
    }))
    .buffer_unordered(DOWNLOADS);
    while let Some((o, lines, kept_as)) = downloads.next().await {
        let (lines, matched, misplaced) = lines?;
        if let Some((n, example)) = misplaced {
            found.misplaced_lines += n;
            if found.misplaced_example.is_none() {
                found.misplaced_example = example.map(|ex| format!("{}: {ex}", o.key));
            }
        }
        found.objects.push(delivered_object(e, l, o, lines, matched, kept_as));
        let t = e.expected.lock().expect("expected lock").tally();
        task.set_position(t.matched);
        task.set_message(format!(
            "{} read, {} still missing",
            plural(found.objects.len() as u64, "object"),
            plural(t.missing, "line")
        ));
    }
    Ok(())
}

/// One downloaded object as the report shows it: its key's time and layout, its buffering delay and why it was
/// cut.
fn delivered_object(
    e: &Expectations,
    l: &Layout,
    o: s3::ListedObject,
    lines: ObjectLines,
    matched: u64,
    kept_as: Option<PathBuf>,
) -> DeliveredObject {
    let (key_time, problems) = match parse_key(&o.key, &e.stream, l.zone) {
        Ok(info) => (Some(info.time), layout_problems(&info, &l.expected_prefix, &l.extension, l.hourly)),
        Err(why) => (None, vec![why]),
    };
    let delay_s = match (o.last_modified, key_time) {
        (Some(lm), Some(kt)) => Some((lm - kt).num_milliseconds() as f64 / 1000.0),
        _ => None,
    };
    DeliveredObject {
        key: o.key,
        size: o.size,
        bytes: lines.bytes,
        lines: lines.lines,
        last_modified: o.last_modified,
        key_time,
        delay_s,
        flushed_by: flushed_by(lines.bytes, e.dest.buffer_size_mib, delay_s, l.effective_interval_s),
        matched_lines: matched,
        layout_problems: problems,
        kept_as,
        schema: lines.schema,
    }
}

/// Lists, downloads and compares until nothing is missing (and no late duplicate can still come) or the
/// deadline passes.
async fn poll(
    e: &Expectations,
    l: &Layout,
    s: &VerifySettings,
    clients: &Clients,
    task: &dyn crate::ui::Task,
) -> Result<Found> {
    let started = tokio::time::Instant::now();
    let (deadline, settle) = deadlines(e, s, clients.emulator.speed(), started);
    let mut seen_keys: HashSet<String> = HashSet::new();
    let mut found = Found::default();
    loop {
        let new = list_new(e, l, clients, &mut seen_keys, &mut found).await?;
        read_objects(e, l, s, clients, new, &mut found, task).await?;
        if let Some(ep) = l.error_prefix.as_deref().filter(|ep| !ep.is_empty()) {
            found.error_objects = s3::list_objects(&clients.s3, &l.bucket, ep)
                .await?
                .into_iter()
                .filter(|o| e.window_start.is_none_or(|start| o.last_modified.is_none_or(|lm| lm >= start)))
                .map(|o| o.key)
                .collect();
        }
        if e.dest.conversion.is_some() {
            read_conversion_failures(e, l, clients, &mut found).await?;
        }
        let t = e.expected.lock().expect("expected lock").tally();
        let now = tokio::time::Instant::now();
        if (t.missing == 0 && now >= settle) || now >= deadline {
            break;
        }
        let left = if t.missing == 0 { settle.min(deadline) - now } else { deadline - now };
        let objects = plural(found.objects.len() as u64, "object");
        task.set_message(if t.missing == 0 {
            format!("{objects} read, every line found; watching {}s more for late duplicates", left.as_secs())
        } else {
            format!(
                "{objects} read, {} still missing; waiting up to {}s for late objects",
                plural(t.missing, "line"),
                left.as_secs()
            )
        });
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
    }
    found.waited_s = started.elapsed().as_secs_f64();
    Ok(found)
}

/// Reads the `format-conversion-failed` objects not read yet: each sent line found there is accounted for as one
/// that did not convert (taken out of the missing ones, counted apart from the rows).
async fn read_conversion_failures(e: &Expectations, l: &Layout, clients: &Clients, found: &mut Found) -> Result<()> {
    // Every error object is read (a custom error prefix need not name the error-output-type); only documents of
    // this stream's table count.
    let Some(c) = e.dest.conversion.as_ref() else { return Ok(()) };
    let new: Vec<String> =
        found.error_objects.iter().filter(|k| !found.conversion_read.contains(*k)).cloned().collect();
    for key in new {
        let body = s3::get_object_bytes(&clients.s3, &l.bucket, &key).await?;
        let body = decompressed(&body).unwrap_or(body);
        let mut expected = e.expected.lock().expect("expected lock");
        let (failed, example) = (&mut found.conversion_failed, &mut found.conversion_example);
        let table = (c.database.as_str(), c.table.as_str());
        crate::delivery::converted::failed_records(
            &body,
            table,
            &mut found.conversion_codes,
            &mut |line, code, why| {
                if expected.take_missing(line_hash(line) as u64) {
                    *failed += 1;
                    if example.is_none() {
                        *example = Some(format!("{} ({code}: {why})", String::from_utf8_lossy(line)));
                    }
                }
            },
        );
        found.conversion_read.insert(key);
    }
    Ok(())
}

/// A converting stream's report: rows, the lines that did not convert and why, and the objects' schema.
fn conversion_report(
    dest: &DestinationSpec,
    found: &mut Found,
) -> Option<crate::delivery::converted::ConversionReport> {
    use crate::delivery::converted::{ConversionReport, failures, schema_problems};
    let c = dest.conversion.as_ref()?;
    let schema = found.objects.iter().find_map(|o| o.schema.clone()).unwrap_or_default();
    Some(ConversionReport {
        database: c.database.clone(),
        table: c.table.clone(),
        rows: found.objects.iter().map(|o| o.lines).sum(),
        failed_lines: found.conversion_failed,
        failures: failures(std::mem::take(&mut found.conversion_codes)),
        failed_example: found.conversion_example.take(),
        schema_problems: if schema.is_empty() { Vec::new() } else { schema_problems(&schema) },
        schema,
    })
}

/// Per-partition summaries of a partitioned stream's objects.
fn partition_summaries(objects: &[DeliveredObject], name_prefix: &str) -> Vec<PartitionSummary> {
    let mut by_prefix: std::collections::BTreeMap<String, PartitionSummary> = Default::default();
    for o in objects {
        let dir = o.key.rfind(name_prefix).map_or("", |i| &o.key[..i]).to_string();
        let p = by_prefix.entry(dir.clone()).or_insert(PartitionSummary {
            prefix: dir,
            objects: 0,
            lines: 0,
            bytes: 0,
            by_size: 0,
            by_interval: 0,
        });
        p.objects += 1;
        p.lines += o.lines;
        p.bytes += o.bytes;
        match o.flushed_by {
            crate::delivery::report::FlushedBy::Interval => p.by_interval += 1,
            _ => p.by_size += 1,
        }
    }
    by_prefix.into_values().collect()
}

/// What the error output holds, and why (at most 100 objects read).
async fn error_records(clients: &Clients, bucket: &str, keys: &[String]) -> Vec<ErrorRecords> {
    let mut codes = std::collections::BTreeMap::new();
    for key in keys.iter().take(100) {
        if let Ok(out) = clients.s3.get_object().bucket(bucket).key(key).send().await
            && let Ok(body) = out.body.collect().await
        {
            let bytes = body.into_bytes();
            let text = decompressed(&bytes).unwrap_or_else(|| bytes.to_vec());
            tally_error_records(&text, &mut codes);
        }
    }
    codes.into_iter().map(|(code, (count, example))| ErrorRecords { code, count, example }).collect()
}

/// The verdict and the report.
async fn conclude(
    e: Expectations,
    l: Layout,
    mut found: Found,
    s: &VerifySettings,
    clients: &Clients,
) -> Result<VerifyReport> {
    let transform = account_transformed(&e, &l, &found, clients).await?;
    let mut tally = e.expected.lock().expect("expected lock").tally();
    // Lines in the conversion error output were taken out of the missing ones: they are not rows either.
    tally.matched -= found.conversion_failed.min(tally.matched);
    let conversion = conversion_report(&e.dest, &mut found);
    // (On a transformed stream the comparison is over the function's output, not the files' lines.)
    let missing_lines = if !s.expect.is_empty() && tally.missing > 0 && transform.is_none() {
        missing_lines(&s.expect, &mut e.expected.lock().expect("expected lock"), SHOW_MISSING)?
    } else {
        Vec::new()
    };
    found.objects.sort_by(|a, b| a.key_time.cmp(&b.key_time).then_with(|| a.key.cmp(&b.key)));
    let buffering = summarize(&found.objects, e.dest.buffer_size_mib, e.dest.buffer_interval_s, l.speed);
    let (partitions, error_records) = if l.partition_check.is_some() {
        (
            partition_summaries(&found.objects, &l.name_prefix),
            error_records(clients, &l.bucket, &found.error_objects).await,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let verified = tally.missing == 0
        && found.conversion_failed == 0
        && (!s.strict || tally.duplicated == 0)
        && found.misplaced_lines == 0
        && transform.as_ref().is_none_or(|t| t.complete());
    let causes = causes(&e, tally.missing > 0, clients).await;
    let runs = &e.runs;
    Ok(VerifyReport {
        stream: e.stream,
        bucket: l.bucket,
        basis: Basis {
            runs: runs.iter().map(|r| r.run_id.clone()).collect(),
            expect_files: s.expect.clone(),
            window_start: e.window_start,
        },
        tally,
        verified,
        strict: s.strict,
        delivered_bytes: found.objects.iter().map(|o| o.size).sum(),
        layout_ok: found.objects.iter().all(|o| o.layout_problems.is_empty()),
        objects: found.objects,
        buffering,
        error_objects: found.error_objects,
        missing_lines,
        waited_s: found.waited_s,
        bucket_missing: found.bucket_missing,
        speed: l.speed,
        partitions,
        misplaced_lines: found.misplaced_lines,
        misplaced_example: found.misplaced_example,
        error_records,
        causes,
        effective_interval_s: l.effective_interval_s,
        cost: (!runs.is_empty()).then(|| crate::delivery::html::Cost {
            raw_bytes: runs.iter().map(|r| r.bytes).sum(),
            billable_bytes: runs.iter().map(|r| r.billable_bytes).sum(),
            billable_one_line_per_record: runs.iter().map(|r| r.billable_bytes_one_line_per_record).sum(),
            records: runs.iter().map(|r| r.records).sum(),
            lines: runs.iter().map(|r| r.lines).sum(),
        }),
        endpoint: clients.backend(),
        stream_description: e.info,
        transform,
        conversion,
    })
}

/// On a transformed stream, every sent line accounted for (see [`account`]).
async fn account_transformed(
    e: &Expectations,
    l: &Layout,
    found: &Found,
    clients: &Clients,
) -> Result<Option<crate::delivery::transformed::TransformTally>> {
    let Some((function, prediction)) = &e.transform else { return Ok(None) };
    let raw = processing_failed_data(clients, &l.bucket, &found.error_objects).await?;
    let expected = e.expected.lock().expect("expected lock");
    Ok(Some(account(function, prediction, &expected, &raw)))
}

/// Why lines are missing (or delivery was slow): the stream's logged errors since the runs started.
async fn causes(e: &Expectations, missing: bool, clients: &Clients) -> Option<crate::aws::diagnosis::Causes> {
    // Errors logged before the runs started concern other data: the window starts with the first run (or
    // --since, or the last day).
    let since = e
        .runs
        .iter()
        .map(|r| r.started)
        .min()
        .or(e.window_start)
        .unwrap_or_else(|| Utc::now() - chrono::Duration::hours(24));
    let missing =
        crate::aws::diagnosis::Missing { lines: missing, sent_before: e.runs.iter().filter_map(|r| r.ended).min() };
    match crate::aws::diagnosis::causes(clients, &e.dest, since, Utc::now(), missing).await {
        Ok(c) => Some(c),
        Err(err) => {
            tracing::warn!("cannot read the causes of delivery errors: {err}");
            None
        }
    }
}

/// The original data of every record in the processing-failed error output (`rawData` of each document).
async fn processing_failed_data(clients: &Clients, bucket: &str, keys: &[String]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for key in keys.iter().filter(|k| k.contains("processing-failed")) {
        let body = s3::get_object_bytes(&clients.s3, bucket, key).await?;
        let text = decompressed(&body).unwrap_or(body);
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let doc: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
            if let Some(raw) = doc["rawData"].as_str().and_then(|r| base64_simd::STANDARD.decode_to_vec(r).ok()) {
                out.push(raw);
            }
        }
    }
    Ok(out)
}

/// The verdict, in one line: what `-q` prints.
pub fn verdict(r: &VerifyReport) -> String {
    let t = &r.tally;
    if let Some(x) = &r.transform {
        return transform_verdict(r, x);
    }
    if let Some(c) = &r.conversion {
        return conversion_verdict(r, c);
    }
    if r.verified {
        let all =
            if t.expected == 1 { "the 1 line".to_string() } else { format!("all {}", plural(t.expected, "line")) };
        format!("OK: {all} arrived in s3://{}", r.bucket)
    } else if t.missing == 0 && r.misplaced_lines > 0 {
        format!(
            "FAILED: every line arrived, but {} in the wrong partition",
            plural(r.misplaced_lines, "line is|lines are")
        )
    } else if t.missing == 0 {
        format!("FAILED: every line arrived, but {} duplicated (--strict)", plural(t.duplicated, "line"))
    } else {
        format!(
            "FAILED: {} of {} missing{}",
            format_count(t.missing),
            plural(t.expected, "line"),
            if r.strict && t.duplicated > 0 {
                format!(", {} duplicated (--strict)", format_count(t.duplicated))
            } else {
                String::new()
            }
        )
    }
}

/// The verdict on a converting stream: each sent line a Parquet row with equal typed fields, or in the error
/// output because it did not convert, or missing.
fn conversion_verdict(r: &VerifyReport, c: &crate::delivery::converted::ConversionReport) -> String {
    let t = &r.tally;
    let failed = match c.failures.first() {
        Some(f) if c.failed_lines > 0 => format!(
            "{} did not convert (in the error output, format-conversion-failed: {})",
            plural(c.failed_lines, "line"),
            f.code
        ),
        _ => String::new(),
    };
    if r.verified {
        let all = if t.expected == 1 { "the 1 line".into() } else { format!("all {}", plural(t.expected, "line")) };
        format!("OK: {all} arrived as Parquet rows with equal typed fields in s3://{}", r.bucket)
    } else if t.missing == 0 && c.failed_lines > 0 {
        format!("FAILED: {} of {} arrived as rows; {failed}", format_count(t.matched), plural(t.expected, "line"))
    } else if t.missing == 0 && r.misplaced_lines > 0 {
        format!(
            "FAILED: every line arrived as a row, but {} in the wrong partition",
            plural(r.misplaced_lines, "line is|lines are")
        )
    } else if t.missing == 0 {
        format!("FAILED: every line arrived as a row, but {} duplicated (--strict)", plural(t.duplicated, "line"))
    } else {
        format!(
            "FAILED: {} of {} missing (neither a row nor in the error output){}",
            format_count(t.missing),
            plural(t.expected, "line"),
            if failed.is_empty() { String::new() } else { format!("; {failed}") }
        )
    }
}

/// What the summary says of a converting stream: rows, the schema, and a line that did not convert.
fn conversion_lines(c: &crate::delivery::converted::ConversionReport) -> Vec<String> {
    let mut out = vec![format!(
        "  parquet: {} in the objects, typed by Glue table {}.{}",
        plural(c.rows, "row"),
        c.database,
        c.table
    )];
    if !c.schema.is_empty() {
        let columns: Vec<String> = c.schema.iter().map(|(n, t)| format!("{n} {t}")).collect();
        out.push(format!("    schema: {}", columns.join(", ")));
    }
    for p in &c.schema_problems {
        out.push(format!("    not the Apache table setup makes: {p}"));
    }
    for f in &c.failures {
        out.push(format!("    error output: {} {} ({})", plural(f.count, "record"), f.code, f.example));
    }
    if let Some(example) = &c.failed_example {
        out.push(format!("    e.g. {example}"));
    }
    out
}

/// The verdict on a transformed stream: about the sent lines, each accounted for once.
fn transform_verdict(r: &VerifyReport, x: &crate::delivery::transformed::TransformTally) -> String {
    let accounted = format!(
        "{} transformed and delivered · {} dropped by the function · {} processing-failed{}",
        format_count(x.transformed),
        format_count(x.dropped),
        format_count(x.processing_failed),
        if x.failed_invocations > 0 {
            format!(" · {} in the error output after failed invocations", format_count(x.failed_invocations))
        } else {
            String::new()
        }
    );
    if r.verified {
        format!("OK: all {} accounted for: {accounted}", plural(x.lines, "sent line"))
    } else if x.missing == 0 && x.failed_invocations > 0 {
        format!(
            "FAILED: {} of {} in the processing-failed output because invocations failed (never transformed; the error log says why) ({accounted})",
            format_count(x.failed_invocations),
            plural(x.lines, "sent line")
        )
    } else if x.missing == 0 && r.misplaced_lines > 0 {
        format!("FAILED: {} in the wrong partition ({accounted})", plural(r.misplaced_lines, "line is|lines are"))
    } else if x.missing == 0 && r.tally.missing == 0 {
        format!("FAILED: every line accounted for, but {} duplicated (--strict)", plural(r.tally.duplicated, "line"))
    } else {
        format!(
            "FAILED: {} of {} in none of the outcomes ({accounted})",
            format_count(x.missing),
            plural(x.lines, "sent line")
        )
    }
}

/// The human report.
pub fn summary(r: &VerifyReport) -> String {
    let t = &r.tally;
    let basis = if r.basis.runs.is_empty() {
        format!(
            "the lines of {}",
            r.basis.expect_files.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", ")
        )
    } else {
        format!("run {}", r.basis.runs.join(" + "))
    };
    let mut out = vec![format!("verify `{}` against {basis}", r.stream)];
    if r.speed != 1.0 {
        out.push(format!(
            "  (the emulator runs {}× faster than AWS: buffering intervals are {}× shorter than configured)",
            r.speed, r.speed
        ));
    }
    out.push(format!("  {}", verdict(r)));
    if let Some(x) = &r.transform {
        out.push(format!(
            "  transformed by {}: the delivered lines are compared with its output for the sent lines",
            x.function
        ));
    }
    out.push(format!(
        "  matched {} · missing {} · duplicated {} (at-least-once delivery) · extra {} (other runs or producers)",
        format_count(t.matched),
        format_count(t.missing),
        format_count(t.duplicated),
        format_count(t.extra)
    ));
    out.extend(delivery_lines(r));
    out.extend(r.conversion.iter().flat_map(conversion_lines));
    out.extend(partition_lines(r));
    if r.bucket_missing {
        out.push(format!("  the bucket s3://{} does not exist: nothing can be delivered to it", r.bucket));
    }
    if let Some(c) = &r.causes {
        // Said when lines are missing, or when delivery succeeded only after errors.
        if t.missing > 0 || !c.errors.is_empty() {
            out.extend(c.lines());
        }
    }
    out.join("\n")
}

/// The objects, how the hints cut them, their layout, the error output and the missing lines.
fn delivery_lines(r: &VerifyReport) -> Vec<String> {
    let mut out = vec![format!("  delivery: {} in {}", format_bytes(r.delivered_bytes), r.buffering.sentence())];
    for o in r.objects.iter().take(3) {
        out.push(format!(
            "    {}  {} · {}{}",
            o.key,
            format_bytes(o.size),
            plural(o.lines, if o.schema.is_some() { "row" } else { "line" }),
            o.delay_s.map(|d| format!(" · buffered {d:.1} s")).unwrap_or_default()
        ));
    }
    if r.objects.len() > 3 {
        out.push(format!("    … and {} more (-o json lists them all)", r.objects.len() - 3));
    }
    if r.layout_ok {
        out.push(if r.partitions.is_empty() {
            "  layout: every key follows <prefix>YYYY/MM/DD/HH/<stream>-<version>-<time>-<uuid>".into()
        } else {
            "  layout: every key follows <evaluated prefix><stream>-<version>-<time>-<uuid>".into()
        });
    } else {
        let bad: Vec<&DeliveredObject> = r.objects.iter().filter(|o| !o.layout_problems.is_empty()).collect();
        out.push(format!(
            "  layout: {} deviate from Firehose's layout, e.g. {}: {}",
            plural(bad.len() as u64, "key"),
            bad[0].key,
            bad[0].layout_problems.join("; ")
        ));
    }
    if !r.error_objects.is_empty() {
        out.push(format!(
            "  delivery failures: {} under the error prefix, e.g. {}",
            plural(r.error_objects.len() as u64, "object"),
            r.error_objects[0]
        ));
    }
    if !r.missing_lines.is_empty() {
        out.push("  missing lines:".into());
        out.extend(r.missing_lines.iter().map(|l| format!("    {l}")));
    }
    out
}

/// A partitioned stream's partitions, misplaced lines and error output.
fn partition_lines(r: &VerifyReport) -> Vec<String> {
    let mut out = Vec::new();
    if !r.partitions.is_empty() {
        out.push(format!("  partitions: {} (each line checked against its own fields)", r.partitions.len()));
        for p in r.partitions.iter().take(8) {
            out.push(format!(
                "    {}  {} · {} · {} ({} by size, {} by interval)",
                if p.prefix.is_empty() { "(no prefix)" } else { &p.prefix },
                plural(p.objects, "object"),
                plural(p.lines, "line"),
                format_bytes(p.bytes),
                p.by_size,
                p.by_interval
            ));
        }
        if r.partitions.len() > 8 {
            out.push(format!("    … and {} more (-o json lists them all)", r.partitions.len() - 8));
        }
    }
    if r.misplaced_lines > 0 {
        out.push(format!(
            "  FAILED: {} in a partition their own fields do not map to, e.g. {}",
            plural(r.misplaced_lines, "line is|lines are"),
            r.misplaced_example.as_deref().unwrap_or("")
        ));
    }
    for e in &r.error_records {
        out.push(format!("  error output: {} {} ({})", plural(e.count, "record"), e.code, e.example));
    }
    out
}

/// Writes the report's HTML page to `path` (atomically: a reader never sees half a page).
pub fn write_html(report: &VerifyReport, path: &Path) -> Result<()> {
    let causes = report
        .causes
        .as_ref()
        .filter(|c| report.tally.missing > 0 || !c.errors.is_empty())
        .map(|c| c.lines().into_iter().map(|l| l.trim().to_string()).collect())
        .unwrap_or_default();
    let configuration = serde_json::to_string_pretty(&report.stream_description).unwrap_or_default();
    let page = crate::delivery::html::Page {
        stream: &report.stream,
        bucket: &report.bucket,
        endpoint: &report.endpoint,
        runs: &report.basis.runs,
        tally: &report.tally,
        verified: report.verified,
        objects: &report.objects,
        buffering: &report.buffering,
        effective_interval_s: report.effective_interval_s,
        speed: report.speed,
        partitions: &report.partitions,
        misplaced_lines: report.misplaced_lines,
        error_objects: &report.error_objects,
        error_records: &report.error_records,
        causes,
        cost: report.cost,
        configuration,
        generated: Utc::now(),
        transform: report.transform.as_ref(),
        conversion: report.conversion.as_ref(),
    };
    let html =
        crate::delivery::html::render(&page).map_err(|e| Error::failed(format!("cannot draw the report: {e}")))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::state("create", parent, e))?;
    }
    crate::util::persist::write_atomic(path, html.as_bytes()).map_err(|e| Error::state("write", path, e))
}

pub async fn run(global: &Global, s: &VerifySettings, clients: &Clients, printer: &Printer) -> Result<ExitCode> {
    let reporter: Arc<dyn Reporter> = printer.reporter();
    let report = verify(global, s, clients, reporter.as_ref()).await?;
    if let Some(path) = &s.report {
        write_html(&report, path)?;
        printer.status(&format!("report: {}", path.display()));
    }
    if printer.json() {
        printer.result_json(&json!(report));
    } else if printer.quiet() {
        printer.result(&verdict(&report));
    } else {
        printer.result(&summary(&report));
    }
    Ok(if report.verified { ExitCode::Success } else { ExitCode::Failed })
}
