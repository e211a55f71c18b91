//! SigV4 for the emulator's non-S3 services (Firehose, Kinesis, Glue, CloudWatch Logs, Lambda, IAM, STS): parse the credential scope used for routing,
//! and verify a request's signature against the emulator's one secret. s3s verifies S3 requests itself.
//!
//! The signing key and HMAC come from the `aws-sigv4` crate (the SDK's own implementation); only the canonical
//! request is assembled here, from exactly the headers the client listed in `SignedHeaders`. The body is hashed
//! with the fast SHA-256 of `firehose_kit_domain::util::hash`, and signatures are compared in constant time.

use std::time::SystemTime;

use http::HeaderMap;

use firehose_kit_domain::util::hash::{constant_time_eq, sha256_hex};

/// The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` header.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorization<'a> {
    pub access_key: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
}

/// Parses the Authorization header; `None` when it is absent or not SigV4.
pub fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let mut scope = credential?.split('/');
    let (access_key, date, region, service) = (scope.next()?, scope.next()?, scope.next()?, scope.next()?);
    Some(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    })
}

/// The service name of a presigned URL's `X-Amz-Credential` query parameter.
pub fn presigned_service(query: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    let credential = pairs.into_iter().find(|(k, _)| k == "X-Amz-Credential")?.1;
    credential.split('/').nth(3).map(str::to_string)
}

/// Why a signature was refused; `code` follows the services' wording.
#[derive(Debug, PartialEq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
}

/// Verifies a SigV4-signed request with a body already read. `secret` is the one secret the emulator accepts.
pub fn verify(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    secret: &str,
) -> Result<(), Rejection> {
    let missing =
        || Rejection { code: "MissingAuthenticationToken", message: "Request is missing Authentication Token".into() };
    let header = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(missing)?;
    let auth = parse_authorization(header).ok_or_else(missing)?;
    let amz_date = headers.get("x-amz-date").and_then(|v| v.to_str().ok()).ok_or_else(|| Rejection {
        code: "IncompleteSignature",
        message: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into(),
    })?;
    let time = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map(|t| SystemTime::from(t.and_utc()))
        .map_err(|_| Rejection {
            code: "IncompleteSignature",
            message: format!("X-Amz-Date `{amz_date}` is not in the form YYYYMMDD'T'HHMMSS'Z'"),
        })?;
    let skew = SystemTime::now().duration_since(time).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
    if skew.as_secs() > 15 * 60 {
        return Err(Rejection {
            code: "InvalidSignatureException",
            message: "Signature expired: the request time is more than 15 minutes from the server time".into(),
        });
    }

    let mut canonical_headers = String::new();
    for name in &auth.signed_headers {
        // The JavaScript SDK signs HTTP/2's `:authority` pseudo-header (the server turns it into `host`).
        let lookup = if *name == ":authority" { "host" } else { name };
        let values: Vec<String> = headers
            .get_all(lookup)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    // The body is always hashed (never taken on the client's word); a hash the client sent must match it.
    let payload_hash = sha256_hex(body);
    if let Some(sent) = headers.get("x-amz-content-sha256")
        && !constant_time_eq(sent.as_bytes(), payload_hash.as_bytes())
    {
        return Err(Rejection {
            code: "InvalidSignatureException",
            message: "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
        });
    }
    let path = if path.is_empty() { "/" } else { path };
    let canonical_request = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{}\n{payload_hash}",
        canonical_path(path, auth.service),
        canonical_query(query),
        auth.signed_headers.join(";"),
    );
    let scope = format!("{}/{}/{}/aws4_request", auth.date, auth.region, auth.service);
    let string_to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()));
    let key = aws_sigv4::sign::v4::generate_signing_key(secret, time, auth.region, auth.service);
    let expected = aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes());
    if !constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        return Err(Rejection {
            code: "InvalidSignatureException",
            message: format!(
                "The request signature we calculated does not match the signature you provided. The emulator accepts any access key id signed with its secret (`test` unless started with --secret); access key id used: {}\n\nThe Canonical String for this request should have been\n'{canonical_request}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n",
                auth.access_key
            ),
        });
    }
    Ok(())
}

/// The path as signed: S3 signs it as sent; every other service encodes it once more (a function ARN in Lambda's
/// path, `arn%3Aaws%3A...`, is signed as `arn%253Aaws%253A...`).
fn canonical_path<'a>(path: &'a str, service: &str) -> std::borrow::Cow<'a, str> {
    const KEEP: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    if service == "s3" { path.into() } else { percent_encoding::utf8_percent_encode(path, KEEP).into() }
}

/// Query parameters sorted by name then value, each already percent-encoded as sent (SigV4 rule).
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(&str, &str)> =
        query.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, ""))).collect();
    pairs.sort_unstable();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sdk_authorization_header() {
        let h = "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-2/firehose/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=abc";
        let a = parse_authorization(h).unwrap();
        assert_eq!((a.access_key, a.date, a.region, a.service), ("test", "20261125", "us-east-2", "firehose"));
        assert_eq!(a.signed_headers, ["content-type", "host", "x-amz-date"]);
        assert_eq!(a.signature, "abc");
        assert_eq!(parse_authorization("Bearer x"), None);
    }

    #[test]
    fn presigned_scope_is_read_from_the_query() {
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=test%2F20261125%2Fus-east-2%2Fs3%2Faws4_request";
        assert_eq!(presigned_service(q).as_deref(), Some("s3"));
    }

    #[test]
    fn missing_authorization_is_rejected() {
        let err = verify("POST", "/", "", &HeaderMap::new(), b"", "test").unwrap_err();
        assert_eq!(err.code, "MissingAuthenticationToken");
    }
}
