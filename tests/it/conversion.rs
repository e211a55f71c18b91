//! Record format conversion: a Glue table (through aws-sdk-glue) and a converting stream, the create-time rules
//! with AWS's messages, `send` turning Apache lines into the JSON the table reads, the Parquet objects read back
//! with the `parquet` crate (typed columns, one row per line), a role without `glue:GetTable` logged, and
//! `verify` naming a table that is not the Apache one (its rows cannot reproduce the lines). pyarrow reads the same objects in `make test-compat`.

use std::time::Duration;

use aws_sdk_firehose::types::{
    BufferingHints, CloudWatchLoggingOptions, ExtendedS3DestinationConfiguration, OutputFormatConfiguration, Serializer,
};
use aws_sdk_glue::types::{Column, DatabaseInput, StorageDescriptor, TableInput};

use crate::support::{self, REGION, assert_exit, cli, eventually};

fn glue(endpoint: &str) -> aws_sdk_glue::Client {
    let conf = aws_sdk_glue::Config::builder()
        .behavior_version(aws_sdk_glue::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_glue::config::Region::new(REGION))
        .credentials_provider(aws_sdk_glue::config::Credentials::new("test", "test", None, None, "test"))
        .build();
    aws_sdk_glue::Client::from_conf(conf)
}

async fn table(g: &aws_sdk_glue::Client, columns: &[(&str, &str)]) {
    g.create_database().database_input(DatabaseInput::builder().name("weblogs").build().unwrap()).send().await.unwrap();
    let cols: Vec<Column> =
        columns.iter().map(|(n, t)| Column::builder().name(*n).r#type(*t).build().unwrap()).collect();
    let input = TableInput::builder()
        .name("apache")
        .storage_descriptor(StorageDescriptor::builder().set_columns(Some(cols)).build())
        .build()
        .unwrap();
    g.create_table().database_name("weblogs").table_input(input).send().await.unwrap();
}

fn destination(bucket_arn: &str, role_arn: &str, size_mib: i32, table: &str) -> ExtendedS3DestinationConfiguration {
    // The configuration setup --format parquet sends (OpenX in, Parquet out), on this test's own table.
    let conversion =
        firehose_kit::aws::firehose::conversion_config(Some(&firehose_kit::aws::firehose::ConversionSpec {
            database: "weblogs".into(),
            table: table.into(),
            role_arn: role_arn.into(),
            format: "parquet".into(),
        }));
    ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(bucket_arn)
        .role_arn(role_arn)
        .prefix("parquet/")
        .error_output_prefix("errors/!{firehose:error-output-type}/")
        .buffering_hints(BufferingHints::builder().size_in_mbs(size_mib).interval_in_seconds(60).build())
        .data_format_conversion_configuration(conversion)
        .cloud_watch_logging_options(
            CloudWatchLoggingOptions::builder()
                .enabled(true)
                .log_group_name("/aws/kinesisfirehose/Conv")
                .log_stream_name("DestinationDelivery")
                .build(),
        )
        .build()
        .unwrap()
}

async fn create(c: &firehose_kit::aws::Clients, dest: ExtendedS3DestinationConfiguration) -> Result<(), String> {
    c.firehose
        .create_delivery_stream()
        .delivery_stream_name("Conv")
        .extended_s3_destination_configuration(dest)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.into_service_error().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_lines_become_parquet_rows_of_the_glue_table() {
    let env = support::start_with(|b| b.speed(60.0)).await;
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    let c = &env.clients;
    let g = glue(&ep);
    table(&g, &[("host", "string"), ("status", "int"), ("bytes", "bigint"), ("time", "timestamp"), ("path", "string")])
        .await;
    let (bucket_arn, role_arn) = support::bucket_and_role(c, "conv", "conv-role").await;
    // The create-time rules, with AWS's messages.
    let small = create(c, destination(&bucket_arn, &role_arn, 5, "apache")).await.unwrap_err();
    assert!(small.contains("BufferingHints.SizeInMBs must be at least 64"), "{small}");
    let missing = create(c, destination(&bucket_arn, &role_arn, 64, "nope")).await.unwrap_err();
    assert!(missing.contains("EntityNotFoundException"), "{missing}");
    let mut gzip = destination(&bucket_arn, &role_arn, 64, "apache");
    gzip.compression_format = Some(aws_sdk_firehose::types::CompressionFormat::Gzip);
    let gzipped = create(c, gzip).await.unwrap_err();
    assert!(gzipped.contains("CompressionFormat must be UNCOMPRESSED"), "{gzipped}");
    let mut orc = destination(&bucket_arn, &role_arn, 64, "apache");
    let serializer = Serializer::builder().orc_ser_de(aws_sdk_firehose::types::OrcSerDe::builder().build()).build();
    if let Some(conv) = orc.data_format_conversion_configuration.as_mut() {
        conv.output_format_configuration = Some(OutputFormatConfiguration::builder().serializer(serializer).build());
    }
    let refused = create(c, orc).await.unwrap_err();
    assert!(refused.contains("ORC output (OrcSerDe) is not modelled"), "refused plainly, not stored: {refused}");
    create(c, destination(&bucket_arn, &role_arn, 64, "apache")).await.unwrap();
    support::wait_active(c, "Conv").await;
    // The role may not read the table yet: the failure is logged, and nothing is lost.
    c.logs.create_log_group().log_group_name("/aws/kinesisfirehose/Conv").send().await.unwrap();
    let group = c.logs.create_log_stream().log_group_name("/aws/kinesisfirehose/Conv");
    group.log_stream_name("DestinationDelivery").send().await.unwrap();
    let logging = r#"{"Statement":[{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"*"}]}"#;
    c.iam.put_role_policy().role_name("conv-role").policy_name("log").policy_document(logging).send().await.unwrap();
    let sent = cli(&ep, dir.path(), &["--stream", "Conv", "send", "--generate", "2000"]);
    assert_exit(&sent, 0);
    assert!(String::from_utf8_lossy(&sent.stderr).contains("sending the lines as JSON"));
    eventually("DataFormatConversion.AccessDenied logged", Duration::from_secs(30), || async {
        let out = c.logs.filter_log_events().log_group_name("/aws/kinesisfirehose/Conv").send().await.ok()?;
        out.events()
            .iter()
            .any(|e| e.message().unwrap_or("").contains("DataFormatConversion.AccessDenied"))
            .then_some(())
    })
    .await;
    let read = r#"{"Statement":[{"Effect":"Allow","Action":["glue:GetTable","glue:GetTableVersion","glue:GetTableVersions"],"Resource":"*"}]}"#;
    c.iam.put_role_policy().role_name("conv-role").policy_name("glue").policy_document(read).send().await.unwrap();
    let objects = eventually("the Parquet objects", Duration::from_secs(60), || async {
        let o = support::objects(c, "conv", "parquet/").await;
        (!o.is_empty()).then_some(o)
    })
    .await;
    let mut rows = 0;
    for (key, body) in &objects {
        assert!(key.ends_with(".parquet"), "{key}");
        let reader = parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(body.clone())).unwrap();
        let meta = parquet::file::reader::FileReader::metadata(&reader);
        let schema = meta.file_metadata().schema_descr();
        let names: Vec<&str> = schema.columns().iter().map(|c| c.name()).collect();
        assert_eq!(names, ["host", "status", "bytes", "time", "path"]);
        assert_eq!(schema.column(1).physical_type(), parquet::basic::Type::INT32);
        rows += meta.file_metadata().num_rows();
    }
    assert_eq!(rows, 2000, "one row per line");
    assert!(support::objects(c, "conv", "errors/").await.is_empty(), "every generated line converts");
    // Rows of a table that is not the Apache one do not reproduce the lines: verify says so, not OK.
    let verified = cli(&ep, dir.path(), &["--stream", "Conv", "verify", "--no-wait"]);
    assert_exit(&verified, 1);
    let said = String::from_utf8_lossy(&verified.stdout);
    assert!(said.contains("not the Apache table setup makes: column 2 is `status`, not `ident`"), "{said}");
}

/// Two records whose times no timestamp column holds (9.3e15 and 9.3e18: milliseconds past year 9999) among ten
/// that convert: ten Parquet rows, and the two in `format-conversion-failed` with AWS's code. The conversion checks
/// the record's numbers in every build: never a panic (which lost the whole buffer), never a wrapped time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_times_fail_alone_with_their_code() {
    let env = support::start_with(|b| b.speed(60.0)).await;
    let c = &env.clients;
    table(&glue(env.emu.endpoint()), &[("n", "int"), ("ts", "timestamp")]).await;
    let (bucket_arn, role_arn) = support::bucket_and_role(c, "times", "times-role").await;
    let read = r#"{"Statement":[{"Effect":"Allow","Action":["glue:GetTable","glue:GetTableVersion","glue:GetTableVersions"],"Resource":"*"}]}"#;
    c.iam.put_role_policy().role_name("times-role").policy_name("glue").policy_document(read).send().await.unwrap();
    create(c, destination(&bucket_arn, &role_arn, 64, "apache")).await.unwrap();
    support::wait_active(c, "Conv").await;
    let mut records: Vec<Vec<u8>> = (0..10).map(|n| format!(r#"{{"n":{n},"ts":1796205600}}"#).into_bytes()).collect();
    records.push(br#"{"n":100,"ts":9300000000000000}"#.to_vec());
    records.push(br#"{"n":101,"ts":9300000000000000000}"#.to_vec());
    let out = support::put_batch(c, "Conv", &records).await;
    assert_eq!(out.failed_put_count(), 0);
    let failed = eventually("the format-conversion-failed output", Duration::from_secs(30), || async {
        let o = support::objects(c, "times", "errors/format-conversion-failed/").await;
        (!o.is_empty()).then_some(o)
    })
    .await;
    let docs: Vec<serde_json::Value> = failed
        .iter()
        .flat_map(|(_, body)| {
            body.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap())
        })
        .collect();
    let mut raw: Vec<String> = docs
        .iter()
        .map(|d| {
            assert_eq!(d["lastErrorCode"], "DataFormatConversion.MalformedData", "{d}");
            assert!(d["lastErrorMessage"].as_str().unwrap().contains("out of the range of a timestamp"), "{d}");
            String::from_utf8(
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, d["rawData"].as_str().unwrap())
                    .unwrap(),
            )
            .unwrap()
        })
        .collect();
    raw.sort();
    assert_eq!(raw, [r#"{"n":100,"ts":9300000000000000}"#, r#"{"n":101,"ts":9300000000000000000}"#]);
    let objects = support::objects(c, "times", "parquet/").await;
    let rows: i64 = objects
        .iter()
        .map(|(_, body)| {
            let reader = parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(body.clone())).unwrap();
            parquet::file::reader::FileReader::metadata(&reader).file_metadata().num_rows()
        })
        .sum();
    assert_eq!(rows, 10, "the ten records that convert are rows");
}

/// A schema pinned to the table's first version (`SchemaConfiguration.VersionId: "1"`) writes that version's
/// columns after the table gained one; a version that does not exist is logged as EntityNotFound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_schema_version_writes_its_own_columns() {
    let env = support::start_with(|b| b.speed(60.0)).await;
    let c = &env.clients;
    let g = glue(env.emu.endpoint());
    table(&g, &[("host", "string")]).await;
    let cols =
        [("host", "string"), ("status", "int")].map(|(n, t)| Column::builder().name(n).r#type(t).build().unwrap());
    let input = TableInput::builder()
        .name("apache")
        .storage_descriptor(StorageDescriptor::builder().set_columns(Some(cols.to_vec())).build())
        .build()
        .unwrap();
    g.update_table().database_name("weblogs").table_input(input).send().await.unwrap();
    let (bucket_arn, role_arn) = support::bucket_and_role(c, "conv", "conv-role").await;
    let read = r#"{"Statement":[{"Effect":"Allow","Action":["glue:GetTable","glue:GetTableVersion","glue:GetTableVersions"],"Resource":"*"}]}"#;
    c.iam.put_role_policy().role_name("conv-role").policy_name("glue").policy_document(read).send().await.unwrap();
    let mut dest = destination(&bucket_arn, &role_arn, 64, "apache");
    if let Some(schema) =
        dest.data_format_conversion_configuration.as_mut().and_then(|d| d.schema_configuration.as_mut())
    {
        schema.version_id = Some("1".into());
    }
    create(c, dest).await.unwrap();
    support::wait_active(c, "Conv").await;
    support::put_batch(c, "Conv", &[br#"{"host": "10.0.0.1", "status": 200}"#.to_vec()]).await;
    let objects = eventually("the Parquet object", Duration::from_secs(30), || async {
        let o = support::objects(c, "conv", "parquet/").await;
        (!o.is_empty()).then_some(o)
    })
    .await;
    let reader = parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(objects[0].1.clone())).unwrap();
    let meta = parquet::file::reader::FileReader::metadata(&reader);
    let names: Vec<&str> = meta.file_metadata().schema_descr().columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["host"], "version 1's columns, not the newest's");
}
