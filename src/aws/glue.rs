//! The Glue Data Catalog for record format conversion: the database and table that type the Parquet a stream
//! writes (`setup --format parquet`), and their removal by teardown. Glue tables carry no tags, so ownership is
//! marked in `Parameters` (`firehose-kit:managed`, and the stream a table belongs to), as tags mark the rest.

use std::collections::HashMap;

use aws_sdk_glue::Client;
use aws_sdk_glue::types::{Column, DatabaseInput, SerDeInfo, StorageDescriptor, TableInput};
use serde::Serialize;

use super::sdk_error;
use crate::error::{Error, Result};

/// The parameter that marks a database or table as made by firehose-kit.
pub const MANAGED_PARAMETER: &str = "firehose-kit:managed";
/// The parameter naming the delivery stream a table types.
pub const STREAM_PARAMETER: &str = "firehose-kit:stream";

/// A Glue table as GetTable tells it (what setup compares and teardown checks).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Table {
    pub database: String,
    pub name: String,
    /// `(name, Hive type)`, in order.
    pub columns: Vec<(String, String)>,
    pub location: Option<String>,
    pub parameters: HashMap<String, String>,
}

impl Table {
    /// Made by firehose-kit for `stream`.
    pub fn belongs_to(&self, stream: &str) -> bool {
        self.parameters.get(MANAGED_PARAMETER).is_some_and(|v| v == "true")
            && self.parameters.get(STREAM_PARAMETER).is_some_and(|v| v == stream)
    }
}

fn build_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::failed(format!("cannot build the Glue {what}: {e}"))
}

/// The database's `Parameters`; `None` when there is no such database.
pub async fn database(client: &Client, name: &str) -> Result<Option<HashMap<String, String>>> {
    match client.get_database().name(name).send().await {
        Ok(out) => Ok(Some(out.database().and_then(|d| d.parameters().cloned()).unwrap_or_default())),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => Ok(None),
        Err(e) => Err(sdk_error(format!("get Glue database `{name}`"), e)),
    }
}

/// Creates a database marked as firehose-kit's.
pub async fn create_database(client: &Client, name: &str) -> Result<()> {
    let input = DatabaseInput::builder()
        .name(name)
        .description("Tables that type the Parquet firehose-kit delivery streams write")
        .parameters(MANAGED_PARAMETER, "true")
        .build()
        .map_err(|e| build_error("database", e))?;
    match client.create_database().database_input(input).send().await {
        Ok(_) => Ok(()),
        // Another setup made it meanwhile: the same database.
        Err(e) if e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) => Ok(()),
        Err(e) => Err(sdk_error(format!("create Glue database `{name}`"), e)),
    }
}

/// The table; `None` when it (or its database) does not exist.
pub async fn table(client: &Client, database: &str, name: &str) -> Result<Option<Table>> {
    let out = match client.get_table().database_name(database).name(name).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => return Ok(None),
        Err(e) => return Err(sdk_error(format!("get Glue table `{database}.{name}`"), e)),
    };
    let Some(t) = out.table() else { return Ok(None) };
    let sd = t.storage_descriptor();
    Ok(Some(Table {
        database: database.to_string(),
        name: t.name().to_string(),
        columns: sd
            .map(|sd| {
                sd.columns()
                    .iter()
                    .map(|c| (c.name().to_string(), c.r#type().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        location: sd.and_then(|sd| sd.location()).map(str::to_string),
        parameters: t.parameters().cloned().unwrap_or_default(),
    }))
}

/// A Parquet table over `location` with `columns`, marked as the stream's.
fn table_input(name: &str, columns: &[(&str, &str)], location: &str, stream: &str) -> Result<TableInput> {
    let columns = columns
        .iter()
        .map(|(n, t)| Column::builder().name(*n).r#type(*t).build().map_err(|e| build_error("column", e)))
        .collect::<Result<Vec<_>>>()?;
    let serde = SerDeInfo::builder()
        .serialization_library("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
        .parameters("serialization.format", "1")
        .build();
    let storage = StorageDescriptor::builder()
        .set_columns(Some(columns))
        .location(location)
        .input_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
        .output_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
        .serde_info(serde)
        .build();
    TableInput::builder()
        .name(name)
        .description(format!("Apache access logs delivered by Firehose stream {stream} as Parquet"))
        .table_type("EXTERNAL_TABLE")
        .storage_descriptor(storage)
        .parameters("classification", "parquet")
        .parameters(MANAGED_PARAMETER, "true")
        .parameters(STREAM_PARAMETER, stream)
        .build()
        .map_err(|e| build_error("table", e))
}

/// Creates the table, or (`update`) writes a new version of it.
pub async fn put_table(
    client: &Client,
    database: &str,
    name: &str,
    columns: &[(&str, &str)],
    location: &str,
    stream: &str,
    update: bool,
) -> Result<()> {
    let input = table_input(name, columns, location, stream)?;
    if update {
        client
            .update_table()
            .database_name(database)
            .table_input(input)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(format!("update Glue table `{database}.{name}`"), e))
    } else {
        client
            .create_table()
            .database_name(database)
            .table_input(input)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(format!("create Glue table `{database}.{name}`"), e))
    }
}

/// Deletes the table; false when it was not there.
pub async fn delete_table(client: &Client, database: &str, name: &str) -> Result<bool> {
    match client.delete_table().database_name(database).name(name).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => Ok(false),
        Err(e) => Err(sdk_error(format!("delete Glue table `{database}.{name}`"), e)),
    }
}

/// Whether the database holds any table (one is asked for: enough to know).
pub async fn has_tables(client: &Client, database: &str) -> Result<bool> {
    let out = client
        .get_tables()
        .database_name(database)
        .max_results(1)
        .send()
        .await
        .map_err(|e| sdk_error(format!("list the tables of Glue database `{database}`"), e))?;
    Ok(!out.table_list().is_empty())
}

/// Deletes the database; false when it was not there.
pub async fn delete_database(client: &Client, name: &str) -> Result<bool> {
    match client.delete_database().name(name).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => Ok(false),
        Err(e) => Err(sdk_error(format!("delete Glue database `{name}`"), e)),
    }
}
