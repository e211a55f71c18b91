//! Resolved, validated settings: flags > environment > settings file > defaults (docs/architecture.md).
//!
//! The settings file is `firehose-kit.toml` (every key in `templates/firehose-kit.toml`), or the original demo's
//! `config.json` (`stream_name`, `region_name`). A settings file never carries secrets: access keys in it stop
//! the command with exit 2. Everything here is checked before any AWS call, so bad settings change nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{self, Compression, GlobalArgs, OutputFormat, SendFormat};
use crate::error::{Error, Result};

pub const DEFAULT_STREAM: &str = "ApacheLogs";
/// The region of the original demo, used when neither flags, environment, settings nor profile give one.
pub const DEFAULT_REGION: &str = "us-east-2";
pub const DEFAULT_STATE_DIR: &str = ".firehose-kit";
pub const DEFAULT_SETTINGS_FILE: &str = "firehose-kit.toml";
/// `--local`: the embedded emulator's default endpoint.
pub use crate::firehose::contract::DEFAULT_ENDPOINT as LOCAL_ENDPOINT;
use crate::firehose::limits::MAX_RECORD_BYTES;

/// The settings file, as written (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub stream: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub output: Option<OutputFormat>,
    #[serde(default)]
    pub setup: SetupFile,
    #[serde(default)]
    pub send: SendFile,
    #[serde(default)]
    pub verify: VerifyFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupFile {
    pub bucket: Option<String>,
    pub buffer_size: Option<u32>,
    pub buffer_interval: Option<u32>,
    pub compression: Option<Compression>,
    pub prefix: Option<String>,
    pub error_prefix: Option<String>,
    pub timeout: Option<u64>,
    pub iam_retry_timeout: Option<u64>,
    pub error_logging: Option<bool>,
    pub log_retention: Option<i32>,
    pub partition_by: Option<Vec<String>>,
    pub transform: Option<String>,
    pub source: Option<cli::SourceKind>,
    pub shards: Option<u32>,
    pub on_demand: Option<bool>,
    pub source_stream: Option<String>,
    pub format: Option<cli::RecordFormat>,
    pub glue_database: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendFile {
    pub format: Option<SendFormat>,
    pub one_line_per_record: Option<bool>,
    pub record_size: Option<usize>,
    pub concurrency: Option<usize>,
    pub rate: Option<f64>,
    pub linger: Option<f64>,
    pub retry_timeout: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyFile {
    pub wait: Option<u64>,
    pub strict: Option<bool>,
}

/// The original demo's `config.json`.
#[derive(Debug, Deserialize)]
struct DemoConfig {
    stream_name: Option<String>,
    region_name: Option<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// Loads the settings file: `--config FILE` (must exist), else `./firehose-kit.toml` when present.
pub fn load_file(explicit: Option<&Path>) -> Result<(FileSettings, Option<PathBuf>)> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let default = PathBuf::from(DEFAULT_SETTINGS_FILE);
            if !default.exists() {
                return Ok((FileSettings::default(), None));
            }
            default
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Input { path: path.clone(), source })?;
    let settings = if path.extension().is_some_and(|e| e == "json") {
        parse_demo_json(&text, &path)?
    } else {
        parse_toml(&text, &path)?
    };
    Ok((settings, Some(path)))
}

fn parse_toml(text: &str, path: &Path) -> Result<FileSettings> {
    toml::from_str(text).map_err(|e| {
        Error::usage(format!("settings file `{}` is not valid: {}", path.display(), e.message().trim()))
            .with_hint("see templates/firehose-kit.toml for every setting and its meaning")
    })
}

fn parse_demo_json(text: &str, path: &Path) -> Result<FileSettings> {
    let demo: DemoConfig = serde_json::from_str(text)
        .map_err(|e| Error::usage(format!("settings file `{}` is not valid JSON: {e}", path.display())))?;
    let secrets: Vec<&String> = demo
        .other
        .keys()
        .filter(|k| {
            let k = k.to_ascii_lowercase();
            k.contains("access_key") || k.contains("secret") || k.contains("session_token")
        })
        .collect();
    if !secrets.is_empty() {
        let names: Vec<String> = secrets.iter().map(|k| format!("`{k}`")).collect();
        return Err(Error::usage(format!(
            "settings file `{}` holds AWS credentials ({}): firehose-kit never reads secrets from its settings",
            path.display(),
            names.join(", ")
        ))
        .with_hint("remove them from the file and use `aws configure`, `AWS_PROFILE`, or the `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` environment variables"));
    }
    Ok(FileSettings { stream: demo.stream_name, region: demo.region_name, ..Default::default() })
}

/// How to reach AWS (or another endpoint).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Connection {
    pub profile: Option<String>,
    /// `None`: the profile's region, else [`DEFAULT_REGION`].
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// Use fixed test credentials (the emulator's): set by `--local` and by `demo`'s embedded emulator.
    pub test_credentials: bool,
}

/// Options shared by every command.
#[derive(Debug, Clone)]
pub struct Global {
    pub connection: Connection,
    pub stream: String,
    pub output: OutputFormat,
    pub quiet: bool,
    pub verbose: u8,
    pub no_progress: bool,
    pub state_dir: PathBuf,
    pub settings_file: Option<PathBuf>,
    /// Global options typed on the command line (see [`Global::command`]).
    pub typed: Vec<&'static str>,
}

impl Global {
    pub fn resolve(args: &GlobalArgs, file: &FileSettings, settings_file: Option<PathBuf>) -> Result<Self> {
        let stream = args
            .stream
            .clone()
            .or_else(|| file.stream.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_STREAM.into());
        validate_stream_name(&stream)?;
        let region = args.region.clone().or_else(|| file.region.clone()).filter(|r| !r.is_empty());
        if let Some(r) = &region {
            validate_region(r)?;
        }
        let (endpoint_url, test_credentials) = if args.local {
            (Some(LOCAL_ENDPOINT.to_string()), true)
        } else {
            (args.endpoint_url.clone().or_else(|| file.endpoint_url.clone()).filter(|e| !e.is_empty()), false)
        };
        if let Some(url) = &endpoint_url {
            validate_endpoint(url)?;
        }
        Ok(Global {
            connection: Connection {
                profile: args.profile.clone().or_else(|| file.profile.clone()).filter(|p| !p.is_empty()),
                region,
                endpoint_url,
                test_credentials,
            },
            stream,
            output: args.output.or(file.output).unwrap_or(OutputFormat::Text),
            quiet: args.quiet,
            verbose: args.verbose,
            no_progress: args.no_progress,
            state_dir: args
                .state_dir
                .clone()
                .or_else(|| file.state_dir.clone())
                .unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
            settings_file,
            typed: args.typed.clone(),
        })
    }
}

impl Global {
    /// A firehose-kit command line that reaches this stream on this backend again: the global options the user
    /// typed (endpoint or `--local`, region, profile), the stream and the state dir, before `args`. What came from
    /// the environment is left out: the hint runs in the same shell. Every hint that tells the user to run
    /// something uses it, so the command runs as printed.
    pub fn command(&self, args: &str) -> String {
        let c = &self.connection;
        let typed = |id: &str| self.typed.contains(&id);
        let mut out = String::from("firehose-kit");
        match c.endpoint_url.as_deref() {
            Some(LOCAL_ENDPOINT) if c.test_credentials => out.push_str(" --local"),
            Some(url) if typed("endpoint_url") => out.push_str(&format!(" --endpoint-url {url}")),
            _ => {}
        }
        if let Some(p) = c.profile.as_ref().filter(|_| typed("profile")) {
            out.push_str(&format!(" --profile {}", shell_word(p)));
        }
        if let Some(r) = c.region.as_ref().filter(|_| typed("region")) {
            out.push_str(&format!(" --region {r}"));
        }
        if self.stream != DEFAULT_STREAM {
            out.push_str(&format!(" --stream {}", self.stream));
        }
        if self.state_dir != Path::new(DEFAULT_STATE_DIR) {
            out.push_str(&format!(" --state-dir {}", shell_word(&self.state_dir.display().to_string())));
        }
        if !args.is_empty() {
            out.push(' ');
            out.push_str(args);
        }
        out
    }
}

/// `word`, quoted for a POSIX shell when it holds anything but safe characters.
pub fn shell_word(word: &str) -> String {
    let safe = !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+".contains(&b));
    if safe { word.to_string() } else { format!("'{}'", word.replace('\'', "'\\''")) }
}

/// Resolved `setup` settings: what the user asked for. A destination setting left out (no flag, nothing in the
/// settings file) is `None`: a new stream gets the default, an existing stream keeps what it has, so re-running
/// setup to repair a role or a bucket never changes a stream's buffering or anything else as a side effect.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SetupSettings {
    /// `None`: the existing stream's bucket, else `firehose-kit-<account>-<region>`.
    pub bucket: Option<String>,
    pub buffer_size_mib: Option<u32>,
    pub buffer_interval_s: Option<u32>,
    pub compression: Option<Compression>,
    /// `Some("")`: no prefix.
    pub prefix: Option<String>,
    pub error_prefix: Option<String>,
    pub dry_run: bool,
    pub no_wait: bool,
    pub timeout: Duration,
    pub iam_retry_timeout: Duration,
    /// Log delivery errors to `/aws/kinesisfirehose/<stream>` / `DestinationDelivery`.
    pub error_logging: Option<bool>,
    /// Retention of the error log group, in days.
    pub log_retention_days: Option<i32>,
    /// Dynamic partitioning by these Apache fields (`Some` of an empty list: none).
    pub partition_by: Option<crate::logs::partition::PartitionBy>,
    /// Re-create the stream when a change cannot be applied in place.
    pub recreate: bool,
    /// Transform records with this handler (deployed by setup) or existing function; `None`: keep what the
    /// stream has.
    pub transform: Option<crate::transform::Source>,
    /// The stream's source; `None`: keep what an existing stream has (Direct Put for a new one).
    pub source: Option<cli::SourceKind>,
    /// A new data stream's shards (`None` with `on_demand`); `None` otherwise: 1.
    pub shards: Option<u32>,
    pub on_demand: bool,
    /// The data stream's name (default: the delivery stream's).
    pub source_stream: Option<String>,
    /// Record format conversion; `None`: keep what an existing stream has (as sent for a new one).
    pub format: Option<cli::RecordFormat>,
    /// The Glue database of a converting stream's table (`None`: the stream's, else `firehose_kit`).
    pub glue_database: Option<String>,
}

/// What setup does not combine with conversion: a transformation (its output is not the JSON the table types)
/// and dynamic partitioning (its error output would sit inside the table's location).
pub fn check_format_combination(transforms: bool, partitioned: bool) -> Result<()> {
    let (what, why) = match (transforms, partitioned) {
        (true, _) => (
            "--transform",
            "the Glue table types the JSON send makes of each line, and a transformation's output is another document: its fields would convert to nulls",
        ),
        (_, true) => (
            "--partition-by",
            "a partitioned stream's error output is under its prefix, inside the table's location, where Athena would read it as Parquet",
        ),
        _ => return Ok(()),
    };
    Err(Error::usage(format!("--format parquet with {what} is not something setup makes: {why}")).with_hint(
        "use one of them per stream, or describe the combination yourself (CloudFormation, Terraform): the emulator converts whatever a stream's configuration says",
    ))
}

/// Setup's defaults for a new stream: the original demo's 1 MiB / 60 s, or AWS's minimums with dynamic
/// partitioning (64 MiB / 60 s).
pub fn default_buffering(partitioned: bool) -> (u32, u32) {
    use crate::firehose::partitioning::{MIN_INTERVAL_S, MIN_SIZE_MIB};
    if partitioned { (MIN_SIZE_MIB as u32, MIN_INTERVAL_S as u32) } else { (1, 60) }
}

/// The default retention of the error log, in days.
pub const DEFAULT_LOG_RETENTION_DAYS: i32 = 14;

impl SetupSettings {
    pub fn resolve(args: &cli::SetupArgs, file: &SetupFile) -> Result<Self> {
        let keys =
            if args.partition_by.is_empty() { file.partition_by.clone() } else { Some(args.partition_by.clone()) };
        let partition_by = keys
            .map(|k| crate::logs::partition::PartitionBy::parse(&k))
            .transpose()
            .map_err(|e| Error::usage(format!("--partition-by: {e}")))?;
        let error_logging = if args.no_error_logging {
            Some(false)
        } else if args.error_logging {
            Some(true)
        } else {
            file.error_logging
        };
        let s = SetupSettings {
            bucket: args.bucket.clone().or_else(|| file.bucket.clone()).filter(|b| !b.is_empty()),
            buffer_size_mib: args.buffer_size.or(file.buffer_size),
            buffer_interval_s: args.buffer_interval.map(|d| d.as_secs() as u32).or(file.buffer_interval),
            compression: args.compression.or(file.compression),
            prefix: args.prefix.clone().or_else(|| file.prefix.clone()),
            error_prefix: args.error_prefix.clone().or_else(|| file.error_prefix.clone()),
            dry_run: args.dry_run,
            no_wait: args.no_wait,
            timeout: duration("timeout", args.timeout, file.timeout, 600)?,
            iam_retry_timeout: duration("iam_retry_timeout", args.iam_retry_timeout, file.iam_retry_timeout, 120)?,
            error_logging,
            log_retention_days: args.log_retention.or(file.log_retention),
            partition_by,
            recreate: args.recreate,
            transform: args
                .transform
                .as_deref()
                .or(file.transform.as_deref())
                .map(crate::transform::Source::parse)
                .transpose()?,
            source: args.source.or(file.source),
            shards: args.shards.or(file.shards),
            on_demand: args.on_demand || file.on_demand.unwrap_or(false),
            source_stream: args.source_stream.clone().or_else(|| file.source_stream.clone()),
            format: args.format.or(file.format),
            glue_database: args.glue_database.clone().or_else(|| file.glue_database.clone()),
        };
        s.validate()?;
        Ok(s)
    }

    /// Checks each value given on its own (ranges, names, prefixes); [`Self::check_combined`] checks them
    /// together with what the stream has.
    /// `--shards`, `--on-demand` and `--source-stream` belong to `--source kinesis`, within Kinesis's limits.
    fn validate_source(&self) -> Result<()> {
        use firehose_kit_domain::kinesis::{ACCOUNT_SHARD_LIMIT, stream_name_problem};
        let kinesis_only = [
            ("--shards", self.shards.is_some()),
            ("--on-demand", self.on_demand),
            ("--source-stream", self.source_stream.is_some()),
        ];
        if self.source != Some(cli::SourceKind::Kinesis)
            && let Some((flag, _)) = kinesis_only.iter().find(|(_, given)| *given)
        {
            return Err(Error::usage(format!("{flag} configures the data stream of a chained pipeline"))
                .with_hint("add --source kinesis (setup creates or adopts the data stream in front of Firehose)"));
        }
        if let Some(n) = self.shards
            && !(1..=ACCOUNT_SHARD_LIMIT as u32).contains(&n)
        {
            return Err(Error::usage(format!(
                "--shards {n} is out of range: expected 1 to {ACCOUNT_SHARD_LIMIT} (the default shard quota of an account)"
            )));
        }
        if let Some(name) = &self.source_stream
            && let Some(problem) = stream_name_problem(name)
        {
            return Err(Error::usage(format!("--source-stream `{name}` is not a data stream name: {problem}")));
        }
        Ok(())
    }

    /// `--glue-database` belongs to `--format parquet` and must be a name Glue and Athena take.
    fn validate_format(&self) -> Result<()> {
        if self.format == Some(cli::RecordFormat::Parquet) {
            let partitioned = self.partition_by.as_ref().is_some_and(|p| !p.is_empty());
            check_format_combination(self.transform.is_some(), partitioned)?;
        }
        let Some(db) = &self.glue_database else { return Ok(()) };
        if self.format != Some(cli::RecordFormat::Parquet) {
            return Err(Error::usage("--glue-database names where the table of a converting stream goes")
                .with_hint("add --format parquet"));
        }
        if let Some(problem) = crate::logs::table::database_name_problem(db) {
            return Err(Error::usage(format!("--glue-database `{db}` is not a Glue database name: {problem}")));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        use crate::firehose::limits::{BUFFER_INTERVAL_S, BUFFER_SIZE_MIB};
        if let Some(size) = self.buffer_size_mib
            && !BUFFER_SIZE_MIB.contains(&(size as i64))
        {
            return Err(Error::usage(format!(
                "--buffer-size {size} is out of range: expected {} to {} MiB",
                BUFFER_SIZE_MIB.start(),
                BUFFER_SIZE_MIB.end()
            )));
        }
        if let Some(interval) = self.buffer_interval_s
            && !BUFFER_INTERVAL_S.contains(&(interval as i64))
        {
            return Err(Error::usage(format!(
                "--buffer-interval {interval} is out of range: expected {} to {} seconds",
                BUFFER_INTERVAL_S.start(),
                BUFFER_INTERVAL_S.end()
            )));
        }
        if let Some(b) = &self.bucket {
            validate_bucket_name(b)?;
        }
        self.validate_source()?;
        self.validate_format()?;
        if let Some(days) = self.log_retention_days
            && !crate::firehose::failures::RETENTION_DAYS.contains(&days)
        {
            return Err(Error::usage(format!(
                "--log-retention {days} is not a retention CloudWatch Logs accepts: expected one of {:?} days",
                crate::firehose::failures::RETENTION_DAYS
            )));
        }
        let partitioned = self.partition_by.as_ref().is_some_and(|p| !p.is_empty());
        if partitioned {
            if self.prefix.as_deref().is_some_and(|p| p.contains("!{")) {
                return Err(Error::usage(
                    "with --partition-by, --prefix must be plain text (setup appends the partition expressions to it)",
                ));
            }
        } else if self.partition_by.is_some() || self.prefix.is_some() || self.error_prefix.is_some() {
            fn blank(p: &Option<String>) -> Option<&str> {
                p.as_deref().filter(|p| !p.is_empty())
            }
            crate::firehose::prefix::validate(blank(&self.prefix), blank(&self.error_prefix), false)
                .map_err(|e| Error::usage(format!("invalid prefixes: {e}")))?;
        }
        Ok(())
    }

    /// Checks the buffering a stream partitioned by `keys` will have against AWS's minimums; the message names
    /// only the value that is too small, and the hint is a setup command with values it accepts.
    pub fn check_partition_minimums(size_mib: u32, interval_s: u32, keys: &str) -> Result<()> {
        use crate::firehose::partitioning::{MIN_INTERVAL_S, MIN_SIZE_MIB};
        let mut low = Vec::new();
        if (size_mib as i64) < MIN_SIZE_MIB {
            low.push(format!("a buffer size of at least {MIN_SIZE_MIB} MiB (not {size_mib} MiB)"));
        }
        if (interval_s as i64) < MIN_INTERVAL_S {
            low.push(format!("a buffer interval of at least {MIN_INTERVAL_S} s (not {interval_s} s)"));
        }
        if low.is_empty() {
            return Ok(());
        }
        Err(Error::usage(format!(
            "dynamic partitioning needs {} (AWS's minimums)",
            low.join(" and ")
        ))
        .with_hint(format!(
            "each partition buffers separately: `firehose-kit setup --partition-by {keys} --buffer-size {} --buffer-interval {}` (a new stream gets these when you leave them out)",
            size_mib.max(MIN_SIZE_MIB as u32),
            interval_s.max(MIN_INTERVAL_S as u32)
        )))
    }
}

/// A duration from a flag (already parsed), else the settings file's whole seconds, else `default` seconds.
fn duration(name: &str, flag: Option<Duration>, file: Option<u64>, default: u64) -> Result<Duration> {
    match flag {
        Some(d) => Ok(d),
        None => Ok(Duration::from_secs(seconds(name, file.unwrap_or(default))?)),
    }
}

/// Resolved `send` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SendSettings {
    pub inputs: Vec<String>,
    pub generate: Option<u64>,
    pub seed: Option<u64>,
    pub format: SendFormat,
    /// `--format` was given on the command line: a partitioned stream then does not override it (the settings
    /// file's `format` is a default, overridden for partitioned streams with a note).
    pub format_explicit: bool,
    pub one_line_per_record: bool,
    pub record_size: usize,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub follow: bool,
    pub linger: Duration,
    pub from_start: bool,
    pub retry_timeout: Duration,
    /// `--partition-key FIELD`: a chained pipeline's records keyed by this field of their JSON line.
    pub partition_key: Option<String>,
}

impl SendSettings {
    pub fn resolve(args: &cli::SendArgs, file: &SendFile) -> Result<Self> {
        let s = SendSettings {
            inputs: args.files.clone(),
            generate: args.generate,
            seed: args.seed,
            format: args.format.or(file.format).unwrap_or(SendFormat::Raw),
            format_explicit: args.format.is_some(),
            one_line_per_record: args.one_line_per_record || file.one_line_per_record.unwrap_or(false),
            record_size: args.record_size.or(file.record_size).unwrap_or(MAX_RECORD_BYTES),
            concurrency: args.concurrency.or(file.concurrency).unwrap_or(4),
            // In the settings file, `rate = 0` means no limit.
            rate: args
                .rate
                .or(file.rate.filter(|r| *r != 0.0))
                .map(|r| cli::check_rate(r).map_err(|e| Error::usage(format!("rate: {e}"))))
                .transpose()?,
            follow: args.follow,
            linger: match args.linger {
                Some(d) => d,
                None => {
                    let secs = file.linger.unwrap_or(1.0);
                    let d = Duration::try_from_secs_f64(secs)
                        .map_err(|_| Error::usage(format!("linger: {secs} is not a number of seconds")))?;
                    cli::check_linger(d).map_err(|e| Error::usage(format!("linger: {e}")))?
                }
            },
            from_start: args.from_start,
            retry_timeout: duration("retry_timeout", args.retry_timeout, file.retry_timeout, 120)?,
            partition_key: args.partition_key.clone(),
        };
        if s.partition_key.as_deref().is_some_and(|f| f.is_empty()) {
            return Err(Error::usage("--partition-key needs a field name (e.g. `--partition-key host`)"));
        }
        if s.partition_key.is_some() && s.format_explicit && s.format == SendFormat::Raw {
            return Err(Error::usage(
                "--partition-key takes the key from each JSON line, but --format raw sends raw lines",
            )
            .with_hint("drop --format raw: with --partition-key, send converts Apache lines to JSON"));
        }
        if s.inputs.is_empty() && s.generate.is_none() {
            return Err(Error::usage("nothing to send: give FILE arguments, `-` for standard input, or --generate N")
                .with_hint("`firehose-kit send access.log` or `firehose-kit send --generate 10000`"));
        }
        if !(1..=MAX_RECORD_BYTES).contains(&s.record_size) {
            return Err(Error::usage(format!(
                "--record-size {} is out of range: expected 1 to {MAX_RECORD_BYTES} bytes",
                s.record_size
            )));
        }
        if !(1..=64).contains(&s.concurrency) {
            return Err(Error::usage(format!("--concurrency {} is out of range: expected 1 to 64", s.concurrency)));
        }
        if s.follow && s.inputs.iter().all(|i| i == "-") {
            return Err(Error::usage(
                "--follow needs FILE arguments (standard input is followed anyway until it ends)",
            ));
        }
        Ok(s)
    }
}

/// Resolved `verify` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifySettings {
    pub run: Option<String>,
    pub manifests: Vec<PathBuf>,
    pub expect: Vec<PathBuf>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// `None`: the default deadline (run end + buffer interval + 60 s).
    pub wait: Option<Duration>,
    pub no_wait: bool,
    pub strict: bool,
    pub keep: Option<PathBuf>,
    /// `--report FILE.html`.
    pub report: Option<PathBuf>,
    /// `--match JQ_PATH`: the field of a transformed stream's documents that carries the source line.
    pub match_path: Option<String>,
}

impl VerifySettings {
    pub fn resolve(args: &cli::VerifyArgs, file: &VerifyFile) -> Result<Self> {
        let since = args.since.as_deref().map(parse_since).transpose()?;
        Ok(VerifySettings {
            run: args.run.clone(),
            manifests: args.manifest.clone(),
            expect: args.expect.clone(),
            since,
            wait: match args.wait {
                Some(d) => Some(d),
                None => {
                    file.wait.filter(|w| *w > 0).map(|w| seconds("wait", w).map(Duration::from_secs)).transpose()?
                }
            },
            no_wait: args.no_wait,
            strict: args.strict || file.strict.unwrap_or(false),
            keep: args.keep.clone(),
            report: args.report.clone(),
            match_path: args.match_path.clone(),
        })
    }
}

/// A whole number of seconds, from a flag or the settings file, within [`cli::MAX_SECONDS`].
fn seconds(name: &str, value: u64) -> Result<u64> {
    cli::check_seconds(name, value).map_err(Error::usage)
}

/// `--since`: an RFC 3339 time, or a duration ago (`90m`, `2h`).
pub fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    match cli::parse_duration(s) {
        Ok(d) => Ok(chrono::Utc::now() - chrono::Duration::from_std(d).unwrap_or_default()),
        Err(_) => Err(Error::usage(format!(
            "--since `{s}` is neither an RFC 3339 time (2026-11-25T20:00:00Z) nor a duration ago (30m, 2h)"
        ))),
    }
}

/// Delivery stream names (the rule is `firehose::names`).
pub fn validate_stream_name(name: &str) -> Result<()> {
    match crate::firehose::names::stream_name_problem(name) {
        Some(why) => Err(Error::usage(format!(
            "stream name `{name}` is invalid: {why} (1 to 64 characters from a-z A-Z 0-9 _ . -)"
        ))),
        None => Ok(()),
    }
}

/// S3 bucket names (the rule is `firehose::names`).
pub fn validate_bucket_name(name: &str) -> Result<()> {
    match crate::firehose::names::bucket_name_problem(name) {
        Some(why) => Err(Error::usage(format!("bucket name `{name}` is invalid: {why}"))),
        None => Ok(()),
    }
}

fn validate_region(region: &str) -> Result<()> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
    if !ok {
        return Err(Error::usage(format!("region `{region}` is invalid: expected a name like us-east-2 or eu-west-1")));
    }
    Ok(())
}

fn validate_endpoint(url: &str) -> Result<()> {
    let ok = match url.split_once("://") {
        Some(("http" | "https", rest)) => !rest.is_empty() && !rest.starts_with('/'),
        _ => false,
    };
    if !ok {
        return Err(Error::usage(format!(
            "endpoint URL `{url}` is invalid: expected http://HOST[:PORT] or https://HOST[:PORT]"
        )));
    }
    Ok(())
}

/// The IAM role setup creates for a stream.
pub fn role_name(stream: &str) -> Result<String> {
    derived_name(stream, "delivery", "role name", "IAM", "")
}

/// `firehose-kit-<stream>-<suffix>`, a name setup derives for what it makes; IAM roles and Lambda functions both
/// allow 64 characters. `more` ends the hint (another way out, if any).
pub fn derived_name(stream: &str, suffix: &str, what: &str, service: &str, more: &str) -> Result<String> {
    let name = format!("firehose-kit-{stream}-{suffix}");
    if name.len() > 64 {
        let longest = 64 - (name.len() - stream.len());
        return Err(Error::usage(format!(
            "the {what} `{name}` derived from stream `{stream}` is longer than {service}'s 64 characters"
        ))
        .with_hint(format!("use a stream name of at most {longest} characters{more}")));
    }
    Ok(name)
}

/// The bucket setup creates by default: deterministic, so setup and teardown agree.
pub fn default_bucket(account_id: &str, region: &str) -> String {
    format!("firehose-kit-{account_id}-{region}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(args: GlobalArgs, file: FileSettings) -> Result<Global> {
        Global::resolve(&args, &file, None)
    }

    #[test]
    fn flags_beat_file_beat_defaults() {
        let file =
            FileSettings { stream: Some("FromFile".into()), region: Some("eu-west-1".into()), ..Default::default() };
        let g = global(GlobalArgs { stream: Some("FromFlag".into()), ..Default::default() }, file).unwrap();
        assert_eq!(g.stream, "FromFlag");
        assert_eq!(g.connection.region.as_deref(), Some("eu-west-1"));
        let g = global(GlobalArgs::default(), FileSettings::default()).unwrap();
        assert_eq!(g.stream, DEFAULT_STREAM);
        assert_eq!(g.connection.region, None);
        assert_eq!(g.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    }

    #[test]
    fn local_sets_endpoint_and_test_credentials() {
        let g = global(GlobalArgs { local: true, ..Default::default() }, FileSettings::default()).unwrap();
        assert_eq!(g.connection.endpoint_url.as_deref(), Some(LOCAL_ENDPOINT));
        assert!(g.connection.test_credentials);
    }

    #[test]
    fn invalid_global_values_are_usage_errors_naming_the_value() {
        for args in [
            GlobalArgs { stream: Some("bad name".into()), ..Default::default() },
            GlobalArgs { region: Some("mars".into()), ..Default::default() },
            GlobalArgs { endpoint_url: Some("localhost:4566".into()), ..Default::default() },
        ] {
            let err = global(args, FileSettings::default()).unwrap_err();
            assert_eq!(err.exit_code() as i32, 2);
            assert!(err.to_string().contains('`'), "{err}");
        }
    }

    #[test]
    fn demo_config_json_is_accepted_but_keys_are_refused() {
        let s =
            parse_demo_json(r#"{"stream_name":"Logs","region_name":"us-east-2"}"#, Path::new("config.json")).unwrap();
        assert_eq!(s.stream.as_deref(), Some("Logs"));
        let err = parse_demo_json(
            r#"{"stream_name":"Logs","aws_access_key_id":"AKIA","aws_secret_access_key":"x"}"#,
            Path::new("config.json"),
        )
        .unwrap_err();
        assert_eq!(err.exit_code() as i32, 2);
        assert!(err.to_string().contains("never reads secrets"), "{err}");
        assert!(err.hint().unwrap().contains("aws configure"));
    }

    #[test]
    fn unknown_toml_keys_are_refused() {
        let err = parse_toml("[setup]\nbuffer_sise = 5\n", Path::new("f.toml")).unwrap_err();
        assert!(err.to_string().contains("buffer_sise"), "{err}");
        let ok = parse_toml("stream = \"S\"\n[setup]\nbuffer_size = 5\ncompression = \"gzip\"\n", Path::new("f.toml"))
            .unwrap();
        assert_eq!(ok.setup.buffer_size, Some(5));
        assert_eq!(ok.setup.compression, Some(Compression::Gzip));
    }

    #[test]
    fn the_annotated_template_sets_every_key_to_its_default() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/firehose-kit.toml"));
        let f = parse_toml(&std::fs::read_to_string(path).unwrap(), path).unwrap();
        // Every key present (deny_unknown_fields catches keys the code does not know).
        let top = [
            f.stream.is_some(),
            f.region.is_some(),
            f.profile.is_some(),
            f.endpoint_url.is_some(),
            f.state_dir.is_some(),
            f.output.is_some(),
        ];
        let setup = [
            f.setup.bucket.is_some(),
            f.setup.buffer_size.is_some(),
            f.setup.buffer_interval.is_some(),
            f.setup.compression.is_some(),
            f.setup.prefix.is_some(),
            f.setup.error_prefix.is_some(),
            f.setup.timeout.is_some(),
            f.setup.iam_retry_timeout.is_some(),
            f.setup.error_logging.is_some(),
            f.setup.log_retention.is_some(),
            f.setup.partition_by.is_some(),
        ];
        let send = [
            f.send.format.is_some(),
            f.send.one_line_per_record.is_some(),
            f.send.record_size.is_some(),
            f.send.concurrency.is_some(),
            f.send.rate.is_some(),
            f.send.linger.is_some(),
            f.send.retry_timeout.is_some(),
        ];
        let verify = [f.verify.wait.is_some(), f.verify.strict.is_some()];
        assert!(top.iter().chain(&setup).chain(&send).chain(&verify).all(|present| *present), "{f:?}");
        // ... and the values are the defaults: resolving with the file equals resolving without it.
        let with = Global::resolve(&GlobalArgs::default(), &f, None).unwrap();
        let without = Global::resolve(&GlobalArgs::default(), &FileSettings::default(), None).unwrap();
        assert_eq!((with.stream, with.state_dir, with.output), (without.stream, without.state_dir, without.output));
        // Setup keys in a settings file are applied on every run (absent ones keep what a stream has); the
        // template's are what a new stream gets without them.
        let with = SetupSettings::resolve(&Default::default(), &f.setup).unwrap();
        let without = SetupSettings::resolve(&Default::default(), &SetupFile::default()).unwrap();
        let (size, interval) = default_buffering(false);
        let defaults = SetupSettings {
            buffer_size_mib: Some(size),
            buffer_interval_s: Some(interval),
            compression: Some(Compression::None),
            prefix: Some(String::new()),
            error_prefix: Some(String::new()),
            error_logging: Some(true),
            log_retention_days: Some(DEFAULT_LOG_RETENTION_DAYS),
            partition_by: Some(crate::logs::partition::PartitionBy(Vec::new())),
            ..without
        };
        assert_eq!(with, defaults);
        let args = cli::SendArgs { generate: Some(1), ..Default::default() };
        assert_eq!(
            SendSettings::resolve(&args, &f.send).unwrap(),
            SendSettings::resolve(&args, &SendFile::default()).unwrap()
        );
        assert_eq!(
            VerifySettings::resolve(&Default::default(), &f.verify).unwrap(),
            VerifySettings::resolve(&Default::default(), &VerifyFile::default()).unwrap()
        );
    }

    #[test]
    fn setup_ranges_and_names_are_checked() {
        let bad = [
            cli::SetupArgs { buffer_size: Some(0), ..Default::default() },
            cli::SetupArgs { buffer_size: Some(129), ..Default::default() },
            cli::SetupArgs { buffer_interval: Some(Duration::from_secs(901)), ..Default::default() },
            cli::SetupArgs { bucket: Some("Bad_Bucket".into()), ..Default::default() },
            cli::SetupArgs { prefix: Some("!{timestamp:yyyy}/".into()), ..Default::default() },
        ];
        for args in bad {
            assert!(SetupSettings::resolve(&args, &SetupFile::default()).is_err(), "{args:?}");
        }
        let ok = SetupSettings::resolve(&cli::SetupArgs::default(), &SetupFile::default()).unwrap();
        assert_eq!(
            (ok.buffer_size_mib, ok.buffer_interval_s),
            (None, None),
            "left to setup: the stream's or the defaults"
        );
        assert_eq!(default_buffering(false), (1, 60));
        assert_eq!(default_buffering(true), (64, 60));
        let err = SetupSettings::check_partition_minimums(64, 30, "status").unwrap_err();
        assert!(err.to_string().contains("at least 60 s (not 30 s)") && !err.to_string().contains("MiB"), "{err}");
        assert!(
            err.hint()
                .unwrap()
                .contains("`firehose-kit setup --partition-by status --buffer-size 64 --buffer-interval 60`"),
            "{err:?}"
        );
        assert_eq!(err.exit_code() as i32, 2);
    }

    #[test]
    fn bad_names_are_usage_errors_naming_the_name() {
        let err = validate_bucket_name("Bad_Bucket").unwrap_err();
        assert_eq!(err.exit_code() as i32, 2);
        assert!(err.to_string().contains("`Bad_Bucket`"), "{err}");
        assert!(validate_stream_name("bad name").unwrap_err().to_string().contains("`bad name`"));
    }

    #[test]
    fn role_names_fit_iam() {
        assert_eq!(role_name("ApacheLogs").unwrap(), "firehose-kit-ApacheLogs-delivery");
        assert!(role_name(&"s".repeat(43)).is_err());
    }

    #[test]
    fn since_accepts_times_and_durations() {
        assert!(parse_since("2026-11-25T20:00:00Z").is_ok());
        assert!(parse_since("30m").unwrap() < chrono::Utc::now());
        assert!(parse_since("yesterday-ish").is_err());
    }

    fn toml_number() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| format!("{f:?}")),
            Just("inf".to_string()),
            Just("-inf".to_string()),
            Just("nan".to_string()),
            Just("18446744073709551616".to_string()),
            "\"[a-z0-9 ]{0,6}\"",
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Any bytes as a settings file are read or refused with exit 2 naming the file, never a panic.
        #[test]
        fn any_settings_text_parses_or_is_a_usage_error(text in "\\PC{0,200}") {
            use proptest::prelude::*;
            for result in [parse_toml(&text, Path::new("f.toml")), parse_demo_json(&text, Path::new("config.json"))] {
                if let Err(e) = result {
                    prop_assert_eq!(e.exit_code() as i32, 2);
                    prop_assert!(e.to_string().contains("f.toml") || e.to_string().contains("config.json"));
                }
            }
        }

        /// Any value of the numeric settings (huge, negative, fractional, inf, NaN, text) is resolved or refused
        /// with exit 2, never a panic or an overflow.
        #[test]
        fn any_numeric_setting_resolves_or_is_a_usage_error(
            key in proptest::sample::select(vec![
                "setup.buffer_size", "setup.buffer_interval", "setup.timeout", "setup.iam_retry_timeout",
                "send.record_size", "send.concurrency", "send.rate", "send.linger", "send.retry_timeout", "verify.wait",
            ]),
            value in toml_number(),
        ) {
            use proptest::prelude::*;
            let (section, name) = key.split_once('.').unwrap();
            let text = format!("[{section}]\n{name} = {value}\n");
            let file = match parse_toml(&text, Path::new("f.toml")) {
                Ok(f) => f,
                Err(e) => {
                    prop_assert_eq!(e.exit_code() as i32, 2);
                    return Ok(());
                }
            };
            let send_args = cli::SendArgs { generate: Some(1), ..Default::default() };
            let results = [
                SetupSettings::resolve(&Default::default(), &file.setup).err(),
                SendSettings::resolve(&send_args, &file.send).err(),
                VerifySettings::resolve(&Default::default(), &file.verify).err(),
            ];
            for e in results.into_iter().flatten() {
                prop_assert_eq!(e.exit_code() as i32, 2, "{}", e);
            }
        }
    }
}
