//! `firehose-kit verify`: list and download what the stream delivered, and prove every sent line arrived —
//! exactly which are missing, duplicated (Firehose is at-least-once) or extra — and show how delivery followed
//! the buffering hints. It waits for late objects (they arrive up to IntervalInSeconds after the last record).

mod conclude;
mod converted;
mod partitioned;
mod poll;
mod render;
mod runs;
mod scope;
mod transformed;

pub use render::{summary, verdict, write_html};

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::aws::Clients;
use crate::aws::firehose as fh;
use crate::delivery::compare::Tally;
use crate::delivery::partitions::{ErrorRecords, PartitionSummary};
use crate::delivery::report::{Buffering, DeliveredObject};
use crate::error::{Error, ExitCode, Result};
use crate::pipeline::manifest::RunManifest;
use crate::settings::{Global, VerifySettings};
use crate::ui::{Printer, Reporter, Unit, format_count, plural};

use conclude::conclude;
use poll::poll;
use scope::{expectations, layout};

/// What verify compared against.
#[derive(Debug, Clone, Serialize)]
pub struct Basis {
    pub runs: Vec<String>,
    pub expect_files: Vec<PathBuf>,
    pub window_start: Option<DateTime<Utc>>,
}

/// The verify report (`-o json`).
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub stream: String,
    pub bucket: String,
    pub basis: Basis,
    #[serde(flatten)]
    pub tally: Tally,
    pub verified: bool,
    pub strict: bool,
    pub objects: Vec<DeliveredObject>,
    pub delivered_bytes: u64,
    pub buffering: Buffering,
    pub layout_ok: bool,
    pub error_objects: Vec<String>,
    pub missing_lines: Vec<String>,
    pub waited_s: f64,
    /// The destination bucket did not exist (at the last listing).
    pub bucket_missing: bool,
    /// The emulator's `--speed` (1 on AWS).
    pub speed: f64,
    /// A partitioned stream's partitions: objects, lines and how they were cut, per partition prefix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<PartitionSummary>,
    /// Lines found in a partition their own fields do not map to (a partitioned stream; any fails verify).
    pub misplaced_lines: u64,
    pub misplaced_example: Option<String>,
    /// Records in the error output, by error code (a partitioned stream).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_records: Vec<ErrorRecords>,
    /// The stream's delivery errors over the run's window and what the role lacks (see `aws::diagnosis`).
    pub causes: Option<crate::aws::diagnosis::Causes>,
    /// On a transformed stream: every sent line accounted for as transformed, dropped, processing-failed or
    /// missing.
    pub transform: Option<crate::delivery::transformed::TransformTally>,
    /// A converting stream: rows, lines that did not convert and why, and the Parquet schema.
    pub conversion: Option<crate::delivery::converted::ConversionReport>,
    /// The interval that applied (the hint, divided by an emulator's `--speed`).
    pub effective_interval_s: f64,
    /// What the runs' lines were billed as (from their manifests).
    pub cost: Option<crate::delivery::html::Cost>,
    /// The endpoint verify read from ("AWS us-east-2" or the custom endpoint).
    pub endpoint: String,
    /// The stream as DescribeDeliveryStream returned it.
    pub stream_description: fh::StreamInfo,
}

/// A run manifest and the directory its hash file is in.
type Run = (RunManifest, PathBuf);

pub async fn verify(
    global: &Global,
    s: &VerifySettings,
    clients: &Clients,
    reporter: &dyn Reporter,
) -> Result<VerifyReport> {
    let e = expectations(global, s, clients, reporter).await?;
    let l = layout(&e, clients, reporter)?;
    if let Some(dir) = &s.keep {
        std::fs::create_dir_all(dir).map_err(|err| Error::state("create", dir.clone(), err))?;
    }
    let total = e.expected.lock().expect("expected lock").tally().expected;
    let task = reporter.task("verify", Some(total), Unit::Items);
    let found = poll(&e, &l, s, clients, task.as_ref()).await?;
    let report = conclude(e, l, found, s, clients, reporter).await?;
    task.finish(format!(
        "{} of {} found in {}",
        format_count(report.tally.matched),
        plural(report.tally.expected, "line"),
        plural(report.objects.len() as u64, "object")
    ));
    Ok(report)
}

pub async fn run(global: &Global, s: &VerifySettings, clients: &Clients, printer: &Printer) -> Result<ExitCode> {
    let reporter: Arc<dyn Reporter> = printer.reporter();
    let report = verify(global, s, clients, reporter.as_ref()).await?;
    if let Some(path) = &s.report {
        write_html(&report, path)?;
        printer.status(&format!("report: {}", path.display()));
    }
    if printer.json() {
        printer.result_json(&json!(report));
    } else if printer.quiet() {
        printer.result(&verdict(&report));
    } else {
        printer.result(&summary(&report));
    }
    Ok(if report.verified { ExitCode::Success } else { ExitCode::Failed })
}
