//! The AWS Glue Data Catalog in the emulator (JSON 1.1, `X-Amz-Target: AWSGlue.<Op>`): databases and tables
//! with their versions, which record format conversion reads a stream's schema from, and which setup and
//! infrastructure-as-code tools (Terraform's `aws_glue_catalog_database` and `aws_glue_catalog_table`) create.
//!
//! As Glue does, database and table names are folded to lower case (a lookup by any case finds them); every
//! UpdateTable keeps the table's previous definition as a version (`VersionId` 1, 2, …); deleting a database
//! deletes its tables. Tables are stored as the `TableInput` they were given (so what a client wrote reads back
//! unchanged), with the members Glue adds (`DatabaseName`, `CreateTime`, `UpdateTime`, `VersionId`, …).
//! The catalog persists in `<data-dir>/glue/catalog.json`, rewritten by the calls that change it.
//!
//! Not modelled: partitions, partition indexes (GetPartitionIndexes answers none), crawlers, jobs, connections,
//! user-defined functions, resource links, Lake Formation permissions, column statistics.

mod handlers;
pub mod model;

use std::path::PathBuf;
use std::sync::Mutex;

use bytes::Bytes;
use http::Response;

use self::model::State;
use crate::json::{self, ApiError};
use firehose_kit_domain::util::persist::{self, Durability};

/// One action: reads its input, changes or reads the catalog (persisting what it changes), answers.
type Handler = json::Handler<Glue, State, serde_json::Value>;

/// Every action the emulator serves, by name.
const ACTIONS: &[(&str, Handler)] = &[
    ("CreateDatabase", handlers::create_database),
    ("GetDatabase", handlers::get_database),
    ("GetDatabases", handlers::get_databases),
    ("UpdateDatabase", handlers::update_database),
    ("DeleteDatabase", handlers::delete_database),
    ("CreateTable", handlers::create_table),
    ("GetTable", handlers::get_table),
    ("GetTables", handlers::get_tables),
    ("UpdateTable", handlers::update_table),
    ("DeleteTable", handlers::delete_table),
    ("GetTableVersion", handlers::get_table_version),
    ("GetTableVersions", handlers::get_table_versions),
    ("GetPartitionIndexes", handlers::get_partition_indexes),
    ("GetTags", handlers::get_tags),
    ("TagResource", handlers::tag_resource),
    ("UntagResource", handlers::untag_resource),
];

/// The emulator's Glue Data Catalog.
pub struct Glue {
    path: PathBuf,
    durability: Durability,
    account_id: String,
    state: Mutex<State>,
}

impl Glue {
    pub fn open(dir: PathBuf, account_id: String, durability: Durability) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("catalog.json");
        let state = persist::read_json(&path)?.unwrap_or_default();
        Ok(Glue { path, durability, account_id, state: Mutex::new(state) })
    }

    /// Serves one Glue call.
    pub fn handle(&self, operation: &str, body: &[u8], region: &str) -> Response<Bytes> {
        json::dispatch(self, &self.state, ACTIONS, (operation, body, region), |_, _| {})
    }

    fn save(&self, state: &State) -> Result<(), ApiError> {
        persist::write_json_as(&self.path, state, self.durability).map_err(ApiError::internal)
    }

    /// The newest definition of a table (as GetTable answers it), for record format conversion.
    pub fn table(&self, region: &str, database: &str, table: &str) -> Option<serde_json::Value> {
        self.table_version(region, database, table, None)
    }

    /// A table as of version `version` (`None`: the newest), as GetTableVersion answers it.
    pub fn table_version(
        &self,
        region: &str,
        database: &str,
        table: &str,
        version: Option<&str>,
    ) -> Option<serde_json::Value> {
        let state = crate::lock(&self.state);
        let db = state.databases.get(&model::key(region, database))?;
        let t = db.tables.get(&table.to_lowercase())?;
        match version {
            None => Some(t.current(&db.name, &self.account_id)),
            Some(id) => {
                t.versions.iter().find(|v| v.id.to_string() == id).map(|v| t.document(v, &db.name, &self.account_id))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn call(g: &Glue, op: &str, body: Value) -> (u16, Value) {
        let r = g.handle(op, body.to_string().as_bytes(), "us-east-2");
        (r.status().as_u16(), serde_json::from_slice(r.body()).unwrap())
    }

    #[test]
    fn databases_tables_versions_and_name_folding() {
        let dir = tempfile::tempdir().unwrap();
        let g = Glue::open(dir.path().into(), "000000000000".into(), Durability::Process).unwrap();
        assert_eq!(call(&g, "CreateDatabase", json!({"DatabaseInput": {"Name": "Logs"}})).0, 200);
        let (status, e) = call(&g, "CreateDatabase", json!({"DatabaseInput": {"Name": "logs"}}));
        assert_eq!((status, e["__type"].as_str()), (400, Some("AlreadyExistsException")));
        let (_, db) = call(&g, "GetDatabase", json!({"Name": "LOGS"}));
        assert_eq!(db["Database"]["Name"], "logs");
        let columns = json!([{"Name": "status", "Type": "int"}, {"Name": "time", "Type": "timestamp"}]);
        let table = json!({"Name": "Apache", "StorageDescriptor": {"Columns": columns}});
        assert_eq!(call(&g, "CreateTable", json!({"DatabaseName": "logs", "TableInput": table})).0, 200);
        let (_, t) = call(&g, "GetTable", json!({"DatabaseName": "Logs", "Name": "APACHE"}));
        assert_eq!((t["Table"]["Name"].as_str(), t["Table"]["VersionId"].as_str()), (Some("apache"), Some("1")));
        assert_eq!(t["Table"]["StorageDescriptor"]["Columns"], columns);
        let wider = json!({"Name": "apache", "StorageDescriptor": {"Columns": [{"Name": "bytes", "Type": "bigint"}]}});
        let (status, e) =
            call(&g, "UpdateTable", json!({"DatabaseName": "logs", "TableInput": wider, "VersionId": "7"}));
        assert_eq!((status, e["__type"].as_str()), (400, Some("ConcurrentModificationException")));
        assert_eq!(call(&g, "UpdateTable", json!({"DatabaseName": "logs", "TableInput": wider})).0, 200);
        let (_, versions) = call(&g, "GetTableVersions", json!({"DatabaseName": "logs", "TableName": "apache"}));
        let ids: Vec<&str> =
            versions["TableVersions"].as_array().unwrap().iter().map(|v| v["VersionId"].as_str().unwrap()).collect();
        assert_eq!(ids, ["2", "1"]);
        let (_, first) =
            call(&g, "GetTableVersion", json!({"DatabaseName": "logs", "TableName": "apache", "VersionId": "1"}));
        assert_eq!(first["TableVersion"]["Table"]["StorageDescriptor"]["Columns"], columns);
        assert_eq!(g.table("us-east-2", "LOGS", "Apache").unwrap()["VersionId"], "2");
        // Reopened from disk; deleting the database deletes its tables.
        drop(g);
        let g = Glue::open(dir.path().into(), "000000000000".into(), Durability::Process).unwrap();
        assert_eq!(call(&g, "DeleteDatabase", json!({"Name": "logs"})).0, 200);
        let (status, e) = call(&g, "GetTable", json!({"DatabaseName": "logs", "Name": "apache"}));
        assert_eq!((status, e["message"].as_str()), (400, Some("Database logs not found.")));
        let (_, e) = call(&g, "CreateTable", json!({"DatabaseName": "logs"}));
        assert_eq!(e["__type"], "ValidationException");
        // A member of the wrong shape is refused, and the catalog keeps serving.
        assert_eq!(call(&g, "CreateDatabase", json!({"DatabaseInput": {"Name": "logs"}})).0, 200);
        let (status, e) = call(&g, "UpdateDatabase", json!({"Name": "logs", "DatabaseInput": "x"}));
        assert_eq!((status, e["__type"].as_str()), (400, Some("SerializationException")));
        assert_eq!(call(&g, "GetDatabase", json!({"Name": "logs"})).0, 200);
    }
}
