"""A fleet rollout on the local stack (issue #14's statemachines/rollout-fleet
shape): waves one after another; each wave a Map over its tenants with
MaxConcurrencyPath, whose item starts a CHILD execution with
`arn:aws:states:::states:startExecution.sync:2` (Name from the rollout and
the tenant, Input) and Catches its failure as the item's result; a Lambda
judges the failure budget, a Wait (SecondsPath) bakes, a Choice loops to the
next wave or halts.

What AWS documents and the checks below hold the emulator to
(stack/patches/sfn_start_execution.py, sfn_nested_iam.py,
sfn_execution_names.py have the sources):

* Map: every item runs, at most MaxConcurrency at once.
* `.sync:2`: the Task waits for the child; its result is the child's
  DescribeExecution in PascalCase with Input and Output as JSON.
* A child that fails: the Task fails with States.TaskFailed, Cause the
  child's DescribeExecution as a JSON string; the Catch makes it the item's
  result and the Map goes on.
* StartExecution with the name of a RUNNING execution and the same input
  returns that execution (nothing starts twice); with a finished one, or
  another input: ExecutionAlreadyExists (in a Task:
  StepFunctions.ExecutionAlreadyExistsException).
* The child start is made with the parent's role: without
  states:StartExecution it is refused; a `.sync` child start needs the
  events permissions on the managed rule at CreateStateMachine.
* Execution names: 1-80 characters, no ':' and the like.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .flows import Flows
from .harness import ORCH, REGION, TRUST, Stack, wait_for

CHILD = "rollout-deploy-tenant"
SLACK_S = 0.05  # shaved off each child's [start, stop] before counting overlaps


def child_definition() -> dict[str, Any]:
    """Stands in for deploy-tenant: waits `sleep` seconds, fails if told to."""
    return {"StartAt": "Deploy", "States": {
        "Deploy": {"Type": "Wait", "SecondsPath": "$.sleep", "Next": "Outcome"},
        "Outcome": {"Type": "Choice", "Choices": [
            {"Variable": "$.fail", "BooleanEquals": True, "Next": "Failed"}],
            "Default": "Deployed"},
        "Failed": {"Type": "Fail", "Error": "TenantDeployFailed", "Cause": "health check failed"},
        "Deployed": {"Type": "Pass", "Parameters": {"tenant.$": "$.tenant", "deployed": True},
                     "End": True}}}


def parent_definition(child_arn: str, judge: str,
                      resource: str = "arn:aws:states:::states:startExecution.sync:2") -> dict[str, Any]:
    start = {
        "Type": "Task", "Resource": resource,
        "Parameters": {
            "StateMachineArn": child_arn,
            "Name.$": "States.Format('{}-{}', $.rollout, $.tenant.name)",
            "Input": {"tenant.$": "$.tenant.name", "fail.$": "$.tenant.fail",
                      "sleep.$": "$.tenant.sleep"}},
        "ResultPath": "$.child",
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Recorded"}],
        "End": True}
    return {"StartAt": "Pick", "States": {
        "Pick": {"Type": "Pass", "Parameters": {
            "tenants.$": "States.ArrayGetItem($.waves, $.wave)",
            "next.$": "States.MathAdd($.wave, 1)",
            "count.$": "States.ArrayLength($.waves)"},
            "ResultPath": "$.current", "Next": "Wave"},
        "Wave": {"Type": "Map", "ItemsPath": "$.current.tenants",
                 "MaxConcurrencyPath": "$.maxConcurrency",
                 "ItemSelector": {"tenant.$": "$$.Map.Item.Value", "rollout.$": "$.rollout"},
                 "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Start",
                                   "States": {"Start": start,
                                              "Recorded": {"Type": "Pass", "End": True}}},
                 "ResultPath": "$.results", "Next": "Judge"},
        "Judge": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                  "Parameters": {"FunctionName": judge,
                                 "Payload": {"results.$": "$.results",
                                             "budget.$": "$.failureBudget"}},
                  "ResultSelector": {"failed.$": "$.Payload.failed", "halt.$": "$.Payload.halt"},
                  "ResultPath": "$.verdict", "Next": "Verdict"},
        "Verdict": {"Type": "Choice", "Choices": [
            {"Variable": "$.verdict.halt", "BooleanEquals": True, "Next": "Halted"},
            {"Variable": "$.current.next", "NumericLessThanPath": "$.current.count",
             "Next": "Bake"}], "Default": "Done"},
        "Bake": {"Type": "Wait", "SecondsPath": "$.bakeSeconds", "Next": "Advance"},
        "Advance": {"Type": "Pass", "Parameters": {
            "rollout.$": "$.rollout", "waves.$": "$.waves", "maxConcurrency.$": "$.maxConcurrency",
            "bakeSeconds.$": "$.bakeSeconds", "failureBudget.$": "$.failureBudget",
            "wave.$": "$.current.next"}, "Next": "Pick"},
        "Halted": {"Type": "Fail", "Error": "RolloutHalted", "Cause": "failure budget exceeded"},
        "Done": {"Type": "Succeed"}}}


def parent_policy(child_arn: str, judge_arn: str, start: bool = True,
                  managed_rule: bool = True) -> dict[str, Any]:
    """The AWS docs' policy for a `.sync` child start (stepfunctions-iam.html),
    scoped to the child, plus lambda:InvokeFunction for the judge."""
    child_name = child_arn.rsplit(":", 1)[1]
    statements = [
        {"Effect": "Allow", "Action": ["states:DescribeExecution", "states:StopExecution"],
         "Resource": f"arn:aws:states:{REGION}:{ORCH}:execution:{child_name}:*"},
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": judge_arn}]
    if start:
        statements.append({"Effect": "Allow", "Action": "states:StartExecution",
                           "Resource": child_arn})
    if managed_rule:
        statements.append({
            "Effect": "Allow", "Action": ["events:PutTargets", "events:PutRule",
                                          "events:DescribeRule"],
            "Resource": f"arn:aws:events:{REGION}:{ORCH}:rule/"
                        "StepFunctionsGetEventsForStepFunctionsExecutionRule"})
    return {"Version": "2012-10-17", "Statement": statements}


class Rollout:
    """The child and parent state machines on the test launcher (the `rollout` fixture)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.sfn = stack.client("stepfunctions")
        self.iam = stack.client("iam")
        child_role = self.role("rollout-child", None)
        self.child = self.sfn.create_state_machine(
            name=CHILD, definition=json.dumps(child_definition()),
            roleArn=child_role)["stateMachineArn"]
        self.judge = Flows.create_function(stack.client("lambda"), "rollout-judge", "judge",
                                           child_role)
        self.parent_role = self.role("rollout-fleet", parent_policy(self.child, self.judge))
        self.parent = self.state_machine("rollout-fleet", self.parent_role)

    def role(self, name: str, policy: dict[str, Any] | None) -> str:
        arn = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        if policy is not None:
            self.iam.put_role_policy(RoleName=name, PolicyName="rollout",
                                     PolicyDocument=json.dumps(policy))
        return arn

    def state_machine(self, name: str, role: str, **kwargs: Any) -> str:
        return self.sfn.create_state_machine(
            name=name, roleArn=role,
            definition=json.dumps(parent_definition(self.child, self.judge, **kwargs)),
        )["stateMachineArn"]

    def start(self, waves: list[list[dict[str, Any]]], rollout: str | None = None,
              parent: str | None = None, max_concurrency: int = 2, bake: int = 0,
              budget: int = 10) -> tuple[str, str]:
        """(rollout id, parent execution ARN)."""
        rollout = rollout or f"ro{uuid.uuid4().hex[:10]}"
        arn = self.sfn.start_execution(
            stateMachineArn=parent or self.parent, name=f"rollout-{uuid.uuid4().hex[:12]}",
            input=json.dumps({"rollout": rollout, "waves": waves, "wave": 0,
                              "maxConcurrency": max_concurrency, "bakeSeconds": bake,
                              "failureBudget": budget}))["executionArn"]
        return rollout, arn

    def finished(self, arn: str, timeout: float = 60) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            d = self.sfn.describe_execution(executionArn=arn)
            return d if d["status"] != "RUNNING" else None
        return wait_for(done, timeout=timeout, interval=0.2, what=f"execution {arn}")

    def run(self, waves: list[list[dict[str, Any]]], **kwargs: Any) -> tuple[str, dict[str, Any]]:
        rollout, arn = self.start(waves, **kwargs)
        return rollout, self.finished(arn)

    def children(self, rollout: str) -> dict[str, dict[str, Any]]:
        """This rollout's child executions by tenant, described."""
        found = {}
        for page in self.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.child):
            for e in page["executions"]:
                if e["name"].startswith(f"{rollout}-"):
                    found[e["name"][len(rollout) + 1:]] = self.sfn.describe_execution(
                        executionArn=e["executionArn"])
        return found


def tenant(name: str, fail: bool = False, sleep: int = 1) -> dict[str, Any]:
    return {"name": name, "fail": fail, "sleep": sleep}


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """Most intervals open at one instant, each shaved by SLACK_S at both ends."""
    points = []
    for start, stop in intervals:
        points += [(start.timestamp() + SLACK_S, 1), (stop.timestamp() - SLACK_S, -1)]
    current = peak = 0
    for _, delta in sorted(points):  # at equal times the end (-1) sorts first
        current += delta
        peak = max(peak, current)
    return peak


def millis(value: datetime) -> int:
    return int(value.timestamp() * 1000)


@pytest.fixture(scope="module")
def rollout(stack: Stack) -> Rollout:
    return Rollout(stack)


@pytest.fixture(scope="module")
def wave(rollout: Rollout) -> tuple[str, dict[str, Any]]:
    """One wave of five tenants, t2 failing, MaxConcurrency 2 (from the input)."""
    tenants = [tenant(f"t{i}", fail=(i == 2)) for i in range(5)]
    return rollout.run([tenants], max_concurrency=2)


def test_map_runs_every_tenant_at_most_max_concurrency_children_at_once(
        rollout: Rollout, wave: tuple[str, dict[str, Any]]) -> None:
    rollout_id, parent = wave
    assert parent["status"] == "SUCCEEDED", parent
    children = rollout.children(rollout_id)
    assert sorted(children) == [f"t{i}" for i in range(5)], children
    intervals = [(c["startDate"], c["stopDate"]) for c in children.values()]
    # MaxConcurrencyPath: 2 at most, and the Map did use both (not one at a time).
    assert max_overlap(intervals) == 2, intervals
    results = json.loads(parent["output"])["results"]
    assert [r["tenant"]["name"] for r in results] == [f"t{i}" for i in range(5)], results


def test_sync2_result_is_the_childs_describe_execution_with_json_output(
        rollout: Rollout, wave: tuple[str, dict[str, Any]]) -> None:
    rollout_id, parent = wave
    result = json.loads(parent["output"])["results"][0]["child"]
    described = rollout.children(rollout_id)["t0"]
    assert result["Output"] == {"tenant": "t0", "deployed": True}, result  # JSON, not a string
    assert result["Input"] == {"tenant": "t0", "fail": False, "sleep": 1}, result
    assert result["ExecutionArn"] == described["executionArn"], result
    assert result["Name"] == f"{rollout_id}-t0" == described["name"], result
    assert result["StateMachineArn"] == rollout.child, result
    assert result["Status"] == "SUCCEEDED", result
    assert result["InputDetails"] == {"Included": True}, result
    assert result["OutputDetails"] == {"Included": True}, result
    # Dates as numbers (epoch milliseconds), the child's own.
    assert abs(result["StartDate"] - millis(described["startDate"])) <= 1, result
    assert abs(result["StopDate"] - millis(described["stopDate"])) <= 1, result


def test_failed_child_is_caught_as_states_task_failed_and_the_map_goes_on(
        rollout: Rollout, wave: tuple[str, dict[str, Any]]) -> None:
    rollout_id, parent = wave
    output = json.loads(parent["output"])
    failed = output["results"][2]
    assert "child" not in failed, failed
    assert failed["error"]["Error"] == "States.TaskFailed", failed
    cause = json.loads(failed["error"]["Cause"])  # the child's DescribeExecution
    described = rollout.children(rollout_id)["t2"]
    assert described["status"] == "FAILED", described
    assert cause["ExecutionArn"] == described["executionArn"], cause
    assert cause["Name"] == f"{rollout_id}-t2", cause
    assert cause["Status"] == "FAILED", cause
    assert cause["Error"] == "TenantDeployFailed", cause
    assert cause["Cause"] == "health check failed", cause
    assert "Output" not in cause, cause
    # The Map went on: the other four deployed, the judge saw one failure.
    assert [("child" in r) for r in output["results"]] == [True, True, False, True, True], output
    assert output["verdict"] == {"failed": 1, "halt": False}, output


def test_start_execution_is_idempotent_for_a_running_child_only(rollout: Rollout) -> None:
    name = f"idem-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"tenant": "x", "fail": False, "sleep": 3})
    first = rollout.sfn.start_execution(stateMachineArn=rollout.child, name=name, input=body)
    again = rollout.sfn.start_execution(stateMachineArn=rollout.child, name=name, input=body)
    assert again["executionArn"] == first["executionArn"], (first, again)
    assert again["startDate"] == first["startDate"], (first, again)
    with pytest.raises(ClientError) as other_input:
        rollout.sfn.start_execution(stateMachineArn=rollout.child, name=name,
                                    input=json.dumps({"tenant": "y", "fail": False, "sleep": 3}))
    assert other_input.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
    assert rollout.finished(first["executionArn"])["status"] == "SUCCEEDED"
    with pytest.raises(ClientError) as finished:
        rollout.sfn.start_execution(stateMachineArn=rollout.child, name=name, input=body)
    assert finished.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
    names = [e["name"] for e in rollout.sfn.list_executions(
        stateMachineArn=rollout.child)["executions"]]
    assert names.count(name) == 1, names


def test_redelivered_parent_attaches_to_the_running_child_and_fails_on_a_finished_one(
        rollout: Rollout) -> None:
    waves = [[tenant("x", sleep=4)]]
    rollout_id, first = rollout.start(waves)
    wait_for(lambda: rollout.children(rollout_id).get("x"), timeout=20, what="the child")
    # Same rollout: same child Name and the same Input string.  (An Input that
    # carries the parent's own id, AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID,
    # differs between two parent executions: AWS then answers
    # ExecutionAlreadyExists even while the child runs.)
    _, second = rollout.start(waves, rollout=rollout_id)
    a, b = rollout.finished(first), rollout.finished(second)
    assert a["status"] == b["status"] == "SUCCEEDED", (a, b)
    child_a = json.loads(a["output"])["results"][0]["child"]
    child_b = json.loads(b["output"])["results"][0]["child"]
    assert child_a["ExecutionArn"] == child_b["ExecutionArn"], (child_a, child_b)
    assert child_b["Output"] == {"tenant": "x", "deployed": True}, child_b
    # Once the child has finished, its name is taken: the Task fails, the Catch records it.
    _, third = rollout.run(waves, rollout=rollout_id)
    assert third["status"] == "SUCCEEDED", third
    error = json.loads(third["output"])["results"][0]["error"]
    assert error["Error"] == "StepFunctions.ExecutionAlreadyExistsException", error
    assert "Error Code: ExecutionAlreadyExists" in error["Cause"], error
    assert child_a["ExecutionArn"] in error["Cause"], error
    assert list(rollout.children(rollout_id)) == ["x"]


def test_child_start_without_states_start_execution_is_refused(
        rollout: Rollout, stack: Stack) -> None:
    role = rollout.role("rollout-fleet-nostart",
                        parent_policy(rollout.child, rollout.judge, start=False))
    parent = rollout.state_machine("rollout-fleet-nostart", role)
    rollout_id, run = rollout.run([[tenant("t0")]], parent=parent)
    assert run["status"] == "SUCCEEDED", run
    error = json.loads(run["output"])["results"][0]["error"]
    assert error["Error"] == "StepFunctions.AWSStepFunctionsException", error
    refusal = (f"User: arn:aws:sts::{ORCH}:assumed-role/rollout-fleet-nostart/stepfunctions is "
               f"not authorized to perform: states:StartExecution on resource: {rollout.child} "
               "because no identity-based policy allows the states:StartExecution action")
    assert error["Cause"].startswith(refusal), error
    assert "Error Code: AccessDeniedException" in error["Cause"], error
    assert rollout.children(rollout_id) == {}, "a refused start started a child"
    with urllib.request.urlopen(f"{stack.endpoint}/__stepdeploy__/iam", timeout=10) as resp:
        denials = [d["message"] for d in json.loads(resp.read())["denials"]]
    assert refusal in denials, denials[-5:]


def test_sync_child_start_needs_the_managed_rule_permissions(rollout: Rollout) -> None:
    role = rollout.role("rollout-fleet-norule",
                        parent_policy(rollout.child, rollout.judge, managed_rule=False))
    with pytest.raises(ClientError) as refused:
        rollout.state_machine("rollout-fleet-norule", role)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert refused.value.response["Error"]["Message"] == (
        f"'{role}' is not authorized to create managed-rule.")
    # A request-response start needs no rule; updating it to .sync:2 does.
    plain = rollout.state_machine("rollout-fleet-norule", role,
                                  resource="arn:aws:states:::states:startExecution")
    with pytest.raises(ClientError) as update:
        rollout.sfn.update_state_machine(
            stateMachineArn=plain,
            definition=json.dumps(parent_definition(rollout.child, rollout.judge)))
    assert update.value.response["Error"]["Code"] == "AccessDeniedException"


def test_waves_loop_with_bake_seconds_path(rollout: Rollout) -> None:
    rollout_id, run = rollout.run([[tenant("a0"), tenant("a1")], [tenant("b0")]], bake=1,
                                  budget=0)
    assert run["status"] == "SUCCEEDED", run
    children = rollout.children(rollout_id)
    assert sorted(children) == ["a0", "a1", "b0"], children
    first_wave_done = max(children[t]["stopDate"] for t in ("a0", "a1")).timestamp()
    # Wait SecondsPath=1 between the waves (the child's own start adds to it, never less).
    assert children["b0"]["startDate"].timestamp() >= first_wave_done + 1 - SLACK_S, children
    output = json.loads(run["output"])
    assert output["wave"] == 1 and output["verdict"] == {"failed": 0, "halt": False}, output


def test_waves_halt_when_the_failure_budget_is_spent(rollout: Rollout) -> None:
    rollout_id, run = rollout.run([[tenant("a0", fail=True), tenant("a1")], [tenant("b0")]],
                                  bake=1, budget=0)
    assert run["status"] == "FAILED" and run["error"] == "RolloutHalted", run
    assert sorted(rollout.children(rollout_id)) == ["a0", "a1"]  # wave 2 never started


def test_child_names_are_validated_as_aws_does(rollout: Rollout) -> None:
    for bad in ("ro:1", "r" * 78):  # "ro:1-t0" has ':'; "r"*78 + "-t0" is 81 characters
        _, run = rollout.run([[tenant("t0", sleep=0)]], rollout=bad)
        error = json.loads(run["output"])["results"][0]["error"]
        assert error["Error"] == "StepFunctions.InvalidNameException", (bad, error)
        assert "Error Code: InvalidName" in error["Cause"], error
    with pytest.raises(ClientError) as refused:
        rollout.sfn.start_execution(stateMachineArn=rollout.child, name="a b", input="{}")
    assert refused.value.response["Error"]["Code"] == "InvalidName"
    longest = "n" * 80
    arn = rollout.sfn.start_execution(stateMachineArn=rollout.child, name=longest,
                                      input=json.dumps({"tenant": "t", "fail": False, "sleep": 0}))
    assert rollout.finished(arn["executionArn"])["name"] == longest
