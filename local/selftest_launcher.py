"""Smoke check of the local stack: moto_launcher.py and standin.py.

    local/.venv/bin/python local/selftest_launcher.py

Starts, on free ports, a fake Lambda emulator (in this process), the patched
moto launcher and the tenant-site stand-in, then drives the flows the
deployer relies on through boto3.  Prints one line per check and
`N passed, M failed`; exits non-zero on any failure.  Every process it
starts is stopped at the end, failure or not.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import boto3

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
ORCH = "123456789012"
DEV = "111111111111"
REGION = "eu-west-1"
TENANT_HOST = "acme.wpdev.kimmyai.io"
# ECS start-up delay of this self-test's launcher (local/ecs_startup.py); no back-off.
ECS_STARTUP_S = 1.0
os.environ["STEPDEPLOY_LOCAL_ECS_STARTUP_SECONDS"] = str(ECS_STARTUP_S)
# No relaunch back-off here (the checks create a missing secret and expect the
# next launch at once); the stack's default (30 s, doubling) is AWS-like.
os.environ["STEPDEPLOY_LOCAL_ECS_BACKOFF_SECONDS"] = "0"


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


# --------------------------------------------------------------------------
# Fake `cargo lambda watch`
# --------------------------------------------------------------------------


class FakeEmulator:
    """Answers /2015-03-31/functions/<bin>/invocations like the emulator.

    echo: 200, the event plus {"echoed": true}
    fail: 500, {"errorType": "ValidationFailed", "errorMessage": "tenant: bad"}
    flaky: like fail on the first call for a payload "key", then like echo
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


# --------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------


class Stack:
    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []
        self.logdir = Path(tempfile.mkdtemp(prefix="stepdeploy-selftest-"))
        self.emulator = FakeEmulator()
        self.moto_port = free_port()
        self.standin_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.moto_port}"
        self.standin_url = f"http://127.0.0.1:{self.standin_port}"

    def spawn(self, name: str, args: list[str]) -> None:
        logfile = self.logdir / f"{name}.log"
        out = open(logfile, "wb")
        proc = subprocess.Popen([PYTHON, *args], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=HERE)
        self.procs.append((name, proc, logfile))

    def start(self) -> None:
        self.spawn("moto_launcher", ["-m", "stack",
                                     "--port", str(self.moto_port),
                                     "--lambda-endpoint", self.emulator.url])
        self.spawn("standin", ["-m", "stack.standin",
                               "--port", str(self.standin_port),
                               "--aws-endpoint", self.endpoint])
        wait_for(lambda: http_get(f"{self.endpoint}/moto-api/")[0] == 200,
                 timeout=60, what="moto launcher")
        wait_for(lambda: http_get(f"{self.standin_url}/__standin__/health")[0] == 200,
                 timeout=30, what="standin")

    def stop(self) -> None:
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc, _ in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.emulator.stop()

    def dump_logs(self, lines: int = 40) -> None:
        for name, _, logfile in self.procs:
            tail = logfile.read_text(errors="replace").splitlines()[-lines:]
            print(f"--- last {len(tail)} lines of {name} ({logfile}) ---")
            print("\n".join(tail))

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


def dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("bootstrap", "not a real binary")
    return buffer.getvalue()


TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole",
    "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}}]})


class Flows:
    """The checks.  Each test_* method is one check."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.emu = stack.emulator
        self.lam = stack.client("lambda")
        self.sfn = stack.client("stepfunctions")
        self.events = stack.client("events")
        iam = stack.client("iam")
        self.role = iam.create_role(RoleName="stepdeploy-selftest",
                                    AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        self.fn = {b: self.create_function(self.lam, f"stepdeploy-{b}", b, self.role)
                   for b in ("echo", "fail", "flaky", "xmlfail")}

    @staticmethod
    def create_function(client: Any, name: str, binary: str, role: str) -> str:
        return client.create_function(
            FunctionName=name, Runtime="provided.al2023", Role=role, Handler=binary,
            Code={"ZipFile": dummy_zip()}, Timeout=900,
        )["FunctionArn"]

    def state_machine(self, name: str, definition: dict[str, Any], client: Any = None,
                      role: str | None = None) -> str:
        return (client or self.sfn).create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=role or self.role,
        )["stateMachineArn"]

    def run(self, sm_arn: str, payload: Any, client: Any = None,
            timeout: float = 20) -> dict[str, Any]:
        client = client or self.sfn
        arn = client.start_execution(stateMachineArn=sm_arn,
                                     input=json.dumps(payload))["executionArn"]
        return self.finished(arn, client, timeout)

    def finished(self, execution_arn: str, client: Any = None,
                 timeout: float = 20) -> dict[str, Any]:
        client = client or self.sfn

        def done() -> dict[str, Any] | None:
            d = client.describe_execution(executionArn=execution_arn)
            return d if d["status"] != "RUNNING" else None
        return wait_for(done, timeout=timeout, what=f"execution {execution_arn}")

    @staticmethod
    def invoke_task(function: str, **extra: Any) -> dict[str, Any]:
        state = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                 "Parameters": {"FunctionName": function, "Payload.$": "$"},
                 "ResultSelector": {"result.$": "$.Payload"}, "End": True}
        state.update(extra)
        if "Next" in state:
            del state["End"]
        return state

    # ---- Lambda ----------------------------------------------------------

    def test_lambda_invoke_success(self) -> None:
        r = self.lam.invoke(FunctionName="stepdeploy-echo", Payload=b'{"a": 1}')
        assert r["StatusCode"] == 200, r
        assert "FunctionError" not in r, r
        assert json.loads(r["Payload"].read()) == {"a": 1, "echoed": True}

    def test_lambda_invoke_function_error(self) -> None:
        r = self.lam.invoke(FunctionName=self.fn["fail"], Payload=b"{}")
        assert r["FunctionError"] == "Unhandled", r
        assert json.loads(r["Payload"].read()) == {
            "errorType": "ValidationFailed", "errorMessage": "tenant: bad"}

    def test_lambda_invoke_event_is_async(self) -> None:
        r = self.lam.invoke(FunctionName="stepdeploy-echo", InvocationType="Event",
                            Payload=b'{"async": "event-1"}')
        assert r["StatusCode"] == 202, r
        wait_for(lambda: self.emu.calls_matching(
            "echo", lambda e: e.get("async") == "event-1"), what="async invoke")

    def test_lambda_event_invocation_is_retried_after_a_function_error(self) -> None:
        r = self.lam.invoke(FunctionName="stepdeploy-flaky", InvocationType="Event",
                            Payload=b'{"key": "async-retry"}')
        assert r["StatusCode"] == 202, r
        wait_for(lambda: (lambda c: c if len(c) >= 2 else None)(
            self.emu.calls_matching("flaky", lambda e: e.get("key") == "async-retry")),
            what="the retried async invoke")
        time.sleep(2.5)
        assert len(self.emu.calls_matching(
            "flaky", lambda e: e.get("key") == "async-retry")) == 2, "no retry after a success"

    def test_emulator_unreachable_is_function_error(self) -> None:
        sys.path.insert(0, str(HERE))
        sys.dont_write_bytecode = True  # no local/__pycache__ in the work tree
        from stack import emulator

        class Fn:
            handler, function_name = "bootstrap", "stepdeploy-bootstrap"
        emulator.endpoint = f"http://127.0.0.1:{free_port()}"
        body, errored = emulator.invoke_emulator(Fn(), b"{}")
        error = json.loads(body)
        assert errored and error["errorType"] == "Lambda.ServiceException", error
        assert "not reachable" in error["errorMessage"], error

    # ---- Step Functions --------------------------------------------------

    def test_sfn_lambda_invoke_succeeds(self) -> None:
        sm = self.state_machine("ok", {"StartAt": "Call", "States": {
            "Call": self.invoke_task("stepdeploy-echo")}})
        d = self.run(sm, {"tenant": "acme"})
        assert d["status"] == "SUCCEEDED", d
        assert json.loads(d["output"]) == {"result": {"tenant": "acme", "echoed": True}}

    def test_sfn_catch_validation_failed(self) -> None:
        sm = self.state_machine("catch", {"StartAt": "Call", "States": {
            "Call": self.invoke_task(self.fn["fail"], Next="Done", Catch=[{
                "ErrorEquals": ["ValidationFailed"], "ResultPath": "$.error",
                "Next": "Handled"}]),
            "Done": {"Type": "Succeed"},
            "Handled": {"Type": "Pass", "Result": "handled", "ResultPath": "$.outcome",
                        "End": True}}})
        d = self.run(sm, {"tenant": "acme"})
        assert d["status"] == "SUCCEEDED", d
        output = json.loads(d["output"])
        assert output["outcome"] == "handled", output
        assert output["error"]["Error"] == "ValidationFailed", output
        assert "tenant: bad" in output["error"]["Cause"], output

    def test_sfn_uncaught_failure_visible(self) -> None:
        sm = self.state_machine("nocatch", {"StartAt": "Call", "States": {
            "Call": self.invoke_task("stepdeploy-fail")}})
        d = self.run(sm, {})
        assert d["status"] == "FAILED", d
        assert d["error"] == "ValidationFailed", d
        assert "tenant: bad" in d["cause"], d
        history = self.sfn.get_execution_history(executionArn=d["executionArn"])["events"]
        failed = [e["taskFailedEventDetails"] for e in history
                  if e["type"] == "TaskFailed"]
        assert failed and failed[0]["error"] == "ValidationFailed", history
        assert any(e["type"] == "ExecutionFailed" for e in history), history

    def test_sfn_history_keeps_events_after_an_error_quoting_xml(self) -> None:
        sm = self.state_machine("xmlcause", {"StartAt": "Call", "States": {
            "Call": self.invoke_task("stepdeploy-xmlfail", Next="Done", Catch=[{
                "ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "After"}]),
            "After": {"Type": "Pass", "Next": "Done"},
            "Done": {"Type": "Succeed"}}})
        d = self.run(sm, {})
        assert d["status"] == "SUCCEEDED", d
        events = self.sfn.get_execution_history(executionArn=d["executionArn"])["events"]
        types = [e["type"] for e in events]
        assert types[-1] == "ExecutionSucceeded" and "PassStateEntered" in types, types
        cause = next(e["taskFailedEventDetails"]["cause"] for e in events
                     if e["type"] == "TaskFailed")
        assert "<RequestId>r-1</RequestId>" in cause and "r-2" in cause, cause

    def test_sfn_retry(self) -> None:
        sm = self.state_machine("retry", {"StartAt": "Call", "States": {
            "Call": self.invoke_task("stepdeploy-flaky", Retry=[{
                "ErrorEquals": ["ValidationFailed"], "IntervalSeconds": 1,
                "MaxAttempts": 3, "BackoffRate": 1.0}])}})
        d = self.run(sm, {"key": "retry-1"})
        assert d["status"] == "SUCCEEDED", d
        assert len(self.emu.calls_matching("flaky", lambda e: e.get("key") == "retry-1")) == 2

    def test_sfn_function_arn_resource(self) -> None:
        sm = self.state_machine("plainarn", {"StartAt": "Call", "States": {
            "Call": {"Type": "Task", "Resource": self.fn["fail"], "Catch": [{
                "ErrorEquals": ["ValidationFailed"], "Next": "Handled"}], "End": True},
            "Handled": {"Type": "Pass", "End": True}}})
        d = self.run(sm, {"k": 1})
        assert d["status"] == "SUCCEEDED", d
        assert json.loads(d["output"])["Error"] == "ValidationFailed", d
        sm2 = self.state_machine("plainarn-ok", {"StartAt": "Call", "States": {
            "Call": {"Type": "Task", "Resource": self.fn["echo"], "End": True}}})
        d = self.run(sm2, {"k": 2})
        assert json.loads(d["output"]) == {"k": 2, "echoed": True}, d

    def test_sfn_unnamed_execution_gets_name(self) -> None:
        sm = self.state_machine("unnamed", {"StartAt": "P", "States": {
            "P": {"Type": "Pass", "End": True}}})
        arns = [self.sfn.start_execution(stateMachineArn=sm, input="{}")["executionArn"]
                for _ in range(2)]
        assert arns[0] != arns[1], arns
        for arn in arns:
            name = self.sfn.describe_execution(executionArn=arn)["name"]
            assert name and name != "None" and len(name) == 36, name

    def test_sfn_wait_for_task_token(self) -> None:
        sm = self.state_machine("token", {"StartAt": "Wait", "States": {"Wait": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "stepdeploy-echo",
                           "Payload": {"token.$": "$$.Task.Token", "step": "wait-1"}},
            "End": True}}})
        arn = self.sfn.start_execution(stateMachineArn=sm, input="{}")["executionArn"]
        calls = wait_for(lambda: self.emu.calls_matching(
            "echo", lambda e: e.get("step") == "wait-1"), what="token invoke")
        time.sleep(0.5)
        assert self.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        self.sfn.send_task_success(taskToken=calls[0]["token"], output='{"done": true}')
        d = self.finished(arn)
        assert d["status"] == "SUCCEEDED", d
        assert json.loads(d["output"]) == {"done": True}, d

    def test_sfn_stop_while_a_task_waits_is_immediate(self) -> None:
        # AWS aborts at once; moto's engine alone noticed only at the task's timeout.
        sm = self.state_machine("stopwait", {"StartAt": "Wait", "States": {"Wait": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "stepdeploy-echo",
                           "Payload": {"token.$": "$$.Task.Token", "step": "stop-1"}},
            "TimeoutSeconds": 600, "End": True}}})
        arn = self.sfn.start_execution(stateMachineArn=sm, input="{}")["executionArn"]
        wait_for(lambda: self.emu.calls_matching("echo", lambda e: e.get("step") == "stop-1"),
                 what="token invoke")
        self.sfn.stop_execution(executionArn=arn)
        d = self.sfn.describe_execution(executionArn=arn)
        assert d["status"] == "ABORTED" and d.get("stopDate"), d

    def test_sfn_in_environment_account_invokes_its_lambda(self) -> None:
        lam = self.stack.client("lambda", DEV)
        sfn = self.stack.client("stepfunctions", DEV)
        role = self.stack.client("iam", DEV).create_role(
            RoleName="stepdeploy-selftest", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        self.create_function(lam, "dev-only-echo", "echo", role)
        sm = self.state_machine("dev", {"StartAt": "Call", "States": {
            "Call": self.invoke_task("dev-only-echo")}}, client=sfn, role=role)
        d = self.run(sm, {"acct": "dev"}, client=sfn)
        assert d["status"] == "SUCCEEDED", d
        assert d["executionArn"].split(":")[4] == DEV, d

    # ---- EventBridge -----------------------------------------------------

    def _bus_with_rule(self, rule: str, targets: list[dict[str, Any]]) -> None:
        try:
            self.events.create_event_bus(Name="stepdeploy")
        except self.events.exceptions.ResourceAlreadyExistsException:
            pass
        self.events.put_rule(Name=rule, EventBusName="stepdeploy", EventPattern=json.dumps({
            "source": ["stepdeploy"], "detail-type": ["Tenant Deployment Requested"],
            "detail": {"rule": [rule]}}))
        self.events.put_targets(Rule=rule, EventBusName="stepdeploy", Targets=targets)

    def _put(self, rule: str, detail_type: str = "Tenant Deployment Requested",
             **detail: Any) -> str:
        r = self.events.put_events(Entries=[{
            "Source": "stepdeploy", "DetailType": detail_type, "EventBusName": "stepdeploy",
            "Detail": json.dumps({"rule": rule, **detail})}])
        assert r["FailedEntryCount"] == 0 and r["Entries"][0].get("EventId"), r
        return r["Entries"][0]["EventId"]

    def _execution_inputs(self, sm: str, count: int) -> list[Any]:
        executions = wait_for(lambda: (lambda e: e if len(e) >= count else None)(
            self.sfn.list_executions(stateMachineArn=sm)["executions"]),
            what=f"{count} execution(s) of {sm}")
        assert len(executions) == count, executions
        return [json.loads(self.sfn.describe_execution(
            executionArn=e["executionArn"])["input"]) for e in executions]

    def _passthrough_machine(self, name: str) -> str:
        return self.state_machine(name, {"StartAt": "P", "States": {
            "P": {"Type": "Pass", "End": True}}})

    def test_events_state_machine_target(self) -> None:
        sm = self._passthrough_machine("from-events")
        self._bus_with_rule("to-sfn", [{"Id": "sfn", "Arn": sm, "RoleArn": self.role}])
        self._put("to-sfn", detail_type="Something Else", tenant="ignored")
        event_id = self._put("to-sfn", tenant="acme")
        [event] = self._execution_inputs(sm, 1)
        assert list(event) == ["version", "id", "detail-type", "source", "account",
                               "time", "region", "resources", "detail"], event
        assert event["id"] == event_id and event["version"] == "0", event
        assert event["source"] == "stepdeploy", event
        assert event["detail-type"] == "Tenant Deployment Requested", event
        assert event["account"] == ORCH and event["region"] == REGION, event
        assert event["detail"] == {"rule": "to-sfn", "tenant": "acme"}, event
        assert event["resources"] == [] and event["time"].endswith("Z"), event

    def test_events_input_transformer_and_input_path(self) -> None:
        sm = self._passthrough_machine("transformed")
        template = ('{"tenant": <tenant>, "label": "t-<tenant> \\"q\\"", "size": <size>, '
                    '"detail": <detail>, "missing": <nothing>, "rule": "<aws.events.rule-name>"}')
        self._bus_with_rule("to-sfn-transformed", [
            {"Id": "transformer", "Arn": sm, "RoleArn": self.role, "InputTransformer": {
                "InputPathsMap": {"tenant": "$.detail.tenant", "size": "$.detail.size",
                                  "detail": "$.detail", "nothing": "$.detail.nope"},
                "InputTemplate": template}},
            {"Id": "path", "Arn": sm, "RoleArn": self.role, "InputPath": "$.detail"},
            {"Id": "constant", "Arn": sm, "RoleArn": self.role, "Input": '{"fixed": 1}'}])
        self._put("to-sfn-transformed", tenant='ac"me', size=3)
        inputs = self._execution_inputs(sm, 3)
        detail = {"rule": "to-sfn-transformed", "tenant": 'ac"me', "size": 3}
        expected = [
            {"tenant": 'ac"me', "label": 't-ac"me "q"', "size": 3, "detail": detail,
             "missing": None, "rule": "to-sfn-transformed"},
            detail,
            {"fixed": 1},
        ]
        for item in expected:
            assert item in inputs, (item, inputs)

    def test_events_lambda_target_async(self) -> None:
        self._bus_with_rule("to-lambda", [{"Id": "fn", "Arn": self.fn["echo"]}])
        event_id = self._put("to-lambda", tenant="acme")
        [event] = wait_for(lambda: self.emu.calls_matching(
            "echo", lambda e: e.get("id") == event_id), what="lambda target call")
        assert event["detail"] == {"rule": "to-lambda", "tenant": "acme"}, event

    def test_sfn_put_events_task_reaches_rule(self) -> None:
        sink = self._passthrough_machine("sink")
        self._bus_with_rule("from-sfn", [{"Id": "sink", "Arn": sink, "RoleArn": self.role}])
        sm = self.state_machine("emit", {"StartAt": "Emit", "States": {"Emit": {
            "Type": "Task", "Resource": "arn:aws:states:::events:putEvents",
            "Parameters": {"Entries": [{
                "Source": "stepdeploy", "DetailType": "Tenant Deployment Requested",
                "EventBusName": "stepdeploy",
                "Detail": {"rule": "from-sfn", "tenant.$": "$.tenant"}}]},
            "End": True}}})
        d = self.run(sm, {"tenant": "acme"})
        assert d["status"] == "SUCCEEDED", d
        [event] = self._execution_inputs(sink, 1)
        assert event["detail"] == {"rule": "from-sfn", "tenant": "acme"}, event

    def test_events_disabled_rule_does_not_deliver(self) -> None:
        sm = self._passthrough_machine("disabled-target")
        self._bus_with_rule("disabled", [{"Id": "sfn", "Arn": sm, "RoleArn": self.role}])
        self.events.disable_rule(Name="disabled", EventBusName="stepdeploy")
        self._put("disabled")
        time.sleep(0.5)
        assert self.sfn.list_executions(stateMachineArn=sm)["executions"] == []

    # ---- ECS -------------------------------------------------------------

    def network(self, account: str) -> tuple[list[str], str]:
        ec2 = self.stack.client("ec2", account)
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24",
                                     AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
                   for i, az in ((1, "a"), (2, "b"))]
        sg = ec2.create_security_group(GroupName=f"sg-{vpc}", Description="selftest",
                                       VpcId=vpc)["GroupId"]
        return subnets, sg

    @staticmethod
    def register_wordpress(ecs: Any) -> str:
        return ecs.register_task_definition(
            family="wordpress", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
            cpu="256", memory="512", containerDefinitions=[{
                "name": "wordpress", "image": "wordpress:6", "essential": True,
                "portMappings": [{"containerPort": 80}]}])["taskDefinition"]["taskDefinitionArn"]

    def test_ecs_service_settles(self) -> None:
        ecs = self.stack.client("ecs")
        subnets, sg = self.network(ORCH)
        ecs.create_cluster(clusterName="selftest")
        td1, td2 = self.register_wordpress(ecs), self.register_wordpress(ecs)
        network = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}}
        ecs.create_service(cluster="selftest", serviceName="web", taskDefinition="wordpress:1",
                           desiredCount=2, launchType="FARGATE",
                           networkConfiguration=network)

        def describe() -> dict[str, Any]:
            return ecs.describe_services(cluster="selftest", services=["web"])["services"][0]

        def starting(desired: int, task_definition: str) -> str:
            """Just after the call: a PRIMARY deployment IN_PROGRESS, not yet running."""
            s = describe()
            primary = s["deployments"][0]
            assert primary["status"] == "PRIMARY" and primary["rolloutState"] == "IN_PROGRESS", s
            assert primary["runningCount"] == 0 and primary["desiredCount"] == desired, primary
            assert primary["taskDefinition"] == task_definition, primary
            return primary["id"]

        def check(desired: int, task_definition: str) -> str:
            """After the start-up delay: steady, one deployment."""
            s = wait_for(lambda: (lambda s: s if s["deployments"][0]["rolloutState"] == "COMPLETED"
                                  and s["runningCount"] == desired else None)(describe()),
                         timeout=ECS_STARTUP_S * 5, what="steady state")
            assert s["runningCount"] == desired and s["pendingCount"] == 0, s
            assert s["taskDefinition"] == task_definition, s
            [d] = s["deployments"]
            assert d["status"] == "PRIMARY" and d["rolloutState"] == "COMPLETED", d
            assert d["runningCount"] == desired and d["pendingCount"] == 0, d
            assert d["desiredCount"] == desired and d["taskDefinition"] == task_definition, d
            return d["id"]

        first = starting(2, td1)
        assert check(2, td1) == first
        ecs.update_service(cluster="selftest", service="web", taskDefinition="wordpress:2",
                           desiredCount=3)
        second = starting(3, td2)
        assert second != first and describe()["runningCount"] == 2, "old tasks keep running"
        assert check(3, td2) == second
        ecs.update_service(cluster="selftest", service="web", desiredCount=1)
        assert check(1, td2) == second  # scaling in: at once, same deployment
        ecs.update_service(cluster="selftest", service="web", forceNewDeployment=True)
        third = starting(1, td2)
        assert third != second and check(1, td2) == third
        [cluster] = ecs.describe_clusters(clusters=["selftest"])["clusters"]
        assert cluster["runningTasksCount"] == 1 and cluster["pendingTasksCount"] == 0, cluster

    # ---- DynamoDB ------------------------------------------------------------

    def test_dynamodb_cancelled_transactions_lose_no_other_writes(self) -> None:
        ddb = self.stack.client("dynamodb")
        ddb.create_table(TableName="concurrent", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        for i in range(300):  # a table worth copying
            ddb.put_item(TableName="concurrent", Item={"pk": {"S": f"filler-{i}"}})
        ddb.put_item(TableName="concurrent", Item={"pk": {"S": "taken"}})
        stop = threading.Event()

        def cancel_transactions() -> None:
            client = self.stack.client("dynamodb")
            while not stop.is_set():
                try:
                    client.transact_write_items(TransactItems=[{"Put": {
                        "TableName": "concurrent", "Item": {"pk": {"S": "taken"}},
                        "ConditionExpression": "attribute_not_exists(pk)"}}])
                except client.exceptions.TransactionCanceledException:
                    pass

        threads = [threading.Thread(target=cancel_transactions) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            for i in range(150):
                ddb.put_item(TableName="concurrent", Item={"pk": {"S": f"written-{i}"}})
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        missing = [i for i in range(150) if "Item" not in ddb.get_item(
            TableName="concurrent", Key={"pk": {"S": f"written-{i}"}})]
        assert not missing, f"{len(missing)} writes undone by cancelled transactions: {missing[:10]}"

    # ---- stand-in --------------------------------------------------------

    def site(self, host: str, path: str = "/") -> tuple[int, str, Any]:
        return http_get(f"{self.stack.standin_url}{path}", host=f"{host}:8088")

    def test_standin(self) -> None:
        ecs, elb = self.stack.client("ecs", DEV), self.stack.client("elbv2", DEV)
        subnets, sg = self.network(DEV)
        vpc = self.stack.client("ec2", DEV).describe_subnets(
            SubnetIds=subnets)["Subnets"][0]["VpcId"]
        alb = elb.create_load_balancer(Name="stepdeploy-dev", Subnets=subnets,
                                       SecurityGroups=[sg])["LoadBalancers"][0]
        tg = elb.create_target_group(Name="acme", Protocol="HTTP", Port=80, VpcId=vpc,
                                     TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        listener = elb.create_listener(
            LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
                "StatusCode": "404", "ContentType": "text/plain"}}])["Listeners"][0]
        # More rules than DescribeRules returns on its first page (50), before the tenant's.
        for priority in range(1, 61):
            elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=priority,
                            Conditions=[{"Field": "host-header", "HostHeaderConfig": {
                                "Values": [f"other{priority}.wpdev.kimmyai.io"]}}],
                            Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                                "StatusCode": "404"}}])
        elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=100,
                        Conditions=[{"Field": "host-header", "HostHeaderConfig": {
                            "Values": [TENANT_HOST]}}],
                        Actions=[{"Type": "forward", "TargetGroupArn": tg}])
        time.sleep(1.2)
        assert self.site(TENANT_HOST)[0] == 404, "served before its service runs"

        ecs.create_cluster(clusterName="tenants")
        self.register_wordpress(ecs)
        ecs.create_service(
            cluster="tenants", serviceName="acme", taskDefinition="wordpress",
            desiredCount=1, launchType="FARGATE",
            loadBalancers=[{"targetGroupArn": tg, "containerName": "wordpress",
                            "containerPort": 80}],
            networkConfiguration={"awsvpcConfiguration": {
                "subnets": subnets, "securityGroups": [sg]}})
        status, body, _ = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
            self.site(TENANT_HOST)), timeout=10, what="tenant served")
        assert f"WordPress (local stand-in) for {TENANT_HOST}" in body, body
        status, _, headers = self.site(TENANT_HOST, "/wp-admin/")
        assert status == 302 and headers["Location"] == "/wp-login.php", status
        status, body, _ = self.site("other.wpdev.kimmyai.io")
        assert status == 404 and "no tenant for other.wpdev.kimmyai.io" in body, body

        control = f"{self.stack.standin_url}/__standin__/fail?host={TENANT_HOST}"
        assert http_get(control, method="POST")[0] == 200
        assert TENANT_HOST in json.loads(http_get(
            f"{self.stack.standin_url}/__standin__/fail")[1])["fail"]
        status, body, _ = self.site(TENANT_HOST)
        assert status == 500 and "stand-in" in body, (status, body)
        assert http_get(control, method="DELETE")[0] == 200
        assert self.site(TENANT_HOST)[0] == 200

        ecs.update_service(cluster="tenants", service="acme", desiredCount=0)
        wait_for(lambda: self.site(TENANT_HOST)[0] == 404, timeout=10,
                 what="tenant no longer served at desiredCount 0")

    # ---- fault injection (/__stepdeploy__/faults) --------------------------

    def _error_of(self, call: Callable[[], Any]) -> tuple[int, str]:
        from botocore.exceptions import ClientError

        try:
            call()
        except ClientError as e:
            return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
        return 200, ""

    def test_faults_control(self) -> None:
        stack = self.stack
        assert stack.faults("DELETE")[0] == 200
        for bad in ({"mode": "explode", "rate": 1}, {"mode": "throttle"},
                    {"mode": "error", "rate": 2}, {"mode": "drop", "nth": 0},
                    {"mode": "error", "rate": 1, "match": {"tenant": "x"}},
                    {"mode": "error", "rate": 0.5, "nth": 1}, "nonsense"):
            status, answer = stack.faults("PUT", bad)
            assert status == 400 and answer["error"], (bad, status, answer)
        status, answer = stack.faults("POST", {"id": "a", "seed": 3, "rules": [
            {"mode": "latency", "ms": 1}, {"id": "a-err", "mode": "error", "nth": 2}]})
        assert status == 200 and answer == {"group": "a", "rules": ["a.1", "a-err"]}, answer
        assert stack.faults("POST", {"id": "a", "rules": []})[0] == 409
        assert stack.faults("POST", {"mode": "throttle", "rate": 0.1})[0] == 200
        status, state = stack.faults("GET")
        assert [r["id"] for r in state["rules"]][:2] == ["a.1", "a-err"], state
        assert [r["mode"] for r in state["rules"]] == ["latency", "error", "throttle"], state
        assert state["rules"][1]["nth"] == 2 and state["rules"][1]["count"] == 1, state
        assert stack.faults("GET", query="?id=a")[1]["groups"] == [{"id": "a", "seed": 3}]
        stack.faults("DELETE", query="?id=a-err")
        assert [r["id"] for r in stack.faults("GET", query="?id=a")[1]["rules"]] == ["a.1"]
        stack.faults("DELETE", query="?id=a")
        assert [r["mode"] for r in stack.faults("GET")[1]["rules"]] == ["throttle"]
        stack.faults("DELETE")
        assert stack.faults("GET")[1] == {"rules": [], "injected": {}, "groups": []}

    def test_faults_throttle_in_each_protocols_shape(self) -> None:
        # The union of the SDKs' throttling codes (the Rust SDK's list is the same).
        from botocore.retries.standard import RetryContext, ThrottledRetryableChecker

        stack = self.stack
        calls = [  # (service, action as the counter names it, call, status, code)
            ("dynamodb", "dynamodb:ListTables", lambda c: c.list_tables(), 400,
             "ThrottlingException"),
            ("ecs", "ecs:ListClusters", lambda c: c.list_clusters(), 400, "ThrottlingException"),
            ("elbv2", "elasticloadbalancing:DescribeLoadBalancers",
             lambda c: c.describe_load_balancers(), 400, "Throttling"),
            ("iam", "iam:ListRoles", lambda c: c.list_roles(), 400, "Throttling"),
            ("sts", "sts:GetCallerIdentity", lambda c: c.get_caller_identity(), 400,
             "Throttling"),
            ("sns", "sns:ListTopics", lambda c: c.list_topics(), 400, "Throttling"),
            ("s3", "s3:GET bucket?list-type", lambda c: c.list_objects_v2(Bucket="nope"), 503,
             "SlowDown"),
            ("route53", "route53:GET hostedzone", lambda c: c.list_hosted_zones(), 400,
             "Throttling"),
            ("efs", "elasticfilesystem:GET file-systems", lambda c: c.describe_file_systems(),
             400, "ThrottlingException"),
        ]
        checker = ThrottledRetryableChecker()
        for service, action, call, status, code in calls:
            stack.faults("PUT", {"mode": "throttle", "nth": 1, "match": {"action": action}})
            got = self._error_of(lambda: call(stack.rust_client(service)))
            assert got == (status, code), (service, got)
            context = RetryContext(attempt_number=1, parsed_response={"Error": {"Code": got[1]}})
            assert checker.is_retryable(context), (service, got)
            assert stack.faults("GET")[1]["injected"] == {"throttle": 1}, service
            # Fired once: the next call goes through to moto.
            assert self._error_of(lambda: call(stack.rust_client(service)))[1] != code, service
        stack.faults("DELETE")

    def test_faults_unavailable_error_and_only_stepdeploy_calls(self) -> None:
        stack = self.stack
        ddb, plain = stack.rust_client("dynamodb"), stack.client("dynamodb")
        stack.faults("PUT", {"rules": [{"mode": "unavailable", "rate": 1,
                                        "match": {"action": "dynamodb:ListTables"}}]})
        assert self._error_of(ddb.list_tables) == (503, "ServiceUnavailableException")
        assert self._error_of(plain.list_tables) == (200, ""), "not a stepdeploy call"
        stack.faults("PUT", {"mode": "unavailable", "status": 500, "rate": 1})
        assert self._error_of(ddb.list_tables) == (500, "InternalFailure")
        assert self._error_of(stack.rust_client("elbv2").describe_load_balancers) == (
            500, "InternalError")
        stack.faults("PUT", {"mode": "error", "rate": 1})
        assert self._error_of(ddb.list_tables) == (400, "AccessDeniedException")
        assert self._error_of(stack.rust_client("iam").list_roles) == (403, "AccessDenied")
        assert self._error_of(lambda: stack.rust_client("s3").list_objects_v2(
            Bucket="nope")) == (403, "AccessDenied")
        stack.faults("DELETE")

    def test_faults_match_contains_mutating_and_caller(self) -> None:
        stack = self.stack
        ddb = stack.rust_client("dynamodb")
        ddb.create_table(TableName="faults", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        stack.faults("PUT", {"rules": [{"mode": "error", "rate": 1, "match": {
            "contains": "tenantaaa", "mutating": True}}]})
        put = lambda pk: lambda: ddb.put_item(TableName="faults", Item={"pk": {"S": pk}})
        get = lambda pk: lambda: ddb.get_item(TableName="faults", Key={"pk": {"S": pk}})
        assert self._error_of(put("LOCK#tenantaaa"))[1] == "AccessDeniedException"
        assert self._error_of(get("LOCK#tenantaaa")) == (200, ""), "a read"
        assert self._error_of(put("LOCK#tenantbbb")) == (200, ""), "another tenant"
        [rule] = stack.faults("GET")[1]["rules"]
        assert rule["matched"] == 1 and rule["injected"] == 1, rule
        assert rule["log"][0]["call"] == "dynamodb:PutItem" and rule["log"][0]["mutating"], rule
        # caller: the role session behind the access key.
        stack.faults("PUT", {"mode": "error", "rate": 1, "match": {"caller": "selftest"}})
        assumed = stack.rust_client("sns", DEV)
        assert self._error_of(assumed.list_topics)[1] == "AccessDenied"
        assert self._error_of(stack.rust_client("sns").list_topics) == (200, "")
        stack.faults("DELETE")

    def test_faults_drop_applies_the_call_and_nth_count(self) -> None:
        stack = self.stack
        stack.faults("PUT", {"mode": "drop", "nth": 1, "match": {"action": "sns:CreateTopic"}})
        sns = stack.rust_client("sns")
        assert self._error_of(lambda: sns.create_topic(Name="dropped")) == (500, "InternalError")
        topics = [t["TopicArn"] for t in stack.client("sns").list_topics()["Topics"]]
        assert any(t.endswith(":dropped") for t in topics), "applied before the answer was lost"
        stack.faults("PUT", {"mode": "throttle", "nth": 2, "count": 2,
                             "match": {"action": "sns:ListTopics"}})
        outcomes = [self._error_of(sns.list_topics)[1] for _ in range(4)]
        assert outcomes == ["", "Throttling", "Throttling", ""], outcomes
        stack.faults("DELETE")

    def test_faults_latency_and_seeded_rate(self) -> None:
        stack = self.stack
        sns = stack.rust_client("sns")
        stack.faults("PUT", {"mode": "latency", "ms": 400, "match": {"action": "sns:ListTopics"}})
        t0 = time.monotonic()
        assert self._error_of(sns.list_topics) == (200, "")
        assert time.monotonic() - t0 >= 0.4
        runs = []
        for _ in range(2):
            stack.faults("PUT", {"seed": 11, "rules": [
                {"mode": "throttle", "rate": 0.3}, {"mode": "unavailable", "rate": 0.2}]})
            runs.append([self._error_of(sns.list_topics)[1] for _ in range(40)])
        assert runs[0] == runs[1], "same seed, same faults"
        throttled, unavailable = runs[0].count("Throttling"), runs[0].count("ServiceUnavailable")
        assert 4 <= throttled <= 22 and 2 <= unavailable <= 16, runs[0]
        state = stack.faults("GET")[1]
        assert state["injected"] == {"throttle": throttled, "unavailable": unavailable}, state
        stack.faults("DELETE")


def main() -> int:
    started = time.monotonic()
    stack = Stack()
    passed = failed = 0
    try:
        stack.start()
        print(f"stack up in {time.monotonic() - started:.1f}s "
              f"(moto :{stack.moto_port}, standin :{stack.standin_port}, "
              f"logs {stack.logdir})", flush=True)
        def run_checks(checks: Any) -> None:
            """Every test_* method of `checks`, one PASS/FAIL line each."""
            nonlocal passed, failed
            for name in [n for n in vars(type(checks)) if n.startswith("test_")]:
                t0 = time.monotonic()
                try:
                    getattr(checks, name)()
                    passed += 1
                    print(f"PASS {name} ({time.monotonic() - t0:.1f}s)", flush=True)
                except Exception:
                    failed += 1
                    print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)

        run_checks(Flows(stack))
        # local/selftest_iam.py: local IAM enforcement, the seed from the templates
        from selftest_iam import IamChecks

        t0 = time.monotonic()
        iam_checks = IamChecks(stack)
        print(f"iam: seeded from the templates in {time.monotonic() - t0:.1f}s", flush=True)
        run_checks(iam_checks)
        # local/selftest_strict.py: quotas, ECS start-up, the AWS CLI
        from selftest_strict import StrictChecks

        run_checks(StrictChecks(stack, ECS_STARTUP_S))
    except Exception:
        failed += 1
        print(f"FAIL setup\n{traceback.format_exc()}", flush=True)
    finally:
        stack.stop()
        if failed:
            stack.dump_logs()
        else:
            shutil.rmtree(stack.logdir, ignore_errors=True)
    print(f"took {time.monotonic() - started:.1f}s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
