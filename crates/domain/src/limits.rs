//! Firehose's service limits, in one place.
//!
//! The PutRecordBatch size limit is counted differently on purpose by the two sides: the service (and so the
//! emulator) refuses a batch whose records add up to more than [`MAX_BATCH_BYTES`] of data (see
//! [`batch_data_fits`]); `send` counts the same limit on the encoded request ([`encoded_record_size`],
//! [`encoded_batch_overhead`]), which is always larger than the data, so a batch it builds can never fail on size.

use std::ops::RangeInclusive;

/// Largest record: 1,000 KiB of data before base64 (`Record.Data`).
pub const MAX_RECORD_BYTES: usize = 1_024_000;
/// Most records in one PutRecordBatch.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Most data in one PutRecordBatch: 4 MiB.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Most tags on one delivery stream.
pub const MAX_TAGS: usize = 50;
/// Tag keys are 1–128 characters, values at most 256, and keys may not start with `aws:`.
pub const MAX_TAG_KEY_CHARS: usize = 128;
pub const MAX_TAG_VALUE_CHARS: usize = 256;
/// `Prefix` and `ErrorOutputPrefix` before evaluation.
pub const MAX_PREFIX_CHARS: usize = 1024;
/// `FileExtension`.
pub const MAX_FILE_EXTENSION_CHARS: usize = 128;

/// `BufferingHints.SizeInMBs` for an S3 destination, and its default.
pub const BUFFER_SIZE_MIB: RangeInclusive<i64> = 1..=128;
pub const DEFAULT_BUFFER_SIZE_MIB: i64 = 5;
/// `BufferingHints.IntervalInSeconds` for an S3 destination, and its default.
pub const BUFFER_INTERVAL_S: RangeInclusive<i64> = 0..=900;
pub const DEFAULT_BUFFER_INTERVAL_S: i64 = 300;

/// A buffering hint outside its range: which member, and AWS's constraint wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintProblem {
    /// `sizeInMBs` or `intervalInSeconds` (the model's member names).
    pub member: &'static str,
    pub value: i64,
    pub constraint: String,
}

/// Checks buffering hints against their ranges; every problem is returned (AWS lists all violations).
pub fn hint_problems(size_mib: i64, interval_s: i64) -> Vec<HintProblem> {
    let mut out = Vec::new();
    for (member, value, range) in
        [("sizeInMBs", size_mib, BUFFER_SIZE_MIB), ("intervalInSeconds", interval_s, BUFFER_INTERVAL_S)]
    {
        if !range.contains(&value) {
            out.push(HintProblem {
                member,
                value,
                constraint: format!(
                    "Member must have value greater than or equal to {} and less than or equal to {}",
                    range.start(),
                    range.end()
                ),
            });
        }
    }
    out
}

/// Bytes a record of `len` raw bytes adds to a PutRecordBatch request body: `{"Data":"<base64>"},`.
pub fn encoded_record_size(len: usize) -> usize {
    len.div_ceil(3) * 4 + r#"{"Data":""},"#.len()
}

/// Bytes of a PutRecordBatch request body around its records: `{"DeliveryStreamName":"<name>","Records":[` + `]}`.
pub fn encoded_batch_overhead(stream: &str) -> usize {
    r#"{"DeliveryStreamName":"","Records":[]}"#.len() + stream.len()
}

/// Whether records of these data sizes fit one PutRecordBatch as the service counts it.
pub fn batch_data_fits(total_data_bytes: usize) -> bool {
    total_data_bytes <= MAX_BATCH_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_range_checked_and_every_violation_listed() {
        assert!(hint_problems(1, 0).is_empty());
        assert!(hint_problems(128, 900).is_empty());
        assert_eq!(hint_problems(0, 60)[0].member, "sizeInMBs");
        assert_eq!(hint_problems(129, 60).len(), 1);
        assert_eq!(hint_problems(1, 901)[0].member, "intervalInSeconds");
        assert_eq!(hint_problems(0, -1).len(), 2);
    }

    #[test]
    fn the_encoded_size_is_what_the_sdk_sends() {
        use base64::Engine as _;
        for len in [0usize, 1, 2, 3, 4, 1000] {
            let json = format!(r#"{{"Data":"{}"}},"#, base64::engine::general_purpose::STANDARD.encode(vec![0u8; len]));
            assert_eq!(encoded_record_size(len), json.len(), "{len}");
        }
        assert_eq!(encoded_batch_overhead("S"), r#"{"DeliveryStreamName":"S","Records":[]}"#.len());
        // The encoded count is always the stricter one.
        assert!(encoded_record_size(MAX_RECORD_BYTES) > MAX_RECORD_BYTES);
        assert!(batch_data_fits(MAX_BATCH_BYTES) && !batch_data_fits(MAX_BATCH_BYTES + 1));
    }
}
