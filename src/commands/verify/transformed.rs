//! A transformed stream: every sent line accounted for as transformed and delivered, dropped by the function,
//! or processing-failed.

use crate::aws::{Clients, s3};
use crate::delivery::transformed::account;
use crate::error::Result;
use crate::ui::{format_count, plural};

use super::VerifyReport;
use super::poll::Found;
use super::runs::decompressed;
use super::scope::{Expectations, Layout};

/// On a transformed stream, every sent line accounted for (see [`account`]).
pub(super) async fn account_transformed(
    e: &Expectations,
    l: &Layout,
    found: &Found,
    clients: &Clients,
) -> Result<Option<crate::delivery::transformed::TransformTally>> {
    let Some((function, prediction)) = &e.transform else { return Ok(None) };
    let raw = processing_failed_data(clients, &l.bucket, &found.error_objects).await?;
    let expected = e.expected.lock().expect("expected lock");
    Ok(Some(account(function, prediction, &expected, &raw)))
}

/// The original data of every record in the processing-failed error output (`rawData` of each document).
pub(super) async fn processing_failed_data(clients: &Clients, bucket: &str, keys: &[String]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for key in keys.iter().filter(|k| k.contains("processing-failed")) {
        let body = s3::get_object_bytes(&clients.s3, bucket, key).await?;
        let text = decompressed(&body).unwrap_or(body);
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let doc: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
            if let Some(raw) = doc["rawData"].as_str().and_then(|r| base64_simd::STANDARD.decode_to_vec(r).ok()) {
                out.push(raw);
            }
        }
    }
    Ok(out)
}

/// The verdict on a transformed stream: about the sent lines, each accounted for once.
pub(super) fn transform_verdict(r: &VerifyReport, x: &crate::delivery::transformed::TransformTally) -> String {
    let accounted = format!(
        "{} transformed and delivered · {} dropped by the function · {} processing-failed{}",
        format_count(x.transformed),
        format_count(x.dropped),
        format_count(x.processing_failed),
        if x.failed_invocations > 0 {
            format!(" · {} in the error output after failed invocations", format_count(x.failed_invocations))
        } else {
            String::new()
        }
    );
    if r.verified {
        format!("OK: all {} accounted for: {accounted}", plural(x.lines, "sent line"))
    } else if x.missing == 0 && x.failed_invocations > 0 {
        format!(
            "FAILED: {} of {} in the processing-failed output because invocations failed (never transformed; the error log says why) ({accounted})",
            format_count(x.failed_invocations),
            plural(x.lines, "sent line")
        )
    } else if x.missing == 0 && r.misplaced_lines > 0 {
        format!("FAILED: {} in the wrong partition ({accounted})", plural(r.misplaced_lines, "line is|lines are"))
    } else if x.missing == 0 && r.tally.missing == 0 {
        format!("FAILED: every line accounted for, but {} duplicated (--strict)", plural(r.tally.duplicated, "line"))
    } else {
        format!(
            "FAILED: {} of {} in none of the outcomes ({accounted})",
            format_count(x.missing),
            plural(x.lines, "sent line")
        )
    }
}
