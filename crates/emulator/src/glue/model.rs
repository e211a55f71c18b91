//! The Glue Data Catalog's state: databases (by region and lower-cased name), their tables, and each table's
//! versions, as persisted; and the documents Glue answers with (`Database`, `Table`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Every database, keyed by [`key`].
#[derive(Default, Serialize, Deserialize)]
pub struct State {
    pub databases: BTreeMap<String, Database>,
}

/// `region/name` of a database, its name folded to lower case as Glue folds it.
pub fn key(region: &str, name: &str) -> String {
    format!("{region}/{}", name.to_lowercase())
}

#[derive(Serialize, Deserialize)]
pub struct Database {
    /// Lower-cased.
    pub name: String,
    pub region: String,
    /// The `DatabaseInput` as given (its `Name` lower-cased).
    pub input: Value,
    pub create_time: f64,
    pub tags: BTreeMap<String, String>,
    /// By lower-cased name.
    pub tables: BTreeMap<String, Table>,
}

impl Database {
    /// The `Database` document GetDatabase answers.
    pub fn document(&self, account_id: &str) -> Value {
        let mut d = self.input.clone();
        d["Name"] = json!(self.name);
        d["CreateTime"] = json!(self.create_time);
        d["CatalogId"] = json!(account_id);
        if d.get("CreateTableDefaultPermissions").is_none() {
            // What a new database gets where Lake Formation is left to IAM (the default of an account).
            d["CreateTableDefaultPermissions"] = json!([{
                "Principal": {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"},
                "Permissions": ["ALL"]
            }]);
        }
        d
    }
}

#[derive(Serialize, Deserialize)]
pub struct Table {
    pub create_time: f64,
    /// Oldest first; the last is the table's current definition.
    pub versions: Vec<Version>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
pub struct Version {
    /// The `TableInput` as given (its `Name` lower-cased).
    pub input: Value,
    pub update_time: f64,
    pub id: u64,
}

impl Table {
    pub fn new(input: Value, now: f64) -> Self {
        Table { create_time: now, versions: vec![Version { input, update_time: now, id: 1 }], tags: BTreeMap::new() }
    }

    /// The `Table` document of one version.
    pub fn document(&self, v: &Version, database: &str, account_id: &str) -> Value {
        let mut t = v.input.clone();
        t["DatabaseName"] = json!(database);
        t["CreateTime"] = json!(self.create_time);
        t["UpdateTime"] = json!(v.update_time);
        t["CatalogId"] = json!(account_id);
        t["VersionId"] = json!(v.id.to_string());
        t["IsRegisteredWithLakeFormation"] = json!(false);
        t["CreatedBy"] = json!(format!("arn:aws:iam::{account_id}:root"));
        if t.get("Retention").is_none() {
            t["Retention"] = json!(0);
        }
        t
    }

    /// The current definition, as GetTable answers it.
    pub fn current(&self, database: &str, account_id: &str) -> Value {
        self.document(self.versions.last().expect("a table has a version"), database, account_id)
    }
}
