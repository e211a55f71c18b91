//! Small utilities with no Firehose knowledge: the one retry logic (failure classes and the jittered backoff
//! schedule every bounded retry loop uses: [`retry`]) and waiting for Ctrl-C or SIGTERM ([`signal`]); and, from the domain crate, what the emulator
//! needs too: crash-safe file writes ([`persist`]), fast SHA-256 ([`hash`]) and XML/HTML escaping ([`markup`]).

pub mod retry;
pub mod signal;

pub use firehose_kit_domain::util::{hash, markup, persist};
