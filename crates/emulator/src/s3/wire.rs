//! What the S3 API answers with, shared by its operations: the store's errors as S3's codes, timestamps and
//! ETags, listing entries (with `EncodingType=url`), the attributes and checksums an upload stores, and streaming
//! a request body into the store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};

use super::store::{ObjectMeta, PutAttrs, Store, StoreError};

pub(super) fn map_err(e: StoreError) -> S3Error {
    match e {
        StoreError::NoSuchBucket => s3_error!(NoSuchBucket, "The specified bucket does not exist"),
        StoreError::NoSuchKey => s3_error!(NoSuchKey, "The specified key does not exist."),
        StoreError::BucketNotEmpty => s3_error!(BucketNotEmpty, "The bucket you tried to delete is not empty"),
        StoreError::BucketAlreadyOwnedByYou => s3_error!(
            BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it."
        ),
        StoreError::Io(io) => S3Error::internal_error(io),
    }
}

pub(super) fn not_found(code: &str, message: &'static str) -> S3Error {
    let mut err = S3Error::with_message(S3ErrorCode::Custom(code.to_string().into()), message);
    err.set_status_code(http::StatusCode::NOT_FOUND);
    err
}

pub(super) fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

pub(super) fn etag(meta: &ObjectMeta) -> ETag {
    ETag::Strong(meta.etag.clone())
}

pub(super) fn object_entry(meta: &ObjectMeta) -> Object {
    Object {
        key: Some(meta.key.clone()),
        size: Some(meta.size as i64),
        e_tag: Some(etag(meta)),
        last_modified: Some(timestamp(meta.last_modified_ms)),
        storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
        ..Default::default()
    }
}

pub(super) fn put_attrs(
    content_type: Option<String>,
    content_encoding: Option<String>,
    metadata: Option<Metadata>,
) -> PutAttrs {
    PutAttrs {
        content_type,
        content_encoding: content_encoding.and_then(|e| stored_content_encoding(&e)),
        metadata: metadata.map(|m| m.into_iter().collect()).unwrap_or_default(),
        checksums: BTreeMap::new(),
    }
}

/// The flexible-checksum algorithms and their headers.
const CHECKSUMS: [(&str, &str); 5] = [
    ("CRC32", "x-amz-checksum-crc32"),
    ("CRC32C", "x-amz-checksum-crc32c"),
    ("SHA1", "x-amz-checksum-sha1"),
    ("SHA256", "x-amz-checksum-sha256"),
    ("CRC64NVME", "x-amz-checksum-crc64nvme"),
];

/// The checksums a PutObject carried, in its headers or (aws-chunked uploads) its trailer; they are stored and
/// returned by GetObject/HeadObject with `ChecksumMode=ENABLED`, as SDKs now validate them.
pub(super) fn sent_checksums(input: &PutObjectInput, trailers: Option<&http::HeaderMap>) -> BTreeMap<String, String> {
    let from_input = [
        &input.checksum_crc32,
        &input.checksum_crc32c,
        &input.checksum_sha1,
        &input.checksum_sha256,
        &input.checksum_crc64nvme,
    ];
    let mut out = BTreeMap::new();
    for ((algorithm, header), value) in CHECKSUMS.iter().zip(from_input) {
        let trailer = trailers.and_then(|t| t.get(*header)).and_then(|v| v.to_str().ok()).map(str::to_string);
        if let Some(v) = value.clone().or(trailer) {
            out.insert(algorithm.to_string(), v);
        }
    }
    out
}

/// The stored checksums as they appear in a GetObject/HeadObject answer, when the request enabled them.
pub(super) fn returned_checksum(meta: &ObjectMeta, mode: Option<&ChecksumMode>, algorithm: &str) -> Option<String> {
    mode.filter(|m| m.as_str() == ChecksumMode::ENABLED).and_then(|_| meta.checksums.get(algorithm).cloned())
}

/// The Content-Encoding S3 stores: `aws-chunked` describes how the upload was framed, not the object, so S3
/// drops it (and an encoding that was only `aws-chunked` leaves none).
pub(super) fn stored_content_encoding(value: &str) -> Option<String> {
    let kept: Vec<&str> =
        value.split(',').map(str::trim).filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked")).collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

/// S3's `EncodingType=url` encoding of a key or prefix in a listing: form style, as S3 writes it (a space is
/// `+`, `+` is `%2B`, `%` is `%25`, other bytes outside `A-Z a-z 0-9 - _ . ~` are percent-encoded as UTF-8), but
/// `/` is left as it is. Clients that ask for it (boto3 and the AWS CLI always do) decode it with `unquote_plus`.
pub(super) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Applies `EncodingType=url` to a listing's text fields when the request asked for it.
pub(super) struct Encoding(bool);

impl Encoding {
    pub(super) fn of(encoding_type: Option<&EncodingType>) -> Self {
        Encoding(encoding_type.is_some_and(|e| e.as_str() == EncodingType::URL))
    }

    pub(super) fn text(&self, s: String) -> String {
        if self.0 { url_encode(&s) } else { s }
    }

    pub(super) fn opt(&self, s: Option<String>) -> Option<String> {
        s.map(|s| self.text(s))
    }

    pub(super) fn prefixes(&self, prefixes: Vec<String>) -> Option<Vec<CommonPrefix>> {
        (!prefixes.is_empty())
            .then(|| prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(self.text(p)) }).collect())
    }

    pub(super) fn objects(&self, objects: &[ObjectMeta]) -> Vec<Object> {
        objects
            .iter()
            .map(|m| {
                let mut o = object_entry(m);
                o.key = self.opt(o.key);
                o
            })
            .collect()
    }
}

/// Streams a request body into a store writer (on a blocking thread per chunk batch) and commits it.
pub(super) async fn write_body(
    store: &Arc<Store>,
    bucket: &str,
    body: Option<StreamingBlob>,
) -> S3Result<super::store::ObjectWriter> {
    let mut writer = store.begin_write(bucket).map_err(map_err)?;
    if let Some(mut body) = body {
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    writer.abort();
                    return Err(S3Error::with_message(S3ErrorCode::IncompleteBody, e.to_string()));
                }
            };
            if let Err(e) = std::io::Write::write_all(&mut writer, &chunk) {
                writer.abort();
                return Err(S3Error::internal_error(e));
            }
        }
    }
    Ok(writer)
}
