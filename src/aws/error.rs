//! Turning SDK errors into firehose-kit errors: the service code and message as the first cause, the
//! unreachable-endpoint and credential cases recognised, and a `hint:` when the fix is known.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::Error;

/// Maps a failed SDK call to [`Error::Aws`]; `action` names the step and the resource.
pub fn sdk_error<E, R>(action: impl Into<String>, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let action = action.into();
    let (code, detail, hint) = match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown").to_string();
            let message = e.message().unwrap_or("").to_string();
            let detail = if message.is_empty() { code.clone() } else { format!("{code}: {message}") };
            let hint = hint_for_code(&code);
            (Some(code), detail, hint)
        }
        SdkError::DispatchFailure(dispatch) => {
            let chain = chain_text(&err);
            if chain.contains("credentials") || chain.contains("Credentials") {
                (None, format!("no usable AWS credentials: {}", innermost(&err)), Some(CREDENTIALS_HINT.to_string()))
            } else if dispatch.is_timeout() {
                (None, "the endpoint did not answer in time".to_string(), Some(ENDPOINT_HINT.to_string()))
            } else {
                (None, format!("{UNREACHABLE}: {}", innermost(&err)), Some(ENDPOINT_HINT.to_string()))
            }
        }
        SdkError::TimeoutError(_) => (None, "the request timed out".to_string(), Some(ENDPOINT_HINT.to_string())),
        SdkError::ConstructionFailure(_) => {
            let chain = chain_text(&err);
            if chain.contains("credentials") {
                (None, format!("no usable AWS credentials: {}", innermost(&err)), Some(CREDENTIALS_HINT.to_string()))
            } else {
                (None, format!("cannot build the request: {}", innermost(&err)), None)
            }
        }
        SdkError::ResponseError(_) => (None, format!("unexpected response: {}", innermost(&err)), None),
        _ => (None, innermost(&err), None),
    };
    Error::Aws { action, code, detail, source: Some(Box::new(err)), hint }
}

const CREDENTIALS_HINT: &str = "configure credentials with `aws configure` or `AWS_PROFILE`; to try without an AWS account run `firehose-kit demo`, or use `--local` with `firehose-kit local`";
const ENDPOINT_HINT: &str = "check --endpoint-url / AWS_ENDPOINT_URL and that the service is running (for the embedded emulator: `firehose-kit local`)";

/// The first words of the cause of an endpoint nothing answers at.
pub const UNREACHABLE: &str = "cannot reach the endpoint";

fn hint_for_code(code: &str) -> Option<String> {
    let hint = match code {
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => {
            "your session expired: refresh your credentials (`aws sso login`, or new keys with `aws configure`)"
        }
        "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "InvalidSignatureException"
        | "NotSignedUp" => {
            "the credentials were refused: check `aws configure list`; the embedded emulator accepts any access key id with the secret `test` (`--local` sets this up)"
        }
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
            "your identity lacks a permission: docs/aws.md lists the operator policy firehose-kit needs"
        }
        "ThrottlingException" | "Throttling" | "LimitExceededException" => {
            "the service is throttling this account: wait a moment and re-run (every command is safe to re-run)"
        }
        _ => return None,
    };
    Some(hint.to_string())
}

fn chain_text(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        text.push_str(" / ");
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}

fn innermost(err: &dyn std::error::Error) -> String {
    let mut last = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        last = e.to_string();
        next = e.source();
    }
    last
}

/// Whether a CreateDeliveryStream / UpdateDestination failure is IAM's eventual consistency: the new role is
/// not yet assumable. AWS gives nothing better than the message text here (an `InvalidArgumentException`), so
/// this is the one place that reads it; the phrases are those Terraform's provider retries on.
pub fn is_iam_propagation(code: Option<&str>, message: &str) -> bool {
    if code != Some("InvalidArgumentException") {
        return false;
    }
    let m = message.to_ascii_lowercase();
    [
        "unable to assume role",
        "is not authorized to perform",
        "access was denied",
        "not authorized to assume",
        "security token included in the request is invalid",
    ]
    .iter()
    .any(|p| m.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_messages_are_recognised() {
        assert!(is_iam_propagation(
            Some("InvalidArgumentException"),
            "Firehose is unable to assume role arn:aws:iam::1:role/x. Please check the role provided."
        ));
        assert!(!is_iam_propagation(Some("InvalidArgumentException"), "Records size exceeds 4 MB limit"));
        assert!(!is_iam_propagation(Some("ResourceInUseException"), "unable to assume role"));
    }

    #[test]
    fn known_codes_have_hints() {
        assert!(hint_for_code("AccessDenied").unwrap().contains("operator policy"));
        assert!(hint_for_code("ExpiredToken").unwrap().contains("refresh"));
        assert!(hint_for_code("NoSuchBucket").is_none());
    }
}
