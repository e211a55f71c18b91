//! `firehose-kit generate`: realistic Apache access-log lines on stdout, counted or endless, optionally paced.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::cli::{GenerateArgs, LogFormat};
use crate::error::{Error, ExitCode, Result};
use crate::logs::{Format, Generator};

pub fn run(args: &GenerateArgs) -> Result<ExitCode> {
    if let Some(rate) = args.rate
        && !(rate > 0.0 && rate.is_finite())
    {
        return Err(Error::usage(format!("--rate {rate} is not a positive number of lines per second")));
    }
    let format = match args.format {
        LogFormat::Combined => Format::Combined,
        LogFormat::Common => Format::Common,
    };
    // Counted output spreads its timestamps over the recent past so the last line is about now.
    let gap_ms = args.rate.map(|r| 1000.0 / r).unwrap_or(5.0);
    let start = match (args.start, args.lines, args.rate) {
        (Some(start), _, _) => start,
        (None, Some(n), None) => {
            chrono::Utc::now() - chrono::Duration::milliseconds((n as f64 * gap_ms).min(3_600_000.0) as i64)
        }
        _ => chrono::Utc::now(),
    };
    let mut generator = Generator::new(args.seed, format, start, gap_ms);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut buf = Vec::with_capacity(64 * 1024);
    let started = Instant::now();
    let mut written = 0u64;
    while args.lines.is_none_or(|n| written < n) {
        if let Some(rate) = args.rate {
            let due = started + Duration::from_secs_f64(written as f64 / rate);
            let now = Instant::now();
            if due > now {
                if !flush(&mut out, &mut buf)? {
                    return Ok(ExitCode::Success);
                }
                std::thread::sleep(due - now);
            }
            generator.set_time(chrono::Utc::now());
        }
        generator.write_line(&mut buf);
        written += 1;
        if buf.len() >= 60 * 1024 && !flush(&mut out, &mut buf)? {
            return Ok(ExitCode::Success);
        }
    }
    flush(&mut out, &mut buf)?;
    Ok(ExitCode::Success)
}

/// Writes the buffer; `false` when the reader went away (`generate | head` is a normal way to stop).
fn flush(out: &mut impl Write, buf: &mut Vec<u8>) -> Result<bool> {
    match out.write_all(buf).and_then(|_| out.flush()) {
        Ok(()) => {
            buf.clear();
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::failed(format!("cannot write to standard output: {e}"))),
    }
}
