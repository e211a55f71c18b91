//! Kinesis Data Streams in the emulator (JSON 1.1, `X-Amz-Target: Kinesis_20131202.<Op>`), enough to put a data
//! stream in front of Firehose and to feed it from any SDK: streams (provisioned and on-demand) with their
//! CREATING → ACTIVE → DELETING lifecycle, shards over the 128-bit hash-key space, PutRecord(s) routed by the
//! partition key's MD5 or an `ExplicitHashKey`, increasing sequence numbers, the five shard-iterator types with
//! their five-minute expiry, GetRecords, retention, tags, and with `--quota` the per-shard limits (1 MiB/s and
//! 1,000 records/s written, 5 calls/s and 2 MiB/s read) answered as AWS answers them.
//!
//! Split like the emulator's other services: [`handlers`] has one function per action, found in [`ACTIONS`];
//! [`model`] holds the state, sequence numbers, iterators and buckets; [`store`] persists it (one append-only file
//! per shard). Firehose streams with a Kinesis source read it in-process through [`Kinesis::read_shard`], under
//! the same read limits as any other consumer.
//!
//! Not modelled, and refused by name: resharding (`UpdateShardCount`, `SplitShard`, `MergeShards`), enhanced
//! fan-out consumers, server-side encryption, and the CBOR wire format the Java SDKs default to.

mod handlers;
pub mod model;
mod records;
pub mod store;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use serde::Deserialize;

use self::model::{Lifecycle, State, StreamMeta};
use self::store::{Store, Stored};
use crate::json::{self, ApiError};
use crate::s3::store::now_ms;
use firehose_kit_domain::kinesis::{MAX_GET_RECORDS, MAX_GET_RECORDS_BYTES};
use firehose_kit_domain::util::persist::Durability;

/// One action: reads its input, changes or reads the state (persisting what it changes), answers.
type Handler = json::Handler<Kinesis, State, Input>;

/// Every action the emulator serves, by name.
const ACTIONS: &[(&str, Handler)] = &[
    ("CreateStream", handlers::create_stream),
    ("DeleteStream", handlers::delete_stream),
    ("DescribeStream", handlers::describe_stream),
    ("DescribeStreamSummary", handlers::describe_stream_summary),
    ("ListStreams", handlers::list_streams),
    ("ListShards", handlers::list_shards),
    ("PutRecord", records::put_record),
    ("PutRecords", records::put_records),
    ("GetShardIterator", records::get_shard_iterator),
    ("GetRecords", records::get_records),
    ("AddTagsToStream", handlers::add_tags),
    ("TagResource", handlers::add_tags),
    ("RemoveTagsFromStream", handlers::remove_tags),
    ("UntagResource", handlers::remove_tags),
    ("ListTagsForStream", handlers::list_tags),
    ("ListTagsForResource", handlers::list_tags),
    ("IncreaseStreamRetentionPeriod", handlers::retention),
    ("DecreaseStreamRetentionPeriod", handlers::retention),
    ("DescribeLimits", handlers::describe_limits),
];

/// Actions AWS has that the emulator refuses, with why.
const REFUSED: &[(&str, &str)] = &[
    ("UpdateShardCount", "resharding (parent and child shards) is not modelled"),
    ("SplitShard", "resharding (parent and child shards) is not modelled"),
    ("MergeShards", "resharding (parent and child shards) is not modelled"),
    ("UpdateStreamMode", "switching a stream between PROVISIONED and ON_DEMAND is not modelled"),
    ("StartStreamEncryption", "server-side encryption of data streams is not modelled"),
    ("RegisterStreamConsumer", "enhanced fan-out consumers are not modelled"),
    ("SubscribeToShard", "enhanced fan-out consumers are not modelled"),
];

/// Settings of the Kinesis part of the emulator.
#[derive(Debug, Clone)]
pub struct KinesisConfig {
    pub dir: PathBuf,
    pub account_id: String,
    pub create_delay: Duration,
    pub delete_delay: Duration,
    /// `--quota`: the per-shard read and write limits are enforced.
    pub quota: bool,
    pub durability: Durability,
}

/// The emulator's Kinesis Data Streams.
pub struct Kinesis {
    store: Store,
    config: KinesisConfig,
    state: Mutex<State>,
}

/// What any action may take (the union of their members).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Input {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    shard_count: Option<i64>,
    stream_mode_details: Option<ModeDetails>,
    tags: Option<std::collections::BTreeMap<String, String>>,
    tag_keys: Option<Vec<String>>,
    limit: Option<i64>,
    max_results: Option<i64>,
    exclusive_start_shard_id: Option<String>,
    exclusive_start_stream_name: Option<String>,
    exclusive_start_tag_key: Option<String>,
    next_token: Option<String>,
    shard_id: Option<String>,
    shard_iterator_type: Option<String>,
    starting_sequence_number: Option<String>,
    timestamp: Option<f64>,
    shard_iterator: Option<String>,
    data: Option<String>,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
    records: Option<Vec<RecordInput>>,
    retention_period_hours: Option<i64>,
    /// The action's name (set by [`Kinesis::handle`], for the actions that share a handler).
    #[serde(skip)]
    action: &'static str,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ModeDetails {
    stream_mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordInput {
    data: Option<String>,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
}

/// Why Firehose could not read a shard.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadFailure {
    /// The stream (or that incarnation of it) is gone.
    NotFound,
    /// The shard's read limits are used up for now (`--quota`).
    Throttled,
    /// The emulator's own storage failed.
    Storage(String),
}

/// Records read for Firehose from one shard.
pub struct Batch {
    pub records: Vec<Stored>,
    /// Where the next read starts.
    pub next: u64,
    /// How far behind the newest record the reader is after this read.
    pub millis_behind: i64,
}

/// A source stream as Firehose sees it when it starts reading.
pub struct Source {
    pub incarnation: String,
    /// Per shard, the number of the next record (LATEST).
    pub latest: Vec<u64>,
}

/// `region/name` of a stream ARN (`arn:<partition>:kinesis:<region>:<account>:stream/<name>`).
pub fn key_of_arn(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, _partition, service, region, _account, resource) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let name = resource.strip_prefix("stream/")?;
    (arn_ == "arn" && service == "kinesis" && !region.is_empty() && !name.is_empty())
        .then(|| format!("{region}/{name}"))
}

impl Kinesis {
    pub fn open(config: KinesisConfig) -> std::io::Result<Self> {
        let (store, state) = Store::open(&config.dir, config.durability)?;
        Ok(Kinesis { store, config, state: Mutex::new(state) })
    }

    /// Serves one Kinesis call; `content_type` refuses CBOR plainly.
    pub fn handle(&self, operation: &str, body: &[u8], region: &str, content_type: Option<&str>) -> Response<Bytes> {
        if content_type.is_some_and(|ct| ct.starts_with("application/x-amz-cbor")) {
            return json::response(Err(ApiError::serialization(
                "the firehose-kit emulator speaks JSON to Kinesis clients, not CBOR: turn CBOR off in the Java SDK (v2: -Daws.cborEnabled=false or AWS_CBOR_ENABLED=false; v1: AWS_CBOR_DISABLE=1 or -Dcom.amazonaws.sdk.disableCbor)",
            )));
        }
        if let Some((_, why)) = REFUSED.iter().find(|(name, _)| *name == operation) {
            return json::response(Err(ApiError::new(
                "UnknownOperationException",
                format!("{operation} is not modelled by the firehose-kit emulator: {why}"),
            )));
        }
        json::dispatch(self, &self.state, ACTIONS, (operation, body, region), |input, name| input.action = name)
    }

    fn lifecycle(&self, meta: &StreamMeta, now: i64) -> Lifecycle {
        meta.lifecycle(now, self.config.create_delay.as_millis() as i64, self.config.delete_delay.as_millis() as i64)
    }

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::new(
            "ResourceNotFoundException",
            format!("Stream {name} under account {} not found.", self.config.account_id),
        )
    }

    fn save(&self, state: &State) -> Result<(), ApiError> {
        self.store.save_meta(state).map_err(ApiError::internal)
    }

    /// Whether any data stream exists (else there is nothing to sweep, and no Firehose stream has a source).
    pub fn has_streams(&self) -> bool {
        !crate::lock(&self.state).streams.is_empty()
    }

    /// Forgets streams whose DELETING period is over (their files too), and compacts shard files whose
    /// records are mostly past the retention.
    pub fn sweep(&self) {
        let now = now_ms();
        let mut state = crate::lock(&self.state);
        let gone: Vec<String> = state
            .streams
            .iter()
            .filter(|(_, m)| self.lifecycle(m, now) == Lifecycle::Gone)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &gone {
            if let Some(meta) = state.streams.remove(key) {
                self.store.remove(&meta);
            }
        }
        let mut changed = !gone.is_empty();
        for meta in state.streams.values_mut() {
            let retention = meta.retention_ms();
            for (i, shard) in meta.shards.iter_mut().enumerate() {
                shard.trim(retention, now);
                if Store::needs_compaction(shard) && meta.first_kept[i] != shard.first {
                    meta.first_kept[i] = shard.first;
                    changed = true;
                }
            }
        }
        // Where each shard's numbering continues is saved before any file loses its trimmed records.
        if changed && let Err(e) = self.save(&state) {
            tracing::error!("cannot persist Kinesis streams: {}", e.message);
            return;
        }
        for meta in state.streams.values_mut() {
            let mut shards = std::mem::take(&mut meta.shards);
            for (i, shard) in shards.iter_mut().enumerate() {
                if let Err(e) = self.store.compact(meta, i, shard) {
                    tracing::warn!(stream = %meta.name, shard = i, "cannot compact: {e}");
                }
            }
            meta.shards = shards;
        }
    }

    /// The stream at `arn` if it is ACTIVE: its incarnation and where each shard ends now (Firehose starts
    /// reading a new source at LATEST).
    pub fn source(&self, arn: &str) -> Option<Source> {
        let key = key_of_arn(arn)?;
        let state = crate::lock(&self.state);
        let meta = state.streams.get(&key).filter(|m| m.arn == arn)?;
        if self.lifecycle(meta, now_ms()) != Lifecycle::Is(firehose_kit_domain::types::StreamStatus::Active) {
            return None;
        }
        Some(Source { incarnation: meta.incarnation.clone(), latest: meta.shards.iter().map(|s| s.next()).collect() })
    }

    /// Reads one shard of the stream at `arn` from record `from` for Firehose (as GetRecords with the largest
    /// limit), counting against the shard's read limits.
    pub fn read_shard(&self, arn: &str, incarnation: &str, shard: usize, from: u64) -> Result<Batch, ReadFailure> {
        let now = now_ms();
        let key = key_of_arn(arn).ok_or(ReadFailure::NotFound)?;
        let mut state = crate::lock(&self.state);
        let meta = state.streams.get_mut(&key).filter(|m| m.incarnation == incarnation).ok_or(ReadFailure::NotFound)?;
        if matches!(
            self.lifecycle(meta, now),
            Lifecycle::Gone | Lifecycle::Is(firehose_kit_domain::types::StreamStatus::Deleting)
        ) {
            return Err(ReadFailure::NotFound);
        }
        if shard >= meta.shards.len() {
            return Err(ReadFailure::NotFound);
        }
        self.read(meta, shard, from, MAX_GET_RECORDS, now)
    }

    /// Reads up to `limit` records (and [`MAX_GET_RECORDS_BYTES`]) of an existing shard from record `from` (or the
    /// oldest kept, if `from` was trimmed), counting against the shard's read limits under `--quota`: what
    /// GetRecords and Firehose's reading both do.
    fn read(
        &self,
        meta: &mut StreamMeta,
        shard: usize,
        from: u64,
        limit: usize,
        now: i64,
    ) -> Result<Batch, ReadFailure> {
        let retention = meta.retention_ms();
        let s = &mut meta.shards[shard];
        s.trim(retention, now);
        let from = s.clamp(from);
        let entries = s.entries_from(from, limit, MAX_GET_RECORDS_BYTES);
        let bytes: u64 = entries.iter().map(|e| e.len as u64).sum();
        if self.config.quota && !(s.read_calls.take(1.0, now) && s.read_bytes.take_over(bytes as f64, now)) {
            return Err(ReadFailure::Throttled);
        }
        let next = from + entries.len() as u64;
        let millis_behind = s.millis_behind(next, now);
        let records = self.store.read(meta, shard, &entries).map_err(|e| ReadFailure::Storage(e.to_string()))?;
        Ok(Batch { records, next, millis_behind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn call(k: &Kinesis, op: &str, body: Value) -> Value {
        let r = k.handle(op, body.to_string().as_bytes(), "us-east-1", None);
        assert_eq!(r.status(), 200, "{op}: {}", String::from_utf8_lossy(r.body()));
        serde_json::from_slice(r.body()).unwrap()
    }

    fn open(dir: &std::path::Path) -> Kinesis {
        Kinesis::open(KinesisConfig {
            dir: dir.into(),
            account_id: "000000000000".into(),
            create_delay: Duration::ZERO,
            delete_delay: Duration::ZERO,
            quota: false,
            durability: Durability::Process,
        })
        .unwrap()
    }

    /// Records past the retention are compacted out of their shard's file; after a restart the shard keeps
    /// numbering where it was, so no sequence number is handed out twice.
    #[test]
    fn numbering_survives_compaction_and_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let k = open(dir.path());
        call(&k, "CreateStream", json!({"StreamName": "s", "ShardCount": 1}));
        let data = base64_simd::STANDARD.encode_to_string(vec![b'x'; 200 * 1024]);
        let mut last = String::new();
        for _ in 0..8 {
            let out = call(&k, "PutRecord", json!({"StreamName": "s", "PartitionKey": "k", "Data": data}));
            last = out["SequenceNumber"].as_str().unwrap().to_string();
        }
        // Every record ages past the 24 h retention; the sweep trims and compacts the file to nothing.
        for e in k.state.lock().unwrap().streams.values_mut().next().unwrap().shards[0].index.iter_mut() {
            e.arrival_ms -= 25 * 3_600_000;
        }
        k.sweep();
        let file = dir.path().join("records");
        let sizes: Vec<u64> = walk(&file).iter().map(|p| std::fs::metadata(p).unwrap().len()).collect();
        assert_eq!(sizes, [0], "compacted");
        drop(k);
        let k = open(dir.path());
        let next = call(&k, "PutRecord", json!({"StreamName": "s", "PartitionKey": "k", "Data": "eA=="}));
        assert!(next["SequenceNumber"].as_str().unwrap() > last.as_str(), "{next} after {last}");
        let it = call(
            &k,
            "GetShardIterator",
            json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}),
        );
        let got = call(&k, "GetRecords", json!({"ShardIterator": it["ShardIterator"]}));
        assert_eq!(got["Records"].as_array().unwrap().len(), 1, "only the new record is kept");
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
        }
        out
    }
}
