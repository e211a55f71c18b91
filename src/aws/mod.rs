//! Everything that talks to AWS: SDK clients built from one `SdkConfig`, thin wrappers per service
//! (`firehose`, `s3`, `iam`, `logs`, `glue`, ...), the policy documents setup renders (`policy`), and the mapping of SDK errors to
//! firehose-kit errors with a hint (`error`).
//!
//! Retry ownership: control-plane calls use the SDK's standard retry (3 attempts, jittered backoff) for
//! throttling, 5xx and timeouts. `PutRecordBatch` goes through [`Clients::put`], a Firehose client with SDK
//! retries disabled, because `send`'s own loop retries both whole-call failures and failed entries: a call is
//! never retried at two levels.

pub mod access;
pub mod diagnosis;
pub mod emulator_headers;
pub mod error;
pub mod firehose;
pub mod glue;
pub mod iam;
pub mod kinesis;
pub mod lambda;
pub mod logs;
pub mod payload_hash;
pub mod policy;
pub mod put;
pub mod s3;

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};

pub use self::error::sdk_error;
use crate::error::Result;
use crate::settings::{Connection, DEFAULT_REGION};

/// Credentials the embedded emulator accepts (any access key id, secret `test`).
pub use crate::firehose::contract::{DEFAULT_SECRET as TEST_SECRET_KEY, TEST_ACCESS_KEY};

/// How long one PutRecordBatch attempt may take before `send` treats it as failed and retries it.
const PUT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// SDK clients sharing one configuration.
#[derive(Clone, Debug)]
pub struct Clients {
    pub firehose: aws_sdk_firehose::Client,
    /// Firehose client for PutRecordBatch: no SDK retries (send's loop owns them), bounded attempt time.
    pub put: aws_sdk_firehose::Client,
    pub s3: aws_sdk_s3::Client,
    pub iam: aws_sdk_iam::Client,
    /// CloudWatch Logs: the stream's error log.
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// Lambda: the transformation function setup deploys.
    pub lambda: aws_sdk_lambda::Client,
    /// Glue Data Catalog: the table that types a converting stream's Parquet.
    pub glue: aws_sdk_glue::Client,
    /// Kinesis Data Streams: a chained pipeline's source stream (control plane, with the SDK's retries).
    pub kinesis: aws_sdk_kinesis::Client,
    /// Kinesis client for PutRecords: no SDK retries (send's loop owns them), bounded attempt time.
    pub kinesis_put: aws_sdk_kinesis::Client,
    pub sts: aws_sdk_sts::Client,
    pub region: String,
    pub endpoint_url: Option<String>,
    /// The speed a `firehose-kit local --speed N` endpoint reported (1: real timing).
    pub emulator: emulator_headers::EmulatorHeaders,
}

impl Clients {
    /// Builds clients from the standard credential chain (or test credentials), the resolved region and an
    /// optional custom endpoint. S3 uses path-style addressing on a custom endpoint.
    pub async fn connect(conn: &Connection) -> Result<Self> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &conn.profile {
            loader = loader.profile_name(profile);
        }
        let region = match &conn.region {
            Some(r) => RegionProviderChain::first_try(Region::new(r.clone())),
            None => {
                let mut profile_region = aws_config::profile::ProfileFileRegionProvider::builder();
                if let Some(profile) = &conn.profile {
                    profile_region = profile_region.profile_name(profile);
                }
                RegionProviderChain::first_try(profile_region.build()).or_else(Region::new(DEFAULT_REGION))
            }
        };
        loader = loader.region(region);
        if let Some(url) = &conn.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if conn.test_credentials {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                TEST_ACCESS_KEY,
                TEST_SECRET_KEY,
                None,
                None,
                "firehose-kit-test-credentials",
            ));
        }
        loader = loader.retry_config(RetryConfig::standard().with_max_attempts(3));
        let config = loader.load().await;
        let region = config.region().map(|r| r.to_string()).unwrap_or_else(|| DEFAULT_REGION.into());

        let s3_config =
            aws_sdk_s3::config::Builder::from(&config).force_path_style(conn.endpoint_url.is_some()).build();
        // Firehose request bodies are JSON in memory: their SigV4 payload hash is computed with the fast SHA-256.
        let emulator = emulator_headers::EmulatorHeaders::default();
        let put_config = aws_sdk_firehose::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(PUT_ATTEMPT_TIMEOUT).build())
            .interceptor(payload_hash::PrecomputedPayloadHash)
            .interceptor(emulator.clone())
            .build();
        let firehose_config = aws_sdk_firehose::config::Builder::from(&config)
            .interceptor(payload_hash::PrecomputedPayloadHash)
            .interceptor(emulator.clone())
            .build();
        let kinesis_put_config = aws_sdk_kinesis::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(PUT_ATTEMPT_TIMEOUT).build())
            .interceptor(payload_hash::PrecomputedPayloadHash)
            .interceptor(emulator.clone())
            .build();
        let kinesis_config = aws_sdk_kinesis::config::Builder::from(&config).interceptor(emulator.clone()).build();
        Ok(Clients {
            kinesis: aws_sdk_kinesis::Client::from_conf(kinesis_config),
            kinesis_put: aws_sdk_kinesis::Client::from_conf(kinesis_put_config),
            firehose: aws_sdk_firehose::Client::from_conf(firehose_config),
            put: aws_sdk_firehose::Client::from_conf(put_config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            iam: aws_sdk_iam::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            glue: aws_sdk_glue::Client::new(&config),
            sts: aws_sdk_sts::Client::new(&config),
            region,
            endpoint_url: conn.endpoint_url.clone(),
            emulator,
        })
    }

    /// The caller's account id (STS GetCallerIdentity).
    pub async fn account_id(&self) -> Result<String> {
        let out =
            self.sts.get_caller_identity().send().await.map_err(|e| sdk_error("get the caller identity (STS)", e))?;
        Ok(out.account.unwrap_or_default())
    }

    /// The AWS partition of this region: `aws`, `aws-cn` or `aws-us-gov`.
    pub fn partition(&self) -> &'static str {
        crate::firehose::names::arn_partition(&self.region)
    }

    /// "AWS" or the custom endpoint, for messages.
    pub fn backend(&self) -> String {
        match &self.endpoint_url {
            Some(url) => format!("{url} ({})", self.region),
            None => format!("AWS {}", self.region),
        }
    }
}

/// Percent-decodes an IAM policy document (IAM returns them URL-encoded and the SDK does not decode them).
pub fn decode_policy_document(doc: &str) -> String {
    percent_encoding::percent_decode_str(doc).decode_utf8_lossy().into_owned()
}
