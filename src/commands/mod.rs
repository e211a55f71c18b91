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
    let printer = Printer::new(global.output, global.quiet, global.verbose, global.no_progress);
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
            let (backend, connection) = if cli.global.explicit_backend {
                (demo::Backend::External, global.connection.clone())
            } else {
                // A partitioned demo needs 60 s intervals (AWS's minimum): run them 12× faster, as 5 s.
                let speed = if args.partition_by.is_empty() { 1.0 } else { 12.0 };
                let handle = crate::local::Emulator::builder()
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
