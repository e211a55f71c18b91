//! "Why is my data not in S3?": delivery failures the emulator models (a role without s3:PutObject, a deleted
//! bucket, data dropped after the retry horizon, injected faults), the error events it logs to CloudWatch Logs
//! as Firehose does, and how `verify`, `status` and `doctor` explain them. Every step goes through the binary or
//! the real SDK clients.

use std::path::Path;
use std::time::Duration;

use firehose_kit::aws::policy;
use serde_json::Value;

use crate::support::{self, ACCOUNT, Env, assert_exit, cli, json_out, start, start_with};

const BUCKET: &str = "firehose-kit-000000000000-us-east-2";
const ROLE: &str = "firehose-kit-ApacheLogs-delivery";
const LOG_GROUP: &str = "/aws/kinesisfirehose/ApacheLogs";
const LOG_STREAM_ARN: &str =
    "arn:aws:logs:us-east-2:000000000000:log-group:/aws/kinesisfirehose/ApacheLogs:log-stream:DestinationDelivery";

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `generate` writes `n` lines to `name` in `dir` (seeded, so two files with different seeds differ).
fn lines_file(dir: &Path, name: &str, n: u64, seed: u64) -> String {
    let out = support::cli_plain(dir, &["generate", "--lines", &n.to_string(), "--seed", &seed.to_string()]);
    assert_exit(&out, 0);
    std::fs::write(dir.join(name), &out.stdout).unwrap();
    name.to_string()
}

/// Setup's delivery policy with `s3:PutObject` taken out (what a user breaking the role with the CLI does).
async fn strip_put_object(env: &Env) {
    let mut doc = policy::delivery_policy("aws", BUCKET, Some(LOG_STREAM_ARN));
    let actions: Vec<Value> =
        doc["Statement"][0]["Action"].as_array().unwrap().iter().filter(|a| *a != "s3:PutObject").cloned().collect();
    doc["Statement"][0]["Action"] = Value::Array(actions);
    env.clients
        .iam
        .put_role_policy()
        .role_name(ROLE)
        .policy_name(policy::DELIVERY_POLICY_NAME)
        .policy_document(doc.to_string())
        .send()
        .await
        .unwrap();
}

/// Error events in the stream's error log with `code`.
async fn logged(env: &Env, code: &str) -> Vec<Value> {
    let out = env
        .clients
        .logs
        .filter_log_events()
        .log_group_name(LOG_GROUP)
        .filter_pattern(format!("{{ $.errorCode = \"{code}\" }}"))
        .send()
        .await
        .unwrap();
    out.events().iter().map(|e| serde_json::from_str(e.message().unwrap()).unwrap()).collect()
}

async fn wait_logged(env: &Env, code: &str) -> Vec<Value> {
    support::eventually(&format!("{code} logged"), Duration::from_secs(30), || async {
        let events = logged(env, code).await;
        (!events.is_empty()).then_some(events)
    })
    .await
}

/// (a) A role stripped of s3:PutObject: nothing arrives, the error is logged, verify names the error and the
/// missing action, setup repairs the role, and every retained line then arrives once.
#[tokio::test]
async fn a_role_without_put_object_is_explained_and_repaired_by_setup() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let ep = env.emu.endpoint();
    assert_exit(&cli(ep, dir.path(), &["setup", "--buffer-interval", "1"]), 0);
    strip_put_object(&env).await;
    let file = lines_file(dir.path(), "access.log", 20_000, 1);
    assert_exit(&cli(ep, dir.path(), &["send", &file]), 0);
    let events = wait_logged(&env, "S3.AccessDenied").await;
    assert_eq!(
        events[0]["deliveryStreamARN"],
        format!("arn:aws:firehose:us-east-2:{ACCOUNT}:deliverystream/ApacheLogs")
    );
    assert_eq!(events[0]["destination"], format!("arn:aws:s3:::{BUCKET}"));
    assert_eq!(events[0]["deliveryStreamVersionId"], 1);
    assert!(events[0]["message"].as_str().unwrap().starts_with("Access was denied."), "{}", events[0]);

    let out = cli(ep, dir.path(), &["verify", "--expect", &file, "--wait", "2"]);
    assert_exit(&out, 1);
    let said = text(&out);
    let repair = format!("`firehose-kit --endpoint-url {ep} setup`");
    for expected in
        ["FAILED: 20,000 of 20,000 lines missing", "S3.AccessDenied", "the role lacks s3:PutObject", repair.as_str()]
    {
        assert!(said.contains(expected), "{expected} missing from:\n{said}");
    }
    let v = json_out(&cli(ep, dir.path(), &["verify", "--expect", &file, "--no-wait", "-o", "json"]));
    assert_eq!(v["causes"]["errors"][0]["code"], "S3.AccessDenied");
    assert!(v["causes"]["errors"][0]["count"].as_u64().unwrap() >= 1);
    assert_eq!(v["causes"]["lacking"][0]["action"], "s3:PutObject");
    assert_eq!(v["causes"]["lacking"][0]["resource"], format!("arn:aws:s3:::{BUCKET}/*"));

    // status shows the errors and that data is waiting.
    let status = cli(ep, dir.path(), &["status"]);
    assert_exit(&status, 0);
    assert!(
        text(&status).contains("S3.AccessDenied") && text(&status).contains("data waiting since"),
        "{}",
        text(&status)
    );

    // Re-running setup detects the drift and says what it restores.
    let repaired = cli(ep, dir.path(), &["setup", "--buffer-interval", "1", "-o", "json"]);
    assert_exit(&repaired, 0);
    let steps = json_out(&repaired)["steps"].clone();
    let role_step = steps.as_array().unwrap().iter().find(|s| s["resource"] == "role").unwrap();
    assert_eq!(role_step["action"], "update");
    assert!(role_step["changes"].to_string().contains("restore s3:PutObject on arn:aws:s3:::"), "{role_step}");

    let done = cli(ep, dir.path(), &["verify", "--expect", &file, "--strict", "--wait", "30", "-o", "json"]);
    assert_exit(&done, 0);
    let v = json_out(&done);
    assert_eq!(
        (v["matched"].as_u64(), v["missing"].as_u64(), v["duplicated"].as_u64()),
        (Some(20_000), Some(0), Some(0))
    );
    // Delivered only after errors: verify still reports them.
    assert_eq!(v["causes"]["errors"][0]["code"], "S3.AccessDenied");
    assert!(v["causes"]["notes"].to_string().contains("allows delivery now"), "{}", v["causes"]);
}

/// (b) The bucket emptied and deleted under a live stream: S3.NoSuchBucket is logged and reported; setup
/// recreates the bucket and everything retained arrives.
#[tokio::test]
async fn a_deleted_bucket_is_reported_and_recreated_by_setup() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let ep = env.emu.endpoint();
    let c = &env.clients;
    assert_exit(&cli(ep, dir.path(), &["setup", "--buffer-interval", "1"]), 0);
    support::put_batch(c, "ApacheLogs", &[b"before\n".to_vec()]).await;
    support::eventually("a first object", Duration::from_secs(20), || async {
        (c.s3.list_objects_v2().bucket(BUCKET).send().await.ok()?.key_count()? > 0).then_some(())
    })
    .await;
    for (key, _) in support::objects(c, BUCKET, "").await {
        c.s3.delete_object().bucket(BUCKET).key(key).send().await.unwrap();
    }
    c.s3.delete_bucket().bucket(BUCKET).send().await.unwrap();

    let file = lines_file(dir.path(), "access.log", 5_000, 2);
    assert_exit(&cli(ep, dir.path(), &["send", &file]), 0);
    wait_logged(&env, "S3.NoSuchBucket").await;
    let out = cli(ep, dir.path(), &["verify", "--expect", &file, "--wait", "2"]);
    assert_exit(&out, 1);
    let said = text(&out);
    assert!(said.contains("S3.NoSuchBucket") && said.contains("The specified bucket does not exist"), "{said}");
    let doctor = cli(ep, dir.path(), &["doctor"]);
    assert_exit(&doctor, 1);
    assert!(text(&doctor).contains("bucket `firehose-kit-000000000000-us-east-2` does not exist"), "{}", text(&doctor));

    let setup = cli(ep, dir.path(), &["setup", "--buffer-interval", "1", "-o", "json"]);
    assert_exit(&setup, 0);
    assert_eq!(json_out(&setup)["steps"][0]["action"], "create", "the bucket is created again");
    let done = cli(ep, dir.path(), &["verify", "--expect", &file, "--strict", "--wait", "30"]);
    assert_exit(&done, 0);
}

/// (c) Past the retry horizon the data is dropped: verify reports exactly those lines missing, with the cause.
#[tokio::test]
async fn data_past_the_retry_horizon_is_dropped_and_reported_missing() {
    let env = start_with(|b| b.delivery_retry_horizon(Duration::from_secs(2))).await;
    let dir = tempfile::tempdir().unwrap();
    let ep = env.emu.endpoint();
    assert_exit(&cli(ep, dir.path(), &["setup", "--buffer-interval", "1"]), 0);
    strip_put_object(&env).await;
    let lost = lines_file(dir.path(), "lost.log", 3_000, 3);
    let sent = json_out(&cli(ep, dir.path(), &["send", &lost, "-o", "json"]));
    let records = sent["records"].as_u64().unwrap();
    // Every record of that run is dropped for good once its 2 s are over.
    support::eventually("the records dropped", Duration::from_secs(30), || async {
        (env.emu.dropped_records() == records).then_some(())
    })
    .await;
    assert!(env.emu.delivery_failures() > 0);
    // status no longer says the data is waiting: it was dropped. status estimates the arrival from the first
    // logged failure (one buffer interval earlier; the emulator's tick adds up to 0.1 s), so it may say so a
    // moment after the emulator dropped the data: poll.
    support::eventually("status says the data was dropped", Duration::from_secs(10), || async {
        let status = text(&cli(ep, dir.path(), &["status"]));
        (status.contains("was dropped") && !status.contains("waiting since")).then_some(())
    })
    .await;
    // The role is repaired and a second file goes through.
    assert_exit(&cli(ep, dir.path(), &["setup", "--buffer-interval", "1"]), 0);
    let kept = lines_file(dir.path(), "kept.log", 2_000, 4);
    assert_exit(&cli(ep, dir.path(), &["send", &kept]), 0);
    let out = cli(ep, dir.path(), &["verify", "--expect", &lost, &kept, "--wait", "10", "-o", "json"]);
    assert_exit(&out, 1);
    let v = json_out(&out);
    assert_eq!((v["matched"].as_u64(), v["missing"].as_u64()), (Some(2_000), Some(3_000)), "exactly the dropped lines");
    let shown = v["missing_lines"].as_array().unwrap();
    assert!(!shown.is_empty());
    for line in shown {
        assert!(line.as_str().unwrap().starts_with("lost.log:"), "{line} is not from the dropped file");
    }
    assert_eq!(v["causes"]["errors"][0]["code"], "S3.AccessDenied");
    // The missing lines were sent longer ago than this emulator retries (2 s): dropped, and said so.
    let notes = v["causes"]["notes"].to_string();
    assert!(notes.contains("2.0 s") && notes.contains("dropped") && !notes.contains("is being delivered"), "{notes}");
}

/// (d) doctor: healthy, each broken case, and a stream made through the API without firehose-kit's tags.
#[tokio::test]
async fn doctor_checks_healthy_broken_and_foreign_streams() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let ep = env.emu.endpoint();
    let c = &env.clients;
    assert_exit(&cli(ep, dir.path(), &["setup"]), 0);
    let healthy = cli(ep, dir.path(), &["doctor", "-o", "json"]);
    assert_exit(&healthy, 0);
    let v = json_out(&healthy);
    assert_eq!((v["healthy"].as_bool(), v["problems"].as_u64()), (Some(true), Some(0)), "{v}");
    let checks: Vec<&str> = v["findings"].as_array().unwrap().iter().map(|f| f["check"].as_str().unwrap()).collect();
    for check in [
        "stream",
        "role trust",
        "role policy",
        "logging policy",
        "bucket",
        "error logging",
        "recent errors",
        "buffering",
    ] {
        assert!(checks.contains(&check), "{check} not checked: {checks:?}");
    }
    let asked = json_out(&cli(ep, dir.path(), &["doctor", "--buffer-interval", "300", "-o", "json"]));
    assert_eq!(asked["warnings"], 1, "{asked}");

    // The role without s3:PutObject: a problem naming the action.
    strip_put_object(&env).await;
    let broken = cli(ep, dir.path(), &["doctor"]);
    assert_exit(&broken, 1);
    assert!(text(&broken).contains("may not s3:PutObject"), "{}", text(&broken));
    // The trust policy no longer naming Firehose.
    assert_exit(&cli(ep, dir.path(), &["setup"]), 0);
    let lambda = support::trust_policy().replace("firehose.amazonaws.com", "lambda.amazonaws.com");
    c.iam.update_assume_role_policy().role_name(ROLE).policy_document(lambda).send().await.unwrap();
    let untrusted = json_out(&cli(ep, dir.path(), &["doctor", "-o", "json"]));
    let trust = untrusted["findings"].as_array().unwrap().iter().find(|f| f["check"] == "role trust").unwrap();
    assert_eq!(trust["level"], "problem", "{trust}");
    // A bucket policy denying the role explicitly.
    assert_exit(&cli(ep, dir.path(), &["setup"]), 0);
    let deny = serde_json::json!({"Statement": [{"Sid": "NoFirehose", "Effect": "Deny",
        "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:role/{ROLE}")}, "Action": "s3:PutObject",
        "Resource": format!("arn:aws:s3:::{BUCKET}/*")}]});
    c.s3.put_bucket_policy().bucket(BUCKET).policy(deny.to_string()).send().await.unwrap();
    let denied = cli(ep, dir.path(), &["doctor"]);
    assert_exit(&denied, 1);
    assert!(text(&denied).contains("denied by statement NoFirehose of the bucket policy"), "{}", text(&denied));
    c.s3.delete_bucket_policy().bucket(BUCKET).send().await.unwrap();

    // A stream made directly through the API (as Terraform would), with no error logging and no tags.
    let (bucket_arn, role_arn) = support::bucket_and_role(c, "tf-bucket", "tf-role").await;
    support::active_stream(c, "tf-stream", &bucket_arn, &role_arn, 5, 300, false).await;
    let foreign = cli(ep, dir.path(), &["--stream", "tf-stream", "doctor", "-o", "json"]);
    assert_exit(&foreign, 0);
    let v = json_out(&foreign);
    let level = |check: &str| {
        v["findings"].as_array().unwrap().iter().find(|f| f["check"] == check).map(|f| f["level"].clone())
    };
    assert_eq!(level("origin"), Some("ok".into()));
    assert_eq!(level("error logging"), Some("warning".into()), "{v}");
    assert_eq!(level("role policy"), Some("ok".into()));
    let missing = cli(ep, dir.path(), &["--stream", "nope", "doctor"]);
    assert_exit(&missing, 1);
}

/// (e) Injected faults: half the attempts fail, everything still arrives once, and the errors are logged.
#[tokio::test]
async fn injected_delivery_faults_are_retried_logged_and_lose_nothing() {
    let fail = "S3.AccessDenied:0.5".parse().unwrap();
    let env = start_with(|b| b.fail_delivery(Some(fail)).fail_rate(0.0, Some(7))).await;
    let dir = tempfile::tempdir().unwrap();
    let ep = env.emu.endpoint();
    assert_exit(&cli(ep, dir.path(), &["setup", "--buffer-interval", "0"]), 0);
    let file = lines_file(dir.path(), "access.log", 20_000, 5);
    assert_exit(&cli(ep, dir.path(), &["send", &file]), 0);
    let out = cli(ep, dir.path(), &["verify", "--expect", &file, "--strict", "--wait", "60", "-o", "json"]);
    assert_exit(&out, 0);
    let v = json_out(&out);
    assert_eq!((v["missing"].as_u64(), v["duplicated"].as_u64()), (Some(0), Some(0)));
    assert!(env.emu.delivery_failures() > 0 && env.emu.logged_errors() > 0);
    assert_eq!(v["causes"]["errors"][0]["code"], "S3.AccessDenied", "delivered after errors: still reported");
    assert_eq!(logged(&env, "S3.AccessDenied").await.len() as u64, env.emu.logged_errors());
}
