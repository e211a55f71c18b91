//! `firehose-kit teardown`: remove exactly what setup made — the stream (waiting until it is gone), the role
//! (inline and attached policies first), the transformation function and its execution role, the error log group, and the bucket (emptied of every version and delete marker first).
//! Only resources tagged `firehose-kit:managed=true` are touched unless `--force`; missing resources are
//! reported as already gone, so teardown is safe to re-run.

use crate::firehose::types::StreamStatus;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::aws::Clients;
use crate::aws::firehose as fh;
use crate::aws::policy;
use crate::aws::{glue, iam, kinesis, lambda, logs, s3};
use crate::cli::TeardownArgs;
use crate::error::{Error, ExitCode, Result};
use crate::settings::{self, Global};
use crate::ui::{Printer, Reporter, Unit, format_bytes, format_duration, plural};

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

/// Why something teardown did not make is kept (exit 0: it was never firehose-kit's to remove). No hint to
/// delete it: `--force` exists for a tag lost by hand, not as advice.
const NOT_MADE: &str = "no firehose-kit:managed tag: not made by firehose-kit, so left as it is";

/// Removes the stream, role, log group and bucket of `stream`; `confirm` is asked before deleting objects.
pub async fn remove(
    stream: &str,
    opts: &Options,
    clients: &Clients,
    reporter: &dyn Reporter,
    confirm: &dyn Fn(&str) -> Option<bool>,
) -> Result<Vec<Removal>> {
    let account_id = clients.account_id().await?;
    // Stream first: it writes into the bucket and uses the role.
    let (stream_removal, info) = remove_stream(stream, opts, clients, reporter).await?;
    reporter.note(&stream_removal.line());
    let mut removals = vec![stream_removal];
    if let Some(source) = info.as_ref().and_then(|i| i.source.as_ref()) {
        let removal = remove_data_stream(stream, source, opts, clients).await?;
        reporter.note(&removal.line());
        removals.push(removal);
    }
    let role = remove_role(stream, opts, clients).await?;
    reporter.note(&role.line());
    removals.push(role);
    for removal in remove_transform(stream, opts, clients).await? {
        reporter.note(&removal.line());
        removals.push(removal);
    }
    let conversion = info.as_ref().and_then(|i| i.destination.as_ref()).and_then(|d| d.conversion.as_ref());
    for removal in remove_schema(stream, conversion, opts, clients).await? {
        reporter.note(&removal.line());
        removals.push(removal);
    }
    let logging_off = info.as_ref().is_some_and(|i| i.destination.as_ref().is_some_and(|d| d.error_logging.is_none()));
    if let Some(group) = remove_log_group(stream, opts, clients, logging_off).await? {
        reporter.note(&group.line());
        removals.push(group);
    }
    let bucket = opts
        .bucket
        .clone()
        .or_else(|| info.as_ref().and_then(|i| i.destination.as_ref()).map(|d| d.bucket().to_string()))
        .unwrap_or_else(|| settings::default_bucket(&account_id, &clients.region));
    let removal = if opts.keep_bucket {
        Removal { resource: "bucket", name: bucket, fate: Fate::Kept, detail: Some("--keep-bucket".into()) }
    } else {
        let others = fh::streams_delivering_to(&clients.firehose, &bucket, stream).await?;
        if others.is_empty() {
            remove_bucket(&bucket, opts, clients, reporter, confirm).await?
        } else {
            remove_stream_objects(&bucket, stream, &others, opts, clients, reporter, confirm).await?
        }
    };
    reporter.note(&removal.line());
    removals.push(removal);
    Ok(removals)
}

/// Deletes the stream (waiting until it is gone unless `--no-wait`); returns what it was, for the bucket and
/// log group steps.
async fn remove_stream(
    stream: &str,
    opts: &Options,
    clients: &Clients,
    reporter: &dyn Reporter,
) -> Result<(Removal, Option<fh::StreamInfo>)> {
    let removal = |fate, detail: Option<String>| Removal { resource: "stream", name: stream.into(), fate, detail };
    let Some(info) = fh::describe(&clients.firehose, stream).await? else {
        return Ok((removal(Fate::AlreadyGone, None), None));
    };
    let managed = policy::is_managed(&fh::tags(&clients.firehose, stream).await?);
    if !managed && !opts.force {
        return Ok((removal(Fate::Kept, Some(NOT_MADE.into())), Some(info)));
    }
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
    Ok((removal(fate, None), Some(info)))
}

/// The data stream in front of a chained pipeline: deleted when setup made it for this stream and no other
/// delivery stream reads it; an adopted one (no managed tag) is left.
async fn remove_data_stream(
    stream: &str,
    source: &fh::SourceSpec,
    opts: &Options,
    clients: &Clients,
) -> Result<Removal> {
    let name = source.stream_name().to_string();
    let removal = |fate, detail: Option<String>| Removal { resource: "data stream", name: name.clone(), fate, detail };
    if kinesis::describe(&clients.kinesis, &name).await?.is_none() {
        return Ok(removal(Fate::AlreadyGone, None));
    }
    let tags = kinesis::tags(&clients.kinesis, &name).await?;
    if !policy::is_managed(&tags) && !opts.force {
        return Ok(removal(Fate::Kept, Some(NOT_MADE.into())));
    }
    let readers = fh::streams_reading(&clients.firehose, &source.stream_arn, stream).await?;
    if !readers.is_empty() {
        return Ok(removal(Fate::Kept, Some(format!("still read by delivery stream {}", readers.join(", ")))));
    }
    let fate = if kinesis::delete(&clients.kinesis, &name).await? { Fate::Deleted } else { Fate::AlreadyGone };
    Ok(removal(fate, None))
}

async fn remove_role(stream: &str, opts: &Options, clients: &Clients) -> Result<Removal> {
    let role = settings::role_name(stream)?;
    let removal = |fate, detail: Option<String>| Removal { resource: "role", name: role.clone(), fate, detail };
    Ok(match iam::get_role(&clients.iam, &role).await? {
        None => removal(Fate::AlreadyGone, None),
        Some(r) if !policy::is_managed(&r.tags) && !opts.force => removal(Fate::Kept, Some(NOT_MADE.into())),
        Some(_) => {
            let fate = if iam::delete_role(&clients.iam, &role).await? { Fate::Deleted } else { Fate::AlreadyGone };
            removal(fate, None)
        }
    })
}

/// The transformation function and its execution role `setup --transform PATH` deployed (an existing function
/// given by ARN is never touched: it has another name). Nothing to say when neither exists.
async fn remove_transform(stream: &str, opts: &Options, clients: &Clients) -> Result<Vec<Removal>> {
    let Ok(name) = crate::transform::function_name(stream) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    let removal = |resource, fate, detail: Option<String>| Removal { resource, name: name.clone(), fate, detail };
    if let Some(f) = lambda::get_function(&clients.lambda, &name).await? {
        let users = fh::streams_transforming_with(&clients.firehose, &name, stream).await?;
        if !policy::is_managed(&f.tags) && !opts.force {
            out.push(removal("function", Fate::Kept, Some(NOT_MADE.into())));
        } else if !users.is_empty() {
            // Another stream transforms with it (setup --transform ARN): the function and the role it runs as stay.
            let detail = format!(
                "still used by stream {}",
                users.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", ")
            );
            out.push(removal("function", Fate::Kept, Some(detail.clone())));
            if iam::get_role(&clients.iam, &name).await?.is_some() {
                out.push(removal("exec role", Fate::Kept, Some(detail)));
            }
            return Ok(out);
        } else {
            let fate = if lambda::delete(&clients.lambda, &name).await? { Fate::Deleted } else { Fate::AlreadyGone };
            out.push(removal("function", fate, None));
            // Lambda makes the function's log group (untagged): it goes with the function setup made.
            let group = format!("/aws/lambda/{name}");
            if logs::group(&clients.logs, &group).await?.is_some() {
                let fate =
                    if logs::delete_group(&clients.logs, &group).await? { Fate::Deleted } else { Fate::AlreadyGone };
                out.push(Removal { resource: "fn logs", name: group, fate, detail: None });
            }
        }
    }
    if let Some(r) = iam::get_role(&clients.iam, &name).await? {
        out.push(if !policy::is_managed(&r.tags) && !opts.force {
            removal("exec role", Fate::Kept, Some(NOT_MADE.into()))
        } else {
            let fate = if iam::delete_role(&clients.iam, &name).await? { Fate::Deleted } else { Fate::AlreadyGone };
            removal("exec role", fate, None)
        });
    }
    Ok(out)
}

/// The Glue table `setup --format parquet` made for this stream (marked so in its parameters), and its database
/// when setup made it and no other table is left in it. A table another stream's conversion still reads, or one
/// marked as another stream's, is kept even with `--force`; one setup adopted (not made by firehose-kit) is kept
/// as setup said. Without the stream (a re-run) the default table is looked for, and nothing is said of a table
/// that is not this stream's.
async fn remove_schema(
    stream: &str,
    conversion: Option<&fh::ConversionSpec>,
    opts: &Options,
    clients: &Clients,
) -> Result<Vec<Removal>> {
    use crate::logs::table::{DEFAULT_DATABASE, table_name};
    let (database, table) = match conversion {
        Some(c) => (c.database.clone(), c.table.clone()),
        None => (DEFAULT_DATABASE.to_string(), table_name(stream)),
    };
    let qualified = format!("{database}.{table}");
    let kept =
        |detail: String| Removal { resource: "table", name: qualified.clone(), fate: Fate::Kept, detail: Some(detail) };
    let mut out = Vec::new();
    match glue::table(&clients.glue, &database, &table).await? {
        None if conversion.is_none() => return Ok(out),
        None => out.push(Removal { resource: "table", name: qualified.clone(), fate: Fate::AlreadyGone, detail: None }),
        Some(t) if conversion.is_none() && !t.belongs_to(stream) => return Ok(out),
        Some(t) if t.parameters.get(glue::STREAM_PARAMETER).is_some_and(|s| s != stream) => {
            let owner = &t.parameters[glue::STREAM_PARAMETER];
            out.push(kept(format!("made by setup for stream {owner}")));
            return Ok(out);
        }
        Some(t) if !t.belongs_to(stream) && !opts.force => {
            out.push(kept("not made by firehose-kit: setup used it as it is, and so teardown leaves it".into()));
            return Ok(out);
        }
        Some(_) => {
            let users = fh::streams_converting_with(&clients.firehose, &database, &table, stream).await?;
            if !users.is_empty() {
                out.push(kept(format!("still read by delivery stream {}", users.join(", "))));
                return Ok(out);
            }
            let deleted = glue::delete_table(&clients.glue, &database, &table).await?;
            let fate = if deleted { Fate::Deleted } else { Fate::AlreadyGone };
            out.push(Removal { resource: "table", name: qualified.clone(), fate, detail: None });
        }
    }
    out.extend(remove_glue_database(&database, opts, clients).await?);
    Ok(out)
}

/// The Glue database of a removed table: deleted when setup made it and it holds no other table.
async fn remove_glue_database(database: &str, opts: &Options, clients: &Clients) -> Result<Option<Removal>> {
    let removal =
        |fate, detail: Option<String>| Removal { resource: "database", name: database.to_string(), fate, detail };
    Ok(match glue::database(&clients.glue, database).await? {
        None => None,
        Some(p) if p.get(glue::MANAGED_PARAMETER).is_none_or(|v| v != "true") && !opts.force => Some(removal(
            Fate::Kept,
            Some("not made by firehose-kit: setup used it as it is, and so teardown leaves it".into()),
        )),
        Some(_) if glue::has_tables(&clients.glue, database).await? => {
            Some(removal(Fate::Kept, Some("it holds other tables".into())))
        }
        Some(_) => {
            let deleted = glue::delete_database(&clients.glue, database).await?;
            Some(removal(if deleted { Fate::Deleted } else { Fate::AlreadyGone }, None))
        }
    })
}

/// The error log group setup made (tagged). `None` when there is nothing to say: the stream did not log errors
/// and no such group exists.
async fn remove_log_group(
    stream: &str,
    opts: &Options,
    clients: &Clients,
    logging_off: bool,
) -> Result<Option<Removal>> {
    let group = crate::firehose::failures::default_log_group(stream);
    let removal = |fate, detail: Option<String>| Removal { resource: "log group", name: group.clone(), fate, detail };
    Ok(match logs::group(&clients.logs, &group).await? {
        None if logging_off => None,
        None => Some(removal(Fate::AlreadyGone, None)),
        Some(g) if !policy::is_managed(&g.tags) && !opts.force => Some(removal(Fate::Kept, Some(NOT_MADE.into()))),
        Some(_) => {
            let fate = if logs::delete_group(&clients.logs, &group).await? { Fate::Deleted } else { Fate::AlreadyGone };
            Some(removal(fate, None))
        }
    })
}

/// Asks before deleting `count` objects; `Err(removal)` says why nothing is deleted.
fn ask(
    question: String,
    count: usize,
    bytes: u64,
    opts: &Options,
    confirm: &dyn Fn(&str) -> Option<bool>,
    refused: impl Fn(Fate, Option<String>) -> Removal,
) -> std::result::Result<(), Removal> {
    if opts.yes {
        return Ok(());
    }
    match confirm(&question) {
        Some(true) => Ok(()),
        Some(false) => Err(refused(Fate::Refused, Some("you chose to keep it".into()))),
        None => Err(refused(
            Fate::Refused,
            Some(format!(
                "holds {} ({}); without a terminal to ask, re-run with --yes to delete them, or --keep-bucket",
                plural(count as u64, "object"),
                format_bytes(bytes)
            )),
        )),
    }
}

/// Deletes object versions in batches of 1,000, with progress.
async fn delete_versions(
    bucket: &str,
    versions: &[(String, Option<String>, u64)],
    clients: &Clients,
    reporter: &dyn Reporter,
) -> Result<()> {
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
    task.finish(format!("{} deleted", plural(done, "object")));
    Ok(())
}

/// A bucket other streams still deliver to: only this stream's objects go, the bucket stays.
async fn remove_stream_objects(
    bucket: &str,
    stream: &str,
    others: &[String],
    opts: &Options,
    clients: &Clients,
    reporter: &dyn Reporter,
    confirm: &dyn Fn(&str) -> Option<bool>,
) -> Result<Removal> {
    let users = others.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", ");
    let removal = |fate, detail: Option<String>| Removal { resource: "bucket", name: bucket.to_string(), fate, detail };
    let shared = format!("still used by stream {users}");
    match s3::bucket_state(&clients.s3, bucket).await? {
        s3::BucketState::Exists => {}
        _ => return Ok(removal(Fate::Kept, Some(format!("{shared}; it does not exist now")))),
    }
    let mut names: Vec<&str> = others.iter().map(String::as_str).collect();
    names.push(stream);
    let ours: Vec<(String, Option<String>, u64)> = s3::list_versions(&clients.s3, bucket)
        .await?
        .into_iter()
        .filter(|(key, _, _)| crate::firehose::keys::owner(key, &names) == Some(stream))
        .collect();
    if ours.is_empty() {
        return Ok(removal(Fate::Kept, Some(format!("{shared}; it holds no objects of `{stream}`"))));
    }
    let bytes: u64 = ours.iter().map(|v| v.2).sum();
    let question = format!(
        "bucket `{bucket}` is {shared}: delete the {} ({}) `{stream}` delivered there and keep the bucket?",
        plural(ours.len() as u64, "object"),
        format_bytes(bytes)
    );
    if let Err(refused) = ask(question, ours.len(), bytes, opts, confirm, removal) {
        return Ok(refused);
    }
    delete_versions(bucket, &ours, clients, reporter).await?;
    Ok(removal(
        Fate::Kept,
        Some(format!(
            "{shared}; the {} ({}) of `{stream}` deleted",
            plural(ours.len() as u64, "object"),
            format_bytes(bytes)
        )),
    ))
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
            return Ok(removal(Fate::Kept, Some("belongs to another account".into())));
        }
        s3::BucketState::Exists => {}
    }
    if !policy::is_managed(&s3::bucket_tags(&clients.s3, bucket).await?) && !opts.force {
        return Ok(removal(Fate::Kept, Some(NOT_MADE.into())));
    }
    // Late deliveries can land while we empty it: a few rounds of empty + delete.
    let mut deleted_objects = 0usize;
    let mut deleted_bytes = 0u64;
    for _round in 0..5 {
        let versions = s3::list_versions(&clients.s3, bucket).await?;
        if !versions.is_empty() {
            let total_bytes: u64 = versions.iter().map(|v| v.2).sum();
            if deleted_objects == 0 {
                let question = format!(
                    "bucket `{bucket}` holds {} ({}). Delete them and the bucket?",
                    plural(versions.len() as u64, "object"),
                    format_bytes(total_bytes)
                );
                if let Err(refused) = ask(question, versions.len(), total_bytes, opts, confirm, removal) {
                    return Ok(refused);
                }
            }
            delete_versions(bucket, &versions, clients, reporter).await?;
            deleted_objects += versions.len();
            deleted_bytes += total_bytes;
        }
        match s3::delete_bucket(&clients.s3, bucket).await {
            Ok(true) => {
                let detail = (deleted_objects > 0)
                    .then(|| format!("{}, {}", plural(deleted_objects as u64, "object"), format_bytes(deleted_bytes)));
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
        printer.result(&summary(&removals));
    }
    Ok(if left == 0 { ExitCode::Success } else { ExitCode::Failed })
}

/// The last line: what is gone, and what stays and why (kept on purpose, or left behind).
fn summary(removals: &[Removal]) -> String {
    let left = removals.iter().filter(|r| r.fate == Fate::Refused).count();
    if left > 0 {
        return format!("teardown left {} in place (see above)", plural(left as u64, "resource"));
    }
    let kept: Vec<String> = removals
        .iter()
        .filter(|r| r.fate == Fate::Kept)
        .map(|r| format!("{} `{}` kept ({})", r.resource, r.name, r.detail.as_deref().unwrap_or("as asked")))
        .collect();
    if kept.is_empty() {
        "teardown complete: nothing firehose-kit made is left".to_string()
    } else {
        format!("teardown complete: {}; everything else firehose-kit made is gone", kept.join("; "))
    }
}
