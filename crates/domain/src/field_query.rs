//! The common shape of a MetadataExtraction query, `{k: .field, d: .time[0:10]}` (what `setup --partition-by`
//! writes, and what most people write), answered without jq: the record's top-level object is scanned once with
//! serde, only the named fields are kept, and nothing else is allocated. jq parses every record into a tree of
//! values first, which made partitioned ingest several times slower than plain ingest.
//!
//! It answers only where the answer is certainly jq's (jaq's, the emulator's jq): a record that is not one JSON
//! object, a number other than a small non-zero integer, a slice of a non-ASCII string or of anything but a
//! string (jaq fails on `null[0:10]`), or any JSON serde refuses, is left to jq ([`FieldQuery::keys`] returns `None`). The property test in `partitioning.rs` checks
//! the two agree wherever this one answers.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// `{key: .field[start:end], ...}` with plain identifiers, each output key once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldQuery {
    /// The record fields read, each once.
    fields: Vec<String>,
    /// Output key, index into `fields`, optional slice, in the query's order.
    keys: Vec<(String, usize, Option<Slice>)>,
}

/// `[start:end]` with non-negative bounds, either omitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slice {
    start: Option<usize>,
    end: Option<usize>,
}

/// A field's value, as far as partition keys care.
#[derive(Debug)]
enum Scalar {
    Str(String),
    Int(i64),
    Bool(bool),
    Null,
    /// An object or an array.
    Compound,
    /// Anything whose text jq might write differently (floats, large integers, zero).
    Unsure,
}

/// Integers up to this magnitude are written the same by every JSON implementation.
const EXACT_INT: i64 = 1 << 53;

impl FieldQuery {
    /// Recognises the query text, or `None` when it has any other shape.
    pub fn parse(text: &str) -> Option<Self> {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        p.ws();
        p.eat(b'{')?;
        let mut query = FieldQuery { fields: Vec::new(), keys: Vec::new() };
        loop {
            p.ws();
            let key = if p.peek() == Some(b'"') { p.quoted()? } else { p.ident()? };
            p.ws();
            p.eat(b':')?;
            p.ws();
            p.eat(b'.')?;
            let field = p.ident()?;
            let slice = if p.peek() == Some(b'[') { Some(p.slice()?) } else { None };
            if query.keys.iter().any(|(k, _, _)| *k == key) {
                return None;
            }
            let at = match query.fields.iter().position(|f| *f == field) {
                Some(at) => at,
                None => {
                    query.fields.push(field);
                    query.fields.len() - 1
                }
            };
            query.keys.push((key, at, slice));
            p.ws();
            match p.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
        p.ws();
        (p.i == p.s.len()).then_some(query)
    }

    /// The partition keys of one record, as [`super::partitioning::Query::keys`] words them; `None` when jq must
    /// decide.
    pub fn keys(&self, record: &[u8]) -> Option<Result<BTreeMap<String, String>, String>> {
        let mut de = serde_json::Deserializer::from_slice(record);
        let values = de.deserialize_map(Fields(&self.fields)).ok()?;
        de.end().ok()?;
        // Every key is evaluated before any is judged: where jq would fail on one (slicing null, say), the whole
        // query fails, whatever the others hold.
        let mut texts = Vec::with_capacity(self.keys.len());
        for (key, at, slice) in &self.keys {
            texts.push(match (&values[*at], slice) {
                (None | Some(Scalar::Null), None) => Err(null_or_empty(key)),
                (Some(Scalar::Str(s)), None) => Ok(s.clone()),
                (Some(Scalar::Str(s)), Some(slice)) if s.is_ascii() => Ok(slice.of(s).to_string()),
                (Some(Scalar::Int(n)), None) => Ok(n.to_string()),
                (Some(Scalar::Bool(b)), None) => Ok(b.to_string()),
                (Some(Scalar::Compound), None) => Err(format!("partition key `{key}` is not a scalar")),
                _ => return None,
            });
        }
        let mut keys = BTreeMap::new();
        for ((key, _, _), text) in self.keys.iter().zip(texts) {
            match text {
                Ok(text) if text.is_empty() => return Some(Err(null_or_empty(key))),
                Ok(text) => {
                    keys.insert(key.clone(), text);
                }
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(keys))
    }
}

fn null_or_empty(key: &str) -> String {
    format!("partitionKeys values must not be null or empty (key `{key}`)")
}

impl Slice {
    /// jq's `.[start:end]` of an ASCII string: bounds clamped to the length, empty when they cross.
    fn of<'s>(&self, s: &'s str) -> &'s str {
        let start = self.start.unwrap_or(0).min(s.len());
        let end = self.end.unwrap_or(s.len()).min(s.len());
        if end <= start { "" } else { &s[start..end] }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
            self.i += 1;
        }
        let ident = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        ident.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_').then(|| ident.to_string())
    }

    /// A `"key"` without escapes.
    fn quoted(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let start = self.i;
        while self.peek().is_some_and(|c| c != b'"' && c != b'\\' && c >= 0x20) {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).ok()?.to_string();
        self.eat(b'"')?;
        Some(text)
    }

    fn number(&mut self) -> Option<Option<usize>> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        if start == self.i {
            return Some(None);
        }
        std::str::from_utf8(&self.s[start..self.i]).ok()?.parse().ok().map(Some)
    }

    fn slice(&mut self) -> Option<Slice> {
        self.eat(b'[')?;
        let start = self.number()?;
        self.eat(b':')?;
        let end = self.number()?;
        self.eat(b']')?;
        Some(Slice { start, end })
    }
}

/// Reads a top-level JSON object, keeping the values of `fields` (the last of duplicated keys, as jq does).
struct Fields<'q>(&'q [String]);

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = Vec<Option<Scalar>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values: Vec<Option<Scalar>> = self.0.iter().map(|_| None).collect();
        while let Some(at) = map.next_key_seed(KeyIndex(self.0))? {
            match at {
                Some(at) => values[at] = Some(map.next_value_seed(ScalarSeed)?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(values)
    }
}

/// A key, as its index in the fields wanted (no allocation).
struct KeyIndex<'q>(&'q [String]);

impl<'de> DeserializeSeed<'de> for KeyIndex<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIndex<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|f| f == v))
    }
}

struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_string()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(if v != 0 && v.abs() < EXACT_INT { Scalar::Int(v) } else { Scalar::Unsure })
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(if v != 0 && v < EXACT_INT as u64 { Scalar::Int(v as i64) } else { Scalar::Unsure })
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Scalar, E> {
        Ok(Scalar::Unsure)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_simple_shape_only() {
        let q = FieldQuery::parse("{status: .status, date: .time[0:10], \"h\": .time[11:13]}").unwrap();
        assert_eq!(q.fields, vec!["status", "time"]);
        assert_eq!(q.keys.len(), 3);
        for other in [
            "{a: .b.c}",
            "{a: .b | ascii_downcase}",
            "{a}",
            "{a: .b, a: .c}",
            "{a: .[\"b\"]}",
            "{a: .b[-1:]}",
            ".a",
            "{a: .b} | .",
            "{\"a\\\"\": .b}",
            "{a: .b,}",
        ] {
            assert_eq!(FieldQuery::parse(other), None, "{other}");
        }
    }

    #[test]
    fn answers_or_defers() {
        let q = FieldQuery::parse("{s: .status, d: .time[0:10]}").unwrap();
        let keys = q.keys(br#"{"x":[1,{"y":2}],"status":200,"time":"2026-11-26T10:00:00Z"}"#).unwrap().unwrap();
        assert_eq!(keys, BTreeMap::from([("s".into(), "200".into()), ("d".into(), "2026-11-26".into())]));
        let err = q.keys(br#"{"time":"2026"}"#).unwrap().unwrap_err();
        assert!(err.contains("key `s`"), "{err}");
        assert!(q.keys(br#"{"status":1.5,"time":"x"}"#).is_none(), "floats are jq's");
        assert!(q.keys(br#"{"status":0,"time":"x"}"#).is_none(), "zero may have been -0");
        assert!(q.keys(r#"{"status":1,"time":"é"}"#.as_bytes()).is_none(), "non-ASCII slices are jq's");
        assert!(q.keys(br#"[1]"#).is_none());
        assert!(q.keys(br#"{"status":1} x"#).is_none());
        assert!(q.keys(b"not json").is_none());
    }
}
