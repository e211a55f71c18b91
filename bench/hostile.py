"""Hostile objects for `make bench` (BENCH_ONLY=hostile): verify over a bucket where, beside a run's own
objects, someone with write access put three decompression bombs under the stream's key layout: 400 MB of
zeros without a newline, gzipped, zipped and in the Snappy framing format. verify must report them, prove the
run's own lines, and stay far below the size of what they unpack to (its peak resident memory is the row).
"""
import gzip
import io
import os
import zipfile

import boto3

BOMB_BYTES = 400 * 1000 * 1000
CHUNK = 64 * 1024


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


def _masked_crc32c(data):
    """The Snappy framing format's checksum: CRC-32C, rotated and offset."""
    table, crc = _crc32c_table(), 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _snappy_zeros_block():
    """One framed chunk of 64 KiB zeros: a 1-byte literal, then copies of 64 bytes at offset 1 (raw Snappy)."""
    raw = bytearray()
    n = CHUNK
    while True:  # the uncompressed length as a varint
        raw.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            break
    raw += bytes([0 << 2, 0])  # literal of length 1: a zero
    left = CHUNK - 1
    while left:
        run = min(64, left)
        raw += bytes([((run - 1) << 2) | 2, 1, 0])  # copy with a 2-byte offset of 1
        left -= run
    body = _masked_crc32c(bytes(CHUNK)).to_bytes(4, "little") + bytes(raw)
    return bytes([0x00]) + len(body).to_bytes(3, "little") + body


def bombs():
    """The three bombs' bodies: (suffix, bytes)."""
    zeros = bytes(CHUNK)
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", compresslevel=9) as f:
        for _ in range(BOMB_BYTES // CHUNK):
            f.write(zeros)
    zp = io.BytesIO()
    with zipfile.ZipFile(zp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("access.log", "w", force_zip64=True) as f:
            for _ in range(BOMB_BYTES // CHUNK):
                f.write(zeros)
    sn = b"\xff\x06\x00\x00sNaPpY" + _snappy_zeros_block() * (BOMB_BYTES // CHUNK)
    return [("gzip", gz.getvalue()), ("zip", zp.getvalue()), ("snappy", sn)]


def hostile(h):
    """Runs the measurement with the helpers of run.py (`h`: kit, generate, start_local, peak_rss_and_time, BIN,
    log, ENV)."""
    _, emu = h.start_local("emu-hostile")
    state, stream, bucket = "s-hostile", "Hostile", "bench-hostile"
    lines = 20_000
    path = h.generate("hostile.log", lines, 7)
    h.kit(emu, "--stream", stream, "setup", "--bucket", bucket, "--buffer-interval", "1", state=state)
    h.kit(emu, "--stream", stream, "send", path, state=state)
    h.kit(emu, "--stream", stream, "verify", "--wait", "120", state=state)
    s3 = boto3.client("s3", endpoint_url=emu, region_name="us-east-2", aws_access_key_id="test",
                      aws_secret_access_key="test")
    delivered = s3.list_objects_v2(Bucket=bucket)["Contents"][0]["Key"]
    # The same directory, name and time, another uuid (the last 36 characters): the stream's own layout.
    head = delivered[:-36]
    stored = {}
    h.log("hostile: writing three 400 MB bombs (gzip, zip, Snappy) under the stream's layout")
    for i, (encoding, body) in enumerate(bombs()):
        key = f"{head}{i:08d}-0000-4000-8000-000000000000"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        stored[key] = (encoding, len(body))
    h.log("hostile: verify over the bucket")
    rss, seconds, report = h.peak_rss_and_time([h.BIN, "--endpoint-url", emu, "--state-dir", state, "--stream",
                                                stream, "-o", "json", "--no-progress", "verify", "--no-wait"])
    reported = {o["key"]: o.get("not_read_through") for o in report["objects"] if o["key"] in stored}
    assert report["verified"] and report["matched"] == lines, report
    assert len(reported) == 3 and all(reported.values()), reported
    assert report["layout_ok"], report
    os.remove(path)
    return {
        "rss": rss,
        "seconds": seconds,
        "lines": lines,
        "stored": {enc: size for enc, size in stored.values()},
    }


def hostile_rows(r, mib):
    if not r:
        return []
    sizes = ", ".join(f"{enc} {size / 1e6:,.1f} MB" for enc, size in r["stored"].items())
    return [
        ("verify: beside the run, three 400 MB single-line bombs (gzip, zip, Snappy)",
         f"peak {r['rss'] / mib:,.0f} MiB, {r['seconds']:.1f} s",
         f"each reported as not Firehose's, {r['lines']:,} lines verified (stored: {sizes})"),
    ]
