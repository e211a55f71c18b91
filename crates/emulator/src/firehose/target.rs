//! What a delivery writes to: a snapshot of a stream's destination (bucket, prefix, compression, buffering,
//! partitioning, error logging) taken when the stream is created or updated. The engine delivers to it and the
//! gate checks Firehose's access to it; neither owns it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono_tz::Tz;

use firehose_kit_domain::partitioning::Partitioner;
use firehose_kit_domain::prefix::Prefix;
use firehose_kit_domain::transform::LambdaProcessor;

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
    pub size_bytes: usize,
    pub interval_ms: i64,
    /// Dynamic partitioning of the stream (on the stream's runtime; its partitions' runtimes have `None`).
    pub partitioning: Option<Arc<PartitionSpec>>,
    /// The partition keys of a partition's runtime, for evaluating the prefix.
    pub keys: Option<BTreeMap<String, String>>,
    /// `!{firehose:error-output-type}` of the error output's runtime.
    pub output_type: Option<&'static str>,
    /// A Lambda transformation (on the stream's runtime, which then buffers for the function: its `size_bytes`
    /// and `interval_ms` are the processor's; the destination's are here).
    pub processing: Option<Arc<Processing>>,
    /// Record format conversion: the objects are Parquet, and records that do not convert go to `error_prefix`.
    pub conversion: Option<Arc<ConversionTarget>>,
}

/// How a stream's records are transformed before they are buffered for S3.
#[derive(Debug)]
pub struct Processing {
    pub processor: LambdaProcessor,
    /// The role Firehose invokes the function as (the processor's `RoleArn`, else the destination's).
    pub role_arn: String,
    /// Where records the transformation failed go: `ErrorOutputPrefix`, or `processing-failed/`.
    pub error_prefix: Prefix,
    /// The destination's buffering hints (the transformed records' buffers).
    pub size_bytes: usize,
    pub interval_ms: i64,
}

/// How a partitioned stream routes records (see [`firehose_kit_domain::partitioning`]).
#[derive(Debug)]
pub struct PartitionSpec {
    pub partitioner: Partitioner,
    /// `ErrorOutputPrefix`, where records that cannot be partitioned go.
    pub error_prefix: Prefix,
    /// Active partitions at most (`local --partition-limit`); records for more go to the error output.
    pub limit: usize,
}

/// A converting stream's conversion and where its failed records go.
#[derive(Debug)]
pub struct ConversionTarget {
    pub conversion: firehose_kit_domain::conversion::Conversion,
    /// The error prefix with `!{firehose:error-output-type}` = `format-conversion-failed`.
    pub error_prefix: Prefix,
}
