"""Kinesis ingest contender: a best-practice Python producer for a Kinesis data stream: boto3 `put_records`, 500
lines per call (one line per record), a random partition key per record, resending only the failed entries with
backoff. Creates the stream (4 shards) if it does not exist.

Usage: kinesis_producer.py ENDPOINT STREAM FILE BUDGET_SECONDS
Prints one JSON line: {"lines": N, "bytes": B, "seconds": S, "retried": R}.
"""
import json
import sys
import time
import uuid

import boto3

endpoint, stream, path, budget = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
client = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-2",
                      aws_access_key_id="test", aws_secret_access_key="test")
if stream not in client.list_streams()["StreamNames"]:
    client.create_stream(StreamName=stream, ShardCount=4)
deadline = time.time() + 30
while client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
    if time.time() > deadline:
        sys.exit(f"stream {stream} is not ACTIVE after 30 s")
    time.sleep(0.1)
lines = sent_bytes = retried = 0
start = time.monotonic()


def send(batch):
    global retried
    delay = 0.1
    entries = [{"Data": d, "PartitionKey": uuid.uuid4().hex} for d in batch]
    while entries:
        out = client.put_records(StreamName=stream, Records=entries)
        if out["FailedRecordCount"] == 0:
            return
        entries = [e for e, r in zip(entries, out["Records"]) if "ErrorCode" in r]
        retried += len(entries)
        time.sleep(delay)
        delay = min(delay * 2, 5)


with open(path, "rb") as f:
    batch = []
    for line in f:
        batch.append(line)
        if len(batch) == 500:
            send(batch)
            lines += len(batch)
            sent_bytes += sum(map(len, batch))
            batch = []
            if time.monotonic() - start >= budget:
                break
    else:
        if batch:
            send(batch)
            lines += len(batch)
            sent_bytes += sum(map(len, batch))
print(json.dumps({"lines": lines, "bytes": sent_bytes, "seconds": time.monotonic() - start, "retried": retried}))
