//! Reading a delivered object back into line hashes, streaming: decompressed when it is gzip (by extension or
//! magic bytes; several gzip members are read too), split on `\n`, each line hashed as `send` hashed it.
//! Optionally the decompressed bytes are copied out (`verify --keep`).

use std::io::{BufRead, BufReader, Read, Write};

use crate::pipeline::manifest::line_hash;

/// The lines of one object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectLines {
    /// Low 64 bits of each line's hash, in order.
    pub hashes: Vec<u64>,
    /// Decompressed size.
    pub bytes: u64,
    pub gzip: bool,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads an object's body; `keep` receives the decompressed bytes.
pub fn read_lines(body: impl Read, mut keep: Option<&mut dyn Write>) -> std::io::Result<ObjectLines> {
    let mut peek = BufReader::with_capacity(256 * 1024, body);
    let gzip = peek.fill_buf()?.starts_with(&GZIP_MAGIC);
    let mut reader: Box<dyn Read> =
        if gzip { Box::new(flate2::read::MultiGzDecoder::new(peek)) } else { Box::new(peek) };
    let mut out = ObjectLines { gzip, ..Default::default() };
    let mut buf = vec![0u8; 256 * 1024];
    let mut carry: Vec<u8> = Vec::new();
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
                out.hashes.push(line_hash(&chunk[start..i]) as u64);
            } else {
                carry.extend_from_slice(&chunk[start..i]);
                out.hashes.push(line_hash(&carry) as u64);
                carry.clear();
            }
            start = i + 1;
        }
        carry.extend_from_slice(&chunk[start..]);
    }
    if !carry.is_empty() {
        // A final line without `\n` (not what `send` writes, but other producers may).
        out.hashes.push(line_hash(&carry) as u64);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_multi_member_gzip_objects_give_the_same_hashes() {
        let text = b"a\r\nb\n\nc\n";
        let plain = read_lines(&text[..], None).unwrap();
        assert_eq!(
            plain.hashes,
            vec![line_hash(b"a\r") as u64, line_hash(b"b") as u64, line_hash(b"") as u64, line_hash(b"c") as u64]
        );
        assert!(!plain.gzip);
        let mut gz = Vec::new();
        for part in [&b"a\r\nb\n"[..], b"\nc\n"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            gz.extend(e.finish().unwrap());
        }
        let mut kept = Vec::new();
        let zipped = read_lines(&gz[..], Some(&mut kept)).unwrap();
        assert_eq!(zipped.hashes, plain.hashes);
        assert!(zipped.gzip);
        assert_eq!(kept, text);
        assert_eq!(zipped.bytes, text.len() as u64);
    }

    #[test]
    fn lines_split_across_reads_and_a_missing_final_newline() {
        let mut data = vec![b'x'; 300 * 1024];
        data.extend_from_slice(b"\ntail");
        let got = read_lines(&data[..], None).unwrap();
        assert_eq!(got.hashes, vec![line_hash(&vec![b'x'; 300 * 1024]) as u64, line_hash(b"tail") as u64]);
    }
}
