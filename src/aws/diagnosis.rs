//! Why data is not (or was late) in S3: the stream's delivery error events over a window, read from its
//! CloudWatch Logs error log, and for `S3.AccessDenied` the permissions the role lacks now. Used by `verify`
//! (the run's window) and `status` (the last hour).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Clients;
use super::access::{Grant, role_access};
use super::firehose::{DestinationSpec, ErrorLogging};
use super::logs::{self, ErrorSummary};
use crate::error::Result;
use crate::firehose::access::{delivery_needs, log_stream_arn};
use crate::firehose::prefix::static_part_of;

/// What the error log and the role say about a window.
#[derive(Debug, Clone, Serialize)]
pub struct Causes {
    /// Where delivery errors are logged; `None` when error logging is off.
    pub error_logging: Option<ErrorLogging>,
    /// Whether the log group and stream could be read (they exist).
    pub log_readable: bool,
    /// Error codes seen in the window, most frequent first.
    pub errors: Vec<ErrorSummary>,
    /// Permissions delivery needs that the role lacks now (checked when `S3.AccessDenied` was logged, or when
    /// data is missing and nothing can be read from the log).
    pub lacking: Vec<Grant>,
    /// The role's trust policy does not let Firehose assume it.
    pub untrusted: bool,
    /// Plain-language conclusions.
    pub notes: Vec<String>,
}

impl Causes {
    /// Text lines for the human report, indented by two spaces.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.error_logging {
            None => out.push(
                "  error logging is not enabled on this stream: the cause cannot be seen (`firehose-kit setup --error-logging` turns it on)"
                    .into(),
            ),
            Some(l) if !self.log_readable => {
                out.push(format!("  error log {l} does not exist: Firehose cannot log errors there"))
            }
            Some(l) if self.errors.is_empty() => out.push(format!("  no delivery errors logged in {l}")),
            Some(l) => {
                out.push(format!("  delivery errors logged in {l}:"));
                for e in &self.errors {
                    out.push(format!(
                        "    {} × {}  {} → {}",
                        e.code,
                        e.count,
                        e.first.format("%H:%M:%S"),
                        e.last.format("%H:%M:%S")
                    ));
                    out.push(format!("      AWS: {}", e.message));
                    if let Some(hint) = &e.hint {
                        out.push(format!("      fix: {hint}"));
                    }
                }
            }
        }
        if self.untrusted {
            out.push("  the role's trust policy does not let firehose.amazonaws.com assume it".into());
        }
        for g in &self.lacking {
            out.push(format!(
                "  the role lacks {} on {} ({}): {}",
                g.action,
                g.resource,
                g.for_what,
                g.reason.as_deref().unwrap_or("not allowed")
            ));
        }
        out.extend(self.notes.iter().map(|n| format!("  {n}")));
        out
    }
}

/// What is true now of errors that stopped being true: the role allows delivery again (or the bucket is back),
/// unless the bucket is (still) missing; and data retained longer than the retry horizon is gone.
async fn now_deliverable(clients: &Clients, dest: &DestinationSpec, errors: &[ErrorSummary]) -> Result<String> {
    if super::s3::bucket_state(&clients.s3, dest.bucket()).await? != super::s3::BucketState::Exists {
        return Ok(format!(
            "the role allows delivery, but the bucket {} does not exist now: nothing can be delivered until it is created again (`firehose-kit setup` does it)",
            dest.bucket()
        ));
    }
    let horizon = clients.emulator.retry_horizon();
    let first = errors.iter().map(|e| e.first).min();
    let last = errors.iter().map(|e| e.last).max();
    let span = match (first, last) {
        (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
        _ => std::time::Duration::ZERO,
    };
    let horizon_text = crate::ui::format_duration(horizon);
    let now = if errors.iter().any(|e| e.code == "S3.AccessDenied") {
        "the role allows delivery now"
    } else {
        "the bucket exists now"
    };
    Ok(if span >= horizon {
        format!(
            "{now}, but delivery failed for longer than Firehose retries ({horizon_text}): data that arrived more than {horizon_text} before the repair was dropped and will not arrive (send it again); what arrived since is delivered"
        )
    } else {
        format!("{now}: the errors predate a repair, and the retained data is being delivered")
    })
}

/// What verify asks about: lines are missing (then the role is checked even when nothing could be read from the
/// log), and when the oldest of the data was sent (data older than the retry horizon cannot arrive any more).
#[derive(Debug, Clone, Copy, Default)]
pub struct Missing {
    pub lines: bool,
    pub sent_before: Option<DateTime<Utc>>,
}

/// Reads the error log of `stream` between `since` and `until`, and says what the errors mean now.
pub async fn causes(
    clients: &Clients,
    dest: &DestinationSpec,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    missing: Missing,
) -> Result<Causes> {
    let data_missing = missing.lines;
    let mut c = Causes {
        error_logging: dest.error_logging.clone(),
        log_readable: false,
        errors: Vec::new(),
        lacking: Vec::new(),
        untrusted: false,
        notes: Vec::new(),
    };
    if let Some(l) = &dest.error_logging {
        match logs::delivery_errors(&clients.logs, &l.group, &l.stream, since, until).await? {
            Some(errors) => {
                c.log_readable = true;
                c.errors = errors;
            }
            None => c.log_readable = false,
        }
    }
    let denied = c.errors.iter().any(|e| e.code == "S3.AccessDenied" || e.code == "DataFormatConversion.AccessDenied");
    if denied || (data_missing && c.errors.is_empty()) {
        let account_id = clients.account_id().await?;
        let log = dest
            .error_logging
            .as_ref()
            .map(|l| log_stream_arn(clients.partition(), &clients.region, &account_id, &l.group, &l.stream));
        let mut needs =
            delivery_needs(clients.partition(), dest.bucket(), static_part_of(dest.prefix.as_deref()), log.as_deref());
        if let Some(conv) = dest.conversion.as_ref().filter(|conv| conv.role_arn == dest.role_arn) {
            let (partition, region) = (clients.partition(), &clients.region);
            needs.extend(firehose_kit_domain::conversion::read_needs(
                partition,
                region,
                &account_id,
                &conv.database,
                &conv.table,
            ));
        }
        let access = role_access(clients, &account_id, &dest.role_arn, dest.bucket(), &needs).await?;
        c.untrusted = access.exists && !access.trusts_firehose;
        c.lacking = access.lacking().cloned().collect();
    }
    let horizon = clients.emulator.retry_horizon();
    // Missing lines sent longer ago than Firehose retries failed deliveries were dropped: they cannot arrive.
    // Without runs (`--expect`), the data that failed first arrived up to the interval before the first error.
    let interval = chrono::Duration::milliseconds(
        (dest.buffer_interval_s.max(0) as f64 / clients.emulator.speed() * 1000.0) as i64,
    );
    let oldest = missing.sent_before.or_else(|| c.errors.iter().map(|e| e.first - interval).min());
    let dropped = data_missing
        && !c.errors.is_empty()
        && oldest.is_some_and(|t| (Utc::now() - t).to_std().unwrap_or_default() > horizon);
    let repaired = c.lacking.is_empty() && !c.untrusted;
    if dropped {
        c.notes.push(format!(
            "the missing lines were sent more than {} ago, longer than Firehose retries failed deliveries: they were dropped and will not arrive, even now that delivery works; send them again",
            crate::ui::format_duration(horizon)
        ));
    } else if repaired && (denied || c.errors.iter().any(|e| e.code == "S3.NoSuchBucket")) {
        c.notes.push(now_deliverable(clients, dest, &c.errors).await?);
    }
    if data_missing && !c.errors.is_empty() && !dropped {
        let horizon = crate::ui::format_duration(clients.emulator.retry_horizon());
        c.notes.push(format!(
            "Firehose keeps retrying failed deliveries for up to {horizon}, then drops the data: fix the cause and the retained lines arrive; lines older than that are lost"
        ));
    }
    Ok(c)
}
