//! Listing in the emulator's S3: buckets, objects (V1 and V2, with delimiters, markers and `EncodingType=url`) and
//! object versions (one each: versioning is not modelled).

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::api::S3Api;
use super::wire::*;

impl S3Api {
    pub(super) async fn list_buckets_op(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
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

    pub(super) async fn list_objects_v2_op(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
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

    pub(super) async fn list_objects_op(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
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

    pub(super) async fn list_object_versions_op(
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
}
