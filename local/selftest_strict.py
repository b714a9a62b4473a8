"""Self-test block: AWS quotas, ECS start-up and the AWS CLI on the local stack
(issue #11 items 2, 3 and 6).  Run by local/selftest_launcher.py against its
own moto launcher (free ports); each test_* method is one check.

    local/.venv/bin/python local/selftest_launcher.py
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

from selftest_launcher import wait_for

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ORCH, DEV, REGION = "123456789012", "111111111111", "eu-west-1"


def _error(call: Callable[[], Any]) -> tuple[int, str, str]:
    """(HTTP status, error code, message) of a refused call; (200, "", "") if it passed."""
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as e:
        return (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"],
                e.response["Error"].get("Message", ""))
    return 200, "", ""


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    return wait_for(predicate, timeout, what=what)


class StrictChecks:
    """Quotas (strict_quotas.py), ECS start-up (ecs_startup.py), the AWS CLI (bin/aws)."""

    def __init__(self, stack: Any, startup_seconds: float) -> None:
        self.stack = stack
        self.startup = startup_seconds
        self._vpc: dict[str, tuple[str, list[str], str]] = {}

    # ---- helpers -----------------------------------------------------------

    def network(self, account: str) -> tuple[str, list[str], str]:
        """(vpc, two subnets, security group) in `account`, made once."""
        if account not in self._vpc:
            ec2 = self.stack.client("ec2", account)
            vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
            subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24",
                                         AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
                       for i, az in ((1, "a"), (2, "b"))]
            sg = ec2.create_security_group(GroupName=f"strict-{vpc}", Description="strict",
                                           VpcId=vpc)["GroupId"]
            self._vpc[account] = (vpc, subnets, sg)
        return self._vpc[account]

    def alb(self, name: str) -> tuple[Any, str, str, str]:
        """(elbv2 client, vpc, load balancer ARN, listener ARN) in dev."""
        elb = self.stack.client("elbv2", DEV)
        vpc, subnets, sg = self.network(DEV)
        lb = elb.create_load_balancer(Name=name, Subnets=subnets,
                                      SecurityGroups=[sg])["LoadBalancers"][0]["LoadBalancerArn"]
        listener = elb.create_listener(
            LoadBalancerArn=lb, Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
                "StatusCode": "404"}}])["Listeners"][0]["ListenerArn"]
        return elb, vpc, lb, listener

    @staticmethod
    def rule(elb: Any, listener: str, priority: int, groups: list[str]) -> Callable[[], Any]:
        return lambda: elb.create_rule(
            ListenerArn=listener, Priority=priority,
            Conditions=[{"Field": "host-header", "HostHeaderConfig": {
                "Values": [f"t{priority}.wpdev.kimmyai.io"]}}],
            Actions=[{"Type": "forward", "ForwardConfig": {
                "TargetGroups": [{"TargetGroupArn": g} for g in groups]}}])

    # ---- quotas ----------------------------------------------------------------

    def test_quota_alb_101st_target_group_refused(self) -> None:
        elb, vpc, lb, listener = self.alb("strict-tgs")
        groups = [elb.create_target_group(
            Name=f"strict-tg-{i}", Protocol="HTTP", Port=80, VpcId=vpc,
            TargetType="ip")["TargetGroups"][0]["TargetGroupArn"] for i in range(101)]
        for i in range(20):  # 20 rules x 5 target groups (the per-action maximum) = 100
            self.rule(elb, listener, i + 1, groups[i * 5:i * 5 + 5])()
        status, code, message = _error(self.rule(elb, listener, 21, [groups[100]]))
        assert (status, code) == (400, "TooManyUniqueTargetGroupsPerLoadBalancer"), \
            (status, code, message)
        assert lb in message, message
        # A target group the load balancer already uses is not a new one.
        assert _error(self.rule(elb, listener, 21, [groups[0]]))[1] == ""
        status, code, _ = _error(lambda: elb.modify_listener(ListenerArn=listener, DefaultActions=[
            {"Type": "forward", "TargetGroupArn": groups[100]}]))
        assert (status, code) == (400, "TooManyUniqueTargetGroupsPerLoadBalancer"), code

    def test_quota_alb_101st_rule_refused(self) -> None:
        elb, vpc, lb, listener = self.alb("strict-rules")
        group = elb.create_target_group(Name="strict-rules-tg", Protocol="HTTP", Port=80,
                                        VpcId=vpc, TargetType="ip")["TargetGroups"][0]
        for priority in range(1, 101):
            self.rule(elb, listener, priority, [group["TargetGroupArn"]])()
        status, code, message = _error(self.rule(elb, listener, 101, [group["TargetGroupArn"]]))
        assert (status, code) == (400, "TooManyRules"), (status, code, message)

    def test_quota_role_inline_policies_10240_characters(self) -> None:
        from stack.patches import strict_quotas

        iam = self.stack.client("iam", DEV)
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
        assert _error(put("t1", policy("t", 5000 - base)))[1] == ""
        assert _error(put("t2", policy("t", 5240 - base)))[1] == "", "exactly 10,240 fits"
        status, code, message = _error(put("t3", policy("t", 1)))
        assert (status, code) == (409, "LimitExceeded"), (status, code, message)
        assert message == ("Maximum policy size of 10240 bytes exceeded for role "
                           "strict-ecs-task-execution"), message
        # Replacing a policy counts its new size only.
        assert _error(put("t2", policy("t", 5240 - base)))[1] == ""

    def test_quota_sns_subject(self) -> None:
        sns = self.stack.client("sns")
        topic = sns.create_topic(Name="strict-notifications")["TopicArn"]
        publish = lambda subject: lambda: sns.publish(  # noqa: E731
            TopicArn=topic, Message="m", Subject=subject)
        assert _error(publish("s" * 99))[1] == ""
        for bad in ("s" * 100, "Deploy failed:\nacme", "Déploiement échoué", " leading space"):
            status, code, message = _error(publish(bad))
            assert (status, code, message) == (400, "InvalidParameter",
                                               "Invalid parameter: Subject"), (bad, code, message)

    def test_quota_lambda_environment_4kb(self) -> None:
        lam, iam = self.stack.client("lambda"), self.stack.client("iam")
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
        assert _error(create("strict-env-fits", fits))[1] == ""
        status, code, message = _error(create("strict-env-over", over))
        assert (status, code) == (400, "InvalidParameterValueException"), (status, code)
        assert message.startswith(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided exceeded the 4KB limit. String measured: "
            '{"STEPDEPLOY_X":"vvv'), message
        status, code, _ = _error(lambda: lam.update_function_configuration(
            FunctionName="strict-env-fits", Environment=over))
        assert (status, code) == (400, "InvalidParameterValueException"), code

    def test_events_detail_must_be_a_json_object(self) -> None:
        events = self.stack.client("events")
        events.create_event_bus(Name="strict-bus")
        entry = lambda detail: {"EventBusName": "strict-bus", "Source": "stepdeploy",  # noqa: E731
                                "DetailType": "Tenant Deployment Requested", "Detail": detail}
        out = events.put_events(Entries=[entry('"a string"'), entry('{"tenant": "x"}'),
                                         entry("[1, 2]"), entry("{not json")])
        assert out["FailedEntryCount"] == 3, out
        codes = [e.get("ErrorCode") for e in out["Entries"]]
        assert codes == ["MalformedDetail", None, "MalformedDetail", "MalformedDetail"], codes
        assert out["Entries"][1]["EventId"], out

    def test_quota_sfn_execution_history_25000_events(self) -> None:
        sfn = self.stack.client("stepfunctions")
        role = self.stack.client("iam").create_role(
            RoleName="strict-sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        machine = sfn.create_state_machine(name="strict-spin", roleArn=role, definition=json.dumps({
            "StartAt": "Spin", "States": {
                "Spin": {"Type": "Pass", "Next": "Again"},
                "Again": {"Type": "Choice", "Default": "Spin", "Choices": [{
                    "Variable": "$.stop", "BooleanEquals": True, "Next": "Done"}]},
                "Done": {"Type": "Succeed"}}}))["stateMachineArn"]
        arn = sfn.start_execution(stateMachineArn=machine, input='{"stop": false}')["executionArn"]
        done = _wait(lambda: (lambda d: d if d["status"] != "RUNNING" else None)(
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

    # ---- ECS start-up ----------------------------------------------------------

    def service_with_secret(self, name: str, value_from: str | None,
                            execution_role: str | None = None) -> tuple[Any, Any, str]:
        """A dev service of a task definition reading `value_from`, behind a target group."""
        ecs, elb = self.stack.client("ecs", DEV), self.stack.client("elbv2", DEV)
        vpc, subnets, sg = self.network(DEV)
        try:
            ecs.create_cluster(clusterName="strict")
        except Exception:
            pass
        group = elb.create_target_group(Name=f"strict-{name}", Protocol="HTTP", Port=80,
                                        VpcId=vpc, TargetType="ip")["TargetGroups"][0]
        container: dict[str, Any] = {"name": "wordpress", "image": "wordpress:6",
                                     "essential": True, "portMappings": [{"containerPort": 80}]}
        if value_from:
            container["secrets"] = [{"name": "WORDPRESS_DB_PASSWORD", "valueFrom": value_from}]
        extra = {"executionRoleArn": execution_role} if execution_role else {}
        ecs.register_task_definition(family=f"strict-{name}", networkMode="awsvpc",
                                     requiresCompatibilities=["FARGATE"], cpu="256",
                                     memory="512", containerDefinitions=[container], **extra)
        ecs.create_service(cluster="strict", serviceName=name, taskDefinition=f"strict-{name}",
                           desiredCount=1, launchType="FARGATE",
                           loadBalancers=[{"targetGroupArn": group["TargetGroupArn"],
                                           "containerName": "wordpress", "containerPort": 80}],
                           networkConfiguration={"awsvpcConfiguration": {
                               "subnets": subnets, "securityGroups": [sg]}})
        return ecs, elb, group["TargetGroupArn"]

    def execution_role(self, name: str, statements: list[dict[str, Any]]) -> str:
        """A task execution role in dev with these identity-policy statements."""
        iam = self.stack.client("iam", DEV)
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}))["Role"]["Arn"]
        if statements:
            iam.put_role_policy(RoleName=name, PolicyName="secrets", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": statements}))
        return arn

    @staticmethod
    def describe(ecs: Any, name: str) -> dict[str, Any]:
        return ecs.describe_services(cluster="strict", services=[name])["services"][0]

    @staticmethod
    def steady(service: dict[str, Any]) -> bool:
        primary = [d for d in service["deployments"] if d["status"] == "PRIMARY"]
        return (service["runningCount"] == service["desiredCount"] > 0
                and len(service["deployments"]) == 1
                and primary[0]["rolloutState"] == "COMPLETED")

    def stopped_reasons(self, ecs: Any, name: str) -> list[str]:
        arns = ecs.list_tasks(cluster="strict", serviceName=name,
                              desiredStatus="STOPPED")["taskArns"]
        if not arns:
            return []
        tasks = ecs.describe_tasks(cluster="strict", tasks=arns)["tasks"]
        assert all(t["lastStatus"] == "STOPPED" and t["stopCode"] == "TaskFailedToStart"
                   for t in tasks), tasks
        return [t["stoppedReason"] for t in tasks]

    def test_ecs_healthy_service_steady_only_after_the_delay(self) -> None:
        created = time.monotonic()
        ecs, elb, group = self.service_with_secret("healthy", None)
        service = self.describe(ecs, "healthy")
        [deployment] = service["deployments"]
        assert deployment["status"] == "PRIMARY" and deployment["rolloutState"] == "IN_PROGRESS", \
            deployment
        assert service["runningCount"] == 0 and service["pendingCount"] == 1, service
        assert "has started 1 tasks" in service["events"][0]["message"], service["events"]
        time.sleep(max(self.startup * 0.5 - (time.monotonic() - created), 0))
        assert not self.steady(self.describe(ecs, "healthy")), "steady before the delay"
        assert not elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
        service = _wait(lambda: (lambda s: s if self.steady(s) else None)(
            self.describe(ecs, "healthy")), self.startup * 3, "steady state")
        assert time.monotonic() - created >= self.startup * 0.95, "steady before the delay"
        assert service["deployments"][0]["rolloutStateReason"] == \
            f"ECS deployment {deployment['id']} completed.", service["deployments"]
        assert service["events"][0]["message"] == "(service healthy) has reached a steady state."
        targets = elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
        assert len(targets) == 1, targets

    def test_ecs_missing_secret_no_steady_state_until_it_exists(self) -> None:
        secret = f"arn:aws:secretsmanager:{REGION}:{DEV}:secret:dev-strict-db-credentials"
        role = self.execution_role("strict-exec-nosecret", [{
            "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
            "Resource": f"{secret}-*"}])
        ecs, elb, group = self.service_with_secret("nosecret", f"{secret}:password::", role)
        time.sleep(self.startup * 2.5)
        service = self.describe(ecs, "nosecret")
        [deployment] = service["deployments"]
        assert service["runningCount"] == 0 and deployment["rolloutState"] == "IN_PROGRESS", service
        assert deployment["failedTasks"] >= 2, deployment
        messages = [e["message"] for e in service["events"]]
        assert not any("steady state" in m for m in messages), messages
        assert sum("(service nosecret) has started 1 tasks" in m for m in messages) >= 2, messages
        reasons = self.stopped_reasons(ecs, "nosecret")
        assert reasons and all(r.startswith(
            "ResourceInitializationError: unable to pull secrets or registry auth: execution "
            "resource retrieval failed: unable to retrieve secret from asm: service call has been "
            f"retried 1 time(s): failed to fetch secret {secret} from secrets manager: "
            "ResourceNotFoundException: Secrets Manager can't find the specified secret.")
            for r in reasons), reasons
        assert not elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
        # The secret without the key the task reads: still failing, with that reason.
        sm = self.stack.client("secretsmanager", DEV)
        sm.create_secret(Name="dev-strict-db-credentials",
                         SecretString=json.dumps({"username": "strict_user"}))
        _wait(lambda: any("did not contain json key password" in r
                          for r in self.stopped_reasons(ecs, "nosecret")),
              self.startup * 3, "the json-key stop reason")
        assert not self.steady(self.describe(ecs, "nosecret"))
        # Created as the database phase creates it: the next launch starts.
        sm.put_secret_value(SecretId="dev-strict-db-credentials", SecretString=json.dumps(
            {"username": "strict_user", "password": "p" * 24}))
        service = _wait(lambda: (lambda s: s if self.steady(s) else None)(
            self.describe(ecs, "nosecret")), self.startup * 3, "steady once the secret exists")
        assert service["deployments"][0]["failedTasks"] >= 3, service["deployments"]
        assert len(elb.describe_target_health(TargetGroupArn=group)[
            "TargetHealthDescriptions"]) == 1

    def test_ecs_execution_role_may_not_read_the_secret(self) -> None:
        from stack import iam_enforce

        if not all(hasattr(iam_enforce, f) for f in ("evaluate", "role_by_arn", "role_policies")):
            raise AssertionError("local/stack/iam_enforce.py no longer offers evaluate/role_by_arn/"
                                 "role_policies: adapt ecs_startup._iam_denial")
        iam = self.stack.client("iam", DEV)
        role = self.execution_role("strict-exec", [])
        secret = self.stack.client("secretsmanager", DEV).create_secret(
            Name="dev-strict-denied", SecretString=json.dumps({"password": "p"}))["ARN"]
        ecs, _, _ = self.service_with_secret("denied", f"{secret}:password::", role)
        reasons = _wait(lambda: self.stopped_reasons(ecs, "denied"), self.startup * 3,
                        "a stopped task")
        assert "AccessDeniedException: User: arn:aws:sts::111111111111:assumed-role/strict-exec/" \
               in reasons[0], reasons
        assert f"is not authorized to perform: secretsmanager:GetSecretValue on resource: " \
               f"{secret.rsplit('-', 1)[0]}" in reasons[0], reasons
        iam.put_role_policy(RoleName="strict-exec", PolicyName="read", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                                                    "Action": "secretsmanager:GetSecretValue",
                                                    "Resource": secret}]}))
        _wait(lambda: self.steady(self.describe(ecs, "denied")), self.startup * 3,
              "steady once the role may read the secret")

    def test_ecs_failed_update_keeps_old_tasks_and_never_completes(self) -> None:
        ecs, _, group = self.service_with_secret("rolling", None)
        first = _wait(lambda: (lambda s: s if self.steady(s) else None)(
            self.describe(ecs, "rolling")), self.startup * 3, "first steady state")
        container = {"name": "wordpress", "image": "wordpress:7", "secrets": [{
            "name": "P", "valueFrom": "/dev/strict/missing-parameter"}]}
        status, code, message = _error(lambda: ecs.register_task_definition(
            family="strict-rolling", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
            cpu="256", memory="512", containerDefinitions=[container]))
        assert (status, code) == (400, "ClientException") and "executionRoleArn" in message, \
            (status, code, message)
        role = self.execution_role("strict-exec-rolling", [{
            "Effect": "Allow", "Action": "ssm:GetParameters",
            "Resource": f"arn:aws:ssm:{REGION}:{DEV}:parameter/dev/strict/*"}])
        ecs.register_task_definition(
            family="strict-rolling", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
            cpu="256", memory="512", executionRoleArn=role, containerDefinitions=[{
                "name": "wordpress", "image": "wordpress:7", "secrets": [{
                    "name": "P", "valueFrom": "/dev/strict/missing-parameter"}]}])
        ecs.update_service(cluster="strict", service="rolling", taskDefinition="strict-rolling:2")
        time.sleep(self.startup * 2.5)
        service = self.describe(ecs, "rolling")
        primary, active = service["deployments"]
        assert primary["status"] == "PRIMARY" and primary["rolloutState"] == "IN_PROGRESS", primary
        assert primary["failedTasks"] >= 2 and primary["runningCount"] == 0, primary
        assert active["status"] == "ACTIVE" and active["id"] == first["deployments"][0]["id"]
        assert service["runningCount"] == 1, "the old task keeps serving"
        assert any("invalid ssm parameters: /dev/strict/missing-parameter" in r
                   for r in self.stopped_reasons(ecs, "rolling"))
        # Rollback puts the previous task definition back: a new deployment, steady again.
        ecs.update_service(cluster="strict", service="rolling", taskDefinition="strict-rolling:1")
        service = _wait(lambda: (lambda s: s if self.steady(s) else None)(
            self.describe(ecs, "rolling")), self.startup * 3, "steady after the rollback")
        assert service["taskDefinition"].endswith("strict-rolling:1"), service
        running = ecs.list_tasks(cluster="strict", serviceName="rolling",
                                 desiredStatus="RUNNING")["taskArns"]
        assert len(running) == 1, running

    # ---- the AWS CLI the README sends people to ----------------------------------

    def test_aws_cli_after_env_sh_reaches_the_local_stack(self) -> None:
        sqs = self.stack.client("sqs")
        inbox = sqs.create_queue(QueueName="strict-approvals-inbox")["QueueUrl"]
        sqs.send_message(QueueUrl=inbox, MessageBody="approve me")
        sfn = self.stack.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="strict-cli", roleArn=f"arn:aws:iam::{ORCH}:role/strict-sfn",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass",
                                                                   "End": True}}}))
        events = self.stack.client("events")
        try:
            events.create_event_bus(Name="stepdeploy")
        except events.exceptions.ResourceAlreadyExistsException:
            pass
        stepdeploy = ROOT / "target" / "debug" / "stepdeploy"
        raw_event = ("stepdeploy events example deploy --tenant acme | "
                     "aws events put-events --entries file:///dev/stdin"
                     if stepdeploy.exists() else "echo '(no target/debug/stepdeploy)'")
        script = f"""
            set -euo pipefail
            source local/env.sh
            echo "aws is $(command -v aws)"
            aws sqs list-queues
            aws sqs receive-message --queue-url {inbox}
            aws stepfunctions list-state-machines
            aws stepfunctions list-executions --state-machine-arn {machine['stateMachineArn']}
            aws sts get-caller-identity
            aws sts assume-role --role-arn arn:aws:iam::{DEV}:role/stepdeploy-deploy \\
                --role-session-name me --external-id stepdeploy-dev-local
            aws events put-events --entries file://events/bad/tenant-name.json
            {raw_event}
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["STEPDEPLOY_AWS_ENDPOINT"] = self.stack.endpoint
        run = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert run.returncode == 0, (run.returncode, run.stdout[-2000:], run.stderr[-3000:])
        out = run.stdout
        assert f"aws is {HERE / 'bin' / 'aws'}" in out, out[:300]
        assert inbox in out, out  # sqs: the local endpoint (the stock CLI v1 went to AWS)
        assert "approve me" in out, out
        assert machine["stateMachineArn"] in out and '"executions": []' in out, out
        assert f"arn:aws:sts::{DEV}:assumed-role/stepdeploy-deploy/me" in out, out
        assert '"FailedEntryCount": 0' in out, out
