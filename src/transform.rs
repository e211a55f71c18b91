//! `setup --transform`: what a transformation handler is (a file or a directory → a Lambda runtime, handler and
//! a deterministic zip), and the names and documents setup gives the function it deploys.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// The Apache → JSON handler (templates/transform/apache_to_json.py), built in for `demo --transform`.
pub const APACHE_TO_JSON_PY: &str = include_str!("../templates/transform/apache_to_json.py");
/// The same in JavaScript (templates/transform/apache_to_json.mjs).
pub const APACHE_TO_JSON_MJS: &str = include_str!("../templates/transform/apache_to_json.mjs");

/// The function tag setup sets when the handler is one of the shipped templates, which make one document per
/// line of a record holding several: `send` packs lines into records for such a function.
pub const RECORD_LINES_TAG: (&str, &str) = ("firehose-kit:record-lines", "many");

/// Where the transformation comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A handler setup packages and deploys as `firehose-kit-<stream>-transform`.
    Path(PathBuf),
    /// An existing function, used as it is.
    Arn(String),
}

impl Source {
    pub fn parse(s: &str) -> Result<Source> {
        if s.starts_with("arn:") {
            return match firehose_kit_domain::transform::function_name(s) {
                Some(_) => Ok(Source::Arn(s.to_string())),
                None => Err(Error::usage(format!("--transform `{s}` is not a Lambda function ARN"))
                    .with_hint("expected arn:aws:lambda:REGION:ACCOUNT:function:NAME, or a handler file or directory")),
            };
        }
        let path = PathBuf::from(s);
        if !path.exists() {
            return Err(Error::usage(format!("--transform `{s}`: no such file or directory")).with_hint(
                "give a handler file (.py, .js, .mjs), a directory with a `bootstrap`, or a function ARN; try templates/transform/apache_to_json.py",
            ));
        }
        Ok(Source::Path(path))
    }
}

/// A handler packaged for Lambda.
#[derive(Debug, Clone)]
pub struct Package {
    pub runtime: &'static str,
    pub handler: String,
    pub zip: Vec<u8>,
    /// Base64 of the zip's SHA-256: Lambda's `CodeSha256`, so an unchanged handler is not deployed again.
    pub sha256: String,
    /// The files in the zip.
    pub files: Vec<String>,
    /// The handler is a shipped template, which handles records holding several lines.
    pub many_lines: bool,
}

/// The Python runtime setup deploys `.py` handlers on.
pub const PYTHON_RUNTIME: &str = "python3.12";
/// The Node.js runtime setup deploys `.js`/`.mjs`/`.cjs` handlers on.
pub const NODE_RUNTIME: &str = "nodejs20.x";
/// The OS-only runtime for a directory with a `bootstrap` (Rust, Go, scripts).
pub const PROVIDED_RUNTIME: &str = "provided.al2023";

/// Packages a handler: a `.py` file runs `<stem>.handler` on Python, a `.js`/`.mjs`/`.cjs` file `<stem>.handler`
/// on Node.js, a directory with an executable `bootstrap` runs that on `provided.al2023` (every file of the
/// directory is packaged).
pub fn package(path: &Path) -> Result<Package> {
    let bad = |why: &str| {
        Error::usage(format!("--transform `{}`: {why}", path.display()))
            .with_hint("give a handler file (.py, .js, .mjs, .cjs) or a directory with an executable `bootstrap`")
    };
    let (runtime, handler, files): (&'static str, String, Vec<(String, PathBuf)>) = if path.is_dir() {
        let bootstrap = path.join("bootstrap");
        if !is_executable(&bootstrap) {
            return Err(bad("the directory has no executable `bootstrap`"));
        }
        (PROVIDED_RUNTIME, "bootstrap".into(), walk(path)?)
    } else {
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| bad("not a file name"))?;
        let (stem, ext) = name.rsplit_once('.').ok_or_else(|| bad("the file has no extension"))?;
        let runtime = match ext {
            "py" => PYTHON_RUNTIME,
            "js" | "mjs" | "cjs" => NODE_RUNTIME,
            _ => return Err(bad(&format!("`.{ext}` is not a handler Lambda can run here"))),
        };
        (runtime, format!("{stem}.handler"), vec![(name.to_string(), path.to_path_buf())])
    };
    let zip = zip_files(&files).map_err(|e| Error::failed(format!("cannot package `{}`: {e}", path.display())))?;
    let sha256 = firehose_kit_domain::transform::code_sha256(&zip);
    let many_lines = !path.is_dir()
        && std::fs::read(path)
            .is_ok_and(|code| [APACHE_TO_JSON_PY, APACHE_TO_JSON_MJS].iter().any(|t| code == t.as_bytes()));
    Ok(Package { runtime, handler, zip, sha256, files: files.into_iter().map(|(n, _)| n).collect(), many_lines })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Every file under `dir`, by its path relative to it, sorted.
fn walk(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| Error::usage(format!("cannot read `{}`: {e}", d.display())))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::usage(format!("cannot read `{}`: {e}", d.display())))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push((rel.to_string_lossy().into_owned(), path.clone()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A zip of `files` with fixed timestamps and each file's mode: the same files give the same bytes (and so the
/// same `CodeSha256`).
fn zip_files(files: &[(String, PathBuf)]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    for (name, path) in files {
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        let options = zip::write::SimpleFileOptions::default()
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(mode | 0o444);
        w.start_file(name.as_str(), options).map_err(std::io::Error::other)?;
        w.write_all(&std::fs::read(path)?)?;
    }
    w.finish().map_err(std::io::Error::other)?;
    Ok(out.into_inner())
}

/// The function (and its execution role) setup deploys for a stream.
pub fn function_name(stream: &str) -> Result<String> {
    crate::settings::derived_name(
        stream,
        "transform",
        "function name",
        "Lambda",
        ", or deploy the function yourself and pass its ARN",
    )
}

/// The execution role's trust: Lambda only.
pub fn exec_trust_policy() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
}

/// The execution role's one permission: writing the function's own log group.
pub fn exec_policy(partition: &str, region: &str, account_id: &str, function: &str) -> Value {
    let group = format!("arn:{partition}:logs:{region}:{account_id}:log-group:/aws/lambda/{function}");
    json!({"Version": "2012-10-17", "Statement": [{"Sid": "FunctionLogs", "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [group.clone(), format!("{group}:*")]}]})
}

/// The name of the execution role's inline policy.
pub const EXEC_POLICY_NAME: &str = "firehose-kit-transform-logs";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_python_file_is_packaged_deterministically() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("apache_to_json.py");
        std::fs::write(&file, "def handler(e, c):\n    return e\n").unwrap();
        let a = package(&file).unwrap();
        assert_eq!(
            (a.runtime, a.handler.as_str(), a.files.clone()),
            (PYTHON_RUNTIME, "apache_to_json.handler", vec!["apache_to_json.py".to_string()])
        );
        let b = package(&file).unwrap();
        assert_eq!(a.sha256, b.sha256, "the same file gives the same CodeSha256");
        std::fs::write(&file, "def handler(e, c):\n    return {}\n").unwrap();
        assert_ne!(package(&file).unwrap().sha256, a.sha256);
    }

    #[test]
    fn a_directory_needs_an_executable_bootstrap() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bootstrap"), "#!/bin/sh\n").unwrap();
        let err = package(dir.path()).unwrap_err();
        assert!(err.to_string().contains("no executable `bootstrap`"), "{err}");
        std::fs::set_permissions(dir.path().join("bootstrap"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("lib/data.txt"), "x").unwrap();
        let p = package(dir.path()).unwrap();
        assert_eq!(
            (p.runtime, p.files.clone()),
            (PROVIDED_RUNTIME, vec!["bootstrap".to_string(), "lib/data.txt".to_string()])
        );
    }

    #[test]
    fn sources_are_paths_or_function_arns() {
        assert!(matches!(Source::parse("arn:aws:lambda:us-east-1:123456789012:function:f"), Ok(Source::Arn(_))));
        assert!(Source::parse("arn:aws:s3:::bucket").is_err());
        let err = Source::parse("/no/such/handler.py").unwrap_err();
        assert!(err.to_string().contains("no such file"), "{err}");
        assert!(package(Path::new("Cargo.toml")).unwrap_err().to_string().contains("`.toml`"));
    }
}
