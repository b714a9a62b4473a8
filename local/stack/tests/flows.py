"""What the Lambda, Step Functions, EventBridge, ECS and stand-in checks
share on the test stack: an orchestrator role, four functions run by the
fake emulator (echo, fail, flaky, xmlfail) and helpers (the `flows` fixture)."""

from __future__ import annotations

import json
from typing import Any

from .harness import REGION, TRUST, Stack, dummy_zip, http_get, wait_for


class Flows:
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

    def bus_with_rule(self, rule: str, targets: list[dict[str, Any]]) -> None:
        try:
            self.events.create_event_bus(Name="stepdeploy")
        except self.events.exceptions.ResourceAlreadyExistsException:
            pass
        self.events.put_rule(Name=rule, EventBusName="stepdeploy", EventPattern=json.dumps({
            "source": ["stepdeploy"], "detail-type": ["Tenant Deployment Requested"],
            "detail": {"rule": [rule]}}))
        self.events.put_targets(Rule=rule, EventBusName="stepdeploy", Targets=targets)

    def put_event(self, rule: str, detail_type: str = "Tenant Deployment Requested",
             **detail: Any) -> str:
        r = self.events.put_events(Entries=[{
            "Source": "stepdeploy", "DetailType": detail_type, "EventBusName": "stepdeploy",
            "Detail": json.dumps({"rule": rule, **detail})}])
        assert r["FailedEntryCount"] == 0 and r["Entries"][0].get("EventId"), r
        return r["Entries"][0]["EventId"]

    def execution_inputs(self, sm: str, count: int) -> list[Any]:
        executions = wait_for(lambda: (lambda e: e if len(e) >= count else None)(
            self.sfn.list_executions(stateMachineArn=sm)["executions"]),
            what=f"{count} execution(s) of {sm}")
        assert len(executions) == count, executions
        return [json.loads(self.sfn.describe_execution(
            executionArn=e["executionArn"])["input"]) for e in executions]

    def passthrough_machine(self, name: str) -> str:
        return self.state_machine(name, {"StartAt": "P", "States": {
            "P": {"Type": "Pass", "End": True}}})

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

    def site(self, host: str, path: str = "/") -> tuple[int, str, Any]:
        return http_get(f"{self.stack.standin_url}{path}", host=f"{host}:8088")
