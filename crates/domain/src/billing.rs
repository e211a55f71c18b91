//! Ingestion pricing's unit: each record is billed rounded up to the next 5 KB, which is why `send` packs lines.

/// The billing increment of Direct Put ingestion.
pub const BILLING_INCREMENT: u64 = 5 * 1024;

/// What a record of `len` bytes is billed as (an empty record still costs one increment).
pub fn billable(len: u64) -> u64 {
    len.div_ceil(BILLING_INCREMENT).max(1) * BILLING_INCREMENT
}

/// Direct Put ingestion, US East (N. Virginia), first 500 TB a month: USD per GB of billable bytes.
pub const INGESTION_USD_PER_GB: f64 = 0.029;
/// Dynamic partitioning, us-east-1: USD per GB delivered and per 1,000 objects delivered. Third-party copies
/// of AWS's pricing page agree on these; they are not checked against it (docs/partitioning.md says so).
pub const DP_USD_PER_GB: f64 = 0.020;
pub const DP_USD_PER_1000_OBJECTS: f64 = 0.005;

/// What a send costs with dynamic partitioning: ingestion of `billable` bytes and partitioning of `raw` bytes
/// (objects are counted at delivery, so their charge is a rate).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PartitionedCost {
    pub ingestion_usd: f64,
    pub partitioning_usd: f64,
    pub per_1000_objects_usd: f64,
}

pub fn partitioned_cost(billable_bytes: u64, raw_bytes: u64) -> PartitionedCost {
    let gb = |b: u64| b as f64 / 1e9;
    PartitionedCost {
        ingestion_usd: gb(billable_bytes) * INGESTION_USD_PER_GB,
        partitioning_usd: gb(raw_bytes) * DP_USD_PER_GB,
        per_1000_objects_usd: DP_USD_PER_1000_OBJECTS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_rounded_up_to_5_kb() {
        assert_eq!(billable(1), 5120);
        assert_eq!(billable(3 * 1024), 5120);
        assert_eq!(billable(12 * 1024), 15 * 1024);
        assert_eq!(billable(42 * 1024), 45 * 1024);
        assert_eq!(billable(5120), 5120);
        assert_eq!(billable(0), 5120, "even an empty record is billed one increment");
    }
}
