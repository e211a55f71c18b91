//! All terminal output policy. Results go to stdout (text or one JSON document), status to stderr. Core code
//! reports progress through the [`Reporter`] trait; only this module touches indicatif and the terminal.
//!
//! Progress bars hide under `--quiet`, `--no-progress`, `-v` logging, and when stderr is not a terminal; on a
//! non-terminal a plain status line is printed every few seconds instead, so CI logs still show life.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::OutputFormat;

/// What a progress task counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Items,
    Bytes,
}

/// A unit of visible work: a bar with a known total, or a spinner without one.
pub trait Task: Send + Sync {
    fn set_position(&self, pos: u64);
    fn set_total(&self, total: u64);
    fn set_message(&self, message: String);
    /// Ends the task, leaving `message` as its last line.
    fn finish(&self, message: String);
}

/// How core code reports progress and notes.
pub trait Reporter: Send + Sync {
    /// Starts a task labelled `label`.
    fn task(&self, label: &str, total: Option<u64>, unit: Unit) -> Box<dyn Task>;
    /// A one-line status note on stderr (hidden by `--quiet`).
    fn note(&self, message: &str);
    /// A warning on stderr (always shown).
    fn warn(&self, message: &str);
}

/// Output policy resolved from the global options.
#[derive(Clone)]
pub struct Printer {
    format: OutputFormat,
    quiet: bool,
    bars: bool,
    plain_progress: bool,
    multi: MultiProgress,
    /// `firehose-kit` with the global options of this invocation: every command printed in backticks gets them
    /// (see [`runnable`]).
    command: Option<Arc<str>>,
}

/// Makes the commands in `text` run as printed: each backticked `firehose-kit <command>` gets the global
/// options of this invocation (`prefix`, e.g. `firehose-kit --local --stream S`), unless it already has global
/// options or is one whose meaning they would change (`local`, `demo`, `generate`, `completions` start their own
/// things). Hints anywhere in the code can then name a command plainly and be right for this stream, backend
/// and state dir.
pub fn runnable(text: &str, prefix: &str) -> String {
    const START: &str = "`firehose-kit ";
    if prefix == "firehose-kit" || !text.contains(START) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(at) = rest.find(START) {
        let after = &rest[at + START.len()..];
        out.push_str(&rest[..at]);
        let standalone = ["local", "demo", "generate", "completions"]
            .iter()
            .any(|c| after.strip_prefix(c).is_some_and(|r| r.starts_with([' ', '`'])));
        if after.starts_with("--") || standalone {
            // Global options given already: the command stays as it is.
            out.push_str(START);
        } else {
            out.push('`');
            out.push_str(prefix);
            out.push(' ');
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

impl Printer {
    pub fn new(format: OutputFormat, quiet: bool, verbose: u8, no_progress: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bars = tty && !quiet && verbose == 0 && !no_progress;
        let plain_progress = !tty && !quiet && !no_progress;
        let multi = MultiProgress::with_draw_target(if bars {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Printer { format, quiet, bars, plain_progress, multi, command: None }
    }

    /// Commands printed in backticks get the global options of `prefix` (see [`runnable`]).
    pub fn with_commands(mut self, prefix: String) -> Self {
        self.command = Some(prefix.into());
        self
    }

    fn runnable(&self, text: &str) -> String {
        match &self.command {
            Some(prefix) => runnable(text, prefix),
            None => text.to_string(),
        }
    }

    /// A printer that shows nothing but results (tests, nested commands).
    pub fn silent() -> Self {
        Printer {
            format: OutputFormat::Text,
            quiet: true,
            bars: false,
            plain_progress: false,
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            command: None,
        }
    }

    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// Prints a text result on stdout (nothing in JSON mode).
    pub fn result(&self, text: &str) {
        if !self.json() {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", self.runnable(text));
        }
    }

    /// Prints the JSON document on stdout (only in JSON mode).
    pub fn result_json(&self, value: &serde_json::Value) {
        if self.json() {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(value).unwrap_or_default());
        }
    }

    /// A status line on stderr.
    pub fn status(&self, message: &str) {
        if !self.quiet {
            let message = self.runnable(message);
            let _ = self.multi.println(&message);
            if !self.bars {
                eprintln!("{message}");
            }
        }
    }

    /// Asks a yes/no question on the terminal; `None` when there is no terminal to ask on.
    pub fn confirm(&self, question: &str) -> Option<bool> {
        if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
            return None;
        }
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).ok()?;
        Some(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
    }

    pub fn reporter(&self) -> Arc<dyn Reporter> {
        Arc::new(self.clone())
    }
}

impl Reporter for Printer {
    fn task(&self, label: &str, total: Option<u64>, unit: Unit) -> Box<dyn Task> {
        if self.bars {
            let bar = match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            };
            let template = match (total.is_some(), unit) {
                (true, Unit::Bytes) => {
                    "{spinner:.green} {prefix:.bold} [{bar:30.cyan/blue}] {bytes}/{total_bytes} ({eta}) {msg}"
                }
                (true, Unit::Items) => {
                    "{spinner:.green} {prefix:.bold} [{bar:30.cyan/blue}] {human_pos}/{human_len} ({eta}) {msg}"
                }
                (false, _) => "{spinner:.green} {prefix:.bold} {elapsed} {msg}",
            };
            bar.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
            bar.set_prefix(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            let bar = self.multi.add(bar);
            Box::new(BarTask { bar })
        } else if self.quiet {
            Box::new(NoTask)
        } else {
            // Without bars: a line every few seconds on a non-terminal, and the final line either way.
            Box::new(PlainTask::new(label, total, unit, self.plain_progress))
        }
    }

    fn note(&self, message: &str) {
        self.status(message);
    }

    fn warn(&self, message: &str) {
        let line = format!("warning: {}", self.runnable(message));
        if self.bars {
            let _ = self.multi.println(&line);
        } else {
            eprintln!("{line}");
        }
    }
}

struct BarTask {
    bar: ProgressBar,
}

impl Task for BarTask {
    fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
    }
    fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }
    fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }
    fn finish(&self, message: String) {
        self.bar.set_style(ProgressStyle::with_template("{msg}").expect("valid template"));
        self.bar.finish_with_message(message);
    }
}

/// Progress for non-terminals: a plain line every few seconds, starting with `… `.
struct PlainTask {
    label: String,
    unit: Unit,
    periodic: bool,
    state: Mutex<PlainState>,
}

struct PlainState {
    pos: u64,
    total: Option<u64>,
    message: String,
    last_print: Instant,
}

const PLAIN_EVERY: Duration = Duration::from_secs(5);

impl PlainTask {
    fn new(label: &str, total: Option<u64>, unit: Unit, periodic: bool) -> Self {
        PlainTask {
            label: label.into(),
            unit,
            periodic,
            state: Mutex::new(PlainState { pos: 0, total, message: String::new(), last_print: Instant::now() }),
        }
    }

    fn maybe_print(&self, state: &mut PlainState) {
        if self.periodic && state.last_print.elapsed() >= PLAIN_EVERY {
            state.last_print = Instant::now();
            let show = |n: u64| match self.unit {
                Unit::Bytes => format_bytes(n),
                Unit::Items => format_count(n),
            };
            let progress = match state.total {
                Some(t) if t > 0 && state.pos <= t => {
                    format!("{} of {} ({:.0}%)", show(state.pos), show(t), state.pos as f64 * 100.0 / t as f64)
                }
                _ if state.pos > 0 => format!("{} so far", show(state.pos)),
                _ => String::new(),
            };
            let sep = if progress.is_empty() || state.message.is_empty() { "" } else { "; " };
            // `… `: a progress line (on a terminal, a bar that goes away), not a result.
            eprintln!("… {}: {progress}{sep}{}", self.label, state.message);
        }
    }
}

impl Task for PlainTask {
    fn set_position(&self, pos: u64) {
        // Printed with the next message, so the position and the message of a line agree.
        self.state.lock().expect("plain task lock").pos = pos;
    }
    fn set_total(&self, total: u64) {
        self.state.lock().expect("plain task lock").total = Some(total);
    }
    fn set_message(&self, message: String) {
        let mut s = self.state.lock().expect("plain task lock");
        s.message = message;
        self.maybe_print(&mut s);
    }
    fn finish(&self, message: String) {
        eprintln!("{message}");
    }
}

struct NoTask;

impl Task for NoTask {
    fn set_position(&self, _: u64) {}
    fn set_total(&self, _: u64) {}
    fn set_message(&self, _: String) {}
    fn finish(&self, _: String) {}
}

/// A reporter that shows nothing (library use, tests).
pub struct SilentReporter;

impl Reporter for SilentReporter {
    fn task(&self, _: &str, _: Option<u64>, _: Unit) -> Box<dyn Task> {
        Box::new(NoTask)
    }
    fn note(&self, _: &str) {}
    fn warn(&self, message: &str) {
        tracing::warn!("{message}");
    }
}

/// `1.5 MiB`, `312 B`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// `1,234,567`.
pub fn format_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 object`, `2,000 objects`: a count with its noun, singular for one. Nouns with irregular plurals
/// (`batch` → `batches`) are given as `"batch|batches"`.
pub fn plural(n: u64, noun: &str) -> String {
    let (one, many) = match noun.split_once('|') {
        Some((one, many)) => (one.to_string(), many.to_string()),
        None => (noun.to_string(), format!("{noun}s")),
    };
    format!("{} {}", format_count(n), if n == 1 { one } else { many })
}

/// `1.2 s`, `350 ms`, `2m 05s`, `1h 05m`, `24 h`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let whole = d.as_secs();
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else if whole < 3600 {
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else if whole % 3600 < 60 {
        format!("{} h", whole / 3600)
    } else {
        format!("{}h {:02}m", whole / 3600, whole % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_human() {
        assert_eq!(format_bytes(312), "312 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(format_count(1234567), "1,234,567");
        assert_eq!(format_count(12), "12");
        assert_eq!(format_duration(Duration::from_millis(350)), "350 ms");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m 05s");
        assert_eq!(format_duration(Duration::from_secs(86_400)), "24 h");
        assert_eq!(format_duration(Duration::from_secs(3_900)), "1h 05m");
        assert_eq!(plural(1, "object"), "1 object");
        let p = "firehose-kit --local --stream S";
        assert_eq!(
            runnable("re-run `firehose-kit setup`; or `firehose-kit --region x verify`", p),
            "re-run `firehose-kit --local --stream S setup`; or `firehose-kit --region x verify`"
        );
        assert_eq!(runnable("`firehose-kit setup`", "firehose-kit"), "`firehose-kit setup`");
        assert_eq!(
            runnable("start `firehose-kit local` or `firehose-kit demo`", p),
            "start `firehose-kit local` or `firehose-kit demo`"
        );
        assert_eq!(runnable("no command", p), "no command");
        assert_eq!(plural(2000, "object"), "2,000 objects");
        assert_eq!(plural(1, "batch|batches"), "1 batch");
        assert_eq!(plural(0, "batch|batches"), "0 batches");
    }
}
