//! setup's second half: applying a plan (bucket, role, error log, the stream's own parts, the stream) and waiting
//! until the stream is ACTIVE, and the one line each step prints.

use super::*;

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
pub(super) fn line(step: &Step, done: bool) -> String {
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
