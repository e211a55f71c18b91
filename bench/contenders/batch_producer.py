"""Contender (c): a best-practice Python producer: boto3 `put_record_batch`, 500 lines per call (one line per
record, as most producers do), resending only the failed entries with backoff.

Usage: batch_producer.py ENDPOINT STREAM FILE BUDGET_SECONDS
Prints one JSON line: {"lines": N, "bytes": B, "seconds": S, "retried": R}.
"""
import json
import sys
import time

import boto3

endpoint, stream, path, budget = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
client = boto3.client("firehose", endpoint_url=endpoint, region_name="us-east-2",
                      aws_access_key_id="test", aws_secret_access_key="test")
lines = sent_bytes = retried = 0
start = time.monotonic()


def send(batch):
    global retried
    delay = 0.1
    while batch:
        out = client.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": d} for d in batch])
        if out["FailedPutCount"] == 0:
            return
        batch = [d for d, r in zip(batch, out["RequestResponses"]) if "ErrorCode" in r]
        retried += len(batch)
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
