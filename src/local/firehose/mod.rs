//! Amazon Data Firehose in the emulator: the JSON 1.1 API (`X-Amz-Target: Firehose_20150804.<Operation>`),
//! its validation and error shapes, the CREATING → ACTIVE → DELETING lifecycle, quotas and injected faults.
//! The data plane (journal, buffers, delivery) lives in [`engine`].
//!
//! Streams are keyed by region and name and persist in `<data-dir>/firehose/streams.json`; each stream's
//! journal lives in `<data-dir>/firehose/journal/<name>-<incarnation>/`.

pub mod engine;
pub mod journal;
pub mod model;
pub mod prefix;
pub mod quota;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use self::engine::{Runtime, Target};
use self::model::{CreateInput, DESTINATION_ID, Destination, DestinationInput, Status, StreamState, Tag, UpdateInput};
use self::quota::{Faults, Limiter, Quota, Refusal};
use super::iam::Iam;
use super::persist;
use super::s3::Store;
use super::s3::store::now_ms;

/// Largest record: 1,000 KiB before base64 (PutRecord / PutRecordBatch `Data`).
pub const MAX_RECORD_BYTES: usize = 1_024_000;
/// Most records in one PutRecordBatch.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Most data in one PutRecordBatch: 4 MiB.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Most tags on one stream.
const MAX_TAGS: usize = 50;

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
}

/// An API error: `{"__type": code, "message": ...}` with its HTTP status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        let status = match code {
            "ServiceUnavailableException" => StatusCode::SERVICE_UNAVAILABLE,
            "InternalFailure" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError { status, code, message: message.into() }
    }

    fn invalid(message: impl Into<String>) -> Self {
        ApiError::new("InvalidArgumentException", message)
    }

    /// A model-constraint violation, worded as AWS's front end words them.
    fn validation(message: impl Into<String>) -> Self {
        ApiError::new("ValidationException", format!("1 validation error detected: {}", message.into()))
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::new("InternalFailure", format!("emulator storage error: {e}"))
    }
}

struct Stream {
    state: StreamState,
    runtime: Arc<Runtime>,
}

/// The Firehose service of the emulator.
pub struct Firehose {
    config: FirehoseConfig,
    store: Arc<Store>,
    iam: Arc<Iam>,
    streams: Mutex<BTreeMap<String, Stream>>,
    faults: Mutex<Faults>,
}

fn stream_key(region: &str, name: &str) -> String {
    format!("{region}/{name}")
}

fn validate_name(name: Option<&str>, field: &str) -> Result<String, ApiError> {
    let name = name.ok_or_else(|| {
        ApiError::validation(format!("Value null at '{field}' failed to satisfy constraint: Member must not be null"))
    })?;
    let ok = (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        return Err(ApiError::validation(format!(
            "Value '{name}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 64"
        )));
    }
    Ok(name.to_string())
}

fn not_found(name: &str, account: &str) -> ApiError {
    ApiError::new("ResourceNotFoundException", format!("Firehose {name} under account {account} not found."))
}

fn validate_hints(size: i64, interval: i64, path: &str) -> Result<(), ApiError> {
    if !(1..=128).contains(&size) {
        return Err(ApiError::validation(format!(
            "Value '{size}' at '{path}.bufferingHints.sizeInMBs' failed to satisfy constraint: Member must have value {} 128",
            if size < 1 { "greater than or equal to 1 and less than or equal to" } else { "less than or equal to" }
        )));
    }
    if !(0..=900).contains(&interval) {
        return Err(ApiError::validation(format!(
            "Value '{interval}' at '{path}.bufferingHints.intervalInSeconds' failed to satisfy constraint: Member must have value greater than or equal to 0 and less than or equal to 900"
        )));
    }
    Ok(())
}

fn validate_compression(c: &str) -> Result<(), ApiError> {
    match c {
        "UNCOMPRESSED" | "GZIP" => Ok(()),
        "ZIP" | "Snappy" | "HADOOP_SNAPPY" => Err(ApiError::invalid(format!(
            "CompressionFormat {c} is valid in AWS but not modelled by the firehose-kit emulator; use UNCOMPRESSED or GZIP"
        ))),
        other => Err(ApiError::validation(format!(
            "Value '{other}' at 'compressionFormat' failed to satisfy constraint: Member must satisfy enum value set: [UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY]"
        ))),
    }
}

fn validate_destination(d: &Destination, path: &str) -> Result<prefix::Prefix, ApiError> {
    validate_hints(d.size_in_mbs, d.interval_in_seconds, path)?;
    validate_compression(&d.compression)?;
    if !d.bucket_arn.starts_with("arn:") || !d.bucket_arn.contains(":s3:::") || d.bucket().is_empty() {
        return Err(ApiError::validation(format!(
            "Value '{}' at '{path}.bucketARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:.*:s3:::[\\w\\.\\-]{{1,255}}",
            d.bucket_arn
        )));
    }
    if !d.role_arn.starts_with("arn:") || !d.role_arn.contains(":iam::") || !d.role_arn.contains(":role/") {
        return Err(ApiError::validation(format!(
            "Value '{}' at '{path}.roleARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:.*:iam::\\d{{12}}:role/[a-zA-Z_0-9+=,.@\\-_/]+",
            d.role_arn
        )));
    }
    if let Some(ext) = &d.file_extension {
        let ok = ext.is_empty()
            || (ext.starts_with('.')
                && ext.len() <= 128
                && ext.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "!-_.*'()".contains(c)));
        if !ok {
            return Err(ApiError::validation(format!(
                "Value '{ext}' at '{path}.fileExtension' failed to satisfy constraint: Member must satisfy regular expression pattern: ^$|\\.[0-9a-z!\\-_.*'()]+"
            )));
        }
    }
    if let Some(tz) = &d.custom_time_zone
        && !tz.is_empty()
        && tz != "UTC"
    {
        return Err(ApiError::invalid(format!(
            "CustomTimeZone {tz} is not modelled by the firehose-kit emulator; only UTC is"
        )));
    }
    if d.dynamic_partitioning.as_ref().is_some_and(|v| v["Enabled"] == json!(true)) {
        return Err(ApiError::invalid("Dynamic partitioning is not modelled by the firehose-kit emulator"));
    }
    prefix::validate(d.prefix.as_deref(), d.error_output_prefix.as_deref()).map_err(ApiError::invalid)
}

fn destination_from(input: DestinationInput, extended: bool, path: &str) -> Result<Destination, ApiError> {
    let missing = |member: &str| {
        ApiError::validation(format!(
            "Value null at '{path}.{member}' failed to satisfy constraint: Member must not be null"
        ))
    };
    let hints = input.buffering_hints.unwrap_or_default();
    if hints.size_in_mbs.is_some() != hints.interval_in_seconds.is_some() {
        return Err(ApiError::invalid(
            "BufferingHints: if you specify SizeInMBs or IntervalInSeconds, you must specify both",
        ));
    }
    Ok(Destination {
        extended,
        role_arn: input.role_arn.ok_or_else(|| missing("roleARN"))?,
        bucket_arn: input.bucket_arn.ok_or_else(|| missing("bucketARN"))?,
        prefix: input.prefix.filter(|p| !p.is_empty()),
        error_output_prefix: input.error_output_prefix.filter(|p| !p.is_empty()),
        size_in_mbs: hints.size_in_mbs.unwrap_or(5),
        interval_in_seconds: hints.interval_in_seconds.unwrap_or(300),
        compression: input.compression_format.unwrap_or_else(|| "UNCOMPRESSED".into()),
        file_extension: input.file_extension,
        custom_time_zone: input.custom_time_zone,
        encryption: input.encryption_configuration,
        cloud_watch_logging_options: input.cloud_watch_logging_options,
        processing: input.processing_configuration,
        data_format_conversion: input.data_format_conversion_configuration,
        dynamic_partitioning: input.dynamic_partitioning_configuration,
        s3_backup_mode: input.s3_backup_mode,
    })
}

/// Applies an UpdateDestination document to a destination.
fn merge_update(mut d: Destination, u: DestinationInput) -> Result<Destination, ApiError> {
    if let Some(v) = u.role_arn {
        d.role_arn = v;
    }
    if let Some(v) = u.bucket_arn {
        d.bucket_arn = v;
    }
    if let Some(v) = u.prefix {
        d.prefix = Some(v).filter(|p| !p.is_empty());
    }
    if let Some(v) = u.error_output_prefix {
        d.error_output_prefix = Some(v).filter(|p| !p.is_empty());
    }
    if let Some(h) = u.buffering_hints {
        d.size_in_mbs = h.size_in_mbs.unwrap_or(d.size_in_mbs);
        d.interval_in_seconds = h.interval_in_seconds.unwrap_or(d.interval_in_seconds);
    }
    if let Some(v) = u.compression_format {
        d.compression = v;
    }
    if let Some(v) = u.file_extension {
        d.file_extension = Some(v);
    }
    if let Some(v) = u.custom_time_zone {
        d.custom_time_zone = Some(v);
    }
    if let Some(v) = u.encryption_configuration {
        d.encryption = Some(v);
    }
    if let Some(v) = u.cloud_watch_logging_options {
        d.cloud_watch_logging_options = Some(v);
    }
    if let Some(v) = u.processing_configuration {
        d.processing = Some(v);
    }
    if let Some(v) = u.data_format_conversion_configuration {
        d.data_format_conversion = Some(v);
    }
    if let Some(v) = u.dynamic_partitioning_configuration {
        d.dynamic_partitioning = Some(v);
    }
    if let Some(v) = u.s3_backup_mode {
        d.s3_backup_mode = Some(v);
    }
    Ok(d)
}

fn target_of(state: &StreamState, prefix: prefix::Prefix) -> Target {
    let d = &state.destination;
    Target {
        stream: state.name.clone(),
        version: state.version,
        bucket: d.bucket().to_string(),
        prefix,
        gzip: d.compression == "GZIP",
        extension: d.extension(),
        size_bytes: d.size_in_mbs as usize * 1024 * 1024,
        interval_ms: d.interval_in_seconds * 1000,
    }
}

fn validate_tags(tags: &[Tag]) -> Result<(), ApiError> {
    for t in tags {
        let value = t.value.as_deref().unwrap_or("");
        if t.key.is_empty() || t.key.len() > 128 || t.key.starts_with("aws:") || value.len() > 256 {
            return Err(ApiError::invalid(format!(
                "Tag key `{}` is invalid: keys are 1-128 characters and may not start with aws:, values at most 256",
                t.key
            )));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct PutRecordBatchInput<'a> {
    #[serde(rename = "DeliveryStreamName", borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(rename = "Records", borrow, default)]
    records: Vec<RecordInput<'a>>,
}

#[derive(Deserialize)]
struct PutRecordInput<'a> {
    #[serde(rename = "DeliveryStreamName", borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(rename = "Record", borrow)]
    record: Option<RecordInput<'a>>,
}

#[derive(Deserialize)]
struct RecordInput<'a> {
    #[serde(rename = "Data", borrow)]
    data: Cow<'a, str>,
}

fn decoded_len(b64: &str) -> usize {
    let padding = b64.bytes().rev().take_while(|&b| b == b'=').count();
    (b64.len() / 4 * 3).saturating_sub(padding)
}

impl Firehose {
    /// Loads persisted streams and starts their runtimes (re-buffering anything acknowledged but undelivered).
    pub fn open(config: FirehoseConfig, store: Arc<Store>, iam: Arc<Iam>) -> std::io::Result<Self> {
        std::fs::create_dir_all(config.dir.join("journal"))?;
        let states: Vec<StreamState> = persist::read_json(&config.dir.join("streams.json"))?.unwrap_or_default();
        let faults = Mutex::new(Faults::new(config.fail_rate, config.seed));
        let fh = Firehose { config, store, iam, streams: Mutex::new(BTreeMap::new()), faults };
        let mut streams = BTreeMap::new();
        for state in states {
            let prefix =
                prefix::validate(state.destination.prefix.as_deref(), state.destination.error_output_prefix.as_deref())
                    .map_err(std::io::Error::other)?;
            let runtime = fh.start_runtime(&state, prefix)?;
            streams.insert(stream_key(&state.region, &state.name), Stream { state, runtime });
        }
        *fh.streams.lock().expect("streams lock") = streams;
        fh.sweep();
        Ok(fh)
    }

    fn journal_dir(&self, state: &StreamState) -> PathBuf {
        self.config.dir.join("journal").join(format!("{}-{}", state.name, state.incarnation))
    }

    fn start_runtime(&self, state: &StreamState, prefix: prefix::Prefix) -> std::io::Result<Arc<Runtime>> {
        let limiter = self.config.quota.map(Limiter::new);
        Runtime::start(self.journal_dir(state), target_of(state, prefix), limiter, self.store.clone())
    }

    fn save(&self, streams: &BTreeMap<String, Stream>) -> Result<(), ApiError> {
        let states: Vec<&StreamState> = streams.values().map(|s| &s.state).collect();
        persist::write_json(&self.config.dir.join("streams.json"), &states).map_err(ApiError::internal)
    }

    fn status(&self, state: &StreamState) -> Status {
        state.status(now_ms(), self.config.create_delay.as_millis() as i64, self.config.delete_delay.as_millis() as i64)
    }

    /// Removes streams whose DELETING period is over.
    pub fn sweep(&self) {
        let mut streams = self.streams.lock().expect("streams lock");
        let gone: Vec<String> =
            streams.iter().filter(|(_, s)| self.status(&s.state) == Status::Gone).map(|(k, _)| k.clone()).collect();
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

    /// Serves one Firehose API call.
    pub async fn handle(&self, operation: &str, body: Bytes, region: &str) -> Response<Bytes> {
        let result = match operation {
            // The data plane writes its (large) answer directly; the rest builds JSON values.
            "PutRecordBatch" => self.put_record_batch(&body, region).await,
            "PutRecord" => self.put_record(&body, region).await.map(|v| v.to_string()),
            _ => match serde_json::from_slice::<Value>(if body.is_empty() { b"{}" } else { &body }) {
                Err(e) => Err(ApiError::new("SerializationException", format!("cannot parse the request body: {e}"))),
                Ok(doc) => self.control(operation, doc, region).map(|v| v.to_string()),
            },
        };
        let (status, body) = match result {
            Ok(text) => (StatusCode::OK, text),
            Err(e) => (e.status, json!({"__type": e.code, "message": e.message}).to_string()),
        };
        Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .body(Bytes::from(body))
            .expect("static response parts are valid")
    }

    fn control(&self, operation: &str, doc: Value, region: &str) -> Result<Value, ApiError> {
        match operation {
            "CreateDeliveryStream" => self.create(doc, region),
            "DescribeDeliveryStream" => self.describe(&doc, region),
            "ListDeliveryStreams" => self.list(&doc, region),
            "DeleteDeliveryStream" => self.delete(&doc, region),
            "UpdateDestination" => self.update(doc, region),
            "TagDeliveryStream" => self.tag(&doc, region),
            "UntagDeliveryStream" => self.untag(&doc, region),
            "ListTagsForDeliveryStream" => self.list_tags(&doc, region),
            other => Err(ApiError::new(
                "UnknownOperationException",
                format!("operation {other} is not modelled by the firehose-kit emulator"),
            )),
        }
    }

    fn create(&self, doc: Value, region: &str) -> Result<Value, ApiError> {
        let input: CreateInput =
            serde_json::from_value(doc).map_err(|e| ApiError::new("SerializationException", e.to_string()))?;
        let name = validate_name(input.name.as_deref(), "deliveryStreamName")?;
        match input.stream_type.as_deref() {
            None | Some("DirectPut") => {}
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "DeliveryStreamType {other} is not modelled by the firehose-kit emulator; only DirectPut is"
                )));
            }
        }
        if let Some(other) = input.other.keys().find(|k| k.ends_with("DestinationConfiguration")) {
            return Err(ApiError::invalid(format!(
                "{other} is not modelled by the firehose-kit emulator; use ExtendedS3DestinationConfiguration"
            )));
        }
        let destination = match (input.extended_s3, input.s3) {
            (Some(d), None) => destination_from(d, true, "extendedS3DestinationConfiguration")?,
            (None, Some(d)) => destination_from(d, false, "s3DestinationConfiguration")?,
            (None, None) => {
                return Err(ApiError::invalid("Exactly one destination configuration must be specified"));
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid("Only one destination configuration can be specified"));
            }
        };
        let prefix = validate_destination(&destination, "extendedS3DestinationConfiguration")?;
        if input.tags.len() > MAX_TAGS {
            return Err(ApiError::validation(format!(
                "Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to {MAX_TAGS}"
            )));
        }
        validate_tags(&input.tags)?;
        let key = stream_key(region, &name);
        let mut streams = self.streams.lock().expect("streams lock");
        if let Some(existing) = streams.get(&key) {
            let status = self.status(&existing.state);
            if status != Status::Gone {
                return Err(ApiError::new(
                    "ResourceInUseException",
                    format!("Firehose {name} under accountId {} already exists", self.config.account_id),
                ));
            }
            if let Some(s) = streams.remove(&key) {
                s.runtime.retire();
            }
        }
        self.iam.check_assumable(&destination.role_arn).map_err(ApiError::invalid)?;
        let now = now_ms();
        let state = StreamState {
            arn: format!("arn:aws:firehose:{region}:{}:deliverystream/{name}", self.config.account_id),
            name: name.clone(),
            region: region.to_string(),
            incarnation: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            created_ms: now,
            updated_ms: now,
            version: 1,
            deleting_since_ms: None,
            destination,
            tags: input.tags,
        };
        let runtime = self.start_runtime(&state, prefix).map_err(ApiError::internal)?;
        let arn = state.arn.clone();
        streams.insert(key, Stream { state, runtime });
        self.save(&streams)?;
        Ok(json!({"DeliveryStreamARN": arn}))
    }

    fn with_stream<T>(
        &self,
        doc: &Value,
        region: &str,
        f: impl FnOnce(&mut Stream, Status) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let name = validate_name(doc["DeliveryStreamName"].as_str(), "deliveryStreamName")?;
        self.sweep();
        let mut streams = self.streams.lock().expect("streams lock");
        let stream =
            streams.get_mut(&stream_key(region, &name)).ok_or_else(|| not_found(&name, &self.config.account_id))?;
        let status = self.status(&stream.state);
        let out = f(stream, status)?;
        self.save(&streams)?;
        Ok(out)
    }

    fn describe(&self, doc: &Value, region: &str) -> Result<Value, ApiError> {
        self.with_stream(doc, region, |s, status| Ok(s.state.description(status)))
    }

    fn list(&self, doc: &Value, region: &str) -> Result<Value, ApiError> {
        self.sweep();
        let limit = doc["Limit"].as_u64().unwrap_or(10);
        if !(1..=10_000).contains(&limit) {
            return Err(ApiError::validation(format!(
                "Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1 and less than or equal to 10000"
            )));
        }
        if let Some(t) = doc["DeliveryStreamType"].as_str()
            && t != "DirectPut"
        {
            return Ok(json!({"DeliveryStreamNames": [], "HasMoreDeliveryStreams": false}));
        }
        let start = doc["ExclusiveStartDeliveryStreamName"].as_str().unwrap_or("");
        let streams = self.streams.lock().expect("streams lock");
        let names: Vec<&str> = streams
            .values()
            .filter(|s| s.state.region == region && s.state.name.as_str() > start)
            .map(|s| s.state.name.as_str())
            .collect();
        let more = names.len() > limit as usize;
        let page: Vec<&str> = names.into_iter().take(limit as usize).collect();
        Ok(json!({"DeliveryStreamNames": page, "HasMoreDeliveryStreams": more}))
    }

    fn delete(&self, doc: &Value, region: &str) -> Result<Value, ApiError> {
        self.with_stream(doc, region, |s, status| {
            match status {
                Status::Creating => {
                    return Err(ApiError::new(
                        "ResourceInUseException",
                        format!(
                            "Firehose {} is in CREATING state and cannot be deleted until it is ACTIVE",
                            s.state.name
                        ),
                    ));
                }
                Status::Deleting | Status::Gone => return Ok(json!({})),
                Status::Active => {}
            }
            s.state.deleting_since_ms = Some(now_ms());
            s.runtime.flush_due(0, true);
            Ok(json!({}))
        })
    }

    fn update(&self, doc: Value, region: &str) -> Result<Value, ApiError> {
        let name = validate_name(doc["DeliveryStreamName"].as_str(), "deliveryStreamName")?;
        let input: UpdateInput =
            serde_json::from_value(doc.clone()).map_err(|e| ApiError::new("SerializationException", e.to_string()))?;
        let _ = input.name;
        self.with_stream(&doc, region, |s, status| {
            if status != Status::Active {
                return Err(ApiError::new(
                    "ResourceInUseException",
                    format!("Firehose {name} is not in the ACTIVE state (it is {})", status.as_str()),
                ));
            }
            let current = input.current_version.as_deref().unwrap_or("");
            if current != s.state.version.to_string() {
                return Err(ApiError::new(
                    "ConcurrentModificationException",
                    format!(
                        "Version {current} does not match the current version {} of Firehose {name}",
                        s.state.version
                    ),
                ));
            }
            if input.destination_id.as_deref() != Some(DESTINATION_ID) {
                return Err(ApiError::invalid(format!(
                    "Destination {} not found for Firehose {name}",
                    input.destination_id.unwrap_or_default()
                )));
            }
            let update = match (input.extended_s3, input.s3) {
                (Some(u), None) | (None, Some(u)) => u,
                _ => return Err(ApiError::invalid("Exactly one destination update must be specified")),
            };
            let destination = merge_update(s.state.destination.clone(), update)?;
            let prefix = validate_destination(&destination, "extendedS3DestinationUpdate")?;
            if destination.role_arn != s.state.destination.role_arn {
                self.iam.check_assumable(&destination.role_arn).map_err(ApiError::invalid)?;
            }
            s.state.destination = destination;
            s.state.version += 1;
            s.state.updated_ms = now_ms();
            s.runtime.retarget(target_of(&s.state, prefix));
            Ok(json!({}))
        })
    }

    fn tag(&self, doc: &Value, region: &str) -> Result<Value, ApiError> {
        let tags: Vec<Tag> = serde_json::from_value(doc["Tags"].clone())
            .map_err(|e| ApiError::new("SerializationException", e.to_string()))?;
        validate_tags(&tags)?;
        self.with_stream(doc, region, |s, _| {
            let mut merged = s.state.tags.clone();
            for t in tags {
                match merged.iter_mut().find(|x| x.key == t.key) {
                    Some(existing) => existing.value = t.value,
                    None => merged.push(t),
                }
            }
            if merged.len() > MAX_TAGS {
                return Err(ApiError::new(
                    "LimitExceededException",
                    format!("A stream can have at most {MAX_TAGS} tags"),
                ));
            }
            s.state.tags = merged;
            Ok(json!({}))
        })
    }

    fn untag(&self, doc: &Value, region: &str) -> Result<Value, ApiError> {
        let keys: Vec<String> = serde_json::from_value(doc["TagKeys"].clone())
            .map_err(|e| ApiError::new("SerializationException", e.to_string()))?;
        self.with_stream(doc, region, |s, _| {
            s.state.tags.retain(|t| !keys.contains(&t.key));
            Ok(json!({}))
        })
    }

    fn list_tags(&self, doc: &Value, region: &str) -> Result<Value, ApiError> {
        let limit = doc["Limit"].as_u64().unwrap_or(50) as usize;
        let start = doc["ExclusiveStartTagKey"].as_str().unwrap_or("").to_string();
        self.with_stream(doc, region, |s, _| {
            let mut tags: Vec<&Tag> = s.state.tags.iter().collect();
            tags.sort_by(|a, b| a.key.cmp(&b.key));
            let after: Vec<&Tag> = tags.into_iter().filter(|t| start.is_empty() || t.key > start).collect();
            let more = after.len() > limit;
            let page: Vec<Value> = after
                .into_iter()
                .take(limit)
                .map(|t| json!({"Key": t.key, "Value": t.value.clone().unwrap_or_default()}))
                .collect();
            Ok(json!({"Tags": page, "HasMoreTags": more}))
        })
    }

    /// The runtime of an ACTIVE stream, for the data plane.
    fn active_runtime(&self, name: Option<&str>, region: &str) -> Result<(String, Arc<Runtime>), ApiError> {
        let name = validate_name(name, "deliveryStreamName")?;
        let streams = self.streams.lock().expect("streams lock");
        let stream =
            streams.get(&stream_key(region, &name)).ok_or_else(|| not_found(&name, &self.config.account_id))?;
        match self.status(&stream.state) {
            Status::Active => Ok((stream.state.incarnation.clone(), stream.runtime.clone())),
            Status::Gone => Err(not_found(&name, &self.config.account_id)),
            other => Err(ApiError::new(
                "ResourceNotFoundException",
                format!(
                    "Firehose {name} under account {} is not ACTIVE (it is {}).",
                    self.config.account_id,
                    other.as_str()
                ),
            )),
        }
    }

    async fn put_record(&self, body: &[u8], region: &str) -> Result<Value, ApiError> {
        let input: PutRecordInput =
            serde_json::from_slice(body).map_err(|e| ApiError::new("SerializationException", e.to_string()))?;
        let record = input.record.ok_or_else(|| {
            ApiError::validation("Value null at 'record' failed to satisfy constraint: Member must not be null")
        })?;
        let size = decoded_len(&record.data);
        if size > MAX_RECORD_BYTES {
            return Err(ApiError::validation(format!(
                "Value at 'record.data' failed to satisfy constraint: Member must have length less than or equal to {MAX_RECORD_BYTES}"
            )));
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(record.data.as_bytes())
            .map_err(|e| ApiError::new("SerializationException", format!("Record.Data is not valid base64: {e}")))?;
        let (incarnation, rt) = self.active_runtime(input.name.as_deref(), region)?;
        if !rt.admit_request() || !rt.admit_record(data.len()) {
            return Err(ApiError::new("ServiceUnavailableException", Refusal::Throttled.message()));
        }
        if let Some(refusal) = self.faults.lock().expect("faults lock").roll() {
            return Err(ApiError::new("ServiceUnavailableException", refusal.message()));
        }
        let accepted = tokio::task::spawn_blocking(move || rt.accept(&[&data], now_ms()))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        Ok(json!({"RecordId": record_id(&incarnation, accepted.ends[0]), "Encrypted": false}))
    }

    async fn put_record_batch(&self, body: &[u8], region: &str) -> Result<String, ApiError> {
        let input: PutRecordBatchInput =
            serde_json::from_slice(body).map_err(|e| ApiError::new("SerializationException", e.to_string()))?;
        let n = input.records.len();
        if n == 0 {
            return Err(ApiError::validation(
                "Value '[]' at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        if n > MAX_BATCH_RECORDS {
            return Err(ApiError::validation(format!(
                "Value at 'records' failed to satisfy constraint: Member must have length less than or equal to {MAX_BATCH_RECORDS}"
            )));
        }
        let mut total = 0usize;
        for (i, r) in input.records.iter().enumerate() {
            let size = decoded_len(&r.data);
            if size > MAX_RECORD_BYTES {
                return Err(ApiError::validation(format!(
                    "Value at 'records.{}.member.data' failed to satisfy constraint: Member must have length less than or equal to {MAX_RECORD_BYTES}",
                    i + 1
                )));
            }
            total += size;
        }
        if total > MAX_BATCH_BYTES {
            return Err(ApiError::invalid("Records size exceeds 4 MB limit"));
        }
        let (incarnation, rt) = self.active_runtime(input.name.as_deref(), region)?;
        if !rt.admit_request() {
            return Err(ApiError::new("ServiceUnavailableException", Refusal::Throttled.message()));
        }
        // Decode everything into one buffer; `spans[i]` is record i's range in it.
        let mut data = vec![0u8; total];
        let mut spans = Vec::with_capacity(n);
        let mut pos = 0usize;
        for r in &input.records {
            let len =
                base64::engine::general_purpose::STANDARD.decode_slice(r.data.as_bytes(), &mut data[pos..]).map_err(
                    |e| ApiError::new("SerializationException", format!("Record Data is not valid base64: {e}")),
                )?;
            spans.push(pos..pos + len);
            pos += len;
        }
        // Decide each record's fate: quota first, then injected faults.
        let mut refusals: Vec<Option<Refusal>> = Vec::with_capacity(n);
        {
            let mut faults = self.faults.lock().expect("faults lock");
            for span in &spans {
                let refusal = if !rt.admit_record(span.len()) { Some(Refusal::Throttled) } else { faults.roll() };
                refusals.push(refusal);
            }
        }
        let accepted_spans: Vec<std::ops::Range<usize>> =
            spans.iter().zip(&refusals).filter(|(_, r)| r.is_none()).map(|(s, _)| s.clone()).collect();
        let ends = if accepted_spans.is_empty() {
            Vec::new()
        } else {
            tokio::task::spawn_blocking(move || {
                let records: Vec<&[u8]> = accepted_spans.iter().map(|s| &data[s.clone()]).collect();
                rt.accept(&records, now_ms())
            })
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?
            .ends
        };
        // Written directly (ids are hex and digits; codes and messages are fixed ASCII without quotes): for 500
        // entries this is several times cheaper than building JSON values.
        use std::fmt::Write as _;
        let mut ends = ends.into_iter();
        let failed = refusals.iter().filter(|r| r.is_some()).count();
        let mut out = String::with_capacity(64 + refusals.len() * 48);
        let _ = write!(out, r#"{{"FailedPutCount":{failed},"Encrypted":false,"RequestResponses":["#);
        for (i, r) in refusals.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match r {
                None => {
                    let _ =
                        write!(out, r#"{{"RecordId":"{}"}}"#, record_id(&incarnation, ends.next().unwrap_or_default()));
                }
                Some(refusal) => {
                    let _ =
                        write!(out, r#"{{"ErrorCode":"{}","ErrorMessage":"{}"}}"#, refusal.code(), refusal.message());
                }
            }
        }
        out.push_str("]}");
        Ok(out)
    }
}

/// An opaque, unique record id (AWS's are long digit strings; only uniqueness matters to clients).
fn record_id(incarnation: &str, end_offset: u64) -> String {
    format!("{incarnation}{end_offset:020}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_length_accounts_for_padding() {
        let e = base64::engine::general_purpose::STANDARD;
        for n in 0..10 {
            let s = e.encode(vec![7u8; n]);
            assert_eq!(decoded_len(&s), n);
        }
    }

    #[test]
    fn stream_names_follow_the_model_pattern() {
        assert!(validate_name(Some("Apache_Logs-1.x"), "n").is_ok());
        for bad in ["", "has space", "slash/", &"a".repeat(65)] {
            assert_eq!(validate_name(Some(bad), "n").unwrap_err().code, "ValidationException", "{bad}");
        }
    }

    #[test]
    fn hints_are_range_checked() {
        assert!(validate_hints(1, 0, "p").is_ok());
        assert!(validate_hints(128, 900, "p").is_ok());
        assert!(validate_hints(0, 60, "p").is_err());
        assert!(validate_hints(129, 60, "p").is_err());
        assert!(validate_hints(1, 901, "p").is_err());
    }
}
