//! S3 in the emulator: [`store`] keeps buckets and objects on disk; [`api`] serves them over the S3 REST
//! protocol through the `s3s` crate (request parsing, SigV4 including aws-chunked uploads, XML).

pub mod api;
pub mod host;
mod listing;
mod multipart;
pub mod store;
mod wire;

pub use api::{FixedSecret, S3Api};
pub use store::{ObjectMeta, PutAttrs, Store, StoreError};
