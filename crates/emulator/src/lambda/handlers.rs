//! One function per Lambda REST action; [`super::route`] maps method and path to them. Each reads its input,
//! changes or reads the state (persisting what it changes), and answers with Lambda's status and JSON.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Lambda;
use super::model::{Function, FunctionRef, LambdaError, MAX_TIMEOUT_S, RuntimeKind, last_modified, validate_name};
use crate::s3::StoreError;
use crate::s3::store::now_ms;

pub(super) type Answer = Result<Response<Bytes>, LambdaError>;

/// A JSON answer with `status`.
pub(super) fn json_answer(status: u16, body: &Value) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(body.to_string()))
        .expect("static response parts are valid")
}

pub(super) fn no_content() -> Response<Bytes> {
    Response::builder().status(204).body(Bytes::new()).expect("static response parts are valid")
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Code {
    zip_file: Option<String>,
    s3_bucket: Option<String>,
    s3_key: Option<String>,
    image_uri: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Environment {
    #[serde(rename = "Variables")]
    variables: BTreeMap<String, String>,
}

/// CreateFunction's and UpdateFunctionConfiguration's members (the modelled ones; the others are refused by name).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Config {
    function_name: Option<String>,
    runtime: Option<String>,
    role: Option<String>,
    handler: Option<String>,
    description: Option<String>,
    timeout: Option<u64>,
    memory_size: Option<u64>,
    environment: Option<Environment>,
    tags: BTreeMap<String, String>,
    architectures: Option<Vec<String>>,
    code: Option<Code>,
    package_type: Option<String>,
    publish: bool,
    ephemeral_storage: Option<Value>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

/// Members that change how a function runs in ways the emulator does not model.
const UNMODELLED: &[&str] =
    &["VpcConfig", "Layers", "FileSystemConfigs", "ImageConfig", "SnapStart", "KMSKeyArn", "DeadLetterConfig"];

fn parse<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, LambdaError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| LambdaError::invalid(format!("could not parse the request: {e}")))
}

fn check_unmodelled(other: &BTreeMap<String, Value>) -> Result<(), LambdaError> {
    for name in UNMODELLED {
        if other.get(*name).is_some_and(|v| !v.is_null() && v != &json!({}) && v != &json!([])) {
            return Err(LambdaError::unmodelled(name));
        }
    }
    Ok(())
}

fn check_settings(c: &Config) -> Result<(), LambdaError> {
    if let Some(t) = c.timeout
        && !(1..=MAX_TIMEOUT_S).contains(&t)
    {
        return Err(LambdaError::invalid(format!(
            "1 validation error detected: Value '{t}' at 'timeout' failed to satisfy constraint: Member must have value between 1 and 900"
        )));
    }
    if let Some(m) = c.memory_size
        && !(128..=10240).contains(&m)
    {
        return Err(LambdaError::invalid(format!(
            "1 validation error detected: Value '{m}' at 'memorySize' failed to satisfy constraint: Member must have value between 128 and 10240"
        )));
    }
    if let Some(r) = &c.runtime
        && RuntimeKind::of(r).is_none()
    {
        return Err(LambdaError::invalid(format!(
            "Runtime {r} is not modelled by the firehose-kit emulator: it runs python3.*, nodejs* and provided.al2023 / provided.al2 functions as local processes"
        )));
    }
    check_unmodelled(&c.other)
}

/// The zip a `Code` member carries, from the request or from the emulator's S3.
fn zip_of(lambda: &Lambda, code: &Code) -> Result<Vec<u8>, LambdaError> {
    if code.image_uri.is_some() {
        return Err(LambdaError::unmodelled("A container image (PackageType Image)"));
    }
    if let Some(b64) = &code.zip_file {
        return base64_simd::STANDARD.decode_to_vec(b64.as_bytes()).map_err(|_| {
            LambdaError::invalid("Could not unzip uploaded file. Please check your file, then try to upload again.")
        });
    }
    match (&code.s3_bucket, &code.s3_key) {
        (Some(bucket), Some(key)) => {
            let (_, path) = lambda.s3.get(bucket, key).map_err(|e| {
                let code = match e {
                    StoreError::NoSuchBucket => "NoSuchBucket",
                    StoreError::NoSuchKey => "NoSuchKey",
                    _ => "InternalError",
                };
                LambdaError::invalid(format!(
                    "Error occurred while GetObject. S3 Error Code: {code}. S3 Error Message: {e}"
                ))
            })?;
            std::fs::read(path).map_err(LambdaError::internal)
        }
        _ => Err(LambdaError::invalid("Please provide a source for function code (ZipFile, or S3Bucket and S3Key).")),
    }
}

pub(super) fn create_function(lambda: &Lambda, region: &str, body: &[u8]) -> Answer {
    let c: Config = parse(body)?;
    let name = c.function_name.clone().ok_or_else(|| LambdaError::invalid("FunctionName is required"))?;
    validate_name(&name)?;
    if c.package_type.as_deref().is_some_and(|p| p != "Zip") {
        return Err(LambdaError::unmodelled("PackageType Image"));
    }
    check_settings(&c)?;
    if c.publish {
        return Err(LambdaError::unmodelled("Publishing versions (Publish: true)"));
    }
    let runtime = c.runtime.clone().ok_or_else(|| LambdaError::invalid("Runtime is required for a .zip deployment"))?;
    let handler = c.handler.clone().ok_or_else(|| LambdaError::invalid("Handler is required for a .zip deployment"))?;
    let role = c.role.clone().ok_or_else(|| LambdaError::invalid("Role is required"))?;
    lambda.check_execution_role(&role, region)?;
    let key = Lambda::key(region, &name);
    if crate::lock(&lambda.state).contains_key(&key) {
        return Err(LambdaError::conflict(format!("Function already exist: {name}")));
    }
    let zip = zip_of(lambda, c.code.as_ref().ok_or_else(|| LambdaError::invalid("Code is required"))?)?;
    let code = lambda.store.put_code(region, &name, &zip)?;
    let now = now_ms();
    let f = Function {
        name: name.clone(),
        region: region.to_string(),
        runtime,
        role,
        handler,
        description: c.description.unwrap_or_default(),
        timeout_s: c.timeout.unwrap_or(3),
        memory_mb: c.memory_size.unwrap_or(128),
        environment: c.environment.map(|e| e.variables).unwrap_or_default(),
        tags: c.tags,
        architectures: c.architectures.unwrap_or_else(|| vec!["x86_64".into()]),
        ephemeral_storage_mb: c.ephemeral_storage.and_then(|e| e["Size"].as_u64()).unwrap_or(512),
        code_sha256: code.sha256_b64,
        code_id: code.id,
        code_size: code.size,
        last_modified: last_modified(now),
        revision_id: uuid::Uuid::new_v4().to_string(),
    };
    let mut doc = f.configuration(&lambda.account_id, lambda.partition(region));
    // Lambda answers a create before the function is ready; the next read finds it Active.
    doc["State"] = json!("Pending");
    doc["StateReason"] = json!("The function is being created.");
    doc["StateReasonCode"] = json!("Creating");
    doc.as_object_mut().expect("an object").remove("LastUpdateStatus");
    let mut state = crate::lock(&lambda.state);
    state.insert(key, f);
    lambda.store.save(&state)?;
    Ok(json_answer(201, &doc))
}

/// The function a path names, with a qualifier that must be `$LATEST` when given.
pub(super) fn lookup(
    lambda: &Lambda,
    region: &str,
    name: &str,
    qualifier: Option<&str>,
) -> Result<Function, LambdaError> {
    let r = FunctionRef::parse(name)?;
    let region = r.region.as_deref().unwrap_or(region);
    let state = crate::lock(&lambda.state);
    let unqualified =
        format!("arn:{}:lambda:{region}:{}:function:{}", lambda.partition(region), lambda.account_id, r.name);
    let f = state.get(&Lambda::key(region, &r.name)).ok_or_else(|| LambdaError::not_found(&unqualified))?;
    match r.qualifier.as_deref().or(qualifier) {
        None | Some("$LATEST") => Ok(f.clone()),
        Some(q) => Err(LambdaError::not_found(&format!("{unqualified}:{q}"))),
    }
}

pub(super) fn get_function(lambda: &Lambda, region: &str, f: &Function) -> Answer {
    let mut doc = json!({
        "Configuration": f.configuration(&lambda.account_id, lambda.partition(region)),
        "Code": {"RepositoryType": "S3", "Location": super::code_location(lambda, f)},
    });
    if !f.tags.is_empty() {
        doc["Tags"] = json!(f.tags);
    }
    Ok(json_answer(200, &doc))
}

pub(super) fn get_configuration(lambda: &Lambda, region: &str, f: &Function) -> Answer {
    Ok(json_answer(200, &f.configuration(&lambda.account_id, lambda.partition(region))))
}

pub(super) fn list_functions(lambda: &Lambda, region: &str) -> Answer {
    let state = crate::lock(&lambda.state);
    let functions: Vec<Value> = state
        .values()
        .filter(|f| f.region == region)
        .map(|f| f.configuration(&lambda.account_id, lambda.partition(region)))
        .collect();
    Ok(json_answer(200, &json!({"Functions": functions})))
}

pub(super) fn list_versions(lambda: &Lambda, region: &str, f: &Function) -> Answer {
    let mut latest = f.configuration(&lambda.account_id, lambda.partition(region));
    latest["FunctionArn"] = json!(format!("{}:$LATEST", f.arn(&lambda.account_id, lambda.partition(region))));
    Ok(json_answer(200, &json!({"Versions": [latest]})))
}

/// Applies a change to a stored function, saves, and retires its warm sandboxes (they run the old version).
fn change(lambda: &Lambda, f: &Function, apply: impl FnOnce(&mut Function)) -> Result<Function, LambdaError> {
    let mut state = crate::lock(&lambda.state);
    let stored = state.get_mut(&Lambda::key(&f.region, &f.name)).ok_or_else(|| LambdaError::not_found(&f.name))?;
    apply(stored);
    stored.last_modified = last_modified(now_ms());
    stored.revision_id = uuid::Uuid::new_v4().to_string();
    let updated = stored.clone();
    lambda.store.save(&state)?;
    drop(state);
    lambda.retire(&updated);
    Ok(updated)
}

/// An update's answer: the new configuration, still `InProgress` as Lambda answers.
fn updated(lambda: &Lambda, f: &Function) -> Response<Bytes> {
    let mut doc = f.configuration(&lambda.account_id, lambda.partition(&f.region));
    doc["LastUpdateStatus"] = json!("InProgress");
    doc["LastUpdateStatusReason"] = json!("The function is being created.");
    doc["LastUpdateStatusReasonCode"] = json!("Creating");
    json_answer(200, &doc)
}

pub(super) fn update_configuration(lambda: &Lambda, f: &Function, body: &[u8]) -> Answer {
    let c: Config = parse(body)?;
    check_settings(&c)?;
    if let Some(role) = &c.role {
        lambda.check_execution_role(role, &f.region)?;
    }
    let f = change(lambda, f, |s| {
        if let Some(v) = c.runtime {
            s.runtime = v;
        }
        if let Some(v) = c.role {
            s.role = v;
        }
        if let Some(v) = c.handler {
            s.handler = v;
        }
        if let Some(v) = c.description {
            s.description = v;
        }
        if let Some(v) = c.timeout {
            s.timeout_s = v;
        }
        if let Some(v) = c.memory_size {
            s.memory_mb = v;
        }
        if let Some(v) = c.environment {
            s.environment = v.variables;
        }
        if let Some(v) = c.ephemeral_storage.and_then(|e| e["Size"].as_u64()) {
            s.ephemeral_storage_mb = v;
        }
    })?;
    Ok(updated(lambda, &f))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CodeUpdate {
    #[serde(flatten)]
    code: Code,
    architectures: Option<Vec<String>>,
    publish: bool,
    dry_run: bool,
}

pub(super) fn update_code(lambda: &Lambda, f: &Function, body: &[u8]) -> Answer {
    let u: CodeUpdate = parse(body)?;
    if u.publish {
        return Err(LambdaError::unmodelled("Publishing versions (Publish: true)"));
    }
    let zip = zip_of(lambda, &u.code)?;
    if u.dry_run {
        return Ok(updated(lambda, f));
    }
    let code = lambda.store.put_code(&f.region, &f.name, &zip)?;
    let f = change(lambda, f, |s| {
        s.code_sha256 = code.sha256_b64;
        s.code_id = code.id;
        s.code_size = code.size;
        if let Some(a) = u.architectures {
            s.architectures = a;
        }
    })?;
    Ok(updated(lambda, &f))
}

pub(super) fn delete_function(lambda: &Lambda, f: &Function) -> Answer {
    let mut state = crate::lock(&lambda.state);
    state.remove(&Lambda::key(&f.region, &f.name));
    lambda.store.save(&state)?;
    drop(state);
    lambda.retire(f);
    lambda.store.remove_code(&f.region, &f.name);
    Ok(no_content())
}

/// The function an ARN in a tags path names.
fn by_arn(lambda: &Lambda, region: &str, arn: &str) -> Result<Function, LambdaError> {
    lookup(lambda, region, arn, None)
}

pub(super) fn list_tags(lambda: &Lambda, region: &str, arn: &str) -> Answer {
    let f = by_arn(lambda, region, arn)?;
    Ok(json_answer(200, &json!({"Tags": f.tags})))
}

pub(super) fn tag_resource(lambda: &Lambda, region: &str, arn: &str, body: &[u8]) -> Answer {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "PascalCase", default)]
    struct Tags {
        tags: BTreeMap<String, String>,
    }
    let t: Tags = parse(body)?;
    let f = by_arn(lambda, region, arn)?;
    change(lambda, &f, |s| s.tags.extend(t.tags))?;
    Ok(no_content())
}

pub(super) fn untag_resource(lambda: &Lambda, region: &str, arn: &str, query: Option<&str>) -> Answer {
    let keys: Vec<String> = serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k == "tagKeys")
        .map(|(_, v)| v)
        .collect();
    let f = by_arn(lambda, region, arn)?;
    change(lambda, &f, |s| s.tags.retain(|k, _| !keys.contains(k)))?;
    Ok(no_content())
}

/// The calls infrastructure-as-code tools make around a function, answered with "nothing configured".
pub(super) fn code_signing_config(f: &Function) -> Answer {
    Ok(json_answer(200, &json!({"CodeSigningConfigArn": "", "FunctionName": f.name})))
}

pub(super) fn concurrency() -> Answer {
    Ok(json_answer(200, &json!({})))
}

pub(super) fn no_policy() -> Answer {
    Err(LambdaError::new(404, "ResourceNotFoundException", "The resource you requested does not exist."))
}
