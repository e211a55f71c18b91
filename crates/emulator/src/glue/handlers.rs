//! One function per Glue action, with Glue's errors and messages.

use serde_json::{Value, json};

use super::Glue;
use super::model::{Database, State, Table, Version, key};
use crate::json::{ApiError, null_violation};
use crate::s3::store::now_ms;

fn ok(v: Value) -> Result<Vec<u8>, ApiError> {
    crate::json::ok(&v)
}

fn now() -> f64 {
    now_ms() as f64 / 1000.0
}

fn not_found(what: &str) -> ApiError {
    ApiError::new("EntityNotFoundException", format!("{what} not found."))
}

/// A required string member (`path` names it in the error), 1–255 characters on one line.
fn name(input: &Value, member: &str, path: &str) -> Result<String, ApiError> {
    let v = input.get(member).and_then(Value::as_str).ok_or_else(|| ApiError::validation(null_violation(path)))?;
    if v.is_empty() || v.chars().count() > 255 || v.contains(['\n', '\r']) {
        return Err(ApiError::validation(format!(
            "Value '{v}' at '{path}' failed to satisfy constraint: Member must have length between 1 and 255 and be a single line"
        )));
    }
    Ok(v.to_string())
}

/// A required structure member (`DatabaseInput`, `TableInput`): a JSON object.
fn structure(input: &Value, member: &str, path: &str) -> Result<Value, ApiError> {
    match input.get(member) {
        Some(v) if v.is_object() => Ok(v.clone()),
        Some(v) => Err(ApiError::new("SerializationException", format!("{path} must be a structure, not {v}"))),
        None => Err(ApiError::validation(null_violation(path))),
    }
}

fn database<'s>(state: &'s mut State, region: &str, name: &str) -> Result<&'s mut Database, ApiError> {
    state.databases.get_mut(&key(region, name)).ok_or_else(|| not_found(&format!("Database {}", name.to_lowercase())))
}

fn tags_of(input: &Value) -> std::collections::BTreeMap<String, String> {
    input["Tags"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

pub fn create_database(g: &Glue, state: &mut State, input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let mut db_input = structure(&input, "DatabaseInput", "databaseInput")?;
    let db_name = name(&db_input, "Name", "databaseInput.name")?.to_lowercase();
    if state.databases.contains_key(&key(region, &db_name)) {
        return Err(ApiError::new("AlreadyExistsException", "Database already exists."));
    }
    db_input["Name"] = json!(db_name);
    let db = Database {
        name: db_name.clone(),
        region: region.to_string(),
        input: db_input,
        create_time: now(),
        tags: tags_of(&input),
        tables: Default::default(),
    };
    state.databases.insert(key(region, &db_name), db);
    g.save(state)?;
    ok(json!({}))
}

pub fn get_database(g: &Glue, state: &mut State, input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let db_name = name(&input, "Name", "name")?;
    let db = database(state, region, &db_name)?;
    ok(json!({"Database": db.document(&g.account_id)}))
}

pub fn get_databases(g: &Glue, state: &mut State, _input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let list: Vec<Value> =
        state.databases.values().filter(|d| d.region == region).map(|d| d.document(&g.account_id)).collect();
    ok(json!({"DatabaseList": list}))
}

pub fn update_database(g: &Glue, state: &mut State, input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let db_name = name(&input, "Name", "name")?;
    let mut db_input = structure(&input, "DatabaseInput", "databaseInput")?;
    let db = database(state, region, &db_name)?;
    db_input["Name"] = json!(db.name);
    db.input = db_input;
    g.save(state)?;
    ok(json!({}))
}

pub fn delete_database(g: &Glue, state: &mut State, input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let db_name = name(&input, "Name", "name")?;
    database(state, region, &db_name)?;
    state.databases.remove(&key(region, &db_name));
    g.save(state)?;
    ok(json!({}))
}

/// The `TableInput` of a create or update, its name lower-cased.
fn table_input(input: &Value) -> Result<(String, Value), ApiError> {
    let mut t = structure(input, "TableInput", "tableInput")?;
    let table_name = name(&t, "Name", "tableInput.name")?.to_lowercase();
    t["Name"] = json!(table_name);
    Ok((table_name, t))
}

pub fn create_table(g: &Glue, state: &mut State, input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let db_name = name(&input, "DatabaseName", "databaseName")?;
    let (table_name, t) = table_input(&input)?;
    let db = database(state, region, &db_name)?;
    if db.tables.contains_key(&table_name) {
        return Err(ApiError::new("AlreadyExistsException", "Table already exists."));
    }
    db.tables.insert(table_name, Table::new(t, now()));
    g.save(state)?;
    ok(json!({}))
}

fn table<'s>(
    state: &'s mut State,
    region: &str,
    db_name: &str,
    table_name: &str,
) -> Result<(&'s str, &'s mut Table), ApiError> {
    let db = database(state, region, db_name)?;
    let t = db
        .tables
        .get_mut(&table_name.to_lowercase())
        .ok_or_else(|| not_found(&format!("Table {}", table_name.to_lowercase())))?;
    Ok((&db.name, t))
}

pub fn get_table(g: &Glue, state: &mut State, input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let db_name = name(&input, "DatabaseName", "databaseName")?;
    let table_name = name(&input, "Name", "name")?;
    let (db, t) = table(state, region, &db_name, &table_name)?;
    ok(json!({"Table": t.current(db, &g.account_id)}))
}

pub fn get_tables(g: &Glue, state: &mut State, input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let db_name = name(&input, "DatabaseName", "databaseName")?;
    let pattern = input["Expression"].as_str().map(str::to_lowercase);
    let db = database(state, region, &db_name)?;
    let list: Vec<Value> = db
        .tables
        .iter()
        .filter(|(n, _)| pattern.as_deref().is_none_or(|p| p == "*" || n.contains(p.trim_matches('*'))))
        .map(|(_, t)| t.current(&db.name, &g.account_id))
        .collect();
    ok(json!({"TableList": list}))
}

pub fn update_table(g: &Glue, state: &mut State, input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let db_name = name(&input, "DatabaseName", "databaseName")?;
    let (table_name, new) = table_input(&input)?;
    let (_, t) = table(state, region, &db_name, &table_name)?;
    let current = t.versions.last().expect("a table has a version").id;
    if let Some(asked) = input["VersionId"].as_str()
        && asked != current.to_string()
    {
        return Err(ApiError::new(
            "ConcurrentModificationException",
            format!("Table {table_name} was modified: its version is {current}, not {asked}"),
        ));
    }
    let version = Version { input: new, update_time: now(), id: current + 1 };
    if input["SkipArchive"].as_bool() == Some(true) {
        *t.versions.last_mut().expect("a table has a version") = version;
    } else {
        t.versions.push(version);
    }
    g.save(state)?;
    ok(json!({}))
}

pub fn delete_table(g: &Glue, state: &mut State, input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let db_name = name(&input, "DatabaseName", "databaseName")?;
    let table_name = name(&input, "Name", "name")?;
    table(state, region, &db_name, &table_name)?;
    database(state, region, &db_name)?.tables.remove(&table_name.to_lowercase());
    g.save(state)?;
    ok(json!({}))
}

pub fn get_table_version(g: &Glue, state: &mut State, input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let db_name = name(&input, "DatabaseName", "databaseName")?;
    let table_name = name(&input, "TableName", "tableName")?;
    let (db, t) = table(state, region, &db_name, &table_name)?;
    let v = match input["VersionId"].as_str() {
        None => t.versions.last(),
        Some(id) => t.versions.iter().find(|v| v.id.to_string() == id),
    }
    .ok_or_else(|| not_found(&format!("Version {} of table {}", input["VersionId"], table_name.to_lowercase())))?;
    ok(json!({"TableVersion": {"Table": t.document(v, db, &g.account_id), "VersionId": v.id.to_string()}}))
}

pub fn get_table_versions(g: &Glue, state: &mut State, input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let db_name = name(&input, "DatabaseName", "databaseName")?;
    let table_name = name(&input, "TableName", "tableName")?;
    let (db, t) = table(state, region, &db_name, &table_name)?;
    let versions: Vec<Value> = t
        .versions
        .iter()
        .rev()
        .map(|v| json!({"Table": t.document(v, db, &g.account_id), "VersionId": v.id.to_string()}))
        .collect();
    ok(json!({"TableVersions": versions}))
}

pub fn get_partition_indexes(_: &Glue, state: &mut State, input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let db_name = name(&input, "DatabaseName", "databaseName")?;
    let table_name = name(&input, "TableName", "tableName")?;
    table(state, region, &db_name, &table_name)?;
    ok(json!({"PartitionIndexDescriptorList": []}))
}

/// The tags of the database or table a Glue ARN names (`…:database/NAME`, `…:table/DB/NAME`).
fn tags_at<'s>(
    state: &'s mut State,
    region: &str,
    arn: &str,
) -> Result<&'s mut std::collections::BTreeMap<String, String>, ApiError> {
    let resource = arn
        .splitn(6, ':')
        .nth(5)
        .ok_or_else(|| ApiError::new("InvalidInputException", format!("Invalid ARN {arn}")))?;
    match resource.split('/').collect::<Vec<_>>().as_slice() {
        ["database", db] => Ok(&mut database(state, region, db)?.tags),
        ["table", db, t] => Ok(&mut table(state, region, db, t)?.1.tags),
        _ => Err(ApiError::new(
            "InvalidInputException",
            format!("Tags are modelled on databases and tables only: {arn}"),
        )),
    }
}

pub fn get_tags(_: &Glue, state: &mut State, input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let arn = name(&input, "ResourceArn", "resourceArn")?;
    let tags = tags_at(state, region, &arn)?;
    ok(json!({"Tags": tags}))
}

pub fn tag_resource(g: &Glue, state: &mut State, input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let arn = name(&input, "ResourceArn", "resourceArn")?;
    let add = input["TagsToAdd"].as_object().cloned().unwrap_or_default();
    let tags = tags_at(state, region, &arn)?;
    for (k, v) in add {
        tags.insert(k, v.as_str().unwrap_or_default().to_string());
    }
    g.save(state)?;
    ok(json!({}))
}

pub fn untag_resource(g: &Glue, state: &mut State, input: Value, region: &str) -> Result<Vec<u8>, ApiError> {
    let arn = name(&input, "ResourceArn", "resourceArn")?;
    let remove: Vec<String> = input["TagsToRemove"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let tags = tags_at(state, region, &arn)?;
    tags.retain(|k, _| !remove.contains(k));
    g.save(state)?;
    ok(json!({}))
}
