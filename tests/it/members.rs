//! Firehose API members the emulator applies or refuses, never stores and ignores, through aws-sdk-rust:
//! `AppendDelimiterToRecord` without dynamic partitioning, every Java letter of `!{timestamp:…}` it formats
//! (and a plain refusal for the ones it does not, or Java does not), processor types and parameters as AWS's
//! model has them, and the processors it does not model refused by name.

use std::time::Duration;

use aws_sdk_firehose::types::{
    BufferingHints, ExtendedS3DestinationConfiguration, ProcessingConfiguration, Processor, ProcessorParameter,
    ProcessorParameterName, ProcessorType,
};

use crate::support::{self, eventually};
use firehose_kit::aws::Clients;

const BUCKET: &str = "members";

fn destination(
    bucket_arn: &str,
    role_arn: &str,
    prefix: &str,
    processors: Vec<Processor>,
) -> ExtendedS3DestinationConfiguration {
    let mut d = ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(bucket_arn)
        .role_arn(role_arn)
        .prefix(prefix)
        .error_output_prefix("errors/!{firehose:error-output-type}/")
        .buffering_hints(BufferingHints::builder().size_in_mbs(1).interval_in_seconds(1).build());
    if !processors.is_empty() {
        d = d.processing_configuration(
            ProcessingConfiguration::builder().enabled(true).set_processors(Some(processors)).build(),
        );
    }
    d.build().unwrap()
}

/// Creates the stream, or returns the service's error message.
async fn create(c: &Clients, name: &str, d: ExtendedS3DestinationConfiguration) -> Result<(), String> {
    let out = c.firehose.create_delivery_stream().delivery_stream_name(name).extended_s3_destination_configuration(d);
    match out.send().await {
        Ok(_) => {
            support::wait_active(c, name).await;
            Ok(())
        }
        Err(e) => {
            let e = e.into_service_error();
            Err(format!("{}: {}", e.meta().code().unwrap_or_default(), e.meta().message().unwrap_or_default()))
        }
    }
}

fn processor(kind: ProcessorType, params: &[(ProcessorParameterName, &str)]) -> Processor {
    let params = params
        .iter()
        .map(|(n, v)| ProcessorParameter::builder().parameter_name(n.clone()).parameter_value(*v).build().unwrap())
        .collect();
    Processor::builder().r#type(kind).set_parameters(Some(params)).build().unwrap()
}

async fn one_object(c: &Clients, prefix: &str) -> (String, Vec<u8>) {
    eventually(&format!("an object under {prefix}"), Duration::from_secs(30), || async {
        support::objects(c, BUCKET, prefix).await.into_iter().next()
    })
    .await
}

/// "alpha", "beta", "gamma" with `AppendDelimiterToRecord` and no partitioning: three lines, not `alphabetagamma`.
#[tokio::test]
async fn append_delimiter_to_record_applies_without_dynamic_partitioning() {
    let env = support::start().await;
    let c = &env.clients;
    let (bucket, role) = support::bucket_and_role(c, BUCKET, "members-role").await;
    let append = processor(ProcessorType::AppendDelimiterToRecord, &[]);
    create(c, "Delimited", destination(&bucket, &role, "delimited/", vec![append])).await.unwrap();
    support::put_batch(c, "Delimited", &[b"alpha".to_vec(), b"beta".to_vec(), b"gamma".to_vec()]).await;
    let (_, body) = one_object(c, "delimited/").await;
    assert_eq!(String::from_utf8(body).unwrap(), "alpha\nbeta\ngamma\n");
}

/// `!{timestamp:EEE-hh-a}` names the object with the day's name, the 12-hour clock and AM/PM (it used to write
/// `EEE-hh-a` literally); a letter Java refuses is refused as AWS would, one the emulator does not format is
/// refused by the emulator, naming it.
#[tokio::test]
async fn timestamp_patterns_are_formatted_as_java_does_or_refused() {
    let env = support::start().await;
    let c = &env.clients;
    let (bucket, role) = support::bucket_and_role(c, BUCKET, "members-role").await;
    create(c, "Named", destination(&bucket, &role, "t=!{timestamp:EEE-hh-a}/", vec![])).await.unwrap();
    support::put_batch(c, "Named", &[b"x\n".to_vec()]).await;
    let (key, _) = one_object(c, "t=").await;
    let now = chrono::Utc::now();
    let want = [now, now - chrono::Duration::seconds(30)].map(|t| format!("t={}/", t.format("%a-%I-%p")));
    assert!(want.iter().any(|w| key.starts_with(w.as_str())), "{key} starts with one of {want:?}");

    let java = create(c, "Bad", destination(&bucket, &role, "t=!{timestamp:yyyy-bb}/", vec![])).await.unwrap_err();
    assert!(java.starts_with("InvalidArgumentException: ") && java.contains("Unknown pattern letter: b"), "{java}");
    let week = create(c, "Week", destination(&bucket, &role, "w=!{timestamp:YYYY-ww}/", vec![])).await.unwrap_err();
    assert!(
        week.contains("The pattern letter Y in !{timestamp:YYYY-ww} is not modelled by the firehose-kit emulator"),
        "{week}"
    );
}

/// Processor types and parameter names outside AWS's model fail its validation; Decompression and
/// CloudWatchLogProcessing, and a parameter on a processor that does not take it, are refused by name.
#[tokio::test]
async fn processors_are_applied_or_refused_never_ignored() {
    let env = support::start().await;
    let c = &env.clients;
    let (bucket, role) = support::bucket_and_role(c, BUCKET, "members-role").await;
    let unknown = processor(ProcessorType::from("Dedup"), &[]);
    let said = create(c, "Unknown", destination(&bucket, &role, "u/", vec![unknown])).await.unwrap_err();
    assert!(said.starts_with("ValidationException: ") && said.contains("Value 'Dedup' at"), "{said}");
    assert!(said.contains("Member must satisfy enum value set: [RecordDeAggregation, Decompression"), "{said}");

    let gunzip = processor(ProcessorType::Decompression, &[(ProcessorParameterName::CompressionFormat, "GZIP")]);
    let said = create(c, "Gunzip", destination(&bucket, &role, "g/", vec![gunzip])).await.unwrap_err();
    assert!(said.contains("The Decompression processor is not modelled by the firehose-kit emulator"), "{said}");
    let extract =
        processor(ProcessorType::CloudWatchLogProcessing, &[(ProcessorParameterName::DataMessageExtraction, "true")]);
    let said = create(c, "Extract", destination(&bucket, &role, "x/", vec![extract])).await.unwrap_err();
    assert!(said.contains("The CloudWatchLogProcessing processor is not modelled"), "{said}");

    let misplaced = processor(ProcessorType::AppendDelimiterToRecord, &[(ProcessorParameterName::Delimiter, "Cg==")]);
    let said = create(c, "Misplaced", destination(&bucket, &role, "m/", vec![misplaced])).await.unwrap_err();
    assert!(
        said.contains("ParameterName Delimiter is not a parameter of the AppendDelimiterToRecord processor (it takes no parameters)"),
        "{said}"
    );
    let streams = c.firehose.list_delivery_streams().send().await.unwrap();
    assert!(streams.delivery_stream_names().is_empty(), "nothing refused was stored: {streams:?}");
}

/// Members the emulator does not apply are refused by name: source record backup (`S3BackupMode: Enabled`, an
/// `S3BackupConfiguration`), SSE-KMS objects; a `NoEncryptionConfig` other than `NoEncryption` fails AWS's model.
#[tokio::test]
async fn members_not_applied_are_refused_by_name() {
    use aws_sdk_firehose::types::S3DestinationConfiguration;
    use aws_sdk_firehose::types::{EncryptionConfiguration, KmsEncryptionConfig, NoEncryptionConfig, S3BackupMode};
    let env = support::start().await;
    let c = &env.clients;
    let (bucket, role) = support::bucket_and_role(c, BUCKET, "members-role").await;
    type Builder = aws_sdk_firehose::types::builders::ExtendedS3DestinationConfigurationBuilder;
    let with = |f: &dyn Fn(Builder) -> Builder| {
        f(ExtendedS3DestinationConfiguration::builder().bucket_arn(&bucket).role_arn(&role)).build().unwrap()
    };
    let backup = with(&|b| {
        b.s3_backup_mode(S3BackupMode::Enabled).s3_backup_configuration(
            S3DestinationConfiguration::builder().bucket_arn(&bucket).role_arn(&role).build().unwrap(),
        )
    });
    let said = create(c, "Backup", backup).await.unwrap_err();
    assert!(
        said.starts_with("InvalidArgumentException: extendedS3DestinationConfiguration.S3BackupConfiguration is not modelled by the firehose-kit emulator"),
        "{said}"
    );
    let enabled = with(&|b| b.s3_backup_mode(S3BackupMode::Enabled));
    let said = create(c, "Enabled", enabled).await.unwrap_err();
    assert!(said.contains("S3BackupMode Enabled (source record backup) is not modelled"), "{said}");
    let kms =
        KmsEncryptionConfig::builder().awskms_key_arn("arn:aws:kms:us-east-2:000000000000:key/k").build().unwrap();
    let kms = with(&|b| {
        b.encryption_configuration(EncryptionConfiguration::builder().kms_encryption_config(kms.clone()).build())
    });
    let said = create(c, "Kms", kms).await.unwrap_err();
    assert!(said.contains("KMSEncryptionConfig (SSE-KMS objects) is not modelled"), "{said}");
    let bogus = with(&|b| {
        b.encryption_configuration(
            EncryptionConfiguration::builder().no_encryption_config(NoEncryptionConfig::from("Bogus")).build(),
        )
    });
    let said = create(c, "Bogus", bogus).await.unwrap_err();
    assert!(said.starts_with("ValidationException: ") && said.contains("Value 'Bogus' at"), "{said}");
    // What is modelled still goes through: backup Disabled, no encryption.
    let plain = with(&|b| {
        b.s3_backup_mode(S3BackupMode::Disabled).encryption_configuration(
            EncryptionConfiguration::builder().no_encryption_config(NoEncryptionConfig::NoEncryption).build(),
        )
    });
    create(c, "Plain", plain).await.unwrap();
}

/// `DirectPutSourceConfiguration.ThroughputHintInMBs` is described as given (1–100, else AWS's validation); a
/// source configuration that is not the stream's (MSK beside Direct Put) is refused by name, not ignored.
#[tokio::test]
async fn a_throughput_hint_is_described_and_a_foreign_source_refused() {
    use aws_sdk_firehose::types::{DirectPutSourceConfiguration, MskSourceConfiguration};
    let env = support::start().await;
    let c = &env.clients;
    let (bucket, role) = support::bucket_and_role(c, BUCKET, "members-role").await;
    let hinted = c
        .firehose
        .create_delivery_stream()
        .delivery_stream_name("Hinted")
        .direct_put_source_configuration(
            DirectPutSourceConfiguration::builder().throughput_hint_in_mbs(20).build().unwrap(),
        )
        .extended_s3_destination_configuration(destination(&bucket, &role, "h/", vec![]));
    hinted.send().await.unwrap();
    support::wait_active(c, "Hinted").await;
    let d = c.firehose.describe_delivery_stream().delivery_stream_name("Hinted").send().await.unwrap();
    let source = d.delivery_stream_description().unwrap().source().expect("a source description");
    assert_eq!(source.direct_put_source_description().and_then(|s| s.throughput_hint_in_mbs()), Some(20));

    let too_much = c
        .firehose
        .create_delivery_stream()
        .delivery_stream_name("TooMuch")
        .direct_put_source_configuration(
            DirectPutSourceConfiguration::builder().throughput_hint_in_mbs(500).build().unwrap(),
        )
        .extended_s3_destination_configuration(destination(&bucket, &role, "t/", vec![]));
    let e = too_much.send().await.unwrap_err().into_service_error();
    assert_eq!(e.meta().code(), Some("ValidationException"), "{e:?}");

    let msk = MskSourceConfiguration::builder()
        .msk_cluster_arn("arn:aws:kafka:us-east-2:000000000000:cluster/c/1")
        .topic_name("logs")
        .authentication_configuration(
            aws_sdk_firehose::types::AuthenticationConfiguration::builder()
                .role_arn(&role)
                .connectivity(aws_sdk_firehose::types::Connectivity::Public)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let beside = c
        .firehose
        .create_delivery_stream()
        .delivery_stream_name("Beside")
        .msk_source_configuration(msk)
        .extended_s3_destination_configuration(destination(&bucket, &role, "b/", vec![]));
    let e = beside.send().await.unwrap_err().into_service_error();
    let message = e.meta().message().unwrap_or_default().to_string();
    assert!(
        message.starts_with("MSKSourceConfiguration beside DeliveryStreamType DirectPut is not modelled"),
        "{message}"
    );
}

/// An `ExtendedS3DestinationUpdate` of a stream created with `S3DestinationConfiguration` makes it ExtendedS3,
/// and Describe says so; another destination's update is refused by name, not ignored.
#[tokio::test]
async fn an_extended_update_of_an_s3_destination_is_described_and_a_foreign_update_refused() {
    use aws_sdk_firehose::types::{ExtendedS3DestinationUpdate, RedshiftDestinationUpdate, S3DestinationConfiguration};
    let env = support::start().await;
    let c = &env.clients;
    let (bucket, role) = support::bucket_and_role(c, BUCKET, "members-role").await;
    let plain = S3DestinationConfiguration::builder().bucket_arn(&bucket).role_arn(&role).build().unwrap();
    // Deprecated in the SDK (AWS recommends ExtendedS3), still accepted by AWS: streams made with it exist.
    #[allow(deprecated)]
    let create = c.firehose.create_delivery_stream().delivery_stream_name("Plain").s3_destination_configuration(plain);
    create.send().await.unwrap();
    support::wait_active(c, "Plain").await;
    let describe = || async {
        let d = c.firehose.describe_delivery_stream().delivery_stream_name("Plain").send().await.unwrap();
        d.delivery_stream_description().unwrap().clone()
    };
    let d = describe().await;
    let update = c
        .firehose
        .update_destination()
        .delivery_stream_name("Plain")
        .current_delivery_stream_version_id(d.version_id())
        .destination_id(d.destinations()[0].destination_id());
    let extended = ExtendedS3DestinationUpdate::builder().prefix("now/").error_output_prefix("errors/").build();
    update.clone().extended_s3_destination_update(extended).send().await.unwrap();
    let d = describe().await;
    let ext = d.destinations()[0].extended_s3_destination_description().expect("described as ExtendedS3 now");
    assert_eq!(ext.prefix(), Some("now/"));

    let redshift = RedshiftDestinationUpdate::builder().username("u").build();
    let e = c
        .firehose
        .update_destination()
        .delivery_stream_name("Plain")
        .current_delivery_stream_version_id(d.version_id())
        .destination_id(d.destinations()[0].destination_id())
        .redshift_destination_update(redshift)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    let message = e.meta().message().unwrap_or_default().to_string();
    assert!(message.starts_with("RedshiftDestinationUpdate (an update of a destination"), "{message}");
}

/// A MetadataExtractionQuery that could recurse without end (it would overflow the emulator's stack on the first
/// record) is refused at CreateDeliveryStream, plainly; nothing is stored.
#[tokio::test]
async fn a_recursive_metadata_extraction_query_is_refused_at_create() {
    use aws_sdk_firehose::types::DynamicPartitioningConfiguration;
    let env = support::start().await;
    let c = &env.clients;
    let (bucket, role) = support::bucket_and_role(c, BUCKET, "members-role").await;
    let query = processor(
        ProcessorType::MetadataExtraction,
        &[
            (ProcessorParameterName::MetadataExtractionQuery, "def f: [f]; {a: f}"),
            (ProcessorParameterName::JsonParsingEngine, "JQ-1.6"),
        ],
    );
    let mut d = destination(&bucket, &role, "a=!{partitionKeyFromQuery:a}/", vec![query]);
    d.dynamic_partitioning_configuration = Some(DynamicPartitioningConfiguration::builder().enabled(true).build());
    d.buffering_hints = Some(BufferingHints::builder().size_in_mbs(64).interval_in_seconds(60).build());
    let said = create(c, "Recursive", d).await.unwrap_err();
    assert!(said.contains("uses `def`: the firehose-kit emulator refuses recursion"), "{said}");
    let streams = c.firehose.list_delivery_streams().send().await.unwrap();
    assert!(streams.delivery_stream_names().is_empty(), "{streams:?}");
}
