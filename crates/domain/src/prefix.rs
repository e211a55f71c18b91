//! S3 prefixes of a Firehose destination: the rules CreateDeliveryStream enforces on `Prefix` and
//! `ErrorOutputPrefix`, and the evaluation of their expressions when an object is named.
//!
//! Expressions have the form `!{namespace:value}`: `timestamp` (a Java DateTimeFormatter pattern, evaluated at
//! the arrival of the oldest record in the object, in the stream's `CustomTimeZone`), `firehose`
//! (`random-string`, `error-output-type`), and `partitionKeyFromQuery` / `partitionKeyFromLambda` (dynamic
//! partitioning). A prefix without a timestamp (or partition-key) expression gets `yyyy/MM/dd/HH/` appended,
//! with no `/` inserted before it.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use rand::Rng;

use super::limits::MAX_PREFIX_CHARS;

/// One piece of a parsed prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    /// A Java DateTimeFormatter pattern.
    Timestamp(String),
    RandomString,
    ErrorOutputType,
    PartitionKeyFromQuery(String),
    PartitionKeyFromLambda(String),
}

impl Part {
    fn is_partition_key(&self) -> bool {
        matches!(self, Part::PartitionKeyFromQuery(_) | Part::PartitionKeyFromLambda(_))
    }
}

/// A validated prefix, ready to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    parts: Vec<Part>,
}

/// The destination's two prefixes, validated together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefixes {
    /// Where delivered objects go (with the default `yyyy/MM/dd/HH/` appended when it applies).
    pub data: Prefix,
    /// Where records that failed processing go: `ErrorOutputPrefix`, with the default `yyyy/MM/dd/HH/` appended
    /// when it has no timestamp.
    pub error: Prefix,
    error_set: bool,
}

/// What an expression evaluates with.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// Arrival of the oldest record in the object.
    pub at: DateTime<Utc>,
    /// The stream's `CustomTimeZone` (UTC by default).
    pub zone: Tz,
    /// Partition keys of the object's records (dynamic partitioning), by key name.
    pub partition_keys: Option<&'a BTreeMap<String, String>>,
    /// What `!{firehose:error-output-type}` stands for.
    pub error_output_type: &'a str,
}

impl<'a> Context<'a> {
    pub fn new(at: DateTime<Utc>, zone: Tz) -> Self {
        Context { at, zone, partition_keys: None, error_output_type: "processing-failed" }
    }
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
            ("timestamp", pattern) if !pattern.is_empty() => {
                check_java(pattern).map_err(|why| {
                    format!("{field} expression `!{{{expr}}}` is not a valid timestamp pattern: {why}")
                })?;
                Part::Timestamp(pattern.to_string())
            }
            ("firehose", "random-string") => Part::RandomString,
            ("firehose", "error-output-type") => Part::ErrorOutputType,
            ("partitionKeyFromQuery", key) if !key.is_empty() => Part::PartitionKeyFromQuery(key.to_string()),
            ("partitionKeyFromLambda", key) if !key.is_empty() => Part::PartitionKeyFromLambda(key.to_string()),
            _ => return Err(format!("{field} has an unsupported expression `!{{{expr}}}`")),
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

/// The expression Firehose appends to a prefix without a timestamp.
const DEFAULT_TIMESTAMP: &str = "yyyy/MM/dd/HH/";

/// Validates a destination's `Prefix` and `ErrorOutputPrefix` together, as CreateDeliveryStream does.
/// `dynamic_partitioning` is whether the destination enables it (partition-key namespaces need it, and it
/// needs them). The error is AWS's rule in words.
pub fn validate(
    prefix: Option<&str>,
    error_prefix: Option<&str>,
    dynamic_partitioning: bool,
) -> Result<Prefixes, String> {
    let prefix = prefix.unwrap_or("");
    let error_prefix = error_prefix.unwrap_or("");
    for (field, text) in [("Prefix", prefix), ("ErrorOutputPrefix", error_prefix)] {
        if text.chars().count() > MAX_PREFIX_CHARS {
            return Err(format!("{field} is longer than {MAX_PREFIX_CHARS} characters"));
        }
    }
    let mut parts = parse(prefix, "Prefix")?;
    let error_parts = parse(error_prefix, "ErrorOutputPrefix")?;
    if parts.contains(&Part::ErrorOutputType) {
        return Err(
            "Prefix cannot contain !{firehose:error-output-type}; it may appear only in ErrorOutputPrefix".into()
        );
    }
    if error_parts.iter().any(Part::is_partition_key) {
        return Err(
            "ErrorOutputPrefix cannot use the partitionKeyFromQuery or partitionKeyFromLambda namespaces".into()
        );
    }
    let partitioned = parts.iter().any(Part::is_partition_key);
    if partitioned && !dynamic_partitioning {
        return Err(
            "Dynamic Partitioning Namespaces can only be part of a prefix expression when Dynamic Partitioning is enabled."
                .into(),
        );
    }
    if dynamic_partitioning && !partitioned {
        return Err(
            "S3 Prefix should contain Dynamic Partitioning namespaces when Dynamic Partitioning is enabled".into()
        );
    }
    if dynamic_partitioning && error_prefix.is_empty() {
        return Err("ErrorOutputPrefix must be specified when Dynamic Partitioning is enabled".into());
    }
    if has_expressions(&parts) && error_prefix.is_empty() {
        return Err("ErrorOutputPrefix must be specified when Prefix contains expressions".into());
    }
    if has_expressions(&error_parts) && !error_parts.contains(&Part::ErrorOutputType) {
        return Err("ErrorOutputPrefix with expressions must contain at least one !{firehose:error-output-type}".into());
    }
    if !partitioned && !parts.iter().any(|p| matches!(p, Part::Timestamp(_))) {
        parts.push(Part::Timestamp(DEFAULT_TIMESTAMP.into()));
    }
    let error_set = !error_prefix.is_empty();
    let mut error_parts = error_parts;
    if !error_parts.iter().any(|p| matches!(p, Part::Timestamp(_))) {
        error_parts.push(Part::Timestamp(DEFAULT_TIMESTAMP.into()));
    }
    Ok(Prefixes { data: Prefix { parts }, error: Prefix { parts: error_parts }, error_set })
}

/// Parses `CustomTimeZone`: empty or absent is UTC; otherwise an IANA zone name such as `Asia/Tokyo`.
pub fn parse_time_zone(zone: Option<&str>) -> Result<Tz, String> {
    match zone.map(str::trim) {
        None | Some("") => Ok(Tz::UTC),
        Some(name) => name
            .parse::<Tz>()
            .map_err(|_| format!("CustomTimeZone `{name}` is not a time zone name such as UTC or Asia/Tokyo")),
    }
}

/// A prefix that failed to evaluate: a partition key the records did not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingKey(pub String);

impl Prefix {
    /// The prefix for an object in `ctx`.
    pub fn evaluate(&self, ctx: &Context<'_>) -> Result<String, MissingKey> {
        let local = ctx.at.with_timezone(&ctx.zone);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Timestamp(pattern) => out.push_str(&format_java(pattern, &local)),
                Part::RandomString => out.push_str(&random_string()),
                Part::ErrorOutputType => out.push_str(ctx.error_output_type),
                Part::PartitionKeyFromQuery(key) | Part::PartitionKeyFromLambda(key) => {
                    match ctx.partition_keys.and_then(|k| k.get(key)) {
                        Some(value) => out.push_str(value),
                        None => return Err(MissingKey(key.clone())),
                    }
                }
            }
        }
        Ok(out)
    }

    /// The literal text before the first expression: every key under this prefix starts with it.
    pub fn static_part(&self) -> String {
        self.parts.iter().map_while(|p| if let Part::Literal(s) = p { Some(s.as_str()) } else { None }).collect()
    }

    /// Whether this is a static prefix followed by the default `yyyy/MM/dd/HH/` layout alone, so that the keys
    /// of one hour can be listed under one prefix.
    pub fn is_hourly_layout(&self) -> bool {
        match self.parts.as_slice() {
            [Part::Timestamp(t)] => t == DEFAULT_TIMESTAMP,
            [Part::Literal(_), Part::Timestamp(t)] => t == DEFAULT_TIMESTAMP,
            _ => false,
        }
    }

    /// The partition keys this prefix uses, in order.
    pub fn partition_keys(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::PartitionKeyFromQuery(k) | Part::PartitionKeyFromLambda(k) => Some(k.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }
}

impl Prefixes {
    /// Whether `ErrorOutputPrefix` was set.
    pub fn error_prefix_set(&self) -> bool {
        self.error_set
    }

    /// Where records that failed go: `ErrorOutputPrefix` when it is set, else the folder Firehose names after the
    /// failure (`processing-failed/`) with the default timestamp.
    pub fn error_output(&self, folder: &str) -> Prefix {
        if self.error_set {
            return self.error.clone();
        }
        Prefix { parts: vec![Part::Literal(format!("{folder}/")), Part::Timestamp(DEFAULT_TIMESTAMP.into())] }
    }
}

/// The literal start of a destination's `Prefix` as written (before its first expression): every delivered key
/// starts with it, whatever the expressions and however the stream was made.
pub fn static_part_of(prefix: Option<&str>) -> &str {
    let text = prefix.unwrap_or("");
    text.find("!{").map_or(text, |i| &text[..i])
}

/// The list prefix of one hour of the default layout under a static prefix, in the stream's time zone.
pub fn hour_prefix(static_part: &str, hour: DateTime<Utc>, zone: Tz) -> String {
    format!("{static_part}{}", hour.with_timezone(&zone).format("%Y/%m/%d/%H/"))
}

fn random_string() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..11).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// Java's DateTimeFormatter pattern letters a prefix may use: the emulator applies the ones
/// [`format_java`] formats, and refuses the rest ([`unmodelled_letter`]).
const JAVA_LETTERS: &str = "GuyDMLdQqYwWEecFahKkHmsSAnNVvzOXxZpBg";

/// What Java's `DateTimeFormatter.ofPattern` refuses in `pattern` (its own message), as Firehose would on
/// create: a letter that is not a pattern letter, a reserved character, or too many of a letter.
pub fn check_java(pattern: &str) -> Result<(), String> {
    let mut error = None;
    walk_java(pattern, |token| {
        if error.is_none()
            && let Java::Letter(c, run) = token
        {
            error = java_count_problem(c, run);
        }
    });
    error.map_or(Ok(()), Err)
}

/// The first pattern letter in `pattern` that Java accepts but the emulator does not format (a locale's week
/// rules, zone names and ids, padding): the emulator refuses it rather than write it wrong.
pub fn unmodelled_letter(pattern: &str) -> Option<char> {
    let mut found = None;
    walk_java(pattern, |token| {
        if let Java::Letter(c, run) = token
            && found.is_none()
            && (matches!(c, 'Y' | 'w' | 'W' | 'e' | 'c' | 'F' | 'V' | 'v' | 'p' | 'B' | 'g') || (c == 'z' && run > 3))
        {
            found = Some(c);
        }
    });
    found
}

enum Java<'a> {
    Text(&'a [char]),
    Letter(char, usize),
    Other(char),
}

/// Calls `f` for each token of a Java pattern: quoted text (`''` is a quote), a run of one letter, any other
/// character.
fn walk_java(pattern: &str, mut f: impl FnMut(Java<'_>)) {
    let chars: Vec<char> = pattern.chars().collect();
    let quote = ['\''];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                f(Java::Text(&quote));
                i += 2;
                continue;
            }
            let end = chars[i + 1..].iter().position(|&x| x == '\'').map(|p| i + 1 + p).unwrap_or(chars.len());
            f(Java::Text(&chars[(i + 1).min(end)..end]));
            i = end + 1;
            continue;
        }
        if c.is_ascii_alphabetic() {
            let run = chars[i..].iter().take_while(|&&x| x == c).count();
            f(Java::Letter(c, run));
            i += run;
        } else {
            f(Java::Other(c));
            i += 1;
        }
    }
}

/// Java's refusal of `run` copies of letter `c`, if it refuses them.
fn java_count_problem(c: char, run: usize) -> Option<String> {
    if !JAVA_LETTERS.contains(c) {
        return Some(format!("Unknown pattern letter: {c}"));
    }
    let most = match c {
        'G' | 'M' | 'L' | 'Q' | 'q' | 'E' | 'e' | 'c' | 'X' | 'x' | 'Z' | 'B' => 5,
        'd' | 'h' | 'K' | 'k' | 'H' | 'm' | 's' | 'w' => 2,
        'D' => 3,
        'a' | 'W' | 'F' => 1,
        'z' => 4,
        'S' | 'n' => 9,
        _ => 19,
    };
    if run > most {
        return Some(format!("Too many pattern letters: {c}"));
    }
    match (c, run) {
        ('V', n) if n != 2 => Some("Pattern letter count must be 2: V".into()),
        ('v', n) if n != 1 && n != 4 => Some("Wrong number of pattern letters: v".into()),
        ('O', n) if n != 1 && n != 4 => Some("Pattern letter count must be 1 or 4: O".into()),
        ('c', 2) => Some("Invalid pattern \"cc\"".into()),
        _ => None,
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// A name as Java's text styles print it: short (3 letters), full, or narrow (1 letter).
fn text_style(full: &str, run: usize) -> String {
    match run {
        4 => full.to_string(),
        5 => full[..1].to_string(),
        _ => full[..3].to_string(),
    }
}

/// An offset in seconds east of UTC as `+HH`, `+HHmm`, `+HH:mm` (with seconds when there are any).
fn offset_text(secs: i32, minutes: Minutes, colon: bool) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    let sep = if colon { ":" } else { "" };
    let mut out = format!("{sign}{h:02}");
    if minutes == Minutes::Always || (minutes == Minutes::IfAny && (m != 0 || s != 0)) {
        out.push_str(&format!("{sep}{m:02}"));
    }
    if s != 0 && minutes != Minutes::IfAny {
        out.push_str(&format!("{sep}{s:02}"));
    }
    out
}

#[derive(PartialEq, Clone, Copy)]
enum Minutes {
    IfAny,
    Always,
}

/// Formats `at` with Java's DateTimeFormatter patterns: era, years (`yyyy`, `yy`, `uuuu`), months as numbers or
/// names (`M`…`MMMMM`, `L`), day of month and of year, quarters, day-of-week names, AM/PM and the four hour
/// fields, minutes, seconds, fractions (`S`, `n`, `N`, `A`), offsets (`X`, `x`, `Z`, `O`), the zone's short name
/// (`z`), optional sections (`[` `]`, always printed) and `'quoted text'` (`''` is a quote). Letters the emulator
/// refuses ([`unmodelled_letter`]) or Java refuses ([`check_java`]) are copied as they are (never reached:
/// validation refuses them first).
pub fn format_java<Z: TimeZone>(pattern: &str, at: &DateTime<Z>) -> String
where
    Z::Offset: std::fmt::Display,
{
    let mut out = String::new();
    let offset = at.offset().fix().local_minus_utc();
    walk_java(pattern, |token| match token {
        Java::Text(t) => out.extend(t),
        Java::Other('[' | ']') => {}
        Java::Other(c) => out.push(c),
        Java::Letter(c, run) => match java_field(c, run, at, offset) {
            Some(text) => out.push_str(&text),
            None => out.extend(std::iter::repeat_n(c, run)),
        },
    });
    out
}

fn java_field<Z: TimeZone>(c: char, run: usize, at: &DateTime<Z>, offset: i32) -> Option<String>
where
    Z::Offset: std::fmt::Display,
{
    let pad = |v: u64, width: usize| format!("{v:0width$}");
    let hour12 = |h: u32| if h.is_multiple_of(12) { 12 } else { h % 12 };
    let quarter = at.month0() / 3 + 1;
    let nanos = at.nanosecond() % 1_000_000_000;
    let of_day = at.num_seconds_from_midnight() as u64;
    Some(match c {
        'G' => {
            let ad = at.year() > 0;
            match run {
                4 => (if ad { "Anno Domini" } else { "Before Christ" }).to_string(),
                5 => (if ad { "A" } else { "B" }).to_string(),
                _ => (if ad { "AD" } else { "BC" }).to_string(),
            }
        }
        'y' | 'u' if run == 2 => pad(at.year().rem_euclid(100) as u64, 2),
        'y' | 'u' => format!("{:0width$}", at.year(), width = run),
        'M' | 'L' if run >= 3 => text_style(MONTHS[at.month0() as usize], run),
        'M' | 'L' => pad(at.month() as u64, run),
        'd' => pad(at.day() as u64, run),
        'D' => pad(at.ordinal() as u64, run),
        'Q' | 'q' => match run {
            1 | 5 => quarter.to_string(),
            2 => pad(quarter as u64, 2),
            3 => format!("Q{quarter}"),
            _ => format!("{}{} quarter", quarter, ["st", "nd", "rd", "th"][quarter as usize - 1]),
        },
        'E' => text_style(DAYS[at.weekday().num_days_from_monday() as usize], run),
        'a' => (if at.hour() < 12 { "AM" } else { "PM" }).to_string(),
        'h' => pad(hour12(at.hour()) as u64, run),
        'K' => pad((at.hour() % 12) as u64, run),
        'k' => pad(if at.hour() == 0 { 24 } else { at.hour() } as u64, run),
        'H' => pad(at.hour() as u64, run),
        'm' => pad(at.minute() as u64, run),
        's' => pad(at.second() as u64, run),
        'S' => {
            let digits = format!("{nanos:09}");
            digits.get(..run).unwrap_or(&digits).to_string()
        }
        'n' => pad(nanos as u64, run),
        'N' => pad(of_day * 1_000_000_000 + nanos as u64, run),
        'A' => pad(of_day * 1000 + nanos as u64 / 1_000_000, run),
        'X' if offset == 0 => "Z".to_string(),
        'X' | 'x' => match run {
            1 => offset_text(offset, Minutes::IfAny, false),
            2 | 4 => offset_text(offset, Minutes::Always, false),
            _ => offset_text(offset, Minutes::Always, true),
        },
        'Z' => match run {
            4 if offset == 0 => "GMT".to_string(),
            4 => format!("GMT{}", offset_text(offset, Minutes::Always, true)),
            5 if offset == 0 => "Z".to_string(),
            5 => offset_text(offset, Minutes::Always, true),
            _ => offset_text(offset, Minutes::Always, false),
        },
        'O' if offset == 0 => "GMT".to_string(),
        'O' if run == 4 => format!("GMT{}", offset_text(offset, Minutes::Always, true)),
        'O' => {
            let (sign, a) = (if offset < 0 { '-' } else { '+' }, offset.unsigned_abs());
            match a / 60 % 60 {
                0 => format!("GMT{sign}{}", a / 3600),
                m => format!("GMT{sign}{}:{m:02}", a / 3600),
            }
        }
        'z' => at.format("%Z").to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 5, 7, 8, 9).unwrap()
    }

    fn eval(p: &Prefix) -> String {
        p.evaluate(&Context::new(at(), Tz::UTC)).unwrap()
    }

    #[test]
    fn default_layout_is_appended_without_inserting_a_slash() {
        assert_eq!(eval(&validate(None, None, false).unwrap().data), "2026/11/05/07/");
        assert_eq!(eval(&validate(Some("logs/"), None, false).unwrap().data), "logs/2026/11/05/07/");
        assert_eq!(eval(&validate(Some("logs"), None, false).unwrap().data), "logs2026/11/05/07/");
        assert!(validate(Some("logs/"), None, false).unwrap().data.is_hourly_layout());
    }

    #[test]
    fn expressions_are_evaluated() {
        let p = validate(
            Some("y=!{timestamp:yyyy}/m=!{timestamp:MM}/!{firehose:random-string}/"),
            Some("err/!{firehose:error-output-type}/"),
            false,
        )
        .unwrap();
        let key = eval(&p.data);
        assert!(key.starts_with("y=2026/m=11/"), "{key}");
        assert_eq!(key.len(), "y=2026/m=11/".len() + 11 + 1);
        assert_eq!(p.data.static_part(), "y=");
        assert_eq!(static_part_of(Some("y=!{timestamp:yyyy}/")), "y=");
        assert_eq!((static_part_of(Some("logs/")), static_part_of(None)), ("logs/", ""));
        assert!(!p.data.is_hourly_layout());
        assert!(eval(&p.error).starts_with("err/processing-failed/2026/11/05/07/"));
        assert_eq!(format_java("'year='yyyy/dd/DDD/''", &at()), "year=2026/05/309/'");
    }

    /// Java's DateTimeFormatter letters beyond numbers: names, AM/PM, the hour fields, quarters, fractions, offsets
    /// and zone names, optional sections; what Java refuses, and what the emulator does not model.
    #[test]
    fn java_pattern_letters_format_as_java_does() {
        let t = at(); // Thursday 2026-11-05 07:08:09 UTC
        assert_eq!(format_java("EEE-hh-a", &t), "Thu-07-AM");
        assert_eq!(format_java("EEEE EEEEE", &t), "Thursday T");
        assert_eq!(format_java("MMM MMMM MMMMM LLL", &t), "Nov November N Nov");
        assert_eq!(format_java("Q QQ QQQ QQQQ", &t), "4 04 Q4 4th quarter");
        assert_eq!(format_java("G GGGG k K h", &t), "AD Anno Domini 7 7 7");
        assert_eq!(format_java("[yyyy]/SSS/A", &(t + chrono::Duration::milliseconds(123))), "2026/123/25689123");
        assert_eq!(format_java("X xxx Z ZZZZ O z", &t), "Z +00:00 +0000 GMT GMT UTC");
        let pm = t.with_timezone(&Tz::Asia__Tokyo) + chrono::Duration::hours(6);
        assert_eq!(format_java("hh a XXX O z", &pm), "10 PM +09:00 GMT+9 JST");
        let india = t.with_timezone(&Tz::Asia__Kolkata);
        assert_eq!(format_java("X OOOO", &india), "+0530 GMT+05:30");
        assert_eq!(format_java("O", &india), "GMT+5:30");
        assert_eq!(check_java("yyyy-bb"), Err("Unknown pattern letter: b".into()));
        assert_eq!(check_java("MMMMMM"), Err("Too many pattern letters: M".into()));
        assert_eq!(check_java("'bbb' yyyy"), Ok(()), "quoted text is text");
        assert_eq!((check_java("ww"), unmodelled_letter("yyyy-ww")), (Ok(()), Some('w')));
        assert_eq!(unmodelled_letter("EEE-hh-a 'week'"), None);
        let refused = validate(Some("d=!{timestamp:yyyy-bb}/"), Some("e/!{firehose:error-output-type}/"), false);
        assert!(refused.unwrap_err().contains("is not a valid timestamp pattern: Unknown pattern letter: b"));
    }

    /// Prefixes people use on AWS (an `aws firehose update-destination` call from a public gist), and the
    /// developer guide's example (`!{timestamp:yyyy}` evaluates to the year).
    #[test]
    fn prefixes_from_the_field() {
        let p = validate(
            Some("test_hose/dt=!{timestamp:yyyy'-'MM'-'dd}/h=!{timestamp:HH}/"),
            Some("test_hose/processing-failed/dt=!{timestamp:yyyy'-'MM'-'dd}/h=!{timestamp:HH}/!{firehose:error-output-type}"),
            false,
        )
        .unwrap();
        assert_eq!(eval(&p.data), "test_hose/dt=2026-11-05/h=07/");
        assert_eq!(eval(&p.error), "test_hose/processing-failed/dt=2026-11-05/h=07/processing-failed");
        assert_eq!(format_java("yyyy", &at()), "2026");
    }

    #[test]
    fn custom_time_zones_shift_the_prefix() {
        let tokyo = parse_time_zone(Some("Asia/Tokyo")).unwrap();
        let p = validate(None, None, false).unwrap().data;
        assert_eq!(p.evaluate(&Context::new(at(), tokyo)).unwrap(), "2026/11/05/16/");
        assert_eq!(parse_time_zone(Some("")).unwrap(), Tz::UTC);
        assert!(parse_time_zone(Some("Mars/Olympus")).unwrap_err().contains("Mars/Olympus"));
    }

    #[test]
    fn partition_keys_need_dynamic_partitioning_and_values() {
        let err = validate(Some("a/!{partitionKeyFromQuery:k}/"), Some("e/"), false).unwrap_err();
        assert!(err.contains("only be part of a prefix expression when Dynamic Partitioning is enabled"), "{err}");
        assert!(!err.contains("emulator"));
        assert!(validate(Some("a/"), Some("e/"), true).unwrap_err().contains("should contain"));
        assert!(validate(Some("a/!{partitionKeyFromQuery:k}/"), None, true).is_err());
        let p = validate(Some("status=!{partitionKeyFromQuery:status}/"), Some("e/"), true).unwrap().data;
        assert_eq!(p.partition_keys(), vec!["status"]);
        let none = BTreeMap::new();
        let mut ctx = Context::new(at(), Tz::UTC);
        ctx.partition_keys = Some(&none);
        assert_eq!(p.evaluate(&ctx), Err(MissingKey("status".into())));
        let keys = BTreeMap::from([("status".to_string(), "404".to_string())]);
        ctx.partition_keys = Some(&keys);
        assert_eq!(p.evaluate(&ctx).unwrap(), "status=404/", "no default timestamp with partition keys");
    }

    #[test]
    fn semantic_rules_are_enforced() {
        let v = |p: &str, e: Option<&str>| validate(Some(p), e, false);
        assert!(v("!{timestamp:yyyy}/", None).unwrap_err().contains("ErrorOutputPrefix must be specified"));
        assert!(v("a/", Some("e/!{timestamp:yyyy}/")).unwrap_err().contains("error-output-type"));
        assert!(v("a/!{firehose:error-output-type}/", Some("e/")).is_err());
        assert!(v("a/!{oops", None).unwrap_err().contains("unterminated"));
        assert!(v("a/!{bogus:x}/", Some("e/")).is_err());
        assert!(v(&"a".repeat(1025), None).is_err());
        assert!(v(&"é".repeat(1024), None).is_ok(), "the limit counts characters");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Any text as Prefix / ErrorOutputPrefix / time zone is accepted or refused with a reason, never a panic;
        /// an accepted prefix evaluates (in any zone) to text that starts with its static part, and every
        /// timestamp in it is the same instant.
        #[test]
        fn any_prefix_text_validates_or_says_why(
            prefix in "(\\PC|!\\{(timestamp|firehose|partitionKeyFromQuery):[a-zA-Z'/ -]{0,8}\\}){0,12}",
            error_prefix in proptest::option::of("[a-z/]{0,5}(!\\{firehose:error-output-type\\})?[a-z/]{0,5}"),
            zone in "\\PC{0,20}",
            secs in 0i64..4_102_444_800,
            dynamic in proptest::prelude::any::<bool>(),
        ) {
            use proptest::prelude::*;
            let _ = parse_time_zone(Some(&zone));
            let at = DateTime::from_timestamp(secs, 0).unwrap();
            let _ = format_java(&prefix, &at);
            match validate(Some(&prefix), error_prefix.as_deref(), dynamic) {
                Err(why) => prop_assert!(!why.is_empty()),
                Ok(p) => {
                    let keys = BTreeMap::new();
                    for zone in [Tz::UTC, Tz::Asia__Kolkata, Tz::America__St_Johns] {
                        let mut ctx = Context::new(at, zone);
                        ctx.partition_keys = Some(&keys);
                        match p.data.evaluate(&ctx) {
                            Ok(text) => prop_assert!(text.starts_with(&p.data.static_part())),
                            Err(MissingKey(k)) => prop_assert!(p.data.partition_keys().contains(&k.as_str())),
                        }
                        let _ = p.error.evaluate(&ctx);
                    }
                    prop_assert_eq!(static_part_of(Some(&prefix)), p.data.static_part());
                }
            }
            let twice = validate(Some("!{timestamp:yyyyMMddHHmmss}/!{timestamp:yyyyMMddHHmmss}/"), Some("e/"), false).unwrap();
            let text = twice.data.evaluate(&Context::new(at, Tz::UTC)).unwrap();
            let halves: Vec<&str> = text.split('/').collect();
            prop_assert_eq!(halves[0], halves[1]);
        }
    }
}
