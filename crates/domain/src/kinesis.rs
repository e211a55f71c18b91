//! Kinesis Data Streams' rules, for a stream in front of Firehose (`KinesisStreamAsSource`): names, shards and
//! their hash-key ranges, routing a partition key to its shard (MD5 into the 128-bit hash space, or an
//! `ExplicitHashKey`), PutRecords' limits, per-shard throughput, retention, and the KPL's aggregated-record
//! format that Firehose de-aggregates before delivery.
//!
//! Used by `send` (batching for PutRecords) and by the emulator (serving Kinesis, and Firehose reading it).

use md5::{Digest, Md5};
use prost::Message;

/// Stream names: 1–128 characters of letters, digits, `_`, `.` and `-`.
pub const STREAM_NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";
pub const MAX_STREAM_NAME_CHARS: usize = 128;
/// PutRecords takes 1–500 entries.
pub const MAX_PUT_RECORDS: usize = 500;
/// A record's data plus its partition key: at most 1 MiB.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// A PutRecords request's data and partition keys together: at most 5 MiB.
pub const MAX_PUT_RECORDS_BYTES: usize = 5 * 1024 * 1024;
/// Partition keys are 1–256 Unicode characters.
pub const MAX_PARTITION_KEY_CHARS: usize = 256;
/// Writes per shard and second: records and bytes.
pub const SHARD_WRITE_RECORDS_PER_S: u64 = 1_000;
pub const SHARD_WRITE_BYTES_PER_S: u64 = 1024 * 1024;
/// Reads per shard and second: GetRecords calls and bytes.
pub const SHARD_READ_CALLS_PER_S: u64 = 5;
pub const SHARD_READ_BYTES_PER_S: u64 = 2 * 1024 * 1024;
/// GetRecords returns at most this many records, and at most [`MAX_GET_RECORDS_BYTES`].
pub const MAX_GET_RECORDS: usize = 10_000;
pub const MAX_GET_RECORDS_BYTES: usize = 10 * 1024 * 1024;
/// Shard iterators expire after five minutes.
pub const ITERATOR_TTL_MS: i64 = 5 * 60 * 1000;
/// Retention: 24 hours by default, up to 365 days.
pub const DEFAULT_RETENTION_HOURS: i64 = 24;
pub const MAX_RETENTION_HOURS: i64 = 8760;
/// The shards an on-demand stream starts with (its initial 4 MiB/s of write capacity).
pub const ON_DEMAND_SHARDS: usize = 4;
/// Shards per account and region (the default quota in most regions).
pub const ACCOUNT_SHARD_LIMIT: usize = 500;
/// The 4 bytes that begin a KPL-aggregated record.
pub const KPL_MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// The actions Firehose's role needs on a source stream.
pub const SOURCE_READ_ACTIONS: [&str; 4] =
    ["kinesis:DescribeStream", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards"];

/// What Firehose's role must be allowed to read its source data stream (`for_what` = `source`).
pub fn read_needs(stream_arn: &str) -> Vec<crate::access::Need> {
    SOURCE_READ_ACTIONS
        .iter()
        .map(|action| crate::access::Need {
            action: action.to_string(),
            resource: stream_arn.into(),
            for_what: "source",
        })
        .collect()
}

/// Why a stream name is invalid, if it is.
pub fn stream_name_problem(name: &str) -> Option<String> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if name.is_empty() || name.len() > MAX_STREAM_NAME_CHARS || !ok_chars {
        Some(format!(
            "Member must satisfy regular expression pattern: {STREAM_NAME_PATTERN} and have length between 1 and {MAX_STREAM_NAME_CHARS}"
        ))
    } else {
        None
    }
}

/// A shard's id: `shardId-` and 12 digits.
pub fn shard_id(index: usize) -> String {
    format!("shardId-{index:012}")
}

/// The index in a shard id made by [`shard_id`].
pub fn shard_index(id: &str) -> Option<usize> {
    let digits = id.strip_prefix("shardId-")?;
    (digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// The hash-key ranges of `n` shards splitting 0 … 2^128−1 evenly (inclusive bounds); the last shard takes the
/// remainder.
pub fn shard_ranges(n: usize) -> Vec<(u128, u128)> {
    assert!(n > 0, "a stream has at least one shard");
    if n == 1 {
        return vec![(0, u128::MAX)];
    }
    let step = u128::MAX / n as u128 + 1;
    (0..n)
        .map(|i| {
            let start = step * i as u128;
            (start, if i + 1 == n { u128::MAX } else { start + step - 1 })
        })
        .collect()
}

/// A partition key's hash key: its UTF-8 bytes' MD5 read as a big-endian 128-bit unsigned integer.
pub fn hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// An `ExplicitHashKey`: a decimal 0 … 2^128−1 (`0|[1-9]\d{0,38}`).
pub fn parse_explicit_hash_key(text: &str) -> Option<u128> {
    let canonical = text == "0" || (!text.starts_with('0') && !text.is_empty() && text.len() <= 39);
    if !canonical || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The shard (index into `ranges`) whose range holds `hash`.
pub fn route(ranges: &[(u128, u128)], hash: u128) -> usize {
    ranges.iter().position(|&(start, end)| (start..=end).contains(&hash)).unwrap_or(ranges.len() - 1)
}

/// Why a partition key is invalid, if it is.
pub fn partition_key_problem(key: &str) -> Option<&'static str> {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_PARTITION_KEY_CHARS {
        Some("Member must have length less than or equal to 256 and greater than or equal to 1")
    } else {
        None
    }
}

/// What a record costs against the request and record limits: its data and its partition key.
pub fn entry_bytes(data_len: usize, partition_key: &str) -> usize {
    data_len + partition_key.len()
}

/// One user record inside a KPL-aggregated record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubRecord {
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    records: Vec<Record>,
}

#[derive(Clone, PartialEq, Message)]
struct Record {
    #[prost(uint64, required, tag = "1")]
    partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "vec", required, tag = "3")]
    data: Vec<u8>,
}

/// The user records of a KPL-aggregated record: magic, protobuf, and the protobuf's MD5. `None` when `data` is
/// not one (no magic, a wrong MD5, protobuf that does not decode, an index out of its table): then it is a plain
/// record, as the KCL treats it.
pub fn deaggregate(data: &[u8]) -> Option<Vec<SubRecord>> {
    let body = data.strip_prefix(&KPL_MAGIC)?;
    if body.len() < 16 {
        return None;
    }
    let (message, digest) = body.split_at(body.len() - 16);
    if Md5::digest(message).as_slice() != digest {
        return None;
    }
    let agg = AggregatedRecord::decode(message).ok()?;
    agg.records
        .into_iter()
        .map(|r| {
            let partition_key = agg.partition_key_table.get(r.partition_key_index as usize)?.clone();
            let explicit_hash_key = match r.explicit_hash_key_index {
                Some(i) => Some(agg.explicit_hash_key_table.get(i as usize)?.clone()),
                None => None,
            };
            Some(SubRecord { partition_key, explicit_hash_key, data: r.data })
        })
        .collect()
}

/// A KPL-aggregated record of `records` (what the Kinesis Producer Library sends).
pub fn aggregate(records: &[SubRecord]) -> Vec<u8> {
    let mut keys: Vec<String> = Vec::new();
    let mut hash_keys: Vec<String> = Vec::new();
    let index = |table: &mut Vec<String>, key: &str| -> u64 {
        match table.iter().position(|k| k == key) {
            Some(i) => i as u64,
            None => {
                table.push(key.to_string());
                (table.len() - 1) as u64
            }
        }
    };
    let records = records
        .iter()
        .map(|r| Record {
            partition_key_index: index(&mut keys, &r.partition_key),
            explicit_hash_key_index: r.explicit_hash_key.as_deref().map(|k| index(&mut hash_keys, k)),
            data: r.data.clone(),
        })
        .collect();
    let message =
        AggregatedRecord { partition_key_table: keys, explicit_hash_key_table: hash_keys, records }.encode_to_vec();
    let mut out = KPL_MAGIC.to_vec();
    out.extend_from_slice(&message);
    out.extend_from_slice(&Md5::digest(&message));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ranges_match_aws() {
        let two = shard_ranges(2);
        assert_eq!(two[0], (0, 170141183460469231731687303715884105727));
        assert_eq!(two[1], (170141183460469231731687303715884105728, u128::MAX));
        assert_eq!(shard_ranges(1), vec![(0, u128::MAX)]);
        for n in [3, 4, 7, 500] {
            let r = shard_ranges(n);
            assert_eq!(r[0].0, 0);
            assert_eq!(r[n - 1].1, u128::MAX);
            assert!(r.windows(2).all(|w| w[0].1 + 1 == w[1].0), "{n} contiguous");
        }
    }

    #[test]
    fn partition_keys_route_by_md5() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661: below the midpoint.
        assert_eq!(hash_key("a"), 0x0cc175b9c0f1b6a831c399e269772661);
        let two = shard_ranges(2);
        assert_eq!(route(&two, hash_key("a")), 0);
        assert_eq!(route(&two, u128::MAX), 1);
        assert_eq!(parse_explicit_hash_key("340282366920938463463374607431768211455"), Some(u128::MAX));
        for bad in ["", "01", "-1", "340282366920938463463374607431768211456", "1e3"] {
            assert_eq!(parse_explicit_hash_key(bad), None, "{bad}");
        }
        assert_eq!(shard_index(&shard_id(7)), Some(7));
        assert_eq!(shard_index("shardId-7"), None);
    }

    #[test]
    fn kpl_records_round_trip_and_plain_records_stay_plain() {
        let subs = vec![
            SubRecord { partition_key: "a".into(), explicit_hash_key: None, data: b"one".to_vec() },
            SubRecord { partition_key: "b".into(), explicit_hash_key: Some("5".into()), data: b"two".to_vec() },
            SubRecord { partition_key: "a".into(), explicit_hash_key: None, data: b"three".to_vec() },
        ];
        let agg = aggregate(&subs);
        assert_eq!(deaggregate(&agg), Some(subs));
        let mut corrupt = agg.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert_eq!(deaggregate(&corrupt), None, "a wrong MD5 is a plain record");
        assert_eq!(deaggregate(b"plain line\n"), None);
        assert!(stream_name_problem("logs.in-1_x").is_none());
        assert!(stream_name_problem("a/b").is_some() && stream_name_problem("").is_some());
    }
}
