//! What Firehose's role must be allowed to do, and IAM's evaluation of whether a set of policies allows it.
//!
//! Both sides use this: the emulator decides whether a delivery attempt succeeds (`S3.AccessDenied` or not),
//! and `verify`/`doctor` explain which action on which ARN a role lacks. The evaluation follows IAM's logic for
//! a principal and a resource in the same account:
//!
//! 1. an explicit `Deny` in any applicable statement (identity or resource policy) wins;
//! 2. otherwise an `Allow` in an identity policy *or* in the resource policy (naming the principal) allows;
//! 3. otherwise the request is implicitly denied.
//!
//! Modelled: `Effect`, `Action`/`NotAction`, `Resource`/`NotResource` with `*` and `?` wildcards (actions
//! case-insensitive, resources case-sensitive), `Principal`/`NotPrincipal` (`*`, `AWS` ARNs or account ids,
//! `Service`), and `Condition` with the `String*`, `Arn*`, `Bool` and `Null` operators (and their `IfExists`
//! forms) over the context keys a caller supplies ([`Request::context`]). A condition key that is not in the
//! context is absent, as in IAM: the condition does not match (so an `Allow` does not apply and a `Deny` does
//! not either). Operators outside that list (`Numeric*`, `Date*`, `IpAddress`, ...) never match and are
//! reported by [`Policy::unmodelled`], so `doctor` can say so. Permission boundaries, SCPs and session
//! policies are not modelled.

use serde_json::Value;

/// A parsed policy document (identity, trust or resource policy).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

/// A list of patterns, or its negation (`NotAction`, `NotResource`, `NotPrincipal`).
#[derive(Debug, Clone)]
enum Match {
    /// The element is absent (a resource policy has no `Resource` only when malformed; treated as "all").
    Any,
    In(Vec<String>),
    NotIn(Vec<String>),
}

#[derive(Debug, Clone)]
struct Condition {
    operator: String,
    key: String,
    values: Vec<String>,
}

#[derive(Debug, Clone)]
struct Statement {
    sid: Option<String>,
    effect: Effect,
    actions: Match,
    resources: Match,
    /// `None` in identity policies; principals as `AWS:<arn or account>` / `Service:<name>` / `*`.
    principals: Option<Match>,
    conditions: Vec<Condition>,
}

/// One request to evaluate.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    /// The caller: a role ARN (`arn:aws:iam::123:role/x`), or a service principal (`firehose.amazonaws.com`).
    pub principal: &'a str,
    /// Condition keys and their values (e.g. `aws:SecureTransport` = `true`, `sts:ExternalId`).
    pub context: &'a [(&'a str, &'a str)],
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No statement allows the request.
    ImplicitDeny,
    /// A `Deny` statement matches; its Sid if it has one.
    ExplicitDeny {
        sid: Option<String>,
        in_resource_policy: bool,
    },
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// Why a document is not a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a policy document: {0}")]
pub struct PolicyError(String);

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(list) => list.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

fn match_of(st: &serde_json::Map<String, Value>, yes: &str, no: &str) -> Result<Match, PolicyError> {
    match (st.get(yes), st.get(no)) {
        (Some(_), Some(_)) => Err(PolicyError(format!("a statement has both {yes} and {no}"))),
        (Some(v), None) => strings(v).map(Match::In).ok_or_else(|| PolicyError(format!("{yes} must be strings"))),
        (None, Some(v)) => strings(v).map(Match::NotIn).ok_or_else(|| PolicyError(format!("{no} must be strings"))),
        (None, None) => Ok(Match::Any),
    }
}

fn principals_of(v: &Value) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) if s == "*" => Ok(vec!["*".into()]),
        Value::Object(map) => {
            let mut out = Vec::new();
            for (kind, ids) in map {
                let ids = strings(ids).ok_or_else(|| PolicyError(format!("Principal.{kind} must be strings")))?;
                out.extend(ids.into_iter().map(|id| if id == "*" { id } else { format!("{kind}:{id}") }));
            }
            Ok(out)
        }
        _ => Err(PolicyError("Principal must be \"*\" or an object".into())),
    }
}

impl Policy {
    /// Parses a policy document (a JSON text, as IAM and S3 store it).
    pub fn parse(doc: &str) -> Result<Self, PolicyError> {
        let value: Value = serde_json::from_str(doc).map_err(|e| PolicyError(e.to_string()))?;
        let list = match &value["Statement"] {
            Value::Array(list) => list.clone(),
            single @ Value::Object(_) => vec![single.clone()],
            _ => return Err(PolicyError("Statement must be an object or a list".into())),
        };
        let mut statements = Vec::new();
        for st in &list {
            let st = st.as_object().ok_or_else(|| PolicyError("a statement must be an object".into()))?;
            let effect = match st.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => return Err(PolicyError("Effect must be Allow or Deny".into())),
            };
            let principals = match (st.get("Principal"), st.get("NotPrincipal")) {
                (Some(p), None) => Some(Match::In(principals_of(p)?)),
                (None, Some(p)) => Some(Match::NotIn(principals_of(p)?)),
                (None, None) => None,
                _ => return Err(PolicyError("a statement has both Principal and NotPrincipal".into())),
            };
            let mut conditions = Vec::new();
            if let Some(cond) = st.get("Condition") {
                let cond = cond.as_object().ok_or_else(|| PolicyError("Condition must be an object".into()))?;
                for (operator, keys) in cond {
                    let keys = keys.as_object().ok_or_else(|| PolicyError(format!("Condition.{operator}")))?;
                    for (key, values) in keys {
                        let values = match values {
                            Value::Bool(b) => vec![b.to_string()],
                            other => strings(other).unwrap_or_default(),
                        };
                        conditions.push(Condition { operator: operator.clone(), key: key.clone(), values });
                    }
                }
            }
            statements.push(Statement {
                sid: st.get("Sid").and_then(Value::as_str).map(str::to_string),
                effect,
                actions: match_of(st, "Action", "NotAction")?,
                resources: match_of(st, "Resource", "NotResource")?,
                principals,
                conditions,
            });
        }
        Ok(Policy { statements })
    }

    /// Condition operators in this document that the evaluation does not model (they never match).
    pub fn unmodelled(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .statements
            .iter()
            .flat_map(|s| &s.conditions)
            .filter(|c| !modelled_operator(&c.operator))
            .map(|c| c.operator.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The statements of this policy that apply to `req` with `effect`.
    fn matching(&self, effect: Effect, req: &Request<'_>, resource_policy: bool) -> Option<&Statement> {
        self.statements.iter().find(|st| {
            st.effect == effect
                && matches(&st.actions, req.action, false)
                && matches(&st.resources, req.resource, true)
                && (!resource_policy || st.principals.as_ref().is_some_and(|p| principal_matches(p, req.principal)))
                && st.conditions.iter().all(|c| condition_holds(c, req.context))
        })
    }
}

fn modelled_operator(op: &str) -> bool {
    let base = op.strip_suffix("IfExists").unwrap_or(op);
    let base = base.strip_prefix("ForAnyValue:").or_else(|| base.strip_prefix("ForAllValues:")).unwrap_or(base);
    matches!(
        base,
        "StringEquals"
            | "StringNotEquals"
            | "StringEqualsIgnoreCase"
            | "StringNotEqualsIgnoreCase"
            | "StringLike"
            | "StringNotLike"
            | "ArnEquals"
            | "ArnLike"
            | "ArnNotEquals"
            | "ArnNotLike"
            | "Bool"
            | "Null"
    )
}

fn condition_holds(c: &Condition, context: &[(&str, &str)]) -> bool {
    let value = context.iter().find(|(k, _)| k.eq_ignore_ascii_case(&c.key)).map(|(_, v)| *v);
    let if_exists = c.operator.ends_with("IfExists");
    let op = c.operator.strip_suffix("IfExists").unwrap_or(&c.operator);
    let op = op.strip_prefix("ForAnyValue:").or_else(|| op.strip_prefix("ForAllValues:")).unwrap_or(op);
    if op == "Null" {
        let want_absent = c.values.iter().any(|v| v == "true");
        return value.is_none() == want_absent;
    }
    let Some(value) = value else {
        return if_exists;
    };
    let any = |f: &dyn Fn(&str) -> bool| c.values.iter().any(|v| f(v));
    match op {
        "StringEquals" | "ArnEquals" => any(&|v| v == value),
        "StringNotEquals" | "ArnNotEquals" => !any(&|v| v == value),
        "StringEqualsIgnoreCase" => any(&|v| v.eq_ignore_ascii_case(value)),
        "StringNotEqualsIgnoreCase" => !any(&|v| v.eq_ignore_ascii_case(value)),
        "StringLike" | "ArnLike" => any(&|v| wildcard(v, value, true)),
        "StringNotLike" | "ArnNotLike" => !any(&|v| wildcard(v, value, true)),
        "Bool" => any(&|v| v.eq_ignore_ascii_case(value)),
        _ => false,
    }
}

fn matches(m: &Match, value: &str, case_sensitive: bool) -> bool {
    match m {
        Match::Any => true,
        Match::In(list) => list.iter().any(|p| wildcard(p, value, case_sensitive)),
        Match::NotIn(list) => !list.iter().any(|p| wildcard(p, value, case_sensitive)),
    }
}

/// Whether a policy principal entry names `principal` (a role ARN or a service name).
fn principal_matches(m: &Match, principal: &str) -> bool {
    let one = |p: &String| -> bool {
        if p == "*" || p == "AWS:*" {
            return true;
        }
        if let Some(service) = p.strip_prefix("Service:") {
            return service == principal;
        }
        let Some(id) = p.strip_prefix("AWS:") else {
            return false;
        };
        // An account (id or `:root`) names every principal of that account.
        let account = principal.split(':').nth(4).unwrap_or("");
        id == principal || (!account.is_empty() && (id == account || id.ends_with(&format!(":iam::{account}:root"))))
    };
    match m {
        Match::Any => true,
        Match::In(list) => list.iter().any(one),
        Match::NotIn(list) => !list.iter().any(one),
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` any one.
pub fn wildcard(pattern: &str, value: &str, case_sensitive: bool) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = if case_sensitive {
        (pattern.chars().collect(), value.chars().collect())
    } else {
        (pattern.to_lowercase().chars().collect(), value.to_lowercase().chars().collect())
    };
    // Iterative glob matching with one backtrack point (linear in practice, no recursion).
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Evaluates a request against the principal's identity policies and the resource's policy (if any), for a
/// principal in the resource's account.
pub fn evaluate(identity: &[Policy], resource_policy: Option<&Policy>, req: &Request<'_>) -> Decision {
    for p in identity {
        if let Some(st) = p.matching(Effect::Deny, req, false) {
            return Decision::ExplicitDeny { sid: st.sid.clone(), in_resource_policy: false };
        }
    }
    if let Some(st) = resource_policy.and_then(|p| p.matching(Effect::Deny, req, true)) {
        return Decision::ExplicitDeny { sid: st.sid.clone(), in_resource_policy: true };
    }
    let identity_allows = identity.iter().any(|p| p.matching(Effect::Allow, req, false).is_some());
    let resource_allows = resource_policy.is_some_and(|p| p.matching(Effect::Allow, req, true).is_some());
    if identity_allows || resource_allows { Decision::Allow } else { Decision::ImplicitDeny }
}

/// Whether a trust policy lets the service `service` assume the role, with `external_id` (Firehose passes the
/// stream's account id as `sts:ExternalId`).
pub fn trusts_service(trust: &Policy, service: &str, external_id: &str) -> bool {
    let context = [("sts:ExternalId", external_id)];
    let req = Request { action: "sts:AssumeRole", resource: "*", principal: service, context: &context };
    evaluate(&[], Some(trust), &req).allowed()
}

/// The condition keys a Firehose delivery request carries: Firehose calls S3 over TLS as the role.
pub fn delivery_context<'a>(role_arn: &'a str, account_id: &'a str) -> [(&'static str, &'a str); 4] {
    [
        ("aws:SecureTransport", "true"),
        ("aws:PrincipalArn", role_arn),
        ("aws:PrincipalAccount", account_id),
        ("aws:PrincipalType", "AssumedRole"),
    ]
}

/// The S3 object ARN a key is written to.
pub fn object_arn(partition: &str, bucket: &str, key: &str) -> String {
    format!("arn:{partition}:s3:::{bucket}/{key}")
}

/// The ARN of a CloudWatch Logs log group, as tagging takes it (without the `:*` DescribeLogGroups adds).
pub fn log_group_arn(partition: &str, region: &str, account: &str, group: &str) -> String {
    format!("arn:{partition}:logs:{region}:{account}:log-group:{group}")
}

/// The ARN of a CloudWatch Logs log stream, as `logs:PutLogEvents` is authorised against.
pub fn log_stream_arn(partition: &str, region: &str, account: &str, group: &str, stream: &str) -> String {
    format!("{}:log-stream:{stream}", log_group_arn(partition, region, account, group))
}

/// One permission a Firehose role needs for its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub action: String,
    pub resource: String,
    /// Without it, what fails: `delivery` (data is not written) or `logging` (errors are not logged).
    pub for_what: &'static str,
}

/// What a role delivering to `bucket` under `prefix` (its static part) must be allowed: `s3:PutObject` on the
/// objects (the call every delivery makes), and `logs:PutLogEvents` on the error log stream when logging is on.
/// The object resource is `<bucket>/<prefix>*`: evaluated as a resource, a policy's wildcard covers it only if
/// it covers every key under the prefix.
pub fn delivery_needs(partition: &str, bucket: &str, static_prefix: &str, log: Option<&str>) -> Vec<Need> {
    let mut needs = vec![Need {
        action: "s3:PutObject".into(),
        resource: object_arn(partition, bucket, &format!("{static_prefix}*")),
        for_what: "delivery",
    }];
    if let Some(log_stream_arn) = log {
        needs.push(Need { action: "logs:PutLogEvents".into(), resource: log_stream_arn.into(), for_what: "logging" });
    }
    needs
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/fk";

    fn req<'a>(action: &'a str, resource: &'a str, ctx: &'a [(&'a str, &'a str)]) -> Request<'a> {
        Request { action, resource, principal: ROLE, context: ctx }
    }

    fn policy(doc: serde_json::Value) -> Policy {
        Policy::parse(&doc.to_string()).unwrap()
    }

    #[test]
    fn wildcards_follow_iam() {
        assert!(wildcard("s3:Put*", "s3:PutObject", false));
        assert!(wildcard("S3:PUTOBJECT", "s3:PutObject", false));
        assert!(!wildcard("arn:aws:s3:::B/*", "arn:aws:s3:::b/x", true));
        assert!(wildcard("arn:aws:s3:::b/logs/??/*", "arn:aws:s3:::b/logs/ab/c/d", true));
        assert!(!wildcard("arn:aws:s3:::b/logs/??/*", "arn:aws:s3:::b/logs/abc", true));
        assert!(wildcard("*", "", true));
        assert!(wildcard("a*b*c", "aXXbYYbc", true));
        assert!(!wildcard("a*b*c", "aXXbYYb", true));
    }

    #[test]
    fn allow_deny_and_negations() {
        let allow = policy(serde_json::json!({"Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::b/*"}
        ]}));
        let r = req("s3:PutObject", "arn:aws:s3:::b/k", &[]);
        assert_eq!(evaluate(std::slice::from_ref(&allow), None, &r), Decision::Allow);
        let other = req("s3:PutObject", "arn:aws:s3:::c/k", &[]);
        assert_eq!(evaluate(std::slice::from_ref(&allow), None, &other), Decision::ImplicitDeny);
        let deny = policy(
            serde_json::json!({"Statement": {"Sid": "NoPut", "Effect": "Deny", "NotAction": "s3:Get*", "Resource": "*"}}),
        );
        assert_eq!(
            evaluate(&[allow.clone(), deny], None, &r),
            Decision::ExplicitDeny { sid: Some("NoPut".into()), in_resource_policy: false }
        );
        let not_resource = policy(serde_json::json!({"Statement": [
            {"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:s3:::secret/*"}
        ]}));
        assert!(evaluate(std::slice::from_ref(&not_resource), None, &r).allowed());
        assert!(!evaluate(&[not_resource], None, &req("s3:PutObject", "arn:aws:s3:::secret/k", &[])).allowed());
    }

    #[test]
    fn bucket_policy_deny_applies_to_named_principals_and_conditions() {
        let allow = policy(serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}));
        let tls_only = policy(serde_json::json!({"Statement": [{
            "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]}));
        let ctx = delivery_context(ROLE, "123456789012");
        let r = req("s3:PutObject", "arn:aws:s3:::b/k", &ctx);
        assert!(evaluate(std::slice::from_ref(&allow), Some(&tls_only), &r).allowed());
        let deny_role = policy(serde_json::json!({"Statement": [{
            "Sid": "NoFirehose", "Effect": "Deny", "Principal": {"AWS": ROLE}, "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"
        }]}));
        assert_eq!(
            evaluate(std::slice::from_ref(&allow), Some(&deny_role), &r),
            Decision::ExplicitDeny { sid: Some("NoFirehose".into()), in_resource_policy: true }
        );
        let deny_account = policy(serde_json::json!({"Statement": [{
            "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "s3:*", "Resource": "*"
        }]}));
        assert!(!evaluate(std::slice::from_ref(&allow), Some(&deny_account), &r).allowed());
        let deny_other = policy(serde_json::json!({"Statement": [{
            "Effect": "Deny", "Principal": {"AWS": "999999999999"}, "Action": "s3:*", "Resource": "*"
        }]}));
        assert!(evaluate(std::slice::from_ref(&allow), Some(&deny_other), &r).allowed());
        // A bucket policy allowing the role is enough in the same account.
        let grant = policy(serde_json::json!({"Statement": [{
            "Effect": "Allow", "Principal": {"AWS": [ROLE]}, "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"
        }]}));
        assert!(evaluate(&[], Some(&grant), &r).allowed());
        assert!(!evaluate(&[], None, &r).allowed());
    }

    #[test]
    fn missing_condition_keys_and_unmodelled_operators_do_not_match() {
        let p = policy(serde_json::json!({"Statement": [
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"StringEqualsIfExists": {"s3:prefix": "x"}}},
        ]}));
        assert!(!evaluate(std::slice::from_ref(&p), None, &req("s3:PutObject", "arn:aws:s3:::b/k", &[])).allowed());
        assert!(evaluate(std::slice::from_ref(&p), None, &req("s3:GetObject", "arn:aws:s3:::b/k", &[])).allowed());
        assert_eq!(p.unmodelled(), vec!["IpAddress".to_string()]);
    }

    #[test]
    fn trust_needs_the_service_and_the_external_id() {
        let trust = policy(serde_json::json!({"Statement": [{
            "Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "123456789012"}}
        }]}));
        assert!(trusts_service(&trust, "firehose.amazonaws.com", "123456789012"));
        assert!(!trusts_service(&trust, "firehose.amazonaws.com", "999999999999"));
        assert!(!trusts_service(&trust, "lambda.amazonaws.com", "123456789012"));
        let list = policy(serde_json::json!({"Statement": [{
            "Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com", "firehose.amazonaws.com"]}, "Action": "sts:*"
        }]}));
        assert!(trusts_service(&list, "firehose.amazonaws.com", "x"));
    }

    #[test]
    fn delivery_needs_cover_every_key_under_the_prefix() {
        let needs = delivery_needs("aws", "b", "logs/", None);
        let wide = policy(
            serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}]}),
        );
        let narrow = policy(
            serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/logs/2026*"}]}),
        );
        let r = req(&needs[0].action, &needs[0].resource, &[]);
        assert!(evaluate(&[wide], None, &r).allowed());
        assert!(!evaluate(&[narrow], None, &r).allowed(), "a part of the prefix is not enough");
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert!(Policy::parse("{").is_err());
        assert!(Policy::parse(r#"{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#).is_err());
        assert!(Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"x"}]}"#).is_err());
    }
}
