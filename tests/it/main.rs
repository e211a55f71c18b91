//! The one integration-test binary (`autotests = false`): the heavy AWS crates link once. Every module drives
//! firehose-kit through the real aws-sdk-rust clients against an emulator started in-process on 127.0.0.1:0
//! with a temporary data dir (or, in `compat`, moto server).

mod support;

mod aws;
mod compat;
mod compression;
mod conversion;
mod crash;
mod demo;
mod docs;
mod emulator;
mod failures;
mod hints;
mod hostile;
mod html;
mod kinesis;
mod load;
mod members;
mod memory;
mod parquet;
mod partitioning;
mod provision;
mod report;
mod send;
mod together;
mod transform;
mod upgrade;
mod verify;
mod verify_pipelines;
