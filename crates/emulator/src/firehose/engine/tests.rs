//! Tests of a plain stream's lane end to end (journal, buffer, writer, progress), and of the key layout.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::buffer::Hints;
use super::lane::Lane;
use super::stage::Stage;
use super::{Context, MemoryBudget};
use crate::firehose::gate::test_gate;
use crate::firehose::journal::{self, Journal, Pending, Progress};
use crate::firehose::target::Target;
use crate::s3::{PutAttrs, Store};
use firehose_kit_domain::prefix;
use firehose_kit_domain::types::Compression;

/// A destination on bucket `b` as the role `writer` of [`test_gate`].
pub fn target() -> Target {
    Target {
        stream: "S".into(),
        stream_arn: "arn:aws:firehose:us-east-1:000000000000:deliverystream/S".into(),
        region: "us-east-1".into(),
        role_arn: "arn:aws:iam::000000000000:role/writer".into(),
        logging: None,
        version: 1,
        bucket: "b".into(),
        prefix: prefix::validate(None, None, false).unwrap().data,
        zone: chrono_tz::Tz::UTC,
        compression: Compression::Uncompressed,
        extension: String::new(),
        keys: None,
        output_type: None,
        conversion: None,
        append_delimiter: false,
    }
}

/// A write stage to [`target`].
pub fn write_stage() -> Arc<Stage> {
    Arc::new(Stage::Write(Arc::new(target())))
}

/// A context over a fresh store (with bucket `b`) and gate under `dir`.
fn context(dir: &std::path::Path, fail: Option<&str>, horizon: Duration, budget: usize) -> Arc<Context> {
    let store = Arc::new(Store::open(&dir.join("s3")).unwrap());
    store.create_bucket("b", None).unwrap();
    let (gate, _) = test_gate(&dir.join("gate"), fail.map(|f| f.parse().unwrap()));
    Arc::new(Context {
        store,
        gate,
        lambda: None,
        glue: None,
        budget: MemoryBudget::new(budget),
        durability: Default::default(),
        speed: 1.0,
        horizon,
    })
}

fn lane(dir: &std::path::Path, ctx: &Arc<Context>, stage: Arc<Stage>, size: usize) -> Arc<Lane> {
    let hints = Hints { size_bytes: size, interval_ms: 60_000 };
    Lane::open(dir.to_path_buf(), "S".into(), hints, stage, ctx.clone()).unwrap()
}

fn objects(store: &Store) -> Vec<Vec<u8>> {
    let page = store.list("b", "", None, None, 1000).unwrap();
    page.objects.iter().map(|o| std::fs::read(store.get("b", &o.key).unwrap().1).unwrap()).collect()
}

/// Objects of spilled buffers are streamed from the journal, byte for byte, gzip or not.
#[test]
fn spilled_buffers_deliver_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for gzip in [false, true] {
        let ctx = context(&dir.path().join(format!("ctx-{gzip}")), None, Duration::from_secs(3600), 10_000);
        let records: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 1000 + i as usize]).collect();
        rt.block_on(async {
            let compression = if gzip { Compression::Gzip } else { Compression::Uncompressed };
            let stage = Arc::new(Stage::Write(Arc::new(Target { compression, ..target() })));
            let lane = lane(&dir.path().join(format!("journal-{gzip}")), &ctx, stage, 1 << 20);
            for r in &records {
                lane.append([(crate::s3::store::now_ms(), r.as_slice())].into_iter(), None).unwrap();
            }
            lane.flush_due(i64::MAX, true);
            assert!(lane.drain(Duration::from_secs(5)).await);
            assert_eq!(ctx.budget.used(), 0);
        });
        let bodies = objects(&ctx.store);
        assert_eq!(bodies.len(), 1);
        let body = if gzip {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bodies[0][..]), &mut out).unwrap();
            out
        } else {
            bodies[0].clone()
        };
        assert_eq!(body, records.concat(), "gzip {gzip}");
    }
}

/// A restart re-seals an intent's exact range and writes the names it chose: an object that landed before the
/// kill is rewritten in place, never delivered a second time under another name.
#[test]
fn an_intent_from_before_a_restart_writes_the_same_object() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), None, Duration::from_secs(3600), 1 << 20);
    let jdir = dir.path().join("journal");
    let mut j = Journal::open(&jdir, Default::default(), 0, Default::default()).unwrap();
    let now = crate::s3::store::now_ms();
    let ends = j.append([(now, &b"a"[..]), (now, b"b"), (now, b"c")].into_iter(), None).unwrap();
    drop(j);
    // Killed after the first two records' object was written but before the progress was advanced.
    ctx.store.put_bytes("b", "landed", b"ab", PutAttrs::default()).unwrap();
    let pending = Pending { end: ends[1], bucket: "b".into(), key: "landed".into(), also: None };
    let progress = Progress { offset: 0, pending: Some(pending), absorbed: Default::default() };
    journal::write_progress(&jdir, &progress, Default::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let lane = lane(&jdir, &ctx, write_stage(), 1024);
        lane.flush_due(i64::MAX, true);
        assert!(lane.drain(Duration::from_secs(2)).await);
    });
    assert_eq!(journal::read_progress(&jdir).unwrap().offset, ends[2]);
    let mut bodies = objects(&ctx.store);
    bodies.sort();
    assert_eq!(bodies, [b"ab".to_vec(), b"c".to_vec()], "the intent's range alone, then the rest");
}

/// Data that keeps failing is retried until its oldest record passes the horizon, then dropped and counted,
/// and the journal moves past it so a restart does not bring it back.
#[test]
fn undeliverable_data_is_dropped_after_the_retry_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), Some("S3.AccessDenied"), Duration::from_millis(300), 1024);
    let jdir = dir.path().join("journal");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let ends = rt.block_on(async {
        let lane = lane(&jdir, &ctx, write_stage(), 1024);
        let at = crate::s3::store::now_ms();
        let ends = lane.append([(at, &b"a"[..]), (at, b"b"), (at, b"c")].into_iter(), None).unwrap().unwrap();
        lane.flush_due(i64::MAX, true);
        assert!(lane.drain(Duration::from_secs(5)).await);
        ends
    });
    assert_eq!(ctx.gate.dropped_records.load(Ordering::Relaxed), 3);
    assert!(ctx.gate.failures.load(Ordering::Relaxed) >= 1);
    assert_eq!(ctx.store.usage("b").unwrap().0, 0);
    assert_eq!(journal::read_progress(&jdir).unwrap().offset, ends[2]);
}

mod round_trip {
    use proptest::prelude::*;

    use super::super::object_key;
    use crate::firehose::model::{BufferingHints, DestinationInput, StreamState};
    use crate::firehose::{plan, test_config, validate};
    use firehose_kit_domain::keys::{layout_problems, parse_key};
    use firehose_kit_domain::prefix::static_part_of;

    const PATTERNS: &[&str] =
        &["yyyy", "yyyy/MM/dd/", "yyyy'-'MM'-'dd", "HH", "DDD", "yy-M-d", "'year='yyyy/", "mm'm'ss's'"];

    fn prefix_part() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9/=_.é -]{1,12}",
            proptest::sample::select(PATTERNS).prop_map(|p| format!("!{{timestamp:{p}}}")),
            Just("!{firehose:random-string}".to_string()),
        ]
    }

    fn extension() -> impl Strategy<Value = Option<String>> {
        prop_oneof![Just(None), Just(Some(String::new())), "\\.[0-9a-z!_.*'()-]{1,10}".prop_map(Some)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Every key the emulator writes (any stream name, prefix expression, time zone, extension and
        /// compression) is parsed back by the client's parser to the same stream, version, time and id, and
        /// follows the layout the client expects for that destination.
        #[test]
        fn every_key_the_emulator_writes_parses_back(
            stream in "[a-zA-Z0-9_.-]{1,64}",
            version in 1u64..=u32::MAX as u64,
            oldest_ms in 946_684_800_000i64..4_102_444_800_000,
            zone in proptest::sample::select(chrono_tz::TZ_VARIANTS.to_vec()),
            parts in proptest::collection::vec(prefix_part(), 0..5),
            gzip in any::<bool>(),
            file_extension in extension(),
            id in any::<u128>(),
        ) {
            let prefix: String = parts.concat();
            let expressions = prefix.contains("!{");
            let input = DestinationInput {
                role_arn: Some("arn:aws:iam::000000000000:role/r".into()),
                bucket_arn: Some("arn:aws:s3:::b".into()),
                prefix: Some(prefix.clone()),
                error_output_prefix: expressions.then(|| "err/!{firehose:error-output-type}/".to_string()),
                buffering_hints: Some(BufferingHints { size_in_mbs: Some(1), interval_in_seconds: Some(60) }),
                compression_format: Some(if gzip { "GZIP" } else { "UNCOMPRESSED" }.into()),
                file_extension,
                custom_time_zone: Some(zone.name().to_string()),
                ..Default::default()
            };
            let destination = validate::destination_from(input, true, "p").unwrap();
            let (prefixes, tz) = validate::destination(&destination, "p").map_err(|e| e.message).unwrap();
            let state = StreamState {
                name: stream.clone(),
                region: "us-east-2".into(),
                arn: String::new(),
                incarnation: "i".into(),
                created_ms: 0,
                updated_ms: 0,
                version,
                deleting_since_ms: None,
                destination,
                tags: Vec::new(),
                encryption: None,
                source: None,
                throughput_hint_mb: None,
            };
            let target = plan::plan(&state, prefixes, tz, &test_config()).unwrap().target;
            let uuid = uuid::Builder::from_random_bytes(id.to_le_bytes()).into_uuid();
            let key = object_key(&target, oldest_ms, &uuid);

            let info = parse_key(&key, &stream, zone).unwrap_or_else(|e| panic!("{key}: {e}"));
            prop_assert_eq!(&info.stream, &stream);
            prop_assert_eq!(info.version, version);
            prop_assert_eq!(&info.extension, &target.extension);
            prop_assert!(key.contains(&info.uuid));
            let sent = chrono::DateTime::from_timestamp_millis(oldest_ms).unwrap();
            let same_wall_clock = info.time.with_timezone(&zone).naive_local() == sent.with_timezone(&zone).naive_local().with_nanosecond(0).unwrap();
            prop_assert!(same_wall_clock, "{key}: {} vs {sent}", info.time);
            // A wall-clock time that occurs twice (a clock going back) names the earlier instant.
            use chrono::{TimeZone, Timelike};
            if zone.from_local_datetime(&sent.with_timezone(&zone).naive_local()).single().is_some() {
                prop_assert_eq!(info.time.timestamp(), sent.timestamp());
            }
            let problems = layout_problems(&info, static_part_of(Some(&prefix)), &target.extension, !expressions);
            prop_assert!(problems.is_empty(), "{key}: {problems:?}");
        }
    }
}
