//! Ingestion pricing's unit: each record is billed rounded up to the next 5 KB, which is why `send` packs lines.

/// The billing increment of Direct Put ingestion.
pub const BILLING_INCREMENT: u64 = 5 * 1024;

/// What a record of `len` bytes is billed as (an empty record still costs one increment).
pub fn billable(len: u64) -> u64 {
    len.div_ceil(BILLING_INCREMENT).max(1) * BILLING_INCREMENT
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
