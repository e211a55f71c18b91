//! `firehose-kit teardown`: remove exactly what setup made — the stream (waiting until it is gone), the role
//! (inline and attached policies first), the error log group, and the bucket (emptied of every version and delete marker first).
//! Only resources tagged `firehose-kit:managed=true` are touched unless `--force`; missing resources are
//! reported as already gone, so teardown is safe to re-run.

use crate::firehose::types::StreamStatus;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::aws::Clients;
use crate::aws::firehose as fh;
use crate::aws::policy;
use crate::aws::{iam, logs, s3};
use crate::cli::TeardownArgs;
use crate::error::{Error, ExitCode, Result};
use crate::settings::{self, Global};
use crate::ui::{Printer, Reporter, Unit, format_bytes, format_count, format_duration};

/// How long teardown waits for a stream to disappear.
const STREAM_GONE_TIMEOUT: Duration = Duration::from_secs(600);
/// DeleteObjects takes at most this many keys.
const DELETE_BATCH: usize = 1000;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    Deleted,
    AlreadyGone,
    Kept,
    /// Not deleted: it lacks the managed tag, belongs to someone else, or the user declined.
    Refused,
}

#[derive(Debug, Clone, Serialize)]
pub struct Removal {
    pub resource: &'static str,
    pub name: String,
    pub fate: Fate,
    pub detail: Option<String>,
}

impl Removal {
    fn line(&self) -> String {
        let fate = match self.fate {
            Fate::Deleted => "deleted",
            Fate::AlreadyGone => "already gone",
            Fate::Kept => "kept",
            Fate::Refused => "left in place",
        };
        let detail = self.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
        format!("{:<9} {}  {fate}{detail}", self.resource, self.name)
    }
}

/// Options teardown runs with (resolved from the command line).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub yes: bool,
    pub keep_bucket: bool,
    pub force: bool,
    pub no_wait: bool,
    pub bucket: Option<String>,
}

impl From<&TeardownArgs> for Options {
    fn from(a: &TeardownArgs) -> Self {
        Options { yes: a.yes, keep_bucket: a.keep_bucket, force: a.force, no_wait: a.no_wait, bucket: a.bucket.clone() }
    }
}

fn not_managed(kind: &str) -> String {
    format!(
        "no firehose-kit:managed tag: not made by firehose-kit, so not touched; delete the {kind} yourself or pass --force"
    )
}

/// Removes the stream, role and bucket of `stream`; `confirm` is asked before deleting a bucket with objects.
pub async fn remove(
    stream: &str,
    opts: &Options,
    clients: &Clients,
    reporter: &dyn Reporter,
    confirm: &dyn Fn(&str) -> Option<bool>,
) -> Result<Vec<Removal>> {
    let account_id = clients.account_id().await?;
    let role = settings::role_name(stream)?;
    let mut removals = Vec::new();

    // Stream first: it writes into the bucket and uses the role.
    let info = fh::describe(&clients.firehose, stream).await?;
    let mut bucket_from_stream = None;
    match info {
        None => {
            removals.push(Removal { resource: "stream", name: stream.into(), fate: Fate::AlreadyGone, detail: None })
        }
        Some(info) => {
            bucket_from_stream = info.destination.as_ref().map(|d| d.bucket().to_string());
            let managed = policy::is_managed(&fh::tags(&clients.firehose, stream).await?);
            if !managed && !opts.force {
                removals.push(Removal {
                    resource: "stream",
                    name: stream.into(),
                    fate: Fate::Refused,
                    detail: Some(not_managed("stream")),
                });
            } else {
                let task = reporter.task("stream", None, Unit::Items);
                if info.status == StreamStatus::Creating {
                    // DeleteDeliveryStream is refused while CREATING.
                    task.set_message(format!("waiting for {stream} to finish CREATING before deleting it"));
                    fh::wait_until_active(&clients.firehose, stream, STREAM_GONE_TIMEOUT, &|_, _| {}).await?;
                }
                let deleted = fh::delete(&clients.firehose, stream).await?;
                if opts.no_wait {
                    task.finish(format!("{stream} DELETING (not waiting: --no-wait)"));
                } else {
                    let on_poll = |status: &StreamStatus, elapsed: Duration| {
                        task.set_message(format!("{stream} is {status} ({})", format_duration(elapsed)));
                    };
                    fh::wait_until_gone(&clients.firehose, stream, STREAM_GONE_TIMEOUT, &on_poll).await?;
                    task.finish(format!("{stream} gone"));
                }
                let fate = if deleted { Fate::Deleted } else { Fate::AlreadyGone };
                removals.push(Removal { resource: "stream", name: stream.into(), fate, detail: None });
            }
        }
    }
    reporter.note(&removals[0].line());

    // Role.
    let removal = match iam::get_role(&clients.iam, &role).await? {
        None => Removal { resource: "role", name: role.clone(), fate: Fate::AlreadyGone, detail: None },
        Some(r) if !policy::is_managed(&r.tags) && !opts.force => {
            Removal { resource: "role", name: role.clone(), fate: Fate::Refused, detail: Some(not_managed("role")) }
        }
        Some(_) => {
            let fate = if iam::delete_role(&clients.iam, &role).await? { Fate::Deleted } else { Fate::AlreadyGone };
            Removal { resource: "role", name: role.clone(), fate, detail: None }
        }
    };
    reporter.note(&removal.line());
    removals.push(removal);

    // Error log group (setup's, tagged).
    let group = crate::firehose::failures::default_log_group(stream);
    let removal = match logs::group(&clients.logs, &group).await? {
        None => Removal { resource: "log group", name: group, fate: Fate::AlreadyGone, detail: None },
        Some(g) if !policy::is_managed(&g.tags) && !opts.force => {
            Removal { resource: "log group", name: group, fate: Fate::Refused, detail: Some(not_managed("log group")) }
        }
        Some(_) => {
            let fate = if logs::delete_group(&clients.logs, &group).await? { Fate::Deleted } else { Fate::AlreadyGone };
            Removal { resource: "log group", name: group, fate, detail: None }
        }
    };
    reporter.note(&removal.line());
    removals.push(removal);

    // Bucket.
    let bucket = opts
        .bucket
        .clone()
        .or(bucket_from_stream)
        .unwrap_or_else(|| settings::default_bucket(&account_id, &clients.region));
    let removal = if opts.keep_bucket {
        Removal { resource: "bucket", name: bucket, fate: Fate::Kept, detail: Some("--keep-bucket".into()) }
    } else {
        remove_bucket(&bucket, opts, clients, reporter, confirm).await?
    };
    reporter.note(&removal.line());
    removals.push(removal);
    Ok(removals)
}

async fn remove_bucket(
    bucket: &str,
    opts: &Options,
    clients: &Clients,
    reporter: &dyn Reporter,
    confirm: &dyn Fn(&str) -> Option<bool>,
) -> Result<Removal> {
    let removal = |fate, detail: Option<String>| Removal { resource: "bucket", name: bucket.to_string(), fate, detail };
    match s3::bucket_state(&clients.s3, bucket).await? {
        s3::BucketState::Missing => return Ok(removal(Fate::AlreadyGone, None)),
        s3::BucketState::Forbidden => {
            return Ok(removal(Fate::Refused, Some("belongs to another account".into())));
        }
        s3::BucketState::Exists => {}
    }
    if !policy::is_managed(&s3::bucket_tags(&clients.s3, bucket).await?) && !opts.force {
        return Ok(removal(Fate::Refused, Some(not_managed("bucket"))));
    }
    // Late deliveries can land while we empty it: a few rounds of empty + delete.
    let mut deleted_objects = 0usize;
    let mut deleted_bytes = 0u64;
    for _round in 0..5 {
        let versions = s3::list_versions(&clients.s3, bucket).await?;
        if !versions.is_empty() {
            let total_bytes: u64 = versions.iter().map(|v| v.2).sum();
            if deleted_objects == 0 && !opts.yes {
                let question = format!(
                    "bucket `{bucket}` holds {} objects ({}). Delete them and the bucket?",
                    format_count(versions.len() as u64),
                    format_bytes(total_bytes)
                );
                match confirm(&question) {
                    Some(true) => {}
                    Some(false) => {
                        return Ok(removal(Fate::Refused, Some("you chose to keep it".into())));
                    }
                    None => {
                        return Ok(removal(
                            Fate::Refused,
                            Some(format!(
                                "holds {} objects ({}); re-run with --yes to delete them, or --keep-bucket",
                                format_count(versions.len() as u64),
                                format_bytes(total_bytes)
                            )),
                        ));
                    }
                }
            }
            let task = reporter.task("empty bucket", Some(versions.len() as u64), Unit::Items);
            let mut done = 0u64;
            for chunk in versions.chunks(DELETE_BATCH) {
                let failed = s3::delete_objects(&clients.s3, bucket, chunk).await?;
                if failed > 0 {
                    return Err(Error::failed(format!("{failed} objects in bucket `{bucket}` could not be deleted"))
                        .with_hint("check the bucket for object locks or legal holds, then re-run teardown"));
                }
                done += chunk.len() as u64;
                task.set_position(done);
            }
            task.finish(format!("{} objects deleted", format_count(done)));
            deleted_objects += versions.len();
            deleted_bytes += total_bytes;
        }
        match s3::delete_bucket(&clients.s3, bucket).await {
            Ok(true) => {
                let detail = (deleted_objects > 0).then(|| {
                    format!("{} objects, {}", format_count(deleted_objects as u64), format_bytes(deleted_bytes))
                });
                return Ok(removal(Fate::Deleted, detail));
            }
            Ok(false) => return Ok(removal(Fate::AlreadyGone, None)),
            Err(e) if e.aws_code() == Some("BucketNotEmpty") => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(removal(Fate::Refused, Some("objects kept arriving while it was emptied; re-run teardown".into())))
}

pub async fn run(global: &Global, args: &TeardownArgs, clients: &Clients, printer: &Printer) -> Result<ExitCode> {
    printer.status(&format!("teardown `{}` via {}", global.stream, clients.backend()));
    let reporter = printer.reporter();
    let confirm = |q: &str| printer.confirm(q);
    let removals = remove(&global.stream, &Options::from(args), clients, reporter.as_ref(), &confirm).await?;
    let left = removals.iter().filter(|r| r.fate == Fate::Refused).count();
    if printer.json() {
        printer.result_json(&json!({"stream": global.stream, "resources": removals, "left_behind": left}));
    } else {
        let summary = if left == 0 {
            "teardown complete: nothing firehose-kit made is left".to_string()
        } else {
            format!("teardown left {left} resource(s) in place (see above)")
        };
        printer.result(&summary);
    }
    Ok(if left == 0 { ExitCode::Success } else { ExitCode::Failed })
}
