//! A record's JSON documents read straight into rows: each document's members are visited as they are parsed,
//! a member no column reads is skipped without being built, and a member a column reads is converted into that
//! column's cell at once. No tree of the whole document is built (a tree per document was most of the
//! conversion's cost); only a nested column's own value is.

use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::{Cell, ColumnType, Deserializer, Failure, MALFORMED_DATA, PARSE_ERROR, key_of, owned_cell};

/// What records' documents are read against: each column's type and the key it reads (worked out once for every
/// record of a buffer).
pub struct Plan<'c> {
    columns: &'c [(String, ColumnType)],
    /// The key each column reads, as the deserializer compares keys.
    wanted: Vec<String>,
    d: &'c Deserializer,
    lower: bool,
    dots: bool,
}

impl<'c> Plan<'c> {
    pub fn new(columns: &'c [(String, ColumnType)], d: &'c Deserializer) -> Self {
        let wanted = columns
            .iter()
            .map(|(name, _)| {
                match d {
                    Deserializer::OpenX { mappings, .. } => mappings.get(&name.to_lowercase()).map(|k| key_of(k, d)),
                    Deserializer::Hive { .. } => None,
                }
                .unwrap_or_else(|| key_of(name, d))
            })
            .collect();
        let (lower, dots) = match d {
            Deserializer::OpenX { dots_to_underscores, case_insensitive, .. } => {
                (*case_insensitive, *dots_to_underscores)
            }
            // The Hive SerDe matches keys case-insensitively.
            Deserializer::Hive { .. } => (true, false),
        };
        Plan { columns, wanted, d, lower, dots }
    }

    /// Converts `value` into column `i`'s cell; a value that does not fit is noted in `wrong` (a later one that
    /// fits clears it).
    fn put(&self, row: &mut [Cell], wrong: &mut Option<Vec<Option<String>>>, i: usize, value: Value) {
        let (name, ty) = &self.columns[i];
        match owned_cell(value, ty, self.d) {
            Ok(cell) => {
                row[i] = cell;
                if let Some(w) = wrong.as_mut() {
                    w[i] = None;
                }
            }
            Err(why) => wrong.get_or_insert_with(|| vec![None; row.len()])[i] = Some(format!("column {name}: {why}")),
        }
    }

    /// The columns a document's key feeds (usually one; none for a key no column reads).
    fn columns_of<'k>(&'k self, key: &'k str) -> impl Iterator<Item = usize> + 'k {
        let key: std::borrow::Cow<'_, str> = if (self.lower
            && key.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()))
            || (self.dots && key.contains('.'))
        {
            std::borrow::Cow::Owned(key_of(key, self.d))
        } else {
            std::borrow::Cow::Borrowed(key)
        };
        (0..self.wanted.len()).filter(move |&i| self.wanted[i] == *key)
    }
}

/// One document into a row; the first value that does not fit its column is kept in `failure`.
struct Row<'p, 'c> {
    plan: &'p Plan<'c>,
    failure: &'p mut Option<Failure>,
}

impl<'de> DeserializeSeed<'de> for Row<'_, '_> {
    type Value = Vec<Cell>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Cell>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Row<'_, '_> {
    type Value = Vec<Cell>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Cell>, A::Error> {
        let mut row = vec![Cell::Null; self.plan.columns.len()];
        // Per column, why its (last) value does not fit it (made at the first value that does not).
        let mut wrong: Option<Vec<Option<String>>> = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let mut targets = self.plan.columns_of(&key.0);
            let Some(first) = targets.next() else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            // A key two columns read (rare: a mapping) is copied for the others.
            let others: Vec<usize> = targets.collect();
            // The last of keys that fold alike wins, as in a map.
            let value = map.next_value::<Value>()?;
            for &i in &others {
                self.plan.put(&mut row, &mut wrong, i, value.clone());
            }
            self.plan.put(&mut row, &mut wrong, first, value);
        }
        if let Some(message) = wrong.into_iter().flatten().flatten().next() {
            *self.failure = Some(Failure { code: MALFORMED_DATA, message });
        }
        Ok(row)
    }
}

/// A member's key, borrowed from the record when it has no escapes.
struct Key<'a>(std::borrow::Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// The error for a document that is JSON but not an object.
fn not_an_object() -> Failure {
    Failure { code: PARSE_ERROR, message: "a record's document must be a JSON object".into() }
}

/// The rows of one record (its JSON documents, one after the other), or why the record fails as a whole.
pub fn rows(record: &[u8], columns: &[(String, ColumnType)], d: &Deserializer) -> Result<Vec<Vec<Cell>>, Failure> {
    rows_of(record, &Plan::new(columns, d))
}

/// [`rows`] against a plan made once for many records.
pub fn rows_of(record: &[u8], plan: &Plan<'_>) -> Result<Vec<Vec<Cell>>, Failure> {
    let mut de = serde_json::Deserializer::from_slice(record);
    let mut out = Vec::new();
    loop {
        if de.end().is_ok() {
            break;
        }
        let mut failure = None;
        let row = Row { plan, failure: &mut failure }.deserialize(&mut de).map_err(|e| {
            if e.is_data() && e.to_string().starts_with("invalid type") {
                not_an_object()
            } else {
                Failure { code: PARSE_ERROR, message: format!("the record is not JSON: {e}") }
            }
        })?;
        if let Some(f) = failure {
            return Err(f);
        }
        out.push(row);
    }
    if out.is_empty() {
        return Err(Failure { code: PARSE_ERROR, message: "the record holds no JSON document".into() });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{column_type, parse, rows_by_tree};
    use super::*;

    fn openx(mappings: &str) -> Deserializer {
        parse(Some(&serde_json::json!({
            "SchemaConfiguration": {"RoleARN": "r", "DatabaseName": "d", "TableName": "t"},
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": serde_json::from_str::<Value>(mappings).unwrap()}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}
        })))
        .unwrap()
        .unwrap()
        .deserializer
    }

    /// Every record, any deserializer: read as it streams in, the rows (or the failure's code) are the ones a tree
    /// of each document gives.
    #[test]
    fn rows_read_as_they_stream_are_the_rows_of_the_trees() {
        let columns: Vec<(String, ColumnType)> = [
            ("host", "string"),
            ("status", "int"),
            ("bytes", "bigint"),
            ("time", "timestamp"),
            ("ok", "boolean"),
            ("ratio", "double"),
            ("tags", "array<string>"),
            ("geo", "struct<city:string,lat:double>"),
            ("ts", "string"),
            ("a_b", "string"),
        ]
        .iter()
        .map(|(n, t)| (n.to_string(), column_type(t).unwrap()))
        .collect();
        let deserializers = [
            openx("{}"),
            openx(r#"{"ConvertDotsInJsonKeysToUnderscores": true, "ColumnToJsonKeyMappings": {"ts": "@timestamp"}}"#),
            openx(r#"{"CaseInsensitive": false}"#),
            Deserializer::Hive { timestamp_formats: vec!["millis".into()] },
        ];
        let records: &[&[u8]] = &[
            br#"{"host":"h","status":200,"bytes":"12","time":"2026-12-02 10:00:00","ok":true,"ratio":0.5}"#,
            br#"{"HOST":"upper","Status":404,"tags":["a",null],"geo":{"City":"Paris","lat":1.5},"extra":{"deep":[1,2]}}"#,
            br#"{"host":"a"} {"host":"b"}
{"host":"c","status":null}"#,
            br#"{"host":"first","host":"last","@timestamp":"t","a.b":"dots"}"#,
            br#"{"status":"bad","status":7,"bytes":"x","ok":"maybe"}"#,
            br#"{"status":"x"}"#,
            br#"{"status":3000000000}"#,
            br#"{"time":9300000000000000000}"#,
            br#"[1,2]"#,
            br#"7"#,
            br#"not json"#,
            br#"{"host":"h"} trailing"#,
            b"   ",
            br#"{"host":"unterminated"#,
            br#"{"geo":"not an object","tags":"not an array"}"#,
            br#"{"host":"\u00e9\n","ratio":1e39}"#,
        ];
        for d in &deserializers {
            for record in records {
                let streamed = rows(record, &columns, d);
                let tree = rows_by_tree(record, &columns, d);
                match (&streamed, &tree) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", String::from_utf8_lossy(record)),
                    (Err(a), Err(b)) => assert_eq!(
                        (a.code, a.code == MALFORMED_DATA && a.message != b.message),
                        (b.code, false),
                        "{}: {a:?} {b:?}",
                        String::from_utf8_lossy(record)
                    ),
                    _ => panic!("{}: {streamed:?} against {tree:?}", String::from_utf8_lossy(record)),
                }
            }
        }
    }
}
