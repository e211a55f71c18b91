//! Every input of every target's corpus (`corpus/<target>/`), replayed through the target's body: what once
//! passed still passes, in a plain `cargo test` (no fuzzer, no sanitizer). `make fuzz` runs the fuzzer itself.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("verify_object", firehose_kit_fuzz::verify_object),
    ("apache_line", firehose_kit_fuzz::apache_line),
    ("hadoop_snappy", firehose_kit_fuzz::hadoop_snappy),
    ("kpl_deaggregate", firehose_kit_fuzz::kpl_deaggregate),
    ("jq_query", firehose_kit_fuzz::jq_query),
    ("sigv4_header", firehose_kit_fuzz::sigv4_header),
    ("firehose_request", firehose_kit_fuzz::firehose_request),
    ("journal_recovery", firehose_kit_fuzz::journal_recovery),
    ("iam_policy", firehose_kit_fuzz::iam_policy),
    ("prefix_expression", firehose_kit_fuzz::prefix_expression),
];

#[test]
fn every_corpus_input_still_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, target) in TARGETS {
        let dir = root.join(name);
        let mut inputs = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            target(&std::fs::read(&path).unwrap());
            inputs += 1;
        }
        assert!(inputs > 0, "{name} has an empty corpus");
    }
}

#[test]
fn every_fuzz_target_is_replayed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz_targets");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(files, names);
}

/// The seeds reach past the first check of their parser: a seed the parser refuses would leave the fuzzer to
/// find the format by itself.
#[test]
fn the_seeds_are_valid_inputs_of_their_format() {
    use firehose_kit_domain::types::Compression;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for encoding in ["plain", "gzip", "zip", "snappy", "hadoop-snappy", "parquet"] {
        let data = std::fs::read(root.join("verify_object").join(format!("seed-{encoding}"))).unwrap();
        let compression = if data[0] == 1 { Compression::HadoopSnappy } else { Compression::Uncompressed };
        let read = firehose_kit::delivery::objects::read_lines(&data[1..], &compression, None, &mut |_| {}).unwrap();
        assert_eq!(read.encoding, encoding);
        assert!(read.lines >= 2, "{encoding}: {read:?}");
    }
    let kpl = std::fs::read(root.join("kpl_deaggregate/seed-two-records")).unwrap();
    let mut framed = firehose_kit_domain::kinesis::KPL_MAGIC.to_vec();
    framed.extend_from_slice(&kpl);
    framed.extend_from_slice(&<md5::Md5 as md5::Digest>::digest(&kpl));
    assert_eq!(firehose_kit_domain::kinesis::deaggregate(&framed).map(|r| r.len()), Some(2));
    for (seed, keys) in [("seed-status", 1), ("seed-nested", 3)] {
        let data = std::fs::read(root.join("jq_query").join(seed)).unwrap();
        let (expr, record) = data.split_at(data.iter().position(|b| *b == 0).unwrap());
        let q = firehose_kit_domain::partitioning::Query::compile(std::str::from_utf8(expr).unwrap()).unwrap();
        assert_eq!(q.keys(&record[1..]).unwrap().len(), keys, "{seed}");
    }
}
