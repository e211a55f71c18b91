//! Direct Put throughput quotas and injected faults.
//!
//! A quota is three per-second budgets per stream (MiB/s, requests/s, records/s; the figures per region are in docs/aws.md, "Quotas and throttling"), metered in
//! fixed one-second windows: a record is admitted while it fits in what is left of the current second. A
//! request over the request budget fails whole with `ServiceUnavailableException`; records over the record or
//! byte budget fail one by one inside a 200 response ("Slow down."), as real Firehose does.

use std::time::Instant;

pub use firehose_kit_domain::quota::{Quota, QuotaSpec};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A stream's live quota state: what the current one-second window has used.
pub struct Limiter {
    quota: Quota,
    window: Instant,
    bytes: f64,
    requests: f64,
    records: f64,
}

impl Limiter {
    pub fn new(quota: Quota) -> Self {
        Limiter { quota, window: Instant::now(), bytes: 0.0, requests: 0.0, records: 0.0 }
    }

    fn roll(&mut self) {
        let elapsed = self.window.elapsed().as_secs_f64();
        if elapsed >= 1.0 {
            // Windows are aligned to the first one, so a steady sender sees a budget every whole second.
            self.window += std::time::Duration::from_secs(elapsed.floor() as u64);
            self.bytes = 0.0;
            self.requests = 0.0;
            self.records = 0.0;
        }
    }

    /// Takes one request from the budget; `false` means the whole call is throttled.
    pub fn admit_request(&mut self) -> bool {
        self.roll();
        if self.requests + 1.0 <= self.quota.requests_per_sec {
            self.requests += 1.0;
            true
        } else {
            false
        }
    }

    /// Takes one record of `size` bytes from the budget; `false` means this record is throttled. A record larger
    /// than the whole byte budget (only with a tiny custom quota) is admitted into an empty window.
    pub fn admit_record(&mut self, size: usize) -> bool {
        self.roll();
        let size = size as f64;
        let fits = self.bytes + size <= self.quota.bytes_per_sec || self.bytes == 0.0;
        if self.records + 1.0 <= self.quota.records_per_sec && fits {
            self.records += 1.0;
            self.bytes += size;
            true
        } else {
            false
        }
    }
}

/// Random per-record failures (`--fail-rate`), repeatable with a seed.
pub struct Faults {
    rate: f64,
    rng: SmallRng,
}

/// Why a record was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    Throttled,
    ServiceUnavailable,
    InternalFailure,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Throttled | Refusal::ServiceUnavailable => "ServiceUnavailableException",
            Refusal::InternalFailure => "InternalFailure",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::Throttled => "Slow down.",
            Refusal::ServiceUnavailable => "Service unavailable (injected by --fail-rate).",
            Refusal::InternalFailure => "Internal failure (injected by --fail-rate).",
        }
    }
}

impl Faults {
    pub fn new(rate: f64, seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        Faults { rate, rng }
    }

    /// Whether this record fails, and how.
    pub fn roll(&mut self) -> Option<Refusal> {
        if self.rate <= 0.0 || !self.rng.random_bool(self.rate.min(1.0)) {
            return None;
        }
        Some(if self.rng.random_bool(0.5) { Refusal::ServiceUnavailable } else { Refusal::InternalFailure })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_spec_parses_regions_numbers_and_none() {
        assert_eq!("us-east-1".parse::<QuotaSpec>().unwrap(), QuotaSpec(Some(Quota::BIG_REGIONS)));
        assert_eq!("us-east-2".parse::<QuotaSpec>().unwrap(), QuotaSpec(Some(Quota::OTHER_REGIONS)));
        assert_eq!("none".parse::<QuotaSpec>().unwrap(), QuotaSpec(None));
        let q = "2,10,100".parse::<QuotaSpec>().unwrap().0.unwrap();
        assert_eq!(q.bytes_per_sec, 2.0 * 1024.0 * 1024.0);
        assert!("1,2".parse::<QuotaSpec>().is_err());
        assert!("fast".parse::<QuotaSpec>().is_err());
        assert!("0,1,1".parse::<QuotaSpec>().is_err());
    }

    #[test]
    fn limiter_admits_one_second_of_budget_per_window() {
        let mut l = Limiter::new(Quota { bytes_per_sec: 1000.0, requests_per_sec: 2.0, records_per_sec: 5.0 });
        assert!(l.admit_request());
        assert!(l.admit_request());
        assert!(!l.admit_request());
        assert!(l.admit_record(600));
        assert!(!l.admit_record(600), "bytes budget spent");
        assert!(l.admit_record(400));
        // The next window has a fresh budget.
        l.window -= std::time::Duration::from_secs(1);
        assert!(l.admit_request());
        assert!(l.admit_record(1000));
        l.window -= std::time::Duration::from_secs(1);
        assert!(l.admit_record(5000), "a record larger than the budget fits an empty window");
    }

    #[test]
    fn faults_are_repeatable_with_a_seed() {
        let rolls = |seed| {
            let mut f = Faults::new(0.3, Some(seed));
            (0..1000).map(|_| f.roll()).collect::<Vec<_>>()
        };
        assert_eq!(rolls(7), rolls(7));
        let failed = rolls(7).iter().filter(|r| r.is_some()).count();
        assert!((200..400).contains(&failed), "{failed}");
        assert!(Faults::new(0.0, None).roll().is_none());
    }
}
