//! Compatibility: other clients against our emulator (boto3 and the AWS CLI; the AWS SDK for JavaScript v3;
//! Terraform, skipped where it or its provider mirror is missing), and firehose-kit against moto server. These need Python packages (`pip install 'moto[server]' boto3 awscli`)
//! and node with `npm ci` in tests/compat/js, so they are `#[ignore]`d in `make test` and run by
//! `make test-compat` (which runs `npm ci`; CI installs the Python packages).

use std::process::Command;

use crate::support;

#[tokio::test]
#[ignore = "needs python3 with boto3 and the AWS CLI: make test-compat"]
async fn compat_boto3_and_aws_cli_drive_the_emulator() {
    // --speed 60: the partitioned stream's 60 s interval (AWS's minimum) flushes after 1 s.
    let env = support::start_with(|b| b.speed(60.0)).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/boto3_emulator.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).env("AWS_ACCESS_KEY_ID", "test").env("AWS_SECRET_ACCESS_KEY", "test");
    run_client_script(cmd, env.emu.endpoint(), "boto3/AWS CLI script", "verified");
}

/// A chained pipeline fed by three producers at once: firehose-kit's send, boto3's PutRecords and the AWS CLI's
/// put-record all write to the data stream; verify proves every line send sent and counts the others as extra.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3 with boto3 and the AWS CLI: make test-compat"]
async fn compat_boto3_and_aws_cli_write_to_the_data_stream_while_firehose_kit_sends_and_verifies() {
    let env = support::start_with(|b| b.speed(60.0)).await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    support::setup(&ep, dir.path(), &["--source", "kinesis", "--shards", "2"]);
    let mut send = Command::new(env!("CARGO_BIN_EXE_firehose-kit"));
    send.args(["--endpoint-url", &ep, "send", "--generate", "50000", "--rate", "25000", "-o", "json"]);
    send.current_dir(dir.path()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    support::test_env(&mut send);
    let send = send.spawn().unwrap();
    let boto3 = r#"
import boto3
k = boto3.client("kinesis")
for batch in range(4):
    out = k.put_records(StreamName="ApacheLogs",
                        Records=[{"Data": f"boto3 producer {batch}-{i}\n".encode(), "PartitionKey": f"{batch}-{i}"} for i in range(250)])
    assert out["FailedRecordCount"] == 0, out
print("boto3 put 1000 records")
"#;
    let mut py = Command::new("python3");
    py.args(["-c", boto3]).env("AWS_ACCESS_KEY_ID", "test").env("AWS_SECRET_ACCESS_KEY", "test");
    run_client_script(py, &ep, "boto3 producer", "put 1000 records");
    let mut aws = Command::new("aws");
    aws.args([
        "kinesis",
        "put-record",
        "--stream-name",
        "ApacheLogs",
        "--partition-key",
        "cli",
        "--data",
        "aws cli producer\n",
    ]);
    aws.env("AWS_ACCESS_KEY_ID", "test").env("AWS_SECRET_ACCESS_KEY", "test");
    run_client_script(aws, &ep, "AWS CLI producer", "SequenceNumber");
    let sent = tokio::task::spawn_blocking(move || send.wait_with_output()).await.unwrap().unwrap();
    support::assert_exit(&sent, 0);
    let out = support::cli(&ep, dir.path(), &["verify", "-o", "json"]);
    support::assert_exit(&out, 0);
    let v = support::json_out(&out);
    assert_eq!(
        (v["verified"].as_bool(), v["matched"].as_u64(), v["missing"].as_u64()),
        (Some(true), Some(50_000), Some(0)),
        "{v}"
    );
    assert_eq!(v["extra"].as_u64(), Some(1001), "the other producers' lines are extra: {v}");
}

/// Record format conversion, driven by boto3 and read back by pyarrow (tests/compat/conversion.py).
#[tokio::test]
#[ignore = "needs python3 with boto3 and pyarrow: make test-compat"]
async fn compat_pyarrow_reads_the_parquet_a_converting_stream_writes() {
    if !Command::new("python3").args(["-c", "import pyarrow"]).output().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: needs pyarrow (pip install pyarrow)");
        return;
    }
    let env = support::start_with(|b| b.speed(60.0)).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/conversion.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).env("AWS_ACCESS_KEY_ID", "test").env("AWS_SECRET_ACCESS_KEY", "test");
    run_client_script(cmd, env.emu.endpoint(), "conversion script", "read back by pyarrow");
}

/// Times no timestamp column holds, through boto3 (tests/compat/out_of_range.py): the record fails alone with its
/// code, the rest are rows pyarrow reads (the same script runs against a release build by hand).
#[tokio::test]
#[ignore = "needs python3 with boto3 and pyarrow: make test-compat"]
async fn compat_out_of_range_times_fail_alone_through_boto3() {
    if !Command::new("python3").args(["-c", "import pyarrow"]).output().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: needs pyarrow (pip install pyarrow)");
        return;
    }
    let env = support::start_with(|b| b.speed(60.0)).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/out_of_range.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).env("AWS_ACCESS_KEY_ID", "test").env("AWS_SECRET_ACCESS_KEY", "test");
    run_client_script(cmd, env.emu.endpoint(), "out-of-range script", "10 Parquet rows, 2 in format-conversion-failed");
}

/// What `setup --format parquet` and send deliver, read by pyarrow (tests/compat/setup_parquet.py): the rows
/// verify proved, with the Glue table's types.
#[tokio::test]
#[ignore = "needs python3 with boto3 and pyarrow: make test-compat"]
async fn compat_pyarrow_reads_what_setup_format_parquet_delivers() {
    if !Command::new("python3").args(["-c", "import pyarrow"]).output().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: needs pyarrow (pip install pyarrow)");
        return;
    }
    let env = support::start_with(|b| b.speed(60.0)).await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    support::setup(&ep, dir.path(), &["--format", "parquet"]);
    support::assert_exit(&support::cli(&ep, dir.path(), &["send", "--generate", "10000"]), 0);
    support::assert_exit(&support::cli(&ep, dir.path(), &["verify"]), 0);
    let mut cmd = Command::new("python3");
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/setup_parquet.py")).arg("10000");
    cmd.env("AWS_ACCESS_KEY_ID", "test").env("AWS_SECRET_ACCESS_KEY", "test");
    run_client_script(cmd, &ep, "pyarrow script", "read back by pyarrow with the table's types");
}

/// Runs another client's script against `endpoint` and asserts it succeeded and printed `done`.
fn run_client_script(mut cmd: Command, endpoint: &str, what: &str, done: &str) {
    let out = cmd
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", support::REGION)
        .env("AWS_DEFAULT_REGION", support::REGION)
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap_or_else(|e| panic!("{what} cannot start: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains(done), "{stdout}");
}

#[tokio::test]
#[ignore = "needs node and `npm ci` in tests/compat/js: make test-compat"]
async fn compat_javascript_sdk_drives_the_emulator() {
    let env = support::start().await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/js");
    assert!(
        std::path::Path::new(dir).join("node_modules/@aws-sdk/client-s3").exists(),
        "the JavaScript SDK is not installed: run `npm ci` in tests/compat/js (make test-compat does)"
    );
    let mut cmd = Command::new("node");
    cmd.arg("emulator.mjs").current_dir(dir);
    run_client_script(cmd, env.emu.endpoint(), "JavaScript SDK script", "records verified");
}

/// moto server on a free loopback port, stopped when dropped.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("python3")
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 -m moto.server (pip install 'moto[server]')");
    let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
    support::eventually("moto server listening", std::time::Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
    })
    .await;
    moto
}

#[tokio::test]
#[ignore = "needs moto server: make test-compat"]
async fn compat_moto_setup_send_verify_status_teardown() {
    let moto = start_moto().await;
    let dir = tempfile::tempdir().unwrap();
    let ep = moto.endpoint.as_str();
    // moto's account is 123456789012 and it has no buffering: every PutRecordBatch becomes one object.
    let out = support::cli(ep, dir.path(), &["setup", "-o", "json"]);
    support::assert_exit(&out, 0);
    let setup = support::json_out(&out);
    assert_eq!(setup["status"], "ACTIVE");
    let bucket = setup["bucket"].as_str().unwrap().to_string();
    let again = support::json_out(&support::cli(ep, dir.path(), &["setup", "-o", "json"]));
    assert!(again["steps"].as_array().unwrap().iter().all(|s| s["action"] == "unchanged"), "{again}");
    // Error logging works on moto's CloudWatch Logs too: the group with its retention and log stream.
    let clients = support::clients_for(ep).await;
    let groups = clients.logs.describe_log_groups().log_group_name_prefix("/aws/kinesisfirehose/ApacheLogs").send();
    let groups = groups.await.unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(14));
    let streams = clients.logs.describe_log_streams().log_group_name("/aws/kinesisfirehose/ApacheLogs").send();
    assert_eq!(streams.await.unwrap().log_streams()[0].log_stream_name(), Some("DestinationDelivery"));
    let doctor = support::cli(ep, dir.path(), &["doctor", "-o", "json"]);
    support::assert_exit(&doctor, 0);
    assert_eq!(support::json_out(&doctor)["problems"], 0);

    support::log_file(dir.path(), "access.log", 20_000, 5);
    let out = support::cli(ep, dir.path(), &["send", "access.log", "--record-size", "100000", "-o", "json"]);
    support::assert_exit(&out, 0);
    assert_eq!(support::json_out(&out)["lines"], 20_000);

    let out = support::cli(ep, dir.path(), &["verify", "-o", "json"]);
    support::assert_exit(&out, 0);
    let v = support::json_out(&out);
    assert_eq!((v["verified"].as_bool(), v["matched"].as_u64()), (Some(true), Some(20_000)), "{v}");

    let out = support::cli(ep, dir.path(), &["status", "-o", "json"]);
    support::assert_exit(&out, 0);
    let s = support::json_out(&out);
    assert_eq!(s["status"], "ACTIVE");
    assert!(s["delivered"]["objects"].as_u64().unwrap() > 0);
    assert_eq!(s["last_run"]["lines"], 20_000);

    let out = support::cli(ep, dir.path(), &["teardown", "--yes", "-o", "json"]);
    support::assert_exit(&out, 0);
    let t = support::json_out(&out);
    assert!(t["resources"].as_array().unwrap().iter().all(|r| r["fate"] == "deleted"), "{t}");
    assert!(clients.s3.head_bucket().bucket(&bucket).send().await.is_err(), "bucket gone");
    assert!(clients.logs.describe_log_groups().send().await.unwrap().log_groups().is_empty(), "log group gone");
}

/// The headless browser to render with: `$CHROMIUM`, else the first of chromium, chromium-browser,
/// google-chrome on the PATH.
fn chromium() -> String {
    if let Ok(path) = std::env::var("CHROMIUM") {
        return path;
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return name.to_string();
        }
    }
    panic!("no chromium on the PATH (apt-get install chromium, or set CHROMIUM)");
}

/// Renders a page in headless Chromium; returns (the DOM it built, its log) and writes a screenshot.
fn render(page: &std::path::Path, screenshot: &std::path::Path) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let common = [
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--hide-scrollbars".into(),
        format!("--user-data-dir={}", profile.path().display()),
        "--enable-logging=stderr".into(),
        "--v=0".into(),
    ];
    let shot = Command::new(chromium())
        .args(&common)
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--window-size=1280,2400")
        .arg(&url)
        .output()
        .expect("run chromium");
    assert!(shot.status.success(), "chromium failed: {}", String::from_utf8_lossy(&shot.stderr));
    let dom = Command::new(chromium()).args(&common).arg("--dump-dom").arg(&url).output().expect("run chromium");
    let log = format!("{}{}", String::from_utf8_lossy(&shot.stderr), String::from_utf8_lossy(&dom.stderr));
    (String::from_utf8_lossy(&dom.stdout).into_owned(), log)
}

/// The share of the screenshot's pixels that are not (nearly) white.
fn ink(png_path: &std::path::Path) -> f64 {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let inked = pixels.chunks(channels).filter(|p| p.iter().take(3).any(|c| *c < 200)).count();
    inked as f64 / (pixels.len() / channels) as f64
}

#[tokio::test]
#[ignore = "needs headless Chromium (apt-get install chromium): make test-compat"]
async fn compat_the_html_report_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (page, _, _env) = crate::report::known_run(dir.path()).await;
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    let screenshot = target.join("report-screenshot.png");
    let _ = std::fs::remove_file(&screenshot);
    let (dom, log) = render(&page, &screenshot);
    for bad in ["Uncaught", ":ERROR:CONSOLE", "net::ERR_", "Failed to load"] {
        assert!(!log.contains(bad), "the browser reported `{bad}`:\n{log}");
    }
    assert!(dom.contains("Delivery timeline") && dom.contains("VERIFIED"), "the page did not load:\n{dom}");
    let share = ink(&screenshot);
    assert!(share > 0.02, "the screenshot is blank ({:.2}% ink): {}", share * 100.0, screenshot.display());
    println!("screenshot: {} ({:.1}% ink)", screenshot.display(), share * 100.0);
}

/// Where a filesystem mirror of the Terraform AWS provider is (`TF_PROVIDER_MIRROR`, or the usual places): nothing
/// can be downloaded here.
fn terraform_mirror() -> Option<std::path::PathBuf> {
    let home = std::env::var("HOME").unwrap_or_default();
    let candidates = std::env::var("TF_PROVIDER_MIRROR").ok().into_iter().chain(
        [
            "/opt/tf-plugins",
            &format!("{home}/.terraform.d/plugins"),
            "/usr/local/share/terraform/plugins",
            "/usr/share/terraform/plugins",
        ]
        .map(str::to_string),
    );
    candidates.map(std::path::PathBuf::from).find(|p| p.join("registry.terraform.io/hashicorp/aws").is_dir())
}

/// `terraform ARGS` in `dir` with the mirror's CLI config; its output, asserting the exit code.
fn terraform(dir: &std::path::Path, args: &[&str], code: i32) -> String {
    let out = Command::new("terraform")
        .args(args)
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", dir.join("cli.tfrc"))
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .expect("terraform runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(code), "terraform {args:?}:\n{text}");
    text
}

/// The handler Terraform deploys: each record prefixed with the PREFIX variable and the code's version.
fn terraform_handler(dir: &std::path::Path, version: &str) {
    let code = format!(
        "import base64, os\n\ndef handler(event, context):\n    tag = (os.environ['PREFIX'] + '{version}:').encode()\n    return {{'records': [{{'recordId': r['recordId'], 'result': 'Ok', 'data': base64.b64encode(tag + base64.b64decode(r['data'])).decode()}} for r in event['records']]}}\n"
    );
    std::fs::write(dir.join("function.zip"), crate::transform::zip_of(&[("handler.py", &code, 0o644)])).unwrap();
}

/// Terraform's aws_lambda_function and a Firehose stream with its processor, and a Glue database and table with
/// a stream converting to Parquet by it, against the emulator: create, a plan without drift, records transformed
/// by the function, new code and configuration applied (and run), a JSON record as a Parquet row, destroy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs terraform and the AWS provider in a filesystem mirror: make test-compat"]
async fn compat_terraform_lambda_function_and_transforming_stream() {
    let found = Command::new("terraform").arg("version").output().is_ok_and(|o| o.status.success());
    let Some(mirror) = terraform_mirror().filter(|_| found) else {
        eprintln!("SKIPPED: terraform or a filesystem mirror of hashicorp/aws (TF_PROVIDER_MIRROR) is missing");
        return;
    };
    let env = support::start_with(|b| b.speed(60.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/terraform/main.tf"), d.join("main.tf")).unwrap();
    let config = format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n    include = [\"registry.terraform.io/hashicorp/aws\"]\n  }}\n}}\n",
        mirror.display()
    );
    std::fs::write(d.join("cli.tfrc"), config).unwrap();
    let vars = |prefix: &str, timeout: u32| {
        [
            format!("-var=endpoint={}", env.emu.endpoint()),
            format!("-var=prefix={prefix}"),
            format!("-var=timeout={timeout}"),
        ]
    };
    let run = |args: &[&str], more: &[String; 3], code: i32| {
        let all: Vec<&str> = args.iter().copied().chain(more.iter().map(String::as_str)).collect();
        terraform(d, &all, code)
    };
    terraform(d, &["init", "-input=false", "-no-color"], 0);
    terraform_handler(d, "v1");
    run(&["apply", "-auto-approve", "-input=false", "-no-color"], &vars("a-", 30), 0);
    run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"], &vars("a-", 30), 0);
    let c = &env.clients;
    support::put_batch(c, "tf-transformed", &[b"one\n".to_vec()]).await;
    let first = support::wait_for_lines(c, "tf-transform", 1).await;
    assert_eq!(first, [b"a-v1:one\n".to_vec()]);
    // New code and new configuration: UpdateFunctionCode and UpdateFunctionConfiguration, then no drift.
    terraform_handler(d, "v2");
    let changed = run(&["apply", "-auto-approve", "-input=false", "-no-color"], &vars("b-", 45), 0);
    assert!(changed.contains("1 changed"), "{changed}");
    run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"], &vars("b-", 45), 0);
    let got = c.lambda.get_function_configuration().function_name("tf-transform").send().await.unwrap();
    assert_eq!(got.timeout(), Some(45));
    support::put_batch(c, "tf-transformed", &[b"two\n".to_vec()]).await;
    let both = support::wait_for_lines(c, "tf-transform", 2).await;
    assert!(both.contains(&b"b-v2:two\n".to_vec()), "the new code ran: {both:?}");
    // The converting stream: a JSON record becomes a Parquet row typed by the Glue table.
    support::put_batch(c, "tf-parquet", &[br#"{"host":"h","status":"404","time":"2026-12-02T10:00:00Z"}"#.to_vec()])
        .await;
    let parquet = support::eventually("the Parquet object", std::time::Duration::from_secs(60), || async {
        let o = support::objects(c, "tf-transform", "parquet/").await;
        (!o.is_empty()).then_some(o)
    })
    .await;
    assert!(parquet[0].0.ends_with(".parquet"), "{}", parquet[0].0);
    let reader = parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(parquet[0].1.clone())).unwrap();
    let meta = parquet::file::reader::FileReader::metadata(&reader);
    assert_eq!(meta.file_metadata().num_rows(), 1);
    let names: Vec<&str> = meta.file_metadata().schema_descr().columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["host", "status", "time"]);
    run(&["destroy", "-auto-approve", "-input=false", "-no-color"], &vars("b-", 45), 0);
    assert!(c.lambda.list_functions().send().await.unwrap().functions().is_empty());
    let glue = std::fs::read_to_string(env.emu.data_dir().join("glue/catalog.json")).unwrap();
    assert!(!glue.contains("tf_logs"), "the Glue database is gone: {glue}");
}
