//! CloudWatch Logs in the emulator (JSON 1.1, `X-Amz-Target: Logs_20140328.<Op>`), enough for Firehose's error
//! logging and for the clients that read it (aws-sdk-rust, boto3, `aws logs`): log groups and streams, events,
//! retention, tags, and `FilterLogEvents` with CloudWatch's plain-text and simple JSON filter patterns.
//!
//! State persists in `<data-dir>/logs/groups.json`, written by the calls that change it. Limits and messages
//! follow the Logs API reference: batches of at most 10,000 events and 1,048,576 bytes (26 bytes of overhead
//! per event) in chronological order spanning at most 24 h; events more than 2 h ahead or 14 days old (or older
//! than the retention) are rejected one by one in `rejectedLogEventsInfo` while the rest are stored.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use bytes::Bytes;
use http::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::firehose::wire::{self, ApiError, Empty};
use super::s3::store::now_ms;
use crate::firehose::access::log_group_arn;
use crate::firehose::failures::RETENTION_DAYS;
use crate::firehose::names::arn_partition;
use crate::util::persist;

const MAX_BATCH_BYTES: usize = 1_048_576;
const EVENT_OVERHEAD: usize = 26;
const MAX_BATCH_EVENTS: usize = 10_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Event {
    timestamp: i64,
    message: String,
    ingestion_time: i64,
    /// Unique across the emulator: the event id.
    seq: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LogStream {
    created_ms: i64,
    events: Vec<Event>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LogGroup {
    region: String,
    name: String,
    created_ms: i64,
    retention_days: Option<i32>,
    kms_key_id: Option<String>,
    tags: BTreeMap<String, String>,
    streams: BTreeMap<String, LogStream>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// By `<region>/<name>`.
    groups: BTreeMap<String, LogGroup>,
    next_seq: u64,
}

/// The emulator's CloudWatch Logs.
pub struct Logs {
    path: PathBuf,
    account_id: String,
    state: Mutex<State>,
}

fn key(region: &str, name: &str) -> String {
    format!("{region}/{name}")
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidParameterException", message)
}

fn group_not_found() -> ApiError {
    ApiError::new("ResourceNotFoundException", "The specified log group does not exist.")
}

fn stream_not_found() -> ApiError {
    ApiError::new("ResourceNotFoundException", "The specified log stream does not exist.")
}

fn required<'a>(v: &'a Option<String>, member: &str) -> Result<&'a str, ApiError> {
    v.as_deref().ok_or_else(|| invalid(format!("1 validation error detected: {}", wire::null_violation(member))))
}

fn check_group_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=512).contains(&name.len())
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-/#".contains(&c))
        && !name.starts_with("aws/");
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
        )))
    }
}

fn check_stream_name(name: &str) -> Result<(), ApiError> {
    if (1..=512).contains(&name.len()) && !name.contains([':', '*']) {
        Ok(())
    } else {
        Err(invalid(format!(
            "1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*"
        )))
    }
}

fn check_limit(limit: Option<i64>, max: i64) -> Result<usize, ApiError> {
    match limit {
        None => Ok(max as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"
        ))),
    }
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if tags.len() > 50 {
        return Err(ApiError::new("TooManyTagsException", "A resource can have no more than 50 tags."));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 || k.starts_with("aws:") {
            return Err(invalid(format!("tag `{k}`: keys are 1-128 characters, values up to 256, no `aws:` prefix")));
        }
    }
    Ok(())
}

/// A page token: the index to continue from, as text.
fn token_index(token: Option<&str>, tag: &str) -> Result<usize, ApiError> {
    match token {
        None => Ok(0),
        Some(t) => t
            .strip_prefix(tag)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| invalid(format!("The specified nextToken is invalid: {t}"))),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Input {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: Option<String>,
    log_group_name_prefix: Option<String>,
    log_group_name_pattern: Option<String>,
    log_stream_name_prefix: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_events: Option<Vec<InputEvent>>,
    kms_key_id: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    tag_keys: Option<Vec<String>>,
    resource_arn: Option<String>,
    retention_in_days: Option<i32>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
    order_by: Option<String>,
    descending: Option<bool>,
}

#[derive(Deserialize)]
struct InputEvent {
    timestamp: Option<i64>,
    message: Option<String>,
}

impl Logs {
    pub fn open(dir: PathBuf, account_id: String) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("groups.json");
        let state = persist::read_json(&path)?.unwrap_or_default();
        Ok(Logs { path, account_id, state: Mutex::new(state) })
    }

    fn group_arn(&self, g: &LogGroup) -> String {
        log_group_arn(arn_partition(&g.region), &g.region, &self.account_id, &g.name)
    }

    fn save(&self, state: &State) -> Result<(), ApiError> {
        persist::write_json(&self.path, state).map_err(ApiError::internal)
    }

    /// Serves one CloudWatch Logs call.
    pub fn handle(&self, operation: &str, body: &[u8], region: &str) -> Response<Bytes> {
        let result = wire::input::<Input>(body).and_then(|input| self.call(operation, input, region));
        wire::response(result)
    }

    /// The group named by `logGroupName` or `logGroupIdentifier` (a name or an ARN); exactly one must be given.
    fn group_key(&self, input: &Input, region: &str) -> Result<String, ApiError> {
        match (&input.log_group_name, &input.log_group_identifier) {
            (Some(_), Some(_)) => Err(invalid("LogGroup name and LogGroup ARN are mutually exclusive parameters.")),
            (Some(name), None) => Ok(key(region, name)),
            (None, Some(id)) => {
                let name = id.split(":log-group:").nth(1).map(|n| n.trim_end_matches(":*")).unwrap_or(id);
                Ok(key(region, name))
            }
            (None, None) => Err(invalid("Should provide either name or ARN of LogGroup.")),
        }
    }

    fn call(&self, op: &str, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
        let mut state = self.state.lock().expect("logs lock");
        match op {
            "CreateLogGroup" => {
                let name = required(&input.log_group_name, "logGroupName")?;
                check_group_name(name)?;
                let tags = input.tags.unwrap_or_default();
                check_tags(&tags)?;
                let k = key(region, name);
                if state.groups.contains_key(&k) {
                    return Err(ApiError::new(
                        "ResourceAlreadyExistsException",
                        "The specified log group already exists",
                    ));
                }
                let group = LogGroup {
                    region: region.into(),
                    name: name.into(),
                    created_ms: now_ms(),
                    retention_days: None,
                    kms_key_id: input.kms_key_id,
                    tags,
                    streams: BTreeMap::new(),
                };
                state.groups.insert(k, group);
                self.save(&state)?;
                wire::ok(&Empty {})
            }
            "CreateLogStream" => {
                let name = required(&input.log_stream_name, "logStreamName")?;
                required(&input.log_group_name, "logGroupName")?;
                check_stream_name(name)?;
                let k = self.group_key(&input, region)?;
                let group = state.groups.get_mut(&k).ok_or_else(group_not_found)?;
                if group.streams.contains_key(name) {
                    return Err(ApiError::new(
                        "ResourceAlreadyExistsException",
                        "The specified log stream already exists",
                    ));
                }
                group.streams.insert(name.into(), LogStream { created_ms: now_ms(), events: Vec::new() });
                self.save(&state)?;
                wire::ok(&Empty {})
            }
            "DeleteLogGroup" => {
                let name = required(&input.log_group_name, "logGroupName")?;
                state.groups.remove(&key(region, name)).ok_or_else(group_not_found)?;
                self.save(&state)?;
                wire::ok(&Empty {})
            }
            "DeleteLogStream" => {
                let name = required(&input.log_stream_name, "logStreamName")?;
                let k = self.group_key(&input, region)?;
                let group = state.groups.get_mut(&k).ok_or_else(group_not_found)?;
                group.streams.remove(name).ok_or_else(stream_not_found)?;
                self.save(&state)?;
                wire::ok(&Empty {})
            }
            "PutRetentionPolicy" => {
                let name = required(&input.log_group_name, "logGroupName")?;
                let days = input.retention_in_days.ok_or_else(|| {
                    invalid(format!("1 validation error detected: {}", wire::null_violation("retentionInDays")))
                })?;
                if !RETENTION_DAYS.contains(&days) {
                    return Err(invalid(format!(
                        "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: {RETENTION_DAYS:?}"
                    )));
                }
                state.groups.get_mut(&key(region, name)).ok_or_else(group_not_found)?.retention_days = Some(days);
                self.save(&state)?;
                wire::ok(&Empty {})
            }
            "DeleteRetentionPolicy" => {
                let name = required(&input.log_group_name, "logGroupName")?;
                state.groups.get_mut(&key(region, name)).ok_or_else(group_not_found)?.retention_days = None;
                self.save(&state)?;
                wire::ok(&Empty {})
            }
            "DescribeLogGroups" => {
                let limit = check_limit(input.limit, 50)?;
                if input.log_group_name_prefix.is_some() && input.log_group_name_pattern.is_some() {
                    return Err(invalid(
                        "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
                    ));
                }
                let skip = token_index(input.next_token.as_deref(), "g/")?;
                let matching: Vec<&LogGroup> = state
                    .groups
                    .values()
                    .filter(|g| g.region == region)
                    .filter(|g| input.log_group_name_prefix.as_deref().is_none_or(|p| g.name.starts_with(p)))
                    .filter(|g| input.log_group_name_pattern.as_deref().is_none_or(|p| g.name.contains(p)))
                    .collect();
                let page: Vec<Value> = matching.iter().skip(skip).take(limit).map(|g| self.describe_group(g)).collect();
                let mut out = json!({"logGroups": page});
                if skip + limit < matching.len() {
                    out["nextToken"] = json!(format!("g/{}", skip + limit));
                }
                wire::ok(&out)
            }
            "DescribeLogStreams" => {
                let limit = check_limit(input.limit, 50)?;
                let k = self.group_key(&input, region)?;
                let by_time = input.order_by.as_deref() == Some("LastEventTime");
                match input.order_by.as_deref() {
                    None | Some("LogStreamName") | Some("LastEventTime") => {}
                    Some(other) => {
                        return Err(invalid(format!(
                            "1 validation error detected: Value '{other}' at 'orderBy' failed to satisfy constraint: Member must satisfy enum value set: [LastEventTime, LogStreamName]"
                        )));
                    }
                }
                if by_time && input.log_stream_name_prefix.is_some() {
                    return Err(invalid("Cannot order by LastEventTime with a logStreamNamePrefix."));
                }
                let skip = token_index(input.next_token.as_deref(), "s/")?;
                let group = state.groups.get(&k).ok_or_else(group_not_found)?;
                let mut streams: Vec<(&String, &LogStream)> = group
                    .streams
                    .iter()
                    .filter(|(n, _)| input.log_stream_name_prefix.as_deref().is_none_or(|p| n.starts_with(p)))
                    .collect();
                if by_time {
                    streams.sort_by_key(|(_, s)| s.events.last().map(|e| e.timestamp).unwrap_or(s.created_ms));
                }
                if input.descending == Some(true) {
                    streams.reverse();
                }
                let arn = self.group_arn(group);
                let page: Vec<Value> = streams
                    .iter()
                    .skip(skip)
                    .take(limit)
                    .map(|(name, s)| {
                        let mut v = json!({
                            "logStreamName": name,
                            "creationTime": s.created_ms,
                            "arn": format!("{arn}:log-stream:{name}"),
                            "storedBytes": 0,
                        });
                        if let (Some(first), Some(last)) = (s.events.first(), s.events.last()) {
                            v["firstEventTimestamp"] = json!(first.timestamp);
                            v["lastEventTimestamp"] = json!(last.timestamp);
                            v["lastIngestionTime"] = json!(s.events.iter().map(|e| e.ingestion_time).max());
                        }
                        v
                    })
                    .collect();
                let mut out = json!({"logStreams": page});
                if skip + limit < streams.len() {
                    out["nextToken"] = json!(format!("s/{}", skip + limit));
                }
                wire::ok(&out)
            }
            "PutLogEvents" => {
                let group_name = required(&input.log_group_name, "logGroupName")?.to_string();
                let stream_name = required(&input.log_stream_name, "logStreamName")?.to_string();
                let events = input.log_events.ok_or_else(|| {
                    invalid(format!("1 validation error detected: {}", wire::null_violation("logEvents")))
                })?;
                let mut batch = Vec::with_capacity(events.len());
                for (i, e) in events.into_iter().enumerate() {
                    match (e.timestamp, e.message) {
                        (Some(t), Some(m)) => batch.push((t, m)),
                        _ => {
                            return Err(invalid(format!(
                                "1 validation error detected: {}",
                                wire::null_violation(&format!("logEvents.{}.member.timestamp", i + 1))
                            )));
                        }
                    }
                }
                let out = put_events(&mut state, &key(region, &group_name), &stream_name, batch, now_ms())?;
                self.save(&state)?;
                wire::ok(&out)
            }
            "GetLogEvents" => {
                let stream_name = required(&input.log_stream_name, "logStreamName")?;
                let limit = check_limit(input.limit, 10_000)?;
                let k = self.group_key(&input, region)?;
                let group = state.groups.get(&k).ok_or_else(group_not_found)?;
                let stream = group.streams.get(stream_name).ok_or_else(stream_not_found)?;
                let events: Vec<&Event> = stream
                    .events
                    .iter()
                    .filter(|e| input.start_time.is_none_or(|t| e.timestamp >= t))
                    .filter(|e| input.end_time.is_none_or(|t| e.timestamp < t))
                    .collect();
                let from_head = input.start_from_head.unwrap_or(false);
                let (start, end) = match input.next_token.as_deref() {
                    Some(t) if t.starts_with("f/") => {
                        let at = token_index(Some(t), "f/")?.min(events.len());
                        (at, (at + limit).min(events.len()))
                    }
                    Some(t) => {
                        let at = token_index(Some(t), "b/")?.min(events.len());
                        (at.saturating_sub(limit), at)
                    }
                    None if from_head => (0, limit.min(events.len())),
                    None => (events.len().saturating_sub(limit), events.len()),
                };
                let page: Vec<Value> = events[start..end]
                    .iter()
                    .map(|e| json!({"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time}))
                    .collect();
                wire::ok(&json!({
                    "events": page,
                    "nextForwardToken": format!("f/{end}"),
                    "nextBackwardToken": format!("b/{start}"),
                }))
            }
            "FilterLogEvents" => {
                let limit = check_limit(input.limit, 10_000)?;
                let k = self.group_key(&input, region)?;
                if input.log_stream_names.is_some() && input.log_stream_name_prefix.is_some() {
                    return Err(invalid("logStreamNames and logStreamNamePrefix are mutually exclusive parameters."));
                }
                let pattern = FilterPattern::parse(input.filter_pattern.as_deref().unwrap_or(""))?;
                let skip = token_index(input.next_token.as_deref(), "e/")?;
                let group = state.groups.get(&k).ok_or_else(group_not_found)?;
                let mut searched = Vec::new();
                let mut hits: Vec<(&str, &Event)> = Vec::new();
                for (name, s) in &group.streams {
                    let wanted = input.log_stream_names.as_ref().is_none_or(|names| names.contains(name))
                        && input.log_stream_name_prefix.as_deref().is_none_or(|p| name.starts_with(p));
                    if !wanted {
                        continue;
                    }
                    searched.push(json!({"logStreamName": name, "searchedCompletely": true}));
                    hits.extend(
                        s.events
                            .iter()
                            .filter(|e| input.start_time.is_none_or(|t| e.timestamp >= t))
                            .filter(|e| input.end_time.is_none_or(|t| e.timestamp <= t))
                            .filter(|e| pattern.matches(&e.message))
                            .map(|e| (name.as_str(), e)),
                    );
                }
                hits.sort_by_key(|(_, e)| (e.timestamp, e.seq));
                let page: Vec<Value> = hits
                    .iter()
                    .skip(skip)
                    .take(limit)
                    .map(|(stream, e)| {
                        json!({
                            "logStreamName": stream,
                            "timestamp": e.timestamp,
                            "message": e.message,
                            "ingestionTime": e.ingestion_time,
                            "eventId": format!("{:056}", e.seq),
                        })
                    })
                    .collect();
                let mut out = json!({"events": page, "searchedLogStreams": searched});
                if skip + limit < hits.len() {
                    out["nextToken"] = json!(format!("e/{}", skip + limit));
                }
                wire::ok(&out)
            }
            "TagResource"
            | "UntagResource"
            | "ListTagsForResource"
            | "TagLogGroup"
            | "UntagLogGroup"
            | "ListTagsLogGroup" => {
                let k = match (&input.resource_arn, &input.log_group_name) {
                    (Some(arn), _) => {
                        let name = arn
                            .split(":log-group:")
                            .nth(1)
                            .filter(|n| !n.ends_with(":*") && !n.contains(":log-stream:"))
                            .ok_or_else(|| invalid(format!("Invalid resource arn: {arn}")))?;
                        key(region, name)
                    }
                    (None, Some(name)) => key(region, name),
                    (None, None) => {
                        return Err(invalid(format!(
                            "1 validation error detected: {}",
                            wire::null_violation("resourceArn")
                        )));
                    }
                };
                let group = state.groups.get_mut(&k).ok_or_else(group_not_found)?;
                match op {
                    "TagResource" | "TagLogGroup" => {
                        let mut tags = group.tags.clone();
                        tags.extend(input.tags.unwrap_or_default());
                        check_tags(&tags)?;
                        group.tags = tags;
                    }
                    "UntagResource" | "UntagLogGroup" => {
                        for k in input.tag_keys.or(input.tags.map(|t| t.into_keys().collect())).unwrap_or_default() {
                            group.tags.remove(&k);
                        }
                    }
                    _ => return wire::ok(&json!({"tags": group.tags})),
                }
                self.save(&state)?;
                wire::ok(&Empty {})
            }
            other => Err(ApiError::new(
                "UnknownOperationException",
                format!("operation {other} is not modelled by the firehose-kit emulator"),
            )),
        }
    }

    fn describe_group(&self, g: &LogGroup) -> Value {
        let arn = self.group_arn(g);
        let stored: usize = g.streams.values().flat_map(|s| &s.events).map(|e| e.message.len()).sum();
        let mut v = json!({
            "logGroupName": g.name,
            "creationTime": g.created_ms,
            "metricFilterCount": 0,
            "arn": format!("{arn}:*"),
            "logGroupArn": arn,
            "storedBytes": stored,
            "logGroupClass": "STANDARD",
        });
        if let Some(days) = g.retention_days {
            v["retentionInDays"] = json!(days);
        }
        if let Some(kms) = &g.kms_key_id {
            v["kmsKeyId"] = json!(kms);
        }
        v
    }

    /// Appends one event from inside the emulator (Firehose's error logging); `false` if the group or stream does
    /// not exist (Firehose does not create them).
    pub fn append(&self, region: &str, group: &str, stream: &str, message: String) -> bool {
        let mut state = self.state.lock().expect("logs lock");
        let now = now_ms();
        let ok = put_events(&mut state, &key(region, group), stream, vec![(now, message)], now).is_ok();
        if ok && let Err(e) = self.save(&state) {
            tracing::error!("cannot persist log events: {}", e.message);
        }
        ok
    }

    /// Whether a log group and stream exist.
    #[cfg(test)]
    fn stream_exists(&self, region: &str, group: &str, stream: &str) -> bool {
        let state = self.state.lock().expect("logs lock");
        state.groups.get(&key(region, group)).is_some_and(|g| g.streams.contains_key(stream))
    }
}

fn put_events(
    state: &mut State,
    group_key: &str,
    stream_name: &str,
    batch: Vec<(i64, String)>,
    now: i64,
) -> Result<Value, ApiError> {
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
    let group = state.groups.get_mut(group_key).ok_or_else(group_not_found)?;
    let retention_ms = group.retention_days.map(|d| d as i64 * DAY_MS).unwrap_or(i64::MAX).min(14 * DAY_MS);
    let stream = group.streams.get_mut(stream_name).ok_or_else(stream_not_found)?;
    let (mut too_new, mut too_old) = (None::<usize>, None::<usize>);
    let mut seq = state.next_seq;
    for (i, (timestamp, message)) in batch.into_iter().enumerate() {
        if timestamp > now + 2 * HOUR_MS {
            too_new.get_or_insert(i);
            continue;
        }
        if timestamp < now - retention_ms {
            too_old = Some(i);
            continue;
        }
        seq += 1;
        let event = Event { timestamp, message, ingestion_time: now, seq };
        let at = stream.events.partition_point(|e| e.timestamp <= timestamp);
        stream.events.insert(at, event);
    }
    state.next_seq = seq;
    let mut out = json!({"nextSequenceToken": format!("{seq:056}")});
    if too_new.is_some() || too_old.is_some() {
        let mut info = json!({});
        if let Some(i) = too_new {
            info["tooNewLogEventStartIndex"] = json!(i);
        }
        if let Some(i) = too_old {
            info["tooOldLogEventEndIndex"] = json!(i);
        }
        out["rejectedLogEventsInfo"] = info;
    }
    Ok(out)
}

/// A CloudWatch Logs filter pattern: space-separated terms that must all appear (`"quoted phrases"` kept
/// whole), `?term` alternatives of which one must appear, `-term` exclusions, or one JSON condition
/// `{ $.field = "value" }` / `{ $.a.b != value }` (several joined by `&&`) on JSON messages. Matching is
/// case-sensitive, as CloudWatch's.
#[derive(Debug)]
enum FilterPattern {
    Terms { all: Vec<String>, any: Vec<String>, none: Vec<String> },
    Json(Vec<(Vec<String>, bool, String)>),
}

impl FilterPattern {
    fn parse(text: &str) -> Result<Self, ApiError> {
        let text = text.trim();
        if let Some(inner) = text.strip_prefix('{') {
            let inner =
                inner.strip_suffix('}').ok_or_else(|| invalid(format!("Invalid character(s) in term '{text}'")))?;
            let mut conds = Vec::new();
            for cond in inner.split("&&") {
                let (lhs, equal, rhs) = if let Some((l, r)) = cond.split_once("!=") {
                    (l, false, r)
                } else if let Some((l, r)) = cond.split_once('=') {
                    (l, true, r)
                } else {
                    return Err(invalid(format!("Invalid filter pattern: only = and != are modelled in '{text}'")));
                };
                let path = lhs
                    .trim()
                    .strip_prefix("$.")
                    .ok_or_else(|| invalid(format!("Invalid selector in filter pattern '{text}'")))?;
                let value = rhs.trim().trim_matches('"').to_string();
                conds.push((path.split('.').map(str::to_string).collect(), equal, value));
            }
            return Ok(FilterPattern::Json(conds));
        }
        let (mut all, mut any, mut none) = (Vec::new(), Vec::new(), Vec::new());
        let mut rest = text;
        while !rest.is_empty() {
            rest = rest.trim_start();
            let (sign, body) = match rest.chars().next() {
                Some(c @ ('?' | '-')) => (Some(c), &rest[1..]),
                _ => (None, rest),
            };
            let (term, after) = if let Some(quoted) = body.strip_prefix('"') {
                let end = quoted.find('"').ok_or_else(|| invalid(format!("Unterminated quote in '{text}'")))?;
                (&quoted[..end], &quoted[end + 1..])
            } else {
                let end = body.find(' ').unwrap_or(body.len());
                (&body[..end], &body[end..])
            };
            if !term.is_empty() {
                match sign {
                    Some('?') => any.push(term.to_string()),
                    Some(_) => none.push(term.to_string()),
                    None => all.push(term.to_string()),
                }
            }
            rest = after;
        }
        Ok(FilterPattern::Terms { all, any, none })
    }

    fn matches(&self, message: &str) -> bool {
        match self {
            FilterPattern::Terms { all, any, none } => {
                all.iter().all(|t| message.contains(t.as_str()))
                    && (any.is_empty() || any.iter().any(|t| message.contains(t.as_str())))
                    && !none.iter().any(|t| message.contains(t.as_str()))
            }
            FilterPattern::Json(conds) => {
                let Ok(doc) = serde_json::from_str::<Value>(message) else {
                    return false;
                };
                conds.iter().all(|(path, equal, want)| {
                    let found = path.iter().try_fold(&doc, |v, p| v.get(p));
                    let text = match found {
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(Value::Null) | None => None,
                        Some(other) => Some(other.to_string()),
                    };
                    let is = text.as_deref().is_some_and(|t| {
                        if let Some(prefix) = want.strip_suffix('*') { t.starts_with(prefix) } else { t == want }
                    });
                    is == *equal
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(logs: &Logs, op: &str, body: Value) -> (u16, Value) {
        let r = logs.handle(op, body.to_string().as_bytes(), "us-east-1");
        (r.status().as_u16(), serde_json::from_slice(r.body()).unwrap())
    }

    #[test]
    fn groups_streams_events_and_paging() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::open(dir.path().into(), "000000000000".into()).unwrap();
        assert_eq!(call(&logs, "CreateLogGroup", json!({"logGroupName": "/aws/kinesisfirehose/s"})).0, 200);
        let (status, err) = call(&logs, "CreateLogGroup", json!({"logGroupName": "/aws/kinesisfirehose/s"}));
        assert_eq!((status, err["__type"].as_str()), (400, Some("ResourceAlreadyExistsException")));
        let (_, err) = call(&logs, "CreateLogStream", json!({"logGroupName": "nope", "logStreamName": "x"}));
        assert_eq!(err["message"], "The specified log group does not exist.");
        let g = json!({"logGroupName": "/aws/kinesisfirehose/s", "logStreamName": "DestinationDelivery"});
        assert_eq!(call(&logs, "CreateLogStream", g.clone()).0, 200);
        let now = now_ms();
        let events: Vec<Value> =
            (0..5).map(|i| json!({"timestamp": now - 5 + i, "message": format!("event {i}")})).collect();
        let mut put = g.clone();
        put["logEvents"] = json!(events);
        assert_eq!(call(&logs, "PutLogEvents", put).0, 200);
        let mut get = g.clone();
        get["startFromHead"] = json!(true);
        get["limit"] = json!(2);
        let (_, page) = call(&logs, "GetLogEvents", get.clone());
        assert_eq!(page["events"][0]["message"], "event 0");
        assert_eq!(page["nextForwardToken"], "f/2");
        let mut seen = 2;
        let mut token = page["nextForwardToken"].clone();
        loop {
            get["nextToken"] = token.clone();
            let (_, page) = call(&logs, "GetLogEvents", get.clone());
            seen += page["events"].as_array().unwrap().len();
            if page["nextForwardToken"] == token {
                break;
            }
            token = page["nextForwardToken"].clone();
        }
        assert_eq!(seen, 5);
        let (_, filtered) = call(
            &logs,
            "FilterLogEvents",
            json!({"logGroupName": "/aws/kinesisfirehose/s", "filterPattern": "\"event 3\""}),
        );
        assert_eq!(filtered["events"].as_array().unwrap().len(), 1);
        // Reopened from disk, the events are still there.
        drop(logs);
        let logs = Logs::open(dir.path().into(), "000000000000".into()).unwrap();
        assert!(logs.stream_exists("us-east-1", "/aws/kinesisfirehose/s", "DestinationDelivery"));
        let (_, groups) = call(&logs, "DescribeLogGroups", json!({"logGroupNamePrefix": "/aws/"}));
        assert_eq!(
            groups["logGroups"][0]["arn"],
            "arn:aws:logs:us-east-1:000000000000:log-group:/aws/kinesisfirehose/s:*"
        );
    }

    #[test]
    fn put_log_events_rules() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::open(dir.path().into(), "000000000000".into()).unwrap();
        call(&logs, "CreateLogGroup", json!({"logGroupName": "g"}));
        call(&logs, "CreateLogStream", json!({"logGroupName": "g", "logStreamName": "s"}));
        let now = now_ms();
        let put = |events: Value| {
            call(&logs, "PutLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "logEvents": events}))
        };
        let (status, err) = put(json!([{"timestamp": now, "message": "b"}, {"timestamp": now - 10, "message": "a"}]));
        assert_eq!(status, 400);
        assert!(err["message"].as_str().unwrap().contains("chronological"), "{err}");
        let (_, out) = put(json!([{"timestamp": now - 15 * DAY_MS, "message": "old"}]));
        assert_eq!(out["rejectedLogEventsInfo"], json!({"tooOldLogEventEndIndex": 0}));
        let (_, out) =
            put(json!([{"timestamp": now, "message": "ok"}, {"timestamp": now + 3 * HOUR_MS, "message": "new"}]));
        assert_eq!(out["rejectedLogEventsInfo"], json!({"tooNewLogEventStartIndex": 1}));
        let (status, _) =
            put(json!([{"timestamp": now - 2 * DAY_MS, "message": "a"}, {"timestamp": now, "message": "b"}]));
        assert_eq!(status, 400, "a batch may not span more than 24 h");
        let (status, err) = call(&logs, "PutRetentionPolicy", json!({"logGroupName": "g", "retentionInDays": 2}));
        assert_eq!((status, err["__type"].as_str()), (400, Some("InvalidParameterException")));
        assert_eq!(call(&logs, "PutRetentionPolicy", json!({"logGroupName": "g", "retentionInDays": 14})).0, 200);
        let arn = "arn:aws:logs:us-east-1:000000000000:log-group:g";
        assert_eq!(call(&logs, "TagResource", json!({"resourceArn": arn, "tags": {"a": "1"}})).0, 200);
        assert_eq!(call(&logs, "ListTagsForResource", json!({"resourceArn": arn})).1["tags"], json!({"a": "1"}));
        assert_eq!(call(&logs, "CreateLogGroup", json!({"logGroupName": "bad name"})).0, 400);
    }

    #[test]
    fn filter_patterns() {
        let p = FilterPattern::parse("S3.AccessDenied ?a ?b -skip").unwrap();
        assert!(p.matches("x S3.AccessDenied a"));
        assert!(!p.matches("x S3.AccessDenied c"));
        assert!(!p.matches("S3.AccessDenied a skip"));
        let j = FilterPattern::parse(r#"{ $.errorCode = "S3.*" && $.deliveryStreamVersionId = 1 }"#).unwrap();
        assert!(j.matches(r#"{"errorCode":"S3.NoSuchBucket","deliveryStreamVersionId":1}"#));
        assert!(!j.matches(r#"{"errorCode":"InternalError","deliveryStreamVersionId":1}"#));
        assert!(FilterPattern::parse("").unwrap().matches("anything"));
    }
}
