//! `setup --format parquet` through the binary: the Glue database and table, send's JSON packed into records,
//! verify proving each line is one Parquet row with equal typed fields (and naming lines that did not convert),
//! the create-time rules refused with AWS's reasons, a role that may not read the table explained and repaired,
//! kills of the emulator during conversion, teardown removing the table and database.

use std::time::Duration;

use serde_json::Value;

use crate::support::{self, DEFAULT_BUCKET, assert_exit, cli, eventually, json_out};

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// The Parquet objects under `prefix`: total rows, and the first one's columns with their physical types.
async fn parquet_rows(c: &firehose_kit::aws::Clients, prefix: &str) -> (i64, Vec<(String, String)>) {
    let mut rows = 0;
    let mut columns = Vec::new();
    for (key, body) in support::objects(c, DEFAULT_BUCKET, prefix).await {
        assert!(key.ends_with(".parquet"), "{key}");
        let reader = parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(body)).unwrap();
        let meta = parquet::file::reader::FileReader::metadata(&reader);
        rows += meta.file_metadata().num_rows();
        if columns.is_empty() {
            let schema = meta.file_metadata().schema_descr();
            columns =
                schema.columns().iter().map(|c| (c.name().to_string(), format!("{:?}", c.physical_type()))).collect();
        }
    }
    (rows, columns)
}

/// setup makes the database and table (re-run: unchanged), send packs 200,000 lines as JSON, verify proves each
/// is one row with equal typed fields, the objects open with the parquet crate with the same rows and types, and
/// teardown removes the table and the database it made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_format_parquet_then_send_and_verify_200k_rows() {
    let env = support::start_with(|b| b.speed(60.0)).await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    let c = &env.clients;
    let dry = cli(&ep, dir.path(), &["setup", "--format", "parquet", "--dry-run"]);
    assert_exit(&dry, 0);
    assert!(text(&dry).contains(firehose_kit::aws::policy::SCHEMA_POLICY_NAME), "{}", text(&dry));
    assert!(c.glue.get_database().name("firehose_kit").send().await.is_err(), "a dry run creates nothing");
    let created = json_out(&cli(&ep, dir.path(), &["setup", "--format", "parquet", "-o", "json"]));
    let actions = crate::provision::actions(&created);
    for resource in ["database", "table", "stream"] {
        assert!(actions.contains(&(resource.to_string(), "create".to_string())), "{created}");
    }
    assert_eq!(created["destination"]["buffer_size_mib"], 64, "the conversion minimum");
    assert_eq!(created["destination"]["prefix"], "apachelogs/");
    let again = json_out(&cli(&ep, dir.path(), &["setup", "-o", "json"]));
    assert!(crate::provision::actions(&again).iter().all(|(_, a)| a == "unchanged"), "{again}");

    let sent = json_out(&cli(&ep, dir.path(), &["send", "--generate", "200000", "-o", "json"]));
    assert_eq!(sent["lines"], 200_000);
    assert!(sent["records"].as_u64().unwrap() < 1_000, "lines are packed: {sent}");
    let verified = cli(&ep, dir.path(), &["verify", "-o", "json"]);
    assert_exit(&verified, 0);
    let v: Value = json_out(&verified);
    assert_eq!((v["verified"].as_bool(), v["matched"].as_u64()), (Some(true), Some(200_000)), "{v}");
    assert_eq!(v["conversion"]["rows"], 200_000);
    assert_eq!(v["conversion"]["schema_problems"], serde_json::json!([]));
    assert_eq!(v["conversion"]["schema"][7], serde_json::json!(["status", "int32"]));
    let human = text(&cli(&ep, dir.path(), &["verify", "--no-wait", "--report", "report.html", "--keep", "kept"]));
    let kept: Vec<_> = walk(&dir.path().join("kept"));
    assert!(!kept.is_empty() && kept.iter().all(|p| p.to_string_lossy().ends_with(".parquet.jsonl")), "{kept:?}");
    let first = std::fs::read_to_string(&kept[0]).unwrap();
    let row: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert!(row["time"].as_str().unwrap().ends_with('Z') && row["status"].is_u64(), "{row}");
    assert!(human.contains("OK: all 200,000 lines arrived as Parquet rows with equal typed fields"), "{human}");
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    for shown in
        ["<h2>Parquet</h2>", "<table id=\"schema\">", "<td><code>status</code></td><td>int32</td>", "<th>rows</th>"]
    {
        assert!(page.contains(shown), "the report shows {shown}");
    }

    let (rows, columns) = parquet_rows(c, "apachelogs/").await;
    assert_eq!(rows, 200_000);
    let physical: Vec<(&str, &str)> = columns.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    assert_eq!(&physical[3..4], &[("time", "INT64")]);
    assert_eq!(&physical[7..9], &[("status", "INT32"), ("bytes", "INT64")]);

    let torn = json_out(&cli(&ep, dir.path(), &["teardown", "--yes", "-o", "json"]));
    let gone = torn.to_string();
    assert!(gone.contains("\"name\":\"firehose_kit.apachelogs\"") && gone.contains("\"resource\":\"database\""));
    assert!(c.glue.get_database().name("firehose_kit").send().await.is_err(), "{torn}");
}

/// The access log with three lines whose size does not fit `bigint` (send parses sizes as unsigned 64-bit
/// numbers): 1,000 lines.
fn log_with_three_huge_sizes(dir: &std::path::Path) {
    let path = support::log_file(dir, "access.log", 997, 3);
    let mut log = std::fs::read_to_string(&path).unwrap();
    for i in 0..3 {
        log.push_str(&format!(
            "10.0.0.{i} - - [02/Dec/2026:10:00:0{i} +0000] \"GET /huge HTTP/1.1\" 200 1000000000000000000{i}\n"
        ));
    }
    std::fs::write(&path, log).unwrap();
}

/// Three lines that do not fit the table do not convert. Sent one per record they alone go to
/// `format-conversion-failed` with AWS's code and the rest converts; packed (send's default), a record fails
/// with every line in it. Either way verify accounts for each line, a row or named with its code, and never
/// calls one missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_that_do_not_fit_the_table_are_named_with_their_code() {
    let env = support::start_with(|b| b.speed(60.0)).await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    log_with_three_huge_sizes(dir.path());
    support::setup(&ep, dir.path(), &["--format", "parquet"]);
    let sent = cli(&ep, dir.path(), &["send", "access.log", "--one-line-per-record"]);
    assert_exit(&sent, 0);
    let verified = cli(&ep, dir.path(), &["verify", "-o", "json", "--wait", "60s"]);
    assert_exit(&verified, 1);
    let v = json_out(&verified);
    assert_eq!((v["matched"].as_u64(), v["missing"].as_u64()), (Some(997), Some(0)), "{v}");
    assert_eq!(v["conversion"]["failed_lines"], 3, "{v}");
    assert_eq!(v["conversion"]["failures"][0]["code"], "DataFormatConversion.MalformedData");
    assert!(v["conversion"]["failed_example"].as_str().unwrap().contains("/huge"), "{v}");
    let human = text(&cli(&ep, dir.path(), &["verify", "--no-wait"]));
    assert!(
        human.contains("FAILED: 997 of 1,000 lines arrived as rows; 3 lines did not convert (in the error output, format-conversion-failed: DataFormatConversion.MalformedData)"),
        "{human}"
    );
    let errors = support::objects(&env.clients, DEFAULT_BUCKET, "errors/format-conversion-failed/").await;
    let docs: usize = errors.iter().map(|(_, b)| b.split(|c| *c == b'\n').filter(|l| !l.is_empty()).count()).sum();
    assert_eq!(docs, 3, "one document per failed record");

    support::setup(&ep, dir.path(), &["--stream", "Packed", "--format", "parquet"]);
    let sent = cli(&ep, dir.path(), &["--stream", "Packed", "send", "access.log"]);
    assert!(text(&sent).contains("a record that does not convert goes to the error output with all its lines"));
    let v = json_out(&cli(&ep, dir.path(), &["--stream", "Packed", "verify", "-o", "json", "--wait", "60s"]));
    let (matched, failed) = (v["matched"].as_u64().unwrap(), v["conversion"]["failed_lines"].as_u64().unwrap());
    assert_eq!((matched + failed, v["missing"].as_u64()), (1000, Some(0)), "every line a row or named: {v}");
    assert!(failed >= 3 && v["verified"] == false, "{v}");
}

/// What conversion cannot take is refused before anything is made, with AWS's reasons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_refuses_what_conversion_cannot_take() {
    let env = support::start().await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    for (args, says) in [
        (&["--buffer-size", "5"][..], "BufferingHints.SizeInMBs must be at least 64"),
        (&["--compression", "gzip"][..], "CompressionFormat must be UNCOMPRESSED"),
    ] {
        let mut all = vec!["setup", "--format", "parquet"];
        all.extend_from_slice(args);
        let out = cli(&ep, dir.path(), &all);
        assert_exit(&out, 2);
        assert!(text(&out).contains(says), "{}", text(&out));
    }
    for (args, says) in [
        (
            &["--transform", concat!(env!("CARGO_MANIFEST_DIR"), "/templates/transform/apache_to_json.py")][..],
            "--format parquet with --transform is not something setup makes",
        ),
        (&["--partition-by", "status"][..], "--format parquet with --partition-by is not something setup makes"),
        (&["--prefix", ""][..], "--format parquet needs a prefix"),
        (&["--prefix", "logs/", "--error-prefix", "logs/errors/"][..], "is inside the prefix `logs/`"),
    ] {
        let mut all = vec!["setup", "--format", "parquet"];
        all.extend_from_slice(args);
        let out = cli(&ep, dir.path(), &all);
        assert_exit(&out, 2);
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    }
    let out = cli(&ep, dir.path(), &["setup", "--glue-database", "logs"]);
    assert_exit(&out, 2);
    assert!(text(&out).contains("add --format parquet"), "{}", text(&out));
    let out = cli(&ep, dir.path(), &["setup", "--format", "parquet", "--glue-database", "Web-Logs"]);
    assert_exit(&out, 2);
    assert!(text(&out).contains("`W` is not allowed"), "{}", text(&out));
    let streams = env.clients.firehose.list_delivery_streams().send().await.unwrap();
    assert!(streams.delivery_stream_names().is_empty(), "nothing was made");
}

/// With only part of the schema grant the conversion cannot read the table: `DataFormatConversion.AccessDenied` is logged,
/// verify and doctor say what the role lacks, and setup restores the grant; the waiting lines then arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_may_not_read_the_table_is_explained_and_repaired() {
    let env = support::start_with(|b| b.speed(60.0)).await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    let c = &env.clients;
    support::setup(&ep, dir.path(), &["--stream", "denied", "--format", "parquet"]);
    let role = firehose_kit::settings::role_name("denied").unwrap();
    let policy = firehose_kit::aws::policy::SCHEMA_POLICY_NAME;
    // Only glue:GetTable on the table: AWS also checks the catalog, the database and the version reads.
    let partial = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"glue:GetTable","Resource":"arn:aws:glue:us-east-2:000000000000:table/firehose_kit/denied"}]}"#;
    c.iam.put_role_policy().role_name(&role).policy_name(policy).policy_document(partial).send().await.unwrap();
    assert_exit(&cli(&ep, dir.path(), &["--stream", "denied", "send", "--generate", "500"]), 0);
    eventually("DataFormatConversion.AccessDenied logged", Duration::from_secs(30), || async {
        let out = c.logs.filter_log_events().log_group_name("/aws/kinesisfirehose/denied").send().await.ok()?;
        out.events()
            .iter()
            .any(|e| e.message().unwrap_or("").contains("DataFormatConversion.AccessDenied"))
            .then_some(())
    })
    .await;
    let failed = text(&cli(&ep, dir.path(), &["--stream", "denied", "verify", "--wait", "2s"]));
    assert!(failed.contains("FAILED") && failed.contains("DataFormatConversion.AccessDenied"), "{failed}");
    assert!(failed.contains("the role lacks glue:GetTableVersions"), "verify names what the role lacks: {failed}");
    assert!(!failed.contains("lacks glue:GetTable on arn:aws:glue:us-east-2:000000000000:table/"), "{failed}");
    let doctor = cli(&ep, dir.path(), &["--stream", "denied", "doctor"]);
    assert_exit(&doctor, 1);
    assert!(text(&doctor).contains("the role may not glue:GetTable"), "{}", text(&doctor));
    let repaired = json_out(&cli(&ep, dir.path(), &["--stream", "denied", "setup", "-o", "json"]));
    let role_step = repaired["steps"].as_array().unwrap().iter().find(|s| s["resource"] == "role").unwrap().clone();
    assert_eq!(role_step["action"], "update", "{repaired}");
    assert_exit(&cli(&ep, dir.path(), &["--stream", "denied", "verify", "--wait", "60s"]), 0);
}

/// The emulator killed (SIGKILL) every half second while send writes 100,000 lines to a converting stream:
/// every line is still a row (a kill between writing an object and forgetting its buffer may deliver it twice:
/// duplicates, never missing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_of_the_emulator_during_conversion_lose_no_line() {
    let (kills, v) = crate::crash::lines_survive_kills(&["--format", "parquet"]).await;
    eprintln!("converting run through {kills} kills: 100,000 lines as rows, {} duplicated", v["duplicated"]);
}

/// Two converting streams share the database; a third whose table name folds to another's is refused; one is
/// turned back to delivering as sent; teardown of one keeps the database and the other's table, teardown of the
/// last removes the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_converting_streams_share_the_database_and_teardown_keeps_what_the_other_uses() {
    let env = support::start_with(|b| b.speed(60.0)).await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    let g = &env.clients.glue;
    support::setup(&ep, dir.path(), &["--stream", "Web", "--format", "parquet"]);
    support::setup(&ep, dir.path(), &["--stream", "Api", "--format", "parquet"]);
    let clash = cli(&ep, dir.path(), &["--stream", "web", "setup", "--format", "parquet"]);
    assert_exit(&clash, 2);
    assert!(text(&clash).contains("types stream `Web`'s Parquet"), "{}", text(&clash));
    let expect = cli(&ep, dir.path(), &["--stream", "Web", "verify", "--expect", "access.log"]);
    assert_exit(&expect, 2);

    let plain = json_out(&cli(&ep, dir.path(), &["--stream", "Api", "setup", "--format", "as-sent", "-o", "json"]));
    let stream_step = plain["steps"].as_array().unwrap().iter().find(|s| s["resource"] == "stream").unwrap().clone();
    assert_eq!(stream_step["action"], "update", "{plain}");
    assert!(
        stream_step["changes"].to_string().contains("format: parquet typed by Glue table firehose_kit.api → as sent")
    );
    assert_exit(&cli(&ep, dir.path(), &["--stream", "Api", "send", "--generate", "100"]), 0);
    let v = json_out(&cli(&ep, dir.path(), &["--stream", "Api", "verify", "-o", "json"]));
    assert_eq!((v["verified"].as_bool(), v["conversion"].is_null()), (Some(true), true), "lines as sent: {v}");
    support::setup(&ep, dir.path(), &["--stream", "Api", "--format", "parquet"]);

    let fates = |torn: &Value| -> Vec<(String, String)> {
        torn["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["name"].as_str().unwrap().to_string(), r["fate"].as_str().unwrap().to_string()))
            .collect()
    };
    let torn =
        json_out(&cli(&ep, dir.path(), &["--stream", "Web", "teardown", "--yes", "--keep-bucket", "-o", "json"]));
    assert!(fates(&torn).contains(&("firehose_kit.web".into(), "deleted".into())), "{torn}");
    assert!(fates(&torn).contains(&("firehose_kit".into(), "kept".into())), "the database holds Api's table: {torn}");
    assert!(g.get_table().database_name("firehose_kit").name("api").send().await.is_ok());
    let torn = json_out(&cli(&ep, dir.path(), &["--stream", "Api", "teardown", "--yes", "-o", "json"]));
    assert!(fates(&torn).contains(&("firehose_kit".into(), "deleted".into())), "{torn}");
    assert!(
        g.get_database().name("firehose_kit").send().await.is_err(),
        "the last table gone, the database too: {torn}"
    );
}
