#![no_main]

// The `parquet` and `arrow` crates panic on some malformed files (an offset past a buffer's end); verify's Parquet
// reader catches such a panic and reports the object unreadable (`delivery/parquet_rows.rs`). libfuzzer-sys makes
// every panic abort, caught or not: its hook is put back to the default here, so only a panic that escapes
// verify_object (it cannot unwind out of the fuzzer's entry point) is a crash.
libfuzzer_sys::fuzz_target!(
    init: {
        let _ = std::panic::take_hook();
    },
    |data: &[u8]| firehose_kit_fuzz::verify_object(data)
);
