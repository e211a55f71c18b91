//! Hadoop's Snappy block format, which Firehose writes for `CompressionFormat: HADOOP_SNAPPY` (the codec Hadoop,
//! Hive and Spark read by default for `.snappy` files): the data is cut into blocks small enough that their
//! compressed form fits Hadoop's 256 KiB buffer (`io.compression.codec.snappy.buffersize`, less Snappy's worst-case
//! growth, as Hadoop's `SnappyCodec` sizes them); each block is its uncompressed length (4 bytes, big-endian), then
//! its raw-Snappy chunks, each its compressed length (4 bytes, big-endian) and bytes. This writer makes one chunk
//! per block, as Hadoop's `BlockCompressorStream` does; the reader takes any number of chunks per block.
//!
//! The emulator writes it; `verify` reads it back. The compression itself is the `snap` crate's.

use std::io::{self, Read, Write};

/// Uncompressed bytes per block: Hadoop's 256 KiB buffer less `buffer / 6 + 32`, so that even incompressible data
/// compresses into a chunk Hadoop's reader can take.
pub const BLOCK_SIZE: usize = 256 * 1024 - (256 * 1024 / 6 + 32);
/// The largest chunk the reader accepts (a corrupt length is an error, not an allocation of gigabytes).
const MAX_CHUNK: usize = 64 * 1024 * 1024;

/// Encodes what is written to it into Hadoop Snappy blocks on `inner`; call [`Writer::finish`] at the end.
pub struct Writer<W: Write> {
    inner: W,
    block: Vec<u8>,
    encoder: snap::raw::Encoder,
}

impl<W: Write> Writer<W> {
    pub fn new(inner: W) -> Self {
        Writer { inner, block: Vec::with_capacity(BLOCK_SIZE), encoder: snap::raw::Encoder::new() }
    }

    fn flush_block(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let compressed = self.encoder.compress_vec(&self.block).map_err(io::Error::other)?;
        self.inner.write_all(&(self.block.len() as u32).to_be_bytes())?;
        self.inner.write_all(&(compressed.len() as u32).to_be_bytes())?;
        self.inner.write_all(&compressed)?;
        self.block.clear();
        Ok(())
    }

    /// Writes the last block and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_block()?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == BLOCK_SIZE {
            self.flush_block()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decodes Hadoop Snappy blocks read from `inner`.
pub struct Reader<R: Read> {
    inner: R,
    out: Vec<u8>,
    at: usize,
    decoder: snap::raw::Decoder,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader { inner, out: Vec::new(), at: 0, decoder: snap::raw::Decoder::new() }
    }

    /// The next 4-byte big-endian length, or `None` at a clean end of the stream.
    fn length(&mut self) -> io::Result<Option<usize>> {
        let mut bytes = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.inner.read(&mut bytes[got..])? {
                0 if got == 0 => return Ok(None),
                0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a Hadoop Snappy length is cut short")),
                n => got += n,
            }
        }
        Ok(Some(u32::from_be_bytes(bytes) as usize))
    }

    /// Reads and decodes the next block into `out`; `false` at the end.
    fn next_block(&mut self) -> io::Result<bool> {
        let Some(total) = self.length()? else { return Ok(false) };
        self.out.clear();
        self.at = 0;
        while self.out.len() < total {
            let len = self.length()?.ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "a Hadoop Snappy block ends before its length")
            })?;
            if len > MAX_CHUNK || total > MAX_CHUNK {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "a Hadoop Snappy length is not plausible"));
            }
            let mut chunk = vec![0u8; len];
            self.inner.read_exact(&mut chunk)?;
            // What a chunk says it decodes to is checked first: a small chunk can claim gigabytes.
            let claimed = snap::raw::decompress_len(&chunk).map_err(io::Error::other)?;
            if claimed > total - self.out.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "a Hadoop Snappy block is longer than it says"));
            }
            let decoded = self.decoder.decompress_vec(&chunk).map_err(io::Error::other)?;
            self.out.extend_from_slice(&decoded);
        }
        if self.out.len() != total {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "a Hadoop Snappy block is longer than it says"));
        }
        Ok(true)
    }
}

impl<R: Read> Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.out.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_and_are_framed_as_hadoop_frames_them() {
        let data: Vec<u8> = (0..700_000u32).flat_map(|i| format!("line {i}\n").into_bytes()).take(600_000).collect();
        let mut w = Writer::new(Vec::new());
        for piece in data.chunks(10_000) {
            w.write_all(piece).unwrap();
        }
        let encoded = w.finish().unwrap();
        assert_eq!(u32::from_be_bytes(encoded[..4].try_into().unwrap()) as usize, BLOCK_SIZE, "first block full");
        let first_chunk = u32::from_be_bytes(encoded[4..8].try_into().unwrap()) as usize;
        let one = snap::raw::Decoder::new().decompress_vec(&encoded[8..8 + first_chunk]).unwrap();
        assert_eq!(one, data[..BLOCK_SIZE], "a chunk is raw Snappy");
        let mut back = Vec::new();
        Reader::new(&encoded[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        assert!(Reader::new(&encoded[..encoded.len() - 1]).read_to_end(&mut Vec::new()).is_err(), "cut short");
        // Incompressible data: every chunk still fits Hadoop's 256 KiB buffer.
        let noise: Vec<u8> =
            (0..BLOCK_SIZE as u64 * 2).map(|i| (i.wrapping_mul(6364136223846793005) >> 56) as u8).collect();
        let mut w = Writer::new(Vec::new());
        w.write_all(&noise).unwrap();
        let encoded = w.finish().unwrap();
        let chunk = u32::from_be_bytes(encoded[4..8].try_into().unwrap()) as usize;
        assert!(chunk <= 256 * 1024, "{chunk}");
        let mut empty = Vec::new();
        Reader::new(&Writer::new(Vec::new()).finish().unwrap()[..]).read_to_end(&mut empty).unwrap();
        assert!(empty.is_empty());
    }
}
