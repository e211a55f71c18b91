//! `make soak`: `firehose-kit local` under steady load for N minutes (`SOAK_MINUTES`, 10 by default) while
//! delivery failures are switched on and off (every other minute the delivery roles lose their S3 permissions but
//! keep the logging one, so every delivery attempt fails with `S3.AccessDenied` and is logged to CloudWatch Logs;
//! then setup repairs them). Every 5 s it samples the emulator's resident memory, open file descriptors, threads and the size of its
//! state (journals and metadata; delivered objects and CloudWatch Logs events are counted apart: they are data
//! the services keep). The emulator runs with `--memory-limit 32MiB`, so the bound on buffered records is reached
//! during warm-up. Afterwards every acknowledged record must be delivered exactly once, and each series must stay
//! bounded: the load is periodic (one failing minute, one healthy), so a series is judged by its peak in each
//! two-minute cycle after the first (state on disk by its floor: 64 MiB journal segments roll out of phase with the
//! cycle, so its peaks beat), and the slope of those must be near zero (the straight-line slope is reported too).
//! It also times PutLogEvents of one event on an empty log stream and on one holding 100,000 events (six days of a failing stream's errors), to show the cost per event does not grow.
//!
//! Writes `docs/soak.svg` and the soak section of `docs/benchmarks.md`; prints one JSON document. Usage:
//! `soak FIREHOSE_KIT_BINARY` (the release build).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use firehose_kit::loadgen::{self, LoadSpec};
use firehose_kit::settings::Connection;
use plotters::prelude::*;
use serde::Serialize;

const STREAMS: [&str; 2] = ["Soak0", "Soak1"];
const BUCKET: &str = "firehose-kit-000000000000-us-east-2";
const SECTION_START: &str = "<!-- soak: written by make soak -->";
const SECTION_END: &str = "<!-- /soak -->";

#[derive(Debug, Clone, Serialize)]
struct Sample {
    seconds: f64,
    rss_mib: f64,
    fds: u64,
    threads: u64,
    state_mib: f64,
    objects_mib: f64,
    logs_mib: f64,
    failing: bool,
}

#[derive(Debug, Serialize)]
struct Slopes {
    rss_mib_per_min: f64,
    /// Resident memory's cycle floors (what stays once a cycle's buffers are delivered).
    rss_floor_mib_per_min: f64,
    fds_per_min: f64,
    threads_per_min: f64,
    state_mib_per_min: f64,
}

fn proc_status(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn sample(pid: u32, data: &Path, started: Instant, failing: bool) -> Sample {
    let all = dir_bytes(data) as f64;
    let objects = dir_bytes(&data.join("s3")) as f64;
    let logs = dir_bytes(&data.join("logs")) as f64;
    Sample {
        seconds: started.elapsed().as_secs_f64(),
        rss_mib: proc_status(pid, "VmRSS:") as f64 / 1024.0,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64).unwrap_or(0),
        threads: proc_status(pid, "Threads:"),
        state_mib: (all - objects - logs) / 1048576.0,
        objects_mib: objects / 1048576.0,
        logs_mib: logs / 1048576.0,
        failing,
    }
}

/// The length of one failure cycle (a failing minute, then a healthy one).
const CYCLE_S: f64 = 120.0;

/// The peak (or, with `f64::min`, the floor) of `f` in each complete cycle after the first (warm-up), as (cycle
/// midpoint s, value).
fn cycle_peaks(samples: &[Sample], f: fn(&Sample) -> f64, pick: fn(f64, f64) -> f64) -> Vec<(f64, f64)> {
    let end = samples.last().map_or(0.0, |s| s.seconds);
    let cycles = (end / CYCLE_S).floor() as usize;
    (1..cycles)
        .map(|c| {
            let (from, to) = (c as f64 * CYCLE_S, (c + 1) as f64 * CYCLE_S);
            let mut values = samples.iter().filter(|s| s.seconds >= from && s.seconds < to).map(f);
            let first = values.next().unwrap_or(0.0);
            let peak = values.fold(first, pick);
            (from + CYCLE_S / 2.0, peak)
        })
        .collect()
}

/// Least-squares slope of `y` over minutes.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let num: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    if den == 0.0 { 0.0 } else { num / den * 60.0 }
}

fn kit(bin: &Path, endpoint: &str, args: &[&str]) {
    let out = Command::new(bin)
        .args(["--endpoint-url", endpoint, "--no-progress", "-q"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-2")
        .output()
        .expect("run firehose-kit");
    assert!(out.status.success(), "firehose-kit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn start_emulator(bin: &Path, data: &Path) -> (Child, String) {
    let mut child = Command::new(bin)
        .args(["local", "--addr", "127.0.0.1:0", "--create-delay", "0s", "--speed", "10", "--memory-limit", "32MiB"])
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start firehose-kit local");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let endpoint = line.split_whitespace().find(|w| w.starts_with("http://")).expect("an endpoint").to_string();
    (child, endpoint)
}

/// Seconds per PutLogEvents of one event (median of `n`), on a stream holding `holding` events first.
async fn put_log_cost(c: &firehose_kit::aws::Clients, stream: &str, holding: usize, n: usize) -> f64 {
    use aws_sdk_cloudwatchlogs::types::InputLogEvent;
    let group = "/soak/cost";
    let _ = c.logs.create_log_group().log_group_name(group).send().await;
    c.logs.create_log_stream().log_group_name(group).log_stream_name(stream).send().await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let event = |i: usize| {
        InputLogEvent::builder()
            .timestamp(now)
            .message(format!("{{\"errorCode\":\"S3.AccessDenied\",\"n\":{i}}}"))
            .build()
            .unwrap()
    };
    for chunk in (0..holding).collect::<Vec<_>>().chunks(10_000) {
        let events: Vec<InputLogEvent> = chunk.iter().map(|&i| event(i)).collect();
        c.logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(events))
            .send()
            .await
            .unwrap();
    }
    let mut times = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        c.logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .log_events(event(i))
            .send()
            .await
            .unwrap();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.total_cmp(b));
    times[n / 2]
}

fn chart(samples: &[Sample], path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let minutes = |s: &Sample| s.seconds / 60.0;
    let x_max = samples.last().map(minutes).unwrap_or(1.0).max(0.1);
    let root = SVGBackend::new(path, (880, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((2, 2));
    type Series = (&'static str, fn(&Sample) -> f64, RGBColor);
    let series: [Series; 4] = [
        ("resident memory (MiB)", |s| s.rss_mib, RGBColor(0x1f, 0x6f, 0xb4)),
        ("open file descriptors", |s| s.fds as f64, RGBColor(0x2c, 0xa0, 0x2c)),
        ("threads", |s| s.threads as f64, RGBColor(0x94, 0x67, 0xbd)),
        ("state on disk (MiB; objects and logs apart)", |s| s.state_mib, RGBColor(0xe0, 0x7b, 0x10)),
    ];
    for (panel, (title, value, color)) in panels.iter().zip(series) {
        let y_max = samples.iter().map(value).fold(1.0, f64::max) * 1.2;
        let mut c = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
        // Bold grid lines only: the light ones would be most of the file.
        c.configure_mesh().x_desc("minutes").light_line_style(TRANSPARENT).draw()?;
        // Failure windows shaded.
        let mut start = None;
        for s in samples.iter().chain(std::iter::once(&Sample { failing: false, ..samples[samples.len() - 1].clone() }))
        {
            match (s.failing, start) {
                (true, None) => start = Some(minutes(s)),
                (false, Some(a)) => {
                    c.draw_series(std::iter::once(Rectangle::new(
                        [(a, 0.0), (minutes(s), y_max)],
                        RGBColor(250, 225, 225).filled(),
                    )))?;
                    start = None;
                }
                _ => {}
            }
        }
        c.draw_series(LineSeries::new(samples.iter().map(|s| (minutes(s), value(s))), color.stroke_width(2)))?;
    }
    root.present()?;
    Ok(())
}

fn write_section(doc: &Path, text: &str) -> std::io::Result<()> {
    let old = std::fs::read_to_string(doc).unwrap_or_default();
    let section = format!("{SECTION_START}\n{text}\n{SECTION_END}");
    let new = match (old.find(SECTION_START), old.find(SECTION_END)) {
        (Some(a), Some(b)) => format!("{}{section}{}", &old[..a], &old[b + SECTION_END.len()..]),
        _ => format!("{}\n{section}\n", old.trim_end()),
    };
    std::fs::write(doc, new)
}

/// Everything a soak run measured.
struct Soak {
    minutes: f64,
    samples: Vec<Sample>,
    load: loadgen::LoadReport,
    check: loadgen::DeliveryCheck,
    logged: usize,
    cost_empty: f64,
    cost_full: f64,
    peaks: Slopes,
    straight: Slopes,
}

/// The most resident memory may rise per minute, by its cycle peaks and by its floors: an hour's rise of 15 MiB
/// (a growth of about 0.5 MiB/min, floors and peaks alike, fails).
const RSS_MIB_PER_MIN: f64 = 0.25;

impl Soak {
    fn passed(&self) -> bool {
        let p = &self.peaks;
        let bounded = p.fds_per_min.abs() < 1.0
            && p.threads_per_min.abs() < 1.0
            && p.rss_mib_per_min < RSS_MIB_PER_MIN
            && p.rss_floor_mib_per_min < RSS_MIB_PER_MIN
            && p.state_mib_per_min.abs() < 2.0;
        bounded && self.check.exactly_once()
    }
}

/// The slopes of `samples`: of the cycle peaks (the verdict), and straight through every sample after warm-up.
fn slopes(samples: &[Sample]) -> (Slopes, Slopes) {
    let peaks = |f: fn(&Sample) -> f64| slope(&cycle_peaks(samples, f, f64::max));
    let warm: Vec<&Sample> = samples.iter().filter(|s| s.seconds >= CYCLE_S).collect();
    let line = |f: fn(&Sample) -> f64| slope(&warm.iter().map(|s| (s.seconds, f(s))).collect::<Vec<_>>());
    let of = |g: &dyn Fn(fn(&Sample) -> f64) -> f64| Slopes {
        rss_mib_per_min: g(|s| s.rss_mib),
        rss_floor_mib_per_min: 0.0,
        fds_per_min: g(|s| s.fds as f64),
        threads_per_min: g(|s| s.threads as f64),
        state_mib_per_min: g(|s| s.state_mib),
    };
    // State on disk is judged by its floor in each cycle: journals grow in 64 MiB segments that are removed once
    // delivered, and their rolls drift against the two-minute cycle, so the peaks beat (a 10-minute run sees one
    // rising half of that beat); a leak raises the floor.
    // Its warm-up is longer: a journal's first segment is removed only once it is full and delivered (about two
    // minutes for the slower stream here), so the floors count from the third cycle.
    let floors: Vec<(f64, f64)> = cycle_peaks(samples, |s| s.state_mib, f64::min).into_iter().skip(1).collect();
    let floors = slope(&floors);
    // Resident memory by its floors too: a leak, or an allocator that keeps what was freed, raises them.
    let rss_floors = slope(&cycle_peaks(samples, |s| s.rss_mib, f64::min));
    let line_floors = Slopes { rss_floor_mib_per_min: rss_floors, ..of(&line) };
    (Slopes { state_mib_per_min: floors, rss_floor_mib_per_min: rss_floors, ..of(&peaks) }, line_floors)
}

/// Samples the emulator every 5 s for `minutes` while the delivery roles lose their policy every other minute
/// (and setup repairs them), and returns the samples; the roles are repaired at the end.
async fn sample_while_failing(
    bin: &Path,
    endpoint: &str,
    clients: &firehose_kit::aws::Clients,
    (pid, data): (u32, &Path),
    minutes: f64,
) -> Result<Vec<Sample>, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut failing = false;
    while started.elapsed().as_secs_f64() < minutes * 60.0 {
        let minute = (started.elapsed().as_secs_f64() / 60.0) as u64;
        let want_failing = minute % 2 == 1;
        if want_failing != failing {
            for s in STREAMS {
                if want_failing {
                    // The S3 permissions go, the logging one stays: every delivery fails and is logged.
                    let role = format!("firehose-kit-{s}-delivery");
                    let log_stream = format!(
                        "arn:aws:logs:us-east-2:000000000000:log-group:/aws/kinesisfirehose/{s}:log-stream:DestinationDelivery"
                    );
                    let logging_only = serde_json::json!({"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": log_stream}]});
                    clients
                        .iam
                        .put_role_policy()
                        .role_name(&role)
                        .policy_name("s3-delivery")
                        .policy_document(logging_only.to_string())
                        .send()
                        .await?;
                } else {
                    kit(bin, endpoint, &["--stream", s, "setup"]);
                }
            }
            failing = want_failing;
        }
        samples.push(sample(pid, data, started, failing));
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    Ok(samples)
}

/// Delivery errors logged to each stream's error log group.
async fn count_logged(clients: &firehose_kit::aws::Clients) -> Result<usize, Box<dyn std::error::Error>> {
    let mut logged = 0usize;
    for s in STREAMS {
        let mut token = None;
        loop {
            let out = clients
                .logs
                .filter_log_events()
                .log_group_name(format!("/aws/kinesisfirehose/{s}"))
                .set_next_token(token)
                .send()
                .await?;
            logged += out.events().len();
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(logged)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default()
}

/// The soak section of docs/benchmarks.md.
fn section(r: &Soak) -> String {
    let cpu = cpu_model();
    let max = |f: fn(&Sample) -> f64| r.samples.iter().map(f).fold(0.0, f64::max);
    format!(
        "## Soak: {:.0} minutes under load, failures on and off\n\n\
`make soak` ({}, {cpu}): `firehose-kit local --speed 10` under four producers ({} records acknowledged, {:.1} MB/s), \
every other minute with the delivery roles' S3 permissions removed (every delivery fails with S3.AccessDenied, \
is retried and logged: the logging permission stays) and then repaired by setup; `--memory-limit 32MiB`. Sampled \
every 5 s. The load is periodic, so a series is judged by its peak in each two-minute cycle after the first \
(warm-up), state on disk by its floor from the third cycle (journals grow in 64 MiB segments removed once full \
and delivered; their rolls drift against the cycle, so the peaks beat while a leak would raise the floor): the \
slope of those must be near zero. \
Resident memory is judged by its floors as well as its peaks, each rising less than {:.2} MiB a minute. \
The straight-line slope over every sample after warm-up is shown beside it.\n\n\
![Resident memory, file descriptors, threads and state on disk over the soak; failure minutes shaded](soak.svg)\n\n\
| series | peak | slope of cycle peaks (state: floors) | straight-line slope |\n|---|---|---|---|\n\
| resident memory | {:.0} MiB | {:+.2} MiB/min (floors {:+.2}) | {:+.2} MiB/min |\n\
| open file descriptors | {:.0} | {:+.2} /min | {:+.2} /min |\n\
| threads | {:.0} | {:+.2} /min | {:+.2} /min |\n\
| state on disk (journals, metadata) | {:.1} MiB | {:+.2} MiB/min | {:+.2} MiB/min |\n\
| CloudWatch Logs events on disk | {:.1} MiB | (the data) | |\n\
| delivered objects on disk | {:.0} MiB | (the data) | |\n\n\
Delivery: {} of {} acknowledged records delivered, {} duplicated, {} missing ({}); {} delivery errors logged. \
CloudWatch Logs: one PutLogEvents of one event took {:.2} ms on an empty log stream and {:.2} ms on one holding \
100,000 events (six days of a failing stream's errors): the events are appended, never the whole log rewritten. \
Verdict: **{}**.",
        r.minutes,
        if r.minutes >= 10.0 { "the full run" } else { "a short run" },
        r.load.records,
        r.load.mb_per_s,
        RSS_MIB_PER_MIN,
        max(|s| s.rss_mib),
        r.peaks.rss_mib_per_min,
        r.peaks.rss_floor_mib_per_min,
        r.straight.rss_mib_per_min,
        max(|s| s.fds as f64),
        r.peaks.fds_per_min,
        r.straight.fds_per_min,
        max(|s| s.threads as f64),
        r.peaks.threads_per_min,
        r.straight.threads_per_min,
        max(|s| s.state_mib),
        r.peaks.state_mib_per_min,
        r.straight.state_mib_per_min,
        max(|s| s.logs_mib),
        max(|s| s.objects_mib),
        r.check.delivered,
        r.check.acknowledged,
        r.check.duplicated,
        r.check.missing,
        if r.check.exactly_once() { "exactly once" } else { "NOT exactly once" },
        r.logged,
        r.cost_empty * 1000.0,
        r.cost_full * 1000.0,
        if r.passed() { "bounded, every acknowledged record delivered once" } else { "FAILED" },
    )
}

/// Runs the load and the failures against a fresh emulator, then checks delivery and times CloudWatch Logs.
async fn soak(bin: &Path, minutes: f64) -> Result<Soak, Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    let data = work.path().join("data");
    let (mut emulator, endpoint) = start_emulator(bin, &data);
    let connection = Connection {
        profile: None,
        region: Some("us-east-2".into()),
        endpoint_url: Some(endpoint.clone()),
        test_credentials: true,
    };
    let clients = firehose_kit::aws::Clients::connect(&connection).await?;
    for s in STREAMS {
        kit(bin, &endpoint, &["--stream", s, "setup", "--buffer-size", "1", "--buffer-interval", "10"]);
    }
    let spec = LoadSpec {
        streams: STREAMS.iter().map(|s| s.to_string()).collect(),
        clients_per_stream: vec![2, 2],
        batch_records: 200,
        record_size: 300,
        paced: STREAMS.iter().map(|s| (s.to_string(), Duration::from_millis(100))).collect(),
        duration: Duration::from_secs_f64(minutes * 60.0 + 3600.0),
    };
    let stop = loadgen::Stop::new();
    let load = tokio::spawn({
        let (clients, stop) = (clients.clone(), stop.clone());
        async move { loadgen::run_until(&clients, &spec, stop).await }
    });
    let samples = sample_while_failing(bin, &endpoint, &clients, (emulator.id(), &data), minutes).await?;
    stop.cancel();
    let (load, outcomes) = load.await?;
    for s in STREAMS {
        kit(bin, &endpoint, &["--stream", s, "setup"]);
    }
    let check = loadgen::check_outcomes(&clients, BUCKET, &outcomes, Duration::from_secs(180)).await?;
    let logged = count_logged(&clients).await?;
    let cost_empty = put_log_cost(&clients, "empty", 0, 200).await;
    let cost_full = put_log_cost(&clients, "full", 100_000, 200).await;
    let _ = emulator.kill();
    let _ = emulator.wait();
    let (peaks, straight) = slopes(&samples);
    Ok(Soak { minutes, samples, load, check, logged, cost_empty, cost_full, peaks, straight })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bin = PathBuf::from(std::env::args().nth(1).ok_or("usage: soak FIREHOSE_KIT_BINARY")?);
    let minutes: f64 = std::env::var("SOAK_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(10.0);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let r = soak(&bin, minutes).await?;
    chart(&r.samples, &root.join("docs/soak.svg"))?;
    write_section(&root.join("docs/benchmarks.md"), &section(&r))?;
    println!(
        "{}",
        serde_json::json!({"passed": r.passed(), "slopes": r.peaks, "straight_slopes": r.straight, "check": r.check,
            "load": r.load, "samples": r.samples.len(),
            "put_log_events_s": {"empty": r.cost_empty, "holding_100k": r.cost_full}})
    );
    if r.passed() { Ok(()) } else { Err("the soak run failed (see above)".into()) }
}
