//! setup's part for `--source kinesis`: the Kinesis data stream in front of Firehose (created with `--shards N`
//! or `--on-demand`, or an existing one adopted), and the delivery role's grant to read it. Firehose cannot change
//! a stream's source in place, so a Direct Put stream does not become a chained one (or back) by re-running setup.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::{Ctx, Step, line};
use crate::aws::firehose::StreamInfo;
use crate::aws::{Clients, kinesis, policy};
use crate::cli::SourceKind;
use crate::error::{Error, Result};
use crate::settings::SetupSettings;
use crate::ui::{Reporter, Unit, format_duration};

/// The data stream setup wants in front of the delivery stream.
#[derive(Debug, Clone, Serialize)]
pub struct SourcePlan {
    pub data_stream: String,
    pub arn: String,
    /// Shards of a data stream setup creates (`None`: on-demand).
    pub shards: Option<u32>,
    /// The delivery role's inline policy that lets Firehose read the data stream.
    pub read_policy: Value,
    #[serde(skip)]
    pub step: Step,
}

/// Decides the source from the settings and what the stream has; `None` for Direct Put.
pub async fn plan(ctx: &Ctx<'_>, s: &SetupSettings, existing: Option<&StreamInfo>) -> Result<Option<SourcePlan>> {
    let current = existing.and_then(|i| i.source.as_ref());
    let stream = &ctx.global.stream;
    match (s.source, current, existing.is_some()) {
        (None | Some(SourceKind::DirectPut), None, _) => return Ok(None),
        (Some(SourceKind::DirectPut), Some(c), _) => {
            return Err(cannot_change(ctx, &format!("reads data stream `{}`", c.stream_name()), "Direct Put"));
        }
        (Some(SourceKind::Kinesis), None, true) => {
            return Err(cannot_change(ctx, "is a Direct Put stream", "a Kinesis data stream in front"));
        }
        _ => {}
    }
    let name = s
        .source_stream
        .clone()
        .or_else(|| current.map(|c| c.stream_name().to_string()))
        .unwrap_or_else(|| stream.clone());
    if let Some(c) = current
        && c.stream_name() != name
    {
        return Err(cannot_change(ctx, &format!("reads data stream `{}`", c.stream_name()), &format!("`{name}`")));
    }
    let arn = format!("arn:{}:kinesis:{}:{}:stream/{name}", ctx.partition, ctx.region, ctx.account_id);
    let shards = if s.on_demand { None } else { Some(s.shards.unwrap_or(1)) };
    let step = plan_data_stream(ctx, s, &name, shards).await?;
    Ok(Some(SourcePlan { data_stream: name, read_policy: policy::source_policy(&arn), arn, shards, step }))
}

fn cannot_change(ctx: &Ctx<'_>, has: &str, wanted: &str) -> Error {
    let stream = &ctx.global.stream;
    Error::usage(format!(
        "delivery stream `{stream}` {has}; setup was asked for {wanted}: Firehose cannot change a stream's source in place"
    ))
    .with_hint(format!(
        "delete the delivery stream first (`{}`), then run setup again; or leave out --source / --source-stream to keep it",
        ctx.global.command("teardown --keep-bucket")
    ))
}

async fn plan_data_stream(ctx: &Ctx<'_>, s: &SetupSettings, name: &str, shards: Option<u32>) -> Result<Step> {
    let step = |action, changes| Step { resource: "data stream", name: name.to_string(), action, changes };
    let Some(d) = kinesis::describe(&ctx.clients.kinesis, name).await? else {
        let capacity = match shards {
            Some(n) => format!("{n} provisioned shard{}", if n == 1 { "" } else { "s" }),
            None => "on-demand capacity".to_string(),
        };
        return Ok(step("create", vec![capacity, "24 h retention".into()]));
    };
    if d.status == "DELETING" {
        return Err(Error::usage(format!("data stream `{name}` is being deleted"))
            .with_hint("wait until it is gone, then run setup again (it creates the stream anew)"));
    }
    let tags = kinesis::tags(&ctx.clients.kinesis, name).await?;
    let mut changes = Vec::new();
    let capacity_asked = s.shards.is_some() || s.on_demand;
    if capacity_asked && (d.on_demand != shards.is_none() || (!d.on_demand && Some(d.shards as u32) != shards)) {
        let have = if d.on_demand { "on-demand".to_string() } else { format!("{} shards", d.shards) };
        changes.push(format!(
            "kept at {have}: setup does not reshard (aws kinesis update-shard-count / update-stream-mode does)"
        ));
    }
    if !policy::is_managed(&tags) {
        changes.insert(0, "used as it is (not made by firehose-kit: teardown leaves it)".into());
        return Ok(step("adopt", changes));
    }
    Ok(step("unchanged", changes))
}

/// Creates the data stream when the plan says so and waits until it is ACTIVE.
pub async fn apply(
    stream: &str,
    plan: &SourcePlan,
    clients: &Clients,
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<()> {
    let task = reporter.task("data stream", None, Unit::Items);
    if plan.step.action == "create" {
        task.set_message(format!("creating {}", plan.data_stream));
        kinesis::create(&clients.kinesis, &plan.data_stream, plan.shards, &policy::tags(stream)).await?;
    }
    let started = std::time::Instant::now();
    let on_poll = |status: &str, elapsed: Duration| {
        task.set_message(format!("{} is {status} ({})", plan.data_stream, format_duration(elapsed)));
    };
    kinesis::wait_until_active(&clients.kinesis, &plan.data_stream, timeout, &on_poll).await?;
    task.finish(format!("{} · ACTIVE after {}", line(&plan.step, true), format_duration(started.elapsed())));
    Ok(())
}
