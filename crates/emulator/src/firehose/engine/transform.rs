//! Data transformation with Lambda, as Firehose runs it between its two buffers.
//!
//! A transforming stream's runtime buffers records by the processor's hints (BufferSizeInMBs,
//! BufferIntervalInSeconds). Each buffer it cuts is handed here instead of to S3: its records are read back
//! from the journal, sent to the function in one event (AWS's fields, base64 data, an opaque record id each),
//! and the answer is checked (every id back once, `Ok`/`Dropped`/`ProcessingFailed`, base64 data). `Ok` data
//! is journaled into the destination's runtime (buffered by the destination's hints, then delivered, compressed
//! and partitioned like any record); `Dropped` records are gone; `ProcessingFailed` records, and every record
//! of an invocation that failed `NumberOfRetries` + 1 times, are journaled into the error output's runtime as
//! processing-failed documents with their original data. Every failure is logged to the stream's error log
//! with AWS's `Lambda.*` code, as the role that invokes the function (it must be allowed
//! `lambda:InvokeFunction` on the qualified ARN). Only then does the stream's delivered offset move past the
//! buffer. A kill before that transforms the buffer again after the restart: at least once, as on AWS.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{Runtime, Sealed, discard};
use crate::firehose::gate::Failure;
use crate::firehose::journal;
use crate::firehose::target::Processing;
use crate::lambda::Refusal;
use crate::lambda::sandbox::Outcome;
use firehose_kit_domain::transform::{self, InputRecord, Transformed};

/// How one buffer's transformation came out.
enum Answer {
    /// The function answered every record.
    Records(Vec<Transformed>),
    /// Every record failed with this code and message, after `attempts` invocations.
    Failed { code: &'static str, message: String, attempts: u32 },
}

/// Transforms one sealed buffer; an error is the emulator's own storage failing (the buffer is transformed
/// again).
pub(super) async fn run(rt: &Arc<Runtime>, sealed: &Arc<Sealed>) -> Result<(), String> {
    let processing = sealed.target.processing.clone().expect("a transforming runtime");
    let (dir, start, end) = (rt.dir.clone(), sealed.start, sealed.end_offset);
    let records = tokio::task::spawn_blocking(move || journal::read_range(&dir, start, end))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("reading the journal: {e}"))?;
    // Record ids: opaque digits (the record's end offset), unique within the stream.
    let mut offset = start;
    let ids: Vec<String> = records
        .iter()
        .map(|(_, data)| {
            offset += journal::FRAME_HEADER + data.len() as u64;
            format!("{:056}", offset)
        })
        .collect();
    let inputs: Vec<InputRecord<'_>> = records
        .iter()
        .zip(&ids)
        .map(|((arrival_ms, data), id)| InputRecord { id: id.clone(), arrival_ms: *arrival_ms, data })
        .collect();
    let answer = invoke(rt, sealed, &processing, &inputs).await;
    let (ok, failed) = sort(&processing, &records, answer);
    let (rt2, sealed2) = (rt.clone(), sealed.clone());
    tokio::task::spawn_blocking(move || {
        let stages = rt2.stages.get().expect("a transforming runtime");
        for (arrival_ms, group) in group_by_arrival(&ok) {
            stages.downstream.accept(&group, arrival_ms)?;
        }
        for (arrival_ms, group) in group_by_arrival(&failed) {
            stages.errors.accept(&group, arrival_ms)?;
        }
        discard(&rt2, &sealed2)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("journaling the transformed records: {e}"))
}

/// Consecutive records with the same arrival time, as one accept each.
fn group_by_arrival(records: &[(i64, Vec<u8>)]) -> Vec<(i64, Vec<&[u8]>)> {
    let mut out: Vec<(i64, Vec<&[u8]>)> = Vec::new();
    for (arrival, data) in records {
        match out.last_mut() {
            Some((at, group)) if at == arrival => group.push(data),
            _ => out.push((*arrival, vec![data])),
        }
    }
    out
}

/// The records for the destination (transformed data) and for the error output (processing-failed
/// documents), each with its original arrival time.
type Sorted = (Vec<(i64, Vec<u8>)>, Vec<(i64, Vec<u8>)>);

fn sort(p: &Processing, records: &[(i64, Vec<u8>)], answer: Answer) -> Sorted {
    let now = crate::s3::store::now_ms();
    let arn = p.processor.qualified_arn();
    let failed = |data: &[u8], arrival: i64, code: &str, message: &str, attempts: u32| {
        (arrival, transform::error_record(data, code, message, attempts, arrival, now, &arn))
    };
    match answer {
        Answer::Failed { code, message, attempts } => {
            (Vec::new(), records.iter().map(|(at, d)| failed(d, *at, code, &message, attempts)).collect())
        }
        Answer::Records(results) => {
            let (mut ok, mut errors) = (Vec::new(), Vec::new());
            let status = firehose_kit_domain::failures::code("Lambda.ProcessingFailedStatus").expect("a known code");
            for ((arrival, data), result) in records.iter().zip(results) {
                match result {
                    Transformed::Ok { data, .. } => ok.push((*arrival, data)),
                    Transformed::Dropped => {}
                    Transformed::ProcessingFailed => {
                        errors.push(failed(data, *arrival, status.code, status.message, 1))
                    }
                }
            }
            (ok, errors)
        }
    }
}

/// Invokes the function with the buffer's records, retrying a failed invocation `NumberOfRetries` times; logs
/// every failure to the stream's error log.
async fn invoke(rt: &Runtime, sealed: &Sealed, p: &Processing, inputs: &[InputRecord<'_>]) -> Answer {
    let target = &sealed.target;
    let arn = p.processor.qualified_arn();
    let ids: Vec<String> = inputs.iter().map(|r| r.id.clone()).collect();
    let attempts = p.processor.retries + 1;
    let mut backoff = Duration::from_secs(1).div_f64(rt.gate.speed);
    let mut last = ("Lambda.FunctionError", String::new());
    for attempt in 1..=attempts {
        let event = transform::event(&uuid::Uuid::new_v4().to_string(), &target.stream_arn, &target.region, inputs);
        let payload = Bytes::from(serde_json::to_vec(&event).expect("an event serializes"));
        let result = match &rt.gate.lambda {
            Some(lambda) => lambda.invoke_as(&p.role_arn, &p.processor.lambda_arn, &target.region, payload).await,
            None => Err(Refusal::NotFound),
        };
        let (code, detail) = match result {
            Ok(Outcome::Ok(body)) => match transform::parse_answer(&body, &ids) {
                Ok(results) => {
                    log_processing_failed(rt, sealed, &arn, &results);
                    return Answer::Records(results);
                }
                // A malformed answer is final: Firehose does not invoke again.
                Err(bad) => {
                    rt.gate.record_failure(target, &Failure::of_processor(bad.code, &bad.message, &arn));
                    return Answer::Failed { code: bad.code, message: message_of(bad.code), attempts: attempt };
                }
            },
            Ok(Outcome::Error { body, kind }) => {
                ("Lambda.FunctionError", format!("{kind}: {}", String::from_utf8_lossy(&body)))
            }
            Err(Refusal::NotFound) => ("Lambda.ResourceNotFound", format!("no function {}", p.processor.lambda_arn)),
            Err(Refusal::AssumeRole) => ("Lambda.AssumeRoleAccessDenied", format!("cannot assume {}", p.role_arn)),
            Err(Refusal::AccessDenied(qualified)) => (
                "Lambda.InvokeAccessDenied",
                format!("no policy of {} allows lambda:InvokeFunction on {qualified}", p.role_arn),
            ),
            Err(Refusal::TooLarge) => ("Lambda.FunctionError", "the event is larger than 6 MB".to_string()),
        };
        tracing::warn!(stream = %target.stream, code, attempt, attempts, "transformation failed: {detail}");
        rt.gate.record_failure(target, &Failure::of_processor(code, &detail, &arn));
        last = (code, detail);
        if attempt < attempts {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10).div_f64(rt.gate.speed));
        }
    }
    Answer::Failed { code: last.0, message: message_of(last.0), attempts }
}

/// AWS's message for a transformation error code.
fn message_of(code: &str) -> String {
    firehose_kit_domain::failures::code(code).map(|c| c.message.to_string()).unwrap_or_default()
}

/// Records the function marked `ProcessingFailed` are logged once per invocation.
fn log_processing_failed(rt: &Runtime, sealed: &Sealed, arn: &str, results: &[Transformed]) {
    let n = results.iter().filter(|r| matches!(r, Transformed::ProcessingFailed)).count();
    if n > 0 {
        let detail = format!("{n} records marked ProcessingFailed");
        rt.gate.record_failure(&sealed.target, &Failure::of_processor("Lambda.ProcessingFailedStatus", detail, arn));
    }
}
