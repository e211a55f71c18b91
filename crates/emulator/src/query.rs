//! The AWS Query protocol (IAM, STS): form-encoded requests in, XML documents out, one error shape.

use std::collections::HashMap;

use bytes::Bytes;
use http::{Response, StatusCode};

/// A parsed Query request: `Action` plus its parameters (`Tags.member.1.Key`, ...).
pub struct QueryRequest {
    pub action: String,
    params: HashMap<String, String>,
}

impl QueryRequest {
    /// Parses a form body (and any query-string parameters, which the protocol also allows).
    pub fn parse(query: Option<&str>, body: &[u8]) -> Result<Self, QueryError> {
        let mut params: HashMap<String, String> = HashMap::new();
        for source in [query.unwrap_or("").as_bytes(), body] {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(source)
                .map_err(|e| QueryError::new(400, "MalformedQueryString", format!("cannot parse the request: {e}")))?;
            params.extend(pairs);
        }
        let action = params
            .remove("Action")
            .ok_or_else(|| QueryError::new(400, "MissingAction", "Missing Action parameter".to_string()))?;
        Ok(QueryRequest { action, params })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A required parameter, with the protocol's validation error when absent.
    pub fn required(&self, name: &str) -> Result<&str, QueryError> {
        self.get(name).ok_or_else(|| {
            QueryError::new(
                400,
                "ValidationError",
                format!("1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null", lower_first(name)),
            )
        })
    }

    /// `Prefix.member.1`, `Prefix.member.2`, ... in order, until the first gap.
    pub fn members(&self, prefix: &str) -> Vec<&str> {
        (1..).map_while(|i| self.get(&format!("{prefix}.member.{i}"))).collect()
    }

    /// `Tags.member.N.Key` / `.Value` pairs.
    pub fn tags(&self, prefix: &str) -> Vec<(String, String)> {
        (1..)
            .map_while(|i| {
                let key = self.get(&format!("{prefix}.member.{i}.Key"))?;
                let value = self.get(&format!("{prefix}.member.{i}.Value")).unwrap_or("");
                Some((key.to_string(), value.to_string()))
            })
            .collect()
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

/// An error in the Query protocol's `<ErrorResponse>` shape.
#[derive(Debug)]
pub struct QueryError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl QueryError {
    pub fn new(status: u16, code: &'static str, message: String) -> Self {
        QueryError { status, code, message }
    }

    pub fn into_response(self, namespace: &str, request_id: &str) -> Response<Bytes> {
        let kind = if self.status >= 500 { "Receiver" } else { "Sender" };
        let body = format!(
            "<ErrorResponse xmlns=\"{namespace}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
            self.code,
            escape(&self.message)
        );
        xml_response(StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST), body)
    }
}

/// `<{action}Response><{action}Result>{result}</...Result><ResponseMetadata>...</...Response>`; an empty
/// `result` gives the bare acknowledgement IAM returns for mutations.
pub fn success(namespace: &str, action: &str, result: &str, request_id: &str) -> Response<Bytes> {
    let result = if result.is_empty() { String::new() } else { format!("<{action}Result>{result}</{action}Result>") };
    let body = format!(
        "<{action}Response xmlns=\"{namespace}\">{result}<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    );
    xml_response(StatusCode::OK, body)
}

fn xml_response(status: StatusCode, body: String) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/xml")
        .body(Bytes::from(body))
        .expect("static response parts are valid")
}

pub use firehose_kit_domain::util::markup::escape;

/// `<name>escaped text</name>`
pub fn element(name: &str, text: &str) -> String {
    format!("<{name}>{}</{name}>", escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_members_and_tags_in_order() {
        let body = b"Action=TagRole&RoleName=r&Tags.member.1.Key=a&Tags.member.1.Value=1&Tags.member.2.Key=b&Tags.member.2.Value=&TagKeys.member.1=x&TagKeys.member.2=y";
        let q = QueryRequest::parse(None, body).unwrap();
        assert_eq!(q.action, "TagRole");
        assert_eq!(q.tags("Tags"), vec![("a".into(), "1".into()), ("b".into(), String::new())]);
        assert_eq!(q.members("TagKeys"), vec!["x", "y"]);
        assert_eq!(q.required("Missing").unwrap_err().code, "ValidationError");
    }

    #[test]
    fn error_body_has_the_query_shape() {
        let resp = QueryError::new(404, "NoSuchEntity", "role <r> not found".into()).into_response("ns", "rid");
        assert_eq!(resp.status(), 404);
        let body = String::from_utf8(resp.body().to_vec()).unwrap();
        assert!(body.contains("<Code>NoSuchEntity</Code><Message>role &lt;r&gt; not found</Message>"), "{body}");
    }
}
