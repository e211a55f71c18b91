//! Data transformation with Lambda, end to end through the SDK clients: functions in Python, Node.js and a
//! `provided` bootstrap script run as local processes; a stream with a Lambda processor hands them its records;
//! `Ok` data is delivered, `Dropped` records vanish, `ProcessingFailed` records and failed invocations land in
//! the processing-failed error output with their original data; every failure is logged with AWS's code.

use std::io::Write;
use std::time::Duration;

use aws_sdk_firehose::types::{
    BufferingHints, CloudWatchLoggingOptions, ExtendedS3DestinationConfiguration, ProcessingConfiguration, Processor,
    ProcessorParameter, ProcessorParameterName, ProcessorType,
};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use base64::Engine;
use serde_json::Value;

use crate::support::{self, ACCOUNT, Env, eventually, lines_under, wait_lines};
use firehose_kit::aws::Clients;

const EXEC_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

pub const PYTHON_MIXED: &str = r#"import base64

def handler(event, context):
    out = []
    for r in event["records"]:
        line = base64.b64decode(r["data"]).decode()
        if "drop" in line:
            out.append({"recordId": r["recordId"], "result": "Dropped", "data": r["data"]})
        elif "fail" in line:
            out.append({"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]})
        else:
            out.append({"recordId": r["recordId"], "result": "Ok",
                        "data": base64.b64encode(line.upper().encode()).decode()})
    return {"records": out}
"#;

const NODE_MIXED: &str = r#"export const handler = async (event) => ({
  records: event.records.map((r) => {
    const line = Buffer.from(r.data, "base64").toString();
    if (line.includes("drop")) return { recordId: r.recordId, result: "Dropped", data: r.data };
    if (line.includes("fail")) return { recordId: r.recordId, result: "ProcessingFailed", data: r.data };
    return { recordId: r.recordId, result: "Ok", data: Buffer.from(line.toUpperCase()).toString("base64") };
  }),
});
"#;

/// A `provided` runtime: the bootstrap is a script that speaks the Runtime API itself.
const BOOTSTRAP: &str = r#"#!/usr/bin/env python3
import base64, json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    records = [{"recordId": x["recordId"], "result": "Ok",
                "data": base64.b64encode(b"bootstrap:" + base64.b64decode(x["data"])).decode()}
               for x in event["records"]]
    body = json.dumps({"records": records}).encode()
    urllib.request.urlopen(urllib.request.Request(api + request_id + "/response", data=body, method="POST")).read()
"#;

const PYTHON_RAISES: &str = "def handler(event, context):\n    raise ValueError('no transformation today')\n";
const PYTHON_FORGETS: &str =
    "def handler(event, context):\n    return {'records': [dict(r, result='Ok') for r in event['records'][1:]]}\n";

/// A zip of `(name, text, mode)` files.
pub fn zip_of(files: &[(&str, &str, u32)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    for (name, text, mode) in files {
        w.start_file(*name, zip::write::SimpleFileOptions::default().unix_permissions(*mode)).unwrap();
        w.write_all(text.as_bytes()).unwrap();
    }
    w.finish().unwrap();
    out.into_inner()
}

/// Skips a test when the machine lacks the interpreter a runtime needs (CI installs python3 and node).
pub fn has(program: &str) -> bool {
    let found = std::process::Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED: `{program}` is not installed; the Lambda runtime that needs it cannot run here");
    }
    found
}

/// Creates a function (with an execution role Lambda may assume) and returns its ARN.
pub async fn function(c: &Clients, name: &str, runtime: Runtime, handler: &str, zip: Vec<u8>, timeout: i32) -> String {
    let role = c
        .iam
        .create_role()
        .role_name(format!("{name}-exec"))
        .assume_role_policy_document(EXEC_TRUST)
        .send()
        .await
        .unwrap();
    let out = c
        .lambda
        .create_function()
        .function_name(name)
        .runtime(runtime)
        .role(role.role().unwrap().arn())
        .handler(handler)
        .timeout(timeout)
        .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
        .send()
        .await
        .unwrap();
    out.function_arn().unwrap().to_string()
}

/// What a transforming stream needs besides its function.
struct Stream<'a> {
    name: &'a str,
    bucket: &'a str,
    function_arn: &'a str,
    retries: u32,
    /// Whether the delivery role may invoke the function.
    may_invoke: bool,
}

fn log_group(stream: &str) -> String {
    format!("/aws/kinesisfirehose/{stream}")
}

/// The delivery role's grant to invoke the function, as setup writes it.
pub fn invoke_policy(function_arn: &str) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"],
        "Resource": [function_arn, format!("{function_arn}:*")]}]})
    .to_string()
}

/// A stream with a Lambda processor, error logging and an error output prefix; waits until it is ACTIVE.
async fn transforming_stream(c: &Clients, s: &Stream<'_>) {
    let group = log_group(s.name);
    c.logs.create_log_group().log_group_name(&group).send().await.unwrap();
    c.logs.create_log_stream().log_group_name(&group).log_stream_name("DestinationDelivery").send().await.unwrap();
    let role = format!("{}-delivery", s.name);
    let (bucket_arn, role_arn) = support::bucket_and_role(c, s.bucket, &role).await;
    let log_arn =
        format!("arn:aws:logs:{}:{ACCOUNT}:log-group:{group}:log-stream:DestinationDelivery", support::REGION);
    let delivery = firehose_kit::aws::policy::delivery_policy("aws", s.bucket, Some(&log_arn)).to_string();
    let put = |name: &str, doc: String| {
        c.iam.put_role_policy().role_name(&role).policy_name(name).policy_document(doc).send()
    };
    put(firehose_kit::aws::policy::DELIVERY_POLICY_NAME, delivery).await.unwrap();
    if s.may_invoke {
        put("invoke", invoke_policy(s.function_arn)).await.unwrap();
    }
    let param = |name: ProcessorParameterName, value: String| {
        ProcessorParameter::builder().parameter_name(name).parameter_value(value).build().unwrap()
    };
    let processor = Processor::builder()
        .r#type(ProcessorType::Lambda)
        .parameters(param(ProcessorParameterName::LambdaArn, s.function_arn.to_string()))
        .parameters(param(ProcessorParameterName::LambdaNumberOfRetries, s.retries.to_string()))
        .build()
        .unwrap();
    let dest = ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(bucket_arn)
        .role_arn(role_arn)
        .prefix("data/")
        .error_output_prefix("errors/!{firehose:error-output-type}/")
        .buffering_hints(BufferingHints::builder().size_in_mbs(1).interval_in_seconds(60).build())
        .processing_configuration(ProcessingConfiguration::builder().enabled(true).processors(processor).build())
        .cloud_watch_logging_options(
            CloudWatchLoggingOptions::builder()
                .enabled(true)
                .log_group_name(&group)
                .log_stream_name("DestinationDelivery")
                .build(),
        )
        .build()
        .unwrap();
    c.firehose
        .create_delivery_stream()
        .delivery_stream_name(s.name)
        .extended_s3_destination_configuration(dest)
        .send()
        .await
        .unwrap();
    support::wait_active(c, s.name).await;
}

/// The emulator at 60× speed: the processor's and the destination's 60 s intervals pass in a second.
async fn start() -> Env {
    support::start_with(|b| b.speed(60.0).create_delay(Duration::ZERO)).await
}

/// The lines of every object under `prefix`.
/// Error events with `code` in the stream's error log.
async fn logged(c: &Clients, stream: &str, code: &str) -> Vec<Value> {
    let out = c.logs.filter_log_events().log_group_name(log_group(stream)).send().await.unwrap();
    out.events()
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e.message()?).ok())
        .filter(|e| e["errorCode"] == code)
        .collect()
}

fn mixed_records() -> Vec<Vec<u8>> {
    (0..30)
        .map(|i| match i % 3 {
            0 => format!("line {i} ok\n"),
            1 => format!("line {i} drop\n"),
            _ => format!("line {i} fail\n"),
        })
        .map(String::into_bytes)
        .collect()
}

/// Ten uppercase lines delivered, ten dropped, ten in the processing-failed output with their original data.
async fn assert_mixed(c: &Clients, stream: &str, bucket: &str) {
    let delivered = wait_lines(c, bucket, "data/", 10).await;
    assert_eq!(delivered.len(), 10, "{delivered:?}");
    assert!(delivered.iter().all(|l| l.starts_with("LINE ") && l.ends_with(" OK")), "{delivered:?}");
    let failed = wait_lines(c, bucket, "errors/processing-failed/", 10).await;
    assert_eq!(failed.len(), 10, "{failed:?}");
    for doc in &failed {
        let doc: Value = serde_json::from_str(doc).unwrap();
        let raw = base64::engine::general_purpose::STANDARD.decode(doc["rawData"].as_str().unwrap()).unwrap();
        assert!(String::from_utf8(raw).unwrap().ends_with(" fail\n"), "{doc}");
        assert_eq!(
            (doc["errorCode"].as_str(), doc["attemptsMade"].as_u64()),
            (Some("Lambda.ProcessingFailedStatus"), Some(1))
        );
    }
    eventually("ProcessingFailedStatus logged", Duration::from_secs(10), || async {
        (!logged(c, stream, "Lambda.ProcessingFailedStatus").await.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_python_handler_transforms_drops_and_fails_records() {
    if !has("python3") {
        return;
    }
    let env = start().await;
    let zip = zip_of(&[("handler.py", PYTHON_MIXED, 0o644)]);
    let arn = function(&env.clients, "py-mixed", Runtime::Python312, "handler.handler", zip, 10).await;
    let s = Stream { name: "PyMixed", bucket: "py-mixed", function_arn: &arn, retries: 3, may_invoke: true };
    transforming_stream(&env.clients, &s).await;
    support::put_batch(&env.clients, "PyMixed", &mixed_records()).await;
    assert_mixed(&env.clients, "PyMixed", "py-mixed").await;
}

#[tokio::test]
async fn a_node_handler_transforms_drops_and_fails_records() {
    if !has("node") {
        return;
    }
    let env = start().await;
    let zip = zip_of(&[("index.mjs", NODE_MIXED, 0o644)]);
    let arn = function(&env.clients, "node-mixed", Runtime::Nodejs20x, "index.handler", zip, 10).await;
    let s = Stream { name: "NodeMixed", bucket: "node-mixed", function_arn: &arn, retries: 3, may_invoke: true };
    transforming_stream(&env.clients, &s).await;
    support::put_batch(&env.clients, "NodeMixed", &mixed_records()).await;
    assert_mixed(&env.clients, "NodeMixed", "node-mixed").await;
}

#[tokio::test]
async fn a_provided_bootstrap_script_serves_the_runtime_api_itself() {
    if !has("python3") {
        return;
    }
    let env = start().await;
    let zip = zip_of(&[("bootstrap", BOOTSTRAP, 0o755)]);
    let arn = function(&env.clients, "boot", Runtime::Providedal2023, "unused", zip, 10).await;
    let s = Stream { name: "Boot", bucket: "boot", function_arn: &arn, retries: 3, may_invoke: true };
    transforming_stream(&env.clients, &s).await;
    support::put_batch(&env.clients, "Boot", &[b"a\n".to_vec(), b"b\n".to_vec()]).await;
    let lines = wait_lines(&env.clients, "boot", "data/", 2).await;
    assert_eq!(lines, vec!["bootstrap:a", "bootstrap:b"]);
}

/// A handler that raises: the invocation is retried NumberOfRetries times, then every record of the batch is
/// in the error output with Lambda.FunctionError and attemptsMade = NumberOfRetries + 1.
#[tokio::test]
async fn a_raising_handler_is_retried_then_its_records_are_processing_failed() {
    if !has("python3") {
        return;
    }
    let env = start().await;
    let zip = zip_of(&[("handler.py", PYTHON_RAISES, 0o644)]);
    let arn = function(&env.clients, "raises", Runtime::Python312, "handler.handler", zip, 10).await;
    let s = Stream { name: "Raises", bucket: "raises", function_arn: &arn, retries: 2, may_invoke: true };
    transforming_stream(&env.clients, &s).await;
    support::put_batch(&env.clients, "Raises", &[b"x\n".to_vec(), b"y\n".to_vec()]).await;
    let failed = wait_lines(&env.clients, "raises", "errors/processing-failed/", 2).await;
    for doc in failed {
        let doc: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!((doc["errorCode"].as_str(), doc["attemptsMade"].as_u64()), (Some("Lambda.FunctionError"), Some(3)));
    }
    assert_eq!(logged(&env.clients, "Raises", "Lambda.FunctionError").await.len(), 3, "one event per attempt");
    assert!(lines_under(&env.clients, "raises", "data/").await.is_empty());
}

#[tokio::test]
async fn an_answer_missing_a_record_id_fails_the_batch_with_aws_code() {
    if !has("python3") {
        return;
    }
    let env = start().await;
    let zip = zip_of(&[("handler.py", PYTHON_FORGETS, 0o644)]);
    let arn = function(&env.clients, "forgets", Runtime::Python312, "handler.handler", zip, 10).await;
    let s = Stream { name: "Forgets", bucket: "forgets", function_arn: &arn, retries: 3, may_invoke: true };
    transforming_stream(&env.clients, &s).await;
    support::put_batch(&env.clients, "Forgets", &[b"x\n".to_vec(), b"y\n".to_vec()]).await;
    let failed = wait_lines(&env.clients, "forgets", "errors/processing-failed/", 2).await;
    let doc: Value = serde_json::from_str(&failed[0]).unwrap();
    assert_eq!(doc["errorCode"], "Lambda.MissingRecordId", "{doc}");
    assert_eq!(doc["attemptsMade"], 1, "a malformed answer is not retried");
    assert_eq!(logged(&env.clients, "Forgets", "Lambda.MissingRecordId").await.len(), 1);
}

#[tokio::test]
async fn a_function_past_its_timeout_is_stopped_and_reported() {
    if !has("python3") {
        return;
    }
    let env = start().await;
    // The handler starts a process of its own before it hangs: the timeout stops that one too.
    let pid_file = tempfile::NamedTempFile::new().unwrap();
    let code = format!(
        "import subprocess, time\n\ndef handler(event, context):\n    p = subprocess.Popen(['sleep', '300'])\n    open({:?}, 'w').write(str(p.pid))\n    time.sleep(30)\n",
        pid_file.path().display().to_string()
    );
    let zip = zip_of(&[("handler.py", &code, 0o644)]);
    let arn = function(&env.clients, "slow", Runtime::Python312, "handler.handler", zip, 1).await;
    // Invoke directly: the answer is Lambda's, a function error with Sandbox.Timedout.
    let out = env.clients.lambda.invoke().function_name("slow").payload(Blob::new("{}")).send().await.unwrap();
    assert_eq!(out.function_error(), Some("Unhandled"));
    let body: Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    assert_eq!(body["errorType"], "Sandbox.Timedout", "{body}");
    assert!(body["errorMessage"].as_str().unwrap().contains("Task timed out after 1.00 seconds"), "{body}");
    let child = std::fs::read_to_string(pid_file.path()).unwrap();
    eventually("the function's own process stopped", Duration::from_secs(10), || async {
        (!std::path::Path::new(&format!("/proc/{}", child.trim())).exists()).then_some(())
    })
    .await;
    let s = Stream { name: "Slow", bucket: "slow", function_arn: &arn, retries: 0, may_invoke: true };
    transforming_stream(&env.clients, &s).await;
    support::put_batch(&env.clients, "Slow", &[b"x\n".to_vec()]).await;
    let failed = wait_lines(&env.clients, "slow", "errors/processing-failed/", 1).await;
    assert!(failed[0].contains("Lambda.FunctionError"), "{}", failed[0]);
}

/// An answer larger than Lambda's 6 MB is refused while it streams in (the function's process answering it is not
/// read to its end), as Lambda refuses it: `Function.ResponseSizeTooLarge`; the sandbox serves the next call.
#[tokio::test]
async fn an_answer_past_six_megabytes_is_refused_with_lambdas_error() {
    if !has("python3") {
        return;
    }
    let env = start().await;
    let code = "def handler(event, context):\n    return 'x' * event['n']\n";
    function(&env.clients, "big", Runtime::Python312, "handler.handler", zip_of(&[("handler.py", code, 0o644)]), 10)
        .await;
    let invoke = |n: usize| {
        env.clients.lambda.invoke().function_name("big").payload(Blob::new(format!(r#"{{"n":{n}}}"#))).send()
    };
    let out = invoke(7_000_000).await.unwrap();
    assert_eq!(out.function_error(), Some("Unhandled"));
    let body: Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    assert_eq!(body["errorType"], "Function.ResponseSizeTooLarge", "{body}");
    let ok = invoke(1000).await.unwrap();
    let said = String::from_utf8_lossy(ok.payload().unwrap().as_ref()).to_string();
    assert_eq!((ok.function_error(), said.len()), (None, 1002), "the next call is served: {said}");
}

/// A delivery role without lambda:InvokeFunction: Lambda.InvokeAccessDenied is logged on every attempt; once the
/// grant is restored, the retained records are transformed and delivered.
#[tokio::test]
async fn a_role_that_may_not_invoke_is_denied_then_repaired() {
    if !has("python3") {
        return;
    }
    let env = start().await;
    let zip = zip_of(&[("handler.py", PYTHON_MIXED, 0o644)]);
    let arn = function(&env.clients, "denied", Runtime::Python312, "handler.handler", zip, 10).await;
    let s = Stream { name: "Denied", bucket: "denied", function_arn: &arn, retries: 300, may_invoke: false };
    transforming_stream(&env.clients, &s).await;
    support::put_batch(&env.clients, "Denied", &[b"x ok\n".to_vec(), b"y ok\n".to_vec()]).await;
    let events = eventually("InvokeAccessDenied logged", Duration::from_secs(30), || async {
        let e = logged(&env.clients, "Denied", "Lambda.InvokeAccessDenied").await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(events[0]["processor"].as_str(), Some(format!("{arn}:$LATEST").as_str()), "{}", events[0]);
    assert!(lines_under(&env.clients, "denied", "data/").await.is_empty());
    env.clients
        .iam
        .put_role_policy()
        .role_name("Denied-delivery")
        .policy_name("invoke")
        .policy_document(invoke_policy(&arn))
        .send()
        .await
        .unwrap();
    let lines = wait_lines(&env.clients, "denied", "data/", 2).await;
    assert_eq!(lines, vec!["X OK", "Y OK"]);
    assert!(lines_under(&env.clients, "denied", "errors/").await.is_empty(), "nothing failed once repaired");
}

/// The Lambda API as the SDK sees it: create, read, update, invoke (result, function error, dry run), list,
/// delete, and the errors of each.
#[tokio::test]
async fn the_lambda_api_creates_invokes_updates_and_deletes_functions() {
    if !has("python3") {
        return;
    }
    let env = start().await;
    let l = &env.clients.lambda;
    let zip = zip_of(&[("handler.py", "def handler(event, context):\n    return {'got': event}\n", 0o644)]);
    let arn = function(&env.clients, "api", Runtime::Python312, "handler.handler", zip.clone(), 5).await;
    assert_eq!(arn, format!("arn:aws:lambda:{}:{ACCOUNT}:function:api", support::REGION));
    let got = l.get_function().function_name("api").send().await.unwrap();
    let config = got.configuration().unwrap();
    assert_eq!(config.state().map(|s| s.as_str()), Some("Active"));
    let sha = base64::engine::general_purpose::STANDARD.encode(firehose_kit::util::hash::sha256(&zip));
    assert_eq!(config.code_sha256(), Some(sha.as_str()), "base64 of the zip's SHA-256");
    let location = got.code().and_then(|c| c.location()).expect("GetFunction names where the code is");
    assert_eq!(download(location), zip, "Code.Location serves the zip, unsigned, as a presigned URL does");
    let out = l.invoke().function_name("api").payload(Blob::new(r#"{"a":1}"#)).send().await.unwrap();
    assert_eq!(out.status_code(), 200);
    assert_eq!(out.function_error(), None, "{:?}", out.payload());
    assert_eq!(
        serde_json::from_slice::<Value>(out.payload().unwrap().as_ref()).unwrap(),
        serde_json::json!({"got": {"a": 1}})
    );
    let dry = l
        .invoke()
        .function_name(&arn)
        .invocation_type(aws_sdk_lambda::types::InvocationType::DryRun)
        .send()
        .await
        .unwrap();
    assert_eq!(dry.status_code(), 204);
    let again = l
        .create_function()
        .function_name("api")
        .runtime(Runtime::Python312)
        .role(config.role().unwrap())
        .handler("handler.handler")
        .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
        .send()
        .await
        .unwrap_err();
    assert!(again.as_service_error().unwrap().is_resource_conflict_exception(), "{again:?}");
    let raising = zip_of(&[("handler.py", PYTHON_RAISES, 0o644)]);
    l.update_function_code().function_name("api").zip_file(Blob::new(raising)).send().await.unwrap();
    let failed = l.invoke().function_name("api").payload(Blob::new("{}")).send().await.unwrap();
    assert_eq!(failed.function_error(), Some("Unhandled"), "the new code runs (the warm sandbox was retired)");
    let body: Value = serde_json::from_slice(failed.payload().unwrap().as_ref()).unwrap();
    assert_eq!(
        (body["errorType"].as_str(), body["errorMessage"].as_str()),
        (Some("ValueError"), Some("no transformation today"))
    );
    l.update_function_configuration().function_name("api").timeout(9).send().await.unwrap();
    let listed = l.list_functions().send().await.unwrap();
    assert_eq!(listed.functions().iter().map(|f| f.timeout()).collect::<Vec<_>>(), vec![Some(9)]);
    l.delete_function().function_name("api").send().await.unwrap();
    let gone = l.get_function().function_name("api").send().await.unwrap_err();
    assert!(gone.as_service_error().unwrap().is_resource_not_found_exception(), "{gone:?}");
}

/// The body of an unsigned `GET url` (HTTP/1.0, so the answer ends when the connection closes).
fn download(url: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nhost: {host}\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block") + 4;
    assert!(
        answer.starts_with(b"HTTP/1.0 200") || answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..split])
    );
    answer.split_off(split)
}

/// The first invocation says it started (a file appears) and then hangs; later ones transform at once.
const PYTHON_HANGS_ONCE: &str = r#"import base64, os, time

def handler(event, context):
    marker = os.environ["MARKER"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(600)
    return {"records": [{"recordId": r["recordId"], "result": "Ok",
                         "data": base64.b64encode(b"T:" + base64.b64decode(r["data"])).decode()} for r in event["records"]]}
"#;

/// SIGKILL of the emulator while the function holds a buffer: after the restart the buffer is transformed again
/// (at least once, as on AWS) and every acknowledged line arrives, transformed, exactly once here (the first
/// invocation never answered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_transformation_loses_no_acknowledged_line() {
    use crate::crash::{emulator, free_port, kill};
    if !has("python3") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let (dir, log) = (data.path().join("data"), data.path().join("emulator.log"));
    let marker = data.path().join("invoked");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut emu = emulator(&dir, &addr, &["--speed", "60"], &log);
    let c = support::clients_for(&format!("http://{addr}")).await;
    let zip = zip_of(&[("handler.py", PYTHON_HANGS_ONCE, 0o644)]);
    let arn = function(&c, "hangs", Runtime::Python312, "handler.handler", zip, 900).await;
    let env_vars =
        aws_sdk_lambda::types::Environment::builder().variables("MARKER", marker.display().to_string()).build();
    c.lambda.update_function_configuration().function_name("hangs").environment(env_vars).send().await.unwrap();
    let s = Stream { name: "Hangs", bucket: "hangs", function_arn: &arn, retries: 0, may_invoke: true };
    transforming_stream(&c, &s).await;
    let sent: Vec<Vec<u8>> = (0..1000).map(|i| format!("line {i:04}\n").into_bytes()).collect();
    for chunk in sent.chunks(500) {
        assert_eq!(support::put_batch(&c, "Hangs", chunk).await.failed_put_count(), 0);
    }
    eventually("the function invoked", Duration::from_secs(30), || async { marker.exists().then_some(()) }).await;
    kill(&mut emu);
    let runtime = dir.join("lambda/runtimes/python_runtime.py").display().to_string();
    eventually("the hung function's process ended with the emulator", Duration::from_secs(10), || async {
        (!running(&runtime)).then_some(())
    })
    .await;
    let _emu = emulator(&dir, &addr, &["--speed", "60"], &log);
    let c = support::clients_for(&format!("http://{addr}")).await;
    let mut delivered = wait_lines(&c, "hangs", "data/", sent.len()).await;
    delivered.sort();
    let want: Vec<String> = sent.iter().map(|l| format!("T:{}", String::from_utf8_lossy(l).trim_end())).collect();
    assert_eq!(delivered, want, "every acknowledged line, transformed, once");
    assert!(lines_under(&c, "hangs", "errors/").await.is_empty());
}

/// Whether a process whose command line names `arg` is running (Linux: read from /proc).
fn running(arg: &str) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else { return false };
    procs.flatten().any(|p| {
        std::fs::read(p.path().join("cmdline")).is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
    })
}

/// Apache lines from the generator, then lines the blueprint cannot parse.
fn apache_file(dir: &std::path::Path, name: &str, lines: u64, seed: u64, bad: usize) -> std::path::PathBuf {
    let path = support::log_file(dir, name, lines, seed);
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    for i in 0..bad {
        writeln!(file, "not an access log line {i}").unwrap();
    }
    path
}

/// The whole path through the binary: setup deploys the Apache → JSON blueprint (re-run: unchanged), send and
/// verify account for every line (JSON delivered, unparseable lines processing-failed); the delivery role
/// losing its invoke grant is logged, failed by verify and named by doctor, setup restores it and the waiting
/// lines arrive; teardown removes the function and its role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_transform_deploys_the_blueprint_and_verify_accounts_for_every_line() {
    use crate::support::{assert_exit, cli, json_out};
    if !has("python3") {
        return;
    }
    let env = start().await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    let handler = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/transform/apache_to_json.py");
    let setup = ["setup", "--transform", handler, "-o", "json"];
    let created = cli(&ep, dir.path(), &setup);
    assert_exit(&created, 0);
    let want: Vec<(String, String)> = ["bucket", "role", "exec role", "function", "log group", "stream"]
        .iter()
        .map(|r| (r.to_string(), "create".into()))
        .collect();
    assert_eq!(crate::provision::actions(&json_out(&created)), want);
    let again = json_out(&cli(&ep, dir.path(), &setup));
    assert!(crate::provision::actions(&again).iter().all(|(_, a)| a == "unchanged"), "{again}");

    // One line per record: each unparseable line fails alone (packed, it fails the record holding it).
    let first = apache_file(dir.path(), "first.log", 300, 1, 2);
    assert_exit(&cli(&ep, dir.path(), &["send", "--one-line-per-record", first.to_str().unwrap()]), 0);
    let verified = cli(&ep, dir.path(), &["verify", "-o", "json", "--report", "run.html"]);
    assert_exit(&verified, 0);
    let page = std::fs::read_to_string(dir.path().join("run.html")).unwrap();
    let table = &page[page.find("<table id=\"transform\">").expect("the report's transformation table")..];
    let cells: Vec<&str> = table.split("data-n=\"").skip(1).take(6).map(|c| &c[..c.find('"').unwrap()]).collect();
    assert_eq!(
        cells,
        ["302", "300", "0", "2", "0", "0"],
        "sent, transformed, dropped, failed, failed invocations, missing"
    );
    let status = cli(&ep, dir.path(), &["status"]);
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(
        said.contains("transform   records transformed by arn:aws:lambda:")
            && said.contains("python3.12 apache_to_json.handler"),
        "{said}"
    );
    let t = &json_out(&verified)["transform"];
    assert_eq!(
        (t["lines"].as_u64(), t["transformed"].as_u64(), t["processing_failed"].as_u64()),
        (Some(302), Some(300), Some(2)),
        "{t}"
    );
    let docs = lines_under(&env.clients, "firehose-kit-000000000000-us-east-2", "2").await;
    let doc: Value = serde_json::from_str(&docs[0]).expect("the delivered lines are JSON documents");
    assert!(doc["verb"].is_string() && doc["response"].is_u64(), "{doc}");

    // The grant goes: the records wait, verify fails and says why, doctor names the missing permission.
    let role = "firehose-kit-ApacheLogs-delivery";
    let policy = firehose_kit::aws::policy::TRANSFORM_POLICY_NAME;
    env.clients.iam.delete_role_policy().role_name(role).policy_name(policy).send().await.unwrap();
    let second = apache_file(dir.path(), "second.log", 100, 2, 0);
    assert_exit(&cli(&ep, dir.path(), &["send", second.to_str().unwrap()]), 0);
    eventually("InvokeAccessDenied logged", Duration::from_secs(20), || async {
        (!logged(&env.clients, "ApacheLogs", "Lambda.InvokeAccessDenied").await.is_empty()).then_some(())
    })
    .await;
    // After NumberOfRetries (3) the records go to the processing-failed output with the code, as on AWS.
    let bucket = "firehose-kit-000000000000-us-east-2";
    // (The 100 lines went packed in one record: one processing-failed document beside the first run's two.)
    wait_lines(&env.clients, bucket, "errors/processing-failed/", 3).await;
    let failed = cli(&ep, dir.path(), &["verify", "--wait", "2s"]);
    assert_exit(&failed, 1);
    let said = String::from_utf8_lossy(&failed.stdout);
    assert!(
        said.contains("FAILED: 100 of 100 sent lines in the processing-failed output because invocations failed")
            && said.contains("Lambda.InvokeAccessDenied"),
        "{said}"
    );
    let doctor = cli(&ep, dir.path(), &["doctor"]);
    assert_exit(&doctor, 1);
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(said.contains("may not lambda:InvokeFunction"), "{said}");
    // setup restores the grant (the stream keeps its function without --transform); new lines arrive.
    let repaired = json_out(&cli(&ep, dir.path(), &["setup", "-o", "json"]));
    assert!(crate::provision::actions(&repaired).contains(&("role".into(), "update".into())), "{repaired}");
    // The template is tagged as taking records of several lines: send packs them, and a record holding an
    // unparseable line goes to the processing-failed output with all its lines, each accounted.
    let third = apache_file(dir.path(), "third.log", 50, 3, 1);
    let sent = cli(&ep, dir.path(), &["send", third.to_str().unwrap()]);
    assert_exit(&sent, 0);
    let said = format!("{}{}", String::from_utf8_lossy(&sent.stderr), String::from_utf8_lossy(&sent.stdout));
    assert!(said.contains("packing lines into records") && said.contains("  1 record (lines packed"), "{said}");
    let verified = cli(&ep, dir.path(), &["verify", "-o", "json"]);
    assert_exit(&verified, 0);
    let t = &json_out(&verified)["transform"];
    assert_eq!((t["processing_failed"].as_u64(), t["missing"].as_u64()), (Some(51), Some(0)), "{t}");

    let gone = cli(&ep, dir.path(), &["teardown", "--yes", "-o", "json"]);
    assert_exit(&gone, 0);
    assert!(env.clients.lambda.list_functions().send().await.unwrap().functions().is_empty());
    assert!(env.clients.iam.list_roles().send().await.unwrap().roles().is_empty());
}

/// A Lambda processor added to a running stream by `setup --transform` (UpdateDestination) is applied to what
/// is sent from then on; removing one is refused plainly (the emulator does not model it), never ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_added_by_update_is_applied_and_removing_it_is_refused() {
    use crate::support::{assert_exit, cli};
    if !has("python3") {
        return;
    }
    let env = start().await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    assert_exit(&cli(&ep, dir.path(), &["setup"]), 0);
    let plain = support::log_file(dir.path(), "plain.log", 50, 1);
    assert_exit(&cli(&ep, dir.path(), &["send", plain.to_str().unwrap()]), 0);
    assert_exit(&cli(&ep, dir.path(), &["verify"]), 0);
    let handler = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/transform/apache_to_json.py");
    assert_exit(&cli(&ep, dir.path(), &["setup", "--transform", handler]), 0);
    let later = support::log_file(dir.path(), "later.log", 50, 2);
    assert_exit(&cli(&ep, dir.path(), &["send", later.to_str().unwrap()]), 0);
    let verified = cli(&ep, dir.path(), &["verify", "-o", "json"]);
    assert_exit(&verified, 0);
    assert_eq!(crate::support::json_out(&verified)["transform"]["transformed"].as_u64(), Some(50));

    let c = &env.clients;
    let d = c.firehose.describe_delivery_stream().delivery_stream_name("ApacheLogs").send().await.unwrap();
    let d = d.delivery_stream_description().unwrap();
    let off = aws_sdk_firehose::types::ExtendedS3DestinationUpdate::builder()
        .processing_configuration(ProcessingConfiguration::builder().enabled(false).build())
        .build();
    let refused = c
        .firehose
        .update_destination()
        .delivery_stream_name("ApacheLogs")
        .current_delivery_stream_version_id(d.version_id())
        .destination_id(d.destinations()[0].destination_id())
        .extended_s3_destination_update(off)
        .send()
        .await
        .unwrap_err();
    let message = refused.as_service_error().and_then(|e| e.meta().message()).unwrap_or_default().to_string();
    assert!(message.contains("not modelled by the firehose-kit emulator"), "{refused:?}");
}

/// The Apache → JSON templates in Python and JavaScript answer the same event with the same records: the same
/// documents for the lines they parse, ProcessingFailed with the original data for the ones they do not.
#[tokio::test]
async fn the_python_and_javascript_templates_answer_alike() {
    if !has("python3") || !has("node") {
        return;
    }
    let env = start().await;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/transform/");
    let read = |f: &str| std::fs::read_to_string(format!("{root}{f}")).unwrap();
    let py = zip_of(&[("apache_to_json.py", &read("apache_to_json.py"), 0o644)]);
    let js = zip_of(&[("apache_to_json.mjs", &read("apache_to_json.mjs"), 0o644)]);
    function(&env.clients, "tpl-py", Runtime::Python312, "apache_to_json.handler", py, 10).await;
    function(&env.clients, "tpl-js", Runtime::Nodejs20x, "apache_to_json.handler", js, 10).await;
    let dir = tempfile::tempdir().unwrap();
    let mut lines = std::fs::read(support::log_file(dir.path(), "t.log", 200, 4)).unwrap();
    lines.extend_from_slice(b"not an access log line\n");
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let records: Vec<Value> = lines
        .split_inclusive(|b| *b == b'\n')
        .enumerate()
        .map(|(i, l)| serde_json::json!({"recordId": i.to_string(), "approximateArrivalTimestamp": 0, "data": b64(l)}))
        .collect();
    let event = serde_json::json!({"invocationId": "x", "deliveryStreamArn": "arn", "region": support::REGION, "records": records});
    let mut answers = Vec::new();
    for name in ["tpl-py", "tpl-js"] {
        let out =
            env.clients.lambda.invoke().function_name(name).payload(Blob::new(event.to_string())).send().await.unwrap();
        assert_eq!(out.function_error(), None, "{name}: {:?}", out.payload());
        answers.push(serde_json::from_slice::<Value>(out.payload().unwrap().as_ref()).unwrap());
    }
    assert_eq!(answers[0], answers[1], "the two templates answer alike");
    let results: Vec<&str> =
        answers[0]["records"].as_array().unwrap().iter().map(|r| r["result"].as_str().unwrap()).collect();
    assert_eq!(
        (results.iter().filter(|r| **r == "Ok").count(), results.last().copied()),
        (200, Some("ProcessingFailed"))
    );
}

/// IAM propagation on the update path: the function's execution role is deleted and setup re-creates it while the
/// handler changed, so UpdateFunctionConfiguration names a role Lambda cannot assume yet; setup retries until it
/// can, as it does for CreateFunction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_waits_for_a_recreated_execution_role_when_it_updates_the_function() {
    use crate::support::{assert_exit, cli, json_out};
    if !has("python3") {
        return;
    }
    let env = support::start_with(|b| b.iam_propagation_delay(Duration::from_secs(2))).await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    let handler = dir.path().join("shape.py");
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/transform/apache_to_json.py");
    std::fs::copy(template, &handler).unwrap();
    let args = ["--stream", "Shape", "setup", "--transform", handler.to_str().unwrap(), "-o", "json"];
    assert_exit(&cli(&ep, dir.path(), &args), 0);
    let exec = "firehose-kit-Shape-transform";
    let iam = &env.clients.iam;
    for name in iam.list_role_policies().role_name(exec).send().await.unwrap().policy_names() {
        iam.delete_role_policy().role_name(exec).policy_name(name).send().await.unwrap();
    }
    iam.delete_role().role_name(exec).send().await.unwrap();
    let mut code = std::fs::read_to_string(&handler).unwrap();
    code.push_str("\n# changed\n");
    std::fs::write(&handler, code).unwrap();
    let repaired = cli(&ep, dir.path(), &args);
    assert_exit(&repaired, 0);
    let actions = crate::provision::actions(&json_out(&repaired));
    assert!(actions.contains(&("exec role".into(), "create".into())), "{actions:?}");
    assert!(actions.contains(&("function".into(), "update".into())), "{actions:?}");
}
