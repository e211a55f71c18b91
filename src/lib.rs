//! firehose-kit: stand up, feed, prove and remove an Amazon Data Firehose pipeline (Apache access logs →
//! Direct Put delivery stream → Amazon S3), against real AWS or the embedded emulator.
//!
//! The client of a workspace of three crates (see `docs/architecture.md`): Firehose's own rules are the
//! `firehose-kit-domain` crate (here as [`firehose`]), the emulator is `firehose-kit-emulator`, used only by the
//! commands that start one (`local`, `demo`). Here: `cli` (clap types only) → `settings` (resolved,
//! validated) → `commands` (orchestration) which use `aws` (SDK wrappers), `pipeline` (the send engine),
//! `delivery` (verify's logic), `transform` (packaging a Lambda handler), `logs` (Apache log generator and parser) and report through `ui`.

pub mod aws;
pub mod cli;
pub mod commands;
pub mod delivery;
pub mod error;
pub mod loadgen;
pub mod logs;
pub mod pipeline;
pub mod settings;
pub mod transform;
pub mod ui;
pub mod util;

/// Firehose's rules, shared with the emulator: the `firehose-kit-domain` crate.
pub use firehose_kit_domain as firehose;

pub use error::{Error, Result};
