//! Lambda calls for the transformation function setup deploys: read, create (retrying while a new execution
//! role propagates), update its code and configuration, wait until it can be invoked, and delete it.

use std::time::{Duration, Instant};

use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, LastUpdateStatus, Runtime, State};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::sdk_error;
use crate::error::{Error, Result};
use crate::util::retry::Backoff;

/// A function as setup, teardown and doctor need to see it.
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    pub arn: String,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub role: String,
    pub code_sha256: String,
    pub tags: Vec<(String, String)>,
}

/// What setup deploys.
pub struct Deploy<'a> {
    pub name: &'a str,
    pub runtime: &'a str,
    pub handler: &'a str,
    pub role_arn: &'a str,
    pub zip: &'a [u8],
    pub tags: &'a [(String, String)],
}

/// How long setup lets a transformation run: Firehose waits at most 5 minutes for an invocation.
const TIMEOUT_S: i32 = 60;
/// Memory for the function (MB).
const MEMORY_MB: i32 = 256;

pub async fn get_function(lambda: &Client, name: &str) -> Result<Option<FunctionInfo>> {
    match lambda.get_function().function_name(name).send().await {
        Ok(out) => {
            let Some(c) = out.configuration() else { return Ok(None) };
            let mut tags: Vec<(String, String)> =
                out.tags().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
            tags.sort();
            Ok(Some(FunctionInfo {
                arn: c.function_arn().unwrap_or_default().to_string(),
                runtime: c.runtime().map(|r| r.as_str().to_string()),
                handler: c.handler().map(str::to_string),
                role: c.role().unwrap_or_default().to_string(),
                code_sha256: c.code_sha256().unwrap_or_default().to_string(),
                tags,
            }))
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(sdk_error(format!("read Lambda function `{name}`"), e)),
    }
}

/// Retries while a new execution role is not yet assumable by Lambda: ~1 s, 2 s, 4 s, then 8 s.
const IAM_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));

fn is_iam_propagation(message: &str) -> bool {
    message.contains("cannot be assumed by Lambda")
}

/// Runs `call` again while Lambda says the execution role cannot be assumed yet (a new or re-created role still
/// propagating), for at most `iam_retry`, reporting each retry.
async fn retrying_propagation<T, E, Fut>(
    iam_retry: Duration,
    on_retry: &(dyn Fn(u32, &str, Duration) + Send + Sync),
    mut call: impl FnMut() -> Fut,
) -> std::result::Result<T, SdkError<E, HttpResponse>>
where
    Fut: std::future::Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata,
{
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match call().await {
            Err(e) => {
                let message = e.as_service_error().and_then(|s| s.message()).unwrap_or("").to_string();
                if is_iam_propagation(&message) && started.elapsed() < iam_retry {
                    let wait = IAM_BACKOFF.delay(attempt);
                    on_retry(attempt, &message, wait);
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(e);
            }
            ok => return ok,
        }
    }
}

/// Creates the function; returns its ARN.
pub async fn create(
    lambda: &Client,
    d: &Deploy<'_>,
    iam_retry: Duration,
    on_retry: &(dyn Fn(u32, &str, Duration) + Send + Sync),
) -> Result<String> {
    let out = retrying_propagation(iam_retry, on_retry, || {
        lambda
            .create_function()
            .function_name(d.name)
            .runtime(Runtime::from(d.runtime))
            .handler(d.handler)
            .role(d.role_arn)
            .timeout(TIMEOUT_S)
            .memory_size(MEMORY_MB)
            .description("Transforms the records of a Firehose stream (deployed by firehose-kit setup --transform)")
            .code(FunctionCode::builder().zip_file(Blob::new(d.zip)).build())
            .set_tags(Some(d.tags.iter().cloned().collect()))
            .send()
    })
    .await
    .map_err(|e| sdk_error(format!("create Lambda function `{}`", d.name), e))?;
    Ok(out.function_arn().unwrap_or_default().to_string())
}

/// Replaces the function's code.
pub async fn update_code(lambda: &Client, name: &str, zip: &[u8]) -> Result<()> {
    lambda
        .update_function_code()
        .function_name(name)
        .zip_file(Blob::new(zip))
        .send()
        .await
        .map_err(|e| sdk_error(format!("update the code of Lambda function `{name}`"), e))?;
    Ok(())
}

/// Sets the function's runtime, handler and role (retrying while a re-created execution role propagates).
pub async fn update_configuration(
    lambda: &Client,
    d: &Deploy<'_>,
    iam_retry: Duration,
    on_retry: &(dyn Fn(u32, &str, Duration) + Send + Sync),
) -> Result<()> {
    retrying_propagation(iam_retry, on_retry, || {
        lambda
            .update_function_configuration()
            .function_name(d.name)
            .runtime(Runtime::from(d.runtime))
            .handler(d.handler)
            .role(d.role_arn)
            .send()
    })
    .await
    .map_err(|e| sdk_error(format!("update the configuration of Lambda function `{}`", d.name), e))?;
    Ok(())
}

pub async fn tag(lambda: &Client, arn: &str, tags: &[(String, String)]) -> Result<()> {
    lambda
        .tag_resource()
        .resource(arn)
        .set_tags(Some(tags.iter().cloned().collect()))
        .send()
        .await
        .map_err(|e| sdk_error(format!("tag Lambda function `{arn}`"), e))?;
    Ok(())
}

/// Waits until the function is Active and its last update done (a function cannot be invoked or updated
/// again before), for up to `timeout`.
pub async fn wait_ready(lambda: &Client, name: &str, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    loop {
        let c = lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .map_err(|e| sdk_error(format!("read Lambda function `{name}`"), e))?;
        let failed = |why: Option<&str>| {
            Error::failed(format!("Lambda function `{name}` failed: {}", why.unwrap_or("no reason given")))
                .with_hint("fix the handler (see the reason), then re-run setup")
        };
        match (c.state(), c.last_update_status()) {
            (Some(State::Failed), _) => return Err(failed(c.state_reason())),
            (_, Some(LastUpdateStatus::Failed)) => return Err(failed(c.last_update_status_reason())),
            (Some(State::Active), Some(LastUpdateStatus::Successful) | None) => return Ok(()),
            _ if started.elapsed() > timeout => {
                return Err(Error::failed(format!(
                    "Lambda function `{name}` was not ready after {} s",
                    timeout.as_secs()
                ))
                .with_hint("re-run setup: it resumes where it stopped"));
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Deletes the function; `false` when it was already gone.
pub async fn delete(lambda: &Client, name: &str) -> Result<bool> {
    match lambda.delete_function().function_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(false),
        Err(e) => Err(sdk_error(format!("delete Lambda function `{name}`"), e)),
    }
}

/// Invokes the function with `payload` (RequestResponse); the answer's body, or the function's error.
pub async fn invoke(lambda: &Client, name: &str, payload: Vec<u8>) -> Result<std::result::Result<Vec<u8>, String>> {
    let out = lambda
        .invoke()
        .function_name(name)
        .payload(Blob::new(payload))
        .send()
        .await
        .map_err(|e| sdk_error(format!("invoke Lambda function `{name}`"), e))?;
    let body = out.payload().map(|p| p.as_ref().to_vec()).unwrap_or_default();
    Ok(match out.function_error() {
        Some(kind) => Err(format!("{kind}: {}", function_error(&body))),
        None => Ok(body),
    })
}

/// A function's error answer in one line: `errorType: errorMessage` when it is Lambda's error document (its
/// stack trace is in the function's log group), the body as text otherwise.
fn function_error(body: &[u8]) -> String {
    let doc: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    match doc.as_ref().and_then(|d| Some((d.get("errorType")?.as_str()?, d.get("errorMessage")?.as_str()?))) {
        Some((kind, message)) => format!("{kind}: {message}"),
        None => String::from_utf8_lossy(body).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_function_error_is_its_type_and_message() {
        let body =
            br#"{"errorMessage": "no transformation today", "errorType": "ValueError", "stackTrace": ["  File x"]}"#;
        assert_eq!(super::function_error(body), "ValueError: no transformation today");
        assert_eq!(super::function_error(b"Task timed out"), "Task timed out");
    }
}
