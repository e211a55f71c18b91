//! What the firehose-kit emulator says about itself in response headers (the contract is
//! `firehose::contract`): `local --speed N` runs buffering intervals N times faster and says so, so `status` and
//! `verify` can show it and classify flushes against the interval that really applied, and nobody mistakes
//! emulator timing for AWS timing; and its latest storage error (a full disk) is announced for a few minutes,
//! so `status` can say why records are refused. AWS never sends these headers: the speed stays 1 and no
//! storage error is seen.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::firehose::contract::{RETRY_HORIZON_HEADER, SOURCE_LAG_HEADER, SPEED_HEADER, STORAGE_ERROR_HEADER};
use crate::firehose::failures::RETRY_HORIZON;

/// The last speed an endpoint reported (1 when it never did), its retry horizon (24 h when it never said) and
/// its latest storage error.
#[derive(Debug, Clone)]
pub struct EmulatorHeaders {
    speed: Arc<AtomicU64>,
    horizon: Arc<AtomicU64>,
    storage_error: Arc<Mutex<Option<String>>>,
    source_lag_ms: Arc<Mutex<Option<i64>>>,
}

impl Default for EmulatorHeaders {
    fn default() -> Self {
        EmulatorHeaders {
            speed: Arc::new(AtomicU64::new(1f64.to_bits())),
            horizon: Arc::new(AtomicU64::new(RETRY_HORIZON.as_secs_f64().to_bits())),
            storage_error: Arc::default(),
            source_lag_ms: Arc::default(),
        }
    }
}

impl EmulatorHeaders {
    pub fn speed(&self) -> f64 {
        f64::from_bits(self.speed.load(Ordering::Relaxed))
    }

    /// How long undeliverable data is retried before it is dropped: 24 h on AWS.
    pub fn retry_horizon(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(f64::from_bits(self.horizon.load(Ordering::Relaxed)))
    }

    /// How far behind its Kinesis source the last described stream was (milliseconds), when the endpoint said.
    pub fn source_lag_ms(&self) -> Option<i64> {
        *self.source_lag_ms.lock().expect("source lag lock")
    }

    /// `<time> <stream>: <what failed>`, when the last answer announced one.
    pub fn storage_error(&self) -> Option<String> {
        self.storage_error.lock().expect("storage error lock").clone()
    }
}

impl Intercept for EmulatorHeaders {
    fn name(&self) -> &'static str {
        "EmulatorHeaders"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = context.response().headers();
        let speed = headers.get(SPEED_HEADER).and_then(|v| v.parse::<f64>().ok());
        if let Some(speed) = speed.filter(|s| s.is_finite() && *s >= 1.0) {
            self.speed.store(speed.to_bits(), Ordering::Relaxed);
        }
        let horizon = headers.get(RETRY_HORIZON_HEADER).and_then(|v| v.parse::<f64>().ok());
        if let Some(h) = horizon.filter(|h| h.is_finite() && *h >= 0.0) {
            self.horizon.store(h.to_bits(), Ordering::Relaxed);
        }
        *self.storage_error.lock().expect("storage error lock") = headers.get(STORAGE_ERROR_HEADER).map(str::to_string);
        if let Some(lag) = headers.get(SOURCE_LAG_HEADER).and_then(|v| v.parse::<i64>().ok()) {
            *self.source_lag_ms.lock().expect("source lag lock") = Some(lag);
        }
        Ok(())
    }
}
