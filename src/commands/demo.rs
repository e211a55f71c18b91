//! `firehose-kit demo`: setup → send → verify → teardown in one command, with a report of what happened.
//! Without an endpoint or profile it runs against the embedded emulator (started in-process on an ephemeral
//! port with a temporary data dir); otherwise against that backend, with unique resource names, and it always
//! removes what it made — on failure and on Ctrl-C too — unless `--keep`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::send::SendReport;
use super::teardown::{Fate, Options, Removal};
use super::verify::VerifyReport;
use crate::aws::Clients;
use crate::cli::{DemoArgs, SendFormat};
use crate::error::{Error, ExitCode, Result};
use crate::pipeline::records::MAX_RECORD_BYTES;
use crate::settings::{Global, SendSettings, SetupSettings, VerifySettings};
use crate::ui::{Printer, Reporter, format_bytes, format_count, format_duration};
use firehose_kit_emulator::EmulatorHandle;

/// Where the demo runs.
pub enum Backend {
    /// The embedded emulator, started by the caller (the composition root).
    Embedded(EmulatorHandle),
    /// A real account or another endpoint (`--profile`, `--endpoint-url`, `--local`).
    External,
}

/// The demo's report (`-o json`).
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    pub backend: String,
    pub stream: String,
    pub bucket: Option<String>,
    pub send: Option<SendReport>,
    pub verify: Option<VerifyReport>,
    pub teardown: Vec<Removal>,
    pub steps: Vec<(String, u128)>,
    pub verified: bool,
    pub kept: Option<PathBuf>,
    /// The HTML report of the run.
    pub report: Option<PathBuf>,
    /// On a transformed stream: the first line delivered, to show what the function made of the logs.
    pub sample: Option<String>,
    pub interrupted: bool,
}

fn elapsed_ms(t: Instant) -> u128 {
    t.elapsed().as_millis()
}

/// Runs the demo; `cancel` is Ctrl-C.
pub async fn run(
    args: &DemoArgs,
    global: &Global,
    clients: &Clients,
    mut backend: Backend,
    printer: &Printer,
    cancel: CancellationToken,
) -> Result<ExitCode> {
    let reporter = printer.reporter();
    let embedded = matches!(backend, Backend::Embedded(_));
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    // On a real account or a shared endpoint, unique names keep the demo away from anything else there.
    // The role is `firehose-kit-<stream>-delivery`, so the stream's own name carries no `firehose-kit-`.
    let stream = if embedded { global.stream.clone() } else { format!("demo-{suffix}") };
    let state = tempfile::Builder::new()
        .prefix("firehose-kit-demo-")
        .tempdir()
        .map_err(|e| Error::state("create", std::env::temp_dir(), e))?;
    let mut g = global.clone();
    g.stream = stream.clone();
    g.state_dir = state.path().to_path_buf();

    let bucket =
        if embedded { None } else { Some(format!("firehose-kit-demo-{}-{suffix}", clients.account_id().await?)) };
    let setup = demo_setup(args, bucket.clone(), state.path())?;
    let partitioned = setup.partition_by.as_ref().is_some_and(|p| !p.is_empty());
    let backend_name = match &backend {
        Backend::Embedded(h) => format!("the embedded emulator at {}", h.endpoint()),
        Backend::External => clients.backend(),
    };
    let plan = plan_line(args, &backend_name, &stream, partitioned, embedded) + &transform_line(args, &setup);
    printer.status(&plan);

    let mut report = DemoReport {
        backend: backend_name,
        stream: stream.clone(),
        bucket: None,
        send: None,
        verify: None,
        teardown: Vec::new(),
        steps: Vec::new(),
        verified: false,
        kept: None,
        report: None,
        sample: None,
        interrupted: false,
    };
    let outcome = pipeline(args, &g, &setup, clients, reporter.as_ref(), &cancel, &mut report).await;
    report.interrupted = cancel.is_cancelled();

    // Clean up what the demo made, whatever happened above.
    if args.keep {
        let kept = match &mut backend {
            Backend::Embedded(handle) => handle.keep_data_dir(),
            Backend::External => state.path().to_path_buf(),
        };
        let _ = state.keep();
        report.kept = Some(kept);
    } else {
        clean_up(&g, clients, reporter.as_ref(), &mut report, outcome.is_ok()).await?;
    }
    if let Backend::Embedded(handle) = backend {
        handle.shutdown().await;
    }
    outcome?;
    let left = report.teardown.iter().filter(|r| r.fate == Fate::Refused).count();
    if printer.json() {
        printer.result_json(&json!(report));
    } else {
        printer.result(&summary(&report));
    }
    Ok(if report.verified && left == 0 && !report.interrupted { ExitCode::Success } else { ExitCode::Failed })
}

/// The demo's setup, through setup's own resolution (its defaults are setup's). `--transform` without a value
/// deploys the built-in Apache → JSON handler, written into the demo's state dir.
fn demo_setup(args: &DemoArgs, bucket: Option<String>, state: &std::path::Path) -> Result<SetupSettings> {
    let partitioned = !crate::logs::partition::PartitionBy::parse(&args.partition_by)
        .map_err(|e| Error::usage(format!("--partition-by: {e}")))?
        .is_empty();
    let transform = match args.transform.as_deref() {
        Some("") => {
            let path = state.join("apache_to_json.py");
            std::fs::write(&path, crate::transform::APACHE_TO_JSON_PY)
                .map_err(|e| Error::state("write", path.clone(), e))?;
            Some(path.display().to_string())
        }
        other => other.map(str::to_string),
    };
    let setup_args = crate::cli::SetupArgs {
        bucket,
        transform,
        // Dynamic partitioning needs 64 MiB / 60 s (setup's defaults then); the embedded emulator runs it faster.
        buffer_interval: (!partitioned).then_some(args.buffer_interval),
        partition_by: args.partition_by.clone(),
        format: args.format,
        ..Default::default()
    };
    SetupSettings::resolve(&setup_args, &Default::default())
}

/// What transforms the demo's records, for the plan line.
fn transform_line(args: &DemoArgs, setup: &SetupSettings) -> String {
    match (args.transform.as_deref(), &setup.transform) {
        (Some(""), _) => "; records transformed to JSON on Lambda by the built-in Apache → JSON handler (templates/transform/apache_to_json.py)".to_string(),
        (_, Some(crate::transform::Source::Path(p))) => format!("; records transformed on Lambda by {}", p.display()),
        (_, Some(crate::transform::Source::Arn(a))) => format!("; records transformed by {a}"),
        _ => String::new(),
    }
}

/// What the demo is about to do, in one line.
fn plan_line(args: &DemoArgs, backend_name: &str, stream: &str, partitioned: bool, embedded: bool) -> String {
    if partitioned {
        format!(
            "demo on {backend_name}: stream `{stream}` partitioned by {} (64 MiB / 60 s per partition, AWS's minimums{})",
            args.partition_by.join(", "),
            if embedded { "; the embedded emulator runs them 12× faster" } else { "" }
        )
    } else if args.format == Some(crate::cli::RecordFormat::Parquet) {
        format!(
            "demo on {backend_name}: stream `{stream}` converting to Parquet typed by Glue table {}.{}, buffering 64 MiB (conversion's minimum) or {} s",
            crate::logs::table::DEFAULT_DATABASE,
            crate::logs::table::table_name(stream),
            args.buffer_interval.as_secs()
        )
    } else {
        format!(
            "demo on {backend_name}: stream `{stream}` buffering 1 MiB or {} s (a short interval so the demo finishes quickly; the original demo used 60 s)",
            args.buffer_interval.as_secs()
        )
    }
}

/// Tears down what the demo made. A failure is the run's error when the run succeeded; otherwise it is a
/// warning naming the command that finishes the cleanup (the run's own error is what matters).
async fn clean_up(
    g: &Global,
    clients: &Clients,
    reporter: &dyn Reporter,
    report: &mut DemoReport,
    succeeded: bool,
) -> Result<()> {
    let t = Instant::now();
    let opts = Options { yes: true, keep_bucket: false, force: false, no_wait: false, bucket: report.bucket.clone() };
    let never = |_: &str| Some(true);
    match super::teardown::remove(&g.stream, &opts, clients, reporter, &never).await {
        Ok(removals) => report.teardown = removals,
        Err(e) if succeeded => return Err(e),
        Err(e) => reporter.warn(&format!("cleanup failed: {e}; run `{}` to finish it", g.command("teardown --yes"))),
    }
    report.steps.push(("teardown".into(), elapsed_ms(t)));
    Ok(())
}

async fn pipeline(
    args: &DemoArgs,
    g: &Global,
    setup: &SetupSettings,
    clients: &Clients,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
    report: &mut DemoReport,
) -> Result<()> {
    let interrupted = || Error::Interrupted;
    let t = Instant::now();
    let plan = tokio::select! {
        p = super::setup::plan(g, setup, clients) => p?,
        _ = cancel.cancelled() => return Err(interrupted()),
    };
    report.bucket = Some(plan.bucket.clone());
    tokio::select! {
        r = super::setup::apply(setup, plan, clients, reporter) => { r?; }
        _ = cancel.cancelled() => return Err(interrupted()),
    }
    report.steps.push(("setup".into(), elapsed_ms(t)));

    let t = Instant::now();
    let send = SendSettings {
        inputs: Vec::new(),
        generate: Some(args.lines),
        // The same lines every run (their timestamps follow the clock), so the demo's output is repeatable.
        seed: Some(1),
        format: SendFormat::Raw,
        format_explicit: false,
        one_line_per_record: false,
        record_size: MAX_RECORD_BYTES,
        concurrency: 4,
        rate: None,
        follow: false,
        linger: Duration::from_secs(1),
        from_start: true,
        retry_timeout: Duration::from_secs(120),
        partition_key: None,
    };
    let sent = super::send::send(g, &send, clients, reporter, cancel.clone()).await?;
    report.steps.push(("send".into(), elapsed_ms(t)));
    let stopped = cancel.is_cancelled();
    report.send = Some(sent);
    if stopped {
        return Err(interrupted());
    }

    let t = Instant::now();
    let verify = VerifySettings {
        run: None,
        manifests: Vec::new(),
        expect: Vec::new(),
        since: None,
        wait: None,
        no_wait: false,
        strict: false,
        keep: None,
        report: None,
        match_path: None,
    };
    let verified = tokio::select! {
        v = super::verify::verify(g, &verify, clients, reporter) => v?,
        _ = cancel.cancelled() => return Err(interrupted()),
    };
    report.steps.push(("verify".into(), elapsed_ms(t)));
    report.verified = verified.verified;
    if verified.transform.is_some()
        && let Some(first) = verified.objects.first()
    {
        let body = crate::aws::s3::get_object_bytes(&clients.s3, &verified.bucket, &first.key).await?;
        report.sample = body.split(|b| *b == b'\n').next().map(|l| String::from_utf8_lossy(l).into_owned());
    }
    // The run's page: timeline, buffering, objects, cost (written even when verify fails, to see why).
    super::verify::write_html(&verified, &args.report)?;
    report.report = Some(args.report.clone());
    report.verify = Some(verified);
    Ok(())
}

fn summary(r: &DemoReport) -> String {
    let mut out = vec![format!("demo on {}", r.backend)];
    if let (Some(s), Some(v), Some(x)) = (&r.send, &r.verify, r.verify.as_ref().and_then(|v| v.transform.as_ref())) {
        out.push(format!(
            "  {} {} lines sent ({}): {} transformed and delivered ({} lines in S3), {} dropped, {} processing-failed{}",
            if r.verified { "OK:" } else { "FAILED:" },
            format_count(s.lines),
            format_bytes(s.bytes),
            format_count(x.transformed),
            format_count(v.tally.matched),
            format_count(x.dropped),
            format_count(x.processing_failed + x.failed_invocations),
            if x.missing > 0 { format!(", {} missing", format_count(x.missing)) } else { String::new() }
        ));
        out.push(format!("  transformed by {}", x.function));
        if let Some(sample) = &r.sample {
            out.push(format!("  first delivered line: {sample}"));
        }
    } else if let (Some(s), Some(v)) = (&r.send, &r.verify) {
        out.push(format!(
            "  {} {} lines sent ({}) and {} verified in S3{}",
            if r.verified { "OK:" } else { "FAILED:" },
            format_count(s.lines),
            format_bytes(s.bytes),
            format_count(v.tally.matched),
            if v.tally.missing > 0 { format!(", {} missing", format_count(v.tally.missing)) } else { String::new() }
        ));
        out.push(format!("  delivery: {}", v.buffering.sentence()));
        if let Some(c) = &v.conversion {
            out.push(format!(
                "  parquet: {} rows typed by Glue table {}.{} ({}), each line one row with equal typed fields",
                format_count(c.rows),
                c.database,
                c.table,
                c.schema.iter().map(|(n, t)| format!("{n} {t}")).collect::<Vec<_>>().join(", ")
            ));
        }
        if !v.partitions.is_empty() {
            out.push(format!(
                "  partitions: {} (every line checked against its own fields; {} misplaced)",
                v.partitions.len(),
                v.misplaced_lines
            ));
            for p in v.partitions.iter().take(4) {
                out.push(format!(
                    "    s3://{}/{}  {} objects · {} lines",
                    v.bucket,
                    p.prefix,
                    format_count(p.objects),
                    format_count(p.lines)
                ));
            }
        }
        for o in v.objects.iter().take(3) {
            out.push(format!("    s3://{}/{}  {}", v.bucket, o.key, format_bytes(o.size)));
        }
        let ratio = if s.billable_bytes > 0 {
            s.billable_bytes_one_line_per_record as f64 / s.billable_bytes as f64
        } else {
            1.0
        };
        out.push(format!(
            "  cost: {} records billed as {} — one line per record would bill {} ({ratio:.0}× more)",
            format_count(s.records),
            format_bytes(s.billable_bytes),
            format_bytes(s.billable_bytes_one_line_per_record)
        ));
    }
    let steps: Vec<String> = r
        .steps
        .iter()
        .map(|(step, ms)| format!("{step} {}", format_duration(Duration::from_millis(*ms as u64))))
        .collect();
    out.push(format!("  time: {}", steps.join(" · ")));
    if let Some(path) = &r.report {
        out.push(format!("  report: {} (open it in a browser)", path.display()));
    }
    if let Some(dir) = &r.kept {
        out.push(format!("  kept: {} (the emulator's data dir: objects under s3/<bucket>/objects)", dir.display()));
    } else {
        let gone = r.teardown.iter().all(|x| x.fate != Fate::Refused);
        out.push(format!(
            "  cleanup: {}",
            if gone { "everything the demo made was removed" } else { "some resources were left; see above" }
        ));
    }
    out.join("\n")
}
