//! The S3 protocol face of the emulator: s3s parses and signs-checks the REST requests, this `impl S3` maps each
//! operation onto the [`Store`] with S3's semantics (BucketAlreadyOwnedByYou, BucketNotEmpty, the 404 codes of
//! the bucket sub-resources, ETags in listings). Operations not listed here answer s3s's `NotImplemented`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::store::{ObjectMeta, PutAttrs, Store, StoreError};

/// S3 over a [`Store`], plus the in-progress multipart uploads (kept in memory: an upload does not survive a
/// restart, which S3 clients handle by starting over).
#[derive(Clone)]
pub struct S3Api {
    store: Arc<Store>,
    uploads: Arc<Mutex<HashMap<String, Upload>>>,
    account_id: String,
}

struct Upload {
    bucket: String,
    key: String,
    attrs: PutAttrs,
    /// part number → (file, size, md5)
    parts: BTreeMap<i32, (PathBuf, u64, [u8; 16])>,
}

impl S3Api {
    pub fn new(store: Arc<Store>, account_id: String) -> Self {
        S3Api { store, uploads: Arc::default(), account_id }
    }
}

fn map_err(e: StoreError) -> S3Error {
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

fn not_found(code: &str, message: &'static str) -> S3Error {
    let mut err = S3Error::with_message(S3ErrorCode::Custom(code.to_string().into()), message);
    err.set_status_code(http::StatusCode::NOT_FOUND);
    err
}

fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

fn etag(meta: &ObjectMeta) -> ETag {
    ETag::Strong(meta.etag.clone())
}

fn object_entry(meta: &ObjectMeta) -> Object {
    Object {
        key: Some(meta.key.clone()),
        size: Some(meta.size as i64),
        e_tag: Some(etag(meta)),
        last_modified: Some(timestamp(meta.last_modified_ms)),
        storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
        ..Default::default()
    }
}

fn put_attrs(content_type: Option<String>, content_encoding: Option<String>, metadata: Option<Metadata>) -> PutAttrs {
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
fn sent_checksums(input: &PutObjectInput, trailers: Option<&http::HeaderMap>) -> BTreeMap<String, String> {
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
fn returned_checksum(meta: &ObjectMeta, mode: Option<&ChecksumMode>, algorithm: &str) -> Option<String> {
    mode.filter(|m| m.as_str() == ChecksumMode::ENABLED).and_then(|_| meta.checksums.get(algorithm).cloned())
}

/// The Content-Encoding S3 stores: `aws-chunked` describes how the upload was framed, not the object, so S3
/// drops it (and an encoding that was only `aws-chunked` leaves none).
fn stored_content_encoding(value: &str) -> Option<String> {
    let kept: Vec<&str> =
        value.split(',').map(str::trim).filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked")).collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

/// S3's `EncodingType=url` encoding of a key or prefix in a listing: form style, as S3 writes it (a space is
/// `+`, `+` is `%2B`, `%` is `%25`, other bytes outside `A-Z a-z 0-9 - _ . ~` are percent-encoded as UTF-8), but
/// `/` is left as it is. Clients that ask for it (boto3 and the AWS CLI always do) decode it with `unquote_plus`.
fn url_encode(s: &str) -> String {
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
struct Encoding(bool);

impl Encoding {
    fn of(encoding_type: Option<&EncodingType>) -> Self {
        Encoding(encoding_type.is_some_and(|e| e.as_str() == EncodingType::URL))
    }

    fn text(&self, s: String) -> String {
        if self.0 { url_encode(&s) } else { s }
    }

    fn opt(&self, s: Option<String>) -> Option<String> {
        s.map(|s| self.text(s))
    }

    fn prefixes(&self, prefixes: Vec<String>) -> Option<Vec<CommonPrefix>> {
        (!prefixes.is_empty())
            .then(|| prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(self.text(p)) }).collect())
    }

    fn objects(&self, objects: &[ObjectMeta]) -> Vec<Object> {
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
async fn write_body(
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

#[async_trait::async_trait]
impl S3 for S3Api {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        let input = req.input;
        if firehose_kit_domain::names::bucket_name_problem(&input.bucket).is_some() {
            return Err(s3_error!(InvalidBucketName, "The specified bucket is not valid."));
        }
        let constraint = input
            .create_bucket_configuration
            .and_then(|c| c.location_constraint)
            .map(|c| c.as_str().to_string())
            .filter(|c| !c.is_empty());
        let signing_region = req.region.as_ref().map(|r| r.as_str().to_string()).unwrap_or_else(|| "us-east-1".into());
        match constraint.as_deref() {
            // S3 refuses `us-east-1` as an explicit constraint.
            Some("us-east-1") => {
                return Err(s3_error!(InvalidLocationConstraint, "The specified location-constraint is not valid"));
            }
            Some(c) if c != signing_region && !(c == "EU" && signing_region == "eu-west-1") => {
                return Err(s3_error!(
                    IllegalLocationConstraintException,
                    "The {c} location constraint is incompatible for the region specific endpoint this request was sent to."
                ));
            }
            None if signing_region != "us-east-1" => {
                return Err(s3_error!(
                    IllegalLocationConstraintException,
                    "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to."
                ));
            }
            _ => {}
        }
        match self.store.create_bucket(&input.bucket, constraint.clone()) {
            Ok(()) => {}
            // In us-east-1, S3 answers 200 to re-creating a bucket you already own there (its legacy behaviour);
            // every other region answers BucketAlreadyOwnedByYou.
            Err(StoreError::BucketAlreadyOwnedByYou)
                if constraint.is_none()
                    && self.store.bucket_config(&input.bucket).is_ok_and(|c| c.location_constraint.is_none()) => {}
            Err(e) => return Err(map_err(e)),
        }
        Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{}", input.bucket)) }))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        let config = self.store.bucket_config(&req.input.bucket).map_err(map_err)?;
        let region = config.location_constraint.unwrap_or_else(|| "us-east-1".into());
        Ok(S3Response::new(HeadBucketOutput { bucket_region: Some(region), ..Default::default() }))
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.store.delete_bucket(&req.input.bucket).map_err(map_err)?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    async fn list_buckets(&self, _req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self
            .store
            .list_buckets()
            .into_iter()
            .map(|(name, config)| Bucket {
                name: Some(name),
                creation_date: Some(timestamp(config.created_ms)),
                bucket_region: Some(config.location_constraint.unwrap_or_else(|| "us-east-1".into())),
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(Owner { display_name: Some("firehose-kit".into()), id: Some(self.account_id.clone()) }),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let config = self.store.bucket_config(&req.input.bucket).map_err(map_err)?;
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: config.location_constraint.map(BucketLocationConstraint::from),
        }))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        self.store.bucket_config(&req.input.bucket).map_err(map_err)?;
        // Versioning is never enabled in the emulator: an empty configuration, as S3 returns for such buckets.
        Ok(S3Response::new(GetBucketVersioningOutput::default()))
    }

    async fn put_bucket_tagging(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> S3Result<S3Response<PutBucketTaggingOutput>> {
        let tags: Vec<(String, String)> = req
            .input
            .tagging
            .tag_set
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
            .collect();
        if tags.len() > 50 {
            return Err(s3_error!(InvalidTag, "Object tags cannot be greater than 50"));
        }
        self.store.update_bucket_config(&req.input.bucket, |c| c.tags = Some(tags)).map_err(map_err)?;
        Ok(S3Response::new(PutBucketTaggingOutput::default()))
    }

    async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        let config = self.store.bucket_config(&req.input.bucket).map_err(map_err)?;
        let tags = config.tags.ok_or_else(|| s3_error!(NoSuchTagSet, "The TagSet does not exist"))?;
        let tag_set = tags.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect();
        Ok(S3Response::new(GetBucketTaggingOutput { tag_set }))
    }

    async fn delete_bucket_tagging(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
        self.store.update_bucket_config(&req.input.bucket, |c| c.tags = None).map_err(map_err)?;
        Ok(S3Response::new(DeleteBucketTaggingOutput::default()))
    }

    async fn put_public_access_block(
        &self,
        req: S3Request<PutPublicAccessBlockInput>,
    ) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
        let pab = req.input.public_access_block_configuration;
        self.store.update_bucket_config(&req.input.bucket, |c| c.public_access_block = Some(pab)).map_err(map_err)?;
        Ok(S3Response::new(PutPublicAccessBlockOutput::default()))
    }

    async fn get_public_access_block(
        &self,
        req: S3Request<GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        let config = self.store.bucket_config(&req.input.bucket).map_err(map_err)?;
        let pab = config.public_access_block.ok_or_else(|| {
            not_found("NoSuchPublicAccessBlockConfiguration", "The public access block configuration was not found")
        })?;
        Ok(S3Response::new(GetPublicAccessBlockOutput { public_access_block_configuration: Some(pab) }))
    }

    async fn delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
        self.store.update_bucket_config(&req.input.bucket, |c| c.public_access_block = None).map_err(map_err)?;
        Ok(S3Response::new(DeletePublicAccessBlockOutput::default()))
    }

    async fn put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        let sse = req.input.server_side_encryption_configuration;
        self.store.update_bucket_config(&req.input.bucket, |c| c.encryption = Some(sse)).map_err(map_err)?;
        Ok(S3Response::new(PutBucketEncryptionOutput::default()))
    }

    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        let config = self.store.bucket_config(&req.input.bucket).map_err(map_err)?;
        // Since January 2023 every bucket has SSE-S3 by default, so there is always a configuration to return.
        let sse = config.encryption.unwrap_or_else(|| ServerSideEncryptionConfiguration {
            rules: vec![ServerSideEncryptionRule {
                apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                    sse_algorithm: ServerSideEncryption::from_static(ServerSideEncryption::AES256),
                    kms_master_key_id: None,
                }),
                bucket_key_enabled: Some(false),
            }],
        });
        Ok(S3Response::new(GetBucketEncryptionOutput { server_side_encryption_configuration: Some(sse) }))
    }

    async fn delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
        self.store.update_bucket_config(&req.input.bucket, |c| c.encryption = None).map_err(map_err)?;
        Ok(S3Response::new(DeleteBucketEncryptionOutput::default()))
    }

    async fn put_bucket_ownership_controls(
        &self,
        req: S3Request<PutBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
        let Some(rule) = req.input.ownership_controls.rules.first() else {
            return Err(s3_error!(MalformedXML, "OwnershipControls must contain exactly one rule"));
        };
        let ownership = rule.object_ownership.as_str().to_string();
        self.store.update_bucket_config(&req.input.bucket, |c| c.ownership = Some(ownership)).map_err(map_err)?;
        Ok(S3Response::new(PutBucketOwnershipControlsOutput::default()))
    }

    async fn get_bucket_ownership_controls(
        &self,
        req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
        let config = self.store.bucket_config(&req.input.bucket).map_err(map_err)?;
        let ownership = config.ownership.ok_or_else(|| {
            not_found("OwnershipControlsNotFoundError", "The bucket ownership controls were not found")
        })?;
        let controls = OwnershipControls {
            rules: vec![OwnershipControlsRule { object_ownership: ObjectOwnership::from(ownership) }],
        };
        Ok(S3Response::new(GetBucketOwnershipControlsOutput { ownership_controls: Some(controls) }))
    }

    async fn delete_bucket_ownership_controls(
        &self,
        req: S3Request<DeleteBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
        self.store.update_bucket_config(&req.input.bucket, |c| c.ownership = None).map_err(map_err)?;
        Ok(S3Response::new(DeleteBucketOwnershipControlsOutput::default()))
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        let policy = req.input.policy;
        if serde_json::from_str::<serde_json::Value>(&policy).is_err() {
            return Err(s3_error!(MalformedPolicy, "Policies must be valid JSON and the first byte must be '{{'"));
        }
        self.store.update_bucket_config(&req.input.bucket, |c| c.policy = Some(policy)).map_err(map_err)?;
        Ok(S3Response::new(PutBucketPolicyOutput::default()))
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        let config = self.store.bucket_config(&req.input.bucket).map_err(map_err)?;
        let policy = config.policy.ok_or_else(|| s3_error!(NoSuchBucketPolicy, "The bucket policy does not exist"))?;
        Ok(S3Response::new(GetBucketPolicyOutput { policy: Some(policy) }))
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        self.store.update_bucket_config(&req.input.bucket, |c| c.policy = None).map_err(map_err)?;
        Ok(S3Response::new(DeleteBucketPolicyOutput::default()))
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let trailing = req.trailing_headers.clone();
        let mut input = req.input;
        let body = input.body.take();
        let writer = write_body(&self.store, &input.bucket, body).await?;
        // The body has been read: an aws-chunked upload's trailer (with its checksum) is available now.
        let checksums = sent_checksums(&input, trailing.and_then(|t| t.take()).as_ref());
        let mut attrs = put_attrs(input.content_type.take(), input.content_encoding.take(), input.metadata.take());
        attrs.checksums = checksums.clone();
        let store = self.store.clone();
        let meta = tokio::task::spawn_blocking(move || store.commit(&input.bucket, &input.key, writer, attrs))
            .await
            .map_err(S3Error::internal_error)?
            .map_err(map_err)?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&meta)),
            server_side_encryption: Some(ServerSideEncryption::from_static(ServerSideEncryption::AES256)),
            checksum_crc32: checksums.get("CRC32").cloned(),
            checksum_crc32c: checksums.get("CRC32C").cloned(),
            checksum_sha1: checksums.get("SHA1").cloned(),
            checksum_sha256: checksums.get("SHA256").cloned(),
            checksum_crc64nvme: checksums.get("CRC64NVME").cloned(),
            ..Default::default()
        }))
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let (meta, path) = self.store.get(&input.bucket, &input.key).map_err(map_err)?;
        let mut file = tokio::fs::File::open(&path).await.map_err(S3Error::internal_error)?;
        let (start, len, content_range) = match &input.range {
            None => (0, meta.size, None),
            Some(range) => {
                let r = range
                    .check(meta.size)
                    .map_err(|_| s3_error!(InvalidRange, "The requested range is not satisfiable"))?;
                let header = format!("bytes {}-{}/{}", r.start, r.end.saturating_sub(1), meta.size);
                (r.start, r.end - r.start, Some(header))
            }
        };
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start)).await.map_err(S3Error::internal_error)?;
        }
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024);
        let partial = content_range.is_some();
        let mut resp = S3Response::new(GetObjectOutput {
            body: Some(StreamingBlob::wrap(stream)),
            content_length: Some(len as i64),
            content_range,
            content_type: meta.content_type.clone(),
            content_encoding: meta.content_encoding.clone(),
            e_tag: Some(etag(&meta)),
            last_modified: Some(timestamp(meta.last_modified_ms)),
            metadata: (!meta.metadata.is_empty()).then(|| meta.metadata.clone().into_iter().collect()),
            accept_ranges: Some("bytes".into()),
            server_side_encryption: Some(ServerSideEncryption::from_static(ServerSideEncryption::AES256)),
            // A checksum covers the whole object: not returned for a range.
            checksum_crc32: (!partial)
                .then(|| returned_checksum(&meta, input.checksum_mode.as_ref(), "CRC32"))
                .flatten(),
            checksum_crc32c: (!partial)
                .then(|| returned_checksum(&meta, input.checksum_mode.as_ref(), "CRC32C"))
                .flatten(),
            checksum_sha1: (!partial).then(|| returned_checksum(&meta, input.checksum_mode.as_ref(), "SHA1")).flatten(),
            checksum_sha256: (!partial)
                .then(|| returned_checksum(&meta, input.checksum_mode.as_ref(), "SHA256"))
                .flatten(),
            checksum_crc64nvme: (!partial)
                .then(|| returned_checksum(&meta, input.checksum_mode.as_ref(), "CRC64NVME"))
                .flatten(),
            ..Default::default()
        });
        if partial {
            resp.status = Some(http::StatusCode::PARTIAL_CONTENT);
        }
        Ok(resp)
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let (meta, _) = self.store.get(&req.input.bucket, &req.input.key).map_err(map_err)?;
        let mode = req.input.checksum_mode.as_ref();
        Ok(S3Response::new(HeadObjectOutput {
            checksum_crc32: returned_checksum(&meta, mode, "CRC32"),
            checksum_crc32c: returned_checksum(&meta, mode, "CRC32C"),
            checksum_sha1: returned_checksum(&meta, mode, "SHA1"),
            checksum_sha256: returned_checksum(&meta, mode, "SHA256"),
            checksum_crc64nvme: returned_checksum(&meta, mode, "CRC64NVME"),
            content_length: Some(meta.size as i64),
            content_type: meta.content_type.clone(),
            content_encoding: meta.content_encoding.clone(),
            e_tag: Some(etag(&meta)),
            last_modified: Some(timestamp(meta.last_modified_ms)),
            metadata: (!meta.metadata.is_empty()).then(|| meta.metadata.clone().into_iter().collect()),
            accept_ranges: Some("bytes".into()),
            server_side_encryption: Some(ServerSideEncryption::from_static(ServerSideEncryption::AES256)),
            ..Default::default()
        }))
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let CopySource::Bucket { bucket: src_bucket, key: src_key, .. } = &input.copy_source else {
            return Err(s3_error!(NotImplemented, "Copying from an access point is not supported by the emulator"));
        };
        let (src_meta, src_path) = self.store.get(src_bucket, src_key).map_err(map_err)?;
        let replace = input.metadata_directive.as_ref().is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let attrs = if replace {
            put_attrs(input.content_type, input.content_encoding, input.metadata)
        } else {
            PutAttrs {
                content_type: src_meta.content_type.clone(),
                content_encoding: src_meta.content_encoding.clone(),
                metadata: src_meta.metadata.clone(),
                checksums: src_meta.checksums.clone(),
            }
        };
        let store = self.store.clone();
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        let meta = tokio::task::spawn_blocking(move || -> Result<ObjectMeta, StoreError> {
            let mut writer = store.begin_write(&bucket)?;
            let mut src = std::fs::File::open(src_path)?;
            std::io::copy(&mut src, &mut writer)?;
            store.commit(&bucket, &key, writer, attrs)
        })
        .await
        .map_err(S3Error::internal_error)?
        .map_err(map_err)?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&meta)),
                last_modified: Some(timestamp(meta.last_modified_ms)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.store.delete(&req.input.bucket, &req.input.key).map_err(map_err)?;
        Ok(S3Response::with_status(DeleteObjectOutput::default(), http::StatusCode::NO_CONTENT))
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        if input.delete.objects.len() > 1000 {
            return Err(s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate"));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for id in input.delete.objects {
            match self.store.delete(&input.bucket, &id.key) {
                Ok(_) => deleted.push(DeletedObject { key: Some(id.key), ..Default::default() }),
                Err(StoreError::NoSuchBucket) => return Err(map_err(StoreError::NoSuchBucket)),
                Err(e) => errors.push(Error {
                    key: Some(id.key),
                    code: Some("InternalError".into()),
                    message: Some(e.to_string()),
                    ..Default::default()
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: (!quiet).then_some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let max_keys = input.max_keys.unwrap_or(1000).clamp(0, 1000) as usize;
        let prefix = input.prefix.clone().unwrap_or_default();
        let after = input.continuation_token.clone().or(input.start_after.clone());
        let page = self
            .store
            .list(&input.bucket, &prefix, input.delimiter.as_deref(), after.as_deref(), max_keys)
            .map_err(map_err)?;
        let key_count = (page.objects.len() + page.common_prefixes.len()) as i32;
        let enc = Encoding::of(input.encoding_type.as_ref());
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(enc.text(prefix)),
            delimiter: enc.opt(input.delimiter),
            max_keys: Some(max_keys as i32),
            key_count: Some(key_count),
            continuation_token: input.continuation_token,
            start_after: enc.opt(input.start_after),
            is_truncated: Some(page.next_marker.is_some()),
            next_continuation_token: page.next_marker,
            contents: Some(enc.objects(&page.objects)),
            common_prefixes: enc.prefixes(page.common_prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let max_keys = input.max_keys.unwrap_or(1000).clamp(0, 1000) as usize;
        let prefix = input.prefix.clone().unwrap_or_default();
        let page = self
            .store
            .list(&input.bucket, &prefix, input.delimiter.as_deref(), input.marker.as_deref(), max_keys)
            .map_err(map_err)?;
        let enc = Encoding::of(input.encoding_type.as_ref());
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(enc.text(prefix)),
            marker: enc.opt(input.marker),
            delimiter: enc.opt(input.delimiter),
            max_keys: Some(max_keys as i32),
            is_truncated: Some(page.next_marker.is_some()),
            next_marker: enc.opt(page.next_marker),
            contents: Some(enc.objects(&page.objects)),
            common_prefixes: enc.prefixes(page.common_prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        // Versioning is never enabled here, so every object is its one "null" version and there are no delete
        // markers: what S3 answers for an unversioned bucket.
        let input = req.input;
        let max_keys = input.max_keys.unwrap_or(1000).clamp(0, 1000) as usize;
        let prefix = input.prefix.clone().unwrap_or_default();
        let page = self
            .store
            .list(&input.bucket, &prefix, input.delimiter.as_deref(), input.key_marker.as_deref(), max_keys)
            .map_err(map_err)?;
        let enc = Encoding::of(input.encoding_type.as_ref());
        let versions = page
            .objects
            .iter()
            .map(|m| ObjectVersion {
                key: Some(enc.text(m.key.clone())),
                version_id: Some("null".into()),
                is_latest: Some(true),
                size: Some(m.size as i64),
                e_tag: Some(etag(m)),
                last_modified: Some(timestamp(m.last_modified_ms)),
                storage_class: Some(ObjectVersionStorageClass::from_static(ObjectVersionStorageClass::STANDARD)),
                ..Default::default()
            })
            .collect();
        let truncated = page.next_marker.is_some();
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(input.bucket),
            prefix: Some(enc.text(prefix)),
            delimiter: enc.opt(input.delimiter),
            key_marker: enc.opt(input.key_marker),
            max_keys: Some(max_keys as i32),
            is_truncated: Some(truncated),
            next_version_id_marker: truncated.then(|| "null".to_string()),
            next_key_marker: enc.opt(page.next_marker),
            versions: Some(versions),
            common_prefixes: enc.prefixes(page.common_prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        self.store.bucket_config(&input.bucket).map_err(map_err)?;
        let upload_id = uuid::Uuid::new_v4().simple().to_string();
        let upload = Upload {
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            attrs: put_attrs(input.content_type, input.content_encoding, input.metadata),
            parts: BTreeMap::new(),
        };
        crate::lock(&self.uploads).insert(upload_id.clone(), upload);
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            ..Default::default()
        }))
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let input = req.input;
        if !crate::lock(&self.uploads).contains_key(&input.upload_id) {
            return Err(s3_error!(NoSuchUpload, "The specified upload does not exist."));
        }
        if !(1..=10_000).contains(&input.part_number) {
            return Err(s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"));
        }
        let dir = self.store.uploads_dir().join(&input.upload_id);
        tokio::fs::create_dir_all(&dir).await.map_err(S3Error::internal_error)?;
        let path = dir.join(format!("{}.part", input.part_number));
        let mut file = tokio::fs::File::create(&path).await.map_err(S3Error::internal_error)?;
        let mut md5 = Md5::new();
        let mut size = 0u64;
        if let Some(mut body) = input.body {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| S3Error::with_message(S3ErrorCode::IncompleteBody, e.to_string()))?;
                md5.update(&chunk);
                size += chunk.len() as u64;
                file.write_all(&chunk).await.map_err(S3Error::internal_error)?;
            }
        }
        file.flush().await.map_err(S3Error::internal_error)?;
        let digest: [u8; 16] = md5.finalize().into();
        let mut uploads = crate::lock(&self.uploads);
        let upload = uploads
            .get_mut(&input.upload_id)
            .ok_or_else(|| s3_error!(NoSuchUpload, "The specified upload does not exist."))?;
        upload.parts.insert(input.part_number, (path, size, digest));
        Ok(S3Response::new(UploadPartOutput { e_tag: Some(ETag::Strong(hex::encode(digest))), ..Default::default() }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let upload = self
            .uploads
            .lock()
            .expect("uploads lock")
            .remove(&input.upload_id)
            .ok_or_else(|| s3_error!(NoSuchUpload, "The specified upload does not exist."))?;
        let requested = input.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
        let mut parts = Vec::with_capacity(requested.len());
        for part in &requested {
            let number = part.part_number.unwrap_or(0);
            let Some((path, _, md5)) = upload.parts.get(&number) else {
                return Err(s3_error!(InvalidPart, "One or more of the specified parts could not be found."));
            };
            parts.push((path.clone(), *md5));
        }
        let store = self.store.clone();
        let (bucket, key) = (upload.bucket.clone(), upload.key.clone());
        let dir = self.store.uploads_dir().join(&input.upload_id);
        let meta = tokio::task::spawn_blocking(move || {
            let result = store.commit_parts(&bucket, &key, &parts, upload.attrs);
            let _ = std::fs::remove_dir_all(dir);
            result
        })
        .await
        .map_err(S3Error::internal_error)?
        .map_err(map_err)?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(upload.bucket),
            key: Some(upload.key),
            e_tag: Some(etag(&meta)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let removed = crate::lock(&self.uploads).remove(&req.input.upload_id);
        if removed.is_none() {
            return Err(s3_error!(NoSuchUpload, "The specified upload does not exist."));
        }
        let _ = tokio::fs::remove_dir_all(self.store.uploads_dir().join(&req.input.upload_id)).await;
        Ok(S3Response::with_status(AbortMultipartUploadOutput::default(), http::StatusCode::NO_CONTENT))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        self.store.bucket_config(&req.input.bucket).map_err(map_err)?;
        let enc = Encoding::of(req.input.encoding_type.as_ref());
        let uploads = crate::lock(&self.uploads);
        let list = uploads
            .iter()
            .filter(|(_, u)| u.bucket == req.input.bucket)
            .map(|(id, u)| MultipartUpload {
                key: Some(enc.text(u.key.clone())),
                upload_id: Some(id.clone()),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(req.input.bucket.clone()),
            uploads: Some(list),
            is_truncated: Some(false),
            encoding_type: req.input.encoding_type.clone(),
            ..Default::default()
        }))
    }
}

/// s3s authentication: any access key id, one fixed secret (like LocalStack's `test`).
pub struct FixedSecret(pub String);

#[async_trait::async_trait]
impl s3s::auth::S3Auth for FixedSecret {
    async fn get_secret_key(&self, _access_key: &str) -> S3Result<s3s::auth::SecretKey> {
        Ok(s3s::auth::SecretKey::from(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::{stored_content_encoding, url_encode};

    #[test]
    fn aws_chunked_is_not_stored() {
        assert_eq!(stored_content_encoding("aws-chunked"), None);
        assert_eq!(stored_content_encoding("gzip,aws-chunked").as_deref(), Some("gzip"));
        assert_eq!(stored_content_encoding("aws-chunked, gzip").as_deref(), Some("gzip"));
        assert_eq!(stored_content_encoding("gzip").as_deref(), Some("gzip"));
    }

    /// As measured on S3 (docs/emulator.md): form style, `/` kept.
    #[test]
    fn listing_keys_are_encoded_as_s3_encodes_them() {
        assert_eq!(url_encode("a b.txt"), "a+b.txt");
        assert_eq!(url_encode("a+b.txt"), "a%2Bb.txt");
        assert_eq!(url_encode("100%.csv"), "100%25.csv");
        assert_eq!(url_encode("test_file(3).png"), "test_file%283%29.png");
        assert_eq!(url_encode("dir/日本"), "dir/%E6%97%A5%E6%9C%AC");
        assert_eq!(url_encode("status=404/~x"), "status%3D404/~x");
    }
}
