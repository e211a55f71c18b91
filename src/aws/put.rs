//! Firehose's data plane for `send`: one PutRecordBatch call, its answer in the client's terms (per-entry errors,
//! or a whole-call failure classified from the SDK's typed error), and the hint for a failure retrying cannot fix.
//! The retries themselves are send's (`pipeline::sender`); the client used here has SDK retries disabled.

use aws_sdk_firehose::Client;
use aws_sdk_firehose::operation::put_record_batch::PutRecordBatchError;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::sdk_error;
use crate::util::retry::{EntryError, Failed, RetryClass};

/// Per entry, in order: `None` when the entry was accepted, else its error.
pub type Entries = Vec<Option<EntryError>>;

/// Sends `records` (each one record's data) to `stream` in one PutRecordBatch call.
pub async fn put_record_batch<'a>(
    client: &Client,
    stream: &str,
    records: impl Iterator<Item = &'a [u8]>,
) -> Result<Entries, Failed> {
    let records: Vec<Record> =
        records.map(|data| Record::builder().data(Blob::new(data)).build().expect("data is set")).collect();
    let sent = records.len();
    match client.put_record_batch().delivery_stream_name(stream).set_records(Some(records)).send().await {
        Ok(out) => {
            let mut entries: Entries = out
                .request_responses()
                .iter()
                .map(|r| {
                    r.error_code().map(|code| EntryError {
                        code: code.to_string(),
                        message: r.error_message().unwrap_or("").to_string(),
                    })
                })
                .collect();
            // An answer shorter than the request leaves entries unanswered: they were not accepted.
            entries.resize(
                sent.max(entries.len()),
                Some(EntryError { code: "no answer for the entry".into(), message: String::new() }),
            );
            Ok(entries)
        }
        Err(err) => Err(failure(stream, err)),
    }
}

/// A whole-call failure: its class, its code and the error to report (with a hint when the fix is known).
fn failure(stream: &str, err: SdkError<PutRecordBatchError, HttpResponse>) -> Failed {
    let class = classify(&err);
    let code = err.code().unwrap_or("transport error").to_string();
    let hint = permanent_hint(&err);
    let mut error = sdk_error(format!("send to delivery stream `{stream}`"), err);
    if let Some(h) = hint {
        error = error.with_hint(h);
    }
    Failed { class, code, error }
}

/// Classifies a failed call by the SDK's typed error; only an error the model does not name falls back to its
/// HTTP status.
fn classify(err: &SdkError<PutRecordBatchError, HttpResponse>) -> RetryClass {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => RetryClass::Transient,
        SdkError::ServiceError(se) => match se.err() {
            PutRecordBatchError::ServiceUnavailableException(_) => RetryClass::Throttled,
            PutRecordBatchError::ResourceNotFoundException(_)
            | PutRecordBatchError::InvalidArgumentException(_)
            | PutRecordBatchError::InvalidKmsResourceException(_)
            | PutRecordBatchError::InvalidSourceException(_) => RetryClass::Permanent,
            _ => match se.raw().status().as_u16() {
                429 => RetryClass::Throttled,
                s if s >= 500 => RetryClass::Transient,
                _ => RetryClass::Permanent,
            },
        },
        _ => RetryClass::Permanent,
    }
}

fn permanent_hint(err: &SdkError<PutRecordBatchError, HttpResponse>) -> Option<String> {
    match err.as_service_error()? {
        PutRecordBatchError::ResourceNotFoundException(_) => Some(
            "the stream is missing or not ACTIVE: create it with `firehose-kit setup` (it waits until ACTIVE)".into(),
        ),
        PutRecordBatchError::InvalidArgumentException(_) => {
            Some("Firehose refused the request; check the stream's configuration with `firehose-kit status`".into())
        }
        PutRecordBatchError::InvalidKmsResourceException(_) => {
            Some("the stream's KMS key is disabled, missing or not usable by Firehose".into())
        }
        _ => None,
    }
}
