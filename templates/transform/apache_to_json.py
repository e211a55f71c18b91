"""Firehose data transformation: Apache access-log lines to JSON documents, one per line.

AWS's "Apache log to JSON" blueprint, with two differences that make the output usable as delivered: each
document ends with a newline (the blueprint's run together in the S3 object), and a record holding several
lines (firehose-kit packs lines into records) becomes several documents. A record with a line that does not
parse is marked ProcessingFailed: Firehose writes it, unchanged, to the processing-failed error output.

Deploy it with `firehose-kit setup --transform templates/transform/apache_to_json.py` (handler
`apache_to_json.handler`, any python3 runtime).
"""
import base64
import json
import re
from datetime import datetime, timezone

LINE = re.compile(
    r'^(?P<host>[\d.:a-fA-F]+) (?P<ident>\S+) (?P<authuser>\S+) \[(?P<time>[^\]]+)\] '
    r'"(?P<request>[^"]*)" (?P<response>\d{3}) (?P<bytes>\d+|-)'
    r'(?: "(?P<referrer>[^"]*)" "(?P<agent>[^"]*)")?'
)


def document(line):
    m = LINE.match(line)
    if m is None:
        return None
    when = datetime.strptime(m["time"], "%d/%b/%Y:%H:%M:%S %z")
    verb, _, rest = m["request"].partition(" ")
    path = rest.rsplit(" ", 1)[0] if " " in rest else rest
    doc = {
        "host": m["host"],
        "ident": m["ident"],
        "authuser": m["authuser"],
        "@timestamp": when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "request": m["request"],
        "verb": verb,
        "path": path,
        "response": int(m["response"]),
        "bytes": 0 if m["bytes"] == "-" else int(m["bytes"]),
    }
    if m["referrer"] is not None:
        doc["referrer"] = m["referrer"]
        doc["agent"] = m["agent"]
    return json.dumps(doc, separators=(",", ":"))


def handler(event, context):
    out = []
    for record in event["records"]:
        text = base64.b64decode(record["data"]).decode("utf-8", "replace")
        docs = [document(line) for line in text.splitlines() if line]
        if not docs or any(d is None for d in docs):
            out.append({"recordId": record["recordId"], "result": "ProcessingFailed", "data": record["data"]})
            continue
        data = "".join(d + "\n" for d in docs).encode()
        out.append({"recordId": record["recordId"], "result": "Ok", "data": base64.b64encode(data).decode()})
    return {"records": out}
