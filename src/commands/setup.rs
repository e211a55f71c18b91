//! `firehose-kit setup`: the hardened bucket, the least-privilege delivery role and the Direct Put stream, then
//! wait until ACTIVE. Safe to re-run: what exists and matches is left alone ("unchanged"), changed buffering,
//! compression or prefixes are applied in place with UpdateDestination, and what a failed run made is
//! completed. `--dry-run` prints the plan and the exact documents and changes nothing.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::aws::Clients;
use crate::aws::firehose::{self as fh, DestinationSpec, ErrorLogging, StreamInfo};
use crate::aws::policy::{self, DELIVERY_POLICY_NAME};
use crate::aws::{iam, logs, s3};
use crate::cli::Compression;
use crate::error::{Error, ExitCode, Result};
use crate::firehose::access;
use crate::firehose::failures;
use crate::firehose::types::StreamStatus;
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
    #[serde(skip)]
    existing_stream: Option<StreamInfo>,
    #[serde(skip)]
    bucket_exists: bool,
}

fn compression_of(c: Compression) -> crate::firehose::types::Compression {
    match c {
        Compression::None => crate::firehose::types::Compression::Uncompressed,
        Compression::Gzip => crate::firehose::types::Compression::Gzip,
    }
}

/// Reads the current state of the three resources and decides what to do; changes nothing.
pub async fn plan(global: &Global, s: &SetupSettings, clients: &Clients) -> Result<Plan> {
    let account_id = clients.account_id().await?;
    let region = clients.region.clone();
    let partition = clients.partition();
    let bucket = match &s.bucket {
        Some(b) => b.clone(),
        None => settings::default_bucket(&account_id, &region),
    };
    settings::validate_bucket_name(&bucket)?;
    let role = settings::role_name(&global.stream)?;
    let trust_policy = policy::trust_policy(&account_id);
    let error_logging = s.error_logging.then(|| ErrorLogging {
        group: failures::default_log_group(&global.stream),
        stream: failures::DEFAULT_LOG_STREAM.to_string(),
    });
    let log_stream_arn =
        error_logging.as_ref().map(|l| access::log_stream_arn(partition, &region, &account_id, &l.group, &l.stream));
    let delivery_policy = policy::delivery_policy(partition, &bucket, log_stream_arn.as_deref());
    let bucket_policy = policy::bucket_policy(partition, &bucket);
    let tags = policy::tags(&global.stream);
    let mut steps = Vec::new();
    // Over a plain-HTTP endpoint (moto, LocalStack, the emulator) a TLS-only policy would deny every request
    // that endpoint can receive (moto enforces bucket policies), so it is applied only where TLS exists.
    let tls_policy = tls_endpoint(clients);
    let tls_line = if tls_policy {
        "bucket policy denying requests without TLS".to_string()
    } else {
        "no TLS-only bucket policy: the endpoint is plain HTTP, so the policy would deny every request (applied on AWS)"
            .to_string()
    };

    // Bucket.
    let state = s3::bucket_state(&clients.s3, &bucket).await?;
    let bucket_exists = match state {
        s3::BucketState::Forbidden => {
            return Err(Error::failed(format!("bucket `{bucket}` exists and belongs to another account"))
                .with_hint("bucket names are global: choose another with --bucket"));
        }
        s3::BucketState::Missing => {
            steps.push(Step {
                resource: "bucket",
                name: bucket.clone(),
                action: "create",
                changes: vec![
                    "block all public access".into(),
                    "object ownership BucketOwnerEnforced (ACLs off)".into(),
                    "default encryption SSE-S3".into(),
                    tls_line.clone(),
                    "tags firehose-kit:managed, firehose-kit:stream".into(),
                ],
            });
            false
        }
        s3::BucketState::Exists => {
            let existing_tags = s3::bucket_tags(&clients.s3, &bucket).await?;
            let default_name = s.bucket.is_none();
            // A bucket with the default (account- and region-specific) name in our own account is ours even if
            // a failed earlier run created it before tagging it.
            let managed = policy::is_managed(&existing_tags) || default_name;
            if managed {
                let mut changes = Vec::new();
                if s3::public_access_block(&clients.s3, &bucket).await? != Some([true; 4]) {
                    changes.push("block all public access".into());
                }
                if s3::ownership(&clients.s3, &bucket).await?.as_deref() != Some("BucketOwnerEnforced") {
                    changes.push("object ownership BucketOwnerEnforced (ACLs off)".into());
                }
                if s3::encryption(&clients.s3, &bucket).await?.is_none() {
                    changes.push("default encryption SSE-S3".into());
                }
                if tls_policy {
                    let current_policy = s3::bucket_policy(&clients.s3, &bucket).await?;
                    if !current_policy.as_deref().is_some_and(|p| policy::same_document(p, &bucket_policy)) {
                        changes.push(tls_line.clone());
                    }
                }
                if !tags.iter().all(|t| existing_tags.contains(t)) {
                    changes.push("tags firehose-kit:managed, firehose-kit:stream".into());
                }
                let action = if changes.is_empty() { "unchanged" } else { "update" };
                steps.push(Step { resource: "bucket", name: bucket.clone(), action, changes });
            } else {
                steps.push(Step {
                    resource: "bucket",
                    name: bucket.clone(),
                    action: "adopt",
                    changes: vec!["exists without the firehose-kit:managed tag: used as the destination, its settings left as they are, never deleted by teardown".into()],
                });
            }
            true
        }
    };

    // Role.
    let existing_role = iam::get_role(&clients.iam, &role).await?;
    let role_arn = match &existing_role {
        None => {
            steps.push(Step {
                resource: "role",
                name: role.clone(),
                action: "create",
                changes: vec![
                    format!("trust firehose.amazonaws.com with sts:ExternalId {account_id}"),
                    format!("inline policy {DELIVERY_POLICY_NAME}: the six S3 delivery actions on `{bucket}` only"),
                ]
                .into_iter()
                .chain(error_logging.as_ref().map(|l| format!("logs:PutLogEvents on log stream {l} only")))
                .collect(),
            });
            format!("arn:{partition}:iam::{account_id}:role/{role}")
        }
        Some(info) => {
            if !policy::is_managed(&info.tags) {
                return Err(Error::failed(format!("role `{role}` exists but was not made by firehose-kit (no firehose-kit:managed tag)"))
                    .with_hint("setup will not change a role it did not create: delete or rename that role, or use another --stream"));
            }
            let mut changes = Vec::new();
            if !policy::same_document(&info.trust_policy, &trust_policy) {
                changes.push(format!(
                    "trust policy drifted: restore trust of firehose.amazonaws.com only, with sts:ExternalId {account_id}"
                ));
            }
            let current = iam::get_role_policy(&clients.iam, &role, DELIVERY_POLICY_NAME).await?;
            if !current.as_deref().is_some_and(|p| policy::same_document(p, &delivery_policy)) {
                let drift = policy::policy_drift(current.as_deref(), &delivery_policy);
                changes.push(format!("inline policy {DELIVERY_POLICY_NAME} drifted: {}", drift.join(", ")));
            }
            if !tags.iter().all(|t| info.tags.contains(t)) {
                changes.push("tags".into());
            }
            let action = if changes.is_empty() { "unchanged" } else { "update" };
            steps.push(Step { resource: "role", name: role.clone(), action, changes });
            info.arn.clone()
        }
    };

    // Error log group and stream (Firehose does not create them: they must exist before errors can be logged).
    if let Some(l) = &error_logging {
        match logs::group(&clients.logs, &l.group).await? {
            None => steps.push(Step {
                resource: "log group",
                name: l.group.clone(),
                action: "create",
                changes: vec![
                    format!("retention {} days", s.log_retention_days),
                    format!("log stream {}", l.stream),
                    "tags firehose-kit:managed, firehose-kit:stream".into(),
                ],
            }),
            Some(g) if !policy::is_managed(&g.tags) => steps.push(Step {
                resource: "log group",
                name: l.group.clone(),
                action: "adopt",
                changes: vec!["exists without the firehose-kit:managed tag: used as it is (its log stream created if missing), never deleted by teardown".into()],
            }),
            Some(g) => {
                let mut changes = Vec::new();
                if g.retention_days != Some(s.log_retention_days) {
                    let have = g.retention_days.map(|d| format!("{d} days")).unwrap_or_else(|| "never expire".into());
                    changes.push(format!("retention: {have} → {} days", s.log_retention_days));
                }
                if !g.streams.contains(&l.stream) {
                    changes.push(format!("log stream {} is missing: create it", l.stream));
                }
                if !tags.iter().all(|t| g.tags.contains(t)) {
                    changes.push("tags firehose-kit:managed, firehose-kit:stream".into());
                }
                let action = if changes.is_empty() { "unchanged" } else { "update" };
                steps.push(Step { resource: "log group", name: l.group.clone(), action, changes });
            }
        }
    }

    // Stream.
    let partitioned = !s.partition_by.is_empty();
    let base = s.prefix.clone().unwrap_or_default();
    let destination = DestinationSpec {
        role_arn,
        bucket_arn: format!("arn:{partition}:s3:::{bucket}"),
        prefix: if partitioned { Some(s.partition_by.prefix(&base)) } else { s.prefix.clone() },
        error_prefix: if partitioned {
            Some(s.error_prefix.clone().unwrap_or_else(|| crate::logs::partition::PartitionBy::error_prefix(&base)))
        } else {
            s.error_prefix.clone()
        },
        partition_query: partitioned.then(|| s.partition_by.query()),
        buffer_size_mib: s.buffer_size_mib as i32,
        buffer_interval_s: s.buffer_interval_s as i32,
        compression: compression_of(s.compression),
        file_extension: None,
        time_zone: None,
        error_logging,
    };
    let existing_stream = fh::describe(&clients.firehose, &global.stream).await?;
    match &existing_stream {
        None => steps.push(Step {
            resource: "stream",
            name: global.stream.clone(),
            action: "create",
            changes: vec![describe_destination(&destination)],
        }),
        Some(info) => {
            let tags = fh::tags(&clients.firehose, &global.stream).await?;
            if !policy::is_managed(&tags) {
                return Err(Error::failed(format!(
                    "delivery stream `{}` exists but was not made by firehose-kit (no firehose-kit:managed tag)",
                    global.stream
                ))
                .with_hint("choose another name with --stream"));
            }
            if info.status.is_terminal_failure() {
                return Err(Error::failed(format!("delivery stream `{}` is {}", global.stream, info.status)).with_hint(
                    "wait for a deletion to finish, or remove a failed stream with `firehose-kit teardown`, then run setup again",
                ));
            }
            let Some(current) = &info.destination else {
                return Err(Error::failed(format!("delivery stream `{}` has no S3 destination", global.stream)));
            };
            if current.bucket_arn != destination.bucket_arn {
                return Err(Error::failed(format!(
                    "delivery stream `{}` delivers to `{}`, not `{bucket}`: setup does not move a stream to another bucket",
                    global.stream,
                    current.bucket()
                ))
                .with_hint(format!(
                    "to switch buckets, recreate the stream: `firehose-kit --stream {} teardown --keep-bucket --bucket {}` then `firehose-kit --stream {} setup --bucket {bucket}`",
                    global.stream,
                    current.bucket(),
                    global.stream
                )));
            }
            let diff = current.diff(&destination);
            if current.partition_query != destination.partition_query {
                let show = |q: &Option<String>| q.clone().unwrap_or_else(|| "no partitioning".into());
                if !s.recreate {
                    return Err(Error::failed(format!(
                        "delivery stream `{}` has {}, setup asks for {}: Firehose cannot change dynamic partitioning of an existing stream (it is chosen at creation and cannot be turned off)",
                        global.stream,
                        show(&current.partition_query),
                        show(&destination.partition_query)
                    ))
                    .with_hint("re-run with --recreate to delete the stream and create it again (buffered data is delivered first; objects in S3 stay)"));
                }
                let mut changes = vec!["delete and create again: partitioning cannot change in place".to_string()];
                changes.extend(diff);
                steps.push(Step { resource: "stream", name: global.stream.clone(), action: "recreate", changes });
            } else {
                let action = if diff.is_empty() { "unchanged" } else { "update" };
                steps.push(Step { resource: "stream", name: global.stream.clone(), action, changes: diff });
            }
        }
    }

    Ok(Plan {
        account_id,
        region,
        bucket,
        role,
        stream: global.stream.clone(),
        steps,
        trust_policy,
        delivery_policy,
        bucket_policy,
        log_retention_days: s.error_logging.then_some(s.log_retention_days),
        destination,
        existing_stream,
        bucket_exists,
    })
}

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
        if d.compression == crate::firehose::types::Compression::Gzip { "gzip" } else { "no compression" },
        match &d.error_logging {
            Some(l) => format!("errors logged to {l}"),
            None => "error logging off".to_string(),
        }
    ) + &match &d.partition_query {
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

/// Applies a plan: bucket, then role, then stream, then waits for ACTIVE.
pub async fn apply(s: &SetupSettings, plan: Plan, clients: &Clients, reporter: &dyn Reporter) -> Result<Outcome> {
    let tags = policy::tags(&plan.stream);
    let bucket = &plan.bucket;
    let step = |resource: &str| {
        plan.steps.iter().find(|st| st.resource == resource).cloned().expect("plan has every resource")
    };

    let bucket_step = step("bucket");
    if bucket_step.action != "adopt" {
        if !plan.bucket_exists {
            s3::create_bucket(&clients.s3, bucket, &clients.region).await?;
        }
        if !plan.bucket_exists || bucket_step.action == "update" {
            // Tag first, so a run that fails after this point leaves a bucket teardown recognises.
            s3::put_bucket_tags(&clients.s3, bucket, &tags).await?;
            s3::block_public_access(&clients.s3, bucket).await?;
            s3::enforce_bucket_owner(&clients.s3, bucket).await?;
            s3::encrypt_sse_s3(&clients.s3, bucket).await?;
            if tls_endpoint(clients) {
                s3::put_bucket_policy(&clients.s3, bucket, &plan.bucket_policy.to_string()).await?;
            }
        }
    }
    reporter.note(&line(&bucket_step, true));

    let role_step = step("role");
    match role_step.action {
        "create" => {
            iam::create_role(&clients.iam, &plan.role, &plan.trust_policy.to_string(), &tags).await?;
            iam::put_role_policy(&clients.iam, &plan.role, DELIVERY_POLICY_NAME, &plan.delivery_policy.to_string())
                .await?;
        }
        "update" => {
            iam::update_trust(&clients.iam, &plan.role, &plan.trust_policy.to_string()).await?;
            iam::put_role_policy(&clients.iam, &plan.role, DELIVERY_POLICY_NAME, &plan.delivery_policy.to_string())
                .await?;
            iam::tag_role(&clients.iam, &plan.role, &tags).await?;
        }
        _ => {}
    }
    reporter.note(&line(&role_step, true));

    if let (Some(log_step), Some(l)) =
        (plan.steps.iter().find(|st| st.resource == "log group"), &plan.destination.error_logging)
    {
        if log_step.action == "create" {
            logs::create_group(&clients.logs, &l.group, &tags).await?;
        }
        if matches!(log_step.action, "create" | "update") {
            let arn = access::log_group_arn(clients.partition(), &plan.region, &plan.account_id, &l.group);
            logs::tag_group(&clients.logs, &arn, &tags).await?;
            logs::put_retention(&clients.logs, &l.group, plan.log_retention_days.unwrap_or(14)).await?;
        }
        // Always ensured (also in an adopted group): without it Firehose cannot log.
        logs::create_stream(&clients.logs, &l.group, &l.stream).await?;
        reporter.note(&line(log_step, true));
    }

    let stream_step = step("stream");
    let task = reporter.task("stream", None, Unit::Items);
    let retries = std::sync::atomic::AtomicU32::new(0);
    let mut stream_arn = plan.existing_stream.as_ref().map(|i| i.arn.clone());
    if stream_step.action == "recreate" {
        task.set_message(format!("deleting {} to create it again", plan.stream));
        fh::delete(&clients.firehose, &plan.stream).await?;
        fh::wait_until_gone(&clients.firehose, &plan.stream, s.timeout, &|status, elapsed| {
            task.set_message(format!("{} is {status} ({})", plan.stream, format_duration(elapsed)));
        })
        .await?;
    }
    match stream_step.action {
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
            let arn =
                fh::create(&clients.firehose, &plan.stream, &plan.destination, &tags, s.iam_retry_timeout, &on_retry)
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
    let iam_retries = retries.load(std::sync::atomic::Ordering::Relaxed);
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
            for (title, doc) in [
                (format!("role {} trust policy", plan.role), &plan.trust_policy),
                (format!("role {} inline policy {DELIVERY_POLICY_NAME}", plan.role), &plan.delivery_policy),
                (format!("bucket {} policy", plan.bucket), &plan.bucket_policy),
            ] {
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
            "iam_retries": outcome.iam_retries,
            "waited_ms": outcome.waited_ms,
        }));
    } else {
        let status = outcome.status.as_deref().unwrap_or("created (not waited for)");
        printer.result(&format!(
            "stream `{}` {status}: {}\nnext: `firehose-kit{} send FILE` then `firehose-kit{} verify`",
            outcome.plan.stream,
            outcome.stream_arn.as_deref().unwrap_or(""),
            stream_flag(&outcome.plan.stream),
            stream_flag(&outcome.plan.stream),
        ));
    }
    Ok(ExitCode::Success)
}

/// ` --stream NAME` when the stream is not the default one, for commands suggested to the user.
pub fn stream_flag(stream: &str) -> String {
    if stream == settings::DEFAULT_STREAM { String::new() } else { format!(" --stream {stream}") }
}
