// The AWS SDK for JavaScript v3 against the firehose-kit emulator, each client with its defaults (flexible
// checksums on, virtual-hosted addressing unless told otherwise): S3 checksummed and streamed PutObject,
// multipart upload, paginated listing, DeleteObjects, odd keys; IAM role; Firehose create -> put -> delivered
// -> delete; Kinesis PutRecords over two shards, read back with GetShardIterator/GetRecords. Run by tests/it/compat.rs with AWS_ENDPOINT_URL set; exits non-zero on the first mismatch.
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command,
  DeleteObjectsCommand, CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand,
  paginateListObjectsV2,
} from "@aws-sdk/client-s3";
import { IAMClient, CreateRoleCommand, PutRolePolicyCommand } from "@aws-sdk/client-iam";
import {
  FirehoseClient, CreateDeliveryStreamCommand, DescribeDeliveryStreamCommand, PutRecordBatchCommand,
  DeleteDeliveryStreamCommand,
} from "@aws-sdk/client-firehose";
import {
  KinesisClient, CreateStreamCommand, DescribeStreamSummaryCommand, PutRecordsCommand, ListShardsCommand,
  GetShardIteratorCommand, GetRecordsCommand, DeleteStreamCommand,
} from "@aws-sdk/client-kinesis";

const endpoint = process.env.AWS_ENDPOINT_URL;
const region = process.env.AWS_REGION || "us-east-2";
const credentials = { accessKeyId: "test", secretAccessKey: "test" };
// Path style: `<bucket>.127.0.0.1` cannot be resolved (virtual-hosted addressing is tested with aws-sdk-rust).
const s3 = new S3Client({ region, endpoint, credentials, forcePathStyle: true });
const iam = new IAMClient({ region, endpoint, credentials });
const firehose = new FirehoseClient({ region, endpoint, credentials });
const Bucket = "js-compat";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function eventually(what, check, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

await s3.send(new CreateBucketCommand({ Bucket, CreateBucketConfiguration: { LocationConstraint: region } }));

// Checksummed PutObject (the SDK adds a CRC32 by default) and a streamed body of known length.
const odd = ["a+b c.txt", "100%.csv", "日本/ключ.txt", "q?x&y=z.txt"];
for (const Key of odd) {
  await s3.send(new PutObjectCommand({ Bucket, Key, Body: `body of ${Key}` }));
}
const stream = Readable.from([Buffer.from("streamed "), Buffer.from("body")]);
await s3.send(new PutObjectCommand({ Bucket, Key: "streamed.txt", Body: stream, ContentLength: 13 }));
for (const Key of [...odd, "streamed.txt"]) {
  const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
  const text = await got.Body.transformToString();
  assert.equal(text, Key === "streamed.txt" ? "streamed body" : `body of ${Key}`, Key);
  const head = await s3.send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: "ENABLED" }));
  assert.equal(head.ContentEncoding, undefined, `${Key}: aws-chunked is not stored`);
  // The SDK sent a CRC32 (its default) and validates the one returned against the body.
  assert.ok(head.ChecksumCRC32, `${Key}: the checksum sent is stored and returned`);
  const again = await s3.send(new GetObjectCommand({ Bucket, Key, ChecksumMode: "ENABLED" }));
  assert.equal(again.ChecksumCRC32, head.ChecksumCRC32);
  await again.Body.transformToString();
}

// Multipart: two parts (5 MiB minimum for all but the last).
const mp = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: "big.bin" }));
const parts = [];
for (const [n, body] of [[1, Buffer.alloc(5 * 1024 * 1024, 97)], [2, Buffer.from("tail")]]) {
  const out = await s3.send(new UploadPartCommand({ Bucket, Key: "big.bin", UploadId: mp.UploadId, PartNumber: n, Body: body }));
  parts.push({ ETag: out.ETag, PartNumber: n });
}
await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key: "big.bin", UploadId: mp.UploadId, MultipartUpload: { Parts: parts } }));
const big = await s3.send(new HeadObjectCommand({ Bucket, Key: "big.bin" }));
assert.equal(big.ContentLength, 5 * 1024 * 1024 + 4);
assert.match(big.ETag, /-2"$/, "a multipart ETag ends in -<parts>");

// Paginated listing, two keys a page.
const keys = [];
for await (const page of paginateListObjectsV2({ client: s3, pageSize: 2 }, { Bucket })) {
  assert.ok((page.Contents ?? []).length <= 2);
  keys.push(...(page.Contents ?? []).map((o) => o.Key));
}
assert.deepEqual([...keys].sort(), [...odd, "streamed.txt", "big.bin"].sort());

// DeleteObjects.
const del = await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
assert.equal(del.Deleted.length, keys.length);
assert.equal((await s3.send(new ListObjectsV2Command({ Bucket }))).KeyCount, 0);

// Firehose: create -> ACTIVE -> PutRecordBatch -> delivered to S3 -> delete.
const trust = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "firehose.amazonaws.com" }, Action: "sts:AssumeRole" }],
};
const role = await iam.send(new CreateRoleCommand({ RoleName: "js-compat-role", AssumeRolePolicyDocument: JSON.stringify(trust) }));
// As on AWS, the role must be allowed to write the bucket, or every delivery fails with S3.AccessDenied.
const delivery = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Action: "s3:PutObject", Resource: `arn:aws:s3:::${Bucket}/*` }],
};
await iam.send(new PutRolePolicyCommand({ RoleName: "js-compat-role", PolicyName: "delivery", PolicyDocument: JSON.stringify(delivery) }));
const DeliveryStreamName = "JsCompat";
await firehose.send(new CreateDeliveryStreamCommand({
  DeliveryStreamName,
  DeliveryStreamType: "DirectPut",
  ExtendedS3DestinationConfiguration: {
    RoleARN: role.Role.Arn,
    BucketARN: `arn:aws:s3:::${Bucket}`,
    BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 1 },
  },
}));
await eventually("ACTIVE", async () => {
  const d = await firehose.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName }));
  return d.DeliveryStreamDescription.DeliveryStreamStatus === "ACTIVE";
});
const lines = Array.from({ length: 300 }, (_, i) => `js line ${i}\n`);
const put = await firehose.send(new PutRecordBatchCommand({
  DeliveryStreamName,
  Records: lines.map((l) => ({ Data: Buffer.from(l) })),
}));
assert.equal(put.FailedPutCount, 0);
assert.equal(put.RequestResponses.length, 300);
const delivered = await eventually("delivery", async () => {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket }));
  if (!listed.Contents?.length) return null;
  let text = "";
  for (const o of listed.Contents) {
    text += await (await s3.send(new GetObjectCommand({ Bucket, Key: o.Key }))).Body.transformToString();
  }
  return text.split("\n").length - 1 === lines.length ? text : null;
});
assert.deepEqual(delivered.split("\n").filter(Boolean).sort(), lines.map((l) => l.trim()).sort());
await firehose.send(new DeleteDeliveryStreamCommand({ DeliveryStreamName }));

// Kinesis Data Streams: PutRecords spread over two shards by partition key, read back shard by shard.
const kinesis = new KinesisClient({ region, endpoint, credentials });
const StreamName = "js-compat-stream";
await kinesis.send(new CreateStreamCommand({ StreamName, ShardCount: 2 }));
await eventually("data stream ACTIVE", async () => {
  const d = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName }));
  return d.StreamDescriptionSummary.StreamStatus === "ACTIVE";
});
const entries = Array.from({ length: 300 }, (_, i) => ({ Data: Buffer.from(`js kinesis ${i}\n`), PartitionKey: `k${i}` }));
const putRecords = await kinesis.send(new PutRecordsCommand({ StreamName, Records: entries }));
assert.equal(putRecords.FailedRecordCount, 0);
assert.equal(putRecords.Records.length, 300);
const shardsUsed = new Set(putRecords.Records.map((r) => r.ShardId));
assert.equal(shardsUsed.size, 2, "300 partition keys land on both shards");
const { Shards } = await kinesis.send(new ListShardsCommand({ StreamName }));
const read = [];
for (const shard of Shards) {
  const it = await kinesis.send(new GetShardIteratorCommand({ StreamName, ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON" }));
  const got = await kinesis.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator }));
  read.push(...got.Records.map((r) => Buffer.from(r.Data).toString()));
}
assert.deepEqual(read.sort(), entries.map((e) => e.Data.toString()).sort());
await kinesis.send(new DeleteStreamCommand({ StreamName }));
console.log(`the JavaScript SDK drove the emulator: ${odd.length + 2} objects, multipart, pagination, DeleteObjects, ${lines.length} records verified, ${read.length} Kinesis records put and read back`);
