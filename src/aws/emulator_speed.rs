//! Noticing a sped-up emulator. `firehose-kit local --speed N` runs buffering intervals N times faster and says so
//! in a response header (`x-firehose-kit-speed`); [`SpeedHeader`] records it from Firehose answers, so `status`
//! and `verify` can show it and classify flushes against the interval that really applied, and nobody mistakes
//! emulator timing for AWS timing. AWS never sends the header: the speed stays 1.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// The header the emulator sets when it runs faster than AWS.
pub const HEADER: &str = "x-firehose-kit-speed";

/// The last speed an endpoint reported (1 when it never did).
#[derive(Debug, Clone)]
pub struct SpeedHeader(Arc<AtomicU64>);

impl Default for SpeedHeader {
    fn default() -> Self {
        SpeedHeader(Arc::new(AtomicU64::new(1f64.to_bits())))
    }
}

impl SpeedHeader {
    pub fn speed(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

impl Intercept for SpeedHeader {
    fn name(&self) -> &'static str {
        "SpeedHeader"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let speed = context.response().headers().get(HEADER).and_then(|v| v.parse::<f64>().ok());
        if let Some(speed) = speed.filter(|s| s.is_finite() && *s >= 1.0) {
            self.0.store(speed.to_bits(), Ordering::Relaxed);
        }
        Ok(())
    }
}
