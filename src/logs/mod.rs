//! Apache access logs: a generator of realistic lines, a parser of the common and combined formats, and the Glue
//! table that types them as Parquet.

pub mod generator;
pub mod parser;
pub mod partition;
pub mod table;

pub use generator::{Format, Generator};
pub use parser::{LogEntry, parse_line, parse_line_in};
