//! Command-line types (clap derive) and nothing else: every option a user can type, with help and examples.
//! Options that a settings file can also provide are `Option<T>` here so `settings` can tell "given" from
//! "default"; `settings` resolves them (flags > environment > settings file > defaults) and validates them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "firehose-kit",
    version,
    about = "Stand up, feed, prove and remove an Amazon Data Firehose pipeline: Apache logs → Direct Put → S3",
    long_about = "Stand up, feed, prove and remove an Amazon Data Firehose pipeline: Apache access logs → Direct Put \
delivery stream → Amazon S3. Works against real AWS (standard credential chain), any endpoint (--endpoint-url), \
or the embedded emulator (`firehose-kit local`, `--local`, `demo`).",
    after_help = "Examples:
  firehose-kit demo                                  # the whole pipeline offline, in one command
  firehose-kit local &                               # start the emulator on 127.0.0.1:4566
  firehose-kit --local setup                         # bucket + role + stream, waits until ACTIVE
  firehose-kit --local send access.log               # pack, batch and send a log file
  firehose-kit --local verify                        # prove every sent line arrived in S3
  firehose-kit --local teardown --yes                # remove exactly what setup made
  firehose-kit --profile prod --region us-east-1 status"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes (AWS CLI conventions), shown under their own heading in every `--help`.
///
/// Backend precedence: `--local` (typed) > `--endpoint-url` (typed) > `AWS_ENDPOINT_URL` > the settings file's
/// `endpoint_url` > AWS. So `--local` works whatever `AWS_ENDPOINT_URL` says; typing both `--local` and
/// `--endpoint-url` is refused.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Settings file (default: ./firehose-kit.toml when present; the original demo's config.json is accepted when
    /// named here)
    #[arg(short = 'c', long, env = "FIREHOSE_KIT_CONFIG", hide_env_values = true, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// AWS profile from ~/.aws/config and ~/.aws/credentials
    #[arg(long, env = "AWS_PROFILE", hide_env_values = true, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// AWS Region (else the profile's region, else us-east-2)
    #[arg(long, env = "AWS_REGION", hide_env_values = true, global = true, value_name = "REGION")]
    pub region: Option<String>,

    /// Send every AWS call to this endpoint (LocalStack, moto, the emulator)
    #[arg(long, env = "AWS_ENDPOINT_URL", hide_env_values = true, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Use the embedded emulator's default endpoint http://127.0.0.1:4566 with its test credentials (wins over AWS_ENDPOINT_URL)
    #[arg(long, global = true)]
    pub local: bool,

    /// Delivery stream name [default: ApacheLogs]
    #[arg(long, global = true, value_name = "NAME")]
    pub stream: Option<String>,

    /// Output format: `json` prints one JSON document on stdout for scripts
    #[arg(short = 'o', long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,

    /// More logging (-v: requests and steps, -vv: debug); disables progress bars
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors and the final result
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,

    /// No progress bars or spinners
    #[arg(long, global = true)]
    pub no_progress: bool,

    /// Where run manifests, checkpoints and rejects are kept [default: .firehose-kit]
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Whether `--profile`, `--endpoint-url` or `--local` was typed on the command line (not taken from the
    /// environment): `demo` then runs against that backend instead of the embedded emulator.
    #[arg(skip)]
    pub explicit_backend: bool,

    /// The global options typed on the command line (not from the environment), by id: hints that print a
    /// command repeat them, and leave out what the environment already says.
    #[arg(skip)]
    pub typed: Vec<&'static str>,
}

impl Cli {
    /// Parses the process arguments (exiting with clap's usage error and code 2 when they are wrong).
    pub fn parse_args() -> Self {
        Cli::try_parse_from_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parses `args`, noting which backend options were typed rather than inherited from the environment.
    /// `--local` beats an `AWS_ENDPOINT_URL` from the environment; typing it with `--endpoint-url` is an error.
    pub fn try_parse_from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches, parser::ValueSource};
        let mut cmd = Cli::command();
        let matches = cmd.try_get_matches_from_mut(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        let typed = |id: &str| matches!(matches.value_source(id), Some(ValueSource::CommandLine));
        if cli.global.local && typed("endpoint_url") {
            return Err(cmd.error(
                clap::error::ErrorKind::ArgumentConflict,
                "--local and --endpoint-url both choose the endpoint: give one of them",
            ));
        }
        if cli.global.local {
            cli.global.endpoint_url = None;
        }
        cli.global.explicit_backend = typed("profile") || typed("endpoint_url") || cli.global.local;
        cli.global.typed = ["profile", "region", "endpoint_url"].into_iter().filter(|id| typed(id)).collect();
        Ok(cli)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the S3 bucket, IAM role and Direct Put stream; wait until ACTIVE (safe to re-run)
    #[command(
        after_help = "On an existing stream a setting you leave out keeps the stream's value: re-running setup repairs the
role, bucket and error log without changing buffering or anything else you chose.

Examples:
  firehose-kit setup                                  # defaults: ApacheLogs, 1 MiB / 60 s, no compression
  firehose-kit setup --dry-run                        # show the plan and the exact policy documents
  firehose-kit setup --buffer-size 5 --buffer-interval 300 --compression gzip --prefix logs/
  firehose-kit setup --transform templates/transform/apache_to_json.py  # JSON via Lambda
  firehose-kit setup --source kinesis --shards 4     # a Kinesis data stream in front (chained pipeline)
  firehose-kit setup --format parquet                 # Parquet typed by a Glue table, for Athena
  firehose-kit --local setup --stream Demo --buffer-interval 10"
    )]
    Setup(SetupArgs),

    /// Send Apache log lines (files, stdin or generated) into the stream, packed into records, nothing lost
    #[command(
        after_help = "A file is resumed after the lines its last send to this stream got acknowledged (a checkpoint per
file and stream instance; --from-start ignores it). A second send of a file that another send is sending to the
same stream waits for it, then sends only what it did not. --follow survives rotation and copytruncate.

Examples:
  firehose-kit send access.log                       # pack lines into records, batch, retry failed entries
  firehose-kit send 'logs/*.log.gz'                  # globs; .gz files are read transparently
  tail -F access.log | firehose-kit send -            # standard input
  firehose-kit send --generate 100000                # generated Apache combined lines
  firehose-kit send access.log --format json         # one JSON object per line
  firehose-kit send access.log --rate 50             # play the file like a live log, 50 lines/s
  firehose-kit send access.log --follow              # keep shipping as the file grows (and rotates)"
    )]
    Send(SendArgs),

    /// Prove every sent line arrived in S3; report missing, duplicated and extra lines and the buffering
    #[command(after_help = "Examples:
  firehose-kit verify                                # the latest send run for the stream
  firehose-kit verify --run 20261125T204501Z-1a2b    # a given run
  firehose-kit verify --manifest host1.json host2.json   # several producers' manifests together
  firehose-kit verify --expect access.log            # compare with the source file; print missing lines
  firehose-kit verify --no-wait -o json              # check once, JSON report
  firehose-kit verify --report delivery.html         # and a page with the timeline, objects and cost
  firehose-kit verify --match .line                  # a transform that stamps its output: each document's
                                                     # `line` field is the sent line it came from")]
    Verify(VerifyArgs),

    /// Remove exactly what setup made (tagged resources only unless --force)
    #[command(after_help = "Examples:
  firehose-kit teardown                               # asks before deleting a bucket that holds objects
  firehose-kit teardown --yes                         # no questions
  firehose-kit teardown --keep-bucket                 # keep the delivered data")]
    Teardown(TeardownArgs),

    /// Show the stream, its settings, and what has been delivered so far
    #[command(after_help = "Examples:
  firehose-kit status
  firehose-kit --local status -o json")]
    Status(StatusArgs),

    /// Check a stream end to end (role, trust, policies, bucket, logging, recent errors); exit 1 on a problem
    #[command(after_help = "Examples:
  firehose-kit doctor                                 # the default stream
  firehose-kit --stream my-terraform-stream doctor    # any stream, whoever made it
  firehose-kit doctor --since 24h -o json             # errors of the last day, for scripts
  firehose-kit doctor --buffer-size 5 --buffer-interval 300   # and compare the hints with these")]
    Doctor(DoctorArgs),

    /// Run the embedded Firehose + S3 + IAM + CloudWatch Logs + Lambda emulator
    #[command(after_help = "Examples:
  firehose-kit local                                  # 127.0.0.1:4566, data in .firehose-kit/local
  firehose-kit local --addr 127.0.0.1:0               # pick a free port and print it
  firehose-kit local --quota us-east-2 --fail-rate 0.05 --seed 7
  firehose-kit local --iam-propagation-delay 10s --create-delay 5s

Then, in another shell:
  export AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-2 AWS_DEFAULT_REGION=us-east-2
  aws s3 ls; firehose-kit setup; firehose-kit send access.log; firehose-kit verify")]
    Local(LocalArgs),

    /// Run setup → send → verify → teardown in one command (embedded emulator unless an endpoint is given)
    #[command(after_help = "Examples:
  firehose-kit demo                                   # offline, ~200,000 generated lines
  firehose-kit demo --lines 1000000 --keep            # keep the emulator's data dir to look at the objects
  firehose-kit demo --transform                       # lines turned into JSON by a Lambda function
  firehose-kit demo --format parquet                  # Parquet typed by a Glue table, every row proved
  firehose-kit --profile sandbox demo --lines 10000   # the same on real AWS, with unique names, cleaned up")]
    Demo(DemoArgs),

    /// Write realistic Apache access-log lines to stdout
    #[command(after_help = "Examples:
  firehose-kit generate --lines 1000 > access.log
  firehose-kit generate --rate 20 --format common     # endless, 20 lines/s
  firehose-kit generate --lines 10 --seed 42 --start 2026-01-01T00:00:00Z   # the same lines every time")]
    Generate(GenerateArgs),

    /// Print a shell completion script
    #[command(after_help = "Examples:
  firehose-kit completions bash > /etc/bash_completion.d/firehose-kit
  firehose-kit completions zsh > \"${fpath[1]}/_firehose-kit\"
  firehose-kit completions fish > ~/.config/fish/completions/firehose-kit.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    /// UNCOMPRESSED
    None,
    /// GZIP (`.gz`)
    Gzip,
    /// ZIP: an archive of one entry (`.zip`)
    Zip,
    /// Snappy: the Snappy framing format (`.snappy`)
    Snappy,
    /// HADOOP_SNAPPY: Hadoop's Snappy blocks, what Hadoop, Hive and Spark read (`.snappy`)
    HadoopSnappy,
}

#[derive(Debug, Clone, Default, Args)]
pub struct SetupArgs {
    /// Destination bucket [new stream: firehose-kit-ACCOUNT-REGION; an existing stream keeps its bucket]
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,

    /// Buffering hint: deliver when this many MiB are buffered (1–128) [new stream: 1, or 64 partitioned; an
    /// existing stream keeps its value]
    #[arg(long, value_name = "MIB")]
    pub buffer_size: Option<u32>,

    /// Buffering hint: deliver when the oldest record is this old (0–900 s, whole seconds: `60`, `5m`) [new
    /// stream: 60; an existing stream keeps its value]
    #[arg(long, value_name = "DURATION", value_parser = parse_whole_seconds)]
    pub buffer_interval: Option<std::time::Duration>,

    /// Compression of delivered objects [new stream: none; an existing stream keeps its value]
    #[arg(long, value_enum)]
    pub compression: Option<Compression>,

    /// S3 key prefix (end it with `/`; Firehose appends YYYY/MM/DD/HH/)
    #[arg(long, value_name = "P")]
    pub prefix: Option<String>,

    /// S3 key prefix for failed deliveries
    #[arg(long, value_name = "P")]
    pub error_prefix: Option<String>,

    /// Show what would be created or changed, and the policy documents; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Return once the stream is created, without waiting for ACTIVE
    #[arg(long)]
    pub no_wait: bool,

    /// Give up waiting for ACTIVE after this long [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,

    /// Keep retrying CreateDeliveryStream while the new role propagates, for up to this long [default: 2m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub iam_retry_timeout: Option<std::time::Duration>,

    /// Do not log delivery errors to CloudWatch Logs (then nobody can see why data is missing)
    #[arg(long, conflicts_with = "error_logging")]
    pub no_error_logging: bool,

    /// Log delivery errors to CloudWatch Logs (the default for a new stream; turns it on for an existing one)
    #[arg(long)]
    pub error_logging: bool,

    /// Days CloudWatch Logs keeps the error log (1, 3, 5, 7, 14, 30, 60, 90, ... 3653) [new log group: 14; an
    /// existing one keeps its retention]
    #[arg(long, value_name = "DAYS")]
    pub log_retention: Option<i32>,

    /// Partition objects by these fields of each line (dynamic partitioning): status, method, host, date, hour
    /// (date and hour from the line's own timestamp), e.g. `--partition-by status,date`
    #[arg(long, value_name = "KEY,...", value_delimiter = ',')]
    pub partition_by: Vec<String>,

    /// Delete and create the stream again when a change needs it (partitioning cannot be changed in place)
    #[arg(long)]
    pub recreate: bool,

    /// Transform records with a Lambda function before delivery: a handler file (.py, .js, .mjs) or a directory
    /// with a `bootstrap`, deployed as firehose-kit-STREAM-transform with its own execution role; or an existing
    /// function's ARN. Records the function marks ProcessingFailed go under the error prefix
    /// (e.g. `--transform templates/transform/apache_to_json.py`)
    #[arg(long, value_name = "PATH|ARN")]
    pub transform: Option<String>,

    /// Where the stream's records come from: `direct-put` (send writes to Firehose) or `kinesis` (a Kinesis data
    /// stream in front: send writes to it, Firehose reads it). An existing stream keeps its source
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub source: Option<SourceKind>,

    /// With --source kinesis: the data stream's provisioned shards (1 MiB/s and 1,000 records/s of writes each;
    /// default 1)
    #[arg(long, value_name = "N", conflicts_with = "on_demand")]
    pub shards: Option<u32>,

    /// With --source kinesis: an on-demand data stream (capacity follows the load; billed per GB)
    #[arg(long)]
    pub on_demand: bool,

    /// With --source kinesis: the data stream's name (default: the delivery stream's). An existing stream that
    /// setup did not make is used as it is and left by teardown
    #[arg(long, value_name = "NAME")]
    pub source_stream: Option<String>,

    /// The objects' format: `parquet` converts the JSON records send makes of each line into Parquet, typed by a
    /// Glue table setup creates (status and bytes as integers, time as a timestamp); `as-sent` turns conversion
    /// off. Conversion needs a buffer of at least 64 MiB and no S3 compression (Parquet compresses inside the
    /// file). [new stream: as-sent; an existing stream keeps its format]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<RecordFormat>,

    /// With --format parquet: the Glue database of the table (created if missing) [default: firehose_kit]
    #[arg(long, value_name = "NAME")]
    pub glue_database: Option<String>,
}

/// What a stream writes to S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordFormat {
    /// The records as sent (lines, or JSON documents)
    AsSent,
    /// Apache Parquet, typed by a Glue table (record format conversion)
    Parquet,
}

/// Where a delivery stream's records come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// PutRecord/PutRecordBatch straight into Firehose
    DirectPut,
    /// A Kinesis data stream that Firehose reads
    Kinesis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SendFormat {
    /// Lines as they are (bytes verbatim)
    Raw,
    /// Apache common/combined lines converted to one JSON object per line
    Json,
}

#[derive(Debug, Clone, Default, Args)]
pub struct SendArgs {
    /// Input files or globs (`.gz` read transparently); `-` for standard input
    #[arg(value_name = "FILE")]
    pub files: Vec<String>,

    /// Send N generated Apache combined-log lines instead of files
    #[arg(long, value_name = "N", conflicts_with = "files")]
    pub generate: Option<u64>,

    /// Seed for --generate (the same requests every time; timestamps follow the clock)
    #[arg(long, value_name = "N", requires = "generate")]
    pub seed: Option<u64>,

    /// How lines are sent [default: raw]
    #[arg(long, value_enum)]
    pub format: Option<SendFormat>,

    /// One line per record (the original demo's behaviour; costs more: each record is billed in 5 KB steps)
    #[arg(long)]
    pub one_line_per_record: bool,

    /// For a stream with a Kinesis data stream in front: the partition key of each record is this field of its
    /// JSON line (e.g. `host`: one host's lines stay in order on one shard); lines are sent as JSON, one per
    /// record. Without it, keys are random and records spread evenly
    #[arg(long, value_name = "FIELD")]
    pub partition_key: Option<String>,

    /// Largest record in bytes when packing lines (up to 1,024,000) [default: 1024000]
    #[arg(long, value_name = "BYTES")]
    pub record_size: Option<usize>,

    /// Batches in flight at once (adapts down on throttling) [default: 4]
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Send at most this many lines per second (play a file like a live log)
    #[arg(long, value_name = "LINES_PER_S", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Keep reading files as they grow and rotate, until Ctrl-C
    #[arg(long)]
    pub follow: bool,

    /// With --follow: send a partial batch after this long without new lines (0 to 1h) [default: 1s]
    #[arg(long, value_name = "DURATION", value_parser = parse_linger)]
    pub linger: Option<std::time::Duration>,

    /// Ignore saved checkpoints: send files from their first line
    #[arg(long)]
    pub from_start: bool,

    /// Give up after this long without progress (records not accepted go to the rejects file) [default: 2m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub retry_timeout: Option<std::time::Duration>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct VerifyArgs {
    /// Run id to verify [default: the latest run for the stream]
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,

    /// Run manifest files to verify together (several producers)
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub manifest: Vec<PathBuf>,

    /// Source files the delivered lines must match (no manifest needed; prints missing lines)
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub expect: Vec<PathBuf>,

    /// With --expect and no manifest: only objects delivered since this time (RFC 3339 or `1h`, `30m` ago)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Keep polling for missing lines up to this long [default: run end + buffer interval + 60 s]
    #[arg(long, value_name = "DURATION", conflicts_with = "no_wait", value_parser = parse_duration)]
    pub wait: Option<std::time::Duration>,

    /// Check once, do not wait for late objects
    #[arg(long)]
    pub no_wait: bool,

    /// Duplicated lines also fail the check (Firehose is at-least-once, so they are normally reported only)
    #[arg(long)]
    pub strict: bool,

    /// Save the downloaded objects (decompressed) in this directory
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,

    /// Also write the report as one self-contained HTML page (timeline, buffering, objects, errors, cost)
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,

    /// A transformed stream: the jq path to the field of each delivered document that carries its source line
    /// (`.line`, `.raw.message`): proves a function that stamps its output (a uuid, the time) line by line
    #[arg(long = "match", value_name = "JQ_PATH")]
    pub match_path: Option<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct TeardownArgs {
    /// Do not ask before deleting a bucket that holds objects
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Keep the bucket and its objects
    #[arg(long)]
    pub keep_bucket: bool,

    /// Also delete resources that lack the firehose-kit:managed tag
    #[arg(long)]
    pub force: bool,

    /// Do not wait for the stream to be gone
    #[arg(long)]
    pub no_wait: bool,

    /// Bucket to remove [default: the stream's destination, or firehose-kit-ACCOUNT-REGION]
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct StatusArgs {}

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// How far back to look for delivery errors in the stream's error log
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub since: std::time::Duration,

    /// The buffer size you expect the stream to have (MiB); a different one is a warning
    #[arg(long, value_name = "MIB")]
    pub buffer_size: Option<u32>,

    /// The buffer interval you expect the stream to have (`60`, `5m`); a different one is a warning
    #[arg(long, value_name = "DURATION", value_parser = parse_whole_seconds)]
    pub buffer_interval: Option<std::time::Duration>,
}

#[derive(Debug, Clone, Args)]
pub struct LocalArgs {
    /// Listen address; port 0 picks a free port and prints it
    #[arg(long, value_name = "HOST:PORT", default_value = crate::firehose::contract::DEFAULT_ADDR)]
    pub addr: String,

    /// Allow a non-loopback listen address. Requests are checked against --secret only, and Lambda functions run
    /// their code on this host: a secret of your own is required, and --no-functions is advised
    #[arg(long)]
    pub allow_remote: bool,

    /// Refuse to create or run Lambda functions (no function code runs on this host): CreateFunction and code
    /// updates are refused, and a stream's Lambda processor fails its invocations
    #[arg(long)]
    pub no_functions: bool,

    /// Where buckets, objects, streams, roles and record journals are kept [default: <state-dir>/local]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// How long a new stream stays CREATING
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub create_delay: std::time::Duration,

    /// How long a deleted stream stays DELETING
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub delete_delay: std::time::Duration,

    /// How long a new or changed role cannot be assumed by Firehose or Lambda (reproduces IAM propagation)
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub iam_propagation_delay: std::time::Duration,

    /// Direct Put throughput quota per stream: a region (us-east-1: 5 MiB/s; us-east-2: 1 MiB/s), `none`, or MiB/s,requests/s,records/s
    #[arg(long, value_name = "QUOTA", default_value = "none")]
    pub quota: crate::firehose::quota::QuotaSpec,

    /// Fail each record with this probability (per-entry ServiceUnavailableException / InternalFailure)
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub fail_rate: f64,

    /// Seed for --fail-rate, for repeatable runs
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Account id reported by STS and used in ARNs
    #[arg(long, value_name = "ID", default_value = crate::firehose::contract::DEFAULT_ACCOUNT_ID)]
    pub account_id: String,

    /// The secret requests must be signed with (any access key id is accepted); required, and not `test`, with
    /// --allow-remote
    #[arg(long, value_name = "S", env = "FIREHOSE_KIT_LOCAL_SECRET", hide_env_values = true, default_value = crate::firehose::contract::DEFAULT_SECRET)]
    pub secret: String,

    /// Memory for buffered records, all streams together (e.g. 256MiB, 1GiB); beyond it they stay on disk only
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub memory_limit: ByteSize,

    /// Also accept virtual-hosted S3 requests to <bucket>.NAME (<bucket>.localhost always works)
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// Make delivery attempts to S3 fail with CODE (S3.AccessDenied, S3.NoSuchBucket, InternalError, ...), with
    /// probability P (default 1); failures are retried and logged as AWS logs them
    #[arg(long, value_name = "CODE[:P]")]
    pub fail_delivery: Option<crate::firehose::failures::FailDelivery>,

    /// How long data that cannot be delivered is retried before it is dropped (AWS: 24 hours)
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub delivery_retry_horizon: std::time::Duration,

    /// Active partitions per dynamically partitioned stream; records for more go to the error output (AWS: 500)
    #[arg(long, value_name = "N", default_value_t = crate::firehose::partitioning::DEFAULT_PARTITION_LIMIT, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub partition_limit: usize,

    /// Sync every acknowledged record (and each delivery's progress) to disk before answering: they then survive a
    /// machine crash or power loss, not only a killed emulator (slower; see docs/benchmarks.md)
    #[arg(long)]
    pub fsync: bool,

    /// Run buffering intervals, retry backoff and lifecycle delays N times faster (1 = AWS timing), so real
    /// settings (60 s intervals) finish quickly in tests and demos
    #[arg(long, value_name = "N", default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
}

/// `--speed`: a finite factor from 1 to 10,000.
pub fn parse_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number (expected a factor like 10)"))?;
    if !v.is_finite() || !(1.0..=10_000.0).contains(&v) {
        return Err(format!("`{s}` is out of range: expected 1 to 10000"));
    }
    Ok(v)
}

/// A size in bytes, from `1048576`, `512KiB`, `256MiB`, `1GiB` (or KB/MB/GB, powers of 1000).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteSize(pub usize);

fn parse_size(s: &str) -> Result<ByteSize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let factor: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(format!("`{s}` is not a size like 256MiB, 1GiB or 1048576")),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .map(ByteSize)
        .ok_or_else(|| format!("`{s}` is not a size like 256MiB, 1GiB or 1048576"))
}

#[derive(Debug, Clone, Default, Args)]
pub struct DemoArgs {
    /// Generated lines to send
    #[arg(long, value_name = "N", default_value_t = 200_000)]
    pub lines: u64,

    /// Keep the emulator's data dir (and, on an external backend, the resources) and print where they are
    #[arg(long)]
    pub keep: bool,

    /// Buffering interval for the demo stream (short, so the demo finishes quickly)
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_whole_seconds)]
    pub buffer_interval: std::time::Duration,

    /// Where to write the run's HTML report
    #[arg(long, value_name = "FILE.html", default_value = "firehose-kit-demo-report.html")]
    pub report: PathBuf,

    /// Partition the objects by fields of each line (status, method, host, date, hour), e.g. `--partition-by status`;
    /// the embedded emulator then runs 60 s intervals 12× faster
    #[arg(long, value_name = "KEY,...", value_delimiter = ',')]
    pub partition_by: Vec<String>,

    /// Transform the records with a Lambda function: without a value, the Apache → JSON handler
    /// (templates/transform/apache_to_json.py, built in); with one, your handler file, directory or function ARN
    #[arg(long, value_name = "PATH|ARN", num_args = 0..=1, default_missing_value = "")]
    pub transform: Option<String>,

    /// Deliver Parquet typed by a Glue table (`setup --format parquet`): verify proves each line is one row with
    /// equal typed fields
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<RecordFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Combined,
    Common,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Number of lines [default: endless]
    #[arg(long, value_name = "N")]
    pub lines: Option<u64>,

    /// Lines per second [default: as fast as possible]
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Seed for repeatable requests (clients, paths, statuses, sizes); timestamps still follow the clock unless
    /// --start fixes them too
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// The first line's timestamp (RFC 3339, e.g. 2026-01-01T00:00:00Z): with --seed, the same lines every time
    #[arg(long, value_name = "TIME", value_parser = parse_time, conflicts_with = "rate")]
    pub start: Option<chrono::DateTime<chrono::Utc>>,

    /// Apache log format
    #[arg(long, value_enum, default_value = "combined")]
    pub format: LogFormat,
}

/// The command reference (`docs/cli.md`), rendered from these definitions: the top-level help and every
/// command's help, at a fixed width so the document is the same on every machine.
pub fn reference_markdown() -> String {
    use clap::CommandFactory;
    let mut cmd = Cli::command().term_width(100).max_term_width(100);
    cmd.build();
    let mut out = String::from(
        "# Command reference\n\nGenerated from the command-line definitions (`make docs`); a test fails when this file and \
`--help` disagree.\n\n## firehose-kit\n\n```text\n",
    );
    out.push_str(cmd.render_long_help().to_string().trim_end());
    out.push_str("\n```\n");
    let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).filter(|n| n != "help").collect();
    for name in names {
        let sub = cmd.find_subcommand_mut(&name).expect("listed above");
        out.push_str(&format!("\n## firehose-kit {name}\n\n```text\n"));
        out.push_str(sub.render_long_help().to_string().trim_end());
        out.push_str("\n```\n");
    }
    out
}

/// The longest time any option accepts: a year (so deadlines computed from it never overflow a clock).
pub const MAX_SECONDS: u64 = 365 * 24 * 3600;

/// Checks a whole number of seconds from a settings file (flags are checked by their parser).
pub fn check_seconds(name: &str, value: u64) -> Result<u64, String> {
    if value > MAX_SECONDS {
        return Err(format!("{name} {value} is out of range: expected 0 to {MAX_SECONDS} seconds (a year)"));
    }
    Ok(value)
}

/// Every duration option: a plain number of seconds (`90`, `1.5`) or a value with units (`90s`, `500ms`, `2m`,
/// `24h`), from 0 to a year.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let d = match t.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 && secs <= MAX_SECONDS as f64 => {
            std::time::Duration::from_secs_f64(secs)
        }
        Ok(secs) if secs.is_finite() && secs > MAX_SECONDS as f64 => {
            return Err(format!("`{s}` is longer than a year"));
        }
        Ok(_) => {
            return Err(format!(
                "`{s}` is not a duration: expected seconds (90) or a value with units (90s, 500ms, 2m)"
            ));
        }
        Err(_) => humantime::parse_duration(t).map_err(|e| {
            format!("`{s}` is not a duration: expected seconds (90) or a value with units (90s, 500ms, 2m): {e}")
        })?,
    };
    if d.as_secs() > MAX_SECONDS {
        return Err(format!("`{s}` is longer than a year"));
    }
    Ok(d)
}

/// A duration that must be whole seconds (Firehose's buffering interval): `60`, `60s`, `5m`.
pub fn parse_whole_seconds(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if d.subsec_nanos() != 0 {
        return Err(format!("`{s}` is not a whole number of seconds"));
    }
    Ok(d)
}

/// An RFC 3339 time.
fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 time like 2026-01-01T00:00:00Z: {e}"))
}

fn finite(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a finite number")),
    }
}

fn parse_probability(s: &str) -> Result<f64, String> {
    match finite(s) {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}` is not a probability between 0 and 1")),
    }
}

/// A rate in lines per second: from one line in 1,000 s to a billion per second.
pub fn check_rate(rate: f64) -> Result<f64, String> {
    if rate.is_finite() && (0.001..=1e9).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not a rate between 0.001 and 1000000000 lines per second"))
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    check_rate(finite(s)?).map_err(|_| format!("`{s}` is not a rate between 0.001 and 1000000000 lines per second"))
}

/// `--linger`: 0 to an hour.
pub fn check_linger(d: std::time::Duration) -> Result<std::time::Duration, String> {
    if d <= std::time::Duration::from_secs(3600) {
        Ok(d)
    } else {
        Err(format!("{} is longer than an hour", humantime::format_duration(d)))
    }
}

fn parse_linger(s: &str) -> Result<std::time::Duration, String> {
    check_linger(parse_duration(s)?).map_err(|_| format!("`{s}` is not a duration between 0 and 1h"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example_in_its_help() {
        for sub in Cli::command().get_subcommands() {
            let help = sub.get_after_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(help.contains("Examples:") && help.contains("firehose-kit"), "{} lacks examples", sub.get_name());
        }
    }

    #[test]
    fn docs_cli_md_matches_the_help() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md");
        let rendered = reference_markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &rendered).unwrap();
        }
        let current = std::fs::read_to_string(path).unwrap_or_default();
        assert!(current == rendered, "docs/cli.md differs from --help: run `make docs` and commit the result");
    }

    #[test]
    fn bad_durations_and_probabilities_name_the_value() {
        assert!(parse_duration("2x").unwrap_err().contains("`2x`"));
        assert!(parse_duration("600000000000s").unwrap_err().contains("year"));
        assert!(parse_duration("600000000000").unwrap_err().contains("year"));
        assert_eq!(parse_duration("90").unwrap(), std::time::Duration::from_secs(90));
        assert_eq!(parse_duration("1.5").unwrap(), std::time::Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), std::time::Duration::from_secs(120));
        assert!(parse_whole_seconds("1.5").is_err());
        assert_eq!(parse_whole_seconds("5m").unwrap(), std::time::Duration::from_secs(300));
        assert!(parse_probability("1.5").unwrap_err().contains("`1.5`"));
        assert!(parse_probability("NaN").is_err());
        assert_eq!(parse_duration("250ms").unwrap(), std::time::Duration::from_millis(250));
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("256MiB").unwrap(), ByteSize(256 << 20));
        assert_eq!(parse_size("1GiB").unwrap(), ByteSize(1 << 30));
        assert_eq!(parse_size("1048576").unwrap(), ByteSize(1 << 20));
        assert_eq!(parse_size("2MB").unwrap(), ByteSize(2_000_000));
        for bad in ["", "-1", "1.5GiB", "12XB", "99999999999999999999GiB", "inf"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_refuse_inf_nan_negatives_and_overflow() {
        for bad in ["inf", "-inf", "NaN", "-1", "0", "1e-9", "1e300", "x"] {
            assert!(parse_rate(bad).is_err(), "rate {bad}");
        }
        for bad in ["inf", "NaN", "-0.5", "3601", "1e400", "2h"] {
            assert!(parse_linger(bad).is_err(), "linger {bad}");
        }
        assert_eq!((parse_rate("50").unwrap(), parse_linger("0").unwrap()), (50.0, std::time::Duration::ZERO));
        let err = |args: &[&str]| Cli::try_parse_from_args(args.iter().copied()).unwrap_err().exit_code();
        assert_eq!(err(&["firehose-kit", "send", "--generate", "1", "--retry-timeout", "18446744073709551615"]), 2);
        assert_eq!(err(&["firehose-kit", "send", "--generate", "1", "--retry-timeout", "18446744073709551616"]), 2);
        assert_eq!(err(&["firehose-kit", "send", "--generate", "-5"]), 2);
        assert_eq!(err(&["firehose-kit", "verify", "--wait", "99999999999"]), 2);
    }

    #[test]
    fn local_beats_an_inherited_endpoint_but_not_a_typed_one() {
        let cli = Cli::try_parse_from_args(["firehose-kit", "--local", "status"]).unwrap();
        assert!(cli.global.local && cli.global.endpoint_url.is_none() && cli.global.explicit_backend);
        let both = ["firehose-kit", "--local", "--endpoint-url", "http://127.0.0.1:1", "status"];
        assert_eq!(Cli::try_parse_from_args(both).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn global_options_have_their_own_heading_in_every_help() {
        let mut cmd = Cli::command();
        cmd.build();
        for sub in cmd.get_subcommands_mut().filter(|s| s.get_name() != "help") {
            let help = sub.render_long_help().to_string();
            let heading =
                help.find("Global options:").unwrap_or_else(|| panic!("{}: no heading\n{help}", sub.get_name()));
            let region = help.find("--region").unwrap();
            assert!(region > heading, "{}: --region is listed before the Global options heading", sub.get_name());
        }
    }
}
