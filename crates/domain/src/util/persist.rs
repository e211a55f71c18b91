//! Crash-safe small-file persistence (emulator state, run manifests, checkpoints): write to a temporary file, then rename over the target.
//!
//! A rename is atomic on POSIX file systems, so a process killed at any point leaves either the old or the new
//! document, never a torn one. By default nothing is synced ([`Durability::Process`]): page-cache writes survive
//! a killed process. [`Durability::Machine`] (the emulator's `--fsync`) also survives a machine crash: the
//! file's data is synced before the rename and its directory after it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a write must survive before it returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// A killed process: the page cache keeps the data.
    #[default]
    Process,
    /// A machine crash or power loss: data and directory entries are synced to disk.
    Machine,
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_as(path, bytes, Durability::Process)
}

/// [`write_atomic`], synced as `durability` asks.
pub fn write_atomic_as(path: &Path, bytes: &[u8], durability: Durability) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if durability == Durability::Machine {
            file.sync_data()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if durability == Durability::Machine {
        sync_parent(path)?;
    }
    Ok(())
}

/// Syncs the directory holding `path` (its entries: a rename or a new file in it).
pub fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    write_json_as(path, value, Durability::Process)
}

/// [`write_json`], synced as `durability` asks.
pub fn write_json_as<T: Serialize>(path: &Path, value: &T, durability: Durability) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    write_atomic_as(path, &bytes, durability)
}

/// Reads a JSON document; `Ok(None)` when the file does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The temporary sibling used by [`write_atomic`]; unique per process and thread so concurrent writers of
/// different targets never collide.
pub fn tmp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let unique = uuid::Uuid::new_v4().simple();
    path.with_file_name(format!(".{name}.{unique}.tmp"))
}

/// Whether a directory entry is a leftover temporary file of [`write_atomic`].
pub fn is_tmp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// A lock file that says who holds it: an OS lock (released when the process ends however it ends) on
/// `path`, whose text names the holder for whoever is refused it.
#[derive(Debug)]
pub struct HolderLock {
    file: std::fs::File,
}

/// What [`HolderLock::try_take`] found.
pub enum TryLock {
    Taken(HolderLock),
    /// Someone holds it: what its file says (empty while the holder starts up), and the open file to wait on.
    Busy {
        holder: String,
        file: std::fs::File,
    },
}

impl HolderLock {
    /// Opens (creating) `path` and tries to lock it without waiting.
    pub fn try_take(path: &Path) -> std::io::Result<TryLock> {
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(TryLock::Taken(HolderLock { file })),
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(path).unwrap_or_default().trim().to_string();
                Ok(TryLock::Busy { holder, file })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Waits for a busy lock.
    pub fn wait(file: std::fs::File) -> std::io::Result<HolderLock> {
        file.lock()?;
        Ok(HolderLock { file })
    }

    /// Says who holds the lock (best effort: the lock itself is what counts).
    pub fn announce(&self, holder: &str) {
        use std::io::{Seek, Write};
        let mut f = &self.file;
        let _ = f.set_len(0).and_then(|_| f.seek(std::io::SeekFrom::Start(0))).and_then(|_| writeln!(f, "{holder}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_round_trips_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(read_json::<Vec<u32>>(&path).unwrap(), None);
        write_json(&path, &vec![1u32, 2, 3]).unwrap();
        write_json(&path, &vec![4u32]).unwrap();
        assert_eq!(read_json::<Vec<u32>>(&path).unwrap(), Some(vec![4]));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn corrupt_json_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, b"{not json").unwrap();
        let err = read_json::<Vec<u32>>(&path).unwrap_err();
        assert!(err.to_string().contains("bad.json"), "{err}");
    }
}
