//! S3 calls firehose-kit makes: the destination bucket's lifecycle and hardening, listing and reading delivered
//! objects, and emptying a bucket for teardown.

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectIdentifier, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::sdk_error;
use crate::error::{Error, Result};

/// What HeadBucket says about a bucket name.
#[derive(Debug, Clone, PartialEq)]
pub enum BucketState {
    Missing,
    /// Ours (or at least readable by us).
    Exists,
    /// Exists but belongs to someone else (403).
    Forbidden,
}

/// An object as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
}

fn build_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::failed(format!("cannot build the {what} request: {e}"))
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

pub async fn bucket_state(s3: &Client, bucket: &str) -> Result<BucketState> {
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(BucketState::Exists),
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            if e.as_service_error().is_some_and(|s| s.is_not_found()) || status == Some(404) {
                Ok(BucketState::Missing)
            } else if status == Some(403) {
                Ok(BucketState::Forbidden)
            } else if status == Some(301) {
                // Exists in another region; HeadBucket answers with a redirect.
                Ok(BucketState::Exists)
            } else {
                Err(sdk_error(format!("check bucket `{bucket}`"), e))
            }
        }
    }
}

/// Creates the bucket in `region` (no LocationConstraint for us-east-1, as S3 requires). Returns `false` when
/// the bucket already existed and is ours.
pub async fn create_bucket(s3: &Client, bucket: &str, region: &str) -> Result<bool> {
    let mut req = s3.create_bucket().bucket(bucket);
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region)).build(),
        );
    }
    match req.send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you()) => Ok(false),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_exists()) => {
            Err(sdk_error(format!("create bucket `{bucket}`"), e).with_hint(
                "the name is taken by another account (bucket names are global): choose another with --bucket",
            ))
        }
        Err(e) => Err(sdk_error(format!("create bucket `{bucket}`"), e)),
    }
}

pub async fn bucket_tags(s3: &Client, bucket: &str) -> Result<Vec<(String, String)>> {
    match s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => Ok(out.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()),
        Err(e) if e.code() == Some("NoSuchTagSet") => Ok(Vec::new()),
        Err(e) => Err(sdk_error(format!("read tags of bucket `{bucket}`"), e)),
    }
}

pub async fn put_bucket_tags(s3: &Client, bucket: &str, tags: &[(String, String)]) -> Result<()> {
    let tag_set = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(|e| build_err("tag", e)))
        .collect::<Result<Vec<_>>>()?;
    let tagging = Tagging::builder().set_tag_set(Some(tag_set)).build().map_err(|e| build_err("tagging", e))?;
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .map_err(|e| sdk_error(format!("tag bucket `{bucket}`"), e))?;
    Ok(())
}

/// The four Block Public Access settings, `None` when none are configured.
pub async fn public_access_block(s3: &Client, bucket: &str) -> Result<Option<[bool; 4]>> {
    match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => Ok(out.public_access_block_configuration().map(|c| {
            [
                c.block_public_acls().unwrap_or(false),
                c.ignore_public_acls().unwrap_or(false),
                c.block_public_policy().unwrap_or(false),
                c.restrict_public_buckets().unwrap_or(false),
            ]
        })),
        Err(e) if e.code() == Some("NoSuchPublicAccessBlockConfiguration") => Ok(None),
        Err(e) => Err(sdk_error(format!("read the public access block of bucket `{bucket}`"), e)),
    }
}

pub async fn block_public_access(s3: &Client, bucket: &str) -> Result<()> {
    let config = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(config)
        .send()
        .await
        .map_err(|e| sdk_error(format!("block public access to bucket `{bucket}`"), e))?;
    Ok(())
}

pub async fn ownership(s3: &Client, bucket: &str) -> Result<Option<String>> {
    match s3.get_bucket_ownership_controls().bucket(bucket).send().await {
        Ok(out) => Ok(out
            .ownership_controls()
            .and_then(|c| c.rules().first())
            .map(|r| r.object_ownership().as_str().to_string())),
        Err(e) if e.code() == Some("OwnershipControlsNotFoundError") => Ok(None),
        Err(e) => Err(sdk_error(format!("read object ownership of bucket `{bucket}`"), e)),
    }
}

pub async fn enforce_bucket_owner(s3: &Client, bucket: &str) -> Result<()> {
    let rule = OwnershipControlsRule::builder()
        .object_ownership(ObjectOwnership::BucketOwnerEnforced)
        .build()
        .map_err(|e| build_err("ownership rule", e))?;
    let controls = OwnershipControls::builder().rules(rule).build().map_err(|e| build_err("ownership controls", e))?;
    s3.put_bucket_ownership_controls()
        .bucket(bucket)
        .ownership_controls(controls)
        .send()
        .await
        .map_err(|e| sdk_error(format!("set object ownership of bucket `{bucket}`"), e))?;
    Ok(())
}

/// The default encryption algorithm (`AES256`, `aws:kms`, ...), `None` when not configured.
pub async fn encryption(s3: &Client, bucket: &str) -> Result<Option<String>> {
    match s3.get_bucket_encryption().bucket(bucket).send().await {
        Ok(out) => Ok(out
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .map(|d| d.sse_algorithm().as_str().to_string())),
        Err(e) if e.code() == Some("ServerSideEncryptionConfigurationNotFoundError") => Ok(None),
        Err(e) => Err(sdk_error(format!("read default encryption of bucket `{bucket}`"), e)),
    }
}

pub async fn encrypt_sse_s3(s3: &Client, bucket: &str) -> Result<()> {
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::Aes256)
        .build()
        .map_err(|e| build_err("encryption default", e))?;
    let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(default).build();
    let config =
        ServerSideEncryptionConfiguration::builder().rules(rule).build().map_err(|e| build_err("encryption", e))?;
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(config)
        .send()
        .await
        .map_err(|e| sdk_error(format!("set default encryption of bucket `{bucket}`"), e))?;
    Ok(())
}

/// The bucket's region (GetBucketLocation: an empty constraint means us-east-1, `EU` means eu-west-1).
pub async fn bucket_region(s3: &Client, bucket: &str) -> Result<String> {
    let out = s3
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| sdk_error(format!("read the region of bucket `{bucket}`"), e))?;
    Ok(match out.location_constraint().map(|c| c.as_str()) {
        None | Some("") => "us-east-1".to_string(),
        Some("EU") => "eu-west-1".to_string(),
        Some(other) => other.to_string(),
    })
}

pub async fn bucket_policy(s3: &Client, bucket: &str) -> Result<Option<String>> {
    match s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(out) => Ok(out.policy().map(str::to_string)),
        Err(e) if e.code() == Some("NoSuchBucketPolicy") => Ok(None),
        Err(e) => Err(sdk_error(format!("read the policy of bucket `{bucket}`"), e)),
    }
}

pub async fn put_bucket_policy(s3: &Client, bucket: &str, policy: &str) -> Result<()> {
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .map_err(|e| sdk_error(format!("set the policy of bucket `{bucket}`"), e))?;
    Ok(())
}

/// Every object under `prefix` (all pages).
pub async fn list_objects(s3: &Client, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>> {
    let mut out = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error(format!("list objects in `s3://{bucket}/{prefix}`"), e))?;
        for o in page.contents() {
            out.push(ListedObject {
                key: o.key().unwrap_or_default().to_string(),
                size: o.size().unwrap_or(0).max(0) as u64,
                last_modified: o.last_modified().and_then(to_chrono),
            });
        }
    }
    Ok(out)
}

/// An object's body, to be read on a blocking thread as it downloads (never held whole).
pub async fn get_object_reader(s3: &Client, bucket: &str, key: &str) -> Result<impl std::io::Read + Send + 'static> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| sdk_error(format!("download `s3://{bucket}/{key}`"), e))?;
    Ok(tokio_util::io::SyncIoBridge::new(out.body.into_async_read()))
}

/// An object's whole body.
pub async fn get_object_bytes(s3: &Client, bucket: &str, key: &str) -> Result<Vec<u8>> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| sdk_error(format!("read s3://{bucket}/{key}"), e))?;
    let body = out.body.collect().await.map_err(|e| Error::failed(format!("read s3://{bucket}/{key}: {e}")))?;
    Ok(body.into_bytes().to_vec())
}

/// Every object version and delete marker in the bucket: (key, version id, size).
pub async fn list_versions(s3: &Client, bucket: &str) -> Result<Vec<(String, Option<String>, u64)>> {
    let mut out = Vec::new();
    let mut key_marker: Option<String> = None;
    let mut version_marker: Option<String> = None;
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .map_err(|e| sdk_error(format!("list object versions in bucket `{bucket}`"), e))?;
        for v in page.versions() {
            out.push((
                v.key().unwrap_or_default().to_string(),
                v.version_id().map(str::to_string),
                v.size().unwrap_or(0).max(0) as u64,
            ));
        }
        for m in page.delete_markers() {
            out.push((m.key().unwrap_or_default().to_string(), m.version_id().map(str::to_string), 0));
        }
        if !page.is_truncated().unwrap_or(false) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
        if key_marker.is_none() {
            break;
        }
    }
    Ok(out)
}

/// Deletes up to 1,000 object versions in one call; returns how many S3 reported as failed.
pub async fn delete_objects(s3: &Client, bucket: &str, objects: &[(String, Option<String>, u64)]) -> Result<usize> {
    let ids = objects
        .iter()
        .map(|(key, version, _)| {
            let version = version.clone().filter(|v| v != "null");
            ObjectIdentifier::builder().key(key).set_version_id(version).build().map_err(|e| build_err("object id", e))
        })
        .collect::<Result<Vec<_>>>()?;
    let delete = Delete::builder().set_objects(Some(ids)).quiet(true).build().map_err(|e| build_err("delete", e))?;
    let out = s3
        .delete_objects()
        .bucket(bucket)
        .delete(delete)
        .send()
        .await
        .map_err(|e| sdk_error(format!("delete objects in bucket `{bucket}`"), e))?;
    Ok(out.errors().len())
}

/// Deletes an (empty) bucket; `false` when it was already gone.
pub async fn delete_bucket(s3: &Client, bucket: &str) -> Result<bool> {
    match s3.delete_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("NoSuchBucket") => Ok(false),
        Err(e) => Err(sdk_error(format!("delete bucket `{bucket}`"), e)),
    }
}
