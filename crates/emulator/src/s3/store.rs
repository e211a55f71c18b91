//! The emulator's object storage: buckets, their configuration and their objects, on disk under the data dir,
//! with an in-memory index for listing.
//!
//! Layout: `<root>/<bucket>/bucket.json` (configuration) and `<root>/<bucket>/objects/` holding, per object, a
//! metadata document `<key-hash>.json` and its bytes `<key-hash>-<uuid>.data`. A write goes: data to a new file,
//! then the metadata document atomically renamed into place (the commit point), then the previous data file is
//! removed. A process killed at any step leaves either the old or the new object; data files no metadata points
//! to are swept at start-up. This layer knows nothing of the S3 protocol: `api.rs` adapts it to s3s.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use firehose_kit_domain::util::persist;

/// What can go wrong in the store; mapped to S3 error codes by the API layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("The specified bucket does not exist")]
    NoSuchBucket,
    #[error("The specified key does not exist.")]
    NoSuchKey,
    #[error("The bucket you tried to delete is not empty")]
    BucketNotEmpty,
    #[error("Your previous request to create the named bucket succeeded and you already own it.")]
    BucketAlreadyOwnedByYou,
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Bucket configuration kept by the emulator (the parts setup and teardown use).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BucketConfig {
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// The LocationConstraint given at creation; `None` means us-east-1 (no constraint).
    pub location_constraint: Option<String>,
    pub tags: Option<Vec<(String, String)>>,
    pub public_access_block: Option<s3s::dto::PublicAccessBlockConfiguration>,
    pub encryption: Option<s3s::dto::ServerSideEncryptionConfiguration>,
    /// The ObjectOwnership setting (`BucketOwnerEnforced`, ...).
    pub ownership: Option<String>,
    pub policy: Option<String>,
}

/// One stored object's metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// The ETag without quotes: hex MD5 for single uploads, `<md5-of-md5s>-<parts>` for multipart uploads.
    pub etag: String,
    pub last_modified_ms: i64,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Flexible checksums the client sent (`CRC32`, `CRC32C`, `SHA1`, `SHA256`, `CRC64NVME` → base64 value).
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
    /// File name of the bytes in the bucket's `objects/` directory.
    pub file: String,
}

/// Attributes given when writing an object.
#[derive(Debug, Clone, Default)]
pub struct PutAttrs {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub checksums: BTreeMap<String, String>,
}

struct Bucket {
    config: BucketConfig,
    objects: BTreeMap<String, Entry>,
}

/// What memory keeps of an object: what a listing shows (40 bytes beside its key). The rest (content type, user
/// metadata, checksums, the file of its bytes) is in its metadata document, read when the object is.
#[derive(Debug, Clone, Copy)]
struct Entry {
    size: u64,
    last_modified_ms: i64,
    md5: [u8; 16],
    /// The parts of a multipart upload (its ETag is `<md5 of the parts' md5s>-<parts>`); 0 for a single upload.
    parts: u32,
}

impl Entry {
    fn of(meta: &ObjectMeta) -> Entry {
        let (hex, parts) = match meta.etag.split_once('-') {
            Some((hex, n)) => (hex, n.parse().unwrap_or(0)),
            None => (meta.etag.as_str(), 0),
        };
        let mut md5 = [0u8; 16];
        let _ = hex::decode_to_slice(hex, &mut md5);
        Entry { size: meta.size, last_modified_ms: meta.last_modified_ms, md5, parts }
    }

    fn etag(&self) -> String {
        match self.parts {
            0 => hex::encode(self.md5),
            n => format!("{}-{n}", hex::encode(self.md5)),
        }
    }

    /// The listing's view of the object (no content type, metadata or file: listings do not show them).
    fn listed(&self, key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.to_string(),
            size: self.size,
            etag: self.etag(),
            last_modified_ms: self.last_modified_ms,
            content_type: None,
            content_encoding: None,
            metadata: BTreeMap::new(),
            checksums: BTreeMap::new(),
            file: String::new(),
        }
    }
}

/// A page of a listing.
#[derive(Debug, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectMeta>,
    pub common_prefixes: Vec<String>,
    /// The last key or common prefix returned when the listing was cut short, to continue after it.
    pub next_marker: Option<String>,
}

/// Buckets and objects under one root directory.
pub struct Store {
    root: PathBuf,
    buckets: RwLock<BTreeMap<String, Bucket>>,
    /// What a committed object must survive (`local --fsync`: a machine crash).
    durability: persist::Durability,
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn key_hash(key: &str) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes()))
}

impl Store {
    /// Opens (or creates) the store under `root`, loading every bucket and object and sweeping leftovers of
    /// interrupted writes.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(root)?;
        let mut buckets = BTreeMap::new();
        for entry in std::fs::read_dir(root)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let dir = entry.path();
            let Some(config) = persist::read_json::<BucketConfig>(&dir.join("bucket.json"))? else {
                // A bucket directory without its document is a create that never committed.
                std::fs::remove_dir_all(&dir)?;
                continue;
            };
            let objects = load_objects(&dir.join("objects"))?;
            buckets.insert(name, Bucket { config, objects });
        }
        Ok(Store { root: root.to_path_buf(), buckets: RwLock::new(buckets), durability: Default::default() })
    }

    /// Objects committed from now on are synced as `durability` asks.
    pub fn with_durability(mut self, durability: persist::Durability) -> Self {
        self.durability = durability;
        self
    }

    fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.join(bucket)
    }

    fn objects_dir(&self, bucket: &str) -> PathBuf {
        self.root.join(bucket).join("objects")
    }

    pub fn create_bucket(&self, bucket: &str, location_constraint: Option<String>) -> Result<(), StoreError> {
        let mut buckets = crate::write(&self.buckets);
        if buckets.contains_key(bucket) {
            return Err(StoreError::BucketAlreadyOwnedByYou);
        }
        let config = BucketConfig { created_ms: now_ms(), location_constraint, ..Default::default() };
        std::fs::create_dir_all(self.objects_dir(bucket))?;
        persist::write_json(&self.bucket_dir(bucket).join("bucket.json"), &config)?;
        buckets.insert(bucket.to_string(), Bucket { config, objects: BTreeMap::new() });
        Ok(())
    }

    pub fn delete_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        let mut buckets = crate::write(&self.buckets);
        let b = buckets.get(bucket).ok_or(StoreError::NoSuchBucket)?;
        if !b.objects.is_empty() {
            return Err(StoreError::BucketNotEmpty);
        }
        // Remove the document first: a bucket directory without it is swept at the next start.
        std::fs::remove_file(self.bucket_dir(bucket).join("bucket.json"))?;
        buckets.remove(bucket);
        let _ = std::fs::remove_dir_all(self.bucket_dir(bucket));
        Ok(())
    }

    pub fn bucket_exists(&self, bucket: &str) -> bool {
        crate::read(&self.buckets).contains_key(bucket)
    }

    /// Names and configuration of every bucket, sorted by name.
    pub fn list_buckets(&self) -> Vec<(String, BucketConfig)> {
        let buckets = crate::read(&self.buckets);
        buckets.iter().map(|(name, b)| (name.clone(), b.config.clone())).collect()
    }

    pub fn bucket_config(&self, bucket: &str) -> Result<BucketConfig, StoreError> {
        let buckets = crate::read(&self.buckets);
        buckets.get(bucket).map(|b| b.config.clone()).ok_or(StoreError::NoSuchBucket)
    }

    /// Changes a bucket's configuration with `f` and persists it.
    pub fn update_bucket_config(&self, bucket: &str, f: impl FnOnce(&mut BucketConfig)) -> Result<(), StoreError> {
        let mut buckets = crate::write(&self.buckets);
        let b = buckets.get_mut(bucket).ok_or(StoreError::NoSuchBucket)?;
        let mut config = b.config.clone();
        f(&mut config);
        persist::write_json(&self.bucket_dir(bucket).join("bucket.json"), &config)?;
        b.config = config;
        Ok(())
    }

    /// A writer for a new object's bytes in `bucket`; nothing is visible until [`Store::commit`].
    pub fn begin_write(&self, bucket: &str) -> Result<ObjectWriter, StoreError> {
        if !self.bucket_exists(bucket) {
            return Err(StoreError::NoSuchBucket);
        }
        let file_name = format!("{}.data", uuid::Uuid::new_v4().simple());
        let path = self.objects_dir(bucket).join(format!(".{file_name}.tmp"));
        let file = std::fs::File::create(&path)?;
        Ok(ObjectWriter {
            path,
            file_name,
            file: std::io::BufWriter::with_capacity(256 * 1024, file),
            md5: Md5::new(),
            size: 0,
        })
    }

    /// Makes a written object visible under `key`, replacing any previous object.
    pub fn commit(
        &self,
        bucket: &str,
        key: &str,
        writer: ObjectWriter,
        attrs: PutAttrs,
    ) -> Result<ObjectMeta, StoreError> {
        let (tmp_path, file_name, size, digest) = writer.finish(self.durability)?;
        let etag = hex::encode(digest);
        self.commit_file(bucket, key, tmp_path, file_name, size, etag, attrs)
    }

    #[allow(clippy::too_many_arguments)]
    fn commit_file(
        &self,
        bucket: &str,
        key: &str,
        tmp_path: PathBuf,
        file_name: String,
        size: u64,
        etag: String,
        attrs: PutAttrs,
    ) -> Result<ObjectMeta, StoreError> {
        let mut buckets = crate::write(&self.buckets);
        let Some(b) = buckets.get_mut(bucket) else {
            let _ = std::fs::remove_file(&tmp_path);
            return Err(StoreError::NoSuchBucket);
        };
        let dir = self.objects_dir(bucket);
        let hash = key_hash(key);
        let file_name = format!("{hash}-{file_name}");
        std::fs::rename(&tmp_path, dir.join(&file_name))?;
        let meta = ObjectMeta {
            key: key.to_string(),
            size,
            etag,
            last_modified_ms: now_ms(),
            content_type: attrs.content_type,
            content_encoding: attrs.content_encoding,
            metadata: attrs.metadata,
            checksums: attrs.checksums,
            file: file_name,
        };
        let meta_path = dir.join(format!("{hash}.json"));
        let previous = match b.objects.contains_key(key) {
            true => persist::read_json::<ObjectMeta>(&meta_path)?.map(|old| old.file),
            false => None,
        };
        persist::write_json_as(&meta_path, &meta, self.durability)?;
        b.objects.insert(key.to_string(), Entry::of(&meta));
        if let Some(old) = previous.filter(|old| *old != meta.file) {
            let _ = std::fs::remove_file(dir.join(old));
        }
        Ok(meta)
    }

    /// Writes a whole object from memory (used by the Firehose delivery engine).
    pub fn put_bytes(&self, bucket: &str, key: &str, bytes: &[u8], attrs: PutAttrs) -> Result<ObjectMeta, StoreError> {
        let mut writer = self.begin_write(bucket)?;
        writer.write_all(bytes)?;
        self.commit(bucket, key, writer, attrs)
    }

    /// The object's metadata (read from its document) and the path of its bytes.
    pub fn get(&self, bucket: &str, key: &str) -> Result<(ObjectMeta, PathBuf), StoreError> {
        let buckets = crate::read(&self.buckets);
        let b = buckets.get(bucket).ok_or(StoreError::NoSuchBucket)?;
        b.objects.get(key).ok_or(StoreError::NoSuchKey)?;
        let dir = self.objects_dir(bucket);
        let meta: ObjectMeta =
            persist::read_json(&dir.join(format!("{}.json", key_hash(key))))?.ok_or(StoreError::NoSuchKey)?;
        let path = dir.join(&meta.file);
        Ok((meta, path))
    }

    pub fn contains(&self, bucket: &str, key: &str) -> bool {
        let buckets = crate::read(&self.buckets);
        buckets.get(bucket).is_some_and(|b| b.objects.contains_key(key))
    }

    /// Deletes an object; deleting a missing key succeeds, as in S3. Returns whether something was deleted.
    pub fn delete(&self, bucket: &str, key: &str) -> Result<bool, StoreError> {
        let mut buckets = crate::write(&self.buckets);
        let b = buckets.get_mut(bucket).ok_or(StoreError::NoSuchBucket)?;
        if b.objects.remove(key).is_none() {
            return Ok(false);
        }
        let dir = self.objects_dir(bucket);
        let meta_path = dir.join(format!("{}.json", key_hash(key)));
        let old = persist::read_json::<ObjectMeta>(&meta_path)?;
        std::fs::remove_file(meta_path)?;
        if let Some(old) = old {
            let _ = std::fs::remove_file(dir.join(old.file));
        }
        Ok(true)
    }

    /// Lists keys in order after `after` (exclusive), under `prefix`, grouping by `delimiter`.
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, StoreError> {
        use std::ops::Bound;
        let buckets = crate::read(&self.buckets);
        let b = buckets.get(bucket).ok_or(StoreError::NoSuchBucket)?;
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        let mut page = ListPage::default();
        let mut count = 0usize;
        let mut last_prefix: Option<String> = None;
        for (key, meta) in b.objects.range((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if let Some(d) = delimiter.filter(|d| !d.is_empty())
                && let Some(pos) = key[prefix.len()..].find(d)
            {
                let common = &key[..prefix.len() + pos + d.len()];
                if last_prefix.as_deref() == Some(common) {
                    continue;
                }
                if after.is_some_and(|a| a.starts_with(common) && a.len() >= common.len()) {
                    // The previous page ended inside this common prefix: it was already returned.
                    continue;
                }
                if count == max_keys {
                    page.next_marker = last_prefix.clone().or_else(|| page.objects.last().map(|o| o.key.clone()));
                    break;
                }
                page.common_prefixes.push(common.to_string());
                last_prefix = Some(common.to_string());
                count += 1;
                continue;
            }
            if count == max_keys {
                page.next_marker = Some(marker_of(&page, &last_prefix));
                break;
            }
            page.objects.push(meta.listed(key));
            last_prefix = None;
            count += 1;
        }
        Ok(page)
    }

    /// Number of objects and their total size in `bucket`.
    pub fn usage(&self, bucket: &str) -> Result<(usize, u64), StoreError> {
        let buckets = crate::read(&self.buckets);
        let b = buckets.get(bucket).ok_or(StoreError::NoSuchBucket)?;
        Ok((b.objects.len(), b.objects.values().map(|o| o.size).sum()))
    }

    /// Directory for multipart upload parts (outside every bucket).
    pub fn uploads_dir(&self) -> PathBuf {
        self.root.join(".uploads")
    }

    /// Assembles parts (in the given order) into a new object; the ETag follows S3's multipart form.
    pub fn commit_parts(
        &self,
        bucket: &str,
        key: &str,
        parts: &[(PathBuf, [u8; 16])],
        attrs: PutAttrs,
    ) -> Result<ObjectMeta, StoreError> {
        let mut writer = self.begin_write(bucket)?;
        let mut md5_of_md5s = Md5::new();
        for (path, part_md5) in parts {
            let mut file = std::fs::File::open(path)?;
            std::io::copy(&mut file, &mut writer.file)?;
            writer.size += std::fs::metadata(path)?.len();
            md5_of_md5s.update(part_md5);
        }
        let (tmp_path, file_name, size, _) = writer.finish(self.durability)?;
        let etag = format!("{}-{}", hex::encode(md5_of_md5s.finalize()), parts.len());
        self.commit_file(bucket, key, tmp_path, file_name, size, etag, attrs)
    }
}

fn marker_of(page: &ListPage, last_prefix: &Option<String>) -> String {
    last_prefix.clone().or_else(|| page.objects.last().map(|o| o.key.clone())).unwrap_or_default()
}

fn load_objects(dir: &Path) -> Result<BTreeMap<String, Entry>, StoreError> {
    std::fs::create_dir_all(dir)?;
    let mut objects = BTreeMap::new();
    let mut referenced = std::collections::HashSet::new();
    let mut data_files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if persist::is_tmp_name(&name) {
            std::fs::remove_file(entry.path())?;
        } else if name.ends_with(".json") {
            if let Some(meta) = persist::read_json::<ObjectMeta>(&entry.path())? {
                objects.insert(meta.key.clone(), Entry::of(&meta));
                referenced.insert(meta.file);
            }
        } else {
            data_files.push(name);
        }
    }
    for name in data_files.iter().filter(|n| !referenced.contains(n.as_str())) {
        std::fs::remove_file(dir.join(name))?;
    }
    Ok(objects)
}

/// Streams an object's bytes to a temporary file while computing its MD5.
pub struct ObjectWriter {
    path: PathBuf,
    file_name: String,
    file: std::io::BufWriter<std::fs::File>,
    md5: Md5,
    size: u64,
}

impl ObjectWriter {
    fn finish(mut self, durability: persist::Durability) -> Result<(PathBuf, String, u64, [u8; 16]), StoreError> {
        self.file.flush()?;
        if durability == persist::Durability::Machine {
            self.file.get_ref().sync_data()?;
        }
        Ok((self.path, self.file_name, self.size, self.md5.finalize().into()))
    }

    /// Removes the temporary file of a write that will not be committed.
    pub fn abort(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Write for ObjectWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.md5.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests;
