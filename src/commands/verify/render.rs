//! The report as people read it: the verdict line, the summary and the HTML page.

use std::path::Path;

use chrono::Utc;

use crate::delivery::report::DeliveredObject;
use crate::error::{Error, Result};
use crate::ui::{format_bytes, format_count, plural};

use super::VerifyReport;
use super::converted::{conversion_lines, conversion_verdict};
use super::partitioned::partition_lines;
use super::transformed::transform_verdict;

/// The verdict, in one line: what `-q` prints.
pub fn verdict(r: &VerifyReport) -> String {
    let t = &r.tally;
    if let Some(x) = &r.transform {
        return transform_verdict(r, x);
    }
    if let Some(c) = &r.conversion {
        return conversion_verdict(r, c);
    }
    if r.verified {
        let all =
            if t.expected == 1 { "the 1 line".to_string() } else { format!("all {}", plural(t.expected, "line")) };
        format!("OK: {all} arrived in s3://{}", r.bucket)
    } else if t.missing == 0 && r.misplaced_lines > 0 {
        format!(
            "FAILED: every line arrived, but {} in the wrong partition",
            plural(r.misplaced_lines, "line is|lines are")
        )
    } else if t.missing == 0 {
        format!("FAILED: every line arrived, but {} duplicated (--strict)", plural(t.duplicated, "line"))
    } else {
        format!(
            "FAILED: {} of {} missing{}",
            format_count(t.missing),
            plural(t.expected, "line"),
            if r.strict && t.duplicated > 0 {
                format!(", {} duplicated (--strict)", format_count(t.duplicated))
            } else {
                String::new()
            }
        )
    }
}

/// The human report.
pub fn summary(r: &VerifyReport) -> String {
    let t = &r.tally;
    let basis = if r.basis.runs.is_empty() {
        format!(
            "the lines of {}",
            r.basis.expect_files.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", ")
        )
    } else {
        format!("run {}", r.basis.runs.join(" + "))
    };
    let mut out = vec![format!("verify `{}` against {basis}", r.stream)];
    if r.speed != 1.0 {
        out.push(format!(
            "  (the emulator runs {}× faster than AWS: buffering intervals are {}× shorter than configured)",
            r.speed, r.speed
        ));
    }
    out.push(format!("  {}", verdict(r)));
    if let Some(x) = &r.transform {
        out.push(format!("  transformed by {}: proved {}", x.function, x.proof.describe()));
        if let Some(why) = &x.invocation_error {
            out.push(format!("  the function failed when verify ran it: {why}"));
        }
    }
    out.push(format!(
        "  matched {} · missing {} · duplicated {} (at-least-once delivery) · extra {} (other runs or producers)",
        format_count(t.matched),
        format_count(t.missing),
        format_count(t.duplicated),
        format_count(t.extra)
    ));
    out.extend(delivery_lines(r));
    out.extend(r.conversion.iter().flat_map(conversion_lines));
    out.extend(partition_lines(r));
    if r.bucket_missing {
        out.push(format!("  the bucket s3://{} does not exist: nothing can be delivered to it", r.bucket));
    }
    if let Some(c) = &r.causes {
        // Said when lines are missing, or when delivery succeeded only after errors.
        if t.missing > 0 || !c.errors.is_empty() {
            out.extend(c.lines());
        }
    }
    out.join("\n")
}

/// The objects, how the hints cut them, their layout, the error output and the missing lines.
pub(super) fn delivery_lines(r: &VerifyReport) -> Vec<String> {
    let mut out = vec![format!("  delivery: {} in {}", format_bytes(r.delivered_bytes), r.buffering.sentence())];
    for o in r.objects.iter().take(3) {
        out.push(format!(
            "    {}  {} · {}{}",
            o.key,
            format_bytes(o.size),
            plural(o.lines, if o.schema.is_some() { "row" } else { "line" }),
            o.delay_s.map(|d| format!(" · buffered {d:.1} s")).unwrap_or_default()
        ));
    }
    if r.objects.len() > 3 {
        out.push(format!("    … and {} more (-o json lists them all)", r.objects.len() - 3));
    }
    if r.layout_ok {
        out.push(if r.partitions.is_empty() {
            "  layout: every key follows <prefix>YYYY/MM/DD/HH/<stream>-<version>-<time>-<uuid>".into()
        } else {
            "  layout: every key follows <evaluated prefix><stream>-<version>-<time>-<uuid>".into()
        });
    } else {
        let bad: Vec<&DeliveredObject> = r.objects.iter().filter(|o| !o.layout_problems.is_empty()).collect();
        out.push(format!(
            "  layout: {} deviate from Firehose's layout, e.g. {}: {}",
            plural(bad.len() as u64, "key"),
            bad[0].key,
            bad[0].layout_problems.join("; ")
        ));
    }
    let odd: Vec<&DeliveredObject> = r.objects.iter().filter(|o| o.not_read_through.is_some()).collect();
    if let Some(first) = odd.first() {
        out.push(format!(
            "  not Firehose's: {} not read through, e.g. {}: {}",
            plural(odd.len() as u64, "object"),
            first.key,
            first.not_read_through.as_deref().unwrap_or_default()
        ));
    }
    if !r.error_objects.is_empty() {
        out.push(format!(
            "  delivery failures: {} under the error prefix, e.g. {}",
            plural(r.error_objects.len() as u64, "object"),
            r.error_objects[0]
        ));
    }
    if !r.missing_lines.is_empty() {
        out.push("  missing lines:".into());
        out.extend(r.missing_lines.iter().map(|l| format!("    {l}")));
    }
    out
}

/// Writes the report's HTML page to `path` (atomically: a reader never sees half a page).
pub fn write_html(report: &VerifyReport, path: &Path) -> Result<()> {
    let causes = report
        .causes
        .as_ref()
        .filter(|c| report.tally.missing > 0 || !c.errors.is_empty())
        .map(|c| c.lines().into_iter().map(|l| l.trim().to_string()).collect())
        .unwrap_or_default();
    let configuration = serde_json::to_string_pretty(&report.stream_description).unwrap_or_default();
    let page = crate::delivery::html::Page {
        stream: &report.stream,
        bucket: &report.bucket,
        endpoint: &report.endpoint,
        runs: &report.basis.runs,
        tally: &report.tally,
        verified: report.verified,
        objects: &report.objects,
        buffering: &report.buffering,
        effective_interval_s: report.effective_interval_s,
        speed: report.speed,
        partitions: &report.partitions,
        misplaced_lines: report.misplaced_lines,
        error_objects: &report.error_objects,
        error_records: &report.error_records,
        causes,
        cost: report.cost,
        configuration,
        generated: Utc::now(),
        transform: report.transform.as_ref(),
        conversion: report.conversion.as_ref(),
    };
    let html =
        crate::delivery::html::render(&page).map_err(|e| Error::failed(format!("cannot draw the report: {e}")))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::state("create", parent, e))?;
    }
    crate::util::persist::write_atomic(path, html.as_bytes()).map_err(|e| Error::state("write", path, e))
}
