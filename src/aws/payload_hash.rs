//! SigV4 payload hashing with an optimized SHA-256 (`crate::util::hash`).
//!
//! The SDK's signer hashes each request body with the pure-Rust `sha2` crate, which is fast only on CPUs with
//! the SHA extensions; on many x86 servers (Skylake, Cascade Lake) its portable fallback is most of what `send`
//! spends its CPU on. [`PrecomputedPayloadHash`] hashes the body first with aws-lc's SHA-256 (AVX2/AVX/SSSE3
//! code and the SHA extensions where present, and the ARMv8 crypto instructions) and hands the signer the
//! digest, so the signature is byte-for-byte what the SDK would compute, at a fraction of the CPU.

use aws_runtime::auth::PayloadSigningOverride;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::util::hash::sha256_hex;

/// An SDK interceptor that precomputes the SigV4 payload hash of in-memory bodies (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct PrecomputedPayloadHash;

impl Intercept for PrecomputedPayloadHash {
    fn name(&self) -> &'static str {
        "PrecomputedPayloadHash"
    }

    fn read_before_signing(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(body) = context.request().body().bytes() {
            cfg.interceptor_state().store_put(PayloadSigningOverride::Precomputed(sha256_hex(body)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime};

    use aws_sdk_firehose::primitives::Blob;
    use aws_sdk_firehose::types::Record;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_smithy_runtime_api::client::identity::Identity;
    use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;

    use super::*;

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000)
    }

    /// The signer alone: the same request signed over its bytes (what the SDK does) and over the precomputed
    /// hash gives the same signature.
    #[test]
    fn a_precomputed_hash_signs_exactly_like_the_body() {
        let identity: Identity = aws_credential_types::Credentials::new("AKID", "secret", None, None, "t").into();
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let headers =
            [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "Firehose_20150804.PutRecordBatch")];
        let signature = |signable: SignableBody<'_>| {
            let params = aws_sigv4::sign::v4::SigningParams::builder()
                .identity(&identity)
                .region("us-east-2")
                .name("firehose")
                .time(at())
                .settings(SigningSettings::default())
                .build()
                .unwrap()
                .into();
            let request = SignableRequest::new(
                "POST",
                "https://firehose.us-east-2.amazonaws.com/",
                headers.into_iter(),
                signable,
            )
            .unwrap();
            sign(request, &params).unwrap().into_parts().1
        };
        let by_body = signature(SignableBody::Bytes(&body));
        assert_eq!(signature(SignableBody::Precomputed(sha256_hex(&body))), by_body);
        assert_ne!(signature(SignableBody::Precomputed(sha256_hex(b"other"))), by_body);
    }

    /// Pins what is random per call, so two calls sign the same bytes.
    #[derive(Debug)]
    struct Pin;

    impl Intercept for Pin {
        fn name(&self) -> &'static str {
            "Pin"
        }
        fn modify_before_signing(
            &self,
            context: &mut BeforeTransmitInterceptorContextMut<'_>,
            _: &RuntimeComponents,
            _: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let headers = context.request_mut().headers_mut();
            headers.insert("amz-sdk-invocation-id", "00000000-0000-0000-0000-000000000000");
            headers.insert("amz-sdk-request", "attempt=1; max=1");
            Ok(())
        }
    }

    /// A wrong precomputed hash, to show that the override is what the signer uses.
    #[derive(Debug)]
    struct WrongHash;

    impl Intercept for WrongHash {
        fn name(&self) -> &'static str {
            "WrongHash"
        }
        fn read_before_signing(
            &self,
            _: &BeforeTransmitInterceptorContextRef<'_>,
            _: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            cfg.interceptor_state().store_put(PayloadSigningOverride::Precomputed("0".repeat(64)));
            Ok(())
        }
    }

    /// Records the Authorization header and stops the call before it is sent.
    #[derive(Debug, Clone, Default)]
    struct Capture(Arc<Mutex<Vec<String>>>);

    impl Intercept for Capture {
        fn name(&self) -> &'static str {
            "Capture"
        }
        fn read_before_transmit(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _: &RuntimeComponents,
            _: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let auth = context.request().headers().get("authorization").unwrap_or_default().to_string();
            self.0.lock().unwrap().push(auth);
            Err("captured".into())
        }
    }

    /// The SDK client with the interceptor sends the same Authorization header as without it.
    #[tokio::test]
    async fn the_client_sends_the_signature_the_sdk_would() {
        let capture = Capture::default();
        let client =
            |hash: Option<Box<dyn Fn(aws_sdk_firehose::config::Builder) -> aws_sdk_firehose::config::Builder>>| {
                let mut builder = aws_sdk_firehose::config::Builder::new()
                    .behavior_version(aws_sdk_firehose::config::BehaviorVersion::latest())
                    .region(aws_sdk_firehose::config::Region::new("us-east-2"))
                    .endpoint_url("http://127.0.0.1:9")
                    .credentials_provider(aws_credential_types::Credentials::new("AKID", "secret", None, None, "t"))
                    .time_source(aws_smithy_async::time::StaticTimeSource::new(at()))
                    .retry_config(aws_sdk_firehose::config::retry::RetryConfig::disabled())
                    .interceptor(Pin);
                if let Some(add) = hash {
                    builder = add(builder);
                }
                aws_sdk_firehose::Client::from_conf(builder.interceptor(capture.clone()).build())
            };
        let records: Vec<Record> =
            (0..100).map(|i| Record::builder().data(Blob::new(vec![i as u8; 10_000])).build().unwrap()).collect();
        let send = |c: aws_sdk_firehose::Client| {
            let records = records.clone();
            async move { c.put_record_batch().delivery_stream_name("S").set_records(Some(records)).send().await }
        };
        assert!(send(client(None)).await.is_err());
        assert!(send(client(Some(Box::new(|b| b.interceptor(PrecomputedPayloadHash))))).await.is_err());
        assert!(send(client(Some(Box::new(|b| b.interceptor(WrongHash))))).await.is_err());
        let seen = capture.0.lock().unwrap().clone();
        assert_eq!(seen.len(), 3);
        assert!(seen[0].starts_with("AWS4-HMAC-SHA256 Credential=AKID/"), "{}", seen[0]);
        assert_eq!(seen[1], seen[0], "the precomputed hash gives the SDK's own signature");
        assert_ne!(seen[2], seen[0], "the signer really uses the precomputed hash");
    }
}
