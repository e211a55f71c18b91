//! firehose-kit: stand up, feed, prove and remove an Amazon Data Firehose pipeline (Apache access logs →
//! Direct Put delivery stream → Amazon S3), against real AWS or the embedded emulator.
//!
//! Layers (see `docs/architecture.md`): `cli` (clap types only) → `settings` (resolved, validated) →
//! `commands` (orchestration) which use `aws` (SDK wrappers), `pipeline` (pure send logic), `delivery` (pure
//! verify logic), `logs` (Apache log generator and parser) and report through `ui`. `firehose` holds
//! Firehose's own rules for both sides; `util` has no Firehose knowledge. `local` is the emulator: it never
//! imports `commands`, `cli`, `ui` or `aws`, and only the code that starts it imports it (a test,
//! `layering`, checks both).

pub mod aws;
pub mod cli;
pub mod commands;
pub mod delivery;
pub mod error;
pub mod firehose;
#[cfg(test)]
mod layering;
pub mod loadgen;
pub mod local;
pub mod logs;
pub mod pipeline;
pub mod settings;
pub mod ui;
pub mod util;

pub use error::{Error, Result};
