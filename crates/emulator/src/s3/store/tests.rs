//! The object store's unit tests.

use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

#[test]
fn objects_survive_reopen_and_old_versions_are_removed() {
    let (dir, s) = store();
    s.create_bucket("b", Some("us-east-2".into())).unwrap();
    s.put_bytes("b", "a/1", b"one", PutAttrs::default()).unwrap();
    s.put_bytes("b", "a/1", b"uno", PutAttrs::default()).unwrap();
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    let (meta, path) = s.get("b", "a/1").unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"uno");
    assert_eq!(meta.etag, hex::encode(Md5::digest(b"uno")));
    let files = std::fs::read_dir(dir.path().join("b/objects")).unwrap().count();
    assert_eq!(files, 2, "one metadata document and one data file");
    assert_eq!(s.bucket_config("b").unwrap().location_constraint.as_deref(), Some("us-east-2"));
}

/// Memory per object is its key and 40 bytes, however many objects a bucket holds; the rest is read from the
/// object's document when the object is.
#[test]
fn memory_keeps_what_a_listing_shows() {
    assert_eq!(std::mem::size_of::<Entry>(), 40);
    let (_dir, store) = store();
    store.create_bucket("b", None).unwrap();
    let attrs = PutAttrs { content_type: Some("text/plain".into()), ..Default::default() };
    let meta = store.put_bytes("b", "k", b"hello", attrs).unwrap();
    let listed = &store.list("b", "", None, None, 10).unwrap().objects[0];
    assert_eq!((listed.size, &listed.etag, listed.last_modified_ms), (5, &meta.etag, meta.last_modified_ms));
    let (read, path) = store.get("b", "k").unwrap();
    assert_eq!((read.content_type.as_deref(), std::fs::read(path).unwrap()), (Some("text/plain"), b"hello".to_vec()));
    let entry = Entry::of(&ObjectMeta { etag: "00112233445566778899aabbccddeeff-3".into(), ..meta });
    assert_eq!(entry.etag(), "00112233445566778899aabbccddeeff-3", "a multipart ETag keeps its parts");
}

#[test]
fn bucket_rules_match_s3() {
    let (_dir, s) = store();
    s.create_bucket("b", None).unwrap();
    assert!(matches!(s.create_bucket("b", None), Err(StoreError::BucketAlreadyOwnedByYou)));
    s.put_bytes("b", "k", b"x", PutAttrs::default()).unwrap();
    assert!(matches!(s.delete_bucket("b"), Err(StoreError::BucketNotEmpty)));
    assert!(s.delete("b", "k").unwrap());
    assert!(!s.delete("b", "k").unwrap(), "deleting a missing key succeeds");
    s.delete_bucket("b").unwrap();
    assert!(matches!(s.get("b", "k"), Err(StoreError::NoSuchBucket)));
}

#[test]
fn listing_pages_and_groups_by_delimiter() {
    let (_dir, s) = store();
    s.create_bucket("b", None).unwrap();
    for key in ["2026/01/01/00/a", "2026/01/01/00/b", "2026/01/01/01/c", "other", "x/y"] {
        s.put_bytes("b", key, key.as_bytes(), PutAttrs::default()).unwrap();
    }
    let page = s.list("b", "2026/", None, None, 2).unwrap();
    let keys: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["2026/01/01/00/a", "2026/01/01/00/b"]);
    let next = s.list("b", "2026/", None, page.next_marker.as_deref(), 2).unwrap();
    assert_eq!(next.objects.len(), 1);
    assert_eq!(next.next_marker, None);

    let grouped = s.list("b", "", Some("/"), None, 1000).unwrap();
    assert_eq!(grouped.common_prefixes, ["2026/", "x/"]);
    assert_eq!(grouped.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["other"]);
    let hours = s.list("b", "2026/01/01/", Some("/"), None, 1).unwrap();
    assert_eq!(hours.common_prefixes, ["2026/01/01/00/"]);
    let rest = s.list("b", "2026/01/01/", Some("/"), hours.next_marker.as_deref(), 10).unwrap();
    assert_eq!(rest.common_prefixes, ["2026/01/01/01/"]);
}

#[test]
fn uncommitted_writes_are_swept_at_open() {
    let (dir, s) = store();
    s.create_bucket("b", None).unwrap();
    let mut w = s.begin_write("b").unwrap();
    w.write_all(b"partial").unwrap();
    drop(w);
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.usage("b").unwrap(), (0, 0));
    assert_eq!(std::fs::read_dir(dir.path().join("b/objects")).unwrap().count(), 0);
}
