//! Following a growing log file that logrotate may rotate (rename + new file) or `copytruncate` (copy, then
//! truncate in place, after which the writer refills the same file). A truncation is recognised by the file's
//! first bytes no longer being the ones read from it, not only by its size falling below what was read: a busy
//! writer refills it past the old offset before anyone polls. [`Guarded`] checks that before every read, so
//! nothing of the new content is read from its middle; the new content is then read from its start, past the
//! run of NUL bytes a writer without `O_APPEND` leaves there (it keeps writing at its old offset, and the file
//! system fills the gap with a hole).

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How many of a file's first bytes identify its content.
const HEAD: usize = 4096;

/// A followed file, read sequentially from `start`, that stops (reads as its end) once it has been truncated
/// or its first bytes replaced, and says so.
pub struct Guarded {
    file: File,
    /// The offset of the next byte read.
    pos: u64,
    /// The file's first bytes as read (up to [`HEAD`]).
    head: Vec<u8>,
    truncated: Arc<AtomicBool>,
}

impl Guarded {
    /// `file` is positioned at `start`; what precedes it (up to [`HEAD`] bytes) is taken as the head now.
    pub fn new(file: File, start: u64) -> std::io::Result<(Self, Arc<AtomicBool>)> {
        let mut head = vec![0u8; start.min(HEAD as u64) as usize];
        let n = read_at_most(&file, &mut head, 0)?;
        head.truncate(n);
        let truncated = Arc::new(AtomicBool::new(false));
        Ok((Guarded { file, pos: start, head, truncated: truncated.clone() }, truncated))
    }

    /// Whether the file still starts with the bytes read from it and is at least as long as what was read.
    fn intact(&self) -> std::io::Result<bool> {
        if self.file.metadata()?.len() < self.pos {
            return Ok(false);
        }
        let mut now = vec![0u8; self.head.len()];
        let n = read_at_most(&self.file, &mut now, 0)?;
        Ok(n == self.head.len() && now == self.head)
    }
}

impl Read for Guarded {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.truncated.load(Ordering::Relaxed) {
            return Ok(0);
        }
        if !self.intact()? {
            self.truncated.store(true, Ordering::Relaxed);
            return Ok(0);
        }
        let n = self.file.read(out)?;
        // Bytes read from the start become the head the next reads are checked against.
        if (self.pos as usize) == self.head.len() && self.head.len() < HEAD {
            let take = n.min(HEAD - self.head.len());
            self.head.extend_from_slice(&out[..take]);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads up to `buf.len()` bytes at `offset`; returns how many there were.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        #[cfg(unix)]
        let read = std::os::unix::fs::FileExt::read_at(file, &mut buf[done..], offset + done as u64);
        #[cfg(windows)]
        let read = std::os::windows::fs::FileExt::seek_read(file, &mut buf[done..], offset + done as u64);
        match read {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Where the content of a truncated-and-refilled file starts: after the NUL bytes a writer without `O_APPEND`
/// leaves before it (0 when there are none).
pub fn content_start(path: &Path) -> std::io::Result<u64> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut offset = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(offset);
        }
        if let Some(i) = buf[..n].iter().position(|b| *b != 0) {
            return Ok(offset + i as u64);
        }
        offset += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    fn read_all(g: &mut Guarded) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = g.read(&mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn a_file_truncated_and_refilled_past_the_old_offset_reads_as_ended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"first 1\nfirst 2\n").unwrap();
        let (mut g, truncated) = Guarded::new(File::open(&path).unwrap(), 0).unwrap();
        assert_eq!(read_all(&mut g), b"first 1\nfirst 2\n");
        // copytruncate, then the writer refills it with more than was read: the size alone says nothing.
        let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        w.set_len(0).unwrap();
        w.write_all(b"second 1\nsecond 2\nsecond 3\n").unwrap();
        assert_eq!(read_all(&mut g), b"", "nothing of the new content is read from its middle");
        assert!(truncated.load(Ordering::Relaxed));
        assert_eq!(content_start(&path).unwrap(), 0);
    }

    #[test]
    fn growth_is_read_and_a_resumed_read_knows_the_head_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"one\ntwo\n").unwrap();
        let mut file = File::open(&path).unwrap();
        file.seek(std::io::SeekFrom::Start(4)).unwrap();
        let (mut g, truncated) = Guarded::new(file, 4).unwrap();
        assert_eq!(read_all(&mut g), b"two\n");
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"three\n").unwrap();
        assert_eq!(read_all(&mut g), b"three\n");
        std::fs::write(&path, b"ONE\ntwo\nthree\nfour\n").unwrap(); // rewritten in place, same length and more
        assert_eq!(read_all(&mut g), b"");
        assert!(truncated.load(Ordering::Relaxed), "the bytes before the resume point changed");
    }

    #[test]
    fn a_writer_without_append_leaves_a_hole_that_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut writer = std::fs::OpenOptions::new().create(true).write(true).truncate(true).open(&path).unwrap();
        writer.write_all(b"old line\n").unwrap();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
        writer.write_all(b"new line\n").unwrap(); // at its old offset, 9
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 18);
        assert_eq!(content_start(&path).unwrap(), 9);
    }
}
