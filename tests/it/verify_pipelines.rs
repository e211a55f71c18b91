//! verify's verdicts on the pipelines around Firehose, through the binary: a transform that stamps its output
//! (proved by counts, or per line with --match), two transforming streams sharing a bucket and its error
//! prefix, a function that raises and one that was deleted (accounted, not an abort), teardown keeping a
//! function another stream uses, and runs told apart from duplicates.

use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;

use crate::support::{self, assert_exit, cli, json_out};
use crate::transform::has;

const BUCKET: &str = "firehose-kit-000000000000-us-east-2";

/// Every line becomes a document carrying it, a fresh uuid and the time: no two calls answer alike.
const STAMP: &str = r#"import base64, json, time, uuid

def handler(event, context):
    out = []
    for r in event["records"]:
        lines = base64.b64decode(r["data"]).decode().splitlines()
        docs = "".join(json.dumps({"line": l, "uuid": str(uuid.uuid4()), "at": time.time()}) + "\n" for l in lines)
        out.append({"recordId": r["recordId"], "result": "Ok", "data": base64.b64encode(docs.encode()).decode()})
    return {"records": out}
"#;

const RAISES: &str = "def handler(event, context):\n    raise ValueError('no transformation today')\n";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// This stream's data objects (not the error output), oldest first.
async fn data_objects(c: &firehose_kit::aws::Clients, stream: &str) -> Vec<(String, Vec<u8>)> {
    let mut objects: Vec<(String, Vec<u8>)> = support::objects(c, BUCKET, "")
        .await
        .into_iter()
        .filter(|(k, _)| !k.starts_with("errors/") && k.rsplit('/').next().is_some_and(|n| n.starts_with(stream)))
        .collect();
    objects.sort();
    objects
}

/// A uuid-stamping function: verify proves the delivery by counts and says so; an object deleted makes it fail
/// with the count of documents that did not arrive; with --match on the field carrying the line, per line
/// again, naming lines that are missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stamping_transform_is_proved_by_counts_and_line_by_line_with_match() {
    if !has("python3") {
        return;
    }
    let env = support::start().await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    let handler = dir.path().join("stamp.py");
    std::fs::write(&handler, STAMP).unwrap();
    let setup = ["setup", "--stream", "Stamped", "--transform", handler.to_str().unwrap(), "--buffer-interval", "5s"];
    assert_exit(&cli(&ep, dir.path(), &setup), 0);
    // About 1.5 MB of documents: two objects (the 1 MiB hint cuts the first).
    let lines = support::log_file(dir.path(), "access.log", 5000, 7);
    assert_exit(&cli(&ep, dir.path(), &["--stream", "Stamped", "send", lines.to_str().unwrap()]), 0);
    let verified = cli(&ep, dir.path(), &["--stream", "Stamped", "verify", "-o", "json"]);
    assert_exit(&verified, 0);
    let t = &json_out(&verified)["transform"];
    assert_eq!(
        (
            t["proof"].as_str(),
            t["transformed"].as_u64(),
            t["documents_made"].as_u64(),
            t["documents_delivered"].as_u64()
        ),
        (Some("counts"), Some(5000), Some(5000), Some(5000)),
        "{t}"
    );
    let said = stdout(&cli(&ep, dir.path(), &["--stream", "Stamped", "verify", "--wait", "5s"]));
    assert!(said.contains("OK: all 5,000 sent lines accounted for") && said.contains("proved by counts"), "{said}");

    // One object goes: fewer documents than the function made, by exactly what it held.
    let objects = data_objects(&env.clients, "Stamped").await;
    assert!(objects.len() >= 2, "{:?}", objects.iter().map(|o| &o.0).collect::<Vec<_>>());
    let (gone_key, gone_body) = objects.last().unwrap().clone();
    let gone_docs: Vec<Value> = gone_body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    env.clients.s3.delete_object().bucket(BUCKET).key(&gone_key).send().await.unwrap();
    let failed = cli(&ep, dir.path(), &["--stream", "Stamped", "verify", "--wait", "2s"]);
    assert_exit(&failed, 1);
    let said = stdout(&failed);
    let count = firehose_kit::ui::format_count(gone_docs.len() as u64);
    assert!(
        said.contains(&format!(
            "FAILED: {count} of the 5,000 documents the function made of the run's lines did not arrive"
        )),
        "{said}"
    );

    // --match .line: per line, and the missing lines are named.
    let matched =
        cli(&ep, dir.path(), &["--stream", "Stamped", "verify", "--wait", "2s", "--match", ".line", "-o", "json"]);
    assert_exit(&matched, 1);
    let v = json_out(&matched);
    assert_eq!(v["transform"]["proof"].as_str(), Some("match"), "{}", v["transform"]);
    assert_eq!(v["transform"]["missing"].as_u64(), Some(gone_docs.len() as u64), "{}", v["transform"]);
    let text = stdout(&cli(&ep, dir.path(), &["--stream", "Stamped", "verify", "--wait", "2s", "--match", ".line"]));
    let gone: std::collections::HashSet<&str> = gone_docs.iter().map(|d| d["line"].as_str().unwrap()).collect();
    let named: Vec<&str> =
        text.lines().filter_map(|l| l.trim_start().strip_prefix("line ")?.split_once(": ")).map(|(_, l)| l).collect();
    assert!(
        !named.is_empty() && named.iter().all(|l| gone.contains(l)),
        "the lines named are the deleted object's:\n{text}"
    );
    // A path that is not jq is a usage error naming it.
    let bad = cli(&ep, dir.path(), &["--stream", "Stamped", "verify", "--match", "line]"]);
    assert_exit(&bad, 2);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--match `line]` is not a jq path"));
}

/// Two transforming streams on the default bucket share its `errors/` prefix: each is verified on its own
/// objects (one delivers, one's function raises: its lines are accounted as failed invocations, exit 1, not an
/// abort), `status` and `doctor` count only their own. A third stream transforms with the first one's function:
/// teardown of the first keeps it; once it is deleted, the third's run is accounted as failed invocations too.
/// Teardown of a stream takes its function's log group along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_sharing_a_bucket_and_a_function_are_each_verified_on_their_own() {
    if !has("python3") {
        return;
    }
    let env = support::start().await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    let c = &env.clients;
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/transform/apache_to_json.py");
    let raises = dir.path().join("raises.py");
    std::fs::write(&raises, RAISES).unwrap();
    let interval = ["--buffer-interval", "5s"];
    for (stream, handler) in [("Good", template), ("Raising", raises.to_str().unwrap())] {
        let mut args = vec!["--stream", stream, "setup", "--transform", handler];
        args.extend(interval);
        assert_exit(&cli(&ep, dir.path(), &args), 0);
        let lines = support::log_file(dir.path(), &format!("{stream}.log"), 200, 3);
        assert_exit(&cli(&ep, dir.path(), &["--stream", stream, "send", lines.to_str().unwrap()]), 0);
    }
    let raising = cli(&ep, dir.path(), &["--stream", "Raising", "verify", "-o", "json"]);
    assert_exit(&raising, 1);
    let t = &json_out(&raising)["transform"];
    assert_eq!((t["failed_invocations"].as_u64(), t["missing"].as_u64()), (Some(200), Some(0)), "{t}");
    assert!(t["invocation_error"].as_str().is_some_and(|e| e.contains("ValueError: no transformation today")), "{t}");
    // The raising stream's error object does not count against the good one.
    let good = cli(&ep, dir.path(), &["--stream", "Good", "verify", "-o", "json"]);
    assert_exit(&good, 0);
    let v = json_out(&good);
    assert_eq!(
        (v["transform"]["transformed"].as_u64(), v["error_objects"].as_array().map(Vec::len)),
        (Some(200), Some(0)),
        "{v}"
    );
    let status = stdout(&cli(&ep, dir.path(), &["--stream", "Good", "status"]));
    assert!(status.contains("delivered   1 object,"), "{status}");
    assert!(!status.contains("of this stream (records"), "no error objects of Good:\n{status}");
    let status = stdout(&cli(&ep, dir.path(), &["--stream", "Raising", "status"]));
    assert!(status.contains("delivered   0 objects") && status.contains("1 object of this stream"), "{status}");
    let doctor = stdout(&cli(&ep, dir.path(), &["--stream", "Good", "doctor"]));
    assert!(doctor.contains("nothing of this stream under the error prefix"), "{doctor}");

    // A third stream uses Good's function by its ARN: tearing Good down keeps the function (exit 0).
    let function = c.lambda.get_function().function_name("firehose-kit-Good-transform").send().await.unwrap();
    let arn = function.configuration().unwrap().function_arn().unwrap().to_string();
    let mut args = vec!["--stream", "Borrower", "setup", "--transform", &arn];
    args.extend(interval);
    assert_exit(&cli(&ep, dir.path(), &args), 0);
    let torn = cli(&ep, dir.path(), &["--stream", "Good", "teardown", "--yes", "-o", "json"]);
    assert_exit(&torn, 0);
    let kept: Vec<(String, String)> = json_out(&torn)["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["resource"].as_str().unwrap().to_string(), r["fate"].as_str().unwrap().to_string()))
        .collect();
    assert!(kept.contains(&("function".into(), "kept".into())), "{kept:?}");
    c.lambda.get_function().function_name(&arn).send().await.expect("the function Borrower uses is kept");

    // The function goes behind firehose-kit's back: the borrower's run is accounted as failed invocations.
    c.lambda.delete_function().function_name(&arn).send().await.unwrap();
    let lines = support::log_file(dir.path(), "borrower.log", 100, 4);
    assert_exit(&cli(&ep, dir.path(), &["--stream", "Borrower", "send", lines.to_str().unwrap()]), 0);
    let orphan = cli(&ep, dir.path(), &["--stream", "Borrower", "verify", "-o", "json"]);
    assert_exit(&orphan, 1);
    let t = &json_out(&orphan)["transform"];
    assert_eq!((t["failed_invocations"].as_u64(), t["missing"].as_u64()), (Some(100), Some(0)), "{t}");
    assert!(t["invocation_error"].as_str().is_some_and(|e| e.contains("ResourceNotFound")), "{t}");

    // Teardown of Raising removes its function and the log group Lambda made for it.
    let group = "/aws/lambda/firehose-kit-Raising-transform";
    let groups = c.logs.describe_log_groups().log_group_name_prefix(group).send().await.unwrap();
    assert_eq!(groups.log_groups().len(), 1, "the function ran, so Lambda made its log group");
    assert_exit(&cli(&ep, dir.path(), &["--stream", "Raising", "teardown", "--yes"]), 0);
    let groups = c.logs.describe_log_groups().log_group_name_prefix(group).send().await.unwrap();
    assert!(groups.log_groups().is_empty(), "{groups:?}");
}

/// A line sent by two runs is delivered once per run: not a duplicate. An object copied under a second key is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sent_twice_is_two_runs_but_a_copied_object_is_duplicated() {
    let env = support::start().await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    assert_exit(&cli(&ep, dir.path(), &["setup", "--buffer-interval", "5s"]), 0);
    let all = support::log_file(dir.path(), "all.log", 1000, 5);
    let text = std::fs::read_to_string(&all).unwrap();
    let half: String = text.lines().take(500).map(|l| format!("{l}\n")).collect();
    let half_path = dir.path().join("half.log");
    std::fs::write(&half_path, half).unwrap();
    assert_exit(&cli(&ep, dir.path(), &["send", half_path.to_str().unwrap()]), 0);
    assert_exit(&cli(&ep, dir.path(), &["send", all.to_str().unwrap()]), 0);
    let verified = cli(&ep, dir.path(), &["verify", "-o", "json"]);
    assert_exit(&verified, 0);
    let v = json_out(&verified);
    assert_eq!(
        (v["matched"].as_u64(), v["duplicated"].as_u64(), v["extra"].as_u64()),
        (Some(1000), Some(0), Some(500)),
        "the first run's 500 lines are its own copies: {v}"
    );

    let (key, body) = data_objects(&env.clients, "ApacheLogs").await.pop().unwrap();
    let lines = body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as u64;
    let copy = format!("{key}-copy");
    env.clients.s3.put_object().bucket(BUCKET).key(&copy).body(ByteStream::from(body)).send().await.unwrap();
    let again = json_out(&cli(&ep, dir.path(), &["verify", "-o", "json", "--wait", "2s"]));
    assert_eq!(again["duplicated"].as_u64(), Some(lines), "every line of the copied object: {again}");
}
