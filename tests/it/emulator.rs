//! The embedded emulator driven by the real aws-sdk-rust clients: every operation, its errors, the stream
//! lifecycle, buffering, compression, limits, faults, quotas and durability.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::{Duration, Instant};

use aws_sdk_firehose::types::{BufferingHints, ExtendedS3DestinationUpdate, S3DestinationConfiguration, Tag};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration, Delete,
    ObjectIdentifier, ObjectOwnership, OwnershipControls, OwnershipControlsRule, PublicAccessBlockConfiguration,
    Tagging,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use firehose_kit::firehose::keys::{layout_problems, parse_key};
use firehose_kit_emulator::Quota;

use crate::support::{
    self, ACCOUNT, REGION, active_stream, bucket_and_role, eventually, objects, put_batch, start, start_with,
};

fn constraint() -> CreateBucketConfiguration {
    CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::UsEast2).build()
}

/// Records of `size` bytes, each starting with its index so its identity survives concatenation.
fn records(n: usize, size: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut r = format!("record-{i:06}|").into_bytes();
            r.resize(size, b'a' + (i % 26) as u8);
            r
        })
        .collect()
}

#[tokio::test]
async fn s3_bucket_configuration_round_trips_with_s3_semantics() {
    let env = start().await;
    let s3 = &env.clients.s3;
    s3.create_bucket().bucket("bkt1").create_bucket_configuration(constraint()).send().await.unwrap();
    let again = s3.create_bucket().bucket("bkt1").create_bucket_configuration(constraint()).send().await.unwrap_err();
    assert!(again.as_service_error().unwrap().is_bucket_already_owned_by_you(), "{again:?}");
    let no_constraint = s3.create_bucket().bucket("bkt2").send().await.unwrap_err();
    assert_eq!(no_constraint.code(), Some("IllegalLocationConstraintException"));
    let location = s3.get_bucket_location().bucket("bkt1").send().await.unwrap();
    assert_eq!(location.location_constraint().unwrap().as_str(), "us-east-2");
    s3.head_bucket().bucket("bkt1").send().await.unwrap();
    assert!(s3.head_bucket().bucket("nope").send().await.unwrap_err().as_service_error().unwrap().is_not_found());

    // Tagging, public access block, ownership, encryption, policy: absent first, then as set.
    assert_eq!(s3.get_bucket_tagging().bucket("bkt1").send().await.unwrap_err().code(), Some("NoSuchTagSet"));
    let tag = aws_sdk_s3::types::Tag::builder().key("firehose-kit:managed").value("true").build().unwrap();
    s3.put_bucket_tagging()
        .bucket("bkt1")
        .tagging(Tagging::builder().tag_set(tag).build().unwrap())
        .send()
        .await
        .unwrap();
    let tags = s3.get_bucket_tagging().bucket("bkt1").send().await.unwrap();
    assert_eq!(tags.tag_set()[0].key(), "firehose-kit:managed");

    assert_eq!(
        s3.get_public_access_block().bucket("bkt1").send().await.unwrap_err().code(),
        Some("NoSuchPublicAccessBlockConfiguration")
    );
    let pab = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    s3.put_public_access_block().bucket("bkt1").public_access_block_configuration(pab).send().await.unwrap();
    let got = s3.get_public_access_block().bucket("bkt1").send().await.unwrap();
    assert_eq!(got.public_access_block_configuration().unwrap().restrict_public_buckets(), Some(true));

    assert_eq!(
        s3.get_bucket_ownership_controls().bucket("bkt1").send().await.unwrap_err().code(),
        Some("OwnershipControlsNotFoundError")
    );
    let rule = OwnershipControlsRule::builder().object_ownership(ObjectOwnership::BucketOwnerEnforced).build().unwrap();
    s3.put_bucket_ownership_controls()
        .bucket("bkt1")
        .ownership_controls(OwnershipControls::builder().rules(rule).build().unwrap())
        .send()
        .await
        .unwrap();
    let own = s3.get_bucket_ownership_controls().bucket("bkt1").send().await.unwrap();
    assert_eq!(own.ownership_controls().unwrap().rules()[0].object_ownership(), &ObjectOwnership::BucketOwnerEnforced);

    let enc = s3.get_bucket_encryption().bucket("bkt1").send().await.unwrap();
    let algo = enc.server_side_encryption_configuration().unwrap().rules()[0]
        .apply_server_side_encryption_by_default()
        .unwrap()
        .sse_algorithm()
        .as_str()
        .to_string();
    assert_eq!(algo, "AES256", "SSE-S3 is the default since 2023");

    assert_eq!(s3.get_bucket_policy().bucket("bkt1").send().await.unwrap_err().code(), Some("NoSuchBucketPolicy"));
    s3.put_bucket_policy().bucket("bkt1").policy(r#"{"Version":"2012-10-17","Statement":[]}"#).send().await.unwrap();
    assert!(s3.get_bucket_policy().bucket("bkt1").send().await.unwrap().policy().unwrap().contains("2012-10-17"));
    assert_eq!(
        s3.put_bucket_policy().bucket("bkt1").policy("not json").send().await.unwrap_err().code(),
        Some("MalformedPolicy")
    );

    // A bucket with an object cannot be deleted.
    s3.put_object().bucket("bkt1").key("k").body(ByteStream::from_static(b"x")).send().await.unwrap();
    assert_eq!(s3.delete_bucket().bucket("bkt1").send().await.unwrap_err().code(), Some("BucketNotEmpty"));
    s3.delete_object().bucket("bkt1").key("k").send().await.unwrap();
    s3.delete_bucket().bucket("bkt1").send().await.unwrap();
    assert!(s3.list_buckets().send().await.unwrap().buckets().is_empty());
}

#[tokio::test]
async fn s3_objects_listing_versions_multipart_and_batch_delete() {
    let env = start().await;
    let s3 = &env.clients.s3;
    s3.create_bucket().bucket("objs").create_bucket_configuration(constraint()).send().await.unwrap();
    for i in 0..5 {
        let key = format!("logs/2026/11/25/20/obj-{i}");
        s3.put_object()
            .bucket("objs")
            .key(&key)
            .content_type("text/plain")
            .body(ByteStream::from(format!("body {i}").into_bytes()))
            .send()
            .await
            .unwrap();
    }
    let page = s3.list_objects_v2().bucket("objs").prefix("logs/").max_keys(2).send().await.unwrap();
    assert_eq!(page.contents().len(), 2);
    assert!(page.is_truncated().unwrap());
    assert!(page.contents()[0].e_tag().unwrap().len() > 30, "ETag present in listings");
    let all = s3.list_objects_v2().bucket("objs").into_paginator().send().collect::<Vec<_>>().await;
    assert_eq!(all.iter().map(|p| p.as_ref().unwrap().contents().len()).sum::<usize>(), 5);
    let grouped = s3.list_objects_v2().bucket("objs").delimiter("/").send().await.unwrap();
    assert_eq!(grouped.common_prefixes()[0].prefix(), Some("logs/"));

    let head = s3.head_object().bucket("objs").key("logs/2026/11/25/20/obj-1").send().await.unwrap();
    assert_eq!((head.content_length(), head.content_type()), (Some(6), Some("text/plain")));
    let ranged =
        s3.get_object().bucket("objs").key("logs/2026/11/25/20/obj-1").range("bytes=1-3").send().await.unwrap();
    assert_eq!(ranged.body.collect().await.unwrap().into_bytes().as_ref(), b"ody");
    assert_eq!(s3.get_object().bucket("objs").key("missing").send().await.unwrap_err().code(), Some("NoSuchKey"));

    let versions = s3.list_object_versions().bucket("objs").send().await.unwrap();
    assert_eq!(versions.versions().len(), 5);
    assert!(versions.delete_markers().is_empty());

    // Multipart: two parts assembled in order, S3's multipart ETag.
    let up = s3.create_multipart_upload().bucket("objs").key("big").send().await.unwrap();
    let id = up.upload_id().unwrap();
    let part1 = vec![b'1'; 5 * 1024 * 1024];
    let e1 = s3
        .upload_part()
        .bucket("objs")
        .key("big")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from(part1.clone()))
        .send()
        .await
        .unwrap();
    let e2 = s3
        .upload_part()
        .bucket("objs")
        .key("big")
        .upload_id(id)
        .part_number(2)
        .body(ByteStream::from_static(b"tail"))
        .send()
        .await
        .unwrap();
    let parts = CompletedMultipartUpload::builder()
        .parts(CompletedPart::builder().part_number(1).e_tag(e1.e_tag().unwrap()).build())
        .parts(CompletedPart::builder().part_number(2).e_tag(e2.e_tag().unwrap()).build())
        .build();
    let done = s3
        .complete_multipart_upload()
        .bucket("objs")
        .key("big")
        .upload_id(id)
        .multipart_upload(parts)
        .send()
        .await
        .unwrap();
    assert!(done.e_tag().unwrap().ends_with("-2\""), "{:?}", done.e_tag());
    let big =
        s3.get_object().bucket("objs").key("big").send().await.unwrap().body.collect().await.unwrap().into_bytes();
    assert_eq!(big.len(), part1.len() + 4);
    assert_eq!(&big[big.len() - 4..], b"tail");

    let ids: Vec<ObjectIdentifier> = (0..5)
        .map(|i| ObjectIdentifier::builder().key(format!("logs/2026/11/25/20/obj-{i}")).build().unwrap())
        .collect();
    s3.delete_objects()
        .bucket("objs")
        .delete(Delete::builder().set_objects(Some(ids)).build().unwrap())
        .send()
        .await
        .unwrap();
    let left = s3.list_objects_v2().bucket("objs").send().await.unwrap();
    assert_eq!(left.contents().iter().map(|o| o.key().unwrap()).collect::<Vec<_>>(), ["big"]);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_every_service() {
    let env = start_with(|b| b.secret("s3cret")).await;
    let c = &env.clients; // signed with `test`
    assert_eq!(c.s3.list_buckets().send().await.unwrap_err().code(), Some("SignatureDoesNotMatch"));
    assert_eq!(c.firehose.list_delivery_streams().send().await.unwrap_err().code(), Some("InvalidSignatureException"));
    assert_eq!(c.iam.list_roles().send().await.unwrap_err().code(), Some("SignatureDoesNotMatch"));
    assert_eq!(c.sts.get_caller_identity().send().await.unwrap_err().code(), Some("SignatureDoesNotMatch"));
}

/// A raw Firehose call whose signed `x-amz-content-sha256` header is `claimed`, sent with `body`.
fn signed_call(endpoint: &str, body: &[u8], claimed: &str) -> String {
    use aws_sigv4::http_request::{PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign};
    use std::io::Write;
    let host = endpoint.trim_start_matches("http://");
    let identity: aws_smithy_runtime_api::client::identity::Identity =
        aws_credential_types::Credentials::new("test", "test", None, None, "t").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-2")
        .name("firehose")
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let headers = [
        ("host", host),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "Firehose_20150804.ListDeliveryStreams"),
    ];
    let request = SignableRequest::new(
        "POST",
        format!("{endpoint}/"),
        headers.into_iter(),
        SignableBody::Precomputed(claimed.into()),
    )
    .unwrap();
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    let (signed, _) = instructions.into_parts();
    let mut raw = format!("POST / HTTP/1.1\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    for h in signed {
        raw.push_str(&format!("{}: {}\r\n", h.name(), h.value()));
    }
    raw.push_str("\r\n");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[tokio::test]
async fn listings_url_encode_keys_when_asked_and_us_east_1_recreate_is_ok() {
    use aws_sdk_s3::types::EncodingType;
    let env = start().await;
    let s3 = &env.clients.s3;
    s3.create_bucket().bucket("enc").create_bucket_configuration(constraint()).send().await.unwrap();
    let keys = ["a b.txt", "a+b.txt", "100%.csv", "dir/日本.txt", "q?x&y=z(1).txt"];
    for k in keys {
        s3.put_object().bucket("enc").key(k).body(ByteStream::from_static(b"x")).send().await.unwrap();
    }
    let plain = s3.list_objects_v2().bucket("enc").send().await.unwrap();
    let mut listed: Vec<&str> = plain.contents().iter().map(|o| o.key().unwrap()).collect();
    listed.sort();
    let mut want = keys.to_vec();
    want.sort();
    assert_eq!(listed, want, "without EncodingType, keys are as stored");
    let encoded = s3.list_objects_v2().bucket("enc").encoding_type(EncodingType::Url).send().await.unwrap();
    assert_eq!(encoded.encoding_type(), Some(&EncodingType::Url));
    let mut keys_enc: Vec<&str> = encoded.contents().iter().map(|o| o.key().unwrap()).collect();
    keys_enc.sort();
    assert_eq!(
        keys_enc,
        ["100%25.csv", "a%2Bb.txt", "a+b.txt", "dir/%E6%97%A5%E6%9C%AC.txt", "q%3Fx%26y%3Dz%281%29.txt"]
    );
    let v1 = s3.list_objects().bucket("enc").prefix("a ").encoding_type(EncodingType::Url).send().await.unwrap();
    assert_eq!((v1.prefix(), v1.contents()[0].key()), (Some("a+"), Some("a+b.txt")));
    let versions =
        s3.list_object_versions().bucket("enc").prefix("100").encoding_type(EncodingType::Url).send().await.unwrap();
    assert_eq!(versions.versions()[0].key(), Some("100%25.csv"));

    // In us-east-1 re-creating a bucket you own answers 200; elsewhere BucketAlreadyOwnedByYou.
    let east1 = firehose_kit::aws::Clients::connect(&firehose_kit::settings::Connection {
        region: Some("us-east-1".into()),
        ..support::connection(env.emu.endpoint())
    })
    .await
    .unwrap();
    east1.s3.create_bucket().bucket("legacy").send().await.unwrap();
    east1.s3.create_bucket().bucket("legacy").send().await.unwrap();
    let again = s3.create_bucket().bucket("enc").create_bucket_configuration(constraint()).send().await.unwrap_err();
    assert_eq!(again.code(), Some("BucketAlreadyOwnedByYou"));
}

#[tokio::test]
async fn stream_encryption_goes_enabling_enabled_disabling_disabled_and_puts_say_so() {
    use aws_sdk_firehose::types::{
        DeliveryStreamEncryptionConfigurationInput, DeliveryStreamEncryptionStatus, KeyType,
    };
    let env = start_with(|b| b.create_delay(Duration::from_millis(400))).await;
    let c = &env.clients;
    let (bucket, role) = bucket_and_role(c, "sse", "sse-role").await;
    active_stream(c, "Sse", &bucket, &role, 1, 60, false).await;
    let status = || async {
        let d = c.firehose.describe_delivery_stream().delivery_stream_name("Sse").send().await.unwrap();
        let e = d.delivery_stream_description().unwrap().delivery_stream_encryption_configuration().unwrap().clone();
        (e.status().cloned(), e.key_type().cloned(), e.key_arn().map(str::to_string))
    };
    assert_eq!(status().await.0, Some(DeliveryStreamEncryptionStatus::Disabled));
    assert_eq!(put_batch(c, "Sse", &[b"plain\n".to_vec()]).await.encrypted(), Some(false));

    // Terraform's waiter: right after Start the status is ENABLING (never DISABLED), then ENABLED.
    let key = "arn:aws:kms:us-east-2:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let input = DeliveryStreamEncryptionConfigurationInput::builder()
        .key_type(KeyType::CustomerManagedCmk)
        .key_arn(key)
        .build()
        .unwrap();
    c.firehose
        .start_delivery_stream_encryption()
        .delivery_stream_name("Sse")
        .delivery_stream_encryption_configuration_input(input.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(status().await.0, Some(DeliveryStreamEncryptionStatus::Enabling));
    let busy = c
        .firehose
        .start_delivery_stream_encryption()
        .delivery_stream_name("Sse")
        .delivery_stream_encryption_configuration_input(input)
        .send()
        .await
        .unwrap_err();
    assert_eq!(busy.code(), Some("ResourceInUseException"), "no second change while one is in progress");
    eventually("ENABLED", Duration::from_secs(10), || async {
        (status().await.0 == Some(DeliveryStreamEncryptionStatus::Enabled)).then_some(())
    })
    .await;
    assert_eq!(
        status().await,
        (Some(DeliveryStreamEncryptionStatus::Enabled), Some(KeyType::CustomerManagedCmk), Some(key.to_string()))
    );
    assert_eq!(put_batch(c, "Sse", &[b"secret\n".to_vec()]).await.encrypted(), Some(true));
    assert_eq!(support::try_put_record(c, "Sse", b"one\n".to_vec()).await.unwrap().encrypted(), Some(true));

    c.firehose.stop_delivery_stream_encryption().delivery_stream_name("Sse").send().await.unwrap();
    assert_eq!(status().await.0, Some(DeliveryStreamEncryptionStatus::Disabling));
    eventually("DISABLED", Duration::from_secs(10), || async {
        (status().await.0 == Some(DeliveryStreamEncryptionStatus::Disabled)).then_some(())
    })
    .await;
    assert_eq!(put_batch(c, "Sse", &[b"plain again\n".to_vec()]).await.encrypted(), Some(false));

    // At create; and a customer-managed key without its ARN is refused.
    let dest = aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(&bucket)
        .role_arn(&role)
        .build()
        .unwrap();
    let bad =
        DeliveryStreamEncryptionConfigurationInput::builder().key_type(KeyType::CustomerManagedCmk).build().unwrap();
    let err = c
        .firehose
        .create_delivery_stream()
        .delivery_stream_name("SseBad")
        .extended_s3_destination_configuration(dest.clone())
        .delivery_stream_encryption_configuration_input(bad)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidArgumentException"));
    let owned = DeliveryStreamEncryptionConfigurationInput::builder().key_type(KeyType::AwsOwnedCmk).build().unwrap();
    c.firehose
        .create_delivery_stream()
        .delivery_stream_name("SseAtCreate")
        .extended_s3_destination_configuration(dest)
        .delivery_stream_encryption_configuration_input(owned)
        .send()
        .await
        .unwrap();
    support::wait_active(c, "SseAtCreate").await;
    eventually("ENABLED at create", Duration::from_secs(10), || async {
        let d = c.firehose.describe_delivery_stream().delivery_stream_name("SseAtCreate").send().await.ok()?;
        let e = d.delivery_stream_description()?.delivery_stream_encryption_configuration()?.clone();
        (e.status() == Some(&DeliveryStreamEncryptionStatus::Enabled) && e.key_type() == Some(&KeyType::AwsOwnedCmk))
            .then_some(())
    })
    .await;
    // Tag and list-tags validation.
    let empty =
        c.firehose.tag_delivery_stream().delivery_stream_name("Sse").set_tags(Some(vec![])).send().await.unwrap_err();
    assert_eq!(empty.code(), Some("ValidationException"));
    let limit =
        c.firehose.list_tags_for_delivery_stream().delivery_stream_name("Sse").limit(51).send().await.unwrap_err();
    assert_eq!(limit.code(), Some("ValidationException"));
}

#[tokio::test]
async fn setup_works_in_the_china_and_govcloud_partitions() {
    let env = start_with(|b| b.create_delay(Duration::ZERO)).await;
    let dir = tempfile::tempdir().unwrap();
    for (region, partition) in [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")] {
        let out = support::cli(
            env.emu.endpoint(),
            dir.path(),
            &["--region", region, "-o", "json", "setup", "--iam-retry-timeout", "5"],
        );
        support::assert_exit(&out, 0);
        let r = support::json_out(&out);
        let arn = r["stream_arn"].as_str().unwrap_or_default();
        assert!(arn.starts_with(&format!("arn:{partition}:firehose:{region}:")), "{r}");
    }
}

/// Resolves every name to 127.0.0.1, as `*.localhost` does on most systems (not all: hence this resolver).
#[derive(Debug, Clone)]
struct Loopback;

impl aws_smithy_runtime_api::client::dns::ResolveDns for Loopback {
    fn resolve_dns<'a>(&'a self, _name: &'a str) -> aws_smithy_runtime_api::client::dns::DnsFuture<'a> {
        aws_smithy_runtime_api::client::dns::DnsFuture::new(async {
            Ok(vec![std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)])
        })
    }
}

/// Records each request's URI.
#[derive(Debug, Clone, Default)]
struct Uris(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl aws_smithy_runtime_api::client::interceptors::Intercept for Uris {
    fn name(&self) -> &'static str {
        "Uris"
    }
    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.0.lock().unwrap().push(context.request().uri().to_string());
        Ok(())
    }
}

#[tokio::test]
async fn aws_sdk_rust_default_virtual_hosted_addressing_works() {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let env = start().await;
    let port = env.emu.addr().port();
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_with_resolver(Loopback);
    let uris = Uris::default();
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version_latest()
        .region(aws_sdk_s3::config::Region::new("us-east-2"))
        .endpoint_url(format!("http://localhost:{port}"))
        .credentials_provider(aws_credential_types::Credentials::new("test", "test", None, None, "t"))
        .http_client(http)
        .interceptor(uris.clone())
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(config); // default addressing: virtual-hosted
    s3.create_bucket().bucket("vhost").create_bucket_configuration(constraint()).send().await.unwrap();
    s3.put_object().bucket("vhost").key("dir/a b.txt").body(ByteStream::from_static(b"hello")).send().await.unwrap();
    let body = s3.get_object().bucket("vhost").key("dir/a b.txt").send().await.unwrap().body.collect().await.unwrap();
    assert_eq!(body.into_bytes().as_ref(), b"hello");
    let listed = s3.list_objects_v2().bucket("vhost").send().await.unwrap();
    assert_eq!(listed.contents().iter().map(|o| o.key().unwrap()).collect::<Vec<_>>(), ["dir/a b.txt"]);
    let seen = uris.0.lock().unwrap().clone();
    assert!(
        seen.iter().all(|u| u.starts_with(&format!("http://vhost.localhost:{port}/"))),
        "every call went to <bucket>.localhost: {seen:?}"
    );
    // The same bucket path-style, through the usual clients.
    assert_eq!(support::get_body(&env.clients, "vhost", "dir/a b.txt").await, b"hello");
}

/// The IAM calls terraform-provider-aws makes for an `aws_iam_role` with an inline policy
/// (`aws_iam_role_policy`) and an attached customer-managed one (`aws_iam_policy` +
/// `aws_iam_role_policy_attachment`), in its order: create, read (refresh), delete.
#[tokio::test]
async fn terraform_iam_role_with_inline_and_attached_policies_creates_reads_and_deletes() {
    let env = start().await;
    let iam = &env.clients.iam;
    let policy_doc =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"*"}]}"#;
    let tag = aws_sdk_iam::types::Tag::builder().key("team").value("data").build().unwrap();
    // Create.
    let role = iam
        .create_role()
        .role_name("tf-role")
        .path("/")
        .assume_role_policy_document(support::trust_policy())
        .max_session_duration(3600)
        .description("made by terraform")
        .tags(tag)
        .send()
        .await
        .unwrap();
    let role_arn = role.role().unwrap().arn().to_string();
    iam.put_role_policy().role_name("tf-role").policy_name("inline").policy_document(policy_doc).send().await.unwrap();
    let policy =
        iam.create_policy().policy_name("tf-managed").path("/").policy_document(policy_doc).send().await.unwrap();
    let policy_arn = policy.policy().unwrap().arn().unwrap().to_string();
    assert_eq!(policy_arn, format!("arn:aws:iam::{ACCOUNT}:policy/tf-managed"));
    iam.attach_role_policy().role_name("tf-role").policy_arn(&policy_arn).send().await.unwrap();
    iam.attach_role_policy()
        .role_name("tf-role")
        .policy_arn("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
        .send()
        .await
        .unwrap();
    // Read (terraform refresh).
    let got = iam.get_role().role_name("tf-role").send().await.unwrap();
    assert_eq!(got.role().unwrap().arn(), role_arn);
    assert_eq!(got.role().unwrap().description(), Some("made by terraform"));
    let inline = iam.list_role_policies().role_name("tf-role").send().await.unwrap();
    assert_eq!(inline.policy_names(), ["inline"]);
    let doc = iam.get_role_policy().role_name("tf-role").policy_name("inline").send().await.unwrap();
    assert_eq!(firehose_kit::aws::decode_policy_document(doc.policy_document()), policy_doc);
    let attached = iam.list_attached_role_policies().role_name("tf-role").send().await.unwrap();
    let arns: Vec<&str> = attached.attached_policies().iter().filter_map(|p| p.policy_arn()).collect();
    assert_eq!(arns, [policy_arn.as_str(), "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]);
    let p = iam.get_policy().policy_arn(&policy_arn).send().await.unwrap();
    assert_eq!(
        (p.policy().unwrap().default_version_id(), p.policy().unwrap().attachment_count()),
        (Some("v1"), Some(1))
    );
    let v = iam.get_policy_version().policy_arn(&policy_arn).version_id("v1").send().await.unwrap();
    assert_eq!(firehose_kit::aws::decode_policy_document(v.policy_version().unwrap().document().unwrap()), policy_doc);
    assert_eq!(iam.list_role_tags().role_name("tf-role").send().await.unwrap().tags().len(), 1);
    iam.update_role_description().role_name("tf-role").description("changed").send().await.unwrap();
    // Delete: what the provider does before DeleteRole, then the policy.
    let profiles = iam.list_instance_profiles_for_role().role_name("tf-role").send().await.unwrap();
    assert!(profiles.instance_profiles().is_empty());
    let conflict = iam.delete_role().role_name("tf-role").send().await.unwrap_err();
    assert_eq!(conflict.code(), Some("DeleteConflict"), "policies still attached");
    let in_use = iam.delete_policy().policy_arn(&policy_arn).send().await.unwrap_err();
    assert_eq!(in_use.code(), Some("DeleteConflict"), "the policy is attached");
    for arn in arns {
        iam.detach_role_policy().role_name("tf-role").policy_arn(arn).send().await.unwrap();
    }
    iam.delete_role_policy().role_name("tf-role").policy_name("inline").send().await.unwrap();
    iam.delete_role().role_name("tf-role").send().await.unwrap();
    let versions = iam.list_policy_versions().policy_arn(&policy_arn).send().await.unwrap();
    assert_eq!(versions.versions().len(), 1);
    iam.delete_policy().policy_arn(&policy_arn).send().await.unwrap();
    let gone = iam.get_policy().policy_arn(&policy_arn).send().await.unwrap_err();
    assert_eq!(gone.code(), Some("NoSuchEntity"));
    assert_eq!(iam.get_role().role_name("tf-role").send().await.unwrap_err().code(), Some("NoSuchEntity"));
}

#[tokio::test]
async fn flexible_checksums_are_stored_and_returned_when_asked() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
    let env = start().await;
    let s3 = &env.clients.s3;
    s3.create_bucket().bucket("sums").create_bucket_configuration(constraint()).send().await.unwrap();
    for (key, algorithm) in [("crc32", ChecksumAlgorithm::Crc32), ("sha256", ChecksumAlgorithm::Sha256)] {
        let put = s3
            .put_object()
            .bucket("sums")
            .key(key)
            .checksum_algorithm(algorithm)
            .body(ByteStream::from_static(b"checksummed body"))
            .send()
            .await
            .unwrap();
        // The SDK validates a returned checksum against the body it reads: a wrong one would fail the call.
        let got = s3.get_object().bucket("sums").key(key).checksum_mode(ChecksumMode::Enabled).send().await.unwrap();
        let head = s3.head_object().bucket("sums").key(key).checksum_mode(ChecksumMode::Enabled).send().await.unwrap();
        let (stored, headed) = match key {
            "crc32" => (got.checksum_crc32().map(str::to_string), head.checksum_crc32().map(str::to_string)),
            _ => (got.checksum_sha256().map(str::to_string), head.checksum_sha256().map(str::to_string)),
        };
        let sent = put.checksum_crc32().or(put.checksum_sha256()).map(str::to_string);
        assert!(
            stored.is_some() && stored == sent && headed == sent,
            "{key}: sent {sent:?}, got {stored:?}, head {headed:?}"
        );
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"checksummed body");
        let plain = s3.head_object().bucket("sums").key(key).send().await.unwrap();
        assert!(
            plain.checksum_crc32().is_none() && plain.checksum_sha256().is_none(),
            "only with ChecksumMode=ENABLED"
        );
    }
}

#[tokio::test]
async fn read_only_calls_never_write_state() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_with(|b| b.data_dir(dir.path())).await;
    let c = &env.clients;
    let (bucket, role) = bucket_and_role(c, "read-only", "ro-role").await;
    active_stream(c, "ReadOnly", &bucket, &role, 1, 60, false).await;
    let streams = dir.path().join("firehose/streams.json");
    let before = (std::fs::read(&streams).unwrap(), std::fs::metadata(&streams).unwrap().modified().unwrap());
    for _ in 0..20 {
        c.firehose.describe_delivery_stream().delivery_stream_name("ReadOnly").send().await.unwrap();
        c.firehose.list_delivery_streams().send().await.unwrap();
        c.firehose.list_tags_for_delivery_stream().delivery_stream_name("ReadOnly").send().await.unwrap();
    }
    let after = (std::fs::read(&streams).unwrap(), std::fs::metadata(&streams).unwrap().modified().unwrap());
    assert_eq!(before, after, "Describe, List and ListTags left streams.json untouched");
    // A change does write it.
    let tag = Tag::builder().key("k").value("v").build().unwrap();
    c.firehose.tag_delivery_stream().delivery_stream_name("ReadOnly").tags(tag).send().await.unwrap();
    assert_ne!(std::fs::read(&streams).unwrap(), before.0);
}

#[tokio::test]
async fn a_body_whose_hash_does_not_match_its_signed_header_is_refused() {
    let env = start().await;
    let endpoint = env.emu.endpoint().to_string();
    let body = b"{}";
    let honest = firehose_kit::util::hash::sha256_hex(body);
    let answer = tokio::task::spawn_blocking({
        let endpoint = endpoint.clone();
        move || signed_call(&endpoint, body, &honest)
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A valid signature over a hash of other bytes: the emulator hashes the body itself and refuses it.
    let lie = firehose_kit::util::hash::sha256_hex(b"{\"Limit\": 1}");
    let answer = tokio::task::spawn_blocking(move || signed_call(&endpoint, body, &lie)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("x-amz-content-sha256") && answer.contains("InvalidSignatureException"), "{answer}");
}

#[tokio::test]
async fn iam_roles_policies_tags_and_sts_identity() {
    let env = start_with(|b| b.account_id("123456789012")).await;
    let iam = &env.clients.iam;
    let who = env.clients.sts.get_caller_identity().send().await.unwrap();
    assert_eq!(who.account(), Some("123456789012"));

    let tag = aws_sdk_iam::types::Tag::builder().key("firehose-kit:managed").value("true").build().unwrap();
    let created = iam
        .create_role()
        .role_name("r1")
        .assume_role_policy_document(support::trust_policy())
        .tags(tag)
        .send()
        .await
        .unwrap();
    assert_eq!(created.role().unwrap().arn(), "arn:aws:iam::123456789012:role/r1");
    let dup = iam
        .create_role()
        .role_name("r1")
        .assume_role_policy_document(support::trust_policy())
        .send()
        .await
        .unwrap_err();
    assert!(dup.as_service_error().unwrap().is_entity_already_exists_exception());
    let got = iam.get_role().role_name("r1").send().await.unwrap();
    let doc = got.role().unwrap().assume_role_policy_document().unwrap();
    assert!(doc.starts_with("%7B%22"), "documents are URL-encoded as AWS returns them: {doc}");
    assert_eq!(firehose_kit::aws::decode_policy_document(doc), support::trust_policy());

    iam.put_role_policy()
        .role_name("r1")
        .policy_name("p")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .unwrap();
    let p = iam.get_role_policy().role_name("r1").policy_name("p").send().await.unwrap();
    assert_eq!(
        firehose_kit::aws::decode_policy_document(p.policy_document()),
        r#"{"Version":"2012-10-17","Statement":[]}"#
    );
    assert_eq!(iam.list_role_policies().role_name("r1").send().await.unwrap().policy_names(), ["p"]);
    let conflict = iam.delete_role().role_name("r1").send().await.unwrap_err();
    assert_eq!(conflict.code(), Some("DeleteConflict"));
    let extra = aws_sdk_iam::types::Tag::builder().key("team").value("data").build().unwrap();
    iam.tag_role().role_name("r1").tags(extra).send().await.unwrap();
    assert_eq!(iam.list_role_tags().role_name("r1").send().await.unwrap().tags().len(), 2);
    iam.delete_role_policy().role_name("r1").policy_name("p").send().await.unwrap();
    assert!(
        iam.get_role_policy()
            .role_name("r1")
            .policy_name("p")
            .send()
            .await
            .unwrap_err()
            .as_service_error()
            .unwrap()
            .is_no_such_entity_exception()
    );
    assert!(iam.list_attached_role_policies().role_name("r1").send().await.unwrap().attached_policies().is_empty());
    iam.delete_role().role_name("r1").send().await.unwrap();
    assert!(
        iam.get_role()
            .role_name("r1")
            .send()
            .await
            .unwrap_err()
            .as_service_error()
            .unwrap()
            .is_no_such_entity_exception()
    );
    assert_eq!(
        iam.create_role().role_name("bad").assume_role_policy_document("{").send().await.unwrap_err().code(),
        Some("MalformedPolicyDocument")
    );
}

#[tokio::test]
async fn stream_goes_creating_active_deleting_gone_with_tags_and_listing() {
    let env = start_with(|b| b.create_delay(Duration::from_millis(600)).delete_delay(Duration::from_millis(600))).await;
    let c = &env.clients;
    let (bucket, role) = bucket_and_role(c, "life", "life-role").await;
    let dest = aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(&bucket)
        .role_arn(&role)
        .build()
        .unwrap();
    let tag = Tag::builder().key("firehose-kit:managed").value("true").build().unwrap();
    let out = c
        .firehose
        .create_delivery_stream()
        .delivery_stream_name("Life")
        .extended_s3_destination_configuration(dest.clone())
        .tags(tag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.delivery_stream_arn(),
        Some(format!("arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/Life").as_str())
    );
    let describe = || async { c.firehose.describe_delivery_stream().delivery_stream_name("Life").send().await };
    let d = describe().await.unwrap();
    let desc = d.delivery_stream_description().unwrap();
    assert_eq!(desc.delivery_stream_status().as_str(), "CREATING");
    assert_eq!(desc.version_id(), "1");
    let ext = desc.destinations()[0].extended_s3_destination_description().unwrap();
    let hints = ext.buffering_hints().unwrap();
    assert_eq!((hints.size_in_mbs(), hints.interval_in_seconds()), (Some(5), Some(300)), "AWS defaults");
    assert_eq!(ext.compression_format().as_str(), "UNCOMPRESSED");

    let dup = c
        .firehose
        .create_delivery_stream()
        .delivery_stream_name("Life")
        .extended_s3_destination_configuration(dest)
        .send()
        .await
        .unwrap_err();
    assert!(dup.as_service_error().unwrap().is_resource_in_use_exception());
    let early = c.firehose.delete_delivery_stream().delivery_stream_name("Life").send().await.unwrap_err();
    assert!(early.as_service_error().unwrap().is_resource_in_use_exception(), "no delete while CREATING");
    let put_early = support::try_put_record(c, "Life", "x").await.unwrap_err();
    assert!(put_early.as_service_error().unwrap().is_resource_not_found_exception());

    support::wait_active(c, "Life").await;
    let names = c.firehose.list_delivery_streams().send().await.unwrap();
    assert_eq!(names.delivery_stream_names(), ["Life"]);
    let tags = c.firehose.list_tags_for_delivery_stream().delivery_stream_name("Life").send().await.unwrap();
    assert_eq!(tags.tags()[0].key(), "firehose-kit:managed");
    c.firehose
        .tag_delivery_stream()
        .delivery_stream_name("Life")
        .tags(Tag::builder().key("team").value("data").build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        c.firehose.list_tags_for_delivery_stream().delivery_stream_name("Life").send().await.unwrap().tags().len(),
        2
    );

    c.firehose.delete_delivery_stream().delivery_stream_name("Life").send().await.unwrap();
    let d = describe().await.unwrap();
    assert_eq!(d.delivery_stream_description().unwrap().delivery_stream_status().as_str(), "DELETING");
    eventually("stream gone", Duration::from_secs(20), || async {
        describe()
            .await
            .err()
            .filter(|e| e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()))
            .map(|_| ())
    })
    .await;
    assert!(c.firehose.list_delivery_streams().send().await.unwrap().delivery_stream_names().is_empty());
}

#[tokio::test]
#[allow(deprecated)]
async fn create_validates_like_aws() {
    let env = start().await;
    let c = &env.clients;
    let (bucket, role) = bucket_and_role(c, "val", "val-role").await;
    let create = |name: &str, size: i32, interval: i32, prefix: Option<&str>, error_prefix: Option<&str>| {
        let dest = aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
            .bucket_arn(&bucket)
            .role_arn(&role)
            .buffering_hints(BufferingHints::builder().size_in_mbs(size).interval_in_seconds(interval).build())
            .set_prefix(prefix.map(str::to_string))
            .set_error_output_prefix(error_prefix.map(str::to_string))
            .build()
            .unwrap();
        c.firehose
            .create_delivery_stream()
            .delivery_stream_name(name)
            .extended_s3_destination_configuration(dest)
            .send()
    };
    for (name, size, interval) in
        [("bad name!", 1, 60), (&*"n".repeat(65), 1, 60), ("S", 0, 60), ("S", 129, 60), ("S", 1, 901)]
    {
        let err = create(name, size, interval, None, None).await.unwrap_err();
        assert_eq!(err.code(), Some("ValidationException"), "{name} {size} {interval}: {err:?}");
    }
    let err = create("S", 1, 60, Some("logs/!{timestamp:yyyy}/"), None).await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_argument_exception());
    assert!(err.message().unwrap().contains("ErrorOutputPrefix"), "{err:?}");
    create("S", 1, 0, Some("logs/!{timestamp:yyyy}/"), Some("errors/!{firehose:error-output-type}/")).await.unwrap();

    // The legacy (deprecated) S3DestinationConfiguration is accepted too.
    let s3dest = S3DestinationConfiguration::builder().bucket_arn(&bucket).role_arn(&role).build().unwrap();
    c.firehose
        .create_delivery_stream()
        .delivery_stream_name("Legacy")
        .s3_destination_configuration(s3dest)
        .send()
        .await
        .unwrap();
    let d = c.firehose.describe_delivery_stream().delivery_stream_name("Legacy").send().await.unwrap();
    assert!(d.delivery_stream_description().unwrap().destinations()[0].s3_destination_description().is_some());

    let missing = c.firehose.describe_delivery_stream().delivery_stream_name("Nope").send().await.unwrap_err();
    assert!(missing.as_service_error().unwrap().is_resource_not_found_exception());
}

#[tokio::test]
async fn create_needs_a_role_that_trusts_firehose_and_has_propagated() {
    let env = start_with(|b| b.iam_propagation_delay(Duration::from_millis(1500))).await;
    let c = &env.clients;
    c.s3.create_bucket().bucket("prop").create_bucket_configuration(constraint()).send().await.unwrap();
    let lambda_trust = support::trust_policy().replace("firehose.amazonaws.com", "lambda.amazonaws.com");
    let wrong = c.iam.create_role().role_name("wrong").assume_role_policy_document(lambda_trust).send().await.unwrap();
    let fresh = c
        .iam
        .create_role()
        .role_name("fresh")
        .assume_role_policy_document(support::trust_policy())
        .send()
        .await
        .unwrap();
    let created_at = Instant::now();
    let create_named = |name: &'static str, role: String| {
        let dest = aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
            .bucket_arn("arn:aws:s3:::prop")
            .role_arn(role)
            .build()
            .unwrap();
        c.firehose
            .create_delivery_stream()
            .delivery_stream_name(name)
            .extended_s3_destination_configuration(dest)
            .send()
    };
    let create = |role: String| create_named("Prop", role);
    let err = create(fresh.role().unwrap().arn().to_string()).await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_argument_exception());
    assert!(err.message().unwrap().contains("unable to assume role"), "{err:?}");
    assert!(firehose_kit::aws::error::is_iam_propagation(err.code(), err.message().unwrap()));
    let missing = create(format!("arn:aws:iam::{ACCOUNT}:role/missing")).await.unwrap_err();
    assert!(missing.message().unwrap().contains("unable to assume role"));

    // Once the delay has passed the new role works; a role that does not trust Firehose never does.
    let arn = fresh.role().unwrap().arn().to_string();
    eventually("role propagated", Duration::from_secs(20), || async { create(arn.clone()).await.ok().map(|_| ()) })
        .await;
    assert!(created_at.elapsed() >= Duration::from_millis(1500));
    // The wrong role was created before `fresh`, so it has propagated too: it fails for its trust policy alone.
    let err = create_named("Wrong", wrong.role().unwrap().arn().to_string()).await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_argument_exception(), "{err:?}");
    assert!(err.message().unwrap().contains("unable to assume role"), "{err:?}");
    let gone = c.firehose.describe_delivery_stream().delivery_stream_name("Wrong").send().await.unwrap_err();
    assert!(gone.as_service_error().unwrap().is_resource_not_found_exception(), "nothing was created");
}

#[tokio::test]
async fn update_destination_increments_version_and_checks_it() {
    let env = start().await;
    let c = &env.clients;
    let (bucket, role) = bucket_and_role(c, "upd", "upd-role").await;
    active_stream(c, "Upd", &bucket, &role, 1, 60, false).await;
    let update = ExtendedS3DestinationUpdate::builder()
        .buffering_hints(BufferingHints::builder().size_in_mbs(8).interval_in_seconds(120).build())
        .build();
    c.firehose
        .update_destination()
        .delivery_stream_name("Upd")
        .current_delivery_stream_version_id("1")
        .destination_id("destinationId-000000000001")
        .extended_s3_destination_update(update.clone())
        .send()
        .await
        .unwrap();
    let d = c.firehose.describe_delivery_stream().delivery_stream_name("Upd").send().await.unwrap();
    let desc = d.delivery_stream_description().unwrap();
    assert_eq!(desc.version_id(), "2");
    let hints = desc.destinations()[0].extended_s3_destination_description().unwrap().buffering_hints().unwrap();
    assert_eq!((hints.size_in_mbs(), hints.interval_in_seconds()), (Some(8), Some(120)));
    let stale = c
        .firehose
        .update_destination()
        .delivery_stream_name("Upd")
        .current_delivery_stream_version_id("1")
        .destination_id("destinationId-000000000001")
        .extended_s3_destination_update(update)
        .send()
        .await
        .unwrap_err();
    assert!(stale.as_service_error().unwrap().is_concurrent_modification_exception());
}

#[tokio::test]
async fn put_limits_are_enforced_with_the_aws_errors() {
    let env = start().await;
    let c = &env.clients;
    let (bucket, role) = bucket_and_role(c, "lim", "lim-role").await;
    active_stream(c, "Lim", &bucket, &role, 128, 900, false).await;
    let try_put = |recs: Vec<Vec<u8>>| async move { support::try_put_batch(c, "Lim", &recs).await };
    let err = try_put(vec![b"x".to_vec(); 501]).await.unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(err.message().unwrap().contains("less than or equal to 500"), "{err:?}");
    let mut big = vec![vec![0u8; 1_000_000]; 4];
    big.push(vec![0u8; 4 * 1024 * 1024 - 4_000_000 + 1]);
    let err = try_put(big).await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_argument_exception());
    assert_eq!(err.message(), Some("Records size exceeds 4 MB limit"));
    let err = try_put(vec![vec![0u8; 1_024_001]]).await.unwrap_err();
    assert!(
        err.message().unwrap().contains("'records.1.member.data'") && err.message().unwrap().contains("1024000"),
        "{err:?}"
    );
    // Exactly at the limits is fine.
    let ok = try_put(vec![vec![0u8; 1_024_000]]).await.unwrap();
    assert_eq!(ok.failed_put_count(), 0);
    let ok = try_put(vec![b"x".to_vec(); 500]).await.unwrap();
    assert_eq!(ok.request_responses().len(), 500);
    let one = support::try_put_record(c, "Lim", "one\n").await.unwrap();
    assert!(!one.record_id().is_empty());
    let single = support::try_put_record(c, "Lim", vec![0u8; 1_024_001]).await.unwrap_err();
    assert_eq!(single.code(), Some("ValidationException"));
}

#[tokio::test]
async fn size_hint_cuts_objects_of_about_one_mib_and_interval_delivers_the_rest() {
    let env = start().await;
    let c = &env.clients;
    let (bucket, role) = bucket_and_role(c, "buf", "buf-role").await;
    active_stream(c, "Buf", &bucket, &role, 1, 2, false).await;
    // 37 records of 100,000 bytes ≈ 3.5 MiB.
    let recs = records(37, 100_000);
    for chunk in recs.chunks(10) {
        assert_eq!(put_batch(c, "Buf", chunk).await.failed_put_count(), 0);
    }
    let size_flushed = eventually("three size-flushed objects", Duration::from_secs(20), || async {
        let objs = objects(c, "buf", "").await;
        (objs.len() >= 3).then_some(objs)
    })
    .await;
    let hint = 1024 * 1024;
    for (key, body) in &size_flushed {
        // About the hint: a record that would pass it starts the next object.
        assert!(body.len() > hint - 100_000 && body.len() <= hint, "{key}: {} bytes", body.len());
        let info = parse_key(key, "Buf", chrono_tz::Tz::UTC).unwrap();
        assert!(layout_problems(&info, "", "", true).is_empty(), "{key}");
        assert_eq!(info.version, 1);
    }
    let all = eventually("the interval-flushed remainder", Duration::from_secs(20), || async {
        let objs = objects(c, "buf", "").await;
        (objs.len() == 4).then_some(objs)
    })
    .await;
    let tail: Vec<_> = all.iter().filter(|(k, _)| !size_flushed.iter().any(|(s, _)| s == k)).collect();
    assert_eq!(tail[0].1.len(), 700_000, "37 records: three objects of ten, seven left for the interval");
    // Every record is delivered exactly once, byte-exact, records concatenated with no delimiter.
    assert_each_record_once(&all, 100_000, &recs);
}

/// Splits objects made of fixed-size records back into records and checks each sent record is there once.
fn assert_each_record_once(objects: &[(String, Vec<u8>)], record_size: usize, sent: &[Vec<u8>]) {
    let mut seen: Vec<Vec<u8>> =
        objects.iter().flat_map(|(_, b)| b.chunks(record_size).map(<[u8]>::to_vec).collect::<Vec<_>>()).collect();
    assert_eq!(seen.len(), sent.len(), "exactly once: no record twice, none missing");
    seen.sort();
    let mut expected = sent.to_vec();
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn interval_flush_waits_for_the_interval() {
    let env = start().await;
    let c = &env.clients;
    let (bucket, role) = bucket_and_role(c, "ivl", "ivl-role").await;
    active_stream(c, "Ivl", &bucket, &role, 128, 2, false).await;
    let put_at = Instant::now();
    put_batch(c, "Ivl", &records(5, 1000)).await;
    put_batch(c, "Ivl", &records(5, 1000)).await;
    let delivered_at = eventually("the interval flush", Duration::from_secs(20), || async {
        let n = c.s3.list_objects_v2().bucket("ivl").send().await.unwrap().key_count().unwrap_or(0);
        (n > 0).then(Instant::now)
    })
    .await;
    let waited = delivered_at - put_at;
    assert!(waited >= Duration::from_secs(2), "nothing before the 2 s interval: {waited:?}");
    // Nothing else can cut this buffer (128 MiB is far away), so any object is the interval's. The upper bound only
    // catches a flush that never came on time; it is generous (5× the interval) so a loaded machine passes.
    assert!(waited < Duration::from_secs(10), "delivered after the interval, not much later: {waited:?}");
    let objs = objects(c, "ivl", "").await;
    assert_eq!(objs.len(), 1, "both batches in one object");
    assert_eq!(objs[0].1.len(), 10_000);
}

#[tokio::test]
async fn gzip_objects_end_in_gz_and_unzip_to_the_bytes_sent() {
    let env = start().await;
    let c = &env.clients;
    let (bucket, role) = bucket_and_role(c, "gzipped", "gz-role").await;
    active_stream(c, "Gz", &bucket, &role, 1, 1, true).await;
    let recs: Vec<Vec<u8>> = (0..300)
        .map(|i| {
            format!("10.0.0.{} - - [25/Nov/2026:20:00:00 +0000] \"GET /{i} HTTP/1.1\" 200 {i}\n", i % 250).into_bytes()
        })
        .collect();
    put_batch(c, "Gz", &recs).await;
    let objs = eventually("a gzip object", Duration::from_secs(20), || async {
        let objs = objects(c, "gzipped", "").await;
        (!objs.is_empty()).then_some(objs)
    })
    .await;
    let (key, body) = &objs[0];
    assert!(key.ends_with(".gz"), "{key}");
    assert!(layout_problems(&parse_key(key, "Gz", chrono_tz::Tz::UTC).unwrap(), "", ".gz", true).is_empty());
    let mut unzipped = Vec::new();
    flate2::read::MultiGzDecoder::new(&body[..]).read_to_end(&mut unzipped).unwrap();
    assert_eq!(unzipped, recs.concat());
    assert!(body.len() < unzipped.len() / 3, "compressed");
}

#[tokio::test]
async fn fail_rate_fails_entries_and_reports_an_exact_failed_put_count() {
    let env = start_with(|b| b.fail_rate(0.3, Some(7))).await;
    let c = &env.clients;
    let (bucket, role) = bucket_and_role(c, "fail", "fail-role").await;
    active_stream(c, "Fail", &bucket, &role, 128, 1, false).await;
    let recs: Vec<Vec<u8>> = (0..500).map(|i| format!("line {i}\n").into_bytes()).collect();
    let out = put_batch(c, "Fail", &recs).await;
    let failed: Vec<usize> =
        out.request_responses().iter().enumerate().filter(|(_, r)| r.error_code().is_some()).map(|(i, _)| i).collect();
    assert_eq!(out.failed_put_count() as usize, failed.len());
    assert!((100..=200).contains(&failed.len()), "about 30% of 500 fail: {}", failed.len());
    let codes: BTreeSet<&str> = out.request_responses().iter().filter_map(|r| r.error_code()).collect();
    assert_eq!(codes, BTreeSet::from(["InternalFailure", "ServiceUnavailableException"]));
    assert!(out.request_responses().iter().all(|r| r.record_id().is_some() != r.error_code().is_some()));
    // Exactly the accepted records are delivered.
    let accepted: Vec<u8> =
        recs.iter().enumerate().filter(|(i, _)| !failed.contains(i)).flat_map(|(_, r)| r.clone()).collect();
    let objs = eventually("delivery", Duration::from_secs(20), || async {
        let objs = objects(c, "fail", "").await;
        (!objs.is_empty()).then_some(objs)
    })
    .await;
    assert_eq!(objs[0].1, accepted);
}

#[tokio::test]
async fn a_quota_throttles_entries_once_the_budget_is_spent() {
    let quota = Quota { bytes_per_sec: 1024.0 * 1024.0, requests_per_sec: 1000.0, records_per_sec: 100_000.0 };
    let env = start_with(|b| b.quota(Some(quota))).await;
    let c = &env.clients;
    let (bucket, role) = bucket_and_role(c, "quota", "quota-role").await;
    active_stream(c, "Quota", &bucket, &role, 128, 900, false).await;
    let out = put_batch(c, "Quota", &records(4, 1_000_000)).await;
    assert_eq!(out.failed_put_count(), 3, "one MB fits the 1 MiB/s budget, the next three do not");
    let entry = &out.request_responses()[1];
    assert_eq!((entry.error_code(), entry.error_message()), (Some("ServiceUnavailableException"), Some("Slow down.")));
}

#[tokio::test]
async fn undeliverable_data_is_kept_until_the_bucket_exists_again() {
    let env = start().await;
    let c = &env.clients;
    let (bucket, role) = bucket_and_role(c, "gone", "gone-role").await;
    active_stream(c, "Gone", &bucket, &role, 128, 1, false).await;
    c.s3.delete_bucket().bucket("gone").send().await.unwrap();
    put_batch(c, "Gone", &[b"kept\n".to_vec()]).await;
    // Past the 1 s interval a delivery attempt fails on the missing bucket: the emulator counts it.
    eventually("a failed delivery attempt", Duration::from_secs(10), || async {
        (env.emu.delivery_failures() > 0).then_some(())
    })
    .await;
    c.s3.create_bucket().bucket("gone").create_bucket_configuration(constraint()).send().await.unwrap();
    let objs = eventually("delivery after the bucket is back", Duration::from_secs(30), || async {
        let objs = objects(c, "gone", "").await;
        (!objs.is_empty()).then_some(objs)
    })
    .await;
    assert_eq!(objs[0].1, b"kept\n");
}

#[tokio::test]
async fn state_persists_across_a_restart_on_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    {
        let env = start_with(|b| b.data_dir(dir.path())).await;
        let c = &env.clients;
        let (bucket, role) = bucket_and_role(c, "keep", "keep-role").await;
        active_stream(c, "Keep", &bucket, &role, 128, 900, false).await;
        put_batch(c, "Keep", &[b"buffered\n".to_vec()]).await;
        env.emu.shutdown().await; // graceful: flushes the buffer
    }
    let env = start_with(|b| b.data_dir(dir.path())).await;
    let c = &env.clients;
    let objs = objects(c, "keep", "").await;
    assert_eq!(objs.len(), 1, "the buffer was flushed at shutdown");
    assert_eq!(objs[0].1, b"buffered\n");
    assert!(c.iam.get_role().role_name("keep-role").send().await.is_ok());
    let d = c.firehose.describe_delivery_stream().delivery_stream_name("Keep").send().await.unwrap();
    assert_eq!(d.delivery_stream_description().unwrap().delivery_stream_status().as_str(), "ACTIVE");
}

#[tokio::test]
async fn sigkill_after_acknowledged_puts_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(300, 10_000); // 3 MB: two 1 MiB objects before the kill, the rest only in the journal
    {
        let (mut process, endpoint) = support::spawn_local(dir.path());
        let c = support::clients_for(&endpoint).await;
        let (bucket, role) = bucket_and_role(&c, "durable", "durable-role").await;
        active_stream(&c, "Durable", &bucket, &role, 1, 900, false).await;
        for chunk in recs.chunks(50) {
            assert_eq!(put_batch(&c, "Durable", chunk).await.failed_put_count(), 0);
        }
        eventually("size-flushed objects", Duration::from_secs(20), || async {
            (c.s3.list_objects_v2().bucket("durable").send().await.ok()?.key_count()? >= 2).then_some(())
        })
        .await;
        process.0.kill().unwrap(); // SIGKILL: no chance to flush
        process.0.wait().unwrap();
    }
    let (_process, endpoint) = support::spawn_local(dir.path());
    let c = support::clients_for(&endpoint).await;
    // A shorter interval (UpdateDestination) flushes what the restarted emulator re-buffered from its journal.
    let update = ExtendedS3DestinationUpdate::builder()
        .buffering_hints(BufferingHints::builder().size_in_mbs(1).interval_in_seconds(1).build())
        .build();
    c.firehose
        .update_destination()
        .delivery_stream_name("Durable")
        .current_delivery_stream_version_id("1")
        .destination_id("destinationId-000000000001")
        .extended_s3_destination_update(update)
        .send()
        .await
        .unwrap();
    let total: usize = recs.iter().map(Vec::len).sum();
    let objs = eventually("every acknowledged record delivered", Duration::from_secs(30), || async {
        let objs = objects(&c, "durable", "").await;
        (objs.iter().map(|(_, b)| b.len()).sum::<usize>() >= total).then_some(objs)
    })
    .await;
    assert_each_record_once(&objs, 10_000, &recs);
}

#[tokio::test]
async fn sigterm_flushes_every_buffer_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (mut process, endpoint) = support::spawn_local(dir.path());
    let c = support::clients_for(&endpoint).await;
    let (bucket, role) = bucket_and_role(&c, "flushed", "flushed-role").await;
    active_stream(&c, "Flushed", &bucket, &role, 128, 900, false).await;
    put_batch(&c, "Flushed", &[b"buffered until shutdown\n".to_vec()]).await;
    assert_eq!(c.s3.list_objects_v2().bucket("flushed").send().await.unwrap().key_count(), Some(0));
    std::process::Command::new("kill").args(["-TERM", &process.0.id().to_string()]).status().unwrap();
    assert_eq!(process.0.wait().unwrap().code(), Some(0));
    let (_process, endpoint) = support::spawn_local(dir.path());
    let c = support::clients_for(&endpoint).await;
    let objs = objects(&c, "flushed", "").await;
    assert_eq!(objs.len(), 1);
    assert_eq!(objs[0].1, b"buffered until shutdown\n");
}

#[tokio::test]
async fn the_emulator_refuses_a_non_loopback_address_unless_allowed() {
    let err = firehose_kit_emulator::Emulator::builder().addr("0.0.0.0:0").start().await.err().expect("refused");
    assert!(err.to_string().contains("--allow-remote"), "{err}");
    // Exposed, the public default secret is refused too (the binary exits 2, naming the fix).
    let dir = tempfile::tempdir().unwrap();
    let exposed = support::cli_plain(dir.path(), &["local", "--addr", "0.0.0.0:0", "--allow-remote"]);
    support::assert_exit(&exposed, 2);
    let said = String::from_utf8_lossy(&exposed.stderr);
    assert!(said.contains("with the default secret `test`") && said.contains("pass --secret"), "{said}");
    // With a secret of its own it serves, and a request signed with `test` is refused.
    let emu = firehose_kit_emulator::Emulator::builder()
        .addr("0.0.0.0:0")
        .allow_remote(true)
        .secret("not-the-default")
        .start()
        .await
        .expect("starts with a secret");
    let port = emu.endpoint().rsplit(':').next().unwrap().to_string();
    let c = support::clients_for(&format!("http://127.0.0.1:{port}")).await;
    let refused = c.firehose.list_delivery_streams().send().await.unwrap_err().into_service_error();
    assert_eq!(refused.meta().code(), Some("InvalidSignatureException"), "{refused:?}");
    emu.shutdown().await;
    let err = firehose_kit_emulator::Emulator::builder().addr("localhost").start().await.err().expect("refused");
    assert!(err.to_string().contains("HOST:PORT"), "{err}");
}

/// With function execution off (`local --no-functions`), CreateFunction is refused with a message saying why:
/// no function code runs on the host of an exposed emulator.
#[tokio::test]
async fn with_function_execution_off_create_function_is_refused() {
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::types::{FunctionCode, Runtime};
    let emu = firehose_kit_emulator::Emulator::builder().addr("127.0.0.1:0").functions(false).start().await.unwrap();
    let c = support::clients_for(emu.endpoint()).await;
    let zip = crate::transform::zip_of(&[("h.py", "def handler(e, c):\n    return e\n", 0o644)]);
    let refused = c
        .lambda
        .create_function()
        .function_name("f")
        .runtime(Runtime::Python312)
        .role("arn:aws:iam::000000000000:role/r")
        .handler("h.handler")
        .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(refused.meta().code(), Some("AccessDeniedException"), "{refused:?}");
    assert!(refused.meta().message().unwrap_or_default().contains("local --no-functions"), "{refused:?}");
    emu.shutdown().await;
}
