//! Firehose control-plane shapes: the request documents the emulator accepts (JSON 1.1, AWS member names) and
//! the persisted state of a delivery stream, rendered back as a `DeliveryStreamDescription`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default)]
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CreateInput {
    #[serde(rename = "DeliveryStreamName")]
    pub name: Option<String>,
    #[serde(rename = "DeliveryStreamType")]
    pub stream_type: Option<String>,
    #[serde(rename = "ExtendedS3DestinationConfiguration")]
    pub extended_s3: Option<DestinationInput>,
    #[serde(rename = "S3DestinationConfiguration")]
    pub s3: Option<DestinationInput>,
    #[serde(rename = "Tags", default)]
    pub tags: Vec<Tag>,
    /// Any other destination (Redshift, OpenSearch, Splunk, HTTP endpoint, ...) is refused by name.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
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
    pub compression: String,
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
        self.bucket_arn.rsplit(":::").next().unwrap_or(&self.bucket_arn)
    }

    /// The object name extension: FileExtension when set, else the compression's default.
    pub fn extension(&self) -> String {
        self.file_extension.clone().unwrap_or_else(|| match self.compression.as_str() {
            "GZIP" => ".gz".into(),
            _ => String::new(),
        })
    }

    fn description(&self) -> Value {
        let encryption = self.encryption.clone().unwrap_or_else(|| json!({"NoEncryptionConfig": "NoEncryption"}));
        let hints = json!({"SizeInMBs": self.size_in_mbs, "IntervalInSeconds": self.interval_in_seconds});
        let mut s3 = json!({
            "RoleARN": self.role_arn,
            "BucketARN": self.bucket_arn,
            "BufferingHints": hints,
            "CompressionFormat": self.compression,
            "EncryptionConfiguration": encryption,
        });
        let put = |v: &mut Value, k: &str, x: &Option<String>| {
            if let Some(x) = x {
                v[k] = json!(x);
            }
        };
        put(&mut s3, "Prefix", &self.prefix);
        put(&mut s3, "ErrorOutputPrefix", &self.error_output_prefix);
        if let Some(cw) = &self.cloud_watch_logging_options {
            s3["CloudWatchLoggingOptions"] = cw.clone();
        }
        if !self.extended {
            return json!({"DestinationId": DESTINATION_ID, "S3DestinationDescription": s3});
        }
        let mut ext = s3.clone();
        ext["S3BackupMode"] = json!(self.s3_backup_mode.clone().unwrap_or_else(|| "Disabled".into()));
        put(&mut ext, "FileExtension", &self.file_extension);
        put(&mut ext, "CustomTimeZone", &self.custom_time_zone);
        for (key, value) in [
            ("ProcessingConfiguration", &self.processing),
            ("DataFormatConversionConfiguration", &self.data_format_conversion),
            ("DynamicPartitioningConfiguration", &self.dynamic_partitioning),
        ] {
            if let Some(v) = value {
                ext[key] = v.clone();
            }
        }
        json!({"DestinationId": DESTINATION_ID, "S3DestinationDescription": s3, "ExtendedS3DestinationDescription": ext})
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
}

/// CREATING / ACTIVE / DELETING, or gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Active,
    Deleting,
    Gone,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "CREATING",
            Status::Active => "ACTIVE",
            Status::Deleting | Status::Gone => "DELETING",
        }
    }
}

impl StreamState {
    /// The status at `now_ms`, from the persisted timestamps and the configured delays.
    pub fn status(&self, now_ms: i64, create_delay_ms: i64, delete_delay_ms: i64) -> Status {
        match self.deleting_since_ms {
            Some(since) if now_ms >= since + delete_delay_ms => Status::Gone,
            Some(_) => Status::Deleting,
            None if now_ms < self.created_ms + create_delay_ms => Status::Creating,
            None => Status::Active,
        }
    }

    pub fn description(&self, status: Status) -> Value {
        json!({
            "DeliveryStreamDescription": {
                "DeliveryStreamName": self.name,
                "DeliveryStreamARN": self.arn,
                "DeliveryStreamStatus": status.as_str(),
                "DeliveryStreamType": "DirectPut",
                "DeliveryStreamEncryptionConfiguration": {"Status": "DISABLED"},
                "VersionId": self.version.to_string(),
                "CreateTimestamp": self.created_ms as f64 / 1000.0,
                "LastUpdateTimestamp": self.updated_ms as f64 / 1000.0,
                "Destinations": [self.destination.description()],
                "HasMoreDestinations": false,
            }
        })
    }
}
