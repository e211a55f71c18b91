//! verify against the embedded emulator: clean and gzip runs, a deleted object, a resumed run's duplicates,
//! earlier runs counted as extra, two producers together, and the buffering report.

use serde_json::Value;

use crate::support::{self, DEFAULT_BUCKET, assert_exit, cli, json_out, log_file, start};

fn verify(endpoint: &str, dir: &std::path::Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["verify", "-o", "json"];
    args.extend_from_slice(extra);
    let out = cli(endpoint, dir, &args);
    let code = out.status.code().unwrap();
    (code, json_out(&out))
}

#[tokio::test]
async fn a_clean_run_and_a_gzip_run_verify() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    support::setup(env.emu.endpoint(), dir.path(), &["--buffer-interval", "1"]);
    log_file(dir.path(), "access.log", 30_000, 11);
    assert_exit(&cli(env.emu.endpoint(), dir.path(), &["send", "access.log"]), 0);
    let (code, r) = verify(env.emu.endpoint(), dir.path(), &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(
        (r["verified"].as_bool(), r["expected"].as_u64(), r["matched"].as_u64(), r["missing"].as_u64()),
        (Some(true), Some(30_000), Some(30_000), Some(0))
    );
    assert_eq!(r["layout_ok"], true);
    let text = cli(env.emu.endpoint(), dir.path(), &["verify"]);
    assert_exit(&text, 0);
    assert!(String::from_utf8_lossy(&text.stdout).contains("OK: all 30,000 lines arrived"));

    // The same with GZIP delivery.
    support::setup(
        env.emu.endpoint(),
        dir.path(),
        &["--stream", "Zipped", "--bucket", "zipped-bucket", "--compression", "gzip", "--buffer-interval", "1"],
    );
    log_file(dir.path(), "more.log", 10_000, 12);
    assert_exit(&cli(env.emu.endpoint(), dir.path(), &["--stream", "Zipped", "send", "more.log"]), 0);
    let (code, r) = verify(env.emu.endpoint(), dir.path(), &["--stream", "Zipped", "--keep", "kept"]);
    assert_eq!(code, 0, "{r}");
    // --keep saved every object decompressed, under its key without `.gz`.
    let mut kept = Vec::new();
    for o in r["objects"].as_array().unwrap() {
        let key = o["key"].as_str().unwrap().trim_end_matches(".gz");
        kept.extend(std::fs::read(dir.path().join("kept").join(key)).unwrap());
    }
    assert_eq!(
        support::framed_lines(&kept),
        support::framed_lines(&std::fs::read(dir.path().join("more.log")).unwrap())
    );
    assert_eq!(r["matched"], 10_000);
    assert!(r["objects"].as_array().unwrap().iter().all(|o| o["key"].as_str().unwrap().ends_with(".gz")));
    assert_eq!(r["layout_ok"], true);
}

#[tokio::test]
async fn a_deleted_object_is_reported_with_its_exact_missing_lines() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = &env.clients;
    support::setup(env.emu.endpoint(), dir.path(), &["--buffer-interval", "1"]);
    log_file(dir.path(), "access.log", 30_000, 13);
    assert_exit(&cli(env.emu.endpoint(), dir.path(), &["send", "access.log", "--record-size", "200000"]), 0);
    let (_, r) = verify(env.emu.endpoint(), dir.path(), &[]);
    let victim = r["objects"][0].clone();
    let lost = victim["lines"].as_u64().unwrap();
    c.s3.delete_object().bucket(DEFAULT_BUCKET).key(victim["key"].as_str().unwrap()).send().await.unwrap();
    let (code, r) = verify(env.emu.endpoint(), dir.path(), &["--no-wait"]);
    assert_eq!(code, 1);
    assert_eq!(
        (r["verified"].as_bool(), r["missing"].as_u64(), r["matched"].as_u64()),
        (Some(false), Some(lost), Some(30_000 - lost))
    );
    // With the source file, the missing lines themselves, with file and line number.
    let out = cli(env.emu.endpoint(), dir.path(), &["verify", "--no-wait", "--expect", "access.log"]);
    assert_exit(&out, 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("FAILED: {} of 30,000 lines missing", firehose_kit::ui::format_count(lost))),
        "{text}"
    );
    let source = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    let shown: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("access.log:")).collect();
    assert_eq!(shown.len(), 20.min(lost as usize));
    for line in shown {
        let (where_, content) = line.trim_start().split_once(": ").unwrap();
        let n: usize = where_.rsplit(':').next().unwrap().parse().unwrap();
        assert_eq!(source.lines().nth(n - 1), Some(content), "{line}");
    }
}

#[tokio::test]
async fn a_resumed_run_reports_the_lines_delivered_twice() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    support::setup(env.emu.endpoint(), dir.path(), &["--buffer-interval", "1"]);
    let path = log_file(dir.path(), "access.log", 10_000, 14);
    assert_exit(&cli(env.emu.endpoint(), dir.path(), &["send", "access.log", "--record-size", "50000"]), 0);
    // As if the first run had been killed with its second half in flight: its checkpoint covers half the file.
    let cp_dir = dir.path().join(".firehose-kit/checkpoints");
    let cp_path = std::fs::read_dir(&cp_dir).unwrap().next().unwrap().unwrap().path();
    let mut cp: Value = serde_json::from_slice(&std::fs::read(&cp_path).unwrap()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let half: usize = text.lines().take(5000).map(|l| l.len() + 1).sum();
    cp["offset"] = half.into();
    cp["lines"] = 5000.into();
    std::fs::write(&cp_path, serde_json::to_vec(&cp).unwrap()).unwrap();
    let out = cli(env.emu.endpoint(), dir.path(), &["send", "access.log", "-o", "json"]);
    assert_exit(&out, 0);
    assert_eq!(json_out(&out)["lines"], 5000);
    let (code, r) = verify(env.emu.endpoint(), dir.path(), &[]);
    assert_eq!(code, 0, "duplicates are reported, not a failure: {r}");
    assert_eq!(
        (r["expected"].as_u64(), r["missing"].as_u64(), r["duplicated"].as_u64()),
        (Some(10_000), Some(0), Some(5000))
    );
    assert_eq!(r["basis"]["runs"].as_array().unwrap().len(), 2, "the resumed run and the run it resumed");
    let (code, _) = verify(env.emu.endpoint(), dir.path(), &["--strict", "--no-wait"]);
    assert_eq!(code, 1, "--strict fails on duplicates");
}

#[tokio::test]
async fn an_earlier_run_in_the_same_hour_is_extra_and_two_producers_verify_together() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    support::setup(env.emu.endpoint(), dir.path(), &["--buffer-interval", "1"]);
    log_file(dir.path(), "first.log", 3000, 21);
    log_file(dir.path(), "second.log", 4000, 22);
    // Two producers ("hosts") with their own state directories.
    let first = cli(env.emu.endpoint(), dir.path(), &["--state-dir", "host1", "send", "first.log", "-o", "json"]);
    assert_exit(&first, 0);
    let second = cli(env.emu.endpoint(), dir.path(), &["--state-dir", "host2", "send", "second.log", "-o", "json"]);
    assert_exit(&second, 0);
    let (code, r) = verify(env.emu.endpoint(), dir.path(), &["--state-dir", "host2"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(
        (r["matched"].as_u64(), r["extra"].as_u64()),
        (Some(4000), Some(3000)),
        "the other run's lines are extra, not a failure"
    );
    let m1 = json_out(&first)["manifest"].as_str().unwrap().to_string();
    let m2 = json_out(&second)["manifest"].as_str().unwrap().to_string();
    let (code, r) = verify(env.emu.endpoint(), dir.path(), &["--manifest", &m1, &m2]);
    assert_eq!(code, 0, "{r}");
    assert_eq!((r["expected"].as_u64(), r["matched"].as_u64(), r["extra"].as_u64()), (Some(7000), Some(7000), Some(0)));
}

#[tokio::test]
async fn the_buffering_report_shows_size_flushes_and_an_interval_tail() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    support::setup(env.emu.endpoint(), dir.path(), &["--buffer-size", "1", "--buffer-interval", "2"]);
    log_file(dir.path(), "access.log", 20_000, 31); // ~3.6 MB
    // One batch at a time, so records reach the buffer in file order and the objects are predictable.
    assert_exit(&cli(env.emu.endpoint(), dir.path(), &["send", "access.log", "--concurrency", "1"]), 0);
    let (code, r) = verify(env.emu.endpoint(), dir.path(), &[]);
    assert_eq!(code, 0, "{r}");
    let b = &r["buffering"];
    assert_eq!((b["size_hint_mib"].as_i64(), b["interval_s"].as_i64()), (Some(1), Some(2)));
    assert!(b["by_size"].as_u64().unwrap() >= 3, "{b}");
    assert_eq!(b["by_interval"], 1, "{b}");
    let tail = r["objects"].as_array().unwrap().iter().find(|o| o["flushed_by"] == "interval").unwrap();
    assert!(tail["delay_s"].as_f64().unwrap() >= 2.0, "the tail waited for the interval: {tail}");
    for o in r["objects"].as_array().unwrap().iter().filter(|o| o["flushed_by"] == "size") {
        let bytes = o["bytes"].as_u64().unwrap();
        assert!(bytes <= 1024 * 1024 && bytes > 900 * 1024, "about the 1 MiB hint: {o}");
    }
    let text = cli(env.emu.endpoint(), dir.path(), &["verify"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("flushed by size"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
}

#[tokio::test]
async fn verify_without_a_run_explains_what_to_do() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = cli(env.emu.endpoint(), dir.path(), &["verify"]);
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no send run for stream `ApacheLogs`") && stderr.contains("hint:"), "{stderr}");
}

/// A send killed half-way (its checkpoint covers half the file) and the send that resumed it: verify of the
/// two manifests counts each line once, whatever order they are named in and however often.
#[tokio::test]
async fn a_resumed_chain_named_as_manifests_counts_each_line_once_in_any_order() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    support::setup(env.emu.endpoint(), dir.path(), &["--buffer-interval", "1"]);
    let path = log_file(dir.path(), "access.log", 10_000, 15);
    let first = cli(env.emu.endpoint(), dir.path(), &["send", "access.log", "--record-size", "50000", "-o", "json"]);
    assert_exit(&first, 0);
    let cp_dir = dir.path().join(".firehose-kit/checkpoints");
    let cp_path = std::fs::read_dir(&cp_dir).unwrap().next().unwrap().unwrap().path();
    let mut cp: Value = serde_json::from_slice(&std::fs::read(&cp_path).unwrap()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    cp["offset"] = text.lines().take(5000).map(|l| l.len() + 1).sum::<usize>().into();
    cp["lines"] = 5000.into();
    std::fs::write(&cp_path, serde_json::to_vec(&cp).unwrap()).unwrap();
    let second = cli(env.emu.endpoint(), dir.path(), &["send", "access.log", "-o", "json"]);
    assert_exit(&second, 0);
    let a = json_out(&first)["manifest"].as_str().unwrap().to_string();
    let b = json_out(&second)["manifest"].as_str().unwrap().to_string();
    for names in [vec![&a, &b], vec![&b, &a], vec![&a, &b, &a, &b], vec![&b]] {
        let mut args: Vec<&str> = vec!["--manifest"];
        args.extend(names.iter().map(|s| s.as_str()));
        let (code, r) = verify(env.emu.endpoint(), dir.path(), &args);
        assert_eq!(code, 0, "{names:?}: {r}");
        assert_eq!(
            (r["expected"].as_u64(), r["matched"].as_u64(), r["missing"].as_u64(), r["duplicated"].as_u64()),
            (Some(10_000), Some(10_000), Some(0), Some(5000)),
            "{names:?}"
        );
        assert_eq!(r["basis"]["runs"].as_array().unwrap().len(), 2, "each run once: {}", r["basis"]);
    }
}

/// `setup --recreate` with other partitioning: the previous stream's objects are not the new run's, so they are
/// neither extra nor misplaced.
#[tokio::test]
async fn verify_after_a_recreate_reads_only_the_new_streams_objects() {
    let env = support::start_with(|b| b.speed(30.0)).await; // 60 s intervals flush after 2 s
    let dir = tempfile::tempdir().unwrap();
    let ep = env.emu.endpoint();
    support::setup(ep, dir.path(), &["--partition-by", "status", "--prefix", "logs/"]);
    assert_exit(&cli(ep, dir.path(), &["send", "--generate", "5000", "--seed", "3"]), 0);
    let (code, r) = verify(ep, dir.path(), &[]);
    assert_eq!((code, r["matched"].as_u64()), (0, Some(5000)), "{r}");
    support::setup(ep, dir.path(), &["--partition-by", "status,date", "--prefix", "logs/", "--recreate"]);
    assert_exit(&cli(ep, dir.path(), &["send", "--generate", "170", "--seed", "4"]), 0);
    let (code, r) = verify(ep, dir.path(), &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(
        (r["expected"].as_u64(), r["matched"].as_u64(), r["misplaced_lines"].as_u64(), r["extra"].as_u64()),
        (Some(170), Some(170), Some(0), Some(0)),
        "{r}"
    );
}

/// An emulator running 40× faster with a 300 s interval applies 7.5 s: objects cut at the size hint well before
/// it are size flushes, and the report says which interval applied, to the fraction of a second (7.5 s is long
/// enough that a loaded machine still sends 1 MiB before it).
#[tokio::test]
async fn flush_reasons_use_the_effective_interval_to_the_millisecond() {
    let env = support::start_with(|b| b.speed(40.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let ep = env.emu.endpoint();
    support::setup(ep, dir.path(), &["--buffer-size", "1", "--buffer-interval", "300"]);
    log_file(dir.path(), "access.log", 20_000, 33); // ~3.6 MB
    assert_exit(&cli(ep, dir.path(), &["send", "access.log", "--concurrency", "1"]), 0);
    let (code, r) = verify(ep, dir.path(), &[]);
    assert_eq!(code, 0, "{r}");
    let b = &r["buffering"];
    assert_eq!((b["interval_s"].as_i64(), b["effective_interval_s"].as_f64()), (Some(300), Some(7.5)), "{b}");
    assert!(b["by_size"].as_u64().unwrap() >= 3, "~1 MiB objects are size flushes: {b}");
    for o in r["objects"].as_array().unwrap() {
        let (bytes, reason) = (o["bytes"].as_u64().unwrap(), o["flushed_by"].as_str().unwrap());
        if bytes > 900 * 1024 {
            assert_eq!(reason, "size", "{o}");
        }
    }
    let text = cli(ep, dir.path(), &["verify", "--no-wait"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("hints 1 MiB / 300 s (7.5 s at the emulator's speed)"));
}

/// `-q` prints the verdict and nothing else.
#[tokio::test]
async fn quiet_verify_prints_only_the_verdict() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    support::setup(env.emu.endpoint(), dir.path(), &["--buffer-interval", "1"]);
    assert_exit(&cli(env.emu.endpoint(), dir.path(), &["send", "--generate", "1000"]), 0);
    let out = cli(env.emu.endpoint(), dir.path(), &["-q", "verify"]);
    assert_exit(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("OK: all 1,000 lines arrived in s3://{DEFAULT_BUCKET}\n"));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}
