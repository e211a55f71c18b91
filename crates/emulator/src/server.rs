//! The emulator's one listener: accepts HTTP/1.1 and HTTP/2 (prior knowledge) connections, routes each request to S3, Firehose, Kinesis,
//! CloudWatch Logs, Lambda, IAM or STS, and stamps a request id on every response.
//!
//! Routing order (as LocalStack's, reduced to these services): `X-Amz-Target: Firehose_20150804.*` → Firehose,
//! `Kinesis_20131202.*` → Kinesis Data Streams, `AWSGlue.*` → the Glue Data Catalog, `Logs_20140328.*` → CloudWatch
//! Logs;
//! else the SigV4 credential scope's service (Authorization header, or `X-Amz-Credential` of a presigned URL;
//! `lambda` → Lambda's REST API);
//! else an unsigned form `POST /` → STS for `GetCallerIdentity`, IAM otherwise; everything else → S3 (s3s).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::firehose::Firehose;
use super::glue::Glue;
use super::iam::Iam;
use super::kinesis::Kinesis;
use super::lambda::Lambda;
use super::logs::Logs;
use super::sigv4;

/// Largest Lambda request body read: a 50 MB function zip (Lambda's limit) is ~67 MB in CreateFunction's JSON.
const MAX_LAMBDA_BODY: usize = 72 * 1024 * 1024;
/// Largest body of any other non-S3 request, just above the largest legal one: PutRecords' 5 MiB of data and
/// partition keys is ~7 MB once base64-encoded (PutRecordBatch's 4 MiB ~5.6 MB); a slightly larger call still
/// reaches its service's own error.
const MAX_API_BODY: usize = 8 * 1024 * 1024;
/// How often buffers are checked against their IntervalInSeconds.
const TICK: Duration = Duration::from_millis(100);

pub struct Services {
    pub s3: s3s::service::S3Service,
    pub firehose: Arc<Firehose>,
    pub kinesis: Arc<Kinesis>,
    pub glue: Arc<Glue>,
    pub iam: Arc<Iam>,
    pub logs: Arc<Logs>,
    pub lambda: Arc<Lambda>,
    pub secret: String,
    /// `--speed`, announced in every answer's `x-firehose-kit-speed` header when it is not 1.
    pub speed: f64,
    /// `--delivery-retry-horizon`, announced when it is not AWS's 24 hours.
    pub retry_horizon: Duration,
}

#[derive(Debug, Clone, PartialEq)]
enum Route {
    S3,
    Firehose(String),
    Kinesis(String),
    Glue(String),
    Logs(String),
    Lambda,
    /// An unsigned download of a function's zip, from the `Code.Location` GetFunction answers (on AWS a
    /// presigned S3 URL; here the code's SHA-256 in the query is the capability).
    LambdaCode,
    Iam,
    Sts,
}

fn classify<B>(req: &Request<B>) -> (Route, String) {
    let headers = req.headers();
    let auth =
        headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(sigv4::parse_authorization);
    let region = auth.as_ref().map(|a| a.region.to_string()).unwrap_or_else(|| "us-east-1".into());
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok())
        && let Some(op) = target.strip_prefix("Firehose_20150804.")
    {
        return (Route::Firehose(op.to_string()), region);
    }
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok())
        && let Some(op) = target.strip_prefix("Kinesis_20131202.")
    {
        return (Route::Kinesis(op.to_string()), region);
    }
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok())
        && let Some(op) = target.strip_prefix("AWSGlue.")
    {
        return (Route::Glue(op.to_string()), region);
    }
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok())
        && let Some(op) = target.strip_prefix("Logs_20140328.")
    {
        return (Route::Logs(op.to_string()), region);
    }
    let service =
        auth.as_ref().map(|a| a.service.to_string()).or_else(|| req.uri().query().and_then(sigv4::presigned_service));
    let route = match service.as_deref() {
        Some("firehose") => Route::Firehose(String::new()),
        Some("logs") => Route::Logs(String::new()),
        Some("kinesis") => Route::Kinesis(String::new()),
        Some("glue") => Route::Glue(String::new()),
        Some("lambda") => Route::Lambda,
        Some("iam") => Route::Iam,
        Some("sts") => Route::Sts,
        Some(_) => Route::S3,
        None => {
            let form = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
            if req.method() == http::Method::POST && req.uri().path() == "/" && form {
                // Unsigned Query call: decided by Action once the body is read.
                Route::Iam
            } else if req.method() == http::Method::GET && super::lambda::is_code_location(req.uri()) {
                Route::LambdaCode
            } else {
                Route::S3
            }
        }
    };
    (route, region)
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Bytes> {
    let body = serde_json::json!({"__type": code, "message": message});
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
        .body(Bytes::from(body.to_string()))
        .expect("static response parts are valid")
}

/// The largest body kept for a route: a longer one is refused (413) without ever being held.
fn body_cap(route: &Route) -> usize {
    if *route == Route::Lambda { MAX_LAMBDA_BODY } else { MAX_API_BODY }
}

/// Reads a request body into one buffer sized from Content-Length (at most `cap`): a 5 MiB PutRecordBatch body
/// is received once, not gathered in pieces and then copied whole. A body past `cap` is read on and dropped as it
/// comes (a client still writing would otherwise see a broken pipe, not the refusal), up to [`DRAINED`]; a
/// larger one is refused at once, its connection closed.
async fn read_body(mut body: Incoming, length: Option<usize>, cap: usize) -> Result<Bytes, String> {
    let too_large = || format!("the body is larger than the {cap} bytes this call takes");
    if length.is_some_and(|l| l > DRAINED) {
        return Err(too_large());
    }
    // A body declared past the cap is drained without keeping any of it.
    let keep = length.is_none_or(|l| l <= cap);
    let mut buf = Vec::with_capacity(if keep { length.unwrap_or(0) } else { 0 });
    let mut read = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(data) = frame.into_data() {
            read += data.len();
            if read > DRAINED {
                return Err(too_large());
            }
            if keep && read <= cap {
                buf.extend_from_slice(&data);
            }
        }
    }
    if read > cap { Err(too_large()) } else { Ok(Bytes::from(buf)) }
}

/// How much of a body past its cap is read and dropped before the connection is closed instead.
const DRAINED: usize = 128 * 1024 * 1024;

async fn handle_api(
    svc: &Services,
    route: Route,
    region: &str,
    req: Request<Incoming>,
    request_id: &str,
) -> Response<Bytes> {
    let (parts, body) = req.into_parts();
    let length = parts.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
    let bytes = match read_body(body, length, body_cap(&route)).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SerializationException",
                &format!("cannot read the request body: {e}"),
            );
        }
    };
    let query = parts.uri.query().unwrap_or("");
    let is_query_protocol = matches!(route, Route::Iam | Route::Sts);
    let route = match route {
        // An unsigned or IAM-scoped form call naming GetCallerIdentity is STS.
        Route::Iam
            if parts.headers.get(http::header::AUTHORIZATION).is_none()
                && body_action(&bytes) == Some("GetCallerIdentity".into()) =>
        {
            Route::Sts
        }
        other => other,
    };
    if let Err(rejection) =
        sigv4::verify(parts.method.as_str(), parts.uri.path(), query, &parts.headers, &bytes, &svc.secret)
    {
        if is_query_protocol {
            let code =
                if rejection.code == "InvalidSignatureException" { "SignatureDoesNotMatch" } else { rejection.code };
            let ns = if route == Route::Sts {
                "https://sts.amazonaws.com/doc/2011-06-15/"
            } else {
                "https://iam.amazonaws.com/doc/2010-05-08/"
            };
            return super::query::QueryError::new(403, code, rejection.message).into_response(ns, request_id);
        }
        return json_error(StatusCode::FORBIDDEN, rejection.code, &rejection.message);
    }
    let access_key = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(sigv4::parse_authorization)
        .map(|a| a.access_key.to_string());
    match route {
        Route::Firehose(op) if op.is_empty() => {
            json_error(StatusCode::BAD_REQUEST, "UnknownOperationException", "missing X-Amz-Target header")
        }
        Route::Firehose(op) => svc.firehose.handle(&op, bytes, region).await,
        Route::Kinesis(op) if op.is_empty() => {
            json_error(StatusCode::BAD_REQUEST, "UnknownOperationException", "missing X-Amz-Target header")
        }
        Route::Kinesis(op) => {
            // Shard files are read and written under the service's lock: off the runtime's worker threads.
            let content_type =
                parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
            let (kinesis, region) = (svc.kinesis.clone(), region.to_string());
            tokio::task::spawn_blocking(move || kinesis.handle(&op, &bytes, &region, content_type.as_deref()))
                .await
                .unwrap_or_else(|e| json_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", &e.to_string()))
        }
        Route::Glue(op) if op.is_empty() => {
            json_error(StatusCode::BAD_REQUEST, "UnknownOperationException", "missing X-Amz-Target header")
        }
        Route::Glue(op) => svc.glue.handle(&op, &bytes, region),
        Route::Logs(op) if op.is_empty() => {
            json_error(StatusCode::BAD_REQUEST, "UnknownOperationException", "missing X-Amz-Target header")
        }
        Route::Logs(op) => svc.logs.handle(&op, &bytes, region),
        Route::Lambda => {
            svc.lambda.handle(&parts.method, parts.uri.path(), parts.uri.query(), &parts.headers, bytes, region).await
        }
        Route::Iam => svc.iam.handle_iam(parts.uri.query(), &bytes, region, request_id),
        Route::Sts => svc.iam.handle_sts(parts.uri.query(), &bytes, access_key.as_deref(), request_id),
        Route::S3 | Route::LambdaCode => unreachable!("served before the API body is read"),
    }
}

fn body_action(body: &[u8]) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs.into_iter().find(|(k, _)| k == "Action").map(|(_, v)| v)
}

/// Whether a peer is this host: loopback, IPv4-mapped IPv6 loopback (`::ffff:127.0.0.1`) included.
pub fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

async fn dispatch(
    svc: Arc<Services>,
    peer: std::net::SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<s3s::Body>, Infallible> {
    let started = Instant::now();
    // HTTP/2 carries the host as the `:authority` pseudo-header, which SigV4 signs as `host`.
    if !req.headers().contains_key(http::header::HOST)
        && let Some(v) = req.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        req.headers_mut().insert(http::header::HOST, v);
    }
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let (route, region) = classify(&req);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let label = match &route {
        Route::S3 => format!("s3 {method} {path}"),
        Route::Firehose(op) => format!("firehose {op}"),
        Route::Kinesis(op) => format!("kinesis {op}"),
        Route::Glue(op) => format!("glue {op}"),
        Route::Logs(op) => format!("logs {op}"),
        Route::Lambda => format!("lambda {method} {path}"),
        Route::LambdaCode => format!("lambda code {path}"),
        Route::Iam => "iam".to_string(),
        Route::Sts => "sts".to_string(),
    };
    let mut resp = match route {
        Route::S3 => match svc.s3.call(req.map(s3s::Body::from)).await {
            Ok(resp) => resp,
            Err(e) => Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(s3s::Body::from(format!("{e:?}")))
                .expect("static response parts are valid"),
        },
        // The code download is unsigned (its link stands in for a presigned URL): for this host only, whatever the
        // listen address.
        Route::LambdaCode if !is_loopback(peer.ip()) => Response::builder()
            .status(StatusCode::FORBIDDEN)
            .body(s3s::Body::from("function code is served to this host only".to_string()))
            .expect("static response parts are valid"),
        Route::LambdaCode => svc.lambda.code(req.uri()).map(s3s::Body::from),
        route => {
            // A panic in a handler is answered (and the stream named in the log) instead of dropping the connection:
            // nothing a handler stores is acknowledged before it answers.
            let handled = std::panic::AssertUnwindSafe(handle_api(&svc, route, &region, req, &request_id));
            match futures::FutureExt::catch_unwind(handled).await {
                Ok(resp) => resp.map(s3s::Body::from),
                Err(panic) => {
                    let message = crate::firehose::engine::panic_message(&*panic);
                    tracing::warn!("{label} {message}; answered InternalFailure");
                    Response::builder()
                        .status(StatusCode::INTERNAL_SERVER_ERROR)
                        .header("content-type", "application/x-amz-json-1.1")
                        .body(s3s::Body::from(
                            serde_json::json!({"__type": "InternalFailure", "message": format!("the emulator {message}")})
                                .to_string(),
                        ))
                        .expect("static response parts are valid")
                }
            }
        }
    };
    let id = HeaderValue::from_str(&request_id).expect("hex is a valid header value");
    resp.headers_mut().insert("x-amzn-requestid", id.clone());
    resp.headers_mut().entry("x-amz-request-id").or_insert(id);
    if svc.speed != 1.0
        && let Ok(v) = HeaderValue::from_str(&svc.speed.to_string())
    {
        resp.headers_mut().insert(firehose_kit_domain::contract::SPEED_HEADER, v);
    }
    if svc.retry_horizon != firehose_kit_domain::failures::RETRY_HORIZON
        && let Ok(v) = HeaderValue::from_str(&svc.retry_horizon.as_secs_f64().to_string())
    {
        resp.headers_mut().insert(firehose_kit_domain::contract::RETRY_HORIZON_HEADER, v);
    }
    if let Some(v) = svc.firehose.storage_error().and_then(|e| HeaderValue::from_str(&e).ok()) {
        resp.headers_mut().insert(firehose_kit_domain::contract::STORAGE_ERROR_HEADER, v);
    }
    tracing::info!(target: "firehose_kit::local::request", "{label} → {} in {:.1} ms", resp.status().as_u16(), started.elapsed().as_secs_f64() * 1e3);
    Ok(resp)
}

/// Serves until `shutdown` fires, then flushes every Firehose buffer and closes connections.
pub async fn serve(listener: TcpListener, svc: Arc<Services>, mut shutdown: oneshot::Receiver<()>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let (firehose, lambda) = (svc.firehose.clone(), svc.lambda.clone());
    let ticker = tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            // Sealing buffers and removing idle partitions' directories is file I/O: off the runtime's workers.
            let (fh, lambda) = (firehose.clone(), lambda.clone());
            let tick = move || {
                fh.tick(false);
                lambda.retire_idle();
            };
            if let Err(e) = tokio::task::spawn_blocking(tick).await
                && e.is_panic()
            {
                tracing::warn!("the buffers' tick {}", crate::firehose::engine::panic_message(&*e.into_panic()));
            }
        }
    });
    // Reading Kinesis sources is file I/O: off the runtime's threads, one pass at a time, on a ticker of its own
    // so a long pass never delays the buffers' interval checks.
    let (fh, ks) = (svc.firehose.clone(), svc.kinesis.clone());
    let reader = tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if !ks.has_streams() {
                continue;
            }
            let (fh, ks) = (fh.clone(), ks.clone());
            if let Err(e) = tokio::task::spawn_blocking(move || {
                ks.sweep();
                fh.read_sources();
            })
            .await
                && e.is_panic()
            {
                tracing::warn!("reading Kinesis sources {}", crate::firehose::engine::panic_message(&*e.into_panic()));
            }
        }
    });
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let svc = svc.clone();
                let service = hyper::service::service_fn(move |req| dispatch(svc.clone(), peer, req));
                // HTTP/1.1, or HTTP/2 with prior knowledge (the JavaScript SDK's Kinesis client), told apart by
                // the connection's preface.
                let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!("connection ended: {e}");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    ticker.abort();
    reader.abort();
    if !svc.firehose.flush_all(Duration::from_secs(10)).await {
        tracing::warn!(
            "some buffered records could not be delivered before shutdown; they stay in the journal and are delivered at the next start"
        );
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The services the router serves, named as the docs name them; the match is exhaustive, so a new route
    /// must be named here, and then in the docs.
    fn service(route: &Route) -> &'static str {
        match route {
            Route::S3 => "S3",
            Route::Firehose(_) => "Firehose",
            Route::Kinesis(_) => "Kinesis Data Streams",
            Route::Glue(_) => "Glue",
            Route::Logs(_) => "CloudWatch Logs",
            Route::Lambda | Route::LambdaCode => "Lambda",
            Route::Iam => "IAM",
            Route::Sts => "STS",
        }
    }

    /// docs/architecture.md's row for this crate and the README's `local` line name every service the router
    /// serves.
    #[test]
    fn the_docs_name_every_service_the_router_serves() {
        let routes = [
            Route::S3,
            Route::Firehose(String::new()),
            Route::Kinesis(String::new()),
            Route::Glue(String::new()),
            Route::Logs(String::new()),
            Route::Lambda,
            Route::LambdaCode,
            Route::Iam,
            Route::Sts,
        ];
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let architecture = std::fs::read_to_string(format!("{root}/docs/architecture.md")).unwrap();
        let row = architecture.lines().find(|l| l.starts_with("| `firehose-kit-emulator`")).expect("the crate's row");
        let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
        let local = readme.lines().find(|l| l.starts_with("- `local` is an emulator of")).expect("the local line");
        for name in routes.iter().map(service) {
            assert!(row.contains(name), "docs/architecture.md's emulator row does not name {name}: {row}");
            assert!(local.contains(name), "README.md's `local` line does not name {name}: {local}");
        }
    }

    #[test]
    fn only_this_hosts_addresses_are_loopback() {
        for ip in ["127.0.0.1", "127.8.9.1", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.0.1", "0.0.0.0", "::", "::ffff:10.0.0.1", "192.168.1.20", "fe80::1"] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }

    fn req(headers: &[(&str, &str)], method: &str, uri: &str) -> Request<()> {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    fn auth(service: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-2/{service}/aws4_request, SignedHeaders=host, Signature=x"
        )
    }

    #[test]
    fn routes_by_target_then_scope_then_form() {
        let fh = req(
            &[("x-amz-target", "Firehose_20150804.PutRecordBatch"), ("authorization", &auth("firehose"))],
            "POST",
            "/",
        );
        assert_eq!(classify(&fh), (Route::Firehose("PutRecordBatch".into()), "us-east-2".into()));
        let logs =
            req(&[("x-amz-target", "Logs_20140328.PutLogEvents"), ("authorization", &auth("logs"))], "POST", "/");
        assert_eq!(classify(&logs).0, Route::Logs("PutLogEvents".into()));
        let kinesis =
            req(&[("x-amz-target", "Kinesis_20131202.PutRecords"), ("authorization", &auth("kinesis"))], "POST", "/");
        assert_eq!(classify(&kinesis).0, Route::Kinesis("PutRecords".into()));
        let glue = req(&[("x-amz-target", "AWSGlue.GetTable"), ("authorization", &auth("glue"))], "POST", "/");
        assert_eq!(classify(&glue).0, Route::Glue("GetTable".into()));
        assert_eq!(classify(&req(&[("authorization", &auth("iam"))], "POST", "/")).0, Route::Iam);
        assert_eq!(classify(&req(&[("authorization", &auth("sts"))], "POST", "/")).0, Route::Sts);
        assert_eq!(classify(&req(&[("authorization", &auth("s3"))], "PUT", "/bucket")).0, Route::S3);
        let form = req(&[("content-type", "application/x-www-form-urlencoded")], "POST", "/");
        assert_eq!(classify(&form).0, Route::Iam);
        assert_eq!(classify(&req(&[], "GET", "/bucket/key")).0, Route::S3);
        let presigned = "/b/k?X-Amz-Credential=test%2F20261125%2Fus-east-2%2Fs3%2Faws4_request";
        assert_eq!(classify(&req(&[], "GET", presigned)).0, Route::S3);
    }

    #[test]
    fn form_action_picks_sts() {
        assert_eq!(body_action(b"Action=GetCallerIdentity&Version=2011-06-15").as_deref(), Some("GetCallerIdentity"));
        assert_eq!(body_action(b"Version=1"), None);
    }
}
