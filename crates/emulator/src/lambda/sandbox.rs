//! Running function code without Docker: one local process per sandbox, fed by its own Lambda Runtime API.
//!
//! A sandbox is the function's process (`python3` or `node` running the runtime loop shipped with the emulator,
//! or the zip's `bootstrap` for the OS-only runtimes) and a small HTTP server on `127.0.0.1:0` that serves it
//! the Runtime API (`/2018-06-01/runtime/invocation/next`, `.../response`, `.../error`, `/runtime/init/error`)
//! as `AWS_LAMBDA_RUNTIME_API`. A sandbox runs one invocation at a time; the caller owns it while it does, and
//! returns it to the warm pool when it is still usable. A timeout kills the process and answers as Lambda does
//! (`Sandbox.Timedout`); a process that exits answers `Runtime.ExitError`; an init error answers with the
//! runtime's error document. The memory setting becomes the process's data limit (`ulimit -d`; Node's heap
//! limit for Node). What the process prints goes to the function's log stream.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Notify, mpsc, oneshot};

use super::model::{MAX_PAYLOAD, RuntimeKind};

/// Where a sandbox's output lines go (the function's CloudWatch Logs stream).
pub type LogSink = Arc<dyn Fn(String) + Send + Sync>;

/// What a sandbox runs.
#[derive(Clone)]
pub struct Spec {
    pub kind: RuntimeKind,
    pub code_dir: PathBuf,
    /// The runtime loop for Python and Node.js.
    pub runtime_script: Option<PathBuf>,
    pub memory_mb: u64,
    pub function_arn: String,
    /// The whole environment of the process (the function's variables and Lambda's).
    pub env: BTreeMap<String, String>,
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function's result.
    Ok(Bytes),
    /// The function failed (`X-Amz-Function-Error: Unhandled`): the error document and its type.
    Error { body: Bytes, kind: String },
}

impl Outcome {
    fn error(kind: &str, message: String) -> Outcome {
        let body = serde_json::json!({"errorType": kind, "errorMessage": message});
        Outcome::Error { body: Bytes::from(body.to_string()), kind: kind.to_string() }
    }
}

struct Invocation {
    id: String,
    payload: Bytes,
    deadline_ms: i64,
}

/// The state the Runtime API server and the sandbox share.
struct Api {
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    replies: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<Outcome>>,
    init_failed: Notify,
    function_arn: String,
}

/// A function's process and its Runtime API.
pub struct Sandbox {
    pub id: String,
    child: Child,
    tx: mpsc::Sender<Invocation>,
    api: Arc<Api>,
    server: tokio::task::JoinHandle<()>,
    log: LogSink,
    memory_mb: u64,
    /// The guard's pipe (see [`guarded`]), held apart from `child`: `Child::wait` closes the stdin it holds.
    _guard: Option<tokio::process::ChildStdin>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.server.abort();
        kill_group(&mut self.child);
    }
}

/// Kills the function's process and every process it started (they share its process group, which the sandbox
/// gave it), as Lambda stops a whole execution environment.
fn kill_group(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|id| rustix::process::Pid::from_raw(id as i32)) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.start_kill();
}

/// Starts `program` under `sh` with the function's data-segment limit (`memory_kb`, when given) and an orphan
/// guard. `ulimit -d` bounds the data segment (heap and private mappings) like Lambda's memory setting. The guard
/// is a small `sh` that reads the emulator's end of a pipe: if the emulator dies (even by SIGKILL) the pipe
/// closes and the guard kills the function's process, unless that process has already gone (the guard is then
/// no longer its child, so a reused pid is never hit). The function itself gets `/dev/null` as stdin.
fn guarded(memory_kb: Option<u64>, program: &str, args: &[String]) -> Command {
    const SCRIPT: &str = concat!(
        r#"if [ -n "$1" ]; then ulimit -d "$1" || exit 1; fi; shift; exec 3<&0 </dev/null; "#,
        r#"sh -c 'cat >/dev/null; [ "$(cut -d" " -f4 /proc/$$/stat 2>/dev/null)" = "$1" ] && kill -9 "$1"' "#,
        r#"guard $$ <&3 >/dev/null 2>&1 & exec "$@" 3<&-"#,
    );
    let mut c = Command::new("sh");
    c.arg("-c").arg(SCRIPT).arg("sh").arg(memory_kb.map(|kb| kb.to_string()).unwrap_or_default()).arg(program);
    c.args(args);
    c
}

/// The command that starts `spec`'s process.
fn command(spec: &Spec) -> Result<Command, Outcome> {
    let data_kb = Some(spec.memory_mb * 1024);
    let script = || spec.runtime_script.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    Ok(match spec.kind {
        RuntimeKind::Python => guarded(data_kb, "python3", &["-u".into(), script()]),
        // V8 reserves more address space than a data-segment limit allows: its own heap limit instead.
        RuntimeKind::Node => {
            guarded(None, "node", &[format!("--max-old-space-size={}", (spec.memory_mb * 9 / 10).max(16)), script()])
        }
        RuntimeKind::Provided => {
            let bootstrap = spec.code_dir.join("bootstrap");
            let executable = std::fs::metadata(&bootstrap).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            });
            if !executable {
                return Err(Outcome::error(
                    "Runtime.InvalidEntrypoint",
                    "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]".into(),
                ));
            }
            guarded(data_kb, &bootstrap.display().to_string(), &[])
        }
    })
}

impl Sandbox {
    /// Starts the Runtime API and the process (its initialization runs until it asks for the first event).
    pub async fn start(spec: &Spec, log: LogSink) -> Result<Sandbox, Outcome> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (tx, rx) = mpsc::channel(1);
        let api = Arc::new(Api {
            queue: tokio::sync::Mutex::new(rx),
            replies: Mutex::default(),
            init_error: Mutex::default(),
            init_failed: Notify::new(),
            function_arn: spec.function_arn.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Outcome::error("Runtime.Unknown", format!("cannot start the Runtime API: {e}")))?;
        let addr = listener.local_addr().expect("bound listener has an address");
        let server = tokio::spawn(serve(listener, api.clone()));
        let mut cmd = command(spec)?;
        cmd.current_dir(&spec.code_dir)
            .env_clear()
            .envs(&spec.env)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            // The guard's pipe (see `guarded`): kept open, never written, until the sandbox is dropped.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a timeout or a drop stops what the function started, too.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            server.abort();
            Outcome::error("Runtime.Unknown", format!("cannot start the function's process: {e}"))
        })?;
        for pipe in [child.stdout.take().map(either_out), child.stderr.take().map(either_err)].into_iter().flatten() {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    log(line);
                }
            });
        }
        let _guard = child.stdin.take();
        Ok(Sandbox { id, child, tx, api, server, log, memory_mb: spec.memory_mb, _guard })
    }

    /// Runs one invocation. The second value says whether the sandbox may serve another.
    pub async fn invoke(&mut self, payload: Bytes, timeout: Duration) -> (Outcome, bool) {
        let id = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        (self.log)(format!("START RequestId: {id} Version: $LATEST"));
        let deadline_ms = chrono::Utc::now().timestamp_millis() + timeout.as_millis() as i64;
        let (reply_tx, reply_rx) = oneshot::channel();
        crate::lock(&self.api.replies).insert(id.clone(), reply_tx);
        if self.tx.send(Invocation { id: id.clone(), payload, deadline_ms }).await.is_err() {
            return (Outcome::error("Runtime.Unknown", "the sandbox stopped".into()), false);
        }
        let (outcome, reusable) = tokio::select! {
            reply = reply_rx => match reply {
                Ok(outcome) => (outcome, true),
                Err(_) => (Outcome::error("Runtime.Unknown", "the sandbox stopped".into()), false),
            },
            _ = self.api.init_failed.notified() => {
                let init = crate::lock(&self.api.init_error).take();
                (init.unwrap_or_else(|| Outcome::error("Runtime.Unknown", "init failed".into())), false)
            }
            status = self.child.wait() => {
                let init = crate::lock(&self.api.init_error).take();
                let code = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                let exited = || Outcome::error(
                    "Runtime.ExitError",
                    format!("RequestId: {id} Error: Runtime exited with error: {code}"),
                );
                (init.unwrap_or_else(exited), false)
            }
            _ = tokio::time::sleep(timeout) => {
                kill_group(&mut self.child);
                let message = format!("RequestId: {id} Error: Task timed out after {:.2} seconds", timeout.as_secs_f64());
                (Outcome::error("Sandbox.Timedout", message), false)
            }
        };
        crate::lock(&self.api.replies).remove(&id);
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        (self.log)(format!("END RequestId: {id}"));
        (self.log)(format!(
            "REPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB",
            ms.ceil() as u64,
            self.memory_mb
        ));
        (outcome, reusable)
    }
}

type Pipe = std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>;

fn either_out(p: tokio::process::ChildStdout) -> Pipe {
    Box::pin(p)
}

fn either_err(p: tokio::process::ChildStderr) -> Pipe {
    Box::pin(p)
}

/// Serves the Runtime API until the sandbox is dropped.
async fn serve(listener: tokio::net::TcpListener, api: Arc<Api>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let api = api.clone();
        let service = hyper::service::service_fn(move |req| {
            let api = api.clone();
            async move { Ok::<_, std::convert::Infallible>(route(&api, req).await) }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn answer(status: StatusCode, body: &str) -> Response<http_body_util::Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))
        .expect("static response parts are valid")
}

fn accepted() -> Response<http_body_util::Full<Bytes>> {
    answer(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
}

async fn route(api: &Api, req: Request<Incoming>) -> Response<http_body_util::Full<Bytes>> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let error_type =
        req.headers().get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return answer(StatusCode::NOT_FOUND, r#"{"errorType":"InvalidRequest","errorMessage":"unknown path"}"#);
    };
    if method == Method::GET && rest == "invocation/next" {
        return next(api).await;
    }
    // Read no further than the largest answer Lambda takes: a larger one is refused while it streams in.
    let body = match read_body(req.into_body()).await {
        Ok(body) => body,
        Err(_) => return answer(StatusCode::BAD_REQUEST, r#"{"errorMessage":"cannot read the body"}"#),
    };
    let Some(body) = body else {
        let outcome = Outcome::error(
            "Function.ResponseSizeTooLarge",
            format!("Response payload size exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes)."),
        );
        return match rest.split('/').collect::<Vec<_>>().as_slice() {
            ["invocation", id, "response" | "error"] => reply(api, id, outcome),
            _ => answer(StatusCode::PAYLOAD_TOO_LARGE, r#"{"errorMessage":"the body is too large"}"#),
        };
    };
    if method == Method::POST && rest == "init/error" {
        let kind = error_type.unwrap_or_else(|| kind_of(&body));
        *crate::lock(&api.init_error) = Some(Outcome::Error { body, kind });
        api.init_failed.notify_waiters();
        return accepted();
    }
    let parts: Vec<&str> = rest.split('/').collect();
    match (method, parts.as_slice()) {
        (Method::POST, ["invocation", id, "response"]) => reply(api, id, Outcome::Ok(body)),
        (Method::POST, ["invocation", id, "error"]) => {
            let kind = kind_of(&body);
            let _ = error_type;
            reply(api, id, Outcome::Error { body, kind })
        }
        _ => answer(StatusCode::NOT_FOUND, r#"{"errorType":"InvalidRequest","errorMessage":"unknown path"}"#),
    }
}

/// A request's body into one buffer sized from its `Content-Length` (no copy to join its chunks); `None` once
/// it passes [`MAX_PAYLOAD`], without reading the rest.
async fn read_body(mut body: Incoming) -> Result<Option<Bytes>, hyper::Error> {
    use hyper::body::Body as _;
    let hint = body.size_hint().exact().or(Some(body.size_hint().lower())).unwrap_or(0) as usize;
    if hint > MAX_PAYLOAD {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(hint);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if out.len() + data.len() > MAX_PAYLOAD {
                return Ok(None);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Some(Bytes::from(out)))
}

/// The `errorType` of an error document (`Unhandled` when it has none).
fn kind_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["errorType"].as_str().map(str::to_string))
        .unwrap_or_else(|| "Unhandled".into())
}

fn reply(api: &Api, id: &str, outcome: Outcome) -> Response<http_body_util::Full<Bytes>> {
    match crate::lock(&api.replies).remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            accepted()
        }
        None => {
            answer(StatusCode::BAD_REQUEST, r#"{"errorType":"InvalidRequestID","errorMessage":"Invalid request ID"}"#)
        }
    }
}

/// The next event, once there is one (the runtime long-polls).
async fn next(api: &Api) -> Response<http_body_util::Full<Bytes>> {
    let Some(inv) = api.queue.lock().await.recv().await else {
        return answer(StatusCode::GONE, r#"{"errorMessage":"the sandbox is stopping"}"#);
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("Lambda-Runtime-Aws-Request-Id", &inv.id)
        .header("Lambda-Runtime-Deadline-Ms", inv.deadline_ms.to_string())
        .header("Lambda-Runtime-Invoked-Function-Arn", &api.function_arn)
        .header(
            "Lambda-Runtime-Trace-Id",
            format!("Root=1-{:08x}-{}", inv.deadline_ms / 1000, &inv.id[..24.min(inv.id.len())]),
        )
        .body(http_body_util::Full::new(inv.payload))
        .expect("header values are valid")
}
