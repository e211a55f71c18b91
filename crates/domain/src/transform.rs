//! Data transformation with a Lambda function, as Firehose runs it: the `Lambda` processor's parameters and
//! their defaults, the event Firehose sends, the rules its answer must meet (every record id back exactly once,
//! `Ok` / `Dropped` / `ProcessingFailed`, base64 data), and the document each failed record becomes under the
//! error output prefix (`processing-failed`). Used by the emulator, which runs the transformation, and by the
//! client, which explains and verifies it.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

/// `!{firehose:error-output-type}` of records a transformation failed.
pub const ERROR_OUTPUT_TYPE: &str = "processing-failed";
/// The largest synchronous Lambda payload, request and response.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// Processor parameter defaults Describe fills in.
pub const DEFAULT_RETRIES: u32 = 3;
pub const DEFAULT_BUFFER_SIZE_MB: f64 = 1.0;
pub const DEFAULT_BUFFER_INTERVAL_S: u32 = 60;

/// The `Lambda` processor of a destination's `ProcessingConfiguration`.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaProcessor {
    pub lambda_arn: String,
    pub retries: u32,
    /// The role Firehose invokes the function as (`RoleArn`; the destination's role by default).
    pub role_arn: Option<String>,
    pub buffer_size_mb: f64,
    pub buffer_interval_s: u32,
}

/// What the delivery role must be allowed for Firehose to transform with `function`: invoking it (as its
/// qualified ARN, `:$LATEST` when none is given) and reading its configuration.
pub fn invoke_needs(function: &str) -> Vec<crate::access::Need> {
    let qualified =
        if function.matches(':').count() >= 7 { function.to_string() } else { format!("{function}:$LATEST") };
    ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"]
        .into_iter()
        .map(|action| crate::access::Need { action: action.into(), resource: qualified.clone(), for_what: "transform" })
        .collect()
}

/// Lambda's `CodeSha256` of a deployment package: base64 of its SHA-256.
pub fn code_sha256(zip: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(crate::util::hash::sha256(zip))
}

/// The function name in a Lambda function ARN (`arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`).
pub fn function_name(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name] | ["arn", _, "lambda", _, _, "function", name, _]
            if !name.is_empty() =>
        {
            Some(name)
        }
        _ => None,
    }
}

impl LambdaProcessor {
    /// The enabled `Lambda` processor of `processing`, with its defaults; an error names a parameter out of range.
    pub fn from_config(processing: Option<&Value>) -> Result<Option<LambdaProcessor>, String> {
        let Some(cfg) = processing.filter(|c| c["Enabled"] != Value::Bool(false)) else {
            return Ok(None);
        };
        let lambdas: Vec<&Value> = cfg["Processors"]
            .as_array()
            .map(|l| l.iter().filter(|p| p["Type"] == "Lambda").collect())
            .unwrap_or_default();
        let processor = match lambdas.as_slice() {
            [] => return Ok(None),
            [one] => *one,
            _ => {
                return Err("Exactly 1 Processor of type Lambda needs to be supplied when processing is enabled".into());
            }
        };
        let param = |name: &str| -> Option<&str> {
            processor["Parameters"].as_array()?.iter().find(|x| x["ParameterName"] == name)?["ParameterValue"].as_str()
        };
        let lambda_arn = param("LambdaArn").ok_or("LambdaArn is a required parameter of the Lambda processor")?;
        let number =
            |name: &str, default: f64, range: std::ops::RangeInclusive<f64>| -> Result<f64, String> {
                match param(name) {
                    None => Ok(default),
                    Some(v) => v.parse::<f64>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                        format!("{name} `{v}` must be a number from {} to {}", range.start(), range.end())
                    }),
                }
            };
        Ok(Some(LambdaProcessor {
            lambda_arn: lambda_arn.to_string(),
            retries: number("NumberOfRetries", DEFAULT_RETRIES as f64, 0.0..=300.0)? as u32,
            role_arn: param("RoleArn").map(str::to_string),
            buffer_size_mb: number("BufferSizeInMBs", DEFAULT_BUFFER_SIZE_MB, 0.2..=3.0)?,
            buffer_interval_s: number("BufferIntervalInSeconds", DEFAULT_BUFFER_INTERVAL_S as f64, 0.0..=900.0)? as u32,
        }))
    }

    /// The function's qualified ARN as Firehose invokes it (`:$LATEST` when the ARN names no version).
    pub fn qualified_arn(&self) -> String {
        if self.lambda_arn.matches(':').count() >= 7 {
            self.lambda_arn.clone()
        } else {
            format!("{}:$LATEST", self.lambda_arn)
        }
    }
}

/// Fills in a Lambda processor's defaults as Describe shows them (the role is the destination's).
pub fn with_lambda_defaults(processor: &mut Value, destination_role: &str) {
    let mut params = processor["Parameters"].as_array().cloned().unwrap_or_default();
    for (name, value) in [
        ("NumberOfRetries", DEFAULT_RETRIES.to_string()),
        ("RoleArn", destination_role.to_string()),
        ("BufferSizeInMBs", (DEFAULT_BUFFER_SIZE_MB as u32).to_string()),
        ("BufferIntervalInSeconds", DEFAULT_BUFFER_INTERVAL_S.to_string()),
    ] {
        if !params.iter().any(|p| p["ParameterName"] == name) {
            params.push(json!({"ParameterName": name, "ParameterValue": value}));
        }
    }
    processor["Parameters"] = Value::Array(params);
}

/// One record handed to the function.
#[derive(Debug, Clone)]
pub struct InputRecord<'a> {
    pub id: &'a str,
    pub arrival_ms: i64,
    pub data: &'a [u8],
}

/// The event Firehose invokes the function with, as a tree (tests and tools; the emulator writes
/// [`event_json`]).
pub fn event(invocation_id: &str, stream_arn: &str, region: &str, records: &[InputRecord<'_>]) -> Value {
    serde_json::from_slice(&event_json(invocation_id, stream_arn, region, records)).expect("the event is JSON")
}

/// The event's JSON, written straight into one buffer: each record's data base64-encoded in place, no tree of
/// values per record (the buffer of a 3 MiB invocation is allocated once).
pub fn event_json(invocation_id: &str, stream_arn: &str, region: &str, records: &[InputRecord<'_>]) -> Vec<u8> {
    let data: usize = records.iter().map(|r| r.data.len().div_ceil(3) * 4 + r.id.len() + 80).sum();
    let mut out = Vec::with_capacity(data + 256);
    let text = |out: &mut Vec<u8>, s: &str| serde_json::to_writer(out, s).expect("a string serializes");
    out.extend_from_slice(b"{\"invocationId\":");
    text(&mut out, invocation_id);
    out.extend_from_slice(b",\"deliveryStreamArn\":");
    text(&mut out, stream_arn);
    out.extend_from_slice(b",\"region\":");
    text(&mut out, region);
    out.extend_from_slice(b",\"records\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"recordId\":");
        text(&mut out, r.id);
        out.extend_from_slice(b",\"approximateArrivalTimestamp\":");
        out.extend_from_slice(r.arrival_ms.to_string().as_bytes());
        out.extend_from_slice(b",\"data\":\"");
        base64_simd::STANDARD.encode_append(r.data, &mut out);
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b"]}");
    out
}

/// What the function made of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transformed {
    Ok { data: Vec<u8>, partition_keys: BTreeMap<String, String> },
    Dropped,
    ProcessingFailed,
}

/// An answer Firehose refuses as a whole: the error code and AWS's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadAnswer {
    pub code: &'static str,
    pub message: String,
}

fn bad(code: &'static str, message: impl Into<String>) -> BadAnswer {
    BadAnswer { code, message: message.into() }
}

/// The function's answer as it is read: every string borrowed from the body when it has no escapes, no tree of
/// values per record.
#[derive(serde::Deserialize)]
struct AnswerDoc<'a> {
    #[serde(borrow)]
    records: Option<Vec<AnswerRecord<'a>>>,
}

#[derive(serde::Deserialize)]
struct AnswerRecord<'a> {
    #[serde(rename = "recordId", borrow)]
    record_id: Option<Text<'a>>,
    #[serde(borrow)]
    result: Option<Text<'a>>,
    #[serde(borrow)]
    data: Option<Text<'a>>,
    metadata: Option<AnswerMetadata>,
}

/// A JSON string borrowed from the body when it has no escapes (serde's own `Cow<str>` inside an `Option` always
/// copies).
struct Text<'a>(std::borrow::Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[derive(serde::Deserialize)]
struct AnswerMetadata {
    #[serde(rename = "partitionKeys")]
    partition_keys: Option<serde_json::Map<String, Value>>,
}

/// What the function made of one record, its data a span of [`Answered::data`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    Ok { data: std::ops::Range<usize>, partition_keys: BTreeMap<String, String> },
    Dropped,
    ProcessingFailed,
}

/// The function's answer, every record's data decoded into one buffer (no allocation per record).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerData {
    pub data: Vec<u8>,
    /// In the order of the ids the function was given.
    pub results: Vec<Answered>,
}

/// Checks the function's answer against the record ids it was given and reads each record's result, in the
/// order of `ids`.
pub fn parse_answer(body: &[u8], ids: &[impl AsRef<str>]) -> Result<Vec<Transformed>, BadAnswer> {
    let parsed = parse_answer_data(body, ids)?;
    Ok(parsed
        .results
        .into_iter()
        .map(|r| match r {
            Answered::Ok { data, partition_keys } => {
                Transformed::Ok { data: parsed.data[data].to_vec(), partition_keys }
            }
            Answered::Dropped => Transformed::Dropped,
            Answered::ProcessingFailed => Transformed::ProcessingFailed,
        })
        .collect())
}

/// [`parse_answer`] into one buffer.
pub fn parse_answer_data(body: &[u8], ids: &[impl AsRef<str>]) -> Result<AnswerData, BadAnswer> {
    const JSON: &str = "Lambda.JsonProcessingException";
    let doc: AnswerDoc<'_> = serde_json::from_slice(body)
        .map_err(|e| bad(JSON, format!("There was an error parsing returned records from the Lambda function: {e}")))?;
    let records = doc.records.ok_or_else(|| {
        bad(JSON, "There was an error parsing returned records from the Lambda function: no `records` array")
    })?;
    // Functions answer in the order they were given: the id at the same place is checked first, and the ids are
    // hashed only for an answer out of order.
    let mut wanted: Option<HashMap<&str, usize>> = None;
    let mut out: Vec<Option<Answered>> = vec![None; ids.len()];
    let mut data = Vec::with_capacity(body.len() / 4 * 3);
    for (n, r) in records.into_iter().enumerate() {
        let id = r.record_id.as_deref().ok_or_else(|| bad(JSON, "a returned record has no recordId"))?;
        let at = match ids.get(n) {
            Some(same) if same.as_ref() == id => Some(n),
            _ => wanted
                .get_or_insert_with(|| ids.iter().enumerate().map(|(i, id)| (id.as_ref(), i)).collect())
                .get(id)
                .copied(),
        };
        let Some(at) = at else {
            return Err(bad("Lambda.MissingRecordId", format!("record id {id} was not sent to the function")));
        };
        if out[at].is_some() {
            return Err(bad(
                "Lambda.DuplicatedRecordId",
                "Multiple records were returned with the same record ID. Ensure that the Lambda function returns unique record IDs for each record.",
            ));
        }
        out[at] = Some(record_result(r, &mut data)?);
    }
    if out.iter().any(Option::is_none) {
        return Err(bad(
            "Lambda.MissingRecordId",
            "One or more record IDs were not returned. Ensure that the Lambda function returns all received record IDs.",
        ));
    }
    Ok(AnswerData { data, results: out.into_iter().map(|r| r.expect("checked above")).collect() })
}

fn record_result(r: AnswerRecord<'_>, into: &mut Vec<u8>) -> Result<Answered, BadAnswer> {
    const JSON: &str = "Lambda.JsonProcessingException";
    match r.result.as_deref() {
        Some("Ok") => {
            let text = r.data.as_deref().ok_or_else(|| bad(JSON, "a returned record has no data"))?;
            let from = into.len();
            base64_simd::STANDARD
                .decode_append(text, into)
                .map_err(|_| bad(JSON, "a returned record's data is not base64"))?;
            let partition_keys = r
                .metadata
                .as_ref()
                .and_then(|m| m.partition_keys.as_ref())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            Ok(Answered::Ok { data: from..into.len(), partition_keys })
        }
        Some("Dropped") => Ok(Answered::Dropped),
        Some("ProcessingFailed") => Ok(Answered::ProcessingFailed),
        other => Err(bad(
            JSON,
            format!("a returned record's result is {other:?}: it must be Ok, Dropped or ProcessingFailed"),
        )),
    }
}

/// The document a record the transformation failed becomes in the error output: one JSON object per line, with
/// the original record base64-encoded (the member order of real objects).
pub fn error_record(
    data: &[u8],
    code: &str,
    message: &str,
    attempts: u32,
    arrival_ms: i64,
    ended_ms: i64,
    lambda_arn: &str,
) -> Vec<u8> {
    let doc = json!({
        "rawData": base64_simd::STANDARD.encode_to_string(data),
        "errorCode": code,
        "errorMessage": message,
        "attemptsMade": attempts,
        "arrivalTimestamp": arrival_ms,
        "attemptEndingTimestamp": ended_ms,
        "lambdaARN": lambda_arn,
    });
    let mut line = serde_json::to_vec(&doc).expect("a document serializes");
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processing(params: Value) -> Value {
        json!({"Enabled": true, "Processors": [{"Type": "Lambda", "Parameters": params}]})
    }

    #[test]
    fn the_lambda_processor_has_aws_defaults_and_ranges() {
        let p = LambdaProcessor::from_config(Some(&processing(json!([
            {"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:us-east-1:000000000000:function:f"}
        ]))))
        .unwrap()
        .unwrap();
        assert_eq!((p.retries, p.buffer_size_mb, p.buffer_interval_s), (3, 1.0, 60));
        assert_eq!(p.qualified_arn(), "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST");
        let err = LambdaProcessor::from_config(Some(&processing(json!([
            {"ParameterName": "LambdaArn", "ParameterValue": "x"},
            {"ParameterName": "BufferSizeInMBs", "ParameterValue": "5"}
        ]))))
        .unwrap_err();
        assert!(err.contains("BufferSizeInMBs `5`"), "{err}");
        assert!(LambdaProcessor::from_config(Some(&processing(json!([])))).unwrap_err().contains("LambdaArn"));
        assert_eq!(LambdaProcessor::from_config(None).unwrap(), None);
    }

    #[test]
    fn answers_must_return_every_record_id_once() {
        let ids = vec!["a".to_string(), "b".to_string()];
        let ok = br#"{"records":[{"recordId":"b","result":"Dropped"},{"recordId":"a","result":"Ok","data":"eA==","metadata":{"partitionKeys":{"k":"v"}}}]}"#;
        let r = parse_answer(ok, &ids).unwrap();
        assert_eq!(r[1], Transformed::Dropped);
        assert!(
            matches!(&r[0], Transformed::Ok { data, partition_keys } if data == b"x" && partition_keys["k"] == "v")
        );
        let missing = br#"{"records":[{"recordId":"a","result":"Ok","data":"eA=="}]}"#;
        assert_eq!(parse_answer(missing, &ids).unwrap_err().code, "Lambda.MissingRecordId");
        let twice = br#"{"records":[{"recordId":"a","result":"Dropped"},{"recordId":"a","result":"Dropped"}]}"#;
        assert_eq!(parse_answer(twice, &ids).unwrap_err().code, "Lambda.DuplicatedRecordId");
        assert_eq!(parse_answer(b"not json", &ids).unwrap_err().code, "Lambda.JsonProcessingException");
        let bad_result = br#"{"records":[{"recordId":"a","result":"Maybe"},{"recordId":"b","result":"Dropped"}]}"#;
        assert_eq!(parse_answer(bad_result, &ids).unwrap_err().code, "Lambda.JsonProcessingException");
    }

    #[test]
    fn the_event_is_written_as_the_tree_it_was() {
        let records = [
            InputRecord { id: "0001", arrival_ms: 5, data: b"hello\n" },
            InputRecord { id: "0002", arrival_ms: 6, data: b"" },
            InputRecord { id: "0003", arrival_ms: 7, data: &[0, 255, 34, 92] },
        ];
        let tree = json!({"invocationId": "i\"d", "deliveryStreamArn": "arn:x", "region": "r", "records": [
            {"recordId": "0001", "approximateArrivalTimestamp": 5, "data": "aGVsbG8K"},
            {"recordId": "0002", "approximateArrivalTimestamp": 6, "data": ""},
            {"recordId": "0003", "approximateArrivalTimestamp": 7, "data": "AP8iXA=="},
        ]});
        assert_eq!(event("i\"d", "arn:x", "r", &records), tree);
        let none: Value = serde_json::from_slice(&event_json("i", "a", "r", &[])).unwrap();
        assert_eq!(none["records"], json!([]));
    }

    #[test]
    fn failed_records_keep_their_original_data() {
        let line = error_record(b"raw", "Lambda.FunctionError", "m", 4, 1, 2, "arn:f");
        let doc: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!((doc["rawData"].as_str(), doc["attemptsMade"].as_u64()), (Some("cmF3"), Some(4)));
        assert!(line.ends_with(b"\n"));
    }
}
