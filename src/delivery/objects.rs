//! Reading a delivered object back into line hashes, streaming: decoded as Firehose encoded it (gzip, several
//! members too; ZIP; the Snappy framing format; Hadoop's Snappy blocks; Parquet, whose rows become the JSON lines
//! they were made from, see [`super::parquet_rows`]), split on `\n`, each line hashed as `send` hashed it. The encoding is told by the object's first bytes, except Hadoop Snappy, which has no magic:
//! that one is taken from the stream's `CompressionFormat`.
//! Hashes are handed over in bounded batches and a line is hashed as it streams (see [`super::lines`]), so memory
//! grows neither with the object nor with its longest line; a line longer than Firehose can deliver stops the
//! reading of its object, which is reported. Optionally the decompressed bytes are copied out as they are read
//! (`verify --keep`).

use std::io::{BufRead, BufReader, Read, Write};

use super::lines::{LONGEST_LINE, Line, Splitter};
use crate::firehose::types::Compression;

/// What one object held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectLines {
    pub lines: u64,
    /// Decompressed size.
    pub bytes: u64,
    /// How the object was encoded: `plain`, `gzip`, `zip`, `snappy`, `hadoop-snappy` or `parquet`.
    pub encoding: &'static str,
    /// A Parquet object's columns and their types (its rows are the lines).
    pub schema: Option<Vec<(String, String)>>,
    /// The object holds a line longer than Firehose can deliver, or decodes to more than a Firehose object does
    /// (both [`LONGEST_LINE`]): the decoded bytes read when the reading stopped there.
    pub overlong_at: Option<u64>,
}

/// A line spanning reads is held whole up to this length, then hashed as it streams.
const HOLD_FOR_HASHING: usize = 1024 * 1024;

/// Line hashes handed to the caller at a time.
const HASH_BATCH: usize = 64 * 1024;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZIP_MAGIC: [u8; 4] = *b"PK\x03\x04";
/// The stream identifier chunk that begins the Snappy framing format.
const SNAPPY_FRAME_MAGIC: [u8; 10] = *b"\xff\x06\x00\x00sNaPpY";
const PARQUET_MAGIC: [u8; 4] = *b"PAR1";

/// A reader of the object's decoded bytes, the encoding's name, and a Parquet object's schema.
type Decoded<'a> = (Box<dyn Read + 'a>, &'static str, Option<Vec<(String, String)>>);

fn decoder<'a>(mut peek: BufReader<impl Read + 'a>, compression: &Compression) -> std::io::Result<Decoded<'a>> {
    let head = peek.fill_buf()?;
    if head.starts_with(&PARQUET_MAGIC) {
        let rows = super::parquet_rows::read(peek)?;
        return Ok((Box::new(rows.json_lines), "parquet", Some(rows.schema)));
    }
    let (reader, encoding): (Box<dyn Read + 'a>, &'static str) = if head.starts_with(&GZIP_MAGIC) {
        (Box::new(flate2::read::MultiGzDecoder::new(peek)), "gzip")
    } else if head.starts_with(&SNAPPY_FRAME_MAGIC) {
        (Box::new(snap::read::FrameDecoder::new(peek)), "snappy")
    } else if head.starts_with(&ZIP_MAGIC) {
        (Box::new(unzipped(peek)?), "zip")
    } else if *compression == Compression::HadoopSnappy && !head.is_empty() {
        (Box::new(firehose_kit_domain::hadoop_snappy::Reader::new(peek)), "hadoop-snappy")
    } else {
        (Box::new(peek), "plain")
    };
    Ok((reader, encoding, None))
}

/// The entries of a ZIP archive, one after the other. An archive is read from its end (the central directory),
/// so the body is spooled to a temporary file first (disk grows with the object as stored); the entries are
/// inflated by a thread into a pipe as they are read, so nothing grows with what they unpack to.
fn unzipped(body: impl Read) -> std::io::Result<Unzipped> {
    let mut spool = tempfile::tempfile()?;
    std::io::copy(&mut { body }, &mut spool)?;
    let mut archive = zip::ZipArchive::new(spool).map_err(std::io::Error::other)?;
    let (pipe, mut into) = std::io::pipe()?;
    let worker = std::thread::spawn(move || -> std::io::Result<()> {
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).map_err(std::io::Error::other)?;
            std::io::copy(&mut entry, &mut into)?;
        }
        Ok(())
    });
    Ok(Unzipped { pipe, worker: Some(worker) })
}

/// The inflated entries, and at their end whether the thread inflating them failed (a corrupt entry).
struct Unzipped {
    pipe: std::io::PipeReader,
    worker: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Read for Unzipped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.pipe.read(buf)?;
        if n == 0
            && !buf.is_empty()
            && let Some(worker) = self.worker.take()
        {
            worker.join().map_err(|_| std::io::Error::other("the ZIP reader panicked"))??;
        }
        Ok(n)
    }
}

/// Reads an object's body (written for a stream with `compression`), giving `on_hashes` the low 64 bits of
/// each line's hash, in order and in batches; `keep` receives the decoded bytes.
pub fn read_lines(
    body: impl Read,
    compression: &Compression,
    keep: Option<&mut dyn Write>,
    on_hashes: &mut dyn FnMut(&[u64]),
) -> std::io::Result<ObjectLines> {
    read_lines_within(body, compression, LONGEST_LINE, keep, on_hashes)
}

/// [`read_lines`] over a local file the user names (a sent file, gzipped or not): read to its end, however long.
pub fn read_file_lines(
    body: impl Read,
    keep: Option<&mut dyn Write>,
    on_hashes: &mut dyn FnMut(&[u64]),
) -> std::io::Result<ObjectLines> {
    read_lines_within(body, &Compression::Uncompressed, u64::MAX, keep, on_hashes)
}

fn read_lines_within(
    body: impl Read,
    compression: &Compression,
    longest: u64,
    keep: Option<&mut dyn Write>,
    on_hashes: &mut dyn FnMut(&[u64]),
) -> std::io::Result<ObjectLines> {
    let mut hashes: Vec<u64> = Vec::with_capacity(HASH_BATCH);
    let out = scan_within(body, compression, HOLD_FOR_HASHING, longest, keep, &mut |line| {
        hashes.push(line.hash() as u64);
        if hashes.len() >= HASH_BATCH {
            on_hashes(&hashes);
            hashes.clear();
        }
    })?;
    on_hashes(&hashes);
    Ok(out)
}

/// Reads an object's body, giving `on_line` each line, whole when it is at most `hold` long; `keep` receives
/// the decoded bytes.
pub fn scan(
    body: impl Read,
    compression: &Compression,
    hold: usize,
    keep: Option<&mut dyn Write>,
    on_line: &mut dyn FnMut(Line),
) -> std::io::Result<ObjectLines> {
    scan_within(body, compression, hold, LONGEST_LINE, keep, on_line)
}

/// [`scan`], stopping at a line longer than `longest`, or when the decoded object is (no Firehose object
/// decodes to more than one longest line).
fn scan_within(
    body: impl Read,
    compression: &Compression,
    hold: usize,
    longest: u64,
    mut keep: Option<&mut dyn Write>,
    on_line: &mut dyn FnMut(Line),
) -> std::io::Result<ObjectLines> {
    let peek = BufReader::with_capacity(256 * 1024, body);
    let (mut reader, encoding, schema) = decoder(peek, compression)?;
    let mut out = ObjectLines { encoding, schema, ..Default::default() };
    let mut buf = vec![0u8; 256 * 1024];
    let mut lines = Splitter::new(hold);
    let too_long = std::cell::Cell::new(false);
    let mut count = |line: Line| {
        // A line that ended within the read that took it past the limit is as long as one that did not.
        if matches!(line, Line::Long { len, .. } if len > longest) {
            too_long.set(true);
            return;
        }
        out.lines += 1;
        on_line(line)
    };
    let mut bytes = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        bytes += n as u64;
        if let Some(k) = keep.as_mut() {
            k.write_all(chunk)?;
        }
        lines.feed(chunk, &mut count);
        if too_long.get() || lines.pending() > longest || bytes > longest {
            out.overlong_at = Some(bytes);
            out.bytes = bytes;
            return Ok(out);
        }
    }
    // A final line without `\n` (not what `send` writes, but other producers may).
    lines.finish(&mut count);
    out.bytes = bytes;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::manifest::line_hash;

    fn hashes_of(body: &[u8], keep: Option<&mut dyn Write>) -> (ObjectLines, Vec<u64>) {
        let mut all = Vec::new();
        let info = read_lines(body, &Compression::Uncompressed, keep, &mut |h| all.extend_from_slice(h)).unwrap();
        (info, all)
    }

    #[test]
    fn plain_and_multi_member_gzip_objects_give_the_same_hashes() {
        let text = b"a\r\nb\n\nc\n";
        let (plain, plain_hashes) = hashes_of(&text[..], None);
        let expected = [line_hash(b"a\r"), line_hash(b"b"), line_hash(b""), line_hash(b"c")];
        assert_eq!(plain_hashes, expected.map(|h| h as u64));
        assert_eq!(plain.lines, 4);
        assert_eq!(plain.encoding, "plain");
        let mut gz = Vec::new();
        for part in [&b"a\r\nb\n"[..], b"\nc\n"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            gz.extend(e.finish().unwrap());
        }
        let mut kept = Vec::new();
        let (zipped, zipped_hashes) = hashes_of(&gz[..], Some(&mut kept));
        assert_eq!(zipped_hashes, plain_hashes);
        assert_eq!(zipped.encoding, "gzip");
        assert_eq!(kept, text);
        assert_eq!(zipped.bytes, text.len() as u64);
    }

    /// What the emulator writes for ZIP, Snappy and HADOOP_SNAPPY reads back to the same lines.
    #[test]
    fn zip_snappy_and_hadoop_snappy_objects_read_back() {
        let text: Vec<u8> = (0..50_000).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        let (_, want) = hashes_of(&text, None);
        let mut zipped = zip::ZipWriter::new_stream(Vec::new());
        zip::ZipWriter::start_file(&mut zipped, "obj", zip::write::SimpleFileOptions::default()).unwrap();
        zipped.write_all(&text).unwrap();
        let zipped = zipped.finish().unwrap().into_inner();
        let mut framed = snap::write::FrameEncoder::new(Vec::new());
        framed.write_all(&text).unwrap();
        let framed = framed.into_inner().unwrap();
        let mut blocks = firehose_kit_domain::hadoop_snappy::Writer::new(Vec::new());
        blocks.write_all(&text).unwrap();
        let blocks = blocks.finish().unwrap();
        for (body, compression, encoding) in [
            (zipped, Compression::Zip, "zip"),
            (framed, Compression::Snappy, "snappy"),
            (blocks, Compression::HadoopSnappy, "hadoop-snappy"),
        ] {
            let mut got = Vec::new();
            let info = read_lines(&body[..], &compression, None, &mut |h| got.extend_from_slice(h)).unwrap();
            assert_eq!((info.encoding, info.bytes, &got), (encoding, text.len() as u64, &want), "{encoding}");
        }
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
        let info =
            read_lines(data.as_bytes(), &Compression::Uncompressed, None, &mut |h| batches.push(h.len())).unwrap();
        assert_eq!(info.lines, (HASH_BATCH * 2 + 5) as u64);
        assert!(batches.iter().all(|n| *n <= HASH_BATCH + 1024 * 128), "{batches:?}");
        assert_eq!(batches.iter().sum::<usize>(), HASH_BATCH * 2 + 5);
    }

    /// An object of one line longer than Firehose can deliver (here: than 1 MiB), in each encoding: the lines
    /// before it are counted, the reading stops soon after the limit, and nothing holds the line.
    #[test]
    fn a_line_longer_than_firehose_delivers_stops_the_reading_in_every_encoding() {
        let mut text = b"before\n".to_vec();
        text.resize(text.len() + 8 * 1024 * 1024, b'0');
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&text).unwrap();
        let mut zipped = zip::ZipWriter::new_stream(Vec::new());
        zip::ZipWriter::start_file(&mut zipped, "obj", zip::write::SimpleFileOptions::default()).unwrap();
        zipped.write_all(&text).unwrap();
        let mut framed = snap::write::FrameEncoder::new(Vec::new());
        framed.write_all(&text).unwrap();
        for (body, encoding) in [
            (text.clone(), "plain"),
            (gz.finish().unwrap(), "gzip"),
            (zipped.finish().unwrap().into_inner(), "zip"),
            (framed.into_inner().unwrap(), "snappy"),
        ] {
            let mut seen = Vec::new();
            let got = scan_within(&body[..], &Compression::Uncompressed, 64 * 1024, 1024 * 1024, None, &mut |l| {
                seen.push(l.hash())
            })
            .unwrap();
            assert_eq!((got.encoding, got.lines, &seen[..]), (encoding, 1, &[line_hash(b"before")][..]));
            let at = got.overlong_at.expect(encoding);
            assert!(at > 1024 * 1024 && at < 2 * 1024 * 1024, "{encoding}: stopped at {at}");
        }
    }

    /// The limit is for delivered objects only: a sent file the user names is read to its end.
    #[test]
    fn a_sent_file_is_read_past_what_one_object_holds() {
        let text = "a line\n".repeat(1000);
        let count = |longest| {
            let mut n = 0;
            let info =
                read_lines_within(text.as_bytes(), &Compression::Uncompressed, longest, None, &mut |h| n += h.len())
                    .unwrap();
            (n, info.overlong_at.is_some())
        };
        assert_eq!(count(1024), (1000, true), "the lines of the read that passed the limit count; then it stops");
        assert_eq!(count(u64::MAX), (1000, false));
        let mut n = 0;
        read_file_lines(text.as_bytes(), None, &mut |h| n += h.len()).unwrap();
        assert_eq!(n, 1000);
    }
}
