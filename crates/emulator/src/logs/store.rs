//! Where CloudWatch Logs state lives on disk: `<dir>/meta.json` (groups, streams, retention, tags; rewritten by
//! the control-plane calls, which are rare) and one append-only file of JSON lines per log stream
//! (`<dir>/events/<group id>/<stream id>.jsonl`), so storing an event costs the same however many the stream
//! already holds — a day of delivery failures logs ~17,000 events per stream. A restart reads them back: a torn
//! last line (a kill in the middle of a write, never acknowledged) is cut off, and events past the group's
//! retention are dropped. A file is rewritten only when more of it has expired than is kept (amortised, the
//! cost per event stays constant). State written by older versions (`groups.json`, events inside) is moved
//! to this layout once.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::model::{Event, LogGroup, LogStream, State, Summary, cutoff};
use firehose_kit_domain::util::persist;

pub struct Store {
    dir: PathBuf,
}

fn id(text: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

impl Store {
    /// Opens the store in `dir` and reads everything back; `now` applies retention.
    pub fn open(dir: &Path, now: i64) -> std::io::Result<(Store, State)> {
        std::fs::create_dir_all(dir.join("events"))?;
        let store = Store { dir: dir.to_path_buf() };
        let mut state = match persist::read_json::<State>(&store.meta_path())? {
            Some(state) => state,
            None => store.migrate()?,
        };
        let mut max_seq = state.next_seq;
        for (key, group) in state.groups.iter_mut() {
            let from = cutoff(group.retention_ms(), now);
            for (name, stream) in group.streams.iter_mut() {
                let path = store.events_path(key, name);
                let events = read_events(&path)?;
                max_seq = max_seq.max(events.iter().map(|e| e.seq).max().unwrap_or(0));
                let kept: Vec<Event> = events.iter().filter(|e| e.timestamp >= from).cloned().collect();
                if kept.len() < events.len() {
                    write_events(&path, &kept)?;
                }
                stream.summary = Summary::default();
                kept.iter().for_each(|e| stream.summary.add(e));
            }
        }
        state.next_seq = max_seq;
        Ok((store, state))
    }

    fn meta_path(&self) -> PathBuf {
        self.dir.join("meta.json")
    }

    fn group_dir(&self, group_key: &str) -> PathBuf {
        self.dir.join("events").join(id(group_key))
    }

    fn events_path(&self, group_key: &str, stream: &str) -> PathBuf {
        self.group_dir(group_key).join(format!("{}.jsonl", id(stream)))
    }

    /// Writes groups and streams (not their events).
    pub fn save_meta(&self, state: &State) -> std::io::Result<()> {
        persist::write_json(&self.meta_path(), state)
    }

    /// Appends events to a stream's file.
    pub fn append(&self, group_key: &str, stream: &str, events: &[Event]) -> std::io::Result<()> {
        let path = self.events_path(group_key, stream);
        std::fs::create_dir_all(self.group_dir(group_key))?;
        let mut lines = Vec::with_capacity(events.len() * 160);
        for e in events {
            serde_json::to_writer(&mut lines, e)?;
            lines.push(b'\n');
        }
        std::fs::OpenOptions::new().create(true).append(true).open(path)?.write_all(&lines)
    }

    /// Replaces a stream's file with `events` (after expiry).
    pub fn rewrite(&self, group_key: &str, stream: &str, events: &[Event]) -> std::io::Result<()> {
        std::fs::create_dir_all(self.group_dir(group_key))?;
        write_events(&self.events_path(group_key, stream), events)
    }

    /// A stream's events at or after `from` (its retention's cutoff), in timestamp order, read from its file.
    pub fn read(&self, group_key: &str, stream: &str, from: i64) -> std::io::Result<Vec<Event>> {
        let mut events = read_events(&self.events_path(group_key, stream))?;
        events.retain(|e| e.timestamp >= from);
        Ok(events)
    }

    pub fn remove_stream(&self, group_key: &str, stream: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.events_path(group_key, stream)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn remove_group(&self, group_key: &str) -> std::io::Result<()> {
        match std::fs::remove_dir_all(self.group_dir(group_key)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Moves `groups.json` of older versions (events inside) to this layout; an empty state when there is none.
    fn migrate(&self) -> std::io::Result<State> {
        #[derive(Deserialize)]
        struct OldStream {
            created_ms: i64,
            #[serde(default)]
            events: Vec<Event>,
        }
        #[derive(Deserialize)]
        struct OldGroup {
            region: String,
            name: String,
            created_ms: i64,
            retention_days: Option<i32>,
            kms_key_id: Option<String>,
            tags: BTreeMap<String, String>,
            streams: BTreeMap<String, OldStream>,
        }
        #[derive(Deserialize)]
        struct Old {
            groups: BTreeMap<String, OldGroup>,
            next_seq: u64,
        }
        let old_path = self.dir.join("groups.json");
        let Some(old) = persist::read_json::<Old>(&old_path)? else { return Ok(State::default()) };
        let mut state = State { groups: BTreeMap::new(), next_seq: old.next_seq };
        for (key, g) in old.groups {
            let mut streams = BTreeMap::new();
            for (name, s) in g.streams {
                self.rewrite(&key, &name, &s.events)?;
                streams.insert(name, LogStream { created_ms: s.created_ms, ..Default::default() });
            }
            let group = LogGroup {
                region: g.region,
                name: g.name,
                created_ms: g.created_ms,
                retention_days: g.retention_days,
                kms_key_id: g.kms_key_id,
                tags: g.tags,
                streams,
            };
            state.groups.insert(key, group);
        }
        self.save_meta(&state)?;
        std::fs::remove_file(old_path)?;
        Ok(state)
    }
}

/// The events of a stream's file, in timestamp order; a torn last line is cut off the file.
fn read_events(path: &Path) -> std::io::Result<Vec<Event>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut events = Vec::new();
    let mut good = 0u64;
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        match serde_json::from_slice::<Event>(&line) {
            Ok(e) => events.push(e),
            Err(_) => break,
        }
        good += n as u64;
    }
    if good < std::fs::metadata(path)?.len() {
        tracing::warn!("{}: cutting a torn last event (written when the emulator was killed)", path.display());
        std::fs::OpenOptions::new().write(true).open(path)?.set_len(good)?;
    }
    events.sort_by_key(|e| (e.timestamp, e.seq));
    Ok(events)
}

fn write_events(path: &Path, events: &[Event]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(events.len() * 160);
    for e in events {
        serde_json::to_writer(&mut bytes, e)?;
        bytes.push(b'\n');
    }
    persist::write_atomic(path, &bytes)
}
