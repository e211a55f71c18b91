//! The data plane: PutRecord and PutRecordBatch. Limits are checked before anything is decoded, the quota and
//! injected faults decide each record's fate, and accepted records are journaled before the answer is sent.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Firehose;
use super::engine::Pipeline;
use super::engine::lock;
use super::model::Lifecycle;
use super::quota::Refusal;
use super::validate;
use crate::json::{self as wire, ApiError};
use crate::s3::store::now_ms;
use firehose_kit_domain::limits::{MAX_BATCH_RECORDS, MAX_RECORD_BYTES, batch_data_fits};
use firehose_kit_domain::types::{EncryptionStatus, StreamStatus};
use firehose_kit_domain::util::persist::Durability;

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
    data: Base64Text<'a>,
}

/// A record's `Data`: the bytes of a JSON string, borrowed from the request body when it has no escapes. They
/// are read as bytes, not `str`: base64 decoding rejects anything that is not base64, so validating UTF-8 first
/// would only scan every byte of the batch once more.
struct Base64Text<'a>(Cow<'a, [u8]>);

impl<'de: 'a, 'a> Deserialize<'de> for Base64Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Base64Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string of base64 text")
            }
            fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(Base64Text(Cow::Borrowed(v)))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Base64Text(Cow::Borrowed(v.as_bytes())))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
                Ok(Base64Text(Cow::Owned(v.to_vec())))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Base64Text(Cow::Owned(v.as_bytes().to_vec())))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

/// An opaque, unique record id: the stream's incarnation then the record's end offset in its journal as 20
/// digits (AWS's are long digit strings; only uniqueness matters to clients). Written straight into the answer:
/// a 500-record batch formats 500 of them.
struct RecordId<'a> {
    incarnation: &'a str,
    end_offset: u64,
}

impl RecordId<'_> {
    /// Appends the id to `out`.
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.incarnation.as_bytes());
        let mut digits = [0u8; 20];
        let mut n = self.end_offset;
        for pair in digits.rchunks_exact_mut(2) {
            let two = (n % 100) as usize * 2;
            pair.copy_from_slice(&DIGIT_PAIRS[two..two + 2]);
            n /= 100;
        }
        out.extend_from_slice(&digits);
    }
}

/// "00" to "99", for writing two digits at a time.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

impl Serialize for RecordId<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut id = Vec::with_capacity(self.incarnation.len() + 20);
        self.write(&mut id);
        // A `str` followed by ASCII digits is UTF-8.
        serializer.serialize_str(std::str::from_utf8(&id).map_err(serde::ser::Error::custom)?)
    }
}

#[derive(Serialize)]
struct PutRecordOutput<'a> {
    #[serde(rename = "RecordId")]
    record_id: RecordId<'a>,
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
        record_id: RecordId<'a>,
    },
    Failed {
        #[serde(rename = "ErrorCode")]
        code: &'a str,
        #[serde(rename = "ErrorMessage")]
        message: &'a str,
    },
}

impl PutRecordBatchOutput<'_> {
    /// The answer's JSON, byte for byte what serde writes (tested), but written directly: a 500-record answer is
    /// 500 record ids, and serde would scan each for characters to escape. Ids with an incarnation that is not
    /// plain ASCII letters and digits (never made by this emulator) go through serde.
    fn to_json(&self, incarnation: &str) -> Result<Vec<u8>, ApiError> {
        let capacity = 64 + self.responses.len() * (incarnation.len() + 36);
        if !incarnation.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return wire::ok_sized(self, capacity);
        }
        let mut body = Vec::with_capacity(capacity);
        body.extend_from_slice(b"{\"FailedPutCount\":");
        body.extend_from_slice(self.failed.to_string().as_bytes());
        body.extend_from_slice(if self.encrypted { b",\"Encrypted\":true" } else { b",\"Encrypted\":false" });
        body.extend_from_slice(b",\"RequestResponses\":[");
        for (i, entry) in self.responses.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            match entry {
                Entry::Accepted { record_id } => {
                    body.extend_from_slice(b"{\"RecordId\":\"");
                    record_id.write(&mut body);
                    body.extend_from_slice(b"\"}");
                }
                failed => serde_json::to_writer(&mut body, failed).map_err(ApiError::internal)?,
            }
        }
        body.extend_from_slice(b"]}");
        Ok(body)
    }
}

/// The decoded size of base64 text, from its length and padding.
fn decoded_len(b64: &[u8]) -> usize {
    let padding = b64.iter().rev().take_while(|&&b| b == b'=').count().min(2);
    (b64.len() / 4 * 3).saturating_sub(padding)
}

/// Below this much data a call is journaled on the request's own task: a page-cache write of a few hundred KiB
/// is quicker than handing it to the blocking pool and back. Larger batches go to the blocking pool.
const INLINE_JOURNAL_BYTES: usize = 256 * 1024;

/// Journals and buffers the records at `spans` of `data` (acknowledgeable once this returns). A journal that
/// cannot take them (a full disk) refuses the call with InternalFailure, which producers retry, and the
/// emulator warns about it.
async fn accept(
    stream: &str,
    pipeline: Arc<Pipeline>,
    spans: Vec<std::ops::Range<usize>>,
    data: Vec<u8>,
    storage: &super::storage::StorageErrors,
    inline: bool,
) -> Result<super::engine::Accepted, ApiError> {
    let run = move || {
        let records: Vec<&[u8]> = spans.iter().map(|s| &data[s.clone()]).collect();
        pipeline.accept(&records, now_ms())
    };
    let result = if inline { run() } else { tokio::task::spawn_blocking(run).await.map_err(ApiError::internal)? };
    result.map_err(|e| {
        let what = format!("the journal of {stream}: {e}");
        storage.record(stream, "journal", &what, "the call was answered InternalFailure (nothing acknowledged)");
        ApiError::internal(e)
    })
}

/// Decodes one record's base64 with SIMD code, appending it to `out` (into its spare capacity: the batch's buffer
/// is reserved once and never zeroed); returns its length. Invalid base64 is a SerializationException, and so is
/// text that would decode to more than `room` bytes (the size the limits were checked against).
fn decode_append(b64: &[u8], out: &mut Vec<u8>, room: usize) -> Result<usize, ApiError> {
    let invalid = |e: base64_simd::Error| ApiError::serialization(format!("Record Data is not valid base64: {e}"));
    let len = base64_simd::STANDARD.decoded_length(b64).map_err(invalid)?;
    if len > room {
        return Err(ApiError::serialization("Record Data is not valid base64: its padding is inconsistent"));
    }
    let before = out.len();
    base64_simd::STANDARD.decode_append(b64, out).map_err(invalid)?;
    Ok(out.len() - before)
}

fn throttled() -> ApiError {
    ApiError::new("ServiceUnavailableException", Refusal::Throttled.message())
}

/// What a put needs of an ACTIVE stream.
struct Active {
    name: String,
    incarnation: String,
    pipeline: Arc<Pipeline>,
    encrypted: bool,
}

impl Active {
    /// Journals the records at `spans` of `data`; a small call on the request's own task (unless every append is
    /// synced), a large one on the blocking pool.
    async fn accept(
        &self,
        spans: Vec<std::ops::Range<usize>>,
        data: Vec<u8>,
        fh: &Firehose,
    ) -> Result<super::engine::Accepted, ApiError> {
        let inline = data.len() < INLINE_JOURNAL_BYTES && fh.config.durability == Durability::Process;
        accept(&self.name, self.pipeline.clone(), spans, data, &fh.ctx.gate.storage, inline).await
    }
}

impl Firehose {
    /// The lanes of an ACTIVE stream, its incarnation, and whether records are encrypted at rest now.
    fn active_pipeline(&self, name: Option<&str>, region: &str) -> Result<Active, ApiError> {
        let name = validate::stream_name(name)?;
        let streams = crate::lock(&self.streams);
        let stream = streams
            .get(&super::stream_key(region, &name))
            .ok_or_else(|| super::not_found(&name, &self.config.account_id))?;
        if stream.state.source.is_some() {
            return Err(ApiError::invalid(
                "This operation is not permitted on KinesisStreamAsSource delivery stream type.",
            ));
        }
        match self.lifecycle(&stream.state) {
            Lifecycle::Is(StreamStatus::Active) => Ok(Active {
                name: name.clone(),
                incarnation: stream.state.incarnation.clone(),
                pipeline: stream.pipeline.clone().map_err(|why| {
                    ApiError::invalid(format!(
                        "Firehose {name} accepts no records: {why}. Its journaled records are kept; UpdateDestination with a configuration this emulator can run delivers them."
                    ))
                })?,
                encrypted: self.encryption_status(&stream.state) == EncryptionStatus::Enabled,
            }),
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
        let b64 = &record.data.0;
        let len = decoded_len(b64);
        if len > MAX_RECORD_BYTES {
            return Err(ApiError::validation(format!(
                "Value at 'record.data' failed to satisfy constraint: Member must have length less than or equal to {MAX_RECORD_BYTES}"
            )));
        }
        let mut data = Vec::with_capacity(len);
        decode_append(b64, &mut data, len)?;
        let active = self.active_pipeline(input.name.as_deref(), region)?;
        if !active.pipeline.admit_request() || !active.pipeline.admit_record(data.len()) {
            return Err(throttled());
        }
        if let Some(refusal) = lock(&self.faults).roll() {
            return Err(ApiError::new("ServiceUnavailableException", refusal.message()));
        }
        let accepted = active.accept(std::iter::once(0..data.len()).collect(), data, self).await?;
        let end = accepted.ends.first().copied().unwrap_or_default();
        let record_id = RecordId { incarnation: &active.incarnation, end_offset: end };
        wire::ok(&PutRecordOutput { record_id, encrypted: active.encrypted })
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
            let len = decoded_len(&r.data.0);
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
        let active = self.active_pipeline(input.name.as_deref(), region)?;
        let (incarnation, encrypted) = (active.incarnation.as_str(), active.encrypted);
        if !active.pipeline.admit_request() {
            return Err(throttled());
        }
        // Decode everything into one buffer; `spans[i]` is record i's range in it.
        let mut data = Vec::with_capacity(total);
        let mut spans = Vec::with_capacity(n);
        for r in &input.records {
            let pos = data.len();
            let len = decode_append(&r.data.0, &mut data, total - pos)?;
            spans.push(pos..pos + len);
        }
        // Decide each record's fate: quota first, then injected faults.
        let mut refusals: Vec<Option<Refusal>> = Vec::with_capacity(n);
        {
            let mut faults = lock(&self.faults);
            for span in &spans {
                let refusal =
                    if !active.pipeline.admit_record(span.len()) { Some(Refusal::Throttled) } else { faults.roll() };
                refusals.push(refusal);
            }
        }
        let accepted_spans: Vec<std::ops::Range<usize>> =
            spans.iter().zip(&refusals).filter(|(_, r)| r.is_none()).map(|(s, _)| s.clone()).collect();
        let ends =
            if accepted_spans.is_empty() { Vec::new() } else { active.accept(accepted_spans, data, self).await?.ends };
        let mut ends = ends.into_iter();
        let responses: Vec<Entry> = refusals
            .iter()
            .map(|r| match r {
                None => {
                    Entry::Accepted { record_id: RecordId { incarnation, end_offset: ends.next().unwrap_or_default() } }
                }
                Some(refusal) => Entry::Failed { code: refusal.code(), message: refusal.message() },
            })
            .collect();
        let failed = refusals.iter().filter(|r| r.is_some()).count();
        PutRecordBatchOutput { failed, encrypted, responses }.to_json(incarnation)
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
            assert_eq!(decoded_len(s.as_bytes()), n);
        }
        assert_eq!(decoded_len(b"===="), 1, "hostile padding never underflows");
    }

    #[test]
    fn record_ids_are_the_incarnation_and_twenty_digits() {
        let id = |end_offset| {
            let json = serde_json::to_string(&RecordId { incarnation: "0a1b2c3d4e5f", end_offset }).unwrap();
            json.trim_matches('"').to_string()
        };
        assert_eq!(id(0), "0a1b2c3d4e5f00000000000000000000");
        assert_eq!(id(1234), "0a1b2c3d4e5f00000000000000001234");
        assert_eq!(id(u64::MAX), format!("0a1b2c3d4e5f{}", u64::MAX));
        let long = "i".repeat(100);
        let json = serde_json::to_string(&RecordId { incarnation: &long, end_offset: 9 }).unwrap();
        assert_eq!(json, format!("\"{long}00000000000000000009\""), "long incarnations too");
        let json = serde_json::to_string(&PutRecordOutput {
            record_id: RecordId { incarnation: "x", end_offset: 7 },
            encrypted: false,
        })
        .unwrap();
        assert_eq!(json, r#"{"RecordId":"x00000000000000000007","Encrypted":false}"#);
    }

    #[test]
    fn the_batch_answer_is_what_serde_writes() {
        let refusal = Refusal::Throttled;
        for incarnation in ["0a1b2c3d4e5f", "odd\"one"] {
            for encrypted in [false, true] {
                let accepted = |end_offset| Entry::Accepted { record_id: RecordId { incarnation, end_offset } };
                let failed = Entry::Failed { code: refusal.code(), message: refusal.message() };
                let out = PutRecordBatchOutput {
                    failed: 1,
                    encrypted,
                    responses: vec![accepted(12), failed, accepted(987_654_321)],
                };
                assert_eq!(
                    String::from_utf8(out.to_json(incarnation).unwrap()).unwrap(),
                    serde_json::to_string(&out).unwrap()
                );
            }
        }
    }

    #[test]
    fn data_is_read_as_bytes_borrowed_when_unescaped() {
        let input: PutRecordBatchInput =
            serde_json::from_slice(br#"{"Records":[{"Data":"QUJD"},{"Data":"QU\/D"}]}"#).unwrap();
        assert!(matches!(input.records[0].data.0, Cow::Borrowed(b"QUJD")));
        assert_eq!(&*input.records[1].data.0, b"QU/D", "JSON escapes are undone");
        for bad in [r#"{"Records":[{"Data":5}]}"#, r#"{"Records":[{"Data":[1,2]}]}"#, r#"{"Records":[{"Data":null}]}"#]
        {
            let err = serde_json::from_slice::<PutRecordBatchInput>(bad.as_bytes()).err().expect(bad).to_string();
            assert!(err.contains("expected a string of base64 text"), "{bad}: {err}");
        }
    }

    #[test]
    fn simd_decoding_matches_and_refuses_bad_input_without_panicking() {
        let e = base64::engine::general_purpose::STANDARD;
        for n in [0usize, 1, 2, 3, 100, 1000] {
            let raw: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let text = e.encode(&raw);
            let mut out = vec![9u8];
            assert_eq!(decode_append(text.as_bytes(), &mut out, decoded_len(text.as_bytes())).unwrap(), n);
            assert_eq!(out[0], 9, "appended after what was there");
            assert_eq!(out[1..], raw);
        }
        for bad in ["a", "ab=c", "!!!!", "QQ==QQ==", "QUJD\n"] {
            let mut out = Vec::new();
            assert!(decode_append(bad.as_bytes(), &mut out, 16).is_err(), "{bad}");
        }
        let mut out = Vec::new();
        assert!(decode_append(b"QUJD", &mut out, 2).is_err(), "more than the room left is an error");
        assert!(out.is_empty());
    }
}
