//! Pure verify logic: Firehose's key layout, reading delivered objects back into lines, comparing them with what
//! was sent, and the delivery report.

pub mod compare;
pub mod keys;
pub mod objects;
pub mod report;
