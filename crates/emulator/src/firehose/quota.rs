//! Direct Put throughput quotas and injected faults.
//!
//! A quota is three per-second rates per stream (MiB/s, requests/s, records/s; the figures per region are in
//! docs/aws.md, "Quotas and throttling"), metered with token buckets holding one second of each (the domain's
//! [`Bucket`], as Kinesis shards meter theirs): a record is admitted while the buckets hold it. A request over the
//! request rate fails whole with `ServiceUnavailableException`; records over the record or byte rate fail one by
//! one inside a 200 response ("Slow down."), as real Firehose does.

pub use firehose_kit_domain::quota::{Bucket, Quota, QuotaSpec};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::s3::store::now_ms;

/// A stream's live quota state.
pub struct Limiter {
    bytes: Bucket,
    requests: Bucket,
    records: Bucket,
}

impl Limiter {
    pub fn new(quota: Quota) -> Self {
        Limiter {
            bytes: Bucket::new(quota.bytes_per_sec),
            requests: Bucket::new(quota.requests_per_sec),
            records: Bucket::new(quota.records_per_sec),
        }
    }

    /// Takes one request from the budget; `false` means the whole call is throttled.
    pub fn admit_request(&mut self) -> bool {
        self.admit_request_at(now_ms())
    }

    /// Takes one record of `size` bytes from the budget; `false` means this record is throttled. A record larger
    /// than the whole byte budget (only with a tiny custom quota) is admitted into a full bucket.
    pub fn admit_record(&mut self, size: usize) -> bool {
        self.admit_record_at(size, now_ms())
    }

    fn admit_request_at(&mut self, now: i64) -> bool {
        self.requests.take(1.0, now)
    }

    fn admit_record_at(&mut self, size: usize, now: i64) -> bool {
        if !self.records.take(1.0, now) {
            return false;
        }
        let size = size as f64;
        if self.bytes.take(size, now) || (self.bytes.is_full(now) && self.bytes.take_over(size, now)) {
            true
        } else {
            self.records.give_back(1.0);
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
    fn limiter_admits_one_second_of_budget_refilled_as_time_passes() {
        let mut l = Limiter::new(Quota { bytes_per_sec: 1000.0, requests_per_sec: 2.0, records_per_sec: 5.0 });
        assert!(l.admit_request_at(0));
        assert!(l.admit_request_at(0));
        assert!(!l.admit_request_at(0));
        assert!(l.admit_request_at(500), "half a second refills one request");
        assert!(l.admit_record_at(600, 0));
        assert!(!l.admit_record_at(600, 0), "bytes budget spent");
        assert!(l.admit_record_at(400, 0));
        assert!(!l.admit_record_at(1, 0), "bytes budget spent");
        assert!(l.admit_record_at(1000, 1000), "a second later, a second's worth");
        assert!(!l.admit_record_at(5000, 1500), "a record larger than the budget waits for a full bucket");
        assert!(l.admit_record_at(5000, 3000), "and fits a full one");
        let mut few = Limiter::new(Quota { bytes_per_sec: 1e9, requests_per_sec: 1.0, records_per_sec: 2.0 });
        assert!(few.admit_record_at(1, 0) && few.admit_record_at(1, 0));
        assert!(!few.admit_record_at(1, 0), "the record budget spent");
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
