//! A Lambda function's answer for one range, journaled before anything is delivered from it
//! (`<lane dir>/answers/<start>-<end>.answer`): the transformed records and the processing-failed documents, each
//! with its arrival time. A repeat of the range (a restart, a storage error downstream) reads the answer instead of
//! invoking the function again, so a function that answers differently each time (a uuid, the time,
//! `partitionKeyFromLambda`) is still delivered once, as it first answered.
//!
//! Format: `FKA1`, then the two lists, each a u32 count and frames `[i64 arrival][u32 length][data]`.

use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::faults;
use firehose_kit_domain::util::persist::{self, Durability};

/// What the function made of a range: records for the destination, documents for the error output, each an
/// arrival time and a span of `data`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Answer {
    pub data: Vec<u8>,
    pub ok: Vec<(i64, Range<usize>)>,
    pub failed: Vec<(i64, Range<usize>)>,
}

impl Answer {
    /// The records for the destination.
    pub fn ok(&self) -> impl Iterator<Item = (i64, &[u8])> + Clone {
        self.ok.iter().map(|(a, r)| (*a, &self.data[r.clone()]))
    }

    /// The documents for the error output.
    pub fn failed(&self) -> impl Iterator<Item = (i64, &[u8])> + Clone {
        self.failed.iter().map(|(a, r)| (*a, &self.data[r.clone()]))
    }

    /// Adds a document for the error output.
    pub fn push_failed(&mut self, arrival: i64, doc: &[u8]) {
        let at = self.data.len();
        self.data.extend_from_slice(doc);
        self.failed.push((arrival, at..self.data.len()));
    }
}

const MAGIC: &[u8; 4] = b"FKA1";

fn dir_of(lane_dir: &Path) -> PathBuf {
    lane_dir.join("answers")
}

fn path(lane_dir: &Path, start: u64, end: u64) -> PathBuf {
    dir_of(lane_dir).join(format!("{start:020}-{end:020}.answer"))
}

fn encode(answer: &Answer) -> Vec<u8> {
    let mut out = Vec::with_capacity(answer.data.len() + 12 * (answer.ok.len() + answer.failed.len()) + 12);
    out.extend_from_slice(MAGIC);
    for list in [&answer.ok, &answer.failed] {
        out.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for (arrival, span) in list {
            out.extend_from_slice(&arrival.to_le_bytes());
            out.extend_from_slice(&(span.len() as u32).to_le_bytes());
            out.extend_from_slice(&answer.data[span.clone()]);
        }
    }
    out
}

fn decode(mut bytes: &[u8]) -> std::io::Result<Answer> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "a journaled answer is damaged");
    let mut magic = [0u8; 4];
    bytes.read_exact(&mut magic).map_err(|_| bad())?;
    if &magic != MAGIC {
        return Err(bad());
    }
    let mut all = Vec::with_capacity(bytes.len());
    let mut lists = [Vec::new(), Vec::new()];
    for list in &mut lists {
        let mut n = [0u8; 4];
        bytes.read_exact(&mut n).map_err(|_| bad())?;
        for _ in 0..u32::from_le_bytes(n) {
            let (mut arrival, mut len) = ([0u8; 8], [0u8; 4]);
            bytes.read_exact(&mut arrival).map_err(|_| bad())?;
            bytes.read_exact(&mut len).map_err(|_| bad())?;
            let len = u32::from_le_bytes(len) as usize;
            let at = all.len();
            all.extend_from_slice(bytes.get(..len).ok_or_else(bad)?);
            bytes = &bytes[len..];
            list.push((i64::from_le_bytes(arrival), at..all.len()));
        }
    }
    let [ok, failed] = lists;
    Ok(Answer { data: all, ok, failed })
}

/// Journals the answer for `[start, end)` (atomically: a kill leaves it whole or absent).
pub fn save(lane_dir: &Path, start: u64, end: u64, answer: &Answer, durability: Durability) -> std::io::Result<()> {
    faults::check(faults::ANSWER_WRITE, &lane_dir)?;
    std::fs::create_dir_all(dir_of(lane_dir))?;
    persist::write_atomic_as(&path(lane_dir, start, end), &encode(answer), durability)
}

/// The answer journaled for `[start, end)`, if any.
pub fn load(lane_dir: &Path, start: u64, end: u64) -> std::io::Result<Option<Answer>> {
    match std::fs::read(path(lane_dir, start, end)) {
        Ok(bytes) => decode(&bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Forgets the answer for `[start, end)` once the range's progress is recorded.
pub fn remove(lane_dir: &Path, start: u64, end: u64) {
    if let Err(e) = std::fs::remove_file(path(lane_dir, start, end))
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("cannot remove a journaled answer under {}: {e}", lane_dir.display());
    }
}

/// At a restart: the end of the range whose answer was journaled and not yet passed on (it starts at `offset`);
/// answers of ranges already passed are removed.
pub fn pending_end(lane_dir: &Path, offset: u64) -> std::io::Result<Option<u64>> {
    let entries = match std::fs::read_dir(dir_of(lane_dir)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut found = None;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let range = name.strip_suffix(".answer").and_then(|r| r.split_once('-'));
        match range.and_then(|(s, e)| Some((s.parse::<u64>().ok()?, e.parse::<u64>().ok()?))) {
            Some((start, end)) if start == offset && end > offset => found = Some(end),
            Some(_) => {
                let _ = std::fs::remove_file(entry.path());
            }
            None if persist::is_tmp_name(&name) => {
                let _ = std::fs::remove_file(entry.path());
            }
            None => {}
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_round_trips_and_a_restart_finds_the_pending_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut answer = Answer { data: b"a".to_vec(), ok: vec![(1, 0..1), (2, 1..1)], failed: Vec::new() };
        answer.push_failed(3, b"{}");
        save(dir.path(), 10, 50, &answer, Durability::Process).unwrap();
        save(dir.path(), 0, 10, &Answer::default(), Durability::Process).unwrap();
        assert_eq!(load(dir.path(), 10, 50).unwrap(), Some(answer));
        assert_eq!(load(dir.path(), 50, 60).unwrap(), None);
        assert_eq!(pending_end(dir.path(), 10).unwrap(), Some(50));
        assert_eq!(load(dir.path(), 0, 10).unwrap(), None, "an answer already passed on is removed");
        remove(dir.path(), 10, 50);
        assert_eq!(pending_end(dir.path(), 10).unwrap(), None);
        assert!(decode(b"FKA1\x01\x00\x00\x00").is_err(), "a damaged answer is an error, not a panic");
    }
}
