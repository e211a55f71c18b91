//! Kinesis Data Streams → Firehose → S3: the emulator's Kinesis API through aws-sdk-kinesis (shards, routing,
//! iterators, throttling), Firehose reading a data stream (LATEST, KPL de-aggregation, two readers of one
//! stream, the refusal of Direct Put calls, the role's read permissions), and the chained pipeline through the
//! binary: setup `--source kinesis`, send, verify, teardown.

use std::time::Duration;

use aws_sdk_firehose::types::{
    BufferingHints, DeliveryStreamType, ExtendedS3DestinationConfiguration, KinesisStreamSourceConfiguration,
};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use serde_json::Value;

use crate::support::{self, ACCOUNT, REGION, assert_exit, cli, eventually, json_out};
use firehose_kit::aws::Clients;
use firehose_kit_domain::kinesis::{SubRecord, aggregate};

async fn data_stream(c: &Clients, name: &str, shards: i32) -> String {
    c.kinesis.create_stream().stream_name(name).shard_count(shards).send().await.expect("create stream");
    eventually("data stream ACTIVE", Duration::from_secs(30), || async {
        let d = c.kinesis.describe_stream_summary().stream_name(name).send().await.ok()?;
        let d = d.stream_description_summary()?.clone();
        (d.stream_status().as_str() == "ACTIVE").then(|| d.stream_arn().to_string())
    })
    .await
}

fn entry(data: &[u8], key: &str) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder().data(Blob::new(data)).partition_key(key).build().unwrap()
}

/// A Firehose stream reading `stream_arn` into `bucket` under `prefix` (1 MiB / 60 s, scaled by the speed).
async fn chained(c: &Clients, name: &str, stream_arn: &str, bucket_arn: &str, role_arn: &str, prefix: &str) {
    let dest = ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(bucket_arn)
        .role_arn(role_arn)
        .prefix(prefix)
        .buffering_hints(BufferingHints::builder().size_in_mbs(1).interval_in_seconds(60).build())
        .build()
        .unwrap();
    let source =
        KinesisStreamSourceConfiguration::builder().kinesis_stream_arn(stream_arn).role_arn(role_arn).build().unwrap();
    c.firehose
        .create_delivery_stream()
        .delivery_stream_name(name)
        .delivery_stream_type(DeliveryStreamType::KinesisStreamAsSource)
        .kinesis_stream_source_configuration(source)
        .extended_s3_destination_configuration(dest)
        .send()
        .await
        .expect("create chained stream");
    support::wait_active(c, name).await;
}

async fn grant_read(c: &Clients, role: &str, stream_arn: &str) {
    let policy = firehose_kit::aws::policy::source_policy(stream_arn).to_string();
    c.iam
        .put_role_policy()
        .role_name(role)
        .policy_name(firehose_kit::aws::policy::SOURCE_POLICY_NAME)
        .policy_document(policy)
        .send()
        .await
        .unwrap();
}

/// Shards, routing by MD5, sequence numbers and the iterator types, through aws-sdk-kinesis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_routes_by_hash_key_and_reads_back_with_every_iterator_type() {
    let env = support::start().await;
    let c = &env.clients;
    data_stream(c, "routes", 2).await;
    let shards = c.kinesis.list_shards().stream_name("routes").send().await.unwrap();
    let mixed = c.kinesis.list_shards().stream_name("routes").next_token("x").send().await.unwrap_err();
    let message = format!("{:?}", mixed.into_service_error());
    assert!(message.contains("NextToken and StreamName cannot be provided together."), "{message}");
    let ranges: Vec<(String, String)> = shards
        .shards()
        .iter()
        .map(|s| {
            (
                s.hash_key_range().unwrap().starting_hash_key().into(),
                s.hash_key_range().unwrap().ending_hash_key().into(),
            )
        })
        .collect();
    assert_eq!(ranges[0], ("0".into(), "170141183460469231731687303715884105727".into()));
    // MD5("a") is below the midpoint; an explicit hash key of 2^128-1 is the last shard's.
    let a =
        c.kinesis.put_record().stream_name("routes").partition_key("a").data(Blob::new("one\n")).send().await.unwrap();
    assert_eq!(a.shard_id(), "shardId-000000000000");
    let last = c
        .kinesis
        .put_record()
        .stream_name("routes")
        .partition_key("a")
        .explicit_hash_key("340282366920938463463374607431768211455")
        .data(Blob::new("two\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(last.shard_id(), "shardId-000000000001");
    let b = c
        .kinesis
        .put_record()
        .stream_name("routes")
        .partition_key("a")
        .data(Blob::new("three\n"))
        .send()
        .await
        .unwrap();
    assert!(b.sequence_number() > a.sequence_number() && a.sequence_number().len() == 56);

    let read = |kind: ShardIteratorType, seq: Option<String>| {
        let c = c.clone();
        async move {
            let it = c
                .kinesis
                .get_shard_iterator()
                .stream_name("routes")
                .shard_id("shardId-000000000000")
                .shard_iterator_type(kind)
                .set_starting_sequence_number(seq)
                .send()
                .await
                .unwrap();
            let out = c.kinesis.get_records().shard_iterator(it.shard_iterator().unwrap()).send().await.unwrap();
            out.records().iter().map(|r| String::from_utf8_lossy(r.data().as_ref()).to_string()).collect::<Vec<_>>()
        }
    };
    assert_eq!(read(ShardIteratorType::TrimHorizon, None).await, ["one\n", "three\n"]);
    assert!(read(ShardIteratorType::Latest, None).await.is_empty());
    let first = Some(a.sequence_number().to_string());
    assert_eq!(read(ShardIteratorType::AtSequenceNumber, first.clone()).await, ["one\n", "three\n"]);
    assert_eq!(read(ShardIteratorType::AfterSequenceNumber, first).await, ["three\n"]);
    let wrong = c
        .kinesis
        .get_shard_iterator()
        .stream_name("routes")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(last.sequence_number())
        .send()
        .await
        .unwrap_err();
    assert!(format!("{:?}", wrong).contains("It encodes shardId-000000000001"), "{wrong:?}");
    let missing = c.kinesis.put_record().stream_name("nope").partition_key("a").data(Blob::new("x")).send().await;
    let e = missing.unwrap_err().into_service_error();
    assert!(e.is_resource_not_found_exception());
    assert_eq!(e.to_string(), format!("ResourceNotFoundException: Stream nope under account {ACCOUNT} not found."));
}

/// Firehose reads from LATEST, de-aggregates KPL records, delivers every record to each of two streams on one
/// data stream, and refuses Direct Put calls on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_firehose_streams_read_one_data_stream_from_latest_and_deaggregate_kpl_records() {
    let env = support::start_with(|b| b.speed(60.0)).await;
    let c = &env.clients;
    let arn = data_stream(c, "shared", 2).await;
    let before: Vec<PutRecordsRequestEntry> =
        (0..5).map(|i| entry(format!("before {i}\n").as_bytes(), &format!("k{i}"))).collect();
    c.kinesis.put_records().stream_name("shared").set_records(Some(before)).send().await.unwrap();
    let (bucket_arn, role_arn) = support::bucket_and_role(c, "chained", "chain-role").await;
    grant_read(c, "chain-role", &arn).await;
    chained(c, "reader-a", &arn, &bucket_arn, &role_arn, "a/").await;
    chained(c, "reader-b", &arn, &bucket_arn, &role_arn, "b/").await;
    let d = c.firehose.describe_delivery_stream().delivery_stream_name("reader-a").send().await.unwrap();
    let d = d.delivery_stream_description().unwrap();
    assert_eq!(d.delivery_stream_type().as_str(), "KinesisStreamAsSource");
    let src = d.source().unwrap().kinesis_stream_source_description().unwrap();
    assert_eq!(src.kinesis_stream_arn(), Some(arn.as_str()));
    assert!(src.delivery_start_timestamp().is_some());

    let mut records: Vec<PutRecordsRequestEntry> =
        (0..200).map(|i| entry(format!("line {i}\n").as_bytes(), &format!("key-{i}"))).collect();
    let subs: Vec<SubRecord> = (0..3)
        .map(|i| SubRecord {
            partition_key: format!("p{i}"),
            explicit_hash_key: None,
            data: format!("kpl {i}\n").into_bytes(),
        })
        .collect();
    records.push(entry(&aggregate(&subs), "kpl"));
    let out = c.kinesis.put_records().stream_name("shared").set_records(Some(records)).send().await.unwrap();
    assert_eq!(out.failed_record_count(), Some(0));
    for prefix in ["a/", "b/"] {
        let mut lines = support::wait_lines(c, "chained", prefix, 203).await;
        lines.sort();
        let mut want: Vec<String> =
            (0..200).map(|i| format!("line {i}")).chain((0..3).map(|i| format!("kpl {i}"))).collect();
        want.sort();
        assert_eq!(lines, want, "{prefix}: every record once, KPL sub-records apart, nothing put before creation");
    }
    let refused = support::try_put_batch(c, "reader-a", &[b"direct\n".to_vec()]).await.unwrap_err();
    let refused = refused.into_service_error().to_string();
    assert!(
        refused.contains("This operation is not permitted on KinesisStreamAsSource delivery stream type."),
        "{refused}"
    );
}

/// Without the read permissions nothing is read and `Kinesis.AccessDenied` is logged; granted, the waiting
/// records arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_may_not_read_the_stream_logs_access_denied_until_it_may() {
    let env = support::start_with(|b| b.speed(60.0)).await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    let c = &env.clients;
    support::setup(&ep, dir.path(), &["--stream", "denied", "--source", "kinesis", "--shards", "2"]);
    let role = firehose_kit::settings::role_name("denied").unwrap();
    c.iam
        .delete_role_policy()
        .role_name(&role)
        .policy_name(firehose_kit::aws::policy::SOURCE_POLICY_NAME)
        .send()
        .await
        .unwrap();
    assert_exit(&cli(&ep, dir.path(), &["--stream", "denied", "send", "--generate", "500"]), 0);
    eventually("Kinesis.AccessDenied logged", Duration::from_secs(30), || async {
        let out = c.logs.filter_log_events().log_group_name("/aws/kinesisfirehose/denied").send().await.ok()?;
        out.events()
            .iter()
            .any(|e| e.message().unwrap_or("").contains("\"errorCode\":\"Kinesis.AccessDenied\""))
            .then_some(())
    })
    .await;
    let failed = cli(&ep, dir.path(), &["--stream", "denied", "verify", "--wait", "2s"]);
    assert_ne!(failed.status.code(), Some(0));
    let text = String::from_utf8_lossy(&failed.stdout).to_string() + &String::from_utf8_lossy(&failed.stderr);
    assert!(text.contains("Kinesis.AccessDenied"), "{text}");
    let doctor = cli(&ep, dir.path(), &["--stream", "denied", "doctor"]);
    let text = String::from_utf8_lossy(&doctor.stdout).to_string() + &String::from_utf8_lossy(&doctor.stderr);
    assert!(
        text.contains("kinesis:GetRecords") || text.contains(firehose_kit::aws::policy::SOURCE_POLICY_NAME),
        "{text}"
    );
    let repaired = json_out(&cli(&ep, dir.path(), &["--stream", "denied", "setup", "-o", "json"]));
    let role_step = repaired["steps"].as_array().unwrap().iter().find(|s| s["resource"] == "role").unwrap().clone();
    assert_eq!(role_step["action"], "update", "{repaired}");
    assert_exit(&cli(&ep, dir.path(), &["--stream", "denied", "verify", "--wait", "60s"]), 0);
}

/// A hot partition key under `--quota` is throttled on its shard with AWS's per-entry message while the other
/// shard's entries in the same call are accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_partition_key_throttles_one_shard_while_the_others_flow() {
    let env = support::start_with(|b| b.quota(Some(firehose_kit_emulator::Quota::BIG_REGIONS))).await;
    let c = &env.clients;
    data_stream(c, "hot", 2).await;
    let payload = vec![b'x'; 8 * 1024];
    // "a" routes to shard 0; explicit hash keys put the cold entries on shard 1.
    let mut entries: Vec<PutRecordsRequestEntry> = (0..200).map(|_| entry(&payload, "a")).collect();
    entries.extend((0..100).map(|i| {
        PutRecordsRequestEntry::builder()
            .data(Blob::new(format!("cold {i}")))
            .partition_key(format!("c{i}"))
            .explicit_hash_key("340282366920938463463374607431768211455")
            .build()
            .unwrap()
    }));
    let out = c.kinesis.put_records().stream_name("hot").set_records(Some(entries)).send().await.unwrap();
    let failed: Vec<_> = out.records().iter().filter(|r| r.error_code().is_some()).collect();
    assert!(!failed.is_empty() && (out.failed_record_count() == Some(failed.len() as i32)));
    for r in &failed {
        assert_eq!(r.error_code(), Some("ProvisionedThroughputExceededException"));
        assert_eq!(
            r.error_message(),
            Some(
                format!("Rate exceeded for shard shardId-000000000000 in stream hot under account {ACCOUNT}.").as_str()
            )
        );
    }
    let cold_ok = out.records()[200..].iter().filter(|r| r.shard_id() == Some("shardId-000000000001")).count();
    assert_eq!(cold_ok, 100, "the cold shard took every entry");
    let _ = REGION;
}

/// The chained pipeline through the binary: setup creates the data stream (4 shards) and the stream reading it
/// (re-run: unchanged), send writes 200,000 lines with PutRecords spread over the shards, verify proves every
/// line, teardown removes the data stream too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_source_kinesis_then_send_and_verify_200k_lines() {
    let env = support::start_with(|b| b.speed(60.0)).await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    let setup = ["setup", "--source", "kinesis", "--shards", "4", "-o", "json"];
    let created = json_out(&cli(&ep, dir.path(), &setup));
    let actions = crate::provision::actions(&created);
    assert!(actions.contains(&("data stream".to_string(), "create".to_string())), "{created}");
    assert_eq!(created["source"]["data_stream"], "ApacheLogs");
    let again = json_out(&cli(&ep, dir.path(), &["setup", "-o", "json"]));
    assert!(crate::provision::actions(&again).iter().all(|(_, a)| a == "unchanged"), "{again}");
    let switch = cli(&ep, dir.path(), &["setup", "--source", "direct-put"]);
    assert_exit(&switch, 2);

    let sent = cli(&ep, dir.path(), &["send", "--generate", "200000", "-o", "json"]);
    assert_exit(&sent, 0);
    let report = json_out(&sent);
    assert_eq!(report["lines"], 200_000);
    let spread = report["data_stream"]["records_per_shard"].as_object().unwrap().clone();
    assert_eq!(spread.len(), 4, "{report}");
    let records: u64 = spread.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(records, report["records"].as_u64().unwrap());
    let verified = cli(&ep, dir.path(), &["verify", "-o", "json"]);
    assert_exit(&verified, 0);
    let v: Value = json_out(&verified);
    assert_eq!((v["verified"].as_bool(), v["matched"].as_u64()), (Some(true), Some(200_000)), "{v}");

    let status = String::from_utf8_lossy(&cli(&ep, dir.path(), &["status"]).stdout).to_string();
    assert!(status.contains("data stream") && status.contains("4 shards"), "{status}");
    let torn = json_out(&cli(&ep, dir.path(), &["teardown", "--yes", "-o", "json"]));
    let gone = torn.to_string();
    assert!(gone.contains("\"resource\":\"data stream\"") && gone.contains("\"fate\":\"deleted\""), "{torn}");
    let listed = env.clients.kinesis.list_streams().send().await.unwrap();
    assert!(listed.stream_names().is_empty() || eventually_gone(&env.clients).await);
}

/// A data stream the user made, adopted by `setup --source-stream`: teardown removes what setup made and keeps
/// the user's stream, says so, and exits 0 with no hint that would delete it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_keeps_an_adopted_data_stream_and_exits_0() {
    let env = support::start().await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    data_stream(&env.clients, "Mine", 1).await;
    assert_exit(&cli(&ep, dir.path(), &["setup", "--source", "kinesis", "--source-stream", "Mine"]), 0);
    assert_exit(&cli(&ep, dir.path(), &["send", "--generate", "100"]), 0);
    assert_exit(&cli(&ep, dir.path(), &["verify"]), 0);
    let torn = cli(&ep, dir.path(), &["teardown", "--yes"]);
    assert_exit(&torn, 0);
    let said = String::from_utf8_lossy(&torn.stderr);
    assert!(said.contains("data stream Mine  kept (no firehose-kit:managed tag"), "{said}");
    assert!(!said.contains("--force"), "no hint deletes what firehose-kit did not make: {said}");
    env.clients.kinesis.describe_stream_summary().stream_name("Mine").send().await.expect("the user's stream stays");
}

async fn eventually_gone(c: &Clients) -> bool {
    eventually("data stream gone", Duration::from_secs(30), || async {
        c.kinesis.list_streams().send().await.ok()?.stream_names().is_empty().then_some(true)
    })
    .await
}

/// The emulator killed (SIGKILL) every half second while send writes 100,000 lines to a 4-shard data stream and
/// Firehose reads it, restarted on its data dir each time: verify finds every line, and reports lines read twice
/// (a kill between journaling a batch and saving the read position) as duplicates, not as missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_of_the_emulator_during_a_chained_run_lose_no_line() {
    let (kills, v) = crate::crash::lines_survive_kills(&["--source", "kinesis", "--shards", "4"]).await;
    eprintln!("chained run through {kills} kills: 100,000 lines matched, {} duplicated", v["duplicated"]);
}

/// `send --partition-key host`: one JSON line per record, keyed by its host, so one host's lines all land on one
/// shard; refused for a Direct Put stream, which has no partition keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_key_keeps_each_hosts_lines_on_one_shard() {
    let env = support::start_with(|b| b.speed(60.0)).await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    let c = &env.clients;
    support::setup(&ep, dir.path(), &["--stream", "Direct"]);
    let refused = cli(&ep, dir.path(), &["--stream", "Direct", "send", "--generate", "10", "--partition-key", "host"]);
    assert_exit(&refused, 2);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("setup --source kinesis"));
    support::setup(&ep, dir.path(), &["--stream", "Keyed", "--source", "kinesis", "--shards", "4"]);
    let sent = cli(
        &ep,
        dir.path(),
        &["--stream", "Keyed", "send", "--generate", "2000", "--partition-key", "host", "-o", "json"],
    );
    assert_exit(&sent, 0);
    let report = json_out(&sent);
    assert_eq!(
        (report["records"].as_u64(), report["one_line_per_record"].as_bool()),
        (Some(2000), Some(true)),
        "{report}"
    );
    let mut shard_of_host: std::collections::HashMap<String, String> = Default::default();
    let mut read = 0;
    for shard in (0..4).map(|i| format!("shardId-{i:012}")) {
        let it = c
            .kinesis
            .get_shard_iterator()
            .stream_name("Keyed")
            .shard_id(&shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let out = c.kinesis.get_records().shard_iterator(it.shard_iterator().unwrap()).send().await.unwrap();
        for r in out.records() {
            let line: Value = serde_json::from_slice(r.data().as_ref()).unwrap();
            let host = line["host"].as_str().unwrap().to_string();
            assert_eq!(r.partition_key(), Some(host.as_str()));
            let first = shard_of_host.entry(host.clone()).or_insert_with(|| shard.clone());
            assert_eq!(*first, shard, "{host}'s lines are all on one shard");
            read += 1;
        }
    }
    assert_eq!(read, 2000);
    assert!(shard_of_host.values().collect::<std::collections::HashSet<_>>().len() > 1, "hosts spread over shards");
    assert_exit(&cli(&ep, dir.path(), &["--stream", "Keyed", "verify"]), 0);
}

/// A data stream in front of a partitioned stream and of a transforming one: what Firehose reads goes through the
/// same dynamic partitioning and the same Lambda processor as Direct Put, and verify proves every line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chained_streams_partition_and_transform_like_direct_put() {
    let env = support::start_with(|b| b.speed(60.0)).await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    support::setup(&ep, dir.path(), &["--stream", "Parted", "--source", "kinesis", "--partition-by", "status"]);
    assert_exit(&cli(&ep, dir.path(), &["--stream", "Parted", "send", "--generate", "20000"]), 0);
    let verified = cli(&ep, dir.path(), &["--stream", "Parted", "verify", "-o", "json"]);
    assert_exit(&verified, 0);
    let v = json_out(&verified);
    assert_eq!(v["matched"].as_u64(), Some(20_000), "{v}");
    let keys: Vec<String> =
        support::objects(&env.clients, support::DEFAULT_BUCKET, "").await.into_iter().map(|(k, _)| k).collect();
    assert!(keys.iter().any(|k| k.starts_with("status=200/")), "{keys:?}");
    if std::process::Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED the transforming half: no python3");
        return;
    }
    let handler = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/transform/apache_to_json.py");
    support::setup(&ep, dir.path(), &["--stream", "Shaped", "--source", "kinesis", "--transform", handler]);
    assert_exit(&cli(&ep, dir.path(), &["--stream", "Shaped", "send", "--generate", "2000"]), 0);
    let verified = cli(&ep, dir.path(), &["--stream", "Shaped", "verify", "-o", "json"]);
    assert_exit(&verified, 0);
    let v = json_out(&verified);
    assert_eq!(v["transform"]["transformed"].as_u64(), Some(2000), "{v}");
}
