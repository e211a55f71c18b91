//! Where Kinesis state lives on disk: `<dir>/meta.json` (streams, tags, retention; rewritten by control-plane
//! calls) and one append-only file per shard, `<dir>/records/<incarnation>/<shard>.log`, of frames
//! `[u32 len][u64 number][i64 arrival ms][u16 key len][partition key][data][u32 check]`. A record is
//! acknowledged only after its frame is written (and synced, with `--fsync`), so a killed emulator keeps every
//! acknowledged record; a torn last frame (never acknowledged) is cut off when the file is read back. Records past
//! the retention leave the index at once and the file when more of it is stale than kept.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::model::{Entry, Shard, State, StreamMeta, frame_len};
use firehose_kit_domain::kinesis::shard_ranges;
use firehose_kit_domain::util::persist::{self, Durability};

/// Bytes of a frame around its partition key and data.
const FRAME_OVERHEAD: usize = 4 + 8 + 8 + 2 + 4;

pub struct Store {
    dir: PathBuf,
    durability: Durability,
}

/// One record read back from a shard's file.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub n: u64,
    pub arrival_ms: i64,
    pub partition_key: String,
    pub data: Vec<u8>,
}

fn check(payload: &[u8]) -> u32 {
    xxhash_rust::xxh3::xxh3_64(payload) as u32
}

/// Appends one record's frame to `out`; returns the frame's payload length.
pub fn encode_frame(out: &mut Vec<u8>, n: u64, arrival_ms: i64, partition_key: &str, data: &[u8]) -> u32 {
    let payload = FRAME_OVERHEAD - 4 + partition_key.len() + data.len();
    out.reserve(payload + 4);
    out.extend_from_slice(&(payload as u32).to_le_bytes());
    let start = out.len();
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&arrival_ms.to_le_bytes());
    out.extend_from_slice(&(partition_key.len() as u16).to_le_bytes());
    out.extend_from_slice(partition_key.as_bytes());
    out.extend_from_slice(data);
    let sum = check(&out[start..]);
    out.extend_from_slice(&sum.to_le_bytes());
    payload as u32
}

/// Decodes the frames in `bytes` (starting at file offset `base`) until one is torn or corrupt.
fn decode_frames(bytes: &[u8], base: u64) -> Vec<(Stored, Entry)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while bytes.len() >= at + 4 {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let Some(payload) = bytes.get(at + 4..at + 4 + len).filter(|p| p.len() >= FRAME_OVERHEAD - 4) else {
            break;
        };
        let (body, sum) = payload.split_at(len - 4);
        if check(body) != u32::from_le_bytes(sum.try_into().expect("4 bytes")) {
            break;
        }
        let n = u64::from_le_bytes(body[0..8].try_into().expect("8 bytes"));
        let arrival_ms = i64::from_le_bytes(body[8..16].try_into().expect("8 bytes"));
        let key_len = u16::from_le_bytes(body[16..18].try_into().expect("2 bytes")) as usize;
        let Some(key) = body.get(18..18 + key_len).and_then(|k| std::str::from_utf8(k).ok()) else {
            break;
        };
        let stored = Stored { n, arrival_ms, partition_key: key.to_string(), data: body[18 + key_len..].to_vec() };
        out.push((stored, Entry { arrival_ms, offset: base + at as u64, len: len as u32 }));
        at += 4 + len;
    }
    out
}

impl Store {
    /// Opens the store in `dir` and reads every stream's shard index back.
    pub fn open(dir: &Path, durability: Durability) -> std::io::Result<(Store, State)> {
        std::fs::create_dir_all(dir.join("records"))?;
        let store = Store { dir: dir.to_path_buf(), durability };
        let mut state: State = persist::read_json(&store.dir.join("meta.json"))?.unwrap_or_default();
        for meta in state.streams.values_mut() {
            let ranges = shard_ranges(meta.first_kept.len().max(1));
            for (i, (start, end)) in ranges.into_iter().enumerate() {
                let shard = store.load_shard(meta, i, start, end)?;
                meta.shards.push(shard);
            }
        }
        Ok((store, state))
    }

    fn load_shard(&self, meta: &StreamMeta, i: usize, start: u128, end: u128) -> std::io::Result<Shard> {
        let path = self.shard_path(meta, i);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let frames = decode_frames(&bytes, 0);
        let good: u64 = frames.iter().map(|(_, e)| frame_len(e.len)).sum();
        if good < bytes.len() as u64 {
            tracing::warn!(stream = %meta.name, shard = i, "cutting a torn record off the end of {}", path.display());
            std::fs::OpenOptions::new().write(true).open(&path)?.set_len(good)?;
        }
        let first = frames.first().map(|(s, _)| s.n).unwrap_or(0).max(meta.first_kept.get(i).copied().unwrap_or(0));
        let mut shard = Shard::new(start, end, first);
        shard.index = frames.into_iter().filter(|(s, _)| s.n >= first).map(|(_, e)| e).collect();
        shard.stale_bytes = shard.index.front().map(|e| e.offset).unwrap_or(good);
        shard.file_len = good;
        Ok(shard)
    }

    fn stream_dir(&self, meta: &StreamMeta) -> PathBuf {
        self.dir.join("records").join(&meta.incarnation)
    }

    fn shard_path(&self, meta: &StreamMeta, shard: usize) -> PathBuf {
        self.stream_dir(meta).join(format!("{shard}.log"))
    }

    pub fn save_meta(&self, state: &State) -> std::io::Result<()> {
        persist::write_json_as(&self.dir.join("meta.json"), state, self.durability)
    }

    /// Appends encoded frames to a shard's file, whose good part is `len` bytes (synced with `--fsync`). A write
    /// or sync that fails cuts the file back to `len`: the records were not acknowledged, and no partial frame may
    /// stay in front of the next ones.
    pub fn append(&self, meta: &StreamMeta, shard: usize, len: u64, frames: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(self.stream_dir(meta))?;
        let path = self.shard_path(meta, shard);
        let new = len == 0 && !path.exists();
        crate::faults::check(crate::faults::KINESIS_APPEND, &path)?;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            file.write_all(frames)?;
            crate::faults::check(crate::faults::KINESIS_APPEND, &path)?;
            if self.durability == Durability::Machine {
                file.sync_data()?;
                if new {
                    persist::sync_parent(&path)?;
                }
            }
            Ok::<(), std::io::Error>(())
        }));
        if !matches!(written, Ok(Ok(())))
            && let Err(cut) = file.set_len(len)
        {
            tracing::error!(stream = %meta.name, shard, "cannot cut a failed append off {}: {cut}", path.display());
        }
        match written {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Whether a shard's file is due for [`Store::compact`].
    pub fn needs_compaction(shard: &Shard) -> bool {
        let kept = shard.file_len - shard.stale_bytes;
        shard.stale_bytes >= kept.max(1 << 20)
    }

    /// Reads the records at `entries` (consecutive in the file) back.
    pub fn read(&self, meta: &StreamMeta, shard: usize, entries: &[Entry]) -> std::io::Result<Vec<Stored>> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(Vec::new());
        };
        let end = last.offset + frame_len(last.len);
        crate::faults::check(crate::faults::KINESIS_READ, &self.shard_path(meta, shard))?;
        let mut file = std::fs::File::open(self.shard_path(meta, shard))?;
        file.seek(SeekFrom::Start(first.offset))?;
        let mut bytes = vec![0; (end - first.offset) as usize];
        file.read_exact(&mut bytes)?;
        let frames = decode_frames(&bytes, first.offset);
        if frames.len() != entries.len() {
            return Err(std::io::Error::other(format!(
                "shard {shard} of {}: {} records expected at offset {}, {} read",
                meta.name,
                entries.len(),
                first.offset,
                frames.len()
            )));
        }
        Ok(frames.into_iter().map(|(s, _)| s).collect())
    }

    /// Rewrites a shard's file without its trimmed records once more of it is stale than kept.
    /// The stream's `first_kept` must already be saved with `shard.first` (a file rewritten without its trimmed
    /// records no longer says where the shard's numbering is).
    pub fn compact(&self, meta: &StreamMeta, i: usize, shard: &mut Shard) -> std::io::Result<bool> {
        if !Self::needs_compaction(shard) {
            return Ok(false);
        }
        let kept = shard.file_len - shard.stale_bytes;
        let path = self.shard_path(meta, i);
        let entries: Vec<Entry> = shard.index.iter().copied().collect();
        let records = self.read(meta, i, &entries)?;
        let mut bytes = Vec::with_capacity(kept as usize);
        let mut index = std::collections::VecDeque::with_capacity(records.len());
        for r in &records {
            let offset = bytes.len() as u64;
            let len = encode_frame(&mut bytes, r.n, r.arrival_ms, &r.partition_key, &r.data);
            index.push_back(Entry { arrival_ms: r.arrival_ms, offset, len });
        }
        persist::write_atomic_as(&path, &bytes, self.durability)?;
        shard.index = index;
        shard.stale_bytes = 0;
        shard.file_len = bytes.len() as u64;
        Ok(true)
    }

    /// Removes a deleted stream's records.
    pub fn remove(&self, meta: &StreamMeta) {
        if let Err(e) = std::fs::remove_dir_all(self.stream_dir(meta))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(stream = %meta.name, "cannot remove its records: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_torn_tail_is_cut() {
        let mut bytes = Vec::new();
        encode_frame(&mut bytes, 0, 10, "k", b"one");
        let second = bytes.len() as u64;
        encode_frame(&mut bytes, 1, 11, "key", b"two\n");
        let frames = decode_frames(&bytes, 0);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].0, Stored { n: 1, arrival_ms: 11, partition_key: "key".into(), data: b"two\n".to_vec() });
        assert_eq!(frames[1].1.offset, second);
        assert_eq!(decode_frames(&bytes[..bytes.len() - 1], 0).len(), 1, "a torn frame ends the file");
        let mut corrupt = bytes.clone();
        corrupt[second as usize + 20] ^= 1;
        assert_eq!(decode_frames(&corrupt, 0).len(), 1, "a corrupt frame ends the file");
    }
}
