//! The emulator killed (SIGKILL) at random moments, over and over, under load from several producers, with
//! delivery failures injected part of the time, and restarted on its data dir each time: every acknowledged
//! record is delivered exactly once (a record of a call that got no answer may be delivered, once), and a torn
//! write at the journal's end is cut off, said, and loses nothing acknowledged. `make test` runs 50 kills;
//! `make soak` runs more (`FIREHOSE_KIT_CRASH_KILLS`). `FIREHOSE_KIT_CRASH_SEED` repeats a run's kill times.

use std::time::Duration;

use firehose_kit::loadgen::{self, LoadSpec};
use rand::{Rng, SeedableRng};

use crate::support::{self, Process, active_stream, bucket_and_role, clients_for};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `firehose-kit local` on a fixed address (producers keep their endpoint across restarts).
pub fn emulator(data: &std::path::Path, addr: &str, extra: &[&str], log: &std::path::Path) -> Process {
    let mut args = vec!["--addr", addr];
    args.extend_from_slice(extra);
    // The address and the data dir's lock may still be held for a moment by the killed process (the kernel
    // releases them when it is gone): retry the start briefly.
    for attempt in 0.. {
        match support::try_spawn_local(data, &args, log, None) {
            Ok((p, _)) => return p,
            Err(_) if attempt < 100 => std::thread::sleep(Duration::from_millis(20)),
            Err(why) => panic!("the emulator did not start: {why}"),
        }
    }
    unreachable!()
}

/// An emulator at `--speed 60` on a fixed address, set up with `setup SETUP`, killed (SIGKILL) about every half
/// second while `send --generate 100000 --rate 20000` runs, and restarted on its data dir each time (at most 12
/// kills); then verify must find every line (duplicates allowed: a kill can land between an object and the
/// progress that says it was written). Returns the kills and verify's report.
pub async fn lines_survive_kills(setup: &[&str]) -> (u32, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("emulator.log"));
    let addr = format!("127.0.0.1:{}", free_port());
    let ep = format!("http://{addr}");
    let mut emu = emulator(&data, &addr, &["--speed", "60"], &log);
    support::setup(&ep, dir.path(), setup);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_firehose-kit"));
    cmd.args(["--endpoint-url", &ep, "send", "--generate", "100000", "--rate", "20000", "--retry-timeout", "60s"]);
    cmd.current_dir(dir.path()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    support::test_env(&mut cmd);
    let mut running = cmd.spawn().unwrap();
    let mut kills = 0;
    while running.try_wait().unwrap().is_none() && kills < 12 {
        tokio::time::sleep(Duration::from_millis(400 + 50 * (kills as u64 % 4))).await;
        emu.0.kill().unwrap();
        emu = emulator(&data, &addr, &["--speed", "60"], &log);
        kills += 1;
    }
    let sent = tokio::task::spawn_blocking(move || running.wait_with_output()).await.unwrap().unwrap();
    support::assert_exit(&sent, 0);
    assert!(kills >= 3, "the kills hit the run ({kills})");
    let verified = support::cli(&ep, dir.path(), &["verify", "-o", "json", "--wait", "60s"]);
    let v = support::json_out(&verified);
    support::assert_exit(&verified, 0);
    assert_eq!((v["matched"].as_u64(), v["missing"].as_u64()), (Some(100_000), Some(0)), "{v}");
    kill(&mut emu);
    (kills, v)
}

pub fn kill(p: &mut Process) {
    p.0.kill().unwrap();
    p.0.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_kills_under_load_lose_nothing_acknowledged_and_deliver_nothing_twice() {
    let kills: usize = std::env::var("FIREHOSE_KIT_CRASH_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(50);
    let seed: u64 = std::env::var("FIREHOSE_KIT_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("emulator.log");
    let addr = format!("127.0.0.1:{}", free_port());
    let failing = ["--speed", "10", "--fail-delivery", "InternalError:0.3", "--seed", "1"];
    let mut emu = emulator(&data.path().join("data"), &addr, &failing, &log);
    let clients = clients_for(&format!("http://{addr}")).await;
    let (bucket, role) = bucket_and_role(&clients, "crash", "crash-role").await;
    let streams: Vec<String> = (0..2).map(|i| format!("Crash{i}")).collect();
    for s in &streams {
        active_stream(&clients, s, &bucket, &role, 1, 1, false).await;
    }
    let spec = LoadSpec {
        streams: streams.clone(),
        clients_per_stream: vec![3, 3],
        batch_records: 200,
        record_size: 300,
        paced: vec![],
        duration: Duration::from_secs(3600),
    };
    let stop = loadgen::Stop::new();
    let load = tokio::spawn({
        let (clients, stop) = (clients.clone(), stop.clone());
        async move { loadgen::run_until(&clients, &spec, stop).await }
    });
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..200))).await;
        // SIGKILL, and the restart at once, without waiting for the old process to be gone: a new emulator must
        // not deliver from the data dir while the old one may still (it waits for the old one's lock).
        emu.0.kill().unwrap();
        emu = emulator(&data.path().join("data"), &addr, &failing, &log);
    }
    stop.cancel();
    let (report, outcomes) = load.await.unwrap();
    // The last restart without injected failures, fast: everything retained is delivered.
    kill(&mut emu);
    let _emu = emulator(&data.path().join("data"), &addr, &["--speed", "100"], &log);
    let check = loadgen::check_outcomes(&clients, "crash", &outcomes, Duration::from_secs(60)).await.unwrap();
    let unanswered: usize = outcomes.unanswered.values().map(Vec::len).sum();
    eprintln!(
        "crash loop (seed {seed}): {kills} kills, {} records acknowledged, {unanswered} unanswered ({} of them delivered), {} delivered lines",
        check.acknowledged, check.unanswered_delivered, check.delivered
    );
    assert!(report.records > 0 && unanswered > 0, "the kills hit calls in flight: {report:?}");
    assert_eq!(
        (check.missing, check.duplicated, check.unexpected),
        (0, 0, 0),
        "seed {seed}: every acknowledged record exactly once, no unanswered one twice: {check:?}"
    );
}

/// A kill in the middle of a journal write leaves a torn frame at its end: with `--fsync`, the restart cuts it
/// off, says what it cut, and delivers every acknowledged record once.
#[tokio::test]
async fn a_torn_journal_tail_is_cut_and_said_and_every_acknowledged_record_delivered() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("emulator.log");
    let addr = format!("127.0.0.1:{}", free_port());
    let dir = data.path().join("data");
    let mut emu = emulator(&dir, &addr, &["--fsync"], &log);
    let clients = clients_for(&format!("http://{addr}")).await;
    let (bucket, role) = bucket_and_role(&clients, "torn", "torn-role").await;
    active_stream(&clients, "Torn", &bucket, &role, 128, 900, false).await;
    let records: Vec<Vec<u8>> = (0..1000).map(|i| format!("record {i:04}\n").into_bytes()).collect();
    for chunk in records.chunks(100) {
        let out = support::put_batch(&clients, "Torn", chunk).await;
        assert_eq!(out.failed_put_count(), 0);
    }
    kill(&mut emu);
    // The torn write: a random prefix of one more frame (header and part of its data) at the journal's end.
    let journal = std::fs::read_dir(dir.join("firehose/journal")).unwrap().next().unwrap().unwrap().path();
    let segment = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .unwrap();
    let mut frame = 50u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&0i64.to_le_bytes());
    frame.extend_from_slice(&[b'x'; 50]);
    let cut = rand::rng().random_range(1..frame.len());
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(&segment).unwrap().write_all(&frame[..cut]).unwrap();
    let _emu = emulator(&dir, &addr, &["--fsync", "--speed", "1000"], &log);
    let clients = clients_for(&format!("http://{addr}")).await;
    let lines = support::wait_for_lines(&clients, "torn", 1000).await;
    let mut want = records.clone();
    want.sort();
    assert_eq!(lines, want, "each acknowledged record once");
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains(&format!("cutting {cut} bytes of a batch whose write was interrupted")), "{said}");
}

/// The same loop on the streams with more stages (in `crash::` for `make soak`).
#[path = "crash_kinds.rs"]
mod kinds;
