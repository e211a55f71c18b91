//! Partitioning Apache logs: the fields `setup --partition-by` offers and what each becomes in Firehose's
//! dynamic-partitioning configuration — a jq expression over the JSON `send --format json` writes
//! ([`super::LogEntry`]), and a Hive-style path segment (`status=404/`) that Athena, Spark and DuckDB read as a
//! partition column. `date` and `hour` come from the line's own timestamp (`time`, ISO-8601 with its offset),
//! not from the arrival time.

/// The fields a stream can be partitioned by.
pub const KEYS: [&str; 5] = ["status", "method", "host", "date", "hour"];

/// The jq expression of one key.
fn expression(key: &str) -> Option<&'static str> {
    Some(match key {
        "status" => ".status",
        "method" => ".method",
        "host" => ".host",
        "date" => ".time[0:10]",
        "hour" => ".time[11:13]",
        _ => return None,
    })
}

/// A validated `--partition-by` list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionBy(pub Vec<String>);

impl PartitionBy {
    /// Parses `status,date`: known keys, each once.
    pub fn parse(keys: &[String]) -> Result<Self, String> {
        let mut out: Vec<String> = Vec::new();
        for key in keys.iter().flat_map(|k| k.split(',')).map(str::trim).filter(|k| !k.is_empty()) {
            if expression(key).is_none() {
                return Err(format!("`{key}` is not a field to partition by (expected {})", KEYS.join(", ")));
            }
            if out.iter().any(|k| k == key) {
                return Err(format!("`{key}` is given twice"));
            }
            out.push(key.to_string());
        }
        Ok(PartitionBy(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The MetadataExtraction query: `{status: .status, date: .time[0:10]}`.
    pub fn query(&self) -> String {
        let fields: Vec<String> =
            self.0.iter().map(|k| format!("{k}: {}", expression(k).expect("validated"))).collect();
        format!("{{{}}}", fields.join(", "))
    }

    /// The keys of a query [`Self::query`] wrote, `None` for any other query.
    pub fn from_query(query: &str) -> Option<Self> {
        let inner = query.trim().strip_prefix('{')?.strip_suffix('}')?;
        let keys: Vec<String> =
            inner.split(',').filter_map(|f| f.split_once(':')).map(|(k, _)| k.trim().to_string()).collect();
        let by = Self::parse(&keys).ok()?;
        (!by.is_empty() && by.query() == query).then_some(by)
    }

    /// The data prefix under `base` (the user's `--prefix`): `<base>status=!{partitionKeyFromQuery:status}/...`.
    pub fn prefix(&self, base: &str) -> String {
        let segments: String = self.0.iter().map(|k| format!("{k}=!{{partitionKeyFromQuery:{k}}}/")).collect();
        format!("{base}{segments}")
    }

    /// The error prefix under `base`: `<base>errors/!{firehose:error-output-type}/` (then `yyyy/MM/dd/HH/`).
    pub fn error_prefix(base: &str) -> String {
        format!("{base}errors/!{{firehose:error-output-type}}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_a_query_and_hive_segments() {
        let p = PartitionBy::parse(&["status,date".into()]).unwrap();
        assert_eq!(p.query(), "{status: .status, date: .time[0:10]}");
        assert_eq!(
            p.prefix("logs/"),
            "logs/status=!{partitionKeyFromQuery:status}/date=!{partitionKeyFromQuery:date}/"
        );
        assert!(PartitionBy::parse(&["status,nope".into()]).unwrap_err().contains("`nope`"));
        assert!(PartitionBy::parse(&["status".into(), "status".into()]).is_err());
        assert_eq!(PartitionBy::from_query(&p.query()), Some(p));
        assert_eq!(PartitionBy::from_query("{status: .status | tostring}"), None, "not a query setup writes");
        assert_eq!(PartitionBy::from_query("{}"), None);
    }

    /// The query is valid jq, accepted by Firehose's rules with the prefix it goes with, and maps a line sent
    /// as JSON to the partition its own fields say.
    #[test]
    fn the_configuration_passes_firehose_rules_and_partitions_lines() {
        let p = PartitionBy::parse(&["status,method,host,date,hour".into()]).unwrap();
        let q = crate::firehose::partitioning::Query::compile(&p.query()).unwrap();
        let line = br#"1.2.3.4 - - [26/Nov/2026:23:59:58 -0700] "GET /x HTTP/1.1" 404 10"#;
        let json = serde_json::to_vec(&crate::logs::parse_line(line).unwrap()).unwrap();
        let keys = q.keys(&json).unwrap();
        assert_eq!(keys["date"], "2026-11-26", "the line's own date, in its own offset");
        assert_eq!((keys["hour"].as_str(), keys["status"].as_str(), keys["method"].as_str()), ("23", "404", "GET"));
        let prefixes =
            crate::firehose::prefix::validate(Some(&p.prefix("")), Some(&PartitionBy::error_prefix("")), true).unwrap();
        assert_eq!(prefixes.data.partition_keys(), vec!["status", "method", "host", "date", "hour"]);
    }
}
