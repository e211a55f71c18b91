//! The S3 protocol face of the emulator: s3s parses and signs-checks the REST requests, this `impl S3` maps each
//! operation onto the [`Store`] with S3's semantics (BucketAlreadyOwnedByYou, BucketNotEmpty, the 404 codes of
//! the bucket sub-resources, ETags in listings). Operations not listed here answer s3s's `NotImplemented`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use s3s::dto::*;
use s3s::{S3, S3Error, S3Request, S3Response, S3Result, s3_error};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::store::{ObjectMeta, PutAttrs, Store, StoreError};
use super::wire::*;

/// S3 over a [`Store`], plus the in-progress multipart uploads (kept in memory: an upload does not survive a
/// restart, which S3 clients handle by starting over).
#[derive(Clone)]
pub struct S3Api {
    pub(super) store: Arc<Store>,
    pub(super) uploads: Arc<Mutex<HashMap<String, Upload>>>,
    pub(super) account_id: String,
}

pub(super) struct Upload {
    pub(super) bucket: String,
    pub(super) key: String,
    pub(super) attrs: PutAttrs,
    /// part number → (file, size, md5)
    pub(super) parts: BTreeMap<i32, (PathBuf, u64, [u8; 16])>,
}

impl S3Api {
    pub fn new(store: Arc<Store>, account_id: String) -> Self {
        S3Api { store, uploads: Arc::default(), account_id }
    }
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
        self.list_buckets_op(_req).await
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
        self.list_objects_v2_op(req).await
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        self.list_objects_op(req).await
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        self.list_object_versions_op(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.create_multipart_upload_op(req).await
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        self.upload_part_op(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.complete_multipart_upload_op(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.abort_multipart_upload_op(req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        self.list_multipart_uploads_op(req).await
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
