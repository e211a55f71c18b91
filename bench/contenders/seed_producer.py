"""Contender (b): the original demo's producer, without its sleep: boto3 `put_record`, one line per call.

Usage: seed_producer.py ENDPOINT STREAM FILE BUDGET_SECONDS
Prints one JSON line: {"lines": N, "bytes": B, "seconds": S}. Stops at the end of FILE or after the budget.
"""
import json
import sys
import time

import boto3

endpoint, stream, path, budget = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
client = boto3.client("firehose", endpoint_url=endpoint, region_name="us-east-2",
                      aws_access_key_id="test", aws_secret_access_key="test")
lines = sent_bytes = 0
start = time.monotonic()
with open(path, "rb") as f:
    for line in f:
        client.put_record(DeliveryStreamName=stream, Record={"Data": line})
        lines += 1
        sent_bytes += len(line)
        if time.monotonic() - start >= budget:
            break
print(json.dumps({"lines": lines, "bytes": sent_bytes, "seconds": time.monotonic() - start}))
