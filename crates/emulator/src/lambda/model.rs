//! Lambda's state: functions (configuration, code, tags) and the rules their inputs must meet; the
//! `FunctionConfiguration` document every call answers with; and Lambda's REST error shape.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The largest synchronous Invoke payload, request and response (6 MB).
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
/// The longest a function may run (900 s).
pub const MAX_TIMEOUT_S: u64 = 900;

/// A Lambda error: status, the `x-amzn-ErrorType` code, and the message.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl LambdaError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        LambdaError { status, code, message: message.into() }
    }

    pub fn not_found(arn: &str) -> Self {
        LambdaError::new(404, "ResourceNotFoundException", format!("Function not found: {arn}"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        LambdaError::new(400, "InvalidParameterValueException", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        LambdaError::new(409, "ResourceConflictException", message)
    }

    /// What the emulator does not model, said plainly.
    pub fn unmodelled(what: &str) -> Self {
        LambdaError::invalid(format!("{what} is not modelled by the firehose-kit emulator"))
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        LambdaError::new(500, "ServiceException", format!("emulator storage error: {e}"))
    }

    /// Lambda's error body (`{"Type":"User","message":..}`; the SDKs take the code from the header).
    pub fn into_response(self) -> Response<Bytes> {
        let kind = if self.status >= 500 { "Service" } else { "User" };
        let body = json!({"Type": kind, "message": self.message, "Message": self.message});
        Response::builder()
            .status(StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("x-amzn-ErrorType", self.code)
            .body(Bytes::from(body.to_string()))
            .expect("static response parts are valid")
    }
}

/// The runtimes the emulator runs, as local processes: Python and Node.js with a runtime loop shipped with the
/// emulator (under the machine's `python3` and `node`), and OS-only runtimes running the zip's `bootstrap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    Python,
    Node,
    Provided,
}

impl RuntimeKind {
    pub fn of(runtime: &str) -> Option<RuntimeKind> {
        if runtime.starts_with("python3.") {
            Some(RuntimeKind::Python)
        } else if runtime.starts_with("nodejs") {
            Some(RuntimeKind::Node)
        } else if matches!(runtime, "provided" | "provided.al2" | "provided.al2023") {
            Some(RuntimeKind::Provided)
        } else {
            None
        }
    }
}

/// A function, as persisted (`$LATEST`; published versions are not modelled).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Function {
    pub name: String,
    pub region: String,
    pub runtime: String,
    pub role: String,
    pub handler: String,
    pub description: String,
    pub timeout_s: u64,
    pub memory_mb: u64,
    pub environment: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub architectures: Vec<String>,
    pub ephemeral_storage_mb: u64,
    /// Base64 of the zip's SHA-256, as Lambda reports it.
    pub code_sha256: String,
    /// Hex of the same digest: the name of the code's directory.
    pub code_id: String,
    pub code_size: u64,
    /// `2026-12-02T05:51:36.123+0000`.
    pub last_modified: String,
    pub revision_id: String,
}

impl Function {
    pub fn arn(&self, account: &str, partition: &str) -> String {
        format!("arn:{partition}:lambda:{}:{account}:function:{}", self.region, self.name)
    }

    /// The `FunctionConfiguration` document.
    pub fn configuration(&self, account: &str, partition: &str) -> Value {
        let mut doc = json!({
            "FunctionName": self.name,
            "FunctionArn": self.arn(account, partition),
            "Runtime": self.runtime,
            "Role": self.role,
            "Handler": self.handler,
            "CodeSize": self.code_size,
            "Description": self.description,
            "Timeout": self.timeout_s,
            "MemorySize": self.memory_mb,
            "LastModified": self.last_modified,
            "CodeSha256": self.code_sha256,
            "Version": "$LATEST",
            "TracingConfig": {"Mode": "PassThrough"},
            "RevisionId": self.revision_id,
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": self.architectures,
            "EphemeralStorage": {"Size": self.ephemeral_storage_mb},
            "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
            "LoggingConfig": {"LogFormat": "Text", "LogGroup": log_group(&self.name)},
        });
        // Lambda leaves `Environment` out when no variable is set (Terraform reads `{}` as drift).
        if !self.environment.is_empty() {
            doc["Environment"] = json!({"Variables": self.environment});
        }
        doc
    }
}

/// The log group a function's output goes to.
pub fn log_group(function: &str) -> String {
    format!("/aws/lambda/{function}")
}

/// Lambda's `LastModified` format: milliseconds and a literal `+0000`.
pub fn last_modified(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// A function name: 1 to 64 of `[a-zA-Z0-9-_]`.
pub fn validate_name(name: &str) -> Result<(), LambdaError> {
    let ok = (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(LambdaError::new(
            400,
            "ValidationException",
            format!(
                "1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
            ),
        ))
    }
}

/// What a `{FunctionName}` path parameter names: a name, `name:qualifier`, a partial ARN
/// (`123456789012:function:name`) or a full ARN, qualified or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: String,
    pub qualifier: Option<String>,
    /// The region an ARN names.
    pub region: Option<String>,
}

impl FunctionRef {
    pub fn parse(text: &str) -> Result<FunctionRef, LambdaError> {
        let parts: Vec<&str> = text.split(':').collect();
        let (region, name, qualifier) = match parts.as_slice() {
            [name] => (None, *name, None),
            [name, q] => (None, *name, Some(*q)),
            [_, "function", name] => (None, *name, None),
            [_, "function", name, q] => (None, *name, Some(*q)),
            ["arn", _, "lambda", region, _, "function", name] => (Some(*region), *name, None),
            ["arn", _, "lambda", region, _, "function", name, q] => (Some(*region), *name, Some(*q)),
            _ => {
                return Err(validate_name(text).err().unwrap_or_else(|| LambdaError::invalid("invalid function name")));
            }
        };
        validate_name(name)?;
        Ok(FunctionRef {
            name: name.to_string(),
            qualifier: qualifier.map(str::to_string),
            region: region.map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_arns_and_qualifiers_parse() {
        let r = FunctionRef::parse("f").unwrap();
        assert_eq!((r.name.as_str(), r.qualifier), ("f", None));
        assert_eq!(FunctionRef::parse("f:$LATEST").unwrap().qualifier.as_deref(), Some("$LATEST"));
        assert_eq!(FunctionRef::parse("000000000000:function:f").unwrap().name, "f");
        let arn = FunctionRef::parse("arn:aws:lambda:us-east-2:000000000000:function:f:$LATEST").unwrap();
        assert_eq!((arn.name.as_str(), arn.region.as_deref()), ("f", Some("us-east-2")));
        assert!(FunctionRef::parse("bad name").is_err());
        assert!(FunctionRef::parse("a:b:c:d:e").is_err());
    }

    #[test]
    fn last_modified_has_milliseconds_and_a_literal_offset() {
        assert_eq!(last_modified(1_586_545_592_563), "2020-04-10T19:06:32.563+0000");
    }

    #[test]
    fn runtimes_are_run_or_refused() {
        assert_eq!(RuntimeKind::of("python3.12"), Some(RuntimeKind::Python));
        assert_eq!(RuntimeKind::of("nodejs20.x"), Some(RuntimeKind::Node));
        assert_eq!(RuntimeKind::of("provided.al2023"), Some(RuntimeKind::Provided));
        assert_eq!(RuntimeKind::of("java21"), None);
    }
}
