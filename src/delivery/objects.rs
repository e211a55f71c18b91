//! Reading a delivered object back into line hashes, streaming: decompressed when it is gzip (by extension or
//! magic bytes; several gzip members are read too), split on `\n`, each line hashed as `send` hashed it.
//! Hashes are handed over in bounded batches, so memory does not grow with the object. Optionally the
//! decompressed bytes are copied out (`verify --keep`).

use std::io::{BufRead, BufReader, Read, Write};

use crate::pipeline::manifest::line_hash;

/// What one object held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectLines {
    pub lines: u64,
    /// Decompressed size.
    pub bytes: u64,
    pub gzip: bool,
}

/// Line hashes handed to the caller at a time.
const HASH_BATCH: usize = 64 * 1024;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads an object's body, giving `on_hashes` the low 64 bits of each line's hash, in order and in batches;
/// `keep` receives the decompressed bytes.
pub fn read_lines(
    body: impl Read,
    mut keep: Option<&mut dyn Write>,
    on_hashes: &mut dyn FnMut(&[u64]),
) -> std::io::Result<ObjectLines> {
    let mut peek = BufReader::with_capacity(256 * 1024, body);
    let gzip = peek.fill_buf()?.starts_with(&GZIP_MAGIC);
    let mut reader: Box<dyn Read> =
        if gzip { Box::new(flate2::read::MultiGzDecoder::new(peek)) } else { Box::new(peek) };
    let mut out = ObjectLines { gzip, ..Default::default() };
    let mut buf = vec![0u8; 256 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    let mut hashes: Vec<u64> = Vec::with_capacity(HASH_BATCH);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        out.bytes += n as u64;
        if let Some(k) = keep.as_mut() {
            k.write_all(chunk)?;
        }
        let mut start = 0;
        for i in memchr::memchr_iter(b'\n', chunk) {
            if carry.is_empty() {
                hashes.push(line_hash(&chunk[start..i]) as u64);
            } else {
                carry.extend_from_slice(&chunk[start..i]);
                hashes.push(line_hash(&carry) as u64);
                carry.clear();
            }
            start = i + 1;
        }
        carry.extend_from_slice(&chunk[start..]);
        if hashes.len() >= HASH_BATCH {
            out.lines += hashes.len() as u64;
            on_hashes(&hashes);
            hashes.clear();
        }
    }
    if !carry.is_empty() {
        // A final line without `\n` (not what `send` writes, but other producers may).
        hashes.push(line_hash(&carry) as u64);
    }
    out.lines += hashes.len() as u64;
    on_hashes(&hashes);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes_of(body: &[u8], keep: Option<&mut dyn Write>) -> (ObjectLines, Vec<u64>) {
        let mut all = Vec::new();
        let info = read_lines(body, keep, &mut |h| all.extend_from_slice(h)).unwrap();
        (info, all)
    }

    #[test]
    fn plain_and_multi_member_gzip_objects_give_the_same_hashes() {
        let text = b"a\r\nb\n\nc\n";
        let (plain, plain_hashes) = hashes_of(&text[..], None);
        let expected = [line_hash(b"a\r"), line_hash(b"b"), line_hash(b""), line_hash(b"c")];
        assert_eq!(plain_hashes, expected.map(|h| h as u64));
        assert_eq!(plain.lines, 4);
        assert!(!plain.gzip);
        let mut gz = Vec::new();
        for part in [&b"a\r\nb\n"[..], b"\nc\n"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            gz.extend(e.finish().unwrap());
        }
        let mut kept = Vec::new();
        let (zipped, zipped_hashes) = hashes_of(&gz[..], Some(&mut kept));
        assert_eq!(zipped_hashes, plain_hashes);
        assert!(zipped.gzip);
        assert_eq!(kept, text);
        assert_eq!(zipped.bytes, text.len() as u64);
    }

    #[test]
    fn lines_split_across_reads_and_a_missing_final_newline() {
        let mut data = vec![b'x'; 300 * 1024];
        data.extend_from_slice(b"\ntail");
        let (info, got) = hashes_of(&data, None);
        assert_eq!(got, vec![line_hash(&vec![b'x'; 300 * 1024]) as u64, line_hash(b"tail") as u64]);
        assert_eq!(info.lines, 2);
    }

    #[test]
    fn hashes_come_in_bounded_batches() {
        let data = "l\n".repeat(HASH_BATCH * 2 + 5);
        let mut batches = Vec::new();
        let info = read_lines(data.as_bytes(), None, &mut |h| batches.push(h.len())).unwrap();
        assert_eq!(info.lines, (HASH_BATCH * 2 + 5) as u64);
        assert!(batches.iter().all(|n| *n <= HASH_BATCH + 1024 * 128), "{batches:?}");
        assert_eq!(batches.iter().sum::<usize>(), HASH_BATCH * 2 + 5);
    }
}
