//! Checking a dynamically partitioned delivery: each line must sit in the partition its own fields map to. The
//! stream's own jq query (from Describe) runs on the line with the same code the emulator routes with
//! ([`crate::firehose::partitioning`]); the prefix it evaluates to must be the object's.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::lines::{HOLD_FOR_PARSING, Line, Splitter};
use crate::firehose::partitioning::Query;
use crate::firehose::prefix::{Context, Part, Prefix};

/// The stream's partitioning, ready to check lines.
pub struct PartitionCheck {
    query: Query,
    prefix: Prefix,
    zone: Tz,
    stream: String,
}

impl PartitionCheck {
    /// `None` when the prefix cannot be re-evaluated (it has `!{firehose:random-string}`).
    pub fn new(query: &str, prefix: Prefix, zone: Tz, stream: &str) -> Result<Option<Self>, String> {
        if prefix.parts().iter().any(|p| matches!(p, Part::RandomString)) {
            return Ok(None);
        }
        Ok(Some(PartitionCheck { query: Query::compile(query)?, prefix, zone, stream: stream.to_string() }))
    }

    /// Where `line` belongs: the prefix its keys evaluate to (timestamps at `at`), or why it has none.
    pub fn expected_prefix(&self, line: &[u8], at: DateTime<Utc>) -> Result<String, String> {
        let keys = self.query.keys(line)?;
        let mut ctx = Context::new(at, self.zone);
        ctx.partition_keys = Some(&keys);
        self.prefix.evaluate(&ctx).map_err(|k| format!("the query yields no `{}`", k.0))
    }

    /// Whether `line` belongs in the object `key` (named at `at`).
    pub fn belongs(&self, key: &str, at: DateTime<Utc>, line: &[u8]) -> Result<(), String> {
        let expected = self.expected_prefix(line, at)?;
        match key.strip_prefix(&expected) {
            Some(rest) if rest.starts_with(&format!("{}-", self.stream)) => Ok(()),
            _ => Err(format!("belongs under `{expected}`")),
        }
    }

    /// A writer that checks each line written to it (the decompressed object) against `key`.
    pub fn writer<'a>(&'a self, key: &'a str, at: DateTime<Utc>) -> LineChecker<'a> {
        LineChecker {
            split: Splitter::new(HOLD_FOR_PARSING),
            seen: Checked { check: self, key, at, lines: 0, misplaced: 0, example: None },
        }
    }
}

/// Checks lines as an object's bytes stream through it.
pub struct LineChecker<'a> {
    split: Splitter,
    pub seen: Checked<'a>,
}

/// What a [`LineChecker`] found.
pub struct Checked<'a> {
    check: &'a PartitionCheck,
    key: &'a str,
    at: DateTime<Utc>,
    pub lines: u64,
    pub misplaced: u64,
    /// The first misplaced line and where it belongs.
    pub example: Option<String>,
}

impl Checked<'_> {
    fn line(&mut self, line: Line) {
        let why = match line {
            Line::Whole([]) => return,
            Line::Whole(line) => match self.check.belongs(self.key, self.at, line) {
                Ok(()) => None,
                Err(why) => Some((String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned(), why)),
            },
            // No record of a partitioned stream is this long: records run together without a delimiter.
            Line::Long { len, .. } => Some((format!("({len} bytes without a newline)"), "not one record".to_string())),
        };
        self.lines += 1;
        if let Some((text, why)) = why {
            self.misplaced += 1;
            if self.example.is_none() {
                self.example = Some(format!("{text} ({why})"));
            }
        }
    }
}

impl LineChecker<'_> {
    /// Checks the last line when it has no `\n`.
    pub fn finish(&mut self) {
        self.split.finish(&mut |line| self.seen.line(line));
    }
}

impl Write for LineChecker<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.split.feed(buf, &mut |line| self.seen.line(line));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One partition's delivery, for the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PartitionSummary {
    /// The partition's prefix (the object key up to the file name).
    pub prefix: String,
    pub objects: u64,
    pub lines: u64,
    pub bytes: u64,
    /// Objects cut by the size hint, and by the interval.
    pub by_size: u64,
    pub by_interval: u64,
}

/// Records in the error output, by error code.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorRecords {
    pub code: String,
    pub count: u64,
    /// One reason, as the error document gives it.
    pub example: String,
}

/// Tallies the error-output documents (one JSON object per line) of one object into `into`.
pub fn tally_error_records(body: &[u8], into: &mut BTreeMap<String, (u64, String)>) {
    for line in body.split(|c| *c == b'\n').filter(|l| !l.is_empty()) {
        let doc: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
        // Processing failures say `errorCode`; conversion failures `lastErrorCode` (AWS's pages show both forms).
        let field = |names: [&str; 2]| names.iter().find_map(|n| doc[*n].as_str()).map(str::to_string);
        let code = field(["errorCode", "lastErrorCode"]).unwrap_or_else(|| "unreadable error record".into());
        let message = field(["errorMessage", "lastErrorMessage"]).unwrap_or_default();
        let entry = into.entry(code).or_insert((0, message));
        entry.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firehose::prefix;

    #[test]
    fn lines_are_checked_against_their_own_partition() {
        let p = prefix::validate(Some("logs/status=!{partitionKeyFromQuery:status}/"), Some("e/"), true).unwrap();
        let check = PartitionCheck::new("{status: .status}", p.data, Tz::UTC, "S").unwrap().unwrap();
        let at = Utc::now();
        let mut w = check.writer("logs/status=404/S-1-2026-11-26-10-00-00-x", at);
        w.write_all(b"{\"status\":404}\n{\"status\":200}\n{\"sta").unwrap();
        w.write_all(b"tus\":404}").unwrap();
        w.finish();
        assert_eq!((w.seen.lines, w.seen.misplaced), (3, 1));
        assert!(
            w.seen.example.as_deref().unwrap().contains("belongs under `logs/status=200/`"),
            "{:?}",
            w.seen.example
        );
    }

    #[test]
    fn error_documents_are_tallied_by_code() {
        let mut t = BTreeMap::new();
        tally_error_records(b"{\"errorCode\":\"A\",\"errorMessage\":\"m\"}\n{\"errorCode\":\"A\"}\n", &mut t);
        assert_eq!(t["A"], (2, "m".to_string()));
    }
}
