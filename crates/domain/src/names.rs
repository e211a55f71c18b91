//! Naming rules: delivery streams, S3 buckets, and the ARN partition of a region.

/// The model pattern of `DeliveryStreamName`.
pub const STREAM_NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";

/// Why `name` is not a valid delivery stream name (1–64 of `[a-zA-Z0-9_.-]`), or `None`.
pub fn stream_name_problem(name: &str) -> Option<&'static str> {
    if !(1..=64).contains(&name.len()) {
        return Some("expected 1 to 64 characters");
    }
    if !name.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c)) {
        return Some("only a-z A-Z 0-9 _ . - are allowed");
    }
    None
}

/// Why `name` is not a valid general-purpose S3 bucket name, or `None`. The rules of S3's "bucket naming
/// rules" page: 3–63 of lowercase letters, digits, `.` and `-`; starts and ends with a letter or digit; no
/// `..`; not an IPv4 address; none of the reserved prefixes and suffixes.
pub fn bucket_name_problem(name: &str) -> Option<String> {
    if !(3..=63).contains(&name.len()) {
        return Some("expected 3 to 63 characters".into());
    }
    if !name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-') {
        return Some("only lowercase letters, digits, `.` and `-` are allowed".into());
    }
    let bytes = name.as_bytes();
    if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Some("it must start and end with a letter or digit".into());
    }
    if name.contains("..") {
        return Some("adjacent periods are not allowed".into());
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some("it must not look like an IP address".into());
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return Some(format!("it must not start with `{prefix}`"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3"] {
        if name.ends_with(suffix) {
            return Some(format!("it must not end with `{suffix}`"));
        }
    }
    None
}

/// The ARN partition a region belongs to: `aws-cn` for China, `aws-us-gov` for GovCloud, else `aws`.
pub fn arn_partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The bucket name of an S3 bucket ARN (`arn:<partition>:s3:::<bucket>`); the text itself when it is not one.
pub fn bucket_of_arn(arn: &str) -> &str {
    arn.rsplit(":::").next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_follow_the_model_pattern() {
        assert_eq!(stream_name_problem("Apache_Logs-1.x"), None);
        for bad in ["", "has space", "slash/", &"a".repeat(65), "é"] {
            assert!(stream_name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn bucket_rules() {
        assert_eq!(bucket_name_problem("firehose-kit-000000000000-us-east-2"), None);
        for bad in ["xn--abc", "abc-s3alias", "a", "10.0.0.1", "UPPER", "a..b", "-abc", "abc-", "ümlaut"] {
            assert!(bucket_name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn partitions() {
        assert_eq!(arn_partition("us-east-2"), "aws");
        assert_eq!(arn_partition("cn-north-1"), "aws-cn");
        assert_eq!(arn_partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(bucket_of_arn("arn:aws-cn:s3:::b1"), "b1");
    }
}
