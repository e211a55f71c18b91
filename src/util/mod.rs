//! Small utilities with no Firehose knowledge, shared by the client and the emulator: crash-safe file writes
//! ([`persist`]), the jittered backoff schedule every bounded retry loop uses ([`backoff`]), and waiting for
//! Ctrl-C or SIGTERM ([`signal`]), and fast SHA-256 ([`hash`]).

pub mod backoff;
pub mod hash;
pub mod persist;
pub mod signal;
