//! Record format conversion (`DataFormatConversionConfiguration`): the configuration and AWS's create-time rules,
//! the Glue column types a table may have, and a record's JSON deserialized into typed cells as the OpenX and
//! Hive JSON SerDes do. The emulator writes the cells as Parquet; records that do not parse or fit go to the
//! error output (`format-conversion-failed`) one by one while the rest converts.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use crate::types::Compression;

/// `!{firehose:error-output-type}` of records that failed conversion.
pub const ERROR_OUTPUT_TYPE: &str = "format-conversion-failed";
/// The smallest buffer a converting stream may have (MiB), and its default.
pub const MIN_SIZE_MIB: i64 = 64;
pub const DEFAULT_SIZE_MIB: i64 = 128;
/// A record that is not JSON.
pub const PARSE_ERROR: &str = "DataFormatConversion.ParseError";
/// A value that does not fit its column.
pub const MALFORMED_DATA: &str = "DataFormatConversion.MalformedData";

/// The ARN of a Glue table (Glue folds names to lower case).
pub fn table_arn(partition: &str, region: &str, account_id: &str, database: &str, table: &str) -> String {
    format!("arn:{partition}:glue:{region}:{account_id}:table/{}/{}", database.to_lowercase(), table.to_lowercase())
}

/// What the conversion's role must be allowed to read the table: `glue:GetTable` on the catalog, the database
/// and the table (Glue checks all three), and the two version reads on the table.
pub fn read_needs(
    partition: &str,
    region: &str,
    account_id: &str,
    database: &str,
    table: &str,
) -> Vec<crate::access::Need> {
    let arn = |what: String| format!("arn:{partition}:glue:{region}:{account_id}:{what}");
    let table_arn = table_arn(partition, region, account_id, database, table);
    let need =
        |action: &str, resource: String| crate::access::Need { action: action.into(), resource, for_what: "schema" };
    vec![
        need("glue:GetTable", arn("catalog".into())),
        need("glue:GetTable", arn(format!("database/{}", database.to_lowercase()))),
        need("glue:GetTable", table_arn.clone()),
        need("glue:GetTableVersion", table_arn.clone()),
        need("glue:GetTableVersions", table_arn),
    ]
}

/// Where the schema is: a Glue table.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaRef {
    pub role_arn: String,
    pub catalog_id: Option<String>,
    pub database: String,
    pub table: String,
    pub region: Option<String>,
    /// `None` or `LATEST`: the newest version, picked up as the table changes.
    pub version_id: Option<String>,
}

/// How records are read: the OpenX or the Hive JSON SerDe.
#[derive(Debug, Clone, PartialEq)]
pub enum Deserializer {
    OpenX {
        dots_to_underscores: bool,
        case_insensitive: bool,
        mappings: BTreeMap<String, String>,
    },
    /// `TimestampFormats`: `millis`, or patterns of yyyy MM dd HH mm ss SSS and literals (as chrono formats).
    Hive {
        timestamp_formats: Vec<String>,
    },
}

/// ParquetSerDe's settings that Parquet writers have.
#[derive(Debug, Clone, PartialEq)]
pub struct Parquet {
    /// `SNAPPY` (default), `GZIP` or `UNCOMPRESSED`.
    pub compression: String,
    pub page_size: usize,
    pub dictionary: bool,
    /// `WriterVersion` V2.
    pub v2: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    pub schema: SchemaRef,
    pub deserializer: Deserializer,
    pub parquet: Parquet,
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

/// The configuration, when enabled (`Enabled` defaults to true); an `InvalidArgumentException` message, or a
/// refusal of what the emulator does not model (prefixed `unmodelled:`), otherwise.
pub fn parse(config: Option<&Value>) -> Result<Option<Conversion>, String> {
    let Some(c) = config.filter(|c| c.get("Enabled").and_then(Value::as_bool) != Some(false)) else { return Ok(None) };
    let required = "SchemaConfiguration, InputFormatConfiguration and OutputFormatConfiguration are required when data format conversion is enabled";
    let (Some(s), Some(input), Some(output)) = (
        c.get("SchemaConfiguration"),
        c.get("InputFormatConfiguration").and_then(|i| i.get("Deserializer")),
        c.get("OutputFormatConfiguration").and_then(|o| o.get("Serializer")),
    ) else {
        return Err(required.into());
    };
    let (Some(role_arn), Some(database), Some(table)) =
        (str_of(s, "RoleARN"), str_of(s, "DatabaseName"), str_of(s, "TableName"))
    else {
        return Err("SchemaConfiguration needs RoleARN, DatabaseName and TableName".into());
    };
    let schema = SchemaRef {
        role_arn,
        catalog_id: str_of(s, "CatalogId"),
        database,
        table,
        region: str_of(s, "Region"),
        version_id: str_of(s, "VersionId").filter(|v| v != "LATEST"),
    };
    Ok(Some(Conversion { schema, deserializer: deserializer(input)?, parquet: parquet(output)? }))
}

fn deserializer(d: &Value) -> Result<Deserializer, String> {
    match (d.get("OpenXJsonSerDe"), d.get("HiveJsonSerDe")) {
        (Some(o), None) => Ok(Deserializer::OpenX {
            dots_to_underscores: o.get("ConvertDotsInJsonKeysToUnderscores").and_then(Value::as_bool).unwrap_or(false),
            case_insensitive: o.get("CaseInsensitive").and_then(Value::as_bool).unwrap_or(true),
            mappings: o
                .get("ColumnToJsonKeyMappings")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter().map(|(k, v)| (k.to_lowercase(), v.as_str().unwrap_or_default().to_string())).collect()
                })
                .unwrap_or_default(),
        }),
        (None, Some(h)) => {
            let formats: Vec<String> = h
                .get("TimestampFormats")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            let formats = formats.iter().map(|f| joda_to_chrono(f)).collect::<Result<Vec<_>, _>>()?;
            Ok(Deserializer::Hive { timestamp_formats: formats })
        }
        _ => Err("Deserializer needs exactly one of OpenXJsonSerDe and HiveJsonSerDe".into()),
    }
}

fn parquet(s: &Value) -> Result<Parquet, String> {
    if s.get("OrcSerDe").is_some() {
        return Err(
            "unmodelled:ORC output (OrcSerDe) is not modelled by the firehose-kit emulator; use ParquetSerDe".into()
        );
    }
    let p = s.get("ParquetSerDe").ok_or("Serializer needs ParquetSerDe or OrcSerDe")?;
    let compression = str_of(p, "Compression").unwrap_or_else(|| "SNAPPY".into());
    if !matches!(compression.as_str(), "SNAPPY" | "GZIP" | "UNCOMPRESSED") {
        return Err(format!("ParquetSerDe Compression {compression} is not one of UNCOMPRESSED, GZIP, SNAPPY"));
    }
    let page_size = p.get("PageSizeBytes").and_then(Value::as_u64).unwrap_or(1024 * 1024);
    if page_size < 64 * 1024 {
        return Err("ParquetSerDe PageSizeBytes must be at least 65536".into());
    }
    // BlockSizeBytes is the HDFS block size padding is computed against: with no padding (MaxPaddingBytes 0, the
    // default) it changes nothing in the object. Padding itself only serves a copy to HDFS.
    if p.get("BlockSizeBytes").and_then(Value::as_u64).is_some_and(|b| b < 64 * 1024 * 1024) {
        return Err("ParquetSerDe BlockSizeBytes must be at least 67108864".into());
    }
    if p.get("MaxPaddingBytes").and_then(Value::as_u64).is_some_and(|m| m > 0) {
        return Err("unmodelled:ParquetSerDe MaxPaddingBytes (padding row groups to HDFS blocks) is not modelled by the firehose-kit emulator; leave it at 0".into());
    }
    Ok(Parquet {
        compression,
        page_size: page_size as usize,
        dictionary: p.get("EnableDictionaryCompression").and_then(Value::as_bool).unwrap_or(true),
        v2: str_of(p, "WriterVersion").as_deref() == Some("V2"),
    })
}

/// AWS's rules for the destination of a converting stream.
pub fn check_destination(size_in_mbs: i64, compression: &Compression) -> Result<(), String> {
    if size_in_mbs < MIN_SIZE_MIB {
        return Err(format!(
            "BufferingHints.SizeInMBs must be at least {MIN_SIZE_MIB} when data format conversion is enabled."
        ));
    }
    if *compression != Compression::Uncompressed {
        return Err(format!(
            "CompressionFormat must be UNCOMPRESSED when data format conversion is enabled (it is {compression}): the serializer compresses"
        ));
    }
    Ok(())
}

/// A Hive `TimestampFormats` pattern (Joda) as a chrono format, or `millis`.
fn joda_to_chrono(pattern: &str) -> Result<String, String> {
    if pattern == "millis" {
        return Ok(pattern.into());
    }
    let mut out = String::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        let token = ["yyyy", "MM", "dd", "HH", "mm", "ss", "SSS"].into_iter().find(|t| rest.starts_with(t));
        if let Some(t) = token {
            out.push_str(match t {
                "yyyy" => "%Y",
                "MM" => "%m",
                "dd" => "%d",
                "HH" => "%H",
                "mm" => "%M",
                "ss" => "%S",
                _ => "%3f",
            });
            rest = &rest[t.len()..];
        } else if let Some(quoted) = rest.strip_prefix('\'') {
            let end = quoted
                .find('\'')
                .ok_or_else(|| format!("TimestampFormats pattern `{pattern}` has an unclosed quote"))?;
            out.push_str(&quoted[..end].replace('%', "%%"));
            rest = &quoted[end + 1..];
        } else {
            let c = rest.chars().next().expect("not empty");
            if c.is_ascii_alphabetic() {
                return Err(format!(
                    "unmodelled:TimestampFormats pattern `{pattern}`: the firehose-kit emulator parses the letters yyyy MM dd HH mm ss SSS and `millis` only"
                ));
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(out)
}

/// A Glue (Hive) column type the converter writes.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnType {
    String,
    Char(usize),
    Varchar(usize),
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Boolean,
    Timestamp,
    Date,
    Decimal(u8, i8),
    Binary,
    /// `array<T>`: a JSON array.
    Array(Box<ColumnType>),
    /// `map<K,V>`: a JSON object, its keys read as K (a primitive type).
    Map(Box<ColumnType>, Box<ColumnType>),
    /// `struct<name:T,...>`: a JSON object, its keys matched to the fields as top-level keys are to columns.
    Struct(Vec<(String, ColumnType)>),
}

/// Splits `s` at `sep` outside `<>` and `()`.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0i32, 0usize, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            c if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// `array<…>`, `map<…>` and `struct<…>`, their element types parsed in turn; `None` when `t` is none of them.
fn nested_type(t: &str, hive: &str) -> Option<Result<ColumnType, String>> {
    let inner = |prefix: &str| t.strip_prefix(prefix).and_then(|r| r.trim_start().strip_prefix('<'))?.strip_suffix('>');
    if let Some(item) = inner("array") {
        return Some(column_type(item).map(|t| ColumnType::Array(Box::new(t))));
    }
    if let Some(kv) = inner("map") {
        let parts = split_top(kv, ',');
        let [k, v] = parts.as_slice() else { return Some(Err(bad(hive))) };
        return Some((|| {
            let key = column_type(k)?;
            if matches!(key, ColumnType::Array(_) | ColumnType::Map(..) | ColumnType::Struct(_)) {
                return Err(format!("column type `{hive}`: a map's keys must be of a primitive type"));
            }
            Ok(ColumnType::Map(Box::new(key), Box::new(column_type(v)?)))
        })());
    }
    let fields = inner("struct")?;
    Some(
        split_top(fields, ',')
            .into_iter()
            .map(|f| {
                let (name, ty) = f.split_once(':').ok_or_else(|| bad(hive))?;
                let name = name.trim().trim_matches('`');
                if name.is_empty() {
                    return Err(bad(hive));
                }
                Ok((name.to_string(), column_type(ty)?))
            })
            .collect::<Result<Vec<_>, String>>()
            .map(ColumnType::Struct),
    )
}

/// Parses a Hive type, nested ones (`array<…>`, `map<…>`, `struct<…>`) included.
pub fn column_type(hive: &str) -> Result<ColumnType, String> {
    let t = hive.trim().to_lowercase();
    if let Some(nested) = nested_type(&t, hive) {
        return nested;
    }
    let arg = |prefix: &str| t.strip_prefix(prefix).and_then(|r| r.strip_prefix('(')).and_then(|r| r.strip_suffix(')'));
    Ok(match t.as_str() {
        "string" => ColumnType::String,
        "tinyint" => ColumnType::TinyInt,
        "smallint" => ColumnType::SmallInt,
        "int" | "integer" => ColumnType::Int,
        "bigint" => ColumnType::BigInt,
        "float" => ColumnType::Float,
        "double" => ColumnType::Double,
        "boolean" => ColumnType::Boolean,
        "timestamp" => ColumnType::Timestamp,
        "date" => ColumnType::Date,
        "binary" => ColumnType::Binary,
        "decimal" => ColumnType::Decimal(10, 0),
        _ => {
            if let Some(n) = arg("char").and_then(|n| n.trim().parse().ok()) {
                ColumnType::Char(n)
            } else if let Some(n) = arg("varchar").and_then(|n| n.trim().parse().ok()) {
                ColumnType::Varchar(n)
            } else if let Some((p, s)) = arg("decimal").and_then(|a| a.split_once(',')) {
                let (p, s): (u8, i8) =
                    (p.trim().parse().map_err(|_| bad(hive))?, s.trim().parse().map_err(|_| bad(hive))?);
                if !(1..=38).contains(&p) || s < 0 || s as u8 > p {
                    return Err(bad(hive));
                }
                ColumnType::Decimal(p, s)
            } else {
                return Err(bad(hive));
            }
        }
    })
}

fn bad(hive: &str) -> String {
    format!("column type `{hive}` is not a Hive type")
}

/// One converted value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Microseconds since the epoch, UTC.
    Timestamp(i64),
    /// Days since the epoch.
    Date(i32),
    /// The unscaled value of a decimal.
    Decimal(i128),
    Binary(Vec<u8>),
    /// An array's elements.
    List(Vec<Cell>),
    /// A map's entries, in the JSON object's order.
    Map(Vec<(Cell, Cell)>),
    /// A struct's fields, in the type's order.
    Struct(Vec<Cell>),
}

/// Why a record did not convert: the code Firehose writes, and what was wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
}

#[cfg(test)]
fn malformed(message: String) -> Failure {
    Failure { code: MALFORMED_DATA, message }
}

mod rows;

pub use rows::{Plan, rows, rows_of};

/// The rows of one record through JSON trees: what [`rows`] must answer (its tests compare the two).
#[cfg(test)]
/// The rows of one record (its JSON documents, one after the other), or why the record fails as a whole.
pub(crate) fn rows_by_tree(
    record: &[u8],
    columns: &[(String, ColumnType)],
    d: &Deserializer,
) -> Result<Vec<Vec<Cell>>, Failure> {
    // The key each column reads, worked out once per record; a key two columns read is copied, not moved out.
    let wanted: Vec<String> = columns
        .iter()
        .map(|(name, _)| {
            match d {
                Deserializer::OpenX { mappings, .. } => mappings.get(&name.to_lowercase()).map(|k| key_of(k, d)),
                Deserializer::Hive { .. } => None,
            }
            .unwrap_or_else(|| key_of(name, d))
        })
        .collect();
    let shared: Vec<bool> = wanted.iter().map(|k| wanted.iter().filter(|w| *w == k).count() > 1).collect();
    let mut out = Vec::new();
    for doc in serde_json::Deserializer::from_slice(record).into_iter::<Value>() {
        let doc = doc.map_err(|e| Failure { code: PARSE_ERROR, message: format!("the record is not JSON: {e}") })?;
        let Value::Object(fields) = doc else {
            return Err(Failure { code: PARSE_ERROR, message: "a record's document must be a JSON object".into() });
        };
        let mut fields: Vec<(String, Value)> = fields.into_iter().map(|(k, v)| (folded(k, d), v)).collect();
        let row = columns
            .iter()
            .zip(&wanted)
            .zip(&shared)
            .map(|(((name, ty), key), shared)| {
                // The last of keys that fold alike wins, as in a map.
                let value = match fields.iter_mut().rev().find(|(k, _)| k == key) {
                    Some((_, v)) if *shared => v.clone(),
                    Some((_, v)) => std::mem::take(v),
                    None => Value::Null,
                };
                owned_cell(value, ty, d).map_err(|why| malformed(format!("column {name}: {why}")))
            })
            .collect::<Result<Vec<Cell>, Failure>>()?;
        out.push(row);
    }
    if out.is_empty() {
        return Err(Failure { code: PARSE_ERROR, message: "the record holds no JSON document".into() });
    }
    Ok(out)
}

/// A JSON key as the deserializer compares it.
fn key_of(key: &str, d: &Deserializer) -> String {
    folded(key.to_string(), d)
}

/// `key` as the deserializer compares it, reusing its allocation when it is already so (the usual case).
fn folded(key: String, d: &Deserializer) -> String {
    let (lower, dots) = match d {
        Deserializer::OpenX { dots_to_underscores, case_insensitive, .. } => (*case_insensitive, *dots_to_underscores),
        // The Hive SerDe matches keys case-insensitively.
        Deserializer::Hive { .. } => (true, false),
    };
    let key = if lower && key.chars().any(char::is_uppercase) { key.to_lowercase() } else { key };
    if dots && key.contains('.') { key.replace('.', "_") } else { key }
}

fn keys(fields: serde_json::Map<String, Value>, d: &Deserializer) -> BTreeMap<String, Value> {
    fields.into_iter().map(|(k, v)| (folded(k, d), v)).collect()
}

/// [`cell`] of a value the row owns: a string moves into its cell instead of being copied.
fn owned_cell(v: Value, ty: &ColumnType, d: &Deserializer) -> Result<Cell, String> {
    match (ty, v) {
        (ColumnType::String, Value::String(s)) => Ok(Cell::Str(s)),
        (_, v) => cell(&v, ty, d),
    }
}

fn cell(v: &Value, ty: &ColumnType, d: &Deserializer) -> Result<Cell, String> {
    if v.is_null() {
        return Ok(Cell::Null);
    }
    let text = || match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let int = |min: i64, max: i64| -> Result<Cell, String> {
        let n = match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| format!("{v} is not an integer"))?;
        if (min..=max).contains(&n) { Ok(Cell::Int(n)) } else { Err(format!("{n} is out of range")) }
    };
    Ok(match ty {
        ColumnType::String => Cell::Str(text()),
        ColumnType::Char(n) | ColumnType::Varchar(n) => Cell::Str(text().chars().take(*n).collect()),
        ColumnType::TinyInt => int(i8::MIN as i64, i8::MAX as i64)?,
        ColumnType::SmallInt => int(i16::MIN as i64, i16::MAX as i64)?,
        ColumnType::Int => int(i32::MIN as i64, i32::MAX as i64)?,
        ColumnType::BigInt => int(i64::MIN, i64::MAX)?,
        ColumnType::Float | ColumnType::Double => {
            let f: f64 = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| format!("{v} is not a number"))?;
            // A float column holds what an f32 does: a larger value is refused, never made infinite.
            let max = if *ty == ColumnType::Float { f32::MAX as f64 } else { f64::MAX };
            if !f.is_finite() || f.abs() > max {
                return Err(format!(
                    "{v} is out of the range of a {}",
                    if max == f64::MAX { "double" } else { "float" }
                ));
            }
            Cell::Float(f)
        }
        ColumnType::Boolean => Cell::Bool(match v {
            Value::Bool(b) => *b,
            Value::String(s) if s.eq_ignore_ascii_case("true") => true,
            Value::String(s) if s.eq_ignore_ascii_case("false") => false,
            _ => return Err(format!("{v} is not a boolean")),
        }),
        ColumnType::Timestamp => Cell::Timestamp(timestamp(v, d)?),
        ColumnType::Date => {
            let s = v.as_str().ok_or_else(|| format!("{v} is not a date"))?;
            let date = NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
                .map_err(|_| format!("{v} is not a date"))?;
            Cell::Date((date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32)
        }
        ColumnType::Decimal(p, s) => {
            Cell::Decimal(decimal(&text(), *p, *s).ok_or_else(|| format!("{v} is not a decimal({p},{s})"))?)
        }
        ColumnType::Binary => Cell::Binary(text().into_bytes()),
        ColumnType::Array(_) | ColumnType::Map(..) | ColumnType::Struct(_) => nested_cell(v, ty, d)?,
    })
}

/// The cell of a nested column: each element, entry or field converted by its own type (a field's or entry's
/// name in what is wrong).
fn nested_cell(v: &Value, ty: &ColumnType, d: &Deserializer) -> Result<Cell, String> {
    Ok(match (ty, v) {
        (ColumnType::Array(item), Value::Array(items)) => Cell::List(
            items.iter().map(|x| cell(x, item, d)).collect::<Result<_, _>>().map_err(|e| format!("an element: {e}"))?,
        ),
        (ColumnType::Map(key, value), Value::Object(entries)) => Cell::Map(
            entries
                .iter()
                .map(|(k, x)| {
                    let k_cell = cell(&Value::String(k.clone()), key, d).map_err(|e| format!("key `{k}`: {e}"))?;
                    Ok((k_cell, cell(x, value, d).map_err(|e| format!("key `{k}`: {e}"))?))
                })
                .collect::<Result<_, String>>()?,
        ),
        (ColumnType::Struct(fields), Value::Object(members)) => {
            let members = keys(members.clone(), d);
            Cell::Struct(
                fields
                    .iter()
                    .map(|(name, t)| {
                        cell(members.get(&key_of(name, d)).unwrap_or(&Value::Null), t, d)
                            .map_err(|e| format!("field {name}: {e}"))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        (ColumnType::Array(_), _) => return Err(format!("{v} is not an array")),
        _ => return Err(format!("{v} is not an object")),
    })
}

/// The earliest and latest instants a Hive (and Parquet, in microseconds) timestamp column holds: years 1 to 9999.
const TIMESTAMP_MICROS: std::ops::RangeInclusive<i64> = -62_135_596_800_000_000..=253_402_300_799_999_999;

/// A timestamp as microseconds since the epoch, checked against what the column holds (arithmetic on the record's
/// numbers is checked: a value out of range is an error, never a wrapped or saturated time). OpenX:
/// `yyyy-MM-dd'T'HH:mm:ss[.S]'Z'`, `yyyy-[M]M-[d]d HH:mm:ss[.S]` (up to 9 fraction digits), epoch seconds, epoch
/// milliseconds (13 digits or more) or fractional epoch seconds; an RFC 3339 offset is read too (chosen: whether
/// OpenX takes one is not documented). Hive: its TimestampFormats, else `yyyy-[m]m-[d]d hh:mm:ss[.f…]`.
fn timestamp(v: &Value, d: &Deserializer) -> Result<i64, String> {
    let out_of_range = || format!("{v} is out of the range of a timestamp (years 1 to 9999)");
    let micros = parsed_timestamp(v, d).ok_or_else(|| format!("{v} is not a timestamp it parses"))?;
    micros.filter(|m| TIMESTAMP_MICROS.contains(m)).ok_or_else(out_of_range)
}

/// `None`: not a timestamp; `Some(None)`: one whose microseconds do not fit.
fn parsed_timestamp(v: &Value, d: &Deserializer) -> Option<Option<i64>> {
    if let Deserializer::Hive { timestamp_formats } = d {
        let s = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
        for f in timestamp_formats {
            if f == "millis" {
                if let Ok(ms) = s.parse::<i64>() {
                    return Some(ms.checked_mul(1000));
                }
            } else if let Ok(t) = NaiveDateTime::parse_from_str(&s, f) {
                return Some(Some(t.and_utc().timestamp_micros()));
            }
        }
        let t = NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f").ok()?;
        return Some(Some(t.and_utc().timestamp_micros()));
    }
    match v {
        Value::Number(n) if n.is_i64() => {
            let n = n.as_i64()?;
            Some(if n.unsigned_abs() >= 100_000_000_000 { n.checked_mul(1000) } else { n.checked_mul(1_000_000) })
        }
        Value::Number(n) => {
            let micros = n.as_f64()? * 1e6;
            Some((micros.is_finite() && micros.abs() < i64::MAX as f64).then_some(micros as i64))
        }
        Value::String(s) => {
            let s = s.trim();
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(Some(t.with_timezone(&Utc).timestamp_micros()));
            }
            ["%Y-%m-%dT%H:%M:%S%.fZ", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                .map(|t| Some(Utc.from_utc_datetime(&t).timestamp_micros()))
        }
        _ => None,
    }
}

/// The unscaled value of `text` as a decimal(p,s), if it fits.
fn decimal(text: &str, p: u8, s: i8) -> Option<i128> {
    let text = text.trim();
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scale = s as usize;
    if frac.len() > scale || int.trim_start_matches('0').len() + scale > p as usize {
        return None;
    }
    let unscaled: i128 = format!("{int}{frac:0<scale$}").parse().ok()?;
    Some(if neg { -unscaled } else { unscaled })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_block_size_is_checked_and_padding_refused() {
        let with = |serde: Value| json!({"ParquetSerDe": serde});
        assert!(parquet(&with(json!({"BlockSizeBytes": 268435456}))).is_ok());
        assert_eq!(
            parquet(&with(json!({"BlockSizeBytes": 1024}))).unwrap_err(),
            "ParquetSerDe BlockSizeBytes must be at least 67108864"
        );
        let padded = parquet(&with(json!({"MaxPaddingBytes": 1024}))).unwrap_err();
        assert!(padded.starts_with("unmodelled:ParquetSerDe MaxPaddingBytes"), "{padded}");
        assert!(parquet(&with(json!({"MaxPaddingBytes": 0}))).is_ok());
    }
    use serde_json::json;

    fn openx() -> Deserializer {
        parse(Some(&json!({
            "SchemaConfiguration": {"RoleARN": "r", "DatabaseName": "d", "TableName": "t"},
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {"ConvertDotsInJsonKeysToUnderscores": true, "ColumnToJsonKeyMappings": {"ts": "@timestamp"}}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}
        })))
        .unwrap()
        .unwrap()
        .deserializer
    }

    #[test]
    fn configurations_and_their_rules() {
        assert_eq!(parse(Some(&json!({"Enabled": false}))), Ok(None));
        assert!(parse(Some(&json!({}))).unwrap_err().contains("are required"));
        let orc = json!({"SchemaConfiguration": {"RoleARN": "r", "DatabaseName": "d", "TableName": "t"},
            "InputFormatConfiguration": {"Deserializer": {"HiveJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": {"OrcSerDe": {}}}});
        assert!(parse(Some(&orc)).unwrap_err().starts_with("unmodelled:"));
        assert!(check_destination(5, &Compression::Uncompressed).unwrap_err().contains("at least 64"));
        assert!(check_destination(64, &Compression::Gzip).unwrap_err().contains("UNCOMPRESSED"));
        assert_eq!(joda_to_chrono("yyyy-MM-dd'T'HH:mm:ss").unwrap(), "%Y-%m-%dT%H:%M:%S");
        assert!(joda_to_chrono("EEE yyyy").unwrap_err().starts_with("unmodelled:"));
        assert_eq!(column_type("DECIMAL(10, 2)"), Ok(ColumnType::Decimal(10, 2)));
        assert_eq!(column_type("varchar(5)"), Ok(ColumnType::Varchar(5)));
        assert_eq!(column_type("array<int>"), Ok(ColumnType::Array(Box::new(ColumnType::Int))));
        assert_eq!(
            column_type("struct<a:decimal(4, 2),`b`:map<string,array<bigint>>>"),
            Ok(ColumnType::Struct(vec![
                ("a".into(), ColumnType::Decimal(4, 2)),
                (
                    "b".into(),
                    ColumnType::Map(
                        Box::new(ColumnType::String),
                        Box::new(ColumnType::Array(Box::new(ColumnType::BigInt)))
                    )
                ),
            ]))
        );
        for bad in ["array<int", "map<string>", "map<array<int>,int>", "struct<a int>", "struct<:int>", "array<nope>"] {
            assert!(column_type(bad).is_err(), "{bad}");
        }
        assert!(column_type("integr").is_err());
    }

    #[test]
    fn openx_reads_keys_and_types_as_the_serde_does() {
        let columns = vec![
            ("host".to_string(), ColumnType::String),
            ("status".to_string(), ColumnType::Int),
            ("a_b".to_string(), ColumnType::Boolean),
            ("ts".to_string(), ColumnType::Timestamp),
            ("price".to_string(), ColumnType::Decimal(6, 2)),
        ];
        let record =
            br#"{"HOST":"h","status":"200","a.b":true,"@timestamp":"2026-12-02T10:00:00Z","price":12.5}{"status":404}"#;
        let got = rows(record, &columns, &openx()).unwrap();
        assert_eq!(
            got[0],
            vec![
                Cell::Str("h".into()),
                Cell::Int(200),
                Cell::Bool(true),
                Cell::Timestamp(1_796_205_600_000_000),
                Cell::Decimal(1250),
            ]
        );
        assert_eq!(got[1][1], Cell::Int(404));
        assert_eq!(got[1][0], Cell::Null, "a missing key is null");
        let bad = rows(br#"{"status":"x"}"#, &columns, &openx()).unwrap_err();
        assert_eq!(bad.code, MALFORMED_DATA);
        assert!(bad.message.contains("column status"), "{}", bad.message);
        assert_eq!(rows(b"not json", &columns, &openx()).unwrap_err().code, PARSE_ERROR);
        assert_eq!(rows(br#"{"status":3000000000}"#, &columns, &openx()).unwrap_err().code, MALFORMED_DATA);
        for (v, micros) in [
            (json!(1_796_205_600), 1_796_205_600_000_000),
            (json!(1_796_205_600_000i64), 1_796_205_600_000_000),
            (json!("2026-12-02 10:00:00.5"), 1_796_205_600_500_000),
            (json!("2026-12-02T11:00:00+01:00"), 1_796_205_600_000_000),
        ] {
            assert_eq!(timestamp(&v, &openx()), Ok(micros), "{v}");
        }
        // Times a timestamp column cannot hold are the record's failure, in every build: never a panic on
        // overflow, never a saturated or wrapped time.
        let ts = vec![("at".to_string(), ColumnType::Timestamp)];
        for v in ["9300000000000000", "9300000000000000000", "-9300000000000000000", "1e300", "253402300800000"] {
            let record = format!(r#"{{"at":{v}}}"#);
            let failure = rows(record.as_bytes(), &ts, &openx()).unwrap_err();
            assert_eq!(failure.code, MALFORMED_DATA, "{v}");
            assert!(failure.message.contains("out of the range of a timestamp"), "{v}: {}", failure.message);
        }
        assert!(rows(br#"{"at":253402300799999}"#, &ts, &openx()).is_ok(), "the last millisecond of 9999 fits");
        let hive = Deserializer::Hive { timestamp_formats: vec!["millis".into()] };
        assert_eq!(rows(br#"{"at":"9200000000000000000"}"#, &ts, &hive).unwrap_err().code, MALFORMED_DATA);
        let float = vec![("f".to_string(), ColumnType::Float)];
        assert_eq!(rows(br#"{"f":1e39}"#, &float, &openx()).unwrap_err().code, MALFORMED_DATA, "past f32");
        let nested = vec![
            ("tags".to_string(), column_type("array<string>").unwrap()),
            ("hits".to_string(), column_type("map<string,int>").unwrap()),
            ("geo".to_string(), column_type("struct<City:string,lat:double>").unwrap()),
        ];
        let got = rows(br#"{"tags":["a",null],"hits":{"x":"1"},"geo":{"CITY":"Paris","lat":48.8}}"#, &nested, &openx());
        assert_eq!(
            got.unwrap()[0],
            vec![
                Cell::List(vec![Cell::Str("a".into()), Cell::Null]),
                Cell::Map(vec![(Cell::Str("x".into()), Cell::Int(1))]),
                Cell::Struct(vec![Cell::Str("Paris".into()), Cell::Float(48.8)]),
            ]
        );
        let wrong = rows(br#"{"hits":{"x":"many"}}"#, &nested, &openx()).unwrap_err();
        assert_eq!(wrong.code, MALFORMED_DATA);
        assert!(wrong.message.contains("column hits: key `x`"), "{}", wrong.message);
        assert!(rows(br#"{"tags":"a"}"#, &nested, &openx()).unwrap_err().message.contains("is not an array"));
        // Keys that fold alike: the last wins; two columns reading one key both get it.
        let twice = vec![("host".to_string(), ColumnType::String), ("ts".to_string(), ColumnType::String)];
        let mapped = parse(Some(&json!({
            "SchemaConfiguration": {"RoleARN": "r", "DatabaseName": "d", "TableName": "t"},
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {"ColumnToJsonKeyMappings": {"ts": "host"}}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}
        })))
        .unwrap()
        .unwrap()
        .deserializer;
        let got = rows(br#"{"Host":"a","host":"b"}"#, &twice, &mapped).unwrap();
        assert_eq!(got[0], vec![Cell::Str("b".into()), Cell::Str("b".into())]);
        assert_eq!(decimal("-1.5", 4, 2), Some(-150));
        assert_eq!(decimal("123.456", 6, 2), None, "too many fraction digits");
        assert_eq!(decimal("12345", 6, 2), None, "too many integer digits");
    }
}
