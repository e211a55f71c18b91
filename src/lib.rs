//! firehose-kit: stand up, feed, prove and remove an Amazon Data Firehose pipeline (Apache access logs →
//! Direct Put delivery stream → Amazon S3), against real AWS or the embedded emulator.

pub mod error;

pub use error::{Error, Result};
