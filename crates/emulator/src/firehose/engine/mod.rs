//! The delivery path of one stream, as a chain of lanes with one commit protocol each (see [`stage`]):
//!
//! ```text
//! input lane (Direct Put accept | the Kinesis reader)           journal → buffer (the processor's hints)
//!   → Transform: the Lambda function, its answer journaled      → the destination's lane(s), processing-failed lane
//!   → Route: dynamic partitioning                              → a lane per partition, the partitioning-failed lane
//!   → Write: the destination writer (compression or Parquet)   → S3 objects, format-conversion-failed objects
//! ```
//!
//! A kind of stream is a composition of these ([`Pipeline::start`]): a plain stream is one lane that writes; a
//! partitioned one routes into its partitions' lanes; a transforming one transforms into the destination's lane
//! (or its partitions) and the processing-failed lane. Each lane runs its stage on its sealed ranges in order, on
//! its own worker.

mod answer;
mod buffer;
mod encode;
mod lane;
mod partitions;
mod stage;
mod transform;
mod writer;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use self::buffer::{Hints, MemoryBudget};
use self::lane::Lane;
pub(crate) use self::lane::{lock, panic_message, remove_dir, sweep_removed};
use self::partitions::Partitions;
use self::stage::{Sink, Stage};
use self::transform::Transformation;
pub use self::writer::object_key;
use super::gate::Gate;
use super::journal::Mark;
use super::plan::Plan;
use super::quota::Limiter;
use crate::s3::Store;
use firehose_kit_domain::util::persist::Durability;

/// What every lane of the emulator shares: the store objects go to, the checks a delivery passes (and where its
/// failures are counted and logged), the services stages call, the memory budget, and the clock's settings.
pub struct Context {
    pub store: Arc<Store>,
    pub gate: Arc<Gate>,
    /// Lambda, for streams that transform their records (`None` in unit tests of the engine).
    pub lambda: Option<Arc<crate::lambda::Lambda>>,
    /// Glue, for streams that convert record formats (`None` in unit tests of the engine).
    pub glue: Option<Arc<crate::glue::Glue>>,
    pub budget: MemoryBudget,
    /// What journal appends and progress must survive (`local --fsync`: a machine crash).
    pub durability: Durability,
    /// `--speed`: retry backoff runs this many times faster.
    pub speed: f64,
    /// How long undeliverable data is retried before it is dropped.
    pub horizon: Duration,
}

/// How long a deleted stream's lanes may take to deliver what they hold before its directory goes.
const RETIRE_WAIT: Duration = Duration::from_secs(60);

/// Records accepted into the input journal: their end offsets (used as record ids).
pub struct Accepted {
    pub ends: Vec<u64>,
}

/// One stream's lanes.
pub struct Pipeline {
    input: Arc<Lane>,
    /// The lanes and partitions after the input (every one ever started: a processor removed by
    /// UpdateDestination leaves its lanes to deliver what they hold).
    after: Mutex<Vec<Sink>>,
    limiter: Mutex<Option<Limiter>>,
    dir: PathBuf,
    ctx: Arc<Context>,
}

/// The lanes a plan needs after the input, reusing those already running.
struct Composed {
    stage: Stage,
    hints: Hints,
}

impl Pipeline {
    /// Opens a stream's lanes on its journal directory (re-buffering every record not yet delivered) and starts
    /// their workers.
    pub fn start(dir: PathBuf, plan: &Plan, limiter: Option<Limiter>, ctx: Arc<Context>) -> std::io::Result<Self> {
        let after = Mutex::new(Vec::new());
        let composed = compose(&dir, plan, &ctx, &after)?;
        let input =
            Lane::open(dir.clone(), plan.target.stream.clone(), composed.hints, Arc::new(composed.stage), ctx.clone())?;
        Ok(Pipeline { input, after, limiter: Mutex::new(limiter), dir, ctx })
    }

    /// Journals and buffers records (blocking I/O: call from a blocking thread, or inline for a small batch).
    /// Only after this returns may the records be acknowledged.
    pub fn accept(&self, records: &[&[u8]], arrival_ms: i64) -> std::io::Result<Accepted> {
        let ends = self.input.append(records.iter().map(|r| (arrival_ms, *r)), None)?.unwrap_or_default();
        Ok(Accepted { ends })
    }

    /// Journals records read from a source up to `mark` (a Kinesis shard's position), unless the journal already
    /// holds them.
    pub fn accept_from(&self, records: &[&[u8]], arrival_ms: i64, mark: Mark<'_>) -> std::io::Result<()> {
        self.input.append(records.iter().map(|r| (arrival_ms, *r)), Some(mark)).map(|_| ())
    }

    /// How far a source's records reached the input journal.
    pub fn absorbed(&self, source: &str) -> Option<u64> {
        self.input.absorbed(source)
    }

    /// Applies the quota to a request; `false` means the whole call is throttled.
    pub fn admit_request(&self) -> bool {
        lock(&self.limiter).as_mut().is_none_or(Limiter::admit_request)
    }

    /// Applies the quota to one record; `false` means it is throttled.
    pub fn admit_record(&self, size: usize) -> bool {
        lock(&self.limiter).as_mut().is_none_or(|l| l.admit_record(size))
    }

    fn sinks(&self) -> Vec<Sink> {
        lock(&self.after).clone()
    }

    /// Cuts every buffer whose interval is due (or all of them with `force`); removes idle partitions (blocking
    /// I/O: the tick calls it from a blocking thread).
    pub fn flush_due(&self, now_ms: i64, force: bool) {
        self.input.flush_due(now_ms, force);
        for sink in self.sinks() {
            sink.flush_due(now_ms, force);
        }
    }

    /// Waits until everything buffered is delivered, or `timeout`: the input's ranges first, then what they
    /// handed on.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut all = self.input.drain(timeout).await;
        for sink in self.sinks() {
            sink.flush_due(0, true);
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            all &= sink.drain(left).await;
        }
        all
    }

    /// Delivers what is buffered under the current plan, then switches to a new one (UpdateDestination).
    pub fn retarget(&self, plan: &Plan) -> std::io::Result<()> {
        let composed = compose(&self.dir, plan, &self.ctx, &self.after)?;
        self.input.retarget(composed.hints, Arc::new(composed.stage));
        Ok(())
    }

    /// The stream was deleted: deliver what is buffered if possible, then remove its directory (its journals,
    /// partitions and read positions) once every lane is through.
    pub fn retire(&self) {
        self.input.retire();
        let sinks = self.sinks();
        for sink in &sinks {
            sink.retire();
        }
        let (input, dir) = (self.input.clone(), self.dir.clone());
        tokio::spawn(async move {
            input.drain(RETIRE_WAIT).await;
            for sink in sinks {
                sink.drain(RETIRE_WAIT).await;
            }
            let _ = tokio::task::spawn_blocking(move || remove_dir(&dir)).await;
        });
    }

    /// Records and bytes buffered now, in every lane of the stream.
    pub fn buffered(&self) -> (usize, usize) {
        let mut total = self.input.buffered();
        for sink in self.sinks() {
            let (r, b) = match &sink {
                Sink::Lane(l) => l.buffered(),
                Sink::Partitions(p) => p.buffered(),
            };
            total = (total.0 + r, total.1 + b);
        }
        total
    }
}

/// The input lane's stage and hints for `plan`, starting (or retargeting) the lanes after it in `after`.
fn compose(
    dir: &std::path::Path,
    plan: &Plan,
    ctx: &Arc<Context>,
    after: &Mutex<Vec<Sink>>,
) -> std::io::Result<Composed> {
    let destination = match &plan.partitioning {
        Some(spec) => {
            let root = if plan.processor.is_some() {
                dir.join("transformed").join("partitions")
            } else {
                dir.join("partitions")
            };
            partitions_at(after, root, spec, plan, ctx)?
        }
        None if plan.processor.is_some() => {
            let stage = Stage::Write(Arc::new(plan.target.clone()));
            lane_at(after, dir.join("transformed"), stage, plan.hints, &plan.target.stream, ctx)?
        }
        None => {
            return Ok(Composed { stage: Stage::Write(Arc::new(plan.target.clone())), hints: plan.hints });
        }
    };
    let Some(p) = &plan.processor else {
        let Sink::Partitions(parts) = destination else { unreachable!("a partitioned plan's destination") };
        return Ok(Composed { stage: Stage::Route(parts), hints: Hints::IMMEDIATE });
    };
    let failed_target = p.error_target(&plan.target);
    let failed = Stage::Write(Arc::new(failed_target));
    let failed = lane_at(after, dir.join("processing-failed"), failed, plan.hints, &plan.target.stream, ctx)?;
    let transformation = Transformation {
        processor: p.lambda.clone(),
        role_arn: p.role_arn.clone(),
        target: plan.target.clone(),
        ok: destination,
        failed,
    };
    Ok(Composed { stage: Stage::Transform(Arc::new(transformation)), hints: p.hints })
}

/// The lane in `dir` among `after` (retargeted), or a new one.
fn lane_at(
    after: &Mutex<Vec<Sink>>,
    dir: PathBuf,
    stage: Stage,
    hints: Hints,
    stream: &str,
    ctx: &Arc<Context>,
) -> std::io::Result<Sink> {
    let mut after = lock(after);
    for sink in after.iter() {
        if let Sink::Lane(lane) = sink
            && lane.dir == dir
        {
            lane.retarget(hints, Arc::new(stage));
            return Ok(sink.clone());
        }
    }
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lane = Lane::open(dir, format!("{stream}/{name}"), hints, Arc::new(stage), ctx.clone())?;
    after.push(Sink::Lane(lane));
    Ok(after.last().expect("pushed").clone())
}

/// The partitions in `dir` among `after` (retargeted), or new ones.
fn partitions_at(
    after: &Mutex<Vec<Sink>>,
    dir: PathBuf,
    spec: &Arc<crate::firehose::target::PartitionSpec>,
    plan: &Plan,
    ctx: &Arc<Context>,
) -> std::io::Result<Sink> {
    let mut after = lock(after);
    for sink in after.iter() {
        if let Sink::Partitions(parts) = sink
            && parts.dir() == dir
        {
            parts.retarget(plan.target.clone(), plan.hints);
            return Ok(sink.clone());
        }
    }
    let parts = Partitions::open(dir, spec.clone(), plan.target.clone(), plan.hints, ctx.clone())?;
    after.push(Sink::Partitions(parts));
    Ok(after.last().expect("pushed").clone())
}
