//! Flow control for `send`: jittered exponential backoff for retries, additive-increase/multiplicative-decrease
//! concurrency that backs off on throttling, and a line pacer for `--rate`.

use std::time::{Duration, Instant};

use rand::Rng;

/// Retry delays: 100 ms doubling to 10 s, each ±30 % (Kinesis Agent's schedule).
pub fn backoff(attempt: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << attempt.saturating_sub(1).min(7)).min(10_000);
    let jitter = rand::rng().random_range(0.7..1.3);
    Duration::from_millis((base as f64 * jitter) as u64)
}

/// How many batches may be in flight: halves on throttling, grows by one per clean success.
#[derive(Debug, Clone)]
pub struct Concurrency {
    limit: f64,
    max: usize,
}

impl Concurrency {
    pub fn new(max: usize) -> Self {
        Concurrency { limit: max as f64, max }
    }

    pub fn limit(&self) -> usize {
        (self.limit.floor() as usize).clamp(1, self.max)
    }

    pub fn on_throttled(&mut self) {
        self.limit = (self.limit / 2.0).max(1.0);
    }

    pub fn on_success(&mut self) {
        // +1 per `limit` successes: one step per round trip of the whole window.
        self.limit = (self.limit + 1.0 / self.limit).min(self.max as f64);
    }
}

/// Paces lines to at most `rate` per second.
#[derive(Debug)]
pub struct Pacer {
    rate: f64,
    started: Instant,
    sent: u64,
}

impl Pacer {
    pub fn new(rate: f64) -> Self {
        Pacer { rate, started: Instant::now(), sent: 0 }
    }

    /// How long to wait before the next line may go (zero when it may go now); counts the line.
    pub fn next_line(&mut self) -> Duration {
        self.sent += 1;
        let due = self.started + Duration::from_secs_f64((self.sent - 1) as f64 / self.rate);
        due.saturating_duration_since(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_ten_seconds() {
        assert!(backoff(1) <= Duration::from_millis(130));
        assert!(backoff(4) >= Duration::from_millis(560) && backoff(4) <= Duration::from_millis(1040));
        assert!(backoff(30) <= Duration::from_millis(13_000));
        assert!(backoff(30) >= Duration::from_millis(7_000));
    }

    #[test]
    fn concurrency_halves_on_throttling_and_recovers() {
        let mut c = Concurrency::new(8);
        c.on_throttled();
        assert_eq!(c.limit(), 4);
        c.on_throttled();
        c.on_throttled();
        c.on_throttled();
        assert_eq!(c.limit(), 1, "never below one");
        for _ in 0..100 {
            c.on_success();
        }
        assert_eq!(c.limit(), 8, "back to the maximum");
    }

    #[test]
    fn pacer_spaces_lines() {
        let mut p = Pacer::new(10.0);
        assert_eq!(p.next_line(), Duration::ZERO);
        let wait = p.next_line();
        assert!(wait > Duration::from_millis(80) && wait <= Duration::from_millis(100), "{wait:?}");
    }
}
