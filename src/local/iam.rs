//! IAM roles (the subset Firehose delivery needs) and STS `GetCallerIdentity`, over the Query protocol.
//!
//! Roles persist in `<data-dir>/iam/roles.json`. Policy documents are returned URL-encoded (RFC 3986) as AWS
//! does. Firehose asks [`Iam::check_assumable`] whether it may assume a role: the role must exist, trust
//! `firehose.amazonaws.com` (with a matching `sts:ExternalId` when the trust policy has one), and be older than
//! the configured propagation delay, which reproduces the race real IAM has after CreateRole.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use serde::{Deserialize, Serialize};

use super::query::{QueryError, QueryRequest, element, escape, success};
use super::s3::store::now_ms;
use crate::firehose::access::{self, Policy};
use crate::firehose::names::arn_partition;
use crate::util::persist;

const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Role {
    name: String,
    path: String,
    role_id: String,
    created_ms: i64,
    /// When the trust policy last changed (create or UpdateAssumeRolePolicy): propagation counts from here.
    trust_changed_ms: i64,
    assume_role_policy: String,
    description: Option<String>,
    max_session_duration: i64,
    tags: Vec<(String, String)>,
    policies: BTreeMap<String, String>,
    /// ARNs of the managed policies attached to the role (customer-managed, or AWS-managed by name).
    #[serde(default)]
    attached: Vec<String>,
}

/// A customer-managed policy and its versions (documents are stored, never evaluated).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManagedPolicy {
    name: String,
    path: String,
    policy_id: String,
    description: Option<String>,
    created_ms: i64,
    updated_ms: i64,
    default_version: String,
    /// (version id, document, created ms), oldest first.
    versions: Vec<(String, String, i64)>,
    tags: Vec<(String, String)>,
}

/// The emulator's IAM and STS.
pub struct Iam {
    path: PathBuf,
    policies_path: PathBuf,
    account_id: String,
    propagation_delay: Duration,
    roles: Mutex<BTreeMap<String, Role>>,
    /// Customer-managed policies by ARN (lock after `roles`).
    policies: Mutex<BTreeMap<String, ManagedPolicy>>,
}

fn iso8601(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn encode_document(doc: &str) -> String {
    percent_encoding::utf8_percent_encode(doc, RFC3986).to_string()
}

/// Characters left alone by RFC 3986 encoding: ALPHA / DIGIT / "-" / "." / "_" / "~".
const RFC3986: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Tags as IAM lists them: `<member><Key>..</Key><Value>..</Value></member>`...
fn tag_members(tags: &[(String, String)]) -> String {
    tags.iter().map(|(k, v)| format!("<member>{}{}</member>", element("Key", k), element("Value", v))).collect()
}

fn delete_conflict(message: &str) -> QueryError {
    QueryError::new(409, "DeleteConflict", message.into())
}

fn no_such_role(name: &str) -> QueryError {
    QueryError::new(404, "NoSuchEntity", format!("The role with name {name} cannot be found."))
}

fn validate_role_name(name: &str) -> Result<(), QueryError> {
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

fn validate_document(doc: &str) -> Result<(), QueryError> {
    match serde_json::from_str::<serde_json::Value>(doc) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        _ => Err(QueryError::new(400, "MalformedPolicyDocument", "Syntax errors in policy.".into())),
    }
}

impl Iam {
    pub fn open(dir: PathBuf, account_id: String, propagation_delay: Duration) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("roles.json");
        let roles = persist::read_json(&path)?.unwrap_or_default();
        let policies_path = dir.join("policies.json");
        let policies = persist::read_json(&policies_path)?.unwrap_or_default();
        Ok(Iam {
            path,
            policies_path,
            account_id,
            propagation_delay,
            roles: Mutex::new(roles),
            policies: Mutex::new(policies),
        })
    }

    fn save_policies(&self, policies: &BTreeMap<String, ManagedPolicy>) -> Result<(), QueryError> {
        persist::write_json(&self.policies_path, policies)
            .map_err(|e| QueryError::new(500, "ServiceFailure", format!("cannot persist IAM state: {e}")))
    }

    fn policy_xml(&self, arn: &str, p: &ManagedPolicy, attachments: usize) -> String {
        format!(
            "<Policy>{}{}{}{}{}{}{}{}{}{}</Policy>",
            element("PolicyName", &p.name),
            element("DefaultVersionId", &p.default_version),
            element("PolicyId", &p.policy_id),
            element("Path", &p.path),
            element("Arn", arn),
            element("AttachmentCount", &attachments.to_string()),
            element("IsAttachable", "true"),
            element("CreateDate", &iso8601(p.created_ms)),
            element("UpdateDate", &iso8601(p.updated_ms)),
            p.description.as_deref().map(|d| element("Description", d)).unwrap_or_default(),
        )
    }

    /// IAM's managed-policy, instance-profile and role-update calls (what infrastructure-as-code tools make
    /// around a role); `None` when `action` is not one of them.
    fn dispatch_more(
        &self,
        req: &QueryRequest,
        roles: &mut BTreeMap<String, Role>,
        partition: &str,
    ) -> Option<Result<String, QueryError>> {
        let no_such_policy = |arn: &str| {
            QueryError::new(404, "NoSuchEntity", format!("Policy {arn} does not exist or is not attachable."))
        };
        let attachments = |arn: &str, roles: &BTreeMap<String, Role>| {
            roles.values().filter(|r| r.attached.iter().any(|a| a == arn)).count()
        };
        let result = (|| -> Result<String, QueryError> {
            let mut policies = self.policies.lock().expect("iam lock");
            match req.action.as_str() {
                "CreatePolicy" => {
                    let name = req.required("PolicyName")?;
                    validate_role_name(name)?;
                    let doc = req.required("PolicyDocument")?;
                    validate_document(doc)?;
                    let path = req.get("Path").unwrap_or("/");
                    let arn = format!("arn:{partition}:iam::{}:policy{path}{name}", self.account_id);
                    if policies.contains_key(&arn) {
                        return Err(QueryError::new(
                            409,
                            "EntityAlreadyExists",
                            format!("A policy called {name} already exists. Duplicate names are not allowed."),
                        ));
                    }
                    let now = now_ms();
                    let policy = ManagedPolicy {
                        name: name.to_string(),
                        path: path.to_string(),
                        policy_id: format!("ANPA{}", &uuid::Uuid::new_v4().simple().to_string().to_uppercase()[..17]),
                        description: req.get("Description").map(str::to_string),
                        created_ms: now,
                        updated_ms: now,
                        default_version: "v1".into(),
                        versions: vec![("v1".into(), doc.to_string(), now)],
                        tags: req.tags("Tags"),
                    };
                    let xml = self.policy_xml(&arn, &policy, 0);
                    policies.insert(arn, policy);
                    self.save_policies(&policies)?;
                    Ok(xml)
                }
                "GetPolicy" => {
                    let arn = req.required("PolicyArn")?;
                    let p = policies.get(arn).ok_or_else(|| no_such_policy(arn))?;
                    Ok(self.policy_xml(arn, p, attachments(arn, roles)))
                }
                "ListPolicies" => {
                    let members: String = policies
                        .iter()
                        .map(|(arn, p)| {
                            self.policy_xml(arn, p, attachments(arn, roles))
                                .replacen("<Policy>", "<member>", 1)
                                .replace("</Policy>", "</member>")
                        })
                        .collect();
                    Ok(format!("<Policies>{members}</Policies><IsTruncated>false</IsTruncated>"))
                }
                "GetPolicyVersion" => {
                    let arn = req.required("PolicyArn")?;
                    let version = req.required("VersionId")?;
                    let p = policies.get(arn).ok_or_else(|| no_such_policy(arn))?;
                    let (id, doc, created) = p.versions.iter().find(|(id, _, _)| id == version).ok_or_else(|| {
                        QueryError::new(404, "NoSuchEntity", format!("Policy {arn} version {version} does not exist."))
                    })?;
                    Ok(format!(
                        "<PolicyVersion>{}{}{}{}</PolicyVersion>",
                        element("Document", &encode_document(doc)),
                        element("VersionId", id),
                        element("IsDefaultVersion", if *id == p.default_version { "true" } else { "false" }),
                        element("CreateDate", &iso8601(*created)),
                    ))
                }
                "ListPolicyVersions" => {
                    let arn = req.required("PolicyArn")?;
                    let p = policies.get(arn).ok_or_else(|| no_such_policy(arn))?;
                    let members: String = p
                        .versions
                        .iter()
                        .map(|(id, _, created)| {
                            format!(
                                "<member>{}{}{}</member>",
                                element("VersionId", id),
                                element("IsDefaultVersion", if *id == p.default_version { "true" } else { "false" }),
                                element("CreateDate", &iso8601(*created)),
                            )
                        })
                        .collect();
                    Ok(format!("<Versions>{members}</Versions><IsTruncated>false</IsTruncated>"))
                }
                "ListPolicyTags" => {
                    let arn = req.required("PolicyArn")?;
                    let p = policies.get(arn).ok_or_else(|| no_such_policy(arn))?;
                    Ok(format!("<Tags>{}</Tags><IsTruncated>false</IsTruncated>", tag_members(&p.tags)))
                }
                "DeletePolicy" => {
                    let arn = req.required("PolicyArn")?;
                    policies.get(arn).ok_or_else(|| no_such_policy(arn))?;
                    if attachments(arn, roles) > 0 {
                        return Err(delete_conflict("Cannot delete a policy attached to entities."));
                    }
                    policies.remove(arn);
                    self.save_policies(&policies)?;
                    Ok(String::new())
                }
                "AttachRolePolicy" | "DetachRolePolicy" => {
                    let name = req.required("RoleName")?;
                    let arn = req.required("PolicyArn")?;
                    // AWS-managed policies (`arn:<partition>:iam::aws:policy/...`) always exist.
                    let aws_managed = arn.contains(":iam::aws:policy/");
                    if !aws_managed && !policies.contains_key(arn) {
                        return Err(no_such_policy(arn));
                    }
                    let role = roles.get_mut(name).ok_or_else(|| no_such_role(name))?;
                    if req.action == "AttachRolePolicy" {
                        if !role.attached.iter().any(|a| a == arn) {
                            role.attached.push(arn.to_string());
                        }
                    } else {
                        let before = role.attached.len();
                        role.attached.retain(|a| a != arn);
                        if role.attached.len() == before {
                            return Err(QueryError::new(404, "NoSuchEntity", format!("Policy {arn} was not found.")));
                        }
                    }
                    self.save(roles)?;
                    Ok(String::new())
                }
                "ListAttachedRolePolicies" => {
                    let name = req.required("RoleName")?;
                    let role = roles.get(name).ok_or_else(|| no_such_role(name))?;
                    let members: String = role
                        .attached
                        .iter()
                        .map(|arn| {
                            let policy_name = arn.rsplit('/').next().unwrap_or(arn);
                            format!(
                                "<member>{}{}</member>",
                                element("PolicyName", policy_name),
                                element("PolicyArn", arn)
                            )
                        })
                        .collect();
                    Ok(format!("<AttachedPolicies>{members}</AttachedPolicies><IsTruncated>false</IsTruncated>"))
                }
                "ListInstanceProfilesForRole" => {
                    // Instance profiles are not modelled: a role is in none.
                    let name = req.required("RoleName")?;
                    roles.get(name).ok_or_else(|| no_such_role(name))?;
                    Ok("<InstanceProfiles></InstanceProfiles><IsTruncated>false</IsTruncated>".into())
                }
                "UpdateRoleDescription" => {
                    let name = req.required("RoleName")?;
                    let role = roles.get_mut(name).ok_or_else(|| no_such_role(name))?;
                    role.description = req.get("Description").map(str::to_string);
                    let xml = self.role_xml(role, partition);
                    self.save(roles)?;
                    Ok(xml)
                }
                "UpdateRole" => {
                    let name = req.required("RoleName")?;
                    let role = roles.get_mut(name).ok_or_else(|| no_such_role(name))?;
                    if let Some(d) = req.get("Description") {
                        role.description = Some(d.to_string());
                    }
                    if let Some(m) = req.get("MaxSessionDuration").and_then(|s| s.parse().ok()) {
                        role.max_session_duration = m;
                    }
                    self.save(roles)?;
                    Ok(String::new())
                }
                _ => Err(QueryError::new(400, "InvalidAction", String::new())),
            }
        })();
        match result {
            Err(e) if e.code == "InvalidAction" && e.message.is_empty() => None,
            other => Some(other),
        }
    }

    fn save(&self, roles: &BTreeMap<String, Role>) -> Result<(), QueryError> {
        persist::write_json(&self.path, roles)
            .map_err(|e| QueryError::new(500, "ServiceFailure", format!("cannot persist IAM state: {e}")))
    }

    /// A role's ARN in `partition` (`aws`, `aws-cn`, `aws-us-gov`: IAM is global within a partition).
    fn arn(&self, role: &Role, partition: &str) -> String {
        format!("arn:{partition}:iam::{}:role{}{}", self.account_id, role.path, role.name)
    }

    fn role_xml(&self, role: &Role, partition: &str) -> String {
        let tags = tag_members(&role.tags);
        format!(
            "<Role>{}{}{}{}{}{}{}{}{}</Role>",
            element("Path", &role.path),
            element("Arn", &self.arn(role, partition)),
            element("RoleName", &role.name),
            element("AssumeRolePolicyDocument", &encode_document(&role.assume_role_policy)),
            element("CreateDate", &iso8601(role.created_ms)),
            element("RoleId", &role.role_id),
            element("MaxSessionDuration", &role.max_session_duration.to_string()),
            role.description.as_deref().map(|d| element("Description", d)).unwrap_or_default(),
            if tags.is_empty() { String::new() } else { format!("<Tags>{tags}</Tags>") },
        )
    }

    /// Serves one IAM Query request.
    /// `region` is the request's signing region; it decides the partition of the ARNs returned.
    pub fn handle_iam(&self, query: Option<&str>, body: &[u8], region: &str, request_id: &str) -> Response<Bytes> {
        let partition = arn_partition(region);
        let result = QueryRequest::parse(query, body).and_then(|req| {
            let xml = self.dispatch(&req, partition)?;
            Ok(success(IAM_NS, &req.action, &xml, request_id))
        });
        result.unwrap_or_else(|e| e.into_response(IAM_NS, request_id))
    }

    fn dispatch(&self, req: &QueryRequest, partition: &str) -> Result<String, QueryError> {
        let mut roles = self.roles.lock().expect("iam lock");
        let role_name = || req.required("RoleName");
        match req.action.as_str() {
            "CreateRole" => {
                let name = role_name()?;
                validate_role_name(name)?;
                let doc = req.required("AssumeRolePolicyDocument")?;
                validate_document(doc)?;
                if roles.contains_key(name) {
                    return Err(QueryError::new(
                        409,
                        "EntityAlreadyExists",
                        format!("Role with name {name} already exists."),
                    ));
                }
                let tags = req.tags("Tags");
                if tags.len() > 50 {
                    return Err(QueryError::new(400, "LimitExceeded", "The number of tags exceeds 50.".into()));
                }
                let now = now_ms();
                let role = Role {
                    name: name.to_string(),
                    path: req.get("Path").unwrap_or("/").to_string(),
                    role_id: format!("AROA{}", &uuid::Uuid::new_v4().simple().to_string().to_uppercase()[..17]),
                    created_ms: now,
                    trust_changed_ms: now,
                    assume_role_policy: doc.to_string(),
                    description: req.get("Description").map(str::to_string),
                    max_session_duration: req.get("MaxSessionDuration").and_then(|s| s.parse().ok()).unwrap_or(3600),
                    tags,
                    policies: BTreeMap::new(),
                    attached: Vec::new(),
                };
                let xml = self.role_xml(&role, partition);
                roles.insert(name.to_string(), role);
                self.save(&roles)?;
                Ok(xml)
            }
            "GetRole" => {
                let name = role_name()?;
                let role = roles.get(name).ok_or_else(|| no_such_role(name))?;
                Ok(self.role_xml(role, partition))
            }
            "ListRoles" => {
                let members: String = roles
                    .values()
                    .map(|r| {
                        self.role_xml(r, partition).replacen("<Role>", "<member>", 1).replace("</Role>", "</member>")
                    })
                    .collect();
                Ok(format!("<Roles>{members}</Roles><IsTruncated>false</IsTruncated>"))
            }
            "DeleteRole" => {
                let name = role_name()?;
                let role = roles.get(name).ok_or_else(|| no_such_role(name))?;
                if !role.policies.is_empty() || !role.attached.is_empty() {
                    return Err(delete_conflict("Cannot delete entity, must delete policies first."));
                }
                roles.remove(name);
                self.save(&roles)?;
                Ok(String::new())
            }
            "UpdateAssumeRolePolicy" => {
                let name = role_name()?;
                let doc = req.required("PolicyDocument")?;
                validate_document(doc)?;
                let role = roles.get_mut(name).ok_or_else(|| no_such_role(name))?;
                role.assume_role_policy = doc.to_string();
                role.trust_changed_ms = now_ms();
                self.save(&roles)?;
                Ok(String::new())
            }
            "PutRolePolicy" => {
                let name = role_name()?;
                let policy_name = req.required("PolicyName")?;
                let doc = req.required("PolicyDocument")?;
                validate_document(doc)?;
                let role = roles.get_mut(name).ok_or_else(|| no_such_role(name))?;
                role.policies.insert(policy_name.to_string(), doc.to_string());
                self.save(&roles)?;
                Ok(String::new())
            }
            "GetRolePolicy" => {
                let name = role_name()?;
                let policy_name = req.required("PolicyName")?;
                let role = roles.get(name).ok_or_else(|| no_such_role(name))?;
                let doc = role.policies.get(policy_name).ok_or_else(|| {
                    QueryError::new(
                        404,
                        "NoSuchEntity",
                        format!("The role policy with name {policy_name} cannot be found."),
                    )
                })?;
                Ok(format!(
                    "{}{}{}",
                    element("RoleName", name),
                    element("PolicyName", policy_name),
                    element("PolicyDocument", &encode_document(doc))
                ))
            }
            "ListRolePolicies" => {
                let name = role_name()?;
                let role = roles.get(name).ok_or_else(|| no_such_role(name))?;
                let members: String = role.policies.keys().map(|p| element("member", p)).collect();
                Ok(format!("<PolicyNames>{members}</PolicyNames><IsTruncated>false</IsTruncated>"))
            }
            "DeleteRolePolicy" => {
                let name = role_name()?;
                let policy_name = req.required("PolicyName")?;
                let role = roles.get_mut(name).ok_or_else(|| no_such_role(name))?;
                if role.policies.remove(policy_name).is_none() {
                    return Err(QueryError::new(
                        404,
                        "NoSuchEntity",
                        format!("The role policy with name {policy_name} cannot be found."),
                    ));
                }
                self.save(&roles)?;
                Ok(String::new())
            }
            "TagRole" => {
                let name = role_name()?;
                let role = roles.get_mut(name).ok_or_else(|| no_such_role(name))?;
                for (k, v) in req.tags("Tags") {
                    match role.tags.iter_mut().find(|(key, _)| *key == k) {
                        Some(existing) => existing.1 = v,
                        None => role.tags.push((k, v)),
                    }
                }
                if role.tags.len() > 50 {
                    return Err(QueryError::new(400, "LimitExceeded", "The number of tags exceeds 50.".into()));
                }
                self.save(&roles)?;
                Ok(String::new())
            }
            "UntagRole" => {
                let name = role_name()?;
                let keys = req.members("TagKeys");
                let role = roles.get_mut(name).ok_or_else(|| no_such_role(name))?;
                role.tags.retain(|(k, _)| !keys.contains(&k.as_str()));
                self.save(&roles)?;
                Ok(String::new())
            }
            "ListRoleTags" => {
                let name = role_name()?;
                let role = roles.get(name).ok_or_else(|| no_such_role(name))?;
                Ok(format!("<Tags>{}</Tags><IsTruncated>false</IsTruncated>", tag_members(&role.tags)))
            }
            other => self.dispatch_more(req, &mut roles, partition).unwrap_or_else(|| {
                Err(QueryError::new(
                    400,
                    "InvalidAction",
                    format!(
                        "Could not find operation {} for version 2010-05-08 (not modelled by the firehose-kit emulator)",
                        escape(other)
                    ),
                ))
            }),
        }
    }

    /// Serves one STS Query request (only `GetCallerIdentity`).
    pub fn handle_sts(
        &self,
        query: Option<&str>,
        body: &[u8],
        access_key: Option<&str>,
        request_id: &str,
    ) -> Response<Bytes> {
        let result = QueryRequest::parse(query, body).and_then(|req| match req.action.as_str() {
            "GetCallerIdentity" => {
                let account = &self.account_id;
                let xml = format!(
                    "{}{}{}",
                    element("Arn", &format!("arn:aws:iam::{account}:root")),
                    element("UserId", access_key.unwrap_or(account)),
                    element("Account", account)
                );
                Ok(success(STS_NS, "GetCallerIdentity", &xml, request_id))
            }
            other => Err(QueryError::new(
                400,
                "InvalidAction",
                format!(
                    "Could not find operation {} for version 2011-06-15 (not modelled by the firehose-kit emulator)",
                    escape(other)
                ),
            )),
        });
        result.unwrap_or_else(|e| e.into_response(STS_NS, request_id))
    }

    /// Whether Firehose may assume `role_arn` now; the error is the message AWS gives in an
    /// `InvalidArgumentException`.
    /// `region` is the stream's: the role must be in the same partition.
    pub fn check_assumable(&self, role_arn: &str, region: &str) -> Result<(), String> {
        let unable = || format!("Firehose is unable to assume role {role_arn}. Please check the role provided.");
        let view = self.role_view(role_arn, region).ok_or_else(unable)?;
        if now_ms() - view.trust_changed_ms < self.propagation_delay.as_millis() as i64 {
            return Err(unable());
        }
        if view.trusts_firehose { Ok(()) } else { Err(unable()) }
    }

    /// The role's trust and identity policies as they are now, for evaluating what Firehose may do as it; `None`
    /// if there is no such role in this account and the region's partition.
    pub fn role_view(&self, role_arn: &str, region: &str) -> Option<RoleView> {
        let partition = arn_partition(region);
        let path_and_name = role_arn.strip_prefix(&format!("arn:{partition}:iam::{}:role/", self.account_id))?;
        let name = path_and_name.rsplit('/').next().unwrap_or(path_and_name);
        let roles = self.roles.lock().expect("iam lock");
        let role = roles.get(name).filter(|role| self.arn(role, partition) == role_arn)?;
        let trusts_firehose = Policy::parse(&role.assume_role_policy)
            .is_ok_and(|trust| access::trusts_service(&trust, "firehose.amazonaws.com", &self.account_id));
        let mut identity: Vec<Policy> = role.policies.values().filter_map(|doc| Policy::parse(doc).ok()).collect();
        let mut unknown_managed = Vec::new();
        let managed = self.policies.lock().expect("iam policies lock");
        for arn in &role.attached {
            match managed.get(arn) {
                Some(p) => {
                    let default = p.versions.iter().find(|(id, _, _)| *id == p.default_version);
                    identity.extend(default.and_then(|(_, doc, _)| Policy::parse(doc).ok()));
                }
                None => match aws_managed_document(arn) {
                    Some(doc) => identity.extend(Policy::parse(doc).ok()),
                    None => unknown_managed.push(arn.clone()),
                },
            }
        }
        Some(RoleView { trust_changed_ms: role.trust_changed_ms, trusts_firehose, identity, unknown_managed })
    }
}

/// A role as delivery sees it (see [`Iam::role_view`]).
#[derive(Debug, Clone)]
pub struct RoleView {
    pub trust_changed_ms: i64,
    /// The trust policy lets `firehose.amazonaws.com` assume it with ExternalId = the account.
    pub trusts_firehose: bool,
    /// Inline policies, and the default versions of attached managed ones.
    pub identity: Vec<Policy>,
    /// Attached AWS-managed policies whose documents the emulator does not know (they grant nothing here).
    pub unknown_managed: Vec<String>,
}

/// The documents of the few AWS-managed policies a delivery role plausibly carries; others are unknown.
fn aws_managed_document(arn: &str) -> Option<&'static str> {
    match arn.rsplit('/').next()? {
        "AdministratorAccess" => Some(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#),
        "AmazonS3FullAccess" => {
            Some(r#"{"Statement":[{"Effect":"Allow","Action":["s3:*","s3-object-lambda:*"],"Resource":"*"}]}"#)
        }
        "CloudWatchLogsFullAccess" => Some(r#"{"Statement":[{"Effect":"Allow","Action":"logs:*","Resource":"*"}]}"#),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"firehose.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"000000000000"}}}]}"#;

    #[test]
    fn trust_policy_must_name_firehose_and_this_account() {
        let trusts = |doc: &str, account: &str| {
            access::trusts_service(&Policy::parse(doc).unwrap(), "firehose.amazonaws.com", account)
        };
        assert!(trusts(TRUST, "000000000000"));
        assert!(!trusts(TRUST, "111111111111"));
        assert!(!trusts(&TRUST.replace("firehose", "lambda"), "000000000000"));
        assert!(!trusts(&TRUST.replace("Allow", "Deny"), "000000000000"));
    }

    #[test]
    fn documents_are_rfc3986_encoded() {
        assert_eq!(encode_document(r#"{"a b":"~x"}"#), "%7B%22a%20b%22%3A%22~x%22%7D");
    }

    #[test]
    fn new_role_is_unassumable_during_propagation_delay() {
        let dir = tempfile::tempdir().unwrap();
        let iam = Iam::open(dir.path().into(), "000000000000".into(), Duration::from_secs(3600)).unwrap();
        let body = format!("Action=CreateRole&RoleName=r&AssumeRolePolicyDocument={}", encode_document(TRUST));
        assert_eq!(iam.handle_iam(None, body.as_bytes(), "us-east-1", "id").status(), 200);
        let err = iam.check_assumable("arn:aws:iam::000000000000:role/r", "us-east-2").unwrap_err();
        assert!(err.contains("unable to assume role"), "{err}");
        let iam = Iam::open(dir.path().into(), "000000000000".into(), Duration::ZERO).unwrap();
        iam.check_assumable("arn:aws:iam::000000000000:role/r", "us-east-2").unwrap();
        assert!(iam.check_assumable("arn:aws:iam::000000000000:role/missing", "us-east-2").is_err());
    }
}
