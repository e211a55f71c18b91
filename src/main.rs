//! The `firehose-kit` binary: parse the command line, set up logging, run the command, print the error chain
//! (`error:` / `caused by:` / `hint:`) and exit with the codes in README.md ("Exit codes"). Nothing else calls `process::exit`.

use firehose_kit::cli::Cli;
use firehose_kit::error::ExitCode;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse_args();
    init_logging(cli.global.verbose, cli.global.quiet);
    // Stacks deep enough for any jq query verify runs (a stream's MetadataExtractionQuery, `--match`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(firehose_kit::firehose::partitioning::JQ_STACK_BYTES)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime\ncaused by: {e}");
            return std::process::ExitCode::from(ExitCode::Failed as u8);
        }
    };
    let result = runtime.block_on(firehose_kit::commands::run(cli));
    // Background tasks (progress tickers, idle connections) must not hold the process open.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.causes() {
                eprintln!("caused by: {cause}");
            }
            if let Some(hint) = err.hint() {
                eprintln!("hint: {hint}");
            }
            err.exit_code()
        }
    };
    std::process::ExitCode::from(code as u8)
}

/// `RUST_LOG` wins; otherwise firehose-kit's own warnings only (the SDK's log lines, such as the credential
/// chain's IMDS warnings, appear only with `-v`: our own errors already explain the failure), `-v` adds the
/// SDK's warnings and firehose-kit's steps and requests, `-vv` debug detail.
fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "off,firehose_kit=error",
        (false, 0) => "off,firehose_kit=warn",
        (false, 1) => "warn,firehose_kit=info",
        (false, _) => "info,firehose_kit=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal, and never with NO_COLOR set (https://no-color.org).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .init();
}
