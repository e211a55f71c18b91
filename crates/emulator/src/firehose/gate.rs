//! What a delivery attempt must pass before an object is written, as S3 and IAM would decide it, and where its
//! failures go:
//!
//! 1. injected faults (`local --fail-delivery CODE[:P]`);
//! 2. the role exists and still trusts `firehose.amazonaws.com` with the account as `sts:ExternalId`;
//! 3. the bucket exists (`S3.NoSuchBucket`; without permission to write it S3 says `S3.AccessDenied` first);
//! 4. the role's identity policies, or the bucket policy, allow `s3:PutObject` on the object's ARN and no
//!    statement of either denies it (evaluated by [`firehose_kit_domain::access`]).
//!
//! A failure is written as an error event to the stream's CloudWatch Logs group and stream when
//! `CloudWatchLoggingOptions` is enabled, the group and stream exist, and the role may `logs:PutLogEvents` on
//! that stream, as Firehose does; otherwise it is only counted and traced. Every check reads IAM, S3 and Logs
//! as they are at that attempt, so a repaired role or a recreated bucket takes effect on the next retry.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::target::Target;
use crate::iam::Iam;
use crate::logs::Logs;
use crate::s3::Store;
use firehose_kit_domain::access::{self, Decision, Request};
use firehose_kit_domain::failures::{self, Code, ErrorEvent};
use firehose_kit_domain::names::arn_partition;
use std::sync::Arc;

pub use firehose_kit_domain::failures::FailDelivery;

/// Why an attempt failed: the code Firehose would log, and what exactly the emulator found.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: &'static Code,
    pub detail: String,
    /// The function a transformation failure is about (its error event names it).
    pub processor: Option<String>,
}

impl Failure {
    pub fn new(code: &str, detail: impl Into<String>) -> Self {
        let code = failures::code(code).unwrap_or(&failures::CODES[9]);
        Failure { code, detail: detail.into(), processor: None }
    }

    /// A transformation failure of the function `lambda_arn`.
    pub fn of_processor(code: &str, detail: impl Into<String>, lambda_arn: &str) -> Self {
        Failure { processor: Some(lambda_arn.to_string()), ..Failure::new(code, detail) }
    }
}

/// The delivery checks, failure accounting and error logging shared by every stream of the emulator.
pub struct Gate {
    pub iam: Arc<Iam>,
    pub logs: Arc<Logs>,
    pub account_id: String,
    pub fail: Option<FailDelivery>,
    rng: Mutex<SmallRng>,
    /// Failed delivery attempts.
    pub failures: AtomicU64,
    /// Records dropped after the retry horizon.
    pub dropped_records: AtomicU64,
    /// Error events written to CloudWatch Logs.
    pub logged: AtomicU64,
    /// The emulator's own storage failures (journal appends, object writes).
    pub storage: super::storage::StorageErrors,
}

impl Gate {
    pub fn new(
        iam: Arc<Iam>,
        logs: Arc<Logs>,
        account_id: String,
        fail: Option<FailDelivery>,
        seed: Option<u64>,
    ) -> Self {
        let rng = seed.map(SmallRng::seed_from_u64).unwrap_or_else(|| SmallRng::from_rng(&mut rand::rng()));
        Gate {
            iam,
            logs,
            account_id,
            fail,
            rng: Mutex::new(rng),
            failures: AtomicU64::new(0),
            dropped_records: AtomicU64::new(0),
            logged: AtomicU64::new(0),
            storage: Default::default(),
        }
    }

    /// Whether the stream's role may write `key` to its bucket now.
    pub fn check(&self, target: &Target, store: &Store, key: &str) -> Result<(), Failure> {
        if let Some(fail) = self.fail
            && crate::lock(&self.rng).random_bool(fail.probability)
        {
            return Err(Failure { code: fail.code, detail: "injected by --fail-delivery".into(), processor: None });
        }
        let denied = |detail: String| Failure::new("S3.AccessDenied", detail);
        let Some(role) = self.iam.role_view(&target.role_arn, &target.region) else {
            return Err(denied(format!("the role {} does not exist", target.role_arn)));
        };
        if !role.trusts_firehose {
            return Err(denied(format!(
                "the trust policy of {} does not let firehose.amazonaws.com assume it (with sts:ExternalId {})",
                target.role_arn, self.account_id
            )));
        }
        let partition = arn_partition(&target.region);
        let object = access::object_arn(partition, &target.bucket, key);
        let context = access::delivery_context(&target.role_arn, &self.account_id);
        let req = Request { action: "s3:PutObject", resource: &object, principal: &target.role_arn, context: &context };
        if !store.bucket_exists(&target.bucket) {
            return if access::evaluate(&role.identity, None, &req).allowed() {
                Err(Failure::new("S3.NoSuchBucket", format!("the bucket {} does not exist", target.bucket)))
            } else {
                Err(denied(format!("the role may not s3:PutObject on {object} (and the bucket does not exist)")))
            };
        }
        let bucket_policy = store
            .bucket_config(&target.bucket)
            .ok()
            .and_then(|c| c.policy)
            .and_then(|doc| access::Policy::parse(&doc).ok());
        match access::evaluate(&role.identity, bucket_policy.as_ref(), &req) {
            Decision::Allow => Ok(()),
            Decision::ImplicitDeny => {
                Err(denied(format!("no policy of {} allows s3:PutObject on {object}", target.role_arn)))
            }
            Decision::ExplicitDeny { sid, in_resource_policy } => Err(denied(format!(
                "s3:PutObject on {object} is denied by statement {} of the {}",
                sid.as_deref().unwrap_or("(no Sid)"),
                if in_resource_policy { "bucket policy" } else { "role's policies" }
            ))),
        }
    }

    /// Counts a failed attempt and writes its error event where the stream logs errors (when it may).
    pub fn record_failure(&self, target: &Target, failure: &Failure) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let Some((group, stream)) = &target.logging else {
            return;
        };
        let partition = arn_partition(&target.region);
        let may_log = self.iam.role_view(&target.role_arn, &target.region).is_some_and(|role| {
            let arn = access::log_stream_arn(partition, &target.region, &self.account_id, group, stream);
            let context = access::delivery_context(&target.role_arn, &self.account_id);
            let req =
                Request { action: "logs:PutLogEvents", resource: &arn, principal: &target.role_arn, context: &context };
            role.trusts_firehose && access::evaluate(&role.identity, None, &req).allowed()
        });
        if !may_log {
            tracing::debug!(stream = %target.stream, "the role may not write to {group}/{stream}: the error is not logged");
            return;
        }
        let event = ErrorEvent {
            delivery_stream_arn: target.stream_arn.clone(),
            destination: format!("arn:{partition}:s3:::{}", target.bucket),
            delivery_stream_version_id: target.version,
            message: failure.code.message.to_string(),
            error_code: failure.code.code.to_string(),
            processor: failure.processor.clone(),
        };
        let text = serde_json::to_string(&event).expect("an error event serializes");
        if self.logs.append(&target.region, group, stream, text) {
            self.logged.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A gate over a fresh IAM whose role `writer` may write any bucket (for the engine's unit tests).
#[cfg(test)]
pub fn test_gate(dir: &std::path::Path, fail: Option<FailDelivery>) -> (Arc<Gate>, String) {
    let iam = Arc::new(Iam::open(dir.join("iam"), "000000000000".into(), std::time::Duration::ZERO).unwrap());
    let trust = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"firehose.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let allow = r#"{"Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"*"}]}"#;
    let enc = |d: &str| percent_encoding::utf8_percent_encode(d, percent_encoding::NON_ALPHANUMERIC).to_string();
    let create = format!("Action=CreateRole&RoleName=writer&AssumeRolePolicyDocument={}", enc(trust));
    assert_eq!(iam.handle_iam(None, create.as_bytes(), "us-east-1", "t").status(), 200);
    let put = format!("Action=PutRolePolicy&RoleName=writer&PolicyName=p&PolicyDocument={}", enc(allow));
    assert_eq!(iam.handle_iam(None, put.as_bytes(), "us-east-1", "t").status(), 200);
    let logs = Arc::new(Logs::open(dir.join("logs"), "000000000000".into()).unwrap());
    let gate = Gate::new(iam, logs, "000000000000".into(), fail, Some(1));
    (Arc::new(gate), "arn:aws:iam::000000000000:role/writer".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_delivery_parses_codes_and_probabilities() {
        let f: FailDelivery = "S3.AccessDenied:0.5".parse().unwrap();
        assert_eq!((f.code.code, f.probability), ("S3.AccessDenied", 0.5));
        assert_eq!("InternalError".parse::<FailDelivery>().unwrap().probability, 1.0);
        for bad in ["S3.Nope", "S3.AccessDenied:0", "S3.AccessDenied:1.5", "S3.AccessDenied:x", ""] {
            assert!(bad.parse::<FailDelivery>().is_err(), "{bad}");
        }
    }
}
