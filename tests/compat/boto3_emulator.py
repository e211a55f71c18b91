"""Drives the firehose-kit emulator with boto3 and the AWS CLI (other SDKs than aws-sdk-rust).

Run by `tests/it/compat.rs` with AWS_ENDPOINT_URL pointing at an emulator; exits non-zero on any mismatch.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import boto3

REGION = os.environ.get("AWS_REGION", "us-east-2")
BUCKET = "boto3-compat"
ROLE = "boto3-compat-role"
STREAM = "Boto3Compat"

s3 = boto3.client("s3", region_name=REGION)
iam = boto3.client("iam", region_name=REGION)
firehose = boto3.client("firehose", region_name=REGION)
sts = boto3.client("sts", region_name=REGION)


def wait(what, check, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    sys.exit(f"timed out waiting for {what}")


account = sts.get_caller_identity()["Account"]
s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
trust = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
role = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
# As on AWS, the role must be allowed to write the bucket, or every delivery fails with S3.AccessDenied.
delivery = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}],
}
iam.put_role_policy(RoleName=ROLE, PolicyName="delivery", PolicyDocument=json.dumps(delivery))
# boto3 decodes the URL-encoded document itself.
assert iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Action"] == "sts:AssumeRole"
firehose.create_delivery_stream(
    DeliveryStreamName=STREAM,
    DeliveryStreamType="DirectPut",
    ExtendedS3DestinationConfiguration={
        "RoleARN": role["Arn"],
        "BucketARN": f"arn:aws:s3:::{BUCKET}",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "CompressionFormat": "GZIP",
    },
)
wait("ACTIVE", lambda: firehose.describe_delivery_stream(DeliveryStreamName=STREAM)["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE")

lines = [f"boto3 line {i}\n".encode() for i in range(1000)]
out = firehose.put_record_batch(DeliveryStreamName=STREAM, Records=[{"Data": line} for line in lines[:500]])
assert out["FailedPutCount"] == 0 and len(out["RequestResponses"]) == 500, out
out = firehose.put_record_batch(DeliveryStreamName=STREAM, Records=[{"Data": line} for line in lines[500:]])
assert out["FailedPutCount"] == 0, out

keys = wait("objects", lambda: [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])])
import gzip

data = b"".join(gzip.decompress(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()) for k in sorted(keys))
assert sorted(data.splitlines(keepends=True)) == sorted(lines), "delivered bytes differ"
assert all(k.endswith(".gz") and f"/{STREAM}-1-" in k for k in keys), keys

# The AWS CLI (botocore underneath, but its own commands: s3 high-level transfer, pagination, output).
aws = shutil.which("aws")
if aws is None:
    sys.exit("the AWS CLI is not installed (pip install awscli)")


def cli(*args):
    result = subprocess.run([aws, *args, "--region", REGION], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"aws {' '.join(args)} failed: {result.stderr}")
    return result.stdout


listing = cli("s3", "ls", f"s3://{BUCKET}/", "--recursive")
assert all(k in listing for k in keys), listing
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "big.log")
    with open(path, "wb") as f:
        f.write(b"x" * (10 * 1024 * 1024))  # above the CLI's 8 MiB multipart threshold
    cli("s3", "cp", path, f"s3://{BUCKET}/upload/big.log")
    head = json.loads(cli("s3api", "head-object", "--bucket", BUCKET, "--key", "upload/big.log"))
    assert head["ContentLength"] == 10 * 1024 * 1024, head
    cli("s3", "cp", f"s3://{BUCKET}/upload/big.log", os.path.join(tmp, "back.log"))
    assert os.path.getsize(os.path.join(tmp, "back.log")) == 10 * 1024 * 1024
# Odd keys: boto3 and the CLI list with EncodingType=url and decode what comes back, so the emulator must encode
# exactly as S3 does, or `+`, spaces and `%` come back wrong and `aws s3 rm` "deletes" keys that do not exist.
ODD = ["odd/a+b.txt", "odd/a b.txt", "odd/100%.csv", "odd/x%41.txt", "odd/日本/ключ.txt", "odd/q?x&y=z.txt",
       "odd/t~;(1).txt"]
for k in ODD:
    s3.put_object(Bucket=BUCKET, Key=k, Body=k.encode())
listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="odd/")["Contents"])
assert listed == sorted(ODD), listed
listed_v1 = sorted(o["Key"] for o in s3.list_objects(Bucket=BUCKET, Prefix="odd/")["Contents"])
assert listed_v1 == sorted(ODD), listed_v1
for k in ODD:
    assert s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() == k.encode(), k
    assert "ContentEncoding" not in s3.head_object(Bucket=BUCKET, Key=k), "aws-chunked is not stored"
cli("s3", "rm", f"s3://{BUCKET}/odd/", "--recursive")
assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="odd/"), "aws s3 rm --recursive removed every odd key"
with tempfile.TemporaryDirectory() as tmp:
    for name in ["a b.txt", "c+d.txt", "e%f.txt", "gone.txt"]:
        with open(os.path.join(tmp, name), "w") as f:
            f.write(name)
    cli("s3", "sync", tmp, f"s3://{BUCKET}/sync/")
    os.remove(os.path.join(tmp, "gone.txt"))
    cli("s3", "sync", tmp, f"s3://{BUCKET}/sync/", "--delete")
    synced = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="sync/")["Contents"])
    assert synced == ["sync/a b.txt", "sync/c+d.txt", "sync/e%f.txt"], synced
    # A second sync finds nothing to do: the listing matched the local names exactly.
    assert cli("s3", "sync", tmp, f"s3://{BUCKET}/sync/", "--delete").strip() == "", "sync is idempotent"

streams = json.loads(cli("firehose", "list-delivery-streams"))
assert streams["DeliveryStreamNames"] == [STREAM], streams

# CloudWatch Logs: a stream with error logging whose bucket does not exist. The emulator retries the delivery
# and writes Firehose's error events, which boto3 and `aws logs filter-log-events` read back.
logs = boto3.client("logs", region_name=REGION)
LOG_GROUP, LOG_STREAM, LOGGED = "/aws/kinesisfirehose/Boto3Logged", "DestinationDelivery", "Boto3Logged"
logs.create_log_group(logGroupName=LOG_GROUP, tags={"team": "data"})
logs.put_retention_policy(logGroupName=LOG_GROUP, retentionInDays=14)
logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=LOG_STREAM)
try:
    logs.create_log_group(logGroupName=LOG_GROUP)
    sys.exit("a second CreateLogGroup must fail")
except logs.exceptions.ResourceAlreadyExistsException:
    pass
group = logs.describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"][0]
assert group["retentionInDays"] == 14 and group["arn"].endswith(":*"), group
assert logs.list_tags_for_resource(resourceArn=group["logGroupArn"])["tags"] == {"team": "data"}
log_stream_arn = f"arn:aws:logs:{REGION}:{account}:log-group:{LOG_GROUP}:log-stream:{LOG_STREAM}"
logging_policy = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::boto3-missing-bucket/*"},
        {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": log_stream_arn},
    ],
}
iam.put_role_policy(RoleName=ROLE, PolicyName="logging", PolicyDocument=json.dumps(logging_policy))
firehose.create_delivery_stream(
    DeliveryStreamName=LOGGED,
    DeliveryStreamType="DirectPut",
    ExtendedS3DestinationConfiguration={
        "RoleARN": role["Arn"],
        "BucketARN": "arn:aws:s3:::boto3-missing-bucket",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "CloudWatchLoggingOptions": {"Enabled": True, "LogGroupName": LOG_GROUP, "LogStreamName": LOG_STREAM},
    },
)
wait("ACTIVE", lambda: firehose.describe_delivery_stream(DeliveryStreamName=LOGGED)["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE")
firehose.put_record(DeliveryStreamName=LOGGED, Record={"Data": b"never delivered\n"})


def filtered():
    out = json.loads(cli("logs", "filter-log-events", "--log-group-name", LOG_GROUP, "--filter-pattern", "S3.NoSuchBucket"))
    return out["events"]


events = wait("an S3.NoSuchBucket error event", filtered)
event = json.loads(events[0]["message"])
assert event["errorCode"] == "S3.NoSuchBucket", event
assert event["destination"] == "arn:aws:s3:::boto3-missing-bucket", event
assert event["deliveryStreamARN"].endswith(f":deliverystream/{LOGGED}"), event
assert event["message"].startswith("The specified bucket does not exist."), event
got = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=LOG_STREAM, startFromHead=True)["events"]
assert got and json.loads(got[0]["message"])["errorCode"] == "S3.NoSuchBucket", got
json_filtered = logs.filter_log_events(logGroupName=LOG_GROUP, filterPattern='{ $.errorCode = "S3.NoSuchBucket" }')
assert json_filtered["events"], json_filtered
firehose.delete_delivery_stream(DeliveryStreamName=LOGGED)

# Dynamic partitioning, configured by hand as a boto3 user would: JSON deaggregation, a jq query, and
# partitions by the records' own fields. Concatenated JSON objects go in; each lands under its partition.
PARTED = "Boto3Partitioned"
iam.put_role_policy(RoleName=ROLE, PolicyName="delivery", PolicyDocument=json.dumps(delivery))
firehose.create_delivery_stream(
    DeliveryStreamName=PARTED,
    DeliveryStreamType="DirectPut",
    ExtendedS3DestinationConfiguration={
        "RoleARN": role["Arn"],
        "BucketARN": f"arn:aws:s3:::{BUCKET}",
        "Prefix": "parted/customer=!{partitionKeyFromQuery:customer}/level=!{partitionKeyFromQuery:level}/",
        "ErrorOutputPrefix": "parted-errors/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
        "DynamicPartitioningConfiguration": {"Enabled": True, "RetryOptions": {"DurationInSeconds": 300}},
        "ProcessingConfiguration": {
            "Enabled": True,
            "Processors": [
                {"Type": "RecordDeAggregation", "Parameters": [{"ParameterName": "SubRecordType", "ParameterValue": "JSON"}]},
                {"Type": "MetadataExtraction", "Parameters": [
                    {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer: .customer_id, level: (.level | ascii_downcase)}"},
                    {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
                ]},
                {"Type": "AppendDelimiterToRecord", "Parameters": []},
            ],
        },
    },
)
wait("ACTIVE", lambda: firehose.describe_delivery_stream(DeliveryStreamName=PARTED)["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE")
described = firehose.describe_delivery_stream(DeliveryStreamName=PARTED)["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
assert described["DynamicPartitioningConfiguration"]["Enabled"] is True, described
events = [{"customer_id": f"c{i % 3}", "level": ["INFO", "ERROR"][i % 2], "n": i} for i in range(60)]
blobs = ["".join(json.dumps(e) for e in events[k:k + 10]).encode() for k in range(0, 60, 10)]
out = firehose.put_record_batch(DeliveryStreamName=PARTED, Records=[{"Data": b} for b in blobs])
assert out["FailedPutCount"] == 0, out


def partitioned():
    found = s3.list_objects_v2(Bucket=BUCKET, Prefix="parted/").get("Contents", [])
    return found if len(found) == 6 else None


parted_keys = [o["Key"] for o in wait("six partitions", partitioned, timeout=30)]
seen = 0
for key in parted_keys:
    customer = key.split("customer=")[1].split("/")[0]
    level = key.split("level=")[1].split("/")[0]
    for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines():
        record = json.loads(line)
        assert (record["customer_id"], record["level"].lower()) == (customer, level), (key, record)
        seen += 1
assert seen == len(events), seen
firehose.delete_delivery_stream(DeliveryStreamName=PARTED)

# Lambda: a function from a zip (the Apache -> JSON transformation templates/transform ships), a stream whose
# Lambda processor runs it on every record, the transformed objects, and the processing-failed documents of the
# lines it could not parse, with their original data. Then the AWS CLI invokes the function itself.
import io
import zipfile

lam = boto3.client("lambda", region_name=REGION)
TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "templates", "transform", "apache_to_json.py")
lambda_trust = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
exec_role = iam.create_role(RoleName="boto3-transform-exec", AssumeRolePolicyDocument=json.dumps(lambda_trust))["Role"]
code = io.BytesIO()
with zipfile.ZipFile(code, "w") as z:
    z.write(TEMPLATE, "apache_to_json.py")
fn = lam.create_function(
    FunctionName="apache-to-json",
    Runtime="python3.12",
    Role=exec_role["Arn"],
    Handler="apache_to_json.handler",
    Code={"ZipFile": code.getvalue()},
    Timeout=30,
)
lam.get_waiter("function_active_v2").wait(FunctionName="apache-to-json")
assert lam.get_function(FunctionName="apache-to-json")["Configuration"]["CodeSize"] == len(code.getvalue())
invoke = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"],
                   "Resource": [fn["FunctionArn"], fn["FunctionArn"] + ":*"]}],
}
iam.put_role_policy(RoleName=ROLE, PolicyName="invoke", PolicyDocument=json.dumps(invoke))
TRANSFORMED = "Boto3Transformed"
firehose.create_delivery_stream(
    DeliveryStreamName=TRANSFORMED,
    ExtendedS3DestinationConfiguration={
        "RoleARN": role["Arn"],
        "BucketARN": f"arn:aws:s3:::{BUCKET}",
        "Prefix": "json/",
        "ErrorOutputPrefix": "failed/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        "ProcessingConfiguration": {
            "Enabled": True,
            "Processors": [{"Type": "Lambda", "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": fn["FunctionArn"]}]}],
        },
    },
)
wait("transforming stream ACTIVE", lambda: firehose.describe_delivery_stream(DeliveryStreamName=TRANSFORMED)["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE")
described = firehose.describe_delivery_stream(DeliveryStreamName=TRANSFORMED)["DeliveryStreamDescription"]
params = {p["ParameterName"]: p["ParameterValue"] for p in described["Destinations"][0]["ExtendedS3DestinationDescription"]["ProcessingConfiguration"]["Processors"][0]["Parameters"]}
assert params["NumberOfRetries"] == "3" and params["BufferIntervalInSeconds"] == "60", params
apache = [f'203.0.113.{i % 250} - - [02/Dec/2026:10:00:{i % 60:02d} +0000] "GET /page/{i} HTTP/1.1" 200 {100 + i}\n'.encode() for i in range(950)]
garbage = [f"not an apache line {i}\n".encode() for i in range(50)]
records = apache + garbage
for start in range(0, len(records), 500):
    out = firehose.put_record_batch(DeliveryStreamName=TRANSFORMED, Records=[{"Data": r} for r in records[start:start + 500]])
    assert out["FailedPutCount"] == 0, out


def bodies(prefix):
    found = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return [s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in found]


def lines_under(prefix, n):
    lines = [line for body in bodies(prefix) for line in body.splitlines()]
    return lines if len(lines) >= n else None


docs = [json.loads(line) for line in wait("950 JSON documents", lambda: lines_under("json/", 950), timeout=60)]
assert len(docs) == 950 and sorted(d["path"] for d in docs) == sorted(f"/page/{i}" for i in range(950)), len(docs)
failed = [json.loads(line) for line in wait("50 processing-failed documents", lambda: lines_under("failed/processing-failed/", 50), timeout=60)]
assert sorted(base64.b64decode(d["rawData"]) for d in failed) == sorted(garbage), failed[:2]
assert all(d["errorCode"] == "Lambda.ProcessingFailedStatus" for d in failed), failed[:2]
with tempfile.TemporaryDirectory() as tmp:
    event = {"records": [{"recordId": "1", "approximateArrivalTimestamp": 0, "data": base64.b64encode(apache[0]).decode()}]}
    with open(os.path.join(tmp, "event.json"), "w") as f:
        json.dump(event, f)
    cli("lambda", "invoke", "--function-name", "apache-to-json", "--payload", "fileb://" + os.path.join(tmp, "event.json"), os.path.join(tmp, "out.json"))
    with open(os.path.join(tmp, "out.json")) as f:
        answer = json.load(f)
    assert answer["records"][0]["result"] == "Ok", answer
firehose.delete_delivery_stream(DeliveryStreamName=TRANSFORMED)
lam.delete_function(FunctionName="apache-to-json")
cli("logs", "delete-log-group", "--log-group-name", LOG_GROUP)
assert logs.describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"] == []

# Kinesis Data Streams in front of Firehose: boto3 and the AWS CLI put records (PutRecord, PutRecords), read them
# back (GetShardIterator, GetRecords), and a chained delivery stream writes every one to S3.
kinesis = boto3.client("kinesis", region_name=REGION)
DATA_STREAM = "boto3-chain"
kinesis.create_stream(StreamName=DATA_STREAM, ShardCount=2)
wait("data stream ACTIVE", lambda: kinesis.describe_stream_summary(StreamName=DATA_STREAM)["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE")
data_arn = kinesis.describe_stream_summary(StreamName=DATA_STREAM)["StreamDescriptionSummary"]["StreamARN"]
read_grant = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Resource": data_arn, "Action": [
        "kinesis:DescribeStream", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards"]}],
}
iam.put_role_policy(RoleName=ROLE, PolicyName="read-source", PolicyDocument=json.dumps(read_grant))
CHAINED = "Boto3Chained"
firehose.create_delivery_stream(
    DeliveryStreamName=CHAINED,
    DeliveryStreamType="KinesisStreamAsSource",
    KinesisStreamSourceConfiguration={"KinesisStreamARN": data_arn, "RoleARN": role["Arn"]},
    ExtendedS3DestinationConfiguration={
        "RoleARN": role["Arn"],
        "BucketARN": f"arn:aws:s3:::{BUCKET}",
        "Prefix": "chained/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
    },
)
wait("chained ACTIVE", lambda: firehose.describe_delivery_stream(DeliveryStreamName=CHAINED)["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE")
source = firehose.describe_delivery_stream(DeliveryStreamName=CHAINED)["DeliveryStreamDescription"]["Source"]
assert source["KinesisStreamSourceDescription"]["KinesisStreamARN"] == data_arn, source
chained = [f"chained line {i}\n".encode() for i in range(400)]
for line in chained[:10]:
    out = kinesis.put_record(StreamName=DATA_STREAM, Data=line, PartitionKey=line.decode())
    assert out["ShardId"].startswith("shardId-") and len(out["SequenceNumber"]) == 56, out
out = kinesis.put_records(StreamName=DATA_STREAM, Records=[{"Data": d, "PartitionKey": str(i)} for i, d in enumerate(chained[10:300])])
assert out["FailedRecordCount"] == 0 and len(out["Records"]) == 290, out
# Blobs on the command line: raw text in CLI v1; v2 wants base64 unless told raw-in-base64-out.
version = subprocess.run([aws, "--version"], capture_output=True, text=True)
raw = ["--cli-binary-format", "raw-in-base64-out"] if "aws-cli/2" in version.stdout + version.stderr else []
for line in chained[300:350]:
    cli("kinesis", "put-record", "--stream-name", DATA_STREAM, "--partition-key", "cli", "--data", line.decode(), *raw)
cli_records = [{"Data": d.decode(), "PartitionKey": f"c{i}"} for i, d in enumerate(chained[350:])]
put = json.loads(cli("kinesis", "put-records", "--stream-name", DATA_STREAM, "--records", json.dumps(cli_records), *raw))
assert put["FailedRecordCount"] == 0, put
read = []
for shard in kinesis.list_shards(StreamName=DATA_STREAM)["Shards"]:
    it = kinesis.get_shard_iterator(StreamName=DATA_STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    read += [r["Data"] for r in kinesis.get_records(ShardIterator=it["ShardIterator"], Limit=10000)["Records"]]
assert sorted(read) == sorted(chained), f"{len(read)} records read back"
it = json.loads(cli("kinesis", "get-shard-iterator", "--stream-name", DATA_STREAM, "--shard-id", "shardId-000000000000",
                    "--shard-iterator-type", "TRIM_HORIZON"))["ShardIterator"]
cli_read = json.loads(cli("kinesis", "get-records", "--shard-iterator", it))["Records"]
assert cli_read and all(base64.b64decode(r["Data"]) in chained for r in cli_read), cli_read[:1]
try:
    firehose.put_record(DeliveryStreamName=CHAINED, Record={"Data": b"direct\n"})
    sys.exit("PutRecord on a KinesisStreamAsSource stream was accepted")
except firehose.exceptions.InvalidArgumentException as e:
    assert "not permitted on KinesisStreamAsSource" in str(e), e
delivered_chain = wait("400 chained lines", lambda: lines_under("chained/", 400), timeout=60)
assert sorted(delivered_chain) == sorted(d.rstrip(b"\n") for d in chained), len(delivered_chain)
firehose.delete_delivery_stream(DeliveryStreamName=CHAINED)
kinesis.delete_stream(StreamName=DATA_STREAM)

# The Glue Data Catalog: a database and a table (names folded to lower case), an update kept as version 2.
glue = boto3.client("glue", region_name=REGION)
glue.create_database(DatabaseInput={"Name": "Boto3Logs"})
columns = [{"Name": "host", "Type": "string"}, {"Name": "status", "Type": "int"}, {"Name": "time", "Type": "timestamp"}]
glue.create_table(DatabaseName="boto3logs", TableInput={"Name": "Apache", "StorageDescriptor": {"Columns": columns}})
table = glue.get_table(DatabaseName="BOTO3LOGS", Name="apache")["Table"]
assert table["Name"] == "apache" and table["StorageDescriptor"]["Columns"] == columns, table
glue.update_table(DatabaseName="boto3logs", TableInput={"Name": "apache", "StorageDescriptor": {"Columns": columns[:2]}})
versions = [v["VersionId"] for v in glue.get_table_versions(DatabaseName="boto3logs", TableName="apache")["TableVersions"]]
assert versions == ["2", "1"], versions
try:
    glue.get_table(DatabaseName="boto3logs", Name="nope")
    sys.exit("GetTable found a table that does not exist")
except glue.exceptions.EntityNotFoundException:
    pass
glue.delete_database(Name="boto3logs")
assert glue.get_databases()["DatabaseList"] == []
cli("s3", "rm", f"s3://{BUCKET}/", "--recursive")
cli("s3", "rb", f"s3://{BUCKET}")
firehose.delete_delivery_stream(DeliveryStreamName=STREAM)
print(f"boto3 and the AWS CLI drove the emulator: {len(keys)} gzip objects, {len(lines)} lines verified, error events read back, {seen} partitioned records in {len(parted_keys)} partitions, {len(docs)} records transformed by Lambda and {len(failed)} processing-failed, {len(chained)} records through a Kinesis data stream, a Glue table and its versions")
