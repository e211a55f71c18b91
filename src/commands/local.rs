//! `firehose-kit local`: run the embedded emulator until Ctrl-C or SIGTERM, then flush every buffer and exit 0.

use std::io::Write;

use serde_json::json;

use crate::cli::LocalArgs;
use crate::error::{Error, ExitCode, Result};
use crate::settings::{DEFAULT_REGION, Global};
use crate::ui::Printer;
use firehose_kit_emulator::{Emulator, EmulatorConfig, StartError};

pub async fn run(args: &LocalArgs, global: &Global, printer: &Printer) -> Result<ExitCode> {
    let data_dir = args.data_dir.clone().unwrap_or_else(|| global.state_dir.join("local"));
    let config = EmulatorConfig {
        addr: args.addr.clone(),
        allow_remote: args.allow_remote,
        data_dir: Some(data_dir.clone()),
        create_delay: args.create_delay,
        delete_delay: args.delete_delay,
        iam_propagation_delay: args.iam_propagation_delay,
        quota: args.quota.0,
        fail_rate: args.fail_rate,
        seed: args.seed,
        account_id: args.account_id.clone(),
        secret: args.secret.clone(),
        memory_limit: args.memory_limit.0,
        hostname: args.hostname.clone(),
        fail_delivery: args.fail_delivery,
        delivery_retry_horizon: args.delivery_retry_horizon,
        partition_limit: args.partition_limit,
        speed: args.speed,
        fsync: args.fsync,
        functions: !args.no_functions,
    };
    // Caught from now on: a SIGTERM while the journals are recovered still stops with the flush.
    let stop = crate::util::signal::Stop::install();
    let handle = Emulator::builder().config(config).start().await.map_err(|e| match e {
        StartError::Bind { .. } => Error::failed(format!(
            "{e}: {}",
            std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default()
        ))
        .with_hint(
            "another emulator or LocalStack may be using the port: stop it, or pick another with --addr 127.0.0.1:0",
        ),
        StartError::NotLoopback(_)
        | StartError::BadAddr(_)
        | StartError::NewerFormat { .. }
        | StartError::DefaultSecretExposed(_) => Error::usage(e.to_string()),
        StartError::InUse { .. } => Error::usage(e.to_string()).with_hint(
            "two emulators on one data dir would deliver the same records twice: stop the other one, or give this one its own --data-dir",
        ),
        other => Error::failed(format!(
            "{other}: {}",
            std::error::Error::source(&other).map(|s| s.to_string()).unwrap_or_default()
        )),
    })?;
    let endpoint = handle.endpoint().to_string();
    let region = global.connection.region.clone().unwrap_or_else(|| DEFAULT_REGION.into());
    let secret = handle.secret().to_string();
    if printer.json() {
        printer.result_json(&json!({
            "endpoint": endpoint,
            "data_dir": data_dir,
            "account_id": handle.account_id(),
            "speed": args.speed,
            "env": {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": secret,
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
            }
        }));
    } else {
        printer.result(&format!("firehose-kit emulator listening on {endpoint} (data: {})", data_dir.display()));
        printer.result(&format!(
            "export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY={secret} AWS_REGION={region} AWS_DEFAULT_REGION={region}"
        ));
    }
    let _ = std::io::stdout().flush();
    announce_options(args, printer);
    printer.status("press Ctrl-C to stop (buffers are flushed to S3 first)");
    stop.wait().await;
    printer.status("stopping: flushing buffered records");
    handle.shutdown().await;
    printer.status("stopped");
    Ok(ExitCode::Success)
}

/// What the start-up banner says beyond the endpoint: injected failures, `--speed`, a shortened retry horizon, and
/// what exposing the emulator means.
fn announce_options(args: &LocalArgs, printer: &Printer) {
    if let Some(f) = &args.fail_delivery {
        printer.status(&format!(
            "injecting delivery failures: {} on {:.0}% of attempts (retried, and logged where streams log errors)",
            f.code.code,
            f.probability * 100.0
        ));
    }
    if args.speed != 1.0 {
        printer.status(&format!(
            "--speed {}: buffering intervals, retry backoff and lifecycle delays run {}× faster than on AWS (a 60 s interval flushes after {:.1} s)",
            args.speed,
            args.speed,
            60.0 / args.speed
        ));
    }
    if args.delivery_retry_horizon != crate::firehose::failures::RETRY_HORIZON {
        printer.status(&format!(
            "undeliverable data is dropped after {} (AWS: 24 h)",
            humantime::format_duration(args.delivery_retry_horizon)
        ));
    }
    if args.allow_remote {
        printer.status(&if args.no_functions {
            "exposed beyond loopback: requests must be signed with your --secret; function execution is off (--no-functions)".to_string()
        } else {
            format!(
                "exposed beyond loopback: anyone with the secret can create Lambda functions, which run their code on this host as user {}; --no-functions turns that off",
                std::env::var("USER").unwrap_or_else(|_| "(this process's)".into())
            )
        });
    }
}
