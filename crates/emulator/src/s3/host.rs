//! Virtual-hosted-style addressing: which bucket a `Host` header names. SDKs address buckets as
//! `<bucket>.<endpoint host>` unless told to use path style (aws-sdk-rust, the Go and JavaScript SDKs and Terraform
//! do so by default for a named host), so the emulator accepts, for each base domain (`localhost`, plus
//! `local --hostname`):
//!
//! - `<bucket>.<base>`, `<bucket>.s3.<base>`, `<bucket>.s3.<region>.<base>`: virtual-hosted, bucket named;
//! - `<base>`, `s3.<base>`, `s3.<region>.<base>`, an IP address, or any other host: path style (the bucket is the
//!   first path segment).

use s3s::S3Result;
use s3s::host::{S3Host, VirtualHost};

/// The emulator's S3 host parser.
#[derive(Debug, Clone)]
pub struct EmulatorHost {
    domains: Vec<String>,
}

impl EmulatorHost {
    /// `localhost` and the extra base domains given.
    pub fn new(extra: impl IntoIterator<Item = String>) -> Self {
        let mut domains = vec!["localhost".to_string()];
        domains
            .extend(extra.into_iter().map(|d| d.trim_end_matches('.').to_ascii_lowercase()).filter(|d| !d.is_empty()));
        EmulatorHost { domains }
    }

    /// The bucket a host name (without its port) addresses, if it is virtual-hosted.
    pub fn bucket_of<'a>(&self, name: &'a str) -> Option<&'a str> {
        for base in &self.domains {
            let Some(prefix) = name.strip_suffix(base.as_str()).and_then(|p| p.strip_suffix('.')) else { continue };
            // `s3`, `s3.<region>`: the service endpoint itself (path style).
            if prefix == "s3" || prefix.starts_with("s3.") {
                return None;
            }
            // `<bucket>.s3` and `<bucket>.s3.<region>`.
            if let Some(bucket) = prefix.strip_suffix(".s3") {
                return Some(bucket);
            }
            if let Some((head, region)) = prefix.rsplit_once('.')
                && let Some(bucket) = head.strip_suffix(".s3")
                && is_region(region)
            {
                return Some(bucket);
            }
            return Some(prefix);
        }
        None
    }
}

fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3 && parts.last().is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The host name of a `Host` header: without its port, and without the brackets of an IPv6 address.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => name,
        _ => host,
    }
}

impl S3Host for EmulatorHost {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = host_name(host);
        Ok(match self.bucket_of(name) {
            Some(bucket) => VirtualHost::new(host).with_bucket(bucket),
            None => VirtualHost::new(host),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_hosted_and_path_style_hosts() {
        let h = EmulatorHost::new(["s3.example.test".to_string()]);
        for (host, bucket) in [
            ("localhost:4566", None),
            ("127.0.0.1:4566", None),
            ("[::1]:4566", None),
            ("s3.localhost:4566", None),
            ("s3.us-east-2.localhost", None),
            ("logs.localhost:4566", Some("logs")),
            ("my.dotted.bucket.localhost", Some("my.dotted.bucket")),
            ("logs.s3.localhost:4566", Some("logs")),
            ("logs.s3.us-east-2.localhost:4566", Some("logs")),
            ("logs.s3.example.test", Some("logs")),
            ("elsewhere.example.com:80", None),
        ] {
            let name = host_name(host);
            assert_eq!(h.bucket_of(name), bucket, "{host}");
            let vh = h.parse_host_header(host).unwrap();
            assert_eq!(vh.bucket(), bucket, "{host}");
        }
    }
}
