//! Apache access logs: a generator of realistic lines and a parser of the common and combined formats.

pub mod generator;
pub mod parser;
pub mod partition;

pub use generator::{Format, Generator};
pub use parser::{LogEntry, parse_line};
