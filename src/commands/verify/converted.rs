//! A converting stream: each sent line a Parquet row, or in the `format-conversion-failed` output with its code.

use crate::aws::Clients;
use crate::aws::firehose::DestinationSpec;
use crate::error::Result;
use crate::pipeline::manifest::line_hash;
use crate::ui::{format_count, plural};

use super::VerifyReport;
use super::poll::Found;
use super::poll::each_line;
use super::scope::{Expectations, Layout};

/// Reads the `format-conversion-failed` objects not read yet: each sent line found there is accounted for as one
/// that did not convert (taken out of the missing ones, counted apart from the rows).
pub(super) async fn read_conversion_failures(
    e: &Expectations,
    l: &Layout,
    clients: &Clients,
    found: &mut Found,
) -> Result<()> {
    // Every error object is read (a custom error prefix need not name the error-output-type); only documents of
    // this stream's table count.
    let Some(c) = e.dest.conversion.as_ref() else { return Ok(()) };
    let new: Vec<String> =
        found.error_objects.iter().filter(|k| !found.conversion_read.contains(*k)).cloned().collect();
    for key in new {
        let table = (c.database.clone(), c.table.clone());
        let expected = e.expected.clone();
        // Each failed line is taken out of the missing ones as it is read: only counts and one example are kept.
        let (codes, failed, example) = each_line(
            clients,
            &l.bucket,
            &key,
            (std::mem::take(&mut found.conversion_codes), found.conversion_failed, found.conversion_example.take()),
            move |(codes, failed, example), line| {
                let table = (table.0.as_str(), table.1.as_str());
                let mut expected = expected.lock().expect("expected lock");
                crate::delivery::converted::failed_records(line, table, codes, &mut |line, code, why| {
                    if expected.take_missing(line_hash(line) as u64) {
                        *failed += 1;
                        if example.is_none() {
                            *example = Some(format!("{} ({code}: {why})", String::from_utf8_lossy(line)));
                        }
                    }
                });
            },
        )
        .await?;
        (found.conversion_codes, found.conversion_failed, found.conversion_example) = (codes, failed, example);
        found.conversion_read.insert(key);
    }
    Ok(())
}

/// A converting stream's report: rows, the lines that did not convert and why, and the objects' schema.
pub(super) fn conversion_report(
    dest: &DestinationSpec,
    found: &mut Found,
) -> Option<crate::delivery::converted::ConversionReport> {
    use crate::delivery::converted::{ConversionReport, failures, schema_problems};
    let c = dest.conversion.as_ref()?;
    let schema = found.objects.iter().find_map(|o| o.schema.clone()).unwrap_or_default();
    Some(ConversionReport {
        database: c.database.clone(),
        table: c.table.clone(),
        rows: found.objects.iter().map(|o| o.lines).sum(),
        failed_lines: found.conversion_failed,
        failures: failures(std::mem::take(&mut found.conversion_codes)),
        failed_example: found.conversion_example.take(),
        schema_problems: if schema.is_empty() { Vec::new() } else { schema_problems(&schema) },
        schema,
    })
}

/// The verdict on a converting stream: each sent line a Parquet row with equal typed fields, or in the error
/// output because it did not convert, or missing.
pub(super) fn conversion_verdict(r: &VerifyReport, c: &crate::delivery::converted::ConversionReport) -> String {
    let t = &r.tally;
    let failed = match c.failures.first() {
        Some(f) if c.failed_lines > 0 => format!(
            "{} did not convert (in the error output, format-conversion-failed: {})",
            plural(c.failed_lines, "line"),
            f.code
        ),
        _ => String::new(),
    };
    if r.verified {
        let all = if t.expected == 1 { "the 1 line".into() } else { format!("all {}", plural(t.expected, "line")) };
        format!("OK: {all} arrived as Parquet rows with equal typed fields in s3://{}", r.bucket)
    } else if t.missing == 0 && c.failed_lines > 0 {
        format!("FAILED: {} of {} arrived as rows; {failed}", format_count(t.matched), plural(t.expected, "line"))
    } else if t.missing == 0 && r.misplaced_lines > 0 {
        format!(
            "FAILED: every line arrived as a row, but {} in the wrong partition",
            plural(r.misplaced_lines, "line is|lines are")
        )
    } else if t.missing == 0 {
        format!("FAILED: every line arrived as a row, but {} duplicated (--strict)", plural(t.duplicated, "line"))
    } else {
        format!(
            "FAILED: {} of {} missing (neither a row nor in the error output){}",
            format_count(t.missing),
            plural(t.expected, "line"),
            if failed.is_empty() { String::new() } else { format!("; {failed}") }
        )
    }
}

/// What the summary says of a converting stream: rows, the schema, and a line that did not convert.
pub(super) fn conversion_lines(c: &crate::delivery::converted::ConversionReport) -> Vec<String> {
    let mut out = vec![format!(
        "  parquet: {} in the objects, typed by Glue table {}.{}",
        plural(c.rows, "row"),
        c.database,
        c.table
    )];
    if !c.schema.is_empty() {
        let columns: Vec<String> = c.schema.iter().map(|(n, t)| format!("{n} {t}")).collect();
        out.push(format!("    schema: {}", columns.join(", ")));
    }
    for p in &c.schema_problems {
        out.push(format!("    not the Apache table setup makes: {p}"));
    }
    for f in &c.failures {
        out.push(format!("    error output: {} {} ({})", plural(f.count, "record"), f.code, f.example));
    }
    if let Some(example) = &c.failed_example {
        out.push(format!("    e.g. {example}"));
    }
    out
}
