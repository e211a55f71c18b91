//! The destination writer: a sealed range becomes one object (encoded as the destination's `CompressionFormat`,
//! or converted to Parquet with the records that do not convert in a `format-conversion-failed` object beside it).
//!
//! Keys follow AWS's layout, `<evaluated prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><ext>`, in the
//! destination's time zone from the oldest record's arrival; the uuid is derived from the journal's id and the
//! range, so a repeat of the range writes the same key. Before anything is written the gate decides whether the
//! role may write it (as IAM and S3 would), then the intent (the keys) is recorded, then the objects, then the
//! progress: a kill at any point leaves either no object, or objects a repeat rewrites under the same keys.

use std::io::Write;

use chrono::{DateTime, Utc};

use super::buffer::Sealed;
use super::lane::{Lane, StageError};
use crate::faults;
use crate::firehose::gate::Failure;
use crate::firehose::journal::Pending;
use crate::firehose::target::Target;
use crate::s3::{PutAttrs, Store, StoreError};
use firehose_kit_domain::keys;
use firehose_kit_domain::prefix::Context;

/// The object key for a range whose oldest record arrived at `oldest_ms`, with the id `id`.
pub fn object_key(target: &Target, oldest_ms: i64, id: &uuid::Uuid) -> String {
    let at: DateTime<Utc> = DateTime::from_timestamp_millis(oldest_ms).unwrap_or_default();
    let mut ctx = Context::new(at, target.zone);
    ctx.partition_keys = target.keys.as_ref();
    if let Some(t) = target.output_type {
        ctx.error_output_type = t;
    }
    // A partition's lane has every key its prefix names (the query was checked against the prefix at create).
    let prefix = target.prefix.evaluate(&ctx).unwrap_or_else(|_| target.prefix.static_part());
    keys::object_key(&prefix, &target.stream, target.version, at, target.zone, id, &target.extension)
}

/// A uuid (version 4 in form) derived from a journal's id, a range and what the object is (`role`): the same
/// range names the same object.
fn range_id(journal_id: u64, start: u64, end: u64, role: u8) -> uuid::Uuid {
    let mut seed = [0u8; 25];
    seed[..8].copy_from_slice(&journal_id.to_le_bytes());
    seed[8..16].copy_from_slice(&start.to_le_bytes());
    seed[16..24].copy_from_slice(&end.to_le_bytes());
    seed[24] = role;
    let hash = xxhash_rust::xxh3::xxh3_128(&seed);
    uuid::Builder::from_random_bytes(hash.to_le_bytes()).into_uuid()
}

/// The target of a converting stream's `format-conversion-failed` output.
fn conversion_errors(target: &Target) -> Option<Target> {
    let c = target.conversion.as_ref()?;
    Some(Target {
        prefix: c.error_prefix.clone(),
        output_type: Some(firehose_kit_domain::conversion::ERROR_OUTPUT_TYPE),
        extension: String::new(),
        conversion: None,
        append_delimiter: false,
        ..target.clone()
    })
}

/// The names a delivery of `sealed` writes: pinned by an intent from before a restart, or derived.
fn names(lane: &Lane, sealed: &Sealed, target: &Target) -> Pending {
    if let Some(p) = &sealed.pinned {
        return p.clone();
    }
    let key = object_key(target, sealed.oldest_ms, &range_id(lane.id, sealed.start, sealed.end, 0));
    let also = conversion_errors(target)
        .map(|t| object_key(&t, sealed.oldest_ms, &range_id(lane.id, sealed.start, sealed.end, 1)));
    Pending { end: sealed.end, bucket: target.bucket.clone(), key, also }
}

/// Writes a sealed range as the destination's object(s), keeping the commit protocol.
pub fn write(lane: &Lane, sealed: &Sealed, target: &Target) -> Result<(), StageError> {
    let store = &lane.ctx.store;
    let names = names(lane, sealed, target);
    // An intent from before a restart whose objects all landed: only the progress is left to record.
    if sealed.pinned.is_some()
        && [Some(&names.key), names.also.as_ref()].into_iter().flatten().all(|k| store.contains(&names.bucket, k))
    {
        return Ok(lane.commit(sealed.end)?);
    }
    lane.ctx.gate.check(target, store, &names.key)?;
    let converted = match &target.conversion {
        Some(c) => {
            let out = crate::firehose::convert::convert(&lane.ctx, c, &target.region, |f| {
                lane.reader.for_each(sealed.start, sealed.end, f)
            })?;
            Some(out)
        }
        None => None,
    };
    lane.intend(names.clone())?;
    let put = |key: &str, body: Body<'_>| put_object(lane, sealed, target, &names.bucket, key, body);
    match converted {
        Some(out) => {
            if let (Some(failed), Some(also)) = (&out.failed, &names.also) {
                put(also, Body::Bytes(failed))?;
            }
            if let Some(parquet) = &out.parquet {
                put(&names.key, Body::Bytes(parquet))?;
            }
        }
        None => put(&names.key, Body::Records)?,
    }
    Ok(lane.commit(sealed.end)?)
}

/// What an object holds.
enum Body<'a> {
    /// The range's records, encoded as the destination asks.
    Records,
    /// Bytes made already (Parquet, an error output).
    Bytes(&'a [u8]),
}

/// Writes one object (replacing one of the same key: a repeat).
fn put_object(
    lane: &Lane,
    sealed: &Sealed,
    target: &Target,
    bucket: &str,
    key: &str,
    body: Body<'_>,
) -> Result<(), StageError> {
    let store: &Store = &lane.ctx.store;
    let attrs = PutAttrs { content_type: Some("application/octet-stream".into()), ..Default::default() };
    let result = faults::check(faults::OBJECT_PUT, &lane.dir).map_err(StoreError::from).and_then(|()| {
        store.begin_write(bucket).and_then(|mut writer| {
            // The records stream into the object (through its compression) from memory or from the journal; a
            // 128 MiB object is never copied whole.
            let written = match body {
                Body::Bytes(bytes) => writer.write_all(bytes),
                Body::Records => super::encode::write_encoded(
                    lane,
                    sealed,
                    (&target.compression, target.append_delimiter),
                    key,
                    &mut writer,
                ),
            };
            match written {
                Ok(()) => store.commit(bucket, key, writer, attrs),
                Err(e) => {
                    writer.abort();
                    Err(e.into())
                }
            }
        })
    });
    result.map(|_| ()).map_err(|e| match e {
        StoreError::NoSuchBucket => {
            StageError::Delivery(Failure::new("S3.NoSuchBucket", format!("the bucket {bucket} does not exist")))
        }
        other => StageError::Storage(std::io::Error::other(format!("writing s3://{bucket}/{key}: {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_names_the_same_object_and_another_range_another() {
        let a = range_id(7, 0, 100, 0);
        assert_eq!(a, range_id(7, 0, 100, 0));
        assert_eq!(a.get_version_num(), 4);
        for other in [range_id(8, 0, 100, 0), range_id(7, 1, 100, 0), range_id(7, 0, 101, 0), range_id(7, 0, 100, 1)] {
            assert_ne!(a, other);
        }
    }
}
