//! A load generator for a Firehose endpoint (the emulator, mostly): many clients at once, mixing PutRecord and
//! PutRecordBatch across several streams, for a bounded time; then a check that every acknowledged record was
//! delivered exactly once. It drives `make bench`'s load row (`examples/loadgen.rs`) and the load test
//! (`tests/it/load.rs`), through the SDK clients like everything else.
//!
//! Every record is one line, `<client>-<seq>-<filler>\n`, of a fixed size, so the delivered objects can be
//! split back into records and each acknowledged one found. Throttled entries (and throttled calls) are
//! retried, as a producer must; any other failure is counted as an error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use serde::Serialize;

use crate::aws::Clients;
use crate::firehose::types::entry_is_throttled;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub streams: Vec<String>,
    /// Clients per stream, in order (so some streams can be driven past their quota and others not).
    pub clients_per_stream: Vec<usize>,
    /// Every fourth client sends PutRecord, the others PutRecordBatch of this many records.
    pub batch_records: usize,
    /// Bytes per record (one line, newline included).
    pub record_size: usize,
    /// A client of a stream listed here waits this long between calls (a steady producer under its quota).
    pub paced: Vec<(String, Duration)>,
    pub duration: Duration,
}

/// Where a run stops early: the load ends when this is cancelled (or at the spec's duration).
pub type Stop = tokio_util::sync::CancellationToken;

/// What happened.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    pub clients: usize,
    pub seconds: f64,
    pub batch_calls: u64,
    pub record_calls: u64,
    pub records: u64,
    pub bytes: u64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    /// Entries or calls refused with the throughput quota (and retried).
    pub throttled: u64,
    /// Records acknowledged per stream.
    pub per_stream: HashMap<String, u64>,
    pub batch_p50_ms: f64,
    pub batch_p99_ms: f64,
    /// Anything but modelled throttling (should be empty).
    pub errors: Vec<String>,
}

/// The outcome of [`check_delivery`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveryCheck {
    pub acknowledged: u64,
    pub delivered: u64,
    pub missing: u64,
    pub duplicated: u64,
    /// Delivered records nobody acknowledged (a refused entry must never be delivered).
    pub unexpected: u64,
    /// Records of calls that got no answer (the endpoint died mid-call), delivered: allowed, once.
    pub unanswered_delivered: u64,
}

impl DeliveryCheck {
    pub fn exactly_once(&self) -> bool {
        self.missing == 0 && self.duplicated == 0 && self.unexpected == 0 && self.delivered == self.acknowledged
    }
}

/// Acknowledged record ids, per stream: `client << 40 | seq`.
pub type Acked = HashMap<String, Vec<u64>>;

/// What the clients know of their records: acknowledged, or sent in a call that got no answer (the endpoint
/// died or the connection broke: they may or may not have been stored, and are never sent again).
#[derive(Debug, Clone, Default)]
pub struct Outcomes {
    pub acked: Acked,
    pub unanswered: Acked,
}

fn record_id(client: usize, seq: u64) -> u64 {
    ((client as u64) << 40) | seq
}

fn record(client: usize, seq: u64, size: usize) -> Vec<u8> {
    let mut line = format!("{client:03}-{seq:012}-").into_bytes();
    line.resize(size.max(line.len() + 1) - 1, b'x');
    line.push(b'\n');
    line
}

fn parse_id(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line.get(..17)?).ok()?;
    Some(record_id(text.get(..3)?.parse().ok()?, text.get(4..16)?.parse().ok()?))
}

#[derive(Default)]
struct Shared {
    report: LoadReport,
    latencies_ms: Vec<f64>,
    outcomes: Outcomes,
}

/// Runs the load; returns the report and the acknowledged ids.
pub async fn run(clients: &Clients, spec: &LoadSpec) -> (LoadReport, Acked) {
    let (report, outcomes) = run_until(clients, spec, Stop::new()).await;
    (report, outcomes.acked)
}

/// Runs the load until `stop` (or the spec's duration); calls that fail without an answer (an endpoint being
/// killed and restarted) do not stop a client: their records are noted as unanswered and it goes on, after a
/// short pause.
pub async fn run_until(clients: &Clients, spec: &LoadSpec, stop: Stop) -> (LoadReport, Outcomes) {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let started = Instant::now();
    let deadline = started + spec.duration;
    let mut tasks = Vec::new();
    let mut client = 0usize;
    for (stream, &n) in spec.streams.iter().zip(&spec.clients_per_stream) {
        for _ in 0..n {
            let (c, stream, shared, spec) = (clients.put.clone(), stream.clone(), shared.clone(), spec.clone());
            let (id, stop) = (client, stop.clone());
            tasks.push(tokio::spawn(async move { one_client(c, id, stream, spec, deadline, shared, stop).await }));
            client += 1;
        }
    }
    for t in tasks {
        if let Err(e) = t.await {
            shared.lock().expect("load lock").report.errors.push(format!("client task failed: {e}"));
        }
    }
    let mut s = std::mem::take(&mut *shared.lock().expect("load lock"));
    let seconds = started.elapsed().as_secs_f64();
    s.latencies_ms.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        if s.latencies_ms.is_empty() { 0.0 } else { s.latencies_ms[((s.latencies_ms.len() - 1) as f64 * p) as usize] }
    };
    let r = &mut s.report;
    r.clients = client;
    r.seconds = seconds;
    r.records_per_s = r.records as f64 / seconds;
    r.mb_per_s = r.bytes as f64 / 1e6 / seconds;
    r.batch_p50_ms = pct(0.50);
    r.batch_p99_ms = pct(0.99);
    (s.report, s.outcomes)
}

/// What one call did to the pending records: which were accepted, how many were refused by the quota (to
/// resend), and an error: answered (the records were refused) or unanswered (the endpoint died mid-call: they
/// may or may not have been stored).
struct CallOutcome {
    accepted: Vec<usize>,
    refused: usize,
    error: Option<(String, bool)>,
}

/// One PutRecord (of the first pending record) or PutRecordBatch (of all of them).
async fn call(c: &aws_sdk_firehose::Client, stream: &str, pending: &[(u64, Vec<u8>)], single: bool) -> CallOutcome {
    use aws_smithy_runtime_api::client::result::SdkError;
    let failed = |what: &str, unanswered: bool, e: crate::Error| CallOutcome {
        accepted: vec![],
        refused: 0,
        error: Some((format!("{what}: {}", e.causes().join(": ")), unanswered)),
    };
    if single {
        let r = Record::builder().data(Blob::new(pending[0].1.clone())).build().expect("data is set");
        return match c.put_record().delivery_stream_name(stream).record(r).send().await {
            Ok(_) => CallOutcome { accepted: vec![0], refused: 0, error: None },
            Err(e) if e.as_service_error().is_some_and(|s| s.is_service_unavailable_exception()) => {
                CallOutcome { accepted: vec![], refused: 1, error: None }
            }
            Err(e) => {
                let unanswered = !matches!(e, SdkError::ServiceError(_));
                failed("PutRecord", unanswered, crate::aws::sdk_error("PutRecord", e))
            }
        };
    }
    let records: Vec<Record> = pending
        .iter()
        .map(|(_, d)| Record::builder().data(Blob::new(d.clone())).build().expect("data is set"))
        .collect();
    match c.put_record_batch().delivery_stream_name(stream).set_records(Some(records)).send().await {
        Ok(out) => {
            let mut outcome = CallOutcome { accepted: vec![], refused: 0, error: None };
            for (i, entry) in out.request_responses().iter().enumerate() {
                match entry.error_code() {
                    None => outcome.accepted.push(i),
                    Some(code) if entry_is_throttled(code) => outcome.refused += 1,
                    Some(code) => outcome.error = Some((format!("entry failed with {code}"), false)),
                }
            }
            outcome
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_service_unavailable_exception()) => {
            CallOutcome { accepted: vec![], refused: pending.len(), error: None }
        }
        Err(e) => {
            let unanswered = !matches!(e, SdkError::ServiceError(_));
            failed("PutRecordBatch", unanswered, crate::aws::sdk_error("PutRecordBatch", e))
        }
    }
}

/// Counts one call's outcome; the records of a call that failed otherwise than by throttling are abandoned
/// (never resent, so they cannot duplicate), noted as unanswered when no answer came.
fn record_outcome(
    shared: &Mutex<Shared>,
    (id, stream, single): (usize, &str, bool),
    pending: &mut Vec<(u64, Vec<u8>)>,
    outcome: &CallOutcome,
    latency_ms: f64,
) {
    let mut s = shared.lock().expect("load lock");
    if single {
        s.report.record_calls += 1;
    } else {
        s.report.batch_calls += 1;
        s.latencies_ms.push(latency_ms);
    }
    s.report.throttled += outcome.refused as u64;
    s.report.records += outcome.accepted.len() as u64;
    s.report.bytes += outcome.accepted.iter().map(|&i| pending[i].1.len() as u64).sum::<u64>();
    *s.report.per_stream.entry(stream.to_string()).or_default() += outcome.accepted.len() as u64;
    let ids: Vec<u64> = outcome.accepted.iter().map(|&i| record_id(id, pending[i].0)).collect();
    s.outcomes.acked.entry(stream.to_string()).or_default().extend(ids);
    if let Some((e, unanswered)) = &outcome.error {
        if s.report.errors.len() < 20 {
            s.report.errors.push(e.clone());
        }
        if *unanswered {
            let ids = pending.iter().map(|(seq, _)| record_id(id, *seq));
            s.outcomes.unanswered.entry(stream.to_string()).or_default().extend(ids);
        }
        pending.clear();
        return;
    }
    // Keep only what was refused, to resend it.
    let mut keep = 0;
    for i in 0..pending.len() {
        if !outcome.accepted.contains(&i) {
            pending.swap(keep, i);
            keep += 1;
        }
    }
    pending.truncate(keep);
}

async fn one_client(
    c: aws_sdk_firehose::Client,
    id: usize,
    stream: String,
    spec: LoadSpec,
    deadline: Instant,
    shared: Arc<Mutex<Shared>>,
    stop: Stop,
) {
    let single = id % 4 == 3;
    let pace = spec.paced.iter().find(|(s, _)| *s == stream).map(|(_, d)| *d);
    let mut seq = 0u64;
    let mut pending: Vec<(u64, Vec<u8>)> = Vec::new();
    // Refused records are retried after 20 ms doubling to 500 ms (reset by a call that is fully accepted).
    let backoff = crate::util::retry::Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
    let mut refusals = 0u32;
    while Instant::now() < deadline && !stop.is_cancelled() {
        let want = if single { 1 } else { spec.batch_records };
        while pending.len() < want {
            pending.push((seq, record(id, seq, spec.record_size)));
            seq += 1;
        }
        let call_started = Instant::now();
        let outcome = call(&c, &stream, &pending, single).await;
        let latency_ms = call_started.elapsed().as_secs_f64() * 1000.0;
        record_outcome(&shared, (id, &stream, single), &mut pending, &outcome, latency_ms);
        if outcome.error.is_some() {
            // The endpoint may be down (restarting): a short pause, then new records.
            tokio::time::sleep(Duration::from_millis(20)).await;
        } else if outcome.refused > 0 {
            refusals += 1;
            tokio::time::sleep(backoff.delay(refusals)).await;
        } else {
            refusals = 0;
            if let Some(p) = pace {
                tokio::time::sleep(p).await;
            }
        }
    }
}

/// Delivers what is buffered (UpdateDestination cuts every buffer) and checks that each stream's objects under
/// `bucket` hold every acknowledged record exactly once, waiting up to `wait` for the last objects.
pub async fn check_delivery(
    clients: &Clients,
    bucket: &str,
    acked: &Acked,
    wait: Duration,
) -> crate::Result<DeliveryCheck> {
    let outcomes = Outcomes { acked: acked.clone(), unanswered: Acked::new() };
    check_outcomes(clients, bucket, &outcomes, wait).await
}

/// [`check_delivery`] when some calls got no answer: their records may be delivered, at most once.
pub async fn check_outcomes(
    clients: &Clients,
    bucket: &str,
    outcomes: &Outcomes,
    wait: Duration,
) -> crate::Result<DeliveryCheck> {
    let acked = &outcomes.acked;
    for stream in acked.keys() {
        let info = crate::aws::firehose::describe(&clients.firehose, stream)
            .await?
            .ok_or_else(|| crate::Error::failed(format!("stream `{stream}` is gone")))?;
        if let Some(mut spec) = info.destination.clone() {
            // Same settings, new version: Firehose delivers the buffer under the old ones first.
            spec.buffer_interval_s = if spec.buffer_interval_s == 900 { 899 } else { 900 };
            crate::aws::firehose::update_destination(&clients.firehose, &info, &spec).await?;
        }
    }
    let expected: u64 = acked.values().map(|v| v.len() as u64).sum();
    let deadline = Instant::now() + wait;
    loop {
        let mut seen: HashMap<u64, u32> = HashMap::new();
        let mut delivered = 0u64;
        let mut unexpected = 0u64;
        let mut ids: HashMap<&str, std::collections::HashSet<u64>> = HashMap::new();
        for (stream, list) in acked {
            ids.insert(stream.as_str(), list.iter().copied().collect());
        }
        let unanswered: std::collections::HashSet<(&str, u64)> =
            outcomes.unanswered.iter().flat_map(|(s, l)| l.iter().map(move |id| (s.as_str(), *id))).collect();
        let mut unanswered_seen: HashMap<(&str, u64), u32> = HashMap::new();
        for o in crate::aws::s3::list_objects(&clients.s3, bucket, "").await? {
            let stream = o.key.rsplit('/').next().and_then(|n| acked.keys().find(|s| n.starts_with(&format!("{s}-"))));
            let Some(stream) = stream else { continue };
            let body = clients
                .s3
                .get_object()
                .bucket(bucket)
                .key(&o.key)
                .send()
                .await
                .map_err(|e| crate::aws::sdk_error(format!("download `{}`", o.key), e))?
                .body
                .collect()
                .await
                .map_err(|e| crate::Error::failed(format!("read `{}`: {e}", o.key)))?
                .into_bytes();
            for line in body.split_inclusive(|b| *b == b'\n') {
                delivered += 1;
                match parse_id(line) {
                    Some(id) if ids[stream.as_str()].contains(&id) => *seen.entry(id).or_default() += 1,
                    Some(id) if unanswered.contains(&(stream.as_str(), id)) => {
                        *unanswered_seen.entry((stream.as_str(), id)).or_default() += 1
                    }
                    _ => unexpected += 1,
                }
            }
        }
        let check = DeliveryCheck {
            acknowledged: expected,
            delivered,
            missing: expected - seen.len() as u64,
            duplicated: seen.values().chain(unanswered_seen.values()).map(|n| (*n as u64).saturating_sub(1)).sum(),
            unexpected,
            unanswered_delivered: unanswered_seen.len() as u64,
        };
        if check.missing == 0 || Instant::now() >= deadline {
            return Ok(check);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_fixed_size_lines_that_name_themselves() {
        let r = record(7, 123, 200);
        assert_eq!((r.len(), r.last()), (200, Some(&b'\n')));
        assert_eq!(parse_id(&r), Some(record_id(7, 123)));
        assert_eq!(parse_id(b"garbage\n"), None);
        assert_eq!(parse_id("é".repeat(20).as_bytes()), None);
    }
}
