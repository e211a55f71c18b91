//! What the stream decides for send: that it exists and is ACTIVE, and how lines are framed for it (raw or JSON,
//! packed or one per record) from what it does with records.

use crate::aws::Clients;
use crate::aws::firehose as fh;
use crate::cli::SendFormat;
use crate::error::{Error, Result};
use crate::firehose::partitioning::MAX_SUB_RECORDS;
use crate::firehose::types::StreamStatus;
use crate::settings::{Global, SendSettings};
use crate::ui::Reporter;

/// How the lines are framed for this stream, decided from what it does with records.
pub(super) struct Framing {
    pub(super) json: bool,
    pub(super) one_line_per_record: bool,
    /// Why one line per record although not asked (a processor that works per record).
    pub(super) one_line_reason: Option<String>,
    pub(super) max_lines_per_record: Option<u32>,
}

/// The stream to send to, which must exist and be ACTIVE.
pub(super) async fn active_stream(global: &Global, clients: &Clients) -> Result<fh::StreamInfo> {
    let stream = &global.stream;
    let info = fh::describe(&clients.firehose, stream).await?.ok_or_else(|| {
        Error::aws(
            format!("send to delivery stream `{stream}`"),
            Some("ResourceNotFoundException"),
            format!("the stream does not exist in {}", clients.backend()),
            Some(format!("create it with `{}`", global.command("setup"))),
        )
    })?;
    if info.status != StreamStatus::Active {
        return Err(Error::aws(
            format!("send to delivery stream `{stream}`"),
            None,
            format!("the stream is {}, not ACTIVE", info.status),
            Some("wait for it: `firehose-kit setup` waits until the stream is ACTIVE".into()),
        ));
    }
    Ok(info)
}

/// A partitioned stream extracts its keys with jq from JSON records: lines are sent as JSON, still packed (up to
/// 500 per record, what deaggregation splits) when the stream deaggregates them. A processor that works per
/// record makes packing merge events: then one line per record.
pub(super) fn framing(
    s: &SendSettings,
    info: &fh::StreamInfo,
    many_lines: bool,
    reporter: &dyn Reporter,
) -> Result<Framing> {
    let mut json = s.format == SendFormat::Json;
    let max_lines_per_record = info.partitioning.as_ref().filter(|p| p.deaggregates).map(|_| MAX_SUB_RECORDS as u32);
    if let Some(p) = info.partitioning.as_ref().filter(|p| p.query.is_some()) {
        if !json && s.format_explicit {
            return Err(Error::usage(format!(
                "delivery stream `{}` partitions records by a jq query over JSON ({}), but --format raw sends raw lines: every line would land in the error output",
                info.name,
                p.query.as_deref().unwrap_or_default()
            ))
            .with_hint("drop --format raw (send converts Apache lines to JSON for partitioned streams) or pass --format json"));
        }
        if !json {
            reporter
                .note("the stream partitions JSON records with a jq query: sending the lines as JSON (--format json)");
            json = true;
        }
    }
    // A transforming stream's function makes the JSON the conversion reads: the lines go to it as they are.
    let transforms = info.destination.as_ref().is_some_and(|d| d.transform.is_some());
    if info.converts_formats && !json && !transforms {
        if s.format_explicit {
            return Err(Error::usage(format!(
                "delivery stream `{}` converts JSON records to Parquet, but --format raw sends raw lines: every line would fail conversion",
                info.name
            ))
            .with_hint("drop --format raw (send converts Apache lines to JSON for converting streams) or pass --format json"));
        }
        reporter.note(if s.one_line_per_record {
            "the stream converts JSON records to Parquet: sending the lines as JSON (--format json)"
        } else {
            "the stream converts JSON records to Parquet: sending the lines as JSON (--format json), packed (a record that does not convert goes to the error output with all its lines: --one-line-per-record keeps them apart)"
        });
        json = true;
    }
    if let Some(field) = &s.partition_key {
        if info.source.is_none() {
            return Err(Error::usage(format!(
                "--partition-key {field}: delivery stream `{}` takes records directly (Direct Put), and Firehose has no partition keys",
                info.name
            ))
            .with_hint("partition keys belong to a Kinesis data stream in front: `firehose-kit setup --source kinesis`"));
        }
        if !json {
            reporter.note(&format!("--partition-key {field}: sending the lines as JSON (--format json)"));
            json = true;
        }
    }
    // A processing Lambda sees each record as one event: packing merges events, unless the function makes one
    // document per line of a record (setup tags the shipped templates so).
    let lambda_only = info.partitioning.as_ref().is_none_or(|p| p.deaggregates);
    let per_record = match info.per_record_processing.clone() {
        Some(_) if many_lines && lambda_only && !s.one_line_per_record => {
            reporter.note("the stream's function makes one document per line of a record (firehose-kit's Apache → JSON template, tagged firehose-kit:record-lines=many by setup): packing lines into records (a record it fails goes to the error output with all its lines: --one-line-per-record keeps them apart)");
            None
        }
        other => other,
    };
    let one_line_reason = per_record.or_else(|| {
        s.partition_key.as_ref().map(|f| format!("--partition-key {f}: each record carries one line's key"))
    });
    if let Some(reason) = &one_line_reason {
        reporter.note(&format!("{reason}: sending one line per record (packing would merge events)"));
    }
    Ok(Framing {
        json,
        one_line_per_record: s.one_line_per_record || one_line_reason.is_some(),
        one_line_reason,
        max_lines_per_record,
    })
}

/// Whether the stream's Lambda processor is a function setup tagged as handling records of several lines
/// ([`crate::transform::RECORD_LINES_TAG`]). Not knowing (no such function, or no permission to read its tags)
/// is `false`: one line per record is always correct, only dearer.
pub(super) async fn function_takes_many_lines(info: &fh::StreamInfo, clients: &Clients) -> bool {
    let Some(function) = info.destination.as_ref().and_then(|d| d.transform.as_deref()) else { return false };
    match crate::aws::lambda::get_function(&clients.lambda, function).await {
        Ok(Some(f)) => {
            let (k, v) = crate::transform::RECORD_LINES_TAG;
            f.tags.iter().any(|(tk, tv)| tk == k && tv == v)
        }
        Ok(None) => false,
        Err(err) => {
            tracing::warn!("cannot read the tags of {function}: {err}; sending one line per record");
            false
        }
    }
}
