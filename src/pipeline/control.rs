//! Flow control for `send`: jittered exponential backoff for retries, additive-increase/multiplicative-decrease
//! concurrency that backs off on throttling, and a line pacer for `--rate`.

use std::time::{Duration, Instant};

use crate::util::retry::Backoff;

/// Retry delays: 100 ms doubling to 10 s, each ±30 % (Kinesis Agent's schedule).
pub const SEND_BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));

fn backoff(attempt: u32) -> Duration {
    SEND_BACKOFF.delay(attempt)
}

/// When to resend records that failed. Throttling is the stream's quota, not these records' fault: the quota
/// refills every second, so while records are still being accepted, throttled ones are retried within about
/// 100 ms (every second gets its attempt), backing off only as the time without any acknowledgement grows.
/// Other failures back off by their own attempt count.
pub fn retry_delay(attempt: u32, throttled: bool, since_progress: Duration) -> Duration {
    if throttled { backoff(1 + since_progress.as_secs() as u32) } else { backoff(attempt) }
}

/// Paces sending while the stream throttles, so throttled records are not resent in a tight loop: once a
/// response carries throttled entries, data may go out only as fast as the stream has been accepting it over
/// the last few seconds, plus a margin that probes for more (the estimate then climbs to the quota, and AWS
/// raises throttled streams' quotas over time). Five seconds without throttling lift the gate.
#[derive(Debug, Clone)]
pub struct ThrottleGate {
    active_until: Option<Instant>,
    /// A whole call was throttled (the stream's request quota): nothing goes out before this.
    held_until: Option<Instant>,
    /// Allowed bytes per second while active.
    rate: f64,
    /// Bytes that may go out now (negative: in debt).
    budget: f64,
    refilled: Instant,
    /// Bytes accepted in the measurement horizon, oldest first.
    samples: std::collections::VecDeque<(Instant, u64)>,
}

/// How much more than the measured acceptance rate the gate lets out.
const PROBE: f64 = 1.5;
/// The smallest rate the gate assumes: the lowest Direct Put quota AWS documents (1 MiB/s), so a stream that
/// has accepted nothing yet is still tried about once a second.
const MIN_RATE: f64 = 1024.0 * 1024.0;
/// How far back acceptance is measured.
const HORIZON: Duration = Duration::from_secs(3);

impl Default for ThrottleGate {
    fn default() -> Self {
        let now = Instant::now();
        ThrottleGate {
            active_until: None,
            held_until: None,
            rate: 0.0,
            budget: 0.0,
            refilled: now,
            samples: Default::default(),
        }
    }
}

impl ThrottleGate {
    fn active(&self, now: Instant) -> bool {
        self.active_until.is_some_and(|t| now < t)
    }

    /// Accounts for a response: bytes accepted, and whether any entry (or the call) was throttled.
    pub fn on_response(&mut self, accepted_bytes: u64, throttled: bool, now: Instant) {
        // Acceptance is measured all the time, so the gate starts from what was getting through just before.
        self.samples.push_back((now, accepted_bytes));
        while self.samples.front().is_some_and(|(t, _)| now.duration_since(*t) > HORIZON) {
            self.samples.pop_front();
        }
        if throttled {
            if !self.active(now) {
                self.budget = 0.0;
                self.refilled = now;
            }
            self.active_until = Some(now + Duration::from_secs(5));
        }
        if self.active(now) {
            let first = self.samples.front().map(|(t, _)| *t).unwrap_or(now);
            let span = now.duration_since(first).max(Duration::from_secs(1)).as_secs_f64();
            let accepted: u64 = self.samples.iter().map(|(_, b)| b).sum();
            self.rate = (accepted as f64 / span * PROBE).max(MIN_RATE);
        }
    }

    /// A whole call was throttled: every call waits `delay` (the request quota refills, the sender sleeps instead
    /// of resending in a loop).
    pub fn hold(&mut self, delay: Duration, now: Instant) {
        let until = now + delay;
        self.held_until = Some(self.held_until.map_or(until, |t| t.max(until)));
    }

    fn held(&self, now: Instant) -> Option<Instant> {
        self.held_until.filter(|&t| now < t)
    }

    /// How many bytes may go out now: `None` when the gate is open (no throttling lately), else the budget
    /// (at least one record may go while it is not negative; nothing while a throttled call holds it).
    pub fn allowance(&mut self, now: Instant) -> Option<f64> {
        if self.held(now).is_some() {
            return Some(-1.0);
        }
        if !self.active(now) {
            return None;
        }
        self.refill(now);
        Some(self.budget)
    }

    /// Takes sent bytes from the budget.
    pub fn spend(&mut self, bytes: u64, now: Instant) {
        if self.active(now) {
            self.budget -= bytes as f64;
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.budget = (self.budget + self.rate * dt).min(self.rate);
    }

    /// When the budget allows sending again (`None`: now, or the gate is not active).
    pub fn ready_at(&self, now: Instant) -> Option<Instant> {
        let held = self.held(now);
        if !self.active(now) {
            return held;
        }
        // The budget is as of the last refill; it has been refilling since.
        let owed = -self.budget / self.rate.max(1.0) - now.saturating_duration_since(self.refilled).as_secs_f64();
        let budget = (owed > 0.0).then(|| now + Duration::from_secs_f64(owed));
        match (held, budget) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
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
    fn throttled_retries_restart_their_schedule_after_progress() {
        let now = Duration::ZERO;
        assert!(retry_delay(9, true, now) <= Duration::from_millis(130), "progress was just made: retry soon");
        assert!(retry_delay(9, false, now) >= Duration::from_millis(7_000), "other failures back off by attempt");
        assert!(retry_delay(1, true, Duration::from_secs(5)) >= Duration::from_millis(1_100), "a long stall backs off");
    }

    #[test]
    fn the_gate_paces_to_the_measured_acceptance_rate_while_throttled() {
        let mut g = ThrottleGate::default();
        let t0 = Instant::now();
        assert_eq!(g.allowance(t0), None, "inactive: anything goes");
        g.on_response(1_000_000, true, t0);
        assert_eq!(g.allowance(t0), Some(0.0), "a zero budget: one record may go");
        g.spend(3_000_000, t0);
        assert!(g.allowance(t0).unwrap() < 0.0, "then it waits");
        let ready = g.ready_at(t0).unwrap();
        let wait = ready.duration_since(t0).as_secs_f64();
        assert!((1.5..2.5).contains(&wait), "3 MB of debt at ~1.5 MB/s: {wait}");
        assert!(g.allowance(ready + Duration::from_millis(1)).unwrap() >= 0.0);
        // After a second, the rate is what was accepted over the horizon, plus the probe.
        g.on_response(1_000_000, true, t0 + Duration::from_secs(1));
        assert!((g.rate - 2_000_000.0 * PROBE).abs() < 1.0, "{}", g.rate);
        g.on_response(0, true, t0 + Duration::from_secs(2));
        assert!((g.rate - 1_000_000.0 * PROBE).abs() < 1.0, "2 MB over 2 s: {}", g.rate);
        // Entering with nothing accepted in this response still starts from what got through before.
        let mut g = ThrottleGate::default();
        g.on_response(2_000_000, false, t0);
        g.on_response(0, true, t0 + Duration::from_millis(100));
        assert!((g.rate - 2_000_000.0 * PROBE).abs() < 1.0, "{}", g.rate);
        // Five seconds without throttling lift the gate.
        assert_eq!(g.allowance(t0 + Duration::from_secs(7)), None);
    }

    #[test]
    fn a_throttled_call_holds_every_call_until_its_delay_passes() {
        let mut g = ThrottleGate::default();
        let t0 = Instant::now();
        g.hold(Duration::from_millis(500), t0);
        g.hold(Duration::from_millis(200), t0);
        assert_eq!(g.allowance(t0), Some(-1.0), "held: nothing goes, even with the gate inactive");
        assert_eq!(g.ready_at(t0), Some(t0 + Duration::from_millis(500)), "a shorter hold does not shorten it");
        let after = t0 + Duration::from_millis(501);
        assert_eq!(g.allowance(after), None, "released");
        assert_eq!(g.ready_at(after), None);
        // Held and in debt: the later of the two.
        g.on_response(0, true, after);
        g.spend(4 * MIN_RATE as u64, after);
        g.hold(Duration::from_millis(100), after);
        let ready = g.ready_at(after).unwrap();
        assert!(ready >= after + Duration::from_secs(2), "the budget's wait is the longer: {ready:?}");
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
