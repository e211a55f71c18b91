//! setup, status and teardown against the embedded emulator, through the binary (exit codes, output) and the
//! library (what a user sees in progress).

use std::time::Duration;

use firehose_kit::aws::policy;
use firehose_kit::settings::{Global, SetupSettings};
use serde_json::Value;

use crate::support::{self, ACCOUNT, Recorder, assert_exit, cli, cli_plain, json_out, start, start_with};

const BUCKET: &str = "firehose-kit-000000000000-us-east-2";
const ROLE: &str = "firehose-kit-ApacheLogs-delivery";
const LOG_GROUP: &str = "/aws/kinesisfirehose/ApacheLogs";
const LOG_STREAM_ARN: &str =
    "arn:aws:logs:us-east-2:000000000000:log-group:/aws/kinesisfirehose/ApacheLogs:log-stream:DestinationDelivery";

/// The (resource, action) of each step a `setup -o json` answer lists.
pub fn actions(v: &Value) -> Vec<(String, String)> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["resource"].as_str().unwrap().to_string(), s["action"].as_str().unwrap().to_string()))
        .collect()
}

async fn nothing_exists(c: &firehose_kit::aws::Clients) {
    assert!(c.s3.list_buckets().send().await.unwrap().buckets().is_empty(), "no bucket");
    assert!(c.iam.list_roles().send().await.unwrap().roles().is_empty(), "no role");
    assert!(c.firehose.list_delivery_streams().send().await.unwrap().delivery_stream_names().is_empty(), "no stream");
}

#[tokio::test]
async fn setup_creates_hardened_resources_and_a_rerun_changes_nothing() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = &env.clients;
    let out = cli(env.emu.endpoint(), dir.path(), &["setup", "-o", "json"]);
    assert_exit(&out, 0);
    let v = json_out(&out);
    assert_eq!(v["status"], "ACTIVE");
    assert_eq!(
        actions(&v),
        [
            ("bucket".into(), "create".into()),
            ("role".into(), "create".into()),
            ("log group".into(), "create".into()),
            ("stream".into(), "create".into())
        ]
    );

    // Bucket: public access blocked, owner enforced, SSE-S3, tags. The TLS-only policy is applied only over
    // TLS: on this plain-HTTP endpoint it would deny every request, and setup says so.
    let pab = c.s3.get_public_access_block().bucket(BUCKET).send().await.unwrap();
    let pab = pab.public_access_block_configuration().unwrap();
    assert_eq!(
        [pab.block_public_acls(), pab.ignore_public_acls(), pab.block_public_policy(), pab.restrict_public_buckets()],
        [Some(true); 4]
    );
    let own = c.s3.get_bucket_ownership_controls().bucket(BUCKET).send().await.unwrap();
    assert_eq!(own.ownership_controls().unwrap().rules()[0].object_ownership().as_str(), "BucketOwnerEnforced");
    assert!(c.s3.get_bucket_policy().bucket(BUCKET).send().await.is_err(), "no TLS policy over plain HTTP");
    let bucket_step = &v["steps"][0]["changes"];
    assert!(bucket_step.to_string().contains("the endpoint is plain HTTP"), "{bucket_step}");
    let location = c.s3.get_bucket_location().bucket(BUCKET).send().await.unwrap();
    assert_eq!(location.location_constraint().unwrap().as_str(), "us-east-2");
    let tags = c.s3.get_bucket_tagging().bucket(BUCKET).send().await.unwrap();
    let tags: Vec<(&str, &str)> = tags.tag_set().iter().map(|t| (t.key(), t.value())).collect();
    assert!(tags.contains(&("firehose-kit:managed", "true")) && tags.contains(&("firehose-kit:stream", "ApacheLogs")));

    // Role: trust and the inline policy exactly as rendered.
    let role = c.iam.get_role().role_name(ROLE).send().await.unwrap();
    let trust = firehose_kit::aws::decode_policy_document(role.role().unwrap().assume_role_policy_document().unwrap());
    assert!(policy::same_document(&trust, &policy::trust_policy(ACCOUNT)));
    let inline = c.iam.get_role_policy().role_name(ROLE).policy_name("s3-delivery").send().await.unwrap();
    let inline = firehose_kit::aws::decode_policy_document(inline.policy_document());
    assert!(policy::same_document(&inline, &policy::delivery_policy("aws", BUCKET, Some(LOG_STREAM_ARN))));

    // Error logging: the group with its retention and tags, the log stream, and the stream pointing at them.
    let groups = c.logs.describe_log_groups().log_group_name_prefix(LOG_GROUP).send().await.unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(14));
    let group_arn = groups.log_groups()[0].log_group_arn().unwrap().to_string();
    let tags = c.logs.list_tags_for_resource().resource_arn(&group_arn).send().await.unwrap();
    assert_eq!(tags.tags().unwrap().get("firehose-kit:managed").map(String::as_str), Some("true"));
    let streams = c.logs.describe_log_streams().log_group_name(LOG_GROUP).send().await.unwrap();
    assert_eq!(streams.log_streams()[0].log_stream_name(), Some("DestinationDelivery"));

    // Stream: Direct Put, the original demo's buffering, no compression, tagged.
    let d = c.firehose.describe_delivery_stream().delivery_stream_name("ApacheLogs").send().await.unwrap();
    let desc = d.delivery_stream_description().unwrap();
    assert_eq!(desc.delivery_stream_type().as_str(), "DirectPut");
    let ext = desc.destinations()[0].extended_s3_destination_description().unwrap();
    let hints = ext.buffering_hints().unwrap();
    assert_eq!((hints.size_in_mbs(), hints.interval_in_seconds()), (Some(1), Some(60)));
    assert_eq!(ext.compression_format().as_str(), "UNCOMPRESSED");
    assert_eq!(ext.bucket_arn(), format!("arn:aws:s3:::{BUCKET}"));
    let logging = ext.cloud_watch_logging_options().unwrap();
    assert_eq!(
        (logging.enabled(), logging.log_group_name(), logging.log_stream_name()),
        (Some(true), Some(LOG_GROUP), Some("DestinationDelivery"))
    );

    // A re-run with the same settings is a no-op.
    let again = cli(env.emu.endpoint(), dir.path(), &["setup", "-o", "json"]);
    assert_exit(&again, 0);
    let v = json_out(&again);
    assert!(actions(&v).iter().all(|(_, a)| a == "unchanged"), "{v}");
    let d = c.firehose.describe_delivery_stream().delivery_stream_name("ApacheLogs").send().await.unwrap();
    assert_eq!(d.delivery_stream_description().unwrap().version_id(), "1");
    let text = cli(env.emu.endpoint(), dir.path(), &["setup"]);
    assert_exit(&text, 0);
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert!(stderr.contains("unchanged"), "{stderr}");
}

#[tokio::test]
async fn changed_hints_are_applied_with_update_destination() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    assert_exit(&cli(env.emu.endpoint(), dir.path(), &["setup"]), 0);
    let out = cli(
        env.emu.endpoint(),
        dir.path(),
        &[
            "setup",
            "--buffer-size",
            "5",
            "--buffer-interval",
            "300",
            "--compression",
            "gzip",
            "--prefix",
            "logs/",
            "-o",
            "json",
        ],
    );
    assert_exit(&out, 0);
    let v = json_out(&out);
    let stream_step = v["steps"].as_array().unwrap().iter().find(|s| s["resource"] == "stream").unwrap().clone();
    assert_eq!(stream_step["action"], "update");
    let changes: Vec<&str> = stream_step["changes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(
        changes.contains(&"buffer size: 1 MiB → 5 MiB") && changes.contains(&"compression: UNCOMPRESSED → GZIP"),
        "{changes:?}"
    );
    let d = env.clients.firehose.describe_delivery_stream().delivery_stream_name("ApacheLogs").send().await.unwrap();
    let desc = d.delivery_stream_description().unwrap();
    assert_eq!(desc.version_id(), "2");
    let ext = desc.destinations()[0].extended_s3_destination_description().unwrap();
    assert_eq!(
        (ext.buffering_hints().unwrap().size_in_mbs(), ext.compression_format().as_str(), ext.prefix()),
        (Some(5), "GZIP", Some("logs/"))
    );

    // Moving to another bucket is refused with the commands that would do it.
    let moved = cli(env.emu.endpoint(), dir.path(), &["setup", "--bucket", "another-bucket-name"]);
    assert_exit(&moved, 2);
    let stderr = String::from_utf8_lossy(&moved.stderr);
    assert!(
        stderr.contains("does not move a stream")
            && stderr.contains("hint: ")
            && stderr.contains("teardown --keep-bucket"),
        "{stderr}"
    );
}

#[tokio::test]
async fn dry_run_shows_the_plan_and_documents_and_creates_nothing() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = cli(env.emu.endpoint(), dir.path(), &["setup", "--dry-run"]);
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "will create",
        "firehose.amazonaws.com",
        "sts:ExternalId",
        "s3:PutObject",
        "aws:SecureTransport",
        BUCKET,
        "logs:PutLogEvents",
        "retention 14 days",
        "errors logged to /aws/kinesisfirehose/ApacheLogs / DestinationDelivery",
    ] {
        assert!(stdout.contains(expected), "{expected} missing from:\n{stdout}");
    }
    nothing_exists(&env.clients).await;
    let json = json_out(&cli(env.emu.endpoint(), dir.path(), &["setup", "--dry-run", "-o", "json"]));
    assert_eq!(json["dry_run"], true);
    assert_eq!(json["plan"]["delivery_policy"], policy::delivery_policy("aws", BUCKET, Some(LOG_STREAM_ARN)));
    let no_logging =
        json_out(&cli(env.emu.endpoint(), dir.path(), &["setup", "--dry-run", "--no-error-logging", "-o", "json"]));
    assert_eq!(no_logging["plan"]["delivery_policy"], policy::delivery_policy("aws", BUCKET, None));
    assert!(actions(&no_logging["plan"]).iter().all(|(r, _)| r != "log group"));
    nothing_exists(&env.clients).await;
}

#[tokio::test]
async fn setup_rides_out_iam_propagation_with_visible_retries() {
    let env = start_with(|b| b.iam_propagation_delay(Duration::from_secs(2))).await;
    let global = Global {
        connection: support::connection(env.emu.endpoint()),
        stream: "Propagating".into(),
        output: firehose_kit::cli::OutputFormat::Text,
        quiet: false,
        verbose: 0,
        no_progress: true,
        state_dir: tempfile::tempdir().unwrap().path().to_path_buf(),
        settings_file: None,
        typed: Vec::new(),
    };
    let settings = SetupSettings::resolve(&Default::default(), &Default::default()).unwrap();
    let plan = firehose_kit::commands::setup::plan(&global, &settings, &env.clients).await.unwrap();
    let recorder = Recorder::default();
    let outcome = firehose_kit::commands::setup::apply(&settings, plan, &env.clients, &recorder).await.unwrap();
    assert_eq!(outcome.status.as_deref(), Some("ACTIVE"));
    assert!(outcome.iam_retries >= 1, "retried while the role propagated");
    let messages = recorder.messages();
    assert!(messages.iter().any(|m| m.contains("IAM propagation") && m.contains("retry 1")), "{messages:?}");
}

#[tokio::test]
async fn invalid_input_exits_2_and_creates_nothing() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"stream_name":"ApacheLogs","region_name":"us-east-2","aws_access_key_id":"AKIAEXAMPLE","aws_secret_access_key":"x"}"#).unwrap();
    for (args, expected) in [
        (vec!["--stream", "bad name", "setup"], "stream name `bad name` is invalid"),
        (vec!["setup", "--buffer-size", "0"], "--buffer-size 0 is out of range"),
        (vec!["setup", "--buffer-interval", "901"], "--buffer-interval 901 is out of range"),
        (vec!["setup", "--bucket", "Not_A_Bucket"], "bucket name `Not_A_Bucket` is invalid"),
        (vec!["setup", "--prefix", "!{timestamp:yyyy}/"], "ErrorOutputPrefix"),
        (vec!["-c", "config.json", "setup"], "never reads secrets"),
        (vec!["-c", "missing.toml", "setup"], "cannot read `missing.toml`"),
    ] {
        let out = cli(env.emu.endpoint(), dir.path(), &args);
        assert_exit(&out, 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: ") && stderr.contains(expected), "{args:?}: {stderr}");
    }
    let keys = cli(env.emu.endpoint(), dir.path(), &["-c", "config.json", "setup"]);
    assert!(String::from_utf8_lossy(&keys.stderr).contains("hint: remove them from the file and use `aws configure`"));
    nothing_exists(&env.clients).await;
    // A settings file without keys is accepted (the original demo's format).
    std::fs::write(dir.path().join("config.json"), r#"{"stream_name":"FromConfig","region_name":"us-east-2"}"#)
        .unwrap();
    let out = cli(env.emu.endpoint(), dir.path(), &["-c", "config.json", "setup", "--dry-run", "-o", "json"]);
    assert_exit(&out, 0);
    assert_eq!(json_out(&out)["plan"]["stream"], "FromConfig");
}

#[tokio::test]
async fn an_unreachable_endpoint_exits_3_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli("http://127.0.0.1:9", dir.path(), &["status"]);
    assert_exit(&out, 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("caused by: cannot reach the endpoint") && stderr.contains("hint: "), "{stderr}");
}

#[tokio::test]
async fn teardown_removes_all_three_and_a_second_run_reports_them_gone() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = &env.clients;
    assert_exit(&cli(env.emu.endpoint(), dir.path(), &["setup", "--buffer-interval", "0"]), 0);
    support::put_batch(c, "ApacheLogs", &[b"one line\n".to_vec()]).await;
    support::eventually("an object", Duration::from_secs(20), || async {
        (c.s3.list_objects_v2().bucket(BUCKET).send().await.ok()?.key_count()? > 0).then_some(())
    })
    .await;

    let status = json_out(&cli(env.emu.endpoint(), dir.path(), &["status", "-o", "json"]));
    assert_eq!(status["status"], "ACTIVE");
    assert_eq!(status["delivered"]["objects"], 1);
    assert_eq!(status["role"], ROLE);

    // Without --yes and without a terminal to ask on, a bucket holding objects is kept.
    let refused = cli(env.emu.endpoint(), dir.path(), &["teardown"]);
    assert_exit(&refused, 1);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("re-run with --yes"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    c.s3.head_bucket().bucket(BUCKET).send().await.unwrap();

    let out = cli(env.emu.endpoint(), dir.path(), &["teardown", "--yes", "-o", "json"]);
    assert_exit(&out, 0);
    let v = json_out(&out);
    let fates: Vec<&str> = v["resources"].as_array().unwrap().iter().map(|r| r["fate"].as_str().unwrap()).collect();
    assert_eq!(
        fates,
        ["already_gone", "already_gone", "already_gone", "deleted"],
        "the first teardown removed stream, role and log group already"
    );
    assert!(c.logs.describe_log_groups().send().await.unwrap().log_groups().is_empty(), "log group removed");
    nothing_exists(c).await;

    let again = cli(env.emu.endpoint(), dir.path(), &["teardown", "-o", "json"]);
    assert_exit(&again, 0);
    let v = json_out(&again);
    assert!(v["resources"].as_array().unwrap().iter().all(|r| r["fate"] == "already_gone"), "{v}");
}

#[tokio::test]
async fn teardown_leaves_same_named_resources_it_did_not_make() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = &env.clients;
    support::bucket_and_role(c, BUCKET, ROLE).await; // untagged, made by "someone else"
    // Not firehose-kit's to remove: kept, said so, exit 0, and no hint to delete them.
    let out = cli(env.emu.endpoint(), dir.path(), &["teardown", "--yes"]);
    assert_exit(&out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no firehose-kit:managed tag: not made by firehose-kit, so left as it is"), "{stderr}");
    assert!(!stderr.contains("--force"), "{stderr}");
    c.s3.head_bucket().bucket(BUCKET).send().await.expect("bucket untouched");
    c.iam.get_role().role_name(ROLE).send().await.expect("role untouched");
    // Setup also refuses to take over a role it did not make.
    let setup = cli(env.emu.endpoint(), dir.path(), &["setup"]);
    assert_exit(&setup, 2);
    assert!(String::from_utf8_lossy(&setup.stderr).contains("was not made by firehose-kit"));
    // --force removes them.
    assert_exit(&cli(env.emu.endpoint(), dir.path(), &["teardown", "--yes", "--force"]), 0);
    assert!(
        c.iam
            .get_role()
            .role_name(ROLE)
            .send()
            .await
            .unwrap_err()
            .as_service_error()
            .unwrap()
            .is_no_such_entity_exception()
    );
    assert!(c.s3.head_bucket().bucket(BUCKET).send().await.is_err(), "bucket removed");
}

#[tokio::test]
async fn every_command_has_help_with_an_example() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["setup", "send", "verify", "teardown", "status", "doctor", "local", "demo", "generate", "completions"] {
        let out = cli_plain(dir.path(), &[cmd, "--help"]);
        assert_exit(&out, 0);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Examples:") && help.contains("  firehose-kit "), "{cmd}: {help}");
    }
}

#[tokio::test]
async fn a_setup_that_fails_midway_is_completed_by_running_it_again() {
    // The new role cannot be assumed for 3 s and setup is told not to wait for it: the stream step fails
    // after the bucket and role were made.
    let env = start_with(|b| b.iam_propagation_delay(Duration::from_secs(3))).await;
    let dir = tempfile::tempdir().unwrap();
    let first = cli(env.emu.endpoint(), dir.path(), &["setup", "--iam-retry-timeout", "0"]);
    assert_exit(&first, 3);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("unable to assume role") && stderr.contains("hint: "), "{stderr}");
    assert!(
        stderr.contains("bucket    firehose-kit-000000000000-us-east-2  created"),
        "what was made is reported: {stderr}"
    );
    let tags = env.clients.s3.get_bucket_tagging().bucket(BUCKET).send().await.unwrap();
    assert!(tags.tag_set().iter().any(|t| t.key() == "firehose-kit:managed"), "and tagged");
    // Re-running completes it.
    let done = support::eventually("a re-run completes setup", Duration::from_secs(20), || async {
        let out = cli(env.emu.endpoint(), dir.path(), &["setup", "--iam-retry-timeout", "0", "-o", "json"]);
        (out.status.code() == Some(0)).then(|| json_out(&out))
    })
    .await;
    assert_eq!(
        actions(&done),
        [
            ("bucket".into(), "unchanged".into()),
            ("role".into(), "unchanged".into()),
            ("log group".into(), "unchanged".into()),
            ("stream".into(), "create".into())
        ]
    );
    assert_eq!(done["status"], "ACTIVE");
}

#[tokio::test]
async fn completions_are_printed_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = cli_plain(dir.path(), &["completions", shell]);
        assert_exit(&out, 0);
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("firehose-kit") && script.contains("teardown"), "{shell}");
    }
}

/// Re-running plain `setup` (what the troubleshooting guide tells users to do to repair a role) keeps every
/// setting the user chose earlier: buffering, compression, prefixes, logging and its retention.
#[tokio::test]
async fn a_plain_setup_rerun_keeps_every_customised_setting() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let ep = env.emu.endpoint();
    let custom = [
        "setup",
        "--buffer-size",
        "5",
        "--buffer-interval",
        "10",
        "--compression",
        "gzip",
        "--prefix",
        "logs/",
        "--error-prefix",
        "errors/",
        "--log-retention",
        "30",
    ];
    assert_exit(&cli(ep, dir.path(), &custom), 0);
    let describe = || async {
        let d =
            env.clients.firehose.describe_delivery_stream().delivery_stream_name("ApacheLogs").send().await.unwrap();
        let ext = d.delivery_stream_description().unwrap().destinations()[0]
            .extended_s3_destination_description()
            .unwrap()
            .clone();
        let hints = ext.buffering_hints().unwrap();
        (
            hints.size_in_mbs(),
            hints.interval_in_seconds(),
            ext.compression_format().as_str().to_string(),
            ext.prefix().map(str::to_string),
            ext.error_output_prefix().map(str::to_string),
            ext.cloud_watch_logging_options().and_then(|o| o.enabled()),
        )
    };
    let before = describe().await;
    assert_eq!(before, (Some(5), Some(10), "GZIP".into(), Some("logs/".into()), Some("errors/".into()), Some(true)));
    // A repair: the role's inline policy drifted.
    env.clients
        .iam
        .delete_role_policy()
        .role_name(ROLE)
        .policy_name(policy::DELIVERY_POLICY_NAME)
        .send()
        .await
        .unwrap();
    let dry = cli(ep, dir.path(), &["setup", "--dry-run", "-o", "json"]);
    assert_exit(&dry, 0);
    let plan = &json_out(&dry)["plan"];
    let stream_step = plan["steps"].as_array().unwrap().iter().find(|s| s["resource"] == "stream").unwrap();
    assert_eq!(stream_step["action"], "unchanged", "--dry-run shows the stream kept as it is: {plan}");
    let out = cli(ep, dir.path(), &["setup", "-o", "json"]);
    assert_exit(&out, 0);
    let v = json_out(&out);
    assert_eq!(
        actions(&v),
        vec![
            ("bucket".to_string(), "unchanged".to_string()),
            ("role".to_string(), "update".to_string()),
            ("log group".to_string(), "unchanged".to_string()),
            ("stream".to_string(), "unchanged".to_string()),
        ],
        "only the role is repaired: {v}"
    );
    assert_eq!(describe().await, before, "every setting unchanged");
    let groups = env.clients.logs.describe_log_groups().send().await.unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(30), "the retention too");
    // Logging turned off stays off on a plain re-run, and `--error-logging` turns it back on.
    assert_exit(&cli(ep, dir.path(), &["setup", "--no-error-logging"]), 0);
    assert_exit(&cli(ep, dir.path(), &["setup"]), 0);
    assert_eq!(describe().await.5, Some(false));
    assert_exit(&cli(ep, dir.path(), &["setup", "--error-logging"]), 0);
    assert_eq!(describe().await, before);
}

/// A checkpoint belongs to the stream instance that acknowledged the lines: after teardown and setup the same
/// file is sent again, in full, with a note saying why.
#[tokio::test]
async fn a_file_is_sent_again_after_teardown_and_setup() {
    let env = start().await;
    let dir = tempfile::tempdir().unwrap();
    let ep = env.emu.endpoint();
    support::setup(ep, dir.path(), &["--buffer-interval", "1"]);
    support::log_file(dir.path(), "access.log", 2_000, 41);
    assert_exit(&cli(ep, dir.path(), &["send", "access.log"]), 0);
    assert_exit(&cli(ep, dir.path(), &["teardown", "--yes"]), 0);
    support::setup(ep, dir.path(), &["--buffer-interval", "1"]);
    let out = cli(ep, dir.path(), &["send", "access.log", "-o", "json"]);
    assert_exit(&out, 0);
    assert_eq!(json_out(&out)["lines"], 2_000, "sent in full");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("deleted and created again"), "{stderr}");
    let verified = cli(ep, dir.path(), &["verify", "-o", "json"]);
    assert_exit(&verified, 0);
    assert_eq!(json_out(&verified)["matched"], 2_000);
    // Sent once to this stream: a third send has nothing to do.
    let again = cli(ep, dir.path(), &["send", "access.log"]);
    assert_exit(&again, 0);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already sent"));
}
