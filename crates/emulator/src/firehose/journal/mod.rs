//! A lane's record journal: what makes an acknowledged record, or a stage's output, durable.
//!
//! A journal is a sequence of segment files `<first-offset>.log` holding frames `[u32 length | flags][i64 arrival
//! ms][data]`; an offset is a byte position in the logical concatenation of segments. Frames are appended in
//! batches, each in one write: the last frame of a batch carries the `END` flag, so a batch torn by a kill (some of
//! its frames on disk, never acknowledged) is cut off at the next open, whole. A batch a stage writes for an
//! upstream range ends with a `MARK` frame naming that source and how far it reached ([`Mark`]): a stage that
//! repeats asks [`Journal::absorbed`] and never appends the same output twice.
//!
//! `journal.json` holds the format and the journal's id (the seed of the names its stage derives from a range);
//! a journal written by the first format (no flags, no `journal.json`: every frame was a batch of its own) is read
//! as such and continued in a new segment. `delivered.json` holds the stage's [`Progress`].

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::faults;
use firehose_kit_domain::util::persist::{self, Durability};

mod read;

pub use read::{Packed, Reader};
use read::{valid_length, walk};

/// Bytes of a frame header: u32 length and flags + i64 arrival time.
pub const FRAME_HEADER: u64 = 12;
/// A new segment is started once the current one is this large.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// The last frame of a batch.
const END: u32 = 1 << 31;
/// A frame that marks how far a source's output reached (its data: the source's name, a NUL, the position).
const MARK: u32 = 1 << 30;
const LEN_MASK: u32 = MARK - 1;
/// The format this build writes.
pub const FORMAT: u32 = 2;

/// How far a source's output reached: a repeat of the same output finds it absorbed.
#[derive(Debug, Clone, Copy)]
pub struct Mark<'a> {
    pub source: &'a str,
    pub position: u64,
}

/// A stage's progress document (`delivered.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    /// Every record before this offset has gone through the stage.
    pub offset: u64,
    /// The objects being written for the range up to `pending.end` (a delivery's intent).
    pub pending: Option<Pending>,
    /// Per source, how far its output reached this journal (kept here once the marks' segments are trimmed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub absorbed: BTreeMap<String, u64>,
}

/// The objects a delivery of the range up to `end` writes: named before they are written, so a repeat writes the
/// same names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pending {
    pub end: u64,
    pub bucket: String,
    /// The object the delivery commits.
    pub key: String,
    /// An error output written with it (records that failed conversion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub also: Option<String>,
}

/// `journal.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    format: u32,
    /// Random at creation: names derived from a range differ between two journals (a partition reopened later).
    id: u64,
    /// Frames before this offset were written by format 1 (each a batch of its own).
    #[serde(default)]
    v1_before: u64,
}

/// The append side of a journal.
pub struct Journal {
    dir: PathBuf,
    file: File,
    segment_start: u64,
    /// Offset just after the last appended batch.
    end: u64,
    meta: Meta,
    absorbed: BTreeMap<String, u64>,
    /// `Machine` (`local --fsync`): each append is synced before it returns (and so before the ack).
    durability: Durability,
}

fn segment_name(start: u64) -> String {
    format!("{start:020}.log")
}

/// Segment start offsets present in `dir`, sorted.
fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut starts = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(start) = name.strip_suffix(".log").and_then(|s| s.parse::<u64>().ok()) {
            starts.push(start);
        }
    }
    starts.sort_unstable();
    Ok(starts)
}

/// A frame's header, decoded.
#[derive(Debug, Clone, Copy)]
struct Header {
    len: u64,
    arrival_ms: i64,
    end: bool,
    mark: bool,
}

fn header(bytes: &[u8; FRAME_HEADER as usize]) -> Header {
    let raw = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    Header {
        len: (raw & LEN_MASK) as u64,
        arrival_ms: i64::from_le_bytes(bytes[4..].try_into().expect("8 bytes")),
        end: raw & END != 0,
        mark: raw & MARK != 0,
    }
}

/// A mark frame's data: the source's name, a NUL, the position (u64 little-endian).
fn mark_data(mark: &Mark<'_>) -> Vec<u8> {
    let mut data = Vec::with_capacity(mark.source.len() + 9);
    data.extend_from_slice(mark.source.as_bytes());
    data.push(0);
    data.extend_from_slice(&mark.position.to_le_bytes());
    data
}

fn parse_mark(data: &[u8]) -> Option<(String, u64)> {
    let nul = data.iter().position(|&b| b == 0)?;
    let position = u64::from_le_bytes(data.get(nul + 1..nul + 9)?.try_into().ok()?);
    Some((String::from_utf8_lossy(&data[..nul]).into_owned(), position))
}

/// A frame met while scanning a journal.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A record: its arrival time, its data's length and the offset just after it.
    Record { arrival_ms: i64, len: u64, end: u64 },
    /// A mark: the offset just after it.
    Mark { end: u64 },
}

impl Journal {
    /// Opens the journal in `dir` for appending after its last whole batch (a torn final batch, left by a kill in
    /// the middle of a write that was therefore never acknowledged, is cut off). Marks are read back from
    /// `absorbed` (the progress's) and from every frame after `from`.
    pub fn open(
        dir: &Path,
        durability: Durability,
        from: u64,
        absorbed: BTreeMap<String, u64>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let starts = segments(dir)?;
        let meta_path = dir.join("journal.json");
        let mut meta: Meta = match persist::read_json(&meta_path)? {
            Some(meta) => meta,
            // The first format: every frame is a batch of its own.
            None if !starts.is_empty() => Meta { format: 1, id: rand::random(), v1_before: u64::MAX },
            None => Meta { format: FORMAT, id: rand::random(), v1_before: 0 },
        };
        if meta.format > FORMAT {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "journal `{}` is of format {} (this emulator reads up to {FORMAT}): it was written by a newer firehose-kit",
                    dir.display(),
                    meta.format
                ),
            ));
        }
        let segment_start = starts.last().copied().unwrap_or(0);
        let path = dir.join(segment_name(segment_start));
        let valid = if path.exists() { valid_length(&path, segment_start, meta.v1_before)? } else { 0 };
        if path.exists() {
            let len = std::fs::metadata(&path)?.len();
            if len > valid {
                tracing::warn!(
                    "journal `{}`: cutting {} bytes of a batch whose write was interrupted (never acknowledged) after offset {}",
                    path.display(),
                    len - valid,
                    segment_start + valid
                );
            }
            OpenOptions::new().write(true).open(&path)?.set_len(valid)?;
        }
        let end = segment_start + valid;
        let mut segment_start = segment_start;
        if meta.format < FORMAT {
            // Continued in this format from a new segment; what came before is read as it was written.
            meta = Meta { format: FORMAT, id: meta.id, v1_before: end };
            if valid > 0 {
                segment_start = end;
            }
        }
        persist::write_json_as(&meta_path, &meta, durability)?;
        let path = dir.join(segment_name(segment_start));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if durability == Durability::Machine {
            file.sync_all()?;
            persist::sync_parent(&path)?;
        }
        let mut journal = Journal { dir: dir.to_path_buf(), file, segment_start, end, meta, absorbed, durability };
        journal.read_marks(from.min(end))?;
        Ok(journal)
    }

    fn read_marks(&mut self, from: u64) -> std::io::Result<()> {
        let mut found = Vec::new();
        walk(&self.dir, from, self.end, self.meta.v1_before, |h, pos, data| {
            if h.mark {
                let mut bytes = vec![0u8; h.len as usize];
                data.read_exact(&mut bytes)?;
                found.extend(parse_mark(&bytes));
            } else {
                std::io::copy(&mut data.take(h.len), &mut std::io::sink())?;
            }
            let _ = pos;
            Ok(())
        })?;
        for (source, position) in found {
            self.note(&source, position);
        }
        Ok(())
    }

    fn note(&mut self, source: &str, position: u64) {
        let at = self.absorbed.entry(source.to_string()).or_default();
        *at = (*at).max(position);
    }

    /// The journal's id: the seed of names derived from its ranges.
    pub fn id(&self) -> u64 {
        self.meta.id
    }

    /// Frames before this offset were written by the first format.
    pub fn v1_before(&self) -> u64 {
        self.meta.v1_before
    }

    /// How far `source`'s output reached this journal.
    pub fn absorbed(&self, source: &str) -> Option<u64> {
        self.absorbed.get(source).copied()
    }

    /// Every source's reach, for the progress document.
    pub fn marks(&self) -> &BTreeMap<String, u64> {
        &self.absorbed
    }

    /// Continues the journal at `offset` (past its end) in a new segment: appended records then get offsets past
    /// what the delivery progress already covers, whatever happened to the journal's tail.
    pub fn skip_to(&mut self, offset: u64) -> std::io::Result<()> {
        if offset <= self.end {
            return Ok(());
        }
        let path = self.dir.join(segment_name(offset));
        self.file = OpenOptions::new().create(true).append(true).open(&path)?;
        if self.durability == Durability::Machine {
            persist::sync_parent(&path)?;
        }
        self.segment_start = offset;
        self.end = offset;
        Ok(())
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    /// Appends records (each with its arrival time) as one batch in one write, ended by `mark` when given;
    /// returns each record's end offset. Nothing stays of a batch whose write or sync failed (or panicked): the
    /// segment is cut back to the previous batch.
    pub fn append<'a>(
        &mut self,
        records: impl Iterator<Item = (i64, &'a [u8])> + Clone,
        mark: Option<Mark<'_>>,
    ) -> std::io::Result<Vec<u64>> {
        faults::check(faults::JOURNAL_APPEND, &self.dir)?;
        if self.end - self.segment_start >= SEGMENT_BYTES {
            let path = self.dir.join(segment_name(self.end));
            self.file = OpenOptions::new().create(true).append(true).open(&path)?;
            if self.durability == Durability::Machine {
                persist::sync_parent(&path)?;
            }
            self.segment_start = self.end;
        }
        let mark_bytes = mark.as_ref().map(mark_data);
        // Headers are built in one small buffer and written with the records' own bytes in vectored writes: no
        // copy of the (up to 4 MiB) batch is made.
        let mut headers = Vec::new();
        let mut ends = Vec::new();
        let mut offset = self.end;
        let frames: Vec<(i64, &[u8], bool)> = records
            .map(|(arrival, data)| (arrival, data, false))
            .chain(mark_bytes.as_deref().map(|m| (0, m, true)))
            .collect();
        if frames.is_empty() {
            return Ok(ends);
        }
        for (i, (arrival, data, is_mark)) in frames.iter().enumerate() {
            let mut raw = data.len() as u32;
            if *is_mark {
                raw |= MARK;
            }
            if i + 1 == frames.len() {
                raw |= END;
            }
            headers.extend_from_slice(&raw.to_le_bytes());
            headers.extend_from_slice(&arrival.to_le_bytes());
            offset += FRAME_HEADER + data.len() as u64;
            if !is_mark {
                ends.push(offset);
            }
        }
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(frames.len() * 2);
        for (header, (_, data, _)) in headers.chunks(FRAME_HEADER as usize).zip(&frames) {
            slices.push(IoSlice::new(header));
            slices.push(IoSlice::new(data));
        }
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.write_batch(&mut slices)));
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.cut_back();
                let path = self.dir.join(segment_name(self.segment_start));
                return Err(std::io::Error::new(e.kind(), format!("appending to `{}`: {e}", path.display())));
            }
            Err(panic) => {
                self.cut_back();
                std::panic::resume_unwind(panic);
            }
        }
        self.end = offset;
        if let Some(m) = mark {
            self.note(m.source, m.position);
        }
        Ok(ends)
    }

    /// Writes a batch's frames and syncs them as asked.
    fn write_batch(&mut self, slices: &mut [IoSlice<'_>]) -> std::io::Result<()> {
        write_all_vectored(&mut self.file, slices)?;
        faults::check(faults::JOURNAL_SYNC, &self.dir)?;
        if self.durability == Durability::Machine {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// A partial write (a full disk) or one whose sync failed must not stay: the records were not acknowledged,
    /// and the next batch's offsets count from the last whole one. Cuts the segment back to it.
    fn cut_back(&mut self) {
        let path = self.dir.join(segment_name(self.segment_start));
        if let Err(cut) = self.file.set_len(self.end - self.segment_start) {
            tracing::error!("cannot cut `{}` back after a failed write: {cut}", path.display());
        }
    }

    /// Removes segments that lie wholly before `offset` (already delivered).
    pub fn trim(&self, offset: u64) -> std::io::Result<()> {
        let starts = segments(&self.dir)?;
        for pair in starts.windows(2) {
            if pair[1] <= offset && pair[0] != self.segment_start {
                std::fs::remove_file(self.dir.join(segment_name(pair[0])))?;
            }
        }
        Ok(())
    }
}

/// Writes every slice, in order, in as few system calls as the kernel allows (at most 1024 slices per call).
fn write_all_vectored(file: &mut File, mut slices: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        let window = slices.len().min(1024);
        match file.write_vectored(&slices[..window]) {
            Ok(0) => return Err(std::io::Error::new(std::io::ErrorKind::WriteZero, "journal write returned 0")),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn read_progress(dir: &Path) -> std::io::Result<Progress> {
    Ok(persist::read_json(&dir.join("delivered.json"))?.unwrap_or_default())
}

pub fn write_progress(dir: &Path, progress: &Progress, durability: Durability) -> std::io::Result<()> {
    faults::check(faults::PROGRESS_WRITE, &dir)?;
    persist::write_json_as(&dir.join("delivered.json"), progress, durability)
}

#[cfg(test)]
mod tests;
