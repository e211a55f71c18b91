//! CloudWatch Logs state: groups, streams and their events, and the rules PutLogEvents applies (batch size,
//! order, span, events too new or too old) and retention.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{group_not_found, invalid, stream_not_found};
use crate::json::ApiError;

const MAX_BATCH_BYTES: usize = 1_048_576;
const EVENT_OVERHEAD: usize = 26;
const MAX_BATCH_EVENTS: usize = 10_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// PutLogEvents refuses events older than this whatever the retention.
const MAX_AGE_MS: i64 = 14 * DAY_MS;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub timestamp: i64,
    pub message: String,
    pub ingestion_time: i64,
    /// Unique across the emulator: the event id.
    pub seq: u64,
}

/// A log stream: its events are on disk in its own append-only file (read back by the calls that return them);
/// memory holds only their [`Summary`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogStream {
    pub created_ms: i64,
    #[serde(skip)]
    pub summary: Summary,
}

/// What memory keeps of a stream's events: per minute of their timestamps, how many, their bytes and their extremes.
/// It is bounded by the minutes the retention keeps (at most 14 days of them), not by how many events were put, so
/// a stream that logs a delivery failure every second for days costs no more memory than one that logs a few.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    minutes: BTreeMap<i64, Minute>,
    /// Events expired from the summary but still in the stream's file (rewritten once they outnumber the rest).
    pub stale_in_file: usize,
}

#[derive(Debug, Clone, Copy)]
struct Minute {
    count: usize,
    bytes: usize,
    first: i64,
    last: i64,
    last_ingestion: i64,
}

impl Summary {
    pub fn add(&mut self, e: &Event) {
        let m = self.minutes.entry(e.timestamp.div_euclid(60_000)).or_insert(Minute {
            count: 0,
            bytes: 0,
            first: e.timestamp,
            last: e.timestamp,
            last_ingestion: e.ingestion_time,
        });
        m.count += 1;
        m.bytes += e.message.len();
        m.first = m.first.min(e.timestamp);
        m.last = m.last.max(e.timestamp);
        m.last_ingestion = m.last_ingestion.max(e.ingestion_time);
    }

    pub fn count(&self) -> usize {
        self.minutes.values().map(|m| m.count).sum()
    }

    pub fn bytes(&self) -> usize {
        self.minutes.values().map(|m| m.bytes).sum()
    }

    pub fn first_timestamp(&self) -> Option<i64> {
        self.minutes.values().next().map(|m| m.first)
    }

    pub fn last_timestamp(&self) -> Option<i64> {
        self.minutes.values().next_back().map(|m| m.last)
    }

    pub fn last_ingestion(&self) -> Option<i64> {
        self.minutes.values().map(|m| m.last_ingestion).max()
    }

    /// Forgets the minutes wholly before `cutoff`; returns how many events went (the file still holds them).
    pub fn expire(&mut self, cutoff: i64) -> usize {
        let keep = self.minutes.split_off(&cutoff.div_euclid(60_000));
        let gone = std::mem::replace(&mut self.minutes, keep);
        gone.values().map(|m| m.count).sum()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogGroup {
    pub region: String,
    pub name: String,
    pub created_ms: i64,
    pub retention_days: Option<i32>,
    pub kms_key_id: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub streams: BTreeMap<String, LogStream>,
}

impl LogGroup {
    /// How long events are kept: the retention, at most the 14 days PutLogEvents accepts anyway.
    pub fn retention_ms(&self) -> i64 {
        self.retention_days.map(|d| d as i64 * DAY_MS).unwrap_or(i64::MAX)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// By `<region>/<name>`.
    pub groups: BTreeMap<String, LogGroup>,
    pub next_seq: u64,
}

impl State {
    /// Creates the group `name` (under `key`) and its stream `stream` when missing; whether each was created.
    pub fn ensure(&mut self, key: &str, name: &str, stream: &str, now: i64) -> (bool, bool) {
        let region = key.split('/').next().unwrap_or_default().to_string();
        let mut created_group = false;
        let group = self.groups.entry(key.to_string()).or_insert_with(|| {
            created_group = true;
            LogGroup {
                region,
                name: name.to_string(),
                created_ms: now,
                retention_days: None,
                kms_key_id: None,
                tags: BTreeMap::new(),
                streams: BTreeMap::new(),
            }
        });
        let mut created_stream = false;
        group.streams.entry(stream.to_string()).or_insert_with(|| {
            created_stream = true;
            LogStream { created_ms: now, ..Default::default() }
        });
        (created_group, created_stream)
    }
}

/// The events a PutLogEvents stored (to append to the stream's file) and its answer.
pub struct Put {
    pub stored: Vec<Event>,
    pub answer: Value,
}

/// Checks a batch as PutLogEvents does and stores its events in the stream (those too new or too old are
/// rejected one by one, the rest stored).
pub fn put_events(
    state: &mut State,
    group_key: &str,
    stream_name: &str,
    batch: Vec<(i64, String)>,
    now: i64,
) -> Result<Put, ApiError> {
    check_batch(&batch)?;
    let group = state.groups.get_mut(group_key).ok_or_else(group_not_found)?;
    let oldest = now - group.retention_ms().min(MAX_AGE_MS);
    let stream = group.streams.get_mut(stream_name).ok_or_else(stream_not_found)?;
    let (mut too_new, mut too_old) = (None::<usize>, None::<usize>);
    let mut seq = state.next_seq;
    let mut stored = Vec::with_capacity(batch.len());
    for (i, (timestamp, message)) in batch.into_iter().enumerate() {
        if timestamp > now + 2 * HOUR_MS {
            too_new.get_or_insert(i);
            continue;
        }
        if timestamp < oldest {
            too_old = Some(i);
            continue;
        }
        seq += 1;
        let event = Event { timestamp, message, ingestion_time: now, seq };
        stream.summary.add(&event);
        stored.push(event);
    }
    state.next_seq = seq;
    let mut answer = json!({"nextSequenceToken": format!("{seq:056}")});
    if too_new.is_some() || too_old.is_some() {
        let mut info = json!({});
        if let Some(i) = too_new {
            info["tooNewLogEventStartIndex"] = json!(i);
        }
        if let Some(i) = too_old {
            info["tooOldLogEventEndIndex"] = json!(i);
        }
        answer["rejectedLogEventsInfo"] = info;
    }
    Ok(Put { stored, answer })
}

/// The batch rules: 1 to 10,000 events, at most 1 MiB with 26 bytes per event, chronological, within 24 h.
fn check_batch(batch: &[(i64, String)]) -> Result<(), ApiError> {
    if batch.is_empty() || batch.len() > MAX_BATCH_EVENTS {
        return Err(invalid(format!(
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length between 1 and {MAX_BATCH_EVENTS}"
        )));
    }
    let bytes: usize = batch.iter().map(|(_, m)| m.len() + EVENT_OVERHEAD).sum();
    if bytes > MAX_BATCH_BYTES {
        return Err(invalid(format!(
            "Upload too large: {bytes} bytes exceeds the maximum of {MAX_BATCH_BYTES} bytes (26 bytes of overhead per event included)"
        )));
    }
    if batch.windows(2).any(|w| w[1].0 < w[0].0) {
        return Err(invalid("Log events in a single PutLogEvents request must be in chronological order."));
    }
    if batch.last().map(|l| l.0).unwrap_or(0) - batch[0].0 > DAY_MS {
        return Err(invalid(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
        ));
    }
    Ok(())
}

/// The oldest timestamp a group's retention keeps at `now`.
pub fn cutoff(retention_ms: i64, now: i64) -> i64 {
    now.saturating_sub(retention_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream's memory is its minutes, not its events: ten thousand events over three minutes are three
    /// entries; the counts, bytes and extremes are exact, and expiring drops whole minutes.
    #[test]
    fn a_streams_summary_is_bounded_by_its_minutes() {
        let mut s = Summary::default();
        for i in 0..10_000i64 {
            let at = 1_000_000_020_000 + i * 18;
            s.add(&Event { timestamp: at, message: "x".repeat(10), ingestion_time: at + 5, seq: i as u64 });
        }
        assert_eq!(s.minutes.len(), 3);
        assert_eq!((s.count(), s.bytes()), (10_000, 100_000));
        assert_eq!((s.first_timestamp(), s.last_timestamp()), (Some(1_000_000_020_000), Some(1_000_000_199_982)));
        assert_eq!(s.last_ingestion(), Some(1_000_000_199_987));
        let gone = s.expire(1_000_000_080_000);
        assert_eq!((gone, s.minutes.len()), (3_334, 2), "the first minute went whole");
        assert_eq!(s.expire(i64::MAX), 10_000 - 3_334);
        assert_eq!((s.count(), s.first_timestamp()), (0, None));
    }
}
