//! S3 multipart uploads in the emulator: parts written to files as they arrive, the object assembled at
//! completion (its ETag the MD5 of the parts' MD5s, `-<parts>`), kept in memory while in progress (an upload does
//! not survive a restart, which S3 clients handle by starting over).

use std::collections::BTreeMap;

use futures::StreamExt;
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use tokio::io::AsyncWriteExt;

use super::api::{S3Api, Upload};
use super::wire::*;

impl S3Api {
    pub(super) async fn create_multipart_upload_op(
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

    pub(super) async fn upload_part_op(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
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

    pub(super) async fn complete_multipart_upload_op(
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

    pub(super) async fn abort_multipart_upload_op(
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

    pub(super) async fn list_multipart_uploads_op(
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
