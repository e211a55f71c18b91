//! Where Lambda's state lives between runs: `<data-dir>/lambda/functions.json` (every function's configuration,
//! rewritten atomically after each change) and `<data-dir>/lambda/code/<region>/<name>/<sha256>/` (each
//! deployed zip, extracted with its file modes, beside the zip itself).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use firehose_kit_domain::util::persist;

use super::model::{Function, LambdaError};

/// The largest zip uploaded in the request (50 MB) and the largest unzipped code (250 MB), as Lambda's quotas.
pub const MAX_ZIP: usize = 50 * 1024 * 1024;
pub const MAX_UNZIPPED: u64 = 262_144_000;

pub(super) struct Store {
    dir: PathBuf,
}

/// A zip stored and extracted.
pub(super) struct Code {
    pub sha256_b64: String,
    pub id: String,
    pub size: u64,
}

impl Store {
    /// Opens (creating) `dir` and reads the functions saved there, keyed `region/name`.
    pub(super) fn open(dir: &Path) -> std::io::Result<(Store, BTreeMap<String, Function>)> {
        std::fs::create_dir_all(dir.join("code"))?;
        // Absolute: a function's process runs in its code directory, and finds its runtime loop from there.
        let store = Store { dir: std::fs::canonicalize(dir)? };
        let functions = persist::read_json(&store.dir.join("functions.json"))?.unwrap_or_default();
        Ok((store, functions))
    }

    pub(super) fn save(&self, functions: &BTreeMap<String, Function>) -> Result<(), LambdaError> {
        persist::write_json(&self.dir.join("functions.json"), functions).map_err(LambdaError::internal)
    }

    /// The directory a function's code is extracted in.
    pub(super) fn code_dir(&self, f: &Function) -> PathBuf {
        self.dir.join("code").join(&f.region).join(&f.name).join(&f.code_id)
    }

    /// Where the runtime loops shipped with the emulator are written.
    pub(super) fn runtimes_dir(&self) -> PathBuf {
        self.dir.join("runtimes")
    }

    /// Stores and extracts a zip for `region/name` (once per distinct zip).
    pub(super) fn put_code(&self, region: &str, name: &str, zip: &[u8]) -> Result<Code, LambdaError> {
        if zip.len() > MAX_ZIP {
            return Err(LambdaError::new(
                413,
                "RequestEntityTooLargeException",
                format!("Request must be smaller than {MAX_ZIP} bytes for the CreateFunction operation"),
            ));
        }
        let digest = firehose_kit_domain::util::hash::sha256(zip);
        let id = hex::encode(digest);
        let code = Code { sha256_b64: firehose_kit_domain::transform::code_sha256(zip), id, size: zip.len() as u64 };
        let root = self.dir.join("code").join(region).join(name);
        let target = root.join(&code.id);
        if target.is_dir() {
            return Ok(code);
        }
        std::fs::create_dir_all(&root).map_err(LambdaError::internal)?;
        let staging = tempfile::Builder::new().prefix(".unzip-").tempdir_in(&root).map_err(LambdaError::internal)?;
        extract(zip, staging.path())?;
        std::fs::write(root.join(format!("{}.zip", code.id)), zip).map_err(LambdaError::internal)?;
        std::fs::rename(staging.keep(), &target).map_err(LambdaError::internal)?;
        Ok(code)
    }

    /// The zip a function was deployed from.
    pub(super) fn zip(&self, f: &Function) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.dir.join("code").join(&f.region).join(&f.name).join(format!("{}.zip", f.code_id)))
    }

    /// Removes every stored version of a function's code.
    pub(super) fn remove_code(&self, region: &str, name: &str) {
        let _ = std::fs::remove_dir_all(self.dir.join("code").join(region).join(name));
    }
}

fn unzip_error() -> LambdaError {
    LambdaError::invalid("Could not unzip uploaded file. Please check your file, then try to upload again.")
}

/// Extracts `zip` under `dir`: only paths inside it, with the Unix modes the zip records (a `bootstrap` must be
/// executable, as on Lambda).
fn extract(zip: &[u8], dir: &Path) -> Result<(), LambdaError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(|_| unzip_error())?;
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|_| unzip_error())?;
        let Some(relative) = entry.enclosed_name() else {
            return Err(LambdaError::invalid(format!(
                "the zip holds a path outside its root: {}",
                String::from_utf8_lossy(entry.name_raw())
            )));
        };
        let path = dir.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&path).map_err(LambdaError::internal)?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(LambdaError::internal)?;
        }
        // Streamed to its file: what an entry unpacks to is never held in memory.
        let mut file = std::fs::File::create(&path).map_err(LambdaError::internal)?;
        let (mut limited, mut buf, mut written) =
            ((&mut entry).take(MAX_UNZIPPED - total + 1), vec![0u8; 64 * 1024], 0);
        loop {
            let n = limited.read(&mut buf).map_err(|_| unzip_error())?;
            if n == 0 {
                break;
            }
            std::io::Write::write_all(&mut file, &buf[..n]).map_err(LambdaError::internal)?;
            written += n as u64;
        }
        total += written;
        if total > MAX_UNZIPPED {
            return Err(LambdaError::invalid(format!("Unzipped size must be smaller than {MAX_UNZIPPED} bytes")));
        }
        #[cfg(unix)]
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o777))
                .map_err(LambdaError::internal)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn zip_of(files: &[(&str, &str, u32)]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut out);
        for (name, text, mode) in files {
            let opts = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
            w.start_file(*name, opts).unwrap();
            w.write_all(text.as_bytes()).unwrap();
        }
        w.finish().unwrap();
        out.into_inner()
    }

    #[test]
    fn code_is_extracted_with_its_modes_and_hashed_as_lambda_reports_it() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path()).unwrap();
        let zip = zip_of(&[("bootstrap", "#!/bin/sh\n", 0o755), ("lib/a.py", "x = 1\n", 0o644)]);
        let code = store.put_code("us-east-1", "f", &zip).unwrap();
        let expected = base64_simd::STANDARD.encode_to_string(firehose_kit_domain::util::hash::sha256(&zip));
        assert_eq!((code.sha256_b64, code.size), (expected, zip.len() as u64));
        let root = dir.path().join("code/us-east-1/f").join(&code.id);
        assert_eq!(std::fs::read_to_string(root.join("lib/a.py")).unwrap(), "x = 1\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(root.join("bootstrap")).unwrap().permissions().mode() & 0o777, 0o755);
        assert_eq!(
            store.put_code("us-east-1", "f", b"not a zip").err().unwrap().code,
            "InvalidParameterValueException"
        );
    }
}
