//! setup's part for `--format parquet`: the Glue database and the table that types the Parquet (one column per
//! field of the JSON send makes of a line), and the delivery role's grant to read that table. The table's
//! location is the stream's prefix, where Athena finds the objects; a database or table setup did not make is used
//! as it is and left by teardown.

use serde::Serialize;
use serde_json::Value;

use super::{Ctx, Step, line};
use crate::aws::firehose::{ConversionSpec, DestinationSpec};
use crate::aws::{Clients, glue, policy};
use crate::cli::RecordFormat;
use crate::error::{Error, Result};
use crate::logs::table::{COLUMNS, DEFAULT_DATABASE, table_name};
use crate::settings::SetupSettings;
use crate::ui::Reporter;

/// The Glue table setup wants for a converting stream.
#[derive(Debug, Clone, Serialize)]
pub struct FormatPlan {
    pub database: String,
    pub table: String,
    /// `s3://bucket/prefix`: where the objects are.
    pub location: String,
    pub columns: Vec<(String, String)>,
    /// The delivery role's inline policy that lets Firehose read the table.
    pub schema_policy: Value,
    #[serde(skip)]
    pub steps: Vec<Step>,
}

impl FormatPlan {
    /// The destination's conversion, read as `role_arn`.
    pub fn conversion(&self, role_arn: &str) -> ConversionSpec {
        ConversionSpec {
            database: self.database.clone(),
            table: self.table.clone(),
            role_arn: role_arn.to_string(),
            format: "parquet".into(),
        }
    }
}

/// Whether the stream converts after this setup: `--format`, else what it has.
pub fn wanted(s: &SetupSettings, current: Option<&DestinationSpec>) -> bool {
    match s.format {
        Some(f) => f == RecordFormat::Parquet,
        None => current.is_some_and(|c| c.conversion.is_some()),
    }
}

/// The default prefix of a converting stream: the table's own, so that its location holds only its Parquet.
pub fn default_prefix(stream: &str) -> String {
    format!("{}/", table_name(stream))
}

/// The table's location is the data prefix: it must be one (not the whole bucket) and not hold the error output.
pub fn check_location(prefix: Option<&str>, error_prefix: Option<&str>) -> Result<()> {
    let data = prefix.unwrap_or("").split("!{").next().unwrap_or("");
    if data.is_empty() {
        return Err(Error::usage(
            "--format parquet needs a prefix: the Glue table's location is the stream's prefix, and the whole bucket holds other objects",
        )
        .with_hint("leave out --prefix (setup uses the table's name) or give one, e.g. --prefix parquet/"));
    }
    let errors = error_prefix.unwrap_or("").split("!{").next().unwrap_or("");
    if errors.starts_with(data) {
        return Err(Error::usage(format!(
            "--format parquet: the error prefix `{errors}` is inside the prefix `{data}`, the table's location: Athena would read the error documents as Parquet"
        ))
        .with_hint("leave out --error-prefix (setup uses errors/ at the bucket's root) or give one outside the prefix"));
    }
    Ok(())
}

/// Decides the database and table from the settings and what the stream has; `None` without conversion.
/// `prefix` is the destination's (the table's location).
pub async fn plan(
    ctx: &Ctx<'_>,
    s: &SetupSettings,
    current: Option<&DestinationSpec>,
    bucket: &str,
    prefix: Option<&str>,
) -> Result<Option<FormatPlan>> {
    if !wanted(s, current) {
        return Ok(None);
    }
    let have = current.and_then(|c| c.conversion.as_ref());
    let database = s
        .glue_database
        .clone()
        .or_else(|| have.map(|c| c.database.clone()))
        .unwrap_or_else(|| DEFAULT_DATABASE.to_string());
    let table = have
        .filter(|c| c.database == database)
        .map(|c| c.table.clone())
        .unwrap_or_else(|| table_name(&ctx.global.stream));
    // The static part of the prefix (before any `!{...}` expression) is where the objects are.
    let static_prefix = prefix.unwrap_or("").split("!{").next().unwrap_or("");
    let location = format!("s3://{bucket}/{static_prefix}");
    let columns: Vec<(String, String)> = COLUMNS.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    let db_step = plan_database(ctx, &database).await?;
    let table_step = plan_table(ctx, &database, &table, &location, &columns).await?;
    let schema_policy = policy::schema_policy(ctx.partition, &ctx.region, &ctx.account_id, &database, &table);
    Ok(Some(FormatPlan { database, table, location, columns, schema_policy, steps: vec![db_step, table_step] }))
}

async fn plan_database(ctx: &Ctx<'_>, name: &str) -> Result<Step> {
    let step = |action, changes| Step { resource: "database", name: name.to_string(), action, changes };
    Ok(match glue::database(&ctx.clients.glue, name).await? {
        None => step("create", vec!["holds the tables of firehose-kit's converting streams".into()]),
        Some(p) if p.get(glue::MANAGED_PARAMETER).is_some_and(|v| v == "true") => step("unchanged", vec![]),
        Some(_) => step("adopt", vec!["used as it is (not made by firehose-kit: teardown leaves it)".into()]),
    })
}

async fn plan_table(
    ctx: &Ctx<'_>,
    database: &str,
    name: &str,
    location: &str,
    columns: &[(String, String)],
) -> Result<Step> {
    let step = |action, changes| Step { resource: "table", name: format!("{database}.{name}"), action, changes };
    let Some(t) = glue::table(&ctx.clients.glue, database, name).await? else {
        let typed = "status int, bytes bigint, time timestamp, the other 8 fields string";
        return Ok(step(
            "create",
            vec![format!("{} columns ({typed})", columns.len()), format!("location {location}")],
        ));
    };
    if let Some(owner) = t.parameters.get(glue::STREAM_PARAMETER).filter(|o| *o != &ctx.global.stream) {
        return Err(Error::usage(format!(
            "Glue table `{database}.{name}` types stream `{owner}`'s Parquet: stream `{}` would share its table and its location",
            ctx.global.stream
        ))
        .with_hint("give this stream a table of its own: --glue-database NAME (setup creates it), or another stream name"));
    }
    if !t.belongs_to(&ctx.global.stream) {
        return Ok(step(
            "adopt",
            vec!["used as it is (not made by firehose-kit for this stream: teardown leaves it)".into()],
        ));
    }
    let mut changes = Vec::new();
    if t.columns != columns {
        changes.push("columns drifted: restore the 11 Apache log columns (a new table version)".to_string());
    }
    if t.location.as_deref() != Some(location) {
        changes.push(format!("location: {} → {location}", t.location.as_deref().unwrap_or("(none)")));
    }
    Ok(if changes.is_empty() { step("unchanged", changes) } else { step("update", changes) })
}

/// Creates or updates the database and table as planned.
pub async fn apply(stream: &str, plan: &FormatPlan, clients: &Clients, reporter: &dyn Reporter) -> Result<()> {
    let [db_step, table_step] = [&plan.steps[0], &plan.steps[1]];
    if db_step.action == "create" {
        glue::create_database(&clients.glue, &plan.database).await?;
    }
    reporter.note(&line(db_step, true));
    if matches!(table_step.action, "create" | "update") {
        let columns: Vec<(&str, &str)> = plan.columns.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        let update = table_step.action == "update";
        glue::put_table(&clients.glue, &plan.database, &plan.table, &columns, &plan.location, stream, update).await?;
    }
    reporter.note(&line(table_step, true));
    Ok(())
}
