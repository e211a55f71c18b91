"""The Parquet `firehose-kit setup --format parquet` makes, read by pyarrow (an independent reader): every object
under the table's prefix opens, the rows add up to the lines sent (argv[1]), and the columns are typed as the Glue
table says (status int32, bytes int64, time a UTC timestamp, the rest strings). Run by tests/it/compat.rs after
setup, send and verify, with AWS_ENDPOINT_URL set.
"""
import io
import os
import sys

import boto3
import pyarrow as pa
import pyarrow.parquet as pq

REGION = os.environ.get("AWS_REGION", "us-east-2")
BUCKET = "firehose-kit-000000000000-" + REGION
expected_rows = int(sys.argv[1])
s3 = boto3.client("s3", region_name=REGION)

keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="apachelogs/")
        for o in page.get("Contents", [])]
assert keys and all(k.endswith(".parquet") for k in keys), keys
tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())) for k in keys]
rows = sum(t.num_rows for t in tables)
assert rows == expected_rows, f"{rows} rows in {len(keys)} objects, expected {expected_rows}"
want = pa.schema([("host", pa.string()), ("ident", pa.string()), ("user", pa.string()),
                  ("time", pa.timestamp("us", tz="UTC")), ("method", pa.string()), ("path", pa.string()),
                  ("protocol", pa.string()), ("status", pa.int32()), ("bytes", pa.int64()),
                  ("referer", pa.string()), ("agent", pa.string())])
for t in tables:
    assert t.schema.remove_metadata() == want, t.schema
statuses = set()
for t in tables:
    statuses.update(t.column("status").to_pylist())
assert statuses and all(100 <= s <= 599 for s in statuses), statuses
print(f"{rows} rows in {len(keys)} objects read back by pyarrow with the table's types")
