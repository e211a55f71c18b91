//! Kinesis Data Streams state: streams as persisted (`meta.json`), each shard's in-memory index of the records in
//! its file, sequence numbers, shard iterators, the CREATING → ACTIVE → DELETING lifecycle and the per-shard
//! throughput buckets of `--quota`.

use firehose_kit_domain::quota::Bucket;
use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use firehose_kit_domain::kinesis::{self, ITERATOR_TTL_MS};

/// Every stream, keyed by `region/name`.
#[derive(Default, Serialize, Deserialize)]
pub struct State {
    pub streams: BTreeMap<String, StreamMeta>,
}

/// A stream as persisted; its shards' records live in their files.
#[derive(Serialize, Deserialize)]
pub struct StreamMeta {
    pub name: String,
    pub region: String,
    pub arn: String,
    /// Distinguishes a re-created stream of the same name (its record files, its sequence numbers).
    pub incarnation: String,
    pub on_demand: bool,
    pub retention_hours: i64,
    pub created_ms: i64,
    pub deleting_since_ms: Option<i64>,
    pub tags: BTreeMap<String, String>,
    /// The first 32 digits of every sequence number of this stream.
    pub seq_prefix: String,
    /// Per shard: the number of the first record still kept when its file was last compacted.
    pub first_kept: Vec<u64>,
    #[serde(skip)]
    pub shards: Vec<Shard>,
}

pub use crate::lifecycle::Lifecycle;

impl StreamMeta {
    pub fn lifecycle(&self, now_ms: i64, create_delay_ms: i64, delete_delay_ms: i64) -> Lifecycle {
        Lifecycle::at(self.created_ms, self.deleting_since_ms, now_ms, create_delay_ms, delete_delay_ms)
    }

    pub fn retention_ms(&self) -> i64 {
        self.retention_hours * 3_600_000
    }

    pub fn mode(&self) -> &'static str {
        if self.on_demand { "ON_DEMAND" } else { "PROVISIONED" }
    }

    /// A record's sequence number: the stream's 32-digit prefix, the shard's index (4 digits) and the record's
    /// number in its shard (20 digits): 56 digits, increasing within a shard.
    pub fn sequence_number(&self, shard: usize, n: u64) -> String {
        format!("{}{shard:04}{n:020}", self.seq_prefix)
    }

    /// The shard and record number a sequence number of this stream encodes.
    pub fn parse_sequence_number(&self, seq: &str) -> Option<(usize, u64)> {
        let rest = seq.strip_prefix(&self.seq_prefix)?;
        if rest.len() != 24 || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((rest[..4].parse().ok()?, rest[4..].parse().ok()?))
    }

    /// The shard a record goes to.
    pub fn route(&self, hash: u128) -> usize {
        self.shards.iter().position(|s| (s.start..=s.end).contains(&hash)).unwrap_or(self.shards.len() - 1)
    }
}

/// A fresh 32-digit sequence-number prefix (`49` and 30 random digits, as AWS's begin with `49`).
pub fn new_seq_prefix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let digits: String = (0..30).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect();
    format!("49{digits}")
}

/// One record's place in its shard's file.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub arrival_ms: i64,
    pub offset: u64,
    pub len: u32,
}

/// A shard: its hash-key range and the index of the records its file holds.
pub struct Shard {
    pub start: u128,
    pub end: u128,
    /// The number of `index[0]` (records before it were trimmed by retention).
    pub first: u64,
    pub index: VecDeque<Entry>,
    /// Bytes of the file that belong to trimmed records.
    pub stale_bytes: u64,
    pub file_len: u64,
    pub write_records: Bucket,
    pub write_bytes: Bucket,
    pub read_calls: Bucket,
    pub read_bytes: Bucket,
}

impl Shard {
    pub fn new(start: u128, end: u128, first: u64) -> Self {
        Shard {
            start,
            end,
            first,
            index: VecDeque::new(),
            stale_bytes: 0,
            file_len: 0,
            write_records: Bucket::new(kinesis::SHARD_WRITE_RECORDS_PER_S as f64),
            write_bytes: Bucket::new(kinesis::SHARD_WRITE_BYTES_PER_S as f64),
            read_calls: Bucket::new(kinesis::SHARD_READ_CALLS_PER_S as f64),
            read_bytes: Bucket::new(kinesis::SHARD_READ_BYTES_PER_S as f64),
        }
    }

    /// The number the next record gets.
    pub fn next(&self) -> u64 {
        self.first + self.index.len() as u64
    }

    /// The first record number at or after `n` that is still kept.
    pub fn clamp(&self, n: u64) -> u64 {
        n.clamp(self.first, self.next())
    }

    /// The index entries from record `from` on: at most `max` records and `max_bytes` of frames (at least one
    /// record when any is there).
    pub fn entries_from(&self, from: u64, max: usize, max_bytes: usize) -> Vec<Entry> {
        let mut bytes = 0usize;
        self.index
            .iter()
            .skip((from - self.first) as usize)
            .take(max)
            .take_while(|e| {
                bytes += e.len as usize;
                bytes <= max_bytes || bytes == e.len as usize
            })
            .copied()
            .collect()
    }

    /// Drops records older than the retention from the index; returns how many.
    pub fn trim(&mut self, retention_ms: i64, now_ms: i64) -> usize {
        let mut trimmed = 0;
        while let Some(e) = self.index.front() {
            if e.arrival_ms >= now_ms - retention_ms {
                break;
            }
            self.stale_bytes += frame_len(e.len);
            self.index.pop_front();
            self.first += 1;
            trimmed += 1;
        }
        trimmed
    }

    /// The first record arriving at or after `ms`.
    pub fn at_timestamp(&self, ms: i64) -> u64 {
        self.first + self.index.partition_point(|e| e.arrival_ms < ms) as u64
    }

    /// How far a reader at `n` is behind the newest record (0 when it has read everything).
    pub fn millis_behind(&self, n: u64, now_ms: i64) -> i64 {
        match self.index.get(n.saturating_sub(self.first) as usize) {
            Some(e) if n < self.next() => (now_ms - e.arrival_ms).max(0),
            _ => 0,
        }
    }
}

/// The bytes a record's frame takes in its file (see [`super::store`]).
pub fn frame_len(payload: u32) -> u64 {
    4 + payload as u64
}

/// A shard iterator's contents: base64 of `key|incarnation|shard|n|issued_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Iterator {
    pub key: String,
    pub incarnation: String,
    pub shard: usize,
    pub n: u64,
    pub issued_ms: i64,
}

impl Iterator {
    pub fn encode(&self) -> String {
        let text = format!("{}|{}|{}|{}|{}", self.key, self.incarnation, self.shard, self.n, self.issued_ms);
        base64_simd::STANDARD.encode_to_string(text.as_bytes())
    }

    pub fn decode(text: &str) -> Option<Iterator> {
        let bytes = base64_simd::STANDARD.decode_to_vec(text.as_bytes()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.rsplitn(5, '|');
        let issued_ms = parts.next()?.parse().ok()?;
        let n = parts.next()?.parse().ok()?;
        let shard = parts.next()?.parse().ok()?;
        let incarnation = parts.next()?.to_string();
        let key = parts.next()?.to_string();
        Some(Iterator { key, incarnation, shard, n, issued_ms })
    }

    pub fn expired(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.issued_ms) > ITERATOR_TTL_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_and_iterators_round_trip() {
        let meta = StreamMeta {
            name: "s".into(),
            region: "us-east-1".into(),
            arn: String::new(),
            incarnation: "abc".into(),
            on_demand: false,
            retention_hours: 24,
            created_ms: 0,
            deleting_since_ms: None,
            tags: Default::default(),
            seq_prefix: new_seq_prefix(),
            first_kept: vec![],
            shards: vec![],
        };
        let seq = meta.sequence_number(3, 42);
        assert_eq!(seq.len(), 56);
        assert!(seq.starts_with("49"));
        assert_eq!(meta.parse_sequence_number(&seq), Some((3, 42)));
        assert!(meta.sequence_number(0, 9) < meta.sequence_number(0, 10));
        assert_eq!(meta.parse_sequence_number("49"), None);
        let it = Iterator { key: "us-east-1/a|b".into(), incarnation: "x".into(), shard: 2, n: 7, issued_ms: 5 };
        let text = it.encode();
        assert!(text.len() <= 512);
        assert_eq!(Iterator::decode(&text), Some(it.clone()));
        assert!(!it.expired(5 + ITERATOR_TTL_MS) && it.expired(6 + ITERATOR_TTL_MS));
    }
}
