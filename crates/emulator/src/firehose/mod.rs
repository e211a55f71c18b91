//! Amazon Data Firehose in the emulator, split by concern:
//!
//! | module | concern |
//! |---|---|
//! | [`wire`] | JSON 1.1 errors and typed responses |
//! | [`model`] | request documents, persisted stream state, the typed `DeliveryStreamDescription` |
//! | [`validate`] | model constraints and semantic rules (through [`firehose_kit_domain`]), and what the emulator refuses |
//! | [`control`] | the control plane: create, describe, list, update, delete, tags, server-side encryption; the CREATING → ACTIVE → DELETING lifecycle |
//! | [`convert`] | record format conversion at delivery: JSON records into the Glue table's columns, written as Parquet |
//! | [`data`] | the data plane: PutRecord and PutRecordBatch with quotas and injected faults |
//! | [`engine`], [`journal`] | buffering, delivery to S3 and the durable record journal |
//! | [`gate`] | what a delivery attempt must pass (role, trust, bucket, policies), injected delivery faults, error logging to CloudWatch Logs |
//! | [`quota`] | throughput quotas and fault injection |
//! | [`source`] | a Kinesis data stream as the source: reading each shard, de-aggregation, durable read positions |
//!
//! Streams are keyed by region and name and persist in `<data-dir>/firehose/streams.json`, written only by calls
//! that change them (read-only calls never write); each stream's journal lives in
//! `<data-dir>/firehose/journal/<name>-<incarnation>/`.

pub mod control;
pub mod convert;
pub mod data;
pub mod engine;
pub mod gate;
pub mod journal;
pub mod model;
pub mod plan;
pub mod quota;
pub mod source;
pub mod storage;
pub mod target;
pub mod validate;

#[cfg(test)]
mod sweep;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Response;

use self::engine::{Context, Pipeline, lock};
use self::model::{Lifecycle, StreamState};
use self::plan::Plan;
use self::quota::{Faults, Limiter, Quota};
use super::iam::Iam;
use super::logs::Logs;
use super::s3::Store;
use super::s3::store::now_ms;
use crate::json::ApiError;
use firehose_kit_domain::types::StreamStatus;
use firehose_kit_domain::util::persist;

/// Settings of the Firehose part of the emulator.
#[derive(Debug, Clone)]
pub struct FirehoseConfig {
    pub dir: PathBuf,
    pub account_id: String,
    pub create_delay: Duration,
    pub delete_delay: Duration,
    pub quota: Option<Quota>,
    pub fail_rate: f64,
    pub seed: Option<u64>,
    /// Buffered record bytes kept in memory across all streams (see [`engine::MemoryBudget`]).
    pub memory_limit: usize,
    /// `--fail-delivery`: delivery attempts fail with this code (with a probability).
    pub fail_delivery: Option<gate::FailDelivery>,
    /// How long undeliverable data is retried before it is dropped (24 h on AWS).
    pub retry_horizon: Duration,
    /// Active partitions per partitioned stream (AWS: 500).
    pub partition_limit: usize,
    /// `--speed`: buffering intervals and retry backoff run this many times faster (1 = AWS timing).
    pub speed: f64,
    /// `--fsync`: acknowledged records and delivery progress survive a machine crash.
    pub durability: firehose_kit_domain::util::persist::Durability,
}

/// Settings for unit tests: AWS timing, no quota, no faults.
#[cfg(test)]
pub fn test_config() -> FirehoseConfig {
    FirehoseConfig {
        dir: PathBuf::new(),
        account_id: "000000000000".into(),
        create_delay: Duration::ZERO,
        delete_delay: Duration::ZERO,
        quota: None,
        fail_rate: 0.0,
        seed: None,
        memory_limit: 1 << 20,
        fail_delivery: None,
        retry_horizon: firehose_kit_domain::failures::RETRY_HORIZON,
        partition_limit: firehose_kit_domain::partitioning::DEFAULT_PARTITION_LIMIT,
        speed: 1.0,
        durability: Default::default(),
    }
}

struct Stream {
    state: StreamState,
    /// The stream's lanes, or why its stored configuration cannot run (it then accepts nothing, and its journal
    /// waits for an UpdateDestination that can).
    pipeline: Result<Arc<Pipeline>, String>,
    /// The reader of a stream with a Kinesis source.
    reader: Option<Arc<source::Reader>>,
}

impl Stream {
    fn pipeline(&self) -> Option<&Arc<Pipeline>> {
        self.pipeline.as_ref().ok()
    }
}

/// The Firehose service of the emulator.
pub struct Firehose {
    config: FirehoseConfig,
    iam: Arc<Iam>,
    streams: Mutex<BTreeMap<String, Stream>>,
    faults: Mutex<Faults>,
    /// What every stream's lanes share: the store, the delivery checks and failure counts, Lambda and Glue, the
    /// memory budget.
    ctx: Arc<Context>,
    kinesis: Arc<crate::kinesis::Kinesis>,
}

/// Removes journal directories no stream owns (a deleted stream's, when its removal failed or was cut short).
fn remove_orphans(journals: &std::path::Path, streams: &BTreeMap<String, Stream>) {
    let owned: std::collections::BTreeSet<String> =
        streams.values().map(|s| format!("{}-{}", s.state.name, s.state.incarnation)).collect();
    let Ok(entries) = std::fs::read_dir(journals) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && !owned.contains(&name) {
            tracing::info!("removing the journal of a deleted stream: {}", entry.path().display());
            engine::remove_dir(&entry.path());
        }
    }
}

fn stream_key(region: &str, name: &str) -> String {
    format!("{region}/{name}")
}

fn not_found(name: &str, account: &str) -> ApiError {
    ApiError::new("ResourceNotFoundException", format!("Firehose {name} under account {account} not found."))
}

impl Stream {
    /// The stream was deleted (or replaced): its lanes deliver what they hold, then their journals go.
    fn retire(&self) {
        if let Some(p) = self.pipeline() {
            p.retire();
        }
    }
}

impl Firehose {
    /// Loads persisted streams and starts their lanes (re-buffering anything acknowledged but undelivered).
    pub fn open(
        config: FirehoseConfig,
        store: Arc<Store>,
        iam: Arc<Iam>,
        logs: Arc<Logs>,
        lambda: Arc<crate::lambda::Lambda>,
        kinesis: Arc<crate::kinesis::Kinesis>,
        glue: Arc<crate::glue::Glue>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(config.dir.join("journal"))?;
        engine::sweep_removed(&config.dir.join("journal"));
        let states: Vec<StreamState> = persist::read_json(&config.dir.join("streams.json"))?.unwrap_or_default();
        let faults = Mutex::new(Faults::new(config.fail_rate, config.seed));
        let gate = gate::Gate::new(iam.clone(), logs, config.account_id.clone(), config.fail_delivery, config.seed);
        let ctx = Arc::new(Context {
            store,
            gate: Arc::new(gate),
            lambda: Some(lambda),
            glue: Some(glue),
            budget: engine::MemoryBudget::new(config.memory_limit),
            durability: config.durability,
            speed: config.speed,
            horizon: config.retry_horizon,
        });
        let fh = Firehose { config, iam, streams: Mutex::new(BTreeMap::new()), faults, ctx, kinesis };
        let mut streams = BTreeMap::new();
        for state in states {
            let pipeline = fh.start_pipeline(&state)?;
            if let Err(why) = &pipeline {
                tracing::warn!(stream = %state.name, "the stream accepts no records until UpdateDestination gives it a configuration this emulator can run: {why}");
            }
            let reader = match (&state.source, &pipeline) {
                (Some(source), Ok(p)) => Some(Arc::new(source::Reader::open(
                    fh.journal_dir(&state),
                    source,
                    &fh.kinesis,
                    p,
                    fh.config.durability,
                )?)),
                _ => None,
            };
            streams.insert(stream_key(&state.region, &state.name), Stream { state, pipeline, reader });
        }
        remove_orphans(&fh.config.dir.join("journal"), &streams);
        *lock(&fh.streams) = streams;
        fh.sweep();
        Ok(fh)
    }

    fn journal_dir(&self, state: &StreamState) -> PathBuf {
        self.config.dir.join("journal").join(format!("{}-{}", state.name, state.incarnation))
    }

    /// The plan of a stored stream, or why its configuration does not read back.
    fn plan(&self, state: &StreamState) -> Result<Plan, String> {
        let (prefixes, zone) = validate::destination(&state.destination, "destination").map_err(|e| e.message)?;
        plan::plan(state, prefixes, zone, &self.config)
    }

    /// Starts a stream's lanes (re-buffering what its journals hold); `Ok(Err(why))` when its configuration does
    /// not read back, an I/O error when its journals cannot be opened.
    fn start_pipeline(&self, state: &StreamState) -> std::io::Result<Result<Arc<Pipeline>, String>> {
        let plan = match self.plan(state) {
            Ok(plan) => plan,
            Err(why) => return Ok(Err(why)),
        };
        let limiter = self.config.quota.map(Limiter::new);
        Pipeline::start(self.journal_dir(state), &plan, limiter, self.ctx.clone()).map(|p| Ok(Arc::new(p)))
    }

    /// The latest storage error of the past few minutes, as the response header announces it.
    pub fn storage_error(&self) -> Option<String> {
        self.ctx.gate.storage.recent()
    }

    /// Storage errors so far (journal appends refused, object writes failed).
    pub fn storage_errors(&self) -> u64 {
        self.ctx.gate.storage.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Delivery attempts that failed so far (each failed object is kept and retried).
    pub fn delivery_failures(&self) -> u64 {
        self.ctx.gate.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records dropped because they could not be delivered within the retry horizon.
    pub fn dropped_records(&self) -> u64 {
        self.ctx.gate.dropped_records.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Error events written to CloudWatch Logs.
    pub fn logged_errors(&self) -> u64 {
        self.ctx.gate.logged.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn save(&self, streams: &BTreeMap<String, Stream>) -> Result<(), ApiError> {
        let states: Vec<&StreamState> = streams.values().map(|s| &s.state).collect();
        persist::write_json_as(&self.config.dir.join("streams.json"), &states, self.config.durability)
            .map_err(ApiError::internal)
    }

    /// The stream's encryption status now: ENABLING and DISABLING last as long as CREATING does.
    fn encryption_status(&self, state: &StreamState) -> firehose_kit_domain::types::EncryptionStatus {
        match &state.encryption {
            Some(e) => e.status(now_ms(), self.config.create_delay.as_millis() as i64),
            None => firehose_kit_domain::types::EncryptionStatus::Disabled,
        }
    }

    fn lifecycle(&self, state: &StreamState) -> Lifecycle {
        state.lifecycle(
            now_ms(),
            self.config.create_delay.as_millis() as i64,
            self.config.delete_delay.as_millis() as i64,
        )
    }

    /// Removes streams whose DELETING period is over (from the background tick, never from a read).
    pub fn sweep(&self) {
        let mut streams = lock(&self.streams);
        let gone: Vec<String> = streams
            .iter()
            .filter(|(_, s)| self.lifecycle(&s.state) == Lifecycle::Gone)
            .map(|(k, _)| k.clone())
            .collect();
        if gone.is_empty() {
            return;
        }
        for key in gone {
            if let Some(s) = streams.remove(&key) {
                s.retire();
            }
        }
        if let Err(e) = self.save(&streams) {
            tracing::error!("cannot persist streams: {}", e.message);
        }
    }

    fn pipelines(&self) -> Vec<Arc<Pipeline>> {
        lock(&self.streams).values().filter_map(|s| s.pipeline().cloned()).collect()
    }

    /// Cuts every buffer whose interval is due (or all of them with `force`), and removes idle partitions
    /// (blocking I/O: call from a blocking thread).
    pub fn tick(&self, force: bool) {
        self.sweep();
        let now = now_ms();
        for pipeline in self.pipelines() {
            pipeline.flush_due(now, force);
        }
    }

    /// Flushes every buffer and waits (up to `timeout`) for the objects to land.
    pub async fn flush_all(self: &Arc<Self>, timeout: Duration) -> bool {
        let fh = self.clone();
        let _ = tokio::task::spawn_blocking(move || fh.tick(true)).await;
        let mut all = true;
        for pipeline in self.pipelines() {
            all &= pipeline.drain(timeout).await;
        }
        all
    }

    /// How far behind its Kinesis source a stream is, in milliseconds (`None` for Direct Put).
    pub fn source_millis_behind(&self, region: &str, name: &str) -> Option<i64> {
        let streams = lock(&self.streams);
        let reader = streams.get(&stream_key(region, name))?.reader.as_ref()?;
        Some(reader.millis_behind.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Serves one Firehose API call.
    pub async fn handle(&self, operation: &str, body: Bytes, region: &str) -> Response<Bytes> {
        let result = match operation {
            "PutRecordBatch" => self.put_record_batch(&body, region).await,
            "PutRecord" => self.put_record(&body, region).await,
            "CreateDeliveryStream" => self.create(&body, region),
            "DescribeDeliveryStream" => self.describe(&body, region),
            "ListDeliveryStreams" => self.list(&body, region),
            "DeleteDeliveryStream" => self.delete(&body, region),
            "UpdateDestination" => self.update(&body, region),
            "TagDeliveryStream" => self.tag(&body, region),
            "UntagDeliveryStream" => self.untag(&body, region),
            "ListTagsForDeliveryStream" => self.list_tags(&body, region),
            "StartDeliveryStreamEncryption" => self.start_encryption(&body, region),
            "StopDeliveryStreamEncryption" => self.stop_encryption(&body, region),
            other => Err(ApiError::new(
                "UnknownOperationException",
                format!("operation {other} is not modelled by the firehose-kit emulator"),
            )),
        };
        let mut response = crate::json::response(result);
        if operation == "DescribeDeliveryStream"
            && let Ok(input) = crate::json::input::<model::NameInput>(&body)
            && let Some(lag) = input.name.and_then(|n| self.source_millis_behind(region, &n))
            && let Ok(v) = http::HeaderValue::from_str(&lag.to_string())
        {
            response.headers_mut().insert(firehose_kit_domain::contract::SOURCE_LAG_HEADER, v);
        }
        response
    }

    /// Runs `f` on a stream that exists (not gone) without changing anything.
    fn read_stream<T>(
        &self,
        name: Option<&str>,
        region: &str,
        f: impl FnOnce(&Stream, StreamStatus) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let name = validate::stream_name(name)?;
        let streams = lock(&self.streams);
        let stream =
            streams.get(&stream_key(region, &name)).ok_or_else(|| not_found(&name, &self.config.account_id))?;
        match self.lifecycle(&stream.state) {
            Lifecycle::Is(status) => f(stream, status),
            Lifecycle::Gone => Err(not_found(&name, &self.config.account_id)),
        }
    }

    /// Runs `f` on a stream that exists, then persists the streams.
    fn write_stream<T>(
        &self,
        name: Option<&str>,
        region: &str,
        f: impl FnOnce(&mut Stream, StreamStatus) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let name = validate::stream_name(name)?;
        let mut streams = lock(&self.streams);
        let stream =
            streams.get_mut(&stream_key(region, &name)).ok_or_else(|| not_found(&name, &self.config.account_id))?;
        let status = match self.lifecycle(&stream.state) {
            Lifecycle::Is(status) => status,
            Lifecycle::Gone => return Err(not_found(&name, &self.config.account_id)),
        };
        let out = f(stream, status)?;
        self.save(&streams)?;
        Ok(out)
    }
}
