//! The body of each fuzz target: one function per parser that sees untrusted bytes, taking the fuzzer's input.
//! Besides "does not panic", each checks what must hold of what the parser accepts (a round trip, a count, a
//! bound). `fuzz_targets/*.rs` hand them to libFuzzer; `tests/corpus.rs` replays the corpora through them in a
//! plain `cargo test`. Inputs that need several strings split the data at NUL bytes.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use firehose_kit::delivery::lines::Line;
use firehose_kit::delivery::objects::{read_lines, scan};
use firehose_kit::pipeline::manifest::line_hash;
use firehose_kit_domain::types::Compression;

/// The NUL-separated fields of an input, at most `n` (the last holds the rest).
fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |b| *b == 0).collect()
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// A delivered object as verify reads it: every encoding told by its magic (gzip, ZIP, Snappy framing, Parquet),
/// Hadoop Snappy when the first byte says the stream uses it. The bytes kept are the bytes counted, each line is
/// handed over once, a whole line's hash is its bytes' hash, and read_lines agrees with scan.
pub fn verify_object(data: &[u8]) {
    let Some((&how, body)) = data.split_first() else { return };
    let compression = if how & 1 == 1 { Compression::HadoopSnappy } else { Compression::Uncompressed };
    let mut kept = Vec::new();
    let mut lines = 0u64;
    let scanned = scan(body, &compression, 64, Some(&mut kept), &mut |line| {
        lines += 1;
        if let Line::Whole(bytes) = line {
            assert!(bytes.len() <= 64);
            assert_eq!(line.hash(), line_hash(bytes));
        }
    });
    let mut hashes = 0u64;
    let read = read_lines(body, &compression, None, &mut |h| hashes += h.len() as u64);
    match (scanned, read) {
        (Ok(s), Ok(r)) => {
            assert_eq!((s.lines, s.bytes), (lines, kept.len() as u64));
            assert_eq!((r.lines, r.bytes), (hashes, s.bytes));
        }
        (Err(_), Err(_)) => {}
        (s, r) => panic!("scan and read_lines disagree: {s:?} / {r:?}"),
    }
}

/// An Apache access-log line, in local time and in UTC.
pub fn apache_line(data: &[u8]) {
    let local = firehose_kit::logs::parser::parse_line_in(data, false);
    let utc = firehose_kit::logs::parser::parse_line_in(data, true);
    assert_eq!(local.is_ok(), utc.is_ok(), "the time zone decides nothing but the time's form");
}

/// Hadoop's Snappy blocks (HADOOP_SNAPPY objects): what decodes encodes back to the same bytes.
pub fn hadoop_snappy(data: &[u8]) {
    use firehose_kit_domain::hadoop_snappy::{Reader, Writer};
    let mut decoded = Vec::new();
    if Reader::new(data).take(64 << 20).read_to_end(&mut decoded).is_err() {
        return;
    }
    let mut w = Writer::new(Vec::new());
    w.write_all(&decoded).unwrap();
    let again = w.finish().unwrap();
    let mut round = Vec::new();
    Reader::new(&again[..]).read_to_end(&mut round).unwrap();
    assert_eq!(round, decoded);
}

/// A KPL-aggregated Kinesis record, its MD5 made right so the protobuf is reached: what deaggregates aggregates
/// back to the same user records.
pub fn kpl_deaggregate(data: &[u8]) {
    use firehose_kit_domain::kinesis::{aggregate, deaggregate};
    use md5::Digest;
    let _ = deaggregate(data);
    let mut framed = vec![0xF3, 0x89, 0x9A, 0xC2];
    framed.extend_from_slice(data);
    framed.extend_from_slice(&md5::Md5::digest(data));
    if let Some(records) = deaggregate(&framed) {
        assert_eq!(deaggregate(&aggregate(&records)), Some(records));
    }
}

/// A MetadataExtractionQuery (jq) and a record: compiled, then run over the record, on a thread with the stack
/// the emulator's and the CLI's threads have.
pub fn jq_query(data: &[u8]) {
    let data = data.to_vec();
    std::thread::Builder::new()
        .stack_size(firehose_kit_domain::partitioning::JQ_STACK_BYTES)
        .spawn(move || jq_query_here(&data))
        .unwrap()
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

fn jq_query_here(data: &[u8]) {
    let f = fields(data, 2);
    let (expr, record) = (text(f[0]), f.get(1).copied().unwrap_or_default());
    if let Ok(q) = firehose_kit_domain::partitioning::Query::compile(&expr) {
        let keys = q.keys(record);
        let _ = q.text(record);
        if let Ok(keys) = keys {
            // Firehose's contract for partition keys: never null or empty.
            assert!(keys.values().all(|v| !v.is_empty()), "{expr}: {keys:?}");
        }
    }
}

/// An `Authorization` header and a presigned query string, as every non-S3 request brings them.
pub fn sigv4_header(data: &[u8]) {
    let s = text(data);
    if let Some(auth) = firehose_kit_emulator::sigv4::parse_authorization(&s) {
        let _ = format!("{auth:?}");
    }
    let _ = firehose_kit_emulator::sigv4::presigned_service(&s);
}

/// A Firehose CreateDeliveryStream or UpdateDestination body, through the emulator's parsing and every
/// validation that needs no state.
pub fn firehose_request(data: &[u8]) {
    use firehose_kit_emulator::firehose::model::{CreateInput, UpdateInput};
    use firehose_kit_emulator::firehose::validate;
    use firehose_kit_emulator::json::input;
    let Some((&op, body)) = data.split_first() else { return };
    if op & 1 == 0 {
        let Ok(c) = input::<CreateInput>(body) else { return };
        let _ = validate::stream_name(c.name.as_deref());
        let _ = validate::unmodelled_create(c.stream_type.as_deref(), &c.other);
        let _ = validate::tags(&c.tags);
        let encryption = c.encryption.as_ref().map(validate::encryption);
        let _ = validate::kinesis_source(c.stream_type.as_deref(), c.kinesis_source, encryption.is_some());
        for (d, extended) in [(c.extended_s3, true), (c.s3, false)] {
            if let Some(Ok(d)) = d.map(|d| validate::destination_from(d, extended, "destination")) {
                let _ = validate::destination(&d, "destination");
            }
        }
    } else {
        let Ok(u) = input::<UpdateInput>(body) else { return };
        let base = input(br#"{"BucketARN":"arn:aws:s3:::b","RoleARN":"arn:aws:iam::000000000000:role/r"}"#)
            .map(|d| validate::destination_from(d, true, "d").expect("a valid destination"))
            .expect("a destination");
        for d in [u.extended_s3, u.s3].into_iter().flatten() {
            if let Ok(merged) = validate::merge_update(base.clone(), d) {
                let _ = validate::destination(&merged, "destination");
            }
        }
    }
}

/// A journal segment as a kill may leave it (format 1 without `journal.json`, or format 2): opening cuts any
/// torn batch, and every frame up to the end it keeps is then readable.
pub fn journal_recovery(data: &[u8]) {
    use firehose_kit_domain::util::persist::Durability;
    use firehose_kit_emulator::firehose::journal::{Frame, Journal, Reader};
    let Some((&format, segment)) = data.split_first() else { return };
    let dir = tempfile::tempdir().unwrap();
    if format & 1 == 0 {
        std::fs::write(dir.path().join("journal.json"), br#"{"format":2,"id":1,"v1_before":0}"#).unwrap();
    }
    std::fs::write(dir.path().join(format!("{:020}.log", 0)), segment).unwrap();
    let journal = Journal::open(dir.path(), Durability::Process, 0, BTreeMap::new()).unwrap();
    let end = journal.end();
    assert!(end <= segment.len() as u64);
    let reader = Reader::new(dir.path(), journal.v1_before());
    let mut records = 0;
    reader
        .scan(0, end, |f| {
            if matches!(f, Frame::Record { .. }) {
                records += 1;
            }
        })
        .unwrap();
    assert_eq!(reader.read_range(0, end).unwrap().len(), records);
}

/// An IAM policy document (a role's, a bucket's), then evaluated for a request made of the other fields.
pub fn iam_policy(data: &[u8]) {
    use firehose_kit_domain::access::{Policy, Request, evaluate, trusts_service};
    let f = fields(data, 4);
    let Ok(policy) = Policy::parse(&text(f[0])) else { return };
    let _ = policy.unmodelled();
    let get = |i: usize| text(f.get(i).copied().unwrap_or_default());
    let (action, resource, principal) = (get(1), get(2), get(3));
    let context = [("aws:SecureTransport", "true"), ("sts:ExternalId", "000000000000")];
    let req = Request { action: &action, resource: &resource, principal: &principal, context: &context };
    let alone = evaluate(std::slice::from_ref(&policy), None, &req);
    let both = evaluate(std::slice::from_ref(&policy), Some(&policy), &req);
    // A resource policy can only add a deny to what the identity policy decides, or an allow.
    if matches!(alone, firehose_kit_domain::access::Decision::ExplicitDeny { .. }) {
        assert!(!both.allowed());
    }
    let _ = trusts_service(&policy, &principal, "000000000000");
}

/// A destination's Prefix and ErrorOutputPrefix, with and without dynamic partitioning, and a time zone:
/// validated, then evaluated.
pub fn prefix_expression(data: &[u8]) {
    use firehose_kit_domain::prefix::{Context, parse_time_zone, validate};
    let f = fields(data, 4);
    let get = |i: usize| text(f.get(i).copied().unwrap_or_default());
    let zone = parse_time_zone(Some(&get(3))).unwrap_or(chrono_tz::Tz::UTC);
    let partitioned = get(2).len() % 2 == 1;
    let Ok(p) = validate(Some(&get(0)), Some(&get(1)), partitioned) else { return };
    let at = chrono::DateTime::from_timestamp(1_795_000_000, 123_000_000).unwrap();
    let keys: BTreeMap<String, String> = [("a".to_string(), "x".to_string())].into();
    let mut ctx = Context::new(at, zone);
    ctx.partition_keys = Some(&keys);
    let _ = p.data.evaluate(&ctx);
    let _ = p.error.evaluate(&ctx);
}
