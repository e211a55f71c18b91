//! The accounting core: every kind of stream's findings folded into one report and its verdict.

use chrono::Utc;

use crate::aws::Clients;
use crate::delivery::report::summarize;
use crate::error::Result;
use crate::settings::VerifySettings;
use crate::ui::Reporter;

use super::converted::conversion_report;
use super::partitioned::{error_records, partition_summaries};
use super::poll::Found;
use super::runs::missing_lines;
use super::scope::{Expectations, Layout};
use super::transformed::{self, account_transformed};
use super::{Basis, VerifyReport};

/// Missing lines printed with --expect.
const SHOW_MISSING: usize = 20;

/// The verdict and the report.
pub(super) async fn conclude(
    e: Expectations,
    l: Layout,
    mut found: Found,
    s: &VerifySettings,
    clients: &Clients,
    reporter: &dyn Reporter,
) -> Result<VerifyReport> {
    let (transform, counted) = match account_transformed(&e, &l, &mut found, clients, reporter).await? {
        Some((t, counted)) => (Some(t), counted),
        None => (None, None),
    };
    // A proof by counts compares documents, not lines.
    let mut tally = counted.unwrap_or_else(|| e.expected.lock().expect("expected lock").tally());
    // Documents of lines in the processing-failed output (failed with their record, or never transformed) are
    // not due in the delivered objects: not missing.
    if let Some(t) = transform.as_ref().filter(|_| counted.is_none()) {
        let not_due = t.documents_not_due.min(tally.missing);
        tally.missing -= not_due;
        tally.expected -= not_due;
    }
    // Lines in the conversion error output were taken out of the missing ones: they are not rows either.
    tally.matched -= found.conversion_failed.min(tally.matched);
    let conversion = conversion_report(&e.dest, &mut found);
    // (On a transformed stream the comparison is over the function's output, not the files' lines.)
    let missing_lines = if !s.expect.is_empty() && tally.missing > 0 && transform.is_none() {
        missing_lines(&s.expect, &mut e.expected.lock().expect("expected lock"), SHOW_MISSING)?
    } else {
        // With --match, the sent lines whose documents did not arrive.
        transformed::missing_lines(&e)
    };
    found.objects.sort_by(|a, b| a.key_time.cmp(&b.key_time).then_with(|| a.key.cmp(&b.key)));
    // What Firehose cannot have written tells nothing of how it buffered.
    let delivered: Vec<_> = found.objects.iter().filter(|o| o.not_read_through.is_none()).cloned().collect();
    let buffering = summarize(&delivered, e.dest.buffer_size_mib, e.dest.buffer_interval_s, l.speed);
    let (partitions, error_records) = if l.partition_check.is_some() {
        (
            partition_summaries(&found.objects, &l.name_prefix),
            error_records(clients, &l.bucket, &found.error_objects).await,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let verified = tally.missing == 0
        && found.conversion_failed == 0
        && (!s.strict || tally.duplicated == 0)
        && found.misplaced_lines == 0
        && transform.as_ref().is_none_or(|t| t.complete());
    let causes = causes(&e, tally.missing > 0, clients).await;
    let runs = &e.runs;
    Ok(VerifyReport {
        stream: e.stream,
        bucket: l.bucket,
        basis: Basis {
            runs: runs.iter().map(|r| r.run_id.clone()).collect(),
            expect_files: s.expect.clone(),
            window_start: e.window_start,
        },
        tally,
        verified,
        strict: s.strict,
        delivered_bytes: found.objects.iter().map(|o| o.size).sum(),
        layout_ok: found.objects.iter().all(|o| o.layout_problems.is_empty()),
        objects: found.objects,
        buffering,
        error_objects: found.error_objects,
        missing_lines,
        waited_s: found.waited_s,
        bucket_missing: found.bucket_missing,
        speed: l.speed,
        partitions,
        misplaced_lines: found.misplaced_lines,
        misplaced_example: found.misplaced_example,
        error_records,
        causes,
        effective_interval_s: l.effective_interval_s,
        cost: (!runs.is_empty()).then(|| crate::delivery::html::Cost {
            raw_bytes: runs.iter().map(|r| r.bytes).sum(),
            billable_bytes: runs.iter().map(|r| r.billable_bytes).sum(),
            billable_one_line_per_record: runs.iter().map(|r| r.billable_bytes_one_line_per_record).sum(),
            records: runs.iter().map(|r| r.records).sum(),
            lines: runs.iter().map(|r| r.lines).sum(),
        }),
        endpoint: clients.backend(),
        stream_description: e.info,
        transform,
        conversion,
    })
}

/// Why lines are missing (or delivery was slow): the stream's logged errors since the runs started.
pub(super) async fn causes(
    e: &Expectations,
    missing: bool,
    clients: &Clients,
) -> Option<crate::aws::diagnosis::Causes> {
    // Errors logged before the runs started concern other data: the window starts with the first run (or
    // --since, or the last day).
    let since = e
        .runs
        .iter()
        .map(|r| r.started)
        .min()
        .or(e.window_start)
        .unwrap_or_else(|| Utc::now() - chrono::Duration::hours(24));
    let missing =
        crate::aws::diagnosis::Missing { lines: missing, sent_before: e.runs.iter().filter_map(|r| r.ended).min() };
    match crate::aws::diagnosis::causes(clients, &e.dest, since, Utc::now(), missing).await {
        Ok(c) => Some(c),
        Err(err) => {
            tracing::warn!("cannot read the causes of delivery errors: {err}");
            None
        }
    }
}
