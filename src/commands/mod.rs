//! Orchestration: one module per command, each taking resolved settings, SDK clients and a printer. [`run`] is
//! the composition root: it resolves settings, builds the clients once, and hands them to the command.

pub mod demo;
pub mod doctor;
pub mod generate;
pub mod local;
pub mod send;
pub mod setup;
pub mod status;
pub mod teardown;
pub mod verify;

use clap::CommandFactory;

use crate::aws::Clients;
use crate::cli::{Cli, Command};
use crate::error::{Error, ExitCode, Result};
use crate::settings::{self, Global, SendSettings, SetupSettings, VerifySettings};
use crate::ui::Printer;

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    // Commands that need no settings run before the settings file and environment are read, so a broken
    // `firehose-kit.toml` or a bad `AWS_REGION` cannot stop them.
    match &cli.command {
        Command::Generate(args) => return generate::run(args),
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "firehose-kit", &mut std::io::stdout());
            return Ok(ExitCode::Success);
        }
        _ => {}
    }
    let (file, path) = settings::load_file(cli.global.config.as_deref())?;
    let global = Global::resolve(&cli.global, &file, path)?;
    let printer =
        Printer::new(global.output, global.quiet, global.verbose, global.no_progress).with_commands(global.command(""));
    let prefix = global.command("");
    let connection = global.connection.clone();
    // Every command a hint names runs as printed: with this invocation's global options.
    dispatch(cli, file, global, printer)
        .await
        .map_err(|e| unreachable_hint(e, &connection).map_hint(|h| crate::ui::runnable(h, &prefix)))
}

/// An endpoint nothing answers at: say which (with `--local`, the emulator's default port) and how to start it.
fn unreachable_hint(e: Error, connection: &settings::Connection) -> Error {
    let unreachable = matches!(&e, Error::Aws { detail, .. } if detail.starts_with(crate::aws::error::UNREACHABLE));
    let Some(url) = connection.endpoint_url.as_deref().filter(|_| unreachable) else { return e };
    let hint = if url == settings::LOCAL_ENDPOINT && connection.test_credentials {
        format!(
            "--local talks to the emulator at {url} (port 4566), and nothing answers there: start it with `firehose-kit local` in another terminal (or run `firehose-kit demo`, which starts its own)"
        )
    } else {
        format!(
            "nothing answers at {url}: start the service there, or point --endpoint-url at where it runs (`firehose-kit local --addr` prints its address)"
        )
    };
    e.with_hint(hint)
}

/// Runs a command that needs settings and clients.
async fn dispatch(cli: Cli, file: settings::FileSettings, global: Global, printer: Printer) -> Result<ExitCode> {
    match cli.command {
        Command::Local(args) => local::run(&args, &global, &printer).await,
        Command::Generate(_) | Command::Completions { .. } => unreachable!("handled above"),
        Command::Setup(args) => {
            let s = SetupSettings::resolve(&args, &file.setup)?;
            let clients = Clients::connect(&global.connection).await?;
            setup::run(&global, &s, &clients, &printer).await
        }
        Command::Teardown(args) => {
            let clients = Clients::connect(&global.connection).await?;
            teardown::run(&global, &args, &clients, &printer).await
        }
        Command::Doctor(args) => {
            let clients = Clients::connect(&global.connection).await?;
            doctor::run(&global, &args, &clients, &printer).await
        }
        Command::Status(_) => {
            let clients = Clients::connect(&global.connection).await?;
            status::run(&global, &clients, &printer).await
        }
        Command::Send(args) => {
            let s = SendSettings::resolve(&args, &file.send)?;
            send::resolve_inputs(&s)?;
            let clients = Clients::connect(&global.connection).await?;
            send::run(&global, &s, &clients, &printer).await
        }
        Command::Verify(args) => {
            let s = VerifySettings::resolve(&args, &file.verify)?;
            let clients = Clients::connect(&global.connection).await?;
            verify::run(&global, &s, &clients, &printer).await
        }
        Command::Demo(args) => {
            let cancel = tokio_util::sync::CancellationToken::new();
            let on_signal = cancel.clone();
            let signals = tokio::spawn(async move {
                crate::util::signal::wait_for_signal().await;
                on_signal.cancel();
            });
            // A typed --profile, --endpoint-url or --local, or an endpoint from AWS_ENDPOINT_URL or the settings
            // file, is where the demo runs; otherwise it starts its own emulator (an exported AWS_PROFILE alone
            // never sends a demo to a real account).
            let (backend, connection) = if cli.global.explicit_backend || global.connection.endpoint_url.is_some() {
                (demo::Backend::External, global.connection.clone())
            } else {
                // A partitioned demo needs 60 s intervals (AWS's minimum): run them 12× faster, as 5 s.
                let speed = if args.partition_by.is_empty() { 1.0 } else { 12.0 };
                let handle = firehose_kit_emulator::Emulator::builder()
                    .addr("127.0.0.1:0")
                    .speed(speed)
                    .start()
                    .await
                    .map_err(|e| Error::failed(format!("cannot start the embedded emulator: {e}")))?;
                let connection = settings::Connection {
                    profile: None,
                    region: global.connection.region.clone(),
                    endpoint_url: Some(handle.endpoint().to_string()),
                    test_credentials: true,
                };
                (demo::Backend::Embedded(handle), connection)
            };
            let clients = Clients::connect(&connection).await?;
            let result = demo::run(&args, &global, &clients, backend, &printer, cancel).await;
            signals.abort();
            result
        }
    }
}
