//! CloudWatch Logs in the emulator (JSON 1.1, `X-Amz-Target: Logs_20140328.<Op>`), enough for Firehose's error
//! logging and for the clients that read it (aws-sdk-rust, boto3, `aws logs`): log groups and streams, events,
//! retention, tags, and `FilterLogEvents` with CloudWatch's plain-text and simple JSON filter patterns.
//!
//! Split like the emulator's other services: the wire protocol is [`crate::json`]; [`handlers`] has one function
//! per action, found in [`ACTIONS`]; [`model`] holds the state and PutLogEvents' rules (batches of at most
//! 10,000 events and 1,048,576 bytes, 26 bytes of overhead per event, chronological, spanning at most 24 h;
//! events more than 2 h ahead or 14 days old, or older than the retention, rejected one by one in
//! `rejectedLogEventsInfo` while the rest are stored); [`store`] persists it, events append-only.

mod filter;
mod handlers;
pub mod model;
mod store;

use std::path::PathBuf;
use std::sync::Mutex;

use bytes::Bytes;
use http::Response;
use serde::Deserialize;

use self::model::{State, cutoff, put_events};
use self::store::Store;
use super::json::{self, ApiError};
use super::s3::store::now_ms;

/// One action: reads its input, changes or reads the state (persisting what it changes), answers.
type Handler = json::Handler<Logs, State, Input>;

/// Every action the emulator serves, by name.
const ACTIONS: &[(&str, Handler)] = &[
    ("CreateLogGroup", handlers::create_log_group),
    ("CreateLogStream", handlers::create_log_stream),
    ("DeleteLogGroup", handlers::delete_log_group),
    ("DeleteLogStream", handlers::delete_log_stream),
    ("PutRetentionPolicy", handlers::put_retention_policy),
    ("DeleteRetentionPolicy", handlers::delete_retention_policy),
    ("DescribeLogGroups", handlers::describe_log_groups),
    ("DescribeLogStreams", handlers::describe_log_streams),
    ("PutLogEvents", handlers::put_log_events),
    ("GetLogEvents", handlers::get_log_events),
    ("FilterLogEvents", handlers::filter_log_events),
    ("TagResource", handlers::tags),
    ("UntagResource", handlers::tags),
    ("ListTagsForResource", handlers::tags),
    ("TagLogGroup", handlers::tags),
    ("UntagLogGroup", handlers::tags),
    ("ListTagsLogGroup", handlers::tags),
];

/// The emulator's CloudWatch Logs.
pub struct Logs {
    store: Store,
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

/// What any action may take (the union of their members).
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
    tags: Option<std::collections::BTreeMap<String, String>>,
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
    /// The action's name (set by [`Logs::handle`], for the actions that share a handler).
    #[serde(skip)]
    action: &'static str,
}

#[derive(Deserialize)]
struct InputEvent {
    timestamp: Option<i64>,
    message: Option<String>,
}

impl Logs {
    pub fn open(dir: PathBuf, account_id: String) -> std::io::Result<Self> {
        let (store, state) = Store::open(&dir, now_ms())?;
        Ok(Logs { store, account_id, state: Mutex::new(state) })
    }

    /// Serves one CloudWatch Logs call.
    pub fn handle(&self, operation: &str, body: &[u8], region: &str) -> Response<Bytes> {
        json::dispatch(self, &self.state, ACTIONS, (operation, body, region), |input, name| input.action = name)
    }

    fn persist(&self, result: std::io::Result<()>) -> Result<(), ApiError> {
        result.map_err(ApiError::internal)
    }

    /// Stores a batch in a stream (memory and its file), expiring what the retention no longer keeps.
    fn put(
        &self,
        state: &mut State,
        group_key: &str,
        stream: &str,
        batch: Vec<(i64, String)>,
    ) -> Result<serde_json::Value, ApiError> {
        let now = now_ms();
        let put = put_events(state, group_key, stream, batch, now)?;
        self.persist(self.store.append(group_key, stream, &put.stored))?;
        let group = state.groups.get_mut(group_key).expect("put_events found it");
        let from = cutoff(group.retention_ms(), now);
        let s = group.streams.get_mut(stream).expect("put_events found it");
        let expired = s.summary.expire(from);
        s.summary.stale_in_file += expired;
        if s.summary.stale_in_file > s.summary.count() {
            let kept = self.store.read(group_key, stream, from).map_err(ApiError::internal)?;
            self.persist(self.store.rewrite(group_key, stream, &kept))?;
            s.summary.stale_in_file = 0;
        }
        Ok(put.answer)
    }

    /// Appends one event from inside the emulator (Firehose's error logging); `false` if the group or stream does
    /// not exist (Firehose does not create them).
    pub fn append(&self, region: &str, group: &str, stream: &str, message: String) -> bool {
        let mut state = crate::lock(&self.state);
        match self.put(&mut state, &key(region, group), stream, vec![(now_ms(), message)]) {
            Ok(_) => true,
            Err(e) if e.code == "InternalFailure" => {
                tracing::error!("cannot persist log events: {}", e.message);
                true
            }
            Err(_) => false,
        }
    }

    /// Creates a log group and stream when they do not exist (Lambda writes a function's output this way).
    pub fn ensure_stream(&self, region: &str, group: &str, stream: &str) {
        let mut state = crate::lock(&self.state);
        let (created_group, created_stream) = state.ensure(&key(region, group), group, stream, now_ms());
        if created_group || created_stream {
            let saved = self.store.save_meta(&state);
            if let Err(e) = saved {
                tracing::error!("cannot persist log groups: {e}");
            }
        }
    }

    /// Whether a log group and stream exist.
    #[cfg(test)]
    fn stream_exists(&self, region: &str, group: &str, stream: &str) -> bool {
        let state = crate::lock(&self.state);
        state.groups.get(&key(region, group)).is_some_and(|g| g.streams.contains_key(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::model::{DAY_MS, HOUR_MS};
    use super::*;
    use serde_json::{Value, json};
    use std::io::Write;

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

    /// A long delivery failure logs thousands of events: each is appended to the stream's file, never the whole
    /// state rewritten, and everything is read back after a restart (a torn last line cut off).
    #[test]
    fn events_are_appended_and_survive_a_restart_with_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::open(dir.path().into(), "000000000000".into()).unwrap();
        call(&logs, "CreateLogGroup", json!({"logGroupName": "g"}));
        call(&logs, "CreateLogStream", json!({"logGroupName": "g", "logStreamName": "s"}));
        for i in 0..1000 {
            assert!(logs.append("us-east-1", "g", "s", format!("event {i}")));
        }
        let meta_len = std::fs::metadata(dir.path().join("meta.json")).unwrap().len();
        assert!(meta_len < 2000, "events are not in the metadata ({meta_len} bytes)");
        let files: Vec<_> = walk(&dir.path().join("events"));
        assert_eq!(files.len(), 1);
        drop(logs);
        // Killed in the middle of a write: half a line at the end.
        std::fs::OpenOptions::new().append(true).open(&files[0]).unwrap().write_all(b"{\"timestamp\":1,").unwrap();
        let logs = Logs::open(dir.path().into(), "000000000000".into()).unwrap();
        let (_, page) =
            call(&logs, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}));
        assert_eq!(page["events"].as_array().unwrap().len(), 1000);
        assert!(logs.append("us-east-1", "g", "s", "after".into()));
        drop(logs);
        let logs = Logs::open(dir.path().into(), "000000000000".into()).unwrap();
        let (_, page) = call(&logs, "FilterLogEvents", json!({"logGroupName": "g", "filterPattern": "after"}));
        assert_eq!(page["events"].as_array().unwrap().len(), 1, "the event after the torn one is readable");
        // Deleting the group removes its events.
        call(&logs, "DeleteLogGroup", json!({"logGroupName": "g"}));
        assert!(walk(&dir.path().join("events")).is_empty());
    }

    #[test]
    fn state_of_older_versions_is_moved_to_the_new_layout() {
        let dir = tempfile::tempdir().unwrap();
        let now = now_ms();
        let old = json!({"groups": {"us-east-1/g": {"region": "us-east-1", "name": "g", "created_ms": now,
            "retention_days": 14, "kms_key_id": null, "tags": {}, "streams": {"s": {"created_ms": now,
            "events": [{"timestamp": now, "message": "kept", "ingestion_time": now, "seq": 7}]}}}}, "next_seq": 7});
        std::fs::write(dir.path().join("groups.json"), old.to_string()).unwrap();
        let logs = Logs::open(dir.path().into(), "000000000000".into()).unwrap();
        assert!(!dir.path().join("groups.json").exists());
        let (_, page) = call(&logs, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s"}));
        assert_eq!(page["events"][0]["message"], "kept");
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
        out
    }
}
