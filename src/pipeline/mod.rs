//! Pure send logic: line framing, packing lines into records, batching within PutRecordBatch limits, retry
//! bookkeeping, rate control, checkpoints and the run manifest. No AWS calls and no terminal output here.

pub mod checkpoint;
pub mod control;
pub mod follow;
pub mod framing;
pub mod manifest;
pub mod position;
pub mod reader;
pub mod records;
pub mod sender;
