//! The per-stream record journal that makes an acknowledged record durable.
//!
//! A PutRecord(Batch) is acknowledged only after its records are appended here. The journal is a sequence of
//! segment files `<first-offset>.log` holding frames `[u32 length][i64 arrival ms][data]`; an offset is a byte
//! position in the logical concatenation of segments. `delivered.json` records the offset up to which records are
//! in S3, plus the object being written (`pending`), so that after a kill the engine can tell whether that object
//! landed: every acknowledged record is then delivered exactly once.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::util::persist;

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
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let starts = segments(dir)?;
        let segment_start = starts.last().copied().unwrap_or(0);
        let path = dir.join(segment_name(segment_start));
        let valid = if path.exists() { valid_length(&path)? } else { 0 };
        if path.exists() {
            OpenOptions::new().write(true).open(&path)?.set_len(valid)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Journal { dir: dir.to_path_buf(), file, segment_start, end: segment_start + valid })
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
            self.segment_start = self.end;
            self.file = OpenOptions::new().create(true).append(true).open(self.dir.join(segment_name(self.end)))?;
        }
        let total: usize = records.clone().map(|r| r.len() + FRAME_HEADER as usize).sum();
        let mut buf = Vec::with_capacity(total);
        let mut ends = Vec::new();
        let mut offset = self.end;
        for record in records {
            buf.extend_from_slice(&(record.len() as u32).to_le_bytes());
            buf.extend_from_slice(&arrival_ms.to_le_bytes());
            buf.extend_from_slice(record);
            offset += FRAME_HEADER + record.len() as u64;
            ends.push(offset);
        }
        self.file.write_all(&buf)?;
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

/// Reads every record at or after `from` (which must be a frame boundary), in order.
pub fn read_from(dir: &Path, from: u64) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let starts = segments(dir)?;
    for (i, &start) in starts.iter().enumerate() {
        let next = starts.get(i + 1).copied();
        if next.is_some_and(|n| n <= from) {
            continue;
        }
        let path = dir.join(segment_name(start));
        let valid = valid_length(&path)?;
        let mut reader = BufReader::new(File::open(&path)?);
        let mut pos = start;
        let mut header = [0u8; FRAME_HEADER as usize];
        while pos < start + valid {
            reader.read_exact(&mut header)?;
            let size = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
            let arrival_ms = i64::from_le_bytes(header[4..].try_into().expect("8 bytes"));
            let mut data = vec![0u8; size];
            reader.read_exact(&mut data)?;
            pos += FRAME_HEADER + size as u64;
            if pos > from {
                out.push(Entry { arrival_ms, data, end: pos });
            }
        }
    }
    Ok(out)
}

pub fn read_progress(dir: &Path) -> std::io::Result<Progress> {
    Ok(persist::read_json(&dir.join("delivered.json"))?.unwrap_or_default())
}

pub fn write_progress(dir: &Path, progress: &Progress) -> std::io::Result<()> {
    persist::write_json(&dir.join("delivered.json"), progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_records_read_back_after_reopen_and_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let ends = j.append(7, [b"ab".as_slice(), b"".as_slice(), b"xyz".as_slice()].into_iter()).unwrap();
        assert_eq!(ends, vec![14, 26, 41]);
        drop(j);
        // A torn frame: header claims 100 bytes, 3 present.
        let seg = dir.path().join(segment_name(0));
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&100u32.to_le_bytes()).unwrap();
        f.write_all(&[0u8; 11]).unwrap();
        drop(f);
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.end(), 41);
        j.append(8, [b"q".as_slice()].into_iter()).unwrap();
        let all = read_from(dir.path(), 0).unwrap();
        let data: Vec<&[u8]> = all.iter().map(|e| e.data.as_slice()).collect();
        assert_eq!(data, vec![b"ab".as_slice(), b"", b"xyz", b"q"]);
        let tail = read_from(dir.path(), 26).unwrap();
        assert_eq!(tail.len(), 2);
        assert_eq!(tail[0].arrival_ms, 7);
        assert_eq!(tail[1].arrival_ms, 8);
    }

    #[test]
    fn progress_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_progress(dir.path()).unwrap(), Progress::default());
        let p = Progress { offset: 5, pending: Some(Pending { end: 9, bucket: "b".into(), key: "k".into() }) };
        write_progress(dir.path(), &p).unwrap();
        assert_eq!(read_progress(dir.path()).unwrap(), p);
    }
}
