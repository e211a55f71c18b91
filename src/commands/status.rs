//! `firehose-kit status`: the stream, its settings, what has been delivered so far, and the last send run.

use serde_json::json;

use crate::aws::Clients;
use crate::aws::firehose as fh;
use crate::aws::{logs, s3};
use crate::error::{Error, ExitCode, Result};
use crate::firehose::prefix;
use crate::pipeline::manifest;
use crate::settings::Global;
use crate::ui::{Printer, format_bytes, format_count};

pub async fn run(global: &Global, clients: &Clients, printer: &Printer) -> Result<ExitCode> {
    let Some(info) = fh::describe(&clients.firehose, &global.stream).await? else {
        return Err(Error::failed(format!(
            "delivery stream `{}` does not exist in {}",
            global.stream,
            clients.backend()
        ))
        .with_hint(format!("create it with `{}`", global.command("setup"))));
    };
    let tags = fh::tags(&clients.firehose, &global.stream).await?;
    let dest = info.destination.clone();
    // What is under the stream's static prefix: count, bytes, newest.
    let delivered = match &dest {
        Some(d) => {
            let static_prefix = prefix::static_part_of(d.prefix.as_deref()).to_string();
            match s3::bucket_state(&clients.s3, d.bucket()).await? {
                s3::BucketState::Exists => {
                    let objects = s3::list_objects(&clients.s3, d.bucket(), &static_prefix).await?;
                    let stream_objects: Vec<_> = objects
                        .iter()
                        .filter(|o| o.key.rsplit('/').next().is_some_and(|n| n.starts_with(&format!("{}-", info.name))))
                        .collect();
                    let bytes: u64 = stream_objects.iter().map(|o| o.size).sum();
                    let newest = stream_objects.iter().filter_map(|o| o.last_modified).max();
                    Some((stream_objects.len(), bytes, newest, static_prefix))
                }
                _ => None,
            }
        }
        None => None,
    };
    let (last_run, runs) = manifest::latest_run(&global.state_dir, &global.stream);
    if let Some(w) = runs.warning() {
        printer.reporter().warn(&w);
    }
    let role = dest.as_ref().map(|d| d.role_arn.rsplit('/').next().unwrap_or(&d.role_arn).to_string());
    let speed = clients.speed.speed();
    // The last hour of delivery errors, from the stream's error log.
    let now = chrono::Utc::now();
    let errors = match dest.as_ref().and_then(|d| d.error_logging.clone()) {
        Some(l) => logs::delivery_errors(&clients.logs, &l.group, &l.stream, now - chrono::Duration::hours(1), now)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("cannot read the error log: {e}");
                None
            }),
        None => None,
    };
    // While errors keep coming (the last within two minutes), undelivered data is at least as old as the first.
    // An object newer than the last error means delivery has resumed.
    let newest_object = delivered.as_ref().and_then(|(_, _, newest, _)| *newest);
    let failing_since = errors.as_ref().and_then(|list| {
        let last = list.iter().map(|e| e.last).max()?;
        let ongoing = now - last < chrono::Duration::minutes(2) && newest_object.is_none_or(|n| n < last);
        ongoing.then(|| list.iter().map(|e| e.first).min()).flatten()
    });

    if printer.json() {
        printer.result_json(&json!({
            "stream": info.name,
            "arn": info.arn,
            "status": info.status,
            "version": info.version_id,
            "created": info.created,
            "failure": info.failure,
            "destination": dest,
            "role": role,
            "tags": tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "delivered": delivered.as_ref().map(|(n, b, newest, p)| json!({"objects": n, "bytes": b, "newest": newest, "prefix": p})),
            "error_logging": dest.as_ref().and_then(|d| d.error_logging.clone()),
            "errors_last_hour": errors,
            "failing_since": failing_since,
            "emulator_speed": speed,
            "last_run": last_run,
        }));
        return Ok(ExitCode::Success);
    }
    let mut out = vec![
        format!("stream      {} ({})", info.name, info.status),
        format!("arn         {}", info.arn),
        format!("version     {}", info.version_id),
    ];
    if let Some(f) = &info.failure {
        out.push(format!("failure     {f}"));
    }
    if let Some(d) = &dest {
        out.push(format!("bucket      s3://{}/{}", d.bucket(), d.prefix.as_deref().unwrap_or("")));
        out.push(format!("buffering   {} MiB or {} s, whichever first", d.buffer_size_mib, d.buffer_interval_s));
        if speed != 1.0 {
            out.push(format!(
                "speed       the emulator runs {speed}× faster than AWS: the {} s interval flushes after {:.1} s",
                d.buffer_interval_s,
                d.buffer_interval_s as f64 / speed
            ));
        }
        if let Some(q) = &d.partition_query {
            out.push(format!("partitions  by {q} under {}", d.prefix.as_deref().unwrap_or("")));
        }
        out.push(format!(
            "compression {}",
            if d.compression == crate::firehose::types::Compression::Uncompressed {
                "none"
            } else {
                d.compression.as_str()
            }
        ));
        if let Some(e) = &d.error_prefix {
            out.push(format!("errors      s3://{}/{e}", d.bucket()));
        }
        out.push(format!("role        {}", role.clone().unwrap_or_default()));
        out.push(match &d.error_logging {
            Some(l) => format!("error log   {l}"),
            None => "error log   off: delivery errors cannot be seen".into(),
        });
    }
    match &errors {
        Some(list) if list.is_empty() => out.push("errors      none in the last hour".into()),
        Some(list) => {
            for e in list {
                out.push(format!(
                    "errors      {} × {} in the last hour (last {}): {}",
                    e.code,
                    e.count,
                    e.last.format("%H:%M:%S UTC"),
                    e.hint.as_deref().unwrap_or(&e.message)
                ));
            }
        }
        None => {}
    }
    if let Some(since) = failing_since {
        out.push(format!(
            "undelivered data waiting since {} ({} ago, when delivery began to fail); Firehose drops it 24 h after it arrived",
            since.format("%H:%M:%S UTC"),
            crate::ui::format_duration((now - since).to_std().unwrap_or_default())
        ));
    }
    let managed = crate::aws::policy::is_managed(&tags);
    out.push(format!("managed     {}", if managed { "yes (firehose-kit:managed)" } else { "no" }));
    match &delivered {
        Some((n, bytes, newest, _)) => out.push(format!(
            "delivered   {} objects, {}{}",
            format_count(*n as u64),
            format_bytes(*bytes),
            newest.map(|t| format!(", newest {}", t.format("%Y-%m-%d %H:%M:%S UTC"))).unwrap_or_default()
        )),
        None => out.push("delivered   (bucket not found)".into()),
    }
    match &last_run {
        Some(r) => out.push(format!(
            "last run    {} ({:?}): {} lines, {} records, {} sent{}",
            r.run_id,
            r.status,
            format_count(r.lines),
            format_count(r.records),
            format_bytes(r.bytes),
            r.ended.map(|t| format!(", ended {}", t.format("%Y-%m-%d %H:%M:%S UTC"))).unwrap_or_default()
        )),
        None => out.push(format!("last run    none in {}", global.state_dir.display())),
    }
    printer.result(&out.join("\n"));
    Ok(ExitCode::Success)
}
