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
use crate::error::{Error, ExitCode, Result};
use crate::firehose::keys::{layout_problems, parse_key};
use crate::firehose::prefix;
use crate::pipeline::manifest::{self, RunManifest, line_hash, read_hashes};
use crate::settings::{Global, VerifySettings};
use crate::ui::{Printer, Reporter, Unit, format_bytes, format_count};

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
    /// The interval that applied (the hint, divided by an emulator's `--speed`).
    pub effective_interval_s: f64,
    /// What the runs' lines were billed as (from their manifests).
    pub cost: Option<crate::delivery::html::Cost>,
    /// The endpoint verify read from ("AWS us-east-2" or the custom endpoint).
    pub endpoint: String,
    /// The stream as DescribeDeliveryStream returned it.
    pub stream_description: fh::StreamInfo,
}

/// Runs to verify, newest chain member last, grouped by producer (each group is one resume chain).
fn load_chains(
    global: &Global,
    s: &VerifySettings,
    reporter: &dyn Reporter,
) -> Result<Vec<Vec<(RunManifest, PathBuf)>>> {
    let mut heads: Vec<(RunManifest, PathBuf)> = Vec::new();
    for path in &s.manifests {
        let m = RunManifest::load(path)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        heads.push((m, dir));
    }
    if let Some(id) = &s.run {
        let path = RunManifest::path(&global.state_dir, id);
        if !path.exists() {
            return Err(Error::usage(format!(
                "no run `{id}` in `{}`",
                manifest::runs_dir(&global.state_dir).display()
            ))
            .with_hint("list runs with `ls .firehose-kit/runs`, or use --manifest FILE"));
        }
        heads.push((RunManifest::load(&path)?, manifest::runs_dir(&global.state_dir)));
    }
    if heads.is_empty() && s.expect.is_empty() {
        let (latest, list) = manifest::latest_run(&global.state_dir, &global.stream);
        if let Some(w) = list.warning() {
            reporter.warn(&w);
        }
        let latest = latest.ok_or_else(|| {
            Error::usage(format!(
                "no send run for stream `{}` in `{}`",
                global.stream,
                manifest::runs_dir(&global.state_dir).display()
            ))
            .with_hint("send something first (`firehose-kit send FILE`), or compare with the source files: `firehose-kit verify --expect FILE`")
        })?;
        heads.push((latest, manifest::runs_dir(&global.state_dir)));
    }
    let mut chains = Vec::new();
    for (head, dir) in heads {
        // Follow `resumed_from` back to the first run of the chain.
        let mut chain = vec![(head, dir.clone())];
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(prev) = chain.last().map(|(m, _)| m.resumed_from.clone()) {
            let mut added = false;
            for id in prev {
                if seen.insert(id.clone()) {
                    let path = dir.join(format!("{id}.json"));
                    if path.exists() {
                        chain.push((RunManifest::load(&path)?, dir.clone()));
                        added = true;
                    }
                }
            }
            if !added {
                break;
            }
        }
        chain.reverse();
        chains.push(chain);
    }
    Ok(chains)
}

/// The expected multiset from run manifests (hash files beside them): 16 bytes per distinct line.
fn expected_from_runs(chains: &[Vec<(RunManifest, PathBuf)>]) -> Result<Expected> {
    let mut all: Option<Expected> = None;
    for chain in chains {
        let mut group: Option<Expected> = None;
        for (m, dir) in chain {
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

/// The expected multiset from source files.
fn expected_from_files(files: &[PathBuf]) -> Result<Expected> {
    let mut hashes = Vec::new();
    for path in files {
        let file = std::fs::File::open(path).map_err(|source| Error::Input { path: path.clone(), source })?;
        read_lines(file, None, &mut |h| hashes.extend_from_slice(h))
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
    read_lines(raw, Some(&mut out), &mut |_| {}).ok()?;
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
        let info = read_lines(reader, sink, &mut observe)
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

pub async fn verify(
    global: &Global,
    s: &VerifySettings,
    clients: &Clients,
    reporter: &dyn Reporter,
) -> Result<VerifyReport> {
    let chains = if s.manifests.is_empty() && s.run.is_none() && !s.expect.is_empty() {
        Vec::new()
    } else {
        load_chains(global, s, reporter)?
    };
    let runs: Vec<&RunManifest> = chains.iter().flatten().map(|(m, _)| m).collect();
    let stream = match runs.first() {
        Some(first) => {
            if runs.iter().any(|r| r.stream != first.stream) {
                return Err(Error::usage("the manifests are for different streams: verify one stream at a time"));
            }
            first.stream.clone()
        }
        None => global.stream.clone(),
    };
    let expected = if s.expect.is_empty() { expected_from_runs(&chains)? } else { expected_from_files(&s.expect)? };
    let expected = Arc::new(Mutex::new(expected));
    let tally = || expected.lock().expect("expected lock").tally();
    let window_start = match (s.since, runs.iter().map(|r| r.started).min()) {
        (Some(since), _) => Some(since),
        (None, Some(started)) => Some(started - CLOCK_SLACK),
        (None, None) => None,
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
    let bucket = dest.bucket().to_string();
    let extension = dest.extension();
    let expected_prefix = prefix::static_part_of(dest.prefix.as_deref()).to_string();
    let hourly = hourly_layout(&dest);
    // Describe reports what AWS accepted; a zone this build does not know falls back to UTC (with a note).
    let zone = prefix::parse_time_zone(dest.time_zone.as_deref()).unwrap_or_else(|e| {
        reporter.note(&format!("{e}: reading key times as UTC"));
        chrono_tz::Tz::UTC
    });
    let interval =
        runs.iter().filter_map(|r| r.buffer_interval_s).max().unwrap_or(dest.buffer_interval_s.max(0) as u32);
    let started = tokio::time::Instant::now();
    let deadline = if s.no_wait {
        started
    } else if let Some(w) = s.wait {
        started + w
    } else {
        // Objects arrive up to IntervalInSeconds after the last record, plus delivery time.
        let last = runs.iter().filter_map(|r| r.ended).max().unwrap_or_else(Utc::now);
        let due = last + chrono::Duration::seconds(interval as i64 + 60);
        started + (due - Utc::now()).to_std().unwrap_or_default()
    };
    // Even with every line found, a run's last buffer (and any duplicate in it) lands up to IntervalInSeconds
    // after the run. When duplicates are possible (entries were resent, or a run resumed another), wait for
    // that moment before concluding there are none.
    let duplicates_possible = runs.iter().any(|r| r.retries > 0 || !r.resumed_from.is_empty());
    let settle = match runs.iter().filter_map(|r| r.ended).max() {
        Some(last) if !s.no_wait && duplicates_possible => {
            let at = last + chrono::Duration::seconds(interval as i64) + chrono::Duration::seconds(2);
            started + (at - Utc::now()).to_std().unwrap_or_default()
        }
        _ => started,
    };
    if let Some(dir) = &s.keep {
        std::fs::create_dir_all(dir).map_err(|e| Error::state("create", dir.clone(), e))?;
    }

    let total = tally().expected;
    let task = reporter.task("verify", Some(total), Unit::Items);
    let mut seen_keys: HashSet<String> = HashSet::new();
    let mut objects: Vec<DeliveredObject> = Vec::new();
    let mut error_objects: Vec<String> = Vec::new();
    let prefixes = list_prefixes(&dest, zone, window_start);
    // Failed deliveries land under the literal part of the error prefix.
    let error_prefix = dest.error_prefix.as_ref().map(|p| p.split("!{").next().unwrap_or("").to_string());
    let name_prefix = format!("{stream}-");
    let mut bucket_missing = false;
    // A `local --speed N` emulator runs the interval N times faster: flushes are classified against that.
    let speed = clients.speed.speed();
    let effective_interval_s = (dest.buffer_interval_s as f64 / speed).floor() as i32;
    // A partitioned stream: every line is checked against the partition its own fields map to.
    let partition_check: Option<Arc<PartitionCheck>> = match &dest.partition_query {
        Some(query) => {
            let prefixes = prefix::validate(dest.prefix.as_deref(), dest.error_prefix.as_deref(), true)
                .map_err(|e| Error::failed(format!("the stream's prefix: {e}")))?;
            PartitionCheck::new(query, prefixes.data, zone, &stream)
                .map_err(|e| Error::failed(format!("the stream's partitioning query: {e}")))?
                .map(Arc::new)
        }
        None => None,
    };
    let mut misplaced_lines = 0u64;
    let mut misplaced_example: Option<String> = None;
    loop {
        // List what is new in the window. A missing bucket holds nothing (and is said, with the cause).
        let mut new = Vec::new();
        for p in &prefixes {
            let listed = match s3::list_objects(&clients.s3, &bucket, p).await {
                Ok(listed) => listed,
                Err(e) if e.aws_code() == Some("NoSuchBucket") => {
                    bucket_missing = true;
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            for o in listed {
                let in_window = match (window_start, o.last_modified) {
                    (Some(start), Some(lm)) => lm >= start,
                    _ => true,
                };
                let ours = o.key.rsplit('/').next().is_some_and(|n| n.starts_with(&name_prefix));
                // The error output can live under the data prefix (setup's `<prefix>errors/`): not data.
                let error_output = error_prefix.as_deref().is_some_and(|ep| !ep.is_empty() && o.key.starts_with(ep));
                if in_window && ours && !error_output && seen_keys.insert(o.key.clone()) {
                    new.push(o);
                }
            }
        }
        let mut downloads = futures::stream::iter(new.into_iter().map(|o| {
            let keep_as = s.keep.as_deref().map(|dir| keep::local_path(dir, &o.key));
            let bucket = bucket.clone();
            let expected = expected.clone();
            let check = partition_check.clone().and_then(|c| {
                let at = parse_key(&o.key, &stream, zone).ok()?.time;
                Some((c, at))
            });
            async move {
                let lines = download(clients, &bucket, &o.key, keep_as.clone(), expected, check).await;
                (o, lines, keep_as)
            }
        }))
        .buffer_unordered(DOWNLOADS);
        while let Some((o, lines, kept_as)) = downloads.next().await {
            let (lines, matched, misplaced) = lines?;
            if let Some((n, example)) = misplaced {
                misplaced_lines += n;
                if misplaced_example.is_none() {
                    misplaced_example = example.map(|e| format!("{}: {e}", o.key));
                }
            }
            let parsed = parse_key(&o.key, &stream, zone);
            let (key_time, problems) = match &parsed {
                Ok(info) => (Some(info.time), layout_problems(info, &expected_prefix, &extension, hourly)),
                Err(why) => (None, vec![why.clone()]),
            };
            let delay_s = match (o.last_modified, key_time) {
                (Some(lm), Some(kt)) => Some((lm - kt).num_milliseconds() as f64 / 1000.0),
                _ => None,
            };
            objects.push(DeliveredObject {
                key: o.key.clone(),
                size: o.size,
                bytes: lines.bytes,
                lines: lines.lines,
                last_modified: o.last_modified,
                key_time,
                delay_s,
                flushed_by: flushed_by(lines.bytes, dest.buffer_size_mib, delay_s, effective_interval_s),
                matched_lines: matched,
                layout_problems: problems,
                kept_as,
            });
            let t = tally();
            task.set_position(t.matched);
            task.set_message(format!(
                "{} objects · {} missing",
                format_count(objects.len() as u64),
                format_count(t.missing)
            ));
        }
        drop(downloads);
        if let Some(ep) = &error_prefix
            && !ep.is_empty()
        {
            error_objects = s3::list_objects(&clients.s3, &bucket, ep)
                .await?
                .into_iter()
                .filter(|o| window_start.is_none_or(|start| o.last_modified.is_none_or(|lm| lm >= start)))
                .map(|o| o.key)
                .collect();
        }
        let t = tally();
        let now = tokio::time::Instant::now();
        if (t.missing == 0 && now >= settle) || now >= deadline {
            break;
        }
        let left = if t.missing == 0 { settle.min(deadline) - now } else { deadline - now };
        task.set_message(if t.missing == 0 {
            format!(
                "{} objects · all lines found · watching {}s more for late duplicates",
                format_count(objects.len() as u64),
                left.as_secs()
            )
        } else {
            format!(
                "{} objects · {} missing · waiting up to {}s for late objects",
                format_count(objects.len() as u64),
                format_count(t.missing),
                left.as_secs()
            )
        });
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
    }
    let waited_s = started.elapsed().as_secs_f64();
    let tally = tally();
    let missing_lines = if !s.expect.is_empty() && tally.missing > 0 {
        missing_lines(&s.expect, &mut expected.lock().expect("expected lock"), SHOW_MISSING)?
    } else {
        Vec::new()
    };
    objects.sort_by(|a, b| a.key_time.cmp(&b.key_time).then_with(|| a.key.cmp(&b.key)));
    let buffering = summarize(&objects, dest.buffer_size_mib, effective_interval_s);
    let mut partitions: Vec<PartitionSummary> = Vec::new();
    let mut error_records: Vec<ErrorRecords> = Vec::new();
    if partition_check.is_some() {
        let mut by_prefix: std::collections::BTreeMap<String, PartitionSummary> = Default::default();
        for o in &objects {
            let dir = o.key.rfind(&name_prefix).map_or("", |i| &o.key[..i]).to_string();
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
        partitions = by_prefix.into_values().collect();
        // What the error output holds, and why (at most 100 objects read).
        let mut codes = std::collections::BTreeMap::new();
        for key in error_objects.iter().take(100) {
            if let Ok(out) = clients.s3.get_object().bucket(&bucket).key(key).send().await
                && let Ok(body) = out.body.collect().await
            {
                let bytes = body.into_bytes();
                let text = decompressed(&bytes).unwrap_or_else(|| bytes.to_vec());
                tally_error_records(&text, &mut codes);
            }
        }
        error_records =
            codes.into_iter().map(|(code, (count, example))| ErrorRecords { code, count, example }).collect();
    }
    let verified = tally.missing == 0 && (!s.strict || tally.duplicated == 0) && misplaced_lines == 0;
    let since = window_start.unwrap_or_else(|| Utc::now() - chrono::Duration::hours(24));
    let causes = match crate::aws::diagnosis::causes(clients, &dest, since, Utc::now(), tally.missing > 0).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("cannot read the causes of delivery errors: {e}");
            None
        }
    };
    task.finish(format!(
        "{} of {} lines found in {} objects",
        format_count(tally.matched),
        format_count(tally.expected),
        format_count(objects.len() as u64)
    ));
    Ok(VerifyReport {
        stream,
        bucket,
        basis: Basis {
            runs: runs.iter().map(|r| r.run_id.clone()).collect(),
            expect_files: s.expect.clone(),
            window_start,
        },
        tally,
        verified,
        strict: s.strict,
        delivered_bytes: objects.iter().map(|o| o.size).sum(),
        layout_ok: objects.iter().all(|o| o.layout_problems.is_empty()),
        objects,
        buffering,
        error_objects,
        missing_lines,
        waited_s,
        bucket_missing,
        speed,
        partitions,
        misplaced_lines,
        misplaced_example,
        error_records,
        causes,
        effective_interval_s: dest.buffer_interval_s as f64 / speed,
        cost: (!runs.is_empty()).then(|| crate::delivery::html::Cost {
            raw_bytes: runs.iter().map(|r| r.bytes).sum(),
            billable_bytes: runs.iter().map(|r| r.billable_bytes).sum(),
            billable_one_line_per_record: runs.iter().map(|r| r.billable_bytes_one_line_per_record).sum(),
            records: runs.iter().map(|r| r.records).sum(),
            lines: runs.iter().map(|r| r.lines).sum(),
        }),
        endpoint: clients.backend(),
        stream_description: info.clone(),
    })
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
    if r.verified {
        out.push(format!("  OK: all {} lines arrived in s3://{}", format_count(t.expected), r.bucket));
    } else if t.missing == 0 && r.misplaced_lines > 0 {
        out.push(format!(
            "  FAILED: all {} lines arrived, but {} are in the wrong partition",
            format_count(t.expected),
            format_count(r.misplaced_lines)
        ));
    } else {
        out.push(format!(
            "  FAILED: {} of {} lines missing{}",
            format_count(t.missing),
            format_count(t.expected),
            if r.strict && t.duplicated > 0 {
                format!(", {} duplicated (--strict)", format_count(t.duplicated))
            } else {
                String::new()
            }
        ));
    }
    out.push(format!(
        "  matched {} · missing {} · duplicated {} (at-least-once delivery) · extra {} (other runs or producers)",
        format_count(t.matched),
        format_count(t.missing),
        format_count(t.duplicated),
        format_count(t.extra)
    ));
    out.push(format!("  delivery: {} ({})", r.buffering.sentence(), format_bytes(r.delivered_bytes)));
    for o in r.objects.iter().take(3) {
        out.push(format!(
            "    {}  {} · {} lines{}",
            o.key,
            format_bytes(o.size),
            format_count(o.lines),
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
            "  layout: {} keys deviate from Firehose's layout, e.g. {}: {}",
            bad.len(),
            bad[0].key,
            bad[0].layout_problems.join("; ")
        ));
    }
    if !r.error_objects.is_empty() {
        out.push(format!(
            "  delivery failures: {} objects under the error prefix, e.g. {}",
            r.error_objects.len(),
            r.error_objects[0]
        ));
    }
    if !r.missing_lines.is_empty() {
        out.push("  missing lines:".into());
        out.extend(r.missing_lines.iter().map(|l| format!("    {l}")));
    }
    if !r.partitions.is_empty() {
        out.push(format!("  partitions: {} (each line checked against its own fields)", r.partitions.len()));
        for p in r.partitions.iter().take(8) {
            out.push(format!(
                "    {}  {} objects · {} lines · {} ({} by size, {} by interval)",
                if p.prefix.is_empty() { "(no prefix)" } else { &p.prefix },
                format_count(p.objects),
                format_count(p.lines),
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
            "  FAILED: {} lines are in a partition their own fields do not map to, e.g. {}",
            format_count(r.misplaced_lines),
            r.misplaced_example.as_deref().unwrap_or("")
        ));
    }
    for e in &r.error_records {
        out.push(format!("  error output: {} records {} ({})", format_count(e.count), e.code, e.example));
    }
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
    } else {
        printer.result(&summary(&report));
    }
    Ok(if report.verified { ExitCode::Success } else { ExitCode::Failed })
}
