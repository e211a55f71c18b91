//! IAM's state (roles with their inline and attached policies; customer-managed policies with their versions),
//! the rules its inputs must meet, and the errors IAM answers with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::query::QueryError;

/// The most tags IAM keeps on one role.
pub(super) const MAX_TAGS: usize = 50;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Role {
    pub name: String,
    pub path: String,
    pub role_id: String,
    pub created_ms: i64,
    /// When the trust policy last changed (create or UpdateAssumeRolePolicy): propagation counts from here.
    pub trust_changed_ms: i64,
    pub assume_role_policy: String,
    pub description: Option<String>,
    pub max_session_duration: i64,
    pub tags: Vec<(String, String)>,
    pub policies: BTreeMap<String, String>,
    /// ARNs of the managed policies attached to the role (customer-managed, or AWS-managed by name).
    #[serde(default)]
    pub attached: Vec<String>,
}

/// A customer-managed policy and its versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ManagedPolicy {
    pub name: String,
    pub path: String,
    pub policy_id: String,
    pub description: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub default_version: String,
    /// (version id, document, created ms), oldest first.
    pub versions: Vec<(String, String, i64)>,
    pub tags: Vec<(String, String)>,
}

impl ManagedPolicy {
    /// The document of the default version.
    pub fn document(&self) -> Option<&str> {
        self.versions.iter().find(|(id, _, _)| *id == self.default_version).map(|(_, doc, _)| doc.as_str())
    }
}

/// Everything IAM knows, behind one lock.
#[derive(Debug, Default)]
pub(super) struct State {
    /// Roles by name (IAM is global: one namespace per account).
    pub roles: BTreeMap<String, Role>,
    /// Customer-managed policies by ARN.
    pub policies: BTreeMap<String, ManagedPolicy>,
}

impl State {
    pub fn role(&self, name: &str) -> Result<&Role, QueryError> {
        self.roles.get(name).ok_or_else(|| no_such_role(name))
    }

    pub fn role_mut(&mut self, name: &str) -> Result<&mut Role, QueryError> {
        self.roles.get_mut(name).ok_or_else(|| no_such_role(name))
    }

    pub fn policy(&self, arn: &str) -> Result<&ManagedPolicy, QueryError> {
        self.policies.get(arn).ok_or_else(|| no_such_policy(arn))
    }

    /// How many roles have the policy `arn` attached.
    pub fn attachments(&self, arn: &str) -> usize {
        self.roles.values().filter(|r| r.attached.iter().any(|a| a == arn)).count()
    }
}

/// An id as IAM makes them: a four-letter kind (`AROA` role, `ANPA` policy) and 17 upper-case characters.
pub(super) fn new_id(kind: &str) -> String {
    format!("{kind}{}", &uuid::Uuid::new_v4().simple().to_string().to_uppercase()[..17])
}

pub(super) fn no_such_role(name: &str) -> QueryError {
    QueryError::new(404, "NoSuchEntity", format!("The role with name {name} cannot be found."))
}

pub(super) fn no_such_policy(arn: &str) -> QueryError {
    QueryError::new(404, "NoSuchEntity", format!("Policy {arn} does not exist or is not attachable."))
}

pub(super) fn no_such_role_policy(policy_name: &str) -> QueryError {
    QueryError::new(404, "NoSuchEntity", format!("The role policy with name {policy_name} cannot be found."))
}

pub(super) fn delete_conflict(message: &str) -> QueryError {
    QueryError::new(409, "DeleteConflict", message.into())
}

pub(super) fn too_many_tags() -> QueryError {
    QueryError::new(400, "LimitExceeded", format!("The number of tags exceeds {MAX_TAGS}."))
}

/// Role and policy names: 1 to 64 of `[\w+=,.@-]`.
pub(super) fn validate_name(name: &str) -> Result<(), QueryError> {
    let ok = (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(QueryError::new(
            400,
            "ValidationError",
            format!(
                "1 validation error detected: Value '{name}' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ and have length between 1 and 64"
            ),
        ))
    }
}

/// A policy document must at least be a JSON object.
pub(super) fn validate_document(doc: &str) -> Result<(), QueryError> {
    match serde_json::from_str::<serde_json::Value>(doc) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        _ => Err(QueryError::new(400, "MalformedPolicyDocument", "Syntax errors in policy.".into())),
    }
}

/// The documents of the few AWS-managed policies a delivery role plausibly carries; others are unknown.
pub(super) fn aws_managed_document(arn: &str) -> Option<&'static str> {
    match arn.rsplit('/').next()? {
        "AdministratorAccess" => Some(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#),
        "AmazonS3FullAccess" => {
            Some(r#"{"Statement":[{"Effect":"Allow","Action":["s3:*","s3-object-lambda:*"],"Resource":"*"}]}"#)
        }
        "CloudWatchLogsFullAccess" => Some(r#"{"Statement":[{"Effect":"Allow","Action":"logs:*","Resource":"*"}]}"#),
        _ => None,
    }
}
