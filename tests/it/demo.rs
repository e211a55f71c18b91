//! demo: the whole pipeline offline, and Ctrl-C on an external backend leaving nothing behind.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{self, assert_exit, cli_plain, eventually};

#[tokio::test]
async fn demo_runs_offline_and_reports_every_line_verified() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli_plain(dir.path(), &["demo", "--lines", "30000", "--buffer-interval", "1"]);
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "OK: 30,000 lines sent",
        "30,000 verified",
        "flushed by size",
        "by interval",
        "one line per record would bill",
        "everything the demo made was removed",
    ] {
        assert!(stdout.contains(expected), "{expected} missing from:\n{stdout}");
    }
    assert!(!dir.path().join(".firehose-kit").exists(), "the demo keeps its state in a temporary directory");
    // Its HTML report, written where it said.
    assert!(stdout.contains("report: firehose-kit-demo-report.html"), "{stdout}");
    let html = std::fs::read_to_string(dir.path().join("firehose-kit-demo-report.html")).unwrap();
    assert!(html.contains("VERIFIED") && html.contains("<svg"));
}

#[tokio::test]
async fn demo_partitioned_by_status_shows_the_partitioned_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli_plain(dir.path(), &["demo", "--lines", "20000", "--partition-by", "status"]);
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in ["OK: 20,000 lines sent", "20,000 verified", "partitions:", "0 misplaced", "status=200/"] {
        assert!(stdout.contains(expected), "{expected} missing from:\n{stdout}");
    }
}

#[tokio::test]
async fn demo_format_parquet_proves_every_row_and_removes_the_glue_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli_plain(dir.path(), &["demo", "--lines", "20000", "--format", "parquet"]);
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for expected in [
        "converting to Parquet typed by Glue table firehose_kit.apachelogs",
        "OK: 20,000 lines sent",
        "parquet: 20,000 rows typed by Glue table firehose_kit.apachelogs",
        "status int32, bytes int64",
        ".parquet",
        "table     firehose_kit.apachelogs  deleted",
        "cleanup: everything the demo made was removed",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
}

#[tokio::test]
async fn demo_interrupted_mid_send_leaves_nothing_on_an_external_backend() {
    let data = tempfile::tempdir().unwrap();
    let (_emulator, endpoint) = support::spawn_local(data.path());
    let clients = support::clients_for(&endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firehose-kit"));
    cmd.args(["--endpoint-url", &endpoint, "demo", "--lines", "50000000"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    support::test_env(&mut cmd);
    let mut demo = cmd.spawn().unwrap();
    // Mid-send: the stream exists and objects are arriving.
    eventually("the demo's send under way", Duration::from_secs(60), || async {
        let buckets = clients.s3.list_buckets().send().await.ok()?;
        let bucket = buckets.buckets().first()?.name()?.to_string();
        (clients.s3.list_objects_v2().bucket(bucket).send().await.ok()?.key_count()? > 0).then_some(())
    })
    .await;
    let streams = clients.firehose.list_delivery_streams().send().await.unwrap();
    assert!(streams.delivery_stream_names()[0].starts_with("demo-"), "unique names on an external backend");
    Command::new("kill").args(["-INT", &demo.id().to_string()]).status().unwrap();
    let status = demo.wait().unwrap();
    let mut stderr = String::new();
    demo.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "interrupted: not what was asked\n{stderr}");
    assert!(
        clients.firehose.list_delivery_streams().send().await.unwrap().delivery_stream_names().is_empty(),
        "{stderr}"
    );
    assert!(clients.s3.list_buckets().send().await.unwrap().buckets().is_empty(), "{stderr}");
    assert!(clients.iam.list_roles().send().await.unwrap().roles().is_empty(), "{stderr}");
}
