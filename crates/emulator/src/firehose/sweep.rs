//! The failpoint sweep: every I/O boundary ([`crate::faults::POINTS`]) × every kind of stream × an I/O error and a
//! panic there, each on the 1st and 3rd time the boundary is reached. A producer sends 60 records (resending what
//! was not acknowledged, as producers do) and the sweep then reads everything the bucket holds: every record
//! acknowledged on its only attempt must be delivered exactly once, each in its right place (transformed data, or
//! the error output with its code), and every other record at least once. Cases run in-process on the
//! emulator's services (no HTTP), on a fast clock (`--speed 1000`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use serde_json::{Value, json};

use crate::faults::{self, Action};
use crate::server::Services;

const REGION: &str = "us-east-1";
const RECORDS: usize = 60;
const BATCH: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Gzip,
    Partitioned,
    Transformed,
    Converted,
    Kinesis,
    KinesisTransformed,
}

impl Kind {
    fn sourced(self) -> bool {
        matches!(self, Kind::Kinesis | Kind::KinesisTransformed)
    }

    /// Whether record `n` is one the stream sends to an error output (the function fails it, or it does not
    /// convert).
    fn fails(self, n: usize) -> bool {
        match self {
            // The function fails records of the first and last batches only: the middle one is all transformed
            // (an answer for one lane alone), the others go to both lanes.
            Kind::Transformed | Kind::KinesisTransformed => n % 40 == 3,
            Kind::Converted => n % 10 == 3,
            _ => false,
        }
    }
}

/// What one case found.
#[derive(Debug, Default)]
struct Outcome {
    fired: u32,
    acked_once: usize,
    retried: usize,
    missing: Vec<String>,
    doubled: Vec<String>,
    misplaced: Vec<String>,
}

fn record(kind: Kind, n: usize) -> Vec<u8> {
    let k = if n.is_multiple_of(2) { "a" } else { "b" };
    let value = if kind == Kind::Converted && kind.fails(n) { json!(format!("x{n}")) } else { json!(n) };
    format!("{}\n", json!({"id": format!("r{n}"), "k": k, "n": value})).into_bytes()
}

const FUNCTION: &str = r#"
import base64, json
def handler(event, context):
    out = []
    for r in event["records"]:
        doc = json.loads(base64.b64decode(r["data"]))
        if doc["n"] % 40 == 3:
            out.append({"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]})
        else:
            doc["t"] = "x"
            data = base64.b64encode((json.dumps(doc) + "\n").encode()).decode()
            out.append({"recordId": r["recordId"], "result": "Ok", "data": data})
    return {"records": out}
"#;

struct Case {
    kind: Kind,
    id: String,
    svc: Arc<Services>,
    _dir: tempfile::TempDir,
    _lock: crate::DataDirLock,
}

fn role_arn() -> String {
    "arn:aws:iam::000000000000:role/r".into()
}

async fn firehose(svc: &Services, op: &str, body: Value) -> Value {
    let r = svc.firehose.handle(op, Bytes::from(body.to_string()), REGION).await;
    assert_eq!(r.status(), 200, "{op}: {}", String::from_utf8_lossy(r.body()));
    serde_json::from_slice(r.body()).unwrap()
}

fn iam(svc: &Services, form: &str) {
    let r = svc.iam.handle_iam(None, form.as_bytes(), REGION, "t");
    assert_eq!(r.status(), 200, "{form}: {}", String::from_utf8_lossy(r.body()));
}

fn enc(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl Case {
    async fn start(kind: Kind, point: &str, action: Action) -> Case {
        let id = format!("c{:08x}", rand::random::<u32>());
        let dir = tempfile::Builder::new().prefix(&format!("sweep-{id}-")).tempdir().unwrap();
        let config = crate::EmulatorConfig {
            addr: "127.0.0.1:0".into(),
            create_delay: Duration::ZERO,
            delete_delay: Duration::ZERO,
            speed: 1000.0,
            // Buffers spill to the journal past a few records, so objects are streamed from it too.
            memory_limit: 256,
            ..Default::default()
        };
        let (_listener, svc, lock) = crate::open(&config, dir.path(), config.addr.parse().unwrap()).await.unwrap();
        let trust = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":["firehose.amazonaws.com","lambda.amazonaws.com"]},"Action":"sts:AssumeRole"}]}"#;
        iam(&svc, &format!("Action=CreateRole&RoleName=r&AssumeRolePolicyDocument={}", enc(trust)));
        let all = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        iam(&svc, &format!("Action=PutRolePolicy&RoleName=r&PolicyName=p&PolicyDocument={}", enc(all)));
        svc.firehose.ctx.store.create_bucket("b", None).unwrap();
        let case = Case { kind, id, svc, _dir: dir, _lock: lock };
        case.create_stream().await;
        let _ = (point, action);
        case
    }

    fn function_arn(&self) -> String {
        format!("arn:aws:lambda:{REGION}:000000000000:function:f-{}", self.id)
    }

    async fn create_function(&self) {
        let zip = {
            use std::io::Write;
            let mut out = std::io::Cursor::new(Vec::new());
            let mut w = zip::ZipWriter::new(&mut out);
            w.start_file("index.py", zip::write::SimpleFileOptions::default()).unwrap();
            w.write_all(FUNCTION.as_bytes()).unwrap();
            w.finish().unwrap();
            out.into_inner()
        };
        let body = json!({
            "FunctionName": format!("f-{}", self.id),
            "Runtime": "python3.12",
            "Handler": "index.handler",
            "Role": role_arn(),
            "Code": {"ZipFile": base64_simd::STANDARD.encode_to_string(&zip)},
        });
        let r = self
            .svc
            .lambda
            .handle(
                &http::Method::POST,
                "/2015-03-31/functions",
                None,
                &http::HeaderMap::new(),
                Bytes::from(body.to_string()),
                REGION,
            )
            .await;
        assert!(r.status().is_success(), "CreateFunction: {}", String::from_utf8_lossy(r.body()));
    }

    fn glue(&self, op: &str, body: Value) {
        let r = self.svc.glue.handle(op, body.to_string().as_bytes(), REGION);
        assert_eq!(r.status(), 200, "{op}: {}", String::from_utf8_lossy(r.body()));
    }

    fn kinesis(&self, op: &str, body: Value) -> Value {
        let r = self.svc.kinesis.handle(op, body.to_string().as_bytes(), REGION, None);
        assert_eq!(r.status(), 200, "{op}: {}", String::from_utf8_lossy(r.body()));
        serde_json::from_slice(r.body()).unwrap()
    }

    async fn create_stream(&self) {
        let mut destination = json!({
            "RoleARN": role_arn(),
            "BucketARN": "arn:aws:s3:::b",
            "Prefix": "data/",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        });
        match self.kind {
            Kind::Gzip => destination["CompressionFormat"] = json!("GZIP"),
            Kind::Partitioned => {
                destination["Prefix"] = json!("data/k=!{partitionKeyFromQuery:k}/");
                destination["BufferingHints"]["SizeInMBs"] = json!(64);
                destination["DynamicPartitioningConfiguration"] = json!({"Enabled": true});
                destination["ProcessingConfiguration"] = json!({"Enabled": true, "Processors": [{
                    "Type": "MetadataExtraction",
                    "Parameters": [
                        {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{k: .k}"},
                        {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
                    ],
                }]});
            }
            Kind::Transformed | Kind::KinesisTransformed => {
                self.create_function().await;
                destination["ProcessingConfiguration"] = json!({"Enabled": true, "Processors": [{
                    "Type": "Lambda",
                    "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": self.function_arn()}],
                }]});
            }
            Kind::Converted => {
                self.glue("CreateDatabase", json!({"DatabaseInput": {"Name": "db"}}));
                let columns = json!([{"Name": "id", "Type": "string"}, {"Name": "k", "Type": "string"}, {"Name": "n", "Type": "int"}]);
                let table = json!({"Name": format!("t_{}", self.id), "StorageDescriptor": {"Columns": columns}});
                self.glue("CreateTable", json!({"DatabaseName": "db", "TableInput": table}));
                destination["BufferingHints"]["SizeInMBs"] = json!(64);
                destination["DataFormatConversionConfiguration"] = json!({
                    "Enabled": true,
                    "SchemaConfiguration": {"RoleARN": role_arn(), "DatabaseName": "db", "TableName": format!("t_{}", self.id), "Region": REGION},
                    "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                    "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}},
                });
            }
            Kind::Plain | Kind::Kinesis => {}
        }
        let mut body = json!({"DeliveryStreamName": "S", "ExtendedS3DestinationConfiguration": destination});
        if self.kind.sourced() {
            self.kinesis("CreateStream", json!({"StreamName": "K", "ShardCount": 2}));
            body["DeliveryStreamType"] = json!("KinesisStreamAsSource");
            body["KinesisStreamSourceConfiguration"] = json!({
                "KinesisStreamARN": format!("arn:aws:kinesis:{REGION}:000000000000:stream/K"),
                "RoleARN": role_arn(),
            });
        }
        firehose(&self.svc, "CreateDeliveryStream", body).await;
    }

    /// Sends one batch; returns per record whether it was acknowledged (a call that failed or panicked
    /// acknowledges none).
    async fn put(&self, batch: &[(usize, Vec<u8>)]) -> Vec<bool> {
        let data = |r: &Vec<u8>| base64_simd::STANDARD.encode_to_string(r);
        let (op, body) = if self.kind.sourced() {
            let records: Vec<Value> =
                batch.iter().map(|(n, r)| json!({"Data": data(r), "PartitionKey": format!("p{n}")})).collect();
            ("PutRecords", json!({"StreamName": "K", "Records": records}))
        } else {
            let records: Vec<Value> = batch.iter().map(|(_, r)| json!({"Data": data(r)})).collect();
            ("PutRecordBatch", json!({"DeliveryStreamName": "S", "Records": records}))
        };
        let svc = self.svc.clone();
        let kinesis = self.kind.sourced();
        let call = async move {
            let body = body.to_string();
            if kinesis {
                svc.kinesis.handle(op, body.as_bytes(), REGION, None)
            } else {
                svc.firehose.handle(op, Bytes::from(body), REGION).await
            }
        };
        let Ok(r) = std::panic::AssertUnwindSafe(call).catch_unwind().await else {
            return vec![false; batch.len()];
        };
        if r.status() != 200 {
            return vec![false; batch.len()];
        }
        let out: Value = serde_json::from_slice(r.body()).unwrap();
        let entries = out.get("RequestResponses").or_else(|| out.get("Records")).and_then(Value::as_array).unwrap();
        entries.iter().map(|e| e.get("ErrorCode").is_none()).collect()
    }

    /// Sends every record, resending what was not acknowledged; returns per record whether its first attempt was.
    async fn produce(&self) -> Vec<bool> {
        let mut first = vec![None; RECORDS];
        let mut left: Vec<usize> = (0..RECORDS).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !left.is_empty() {
            assert!(Instant::now() < deadline, "{} records never acknowledged", left.len());
            let mut next = Vec::new();
            for chunk in left.chunks(BATCH) {
                let batch: Vec<(usize, Vec<u8>)> = chunk.iter().map(|&n| (n, record(self.kind, n))).collect();
                for (&n, ok) in chunk.iter().zip(self.put(&batch).await) {
                    first[n].get_or_insert(ok);
                    if !ok {
                        next.push(n);
                    }
                }
                // Past the 60 ms interval (60 s at --speed 1000): each batch is an object of its own.
                tokio::time::sleep(Duration::from_millis(80)).await;
                self.tick().await;
            }
            left = next;
        }
        first.into_iter().map(|f| f.unwrap_or(false)).collect()
    }

    /// One turn of the background work the server's tickers do.
    async fn tick(&self) {
        let fh = self.svc.firehose.clone();
        let kinesis = self.kind.sourced();
        let _ = tokio::task::spawn_blocking(move || {
            fh.tick(false);
            if kinesis {
                fh.read_sources();
            }
        })
        .await;
    }

    /// Every record id the bucket holds: where (data or an error output, with the error code) and how often.
    fn delivered(&self) -> BTreeMap<String, Vec<String>> {
        let store = &self.svc.firehose.ctx.store;
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let page = store.list("b", "", None, None, 10_000).unwrap();
        for o in &page.objects {
            let bytes = std::fs::read(store.get("b", &o.key).unwrap().1).unwrap();
            for (id, place) in ids_in(&o.key, &bytes) {
                found.entry(id).or_default().push(place);
            }
        }
        found
    }

    async fn run(self, point: &'static str, action: Action) -> Outcome {
        let armed = faults::arm(point, &self.id, action, &[1, 3]);
        let first = self.produce().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.tick().await;
            let found = self.delivered();
            if (0..RECORDS).all(|n| found.contains_key(&format!("r{n}"))) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // What a flush at shutdown would deliver too, then the partitions' idle removal and the stream's deletion.
        assert!(self.svc.firehose.flush_all(Duration::from_secs(10)).await, "everything drains");
        self.tick().await;
        let found = self.delivered();
        firehose(&self.svc, "DeleteDeliveryStream", json!({"DeliveryStreamName": "S"})).await;
        let journals = self._dir.path().join("firehose/journal");
        let deadline = Instant::now() + Duration::from_secs(10);
        // (A removal the failpoint failed leaves it to the next start, which removes journals no stream owns.)
        while !(point == faults::DIR_REMOVE && armed.0.fired() > 0)
            && std::fs::read_dir(&journals)
                .unwrap()
                .flatten()
                .any(|e| !e.file_name().to_string_lossy().starts_with('.'))
        {
            assert!(
                Instant::now() < deadline,
                "the deleted stream's journal directory is removed: {:?}",
                std::fs::read_dir(&journals).unwrap().flatten().map(|e| e.path()).collect::<Vec<_>>()
            );
            self.tick().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let fired = armed.0.fired();
        drop(armed);
        let mut outcome = Outcome { fired, ..Default::default() };
        for (n, once) in first.iter().enumerate() {
            let id = format!("r{n}");
            let places = found.get(&id).cloned().unwrap_or_default();
            if *once {
                outcome.acked_once += 1;
            } else {
                outcome.retried += 1;
            }
            match places.len() {
                0 => outcome.missing.push(id.clone()),
                1 => {}
                _ if *once => outcome.doubled.push(format!("{id} in {places:?}")),
                _ => {}
            }
            let want = if self.kind.fails(n) { "errors/" } else { "data/" };
            if places.iter().any(|p| !p.starts_with(want)) {
                outcome.misplaced.push(format!("{id} in {places:?}"));
            }
        }
        outcome
    }
}

/// The record ids an object holds, each with where it was found (`data/...`, or `errors/<type>/<code>`).
fn ids_in(key: &str, bytes: &[u8]) -> Vec<(String, String)> {
    let place = key.split('/').take(2).collect::<Vec<_>>().join("/");
    if key.ends_with(".parquet") {
        return parquet_ids(bytes).into_iter().map(|id| (id, place.clone())).collect();
    }
    let text = if key.ends_with(".gz") {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out).unwrap();
        out
    } else {
        bytes.to_vec()
    };
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let doc: Value =
            serde_json::from_slice(line).unwrap_or_else(|e| panic!("{key}: {e}: {}", String::from_utf8_lossy(line)));
        if key.starts_with("errors/") {
            let code = doc["errorCode"].as_str().or(doc["lastErrorCode"].as_str()).unwrap_or("?").to_string();
            let raw = base64_simd::STANDARD.decode_to_vec(doc["rawData"].as_str().unwrap()).unwrap();
            let original: Value = serde_json::from_slice(raw.trim_ascii_end()).unwrap();
            out.push((original["id"].as_str().unwrap().to_string(), format!("{place}/{code}")));
        } else {
            assert!(key.starts_with("data/"), "an object outside the prefixes: {key}");
            out.push((doc["id"].as_str().unwrap().to_string(), place.clone()));
        }
    }
    out
}

fn parquet_ids(bytes: &[u8]) -> Vec<String> {
    use arrow_array::cast::AsArray;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(bytes))
        .unwrap()
        .build()
        .unwrap();
    let mut ids = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let column = batch.column_by_name("id").unwrap().as_string::<i32>();
        ids.extend(column.iter().map(|v| v.unwrap_or_default().to_string()));
    }
    ids
}

/// Sweeps every failpoint for one kind of stream; fails naming each case that lost, doubled or misplaced a record.
async fn sweep(kind: Kind) {
    let mut problems = Vec::new();
    let mut table = Vec::new();
    for &point in faults::POINTS {
        for action in [Action::Error, Action::Panic] {
            // A case that panics (a hang past its deadline, a call that never answers) is a failure of its own.
            let run = tokio::spawn(async move { Case::start(kind, point, action).await.run(point, action).await });
            let o = match run.await {
                Ok(o) => o,
                Err(e) => {
                    problems.push(format!("{kind:?} {point} {action:?}: the case failed: {e}"));
                    table.push(format!("{kind:?} {point} {action:?}: the case failed"));
                    continue;
                }
            };
            table.push(format!(
                "{kind:?} {point} {action:?}: fired {}, acknowledged at once {}, resent {}, missing {}, doubled {}, misplaced {}",
                o.fired,
                o.acked_once,
                o.retried,
                o.missing.len(),
                o.doubled.len(),
                o.misplaced.len()
            ));
            if !(o.missing.is_empty() && o.doubled.is_empty() && o.misplaced.is_empty()) {
                problems.push(format!("{kind:?} {point} {action:?}: {o:?}"));
            }
        }
    }
    eprintln!("{}", table.join("\n"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

macro_rules! sweeps {
    ($($name:ident: $kind:expr,)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            sweep($kind).await;
        }
    )*};
}

sweeps! {
    every_failpoint_loses_and_doubles_nothing_plain: Kind::Plain,
    every_failpoint_loses_and_doubles_nothing_gzip: Kind::Gzip,
    every_failpoint_loses_and_doubles_nothing_partitioned: Kind::Partitioned,
    every_failpoint_loses_and_doubles_nothing_transformed: Kind::Transformed,
    every_failpoint_loses_and_doubles_nothing_converted: Kind::Converted,
    every_failpoint_loses_and_doubles_nothing_kinesis: Kind::Kinesis,
    every_failpoint_loses_and_doubles_nothing_kinesis_transformed: Kind::KinesisTransformed,
}
