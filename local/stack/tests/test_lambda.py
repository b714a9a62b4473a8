"""Lambda on the local stack (stack/patches/lambda_invoke.py, stack/emulator.py):
functions run by the (fake) emulator, errors Unhandled, Event invocations
asynchronous and retried."""

from __future__ import annotations

import json
import time

from stack import emulator as emulator_client

from .flows import Flows
from .harness import free_port, wait_for


def test_lambda_invoke_success(flows: Flows) -> None:
    r = flows.lam.invoke(FunctionName="stepdeploy-echo", Payload=b'{"a": 1}')
    assert r["StatusCode"] == 200, r
    assert "FunctionError" not in r, r
    assert json.loads(r["Payload"].read()) == {"a": 1, "echoed": True}


def test_lambda_invoke_function_error(flows: Flows) -> None:
    r = flows.lam.invoke(FunctionName=flows.fn["fail"], Payload=b"{}")
    assert r["FunctionError"] == "Unhandled", r
    assert json.loads(r["Payload"].read()) == {
        "errorType": "ValidationFailed", "errorMessage": "tenant: bad"}


def test_lambda_invoke_event_is_async(flows: Flows) -> None:
    r = flows.lam.invoke(FunctionName="stepdeploy-echo", InvocationType="Event",
                        Payload=b'{"async": "event-1"}')
    assert r["StatusCode"] == 202, r
    wait_for(lambda: flows.emu.calls_matching(
        "echo", lambda e: e.get("async") == "event-1"), what="async invoke")


def test_lambda_event_invocation_is_retried_after_a_function_error(flows: Flows) -> None:
    r = flows.lam.invoke(FunctionName="stepdeploy-flaky", InvocationType="Event",
                        Payload=b'{"key": "async-retry"}')
    assert r["StatusCode"] == 202, r
    wait_for(lambda: (lambda c: c if len(c) >= 2 else None)(
        flows.emu.calls_matching("flaky", lambda e: e.get("key") == "async-retry")),
        what="the retried async invoke")
    time.sleep(2.5)
    assert len(flows.emu.calls_matching(
        "flaky", lambda e: e.get("key") == "async-retry")) == 2, "no retry after a success"


def test_emulator_unreachable_is_function_error() -> None:
    class Fn:
        handler, function_name = "bootstrap", "stepdeploy-bootstrap"
    emulator_client.endpoint = f"http://127.0.0.1:{free_port()}"
    body, errored = emulator_client.invoke_emulator(Fn(), b"{}")
    error = json.loads(body)
    assert errored and error["errorType"] == "Lambda.ServiceException", error
    assert "not reachable" in error["errorMessage"], error
