//! One function per Kinesis action, with the errors and messages AWS answers.

use serde_json::{Value, json};

use super::model::{Lifecycle, Shard, State, StreamMeta, new_seq_prefix};
use super::{Input, Kinesis, key_of_arn};
use crate::json::{ApiError, null_violation};
use crate::s3::store::now_ms;
use firehose_kit_domain::kinesis::{
    self as rules, ACCOUNT_SHARD_LIMIT, DEFAULT_RETENTION_HOURS, MAX_RECORD_BYTES, MAX_RETENTION_HOURS,
    ON_DEMAND_SHARDS,
};
use firehose_kit_domain::names::arn_partition;
use firehose_kit_domain::types::StreamStatus;

pub(super) fn ok(v: Value) -> Result<Vec<u8>, ApiError> {
    crate::json::ok(&v)
}

pub(super) fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

pub(super) fn validation(value: &str, member: &str, constraint: &str) -> ApiError {
    ApiError::validation(format!("Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"))
}

impl Kinesis {
    /// The `region/name` key a call names (StreamName or StreamARN), validated.
    pub(super) fn key(&self, input: &Input, region: &str) -> Result<String, ApiError> {
        if let Some(arn) = input.stream_arn.as_deref().or(input.resource_arn.as_deref()) {
            return key_of_arn(arn).ok_or_else(|| {
                validation(
                    arn,
                    "streamARN",
                    "Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
                )
            });
        }
        let name = input
            .stream_name
            .as_deref()
            .ok_or_else(|| ApiError::invalid("Either StreamName or StreamARN should be provided."))?;
        if let Some(constraint) = rules::stream_name_problem(name) {
            return Err(validation(name, "streamName", &constraint));
        }
        Ok(format!("{region}/{name}"))
    }

    /// The stream a call names, if it exists (in any status but gone).
    fn stream<'s>(
        &self,
        state: &'s mut State,
        input: &Input,
        region: &str,
    ) -> Result<(&'s mut StreamMeta, StreamStatus), ApiError> {
        let key = self.key(input, region)?;
        let name = key.split_once('/').map(|(_, n)| n.to_string()).unwrap_or_default();
        let meta = state.streams.get_mut(&key).ok_or_else(|| self.not_found(&name))?;
        match self.lifecycle(meta, now_ms()) {
            Lifecycle::Is(status) => Ok((meta, status)),
            Lifecycle::Gone => Err(self.not_found(&name)),
        }
    }

    /// The stream a data-plane call names, if it is ACTIVE.
    pub(super) fn active<'s>(
        &self,
        state: &'s mut State,
        input: &Input,
        region: &str,
    ) -> Result<&'s mut StreamMeta, ApiError> {
        let (meta, status) = self.stream(state, input, region)?;
        if status != StreamStatus::Active {
            let name = meta.name.clone();
            return Err(self.not_found(&name));
        }
        Ok(meta)
    }

    pub(super) fn throttled(&self, meta: &StreamMeta, shard: usize) -> (String, String) {
        (
            "ProvisionedThroughputExceededException".into(),
            format!(
                "Rate exceeded for shard {} in stream {} under account {}.",
                rules::shard_id(shard),
                meta.name,
                self.config.account_id
            ),
        )
    }
}

pub fn create_stream(k: &Kinesis, state: &mut State, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
    let name = input.stream_name.clone().ok_or_else(|| ApiError::validation(null_violation("streamName")))?;
    if let Some(constraint) = rules::stream_name_problem(&name) {
        return Err(validation(&name, "streamName", &constraint));
    }
    let mode = input.stream_mode_details.as_ref().and_then(|m| m.stream_mode.clone());
    let on_demand = match mode.as_deref() {
        None | Some("PROVISIONED") => false,
        Some("ON_DEMAND") => true,
        Some(other) => {
            return Err(validation(
                other,
                "streamModeDetails.streamMode",
                "Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]",
            ));
        }
    };
    let shards = match (on_demand, input.shard_count) {
        (true, Some(_)) => return Err(ApiError::invalid("ShardCount must not be specified for an ON_DEMAND stream.")),
        (true, None) => ON_DEMAND_SHARDS,
        (false, None) => return Err(ApiError::invalid("ShardCount is required for a PROVISIONED stream.")),
        (false, Some(n)) if n < 1 => {
            return Err(validation(&n.to_string(), "shardCount", "Member must have value greater than or equal to 1"));
        }
        (false, Some(n)) => n as usize,
    };
    let key = format!("{region}/{name}");
    if state.streams.get(&key).is_some_and(|m| k.lifecycle(m, now_ms()) != Lifecycle::Gone) {
        return Err(ApiError::in_use(format!("Stream {name} under account {} already exists.", k.config.account_id)));
    }
    let open: usize = state.streams.values().map(|m| m.shards.len()).sum();
    if open + shards > ACCOUNT_SHARD_LIMIT {
        return Err(ApiError::new(
            "LimitExceededException",
            format!(
                "This request would exceed the shard limit for the account {} in {region}. Current shard count for the account: {open}. Limit: {ACCOUNT_SHARD_LIMIT}. Number of additional shards that would have resulted from this request: {shards}.",
                k.config.account_id
            ),
        ));
    }
    if let Some(old) = state.streams.remove(&key) {
        k.store.remove(&old);
    }
    let now = now_ms();
    let mut meta = StreamMeta {
        arn: format!("arn:{}:kinesis:{region}:{}:stream/{name}", arn_partition(region), k.config.account_id),
        name,
        region: region.to_string(),
        incarnation: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
        on_demand,
        retention_hours: DEFAULT_RETENTION_HOURS,
        created_ms: now,
        deleting_since_ms: None,
        tags: input.tags.unwrap_or_default(),
        seq_prefix: new_seq_prefix(),
        first_kept: vec![0; shards],
        shards: Vec::new(),
    };
    meta.shards = rules::shard_ranges(shards).into_iter().map(|(s, e)| Shard::new(s, e, 0)).collect();
    state.streams.insert(key, meta);
    k.save(state)?;
    ok(json!({}))
}

pub fn delete_stream(k: &Kinesis, state: &mut State, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
    let (meta, status) = k.stream(state, &input, region)?;
    if status == StreamStatus::Creating {
        return Err(ApiError::in_use(format!(
            "Stream {} under account {} is in CREATING state and cannot be deleted.",
            meta.name, k.config.account_id
        )));
    }
    if meta.deleting_since_ms.is_none() {
        meta.deleting_since_ms = Some(now_ms());
        k.save(state)?;
    }
    ok(json!({}))
}

fn shard_json(meta: &StreamMeta, i: usize, s: &Shard) -> Value {
    json!({
        "ShardId": rules::shard_id(i),
        "HashKeyRange": {"StartingHashKey": s.start.to_string(), "EndingHashKey": s.end.to_string()},
        "SequenceNumberRange": {"StartingSequenceNumber": meta.sequence_number(i, 0)},
    })
}

fn summary(meta: &StreamMeta, status: StreamStatus) -> Value {
    json!({
        "StreamName": meta.name,
        "StreamARN": meta.arn,
        "StreamStatus": status,
        "StreamModeDetails": {"StreamMode": meta.mode()},
        "RetentionPeriodHours": meta.retention_hours,
        "StreamCreationTimestamp": secs(meta.created_ms),
        "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
        "EncryptionType": "NONE",
        "OpenShardCount": meta.shards.len(),
        "ConsumerCount": 0,
        "MaxRecordSizeInKiB": MAX_RECORD_BYTES / 1024,
    })
}

pub fn describe_stream_summary(
    k: &Kinesis,
    state: &mut State,
    input: Input,
    region: &str,
) -> Result<Vec<u8>, ApiError> {
    let (meta, status) = k.stream(state, &input, region)?;
    ok(json!({"StreamDescriptionSummary": summary(meta, status)}))
}

pub fn describe_stream(k: &Kinesis, state: &mut State, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
    let limit = input.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return Err(validation(&limit.to_string(), "limit", "Member must have value between 1 and 10000"));
    }
    let (meta, status) = k.stream(state, &input, region)?;
    let after = input.exclusive_start_shard_id.as_deref().and_then(rules::shard_index).map(|i| i + 1).unwrap_or(0);
    let shards: Vec<Value> =
        meta.shards.iter().enumerate().skip(after).take(limit as usize).map(|(i, s)| shard_json(meta, i, s)).collect();
    let more = after + shards.len() < meta.shards.len();
    let mut d = summary(meta, status);
    let o = d.as_object_mut().expect("an object");
    for drop in ["OpenShardCount", "ConsumerCount", "MaxRecordSizeInKiB"] {
        o.remove(drop);
    }
    o.insert("Shards".into(), Value::Array(shards));
    o.insert("HasMoreShards".into(), Value::Bool(more));
    ok(json!({"StreamDescription": d}))
}

pub fn list_streams(k: &Kinesis, state: &mut State, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
    let limit = input.limit.unwrap_or(100).clamp(1, 10_000) as usize;
    let start = input.next_token.or(input.exclusive_start_stream_name).unwrap_or_default();
    let now = now_ms();
    let streams: Vec<(&StreamMeta, StreamStatus)> = state
        .streams
        .values()
        .filter(|m| m.region == region && m.name > start)
        .filter_map(|m| match k.lifecycle(m, now) {
            Lifecycle::Is(s) => Some((m, s)),
            Lifecycle::Gone => None,
        })
        .collect();
    let more = streams.len() > limit;
    let page = &streams[..streams.len().min(limit)];
    let mut out = json!({
        "StreamNames": page.iter().map(|(m, _)| &m.name).collect::<Vec<_>>(),
        "HasMoreStreams": more,
        "StreamSummaries": page.iter().map(|(m, s)| json!({
            "StreamName": m.name, "StreamARN": m.arn, "StreamStatus": s,
            "StreamModeDetails": {"StreamMode": m.mode()}, "StreamCreationTimestamp": secs(m.created_ms),
        })).collect::<Vec<_>>(),
    });
    if more && let Some((last, _)) = page.last() {
        out["NextToken"] = Value::String(last.name.clone());
    }
    ok(out)
}

pub fn list_shards(k: &Kinesis, state: &mut State, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
    let limit = input.max_results.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(validation(&limit.to_string(), "maxResults", "Member must have value between 1 and 10000"));
    }
    let (key, after) = match input.next_token.as_deref() {
        // AWS refuses a NextToken beside the members that start a listing (the message Terraform's provider quotes).
        Some(_) if input.stream_name.is_some() => {
            return Err(ApiError::invalid("NextToken and StreamName cannot be provided together."));
        }
        Some(_) if input.exclusive_start_shard_id.is_some() => {
            return Err(ApiError::invalid("NextToken and ExclusiveStartShardId cannot be provided together."));
        }
        Some(token) => {
            let invalid = || ApiError::invalid("Invalid NextToken.");
            let (key, after) = token.rsplit_once('|').ok_or_else(invalid)?;
            (key.to_string(), after.parse::<usize>().map_err(|_| invalid())?)
        }
        None => {
            let after = input.exclusive_start_shard_id.as_deref().and_then(rules::shard_index).map(|i| i + 1);
            (k.key(&input, region)?, after.unwrap_or(0))
        }
    };
    let name = key.split_once('/').map(|(_, n)| n.to_string()).unwrap_or_default();
    let meta = state
        .streams
        .get(&key)
        .filter(|m| k.lifecycle(m, now_ms()) != Lifecycle::Gone)
        .ok_or_else(|| k.not_found(&name))?;
    let shards: Vec<Value> =
        meta.shards.iter().enumerate().skip(after).take(limit as usize).map(|(i, s)| shard_json(meta, i, s)).collect();
    let mut out = json!({"Shards": shards});
    let end = after.saturating_add(limit as usize);
    if end < meta.shards.len() {
        out["NextToken"] = Value::String(format!("{key}|{end}"));
    }
    ok(out)
}

pub fn add_tags(k: &Kinesis, state: &mut State, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
    let tags = input.tags.clone().ok_or_else(|| ApiError::validation(null_violation("tags")))?;
    let (meta, _) = k.stream(state, &input, region)?;
    let mut merged = meta.tags.clone();
    merged.extend(tags);
    if merged.len() > 50 {
        return Err(ApiError::invalid("Failed to add tags: a stream has at most 50 tags."));
    }
    meta.tags = merged;
    k.save(state)?;
    ok(json!({}))
}

pub fn remove_tags(k: &Kinesis, state: &mut State, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
    let keys = input.tag_keys.clone().ok_or_else(|| ApiError::validation(null_violation("tagKeys")))?;
    let (meta, _) = k.stream(state, &input, region)?;
    meta.tags.retain(|key, _| !keys.contains(key));
    k.save(state)?;
    ok(json!({}))
}

pub fn list_tags(k: &Kinesis, state: &mut State, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
    let limit = input.limit.unwrap_or(50).clamp(1, 50) as usize;
    let start = input.exclusive_start_tag_key.clone().unwrap_or_default();
    let resource = input.action == "ListTagsForResource";
    let (meta, _) = k.stream(state, &input, region)?;
    let after: Vec<Value> = meta
        .tags
        .iter()
        .filter(|(key, _)| start.is_empty() || **key > start)
        .map(|(key, v)| json!({"Key": key, "Value": v}))
        .collect();
    if resource {
        return ok(json!({"Tags": after}));
    }
    let more = after.len() > limit;
    ok(json!({"Tags": after.into_iter().take(limit).collect::<Vec<_>>(), "HasMoreTags": more}))
}

pub fn retention(k: &Kinesis, state: &mut State, input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
    let hours =
        input.retention_period_hours.ok_or_else(|| ApiError::validation(null_violation("retentionPeriodHours")))?;
    let increase = input.action == "IncreaseStreamRetentionPeriod";
    let (meta, status) = k.stream(state, &input, region)?;
    if status != StreamStatus::Active {
        return Err(ApiError::in_use(format!("Stream {} is not ACTIVE (it is {status}).", meta.name)));
    }
    if !(DEFAULT_RETENTION_HOURS..=MAX_RETENTION_HOURS).contains(&hours) {
        return Err(ApiError::invalid(format!(
            "Minimum allowed retention period is {DEFAULT_RETENTION_HOURS} hours. Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested retention period ({hours} hours) is out of range."
        )));
    }
    let current = meta.retention_hours;
    if increase && hours < current {
        return Err(ApiError::invalid(format!(
            "Requested retention period ({hours} hours) for stream {} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API.",
            meta.name
        )));
    }
    if !increase && hours > current {
        return Err(ApiError::invalid(format!(
            "Requested retention period ({hours} hours) for stream {} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API.",
            meta.name
        )));
    }
    meta.retention_hours = hours;
    k.save(state)?;
    ok(json!({}))
}

pub fn describe_limits(k: &Kinesis, state: &mut State, _input: Input, region: &str) -> Result<Vec<u8>, ApiError> {
    let now = now_ms();
    let live = state.streams.values().filter(|m| m.region == region && k.lifecycle(m, now) != Lifecycle::Gone);
    let (open, on_demand) = live.fold((0, 0), |(o, d), m| (o + m.shards.len(), d + m.on_demand as usize));
    ok(json!({
        "ShardLimit": ACCOUNT_SHARD_LIMIT,
        "OpenShardCount": open,
        "OnDemandStreamCount": on_demand,
        "OnDemandStreamCountLimit": 50,
    }))
}
