//! What a stream's delivery role may do right now, read through IAM and S3 and evaluated with
//! [`crate::firehose::access`] (the same evaluation the emulator applies to each delivery): whether the role
//! exists and trusts Firehose, and for each permission delivery needs, allowed or not and why. `verify` uses it
//! to name the action a role lacks behind `S3.AccessDenied`; `doctor` to check any stream, whoever made it.

use serde::Serialize;

use super::{Clients, decode_policy_document, s3, sdk_error};
use crate::error::Result;
use crate::firehose::access::{self, Decision, Need, Policy, Request};

/// One needed permission and the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    pub action: String,
    pub resource: String,
    pub for_what: &'static str,
    pub allowed: bool,
    /// Why not, when not allowed.
    pub reason: Option<String>,
}

/// A role as delivery needs it.
#[derive(Debug, Clone, Serialize)]
pub struct RoleAccess {
    pub role_arn: String,
    pub exists: bool,
    pub trusts_firehose: bool,
    pub grants: Vec<Grant>,
    /// Condition operators or managed policies the evaluation could not read or does not model.
    pub not_evaluated: Vec<String>,
}

impl RoleAccess {
    /// The needed permissions the role lacks.
    pub fn lacking(&self) -> impl Iterator<Item = &Grant> {
        self.grants.iter().filter(|g| !g.allowed)
    }
}

fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// The role's identity policies (inline, and the default versions of attached managed ones).
async fn identity_policies(clients: &Clients, role: &str, not_evaluated: &mut Vec<String>) -> Result<Vec<Policy>> {
    let iam = &clients.iam;
    let mut docs = Vec::new();
    let names = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .map_err(|e| sdk_error(format!("list policies of role `{role}`"), e))?;
    for name in names.policy_names() {
        let out = iam
            .get_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
            .map_err(|e| sdk_error(format!("read policy `{name}` of role `{role}`"), e))?;
        docs.push((name.clone(), decode_policy_document(out.policy_document())));
    }
    let attached = iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .map_err(|e| sdk_error(format!("list attached policies of role `{role}`"), e))?;
    for p in attached.attached_policies() {
        let Some(arn) = p.policy_arn() else { continue };
        let version = match iam.get_policy().policy_arn(arn).send().await {
            Ok(out) => out.policy().and_then(|p| p.default_version_id()).map(str::to_string),
            Err(_) => None,
        };
        let doc = match version {
            Some(v) => iam
                .get_policy_version()
                .policy_arn(arn)
                .version_id(v)
                .send()
                .await
                .ok()
                .and_then(|out| out.policy_version().and_then(|pv| pv.document()).map(decode_policy_document)),
            None => None,
        };
        match doc {
            Some(doc) => docs.push((arn.to_string(), doc)),
            None => not_evaluated.push(format!("attached policy {arn} (its document could not be read)")),
        }
    }
    let mut policies = Vec::new();
    for (name, doc) in docs {
        match Policy::parse(&doc) {
            Ok(p) => {
                not_evaluated.extend(p.unmodelled().into_iter().map(|op| format!("{op} conditions in {name}")));
                policies.push(p);
            }
            Err(e) => not_evaluated.push(format!("policy {name}: {e}")),
        }
    }
    Ok(policies)
}

/// Evaluates `needs` for the role of `account_id` (the caller's, already known), with the bucket's policy (when
/// the bucket exists and has one).
pub async fn role_access(
    clients: &Clients,
    account_id: &str,
    role_arn: &str,
    bucket: &str,
    needs: &[Need],
) -> Result<RoleAccess> {
    let role = role_name(role_arn);
    let mut not_evaluated = Vec::new();
    let Some(info) = super::iam::get_role(&clients.iam, role).await? else {
        return Ok(RoleAccess {
            role_arn: role_arn.into(),
            exists: false,
            trusts_firehose: false,
            grants: needs
                .iter()
                .map(|n| Grant {
                    action: n.action.clone(),
                    resource: n.resource.clone(),
                    for_what: n.for_what,
                    allowed: false,
                    reason: Some("the role does not exist".into()),
                })
                .collect(),
            not_evaluated,
        });
    };
    let trusts_firehose = Policy::parse(&info.trust_policy)
        .is_ok_and(|t| access::trusts_service(&t, "firehose.amazonaws.com", account_id));
    let identity = identity_policies(clients, role, &mut not_evaluated).await?;
    let bucket_policy = match s3::bucket_state(&clients.s3, bucket).await? {
        s3::BucketState::Exists => s3::bucket_policy(&clients.s3, bucket).await?.and_then(|d| Policy::parse(&d).ok()),
        _ => None,
    };
    let context = access::delivery_context(role_arn, account_id);
    let grants = needs
        .iter()
        .map(|n| {
            let req = Request { action: &n.action, resource: &n.resource, principal: role_arn, context: &context };
            let resource_policy = if n.action.starts_with("s3:") { bucket_policy.as_ref() } else { None };
            let decision = access::evaluate(&identity, resource_policy, &req);
            let reason = match &decision {
                Decision::Allow => None,
                Decision::ImplicitDeny => Some("no statement of the role's policies allows it".to_string()),
                Decision::ExplicitDeny { sid, in_resource_policy } => Some(format!(
                    "denied by statement {} of the {}",
                    sid.as_deref().unwrap_or("(no Sid)"),
                    if *in_resource_policy { "bucket policy" } else { "role's policies" }
                )),
            };
            Grant {
                action: n.action.clone(),
                resource: n.resource.clone(),
                for_what: n.for_what,
                allowed: decision.allowed(),
                reason,
            }
        })
        .collect();
    Ok(RoleAccess { role_arn: role_arn.into(), exists: true, trusts_firehose, grants, not_evaluated })
}
