//! The data plane of Kinesis Data Streams: PutRecord and PutRecords (routed to shards by hash key, one write per
//! shard, answered per entry), GetShardIterator and GetRecords, with the errors and messages AWS answers.

use serde_json::{Value, json};

use super::handlers::{ok, secs, validation};
use super::model::{Entry, Iterator, Lifecycle, State, StreamMeta};
use super::store::encode_frame;
use super::{Input, Kinesis, ReadFailure};
use crate::json::{ApiError, null_violation};
use crate::s3::store::now_ms;
use firehose_kit_domain::kinesis::{
    self as rules, MAX_GET_RECORDS, MAX_PUT_RECORDS, MAX_PUT_RECORDS_BYTES, MAX_RECORD_BYTES,
};

/// One record to put, checked.
struct Put {
    data: Vec<u8>,
    key: String,
    hash: u128,
}

fn check_record(i: Option<usize>, data: Option<&str>, key: Option<&str>, ehk: Option<&str>) -> Result<Put, ApiError> {
    let at = |m: &str| match i {
        Some(i) => format!("records.{}.member.{m}", i + 1),
        None => m.to_string(),
    };
    let data = data.ok_or_else(|| ApiError::validation(null_violation(&at("data"))))?;
    let key = key.ok_or_else(|| ApiError::validation(null_violation(&at("partitionKey"))))?;
    let data = base64_simd::STANDARD
        .decode_to_vec(data.as_bytes())
        .map_err(|e| ApiError::serialization(format!("{} is not valid base64: {e}", at("data"))))?;
    if let Some(constraint) = rules::partition_key_problem(key) {
        return Err(validation(key, &at("partitionKey"), constraint));
    }
    if rules::entry_bytes(data.len(), key) > MAX_RECORD_BYTES {
        return Err(validation(
            "java.nio.HeapByteBuffer",
            &at("data"),
            &format!("Member must have length less than or equal to {MAX_RECORD_BYTES}"),
        ));
    }
    let hash = match ehk {
        Some(text) => rules::parse_explicit_hash_key(text).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {text}"
            ))
        })?,
        None => rules::hash_key(key),
    };
    Ok(Put { data, key: key.to_string(), hash })
}

/// Where a put record went (shard, number), or why it did not (error code and message).
type Placed = Result<(usize, u64), (String, String)>;

/// Appends accepted records to their shards (one write per shard); returns per record its shard and number, or
/// why it was not stored: throttled, or its shard's write failed (the other shards' records stay stored, so the
/// answer is per entry and a producer resends only what failed).
fn append(k: &Kinesis, meta: &mut StreamMeta, puts: &[Put]) -> Vec<Placed> {
    let wall = now_ms();
    let mut frames: Vec<Vec<u8>> = vec![Vec::new(); meta.shards.len()];
    let mut pending: Vec<Vec<Entry>> = vec![Vec::new(); meta.shards.len()];
    let mut results = Vec::with_capacity(puts.len());
    let retention = meta.retention_ms();
    for p in puts {
        let shard = meta.route(p.hash);
        let s = &mut meta.shards[shard];
        // Arrival times never go back within a shard (AT_TIMESTAMP searches them), even if the clock does.
        let now = s.index.back().map_or(wall, |e| e.arrival_ms.max(wall));
        let now = pending[shard].last().map_or(now, |e| e.arrival_ms.max(now));
        let size = rules::entry_bytes(p.data.len(), &p.key) as f64;
        if k.config.quota && !(s.write_records.take(1.0, now) && s.write_bytes.take(size, now)) {
            results.push(Err(k.throttled(meta, shard)));
            continue;
        }
        let n = s.next() + pending[shard].len() as u64;
        let offset = s.file_len + frames[shard].len() as u64;
        let len = encode_frame(&mut frames[shard], n, now, &p.key, &p.data);
        pending[shard].push(Entry { arrival_ms: now, offset, len });
        results.push(Ok((shard, n)));
    }
    for (shard, bytes) in frames.iter().enumerate().filter(|(_, b)| !b.is_empty()) {
        if let Err(e) = k.store.append(meta, shard, meta.shards[shard].file_len, bytes) {
            tracing::warn!(stream = %meta.name, shard, "storage error, the shard's records were not stored: {e}");
            for r in results.iter_mut().filter(|r| matches!(r, Ok((s, _)) if *s == shard)) {
                *r = Err(("InternalFailure".into(), "Internal service failure.".into()));
            }
            continue;
        }
        let s = &mut meta.shards[shard];
        s.trim(retention, wall);
        s.file_len += bytes.len() as u64;
        s.index.extend(pending[shard].drain(..));
    }
    results
}

pub fn put_record(k: &Kinesis, state: &mut State, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
    let put =
        check_record(None, input.data.as_deref(), input.partition_key.as_deref(), input.explicit_hash_key.as_deref())?;
    let meta = k.active(state, &input, region)?;
    match append(k, meta, std::slice::from_ref(&put)).remove(0) {
        Ok((shard, n)) => ok(json!({
            "ShardId": rules::shard_id(shard),
            "SequenceNumber": meta.sequence_number(shard, n),
            "EncryptionType": "NONE",
        })),
        Err((code, message)) if code == "InternalFailure" => Err(ApiError::internal(message)),
        Err((_, message)) => Err(ApiError::new("ProvisionedThroughputExceededException", message)),
    }
}

pub fn put_records(k: &Kinesis, state: &mut State, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
    let records = input.records.as_deref().ok_or_else(|| ApiError::validation(null_violation("records")))?;
    if records.is_empty() || records.len() > MAX_PUT_RECORDS {
        return Err(validation(
            "[...]",
            "records",
            &format!("Member must have length less than or equal to {MAX_PUT_RECORDS} and greater than or equal to 1"),
        ));
    }
    let puts = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            check_record(Some(i), r.data.as_deref(), r.partition_key.as_deref(), r.explicit_hash_key.as_deref())
        })
        .collect::<Result<Vec<Put>, ApiError>>()?;
    let total: usize = puts.iter().map(|p| rules::entry_bytes(p.data.len(), &p.key)).sum();
    if total > MAX_PUT_RECORDS_BYTES {
        return Err(ApiError::invalid(format!(
            "Records size exceeds 5 MB limit: the request's data and partition keys are {total} bytes"
        )));
    }
    let meta = k.active(state, &input, region)?;
    let results = append(k, meta, &puts);
    let failed = results.iter().filter(|r| r.is_err()).count();
    let entries: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            Ok((shard, n)) => {
                json!({"SequenceNumber": meta.sequence_number(shard, n), "ShardId": rules::shard_id(shard)})
            }
            Err((code, message)) => json!({"ErrorCode": code, "ErrorMessage": message}),
        })
        .collect();
    ok(json!({"FailedRecordCount": failed, "Records": entries, "EncryptionType": "NONE"}))
}

/// The shard a call names, by its id.
fn shard_of(k: &Kinesis, meta: &StreamMeta, id: Option<&str>) -> Result<usize, ApiError> {
    let id = id.ok_or_else(|| ApiError::validation(null_violation("shardId")))?;
    rules::shard_index(id).filter(|&i| i < meta.shards.len()).ok_or_else(|| {
        ApiError::new(
            "ResourceNotFoundException",
            format!("Shard {id} in stream {} under account {} does not exist", meta.name, k.config.account_id),
        )
    })
}

pub fn get_shard_iterator(k: &Kinesis, state: &mut State, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
    let kind =
        input.shard_iterator_type.clone().ok_or_else(|| ApiError::validation(null_violation("shardIteratorType")))?;
    let key = k.key(&input, region)?;
    let meta = k.active(state, &input, region)?;
    let shard = shard_of(k, meta, input.shard_id.as_deref())?;
    let s = &meta.shards[shard];
    let at_seq = |after: u64| -> Result<u64, ApiError> {
        let seq = input
            .starting_sequence_number
            .as_deref()
            .ok_or_else(|| ApiError::invalid(format!("StartingSequenceNumber must be specified for {kind}.")))?;
        match meta.parse_sequence_number(seq) {
            Some((i, n)) if i == shard => {
                let n = n
                    .checked_add(after)
                    .ok_or_else(|| ApiError::invalid(format!("StartingSequenceNumber {seq} is out of range.")))?;
                Ok(s.clamp(n))
            }
            Some((i, _)) => Err(ApiError::invalid(format!(
                "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call to a shard with {}",
                rules::shard_id(i),
                rules::shard_id(shard)
            ))),
            None => Err(ApiError::invalid(format!(
                "StartingSequenceNumber {seq} used in GetShardIterator on shard {} in stream {} under account {} is invalid.",
                rules::shard_id(shard),
                meta.name,
                k.config.account_id
            ))),
        }
    };
    let n = match kind.as_str() {
        "TRIM_HORIZON" => s.first,
        "LATEST" => s.next(),
        "AT_SEQUENCE_NUMBER" => at_seq(0)?,
        "AFTER_SEQUENCE_NUMBER" => at_seq(1)?,
        "AT_TIMESTAMP" => {
            let ts =
                input.timestamp.ok_or_else(|| ApiError::invalid("Timestamp must be specified for AT_TIMESTAMP."))?;
            s.at_timestamp((ts * 1000.0) as i64)
        }
        other => {
            return Err(validation(
                other,
                "shardIteratorType",
                "Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]",
            ));
        }
    };
    let it = Iterator { key, incarnation: meta.incarnation.clone(), shard, n, issued_ms: now_ms() };
    ok(json!({"ShardIterator": it.encode()}))
}

pub fn get_records(k: &Kinesis, state: &mut State, input: Input, _region: &str) -> Result<Vec<u8>, ApiError> {
    let text = input.shard_iterator.as_deref().ok_or_else(|| ApiError::validation(null_violation("shardIterator")))?;
    let limit = input.limit.unwrap_or(MAX_GET_RECORDS as i64);
    if !(1..=MAX_GET_RECORDS as i64).contains(&limit) {
        return Err(validation(&limit.to_string(), "limit", "Member must have value between 1 and 10000"));
    }
    let it = Iterator::decode(text).ok_or_else(|| ApiError::invalid("Invalid ShardIterator."))?;
    let now = now_ms();
    if it.expired(now) {
        return Err(ApiError::new(
            "ExpiredIteratorException",
            format!(
                "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {} milliseconds.",
                it.issued_ms,
                now,
                rules::ITERATOR_TTL_MS
            ),
        ));
    }
    let name = it.key.split_once('/').map(|(_, n)| n.to_string()).unwrap_or_default();
    let meta = state
        .streams
        .get_mut(&it.key)
        .filter(|m| m.incarnation == it.incarnation && k.lifecycle(m, now) != Lifecycle::Gone)
        .ok_or_else(|| k.not_found(&name))?;
    if it.shard >= meta.shards.len() {
        return Err(ApiError::invalid("Invalid ShardIterator."));
    }
    let batch = match k.read(meta, it.shard, it.n, limit as usize, now) {
        Ok(batch) => batch,
        Err(ReadFailure::Throttled) => {
            let (_, message) = k.throttled(meta, it.shard);
            return Err(ApiError::new("ProvisionedThroughputExceededException", message));
        }
        Err(ReadFailure::Storage(e)) => return Err(ApiError::internal(e)),
        Err(ReadFailure::NotFound) => return Err(k.not_found(&name)),
    };
    let (records, next, behind) = (batch.records, batch.next, batch.millis_behind);
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "SequenceNumber": meta.sequence_number(it.shard, r.n),
                "ApproximateArrivalTimestamp": secs(r.arrival_ms),
                "Data": base64_simd::STANDARD.encode_to_string(&r.data),
                "PartitionKey": r.partition_key,
            })
        })
        .collect();
    let next_it = Iterator { n: next, issued_ms: now, ..it };
    ok(json!({"Records": records, "NextShardIterator": next_it.encode(), "MillisBehindLatest": behind}))
}
