//! How delivery followed the buffering hints: each object classified as flushed by size (its uncompressed size
//! reached about SizeInMBs) or by interval (it waited about IntervalInSeconds), with its buffering delay
//! (LastModified minus the oldest record's arrival in the key).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ui::{format_bytes, format_count, plural};

/// `0.5`, `2`, `0.33`: seconds without trailing zeros.
fn trim_float(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlushedBy {
    Size,
    Interval,
}

/// One delivered object as verify saw it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveredObject {
    pub key: String,
    /// Stored size (compressed when gzip).
    pub size: u64,
    /// Decompressed size.
    pub bytes: u64,
    pub lines: u64,
    pub last_modified: Option<DateTime<Utc>>,
    /// The timestamp in the key (oldest record's arrival).
    pub key_time: Option<DateTime<Utc>>,
    /// Seconds between the oldest record's arrival and delivery.
    pub delay_s: Option<f64>,
    pub flushed_by: FlushedBy,
    /// Lines of the expected run(s) in this object.
    pub matched_lines: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layout_problems: Vec<String>,
    /// Where `verify --keep` saved it (decompressed; a Parquet object's rows as JSON lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_as: Option<std::path::PathBuf>,
    /// A Parquet object's columns and types (its `lines` are its rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<Vec<(String, String)>>,
    /// Why the object was not read to its end: it holds what Firehose cannot have written (a line longer than
    /// any object Firehose delivers). Its lines up to there are counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_read_through: Option<String>,
}

/// Why an object was delivered. One that waited at least the interval that applied (IntervalInSeconds, or less
/// on an emulator running faster: a fraction of a second is kept) was flushed by the interval; one delivered
/// sooner was cut by size (it reached the hint, or the next record would have passed it — which is why a
/// size-flushed object can be well under the hint when records arrive out of order). Without a delay, objects
/// of at least 90 % of the hint count as size flushes.
pub fn flushed_by(bytes: u64, size_hint_mib: i32, delay_s: Option<f64>, interval_s: f64) -> FlushedBy {
    flushed_by_within(bytes, size_hint_mib, delay_s, interval_s, 0.0)
}

/// [`flushed_by`] for delays measured to within `resolution_s`: key times are whole seconds, so under an
/// emulator's `--speed` (an interval of a fraction of a second) a delay up to `resolution_s` past the interval
/// cannot tell the two apart, and an object full to the size hint (90%) was then cut by size.
pub fn flushed_by_within(
    bytes: u64,
    size_hint_mib: i32,
    delay_s: Option<f64>,
    interval_s: f64,
    resolution_s: f64,
) -> FlushedBy {
    let full = bytes as f64 >= 0.9 * size_hint_mib.max(1) as f64 * 1024.0 * 1024.0;
    match delay_s {
        Some(delay) if delay >= interval_s + resolution_s => FlushedBy::Interval,
        Some(delay) if delay >= interval_s && !full => FlushedBy::Interval,
        Some(_) => FlushedBy::Size,
        None if full => FlushedBy::Size,
        None => FlushedBy::Interval,
    }
}

/// Aggregate view of the buffering.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Buffering {
    pub size_hint_mib: i32,
    /// The IntervalInSeconds hint.
    pub interval_s: i32,
    /// The interval that applied: the hint, divided by an emulator's `--speed`.
    pub effective_interval_s: f64,
    pub objects: usize,
    pub by_size: usize,
    pub by_interval: usize,
    pub mean_size_by_size: u64,
    pub max_delay_by_interval_s: Option<f64>,
}

pub fn summarize(objects: &[DeliveredObject], size_hint_mib: i32, interval_s: i32, speed: f64) -> Buffering {
    let by_size: Vec<&DeliveredObject> = objects.iter().filter(|o| o.flushed_by == FlushedBy::Size).collect();
    let by_interval: Vec<&DeliveredObject> = objects.iter().filter(|o| o.flushed_by == FlushedBy::Interval).collect();
    let mean_size_by_size =
        if by_size.is_empty() { 0 } else { by_size.iter().map(|o| o.bytes).sum::<u64>() / by_size.len() as u64 };
    let max_delay_by_interval_s = by_interval.iter().filter_map(|o| o.delay_s).reduce(f64::max);
    Buffering {
        size_hint_mib,
        interval_s,
        effective_interval_s: interval_s as f64 / speed,
        objects: objects.len(),
        by_size: by_size.len(),
        by_interval: by_interval.len(),
        mean_size_by_size,
        max_delay_by_interval_s,
    }
}

impl Buffering {
    /// "12 objects for hints 1 MiB / 60 s: 11 flushed by size (~1.0 MiB each), 1 by interval (after ≤60 s)".
    pub fn sentence(&self) -> String {
        let mut parts = Vec::new();
        if self.by_size > 0 {
            parts.push(format!(
                "{} flushed by size (~{} each)",
                format_count(self.by_size as u64),
                format_bytes(self.mean_size_by_size)
            ));
        }
        let faster = self.effective_interval_s != self.interval_s as f64;
        if self.by_interval > 0 {
            let after = self
                .max_delay_by_interval_s
                .map(|d| if faster { format!(" (after ≤{d:.1} s)") } else { format!(" (after ≤{d:.0} s)") })
                .unwrap_or_default();
            parts.push(format!("{} by interval{after}", format_count(self.by_interval as u64)));
        }
        let applied = if faster {
            format!(" ({} s at the emulator's speed)", trim_float(self.effective_interval_s))
        } else {
            String::new()
        };
        format!(
            "{} for hints {} MiB / {} s{applied}{}{}",
            plural(self.objects as u64, "object"),
            self.size_hint_mib,
            self.interval_s,
            if parts.is_empty() { "" } else { ": " },
            parts.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(bytes: u64, delay: f64) -> DeliveredObject {
        DeliveredObject {
            key: "k".into(),
            size: bytes,
            bytes,
            lines: 1,
            last_modified: None,
            key_time: None,
            delay_s: Some(delay),
            flushed_by: flushed_by(bytes, 1, Some(delay), 60.0),
            matched_lines: 1,
            layout_problems: vec![],
            kept_as: None,
            schema: None,
            not_read_through: None,
        }
    }

    #[test]
    fn objects_that_waited_the_interval_are_interval_flushes() {
        assert_eq!(flushed_by(1_048_576, 1, Some(0.3), 60.0), FlushedBy::Size);
        assert_eq!(flushed_by(400_000, 1, Some(0.3), 60.0), FlushedBy::Size, "cut early: the next record did not fit");
        assert_eq!(flushed_by(400_000, 1, Some(60.2), 60.0), FlushedBy::Interval);
        assert_eq!(flushed_by(1_000_000, 1, None, 60.0), FlushedBy::Size);
        assert_eq!(flushed_by(400_000, 1, None, 60.0), FlushedBy::Interval);
        // --speed 20 with a 10 s interval (0.5 s): whole-second times make a full object look late.
        assert_eq!(flushed_by_within(1_024_000, 1, Some(1.4), 0.5, 1.0), FlushedBy::Size);
        assert_eq!(flushed_by_within(300_000, 1, Some(1.4), 0.5, 1.0), FlushedBy::Interval);
        assert_eq!(flushed_by_within(1_024_000, 1, Some(1.6), 0.5, 1.0), FlushedBy::Interval);
        // Without --speed a full buffer that waited the interval for a next record was cut by the interval.
        assert_eq!(flushed_by(1_023_876, 1, Some(1.188), 1.0), FlushedBy::Interval);
        // `--speed 20` with a 10 s hint: 0.5 s applies; a 1 MiB object cut after 0.05 s was cut by size.
        assert_eq!(flushed_by(1_023_900, 1, Some(0.05), 0.5), FlushedBy::Size);
        assert_eq!(flushed_by(20_000, 1, Some(0.52), 0.5), FlushedBy::Interval);
        let objs = [object(1_100_000, 0.1), object(1_100_000, 0.2), object(400_000, 60.4)];
        let b = summarize(&objs, 1, 60, 1.0);
        assert_eq!((b.by_size, b.by_interval, b.mean_size_by_size), (2, 1, 1_100_000));
        assert_eq!(
            b.sentence(),
            "3 objects for hints 1 MiB / 60 s: 2 flushed by size (~1.0 MiB each), 1 by interval (after ≤60 s)"
        );
    }

    #[test]
    fn a_faster_emulator_says_which_interval_applied() {
        let mut fast = object(20_000, 0.6);
        fast.flushed_by = flushed_by(20_000, 1, Some(0.6), 0.5);
        let b = summarize(&[object(1_100_000, 0.05), fast], 1, 10, 20.0);
        assert_eq!(b.effective_interval_s, 0.5);
        assert_eq!(
            b.sentence(),
            "2 objects for hints 1 MiB / 10 s (0.5 s at the emulator's speed): 1 flushed by size (~1.0 MiB each), 1 by interval (after ≤0.6 s)"
        );
        assert_eq!(
            summarize(&[object(10, 70.0)], 1, 60, 1.0).sentence(),
            "1 object for hints 1 MiB / 60 s: 1 by interval (after ≤70 s)"
        );
    }
}
