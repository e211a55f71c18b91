//! The run manifest `send` writes and `verify`/`status` read, under `<state-dir>/runs/`:
//! `<run-id>.json` (what was sent, where, when, and an order-independent digest of the lines) and
//! `<run-id>.hashes` (one 64-bit hash per acknowledged line, so verify can tell which lines are missing without
//! the inputs). The manifest is rewritten as the run progresses, so a killed run still has one that covers
//! every line its checkpoint covers.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util::persist;

/// The hash of one line's bytes (without its `\n`): xxh3-128. Its low 64 bits are what `.hashes` files hold.
pub fn line_hash(line: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(line)
}

/// Count + wrapping sum of 128-bit line hashes: equal for equal multisets of lines, whatever their order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Digest {
    pub count: u64,
    pub sum: u128,
}

impl Digest {
    pub fn add(&mut self, hash: u128) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(hash);
    }

    pub fn merge(&mut self, other: &Digest) {
        self.count += other.count;
        self.sum = self.sum.wrapping_add(other.sum);
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Digest", 2)?;
        st.serialize_field("count", &self.count)?;
        st.serialize_field("sum", &format!("{:032x}", self.sum))?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            count: u64,
            sum: String,
        }
        let raw = Raw::deserialize(d)?;
        let sum = u128::from_str_radix(&raw.sum, 16).map_err(serde::de::Error::custom)?;
        Ok(Digest { count: raw.count, sum })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Still sending (or killed: a manifest left in this state belongs to a run that did not finish).
    Running,
    Completed,
    /// Stopped by Ctrl-C/SIGTERM after finishing in-flight batches.
    Interrupted,
    /// Gave up (permanent error or retry timeout).
    Failed,
}

/// Where a run's lines were acknowledged: one stream instance. Its ARN names the partition, region, account and
/// stream; its creation time tells a stream from a same-named one created after it was deleted (on AWS, and in two
/// emulators, whose streams share account and ARN). Without a creation time the endpoint tells them apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub stream_arn: String,
    pub stream_created: Option<DateTime<Utc>>,
    /// The custom endpoint (`None`: AWS).
    pub endpoint: Option<String>,
}

impl Destination {
    /// Whether lines acknowledged by `self` were acknowledged by `other`: the same stream instance.
    pub fn same_stream(&self, other: &Destination) -> bool {
        self.stream_arn == other.stream_arn
            && match (self.stream_created, other.stream_created) {
                (Some(a), Some(b)) => a == b,
                (None, None) => self.endpoint == other.endpoint,
                _ => false,
            }
    }

    /// The same ARN (partition, region, account, name) but another instance: the stream was re-created.
    pub fn recreated(&self, other: &Destination) -> bool {
        self.stream_arn == other.stream_arn && self.endpoint == other.endpoint && !self.same_stream(other)
    }

    /// The text checkpoints are filed under.
    pub fn key(&self) -> String {
        match self.stream_created {
            Some(t) => format!("{}\0{}", self.stream_arn, t.timestamp_millis()),
            None => format!("{}\0{}", self.stream_arn, self.endpoint.as_deref().unwrap_or("aws")),
        }
    }

    /// `arn:aws:firehose:us-east-2:…:deliverystream/S (created 2026-12-02 03:18:21 UTC) at http://127.0.0.1:4566`
    pub fn describe(&self) -> String {
        let created = self.stream_created.map(|t| format!(" (created {})", t.format("%Y-%m-%d %H:%M:%S UTC")));
        let at = self.endpoint.as_deref().map(|e| format!(" at {e}")).unwrap_or_default();
        format!("{}{}{at}", self.stream_arn, created.unwrap_or_default())
    }
}

/// One input of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InputSummary {
    pub name: String,
    pub lines: u64,
    pub bytes: u64,
    /// Byte offset a checkpoint resumed from (0 when sent from the start).
    pub resumed_at: u64,
}

/// `<state-dir>/runs/<run-id>.json`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunManifest {
    pub run_id: String,
    pub stream: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub account_id: String,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub inputs: Vec<InputSummary>,
    pub lines: u64,
    pub bytes: u64,
    pub records: u64,
    pub batches: u64,
    pub retries: u64,
    pub throttled: u64,
    pub rejected_lines: u64,
    pub failed_records: u64,
    pub billable_bytes: u64,
    pub billable_bytes_one_line_per_record: u64,
    /// Digest of every acknowledged line.
    pub digest: Digest,
    /// The stream's IntervalInSeconds when the run started (verify's default deadline uses it).
    pub buffer_interval_s: Option<u32>,
    /// Runs whose checkpoint this run continued (their lines may be duplicated in S3 up to what was in flight).
    #[serde(default)]
    pub resumed_from: Vec<String>,
    /// The stream instance that acknowledged the lines (absent in manifests of older versions).
    #[serde(default)]
    pub destination: Option<Destination>,
    /// The Kinesis data stream the lines were written to, for a chained pipeline (its ARN); `None`: Direct Put.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl RunManifest {
    /// A new run, nothing sent yet.
    pub fn start(run_id: String, stream: String, region: String, started: DateTime<Utc>) -> Self {
        RunManifest {
            run_id,
            stream,
            region,
            endpoint: None,
            account_id: String::new(),
            started,
            ended: None,
            status: RunStatus::Running,
            inputs: Vec::new(),
            lines: 0,
            bytes: 0,
            records: 0,
            batches: 0,
            retries: 0,
            throttled: 0,
            rejected_lines: 0,
            failed_records: 0,
            billable_bytes: 0,
            billable_bytes_one_line_per_record: 0,
            digest: Digest::default(),
            buffer_interval_s: None,
            resumed_from: Vec::new(),
            destination: None,
            source: None,
        }
    }

    pub fn path(state_dir: &Path, run_id: &str) -> PathBuf {
        runs_dir(state_dir).join(format!("{run_id}.json"))
    }

    pub fn hashes_path(state_dir: &Path, run_id: &str) -> PathBuf {
        runs_dir(state_dir).join(format!("{run_id}.hashes"))
    }

    /// The acknowledged lines themselves, gzipped: kept for a transformed stream, whose delivered data verify
    /// can only predict by running the function over what was sent.
    pub fn lines_path(state_dir: &Path, run_id: &str) -> PathBuf {
        runs_dir(state_dir).join(format!("{run_id}.lines.gz"))
    }

    pub fn save(&self, state_dir: &Path) -> Result<()> {
        let path = Self::path(state_dir, &self.run_id);
        std::fs::create_dir_all(runs_dir(state_dir)).map_err(|e| Error::state("create", runs_dir(state_dir), e))?;
        persist::write_json(&path, self).map_err(|e| Error::state("write run manifest", path, e))
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|source| Error::Input { path: path.to_path_buf(), source })?;
        serde_json::from_slice(&text)
            .map_err(|e| Error::usage(format!("`{}` is not a firehose-kit run manifest: {e}", path.display())))
    }
}

pub fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runs")
}

pub fn checkpoints_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("checkpoints")
}

/// The locks of inputs being sent (`send`), beside the checkpoints they guard.
pub fn locks_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("locks")
}

pub fn rejects_path(state_dir: &Path, run_id: &str) -> PathBuf {
    state_dir.join("rejects").join(format!("{run_id}.log"))
}

/// A new run id: UTC time plus a random suffix, sortable by start.
pub fn new_run_id(now: DateTime<Utc>) -> String {
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &uuid::Uuid::new_v4().simple().to_string()[..6])
}

/// The manifests of a state dir, oldest first, and the files that could not be read as one (skipped, so the
/// caller can warn about them).
#[derive(Debug, Default)]
pub struct RunList {
    pub runs: Vec<RunManifest>,
    pub unreadable: Vec<PathBuf>,
}

impl RunList {
    /// A warning naming the skipped files, when there are any.
    pub fn warning(&self) -> Option<String> {
        let first = self.unreadable.first()?;
        Some(format!(
            "skipped {} unreadable run manifest{} (e.g. `{}`)",
            self.unreadable.len(),
            if self.unreadable.len() == 1 { "" } else { "s" },
            first.display()
        ))
    }
}

/// Every manifest in the state dir, oldest first.
pub fn all_runs(state_dir: &Path) -> RunList {
    let mut list = RunList::default();
    let Ok(entries) = std::fs::read_dir(runs_dir(state_dir)) else { return list };
    for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        if path.extension().is_some_and(|x| x == "json") {
            match RunManifest::load(&path) {
                Ok(run) => list.runs.push(run),
                Err(_) => list.unreadable.push(path),
            }
        }
    }
    list.runs.sort_by(|a, b| a.started.cmp(&b.started).then_with(|| a.run_id.cmp(&b.run_id)));
    list.unreadable.sort();
    list
}

/// The most recent run for `stream`, and the list it was picked from (for its warning).
pub fn latest_run(state_dir: &Path, stream: &str) -> (Option<RunManifest>, RunList) {
    let mut list = all_runs(state_dir);
    let latest = list.runs.iter().rposition(|r| r.stream == stream).map(|i| list.runs.remove(i));
    (latest, list)
}

/// The most recent run whose lines went to `destination` (runs of older versions, which did not record one, go
/// by stream name and endpoint); otherwise the most recent run of the stream's name elsewhere, as `Err`, so the
/// caller can say where it went.
pub fn latest_run_to(
    state_dir: &Path,
    stream: &str,
    destination: &Destination,
) -> (std::result::Result<RunManifest, Option<RunManifest>>, RunList) {
    let mut list = all_runs(state_dir);
    let matches = |r: &RunManifest| match &r.destination {
        Some(d) => d.same_stream(destination),
        None => r.endpoint == destination.endpoint,
    };
    let found = match list.runs.iter().rposition(|r| r.stream == stream && matches(r)) {
        Some(i) => Ok(list.runs.remove(i)),
        None => Err(list.runs.iter().rposition(|r| r.stream == stream).map(|i| list.runs.remove(i))),
    };
    (found, list)
}

/// Appends line hashes (low 64 bits) to a run's `.hashes` file.
pub struct HashWriter {
    file: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
}

impl HashWriter {
    pub fn create(path: PathBuf) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::state("create", dir, e))?;
        }
        let file = std::fs::File::create(&path).map_err(|e| Error::state("create", path.clone(), e))?;
        Ok(HashWriter { file: std::io::BufWriter::with_capacity(256 * 1024, file), path })
    }

    pub fn write(&mut self, hashes: &[u128]) -> Result<()> {
        for h in hashes {
            self.file.write_all(&(*h as u64).to_le_bytes()).map_err(|e| Error::state("write", self.path.clone(), e))?;
        }
        Ok(())
    }

    /// Pushes buffered hashes to the file (before the manifest and checkpoint that rely on them are saved).
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| Error::state("write", self.path.clone(), e))
    }
}

/// Appends acknowledged lines to a run's `.lines.gz` (flushed with the hash file, so a killed run keeps what
/// its manifest counts).
pub struct LinesWriter {
    file: flate2::write::GzEncoder<std::io::BufWriter<std::fs::File>>,
    path: PathBuf,
}

impl LinesWriter {
    pub fn create(path: PathBuf) -> Result<Self> {
        let file = std::fs::File::create(&path).map_err(|e| Error::state("create", path.clone(), e))?;
        let file = std::io::BufWriter::with_capacity(256 * 1024, file);
        Ok(LinesWriter { file: flate2::write::GzEncoder::new(file, flate2::Compression::fast()), path })
    }

    /// Writes one record's data as lines (a final `\n` added when missing).
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let err = |e| Error::state("write", self.path.clone(), e);
        self.file.write_all(data).map_err(err)?;
        if !data.ends_with(b"\n") {
            self.file.write_all(b"\n").map_err(|e| Error::state("write", self.path.clone(), e))?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| Error::state("write", self.path.clone(), e))
    }
}

/// The lines of a `.lines.gz` file, as far as it can be read (a run killed mid-write leaves a torn end).
pub fn read_lines_file(path: &Path) -> Result<Vec<Vec<u8>>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|source| Error::Input { path: path.to_path_buf(), source })?;
    let mut text = Vec::new();
    let _ = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file)).read_to_end(&mut text);
    let mut lines: Vec<Vec<u8>> = text.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    if lines.last().is_some_and(Vec::is_empty) || !text.ends_with(b"\n") {
        lines.pop();
    }
    Ok(lines)
}

/// Reads a `.hashes` file.
pub fn read_hashes(path: &Path) -> Result<Vec<u64>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Input { path: path.to_path_buf(), source })?;
    Ok(bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(id: &str, stream: &str, started: DateTime<Utc>) -> RunManifest {
        RunManifest::start(id.into(), stream.into(), "us-east-2".into(), started)
    }

    #[test]
    fn digest_is_order_independent_and_round_trips() {
        let mut a = Digest::default();
        let mut b = Digest::default();
        for line in [&b"x"[..], b"y", b"z"] {
            a.add(line_hash(line));
        }
        for line in [&b"z"[..], b"x", b"y"] {
            b.add(line_hash(line));
        }
        assert_eq!(a, b);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), a);
        let mut merged = Digest::default();
        merged.merge(&a);
        merged.merge(&b);
        assert_eq!(merged.count, 6);
    }

    #[test]
    fn latest_run_is_per_stream() {
        let dir = tempfile::tempdir().unwrap();
        let t = |s| chrono::DateTime::from_timestamp(s, 0).unwrap();
        manifest("r1", "A", t(100)).save(dir.path()).unwrap();
        manifest("r2", "A", t(200)).save(dir.path()).unwrap();
        manifest("r3", "B", t(300)).save(dir.path()).unwrap();
        assert_eq!(latest_run(dir.path(), "A").0.unwrap().run_id, "r2");
        assert_eq!(latest_run(dir.path(), "C").0, None);
        assert_eq!(all_runs(dir.path()).runs.len(), 3);
        // A damaged manifest is skipped and counted, not fatal.
        std::fs::write(runs_dir(dir.path()).join("broken.json"), b"{\"run_id\": 7").unwrap();
        let list = all_runs(dir.path());
        assert_eq!((list.runs.len(), list.unreadable.len()), (3, 1));
        assert!(list.warning().unwrap().contains("broken.json"));
        assert_eq!(latest_run(dir.path(), "A").0.unwrap().run_id, "r2");
    }

    #[test]
    fn the_latest_run_to_a_destination_skips_runs_to_other_instances() {
        let dir = tempfile::tempdir().unwrap();
        let t = |s| chrono::DateTime::from_timestamp(s, 0).unwrap();
        let dest = |created: i64, endpoint: Option<&str>| Destination {
            stream_arn: "arn:aws:firehose:us-east-2:000000000000:deliverystream/A".into(),
            stream_created: Some(t(created)),
            endpoint: endpoint.map(str::to_string),
        };
        let mut local = manifest("r1", "A", t(100));
        local.destination = Some(dest(1, Some("http://127.0.0.1:4566")));
        local.save(dir.path()).unwrap();
        let mut other = manifest("r2", "A", t(200));
        other.destination = Some(dest(2, Some("http://127.0.0.1:4566")));
        other.save(dir.path()).unwrap();
        let (found, _) = latest_run_to(dir.path(), "A", &dest(1, Some("http://127.0.0.1:4567")));
        assert_eq!(found.unwrap().run_id, "r1", "the same instance, even on another port of a restarted emulator");
        let (found, _) = latest_run_to(dir.path(), "A", &dest(3, None));
        assert_eq!(found.unwrap_err().unwrap().run_id, "r2", "no run to this instance: the latest elsewhere is named");
        assert!(dest(1, None).recreated(&dest(2, None)) && !dest(1, None).recreated(&dest(1, None)));
    }

    #[test]
    fn hashes_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs/x.hashes");
        let mut w = HashWriter::create(path.clone()).unwrap();
        w.write(&[line_hash(b"a"), line_hash(b"b")]).unwrap();
        w.flush().unwrap();
        assert_eq!(read_hashes(&path).unwrap(), vec![line_hash(b"a") as u64, line_hash(b"b") as u64]);
        assert!(new_run_id(Utc::now()).len() > 16);
    }
}
