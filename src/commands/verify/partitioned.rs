//! A partitioned stream: per-partition summaries, misplaced lines and the error output's records by code.

use crate::aws::Clients;
use crate::delivery::partitions::{ErrorRecords, PartitionSummary, tally_error_records};
use crate::delivery::report::DeliveredObject;
use crate::ui::{format_bytes, plural};

use super::VerifyReport;
use super::poll::each_line;

/// Per-partition summaries of a partitioned stream's objects.
pub(super) fn partition_summaries(objects: &[DeliveredObject], name_prefix: &str) -> Vec<PartitionSummary> {
    let mut by_prefix: std::collections::BTreeMap<String, PartitionSummary> = Default::default();
    for o in objects {
        let dir = o.key.rfind(name_prefix).map_or("", |i| &o.key[..i]).to_string();
        let p = by_prefix.entry(dir.clone()).or_insert(PartitionSummary {
            prefix: dir,
            objects: 0,
            lines: 0,
            bytes: 0,
            by_size: 0,
            by_interval: 0,
        });
        p.objects += 1;
        p.lines += o.lines;
        p.bytes += o.bytes;
        match o.flushed_by {
            crate::delivery::report::FlushedBy::Interval => p.by_interval += 1,
            _ => p.by_size += 1,
        }
    }
    by_prefix.into_values().collect()
}

/// What the error output holds, and why (at most 100 objects read).
pub(super) async fn error_records(clients: &Clients, bucket: &str, keys: &[String]) -> Vec<ErrorRecords> {
    let mut codes = std::collections::BTreeMap::new();
    for key in keys.iter().take(100) {
        // An unreadable object tallies nothing: the report names the error objects anyway.
        if let Ok(tallied) =
            each_line(clients, bucket, key, codes.clone(), |codes, line| tally_error_records(line, codes)).await
        {
            codes = tallied;
        }
    }
    codes.into_iter().map(|(code, (count, example))| ErrorRecords { code, count, example }).collect()
}

/// A partitioned stream's partitions, misplaced lines and error output.
pub(super) fn partition_lines(r: &VerifyReport) -> Vec<String> {
    let mut out = Vec::new();
    if !r.partitions.is_empty() {
        out.push(format!("  partitions: {} (each line checked against its own fields)", r.partitions.len()));
        for p in r.partitions.iter().take(8) {
            out.push(format!(
                "    {}  {} · {} · {} ({} by size, {} by interval)",
                if p.prefix.is_empty() { "(no prefix)" } else { &p.prefix },
                plural(p.objects, "object"),
                plural(p.lines, "line"),
                format_bytes(p.bytes),
                p.by_size,
                p.by_interval
            ));
        }
        if r.partitions.len() > 8 {
            out.push(format!("    … and {} more (-o json lists them all)", r.partitions.len() - 8));
        }
    }
    if r.misplaced_lines > 0 {
        out.push(format!(
            "  FAILED: {} in a partition their own fields do not map to, e.g. {}",
            plural(r.misplaced_lines, "line is|lines are"),
            r.misplaced_example.as_deref().unwrap_or("")
        ));
    }
    for e in &r.error_records {
        out.push(format!("  error output: {} {} ({})", plural(e.count, "record"), e.code, e.example));
    }
    out
}
