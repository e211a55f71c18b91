//! One function per CloudWatch Logs action; [`super::ACTIONS`] maps names to them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::filter::FilterPattern;
use super::model::{Event, LogGroup, LogStream, State, cutoff};
use super::{Input, Logs, group_not_found, invalid, key, stream_not_found};
use crate::json::{self, ApiError, Empty};
use crate::s3::store::now_ms;
use firehose_kit_domain::access::log_group_arn;
use firehose_kit_domain::failures::RETENTION_DAYS;
use firehose_kit_domain::names::arn_partition;

fn required<'a>(v: &'a Option<String>, member: &str) -> Result<&'a str, ApiError> {
    v.as_deref().ok_or_else(|| invalid(format!("1 validation error detected: {}", json::null_violation(member))))
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

/// The group named by `logGroupName` or `logGroupIdentifier` (a name or an ARN); exactly one must be given.
fn group_key(input: &Input, region: &str) -> Result<String, ApiError> {
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

fn group_arn(logs: &Logs, g: &LogGroup) -> String {
    log_group_arn(arn_partition(&g.region), &g.region, &logs.account_id, &g.name)
}

pub(super) fn create_log_group(
    logs: &Logs,
    state: &mut State,
    input: Input,
    region: &str,
) -> Result<Vec<u8>, ApiError> {
    let name = required(&input.log_group_name, "logGroupName")?;
    check_group_name(name)?;
    let tags = input.tags.clone().unwrap_or_default();
    check_tags(&tags)?;
    let k = key(region, name);
    if state.groups.contains_key(&k) {
        return Err(ApiError::new("ResourceAlreadyExistsException", "The specified log group already exists"));
    }
    let group = LogGroup {
        region: region.into(),
        name: name.into(),
        created_ms: now_ms(),
        retention_days: None,
        kms_key_id: input.kms_key_id.clone(),
        tags,
        streams: BTreeMap::new(),
    };
    state.groups.insert(k, group);
    logs.persist(logs.store.save_meta(state))?;
    json::ok(&Empty {})
}

pub(super) fn create_log_stream(
    logs: &Logs,
    state: &mut State,
    input: Input,
    region: &str,
) -> Result<Vec<u8>, ApiError> {
    let name = required(&input.log_stream_name, "logStreamName")?;
    required(&input.log_group_name, "logGroupName")?;
    check_stream_name(name)?;
    let k = group_key(&input, region)?;
    let group = state.groups.get_mut(&k).ok_or_else(group_not_found)?;
    if group.streams.contains_key(name) {
        return Err(ApiError::new("ResourceAlreadyExistsException", "The specified log stream already exists"));
    }
    group.streams.insert(name.into(), LogStream { created_ms: now_ms(), ..Default::default() });
    // A stream created again after a deletion starts empty.
    logs.persist(logs.store.remove_stream(&k, name))?;
    logs.persist(logs.store.save_meta(state))?;
    json::ok(&Empty {})
}

pub(super) fn delete_log_group(
    logs: &Logs,
    state: &mut State,
    input: Input,
    region: &str,
) -> Result<Vec<u8>, ApiError> {
    let name = required(&input.log_group_name, "logGroupName")?;
    let k = key(region, name);
    state.groups.remove(&k).ok_or_else(group_not_found)?;
    logs.persist(logs.store.save_meta(state))?;
    logs.persist(logs.store.remove_group(&k))?;
    json::ok(&Empty {})
}

pub(super) fn delete_log_stream(
    logs: &Logs,
    state: &mut State,
    input: Input,
    region: &str,
) -> Result<Vec<u8>, ApiError> {
    let name = required(&input.log_stream_name, "logStreamName")?;
    let k = group_key(&input, region)?;
    let group = state.groups.get_mut(&k).ok_or_else(group_not_found)?;
    group.streams.remove(name).ok_or_else(stream_not_found)?;
    logs.persist(logs.store.save_meta(state))?;
    logs.persist(logs.store.remove_stream(&k, name))?;
    json::ok(&Empty {})
}

pub(super) fn put_retention_policy(
    logs: &Logs,
    state: &mut State,
    input: Input,
    region: &str,
) -> Result<Vec<u8>, ApiError> {
    let name = required(&input.log_group_name, "logGroupName")?;
    let days = input
        .retention_in_days
        .ok_or_else(|| invalid(format!("1 validation error detected: {}", json::null_violation("retentionInDays"))))?;
    if !RETENTION_DAYS.contains(&days) {
        return Err(invalid(format!(
            "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: {RETENTION_DAYS:?}"
        )));
    }
    state.groups.get_mut(&key(region, name)).ok_or_else(group_not_found)?.retention_days = Some(days);
    logs.persist(logs.store.save_meta(state))?;
    json::ok(&Empty {})
}

pub(super) fn delete_retention_policy(
    logs: &Logs,
    state: &mut State,
    input: Input,
    region: &str,
) -> Result<Vec<u8>, ApiError> {
    let name = required(&input.log_group_name, "logGroupName")?;
    state.groups.get_mut(&key(region, name)).ok_or_else(group_not_found)?.retention_days = None;
    logs.persist(logs.store.save_meta(state))?;
    json::ok(&Empty {})
}

fn describe_group(logs: &Logs, g: &LogGroup) -> Value {
    let arn = group_arn(logs, g);
    let stored: usize = g.streams.values().map(|s| s.summary.bytes()).sum();
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

pub(super) fn describe_log_groups(
    logs: &Logs,
    state: &mut State,
    input: Input,
    region: &str,
) -> Result<Vec<u8>, ApiError> {
    let limit = check_limit(input.limit, 50)?;
    if input.log_group_name_prefix.is_some() && input.log_group_name_pattern.is_some() {
        return Err(invalid("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."));
    }
    let skip = token_index(input.next_token.as_deref(), "g/")?;
    let matching: Vec<&LogGroup> = state
        .groups
        .values()
        .filter(|g| g.region == region)
        .filter(|g| input.log_group_name_prefix.as_deref().is_none_or(|p| g.name.starts_with(p)))
        .filter(|g| input.log_group_name_pattern.as_deref().is_none_or(|p| g.name.contains(p)))
        .collect();
    let page: Vec<Value> = matching.iter().skip(skip).take(limit).map(|g| describe_group(logs, g)).collect();
    let mut out = json!({"logGroups": page});
    if skip + limit < matching.len() {
        out["nextToken"] = json!(format!("g/{}", skip + limit));
    }
    json::ok(&out)
}

fn describe_stream(arn: &str, name: &str, s: &LogStream) -> Value {
    let mut v = json!({
        "logStreamName": name,
        "creationTime": s.created_ms,
        "arn": format!("{arn}:log-stream:{name}"),
        "storedBytes": 0,
    });
    if let (Some(first), Some(last)) = (s.summary.first_timestamp(), s.summary.last_timestamp()) {
        v["firstEventTimestamp"] = json!(first);
        v["lastEventTimestamp"] = json!(last);
        v["lastIngestionTime"] = json!(s.summary.last_ingestion());
    }
    v
}

pub(super) fn describe_log_streams(
    logs: &Logs,
    state: &mut State,
    input: Input,
    region: &str,
) -> Result<Vec<u8>, ApiError> {
    let limit = check_limit(input.limit, 50)?;
    let k = group_key(&input, region)?;
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
        streams.sort_by_key(|(_, s)| s.summary.last_timestamp().unwrap_or(s.created_ms));
    }
    if input.descending == Some(true) {
        streams.reverse();
    }
    let arn = group_arn(logs, group);
    let page: Vec<Value> =
        streams.iter().skip(skip).take(limit).map(|(name, s)| describe_stream(&arn, name, s)).collect();
    let mut out = json!({"logStreams": page});
    if skip + limit < streams.len() {
        out["nextToken"] = json!(format!("s/{}", skip + limit));
    }
    json::ok(&out)
}

pub(super) fn put_log_events(logs: &Logs, state: &mut State, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
    let group_name = required(&input.log_group_name, "logGroupName")?.to_string();
    let stream_name = required(&input.log_stream_name, "logStreamName")?.to_string();
    let events = input
        .log_events
        .ok_or_else(|| invalid(format!("1 validation error detected: {}", json::null_violation("logEvents"))))?;
    let mut batch = Vec::with_capacity(events.len());
    for (i, e) in events.into_iter().enumerate() {
        match (e.timestamp, e.message) {
            (Some(t), Some(m)) => batch.push((t, m)),
            _ => {
                return Err(invalid(format!(
                    "1 validation error detected: {}",
                    json::null_violation(&format!("logEvents.{}.member.timestamp", i + 1))
                )));
            }
        }
    }
    let answer = logs.put(state, &key(region, &group_name), &stream_name, batch)?;
    json::ok(&answer)
}

pub(super) fn get_log_events(logs: &Logs, state: &mut State, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
    let stream_name = required(&input.log_stream_name, "logStreamName")?;
    let limit = check_limit(input.limit, 10_000)?;
    let k = group_key(&input, region)?;
    let group = state.groups.get(&k).ok_or_else(group_not_found)?;
    group.streams.get(stream_name).ok_or_else(stream_not_found)?;
    let all = logs.store.read(&k, stream_name, cutoff(group.retention_ms(), now_ms())).map_err(ApiError::internal)?;
    let events: Vec<&Event> = all
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
    json::ok(&json!({
        "events": page,
        "nextForwardToken": format!("f/{end}"),
        "nextBackwardToken": format!("b/{start}"),
    }))
}

pub(super) fn filter_log_events(
    logs: &Logs,
    state: &mut State,
    input: Input,
    region: &str,
) -> Result<Vec<u8>, ApiError> {
    let limit = check_limit(input.limit, 10_000)?;
    let k = group_key(&input, region)?;
    if input.log_stream_names.is_some() && input.log_stream_name_prefix.is_some() {
        return Err(invalid("logStreamNames and logStreamNamePrefix are mutually exclusive parameters."));
    }
    let pattern = FilterPattern::parse(input.filter_pattern.as_deref().unwrap_or(""))?;
    let skip = token_index(input.next_token.as_deref(), "e/")?;
    let group = state.groups.get(&k).ok_or_else(group_not_found)?;
    let from = cutoff(group.retention_ms(), now_ms());
    let mut searched = Vec::new();
    let mut hits: Vec<(&str, Event)> = Vec::new();
    for name in group.streams.keys() {
        let wanted = input.log_stream_names.as_ref().is_none_or(|names| names.contains(name))
            && input.log_stream_name_prefix.as_deref().is_none_or(|p| name.starts_with(p));
        if !wanted {
            continue;
        }
        searched.push(json!({"logStreamName": name, "searchedCompletely": true}));
        let events = logs.store.read(&k, name, from).map_err(ApiError::internal)?;
        hits.extend(
            events
                .into_iter()
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
    json::ok(&out)
}

/// TagResource, UntagResource and ListTagsForResource, and the deprecated *LogGroup forms.
pub(super) fn tags(logs: &Logs, state: &mut State, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
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
            return Err(invalid(format!("1 validation error detected: {}", json::null_violation("resourceArn"))));
        }
    };
    let group = state.groups.get_mut(&k).ok_or_else(group_not_found)?;
    match input.action {
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
        _ => return json::ok(&json!({"tags": group.tags})),
    }
    logs.persist(logs.store.save_meta(state))?;
    json::ok(&Empty {})
}
