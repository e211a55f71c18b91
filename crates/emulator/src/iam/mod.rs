//! IAM roles (the subset Firehose delivery needs, and the managed-policy calls infrastructure-as-code tools make
//! around a role) and STS `GetCallerIdentity`, over the Query protocol.
//!
//! Split like the emulator's other services: the wire protocol is [`crate::query`]; [`handlers`] has one
//! function per action, found in [`ACTIONS`]; [`model`] holds the state and the rules its inputs must meet;
//! [`store`] persists it in `<data-dir>/iam/`. Firehose asks [`Iam::check_assumable`] whether it may assume a
//! role: the role must exist, trust `firehose.amazonaws.com` (with a matching `sts:ExternalId` when the trust
//! policy has one), and be older than the configured propagation delay, which reproduces the race real IAM has
//! after CreateRole.

mod handlers;
mod model;
mod store;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::Response;

use self::model::{Role, State, aws_managed_document};
use self::store::Store;
use super::query::{QueryError, QueryRequest, element, escape, success};
use super::s3::store::now_ms;
use firehose_kit_domain::access::{self, Policy};
use firehose_kit_domain::names::arn_partition;

const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// One action: reads its parameters, changes or reads the state (persisting what it changes), and answers with
/// the inside of its `<{Action}Result>`; the last argument is the ARN partition of the request's region.
type Handler = fn(&Iam, &mut State, &QueryRequest, &str) -> Result<String, QueryError>;

/// Every IAM action the emulator serves, by name.
const ACTIONS: &[(&str, Handler)] = &[
    ("CreateRole", handlers::create_role),
    ("GetRole", handlers::get_role),
    ("ListRoles", handlers::list_roles),
    ("DeleteRole", handlers::delete_role),
    ("UpdateAssumeRolePolicy", handlers::update_assume_role_policy),
    ("UpdateRole", handlers::update_role),
    ("UpdateRoleDescription", handlers::update_role_description),
    ("ListInstanceProfilesForRole", handlers::list_instance_profiles_for_role),
    ("TagRole", handlers::tag_role),
    ("UntagRole", handlers::untag_role),
    ("ListRoleTags", handlers::list_role_tags),
    ("PutRolePolicy", handlers::put_role_policy),
    ("GetRolePolicy", handlers::get_role_policy),
    ("ListRolePolicies", handlers::list_role_policies),
    ("DeleteRolePolicy", handlers::delete_role_policy),
    ("CreatePolicy", handlers::create_policy),
    ("GetPolicy", handlers::get_policy),
    ("ListPolicies", handlers::list_policies),
    ("GetPolicyVersion", handlers::get_policy_version),
    ("ListPolicyVersions", handlers::list_policy_versions),
    ("ListPolicyTags", handlers::list_policy_tags),
    ("DeletePolicy", handlers::delete_policy),
    ("AttachRolePolicy", handlers::attach_role_policy),
    ("DetachRolePolicy", handlers::detach_role_policy),
    ("ListAttachedRolePolicies", handlers::list_attached_role_policies),
];

/// The emulator's IAM and STS.
pub struct Iam {
    store: Store,
    account_id: String,
    propagation_delay: Duration,
    state: Mutex<State>,
}

fn invalid_action(action: &str, version: &str) -> QueryError {
    QueryError::new(
        400,
        "InvalidAction",
        format!(
            "Could not find operation {} for version {version} (not modelled by the firehose-kit emulator)",
            escape(action)
        ),
    )
}

impl Iam {
    pub fn open(dir: PathBuf, account_id: String, propagation_delay: Duration) -> std::io::Result<Self> {
        let (store, state) = Store::open(&dir)?;
        Ok(Iam { store, account_id, propagation_delay, state: Mutex::new(state) })
    }

    /// A role's ARN in `partition` (`aws`, `aws-cn`, `aws-us-gov`: IAM is global within a partition).
    fn role_arn(&self, role: &Role, partition: &str) -> String {
        format!("arn:{partition}:iam::{}:role{}{}", self.account_id, role.path, role.name)
    }

    /// Serves one IAM Query request.
    /// `region` is the request's signing region; it decides the partition of the ARNs returned.
    pub fn handle_iam(&self, query: Option<&str>, body: &[u8], region: &str, request_id: &str) -> Response<Bytes> {
        let partition = arn_partition(region);
        let result = QueryRequest::parse(query, body).and_then(|req| {
            let (_, handler) = ACTIONS
                .iter()
                .find(|(name, _)| *name == req.action)
                .ok_or_else(|| invalid_action(&req.action, "2010-05-08"))?;
            let xml = handler(self, &mut crate::lock(&self.state), &req, partition)?;
            Ok(success(IAM_NS, &req.action, &xml, request_id))
        });
        result.unwrap_or_else(|e| e.into_response(IAM_NS, request_id))
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
            other => Err(invalid_action(other, "2011-06-15")),
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

    /// Whether the role `role_arn` (in the region's partition) lets `service` assume it without an external id,
    /// as Lambda assumes a function's execution role; a role whose trust changed less than the IAM propagation delay
    /// ago is not assumable yet (the race CreateFunction has after CreateRole).
    pub fn role_trusts(&self, role_arn: &str, region: &str, service: &str) -> bool {
        let partition = arn_partition(region);
        let Some(path_and_name) = role_arn.strip_prefix(&format!("arn:{partition}:iam::{}:role/", self.account_id))
        else {
            return false;
        };
        let name = path_and_name.rsplit('/').next().unwrap_or(path_and_name);
        let state = crate::lock(&self.state);
        // A role (or trust) changed less than the propagation delay ago is not assumable yet, as Firehose sees it.
        let settled = |changed_ms: i64| now_ms() - changed_ms >= self.propagation_delay.as_millis() as i64;
        state.roles.get(name).filter(|role| self.role_arn(role, partition) == role_arn).is_some_and(|role| {
            settled(role.trust_changed_ms)
                && Policy::parse(&role.assume_role_policy)
                    .is_ok_and(|trust| access::trusts_service(&trust, service, ""))
        })
    }

    /// The role's trust and identity policies as they are now, for evaluating what Firehose may do as it; `None`
    /// if there is no such role in this account and the region's partition.
    pub fn role_view(&self, role_arn: &str, region: &str) -> Option<RoleView> {
        let partition = arn_partition(region);
        let path_and_name = role_arn.strip_prefix(&format!("arn:{partition}:iam::{}:role/", self.account_id))?;
        let name = path_and_name.rsplit('/').next().unwrap_or(path_and_name);
        let state = crate::lock(&self.state);
        let role = state.roles.get(name).filter(|role| self.role_arn(role, partition) == role_arn)?;
        let trusts_firehose = Policy::parse(&role.assume_role_policy)
            .is_ok_and(|trust| access::trusts_service(&trust, "firehose.amazonaws.com", &self.account_id));
        let mut identity: Vec<Policy> = role.policies.values().filter_map(|doc| Policy::parse(doc).ok()).collect();
        let mut unknown_managed = Vec::new();
        for arn in &role.attached {
            let document = match state.policies.get(arn) {
                Some(p) => p.document(),
                None => aws_managed_document(arn),
            };
            match document {
                Some(doc) => identity.extend(Policy::parse(doc).ok()),
                None if !state.policies.contains_key(arn) => unknown_managed.push(arn.clone()),
                None => {}
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

#[cfg(test)]
mod tests {
    use super::handlers::encode_document;
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

    #[test]
    fn unknown_actions_are_refused_by_name_and_refused_tags_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let iam = Iam::open(dir.path().into(), "000000000000".into(), Duration::ZERO).unwrap();
        let call = |body: String| {
            let resp = iam.handle_iam(None, body.as_bytes(), "us-east-1", "id");
            (resp.status().as_u16(), String::from_utf8_lossy(resp.body()).into_owned())
        };
        let (status, body) = call("Action=CreateUser&UserName=u".into());
        assert_eq!(status, 400);
        assert!(body.contains("InvalidAction") && body.contains("Could not find operation CreateUser"), "{body}");
        let create = format!("Action=CreateRole&RoleName=r&AssumeRolePolicyDocument={}", encode_document(TRUST));
        assert_eq!(call(create).0, 200);
        let tags: String = (1..=51).map(|i| format!("&Tags.member.{i}.Key=k{i}&Tags.member.{i}.Value=v")).collect();
        let (status, body) = call(format!("Action=TagRole&RoleName=r{tags}"));
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("LimitExceeded"), "{body}");
        let (_, listed) = call("Action=ListRoleTags&RoleName=r".into());
        assert!(!listed.contains("<Key>"), "a refused TagRole must not keep its tags: {listed}");
    }
}
