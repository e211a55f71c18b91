//! IAM calls for the delivery role: read, create, keep its trust and inline policy as rendered, and remove it.

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;

use super::{decode_policy_document, sdk_error};
use crate::error::{Error, Result};

/// A role as firehose-kit needs to see it.
#[derive(Debug, Clone)]
pub struct RoleInfo {
    pub arn: String,
    /// Decoded trust policy document.
    pub trust_policy: String,
    pub tags: Vec<(String, String)>,
}

pub async fn get_role(iam: &Client, name: &str) -> Result<Option<RoleInfo>> {
    match iam.get_role().role_name(name).send().await {
        Ok(out) => {
            let Some(role) = out.role() else {
                return Ok(None);
            };
            let mut tags: Vec<(String, String)> =
                role.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
            if tags.is_empty() {
                // GetRole returns tags on AWS; some emulators only answer ListRoleTags.
                tags = role_tags(iam, name).await?;
            }
            Ok(Some(RoleInfo {
                arn: role.arn().to_string(),
                trust_policy: role.assume_role_policy_document().map(decode_policy_document).unwrap_or_default(),
                tags,
            }))
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(None),
        Err(e) => Err(sdk_error(format!("read role `{name}`"), e)),
    }
}

async fn role_tags(iam: &Client, name: &str) -> Result<Vec<(String, String)>> {
    let out = iam
        .list_role_tags()
        .role_name(name)
        .send()
        .await
        .map_err(|e| sdk_error(format!("read tags of role `{name}`"), e))?;
    Ok(out.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())
}

fn tag_list(tags: &[(String, String)]) -> Result<Vec<Tag>> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder().key(k).value(v).build().map_err(|e| Error::failed(format!("cannot build tag `{k}`: {e}")))
        })
        .collect()
}

/// Creates the delivery role; returns its ARN.
pub async fn create_role(iam: &Client, name: &str, trust_policy: &str, tags: &[(String, String)]) -> Result<String> {
    let description = "Lets Amazon Data Firehose deliver to the firehose-kit bucket (created by firehose-kit setup)";
    create_role_described(iam, name, trust_policy, tags, description).await
}

/// Creates a role with `description`; returns its ARN.
pub async fn create_role_described(
    iam: &Client,
    name: &str,
    trust_policy: &str,
    tags: &[(String, String)],
    description: &str,
) -> Result<String> {
    let out = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust_policy)
        .description(description)
        .set_tags(Some(tag_list(tags)?))
        .send()
        .await
        .map_err(|e| sdk_error(format!("create role `{name}`"), e))?;
    Ok(out.role().map(|r| r.arn().to_string()).unwrap_or_default())
}

pub async fn update_trust(iam: &Client, name: &str, trust_policy: &str) -> Result<()> {
    iam.update_assume_role_policy()
        .role_name(name)
        .policy_document(trust_policy)
        .send()
        .await
        .map_err(|e| sdk_error(format!("update the trust policy of role `{name}`"), e))?;
    Ok(())
}

pub async fn tag_role(iam: &Client, name: &str, tags: &[(String, String)]) -> Result<()> {
    iam.tag_role()
        .role_name(name)
        .set_tags(Some(tag_list(tags)?))
        .send()
        .await
        .map_err(|e| sdk_error(format!("tag role `{name}`"), e))?;
    Ok(())
}

/// The decoded inline policy, `None` when the role has no policy of that name.
pub async fn get_role_policy(iam: &Client, role: &str, policy: &str) -> Result<Option<String>> {
    match iam.get_role_policy().role_name(role).policy_name(policy).send().await {
        Ok(out) => Ok(Some(decode_policy_document(out.policy_document()))),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(None),
        Err(e) => Err(sdk_error(format!("read policy `{policy}` of role `{role}`"), e)),
    }
}

pub async fn put_role_policy(iam: &Client, role: &str, policy: &str, document: &str) -> Result<()> {
    iam.put_role_policy()
        .role_name(role)
        .policy_name(policy)
        .policy_document(document)
        .send()
        .await
        .map_err(|e| sdk_error(format!("put policy `{policy}` on role `{role}`"), e))?;
    Ok(())
}

/// Removes the role's inline and attached policies, then the role; `false` when it was already gone.
pub async fn delete_role(iam: &Client, name: &str) -> Result<bool> {
    let policies = match iam.list_role_policies().role_name(name).send().await {
        Ok(out) => out.policy_names().to_vec(),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => {
            return Ok(false);
        }
        Err(e) => return Err(sdk_error(format!("list policies of role `{name}`"), e)),
    };
    for policy in policies {
        iam.delete_role_policy()
            .role_name(name)
            .policy_name(&policy)
            .send()
            .await
            .map_err(|e| sdk_error(format!("delete policy `{policy}` of role `{name}`"), e))?;
    }
    let attached = iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| sdk_error(format!("list attached policies of role `{name}`"), e))?;
    for policy in attached.attached_policies() {
        if let Some(arn) = policy.policy_arn() {
            iam.detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| sdk_error(format!("detach policy `{arn}` from role `{name}`"), e))?;
        }
    }
    match iam.delete_role().role_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(false),
        Err(e) => Err(sdk_error(format!("delete role `{name}`"), e)),
    }
}
