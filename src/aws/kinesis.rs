//! Kinesis Data Streams for a chained pipeline (data stream → Firehose → S3): the data stream setup creates or
//! adopts and teardown deletes (control plane, with the SDK's retries), and `send`'s PutRecords call (data
//! plane, retries owned by send: entries that fail, a hot shard's throttling among them, are resent alone).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::operation::put_records::PutRecordsError;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamMode, StreamModeDetails, StreamStatus};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use rand::Rng;
use serde::Serialize;

use super::put::Entries;
use super::sdk_error;
use crate::error::{Error, Result};
use crate::util::retry::{EntryError, Failed, RetryClass};

/// A data stream as DescribeStreamSummary tells it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DataStream {
    pub name: String,
    pub arn: String,
    pub status: String,
    pub on_demand: bool,
    pub shards: i32,
    pub retention_hours: i32,
}

/// The data stream `name`; `None` when there is none.
pub async fn describe(client: &Client, name: &str) -> Result<Option<DataStream>> {
    let out = match client.describe_stream_summary().stream_name(name).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(None),
        Err(e) => return Err(sdk_error(format!("describe data stream `{name}`"), e)),
    };
    let Some(d) = out.stream_description_summary() else { return Ok(None) };
    Ok(Some(DataStream {
        name: d.stream_name().to_string(),
        arn: d.stream_arn().to_string(),
        status: d.stream_status().as_str().to_string(),
        on_demand: d.stream_mode_details().is_some_and(|m| m.stream_mode() == &StreamMode::OnDemand),
        shards: d.open_shard_count(),
        retention_hours: d.retention_period_hours(),
    }))
}

/// The data stream's tags.
pub async fn tags(client: &Client, name: &str) -> Result<Vec<(String, String)>> {
    let out = client
        .list_tags_for_stream()
        .stream_name(name)
        .send()
        .await
        .map_err(|e| sdk_error(format!("list the tags of data stream `{name}`"), e))?;
    Ok(out.tags().iter().map(|t| (t.key().to_string(), t.value().unwrap_or_default().to_string())).collect())
}

/// Creates the data stream: `shards` provisioned shards, or on-demand when `None`; tagged.
pub async fn create(client: &Client, name: &str, shards: Option<u32>, tags: &[(String, String)]) -> Result<()> {
    let mode = if shards.is_some() { StreamMode::Provisioned } else { StreamMode::OnDemand };
    let details = StreamModeDetails::builder().stream_mode(mode).build().expect("the mode is set");
    client
        .create_stream()
        .stream_name(name)
        .set_shard_count(shards.map(|n| n as i32))
        .stream_mode_details(details)
        .set_tags(Some(tags.iter().cloned().collect()))
        .send()
        .await
        .map_err(|e| sdk_error(format!("create data stream `{name}`"), e))?;
    Ok(())
}

/// Adds setup's tags to an existing data stream.
pub async fn tag(client: &Client, name: &str, tags: &[(String, String)]) -> Result<()> {
    client
        .add_tags_to_stream()
        .stream_name(name)
        .set_tags(Some(tags.iter().cloned().collect()))
        .send()
        .await
        .map_err(|e| sdk_error(format!("tag data stream `{name}`"), e))?;
    Ok(())
}

/// Polls until the data stream is ACTIVE (at most `timeout`), reporting each poll.
pub async fn wait_until_active(
    client: &Client,
    name: &str,
    timeout: Duration,
    on_poll: &(dyn Fn(&str, Duration) + Send + Sync),
) -> Result<DataStream> {
    let started = Instant::now();
    loop {
        if let Some(d) = describe(client, name).await?
            && d.status == StreamStatus::Active.as_str()
        {
            return Ok(d);
        }
        on_poll("CREATING", started.elapsed());
        if started.elapsed() > timeout {
            return Err(Error::failed(format!("data stream `{name}` is not ACTIVE after {}s", timeout.as_secs()))
                .with_hint("re-run setup to keep waiting (it resumes where it stopped)"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Deletes the data stream (it goes DELETING, then away); a stream already gone is fine.
pub async fn delete(client: &Client, name: &str) -> Result<bool> {
    match client.delete_stream().stream_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(false),
        Err(e) => Err(sdk_error(format!("delete data stream `{name}`"), e)),
    }
}

/// Records accepted per shard (from PutRecords' answers): how evenly partition keys spread.
#[derive(Debug, Clone, Default)]
pub struct Spread(Arc<Mutex<BTreeMap<String, u64>>>);

impl Spread {
    fn add(&self, shard: &str) {
        *self.0.lock().expect("spread lock").entry(shard.to_string()).or_default() += 1;
    }

    /// Records per shard id, in shard order.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.0.lock().expect("spread lock").clone()
    }
}

/// A random partition key: 128 bits in hex, so records spread evenly over the shards' hash ranges.
pub fn random_partition_key() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

/// The partition key `send --partition-key FIELD` gives a record: `field` of its JSON line (a string as it is,
/// another value as JSON text, cut to Kinesis's 256 characters), or a random key when the line has no such field
/// (or it is null or empty), so the record is sent all the same.
pub fn field_partition_key(line: &[u8], field: &str) -> String {
    let value = serde_json::from_slice::<serde_json::Value>(line).ok().and_then(|v| v.get(field).cloned());
    let key = match value {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    if key.is_empty() {
        return random_partition_key();
    }
    key.chars().take(firehose_kit_domain::kinesis::MAX_PARTITION_KEY_CHARS).collect()
}

/// Sends `records` (data and partition key) to the data stream in one PutRecords call; per entry `None` when
/// accepted (its shard counted in `spread`), else its error.
pub async fn put_records<'a>(
    client: &Client,
    stream: &str,
    records: impl Iterator<Item = (&'a [u8], String)>,
    spread: &Spread,
) -> std::result::Result<Entries, Failed> {
    let entries: Vec<PutRecordsRequestEntry> = records
        .map(|(data, key)| {
            PutRecordsRequestEntry::builder().data(Blob::new(data)).partition_key(key).build().expect("members set")
        })
        .collect();
    let sent = entries.len();
    match client.put_records().stream_name(stream).set_records(Some(entries)).send().await {
        Ok(out) => {
            let mut answers: Entries = out
                .records()
                .iter()
                .map(|r| match r.error_code() {
                    Some(code) => Some(EntryError {
                        code: code.to_string(),
                        message: r.error_message().unwrap_or("").to_string(),
                    }),
                    None => {
                        spread.add(r.shard_id().unwrap_or("?"));
                        None
                    }
                })
                .collect();
            answers.resize(
                sent.max(answers.len()),
                Some(EntryError { code: "no answer for the entry".into(), message: String::new() }),
            );
            Ok(answers)
        }
        Err(err) => Err(failure(stream, err)),
    }
}

fn failure(stream: &str, err: SdkError<PutRecordsError, HttpResponse>) -> Failed {
    let class = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => RetryClass::Transient,
        SdkError::ServiceError(se) => match se.err() {
            PutRecordsError::ProvisionedThroughputExceededException(_) | PutRecordsError::KmsThrottlingException(_) => {
                RetryClass::Throttled
            }
            _ => match se.raw().status().as_u16() {
                429 => RetryClass::Throttled,
                s if s >= 500 => RetryClass::Transient,
                _ => RetryClass::Permanent,
            },
        },
        _ => RetryClass::Permanent,
    };
    let code = err.code().unwrap_or("transport error").to_string();
    let missing = err.as_service_error().is_some_and(|e| e.is_resource_not_found_exception());
    let mut error = sdk_error(format!("send to data stream `{stream}`"), err);
    if missing {
        error = error.with_hint(
            "the data stream in front of the delivery stream is missing or not ACTIVE: re-run `firehose-kit setup --source kinesis`",
        );
    }
    Failed { class, code, error }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_of_the_json_line_is_the_key_and_a_missing_one_a_random_key() {
        assert_eq!(field_partition_key(br#"{"host":"10.0.0.1","status":200}"#, "host"), "10.0.0.1");
        assert_eq!(field_partition_key(br#"{"host":"10.0.0.1","status":200}"#, "status"), "200");
        let long = format!(r#"{{"k":"{}"}}"#, "x".repeat(300));
        assert_eq!(field_partition_key(long.as_bytes(), "k").chars().count(), 256);
        for missing in [&br#"{"host":null}"#[..], br#"{"other":1}"#, b"not json"] {
            assert_eq!(field_partition_key(missing, "host").len(), 32, "random: {}", String::from_utf8_lossy(missing));
        }
    }
}
