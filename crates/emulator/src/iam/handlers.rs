//! One function per IAM action, and the XML shapes they answer with; [`super::ACTIONS`] maps names to them.
//! Each reads its parameters, changes or reads the state (persisting what it changes) and returns the inside
//! of `<{Action}Result>`.

use std::collections::BTreeMap;

use super::Iam;
use super::model::{
    MAX_TAGS, ManagedPolicy, Role, State, delete_conflict, new_id, no_such_policy, no_such_role_policy, too_many_tags,
    validate_document, validate_name,
};
use crate::query::{QueryError, QueryRequest, element};
use crate::s3::store::now_ms;

type Answer = Result<String, QueryError>;

pub(super) fn iso8601(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Policy documents are returned URL-encoded (RFC 3986), as IAM does.
pub(super) fn encode_document(doc: &str) -> String {
    percent_encoding::utf8_percent_encode(doc, RFC3986).to_string()
}

/// Characters left alone by RFC 3986 encoding: ALPHA / DIGIT / "-" / "." / "_" / "~".
const RFC3986: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Tags as IAM lists them: `<member><Key>..</Key><Value>..</Value></member>`...
fn tag_members(tags: &[(String, String)]) -> String {
    tags.iter().map(|(k, v)| format!("<member>{}{}</member>", element("Key", k), element("Value", v))).collect()
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// A list member rendered as its single-item shape (`<Role>` → `<member>`).
fn as_member(xml: String, tag: &str) -> String {
    xml.replacen(&format!("<{tag}>"), "<member>", 1).replace(&format!("</{tag}>"), "</member>")
}

fn role_xml(iam: &Iam, role: &Role, partition: &str) -> String {
    let tags = tag_members(&role.tags);
    format!(
        "<Role>{}{}{}{}{}{}{}{}{}</Role>",
        element("Path", &role.path),
        element("Arn", &iam.role_arn(role, partition)),
        element("RoleName", &role.name),
        element("AssumeRolePolicyDocument", &encode_document(&role.assume_role_policy)),
        element("CreateDate", &iso8601(role.created_ms)),
        element("RoleId", &role.role_id),
        element("MaxSessionDuration", &role.max_session_duration.to_string()),
        role.description.as_deref().map(|d| element("Description", d)).unwrap_or_default(),
        if tags.is_empty() { String::new() } else { format!("<Tags>{tags}</Tags>") },
    )
}

fn policy_xml(arn: &str, p: &ManagedPolicy, attachments: usize) -> String {
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

// Roles.

pub(super) fn create_role(iam: &Iam, state: &mut State, req: &QueryRequest, partition: &str) -> Answer {
    let name = req.required("RoleName")?;
    validate_name(name)?;
    let doc = req.required("AssumeRolePolicyDocument")?;
    validate_document(doc)?;
    if state.roles.contains_key(name) {
        return Err(QueryError::new(409, "EntityAlreadyExists", format!("Role with name {name} already exists.")));
    }
    let tags = req.tags("Tags");
    if tags.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    let now = now_ms();
    let role = Role {
        name: name.to_string(),
        path: req.get("Path").unwrap_or("/").to_string(),
        role_id: new_id("AROA"),
        created_ms: now,
        trust_changed_ms: now,
        assume_role_policy: doc.to_string(),
        description: req.get("Description").map(str::to_string),
        max_session_duration: req.get("MaxSessionDuration").and_then(|s| s.parse().ok()).unwrap_or(3600),
        tags,
        policies: BTreeMap::new(),
        attached: Vec::new(),
    };
    let xml = role_xml(iam, &role, partition);
    state.roles.insert(name.to_string(), role);
    iam.store.save_roles(&state.roles)?;
    Ok(xml)
}

pub(super) fn get_role(iam: &Iam, state: &mut State, req: &QueryRequest, partition: &str) -> Answer {
    Ok(role_xml(iam, state.role(req.required("RoleName")?)?, partition))
}

pub(super) fn list_roles(iam: &Iam, state: &mut State, _: &QueryRequest, partition: &str) -> Answer {
    let members: String = state.roles.values().map(|r| as_member(role_xml(iam, r, partition), "Role")).collect();
    Ok(format!("<Roles>{members}</Roles><IsTruncated>false</IsTruncated>"))
}

pub(super) fn delete_role(iam: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let name = req.required("RoleName")?;
    let role = state.role(name)?;
    if !role.policies.is_empty() || !role.attached.is_empty() {
        return Err(delete_conflict("Cannot delete entity, must delete policies first."));
    }
    state.roles.remove(name);
    iam.store.save_roles(&state.roles)?;
    Ok(String::new())
}

pub(super) fn update_assume_role_policy(iam: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let doc = req.required("PolicyDocument")?;
    validate_document(doc)?;
    let role = state.role_mut(req.required("RoleName")?)?;
    role.assume_role_policy = doc.to_string();
    role.trust_changed_ms = now_ms();
    iam.store.save_roles(&state.roles)?;
    Ok(String::new())
}

pub(super) fn update_role_description(iam: &Iam, state: &mut State, req: &QueryRequest, partition: &str) -> Answer {
    let role = state.role_mut(req.required("RoleName")?)?;
    role.description = req.get("Description").map(str::to_string);
    let xml = role_xml(iam, role, partition);
    iam.store.save_roles(&state.roles)?;
    Ok(xml)
}

pub(super) fn update_role(iam: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let role = state.role_mut(req.required("RoleName")?)?;
    if let Some(d) = req.get("Description") {
        role.description = Some(d.to_string());
    }
    if let Some(m) = req.get("MaxSessionDuration").and_then(|s| s.parse().ok()) {
        role.max_session_duration = m;
    }
    iam.store.save_roles(&state.roles)?;
    Ok(String::new())
}

pub(super) fn list_instance_profiles_for_role(_: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    // Instance profiles are not modelled: a role is in none.
    state.role(req.required("RoleName")?)?;
    Ok("<InstanceProfiles></InstanceProfiles><IsTruncated>false</IsTruncated>".into())
}

// Role tags.

pub(super) fn tag_role(iam: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let role = state.role_mut(req.required("RoleName")?)?;
    let mut tags = role.tags.clone();
    for (k, v) in req.tags("Tags") {
        match tags.iter_mut().find(|(key, _)| *key == k) {
            Some(existing) => existing.1 = v,
            None => tags.push((k, v)),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    role.tags = tags;
    iam.store.save_roles(&state.roles)?;
    Ok(String::new())
}

pub(super) fn untag_role(iam: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let keys = req.members("TagKeys");
    let role = state.role_mut(req.required("RoleName")?)?;
    role.tags.retain(|(k, _)| !keys.contains(&k.as_str()));
    iam.store.save_roles(&state.roles)?;
    Ok(String::new())
}

pub(super) fn list_role_tags(_: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let role = state.role(req.required("RoleName")?)?;
    Ok(format!("<Tags>{}</Tags><IsTruncated>false</IsTruncated>", tag_members(&role.tags)))
}

// Inline role policies.

pub(super) fn put_role_policy(iam: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let policy_name = req.required("PolicyName")?;
    let doc = req.required("PolicyDocument")?;
    validate_document(doc)?;
    let role = state.role_mut(req.required("RoleName")?)?;
    role.policies.insert(policy_name.to_string(), doc.to_string());
    iam.store.save_roles(&state.roles)?;
    Ok(String::new())
}

pub(super) fn get_role_policy(_: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let name = req.required("RoleName")?;
    let policy_name = req.required("PolicyName")?;
    let doc = state.role(name)?.policies.get(policy_name).ok_or_else(|| no_such_role_policy(policy_name))?;
    Ok(format!(
        "{}{}{}",
        element("RoleName", name),
        element("PolicyName", policy_name),
        element("PolicyDocument", &encode_document(doc))
    ))
}

pub(super) fn list_role_policies(_: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let role = state.role(req.required("RoleName")?)?;
    let members: String = role.policies.keys().map(|p| element("member", p)).collect();
    Ok(format!("<PolicyNames>{members}</PolicyNames><IsTruncated>false</IsTruncated>"))
}

pub(super) fn delete_role_policy(iam: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let policy_name = req.required("PolicyName")?;
    let role = state.role_mut(req.required("RoleName")?)?;
    role.policies.remove(policy_name).ok_or_else(|| no_such_role_policy(policy_name))?;
    iam.store.save_roles(&state.roles)?;
    Ok(String::new())
}

// Managed policies.

pub(super) fn create_policy(iam: &Iam, state: &mut State, req: &QueryRequest, partition: &str) -> Answer {
    let name = req.required("PolicyName")?;
    validate_name(name)?;
    let doc = req.required("PolicyDocument")?;
    validate_document(doc)?;
    let path = req.get("Path").unwrap_or("/");
    let arn = format!("arn:{partition}:iam::{}:policy{path}{name}", iam.account_id);
    if state.policies.contains_key(&arn) {
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
        policy_id: new_id("ANPA"),
        description: req.get("Description").map(str::to_string),
        created_ms: now,
        updated_ms: now,
        default_version: "v1".into(),
        versions: vec![("v1".into(), doc.to_string(), now)],
        tags: req.tags("Tags"),
    };
    let xml = policy_xml(&arn, &policy, 0);
    state.policies.insert(arn, policy);
    iam.store.save_policies(&state.policies)?;
    Ok(xml)
}

pub(super) fn get_policy(_: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let arn = req.required("PolicyArn")?;
    Ok(policy_xml(arn, state.policy(arn)?, state.attachments(arn)))
}

pub(super) fn list_policies(_: &Iam, state: &mut State, _: &QueryRequest, _: &str) -> Answer {
    let members: String =
        state.policies.iter().map(|(arn, p)| as_member(policy_xml(arn, p, state.attachments(arn)), "Policy")).collect();
    Ok(format!("<Policies>{members}</Policies><IsTruncated>false</IsTruncated>"))
}

pub(super) fn get_policy_version(_: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let arn = req.required("PolicyArn")?;
    let version = req.required("VersionId")?;
    let p = state.policy(arn)?;
    let (id, doc, created) = p.versions.iter().find(|(id, _, _)| id == version).ok_or_else(|| {
        QueryError::new(404, "NoSuchEntity", format!("Policy {arn} version {version} does not exist."))
    })?;
    Ok(format!(
        "<PolicyVersion>{}{}{}{}</PolicyVersion>",
        element("Document", &encode_document(doc)),
        element("VersionId", id),
        element("IsDefaultVersion", bool_text(*id == p.default_version)),
        element("CreateDate", &iso8601(*created)),
    ))
}

pub(super) fn list_policy_versions(_: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let p = state.policy(req.required("PolicyArn")?)?;
    let members: String = p
        .versions
        .iter()
        .map(|(id, _, created)| {
            format!(
                "<member>{}{}{}</member>",
                element("VersionId", id),
                element("IsDefaultVersion", bool_text(*id == p.default_version)),
                element("CreateDate", &iso8601(*created)),
            )
        })
        .collect();
    Ok(format!("<Versions>{members}</Versions><IsTruncated>false</IsTruncated>"))
}

pub(super) fn list_policy_tags(_: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let p = state.policy(req.required("PolicyArn")?)?;
    Ok(format!("<Tags>{}</Tags><IsTruncated>false</IsTruncated>", tag_members(&p.tags)))
}

pub(super) fn delete_policy(iam: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let arn = req.required("PolicyArn")?;
    state.policy(arn)?;
    if state.attachments(arn) > 0 {
        return Err(delete_conflict("Cannot delete a policy attached to entities."));
    }
    state.policies.remove(arn);
    iam.store.save_policies(&state.policies)?;
    Ok(String::new())
}

// Attaching managed policies to roles.

/// The policy `PolicyArn` names, which must exist unless it is AWS-managed (`arn:<partition>:iam::aws:policy/..`).
fn attachable<'a>(state: &State, req: &'a QueryRequest) -> Result<&'a str, QueryError> {
    let arn = req.required("PolicyArn")?;
    if !arn.contains(":iam::aws:policy/") && !state.policies.contains_key(arn) {
        return Err(no_such_policy(arn));
    }
    Ok(arn)
}

pub(super) fn attach_role_policy(iam: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let arn = attachable(state, req)?;
    let role = state.role_mut(req.required("RoleName")?)?;
    if !role.attached.iter().any(|a| a == arn) {
        role.attached.push(arn.to_string());
    }
    iam.store.save_roles(&state.roles)?;
    Ok(String::new())
}

pub(super) fn detach_role_policy(iam: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let arn = attachable(state, req)?;
    let role = state.role_mut(req.required("RoleName")?)?;
    let before = role.attached.len();
    role.attached.retain(|a| a != arn);
    if role.attached.len() == before {
        return Err(QueryError::new(404, "NoSuchEntity", format!("Policy {arn} was not found.")));
    }
    iam.store.save_roles(&state.roles)?;
    Ok(String::new())
}

pub(super) fn list_attached_role_policies(_: &Iam, state: &mut State, req: &QueryRequest, _: &str) -> Answer {
    let role = state.role(req.required("RoleName")?)?;
    let members: String = role
        .attached
        .iter()
        .map(|arn| {
            let policy_name = arn.rsplit('/').next().unwrap_or(arn);
            format!("<member>{}{}</member>", element("PolicyName", policy_name), element("PolicyArn", arn))
        })
        .collect();
    Ok(format!("<AttachedPolicies>{members}</AttachedPolicies><IsTruncated>false</IsTruncated>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_rfc3986_encoded() {
        assert_eq!(encode_document(r#"{"a b":"~x"}"#), "%7B%22a%20b%22%3A%22~x%22%7D");
    }
}
