//! What a lane does with a sealed range, and where a stage's output goes.
//!
//! Every stage keeps one commit protocol: it reads its range, writes its outputs under names derived from that range
//! (object keys from the journal's id and the range; a function's answer under the range's name; appends into the
//! next lanes ended by a mark saying how far this range reached), then records its progress. A repeat, after a
//! crash, an I/O error or a panic, finds or rewrites the same outputs: never a second copy, never a gap.

use std::sync::Arc;

use super::lane::Lane;
use super::partitions::Partitions;
use super::transform::Transformation;
use crate::firehose::journal::Mark;
use crate::firehose::target::Target;

/// A lane's stage: what its sealed ranges become.
pub enum Stage {
    /// Objects of the destination (or of an error output): the destination writer.
    Write(Arc<Target>),
    /// Each record to its partition's lane (dynamic partitioning).
    Route(Arc<Partitions>),
    /// The records through a Lambda function; what it answers to the next lanes.
    Transform(Arc<Transformation>),
}

impl Stage {
    /// Whether the lane keeps its buffered records in memory for the stage (a writer streams them into the
    /// object; the other stages read them back record by record).
    pub fn caches(&self) -> bool {
        matches!(self, Stage::Write(_))
    }
}

/// Where a stage hands records on: one lane, or a partitioned stream's partitions.
#[derive(Clone)]
pub enum Sink {
    Lane(Arc<Lane>),
    Partitions(Arc<Partitions>),
}

impl Sink {
    /// Appends records ended by `mark`, unless the mark's source already reached this far here.
    pub fn append<'a>(
        &self,
        records: impl Iterator<Item = (i64, &'a [u8])> + Clone,
        mark: Mark<'_>,
    ) -> std::io::Result<()> {
        match self {
            Sink::Lane(lane) => lane.append(records, Some(mark)).map(|_| ()),
            Sink::Partitions(parts) => parts.append(records, mark),
        }
    }

    /// Whether `mark`'s source already reached this far here.
    pub fn absorbed(&self, mark: Mark<'_>) -> bool {
        match self {
            Sink::Lane(lane) => lane.absorbed(mark.source).is_some_and(|at| at >= mark.position),
            Sink::Partitions(parts) => parts.absorbed(mark),
        }
    }

    pub fn flush_due(&self, now_ms: i64, force: bool) {
        match self {
            Sink::Lane(lane) => lane.flush_due(now_ms, force),
            Sink::Partitions(parts) => parts.flush_due(now_ms, force),
        }
    }

    pub async fn drain(&self, timeout: std::time::Duration) -> bool {
        match self {
            Sink::Lane(lane) => lane.drain(timeout).await,
            Sink::Partitions(parts) => parts.drain(timeout).await,
        }
    }

    pub fn retire(&self) {
        match self {
            Sink::Lane(lane) => lane.retire(),
            Sink::Partitions(parts) => parts.retire(),
        }
    }
}
