//! Parser for Apache access-log lines in the common and combined formats, to typed fields (`send --format json`).
//!
//! `%h %l %u %t "%r" %>s %b ["%{Referer}i" "%{User-agent}i"]`. Quoted fields may contain `\"` escapes, `-` means
//! absent, the time becomes ISO-8601 with its offset, status an integer and size an integer or null.

use serde::Serialize;

/// One parsed access-log line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    pub host: String,
    pub ident: Option<String>,
    pub user: Option<String>,
    /// ISO-8601 with offset, e.g. `2000-10-10T13:55:36-07:00`.
    pub time: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub protocol: Option<String>,
    pub status: u16,
    pub bytes: Option<u64>,
    pub referer: Option<String>,
    pub agent: Option<String>,
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_spaces(&mut self) {
        while self.s[self.pos..].starts_with(' ') {
            self.pos += 1;
        }
    }

    fn token(&mut self, what: &str) -> Result<&'a str, String> {
        self.skip_spaces();
        let rest = &self.s[self.pos..];
        let end = rest.find(' ').unwrap_or(rest.len());
        if end == 0 {
            return Err(format!("missing {what}"));
        }
        self.pos += end;
        Ok(&rest[..end])
    }

    fn bracketed(&mut self, what: &str) -> Result<&'a str, String> {
        self.skip_spaces();
        let rest = &self.s[self.pos..];
        if !rest.starts_with('[') {
            return Err(format!("expected [{what}]"));
        }
        let end = rest.find(']').ok_or_else(|| format!("unterminated [{what}]"))?;
        self.pos += end + 1;
        Ok(&rest[1..end])
    }

    fn quoted(&mut self, what: &str) -> Result<String, String> {
        self.skip_spaces();
        let rest = &self.s[self.pos..];
        if !rest.starts_with('"') {
            return Err(format!("expected a quoted {what}"));
        }
        let mut out = String::new();
        let mut chars = rest[1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, next)) = chars.next() {
                        out.push(next);
                    }
                }
                '"' => {
                    self.pos += i + 2;
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        Err(format!("unterminated quoted {what}"))
    }

    fn at_end(&mut self) -> bool {
        self.skip_spaces();
        self.pos >= self.s.len()
    }
}

fn dash(s: &str) -> Option<String> {
    if s == "-" { None } else { Some(s.to_string()) }
}

/// Parses one line (without its line terminator; a trailing `\r` is ignored).
pub fn parse_line(line: &[u8]) -> Result<LogEntry, String> {
    parse_line_in(line, false)
}

/// [`parse_line`], the time in UTC when `utc` (`2000-10-10T20:55:36Z`: the form the OpenX JSON SerDe documents
/// for timestamps, and what a Parquet timestamp keeps, an instant without its offset).
pub fn parse_line_in(line: &[u8], utc: bool) -> Result<LogEntry, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|e| format!("not valid UTF-8 at byte {}", e.valid_up_to()))?;
    if text.trim().is_empty() {
        return Err("empty line".into());
    }
    let mut c = Cursor { s: text, pos: 0 };
    let host = c.token("host")?.to_string();
    let ident = dash(c.token("ident")?);
    let user = dash(c.token("user")?);
    let raw_time = c.bracketed("time")?;
    let time = chrono::DateTime::parse_from_str(raw_time, "%d/%b/%Y:%H:%M:%S %z")
        .map_err(|_| format!("time `{raw_time}` is not in the form 10/Oct/2000:13:55:36 -0700"))?;
    let time = if utc { time.to_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) } else { time.to_rfc3339() };
    let request = c.quoted("request")?;
    let mut parts = request.splitn(3, ' ');
    let (method, path, protocol) = match (parts.next(), parts.next(), parts.next()) {
        (Some("-"), None, None) | (Some(""), None, None) => (None, None, None),
        (Some(m), Some(p), proto) => (Some(m.to_string()), Some(p.to_string()), proto.map(str::to_string)),
        _ => (None, Some(request.clone()), None),
    };
    let status_text = c.token("status")?;
    let status = status_text
        .parse::<u16>()
        .ok()
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| format!("status `{status_text}` is not an HTTP status code"))?;
    let bytes_text = c.token("size")?;
    let bytes = if bytes_text == "-" {
        None
    } else {
        Some(bytes_text.parse::<u64>().map_err(|_| format!("size `{bytes_text}` is neither a number nor -"))?)
    };
    let (referer, agent) = if c.at_end() {
        (None, None)
    } else {
        let referer = c.quoted("referer")?;
        let agent = c.quoted("user agent")?;
        if !c.at_end() {
            return Err("unexpected text after the user agent".into());
        }
        (Some(referer), Some(agent))
    };
    Ok(LogEntry { host, ident, user, time, method, path, protocol, status, bytes, referer, agent })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_format() {
        let e = parse_line(b"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326")
            .unwrap();
        assert_eq!(e.host, "127.0.0.1");
        assert_eq!(e.ident, None);
        assert_eq!(e.user.as_deref(), Some("frank"));
        assert_eq!(e.time, "2000-10-10T13:55:36-07:00");
        assert_eq!(
            (e.method.as_deref(), e.path.as_deref(), e.protocol.as_deref()),
            (Some("GET"), Some("/apache_pb.gif"), Some("HTTP/1.0"))
        );
        assert_eq!((e.status, e.bytes), (200, Some(2326)));
        assert_eq!((e.referer, e.agent), (None, None));
    }

    #[test]
    fn parses_combined_format_with_ipv6_dashes_and_escapes() {
        let line = br#"2001:db8::1 - - [25/Nov/2026:20:00:00 +0000] "GET /q?x=\"a\" HTTP/2.0" 304 - "-" "curl/8.5.0""#;
        let e = parse_line(line).unwrap();
        assert_eq!(e.host, "2001:db8::1");
        assert_eq!(e.path.as_deref(), Some(r#"/q?x="a""#));
        assert_eq!(e.bytes, None);
        assert_eq!(e.referer.as_deref(), Some("-"));
        assert_eq!(e.agent.as_deref(), Some("curl/8.5.0"));
        assert_eq!(e.time, "2026-11-25T20:00:00+00:00");
    }

    #[test]
    fn keeps_a_crlf_line_and_a_dash_request() {
        let e = parse_line(b"10.0.0.1 - - [01/Jan/2026:00:00:00 +0100] \"-\" 408 -\r").unwrap();
        assert_eq!((e.method, e.path, e.status), (None, None, 408));
    }

    #[test]
    fn garbage_is_rejected_with_a_reason() {
        for (line, reason) in [
            (&b""[..], "empty"),
            (b"just some text", "expected [time]"),
            (b"1.2.3.4 - - [bad time] \"GET / HTTP/1.1\" 200 1", "time `bad time`"),
            (b"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" OK 1", "status `OK`"),
            (b"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 lots", "size `lots`"),
            (b"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1", "unterminated"),
            (b"\xff\xfe - - [x]", "UTF-8"),
        ] {
            let err = parse_line(line).unwrap_err();
            assert!(err.contains(reason), "{err} should mention {reason}");
        }
    }

    #[test]
    fn json_has_typed_fields() {
        let e = parse_line(b"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 -").unwrap();
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["status"], 200);
        assert!(v["bytes"].is_null());
        assert_eq!(v["time"], "2000-10-10T13:55:36-07:00");
        let utc = parse_line_in(b"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 -", true).unwrap();
        assert_eq!(utc.time, "2000-10-10T20:55:36Z");
        assert_eq!(LogEntry { time: e.time.clone(), ..utc }, e, "only the time's form differs");
    }
}
