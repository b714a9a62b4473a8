"""What an AWS API call is (service, action, protocol) and how AWS answers an
error in that protocol: shared by the call counter, the fault injector and
local IAM (iam_enforce.py), so each answers in the shape the caller's SDK parses."""

from __future__ import annotations

import json
import re
import urllib.parse
import uuid
from typing import Any, Callable

READ_PREFIXES = ("Describe", "Get", "List", "Query", "Scan", "Head", "Filter", "Receive", "BatchGet")


def classify_call(environ: dict[str, Any], body: bytes) -> tuple[str, str, str]:
    """(service, action, protocol) of an AWS API request.

    The service comes from the SigV4 credential scope, the action from
    X-Amz-Target (JSON protocols), Action= (query protocols) or the method
    and path (REST protocols).  The protocol (json, query, rest-json, s3,
    route53) says which error shape the service's SDK parses.
    """
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
    service = match.group(1) if match else "unknown"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rsplit(".", 1)[-1], "json"
    params = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" not in params and environ.get("CONTENT_TYPE", "").startswith(
            "application/x-www-form-urlencoded"):
        params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    if "Action" in params:
        return service, params["Action"][0], "query"
    method = environ.get("REQUEST_METHOD", "GET")
    path = [p for p in environ.get("PATH_INFO", "").split("/") if p]
    query = environ.get("QUERY_STRING", "")
    if service == "s3":
        what = "object" if len(path) > 1 else "bucket"
        sub = query.split("=")[0].split("&")[0]
        return service, f"{method} {what}{'?' + sub if sub else ''}", "s3"
    # Other REST APIs: the last non-id path segment names the resource.
    words = [p for p in path if not re.search(r"\d{4}-\d{2}-\d{2}|^fs-|^fsap-|^[A-Z0-9]{12,}$|arn", p)]
    protocol = "route53" if service == "route53" else "rest-json"
    return service, f"{method} {words[-1] if words else '/'}", protocol


def is_read(action: str) -> bool:
    """The read/write split of bench/api_calls.py: Describe*/Get*/List*/… and GET/HEAD are reads."""
    return action.startswith(READ_PREFIXES) or action.startswith(("GET ", "HEAD "))


def json_answer(start_response: Callable, status: str, document: Any) -> list[bytes]:
    body = json.dumps(document, indent=1).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


REASONS = {400: "Bad Request", 403: "Forbidden", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable"}
# (status, code) per protocol: throttle, unavailable (503 / 500), drop, error.
_ERROR_CODES: dict[str, dict[str, tuple[int, str]]] = {
    "json": {"throttle": (400, "ThrottlingException"),
             "unavailable": (503, "ServiceUnavailableException"),
             "internal": (500, "InternalFailure"),
             "error": (400, "AccessDeniedException")},
    "rest-json": {"throttle": (400, "ThrottlingException"),
                  "unavailable": (503, "ServiceUnavailableException"),
                  "internal": (500, "InternalFailure"),
                  "error": (403, "AccessDeniedException")},
    "query": {"throttle": (400, "Throttling"),
              "unavailable": (503, "ServiceUnavailable"),
              "internal": (500, "InternalError"),
              "error": (403, "AccessDenied")},
    "route53": {"throttle": (400, "Throttling"),
                "unavailable": (503, "ServiceUnavailable"),
                "internal": (500, "InternalError"),
                "error": (403, "AccessDenied")},
    "s3": {"throttle": (503, "SlowDown"),
           "unavailable": (503, "ServiceUnavailable"),
           "internal": (500, "InternalError"),
           "error": (403, "AccessDenied")},
}


def error_response(protocol: str, kind: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """An AWS error in the protocol's own shape, so the SDK parses its code.

    `kind`: throttle, unavailable, internal (500) or error (AccessDenied).
    """
    status, code = _ERROR_CODES.get(protocol, _ERROR_CODES["rest-json"])[kind]
    request_id = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id), ("x-stepdeploy-fault", kind)]
    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
        headers += [("Content-Type", "application/x-amz-json-1.1"),
                    ("x-amzn-ErrorType", code)]
    elif protocol == "s3":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message>"
                f"<RequestId>{request_id}</RequestId><HostId>stepdeploy</HostId></Error>").encode()
        headers += [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    else:  # query protocols and Route53: <ErrorResponse><Error>…
        namespace = (' xmlns="https://route53.amazonaws.com/doc/2013-04-01/"'
                     if protocol == "route53" else "")
        party = "Sender" if status < 500 else "Receiver"
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<ErrorResponse{namespace}><Error><Type>{party}</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
                "</ErrorResponse>").encode()
        headers += [("Content-Type", "text/xml")]
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body

