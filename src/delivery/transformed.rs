//! Verify on a transformed stream: what the function makes of each sent line, so every line can be accounted
//! for as transformed and delivered, dropped by the function, or in the processing-failed error output (matched
//! by its original data), and the rest named missing.
//!
//! The prediction runs the deployed function over the run's lines (kept by send as `<run-id>.lines.gz`), in
//! events shaped like Firehose's, through the Lambda API: against the emulator it is the same code running the
//! same way; on AWS it costs one invocation per ~1 MiB of lines.

use serde::Serialize;

use super::compare::Expected;
use crate::pipeline::manifest::line_hash;

fn manifest_hash(line: &[u8]) -> u64 {
    line_hash(line) as u64
}
use crate::firehose::transform::{self, InputRecord, Transformed};

/// What the function makes of the sent lines.
#[derive(Debug, Default)]
pub struct Prediction {
    /// Hashes of the delivered lines the `Ok` results should produce.
    pub outputs: Vec<u64>,
    /// For each line the function transforms: its hash and the hashes of its output lines.
    pub ok_sources: Vec<(u64, Vec<u64>)>,
    /// Hashes of the lines the function marks `ProcessingFailed`.
    pub failed: Vec<u64>,
    /// Hashes of the lines the function drops.
    pub dropped_sources: Vec<u64>,
    pub dropped: u64,
    pub lines: u64,
}

/// Bytes of line data per prediction event (Firehose's default processor buffer is 1 MiB).
const EVENT_BYTES: usize = 1 << 20;
/// The size an event may reach, as serialized (Lambda's synchronous payload limit is 6 MB): short lines cost
/// more in their JSON (record id, timestamp, base64) than in their data.
const EVENT_JSON_BYTES: usize = 5_000_000;

/// What one record adds to a serialized event: its base64 data and about 130 bytes of JSON around it.
fn event_cost(line: &[u8]) -> usize {
    (line.len() + 1).div_ceil(3) * 4 + 130
}

/// Runs `invoke` (the function: an event in, its answer's body out, or why it failed) over `lines`.
pub async fn predict<F, Fut>(
    lines: &[Vec<u8>],
    stream_arn: &str,
    region: &str,
    mut invoke: F,
) -> crate::Result<Prediction>
where
    F: FnMut(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = crate::Result<Result<Vec<u8>, String>>>,
{
    let mut p = Prediction { lines: lines.len() as u64, ..Default::default() };
    let mut start = 0;
    while start < lines.len() {
        let (mut end, mut bytes, mut json) = (start, 0, 0);
        while end < lines.len()
            && (end == start
                || (bytes + lines[end].len() < EVENT_BYTES && json + event_cost(&lines[end]) < EVENT_JSON_BYTES))
        {
            bytes += lines[end].len() + 1;
            json += event_cost(&lines[end]);
            end += 1;
        }
        let batch: Vec<Vec<u8>> = lines[start..end].iter().map(|l| [l.as_slice(), b"\n"].concat()).collect();
        let ids: Vec<String> = (start..end).map(|i| format!("{i:056}")).collect();
        let now = chrono::Utc::now().timestamp_millis();
        let records: Vec<InputRecord<'_>> =
            batch.iter().zip(&ids).map(|(d, id)| InputRecord { id, arrival_ms: now, data: d }).collect();
        let event = transform::event(&uuid::Uuid::new_v4().to_string(), stream_arn, region, &records);
        let body = invoke(serde_json::to_vec(&event).expect("an event serializes")).await?.map_err(|why| {
            crate::Error::failed(format!("the transformation function failed on the run's lines: {why}"))
                .with_hint("verify predicts a transformed stream's output by running its function over what was sent: fix the function, then verify again")
        })?;
        let results = transform::parse_answer(&body, &ids).map_err(|bad| {
            crate::Error::failed(format!(
                "the transformation function's answer is refused ({}): {}",
                bad.code, bad.message
            ))
        })?;
        for (line, result) in lines[start..end].iter().zip(results) {
            let source = manifest_hash(line);
            match result {
                Transformed::Ok { data, .. } => {
                    let outs: Vec<u64> =
                        data.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(manifest_hash).collect();
                    p.outputs.extend_from_slice(&outs);
                    p.ok_sources.push((source, outs));
                }
                Transformed::Dropped => {
                    p.dropped += 1;
                    p.dropped_sources.push(source);
                }
                Transformed::ProcessingFailed => p.failed.push(source),
            }
        }
        start = end;
    }
    Ok(p)
}

/// How the sent lines were accounted for.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TransformTally {
    pub function: String,
    pub lines: u64,
    /// Lines the function transforms, whose output was all delivered.
    pub transformed: u64,
    pub dropped: u64,
    /// Lines in the processing-failed output, as the function marked them.
    pub processing_failed: u64,
    /// Lines the function would transform but that are in the processing-failed output (an invocation failed:
    /// timeout, error, access denied; the stream's error log says which).
    pub failed_invocations: u64,
    /// Lines in none of these.
    pub missing: u64,
}

impl TransformTally {
    /// Every line transformed and delivered, dropped, or failed by the function itself: a line in the error
    /// output because its invocation failed was never transformed, and is not delivered.
    pub fn complete(&self) -> bool {
        self.missing == 0 && self.failed_invocations == 0
    }
}

/// Accounts for every sent line once the delivered output (`delivered`, the comparison over
/// [`Prediction::outputs`]) and the processing-failed documents' original data (`failed_raw`) are known.
pub fn account(function: &str, p: &Prediction, delivered: &Expected, failed_raw: &[Vec<u8>]) -> TransformTally {
    let mut t =
        TransformTally { function: function.to_string(), lines: p.lines, dropped: p.dropped, ..Default::default() };
    let mut failed_expected = Expected::from_hashes(p.failed.clone());
    let mut unplaced = Vec::new();
    for raw in failed_raw {
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let h = manifest_hash(line);
        if !failed_expected.take_missing(h) {
            unplaced.push(h);
        }
    }
    let failed_tally = failed_expected.tally();
    t.processing_failed = failed_tally.matched;
    t.missing += failed_tally.missing;
    // A line whose invocation failed is in the error output with its original data, whatever the function would
    // have answered: those are taken out first (a transformed line's output is then missing, a dropped line was
    // never dropped), and the delivered output is shared among the rest.
    let mut failed_invocation = Expected::from_hashes(unplaced);
    for source in &p.dropped_sources {
        if failed_invocation.take_missing(*source) {
            t.dropped -= 1;
            t.failed_invocations += 1;
        }
    }
    let mut rest = Vec::new();
    for (source, outs) in &p.ok_sources {
        if failed_invocation.take_missing(*source) {
            t.failed_invocations += 1;
        } else {
            rest.push(outs);
        }
    }
    // Each delivered occurrence of an output line serves one source line.
    let mut available: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    for outs in rest {
        let mut need: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
        for o in outs {
            *need.entry(*o).or_default() += 1;
            available.entry(*o).or_insert_with(|| delivered.counts(*o).map_or(0, |(e, s)| e.min(s)));
        }
        if need.iter().all(|(o, n)| available[o] >= *n) {
            for (o, n) in need {
                *available.get_mut(&o).expect("counted") -= n;
            }
            t.transformed += 1;
        } else {
            t.missing += 1;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> u64 {
        manifest_hash(s.as_bytes())
    }

    #[test]
    fn a_failed_invocation_is_taken_out_before_the_delivered_output_is_shared() {
        // A makes {x}, C makes {x, y}; A's invocation failed (it is in the error output), C's output arrived.
        let p = Prediction {
            outputs: vec![h("x"), h("x"), h("y")],
            ok_sources: vec![(h("A"), vec![h("x")]), (h("C"), vec![h("x"), h("y")])],
            lines: 2,
            ..Default::default()
        };
        let mut delivered = Expected::from_hashes(p.outputs.clone());
        delivered.observe(h("x"));
        delivered.observe(h("y"));
        let t = account("f", &p, &delivered, &[b"A\n".to_vec()]);
        assert_eq!((t.transformed, t.failed_invocations, t.missing), (1, 1, 0), "{t:?}");
    }

    #[test]
    fn a_line_the_function_drops_but_whose_invocation_failed_is_not_dropped() {
        let p = Prediction { dropped: 1, dropped_sources: vec![h("D")], lines: 1, ..Default::default() };
        let t = account("f", &p, &Expected::default(), &[b"D\n".to_vec()]);
        assert_eq!((t.dropped, t.failed_invocations, t.complete()), (0, 1, false), "{t:?}");
    }

    #[tokio::test]
    async fn short_lines_are_cut_into_events_under_lambdas_payload_limit() {
        let lines: Vec<Vec<u8>> = (0..60_000).map(|i| format!("{i}").into_bytes()).collect();
        let mut events = 0;
        let p = predict(&lines, "arn", "us-east-2", |event| {
            events += 1;
            assert!(event.len() < 6_000_000, "an event of {} bytes", event.len());
            let doc: serde_json::Value = serde_json::from_slice(&event).unwrap();
            let records: Vec<serde_json::Value> = doc["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| serde_json::json!({"recordId": r["recordId"], "result": "Ok", "data": r["data"]}))
                .collect();
            async move { Ok(Ok(serde_json::to_vec(&serde_json::json!({"records": records})).unwrap())) }
        })
        .await
        .unwrap();
        assert!(events > 1);
        assert_eq!(p.ok_sources.len(), 60_000);
    }
}
