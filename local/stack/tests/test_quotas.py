"""AWS quotas the pipeline can reach, refused as AWS refuses them
(stack/patches/strict_quotas.py)."""

from __future__ import annotations

import io
import json
import zipfile

from stack.patches import strict_quotas

from .harness import DEV, REGION, Stack, refusal, wait
from .strict import Strict


def test_quota_alb_101st_target_group_refused(strict: Strict) -> None:
    elb, vpc, lb, listener = strict.alb("strict-tgs")
    groups = [elb.create_target_group(
        Name=f"strict-tg-{i}", Protocol="HTTP", Port=80, VpcId=vpc,
        TargetType="ip")["TargetGroups"][0]["TargetGroupArn"] for i in range(101)]
    for i in range(20):  # 20 rules x 5 target groups (the per-action maximum) = 100
        strict.rule(elb, listener, i + 1, groups[i * 5:i * 5 + 5])()
    status, code, message = refusal(strict.rule(elb, listener, 21, [groups[100]]))
    assert (status, code) == (400, "TooManyUniqueTargetGroupsPerLoadBalancer"), \
        (status, code, message)
    assert lb in message, message
    # A target group the load balancer already uses is not a new one.
    assert refusal(strict.rule(elb, listener, 21, [groups[0]]))[1] == ""
    status, code, _ = refusal(lambda: elb.modify_listener(ListenerArn=listener, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": groups[100]}]))
    assert (status, code) == (400, "TooManyUniqueTargetGroupsPerLoadBalancer"), code


def test_quota_alb_101st_rule_refused(strict: Strict) -> None:
    elb, vpc, lb, listener = strict.alb("strict-rules")
    group = elb.create_target_group(Name="strict-rules-tg", Protocol="HTTP", Port=80,
                                    VpcId=vpc, TargetType="ip")["TargetGroups"][0]
    for priority in range(1, 101):
        strict.rule(elb, listener, priority, [group["TargetGroupArn"]])()
    status, code, message = refusal(strict.rule(elb, listener, 101, [group["TargetGroupArn"]]))
    assert (status, code) == (400, "TooManyRules"), (status, code, message)


def test_quota_role_inline_policies_10240_characters(stack: Stack) -> None:
    iam = stack.client("iam", DEV)
    iam.create_role(RoleName="strict-ecs-task-execution", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
         "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}))

    def policy(tenant: str, pad: int) -> str:  # pretty-printed: white space is not counted
        return json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
            "Resource": f"arn:aws:secretsmanager:{REGION}:{DEV}:secret:dev-{tenant}"
                        f"{'x' * pad}-db-credentials-*"}]}, indent=4)

    base = strict_quotas.policy_chars(policy("t", 0))
    put = lambda name, doc: lambda: iam.put_role_policy(  # noqa: E731
        RoleName="strict-ecs-task-execution", PolicyName=name, PolicyDocument=doc)
    assert refusal(put("t1", policy("t", 5000 - base)))[1] == ""
    assert refusal(put("t2", policy("t", 5240 - base)))[1] == "", "exactly 10,240 fits"
    status, code, message = refusal(put("t3", policy("t", 1)))
    assert (status, code) == (409, "LimitExceeded"), (status, code, message)
    assert message == ("Maximum policy size of 10240 bytes exceeded for role "
                       "strict-ecs-task-execution"), message
    # Replacing a policy counts its new size only.
    assert refusal(put("t2", policy("t", 5240 - base)))[1] == ""


def test_quota_sns_subject(stack: Stack) -> None:
    sns = stack.client("sns")
    topic = sns.create_topic(Name="strict-notifications")["TopicArn"]
    publish = lambda subject: lambda: sns.publish(  # noqa: E731
        TopicArn=topic, Message="m", Subject=subject)
    assert refusal(publish("s" * 99))[1] == ""
    for bad in ("s" * 100, "Deploy failed:\nacme", "Déploiement échoué", " leading space"):
        status, code, message = refusal(publish(bad))
        assert (status, code, message) == (400, "InvalidParameter",
                                           "Invalid parameter: Subject"), (bad, code, message)


def test_quota_lambda_environment_4kb(stack: Stack) -> None:
    lam, iam = stack.client("lambda"), stack.client("iam")
    role = iam.create_role(RoleName="strict-fn", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": []}))["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("bootstrap", "x")
    fits = {"Variables": {"STEPDEPLOY_X": "v" * (4096 - len('{"STEPDEPLOY_X":""}'))}}
    over = {"Variables": {"STEPDEPLOY_X": "v" * (4097 - len('{"STEPDEPLOY_X":""}'))}}
    create = lambda name, env: lambda: lam.create_function(  # noqa: E731
        FunctionName=name, Runtime="provided.al2023", Role=role, Handler="echo",
        Code={"ZipFile": buffer.getvalue()}, Environment=env)
    assert refusal(create("strict-env-fits", fits))[1] == ""
    status, code, message = refusal(create("strict-env-over", over))
    assert (status, code) == (400, "InvalidParameterValueException"), (status, code)
    assert message.startswith(
        "Lambda was unable to configure your environment variables because the environment "
        "variables you have provided exceeded the 4KB limit. String measured: "
        '{"STEPDEPLOY_X":"vvv'), message
    status, code, _ = refusal(lambda: lam.update_function_configuration(
        FunctionName="strict-env-fits", Environment=over))
    assert (status, code) == (400, "InvalidParameterValueException"), code


def test_events_detail_must_be_a_json_object(stack: Stack) -> None:
    events = stack.client("events")
    events.create_event_bus(Name="strict-bus")
    entry = lambda detail: {"EventBusName": "strict-bus", "Source": "stepdeploy",  # noqa: E731
                            "DetailType": "Tenant Deployment Requested", "Detail": detail}
    out = events.put_events(Entries=[entry('"a string"'), entry('{"tenant": "x"}'),
                                     entry("[1, 2]"), entry("{not json")])
    assert out["FailedEntryCount"] == 3, out
    codes = [e.get("ErrorCode") for e in out["Entries"]]
    assert codes == ["MalformedDetail", None, "MalformedDetail", "MalformedDetail"], codes
    assert out["Entries"][1]["EventId"], out


def test_quota_sfn_execution_history_25000_events(stack: Stack) -> None:
    sfn = stack.client("stepfunctions")
    role = stack.client("iam").create_role(
        RoleName="strict-sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    machine = sfn.create_state_machine(name="strict-spin", roleArn=role, definition=json.dumps({
        "StartAt": "Spin", "States": {
            "Spin": {"Type": "Pass", "Next": "Again"},
            "Again": {"Type": "Choice", "Default": "Spin", "Choices": [{
                "Variable": "$.stop", "BooleanEquals": True, "Next": "Done"}]},
            "Done": {"Type": "Succeed"}}}))["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input='{"stop": false}')["executionArn"]
    done = wait(lambda: (lambda d: d if d["status"] != "RUNNING" else None)(
        sfn.describe_execution(executionArn=arn)), 120, "the spinning execution to end")
    assert done["status"] == "FAILED" and done["error"] == "States.Runtime", done
    assert done["cause"] == "The execution reached the maximum number of history events " \
                            "(25000).", done
    events, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=arn, **({"nextToken": token}
                                                               if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            break
    assert len(events) == 25000, len(events)
    assert events[-1]["id"] == 25000 and events[-1]["type"] == "ExecutionFailed", events[-1]
    assert events[-1]["executionFailedEventDetails"]["error"] == "States.Runtime"
