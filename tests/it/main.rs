//! The one integration-test binary: every module drives firehose-kit against an emulator started in-process.
