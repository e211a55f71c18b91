//! setup's plan for the delivery stream itself: the layout (partitioning and prefixes) and destination it wants over
//! what the stream has, whether that is a create, an update in place or a re-create, and how the result reads.

use super::*;

/// The prefix base a setup-made partitioned prefix was built on (`logs/` of `logs/status=!{…}/`).
fn partition_base(prefix: Option<&str>, by: &PartitionBy) -> Option<String> {
    prefix.and_then(|p| p.strip_suffix(by.prefix("").as_str())).map(str::to_string)
}

/// Partitioning and prefixes: what the user asked for, over what the stream has. A new `--prefix` on a
/// partitioned stream is the base the partition segments follow.
pub(super) fn desired_layout(s: &SetupSettings, current: Option<&DestinationSpec>, stream: &str) -> Result<Layout> {
    let blank = |p: &String| (!p.is_empty()).then(|| p.clone());
    let current_by = match current.and_then(|c| c.partition_query.as_deref()) {
        Some(q) => Some(PartitionBy::from_query(q).ok_or_else(|| {
            Error::usage(format!("the stream's partitioning query `{q}` was not made by setup --partition-by"))
                .with_hint(
                    "change it with the tool that made it, or recreate the stream with setup --recreate --partition-by",
                )
        })?),
        None => None,
    };
    let current_base = match (&current_by, current) {
        (Some(by), Some(c)) => partition_base(c.prefix.as_deref(), by),
        (None, Some(c)) => c.prefix.clone(),
        _ => None,
    };
    let by = match &s.partition_by {
        Some(p) => Some(p.clone()).filter(|p| !p.is_empty()),
        None => current_by.clone(),
    };
    let Some(by) = by else {
        // A converting stream's objects get a prefix of their own (the Glue table's location) unless one is given.
        let prefix = match &s.prefix {
            Some(p) => blank(p),
            // (also when conversion is turned on: the table's location must hold its Parquet only)
            None if format::wanted(s, current) && current.is_none_or(|c| c.conversion.is_none()) => {
                Some(format::default_prefix(stream))
            }
            None => current_base,
        };
        let error_prefix = match &s.error_prefix {
            Some(p) => blank(p),
            None => current.and_then(|c| c.error_prefix.clone()),
        };
        return Ok((None, prefix, error_prefix));
    };
    let base = s.prefix.clone().or(current_base.clone()).unwrap_or_default();
    // An error prefix setup derived from the old base follows the new one; one the user chose stays.
    let derived = current_base.as_deref().map(PartitionBy::error_prefix);
    let error_prefix = match (&s.error_prefix, current.and_then(|c| c.error_prefix.clone())) {
        (Some(p), _) if !p.is_empty() => p.clone(),
        (None, Some(have)) if current_by.is_some() && Some(&have) != derived.as_ref() => have,
        _ => PartitionBy::error_prefix(&base),
    };
    Ok((Some(by.query()), Some(by.prefix(&base)), Some(error_prefix)))
}

/// Partitioning query, prefix and error prefix (see [`desired_layout`]).
pub(super) type Layout = (Option<String>, Option<String>, Option<String>);

/// The destination setup wants: the user's settings over the stream's current ones (or the defaults), with the
/// layout, the role and bucket ARNs, and the processing decided already.
pub(super) fn desired_destination(
    s: &SetupSettings,
    current: Option<&DestinationSpec>,
    (partition_query, prefix, mut error_prefix): Layout,
    (role_arn, bucket_arn): (String, String),
    error_logging: Option<ErrorLogging>,
    transform: Option<String>,
    conversion: Option<fh::ConversionSpec>,
) -> Result<DestinationSpec> {
    // Records the function fails (`processing-failed/`) or that do not convert (`format-conversion-failed/`) go
    // under the error prefix, by error-output-type.
    if (transform.is_some() || conversion.is_some()) && error_prefix.is_none() {
        error_prefix = Some(transform::DEFAULT_ERROR_PREFIX.to_string());
    }
    let partitioned = partition_query.is_some();
    // Buffering stays as it is unless asked, except where partitioning changes (its minimums differ).
    let inherit = current.filter(|c| c.partition_query.is_some() == partitioned);
    let (default_size, default_interval) = settings::default_buffering(partitioned);
    let size = s.buffer_size_mib.or(inherit.map(|c| c.buffer_size_mib.max(0) as u32)).unwrap_or(default_size);
    let interval =
        s.buffer_interval_s.or(inherit.map(|c| c.buffer_interval_s.max(0) as u32)).unwrap_or(default_interval);
    if let Some(by) = partition_query.as_deref().and_then(PartitionBy::from_query) {
        SetupSettings::check_partition_minimums(size, interval, &by.0.join(","))?;
    }
    let compression = match s.compression {
        Some(c) => compression_of(c),
        None => current.map(|c| c.compression.clone()).unwrap_or(crate::firehose::types::Compression::Uncompressed),
    };
    let (size, compression) = match &conversion {
        Some(_) => {
            format::check_location(prefix.as_deref(), error_prefix.as_deref())?;
            (conversion_buffer_size(s, size)?, crate::firehose::types::Compression::Uncompressed)
        }
        None => (size, compression),
    };
    if partitioned {
        crate::firehose::prefix::validate(prefix.as_deref(), error_prefix.as_deref(), true)
            .map_err(|e| Error::usage(format!("invalid prefixes: {e}")))?;
    }
    Ok(DestinationSpec {
        role_arn,
        bucket_arn,
        prefix,
        error_prefix,
        partition_query,
        buffer_size_mib: size as i32,
        buffer_interval_s: interval as i32,
        compression,
        file_extension: current.and_then(|c| c.file_extension.clone()),
        time_zone: current.and_then(|c| c.time_zone.clone()),
        error_logging,
        transform,
        conversion,
    })
}

/// A converting stream's buffer size (its compression is UNCOMPRESSED): AWS's rules (at least 64 MiB, no S3
/// compression) applied to what was asked, refused with AWS's reason; a size inherited or defaulted is raised to
/// fit.
fn conversion_buffer_size(s: &SetupSettings, size: u32) -> Result<u32> {
    use crate::firehose::types::Compression as C;
    use firehose_kit_domain::conversion::{MIN_SIZE_MIB, check_destination};
    let asked_size = s.buffer_size_mib.unwrap_or(MIN_SIZE_MIB as u32);
    let asked_compression = s.compression.map(compression_of).unwrap_or(C::Uncompressed);
    check_destination(asked_size as i64, &asked_compression).map_err(|reason| {
        Error::usage(format!("--format parquet: {reason}")).with_hint(format!(
            "Parquet compresses inside the file (Snappy): leave out --compression (or pass --compression none), and use --buffer-size {MIN_SIZE_MIB} or more"
        ))
    })?;
    Ok(if s.buffer_size_mib.is_some() { asked_size } else { size.max(MIN_SIZE_MIB as u32) })
}

/// The stream: create it, update it in place, or (partitioning changed, with `--recreate`) re-create it.
pub(super) fn plan_stream(
    ctx: &Ctx<'_>,
    s: &SetupSettings,
    existing: Option<&StreamInfo>,
    destination: &DestinationSpec,
) -> Result<Step> {
    let name = ctx.global.stream.clone();
    let step = |action, changes| Step { resource: "stream", name: name.clone(), action, changes };
    let Some(current) = existing.and_then(|i| i.destination.as_ref()) else {
        return Ok(step("create", vec![describe_destination(destination)]));
    };
    if current.bucket_arn != destination.bucket_arn {
        let (have, want) = (current.bucket(), destination.bucket());
        return Err(Error::usage(format!(
            "delivery stream `{name}` delivers to `{have}`, not `{want}`: setup does not move a stream to another bucket"
        ))
        .with_hint(format!(
            "leave out --bucket to keep `{have}`; to switch buckets, recreate the stream: `{}` then `{}`",
            ctx.global.command(&format!("teardown --keep-bucket --bucket {have}")),
            ctx.global.command(&format!("setup --bucket {want}")),
        )));
    }
    let diff = current.diff(destination);
    if current.partition_query == destination.partition_query {
        let action = if diff.is_empty() { "unchanged" } else { "update" };
        return Ok(step(action, diff));
    }
    let show = |q: &Option<String>| q.clone().unwrap_or_else(|| "no partitioning".into());
    if !s.recreate {
        return Err(Error::usage(format!(
            "delivery stream `{name}` has {}, setup asks for {}: Firehose cannot change dynamic partitioning of an existing stream (it is chosen at creation and cannot be turned off)",
            show(&current.partition_query),
            show(&destination.partition_query)
        ))
        .with_hint("re-run with --recreate to delete the stream and create it again (buffered data is delivered first; objects in S3 stay)"));
    }
    let mut changes = vec!["delete and create again: partitioning cannot change in place".to_string()];
    changes.extend(diff);
    Ok(step("recreate", changes))
}

/// Whether requests travel over TLS (AWS, or a custom https endpoint).
pub(super) fn tls_endpoint(clients: &Clients) -> bool {
    clients.endpoint_url.as_deref().is_none_or(|u| u.starts_with("https://"))
}

fn describe_destination(d: &DestinationSpec) -> String {
    format!(
        "DirectPut → s3://{}/{} · buffer {} MiB / {} s · {} · {}",
        d.bucket(),
        d.prefix.as_deref().unwrap_or(""),
        d.buffer_size_mib,
        d.buffer_interval_s,
        match &d.conversion {
            Some(c) => c.to_string(),
            None if d.compression == crate::firehose::types::Compression::Uncompressed => "no compression".into(),
            None => d.compression.to_string(),
        },
        match &d.error_logging {
            Some(l) => format!("errors logged to {l}"),
            None => "error logging off".to_string(),
        }
    ) + &d.transform.as_ref().map(|f| format!(" · records transformed by {f}")).unwrap_or_default()
        + &match &d.partition_query {
            Some(q) => format!(
                " · dynamic partitioning: records deaggregated on \\n, keys {q} (JQ-1.6), \\n appended; failed records under {}",
                d.error_prefix.as_deref().unwrap_or("")
            ),
            None => String::new(),
        }
}
