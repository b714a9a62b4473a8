"""ECS tasks start after a delay and only if they can read their secrets
(stack/patches/ecs_startup.py, with local IAM: stack/iam_enforce.py)."""

from __future__ import annotations

import json
import time

from stack import iam_enforce

from .harness import DEV, REGION, refusal, wait
from .strict import Strict


def test_ecs_healthy_service_steady_only_after_the_delay(strict: Strict) -> None:
    created = time.monotonic()
    ecs, elb, group = strict.service_with_secret("healthy", None)
    service = strict.describe(ecs, "healthy")
    [deployment] = service["deployments"]
    assert deployment["status"] == "PRIMARY" and deployment["rolloutState"] == "IN_PROGRESS", \
        deployment
    assert service["runningCount"] == 0 and service["pendingCount"] == 1, service
    assert "has started 1 tasks" in service["events"][0]["message"], service["events"]
    time.sleep(max(strict.startup * 0.5 - (time.monotonic() - created), 0))
    assert not strict.steady(strict.describe(ecs, "healthy")), "steady before the delay"
    assert not elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    service = wait(lambda: (lambda s: s if strict.steady(s) else None)(
        strict.describe(ecs, "healthy")), strict.startup * 3, "steady state")
    assert time.monotonic() - created >= strict.startup * 0.95, "steady before the delay"
    assert service["deployments"][0]["rolloutStateReason"] == \
        f"ECS deployment {deployment['id']} completed.", service["deployments"]
    assert service["events"][0]["message"] == "(service healthy) has reached a steady state."
    targets = elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    assert len(targets) == 1, targets


def test_ecs_missing_secret_no_steady_state_until_it_exists(strict: Strict) -> None:
    secret = f"arn:aws:secretsmanager:{REGION}:{DEV}:secret:dev-strict-db-credentials"
    role = strict.execution_role("strict-exec-nosecret", [{
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
        "Resource": f"{secret}-*"}])
    ecs, elb, group = strict.service_with_secret("nosecret", f"{secret}:password::", role)
    time.sleep(strict.startup * 2.5)
    service = strict.describe(ecs, "nosecret")
    [deployment] = service["deployments"]
    assert service["runningCount"] == 0 and deployment["rolloutState"] == "IN_PROGRESS", service
    assert deployment["failedTasks"] >= 2, deployment
    messages = [e["message"] for e in service["events"]]
    assert not any("steady state" in m for m in messages), messages
    assert sum("(service nosecret) has started 1 tasks" in m for m in messages) >= 2, messages
    reasons = strict.stopped_reasons(ecs, "nosecret")
    assert reasons and all(r.startswith(
        "ResourceInitializationError: unable to pull secrets or registry auth: execution "
        "resource retrieval failed: unable to retrieve secret from asm: service call has been "
        f"retried 1 time(s): failed to fetch secret {secret} from secrets manager: "
        "ResourceNotFoundException: Secrets Manager can't find the specified secret.")
        for r in reasons), reasons
    assert not elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    # The secret without the key the task reads: still failing, with that reason.
    sm = strict.stack.client("secretsmanager", DEV)
    sm.create_secret(Name="dev-strict-db-credentials",
                     SecretString=json.dumps({"username": "strict_user"}))
    wait(lambda: any("did not contain json key password" in r
                      for r in strict.stopped_reasons(ecs, "nosecret")),
          strict.startup * 3, "the json-key stop reason")
    assert not strict.steady(strict.describe(ecs, "nosecret"))
    # Created as the database phase creates it: the next launch starts.
    sm.put_secret_value(SecretId="dev-strict-db-credentials", SecretString=json.dumps(
        {"username": "strict_user", "password": "p" * 24}))
    service = wait(lambda: (lambda s: s if strict.steady(s) else None)(
        strict.describe(ecs, "nosecret")), strict.startup * 3, "steady once the secret exists")
    assert service["deployments"][0]["failedTasks"] >= 3, service["deployments"]
    assert len(elb.describe_target_health(TargetGroupArn=group)[
        "TargetHealthDescriptions"]) == 1


def test_ecs_execution_role_may_not_read_the_secret(strict: Strict) -> None:
    if not all(hasattr(iam_enforce, f) for f in ("evaluate", "role_by_arn", "role_policies")):
        raise AssertionError("local/stack/iam_enforce.py no longer offers evaluate/role_by_arn/"
                             "role_policies: adapt ecs_startup._iam_denial")
    iam = strict.stack.client("iam", DEV)
    role = strict.execution_role("strict-exec", [])
    secret = strict.stack.client("secretsmanager", DEV).create_secret(
        Name="dev-strict-denied", SecretString=json.dumps({"password": "p"}))["ARN"]
    ecs, _, _ = strict.service_with_secret("denied", f"{secret}:password::", role)
    reasons = wait(lambda: strict.stopped_reasons(ecs, "denied"), strict.startup * 3,
                    "a stopped task")
    assert "AccessDeniedException: User: arn:aws:sts::111111111111:assumed-role/strict-exec/" \
           in reasons[0], reasons
    assert f"is not authorized to perform: secretsmanager:GetSecretValue on resource: " \
           f"{secret.rsplit('-', 1)[0]}" in reasons[0], reasons
    iam.put_role_policy(RoleName="strict-exec", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                                                "Action": "secretsmanager:GetSecretValue",
                                                "Resource": secret}]}))
    wait(lambda: strict.steady(strict.describe(ecs, "denied")), strict.startup * 3,
          "steady once the role may read the secret")


def test_ecs_failed_update_keeps_old_tasks_and_never_completes(strict: Strict) -> None:
    ecs, _, group = strict.service_with_secret("rolling", None)
    first = wait(lambda: (lambda s: s if strict.steady(s) else None)(
        strict.describe(ecs, "rolling")), strict.startup * 3, "first steady state")
    container = {"name": "wordpress", "image": "wordpress:7", "secrets": [{
        "name": "P", "valueFrom": "/dev/strict/missing-parameter"}]}
    status, code, message = refusal(lambda: ecs.register_task_definition(
        family="strict-rolling", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", containerDefinitions=[container]))
    assert (status, code) == (400, "ClientException") and "executionRoleArn" in message, \
        (status, code, message)
    role = strict.execution_role("strict-exec-rolling", [{
        "Effect": "Allow", "Action": "ssm:GetParameters",
        "Resource": f"arn:aws:ssm:{REGION}:{DEV}:parameter/dev/strict/*"}])
    ecs.register_task_definition(
        family="strict-rolling", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", executionRoleArn=role, containerDefinitions=[{
            "name": "wordpress", "image": "wordpress:7", "secrets": [{
                "name": "P", "valueFrom": "/dev/strict/missing-parameter"}]}])
    ecs.update_service(cluster="strict", service="rolling", taskDefinition="strict-rolling:2")
    time.sleep(strict.startup * 2.5)
    service = strict.describe(ecs, "rolling")
    primary, active = service["deployments"]
    assert primary["status"] == "PRIMARY" and primary["rolloutState"] == "IN_PROGRESS", primary
    assert primary["failedTasks"] >= 2 and primary["runningCount"] == 0, primary
    assert active["status"] == "ACTIVE" and active["id"] == first["deployments"][0]["id"]
    assert service["runningCount"] == 1, "the old task keeps serving"
    assert any("invalid ssm parameters: /dev/strict/missing-parameter" in r
               for r in strict.stopped_reasons(ecs, "rolling"))
    # Rollback puts the previous task definition back: a new deployment, steady again.
    ecs.update_service(cluster="strict", service="rolling", taskDefinition="strict-rolling:1")
    service = wait(lambda: (lambda s: s if strict.steady(s) else None)(
        strict.describe(ecs, "rolling")), strict.startup * 3, "steady after the rollback")
    assert service["taskDefinition"].endswith("strict-rolling:1"), service
    running = ecs.list_tasks(cluster="strict", serviceName="rolling",
                             desiredStatus="RUNNING")["taskArns"]
    assert len(running) == 1, running
