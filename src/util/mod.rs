//! Small utilities with no Firehose knowledge, shared by the client and the emulator: crash-safe file writes
//! ([`persist`]), the jittered backoff schedule every bounded retry loop uses ([`backoff`]), and waiting for
//! Ctrl-C or SIGTERM ([`signal`]), fast SHA-256 ([`hash`]), and XML/HTML escaping ([`markup`]).

pub mod backoff;
pub mod hash;
pub mod markup;
pub mod persist;
pub mod signal;
