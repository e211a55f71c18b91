//! `verify --keep DIR`: where each downloaded object is saved. Object keys are any text up to 1,024 bytes, and
//! anyone who can write to the bucket chooses them, so a key is never used as a path as it is. Each `/`-separated
//! segment becomes one path component inside DIR:
//!
//! - `%` and control characters are percent-encoded (`%25`, `%0A`, ...);
//! - a segment that is empty (a leading `/`, or `//`), `.` or `..` gets a `%` in front (`%`, `%.`, `%..`), which
//!   encoding alone never produces, so distinct keys stay distinct;
//! - a component longer than 200 bytes is cut at a character boundary and ends with `~` and a hash of the whole
//!   segment, so it fits every file system's 255-byte name limit.
//!
//! The result is always a relative path of normal components, so it cannot leave DIR.

use std::path::{Component, Path, PathBuf};

/// The longest component written (file systems allow 255 bytes; the hash suffix needs 17).
const MAX_COMPONENT: usize = 200;

fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    if matches!(segment, "" | "." | "..") {
        out.push('%');
    }
    for c in segment.chars() {
        if c == '%' || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out.len() > MAX_COMPONENT {
        let mut cut = MAX_COMPONENT;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        let hash = xxhash_rust::xxh3::xxh3_64(segment.as_bytes());
        out = format!("{}~{hash:016x}", &out[..cut]);
    }
    out
}

/// The path inside `dir` where the object `key` is kept; a `.gz` ending is dropped (the content is saved
/// decompressed).
pub fn local_path(dir: &Path, key: &str) -> PathBuf {
    let mut path = dir.to_path_buf();
    let segments: Vec<&str> = key.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.into_iter().enumerate() {
        let segment = if i == last { segment.strip_suffix(".gz").unwrap_or(segment) } else { segment };
        path.push(encode_segment(segment));
    }
    debug_assert!(path.strip_prefix(dir).is_ok_and(|rel| rel.components().all(|c| matches!(c, Component::Normal(_)))));
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(key: &str) -> String {
        local_path(Path::new("/keep"), key).strip_prefix("/keep").unwrap().to_string_lossy().into_owned()
    }

    #[test]
    fn ordinary_keys_keep_their_layout() {
        assert_eq!(rel("2026/11/26/13/S-1-2026-11-26-13-00-00-x.gz"), "2026/11/26/13/S-1-2026-11-26-13-00-00-x");
        assert_eq!(rel("logs/a b+c~é"), "logs/a b+c~é");
    }

    #[test]
    fn hostile_keys_stay_inside_and_distinct() {
        assert_eq!(rel("../../etc/passwd"), "%../%../etc/passwd");
        assert_eq!(rel("/abs/x"), "%/abs/x");
        assert_eq!(rel("a//b/./c"), "a/%/b/%./c");
        assert_eq!(rel("100%"), "100%25");
        assert_eq!(rel("line\nbreak"), "line%0Abreak");
        assert_ne!(rel("%.."), rel(".."));
        let long = format!("{}/x", "é".repeat(500));
        let r = rel(&long);
        let first = r.split('/').next().unwrap();
        assert!(first.len() <= 255 && first.contains('~'), "{first}");
        assert_ne!(rel(&format!("{}a", "b".repeat(300))), rel(&format!("{}c", "b".repeat(300))));
        for key in ["..", "../..", "/", "//", "a/../../..", &"../".repeat(400)] {
            let p = local_path(Path::new("/keep"), key);
            assert!(p.strip_prefix("/keep").unwrap().components().all(|c| matches!(c, Component::Normal(_))), "{key}");
        }
    }
}
