//! The S3 object-key layout of a delivery: `<evaluated prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><extension>`,
//! the time being the arrival of the object's oldest record in the stream's time zone (UTC unless
//! `CustomTimeZone` says otherwise). [`object_key`] writes keys (the emulator) and [`parse_key`] reads them back
//! (`verify`, `status`); a property test holds them to each other, and fixtures copied from AWS documentation
//! hold both to AWS.
//!
//! Keys come from a bucket anyone with write access can fill, so the parser treats them as hostile: any text,
//! any length, any characters, an error (never a panic) for what does not follow the layout.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The file-name timestamp format.
const NAME_TIME: &str = "%Y-%m-%d-%H-%M-%S";
/// `yyyy-MM-dd-HH-mm-ss`.
const NAME_TIME_LEN: usize = 19;
/// A canonical uuid.
const UUID_LEN: usize = 36;

/// Builds a delivered object's key.
pub fn object_key(
    evaluated_prefix: &str,
    stream: &str,
    version: u64,
    oldest_arrival: DateTime<Utc>,
    zone: Tz,
    id: &uuid::Uuid,
    extension: &str,
) -> String {
    format!(
        "{evaluated_prefix}{stream}-{version}-{}-{}{extension}",
        oldest_arrival.with_timezone(&zone).format(NAME_TIME),
        id.hyphenated()
    )
}

/// Why `ext` is not a valid `FileExtension` (the model pattern `^$|\.[0-9a-z!\-_.*'()]+`, at most 128
/// characters), worded as AWS's constraint; `None` when it is valid.
pub fn file_extension_problem(ext: &str) -> Option<String> {
    let ok = ext.is_empty()
        || (ext.starts_with('.')
            && ext.len() <= super::limits::MAX_FILE_EXTENSION_CHARS
            && ext.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"!-_.*'()".contains(&c)));
    (!ok).then(|| "Member must satisfy regular expression pattern: ^$|\\.[0-9a-z!\\-_.*'()]+".to_string())
}

/// A delivered object's key, taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyInfo {
    /// Everything before the file name (the evaluated prefix, with the hour partition when there is one).
    pub dir: String,
    /// The `YYYY/MM/DD/HH/` partition at the end of `dir`, when present, as a UTC instant.
    pub partition_hour: Option<DateTime<Utc>>,
    pub stream: String,
    pub version: u64,
    /// The timestamp in the file name, as a UTC instant.
    pub time: DateTime<Utc>,
    pub uuid: String,
    /// What follows the uuid (`.gz`, a `FileExtension`, or empty).
    pub extension: String,
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// A local wall-clock time of `zone` as an instant (the earlier one when a clock change makes it ambiguous).
fn local_to_utc(naive: &NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    zone.from_local_datetime(naive).earliest().map(|t| t.with_timezone(&Utc))
}

/// Parses `key` as an object of `stream` in `zone`; the error says which part does not follow the layout.
///
/// The file name starts at the last `<stream>-` that is followed by a valid suffix, not at the last `/`: a
/// prefix need not end with `/` (`logs` + `yyyy/MM/dd/HH/` is `logs2026/...`, and `x=!{timestamp:HH}` runs
/// straight into the stream name).
pub fn parse_key(key: &str, stream: &str, zone: Tz) -> Result<KeyInfo, String> {
    let name_start = format!("{stream}-");
    let mut first_error = None;
    for (at, _) in key.rmatch_indices(&name_start) {
        match parse_suffix(&key[at + name_start.len()..], zone) {
            Ok((version, time, uuid, extension)) => {
                let dir = &key[..at];
                return Ok(KeyInfo {
                    dir: dir.to_string(),
                    partition_hour: partition_hour(dir, zone),
                    stream: stream.to_string(),
                    version,
                    time,
                    uuid: uuid.to_string(),
                    extension: extension.to_string(),
                });
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| format!("file name does not start with the stream name `{stream}-`")))
}

/// Which of `streams` wrote the object `key` (several streams can deliver to one bucket): the one whose name
/// the key's file name starts with. When two names match (`A` and `X-A` both match `…/X-A-1-…`), the longer
/// match wins, so an object is never attributed to a stream whose name merely ends another's. Time zones only
/// shift the file name's time, never whether it parses, so UTC is used.
pub fn owner<'a>(key: &str, streams: &[&'a str]) -> Option<&'a str> {
    streams
        .iter()
        .filter_map(|s| parse_key(key, s, Tz::UTC).ok().map(|info| (info.dir.len(), *s)))
        .min_by_key(|(dir_len, _)| *dir_len)
        .map(|(_, s)| s)
}

/// Whether `stream` wrote the object `key`: its file name (after the last `/`) is
/// `<stream>-<version>-<time>-<uuid>…`. Streams on one bucket share its prefixes (setup's `errors/` among them), so
/// an error output is read, and counted, per stream by this; a stream named `A` does not own `…/X-A-1-…`.
pub fn written_by(key: &str, stream: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.strip_prefix(stream)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|rest| parse_suffix(rest, Tz::UTC).is_ok())
}

/// `<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><extension>`, the part of a file name after `<stream>-`.
fn parse_suffix(rest: &str, zone: Tz) -> Result<(u64, DateTime<Utc>, &str, &str), String> {
    let (version, rest) = rest.split_once('-').ok_or("no version after the stream name")?;
    let version: u64 = version.parse().map_err(|_| format!("version `{}` is not a number", shorten(version)))?;
    let time_text = rest
        .get(..NAME_TIME_LEN)
        .ok_or_else(|| format!("`{}` is not a YYYY-MM-DD-HH-MM-SS timestamp", shorten(rest)))?;
    let naive = NaiveDateTime::parse_from_str(time_text, NAME_TIME)
        .map_err(|_| format!("`{time_text}` is not a YYYY-MM-DD-HH-MM-SS timestamp"))?;
    let time = local_to_utc(&naive, zone)
        .ok_or_else(|| format!("`{time_text}` does not exist in time zone {}", zone.name()))?;
    let rest = rest[NAME_TIME_LEN..].strip_prefix('-').ok_or("no `-` after the timestamp")?;
    let uuid =
        rest.get(..UUID_LEN).filter(|u| is_uuid(u)).ok_or_else(|| format!("`{}` is not a uuid", shorten(rest)))?;
    Ok((version, time, uuid, &rest[UUID_LEN..]))
}

/// At most 40 characters of `s`, for messages about hostile input.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The `YYYY/MM/DD/HH/` at the end of a key's directory part, as an instant.
fn partition_hour(dir: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let tail = dir.len().checked_sub(14).and_then(|start| dir.get(start..))?;
    let t = NaiveDateTime::parse_from_str(&format!("{tail}00:00"), "%Y/%m/%d/%H/%M:%S").ok()?;
    local_to_utc(&t, zone)
}

/// Layout problems of a parsed key against the stream's settings; empty when it follows the layout.
/// `hourly` is whether the prefix ends with the default `yyyy/MM/dd/HH/` layout (see
/// [`super::prefix::Prefix::is_hourly_layout`]); custom prefixes are only checked for their static part.
pub fn layout_problems(info: &KeyInfo, expected_prefix: &str, expected_extension: &str, hourly: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if !info.dir.starts_with(expected_prefix) {
        problems.push(format!("does not start with the prefix `{expected_prefix}`"));
    }
    if hourly {
        match info.partition_hour {
            None => problems.push("no YYYY/MM/DD/HH/ partition before the file name".to_string()),
            Some(hour) => {
                // Compared as instants: the name's time must fall in the partition's hour (whatever the zone's
                // offset, including half-hour ones).
                let into_hour = info.time - hour;
                if into_hour < chrono::TimeDelta::zero() || into_hour >= chrono::TimeDelta::hours(1) {
                    problems.push(format!(
                        "hour partition {} disagrees with the name's timestamp {}",
                        hour.format("%Y/%m/%d/%H"),
                        info.time.format("%Y-%m-%d %H:%M:%S")
                    ));
                }
            }
        }
    }
    if info.extension != expected_extension {
        let show = |e: &str| {
            if e.is_empty() { "none".to_string() } else { format!("`{e}`") }
        };
        problems.push(format!(
            "extension {} but the stream's settings imply {}",
            show(&info.extension),
            show(expected_extension)
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_is_written_by_the_stream_its_file_name_starts_with() {
        let id = "0b6e4b0c-5b7e-4a55-9a3e-0c5f8e6c9d11";
        let key = format!("errors/processing-failed/2026/12/07/18/XA-1-2026-12-07-18-01-02-{id}");
        assert!(written_by(&key, "XA"));
        assert!(!written_by(&key, "XB"), "another stream's error object");
        assert!(!written_by(&format!("e/X-A-1-2026-12-07-18-01-02-{id}"), "A"), "a name that ends another's");
        assert!(!written_by("errors/XA-notes.txt", "XA"), "not Firehose's layout");
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    /// Keys as AWS writes them: one delivered by Firehose (quoted in a public bug report), the others built by
    /// hand from the layouts of the developer guide ("Configure Amazon S3 object name format", "Custom Prefixes
    /// for Amazon S3 Objects", "Dynamic partitioning"), with their values chosen here.
    #[test]
    fn keys_from_aws_parse() {
        // Delivered by Firehose: stream `object`, version 2, GZIP.
        let k = "prefix/objects/2021/11/16/00/object-2-2021-11-16-00-00-08-959487e4-754a-46e0-9b2d-f8cf1ce8a226.gz";
        let info = parse_key(k, "object", Tz::UTC).unwrap();
        assert_eq!(info.dir, "prefix/objects/2021/11/16/00/");
        assert_eq!(info.version, 2);
        assert_eq!(info.time, utc(2021, 11, 16, 0, 0, 8));
        assert_eq!(info.partition_hour, Some(utc(2021, 11, 16, 0, 0, 0)));
        assert_eq!(info.extension, ".gz");
        assert!(layout_problems(&info, "prefix/objects/", ".gz", true).is_empty());
        assert_eq!(layout_problems(&info, "other/", "", true).len(), 2);
        // "Custom Prefixes": a static prefix with no trailing slash gets the default layout appended as is (also
        // observed on AWS, eu-west-1, 2026); an uncompressed object has no extension.
        let k = "legacy2026/07/13/14/MyStream-1-2026-07-13-14-05-11-0b0c0a2e-3f41-4a4a-9f0e-5b2b8c1d2e3f";
        let info = parse_key(k, "MyStream", Tz::UTC).unwrap();
        assert_eq!((info.dir.as_str(), info.extension.as_str()), ("legacy2026/07/13/14/", ""));
        assert!(layout_problems(&info, "legacy", "", true).is_empty());
        // "Dynamic partitioning": Hive-style partitions, no hour layout.
        let k = "customer_id=1234/device=mobile/my-delivery-stream-1-2019-08-09-23-55-09-9fc1bd51-c5b6-4ec5-9c3f-b4c1b5b47b8d";
        let info = parse_key(k, "my-delivery-stream", Tz::UTC).unwrap();
        assert_eq!(info.dir, "customer_id=1234/device=mobile/");
        assert!(layout_problems(&info, "customer_id=", "", false).is_empty());
    }

    #[test]
    fn a_custom_time_zone_is_read_back_as_the_same_instant() {
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        let id = uuid::Uuid::nil();
        let at = utc(2026, 11, 25, 20, 59, 59);
        let key = object_key("2026/11/26/05/", "S", 3, at, tokyo, &id, ".log");
        assert_eq!(key, "2026/11/26/05/S-3-2026-11-26-05-59-59-00000000-0000-0000-0000-000000000000.log");
        let info = parse_key(&key, "S", tokyo).unwrap();
        assert_eq!((info.time, info.version, info.extension.as_str()), (at, 3, ".log"));
        assert!(layout_problems(&info, "", ".log", true).is_empty());
    }

    #[test]
    fn off_layout_keys_say_why() {
        let z = Tz::UTC;
        assert!(parse_key("2026/11/25/20/other-1-2026-11-25-20-59-59-x", "s", z).unwrap_err().contains("stream name"));
        assert!(parse_key("s-x-2026", "s", z).unwrap_err().contains("version"));
        assert!(
            parse_key("s-1-2026-13-45-20-59-59-959487e4-754a-46e0-9b2d-f8cf1ce8a226", "s", z)
                .unwrap_err()
                .contains("timestamp")
        );
        let k = "2026/11/25/21/s-1-2026-11-25-20-59-59-959487e4-754a-46e0-9b2d-f8cf1ce8a226";
        let problems = layout_problems(&parse_key(k, "s", z).unwrap(), "", "", true);
        assert!(problems[0].contains("disagrees"), "{problems:?}");
    }

    #[test]
    fn hostile_keys_are_errors_not_panics() {
        let z = Tz::UTC;
        for k in [
            "s-1-2026-11-25-20-59-5é-959487e4-754a-46e0-9b2d-f8cf1ce8a226",
            "s-1-2026-11-25-20-59-59-959487e4-754a-46e0-9b2d-f8cf1ce8a22é",
            "s-1-2026-11-25-20-59-59-ééééééééééééééééééééééééééééééééééé",
            "s-1-ü",
            "日本/s-1-2026",
            "s-99999999999999999999999-2026-11-25-20-59-59-959487e4-754a-46e0-9b2d-f8cf1ce8a226",
            "/",
            "",
        ] {
            assert!(parse_key(k, "s", z).is_err(), "{k}");
        }
        let long = format!("{}/s-1-{}", "x".repeat(1000), "é".repeat(300));
        assert!(parse_key(&long, "s", z).unwrap_err().chars().count() < 120);
    }

    #[test]
    fn an_object_belongs_to_the_stream_whose_whole_name_starts_its_file_name() {
        let key = "2026/12/02/03/X-A-1-2026-12-02-03-00-18-6fc38b73-1b2c-4d5e-8f90-0123456789ab";
        assert_eq!(owner(key, &["A", "X-A"]), Some("X-A"));
        assert_eq!(owner(key, &["A"]), Some("A"), "alone, `A` matches: callers pass every stream they know");
        assert_eq!(owner(key, &["B"]), None);
        assert_eq!(owner("not/a/delivery.txt", &["A"]), None);
    }
}
