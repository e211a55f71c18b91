//! The control plane: CreateDeliveryStream, DescribeDeliveryStream, ListDeliveryStreams, UpdateDestination,
//! DeleteDeliveryStream, the tag calls and Start/StopDeliveryStreamEncryption, with the CREATING → ACTIVE →
//! DELETING lifecycle and ENABLING → ENABLED → DISABLING → DISABLED for encryption.

use super::model::{
    CreateInput, CreateOutput, DESTINATION_ID, Encryption, EncryptionCallInput, ListInput, ListOutput, ListTagsInput,
    ListTagsOutput, NameInput, StreamState, TagInput, TagOutput, UntagInput, UpdateInput,
};
use super::{Firehose, Stream, stream_key, validate};
use crate::json::{self as wire, ApiError, Empty};
use crate::s3::store::now_ms;
use firehose_kit_domain::limits::MAX_TAGS;
use firehose_kit_domain::names::arn_partition;
use firehose_kit_domain::types::{EncryptionStatus, StreamStatus};

impl Firehose {
    pub(super) fn create(&self, body: &[u8], region: &str) -> Result<Vec<u8>, ApiError> {
        let input: CreateInput = wire::input(body)?;
        let name = validate::stream_name(input.name.as_deref())?;
        let throughput_hint_mb = validate::unmodelled_create(input.stream_type.as_deref(), &input.other)?;
        let destination = match (input.extended_s3, input.s3) {
            (Some(d), None) => validate::destination_from(d, true, "extendedS3DestinationConfiguration")?,
            (None, Some(d)) => validate::destination_from(d, false, "s3DestinationConfiguration")?,
            (None, None) => return Err(ApiError::invalid("Exactly one destination configuration must be specified")),
            (Some(_), Some(_)) => return Err(ApiError::invalid("Only one destination configuration can be specified")),
        };
        validate::destination(&destination, "extendedS3DestinationConfiguration")?;
        self.check_conversion_table(&destination, region)?;
        validate::tags(&input.tags)?;
        let encryption = input.encryption.as_ref().map(validate::encryption).transpose()?;
        let source =
            validate::kinesis_source(input.stream_type.as_deref(), input.kinesis_source, encryption.is_some())?;
        let key = stream_key(region, &name);
        let mut streams = crate::lock(&self.streams);
        if let Some(existing) = streams.get(&key) {
            if self.lifecycle(&existing.state) != super::Lifecycle::Gone {
                return Err(ApiError::in_use(format!(
                    "Firehose {name} under accountId {} already exists",
                    self.config.account_id
                )));
            }
            if let Some(s) = streams.remove(&key) {
                s.retire();
            }
        }
        self.iam.check_assumable(&destination.role_arn, region).map_err(ApiError::invalid)?;
        let now = now_ms();
        let source = match source {
            Some((stream_arn, role_arn)) => {
                self.iam.check_assumable(&role_arn, region).map_err(ApiError::invalid)?;
                Some(super::model::KinesisSource { stream_arn, role_arn, start_ms: now })
            }
            None => None,
        };
        let state = StreamState {
            arn: format!(
                "arn:{}:firehose:{region}:{}:deliverystream/{name}",
                arn_partition(region),
                self.config.account_id
            ),
            name: name.clone(),
            region: region.to_string(),
            incarnation: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            created_ms: now,
            updated_ms: now,
            version: 1,
            deleting_since_ms: None,
            destination,
            tags: input.tags,
            // Enabled along with the stream: ENABLING while it is CREATING.
            encryption: encryption.map(|(key_type, key_arn)| Encryption {
                on: true,
                key_type,
                key_arn,
                changed_ms: now,
            }),
            source,
            throughput_hint_mb,
        };
        let reader = match &state.source {
            Some(source) => {
                let dir = self.journal_dir(&state);
                let reader = super::source::Reader::create(dir, source, &self.kinesis, self.config.durability)
                    .ok_or_else(|| {
                        ApiError::invalid(format!(
                            "Kinesis stream {} does not exist or is not ACTIVE",
                            source.stream_arn
                        ))
                    })?;
                Some(std::sync::Arc::new(reader))
            }
            None => None,
        };
        let pipeline = self
            .start_pipeline(&state)
            .map_err(ApiError::internal)?
            .map_err(|why| ApiError::invalid(format!("the destination cannot be run: {why}")))?;
        if let Some(reader) = &reader {
            reader.save().map_err(ApiError::internal)?;
        }
        let arn = state.arn.clone();
        streams.insert(key, Stream { state, pipeline: Ok(pipeline), reader });
        self.save(&streams)?;
        wire::ok(&CreateOutput { arn })
    }

    pub(super) fn describe(&self, body: &[u8], region: &str) -> Result<Vec<u8>, ApiError> {
        let input: NameInput = wire::input(body)?;
        self.read_stream(input.name.as_deref(), region, |s, status| {
            let failure = s.pipeline.as_ref().err().map(String::as_str);
            wire::ok(&s.state.description(status, self.encryption_status(&s.state), failure))
        })
    }

    pub(super) fn list(&self, body: &[u8], region: &str) -> Result<Vec<u8>, ApiError> {
        let input: ListInput = wire::input(body)?;
        let limit = input.limit.unwrap_or(10);
        if !(1..=10_000).contains(&limit) {
            return Err(ApiError::validation(format!(
                "Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1 and less than or equal to 10000"
            )));
        }
        let wanted = input.stream_type.clone();
        let start = input.start.unwrap_or_default();
        let streams = crate::lock(&self.streams);
        let names: Vec<&str> = streams
            .values()
            .filter(|s| s.state.region == region && s.state.name > start)
            .filter(|s| match wanted.as_deref() {
                None => true,
                Some("KinesisStreamAsSource") => s.state.source.is_some(),
                Some("DirectPut") => s.state.source.is_none(),
                Some(_) => false,
            })
            .filter(|s| self.lifecycle(&s.state) != super::Lifecycle::Gone)
            .map(|s| s.state.name.as_str())
            .collect();
        let more = names.len() > limit as usize;
        wire::ok(&ListOutput { names: names.into_iter().take(limit as usize).collect(), more })
    }

    pub(super) fn delete(&self, body: &[u8], region: &str) -> Result<Vec<u8>, ApiError> {
        let input: NameInput = wire::input(body)?;
        self.write_stream(input.name.as_deref(), region, |s, status| {
            match status {
                StreamStatus::Creating => {
                    return Err(ApiError::in_use(format!(
                        "Firehose {} is in CREATING state and cannot be deleted until it is ACTIVE",
                        s.state.name
                    )));
                }
                StreamStatus::Deleting => return wire::ok(&Empty {}),
                _ => {}
            }
            s.state.deleting_since_ms = Some(now_ms());
            if let Some(p) = s.pipeline() {
                p.flush_due(0, true);
            }
            wire::ok(&Empty {})
        })
    }

    pub(super) fn update(&self, body: &[u8], region: &str) -> Result<Vec<u8>, ApiError> {
        let input: UpdateInput = wire::input(body)?;
        let name = validate::stream_name(input.name.as_deref())?;
        self.write_stream(Some(&name), region, |s, status| {
            if status != StreamStatus::Active {
                return Err(ApiError::in_use(format!("Firehose {name} is not in the ACTIVE state (it is {status})")));
            }
            let current = input.current_version.as_deref().unwrap_or("");
            if current != s.state.version.to_string() {
                return Err(ApiError::new(
                    "ConcurrentModificationException",
                    format!(
                        "Version {current} does not match the current version {} of Firehose {name}",
                        s.state.version
                    ),
                ));
            }
            if input.destination_id.as_deref() != Some(DESTINATION_ID) {
                return Err(ApiError::invalid(format!(
                    "Destination {} not found for Firehose {name}",
                    input.destination_id.unwrap_or_default()
                )));
            }
            if let Some(member) = input.other.keys().next() {
                let what = format!("{member} (an update of a destination or member it does not model)");
                return Err(ApiError::invalid(firehose_kit_domain::emulated::Unmodelled::Member(what).message()));
            }
            let (update, extended) = match (input.extended_s3, input.s3) {
                (Some(u), None) => (u, true),
                (None, Some(u)) => (u, false),
                _ => return Err(ApiError::invalid("Exactly one destination update must be specified")),
            };
            let mut destination = validate::merge_update(s.state.destination.clone(), update)?;
            // An ExtendedS3DestinationUpdate makes an S3 destination an ExtendedS3 one, as Describe then shows.
            destination.extended |= extended;
            // Dynamic partitioning is chosen at create and stays (AWS: enable only at create, never disable).
            match (s.state.destination.dynamic_partitioning_enabled(), destination.dynamic_partitioning_enabled()) {
                (false, true) => {
                    return Err(ApiError::invalid(
                        "Dynamic Partitioning can only be enabled when the delivery stream is created",
                    ));
                }
                (true, false) => {
                    return Err(ApiError::invalid("Dynamic Partitioning cannot be disabled once it is enabled"));
                }
                _ => {}
            }
            validate::destination(&destination, "extendedS3DestinationUpdate")?;
            self.check_conversion_table(&destination, region)?;
            if destination.role_arn != s.state.destination.role_arn {
                self.iam.check_assumable(&destination.role_arn, region).map_err(ApiError::invalid)?;
            }
            let mut next = s.state.clone();
            next.destination = destination;
            next.version += 1;
            next.updated_ms = now_ms();
            let plan =
                self.plan(&next).map_err(|why| ApiError::invalid(format!("the destination cannot be run: {why}")))?;
            match &s.pipeline {
                Ok(p) => p.retarget(&plan).map_err(ApiError::internal)?,
                // A stream whose stored configuration did not read back runs again: its journal is delivered now.
                Err(_) => s.pipeline = self.start_pipeline(&next).map_err(ApiError::internal)?,
            }
            s.state = next;
            wire::ok(&Empty {})
        })
    }

    /// A converting stream's Glue table must exist (AWS reads it at create), with column types the emulator
    /// converts to.
    fn check_conversion_table(&self, d: &super::model::Destination, region: &str) -> Result<(), ApiError> {
        let Ok(Some(c)) = firehose_kit_domain::conversion::parse(d.data_format_conversion.as_ref()) else {
            return Ok(());
        };
        let s = &c.schema;
        let region = s.region.as_deref().unwrap_or(region);
        let table = self.ctx.glue.as_ref().and_then(|g| g.table(region, &s.database, &s.table)).ok_or_else(|| {
            ApiError::invalid(format!(
                "Could not read the Glue table {}.{} of the data format conversion: EntityNotFoundException: Table {} not found.",
                s.database, s.table, s.table
            ))
        })?;
        for col in table["StorageDescriptor"]["Columns"].as_array().into_iter().flatten() {
            firehose_kit_domain::conversion::column_type(col["Type"].as_str().unwrap_or_default())
                .map_err(|e| ApiError::invalid(e.trim_start_matches("unmodelled:").to_string()))?;
        }
        Ok(())
    }

    /// StartDeliveryStreamEncryption: ENABLING, then ENABLED (a new key while ENABLED goes through ENABLING).
    pub(super) fn start_encryption(&self, body: &[u8], region: &str) -> Result<Vec<u8>, ApiError> {
        let input: EncryptionCallInput = wire::input(body)?;
        let (key_type, key_arn) = validate::encryption(&input.config.unwrap_or_default())?;
        self.write_stream(input.name.as_deref(), region, |s, status| {
            self.encryption_can_change(&s.state, status)?;
            s.state.encryption = Some(Encryption { on: true, key_type, key_arn, changed_ms: now_ms() });
            wire::ok(&Empty {})
        })
    }

    /// StopDeliveryStreamEncryption: DISABLING, then DISABLED; nothing to do when already disabled.
    pub(super) fn stop_encryption(&self, body: &[u8], region: &str) -> Result<Vec<u8>, ApiError> {
        let input: NameInput = wire::input(body)?;
        self.write_stream(input.name.as_deref(), region, |s, status| {
            if self.encryption_status(&s.state) == EncryptionStatus::Disabled {
                return wire::ok(&Empty {});
            }
            self.encryption_can_change(&s.state, status)?;
            if let Some(e) = &mut s.state.encryption {
                e.on = false;
                e.changed_ms = now_ms();
            }
            wire::ok(&Empty {})
        })
    }

    /// Encryption changes only on an ACTIVE stream and not while a change is in progress.
    fn encryption_can_change(&self, state: &StreamState, status: StreamStatus) -> Result<(), ApiError> {
        if state.source.is_some() {
            return Err(ApiError::invalid(format!(
                "Firehose {} reads a Kinesis data stream: server-side encryption applies to DirectPut streams only (encrypt the data stream instead)",
                state.name
            )));
        }
        if status != StreamStatus::Active {
            return Err(ApiError::in_use(format!(
                "Firehose {} is not in the ACTIVE state (it is {status})",
                state.name
            )));
        }
        match self.encryption_status(state) {
            s @ (EncryptionStatus::Enabling | EncryptionStatus::Disabling) => Err(ApiError::in_use(format!(
                "Firehose {} encryption is {s}: wait until the change is done",
                state.name
            ))),
            _ => Ok(()),
        }
    }

    pub(super) fn tag(&self, body: &[u8], region: &str) -> Result<Vec<u8>, ApiError> {
        let input: TagInput = wire::input(body)?;
        let tags = input.tags.ok_or_else(|| ApiError::validation(wire::null_violation("tags")))?;
        if tags.is_empty() {
            return Err(ApiError::validation(
                "Value '[]' at 'tags' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        validate::tags(&tags)?;
        self.write_stream(input.name.as_deref(), region, |s, _| {
            let mut merged = s.state.tags.clone();
            for t in tags {
                match merged.iter_mut().find(|x| x.key == t.key) {
                    Some(existing) => existing.value = t.value,
                    None => merged.push(t),
                }
            }
            if merged.len() > MAX_TAGS {
                return Err(ApiError::new(
                    "LimitExceededException",
                    format!("A stream can have at most {MAX_TAGS} tags"),
                ));
            }
            s.state.tags = merged;
            wire::ok(&Empty {})
        })
    }

    pub(super) fn untag(&self, body: &[u8], region: &str) -> Result<Vec<u8>, ApiError> {
        let input: UntagInput = wire::input(body)?;
        let keys = input.keys.ok_or_else(|| ApiError::validation(wire::null_violation("tagKeys")))?;
        self.write_stream(input.name.as_deref(), region, |s, _| {
            s.state.tags.retain(|t| !keys.contains(&t.key));
            wire::ok(&Empty {})
        })
    }

    pub(super) fn list_tags(&self, body: &[u8], region: &str) -> Result<Vec<u8>, ApiError> {
        let input: ListTagsInput = wire::input(body)?;
        let limit = input.limit.unwrap_or(50);
        if !(1..=MAX_TAGS as i64).contains(&limit) {
            return Err(ApiError::validation(format!(
                "Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1 and less than or equal to {MAX_TAGS}"
            )));
        }
        let limit = limit as usize;
        let start = input.start.unwrap_or_default();
        self.read_stream(input.name.as_deref(), region, |s, _| {
            let mut tags: Vec<&super::model::Tag> = s.state.tags.iter().collect();
            tags.sort_by(|a, b| a.key.cmp(&b.key));
            let after: Vec<_> = tags.into_iter().filter(|t| start.is_empty() || t.key > start).collect();
            let more = after.len() > limit;
            let page = after
                .into_iter()
                .take(limit)
                .map(|t| TagOutput { key: &t.key, value: t.value.as_deref().unwrap_or_default() })
                .collect();
            wire::ok(&ListTagsOutput { tags: page, more })
        })
    }
}
