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

#[path = "setup_transform.rs"]
mod transform;
pub use transform::TransformPlan;

#[path = "setup_source.rs"]
mod source;
pub use source::SourcePlan;

#[path = "setup_format.rs"]
mod format;
pub use format::FormatPlan;

#[path = "setup_stream.rs"]
mod stream;
use stream::{desired_destination, desired_layout, plan_stream, tls_endpoint};

#[path = "setup_apply.rs"]
mod apply;
use apply::line;
pub use apply::{Outcome, apply};

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
