//! Test harness: start the embedded emulator, build SDK clients for it, poll with a deadline.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use firehose_kit::aws::Clients;
use firehose_kit::local::{EmulatorBuilder, EmulatorHandle};
use firehose_kit::settings::Connection;

pub const REGION: &str = "us-east-2";
pub const ACCOUNT: &str = "000000000000";

/// An emulator plus clients for it.
pub struct Env {
    pub emu: EmulatorHandle,
    pub clients: Clients,
}

/// The emulator with short lifecycle delays (so CREATING and DELETING are observable but quick).
pub async fn start() -> Env {
    start_with(|b| b).await
}

pub async fn start_with(configure: impl FnOnce(EmulatorBuilder) -> EmulatorBuilder) -> Env {
    let builder = firehose_kit::local::Emulator::builder()
        .addr("127.0.0.1:0")
        .create_delay(Duration::from_millis(300))
        .delete_delay(Duration::from_millis(300));
    let emu = configure(builder).start().await.expect("emulator starts");
    let clients = clients_for(emu.endpoint()).await;
    Env { emu, clients }
}

pub fn connection(endpoint: &str) -> Connection {
    Connection {
        profile: None,
        region: Some(REGION.into()),
        endpoint_url: Some(endpoint.into()),
        test_credentials: true,
    }
}

pub async fn clients_for(endpoint: &str) -> Clients {
    Clients::connect(&connection(endpoint)).await.expect("clients")
}

/// Polls `check` until it returns `Some`, or panics after `deadline` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(started.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The trust policy setup renders, for tests that create roles by hand.
pub fn trust_policy() -> String {
    firehose_kit::aws::policy::trust_policy(ACCOUNT).to_string()
}

/// Creates a bucket and a role Firehose can assume; returns (bucket ARN, role ARN).
pub async fn bucket_and_role(c: &Clients, bucket: &str, role: &str) -> (String, String) {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    c.s3.create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::UsEast2).build(),
        )
        .send()
        .await
        .expect("create bucket");
    let out = c
        .iam
        .create_role()
        .role_name(role)
        .assume_role_policy_document(trust_policy())
        .send()
        .await
        .expect("create role");
    (format!("arn:aws:s3:::{bucket}"), out.role().unwrap().arn().to_string())
}

/// Creates an ExtendedS3 stream and waits until it is ACTIVE.
pub async fn active_stream(
    c: &Clients,
    name: &str,
    bucket_arn: &str,
    role_arn: &str,
    size_mib: i32,
    interval_s: i32,
    gzip: bool,
) {
    use aws_sdk_firehose::types::{BufferingHints, CompressionFormat, ExtendedS3DestinationConfiguration};
    let dest = ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(bucket_arn)
        .role_arn(role_arn)
        .buffering_hints(BufferingHints::builder().size_in_mbs(size_mib).interval_in_seconds(interval_s).build())
        .compression_format(if gzip { CompressionFormat::Gzip } else { CompressionFormat::Uncompressed })
        .build()
        .unwrap();
    c.firehose
        .create_delivery_stream()
        .delivery_stream_name(name)
        .extended_s3_destination_configuration(dest)
        .send()
        .await
        .expect("create stream");
    wait_active(c, name).await;
}

pub async fn wait_active(c: &Clients, name: &str) {
    eventually("stream ACTIVE", Duration::from_secs(10), || async {
        let d = c.firehose.describe_delivery_stream().delivery_stream_name(name).send().await.ok()?;
        (d.delivery_stream_description()?.delivery_stream_status().as_str() == "ACTIVE").then_some(())
    })
    .await
}

/// Every object under `prefix` in `bucket`: (key, bytes).
pub async fn objects(c: &Clients, bucket: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let list = c.s3.list_objects_v2().bucket(bucket).prefix(prefix).send().await.expect("list");
    for o in list.contents() {
        let key = o.key().unwrap().to_string();
        let body =
            c.s3.get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .expect("get")
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes()
                .to_vec();
        out.push((key, body));
    }
    out
}

/// PutRecordBatch of raw records.
pub async fn try_put_batch(
    c: &Clients,
    stream: &str,
    records: &[Vec<u8>],
) -> Result<
    aws_sdk_firehose::operation::put_record_batch::PutRecordBatchOutput,
    aws_sdk_firehose::error::SdkError<aws_sdk_firehose::operation::put_record_batch::PutRecordBatchError>,
> {
    use aws_sdk_firehose::primitives::Blob;
    use aws_sdk_firehose::types::Record;
    let records: Vec<Record> =
        records.iter().map(|r| Record::builder().data(Blob::new(r.clone())).build().unwrap()).collect();
    c.firehose.put_record_batch().delivery_stream_name(stream).set_records(Some(records)).send().await
}

/// PutRecordBatch of raw records that must succeed (as a call).
pub async fn put_batch(
    c: &Clients,
    stream: &str,
    records: &[Vec<u8>],
) -> aws_sdk_firehose::operation::put_record_batch::PutRecordBatchOutput {
    try_put_batch(c, stream, records).await.expect("put record batch")
}
