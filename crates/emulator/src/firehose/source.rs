//! A Kinesis data stream as a Firehose stream's source (`KinesisStreamAsSource`): from where the stream was
//! created (LATEST), each shard is read about once a second (`--speed` times more often), KPL-aggregated records
//! are de-aggregated, and what was read goes through the same journal, buffering, processing and delivery as
//! Direct Put.
//!
//! Every pass first evaluates the role against the read actions on the stream's ARN; without them nothing is
//! read and `Kinesis.AccessDenied` is logged (once a second at most), as on AWS. What a pass reads from a shard is
//! journaled as one batch ended by a mark of the shard's next position (`<data stream incarnation>/<shard>`), so
//! the journal itself says how far each shard was read: a kill before `kinesis-positions.json` catches up reads
//! the batch again and finds it journaled, and a record is read into the stream exactly once.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

use super::Firehose;
use super::engine::Pipeline;
use super::gate::Failure;
use super::journal::Mark;
use super::model::KinesisSource;
use crate::kinesis::{Kinesis, ReadFailure};
use crate::s3::store::now_ms;
use firehose_kit_domain::access::{self, Request};
use firehose_kit_domain::kinesis::{SOURCE_READ_ACTIONS, deaggregate};
use firehose_kit_domain::util::persist::{self, Durability};

/// Where a stream has read its source to, as persisted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Positions {
    /// The data stream's incarnation these positions belong to.
    incarnation: String,
    /// Per shard, the number of the next record to read.
    next: Vec<u64>,
}

/// The reading side of one Firehose stream with a Kinesis source.
pub struct Reader {
    path: PathBuf,
    durability: Durability,
    positions: Mutex<Positions>,
    last_pass_ms: AtomicI64,
    last_logged_ms: AtomicI64,
    /// How far behind its source's newest record the stream was after its last pass.
    pub millis_behind: AtomicI64,
}

const POSITIONS_FILE: &str = "kinesis-positions.json";

/// The end of every shard of the source now (LATEST); `None` if the data stream is not ACTIVE.
fn latest(source: &KinesisSource, kinesis: &Kinesis) -> Option<Positions> {
    let s = kinesis.source(&source.stream_arn)?;
    Some(Positions { incarnation: s.incarnation, next: s.latest })
}

impl Reader {
    /// A reader starting at LATEST of `kinesis`'s stream now; `None` if that stream is not ACTIVE.
    pub fn create(
        journal_dir: PathBuf,
        source: &KinesisSource,
        kinesis: &Kinesis,
        durability: Durability,
    ) -> Option<Self> {
        let latest = latest(source, kinesis)?;
        Some(Reader::with(journal_dir.join(POSITIONS_FILE), durability, latest))
    }

    /// The reader of a stream that already read (its positions file), or one at LATEST if it has none (one that
    /// reads nothing when its source is gone).
    pub fn open(
        journal_dir: PathBuf,
        source: &KinesisSource,
        kinesis: &Kinesis,
        pipeline: &Pipeline,
        durability: Durability,
    ) -> std::io::Result<Self> {
        let path = journal_dir.join(POSITIONS_FILE);
        let mut positions = match persist::read_json::<Positions>(&path)? {
            Some(p) => p,
            None => latest(source, kinesis).unwrap_or(Positions { incarnation: String::new(), next: Vec::new() }),
        };
        // What the journal holds is read, whatever the positions file had caught up with.
        for (shard, next) in positions.next.iter_mut().enumerate() {
            if let Some(journaled) = pipeline.absorbed(&mark_source(&positions.incarnation, shard)) {
                *next = (*next).max(journaled);
            }
        }
        Ok(Reader::with(path, durability, positions))
    }

    fn with(path: PathBuf, durability: Durability, positions: Positions) -> Self {
        Reader {
            path,
            durability,
            positions: Mutex::new(positions),
            last_pass_ms: AtomicI64::new(0),
            last_logged_ms: AtomicI64::new(0),
            millis_behind: AtomicI64::new(0),
        }
    }

    /// Persists the positions (before the stream's first record can be read).
    pub fn save(&self) -> std::io::Result<()> {
        let p = crate::lock(&self.positions).clone();
        std::fs::create_dir_all(self.path.parent().expect("a file in the journal dir"))?;
        persist::write_json_as(&self.path, &p, self.durability)
    }

    /// Whether a pass is due (one per `interval_ms`).
    fn due(&self, now: i64, interval_ms: i64) -> bool {
        let last = self.last_pass_ms.load(Ordering::Relaxed);
        if now - last < interval_ms {
            return false;
        }
        self.last_pass_ms.store(now, Ordering::Relaxed);
        true
    }
}

/// The name a shard's marks carry in the stream's journal.
fn mark_source(incarnation: &str, shard: usize) -> String {
    format!("{incarnation}/{shard}")
}

/// What one pass needs of a stream (taken under the streams lock, used outside it).
struct Pass {
    source: KinesisSource,
    target: super::target::Target,
    pipeline: std::sync::Arc<Pipeline>,
    reader: std::sync::Arc<Reader>,
}

impl Firehose {
    /// Reads every ACTIVE stream's Kinesis source whose pass is due (called from the emulator's tick, on a
    /// blocking thread).
    pub fn read_sources(&self) {
        let now = now_ms();
        // `--speed` times more often, except under `--quota`: there the shard's read limits (5 calls a second, shared
        // with every consumer) are real time, and Firehose reads once a second as on AWS.
        let interval = if self.config.quota.is_some() { 1000 } else { (1000.0 / self.config.speed).max(1.0) as i64 };
        let passes: Vec<Pass> = {
            let streams = crate::lock(&self.streams);
            streams
                .values()
                .filter(|s| {
                    self.lifecycle(&s.state) == super::Lifecycle::Is(firehose_kit_domain::types::StreamStatus::Active)
                })
                .filter_map(|s| {
                    let (source, reader, pipeline) =
                        (s.state.source.clone()?, s.reader.clone()?, s.pipeline()?.clone());
                    let target = self.plan(&s.state).ok()?.target;
                    reader.due(now, interval).then(|| Pass { source, target, pipeline, reader })
                })
                .collect()
        };
        for pass in passes {
            self.read_pass(&pass, now);
        }
    }

    /// Whether the source role may read the stream; the first action it may not do, otherwise.
    fn source_denied(&self, source: &KinesisSource, region: &str) -> Option<String> {
        let Some(role) = self.iam.role_view(&source.role_arn, region) else {
            return Some(format!("the role {} does not exist", source.role_arn));
        };
        if !role.trusts_firehose {
            return Some(format!(
                "the trust policy of {} does not let firehose.amazonaws.com assume it",
                source.role_arn
            ));
        }
        let context = access::delivery_context(&source.role_arn, &self.config.account_id);
        SOURCE_READ_ACTIONS.iter().find_map(|action| {
            let req = Request { action, resource: &source.stream_arn, principal: &source.role_arn, context: &context };
            (!access::evaluate(&role.identity, None, &req).allowed())
                .then(|| format!("no policy of {} allows {action} on {}", source.role_arn, source.stream_arn))
        })
    }

    fn read_pass(&self, pass: &Pass, now: i64) {
        let target = &pass.target;
        if let Some(detail) = self.source_denied(&pass.source, &target.region) {
            // Logged at most once a second of real time, however fast `--speed` makes the passes.
            if now - pass.reader.last_logged_ms.load(Ordering::Relaxed) >= 1000 {
                pass.reader.last_logged_ms.store(now, Ordering::Relaxed);
                tracing::debug!(stream = %target.stream, "cannot read the source: {detail}");
                self.ctx.gate.record_failure(target, &Failure::new("Kinesis.AccessDenied", detail));
            }
            return;
        }
        let mut positions = crate::lock(&pass.reader.positions);
        let mut behind = 0;
        for shard in 0..positions.next.len() {
            let from = positions.next[shard];
            let batch = match self.kinesis.read_shard(&pass.source.stream_arn, &positions.incarnation, shard, from) {
                Ok(b) => b,
                Err(ReadFailure::Throttled) => continue,
                Err(ReadFailure::NotFound) => {
                    tracing::debug!(stream = %target.stream, "its source {} is gone", pass.source.stream_arn);
                    return;
                }
                Err(ReadFailure::Storage(e)) => {
                    tracing::warn!(stream = %target.stream, "cannot read its source: {e}");
                    continue;
                }
            };
            behind = behind.max(batch.millis_behind);
            if batch.next == from {
                continue;
            }
            let mut records: Vec<Vec<u8>> = Vec::with_capacity(batch.records.len());
            for r in batch.records {
                match deaggregate(&r.data) {
                    Some(subs) => records.extend(subs.into_iter().map(|s| s.data)),
                    None => records.push(r.data),
                }
            }
            let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            let source = mark_source(&positions.incarnation, shard);
            let mark = Mark { source: &source, position: batch.next };
            if let Err(e) = pass.pipeline.accept_from(&refs, now_ms(), mark) {
                let what = format!("the journal of {}: {e}", target.stream);
                self.ctx.gate.storage.record(
                    &target.stream,
                    "journal",
                    &what,
                    "the source is read again from the same position",
                );
                return;
            }
            positions.next[shard] = batch.next;
            let saved = persist::write_json_as(&pass.reader.path, &*positions, pass.reader.durability);
            if let Err(e) = saved {
                tracing::error!(stream = %target.stream, "cannot persist its source positions: {e}");
            }
        }
        pass.reader.millis_behind.store(behind, Ordering::Relaxed);
    }
}
