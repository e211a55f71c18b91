//! Pure verify logic: reading delivered objects back into lines, comparing them with what was sent, where
//! `--keep` saves them, and the delivery report. (The key layout itself is Firehose's rule: `firehose::keys`.)

pub mod compare;
pub mod converted;
pub mod html;
pub mod keep;
pub mod lines;
pub mod objects;
pub mod parquet_rows;
pub mod partitions;
pub mod report;
pub mod transformed;
