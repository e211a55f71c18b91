//! Where an input stands between runs: which of its byte ranges are acknowledged (the contiguous prefix a
//! checkpoint records, and the ranges acknowledged ahead of it), and which file it is (so a file replaced under
//! the same name is not resumed). Leaf types shared by the reader, which skips what is acknowledged, and the
//! checkpoint, which stores it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A range of an input acknowledged beyond the contiguous prefix (batches complete out of order): a resumed
/// send skips it, so a run that gave up or was stopped is resumed without sending anything twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckedRange {
    pub start: u64,
    pub end: u64,
    pub lines: u64,
}

/// Tracks acknowledged byte ranges of one input and the contiguous prefix they form.
#[derive(Debug, Clone)]
pub struct AckTracker {
    /// Everything before this offset is acknowledged.
    contiguous: u64,
    /// Lines before `contiguous`.
    lines: u64,
    /// Acknowledged ranges after `contiguous`: start → (end, lines).
    ahead: BTreeMap<u64, (u64, u64)>,
}

impl AckTracker {
    pub fn new(start: u64, lines: u64) -> Self {
        AckTracker { contiguous: start, lines, ahead: BTreeMap::new() }
    }

    /// A tracker resuming at `start` with `ranges` already acknowledged after it.
    pub fn resume(start: u64, lines: u64, ranges: &[AckedRange]) -> Self {
        let mut t = AckTracker::new(start, lines);
        for r in ranges {
            t.complete(r.start, r.end, r.lines);
        }
        t
    }

    /// The acknowledged ranges after the contiguous prefix, in order.
    pub fn ahead(&self) -> Vec<AckedRange> {
        self.ahead.iter().map(|(&start, &(end, lines))| AckedRange { start, end, lines }).collect()
    }

    /// Marks `[start, end)`, holding `lines` lines, acknowledged. Ranges never overlap (each byte is sent once
    /// per run), so a range either extends the prefix or waits in `ahead`.
    pub fn complete(&mut self, start: u64, end: u64, lines: u64) {
        if end <= self.contiguous {
            return;
        }
        if start == self.contiguous {
            self.contiguous = end;
            self.lines += lines;
        } else {
            self.ahead.insert(start, (end, lines));
        }
        // Absorb ranges that now touch the contiguous prefix.
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() != self.contiguous {
                break;
            }
            let (end, lines) = entry.remove();
            self.contiguous = end;
            self.lines += lines;
        }
    }

    pub fn contiguous(&self) -> u64 {
        self.contiguous
    }

    /// Lines before [`AckTracker::contiguous`].
    pub fn lines(&self) -> u64 {
        self.lines
    }
}

/// Identifies a file across runs: device + inode, and a hash of its first bytes (catches a file replaced in
/// place or truncated and rewritten).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
    pub head_len: u64,
    pub head_hash: String,
}

const HEAD_BYTES: u64 = 4096;

pub fn identity(path: &Path) -> std::io::Result<FileIdentity> {
    let meta = std::fs::metadata(path)?;
    let (dev, ino) = dev_ino(&meta);
    let head_len = meta.len().min(HEAD_BYTES);
    let head_hash = head_hash(path, head_len)?;
    Ok(FileIdentity { dev, ino, head_len, head_hash })
}

#[cfg(unix)]
fn dev_ino(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn dev_ino(_meta: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

fn head_hash(path: &Path, len: u64) -> std::io::Result<String> {
    let mut buf = vec![0u8; len as usize];
    std::fs::File::open(path)?.read_exact(&mut buf)?;
    Ok(format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&buf)))
}

impl FileIdentity {
    /// Whether `path` is still the file this identity was taken from (it may have grown).
    pub fn still_matches(&self, path: &Path) -> std::io::Result<bool> {
        let meta = std::fs::metadata(path)?;
        if dev_ino(&meta) != (self.dev, self.ino) || meta.len() < self.head_len {
            return Ok(false);
        }
        Ok(head_hash(path, self.head_len)? == self.head_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_offset_advances_only_over_gapless_acks() {
        let mut t = AckTracker::new(100, 10);
        t.complete(200, 300, 5);
        assert_eq!(t.contiguous(), 100, "a gap before 200");
        t.complete(300, 350, 2);
        assert_eq!((t.contiguous(), t.lines()), (100, 10));
        t.complete(100, 200, 4);
        assert_eq!((t.contiguous(), t.lines()), (350, 21), "the gap filled: everything up to 350");
        t.complete(0, 50, 1);
        assert_eq!(t.contiguous(), 350, "old ranges change nothing");
        t.complete(400, 500, 1);
        assert_eq!(t.ahead(), vec![AckedRange { start: 400, end: 500, lines: 1 }]);
        let resumed = AckTracker::resume(t.contiguous(), t.lines(), &t.ahead());
        assert_eq!((resumed.contiguous(), resumed.ahead().len()), (350, 1), "a resume knows what is acked ahead");
        t.complete(350, 400, 1);
        assert_eq!((t.contiguous(), t.lines()), (500, 23));
        assert!(t.ahead().is_empty());
    }

    #[test]
    fn identity_survives_growth_but_not_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"line 1\n").unwrap();
        let id = identity(&path).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"line 2\n"))
            .unwrap();
        assert!(id.still_matches(&path).unwrap(), "appending keeps the identity");
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"other 1\nother 2\n").unwrap();
        assert!(!id.still_matches(&path).unwrap(), "a new file under the same name is not resumed");
    }
}
