//! Testing your own Firehose producer in `cargo test`, offline: start the embedded emulator, point
//! aws-sdk-firehose at it, run your code, and read back what Firehose delivered to S3.
//!
//! `ship` below stands for the code under test. The test creates what your infrastructure code would (a
//! bucket, a delivery role that trusts Firehose and may write to the bucket, a Direct Put stream), ships three
//! lines, and waits for the object. The emulator applies what AWS would: the role must exist, trust
//! `firehose.amazonaws.com` and allow `s3:PutObject`, or delivery fails as it would on AWS.
//!
//! It is a test: `cargo test -p firehose-kit-emulator --example producer` (`make test` runs it).
//! `cargo run -p firehose-kit-emulator --example producer` runs the same steps and prints the object.

use std::time::{Duration, Instant};

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::{BufferingHints, DeliveryStreamStatus, ExtendedS3DestinationConfiguration, Record};
use firehose_kit_emulator::{Emulator, EmulatorHandle};

/// The code under test: ships log lines to a delivery stream, one record per line; returns how many Firehose
/// accepted.
pub async fn ship(
    client: &aws_sdk_firehose::Client,
    stream: &str,
    lines: &[&str],
) -> Result<usize, aws_sdk_firehose::Error> {
    let records = lines
        .iter()
        .map(|line| Record::builder().data(Blob::new(format!("{line}\n"))).build().expect("data is set"))
        .collect();
    let out = client.put_record_batch().delivery_stream_name(stream).set_records(Some(records)).send().await?;
    Ok(lines.len() - out.failed_put_count() as usize)
}

const BUCKET: &str = "my-app-logs";
const STREAM: &str = "my-app";
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"firehose.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const WRITE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetBucketLocation","s3:ListBucket"],"Resource":["arn:aws:s3:::my-app-logs","arn:aws:s3:::my-app-logs/*"]}]}"#;

struct Clients {
    firehose: aws_sdk_firehose::Client,
    s3: aws_sdk_s3::Client,
    iam: aws_sdk_iam::Client,
}

/// SDK clients for the emulator: its endpoint, its credentials, any region.
async fn clients(emulator: &EmulatorHandle) -> Clients {
    let credentials =
        aws_sdk_firehose::config::Credentials::new(emulator.access_key_id(), emulator.secret(), None, None, "test");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(emulator.endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .load()
        .await;
    let s3 = aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build();
    Clients {
        firehose: aws_sdk_firehose::Client::new(&config),
        s3: aws_sdk_s3::Client::from_conf(s3),
        iam: aws_sdk_iam::Client::new(&config),
    }
}

/// What infrastructure code would create: the bucket, the delivery role, the stream (ACTIVE on return).
async fn create_pipeline(c: &Clients) -> Result<(), Box<dyn std::error::Error>> {
    c.s3.create_bucket().bucket(BUCKET).send().await?;
    let role = c.iam.create_role().role_name("my-app-delivery").assume_role_policy_document(TRUST).send().await?;
    let role_arn = role.role().map(|r| r.arn().to_string()).unwrap_or_default();
    c.iam.put_role_policy().role_name("my-app-delivery").policy_name("write").policy_document(WRITE).send().await?;
    let destination = ExtendedS3DestinationConfiguration::builder()
        .role_arn(role_arn)
        .bucket_arn(format!("arn:aws:s3:::{BUCKET}"))
        .buffering_hints(BufferingHints::builder().size_in_mbs(1).interval_in_seconds(60).build())
        .build()?;
    c.firehose
        .create_delivery_stream()
        .delivery_stream_name(STREAM)
        .extended_s3_destination_configuration(destination)
        .send()
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = c.firehose.describe_delivery_stream().delivery_stream_name(STREAM).send().await?;
        let status = d.delivery_stream_description().map(|d| d.delivery_stream_status().clone());
        if status == Some(DeliveryStreamStatus::Active) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("the stream is still {status:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the first object in the bucket (the buffer is flushed after its interval) and returns its text.
async fn first_object(c: &Clients, within: Duration) -> Result<(String, String), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + within;
    loop {
        let listed = c.s3.list_objects_v2().bucket(BUCKET).send().await?;
        if let Some(key) = listed.contents().first().and_then(|o| o.key()) {
            let object = c.s3.get_object().bucket(BUCKET).key(key).send().await?;
            let bytes = object.body.collect().await?.into_bytes();
            return Ok((key.to_string(), String::from_utf8(bytes.to_vec())?));
        }
        if Instant::now() > deadline {
            return Err(format!("nothing was delivered within {within:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The whole scenario: emulator up, pipeline created, lines shipped, object read back.
async fn scenario() -> Result<(String, String), Box<dyn std::error::Error>> {
    let emulator = Emulator::builder()
        .addr("127.0.0.1:0")
        .create_delay(Duration::ZERO)
        // The 60 s buffering interval passes in 1 s; keys and timestamps still follow AWS's layout.
        .speed(60.0)
        .start()
        .await?;
    let c = clients(&emulator).await;
    create_pipeline(&c).await?;
    let accepted = ship(&c.firehose, STREAM, &["GET /a 200", "GET /b 404", "POST /c 201"]).await?;
    assert_eq!(accepted, 3);
    // Generous: the flush is due after 1 s; a loaded machine may take longer.
    let delivered = first_object(&c, Duration::from_secs(60)).await?;
    emulator.shutdown().await;
    Ok(delivered)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (key, text) = scenario().await?;
    println!("s3://{BUCKET}/{key}:\n{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_producer_delivers_every_line_to_s3() {
        let (key, text) = scenario().await.unwrap();
        assert_eq!(text, "GET /a 200\nGET /b 404\nPOST /c 201\n", "records are concatenated as sent");
        // AWS's key layout: YYYY/MM/DD/HH/<stream>-<version>-<timestamp>-<uuid>.
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 5, "{key}");
        assert!(parts[4].starts_with("my-app-1-"), "{key}");
    }
}
