"""What the boto3 conversion scripts share (conversion.py, out_of_range.py): the clients, a wait with a deadline,
and a bucket with a role Firehose may assume to deliver there and read Glue tables."""
import json
import os
import sys
import time

import boto3

REGION = os.environ.get("AWS_REGION", "us-east-2")
s3, iam, glue, firehose = (boto3.client(n, region_name=REGION) for n in ("s3", "iam", "glue", "firehose"))


def wait(what, check, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def bucket_and_role(bucket, role_name):
    """Creates `bucket` and a role that may put objects in it and read Glue tables; returns the role."""
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Allow", "Action": ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"], "Resource": "*"}]}
    iam.put_role_policy(RoleName=role_name, PolicyName="delivery", PolicyDocument=json.dumps(policy))
    return role
