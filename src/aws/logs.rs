//! CloudWatch Logs calls: the stream's error log group (create, retention, tags, log stream, delete) and
//! reading Firehose's delivery error events back for `verify`, `status` and `doctor`.

use aws_sdk_cloudwatchlogs::Client;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::sdk_error;
use crate::error::Result;
use crate::firehose::failures::{self, ErrorEvent};

/// A log group as setup and doctor need to see it.
#[derive(Debug, Clone)]
pub struct GroupInfo {
    pub retention_days: Option<i32>,
    pub tags: Vec<(String, String)>,
    pub streams: Vec<String>,
}

/// The group named exactly `name`, with its tags and log streams; `None` if it does not exist.
pub async fn group(logs: &Client, name: &str) -> Result<Option<GroupInfo>> {
    let out = logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(|e| sdk_error(format!("describe log group `{name}`"), e))?;
    let Some(g) = out.log_groups().iter().find(|g| g.log_group_name() == Some(name)) else {
        return Ok(None);
    };
    let retention_days = g.retention_in_days();
    let tags = match g.log_group_arn().or(g.arn().map(|a| a.trim_end_matches(":*"))) {
        Some(arn) => {
            let out = logs
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .map_err(|e| sdk_error(format!("read tags of log group `{name}`"), e))?;
            out.tags().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
        }
        None => Vec::new(),
    };
    let out = logs
        .describe_log_streams()
        .log_group_name(name)
        .send()
        .await
        .map_err(|e| sdk_error(format!("list the log streams of `{name}`"), e))?;
    let streams = out.log_streams().iter().filter_map(|s| s.log_stream_name().map(str::to_string)).collect();
    Ok(Some(GroupInfo { retention_days, tags, streams }))
}

pub async fn create_group(logs: &Client, name: &str, tags: &[(String, String)]) -> Result<()> {
    let mut call = logs.create_log_group().log_group_name(name);
    for (k, v) in tags {
        call = call.tags(k, v);
    }
    match call.send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_already_exists_exception()) => Ok(()),
        Err(e) => Err(sdk_error(format!("create log group `{name}`"), e)),
    }
}

pub async fn tag_group(logs: &Client, arn: &str, tags: &[(String, String)]) -> Result<()> {
    let mut call = logs.tag_resource().resource_arn(arn);
    for (k, v) in tags {
        call = call.tags(k, v);
    }
    call.send().await.map_err(|e| sdk_error(format!("tag log group `{arn}`"), e))?;
    Ok(())
}

pub async fn put_retention(logs: &Client, name: &str, days: i32) -> Result<()> {
    logs.put_retention_policy()
        .log_group_name(name)
        .retention_in_days(days)
        .send()
        .await
        .map_err(|e| sdk_error(format!("set the retention of log group `{name}`"), e))?;
    Ok(())
}

pub async fn create_stream(logs: &Client, group: &str, stream: &str) -> Result<()> {
    match logs.create_log_stream().log_group_name(group).log_stream_name(stream).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_already_exists_exception()) => Ok(()),
        Err(e) => Err(sdk_error(format!("create log stream `{stream}` in `{group}`"), e)),
    }
}

/// Deletes the group; `false` when it was already gone.
pub async fn delete_group(logs: &Client, name: &str) -> Result<bool> {
    match logs.delete_log_group().log_group_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(false),
        Err(e) => Err(sdk_error(format!("delete log group `{name}`"), e)),
    }
}

/// One delivery error code as seen in the error log over a window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorSummary {
    pub code: String,
    pub count: u64,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    /// AWS's message, as logged.
    pub message: String,
    /// What to do about it, in our words.
    pub hint: Option<String>,
}

/// Firehose's delivery error events in `group`/`stream` between `start` and `end` (inclusive), summarised by
/// code (most frequent first). `Ok(None)` when the group or stream does not exist.
pub async fn delivery_errors(
    logs: &Client,
    group: &str,
    stream: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Option<Vec<ErrorSummary>>> {
    let mut summaries: Vec<ErrorSummary> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let result = logs
            .filter_log_events()
            .log_group_name(group)
            .log_stream_names(stream)
            .start_time(start.timestamp_millis())
            .end_time(end.timestamp_millis())
            .set_next_token(token.clone())
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(None),
            Err(e) => return Err(sdk_error(format!("read the error log `{group}`"), e)),
        };
        for e in out.events() {
            let Some(event) = e.message().and_then(ErrorEvent::parse) else {
                continue;
            };
            let at = DateTime::from_timestamp_millis(e.timestamp().unwrap_or(0)).unwrap_or_default();
            match summaries.iter_mut().find(|s| s.code == event.error_code) {
                Some(s) => {
                    s.count += 1;
                    s.first = s.first.min(at);
                    s.last = s.last.max(at);
                }
                None => summaries.push(ErrorSummary {
                    hint: failures::code(&event.error_code).map(|c| c.hint.to_string()),
                    code: event.error_code,
                    count: 1,
                    first: at,
                    last: at,
                    message: event.message,
                }),
            }
        }
        match out.next_token() {
            Some(t) if Some(t) != token.as_deref() => token = Some(t.to_string()),
            _ => break,
        }
    }
    summaries.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
    Ok(Some(summaries))
}
