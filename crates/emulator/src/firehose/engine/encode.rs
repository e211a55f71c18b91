//! A range's records as an object's bytes, in the destination's `CompressionFormat`: GZIP (one gzip member), ZIP
//! (an archive of one deflated entry named as the object without `.zip`, written as a stream: sizes in data
//! descriptors), Snappy (the Snappy framing format) or HADOOP_SNAPPY (Hadoop's block format). The records stream
//! from memory or from the journal; nothing is held whole.

use std::io::Write;

use super::buffer::Sealed;
use super::lane::Lane;
use firehose_kit_domain::types::Compression;

/// The bytes of a sealed range's records, in order; with `delimit`, a newline after each (read record by record
/// from the journal: the cache does not keep where records end).
fn write_records(lane: &Lane, sealed: &Sealed, delimit: bool, sink: &mut dyn Write) -> std::io::Result<()> {
    match &sealed.cached {
        _ if delimit => lane.reader.for_each(sealed.start, sealed.end, |_, data| {
            sink.write_all(data)?;
            sink.write_all(b"\n")
        }),
        Some(data) => sink.write_all(data),
        None => lane.reader.copy_range(sealed.start, sealed.end, sink),
    }
}

/// Streams a range's records into `out` encoded as `compression`; `key` names a ZIP archive's entry.
pub fn write_encoded(
    lane: &Lane,
    sealed: &Sealed,
    (compression, delimit): (&Compression, bool),
    key: &str,
    out: &mut impl Write,
) -> std::io::Result<()> {
    match compression {
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            write_records(lane, sealed, delimit, &mut gz)?;
            gz.finish().map(|_| ())
        }
        Compression::Snappy => {
            let mut frames = snap::write::FrameEncoder::new(out);
            write_records(lane, sealed, delimit, &mut frames)?;
            frames.into_inner().map(|_| ()).map_err(|e| std::io::Error::other(e.to_string()))
        }
        Compression::HadoopSnappy => {
            let mut blocks = firehose_kit_domain::hadoop_snappy::Writer::new(out);
            write_records(lane, sealed, delimit, &mut blocks)?;
            blocks.finish().map(|_| ())
        }
        Compression::Zip => {
            let name = key.rsplit('/').next().unwrap_or(key);
            let entry = name.strip_suffix(".zip").unwrap_or(name);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .large_file(true);
            let mut archive = zip::ZipWriter::new_stream(out);
            archive.start_file(entry, options).map_err(std::io::Error::other)?;
            write_records(lane, sealed, delimit, &mut archive)?;
            archive.finish().map(|_| ()).map_err(std::io::Error::other)
        }
        _ => write_records(lane, sealed, delimit, out),
    }
}
