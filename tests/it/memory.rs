//! The emulator's memory under load: buffered records live in the journal on disk, and only up to
//! `--memory-limit` of them are also kept in memory, whatever is buffered.

use std::time::Duration;

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;

use crate::support::{self, active_stream, bucket_and_role, clients_for, eventually, spawn_local_with};

const STREAMS: usize = 10;
const RECORD: usize = 1_000_000;
/// 100 records of 1,000,000 bytes: 100 MB buffered in each stream.
const RECORDS_PER_STREAM: usize = 100;
const LIMIT_MIB: u64 = 64;
/// What the emulator needs beside buffered records, stated: the binary and runtime (~25 MiB), and per
/// PutRecordBatch in flight its body (base64, ~5.3 MiB) and the decoded records (4 MiB), ten of them here:
/// ~120 MiB; glibc's allocator keeps part of what those calls free (large blocks stop being returned to the
/// system once the mmap threshold has grown). Measured 227–270 MiB peak over runs at a 64 MiB limit with 1 GB
/// buffered (it grew with the data before: over 1 GB), and 28 MiB while a restarted emulator delivers that
/// gigabyte from its journal.
const OVERHEAD_MIB: u64 = 256;

/// Peak resident memory of a process (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

/// Record `seq` of stream `s`: its first bytes say which it is; the rest is filler.
fn record(s: usize, seq: usize) -> Vec<u8> {
    let mut data = vec![b'a' + (seq % 26) as u8; RECORD];
    data[..16].copy_from_slice(format!("{s:04}-{seq:010}-").as_bytes());
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_streams_buffer_a_gigabyte_within_the_memory_limit_and_survive_a_kill() {
    let data = tempfile::tempdir().unwrap();
    let limit = format!("{LIMIT_MIB}MiB");
    let (emu, endpoint) = spawn_local_with(data.path(), &["--memory-limit", &limit]);
    let c = clients_for(&endpoint).await;
    let (bucket_arn, role_arn) = bucket_and_role(&c, "memory", "memory-role").await;
    for s in 0..STREAMS {
        active_stream(&c, &format!("Mem{s}"), &bucket_arn, &role_arn, 128, 900, false).await;
    }
    // 100 MB into each stream, every stream at once, 4 records (4 MB) per call: all acknowledged, none delivered
    // (128 MiB / 900 s hints).
    let mut tasks = Vec::new();
    for s in 0..STREAMS {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for chunk in (0..RECORDS_PER_STREAM).collect::<Vec<_>>().chunks(4) {
                let records: Vec<Record> = chunk
                    .iter()
                    .map(|&seq| Record::builder().data(Blob::new(record(s, seq))).build().unwrap())
                    .collect();
                let out = c
                    .firehose
                    .put_record_batch()
                    .delivery_stream_name(format!("Mem{s}"))
                    .set_records(Some(records))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(out.failed_put_count(), 0);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let pid = emu.0.id();
    let peak = peak_rss_mib(pid);
    let listed = c.s3.list_objects_v2().bucket("memory").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0), "nothing delivered yet: 1 GB is buffered");
    assert!(
        peak < LIMIT_MIB + OVERHEAD_MIB,
        "peak RSS {peak} MiB with 1 GB buffered; limit {LIMIT_MIB} + overhead {OVERHEAD_MIB} MiB"
    );
    eprintln!("emulator peak RSS with 1,000 MB buffered and --memory-limit {limit}: {peak} MiB");

    // Killed (SIGKILL) with everything buffered, restarted on the same data dir: the backlog is re-buffered
    // from the journal's frame headers, not read into memory, and every acknowledged record is delivered once
    // the buffers are cut (UpdateDestination delivers what is buffered under the old settings first).
    drop(emu);
    let (emu, endpoint) = spawn_local_with(data.path(), &["--memory-limit", &limit]);
    let c = clients_for(&endpoint).await;
    for s in 0..STREAMS {
        let name = format!("Mem{s}");
        let d = c.firehose.describe_delivery_stream().delivery_stream_name(&name).send().await.unwrap();
        let d = d.delivery_stream_description().unwrap();
        let update = aws_sdk_firehose::types::ExtendedS3DestinationUpdate::builder()
            .buffering_hints(
                aws_sdk_firehose::types::BufferingHints::builder().size_in_mbs(128).interval_in_seconds(60).build(),
            )
            .build();
        c.firehose
            .update_destination()
            .delivery_stream_name(&name)
            .current_delivery_stream_version_id(d.version_id())
            .destination_id(d.destinations()[0].destination_id())
            .extended_s3_destination_update(update)
            .send()
            .await
            .unwrap();
    }
    eventually("the objects after the restart", Duration::from_secs(120), || async {
        let listed = c.s3.list_objects_v2().bucket("memory").send().await.ok()?;
        (listed.key_count() == Some(STREAMS as i32)).then_some(())
    })
    .await;
    let restarted_peak = peak_rss_mib(emu.0.id());
    eprintln!("restarted emulator peak RSS while delivering 1,000 MB from the journal: {restarted_peak} MiB");
    // No request is in flight and the backlog is not read into memory: the restarted emulator stays within its
    // limit while it streams a gigabyte into ten objects.
    assert!(restarted_peak < LIMIT_MIB, "restart and delivery peak RSS {restarted_peak} MiB");
    let objects = support::objects(&c, "memory", "").await;
    let mut seen = vec![vec![0u32; RECORDS_PER_STREAM]; STREAMS];
    for (key, body) in &objects {
        assert_eq!(body.len() % RECORD, 0, "{key}: whole records");
        for r in body.chunks(RECORD) {
            let head = std::str::from_utf8(&r[..16]).unwrap();
            let s: usize = head[..4].parse().unwrap();
            let seq: usize = head[5..15].parse().unwrap();
            assert_eq!(r, record(s, seq).as_slice(), "{key}: record {s}/{seq} is intact");
            assert!(key.contains(&format!("Mem{s}-")), "{key} holds a record of stream {s}");
            seen[s][seq] += 1;
        }
    }
    assert!(seen.iter().flatten().all(|n| *n == 1), "every acknowledged record exactly once: {seen:?}");
    drop(emu);
}
