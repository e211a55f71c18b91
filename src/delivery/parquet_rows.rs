//! A delivered Parquet object (record format conversion) read back as the JSON lines its rows were made from:
//! each row becomes one compact JSON object with the file's columns in order, strings as strings, integers and
//! floats as numbers, timestamps as RFC 3339 in UTC (`2000-10-10T20:55:36Z`, the form send writes for a
//! converting stream), nulls as null. A row of the Apache table is then byte for byte the document send made of
//! its line, so its hash matches the line's only when every typed field is equal.
//!
//! Parquet is read from its footer, so the body is spooled to a temporary file, and the rows go to another one in
//! batches: disk, not memory, grows with the object.

use std::io::{Read, Seek, Write};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Value};

/// Rows converted at a time.
const BATCH_ROWS: usize = 1024;

/// What a Parquet object held: its rows as JSON lines (a temporary file, at its start), the columns with their
/// Arrow types, and the row count.
pub struct Rows {
    pub json_lines: std::fs::File,
    pub schema: Vec<(String, String)>,
    pub rows: u64,
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not a readable Parquet file: {e}"))
}

/// Reads a Parquet body into JSON lines. A file the `parquet` crate would panic on is an error like any other
/// unreadable one: negative column offsets are refused first (found by fuzzing), any other panic is caught.
pub fn read(body: impl Read) -> std::io::Result<Rows> {
    let mut spool = tempfile::tempfile()?;
    std::io::copy(&mut { body }, &mut spool)?;
    spool.rewind()?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_spooled(spool)))
        .unwrap_or_else(|_| Err(invalid("the Parquet reader panicked")))
}

fn read_spooled(spool: std::fs::File) -> std::io::Result<Rows> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(spool).map_err(invalid)?.with_batch_size(BATCH_ROWS);
    for column in builder.metadata().row_groups().iter().flat_map(|g| g.columns()) {
        let start = column.dictionary_page_offset().unwrap_or(0).min(column.data_page_offset());
        if start < 0 || column.compressed_size() < 0 {
            return Err(invalid(format!("column `{}` has a negative offset or size", column.column_path())));
        }
    }
    let schema = builder.schema().fields().iter().map(|f| (f.name().clone(), type_name(f.data_type()))).collect();
    let reader = builder.build().map_err(invalid)?;
    let mut out = std::io::BufWriter::new(tempfile::tempfile()?);
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(invalid)?;
        write_batch(&batch, &mut out)?;
        rows += batch.num_rows() as u64;
        // Rows past what one Firehose object holds are not read: the reader of the lines stops there too.
        if out.get_ref().metadata()?.len() > super::lines::LONGEST_LINE {
            break;
        }
    }
    let mut json_lines = out.into_inner().map_err(|e| e.into_error())?;
    json_lines.rewind()?;
    Ok(Rows { json_lines, schema, rows })
}

/// A column type as a reader shows it (`int32`, `timestamp[us, UTC]`, ...).
fn type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Timestamp(unit, tz) => {
            let unit = match unit {
                TimeUnit::Second => "s",
                TimeUnit::Millisecond => "ms",
                TimeUnit::Microsecond => "us",
                TimeUnit::Nanosecond => "ns",
            };
            match tz {
                Some(tz) => format!("timestamp[{unit}, {tz}]"),
                None => format!("timestamp[{unit}]"),
            }
        }
        DataType::Decimal128(p, s) => format!("decimal128({p}, {s})"),
        other => other.to_string().to_lowercase(),
    }
}

fn write_batch(batch: &RecordBatch, out: &mut impl Write) -> std::io::Result<()> {
    let names: Vec<&String> = batch.schema_ref().fields().iter().map(|f| f.name()).collect();
    let columns: Vec<&ArrayRef> = batch.columns().iter().collect();
    for row in 0..batch.num_rows() {
        let mut doc = Map::with_capacity(names.len());
        for (name, column) in names.iter().zip(&columns) {
            doc.insert((*name).clone(), value(column, row));
        }
        serde_json::to_writer(&mut *out, &doc)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn timestamp(micros: i64) -> Value {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) => Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        None => Value::Null,
    }
}

/// The JSON value of one cell (nested ones as JSON arrays and objects).
fn value(column: &Arc<dyn Array>, row: usize) -> Value {
    if column.is_null(row) {
        return Value::Null;
    }
    let number = |f: f64| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null);
    match column.data_type() {
        DataType::Utf8 => Value::String(column.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Value::String(column.as_string::<i64>().value(row).to_string()),
        DataType::Int8 => column.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => column.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => column.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => column.as_primitive::<Int64Type>().value(row).into(),
        DataType::Float32 => number(column.as_primitive::<Float32Type>().value(row) as f64),
        DataType::Float64 => number(column.as_primitive::<Float64Type>().value(row)),
        DataType::Boolean => column.as_boolean().value(row).into(),
        DataType::Timestamp(TimeUnit::Second, _) => {
            timestamp(column.as_primitive::<TimestampSecondType>().value(row).saturating_mul(1_000_000))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            timestamp(column.as_primitive::<TimestampMillisecondType>().value(row).saturating_mul(1000))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            timestamp(column.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            timestamp(column.as_primitive::<TimestampNanosecondType>().value(row) / 1000)
        }
        DataType::Date32 => {
            let days = column.as_primitive::<Date32Type>().value(row);
            chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|d| d.checked_add_signed(chrono::Duration::days(days as i64)))
                .map(|d| Value::String(d.to_string()))
                .unwrap_or(Value::Null)
        }
        DataType::Decimal128(_, _) => Value::String(
            column
                .as_primitive_opt::<arrow_array::types::Decimal128Type>()
                .map(|a| a.value_as_string(row))
                .unwrap_or_default(),
        ),
        DataType::Binary => Value::String(String::from_utf8_lossy(column.as_binary::<i32>().value(row)).into_owned()),
        DataType::List(_) => {
            let items = column.as_list::<i32>().value(row);
            Value::Array((0..items.len()).map(|j| value(&items, j)).collect())
        }
        DataType::Map(..) => {
            let entries = column.as_map().value(row);
            let (keys, values) = (entries.column(0), entries.column(1));
            let key = |j: usize| match value(keys, j) {
                Value::String(s) => s,
                other => other.to_string(),
            };
            Value::Object((0..entries.len()).map(|j| (key(j), value(values, j))).collect())
        }
        DataType::Struct(fields) => {
            let s = column.as_struct();
            Value::Object(fields.iter().zip(s.columns()).map(|(f, c)| (f.name().clone(), value(c, row))).collect())
        }
        other => Value::String(format!("({other})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
    use arrow_schema::{Field, Schema};

    /// A Parquet file of one batch of these columns.
    fn parquet_file(fields: Vec<Field>, columns: Vec<ArrayRef>) -> Vec<u8> {
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let mut file = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut file, schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        file
    }

    /// A row written the way the emulator writes it reads back as the document send made of the line.
    #[test]
    fn a_row_reads_back_as_the_json_send_made() {
        let entry = crate::logs::parse_line_in(
            b"1.2.3.4 - frank [10/Oct/2000:13:55:36 -0700] \"GET /a.gif HTTP/1.0\" 200 2326 \"-\" \"curl\"",
            true,
        )
        .unwrap();
        let sent = serde_json::to_string(&entry).unwrap();
        let fields: Vec<Field> = crate::logs::table::COLUMNS
            .iter()
            .map(|(n, t)| match *t {
                "int" => Field::new(*n, DataType::Int32, true),
                "bigint" => Field::new(*n, DataType::Int64, true),
                "timestamp" => Field::new(*n, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
                _ => Field::new(*n, DataType::Utf8, true),
            })
            .collect();
        let doc: Value = serde_json::from_str(&sent).unwrap();
        let columns: Vec<ArrayRef> = fields
            .iter()
            .map(|f| {
                let v = &doc[f.name()];
                match f.data_type() {
                    DataType::Int32 => {
                        let mut b = Int32Builder::new();
                        b.append_option(v.as_i64().map(|n| n as i32));
                        Arc::new(b.finish()) as ArrayRef
                    }
                    DataType::Int64 => {
                        let mut b = Int64Builder::new();
                        b.append_option(v.as_i64());
                        Arc::new(b.finish())
                    }
                    DataType::Timestamp(..) => {
                        let t = chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
                        let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
                        b.append_value(t.timestamp_micros());
                        Arc::new(b.finish())
                    }
                    _ => {
                        let mut b = StringBuilder::new();
                        b.append_option(v.as_str());
                        Arc::new(b.finish())
                    }
                }
            })
            .collect();
        let file = parquet_file(fields, columns);
        let mut rows = read(&file[..]).unwrap();
        let mut text = String::new();
        rows.json_lines.read_to_string(&mut text).unwrap();
        assert_eq!(text, format!("{sent}\n"));
        assert_eq!(rows.rows, 1);
        assert_eq!(rows.schema[3], ("time".to_string(), "timestamp[us, UTC]".to_string()));
        assert_eq!(rows.schema[7], ("status".to_string(), "int32".to_string()));
    }

    /// Nested columns come back as JSON arrays and objects (a map's keys as strings).
    #[test]
    fn nested_cells_become_json_arrays_and_objects() {
        use arrow_array::builder::{Int32Builder, ListBuilder, MapBuilder, StructBuilder};
        let mut tags = ListBuilder::new(StringBuilder::new());
        tags.values().append_value("a");
        tags.values().append_null();
        tags.append(true);
        let mut hits = MapBuilder::new(None, Int32Builder::new(), StringBuilder::new());
        hits.keys().append_value(7);
        hits.values().append_value("seven");
        hits.append(true).unwrap();
        let mut geo = StructBuilder::from_fields(vec![Field::new("city", DataType::Utf8, true)], 1);
        geo.field_builder::<StringBuilder>(0).unwrap().append_value("Paris");
        geo.append(true);
        let columns: Vec<ArrayRef> = vec![Arc::new(tags.finish()), Arc::new(hits.finish()), Arc::new(geo.finish())];
        let fields: Vec<Field> = ["tags", "hits", "geo"]
            .iter()
            .zip(&columns)
            .map(|(n, c)| Field::new(*n, c.data_type().clone(), true))
            .collect();
        let file = parquet_file(fields, columns);
        let mut text = String::new();
        read(&file[..]).unwrap().json_lines.read_to_string(&mut text).unwrap();
        assert_eq!(text, "{\"tags\":[\"a\",null],\"hits\":{\"7\":\"seven\"},\"geo\":{\"city\":\"Paris\"}}\n");
    }

    #[test]
    fn a_body_that_is_not_parquet_is_refused_plainly() {
        let err = read(&b"PAR1 but nothing else"[..]).err().unwrap();
        assert!(err.to_string().contains("not a readable Parquet file"), "{err}");
    }

    /// Found by fuzzing (`verify_object`): a footer with a negative column offset made the `parquet` crate panic
    /// (`byte_range`), failing verify's download task.
    #[test]
    fn a_negative_column_offset_is_an_unreadable_file_not_a_panic() {
        let input = include_bytes!("../../fuzz/corpus/verify_object/crash-parquet-negative-column-offset");
        let err = read(&input[1..]).err().expect("refused");
        assert!(err.to_string().starts_with("not a readable Parquet file: column"), "{err}");
    }

    /// Found by fuzzing (`verify_object`): a null buffer shorter than its column made `arrow-buffer` panic
    /// ("offset + len out of bounds") while the rows were read: caught, the object is unreadable.
    #[test]
    fn a_panic_of_the_arrow_reader_is_an_unreadable_file() {
        let input = include_bytes!("../../fuzz/corpus/verify_object/crash-parquet-arrow-null-buffer-out-of-bounds");
        let err = read(&input[1..]).err().expect("refused");
        assert!(err.to_string().starts_with("not a readable Parquet file"), "{err}");
    }
}
