#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target (fuzz/corpus/<target>/seed-*): small, valid inputs of each
format, from which the fuzzer mutates. Run from the repository's root: `python3 fuzz/seeds/make_seeds.py`
(pyarrow for the Parquet seed). The corpus is committed; this script says where it came from."""
import gzip
import io
import json
import os
import struct
import zipfile
import hashlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")
LINES = (b'192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
         b'"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"\n'
         b'203.0.113.9 - frank [07/Dec/2026:21:00:00 +0000] "POST /api/v1/items?id=7 HTTP/1.1" 503 - "-" "curl/8.5"\n')


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"seed-{name}"), "wb") as f:
        f.write(data)


def varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def raw_snappy_literal(data):
    """Raw Snappy of `data` as literals only (valid, uncompressed)."""
    out = bytearray(varint(len(data)))
    for i in range(0, len(data), 60):
        piece = data[i:i + 60]
        out.append((len(piece) - 1) << 2)
        out += piece
    return bytes(out)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def snappy_framed(data):
    body = crc32c(data).to_bytes(4, "little") + raw_snappy_literal(data)
    return b"\xff\x06\x00\x00sNaPpY" + b"\x00" + len(body).to_bytes(3, "little") + body


def hadoop_snappy(data):
    block = raw_snappy_literal(data)
    return struct.pack(">I", len(data)) + struct.pack(">I", len(block)) + block


def pb_field(tag, wire, payload):
    key = varint((tag << 3) | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + varint(payload)


def verify_object():
    put("verify_object", "plain", b"\x00" + LINES)
    put("verify_object", "gzip", b"\x00" + gzip.compress(LINES))
    put("verify_object", "gzip-members", b"\x00" + gzip.compress(LINES[:40]) + gzip.compress(LINES[40:]))
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as f:
        f.writestr("a.log", LINES)
        f.writestr("b.log", b"tail without newline")
    put("verify_object", "zip", b"\x00" + z.getvalue())
    put("verify_object", "snappy", b"\x00" + snappy_framed(LINES))
    put("verify_object", "hadoop-snappy", b"\x01" + hadoop_snappy(LINES))
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
        t = pa.table({"host": ["192.0.2.1", None], "status": pa.array([200, 503], pa.int32()),
                      "bytes": pa.array([2326, None], pa.int64()),
                      "time": pa.array([1_000_000, 2_000_000], pa.timestamp("ms", tz="UTC")),
                      "ratio": [0.5, 1.5]})
        buf = io.BytesIO()
        pq.write_table(t, buf, compression="snappy")
        put("verify_object", "parquet", b"\x00" + buf.getvalue())
    except ImportError:
        print("pyarrow missing: no Parquet seed")


def main():
    verify_object()
    for i, line in enumerate(LINES.splitlines()):
        put("apache_line", f"{i}", line)
    put("apache_line", "ipv6", b'2001:db8::1 - - [01/Jan/2026:00:00:00 +1400] "GET / HTTP/2.0" 404 0 "-" "-"')
    put("hadoop_snappy", "lines", hadoop_snappy(LINES))
    put("hadoop_snappy", "two-blocks", hadoop_snappy(LINES[:50]) + hadoop_snappy(LINES[50:]))
    record = pb_field(1, 0, 0) + pb_field(3, 2, b"hello\n")
    record2 = pb_field(1, 0, 1) + pb_field(2, 0, 0) + pb_field(3, 2, LINES)
    agg = (pb_field(1, 2, b"pk-a") + pb_field(1, 2, b"pk-b") + pb_field(2, 2, b"1234567890")
           + pb_field(3, 2, record) + pb_field(3, 2, record2))
    put("kpl_deaggregate", "two-records", agg)
    put("jq_query", "status", b"{status: .status}\x00" + json.dumps({"status": 200}).encode())
    put("jq_query", "nested", b'{a: .x.y, b: (.z | tostring), c: .t[0]}\x00{"x":{"y":"k"},"z":3,"t":[true]}')
    put("jq_query", "date", b'{day: .time | strptime("%d/%b/%Y:%H:%M:%S %z") | strftime("%Y-%m-%d")}\x00'
        b'{"time":"10/Oct/2000:13:55:36 -0700"}')
    put("sigv4_header", "header", b"AWS4-HMAC-SHA256 Credential=test/20261207/us-east-2/firehose/aws4_request, "
        b"SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + b"ab" * 32)
    put("sigv4_header", "presigned", b"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=test%2F20261207%2F"
        b"us-east-2%2Fs3%2Faws4_request&X-Amz-Date=20261207T210000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host"
        b"&X-Amz-Signature=" + b"cd" * 32)
    dest = {
        "BucketARN": "arn:aws:s3:::b", "RoleARN": "arn:aws:iam::000000000000:role/r",
        "Prefix": "logs/status=!{partitionKeyFromQuery:status}/!{timestamp:yyyy/MM/dd}/",
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/!{timestamp:yyyy}/",
        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60}, "CompressionFormat": "GZIP",
        "DynamicPartitioningConfiguration": {"Enabled": True, "RetryOptions": {"DurationInSeconds": 300}},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [
            {"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{status: .status}"},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
            {"Type": "AppendDelimiterToRecord", "Parameters": []}]},
        "CustomTimeZone": "Europe/Paris", "FileExtension": ".json.gz",
    }
    create = {"DeliveryStreamName": "S", "DeliveryStreamType": "DirectPut",
              "ExtendedS3DestinationConfiguration": dest, "Tags": [{"Key": "k", "Value": "v"}],
              "DeliveryStreamEncryptionConfigurationInput": {"KeyType": "AWS_OWNED_CMK"}}
    put("firehose_request", "create", b"\x00" + json.dumps(create).encode())
    conv = dict(dest, DataFormatConversionConfiguration={
        "Enabled": True, "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
        "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}},
        "SchemaConfiguration": {"DatabaseName": "d", "TableName": "t", "RoleARN": "arn:aws:iam::000000000000:role/r"}})
    put("firehose_request", "create-conversion", b"\x00" + json.dumps(dict(create, ExtendedS3DestinationConfiguration=conv)).encode())
    update = {"DeliveryStreamName": "S", "CurrentDeliveryStreamVersionId": "1", "DestinationId": "destinationId-000000000001",
              "ExtendedS3DestinationUpdate": {"Prefix": "p/", "BufferingHints": {"IntervalInSeconds": 0}}}
    put("firehose_request", "update", b"\x01" + json.dumps(update).encode())

    def frame(data, end, mark=False, arrival=1_795_000_000_000):
        flags = (1 << 31 if end else 0) | (1 << 30 if mark else 0)
        return struct.pack("<Iq", len(data) | flags, arrival) + data
    batch = frame(b"line one\n", False) + frame(b"line two\n", True)
    put("journal_recovery", "v2", b"\x00" + batch + frame(b"src\x00" + struct.pack("<Q", 7), True, mark=True))
    put("journal_recovery", "v2-torn", b"\x00" + batch + frame(b"torn", False)[:-2])
    put("journal_recovery", "v1", b"\x01" + frame(b"a\n", False) + frame(b"b\n", False))
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Put", "Effect": "Allow", "Action": ["s3:PutObject", "s3:Get*"],
         "Resource": ["arn:aws:s3:::b/logs/*"], "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"}]}
    put("iam_policy", "identity", json.dumps(policy).encode() + b"\x00s3:PutObject\x00arn:aws:s3:::b/logs/x\x00arn:aws:iam::000000000000:role/r")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"},
             "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "000000000000"}}}]}
    put("iam_policy", "trust", json.dumps(trust).encode() + b"\x00sts:AssumeRole\x00*\x00firehose.amazonaws.com")
    put("prefix_expression", "timestamp", b"logs/!{timestamp:yyyy/MM/dd/HH}/\x00errors/!{firehose:error-output-type}/\x00\x00UTC")
    put("prefix_expression", "partitioned", b"s=!{partitionKeyFromQuery:a}/d=!{timestamp:yyyy-MM-dd}/\x00e/!{timestamp:yyyy}/\x00x\x00Asia/Tokyo")
    put("prefix_expression", "java", b"!{timestamp:EEE-hh-a-'lit'-SSS}/\x00err/\x00\x00America/New_York")


if __name__ == "__main__":
    main()
