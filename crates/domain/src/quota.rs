//! Direct Put throughput quotas per stream, as AWS documents them per region (the figures are in docs/aws.md,
//! "Quotas and throttling"): what the emulator's `--quota` enforces and what a producer must stay under.

use std::str::FromStr;

/// A token bucket holding one second of a rate: what every throughput quota of the emulator meters with (a
/// Firehose stream's bytes, requests and records; a Kinesis shard's writes and reads), so a steady sender under
/// the rate is never refused and a burst is refused as soon as the second's worth is spent.
pub struct Bucket {
    level: f64,
    rate: f64,
    last_ms: i64,
}

impl Bucket {
    pub fn new(rate: f64) -> Self {
        Bucket { level: rate, rate, last_ms: 0 }
    }

    fn refill(&mut self, now_ms: i64) {
        let elapsed = (now_ms - self.last_ms).max(0) as f64 / 1000.0;
        self.level = (self.level + elapsed * self.rate).min(self.rate);
        self.last_ms = now_ms;
    }

    /// Takes `amount` if the bucket holds it.
    pub fn take(&mut self, amount: f64, now_ms: i64) -> bool {
        self.refill(now_ms);
        if self.level >= amount {
            self.level -= amount;
            true
        } else {
            false
        }
    }

    /// Whether the bucket holds a whole second of its rate (nothing was taken for a second).
    pub fn is_full(&mut self, now_ms: i64) -> bool {
        self.refill(now_ms);
        self.level >= self.rate
    }

    /// Returns `amount` taken by a call that was refused after all.
    pub fn give_back(&mut self, amount: f64) {
        self.level = (self.level + amount).min(self.rate);
    }

    /// Whether anything is left; then takes `amount`, possibly going below zero (GetRecords may return more
    /// than is left, and later calls wait for it).
    pub fn take_over(&mut self, amount: f64, now_ms: i64) -> bool {
        self.refill(now_ms);
        if self.level <= 0.0 {
            return false;
        }
        self.level -= amount;
        true
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_per_second() {
        let mut b = Bucket::new(1000.0);
        assert!(b.take(1000.0, 0));
        assert!(!b.take(1.0, 0));
        assert!(b.take(500.0, 500));
        let mut r = Bucket::new(2.0);
        assert!(r.take_over(10.0, 0));
        assert!(!r.take_over(1.0, 1000), "still below zero after a second");
    }

    #[test]
    fn quotas_come_from_regions_or_numbers() {
        assert_eq!("us-east-1".parse::<QuotaSpec>().unwrap().0, Some(Quota::BIG_REGIONS));
        assert_eq!("ap-south-1".parse::<QuotaSpec>().unwrap().0, Some(Quota::OTHER_REGIONS));
        assert_eq!("none".parse::<QuotaSpec>().unwrap().0, None);
        let q = "2,100,1000".parse::<QuotaSpec>().unwrap().0.unwrap();
        assert_eq!((q.bytes_per_sec, q.requests_per_sec, q.records_per_sec), (2.0 * 1048576.0, 100.0, 1000.0));
        assert!("2,x,1".parse::<QuotaSpec>().is_err() && "mars".parse::<QuotaSpec>().is_err());
    }
}
