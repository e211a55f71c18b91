//! Verify on a transformed stream: what the function makes of each sent line, so every line can be accounted
//! for as transformed and delivered, dropped by the function, or in the processing-failed error output (matched
//! by its original data), and the rest named missing.
//!
//! The prediction runs the deployed function over the run's lines (kept by send as `<run-id>.lines.gz`), in
//! events shaped like Firehose's, through the Lambda API: against the emulator it is the same code running the
//! same way; on AWS it costs one invocation per ~1 MiB of lines. Its first event runs twice: a function whose
//! output differs between calls (a uuid or the processing time stamped on each document, as most enrichment
//! does) cannot be predicted, and its delivery is proved by counts instead ([`Proof::Counts`]), or per line
//! through the field that carries the source line ([`Proof::Match`]). An invocation that fails in verify's own
//! run (the function raises, times out, is gone, or answers wrongly) is an outcome too: Firehose puts those
//! lines in the processing-failed output after its retries.

use serde::Serialize;

use super::compare::Expected;
use crate::firehose::transform::{self, InputRecord, Transformed};
use crate::pipeline::manifest::line_hash;

fn manifest_hash(line: &[u8]) -> u64 {
    line_hash(line) as u64
}

/// A processing-failed record's original data as verify keeps it: the hash of each of its lines.
pub fn record_hashes(raw: &[u8]) -> Vec<u64> {
    raw.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(manifest_hash).collect()
}

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
    /// Hashes of the lines whose invocation failed when verify ran the function (see [`Prediction::failure`]).
    pub unpredicted: Vec<u64>,
    /// Why the first such invocation failed.
    pub failure: Option<String>,
    /// Whether the first event's answer was the same twice (`None`: no event was answered).
    pub deterministic: Option<bool>,
    /// The first event's lines (a prefix of the sent lines), kept to check again later.
    pub sample_lines: usize,
    pub invocations: u64,
}

impl Prediction {
    /// The same prediction keyed by source line: each output document stands for the line it came from (what a
    /// delivered document's `--match` field yields), so a function that stamps its output is proved per line.
    pub fn keyed_by_source(&self) -> Prediction {
        let ok_sources: Vec<(u64, Vec<u64>)> =
            self.ok_sources.iter().map(|(s, outs)| (*s, vec![*s; outs.len()])).collect();
        Prediction {
            outputs: ok_sources.iter().flat_map(|(_, o)| o.iter().copied()).collect(),
            ok_sources,
            failed: self.failed.clone(),
            dropped_sources: self.dropped_sources.clone(),
            unpredicted: self.unpredicted.clone(),
            failure: self.failure.clone(),
            dropped: self.dropped,
            lines: self.lines,
            deterministic: self.deterministic,
            sample_lines: self.sample_lines,
            invocations: self.invocations,
        }
    }

    /// The documents the function makes of the lines it transforms.
    pub fn documents(&self) -> u64 {
        self.ok_sources.iter().map(|(_, o)| o.len() as u64).sum()
    }
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

/// Where the event starting at line `start` ends.
fn event_end(lines: &[Vec<u8>], start: usize) -> usize {
    let (mut end, mut bytes, mut json) = (start, 0, 0);
    while end < lines.len()
        && (end == start
            || (bytes + lines[end].len() < EVENT_BYTES && json + event_cost(&lines[end]) < EVENT_JSON_BYTES))
    {
        bytes += lines[end].len() + 1;
        json += event_cost(&lines[end]);
        end += 1;
    }
    end
}

/// How many invocations predicting `lines` takes (one more checks the function answers alike twice).
pub fn invocations_for(lines: &[Vec<u8>]) -> u64 {
    let (mut start, mut n) = (0, 0);
    while start < lines.len() {
        start = event_end(lines, start);
        n += 1;
    }
    n
}

/// Runs the function over `lines[start..end]` as one Firehose event: its results, or why the invocation failed
/// (as Firehose would see it: the function's error, or an answer it refuses).
async fn run_event<F, Fut>(
    lines: &[Vec<u8>],
    (start, end): (usize, usize),
    (stream_arn, region): (&str, &str),
    invoke: &mut F,
) -> crate::Result<Result<Vec<Transformed>, String>>
where
    F: FnMut(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = crate::Result<Result<Vec<u8>, String>>>,
{
    let batch: Vec<Vec<u8>> = lines[start..end].iter().map(|l| [l.as_slice(), b"\n"].concat()).collect();
    let ids: Vec<String> = (start..end).map(|i| format!("{i:056}")).collect();
    let now = chrono::Utc::now().timestamp_millis();
    let records: Vec<InputRecord<'_>> =
        batch.iter().zip(&ids).map(|(d, id)| InputRecord { id, arrival_ms: now, data: d }).collect();
    let event = transform::event(&uuid::Uuid::new_v4().to_string(), stream_arn, region, &records);
    let body = match invoke(serde_json::to_vec(&event).expect("an event serializes")).await? {
        Ok(body) => body,
        Err(why) => return Ok(Err(why)),
    };
    Ok(transform::parse_answer(&body, &ids).map_err(|bad| format!("{}: {}", bad.code, bad.message)))
}

/// Runs `invoke` (the function: an event in, its answer's body out, or why it failed) over `lines`. An error is
/// only what keeps verify from asking (the endpoint unreachable, access denied to verify itself): what the
/// function does is recorded in the prediction.
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
        let end = event_end(lines, start);
        p.invocations += 1;
        let results = match run_event(lines, (start, end), (stream_arn, region), &mut invoke).await? {
            Ok(results) => results,
            Err(why) => {
                p.unpredicted.extend(lines[start..end].iter().map(|l| manifest_hash(l)));
                p.failure.get_or_insert(why);
                start = end;
                continue;
            }
        };
        if p.deterministic.is_none() {
            // The first answered event runs again: the same answer, or the function stamps its output.
            p.invocations += 1;
            let again = run_event(lines, (start, end), (stream_arn, region), &mut invoke).await?;
            p.deterministic = Some(again.as_ref() == Ok(&results));
            p.sample_lines = end;
        }
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

/// Whether the function still answers `sample` (the first event's lines) as it did: run twice more, later (a
/// function that stamps the time in whole seconds answers alike within one second).
pub async fn answers_alike<F, Fut>(
    sample: &[Vec<u8>],
    stream_arn: &str,
    region: &str,
    mut invoke: F,
) -> crate::Result<bool>
where
    F: FnMut(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = crate::Result<Result<Vec<u8>, String>>>,
{
    let whole = (0, sample.len());
    let first = run_event(sample, whole, (stream_arn, region), &mut invoke).await?;
    let second = run_event(sample, whole, (stream_arn, region), &mut invoke).await?;
    Ok(first == second)
}

/// How the delivery was proved.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Proof {
    /// Each delivered line compared with the function's output for the sent lines.
    #[default]
    Content,
    /// The function's output differs between calls: the documents it makes of the run's lines counted against
    /// those delivered.
    Counts,
    /// Each delivered document's `--match` field compared with the sent lines.
    Match,
}

impl Proof {
    pub fn describe(self) -> &'static str {
        match self {
            Proof::Content => "by content: each delivered line is the function's output for a sent line",
            Proof::Counts => {
                "by counts: the function stamps its output (its answers differ between calls), so the documents it makes of the run's lines are counted against those delivered"
            }
            Proof::Match => "per line: each delivered document's --match field is a sent line",
        }
    }
}

/// How the sent lines were accounted for.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TransformTally {
    pub function: String,
    pub proof: Proof,
    pub lines: u64,
    /// Lines the function transforms, whose output was all delivered.
    pub transformed: u64,
    pub dropped: u64,
    /// Lines in the processing-failed output, as the function marked them.
    pub processing_failed: u64,
    /// Lines the function would transform but that are in the processing-failed output (an invocation failed:
    /// timeout, error, access denied, the function gone; the stream's error log says which).
    pub failed_invocations: u64,
    /// Lines in none of these (a proof by counts: at least this many, from the documents missing).
    pub missing: u64,
    /// The documents the function makes of the lines it transforms, and those delivered (a proof by counts).
    pub documents_made: u64,
    pub documents_delivered: u64,
    /// The documents the function would make of lines that are in the processing-failed output instead (failed
    /// with their record, or their invocation failed): not expected in the delivered objects.
    pub documents_not_due: u64,
    /// Why the function failed when verify ran it (its lines then belong in the processing-failed output).
    pub invocation_error: Option<String>,
}

impl TransformTally {
    /// Every line transformed and delivered, dropped, or failed by the function itself: a line in the error
    /// output because its invocation failed was never transformed, and is not delivered.
    pub fn complete(&self) -> bool {
        self.missing == 0 && self.failed_invocations == 0
    }
}

/// The processing-failed output against the prediction: lines the function marked failed, then lines whose
/// invocation failed (verify's own run failed on them, then lines it would drop or transform: their delivery
/// failed). Returns the transforming lines not in the error output, and the lines verify could not run the
/// function on that are not there either.
fn place_errors<'p>(p: &'p Prediction, failed_raw: &[Vec<u64>], t: &mut TransformTally) -> (Vec<&'p [u64]>, u64) {
    let mut failed_expected = Expected::from_hashes(p.failed.clone());
    // Lines of a record the function failed because of another line in it (a record holding several lines
    // fails whole): processing-failed with their record, not lost and not failed invocations.
    let mut with_their_record = Vec::new();
    let mut unplaced = Vec::new();
    // A record is failed by the function when it holds a line the function fails (another run may have sent
    // the same line: whether that copy was already counted does not change why this record failed).
    let fails: std::collections::HashSet<u64> = p.failed.iter().copied().collect();
    for record in failed_raw {
        let mut failed_here = false;
        let mut others = Vec::new();
        for &h in record {
            failed_here |= fails.contains(&h);
            if !failed_expected.take_missing(h) {
                others.push(h);
            }
        }
        if failed_here { with_their_record.extend(others) } else { unplaced.extend(others) }
    }
    let failed_tally = failed_expected.tally();
    t.processing_failed = failed_tally.matched;
    t.missing += failed_tally.missing;
    let mut with_their_record = Expected::from_hashes(with_their_record);
    let mut failed_invocation = Expected::from_hashes(unplaced);
    // Where a source line is in the error output: failed with its record, or after failed invocations.
    let mut place = |source: u64, t: &mut TransformTally| {
        if with_their_record.take_missing(source) {
            t.processing_failed += 1;
            true
        } else if failed_invocation.take_missing(source) {
            t.failed_invocations += 1;
            true
        } else {
            false
        }
    };
    let mut unpredicted_left = 0;
    for source in &p.unpredicted {
        if !place(*source, t) {
            unpredicted_left += 1;
        }
    }
    for source in &p.dropped_sources {
        if place(*source, t) {
            t.dropped -= 1;
        }
    }
    let mut rest = Vec::new();
    for (source, outs) in &p.ok_sources {
        if !place(*source, t) {
            rest.push(outs.as_slice());
        }
    }
    (rest, unpredicted_left)
}

fn tally_for(function: &str, proof: Proof, p: &Prediction) -> TransformTally {
    TransformTally {
        function: function.to_string(),
        proof,
        lines: p.lines,
        dropped: p.dropped,
        documents_made: p.documents(),
        invocation_error: p.failure.clone(),
        ..Default::default()
    }
}

/// Accounts for every sent line once the delivered output (`delivered`, the comparison over
/// [`Prediction::outputs`]) and the processing-failed documents' original data (`failed_raw`) are known.
/// `proof` is [`Proof::Content`], or [`Proof::Match`] with `p` [keyed by source](Prediction::keyed_by_source).
/// Lines verify could not run the function on, and not in the error output, are delivered only as far as
/// documents nothing else explains (the comparison's extra lines) cover them.
pub fn account(
    function: &str,
    proof: Proof,
    p: &Prediction,
    delivered: &Expected,
    failed_raw: &[Vec<u64>],
) -> TransformTally {
    let mut t = tally_for(function, proof, p);
    let (rest, unpredicted) = place_errors(p, failed_raw, &mut t);
    t.documents_not_due = p.documents() - rest.iter().map(|o| o.len() as u64).sum::<u64>();
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
    let covered = unpredicted.min(delivered.tally().extra);
    t.transformed += covered;
    t.missing += unpredicted - covered;
    t.documents_delivered = delivered.tally().matched;
    t
}

/// Accounts for every sent line by counts (the function's output differs between calls): the documents it
/// makes of the lines it transforms against `delivered_documents`, the lines of this stream's objects in the
/// runs' window. Missing documents are named as lines at least (a line makes one document or more).
pub fn account_by_counts(
    function: &str,
    p: &Prediction,
    delivered_documents: u64,
    failed_raw: &[Vec<u64>],
) -> TransformTally {
    let mut t = tally_for(function, Proof::Counts, p);
    let (rest, unpredicted) = place_errors(p, failed_raw, &mut t);
    let made: u64 = rest.iter().map(|o| o.len() as u64).sum();
    let most = rest.iter().map(|o| o.len() as u64).max().unwrap_or(1).max(1);
    let short = made.saturating_sub(delivered_documents);
    // Documents beyond what the predicted lines make cover the lines verify could not run the function on.
    let spare = delivered_documents.saturating_sub(made);
    let covered = unpredicted.min(spare);
    let missing_lines = short.div_ceil(most).min(rest.len() as u64);
    t.transformed = rest.len() as u64 - missing_lines + covered;
    t.missing += missing_lines + (unpredicted - covered);
    t.documents_made = made;
    t.documents_delivered = delivered_documents;
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
        let t = account("f", Proof::Content, &p, &delivered, &[record_hashes(b"A\n")]);
        assert_eq!((t.transformed, t.failed_invocations, t.missing), (1, 1, 0), "{t:?}");
    }

    #[test]
    fn lines_packed_with_a_failing_line_are_processing_failed_with_their_record() {
        // A and B transform, X fails; A and X were sent in one record, which the function failed whole.
        let p = Prediction {
            outputs: vec![h("a"), h("b")],
            ok_sources: vec![(h("A"), vec![h("a")]), (h("B"), vec![h("b")])],
            failed: vec![h("X")],
            lines: 3,
            ..Default::default()
        };
        let mut delivered = Expected::from_hashes(p.outputs.clone());
        delivered.observe(h("b"));
        let t = account("f", Proof::Content, &p, &delivered, &[record_hashes(b"A\nX\n")]);
        assert_eq!((t.transformed, t.processing_failed, t.failed_invocations, t.missing), (1, 2, 0, 0), "{t:?}");
        assert!(t.complete(), "{t:?}");
        // Another run's copy of X, failed alone and read first, does not hide why A's record failed.
        let t = account("f", Proof::Content, &p, &delivered, &[record_hashes(b"X\n"), record_hashes(b"A\nX\n")]);
        assert_eq!((t.processing_failed, t.failed_invocations, t.missing), (2, 0, 0), "{t:?}");
    }

    #[test]
    fn a_line_the_function_drops_but_whose_invocation_failed_is_not_dropped() {
        let p = Prediction { dropped: 1, dropped_sources: vec![h("D")], lines: 1, ..Default::default() };
        let t = account("f", Proof::Content, &p, &Expected::default(), &[record_hashes(b"D\n")]);
        assert_eq!((t.dropped, t.failed_invocations, t.complete()), (0, 1, false), "{t:?}");
    }

    #[test]
    fn lines_verify_could_not_run_the_function_on_are_found_in_the_error_output_or_missing() {
        let p = Prediction {
            unpredicted: vec![h("R"), h("S")],
            failure: Some("Unhandled: boom".into()),
            lines: 2,
            ..Default::default()
        };
        let t = account("f", Proof::Content, &p, &Expected::default(), &[record_hashes(b"R\n")]);
        assert_eq!((t.failed_invocations, t.missing), (1, 1), "{t:?}");
        assert_eq!(t.invocation_error.as_deref(), Some("Unhandled: boom"));
        // Delivered documents nothing else explains cover them (the function failed in verify, not in delivery).
        let mut delivered = Expected::default();
        delivered.observe(h("whatever the function made"));
        let t = account("f", Proof::Content, &p, &delivered, &[record_hashes(b"R\n")]);
        assert_eq!((t.failed_invocations, t.transformed, t.missing), (1, 1, 0), "{t:?}");
    }

    #[test]
    fn counts_prove_a_stamping_functions_delivery_and_name_how_many_are_short() {
        let p = Prediction {
            ok_sources: vec![(h("a"), vec![1]), (h("b"), vec![2]), (h("c"), vec![3])],
            failed: vec![h("bad")],
            lines: 4,
            ..Default::default()
        };
        let t = account_by_counts("f", &p, 3, &[record_hashes(b"bad\n")]);
        assert_eq!((t.transformed, t.processing_failed, t.missing, t.complete()), (3, 1, 0, true), "{t:?}");
        let t = account_by_counts("f", &p, 2, &[record_hashes(b"bad\n")]);
        assert_eq!((t.transformed, t.missing, t.documents_made, t.documents_delivered), (2, 1, 3, 2), "{t:?}");
        let t = account_by_counts("f", &p, 3, &[]);
        assert_eq!(t.missing, 1, "the line the function failed is not in the error output: {t:?}");
    }

    #[test]
    fn keyed_by_source_stands_each_document_for_its_line() {
        let p =
            Prediction { ok_sources: vec![(h("a"), vec![7, 8])], outputs: vec![7, 8], lines: 1, ..Default::default() };
        let k = p.keyed_by_source();
        assert_eq!(k.outputs, vec![h("a"), h("a")]);
        let mut delivered = Expected::from_hashes(k.outputs.clone());
        delivered.observe(h("a"));
        assert_eq!(account("f", Proof::Match, &k, &delivered, &[]).missing, 1, "one of its two documents");
    }

    fn answer_with(event: &[u8], stamp: bool) -> Vec<u8> {
        let doc: serde_json::Value = serde_json::from_slice(event).unwrap();
        let records: Vec<serde_json::Value> = doc["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let data = if stamp {
                    base64_simd::STANDARD.encode_to_string(uuid::Uuid::new_v4().to_string())
                } else {
                    r["data"].as_str().unwrap().to_string()
                };
                serde_json::json!({"recordId": r["recordId"], "result": "Ok", "data": data})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({"records": records})).unwrap()
    }

    #[tokio::test]
    async fn a_function_that_stamps_its_output_is_told_apart_and_a_raising_one_recorded() {
        let lines: Vec<Vec<u8>> = (0..10).map(|i| format!("line {i}").into_bytes()).collect();
        for stamp in [false, true] {
            let p = predict(&lines, "arn", "us-east-2", |event| async move { Ok(Ok(answer_with(&event, stamp))) })
                .await
                .unwrap();
            assert_eq!(p.deterministic, Some(!stamp));
            assert_eq!((p.invocations, p.sample_lines), (2, 10));
        }
        let p =
            predict(&lines, "arn", "us-east-2", |_| async { Ok(Err("Unhandled: boom".to_string())) }).await.unwrap();
        assert_eq!((p.unpredicted.len(), p.deterministic, p.failure.as_deref()), (10, None, Some("Unhandled: boom")));
        let alike = answers_alike(&lines, "arn", "us-east-2", |e| async move { Ok(Ok(answer_with(&e, true))) });
        assert!(!alike.await.unwrap());
    }

    #[tokio::test]
    async fn short_lines_are_cut_into_events_under_lambdas_payload_limit() {
        let lines: Vec<Vec<u8>> = (0..60_000).map(|i| format!("{i}").into_bytes()).collect();
        let mut events = 0;
        let p = predict(&lines, "arn", "us-east-2", |event| {
            events += 1;
            assert!(event.len() < 6_000_000, "an event of {} bytes", event.len());
            async move { Ok(Ok(answer_with(&event, false))) }
        })
        .await
        .unwrap();
        assert!(events > 2);
        assert_eq!(invocations_for(&lines) + 1, events, "one more checks the first event answers alike");
        assert_eq!(p.ok_sources.len(), 60_000);
    }
}
