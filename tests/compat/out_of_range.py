"""Twelve records into a converting stream through boto3, two of them with times no timestamp column holds (9.3e15
and 9.3e18, milliseconds past year 9999): ten Parquet rows (read by pyarrow) and the two in
format-conversion-failed with DataFormatConversion.MalformedData. Run by tests/it/compat.rs with AWS_ENDPOINT_URL
set (`--speed 60`), against the debug build; `python3 tests/compat/out_of_range.py` against any other
`firehose-kit local` (the release build, say) with the same variables.
"""
import base64
import io
import json

import pyarrow.parquet as pq

from converting import bucket_and_role, firehose, glue, s3, wait

BUCKET, ROLE, STREAM = "times-compat", "times-role", "Times"
role = bucket_and_role(BUCKET, ROLE)
glue.create_database(DatabaseInput={"Name": "times"})
glue.create_table(DatabaseName="times", TableInput={"Name": "events", "StorageDescriptor": {"Columns": [
    {"Name": "n", "Type": "int"}, {"Name": "ts", "Type": "timestamp"}]}})
conversion = {
    "SchemaConfiguration": {"RoleARN": role["Arn"], "DatabaseName": "times", "TableName": "events"},
    "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
    "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}},
}
firehose.create_delivery_stream(DeliveryStreamName=STREAM, ExtendedS3DestinationConfiguration={
    "RoleARN": role["Arn"], "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": "rows/",
    "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
    "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60}, "DataFormatConversionConfiguration": conversion})
wait("the stream ACTIVE", lambda: firehose.describe_delivery_stream(DeliveryStreamName=STREAM)
     ["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE")
records = [{"n": n, "ts": 1796205600} for n in range(10)] + [{"n": 100, "ts": 9300000000000000},
                                                             {"n": 101, "ts": 9300000000000000000}]
out = firehose.put_record_batch(DeliveryStreamName=STREAM, Records=[{"Data": json.dumps(r).encode()} for r in records])
assert out["FailedPutCount"] == 0, out


def listed(prefix):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


failed_keys = wait("the format-conversion-failed output", lambda: listed("errors/format-conversion-failed/"))
row_keys = wait("the Parquet object", lambda: listed("rows/"))
docs = [json.loads(line) for k in failed_keys
        for line in s3.get_object(Bucket=BUCKET, Key=k)["Body"].read().splitlines() if line]
raw = sorted(json.loads(base64.b64decode(d["rawData"]))["n"] for d in docs)
codes = {d["lastErrorCode"] for d in docs}
assert raw == [100, 101], raw
assert codes == {"DataFormatConversion.MalformedData"}, codes
rows = sum(pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())).num_rows for k in row_keys)
assert rows == 10, rows
print(f"12 records: {rows} Parquet rows, {len(docs)} in format-conversion-failed with {sorted(codes)}")
