//! `firehose-kit doctor`: checks a delivery stream end to end — whoever made it (setup, the console, Terraform,
//! CloudFormation) — and says for each check ok / warning / problem, with a fix. Exit 1 when any problem is
//! found. The role's permissions are evaluated (IAM's logic over its inline and attached policies and the
//! bucket policy, see `crate::firehose::access`), not string-matched.

use chrono::Utc;
use serde::Serialize;
use serde_json::json;

use crate::aws::access::role_access;
use crate::aws::firehose as fh;
use crate::aws::{Clients, logs, policy, s3};
use crate::cli::DoctorArgs;
use crate::error::{ExitCode, Result};
use crate::firehose::access::{delivery_needs, log_stream_arn};
use crate::firehose::prefix::static_part_of;
use crate::firehose::types::StreamStatus;
use crate::settings::Global;
use crate::ui::{Printer, plural};

/// How a check came out.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Problem,
}

/// One check's finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub message: String,
    /// What to do, when not ok.
    pub fix: Option<String>,
}

fn ok(check: &'static str, message: impl Into<String>) -> Finding {
    Finding { check, level: Level::Ok, message: message.into(), fix: None }
}

fn warning(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding { check, level: Level::Warning, message: message.into(), fix: Some(fix.into()) }
}

fn problem(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding { check, level: Level::Problem, message: message.into(), fix: Some(fix.into()) }
}

/// What every check reads: the stream as described, its S3 destination, the account, and the fix that re-runs
/// setup.
struct Subject<'a> {
    args: &'a DoctorArgs,
    clients: &'a Clients,
    info: fh::StreamInfo,
    dest: fh::DestinationSpec,
    bucket: String,
    account_id: String,
    setup_hint: String,
}

/// Runs every check on `stream`: the stream itself, then (when it has an S3 destination) the role, the bucket,
/// encryption, error logging and recent errors, and the buffering hints.
pub async fn examine(global: &Global, args: &DoctorArgs, clients: &Clients) -> Result<Vec<Finding>> {
    let stream = global.stream.as_str();
    let setup_hint = format!("re-run `{}`", global.command("setup"));
    let Some(info) = fh::describe(&clients.firehose, stream).await? else {
        return Ok(vec![problem(
            "stream",
            format!("delivery stream `{stream}` does not exist in {}", clients.backend()),
            format!("create it: {setup_hint}"),
        )]);
    };
    let mut out = stream_checks(clients, stream, &info).await;
    let Some(dest) = info.destination.clone() else {
        out.push(problem(
            "destination",
            "the stream has no S3 destination",
            "firehose-kit checks S3 destinations only",
        ));
        return Ok(out);
    };
    let bucket = dest.bucket().to_string();
    let account_id = clients.account_id().await?;
    let subject = Subject { args, clients, info, dest, bucket, account_id, setup_hint };
    out.extend(role_checks(&subject).await?);
    if let Some(function) = &subject.dest.transform {
        out.push(function_check(clients, function, &subject.setup_hint).await?);
    }
    if let Some(c) = &subject.dest.conversion {
        out.push(table_check(clients, c, &subject.setup_hint).await?);
    }
    out.extend(bucket_checks(&subject).await?);
    out.push(stream_encryption(&subject.info));
    out.extend(error_logging_checks(&subject).await?);
    out.push(buffering_check(global, args, &subject.dest));
    Ok(out)
}

/// The stream's status, and whether firehose-kit made it.
async fn stream_checks(clients: &Clients, stream: &str, info: &fh::StreamInfo) -> Vec<Finding> {
    let mut out = vec![match &info.status {
        StreamStatus::Active => ok("stream", format!("`{stream}` is ACTIVE (version {})", info.version_id)),
        StreamStatus::Creating => warning("stream", format!("`{stream}` is still CREATING"), "wait until it is ACTIVE"),
        other => problem(
            "stream",
            format!("`{stream}` is {other}{}", info.failure.as_deref().map(|f| format!(": {f}")).unwrap_or_default()),
            "delete it (`firehose-kit teardown`) and create it again",
        ),
    }];
    let tags = fh::tags(&clients.firehose, stream).await.unwrap_or_default();
    if !policy::is_managed(&tags) {
        out.push(ok("origin", "not made by firehose-kit (no firehose-kit:managed tag): checked as it is"));
    }
    out
}

/// The role: exists, trusts Firehose, and its policies (with the bucket policy) allow what delivery needs.
async fn role_checks(x: &Subject<'_>) -> Result<Vec<Finding>> {
    let (clients, dest, bucket, account_id, setup_hint) = (x.clients, &x.dest, &x.bucket, &x.account_id, &x.setup_hint);
    let log_arn = dest
        .error_logging
        .as_ref()
        .map(|l| log_stream_arn(clients.partition(), &clients.region, account_id, &l.group, &l.stream));
    let mut needs =
        delivery_needs(clients.partition(), bucket, static_part_of(dest.prefix.as_deref()), log_arn.as_deref());
    if let Some(function) = &dest.transform {
        needs.extend(crate::firehose::transform::invoke_needs(function));
    }
    if let Some(source) = &x.info.source {
        needs.extend(firehose_kit_domain::kinesis::read_needs(&source.stream_arn));
    }
    // The conversion's role is setup's delivery role; another role is checked by AWS, not here.
    if let Some(c) = dest.conversion.as_ref().filter(|c| c.role_arn == dest.role_arn) {
        let (partition, region) = (clients.partition(), &clients.region);
        needs.extend(firehose_kit_domain::conversion::read_needs(partition, region, account_id, &c.database, &c.table));
    }
    let access = role_access(clients, account_id, &dest.role_arn, bucket, &needs).await?;
    if !access.exists {
        return Ok(vec![problem(
            "role",
            format!("the delivery role {} does not exist: every delivery fails with S3.AccessDenied", dest.role_arn),
            format!("recreate it ({setup_hint}) or point the stream at an existing role"),
        )]);
    }
    let mut out = vec![if access.trusts_firehose {
        ok("role trust", format!("{} trusts firehose.amazonaws.com for account {account_id}", dest.role_arn))
    } else {
        problem(
            "role trust",
            format!(
                "the trust policy of {} does not let firehose.amazonaws.com assume it (with sts:ExternalId {account_id})",
                dest.role_arn
            ),
            format!(
                "allow sts:AssumeRole for the service principal firehose.amazonaws.com ({setup_hint} restores setup's role)"
            ),
        )
    }];
    let objects = format!("arn:{}:s3:::{bucket}/*", clients.partition());
    out.extend(access.grants.iter().map(|g| grant_finding(g, setup_hint, &objects)));
    if !access.not_evaluated.is_empty() {
        out.push(warning(
            "role policy",
            format!("not evaluated: {}", access.not_evaluated.join("; ")),
            "check these by hand: the verdicts above assume they grant nothing",
        ));
    }
    Ok(out)
}

/// What one evaluated grant means: fine, or what fails without it and where to allow it. `objects` is the
/// bucket's object ARN pattern (where delivery needs to write).
fn grant_finding(g: &crate::aws::access::Grant, setup_hint: &str, objects: &str) -> Finding {
    let (check, fails, on) = match g.for_what {
        "delivery" => ("role policy", "deliveries fail with S3.AccessDenied", objects),
        "transform" => (
            "transform policy",
            "every transformation fails with Lambda.InvokeAccessDenied and the records wait",
            "the function",
        ),
        "source" => (
            "source policy",
            "Firehose cannot read the data stream (Kinesis.AccessDenied) and records wait in it until its retention ends",
            "the data stream",
        ),
        "schema" => (
            "schema policy",
            "Parquet conversion fails with DataFormatConversion.AccessDenied and the records wait",
            "the Glue table",
        ),
        _ => ("logging policy", "delivery errors cannot be logged", "that log stream"),
    };
    if g.allowed {
        return ok(check, format!("the role may {} on {}", g.action, g.resource));
    }
    let reason = g.reason.as_deref().unwrap_or("not allowed");
    let what = format!("the role may not {} on {}: {reason}; {fails}", g.action, g.resource);
    let restores = if g.for_what == "delivery" { "setup's policy" } else { "setup's grant" };
    let fix = format!("allow {} on {on} ({setup_hint} restores {restores})", g.action);
    if check == "logging policy" {
        warning(check, what, format!("allow {} on {on} ({setup_hint})", g.action))
    } else {
        problem(check, what, fix)
    }
}

/// The transformation function exists (else every transformation fails with Lambda.ResourceNotFound).
async fn function_check(clients: &Clients, function: &str, setup_hint: &str) -> Result<Finding> {
    Ok(match crate::aws::lambda::get_function(&clients.lambda, function).await? {
        Some(f) => ok(
            "function",
            format!(
                "{} exists ({} {})",
                f.arn,
                f.runtime.as_deref().unwrap_or("image"),
                f.handler.as_deref().unwrap_or("")
            ),
        ),
        None => problem(
            "function",
            format!(
                "the transformation function {function} does not exist: every transformation fails with Lambda.ResourceNotFound"
            ),
            format!("deploy it again: {setup_hint} --transform HANDLER"),
        ),
    })
}

/// The Glue table of a converting stream exists, and whether it is the Apache table setup makes.
async fn table_check(clients: &Clients, c: &fh::ConversionSpec, setup_hint: &str) -> Result<Finding> {
    let name = format!("{}.{}", c.database, c.table);
    let Some(t) = crate::aws::glue::table(&clients.glue, &c.database, &c.table).await? else {
        return Ok(problem(
            "schema",
            format!(
                "the Glue table {name} does not exist: conversion fails with DataFormatConversion.EntityNotFound and the records wait"
            ),
            format!("create it: {setup_hint} --format parquet"),
        ));
    };
    let columns: Vec<String> = t.columns.iter().map(|(n, ty)| format!("{n} {ty}")).collect();
    let apache: Vec<(String, String)> =
        crate::logs::table::COLUMNS.iter().map(|(n, ty)| (n.to_string(), ty.to_string())).collect();
    Ok(if t.columns == apache {
        ok("schema", format!("Glue table {name} types the Apache JSON send makes ({})", columns.join(", ")))
    } else {
        ok("schema", format!("Glue table {name} has {} columns: {}", t.columns.len(), columns.join(", ")))
    })
}

/// The bucket: exists and is ours to write, its region, its default encryption, its error output.
async fn bucket_checks(x: &Subject<'_>) -> Result<Vec<Finding>> {
    let (clients, bucket, setup_hint) = (x.clients, &x.bucket, &x.setup_hint);
    match s3::bucket_state(&clients.s3, bucket).await? {
        s3::BucketState::Missing => {
            return Ok(vec![problem(
                "bucket",
                format!(
                    "bucket `{bucket}` does not exist: deliveries fail with S3.NoSuchBucket and data is dropped after {}",
                    crate::ui::format_duration(clients.emulator.retry_horizon())
                ),
                format!("recreate it ({setup_hint})"),
            )]);
        }
        s3::BucketState::Forbidden => {
            return Ok(vec![problem(
                "bucket",
                format!("bucket `{bucket}` belongs to another account or refuses you"),
                "check the bucket name and its owner",
            )]);
        }
        s3::BucketState::Exists => {}
    }
    let region = s3::bucket_region(&clients.s3, bucket).await.ok();
    let mut out = vec![match region.as_deref() {
        Some(r) if r != clients.region => warning(
            "bucket",
            format!(
                "bucket `{bucket}` is in {r}, the stream in {}: cross-region delivery adds latency and transfer cost",
                clients.region
            ),
            "use a bucket in the stream's region",
        ),
        Some(r) => ok("bucket", format!("bucket `{bucket}` exists in {r}")),
        None => ok("bucket", format!("bucket `{bucket}` exists")),
    }];
    out.push(match s3::encryption(&clients.s3, bucket).await.ok().flatten() {
        Some(alg) => ok("bucket encryption", format!("default encryption {alg}")),
        None => warning(
            "bucket encryption",
            "the bucket has no default encryption configured",
            format!("enable SSE-S3 ({setup_hint} does it for its bucket)"),
        ),
    });
    out.extend(error_output_check(x).await);
    Ok(out)
}

/// This stream's objects under the error output prefix: records Firehose could not process or partition (other
/// streams on the bucket may share the prefix; theirs are not this stream's problem).
async fn error_output_check(x: &Subject<'_>) -> Option<Finding> {
    let error_prefix = x.dest.error_prefix.as_ref()?;
    let static_part = static_part_of(Some(error_prefix));
    let objects: Vec<_> = s3::list_objects(&x.clients.s3, &x.bucket, static_part)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|o| crate::firehose::keys::written_by(&o.key, &x.info.name))
        .collect();
    Some(if objects.is_empty() {
        ok("error output", format!("nothing of this stream under the error prefix `{static_part}`"))
    } else {
        warning(
            "error output",
            format!(
                "{} of this stream under the error prefix `{static_part}` (records Firehose could not process), e.g. {}",
                plural(objects.len() as u64, "object"),
                objects[0].key
            ),
            "download one to see the error code and the failed record",
        )
    })
}

fn stream_encryption(info: &fh::StreamInfo) -> Finding {
    match &info.encryption {
        Some(e) => ok("stream encryption", format!("server-side encryption {e}")),
        None => ok("stream encryption", "server-side encryption not reported"),
    }
}

/// Error logging: on, its log stream exists, and the delivery errors logged lately.
async fn error_logging_checks(x: &Subject<'_>) -> Result<Vec<Finding>> {
    let Some(l) = &x.dest.error_logging else {
        return Ok(vec![warning(
            "error logging",
            "error logging is off: when delivery fails, nobody can see why",
            format!("enable CloudWatchLoggingOptions ({} does)", x.setup_hint),
        )]);
    };
    let since = Utc::now() - chrono::Duration::from_std(x.args.since).unwrap_or(chrono::Duration::hours(1));
    let Some(errors) = logs::delivery_errors(&x.clients.logs, &l.group, &l.stream, since, Utc::now()).await? else {
        return Ok(vec![problem(
            "error logging",
            format!("logging is on, but {l} does not exist: Firehose does not create it, so errors are lost"),
            format!("create the log group and stream ({})", x.setup_hint),
        )]);
    };
    let mut out = vec![ok("error logging", format!("errors are logged to {l}"))];
    if errors.is_empty() {
        out.push(ok(
            "recent errors",
            format!("no delivery errors in the last {}", humantime::format_duration(x.args.since)),
        ));
    }
    for e in errors {
        out.push(problem(
            "recent errors",
            format!(
                "{} × {} between {} and {}: {}",
                e.code,
                e.count,
                e.first.format("%H:%M:%S"),
                e.last.format("%H:%M:%S"),
                e.message
            ),
            e.hint.unwrap_or_else(|| "see the Firehose developer guide for this code".into()),
        ));
    }
    Ok(out)
}

pub async fn run(global: &Global, args: &DoctorArgs, clients: &Clients, printer: &Printer) -> Result<ExitCode> {
    let findings = examine(global, args, clients).await?;
    let problems = findings.iter().filter(|f| f.level == Level::Problem).count();
    let warnings = findings.iter().filter(|f| f.level == Level::Warning).count();
    if printer.json() {
        printer.result_json(&json!({
            "stream": global.stream,
            "backend": clients.backend(),
            "healthy": problems == 0,
            "problems": problems,
            "warnings": warnings,
            "findings": findings,
        }));
    } else {
        let mut lines = vec![format!("doctor `{}` on {}", global.stream, clients.backend())];
        for f in &findings {
            let mark = match f.level {
                Level::Ok => "ok     ",
                Level::Warning => "warning",
                Level::Problem => "PROBLEM",
            };
            lines.push(format!("  {mark}  {:<18} {}", f.check, f.message));
            if let Some(fix) = &f.fix {
                lines.push(format!("  {:<7}  {:<18} fix: {fix}", "", ""));
            }
        }
        lines.push(match (problems, warnings) {
            (0, 0) => "healthy: no problems, no warnings".to_string(),
            (0, w) => format!("healthy, with {w} warning{}", if w == 1 { "" } else { "s" }),
            (p, w) => {
                format!("{p} problem{} and {w} warning{}", if p == 1 { "" } else { "s" }, if w == 1 { "" } else { "s" })
            }
        });
        printer.result(&lines.join("\n"));
    }
    Ok(if problems > 0 { ExitCode::Failed } else { ExitCode::Success })
}

/// The stream's buffering hints against the ones asked (`--buffer-size`, `--buffer-interval`); the fix is the
/// setup command that applies them, with values setup accepts for this stream.
fn buffering_check(global: &Global, args: &DoctorArgs, dest: &fh::DestinationSpec) -> Finding {
    let hints = format!("{} MiB / {} s", dest.buffer_size_mib, dest.buffer_interval_s);
    let size = args.buffer_size.map(|v| v as i32).unwrap_or(dest.buffer_size_mib);
    let interval = args.buffer_interval.map(|d| d.as_secs() as i32).unwrap_or(dest.buffer_interval_s);
    if (size, interval) == (dest.buffer_size_mib, dest.buffer_interval_s) {
        return ok("buffering", format!("buffering hints {hints}"));
    }
    let message = format!("buffering hints are {hints}, not the {size} MiB / {interval} s asked");
    let apply =
        |size: i32, interval: i32| global.command(&format!("setup --buffer-size {size} --buffer-interval {interval}"));
    if dest.partition_query.is_some() {
        use crate::firehose::partitioning::{MIN_INTERVAL_S, MIN_SIZE_MIB};
        let (min_size, min_interval) = (MIN_SIZE_MIB as i32, MIN_INTERVAL_S as i32);
        if size < min_size || interval < min_interval {
            return warning(
                "buffering",
                message,
                format!(
                    "a partitioned stream buffers at least {min_size} MiB / {min_interval} s (AWS's minimums); the closest allowed: `{}`",
                    apply(size.max(min_size), interval.max(min_interval))
                ),
            );
        }
    }
    warning("buffering", message, format!("apply them: `{}`", apply(size, interval)))
}
