//! Compatibility: other clients against our emulator, and firehose-kit against moto server. These need Python
//! packages (`pip install 'moto[server]' boto3 awscli`), so they are `#[ignore]`d in `make test` and run by
//! `make test-compat` (CI installs the packages and runs both).

use std::process::Command;

use crate::support;

#[tokio::test]
#[ignore = "needs python3 with boto3 and the AWS CLI: make test-compat"]
async fn compat_boto3_and_aws_cli_drive_the_emulator() {
    let env = support::start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/boto3_emulator.py");
    let out = Command::new("python3")
        .arg(script)
        .env("AWS_ENDPOINT_URL", env.emu.endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", support::REGION)
        .env("AWS_DEFAULT_REGION", support::REGION)
        .env_remove("AWS_PROFILE")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "boto3/AWS CLI script failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("verified"), "{stdout}");
}
