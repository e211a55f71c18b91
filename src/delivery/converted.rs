//! A converting stream's accounting: its objects are Parquet (read back as JSON lines by
//! [`super::parquet_rows`]), and a record that did not convert is in the error output
//! (`format-conversion-failed`), its original data in `rawData`. Each sent line is then a row, a line that did
//! not convert (with the code Firehose gave), or missing; and the objects' schema is checked against the table
//! setup makes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::partitions::{ErrorRecords, tally_error_records};

/// What verify found of a converting stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConversionReport {
    pub database: String,
    pub table: String,
    /// Rows in the Parquet objects read.
    pub rows: u64,
    /// Sent lines found in the error output instead of as rows.
    pub failed_lines: u64,
    /// The error output's records by code (with one message each).
    pub failures: Vec<ErrorRecords>,
    /// A line that did not convert, and why.
    pub failed_example: Option<String>,
    /// The columns of the first Parquet object, with their types.
    pub schema: Vec<(String, String)>,
    /// How that schema differs from the Apache table setup makes (empty: it is that table).
    pub schema_problems: Vec<String>,
}

/// The Arrow type a Parquet reader shows for a Hive column type of the Apache table.
fn arrow_type(hive: &str) -> &'static str {
    match hive {
        "int" => "int32",
        "bigint" => "int64",
        "timestamp" => "timestamp[us, UTC]",
        _ => "string",
    }
}

/// How `schema` differs from the Apache table's columns, in order and type.
pub fn schema_problems(schema: &[(String, String)]) -> Vec<String> {
    let want: Vec<(&str, &str)> =
        crate::logs::table::COLUMNS.iter().map(|(name, hive)| (*name, arrow_type(hive))).collect();
    let mut out = Vec::new();
    for (i, (name, ty)) in want.iter().enumerate() {
        match schema.get(i) {
            None => out.push(format!("column {} `{name}` is missing", i + 1)),
            Some((n, _)) if n != name => out.push(format!("column {} is `{n}`, not `{name}`", i + 1)),
            Some((_, t)) if t != ty => out.push(format!("column `{name}` is {t}, not {ty}")),
            _ => {}
        }
    }
    if schema.len() > want.len() {
        let extra: Vec<&str> = schema[want.len()..].iter().map(|(n, _)| n.as_str()).collect();
        out.push(format!("extra columns: {}", extra.join(", ")));
    }
    out
}

/// The error output's records of one object that failed conversion against Glue table `database.table` (other
/// streams' and other failures' documents are passed over): tallied by code into `codes`, and each record's
/// lines (a record may carry several, one JSON document per line) handed to `on_line` with the record's code and
/// message.
pub fn failed_records(
    body: &[u8],
    (database, table): (&str, &str),
    codes: &mut BTreeMap<String, (u64, String)>,
    on_line: &mut dyn FnMut(&[u8], &str, &str),
) {
    for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let doc: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
        let catalog = &doc["dataCatalogTable"];
        let ours = catalog["databaseName"].as_str().is_some_and(|d| d.eq_ignore_ascii_case(database))
            && catalog["tableName"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(table));
        let Some(raw) = doc["rawData"].as_str().and_then(|r| base64_simd::STANDARD.decode_to_vec(r).ok()) else {
            continue;
        };
        if !ours {
            continue;
        }
        tally_error_records(line, codes);
        let code = doc["lastErrorCode"].as_str().or(doc["errorCode"].as_str()).unwrap_or_default();
        let message = doc["lastErrorMessage"].as_str().or(doc["errorMessage"].as_str()).unwrap_or_default();
        let raw = raw.strip_suffix(b"\n").unwrap_or(&raw);
        for line in raw.split(|b| *b == b'\n') {
            on_line(line, code, message);
        }
    }
}

/// The codes as the report lists them.
pub fn failures(codes: BTreeMap<String, (u64, String)>) -> Vec<ErrorRecords> {
    codes.into_iter().map(|(code, (count, example))| ErrorRecords { code, count, example }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apache_table_has_no_schema_problems_and_drift_is_named() {
        let good: Vec<(String, String)> =
            crate::logs::table::COLUMNS.iter().map(|(n, t)| (n.to_string(), arrow_type(t).to_string())).collect();
        assert!(schema_problems(&good).is_empty());
        let mut drifted = good.clone();
        drifted[7].1 = "int8".into();
        drifted.push(("extra".into(), "string".into()));
        assert_eq!(schema_problems(&drifted), vec!["column `status` is int8, not int32", "extra columns: extra"]);
        assert_eq!(schema_problems(&good[..2]).len(), 9);
    }

    #[test]
    fn each_line_of_a_failed_record_is_handed_over_with_its_code() {
        let raw = base64_simd::STANDARD.encode_to_string(b"{\"a\":1}\n{\"a\":2}\n");
        let doc = |table: &str| {
            format!(
                "{{\"lastErrorCode\":\"DataFormatConversion.MalformedData\",\"lastErrorMessage\":\"column bytes: x\",\"rawData\":\"{raw}\",\"dataCatalogTable\":{{\"databaseName\":\"firehose_kit\",\"tableName\":\"{table}\"}}}}\n"
            )
        };
        // Another stream's failure, and a processing failure (no table), are not this table's.
        let body =
            doc("apachelogs") + &doc("other") + &format!("{{\"errorCode\":\"Lambda.x\",\"rawData\":\"{raw}\"}}\n");
        let mut codes = BTreeMap::new();
        let mut lines = Vec::new();
        failed_records(body.as_bytes(), ("firehose_kit", "ApacheLogs"), &mut codes, &mut |l, code, _| {
            lines.push((String::from_utf8(l.to_vec()).unwrap(), code.to_string()))
        });
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1], ("{\"a\":2}".to_string(), "DataFormatConversion.MalformedData".to_string()));
        assert_eq!(codes["DataFormatConversion.MalformedData"], (1, "column bytes: x".to_string()));
    }
}
