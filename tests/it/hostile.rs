//! What users and other writers throw at firehose-kit: odd object keys in the bucket, bad numbers on the
//! command line, an input that breaks mid-file, an exported endpoint next to `--local`, a broken settings file.
//! Each is an error with exit 2 or 1, or data handled as data, never a crash.

use std::path::{Path, PathBuf};

use crate::support::{self, DEFAULT_BUCKET, assert_exit, cli, cli_plain, json_out, log_file, start, test_env};

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { stack.push(path) } else { out.push(path) }
        }
    }
    out
}

#[tokio::test]
async fn verify_reads_a_bucket_with_hostile_keys_and_keeps_files_only_inside_its_directory() {
    let env = start().await;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("work");
    std::fs::create_dir(&dir).unwrap();
    support::setup(env.emu.endpoint(), &dir, &["--buffer-interval", "1"]);
    let log = log_file(&dir, "access.log", 5_000, 21);
    assert_exit(&cli(env.emu.endpoint(), &dir, &["send", "access.log"]), 0);
    let text = std::fs::read(&log).unwrap();
    let first_line = text.split(|b| *b == b'\n').next().unwrap().to_vec();
    // Objects anyone with write access could put there, named like the stream's so verify reads them.
    let hour = chrono::Utc::now().format("%Y/%m/%d/%H/").to_string();
    let long_segment = "L".repeat(400);
    let odd_keys = vec![
        "/ApacheLogs-leading-slash".to_string(),
        "../../ApacheLogs-1-escape".to_string(),
        format!("{hour}../../../ApacheLogs-1-in-the-hour"),
        // Non-ASCII where the id and the timestamp should be, cut mid-character at the byte offsets a naive parser
        // slices at.
        format!("{hour}ApacheLogs-1-2026-11-26-13-00-00-xééééééééééééééééééé-non-ascii-id"),
        format!("{hour}ApacheLogs-1-2026-11-26-13-00-0é-959487e4-754a-46e0-9b2d-f8cf1ce8a226"),
        "2026/ÄÖ/ApacheLogs-1-ünïcode-ž".to_string(),
        format!("a/./b/../{long_segment}/{}/ApacheLogs-1-long", "m".repeat(1000 - 420)),
    ];
    assert!(odd_keys.iter().any(|k| k.len() >= 1000));
    for key in &odd_keys {
        let mut body = first_line.clone();
        body.extend_from_slice(b"\nan extra line nobody sent\n");
        env.clients.s3.put_object().bucket(DEFAULT_BUCKET).key(key).body(body.into()).send().await.unwrap();
    }

    // Against the source file (the whole bucket is listed), and against the run manifest (hour partitions).
    for (args, keep) in [
        (vec!["verify", "-o", "json", "--expect", "access.log", "--keep", "kept"], "kept"),
        (vec!["verify", "-o", "json", "--keep", "kept-run"], "kept-run"),
    ] {
        let out = cli(env.emu.endpoint(), &dir, &args);
        assert_exit(&out, 0);
        let r = json_out(&out);
        assert_eq!((r["matched"].as_u64(), r["missing"].as_u64()), (Some(5_000), Some(0)), "{r}");
        assert_eq!(r["verified"], true);
        assert!(r["extra"].as_u64().unwrap() >= 1, "the odd objects' extra lines are counted: {r}");
        let keep_dir = dir.join(keep).canonicalize().unwrap();
        for o in r["objects"].as_array().unwrap() {
            let kept = PathBuf::from(o["kept_as"].as_str().unwrap_or_else(|| panic!("no kept_as: {o}")));
            let kept = dir.join(kept).canonicalize().unwrap();
            assert!(kept.starts_with(&keep_dir), "{} is outside {}", kept.display(), keep_dir.display());
            assert!(kept.file_name().unwrap().len() <= 255);
        }
    }
    let odd_seen = cli(env.emu.endpoint(), &dir, &["verify", "-o", "json", "--expect", "access.log"]);
    let objects = json_out(&odd_seen)["objects"].as_array().unwrap().len();
    assert!(objects > odd_keys.len(), "the odd objects were read ({objects} objects)");
    // Nothing was written anywhere but the keep directories, the state dir and the input.
    for path in files_under(root.path()) {
        let rel =
            path.strip_prefix(&dir).unwrap_or_else(|_| panic!("written outside the work dir: {}", path.display()));
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        assert!(
            ["kept", "kept-run", ".firehose-kit", "access.log"].contains(&first.as_str()),
            "unexpected file {}",
            rel.display()
        );
    }
}

#[test]
fn each_bad_numeric_flag_exits_2_naming_the_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.log"), b"x\n").unwrap();
    let cases: &[&[&str]] = &[
        &["send", "--generate", "1", "--rate", "inf"],
        &["send", "--generate", "1", "--rate", "NaN"],
        &["send", "--generate", "1", "--rate", "-1"],
        &["send", "--generate", "1", "--rate", "0"],
        &["send", "a.log", "--follow", "--linger", "inf"],
        &["send", "a.log", "--follow", "--linger", "NaN"],
        &["send", "a.log", "--follow", "--linger", "-1"],
        &["send", "--generate", "1", "--retry-timeout", "18446744073709551615"],
        &["send", "--generate", "1", "--retry-timeout", "-1"],
        &["send", "--generate", "-1"],
        &["send", "--generate", "99999999999999999999999"],
        &["send", "--generate", "1", "--record-size", "0"],
        &["send", "--generate", "1", "--record-size", "1024001"],
        &["send", "--generate", "1", "--concurrency", "0"],
        &["verify", "--wait", "99999999999"],
        &["verify", "--wait", "inf"],
        &["setup", "--buffer-size", "0"],
        &["setup", "--buffer-size", "-1"],
        &["setup", "--buffer-interval", "901"],
        &["setup", "--buffer-interval", "NaN"],
        &["setup", "--timeout", "99999999999"],
        &["generate", "--rate", "inf"],
        &["generate", "--rate", "NaN"],
        &["generate", "--rate", "0"],
        &["generate", "--lines", "-1"],
        &["local", "--fail-rate", "NaN"],
        &["local", "--fail-rate", "2"],
        &["local", "--create-delay", "99999999999s"],
        &["demo", "--lines", "-1"],
    ];
    for args in cases {
        let out = cli_plain(dir.path(), args);
        assert_exit(&out, 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let value = args.last().unwrap();
        let flag = args[args.len() - 2];
        assert!(stderr.contains(value) || stderr.contains(flag), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn an_input_that_breaks_mid_file_fails_the_run_with_exit_1_and_says_so_in_the_manifest() {
    use std::io::Write;
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    support::setup(env.emu.endpoint(), dir.path(), &["--buffer-interval", "1"]);
    let log = log_file(dir.path(), "plain.log", 100_000, 5);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read(&log).unwrap()).unwrap();
    let mut bytes = gz.finish().unwrap();
    // A second gzip member whose header is damaged (gzip magic, unknown method): the decoder fails there, after
    // the first member's 100,000 lines.
    bytes.extend_from_slice(b"\x1f\x8b\x63damaged member that follows");
    std::fs::write(dir.path().join("broken.log.gz"), &bytes).unwrap();

    let out = cli(env.emu.endpoint(), dir.path(), &["send", "broken.log.gz"]);
    assert_exit(&out, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: reading `broken.log.gz` failed part-way"), "{stderr}");
    assert!(stderr.contains("hint:") && stderr.contains("resumes"), "{stderr}");
    let runs: Vec<serde_json::Value> = std::fs::read_dir(dir.path().join(".firehose-kit/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "failed", "{}", runs[0]);
    // Every line read before the damage was still sent, and the checkpoint is right after it: a re-run (with
    // the file repaired by hand) would resume there.
    assert_eq!(runs[0]["lines"], 100_000, "{}", runs[0]);
}

#[tokio::test]
async fn local_wins_over_an_exported_endpoint() {
    let _port = support::DEFAULT_PORT.lock().await;
    let dir = tempfile::tempdir().unwrap();
    // The emulator where --local points; a dead endpoint in the environment.
    let emu = firehose_kit_emulator::Emulator::builder().addr(firehose_kit_emulator::DEFAULT_ADDR).start().await;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_firehose-kit"));
    test_env(&mut cmd);
    cmd.args(["--local", "-o", "json", "status"]).current_dir(dir.path()).env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("127.0.0.1:9/") && !stderr.contains("cannot be used with"), "{stderr}");
    match emu {
        // It reached the emulator: the stream does not exist there (exit 1), no usage error, no unreachable endpoint.
        Ok(_emu) => {
            assert_exit(&out, 1);
            assert!(stderr.contains("does not exist in") && stderr.contains("127.0.0.1:4566"), "{stderr}");
        }
        // Port 4566 is taken by something else on this machine: it still went there, not to the exported one.
        Err(_) => assert!(stderr.contains("127.0.0.1:4566"), "{stderr}"),
    }
    // Typing both is refused.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_firehose-kit"));
    test_env(&mut cmd);
    let out = cmd.args(["--local", "--endpoint-url", "http://127.0.0.1:9", "status"]).output().unwrap();
    assert_exit(&out, 2);
}

#[test]
fn completions_generate_help_and_version_work_whatever_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("firehose-kit.toml"), b"this is [[ not toml\n").unwrap();
    let run = |args: &[&str], region: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_firehose-kit"));
        test_env(&mut cmd);
        cmd.args(args).current_dir(dir.path()).env("AWS_REGION", region).output().unwrap()
    };
    for region in ["us-east-2", "not a region"] {
        let out = run(&["completions", "bash"], region);
        assert_exit(&out, 0);
        assert!(String::from_utf8_lossy(&out.stdout).contains("complete -F"));
        let out = run(&["generate", "--lines", "3", "--seed", "1"], region);
        assert_exit(&out, 0);
        assert_eq!(out.stdout.iter().filter(|b| **b == b'\n').count(), 3);
        for args in [&["--help"][..], &["--version"], &["send", "--help"]] {
            assert_exit(&run(args, region), 0);
        }
    }
    // The settings file really is broken: commands that need settings say so.
    let out = run(&["status"], "us-east-2");
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("firehose-kit.toml"));
}

/// A body past the largest legal one of its call is refused without being read whole (413), while a batch just
/// over Firehose's 4 MiB still reaches Firehose's own error, and the emulator serves on.
#[tokio::test]
async fn a_request_body_past_its_calls_largest_legal_size_is_refused() {
    use aws_sdk_firehose::primitives::Blob;
    use aws_sdk_firehose::types::Record;
    let env = start().await;
    let batch = |records: usize| {
        (0..records).map(|_| Record::builder().data(Blob::new(vec![b'x'; 1_000 * 1024])).build().unwrap()).collect()
    };
    let put = |records: usize| {
        env.clients.firehose.put_record_batch().delivery_stream_name("NoSuchStream").set_records(Some(batch(records)))
    };
    // 9 records of 1,000 KiB: about 12 MB once base64-encoded, past any legal PutRecordBatch.
    let err = put(9).send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(413), "{err:?}");
    // 5 records: over 4 MiB of data, within the cap: Firehose's own answer.
    let err = put(5).send().await.unwrap_err().into_service_error();
    assert_eq!(err.meta().message(), Some("Records size exceeds 4 MB limit"), "{err:?}");
    // Within the limit: the call goes through to the stream lookup.
    let err = put(4).send().await.unwrap_err().into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
}
