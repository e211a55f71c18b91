//! Every CompressionFormat Firehose writes, through the binary: setup `--compression`, send, verify (which reads
//! each encoding back), and the object's name; in `make test-compat`, the objects opened by independent
//! readers: `unzip`, and python-snappy's framing and Hadoop stream decoders.

use std::process::Command;

use crate::support::{self, assert_exit, cli, json_out};

/// (flag, extension, python-snappy decoder or `unzip`).
const FORMATS: [(&str, &str, &str); 3] = [
    ("zip", ".zip", "unzip"),
    ("snappy", ".snappy", "StreamDecompressor"),
    ("hadoop-snappy", ".snappy", "HadoopStreamDecompressor"),
];

/// Sets up a stream per format, sends the same 3,000 lines to each and verifies them; returns the directory, the
/// input file and, per format, the stream's objects (key, body).
async fn deliver_each(env: &support::Env) -> (tempfile::TempDir, std::path::PathBuf, Vec<Vec<(String, Vec<u8>)>>) {
    let (ep, dir) = (env.emu.endpoint().to_string(), tempfile::tempdir().unwrap());
    let input = support::log_file(dir.path(), "in.log", 3000, 5);
    let mut delivered = Vec::new();
    for (flag, extension, _) in FORMATS {
        let stream = format!("Packed-{flag}");
        let bucket = format!("packed-{flag}");
        support::setup(&ep, dir.path(), &["--stream", &stream, "--bucket", &bucket, "--compression", flag]);
        assert_exit(&cli(&ep, dir.path(), &["--stream", &stream, "send", input.to_str().unwrap()]), 0);
        let verified = cli(&ep, dir.path(), &["--stream", &stream, "verify", "-o", "json"]);
        assert_exit(&verified, 0);
        let v = json_out(&verified);
        assert_eq!((v["verified"].as_bool(), v["matched"].as_u64()), (Some(true), Some(3000)), "{flag}: {v}");
        let objects = support::objects(&env.clients, &bucket, "").await;
        assert!(!objects.is_empty() && objects.iter().all(|(k, _)| k.ends_with(extension)), "{flag}: {objects:?}");
        delivered.push(objects);
    }
    (dir, input, delivered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zip_snappy_and_hadoop_snappy_are_delivered_and_verified() {
    let env = support::start_with(|b| b.speed(60.0)).await;
    let (_dir, _, delivered) = deliver_each(&env).await;
    // Snappy's framing format starts with its stream identifier; ZIP with a local file header; Hadoop's blocks
    // with a big-endian length no larger than a block.
    assert!(delivered[0][0].1.starts_with(b"PK\x03\x04"));
    assert!(delivered[1][0].1.starts_with(b"\xff\x06\x00\x00sNaPpY"));
    let first = u32::from_be_bytes(delivered[2][0].1[..4].try_into().unwrap()) as usize;
    assert!(first > 0 && first <= firehose_kit_domain::hadoop_snappy::BLOCK_SIZE, "{first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs unzip and python3 with python-snappy: make test-compat"]
async fn compat_unzip_and_python_snappy_read_every_format() {
    let has_snappy = Command::new("python3").args(["-c", "import snappy"]).output().is_ok_and(|o| o.status.success());
    let has_unzip = Command::new("unzip").arg("-v").output().is_ok_and(|o| o.status.success());
    if !has_snappy || !has_unzip {
        eprintln!(
            "SKIPPED: needs unzip and python-snappy (pip install python-snappy); has unzip: {has_unzip}, snappy: {has_snappy}"
        );
        return;
    }
    let env = support::start_with(|b| b.speed(60.0)).await;
    let (dir, input, delivered) = deliver_each(&env).await;
    let mut want: Vec<String> = std::fs::read_to_string(&input).unwrap().lines().map(str::to_string).collect();
    want.sort();
    for ((flag, _, reader), objects) in FORMATS.iter().zip(delivered) {
        let mut got = Vec::new();
        for (i, (_, body)) in objects.iter().enumerate() {
            let path = dir.path().join(format!("{flag}-{i}"));
            std::fs::write(&path, body).unwrap();
            let out = if *reader == "unzip" {
                Command::new("unzip").arg("-p").arg(&path).output().expect("unzip")
            } else {
                let script = format!(
                    "import snappy, sys; sys.stdout.buffer.write(snappy.{reader}().decompress(open(sys.argv[1], 'rb').read()))"
                );
                Command::new("python3").args(["-c", &script]).arg(&path).output().expect("python3")
            };
            assert!(out.status.success(), "{flag}: {}", String::from_utf8_lossy(&out.stderr));
            got.extend(String::from_utf8(out.stdout).unwrap().lines().map(str::to_string));
        }
        got.sort();
        assert_eq!(got, want, "{flag}: the independent reader gives the lines sent");
    }
}
