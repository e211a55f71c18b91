//! The data plane: PutRecord and PutRecordBatch. Limits are checked before anything is decoded, the quota and
//! injected faults decide each record's fate, and accepted records are journaled before the answer is sent.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Firehose;
use super::engine::Runtime;
use super::model::Lifecycle;
use super::quota::Refusal;
use super::validate;
use super::wire::{self, ApiError};
use crate::firehose::limits::{MAX_BATCH_RECORDS, MAX_RECORD_BYTES, batch_data_fits};
use crate::firehose::types::{EncryptionStatus, StreamStatus};
use crate::local::s3::store::now_ms;

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

#[derive(Serialize)]
struct PutRecordOutput {
    #[serde(rename = "RecordId")]
    record_id: String,
    #[serde(rename = "Encrypted")]
    encrypted: bool,
}

#[derive(Serialize)]
struct PutRecordBatchOutput<'a> {
    #[serde(rename = "FailedPutCount")]
    failed: usize,
    #[serde(rename = "Encrypted")]
    encrypted: bool,
    #[serde(rename = "RequestResponses")]
    responses: Vec<Entry<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Entry<'a> {
    Accepted {
        #[serde(rename = "RecordId")]
        record_id: String,
    },
    Failed {
        #[serde(rename = "ErrorCode")]
        code: &'a str,
        #[serde(rename = "ErrorMessage")]
        message: &'a str,
    },
}

/// The decoded size of base64 text, from its length and padding.
fn decoded_len(b64: &str) -> usize {
    let padding = b64.bytes().rev().take_while(|&b| b == b'=').count().min(2);
    (b64.len() / 4 * 3).saturating_sub(padding)
}

/// Below this much data a call is journaled on the request's own task: a page-cache write of a few hundred KiB
/// is quicker than handing it to the blocking pool and back. Larger batches go to the blocking pool.
const INLINE_JOURNAL_BYTES: usize = 256 * 1024;

/// Journals and buffers the records at `spans` of `data` (acknowledgeable once this returns).
async fn accept(
    rt: Arc<Runtime>,
    spans: Vec<std::ops::Range<usize>>,
    data: Vec<u8>,
) -> Result<super::engine::Accepted, ApiError> {
    let inline = data.len() < INLINE_JOURNAL_BYTES;
    let run = move || {
        let records: Vec<&[u8]> = spans.iter().map(|s| &data[s.clone()]).collect();
        rt.accept(&records, now_ms())
    };
    let result = if inline { run() } else { tokio::task::spawn_blocking(run).await.map_err(ApiError::internal)? };
    result.map_err(ApiError::internal)
}

/// Decodes one record's base64 into the front of `out` with SIMD code; returns its length. Invalid base64 is a
/// SerializationException (and never a panic: the length is checked before decoding).
fn decode_into(b64: &[u8], out: &mut [u8]) -> Result<usize, ApiError> {
    let invalid = |e: base64_simd::Error| ApiError::serialization(format!("Record Data is not valid base64: {e}"));
    let len = base64_simd::STANDARD.decoded_length(b64).map_err(invalid)?;
    if len > out.len() {
        return Err(ApiError::serialization("Record Data is not valid base64: its padding is inconsistent"));
    }
    base64_simd::STANDARD.decode(b64, base64_simd::Out::from_slice(&mut out[..len])).map_err(invalid).map(|d| d.len())
}

/// An opaque, unique record id (AWS's are long digit strings; only uniqueness matters to clients).
fn record_id(incarnation: &str, end_offset: u64) -> String {
    format!("{incarnation}{end_offset:020}")
}

fn throttled() -> ApiError {
    ApiError::new("ServiceUnavailableException", Refusal::Throttled.message())
}

impl Firehose {
    /// The runtime of an ACTIVE stream, its incarnation, and whether records are encrypted at rest now.
    fn active_runtime(&self, name: Option<&str>, region: &str) -> Result<(String, Arc<Runtime>, bool), ApiError> {
        let name = validate::stream_name(name)?;
        let streams = self.streams.lock().expect("streams lock");
        let stream = streams
            .get(&super::stream_key(region, &name))
            .ok_or_else(|| super::not_found(&name, &self.config.account_id))?;
        match self.lifecycle(&stream.state) {
            Lifecycle::Is(StreamStatus::Active) => Ok((
                stream.state.incarnation.clone(),
                stream.runtime.clone(),
                self.encryption_status(&stream.state) == EncryptionStatus::Enabled,
            )),
            Lifecycle::Gone => Err(super::not_found(&name, &self.config.account_id)),
            Lifecycle::Is(other) => Err(ApiError::new(
                "ResourceNotFoundException",
                format!("Firehose {name} under account {} is not ACTIVE (it is {other}).", self.config.account_id),
            )),
        }
    }

    pub(super) async fn put_record(&self, body: &[u8], region: &str) -> Result<Vec<u8>, ApiError> {
        let input: PutRecordInput = serde_json::from_slice(body).map_err(ApiError::serialization)?;
        let record = input.record.ok_or_else(|| ApiError::validation(wire::null_violation("record")))?;
        if decoded_len(&record.data) > MAX_RECORD_BYTES {
            return Err(ApiError::validation(format!(
                "Value at 'record.data' failed to satisfy constraint: Member must have length less than or equal to {MAX_RECORD_BYTES}"
            )));
        }
        let mut data = vec![0u8; decoded_len(&record.data)];
        let len = decode_into(record.data.as_bytes(), &mut data)?;
        data.truncate(len);
        let (incarnation, rt, encrypted) = self.active_runtime(input.name.as_deref(), region)?;
        if !rt.admit_request() || !rt.admit_record(data.len()) {
            return Err(throttled());
        }
        if let Some(refusal) = self.faults.lock().expect("faults lock").roll() {
            return Err(ApiError::new("ServiceUnavailableException", refusal.message()));
        }
        let accepted = accept(rt, std::iter::once(0..data.len()).collect(), data).await?;
        let end = accepted.ends.first().copied().unwrap_or_default();
        wire::ok(&PutRecordOutput { record_id: record_id(&incarnation, end), encrypted })
    }

    pub(super) async fn put_record_batch(&self, body: &[u8], region: &str) -> Result<Vec<u8>, ApiError> {
        let input: PutRecordBatchInput = serde_json::from_slice(body).map_err(ApiError::serialization)?;
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
        let mut oversized = Vec::new();
        let mut total = 0usize;
        for (i, r) in input.records.iter().enumerate() {
            let len = decoded_len(&r.data);
            if len > MAX_RECORD_BYTES {
                oversized.push(format!(
                    "Value at 'records.{}.member.data' failed to satisfy constraint: Member must have length less than or equal to {MAX_RECORD_BYTES}",
                    i + 1
                ));
            }
            total += len;
        }
        if !oversized.is_empty() {
            return Err(ApiError::validations(oversized));
        }
        if !batch_data_fits(total) {
            return Err(ApiError::invalid("Records size exceeds 4 MB limit"));
        }
        let (incarnation, rt, encrypted) = self.active_runtime(input.name.as_deref(), region)?;
        if !rt.admit_request() {
            return Err(throttled());
        }
        // Decode everything into one buffer; `spans[i]` is record i's range in it.
        let mut data = vec![0u8; total];
        let mut spans = Vec::with_capacity(n);
        let mut pos = 0usize;
        for r in &input.records {
            let len = decode_into(r.data.as_bytes(), &mut data[pos..])?;
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
        let ends = if accepted_spans.is_empty() { Vec::new() } else { accept(rt, accepted_spans, data).await?.ends };
        let mut ends = ends.into_iter();
        let responses: Vec<Entry> = refusals
            .iter()
            .map(|r| match r {
                None => Entry::Accepted { record_id: record_id(&incarnation, ends.next().unwrap_or_default()) },
                Some(refusal) => Entry::Failed { code: refusal.code(), message: refusal.message() },
            })
            .collect();
        let failed = refusals.iter().filter(|r| r.is_some()).count();
        // About 48 bytes per entry: sized once, so a 500-entry answer is written without reallocating.
        wire::ok_sized(&PutRecordBatchOutput { failed, encrypted, responses }, 64 + n * 48)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    #[test]
    fn decoded_length_accounts_for_padding() {
        let e = base64::engine::general_purpose::STANDARD;
        for n in 0..10 {
            let s = e.encode(vec![7u8; n]);
            assert_eq!(decoded_len(&s), n);
        }
        assert_eq!(decoded_len("===="), 1, "hostile padding never underflows");
    }

    #[test]
    fn simd_decoding_matches_and_refuses_bad_input_without_panicking() {
        let e = base64::engine::general_purpose::STANDARD;
        for n in [0usize, 1, 2, 3, 100, 1000] {
            let raw: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let text = e.encode(&raw);
            let mut out = vec![0u8; decoded_len(&text)];
            assert_eq!(decode_into(text.as_bytes(), &mut out).unwrap(), n);
            assert_eq!(out, raw);
        }
        for bad in ["a", "ab=c", "!!!!", "QQ==QQ==", "QUJD\n"] {
            let mut out = vec![0u8; 16];
            assert!(decode_into(bad.as_bytes(), &mut out).is_err(), "{bad}");
        }
        let mut short = [0u8; 1];
        assert!(decode_into(b"QUJD", &mut short).is_err(), "a buffer too small is an error");
    }
}
