"""The outermost WSGI middleware: counts stepdeploy's own AWS API calls
(GET /__stepdeploy__/calls; DELETE resets) for bench/api_calls.py and hands
each one to the fault injector (faults.py)."""

from __future__ import annotations

import io
import json
import threading
from typing import Any, Callable

from .faults import Call, FaultInjector
from .protocol import classify_call


class CallCounter:
    """WSGI middleware for stepdeploy's own AWS API calls (User-Agent
    aws-sdk-rust): counts them by service and action for the API-call
    benchmark (GET /__stepdeploy__/calls reads the counts as JSON, DELETE
    resets them) and injects the faults configured at
    /__stepdeploy__/faults (README.md)."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.faults = FaultInjector()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/__stepdeploy__/calls"):
            if environ.get("REQUEST_METHOD") == "DELETE":
                with self.lock:
                    self.counts.clear()
            with self.lock:
                body = json.dumps({"counts": dict(sorted(self.counts.items()))}).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        if path.startswith("/__stepdeploy__/faults"):
            return self.faults.control(environ, start_response)
        agent = environ.get("HTTP_USER_AGENT", "") + environ.get("HTTP_X_AMZ_USER_AGENT", "")
        # Only stepdeploy's own calls (the Rust SDK): not the stand-in's, the seed's or moto's internal ones.
        if not path.startswith("/moto-api") and "aws-sdk-rust" in agent:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            service, action, protocol = classify_call(environ, body)
            key = f"{service}:{action}"
            with self.lock:
                self.counts[key] = self.counts.get(key, 0) + 1
            call = Call(environ, body, service, action, protocol, self.faults)
            rule = self.faults.decide(call)
            if rule is not None:
                return self.faults.inject(rule, call, self.app, environ, start_response)
        return self.app(environ, start_response)
