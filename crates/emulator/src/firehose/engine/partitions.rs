//! Dynamic partitioning: the partitions of a stream, each an ordinary lane (journal, buffer by the destination's
//! hints, the destination writer) in `<dir>/<id>/` (`id` a hash of the partition's keys, with `partition.json`
//! naming them), plus one for the error output (`<dir>/errors/`, prefix `ErrorOutputPrefix` with
//! `!{firehose:error-output-type}` = `partitioning-failed`).
//!
//! Records come from the stage before (the input lane's [`route`] stage, or a transformation's answer), routed
//! through the domain's `partitioning::Partitioner` (de-aggregation, jq keys, delimiter); a record that cannot be
//! partitioned, or that would open a partition beyond the limit, goes to the error output in an error document.
//! Each batch a partition takes ends with the upstream range's mark, and `state.json` records how far each source
//! reached all of them, so a repeated range is appended nowhere twice. An idle partition (nothing buffered or in
//! flight, every mark it holds covered by `state.json`) is closed and its directory removed on the tick; the
//! active ones count against `--partition-limit`, in the order records arrive.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::Context;
use super::buffer::{Hints, Sealed};
use super::lane::{GiveUp, Lane, StageError, lock, panic_message, remove_dir, sweep_removed};
use super::stage::Stage;
use super::transform::MARK_SOURCE;
use crate::faults;
use crate::firehose::journal::Mark;
use crate::firehose::target::{PartitionSpec, Target};
use firehose_kit_domain::partitioning::{self, Route};
use firehose_kit_domain::util::persist;

struct State {
    by_id: BTreeMap<String, Arc<Lane>>,
    /// Per source, how far its output reached every partition (`state.json`).
    absorbed: BTreeMap<String, u64>,
    spec: Arc<PartitionSpec>,
    /// The destination; each partition's target is this with its keys.
    target: Target,
    hints: Hints,
}

/// A partitioned stream's partitions.
pub struct Partitions {
    dir: PathBuf,
    stream: String,
    ctx: Arc<Context>,
    state: Mutex<State>,
    /// Itself, for its partitions' lanes to hand records to the error output (see [`Partitions::give_up`]).
    me: std::sync::Weak<Partitions>,
}

/// Records routed to one partition in one batch: its id, its keys, the records.
type Group = (String, BTreeMap<String, String>, Vec<(i64, Vec<u8>)>);

/// The id (directory name) of a partition: a hash of its keys, or `errors`.
fn partition_id(keys: Option<&BTreeMap<String, String>>) -> String {
    match keys {
        None => "errors".into(),
        Some(keys) => {
            let text = serde_json::to_string(keys).expect("keys serialize");
            format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
        }
    }
}

/// The target of one partition (`keys`) or of the error output (`None`).
fn child_target(base: &Target, spec: &PartitionSpec, keys: Option<BTreeMap<String, String>>) -> Target {
    Target {
        prefix: if keys.is_some() { base.prefix.clone() } else { spec.error_prefix.clone() },
        output_type: keys.is_none().then_some(partitioning::ERROR_OUTPUT_TYPE),
        conversion: if keys.is_some() { base.conversion.clone() } else { None },
        keys,
        ..base.clone()
    }
}

impl Partitions {
    /// Opens the partitions under `dir`, restarting every partition's lane found there.
    pub fn open(
        dir: PathBuf,
        spec: Arc<PartitionSpec>,
        target: Target,
        hints: Hints,
        ctx: Arc<Context>,
    ) -> std::io::Result<Arc<Partitions>> {
        std::fs::create_dir_all(&dir)?;
        sweep_removed(&dir);
        let absorbed = persist::read_json(&dir.join("state.json"))?.unwrap_or_default();
        let parts = Arc::new_cyclic(|me| Partitions {
            stream: target.stream.clone(),
            dir: dir.clone(),
            ctx,
            state: Mutex::new(State { by_id: BTreeMap::new(), absorbed, spec, target, hints }),
            me: me.clone(),
        });
        {
            let mut state = lock(&parts.state);
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                let keys: Option<Option<BTreeMap<String, String>>> = persist::read_json(&path.join("partition.json"))?;
                if let Some(keys) = keys {
                    parts.child(&mut state, keys)?;
                }
            }
        }
        Ok(parts)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The destination the partitions write to.
    pub fn target(&self) -> Target {
        lock(&self.state).target.clone()
    }

    /// The lane of a partition, started (in `<dir>/<id>`) if it is not running.
    fn child(&self, state: &mut State, keys: Option<BTreeMap<String, String>>) -> std::io::Result<Arc<Lane>> {
        let id = partition_id(keys.as_ref());
        if let Some(lane) = state.by_id.get(&id) {
            return Ok(lane.clone());
        }
        let dir = self.dir.join(&id);
        std::fs::create_dir_all(&dir)?;
        persist::write_json(&dir.join("partition.json"), &keys)?;
        let keys_given = keys.is_some();
        let target = child_target(&state.target, &state.spec, keys);
        let label = format!("{}/partitions/{id}", self.stream);
        let stage = Arc::new(Stage::Write(Arc::new(target)));
        let partition = keys_given;
        let lane = Lane::open(dir, label, state.hints, stage, self.ctx.clone())?;
        if partition {
            lane.set_give_up(GiveUp { after: state.spec.retry, to: self.me.clone() });
        }
        state.by_id.insert(id, lane.clone());
        Ok(lane)
    }

    /// Error documents of a partition whose delivery failed past `RetryOptions`, to the error output, ended by
    /// `mark` (the partition's range): appended once however often the partition repeats.
    pub fn give_up<'a>(
        &self,
        docs: impl Iterator<Item = (i64, &'a [u8])> + Clone,
        mark: Mark<'_>,
    ) -> std::io::Result<()> {
        let lane = self.child(&mut lock(&self.state), None)?;
        lane.append(docs, Some(mark)).map(|_| ())
    }

    /// Whether `mark`'s source reached every partition this far.
    pub fn absorbed(&self, mark: Mark<'_>) -> bool {
        lock(&self.state).absorbed.get(mark.source).is_some_and(|&at| at >= mark.position)
    }

    /// Routes records to their partitions (de-aggregated, keys extracted, delimiter appended) and journals them
    /// there, each partition's batch ended by `mark`; records that cannot be partitioned, or that would open a
    /// partition beyond the limit, go to the error output in an error document.
    pub fn append<'a>(&self, records: impl Iterator<Item = (i64, &'a [u8])>, mark: Mark<'_>) -> std::io::Result<()> {
        let mut state = lock(&self.state);
        if state.absorbed.get(mark.source).is_some_and(|&at| at >= mark.position) {
            return Ok(());
        }
        let (groups, mut errors) = route_all(&state.spec, records);
        let limit = state.spec.limit;
        let mut active = state.by_id.iter().filter(|(id, lane)| *id != "errors" && !lane.is_idle()).count();
        for (id, keys, datas) in groups {
            let known = state.by_id.get(&id).cloned();
            let is_active = known.as_ref().is_some_and(|lane| !lane.is_idle());
            let absorbed = known.as_ref().is_some_and(|lane| lane.absorbed(mark.source) >= Some(mark.position));
            if !is_active && !absorbed && active >= limit {
                errors.extend(beyond_limit(&state.spec, datas));
                continue;
            }
            active += usize::from(!is_active);
            let lane = self.child(&mut state, Some(keys))?;
            lane.append(datas.iter().map(|(a, d)| (*a, d.as_slice())), Some(mark))?;
        }
        if !errors.is_empty() {
            let lane = self.child(&mut state, None)?;
            lane.append(errors.iter().map(|(a, d)| (*a, d.as_slice())), Some(mark))?;
        }
        let mut absorbed = state.absorbed.clone();
        absorbed.insert(mark.source.to_string(), mark.position);
        faults::check(faults::PROGRESS_WRITE, &self.dir)?;
        persist::write_json_as(&self.dir.join("state.json"), &absorbed, self.ctx.durability)?;
        state.absorbed = absorbed;
        Ok(())
    }

    /// Cuts each partition's buffer whose interval is due (or all of them with `force`), and closes and removes
    /// partitions that are idle and whose every mark `state.json` covers.
    pub fn flush_due(&self, now_ms: i64, force: bool) {
        let children: Vec<Arc<Lane>> = {
            let mut state = lock(&self.state);
            if !force {
                let covered = |lane: &Lane| lane.marks().iter().all(|(s, at)| state.absorbed.get(s) >= Some(at));
                let idle: Vec<String> = state
                    .by_id
                    .iter()
                    .filter(|(_, lane)| lane.is_idle() && covered(lane))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in idle {
                    if let Some(lane) = state.by_id.remove(&id) {
                        lane.close();
                        remove_dir(&lane.dir);
                    }
                }
            }
            state.by_id.values().cloned().collect()
        };
        for child in children {
            child.flush_due(now_ms, force);
        }
    }

    fn lanes(&self) -> Vec<Arc<Lane>> {
        lock(&self.state).by_id.values().cloned().collect()
    }

    /// Waits until every partition's sealed ranges are delivered, or `timeout`.
    pub async fn drain(&self, timeout: std::time::Duration) -> bool {
        let mut all = true;
        for lane in self.lanes() {
            all &= lane.drain(timeout).await;
        }
        all
    }

    /// Delivers what is buffered under the current target, then switches every partition to `target`.
    pub fn retarget(&self, target: Target, hints: Hints) {
        let mut state = lock(&self.state);
        state.target = target;
        state.hints = hints;
        for (id, lane) in &state.by_id {
            let keys = if id == "errors" { None } else { lane_keys(&lane.dir) };
            let child = child_target(&state.target, &state.spec, keys);
            lane.retarget(hints, Arc::new(Stage::Write(Arc::new(child))));
        }
    }

    pub fn retire(&self) {
        for lane in self.lanes() {
            lane.retire();
        }
    }

    /// Records and bytes buffered across the partitions.
    pub fn buffered(&self) -> (usize, usize) {
        self.lanes().iter().map(|l| l.buffered()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }
}

/// A partition's keys, from its `partition.json`.
fn lane_keys(dir: &Path) -> Option<BTreeMap<String, String>> {
    persist::read_json::<Option<BTreeMap<String, String>>>(&dir.join("partition.json")).ok().flatten().flatten()
}

/// Routes every record: the groups by partition (in the order their first record came, the order the limit is
/// applied in) and the error documents. A record whose routing panics goes to the error output with its reason.
fn route_all<'a>(
    spec: &PartitionSpec,
    records: impl Iterator<Item = (i64, &'a [u8])>,
) -> (Vec<Group>, Vec<(i64, Vec<u8>)>) {
    let now = crate::s3::store::now_ms();
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut errors = Vec::new();
    for (arrival, record) in records {
        let routes = std::panic::catch_unwind(|| spec.partitioner.route(record)).unwrap_or_else(|panic| {
            let message = format!("the emulator could not partition the record: {}", panic_message(&*panic));
            tracing::warn!("{message}");
            vec![Route::Failed { code: partitioning::EXTRACTION_FAILED, message, data: record.to_vec() }]
        });
        for route in routes {
            match route {
                Route::Partition { keys, data } => {
                    let id = partition_id(Some(&keys));
                    let at = *index.entry(id.clone()).or_insert_with(|| {
                        groups.push((id, keys, Vec::new()));
                        groups.len() - 1
                    });
                    groups[at].2.push((arrival, data));
                }
                Route::Failed { code, message, data } => {
                    errors.push((arrival, partitioning::error_record(code, &message, &data, arrival, now)))
                }
            }
        }
    }
    (groups, errors)
}

/// The error documents of records that would open a partition beyond the limit (their original data: without
/// the delimiter the partitioner appended).
fn beyond_limit(spec: &PartitionSpec, datas: Vec<(i64, Vec<u8>)>) -> Vec<(i64, Vec<u8>)> {
    let now = crate::s3::store::now_ms();
    let message = format!("the stream already has {} active partitions (the limit)", spec.limit);
    datas
        .into_iter()
        .map(|(arrival, d)| {
            let original = if spec.partitioner.append_delimiter { d.strip_suffix(b"\n").unwrap_or(&d) } else { &d };
            let doc = partitioning::error_record(partitioning::PARTITIONS_EXCEEDED, &message, original, arrival, now);
            (arrival, doc)
        })
        .collect()
}

/// The input lane's stage on a partitioned stream: its sealed range's records to their partitions, then the
/// progress.
pub fn route(lane: &Lane, sealed: &Sealed, parts: &Partitions) -> Result<(), StageError> {
    let records = lane.reader.read_packed(sealed.start, sealed.end)?;
    let mark = Mark { source: MARK_SOURCE, position: sealed.end };
    parts.append(records.iter(), mark)?;
    Ok(lane.commit(sealed.end)?)
}
