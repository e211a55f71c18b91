//! The runs verify compares against: named by --run/--manifest or the latest one, the runs they resumed, and
//! the lines or hashes send kept of each (or the files given with --expect).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::delivery::compare::Expected;
use crate::delivery::objects::read_file_lines;
use crate::error::{Error, Result};
use crate::pipeline::manifest::{self, Destination, RunManifest, line_hash, read_hashes};
use crate::settings::{Global, VerifySettings};
use crate::ui::Reporter;

use super::Run;

/// The manifests named by `--manifest` and `--run` (each once, however often given).
pub(super) fn named_runs(global: &Global, s: &VerifySettings) -> Result<Vec<Run>> {
    let mut runs: Vec<Run> = Vec::new();
    let mut add = |m: RunManifest, dir: PathBuf| {
        if !runs.iter().any(|(r, _)| r.run_id == m.run_id) {
            runs.push((m, dir));
        }
    };
    for path in &s.manifests {
        let m = RunManifest::load(path)?;
        add(m, path.parent().map(Path::to_path_buf).unwrap_or_default());
    }
    if let Some(id) = &s.run {
        let path = RunManifest::path(&global.state_dir, id);
        if !path.exists() {
            return Err(Error::usage(format!(
                "no run `{id}` in `{}`",
                manifest::runs_dir(&global.state_dir).display()
            ))
            .with_hint(format!(
                "list runs with `ls {}`, or use --manifest FILE",
                manifest::runs_dir(&global.state_dir).display()
            )));
        }
        add(RunManifest::load(&path)?, manifest::runs_dir(&global.state_dir));
    }
    Ok(runs)
}

/// The latest run of the stream to its current instance (`destination`); a run that went elsewhere (another
/// endpoint, region or account, or the stream before it was re-created) would prove nothing here.
pub(super) fn latest_run(global: &Global, destination: &Destination, reporter: &dyn Reporter) -> Result<Run> {
    let (found, list) = manifest::latest_run_to(&global.state_dir, &global.stream, destination);
    if let Some(w) = list.warning() {
        reporter.warn(&w);
    }
    let dir = manifest::runs_dir(&global.state_dir);
    match found {
        Ok(run) => Ok((run, dir)),
        Err(elsewhere) => {
            let mut err = Error::usage(format!(
                "no send run to `{}` ({}) in `{}`",
                global.stream,
                destination.describe(),
                dir.display()
            ));
            if let Some(other) = elsewhere {
                let to = other
                    .destination
                    .as_ref()
                    .map(Destination::describe)
                    .unwrap_or_else(|| other.endpoint.clone().unwrap_or_else(|| format!("AWS {}", other.region)));
                err = Error::usage(format!(
                    "{err}: the latest run of `{}`, {}, went to {to}",
                    global.stream, other.run_id
                ));
            }
            Err(err.with_hint(format!(
                "send something to it first (`{}`), name a run with --run or --manifest, or compare with the files you sent with --expect",
                global.command("send --generate 10000"),
            )))
        }
    }
}

/// Adds the runs each run resumed (following `resumed_from` through the manifests beside it), each once.
pub(super) fn with_ancestors(mut runs: Vec<Run>) -> Result<Vec<Run>> {
    let mut i = 0;
    while i < runs.len() {
        let (parents, dir) = (runs[i].0.resumed_from.clone(), runs[i].1.clone());
        for id in parents {
            let path = dir.join(format!("{id}.json"));
            if !runs.iter().any(|(r, _)| r.run_id == id) && path.exists() {
                runs.push((RunManifest::load(&path)?, dir.clone()));
            }
        }
        i += 1;
    }
    runs.sort_by(|a, b| a.0.started.cmp(&b.0.started).then_with(|| a.0.run_id.cmp(&b.0.run_id)));
    Ok(runs)
}

/// Groups runs into producers: runs linked by `resumed_from` (a send and the sends that resumed it) are one
/// producer's lines, whatever order or how often they were named; different producers' lines add up.
pub(super) fn chains(runs: &[Run]) -> Vec<Vec<usize>> {
    let mut group: Vec<usize> = (0..runs.len()).collect();
    fn root(group: &mut [usize], mut i: usize) -> usize {
        while group[i] != i {
            group[i] = group[group[i]];
            i = group[i];
        }
        i
    }
    for (i, (run, _)) in runs.iter().enumerate() {
        for parent in &run.resumed_from {
            if let Some(j) = runs.iter().position(|(r, _)| &r.run_id == parent) {
                let (a, b) = (root(&mut group, i), root(&mut group, j));
                group[a] = b;
            }
        }
    }
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut roots: Vec<usize> = Vec::new();
    for i in 0..runs.len() {
        let r = root(&mut group, i);
        match roots.iter().position(|&x| x == r) {
            Some(k) => out[k].push(i),
            None => {
                roots.push(r);
                out.push(vec![i]);
            }
        }
    }
    out
}

/// The expected multiset from run manifests (hash files beside them): within a chain a line both runs
/// acknowledged counts once (per line the larger count), across chains counts add up.
pub(super) fn expected_from_runs(runs: &[Run]) -> Result<Expected> {
    let mut all: Option<Expected> = None;
    for chain in chains(runs) {
        let mut group: Option<Expected> = None;
        for i in chain {
            let (m, dir) = &runs[i];
            let run = Expected::from_hashes(read_hashes(&dir.join(format!("{}.hashes", m.run_id)))?);
            group = Some(match group {
                None => run,
                Some(earlier) => Expected::resumed(earlier, run),
            });
        }
        if let Some(group) = group {
            all = Some(match all {
                None => group,
                Some(other) => Expected::sum(other, group),
            });
        }
    }
    Ok(all.unwrap_or_default())
}

/// The longest buffering interval Firehose allows: a run's lines can be delivered this long after it ended.
const LONGEST_INTERVAL: chrono::Duration = chrono::Duration::seconds(900);

/// Lets `expected` meet the lines of the stream's other runs to this destination (not compared, but whose
/// objects can be delivered in the window from `window_start`): a line each run sent is delivered once per run,
/// and a copy that is another run's is not a duplicate. A run whose hashes cannot be read is skipped.
pub(super) fn allow_other_runs(
    global: &Global,
    stream: &str,
    here: &Destination,
    runs: &[RunManifest],
    window_start: DateTime<Utc>,
    expected: &mut Expected,
) {
    let dir = manifest::runs_dir(&global.state_dir);
    for other in manifest::all_runs(&global.state_dir).runs {
        let compared = runs.iter().any(|r| r.run_id == other.run_id);
        let here_too = other.destination.as_ref().is_some_and(|d| d.same_stream(here));
        let last = other.ended.unwrap_or_else(Utc::now);
        if compared || other.stream != stream || !here_too || last + LONGEST_INTERVAL < window_start {
            continue;
        }
        if let Ok(hashes) = read_hashes(&dir.join(format!("{}.hashes", other.run_id))) {
            expected.allow_other_runs(hashes);
        }
    }
}

/// The sent lines themselves (a transformed stream): from `--expect` files, or what send kept of each run.
pub(super) fn sent_lines(global: &Global, s: &VerifySettings, runs: &[Run]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if !s.expect.is_empty() {
        for path in &s.expect {
            let raw = std::fs::read(path).map_err(|source| Error::Input { path: path.clone(), source })?;
            let text = decompressed(&raw).unwrap_or_default();
            out.extend(text.split(|b| *b == b'\n').map(<[u8]>::to_vec));
        }
        return Ok(out);
    }
    // Within a chain of resumed runs a line both acknowledged counts once (the larger count), as for the hashes.
    for chain in chains(runs) {
        let mut counts: std::collections::HashMap<Vec<u8>, (usize, usize)> = std::collections::HashMap::new();
        for i in chain {
            let mut this: std::collections::HashMap<Vec<u8>, usize> = std::collections::HashMap::new();
            for line in run_lines(global, &runs[i])? {
                *this.entry(line).or_default() += 1;
            }
            for (line, n) in this {
                let next = counts.len();
                let entry = counts.entry(line).or_insert((0, next));
                entry.0 = entry.0.max(n);
            }
        }
        let mut lines: Vec<(Vec<u8>, (usize, usize))> = counts.into_iter().collect();
        lines.sort_by_key(|(_, (_, first))| *first);
        for (line, (n, _)) in lines {
            out.extend(std::iter::repeat_n(line, n));
        }
    }
    Ok(out)
}

/// What send kept of one run's acknowledged lines.
pub(super) fn run_lines(global: &Global, (m, dir): &Run) -> Result<Vec<Vec<u8>>> {
    let path = dir.join(format!("{}.lines.gz", m.run_id));
    if !path.exists() {
        return Err(Error::usage(format!(
            "run {} kept no lines (`{}`): verify cannot predict what the transformation delivers",
            m.run_id,
            path.display()
        ))
        .with_hint(format!(
            "send again (send keeps the lines when the stream transforms), or give the sent files: `{}`",
            global.command("verify --expect FILE")
        )));
    }
    manifest::read_lines_file(&path)
}

/// The expected multiset from source files.
pub(super) fn expected_from_files(files: &[PathBuf]) -> Result<Expected> {
    let mut hashes = Vec::new();
    for path in files {
        let file = std::fs::File::open(path).map_err(|source| Error::Input { path: path.clone(), source })?;
        read_file_lines(file, None, &mut |h| hashes.extend_from_slice(h))
            .map_err(|source| Error::Input { path: path.clone(), source })?;
    }
    Ok(Expected::from_hashes(hashes))
}

/// Prints (up to `max`) expected lines that did not arrive, as `file:line: text`.
pub(super) fn missing_lines(files: &[PathBuf], expected: &mut Expected, max: usize) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for path in files {
        let raw = std::fs::read(path).map_err(|source| Error::Input { path: path.clone(), source })?;
        let Some(text) = decompressed(&raw) else { continue };
        for (n, line) in text.split(|b| *b == b'\n').enumerate() {
            if out.len() >= max {
                return Ok(out);
            }
            if expected.take_missing(line_hash(line) as u64) {
                out.push(format!("{}:{}: {}", path.display(), n + 1, String::from_utf8_lossy(line)));
            }
        }
    }
    Ok(out)
}

/// The text of a source file (gunzipped when it is gzip), without its final newline.
pub(super) fn decompressed(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    read_file_lines(raw, Some(&mut out), &mut |_| {}).ok()?;
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    Some(out)
}
