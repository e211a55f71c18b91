//! Realistic Apache access-log lines: IPv4 and some IPv6 clients, weighted methods, paths, statuses, response
//! sizes, referers and user agents, with timestamps that increase from a start time. Given a seed, the sequence
//! is repeatable (for the same start time).

use std::io::Write;

use chrono::{DateTime, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Apache log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `%h %l %u %t "%r" %>s %b`
    Common,
    /// Common plus `"%{Referer}i" "%{User-agent}i"`.
    Combined,
}

const METHODS: &[(&str, u32)] =
    &[("GET", 800), ("POST", 120), ("HEAD", 30), ("PUT", 20), ("DELETE", 20), ("OPTIONS", 10)];
const STATUSES: &[(u16, u32)] = &[
    (200, 720),
    (304, 80),
    (404, 50),
    (301, 30),
    (302, 30),
    (201, 20),
    (204, 15),
    (403, 15),
    (500, 15),
    (400, 10),
    (503, 10),
    (206, 5),
];
const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/about",
    "/contact",
    "/products",
    "/products/{id}",
    "/products/{id}/reviews",
    "/cart",
    "/checkout",
    "/search?q={word}",
    "/search?q={word}&page={n}",
    "/blog",
    "/blog/{year}/{word}-{word}",
    "/api/v1/items",
    "/api/v1/items/{id}",
    "/api/v1/users/{id}/orders",
    "/api/v2/events?since={n}",
    "/login",
    "/logout",
    "/static/css/site.{hex}.css",
    "/static/js/app.{hex}.js",
    "/images/{word}.png",
    "/images/{word}/{n}.jpg",
    "/favicon.ico",
    "/robots.txt",
    "/sitemap.xml",
    "/wp-login.php",
    "/.env",
    "/health",
];
const WORDS: &[&str] = &[
    "apache", "firehose", "kinesis", "logs", "shoes", "coffee", "laptop", "garden", "river", "winter", "summer",
    "music", "camera", "books", "travel", "pizza", "bicycle", "rust", "cloud", "stream",
];
const REFERERS: &[&str] = &[
    "https://www.google.com/",
    "https://www.bing.com/search?q=firehose",
    "https://duckduckgo.com/",
    "https://news.ycombinator.com/",
    "https://www.reddit.com/r/aws/",
    "https://t.co/x7Rq2LmP",
    "https://example.com/",
    "https://example.com/products",
    "https://example.com/blog",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Go-http-client/2.0",
];
const USERS: &[&str] = &["frank", "alice", "bob", "carol", "deploy"];

fn weighted<T: Copy>(rng: &mut SmallRng, table: &[(T, u32)]) -> T {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    for (value, weight) in table {
        if pick < *weight {
            return *value;
        }
        pick -= weight;
    }
    table[table.len() - 1].0
}

/// Produces lines one at a time.
pub struct Generator {
    rng: SmallRng,
    format: Format,
    /// Current timestamp in milliseconds since the epoch.
    now_ms: i64,
    /// Mean gap between consecutive lines.
    gap_ms: f64,
    /// Cached `[dd/Mon/yyyy:HH:MM:SS +0000]` for `cached_sec`.
    cached_sec: i64,
    cached_time: String,
    clients_v4: Vec<[u8; 4]>,
}

impl Generator {
    /// A generator whose first timestamp is `start`, lines `gap_ms` apart on average.
    pub fn new(seed: Option<u64>, format: Format, start: DateTime<Utc>, gap_ms: f64) -> Self {
        let mut rng = match seed {
            Some(s) => SmallRng::seed_from_u64(s),
            None => SmallRng::from_os_rng(),
        };
        // A few hundred recurring clients, as real traffic has.
        let clients_v4 = (0..400)
            .map(|_| [rng.random_range(1..=223), rng.random(), rng.random(), rng.random_range(1..=254)])
            .collect();
        Generator {
            rng,
            format,
            now_ms: start.timestamp_millis(),
            gap_ms,
            cached_sec: i64::MIN,
            cached_time: String::new(),
            clients_v4,
        }
    }

    /// Moves the clock (for live generation at a rate: the timestamp follows the wall clock).
    pub fn set_time(&mut self, at: DateTime<Utc>) {
        self.now_ms = self.now_ms.max(at.timestamp_millis());
    }

    fn time(&mut self) -> &str {
        let sec = self.now_ms.div_euclid(1000);
        if sec != self.cached_sec {
            let t = DateTime::from_timestamp(sec, 0).unwrap_or_default();
            self.cached_time = t.format("[%d/%b/%Y:%H:%M:%S +0000]").to_string();
            self.cached_sec = sec;
        }
        &self.cached_time
    }

    /// Appends one line (with its `\n`) to `out`.
    pub fn write_line(&mut self, out: &mut Vec<u8>) {
        let ipv6 = self.rng.random_bool(0.05);
        if ipv6 {
            let _ = write!(
                out,
                "2001:db8:{:x}:{:x}::{:x}",
                self.rng.random::<u16>(),
                self.rng.random::<u16>(),
                self.rng.random_range(1..0xffffu32)
            );
        } else {
            let c = self.clients_v4[self.rng.random_range(0..self.clients_v4.len())];
            let _ = write!(out, "{}.{}.{}.{}", c[0], c[1], c[2], c[3]);
        }
        let user = if self.rng.random_bool(0.03) { USERS[self.rng.random_range(0..USERS.len())] } else { "-" };
        let _ = write!(out, " - {user} ");
        let time = self.time().to_string();
        out.extend_from_slice(time.as_bytes());
        let method = weighted(&mut self.rng, METHODS);
        let _ = write!(out, " \"{method} ");
        self.write_path(out);
        let protocol = match self.rng.random_range(0..100) {
            0..=69 => "HTTP/1.1",
            70..=97 => "HTTP/2.0",
            _ => "HTTP/1.0",
        };
        let status = weighted(&mut self.rng, STATUSES);
        let _ = write!(out, " {protocol}\" {status} ");
        if method == "HEAD" || status == 304 || status == 204 {
            out.push(b'-');
        } else {
            let size: u32 = match status {
                200 | 206 => self.rng.random_range(200..60_000),
                _ => self.rng.random_range(150..2_000),
            };
            let _ = write!(out, "{size}");
        }
        if self.format == Format::Combined {
            let referer =
                if self.rng.random_bool(0.4) { "-" } else { REFERERS[self.rng.random_range(0..REFERERS.len())] };
            let agent = AGENTS[self.rng.random_range(0..AGENTS.len())];
            let _ = write!(out, " \"{referer}\" \"{agent}\"");
        }
        out.push(b'\n');
        let gap = self.rng.random_range(0.0..2.0 * self.gap_ms);
        self.now_ms += gap as i64;
    }

    fn write_path(&mut self, out: &mut Vec<u8>) {
        let template = PATHS[self.rng.random_range(0..PATHS.len())];
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.extend_from_slice(&rest.as_bytes()[..start]);
            let end = rest[start..].find('}').map(|e| start + e).unwrap_or(rest.len() - 1);
            match &rest[start + 1..end] {
                "id" => {
                    let _ = write!(out, "{}", self.rng.random_range(1..100_000));
                }
                "n" => {
                    let _ = write!(out, "{}", self.rng.random_range(1..50));
                }
                "year" => {
                    let _ = write!(out, "{}", self.rng.random_range(2019..=2026));
                }
                "hex" => {
                    let _ = write!(out, "{:08x}", self.rng.random::<u32>());
                }
                _ => out.extend_from_slice(WORDS[self.rng.random_range(0..WORDS.len())].as_bytes()),
            }
            rest = &rest[end + 1..];
        }
        out.extend_from_slice(rest.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::parser::parse_line;
    use chrono::TimeZone;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 20, 0, 0).unwrap()
    }

    fn lines(seed: u64, format: Format, n: usize) -> Vec<String> {
        let mut g = Generator::new(Some(seed), format, start(), 10.0);
        let mut out = Vec::new();
        for _ in 0..n {
            g.write_line(&mut out);
        }
        String::from_utf8(out).unwrap().lines().map(str::to_string).collect()
    }

    #[test]
    fn every_line_parses_in_its_format_and_time_increases() {
        for format in [Format::Combined, Format::Common] {
            let mut last = None;
            for line in lines(1, format, 2000) {
                let parsed = parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
                assert_eq!(parsed.referer.is_some(), format == Format::Combined, "{line}");
                let t = chrono::DateTime::parse_from_rfc3339(&parsed.time).unwrap();
                assert!(last.is_none_or(|l| l <= t), "{line}");
                last = Some(t);
            }
        }
    }

    #[test]
    fn a_seed_repeats_the_lines_and_mixes_clients_and_statuses() {
        let a = lines(42, Format::Combined, 500);
        assert_eq!(a, lines(42, Format::Combined, 500));
        assert_ne!(a, lines(43, Format::Combined, 500));
        assert!(a.iter().any(|l| l.starts_with("2001:db8:")), "some IPv6 clients");
        assert!(a.iter().any(|l| l.contains("\" 404 ")), "some 404s");
        assert!(a.iter().any(|l| l.contains("\"POST ")), "some POSTs");
        assert!(a[0].contains("[25/Nov/2026:20:00:00 +0000]"), "{}", a[0]);
    }
}
