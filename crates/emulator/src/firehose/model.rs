//! Firehose control-plane shapes of the emulator: the request documents it accepts (JSON 1.1, AWS member
//! names), the persisted state of a delivery stream, and the typed answers (a `DeliveryStreamDescription`
//! rendered from that state).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use firehose_kit_domain::names::bucket_of_arn;
use firehose_kit_domain::types::{Compression, EncryptionStatus, StreamStatus, object_extension};

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct BufferingHints {
    #[serde(rename = "SizeInMBs")]
    pub size_in_mbs: Option<i64>,
    #[serde(rename = "IntervalInSeconds")]
    pub interval_in_seconds: Option<i64>,
}

/// ExtendedS3DestinationConfiguration / S3DestinationConfiguration and their Update forms (all optional here;
/// required members are checked by the handler so the error names them).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DestinationInput {
    #[serde(rename = "RoleARN")]
    pub role_arn: Option<String>,
    #[serde(rename = "BucketARN")]
    pub bucket_arn: Option<String>,
    #[serde(rename = "Prefix")]
    pub prefix: Option<String>,
    #[serde(rename = "ErrorOutputPrefix")]
    pub error_output_prefix: Option<String>,
    #[serde(rename = "BufferingHints")]
    pub buffering_hints: Option<BufferingHints>,
    #[serde(rename = "CompressionFormat")]
    pub compression_format: Option<String>,
    #[serde(rename = "EncryptionConfiguration")]
    pub encryption_configuration: Option<Value>,
    #[serde(rename = "CloudWatchLoggingOptions")]
    pub cloud_watch_logging_options: Option<Value>,
    #[serde(rename = "ProcessingConfiguration")]
    pub processing_configuration: Option<Value>,
    #[serde(rename = "S3BackupMode")]
    pub s3_backup_mode: Option<String>,
    #[serde(rename = "DataFormatConversionConfiguration")]
    pub data_format_conversion_configuration: Option<Value>,
    #[serde(rename = "DynamicPartitioningConfiguration")]
    pub dynamic_partitioning_configuration: Option<Value>,
    #[serde(rename = "FileExtension")]
    pub file_extension: Option<String>,
    #[serde(rename = "CustomTimeZone")]
    pub custom_time_zone: Option<String>,
    /// Members this model does not read (`S3BackupConfiguration`, `S3BackupUpdate`, any AWS adds later): refused
    /// by name, never stored and ignored.
    #[serde(flatten)]
    pub unmodelled: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default)]
    pub value: Option<String>,
}

/// `DeliveryStreamEncryptionConfigurationInput`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EncryptionInput {
    #[serde(rename = "KeyType")]
    pub key_type: Option<String>,
    #[serde(rename = "KeyARN")]
    pub key_arn: Option<String>,
}

/// Start/StopDeliveryStreamEncryption.
#[derive(Debug, Deserialize)]
pub struct EncryptionCallInput {
    #[serde(rename = "DeliveryStreamName")]
    pub name: Option<String>,
    #[serde(rename = "DeliveryStreamEncryptionConfigurationInput")]
    pub config: Option<EncryptionInput>,
}

/// Server-side encryption of a stream, as persisted: the status it is moving to and since when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Encryption {
    /// `true` while enabled or enabling; `false` while disabling (then gone).
    pub on: bool,
    /// `AWS_OWNED_CMK` or `CUSTOMER_MANAGED_CMK`.
    pub key_type: String,
    pub key_arn: Option<String>,
    pub changed_ms: i64,
}

impl Encryption {
    /// ENABLING / DISABLING for `delay_ms` after a change, then ENABLED / DISABLED.
    pub fn status(&self, now_ms: i64, delay_ms: i64) -> EncryptionStatus {
        let settled = now_ms >= self.changed_ms + delay_ms;
        match (self.on, settled) {
            (true, true) => EncryptionStatus::Enabled,
            (true, false) => EncryptionStatus::Enabling,
            (false, true) => EncryptionStatus::Disabled,
            (false, false) => EncryptionStatus::Disabling,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CreateInput {
    #[serde(rename = "DeliveryStreamName")]
    pub name: Option<String>,
    #[serde(rename = "DeliveryStreamEncryptionConfigurationInput")]
    pub encryption: Option<EncryptionInput>,
    #[serde(rename = "DeliveryStreamType")]
    pub stream_type: Option<String>,
    #[serde(rename = "ExtendedS3DestinationConfiguration")]
    pub extended_s3: Option<DestinationInput>,
    #[serde(rename = "S3DestinationConfiguration")]
    pub s3: Option<DestinationInput>,
    #[serde(rename = "Tags", default)]
    pub tags: Vec<Tag>,
    #[serde(rename = "KinesisStreamSourceConfiguration")]
    pub kinesis_source: Option<KinesisSourceInput>,
    /// Any other destination (Redshift, OpenSearch, Splunk, HTTP endpoint, ...) is refused by name.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// `KinesisStreamSourceConfiguration`.
#[derive(Debug, Deserialize)]
pub struct KinesisSourceInput {
    #[serde(rename = "KinesisStreamARN")]
    pub stream_arn: Option<String>,
    #[serde(rename = "RoleARN")]
    pub role_arn: Option<String>,
}

/// A stream's Kinesis source, as persisted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KinesisSource {
    pub stream_arn: String,
    pub role_arn: String,
    /// When Firehose started reading (at LATEST): `DeliveryStartTimestamp`.
    pub start_ms: i64,
}

#[derive(Debug, Deserialize)]
pub struct UpdateInput {
    #[serde(rename = "DeliveryStreamName")]
    pub name: Option<String>,
    #[serde(rename = "CurrentDeliveryStreamVersionId")]
    pub current_version: Option<String>,
    #[serde(rename = "DestinationId")]
    pub destination_id: Option<String>,
    #[serde(rename = "ExtendedS3DestinationUpdate")]
    pub extended_s3: Option<DestinationInput>,
    #[serde(rename = "S3DestinationUpdate")]
    pub s3: Option<DestinationInput>,
    /// Another destination's update (Redshift, OpenSearch, ...) or any member this model does not read: refused
    /// by name, never ignored.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// DescribeDeliveryStream, DeleteDeliveryStream: a stream name (other members are accepted and ignored).
#[derive(Debug, Deserialize)]
pub struct NameInput {
    #[serde(rename = "DeliveryStreamName")]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ListInput {
    #[serde(rename = "Limit")]
    pub limit: Option<i64>,
    #[serde(rename = "DeliveryStreamType")]
    pub stream_type: Option<String>,
    #[serde(rename = "ExclusiveStartDeliveryStreamName")]
    pub start: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct TagInput {
    #[serde(rename = "DeliveryStreamName")]
    pub name: Option<String>,
    #[serde(rename = "Tags")]
    pub tags: Option<Vec<Tag>>,
}

#[derive(Debug, Deserialize)]
pub struct UntagInput {
    #[serde(rename = "DeliveryStreamName")]
    pub name: Option<String>,
    #[serde(rename = "TagKeys")]
    pub keys: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub struct ListTagsInput {
    #[serde(rename = "DeliveryStreamName")]
    pub name: Option<String>,
    #[serde(rename = "ExclusiveStartTagKey")]
    pub start: Option<String>,
    #[serde(rename = "Limit")]
    pub limit: Option<i64>,
}

/// The S3 destination of a stream, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Destination {
    /// Created through ExtendedS3DestinationConfiguration (true) or S3DestinationConfiguration (false).
    pub extended: bool,
    pub role_arn: String,
    pub bucket_arn: String,
    pub prefix: Option<String>,
    pub error_output_prefix: Option<String>,
    pub size_in_mbs: i64,
    pub interval_in_seconds: i64,
    pub compression: Compression,
    pub file_extension: Option<String>,
    pub custom_time_zone: Option<String>,
    pub encryption: Option<Value>,
    pub cloud_watch_logging_options: Option<Value>,
    pub processing: Option<Value>,
    pub data_format_conversion: Option<Value>,
    pub dynamic_partitioning: Option<Value>,
    pub s3_backup_mode: Option<String>,
}

impl Destination {
    pub fn bucket(&self) -> &str {
        bucket_of_arn(&self.bucket_arn)
    }

    /// The object name extension: FileExtension when set, else the compression's default.
    pub fn extension(&self) -> String {
        object_extension(&self.compression, self.file_extension.as_deref())
    }

    /// Whether `DynamicPartitioningConfiguration.Enabled` is true.
    pub fn dynamic_partitioning_enabled(&self) -> bool {
        self.dynamic_partitioning.as_ref().is_some_and(|v| v["Enabled"] == Value::Bool(true))
    }

    fn description(&self) -> DestinationDescription<'_> {
        let s3 = S3Description {
            role_arn: &self.role_arn,
            bucket_arn: &self.bucket_arn,
            prefix: self.prefix.as_deref(),
            error_output_prefix: self.error_output_prefix.as_deref(),
            buffering_hints: Hints { size_in_mbs: self.size_in_mbs, interval_in_seconds: self.interval_in_seconds },
            compression_format: &self.compression,
            encryption_configuration: self
                .encryption
                .clone()
                .unwrap_or_else(|| serde_json::json!({"NoEncryptionConfig": "NoEncryption"})),
            cloud_watch_logging_options: self.cloud_watch_logging_options.as_ref(),
        };
        let extended = self.extended.then(|| ExtendedS3Description {
            base: s3.clone(),
            s3_backup_mode: self.s3_backup_mode.as_deref().unwrap_or("Disabled"),
            file_extension: self.file_extension.as_deref(),
            custom_time_zone: self.custom_time_zone.as_deref(),
            // As AWS describes them: default processor parameters and retry options filled in.
            processing_configuration: self.processing.as_ref().map(|p| {
                let mut p = firehose_kit_domain::partitioning::with_defaults(p);
                for processor in p["Processors"].as_array_mut().into_iter().flatten() {
                    if processor["Type"] == "Lambda" {
                        firehose_kit_domain::transform::with_lambda_defaults(processor, &self.role_arn);
                    }
                }
                p
            }),
            data_format_conversion_configuration: self.data_format_conversion.as_ref(),
            dynamic_partitioning_configuration: self.dynamic_partitioning.as_ref().map(|c| {
                let mut c = c.clone();
                if c["Enabled"] == Value::Bool(true) && c["RetryOptions"].is_null() {
                    c["RetryOptions"] = serde_json::json!({
                        "DurationInSeconds": firehose_kit_domain::partitioning::DEFAULT_RETRY_S
                    });
                }
                c
            }),
        });
        DestinationDescription { destination_id: DESTINATION_ID, s3, extended }
    }
}

/// A stream has one destination, always this id.
pub const DESTINATION_ID: &str = "destinationId-000000000001";

/// A delivery stream as persisted in `streams.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamState {
    pub name: String,
    pub region: String,
    pub arn: String,
    /// Distinguishes a re-created stream of the same name (its journal directory).
    pub incarnation: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub version: u64,
    pub deleting_since_ms: Option<i64>,
    pub destination: Destination,
    pub tags: Vec<Tag>,
    /// Server-side encryption (absent in data dirs written before it was modelled: never enabled).
    #[serde(default)]
    pub encryption: Option<Encryption>,
    /// A Kinesis data stream the stream reads (`KinesisStreamAsSource`); `None` for Direct Put.
    #[serde(default)]
    pub source: Option<KinesisSource>,
    /// `DirectPutSourceConfiguration.ThroughputHintInMBs`: informational (AWS sizes capacity by it), described.
    #[serde(default)]
    pub throughput_hint_mb: Option<i64>,
}

pub use crate::lifecycle::Lifecycle;

impl StreamState {
    /// The lifecycle at `now_ms`, from the persisted timestamps and the configured delays.
    pub fn lifecycle(&self, now_ms: i64, create_delay_ms: i64, delete_delay_ms: i64) -> Lifecycle {
        Lifecycle::at(self.created_ms, self.deleting_since_ms, now_ms, create_delay_ms, delete_delay_ms)
    }

    /// The description Describe answers; `failure` says why the stream cannot run (its stored configuration does
    /// not read back).
    pub fn description<'a>(
        &'a self,
        status: StreamStatus,
        encryption: EncryptionStatus,
        failure: Option<&'a str>,
    ) -> DescribeOutput<'a> {
        let on = !matches!(encryption, EncryptionStatus::Disabled);
        let key = self.encryption.as_ref().filter(|_| on);
        DescribeOutput {
            description: StreamDescription {
                name: &self.name,
                arn: &self.arn,
                status,
                stream_type: if self.source.is_some() { "KinesisStreamAsSource" } else { "DirectPut" },
                source: match (&self.source, self.throughput_hint_mb) {
                    (Some(k), _) => Some(SourceDescription {
                        kinesis: Some(KinesisSourceDescription {
                            stream_arn: &k.stream_arn,
                            role_arn: &k.role_arn,
                            start: k.start_ms as f64 / 1000.0,
                        }),
                        direct_put: None,
                    }),
                    (None, Some(mb)) => Some(SourceDescription {
                        kinesis: None,
                        direct_put: Some(DirectPutDescription { throughput_hint_mb: mb }),
                    }),
                    (None, None) => None,
                },
                encryption: EncryptionDescription {
                    status: encryption,
                    key_type: key.map(|e| e.key_type.as_str()),
                    key_arn: key.and_then(|e| e.key_arn.as_deref()),
                },
                version_id: self.version.to_string(),
                create_timestamp: self.created_ms as f64 / 1000.0,
                last_update_timestamp: self.updated_ms as f64 / 1000.0,
                destinations: vec![self.destination.description()],
                has_more_destinations: false,
                failure: failure.map(|details| FailureDescription { kind: "UNKNOWN_ERROR", details }),
            },
        }
    }
}

#[derive(Serialize)]
pub struct DescribeOutput<'a> {
    #[serde(rename = "DeliveryStreamDescription")]
    description: StreamDescription<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StreamDescription<'a> {
    #[serde(rename = "DeliveryStreamName")]
    name: &'a str,
    #[serde(rename = "DeliveryStreamARN")]
    arn: &'a str,
    #[serde(rename = "DeliveryStreamStatus")]
    status: StreamStatus,
    #[serde(rename = "DeliveryStreamType")]
    stream_type: &'a str,
    #[serde(rename = "DeliveryStreamEncryptionConfiguration")]
    encryption: EncryptionDescription<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<SourceDescription<'a>>,
    version_id: String,
    create_timestamp: f64,
    last_update_timestamp: f64,
    destinations: Vec<DestinationDescription<'a>>,
    has_more_destinations: bool,
    #[serde(rename = "FailureDescription", skip_serializing_if = "Option::is_none")]
    failure: Option<FailureDescription<'a>>,
}

#[derive(Serialize)]
struct FailureDescription<'a> {
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "Details")]
    details: &'a str,
}

#[derive(Serialize)]
struct SourceDescription<'a> {
    #[serde(rename = "KinesisStreamSourceDescription", skip_serializing_if = "Option::is_none")]
    kinesis: Option<KinesisSourceDescription<'a>>,
    #[serde(rename = "DirectPutSourceDescription", skip_serializing_if = "Option::is_none")]
    direct_put: Option<DirectPutDescription>,
}

#[derive(Serialize)]
struct DirectPutDescription {
    #[serde(rename = "ThroughputHintInMBs")]
    throughput_hint_mb: i64,
}

#[derive(Serialize)]
struct KinesisSourceDescription<'a> {
    #[serde(rename = "KinesisStreamARN")]
    stream_arn: &'a str,
    #[serde(rename = "RoleARN")]
    role_arn: &'a str,
    #[serde(rename = "DeliveryStartTimestamp")]
    start: f64,
}

#[derive(Serialize)]
struct EncryptionDescription<'a> {
    #[serde(rename = "Status")]
    status: EncryptionStatus,
    #[serde(rename = "KeyType", skip_serializing_if = "Option::is_none")]
    key_type: Option<&'a str>,
    #[serde(rename = "KeyARN", skip_serializing_if = "Option::is_none")]
    key_arn: Option<&'a str>,
}

#[derive(Serialize)]
struct DestinationDescription<'a> {
    #[serde(rename = "DestinationId")]
    destination_id: &'a str,
    #[serde(rename = "S3DestinationDescription")]
    s3: S3Description<'a>,
    #[serde(rename = "ExtendedS3DestinationDescription", skip_serializing_if = "Option::is_none")]
    extended: Option<ExtendedS3Description<'a>>,
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "PascalCase")]
struct Hints {
    #[serde(rename = "SizeInMBs")]
    size_in_mbs: i64,
    interval_in_seconds: i64,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "PascalCase")]
struct S3Description<'a> {
    #[serde(rename = "RoleARN")]
    role_arn: &'a str,
    #[serde(rename = "BucketARN")]
    bucket_arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_output_prefix: Option<&'a str>,
    buffering_hints: Hints,
    compression_format: &'a Compression,
    encryption_configuration: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloud_watch_logging_options: Option<&'a Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ExtendedS3Description<'a> {
    #[serde(flatten)]
    base: S3Description<'a>,
    #[serde(rename = "S3BackupMode")]
    s3_backup_mode: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_extension: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_time_zone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    processing_configuration: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_format_conversion_configuration: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dynamic_partitioning_configuration: Option<Value>,
}

#[derive(Serialize)]
pub struct CreateOutput {
    #[serde(rename = "DeliveryStreamARN")]
    pub arn: String,
}

#[derive(Serialize)]
pub struct ListOutput<'a> {
    #[serde(rename = "DeliveryStreamNames")]
    pub names: Vec<&'a str>,
    #[serde(rename = "HasMoreDeliveryStreams")]
    pub more: bool,
}

#[derive(Serialize)]
pub struct TagOutput<'a> {
    #[serde(rename = "Key")]
    pub key: &'a str,
    #[serde(rename = "Value")]
    pub value: &'a str,
}

#[derive(Serialize)]
pub struct ListTagsOutput<'a> {
    #[serde(rename = "Tags")]
    pub tags: Vec<TagOutput<'a>>,
    #[serde(rename = "HasMoreTags")]
    pub more: bool,
}
