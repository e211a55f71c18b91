//! Orchestration: one module per command, each taking resolved settings, SDK clients and a printer. [`run`] is
//! the composition root: it resolves settings, builds the clients once, and hands them to the command.

pub mod generate;
pub mod local;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::error::{ExitCode, Result};
use crate::settings::{self, Global};
use crate::ui::Printer;

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let (file, path) = settings::load_file(cli.global.config.as_deref())?;
    let global = Global::resolve(&cli.global, &file, path)?;
    let printer = Printer::new(global.output, global.quiet, global.verbose, global.no_progress);
    match cli.command {
        Command::Local(args) => local::run(&args, &global, &printer).await,
        Command::Generate(args) => generate::run(&args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "firehose-kit", &mut std::io::stdout());
            Ok(ExitCode::Success)
        }
    }
}
