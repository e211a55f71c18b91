//! Direct Put throughput quotas and injected faults.
//!
//! A quota is three token buckets per stream (MiB/s, requests/s, records/s; aws-facts.md §5), each holding at
//! most one second of budget. A request over the request budget fails whole with `ServiceUnavailableException`;
//! records over the record or byte budget fail one by one inside a 200 response, as real Firehose does.

use std::str::FromStr;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Per-stream throughput limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub bytes_per_sec: f64,
    pub requests_per_sec: f64,
    pub records_per_sec: f64,
}

impl Quota {
    /// us-east-1, us-west-2, eu-west-1: 5 MiB/s, 2,000 requests/s, 500,000 records/s.
    pub const BIG_REGIONS: Quota =
        Quota { bytes_per_sec: 5.0 * 1024.0 * 1024.0, requests_per_sec: 2000.0, records_per_sec: 500_000.0 };
    /// Every other Region, us-east-2 included: 1 MiB/s, 1,000 requests/s, 100,000 records/s.
    pub const OTHER_REGIONS: Quota =
        Quota { bytes_per_sec: 1024.0 * 1024.0, requests_per_sec: 1000.0, records_per_sec: 100_000.0 };
}

/// The `--quota` option: a region's documented default, explicit numbers, or none.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QuotaSpec(pub Option<Quota>);

impl FromStr for QuotaSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" | "off" => return Ok(QuotaSpec(None)),
            "us-east-1" | "us-west-2" | "eu-west-1" => {
                return Ok(QuotaSpec(Some(Quota::BIG_REGIONS)));
            }
            _ => {}
        }
        let parts: Vec<&str> = s.split(',').collect();
        if let [mib, req, rec] = parts[..] {
            let num = |x: &str| x.trim().parse::<f64>().ok().filter(|v| *v > 0.0);
            if let (Some(mib), Some(req), Some(rec)) = (num(mib), num(req), num(rec)) {
                return Ok(QuotaSpec(Some(Quota {
                    bytes_per_sec: mib * 1024.0 * 1024.0,
                    requests_per_sec: req,
                    records_per_sec: rec,
                })));
            }
            return Err(format!("`{s}`: expected three positive numbers MiB/s,requests/s,records/s"));
        }
        if s.len() > 4 && s.chars().filter(|c| *c == '-').count() == 2 {
            // Any other region name: the quota of "all other Regions".
            return Ok(QuotaSpec(Some(Quota::OTHER_REGIONS)));
        }
        Err(format!("`{s}`: expected a region (us-east-1, us-east-2, ...), `none`, or MiB/s,requests/s,records/s"))
    }
}

struct TokenBucket {
    rate: f64,
    tokens: f64,
}

impl TokenBucket {
    fn new(rate: f64) -> Self {
        TokenBucket { rate, tokens: rate }
    }

    fn refill(&mut self, seconds: f64) {
        self.tokens = (self.tokens + self.rate * seconds).min(self.rate);
    }
}

/// A stream's live quota state.
pub struct Limiter {
    bytes: TokenBucket,
    requests: TokenBucket,
    records: TokenBucket,
    last: Instant,
}

impl Limiter {
    pub fn new(quota: Quota) -> Self {
        Limiter {
            bytes: TokenBucket::new(quota.bytes_per_sec),
            requests: TokenBucket::new(quota.requests_per_sec),
            records: TokenBucket::new(quota.records_per_sec),
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let seconds = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.bytes.refill(seconds);
        self.requests.refill(seconds);
        self.records.refill(seconds);
    }

    /// Takes one request from the budget; `false` means the whole call is throttled.
    pub fn admit_request(&mut self) -> bool {
        self.refill();
        if self.requests.tokens >= 1.0 {
            self.requests.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes one record of `size` bytes from the budget; `false` means this record is throttled.
    pub fn admit_record(&mut self, size: usize) -> bool {
        let size = size as f64;
        if self.records.tokens >= 1.0 && self.bytes.tokens >= size {
            self.records.tokens -= 1.0;
            self.bytes.tokens -= size;
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
    fn limiter_admits_one_second_of_budget_then_refuses() {
        let mut l = Limiter::new(Quota { bytes_per_sec: 1000.0, requests_per_sec: 2.0, records_per_sec: 5.0 });
        assert!(l.admit_request());
        assert!(l.admit_request());
        assert!(!l.admit_request());
        assert!(l.admit_record(600));
        assert!(!l.admit_record(600), "bytes budget spent");
        assert!(l.admit_record(400));
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
