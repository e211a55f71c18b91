//! The Lambda processor's stage: data transformation as Firehose runs it between its two buffers.
//!
//! A transforming stream's input lane buffers records by the processor's hints (BufferSizeInMBs,
//! BufferIntervalInSeconds). Each range it seals comes here: its records are read back from the journal, sent to
//! the function in one event (AWS's fields, base64 data, an opaque record id each), and the answer is checked
//! (every id back once, `Ok`/`Dropped`/`ProcessingFailed`, base64 data). `ProcessingFailed` records, and every
//! record of an invocation that failed `NumberOfRetries` + 1 times, become processing-failed documents with their
//! original data; `Dropped` records are gone. Every failure is logged to the stream's error log with AWS's
//! `Lambda.*` code, as the role that invokes the function (it must be allowed `lambda:InvokeFunction` on the
//! qualified ARN).
//!
//! The commit protocol: the answer is journaled ([`super::answer`]) before anything is handed on; then the `Ok`
//! data goes to the destination's lanes and the documents to the error output's lane, each batch ended by a mark
//! of this range; then the progress. A repeat reads the journaled answer (the function is not invoked again) and
//! skips what the marks say arrived.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::answer::{self, Answer};
use super::buffer::Sealed;
use super::lane::{Lane, StageError, blocking};
use super::stage::Sink;
use crate::faults;
use crate::firehose::gate::Failure;
use crate::firehose::journal::{Mark, Packed};
use crate::firehose::target::Target;
use crate::lambda::Refusal;
use crate::lambda::sandbox::Outcome;
use firehose_kit_domain::transform::{self, AnswerData, Answered, InputRecord, LambdaProcessor};

/// The name a transforming lane's marks carry in the lanes after it.
pub const MARK_SOURCE: &str = "in";

/// A stream's transformation: the function, the role it is invoked as, and where its answer goes.
pub struct Transformation {
    pub processor: LambdaProcessor,
    /// The role Firehose invokes the function as (the processor's `RoleArn`, else the destination's).
    pub role_arn: String,
    /// The stream's destination (its failures are logged there).
    pub target: Target,
    /// The transformed records' way on: the destination's lane, or its partitions.
    pub ok: Sink,
    /// The processing-failed output's lane.
    pub failed: Sink,
}

/// How one range's invocation came out.
enum Outcome2 {
    /// The function answered every record.
    Records(AnswerData),
    /// Every record failed with this code and message, after `attempts` invocations.
    Failed { code: &'static str, message: String, attempts: u32 },
}

/// Transforms one sealed range, keeping the commit protocol.
pub async fn run(lane: &Arc<Lane>, sealed: &Arc<Sealed>, t: &Arc<Transformation>) -> Result<(), StageError> {
    let (dir, start, end) = (lane.dir.clone(), sealed.start, sealed.end);
    let mark = Mark { source: MARK_SOURCE, position: end };
    let journaled = answer::load(&dir, start, end)?;
    if journaled.is_none() && (t.ok.absorbed(mark) || t.failed.absorbed(mark)) {
        // An answer that went to one lane alone (so it needed no journal) reached it: only the progress is left.
        let lane2 = lane.clone();
        return blocking(move || Ok(lane2.commit(end)?)).await;
    }
    let answer = match journaled {
        Some(answer) => answer,
        None => {
            let reader = lane.reader.clone();
            let records = tokio::task::spawn_blocking(move || reader.read_packed(start, end))
                .await
                .map_err(|e| StageError::Panic(e.to_string()))??;
            let outcome = invoke(lane, sealed, t, &records).await;
            let answer = sort(t, &records, outcome);
            // Journaled when it goes to more than one lane's journal (partitions, or the destination and the error
            // output): a repeat after some but not all of them took it must pass on this answer, not a new one.
            let spread = matches!(t.ok, Sink::Partitions(_)) || !answer.failed.is_empty();
            if !answer.ok.is_empty() && spread {
                let (dir, answer2, durability) = (dir.clone(), answer.clone(), lane.ctx.durability);
                blocking(move || Ok(answer::save(&dir, start, end, &answer2, durability)?)).await?;
            }
            answer
        }
    };
    let (lane2, t2) = (lane.clone(), t.clone());
    blocking(move || {
        if !answer.ok.is_empty() {
            t2.ok.append(answer.ok(), mark)?;
        }
        if !answer.failed.is_empty() {
            t2.failed.append(answer.failed(), mark)?;
        }
        lane2.commit(end)?;
        answer::remove(&lane2.dir, start, end);
        Ok(())
    })
    .await
}

/// Record ids: opaque digits (the record's end offset, 56 of them as AWS's are), unique within the stream; written
/// one after the other into one string.
fn record_ids(start: u64, records: &Packed) -> String {
    let mut ids = String::with_capacity(records.records.len() * 56);
    let mut offset = start;
    for (_, data) in records.iter() {
        offset += crate::firehose::journal::FRAME_HEADER + data.len() as u64;
        // 56 digits: the offset's 20 (u64::MAX has 20), zero-padded.
        let mut digits = [b'0'; 56];
        let mut n = offset;
        for d in digits.iter_mut().rev().take(20) {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        ids.push_str(std::str::from_utf8(&digits).expect("ASCII digits"));
    }
    ids
}

/// The records for the destination (transformed data) and for the error output (processing-failed documents),
/// each with its original arrival time.
fn sort(t: &Transformation, records: &Packed, outcome: Outcome2) -> Answer {
    let now = crate::s3::store::now_ms();
    let arn = t.processor.qualified_arn();
    let document = |data: &[u8], arrival: i64, code: &str, message: &str, attempts: u32| {
        transform::error_record(data, code, message, attempts, arrival, now, &arn)
    };
    match outcome {
        Outcome2::Failed { code, message, attempts } => {
            let mut answer = Answer::default();
            for (at, d) in records.iter() {
                answer.push_failed(at, &document(d, at, code, &message, attempts));
            }
            answer
        }
        Outcome2::Records(AnswerData { data, results }) => {
            let mut answer = Answer { data, ..Default::default() };
            let status = firehose_kit_domain::failures::code("Lambda.ProcessingFailedStatus").expect("a known code");
            for ((arrival, original), result) in records.iter().zip(results) {
                match result {
                    Answered::Ok { data, .. } => answer.ok.push((arrival, data)),
                    Answered::Dropped => {}
                    Answered::ProcessingFailed => {
                        answer.push_failed(arrival, &document(original, arrival, status.code, status.message, 1))
                    }
                }
            }
            answer
        }
    }
}

/// Invokes the function with the range's records, retrying a failed invocation `NumberOfRetries` times; logs every
/// failure to the stream's error log.
async fn invoke(lane: &Lane, sealed: &Sealed, t: &Transformation, records: &Packed) -> Outcome2 {
    let target = &t.target;
    let arn = t.processor.qualified_arn();
    let all_ids = record_ids(sealed.start, records);
    let ids: Vec<&str> = (0..records.records.len()).map(|i| &all_ids[i * 56..(i + 1) * 56]).collect();
    let inputs: Vec<InputRecord<'_>> =
        records.iter().zip(&ids).map(|((arrival_ms, data), id)| InputRecord { id, arrival_ms, data }).collect();
    let attempts = t.processor.retries + 1;
    let speed = lane.ctx.speed;
    let mut backoff = Duration::from_secs(1).div_f64(speed);
    let mut last = ("Lambda.FunctionError", String::new());
    for attempt in 1..=attempts {
        let invocation = uuid::Uuid::new_v4().to_string();
        let payload = Bytes::from(transform::event_json(&invocation, &target.stream_arn, &target.region, &inputs));
        let result = match (&lane.ctx.lambda, faults::check(faults::LAMBDA_INVOKE, &t.processor.lambda_arn)) {
            (_, Err(e)) => Err(Refusal::Unavailable(e.to_string())),
            (Some(lambda), Ok(())) => {
                lambda.invoke_as(&t.role_arn, &t.processor.lambda_arn, &target.region, payload).await
            }
            (None, Ok(())) => Err(Refusal::NotFound),
        };
        let (code, detail) = match result {
            Ok(Outcome::Ok(body)) => match transform::parse_answer_data(&body, &ids) {
                Ok(answer) => {
                    log_processing_failed(lane, target, &arn, &answer.results);
                    return Outcome2::Records(answer);
                }
                // A malformed answer is final: Firehose does not invoke again.
                Err(bad) => {
                    lane.ctx.gate.record_failure(target, &Failure::of_processor(bad.code, &bad.message, &arn));
                    return Outcome2::Failed { code: bad.code, message: message_of(bad.code), attempts: attempt };
                }
            },
            Ok(Outcome::Error { body, kind }) => {
                ("Lambda.FunctionError", format!("{kind}: {}", String::from_utf8_lossy(&body)))
            }
            Err(Refusal::NotFound) => ("Lambda.ResourceNotFound", format!("no function {}", t.processor.lambda_arn)),
            Err(Refusal::AssumeRole) => ("Lambda.AssumeRoleAccessDenied", format!("cannot assume {}", t.role_arn)),
            Err(Refusal::AccessDenied(qualified)) => (
                "Lambda.InvokeAccessDenied",
                format!("no policy of {} allows lambda:InvokeFunction on {qualified}", t.role_arn),
            ),
            Err(Refusal::TooLarge) => ("Lambda.FunctionError", "the event is larger than 6 MB".to_string()),
            Err(Refusal::Unavailable(why)) => ("Lambda.ServiceUnavailableException", why),
        };
        tracing::warn!(stream = %target.stream, code, attempt, attempts, "transformation failed: {detail}");
        lane.ctx.gate.record_failure(target, &Failure::of_processor(code, &detail, &arn));
        last = (code, detail);
        if attempt < attempts {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10).div_f64(speed));
        }
    }
    Outcome2::Failed { code: last.0, message: message_of(last.0), attempts }
}

/// AWS's message for a transformation error code.
fn message_of(code: &str) -> String {
    firehose_kit_domain::failures::code(code).map(|c| c.message.to_string()).unwrap_or_default()
}

/// Records the function marked `ProcessingFailed` are logged once per invocation.
fn log_processing_failed(lane: &Lane, target: &Target, arn: &str, results: &[Answered]) {
    let n = results.iter().filter(|r| matches!(r, Answered::ProcessingFailed)).count();
    if n > 0 {
        let detail = format!("{n} records marked ProcessingFailed");
        lane.ctx.gate.record_failure(target, &Failure::of_processor("Lambda.ProcessingFailedStatus", detail, arn));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_each_records_end_offset_in_56_digits() {
        let packed = Packed { data: vec![0; 30], records: vec![(1, 0..10), (1, 10..10), (2, 10..30)] };
        let ids = record_ids(u64::MAX - 1000, &packed);
        let ends = [u64::MAX - 1000 + 22, u64::MAX - 1000 + 34, u64::MAX - 1000 + 66];
        let want: String = ends.iter().map(|e| format!("{e:056}")).collect();
        assert_eq!(ids, want);
    }
}
