"""Step Functions on the local stack: definitions interpreted, Lambda tasks in
the emulator with Retry/Catch on their errorType, task tokens, stops,
execution names, histories, tasks in an environment account
(stack/patches/sfn_*.py, lambda_invoke.py, request_id.py)."""

from __future__ import annotations

import json
import time

from .flows import Flows
from .harness import DEV, TRUST, wait_for


def test_sfn_lambda_invoke_succeeds(flows: Flows) -> None:
    sm = flows.state_machine("ok", {"StartAt": "Call", "States": {
        "Call": flows.invoke_task("stepdeploy-echo")}})
    d = flows.run(sm, {"tenant": "acme"})
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == {"result": {"tenant": "acme", "echoed": True}}


def test_sfn_catch_validation_failed(flows: Flows) -> None:
    sm = flows.state_machine("catch", {"StartAt": "Call", "States": {
        "Call": flows.invoke_task(flows.fn["fail"], Next="Done", Catch=[{
            "ErrorEquals": ["ValidationFailed"], "ResultPath": "$.error",
            "Next": "Handled"}]),
        "Done": {"Type": "Succeed"},
        "Handled": {"Type": "Pass", "Result": "handled", "ResultPath": "$.outcome",
                    "End": True}}})
    d = flows.run(sm, {"tenant": "acme"})
    assert d["status"] == "SUCCEEDED", d
    output = json.loads(d["output"])
    assert output["outcome"] == "handled", output
    assert output["error"]["Error"] == "ValidationFailed", output
    assert "tenant: bad" in output["error"]["Cause"], output


def test_sfn_uncaught_failure_visible(flows: Flows) -> None:
    sm = flows.state_machine("nocatch", {"StartAt": "Call", "States": {
        "Call": flows.invoke_task("stepdeploy-fail")}})
    d = flows.run(sm, {})
    assert d["status"] == "FAILED", d
    assert d["error"] == "ValidationFailed", d
    assert "tenant: bad" in d["cause"], d
    history = flows.sfn.get_execution_history(executionArn=d["executionArn"])["events"]
    failed = [e["taskFailedEventDetails"] for e in history
              if e["type"] == "TaskFailed"]
    assert failed and failed[0]["error"] == "ValidationFailed", history
    assert any(e["type"] == "ExecutionFailed" for e in history), history


def test_sfn_history_keeps_events_after_an_error_quoting_xml(flows: Flows) -> None:
    sm = flows.state_machine("xmlcause", {"StartAt": "Call", "States": {
        "Call": flows.invoke_task("stepdeploy-xmlfail", Next="Done", Catch=[{
            "ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "After"}]),
        "After": {"Type": "Pass", "Next": "Done"},
        "Done": {"Type": "Succeed"}}})
    d = flows.run(sm, {})
    assert d["status"] == "SUCCEEDED", d
    events = flows.sfn.get_execution_history(executionArn=d["executionArn"])["events"]
    types = [e["type"] for e in events]
    assert types[-1] == "ExecutionSucceeded" and "PassStateEntered" in types, types
    cause = next(e["taskFailedEventDetails"]["cause"] for e in events
                 if e["type"] == "TaskFailed")
    assert "<RequestId>r-1</RequestId>" in cause and "r-2" in cause, cause


def test_sfn_retry(flows: Flows) -> None:
    sm = flows.state_machine("retry", {"StartAt": "Call", "States": {
        "Call": flows.invoke_task("stepdeploy-flaky", Retry=[{
            "ErrorEquals": ["ValidationFailed"], "IntervalSeconds": 1,
            "MaxAttempts": 3, "BackoffRate": 1.0}])}})
    d = flows.run(sm, {"key": "retry-1"})
    assert d["status"] == "SUCCEEDED", d
    assert len(flows.emu.calls_matching("flaky", lambda e: e.get("key") == "retry-1")) == 2


def test_sfn_function_arn_resource(flows: Flows) -> None:
    sm = flows.state_machine("plainarn", {"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": flows.fn["fail"], "Catch": [{
            "ErrorEquals": ["ValidationFailed"], "Next": "Handled"}], "End": True},
        "Handled": {"Type": "Pass", "End": True}}})
    d = flows.run(sm, {"k": 1})
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"])["Error"] == "ValidationFailed", d
    sm2 = flows.state_machine("plainarn-ok", {"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": flows.fn["echo"], "End": True}}})
    d = flows.run(sm2, {"k": 2})
    assert json.loads(d["output"]) == {"k": 2, "echoed": True}, d


def test_sfn_unnamed_execution_gets_name(flows: Flows) -> None:
    sm = flows.state_machine("unnamed", {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "End": True}}})
    arns = [flows.sfn.start_execution(stateMachineArn=sm, input="{}")["executionArn"]
            for _ in range(2)]
    assert arns[0] != arns[1], arns
    for arn in arns:
        name = flows.sfn.describe_execution(executionArn=arn)["name"]
        assert name and name != "None" and len(name) == 36, name


def test_sfn_wait_for_task_token(flows: Flows) -> None:
    sm = flows.state_machine("token", {"StartAt": "Wait", "States": {"Wait": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "stepdeploy-echo",
                       "Payload": {"token.$": "$$.Task.Token", "step": "wait-1"}},
        "End": True}}})
    arn = flows.sfn.start_execution(stateMachineArn=sm, input="{}")["executionArn"]
    calls = wait_for(lambda: flows.emu.calls_matching(
        "echo", lambda e: e.get("step") == "wait-1"), what="token invoke")
    time.sleep(0.5)
    assert flows.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    flows.sfn.send_task_success(taskToken=calls[0]["token"], output='{"done": true}')
    d = flows.finished(arn)
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == {"done": True}, d


def test_sfn_stop_while_a_task_waits_is_immediate(flows: Flows) -> None:
    # AWS aborts at once; moto's engine alone noticed only at the task's timeout.
    sm = flows.state_machine("stopwait", {"StartAt": "Wait", "States": {"Wait": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "stepdeploy-echo",
                       "Payload": {"token.$": "$$.Task.Token", "step": "stop-1"}},
        "TimeoutSeconds": 600, "End": True}}})
    arn = flows.sfn.start_execution(stateMachineArn=sm, input="{}")["executionArn"]
    wait_for(lambda: flows.emu.calls_matching("echo", lambda e: e.get("step") == "stop-1"),
             what="token invoke")
    flows.sfn.stop_execution(executionArn=arn)
    d = flows.sfn.describe_execution(executionArn=arn)
    assert d["status"] == "ABORTED" and d.get("stopDate"), d


def test_sfn_in_environment_account_invokes_its_lambda(flows: Flows) -> None:
    lam = flows.stack.client("lambda", DEV)
    sfn = flows.stack.client("stepfunctions", DEV)
    role = flows.stack.client("iam", DEV).create_role(
        RoleName="stepdeploy-selftest", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    flows.create_function(lam, "dev-only-echo", "echo", role)
    sm = flows.state_machine("dev", {"StartAt": "Call", "States": {
        "Call": flows.invoke_task("dev-only-echo")}}, client=sfn, role=role)
    d = flows.run(sm, {"acct": "dev"}, client=sfn)
    assert d["status"] == "SUCCEEDED", d
    assert d["executionArn"].split(":")[4] == DEV, d
