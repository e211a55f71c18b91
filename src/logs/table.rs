//! The Glue table that types Apache access logs as Parquet (`setup --format parquet`): one column per field of
//! the JSON document `send` makes of a line ([`super::LogEntry`]), status and bytes as integers and time as a
//! timestamp, and the names setup gives the database and table.

/// The columns, in the order of [`super::LogEntry`]'s fields, with their Hive types.
pub const COLUMNS: [(&str, &str); 11] = [
    ("host", "string"),
    ("ident", "string"),
    ("user", "string"),
    ("time", "timestamp"),
    ("method", "string"),
    ("path", "string"),
    ("protocol", "string"),
    ("status", "int"),
    ("bytes", "bigint"),
    ("referer", "string"),
    ("agent", "string"),
];

/// The database setup puts its tables in (shared by the streams of an account and region).
pub const DEFAULT_DATABASE: &str = "firehose_kit";

/// The table of a stream: its name in lower case with every character but letters, digits and `_` made `_`
/// (Glue folds names to lower case; Athena wants no `-` or `.` in them).
pub fn table_name(stream: &str) -> String {
    stream.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// A database name Glue and Athena both take: 1–255 of lower-case letters, digits and `_`.
pub fn database_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 255 {
        return Some("it must be 1 to 255 characters".into());
    }
    name.chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
        .map(|c| format!("`{c}` is not allowed: use lower-case letters, digits and _ (what Athena takes unquoted)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_the_json_fields_send_makes_and_hive_types_the_converter_takes() {
        let entry =
            crate::logs::parse_line(b"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 -").unwrap();
        let doc = serde_json::to_value(&entry).unwrap();
        let keys: Vec<&str> = doc.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, COLUMNS.map(|(n, _)| n));
        for (_, ty) in COLUMNS {
            firehose_kit_domain::conversion::column_type(ty).unwrap();
        }
    }

    #[test]
    fn names_fold_as_glue_and_athena_want() {
        assert_eq!(table_name("ApacheLogs"), "apachelogs");
        assert_eq!(table_name("my-stream.v2"), "my_stream_v2");
        assert_eq!(database_name_problem("firehose_kit"), None);
        assert!(database_name_problem("Logs").unwrap().contains("`L`"));
        assert!(database_name_problem("").is_some());
    }
}
