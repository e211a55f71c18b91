//! Firehose control-plane calls: describe, create (riding out IAM propagation), update the destination, delete,
//! and the poll loops no SDK provides (there is no Firehose waiter in any SDK or CLI).

use std::time::{Duration, Instant};

use aws_sdk_firehose::Client;
use aws_sdk_firehose::types::{
    BufferingHints, CloudWatchLoggingOptions, CompressionFormat, DataFormatConversionConfiguration, DeliveryStreamType,
    Deserializer, DestinationDescription, DynamicPartitioningConfiguration, ExtendedS3DestinationConfiguration,
    ExtendedS3DestinationDescription, ExtendedS3DestinationUpdate, InputFormatConfiguration, OpenXJsonSerDe,
    OutputFormatConfiguration, ParquetCompression, ParquetSerDe, ProcessingConfiguration, Processor,
    ProcessorParameter, ProcessorParameterName, ProcessorType, SchemaConfiguration, Serializer, Tag,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;

use super::error::is_iam_propagation;
use super::sdk_error;
use crate::error::{Error, Result};
use crate::firehose::names::bucket_of_arn;
use crate::firehose::types::{Compression, StreamStatus, delivered_extension};
use crate::util::retry::Backoff;

/// The S3 destination setup wants (and what Describe reports, in the same shape, so they compare).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestinationSpec {
    pub role_arn: String,
    pub bucket_arn: String,
    pub prefix: Option<String>,
    pub error_prefix: Option<String>,
    pub buffer_size_mib: i32,
    pub buffer_interval_s: i32,
    pub compression: Compression,
    /// `FileExtension` as Describe reports it (setup never sets it; it is not compared by [`Self::diff`]).
    pub file_extension: Option<String>,
    /// `CustomTimeZone` as Describe reports it (setup never sets it; not compared by [`Self::diff`]).
    pub time_zone: Option<String>,
    /// `CloudWatchLoggingOptions` when enabled: where delivery errors are logged.
    pub error_logging: Option<ErrorLogging>,
    /// Dynamic partitioning: the MetadataExtraction query (records are deaggregated on `\n`, and `\n` appended).
    pub partition_query: Option<String>,
    /// The Lambda processor's function ARN: records are transformed by it before delivery.
    pub transform: Option<String>,
    /// Record format conversion: JSON records written as Parquet typed by a Glue table.
    pub conversion: Option<ConversionSpec>,
}

/// Record format conversion as setup configures it: the OpenX JSON SerDe in, Parquet (Snappy inside) out, typed
/// by a Glue table read as `role_arn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversionSpec {
    pub database: String,
    pub table: String,
    pub role_arn: String,
    /// The output format (`parquet`); another one (ORC) as Describe reports it.
    pub format: String,
}

impl std::fmt::Display for ConversionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} typed by Glue table {}.{}", self.format, self.database, self.table)
    }
}

/// The `DataFormatConversionConfiguration` of `spec` (`None`: turned off).
pub fn conversion_config(spec: Option<&ConversionSpec>) -> DataFormatConversionConfiguration {
    let Some(c) = spec else { return DataFormatConversionConfiguration::builder().enabled(false).build() };
    DataFormatConversionConfiguration::builder()
        .enabled(true)
        .schema_configuration(
            SchemaConfiguration::builder()
                .role_arn(&c.role_arn)
                .database_name(&c.database)
                .table_name(&c.table)
                .version_id("LATEST")
                .build(),
        )
        .input_format_configuration(
            InputFormatConfiguration::builder()
                .deserializer(Deserializer::builder().open_x_json_ser_de(OpenXJsonSerDe::builder().build()).build())
                .build(),
        )
        .output_format_configuration(
            OutputFormatConfiguration::builder()
                .serializer(
                    Serializer::builder()
                        .parquet_ser_de(ParquetSerDe::builder().compression(ParquetCompression::Snappy).build())
                        .build(),
                )
                .build(),
        )
        .build()
}

/// The conversion a described destination has, when enabled.
fn conversion_of(ext: &ExtendedS3DestinationDescription) -> Option<ConversionSpec> {
    let c = ext.data_format_conversion_configuration().filter(|c| c.enabled().unwrap_or(true))?;
    let schema = c.schema_configuration();
    let serializer = c.output_format_configuration().and_then(|o| o.serializer());
    Some(ConversionSpec {
        database: schema.and_then(|s| s.database_name()).unwrap_or_default().to_string(),
        table: schema.and_then(|s| s.table_name()).unwrap_or_default().to_string(),
        role_arn: schema.and_then(|s| s.role_arn()).unwrap_or_default().to_string(),
        format: if serializer.is_some_and(|s| s.orc_ser_de().is_some()) { "orc" } else { "parquet" }.to_string(),
    })
}

/// The log group and log stream a stream writes its delivery errors to.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorLogging {
    pub group: String,
    pub stream: String,
}

impl std::fmt::Display for ErrorLogging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.group, self.stream)
    }
}

/// What setup configures: a Lambda processor first (`transform`: the function's ARN and the stream's buffering
/// hints, which the processor buffers by too, its size capped at the processor's 3 MiB), then for a partitioned
/// stream: deaggregate records on `\n` (send packs lines), extract the keys with `query` (JQ-1.6), and append
/// `\n` to each record so objects stay line-delimited.
pub fn processing(transform: Option<(&str, i32, i32)>, query: Option<&str>) -> Option<ProcessingConfiguration> {
    let param = |name: ProcessorParameterName, value: &str| {
        ProcessorParameter::builder().parameter_name(name).parameter_value(value).build().expect("name and value set")
    };
    let mut processors = Vec::new();
    if let Some((arn, size_mib, interval_s)) = transform {
        processors.push(
            Processor::builder()
                .r#type(ProcessorType::Lambda)
                .parameters(param(ProcessorParameterName::LambdaArn, arn))
                .parameters(param(ProcessorParameterName::BufferSizeInMb, &size_mib.clamp(1, 3).to_string()))
                .parameters(param(ProcessorParameterName::BufferIntervalInSeconds, &interval_s.to_string()))
                .build()
                .expect("type set"),
        );
    }
    if let Some(query) = query {
        processors.push(
            Processor::builder()
                .r#type(ProcessorType::RecordDeAggregation)
                .parameters(param(ProcessorParameterName::SubRecordType, "DELIMITED"))
                .parameters(param(ProcessorParameterName::Delimiter, "Cg=="))
                .build()
                .expect("type set"),
        );
        processors.push(
            Processor::builder()
                .r#type(ProcessorType::MetadataExtraction)
                .parameters(param(ProcessorParameterName::MetadataExtractionQuery, query))
                .parameters(param(ProcessorParameterName::JsonParsingEngine, "JQ-1.6"))
                .build()
                .expect("type set"),
        );
        processors.push(Processor::builder().r#type(ProcessorType::AppendDelimiterToRecord).build().expect("type set"));
    }
    (!processors.is_empty())
        .then(|| ProcessingConfiguration::builder().enabled(true).set_processors(Some(processors)).build())
}

fn logging_options(logging: Option<&ErrorLogging>) -> CloudWatchLoggingOptions {
    match logging {
        Some(l) => CloudWatchLoggingOptions::builder()
            .enabled(true)
            .log_group_name(&l.group)
            .log_stream_name(&l.stream)
            .build(),
        None => CloudWatchLoggingOptions::builder().enabled(false).build(),
    }
}

impl DestinationSpec {
    pub fn bucket(&self) -> &str {
        bucket_of_arn(&self.bucket_arn)
    }

    /// The extension of delivered objects: `FileExtension`, else `.parquet` when converting, else the
    /// compression's default.
    pub fn extension(&self) -> String {
        delivered_extension(&self.compression, self.file_extension.as_deref(), self.conversion.is_some())
    }

    /// The Lambda processor's function and buffering (see [`processing`]).
    fn processor(&self) -> Option<(&str, i32, i32)> {
        self.transform.as_deref().map(|arn| (arn, self.buffer_size_mib, self.buffer_interval_s))
    }

    /// The field-by-field differences from `other` (what `self` has → what `other` wants).
    pub fn diff(&self, want: &DestinationSpec) -> Vec<String> {
        let mut out = Vec::new();
        let mut field = |name: &str, have: String, wanted: String| {
            if have != wanted {
                out.push(format!("{name}: {have} → {wanted}"));
            }
        };
        let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "(none)".into());
        field("bucket", self.bucket_arn.clone(), want.bucket_arn.clone());
        field("role", self.role_arn.clone(), want.role_arn.clone());
        field("buffer size", format!("{} MiB", self.buffer_size_mib), format!("{} MiB", want.buffer_size_mib));
        field("buffer interval", format!("{} s", self.buffer_interval_s), format!("{} s", want.buffer_interval_s));
        field("compression", self.compression.to_string(), want.compression.to_string());
        field("prefix", show(&self.prefix), show(&want.prefix));
        field("error prefix", show(&self.error_prefix), show(&want.error_prefix));
        let logging = |l: &Option<ErrorLogging>| l.as_ref().map(|l| l.to_string()).unwrap_or_else(|| "off".into());
        field("error logging", logging(&self.error_logging), logging(&want.error_logging));
        field("partitioning", show(&self.partition_query), show(&want.partition_query));
        field("transform", show(&self.transform), show(&want.transform));
        let format = |c: &Option<ConversionSpec>| c.as_ref().map(|c| c.to_string()).unwrap_or_else(|| "as sent".into());
        field("format", format(&self.conversion), format(&want.conversion));
        out
    }
}

/// A partitioned stream's processing, as Describe reports it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Partitioning {
    /// The MetadataExtraction jq query.
    pub query: Option<String>,
    /// RecordDeAggregation is on: records may carry several lines (up to 500).
    pub deaggregates: bool,
    pub append_delimiter: bool,
}

/// A stream as DescribeDeliveryStream reports it.
#[derive(Debug, Clone, Serialize)]
pub struct StreamInfo {
    pub name: String,
    pub arn: String,
    pub status: StreamStatus,
    pub version_id: String,
    pub destination_id: String,
    pub destination: Option<DestinationSpec>,
    /// Why records must not be packed (a processing Lambda or dynamic partitioning without deaggregation sees
    /// each record as one event), when that is the case.
    pub per_record_processing: Option<String>,
    /// Record format conversion is on: the objects are Parquet (or ORC), and records must be JSON.
    pub converts_formats: bool,
    /// Dynamic partitioning, when enabled.
    pub partitioning: Option<Partitioning>,
    pub failure: Option<String>,
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    /// Server-side encryption of the stream: its status and key type (`ENABLED (AWS_OWNED_CMK)`).
    pub encryption: Option<String>,
    /// The Kinesis data stream it reads (`KinesisStreamAsSource`); `None` for Direct Put.
    pub source: Option<SourceSpec>,
    /// The Lambda processor's own `BufferIntervalInSeconds` (default 60): records wait up to this long for
    /// their invocation, before the destination's buffer.
    pub transform_interval_s: Option<i32>,
}

/// A Kinesis data stream as a delivery stream's source.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SourceSpec {
    pub stream_arn: String,
    /// The role Firehose reads the data stream as (setup uses the delivery role).
    pub role_arn: String,
    /// `DeliveryStartTimestamp`: records put before it are not delivered.
    #[serde(skip)]
    pub start: Option<chrono::DateTime<chrono::Utc>>,
}

impl SourceSpec {
    /// The data stream's name, from its ARN.
    pub fn stream_name(&self) -> &str {
        self.stream_arn.rsplit_once(":stream/").map(|(_, n)| n).unwrap_or(&self.stream_arn)
    }
}

/// The stream as DescribeDeliveryStream tells it; `None` when there is no such stream.
pub async fn describe(fh: &Client, name: &str) -> Result<Option<StreamInfo>> {
    let out = match fh.describe_delivery_stream().delivery_stream_name(name).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
            return Ok(None);
        }
        Err(e) => return Err(sdk_error(format!("describe delivery stream `{name}`"), e)),
    };
    let Some(d) = out.delivery_stream_description() else {
        return Ok(None);
    };
    let dest = d.destinations().first();
    let ext = dest.and_then(|x| x.extended_s3_destination_description());
    let processors = processors_of(ext);
    let partitioning = partitioning_of(ext, &processors);
    let per_record_processing = per_record_processing(ext, &processors, partitioning.as_ref());
    let converts_formats =
        ext.and_then(|e| e.data_format_conversion_configuration()).is_some_and(|c| c.enabled().unwrap_or(true));
    let transform_interval_s = lambda_interval_of(&processors);
    let destination = destination_of(dest).map(|mut spec| {
        spec.partition_query = partitioning.as_ref().and_then(|p| p.query.clone());
        spec.transform = lambda_of(&processors);
        spec
    });
    Ok(Some(StreamInfo {
        name: d.delivery_stream_name().to_string(),
        arn: d.delivery_stream_arn().to_string(),
        status: StreamStatus::parse(d.delivery_stream_status().as_str()),
        version_id: d.version_id().to_string(),
        destination_id: dest.map(|x| x.destination_id().to_string()).unwrap_or_default(),
        destination,
        per_record_processing,
        converts_formats,
        partitioning,
        failure: d.failure_description().map(|f| format!("{}: {}", f.r#type().as_str(), f.details())),
        created: d.create_timestamp().and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
        encryption: d.delivery_stream_encryption_configuration().and_then(|e| {
            let status = e.status()?.as_str().to_string();
            Some(match e.key_type() {
                Some(k) => format!("{status} ({})", k.as_str()),
                None => status,
            })
        }),
        source: d.source().and_then(|s| s.kinesis_stream_source_description()).map(|k| SourceSpec {
            stream_arn: k.kinesis_stream_arn().unwrap_or_default().to_string(),
            role_arn: k.role_arn().unwrap_or_default().to_string(),
            start: k
                .delivery_start_timestamp()
                .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
        }),
        transform_interval_s,
    }))
}

/// The S3 destination as described (ExtendedS3, or the legacy S3 description).
fn destination_of(dest: Option<&DestinationDescription>) -> Option<DestinationSpec> {
    let ext = dest.and_then(|x| x.extended_s3_destination_description());
    // The ExtendedS3 and (legacy) S3 descriptions are distinct types with the same accessors.
    macro_rules! spec_of {
        ($e:expr) => {{
            let e = $e;
            DestinationSpec {
                role_arn: e.role_arn().to_string(),
                bucket_arn: e.bucket_arn().to_string(),
                prefix: e.prefix().filter(|p| !p.is_empty()).map(str::to_string),
                error_prefix: e.error_output_prefix().filter(|p| !p.is_empty()).map(str::to_string),
                buffer_size_mib: e.buffering_hints().and_then(|h| h.size_in_mbs()).unwrap_or(5),
                buffer_interval_s: e.buffering_hints().and_then(|h| h.interval_in_seconds()).unwrap_or(300),
                compression: Compression::parse(e.compression_format().as_str()),
                file_extension: None,
                time_zone: None,
                error_logging: e
                    .cloud_watch_logging_options()
                    .filter(|o| o.enabled() == Some(true))
                    .map(|o| ErrorLogging {
                        group: o.log_group_name().unwrap_or_default().to_string(),
                        stream: o.log_stream_name().unwrap_or_default().to_string(),
                    }),
                partition_query: None,
                transform: None,
                conversion: None,
            }
        }};
    }
    match ext {
        Some(e) => Some(DestinationSpec {
            file_extension: e.file_extension().filter(|x| !x.is_empty()).map(str::to_string),
            time_zone: e.custom_time_zone().filter(|z| !z.is_empty()).map(str::to_string),
            conversion: conversion_of(e),
            ..spec_of!(e)
        }),
        None => dest.and_then(|x| x.s3_destination_description()).map(|e| spec_of!(e)),
    }
}

/// The enabled processors of the destination: type and parameters, in order.
type Processors = Vec<(String, Vec<(String, String)>)>;

fn processors_of(ext: Option<&ExtendedS3DestinationDescription>) -> Processors {
    ext.and_then(|e| e.processing_configuration())
        .filter(|p| p.enabled().unwrap_or(true))
        .map(|p| {
            p.processors()
                .iter()
                .map(|x| {
                    let params = x
                        .parameters()
                        .iter()
                        .map(|pp| (pp.parameter_name().as_str().to_string(), pp.parameter_value().to_string()))
                        .collect();
                    (x.r#type().as_str().to_string(), params)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The Lambda processor's function ARN.
fn lambda_of(processors: &Processors) -> Option<String> {
    let (_, params) = processors.iter().find(|(kind, _)| kind == "Lambda")?;
    params.iter().find(|(n, _)| n == "LambdaArn").map(|(_, v)| v.clone())
}

/// The Lambda processor's buffer interval: its parameter, or Firehose's default of 60 s.
fn lambda_interval_of(processors: &Processors) -> Option<i32> {
    let (_, params) = processors.iter().find(|(kind, _)| kind == "Lambda")?;
    let given = params.iter().find(|(n, _)| n == "BufferIntervalInSeconds").and_then(|(_, v)| v.parse().ok());
    Some(given.unwrap_or(60))
}

fn has_processor(processors: &Processors, kind: &str) -> bool {
    processors.iter().any(|(x, _)| x == kind)
}

fn partitioning_of(ext: Option<&ExtendedS3DestinationDescription>, processors: &Processors) -> Option<Partitioning> {
    ext.and_then(|e| e.dynamic_partitioning_configuration()).filter(|p| p.enabled().unwrap_or(false)).map(|_| {
        Partitioning {
            query: processors
                .iter()
                .flat_map(|(_, params)| params)
                .find(|(n, _)| n == "MetadataExtractionQuery")
                .map(|(_, v)| v.clone()),
            deaggregates: has_processor(processors, "RecordDeAggregation"),
            append_delimiter: has_processor(processors, "AppendDelimiterToRecord"),
        }
    })
}

/// Why records must not be packed: something sees each record as one event.
fn per_record_processing(
    ext: Option<&ExtendedS3DestinationDescription>,
    processors: &Processors,
    partitioning: Option<&Partitioning>,
) -> Option<String> {
    // Record format conversion reads every JSON document of a record (concatenated documents are one row each),
    // so packed JSON lines convert; a record that fails conversion fails whole, with all its lines.
    ext?;
    if has_processor(processors, "Lambda") {
        Some("the stream has a processing Lambda".to_string())
    } else if partitioning.is_some_and(|p| !p.deaggregates) {
        Some("the stream uses dynamic partitioning without record deaggregation".to_string())
    } else {
        None
    }
}

fn hints(spec: &DestinationSpec) -> BufferingHints {
    BufferingHints::builder().size_in_mbs(spec.buffer_size_mib).interval_in_seconds(spec.buffer_interval_s).build()
}

/// Creates a Direct Put stream with an ExtendedS3 destination. While the new role is not yet assumable (IAM is
/// eventually consistent) the call is retried with jittered backoff for up to `iam_retry`; `on_retry` is told
/// of each retry so the user sees it.
pub async fn create(
    fh: &Client,
    name: &str,
    spec: &DestinationSpec,
    source: Option<&SourceSpec>,
    tags: &[(String, String)],
    iam_retry: Duration,
    on_retry: &(dyn Fn(u32, &str, Duration) + Send + Sync),
) -> Result<String> {
    let config = ExtendedS3DestinationConfiguration::builder()
        .role_arn(&spec.role_arn)
        .bucket_arn(&spec.bucket_arn)
        .set_prefix(spec.prefix.clone())
        .set_error_output_prefix(spec.error_prefix.clone())
        .buffering_hints(hints(spec))
        .compression_format(CompressionFormat::from(spec.compression.as_str()))
        .set_cloud_watch_logging_options(spec.error_logging.as_ref().map(|l| logging_options(Some(l))))
        .set_dynamic_partitioning_configuration(
            spec.partition_query.as_ref().map(|_| DynamicPartitioningConfiguration::builder().enabled(true).build()),
        )
        .set_processing_configuration(processing(spec.processor(), spec.partition_query.as_deref()))
        .set_data_format_conversion_configuration(spec.conversion.as_ref().map(|c| conversion_config(Some(c))))
        .build()
        .map_err(|e| Error::failed(format!("cannot build the destination configuration: {e}")))?;
    let tags = tags
        .iter()
        .map(|(k, v)| {
            Tag::builder().key(k).value(v).build().map_err(|e| Error::failed(format!("cannot build tag `{k}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let (stream_type, source_config) = match source {
            Some(s) => (
                DeliveryStreamType::KinesisStreamAsSource,
                Some(
                    aws_sdk_firehose::types::KinesisStreamSourceConfiguration::builder()
                        .kinesis_stream_arn(&s.stream_arn)
                        .role_arn(&s.role_arn)
                        .build()
                        .map_err(|e| Error::failed(format!("cannot build the source configuration: {e}")))?,
                ),
            ),
            None => (DeliveryStreamType::DirectPut, None),
        };
        let result = fh
            .create_delivery_stream()
            .delivery_stream_name(name)
            .delivery_stream_type(stream_type)
            .set_kinesis_stream_source_configuration(source_config)
            .extended_s3_destination_configuration(config.clone())
            .set_tags(Some(tags.clone()))
            .send()
            .await;
        match result {
            Ok(out) => return Ok(out.delivery_stream_arn().unwrap_or_default().to_string()),
            Err(e) if is_iam_propagation(e.code(), e.message().unwrap_or("")) && started.elapsed() < iam_retry => {
                let wait = backoff(attempt);
                on_retry(attempt, e.message().unwrap_or("role not assumable yet"), wait);
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                let propagation = is_iam_propagation(e.code(), e.message().unwrap_or(""));
                let err = sdk_error(format!("create delivery stream `{name}`"), e);
                return Err(if propagation {
                    err.with_hint(format!(
                        "the role was still not assumable after {}s of retries; wait a minute and re-run setup (it resumes), or raise --iam-retry-timeout",
                        iam_retry.as_secs()
                    ))
                } else {
                    err
                });
            }
        }
    }
}

/// IAM-propagation retries: ~1 s, 2 s, 4 s, then 8 s, each ±30 %.
const IAM_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));

fn backoff(attempt: u32) -> Duration {
    IAM_BACKOFF.delay(attempt)
}

/// Applies a changed destination in place (the stream's version goes up).
pub async fn update_destination(fh: &Client, info: &StreamInfo, spec: &DestinationSpec) -> Result<()> {
    let update = ExtendedS3DestinationUpdate::builder()
        .role_arn(&spec.role_arn)
        .bucket_arn(&spec.bucket_arn)
        .prefix(spec.prefix.clone().unwrap_or_default())
        .error_output_prefix(spec.error_prefix.clone().unwrap_or_default())
        .buffering_hints(hints(spec))
        .compression_format(CompressionFormat::from(spec.compression.as_str()))
        .cloud_watch_logging_options(logging_options(spec.error_logging.as_ref()))
        .processing_configuration(
            processing(spec.processor(), spec.partition_query.as_deref())
                .unwrap_or_else(|| ProcessingConfiguration::builder().enabled(false).build()),
        )
        .set_data_format_conversion_configuration(
            (spec.conversion.is_some() || info.converts_formats).then(|| conversion_config(spec.conversion.as_ref())),
        )
        .build();
    fh.update_destination()
        .delivery_stream_name(&info.name)
        .current_delivery_stream_version_id(&info.version_id)
        .destination_id(&info.destination_id)
        .extended_s3_destination_update(update)
        .send()
        .await
        .map_err(|e| sdk_error(format!("update the destination of delivery stream `{}`", info.name), e))?;
    Ok(())
}

pub async fn tags(fh: &Client, name: &str) -> Result<Vec<(String, String)>> {
    let out = fh
        .list_tags_for_delivery_stream()
        .delivery_stream_name(name)
        .send()
        .await
        .map_err(|e| sdk_error(format!("read tags of delivery stream `{name}`"), e))?;
    Ok(out.tags().iter().map(|t| (t.key().to_string(), t.value().unwrap_or_default().to_string())).collect())
}

/// Every delivery stream's name in the region (all pages of ListDeliveryStreams).
pub async fn list_names(fh: &Client) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let out = fh
            .list_delivery_streams()
            .limit(100)
            .set_exclusive_start_delivery_stream_name(start.take())
            .send()
            .await
            .map_err(|e| sdk_error("list delivery streams", e))?;
        names.extend(out.delivery_stream_names().iter().cloned());
        if !out.has_more_delivery_streams() || names.last().is_none() {
            return Ok(names);
        }
        start = names.last().cloned();
    }
}

/// The other streams (not `except`, not being deleted) that deliver to `bucket`: whoever made them, they still
/// need it.
pub async fn streams_delivering_to(fh: &Client, bucket: &str, except: &str) -> Result<Vec<String>> {
    let mut users = Vec::new();
    for name in list_names(fh).await?.into_iter().filter(|n| n != except) {
        let Some(info) = describe(fh, &name).await? else { continue };
        let delivers_there = info.destination.as_ref().is_some_and(|d| d.bucket() == bucket);
        if delivers_there && info.status != StreamStatus::Deleting {
            users.push(name);
        }
    }
    Ok(users)
}

/// The delivery streams other than `except` (not DELETING) whose Lambda processor is the function `name` (by
/// name or ARN, any qualifier).
pub async fn streams_transforming_with(fh: &Client, name: &str, except: &str) -> Result<Vec<String>> {
    let function_name = |arn: &str| arn.split(':').nth(6).unwrap_or(arn).to_string();
    let mut users = Vec::new();
    for stream in list_names(fh).await?.into_iter().filter(|n| n != except) {
        let Some(info) = describe(fh, &stream).await? else { continue };
        let uses =
            info.destination.as_ref().and_then(|d| d.transform.as_deref()).is_some_and(|f| function_name(f) == name);
        if uses && info.status != StreamStatus::Deleting {
            users.push(stream);
        }
    }
    Ok(users)
}

/// The delivery streams other than `except` (not DELETING) whose conversion reads Glue table `database.table`
/// (names compared as Glue folds them, in lower case).
pub async fn streams_converting_with(fh: &Client, database: &str, table: &str, except: &str) -> Result<Vec<String>> {
    let mut users = Vec::new();
    for name in list_names(fh).await?.into_iter().filter(|n| n != except) {
        let Some(info) = describe(fh, &name).await? else { continue };
        let reads = info
            .destination
            .as_ref()
            .and_then(|d| d.conversion.as_ref())
            .is_some_and(|c| c.database.eq_ignore_ascii_case(database) && c.table.eq_ignore_ascii_case(table));
        if reads && info.status != StreamStatus::Deleting {
            users.push(name);
        }
    }
    Ok(users)
}

/// The delivery streams other than `except` that read the data stream `arn` (not DELETING).
pub async fn streams_reading(fh: &Client, arn: &str, except: &str) -> Result<Vec<String>> {
    let mut readers = Vec::new();
    for name in list_names(fh).await?.into_iter().filter(|n| n != except) {
        let Some(info) = describe(fh, &name).await? else { continue };
        if info.source.as_ref().is_some_and(|s| s.stream_arn == arn) && info.status != StreamStatus::Deleting {
            readers.push(name);
        }
    }
    Ok(readers)
}

/// Deletes the stream; `false` when it was already gone.
pub async fn delete(fh: &Client, name: &str) -> Result<bool> {
    match fh.delete_delivery_stream().delivery_stream_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(false),
        Err(e) => Err(sdk_error(format!("delete delivery stream `{name}`"), e)),
    }
}

/// Poll interval: once a second for the first 15 s (the emulator and quick creations), then every 5 s, well
/// under the 5 calls/s control-plane quota.
fn poll_interval(elapsed: Duration) -> Duration {
    if elapsed < Duration::from_secs(15) { Duration::from_secs(1) } else { Duration::from_secs(5) }
}

/// Polls until the stream is ACTIVE; stops at once on CREATING_FAILED with its failure description.
pub async fn wait_until_active(
    fh: &Client,
    name: &str,
    timeout: Duration,
    on_poll: &(dyn Fn(&StreamStatus, Duration) + Send + Sync),
) -> Result<StreamInfo> {
    let started = Instant::now();
    loop {
        let info = describe(fh, name).await?.ok_or_else(|| {
            Error::failed(format!("delivery stream `{name}` disappeared while waiting for it to become ACTIVE"))
        })?;
        on_poll(&info.status, started.elapsed());
        match &info.status {
            StreamStatus::Active => return Ok(info),
            s if s.is_terminal_failure() => {
                return Err(Error::failed(format!(
                    "delivery stream `{name}` is {}{}",
                    info.status,
                    info.failure.as_deref().map(|f| format!(": {f}")).unwrap_or_default()
                ))
                .with_hint("delete it with `firehose-kit teardown`, fix the cause, and run setup again"));
            }
            _ => {}
        }
        if started.elapsed() >= timeout {
            return Err(Error::failed(format!(
                "delivery stream `{name}` is still {} after {}s",
                info.status,
                timeout.as_secs()
            ))
            .with_hint(
                "creation can take a few minutes on AWS: re-run setup (it resumes waiting) or raise --timeout",
            ));
        }
        tokio::time::sleep(poll_interval(started.elapsed())).await;
    }
}

/// Polls until the stream no longer exists.
pub async fn wait_until_gone(
    fh: &Client,
    name: &str,
    timeout: Duration,
    on_poll: &(dyn Fn(&StreamStatus, Duration) + Send + Sync),
) -> Result<()> {
    let started = Instant::now();
    loop {
        let Some(info) = describe(fh, name).await? else {
            return Ok(());
        };
        on_poll(&info.status, started.elapsed());
        if started.elapsed() >= timeout {
            return Err(Error::failed(format!(
                "delivery stream `{name}` is still {} after {}s",
                info.status,
                timeout.as_secs()
            ))
            .with_hint("deletion continues in the background on AWS; re-run teardown later to confirm"));
        }
        tokio::time::sleep(poll_interval(started.elapsed())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DestinationSpec {
        DestinationSpec {
            role_arn: "arn:aws:iam::1:role/r".into(),
            bucket_arn: "arn:aws:s3:::b".into(),
            prefix: None,
            error_prefix: None,
            buffer_size_mib: 1,
            buffer_interval_s: 60,
            compression: Compression::Uncompressed,
            file_extension: None,
            time_zone: None,
            error_logging: None,
            partition_query: None,
            transform: None,
            conversion: None,
        }
    }

    #[test]
    fn diff_lists_changed_fields() {
        let mut want = spec();
        assert!(spec().diff(&want).is_empty());
        want.buffer_size_mib = 5;
        want.compression = Compression::Gzip;
        want.time_zone = Some("Asia/Tokyo".into());
        assert_eq!(spec().diff(&want), vec!["buffer size: 1 MiB → 5 MiB", "compression: UNCOMPRESSED → GZIP"]);
        assert_eq!(spec().bucket(), "b");
        let mut parquet = spec();
        parquet.conversion = Some(ConversionSpec {
            database: "firehose_kit".into(),
            table: "apachelogs".into(),
            role_arn: "arn:aws:iam::1:role/r".into(),
            format: "parquet".into(),
        });
        assert_eq!(
            spec().diff(&parquet),
            vec!["format: as sent → parquet typed by Glue table firehose_kit.apachelogs"]
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) < Duration::from_millis(1400));
        assert!(backoff(10) <= Duration::from_millis(10_400));
        assert!(backoff(10) >= Duration::from_millis(5_600));
    }
}
