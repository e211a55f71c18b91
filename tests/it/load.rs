//! Many clients at once: 32 clients mixing PutRecord and PutRecordBatch across 8 streams, half of the streams
//! driven past their throughput quota, for a few seconds. Every acknowledged record must be delivered exactly
//! once, and the only failures must be the modelled throttling. (`make bench` runs the same load longer
//! against a `firehose-kit local` process and reports throughput, latency and peak memory.)

use std::time::Duration;

use firehose_kit::loadgen::{self, LoadSpec};
use firehose_kit_emulator::Quota;

use crate::support::{active_stream, bucket_and_role, start_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_clients_on_eight_streams_get_every_acknowledged_record_delivered_once() {
    let quota = Quota { bytes_per_sec: 2.0 * 1024.0 * 1024.0, requests_per_sec: 1000.0, records_per_sec: 100_000.0 };
    let env = start_with(|b| b.quota(Some(quota))).await;
    let c = &env.clients;
    let (bucket, role) = bucket_and_role(c, "load", "load-role").await;
    let streams: Vec<String> = (0..8).map(|i| format!("Load{i}")).collect();
    for s in &streams {
        active_stream(c, s, &bucket, &role, 1, 60, false).await;
    }
    // Streams 0-3: seven clients each, far past 2 MiB/s. Streams 4-7: one paced client each, under it.
    let spec = LoadSpec {
        streams: streams.clone(),
        clients_per_stream: vec![7, 7, 7, 7, 1, 1, 1, 1],
        batch_records: 200,
        record_size: 300,
        paced: streams[4..].iter().map(|s| (s.clone(), Duration::from_millis(50))).collect(),
        duration: Duration::from_secs(3),
    };
    let (report, acked) = loadgen::run(c, &spec).await;
    assert_eq!(report.clients, 32);
    assert!(report.errors.is_empty(), "only throttling may fail: {:?}", report.errors);
    assert!(report.batch_calls > 0 && report.record_calls > 0, "{report:?}");
    assert!(report.throttled > 0, "the busy streams were throttled: {report:?}");
    for s in &streams {
        assert!(report.per_stream.get(s).copied().unwrap_or(0) > 0, "{s} got records in: {report:?}");
    }
    let check = loadgen::check_delivery(c, "load", &acked, Duration::from_secs(30)).await.unwrap();
    assert!(check.exactly_once(), "{check:?}");
    assert_eq!(check.acknowledged, report.records);
}
