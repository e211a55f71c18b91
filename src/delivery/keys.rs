//! Firehose's S3 object key layout (aws-facts.md §2):
//! `<prefix>YYYY/MM/DD/HH/<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid><extension>`, times in UTC.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// A delivered object's key, taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyInfo {
    /// Everything before the file name (the evaluated prefix, with the hour partition when there is one).
    pub dir: String,
    /// The `YYYY/MM/DD/HH/` partition at the end of `dir`, when present.
    pub partition_hour: Option<DateTime<Utc>>,
    pub stream: String,
    pub version: u64,
    /// The timestamp in the file name.
    pub time: DateTime<Utc>,
    pub uuid: String,
    /// `.gz`, or empty.
    pub extension: String,
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Parses `key` as an object of `stream`; the error says which part does not follow the layout.
pub fn parse_key(key: &str, stream: &str) -> Result<KeyInfo, String> {
    let (dir, name) = match key.rfind('/') {
        Some(i) => (&key[..=i], &key[i + 1..]),
        None => ("", key),
    };
    let rest = name
        .strip_prefix(stream)
        .and_then(|r| r.strip_prefix('-'))
        .ok_or_else(|| format!("file name does not start with the stream name `{stream}-`"))?;
    let (version, rest) = rest.split_once('-').ok_or("no version after the stream name")?;
    let version: u64 = version.parse().map_err(|_| format!("version `{version}` is not a number"))?;
    if rest.len() < 19 + 1 + 36 {
        return Err("file name too short for the timestamp and uuid".into());
    }
    let time = NaiveDateTime::parse_from_str(&rest[..19], "%Y-%m-%d-%H-%M-%S")
        .map_err(|_| format!("`{}` is not a YYYY-MM-DD-HH-MM-SS timestamp", &rest[..19]))?;
    let rest = rest[19..].strip_prefix('-').ok_or("no `-` after the timestamp")?;
    let uuid = &rest[..36];
    if !is_uuid(uuid) {
        return Err(format!("`{uuid}` is not a uuid"));
    }
    let extension = rest[36..].to_string();
    Ok(KeyInfo {
        dir: dir.to_string(),
        partition_hour: partition_hour(dir),
        stream: stream.to_string(),
        version,
        time: Utc.from_utc_datetime(&time),
        uuid: uuid.to_string(),
        extension,
    })
}

/// The `YYYY/MM/DD/HH/` at the end of a key's directory part.
fn partition_hour(dir: &str) -> Option<DateTime<Utc>> {
    let tail = dir.len().checked_sub(14).map(|start| &dir[start..])?;
    let t = NaiveDateTime::parse_from_str(&format!("{tail}00:00"), "%Y/%m/%d/%H/%M:%S").ok()?;
    Some(Utc.from_utc_datetime(&t))
}

/// The list prefix for one hour partition under a static prefix.
pub fn hour_prefix(prefix: &str, hour: DateTime<Utc>) -> String {
    format!("{prefix}{}", hour.format("%Y/%m/%d/%H/"))
}

/// Layout problems of a parsed key against the stream's settings; empty when it follows the layout.
pub fn layout_problems(info: &KeyInfo, expected_prefix: &str, expected_extension: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if !info.dir.starts_with(expected_prefix) {
        problems.push(format!("does not start with the prefix `{expected_prefix}`"));
    }
    match info.partition_hour {
        None => problems.push("no YYYY/MM/DD/HH/ partition before the file name".to_string()),
        Some(hour) => {
            let name_hour = info.time.format("%Y%m%d%H").to_string();
            if hour.format("%Y%m%d%H").to_string() != name_hour {
                problems.push(format!(
                    "hour partition {} disagrees with the name's timestamp {}",
                    hour.format("%Y/%m/%d/%H"),
                    info.time.format("%Y-%m-%d %H:%M:%S")
                ));
            }
        }
    }
    if info.extension != expected_extension {
        let show = |e: &str| {
            if e.is_empty() { "none".to_string() } else { format!("`{e}`") }
        };
        problems.push(format!(
            "extension {} but the stream's compression implies {}",
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
    fn parses_a_real_key() {
        let k = "prefix/objects/2021/11/16/00/object-2-2021-11-16-00-00-08-959487e4-754a-46e0-9b2d-f8cf1ce8a226.gz";
        let info = parse_key(k, "object").unwrap();
        assert_eq!(info.dir, "prefix/objects/2021/11/16/00/");
        assert_eq!(info.version, 2);
        assert_eq!(info.time, Utc.with_ymd_and_hms(2021, 11, 16, 0, 0, 8).unwrap());
        assert_eq!(info.partition_hour, Some(Utc.with_ymd_and_hms(2021, 11, 16, 0, 0, 0).unwrap()));
        assert_eq!(info.extension, ".gz");
        assert!(layout_problems(&info, "prefix/objects/", ".gz").is_empty());
        let problems = layout_problems(&info, "other/", "");
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn stream_names_with_dashes_and_no_extension() {
        let k = "2026/11/25/20/my-stream-1-2026-11-25-20-59-59-959487e4-754a-46e0-9b2d-f8cf1ce8a226";
        let info = parse_key(k, "my-stream").unwrap();
        assert_eq!((info.version, info.extension.as_str()), (1, ""));
        assert!(layout_problems(&info, "", "").is_empty());
    }

    #[test]
    fn off_layout_keys_say_why() {
        assert!(parse_key("2026/11/25/20/other-1-2026-11-25-20-59-59-x", "s").unwrap_err().contains("stream name"));
        assert!(parse_key("s-x-2026", "s").unwrap_err().contains("version"));
        assert!(
            parse_key("s-1-2026-13-45-20-59-59-959487e4-754a-46e0-9b2d-f8cf1ce8a226", "s")
                .unwrap_err()
                .contains("timestamp")
        );
        let k = "2026/11/25/21/s-1-2026-11-25-20-59-59-959487e4-754a-46e0-9b2d-f8cf1ce8a226";
        let problems = layout_problems(&parse_key(k, "s").unwrap(), "", "");
        assert!(problems[0].contains("disagrees"), "{problems:?}");
        assert_eq!(hour_prefix("logs/", Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()), "logs/2026/01/02/03/");
    }
}
