"""What the local stack's tests share: the processes they start (conftest.py
makes them fixtures), AWS clients on the test stack, and the helpers the
checks of several modules use.  Everything runs on free ports, never on the
main stack's (5000, 9000, 8088, 3307-3309)."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import boto3

LOCAL = Path(__file__).resolve().parents[2]
ROOT = LOCAL.parent
PYTHON = sys.executable
ORCH = "123456789012"
DEV = "111111111111"
REGION = "eu-west-1"
TENANT_HOST = "acme.wpdev.kimmyai.io"
# ECS start-up delay of the test launcher (stack/patches/ecs_startup.py).
ECS_STARTUP_S = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0,
             interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    return wait_for(predicate, timeout, what=what)


def http_get(url: str, host: str | None = None, method: str = "GET") -> tuple[int, str, Any]:
    request = urllib.request.Request(url, method=method)
    if host:
        request.add_header("Host", host)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as resp:
            return resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers
    except OSError:
        return 0, "", None


def error_of(call: Callable[[], Any]) -> tuple[int, str]:
    """(HTTP status, error code) of a refused call; (200, "") if it passed."""
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
    return 200, ""


def refusal(call: Callable[[], Any]) -> tuple[int, str, str]:
    """(HTTP status, error code, message) of a refused call; (200, "", "") if it passed."""
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as e:
        return (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"],
                e.response["Error"].get("Message", ""))
    return 200, "", ""


def dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("bootstrap", "not a real binary")
    return buffer.getvalue()


TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole",
    "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}}]})


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------


class FakeEmulator:
    """Answers /2015-03-31/functions/<bin>/invocations like `cargo lambda watch`.

    echo: 200, the event plus {"echoed": true}
    fail: 500, {"errorType": "ValidationFailed", "errorMessage": "tenant: bad"}
    flaky: like fail on the first call for a payload "key", then like echo
    xmlfail: 500, an error quoting two AWS XML error responses
    judge: 200, a rollout wave's verdict: {"failed": <items of "results" with an
        "error">, "halt": failed > "budget"} (test_rollout_sfn.py)
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self._seen_keys: set[str] = set()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if len(parts) != 4 or parts[:2] != ["2015-03-31", "functions"] \
                        or parts[3] != "invocations":
                    return self._answer(404, b"not found")
                status, answer = emulator.handle(parts[2], json.loads(body or b"{}"))
                self._answer(status, json.dumps(answer).encode())

            def _answer(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, binary: str, event: Any) -> tuple[int, Any]:
        with self.lock:
            self.calls.append((binary, event))
            first_time = False
            if binary == "flaky":
                key = json.dumps(event.get("key") if isinstance(event, dict) else event)
                first_time = key not in self._seen_keys
                self._seen_keys.add(key)
        if binary == "fail" or first_time:
            return 500, {"errorType": "ValidationFailed", "errorMessage": "tenant: bad"}
        if binary == "xmlfail":  # an error quoting AWS XML error responses, as the SDK's do
            xml = ('<ErrorResponse><Error><Code>AccessDenied</Code></Error>'
                   '<RequestId>{}</RequestId></ErrorResponse>')
            return 500, {"errorType": "AwsAccessDenied",
                         "errorMessage": f"first {xml.format('r-1')}, then {xml.format('r-2')}"}
        if binary == "judge":
            failed = sum(1 for r in event.get("results") or [] if isinstance(r, dict) and "error" in r)
            return 200, {"failed": failed, "halt": failed > int(event.get("budget", 0))}
        if binary in ("echo", "flaky"):
            result = dict(event) if isinstance(event, dict) else {"event": event}
            result["echoed"] = True
            return 200, result
        return 404, {"message": f"no binary {binary}"}

    def calls_matching(self, binary: str, predicate: Callable[[Any], bool]) -> list[Any]:
        with self.lock:
            return [e for b, e in self.calls if b == binary and predicate(e)]

    def stop(self) -> None:
        self.server.shutdown()


class Process:
    """A Python module of the stack (`python -m stack...`, run from local/ as
    local/up does), its output in `logdir`/<name>.log."""

    # Every process started, for the log tails of a failed test (conftest.py).
    started: list["Process"] = []

    def __init__(self, name: str, args: list[str], logdir: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.logfile = logdir / f"{name}.log"
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen([PYTHON, *args], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=LOCAL, env=env)
        Process.started.append(self)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])


# --------------------------------------------------------------------------
# The stack as the checks see it
# --------------------------------------------------------------------------


class Stack:
    """The test launcher (`endpoint`), the stand-in (`standin_url`) and the
    fake emulator, with AWS clients on them."""

    def __init__(self, endpoint: str, standin_url: str, emulator: FakeEmulator) -> None:
        self.endpoint, self.standin_url, self.emulator = endpoint, standin_url, emulator

    def client(self, service: str, account: str = ORCH, region: str = REGION, **extra: Any):
        creds: dict[str, Any] = {"aws_access_key_id": "testing",
                                 "aws_secret_access_key": "testing"}
        if account != ORCH:
            sts = boto3.client("sts", region_name=region, endpoint_url=self.endpoint,
                               **creds)
            c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/stepdeploy-deploy",
                                RoleSessionName="selftest", ExternalId="selftest")["Credentials"]
            creds = {"aws_access_key_id": c["AccessKeyId"],
                     "aws_secret_access_key": c["SecretAccessKey"],
                     "aws_session_token": c["SessionToken"]}
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint,
                            **creds, **extra)

    def rust_client(self, service: str, account: str = ORCH):
        """A client the launcher takes for stepdeploy's (User-Agent aws-sdk-rust), no retries."""
        from botocore.config import Config

        return self.client(service, account, config=Config(
            user_agent_extra="aws-sdk-rust/selftest",
            retries={"total_max_attempts": 1, "mode": "standard"}))

    def faults(self, method: str, body: Any = None, query: str = "") -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{self.endpoint}/__stepdeploy__/faults{query}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")
