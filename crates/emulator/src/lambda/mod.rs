//! AWS Lambda in the emulator (REST JSON, `/2015-03-31/functions/...`): enough for the SDKs, the AWS CLI and
//! Terraform's `aws_lambda_function` to create, read, update, invoke and delete a function, and for Firehose to
//! run a transformation; function code runs as local processes (see [`sandbox`]).
//!
//! Split like the emulator's other services: [`handlers`] has one function per action, found by [`route`];
//! [`model`] holds the state, its rules and Lambda's error shape; [`store`] persists functions and their code
//! under `<data-dir>/lambda/`; [`sandbox`] runs them. Warm sandboxes are reused; concurrent invocations get
//! their own; an update or a delete retires the sandboxes of the old version. Not modelled (refused by name):
//! published versions and aliases, layers, VPC, container images, SnapStart, EFS, code signing (answered as
//! "none configured"), resource policies (`GetPolicy` answers that there is none).

pub mod handlers;
pub mod model;
pub mod sandbox;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Response};
use serde_json::json;

use self::handlers::{Answer, lookup};
use self::model::{Function, LambdaError, MAX_PAYLOAD, RuntimeKind, log_group};
use self::sandbox::{LogSink, Outcome, Sandbox, Spec};
use self::store::Store;
use crate::iam::Iam;
use crate::logs::Logs;
use firehose_kit_domain::access::{self, Policy};
use firehose_kit_domain::names::arn_partition;

/// The emulator's Lambda.
pub struct Lambda {
    store: Store,
    /// Functions by `region/name`.
    state: Mutex<BTreeMap<String, Function>>,
    account_id: String,
    secret: String,
    /// The emulator's endpoint, given to functions as `AWS_ENDPOINT_URL` (their SDK calls reach the emulator).
    endpoint: String,
    iam: Arc<Iam>,
    logs: Arc<Logs>,
    s3: Arc<crate::s3::Store>,
    /// Idle sandboxes by `region/name`, each with the revision it runs and when it was last used.
    pool: Mutex<HashMap<String, Vec<Warm>>>,
    /// Per function, how many sandboxes may run at once (an invocation past it waits for one).
    slots: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    /// Whether function code may run at all (see [`LambdaConfig::functions`]).
    functions: bool,
}

/// An idle sandbox kept warm.
struct Warm {
    revision: String,
    since: std::time::Instant,
    sandbox: Sandbox,
}

/// Sandboxes one function may run at once: invocations past them wait for one to be free (Lambda would throttle
/// past the account's concurrency; Firehose waits and retries, so the wait is what a stream sees).
pub const MAX_SANDBOXES: usize = 10;
/// A warm sandbox idle this long is stopped (its process and its Runtime API).
pub const IDLE_SANDBOX: Duration = Duration::from_secs(300);

const PYTHON_RUNTIME: &str = include_str!("runtimes/python_runtime.py");
const NODE_RUNTIME: &str = include_str!("runtimes/node_runtime.cjs");

/// Everything [`Lambda::open`] needs besides its directory.
pub struct LambdaConfig {
    pub account_id: String,
    pub secret: String,
    pub endpoint: String,
    /// Whether functions may be created and run (`local --no-functions`: no code runs on this host).
    pub functions: bool,
}

/// Why a function is not created or run when execution is off.
const FUNCTIONS_OFF: &str =
    "function execution is turned off in this emulator (local --no-functions): no function code runs on this host";

impl Lambda {
    pub fn open(
        dir: &Path,
        config: LambdaConfig,
        iam: Arc<Iam>,
        logs: Arc<Logs>,
        s3: Arc<crate::s3::Store>,
    ) -> std::io::Result<Self> {
        let (store, functions) = Store::open(dir)?;
        let runtimes = store.runtimes_dir();
        std::fs::create_dir_all(&runtimes)?;
        std::fs::write(runtimes.join("python_runtime.py"), PYTHON_RUNTIME)?;
        std::fs::write(runtimes.join("node_runtime.cjs"), NODE_RUNTIME)?;
        Ok(Lambda {
            store,
            state: Mutex::new(functions),
            account_id: config.account_id,
            secret: config.secret,
            endpoint: config.endpoint,
            iam,
            logs,
            s3,
            pool: Mutex::default(),
            slots: Mutex::default(),
            functions: config.functions,
        })
    }

    /// Stops warm sandboxes idle longer than [`IDLE_SANDBOX`] (from the emulator's tick).
    pub fn retire_idle(&self) {
        let stale: Vec<Warm> = {
            let mut pool = crate::lock(&self.pool);
            let mut stale = Vec::new();
            for idle in pool.values_mut() {
                let (keep, old): (Vec<Warm>, Vec<Warm>) =
                    std::mem::take(idle).into_iter().partition(|w| w.since.elapsed() < IDLE_SANDBOX);
                *idle = keep;
                stale.extend(old);
            }
            pool.retain(|_, idle| !idle.is_empty());
            stale
        };
        if !stale.is_empty() {
            tracing::debug!("stopping {} idle Lambda sandboxes", stale.len());
        }
    }

    /// Sandboxes warm now (idle, across functions).
    pub fn warm_sandboxes(&self) -> usize {
        crate::lock(&self.pool).values().map(Vec::len).sum()
    }

    fn key(region: &str, name: &str) -> String {
        format!("{region}/{name}")
    }

    fn partition(&self, region: &str) -> &'static str {
        arn_partition(region)
    }

    /// The execution role must exist and let `lambda.amazonaws.com` assume it, as CreateFunction checks.
    fn check_execution_role(&self, role: &str, region: &str) -> Result<(), LambdaError> {
        if self.iam.role_trusts(role, region, "lambda.amazonaws.com") {
            Ok(())
        } else {
            Err(LambdaError::invalid("The role defined for the function cannot be assumed by Lambda."))
        }
    }

    /// Stops the warm sandboxes of `f` (after an update or a delete).
    fn retire(&self, f: &Function) {
        crate::lock(&self.pool).remove(&Self::key(&f.region, &f.name));
    }

    /// Serves one Lambda REST request.
    pub async fn handle(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: Bytes,
        region: &str,
    ) -> Response<Bytes> {
        route(self, method, path, query, headers, body, region).await.unwrap_or_else(LambdaError::into_response)
    }

    /// What a process of `f` runs.
    fn spec(&self, f: &Function) -> Spec {
        let kind = RuntimeKind::of(&f.runtime).unwrap_or(RuntimeKind::Provided);
        let code_dir = self.store.code_dir(f);
        let runtime_script = match kind {
            RuntimeKind::Python => Some(self.store.runtimes_dir().join("python_runtime.py")),
            RuntimeKind::Node => Some(self.store.runtimes_dir().join("node_runtime.cjs")),
            RuntimeKind::Provided => None,
        };
        let mut env = f.environment.clone();
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        for (k, v) in [
            ("PATH", path),
            ("LANG", "en_US.UTF-8".into()),
            ("TZ", ":UTC".into()),
            ("_HANDLER", f.handler.clone()),
            ("LAMBDA_TASK_ROOT", code_dir.display().to_string()),
            ("LAMBDA_RUNTIME_DIR", self.store.runtimes_dir().display().to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", f.name.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_mb.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", log_group(&f.name)),
            ("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", f.runtime)),
            ("AWS_REGION", f.region.clone()),
            ("AWS_DEFAULT_REGION", f.region.clone()),
            ("AWS_ACCESS_KEY_ID", firehose_kit_domain::contract::TEST_ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ] {
            env.insert(k.to_string(), v);
        }
        Spec { kind, code_dir, runtime_script, memory_mb: f.memory_mb, function_arn: self.arn(f), env }
    }

    fn arn(&self, f: &Function) -> String {
        f.arn(&self.account_id, self.partition(&f.region))
    }

    /// Where a new sandbox of `f` writes its output: a log stream of its own in `/aws/lambda/<name>`.
    fn log_sink(&self, f: &Function, sandbox_hint: &str) -> LogSink {
        let logs = self.logs.clone();
        let (region, group) = (f.region.clone(), log_group(&f.name));
        let day = chrono::Utc::now().format("%Y/%m/%d");
        let stream = format!("{day}/[$LATEST]{sandbox_hint}");
        logs.ensure_stream(&region, &group, &stream);
        Arc::new(move |line: String| {
            logs.append(&region, &group, &stream, line);
        })
    }

    /// Runs `f` once with `payload` (RequestResponse), on a warm sandbox when there is one; at most
    /// [`MAX_SANDBOXES`] at once per function.
    pub async fn run(&self, f: &Function, payload: Bytes) -> Outcome {
        if !self.functions {
            let body = serde_json::json!({"errorType": "FunctionsDisabled", "errorMessage": FUNCTIONS_OFF});
            return Outcome::Error { body: Bytes::from(body.to_string()), kind: "Runtime.Unknown".into() };
        }
        let key = Self::key(&f.region, &f.name);
        let slots = crate::lock(&self.slots)
            .entry(key.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(MAX_SANDBOXES)))
            .clone();
        let Ok(_slot) = slots.acquire_owned().await else {
            return Outcome::Error { body: Bytes::from_static(b"{}"), kind: "Runtime.Unknown".into() };
        };
        let warm = {
            let mut pool = crate::lock(&self.pool);
            let idle = pool.entry(key.clone()).or_default();
            idle.retain(|w| w.revision == f.revision_id);
            idle.pop().map(|w| w.sandbox)
        };
        let mut sandbox = match warm {
            Some(s) => s,
            None => {
                let hint = uuid::Uuid::new_v4().simple().to_string();
                match Sandbox::start(&self.spec(f), self.log_sink(f, &hint)).await {
                    Ok(s) => s,
                    Err(outcome) => return outcome,
                }
            }
        };
        // The function's own timeout, whatever `--speed` (that speeds up Firehose's clocks, not the code).
        let timeout = Duration::from_secs(f.timeout_s);
        let (outcome, reusable) = sandbox.invoke(payload, timeout).await;
        if reusable {
            let warm = Warm { revision: f.revision_id.clone(), since: std::time::Instant::now(), sandbox };
            crate::lock(&self.pool).entry(key).or_default().push(warm);
        }
        outcome
    }

    /// Invokes the function `arn` names for Firehose, as `role_arn` (which must be allowed
    /// `lambda:InvokeFunction` on it).
    pub async fn invoke_as(&self, role_arn: &str, arn: &str, region: &str, payload: Bytes) -> Result<Outcome, Refusal> {
        let f = lookup(self, region, arn, None).map_err(|_| Refusal::NotFound)?;
        let qualified = format!("{}:$LATEST", self.arn(&f));
        let view = self.iam.role_view(role_arn, region).ok_or(Refusal::AssumeRole)?;
        if !view.trusts_firehose {
            return Err(Refusal::AssumeRole);
        }
        let context = access::delivery_context(role_arn, &self.account_id);
        let req = access::Request {
            action: "lambda:InvokeFunction",
            resource: &qualified,
            principal: role_arn,
            context: &context,
        };
        let none: Option<&Policy> = None;
        if !access::evaluate(&view.identity, none, &req).allowed() {
            return Err(Refusal::AccessDenied(qualified));
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(Refusal::TooLarge);
        }
        Ok(self.run(&f, payload).await)
    }
}

/// Where GetFunction says a function's zip can be downloaded, without signing (AWS hands out a presigned S3 URL
/// valid for ten minutes; here the code's SHA-256 in the query stands in for the signature).
fn code_location(lambda: &Lambda, f: &Function) -> String {
    format!("{}{CODE_PATH}{}/{}/code.zip?code={}", lambda.endpoint, f.region, f.name, f.code_id)
}

const CODE_PATH: &str = "/lambda-code/";

/// Whether `uri` is a [`code_location`].
pub fn is_code_location(uri: &http::Uri) -> bool {
    uri.path().starts_with(CODE_PATH) && uri.query().is_some_and(|q| q.starts_with("code="))
}

impl Lambda {
    /// Serves a [`code_location`]: the zip the function was last deployed from, while that code is current.
    pub fn code(&self, uri: &http::Uri) -> Response<Bytes> {
        let seg = segments(uri.path().strip_prefix(CODE_PATH).unwrap_or(""));
        let id = uri.query().and_then(|q| q.strip_prefix("code=")).unwrap_or("");
        let found = match seg.as_slice() {
            [region, name, file] if file == "code.zip" => handlers::lookup(self, region, name, None).ok(),
            _ => None,
        };
        match found.filter(|f| f.code_id == id).map(|f| self.store.zip(&f)) {
            Some(Ok(zip)) => Response::builder()
                .status(200)
                .header(http::header::CONTENT_TYPE, "application/zip")
                .body(Bytes::from(zip))
                .expect("valid response"),
            _ => Response::builder()
                .status(403)
                .header(http::header::CONTENT_TYPE, "application/xml")
                .body(Bytes::from_static(
                    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Request has expired or the code was replaced</Message></Error>",
                ))
                .expect("valid response"),
        }
    }
}

/// Why Firehose could not invoke a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    AssumeRole,
    /// The role may not `lambda:InvokeFunction` on this (qualified) ARN.
    AccessDenied(String),
    TooLarge,
    /// Lambda could not be reached (the invocation never ran): retried as a throttled or failed call is.
    Unavailable(String),
}

/// Percent-decoded path segments.
fn segments(path: &str) -> Vec<String> {
    path.trim_matches('/')
        .split('/')
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}

fn qualifier(query: Option<&str>) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "Qualifier")
        .map(|(_, v)| v)
}

/// Runs file-heavy work (a function's code unzipped, up to 250 MB) without holding up the runtime's other tasks.
fn off_workers<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Finds the action a method and path name and runs it.
async fn route(
    lambda: &Lambda,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
    region: &str,
) -> Answer {
    let seg = segments(path);
    let seg: Vec<&str> = seg.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
    let q = qualifier(query);
    let q = q.as_deref();
    use handlers as h;
    let deploys = matches!(
        (method.as_str(), seg.as_slice()),
        ("POST", ["2015-03-31", "functions"]) | ("PUT", ["2015-03-31", "functions", _, "code"])
    );
    if deploys && !lambda.functions {
        return Err(LambdaError::new(403, "AccessDeniedException", FUNCTIONS_OFF));
    }
    match (method.as_str(), seg.as_slice()) {
        // Unzipping (up to 250 MB) is file work: off the runtime's workers.
        ("POST", ["2015-03-31", "functions"]) => off_workers(|| h::create_function(lambda, region, &body)),
        ("GET", ["2015-03-31", "functions"]) => h::list_functions(lambda, region),
        ("GET", ["2015-03-31", "functions", f]) => h::get_function(lambda, region, &lookup(lambda, region, f, q)?),
        ("DELETE", ["2015-03-31", "functions", f]) => h::delete_function(lambda, &lookup(lambda, region, f, q)?),
        ("GET", ["2015-03-31", "functions", f, "configuration"]) => {
            h::get_configuration(lambda, region, &lookup(lambda, region, f, q)?)
        }
        ("PUT", ["2015-03-31", "functions", f, "configuration"]) => {
            h::update_configuration(lambda, &lookup(lambda, region, f, q)?, &body)
        }
        ("PUT", ["2015-03-31", "functions", f, "code"]) => {
            let function = lookup(lambda, region, f, q)?;
            off_workers(|| h::update_code(lambda, &function, &body))
        }
        ("POST", ["2015-03-31", "functions", f, "invocations"]) => {
            invoke(lambda, &lookup(lambda, region, f, q)?, headers, body).await
        }
        ("GET", ["2015-03-31", "functions", f, "versions"]) => {
            h::list_versions(lambda, region, &lookup(lambda, region, f, q)?)
        }
        ("GET", ["2015-03-31", "functions", f, "policy"]) => {
            lookup(lambda, region, f, q)?;
            h::no_policy()
        }
        ("GET", ["2020-06-30", "functions", f, "code-signing-config"]) => {
            h::code_signing_config(&lookup(lambda, region, f, q)?)
        }
        ("GET", ["2019-09-30", "functions", f, "concurrency"]) => {
            lookup(lambda, region, f, q)?;
            h::concurrency()
        }
        ("GET", ["2017-03-31", "tags", arn]) => h::list_tags(lambda, region, arn),
        ("POST", ["2017-03-31", "tags", arn]) => h::tag_resource(lambda, region, arn, &body),
        ("DELETE", ["2017-03-31", "tags", arn]) => h::untag_resource(lambda, region, arn, query),
        (m, _) => Err(LambdaError::unmodelled(&format!("The Lambda operation {m} {path}"))),
    }
}

/// Invoke: RequestResponse (200, with `X-Amz-Function-Error: Unhandled` when the function failed), Event (202,
/// run in the background) or DryRun (204).
async fn invoke(lambda: &Lambda, f: &Function, headers: &HeaderMap, payload: Bytes) -> Answer {
    if payload.len() > MAX_PAYLOAD {
        return Err(LambdaError::new(
            413,
            "RequestTooLargeException",
            format!("Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation"),
        ));
    }
    if !payload.is_empty() && serde_json::from_slice::<serde_json::Value>(&payload).is_err() {
        return Err(LambdaError::new(400, "InvalidRequestContentException", "Could not parse request body into json"));
    }
    let kind = headers.get("x-amz-invocation-type").and_then(|v| v.to_str().ok()).unwrap_or("RequestResponse");
    let response = |status: u16| Response::builder().status(status).header("X-Amz-Executed-Version", "$LATEST");
    match kind {
        "DryRun" => Ok(response(204).body(Bytes::new()).expect("valid response")),
        "Event" => Err(LambdaError::unmodelled("Asynchronous invocation (InvocationType Event)")),
        "RequestResponse" => {
            let (status, body, error) = match lambda.run(f, payload).await {
                Outcome::Ok(body) => (200, body, None),
                Outcome::Error { body, .. } => (200, body, Some("Unhandled")),
            };
            let mut r = response(status).header(http::header::CONTENT_TYPE, "application/json");
            if let Some(e) = error {
                r = r.header("X-Amz-Function-Error", e);
            }
            Ok(r.body(body).expect("valid response"))
        }
        other => Err(LambdaError::invalid(format!(
            "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
        ))),
    }
}

impl LambdaError {
    /// A JSON body for tests and logs.
    pub fn to_json(&self) -> serde_json::Value {
        json!({"code": self.code, "message": self.message, "status": self.status})
    }
}
