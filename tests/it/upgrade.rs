//! A data dir written by the previous release (format 1: `tests/fixtures/datadir-v1.tar.gz`, made by
//! `tests/fixtures/make_datadir_v1.py` with the 453dabe build) holds journaled, undelivered records of every kind
//! of stream. This release opens it and delivers each record exactly once, where its stream sends it; it then
//! says the data dir is of its own format. A data dir of a newer format is refused, naming what to do.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::support::{self, eventually};

/// Unpacks the fixture into `into` (its `data/`).
fn unpack(into: &Path) -> std::path::PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datadir-v1.tar.gz");
    let status = std::process::Command::new("tar").arg("xzf").arg(&fixture).arg("-C").arg(into).status().unwrap();
    assert!(status.success(), "tar xzf {}", fixture.display());
    into.join("data")
}

/// Where each record id was found: `<first key segment>` (or `errors/<stream>/<type>`), per occurrence.
fn placed(objects: &[(String, Vec<u8>)]) -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, body) in objects {
        let place = if key.starts_with("errors/") {
            key.split('/').take(3).collect::<Vec<_>>().join("/")
        } else {
            key.split('/').next().unwrap().to_string()
        };
        let ids: Vec<(String, bool)> = if key.ends_with(".parquet") {
            parquet_ids(body).into_iter().map(|id| (id, false)).collect()
        } else {
            let text = if key.ends_with(".gz") {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out).unwrap();
                out
            } else {
                body.clone()
            };
            text.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|line| {
                    let doc: serde_json::Value = serde_json::from_slice(line).unwrap();
                    match doc["rawData"].as_str() {
                        Some(raw) => {
                            let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, raw).unwrap();
                            let original: serde_json::Value = serde_json::from_slice(raw.trim_ascii_end()).unwrap();
                            (original["id"].as_str().unwrap().to_string(), false)
                        }
                        None => (doc["id"].as_str().unwrap().to_string(), doc["t"] == "x"),
                    }
                })
                .collect()
        };
        for (id, transformed) in ids {
            let at = if transformed { format!("{place} (transformed)") } else { place.clone() };
            found.entry(id).or_default().push(at);
        }
    }
    found
}

fn parquet_ids(body: &[u8]) -> Vec<String> {
    use arrow_array::cast::AsArray;
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(body.to_vec()))
            .unwrap()
            .build()
            .unwrap();
    reader
        .flat_map(|b| {
            let b = b.unwrap();
            let ids: Vec<String> =
                b.column_by_name("id").unwrap().as_string::<i32>().iter().map(|v| v.unwrap().to_string()).collect();
            ids
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_release_data_dir_is_delivered_once_and_upgraded() {
    let tmp = tempfile::tempdir().unwrap();
    let data = unpack(tmp.path());
    assert!(!data.join("format.json").exists(), "the fixture is of the first format");
    let env = support::start_with(|b| b.data_dir(&data).speed(1000.0)).await;
    let want: usize = 7 * 20;
    let objects = eventually("every journaled record delivered", Duration::from_secs(60), || async {
        let objects = support::objects(&env.clients, "fixture", "").await;
        (placed(&objects).len() >= want).then_some(objects)
    })
    .await;
    // Nothing more comes: every buffer delivered, none twice.
    let env2 = env.emu;
    env2.shutdown().await;
    let found = placed(&objects);
    let mut problems = Vec::new();
    for stream in ["Plain", "Gzip", "Parted", "Shaped", "Typed", "Chained", "ChainedShaped"] {
        for n in 0..20 {
            let id = format!("{stream}-{n}");
            let transforms = stream.ends_with("Shaped");
            let want = match (transforms, n % 10 == 3) {
                (true, true) => format!("errors/{}/processing-failed", stream.to_lowercase()),
                (true, false) => format!("{} (transformed)", stream.to_lowercase()),
                (false, _) => stream.to_lowercase(),
            };
            let places = found.get(&id).cloned().unwrap_or_default();
            if places != [want.clone()] {
                problems.push(format!("{id}: {places:?}, not [{want}]"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let format: serde_json::Value = serde_json::from_slice(&std::fs::read(data.join("format.json")).unwrap()).unwrap();
    assert_eq!(format["format"], firehose_kit_emulator::DATA_FORMAT);
}

#[tokio::test]
async fn a_data_dir_of_a_newer_format_is_refused_naming_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("format.json"), r#"{"format": 99, "written_by": "9.0.0"}"#).unwrap();
    let err = firehose_kit_emulator::Emulator::builder()
        .addr("127.0.0.1:0")
        .data_dir(tmp.path())
        .start()
        .await
        .err()
        .expect("refused");
    let said = err.to_string();
    assert!(said.contains("written by a newer firehose-kit (data format 99"), "{said}");
    assert!(said.contains("give this one another --data-dir"), "{said}");
}

/// A stream whose stored configuration does not read back (a hand-edited `streams.json`: a processor parameter out
/// of range) accepts nothing and says why, in PutRecordBatch's error and Describe's `FailureDescription`; its
/// journaled records wait, never delivered around the processor, until UpdateDestination gives it a configuration
/// that runs: then they are delivered, transformed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_configuration_that_does_not_read_back_stops_the_stream_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let data = unpack(tmp.path());
    let path = data.join("firehose/streams.json");
    let mut streams: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let shaped = streams.as_array_mut().unwrap().iter_mut().find(|s| s["name"] == "Shaped").unwrap();
    let params = shaped["destination"]["processing"]["Processors"][0]["Parameters"].as_array_mut().unwrap();
    params.push(serde_json::json!({"ParameterName": "BufferSizeInMBs", "ParameterValue": "99"}));
    std::fs::write(&path, serde_json::to_vec(&streams).unwrap()).unwrap();
    let env = support::start_with(|b| b.data_dir(&data).speed(1000.0)).await;
    let mut connection = support::connection(env.emu.endpoint());
    connection.region = Some("us-east-1".into());
    let c = firehose_kit::aws::Clients::connect(&connection).await.unwrap();
    // The other streams deliver; this one holds its records.
    eventually("Plain delivered", Duration::from_secs(30), || async {
        let o = support::objects(&c, "fixture", "plain/").await;
        (!o.is_empty()).then_some(())
    })
    .await;
    assert!(support::objects(&c, "fixture", "shaped/").await.is_empty(), "nothing delivered around the processor");
    let refused = support::try_put_batch(&c, "Shaped", &[b"x\n".to_vec()]).await.unwrap_err();
    let refused = refused.into_service_error().to_string();
    assert!(refused.contains("accepts no records") && refused.contains("BufferSizeInMBs `99`"), "{refused}");
    let d = c.firehose.describe_delivery_stream().delivery_stream_name("Shaped").send().await.unwrap();
    let d = d.delivery_stream_description().unwrap();
    let failure = d.failure_description().expect("FailureDescription says why");
    assert!(failure.details().contains("BufferSizeInMBs `99`"), "{failure:?}");
    // A configuration that runs: the journaled records are delivered, transformed.
    let processing: aws_sdk_firehose::types::ProcessingConfiguration = {
        use aws_sdk_firehose::types::{
            ProcessingConfiguration, Processor, ProcessorParameter, ProcessorParameterName, ProcessorType,
        };
        let p = |n, v: &str| ProcessorParameter::builder().parameter_name(n).parameter_value(v).build().unwrap();
        let processor = Processor::builder()
            .r#type(ProcessorType::Lambda)
            .parameters(p(ProcessorParameterName::LambdaArn, "arn:aws:lambda:us-east-1:000000000000:function:shape"))
            .parameters(p(ProcessorParameterName::BufferIntervalInSeconds, "1"))
            .build()
            .unwrap();
        ProcessingConfiguration::builder().enabled(true).processors(processor).build()
    };
    let update =
        aws_sdk_firehose::types::ExtendedS3DestinationUpdate::builder().processing_configuration(processing).build();
    c.firehose
        .update_destination()
        .delivery_stream_name("Shaped")
        .current_delivery_stream_version_id(d.version_id())
        .destination_id("destinationId-000000000001")
        .extended_s3_destination_update(update)
        .send()
        .await
        .unwrap();
    let objects = eventually("Shaped delivered", Duration::from_secs(30), || async {
        let o = support::objects(&c, "fixture", "").await;
        let found = placed(&o);
        (0..20).all(|n| found.contains_key(&format!("Shaped-{n}"))).then_some(o)
    })
    .await;
    let found = placed(&objects);
    for n in 0..20 {
        let want = if n % 10 == 3 { "errors/shaped/processing-failed" } else { "shaped (transformed)" };
        assert_eq!(found[&format!("Shaped-{n}")], [want], "Shaped-{n}");
    }
}
