//! Reading a journal back: whole batches at the end of a segment (what a restart keeps), and the frames of a range
//! (a stage's input, a restart's re-buffering), streamed through a bounded buffer.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use super::{FRAME_HEADER, Frame, Header, header, segment_name, segments};
use crate::faults;

/// Length of the whole batches at the start of a segment file (frames before `v1_before` are batches alone).
pub(super) fn valid_length(path: &Path, segment_start: u64, v1_before: u64) -> std::io::Result<u64> {
    let len = std::fs::metadata(path)?.len();
    let mut reader = BufReader::new(File::open(path)?);
    let (mut pos, mut whole) = (0u64, 0u64);
    let mut bytes = [0u8; FRAME_HEADER as usize];
    loop {
        if pos + FRAME_HEADER > len || reader.read_exact(&mut bytes).is_err() {
            return Ok(whole);
        }
        let h = header(&bytes);
        if pos + FRAME_HEADER + h.len > len {
            return Ok(whole);
        }
        reader.seek_relative(h.len as i64)?;
        pos += FRAME_HEADER + h.len;
        if h.end || segment_start + pos <= v1_before {
            whole = pos;
        }
    }
}

/// Calls `f(header, offset after the frame, data)` for each frame between offsets `start` and `end` (frame
/// boundaries), in order; `f` reads exactly the frame's length from `data`.
pub(super) fn walk(
    dir: &Path,
    start: u64,
    end: u64,
    v1_before: u64,
    mut f: impl FnMut(Header, u64, &mut dyn Read) -> std::io::Result<()>,
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
        let mut bytes = [0u8; FRAME_HEADER as usize];
        loop {
            if pos >= end {
                return Ok(());
            }
            match reader.read_exact(&mut bytes) {
                Ok(()) => {}
                // The end of this segment: the next frame starts the next one.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            let mut h = header(&bytes);
            if pos < v1_before {
                h.mark = false;
            }
            pos += FRAME_HEADER + h.len;
            f(h, pos, &mut reader)?;
        }
        if starts.iter().all(|&s| s <= segment) {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("journal ends before {end}")));
        }
    }
    Ok(())
}

/// A range's records in one buffer (see [`Reader::read_packed`]).
#[derive(Debug, Default)]
pub struct Packed {
    pub data: Vec<u8>,
    pub records: Vec<(i64, std::ops::Range<usize>)>,
}

impl Packed {
    /// Each record's arrival time and data.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &[u8])> + Clone {
        self.records.iter().map(|(a, r)| (*a, &self.data[r.clone()]))
    }
}

/// A journal's frames, read from outside its append side (a stage's worker, a restart).
#[derive(Debug, Clone)]
pub struct Reader {
    dir: PathBuf,
    v1_before: u64,
}

impl Reader {
    pub fn new(dir: &Path, v1_before: u64) -> Self {
        Reader { dir: dir.to_path_buf(), v1_before }
    }

    /// Visits every frame at or after `from` (a frame boundary) up to `end` without reading records' data.
    pub fn scan(&self, from: u64, end: u64, mut f: impl FnMut(Frame)) -> std::io::Result<()> {
        walk(&self.dir, from, end, self.v1_before, |h, pos, data| {
            std::io::copy(&mut data.take(h.len), &mut std::io::sink())?;
            f(if h.mark {
                Frame::Mark { end: pos }
            } else {
                Frame::Record { arrival_ms: h.arrival_ms, len: h.len, end: pos }
            });
            Ok(())
        })
    }

    /// Writes the data of the records between offsets `start` and `end` to `sink`, in order, through a bounded
    /// buffer: an object is streamed from the journal, never held whole.
    pub fn copy_range(&self, start: u64, end: u64, sink: &mut dyn Write) -> std::io::Result<()> {
        faults::check(faults::JOURNAL_READ, &self.dir)?;
        walk(&self.dir, start, end, self.v1_before, |h, _, data| {
            if h.mark {
                return std::io::copy(&mut data.take(h.len), &mut std::io::sink()).map(|_| ());
            }
            let copied = std::io::copy(&mut data.take(h.len), sink)?;
            if copied != h.len {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "journal frame cut short"));
            }
            Ok(())
        })
    }

    /// Calls `f(arrival_ms, data)` for each record between offsets `start` and `end`, in order, one record in
    /// memory at a time.
    pub fn for_each(
        &self,
        start: u64,
        end: u64,
        mut f: impl FnMut(i64, &[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        faults::check(faults::JOURNAL_READ, &self.dir)?;
        let mut record = Vec::new();
        walk(&self.dir, start, end, self.v1_before, |h, _, data| {
            record.resize(h.len as usize, 0);
            data.read_exact(&mut record)?;
            if h.mark { Ok(()) } else { f(h.arrival_ms, &record) }
        })
    }

    /// The records between offsets `start` and `end` in one buffer: the data one after the other, and each
    /// record's arrival time and span in it (one allocation for the whole range).
    pub fn read_packed(&self, start: u64, end: u64) -> std::io::Result<Packed> {
        faults::check(faults::JOURNAL_READ, &self.dir)?;
        let mut packed = Packed { data: Vec::with_capacity(end.saturating_sub(start) as usize), records: Vec::new() };
        walk(&self.dir, start, end, self.v1_before, |h, _, data| {
            let at = packed.data.len();
            // Straight from the file's buffer into the range's (read_to_end does not zero what it fills).
            let read = data.take(h.len).read_to_end(&mut packed.data)?;
            if read as u64 != h.len {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "journal frame cut short"));
            }
            if h.mark {
                packed.data.truncate(at);
            } else {
                packed.records.push((h.arrival_ms, at..packed.data.len()));
            }
            Ok(())
        })?;
        Ok(packed)
    }

    /// The records between offsets `start` and `end`: arrival time and data, in order.
    pub fn read_range(&self, start: u64, end: u64) -> std::io::Result<Vec<(i64, Vec<u8>)>> {
        let mut out = Vec::new();
        self.for_each(start, end, |arrival_ms, data| {
            out.push((arrival_ms, data.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }
}
