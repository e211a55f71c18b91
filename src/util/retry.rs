//! The one retry logic of the client: what a failure calls for ([`RetryClass`], decided from a typed error by
//! the code that knows the service, as [`Failed`]) and when to try again ([`Backoff`], exponential with jitter).
//! Used by send's loop (PutRecordBatch), setup's IAM-propagation retries and the load generator.

use std::time::Duration;

use rand::Rng;

use crate::error::Error;

/// What to do about a call that failed as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// The service's throughput quota: retry, paced to what it accepts.
    Throttled,
    /// A 5xx, a timeout or a broken connection: retry with backoff.
    Transient,
    /// The request itself is wrong (no such resource, bad argument): retrying cannot help; stop.
    Permanent,
}

impl RetryClass {
    pub fn retries(self) -> bool {
        self != RetryClass::Permanent
    }
}

/// A call that failed as a whole, classified; `error` carries the service's code, message and any hint.
#[derive(Debug)]
pub struct Failed {
    pub class: RetryClass,
    /// The service's error code, or `transport error`.
    pub code: String,
    pub error: Error,
}

/// One entry of a batch call that the service refused inside a successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    pub code: String,
    pub message: String,
}

/// An exponential backoff schedule: `first` doubling per attempt (1-based) up to `cap`, each delay ±30 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub cap: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, cap: Duration) -> Self {
        Backoff { first, cap }
    }

    /// The wait before attempt `attempt + 1`, after `attempt` failures.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.first.saturating_mul(1 << attempt.saturating_sub(1).min(20)).min(self.cap);
        base.mul_f64(rand::rng().random_range(0.7..1.3))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_within_the_jitter() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        for attempt in 1..40 {
            let d = backoff.delay(attempt);
            let base = (100u64 << (attempt - 1).min(20)).min(10_000) as f64;
            let ms = d.as_secs_f64() * 1000.0;
            assert!(ms >= base * 0.7 - 1e-6 && ms <= base * 1.3 + 1e-6, "attempt {attempt}: {ms} ms");
        }
    }

    #[test]
    fn only_permanent_failures_stop() {
        assert!(RetryClass::Throttled.retries() && RetryClass::Transient.retries());
        assert!(!RetryClass::Permanent.retries());
    }
}
