//! The embedded emulator's contract with its clients, in one place: where it listens by default, the
//! credentials it accepts, the account it reports, and the response headers it adds to AWS's (which AWS never
//! sends, so a client that reads them learns nothing false on AWS). Both the emulator and the CLI use these.

/// The emulator's default listen address, as LocalStack's.
pub const DEFAULT_ADDR: &str = "127.0.0.1:4566";
/// `--local`: the endpoint of an emulator on [`DEFAULT_ADDR`].
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4566";
/// The account id the emulator reports by default.
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";
/// The secret every request must be signed with by default (any access key id is accepted).
pub const DEFAULT_SECRET: &str = "test";
/// The access key id firehose-kit signs with against the emulator (any is accepted).
pub const TEST_ACCESS_KEY: &str = "test";

/// `local --speed N`: every answer says how much faster than AWS intervals and delays run, when not 1.
pub const SPEED_HEADER: &str = "x-firehose-kit-speed";
/// The emulator's last storage error (a full disk, say) of the past few minutes, on every Firehose answer:
/// `<RFC 3339 time> <stream>: <what failed>`.
pub const STORAGE_ERROR_HEADER: &str = "x-firehose-kit-storage-error";
/// `local --delivery-retry-horizon`: how long undeliverable data is retried before it is dropped, in seconds,
/// on every answer when it is not AWS's 24 hours.
pub const RETRY_HORIZON_HEADER: &str = "x-firehose-kit-retry-horizon";
/// On DescribeDeliveryStream of a stream reading a Kinesis data stream: how far behind the data stream's newest
/// record Firehose's reading is, in milliseconds (AWS publishes it as a CloudWatch metric only).
pub const SOURCE_LAG_HEADER: &str = "x-firehose-kit-source-millis-behind";
/// How long a storage error is announced after it happened.
pub const STORAGE_ERROR_ANNOUNCED_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// A header value for a storage error: printable ASCII only (other characters become `?`), at most 512 bytes.
pub fn storage_error_header(at: chrono::DateTime<chrono::Utc>, stream: &str, what: &str) -> String {
    let text = format!("{} {stream}: {what}", at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    text.chars().map(|c| if (' '..='~').contains(&c) { c } else { '?' }).take(512).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn storage_error_headers_are_printable_ascii() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let h = super::storage_error_header(at, "S", "No space left on device — écrit\n");
        assert!(h.starts_with("2027-01-15T08:00:00Z S: No space left on device"), "{h}");
        assert!(h.bytes().all(|b| (b' '..=b'~').contains(&b)), "{h}");
    }
}
