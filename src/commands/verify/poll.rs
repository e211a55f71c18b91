//! Listing and downloading: new objects of this stream in the window, each streamed once through the line
//! hasher (and the partition check), until nothing is missing or the deadline passes.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::aws::{Clients, s3};
use crate::delivery::compare::Expected;
use crate::delivery::keep;
use crate::delivery::lines::{HOLD_FOR_PARSING, Line};
use crate::delivery::objects::{ObjectLines, read_lines, scan};
use crate::delivery::partitions::PartitionCheck;
use crate::delivery::report::{DeliveredObject, flushed_by_within};
use crate::error::{Error, Result};
use crate::firehose::keys::{layout_problems, parse_key};
use crate::firehose::partitioning::Query;
use crate::firehose::types::Compression;
use crate::settings::VerifySettings;
use crate::ui::plural;

use super::converted::read_conversion_failures;
use super::scope::{Expectations, Layout, deadlines};
use super::transformed::{self, FieldHasher};

/// Objects downloaded at once.
const DOWNLOADS: usize = 8;

/// What the listing and downloads found.
#[derive(Default)]
pub(super) struct Found {
    pub(super) objects: Vec<DeliveredObject>,
    pub(super) error_objects: Vec<String>,
    pub(super) bucket_missing: bool,
    pub(super) misplaced_lines: u64,
    pub(super) misplaced_example: Option<String>,
    pub(super) waited_s: f64,
    /// A converting stream: the error objects of `format-conversion-failed` read so far, and what they held.
    pub(super) conversion_read: HashSet<String>,
    pub(super) conversion_codes: std::collections::BTreeMap<String, (u64, String)>,
    pub(super) conversion_failed: u64,
    pub(super) conversion_example: Option<String>,
    /// A transformed stream: the processing-failed objects read so far, and their records' original data (the
    /// hash of each line).
    pub(super) failed_read: HashSet<String>,
    pub(super) failed_raw: Vec<Vec<u64>>,
}

/// What one download found: its lines, how many were expected, and (a partitioned stream) how many are in the
/// wrong partition with an example.
pub(super) type Downloaded = (ObjectLines, u64, Option<(u64, Option<String>)>);

/// Writes to every writer it holds.
pub(super) struct Tee<'a>(Vec<&'a mut dyn std::io::Write>);

impl std::io::Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for w in &mut self.0 {
            w.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        for w in &mut self.0 {
            w.flush()?;
        }
        Ok(())
    }
}

/// How one object's lines are compared: into `expected`, through the partition check (a partitioned stream:
/// the check and the key's time), and with `--match` by each document's field.
pub(super) struct Reading {
    pub(super) expected: Arc<Mutex<Expected>>,
    pub(super) partitions: Option<(Arc<PartitionCheck>, DateTime<Utc>)>,
    pub(super) field: Option<Arc<Query>>,
    pub(super) compression: Compression,
}

/// Streams one object through the line hasher into the expectation (and into `keep_as` when given); returns
/// what it held and how many of its lines were expected ones.
pub(super) async fn download(
    clients: &Clients,
    bucket: &str,
    key: &str,
    keep_as: Option<PathBuf>,
    how: Reading,
) -> Result<Downloaded> {
    let reader = s3::get_object_reader(&clients.s3, bucket, key).await?;
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
        let by_field = how.field.is_some();
        let mut matched = 0u64;
        let mut observe = |hashes: &[u64]| {
            if !by_field {
                let mut e = how.expected.lock().expect("expected lock");
                matched += hashes.iter().filter(|h| e.observe(**h)).count() as u64;
            }
        };
        // The decompressed bytes go to the kept file, through the partition check on a partitioned stream, and
        // through the field hasher with --match.
        let mut checker = how.partitions.as_ref().map(|(check, at)| check.writer(&key, *at));
        let mut fields = how.field.clone().map(|f| FieldHasher::new(f, how.expected.clone()));
        let mut writers: Vec<&mut dyn std::io::Write> = Vec::new();
        if let Some(f) = keep_file.as_mut() {
            writers.push(f);
        }
        if let Some(c) = checker.as_mut() {
            writers.push(c);
        }
        if let Some(f) = fields.as_mut() {
            writers.push(f);
        }
        let mut tee = Tee(writers);
        let sink = (!tee.0.is_empty()).then_some(&mut tee as &mut dyn std::io::Write);
        let info = read_lines(reader, &how.compression, sink, &mut observe)
            .map_err(|e| Error::failed(format!("cannot read object `{key}`: {e}")))?;
        drop(tee);
        if let (Some(file), Some(path)) = (keep_file.as_mut(), &keep_as) {
            std::io::Write::flush(file).map_err(|e| Error::state("write", path.clone(), e))?;
        }
        // Past where the reading stopped, no last line is handed over: it was cut, not ended.
        let whole = info.overlong_at.is_none();
        if let Some(f) = fields.as_mut() {
            if whole {
                f.finish();
            }
            matched = f.matched;
        }
        let misplaced = checker.map(|mut c| {
            if whole {
                c.finish();
            }
            (c.seen.misplaced, c.seen.example)
        });
        Ok((info, matched, misplaced))
    })
    .await
    .map_err(|e| Error::failed(format!("download task failed: {e}")))?
}

/// Streams one object of the error output, line by line, to `on_line` on a blocking thread, and gives `state`
/// back. No error document is longer than [`HOLD_FOR_PARSING`]: a longer line is skipped, never held.
pub(super) async fn each_line<T: Send + 'static>(
    clients: &Clients,
    bucket: &str,
    key: &str,
    mut state: T,
    on_line: impl Fn(&mut T, &[u8]) + Send + 'static,
) -> Result<T> {
    let reader = s3::get_object_reader(&clients.s3, bucket, key).await?;
    let key = key.to_string();
    tokio::task::spawn_blocking(move || -> Result<T> {
        scan(reader, &Compression::Uncompressed, HOLD_FOR_PARSING, None, &mut |line| {
            if let Line::Whole(line) = line {
                on_line(&mut state, line)
            }
        })
        .map_err(|e| Error::failed(format!("cannot read object `{key}`: {e}")))?;
        Ok(state)
    })
    .await
    .map_err(|e| Error::failed(format!("download task failed: {e}")))?
}

/// Lists what is new under the layout's prefixes in the window: this stream's objects, not the error output.
pub(super) async fn list_new(
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
pub(super) async fn read_objects(
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
        let how = Reading {
            expected: e.expected.clone(),
            partitions: check,
            field: e.transform.as_ref().and_then(|x| x.field.clone()),
            compression: e.dest.compression.clone(),
        };
        let bucket = l.bucket.clone();
        async move {
            let lines = download(clients, &bucket, &o.key, keep_as.clone(), how).await;
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
pub(super) fn delivered_object(
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
        flushed_by: flushed_by_within(
            lines.bytes,
            e.dest.buffer_size_mib,
            delay_s,
            l.effective_interval_s,
            // Whole-second key times against an interval shortened by the emulator's --speed.
            if l.speed > 1.0 { 1.0 } else { 0.0 },
        ),
        matched_lines: matched,
        layout_problems: problems,
        kept_as,
        schema: lines.schema,
        not_read_through: lines.overlong_at.map(|at| {
            format!(
                "a line, or a whole object, of over {} MiB decoded, more than Firehose delivers in one object: not read past byte {at}",
                crate::delivery::lines::LONGEST_LINE >> 20
            )
        }),
    }
}

/// Lists, downloads and compares until nothing is missing (and no late duplicate can still come) or the
/// deadline passes.
pub(super) async fn poll(
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
                // Streams on one bucket share the error prefix: only this stream's objects are its errors.
                .filter(|o| crate::firehose::keys::written_by(&o.key, &e.stream))
                .map(|o| o.key)
                .collect();
        }
        if e.dest.conversion.is_some() {
            read_conversion_failures(e, l, clients, &mut found).await?;
        }
        // A transformed stream waits for its lines' outcomes: output delivered, or records in the error output.
        let missing = match e.transform {
            Some(_) => transformed::pending(e, l, clients, &mut found).await?,
            None => e.expected.lock().expect("expected lock").tally().missing,
        };
        let now = tokio::time::Instant::now();
        if (missing == 0 && now >= settle) || now >= deadline {
            break;
        }
        let left = if missing == 0 { settle.min(deadline) - now } else { deadline - now };
        let objects = plural(found.objects.len() as u64, "object");
        task.set_message(if missing == 0 {
            format!("{objects} read, every line found; watching {}s more for late duplicates", left.as_secs())
        } else {
            format!(
                "{objects} read, {} still missing; waiting up to {}s for late objects",
                plural(missing, "line"),
                left.as_secs()
            )
        });
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
    }
    found.waited_s = started.elapsed().as_secs_f64();
    Ok(found)
}
