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
pub mod quota;
pub mod source;
pub mod storage;
pub mod target;
pub mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Response;

use self::engine::{Runtime, Target};
use self::model::{Lifecycle, StreamState};
use self::quota::{Faults, Limiter, Quota};
use super::iam::Iam;
use super::logs::Logs;
use super::s3::Store;
use super::s3::store::now_ms;
use crate::json::ApiError;
use firehose_kit_domain::partitioning::Partitioner;
use firehose_kit_domain::prefix::Prefixes;
use firehose_kit_domain::transform::LambdaProcessor;
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
    runtime: Arc<Runtime>,
    /// The reader of a stream with a Kinesis source.
    reader: Option<Arc<source::Reader>>,
}

/// The Firehose service of the emulator.
pub struct Firehose {
    config: FirehoseConfig,
    store: Arc<Store>,
    iam: Arc<Iam>,
    streams: Mutex<BTreeMap<String, Stream>>,
    faults: Mutex<Faults>,
    /// Delivery checks and failure counts, shared with every stream's runtime.
    gate: Arc<gate::Gate>,
    budget: Arc<engine::MemoryBudget>,
    kinesis: Arc<crate::kinesis::Kinesis>,
}

fn stream_key(region: &str, name: &str) -> String {
    format!("{region}/{name}")
}

fn not_found(name: &str, account: &str) -> ApiError {
    ApiError::new("ResourceNotFoundException", format!("Firehose {name} under account {account} not found."))
}

fn target_of(state: &StreamState, prefixes: Prefixes, zone: chrono_tz::Tz, config: &FirehoseConfig) -> Target {
    let d = &state.destination;
    // Validated at create and update; a stored configuration that no longer parses partitions nothing.
    let partitioning = d.dynamic_partitioning_enabled().then(|| {
        let partitioner = Partitioner::from_config(d.processing.as_ref()).unwrap_or_else(|e| {
            tracing::error!(stream = %state.name, "processing configuration: {e}");
            Partitioner { deaggregation: None, query: None, append_delimiter: false }
        });
        Arc::new(engine::PartitionSpec {
            partitioner,
            error_prefix: prefixes.error.clone(),
            limit: config.partition_limit,
        })
    });
    let logging = d.cloud_watch_logging_options.as_ref().filter(|o| o["Enabled"] == serde_json::Value::Bool(true));
    let size_bytes = d.size_in_mbs as usize * 1024 * 1024;
    let interval_ms = (d.interval_in_seconds as f64 * 1000.0 / config.speed) as i64;
    let lambda = LambdaProcessor::from_config(d.processing.as_ref()).unwrap_or_else(|e| {
        tracing::error!(stream = %state.name, "processing configuration: {e}");
        None
    });
    // A transforming stream buffers for the function first; the destination's hints apply after it.
    let (stage_size, stage_interval) = match &lambda {
        Some(p) => {
            ((p.buffer_size_mb * 1024.0 * 1024.0) as usize, (p.buffer_interval_s as f64 * 1000.0 / config.speed) as i64)
        }
        None => (size_bytes, interval_ms),
    };
    let processing = lambda.map(|processor| {
        Arc::new(target::Processing {
            role_arn: processor.role_arn.clone().unwrap_or_else(|| d.role_arn.clone()),
            processor,
            error_prefix: prefixes.error_output(firehose_kit_domain::transform::ERROR_OUTPUT_TYPE),
            size_bytes,
            interval_ms,
        })
    });
    let conversion = firehose_kit_domain::conversion::parse(d.data_format_conversion.as_ref())
        .unwrap_or_else(|e| {
            tracing::error!(stream = %state.name, "data format conversion: {e}");
            None
        })
        .map(|conversion| {
            Arc::new(target::ConversionTarget {
                conversion,
                error_prefix: prefixes.error_output(firehose_kit_domain::conversion::ERROR_OUTPUT_TYPE),
            })
        });
    let extension = firehose_kit_domain::types::delivered_extension(
        &d.compression,
        d.file_extension.as_deref(),
        conversion.is_some(),
    );
    Target {
        stream: state.name.clone(),
        stream_arn: state.arn.clone(),
        region: state.region.clone(),
        role_arn: d.role_arn.clone(),
        logging: logging.map(|o| {
            let name = |k: &str| o[k].as_str().unwrap_or_default().to_string();
            (name("LogGroupName"), name("LogStreamName"))
        }),
        version: state.version,
        bucket: d.bucket().to_string(),
        prefix: prefixes.data,
        zone,
        compression: d.compression.clone(),
        extension,
        size_bytes: stage_size,
        interval_ms: stage_interval,
        partitioning,
        keys: None,
        output_type: None,
        processing,
        conversion,
    }
}

impl Firehose {
    /// Loads persisted streams and starts their runtimes (re-buffering anything acknowledged but undelivered).
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
        let states: Vec<StreamState> = persist::read_json(&config.dir.join("streams.json"))?.unwrap_or_default();
        let faults = Mutex::new(Faults::new(config.fail_rate, config.seed));
        let budget = Arc::new(engine::MemoryBudget::new(config.memory_limit));
        let mut gate = gate::Gate::new(
            iam.clone(),
            logs,
            config.account_id.clone(),
            config.fail_delivery,
            config.seed,
            config.retry_horizon,
            config.speed,
        );
        gate.durability = config.durability;
        gate.lambda = Some(lambda);
        gate.glue = Some(glue);
        let gate = Arc::new(gate);
        let fh = Firehose { config, store, iam, streams: Mutex::new(BTreeMap::new()), faults, gate, budget, kinesis };
        let mut streams = BTreeMap::new();
        for state in states {
            let (prefixes, zone) = validate::destination(&state.destination, "destination")
                .map_err(|e| std::io::Error::other(format!("stream {} in streams.json: {}", state.name, e.message)))?;
            let runtime = fh.start_runtime(&state, prefixes, zone)?;
            let reader = match &state.source {
                Some(source) => Some(Arc::new(source::Reader::open(
                    fh.journal_dir(&state),
                    source,
                    &fh.kinesis,
                    fh.config.durability,
                )?)),
                None => None,
            };
            streams.insert(stream_key(&state.region, &state.name), Stream { state, runtime, reader });
        }
        *fh.streams.lock().expect("streams lock") = streams;
        fh.sweep();
        Ok(fh)
    }

    fn journal_dir(&self, state: &StreamState) -> PathBuf {
        self.config.dir.join("journal").join(format!("{}-{}", state.name, state.incarnation))
    }

    fn start_runtime(
        &self,
        state: &StreamState,
        prefixes: Prefixes,
        zone: chrono_tz::Tz,
    ) -> std::io::Result<Arc<Runtime>> {
        let limiter = self.config.quota.map(Limiter::new);
        Runtime::start(
            self.journal_dir(state),
            target_of(state, prefixes, zone, &self.config),
            limiter,
            self.store.clone(),
            self.gate.clone(),
            self.budget.clone(),
        )
    }

    /// The latest storage error of the past few minutes, as the response header announces it.
    pub fn storage_error(&self) -> Option<String> {
        self.gate.storage.recent()
    }

    /// Storage errors so far (journal appends refused, object writes failed).
    pub fn storage_errors(&self) -> u64 {
        self.gate.storage.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Delivery attempts that failed so far (each failed object is kept and retried).
    pub fn delivery_failures(&self) -> u64 {
        self.gate.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records dropped because they could not be delivered within the retry horizon.
    pub fn dropped_records(&self) -> u64 {
        self.gate.dropped_records.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Error events written to CloudWatch Logs.
    pub fn logged_errors(&self) -> u64 {
        self.gate.logged.load(std::sync::atomic::Ordering::Relaxed)
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
        let mut streams = self.streams.lock().expect("streams lock");
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
                s.runtime.retire();
            }
        }
        if let Err(e) = self.save(&streams) {
            tracing::error!("cannot persist streams: {}", e.message);
        }
    }

    /// Cuts every buffer whose interval is due (or all of them with `force`).
    pub fn tick(&self, force: bool) {
        self.sweep();
        let runtimes: Vec<Arc<Runtime>> =
            self.streams.lock().expect("streams lock").values().map(|s| s.runtime.clone()).collect();
        let now = now_ms();
        for rt in runtimes {
            rt.flush_due(now, force);
        }
    }

    /// Flushes every buffer and waits (up to `timeout`) for the objects to land.
    pub async fn flush_all(&self, timeout: Duration) -> bool {
        self.tick(true);
        let runtimes: Vec<Arc<Runtime>> =
            self.streams.lock().expect("streams lock").values().map(|s| s.runtime.clone()).collect();
        let mut all = true;
        for rt in runtimes {
            all &= rt.drain(timeout).await;
        }
        all
    }

    /// How far behind its Kinesis source a stream is, in milliseconds (`None` for Direct Put).
    pub fn source_millis_behind(&self, region: &str, name: &str) -> Option<i64> {
        let streams = self.streams.lock().expect("streams lock");
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
        let streams = self.streams.lock().expect("streams lock");
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
        let mut streams = self.streams.lock().expect("streams lock");
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
