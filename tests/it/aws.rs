//! The real-AWS acceptance test: `make test-aws`. It is `#[ignore]`d everywhere else. Without usable AWS
//! credentials it fails with "no AWS credentials: nothing was tested" (a green run means AWS was tested). With
//! credentials it prints what it will create and in which
//! account and region, then runs setup → send → verify → doctor → teardown with unique names, and removes what it
//! made whatever happens: when a step fails (a guard's Drop) and on Ctrl-C (a signal handler). It costs a few
//! cents (one stream for a few minutes, a few MB). The IAM permissions it needs are templates/operator-policy.json
//! (see docs/aws.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

/// Runs the binary against real AWS (the standard credential chain; AWS_REGION or the profile's region).
fn fk(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firehose-kit"));
    cmd.args(args).current_dir(dir).env_remove("AWS_ENDPOINT_URL").env_remove("FIREHOSE_KIT_CONFIG");
    cmd.output().expect("run firehose-kit")
}

fn show(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// What the test made, removed when dropped (a failed assertion unwinds through it).
struct Cleanup {
    dir: PathBuf,
    stream: String,
    bucket: String,
}

impl Cleanup {
    fn run(dir: &Path, stream: &str, bucket: &str) {
        let out = fk(dir, &["--stream", stream, "teardown", "--yes", "--bucket", bucket]);
        eprintln!("cleanup (teardown) exited {:?}:\n{}", out.status.code(), show(&out));
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        Cleanup::run(&self.dir, &self.stream, &self.bucket);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real AWS, costs cents: make test-aws"]
async fn aws_acceptance_setup_send_verify_doctor_teardown() {
    let dir = tempfile::tempdir().unwrap();
    let conn = firehose_kit::settings::Connection {
        profile: std::env::var("AWS_PROFILE").ok(),
        region: std::env::var("AWS_REGION").ok(),
        endpoint_url: None,
        test_credentials: false,
    };
    let clients = firehose_kit::aws::Clients::connect(&conn).await.expect("clients");
    let account = match clients.account_id().await {
        Ok(a) => a,
        Err(e) => panic!("no AWS credentials: nothing was tested ({e})"),
    };
    let suffix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let stream = format!("fk-acceptance-{suffix}");
    let bucket = format!("firehose-kit-acc-{account}-{suffix}");
    eprintln!(
        "real-AWS acceptance test in account {account}, region {}: creates stream {stream}, role firehose-kit-{stream}-delivery, bucket {bucket}, log group /aws/kinesisfirehose/{stream}; all removed at the end (also on failure or Ctrl-C)",
        clients.region
    );
    let guard = Cleanup { dir: dir.path().to_path_buf(), stream: stream.clone(), bucket: bucket.clone() };
    {
        let (dir, stream, bucket) = (guard.dir.clone(), stream.clone(), bucket.clone());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: removing what the test made");
                Cleanup::run(&dir, &stream, &bucket);
                std::process::exit(130);
            }
        });
    }
    let d = dir.path();
    let step = |args: &[&str]| {
        let mut full = vec!["--stream", stream.as_str()];
        full.extend_from_slice(args);
        let out = fk(d, &full);
        assert_eq!(out.status.code(), Some(0), "{args:?} failed:\n{}", show(&out));
        out
    };
    step(&["setup", "--bucket", &bucket, "--buffer-interval", "60"]);
    step(&["send", "--generate", "20000"]);
    let verify = step(&["verify", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!((v["matched"].as_u64(), v["missing"].as_u64()), (Some(20_000), Some(0)), "{v}");
    let doctor = step(&["doctor", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    assert_eq!(doc["problems"], 0, "{doc}");
    drop(guard);
    let again = fk(d, &["--stream", &stream, "status"]);
    assert_ne!(again.status.code(), Some(0), "the stream is gone after teardown");
}
