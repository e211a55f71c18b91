//! A transformed stream: every sent line accounted for as transformed and delivered, dropped by the function,
//! or processing-failed. verify runs the function over the sent lines to know what to expect (see
//! [`crate::delivery::transformed`]) and proves the delivery by content, by counts when the function stamps its
//! output, or per line through `--match`.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::aws::Clients;
use crate::delivery::compare::{Expected, Tally};
use crate::delivery::lines::{HOLD_FOR_PARSING, Line, Splitter};
use crate::delivery::transformed::{
    Prediction, Proof, TransformTally, account, account_by_counts, answers_alike, invocations_for, predict,
};
use crate::error::{Error, Result};
use crate::firehose::partitioning::Query;
use crate::pipeline::manifest::line_hash;
use crate::settings::{Global, VerifySettings};
use crate::ui::{Reporter, format_count, plural};

use super::poll::Found;
use super::poll::each_line;
use super::runs::sent_lines;
use super::scope::{Expectations, Layout};
use super::{Run, VerifyReport};

/// Missing lines named with `--match`.
const SHOW_MISSING: usize = 20;

/// A transformed stream's expectation: the function, what it makes of the sent lines, and the proof.
pub(super) struct Transform {
    pub(super) function: String,
    /// What the function makes of the sent lines ([keyed by source](Prediction::keyed_by_source) with --match).
    pub(super) prediction: Prediction,
    pub(super) proof: Proof,
    /// `--match`: the path to the field of each delivered document that carries its source line.
    pub(super) field: Option<Arc<Query>>,
    /// The sent lines (the first [`Prediction::sample_lines`] are checked again; --match names missing ones).
    lines: Vec<Vec<u8>>,
    /// A proof by counts counts documents in objects delivered from here on (the runs' start, or `--since`):
    /// an object delivered earlier cannot hold the runs' lines, and its documents are another run's.
    counted_from: Option<DateTime<Utc>>,
    stream_arn: String,
    region: String,
}

/// Invokes the function as verify's prediction does: a function that does not exist is an answer (Firehose's
/// invocations fail the same way), anything else that keeps verify from asking is an error.
async fn invoke(clients: &Clients, function: &str, event: Vec<u8>) -> Result<std::result::Result<Vec<u8>, String>> {
    match crate::aws::lambda::invoke(&clients.lambda, function, event).await {
        Err(err) if err.aws_code() == Some("ResourceNotFoundException") => {
            Ok(Err(format!("Lambda.ResourceNotFound: the function `{function}` does not exist")))
        }
        other => other,
    }
}

/// Runs the function over the sent lines and chooses the proof.
pub(super) async fn expect(
    global: &Global,
    s: &VerifySettings,
    clients: &Clients,
    reporter: &dyn Reporter,
    runs: &[Run],
    (stream_arn, function): (&str, &str),
) -> Result<(Expected, Transform)> {
    let field = match &s.match_path {
        Some(path) => Some(Arc::new(Query::compile(path).map_err(|_| {
            Error::usage(format!("--match `{path}` is not a jq path"))
                .with_hint("name the field of each delivered document that holds its source line, e.g. --match .line")
        })?)),
        None => None,
    };
    let lines = sent_lines(global, s, runs)?;
    let invocations = invocations_for(&lines) + 1;
    let cost = if clients.endpoint_url.is_none() {
        format!(" ({invocations} invocations of the deployed function, billed by Lambda)")
    } else {
        String::new()
    };
    reporter.note(&format!(
        "the stream transforms records with {function}: running it over the {}{cost} to know what to expect",
        plural(lines.len() as u64, "sent line"),
    ));
    let prediction = predict(&lines, stream_arn, &clients.region, |event| invoke(clients, function, event)).await?;
    if let Some(why) = &prediction.failure {
        reporter.note(&format!(
            "the function failed on {} when verify ran it ({why}): they belong in the processing-failed output",
            plural(prediction.unpredicted.len() as u64, "line")
        ));
    }
    let proof = match (&field, prediction.deterministic) {
        (Some(_), _) => Proof::Match,
        (None, Some(false)) => {
            reporter.note(&format!(
                "{function} answered the same lines differently twice (it stamps its output): proving delivery by counts; --match PATH proves it line by line"
            ));
            Proof::Counts
        }
        (None, _) => Proof::Content,
    };
    let prediction = if proof == Proof::Match { prediction.keyed_by_source() } else { prediction };
    let expected = match proof {
        Proof::Counts => Expected::default(),
        _ => Expected::from_hashes(prediction.outputs.clone()),
    };
    let transform = Transform {
        function: function.to_string(),
        prediction,
        proof,
        field,
        lines,
        // LastModified may be whole seconds: a second of slack.
        counted_from: s
            .since
            .or_else(|| runs.iter().map(|(r, _)| r.started).min())
            .map(|t| t - chrono::Duration::seconds(1)),
        stream_arn: stream_arn.to_string(),
        region: clients.region.clone(),
    };
    Ok((expected, transform))
}

/// The sent lines accounted for by `proof`, with what has been found so far.
fn tally(x: &Transform, proof: Proof, expected: &Expected, found: &Found) -> TransformTally {
    match proof {
        Proof::Counts => {
            let delivered = found
                .objects
                .iter()
                .filter(|o| match (x.counted_from, o.last_modified) {
                    (Some(from), Some(lm)) => lm >= from,
                    _ => true,
                })
                .map(|o| o.lines)
                .sum();
            account_by_counts(&x.function, &x.prediction, delivered, &found.failed_raw)
        }
        _ => account(&x.function, proof, &x.prediction, expected, &found.failed_raw),
    }
}

/// Lines in none of the outcomes yet (what polling waits for): output not delivered, and lines not yet in the
/// processing-failed output that belong there.
pub(super) async fn pending(e: &Expectations, l: &Layout, clients: &Clients, found: &mut Found) -> Result<u64> {
    let Some(x) = &e.transform else { return Ok(0) };
    read_processing_failed(clients, &l.bucket, found).await?;
    let expected = e.expected.lock().expect("expected lock");
    Ok(tally(x, x.proof, &expected, found).missing)
}

/// On a transformed stream, every sent line accounted for, and (a proof by counts) the comparison as counts of
/// documents. A proof by content that finds lines missing first checks the function still answers alike (one
/// that stamps the time in seconds can answer alike twice in a row): when it does not, the proof is by counts.
pub(super) async fn account_transformed(
    e: &Expectations,
    l: &Layout,
    found: &mut Found,
    clients: &Clients,
    reporter: &dyn Reporter,
) -> Result<Option<(TransformTally, Option<Tally>)>> {
    let Some(x) = &e.transform else { return Ok(None) };
    read_processing_failed(clients, &l.bucket, found).await?;
    let mut proof = x.proof;
    let first = tally(x, proof, &e.expected.lock().expect("expected lock"), found);
    let sample = &x.lines[..x.prediction.sample_lines];
    if proof == Proof::Content && first.missing > 0 && !sample.is_empty() {
        let alike = answers_alike(sample, &x.stream_arn, &x.region, |event| invoke(clients, &x.function, event));
        if !alike.await? {
            reporter.note(&format!(
                "{} answers the same lines differently now (it stamps its output): proving delivery by counts",
                x.function
            ));
            proof = Proof::Counts;
        }
    }
    if proof != Proof::Counts {
        return Ok(Some((first, None)));
    }
    let t = tally(x, proof, &Expected::default(), found);
    let delivered = t.documents_delivered;
    let counted = Tally {
        expected: t.documents_made,
        matched: delivered.min(t.documents_made),
        missing: t.documents_made.saturating_sub(delivered),
        duplicated: 0,
        extra: delivered.saturating_sub(t.documents_made),
    };
    Ok(Some((t, Some(counted))))
}

/// With `--match`: up to [`SHOW_MISSING`] sent lines whose documents did not arrive, as `line N: text`.
pub(super) fn missing_lines(e: &Expectations) -> Vec<String> {
    let Some(x) = e.transform.as_ref().filter(|x| x.proof == Proof::Match) else { return Vec::new() };
    let mut expected = e.expected.lock().expect("expected lock");
    let mut out = Vec::new();
    for (n, line) in x.lines.iter().enumerate() {
        if out.len() >= SHOW_MISSING {
            break;
        }
        if expected.take_missing(line_hash(line) as u64) {
            out.push(format!("line {}: {}", n + 1, String::from_utf8_lossy(line)));
        }
    }
    out
}

/// Reads the processing-failed objects not read yet (this stream's error objects), keeping each record's
/// original data (`rawData`).
async fn read_processing_failed(clients: &Clients, bucket: &str, found: &mut Found) -> Result<()> {
    let new: Vec<String> = found
        .error_objects
        .iter()
        .filter(|k| k.contains("processing-failed") && !found.failed_read.contains(*k))
        .cloned()
        .collect();
    for key in new {
        let raws = each_line(clients, bucket, &key, Vec::new(), |raws, line| {
            let doc: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
            // One record each (a record holding several lines fails whole: each of its lines is accounted).
            if let Some(raw) = doc["rawData"].as_str().and_then(|r| base64_simd::STANDARD.decode_to_vec(r).ok()) {
                raws.push(crate::delivery::transformed::record_hashes(&raw));
            }
        })
        .await?;
        found.failed_raw.extend(raws);
        found.failed_read.insert(key);
    }
    Ok(())
}

/// With `--match`: the decoded bytes of a delivered object, split into documents, each observed as the hash of
/// its field (the source line); a document without the field is observed as itself (an extra line).
pub(super) struct FieldHasher {
    field: Arc<Query>,
    expected: Arc<Mutex<Expected>>,
    split: Splitter,
    pub(super) matched: u64,
}

impl FieldHasher {
    pub(super) fn new(field: Arc<Query>, expected: Arc<Mutex<Expected>>) -> Self {
        FieldHasher { field, expected, split: Splitter::new(HOLD_FOR_PARSING), matched: 0 }
    }

    fn document(field: &Query, expected: &Mutex<Expected>, matched: &mut u64, doc: Line) {
        let hash = match doc {
            Line::Whole(doc) => match field.text(doc) {
                Ok(source) => line_hash(source.as_bytes()),
                Err(_) => line_hash(doc),
            },
            // Longer than any document a function returns: observed as itself (an extra line).
            Line::Long { hash, .. } => hash,
        };
        if expected.lock().expect("expected lock").observe(hash as u64) {
            *matched += 1;
        }
    }

    /// The last document, when the object does not end with `\n`.
    pub(super) fn finish(&mut self) {
        let FieldHasher { field, expected, split, matched } = self;
        split.finish(&mut |doc| Self::document(field, expected, matched, doc));
    }
}

impl std::io::Write for FieldHasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let FieldHasher { field, expected, split, matched } = self;
        split.feed(buf, &mut |doc| Self::document(field, expected, matched, doc));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The verdict on a transformed stream: about the sent lines, each accounted for once.
pub(super) fn transform_verdict(r: &VerifyReport, x: &TransformTally) -> String {
    let accounted = format!(
        "{} transformed and delivered · {} dropped by the function · {} processing-failed{}",
        format_count(x.transformed),
        format_count(x.dropped),
        format_count(x.processing_failed),
        if x.failed_invocations > 0 {
            format!(" · {} in the error output after failed invocations", format_count(x.failed_invocations))
        } else {
            String::new()
        }
    );
    let by_counts = x.proof == Proof::Counts;
    if r.verified {
        let proof = match x.proof {
            Proof::Content => String::new(),
            Proof::Counts => format!(
                " (proved by counts: {} of the {} the function made of them delivered)",
                format_count(x.documents_delivered.min(x.documents_made)),
                plural(x.documents_made, "document")
            ),
            Proof::Match => " (proved line by line through --match)".to_string(),
        };
        format!("OK: all {} accounted for: {accounted}{proof}", plural(x.lines, "sent line"))
    } else if x.missing == 0 && x.failed_invocations > 0 {
        format!(
            "FAILED: {} of {} in the processing-failed output because invocations failed (never transformed; the error log says why) ({accounted})",
            format_count(x.failed_invocations),
            plural(x.lines, "sent line")
        )
    } else if x.missing == 0 && r.misplaced_lines > 0 {
        format!("FAILED: {} in the wrong partition ({accounted})", plural(r.misplaced_lines, "line is|lines are"))
    } else if x.missing == 0 && r.tally.missing == 0 {
        format!("FAILED: every line accounted for, but {} duplicated (--strict)", plural(r.tally.duplicated, "line"))
    } else if by_counts && x.documents_made > x.documents_delivered {
        format!(
            "FAILED: {} of the {} the function made of the run's lines did not arrive (proved by counts: the function stamps its output; --match PATH names the lines) ({accounted})",
            format_count(x.documents_made - x.documents_delivered),
            plural(x.documents_made, "document")
        )
    } else {
        format!(
            "FAILED: {} of {} in none of the outcomes ({accounted})",
            format_count(x.missing),
            plural(x.lines, "sent line")
        )
    }
}
