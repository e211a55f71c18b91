//! The per-stream record journal that makes an acknowledged record durable.
//!
//! A PutRecord(Batch) is acknowledged only after its records are appended here. The journal is a sequence of
//! segment files `<first-offset>.log` holding frames `[u32 length][i64 arrival ms][data]`; an offset is a byte
//! position in the logical concatenation of segments. `delivered.json` records the offset up to which records are
//! in S3, plus the object being written (`pending`), so that after a kill the engine can tell whether that object
//! landed: every acknowledged record is then delivered exactly once.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, IoSlice, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use firehose_kit_domain::util::persist::{self, Durability};

/// Bytes of a frame header: u32 length + i64 arrival time.
pub const FRAME_HEADER: u64 = 12;
/// A new segment is started once the current one is this large.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// The delivery progress document.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    /// Every record before this offset is in S3.
    pub offset: u64,
    /// The object being delivered: it covers records up to `end`.
    pub pending: Option<Pending>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pending {
    pub end: u64,
    pub bucket: String,
    pub key: String,
}

/// One record read back from the journal.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub arrival_ms: i64,
    pub data: Vec<u8>,
    /// Offset just after this record's frame.
    pub end: u64,
}

/// The append side of a stream's journal.
pub struct Journal {
    dir: PathBuf,
    file: File,
    segment_start: u64,
    /// Offset just after the last appended frame.
    end: u64,
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

impl Journal {
    /// Opens the journal in `dir` for appending after its last complete frame (a torn final frame, left by a
    /// kill in the middle of a write that was therefore never acknowledged, is cut off).
    pub fn open(dir: &Path, durability: Durability) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let starts = segments(dir)?;
        let segment_start = starts.last().copied().unwrap_or(0);
        let path = dir.join(segment_name(segment_start));
        let valid = if path.exists() { valid_length(&path)? } else { 0 };
        if path.exists() {
            let len = std::fs::metadata(&path)?.len();
            if len > valid {
                tracing::warn!(
                    "journal `{}`: cutting {} bytes of a frame whose write was interrupted (never acknowledged) after offset {}",
                    path.display(),
                    len - valid,
                    segment_start + valid
                );
            }
            OpenOptions::new().write(true).open(&path)?.set_len(valid)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if durability == Durability::Machine {
            file.sync_all()?;
            persist::sync_parent(&path)?;
        }
        Ok(Journal { dir: dir.to_path_buf(), file, segment_start, end: segment_start + valid, durability })
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

    /// Appends records (all with the same arrival time) in one write; returns each record's end offset.
    pub fn append<'a>(
        &mut self,
        arrival_ms: i64,
        records: impl Iterator<Item = &'a [u8]> + Clone,
    ) -> std::io::Result<Vec<u64>> {
        if self.end - self.segment_start >= SEGMENT_BYTES {
            let path = self.dir.join(segment_name(self.end));
            self.file = OpenOptions::new().create(true).append(true).open(&path)?;
            if self.durability == Durability::Machine {
                persist::sync_parent(&path)?;
            }
            self.segment_start = self.end;
        }
        // Headers are built in one small buffer and written with the records' own bytes in vectored writes: no
        // copy of the (up to 4 MiB) batch is made.
        let mut headers = Vec::new();
        let mut ends = Vec::new();
        let mut offset = self.end;
        for record in records.clone() {
            headers.extend_from_slice(&(record.len() as u32).to_le_bytes());
            headers.extend_from_slice(&arrival_ms.to_le_bytes());
            offset += FRAME_HEADER + record.len() as u64;
            ends.push(offset);
        }
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(ends.len() * 2);
        for (header, record) in headers.chunks(FRAME_HEADER as usize).zip(records) {
            slices.push(IoSlice::new(header));
            slices.push(IoSlice::new(record));
        }
        if let Err(e) = write_all_vectored(&mut self.file, &mut slices) {
            // A partial write (a full disk) must not stay: the records were not acknowledged, and a later append
            // after a torn frame would be unreadable. Cut the segment back to its last whole frame.
            let path = self.dir.join(segment_name(self.segment_start));
            if let Err(cut) = self.file.set_len(self.end - self.segment_start) {
                tracing::error!("cannot cut `{}` back after a failed write: {cut}", path.display());
            }
            return Err(std::io::Error::new(e.kind(), format!("appending to `{}`: {e}", path.display())));
        }
        if self.durability == Durability::Machine {
            self.file.sync_data()?;
        }
        self.end = offset;
        Ok(ends)
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

/// Length of the complete frames at the start of a segment file.
fn valid_length(path: &Path) -> std::io::Result<u64> {
    let len = std::fs::metadata(path)?.len();
    let mut reader = BufReader::new(File::open(path)?);
    let mut pos = 0u64;
    let mut header = [0u8; FRAME_HEADER as usize];
    loop {
        if pos + FRAME_HEADER > len || reader.read_exact(&mut header).is_err() {
            return Ok(pos);
        }
        let size = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as u64;
        if pos + FRAME_HEADER + size > len {
            return Ok(pos);
        }
        std::io::copy(&mut (&mut reader).take(size), &mut std::io::sink())?;
        pos += FRAME_HEADER + size;
    }
}

/// Reads every record at or after `from` (which must be a frame boundary), in order, into memory (tests).
#[cfg(test)]
pub fn read_from(dir: &Path, from: u64) -> std::io::Result<Vec<Entry>> {
    let mut frames = Vec::new();
    scan_from(dir, from, |arrival_ms, len, end| frames.push((arrival_ms, len, end)))?;
    frames
        .into_iter()
        .map(|(arrival_ms, len, end)| {
            let mut data = Vec::new();
            copy_range(dir, end - FRAME_HEADER - len, end, &mut data)?;
            Ok(Entry { arrival_ms, data, end })
        })
        .collect()
}

/// Visits every frame at or after `from` (a frame boundary) without reading its data: `f(arrival_ms, data_len,
/// end)`, in order. Restart uses it to rebuild buffers whose bytes stay on disk.
pub fn scan_from(dir: &Path, from: u64, mut f: impl FnMut(i64, u64, u64)) -> std::io::Result<()> {
    let starts = segments(dir)?;
    for (i, &start) in starts.iter().enumerate() {
        if starts.get(i + 1).is_some_and(|&n| n <= from) {
            continue;
        }
        let path = dir.join(segment_name(start));
        let valid = valid_length(&path)?;
        let mut reader = BufReader::new(File::open(&path)?);
        let mut pos = start;
        let mut header = [0u8; FRAME_HEADER as usize];
        while pos < start + valid {
            reader.read_exact(&mut header)?;
            let size = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as u64;
            let arrival_ms = i64::from_le_bytes(header[4..].try_into().expect("8 bytes"));
            reader.seek_relative(size as i64)?;
            pos += FRAME_HEADER + size;
            if pos > from {
                f(arrival_ms, size, pos);
            }
        }
    }
    Ok(())
}

/// Writes the data of the frames between offsets `start` and `end` (frame boundaries) to `sink`, in order,
/// through a bounded buffer: an object is streamed from the journal, never held whole.
pub fn copy_range(dir: &Path, start: u64, end: u64, sink: &mut dyn Write) -> std::io::Result<()> {
    walk_range(dir, start, end, |_, size, data| {
        let copied = std::io::copy(&mut data.take(size), sink)?;
        if copied != size {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "journal frame cut short"));
        }
        Ok(())
    })
}

/// The records between offsets `start` and `end` (frame boundaries): arrival time and data, in order.
pub fn read_range(dir: &Path, start: u64, end: u64) -> std::io::Result<Vec<(i64, Vec<u8>)>> {
    let mut out = Vec::new();
    walk_range(dir, start, end, |arrival_ms, size, data| {
        let mut record = vec![0u8; size as usize];
        data.read_exact(&mut record)?;
        out.push((arrival_ms, record));
        Ok(())
    })?;
    Ok(out)
}

/// Calls `f(arrival_ms, data)` for each record between offsets `start` and `end`, in order, one record in memory
/// at a time.
pub fn for_each_record(
    dir: &Path,
    start: u64,
    end: u64,
    mut f: impl FnMut(i64, &[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut record = Vec::new();
    walk_range(dir, start, end, |arrival_ms, size, data| {
        record.resize(size as usize, 0);
        data.read_exact(&mut record)?;
        f(arrival_ms, &record)
    })
}

/// Calls `f(arrival_ms, size, data)` for each frame between `start` and `end`; `f` reads exactly `size` bytes.
fn walk_range(
    dir: &Path,
    start: u64,
    end: u64,
    mut f: impl FnMut(i64, u64, &mut dyn Read) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let starts = segments(dir)?;
    let mut pos = start;
    while pos < end {
        let segment = starts.iter().rev().find(|&&s| s <= pos).copied().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, format!("journal offset {pos} is in no segment"))
        })?;
        let mut file = File::open(dir.join(segment_name(segment)))?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(pos - segment))?;
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut header = [0u8; FRAME_HEADER as usize];
        loop {
            if pos >= end {
                return Ok(());
            }
            match reader.read_exact(&mut header) {
                Ok(()) => {}
                // The end of this segment: the next frame starts the next one.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            let size = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as u64;
            let arrival_ms = i64::from_le_bytes(header[4..].try_into().expect("8 bytes"));
            f(arrival_ms, size, &mut reader)?;
            pos += FRAME_HEADER + size;
        }
        if starts.iter().all(|&s| s <= segment) {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("journal ends before {end}")));
        }
    }
    Ok(())
}

pub fn read_progress(dir: &Path) -> std::io::Result<Progress> {
    Ok(persist::read_json(&dir.join("delivered.json"))?.unwrap_or_default())
}

pub fn write_progress(dir: &Path, progress: &Progress, durability: Durability) -> std::io::Result<()> {
    persist::write_json_as(&dir.join("delivered.json"), progress, durability)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_records_read_back_after_reopen_and_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), Durability::Process).unwrap();
        let ends = j.append(7, [b"ab".as_slice(), b"".as_slice(), b"xyz".as_slice()].into_iter()).unwrap();
        assert_eq!(ends, vec![14, 26, 41]);
        drop(j);
        // A torn frame: header claims 100 bytes, 3 present.
        let seg = dir.path().join(segment_name(0));
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&100u32.to_le_bytes()).unwrap();
        f.write_all(&[0u8; 11]).unwrap();
        drop(f);
        let mut j = Journal::open(dir.path(), Durability::Process).unwrap();
        assert_eq!(j.end(), 41);
        j.append(8, [b"q".as_slice()].into_iter()).unwrap();
        let all = read_from(dir.path(), 0).unwrap();
        let data: Vec<&[u8]> = all.iter().map(|e| e.data.as_slice()).collect();
        assert_eq!(data, vec![b"ab".as_slice(), b"", b"xyz", b"q"]);
        let tail = read_from(dir.path(), 26).unwrap();
        assert_eq!(tail.len(), 2);
        assert_eq!(tail[0].arrival_ms, 7);
        assert_eq!(tail[1].arrival_ms, 8);
        let mut scanned = Vec::new();
        scan_from(dir.path(), 14, |arrival, len, end| scanned.push((arrival, len, end))).unwrap();
        assert_eq!(scanned, vec![(7, 0, 26), (7, 3, 41), (8, 1, 54)]);
        let mut out = Vec::new();
        copy_range(dir.path(), 14, 54, &mut out).unwrap();
        assert_eq!(out, b"xyzq");
    }

    #[test]
    fn a_batch_of_more_frames_than_one_vectored_write_takes_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), Durability::Process).unwrap();
        let records: Vec<Vec<u8>> = (0..3000u32).map(|i| i.to_le_bytes().repeat(1 + (i % 5) as usize)).collect();
        j.append(3, records.iter().map(Vec::as_slice)).unwrap();
        let back: Vec<Vec<u8>> = read_from(dir.path(), 0).unwrap().into_iter().map(|e| e.data).collect();
        assert_eq!(back, records);
    }

    #[test]
    fn ranges_are_copied_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), Durability::Process).unwrap();
        let big = vec![7u8; SEGMENT_BYTES as usize];
        let first = j.append(1, [big.as_slice()].into_iter()).unwrap();
        let second = j.append(2, [b"tail".as_slice()].into_iter()).unwrap();
        assert_eq!(segments(dir.path()).unwrap().len(), 2, "the second append starts a new segment");
        // Not a frame boundary: the "header" there is record bytes, and the copy fails instead of inventing data.
        copy_range(dir.path(), first[0] - FRAME_HEADER - 10, second[0], &mut Vec::new()).unwrap_err();
        let mut out = Vec::new();
        copy_range(dir.path(), 0, second[0], &mut out).unwrap();
        assert_eq!(out.len(), big.len() + 4);
        assert!(out.ends_with(b"tail"));
        assert!(copy_range(dir.path(), second[0], second[0] + 100, &mut Vec::new()).is_err(), "past the end");
    }

    #[test]
    fn progress_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_progress(dir.path()).unwrap(), Progress::default());
        let p = Progress { offset: 5, pending: Some(Pending { end: 9, bucket: "b".into(), key: "k".into() }) };
        write_progress(dir.path(), &p, Durability::Process).unwrap();
        assert_eq!(read_progress(dir.path()).unwrap(), p);
    }
}
