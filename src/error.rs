//! The one error type of firehose-kit and its exit-code policy (README.md, "Exit codes").
//!
//! Every variant names what failed (the step and the resource) and keeps its cause as a source, so `main` can
//! print `error:` / `caused by:` / `hint:` lines. Only `main` turns an [`Error`] into a process exit code.

use std::path::PathBuf;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The exit codes (README.md, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Done, and every check passed.
    Success = 0,
    /// Ran, but the result is not what was asked (missing lines, records given up, resources left behind).
    Failed = 1,
    /// Bad usage, settings or input; nothing was changed.
    Usage = 2,
    /// AWS or endpoint failure: credentials, access denied, unreachable endpoint, service error after retries.
    Aws = 3,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage, settings or input (exit 2).
    #[error("{message}")]
    Usage { message: String, hint: Option<String> },

    /// The command ran but the outcome is not what was asked (exit 1).
    #[error("{message}")]
    Failed { message: String, hint: Option<String> },

    /// An input file that cannot be read (exit 2).
    #[error("cannot read `{}`", path.display())]
    Input {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An input that failed while it was being read, after the run had started (exit 1: the lines before the
    /// failure may have been sent, and the run manifest says the run failed).
    #[error("reading `{}` failed part-way", path.display())]
    InputFailed {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Local state (run manifests, checkpoints, emulator data) that cannot be written or read (exit 1).
    #[error("{action} `{}`", path.display())]
    State {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: BoxError,
    },

    /// An AWS call that failed after the SDK's retries, or an endpoint that cannot be reached (exit 3).
    #[error("{action}")]
    Aws {
        /// What was being done, naming the resource: "create bucket `b`".
        action: String,
        /// The service error code when there is one (`AccessDenied`, `ResourceNotFoundException`, ...).
        code: Option<String>,
        /// One line describing the cause, printed as the first `caused by:` line.
        detail: String,
        #[source]
        source: Option<BoxError>,
        hint: Option<String>,
    },

    /// The user interrupted the command (Ctrl-C); reported as exit 1 after cleanup.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage { message: message.into(), hint: None }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Error::Failed { message: message.into(), hint: None }
    }

    /// An AWS-side failure found without a failed SDK call (e.g. a stream that is not ACTIVE): exit 3.
    pub fn aws(action: impl Into<String>, code: Option<&str>, detail: impl Into<String>, hint: Option<String>) -> Self {
        Error::Aws { action: action.into(), code: code.map(str::to_string), detail: detail.into(), source: None, hint }
    }

    pub fn state(action: &'static str, path: impl Into<PathBuf>, source: impl Into<BoxError>) -> Self {
        Error::State { action, path: path.into(), source: source.into() }
    }

    /// Adds (or replaces) the `hint:` line of this error.
    pub fn with_hint(mut self, text: impl Into<String>) -> Self {
        let text = Some(text.into());
        match &mut self {
            Error::Usage { hint, .. } | Error::Failed { hint, .. } | Error::Aws { hint, .. } => *hint = text,
            _ => {}
        }
        self
    }

    /// Rewrites the hint this error carries (its own, not the fixed ones of input errors).
    pub fn map_hint(mut self, f: impl FnOnce(&str) -> String) -> Self {
        if let Error::Usage { hint: Some(h), .. }
        | Error::Failed { hint: Some(h), .. }
        | Error::Aws { hint: Some(h), .. } = &mut self
        {
            *h = f(h);
        }
        self
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Usage { hint, .. } | Error::Failed { hint, .. } | Error::Aws { hint, .. } => hint.as_deref(),
            Error::Input { .. } => Some("check the path, or use `-` to read standard input"),
            Error::InputFailed { .. } => Some(
                "the lines acknowledged before the failure are in the run manifest; repair or replace the file and run send again (it resumes after the last acknowledged line)",
            ),
            _ => None,
        }
    }

    /// The AWS error code, when this error came from a service response.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage { .. } | Error::Input { .. } => ExitCode::Usage,
            Error::Failed { .. } | Error::InputFailed { .. } | Error::State { .. } | Error::Interrupted => {
                ExitCode::Failed
            }
            Error::Aws { .. } => ExitCode::Aws,
        }
    }

    /// The lines printed after `error:`: first the classified detail, then the source chain, without repeats.
    pub fn causes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Error::Aws { detail, .. } = self
            && !detail.is_empty()
        {
            out.push(detail.clone());
        }
        // A service's answer is all in `code: message`: the SDK's layers below it only repeat it (one of them
        // as a debug dump of the same message).
        if let Error::Aws { code: Some(_), detail, .. } = self
            && !detail.is_empty()
        {
            return out;
        }
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            let line = cause.to_string();
            // The SDK wraps causes in generic layers ("service error", "dispatch failure"); keep the informative ones.
            let generic = matches!(line.as_str(), "service error" | "dispatch failure" | "io error" | "other");
            if !generic && !out.iter().any(|seen| seen.contains(&line)) {
                out.push(line);
            }
            next = cause.source();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_design() {
        assert_eq!(Error::usage("x").exit_code() as i32, 2);
        assert_eq!(Error::failed("x").exit_code() as i32, 1);
        let aws = Error::Aws { action: "a".into(), code: None, detail: "d".into(), source: None, hint: None };
        assert_eq!(aws.exit_code() as i32, 3);
    }

    #[test]
    fn causes_skip_generic_sdk_layers_and_repeats() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let err = Error::Aws {
            action: "describe stream `s`".into(),
            code: None,
            detail: "cannot reach http://127.0.0.1:1: connection refused".into(),
            source: Some(Box::new(io)),
            hint: Some("start it".into()),
        };
        assert_eq!(err.causes(), vec!["cannot reach http://127.0.0.1:1: connection refused".to_string()]);
        assert_eq!(err.hint(), Some("start it"));
    }

    #[test]
    fn a_service_error_is_said_once() {
        let inner = std::io::Error::other("Error { code: \"InvalidSignatureException\", message: \"...\" }");
        let err = Error::Aws {
            action: "describe delivery stream `s`".into(),
            code: Some("InvalidSignatureException".into()),
            detail: "InvalidSignatureException: the signature does not match".into(),
            source: Some(Box::new(inner)),
            hint: None,
        };
        assert_eq!(err.causes(), vec!["InvalidSignatureException: the signature does not match".to_string()]);
    }
}
