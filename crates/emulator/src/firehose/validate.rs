//! Input validation of the emulator's Firehose API: the model constraints AWS's front end checks (answered as
//! `ValidationException`, every violation listed) and the service's semantic rules (`InvalidArgumentException`),
//! using the rules in [`firehose_kit_domain`], plus the emulator's deliberate refusals
//! ([`firehose_kit_domain::emulated`]).

use firehose_kit_domain::conversion;
use firehose_kit_domain::emulated::{self, Requested};
use firehose_kit_domain::keys::file_extension_problem;
use firehose_kit_domain::limits::{
    DEFAULT_BUFFER_INTERVAL_S, DEFAULT_BUFFER_SIZE_MIB, MAX_TAG_KEY_CHARS, MAX_TAG_VALUE_CHARS, MAX_TAGS, hint_problems,
};
use firehose_kit_domain::names::{STREAM_NAME_PATTERN, stream_name_problem};
use firehose_kit_domain::partitioning;
use firehose_kit_domain::prefix::{self, Prefixes};
use firehose_kit_domain::transform::LambdaProcessor;
use firehose_kit_domain::types::Compression;

use super::model::{Destination, DestinationInput, EncryptionInput, Tag};
use crate::json::{ApiError, null_violation};

/// A `DeliveryStreamName` member.
pub fn stream_name(name: Option<&str>) -> Result<String, ApiError> {
    let name = name.ok_or_else(|| ApiError::validation(null_violation("deliveryStreamName")))?;
    if stream_name_problem(name).is_some() {
        return Err(ApiError::validation(format!(
            "Value '{name}' at 'deliveryStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: {STREAM_NAME_PATTERN} and have length between 1 and 64"
        )));
    }
    Ok(name.to_string())
}

/// What a destination document (create or update) sets that AWS's model refuses, or the emulator does not model:
/// members it does not read, `S3BackupMode` (only `Disabled` is modelled: no source record backup yet), and
/// `EncryptionConfiguration` (`NoEncryption` only: no KMS key is ever used).
fn check_members(input: &DestinationInput, path: &str) -> Result<(), ApiError> {
    if let Some(mode) = input.s3_backup_mode.as_deref().filter(|m| !matches!(*m, "Disabled" | "Enabled")) {
        return Err(ApiError::validation(format!(
            "Value '{mode}' at '{path}.s3BackupMode' failed to satisfy constraint: Member must satisfy enum value set: [Disabled, Enabled]"
        )));
    }
    if let Some(none) = input.encryption_configuration.as_ref().and_then(|e| e.get("NoEncryptionConfig"))
        && none != "NoEncryption"
    {
        return Err(ApiError::validation(format!(
            "Value '{}' at '{path}.encryptionConfiguration.noEncryptionConfig' failed to satisfy constraint: Member must satisfy enum value set: [NoEncryption]",
            none.as_str().unwrap_or_default()
        )));
    }
    let member = input.unmodelled.keys().next().map(|m| format!("{path}.{m}"));
    let member = member
        .or_else(|| {
            (input.s3_backup_mode.as_deref() == Some("Enabled"))
                .then(|| format!("{path}.S3BackupMode Enabled (source record backup)"))
        })
        .or_else(|| {
            let kms = input.encryption_configuration.as_ref().is_some_and(|e| e.get("KMSEncryptionConfig").is_some());
            kms.then(|| format!("{path}.EncryptionConfiguration.KMSEncryptionConfig (SSE-KMS objects)"))
        });
    match member {
        Some(m) => Err(ApiError::invalid(emulated::Unmodelled::Member(m).message())),
        None => Ok(()),
    }
}

/// A destination document (create), with defaults applied; `path` names it in messages.
pub fn destination_from(input: DestinationInput, extended: bool, path: &str) -> Result<Destination, ApiError> {
    check_members(&input, path)?;
    let hints = input.buffering_hints.unwrap_or_default();
    if hints.size_in_mbs.is_some() != hints.interval_in_seconds.is_some() {
        return Err(ApiError::invalid(
            "BufferingHints: if you specify SizeInMBs or IntervalInSeconds, you must specify both",
        ));
    }
    let mut missing = Vec::new();
    if input.role_arn.is_none() {
        missing.push(null_violation(&format!("{path}.roleARN")));
    }
    if input.bucket_arn.is_none() {
        missing.push(null_violation(&format!("{path}.bucketARN")));
    }
    if !missing.is_empty() {
        return Err(ApiError::validations(missing));
    }
    Ok(Destination {
        extended,
        role_arn: input.role_arn.unwrap_or_default(),
        bucket_arn: input.bucket_arn.unwrap_or_default(),
        prefix: input.prefix.filter(|p| !p.is_empty()),
        error_output_prefix: input.error_output_prefix.filter(|p| !p.is_empty()),
        // A converting stream without hints buffers 128 MiB (AWS's default there; 64 MiB is its minimum).
        size_in_mbs: hints.size_in_mbs.unwrap_or(
            if matches!(conversion::parse(input.data_format_conversion_configuration.as_ref()), Ok(Some(_))) {
                conversion::DEFAULT_SIZE_MIB
            } else {
                DEFAULT_BUFFER_SIZE_MIB
            },
        ),
        interval_in_seconds: hints.interval_in_seconds.unwrap_or(DEFAULT_BUFFER_INTERVAL_S),
        compression: compression(input.compression_format.as_deref())?,
        file_extension: input.file_extension,
        custom_time_zone: input.custom_time_zone,
        encryption: input.encryption_configuration,
        cloud_watch_logging_options: input.cloud_watch_logging_options,
        processing: input.processing_configuration,
        data_format_conversion: input.data_format_conversion_configuration,
        dynamic_partitioning: input.dynamic_partitioning_configuration,
        s3_backup_mode: input.s3_backup_mode,
    })
}

fn compression(text: Option<&str>) -> Result<Compression, ApiError> {
    let c = Compression::parse(text.unwrap_or("UNCOMPRESSED"));
    if !c.is_known() {
        return Err(ApiError::validation(format!(
            "Value '{c}' at 'compressionFormat' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            Compression::KNOWN.join(", ")
        )));
    }
    Ok(c)
}

/// Applies an UpdateDestination document to a destination.
pub fn merge_update(mut d: Destination, u: DestinationInput) -> Result<Destination, ApiError> {
    check_members(&u, "extendedS3DestinationUpdate")?;
    let lambda = |d: &Destination| LambdaProcessor::from_config(d.processing.as_ref()).ok().flatten().is_some();
    let had_lambda = lambda(&d);
    if let Some(v) = u.role_arn {
        d.role_arn = v;
    }
    if let Some(v) = u.bucket_arn {
        d.bucket_arn = v;
    }
    if let Some(v) = u.prefix {
        d.prefix = Some(v).filter(|p| !p.is_empty());
    }
    if let Some(v) = u.error_output_prefix {
        d.error_output_prefix = Some(v).filter(|p| !p.is_empty());
    }
    if let Some(h) = u.buffering_hints {
        d.size_in_mbs = h.size_in_mbs.unwrap_or(d.size_in_mbs);
        d.interval_in_seconds = h.interval_in_seconds.unwrap_or(d.interval_in_seconds);
    }
    if u.compression_format.is_some() {
        d.compression = compression(u.compression_format.as_deref())?;
    }
    fn replace<T>(slot: &mut Option<T>, v: Option<T>) {
        if v.is_some() {
            *slot = v;
        }
    }
    replace(&mut d.file_extension, u.file_extension);
    replace(&mut d.custom_time_zone, u.custom_time_zone);
    replace(&mut d.encryption, u.encryption_configuration);
    replace(&mut d.cloud_watch_logging_options, u.cloud_watch_logging_options);
    replace(&mut d.processing, u.processing_configuration);
    replace(&mut d.data_format_conversion, u.data_format_conversion_configuration);
    replace(&mut d.dynamic_partitioning, u.dynamic_partitioning_configuration);
    replace(&mut d.s3_backup_mode, u.s3_backup_mode);
    let requested = Requested {
        lambda_removed: had_lambda && !lambda(&d),
        lambda_added_to_partitioned: !had_lambda && lambda(&d) && d.dynamic_partitioning_enabled(),
        ..Default::default()
    };
    if let Some(unmodelled) = emulated::refusal(&requested) {
        return Err(ApiError::invalid(unmodelled.message()));
    }
    Ok(d)
}

/// Checks a destination as CreateDeliveryStream and UpdateDestination do; returns its prefixes and time zone.
pub fn destination(d: &Destination, path: &str) -> Result<(Prefixes, chrono_tz::Tz), ApiError> {
    let mut violations: Vec<String> = hint_problems(d.size_in_mbs, d.interval_in_seconds)
        .into_iter()
        .map(|p| {
            format!(
                "Value '{}' at '{path}.bufferingHints.{}' failed to satisfy constraint: {}",
                p.value, p.member, p.constraint
            )
        })
        .collect();
    if !d.bucket_arn.starts_with("arn:") || !d.bucket_arn.contains(":s3:::") || d.bucket().is_empty() {
        violations.push(format!(
            "Value '{}' at '{path}.bucketARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:.*:s3:::[\\w\\.\\-]{{1,255}}",
            d.bucket_arn
        ));
    }
    if !d.role_arn.starts_with("arn:") || !d.role_arn.contains(":iam::") || !d.role_arn.contains(":role/") {
        violations.push(format!(
            "Value '{}' at '{path}.roleARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:.*:iam::\\d{{12}}:role/[a-zA-Z_0-9+=,.@\\-_/]+",
            d.role_arn
        ));
    }
    if let Some(ext) = &d.file_extension
        && let Some(constraint) = file_extension_problem(ext)
    {
        violations.push(format!("Value '{ext}' at '{path}.fileExtension' failed to satisfy constraint: {constraint}"));
    }
    let processing = d.processing.as_ref().filter(|c| c["Enabled"] != serde_json::Value::Bool(false));
    let all = d.processing.as_ref();
    violations.extend(partitioning::processor_violations(all, &format!("{path}.processingConfiguration")));
    if !violations.is_empty() {
        return Err(ApiError::validations(violations));
    }
    let requested = Requested {
        lambda_partition_keys: d.prefix.as_deref().is_some_and(|p| p.contains("!{partitionKeyFromLambda:")),
        processors: partitioning::processors(processing),
        ..Default::default()
    };
    if let Some(unmodelled) = emulated::refusal(&requested) {
        return Err(ApiError::invalid(unmodelled.message()));
    }
    let invalid = |e: String| ApiError::invalid(e.trim_start_matches("unmodelled:").to_string());
    if conversion::parse(d.data_format_conversion.as_ref()).map_err(invalid)?.is_some() {
        if !d.extended {
            return Err(ApiError::invalid(
                "Data format conversion is only supported with ExtendedS3DestinationConfiguration",
            ));
        }
        conversion::check_destination(d.size_in_mbs, &d.compression).map_err(ApiError::invalid)?;
    }
    let zone = prefix::parse_time_zone(d.custom_time_zone.as_deref()).map_err(ApiError::invalid)?;
    let dp = d.dynamic_partitioning_enabled();
    let prefixes =
        prefix::validate(d.prefix.as_deref(), d.error_output_prefix.as_deref(), dp).map_err(ApiError::invalid)?;
    for part in prefixes.data.parts().iter().chain(prefixes.error.parts()) {
        if let prefix::Part::Timestamp(pattern) = part
            && let Some(letter) = prefix::unmodelled_letter(pattern)
        {
            let refused = emulated::Unmodelled::TimestampLetter { letter, pattern: pattern.clone() };
            return Err(ApiError::invalid(refused.message()));
        }
    }
    if (dp || d.processing.is_some()) && !d.extended {
        return Err(ApiError::invalid(
            "Dynamic partitioning and processing are only supported with ExtendedS3DestinationConfiguration",
        ));
    }
    if let Some(retry) = d.dynamic_partitioning.as_ref().and_then(|c| c["RetryOptions"]["DurationInSeconds"].as_i64())
        && !(0..=7200).contains(&retry)
    {
        return Err(ApiError::validation(format!(
            "Value '{retry}' at '{path}.dynamicPartitioningConfiguration.retryOptions.durationInSeconds' failed to satisfy constraint: Member must have value between 0 and 7200"
        )));
    }
    partitioning::validate(dp, d.processing.as_ref(), d.size_in_mbs, d.interval_in_seconds, &prefixes.data)
        .map_err(ApiError::invalid)?;
    firehose_kit_domain::transform::LambdaProcessor::from_config(d.processing.as_ref()).map_err(ApiError::invalid)?;
    Ok((prefixes, zone))
}

/// `DeliveryStreamEncryptionConfigurationInput`: `KeyType` is `AWS_OWNED_CMK` (no key ARN) or
/// `CUSTOMER_MANAGED_CMK` (with a KMS key ARN). Returns (key type, key ARN).
pub fn encryption(input: &EncryptionInput) -> Result<(String, Option<String>), ApiError> {
    let key_type = input.key_type.as_deref().unwrap_or("AWS_OWNED_CMK");
    match (key_type, input.key_arn.as_deref()) {
        ("AWS_OWNED_CMK", None) => Ok((key_type.into(), None)),
        ("AWS_OWNED_CMK", Some(_)) => {
            Err(ApiError::invalid("KeyARN must not be specified when KeyType is AWS_OWNED_CMK"))
        }
        ("CUSTOMER_MANAGED_CMK", Some(arn)) if arn.starts_with("arn:") && arn.contains(":kms:") => {
            Ok((key_type.into(), Some(arn.to_string())))
        }
        ("CUSTOMER_MANAGED_CMK", _) => {
            Err(ApiError::invalid("KeyARN must be the ARN of a KMS key when KeyType is CUSTOMER_MANAGED_CMK"))
        }
        (other, _) => Err(ApiError::validation(format!(
            "Value '{other}' at 'deliveryStreamEncryptionConfigurationInput.keyType' failed to satisfy constraint: Member must satisfy enum value set: [AWS_OWNED_CMK, CUSTOMER_MANAGED_CMK]"
        ))),
    }
}

/// Tags of TagDeliveryStream / CreateDeliveryStream.
pub fn tags(tags: &[Tag]) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::validation(format!(
            "Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to {MAX_TAGS}"
        )));
    }
    for t in tags {
        let value = t.value.as_deref().unwrap_or("");
        if t.key.is_empty()
            || t.key.chars().count() > MAX_TAG_KEY_CHARS
            || t.key.starts_with("aws:")
            || value.chars().count() > MAX_TAG_VALUE_CHARS
        {
            return Err(ApiError::invalid(format!(
                "Tag key `{}` is invalid: keys are 1-{MAX_TAG_KEY_CHARS} characters and may not start with aws:, values at most {MAX_TAG_VALUE_CHARS}",
                t.key
            )));
        }
    }
    Ok(())
}

/// `DeliveryStreamType` and `KinesisStreamSourceConfiguration` of a create request: the source stream's and
/// role's ARNs for `KinesisStreamAsSource`, `None` for Direct Put.
pub fn kinesis_source(
    stream_type: Option<&str>,
    config: Option<super::model::KinesisSourceInput>,
    encrypted: bool,
) -> Result<Option<(String, String)>, ApiError> {
    let kinesis = stream_type == Some("KinesisStreamAsSource");
    let config = match (kinesis, config) {
        (false, None) => return Ok(None),
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "KinesisStreamSourceConfiguration is only valid with DeliveryStreamType KinesisStreamAsSource",
            ));
        }
        (true, None) => {
            return Err(ApiError::invalid(
                "KinesisStreamSourceConfiguration is required when DeliveryStreamType is KinesisStreamAsSource",
            ));
        }
        (true, Some(c)) => c,
    };
    let mut violations = Vec::new();
    let stream_arn = config.stream_arn.unwrap_or_default();
    let role_arn = config.role_arn.unwrap_or_default();
    if crate::kinesis::key_of_arn(&stream_arn).is_none() {
        violations.push(format!(
            "Value '{stream_arn}' at 'kinesisStreamSourceConfiguration.kinesisStreamARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:.*:kinesis:[a-zA-Z0-9\\-]+:\\d{{12}}:stream/[a-zA-Z0-9_.-]+"
        ));
    }
    if !role_arn.starts_with("arn:") || !role_arn.contains(":iam::") || !role_arn.contains(":role/") {
        violations.push(format!(
            "Value '{role_arn}' at 'kinesisStreamSourceConfiguration.roleARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:.*:iam::\\d{{12}}:role/[a-zA-Z_0-9+=,.@\\-_/]+"
        ));
    }
    if !violations.is_empty() {
        return Err(ApiError::validations(violations));
    }
    if encrypted {
        return Err(ApiError::invalid(
            "Server-side encryption is not supported for KinesisStreamAsSource delivery streams: encrypt the data stream instead",
        ));
    }
    Ok(Some((stream_arn, role_arn)))
}

/// The other members of a create request that name destinations the emulator does not model.
/// The create request's members beyond the ones the model reads: another destination or source is refused by
/// name (never accepted and ignored); `DirectPutSourceConfiguration` of a Direct Put stream gives its
/// `ThroughputHintInMBs` (1–100), which Describe shows.
pub fn unmodelled_create(
    stream_type: Option<&str>,
    other: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<i64>, ApiError> {
    let mut hint = None;
    for (member, value) in other {
        if member.ends_with("DestinationConfiguration") {
            continue;
        }
        if member == "DirectPutSourceConfiguration" && stream_type.is_none_or(|t| t == "DirectPut") {
            let mb = value["ThroughputHintInMBs"].as_i64();
            if !mb.is_some_and(|mb| (1..=100).contains(&mb)) {
                return Err(ApiError::validation(format!(
                    "Value '{}' at 'directPutSourceConfiguration.throughputHintInMBs' failed to satisfy constraint: Member must have value between 1 and 100",
                    value["ThroughputHintInMBs"]
                )));
            }
            hint = mb;
            continue;
        }
        let what = format!("{member} beside DeliveryStreamType {}", stream_type.unwrap_or("DirectPut"));
        if emulated::refusal(&Requested { stream_type, ..Default::default() }).is_none() {
            return Err(ApiError::invalid(emulated::Unmodelled::Member(what).message()));
        }
    }
    let requested = Requested {
        stream_type,
        other_destinations: other
            .keys()
            .filter(|k| k.ends_with("DestinationConfiguration"))
            .map(String::as_str)
            .collect(),
        ..Default::default()
    };
    match emulated::refusal(&requested) {
        Some(u) => Err(ApiError::invalid(u.message())),
        None => Ok(hint),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_follow_the_model_pattern() {
        assert!(stream_name(Some("Apache_Logs-1.x")).is_ok());
        for bad in ["", "has space", "slash/", &"a".repeat(65)] {
            assert_eq!(stream_name(Some(bad)).unwrap_err().code, "ValidationException", "{bad}");
        }
        assert!(stream_name(None).unwrap_err().message.contains("must not be null"));
    }

    #[test]
    fn every_violation_is_listed() {
        let d = destination_from(
            DestinationInput {
                role_arn: Some("role".into()),
                bucket_arn: Some("arn:aws:s3:::b".into()),
                buffering_hints: Some(super::super::model::BufferingHints {
                    size_in_mbs: Some(0),
                    interval_in_seconds: Some(901),
                }),
                ..Default::default()
            },
            true,
            "p",
        )
        .unwrap();
        let e = destination(&d, "p").unwrap_err();
        assert!(e.message.starts_with("3 validation errors detected: "), "{}", e.message);
        assert!(e.message.contains("p.bufferingHints.sizeInMBs") && e.message.contains("p.roleARN"));
        let missing = destination_from(DestinationInput::default(), true, "p").unwrap_err();
        assert!(missing.message.starts_with("2 validation errors"), "{}", missing.message);
    }

    #[test]
    fn unmodelled_settings_are_refused_by_name() {
        let mut d = destination_from(
            DestinationInput {
                role_arn: Some("arn:aws:iam::000000000000:role/r".into()),
                bucket_arn: Some("arn:aws:s3:::b".into()),
                compression_format: Some("ZIP".into()),
                ..Default::default()
            },
            true,
            "p",
        )
        .unwrap();
        assert!(destination(&d, "p").is_ok(), "ZIP is modelled");
        d.compression = Compression::Gzip;
        d.data_format_conversion = Some(serde_json::json!({"SchemaConfiguration": {"TableName": "t"}}));
        assert!(destination(&d, "p").unwrap_err().message.contains("are required"), "enabled by default");
        d.data_format_conversion = Some(serde_json::json!({"Enabled": false}));
        assert!(destination(&d, "p").is_ok(), "a disabled conversion is stored");
        d.custom_time_zone = Some("Asia/Tokyo".into());
        assert!(destination(&d, "p").is_ok(), "time zones are modelled");
        assert_eq!(compression(Some("BROTLI")).unwrap_err().code, "ValidationException");
    }
}
