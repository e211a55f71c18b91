"""The firehose-kit emulator's Python runtime for Lambda functions.

It speaks the Lambda Runtime API (AWS_LAMBDA_RUNTIME_API) as AWS's runtime does: it imports the handler named
by _HANDLER (`module.function`, from LAMBDA_TASK_ROOT) once, then asks for invocations one at a time, calls the
handler with the event and a context object, and posts its result, or its exception as
{"errorMessage", "errorType", "requestId", "stackTrace"}. A handler that cannot be imported is reported as an
init error (Runtime.ImportModuleError, Runtime.HandlerNotFound). Standard library only.
"""
import importlib
import json
import os
import sys
import time
import traceback
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"


def post(path, body, error_type=None):
    headers = {"Content-Type": "application/json"}
    if error_type:
        headers["Lambda-Runtime-Function-Error-Type"] = error_type
    request = urllib.request.Request(API + path, data=body, method="POST", headers=headers)
    urllib.request.urlopen(request).read()


def error_document(error, request_id, error_type=None):
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(traceback.extract_tb(error.__traceback__)),
    }


class Context:
    def __init__(self, request_id, deadline_ms, function_arn):
        self.aws_request_id = request_id
        self.invoked_function_arn = function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))


def load_handler():
    spec = os.environ["_HANDLER"]
    module_name, _, function_name = spec.rpartition(".")
    if not module_name or not function_name:
        raise InitError("Runtime.MalformedHandlerName", "Bad handler '%s': not enough values to unpack" % spec)
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as e:
        raise InitError("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (module_name, e))
    handler = getattr(module, function_name, None)
    if handler is None:
        raise InitError("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (function_name, module_name))
    return handler


class InitError(Exception):
    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type


def main():
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", "."))
    try:
        handler = load_handler()
    except InitError as e:
        post("/init/error", json.dumps(error_document(e, "", e.error_type)).encode(), e.error_type)
        sys.exit(1)
    except Exception as e:  # the module raised while importing
        post("/init/error", json.dumps(error_document(e, "")).encode(), "Runtime.Unknown")
        sys.exit(1)
    while True:
        with urllib.request.urlopen(API + "/invocation/next") as answer:
            request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
            deadline_ms = int(answer.headers.get("Lambda-Runtime-Deadline-Ms", "0"))
            function_arn = answer.headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
            payload = answer.read()
        try:
            event = json.loads(payload) if payload else None
            result = handler(event, Context(request_id, deadline_ms, function_arn))
            body = json.dumps(result).encode()
        except Exception as e:
            post("/invocation/%s/error" % request_id, json.dumps(error_document(e, request_id)).encode(), "Unhandled")
            continue
        try:
            post("/invocation/%s/response" % request_id, body)
        except Exception as e:  # refused (a response past 6 MB is not read to its end): the next event comes
            print("the runtime API refused the response: %s" % e, file=sys.stderr)


main()
