//! A stream's stored configuration read into what its lanes do: the destination ([`Target`]), its buffering hints,
//! the Lambda processor with its own hints, dynamic partitioning, format conversion. Each setting has one meaning
//! here: the destination's hints buffer what is written, the processor's what is sent to the function.
//!
//! A configuration that does not read back (written by another version, or a hand-edited `streams.json`) is an
//! error: the stream then stops accepting and says why, and its journaled records wait; it is never delivered
//! around a stage it was configured with.

use std::sync::Arc;

use super::FirehoseConfig;
use super::engine::Hints;
use super::model::StreamState;
use super::target::{ConversionTarget, PartitionSpec, Target};
use firehose_kit_domain::partitioning::Partitioner;
use firehose_kit_domain::prefix::{Prefix, Prefixes};
use firehose_kit_domain::transform::LambdaProcessor;

/// A stream's Lambda processor.
#[derive(Debug, Clone)]
pub struct Processor {
    pub lambda: LambdaProcessor,
    /// The role Firehose invokes the function as (the processor's `RoleArn`, else the destination's).
    pub role_arn: String,
    /// The processor's buffering hints (what is sent to the function at a time).
    pub hints: Hints,
    /// Where records the transformation failed go: `ErrorOutputPrefix`, or `processing-failed/`.
    pub error_prefix: Prefix,
}

impl Processor {
    /// The processing-failed output's target.
    pub fn error_target(&self, destination: &Target) -> Target {
        Target {
            conversion: None,
            keys: None,
            prefix: self.error_prefix.clone(),
            output_type: Some(firehose_kit_domain::transform::ERROR_OUTPUT_TYPE),
            append_delimiter: false,
            ..destination.clone()
        }
    }
}

/// What a stream's lanes do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    /// The destination's buffering hints.
    pub hints: Hints,
    pub processor: Option<Processor>,
    pub partitioning: Option<Arc<PartitionSpec>>,
}

/// An interval in milliseconds, `--speed` times shorter.
fn interval_ms(seconds: f64, config: &FirehoseConfig) -> i64 {
    (seconds * 1000.0 / config.speed) as i64
}

/// The plan of a stored stream; an error says which part of its configuration does not read back.
pub fn plan(
    state: &StreamState,
    prefixes: Prefixes,
    zone: chrono_tz::Tz,
    config: &FirehoseConfig,
) -> Result<Plan, String> {
    let d = &state.destination;
    let processors = Partitioner::from_config(d.processing.as_ref())
        .map_err(|e| format!("its processing configuration does not read back: {e}"))?;
    let append_delimiter = processors.append_delimiter && !d.dynamic_partitioning_enabled();
    let partitioning = match d.dynamic_partitioning_enabled() {
        true => {
            let partitioner = Partitioner::from_config(d.processing.as_ref())
                .map_err(|e| format!("its processing configuration does not read back: {e}"))?;
            Some(Arc::new(PartitionSpec {
                partitioner,
                error_prefix: prefixes.error.clone(),
                limit: config.partition_limit,
                retry: std::time::Duration::from_millis(interval_ms(
                    d.dynamic_partitioning
                        .as_ref()
                        .and_then(|c| c["RetryOptions"]["DurationInSeconds"].as_i64())
                        .unwrap_or(firehose_kit_domain::partitioning::DEFAULT_RETRY_S)
                        .max(0) as f64,
                    config,
                ) as u64),
            }))
        }
        false => None,
    };
    let lambda = LambdaProcessor::from_config(d.processing.as_ref())
        .map_err(|e| format!("its Lambda processor does not read back: {e}"))?;
    let processor = lambda.map(|lambda| Processor {
        role_arn: lambda.role_arn.clone().unwrap_or_else(|| d.role_arn.clone()),
        hints: Hints {
            size_bytes: (lambda.buffer_size_mb * 1024.0 * 1024.0) as usize,
            interval_ms: interval_ms(lambda.buffer_interval_s as f64, config),
        },
        lambda,
        error_prefix: prefixes.error_output(firehose_kit_domain::transform::ERROR_OUTPUT_TYPE),
    });
    let conversion = firehose_kit_domain::conversion::parse(d.data_format_conversion.as_ref())
        .map_err(|e| format!("its data format conversion does not read back: {e}"))?
        .map(|conversion| {
            Arc::new(ConversionTarget {
                conversion,
                error_prefix: prefixes.error_output(firehose_kit_domain::conversion::ERROR_OUTPUT_TYPE),
            })
        });
    let logging = d.cloud_watch_logging_options.as_ref().filter(|o| o["Enabled"] == serde_json::Value::Bool(true));
    let extension = firehose_kit_domain::types::delivered_extension(
        &d.compression,
        d.file_extension.as_deref(),
        conversion.is_some(),
    );
    let target = Target {
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
        keys: None,
        output_type: None,
        conversion,
        append_delimiter,
    };
    let hints = Hints {
        size_bytes: d.size_in_mbs as usize * 1024 * 1024,
        interval_ms: interval_ms(d.interval_in_seconds as f64, config),
    };
    Ok(Plan { target, hints, processor, partitioning })
}
