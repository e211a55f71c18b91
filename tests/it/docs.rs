//! The docs, executed: every ```` ```console ```` block of the README and docs/*.md runs against the emulator,
//! and what each command prints must be what the page shows, so an example that drifts from the behaviour fails
//! the build (clap and cargo keep theirs true the same way, with trycmd).
//!
//! How a page is written for it:
//! - In a `console` block, a line starting with `$ ` is a command, run by `sh -c` in the page's own temporary
//!   directory with this build's `firehose-kit` first on `PATH`; the lines up to the next command are what it
//!   prints (standard output and error together, as a terminal shows them). A line `...` (indented or not)
//!   stands for any number of lines, and a block may end with it. A command ending in `&` runs in the background
//!   for the rest of the page (`firehose-kit local &`); its first line of output is awaited. `$ make demo` runs
//!   `firehose-kit demo`, which is what the Makefile target runs once the binary is built.
//! - Before comparing, the parts that change from run to run are redacted on both sides: times and dates, run
//!   ids, uuids, ports, durations, rates, and the mean size of objects cut by size (it depends on the order in
//!   which concurrent batches arrived). Progress lines (`… `; bars on a terminal) are
//!   left out.
//! - `<!-- $ command -->` is a step the reader does not need to see (a precondition), run in order; its output
//!   is not compared. `<!-- docs-test: emulator OPTIONS -->` starts `firehose-kit local OPTIONS` on a free port
//!   for the rest of the page and exports `AWS_ENDPOINT_URL` and the emulator's credentials, as the page's
//!   prose tells its reader to do. `$ export K=V` and `$ unset K` change the page's environment.
//! - A page whose commands need a program this machine lacks (`aws`, `python3` with boto3) is skipped, saying so.
//!
//! `UPDATE_DOCS=1 cargo test --test it docs::` writes what each command printed into the page (elided lines
//! stay elided where the rest still matches).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::{self, Process};

/// One thing a page does, in order.
#[derive(Debug, Clone)]
enum Step {
    /// A command; `expected` is `None` for hidden steps. `line` is where its output starts in the page (0-based).
    Run { command: String, expected: Option<Vec<String>>, line: usize },
    /// `<!-- docs-test: emulator OPTIONS -->`.
    Emulator(String),
}

/// The steps of a markdown page.
fn steps(page: &str) -> Vec<Step> {
    let lines: Vec<&str> = page.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if let Some(rest) = line.strip_prefix("<!-- docs-test: emulator").and_then(|r| r.strip_suffix("-->")) {
            out.push(Step::Emulator(rest.trim().to_string()));
        } else if let Some(cmd) = line.strip_prefix("<!-- $ ").and_then(|r| r.strip_suffix("-->")) {
            out.push(Step::Run { command: cmd.trim().to_string(), expected: None, line: i });
        } else if line == "```console" {
            i += 1;
            while i < lines.len() && lines[i].trim() != "```" {
                let Some(cmd) = lines[i].strip_prefix("$ ") else {
                    panic!("line {}: a console block's lines after its command belong to a `$ ` command", i + 1);
                };
                let start = i + 1;
                i += 1;
                while i < lines.len() && !lines[i].starts_with("$ ") && lines[i].trim() != "```" {
                    i += 1;
                }
                let expected = lines[start..i].iter().map(|l| l.to_string()).collect();
                out.push(Step::Run { command: cmd.to_string(), expected: Some(expected), line: start });
            }
        }
        i += 1;
    }
    out
}

/// The volatile parts of a line, replaced by placeholders (the same on both sides).
fn redact(line: &str) -> String {
    use std::sync::LazyLock;
    static RULES: LazyLock<Vec<(regex_lite::Regex, &'static str)>> = LazyLock::new(|| {
        [
            (r"\d{8}T\d{6}Z-[0-9a-f]{6}", "[RUN]"),
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[UUID]"),
            (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}| UTC)?", "[TIME]"),
            (r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}", "[TIME]"),
            (r"\d{4}/\d{2}/\d{2}/\d{2}/", "[HOUR]/"),
            (r"\d{4}-\d{2}-\d{2}", "[DATE]"),
            (r"\d{2}:\d{2}:\d{2}( UTC)?", "[CLOCK]"),
            (r"(127\.0\.0\.1|localhost):\d+", "$1:[PORT]"),
            (r"[\d,]+(\.\d+)? (MB/s|lines/s|records/s)", "[RATE]"),
            (r"\b\d+m \d{2}s\b", "[DUR]"),
            (r"≤?\b\d+(\.\d+)? (ms|s)\b", "[DUR]"),
            (r"\(\d+(\.\d+)?%\)", "(N%)"),
            // The mean size of size-cut objects depends on the order concurrent batches arrived in.
            (r"~[\d.]+ (B|KiB|MiB) each", "~[SIZE] each"),
        ]
        .into_iter()
        .map(|(re, to)| (regex_lite::Regex::new(re).expect("valid redaction"), to))
        .collect()
    });
    let mut out = line.trim_end().to_string();
    for (re, to) in RULES.iter() {
        out = re.replace_all(&out, *to).into_owned();
    }
    out
}

fn is_elision(line: &str) -> bool {
    line.trim() == "..." || line.trim() == "…"
}

/// Whether `actual` matches `expected` (redacted, `...` any lines); on success, for each expected line the
/// actual line it matched (`None` for elisions).
fn matches(expected: &[String], actual: &[String]) -> Option<Vec<Option<usize>>> {
    fn go(e: &[String], a: &[String], at: usize, out: &mut Vec<Option<usize>>) -> bool {
        let Some(first) = e.first() else { return a.len() == at };
        if is_elision(first) {
            out.push(None);
            for skip in at..=a.len() {
                if go(&e[1..], a, skip, out) {
                    return true;
                }
            }
            out.pop();
            return false;
        }
        if at < a.len() && redact(first) == redact(&a[at]) {
            out.push(Some(at));
            if go(&e[1..], a, at + 1, out) {
                return true;
            }
            out.pop();
        }
        false
    }
    let mut out = Vec::new();
    go(expected, actual, 0, &mut out).then_some(out)
}

/// A page's run: its directory, environment and background processes.
struct Page {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    background: Vec<Process>,
}

impl Page {
    /// A page starts as a reader's fresh shell would (`env -i`): only `PATH` (with the binary on it) and a `HOME`
    /// that is an empty directory; everything else is what the page itself exports.
    fn new() -> Self {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_firehose-kit"));
        let path = format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join(".home");
        std::fs::create_dir_all(&home).unwrap();
        let env = vec![("PATH".into(), path), ("HOME".into(), home.display().to_string())];
        Page { dir, env, background: Vec::new() }
    }

    fn command(&self, command: &str) -> Command {
        let command = if command.trim() == "make demo" { "firehose-kit demo" } else { command };
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!("exec 2>&1; {command}")).current_dir(self.dir.path()).env_clear();
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs a command to its end; its output lines. `export K=V ...` sets the page's environment, `unset K ...`
    /// takes from it.
    fn run(&mut self, command: &str) -> Vec<String> {
        if let Some(vars) = command.trim().strip_prefix("unset ") {
            for k in vars.split_whitespace() {
                self.env.retain(|(have, _)| have != k);
            }
            return Vec::new();
        }
        if let Some(vars) = command.trim().strip_prefix("export ") {
            for pair in vars.split_whitespace() {
                let (k, v) = pair.split_once('=').expect("export K=V");
                self.env.retain(|(have, _)| have != k);
                self.env.push((k.to_string(), v.to_string()));
            }
            return Vec::new();
        }
        if let Some(bg) = command.trim().strip_suffix('&') {
            // `exec`: the shell becomes the program, so stopping it at the end of the page stops the program.
            let mut child =
                self.command(&format!("exec {bg}")).stdout(Stdio::piped()).stdin(Stdio::null()).spawn().unwrap();
            let first = first_line(&mut child);
            self.background.push(Process(child));
            return vec![first];
        }
        let out = self.command(command).stdin(Stdio::null()).output().unwrap();
        // Progress lines (`… `) are what a terminal shows as bars that go away: not part of what a page shows.
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with("… ")).map(str::to_string).collect()
    }

    /// `<!-- docs-test: emulator OPTIONS -->`.
    fn start_emulator(&mut self, options: &str) {
        let data = self.dir.path().join(".emulator");
        let log = self.dir.path().join(".emulator.log");
        let extra: Vec<&str> = options.split_whitespace().collect();
        let (p, _, exports) =
            support::try_spawn_local_with_exports(&data, &extra, &log, None).expect("the emulator starts");
        self.background.push(p);
        // What the page's reader does: export the line the emulator prints, nothing else.
        let vars = exports.trim().strip_prefix("export ").unwrap_or_else(|| panic!("no export line: {exports:?}"));
        self.run(&format!("export {vars}"));
    }
}

/// The first line a background program prints; the rest is read (and dropped) by a thread, so the program never
/// writes into a closed pipe.
fn first_line(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for (i, line) in std::io::BufReader::new(stdout).lines().map_while(Result::ok).enumerate() {
            if i == 0 {
                let _ = tx.send(line);
            }
        }
    });
    rx.recv().unwrap_or_default()
}

/// Programs the page runs that may be missing here, and whether each is there.
fn missing_tools(steps: &[Step]) -> Vec<&'static str> {
    let commands: Vec<&str> = steps
        .iter()
        .filter_map(|s| if let Step::Run { command, .. } = s { Some(command.as_str()) } else { None })
        .collect();
    let mut missing = Vec::new();
    if commands.iter().any(|c| c.starts_with("aws ")) && !works("aws --version") {
        missing.push("the AWS CLI (pip install awscli)");
    }
    if commands.iter().any(|c| c.contains("import boto3")) && !works("python3 -c 'import boto3'") {
        missing.push("boto3 (pip install boto3)");
    }
    let default_port = commands.iter().any(|c| c.starts_with("firehose-kit local &"));
    if default_port && std::net::TcpListener::bind(firehose_kit::firehose::contract::DEFAULT_ADDR).is_err() {
        missing.push("a free port 4566 (something listens there)");
    }
    missing
}

fn works(command: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs the page at `relative` (from the repository root); panics with every difference, or writes what the
/// commands printed into the page with `UPDATE_DOCS=1`.
fn check_page(relative: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let text = std::fs::read_to_string(&path).unwrap();
    let steps = steps(&text);
    assert!(!steps.is_empty(), "{relative} has no console blocks");
    let missing = missing_tools(&steps);
    if !missing.is_empty() {
        eprintln!("docs: skipping {relative}: this machine lacks {}", missing.join(" and "));
        return;
    }
    let mut page = Page::new();
    let mut failures = Vec::new();
    let mut updates: Vec<(usize, usize, Vec<String>)> = Vec::new();
    for step in steps {
        match step {
            Step::Emulator(options) => page.start_emulator(&options),
            Step::Run { command, expected: None, .. } => {
                page.run(&command);
            }
            Step::Run { command, expected: Some(expected), line } => {
                let actual = page.run(&command);
                match matches(&expected, &actual) {
                    Some(_) => {}
                    None => {
                        failures.push(format!(
                            "{relative}:{}: `{command}` printed something else\n--- the page shows (redacted):\n{}\n--- it printed (redacted):\n{}",
                            line,
                            expected.iter().map(|l| redact(l)).collect::<Vec<_>>().join("\n"),
                            actual.iter().map(|l| redact(l)).collect::<Vec<_>>().join("\n"),
                        ));
                        updates.push((line, expected.len(), actual));
                    }
                }
            }
        }
    }
    if std::env::var_os("UPDATE_DOCS").is_some() && !updates.is_empty() {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        for (line, len, actual) in updates.into_iter().rev() {
            lines.splice(line..line + len, actual);
        }
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        return;
    }
    assert!(
        failures.is_empty(),
        "{} example(s) drifted from the behaviour:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn redaction_keeps_what_matters_and_drops_what_changes() {
    assert_eq!(
        redact("  run 20261126T162725Z-b448f0 · manifest .firehose-kit/runs/20261126T162725Z-b448f0.json"),
        "  run [RUN] · manifest .firehose-kit/runs/[RUN].json"
    );
    assert_eq!(redact("sent 100 lines in 1.8 s: 16.2 MB/s, 56,301 lines/s"), "sent 100 lines in [DUR]: [RATE], [RATE]");
    assert_eq!(redact("on http://127.0.0.1:4599 (us-east-2)"), "on http://127.0.0.1:[PORT] (us-east-2)");
    assert_eq!(
        redact("logs/2026/11/26/17/ApacheLogs-1-2026-11-26-17-07-43-01a3159d-30bc-4ed8-a0fd-d6d1eb721e44  999.9 KiB"),
        "logs/[HOUR]/ApacheLogs-1-[TIME]-[UUID]  999.9 KiB"
    );
    assert_eq!(redact("S3.AccessDenied × 4  15:48:11 → 15:48:14"), "S3.AccessDenied × 4  [CLOCK] → [CLOCK]");
    let e = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(matches(&e(&["a", "...", "d"]), &e(&["a", "b", "c", "d"])).is_some());
    assert!(matches(&e(&["a", "..."]), &e(&["a"])).is_some());
    assert!(matches(&e(&["a", "d"]), &e(&["a", "b", "d"])).is_none(), "no elision, no extra lines");
    assert!(matches(&e(&["a"]), &e(&["a", "b"])).is_none(), "a block that does not end with ... is the whole output");
}

/// The quickstart's `make demo` and the emulator section.
#[tokio::test]
async fn the_readme_runs_as_shown() {
    let _port = support::DEFAULT_PORT.lock().await;
    tokio::task::spawn_blocking(|| check_page("README.md")).await.unwrap();
}

#[tokio::test]
async fn the_troubleshooting_walkthroughs_run_as_shown() {
    tokio::task::spawn_blocking(|| check_page("docs/troubleshooting.md")).await.unwrap();
}

#[tokio::test]
async fn the_partitioning_guide_runs_as_shown() {
    tokio::task::spawn_blocking(|| check_page("docs/partitioning.md")).await.unwrap();
}
