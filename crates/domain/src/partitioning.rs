//! Dynamic partitioning and record processing: the `ProcessingConfiguration` processors Firehose applies before
//! partitioning (`RecordDeAggregation`, `MetadataExtraction` with a jq query, `AppendDelimiterToRecord`, in that
//! order), the create-time rules with AWS's messages, and the partition of one record.
//!
//! The emulator routes each record with [`Partitioner::route`]; `verify` runs the same query on each delivered
//! line to check it sits in the partition its own fields map to. Queries run on jaq (a jq implementation in
//! Rust); AWS names the engine `JQ-1.6`.

use std::collections::BTreeMap;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::{Value, json};

use super::field_query::FieldQuery;
use super::prefix::{Part, Prefix};

/// AWS's limit of sub-records in one record for deaggregation.
pub const MAX_SUB_RECORDS: usize = 500;
/// The default active-partition limit of a stream.
pub const DEFAULT_PARTITION_LIMIT: usize = 500;
/// Minimum buffering hints with dynamic partitioning.
pub const MIN_SIZE_MIB: i64 = 64;
pub const MIN_INTERVAL_S: i64 = 60;
/// `RetryOptions.DurationInSeconds` when not given (Terraform's and CDK's default).
pub const DEFAULT_RETRY_S: i64 = 300;
/// What `!{firehose:error-output-type}` stands for with records that could not be partitioned (AWS does not
/// document the token; this is the emulator's choice, see docs/emulator.md).
pub const ERROR_OUTPUT_TYPE: &str = "partitioning-failed";
/// The error code of a record whose keys could not be extracted (seen in real error objects).
pub const EXTRACTION_FAILED: &str = "DynamicPartitioning.MetadataExtractionFailed";
/// The error code of records beyond the active-partition limit.
pub const PARTITIONS_EXCEEDED: &str = "DynamicPartitioning.ActivePartitionsLimitExceeded";

/// How records are split into sub-records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deaggregation {
    /// Concatenated JSON objects or JSON lines.
    Json,
    /// Split on a delimiter (given base64-encoded in the API).
    Delimited(Vec<u8>),
}

/// A compiled jq query.
pub struct Query {
    text: String,
    filter: jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>,
    /// The same query answered without jq, when it has the common `{k: .field}` shape.
    fields: Option<FieldQuery>,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Query").field(&self.text).finish()
    }
}

impl Query {
    /// Compiles a jq program (jq's standard library available).
    pub fn compile(text: &str) -> Result<Self, String> {
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(format!(
                "MetadataExtractionQuery is longer than {MAX_QUERY_CHARS} characters (ProcessorParameter values are at most {MAX_QUERY_CHARS})"
            ));
        }
        if nesting_exceeds(text.as_bytes(), MAX_PARSING_DEPTH, true) {
            // jaq's parser recurses once per level: a deeper query would exhaust the stack.
            return Err(format!(
                "MetadataExtractionQuery nests brackets deeper than {MAX_PARSING_DEPTH} levels (the firehose-kit emulator's limit)"
            ));
        }
        if let Some(word) = unbounded_construct(text) {
            return Err(format!(
                "MetadataExtractionQuery `{text}` uses `{word}`: the firehose-kit emulator refuses recursion and unbounded generators in a query (a function that calls itself runs out of stack, a generator may never end); extract fields instead"
            ));
        }
        let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
        let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
        let arena = Arena::default();
        let modules = Loader::new(defs)
            .load(&arena, File { code: text, path: () })
            .map_err(|_| format!("MetadataExtractionQuery `{text}` is not a valid jq expression"))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|_| format!("MetadataExtractionQuery `{text}` does not compile (unknown filter or variable)"))?;
        Ok(Query { text: text.to_string(), filter, fields: FieldQuery::parse(text) })
    }

    /// Runs the query on one JSON record; the partition keys it yields (an object of scalar values). The error
    /// is the reason in words.
    pub fn keys(&self, record: &[u8]) -> Result<BTreeMap<String, String>, String> {
        if let Some(answer) = self.fields.as_ref().and_then(|f| f.keys(record)) {
            return answer;
        }
        self.keys_with_jq(record)
    }

    /// Runs the query on one JSON record for its first value as text: a string as it is, anything else as its
    /// JSON (`verify --match`: the field of a transformed document that carries its source line).
    pub fn text(&self, record: &[u8]) -> Result<String, String> {
        let json = self.first_value(record, "document", "path")?;
        Ok(match serde_json::from_str::<Value>(&json) {
            Ok(Value::String(text)) => text,
            Ok(Value::Null) => return Err("the document has no such field".into()),
            _ => json,
        })
    }

    /// The query's first value on one JSON `record`, as JSON text; errors name the input as `what` and the
    /// query as `query`.
    fn first_value(&self, record: &[u8], what: &str, query: &str) -> Result<String, String> {
        if nesting_exceeds(record, MAX_PARSING_DEPTH, false) {
            // jq 1.6's own limit; jaq's parser would recurse once per level, past the stack.
            return Err(format!("the {what} is not valid JSON: Exceeds depth limit for parsing"));
        }
        let input = jaq_json::read::parse_single(record).map_err(|_| format!("the {what} is not valid JSON"))?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let out = self
            .filter
            .id
            .run((ctx, input))
            .map(unwrap_valr)
            .next()
            .ok_or_else(|| format!("the {query} yields no value"))?
            .map_err(|e| format!("the {query} fails: {e:?}"))?;
        Ok(out.to_string())
    }

    /// [`Query::keys`] on jq alone.
    fn keys_with_jq(&self, record: &[u8]) -> Result<BTreeMap<String, String>, String> {
        let value: Value = serde_json::from_str(&self.first_value(record, "record", "query")?)
            .map_err(|_| "the query yields a value that is not JSON".to_string())?;
        let Value::Object(map) = value else {
            return Err("the query must yield an object of partition keys".into());
        };
        let mut keys = BTreeMap::new();
        for (k, v) in map {
            let text = match v {
                Value::String(s) if !s.is_empty() => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null | Value::String(_) => {
                    return Err(format!("partitionKeys values must not be null or empty (key `{k}`)"));
                }
                _ => return Err(format!("partition key `{k}` is not a scalar")),
            };
            keys.insert(k, text);
        }
        Ok(keys)
    }

    /// The keys the query's top-level object names (`{a: .x, b: .y}` → a, b), read from the text: AWS checks
    /// them against the prefix at create time.
    pub fn declared_keys(&self) -> Vec<String> {
        let body = self.text.trim();
        let Some(inner) = body.strip_prefix('{').and_then(|b| b.strip_suffix('}')) else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        let mut depth = 0i32;
        let mut start = 0;
        let bytes = inner.as_bytes();
        for (i, &c) in bytes.iter().enumerate() {
            match c {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                b',' if depth == 0 => {
                    keys.push(&inner[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        keys.push(&inner[start..]);
        keys.iter()
            .filter_map(|entry| {
                let name = entry.split(':').next()?.trim().trim_matches('"');
                (!name.is_empty()).then(|| name.to_string())
            })
            .collect()
    }
}

/// The processing and partitioning of a destination, ready to route records.
#[derive(Debug)]
pub struct Partitioner {
    pub deaggregation: Option<Deaggregation>,
    pub query: Option<Query>,
    pub append_delimiter: bool,
}

/// Where one sub-record goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Into the partition with these keys; the bytes to buffer (with the appended delimiter).
    Partition { keys: BTreeMap<String, String>, data: Vec<u8> },
    /// To the error output, with AWS's error code and the reason.
    Failed { code: &'static str, message: String, data: Vec<u8> },
}

/// Splits a record into sub-records.
pub fn split<'a>(record: &'a [u8], how: &Deaggregation) -> Result<Vec<&'a [u8]>, String> {
    let parts: Vec<&[u8]> = match how {
        Deaggregation::Delimited(delim) if delim.is_empty() => vec![record],
        Deaggregation::Delimited(delim) => {
            let mut out = Vec::new();
            let mut rest = record;
            while let Some(i) = memchr::memmem::find(rest, delim) {
                out.push(&rest[..i]);
                rest = &rest[i + delim.len()..];
            }
            if !rest.is_empty() {
                out.push(rest);
            }
            out.into_iter().filter(|p| !p.is_empty()).collect()
        }
        Deaggregation::Json => {
            let mut out = Vec::new();
            let mut stream = serde_json::Deserializer::from_slice(record).into_iter::<serde::de::IgnoredAny>();
            let mut start = 0;
            while let Some(item) = stream.next() {
                item.map_err(|e| format!("the record is not concatenated JSON objects: {e}"))?;
                let end = stream.byte_offset();
                let text = record[start..end].trim_ascii();
                if text.first() != Some(&b'{') {
                    return Err("JSON deaggregation needs JSON objects (an array or a scalar is invalid)".into());
                }
                out.push(text);
                start = end;
            }
            out
        }
    };
    if parts.len() > MAX_SUB_RECORDS {
        return Err(format!(
            "the record holds {} sub-records; at most {MAX_SUB_RECORDS} are deaggregated",
            parts.len()
        ));
    }
    Ok(parts)
}

impl Partitioner {
    /// Reads a destination's `ProcessingConfiguration` (as stored: the API's JSON). Unknown or unmodelled
    /// processors are the caller's to refuse; here they are ignored.
    pub fn from_config(processing: Option<&Value>) -> Result<Self, String> {
        let mut p = Partitioner { deaggregation: None, query: None, append_delimiter: false };
        let Some(cfg) = processing.filter(|c| c["Enabled"] != Value::Bool(false)) else {
            return Ok(p);
        };
        for processor in cfg["Processors"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let param = |name: &str| -> Option<&str> {
                processor["Parameters"].as_array()?.iter().find(|x| x["ParameterName"] == name)?["ParameterValue"]
                    .as_str()
            };
            match processor["Type"].as_str() {
                Some("RecordDeAggregation") => {
                    p.deaggregation = Some(match param("SubRecordType") {
                        Some("DELIMITED") => {
                            let encoded = param("Delimiter").ok_or(
                                "RecordDeAggregation with SubRecordType DELIMITED needs a Delimiter (base64-encoded)",
                            )?;
                            let delim = base64_simd::STANDARD
                                .decode_to_vec(encoded)
                                .map_err(|_| format!("Delimiter `{encoded}` is not base64"))?;
                            Deaggregation::Delimited(delim)
                        }
                        Some("JSON") | None => Deaggregation::Json,
                        Some(other) => return Err(format!("SubRecordType `{other}` must be JSON or DELIMITED")),
                    })
                }
                Some("MetadataExtraction") => {
                    if let Some(engine) = param("JsonParsingEngine").filter(|e| *e != "JQ-1.6") {
                        return Err(format!("JsonParsingEngine `{engine}` is not supported: only JQ-1.6 is"));
                    }
                    let q = param("MetadataExtractionQuery")
                        .ok_or("MetadataExtraction needs a MetadataExtractionQuery parameter")?;
                    p.query = Some(Query::compile(q)?);
                }
                Some("AppendDelimiterToRecord") => p.append_delimiter = true,
                _ => {}
            }
        }
        Ok(p)
    }

    /// Routes one record: deaggregated (if configured), each sub-record's keys extracted, the delimiter
    /// appended. A record that cannot be split fails whole.
    pub fn route(&self, record: &[u8]) -> Vec<Route> {
        let subs = match &self.deaggregation {
            Some(how) => match split(record, how) {
                Ok(subs) => subs,
                Err(message) => {
                    return vec![Route::Failed { code: EXTRACTION_FAILED, message, data: record.to_vec() }];
                }
            },
            None => vec![record],
        };
        subs.into_iter()
            .map(|sub| {
                let keys = match &self.query {
                    Some(q) => q.keys(sub),
                    None => Ok(BTreeMap::new()),
                };
                match keys {
                    Ok(keys) => {
                        let mut data = Vec::with_capacity(sub.len() + 1);
                        data.extend_from_slice(sub);
                        if self.append_delimiter {
                            data.push(b'\n');
                        }
                        Route::Partition { keys, data }
                    }
                    Err(message) => Route::Failed { code: EXTRACTION_FAILED, message, data: sub.to_vec() },
                }
            })
            .collect()
    }
}

/// `ProcessorType` as AWS's API model lists it.
pub const PROCESSOR_TYPES: [&str; 6] = [
    "RecordDeAggregation",
    "Decompression",
    "CloudWatchLogProcessing",
    "Lambda",
    "MetadataExtraction",
    "AppendDelimiterToRecord",
];

/// `ProcessorParameterName` as AWS's API model lists it.
pub const PARAMETER_NAMES: [&str; 11] = [
    "LambdaArn",
    "NumberOfRetries",
    "MetadataExtractionQuery",
    "JsonParsingEngine",
    "RoleArn",
    "BufferSizeInMBs",
    "BufferIntervalInSeconds",
    "SubRecordType",
    "Delimiter",
    "CompressionFormat",
    "DataMessageExtraction",
];

/// The parameters each processor type takes.
pub fn parameters_of(processor_type: &str) -> &'static [&'static str] {
    match processor_type {
        "Lambda" => &["LambdaArn", "NumberOfRetries", "RoleArn", "BufferSizeInMBs", "BufferIntervalInSeconds"],
        "MetadataExtraction" => &["MetadataExtractionQuery", "JsonParsingEngine"],
        "RecordDeAggregation" => &["SubRecordType", "Delimiter"],
        "Decompression" => &["CompressionFormat"],
        "CloudWatchLogProcessing" => &["DataMessageExtraction"],
        _ => &[],
    }
}

/// The processors of `processing` as (type, parameter names), whatever their values (for checks).
pub fn processors(processing: Option<&Value>) -> Vec<(&str, Vec<&str>)> {
    let list = processing.and_then(|c| c["Processors"].as_array()).map(Vec::as_slice).unwrap_or_default();
    list.iter()
        .map(|p| {
            let params = p["Parameters"].as_array().map(Vec::as_slice).unwrap_or_default();
            (p["Type"].as_str().unwrap_or(""), params.iter().filter_map(|x| x["ParameterName"].as_str()).collect())
        })
        .collect()
}

/// AWS's model validation of processor types and parameter names (`ValidationException` texts); `path` is the
/// member holding the `ProcessingConfiguration` (`extendedS3DestinationConfiguration.processingConfiguration`).
pub fn processor_violations(processing: Option<&Value>, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, (kind, params)) in processors(processing).into_iter().enumerate() {
        let at = format!("{path}.processors.{}.member", i + 1);
        if !PROCESSOR_TYPES.contains(&kind) {
            out.push(format!(
                "Value '{kind}' at '{at}.type' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                PROCESSOR_TYPES.join(", ")
            ));
        }
        for (j, name) in params.iter().enumerate() {
            if !PARAMETER_NAMES.contains(name) {
                out.push(format!(
                    "Value '{name}' at '{at}.parameters.{}.member.parameterName' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    j + 1,
                    PARAMETER_NAMES.join(", ")
                ));
            }
        }
    }
    out
}

/// The error-output document of a record that could not be partitioned: modelled on the documented
/// processing-failed envelope (AWS does not document this case's fields; docs/emulator.md marks it so).
pub fn error_record(code: &str, message: &str, data: &[u8], arrival_ms: i64, now_ms: i64) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({
        "attemptsMade": 1,
        "arrivalTimestamp": arrival_ms,
        "errorCode": code,
        "errorMessage": message,
        "attemptEndingTimestamp": now_ms,
        "rawData": base64_simd::STANDARD.encode_to_string(data),
    }))
    .expect("an error record serializes");
    line.push(b'\n');
    line
}

/// What CreateDeliveryStream checks of dynamic partitioning, with AWS's messages. `dp` is whether it is
/// enabled; `size_mib`/`interval_s` the buffering hints; `prefix` the validated data prefix.
pub fn validate(
    dp: bool,
    processing: Option<&Value>,
    size_mib: i64,
    interval_s: i64,
    prefix: &Prefix,
) -> Result<(), String> {
    let enabled = processing.is_some_and(|c| c["Enabled"] != Value::Bool(false));
    let types: Vec<&str> = if enabled {
        processing
            .and_then(|c| c["Processors"].as_array())
            .map(|l| l.iter().filter_map(|p| p["Type"].as_str()).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    for (t, class) in
        [("MetadataExtraction", "MetadataExtractionProcessor"), ("RecordDeAggregation", "RecordDeAggregationProcessor")]
    {
        if !dp && types.contains(&t) {
            return Err(format!(
                "class com.amazonaws.services.firehose.internal.model.{class} can only be present when Dynamic Partitioning is enabled."
            ));
        }
    }
    if !dp {
        return Ok(());
    }
    if size_mib < MIN_SIZE_MIB {
        return Err(format!(
            "BufferingHints.SizeInMBs must be at least {MIN_SIZE_MIB} when Dynamic Partitioning is enabled."
        ));
    }
    if interval_s < MIN_INTERVAL_S {
        return Err(format!(
            "BufferingHints.IntervalInSeconds must be at least {MIN_INTERVAL_S} seconds when Dynamic Partitioning is enabled."
        ));
    }
    if !types.contains(&"MetadataExtraction") && !types.contains(&"Lambda") {
        return Err("Processing Configuration is not enabled when DataPartitioning is enabled".into());
    }
    let from_query: Vec<&str> = prefix
        .parts()
        .iter()
        .filter_map(|p| if let Part::PartitionKeyFromQuery(k) = p { Some(k.as_str()) } else { None })
        .collect();
    if prefix.parts().iter().any(|p| matches!(p, Part::PartitionKeyFromLambda(_))) && !types.contains(&"Lambda") {
        return Err(
            "Lambda should be present when S3 Prefix contains keys from partitionKeyFromLambda namespace".into()
        );
    }
    if !from_query.is_empty() && !types.contains(&"MetadataExtraction") {
        return Err(
            "MetadataExtraction processor should be present when S3 Prefix has partitionKeyFromQuery namespace".into(),
        );
    }
    let partitioner = Partitioner::from_config(processing)?;
    if let Some(q) = &partitioner.query {
        let declared = q.declared_keys();
        if declared.iter().any(|k| !from_query.contains(&k.as_str())) {
            return Err(
                "MetaDataExtraction JQ Query can't contain keys that are not present in the S3 Prefix expression"
                    .into(),
            );
        }
        if from_query.iter().any(|k| !declared.iter().any(|d| d == k)) {
            return Err(format!(
                "the S3 Prefix uses partitionKeyFromQuery keys the MetadataExtraction query does not produce (it produces {})",
                declared.join(", ")
            ));
        }
    }
    Ok(())
}

/// The processing configuration as Describe returns it: each processor's default parameters filled in
/// (`JsonParsingEngine` = `JQ-1.6` for MetadataExtraction).
pub fn with_defaults(processing: &Value) -> Value {
    let mut out = processing.clone();
    if let Some(list) = out["Processors"].as_array_mut() {
        for p in list {
            if p["Type"] == "MetadataExtraction" {
                let params = p["Parameters"].as_array().cloned().unwrap_or_default();
                if !params.iter().any(|x| x["ParameterName"] == "JsonParsingEngine") {
                    let mut params = params;
                    params.push(json!({"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}));
                    p["Parameters"] = Value::Array(params);
                }
            }
        }
    }
    out
}

/// jq's words that recurse or generate without a bound the emulator could enforce: user-defined functions (which
/// may call themselves), the builtins that loop on their own output, `fromjson` (it parses a string of the record
/// with no depth limit), reading inputs, stopping the process, and the host's environment.
const UNBOUNDED: [&str; 13] = [
    "def",
    "repeat",
    "while",
    "until",
    "recurse",
    "range",
    "combinations",
    "fromjson",
    "input",
    "inputs",
    "halt",
    "halt_error",
    "env",
];

/// The longest value a `ProcessorParameter` takes (AWS's model).
const MAX_QUERY_CHARS: usize = 5120;

/// The stack a thread needs to compile and run any query [`Query::compile`] accepts: jaq's parser, compiler and
/// evaluator recurse once per operator of a chain (`- - - 1`, `.|.|.`), and a 5,120-character query holds ~2,500
/// (about 7 KiB a level unoptimised, where a thread's default 2 MiB ends near 300). The emulator's and the CLI's
/// runtimes give their threads this much (address space: only what a query touches is ever committed).
pub const JQ_STACK_BYTES: usize = 64 * 1024 * 1024;

/// The first word of `UNBOUNDED` the query uses, except as a field name (`.range`) or an object key
/// (`{range: .x}`). String literals are read too: jq runs code inside them (`"\\(…)"`).
fn unbounded_construct(text: &str) -> Option<&'static str> {
    let chars: Vec<char> = text.chars().collect();
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut i = 0;
    while i < chars.len() {
        if !is_word(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_word(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let field = start > 0 && chars[start - 1] == '.';
        let before = chars[..start].iter().rev().find(|c| !c.is_whitespace());
        let key = chars[i..].iter().find(|c| !c.is_whitespace()) == Some(&':')
            && matches!(before, Some('{') | Some(','))
            && word != "def";
        if let Some(found) = UNBOUNDED.iter().find(|w| **w == word)
            && !field
            && !key
        {
            return Some(found);
        }
    }
    None
}

/// How deeply jq 1.6 parses nested arrays and objects (`MAX_PARSING_DEPTH`).
const MAX_PARSING_DEPTH: usize = 256;

/// Whether text nests brackets deeper than `limit`, found in one pass without recursion: JSON (`in_strings`
/// false: string contents skipped, escapes too) or a jq query (`in_strings` true: jq runs code inside strings).
fn nesting_exceeds(text: &[u8], limit: usize, in_strings: bool) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = !in_strings,
            b'[' | b'{' | b'(' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processor_types_and_parameter_names_are_checked_as_aws_models_them() {
        let cfg = json!({"Enabled": true, "Processors": [
            {"Type": "AppendDelimiterToRecord", "Parameters": []},
            {"Type": "Dedup", "Parameters": [{"ParameterName": "Window", "ParameterValue": "1"}]}
        ]});
        let v = processor_violations(Some(&cfg), "p");
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(
            v[0].starts_with("Value 'Dedup' at 'p.processors.2.member.type' failed to satisfy constraint"),
            "{v:?}"
        );
        assert!(v[1].contains("'p.processors.2.member.parameters.1.member.parameterName'"), "{v:?}");
        assert_eq!(parameters_of("MetadataExtraction"), ["MetadataExtractionQuery", "JsonParsingEngine"]);
        assert!(PROCESSOR_TYPES.iter().all(|t| *t == "AppendDelimiterToRecord" || !parameters_of(t).is_empty()));
    }
    use crate::prefix;

    fn processing(query: &str) -> Value {
        json!({"Enabled": true, "Processors": [
            {"Type": "RecordDeAggregation", "Parameters": [
                {"ParameterName": "SubRecordType", "ParameterValue": "DELIMITED"},
                {"ParameterName": "Delimiter", "ParameterValue": "Cg=="}]},
            {"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": query},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
            {"Type": "AppendDelimiterToRecord", "Parameters": []}
        ]})
    }

    #[test]
    fn a_path_yields_a_documents_field_as_text() {
        let q = Query::compile(".raw.line").unwrap();
        assert_eq!(q.text(br#"{"raw":{"line":"GET / 200"},"id":"x"}"#).unwrap(), "GET / 200");
        assert_eq!(Query::compile(".n").unwrap().text(br#"{"n":[1,2]}"#).unwrap(), "[1,2]");
        assert!(q.text(br#"{"id":"x"}"#).unwrap_err().contains("no such field"));
        assert!(q.text(b"not json").is_err());
    }

    #[test]
    fn packed_lines_are_split_and_routed_by_their_own_fields() {
        let p = Partitioner::from_config(Some(&processing("{status:.status}"))).unwrap();
        let record = b"{\"status\":200,\"x\":1}\n{\"status\":404}\n\n{\"status\":null}\nnot json\n";
        let routes = p.route(record);
        assert_eq!(routes.len(), 4, "empty sub-records are dropped");
        assert_eq!(
            routes[0],
            Route::Partition {
                keys: BTreeMap::from([("status".into(), "200".into())]),
                data: b"{\"status\":200,\"x\":1}\n".to_vec()
            }
        );
        assert!(matches!(&routes[1], Route::Partition { keys, .. } if keys["status"] == "404"));
        assert!(matches!(&routes[2], Route::Failed { message, .. } if message.contains("must not be null")));
        assert!(
            matches!(&routes[3], Route::Failed { code: EXTRACTION_FAILED, message, .. } if message.contains("not valid JSON"))
        );
    }

    #[test]
    fn json_deaggregation_takes_concatenated_objects_only() {
        assert_eq!(split(br#"{"a":1}{"a":2} {"a":3}"#, &Deaggregation::Json).unwrap().len(), 3);
        assert!(split(br#"[{"a":1}]"#, &Deaggregation::Json).is_err());
        let many: Vec<u8> = (0..501).flat_map(|_| b"x\n".to_vec()).collect();
        assert!(split(&many, &Deaggregation::Delimited(b"\n".to_vec())).unwrap_err().contains("500"));
    }

    #[test]
    fn queries_are_real_jq() {
        let q = Query::compile(
            r#"{date: (.time | split(":")[0] | strptime("%d/%b/%Y") | strftime("%Y-%m-%d")), m: .method}"#,
        )
        .unwrap();
        let keys = q.keys(br#"{"time":"26/Nov/2026:10:00:00 +0000","method":"GET"}"#).unwrap();
        assert_eq!(keys, BTreeMap::from([("date".into(), "2026-11-26".into()), ("m".into(), "GET".into())]));
        assert_eq!(q.declared_keys(), vec!["date", "m"]);
        assert!(Query::compile("{a: .b").is_err());
        assert!(Query::compile("{a: nosuchfilter}").is_err());
    }

    /// Wherever the jq-free path answers, it answers as jq does: records of fields with every kind of JSON value
    /// (escapes, non-ASCII, zero and -0, floats, large integers, duplicates, nesting).
    #[test]
    fn the_jq_free_path_agrees_with_jq() {
        use proptest::prelude::*;
        let values = prop::sample::select(vec![
            "200",
            "-7",
            "0",
            "-0",
            "1.5",
            "1e2",
            "-0.0",
            "9007199254740993",
            "18446744073709551616",
            "null",
            "true",
            "false",
            "\"\"",
            "\"GET\"",
            "\"2026-11-26T10:00:00+00:00\"",
            "\"é-ü\"",
            "\"a\\\"b\\n\"",
            "\"\\u00e9x\"",
            "\"2026\"",
            "[1,2]",
            "{\"a\":1}",
            "[]",
            "{}",
        ]);
        let names = prop::sample::select(vec!["status", "time", "host", "x", "st\\u0061tus"]);
        let queries: Vec<Query> = [
            "{status: .status}",
            "{s: .status, d: .time[0:10], h: .time[11:13]}",
            "{a: .host, b: .time[:4], c: .time[3:], \"d e\": .x}",
            "{t: .time[5:2]}",
            "{z: .host, a: .x, m: .status}",
        ]
        .iter()
        .map(|q| Query::compile(q).unwrap())
        .collect();
        assert!(queries.iter().all(|q| q.fields.is_some()));
        let answered = std::cell::Cell::new(0);
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        runner
            .run(&prop::collection::vec((names, values), 0..6), |fields| {
                let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                let record = format!("{{{}}}", body.join(","));
                for q in &queries {
                    if let Some(fast) = q.fields.as_ref().unwrap().keys(record.as_bytes()) {
                        answered.set(answered.get() + 1);
                        prop_assert_eq!(fast, q.keys_with_jq(record.as_bytes()), "{} on {}", q.text, record);
                    }
                }
                Ok(())
            })
            .unwrap();
        assert!(answered.get() > 200, "the jq-free path answered only {} times", answered.get());
    }

    #[test]
    fn create_rules_have_aws_messages() {
        let prefixes =
            prefix::validate(Some("status=!{partitionKeyFromQuery:status}/"), Some("errors/"), true).unwrap();
        let ok = processing("{status:.status}");
        assert!(validate(true, Some(&ok), 64, 60, &prefixes.data).is_ok());
        assert!(
            validate(true, Some(&ok), 5, 60, &prefixes.data).unwrap_err().contains("SizeInMBs must be at least 64")
        );
        assert!(validate(true, Some(&ok), 64, 0, &prefixes.data).unwrap_err().contains("at least 60 seconds"));
        assert!(
            validate(true, None, 64, 60, &prefixes.data)
                .unwrap_err()
                .contains("Processing Configuration is not enabled")
        );
        let extra = processing("{status:.status, m:.method}");
        assert!(validate(true, Some(&extra), 64, 60, &prefixes.data).unwrap_err().contains("can't contain keys"));
        let plain = prefix::validate(None, None, false).unwrap();
        assert!(
            validate(false, Some(&ok), 5, 60, &plain.data)
                .unwrap_err()
                .contains("can only be present when Dynamic Partitioning is enabled")
        );
    }

    #[test]
    fn describe_fills_in_the_parsing_engine() {
        let cfg = json!({"Enabled": true, "Processors": [{"Type": "MetadataExtraction", "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{a:.a}"}]}]});
        let out = with_defaults(&cfg);
        assert_eq!(out["Processors"][0]["Parameters"][1]["ParameterValue"], "JQ-1.6");
    }

    /// Found writing the jq fuzz target (it would abort the emulator, and again on each restart as the journal replays the
    /// record): a record nested 200,000 levels deep overflowed the stack in jaq's parser. jq 1.6 stops at 256.
    #[test]
    fn a_record_nested_past_jqs_parsing_depth_is_an_error_not_a_stack_overflow() {
        let q = Query::compile("{a: .x | tostring}").unwrap();
        let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
        assert_eq!(
            q.keys(deep.as_bytes()).unwrap_err(),
            "the record is not valid JSON: Exceeds depth limit for parsing"
        );
        let fine = format!("{{\"x\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(q.keys(fine.as_bytes()).is_ok());
        // Brackets inside strings are text.
        let text = format!("{{\"x\":\"{}\"}}", "[".repeat(1000));
        assert!(q.keys(text.as_bytes()).is_ok());
    }

    /// Found writing the jq fuzz target: a query that recursed without end (`def f: [f]; f`) or nested 100,000 brackets deep
    /// overflowed the stack (evaluating, or compiling at CreateDeliveryStream). Refused plainly instead.
    #[test]
    fn a_query_that_could_recurse_without_end_is_refused_at_compile_time() {
        for text in [
            "def f: [f]; {a: f}",
            "{a: last(repeat(1))}",
            "{a: [range(3)]}",
            "{a: \"\\(def f: f; f)\"}",
            "{a: (\"x\"[env:])}",
            "{a: .x | fromjson}",
        ] {
            let err = Query::compile(text).unwrap_err();
            assert!(err.contains("refuses recursion and unbounded generators"), "{text}: {err}");
        }
        for text in ["{a: .range}", "{range: .x}", "{a: .x | tostring}", "{a: (.x // \"d\") | ascii_downcase}"] {
            assert!(Query::compile(text).is_ok(), "{text}");
        }
        let deep = format!("{{a: {}1{}}}", "(".repeat(2000), ")".repeat(2000));
        assert!(Query::compile(&deep).unwrap_err().contains("deeper than 256 levels"));
        assert!(Query::compile(&"1".repeat(6000)).unwrap_err().contains("longer than 5120 characters"));
        // The longest chains of operators a query can hold compile and run on a thread of JQ_STACK_BYTES.
        let chains = [
            format!("{{a: {}1}}", "- ".repeat(2550)),
            format!("{{a: {}.x}}", ".|".repeat(2540)),
            format!("{{a: {}1}}", "try ".repeat(1270)),
            format!("{{a: 1{}}}", "+1".repeat(2540)),
        ];
        let run = move || {
            for chain in &chains {
                let q = Query::compile(chain).unwrap();
                let _ = q.keys(br#"{"x": 1}"#);
            }
        };
        std::thread::Builder::new().stack_size(JQ_STACK_BYTES).spawn(run).unwrap().join().unwrap();
    }
}
