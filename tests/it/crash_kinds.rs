//! The crash loop on the streams with stages beyond a plain write: a transformed stream (a Lambda function), a
//! converting stream (Parquet through a Glue table) and a Kinesis-sourced stream. Several producers send records
//! that name themselves, each once (never resent); the emulator is killed (SIGKILL) at random moments and
//! restarted on its data dir each time, with delivery failures injected. Then every record acknowledged on its
//! only attempt must be delivered exactly once, a record of a call that got no answer at most once, and nothing
//! refused at all. `make test` runs 10 kills per kind, `make soak` more (`FIREHOSE_KIT_CRASH_KILLS`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_firehose::types::{
    BufferingHints, DataFormatConversionConfiguration, Deserializer, ExtendedS3DestinationConfiguration,
    InputFormatConfiguration, KinesisStreamSourceConfiguration, OpenXJsonSerDe, OutputFormatConfiguration,
    ParquetSerDe, ProcessingConfiguration, Processor, ProcessorParameter, ProcessorParameterName, ProcessorType,
    SchemaConfiguration, Serializer,
};
use rand::{Rng, SeedableRng};

use super::{emulator, free_port, kill};
use crate::support::{self, REGION, bucket_and_role, clients_for, eventually};
use firehose_kit::aws::Clients;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Transformed,
    Converted,
    Kinesis,
}

const IDENTITY: &str = r#"
def handler(event, context):
    return {"records": [{"recordId": r["recordId"], "result": "Ok", "data": r["data"]} for r in event["records"]]}
"#;

/// What the producers saw, per record id: acknowledged, no answer, or refused.
#[derive(Default)]
struct Outcomes {
    acked: Vec<String>,
    unanswered: Vec<String>,
    refused: Vec<String>,
}

fn zip(name: &str, text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    w.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
    w.write_all(text.as_bytes()).unwrap();
    w.finish().unwrap();
    out.into_inner()
}

/// Grants the delivery role everything the stages read (the function, the table, the source stream).
async fn grant_all(c: &Clients, role: &str) {
    let all = r#"{"Statement":[{"Effect":"Allow","Action":["lambda:*","glue:*","kinesis:*"],"Resource":"*"}]}"#;
    c.iam.put_role_policy().role_name(role).policy_name("stages").policy_document(all).send().await.unwrap();
}

async fn function(c: &Clients) -> String {
    let trust = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = c.iam.create_role().role_name("fn").assume_role_policy_document(trust).send().await.unwrap();
    let code = aws_sdk_lambda::types::FunctionCode::builder()
        .zip_file(aws_sdk_lambda::primitives::Blob::new(zip("index.py", IDENTITY)))
        .build();
    let f = c
        .lambda
        .create_function()
        .function_name("identity")
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .handler("index.handler")
        .role(role.role().unwrap().arn())
        .code(code)
        .send()
        .await
        .unwrap();
    f.function_arn().unwrap().to_string()
}

async fn table(c: &Clients) {
    use aws_sdk_glue::types::{Column, DatabaseInput, StorageDescriptor, TableInput};
    c.glue
        .create_database()
        .database_input(DatabaseInput::builder().name("crash").build().unwrap())
        .send()
        .await
        .unwrap();
    let cols = vec![
        Column::builder().name("id").r#type("string").build().unwrap(),
        Column::builder().name("pad").r#type("string").build().unwrap(),
    ];
    let input = TableInput::builder()
        .name("records")
        .storage_descriptor(StorageDescriptor::builder().set_columns(Some(cols)).build())
        .build()
        .unwrap();
    c.glue.create_table().database_name("crash").table_input(input).send().await.unwrap();
}

/// Creates the stream of `kind` (and what it needs); returns the name producers write to.
async fn stream(c: &Clients, kind: Kind) -> String {
    let (bucket_arn, role_arn) = bucket_and_role(c, "crashk", "crashk-role").await;
    grant_all(c, "crashk-role").await;
    let mut d = ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(&bucket_arn)
        .role_arn(&role_arn)
        .prefix("data/")
        .error_output_prefix("errors/!{firehose:error-output-type}/")
        .buffering_hints(BufferingHints::builder().size_in_mbs(1).interval_in_seconds(60).build());
    match kind {
        Kind::Transformed => {
            let arn = function(c).await;
            let param =
                |n, v: &str| ProcessorParameter::builder().parameter_name(n).parameter_value(v).build().unwrap();
            let processor = Processor::builder()
                .r#type(ProcessorType::Lambda)
                .parameters(param(ProcessorParameterName::LambdaArn, &arn))
                .parameters(param(ProcessorParameterName::BufferIntervalInSeconds, "10"))
                .build()
                .unwrap();
            d = d.processing_configuration(
                ProcessingConfiguration::builder().enabled(true).processors(processor).build(),
            );
        }
        Kind::Converted => {
            table(c).await;
            let conversion = DataFormatConversionConfiguration::builder()
                .enabled(true)
                .schema_configuration(
                    SchemaConfiguration::builder()
                        .role_arn(&role_arn)
                        .database_name("crash")
                        .table_name("records")
                        .region(REGION)
                        .build(),
                )
                .input_format_configuration(
                    InputFormatConfiguration::builder()
                        .deserializer(
                            Deserializer::builder().open_x_json_ser_de(OpenXJsonSerDe::builder().build()).build(),
                        )
                        .build(),
                )
                .output_format_configuration(
                    OutputFormatConfiguration::builder()
                        .serializer(Serializer::builder().parquet_ser_de(ParquetSerDe::builder().build()).build())
                        .build(),
                )
                .build();
            d = d
                .buffering_hints(BufferingHints::builder().size_in_mbs(64).interval_in_seconds(60).build())
                .data_format_conversion_configuration(conversion);
        }
        Kind::Kinesis => {}
    }
    let mut create = c.firehose.create_delivery_stream().delivery_stream_name("Crashk");
    if kind == Kind::Kinesis {
        c.kinesis.create_stream().stream_name("crashk-source").shard_count(2).send().await.unwrap();
        eventually("the source ACTIVE", Duration::from_secs(30), || async {
            let s = c.kinesis.describe_stream_summary().stream_name("crashk-source").send().await.ok()?;
            (s.stream_description_summary()?.stream_status().as_str() == "ACTIVE").then_some(())
        })
        .await;
        let source = KinesisStreamSourceConfiguration::builder()
            .kinesis_stream_arn(format!("arn:aws:kinesis:{REGION}:{}:stream/crashk-source", support::ACCOUNT))
            .role_arn(&role_arn)
            .build()
            .unwrap();
        create = create
            .delivery_stream_type(aws_sdk_firehose::types::DeliveryStreamType::KinesisStreamAsSource)
            .kinesis_stream_source_configuration(source);
    }
    create.extended_s3_destination_configuration(d.build().unwrap()).send().await.unwrap();
    support::wait_active(c, "Crashk").await;
    if kind == Kind::Kinesis { "crashk-source".into() } else { "Crashk".into() }
}

fn record(id: &str) -> Vec<u8> {
    format!("{{\"id\":\"{id}\",\"pad\":\"{}\"}}\n", "x".repeat(200)).into_bytes()
}

/// One producer: batches of new records until `stop`; each record is sent once.
async fn produce(
    c: Clients,
    kind: Kind,
    to: String,
    producer: usize,
    stop: tokio_util::sync::CancellationToken,
    out: Arc<Mutex<Outcomes>>,
) {
    use aws_smithy_runtime_api::client::result::SdkError;
    let mut seq = 0;
    while !stop.is_cancelled() {
        let ids: Vec<String> = (0..50).map(|i| format!("p{producer}-{}", seq + i)).collect();
        seq += 50;
        // Per record: Some(true) acknowledged, Some(false) refused, None no answer.
        let answers: Vec<Option<bool>> = if kind == Kind::Kinesis {
            let entries: Vec<_> = ids
                .iter()
                .map(|id| {
                    aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                        .data(aws_sdk_kinesis::primitives::Blob::new(record(id)))
                        .partition_key(id)
                        .build()
                        .unwrap()
                })
                .collect();
            match c.kinesis_put.put_records().stream_name(&to).set_records(Some(entries)).send().await {
                Ok(o) => o.records().iter().map(|e| Some(e.error_code().is_none())).collect(),
                Err(SdkError::ServiceError(_)) => vec![Some(false); ids.len()],
                Err(_) => vec![None; ids.len()],
            }
        } else {
            let records: Vec<_> = ids
                .iter()
                .map(|id| {
                    aws_sdk_firehose::types::Record::builder()
                        .data(aws_sdk_firehose::primitives::Blob::new(record(id)))
                        .build()
                        .unwrap()
                })
                .collect();
            match c.put.put_record_batch().delivery_stream_name(&to).set_records(Some(records)).send().await {
                Ok(o) => o.request_responses().iter().map(|e| Some(e.error_code().is_none())).collect(),
                Err(SdkError::ServiceError(_)) => vec![Some(false); ids.len()],
                Err(_) => vec![None; ids.len()],
            }
        };
        let failed = answers.iter().any(|a| *a != Some(true));
        {
            let mut o = out.lock().unwrap();
            for (id, a) in ids.into_iter().zip(answers) {
                match a {
                    Some(true) => o.acked.push(id),
                    Some(false) => o.refused.push(id),
                    None => o.unanswered.push(id),
                }
            }
        }
        if failed {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Every record id in the bucket, with how often it is there.
async fn delivered(c: &Clients) -> HashMap<String, u32> {
    let mut seen: HashMap<String, u32> = HashMap::new();
    for (key, body) in support::objects(c, "crashk", "").await {
        assert!(key.starts_with("data/"), "an error output: {key}");
        let ids: Vec<String> = if key.ends_with(".parquet") {
            use arrow_array::cast::AsArray;
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(body))
                    .unwrap()
                    .build()
                    .unwrap();
            reader
                .flat_map(|b| {
                    let b = b.unwrap();
                    b.column_by_name("id")
                        .unwrap()
                        .as_string::<i32>()
                        .iter()
                        .map(|v| v.unwrap().to_string())
                        .collect::<Vec<_>>()
                })
                .collect()
        } else {
            body.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
                .collect()
        };
        for id in ids {
            *seen.entry(id).or_default() += 1;
        }
    }
    seen
}

/// The crash loop on one kind of stream; returns (kills, acknowledged, unanswered, delivered).
async fn crash_loop(kind: Kind) {
    let kills: usize = std::env::var("FIREHOSE_KIT_CRASH_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(10);
    let seed: u64 = rand::random();
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("emulator.log"));
    let addr = format!("127.0.0.1:{}", free_port());
    let failing = ["--speed", "10", "--fail-delivery", "InternalError:0.3", "--seed", "1"];
    let mut emu = emulator(&data, &addr, &failing, &log);
    let c = clients_for(&format!("http://{addr}")).await;
    let to = stream(&c, kind).await;
    let (stop, out) = (tokio_util::sync::CancellationToken::new(), Arc::new(Mutex::new(Outcomes::default())));
    let producers: Vec<_> =
        (0..3).map(|p| tokio::spawn(produce(c.clone(), kind, to.clone(), p, stop.clone(), out.clone()))).collect();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..400))).await;
        emu.0.kill().unwrap();
        emu = emulator(&data, &addr, &failing, &log);
    }
    stop.cancel();
    for p in producers {
        p.await.unwrap();
    }
    kill(&mut emu);
    let _emu = emulator(&data, &addr, &["--speed", "100"], &log);
    let out = std::mem::take(&mut *out.lock().unwrap());
    let seen = eventually("every acknowledged record delivered", Duration::from_secs(90), || async {
        let seen = delivered(&c).await;
        out.acked.iter().all(|id| seen.contains_key(id)).then_some(seen)
    })
    .await;
    let doubled: Vec<&String> = out.acked.iter().filter(|id| seen[*id] > 1).collect();
    let unanswered_twice: Vec<&String> =
        out.unanswered.iter().filter(|id| seen.get(*id).is_some_and(|&n| n > 1)).collect();
    let refused_delivered: Vec<&String> = out.refused.iter().filter(|id| seen.contains_key(*id)).collect();
    let unanswered_delivered = out.unanswered.iter().filter(|id| seen.contains_key(*id)).count();
    eprintln!(
        "crash loop {kind:?} (seed {seed}): {kills} kills, {} acknowledged, {} unanswered ({unanswered_delivered} delivered), {} refused, 0 missing, {} doubled",
        out.acked.len(),
        out.unanswered.len(),
        out.refused.len(),
        doubled.len()
    );
    assert!(out.acked.len() > 100, "the producers got through: {}", out.acked.len());
    assert!(doubled.is_empty() && unanswered_twice.is_empty(), "delivered twice: {doubled:?} {unanswered_twice:?}");
    assert!(refused_delivered.is_empty(), "refused yet delivered: {refused_delivered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kills_lose_nothing_and_double_nothing_on_a_transformed_stream() {
    crash_loop(Kind::Transformed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kills_lose_nothing_and_double_nothing_on_a_converting_stream() {
    crash_loop(Kind::Converted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kills_lose_nothing_and_double_nothing_on_a_kinesis_sourced_stream() {
    crash_loop(Kind::Kinesis).await;
}
