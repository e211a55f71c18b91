//! The one retry schedule: exponential backoff with jitter.

use std::time::Duration;

use rand::Rng;

/// `first` doubling per attempt (1-based) up to `cap`, each ±30 %.
pub fn jittered(first: Duration, cap: Duration, attempt: u32) -> Duration {
    let base = first.saturating_mul(1 << attempt.saturating_sub(1).min(20)).min(cap);
    base.mul_f64(rand::rng().random_range(0.7..1.3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_within_the_jitter() {
        let first = Duration::from_millis(100);
        let cap = Duration::from_secs(10);
        for attempt in 1..40 {
            let d = jittered(first, cap, attempt);
            let base = (100u64 << (attempt - 1).min(20)).min(10_000) as f64;
            let ms = d.as_secs_f64() * 1000.0;
            assert!(ms >= base * 0.7 - 1e-6 && ms <= base * 1.3 + 1e-6, "attempt {attempt}: {ms} ms");
        }
    }
}
