"""EventBridge rules deliver to Step Functions and Lambda targets
(stack/patches/eventbridge_targets.py)."""

from __future__ import annotations

import time

from .flows import Flows
from .harness import ORCH, REGION, wait_for


def test_events_state_machine_target(flows: Flows) -> None:
    sm = flows.passthrough_machine("from-events")
    flows.bus_with_rule("to-sfn", [{"Id": "sfn", "Arn": sm, "RoleArn": flows.role}])
    flows.put_event("to-sfn", detail_type="Something Else", tenant="ignored")
    event_id = flows.put_event("to-sfn", tenant="acme")
    [event] = flows.execution_inputs(sm, 1)
    assert list(event) == ["version", "id", "detail-type", "source", "account",
                           "time", "region", "resources", "detail"], event
    assert event["id"] == event_id and event["version"] == "0", event
    assert event["source"] == "stepdeploy", event
    assert event["detail-type"] == "Tenant Deployment Requested", event
    assert event["account"] == ORCH and event["region"] == REGION, event
    assert event["detail"] == {"rule": "to-sfn", "tenant": "acme"}, event
    assert event["resources"] == [] and event["time"].endswith("Z"), event


def test_events_input_transformer_and_input_path(flows: Flows) -> None:
    sm = flows.passthrough_machine("transformed")
    template = ('{"tenant": <tenant>, "label": "t-<tenant> \\"q\\"", "size": <size>, '
                '"detail": <detail>, "missing": <nothing>, "rule": "<aws.events.rule-name>"}')
    flows.bus_with_rule("to-sfn-transformed", [
        {"Id": "transformer", "Arn": sm, "RoleArn": flows.role, "InputTransformer": {
            "InputPathsMap": {"tenant": "$.detail.tenant", "size": "$.detail.size",
                              "detail": "$.detail", "nothing": "$.detail.nope"},
            "InputTemplate": template}},
        {"Id": "path", "Arn": sm, "RoleArn": flows.role, "InputPath": "$.detail"},
        {"Id": "constant", "Arn": sm, "RoleArn": flows.role, "Input": '{"fixed": 1}'}])
    flows.put_event("to-sfn-transformed", tenant='ac"me', size=3)
    inputs = flows.execution_inputs(sm, 3)
    detail = {"rule": "to-sfn-transformed", "tenant": 'ac"me', "size": 3}
    expected = [
        {"tenant": 'ac"me', "label": 't-ac"me "q"', "size": 3, "detail": detail,
         "missing": None, "rule": "to-sfn-transformed"},
        detail,
        {"fixed": 1},
    ]
    for item in expected:
        assert item in inputs, (item, inputs)


def test_events_lambda_target_async(flows: Flows) -> None:
    flows.bus_with_rule("to-lambda", [{"Id": "fn", "Arn": flows.fn["echo"]}])
    event_id = flows.put_event("to-lambda", tenant="acme")
    [event] = wait_for(lambda: flows.emu.calls_matching(
        "echo", lambda e: e.get("id") == event_id), what="lambda target call")
    assert event["detail"] == {"rule": "to-lambda", "tenant": "acme"}, event


def test_sfn_put_events_task_reaches_rule(flows: Flows) -> None:
    sink = flows.passthrough_machine("sink")
    flows.bus_with_rule("from-sfn", [{"Id": "sink", "Arn": sink, "RoleArn": flows.role}])
    sm = flows.state_machine("emit", {"StartAt": "Emit", "States": {"Emit": {
        "Type": "Task", "Resource": "arn:aws:states:::events:putEvents",
        "Parameters": {"Entries": [{
            "Source": "stepdeploy", "DetailType": "Tenant Deployment Requested",
            "EventBusName": "stepdeploy",
            "Detail": {"rule": "from-sfn", "tenant.$": "$.tenant"}}]},
        "End": True}}})
    d = flows.run(sm, {"tenant": "acme"})
    assert d["status"] == "SUCCEEDED", d
    [event] = flows.execution_inputs(sink, 1)
    assert event["detail"] == {"rule": "from-sfn", "tenant": "acme"}, event


def test_events_disabled_rule_does_not_deliver(flows: Flows) -> None:
    sm = flows.passthrough_machine("disabled-target")
    flows.bus_with_rule("disabled", [{"Id": "sfn", "Arn": sm, "RoleArn": flows.role}])
    flows.events.disable_rule(Name="disabled", EventBusName="stepdeploy")
    flows.put_event("disabled")
    time.sleep(0.5)
    assert flows.sfn.list_executions(stateMachineArn=sm)["executions"] == []
