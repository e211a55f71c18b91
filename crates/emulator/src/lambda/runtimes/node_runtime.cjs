// The firehose-kit emulator's Node.js runtime for Lambda functions.
//
// It speaks the Lambda Runtime API (AWS_LAMBDA_RUNTIME_API) as AWS's runtime does: it loads the handler named by
// _HANDLER (`file.function`, from LAMBDA_TASK_ROOT; .js, .mjs or .cjs, CommonJS or ES module) once, then asks
// for invocations one at a time and posts the handler's result (async handlers, promises and callbacks), or its
// error as {"errorType", "errorMessage", "trace"}. A handler that cannot be loaded is reported as an init error
// (Runtime.ImportModuleError, Runtime.HandlerNotFound). Node's standard library only.
"use strict";
const http = require("http");
const fs = require("fs");
const path = require("path");
const { pathToFileURL } = require("url");

const [HOST, PORT] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");

function call(method, route, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: HOST, port: PORT, method, path: "/2018-06-01/runtime" + route, headers: headers || {} },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      },
    );
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function errorDocument(e) {
  if (e && e.errorType) return e;
  const error = e instanceof Error ? e : new Error(String(e));
  return { errorType: error.name || "Error", errorMessage: error.message, trace: String(error.stack || "").split("\n") };
}

async function loadHandler() {
  const spec = process.env._HANDLER || "";
  const dot = spec.lastIndexOf(".");
  const moduleName = spec.slice(0, dot);
  const functionName = spec.slice(dot + 1);
  const root = process.env.LAMBDA_TASK_ROOT || ".";
  const file = [".js", ".mjs", ".cjs"].map((ext) => path.join(root, moduleName + ext)).find((f) => fs.existsSync(f));
  if (dot < 1 || !file) {
    throw { errorType: "Runtime.ImportModuleError", errorMessage: `Error: Cannot find module '${moduleName}'`, trace: [] };
  }
  const loaded = await import(pathToFileURL(file).href);
  const handler = loaded[functionName] || (loaded.default && loaded.default[functionName]);
  if (typeof handler !== "function") {
    throw { errorType: "Runtime.HandlerNotFound", errorMessage: `${moduleName}.${functionName} is undefined or not exported`, trace: [] };
  }
  return handler;
}

function run(handler, event, context) {
  return new Promise((resolve, reject) => {
    const callback = (err, result) => (err ? reject(err) : resolve(result));
    const returned = handler(event, context, callback);
    if (returned && typeof returned.then === "function") returned.then(resolve, reject);
    else if (handler.length < 3) resolve(returned);
  });
}

async function main() {
  let handler;
  try {
    handler = await loadHandler();
  } catch (e) {
    const doc = errorDocument(e);
    await call("POST", "/init/error", JSON.stringify(doc), { "Lambda-Runtime-Function-Error-Type": doc.errorType });
    process.exit(1);
  }
  for (;;) {
    const next = await call("GET", "/invocation/next");
    const id = next.headers["lambda-runtime-aws-request-id"];
    const deadline = Number(next.headers["lambda-runtime-deadline-ms"] || 0);
    const context = {
      awsRequestId: id,
      invokedFunctionArn: next.headers["lambda-runtime-invoked-function-arn"],
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    };
    let result;
    try {
      result = await run(handler, next.body ? JSON.parse(next.body) : null, context);
    } catch (e) {
      const doc = errorDocument(e);
      await call("POST", `/invocation/${id}/error`, JSON.stringify(doc), { "Lambda-Runtime-Function-Error-Type": "Unhandled" });
      continue;
    }
    try {
      await call("POST", `/invocation/${id}/response`, JSON.stringify(result === undefined ? null : result));
    } catch (e) {
      // Refused (a response past 6 MB is not read to its end): the next event comes.
      console.error(`the runtime API refused the response: ${e}`);
    }
  }
}

main();
