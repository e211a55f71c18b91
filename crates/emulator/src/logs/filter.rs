//! CloudWatch Logs filter patterns (`FilterLogEvents`): plain terms, quoted phrases, `?` alternatives, `-`
//! exclusions, and simple JSON conditions.

use serde_json::Value;

use super::invalid;
use crate::json::ApiError;

/// A CloudWatch Logs filter pattern: space-separated terms that must all appear (`"quoted phrases"` kept
/// whole), `?term` alternatives of which one must appear, `-term` exclusions, or one JSON condition
/// `{ $.field = "value" }` / `{ $.a.b != value }` (several joined by `&&`) on JSON messages. Matching is
/// case-sensitive, as CloudWatch's.
#[derive(Debug)]
pub(super) enum FilterPattern {
    Terms { all: Vec<String>, any: Vec<String>, none: Vec<String> },
    Json(Vec<(Vec<String>, bool, String)>),
}

impl FilterPattern {
    pub(super) fn parse(text: &str) -> Result<Self, ApiError> {
        let text = text.trim();
        if let Some(inner) = text.strip_prefix('{') {
            let inner =
                inner.strip_suffix('}').ok_or_else(|| invalid(format!("Invalid character(s) in term '{text}'")))?;
            let mut conds = Vec::new();
            for cond in inner.split("&&") {
                let (lhs, equal, rhs) = if let Some((l, r)) = cond.split_once("!=") {
                    (l, false, r)
                } else if let Some((l, r)) = cond.split_once('=') {
                    (l, true, r)
                } else {
                    return Err(invalid(format!("Invalid filter pattern: only = and != are modelled in '{text}'")));
                };
                let path = lhs
                    .trim()
                    .strip_prefix("$.")
                    .ok_or_else(|| invalid(format!("Invalid selector in filter pattern '{text}'")))?;
                let value = rhs.trim().trim_matches('"').to_string();
                conds.push((path.split('.').map(str::to_string).collect(), equal, value));
            }
            return Ok(FilterPattern::Json(conds));
        }
        let (mut all, mut any, mut none) = (Vec::new(), Vec::new(), Vec::new());
        let mut rest = text;
        while !rest.is_empty() {
            rest = rest.trim_start();
            let (sign, body) = match rest.chars().next() {
                Some(c @ ('?' | '-')) => (Some(c), &rest[1..]),
                _ => (None, rest),
            };
            let (term, after) = if let Some(quoted) = body.strip_prefix('"') {
                let end = quoted.find('"').ok_or_else(|| invalid(format!("Unterminated quote in '{text}'")))?;
                (&quoted[..end], &quoted[end + 1..])
            } else {
                let end = body.find(' ').unwrap_or(body.len());
                (&body[..end], &body[end..])
            };
            if !term.is_empty() {
                match sign {
                    Some('?') => any.push(term.to_string()),
                    Some(_) => none.push(term.to_string()),
                    None => all.push(term.to_string()),
                }
            }
            rest = after;
        }
        Ok(FilterPattern::Terms { all, any, none })
    }

    pub(super) fn matches(&self, message: &str) -> bool {
        match self {
            FilterPattern::Terms { all, any, none } => {
                all.iter().all(|t| message.contains(t.as_str()))
                    && (any.is_empty() || any.iter().any(|t| message.contains(t.as_str())))
                    && !none.iter().any(|t| message.contains(t.as_str()))
            }
            FilterPattern::Json(conds) => {
                let Ok(doc) = serde_json::from_str::<Value>(message) else {
                    return false;
                };
                conds.iter().all(|(path, equal, want)| {
                    let found = path.iter().try_fold(&doc, |v, p| v.get(p));
                    let text = match found {
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(Value::Null) | None => None,
                        Some(other) => Some(other.to_string()),
                    };
                    let is = text.as_deref().is_some_and(|t| {
                        if let Some(prefix) = want.strip_suffix('*') { t.starts_with(prefix) } else { t == want }
                    });
                    is == *equal
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_patterns() {
        let p = FilterPattern::parse("S3.AccessDenied ?a ?b -skip").unwrap();
        assert!(p.matches("x S3.AccessDenied a"));
        assert!(!p.matches("x S3.AccessDenied c"));
        assert!(!p.matches("S3.AccessDenied a skip"));
        let j = FilterPattern::parse(r#"{ $.errorCode = "S3.*" && $.deliveryStreamVersionId = 1 }"#).unwrap();
        assert!(j.matches(r#"{"errorCode":"S3.NoSuchBucket","deliveryStreamVersionId":1}"#));
        assert!(!j.matches(r#"{"errorCode":"InternalError","deliveryStreamVersionId":1}"#));
        assert!(FilterPattern::parse("").unwrap().matches("anything"));
    }
}
