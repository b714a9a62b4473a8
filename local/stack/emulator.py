"""Client of the Lambda emulator (`cargo lambda watch`), shared by the Lambda
and EventBridge patches: the function's Handler is the binary name."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import log

DEFAULT_LAMBDA_ENDPOINT = "http://127.0.0.1:9000"
# The emulator may compile the binary on its first invocation.
EMULATOR_TIMEOUT_S = 900
# Lambda retries a failed asynchronous invocation twice (AWS: after about
# one and two minutes; here after one and two seconds).
ASYNC_RETRY_DELAYS_S = (1.0, 2.0)

# Set by the launcher (--lambda-endpoint) before the patches are applied.
endpoint = DEFAULT_LAMBDA_ENDPOINT


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def invoke_emulator(fn: Any, payload: bytes) -> tuple[bytes, bool]:
    """POST `payload` to the emulator for moto LambdaFunction `fn`.

    Returns (response body, is_function_error).  Every failure to get an
    answer is reported as a function error, so it is visible to the caller.
    """
    binary = (fn.handler or "").strip() or fn.function_name
    url = (
        f"{endpoint.rstrip('/')}/2015-03-31/functions/"
        f"{urllib.parse.quote(binary, safe='')}/invocations"
    )
    request = urllib.request.Request(
        url,
        data=payload or b"{}",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=EMULATOR_TIMEOUT_S) as resp:
            body, status = resp.read(), resp.status
            errored = bool(resp.headers.get("X-Amz-Function-Error"))
    except urllib.error.HTTPError as e:
        body, status, errored = e.read(), e.code, True
        try:
            parsed = json.loads(body)
            well_formed = isinstance(parsed, dict) and "errorType" in parsed
        except ValueError:
            well_formed = False
        if not well_formed:
            text = body.decode("utf-8", "replace")[:2000]
            body = _error_payload(
                "Lambda.ServiceException",
                f"local Lambda emulator answered HTTP {status} for binary "
                f"'{binary}' ({url}): {text}",
            )
    except (TimeoutError, socket.timeout):
        status, errored = "timeout", True
        body = _error_payload(
            "Sandbox.Timedout",
            f"local Lambda emulator did not answer within {EMULATOR_TIMEOUT_S} s "
            f"for binary '{binary}' ({url})",
        )
    except (urllib.error.URLError, OSError) as e:
        status, errored = "unreachable", True
        reason = getattr(e, "reason", e)
        body = _error_payload(
            "Lambda.ServiceException",
            f"local Lambda emulator not reachable at {endpoint} ({reason}): "
            f"is `cargo lambda watch` running? (function {fn.function_name}, "
            f"binary '{binary}')",
        )
    log(
        f"lambda {fn.function_name} -> {binary}: {status}"
        f"{' FunctionError' if errored else ''} ({time.monotonic() - started:.2f}s)"
    )
    return body, errored


def invoke_emulator_async(fn: Any, payload: bytes, what: str) -> None:
    """Invoke in a background thread, retrying a function error twice as
    Lambda does for asynchronous invocations; errors are logged, never raised."""

    def run() -> None:
        for attempt, delay in enumerate((0.0, *ASYNC_RETRY_DELAYS_S), start=1):
            time.sleep(delay)
            try:
                body, errored = invoke_emulator(fn, payload)
            except Exception as e:  # pragma: no cover - defensive
                log(f"{what}: async invoke of {fn.function_name} crashed: {e!r}")
                return
            if not errored:
                return
            log(f"{what}: async invoke of {fn.function_name} failed (attempt {attempt}): "
                f"{body.decode('utf-8', 'replace')[:500]}")

    threading.Thread(target=run, name=f"async-{fn.function_name}", daemon=True).start()
