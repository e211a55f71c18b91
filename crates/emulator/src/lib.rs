//! The embedded emulator of Amazon Data Firehose, Kinesis Data Streams, S3, IAM, STS, CloudWatch Logs, Lambda and
//! the Glue Data Catalog (`firehose-kit local`).
//!
//! It exists to be faithful where moto and LocalStack are not: buffering hints, compression, key layout, API
//! limits and error shapes, CREATING/DELETING transitions, IAM propagation, throttling quotas, injected faults,
//! durability of acknowledged records across a kill, and Lambda processors that run the function's real code.
//! See `docs/emulator.md` for the fidelity table.
//!
//! Start it in-process with [`Emulator::builder`]; it runs on its own Tokio runtime (in a background thread), so
//! callers on any runtime, including a current-thread test runtime, cannot starve it. Every option of
//! `firehose-kit local` is a builder method (or a field of [`EmulatorConfig`]). The crate depends on the domain
//! crate (`firehose-kit-domain`, Firehose's rules) and knows nothing of the command line.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! let emulator = firehose_kit_emulator::Emulator::builder()
//!     .addr("127.0.0.1:0") // any free port
//!     .create_delay(Duration::ZERO) // streams are ACTIVE at once (AWS: about a minute)
//!     .speed(60.0) // buffering intervals run 60× faster: 60 s becomes 1 s
//!     .start()
//!     .await?;
//! // Point any AWS SDK here, signing with any access key id and the emulator's secret.
//! assert!(emulator.endpoint().starts_with("http://127.0.0.1:"));
//! assert_eq!((emulator.access_key_id(), emulator.secret()), ("test", "test"));
//! emulator.shutdown().await; // delivers what is buffered, then stops
//! # Ok(())
//! # }
//! ```
//!
//! `examples/producer.rs` is a complete test of a producer written with aws-sdk-firehose: it creates the bucket,
//! role and stream, sends, and reads the delivered object back.

mod data_dir;
pub(crate) mod faults;
pub mod firehose;
pub mod glue;
pub mod iam;
pub mod json;
pub mod kinesis;
pub mod lambda;
pub mod lifecycle;
pub mod logs;
pub mod query;
pub mod s3;
pub mod server;
pub mod sigv4;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use firehose_kit_domain::util::persist::Durability;

pub use self::firehose::quota::{Quota, QuotaSpec};

pub use firehose_kit_domain::contract::{DEFAULT_ACCOUNT_ID, DEFAULT_ADDR, DEFAULT_SECRET, TEST_ACCESS_KEY};

/// Locks a mutex whatever a panicking holder left: every critical section of the emulator leaves its state whole
/// (a panic is caught and its work repeated), so one panic never turns every later call into another.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// [`lock`] for the read side of a read-write lock.
pub(crate) fn read<T>(l: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// [`lock`] for the write side of a read-write lock.
pub(crate) fn write<T>(l: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Everything that can go wrong starting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to listen on {0}: it is not a loopback address (pass --allow-remote to expose the emulator)")]
    NotLoopback(SocketAddr),
    /// Exposed beyond loopback with the public default secret: anyone who reaches the port could sign requests.
    #[error(
        "refusing to expose the emulator on {0} with the default secret `test`: anyone who can reach the port could sign requests, read every bucket, and create and run Lambda functions as this user on this host; pass --secret with one of your own (or set FIREHOSE_KIT_LOCAL_SECRET), and --no-functions to refuse function code"
    )]
    DefaultSecretExposed(SocketAddr),
    #[error("`{0}` is not a HOST:PORT address")]
    BadAddr(String),
    #[error("cannot open the data dir `{}`", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the emulator runtime")]
    Runtime(#[source] std::io::Error),
    /// The data dir was written by a newer emulator, in a format this one cannot read.
    #[error(
        "the data dir `{}` was written by a newer firehose-kit (data format {found}; this one reads formats 1 to {}): run that version, or give this one another --data-dir",
        dir.display(),
        DATA_FORMAT
    )]
    NewerFormat { dir: PathBuf, found: u32 },
    /// Another emulator holds the data dir (two would deliver the same journals twice).
    #[error("the data dir `{}` is in use by another emulator ({holder})", dir.display())]
    InUse { dir: PathBuf, holder: String },
}

/// Emulator settings; see the `local` command for their meaning.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub addr: String,
    pub allow_remote: bool,
    /// `None`: a temporary directory removed at shutdown.
    pub data_dir: Option<PathBuf>,
    pub create_delay: Duration,
    pub delete_delay: Duration,
    pub iam_propagation_delay: Duration,
    pub quota: Option<Quota>,
    pub fail_rate: f64,
    pub seed: Option<u64>,
    pub account_id: String,
    pub secret: String,
    /// Bytes of buffered records kept in memory across all streams; beyond it buffers stay on disk only.
    pub memory_limit: usize,
    /// A base domain for virtual-hosted S3 beside `localhost` (`<bucket>.<hostname>`).
    pub hostname: Option<String>,
    /// `--fail-delivery CODE[:P]`: delivery attempts to S3 fail with CODE (with probability P).
    pub fail_delivery: Option<firehose::gate::FailDelivery>,
    /// `--delivery-retry-horizon`: how long undeliverable data is retried before it is dropped.
    pub delivery_retry_horizon: Duration,
    /// `--partition-limit`: active partitions per partitioned stream (AWS: 500).
    pub partition_limit: usize,
    /// `--speed`: buffering intervals, retry backoff and lifecycle delays run this many times faster.
    pub speed: f64,
    /// `--fsync`: every acknowledged record, and every delivery's progress, is synced to disk before it counts,
    /// so it survives a machine crash too (by default, a killed process).
    pub fsync: bool,
    /// Whether Lambda functions may be created and run (`local --no-functions` turns it off): a function runs its
    /// code as this process's user on this host.
    pub functions: bool,
}

pub use data_dir::DATA_FORMAT;
use data_dir::{DataDirLock, check_format, write_format};

/// The default `--memory-limit`: 256 MiB of buffered record bytes in memory.
pub const DEFAULT_MEMORY_LIMIT: usize = 256 * 1024 * 1024;

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            addr: DEFAULT_ADDR.into(),
            allow_remote: false,
            data_dir: None,
            create_delay: Duration::from_secs(1),
            delete_delay: Duration::from_secs(1),
            iam_propagation_delay: Duration::ZERO,
            quota: None,
            fail_rate: 0.0,
            seed: None,
            account_id: DEFAULT_ACCOUNT_ID.into(),
            functions: true,
            secret: DEFAULT_SECRET.into(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            hostname: None,
            fail_delivery: None,
            delivery_retry_horizon: firehose_kit_domain::failures::RETRY_HORIZON,
            partition_limit: firehose_kit_domain::partitioning::DEFAULT_PARTITION_LIMIT,
            speed: 1.0,
            fsync: false,
        }
    }
}

/// Entry point: `Emulator::builder().addr("127.0.0.1:0").start().await`.
pub struct Emulator;

impl Emulator {
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder { config: EmulatorConfig::default() }
    }
}

/// Builds and starts an emulator.
pub struct EmulatorBuilder {
    config: EmulatorConfig,
}

impl EmulatorBuilder {
    pub fn config(mut self, config: EmulatorConfig) -> Self {
        self.config = config;
        self
    }

    /// `HOST:PORT` to listen on; `127.0.0.1:0` picks a free port (read it back from [`EmulatorHandle::endpoint`]).
    pub fn addr(mut self, addr: impl Into<String>) -> Self {
        self.config.addr = addr.into();
        self
    }

    /// Allows a non-loopback `addr` (`--allow-remote`): the emulator has no real authentication.
    /// Whether Lambda functions may be created and run (on by default).
    pub fn functions(mut self, on: bool) -> Self {
        self.config.functions = on;
        self
    }

    pub fn allow_remote(mut self, allow: bool) -> Self {
        self.config.allow_remote = allow;
        self
    }

    /// A base domain for virtual-hosted-style S3 beside `localhost` (`--hostname`).
    pub fn hostname(mut self, hostname: Option<String>) -> Self {
        self.config.hostname = hostname;
        self
    }

    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.data_dir = Some(dir.into());
        self
    }

    pub fn create_delay(mut self, d: Duration) -> Self {
        self.config.create_delay = d;
        self
    }

    pub fn delete_delay(mut self, d: Duration) -> Self {
        self.config.delete_delay = d;
        self
    }

    pub fn iam_propagation_delay(mut self, d: Duration) -> Self {
        self.config.iam_propagation_delay = d;
        self
    }

    pub fn quota(mut self, q: Option<Quota>) -> Self {
        self.config.quota = q;
        self
    }

    pub fn fail_rate(mut self, p: f64, seed: Option<u64>) -> Self {
        self.config.fail_rate = p;
        self.config.seed = seed;
        self
    }

    pub fn account_id(mut self, id: impl Into<String>) -> Self {
        self.config.account_id = id.into();
        self
    }

    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.config.secret = secret.into();
        self
    }

    pub fn fail_delivery(mut self, fail: Option<firehose::gate::FailDelivery>) -> Self {
        self.config.fail_delivery = fail;
        self
    }

    pub fn delivery_retry_horizon(mut self, horizon: Duration) -> Self {
        self.config.delivery_retry_horizon = horizon;
        self
    }

    pub fn partition_limit(mut self, n: usize) -> Self {
        self.config.partition_limit = n;
        self
    }

    /// Buffering intervals, retry backoff and lifecycle delays run `n` times faster (1 = AWS timing).
    pub fn speed(mut self, n: f64) -> Self {
        self.config.speed = n;
        self
    }

    /// Acknowledged records survive a machine crash, not only a killed process (see [`EmulatorConfig::fsync`]).
    pub fn fsync(mut self, on: bool) -> Self {
        self.config.fsync = on;
        self
    }

    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.config.memory_limit = bytes;
        self
    }

    /// Binds the listener, loads the data dir and starts serving on a dedicated runtime.
    pub async fn start(self) -> Result<EmulatorHandle, StartError> {
        let config = self.config;
        let addr: SocketAddr = config.addr.parse().map_err(|_| StartError::BadAddr(config.addr.clone()))?;
        if !server::is_loopback(addr.ip()) && !config.allow_remote {
            return Err(StartError::NotLoopback(addr));
        }
        if !server::is_loopback(addr.ip()) && config.secret == DEFAULT_SECRET {
            return Err(StartError::DefaultSecretExposed(addr));
        }
        let (temp, data_dir) = match &config.data_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("firehose-kit-local-")
                    .tempdir()
                    .map_err(|source| StartError::DataDir { path: std::env::temp_dir(), source })?;
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        let (ready_tx, ready_rx) = oneshot::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let thread_config = config.clone();
        let thread_dir = data_dir.clone();
        // Stacks deep enough for any jq query a stream may run (see JQ_STACK_BYTES).
        let stack = firehose_kit_domain::partitioning::JQ_STACK_BYTES;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_stack_size(stack)
            .thread_name("firehose-kit-local")
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let thread = std::thread::Builder::new()
            .name("firehose-kit-local".into())
            .stack_size(stack)
            .spawn(move || {
                runtime.block_on(async move {
                    match open(&thread_config, &thread_dir, addr).await {
                        Ok((listener, services, lock)) => {
                            let local = listener.local_addr().expect("bound listener has an address");
                            lock.announce(&format!("pid {}, http://{local}", std::process::id()));
                            let _ = ready_tx.send(Ok((local, services.firehose.clone())));
                            server::serve(listener, services, shutdown_rx).await;
                            drop(lock);
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(StartError::Runtime)?;
        let (local, firehose) =
            ready_rx.await.map_err(|_| StartError::Runtime(std::io::Error::other("emulator thread exited")))??;
        Ok(EmulatorHandle {
            firehose,
            addr: local,
            endpoint: format!("http://{local}"),
            data_dir,
            account_id: config.account_id,
            secret: config.secret,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
            _temp: temp,
        })
    }
}

async fn open(
    config: &EmulatorConfig,
    data_dir: &Path,
    addr: SocketAddr,
) -> Result<(tokio::net::TcpListener, Arc<server::Services>, DataDirLock), StartError> {
    let dir_err = |source| StartError::DataDir { path: data_dir.to_path_buf(), source };
    std::fs::create_dir_all(data_dir).map_err(dir_err)?;
    let lock = DataDirLock::take(data_dir)?;
    check_format(data_dir)?;
    // Bound first (Lambda functions are told the endpoint: their SDK calls come back here), but listening only
    // once every journal is recovered: until then a client that waits for the port finds it refused, not hung.
    let bind_err = |source| StartError::Bind { addr: addr.to_string(), source };
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }
        .map_err(bind_err)?;
    socket.set_reuseaddr(true).map_err(bind_err)?;
    socket.bind(addr).map_err(bind_err)?;
    let endpoint = format!("http://{}", socket.local_addr().map_err(dir_err)?);
    let durability = if config.fsync { Durability::Machine } else { Durability::Process };
    let store = Arc::new(
        s3::Store::open(&data_dir.join("s3"))
            .map_err(|e| dir_err(std::io::Error::other(e)))?
            .with_durability(durability),
    );
    let iam = Arc::new(
        iam::Iam::open(data_dir.join("iam"), config.account_id.clone(), config.iam_propagation_delay)
            .map_err(dir_err)?,
    );
    let logs = Arc::new(logs::Logs::open(data_dir.join("logs"), config.account_id.clone()).map_err(dir_err)?);
    let speed = if config.speed.is_finite() && config.speed > 0.0 { config.speed } else { 1.0 };
    let lambda_config = lambda::LambdaConfig {
        account_id: config.account_id.clone(),
        secret: config.secret.clone(),
        endpoint,
        functions: config.functions,
    };
    let lambda = Arc::new(
        lambda::Lambda::open(&data_dir.join("lambda"), lambda_config, iam.clone(), logs.clone(), store.clone())
            .map_err(dir_err)?,
    );
    let fh_config = firehose::FirehoseConfig {
        dir: data_dir.join("firehose"),
        account_id: config.account_id.clone(),
        create_delay: config.create_delay.div_f64(speed),
        delete_delay: config.delete_delay.div_f64(speed),
        quota: config.quota,
        fail_rate: config.fail_rate,
        seed: config.seed,
        memory_limit: config.memory_limit,
        fail_delivery: config.fail_delivery,
        retry_horizon: config.delivery_retry_horizon,
        partition_limit: config.partition_limit,
        speed,
        durability,
    };
    let kinesis = Arc::new(
        kinesis::Kinesis::open(kinesis::KinesisConfig {
            dir: data_dir.join("kinesis"),
            account_id: config.account_id.clone(),
            create_delay: config.create_delay.div_f64(speed),
            delete_delay: config.delete_delay.div_f64(speed),
            quota: config.quota.is_some(),
            durability,
        })
        .map_err(dir_err)?,
    );
    let glue =
        Arc::new(glue::Glue::open(data_dir.join("glue"), config.account_id.clone(), durability).map_err(dir_err)?);
    let firehose = Arc::new(
        firehose::Firehose::open(
            fh_config,
            store.clone(),
            iam.clone(),
            logs.clone(),
            lambda.clone(),
            kinesis.clone(),
            glue.clone(),
        )
        .map_err(dir_err)?,
    );
    let mut builder = s3s::service::S3ServiceBuilder::new(s3::S3Api::new(store, config.account_id.clone()));
    builder.set_auth(s3::FixedSecret(config.secret.clone()));
    builder.set_host(s3::host::EmulatorHost::new(config.hostname.clone()));
    let services = Arc::new(server::Services {
        s3: builder.build(),
        firehose,
        kinesis,
        glue,
        iam,
        logs,
        lambda,
        secret: config.secret.clone(),
        speed,
        retry_horizon: config.delivery_retry_horizon,
    });
    write_format(data_dir, durability).map_err(dir_err)?;
    let listener = socket.listen(1024).map_err(bind_err)?;
    Ok((listener, services, lock))
}

/// A running emulator. Dropping it stops the server without waiting; call [`EmulatorHandle::shutdown`] to flush
/// every buffer first.
pub struct EmulatorHandle {
    firehose: Arc<firehose::Firehose>,
    addr: SocketAddr,
    endpoint: String,
    data_dir: PathBuf,
    account_id: String,
    secret: String,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _temp: Option<tempfile::TempDir>,
}

impl EmulatorHandle {
    /// Delivery attempts to S3 that failed so far (a missing bucket, a storage error), across all streams; each
    /// failed object is kept and retried.
    pub fn delivery_failures(&self) -> u64 {
        self.firehose.delivery_failures()
    }

    /// The emulator's own storage errors so far (a full disk): journal appends refused, object writes failed.
    pub fn storage_errors(&self) -> u64 {
        self.firehose.storage_errors()
    }

    /// Records dropped after the delivery retry horizon, across all streams.
    pub fn dropped_records(&self) -> u64 {
        self.firehose.dropped_records()
    }

    /// Delivery error events written to CloudWatch Logs, across all streams.
    pub fn logged_errors(&self) -> u64 {
        self.firehose.logged_errors()
    }

    /// `http://127.0.0.1:<port>`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Credentials a client may sign with: any access key id is accepted with [`EmulatorHandle::secret`]; this
    /// one is `test`.
    pub fn access_key_id(&self) -> &str {
        TEST_ACCESS_KEY
    }

    /// Keeps the data dir after shutdown even when it is a temporary one; returns its path.
    pub fn keep_data_dir(&mut self) -> PathBuf {
        if let Some(temp) = self._temp.take() {
            return temp.keep();
        }
        self.data_dir.clone()
    }

    /// Flushes every Firehose buffer to S3, closes connections and stops the server.
    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
