//! Small utilities with no Firehose knowledge that both the client and the emulator need: crash-safe file
//! writes with a choice of durability ([`persist`]), fast SHA-256 for SigV4 payload hashes ([`hash`]), and
//! XML/HTML escaping ([`markup`]).

pub mod hash;
pub mod markup;
pub mod persist;
