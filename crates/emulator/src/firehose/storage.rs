//! The emulator's own storage failures — a full disk, a data dir it cannot write — as its operators and clients
//! see them. A record the journal cannot take is refused (`InternalFailure`, so producers retry it), and an
//! object the store cannot write is kept and retried; either way the emulator warns at its default verbosity,
//! naming the stream, the file and what the client was told (at most once per stream and kind every 10 s, with
//! how many were not repeated), and announces the latest error to clients in a response header for a few
//! minutes (`firehose-kit status` shows it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use firehose_kit_domain::contract::{STORAGE_ERROR_ANNOUNCED_FOR, storage_error_header};

/// How often the same stream's storage errors are repeated in the log.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Per stream and kind of failure: when it was last warned about, and how many were not warned about since.
type Warned = HashMap<(String, &'static str), (Instant, u64)>;

#[derive(Default)]
pub struct StorageErrors {
    /// The latest error: when, and the header announcing it.
    last: Mutex<Option<(DateTime<Utc>, String)>>,
    warned: Mutex<Warned>,
    /// Storage errors so far.
    pub count: AtomicU64,
}

impl StorageErrors {
    /// Records one failure of `kind` (`journal` or `delivery`) on `stream`; `answered` is what the client (or the
    /// delivery) got.
    pub fn record(&self, stream: &str, kind: &'static str, error: &dyn std::fmt::Display, answered: &str) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let now = Utc::now();
        let what = format!("{kind}: {error}");
        *crate::lock(&self.last) = Some((now, storage_error_header(now, stream, &what)));
        let mut warned = crate::lock(&self.warned);
        let entry = warned.entry((stream.to_string(), kind)).or_insert((Instant::now() - WARN_EVERY, 0));
        if entry.0.elapsed() < WARN_EVERY {
            entry.1 += 1;
            return;
        }
        let repeats = std::mem::take(&mut entry.1);
        entry.0 = Instant::now();
        let more =
            if repeats > 0 { format!(" ({repeats} more like it since the last warning)") } else { String::new() };
        tracing::warn!(stream, "storage error, {kind}: {error}; {answered}{more}");
    }

    /// The header announcing the latest error, while it is recent.
    pub fn recent(&self) -> Option<String> {
        let last = crate::lock(&self.last);
        let (at, header) = last.as_ref()?;
        let age = (Utc::now() - *at).to_std().unwrap_or_default();
        (age < STORAGE_ERROR_ANNOUNCED_FOR).then(|| header.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_counted_and_the_latest_is_announced() {
        let s = StorageErrors::default();
        assert_eq!(s.recent(), None);
        for _ in 0..3 {
            s.record("S", "journal", &"No space left on device (os error 28)", "the call was answered InternalFailure");
        }
        assert_eq!(s.count.load(Ordering::Relaxed), 3);
        let header = s.recent().unwrap();
        assert!(header.ends_with("S: journal: No space left on device (os error 28)"), "{header}");
        let warned = s.warned.lock().unwrap();
        assert_eq!(warned[&("S".to_string(), "journal")].1, 2, "two not repeated in the log");
    }
}
