//! Packing lines into records and records into PutRecordBatch calls, within Firehose's limits, and the
//! billing arithmetic that motivates packing (each record is billed rounded up to 5 KB).

pub use crate::firehose::billing::billable;
use crate::firehose::limits::{MAX_BATCH_BYTES, encoded_batch_overhead, encoded_record_size};
pub use crate::firehose::limits::{MAX_BATCH_RECORDS, MAX_RECORD_BYTES};

/// The PutRecordBatch size limit, counted here on the encoded request (see `firehose::limits`): stricter than
/// the service's count of record data, so a batch built here never fails on size.
pub const MAX_BATCH_ENCODED_BYTES: usize = MAX_BATCH_BYTES;

/// A contiguous byte range of one input covered by a record (for checkpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub input: usize,
    pub start: u64,
    pub end: u64,
    /// Lines in the range.
    pub lines: u64,
}

/// A record on its way to Firehose: whole lines, never split.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    pub data: Vec<u8>,
    pub lines: u32,
    /// Hash of each line (see `manifest::line_hash`), in order.
    pub hashes: Vec<u128>,
    /// Input ranges the record's lines came from (usually one).
    pub spans: Vec<Span>,
    /// What these lines would be billed as one line per record.
    pub billable_one_per_record: u64,
}

impl Record {
    fn add(&mut self, line: &[u8], hash: u128, span: Span) {
        self.data.extend_from_slice(line);
        self.lines += 1;
        self.hashes.push(hash);
        self.billable_one_per_record += billable(line.len() as u64);
        match self.spans.last_mut() {
            Some(last) if last.input == span.input && last.end == span.start => {
                last.end = span.end;
                last.lines += span.lines;
            }
            _ => self.spans.push(span),
        }
    }
}

/// Packs lines into records of at most `max` bytes (one line per record when `max` is 0), and at most
/// `max_lines` lines (a stream that deaggregates records splits at most 500 sub-records from one).
pub struct Packer {
    max: usize,
    max_lines: u32,
    one_per_record: bool,
    current: Record,
}

impl Packer {
    pub fn new(max: usize, one_per_record: bool) -> Self {
        Packer { max: max.min(MAX_RECORD_BYTES), max_lines: u32::MAX, one_per_record, current: Record::default() }
    }

    /// Caps the lines of one record.
    pub fn with_max_lines(mut self, n: u32) -> Self {
        self.max_lines = n.max(1);
        self
    }

    /// Adds a line (with its `\n`, at most `max` bytes); returns a finished record when one is complete.
    pub fn push(&mut self, line: &[u8], hash: u128, span: Span) -> Option<Record> {
        debug_assert!(line.len() <= self.max);
        let full = self.current.data.len() + line.len() > self.max || self.current.lines >= self.max_lines;
        let done = if !self.current.data.is_empty() && full { Some(std::mem::take(&mut self.current)) } else { None };
        if self.current.data.capacity() == 0 && !self.one_per_record {
            self.current.data.reserve(self.max.min(256 * 1024));
        }
        self.current.add(line, hash, span);
        if self.one_per_record {
            debug_assert!(done.is_none());
            return Some(std::mem::take(&mut self.current));
        }
        done
    }

    /// The partial record, if any (end of input, or a linger timeout).
    pub fn flush(&mut self) -> Option<Record> {
        (!self.current.data.is_empty()).then(|| std::mem::take(&mut self.current))
    }

    pub fn is_empty(&self) -> bool {
        self.current.data.is_empty()
    }
}

/// A PutRecordBatch call's worth of records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub records: Vec<Record>,
    pub encoded_bytes: usize,
}

impl Batch {
    pub fn data_bytes(&self) -> u64 {
        self.records.iter().map(|r| r.data.len() as u64).sum()
    }

    pub fn lines(&self) -> u64 {
        self.records.iter().map(|r| r.lines as u64).sum()
    }
}

/// Groups records into batches of at most 500 records and 4 MiB of encoded request.
pub struct Batcher {
    overhead: usize,
    current: Batch,
}

impl Batcher {
    pub fn new(stream: &str) -> Self {
        let overhead = encoded_batch_overhead(stream);
        Batcher { overhead, current: Batch { records: Vec::new(), encoded_bytes: overhead } }
    }

    /// Adds a record; returns a full batch when the record did not fit in the current one.
    pub fn push(&mut self, record: Record) -> Option<Batch> {
        let size = encoded_record_size(record.data.len());
        let full = !self.current.records.is_empty()
            && (self.current.records.len() == MAX_BATCH_RECORDS
                || self.current.encoded_bytes + size > MAX_BATCH_ENCODED_BYTES);
        let done = full.then(|| self.take());
        self.current.encoded_bytes += size;
        self.current.records.push(record);
        done
    }

    /// The partial batch, if any.
    pub fn flush(&mut self) -> Option<Batch> {
        (!self.current.records.is_empty()).then(|| self.take())
    }

    pub fn is_empty(&self) -> bool {
        self.current.records.is_empty()
    }

    fn take(&mut self) -> Batch {
        std::mem::replace(&mut self.current, Batch { records: Vec::new(), encoded_bytes: self.overhead })
    }
}

impl Batch {
    /// Splits off the records that fit in `bytes` of data (at least the first one); the rest stays in `self`.
    pub fn take_within(&mut self, bytes: f64, stream: &str) -> Batch {
        let mut n = 0;
        let mut total = 0.0;
        for r in &self.records {
            if n > 0 && total + r.data.len() as f64 > bytes {
                break;
            }
            total += r.data.len() as f64;
            n += 1;
        }
        let rest = self.records.split_off(n);
        let taken = std::mem::replace(&mut self.records, rest);
        let overhead = encoded_batch_overhead(stream);
        self.encoded_bytes = overhead + self.records.iter().map(|r| encoded_record_size(r.data.len())).sum::<usize>();
        Batch {
            encoded_bytes: overhead + taken.iter().map(|r| encoded_record_size(r.data.len())).sum::<usize>(),
            records: taken,
        }
    }
}

/// Re-batches records (e.g. failed entries being resent) within the same limits.
pub fn rebatch(stream: &str, records: Vec<Record>) -> Vec<Batch> {
    let mut batcher = Batcher::new(stream);
    let mut out: Vec<Batch> = records.into_iter().filter_map(|r| batcher.push(r)).collect();
    out.extend(batcher.flush());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_cap_cuts_records_too() {
        let mut p = Packer::new(MAX_RECORD_BYTES, false).with_max_lines(500);
        let span = Span { input: 0, start: 0, end: 1, lines: 1 };
        let done: Vec<Record> = (0..1200).filter_map(|_| p.push(b"x\n", 0, span)).collect();
        assert_eq!(done.iter().map(|r| r.lines).collect::<Vec<_>>(), vec![500, 500]);
        assert_eq!(p.flush().unwrap().lines, 200);
    }
    use base64::Engine as _;

    fn span(start: u64, end: u64) -> Span {
        Span { input: 0, start, end, lines: 1 }
    }

    #[test]
    fn packer_never_splits_a_line_and_respects_the_cap() {
        let mut p = Packer::new(10, false);
        let mut records = Vec::new();
        let mut offset = 0;
        for line in [&b"aaaa\n"[..], b"bbbb\n", b"cc\n", b"dddddddd\n"] {
            let end = offset + line.len() as u64;
            records.extend(p.push(line, 0, span(offset, end)));
            offset = end;
        }
        records.extend(p.flush());
        let data: Vec<&[u8]> = records.iter().map(|r| r.data.as_slice()).collect();
        assert_eq!(data, vec![&b"aaaa\nbbbb\n"[..], b"cc\n", b"dddddddd\n"]);
        assert_eq!(
            records[0].spans,
            vec![Span { input: 0, start: 0, end: 10, lines: 2 }],
            "contiguous lines make one span"
        );
        assert_eq!(records.iter().map(|r| r.lines).sum::<u32>(), 4);
        assert_eq!(records[0].billable_one_per_record, 2 * 5120);
    }

    #[test]
    fn one_line_per_record_mode() {
        let mut p = Packer::new(MAX_RECORD_BYTES, true);
        assert_eq!(p.push(b"a\n", 1, span(0, 2)).unwrap().data, b"a\n");
        assert_eq!(p.push(b"b\n", 2, span(2, 4)).unwrap().hashes, vec![2]);
        assert!(p.flush().is_none());
    }

    #[test]
    fn take_within_splits_off_what_fits_and_at_least_one_record() {
        let records: Vec<Record> =
            [100, 200, 300].iter().map(|n| Record { data: vec![0; *n], lines: 1, ..Default::default() }).collect();
        let mut batch = rebatch("S", records).remove(0);
        let first = batch.take_within(350.0, "S");
        assert_eq!((first.records.len(), batch.records.len()), (2, 1));
        let all = batch.take_within(0.0, "S");
        assert_eq!((all.records.len(), batch.records.len()), (1, 0), "at least one record");
        assert_eq!(
            first.encoded_bytes,
            encoded_batch_overhead("S") + encoded_record_size(100) + encoded_record_size(200)
        );
    }

    #[test]
    fn batches_stay_within_500_records_and_4_mib_encoded() {
        let small: Vec<Record> =
            (0..1200).map(|_| Record { data: vec![1; 10], lines: 1, ..Default::default() }).collect();
        let batches = rebatch("S", small);
        assert_eq!(batches.iter().map(|b| b.records.len()).collect::<Vec<_>>(), vec![500, 500, 200]);
        let big: Vec<Record> =
            (0..10).map(|_| Record { data: vec![1; MAX_RECORD_BYTES], lines: 1, ..Default::default() }).collect();
        let batches = rebatch("S", big);
        assert!(batches.iter().all(|b| b.encoded_bytes <= MAX_BATCH_ENCODED_BYTES));
        assert_eq!(batches[0].records.len(), 3, "three full records fit in 4 MiB encoded");
        assert_eq!(batches.iter().map(|b| b.records.len()).sum::<usize>(), 10);
        // The encoded size is the real request body size.
        let b = &batches[0];
        let body = format!(
            r#"{{"DeliveryStreamName":"S","Records":[{}]}}"#,
            b.records
                .iter()
                .map(|r| format!(r#"{{"Data":"{}"}}"#, base64::engine::general_purpose::STANDARD.encode(&r.data)))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(body.len() <= b.encoded_bytes, "{} > {}", body.len(), b.encoded_bytes);
    }
}
