//! The producing side of `send`, on its own thread: reads inputs (files, `.gz` files, stdin, the generator),
//! frames lines, converts them to JSON when asked, packs records and cuts batches, and hands them to the async
//! sender through a bounded channel (so memory stays bounded however large the input). Lines that can never be
//! sent go to the rejects file with their input, line number and reason. With `--follow` it keeps reading
//! growing files and survives rotation (rename + new file) and truncation.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;

use super::framing::{Framer, Next};
use super::manifest::line_hash;
use super::position::{AckedRange, FileIdentity, identity};
use super::records::{Batch, Batcher, MAX_RECORD_BYTES, Packer, Span};
use crate::error::{Error, Result};
use crate::logs::{Format, Generator, parse_line_in};

/// Where an input's lines come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    File { path: PathBuf, gzip: bool },
    Stdin,
    Generate { lines: u64, seed: Option<u64> },
}

#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    pub source: Source,
    /// Resume point: byte offset (of the decompressed stream for `.gz`) and lines before it.
    pub start_offset: u64,
    pub start_lines: u64,
    /// Ranges after the resume point that were acknowledged already: their lines are not sent again.
    pub acked: Vec<AckedRange>,
}

impl Input {
    /// An input read from its start.
    pub fn new(name: String, source: Source) -> Self {
        Input { name, source, start_offset: 0, start_lines: 0, acked: Vec::new() }
    }
}

#[derive(Debug, Clone)]
pub struct ReaderConfig {
    pub stream: String,
    pub record_size: usize,
    pub one_line_per_record: bool,
    /// At most this many lines in one record (a stream that deaggregates takes 500).
    pub max_lines_per_record: Option<u32>,
    pub json: bool,
    /// JSON times in UTC (`2000-10-10T20:55:36Z`, the form the OpenX JSON SerDe documents): a converting stream.
    pub utc_times: bool,
    pub rate: Option<f64>,
    pub follow: bool,
    pub linger: Duration,
}

/// What the reader tells the sender.
#[derive(Debug)]
pub enum Event {
    /// A file (or stream) opened for reading: the first open, or the new file after a rotation.
    Opened {
        input: usize,
        name: String,
        path: Option<PathBuf>,
        identity: Option<FileIdentity>,
        start_offset: u64,
        start_lines: u64,
        /// Ranges after the start already acknowledged (a resumed send).
        acked: Vec<AckedRange>,
    },
    Batch(Batch),
    /// Lines that will never be sent (rejected); their range counts as done for checkpoints.
    Skipped(Span),
    /// An input read to its end (`lines`/`bytes` framed in this run).
    Finished {
        input: usize,
        lines: u64,
        bytes: u64,
    },
    /// A failure that ends the run (an input that cannot be read, the rejects file that cannot be written).
    Failed(Error),
    /// The reader is done: every input read (or it was told to stop) and the last partial batch handed over.
    /// A channel that closes without it means the reader thread died.
    Done,
}

/// The rejects file (`<state-dir>/rejects/<run-id>.log`): one JSON object per rejected line or record.
pub struct Rejects {
    path: PathBuf,
    writer: Mutex<Option<BufWriter<File>>>,
    lines: AtomicU64,
}

impl Rejects {
    pub fn new(path: PathBuf) -> Self {
        Rejects { path, writer: Mutex::new(None), lines: AtomicU64::new(0) }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Lines rejected so far.
    pub fn count(&self) -> u64 {
        self.lines.load(Ordering::Relaxed)
    }

    /// Records a rejected line, or a group of lines (a record given up after retries).
    pub fn write(&self, r: &Reject<'_>) -> Result<()> {
        let mut guard = self.writer.lock().expect("rejects lock");
        if guard.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::state("create", dir, e))?;
            }
            let file =
                File::create(&self.path).map_err(|e| Error::state("create rejects file", self.path.clone(), e))?;
            *guard = Some(BufWriter::new(file));
        }
        let shown = &r.text[..r.text.len().min(4096)];
        let entry = json!({
            "input": r.input,
            "line": r.line,
            "offset": r.offset,
            "lines": r.lines,
            "bytes": r.bytes,
            "reason": r.reason,
            "text": String::from_utf8_lossy(shown),
            "truncated": shown.len() < r.text.len(),
        });
        let w = guard.as_mut().expect("writer created above");
        writeln!(w, "{entry}")
            .and_then(|_| w.flush())
            .map_err(|e| Error::state("write rejects file", self.path.clone(), e))?;
        self.lines.fetch_add(r.lines, Ordering::Relaxed);
        Ok(())
    }
}

/// One entry of the rejects file: what was not sent, where it was, and why.
pub struct Reject<'a> {
    pub input: &'a str,
    /// 1-based line number, when known.
    pub line: Option<u64>,
    /// Byte offset in the input.
    pub offset: Option<u64>,
    pub lines: u64,
    pub bytes: u64,
    pub reason: &'a str,
    /// The content (the first 4 KiB are written).
    pub text: &'a [u8],
}

/// Where a framed line sits in its input.
#[derive(Clone, Copy)]
struct At {
    number: u64,
    start: u64,
    end: u64,
    len: u64,
}

/// Lines produced by the generator, as a byte stream.
struct GeneratedReader {
    generator: Generator,
    remaining: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for GeneratedReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            while self.remaining > 0 && self.buf.len() < 256 * 1024 {
                self.generator.write_line(&mut self.buf);
                self.remaining -= 1;
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Generated lines end at about now, spread over the recent past (at most an hour).
pub fn generator_for(lines: u64, seed: Option<u64>) -> Generator {
    let gap_ms = (3_600_000.0 / lines.max(1) as f64).min(5.0);
    let start = chrono::Utc::now() - chrono::Duration::milliseconds((lines as f64 * gap_ms) as i64);
    Generator::new(seed, Format::Combined, start, gap_ms)
}

/// An opened input: its bytes from the resume point, its identity (files), and, for a followed plain file, the
/// flag its guard sets when the file is truncated or rewritten in place.
struct Opened {
    reader: Box<dyn Read + Send>,
    identity: Option<FileIdentity>,
    truncated: Option<Arc<AtomicBool>>,
}

fn open(input: &Input, follow: bool) -> std::io::Result<Opened> {
    let plain = |reader: Box<dyn Read + Send>| Opened { reader, identity: None, truncated: None };
    match &input.source {
        Source::Stdin => Ok(plain(Box::new(std::io::stdin()))),
        Source::Generate { lines, seed } => Ok(plain(Box::new(GeneratedReader {
            generator: generator_for(*lines, *seed),
            remaining: *lines,
            buf: Vec::new(),
            pos: 0,
        }))),
        Source::File { path, gzip } => {
            let identity = Some(identity(path)?);
            let mut file = File::open(path)?;
            if *gzip {
                let mut decoder =
                    flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(256 * 1024, file));
                std::io::copy(&mut (&mut decoder).take(input.start_offset), &mut std::io::sink())?;
                return Ok(Opened { reader: Box::new(decoder), identity, truncated: None });
            }
            file.seek(std::io::SeekFrom::Start(input.start_offset))?;
            if !follow {
                return Ok(Opened { reader: Box::new(file), identity, truncated: None });
            }
            let (guarded, truncated) = super::follow::Guarded::new(file, input.start_offset)?;
            Ok(Opened { reader: Box::new(guarded), identity, truncated: Some(truncated) })
        }
    }
}

/// Lines of an input already acknowledged (a resumed send): skipped, not sent twice.
struct Acked<'a> {
    ranges: &'a [AckedRange],
}

impl Acked<'_> {
    /// Whether the line `[start, end)` lies in an acknowledged range (ranges are sorted; lines come in order).
    fn covers(&mut self, start: u64, end: u64) -> bool {
        while let Some(r) = self.ranges.first() {
            if r.end <= start {
                self.ranges = &self.ranges[1..];
                continue;
            }
            return r.start <= start && end <= r.end;
        }
        false
    }
}

/// How a followed file instance was replaced.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replaced {
    /// Renamed away, another file under its name: what the old one still holds is read first.
    Rotated,
    /// Truncated (copytruncate) or rewritten in place: its new content is read from its start.
    Truncated,
}

struct Producer {
    config: ReaderConfig,
    tx: mpsc::Sender<Event>,
    stop: Arc<AtomicBool>,
    rejects: Arc<Rejects>,
    packer: Packer,
    batcher: Batcher,
    pacer: Option<super::control::Pacer>,
    /// When the oldest line not yet handed over was read (for --linger).
    pending_since: Option<Instant>,
    json_buf: Vec<u8>,
    next_input: usize,
}

/// Why reading stopped early.
enum Halt {
    /// The sender went away or asked to stop.
    Stopped,
}

impl Producer {
    fn send(&self, event: Event) -> std::result::Result<(), Halt> {
        self.tx.blocking_send(event).map_err(|_| Halt::Stopped)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Hands over the partial record and batch.
    fn flush(&mut self) -> std::result::Result<(), Halt> {
        if let Some(record) = self.packer.flush()
            && let Some(batch) = self.batcher.push(record)
        {
            self.send(Event::Batch(batch))?;
        }
        if let Some(batch) = self.batcher.flush() {
            self.send(Event::Batch(batch))?;
        }
        self.pending_since = None;
        Ok(())
    }

    fn flush_if_lingering(&mut self) -> std::result::Result<(), Halt> {
        if self.pending_since.is_some_and(|t| t.elapsed() >= self.config.linger) {
            self.flush()?;
        }
        Ok(())
    }

    fn reject(&mut self, input: usize, name: &str, at: At, reason: &str, text: &[u8]) -> std::result::Result<(), Halt> {
        let entry = Reject {
            input: name,
            line: Some(at.number),
            offset: Some(at.start),
            lines: 1,
            bytes: at.len,
            reason,
            text,
        };
        if let Err(e) = self.rejects.write(&entry) {
            self.send(Event::Failed(e))?;
            return Err(Halt::Stopped);
        }
        self.send(Event::Skipped(Span { input, start: at.start, end: at.end, lines: 1 }))
    }

    /// Adds one framed line (bytes with `\n`).
    fn line(
        &mut self,
        input: usize,
        name: &str,
        bytes: &[u8],
        number: u64,
        start: u64,
        end: u64,
    ) -> std::result::Result<(), Halt> {
        if let Some(pacer) = &mut self.pacer {
            let wait = pacer.next_line();
            if !wait.is_zero() {
                if self.pending_since.is_some_and(|t| t.elapsed() + wait >= self.config.linger) {
                    self.flush()?;
                }
                std::thread::sleep(wait);
            }
        }
        // A followed file refilled after copytruncate by a writer without O_APPEND starts with a hole: NUL bytes
        // that are no log's content.
        let bytes = if self.config.follow { &bytes[bytes.iter().take_while(|b| **b == 0).count()..] } else { bytes };
        let content: &[u8] = if self.config.json {
            let raw = &bytes[..bytes.len() - 1];
            match parse_line_in(raw, self.config.utc_times) {
                Ok(entry) => {
                    self.json_buf.clear();
                    serde_json::to_writer(&mut self.json_buf, &entry).expect("log entries serialise");
                    self.json_buf.push(b'\n');
                    if self.json_buf.len() > self.config.record_size.min(MAX_RECORD_BYTES) {
                        let len = self.json_buf.len() as u64;
                        let reason = format!(
                            "as JSON the line is {len} bytes, more than the {} byte record limit",
                            self.config.record_size
                        );
                        return self.reject(input, name, At { number, start, end, len }, &reason, raw);
                    }
                    // `json_buf` is reused; copy out of self before borrowing mutably again.
                    let owned = std::mem::take(&mut self.json_buf);
                    let result = self.add(input, &owned, start, end);
                    self.json_buf = owned;
                    return result;
                }
                Err(reason) => {
                    let reason = format!("not an Apache common/combined log line: {reason}");
                    return self.reject(input, name, At { number, start, end, len: bytes.len() as u64 }, &reason, raw);
                }
            }
        } else {
            bytes
        };
        self.add(input, content, start, end)
    }

    fn add(&mut self, input: usize, content: &[u8], start: u64, end: u64) -> std::result::Result<(), Halt> {
        let hash = line_hash(&content[..content.len() - 1]);
        if self.pending_since.is_none() {
            self.pending_since = Some(Instant::now());
        }
        if let Some(record) = self.packer.push(content, hash, Span { input, start, end, lines: 1 })
            && let Some(batch) = self.batcher.push(record)
        {
            self.send(Event::Batch(batch))?;
        }
        if self.config.rate.is_some() {
            self.flush_if_lingering()?;
        }
        Ok(())
    }

    /// Reads one input (one file instance) until its end, or, when following, until it is rotated away or
    /// truncated. Returns the next file instance to read when that happened.
    fn read_input(&mut self, input: &Input) -> std::result::Result<Option<Input>, Halt> {
        let index = self.next_input;
        self.next_input += 1;
        let path = match &input.source {
            Source::File { path, .. } => Some(path.clone()),
            _ => None,
        };
        let follow = self.config.follow && matches!(input.source, Source::File { gzip: false, .. });
        let opened = match open(input, follow) {
            Ok(x) => x,
            Err(e) => {
                let path = path.unwrap_or_else(|| PathBuf::from(&input.name));
                self.send(Event::Failed(Error::Input { path, source: e }))?;
                return Err(Halt::Stopped);
            }
        };
        self.send(Event::Opened {
            input: index,
            name: input.name.clone(),
            path: path.clone(),
            identity: opened.identity.clone(),
            start_offset: input.start_offset,
            start_lines: input.start_lines,
            acked: input.acked.clone(),
        })?;
        let max_line = self.config.record_size.min(MAX_RECORD_BYTES);
        let mut framer = Framer::new(opened.reader, max_line, input.start_offset, input.start_lines);
        let mut acked = Acked { ranges: &input.acked };
        let (mut lines, mut bytes) = (0u64, 0u64);
        let mut replaced: Option<Replaced> = None;
        loop {
            if self.stopped() {
                return Err(Halt::Stopped);
            }
            let next = match framer.next(!follow || replaced.is_some()) {
                Ok(n) => n,
                Err(e) => {
                    let path = path.clone().unwrap_or_else(|| PathBuf::from(&input.name));
                    self.send(Event::Failed(Error::Input { path, source: e }))?;
                    return Err(Halt::Stopped);
                }
            };
            match next {
                Next::Line(line) if acked.covers(line.start, line.end) => {}
                Next::Line(line) => {
                    lines += 1;
                    bytes += line.bytes.len() as u64;
                    self.line(index, &input.name, line.bytes, line.number, line.start, line.end)?;
                }
                Next::Oversized(o) => {
                    let reason =
                        format!("line is {} bytes with its newline, more than the {max_line} byte record limit", o.len);
                    let at = At { number: o.number, start: o.start, end: o.end, len: o.len };
                    self.reject(index, &input.name, at, &reason, &o.head)?;
                }
                Next::End if !follow => {
                    self.send(Event::Finished { input: index, lines, bytes })?;
                    return Ok(None);
                }
                Next::End => {
                    let truncated = opened.truncated.as_ref().is_some_and(|t| t.load(Ordering::Relaxed));
                    replaced = replaced.or(truncated.then_some(Replaced::Truncated));
                    if replaced.is_none() {
                        self.flush_if_lingering()?;
                        std::thread::sleep(Duration::from_millis(200));
                        replaced = rotated(path.as_deref(), opened.identity.as_ref());
                        framer.resume_after_eof();
                        continue;
                    }
                    self.send(Event::Finished { input: index, lines, bytes })?;
                    return Ok(Some(self.after_replacement(input, replaced)));
                }
            }
        }
    }

    /// The next instance of a followed file: the new file after a rotation, from its start; the same file after
    /// a truncation, from where its new content starts.
    fn after_replacement(&self, input: &Input, replaced: Option<Replaced>) -> Input {
        let mut next = Input::new(input.name.clone(), input.source.clone());
        if replaced == Some(Replaced::Truncated)
            && let Source::File { path, .. } = &input.source
        {
            next.start_offset = super::follow::content_start(path).unwrap_or(0);
            if next.start_offset > 0 {
                tracing::info!(
                    "{}: truncated and refilled by a writer without O_APPEND: skipping its {} leading NUL bytes",
                    input.name,
                    next.start_offset
                );
            }
        }
        let how = if replaced == Some(Replaced::Rotated) { "rotated" } else { "truncated" };
        tracing::info!("{} was {how}: reading the new content from its start", input.name);
        next
    }
}

/// Whether the followed file was renamed away (another file, or none yet, under its name).
fn rotated(path: Option<&std::path::Path>, id: Option<&FileIdentity>) -> Option<Replaced> {
    let (path, old) = (path?, id?);
    // A failed identity means the file was renamed away and the new one is not there yet.
    match identity(path) {
        Ok(new) if old.dev != new.dev || old.ino != new.ino => Some(Replaced::Rotated),
        _ => None,
    }
}

/// Starts the reader thread. It ends after every input is read (or, when following, when `stop` is set), having
/// handed over the last partial batch.
pub fn spawn(
    inputs: Vec<Input>,
    config: ReaderConfig,
    tx: mpsc::Sender<Event>,
    stop: Arc<AtomicBool>,
    rejects: Arc<Rejects>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("firehose-kit-reader".into())
        .spawn(move || {
            let mut producer = Producer {
                packer: Packer::new(config.record_size, config.one_line_per_record)
                    .with_max_lines(config.max_lines_per_record.unwrap_or(u32::MAX)),
                batcher: Batcher::new(&config.stream),
                pacer: config.rate.map(super::control::Pacer::new),
                pending_since: None,
                json_buf: Vec::new(),
                next_input: 0,
                config,
                tx,
                stop,
                rejects,
            };
            for input in inputs {
                let mut current = Some(input);
                while let Some(input) = current.take() {
                    match producer.read_input(&input) {
                        Ok(next) => current = next,
                        Err(Halt::Stopped) => {
                            // Stopped (Ctrl-C, or the sender gave up): hand over what was read, so the
                            // checkpoint can advance over it once it is acknowledged.
                            let _ = producer.flush().and_then(|_| producer.send(Event::Done));
                            return;
                        }
                    }
                }
            }
            let _ = producer.flush().and_then(|_| producer.send(Event::Done));
        })
        .expect("spawn the reader thread")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(inputs: Vec<Input>, config: ReaderConfig) -> (Vec<Event>, Arc<Rejects>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let rejects = Arc::new(Rejects::new(dir.path().join("rejects.log")));
        let (tx, mut rx) = mpsc::channel(4);
        let handle = spawn(inputs, config, tx, Arc::new(AtomicBool::new(false)), rejects.clone());
        let mut events = Vec::new();
        while let Some(e) = rx.blocking_recv() {
            events.push(e);
        }
        handle.join().unwrap();
        (events, rejects, dir)
    }

    fn config(json: bool) -> ReaderConfig {
        ReaderConfig {
            stream: "S".into(),
            record_size: MAX_RECORD_BYTES,
            one_line_per_record: false,
            max_lines_per_record: None,
            json,
            utc_times: false,
            rate: None,
            follow: false,
            linger: Duration::from_secs(1),
        }
    }

    fn batches(events: &[Event]) -> Vec<&Batch> {
        events.iter().filter_map(|e| if let Event::Batch(b) = e { Some(b) } else { None }).collect()
    }

    #[test]
    fn a_file_becomes_packed_records_with_every_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"one\r\ntwo\n\nthree").unwrap();
        let input = Input::new("a.log".into(), Source::File { path, gzip: false });
        let (events, rejects, _d) = run(vec![input], config(false));
        let b = batches(&events);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].records.len(), 1, "all lines packed into one record");
        assert_eq!(b[0].records[0].data, b"one\r\ntwo\n\nthree\n");
        assert_eq!(b[0].records[0].spans, vec![Span { input: 0, start: 0, end: 15, lines: 4 }]);
        assert!(
            // 15 bytes in the file, 16 framed: the last line gets its newline.
            events.iter().any(|e| matches!(e, Event::Finished { input: 0, lines: 4, bytes: 16 })),
            "the input's line and byte counts are reported: {:?}",
            events.iter().filter(|e| !matches!(e, Event::Batch(_))).collect::<Vec<_>>()
        );
        assert!(matches!(events.last(), Some(Event::Done)), "the reader says it is done last");
        assert_eq!(rejects.count(), 0);
    }

    #[test]
    fn gzip_inputs_are_read_transparently_and_resume_in_the_decompressed_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log.gz");
        let mut gz = flate2::write::GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::default());
        gz.write_all(b"first\nsecond\n").unwrap();
        gz.finish().unwrap();
        let input = Input {
            name: "a.log.gz".into(),
            source: Source::File { path, gzip: true },
            start_offset: 6,
            start_lines: 1,
            acked: Vec::new(),
        };
        let (events, _, _d) = run(vec![input], config(false));
        assert_eq!(batches(&events)[0].records[0].data, b"second\n");
        assert_eq!(batches(&events)[0].records[0].spans[0].start, 6);
    }

    #[test]
    fn json_format_converts_good_lines_and_rejects_bad_ones_with_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 12\ngarbage\n")
            .unwrap();
        let input = Input::new("a.log".into(), Source::File { path, gzip: false });
        let (events, rejects, _d) = run(vec![input], config(true));
        let data = String::from_utf8(batches(&events)[0].records[0].data.clone()).unwrap();
        let v: serde_json::Value = serde_json::from_str(data.trim_end()).unwrap();
        assert_eq!(
            (v["status"].as_u64(), v["bytes"].as_u64(), v["method"].as_str()),
            (Some(200), Some(12), Some("GET"))
        );
        assert_eq!(rejects.count(), 1);
        let log = std::fs::read_to_string(rejects.path()).unwrap();
        let entry: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
        assert_eq!(
            (entry["input"].as_str(), entry["line"].as_u64(), entry["text"].as_str()),
            (Some("a.log"), Some(2), Some("garbage"))
        );
        assert!(entry["reason"].as_str().unwrap().contains("not an Apache"));
        assert!(events.iter().any(|e| matches!(e, Event::Skipped(Span { start: 65, end: 73, .. }))));
    }

    #[test]
    fn generated_input_yields_the_requested_number_of_lines() {
        let input = Input::new("generated".into(), Source::Generate { lines: 1234, seed: Some(1) });
        let (events, _, _d) = run(vec![input], config(false));
        let lines: u64 = batches(&events).iter().map(|b| b.lines()).sum();
        assert_eq!(lines, 1234);
    }

    #[test]
    fn a_resumed_input_skips_the_ranges_acknowledged_ahead_of_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"a\nb\nc\nd\ne\n").unwrap();
        let input = Input {
            name: "a.log".into(),
            source: Source::File { path, gzip: false },
            start_offset: 2,
            start_lines: 1,
            acked: vec![AckedRange { start: 4, end: 6, lines: 1 }, AckedRange { start: 8, end: 10, lines: 1 }],
        };
        let (events, _, _d) = run(vec![input], config(false));
        assert_eq!(batches(&events)[0].records[0].data, b"b\nd\n", "c and e were acknowledged already");
        assert!(events.iter().any(|e| matches!(e, Event::Finished { lines: 2, .. })));
    }
}
