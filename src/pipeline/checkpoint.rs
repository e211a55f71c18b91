//! Resume points for `send`: per input file, the offset up to which every byte is acknowledged by Firehose,
//! even when batches complete out of order, and the file's identity so a rotated or replaced file is never
//! resumed at a stale offset; and [`plan_resume`], which decides where each input of a new send starts.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::manifest::Destination;
use super::position::{AckedRange, FileIdentity};
use super::reader::{Input, Source};
use crate::error::{Error, Result};
use crate::ui::format_count;
use crate::util::persist::{self, HolderLock, TryLock};

/// `<state-dir>/checkpoints/<hash of destination and canonical path>.json`: a file sent to another stream, or
/// to a same-named stream in another region, account or emulator, or to a stream re-created since, is another
/// send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub stream: String,
    pub path: PathBuf,
    pub identity: FileIdentity,
    /// Every byte before this offset (of the decompressed stream for `.gz` inputs) is acknowledged.
    pub offset: u64,
    /// Lines before `offset`.
    pub lines: u64,
    /// The run that acknowledged them.
    pub run_id: String,
    /// Ranges after `offset` acknowledged too (out of order), skipped by a resumed send.
    #[serde(default)]
    pub ahead: Vec<AckedRange>,
    /// The stream instance that acknowledged them (absent in checkpoints of older versions, which are not
    /// trusted).
    #[serde(default)]
    pub destination: Option<Destination>,
}

/// Where the checkpoint of `canonical` sent to `destination` lives (its lock has the same name in the locks
/// directory, with `.lock`).
fn checkpoint_path(dir: &Path, destination: &Destination, canonical: &Path) -> PathBuf {
    let mut key = b"v2\0".to_vec();
    key.extend_from_slice(destination.key().as_bytes());
    key.push(0);
    key.extend_from_slice(canonical.as_os_str().as_encoded_bytes());
    dir.join(format!("{:016x}.json", xxhash_rust::xxh3::xxh3_64(&key)))
}

/// Where versions before destinations filed a checkpoint: by stream name and path only.
fn legacy_path(dir: &Path, stream: &str, canonical: &Path) -> PathBuf {
    let mut key = stream.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(canonical.as_os_str().as_encoded_bytes());
    dir.join(format!("{:016x}.json", xxhash_rust::xxh3::xxh3_64(&key)))
}

fn read(path: &Path, canonical: &Path) -> Result<Option<Checkpoint>> {
    persist::read_json(path).map_err(|e| Error::Failed {
        message: format!("checkpoint `{}` of `{}` is unreadable: {e}", path.display(), canonical.display()),
        hint: Some("delete it, or pass --from-start to send the file from its first line".into()),
    })
}

impl Checkpoint {
    /// The checkpoint of `canonical` for `destination`, if one was saved.
    pub fn load(dir: &Path, destination: &Destination, canonical: &Path) -> Result<Option<Checkpoint>> {
        let cp = read(&checkpoint_path(dir, destination, canonical), canonical)?;
        Ok(cp.filter(|c| c.path == canonical && c.destination.as_ref().is_some_and(|d| d.same_stream(destination))))
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let destination = self.destination.as_ref().expect("checkpoints are saved with their destination");
        std::fs::create_dir_all(dir).map_err(|e| Error::state("create", dir, e))?;
        let path = checkpoint_path(dir, destination, &self.path);
        persist::write_json(&path, self).map_err(|e| Error::state("write checkpoint", path, e))
    }

    /// Other checkpoints of `canonical` for a stream named `stream`: for another destination, or from a version
    /// that did not record one (returned with their files).
    fn elsewhere(dir: &Path, stream: &str, canonical: &Path) -> Vec<(PathBuf, Checkpoint)> {
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| read(&p, canonical).ok().flatten().map(|cp| (p, cp)))
            .filter(|(_, cp)| cp.path == canonical && cp.stream == stream)
            .collect()
    }
}

/// Holds the lock of one (destination, input) pair: a second send of the same file to the same stream waits
/// until the first is done, then resumes after what it acknowledged. It is an OS lock on `<checkpoint>.lock`,
/// released when this is dropped or the process dies, so a crash never leaves a stale lock.
#[derive(Debug)]
pub struct InputLock {
    _lock: HolderLock,
}

/// What a lock attempt found.
pub enum Locked {
    Now(InputLock),
    /// Another process holds it: what its lock file says about it (`pid 1234, run …`).
    Busy {
        holder: String,
        file: std::fs::File,
    },
}

/// Tries to lock the checkpoint of `canonical` for `destination` (the lock files live in `locks_dir`, beside the
/// checkpoints directory).
pub fn try_lock_input(locks_dir: &Path, destination: &Destination, canonical: &Path, run_id: &str) -> Result<Locked> {
    std::fs::create_dir_all(locks_dir).map_err(|e| Error::state("create", locks_dir, e))?;
    let path = checkpoint_path(locks_dir, destination, canonical).with_extension("lock");
    match HolderLock::try_take(&path).map_err(|e| Error::state("lock", path.clone(), e))? {
        TryLock::Taken(lock) => {
            lock.announce(&holder_text(run_id));
            Ok(Locked::Now(InputLock { _lock: lock }))
        }
        TryLock::Busy { holder, file } => {
            Ok(Locked::Busy { holder: if holder.is_empty() { "another send".into() } else { holder }, file })
        }
    }
}

/// Waits (blocking) for a busy lock.
pub fn wait_for_lock(file: std::fs::File, run_id: &str) -> Result<InputLock> {
    let lock = HolderLock::wait(file).map_err(|e| Error::state("lock", PathBuf::from("checkpoint lock"), e))?;
    lock.announce(&holder_text(run_id));
    Ok(InputLock { _lock: lock })
}

/// Who holds a checkpoint lock, for whoever waits for it.
fn holder_text(run_id: &str) -> String {
    format!("pid {}, run {run_id}", std::process::id())
}

/// What a send starts from: the inputs left to send (resumed ones from their checkpoint), and what to tell the
/// user about each.
#[derive(Debug, Default)]
pub struct ResumePlan {
    pub inputs: Vec<Input>,
    /// Inputs resumed mid-file.
    pub resumed: Vec<String>,
    /// Runs whose acknowledged lines the resumed inputs continue (the run manifest records them for `verify`).
    pub resumed_from: Vec<String>,
    /// Inputs already sent in full (skipped).
    pub already_sent: Vec<String>,
    /// One line per input whose plan is not "from the start", or that was sent before somewhere else.
    pub notes: Vec<String>,
}

/// Decides where each input starts: files resume after their checkpoint for `destination` when the file is still
/// the one the checkpoint was taken from; a file sent in full is skipped (unless followed); `from_start` ignores
/// checkpoints. A checkpoint for another destination (another endpoint, region or account, or the stream before
/// it was re-created) or one that does not say where its lines went never skips anything: the file is sent in
/// full, with a note. Standard input and the generator always start at the beginning.
pub fn plan_resume(
    inputs: Vec<Input>,
    checkpoints_dir: &Path,
    destination: &Destination,
    stream: &str,
    from_start: bool,
    follow: bool,
) -> Result<ResumePlan> {
    let mut plan = ResumePlan::default();
    for mut input in inputs {
        let Source::File { path, gzip } = &input.source else {
            plan.inputs.push(input);
            continue;
        };
        if from_start {
            plan.inputs.push(input);
            continue;
        }
        let canonical = std::fs::canonicalize(path).map_err(|source| Error::Input { path: path.clone(), source })?;
        let Some(cp) = Checkpoint::load(checkpoints_dir, destination, &canonical)? else {
            plan.notes.extend(note_elsewhere(checkpoints_dir, stream, destination, &canonical, &input.name));
            plan.inputs.push(input);
            continue;
        };
        if !cp.identity.still_matches(path).unwrap_or(false) {
            plan.notes.push(format!(
                "{}: changed since its checkpoint (rotated or rewritten); sending it from the start",
                input.name
            ));
            plan.inputs.push(input);
            continue;
        }
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if !gzip && cp.offset >= size && !follow {
            plan.notes.push(format!(
                "{}: already sent ({} lines acknowledged by run {}); nothing to do (--from-start sends it again)",
                input.name,
                format_count(cp.lines),
                cp.run_id
            ));
            plan.already_sent.push(input.name.clone());
            continue;
        }
        if cp.offset > 0 || !cp.ahead.is_empty() {
            plan.notes.push(format!(
                "{}: resuming after line {} (byte {}), acknowledged by run {}",
                input.name,
                format_count(cp.lines),
                format_count(cp.offset),
                cp.run_id
            ));
            input.start_offset = cp.offset;
            input.start_lines = cp.lines;
            input.acked = cp.ahead.clone();
            plan.resumed.push(input.name.clone());
            if !plan.resumed_from.contains(&cp.run_id) {
                plan.resumed_from.push(cp.run_id.clone());
            }
        }
        plan.inputs.push(input);
    }
    Ok(plan)
}

/// Why a file with no checkpoint for `destination` is sent in full although it was sent before: to another
/// destination, to this stream before it was re-created, or by a version that did not record where (that
/// checkpoint is removed once it has been reported, so it is said once).
fn note_elsewhere(dir: &Path, stream: &str, destination: &Destination, canonical: &Path, name: &str) -> Option<String> {
    let legacy = legacy_path(dir, stream, canonical);
    if let Ok(Some(cp)) = read(&legacy, canonical)
        && cp.destination.is_none()
    {
        let _ = std::fs::remove_file(&legacy);
        return Some(format!(
            "{name}: its checkpoint (run {}) was written by an older firehose-kit that did not record which stream instance acknowledged the lines; not trusted, so the file is sent in full (and that checkpoint removed)",
            cp.run_id
        ));
    }
    let others = Checkpoint::elsewhere(dir, stream, canonical);
    let (_, cp) = others.iter().filter(|(_, cp)| cp.destination.is_some()).max_by_key(|(_, cp)| cp.run_id.clone())?;
    let other = cp.destination.as_ref()?;
    Some(if other.recreated(destination) {
        format!(
            "{name}: its checkpoint (run {}) belongs to `{stream}` as it was before it was deleted and created again; sending it in full to the new stream",
            cp.run_id
        )
    } else {
        format!(
            "{name}: sent before to {} (run {}), never to this stream: sending it in full",
            other.describe(),
            cp.run_id
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::position::identity;

    fn dest(arn: &str, created: i64) -> Destination {
        Destination {
            stream_arn: format!("arn:aws:firehose:{arn}"),
            stream_created: chrono::DateTime::from_timestamp(created, 0),
            endpoint: None,
        }
    }

    #[test]
    fn checkpoints_round_trip_per_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.log");
        std::fs::write(&file, b"abc\n").unwrap();
        let cp = Checkpoint {
            stream: "S".into(),
            path: file.clone(),
            identity: identity(&file).unwrap(),
            offset: 4,
            lines: 1,
            run_id: "r".into(),
            ahead: Vec::new(),
            destination: Some(dest("S", 1)),
        };
        let cps = dir.path().join("cps");
        cp.save(&cps).unwrap();
        assert_eq!(Checkpoint::load(&cps, &dest("S", 1), &file).unwrap(), Some(cp));
        assert_eq!(Checkpoint::load(&cps, &dest("S", 1), &dir.path().join("y.log")).unwrap(), None);
        assert_eq!(Checkpoint::load(&cps, &dest("Other", 1), &file).unwrap(), None, "per stream");
        assert_eq!(Checkpoint::load(&cps, &dest("S", 2), &file).unwrap(), None, "per stream instance");
    }

    #[test]
    fn resume_plans_follow_the_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let cps = dir.path().join("cps");
        let (full, half, fresh) =
            (dir.path().join("full.log"), dir.path().join("half.log"), dir.path().join("new.log"));
        for p in [&full, &half, &fresh] {
            std::fs::write(p, b"a\nb\n").unwrap();
        }
        for (p, offset) in [(&full, 4), (&half, 2)] {
            let canonical = std::fs::canonicalize(p).unwrap();
            let cp = Checkpoint {
                stream: "S".into(),
                path: canonical.clone(),
                identity: identity(&canonical).unwrap(),
                offset,
                lines: offset / 2,
                run_id: "r1".into(),
                ahead: Vec::new(),
                destination: Some(dest("S", 1)),
            };
            cp.save(&cps).unwrap();
        }
        let input = |p: &Path| Input::new(p.display().to_string(), Source::File { path: p.to_path_buf(), gzip: false });
        let all = || vec![input(&full), input(&half), input(&fresh), Input::new("stdin".into(), Source::Stdin)];
        let plan = plan_resume(all(), &cps, &dest("S", 1), "S", false, false).unwrap();
        assert_eq!(plan.already_sent, vec![full.display().to_string()]);
        assert_eq!(plan.resumed, vec![half.display().to_string()]);
        assert_eq!(plan.resumed_from, vec!["r1".to_string()]);
        assert_eq!(plan.inputs.iter().map(|i| i.start_offset).collect::<Vec<_>>(), vec![2, 0, 0]);
        assert_eq!(plan.notes.len(), 2);
        let plan = plan_resume(all(), &cps, &dest("S", 1), "S", true, false).unwrap();
        assert_eq!((plan.inputs.len(), plan.notes.len()), (4, 0), "--from-start ignores checkpoints");
        // The same stream re-created, or another region: everything is sent, and the notes say why.
        let plan = plan_resume(all(), &cps, &dest("S", 2), "S", false, false).unwrap();
        assert_eq!((plan.inputs.len(), plan.already_sent.len()), (4, 0));
        assert!(plan.notes.iter().all(|n| n.contains("deleted and created again")), "{:?}", plan.notes);
        let mut eu = dest("S", 1);
        eu.stream_arn = "arn:aws:firehose:eu-west-1:000000000000:deliverystream/S".into();
        let plan = plan_resume(all(), &cps, &eu, "S", false, false).unwrap();
        assert_eq!(plan.inputs.iter().map(|i| i.start_offset).collect::<Vec<_>>(), vec![0, 0, 0, 0]);
        assert!(plan.notes.iter().all(|n| n.contains("never to this stream")), "{:?}", plan.notes);
        // A corrupt checkpoint is an error that names it and says how to go on.
        for entry in std::fs::read_dir(&cps).unwrap() {
            std::fs::write(entry.unwrap().path(), b"{not json").unwrap();
        }
        let err = plan_resume(all(), &cps, &dest("S", 1), "S", false, false).unwrap_err();
        assert!(err.to_string().contains("unreadable") && err.hint().unwrap().contains("--from-start"), "{err}");
    }

    #[test]
    fn a_checkpoint_without_a_destination_is_reported_once_and_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let cps = dir.path().join("cps");
        std::fs::create_dir_all(&cps).unwrap();
        let file = std::fs::canonicalize(dir.path()).unwrap().join("a.log");
        std::fs::write(&file, b"a\nb\n").unwrap();
        let legacy = serde_json::json!({
            "stream": "S", "path": file, "identity": identity(&file).unwrap(), "offset": 4, "lines": 2, "run_id": "old",
        });
        std::fs::write(legacy_path(&cps, "S", &file), legacy.to_string()).unwrap();
        let input = || Input::new("a.log".into(), Source::File { path: file.clone(), gzip: false });
        let plan = plan_resume(vec![input()], &cps, &dest("S", 1), "S", false, false).unwrap();
        assert_eq!(plan.inputs[0].start_offset, 0, "sent in full");
        assert!(plan.notes[0].contains("older firehose-kit"), "{:?}", plan.notes);
        let plan = plan_resume(vec![input()], &cps, &dest("S", 1), "S", false, false).unwrap();
        assert!(plan.notes.is_empty(), "said once: {:?}", plan.notes);
    }

    #[test]
    fn a_second_lock_of_one_input_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.log");
        let Locked::Now(first) = try_lock_input(dir.path(), &dest("S", 1), &file, "r1").unwrap() else {
            panic!("the first lock is free")
        };
        let Locked::Busy { holder, file: waiting } = try_lock_input(dir.path(), &dest("S", 1), &file, "r2").unwrap()
        else {
            panic!("the second must wait")
        };
        assert!(holder.contains("run r1") && holder.contains(&std::process::id().to_string()), "{holder}");
        assert!(
            matches!(try_lock_input(dir.path(), &dest("S", 2), &file, "r3").unwrap(), Locked::Now(_)),
            "other stream"
        );
        drop(first);
        wait_for_lock(waiting, "r2").unwrap();
    }
}
