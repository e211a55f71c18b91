#!/usr/bin/env python3
"""`make bench`: firehose-kit measured side by side with the tools users would pick instead, in one run, on
this machine, with the same generated input. Prints a table of medians (min-max) and rewrites
docs/benchmarks.md. Absolute numbers drift on a shared machine; ratios measured in one run hold.

Knobs (environment): BENCH_RUNS (3), BENCH_BUDGET seconds per run of a slow contender (10),
BENCH_SEND_LINES lines of the big send input (2,800,000, about 520 MB), BENCH_MASK_SHA_NI=1 to hide the CPU's
SHA extensions from aws-lc (OPENSSL_ia32cap), which with a build made with
RUSTFLAGS='--cfg sha2_backend="soft"' (the Rust sha2 crate's portable code) reproduces a CPU without them;
BENCH_BIN another firehose-kit binary to measure; BENCH_DOC where to write the report (docs/benchmarks.md);
BENCH_ONLY=cpu (the CPU rows only: send, and server CPU per line against moto), BENCH_ONLY=partitioning,
BENCH_ONLY=transform (the Python Apache -> JSON blueprint on Lambda), BENCH_ONLY=conversion (Parquet through
a Glue table against the unconverted stream and gzip JSON), BENCH_ONLY=hostile (verify beside three 400 MB
decompression bombs, see hostile.py), BENCH_ONLY=fsync (`local --fsync`
against the default) or BENCH_ONLY=kinesis (the chained pipeline against Direct Put, and Kinesis ingest against
moto and kinesalite: `npm ci` in bench/kinesalite, which `make bench` runs).
"""
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

import hostile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BENCH_BIN") or os.path.join(ROOT, "target", "release", "firehose-kit")
LOADGEN = os.path.join(ROOT, "target", "release", "examples", "loadgen")
LOAD_SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "20"))
DOC = os.environ.get("BENCH_DOC") or os.path.join(ROOT, "docs", "benchmarks.md")
# Everything after this line in the benchmarks page is kept as it is (hand-written comparisons).
KEEP_MARKER = "<!-- everything below is kept by make bench -->"
WORK = os.path.join(ROOT, "bench", "work")
CONTENDERS = os.path.join(ROOT, "bench", "contenders")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
BUDGET = float(os.environ.get("BENCH_BUDGET", "10"))
SEND_LINES = int(os.environ.get("BENCH_SEND_LINES", "2800000"))
MIB = 1024 * 1024
ENV = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-2")
for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "FIREHOSE_KIT_CONFIG"):
    ENV.pop(var, None)
MASK_SHA_NI = os.environ.get("BENCH_MASK_SHA_NI") == "1"
if MASK_SHA_NI:
    # CPUID leaf 7 EBX bit 29 (SHA) cleared for aws-lc.
    ENV["OPENSSL_ia32cap"] = ":~0x20000000"
TICK = os.sysconf("SC_CLK_TCK")

processes = []


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def kit(endpoint, *args, state=None, allow_fail=False):
    return kit_cpu(endpoint, *args, state=state, allow_fail=allow_fail)[0]


def kit_cpu(endpoint, *args, state=None, allow_fail=False):
    """Runs firehose-kit; returns its JSON output and the CPU seconds (user + system) the process used."""
    cmd = [BIN, "--endpoint-url", endpoint, "-o", "json", "--no-progress"]
    if state:
        cmd += ["--state-dir", state]
    result, cpu = run_cpu(cmd + list(args), env=ENV, cwd=WORK)
    if result.returncode != 0 and not allow_fail:
        sys.exit(f"firehose-kit {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return (json.loads(result.stdout) if result.stdout.strip() else {}), cpu


def peak_rss(pid):
    """Peak resident memory of a running process (VmHWM), in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def process_cpu(pid):
    """CPU seconds (user + system) a running process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def run_cpu(cmd, **kw):
    """Runs a command; returns (stdout, stderr, returncode, CPU seconds of that process and its children)."""
    before = os.times()
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return result, cpu


def start_local(name, *extra):
    """A fresh emulator (its data dir emptied: a BENCH_ONLY run keeps the work dir of the run before)."""
    data = os.path.join(WORK, name)
    shutil.rmtree(data, ignore_errors=True)
    proc = subprocess.Popen([BIN, "local", "--addr", "127.0.0.1:0", "--data-dir", data, "--create-delay", "0s",
                             "--delete-delay", "0s", *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=ENV)
    processes.append(proc)
    line = proc.stdout.readline()
    endpoint = re.search(r"http://\S+", line).group(0)
    return proc, endpoint


KINESALITE = os.path.join(ROOT, "bench", "kinesalite", "node_modules", ".bin", "kinesalite")


def free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def wait_port(proc, port, what):
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{what} did not start")


def start_kinesalite():
    """kinesalite (in memory, streams ACTIVE at once); `None` when bench/kinesalite has no `npm ci` yet."""
    if not os.path.exists(KINESALITE):
        log(f"{KINESALITE} is missing (`npm ci` in bench/kinesalite): skipping kinesalite")
        return None
    port = free_port()
    proc = subprocess.Popen([KINESALITE, "--port", str(port), "--createStreamMs", "0", "--deleteStreamMs", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    processes.append(proc)
    return wait_port(proc, port, "kinesalite")


def start_moto():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    processes.append(proc)
    return wait_port(proc, port, "moto server")


def stats(values):
    values = [v for v in values if v is not None]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def fmt(s, unit="", digits=1):
    if s["runs"] == 1 or s["min"] == s["max"]:
        return f"{s['median']:,.{digits}f}{unit}"
    return f"{s['median']:,.{digits}f}{unit} ({s['min']:,.{digits}f}–{s['max']:,.{digits}f})"


def generate(name, lines, seed):
    path = os.path.join(WORK, name)
    with open(path, "wb") as f:
        subprocess.run([BIN, "generate", "--lines", str(lines), "--seed", str(seed)], stdout=f, check=True, env=ENV)
    return path


def python_contender(script, endpoint, stream, path):
    out = subprocess.run([sys.executable, os.path.join(CONTENDERS, script), endpoint, stream, path, str(BUDGET)],
                         capture_output=True, text=True, env=ENV)
    if out.returncode != 0:
        sys.exit(f"{script} against {endpoint} failed:\n{out.stderr}")
    r = json.loads(out.stdout)
    return r["lines"] / r["seconds"], r["bytes"] / r["seconds"] / 1e6, r["lines"]


def peak_rss_and_time(args):
    result = subprocess.run(["/usr/bin/time", "-v", *args], capture_output=True, text=True, env=ENV, cwd=WORK)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{result.stderr}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", result.stderr).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return rss_kb * 1024, seconds, json.loads(result.stdout)


def measure_send(emu_proc, emu, big):
    """(a): `send` of the big file, RUNS times; its rate, and the CPU of the sender and of the emulator per GB."""
    kit(emu, "setup", "--buffer-size", "128", "--buffer-interval", "60", state="s-send")
    big_mb = os.path.getsize(big) / 1e6
    runs, send_cpu, emu_cpu = [], [], []
    for i in range(RUNS):
        log(f"(a) firehose-kit send {big_mb:.0f} MB, run {i + 1}/{RUNS}")
        server_before = process_cpu(emu_proc.pid)
        r, cpu = kit_cpu(emu, "send", big, "--from-start", state="s-send")
        server = process_cpu(emu_proc.pid) - server_before
        runs.append(r)
        send_cpu.append(cpu / (r["bytes"] / 1e9))
        emu_cpu.append(server / (r["bytes"] / 1e9))
    return {
        "send_mb_s": stats([r["mb_per_s"] for r in runs]),
        "send_lines_s": stats([r["lines_per_s"] for r in runs]),
        "send_cpu_s_gb": stats(send_cpu),
        "emu_cpu_s_gb": stats(emu_cpu),
    }


def measure_batch(server_proc, endpoint, path, what, streams=None):
    """(c) against a server, RUNS times (run i sends to streams[i], else ApacheLogs): each run's (lines/s, MB/s,
    lines), and the server's CPU per line (µs)."""
    runs, us_line = [], []
    for i in range(RUNS):
        log(f"{what}, {BUDGET:.0f} s, run {i + 1}/{RUNS}")
        server_before = process_cpu(server_proc.pid)
        stream = streams[i] if streams else "ApacheLogs"
        runs.append(python_contender("batch_producer.py", endpoint, stream, path))
        us_line.append((process_cpu(server_proc.pid) - server_before) / runs[-1][2] * 1e6)
    return runs, stats(us_line)


def measure_batch_emulator(emu_proc, emu, path):
    """(c) against the emulator, twice RUNS times. First each run to a stream of its own with a 128 MiB buffer and
    a 900 s interval: nothing is delivered during the run, so its CPU is acknowledging (signature, decoding,
    journal, buffer, answer). Then to one stream with the demo's hints (1 MiB or 60 s), which delivers about 55
    objects in each run: its CPU includes delivery (object files, MD5 ETags). Returns the first runs and both
    figures."""
    acknowledging = [f"BatchAck{i + 1}" for i in range(RUNS)]
    for stream in acknowledging:
        kit(emu, "--stream", stream, "setup", "--buffer-size", "128", "--buffer-interval", "900", state="s-batch")
    kit(emu, "--stream", "BatchDelivered", "setup", "--buffer-size", "1", "--buffer-interval", "60", state="s-batch")
    runs, us_line = measure_batch(emu_proc, emu, path, "(c) boto3 put_record_batch x500", acknowledging)
    _, us_line_delivered = measure_batch(emu_proc, emu, path, "(c) again, delivering 1 MiB objects",
                                         ["BatchDelivered"] * RUNS)
    return runs, us_line, us_line_delivered


def cpu_rows(r, big_mb):
    return [
        ("CPU: send process per GB sent (user + sys)", fmt(r["send_cpu_s_gb"], " s/GB", 2), f"the {big_mb:,.0f} MB send above"),
        ("CPU: emulator per GB received, during that send", fmt(r["emu_cpu_s_gb"], " s/GB", 2), "journal, buffers, deliveries in the run"),
        ("server CPU per line, boto3 (c): firehose-kit local, acknowledging", fmt(r["emu_us_line"], " µs", 2), "nothing delivered during the runs"),
        ("server CPU per line, boto3 (c): firehose-kit local, with delivery", fmt(r["emu_us_line_delivered"], " µs", 2), "1 MiB objects, about 55 per run"),
        ("server CPU per line, boto3 (c): moto server", fmt(r["moto_us_line"], " µs", 2), f"firehose-kit local uses {r['moto_us_line']['median'] / r['emu_us_line']['median']:,.1f}× less server CPU ({r['moto_us_line']['median'] / r['emu_us_line_delivered']['median']:,.1f}× with delivery)"),
    ]


def cpu_only():
    """BENCH_ONLY=cpu: only the CPU rows (send, the emulator during it, server CPU per line against moto)."""
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    big = generate("big.log", SEND_LINES, 1)
    small = generate("small.log", 300_000, 2)
    emu_proc, emu = start_local("emu")
    r = measure_send(emu_proc, emu, big)
    _, r["emu_us_line"], r["emu_us_line_delivered"] = measure_batch_emulator(emu_proc, emu, small)
    moto_proc, moto = start_moto()
    kit(moto, "setup", state="s-moto")
    _, r["moto_us_line"] = measure_batch(moto_proc, moto, small, "(c) against moto server")
    big_mb = os.path.getsize(big) / 1e6
    rows = [("send: firehose-kit send", fmt(r["send_mb_s"], " MB/s"), f"{big_mb:,.0f} MB file")] + cpu_rows(r, big_mb)
    width = max(len(a) for a, _, _ in rows)
    for a, b, note in rows:
        print(f"{a:<{width}}  {b}{'  — ' + note if note else ''}")
    print(f"({cpu_model()}, {sha_extensions()}; medians of {RUNS} runs with min–max)")


def partitioning(emu):
    """`send` of 1 M JSON lines to a stream partitioned by status × date, against an unpartitioned one; and
    what deaggregation saves against one record per line (a partitioned stream without it needs one JSON object
    per record)."""
    path = generate("partitioned.log", 1_000_000, 6)
    flat, parted, cost = [], [], None
    kit(emu, "--stream", "Flat", "setup", "--bucket", "bench-flat", "--buffer-size", "128", "--buffer-interval", "60",
        state="s-flat")
    kit(emu, "--stream", "Parted", "setup", "--bucket", "bench-parted", "--partition-by", "status,date",
        "--buffer-size", "128", state="s-parted")
    for i in range(RUNS):
        log(f"partitioned send (status × date) vs unpartitioned, 1 M JSON lines, run {i + 1}/{RUNS}")
        flat.append(kit(emu, "--stream", "Flat", "send", path, "--from-start", "--format", "json", state="s-flat"))
        parted.append(kit(emu, "--stream", "Parted", "send", path, "--from-start", "--format", "json", state="s-parted"))
    single = kit(emu, "--stream", "Parted", "send", path, "--from-start", "--format", "json", "--one-line-per-record",
                 state="s-parted")
    cost = {
        "packed_ratio": parted[-1]["billable_bytes"] / parted[-1]["bytes"],
        "single_ratio": single["billable_bytes"] / single["bytes"],
        "records_packed": parted[-1]["records"],
        "records_single": single["records"],
    }
    os.remove(path)
    return {
        "flat_lines_s": stats([r["lines_per_s"] for r in flat]),
        "parted_lines_s": stats([r["lines_per_s"] for r in parted]),
        "parted_mb_s": stats([r["mb_per_s"] for r in parted]),
        "cost": cost,
    }


def expected_transformed_bytes(path):
    """The bytes the Apache -> JSON template makes of a file's lines (run here, in this Python)."""
    import base64
    import importlib.util
    spec = importlib.util.spec_from_file_location("apache_to_json", os.path.join(ROOT, "templates", "transform", "apache_to_json.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with open(path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    total = 0
    for start in range(0, len(lines), 2000):
        records = [{"recordId": str(i), "data": base64.b64encode(l).decode()} for i, l in enumerate(lines[start:start + 2000])]
        for r in module.handler({"records": records}, None)["records"]:
            if r["result"] == "Ok":
                total += len(base64.b64decode(r["data"]))
    return total


def delivered_bytes(endpoint, bucket):
    import boto3
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-2", aws_access_key_id="test", aws_secret_access_key="test")
    total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        total += sum(o["Size"] for o in page.get("Contents", []))
    return total


def end_to_end(emu, what, stream, bucket, state, path, want, setup_extra, send_extra=()):
    """Sets up `stream` (60 s interval, into `bucket`), sends `path`, and waits until `want` bytes are in the bucket;
    the seconds from the send's start until then."""
    kit(emu, "--stream", stream, "setup", "--bucket", bucket, "--buffer-interval", "60", *setup_extra, state=state)
    t = time.time()
    kit(emu, "--stream", stream, "send", path, *send_extra, state=state)
    while delivered_bytes(emu, bucket) < want:
        if time.time() - t > 600:
            sys.exit(f"{what}: {stream} delivered {delivered_bytes(emu, bucket)} of {want} bytes after 600 s")
        time.sleep(0.1)
    return time.time() - t


def setup_has(flag, rows):
    """Whether the binary measured has `setup FLAG` (an older build may not: then its rows are skipped, said)."""
    helped = subprocess.run([BIN, "setup", "--help"], capture_output=True, text=True, env=ENV).stdout
    if flag not in helped:
        log(f"{BIN} has no setup {flag} (an older build): skipping the {rows} rows")
    return flag in helped


def transform():
    """End to end (send until every object is in S3) for 200,000 lines to a stream whose records the Python
    Apache -> JSON blueprint transforms on Lambda, against the same lines to an untransformed stream; and the
    emulator's own CPU per GB (the function's processes are children it has not waited for, so their CPU is
    not in the emulator's count). --speed 60: the 60 s intervals pass in one second."""
    if not setup_has("--transform", "transform"):
        return None
    proc, emu = start_local("emu-transform", "--speed", "60")
    path = generate("transform.log", 200_000, 8)
    size = os.path.getsize(path)
    expected = expected_transformed_bytes(path)
    handler = os.path.join(ROOT, "templates", "transform", "apache_to_json.py")
    results = {"flat": [], "transformed": []}
    cpu = {"flat": [], "transformed": []}
    for i in range(RUNS):
        for name in ("flat", "transformed"):
            log(f"transform: 200,000 lines end to end, {name}, run {i + 1}/{RUNS}")
            extra = ["--transform", handler] if name == "transformed" else []
            want = expected if name == "transformed" else size
            before = process_cpu(proc.pid)
            # One line per record on both streams: the stage's cost, not packing's, is what is compared.
            seconds = end_to_end(emu, "transform benchmark", f"T{name}{i}", f"bench-t-{name}-{i}", f"s-t-{name}-{i}",
                                 path, want, extra, ["--one-line-per-record"])
            results[name].append(200_000 / seconds)
            cpu[name].append((process_cpu(proc.pid) - before) / (size / 1e9))
    os.remove(path)
    return {k: {"lines_s": stats(results[k]), "cpu_s_gb": stats(cpu[k])} for k in results}


def kinesis_ingest():
    """The Kinesis ingest contender (boto3 put_records, 500 lines per call, random partition keys, 4 shards)
    against the emulator, moto server and kinesalite: lines/s, and the server's CPU per record (µs)."""
    path = generate("kinesis.log", 300_000, 9)
    servers = [("firehose-kit local", start_local("emu-kinesis")), ("moto server", start_moto())]
    kl = start_kinesalite()
    if kl:
        servers.append(("kinesalite", kl))
    out = {}
    for name, (proc, endpoint) in servers:
        rates, us = [], []
        for i in range(RUNS):
            log(f"Kinesis ingest: boto3 put_records x500 against {name}, run {i + 1}/{RUNS}")
            before = process_cpu(proc.pid)
            # One stream for every run: kinesalite allows 10 shards per account by default.
            rate, _, lines = python_contender("kinesis_producer.py", endpoint, "Ingest", path)
            rates.append(rate)
            us.append((process_cpu(proc.pid) - before) / lines * 1e6)
        out[name] = {"lines_s": stats(rates), "us_record": stats(us)}
    os.remove(path)
    return out


def chained():
    """End to end (send until every byte is in S3) for 300,000 lines through a 4-shard data stream in front of
    Firehose, against the same lines sent to a Direct Put stream. --speed 60: the 60 s intervals pass in one
    second, Firehose reads each shard 60 times a second."""
    if not setup_has("--source", "chained"):
        return None
    proc, emu = start_local("emu-chained", "--speed", "60")
    path = generate("chained.log", 300_000, 10)
    size = os.path.getsize(path)
    results = {"direct": [], "chained": []}
    for i in range(RUNS):
        for name in ("direct", "chained"):
            log(f"chained: 300,000 lines end to end, {name}, run {i + 1}/{RUNS}")
            extra = ["--source", "kinesis", "--shards", "4"] if name == "chained" else []
            seconds = end_to_end(emu, "chained benchmark", f"C{name}{i}", f"bench-c-{name}-{i}", f"s-c-{name}-{i}",
                                 path, size, extra)
            results[name].append(300_000 / seconds)
    os.remove(path)
    return {k: stats(v) for k, v in results.items()}


def parquet_scan_bytes(endpoint, bucket, columns):
    """What a query reading `columns` scans of the Parquet objects in `bucket`: the compressed bytes of those
    columns' chunks plus each file's footer (what Athena reads and bills), from the files' own metadata (pyarrow);
    None without pyarrow."""
    try:
        import io
        import boto3
        import pyarrow.parquet as pq
    except ImportError:
        return None
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-2", aws_access_key_id="test", aws_secret_access_key="test")
    total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            meta = pq.ParquetFile(io.BytesIO(body)).metadata
            names = [meta.schema.column(j).name for j in range(meta.num_columns)]
            total += int.from_bytes(body[-8:-4], "little") + 8  # the footer and its length
            for g in range(meta.num_row_groups):
                for j, name in enumerate(names):
                    if name in columns:
                        total += meta.row_group(g).column(j).total_compressed_size
    return total


def conversion():
    """End to end (send, then verify proving every line) for 200,000 lines into a stream converting to Parquet
    through the Glue table setup makes, against the same lines to an unconverted stream and as JSON to a gzip
    stream; the emulator's CPU per GB sent; the bytes delivered; and what a query over status and bytes scans of
    the Parquet against the gzip JSON (Athena reads a gzip object whole). --speed 60."""
    if not setup_has("--format", "conversion"):
        return None
    proc, emu = start_local("emu-conversion", "--speed", "60")
    path = generate("conversion.log", 200_000, 11)
    size = os.path.getsize(path)
    runs = {"flat": ([], []), "parquet": ([], []), "gzip-json": ([], [])}
    delivered = {}
    setup = {"flat": [], "parquet": ["--format", "parquet"], "gzip-json": ["--compression", "gzip"]}
    for i in range(RUNS):
        for name, (rates, cpu) in runs.items():
            log(f"conversion: 200,000 lines end to end, {name}, run {i + 1}/{RUNS}")
            stream, bucket, state = f"V{name.replace('-', '')}{i}", f"bench-v-{name}-{i}", f"s-v-{name}-{i}"
            kit(emu, "--stream", stream, "setup", "--bucket", bucket, "--buffer-interval", "60", *setup[name], state=state)
            before, t = process_cpu(proc.pid), time.time()
            # One line per record on every stream: the conversion's cost, not packing's, is what is compared.
            kit(emu, "--stream", stream, "send", path, "--one-line-per-record",
                *(["--format", "json"] if name == "gzip-json" else []), state=state)
            verified = kit(emu, "--stream", stream, "verify", state=state)
            assert verified["verified"] and verified["matched"] == 200_000, verified
            rates.append(200_000 / (time.time() - t))
            cpu.append((process_cpu(proc.pid) - before) / (size / 1e9))
            delivered[name] = (delivered_bytes(emu, bucket), bucket)
    os.remove(path)
    out = {k: {"lines_s": stats(r), "cpu_s_gb": stats(c), "bytes": delivered[k][0]} for k, (r, c) in runs.items()}
    out["scan_status_bytes"] = parquet_scan_bytes(emu, delivered["parquet"][1], {"status", "bytes"})
    out["input_bytes"] = size
    return out


def conversion_rows(c):
    if c is None:
        return []
    ratio = c["parquet"]["lines_s"]["median"] / c["flat"]["lines_s"]["median"]
    rows = [
        ("conversion: 200,000 lines end to end (send → verify proved every row), Parquet through the Glue table",
         fmt(c["parquet"]["lines_s"], " lines/s", 0),
         f"{ratio:.2f}× the unconverted stream ({fmt(c['flat']['lines_s'], ' lines/s', 0)}); one JSON line per record on both, each row read back by verify"),
        ("conversion: emulator CPU per GB sent (receiving, converting, serving verify)",
         fmt(c["parquet"]["cpu_s_gb"], " s/GB"),
         f"{c['parquet']['cpu_s_gb']['median'] / c['flat']['cpu_s_gb']['median']:.1f}× the unconverted stream ({fmt(c['flat']['cpu_s_gb'], ' s/GB')})"),
        ("conversion: bytes delivered for the same 200,000 lines",
         f"Parquet {c['parquet']['bytes'] / MIB:.1f} MiB",
         f"gzip JSON {c['gzip-json']['bytes'] / MIB:.1f} MiB ({c['gzip-json']['bytes'] / c['parquet']['bytes']:.2f}× Parquet); "
         f"raw lines {c['flat']['bytes'] / MIB:.1f} MiB"),
    ]
    if c.get("scan_status_bytes"):
        scan = c["scan_status_bytes"]
        rows.append(("conversion: bytes a query over status and bytes scans (Athena bills these)",
                     f"Parquet {scan / MIB:.2f} MiB",
                     f"gzip JSON {c['gzip-json']['bytes'] / MIB:.1f} MiB, read whole: {c['gzip-json']['bytes'] / scan:.0f}× more"))
    return rows


def kinesis_rows(c, ingest):
    rows = []
    if c is not None:
        ratio = c["chained"]["median"] / c["direct"]["median"]
        rows.append(("chained: 300,000 lines end to end (send → all in S3) through a 4-shard data stream",
                     fmt(c["chained"], " lines/s", 0),
                     f"{ratio:.2f}× Direct Put ({fmt(c['direct'], ' lines/s', 0)}); packed records, PutRecords, Firehose reading each shard"))
    emu = ingest["firehose-kit local"]
    for name, r in ingest.items():
        note = "" if name == "firehose-kit local" else \
            f"firehose-kit local uses {r['us_record']['median'] / emu['us_record']['median']:,.1f}× less server CPU per record"
        rows.append((f"Kinesis ingest: boto3 put_records 500 lines/call against {name}",
                     f"{fmt(r['lines_s'], ' lines/s', 0)} · server {fmt(r['us_record'], ' µs/record', 1)}", note))
    return rows


def transform_rows(t):
    if t is None:
        return []
    ratio = t["transformed"]["lines_s"]["median"] / t["flat"]["lines_s"]["median"]
    return [
        ("transform: 200,000 lines end to end (send → all in S3), Python Apache → JSON blueprint on Lambda",
         fmt(t["transformed"]["lines_s"], " lines/s", 0),
         f"{ratio:.2f}× the untransformed stream ({fmt(t['flat']['lines_s'], ' lines/s', 0)}); one line per record, processor buffers of 1 MiB"),
        ("transform: emulator CPU per GB sent, outside the function",
         fmt(t["transformed"]["cpu_s_gb"], " s/GB"),
         f"untransformed: {fmt(t['flat']['cpu_s_gb'], ' s/GB')} (one line per record, two journals, the events and answers)"),
    ]


def durability(default_proc, default):
    """`send` and client (c) against the default emulator and one started with `--fsync` (every acknowledged
    record synced to disk before the answer, every delivery's progress synced): what surviving a machine crash,
    not only a killed process, costs."""
    path = generate("fsync.log", 300_000, 7)
    fsync_proc, fsync = start_local("emu-fsync", "--fsync")
    sends = {"default": [], "fsync": []}
    batches = {"default": [], "fsync": []}
    for name, endpoint in (("default", default), ("fsync", fsync)):
        kit(endpoint, "--stream", "Durable", "setup", "--bucket", f"bench-durable-{name}", "--buffer-size", "128",
            "--buffer-interval", "60", state=f"s-durable-{name}")
    for i in range(RUNS):
        for name, endpoint in (("default", default), ("fsync", fsync)):
            log(f"durability: send and (c) against the {name} emulator, run {i + 1}/{RUNS}")
            r = kit(endpoint, "--stream", "Durable", "send", path, "--from-start", state=f"s-durable-{name}")
            sends[name].append(r["mb_per_s"])
            batches[name].append(python_contender("batch_producer.py", endpoint, "Durable", path)[0])
    os.remove(path)
    return {k: {"send_mb_s": stats(sends[k]), "batch_lines_s": stats(batches[k])} for k in sends}


def durability_rows(d):
    send_ratio = d["fsync"]["send_mb_s"]["median"] / d["default"]["send_mb_s"]["median"]
    batch_ratio = d["fsync"]["batch_lines_s"]["median"] / d["default"]["batch_lines_s"]["median"]
    return [
        ("durability: send (57 MB) to `local --fsync` vs the default", f"{fmt(d['fsync']['send_mb_s'], ' MB/s')} vs {fmt(d['default']['send_mb_s'], ' MB/s')}",
         f"{send_ratio:.2f}× (4 MiB batches: one sync per batch)"),
        ("durability: (c) boto3 500 lines/call to `local --fsync` vs the default", f"{fmt(d['fsync']['batch_lines_s'], ' lines/s', 0)} vs {fmt(d['default']['batch_lines_s'], ' lines/s', 0)}",
         f"{batch_ratio:.2f}× (one sync per call of ~90 KB)"),
    ]


def partitioning_rows(p):
    c = p["cost"]
    return [
        ("partitioned: send 1 M JSON lines, status × date (deaggregated, keys extracted per line in the emulator)",
         f"{fmt(p['parted_mb_s'], ' MB/s')} · {fmt(p['parted_lines_s'], ' lines/s', 0)}",
         f"{p['parted_lines_s']['median'] / p['flat_lines_s']['median']:.2f}× the unpartitioned stream ({fmt(p['flat_lines_s'], ' lines/s', 0)})"),
        ("partitioned: billable / raw bytes, packed and deaggregated", f"{c['packed_ratio']:.4f} ({c['records_packed']:,} records)",
         f"one JSON line per record: {c['single_ratio']:.1f} ({c['records_single']:,} records)"),
    ]


def print_rows(rows):
    """A BENCH_ONLY run's rows, aligned, and the CPU they were measured on."""
    width = max(len(a) for a, _, _ in rows)
    for a, b, note in rows:
        print(f"{a:<{width}}  {b}  — {note}")
    print(f"({cpu_model()}, {sha_extensions()})")


def main():
    if os.environ.get("BENCH_ONLY") == "cpu":
        return cpu_only()
    if os.environ.get("BENCH_ONLY") == "fsync":
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        proc, emu = start_local("emu")
        rows = durability_rows(durability(proc, emu))
        return print_rows(rows)
    if os.environ.get("BENCH_ONLY") == "transform":
        os.makedirs(WORK, exist_ok=True)
        rows = transform_rows(transform())
        return print_rows(rows)
    if os.environ.get("BENCH_ONLY") == "conversion":
        os.makedirs(WORK, exist_ok=True)
        rows = conversion_rows(conversion())
        return print_rows(rows)
    if os.environ.get("BENCH_ONLY") == "hostile":
        os.makedirs(WORK, exist_ok=True)
        return print_rows(hostile.hostile_rows(hostile.hostile(sys.modules[__name__]), MIB))
    if os.environ.get("BENCH_ONLY") == "kinesis":
        os.makedirs(WORK, exist_ok=True)
        rows = kinesis_rows(chained(), kinesis_ingest())
        return print_rows(rows)
    if os.environ.get("BENCH_ONLY") == "partitioning":
        os.makedirs(WORK, exist_ok=True)
        _, emu = start_local("emu-partitioning")
        rows = partitioning_rows(partitioning(emu))
        return print_rows(rows)
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: run `make build` first")
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    started = time.time()
    results = {}

    log(f"generating inputs ({SEND_LINES:,} lines for the send benchmark)")
    t = time.time()
    big = generate("big.log", SEND_LINES, 1)
    results["generate_mb_s"] = os.path.getsize(big) / (time.time() - t) / 1e6
    small = generate("small.log", 300_000, 2)
    sample = generate("sample.log", 100_000, 3)
    big_mb = os.path.getsize(big) / 1e6

    # Send throughput, all against the embedded emulator; CPU of the sender and of the emulator per GB sent.
    emu_proc, emu = start_local("emu")
    results.update(measure_send(emu_proc, emu, big))
    seed = []
    for i in range(RUNS):
        log(f"(b) boto3 put_record per line, {BUDGET:.0f} s, run {i + 1}/{RUNS}")
        seed.append(python_contender("seed_producer.py", emu, "ApacheLogs", small))
    batch, results["emu_us_line"], results["emu_us_line_delivered"] = measure_batch_emulator(emu_proc, emu, small)
    results["seed_lines_s"] = stats([x[0] for x in seed])
    results["seed_mb_s"] = stats([x[1] for x in seed])
    results["batch_lines_s"] = stats([x[0] for x in batch])
    results["batch_mb_s"] = stats([x[1] for x in batch])

    # The same client (c) against moto server.
    moto_proc, moto = start_moto()
    kit(moto, "setup", state="s-moto")
    moto_batch, results["moto_us_line"] = measure_batch(moto_proc, moto, small, "(c) against moto server")
    results["moto_batch_lines_s"] = stats([x[0] for x in moto_batch])
    # boto3 itself caps (c) well below what the emulator can take, so also compare with a faster client:
    # firehose-kit send, one line per record (500 records per call, like (c)), against both servers.
    rust_emu, rust_moto = [], []
    for i in range(RUNS):
        log(f"Rust client, one line per record: emulator vs moto, run {i + 1}/{RUNS}")
        rust_emu.append(kit(emu, "send", small, "--from-start", "--one-line-per-record", state="s-rust-emu")["lines_per_s"])
        rust_moto.append(kit(moto, "send", small, "--from-start", "--one-line-per-record", state="s-rust-moto")["lines_per_s"])
    results["rust_emu_lines_s"] = stats(rust_emu)
    results["rust_moto_lines_s"] = stats(rust_moto)

    # Throttled: the us-east-2 quota (1 MiB/s).
    log("throttled: firehose-kit send against --quota us-east-2")
    _, throttled_emu = start_local("emu-quota", "--quota", "us-east-2")
    kit(throttled_emu, "setup", "--buffer-interval", "1", state="s-quota")
    quota_file = generate("quota.log", 110_000, 4)  # about 20 MB: 20 s at 1 MiB/s
    r = kit(throttled_emu, "send", quota_file, state="s-quota")
    v = kit(throttled_emu, "verify", state="s-quota", allow_fail=True)
    results["throttled"] = {
        "mib_s": r["bytes"] / MIB / (r["duration_ms"] / 1000),
        "share": r["bytes"] / MIB / (r["duration_ms"] / 1000) / 1.0,
        "retried_per_record": (r["retried_records"] + r["retried_calls"]) / max(r["records"], 1),
        "throttled": r["throttled"],
        "records": r["records"],
        "lost": v.get("missing"),
        "seconds": r["duration_ms"] / 1000,
    }

    # Cost: billable bytes per raw byte.
    log("cost: packed vs one line per record")
    packed = kit(emu, "send", sample, "--from-start", state="s-cost")
    single = kit(emu, "send", sample, "--from-start", "--one-line-per-record", state="s-cost")
    results["cost"] = {
        "raw": packed["bytes"],
        "packed_ratio": packed["billable_bytes"] / packed["bytes"],
        "single_ratio": single["billable_bytes"] / single["bytes"],
    }

    results["partitioning"] = partitioning(emu)
    results["transform"] = transform()
    results["durability"] = durability(emu_proc, emu)
    results["chained"] = chained()
    results["kinesis_ingest"] = kinesis_ingest()
    results["conversion"] = conversion()

    # Verify throughput and peak memory at 1 M and 4 M delivered lines.
    verify = {}
    for lines in (1_000_000, 4_000_000):
        name = f"Verify{lines // 1_000_000}M"
        log(f"verify: {lines:,} lines")
        path = generate(f"verify-{lines}.log", lines, 5)
        state = f"s-{name}"
        kit(emu, "--stream", name, "setup", "--bucket", f"verify-{lines}", "--buffer-size", "128",
            "--buffer-interval", "1", state=state)
        kit(emu, "--stream", name, "send", path, state=state)
        # Wait until everything is delivered (untimed), then time a verify that only reads and compares.
        kit(emu, "--stream", name, "verify", "--wait", "120", state=state)
        rss, seconds, verified = peak_rss_and_time([BIN, "--endpoint-url", emu, "--state-dir", state, "--stream", name,
                                                  "-o", "json", "--no-progress", "verify", "--no-wait"])
        assert verified["verified"] and verified["matched"] == lines, verified
        verify[lines] = {"rss": rss, "seconds": seconds, "mb_s": os.path.getsize(path) / 1e6 / seconds}
        os.remove(path)
    results["verify"] = verify
    results["verify_bytes_per_line"] = (verify[4_000_000]["rss"] - verify[1_000_000]["rss"]) / 3_000_000
    results["hostile"] = hostile.hostile(sys.modules[__name__])

    # Many clients at once: 32 clients, 8 streams (4 driven past a 16 MiB/s quota), mixed PutRecord and
    # PutRecordBatch; then every acknowledged record must be delivered exactly once.
    if os.path.exists(LOADGEN):
        log(f"load: 32 clients on 8 streams for {LOAD_SECONDS:.0f} s")
        load_proc, load_emu = start_local("emu-load", "--quota", "16,2000,500000", "--memory-limit", "256MiB")
        streams = [f"Load{i}" for i in range(8)]
        for s in streams:
            kit(load_emu, "--stream", s, "setup", "--buffer-size", "16", "--buffer-interval", "60", state="s-load")
        bucket = "firehose-kit-000000000000-us-east-2"
        out = subprocess.run([LOADGEN, load_emu, str(LOAD_SECONDS), bucket, *streams], capture_output=True, text=True,
                             env=ENV, check=True)
        load = json.loads(out.stdout)
        load["peak_rss"] = peak_rss(load_proc.pid)
        results["load"] = load
    else:
        log(f"{LOADGEN} is missing (make bench builds it): skipping the load benchmark")

    # The demo, end to end.
    demo = []
    for i in range(RUNS):
        log(f"demo, run {i + 1}/{RUNS}")
        t = time.time()
        subprocess.run([BIN, "demo", "--no-progress", "-q"], check=True, env=ENV, cwd=WORK, capture_output=True)
        demo.append(time.time() - t)
    results["demo_s"] = stats(demo)
    results["total_s"] = time.time() - started
    report(results, big_mb)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def sha_extensions():
    """Whether the CPU has the SHA extensions (x86 `sha_ni`, Arm `sha2`), and whether this run hides them."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith(("flags", "Features"))), [])
    except OSError:
        flags = []
    has = "sha_ni" in flags or "sha2" in flags
    text = "with SHA extensions" if has else "without SHA extensions"
    if MASK_SHA_NI:
        text += " (hidden from aws-lc for this run: BENCH_MASK_SHA_NI=1)"
    return text


def memory_gib():
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            return f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown"


def report(r, big_mb):
    send, seed, batch, moto = r["send_mb_s"], r["seed_mb_s"], r["batch_mb_s"], r["moto_batch_lines_s"]
    q, c, v = r["throttled"], r["cost"], r["verify"]
    ratio_b = send["median"] / seed["median"]
    ratio_c = send["median"] / batch["median"]
    ratio_moto = r["batch_lines_s"]["median"] / moto["median"]
    rows = [
        ("send: firehose-kit send (packed records, 4 MiB batches)", f"{fmt(send, ' MB/s')} · {fmt(r['send_lines_s'], ' lines/s', 0)}", f"{big_mb:,.0f} MB file"),
        ("send: (b) boto3 put_record per line (the original demo, no sleep)", f"{fmt(seed, ' MB/s', 2)} · {fmt(r['seed_lines_s'], ' lines/s', 0)}", f"firehose-kit {ratio_b:,.0f}× faster"),
        ("send: (c) boto3 put_record_batch, 500 lines/call, resend failed", f"{fmt(batch, ' MB/s', 2)} · {fmt(r['batch_lines_s'], ' lines/s', 0)}", f"firehose-kit {ratio_c:,.1f}× faster"),
        ("emulator ingest: (c) against firehose-kit local", fmt(r["batch_lines_s"], " lines/s", 0), ""),
        ("emulator ingest: (c) against moto server", fmt(moto, " lines/s", 0), f"firehose-kit local {ratio_moto:,.1f}× moto (boto3-bound)"),
        ("emulator ingest: Rust client, 500 records/call, against firehose-kit local", fmt(r["rust_emu_lines_s"], " lines/s", 0), ""),
        ("emulator ingest: Rust client, 500 records/call, against moto server", fmt(r["rust_moto_lines_s"], " lines/s", 0), f"firehose-kit local {r['rust_emu_lines_s']['median'] / r['rust_moto_lines_s']['median']:,.1f}× moto"),
        ("throttled: send with --quota us-east-2 (1 MiB/s)", f"{q['mib_s']:.2f} MiB/s = {q['share'] * 100:.0f}% of quota over {q['seconds']:.0f} s", f"{q['retried_per_record']:.2f} retries per record sent, {q['lost']} lines lost"),
        ("cost: billable / raw bytes, packed", f"{c['packed_ratio']:.4f}", f"one line per record: {c['single_ratio']:.1f}"),
        ("verify: 1 M lines", f"{v[1_000_000]['mb_s']:,.0f} MB/s, peak {v[1_000_000]['rss'] / MIB:,.0f} MiB", f"{v[1_000_000]['seconds']:.1f} s"),
        ("verify: 4 M lines", f"{v[4_000_000]['mb_s']:,.0f} MB/s, peak {v[4_000_000]['rss'] / MIB:,.0f} MiB", f"+{r['verify_bytes_per_line']:.0f} bytes per extra line"),
        ("demo: wall time (200,000 lines, setup → teardown)", fmt(r["demo_s"], " s"), ""),
    ]
    rows += cpu_rows(r, big_mb)
    rows += partitioning_rows(r["partitioning"])
    rows += transform_rows(r["transform"])
    rows += durability_rows(r["durability"])
    rows += kinesis_rows(r["chained"], r["kinesis_ingest"])
    rows += conversion_rows(r.get("conversion"))
    rows += hostile.hostile_rows(r.get("hostile"), MIB)
    if "load" in r:
        ld, rep, dl = r["load"], r["load"]["report"], r["load"]["delivery"]
        once = "every acknowledged record delivered exactly once" if ld["exactly_once"] else \
            f"NOT exactly once: {dl['missing']} missing, {dl['duplicated']} duplicated, {dl['unexpected']} unexpected"
        rows += [
            ("load: 32 clients, 8 streams (4 past a 16 MiB/s quota), PutRecord + PutRecordBatch", f"{rep['mb_per_s']:,.1f} MB/s · {rep['records_per_s']:,.0f} records/s", f"{rep['seconds']:.0f} s; {rep['throttled']:,} entries throttled and resent; {len(rep['errors'])} other errors"),
            ("load: PutRecordBatch latency (500 records of 300 B)", f"p50 {rep['batch_p50_ms']:.1f} ms · p99 {rep['batch_p99_ms']:.1f} ms", f"{rep['batch_calls']:,} batch calls, {rep['record_calls']:,} PutRecord calls"),
            ("load: delivery check and emulator peak RSS", f"{dl['delivered']:,} of {dl['acknowledged']:,} records, peak {ld['peak_rss'] / MIB:,.0f} MiB", f"{once}; --memory-limit 256MiB (it bounds buffered records, not the calls in flight)"),
        ]
    width = max(len(a) for a, _, _ in rows)
    print()
    for a, b, note in rows:
        print(f"{a:<{width}}  {b}{'  — ' + note if note else ''}")
    print(f"\n(total {r['total_s']:.0f} s; medians of {RUNS} runs with min–max; slow contenders ran {BUDGET:.0f} s each)")
    print(f"({cpu_model()}, {sha_extensions()})")

    today = datetime.date.today().isoformat()
    machine = f"{os.cpu_count()} × {cpu_model()} ({sha_extensions()}), {memory_gib()} RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    table = "\n".join(f"| {a} | {b} | {note} |" for a, b, note in rows)
    doc = f"""# Benchmarks

Measured by `make bench` (`bench/run.py`) on {today}, on {machine}, everything on one machine in one run:
the emulator, moto and the clients share the same {os.cpu_count()} cores. Medians of {RUNS} runs (min–max).
Contenders (b) and (c) are in `bench/contenders/`; they ran for {BUDGET:.0f} s each and report their rate.
Absolute numbers drift on a shared machine; the ratios measured in one run are what to compare.

| measurement | result | notes |
|---|---|---|
{table}

How to read it:

- **send**: a {big_mb:,.0f} MB generated Apache log sent by `firehose-kit send` to the embedded emulator
  (`firehose-kit local`, 128 MiB buffering hint), against (b) the original demo's producer without its sleep
  (one `put_record` per line) and (c) a careful Python producer (`put_record_batch` of 500 lines, resending
  only failed entries). firehose-kit packs whole lines into records of up to 1,000 KiB and keeps four 4 MiB
  batches in flight.
- **emulator ingest**: the same client (c) against `firehose-kit local` and against moto server (which writes
  one S3 object per call); boto3's own per-call cost bounds the first figure, so the same comparison is also
  made with firehose-kit's Rust client sending one line per record (500 records per call).
- **throttled**: `send` against `firehose-kit local --quota us-east-2` (1 MiB/s, metered in one-second
  windows; with ~1,000 KiB records one record fits per window); lost lines counted by `verify`.
- **cost**: Firehose bills each record rounded up to 5 KB; packed records make billable ≈ raw.
- **transform**: 200,000 generated lines sent to a stream made by `setup --transform
  templates/transform/apache_to_json.py` (the Python blueprint, run by the emulator as a local process) and to an
  untransformed one, in an emulator at `--speed 60`; timed from the start of `send` until every byte the function
  makes of them (computed beforehand by running the template in Python) is in S3. The emulator's CPU is its own
  process's: the function's processes are not counted (they are its children, still running).
- **partitioned**: 1 M generated lines sent as JSON (`--format json`) to a stream made by `setup --partition-by
  status,date` (records deaggregated on newlines, keys extracted per line by the query, one buffer per partition) and to
  an unpartitioned one, in the same emulator; and the billable bytes of the packed records against one JSON line
  per record, which a partitioned stream without deaggregation needs. Dynamic partitioning's own charges (per GB
  and per object delivered) come on top on AWS.
- **verify**: wall time and peak RSS (`/usr/bin/time -v`) of `verify` downloading and checking 1 M and 4 M
  delivered lines; the last column is the memory per extra expected line.
- **load**: `examples/loadgen.rs` (the load generator of `src/loadgen.rs`) against `firehose-kit local --quota
  16,2000,500000 --memory-limit 256MiB`: 28 clients on four streams (past their quota, so entries are throttled
  and resent) and one paced client on each of four others; every fourth client sends PutRecord, the others
  PutRecordBatch of 500 records; afterwards every stream's buffer is cut and each acknowledged record must be
  found exactly once in S3. Peak RSS is the emulator's VmHWM.
- **CPU**: user + system seconds of the `send` process (its rusage) and of the emulator process
  (`/proc/<pid>/stat`, before and after) per GB of record data in the big send; and the server process's CPU
  per line while client (c) runs against each server. SigV4 hashes every request body on both sides, so on a
  CPU without SHA extensions the SHA-256 implementation decides these figures (see `crates/domain/src/util/hash.rs`). The
  emulator is measured twice: "acknowledging" sends each run to a stream of its own with a 128 MiB buffer and a
  900 s interval, so nothing is delivered during the run (checking the signature, decoding, journaling,
  buffering, answering); "with delivery" sends to a stream with the demo's 1 MiB / 60 s hints, so every run
  also writes about 55 objects and computes their MD5 ETags. moto writes one object per call and computes the
  ETag only when it is first read. `BENCH_ONLY=cpu` runs only these rows.
- **durability**: the default emulator answers once a record is in its journal in the page cache, which
  survives a killed process (kill -9) but not a machine crash; `local --fsync` syncs each journal append before
  answering (and each delivery's intent and progress, and the objects, before they count), so acknowledged
  records survive a power loss too. The rows compare both on the same input in one run: a send of packed 4 MiB
  batches, and client (c)'s many small calls, where one sync per call weighs most. `BENCH_ONLY=fsync` runs only
  these rows.
"""
    try:
        with open(DOC) as f:
            old = f.read()
        if KEEP_MARKER in old:
            doc += "\n" + KEEP_MARKER + old.split(KEEP_MARKER, 1)[1]
    except OSError:
        pass
    with open(DOC, "w") as f:
        f.write(doc)
    log(f"wrote {DOC}")


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
