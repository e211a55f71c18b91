//! Delivery failures as Firehose reports them: the error codes and messages of its CloudWatch Logs error
//! events, the event document itself, the names error logging uses, and how long failed data is retried.
//!
//! Firehose retries a failing S3 delivery for up to 24 hours (its maximum data retention) and then drops the
//! data; nothing goes to the error output prefix for plain delivery failures. Describe does not surface these
//! failures: they are visible only in the stream's error log (when `CloudWatchLoggingOptions` is enabled) and
//! in metrics. The codes and messages below are the ones the Firehose developer guide lists for S3
//! ("Monitoring with CloudWatch Logs"); see `docs/troubleshooting.md`.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long Firehose keeps retrying data it cannot deliver to S3 before dropping it.
pub const RETRY_HORIZON: Duration = Duration::from_secs(24 * 3600);

/// The log group the console creates for a stream's error logs, and setup too.
pub fn default_log_group(stream: &str) -> String {
    format!("/aws/kinesisfirehose/{stream}")
}

/// The log stream current console-created streams use for the destination's errors.
pub const DEFAULT_LOG_STREAM: &str = "DestinationDelivery";

/// Retention values CloudWatch Logs accepts for `PutRetentionPolicy` (days).
pub const RETENTION_DAYS: [i32; 22] =
    [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// A delivery error code and AWS's message for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub code: &'static str,
    pub message: &'static str,
    /// What to do about it, in our words.
    pub hint: &'static str,
}

/// The S3 delivery error codes Firehose writes to its error log, with their messages.
pub const CODES: [Code; 10] = [
    Code {
        code: "S3.AccessDenied",
        message: "Access was denied. Ensure that the trust policy for the provided IAM role allows Kinesis Data Firehose to assume the role, and the access policy allows access to the S3 bucket.",
        hint: "the delivery role may not write to the bucket: restore s3:PutObject on the bucket's objects (re-run `firehose-kit setup` to restore the role it made)",
    },
    Code {
        code: "S3.NoSuchBucket",
        message: "The specified bucket does not exist. Create the bucket or use a different bucket that does exist.",
        hint: "the destination bucket is gone: recreate it (re-run `firehose-kit setup`) before the retained data is dropped",
    },
    Code {
        code: "S3.KMS.NotFoundException",
        message: "The provided AWS KMS key was not found. If you are using what you believe to be a valid AWS KMS key with the correct role, check if there is a problem with the account to which the AWS KMS key is attached.",
        hint: "the bucket's KMS key does not exist: fix the bucket's default encryption or the stream's KMS settings",
    },
    Code {
        code: "S3.KMS.RequestLimitExceeded",
        message: "The KMS request per second limit was exceeded while attempting to encrypt S3 objects. Increase the request per second limit.",
        hint: "KMS is throttling: raise the KMS request quota or use an S3 bucket key",
    },
    Code {
        code: "S3.AccountProblem",
        message: "There is a problem with your AWS account that prevents the operation from completing successfully. Contact AWS Support.",
        hint: "contact AWS Support",
    },
    Code {
        code: "S3.AllAccessDisabled",
        message: "Access to the account provided has been disabled. Contact AWS Support.",
        hint: "contact AWS Support",
    },
    Code {
        code: "S3.InvalidPayer",
        message: "Access to the account provided has been disabled. Contact AWS Support.",
        hint: "contact AWS Support",
    },
    Code {
        code: "S3.NotSignedUp",
        message: "The account is not signed up for Amazon S3. Sign the account up or use a different account.",
        hint: "sign the account up for S3 or deliver to another account's bucket",
    },
    Code {
        code: "S3.MethodNotAllowed",
        message: "The specified method is not allowed against this resource. Modify the bucket's policy to allow the correct Amazon S3 operation permissions.",
        hint: "the bucket policy refuses the call: allow s3:PutObject for the delivery role",
    },
    Code {
        code: "InternalError",
        message: "An internal error occurred while attempting to deliver data. Delivery will be retried; if the error persists, then it will be reported to AWS for resolution.",
        hint: "a transient Firehose error: delivery is retried; nothing to fix unless it persists",
    },
];

/// The data-transformation error codes Firehose writes to the same error log (and into each record's
/// processing-failed document), with the messages the developer guide gives.
pub const LAMBDA_CODES: [Code; 9] = [
    Code {
        code: "Lambda.FunctionError",
        message: "The Lambda function was successfully invoked but it returned an error result.",
        hint: "the transformation function raised an error or timed out: read its log group (/aws/lambda/<function>) and fix the function",
    },
    Code {
        code: "Lambda.InvokeAccessDenied",
        message: "Access was denied. Ensure that the access policy allows access to the Lambda function.",
        hint: "the delivery role may not invoke the function: allow lambda:InvokeFunction on its qualified ARN (re-run `firehose-kit setup --transform ...` to restore setup's grant)",
    },
    Code {
        code: "Lambda.AssumeRoleAccessDenied",
        message: "Access was denied. Ensure that the trust policy for the provided IAM role allows Kinesis Data Firehose to assume the role.",
        hint: "the processor's role does not trust firehose.amazonaws.com: fix its trust policy",
    },
    Code {
        code: "Lambda.ResourceNotFound",
        message: "The specified Lambda function does not exist. Use a different function that does exist.",
        hint: "the transformation function is gone: deploy it again (re-run `firehose-kit setup --transform ...`)",
    },
    Code {
        code: "Lambda.JsonProcessingException",
        message: "There was an error parsing returned records from the Lambda function. Ensure that the returned records follow the status model required by Kinesis Data Firehose.",
        hint: r#"the function must answer {"records": [{"recordId", "result": Ok|Dropped|ProcessingFailed, "data": base64}]}"#,
    },
    Code {
        code: "Lambda.MissingRecordId",
        message: "One or more record IDs were not returned. Ensure that the Lambda function returns all received record IDs.",
        hint: "the function must answer every recordId it was given, once",
    },
    Code {
        code: "Lambda.DuplicatedRecordId",
        message: "Multiple records were returned with the same record ID. Ensure that the Lambda function returns unique record IDs for each record.",
        hint: "the function must answer every recordId it was given, once",
    },
    Code {
        code: "Lambda.ProcessingFailedStatus",
        message: "ProcessingFailed status set for record",
        hint: "the function marked these records ProcessingFailed: they are in the processing-failed error output with their original data",
    },
    Code {
        code: "Lambda.InvokeLimitExceeded",
        message: "The Lambda concurrent execution limit is exceeded. Increase the concurrent execution limit.",
        hint: "raise the function's concurrency limit",
    },
];

/// The error codes Firehose logs when it cannot read its Kinesis source.
pub const SOURCE_CODES: [Code; 1] = [Code {
    code: "Kinesis.AccessDenied",
    message: "Access was denied when calling Kinesis. Ensure that the access policy on the IAM role used allows access to the appropriate Kinesis APIs.",
    hint: "the delivery role may not read the source stream: allow kinesis:DescribeStream, GetShardIterator, GetRecords and ListShards on it (re-run `firehose-kit setup --source kinesis` to restore setup's grant)",
}];

/// The error codes the emulator logs when a converting stream cannot read its Glue table (**chosen**: AWS documents
/// the conversion's per-record codes, not these).
pub const CONVERSION_CODES: [Code; 2] = [
    Code {
        code: "DataFormatConversion.AccessDenied",
        message: "Access was denied when calling Glue. Ensure that the access policy on the IAM role in the SchemaConfiguration allows glue:GetTable, glue:GetTableVersion and glue:GetTableVersions.",
        hint: "the conversion's role may not read the Glue table: allow glue:GetTable, GetTableVersion and GetTableVersions on it (re-run `firehose-kit setup --format parquet` to restore setup's grant); the data is kept and retried",
    },
    Code {
        code: "DataFormatConversion.EntityNotFound",
        message: "The Glue table of the data format conversion was not found, or has a column type that cannot be converted.",
        hint: "create the Glue table the stream's SchemaConfiguration names, or fix its columns (`firehose-kit setup --format parquet` restores setup's table); the data is kept and retried",
    },
];

/// `--fail-delivery CODE[:P]`: delivery attempts fail with `code` with probability `probability`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailDelivery {
    pub code: &'static Code,
    pub probability: f64,
}

impl FromStr for FailDelivery {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, p) = match s.rsplit_once(':') {
            Some((name, p)) => {
                let p: f64 = p.parse().map_err(|_| format!("`{p}` is not a probability (expected 0 < P <= 1)"))?;
                (name, p)
            }
            None => (s, 1.0),
        };
        if !(p > 0.0 && p <= 1.0) {
            return Err(format!("the probability must be in (0, 1], got {p}"));
        }
        let code = CODES.iter().find(|c| c.code == name).ok_or_else(|| {
            let known: Vec<&str> = CODES.iter().map(|c| c.code).collect();
            format!("`{name}` is not a delivery error code (expected one of {})", known.join(", "))
        })?;
        Ok(FailDelivery { code, probability: p })
    }
}

/// The entry for `code`, if it is one Firehose documents (delivery, transformation or source).
pub fn code(code: &str) -> Option<&'static Code> {
    CODES
        .iter()
        .chain(LAMBDA_CODES.iter())
        .chain(SOURCE_CODES.iter())
        .chain(CONVERSION_CODES.iter())
        .find(|c| c.code == code)
}

/// One error log event, as Firehose writes it to CloudWatch Logs (one JSON document per event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    #[serde(rename = "deliveryStreamARN")]
    pub delivery_stream_arn: String,
    pub destination: String,
    #[serde(rename = "deliveryStreamVersionId")]
    pub delivery_stream_version_id: u64,
    pub message: String,
    #[serde(rename = "errorCode")]
    pub error_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processor: Option<String>,
}

impl ErrorEvent {
    /// Parses a log event's message; `None` if it is not a Firehose error event.
    pub fn parse(message: &str) -> Option<Self> {
        serde_json::from_str(message).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_document_matches_aws() {
        let aws = r#"{"deliveryStreamARN":"arn:aws:firehose:us-east-1:017300000000:deliverystream/n","destination":"arn:aws:s3:::b","deliveryStreamVersionId":1,"message":"Access was denied.","errorCode":"S3.AccessDenied"}"#;
        let event = ErrorEvent::parse(aws).unwrap();
        assert_eq!(event.delivery_stream_version_id, 1);
        assert_eq!(serde_json::to_string(&event).unwrap(), aws);
        assert!(ErrorEvent::parse("not json").is_none());
    }

    #[test]
    fn every_code_has_a_message_and_a_hint() {
        for c in CODES.iter().chain(LAMBDA_CODES.iter()).copied() {
            assert!(!c.message.is_empty() && !c.hint.is_empty(), "{}", c.code);
            assert_eq!(code(c.code), Some(&c));
        }
        assert!(code("S3.Nope").is_none());
        assert_eq!(default_log_group("s"), "/aws/kinesisfirehose/s");
    }
}
