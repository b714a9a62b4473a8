"""Local IAM (stack/iam_enforce.py) on the test stack.

Seeds, on the test launcher, the orchestrator's roles and functions from
infra/template.yaml and one environment account ("dev", account
444444444444, so nothing collides with the other checks) from
infra/target-account-role.yaml with local/seed.py's own functions (MariaDB
stubbed out), then calls AWS as stepdeploy's code does (User-Agent
aws-sdk-rust, the functions' local-fn-<binary> keys, the deploy role
assumed with the ExternalId) and checks what local IAM allows and refuses.
The deploy-role check is parameterised over every statement of every
policy the template renders: each statement has a probe (a call that needs
it); the call passes, then fails with AccessDenied naming the action once
that statement alone is removed.  A statement without a probe fails the
check (add one to PROBES).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import io
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from stack import iam_enforce

from .harness import LOCAL, ORCH, REGION, ROOT, Stack

ENV_ACCOUNT = "444444444444"
DENIED = ("AccessDenied", "AccessDeniedException", "AuthorizationError")


def error_of(call: Callable[[], Any]) -> tuple[str, str]:
    """("", "") when the call succeeds, else (code, message)."""
    try:
        call()
        return "", ""
    except ClientError as e:
        err = e.response.get("Error", {})
        return err.get("Code", ""), err.get("Message", "")


_endpoint = ""


def last_denial() -> str:
    """The launcher's last refusal (GET /__stepdeploy__/iam): HEAD answers carry no body."""
    with urllib.request.urlopen(f"{_endpoint}/__stepdeploy__/iam", timeout=10) as resp:
        denials = json.loads(resp.read())["denials"]
    return denials[-1]["message"] if denials else ""


def denied(call: Callable[[], Any]) -> str | None:
    """The AccessDenied message, or None when the call was not refused by IAM.
    A HEAD request's 403 has no body (S3 HeadObject/HeadBucket, as in AWS):
    its message is the launcher's last refusal."""
    code, message = error_of(call)
    if code == "403" and message in ("", "Forbidden"):
        return last_denial() or "403"
    return message if code in DENIED else None


class IamChecks:
    """The seeded stack and the clients the checks call it with (the `seeded` fixture)."""

    def __init__(self, stack: Stack) -> None:
        global _endpoint
        self.stack = stack
        self.endpoint = _endpoint = stack.endpoint
        sys.path.insert(0, str(LOCAL))  # local/seed.py
        import seed
        from stack import cfn_render

        self.seed, self.cfn = seed, cfn_render
        self.spec = seed.EnvSpec("dev", ENV_ACCOUNT, REGION, "10.40.0.0/16", 0, None)
        seed.ENVIRONMENTS = [self.spec]
        seed.ensure_mariadb_master = lambda *args, **kwargs: None
        self.state = Path(tempfile.mkdtemp(prefix="stepdeploy-selftest-iam-"))
        atexit.register(shutil.rmtree, self.state, True)
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            orch = seed.orchestrator_aws(self.endpoint)
            template = seed.orchestrator_template(ROOT)
            hmac, _ = seed.ensure_secret(orch, "orchestrator", seed.HMAC_SECRET_NAME,
                                         seed.build_hmac_key, "selftest")
            render = seed.orchestrator_renderer(orch, template, {seed.HMAC_SECRET_NAME: hmac})
            self.orch_iam = cfn_render.iam_resources(render)
            seed.ensure_template_iam(orch, "orchestrator", self.orch_iam)
            self.functions = seed.ensure_functions(orch, ROOT, render)
            seed.seed_environment(orch, self.spec, ROOT, self.state)
        self.seed_log = log.getvalue()
        self.env = json.loads((self.state / "environments" / "dev.json").read_text())
        self.admin = self._admin_session()
        # The rendered template (what the seed put on the deploy role).
        self.target = seed.render_target_account(ROOT, self.spec, {
            "listener_arn": self.env["alb_listener_arn"], "efs_id": self.env["efs_id"],
            "master_secret_arn": self.env["rds"]["master_secret_arn"],
            "task_execution_role_arn": self.env["task_execution_role_arn"],
            "task_role_arn": self.env["task_role_arn"], "hosted_zone_id": self.env["hosted_zone_id"],
            "log_group": self.env["log_group"], "subnets": self.env["private_subnets"],
            "security_group": self.env["ecs_security_group"]})
        self.session = self.deploy_session("ecs")

    def rust(self, service: str, key: str, secret: str = "x", token: str | None = None,
             region: str = REGION) -> Any:
        """A client the launcher takes for stepdeploy's code (User-Agent aws-sdk-rust)."""
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint,
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            aws_session_token=token, config=Config(
                                user_agent_extra="aws-sdk-rust/selftest-iam",
                                retries={"total_max_attempts": 1, "mode": "standard"}))

    def _admin_session(self) -> boto3.Session:
        sts = boto3.client("sts", region_name=REGION, endpoint_url=self.endpoint,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        c = sts.assume_role(RoleArn=f"arn:aws:iam::{ENV_ACCOUNT}:role/stepdeploy-local-admin",
                            RoleSessionName="selftest-admin",
                            ExternalId=self.env["external_id"])["Credentials"]
        return boto3.Session(aws_access_key_id=c["AccessKeyId"],
                             aws_secret_access_key=c["SecretAccessKey"],
                             aws_session_token=c["SessionToken"], region_name=REGION)

    def plain(self, service: str) -> Any:
        """Not stepdeploy's (boto3's own User-Agent): not authorised, like the seed's calls."""
        return self.admin.client(service, endpoint_url=self.endpoint)

    def deploy_session(self, function: str = "ecs", external_id: str | None = None) -> dict[str, str]:
        sts = self.rust("sts", f"local-fn-{function}")
        c = sts.assume_role(RoleArn=self.env["deploy_role_arn"], RoleSessionName=f"stepdeploy-{function}",
                            ExternalId=external_id or self.env["external_id"])["Credentials"]
        return {"key": c["AccessKeyId"], "secret": c["SecretAccessKey"], "token": c["SessionToken"]}

    def as_deploy(self, service: str, session: dict[str, str] | None = None) -> Any:
        return self.rust(service, **(session or self.session))

    @contextlib.contextmanager
    def statement_removed(self, policy_name: str, index: int):
        iam = self.plain("iam")
        original = iam.get_role_policy(RoleName="stepdeploy-deploy", PolicyName=policy_name)["PolicyDocument"]
        original = json.loads(original) if isinstance(original, str) else original
        changed = copy.deepcopy(original)
        del changed["Statement"][index]
        if changed["Statement"]:
            iam.put_role_policy(RoleName="stepdeploy-deploy", PolicyName=policy_name,
                                PolicyDocument=json.dumps(changed))
        else:  # IAM refuses an empty policy: its only statement goes with it
            iam.delete_role_policy(RoleName="stepdeploy-deploy", PolicyName=policy_name)
        try:
            yield
        finally:
            iam.put_role_policy(RoleName="stepdeploy-deploy", PolicyName=policy_name,
                                PolicyDocument=json.dumps(original))

    @contextlib.contextmanager
    def statement_changed(self, action: str):
        """The deploy role without `action` (taken out of every statement naming it)."""
        iam = self.plain("iam")
        saved = {}
        for name in iam.list_role_policies(RoleName="stepdeploy-deploy")["PolicyNames"]:
            doc = iam.get_role_policy(RoleName="stepdeploy-deploy", PolicyName=name)["PolicyDocument"]
            doc = json.loads(doc) if isinstance(doc, str) else doc
            changed = copy.deepcopy(doc)
            for st in changed["Statement"]:
                actions = st.get("Action")
                if isinstance(actions, list) and action in actions:
                    st["Action"] = [a for a in actions if a != action]
                elif actions == action:
                    st["Action"] = "none:None"
            if changed != doc:
                saved[name] = doc
                iam.put_role_policy(RoleName="stepdeploy-deploy", PolicyName=name,
                                    PolicyDocument=json.dumps(changed))
        assert saved, f"no statement of the deploy role grants {action}"
        try:
            yield
        finally:
            for name, doc in saved.items():
                iam.put_role_policy(RoleName="stepdeploy-deploy", PolicyName=name,
                                    PolicyDocument=json.dumps(doc))

    def _fixtures(self) -> None:
        """What the probes act on, made as the operator (not authorised)."""
        if getattr(self, "fx", None):
            return
        elb = self.plain("elbv2")
        listener = self.env["alb_listener_arn"]
        rules = elb.describe_rules(ListenerArn=listener)["Rules"]
        taken = {int(r["Priority"]) for r in rules if r["Priority"] != "default"}
        rule = elb.create_rule(ListenerArn=listener, Priority=max(taken | {0}) + 1, Conditions=[
            {"Field": "host-header", "HostHeaderConfig": {"Values": ["fixture.wpdev.kimmyai.io"]}}],
            Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
        )["Rules"][0]["RuleArn"]
        ap = self.plain("efs").create_access_point(FileSystemId=self.env["efs_id"], Tags=[
            {"Key": "ManagedBy", "Value": "stepdeploy"}, {"Key": "Environment", "Value": "dev"}])
        self.plain("logs").create_log_group(logGroupName=self.env["log_group"]) if not any(
            g["logGroupName"] == self.env["log_group"]
            for g in self.plain("logs").describe_log_groups()["logGroups"]) else None
        bucket = self.env["config_bucket"]
        try:
            self.plain("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={
                "LocationConstraint": REGION})
        except ClientError:
            pass
        self.plain("s3").put_object(Bucket=bucket, Key="probe/doc.json", Body=b"{}")
        vpc = self.env["vpc_id"]
        self.fx = {"rule": rule, "ap": ap["AccessPointId"], "vpc": vpc, "n": 0}

    def unique(self, prefix: str) -> str:
        self.fx["n"] += 1
        return f"{prefix}{self.fx['n']}"


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> IamChecks:
    t0 = time.monotonic()
    checks = IamChecks(stack)
    print(f"iam: seeded from the templates in {time.monotonic() - t0:.1f}s", flush=True)
    return checks


def test_iam_seed_renders_the_templates(seeded: IamChecks) -> None:
    iam = seeded.plain("iam")
    role = iam.get_role(RoleName="stepdeploy-deploy")["Role"]
    deploy = next(r for r in seeded.target["roles"].values() if r["name"] == "stepdeploy-deploy")
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust == deploy["trust"], trust
    names = set(iam.list_role_policies(RoleName="stepdeploy-deploy")["PolicyNames"])
    assert names == set(deploy["policies"]), names
    for name, document in deploy["policies"].items():
        got = iam.get_role_policy(RoleName="stepdeploy-deploy", PolicyName=name)["PolicyDocument"]
        assert (json.loads(got) if isinstance(got, str) else got) == document, name
    for spec in seeded.target["policies"].values():
        for role_name in spec["roles"]:
            got = iam.get_role_policy(RoleName=role_name, PolicyName=spec["name"])["PolicyDocument"]
            assert (json.loads(got) if isinstance(got, str) else got) == spec["document"]
    orch_iam = boto3.client("iam", region_name=REGION, endpoint_url=seeded.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    ecs_role = orch_iam.get_role(RoleName="stepdeploy-ecs")["Role"]
    assert ecs_role["Path"] == "/stepdeploy/", ecs_role
    lam = boto3.client("lambda", region_name=REGION, endpoint_url=seeded.endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    fn = lam.get_function_configuration(FunctionName="stepdeploy-approval-links")
    assert fn["Handler"] == "approval" and fn["Role"].endswith("/stepdeploy-ApprovalLinksRole"), fn


def test_iam_allowed_call_passes_and_other_principals_are_refused(seeded: IamChecks) -> None:
    seeded.session = seeded.deploy_session("ecs")
    ecs = seeded.as_deploy("ecs")
    assert error_of(lambda: ecs.describe_services(
        cluster=seeded.env["cluster"], services=["dev-acme-service"])) == ("", "")
    message = denied(lambda: ecs.describe_services(cluster=seeded.env["cluster"],
                                                   services=["prod-acme-service"]))
    assert message and "ecs:DescribeServices" in message and "prod-acme-service" in message, message
    assert "assumed-role/stepdeploy-deploy/stepdeploy-ecs" in message, message
    # A function's own role: notify may publish outcomes, ecs may not.
    topic = f"arn:aws:sns:{REGION}:{ORCH}:stepdeploy-notifications"
    boto3.client("sns", region_name=REGION, endpoint_url=seeded.endpoint,
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_topic(
        Name="stepdeploy-notifications")
    assert error_of(lambda: seeded.rust("sns", "local-fn-notify").publish(
        TopicArn=topic, Message="m")) == ("", "")
    code, message = error_of(lambda: seeded.rust("sns", "local-fn-ecs").publish(TopicArn=topic, Message="m"))
    assert code == "AuthorizationError" and "sns:Publish" in message, (code, message)
    assert "assumed-role/stepdeploy-ecs/stepdeploy-ecs" in message, message
    # Unknown keys and unmapped calls are refused, not passed.
    assert "belongs to no principal" in (denied(lambda: seeded.rust("sns", "AKIANOBODY").list_topics()) or "")
    message = denied(lambda: ecs.list_container_instances(cluster=seeded.env["cluster"]))
    assert message and "no mapping" in message and "local/stack/iam_enforce.py" in message, message


def test_iam_assume_role_trust_policy(seeded: IamChecks) -> None:
    role = seeded.env["deploy_role_arn"]
    sts = seeded.rust("sts", "local-fn-ecs")
    code, message = error_of(lambda: sts.assume_role(
        RoleArn=role, RoleSessionName="stepdeploy-ecs", ExternalId="wrong"))
    assert code == "AccessDenied", (code, message)
    assert message == (f"User: arn:aws:sts::{ORCH}:assumed-role/stepdeploy-ecs/stepdeploy-ecs "
                       f"is not authorized to perform: sts:AssumeRole on resource: {role}"), message
    assert denied(lambda: sts.assume_role(RoleArn=role, RoleSessionName="stepdeploy-ecs"))
    # The operator (the CLI's and tests' key) is not under /stepdeploy/: refused,
    # as `stepdeploy status` is by the real trust policy.
    assert denied(lambda: seeded.rust("sts", "testing").assume_role(
        RoleArn=role, RoleSessionName="stepdeploy-cli", ExternalId=seeded.env["external_id"]))
    # A role outside /stepdeploy/ whose own policy allows the AssumeRole: refused by the trust policy.
    iam = boto3.client("iam", region_name=REGION, endpoint_url=seeded.endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]})
    outsider = iam.create_role(RoleName="outsider", Path="/other/",
                               AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.put_role_policy(RoleName="outsider", PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Resource": role}]}))
    boto3.client("lambda", region_name=REGION, endpoint_url=seeded.endpoint,
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_function(
        FunctionName="outsider", Runtime="provided.al2023", Role=outsider, Handler="outsider",
        Code={"ZipFile": seeded.seed.dummy_lambda_zip()})
    message = denied(lambda: seeded.rust("sts", "local-fn-outsider").assume_role(
        RoleArn=role, RoleSessionName="outsider", ExternalId=seeded.env["external_id"]))
    assert message and "assumed-role/outsider/outsider" in message, message
    # The trigger's role may not assume deploy roles (identity policy): refused too.
    assert denied(lambda: seeded.rust("sts", "local-fn-trigger").assume_role(
        RoleArn=role, RoleSessionName="stepdeploy-trigger", ExternalId=seeded.env["external_id"]))


def test_iam_head_object_needs_s3_get_object(seeded: IamChecks) -> None:
    s3 = seeded.as_deploy("s3")
    bucket = seeded.env["config_bucket"]
    seeded.plain("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={
        "LocationConstraint": REGION})
    seeded.plain("s3").put_object(Bucket=bucket, Key="tenants/acme.json", Body=b"{}")
    with seeded.statement_changed("s3:GetObject"):
        message = denied(lambda: s3.head_object(Bucket=bucket, Key="tenants/acme.json"))
        assert message and "s3:GetObject on resource: arn:aws:s3:::" in message, message
    assert denied(lambda: s3.head_object(Bucket=bucket, Key="tenants/acme.json")) is None
    # CopyObject from a version needs s3:GetObjectVersion on the source.
    with seeded.statement_changed("s3:GetObjectVersion"):
        message = denied(lambda: s3.copy_object(
            Bucket=bucket, Key="tenants/acme.json",
            CopySource={"Bucket": bucket, "Key": "tenants/acme.json", "VersionId": "v1"}))
        assert message and "s3:GetObjectVersion" in message, message


def test_iam_conditions(seeded: IamChecks) -> None:
    efs = seeded.as_deploy("efs")
    admin_efs = seeded.plain("efs")
    fs = seeded.env["efs_id"]
    ours = admin_efs.create_access_point(FileSystemId=fs, Tags=[
        {"Key": "ManagedBy", "Value": "stepdeploy"}, {"Key": "Environment", "Value": "dev"}])
    theirs = admin_efs.create_access_point(FileSystemId=fs, Tags=[
        {"Key": "ManagedBy", "Value": "stepdeploy"}, {"Key": "Environment", "Value": "sit"}])
    message = denied(lambda: efs.delete_access_point(AccessPointId=theirs["AccessPointId"]))
    assert message and "elasticfilesystem:DeleteAccessPoint" in message, message
    assert denied(lambda: efs.delete_access_point(AccessPointId=ours["AccessPointId"])) is None
    # Route53: only A records under *.wpdev.<domain>.
    r53 = seeded.as_deploy("route53")
    change = lambda name, kind="A": lambda: r53.change_resource_record_sets(  # noqa: E731
        HostedZoneId=seeded.env["hosted_zone_id"], ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {
                "Name": name, "Type": kind, "TTL": 60,
                "ResourceRecords": [{"Value": "10.0.0.1" if kind == "A" else "x.example.com"}]}}]})
    assert denied(change(f"acme.wpdev.{seeded.env['domain']}.")) is None
    message = denied(change(f"evil.wpsit.{seeded.env['domain']}."))
    assert message and "route53:ChangeResourceRecordSets" in message, message
    assert denied(change(f"acme2.wpdev.{seeded.env['domain']}.", "CNAME"))
    # iam:PassedToService and tag-on-create, straight through the evaluator.
    deploy = next(r for r in seeded.target["roles"].values() if r["name"] == "stepdeploy-deploy")
    policies = list(deploy["policies"].items())
    ctx = {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    exec_role = seeded.env["task_execution_role_arn"]
    assert iam_enforce.evaluate(policies, "iam:PassRole", exec_role, ctx).allowed
    assert not iam_enforce.evaluate(policies, "iam:PassRole", exec_role,
                          {"iam:PassedToService": "lambda.amazonaws.com"}).allowed
    assert not iam_enforce.evaluate(policies, "iam:PassRole", exec_role, {}).allowed
    td = f"arn:aws:ecs:{REGION}:{ENV_ACCOUNT}:task-definition/dev-acme:1"
    assert iam_enforce.evaluate(policies, "ecs:TagResource", td, {"ecs:CreateAction": "RegisterTaskDefinition"}).allowed
    assert not iam_enforce.evaluate(policies, "ecs:TagResource", td, {}).allowed, "tagging after create"
    # Operators beyond those the templates use.
    assert iam_enforce.condition_holds("StringNotEquals", "k", "a", {}) is True
    assert iam_enforce.condition_holds("StringEqualsIfExists", "k", "a", {}) is True
    assert iam_enforce.condition_holds("ForAnyValue:StringLike", "k", "a*", {"k": ["b", "c"]}) is False
    assert iam_enforce.condition_holds("ForAnyValue:StringLike", "k", "a*", {"k": ["b", "ab"]}) is True
    assert iam_enforce.condition_holds("ForAllValues:StringLike", "k", "a*", {"k": ["ab", "c"]}) is False
    assert iam_enforce.condition_holds("ForAllValues:StringLike", "k", "a*", {}) is True
    assert iam_enforce.condition_holds("Null", "k", "true", {}) and not iam_enforce.condition_holds("Null", "k", "true", {"k": "v"})
    assert iam_enforce.condition_holds("Bool", "aws:SecureTransport", "true", {"aws:SecureTransport": True})
    deny_all = [("p", {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                                     {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"}]})]
    assert iam_enforce.evaluate(deny_all, "s3:GetObject", "arn:aws:s3:::b/k", {}).allowed
    d = iam_enforce.evaluate(deny_all, "ecs:ListClusters", "*", {})
    assert not d.allowed and d.explicit_deny


def test_iam_every_deploy_role_statement(seeded: IamChecks) -> None:
    """For every statement of every deploy-role policy: a call that needs it passes,
    and is refused naming the action once that statement is removed."""
    seeded.session = getattr(seeded, "session", None) or seeded.deploy_session("ecs")
    seeded._fixtures()
    deploy = next(r for r in seeded.target["roles"].values() if r["name"] == "stepdeploy-deploy")
    problems, checked = [], 0
    for policy_name, document in deploy["policies"].items():
        for index, statement in enumerate(document["Statement"]):
            sid = f"{policy_name}/{statement.get('Sid', index)}"
            probe = PROBES.get(sid)
            if probe is None:
                problems.append(f"{sid}: no probe in local/stack/tests/test_iam.py PROBES")
                continue
            action, call = probe
            allowed = denied(lambda: call(seeded))
            if allowed is not None:
                problems.append(f"{sid}: refused with the full policy: {allowed}")
                continue
            with seeded.statement_removed(policy_name, index):
                message = denied(lambda: call(seeded))
            if not message or f"perform: {action} on resource" not in message:
                problems.append(f"{sid}: without it, {action} was not refused ({message!r})")
            checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 15, checked


def _td(c: "IamChecks", **extra: Any) -> Any:
    return c.as_deploy("ecs").register_task_definition(
        family=f"dev-{c.unique('probe')}", containerDefinitions=[{"name": "wp", "image": "wordpress"}],
        **extra)


def _tg(c: "IamChecks", **extra: Any) -> Any:
    return c.as_deploy("elbv2").create_target_group(
        Name=f"dev-{c.unique('p')}-tg", Protocol="HTTP", Port=80, VpcId=c.fx["vpc"], TargetType="ip",
        **extra)


def _ap(c: "IamChecks", **extra: Any) -> Any:
    return c.as_deploy("efs").create_access_point(FileSystemId=c.env["efs_id"], **extra)


def _rule(c: "IamChecks") -> Any:
    c.fx["n"] += 1
    return c.as_deploy("elbv2").create_rule(
        ListenerArn=c.env["alb_listener_arn"], Priority=30000 + c.fx["n"],
        Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [f"r{c.fx['n']}.wpdev.kimmyai.io"]}}],
        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])


TAGS_ECS = [{"key": "ManagedBy", "value": "stepdeploy"}]
TAGS = [{"Key": "ManagedBy", "Value": "stepdeploy"}]

# "<policy name>/<Sid>" of infra/target-account-role.yaml's deploy role ->
# (the action the probe needs from that statement, the probe).  A probe may
# answer any error but AccessDenied while the statement is there.
PROBES: dict[str, tuple[str, Callable[[IamChecks], Any]]] = {
    "ecs/TaskDefinitions": ("ecs:RegisterTaskDefinition", lambda c: _td(c)),
    "ecs/TaskDefinitionTags": ("ecs:ListTagsForResource", lambda c: c.as_deploy("ecs").list_tags_for_resource(
        resourceArn=f"arn:aws:ecs:{REGION}:{ENV_ACCOUNT}:task-definition/dev-acme:1")),
    "ecs/TaskDefinitionsUnscoped": ("ecs:ListTaskDefinitions",
                                    lambda c: c.as_deploy("ecs").list_task_definitions()),
    "ecs/Services": ("ecs:DescribeServices", lambda c: c.as_deploy("ecs").describe_services(
        cluster=c.env["cluster"], services=["dev-acme-service"])),
    "ecs/TagOnCreate": ("ecs:TagResource", lambda c: _td(c, tags=TAGS_ECS)),
    "ecs/PassTaskRoles": ("iam:PassRole", lambda c: _td(
        c, executionRoleArn=c.env["task_execution_role_arn"], taskRoleArn=c.env["task_role_arn"])),
    "elbv2/Describe": ("elasticloadbalancing:DescribeTargetGroups",
                       lambda c: c.as_deploy("elbv2").describe_target_groups()),
    "elbv2/TargetGroups": ("elasticloadbalancing:CreateTargetGroup", lambda c: _tg(c)),
    "elbv2/RulesOnTheListener": ("elasticloadbalancing:CreateRule", lambda c: _rule(c)),
    "elbv2/TheListenersRules": ("elasticloadbalancing:ModifyRule", lambda c: c.as_deploy("elbv2").modify_rule(
        RuleArn=c.fx["rule"], Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])),
    "elbv2/TagOnCreate": ("elasticloadbalancing:AddTags", lambda c: _tg(c, Tags=TAGS)),
    "efs/AccessPoints": ("elasticfilesystem:CreateAccessPoint", lambda c: _ap(c)),
    "efs/DescribeAccessPointsById": ("elasticfilesystem:DescribeAccessPoints",
                                     lambda c: c.as_deploy("efs").describe_access_points(AccessPointId=c.fx["ap"])),
    "efs/TagOnCreate": ("elasticfilesystem:TagResource", lambda c: _ap(c, Tags=TAGS)),
    "efs/DeleteOwnAccessPoints": ("elasticfilesystem:DeleteAccessPoint", lambda c: c.as_deploy("efs").delete_access_point(
        AccessPointId=c.plain("efs").create_access_point(FileSystemId=c.env["efs_id"], Tags=[
            {"Key": "ManagedBy", "Value": "stepdeploy"}, {"Key": "Environment", "Value": "dev"}])["AccessPointId"])),
    "secrets-and-iam/TenantSecrets": ("secretsmanager:DescribeSecret", lambda c: c.as_deploy(
        "secretsmanager").describe_secret(SecretId="dev-acme-db-credentials")),
    "secrets-and-iam/MasterSecret": ("secretsmanager:GetSecretValue", lambda c: c.as_deploy(
        "secretsmanager").get_secret_value(SecretId=c.env["rds"]["master_secret_arn"])),
    "mysql-agent/InvokeTheMySqlAgent": ("lambda:InvokeFunction", lambda c: c.as_deploy("lambda").invoke(
        FunctionName=f"arn:aws:lambda:{REGION}:{ENV_ACCOUNT}:function:stepdeploy-deploy-mysql",
        Payload=b"{}")),
    "dns-and-logs/ReadZone": ("route53:ListResourceRecordSets", lambda c: c.as_deploy(
        "route53").list_resource_record_sets(HostedZoneId=c.env["hosted_zone_id"])),
    "dns-and-logs/TenantAliasRecords": ("route53:ChangeResourceRecordSets", lambda c: c.as_deploy(
        "route53").change_resource_record_sets(HostedZoneId=c.env["hosted_zone_id"], ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {"Name": f"{c.unique('t')}.wpdev.{c.env['domain']}",
                                                      "Type": "A", "TTL": 60,
                                                      "ResourceRecords": [{"Value": "10.0.0.2"}]}}]})),
    "dns-and-logs/ReadTaskLogs": ("logs:FilterLogEvents", lambda c: c.as_deploy("logs").filter_log_events(
        logGroupName=c.env["log_group"])),
    "state-and-config/StateTable": ("dynamodb:DescribeTable", lambda c: c.as_deploy("dynamodb").describe_table(
        TableName=c.env["state_table"])),
    "state-and-config/ConfigBucket": ("s3:ListBucket", lambda c: c.as_deploy("s3").head_bucket(
        Bucket=c.env["config_bucket"])),
    "state-and-config/ConfigDocumentsAndReports": ("s3:PutObject", lambda c: c.as_deploy("s3").put_object(
        Bucket=c.env["config_bucket"], Key="probe/doc.json", Body=b"{}")),
}
