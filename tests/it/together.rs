//! Two of anything at once: streams sharing a bucket, one file sent to several destinations, and two sends of
//! one file at the same time. Nothing is lost, nothing doubled, and every stop says why.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{self, DEFAULT_BUCKET, assert_exit, cli, json_out, log_file, start, test_env};

fn keys(v: &Value) -> Vec<String> {
    v["objects"].as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap().to_string()).collect()
}

async fn bucket_keys(c: &firehose_kit::aws::Clients) -> Vec<String> {
    let out = c.s3.list_objects_v2().bucket(DEFAULT_BUCKET).send().await.unwrap();
    out.contents().iter().map(|o| o.key().unwrap().to_string()).collect()
}

/// Setup A and B on the default bucket, send to both, teardown A: B's objects and the bucket stay, B still
/// delivers, and teardown B then removes the bucket.
#[tokio::test]
async fn a_shared_bucket_stays_until_its_last_stream_is_torn_down() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let ep = env.emu.endpoint();
    support::setup(ep, dir.path(), &["--stream", "A", "--buffer-interval", "1"]);
    support::setup(ep, dir.path(), &["--stream", "B", "--buffer-interval", "1"]);
    let tags = env.clients.s3.get_bucket_tagging().bucket(DEFAULT_BUCKET).send().await.unwrap();
    let stream_tag = tags.tag_set().iter().find(|t| t.key() == "firehose-kit:stream").unwrap().value().to_string();
    assert_eq!(stream_tag, "A", "the second setup does not take the bucket over");
    log_file(dir.path(), "a.log", 3_000, 51);
    log_file(dir.path(), "b.log", 3_000, 52);
    assert_exit(&cli(ep, dir.path(), &["--stream", "A", "send", "a.log"]), 0);
    assert_exit(&cli(ep, dir.path(), &["--stream", "B", "send", "b.log"]), 0);
    let b_before = cli(ep, dir.path(), &["--stream", "B", "verify", "-o", "json"]);
    assert_exit(&b_before, 0);
    assert_exit(&cli(ep, dir.path(), &["--stream", "A", "verify"]), 0);

    let torn = cli(ep, dir.path(), &["--stream", "A", "teardown", "--yes", "-o", "json"]);
    assert_exit(&torn, 0);
    let v = json_out(&torn);
    let bucket = v["resources"].as_array().unwrap().iter().find(|r| r["resource"] == "bucket").unwrap().clone();
    assert_eq!(bucket["fate"], "kept", "{v}");
    assert!(bucket["detail"].as_str().unwrap().contains("still used by stream `B`"), "{bucket}");
    let text = cli(ep, dir.path(), &["--stream", "A", "teardown", "--yes"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("still used by stream `B`"));
    let mut left = bucket_keys(&env.clients).await;
    let mut b_keys = keys(&json_out(&b_before));
    left.sort();
    b_keys.sort();
    assert_eq!(left, b_keys, "exactly B's objects are left");

    // B still delivers, and still verifies.
    log_file(dir.path(), "b2.log", 1_000, 53);
    assert_exit(&cli(ep, dir.path(), &["--stream", "B", "send", "b2.log"]), 0);
    assert_exit(&cli(ep, dir.path(), &["--stream", "B", "verify"]), 0);
    let status = cli(ep, dir.path(), &["--stream", "B", "status", "-o", "json"]);
    assert_exit(&status, 0);

    // The last user gone, the bucket goes too.
    let last = cli(ep, dir.path(), &["--stream", "B", "teardown", "--yes", "-o", "json"]);
    assert_exit(&last, 0);
    let v = json_out(&last);
    let bucket = v["resources"].as_array().unwrap().iter().find(|r| r["resource"] == "bucket").unwrap().clone();
    assert_eq!(bucket["fate"], "deleted", "{v}");
    assert!(env.clients.s3.head_bucket().bucket(DEFAULT_BUCKET).send().await.is_err());
}

/// A file sent to one emulator is sent in full to a second emulator, and to another region of the first; sent
/// again to the first, nothing is resent.
#[tokio::test]
async fn a_file_sent_to_one_destination_is_sent_in_full_to_another() {
    let first = start().await;
    let second = start().await;
    let dir = tempfile::tempdir().unwrap();
    log_file(dir.path(), "access.log", 4_000, 61);
    for ep in [first.emu.endpoint(), second.emu.endpoint()] {
        support::setup(ep, dir.path(), &["--buffer-interval", "1"]);
        let out = cli(ep, dir.path(), &["send", "access.log", "-o", "json"]);
        assert_exit(&out, 0);
        assert_eq!(json_out(&out)["lines"], 4_000, "{ep}: sent in full");
        let verified = cli(ep, dir.path(), &["verify", "-o", "json"]);
        assert_exit(&verified, 0);
        assert_eq!(json_out(&verified)["matched"], 4_000);
    }
    let ep = first.emu.endpoint();
    support::setup(ep, dir.path(), &["--region", "eu-west-1", "--buffer-interval", "1"]);
    let out = cli(ep, dir.path(), &["--region", "eu-west-1", "send", "access.log", "-o", "json"]);
    assert_exit(&out, 0);
    assert_eq!(json_out(&out)["lines"], 4_000, "another region is another destination");
    assert!(String::from_utf8_lossy(&out.stderr).contains("never to this stream"));
    assert_exit(&cli(ep, dir.path(), &["--region", "eu-west-1", "verify"]), 0);
    let again = cli(ep, dir.path(), &["send", "access.log", "-o", "json"]);
    assert_exit(&again, 0);
    assert_eq!(json_out(&again)["already_sent"].as_array().unwrap().len(), 1, "the first destination has it all");
}

/// Two sends of one file to one stream at the same time (a cron job overlapping a manual run): the second waits
/// for the first and sends only what it did not, so each line is delivered once.
#[tokio::test]
async fn two_concurrent_sends_of_one_file_deliver_each_line_once() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let ep = env.emu.endpoint();
    support::setup(ep, dir.path(), &["--buffer-interval", "1"]);
    log_file(dir.path(), "access.log", 100_000, 71);
    let spawn = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_firehose-kit"));
        // Paced, so the two runs overlap for certain.
        cmd.args(["--endpoint-url", ep, "send", "access.log", "--rate", "100000", "--concurrency", "2"])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        test_env(&mut cmd);
        cmd.spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_exit(&a, 0);
    assert_exit(&b, 0);
    let stderr = format!("{}{}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    assert!(stderr.contains("another send to `ApacheLogs` is sending it"), "one waited for the other: {stderr}");
    let out = cli(ep, dir.path(), &["verify", "--expect", "access.log", "--strict", "-o", "json"]);
    assert_exit(&out, 0);
    let v = json_out(&out);
    assert_eq!(
        (v["matched"].as_u64(), v["duplicated"].as_u64(), v["extra"].as_u64()),
        (Some(100_000), Some(0), Some(0))
    );
}

/// The emulator's disk fills up (every file it writes is limited to a few MiB, as a full disk would refuse
/// more): send gives up with the cause and what to do in its summary, the emulator warns, and once there is
/// room again the resumed send delivers every line exactly once.
#[tokio::test]
async fn a_full_disk_stops_send_with_its_cause_and_a_resume_delivers_every_line_once() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("emulator.log");
    log_file(dir.path(), "access.log", 100_000, 81); // ~18 MB
    let (mut emulator, ep) = support::spawn_local_limited(data.path(), &[], &log, Some(6 << 20));
    support::setup(&ep, dir.path(), &["--buffer-interval", "1"]);
    let out = cli(&ep, dir.path(), &["send", "access.log", "--retry-timeout", "3s"]);
    assert_exit(&out, 1);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("NOT SENT:"), "{summary}");
    assert!(summary.contains("last error: InternalFailure: emulator storage error"), "the cause: {summary}");
    assert!(summary.contains("File too large") || summary.contains("No space left"), "{summary}");
    assert!(summary.contains("free disk space") && summary.contains("send access.log` again"), "what to do: {summary}");
    let status = cli(&ep, dir.path(), &["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("storage error"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
    let warned = std::fs::read_to_string(&log).unwrap();
    assert!(
        warned.contains("storage error, journal") && warned.contains("InternalFailure"),
        "the emulator warned: {warned}"
    );
    emulator.0.kill().unwrap();
    emulator.0.wait().unwrap();

    // Room again: the same data dir, no limit; the resumed send sends only what was not acknowledged.
    let (_emulator, ep) = support::spawn_local_limited(data.path(), &[], &log, None);
    let resumed = cli(&ep, dir.path(), &["send", "access.log"]);
    assert_exit(&resumed, 0);
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("resuming after line"));
    let out = cli(&ep, dir.path(), &["verify", "--expect", "access.log", "--strict", "-o", "json"]);
    assert_exit(&out, 0);
    let v = json_out(&out);
    assert_eq!(
        (v["matched"].as_u64(), v["duplicated"].as_u64(), v["extra"].as_u64()),
        (Some(100_000), Some(0), Some(0))
    );
}

/// logrotate's copytruncate while `send --follow` runs, the writer refilling the file past the old offset at
/// once (a busy server): with a writer that appends (O_APPEND) and with one that keeps its offset (leaving a
/// hole of NUL bytes), every line arrives once and nothing is read from the middle of the new content.
#[tokio::test]
async fn follow_loses_nothing_under_copytruncate_with_an_immediate_refill() {
    use std::io::Write;
    for append in [true, false] {
        let env = start().await;
        let dir = tempfile::tempdir().unwrap();
        let ep = env.emu.endpoint();
        support::setup(ep, dir.path(), &["--buffer-interval", "1"]);
        let all = std::fs::read(log_file(dir.path(), "all.log", 30_000, 91)).unwrap();
        let cut =
            |n: usize| all.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(n - 1).map(|(i, _)| i + 1).unwrap();
        let (first, second, third) = (&all[..cut(10_000)], &all[cut(10_000)..cut(20_000)], &all[cut(20_000)..]);
        let path = dir.path().join("access.log");
        let mut writer = std::fs::OpenOptions::new().create(true).write(true).append(append).open(&path).unwrap();
        writer.write_all(first).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_firehose-kit"));
        cmd.args(["--endpoint-url", ep, "send", "access.log", "--follow", "--linger", "100ms"])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        test_env(&mut cmd);
        let follower = support::Process(cmd.spawn().unwrap());
        support::wait_for_lines(&env.clients, DEFAULT_BUCKET, 10_000).await;
        // copytruncate, and the writer goes on at once: the file is past the old offset before the next poll.
        std::fs::copy(&path, dir.path().join("access.log.1")).unwrap();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
        writer.write_all(second).unwrap();
        writer.write_all(third).unwrap();
        support::wait_for_lines(&env.clients, DEFAULT_BUCKET, 30_000).await;
        Command::new("kill").args(["-INT", &follower.0.id().to_string()]).status().unwrap();
        let mut follower = follower;
        assert!(follower.0.wait().unwrap().success(), "append {append}");
        let out = cli(ep, dir.path(), &["verify", "--expect", "all.log", "-o", "json"]);
        let v = json_out(&out);
        assert_eq!(
            (v["matched"].as_u64(), v["missing"].as_u64(), v["duplicated"].as_u64(), v["extra"].as_u64()),
            (Some(30_000), Some(0), Some(0), Some(0)),
            "append {append}: {v}"
        );
    }
}

/// Two emulators on one data dir would deliver the same journals twice: the second refuses to start (exit 2),
/// naming the first's process and address; once the first is gone (killed, even), the dir is free again.
#[tokio::test]
async fn a_second_emulator_on_a_used_data_dir_exits_2_naming_the_first() {
    let data = tempfile::tempdir().unwrap();
    let (mut first, endpoint) = support::spawn_local(data.path());
    let out = support::cli_plain(
        data.path(),
        &["local", "--addr", "127.0.0.1:0", "--data-dir", &data.path().display().to_string()],
    );
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in use by another emulator")
            && stderr.contains(&format!("pid {}", first.0.id()))
            && stderr.contains(&endpoint),
        "{stderr}"
    );
    // In-process too, and a kill -9 leaves no stale lock.
    let embedded = firehose_kit_emulator::Emulator::builder().addr("127.0.0.1:0").data_dir(data.path()).start().await;
    assert!(matches!(embedded, Err(firehose_kit_emulator::StartError::InUse { .. })));
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let (_second, _) = support::spawn_local(data.path());
}
