//! Dynamic partitioning in the emulator, through aws-sdk-rust: packed JSON lines deaggregated and routed by
//! their own fields, the error output (not JSON, null keys, the active-partition limit), AWS's create-time rules,
//! per-partition flushing by size and by interval (with `--speed`), and durability across SIGKILL.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_firehose::types::{
    BufferingHints, DynamicPartitioningConfiguration, ExtendedS3DestinationConfiguration, ProcessingConfiguration,
};
use base64::Engine;
use serde_json::Value;

use crate::support::{self, Env, bucket_and_role, eventually, objects, put_batch, start_with, wait_active};

const QUERY: &str = "{status: .status, date: .time[0:10]}";
const PREFIX: &str = "logs/status=!{partitionKeyFromQuery:status}/date=!{partitionKeyFromQuery:date}/";
const ERRORS: &str = "errors/!{firehose:error-output-type}/";

/// The configuration setup writes: deaggregate on `\n`, extract keys with `query`, append `\n`.
fn processing(query: &str) -> ProcessingConfiguration {
    firehose_kit::aws::firehose::processing(None, Some(query)).unwrap()
}

fn destination_builder(
    bucket: &str,
    role: &str,
    size: i32,
    interval: i32,
) -> aws_sdk_firehose::types::builders::ExtendedS3DestinationConfigurationBuilder {
    ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(bucket)
        .role_arn(role)
        .prefix(PREFIX)
        .error_output_prefix(ERRORS)
        .buffering_hints(BufferingHints::builder().size_in_mbs(size).interval_in_seconds(interval).build())
        .dynamic_partitioning_configuration(DynamicPartitioningConfiguration::builder().enabled(true).build())
        .processing_configuration(processing(QUERY))
}

fn destination(bucket: &str, role: &str, size: i32, interval: i32) -> ExtendedS3DestinationConfiguration {
    destination_builder(bucket, role, size, interval).build().unwrap()
}

async fn partitioned_stream(env: &Env, name: &str, bucket: &str, size: i32, interval: i32) {
    let (bucket_arn, role) = bucket_and_role(&env.clients, bucket, &format!("{name}-role")).await;
    env.clients
        .firehose
        .create_delivery_stream()
        .delivery_stream_name(name)
        .extended_s3_destination_configuration(destination(&bucket_arn, &role, size, interval))
        .send()
        .await
        .expect("create a partitioned stream");
    wait_active(&env.clients, name).await;
}

/// `n` Apache lines as firehose-kit sends them with `--format json`, one JSON object per line.
/// The lines span about three days, so they fall into several date partitions.
fn json_lines(n: u64, seed: u64) -> Vec<Vec<u8>> {
    use firehose_kit::logs::generator::{Format, Generator};
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-24T06:00:00Z").unwrap().to_utc();
    let mut g = Generator::new(Some(seed), Format::Combined, start, 3.0 * 86_400_000.0 / n as f64);
    (0..n)
        .map(|_| {
            let mut line = Vec::new();
            g.write_line(&mut line);
            let entry = firehose_kit::logs::parser::parse_line(line.strip_suffix(b"\n").unwrap()).unwrap();
            serde_json::to_vec(&entry).unwrap()
        })
        .collect()
}

/// Lines packed into records of up to `per_record` lines, `\n`-delimited (what send does).
fn packed(lines: &[Vec<u8>], per_record: usize) -> Vec<Vec<u8>> {
    lines.chunks(per_record).map(|c| c.iter().flat_map(|l| [l.as_slice(), b"\n"].concat()).collect()).collect()
}

fn keys_of(line: &[u8]) -> (String, String) {
    let v: Value = serde_json::from_slice(line).unwrap();
    (v["status"].to_string(), v["time"].as_str().unwrap()[..10].to_string())
}

#[tokio::test]
async fn packed_lines_land_in_the_partition_of_their_own_status_and_date_once() {
    let env = start_with(|b| b.speed(60.0)).await; // the 60 s interval flushes after 1 s
    partitioned_stream(&env, "Parted", "parted", 64, 60).await;
    let lines = json_lines(20_000, 7);
    let mut records = packed(&lines, 400);
    // One record with a line that is not JSON and one whose key is null, among good lines.
    let bad = b"{\"status\":200,\"time\":\"2026-11-26T10:00:00+00:00\"}\nnot json at all\n{\"status\":null,\"time\":\"2026-11-26T10:00:00+00:00\"}\n";
    records.push(bad.to_vec());
    for chunk in records.chunks(20) {
        assert_eq!(put_batch(&env.clients, "Parted", chunk).await.failed_put_count(), 0);
    }
    let expected = lines.len() + 1;
    let objs = eventually("every line delivered", Duration::from_secs(30), || async {
        let objs = objects(&env.clients, "parted", "logs/").await;
        let n: usize = objs.iter().map(|(_, b)| b.split(|c| *c == b'\n').filter(|l| !l.is_empty()).count()).sum();
        (n >= expected).then_some(objs)
    })
    .await;
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut partitions = BTreeMap::new();
    for (key, body) in &objs {
        // logs/status=404/date=2026-11-26/Parted-1-...
        let parts: Vec<&str> = key.split('/').collect();
        let (status, date) = (parts[1].strip_prefix("status=").unwrap(), parts[2].strip_prefix("date=").unwrap());
        assert!(parts[3].starts_with("Parted-1-"), "{key}");
        *partitions.entry((status.to_string(), date.to_string())).or_insert(0) += 1;
        for line in body.split(|c| *c == b'\n').filter(|l| !l.is_empty()) {
            assert_eq!(
                keys_of(line),
                (status.to_string(), date.to_string()),
                "a line under the wrong partition: {key}"
            );
            *seen.entry(line.to_vec()).or_default() += 1;
        }
    }
    assert!(partitions.len() > 3, "several partitions: {partitions:?}");
    let mut wanted: HashMap<Vec<u8>, usize> = HashMap::new();
    for l in lines.iter().chain([b"{\"status\":200,\"time\":\"2026-11-26T10:00:00+00:00\"}".to_vec()].iter()) {
        *wanted.entry(l.clone()).or_default() += 1;
    }
    assert_eq!(seen, wanted, "every line once, nothing else");

    // The two bad sub-records are in the error output, with their reasons and bytes.
    let errors = eventually("error output", Duration::from_secs(20), || async {
        let objs = objects(&env.clients, "parted", "errors/partitioning-failed/").await;
        (!objs.is_empty()).then_some(objs)
    })
    .await;
    let docs: Vec<Value> = errors
        .iter()
        .flat_map(|(_, b)| {
            b.split(|c| *c == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(docs.len(), 2, "{docs:?}");
    let raw = |d: &Value| base64::engine::general_purpose::STANDARD.decode(d["rawData"].as_str().unwrap()).unwrap();
    assert!(docs.iter().all(|d| d["errorCode"] == "DynamicPartitioning.MetadataExtractionFailed"));
    assert!(
        docs.iter()
            .any(|d| raw(d) == b"not json at all" && d["errorMessage"].as_str().unwrap().contains("not valid JSON"))
    );
    assert!(docs.iter().any(|d| d["errorMessage"].as_str().unwrap().contains("must not be null")));
}

#[tokio::test]
async fn records_beyond_the_active_partition_limit_go_to_the_error_output() {
    let env = start_with(|b| b.speed(60.0).partition_limit(2)).await;
    partitioned_stream(&env, "Limited", "limited", 64, 900).await;
    let line = |status: u16| format!("{{\"status\":{status},\"time\":\"2026-11-26T10:00:00+00:00\"}}\n").into_bytes();
    // Three partitions at once while the interval (15 s at this speed) keeps the first two active.
    put_batch(&env.clients, "Limited", &[line(200), line(404), line(500)]).await;
    let errors = eventually("the overflow in the error output", Duration::from_secs(30), || async {
        let objs = objects(&env.clients, "limited", "errors/").await;
        (!objs.is_empty()).then_some(objs)
    })
    .await;
    let doc: Value = serde_json::from_slice(errors[0].1.split(|c| *c == b'\n').next().unwrap()).unwrap();
    assert_eq!(doc["errorCode"], "DynamicPartitioning.ActivePartitionsLimitExceeded");
    let raw = base64::engine::general_purpose::STANDARD.decode(doc["rawData"].as_str().unwrap()).unwrap();
    assert_eq!(raw, b"{\"status\":500,\"time\":\"2026-11-26T10:00:00+00:00\"}");
    let delivered = eventually("the two partitions", Duration::from_secs(30), || async {
        let objs = objects(&env.clients, "limited", "logs/").await;
        (objs.len() == 2).then_some(objs)
    })
    .await;
    assert!(delivered.iter().all(|(k, _)| k.contains("status=200/") || k.contains("status=404/")), "{delivered:?}");
}

#[tokio::test]
async fn each_dynamic_partitioning_rule_is_refused_with_the_aws_message() {
    let env = start_with(|b| b).await;
    let (bucket, role) = bucket_and_role(&env.clients, "rules", "rules-role").await;
    let create = |d: ExtendedS3DestinationConfiguration| {
        let fh = env.clients.firehose.clone();
        async move {
            let err = fh
                .create_delivery_stream()
                .delivery_stream_name("Rules")
                .extended_s3_destination_configuration(d)
                .send()
                .await
                .unwrap_err();
            let e = err.into_service_error();
            (e.meta().code().unwrap_or_default().to_string(), e.meta().message().unwrap_or_default().to_string())
        }
    };
    let base = || destination_builder(&bucket, &role, 64, 60);
    let cases: Vec<(ExtendedS3DestinationConfiguration, &str)> = vec![
        (
            base()
                .buffering_hints(BufferingHints::builder().size_in_mbs(5).interval_in_seconds(60).build())
                .build()
                .unwrap(),
            "BufferingHints.SizeInMBs must be at least 64 when Dynamic Partitioning is enabled.",
        ),
        (
            base()
                .buffering_hints(BufferingHints::builder().size_in_mbs(64).interval_in_seconds(0).build())
                .build()
                .unwrap(),
            "BufferingHints.IntervalInSeconds must be at least 60 seconds when Dynamic Partitioning is enabled.",
        ),
        (base().set_error_output_prefix(None).build().unwrap(), "ErrorOutputPrefix"),
        (
            base().prefix("logs/").build().unwrap(),
            "S3 Prefix should contain Dynamic Partitioning namespaces when Dynamic Partitioning is enabled",
        ),
        (
            base().set_processing_configuration(None).build().unwrap(),
            "Processing Configuration is not enabled when DataPartitioning is enabled",
        ),
        (
            base()
                .processing_configuration(processing("{status: .status, date: .time[0:10], m: .method}"))
                .build()
                .unwrap(),
            "MetaDataExtraction JQ Query can't contain keys that are not present in the S3 Prefix expression",
        ),
        (
            base().processing_configuration(processing("{status: .status, date: }")).build().unwrap(),
            "is not a valid jq expression",
        ),
        (
            base().set_dynamic_partitioning_configuration(None).build().unwrap(),
            "Dynamic Partitioning Namespaces can only be part of a prefix expression when Dynamic Partitioning is enabled.",
        ),
        (
            base().set_dynamic_partitioning_configuration(None).prefix("logs/").build().unwrap(),
            "class com.amazonaws.services.firehose.internal.model.MetadataExtractionProcessor can only be present when Dynamic Partitioning is enabled.",
        ),
    ];
    for (d, message) in cases {
        let (code, got) = create(d).await;
        assert_eq!(code, "InvalidArgumentException", "{message}: {got}");
        assert!(got.contains(message), "expected `{message}`, got `{got}`");
    }
    // Describe returns the configuration with the defaults AWS fills in.
    env.clients
        .firehose
        .create_delivery_stream()
        .delivery_stream_name("Good")
        .extended_s3_destination_configuration(destination(&bucket, &role, 64, 60))
        .send()
        .await
        .unwrap();
    wait_active(&env.clients, "Good").await;
    let d = env.clients.firehose.describe_delivery_stream().delivery_stream_name("Good").send().await.unwrap();
    let ext = d.delivery_stream_description().unwrap().destinations()[0].extended_s3_destination_description().unwrap();
    let dp = ext.dynamic_partitioning_configuration().unwrap();
    assert_eq!((dp.enabled(), dp.retry_options().and_then(|r| r.duration_in_seconds())), (Some(true), Some(300)));
    assert_eq!(ext.processing_configuration().unwrap().processors().len(), 3);
    // Disabling it afterwards is refused.
    let update = aws_sdk_firehose::types::ExtendedS3DestinationUpdate::builder()
        .dynamic_partitioning_configuration(DynamicPartitioningConfiguration::builder().enabled(false).build())
        .build();
    let err = env
        .clients
        .firehose
        .update_destination()
        .delivery_stream_name("Good")
        .current_delivery_stream_version_id("1")
        .destination_id("destinationId-000000000001")
        .extended_s3_destination_update(update)
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().meta().message().unwrap().contains("cannot be disabled"));
}

#[tokio::test]
async fn partition_buffers_flush_by_size_and_by_interval() {
    let env = start_with(|b| b.speed(10.0)).await; // the 60 s interval becomes 6 s
    partitioned_stream(&env, "Flush", "flush", 64, 60).await;
    // Partition 200: 70 MiB in 100 KB lines, cut by size at 64 MiB. Partition 404: one line, cut by interval.
    let pad = "x".repeat(100_000);
    let big = |i: usize| {
        format!("{{\"status\":200,\"time\":\"2026-11-26T10:00:00+00:00\",\"i\":{i},\"pad\":\"{pad}\"}}\n").into_bytes()
    };
    let small = b"{\"status\":404,\"time\":\"2026-11-26T10:00:00+00:00\"}\n".to_vec();
    put_batch(&env.clients, "Flush", std::slice::from_ref(&small)).await;
    let lines: Vec<Vec<u8>> = (0..700).map(big).collect();
    for chunk in lines.chunks(30) {
        put_batch(&env.clients, "Flush", chunk).await;
    }
    let by_size = eventually("an object cut by size", Duration::from_secs(60), || async {
        let list = env.clients.s3.list_objects_v2().bucket("flush").prefix("logs/status=200/").send().await.ok()?;
        list.contents().iter().find(|o| o.size().unwrap_or(0) > 60 << 20).map(|o| o.size().unwrap())
    })
    .await;
    assert!(by_size <= 64 << 20, "at most the size hint: {by_size}");
    let small_obj = eventually("the small partition cut by interval", Duration::from_secs(60), || async {
        let list = env.clients.s3.list_objects_v2().bucket("flush").prefix("logs/status=404/").send().await.ok()?;
        list.contents().first().cloned()
    })
    .await;
    assert_eq!(small_obj.size(), Some(small.len() as i64));
    // Named after its oldest record's arrival, written once its (sped-up) interval had passed.
    let key = small_obj.key().unwrap();
    let info = firehose_kit::firehose::keys::parse_key(key, "Flush", chrono_tz::Tz::UTC).unwrap();
    let waited = small_obj.last_modified().unwrap().secs() - info.time.timestamp();
    assert!(waited >= 5, "flushed by interval (6 s at --speed 10), after {waited} s");
}

#[tokio::test]
async fn sigkill_during_partitioned_buffering_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let lines = json_lines(5_000, 9);
    {
        let (mut process, endpoint) = support::spawn_local_with(dir.path(), &["--speed", "1"]);
        let c = support::clients_for(&endpoint).await;
        let (bucket_arn, role) = bucket_and_role(&c, "killed", "killed-role").await;
        c.firehose
            .create_delivery_stream()
            .delivery_stream_name("Killed")
            .extended_s3_destination_configuration(destination(&bucket_arn, &role, 128, 900))
            .send()
            .await
            .unwrap();
        wait_active(&c, "Killed").await;
        for chunk in packed(&lines, 250).chunks(5) {
            assert_eq!(put_batch(&c, "Killed", chunk).await.failed_put_count(), 0);
        }
        process.0.kill().unwrap(); // SIGKILL while everything is buffered (900 s interval)
        process.0.wait().unwrap();
    }
    // Restarted fast: the re-buffered partitions flush within seconds.
    let (_process, endpoint) = support::spawn_local_with(dir.path(), &["--speed", "1000"]);
    let c = support::clients_for(&endpoint).await;
    let delivered = eventually("every acknowledged line delivered", Duration::from_secs(30), || async {
        let objs = objects(&c, "killed", "logs/").await;
        let all: Vec<Vec<u8>> = objs
            .iter()
            .flat_map(|(_, b)| {
                b.split(|x| *x == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect::<Vec<_>>()
            })
            .collect();
        (all.len() >= lines.len()).then_some(all)
    })
    .await;
    let mut got = delivered.clone();
    got.sort();
    let mut want = lines.clone();
    want.sort();
    assert_eq!(got, want, "each acknowledged line exactly once");
}

#[tokio::test]
async fn setup_partition_by_sends_json_and_verify_checks_every_line_against_its_partition() {
    let env = start_with(|b| b.speed(30.0)).await; // 60 s intervals flush after 2 s
    let dir = tempfile::tempdir().unwrap();
    let ep = env.emu.endpoint();
    let out =
        support::cli(ep, dir.path(), &["setup", "--partition-by", "status,date", "--prefix", "logs/", "-o", "json"]);
    support::assert_exit(&out, 0);
    let v = support::json_out(&out);
    assert_eq!(v["destination"]["partition_query"], "{status: .status, date: .time[0:10]}");
    assert_eq!(v["destination"]["buffer_size_mib"], 64, "AWS's minimum applied");
    let d = env.clients.firehose.describe_delivery_stream().delivery_stream_name("ApacheLogs").send().await.unwrap();
    let ext = d.delivery_stream_description().unwrap().destinations()[0].extended_s3_destination_description().unwrap();
    assert_eq!(ext.prefix(), Some("logs/status=!{partitionKeyFromQuery:status}/date=!{partitionKeyFromQuery:date}/"));
    assert_eq!(ext.error_output_prefix(), Some("logs/errors/!{firehose:error-output-type}/"));

    let sent = support::cli(ep, dir.path(), &["send", "--generate", "20000", "-o", "json"]);
    support::assert_exit(&sent, 0);
    assert!(String::from_utf8_lossy(&sent.stderr).contains("sending the lines as JSON"));
    let s = support::json_out(&sent);
    assert!(s["records"].as_u64().unwrap() >= 40, "packed at most 500 lines per record: {s}");
    assert!(s["records"].as_u64().unwrap() < 20_000 / 100, "and still packed");

    let out = support::cli(ep, dir.path(), &["verify", "-o", "json"]);
    support::assert_exit(&out, 0);
    let v = support::json_out(&out);
    assert_eq!((v["matched"].as_u64(), v["misplaced_lines"].as_u64()), (Some(20_000), Some(0)), "{v}");
    assert!(v["partitions"].as_array().unwrap().len() > 3, "{}", v["partitions"]);
    assert_eq!(v["speed"], 30.0);

    // A line put in a partition its fields do not map to fails verify.
    let stray = b"{\"status\":200,\"time\":\"2026-11-26T10:00:00+00:00\"}\n".to_vec();
    let key = "logs/status=404/date=2026-11-26/ApacheLogs-1-2026-11-26-10-00-00-0b4e6c1a-4f55-4a39-8c69-6d4b35a3e0f1";
    env.clients
        .s3
        .put_object()
        .bucket("firehose-kit-000000000000-us-east-2")
        .key(key)
        .body(stray.into())
        .send()
        .await
        .unwrap();
    let out = support::cli(ep, dir.path(), &["verify", "--no-wait"]);
    support::assert_exit(&out, 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 line is in the wrong partition")
            && text.contains("belongs under `logs/status=200/date=2026-11-26/`"),
        "{text}"
    );

    // Partitioning cannot change in place; --recreate does it.
    let refused = support::cli(ep, dir.path(), &["setup", "--partition-by", "status", "--prefix", "logs/"]);
    support::assert_exit(&refused, 2);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot change dynamic partitioning"));
    let recreated = support::cli(
        ep,
        dir.path(),
        &["setup", "--partition-by", "status", "--prefix", "logs/", "--recreate", "-o", "json"],
    );
    support::assert_exit(&recreated, 0);
    let steps = support::json_out(&recreated)["steps"].clone();
    assert!(
        steps.as_array().unwrap().iter().any(|s| s["resource"] == "stream" && s["action"] == "recreate"),
        "{steps}"
    );
    // Raw lines asked for explicitly are refused: they would all land in the error output.
    let raw = support::cli(ep, dir.path(), &["send", "--generate", "10", "--format", "raw"]);
    support::assert_exit(&raw, 2);
}

/// A partition whose delivery keeps failing (the role may write only under `errors/`) is retried for
/// `RetryOptions.DurationInSeconds`, then its records go to the error output with the failure's code: never
/// retried for the whole retry horizon, never dropped.
#[tokio::test]
async fn a_partition_failing_past_its_retry_options_goes_to_the_error_output() {
    use aws_sdk_firehose::types::RetryOptions;
    let env = start_with(|b| b.speed(60.0)).await;
    let c = &env.clients;
    let (bucket_arn, role) = bucket_and_role(c, "retried", "retried-role").await;
    let only_errors = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:AbortMultipartUpload","s3:GetBucketLocation","s3:GetObject","s3:ListBucket","s3:ListBucketMultipartUploads"],"Resource":["arn:aws:s3:::retried","arn:aws:s3:::retried/errors/*"]}]}"#;
    let policy = firehose_kit::aws::policy::DELIVERY_POLICY_NAME;
    c.iam
        .put_role_policy()
        .role_name("retried-role")
        .policy_name(policy)
        .policy_document(only_errors)
        .send()
        .await
        .unwrap();
    // 120 s of retries at --speed 60: 2 s.
    let dp = DynamicPartitioningConfiguration::builder()
        .enabled(true)
        .retry_options(RetryOptions::builder().duration_in_seconds(120).build())
        .build();
    let dest = destination_builder(&bucket_arn, &role, 64, 60).dynamic_partitioning_configuration(dp).build().unwrap();
    c.firehose
        .create_delivery_stream()
        .delivery_stream_name("Retried")
        .extended_s3_destination_configuration(dest)
        .send()
        .await
        .unwrap();
    wait_active(c, "Retried").await;
    let line = br#"{"status":200,"time":"2026-11-26T10:00:00+00:00"}"#.to_vec();
    put_batch(c, "Retried", &[[line.as_slice(), b"\n"].concat()]).await;
    let errors = eventually("the record in the error output", Duration::from_secs(30), || async {
        let objs = objects(c, "retried", "errors/").await;
        (!objs.is_empty()).then_some(objs)
    })
    .await;
    assert!(errors[0].0.starts_with("errors/partitioning-failed/"), "{}", errors[0].0);
    let doc: Value = serde_json::from_slice(errors[0].1.split(|c| *c == b'\n').next().unwrap()).unwrap();
    assert_eq!(doc["errorCode"], "S3.AccessDenied", "{doc}");
    assert!(doc["errorMessage"].as_str().unwrap().contains("retried for the RetryOptions duration"), "{doc}");
    let raw = base64::engine::general_purpose::STANDARD.decode(doc["rawData"].as_str().unwrap()).unwrap();
    assert_eq!(raw, [line.as_slice(), b"\n"].concat(), "the record as the partition held it");
    assert!(objects(c, "retried", "logs/").await.is_empty());
}
