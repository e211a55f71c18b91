//! The data dir's own files: `format.json` (which format wrote it, refused when newer than this emulator reads)
//! and `emulator.lock` (one emulator per data dir).

use std::path::Path;

use super::StartError;
use firehose_kit_domain::util::persist::Durability;

/// The data dir's format (`<data dir>/format.json`). 1: the first releases (no `format.json`); 2: journals in
/// batches with marks, stage progress with names, Lambda answers journaled. An emulator reads every older format
/// and writes its own once it has opened the data dir.
pub const DATA_FORMAT: u32 = 2;

#[derive(serde::Serialize, serde::Deserialize)]
struct DataFormat {
    format: u32,
    /// The firehose-kit version that last wrote the data dir.
    written_by: String,
}

/// Refuses a data dir of a format newer than this emulator reads.
pub(crate) fn check_format(dir: &Path) -> Result<(), StartError> {
    let found: Option<DataFormat> = firehose_kit_domain::util::persist::read_json(&dir.join("format.json"))
        .map_err(|source| StartError::DataDir { path: dir.join("format.json"), source })?;
    match found {
        Some(f) if f.format > DATA_FORMAT => Err(StartError::NewerFormat { dir: dir.to_path_buf(), found: f.format }),
        _ => Ok(()),
    }
}

/// Records that the data dir is now of this emulator's format.
pub(crate) fn write_format(dir: &Path, durability: Durability) -> std::io::Result<()> {
    let format = DataFormat { format: DATA_FORMAT, written_by: env!("CARGO_PKG_VERSION").to_string() };
    firehose_kit_domain::util::persist::write_json_as(&dir.join("format.json"), &format, durability)
}

/// The data dir's lock (`<data dir>/emulator.lock`), held while the emulator runs: an OS lock, released when the
/// process ends however it ends, so a crash never leaves it behind.
pub(crate) struct DataDirLock(firehose_kit_domain::util::persist::HolderLock);

impl DataDirLock {
    pub(crate) fn take(dir: &Path) -> Result<Self, StartError> {
        use firehose_kit_domain::util::persist::{HolderLock, TryLock};
        let path = dir.join("emulator.lock");
        match HolderLock::try_take(&path).map_err(|source| StartError::DataDir { path: path.clone(), source })? {
            TryLock::Taken(lock) => Ok(DataDirLock(lock)),
            TryLock::Busy { holder, .. } => {
                let holder = if holder.is_empty() { "starting up".to_string() } else { holder };
                Err(StartError::InUse { dir: dir.to_path_buf(), holder })
            }
        }
    }

    /// Says who holds the lock (read by a second emulator that is refused it).
    pub(crate) fn announce(&self, holder: &str) {
        self.0.announce(holder);
    }
}
