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

/// A log stream; its events are kept in memory, ordered by timestamp, and on disk in its own append-only file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogStream {
    pub created_ms: i64,
    #[serde(skip)]
    pub events: Vec<Event>,
    /// Events expired from memory but still in the stream's file (rewritten once they outnumber the rest).
    #[serde(skip)]
    pub stale_in_file: usize,
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
        insert(&mut stream.events, event.clone());
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

/// Keeps events ordered by timestamp (events mostly arrive in order: an append).
pub fn insert(events: &mut Vec<Event>, event: Event) {
    let at = events.partition_point(|e| e.timestamp <= event.timestamp);
    events.insert(at, event);
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

/// Drops the events older than the group's retention; returns how many went.
pub fn expire(events: &mut Vec<Event>, retention_ms: i64, now: i64) -> usize {
    let keep_from = events.partition_point(|e| e.timestamp < now.saturating_sub(retention_ms));
    events.drain(..keep_from).count()
}
