//! send's inputs: FILE arguments expanded (globs, `-`, the generator), each file's checkpoint locked for the
//! destination, and the bytes left to read.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::pipeline::checkpoint::{InputLock, Locked, try_lock_input, wait_for_lock};
use crate::pipeline::manifest::Destination;
use crate::pipeline::reader::{Input, Source};
use crate::settings::SendSettings;
use crate::ui::Reporter;

/// Expands FILE arguments (globs, `-`) into inputs; every problem is a usage error before anything is sent.
pub fn resolve_inputs(s: &SendSettings) -> Result<Vec<Input>> {
    if let Some(lines) = s.generate {
        return Ok(vec![Input::new("generated".into(), Source::Generate { lines, seed: s.seed })]);
    }
    let mut inputs = Vec::new();
    for arg in &s.inputs {
        if arg == "-" {
            inputs.push(Input::new("stdin".into(), Source::Stdin));
            continue;
        }
        let paths: Vec<PathBuf> = if arg.contains(['*', '?', '[']) {
            let matches =
                glob::glob(arg).map_err(|e| Error::usage(format!("`{arg}` is not a valid glob pattern: {e}")))?;
            let mut found: Vec<PathBuf> = matches.filter_map(|m| m.ok()).filter(|p| p.is_file()).collect();
            found.sort();
            if found.is_empty() {
                return Err(Error::usage(format!("no files match `{arg}`")));
            }
            found
        } else {
            vec![PathBuf::from(arg)]
        };
        for path in paths {
            let meta = std::fs::metadata(&path).map_err(|source| Error::Input { path: path.clone(), source })?;
            if meta.is_dir() {
                return Err(Error::usage(format!("`{}` is a directory: expected a file", path.display()))
                    .with_hint(format!("to send the files in it, use a glob: `{}/*.log`", path.display())));
            }
            let gzip = path.extension().is_some_and(|e| e == "gz");
            inputs.push(Input::new(path.display().to_string(), Source::File { path, gzip }));
        }
    }
    Ok(inputs)
}

/// Locks the checkpoint of every file input for `destination`, in path order (two sends with overlapping inputs
/// cannot deadlock). A file another send is sending to this stream is waited for, with a note naming it; Ctrl-C
/// while waiting stops the send before anything is sent.
pub(super) async fn lock_inputs(
    inputs: &[Input],
    dir: &std::path::Path,
    destination: &Destination,
    run_id: &str,
    stream: &str,
    reporter: &dyn Reporter,
    stop: &CancellationToken,
) -> Result<Vec<InputLock>> {
    let mut files: Vec<(PathBuf, &str)> = inputs
        .iter()
        .filter_map(|i| match &i.source {
            Source::File { path, .. } => std::fs::canonicalize(path).ok().map(|p| (p, i.name.as_str())),
            _ => None,
        })
        .collect();
    files.sort();
    files.dedup_by(|a, b| a.0 == b.0);
    let mut locks = Vec::with_capacity(files.len());
    for (path, name) in files {
        match try_lock_input(dir, destination, &path, run_id)? {
            Locked::Now(lock) => locks.push(lock),
            Locked::Busy { holder, file } => {
                reporter.note(&format!(
                    "{name}: another send to `{stream}` is sending it ({holder}); waiting for it to finish, then sending what it did not"
                ));
                let id = run_id.to_string();
                let wait = tokio::task::spawn_blocking(move || wait_for_lock(file, &id));
                tokio::select! {
                    lock = wait => locks.push(lock.map_err(|e| Error::failed(format!("waiting for the lock of `{name}` failed: {e}")))??),
                    _ = stop.cancelled() => return Err(Error::Interrupted),
                }
            }
        }
    }
    Ok(locks)
}

/// Bytes left to read in the plain files among `inputs` (unknown when any input is not a plain file).
pub(super) fn bytes_to_send(inputs: &[Input]) -> Option<u64> {
    inputs
        .iter()
        .map(|i| match &i.source {
            Source::File { path, gzip: false } => {
                std::fs::metadata(path).ok().map(|m| m.len().saturating_sub(i.start_offset))
            }
            _ => None,
        })
        .sum()
}
