//! Every hint runs: the failures users meet are provoked, and each command their output names in backticks is
//! run as printed (with the global options the user typed, which the tool adds itself) and must succeed, or
//! lead to the next step it promises.

use std::process::Command;

use crate::support::{self, ACCOUNT, DEFAULT_BUCKET, assert_exit, cli, start, test_env};

/// The `firehose-kit …` commands an output names in backticks.
fn hinted(out: &std::process::Output) -> Vec<String> {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    text.split('`').skip(1).step_by(2).filter(|c| c.starts_with("firehose-kit ")).map(str::to_string).collect()
}

/// Runs a hinted command as a user would paste it (through the shell), with the test's environment.
fn run(dir: &std::path::Path, command: &str) -> std::process::Output {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_firehose-kit"));
    let path = format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(command).current_dir(dir);
    test_env(&mut cmd);
    cmd.env("PATH", path).output().unwrap()
}

/// Runs every hinted command of `out` (in order); each must exit 0.
fn run_all(dir: &std::path::Path, out: &std::process::Output, at_least: usize) -> Vec<String> {
    let commands = hinted(out);
    assert!(
        commands.len() >= at_least,
        "expected {at_least} hinted commands in:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for c in &commands {
        assert!(!c.contains("FILE") && !c.contains("NAME") && !c.contains(" N "), "a placeholder in `{c}`");
        assert_exit(&run(dir, c), 0);
    }
    commands
}

#[tokio::test]
async fn every_hint_a_failure_prints_runs_as_printed() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let ep = env.emu.endpoint();
    let c = &env.clients;

    // No stream yet: send and status say to create it.
    support::log_file(dir.path(), "access.log", 2_000, 101);
    let out = cli(ep, dir.path(), &["--stream", "Hinted", "send", "access.log"]);
    assert_exit(&out, 3);
    let ran = run_all(dir.path(), &out, 1);
    assert!(ran[0].contains(&format!("--endpoint-url {ep}")) && ran[0].contains("--stream Hinted setup"), "{ran:?}");
    // The stream exists now (a short interval, so the test need not wait a minute for the last object); verify
    // without a run says to send something.
    support::setup(ep, dir.path(), &["--stream", "Hinted", "--buffer-interval", "1"]);
    let out = cli(ep, dir.path(), &["--stream", "Hinted", "verify"]);
    assert_exit(&out, 2);
    run_all(dir.path(), &out, 1);
    assert_exit(&cli(ep, dir.path(), &["--stream", "Hinted", "verify", "--wait", "60s"]), 0);

    // Setup asked to move the stream to another bucket: the two commands that do it run, in order.
    let out = cli(ep, dir.path(), &["--stream", "Hinted", "setup", "--bucket", "another-bucket-for-hints"]);
    assert_exit(&out, 2);
    run_all(dir.path(), &out, 2);

    // S3.AccessDenied: verify's fix (setup) runs, and then everything retained arrives.
    support::setup(ep, dir.path(), &["--buffer-interval", "1"]);
    c.iam
        .delete_role_policy()
        .role_name("firehose-kit-ApacheLogs-delivery")
        .policy_name("s3-delivery")
        .send()
        .await
        .unwrap();
    let deny = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"arn:aws:logs:us-east-2:{ACCOUNT}:log-group:/aws/kinesisfirehose/ApacheLogs:log-stream:DestinationDelivery"}}]}}"#
    );
    c.iam
        .put_role_policy()
        .role_name("firehose-kit-ApacheLogs-delivery")
        .policy_name("s3-delivery")
        .policy_document(deny)
        .send()
        .await
        .unwrap();
    assert_exit(&cli(ep, dir.path(), &["send", "access.log"]), 0);
    let out = cli(ep, dir.path(), &["verify", "--wait", "3"]);
    assert_exit(&out, 1);
    run_all(dir.path(), &out, 1);
    assert_exit(&cli(ep, dir.path(), &["verify", "--wait", "30"]), 0);
    // doctor's fix for buffering runs and leaves nothing to warn about.
    let out = cli(ep, dir.path(), &["doctor", "--buffer-size", "5", "--buffer-interval", "300"]);
    run_all(dir.path(), &out, 1);
    let again = cli(ep, dir.path(), &["doctor", "--buffer-size", "5", "--buffer-interval", "300", "-o", "json"]);
    assert_eq!(support::json_out(&again)["warnings"], 0);

    // Error logging off: verify's hint turns it on.
    support::setup(ep, dir.path(), &["--stream", "Quiet", "--bucket", "quiet-bucket", "--no-error-logging"]);
    c.iam
        .delete_role_policy()
        .role_name("firehose-kit-Quiet-delivery")
        .policy_name("s3-delivery")
        .send()
        .await
        .unwrap();
    assert_exit(&cli(ep, dir.path(), &["--stream", "Quiet", "send", "access.log"]), 0);
    let out = cli(ep, dir.path(), &["--stream", "Quiet", "verify", "--wait", "1"]);
    let ran = run_all(dir.path(), &out, 1);
    assert!(ran.iter().any(|r| r.contains("--stream Quiet setup --error-logging")), "{ran:?}");
    let d = c.firehose.describe_delivery_stream().delivery_stream_name("Quiet").send().await.unwrap();
    let ext = d.delivery_stream_description().unwrap().destinations()[0].extended_s3_destination_description().unwrap();
    assert_eq!(ext.cloud_watch_logging_options().and_then(|o| o.enabled()), Some(true));
    assert_eq!(ext.bucket_arn(), "arn:aws:s3:::quiet-bucket", "the stream keeps its own bucket");

    // Partitioning's minimums: the hinted setup is one setup accepts.
    let out = cli(ep, dir.path(), &["--stream", "Parted", "setup", "--partition-by", "status", "--buffer-size", "5"]);
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 64 MiB (not 5 MiB)") && !stderr.contains("300 s"), "{stderr}");
    run_all(dir.path(), &out, 1);
    // doctor on it, asked for buffering below the minimums, hints values setup accepts.
    let out = cli(ep, dir.path(), &["--stream", "Parted", "doctor", "--buffer-size", "5"]);
    let ran = run_all(dir.path(), &out, 1);
    assert!(ran.iter().any(|r| r.contains("--buffer-size 64")), "{ran:?}");

    // teardown of a stream without error logging says nothing of a log group; with --keep-bucket the summary
    // says what was kept.
    let out = cli(ep, dir.path(), &["--stream", "Quiet", "setup", "--no-error-logging"]);
    assert_exit(&out, 0);
    let out = cli(ep, dir.path(), &["--stream", "Quiet", "teardown", "--yes", "--keep-bucket"]);
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("log group") || !text.contains("already gone"), "{text}");
    assert!(
        text.contains("bucket `quiet-bucket` kept (--keep-bucket)")
            && !text.contains("nothing firehose-kit made is left"),
        "{text}"
    );
    assert!(c.s3.head_bucket().bucket(DEFAULT_BUCKET).send().await.is_ok());
}

/// `--local` with nothing on port 4566: the error names the port and how to start the emulator; started as
/// hinted, the same command reaches it.
#[tokio::test]
async fn local_without_an_emulator_says_which_port_and_how_to_start_one() {
    let _port = support::DEFAULT_PORT.lock().await;
    if std::net::TcpListener::bind(firehose_kit::firehose::contract::DEFAULT_ADDR).is_err() {
        eprintln!("skipping: something listens on 127.0.0.1:4566");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = support::cli_plain(dir.path(), &["--local", "status"]);
    assert_exit(&out, 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("127.0.0.1:4566 (port 4566)") && stderr.contains("`firehose-kit local`"), "{stderr}");
    assert!(!stderr.contains("AWS_ENDPOINT_URL"), "{stderr}");
    let data = dir.path().join("data");
    let log = dir.path().join("emulator.log");
    let (_emulator, endpoint) = support::spawn_local_limited(&data, &["--addr", "127.0.0.1:4566"], &log, None);
    assert_eq!(endpoint, "http://127.0.0.1:4566");
    let out = support::cli_plain(dir.path(), &["--local", "status"]);
    assert_exit(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist in http://127.0.0.1:4566"));
}
