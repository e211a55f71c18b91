//! Record format conversion at delivery: the buffer's records read back from the journal one at a time (one
//! record, one or more JSON documents), each deserialized into the Glue table's columns
//! ([`firehose_kit_domain::conversion`]), the rows written as one Parquet file with the ParquetSerDe's settings in
//! row groups of [`ROWS_PER_BATCH`] (so memory holds a batch of cells and the compressed file, not the buffer),
//! and the records that did not convert kept for the `format-conversion-failed` error output, one document each,
//! while the rest converts.
//!
//! Chosen where AWS does not document: timestamps are written as INT64 microseconds (UTC), the error documents
//! use `lastErrorCode`/`lastErrorMessage`, and the Glue failures are logged as
//! `DataFormatConversion.AccessDenied` / `DataFormatConversion.EntityNotFound`.

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int8Builder, Int16Builder, Int32Builder, Int64Builder, ListBuilder, MapBuilder, StringBuilder, StructBuilder,
    TimestampMicrosecondBuilder, make_builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::{WriterProperties, WriterVersion};
use serde_json::json;

use super::engine::Context;
use super::gate::Failure;
use super::target::ConversionTarget;
use firehose_kit_domain::access::{self, Request};
use firehose_kit_domain::conversion::{self, Cell, ColumnType};

/// What one buffer converted to.
pub struct Converted {
    /// The Parquet file (`None` when no record converted).
    pub parquet: Option<Vec<u8>>,
    /// The error output: one JSON document per line for each record that failed (`None` when none did).
    pub failed: Option<Vec<u8>>,
    pub rows: usize,
}

/// The table's columns, read from Glue as the conversion role (checked for what AWS checks: `glue:GetTable` on
/// the catalog, database and table, `GetTableVersion(s)` on the table).
fn columns(ctx: &Context, c: &ConversionTarget, stream_region: &str) -> Result<Vec<(String, ColumnType)>, Failure> {
    let s = &c.conversion.schema;
    let region = s.region.as_deref().unwrap_or(stream_region);
    let partition = firehose_kit_domain::names::arn_partition(region);
    let denied = |why: String| Failure::new("DataFormatConversion.AccessDenied", why);
    let gate = &ctx.gate;
    let role = gate
        .iam
        .role_view(&s.role_arn, stream_region)
        .ok_or_else(|| denied(format!("the role {} does not exist", s.role_arn)))?;
    if !role.trusts_firehose {
        return Err(denied(format!("{} does not trust firehose.amazonaws.com", s.role_arn)));
    }
    // What AWS checks: GetTable on the catalog, the database and the table, and the version reads on the table.
    let context = access::delivery_context(&s.role_arn, &gate.account_id);
    for need in conversion::read_needs(partition, region, &gate.account_id, &s.database, &s.table) {
        let req = Request { action: &need.action, resource: &need.resource, principal: &s.role_arn, context: &context };
        if !access::evaluate(&role.identity, None, &req).allowed() {
            return Err(denied(format!("{} may not {} on {}", s.role_arn, need.action, need.resource)));
        }
    }
    let glue =
        ctx.glue.as_ref().ok_or_else(|| Failure::new("DataFormatConversion.EntityNotFound", "no Glue catalog"))?;
    crate::faults::check(crate::faults::GLUE_READ, &s.table).map_err(|e| {
        Failure::new("InternalError", format!("reading the Glue table {}.{}: {e}", s.database, s.table))
    })?;
    // A pinned VersionId reads that version (a later column is not written); none or LATEST, the newest.
    let pinned = s.version_id.as_deref().filter(|v| *v != "LATEST");
    let table = glue.table_version(region, &s.database, &s.table, pinned).ok_or_else(|| {
        let which = pinned.map(|v| format!("version {v} of ")).unwrap_or_default();
        Failure::new(
            "DataFormatConversion.EntityNotFound",
            format!("{which}Glue table {}.{} not found", s.database, s.table),
        )
    })?;
    let cols = table["StorageDescriptor"]["Columns"].as_array().cloned().unwrap_or_default();
    cols.iter()
        .map(|col| {
            let name = col["Name"].as_str().unwrap_or_default().to_lowercase();
            let ty = conversion::column_type(col["Type"].as_str().unwrap_or_default()).map_err(|e| {
                Failure::new(
                    "DataFormatConversion.EntityNotFound",
                    format!("column {name}: {}", e.trim_start_matches("unmodelled:")),
                )
            })?;
            Ok((name, ty))
        })
        .collect()
}

/// Rows turned into Arrow arrays and handed to the Parquet writer at a time.
pub const ROWS_PER_BATCH: usize = 16 * 1024;

/// The Parquet file being written, batch by batch.
struct ParquetOut<'a> {
    columns: &'a [(String, ColumnType)],
    schema: Arc<Schema>,
    props: Option<WriterProperties>,
    writer: Option<ArrowWriter<Vec<u8>>>,
    pending: Vec<Vec<Cell>>,
    rows: usize,
}

fn storage(e: impl std::fmt::Display) -> Failure {
    Failure::new("InternalError", format!("writing Parquet: {e}"))
}

impl<'a> ParquetOut<'a> {
    fn new(columns: &'a [(String, ColumnType)], p: &conversion::Parquet) -> Self {
        let fields: Vec<Field> = columns.iter().map(|(n, t)| Field::new(n, data_type(t), true)).collect();
        Self {
            columns,
            schema: Arc::new(Schema::new(fields)),
            props: Some(properties(p)),
            writer: None,
            pending: Vec::with_capacity(ROWS_PER_BATCH),
            rows: 0,
        }
    }

    fn push(&mut self, rows: Vec<Vec<Cell>>) -> Result<(), Failure> {
        self.rows += rows.len();
        self.pending.extend(rows);
        if self.pending.len() >= ROWS_PER_BATCH { self.flush() } else { Ok(()) }
    }

    fn flush(&mut self) -> Result<(), Failure> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> =
            self.columns.iter().enumerate().map(|(i, (_, t))| array(t, &self.pending, i)).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(storage)?;
        if self.writer.is_none() {
            self.writer =
                Some(ArrowWriter::try_new(Vec::new(), self.schema.clone(), self.props.take()).map_err(storage)?);
        }
        self.writer.as_mut().expect("made above").write(&batch).map_err(storage)?;
        self.pending.clear();
        Ok(())
    }

    /// The file, when any row was written.
    fn finish(mut self) -> Result<Option<Vec<u8>>, Failure> {
        self.flush()?;
        match self.writer {
            Some(w) => Ok(Some(w.into_inner().map_err(storage)?)),
            None => Ok(None),
        }
    }
}

/// The error output's document for a record that did not convert.
fn failed_document(
    gate: &super::gate::Gate,
    c: &ConversionTarget,
    region: &str,
    arrival: i64,
    data: &[u8],
    f: &conversion::Failure,
) -> serde_json::Value {
    let s = &c.conversion.schema;
    json!({
        "attemptsMade": 1,
        "arrivalTimestamp": arrival,
        "lastErrorCode": f.code,
        "lastErrorMessage": f.message,
        "attemptEndingTimestamp": crate::s3::store::now_ms(),
        "rawData": base64_simd::STANDARD.encode_to_string(data),
        "dataCatalogTable": {
            "catalogId": s.catalog_id.clone().unwrap_or_else(|| gate.account_id.clone()),
            "databaseName": s.database,
            "tableName": s.table,
            "region": s.region.as_deref().unwrap_or(region),
            "versionId": s.version_id.as_deref().unwrap_or("LATEST"),
            "catalogArn": format!(
                "arn:{}:glue:{}:{}:catalog",
                firehose_kit_domain::names::arn_partition(s.region.as_deref().unwrap_or(region)),
                s.region.as_deref().unwrap_or(region),
                s.catalog_id.as_deref().unwrap_or(&gate.account_id)
            ),
        }
    })
}

/// Converts the records `visit` hands over (arrival time, data) for a stream in `region`. A storage error of the
/// journal read is an `InternalError` (the buffer is kept and retried).
pub fn convert(
    ctx: &Context,
    c: &ConversionTarget,
    region: &str,
    visit: impl FnOnce(&mut dyn FnMut(i64, &[u8]) -> std::io::Result<()>) -> std::io::Result<()>,
) -> Result<Converted, Failure> {
    let gate = &ctx.gate;
    let columns = columns(ctx, c, region)?;
    let plan = conversion::Plan::new(&columns, &c.conversion.deserializer);
    let mut out = ParquetOut::new(&columns, &c.conversion.parquet);
    let mut failed = Vec::new();
    let mut write_error = None;
    visit(&mut |arrival, data| {
        match rows_of(data, &plan) {
            Ok(rows) => {
                if let Err(e) = out.push(rows) {
                    write_error = Some(e);
                    return Err(std::io::Error::other("writing Parquet failed"));
                }
            }
            Err(f) => {
                serde_json::to_writer(&mut failed, &failed_document(gate, c, region, arrival, data, &f))?;
                failed.push(b'\n');
            }
        }
        Ok(())
    })
    .map_err(|e| {
        write_error
            .take()
            .unwrap_or_else(|| Failure::new("InternalError", format!("reading the buffered records: {e}")))
    })?;
    let rows = out.rows;
    let parquet = out.finish()?;
    Ok(Converted { parquet, failed: (!failed.is_empty()).then_some(failed), rows })
}

/// A record's rows; a record whose conversion panics (a bug, never its data's fault) is a failure of that
/// record alone, named in the emulator's log.
fn rows_of(data: &[u8], plan: &conversion::Plan<'_>) -> Result<Vec<Vec<Cell>>, conversion::Failure> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| conversion::rows_of(data, plan))).unwrap_or_else(|panic| {
        let message = super::engine::panic_message(&*panic);
        tracing::warn!("a record could not be converted: the conversion {message}");
        Err(conversion::Failure {
            code: "DataFormatConversion.MalformedData",
            message: format!("The emulator could not convert the record: the conversion {message}"),
        })
    })
}

fn data_type(ty: &ColumnType) -> DataType {
    match ty {
        ColumnType::String | ColumnType::Char(_) | ColumnType::Varchar(_) => DataType::Utf8,
        ColumnType::TinyInt => DataType::Int8,
        ColumnType::SmallInt => DataType::Int16,
        ColumnType::Int => DataType::Int32,
        ColumnType::BigInt => DataType::Int64,
        ColumnType::Float => DataType::Float32,
        ColumnType::Double => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColumnType::Date => DataType::Date32,
        ColumnType::Decimal(p, s) => DataType::Decimal128(*p, *s),
        ColumnType::Binary => DataType::Binary,
        ColumnType::Array(item) => DataType::List(Arc::new(Field::new("element", data_type(item), true))),
        ColumnType::Map(key, value) => {
            let entries = Fields::from(vec![
                Field::new("key", data_type(key), false),
                Field::new("value", data_type(value), true),
            ]);
            DataType::Map(Arc::new(Field::new("key_value", DataType::Struct(entries), false)), false)
        }
        ColumnType::Struct(fields) => {
            DataType::Struct(fields.iter().map(|(n, t)| Field::new(n, data_type(t), true)).collect())
        }
    }
}

/// One column's Arrow array from the rows' cells at `i` (every cell already checked against the type): a scalar
/// column through its own typed builder in one loop, a nested one through the builders `make_builder` nests.
fn array(ty: &ColumnType, rows: &[Vec<Cell>], i: usize) -> ArrayRef {
    macro_rules! column {
        ($builder:expr, $pat:pat => $v:expr) => {{
            let mut b = $builder;
            for row in rows {
                match &row[i] {
                    $pat => b.append_value($v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    let n = rows.len();
    match ty {
        ColumnType::String | ColumnType::Char(_) | ColumnType::Varchar(_) => {
            let bytes = rows.iter().map(|r| if let Cell::Str(s) = &r[i] { s.len() } else { 0 }).sum();
            column!(StringBuilder::with_capacity(n, bytes), Cell::Str(s) => s)
        }
        ColumnType::TinyInt => column!(Int8Builder::with_capacity(n), Cell::Int(v) => *v as i8),
        ColumnType::SmallInt => column!(Int16Builder::with_capacity(n), Cell::Int(v) => *v as i16),
        ColumnType::Int => column!(Int32Builder::with_capacity(n), Cell::Int(v) => *v as i32),
        ColumnType::BigInt => column!(Int64Builder::with_capacity(n), Cell::Int(v) => *v),
        ColumnType::Float => column!(Float32Builder::with_capacity(n), Cell::Float(f) => *f as f32),
        ColumnType::Double => column!(Float64Builder::with_capacity(n), Cell::Float(f) => *f),
        ColumnType::Boolean => column!(BooleanBuilder::with_capacity(n), Cell::Bool(v) => *v),
        ColumnType::Timestamp => {
            let b = TimestampMicrosecondBuilder::with_capacity(n).with_data_type(data_type(ty));
            column!(b, Cell::Timestamp(t) => *t)
        }
        ColumnType::Date => column!(Date32Builder::with_capacity(n), Cell::Date(d) => *d),
        _ => {
            let mut builder = make_builder(&data_type(ty), n);
            for row in rows {
                append(builder.as_mut(), ty, &row[i]);
            }
            builder.finish()
        }
    }
}

fn downcast<T: 'static>(b: &mut dyn ArrayBuilder) -> &mut T {
    b.as_any_mut().downcast_mut::<T>().expect("make_builder made the builder of the column's type")
}

/// Appends one cell (null when it is not of the type: only `Cell::Null` is, after conversion) to the builder
/// `make_builder` made for `ty`; nested cells recurse into the child builders.
fn append(b: &mut dyn ArrayBuilder, ty: &ColumnType, cell: &Cell) {
    macro_rules! value {
        ($builder:ty, $pat:pat => $v:expr) => {{
            let b = downcast::<$builder>(b);
            match cell {
                $pat => b.append_value($v),
                _ => b.append_null(),
            }
        }};
    }
    match ty {
        ColumnType::String | ColumnType::Char(_) | ColumnType::Varchar(_) => value!(StringBuilder, Cell::Str(s) => s),
        ColumnType::TinyInt => value!(Int8Builder, Cell::Int(n) => *n as i8),
        ColumnType::SmallInt => value!(Int16Builder, Cell::Int(n) => *n as i16),
        ColumnType::Int => value!(Int32Builder, Cell::Int(n) => *n as i32),
        ColumnType::BigInt => value!(Int64Builder, Cell::Int(n) => *n),
        ColumnType::Float => value!(Float32Builder, Cell::Float(f) => *f as f32),
        ColumnType::Double => value!(Float64Builder, Cell::Float(f) => *f),
        ColumnType::Boolean => value!(BooleanBuilder, Cell::Bool(v) => *v),
        ColumnType::Timestamp => value!(TimestampMicrosecondBuilder, Cell::Timestamp(t) => *t),
        ColumnType::Date => value!(Date32Builder, Cell::Date(d) => *d),
        ColumnType::Decimal(..) => value!(Decimal128Builder, Cell::Decimal(d) => *d),
        ColumnType::Binary => value!(BinaryBuilder, Cell::Binary(v) => v),
        ColumnType::Array(item) => {
            let b = downcast::<ListBuilder<Box<dyn ArrayBuilder>>>(b);
            if let Cell::List(items) = cell {
                items.iter().for_each(|c| append(b.values().as_mut(), item, c));
            }
            b.append(matches!(cell, Cell::List(_)));
        }
        ColumnType::Map(key, value) => {
            let b = downcast::<MapBuilder<Box<dyn ArrayBuilder>, Box<dyn ArrayBuilder>>>(b);
            if let Cell::Map(entries) = cell {
                for (k, v) in entries {
                    append(b.keys().as_mut(), key, k);
                    append(b.values().as_mut(), value, v);
                }
            }
            b.append(matches!(cell, Cell::Map(_))).expect("keys and values were appended in pairs");
        }
        ColumnType::Struct(fields) => {
            let b = downcast::<StructBuilder>(b);
            let cells = match cell {
                Cell::Struct(cells) => cells.as_slice(),
                _ => &[],
            };
            // A null struct still has a (null) value in every field.
            for (j, (_, t)) in fields.iter().enumerate() {
                append(b.field_builders_mut()[j].as_mut(), t, cells.get(j).unwrap_or(&Cell::Null));
            }
            b.append(matches!(cell, Cell::Struct(_)));
        }
    }
}

/// The ParquetSerDe's settings as writer properties.
fn properties(p: &conversion::Parquet) -> WriterProperties {
    let compression = match p.compression.as_str() {
        "GZIP" => parquet::basic::Compression::GZIP(Default::default()),
        "UNCOMPRESSED" => parquet::basic::Compression::UNCOMPRESSED,
        _ => parquet::basic::Compression::SNAPPY,
    };
    WriterProperties::builder()
        .set_compression(compression)
        .set_data_page_size_limit(p.page_size)
        .set_dictionary_enabled(p.dictionary)
        .set_writer_version(if p.v2 { WriterVersion::PARQUET_2_0 } else { WriterVersion::PARQUET_1_0 })
        .set_max_row_group_row_count(Some(8 * ROWS_PER_BATCH))
        .set_created_by("firehose-kit emulator (format conversion)".into())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    /// Rows go to the writer a batch at a time and land in row groups of at most eight batches; the file holds
    /// every row in order.
    #[test]
    fn rows_are_written_in_batches_and_row_groups() {
        let columns = vec![("n".to_string(), ColumnType::BigInt), ("s".to_string(), ColumnType::String)];
        let settings =
            conversion::Parquet { compression: "SNAPPY".into(), page_size: 1 << 20, dictionary: true, v2: false };
        let mut out = ParquetOut::new(&columns, &settings);
        let total = 8 * ROWS_PER_BATCH * 2 + 5;
        for n in 0..total {
            out.push(vec![vec![Cell::Int(n as i64), Cell::Str(format!("row {n}"))]]).unwrap();
            assert!(out.pending.len() < ROWS_PER_BATCH, "a full batch is handed to the writer at once");
        }
        let file = out.finish().unwrap().unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(file)).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), total as i64);
        assert_eq!(reader.metadata().num_row_groups(), 3);
        assert_eq!(reader.metadata().row_group(0).num_rows(), (8 * ROWS_PER_BATCH) as i64);
        assert!(ParquetOut::new(&columns, &settings).finish().unwrap().is_none(), "no rows, no file");
    }

    /// Array, map and struct columns (a null struct too) are written as Parquet's LIST, MAP and groups and read
    /// back with their values.
    #[test]
    fn nested_columns_round_trip() {
        use arrow_array::Array;
        use arrow_array::cast::AsArray;
        let columns = vec![
            ("tags".to_string(), conversion::column_type("array<string>").unwrap()),
            ("hits".to_string(), conversion::column_type("map<string,int>").unwrap()),
            ("geo".to_string(), conversion::column_type("struct<city:string,lat:double>").unwrap()),
        ];
        let settings =
            conversion::Parquet { compression: "SNAPPY".into(), page_size: 1 << 20, dictionary: true, v2: false };
        let mut out = ParquetOut::new(&columns, &settings);
        let d = conversion::Deserializer::Hive { timestamp_formats: vec![] };
        for record in [
            &br#"{"tags":["a",null],"hits":{"x":1,"y":2},"geo":{"city":"Paris","lat":48.85}}"#[..],
            br#"{"tags":[],"geo":null}"#,
        ] {
            out.push(conversion::rows(record, &columns, &d).unwrap()).unwrap();
        }
        let file = bytes::Bytes::from(out.finish().unwrap().unwrap());
        let batch = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let tags = batch.column(0).as_list::<i32>();
        assert_eq!((tags.value(0).len(), tags.value(1).len()), (2, 0));
        assert!(tags.value(0).is_null(1));
        let hits = batch.column(1).as_map();
        assert_eq!(hits.value(0).len(), 2);
        assert!(hits.is_null(1), "an absent map is null");
        let geo = batch.column(2).as_struct();
        assert_eq!(geo.column(0).as_string::<i32>().value(0), "Paris");
        assert!(geo.is_null(1), "a null struct stays null");
    }
}
