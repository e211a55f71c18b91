//! What a delivery writes to: a snapshot of a stream's destination (bucket, prefix, compression, conversion,
//! error logging) taken when the stream is created or updated. The destination writer delivers to it and the
//! gate checks Firehose's access to it; neither owns it. How records get there (buffering hints, processors,
//! partitioning) is the stream's [`super::plan::Plan`].

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono_tz::Tz;

use firehose_kit_domain::partitioning::Partitioner;
use firehose_kit_domain::prefix::Prefix;

/// Where and how a stream's objects are written (a snapshot of its destination and version).
#[derive(Debug, Clone)]
pub struct Target {
    pub stream: String,
    pub stream_arn: String,
    pub region: String,
    pub role_arn: String,
    /// The error log group and stream, when `CloudWatchLoggingOptions` is enabled.
    pub logging: Option<(String, String)>,
    pub version: u64,
    pub bucket: String,
    pub prefix: Prefix,
    /// `CustomTimeZone` (UTC by default): the zone of the prefix's timestamps and of the file name's.
    pub zone: Tz,
    /// `CompressionFormat`: how the object's bytes are encoded.
    pub compression: firehose_kit_domain::types::Compression,
    pub extension: String,
    /// The partition keys of a partition's lane, for evaluating the prefix.
    pub keys: Option<BTreeMap<String, String>>,
    /// `!{firehose:error-output-type}` of an error output's lane.
    pub output_type: Option<&'static str>,
    /// Record format conversion: the objects are Parquet, and records that do not convert go to `error_prefix`.
    pub conversion: Option<Arc<ConversionTarget>>,
    /// The `AppendDelimiterToRecord` processor without dynamic partitioning: a newline after each record as it is
    /// written (with partitioning, the partitioner appends it; error outputs never get one).
    pub append_delimiter: bool,
}

/// How a partitioned stream routes records (see [`firehose_kit_domain::partitioning`]).
#[derive(Debug)]
pub struct PartitionSpec {
    pub partitioner: Partitioner,
    /// `ErrorOutputPrefix`, where records that cannot be partitioned go.
    pub error_prefix: Prefix,
    /// Active partitions at most (`local --partition-limit`); records for more go to the error output.
    pub limit: usize,
    /// `RetryOptions.DurationInSeconds` (default 300), `--speed` times shorter: how long a partition's failing
    /// delivery is retried before its records go to the error output.
    pub retry: std::time::Duration,
}

/// A converting stream's conversion and where its failed records go.
#[derive(Debug)]
pub struct ConversionTarget {
    pub conversion: firehose_kit_domain::conversion::Conversion,
    /// The error prefix with `!{firehose:error-output-type}` = `format-conversion-failed`.
    pub error_prefix: Prefix,
}
