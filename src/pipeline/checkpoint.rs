//! Resume points for `send`: per input file, the offset up to which every byte is acknowledged by Firehose,
//! even when batches complete out of order, and the file's identity so a rotated or replaced file is never
//! resumed at a stale offset; and [`plan_resume`], which decides where each input of a new send starts.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::reader::{Input, Source};
use crate::error::{Error, Result};
use crate::ui::format_count;
use crate::util::persist;

/// Tracks acknowledged byte ranges of one input and the contiguous prefix they form.
#[derive(Debug, Clone)]
pub struct AckTracker {
    /// Everything before this offset is acknowledged.
    contiguous: u64,
    /// Lines before `contiguous`.
    lines: u64,
    /// Acknowledged ranges after `contiguous`: start → (end, lines).
    ahead: BTreeMap<u64, (u64, u64)>,
}

impl AckTracker {
    pub fn new(start: u64, lines: u64) -> Self {
        AckTracker { contiguous: start, lines, ahead: BTreeMap::new() }
    }

    /// Marks `[start, end)`, holding `lines` lines, acknowledged. Ranges never overlap (each byte is sent once
    /// per run), so a range either extends the prefix or waits in `ahead`.
    pub fn complete(&mut self, start: u64, end: u64, lines: u64) {
        if end <= self.contiguous {
            return;
        }
        if start == self.contiguous {
            self.contiguous = end;
            self.lines += lines;
        } else {
            self.ahead.insert(start, (end, lines));
        }
        // Absorb ranges that now touch the contiguous prefix.
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() != self.contiguous {
                break;
            }
            let (end, lines) = entry.remove();
            self.contiguous = end;
            self.lines += lines;
        }
    }

    pub fn contiguous(&self) -> u64 {
        self.contiguous
    }

    /// Lines before [`AckTracker::contiguous`].
    pub fn lines(&self) -> u64 {
        self.lines
    }
}

/// Identifies a file across runs: device + inode, and a hash of its first bytes (catches a file replaced in
/// place or truncated and rewritten).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
    pub head_len: u64,
    pub head_hash: String,
}

const HEAD_BYTES: u64 = 4096;

pub fn identity(path: &Path) -> std::io::Result<FileIdentity> {
    let meta = std::fs::metadata(path)?;
    let (dev, ino) = dev_ino(&meta);
    let head_len = meta.len().min(HEAD_BYTES);
    let head_hash = head_hash(path, head_len)?;
    Ok(FileIdentity { dev, ino, head_len, head_hash })
}

#[cfg(unix)]
fn dev_ino(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn dev_ino(_meta: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

fn head_hash(path: &Path, len: u64) -> std::io::Result<String> {
    let mut buf = vec![0u8; len as usize];
    std::fs::File::open(path)?.read_exact(&mut buf)?;
    Ok(format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&buf)))
}

impl FileIdentity {
    /// Whether `path` is still the file this identity was taken from (it may have grown).
    pub fn still_matches(&self, path: &Path) -> std::io::Result<bool> {
        let meta = std::fs::metadata(path)?;
        if dev_ino(&meta) != (self.dev, self.ino) || meta.len() < self.head_len {
            return Ok(false);
        }
        Ok(head_hash(path, self.head_len)? == self.head_hash)
    }
}

/// `<state-dir>/checkpoints/<hash of stream and canonical path>.json`: a file sent to another stream is
/// another send.
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
}

fn checkpoint_path(dir: &Path, stream: &str, canonical: &Path) -> PathBuf {
    let mut key = stream.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(canonical.as_os_str().as_encoded_bytes());
    dir.join(format!("{:016x}.json", xxhash_rust::xxh3::xxh3_64(&key)))
}

impl Checkpoint {
    pub fn load(dir: &Path, stream: &str, canonical: &Path) -> Result<Option<Checkpoint>> {
        let path = checkpoint_path(dir, stream, canonical);
        let cp: Option<Checkpoint> = persist::read_json(&path).map_err(|e| Error::Failed {
            message: format!("checkpoint `{}` of `{}` is unreadable: {e}", path.display(), canonical.display()),
            hint: Some("delete it, or pass --from-start to send the file from its first line".into()),
        })?;
        Ok(cp.filter(|c| c.path == canonical && c.stream == stream))
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::state("create", dir, e))?;
        let path = checkpoint_path(dir, &self.stream, &self.path);
        persist::write_json(&path, self).map_err(|e| Error::state("write checkpoint", path, e))
    }
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
    /// One line per input whose plan is not "from the start".
    pub notes: Vec<String>,
}

/// Decides where each input starts: files resume after their checkpoint for `stream` when the file is still the
/// one the checkpoint was taken from; a file sent in full is skipped (unless followed); `from_start` ignores
/// checkpoints. Standard input and the generator always start at the beginning.
pub fn plan_resume(
    inputs: Vec<Input>,
    checkpoints_dir: &Path,
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
        let Some(cp) = Checkpoint::load(checkpoints_dir, stream, &canonical)? else {
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
        if cp.offset > 0 {
            plan.notes.push(format!(
                "{}: resuming after line {} (byte {}), acknowledged by run {}",
                input.name,
                format_count(cp.lines),
                format_count(cp.offset),
                cp.run_id
            ));
            input.start_offset = cp.offset;
            input.start_lines = cp.lines;
            plan.resumed.push(input.name.clone());
            if !plan.resumed_from.contains(&cp.run_id) {
                plan.resumed_from.push(cp.run_id.clone());
            }
        }
        plan.inputs.push(input);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_offset_advances_only_over_gapless_acks() {
        let mut t = AckTracker::new(100, 10);
        t.complete(200, 300, 5);
        assert_eq!(t.contiguous(), 100, "a gap before 200");
        t.complete(300, 350, 2);
        assert_eq!((t.contiguous(), t.lines()), (100, 10));
        t.complete(100, 200, 4);
        assert_eq!((t.contiguous(), t.lines()), (350, 21), "the gap filled: everything up to 350");
        t.complete(0, 50, 1);
        assert_eq!(t.contiguous(), 350, "old ranges change nothing");
        t.complete(400, 500, 1);
        t.complete(350, 400, 1);
        assert_eq!((t.contiguous(), t.lines()), (500, 23));
    }

    #[test]
    fn identity_survives_growth_but_not_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"line 1\n").unwrap();
        let id = identity(&path).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"line 2\n"))
            .unwrap();
        assert!(id.still_matches(&path).unwrap(), "appending keeps the identity");
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"other 1\nother 2\n").unwrap();
        assert!(!id.still_matches(&path).unwrap(), "a new file under the same name is not resumed");
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
        };
        cp.save(&dir.path().join("cps")).unwrap();
        assert_eq!(Checkpoint::load(&dir.path().join("cps"), "S", &file).unwrap(), Some(cp));
        assert_eq!(Checkpoint::load(&dir.path().join("cps"), "S", &dir.path().join("y.log")).unwrap(), None);
        assert_eq!(Checkpoint::load(&dir.path().join("cps"), "Other", &file).unwrap(), None, "per stream");
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
            };
            cp.save(&cps).unwrap();
        }
        let input = |p: &Path| Input {
            name: p.display().to_string(),
            source: Source::File { path: p.to_path_buf(), gzip: false },
            start_offset: 0,
            start_lines: 0,
        };
        let all = || {
            vec![
                input(&full),
                input(&half),
                input(&fresh),
                Input { name: "stdin".into(), source: Source::Stdin, start_offset: 0, start_lines: 0 },
            ]
        };
        let plan = plan_resume(all(), &cps, "S", false, false).unwrap();
        assert_eq!(plan.already_sent, vec![full.display().to_string()]);
        assert_eq!(plan.resumed, vec![half.display().to_string()]);
        assert_eq!(plan.resumed_from, vec!["r1".to_string()]);
        assert_eq!(plan.inputs.iter().map(|i| i.start_offset).collect::<Vec<_>>(), vec![2, 0, 0]);
        assert_eq!(plan.notes.len(), 2);
        let plan = plan_resume(all(), &cps, "S", true, false).unwrap();
        assert_eq!((plan.inputs.len(), plan.notes.len()), (4, 0), "--from-start ignores checkpoints");
        // A corrupt checkpoint is an error that names it and says how to go on.
        for entry in std::fs::read_dir(&cps).unwrap() {
            std::fs::write(entry.unwrap().path(), b"{not json").unwrap();
        }
        let err = plan_resume(all(), &cps, "S", false, false).unwrap_err();
        assert!(err.to_string().contains("unreadable") && err.hint().unwrap().contains("--from-start"), "{err}");
    }
}
