//! `firehose-kit setup`: the hardened bucket, the least-privilege delivery role and the Direct Put stream, then
//! wait until ACTIVE. Safe to re-run: what exists and matches is left alone ("unchanged"), changed buffering,
//! compression or prefixes are applied in place with UpdateDestination, and what a failed run made is
//! completed. `--dry-run` prints the plan and the exact documents and changes nothing.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::aws::Clients;
use crate::aws::firehose::{self as fh, DestinationSpec, ErrorLogging, StreamInfo};
use crate::aws::policy::{self, DELIVERY_POLICY_NAME, SCHEMA_POLICY_NAME, SOURCE_POLICY_NAME, TRANSFORM_POLICY_NAME};
use crate::aws::{iam, logs, s3};
use crate::cli::Compression;
use crate::error::{Error, ExitCode, Result};
use crate::firehose::access;
use crate::firehose::failures;
use crate::firehose::types::StreamStatus;
use crate::logs::partition::PartitionBy;
use crate::settings::{self, Global, SetupSettings};
use crate::ui::{Printer, Reporter, Unit, format_duration};

/// What setup does (or would do) to one resource.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Step {
    pub resource: &'static str,
    pub name: String,
    /// `create`, `update`, `unchanged`, `adopt` (an existing resource used as it is).
    pub action: &'static str,
    pub changes: Vec<String>,
}

/// Everything setup decided from the current state.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub account_id: String,
    pub region: String,
    pub bucket: String,
    pub role: String,
    pub stream: String,
    pub steps: Vec<Step>,
    pub trust_policy: Value,
    pub delivery_policy: Value,
    pub bucket_policy: Value,
    pub destination: DestinationSpec,
    /// The error log's retention, when error logging is on.
    pub log_retention_days: Option<i32>,
    /// The transformation function, when the stream has or gets one.
    pub transform: Option<TransformPlan>,
    /// The Kinesis data stream in front, for a chained pipeline.
    pub source: Option<SourcePlan>,
    /// The Glue table of a converting stream (`--format parquet`).
    pub format: Option<FormatPlan>,
    #[serde(skip)]
    existing_stream: Option<StreamInfo>,
    #[serde(skip)]
    bucket_exists: bool,
}

fn compression_of(c: Compression) -> crate::firehose::types::Compression {
    match c {
        Compression::None => crate::firehose::types::Compression::Uncompressed,
        Compression::Gzip => crate::firehose::types::Compression::Gzip,
        Compression::Zip => crate::firehose::types::Compression::Zip,
        Compression::Snappy => crate::firehose::types::Compression::Snappy,
        Compression::HadoopSnappy => crate::firehose::types::Compression::HadoopSnappy,
    }
}

/// What every planner needs: where we are, and the tags setup puts on what it makes.
struct Ctx<'a> {
    clients: &'a Clients,
    global: &'a Global,
    account_id: String,
    region: String,
    partition: &'static str,
    tags: Vec<(String, String)>,
}

/// Reads the current state of every resource and decides what to do; changes nothing. Settings the user did not
/// give keep what an existing stream has (see [`SetupSettings`]).
pub async fn plan(global: &Global, s: &SetupSettings, clients: &Clients) -> Result<Plan> {
    let ctx = Ctx {
        clients,
        global,
        account_id: clients.account_id().await?,
        region: clients.region.clone(),
        partition: clients.partition(),
        tags: policy::tags(&global.stream),
    };
    let existing_stream = fh::describe(&clients.firehose, &global.stream).await?;
    if let Some(info) = &existing_stream {
        check_stream_is_ours(&ctx, info).await?;
    }
    let current = existing_stream.as_ref().and_then(|i| i.destination.as_ref());
    let bucket = s
        .bucket
        .clone()
        .or_else(|| current.map(|d| d.bucket().to_string()))
        .unwrap_or_else(|| settings::default_bucket(&ctx.account_id, &ctx.region));
    settings::validate_bucket_name(&bucket)?;
    let role = settings::role_name(&global.stream)?;
    let error_logging =
        s.error_logging.unwrap_or_else(|| current.is_none_or(|d| d.error_logging.is_some())).then(|| ErrorLogging {
            group: failures::default_log_group(&global.stream),
            stream: failures::DEFAULT_LOG_STREAM.to_string(),
        });
    let log_stream_arn = error_logging
        .as_ref()
        .map(|l| access::log_stream_arn(ctx.partition, &ctx.region, &ctx.account_id, &l.group, &l.stream));
    let trust_policy = policy::trust_policy(&ctx.account_id);
    let delivery_policy = policy::delivery_policy(ctx.partition, &bucket, log_stream_arn.as_deref());
    let bucket_policy = policy::bucket_policy(ctx.partition, &bucket);

    let (bucket_step, bucket_exists) = plan_bucket(&ctx, s, &bucket, &bucket_policy).await?;
    let transform = transform::plan(&ctx, s.transform.as_ref(), current.and_then(|c| c.transform.as_deref())).await?;
    let source = source::plan(&ctx, s, existing_stream.as_ref()).await?;
    let layout = desired_layout(s, current, &global.stream)?;
    let format = format::plan(&ctx, s, current, &bucket, layout.1.as_deref()).await?;
    if format.is_some() {
        settings::check_format_combination(transform.is_some(), layout.0.is_some())?;
    }
    let grants = grants(transform.as_ref(), source.as_ref(), format.as_ref());
    let (role_step, role_arn) =
        plan_role(&ctx, &role, &bucket, &trust_policy, &delivery_policy, &error_logging, &grants).await?;
    let log_step = match &error_logging {
        Some(l) => Some(plan_log_group(&ctx, s, l).await?),
        None => None,
    };
    let bucket_arn = format!("arn:{}:s3:::{bucket}", ctx.partition);
    let transform_arn = transform.as_ref().map(|t| t.function_arn.clone());
    let conversion = format.as_ref().map(|f| f.conversion(&role_arn));
    let destination =
        desired_destination(s, current, layout, (role_arn, bucket_arn), error_logging, transform_arn, conversion)?;
    let mut stream_step = plan_stream(&ctx, s, existing_stream.as_ref(), &destination)?;
    if let Some(p) = source.as_ref().filter(|_| stream_step.action == "create")
        && let Some(first) = stream_step.changes.first_mut()
    {
        *first = first.replacen(
            "DirectPut",
            &format!("KinesisStreamAsSource (data stream `{}`, from LATEST)", p.data_stream),
            1,
        );
    }
    let log_retention_days = log_step.as_ref().and_then(|(_, days)| *days);
    let transform_steps = transform.as_ref().map(|t| t.steps.clone()).unwrap_or_default();
    let format_steps = format.as_ref().map(|f| f.steps.clone()).unwrap_or_default();
    let steps = [Some(bucket_step), Some(role_step)]
        .into_iter()
        .chain(transform_steps.into_iter().map(Some))
        .chain([log_step.map(|(step, _)| step), source.as_ref().map(|p| p.step.clone())])
        .chain(format_steps.into_iter().map(Some))
        .chain([Some(stream_step)])
        .flatten()
        .collect();
    Ok(Plan {
        account_id: ctx.account_id,
        region: ctx.region,
        bucket,
        role,
        stream: global.stream.clone(),
        steps,
        trust_policy,
        delivery_policy,
        bucket_policy,
        log_retention_days,
        destination,
        transform,
        source,
        format,
        existing_stream,
        bucket_exists,
    })
}

/// An existing stream setup may change: made by firehose-kit, not failed or being deleted, with an S3
/// destination. Anything else is refused before anything changes (exit 2).
async fn check_stream_is_ours(ctx: &Ctx<'_>, info: &StreamInfo) -> Result<()> {
    let name = &ctx.global.stream;
    let tags = fh::tags(&ctx.clients.firehose, name).await?;
    if !policy::is_managed(&tags) {
        return Err(Error::usage(format!(
            "delivery stream `{name}` exists but was not made by firehose-kit (no firehose-kit:managed tag)"
        ))
        .with_hint("choose another name with --stream"));
    }
    if info.status.is_terminal_failure() {
        return Err(Error::usage(format!("delivery stream `{name}` is {}", info.status)).with_hint(format!(
            "wait for a deletion to finish, or remove a failed stream with `{}`, then run setup again",
            ctx.global.command("teardown")
        )));
    }
    if info.destination.is_none() {
        return Err(Error::usage(format!("delivery stream `{name}` has no S3 destination")));
    }
    Ok(())
}

/// The bucket: create it hardened and tagged, or restore what drifted, or adopt one firehose-kit did not make.
/// A bucket another stream made keeps its `firehose-kit:stream` tag (teardown asks every stream whether it still
/// delivers there, so the tag need not name them all).
async fn plan_bucket(ctx: &Ctx<'_>, s: &SetupSettings, bucket: &str, bucket_policy: &Value) -> Result<(Step, bool)> {
    let s3c = &ctx.clients.s3;
    // Over a plain-HTTP endpoint (moto, LocalStack, the emulator) a TLS-only policy would deny every request
    // that endpoint can receive (moto enforces bucket policies), so it is applied only where TLS exists.
    let tls_policy = tls_endpoint(ctx.clients);
    let tls_line = if tls_policy {
        "bucket policy denying requests without TLS".to_string()
    } else {
        "no TLS-only bucket policy: the endpoint is plain HTTP, so the policy would deny every request (applied on AWS)"
            .to_string()
    };
    let step = |action, changes| Step { resource: "bucket", name: bucket.to_string(), action, changes };
    match s3::bucket_state(s3c, bucket).await? {
        s3::BucketState::Forbidden => {
            Err(Error::failed(format!("bucket `{bucket}` exists and belongs to another account"))
                .with_hint("bucket names are global: choose another with --bucket"))
        }
        s3::BucketState::Missing => Ok((
            step(
                "create",
                vec![
                    "block all public access".into(),
                    "object ownership BucketOwnerEnforced (ACLs off)".into(),
                    "default encryption SSE-S3".into(),
                    tls_line,
                    "tags firehose-kit:managed, firehose-kit:stream".into(),
                ],
            ),
            false,
        )),
        s3::BucketState::Exists => {
            let existing_tags = s3::bucket_tags(s3c, bucket).await?;
            // A bucket with the default (account- and region-specific) name in our own account is ours even if a
            // failed earlier run created it before tagging it.
            let default_name = s.bucket.is_none() && bucket == settings::default_bucket(&ctx.account_id, &ctx.region);
            if !policy::is_managed(&existing_tags) && !default_name {
                return Ok((step("adopt", vec!["exists without the firehose-kit:managed tag: used as the destination, its settings left as they are, never deleted by teardown".into()]), true));
            }
            let mut changes = Vec::new();
            if s3::public_access_block(s3c, bucket).await? != Some([true; 4]) {
                changes.push("block all public access".into());
            }
            if s3::ownership(s3c, bucket).await?.as_deref() != Some("BucketOwnerEnforced") {
                changes.push("object ownership BucketOwnerEnforced (ACLs off)".into());
            }
            if s3::encryption(s3c, bucket).await?.is_none() {
                changes.push("default encryption SSE-S3".into());
            }
            if tls_policy {
                let current_policy = s3::bucket_policy(s3c, bucket).await?;
                if !current_policy.as_deref().is_some_and(|p| policy::same_document(p, bucket_policy)) {
                    changes.push(tls_line);
                }
            }
            if policy::merged_tags(&existing_tags, &ctx.tags) != existing_tags {
                changes.push("tags firehose-kit:managed, firehose-kit:stream".into());
            }
            let action = if changes.is_empty() { "unchanged" } else { "update" };
            Ok((step(action, changes), true))
        }
    }
}

/// An inline policy of the delivery role beside the S3 delivery one: its name, document and what it grants.
struct Grant<'a> {
    name: &'static str,
    document: &'a Value,
    what: String,
}

/// The inline policies beside the S3 delivery one: to invoke the transformation function, to read the source
/// data stream, to read the Glue table; each when the stream has that.
fn grants<'a>(
    transform: Option<&'a TransformPlan>,
    source: Option<&'a SourcePlan>,
    format: Option<&'a FormatPlan>,
) -> Vec<Grant<'a>> {
    transform
        .map(|t| Grant {
            name: TRANSFORM_POLICY_NAME,
            document: &t.invoke_policy,
            what: "lambda:InvokeFunction, lambda:GetFunctionConfiguration on the transformation function only".into(),
        })
        .into_iter()
        .chain(source.map(|p| Grant {
            name: SOURCE_POLICY_NAME,
            document: &p.read_policy,
            what: format!("the four Kinesis read actions on data stream `{}` only", p.data_stream),
        }))
        .chain(format.map(|f| Grant {
            name: SCHEMA_POLICY_NAME,
            document: &f.schema_policy,
            what: format!("glue:GetTable and its versions on table `{}.{}` only", f.database, f.table),
        }))
        .collect()
}

/// The delivery role: create it, or restore a trust or inline policy that drifted. Returns its ARN.
async fn plan_role(
    ctx: &Ctx<'_>,
    role: &str,
    bucket: &str,
    trust_policy: &Value,
    delivery_policy: &Value,
    error_logging: &Option<ErrorLogging>,
    grants: &[Grant<'_>],
) -> Result<(Step, String)> {
    let account_id = &ctx.account_id;
    let step = |action, changes| Step { resource: "role", name: role.to_string(), action, changes };
    let Some(info) = iam::get_role(&ctx.clients.iam, role).await? else {
        let changes = vec![
            format!("trust firehose.amazonaws.com with sts:ExternalId {account_id}"),
            format!("inline policy {DELIVERY_POLICY_NAME}: the six S3 delivery actions on `{bucket}` only"),
        ]
        .into_iter()
        .chain(error_logging.as_ref().map(|l| format!("logs:PutLogEvents on log stream {l} only")))
        .chain(grants.iter().map(|g| format!("inline policy {}: {}", g.name, g.what)))
        .collect();
        return Ok((step("create", changes), format!("arn:{}:iam::{account_id}:role/{role}", ctx.partition)));
    };
    if !policy::is_managed(&info.tags) {
        return Err(Error::usage(format!(
            "role `{role}` exists but was not made by firehose-kit (no firehose-kit:managed tag)"
        ))
        .with_hint(
            "setup will not change a role it did not create: delete or rename that role, or use another --stream",
        ));
    }
    let mut changes = Vec::new();
    if !policy::same_document(&info.trust_policy, trust_policy) {
        changes.push(format!(
            "trust policy drifted: restore trust of firehose.amazonaws.com only, with sts:ExternalId {account_id}"
        ));
    }
    let current = iam::get_role_policy(&ctx.clients.iam, role, DELIVERY_POLICY_NAME).await?;
    if !current.as_deref().is_some_and(|p| policy::same_document(p, delivery_policy)) {
        let drift = policy::policy_drift(current.as_deref(), delivery_policy);
        changes.push(format!("inline policy {DELIVERY_POLICY_NAME} drifted: {}", drift.join(", ")));
    }
    for g in grants {
        let current = iam::get_role_policy(&ctx.clients.iam, role, g.name).await?;
        if !current.as_deref().is_some_and(|p| policy::same_document(p, g.document)) {
            changes.push(match current {
                None => format!("inline policy {} is missing: grant {}", g.name, g.what),
                Some(_) => format!("inline policy {} drifted: restore it", g.name),
            });
        }
    }
    if !ctx.tags.iter().all(|t| info.tags.contains(t)) {
        changes.push("tags".into());
    }
    let action = if changes.is_empty() { "unchanged" } else { "update" };
    Ok((step(action, changes), info.arn.clone()))
}

/// The error log group and stream (Firehose does not create them: they must exist before errors can be
/// logged). Returns the retention to apply (`None`: leave it).
async fn plan_log_group(ctx: &Ctx<'_>, s: &SetupSettings, l: &ErrorLogging) -> Result<(Step, Option<i32>)> {
    let step = |action, changes| Step { resource: "log group", name: l.group.clone(), action, changes };
    Ok(match logs::group(&ctx.clients.logs, &l.group).await? {
        None => {
            let days = s.log_retention_days.unwrap_or(settings::DEFAULT_LOG_RETENTION_DAYS);
            let changes = vec![
                format!("retention {days} days"),
                format!("log stream {}", l.stream),
                "tags firehose-kit:managed, firehose-kit:stream".into(),
            ];
            (step("create", changes), Some(days))
        }
        Some(g) if !policy::is_managed(&g.tags) => (
            step("adopt", vec!["exists without the firehose-kit:managed tag: used as it is (its log stream created if missing), never deleted by teardown".into()]),
            None,
        ),
        Some(g) => {
            let mut changes = Vec::new();
            let days = s.log_retention_days.filter(|d| g.retention_days != Some(*d));
            if let Some(d) = days {
                let have = g.retention_days.map(|d| format!("{d} days")).unwrap_or_else(|| "never expire".into());
                changes.push(format!("retention: {have} → {d} days"));
            }
            if !g.streams.contains(&l.stream) {
                changes.push(format!("log stream {} is missing: create it", l.stream));
            }
            if !ctx.tags.iter().all(|t| g.tags.contains(t)) {
                changes.push("tags firehose-kit:managed, firehose-kit:stream".into());
            }
            let action = if changes.is_empty() { "unchanged" } else { "update" };
            (step(action, changes), days)
        }
    })
}

/// The prefix base a setup-made partitioned prefix was built on (`logs/` of `logs/status=!{…}/`).
fn partition_base(prefix: Option<&str>, by: &PartitionBy) -> Option<String> {
    prefix.and_then(|p| p.strip_suffix(by.prefix("").as_str())).map(str::to_string)
}

/// Partitioning and prefixes: what the user asked for, over what the stream has. A new `--prefix` on a
/// partitioned stream is the base the partition segments follow.
fn desired_layout(s: &SetupSettings, current: Option<&DestinationSpec>, stream: &str) -> Result<Layout> {
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
type Layout = (Option<String>, Option<String>, Option<String>);

/// The destination setup wants: the user's settings over the stream's current ones (or the defaults), with the
/// layout, the role and bucket ARNs, and the processing decided already.
fn desired_destination(
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
fn plan_stream(
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

#[path = "setup_transform.rs"]
mod transform;
pub use transform::TransformPlan;

#[path = "setup_source.rs"]
mod source;
pub use source::SourcePlan;

#[path = "setup_format.rs"]
mod format;
pub use format::FormatPlan;

/// Whether requests travel over TLS (AWS, or a custom https endpoint).
fn tls_endpoint(clients: &Clients) -> bool {
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

/// Result of a setup run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub plan: Plan,
    pub stream_arn: Option<String>,
    pub status: Option<String>,
    pub waited_ms: Option<u128>,
    pub iam_retries: u32,
}

/// Applies a plan: bucket, then role, then the error log, then the stream, then waits for ACTIVE.
pub async fn apply(s: &SetupSettings, plan: Plan, clients: &Clients, reporter: &dyn Reporter) -> Result<Outcome> {
    let step = |resource: &str| plan.steps.iter().find(|st| st.resource == resource).cloned();
    let bucket_step = step("bucket").expect("plan has a bucket");
    apply_bucket(&plan, &bucket_step, clients).await?;
    reporter.note(&line(&bucket_step, true));
    let role_step = step("role").expect("plan has a role");
    apply_role(&plan, &role_step, clients).await?;
    reporter.note(&line(&role_step, true));
    if let Some(t) = &plan.transform {
        transform::apply(s, &plan, t, clients, reporter).await?;
    }
    if let (Some(log_step), Some(l)) = (step("log group"), &plan.destination.error_logging) {
        apply_log_group(&plan, &log_step, l, clients).await?;
        reporter.note(&line(&log_step, true));
    }
    if let Some(p) = &plan.source {
        source::apply(&plan.stream, p, clients, s.timeout, reporter).await?;
    }
    if let Some(f) = &plan.format {
        format::apply(&plan.stream, f, clients, reporter).await?;
    }
    let stream_step = step("stream").expect("plan has a stream");
    let task = reporter.task("stream", None, Unit::Items);
    let (mut stream_arn, iam_retries) = apply_stream(s, &plan, &stream_step, clients, task.as_ref()).await?;
    let (status, waited_ms) = if s.no_wait {
        task.finish(format!("{} (not waiting for ACTIVE: --no-wait)", line(&stream_step, true)));
        (None, None)
    } else {
        let started = Instant::now();
        let on_poll = |status: &StreamStatus, elapsed: Duration| {
            task.set_message(format!("{} is {status} ({})", plan.stream, format_duration(elapsed)));
        };
        let info = fh::wait_until_active(&clients.firehose, &plan.stream, s.timeout, &on_poll).await?;
        stream_arn = Some(info.arn.clone());
        task.finish(format!("{} · ACTIVE after {}", line(&stream_step, true), format_duration(started.elapsed())));
        (Some(info.status.to_string()), Some(started.elapsed().as_millis()))
    };
    Ok(Outcome { plan, stream_arn, status, waited_ms, iam_retries })
}

async fn apply_bucket(plan: &Plan, step: &Step, clients: &Clients) -> Result<()> {
    let bucket = &plan.bucket;
    if step.action == "adopt" || (plan.bucket_exists && step.action != "update") {
        return Ok(());
    }
    let existing = if plan.bucket_exists {
        s3::bucket_tags(&clients.s3, bucket).await?
    } else {
        s3::create_bucket(&clients.s3, bucket, &clients.region).await?;
        Vec::new()
    };
    // Tag first, so a run that fails after this point leaves a bucket teardown recognises.
    s3::put_bucket_tags(&clients.s3, bucket, &policy::merged_tags(&existing, &policy::tags(&plan.stream))).await?;
    s3::block_public_access(&clients.s3, bucket).await?;
    s3::enforce_bucket_owner(&clients.s3, bucket).await?;
    s3::encrypt_sse_s3(&clients.s3, bucket).await?;
    if tls_endpoint(clients) {
        s3::put_bucket_policy(&clients.s3, bucket, &plan.bucket_policy.to_string()).await?;
    }
    Ok(())
}

async fn apply_role(plan: &Plan, step: &Step, clients: &Clients) -> Result<()> {
    let tags = policy::tags(&plan.stream);
    let delivery_policy = plan.delivery_policy.to_string();
    match step.action {
        "create" => {
            iam::create_role(&clients.iam, &plan.role, &plan.trust_policy.to_string(), &tags).await?;
            iam::put_role_policy(&clients.iam, &plan.role, DELIVERY_POLICY_NAME, &delivery_policy).await?;
        }
        "update" => {
            iam::update_trust(&clients.iam, &plan.role, &plan.trust_policy.to_string()).await?;
            iam::put_role_policy(&clients.iam, &plan.role, DELIVERY_POLICY_NAME, &delivery_policy).await?;
            iam::tag_role(&clients.iam, &plan.role, &tags).await?;
        }
        _ => {}
    }
    if let (Some(t), "create" | "update") = (&plan.transform, step.action) {
        iam::put_role_policy(&clients.iam, &plan.role, TRANSFORM_POLICY_NAME, &t.invoke_policy.to_string()).await?;
    }
    if let (Some(p), "create" | "update") = (&plan.source, step.action) {
        iam::put_role_policy(&clients.iam, &plan.role, SOURCE_POLICY_NAME, &p.read_policy.to_string()).await?;
    }
    if let (Some(f), "create" | "update") = (&plan.format, step.action) {
        iam::put_role_policy(&clients.iam, &plan.role, SCHEMA_POLICY_NAME, &f.schema_policy.to_string()).await?;
    }
    Ok(())
}

async fn apply_log_group(plan: &Plan, step: &Step, l: &ErrorLogging, clients: &Clients) -> Result<()> {
    let tags = policy::tags(&plan.stream);
    if step.action == "create" {
        logs::create_group(&clients.logs, &l.group, &tags).await?;
    }
    if matches!(step.action, "create" | "update") {
        let arn = access::log_group_arn(clients.partition(), &plan.region, &plan.account_id, &l.group);
        logs::tag_group(&clients.logs, &arn, &tags).await?;
        if let Some(days) = plan.log_retention_days {
            logs::put_retention(&clients.logs, &l.group, days).await?;
        }
    }
    // Always ensured (also in an adopted group): without it Firehose cannot log.
    logs::create_stream(&clients.logs, &l.group, &l.stream).await
}

/// Creates, re-creates or updates the stream; returns its ARN (when known now) and the IAM propagation retries.
async fn apply_stream(
    s: &SetupSettings,
    plan: &Plan,
    step: &Step,
    clients: &Clients,
    task: &dyn crate::ui::Task,
) -> Result<(Option<String>, u32)> {
    let retries = std::sync::atomic::AtomicU32::new(0);
    let mut stream_arn = plan.existing_stream.as_ref().map(|i| i.arn.clone());
    if step.action == "recreate" {
        task.set_message(format!("deleting {} to create it again", plan.stream));
        fh::delete(&clients.firehose, &plan.stream).await?;
        fh::wait_until_gone(&clients.firehose, &plan.stream, s.timeout, &|status, elapsed| {
            task.set_message(format!("{} is {status} ({})", plan.stream, format_duration(elapsed)));
        })
        .await?;
    }
    match step.action {
        "create" | "recreate" => {
            let on_retry = |attempt: u32, message: &str, wait: Duration| {
                retries.store(attempt, std::sync::atomic::Ordering::Relaxed);
                task.set_message(format!(
                    "IAM propagation: the new role is not assumable yet (retry {attempt} in {:.1} s): {message}",
                    wait.as_secs_f64()
                ));
                tracing::info!("CreateDeliveryStream retry {attempt}: {message}");
            };
            task.set_message(format!("creating {}", plan.stream));
            let tags = policy::tags(&plan.stream);
            let source = plan.source.as_ref().map(|p| fh::SourceSpec {
                stream_arn: p.arn.clone(),
                role_arn: plan.destination.role_arn.clone(),
                start: None,
            });
            let arn = fh::create(
                &clients.firehose,
                &plan.stream,
                &plan.destination,
                source.as_ref(),
                &tags,
                s.iam_retry_timeout,
                &on_retry,
            )
            .await?;
            stream_arn = Some(arn);
        }
        "update" => {
            let mut info = plan.existing_stream.clone().expect("an update has a stream");
            if info.status != StreamStatus::Active {
                task.set_message(format!("waiting for {} to be ACTIVE before updating it", plan.stream));
                info = fh::wait_until_active(&clients.firehose, &plan.stream, s.timeout, &|_, _| {}).await?;
            }
            fh::update_destination(&clients.firehose, &info, &plan.destination).await?;
        }
        _ => {}
    }
    Ok((stream_arn, retries.load(std::sync::atomic::Ordering::Relaxed)))
}

/// `  bucket  name  created (…)` — past tense after applying, future tense in a plan.
fn line(step: &Step, done: bool) -> String {
    let verb = match (step.action, done) {
        ("create", true) => "created",
        ("create", false) => "will create",
        ("update", true) => "updated",
        ("update", false) => "will change",
        ("recreate", true) => "re-created",
        ("recreate", false) => "will re-create",
        ("adopt", _) => "exists, not managed by firehose-kit",
        (_, _) => "unchanged",
    };
    let details = if step.changes.is_empty() { String::new() } else { format!(": {}", step.changes.join("; ")) };
    format!("{:<9} {}  {verb}{details}", step.resource, step.name)
}

pub async fn run(global: &Global, s: &SetupSettings, clients: &Clients, printer: &Printer) -> Result<ExitCode> {
    let plan = plan(global, s, clients).await?;
    let header =
        format!("setup `{}` in {} (account {}) via {}", plan.stream, plan.region, plan.account_id, clients.backend());
    if s.dry_run {
        if printer.json() {
            printer.result_json(&json!({"dry_run": true, "plan": plan}));
        } else {
            let mut out = vec![format!("{header}: dry run, nothing is changed"), String::new()];
            out.extend(plan.steps.iter().map(|st| format!("  {}", line(st, false))));
            let mut docs = vec![
                (format!("role {} trust policy", plan.role), &plan.trust_policy),
                (format!("role {} inline policy {DELIVERY_POLICY_NAME}", plan.role), &plan.delivery_policy),
                (format!("bucket {} policy", plan.bucket), &plan.bucket_policy),
            ];
            if let Some(t) = &plan.transform {
                docs.extend(t.documents(&plan.role));
            }
            if let Some(p) = &plan.source {
                docs.push((format!("role {} inline policy {SOURCE_POLICY_NAME}", plan.role), &p.read_policy));
            }
            if let Some(f) = &plan.format {
                docs.push((format!("role {} inline policy {SCHEMA_POLICY_NAME}", plan.role), &f.schema_policy));
            }
            for (title, doc) in docs {
                out.push(String::new());
                out.push(format!("{title}:"));
                out.push(serde_json::to_string_pretty(doc).unwrap_or_default());
            }
            printer.result(&out.join("\n"));
        }
        return Ok(ExitCode::Success);
    }
    printer.status(&header);
    let reporter = printer.reporter();
    let outcome = apply(s, plan, clients, reporter.as_ref()).await?;
    if printer.json() {
        printer.result_json(&json!({
            "stream": outcome.plan.stream,
            "stream_arn": outcome.stream_arn,
            "status": outcome.status,
            "bucket": outcome.plan.bucket,
            "role": outcome.plan.role,
            "region": outcome.plan.region,
            "account_id": outcome.plan.account_id,
            "steps": outcome.plan.steps,
            "destination": outcome.plan.destination,
            "source": outcome.plan.source,
            "format": outcome.plan.format,
            "iam_retries": outcome.iam_retries,
            "waited_ms": outcome.waited_ms,
        }));
    } else {
        let status = outcome.status.as_deref().unwrap_or("created (not waited for)");
        printer.result(&format!(
            "stream `{}` {status}: {}\nnext: send your logs (`{}`, or try `{}`), then `{}`",
            outcome.plan.stream,
            outcome.stream_arn.as_deref().unwrap_or(""),
            global.command("send /var/log/apache2/access.log"),
            global.command("send --generate 10000"),
            global.command("verify"),
        ));
    }
    Ok(ExitCode::Success)
}
