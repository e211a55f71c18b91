//! Where IAM's state lives between runs: `<data-dir>/iam/roles.json` and `policies.json`, each rewritten
//! atomically after every change that touches it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use firehose_kit_domain::util::persist;

use super::model::{ManagedPolicy, Role, State};
use crate::query::QueryError;

pub(super) struct Store {
    roles: PathBuf,
    policies: PathBuf,
}

impl Store {
    /// Opens (creating) `dir` and reads the state saved there; an empty state for a new directory.
    pub(super) fn open(dir: &Path) -> std::io::Result<(Store, State)> {
        std::fs::create_dir_all(dir)?;
        let store = Store { roles: dir.join("roles.json"), policies: dir.join("policies.json") };
        let state = State {
            roles: persist::read_json(&store.roles)?.unwrap_or_default(),
            policies: persist::read_json(&store.policies)?.unwrap_or_default(),
        };
        Ok((store, state))
    }

    pub(super) fn save_roles(&self, roles: &BTreeMap<String, Role>) -> Result<(), QueryError> {
        persist::write_json(&self.roles, roles).map_err(failure)
    }

    pub(super) fn save_policies(&self, policies: &BTreeMap<String, ManagedPolicy>) -> Result<(), QueryError> {
        persist::write_json(&self.policies, policies).map_err(failure)
    }
}

fn failure(e: std::io::Error) -> QueryError {
    QueryError::new(500, "ServiceFailure", format!("cannot persist IAM state: {e}"))
}
