//! Line framing: splits a byte stream into lines, verbatim (no UTF-8 requirement, `\r` kept), each ending with
//! `\n` (one is added to a final line that lacks it), and sets aside lines too long to ever fit a record without
//! buffering them whole.

use std::io::Read;

/// One framed line: its bytes including the terminating `\n`.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    pub bytes: &'a [u8],
    /// 1-based line number within its input.
    pub number: u64,
    /// Byte offset of the line's first byte in the input.
    pub start: u64,
    /// Byte offset just after the line (and its `\n` when the input had one).
    pub end: u64,
}

/// A line that was not framed because it is longer than the limit (counted, never held in memory).
#[derive(Debug, Clone, PartialEq)]
pub struct Oversized {
    pub number: u64,
    pub start: u64,
    pub end: u64,
    /// Length with its `\n`.
    pub len: u64,
    /// The first bytes of the line, for the rejects file.
    pub head: Vec<u8>,
}

/// What the framer produced next.
#[derive(Debug, PartialEq)]
pub enum Next<'a> {
    Line(Line<'a>),
    Oversized(Oversized),
    /// No more data for now (end of input, or, when following, nothing new yet).
    End,
}

const CHUNK: usize = 1024 * 1024;
const HEAD: usize = 256;

/// Frames lines from a reader with a bounded buffer.
pub struct Framer<R> {
    reader: R,
    buf: Vec<u8>,
    /// Start of unconsumed data in `buf`.
    pos: usize,
    /// End of valid data in `buf`.
    len: usize,
    /// Input offset of `buf[0]`.
    base: u64,
    number: u64,
    max_line: usize,
    eof: bool,
    /// The `\n` appended to a final line without one.
    newline: [u8; 1],
    /// A final line without `\n`, copied so the `\n` can be added.
    tail: Vec<u8>,
}

impl<R: Read> Framer<R> {
    /// `max_line`: the longest line (with its `\n`) accepted; longer ones come back as [`Next::Oversized`].
    /// `start_offset`/`start_line`: where in the input the reader is positioned (after a resume).
    pub fn new(reader: R, max_line: usize, start_offset: u64, start_line: u64) -> Self {
        Framer {
            reader,
            buf: vec![0; CHUNK.max(max_line + 1)],
            pos: 0,
            len: 0,
            base: start_offset,
            number: start_line,
            max_line,
            eof: false,
            newline: [b'\n'],
            tail: Vec::new(),
        }
    }

    /// Offset just after the last line returned.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// After [`Next::End`] in follow mode: allow reading again (the file may have grown).
    pub fn resume_after_eof(&mut self) {
        self.eof = false;
    }

    /// Fills the buffer after compacting it; returns the number of bytes read (0 at EOF).
    fn fill(&mut self) -> std::io::Result<usize> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.base += self.pos as u64;
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            return Ok(0);
        }
        loop {
            match self.reader.read(&mut self.buf[self.len..]) {
                Ok(n) => {
                    self.len += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next line. `final_line_without_newline`: at end of input, frame a trailing partial line (true for
    /// plain reads; false when following a growing file, where the rest of the line may still come).
    pub fn next(&mut self, final_line_without_newline: bool) -> std::io::Result<Next<'_>> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..self.len]) {
                let line_len = i + 1;
                let start = self.pos;
                self.pos += line_len;
                self.number += 1;
                let start_offset = self.base + start as u64;
                if line_len > self.max_line {
                    return Ok(Next::Oversized(Oversized {
                        number: self.number,
                        start: start_offset,
                        end: start_offset + line_len as u64,
                        len: line_len as u64,
                        head: self.buf[start..start + HEAD.min(line_len)].to_vec(),
                    }));
                }
                return Ok(Next::Line(Line {
                    bytes: &self.buf[start..self.pos],
                    number: self.number,
                    start: start_offset,
                    end: start_offset + line_len as u64,
                }));
            }
            let pending = self.len - self.pos;
            if pending > self.max_line {
                return self.skip_oversized().map(Next::Oversized);
            }
            if self.eof || self.fill()? == 0 {
                self.eof = true;
                let pending = self.len - self.pos;
                if pending == 0 || !final_line_without_newline {
                    return Ok(Next::End);
                }
                // A final line without `\n`: frame it with one added.
                let start = self.pos;
                self.pos = self.len;
                self.number += 1;
                let start_offset = self.base + start as u64;
                if pending + 1 > self.max_line {
                    return Ok(Next::Oversized(Oversized {
                        number: self.number,
                        start: start_offset,
                        end: start_offset + pending as u64,
                        len: pending as u64 + 1,
                        head: self.buf[start..start + HEAD.min(pending)].to_vec(),
                    }));
                }
                self.tail.clear();
                self.tail.extend_from_slice(&self.buf[start..self.len]);
                self.tail.extend_from_slice(&self.newline);
                return Ok(Next::Line(Line {
                    bytes: &self.tail,
                    number: self.number,
                    start: start_offset,
                    end: start_offset + pending as u64,
                }));
            }
        }
    }

    /// Consumes a line longer than the limit up to and including its `\n` (or the end of input).
    fn skip_oversized(&mut self) -> std::io::Result<Oversized> {
        let start = self.base + self.pos as u64;
        let head = self.buf[self.pos..self.pos + HEAD].to_vec();
        self.number += 1;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..self.len]) {
                self.pos += i + 1;
                let end = self.base + self.pos as u64;
                return Ok(Oversized { number: self.number, start, end, len: end - start, head });
            }
            self.pos = self.len;
            if self.fill()? == 0 {
                self.eof = true;
                let end = self.base + self.pos as u64;
                return Ok(Oversized { number: self.number, start, end, len: end - start + 1, head });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::Just;

    fn frame(input: &[u8], max: usize) -> Vec<(Vec<u8>, u64, u64, u64, bool)> {
        let mut f = Framer::new(input, max, 0, 0);
        let mut out = Vec::new();
        loop {
            match f.next(true).unwrap() {
                Next::Line(l) => out.push((l.bytes.to_vec(), l.number, l.start, l.end, true)),
                Next::Oversized(o) => out.push((o.head.clone(), o.number, o.start, o.end, false)),
                Next::End => return out,
            }
        }
    }

    #[test]
    fn lines_are_verbatim_and_end_with_newline() {
        let got = frame(b"a\r\n\n\xff\x00b\nlast", 100);
        assert_eq!(
            got,
            vec![
                (b"a\r\n".to_vec(), 1, 0, 3, true),
                (b"\n".to_vec(), 2, 3, 4, true),
                (b"\xff\x00b\n".to_vec(), 3, 4, 8, true),
                (b"last\n".to_vec(), 4, 8, 12, true),
            ]
        );
        assert!(frame(b"", 100).is_empty(), "an empty input has no lines");
    }

    #[test]
    fn oversized_lines_are_skipped_without_holding_them() {
        let mut input = b"ok\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 3 * CHUNK));
        input.extend_from_slice(b"\nafter\n");
        let got = frame(&input, 1000);
        assert_eq!(got.len(), 3);
        assert_eq!((got[1].1, got[1].2, got[1].3, got[1].4), (2, 3, 3 + 3 * CHUNK as u64 + 1, false));
        assert_eq!(got[1].0.len(), HEAD);
        assert_eq!(got[2], (b"after\n".to_vec(), 3, 3 + 3 * CHUNK as u64 + 1, 3 * CHUNK as u64 + 10, true));
        // The limit counts the newline: a line of exactly `max` bytes with its newline fits.
        let got = frame(b"12345\n123456\n", 6);
        assert_eq!((got[0].4, got[1].4), (true, false));
        // An over-long final line without newline.
        let got = frame(b"1234567", 6);
        assert!(!got[0].4);
    }

    #[test]
    fn resumed_framing_continues_offsets_and_numbers() {
        let mut f = Framer::new(&b"c\nd\n"[..], 100, 40, 7);
        match f.next(true).unwrap() {
            Next::Line(l) => assert_eq!((l.number, l.start, l.end), (8, 40, 42)),
            other => panic!("{other:?}"),
        }
        f.next(true).unwrap();
        assert_eq!(f.offset(), 44);
    }

    #[test]
    fn following_does_not_frame_a_partial_last_line() {
        let mut f = Framer::new(&b"a\npart"[..], 100, 0, 0);
        assert!(matches!(f.next(false).unwrap(), Next::Line(_)));
        assert_eq!(f.next(false).unwrap(), Next::End);
        assert_eq!(f.offset(), 2, "the partial line stays unread");
    }

    /// A reader that hands out its bytes in the given read sizes (cycling), as pipes and decoders do.
    struct Chunky {
        data: Vec<u8>,
        pos: usize,
        sizes: Vec<usize>,
        turn: usize,
    }

    impl Read for Chunky {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let want = self.sizes[self.turn % self.sizes.len()];
            self.turn += 1;
            let n = want.min(out.len()).min(self.data.len() - self.pos);
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// Any bytes, read in any chunk sizes, frame into exactly the input's lines, in order, with their
        /// offsets and numbers; lines over the limit come back as oversized with their true extent.
        #[test]
        fn framing_matches_a_plain_split_whatever_the_reads(
            data in proptest::collection::vec(proptest::prop_oneof![Just(b'\n'), Just(b'\r'), proptest::prelude::any::<u8>()], 0..600),
            sizes in proptest::collection::vec(1usize..40, 1..6),
            max in 1usize..24,
        ) {
            use proptest::prelude::*;
            let mut expected = Vec::new();
            let mut start = 0usize;
            for (n, piece) in data.split_inclusive(|b| *b == b'\n').enumerate() {
                let mut line = piece.to_vec();
                if line.last() != Some(&b'\n') {
                    line.push(b'\n');
                }
                let end = start + piece.len();
                expected.push((line.len() <= max, if line.len() <= max { line } else { Vec::new() }, n as u64 + 1, start as u64, end as u64));
                start = end;
            }
            let mut f = Framer::new(Chunky { data: data.clone(), pos: 0, sizes, turn: 0 }, max, 0, 0);
            let mut got = Vec::new();
            loop {
                match f.next(true).unwrap() {
                    Next::Line(l) => got.push((true, l.bytes.to_vec(), l.number, l.start, l.end)),
                    Next::Oversized(o) => got.push((false, Vec::new(), o.number, o.start, o.end)),
                    Next::End => break,
                }
            }
            prop_assert_eq!(got, expected);
            prop_assert_eq!(f.offset(), data.len() as u64);
        }
    }
}
