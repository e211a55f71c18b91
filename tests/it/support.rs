//! Test harness: start the embedded emulator, build SDK clients for it, poll with a deadline.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use firehose_kit::aws::Clients;
use firehose_kit::settings::Connection;
use firehose_kit_emulator::{EmulatorBuilder, EmulatorHandle};

pub const REGION: &str = "us-east-2";

/// Held by the tests that listen on the emulator's default port, 4566 (one at a time).
pub static DEFAULT_PORT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
pub const ACCOUNT: &str = "000000000000";

/// An emulator plus clients for it.
pub struct Env {
    pub emu: EmulatorHandle,
    pub clients: Clients,
}

/// The emulator with short lifecycle delays (so CREATING and DELETING are observable but quick).
pub async fn start() -> Env {
    start_with(|b| b).await
}

pub async fn start_with(configure: impl FnOnce(EmulatorBuilder) -> EmulatorBuilder) -> Env {
    let builder = firehose_kit_emulator::Emulator::builder()
        .addr("127.0.0.1:0")
        .create_delay(Duration::from_millis(300))
        .delete_delay(Duration::from_millis(300));
    let emu = configure(builder).start().await.expect("emulator starts");
    let clients = clients_for(emu.endpoint()).await;
    Env { emu, clients }
}

pub fn connection(endpoint: &str) -> Connection {
    Connection {
        profile: None,
        region: Some(REGION.into()),
        endpoint_url: Some(endpoint.into()),
        test_credentials: true,
    }
}

pub async fn clients_for(endpoint: &str) -> Clients {
    Clients::connect(&connection(endpoint)).await.expect("clients")
}

/// Polls `check` until it returns `Some`, or panics after `deadline` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(started.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The trust policy setup renders, for tests that create roles by hand.
pub fn trust_policy() -> String {
    firehose_kit::aws::policy::trust_policy(ACCOUNT).to_string()
}

/// Creates a bucket and a role Firehose can assume and that may deliver to the bucket (setup's delivery
/// policy, without logging); returns (bucket ARN, role ARN).
pub async fn bucket_and_role(c: &Clients, bucket: &str, role: &str) -> (String, String) {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    c.s3.create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::UsEast2).build(),
        )
        .send()
        .await
        .expect("create bucket");
    let out = c
        .iam
        .create_role()
        .role_name(role)
        .assume_role_policy_document(trust_policy())
        .send()
        .await
        .expect("create role");
    let policy = firehose_kit::aws::policy::delivery_policy("aws", bucket, None).to_string();
    c.iam
        .put_role_policy()
        .role_name(role)
        .policy_name(firehose_kit::aws::policy::DELIVERY_POLICY_NAME)
        .policy_document(policy)
        .send()
        .await
        .expect("put role policy");
    (format!("arn:aws:s3:::{bucket}"), out.role().unwrap().arn().to_string())
}

/// Creates an ExtendedS3 stream and waits until it is ACTIVE.
pub async fn active_stream(
    c: &Clients,
    name: &str,
    bucket_arn: &str,
    role_arn: &str,
    size_mib: i32,
    interval_s: i32,
    gzip: bool,
) {
    use aws_sdk_firehose::types::{BufferingHints, CompressionFormat, ExtendedS3DestinationConfiguration};
    let dest = ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(bucket_arn)
        .role_arn(role_arn)
        .buffering_hints(BufferingHints::builder().size_in_mbs(size_mib).interval_in_seconds(interval_s).build())
        .compression_format(if gzip { CompressionFormat::Gzip } else { CompressionFormat::Uncompressed })
        .build()
        .unwrap();
    c.firehose
        .create_delivery_stream()
        .delivery_stream_name(name)
        .extended_s3_destination_configuration(dest)
        .send()
        .await
        .expect("create stream");
    wait_active(c, name).await;
}

pub async fn wait_active(c: &Clients, name: &str) {
    eventually("stream ACTIVE", Duration::from_secs(30), || async {
        let d = c.firehose.describe_delivery_stream().delivery_stream_name(name).send().await.ok()?;
        (d.delivery_stream_description()?.delivery_stream_status().as_str() == "ACTIVE").then_some(())
    })
    .await
}

/// Every object under `prefix` in `bucket`: (key, bytes).
pub async fn objects(c: &Clients, bucket: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let list = c.s3.list_objects_v2().bucket(bucket).prefix(prefix).send().await.expect("list");
    for o in list.contents() {
        let key = o.key().unwrap().to_string();
        let body = get_body(c, bucket, &key).await;
        out.push((key, body));
    }
    out
}

/// PutRecordBatch of raw records.
pub async fn try_put_batch(
    c: &Clients,
    stream: &str,
    records: &[Vec<u8>],
) -> Result<
    aws_sdk_firehose::operation::put_record_batch::PutRecordBatchOutput,
    aws_sdk_firehose::error::SdkError<aws_sdk_firehose::operation::put_record_batch::PutRecordBatchError>,
> {
    use aws_sdk_firehose::primitives::Blob;
    use aws_sdk_firehose::types::Record;
    let records: Vec<Record> =
        records.iter().map(|r| Record::builder().data(Blob::new(r.clone())).build().unwrap()).collect();
    c.firehose.put_record_batch().delivery_stream_name(stream).set_records(Some(records)).send().await
}

/// PutRecordBatch of raw records that must succeed (as a call).
pub async fn put_batch(
    c: &Clients,
    stream: &str,
    records: &[Vec<u8>],
) -> aws_sdk_firehose::operation::put_record_batch::PutRecordBatchOutput {
    try_put_batch(c, stream, records).await.expect("put record batch")
}

/// Runs the `firehose-kit` binary against `endpoint` with the emulator's test credentials, in `dir` (so its
/// `.firehose-kit/` state stays in the test's temporary directory). Environment that could leak in from the
/// developer's shell (profile, endpoint, config) is cleared.
pub fn cli(endpoint: &str, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_firehose-kit"));
    cmd.arg("--endpoint-url").arg(endpoint).args(args).current_dir(dir);
    test_env(&mut cmd);
    cmd.output().expect("run firehose-kit")
}

/// The binary without `--endpoint-url` (usage errors, generate, completions).
pub fn cli_plain(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_firehose-kit"));
    cmd.args(args).current_dir(dir);
    test_env(&mut cmd);
    cmd.output().expect("run firehose-kit")
}

pub fn test_env(cmd: &mut std::process::Command) {
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("FIREHOSE_KIT_CONFIG")
        .env_remove("RUST_LOG");
}

/// stdout parsed as JSON, with stderr in the panic message when it is not.
pub fn json_out(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e})\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Asserts the exit code, showing both streams on failure.
#[track_caller]
pub fn assert_exit(out: &std::process::Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A reporter that records every message, to assert what a user would have seen.
#[derive(Default, Clone)]
pub struct Recorder(pub std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Recorder {
    pub fn messages(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

struct RecTask(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl firehose_kit::ui::Task for RecTask {
    fn set_position(&self, _: u64) {}
    fn set_total(&self, _: u64) {}
    fn set_message(&self, m: String) {
        self.0.lock().unwrap().push(m);
    }
    fn finish(&self, m: String) {
        self.0.lock().unwrap().push(m);
    }
}

impl firehose_kit::ui::Reporter for Recorder {
    fn task(&self, _: &str, _: Option<u64>, _: firehose_kit::ui::Unit) -> Box<dyn firehose_kit::ui::Task> {
        Box::new(RecTask(self.0.clone()))
    }
    fn note(&self, m: &str) {
        self.0.lock().unwrap().push(m.to_string());
    }
    fn warn(&self, m: &str) {
        self.0.lock().unwrap().push(format!("warning: {m}"));
    }
}

/// The default bucket setup creates in the emulator.
pub const DEFAULT_BUCKET: &str = "firehose-kit-000000000000-us-east-2";

/// `firehose-kit setup` with extra arguments; panics unless it succeeds.
pub fn setup(endpoint: &str, dir: &std::path::Path, extra: &[&str]) {
    let mut args = vec!["setup"];
    args.extend_from_slice(extra);
    let out = cli(endpoint, dir, &args);
    assert_exit(&out, 0);
}

/// Every object in the bucket (gunzipped when gzip), oldest first by LastModified.
pub async fn delivered(c: &Clients, bucket: &str) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut listed = Vec::new();
    let mut pages = c.s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        for o in page.expect("list").contents() {
            listed.push((o.last_modified().map(|t| t.as_nanos()).unwrap_or(0), o.key().unwrap().to_string()));
        }
    }
    listed.sort();
    let mut out = Vec::new();
    for (_, key) in listed {
        let body = get_body(c, bucket, &key).await;
        let data = if body.starts_with(&[0x1f, 0x8b]) {
            let mut d = Vec::new();
            flate2::read::MultiGzDecoder::new(&body[..]).read_to_end(&mut d).unwrap();
            d
        } else {
            body
        };
        out.push((key, data));
    }
    out
}

/// Every delivered line (with its `\n`), sorted.
pub async fn delivered_lines(c: &Clients, bucket: &str) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for (_, data) in delivered(c, bucket).await {
        lines.extend(data.split_inclusive(|b| *b == b'\n').map(<[u8]>::to_vec));
    }
    lines.sort();
    lines
}

/// The lines of `data` as `send` frames them (each with `\n`), sorted.
pub fn framed_lines(data: &[u8]) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = data
        .split_inclusive(|b| *b == b'\n')
        .map(|l| {
            let mut l = l.to_vec();
            if l.last() != Some(&b'\n') {
                l.push(b'\n');
            }
            l
        })
        .collect();
    lines.sort();
    lines
}

/// Waits until `n` lines are in the bucket; returns them sorted.
pub async fn wait_for_lines(c: &Clients, bucket: &str, n: usize) -> Vec<Vec<u8>> {
    eventually(&format!("{n} delivered lines"), Duration::from_secs(30), || async {
        let lines = delivered_lines(c, bucket).await;
        (lines.len() >= n).then_some(lines)
    })
    .await
}

/// Generated Apache lines, as a file in `dir`.
pub fn log_file(dir: &std::path::Path, name: &str, lines: u64, seed: u64) -> std::path::PathBuf {
    let out = cli_plain(dir, &["generate", "--lines", &lines.to_string(), "--seed", &seed.to_string()]);
    assert_exit(&out, 0);
    let path = dir.join(name);
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// A child process killed when dropped.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `firehose-kit local` as a separate process; returns it and its endpoint.
pub fn spawn_local(data_dir: &std::path::Path) -> (Process, String) {
    spawn_local_with(data_dir, &[])
}

/// `spawn_local` with more `local` options.
pub fn spawn_local_with(data_dir: &std::path::Path, extra: &[&str]) -> (Process, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_firehose-kit"))
        .args(["local", "--addr", "127.0.0.1:0", "--create-delay", "0s", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn firehose-kit local");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    let endpoint = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no endpoint in {line:?}"))
        .to_string();
    (Process(child), endpoint)
}

/// An object's bytes.
pub async fn get_body(c: &Clients, bucket: &str, key: &str) -> Vec<u8> {
    let out = c.s3.get_object().bucket(bucket).key(key).send().await.expect("get object");
    out.body.collect().await.expect("object body").into_bytes().to_vec()
}

/// PutRecord of one record.
pub async fn try_put_record(
    c: &Clients,
    stream: &str,
    data: impl Into<Vec<u8>>,
) -> Result<
    aws_sdk_firehose::operation::put_record::PutRecordOutput,
    aws_sdk_firehose::error::SdkError<aws_sdk_firehose::operation::put_record::PutRecordError>,
> {
    use aws_sdk_firehose::primitives::Blob;
    use aws_sdk_firehose::types::Record;
    let record = Record::builder().data(Blob::new(data.into())).build().expect("data is set");
    c.firehose.put_record().delivery_stream_name(stream).record(record).send().await
}

/// Starts `firehose-kit local` on `data_dir` with extra options, its standard error going to `stderr_file`, and
/// (when `file_size_limit` is given, in bytes) no file it writes allowed to grow past that size, as a full disk
/// would refuse it: writes fail with EFBIG (SIGXFSZ is ignored, as a server would). Returns it and its endpoint.
pub fn spawn_local_limited(
    data_dir: &std::path::Path,
    extra: &[&str],
    stderr_file: &std::path::Path,
    file_size_limit: Option<u64>,
) -> (Process, String) {
    try_spawn_local(data_dir, extra, stderr_file, file_size_limit).unwrap_or_else(|e| panic!("{e}"))
}

/// [`spawn_local_limited`], returning why it did not start (its standard error) instead of panicking. Without
/// `--addr` in `extra`, it listens on a free port.
pub fn try_spawn_local(
    data_dir: &std::path::Path,
    extra: &[&str],
    stderr_file: &std::path::Path,
    file_size_limit: Option<u64>,
) -> Result<(Process, String), String> {
    try_spawn_local_with_exports(data_dir, extra, stderr_file, file_size_limit).map(|(p, e, _)| (p, e))
}

/// [`try_spawn_local`], with the `export K=V ...` line the emulator prints after its endpoint.
pub fn try_spawn_local_with_exports(
    data_dir: &std::path::Path,
    extra: &[&str],
    stderr_file: &std::path::Path,
    file_size_limit: Option<u64>,
) -> Result<(Process, String, String), String> {
    let exe = env!("CARGO_BIN_EXE_firehose-kit");
    let mut args: Vec<String> = ["local", "--create-delay", "0s", "--data-dir"].iter().map(|s| s.to_string()).collect();
    if !extra.contains(&"--addr") {
        args.splice(1..1, ["--addr".to_string(), "127.0.0.1:0".to_string()]);
    }
    args.push(data_dir.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    // `ulimit -f` counts 512-byte blocks in dash (Debian's sh) and POSIX shells.
    let limit = match file_size_limit {
        Some(bytes) => format!("ulimit -f {} && trap '' XFSZ && ", bytes / 512),
        None => String::new(),
    };
    let script = format!("{limit}exec \"$0\" \"$@\"");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(exe)
        .args(&args)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(stderr_file).unwrap())
        .spawn()
        .expect("spawn firehose-kit local");
    let stdout = child.stdout.take().unwrap();
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    // The `export ...` line the banner prints next, kept for whoever wants what a reader would paste.
    let mut exports = String::new();
    if line.contains("http://") {
        std::io::BufRead::read_line(&mut reader, &mut exports).unwrap();
    }
    let process = Process(child);
    match line.split_whitespace().find(|w| w.starts_with("http://")) {
        Some(endpoint) => Ok((process, endpoint.to_string(), exports)),
        None => Err(format!("no endpoint in {line:?}: {}", std::fs::read_to_string(stderr_file).unwrap_or_default())),
    }
}

/// Every line of every object under `prefix`.
pub async fn lines_under(c: &Clients, bucket: &str, prefix: &str) -> Vec<String> {
    let objects = objects(c, bucket, prefix).await;
    objects
        .iter()
        .flat_map(|(_, b)| String::from_utf8_lossy(b).lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// Polls until at least `n` lines are under `prefix` (at most a minute); returns them.
pub async fn wait_lines(c: &Clients, bucket: &str, prefix: &str, n: usize) -> Vec<String> {
    eventually(&format!("{n} lines under {prefix}"), Duration::from_secs(60), || async {
        let lines = lines_under(c, bucket, prefix).await;
        (lines.len() >= n).then_some(lines)
    })
    .await
}
