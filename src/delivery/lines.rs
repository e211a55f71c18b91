//! Splitting a delivered object's decoded bytes into lines without ever holding a long one whole. A line up to
//! the splitter's `hold` is handed over as its bytes; a longer one only as its hash and length, hashed as its
//! pieces stream by (xxh3 in streaming form gives the same hash as over the whole line). An object written by
//! anyone with access to the bucket can hold one line of any length; verify's memory must not follow it.

use xxhash_rust::xxh3::Xxh3;

use crate::pipeline::manifest::line_hash;

/// The longest line Firehose can deliver: a whole object of the largest buffer (128 MiB), plus the one batch
/// (at most 4 MiB) that may take a buffer past its size hint. A longer line is not Firehose's work.
pub const LONGEST_LINE: u64 = (128 + 4) * 1024 * 1024;

/// Lines held whole for the checks that parse them (a partition's fields, `--match`): far above Firehose's largest
/// record (1,000 KiB) and a Lambda's largest response (6 MiB).
pub const HOLD_FOR_PARSING: usize = 8 * 1024 * 1024;

/// One line (without its `\n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    Whole(&'a [u8]),
    /// Longer than the splitter holds: only its hash and length.
    Long {
        hash: u128,
        len: u64,
    },
}

impl Line<'_> {
    /// The line's hash, as [`line_hash`] gives it for the whole line.
    pub fn hash(&self) -> u128 {
        match self {
            Line::Whole(bytes) => line_hash(bytes),
            Line::Long { hash, .. } => *hash,
        }
    }
}

/// Splits bytes written in pieces into lines on `\n`.
pub struct Splitter {
    hold: usize,
    carry: Vec<u8>,
    /// The line being streamed once it outgrew `hold`, and its length so far.
    long: Option<(Box<Xxh3>, u64)>,
}

impl Splitter {
    pub fn new(hold: usize) -> Self {
        Splitter { hold, carry: Vec::new(), long: None }
    }

    /// The length of the line not finished yet.
    pub fn pending(&self) -> u64 {
        self.long.as_ref().map_or(self.carry.len() as u64, |(_, len)| *len)
    }

    /// Splits `chunk`, handing each line it finishes to `on_line`.
    pub fn feed(&mut self, chunk: &[u8], on_line: &mut impl FnMut(Line)) {
        let mut start = 0;
        for i in memchr::memchr_iter(b'\n', chunk) {
            self.end_line(&chunk[start..i], on_line);
            start = i + 1;
        }
        self.extend(&chunk[start..]);
    }

    /// Hands over the last line when the bytes did not end with `\n` (nothing when they did).
    pub fn finish(&mut self, on_line: &mut impl FnMut(Line)) {
        if self.long.is_some() || !self.carry.is_empty() {
            self.end_line(&[], on_line);
        }
    }

    fn extend(&mut self, piece: &[u8]) {
        if let Some((hasher, len)) = self.long.as_mut() {
            hasher.update(piece);
            *len += piece.len() as u64;
        } else if self.carry.len() + piece.len() <= self.hold {
            self.carry.extend_from_slice(piece);
        } else {
            let mut hasher = Box::new(Xxh3::new());
            hasher.update(&self.carry);
            hasher.update(piece);
            self.long = Some((hasher, (self.carry.len() + piece.len()) as u64));
            self.carry = Vec::new();
        }
    }

    fn end_line(&mut self, tail: &[u8], on_line: &mut impl FnMut(Line)) {
        if self.long.is_none() && self.carry.is_empty() && tail.len() <= self.hold {
            on_line(Line::Whole(tail));
            return;
        }
        self.extend(tail);
        match self.long.take() {
            Some((hasher, len)) => on_line(Line::Long { hash: hasher.digest128(), len }),
            None => {
                on_line(Line::Whole(&self.carry));
                self.carry.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pieces: &[&[u8]], hold: usize) -> Vec<(u128, u64, bool)> {
        let mut s = Splitter::new(hold);
        let mut out = Vec::new();
        let mut on = |l: Line| {
            out.push(match l {
                Line::Whole(b) => (line_hash(b), b.len() as u64, true),
                Line::Long { hash, len } => (hash, len, false),
            })
        };
        for p in pieces {
            s.feed(p, &mut on);
        }
        s.finish(&mut on);
        out
    }

    #[test]
    fn long_lines_hash_as_the_whole_line_would_wherever_the_pieces_split() {
        let long: Vec<u8> =
            (0..100_000u32).map(|i| (i % 251) as u8 | 1).map(|b| if b == b'\n' { 1 } else { b }).collect();
        let mut text = b"short\n".to_vec();
        text.extend_from_slice(&long);
        text.extend_from_slice(b"\n\ntail");
        let want = vec![
            (line_hash(b"short"), 5, true),
            (line_hash(&long), long.len() as u64, false),
            (line_hash(b""), 0, true),
            (line_hash(b"tail"), 4, true),
        ];
        for piece in [1, 7, 255, 4096, 65_537, text.len()] {
            let pieces: Vec<&[u8]> = text.chunks(piece).collect();
            assert_eq!(split(&pieces, 1000), want, "pieces of {piece}");
        }
        // Held whole when the hold allows it.
        assert_eq!(split(&[&text], 1 << 20)[1], (line_hash(&long), long.len() as u64, true));
    }

    #[test]
    fn pending_counts_the_unfinished_line_and_nothing_is_handed_over_for_a_final_newline() {
        let mut s = Splitter::new(4);
        let mut n = 0;
        s.feed(b"abcdefgh", &mut |_| n += 1);
        assert_eq!((s.pending(), n), (8, 0));
        s.feed(b"ij\n", &mut |_| n += 1);
        assert_eq!((s.pending(), n), (0, 1));
        s.finish(&mut |_| n += 1);
        assert_eq!(n, 1);
    }
}
