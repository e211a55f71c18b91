//! send against the embedded emulator: every byte delivered, failures resent without duplicates, throttling,
//! bad input, resume after SIGKILL, --follow across rotation, packing vs one line per record, billing.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use firehose_kit_emulator::Quota;
use serde_json::Value;

use crate::support::{
    self, DEFAULT_BUCKET, assert_exit, cli, delivered, framed_lines, json_out, log_file, start, start_with,
    wait_for_lines,
};

#[tokio::test]
async fn a_file_is_delivered_byte_for_byte_with_a_summary_and_manifest() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    support::setup(env.emu.endpoint(), dir.path(), &["--buffer-interval", "1"]);
    let path = log_file(dir.path(), "access.log", 20_000, 1);
    let out = cli(env.emu.endpoint(), dir.path(), &["send", "access.log", "-o", "json"]);
    assert_exit(&out, 0);
    let r = json_out(&out);
    let data = std::fs::read(&path).unwrap();
    assert_eq!(r["lines"], 20_000);
    assert_eq!(r["bytes"], data.len());
    assert_eq!(r["status"], "completed");
    assert!(r["records"].as_u64().unwrap() < 10, "lines are packed: {r}");
    let lines = wait_for_lines(&env.clients, DEFAULT_BUCKET, 20_000).await;
    assert_eq!(lines, framed_lines(&data));
    // The manifest records what verify needs.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(r["manifest"].as_str().map(|m| dir.path().join(m)).unwrap()).unwrap())
            .unwrap();
    assert_eq!(manifest["digest"]["count"], 20_000);
    assert_eq!(manifest["stream"], "ApacheLogs");
    assert_eq!(manifest["account_id"], support::ACCOUNT);
    assert_eq!(manifest["endpoint"], env.emu.endpoint());
    // The text summary names the cost effect.
    let again = cli(env.emu.endpoint(), dir.path(), &["send", "access.log", "--from-start"]);
    assert_exit(&again, 0);
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        text.contains("sent 20,000 lines") && text.contains("one line per record") && text.contains("cheaper"),
        "{text}"
    );
}

#[tokio::test]
async fn injected_failures_are_resent_entry_by_entry_without_duplicates() {
    let env = start_with(|b| b.fail_rate(0.2, Some(3))).await;
    let dir = tempfile::tempdir().unwrap();
    support::setup(env.emu.endpoint(), dir.path(), &["--buffer-interval", "1"]);
    let path = log_file(dir.path(), "access.log", 20_000, 2);
    // Small records so each batch has many entries, some of which fail.
    let out = cli(env.emu.endpoint(), dir.path(), &["send", "access.log", "--record-size", "5000", "-o", "json"]);
    assert_exit(&out, 0);
    let r = json_out(&out);
    let records = r["records"].as_u64().unwrap();
    let resent = r["retried_records"].as_u64().unwrap();
    assert!(records > 500, "{r}");
    assert!(resent > records / 10, "about 20% of entries fail and are resent: {resent} of {records}");
    let lines = wait_for_lines(&env.clients, DEFAULT_BUCKET, 20_000).await;
    // Exactly once each: a batch resent whole would have delivered its successful entries twice.
    assert_eq!(lines, framed_lines(&std::fs::read(path).unwrap()));
}

#[tokio::test]
async fn a_quota_throttles_the_sender_and_nothing_is_lost() {
    let quota = Quota { bytes_per_sec: 1024.0 * 1024.0, requests_per_sec: 1000.0, records_per_sec: 100_000.0 };
    let env = start_with(|b| b.quota(Some(quota))).await;
    let dir = tempfile::tempdir().unwrap();
    support::setup(env.emu.endpoint(), dir.path(), &["--buffer-interval", "1"]);
    let path = log_file(dir.path(), "access.log", 15_000, 3); // ~2.7 MB: about three seconds of a 1 MiB/s quota
    let out = cli(env.emu.endpoint(), dir.path(), &["send", "access.log", "--record-size", "100000", "-o", "json"]);
    assert_exit(&out, 0);
    let r = json_out(&out);
    assert!(r["throttled"].as_u64().unwrap() > 0, "{r}");
    let lines = wait_for_lines(&env.clients, DEFAULT_BUCKET, 15_000).await;
    assert_eq!(lines, framed_lines(&std::fs::read(path).unwrap()));
}

#[tokio::test]
async fn bad_input_is_delivered_verbatim_or_rejected_with_a_reason() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    support::setup(env.emu.endpoint(), dir.path(), &["--buffer-interval", "1"]);
    let mut corpus = Vec::new();
    corpus.extend_from_slice(b"invalid utf-8 \xff\xfe here\n");
    corpus.extend_from_slice(b"nul \x00 byte\n");
    corpus.extend_from_slice(b"windows line\r\n");
    corpus.extend_from_slice(b"\n\n");
    corpus.extend(std::iter::repeat_n(b'x', 2_000_000));
    corpus.extend_from_slice(b"\nno final newline");
    std::fs::write(dir.path().join("corpus.log"), &corpus).unwrap();
    std::fs::write(dir.path().join("empty.log"), b"").unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();

    let out = cli(env.emu.endpoint(), dir.path(), &["send", "corpus.log", "empty.log", "-o", "json"]);
    assert_exit(&out, 1); // a line was not sent
    let r = json_out(&out);
    assert_eq!(r["lines"], 6, "{r}");
    assert_eq!(r["rejected_lines"], 1);
    let rejects = std::fs::read_to_string(dir.path().join(r["rejects"].as_str().unwrap())).unwrap();
    let entry: Value = serde_json::from_str(rejects.lines().next().unwrap()).unwrap();
    assert_eq!(
        (entry["input"].as_str(), entry["line"].as_u64(), entry["bytes"].as_u64()),
        (Some("corpus.log"), Some(6), Some(2_000_001))
    );
    assert!(entry["reason"].as_str().unwrap().contains("record limit"), "{entry}");
    let expected: Vec<&[u8]> = vec![
        b"\n",
        b"\n",
        b"invalid utf-8 \xff\xfe here\n",
        b"no final newline\n",
        b"nul \x00 byte\n",
        b"windows line\r\n",
    ];
    let lines = wait_for_lines(&env.clients, DEFAULT_BUCKET, 6).await;
    assert_eq!(lines, expected.iter().map(|l| l.to_vec()).collect::<Vec<_>>());

    for (args, message) in [
        (vec!["send", "missing.log"], "cannot read `missing.log`"),
        (vec!["send", "logs"], "`logs` is a directory"),
        (vec!["send", "nomatch-*.log"], "no files match `nomatch-*.log`"),
        (vec!["send"], "nothing to send"),
    ] {
        let out = cli(env.emu.endpoint(), dir.path(), &args);
        assert_exit(&out, 2);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(message),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn sending_to_a_missing_stream_stops_at_once_with_exit_3() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    log_file(dir.path(), "a.log", 10, 1);
    let out = cli(env.emu.endpoint(), dir.path(), &["--stream", "Nope", "send", "a.log"]);
    assert_exit(&out, 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not exist")
            && stderr.contains(&format!(
                "hint: create it with `firehose-kit --endpoint-url {} --stream Nope setup`",
                env.emu.endpoint()
            )),
        "{stderr}"
    );
}

#[tokio::test]
async fn packed_and_one_line_per_record_deliver_the_same_bytes_and_bills_match_by_hand() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = &env.clients;
    // Lines of known lengths: 1,000 lines of 99 bytes + newline = 100,000 bytes.
    let line = format!("{}\n", "l".repeat(99));
    let data = line.repeat(1000);
    std::fs::write(dir.path().join("fixed.log"), &data).unwrap();
    for (stream, extra) in [("Packed", vec!["--record-size", "30000"]), ("PerLine", vec!["--one-line-per-record"])] {
        let bucket = format!("{}-bucket", stream.to_lowercase());
        support::setup(
            env.emu.endpoint(),
            dir.path(),
            &["--stream", stream, "--bucket", &bucket, "--buffer-size", "128", "--buffer-interval", "1"],
        );
        let mut args = vec!["--stream", stream, "send", "fixed.log", "--concurrency", "1", "-o", "json"];
        args.extend(extra);
        let out = cli(env.emu.endpoint(), dir.path(), &args);
        assert_exit(&out, 0);
        let r = json_out(&out);
        // By hand: 30,000-byte records hold 300 lines → 4 records (3 × 30,000 + 10,000), each rounded up to
        // 5,120-byte steps; one line per record: 1,000 records of 100 bytes, each billed 5,120.
        let per_line = 1000 * 5120;
        let packed = 3 * 30_720 + 10_240;
        assert_eq!(r["billable_bytes_one_line_per_record"], per_line);
        if stream == "Packed" {
            assert_eq!((r["records"].as_u64(), r["billable_bytes"].as_u64()), (Some(4), Some(packed)));
        } else {
            assert_eq!((r["records"].as_u64(), r["billable_bytes"].as_u64()), (Some(1000), Some(per_line)));
        }
        let objects = support::eventually("one object", Duration::from_secs(30), || async {
            let d = delivered(c, &bucket).await;
            (!d.is_empty()).then_some(d)
        })
        .await;
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].1, data.as_bytes(), "{stream}: byte-identical S3 content");
    }
}

fn spawn_cli(endpoint: &str, dir: &std::path::Path, args: &[&str]) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firehose-kit"));
    cmd.arg("--endpoint-url").arg(endpoint).args(args).current_dir(dir).stdout(Stdio::piped()).stderr(Stdio::piped());
    support::test_env(&mut cmd);
    cmd.spawn().expect("spawn firehose-kit")
}

fn signal(child: &std::process::Child, sig: &str) {
    let status = Command::new("kill").args([sig, &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
}

/// The largest acknowledged offset among saved checkpoints.
fn checkpoint_offset(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir.join(".firehose-kit/checkpoints")) else { return 0 };
    entries
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter_map(|v| v["offset"].as_u64())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_send_killed_mid_file_resumes_where_it_was_with_nothing_lost() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    support::setup(env.emu.endpoint(), dir.path(), &["--buffer-interval", "1"]);
    let path = log_file(dir.path(), "access.log", 40_000, 4);
    let size = std::fs::metadata(&path).unwrap().len();
    let mut child =
        spawn_cli(env.emu.endpoint(), dir.path(), &["send", "access.log", "--rate", "8000", "--record-size", "20000"]);
    let offset = support::eventually("a checkpoint mid-file", Duration::from_secs(20), || async {
        let o = checkpoint_offset(dir.path());
        (o > 0).then_some(o)
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(offset < size, "killed mid-file ({offset} of {size})");
    let out = cli(env.emu.endpoint(), dir.path(), &["send", "access.log", "-o", "json"]);
    assert_exit(&out, 0);
    let r = json_out(&out);
    assert_eq!(r["resumed"][0], "access.log", "{r}");
    assert!(r["lines"].as_u64().unwrap() < 40_000, "only the rest was sent: {r}");
    // Every line arrives (duplicates are limited to what was in flight when the first send was killed).
    let expected = framed_lines(&std::fs::read(&path).unwrap());
    support::eventually("every line of the file delivered", Duration::from_secs(30), || async {
        let mut lines = support::delivered_lines(&env.clients, DEFAULT_BUCKET).await;
        lines.dedup();
        (lines == expected).then_some(())
    })
    .await;
    // verify follows the resumed run back to the killed one and reports what was delivered twice.
    let out = cli(env.emu.endpoint(), dir.path(), &["verify", "-o", "json"]);
    assert_exit(&out, 0);
    let v = json_out(&out);
    assert_eq!((v["missing"].as_u64(), v["expected"].as_u64()), (Some(0), Some(40_000)), "{v}");
    assert_eq!(v["basis"]["runs"].as_array().unwrap().len(), 2);
    let delivered = support::delivered_lines(&env.clients, DEFAULT_BUCKET).await.len() as u64;
    assert_eq!(v["duplicated"].as_u64(), Some(delivered - 40_000), "every extra copy is reported as a duplicate");
}

#[tokio::test]
async fn follow_keeps_shipping_across_a_rotation_and_stops_cleanly_on_sigint() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    support::setup(env.emu.endpoint(), dir.path(), &["--buffer-interval", "0"]);
    let log = dir.path().join("app.log");
    let batch = |from: usize, n: usize| (from..from + n).map(|i| format!("line {i}\n")).collect::<String>();
    std::fs::write(&log, batch(0, 100)).unwrap();
    let child =
        spawn_cli(env.emu.endpoint(), dir.path(), &["send", "--follow", "app.log", "--linger", "0.2", "-o", "json"]);
    wait_for_lines(&env.clients, DEFAULT_BUCKET, 100).await;
    std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(batch(100, 50).as_bytes()).unwrap();
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    std::fs::write(&log, batch(150, 70)).unwrap();
    let lines = wait_for_lines(&env.clients, DEFAULT_BUCKET, 220).await;
    assert_eq!(lines, framed_lines(batch(0, 220).as_bytes()));
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    let r = json_out(&out);
    assert_eq!((r["lines"].as_u64(), r["status"].as_str()), (Some(220), Some("interrupted")));
}

#[tokio::test]
async fn json_format_gzip_inputs_and_the_generator() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    support::setup(env.emu.endpoint(), dir.path(), &["--buffer-interval", "1"]);
    let good = "10.0.0.1 - - [25/Nov/2026:20:00:00 +0000] \"GET /a HTTP/1.1\" 200 512 \"-\" \"curl/8\"\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(format!("{good}{good}not a log line\n").as_bytes()).unwrap();
    std::fs::write(dir.path().join("a.log.gz"), gz.finish().unwrap()).unwrap();
    let out = cli(env.emu.endpoint(), dir.path(), &["send", "a.log.gz", "--format", "json", "-o", "json"]);
    assert_exit(&out, 1);
    let r = json_out(&out);
    assert_eq!((r["lines"].as_u64(), r["rejected_lines"].as_u64()), (Some(2), Some(1)));
    let lines = wait_for_lines(&env.clients, DEFAULT_BUCKET, 2).await;
    let v: Value = serde_json::from_slice(&lines[0]).unwrap();
    assert_eq!(
        (v["host"].as_str(), v["status"].as_u64(), v["bytes"].as_u64(), v["agent"].as_str()),
        (Some("10.0.0.1"), Some(200), Some(512), Some("curl/8"))
    );
    assert_eq!(v["time"], "2026-11-25T20:00:00+00:00");

    let out = cli(env.emu.endpoint(), dir.path(), &["send", "--generate", "5000", "--seed", "9", "-o", "json"]);
    assert_exit(&out, 0);
    assert_eq!(json_out(&out)["lines"], 5000);
    wait_for_lines(&env.clients, DEFAULT_BUCKET, 5002).await;
}

#[tokio::test]
async fn a_stream_with_a_processing_lambda_gets_one_line_per_record_and_says_so() {
    use aws_sdk_firehose::types::{
        ExtendedS3DestinationConfiguration, ProcessingConfiguration, Processor, ProcessorParameter,
        ProcessorParameterName, ProcessorType,
    };
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = &env.clients;
    let (bucket, role) = support::bucket_and_role(c, "lambda-bucket", "lambda-role").await;
    let lambda = Processor::builder()
        .r#type(ProcessorType::Lambda)
        .parameters(
            ProcessorParameter::builder()
                .parameter_name(ProcessorParameterName::LambdaArn)
                .parameter_value("arn:aws:lambda:us-east-2:000000000000:function:enrich")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let dest = ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(bucket)
        .role_arn(role)
        .processing_configuration(ProcessingConfiguration::builder().enabled(true).processors(lambda).build())
        .build()
        .unwrap();
    c.firehose
        .create_delivery_stream()
        .delivery_stream_name("Enriched")
        .extended_s3_destination_configuration(dest)
        .send()
        .await
        .unwrap();
    support::wait_active(c, "Enriched").await;
    log_file(dir.path(), "a.log", 100, 7);
    let out = cli(env.emu.endpoint(), dir.path(), &["--stream", "Enriched", "send", "a.log", "-o", "json"]);
    assert_exit(&out, 0);
    let r = json_out(&out);
    assert_eq!((r["one_line_per_record"].as_bool(), r["records"].as_u64()), (Some(true), Some(100)));
    assert!(r["one_line_per_record_reason"].as_str().unwrap().contains("processing Lambda"), "{r}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sending one line per record"), "{stderr}");
}
