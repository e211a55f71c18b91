//! The JSON 1.1 protocol the emulator's JSON services speak (Firehose, CloudWatch Logs, Glue, Kinesis; Firehose
//! matches its own operations, the others through [`dispatch`]): errors as `{"__type": code, "message": ...}` with their HTTP status, inputs parsed into typed structs
//! and responses serialized from them.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "__type")]
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        let status = match code {
            "ServiceUnavailableException" => StatusCode::SERVICE_UNAVAILABLE,
            "InternalFailure" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError { status, code, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new("InvalidArgumentException", message)
    }

    pub fn in_use(message: impl Into<String>) -> Self {
        ApiError::new("ResourceInUseException", message)
    }

    /// Model-constraint violations, listed in one message as AWS's front end lists them:
    /// `2 validation errors detected: Value ... ; Value ...`.
    pub fn validations(violations: Vec<String>) -> Self {
        let n = violations.len();
        let noun = if n == 1 { "error" } else { "errors" };
        ApiError::new("ValidationException", format!("{n} validation {noun} detected: {}", violations.join("; ")))
    }

    pub fn validation(violation: impl Into<String>) -> Self {
        ApiError::validations(vec![violation.into()])
    }

    pub fn serialization(e: impl std::fmt::Display) -> Self {
        ApiError::new("SerializationException", e.to_string())
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::new("InternalFailure", format!("emulator storage error: {e}"))
    }
}

/// A required member that is missing: AWS's "must not be null" violation.
pub fn null_violation(member: &str) -> String {
    format!("Value null at '{member}' failed to satisfy constraint: Member must not be null")
}

/// Parses a request body as an operation's input (an empty body is `{}`).
pub fn input<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(if body.is_empty() { b"{}" } else { body }).map_err(ApiError::serialization)
}

/// A 200 answer with a JSON body.
pub fn ok<T: Serialize>(output: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(output).map_err(ApiError::internal)
}

/// A 200 answer with a JSON body of about `capacity` bytes (the data plane's large answers).
pub fn ok_sized<T: Serialize>(output: &T, capacity: usize) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut body, output).map_err(ApiError::internal)?;
    Ok(body)
}

/// The empty answer of control-plane calls that return nothing.
#[derive(Serialize)]
pub struct Empty {}

/// The HTTP response for a result.
/// An action of a JSON 1.1 service: the service, its state (locked), the parsed input, the region.
pub type Handler<Svc, St, I> = fn(&Svc, &mut St, I, &str) -> Result<Vec<u8>, ApiError>;

/// Serves one call of a JSON 1.1 service: its handler from `actions` (an action not there is
/// `UnknownOperationException`), the input parsed and told its action's name by `named`, run under the service's
/// state lock.
pub fn dispatch<Svc, St, I: DeserializeOwned>(
    svc: &Svc,
    state: &std::sync::Mutex<St>,
    actions: &[(&'static str, Handler<Svc, St, I>)],
    (operation, body, region): (&str, &[u8], &str),
    named: fn(&mut I, &'static str),
) -> Response<Bytes> {
    let Some((name, handler)) = actions.iter().find(|(name, _)| *name == operation) else {
        return response(Err(ApiError::new(
            "UnknownOperationException",
            format!("operation {operation} is not modelled by the firehose-kit emulator"),
        )));
    };
    let result = input::<I>(body).and_then(|mut input| {
        named(&mut input, name);
        let mut state = crate::lock(state);
        handler(svc, &mut state, input, region)
    });
    response(result)
}

pub fn response(result: Result<Vec<u8>, ApiError>) -> Response<Bytes> {
    let (status, body) = match result {
        Ok(body) => (StatusCode::OK, body),
        Err(e) => {
            let body = serde_json::to_vec(&ErrorBody { code: e.code, message: &e.message })
                .unwrap_or_else(|_| br#"{"__type":"InternalFailure"}"#.to_vec());
            (e.status, body)
        }
    };
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
        .body(Bytes::from(body))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_are_counted_and_listed() {
        let e = ApiError::validations(vec!["a".into(), "b".into()]);
        assert_eq!((e.code, e.message.as_str()), ("ValidationException", "2 validation errors detected: a; b"));
        assert_eq!(ApiError::validation("x").message, "1 validation error detected: x");
        let r = response(Err(ApiError::new("ServiceUnavailableException", "Slow \"down\".")));
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body["message"], "Slow \"down\".");
    }
}
