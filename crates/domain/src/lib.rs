//! Amazon Data Firehose's own rules, written once and used by both sides of the wire: firehose-kit's client
//! commands (`setup`, `send`, `verify`, `status`) and its emulator (`firehose-kit-emulator`). Nothing here does
//! network I/O or knows which side calls it, and nothing depends on the AWS SDK, Tokio or clap: Cargo keeps it
//! so.
//!
//! | module | owns |
//! |---|---|
//! | [`access`] | what Firehose's role must be allowed, and IAM's evaluation of policies (identity, trust, bucket) |
//! | [`failures`] | delivery error codes and messages, the error log event, error-logging names, the 24 h retry horizon |
//! | [`limits`] | record, batch, tag and prefix limits; buffering-hint ranges and defaults; how a batch's size is counted |
//! | [`names`] | stream and bucket naming rules; ARN partitions by region |
//! | [`types`] | typed enums for stream status, compression, processors and encryption status |
//! | [`partitioning`] | dynamic partitioning: processors (deaggregation, jq metadata extraction, delimiter), the create-time rules, routing a record to its partition |
//! | [`hadoop_snappy`] | Hadoop's Snappy block format, which `HADOOP_SNAPPY` objects are written in |
//! | [`field_query`] | the common `{k: .field, d: .time[0:10]}` query shape answered without jq, and only where jq would answer the same |
//! | [`prefix`] | prefix expressions (`!{timestamp:..}`, `!{firehose:..}`, `!{partitionKeyFrom..}`): validation and evaluation, in a `CustomTimeZone` |
//! | [`keys`] | the object-key layout: building a key and parsing one back |
//! | [`kinesis`] | Kinesis Data Streams as a source: shards, hash-key routing, PutRecords limits, KPL de-aggregation |
//! | [`billing`] | the 5 KB record rounding of ingestion pricing |
//! | [`emulated`] | the one place where the emulator deliberately refuses what AWS accepts |
//! | [`quota`] | Direct Put throughput quotas per region |
//! | [`transform`] | data transformation with Lambda: the processor's parameters, the event, the answer's rules, the processing-failed document |
//! | [`conversion`] | record format conversion: the configuration's rules, Glue column types, JSON into typed cells as the OpenX and Hive SerDes read it |
//! | [`contract`] | the emulator's contract with its clients: default endpoint, credentials, account, headers |
//! | [`util`] | persistence, SHA-256 and escaping both sides need (no Firehose knowledge) |
//!
//! The facts behind these rules, with their sources, are summarised in `docs/aws.md` and `docs/emulator.md`.

pub mod access;
pub mod billing;
pub mod contract;
pub mod conversion;
pub mod emulated;
pub mod failures;
pub mod field_query;
pub mod hadoop_snappy;
pub mod keys;
pub mod kinesis;
pub mod limits;
pub mod names;
pub mod partitioning;
pub mod prefix;
pub mod quota;
pub mod transform;
pub mod types;
pub mod util;
