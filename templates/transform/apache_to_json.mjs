// Firehose data transformation: Apache access-log lines to JSON documents, one per line (the same as
// apache_to_json.py, for Node.js runtimes).
//
// AWS's "Apache log to JSON" blueprint, with two differences that make the output usable as delivered: each
// document ends with a newline, and a record holding several lines (firehose-kit packs lines into records)
// becomes several documents. A record with a line that does not parse is marked ProcessingFailed: Firehose
// writes it, unchanged, to the processing-failed error output.
//
// Deploy it with `firehose-kit setup --transform templates/transform/apache_to_json.mjs` (handler
// `apache_to_json.handler`, any nodejs runtime).

const LINE =
  /^([\d.:a-fA-F]+) (\S+) (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+|-)(?: "([^"]*)" "([^"]*)")?/;
const MONTHS = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };

function timestamp(text) {
  // 10/Oct/2000:13:55:36 -0700
  const m = /^(\d{2})\/(\w{3})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text);
  if (!m) return null;
  const offset = (m[7] === "-" ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9]));
  const utc = Date.UTC(Number(m[3]), MONTHS[m[2]], Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  return new Date(utc - offset * 60000).toISOString().replace(".000Z", "Z");
}

function documentOf(line) {
  const m = LINE.exec(line);
  if (!m) return null;
  const [verb, ...rest] = m[5].split(" ");
  const path = rest.length > 1 ? rest.slice(0, -1).join(" ") : rest.join(" ");
  const doc = {
    host: m[1],
    ident: m[2],
    authuser: m[3],
    "@timestamp": timestamp(m[4]),
    request: m[5],
    verb,
    path,
    response: Number(m[6]),
    bytes: m[7] === "-" ? 0 : Number(m[7]),
  };
  if (m[8] !== undefined) {
    doc.referrer = m[8];
    doc.agent = m[9];
  }
  return JSON.stringify(doc);
}

export const handler = async (event) => ({
  records: event.records.map((record) => {
    const text = Buffer.from(record.data, "base64").toString("utf8");
    const docs = text.split("\n").filter((l) => l.length > 0).map(documentOf);
    if (docs.length === 0 || docs.some((d) => d === null)) {
      return { recordId: record.recordId, result: "ProcessingFailed", data: record.data };
    }
    const data = Buffer.from(docs.map((d) => d + "\n").join("")).toString("base64");
    return { recordId: record.recordId, result: "Ok", data };
  }),
});
