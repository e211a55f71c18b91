//! setup's part for `--transform`: the transformation function (deployed from a handler, or an existing one by
//! ARN), its execution role, and the delivery role's grant to invoke it.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::{Ctx, Plan, Step, line};
use crate::aws::{Clients, iam, lambda, policy};
use crate::error::{Error, Result};
use crate::settings::SetupSettings;
use crate::transform::{self, Package, Source};
use crate::ui::Reporter;

/// Where a transformed stream's failed records go when no `--error-prefix` is given: AWS's error-output-type
/// (`processing-failed`) and the day.
pub const DEFAULT_ERROR_PREFIX: &str = "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/";

/// The transformation setup wants.
#[derive(Debug, Clone, Serialize)]
pub struct TransformPlan {
    pub function: String,
    pub function_arn: String,
    /// The delivery role's inline policy that allows invoking the function.
    pub invoke_policy: Value,
    /// What setup deploys, when the transformation is a handler (not an existing function).
    pub deploy: Option<DeployPlan>,
    #[serde(skip)]
    pub steps: Vec<Step>,
}

/// A handler setup deploys as a function with its own execution role.
#[derive(Debug, Clone, Serialize)]
pub struct DeployPlan {
    pub runtime: &'static str,
    pub handler: String,
    pub files: Vec<String>,
    pub code_sha256: String,
    pub exec_role: String,
    pub exec_role_arn: String,
    pub exec_trust_policy: Value,
    pub exec_policy: Value,
    /// The handler is a shipped template: the function is tagged so, and send packs lines for it.
    pub many_lines: bool,
    #[serde(skip)]
    pub zip: Vec<u8>,
}

impl DeployPlan {
    /// The function's tags: setup's own, and [`transform::RECORD_LINES_TAG`] for a shipped template.
    fn tags(&self, stream: &str) -> Vec<(String, String)> {
        let mut tags = policy::tags(stream);
        if self.many_lines {
            let (k, v) = transform::RECORD_LINES_TAG;
            tags.push((k.to_string(), v.to_string()));
        }
        tags
    }
}

impl TransformPlan {
    /// The documents `--dry-run` shows.
    pub fn documents(&self, delivery_role: &str) -> Vec<(String, &Value)> {
        let mut out = vec![(
            format!("role {delivery_role} inline policy {}", policy::TRANSFORM_POLICY_NAME),
            &self.invoke_policy,
        )];
        if let Some(d) = &self.deploy {
            out.push((format!("role {} trust policy", d.exec_role), &d.exec_trust_policy));
            out.push((format!("role {} inline policy {}", d.exec_role, transform::EXEC_POLICY_NAME), &d.exec_policy));
        }
        out
    }
}

/// Decides what to do about the transformation: `source` is what the user asked for (`None`: keep `current`,
/// the function the stream already has).
pub(super) async fn plan(
    ctx: &Ctx<'_>,
    source: Option<&Source>,
    current: Option<&str>,
) -> Result<Option<TransformPlan>> {
    let plan = |function: String, function_arn: String, deploy, steps| TransformPlan {
        invoke_policy: policy::transform_policy(&function_arn),
        function,
        function_arn,
        deploy,
        steps,
    };
    match source {
        None => Ok(current.map(|arn| {
            let name = firehose_kit_domain::transform::function_name(arn).unwrap_or(arn).to_string();
            plan(name, arn.to_string(), None, Vec::new())
        })),
        Some(Source::Arn(arn)) => {
            let info = lambda::get_function(&ctx.clients.lambda, arn).await?.ok_or_else(|| {
                Error::usage(format!("--transform: Lambda function `{arn}` does not exist"))
                    .with_hint("check the ARN and region, or give a handler file for setup to deploy")
            })?;
            let name = firehose_kit_domain::transform::function_name(arn).unwrap_or(arn).to_string();
            let step = Step {
                resource: "function",
                name: info.arn.clone(),
                action: "adopt",
                changes: vec!["an existing function, used as it is (never changed or deleted by firehose-kit)".into()],
            };
            Ok(Some(plan(name, info.arn, None, vec![step])))
        }
        Some(Source::Path(path)) => {
            let package = transform::package(path)?;
            let name = transform::function_name(&ctx.global.stream)?;
            let (role_step, deploy) = plan_exec_role(ctx, &name, package).await?;
            let (function_step, arn) = plan_function(ctx, &name, &deploy).await?;
            Ok(Some(plan(name, arn, Some(deploy), vec![role_step, function_step])))
        }
    }
}

fn refuse_unmanaged(kind: &str, name: &str) -> Error {
    Error::usage(format!("{kind} `{name}` exists but was not made by firehose-kit (no firehose-kit:managed tag)"))
        .with_hint("setup will not change what it did not create: pass the function's ARN to --transform to use it as it is, or use another --stream")
}

/// The function's execution role: Lambda may assume it, and it may write the function's own log group.
async fn plan_exec_role(ctx: &Ctx<'_>, name: &str, package: Package) -> Result<(Step, DeployPlan)> {
    let trust = transform::exec_trust_policy();
    let exec_policy = transform::exec_policy(ctx.partition, &ctx.region, &ctx.account_id, name);
    let step = |action, changes| Step { resource: "exec role", name: name.to_string(), action, changes };
    let mut deploy = DeployPlan {
        runtime: package.runtime,
        handler: package.handler,
        files: package.files,
        code_sha256: package.sha256,
        exec_role: name.to_string(),
        exec_role_arn: format!("arn:{}:iam::{}:role/{name}", ctx.partition, ctx.account_id),
        exec_trust_policy: trust,
        exec_policy,
        many_lines: package.many_lines,
        zip: package.zip,
    };
    let Some(info) = iam::get_role(&ctx.clients.iam, name).await? else {
        let changes = vec![
            "trust lambda.amazonaws.com".into(),
            format!(
                "inline policy {}: write the function's log group /aws/lambda/{name} only",
                transform::EXEC_POLICY_NAME
            ),
        ];
        return Ok((step("create", changes), deploy));
    };
    if !policy::is_managed(&info.tags) {
        return Err(refuse_unmanaged("role", name));
    }
    deploy.exec_role_arn = info.arn.clone();
    let mut changes = Vec::new();
    if !policy::same_document(&info.trust_policy, &deploy.exec_trust_policy) {
        changes.push("trust policy drifted: restore trust of lambda.amazonaws.com only".to_string());
    }
    let current = iam::get_role_policy(&ctx.clients.iam, name, transform::EXEC_POLICY_NAME).await?;
    if !current.as_deref().is_some_and(|p| policy::same_document(p, &deploy.exec_policy)) {
        changes.push(format!("inline policy {} drifted or missing: restore it", transform::EXEC_POLICY_NAME));
    }
    let action = if changes.is_empty() { "unchanged" } else { "update" };
    Ok((step(action, changes), deploy))
}

/// The function: create it, or bring its code, runtime, handler, role and tags back to what setup deploys.
async fn plan_function(ctx: &Ctx<'_>, name: &str, d: &DeployPlan) -> Result<(Step, String)> {
    let step = |action, changes| Step { resource: "function", name: name.to_string(), action, changes };
    let Some(info) = lambda::get_function(&ctx.clients.lambda, name).await? else {
        let arn = format!("arn:{}:lambda:{}:{}:function:{name}", ctx.partition, ctx.region, ctx.account_id);
        let changes = vec![format!("{} handler {} from {}", d.runtime, d.handler, d.files.join(", "))];
        return Ok((step("create", changes), arn));
    };
    if !policy::is_managed(&info.tags) {
        return Err(refuse_unmanaged("Lambda function", name));
    }
    let mut changes = Vec::new();
    if info.code_sha256 != d.code_sha256 {
        changes.push(format!("code changed: {} → {}", short(&info.code_sha256), short(&d.code_sha256)));
    }
    let (runtime, handler) = (info.runtime.as_deref().unwrap_or("(none)"), info.handler.as_deref().unwrap_or(""));
    if runtime != d.runtime || handler != d.handler {
        changes.push(format!("runtime {runtime} handler {handler} → {} {}", d.runtime, d.handler));
    }
    if info.role != d.exec_role_arn {
        changes.push(format!("role {} → {}", info.role, d.exec_role_arn));
    }
    let tags = d.tags(&ctx.global.stream);
    if !tags.iter().all(|t| info.tags.contains(t)) {
        let names: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
        changes.push(format!("tags {}", names.join(", ")));
    }
    let action = if changes.is_empty() { "unchanged" } else { "update" };
    Ok((step(action, changes), info.arn))
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// Applies the plan's transform steps: the execution role, then the function (waiting until it can run).
pub(super) async fn apply(
    s: &SetupSettings,
    plan: &Plan,
    t: &TransformPlan,
    clients: &Clients,
    reporter: &dyn Reporter,
) -> Result<()> {
    let Some(d) = &t.deploy else {
        for step in &t.steps {
            reporter.note(&line(step, true));
        }
        return Ok(());
    };
    let step = |resource: &str| t.steps.iter().find(|st| st.resource == resource).expect("a deploy plans both");
    let role_tags = policy::tags(&plan.stream);
    let role_step = step("exec role");
    if role_step.action == "create" {
        let description = "Runs the transformation function of a Firehose stream (created by firehose-kit setup)";
        iam::create_role_described(
            &clients.iam,
            &d.exec_role,
            &d.exec_trust_policy.to_string(),
            &role_tags,
            description,
        )
        .await?;
    } else if role_step.action == "update" {
        iam::update_trust(&clients.iam, &d.exec_role, &d.exec_trust_policy.to_string()).await?;
    }
    if role_step.action != "unchanged" {
        iam::put_role_policy(&clients.iam, &d.exec_role, transform::EXEC_POLICY_NAME, &d.exec_policy.to_string())
            .await?;
    }
    reporter.note(&line(role_step, true));
    let function_step = step("function");
    let tags = d.tags(&plan.stream);
    let task = reporter.task("function", None, crate::ui::Unit::Items);
    let deploy = lambda::Deploy {
        name: &t.function,
        runtime: d.runtime,
        handler: &d.handler,
        role_arn: &d.exec_role_arn,
        zip: &d.zip,
        tags: &tags,
    };
    let on_retry = |attempt: u32, message: &str, wait: Duration| {
        task.set_message(format!(
            "IAM propagation: Lambda cannot assume the new role yet (retry {attempt} in {:.1} s): {message}",
            wait.as_secs_f64()
        ));
    };
    match function_step.action {
        "create" => {
            task.set_message(format!("creating {}", t.function));
            lambda::create(&clients.lambda, &deploy, s.iam_retry_timeout, &on_retry).await?;
        }
        "update" => {
            lambda::wait_ready(&clients.lambda, &t.function, s.timeout).await?;
            lambda::update_code(&clients.lambda, &t.function, &d.zip).await?;
            lambda::wait_ready(&clients.lambda, &t.function, s.timeout).await?;
            lambda::update_configuration(&clients.lambda, &deploy, s.iam_retry_timeout, &on_retry).await?;
            lambda::tag(&clients.lambda, &t.function_arn, &tags).await?;
        }
        _ => {}
    }
    task.set_message(format!("waiting for {} to be ready", t.function));
    lambda::wait_ready(&clients.lambda, &t.function, s.timeout).await?;
    task.finish(line(function_step, true));
    Ok(())
}
