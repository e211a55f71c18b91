"""Record format conversion against the firehose-kit emulator, read back by pyarrow (an independent Parquet
reader): boto3 creates a Glue table (with array, map and struct columns) and a converting stream, puts JSON
records (three of them malformed), and the Parquet object holds every good record as one typed row while the malformed ones land in
format-conversion-failed with their code. Run by tests/it/compat.rs with AWS_ENDPOINT_URL set (`--speed 60`).
"""
import base64
import datetime
import io
import json
import sys
import time

import pyarrow.parquet as pq

from converting import bucket_and_role, firehose, glue, s3, wait

BUCKET, ROLE, STREAM = "convert-compat", "convert-role", "Converting"
role = bucket_and_role(BUCKET, ROLE)
glue.create_database(DatabaseInput={"Name": "weblogs"})
columns = [{"Name": "host", "Type": "string"}, {"Name": "status", "Type": "int"}, {"Name": "bytes", "Type": "bigint"},
           {"Name": "time", "Type": "timestamp"}, {"Name": "price", "Type": "decimal(8,2)"},
           {"Name": "tags", "Type": "array<string>"}, {"Name": "hits", "Type": "map<string,int>"},
           {"Name": "geo", "Type": "struct<city:string,lat:double>"}]
glue.create_table(DatabaseName="weblogs", TableInput={"Name": "apache", "StorageDescriptor": {"Columns": columns}})
conversion = {
    "SchemaConfiguration": {"RoleARN": role["Arn"], "DatabaseName": "weblogs", "TableName": "apache"},
    "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
    "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}},
}
destination = {"RoleARN": role["Arn"], "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": "parquet/",
               "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
               "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60},
               "DataFormatConversionConfiguration": conversion}
try:
    firehose.create_delivery_stream(DeliveryStreamName=STREAM, ExtendedS3DestinationConfiguration=destination)
    sys.exit("a 5 MiB buffer was accepted for a converting stream")
except firehose.exceptions.InvalidArgumentException as e:
    assert "must be at least 64" in str(e), e
destination["BufferingHints"]["SizeInMBs"] = 64
firehose.create_delivery_stream(DeliveryStreamName=STREAM, ExtendedS3DestinationConfiguration=destination)
wait("ACTIVE", lambda: firehose.describe_delivery_stream(DeliveryStreamName=STREAM)["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE")

good = [{"HOST": f"10.0.0.{i % 7}", "status": 200 + i % 3, "bytes": i * 10, "time": f"2026-12-02T10:00:{i % 60:02d}Z",
         "price": f"{i}.25", "tags": [f"t{i % 3}", None], "hits": {"home": i % 5},
         "geo": None if i % 2 else {"City": "Paris", "lat": 48.85}} for i in range(997)]
bad = [b"not json at all\n", json.dumps({"status": "two hundred"}).encode(), json.dumps({"status": 99999999999}).encode()]
records = [{"Data": json.dumps(g).encode()} for g in good] + [{"Data": b} for b in bad]
for start in range(0, len(records), 500):
    out = firehose.put_record_batch(DeliveryStreamName=STREAM, Records=records[start:start + 500])
    assert out["FailedPutCount"] == 0, out


def objects(prefix):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


keys = wait("the Parquet object", lambda: objects("parquet/"))
assert all(k.endswith(".parquet") for k in keys), keys
tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())) for k in keys]
rows = [r for t in tables for r in t.to_pylist()]
schema = tables[0].schema
assert [f.name for f in schema] == ["host", "status", "bytes", "time", "price", "tags", "hits", "geo"], schema
assert str(schema.field("tags").type) == "list<element: string>", schema
assert str(schema.field("hits").type).startswith("map<string, int32"), schema
assert str(schema.field("geo").type) == "struct<city: string, lat: double>", schema
assert str(schema.field("status").type) == "int32" and str(schema.field("bytes").type) == "int64", schema
assert str(schema.field("time").type).startswith("timestamp[us") and str(schema.field("price").type) == "decimal128(8, 2)", schema
assert len(rows) == len(good), f"{len(rows)} rows"
by_bytes = {r["bytes"]: r for r in rows}
for g in good:
    r = by_bytes[g["bytes"]]
    assert r["host"] == g["HOST"] and r["status"] == g["status"], (r, g)
    assert r["time"].replace(tzinfo=None) == datetime.datetime.strptime(g["time"], "%Y-%m-%dT%H:%M:%SZ"), (r, g)
    assert str(r["price"]) == g["price"], (r, g)
    assert r["tags"] == g["tags"] and r["hits"] == list(g["hits"].items()), (r, g)
    assert r["geo"] == (None if g["geo"] is None else {"city": "Paris", "lat": 48.85}), (r, g)
failed_keys = wait("the format-conversion-failed output", lambda: objects("errors/format-conversion-failed/"))
docs = [json.loads(line) for k in failed_keys for line in s3.get_object(Bucket=BUCKET, Key=k)["Body"].read().splitlines()]
assert sorted(base64.b64decode(d["rawData"]) for d in docs) == sorted(bad), docs
codes = sorted(d["lastErrorCode"] for d in docs)
assert codes == ["DataFormatConversion.MalformedData", "DataFormatConversion.MalformedData", "DataFormatConversion.ParseError"], codes
assert all(d["dataCatalogTable"]["tableName"] == "apache" for d in docs), docs
print(f"converted {len(rows)} records to Parquet read back by pyarrow, {len(docs)} in format-conversion-failed")
