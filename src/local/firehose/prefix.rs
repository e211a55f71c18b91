//! S3 prefixes of a Firehose destination: the semantic rules CreateDeliveryStream enforces and the evaluation of
//! `!{timestamp:...}` / `!{firehose:...}` expressions when an object is named (aws-facts.md §2).

use chrono::{DateTime, Utc};
use rand::Rng;

/// One piece of a parsed prefix.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    /// A Java DateTimeFormatter pattern.
    Timestamp(String),
    RandomString,
    ErrorOutputType,
}

/// A validated prefix, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Prefix {
    parts: Vec<Part>,
}

fn parse(text: &str, field: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("!{") {
        if start > 0 {
            parts.push(Part::Literal(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end =
            after.find('}').ok_or_else(|| format!("{field} has an unterminated expression: `!{{` without `}}`"))?;
        let expr = &after[..end];
        let (namespace, value) = expr
            .split_once(':')
            .ok_or_else(|| format!("{field} expression `!{{{expr}}}` must have the form !{{namespace:value}}"))?;
        let part = match (namespace, value) {
            ("timestamp", pattern) if !pattern.is_empty() => Part::Timestamp(pattern.to_string()),
            ("firehose", "random-string") => Part::RandomString,
            ("firehose", "error-output-type") => Part::ErrorOutputType,
            ("partitionKeyFromQuery" | "partitionKeyFromLambda", _) => {
                return Err(format!(
                    "{field} uses `!{{{namespace}:...}}`, which needs dynamic partitioning; the firehose-kit emulator does not model dynamic partitioning"
                ));
            }
            _ => {
                return Err(format!("{field} has an unsupported expression `!{{{expr}}}`"));
            }
        };
        parts.push(part);
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_string()));
    }
    Ok(parts)
}

fn has_expressions(parts: &[Part]) -> bool {
    parts.iter().any(|p| !matches!(p, Part::Literal(_)))
}

/// Validates a destination's Prefix and ErrorOutputPrefix together, as CreateDeliveryStream does, and returns the
/// prefix used for delivered objects: when it has no timestamp expression, `YYYY/MM/dd/HH/` (UTC) is appended.
pub fn validate(prefix: Option<&str>, error_prefix: Option<&str>) -> Result<Prefix, String> {
    let prefix = prefix.unwrap_or("");
    let error_prefix = error_prefix.unwrap_or("");
    for (field, text) in [("Prefix", prefix), ("ErrorOutputPrefix", error_prefix)] {
        if text.len() > 1024 {
            return Err(format!("{field} is longer than 1024 characters"));
        }
    }
    let mut parts = parse(prefix, "Prefix")?;
    let error_parts = parse(error_prefix, "ErrorOutputPrefix")?;
    if parts.contains(&Part::ErrorOutputType) {
        return Err(
            "Prefix cannot contain !{firehose:error-output-type}; it may appear only in ErrorOutputPrefix".into()
        );
    }
    if has_expressions(&parts) && error_prefix.is_empty() {
        return Err("ErrorOutputPrefix must be specified when Prefix contains expressions".into());
    }
    if has_expressions(&error_parts) && !error_parts.contains(&Part::ErrorOutputType) {
        return Err("ErrorOutputPrefix with expressions must contain at least one !{firehose:error-output-type}".into());
    }
    if !parts.iter().any(|p| matches!(p, Part::Timestamp(_))) {
        parts.push(Part::Timestamp("yyyy/MM/dd/HH/".into()));
    }
    Ok(Prefix { parts })
}

impl Prefix {
    /// The prefix for an object whose oldest record arrived at `at`.
    pub fn evaluate(&self, at: DateTime<Utc>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Timestamp(pattern) => out.push_str(&format_java(pattern, at)),
                Part::RandomString => out.push_str(&random_string()),
                Part::ErrorOutputType => out.push_str("processing-failed"),
            }
        }
        out
    }

    /// The literal text before the first expression: every delivered key starts with it.
    pub fn static_part(&self) -> String {
        self.parts.iter().map_while(|p| if let Part::Literal(s) = p { Some(s.as_str()) } else { None }).collect()
    }
}

fn random_string() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..11).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// Formats `at` with the common subset of Java's DateTimeFormatter: `yyyy`, `yy`, `MM`, `dd`, `HH`, `mm`, `ss`,
/// `'quoted text'`; other characters are copied.
pub fn format_java(pattern: &str, at: DateTime<Utc>) -> String {
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let end = chars[i + 1..].iter().position(|&x| x == '\'').map(|p| i + 1 + p).unwrap_or(chars.len());
            out.extend(&chars[i + 1..end]);
            i = end + 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let field = match (c, run) {
            ('y' | 'u', 2) => Some(format!("{:02}", at.format("%y"))),
            ('y' | 'u', _) => Some(at.format("%Y").to_string()),
            ('M', _) => Some(at.format("%m").to_string()),
            ('d', _) => Some(at.format("%d").to_string()),
            ('H', _) => Some(at.format("%H").to_string()),
            ('m', _) => Some(at.format("%M").to_string()),
            ('s', _) => Some(at.format("%S").to_string()),
            _ => None,
        };
        match field {
            Some(text) => out.push_str(&text),
            None => out.extend(std::iter::repeat_n(c, run)),
        }
        i += run;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 5, 7, 8, 9).unwrap()
    }

    #[test]
    fn default_layout_is_appended_without_inserting_a_slash() {
        assert_eq!(validate(None, None).unwrap().evaluate(at()), "2026/11/05/07/");
        assert_eq!(validate(Some("logs/"), None).unwrap().evaluate(at()), "logs/2026/11/05/07/");
        assert_eq!(validate(Some("logs"), None).unwrap().evaluate(at()), "logs2026/11/05/07/");
    }

    #[test]
    fn expressions_are_evaluated() {
        let p = validate(
            Some("y=!{timestamp:yyyy}/m=!{timestamp:MM}/!{firehose:random-string}/"),
            Some("err/!{firehose:error-output-type}/"),
        )
        .unwrap();
        let key = p.evaluate(at());
        assert!(key.starts_with("y=2026/m=11/"), "{key}");
        assert_eq!(key.len(), "y=2026/m=11/".len() + 11 + 1);
        assert_eq!(p.static_part(), "y=");
        assert_eq!(format_java("'year='yyyy/dd", at()), "year=2026/05");
    }

    #[test]
    fn semantic_rules_are_enforced() {
        assert!(
            validate(Some("!{timestamp:yyyy}/"), None).unwrap_err().contains("ErrorOutputPrefix must be specified")
        );
        assert!(validate(Some("a/"), Some("e/!{timestamp:yyyy}/")).unwrap_err().contains("error-output-type"));
        assert!(validate(Some("a/!{firehose:error-output-type}/"), Some("e/")).is_err());
        assert!(validate(Some("a/!{oops"), None).unwrap_err().contains("unterminated"));
        assert!(validate(Some("a/!{bogus:x}/"), Some("e/")).is_err());
        assert!(
            validate(Some("a/!{partitionKeyFromQuery:k}/"), Some("e/")).unwrap_err().contains("dynamic partitioning")
        );
        assert!(validate(Some(&"a".repeat(1025)), None).is_err());
    }
}
