#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| firehose_kit_fuzz::jq_query(data));
