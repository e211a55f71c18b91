//! A lane's buffer: the journal range of the records waiting for their stage, cut ("sealed") when it reaches the
//! lane's size hint or its oldest record its interval hint, and the emulator-wide budget of record bytes kept in
//! memory beside the journal.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::stage::Stage;
use crate::firehose::journal::{FRAME_HEADER, Pending};

/// When a lane cuts its buffer: at `size_bytes` of record data, or once its oldest record is `interval_ms` old.
/// An interval of 0 cuts after every append (a stage that only routes what arrives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    pub size_bytes: usize,
    pub interval_ms: i64,
}

impl Hints {
    /// Every append is handed on at once.
    pub const IMMEDIATE: Hints = Hints { size_bytes: usize::MAX, interval_ms: 0 };
}

/// The emulator's budget for buffered record bytes held in memory, shared by every stream. Buffered records are
/// always in the journal on disk; a buffer keeps a copy in memory only while the budget allows, so delivery need
/// not read it back. Past the budget nothing is refused: new buffers simply stay on disk, and their objects are
/// streamed from the journal.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Self {
        MemoryBudget { limit, used: AtomicUsize::new(0) }
    }

    /// Takes `n` bytes of the budget, if they are left.
    fn try_reserve(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| used.checked_add(n).filter(|&u| u <= self.limit))
            .is_ok()
    }

    pub fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Bytes of buffered records held in memory now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// A cut buffer on its way through its stage: the journal range of its records, their bytes when they are in
/// memory, and what the stage is to do with them (decided when it was cut).
pub struct Sealed {
    /// The journal range `[start, end)`.
    pub start: u64,
    pub end: u64,
    pub data_len: usize,
    pub cached: Option<Vec<u8>>,
    pub records: usize,
    pub oldest_ms: i64,
    pub stage: Arc<Stage>,
    /// The names an intent recorded for this exact range before a restart.
    pub pinned: Option<Pending>,
}

/// A record being buffered: its bytes (just accepted), or only its length (re-buffered after a restart; the
/// bytes are read from the journal by the stage).
#[derive(Clone, Copy)]
pub enum Record<'a> {
    InMemory(&'a [u8]),
    OnDisk(usize),
}

impl Record<'_> {
    fn len(&self) -> usize {
        match self {
            Record::InMemory(data) => data.len(),
            Record::OnDisk(len) => *len,
        }
    }
}

#[derive(Default)]
pub struct Buffer {
    /// Journal offset of the first record's frame.
    pub start: u64,
    /// Journal offset just after the last frame taken.
    pub end: u64,
    pub data_len: usize,
    /// The records' bytes while the memory budget allows; `None` once the buffer has spilled to the journal.
    cached: Option<Vec<u8>>,
    pub records: usize,
    pub oldest_ms: Option<i64>,
}

impl Buffer {
    /// An empty buffer whose next record starts at `offset`.
    pub fn at(offset: u64) -> Self {
        Buffer { start: offset, end: offset, ..Default::default() }
    }

    /// Cuts the buffer as it is (`None` when it holds no record).
    pub fn seal(&mut self, stage: &Arc<Stage>) -> Option<Sealed> {
        let oldest_ms = self.oldest_ms.take()?;
        let buf = std::mem::replace(self, Buffer::at(self.end));
        Some(Sealed {
            start: buf.start,
            end: buf.end,
            data_len: buf.data_len,
            cached: buf.cached,
            records: buf.records,
            oldest_ms,
            stage: stage.clone(),
            pinned: None,
        })
    }

    /// Whether the oldest record has waited the interval (or `force`).
    pub fn due(&self, hints: &Hints, now_ms: i64, force: bool) -> bool {
        self.oldest_ms.is_some_and(|oldest| force || now_ms - oldest >= hints.interval_ms)
    }

    /// Takes a mark frame ending at `end`: inside the buffer's range, or skipped when nothing is buffered.
    pub fn take_mark(&mut self, end: u64) {
        self.end = end;
        if self.records == 0 {
            self.start = end;
        }
    }

    /// Appends one record that ends at journal offset `end`. A record that would take the buffer past the size
    /// hint first cuts the buffer as it is, so objects stay at or under SizeInMBs ("about" the hint, by record
    /// boundaries); a buffer that reaches the hint exactly is cut at once. The bytes are kept in memory while
    /// `budget` allows (never without one); otherwise the buffer spills: its copy is dropped and the stage reads
    /// the journal. Returns the buffers cut.
    pub fn append(
        &mut self,
        hints: &Hints,
        stage: &Arc<Stage>,
        record: Record<'_>,
        arrival_ms: i64,
        end: u64,
        budget: Option<&MemoryBudget>,
    ) -> Vec<Sealed> {
        let len = record.len();
        let mut sealed = Vec::new();
        if self.records > 0 && self.data_len.saturating_add(len) > hints.size_bytes {
            sealed.extend(self.seal(stage));
        }
        if self.oldest_ms.is_none() {
            self.oldest_ms = Some(arrival_ms);
            self.start = end - FRAME_HEADER - len as u64;
            self.cached = Some(Vec::new());
        }
        match (&mut self.cached, record, budget) {
            (Some(cached), Record::InMemory(data), Some(budget)) if budget.try_reserve(len) => {
                cached.extend_from_slice(data)
            }
            (cached, _, budget) => {
                if let (Some(dropped), Some(budget)) = (cached.take(), budget) {
                    budget.release(dropped.len());
                }
            }
        }
        self.data_len += len;
        self.records += 1;
        self.end = end;
        if self.data_len >= hints.size_bytes {
            sealed.extend(self.seal(stage));
        }
        sealed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage() -> Arc<Stage> {
        super::super::tests::write_stage()
    }

    fn cached(s: &Sealed) -> &[u8] {
        s.cached.as_deref().expect("in memory")
    }

    #[test]
    fn buffer_is_cut_before_a_record_that_would_pass_the_hint() {
        let hints = Hints { size_bytes: 10, interval_ms: 60_000 };
        let (stage, budget) = (stage(), MemoryBudget::new(1 << 20));
        let mut b = Buffer::default();
        let add = |b: &mut Buffer, data: &'static [u8], at, end| {
            b.append(&hints, &stage, Record::InMemory(data), at, end, Some(&budget))
        };
        assert!(add(&mut b, b"12345", 1, 17).is_empty());
        let sealed = add(&mut b, b"678901", 2, 35);
        assert_eq!(sealed.len(), 1, "5 + 6 bytes would pass 10: the first record goes alone");
        assert_eq!(
            (cached(&sealed[0]), sealed[0].records, sealed[0].oldest_ms, sealed[0].start, sealed[0].end),
            (&b"12345"[..], 1, 1, 0, 17)
        );
        assert_eq!((b.cached.as_deref(), b.oldest_ms, b.start), (Some(&b"678901"[..]), Some(2), 17));
        let sealed = add(&mut b, b"abcd", 3, 51);
        assert_eq!(sealed.len(), 1, "exactly at the hint: cut at once");
        assert_eq!(cached(&sealed[0]), b"678901abcd");
        assert_eq!((sealed[0].start, sealed[0].end, sealed[0].data_len), (17, 51, 10));
        assert!(b.oldest_ms.is_none() && b.records == 0);
        assert_eq!((b.start, b.end), (51, 51));
        assert_eq!(budget.used(), 15, "released only when delivered");
    }

    #[test]
    fn past_the_memory_budget_a_buffer_spills_to_the_journal() {
        let hints = Hints { size_bytes: 100, interval_ms: 60_000 };
        let (stage, budget) = (stage(), MemoryBudget::new(8));
        let mut b = Buffer::default();
        b.append(&hints, &stage, Record::InMemory(b"12345"), 1, 17, Some(&budget));
        assert_eq!((b.cached.as_deref(), budget.used()), (Some(&b"12345"[..]), 5));
        b.append(&hints, &stage, Record::InMemory(b"6789"), 1, 33, Some(&budget));
        assert_eq!((b.cached.as_deref(), budget.used()), (None, 0), "spilled: the copy is dropped and released");
        b.append(&hints, &stage, Record::InMemory(b"x"), 1, 46, Some(&budget));
        assert_eq!((b.cached.as_deref(), budget.used(), b.data_len), (None, 0, 10), "stays on disk");
        let sealed = b.seal(&stage).unwrap();
        assert_eq!((sealed.start, sealed.end, sealed.cached.is_none()), (0, 46, true));
        // Re-buffered after a restart: never in memory.
        b.append(&hints, &stage, Record::OnDisk(3), 1, 61, Some(&budget));
        assert_eq!((b.cached.as_deref(), b.start), (None, 46));
    }

    #[test]
    fn a_mark_is_inside_a_buffer_or_skipped_by_an_empty_one() {
        let hints = Hints { size_bytes: 100, interval_ms: 60_000 };
        let stage = stage();
        let mut b = Buffer::at(10);
        b.take_mark(30);
        assert_eq!((b.start, b.end, b.records), (30, 30, 0));
        b.append(&hints, &stage, Record::OnDisk(4), 1, 46, None);
        b.take_mark(60);
        let sealed = b.seal(&stage).unwrap();
        assert_eq!((sealed.start, sealed.end, sealed.records), (30, 60, 1));
        assert!(b.seal(&stage).is_none());
    }
}
