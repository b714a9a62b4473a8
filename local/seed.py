"""Seed the local stack (moto server + one MariaDB per environment) with what the
real AWS accounts contain, and write the local environment configs.

    python local/seed.py [--endpoint URL] [--repo DIR] [--state-dir DIR]

Orchestrator account (123456789012, eu-west-1, the default moto credentials):
the IAM roles and managed policies of infra/template.yaml, every function of
that template (its FunctionName, its own role; Handler = the binary the
emulator runs), SNS topics with SQS "inbox" queues subscribed to them, the
EventBridge bus and rules, the approvals DynamoDB table, the approval HMAC
secret and the template's state machines (DefinitionUri with its
DefinitionSubstitutions, the template's role).

Environment accounts (dev 111111111111, sit 222222222222, prod 333333333333):
every AWS::IAM::Role / AWS::IAM::Policy of infra/target-account-role.yaml
(the deploy role's trust policy and permissions, the task execution role's
tenant-secrets policy) rendered with that environment's parameter values,
plus what the local stack adds by hand (below); the RDS master secret's user
is created in that environment's MariaDB (start them first with
`local/mariadb.sh start`).

Taken from the templates (local/stack/cfn_render.py resolves their
intrinsics; the stack name is "stepdeploy", a role without RoleName is named
<stack>-<logical id>, without CloudFormation's random suffix):
  * infra/template.yaml: every AWS::IAM::Role (Path /stepdeploy/) and
    AWS::IAM::ManagedPolicy; every AWS::Serverless::Function's name and Role;
    every AWS::Serverless::StateMachine's Name, definition substitutions and Role;
    every AWS::Events::Rule (name, bus, pattern, targets; invoke permissions
    for Lambda targets); the approvals table's keys and time to live; the
    topics' names.
  * infra/target-account-role.yaml: every AWS::IAM::Role and AWS::IAM::Policy.

Added by hand (the one list of what the local stack declares itself):
  * orchestrator: the bus "stepdeploy" (named after the stack, as the
    template's EventBus), a rule copying every event to the
    SQS "events inbox"; the SNS topics and their SQS inboxes (stand-ins for
    e-mail subscriptions); the approvals table (with TTL); the HMAC secret
    (a random key); the functions' configuration (runtime, memory, timeout,
    placeholder code: `cargo lambda watch` runs the real binaries).
  * environment accounts: VPC, two private subnets, the tasks' security
    group, ECS cluster, ALB + ACM certificate + HTTPS listener (404 default),
    EFS file system, the tasks' log group, the ECS task execution role (an
    inline copy of AmazonECSTaskExecutionRolePolicy: moto does not load AWS
    managed policies) and task role, hosted zone, CloudFront distribution,
    the RDS master secret (+ the MariaDB user), and the local-only role
    stepdeploy-local-admin (trusts the orchestrator account with the
    environment's ExternalId, may do everything): how the seed, the tests
    and scripts reach an environment account as the operator, since the
    deploy role admits only the orchestrator's function roles; the MySQL
    agent function (MySqlAgentFunction of infra/target-account-role.yaml,
    whose code comes from S3 in AWS: here Handler = its binary, run by the
    emulator; its role is rendered from the template).

Outputs: <state-dir>/environments/<env>.json (the schema of
infra/environments/<env>.json, with local values) and <state-dir>/stack.json
(orchestrator ARNs and queue URLs for tests and scripts).

Idempotent: everything is looked up by name first, so a second run creates
nothing and writes the same files. Only the specific "not found" error codes of
each lookup are caught; any other error aborts the run.
"""

from __future__ import annotations

import argparse
import io
import ipaddress
import json
import os
import re
import secrets
import string
import sys
import time
import urllib.parse
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import boto3
import pymysql
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import cfn_render  # noqa: E402  (local/stack/cfn_render.py)

PREFIX = "stepdeploy"
ORCH_ACCOUNT = "123456789012"
ORCH_REGION = "eu-west-1"
BUS_NAME = PREFIX
APPROVAL_TABLE = f"{PREFIX}-approvals"
HMAC_SECRET_NAME = f"{PREFIX}/approval-hmac-key"
DEPLOY_ROLE_NAME = f"{PREFIX}-deploy"
LOCAL_ADMIN_ROLE_NAME = f"{PREFIX}-local-admin"  # local only, see ensure_local_admin_role
DOMAIN = "kimmyai.io"
CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"  # fixed alias zone of every CloudFront distribution
RDS_MASTER_USER = "stepdeploy_master"
LOCAL_SITE_URL = "http://127.0.0.1:8088"
LOCAL_LAMBDA_URL = "http://127.0.0.1:9000"  # cargo lambda watch; Function URLs at /lambda-url/<binary>/
# What the Lambdas see through the emulator; the binary comes from Handler.
FUNCTION_CONFIG = {
    "Runtime": "provided.al2023",
    "Timeout": 300,
    "MemorySize": 128,
    "Architectures": ["arm64"],
}
# Managed policy ids (CachingDisabled, AllViewer): the distribution only fronts the ALB.
CACHE_POLICY_CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ORIGIN_REQUEST_POLICY_ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"


class SeedError(Exception):
    """A problem the user has to fix; printed without a traceback."""


@dataclass(frozen=True)
class EnvSpec:
    name: str
    account_id: str
    region: str
    cidr: str
    db_port: int
    promote_to: str | None
    # Load balancers (each with its listener and CloudFront distribution):
    # dev has three, so an environment past one ALB's 100 tenants is
    # exercised locally (tests/tests/capacity.rs).
    load_balancers: int = 1

    @property
    def external_id(self) -> str:
        return f"{PREFIX}-{self.name}-local"

    @property
    def deploy_role_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role/{DEPLOY_ROLE_NAME}"

    @property
    def zone_name(self) -> str:
        return f"wp{self.name}.{DOMAIN}"


ENVIRONMENTS = [
    EnvSpec("dev", "111111111111", "eu-west-1", "10.10.0.0/16", 3307, "sit", load_balancers=3),
    EnvSpec("sit", "222222222222", "eu-west-1", "10.20.0.0/16", 3308, "prod"),
    EnvSpec("prod", "333333333333", "af-south-1", "10.30.0.0/16", 3309, None),
]
# Short locally, so the approval-timeout scenario runs in a test (real prod: 24 h).
PROD_APPROVAL = {
    "approvers": ["lead@example.com", "ops@example.com", "cto@example.com"],
    "approvals_required": 2,
    "timeout_seconds": 90,
}


# --------------------------------------------------------------------------- helpers


def report(scope: str, kind: str, name: str, status: str) -> None:
    print(f"{scope:<12} {kind:<18} {name}: {status}", flush=True)


def warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr, flush=True)


def error_code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


def is_missing(err: ClientError, *codes: str) -> bool:
    """True when err is one of the given "does not exist" codes."""
    return error_code(err) in codes


def as_json(doc: Any) -> Any:
    """Policy documents come back as dicts from IAM and as strings elsewhere."""
    return json.loads(doc) if isinstance(doc, str) else doc


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: list[str] | str, resources: list[str] | str, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def service_trust(service: str) -> dict[str, Any]:
    return policy(
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    )


def random_password(length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def dummy_lambda_zip() -> bytes:
    """A valid, byte-for-byte stable zip holding an executable `bootstrap`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("bootstrap", date_time=(2024, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16
        zf.writestr(
            info, "#!/bin/sh\necho 'stepdeploy placeholder: the emulator runs the real binary' >&2\nexit 1\n"
        )
    return buf.getvalue()


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


class Aws:
    """boto3 clients for one account/region, all pointed at the moto endpoint."""

    def __init__(self, session: boto3.Session, endpoint: str, account_id: str, region: str):
        self.session = session
        self.endpoint = endpoint
        self.account_id = account_id
        self.region = region
        self._clients: dict[str, Any] = {}
        self._config = Config(
            connect_timeout=3, read_timeout=60, retries={"max_attempts": 2, "mode": "standard"}
        )

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, endpoint_url=self.endpoint, config=self._config
            )
        return self._clients[service]

    def assume(self, role_arn: str, external_id: str, account_id: str, region: str) -> "Aws":
        creds = self.client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName=f"{PREFIX}-seed", ExternalId=external_id
        )["Credentials"]
        session = boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=region,
        )
        aws = Aws(session, self.endpoint, account_id, region)
        actual = aws.client("sts").get_caller_identity()["Account"]
        if actual != account_id:
            raise SeedError(f"assumed {role_arn} but landed in account {actual}")
        return aws


def orchestrator_aws(endpoint: str) -> Aws:
    session = boto3.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        region_name=ORCH_REGION,
    )
    aws = Aws(session, endpoint, ORCH_ACCOUNT, ORCH_REGION)
    try:
        account = aws.client("sts").get_caller_identity()["Account"]
    except EndpointConnectionError as err:
        raise SeedError(
            f"cannot reach moto at {endpoint} ({err}); start it with local/up"
        ) from err
    if account != ORCH_ACCOUNT:
        raise SeedError(
            f"{endpoint} says the credentials belong to account {account}, expected the "
            f"moto default {ORCH_ACCOUNT}; is this really the local moto server?"
        )
    return aws


# --------------------------------------------------------------------------- IAM


def ensure_role(
    aws: Aws,
    scope: str,
    name: str,
    trust: dict[str, Any],
    inline: dict[str, dict[str, Any]] | None = None,
    path: str = "/",
    managed: list[str] | None = None,
    description: str = "",
) -> str:
    """Role with exactly this trust policy, path, inline policies (others removed)
    and attached managed policies (when `managed` is given)."""
    iam = aws.client("iam")
    try:
        role = iam.get_role(RoleName=name)["Role"]
        status = "exists"
        if role.get("Path", "/") != path:
            raise SeedError(f"{scope}: role {name} has path {role.get('Path')}, expected {path}; "
                            "start the local stack clean (local/down && local/up)")
        if as_json(role["AssumeRolePolicyDocument"]) != trust:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
            status = "updated trust policy"
    except ClientError as err:
        if not is_missing(err, "NoSuchEntity"):
            raise
        role = iam.create_role(
            RoleName=name,
            Path=path,
            Description=description[:1000],
            AssumeRolePolicyDocument=json.dumps(trust),
            Tags=[{"Key": "ManagedBy", "Value": f"{PREFIX}-seed"}],
        )["Role"]
        status = "created"
    for policy_name, document in (inline or {}).items():
        try:
            current = as_json(
                iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
            )
        except ClientError as err:
            if not is_missing(err, "NoSuchEntity"):
                raise
            current = None
        if current != document:
            iam.put_role_policy(
                RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document)
            )
            if status == "exists":
                status = "updated inline policy"
    if managed is not None:
        attached = {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]}
        for arn in managed:
            if arn not in attached:
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
                status = "attached managed policy" if status == "exists" else status
    report(scope, "iam-role", name, status)
    return role["Arn"]


def ensure_managed_policy(aws: Aws, scope: str, spec: dict[str, Any]) -> str:
    """A customer managed policy whose default version is exactly spec["document"]."""
    iam = aws.client("iam")
    arn = spec["arn"]
    try:
        current = iam.get_policy(PolicyArn=arn)["Policy"]
        version = iam.get_policy_version(PolicyArn=arn, VersionId=current["DefaultVersionId"])
        document = version["PolicyVersion"]["Document"]
        document = json.loads(urllib.parse.unquote(document)) if isinstance(document, str) else document
        if document == spec["document"]:
            report(scope, "iam-policy", spec["name"], "exists")
            return arn
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(spec["document"]),
                                  SetAsDefault=True)
        report(scope, "iam-policy", spec["name"], "updated")
        return arn
    except ClientError as err:
        if not is_missing(err, "NoSuchEntity"):
            raise
    created = iam.create_policy(PolicyName=spec["name"], Path=spec["path"],
                                PolicyDocument=json.dumps(spec["document"]),
                                Description=spec.get("description", "")[:1000])["Policy"]["Arn"]
    report(scope, "iam-policy", spec["name"], "created")
    return created


def ensure_template_iam(aws: Aws, scope: str, resources: dict[str, Any],
                        skip_roles: set[str] = frozenset()) -> dict[str, str]:
    """Every role, managed policy and AWS::IAM::Policy that cfn_render.iam_resources
    found in a template; returns role logical id -> role ARN.  AWS managed
    policies (arn:aws:iam::aws:policy/...) are not loaded in moto: a role that
    attaches one is an error (none does locally: they are behind HasVpc)."""
    for spec in resources["managed_policies"].values():
        ensure_managed_policy(aws, scope, spec)
    arns: dict[str, str] = {}
    for logical, spec in resources["roles"].items():
        if logical in skip_roles:
            continue
        aws_managed = [a for a in spec["managed"] if ":iam::aws:policy/" in a]
        if aws_managed:
            raise SeedError(f"{scope}: {logical} attaches AWS managed {aws_managed}; moto does not "
                            "load AWS managed policies (local/seed.py)")
        arns[logical] = ensure_role(aws, scope, spec["name"], spec["trust"], spec["policies"],
                                    path=spec["path"], managed=spec["managed"],
                                    description=spec.get("description", ""))
    iam = aws.client("iam")
    for logical, spec in resources["policies"].items():
        for role in spec["roles"]:
            try:
                current = as_json(iam.get_role_policy(RoleName=role, PolicyName=spec["name"])["PolicyDocument"])
            except ClientError as err:
                if not is_missing(err, "NoSuchEntity"):
                    raise
                current = None
            if current != spec["document"]:
                iam.put_role_policy(RoleName=role, PolicyName=spec["name"],
                                    PolicyDocument=json.dumps(spec["document"]))
            report(scope, "iam-policy", f"{spec['name']} ({logical}) on {role}",
                   "exists" if current == spec["document"] else "put")
    return arns


# --------------------------------------------------------------------------- orchestrator


@dataclass(frozen=True)
class OrchestratorArns:
    region: str
    account: str

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def function(self, name: str) -> str:
        return self.arn("lambda", f"function:{PREFIX}-{name}")

    def state_machine(self, name: str) -> str:
        return self.arn("states", f"stateMachine:{PREFIX}-{name}")

    def topic(self, name: str) -> str:
        return self.arn("sns", name)

    @property
    def bus(self) -> str:
        return self.arn("events", f"event-bus/{BUS_NAME}")

    @property
    def approval_table(self) -> str:
        return self.arn("dynamodb", f"table/{APPROVAL_TABLE}")

    @property
    def hmac_secret_pattern(self) -> str:
        return self.arn("secretsmanager", f"secret:{HMAC_SECRET_NAME}-*")


def orchestrator_template(repo: Path) -> dict[str, Any]:
    path = repo / "infra" / "template.yaml"
    try:
        return cfn_render.load_template(path)
    except cfn_render.RenderError as err:
        raise SeedError(str(err)) from err


def orchestrator_renderer(aws: Aws, template: dict[str, Any], secret_arns: dict[str, str]) -> Any:
    """infra/template.yaml with the local parameter values (stack `stepdeploy`)."""
    try:
        return cfn_render.orchestrator_renderer(
            template, aws.account_id, aws.region, PREFIX,
            {"DeployRoleArns": ",".join(env.deploy_role_arn for env in ENVIRONMENTS)},
            secret_arns, {"ApprovalLinksFunction": f"{LOCAL_LAMBDA_URL}/lambda-url/approval/"})
    except cfn_render.RenderError as err:
        raise SeedError(f"infra/template.yaml: {err}") from err


def template_functions(render: Any) -> dict[str, dict[str, str]]:
    """AWS::Serverless::Function logical id -> {name, binary, role} (Role resolved)."""
    found = {}
    for logical, res in render.resources.items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        binary = res.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        props = res.get("Properties", {})
        found[logical] = {"name": render.resolve(props["FunctionName"]), "binary": binary,
                          "role": render.resolve(props["Role"])}
    return found


def discover_functions(repo: Path) -> list[str]:
    root = repo / "functions"
    if not root.is_dir():
        return []
    return sorted(
        d.name
        for d in root.iterdir()
        if d.is_dir() and d.name != "shared" and (d / "src" / "main.rs").is_file()
    )


def ensure_function(aws: Aws, function_name: str, binary: str, role_arn: str, code: bytes) -> str:
    """The function as the emulator runs it: Handler is the binary's name."""
    lam = aws.client("lambda")
    desired = {**FUNCTION_CONFIG, "Handler": binary, "Role": role_arn}
    try:
        current = lam.get_function_configuration(FunctionName=function_name)
    except ClientError as err:
        if not is_missing(err, "ResourceNotFoundException"):
            raise
        created = lam.create_function(
            FunctionName=function_name,
            Code={"ZipFile": code},
            Description=f"stepdeploy {binary} (local placeholder code; the emulator runs the binary)",
            Tags={"ManagedBy": f"{PREFIX}-seed"},
            **desired,
        )
        report("orchestrator", "lambda", function_name, "created")
        return created["FunctionArn"]
    status = "exists"
    if current.get("Architectures", ["x86_64"]) != desired["Architectures"]:
        # Architectures can only change together with the code.
        lam.update_function_code(
            FunctionName=function_name, ZipFile=code, Architectures=desired["Architectures"]
        )
        status = "updated architecture"
    changed = {
        key: value
        for key, value in desired.items()
        if key != "Architectures" and current.get(key) != value
    }
    if changed:
        lam.update_function_configuration(FunctionName=function_name, **changed)
        status = "updated " + ", ".join(sorted(changed))
    report("orchestrator", "lambda", function_name, status)
    return current["FunctionArn"]


def ensure_functions(aws: Aws, repo: Path, render: Any) -> dict[str, str]:
    """Every AWS::Serverless::Function of infra/template.yaml, with its own role.
    Returns binary-style short name (function name without the stack prefix) -> ARN."""
    crates = set(discover_functions(repo))
    code = dummy_lambda_zip()
    found = {}
    for logical, fn in template_functions(render).items():
        if fn["binary"] not in crates:
            warn(f"{logical}: binary {fn['binary']!r} has no functions/<name>/src/main.rs")
        short = fn["name"][len(PREFIX) + 1:] if fn["name"].startswith(f"{PREFIX}-") else fn["name"]
        found[short] = ensure_function(aws, fn["name"], fn["binary"], fn["role"], code)
    return found


def ensure_topic(aws: Aws, name: str) -> str:
    sns = aws.client("sns")
    for page in sns.get_paginator("list_topics").paginate():
        for topic in page["Topics"]:
            if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                report("orchestrator", "sns-topic", name, "exists")
                return topic["TopicArn"]
    arn = sns.create_topic(Name=name)["TopicArn"]
    report("orchestrator", "sns-topic", name, "created")
    return arn


def ensure_queue(aws: Aws, name: str) -> tuple[str, str]:
    """Returns (url, arn)."""
    sqs = aws.client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        status = "exists"
    except ClientError as err:
        if not is_missing(err, "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
        url = sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "86400"})["QueueUrl"]
        status = "created"
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    report("orchestrator", "sqs-queue", name, status)
    return url, arn


def ensure_queue_policy(
    aws: Aws, name: str, url: str, queue_arn: str, principal: str, source_arn: str
) -> None:
    """Lets one service (SNS topic or EventBridge rule) send to the queue."""
    sqs = aws.client("sqs")
    document = policy(
        allow(
            "sqs:SendMessage",
            queue_arn,
            Sid="AllowPublisher",
            Principal={"Service": principal},
            Condition={"ArnEquals": {"aws:SourceArn": source_arn}},
        )
    )
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {})
    if "Policy" in attrs and as_json(attrs["Policy"]) == document:
        return
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(document)})
    report("orchestrator", "sqs-queue-policy", name, "set")


def ensure_subscription(aws: Aws, topic_arn: str, queue_arn: str) -> str:
    sns = aws.client("sns")
    label = f"{topic_arn.rsplit(':', 1)[-1]} -> {queue_arn.rsplit(':', 1)[-1]}"
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        for sub in page["Subscriptions"]:
            if sub["Protocol"] == "sqs" and sub["Endpoint"] == queue_arn:
                report("orchestrator", "sns-subscription", label, "exists")
                return sub["SubscriptionArn"]
    arn = sns.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, ReturnSubscriptionArn=True
    )["SubscriptionArn"]
    report("orchestrator", "sns-subscription", label, "created")
    return arn


def ensure_inbox(aws: Aws, topic_arn: str, queue_name: str) -> dict[str, str]:
    """An SQS queue subscribed to an SNS topic: the local stand-in for a mailbox."""
    url, arn = ensure_queue(aws, queue_name)
    ensure_queue_policy(aws, queue_name, url, arn, "sns.amazonaws.com", topic_arn)
    subscription = ensure_subscription(aws, topic_arn, arn)
    return {"url": url, "arn": arn, "subscription_arn": subscription}


def ensure_event_bus(aws: Aws) -> str:
    events = aws.client("events")
    try:
        arn = events.describe_event_bus(Name=BUS_NAME)["Arn"]
        status = "exists"
    except ClientError as err:
        if not is_missing(err, "ResourceNotFoundException"):
            raise
        arn = events.create_event_bus(Name=BUS_NAME)["EventBusArn"]
        status = "created"
    report("orchestrator", "event-bus", BUS_NAME, status)
    return arn


def ensure_rule(aws: Aws, name: str, pattern: dict[str, Any], description: str,
                bus: str = BUS_NAME) -> str:
    events = aws.client("events")
    try:
        rule = events.describe_rule(Name=name, EventBusName=bus)
        if as_json(rule["EventPattern"]) == pattern and rule["State"] == "ENABLED":
            report("orchestrator", "event-rule", name, "exists")
            return rule["Arn"]
        status = "updated"
    except ClientError as err:
        if not is_missing(err, "ResourceNotFoundException"):
            raise
        status = "created"
    arn = events.put_rule(
        Name=name,
        EventBusName=bus,
        EventPattern=json.dumps(pattern),
        State="ENABLED",
        Description=description,
    )["RuleArn"]
    report("orchestrator", "event-rule", name, status)
    return arn


def ensure_target(aws: Aws, rule: str, target_id: str, target_arn: str,
                  bus: str = BUS_NAME) -> None:
    events = aws.client("events")
    targets = events.list_targets_by_rule(Rule=rule, EventBusName=bus)["Targets"]
    label = f"{rule} -> {target_arn.rsplit(':', 1)[-1]}"
    if any(t["Id"] == target_id and t["Arn"] == target_arn for t in targets):
        report("orchestrator", "event-target", label, "exists")
        return
    result = events.put_targets(
        Rule=rule, EventBusName=bus, Targets=[{"Id": target_id, "Arn": target_arn}]
    )
    if result.get("FailedEntryCount"):
        raise SeedError(f"put_targets on {rule} failed: {result['FailedEntries']}")
    report("orchestrator", "event-target", label, "created")


def ensure_invoke_permission(aws: Aws, function_name: str, statement_id: str, rule_arn: str) -> None:
    """Resource policy letting an EventBridge rule invoke the function."""
    lam = aws.client("lambda")
    try:
        statements = json.loads(lam.get_policy(FunctionName=function_name)["Policy"])["Statement"]
    except ClientError as err:
        if not is_missing(err, "ResourceNotFoundException"):
            raise
        statements = []
    if any(s.get("Sid") == statement_id for s in statements):
        return
    lam.add_permission(
        FunctionName=function_name,
        StatementId=statement_id,
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=rule_arn,
    )
    report("orchestrator", "lambda-permission", f"{function_name} {statement_id}", "created")


def ensure_template_rules(aws: Aws, render: Any, functions: dict[str, str]) -> dict[str, str]:
    """Every AWS::Events::Rule of infra/template.yaml as the template declares it
    (name, bus, pattern, targets), with invoke permissions for its Lambda targets.
    (The targets' retry policies and dead-letter queue are AWS's business.)"""
    rules: dict[str, str] = {}
    for logical, res in sorted(render.resources.items()):
        if res.get("Type") != "AWS::Events::Rule":
            continue
        props = res["Properties"]
        name = render.resolve(props["Name"])
        bus = render.resolve(props.get("EventBusName", "default")) or "default"
        rules[name] = ensure_rule(aws, name, render.resolve(props["EventPattern"]),
                                  render.resolve(props.get("Description", logical)), bus=bus)
        for target in props.get("Targets", []):
            arn = render.resolve(target["Arn"])
            ensure_target(aws, name, render.resolve(target["Id"]), arn, bus=bus)
            function = arn.rsplit(":", 1)[-1] if ":function:" in arn else None
            if function and function[len(PREFIX) + 1:] in functions:
                ensure_invoke_permission(aws, function, f"events-{name}", rules[name])
    return rules


def ensure_events(aws: Aws, render: Any, functions: dict[str, str]) -> dict[str, Any]:
    bus_arn = ensure_event_bus(aws)
    rules = ensure_template_rules(aws, render, functions)

    all_rule = f"{PREFIX}-all-events"
    url, queue_arn = ensure_queue(aws, f"{PREFIX}-events-inbox")
    rules[all_rule] = ensure_rule(
        aws, all_rule, {"source": [PREFIX]}, "copy of every stepdeploy event for tests"
    )
    ensure_queue_policy(
        aws, f"{PREFIX}-events-inbox", url, queue_arn, "events.amazonaws.com", rules[all_rule]
    )
    ensure_target(aws, all_rule, "events-inbox", queue_arn)
    return {
        "bus_name": BUS_NAME,
        "bus_arn": bus_arn,
        "rules": rules,
        "events_inbox": {"url": url, "arn": queue_arn},
    }


def ensure_approval_table(aws: Aws, render: Any) -> str:
    """infra/template.yaml's ApprovalsTable: its keys and time to live."""
    props = render.resolve(render.resources["ApprovalsTable"]["Properties"])
    ttl_spec = props.get("TimeToLiveSpecification") or {}
    ddb = aws.client("dynamodb")
    try:
        arn = ddb.describe_table(TableName=APPROVAL_TABLE)["Table"]["TableArn"]
        status = "exists"
    except ClientError as err:
        if not is_missing(err, "ResourceNotFoundException"):
            raise
        arn = ddb.create_table(
            TableName=APPROVAL_TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
        )["TableDescription"]["TableArn"]
        ddb.get_waiter("table_exists").wait(TableName=APPROVAL_TABLE, WaiterConfig={"Delay": 1})
        status = "created"
    ttl = ddb.describe_time_to_live(TableName=APPROVAL_TABLE)["TimeToLiveDescription"]
    if ttl_spec.get("Enabled") and (ttl.get("TimeToLiveStatus") != "ENABLED"
                                    or ttl.get("AttributeName") != ttl_spec["AttributeName"]):
        ddb.update_time_to_live(
            TableName=APPROVAL_TABLE,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_spec["AttributeName"]},
        )
        status += ", ttl enabled"
    report("orchestrator", "dynamodb-table", APPROVAL_TABLE, status)
    return arn


def ensure_secret(
    aws: Aws, scope: str, name: str, build: Callable[[str | None], str], description: str
) -> tuple[str, str]:
    """Secret whose value is build(current value); returns (arn, value).

    build() receives None when the secret doesn't exist yet, so it can generate
    fresh random material once and keep it on later runs.
    """
    sm = aws.client("secretsmanager")
    try:
        arn = sm.describe_secret(SecretId=name)["ARN"]
    except ClientError as err:
        if not is_missing(err, "ResourceNotFoundException"):
            raise
        value = build(None)
        arn = sm.create_secret(Name=name, SecretString=value, Description=description)["ARN"]
        report(scope, "secret", name, "created")
        return arn, value
    current = sm.get_secret_value(SecretId=arn)["SecretString"]
    value = build(current)
    if value != current:
        sm.put_secret_value(SecretId=arn, SecretString=value)
        report(scope, "secret", name, "updated")
    else:
        report(scope, "secret", name, "exists")
    return arn, value


def build_hmac_key(current: str | None) -> str:
    if current is not None and re.fullmatch(r"[0-9a-f]{64}", current):
        return current
    return secrets.token_hex(32)


# --------------------------------------------------------------------------- state machines

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def substitute_definition(path: Path, text: str, values: dict[str, str]) -> str:
    """Replace ${Name} placeholders like CloudFormation DefinitionSubstitutions."""
    unknown: list[str] = []

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in values:
            return str(values[key])
        unknown.append(key)
        return match.group(0)

    result = PLACEHOLDER.sub(replace, text)
    if unknown:
        names = ", ".join(f"${{{k}}}" for k in dict.fromkeys(unknown))
        raise SeedError(f"{path}: placeholder(s) {names} not in the state machine's "
                        "DefinitionSubstitutions (infra/template.yaml)")
    try:
        json.loads(result)
    except json.JSONDecodeError as err:
        raise SeedError(f"{path}: not valid JSON after substitution: {err}") from err
    return result


def ensure_state_machine(aws: Aws, name: str, definition: str, role_arn: str) -> str:
    sfn = aws.client("stepfunctions")
    existing = None
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name:
                existing = machine["stateMachineArn"]
    if existing is None:
        arn = sfn.create_state_machine(
            name=name, definition=definition, roleArn=role_arn, type="STANDARD"
        )["stateMachineArn"]
        report("orchestrator", "state-machine", name, "created")
        return arn
    current = sfn.describe_state_machine(stateMachineArn=existing)
    if json.loads(current["definition"]) != json.loads(definition) or current["roleArn"] != role_arn:
        sfn.update_state_machine(stateMachineArn=existing, definition=definition, roleArn=role_arn)
        report("orchestrator", "state-machine", name, "updated")
    else:
        report("orchestrator", "state-machine", name, "exists")
    return existing


def ensure_state_machines(aws: Aws, repo: Path, render: Any) -> dict[str, str]:
    """Every AWS::Serverless::StateMachine of infra/template.yaml: Name, DefinitionUri,
    DefinitionSubstitutions and Role as the template gives them."""
    definitions = {}
    for logical, res in render.resources.items():
        if res.get("Type") != "AWS::Serverless::StateMachine":
            continue
        props = res.get("Properties", {})
        path = (repo / "infra" / props["DefinitionUri"]).resolve()
        values = render.resolve(props.get("DefinitionSubstitutions", {}))
        # Substitute every file first so one bad file leaves all machines untouched.
        definitions[render.resolve(props["Name"])] = (
            substitute_definition(path, path.read_text(), values), render.resolve(props["Role"]))
    if not definitions:
        report("orchestrator", "state-machine", "*", "none in infra/template.yaml")
    return {name: ensure_state_machine(aws, name, text, role)
            for name, (text, role) in definitions.items()}


def seed_orchestrator(aws: Aws, repo: Path) -> dict[str, Any]:
    o = OrchestratorArns(aws.region, aws.account_id)
    template = orchestrator_template(repo)
    # What the roles' policies name must exist first (the secret's ARN has a random suffix).
    hmac_arn, _ = ensure_secret(
        aws, "orchestrator", HMAC_SECRET_NAME, build_hmac_key, "HMAC key for approval links"
    )
    render = orchestrator_renderer(aws, template, {HMAC_SECRET_NAME: hmac_arn})
    table_arn = ensure_approval_table(aws, render)
    # The topics as the template names them; their SQS inboxes stand in for e-mail.
    topics = {key: ensure_topic(aws, render.resolve(
        render.resources[f"{key.capitalize()}Topic"]["Properties"]["TopicName"]))
        for key in ("approvals", "notifications")}
    inboxes = {key: ensure_inbox(aws, arn, f"{PREFIX}-{key}-inbox") for key, arn in topics.items()}
    try:
        iam = cfn_render.iam_resources(render)
    except cfn_render.RenderError as err:
        raise SeedError(f"infra/template.yaml: {err}") from err
    roles = ensure_template_iam(aws, "orchestrator", iam)
    functions = ensure_functions(aws, repo, render)
    events = ensure_events(aws, render, functions)
    machines = ensure_state_machines(aws, repo, render)
    return {
        "account_id": aws.account_id,
        "region": aws.region,
        "endpoint": aws.endpoint,
        "roles": {iam["roles"][k]["name"]: arn for k, arn in roles.items()},
        "functions": {f"{PREFIX}-{name}": arn for name, arn in functions.items()},
        "trigger_function_arn": o.function("trigger"),
        "state_machines": machines,
        "event_bus": {"name": BUS_NAME, "arn": events["bus_arn"]},
        "rules": events["rules"],
        "topics": topics,
        "queues": {
            "approvals_inbox": inboxes["approvals"],
            "notifications_inbox": inboxes["notifications"],
            "events_inbox": events["events_inbox"],
        },
        "approval_table": {"name": APPROVAL_TABLE, "arn": table_arn},
        "hmac_secret_arn": hmac_arn,
    }


# --------------------------------------------------------------------------- environments


def target_account_parameters(env: EnvSpec, r: dict[str, Any]) -> dict[str, str]:
    """infra/target-account-role.yaml's parameters for this environment (its config's values)."""
    return {
        "RoleName": DEPLOY_ROLE_NAME,
        "OrchestratorAccountId": ORCH_ACCOUNT,
        "OrchestratorStackName": PREFIX,
        # The MySQL agent: registered by hand below (ensure_mysql_agent) with
        # Handler = its binary, which the Lambda emulator runs.
        "MySqlAgentCodeBucket": f"{PREFIX}-artifacts-{env.account_id}",
        "MySqlAgentSubnetIds": ",".join(r["subnets"]),
        "MySqlAgentSecurityGroupIds": r["security_group"],
        # The local operator (the dummy `testing` key is moto's user in the
        # orchestrator account): `stepdeploy status` reads through <role>-read.
        "OperatorPrincipalArns": f"arn:aws:iam::{ORCH_ACCOUNT}:user/moto",
        "ExternalId": env.external_id,
        "EnvironmentName": env.name,
        "ClusterName": f"{env.name}-cluster",
        "AlbListenerArn": r["listener_arn"],
        "AdditionalAlbListenerArns": ",".join(lb["listener_arn"] for lb in r.get("more_load_balancers", [])),
        "EfsFileSystemId": r["efs_id"],
        "RdsMasterSecretArn": r["master_secret_arn"],
        "RdsMasterSecretKmsKeyArn": "",
        "TaskExecutionRoleArn": r["task_execution_role_arn"],
        "TaskRoleArn": r["task_role_arn"],
        "HostedZoneId": r["hosted_zone_id"],
        "Domain": DOMAIN,
        "LogGroupName": r["log_group"],
        "StateTableName": f"{PREFIX}-state-{env.name}",
        "ConfigBucketName": f"{PREFIX}-config-{env.name}-{env.account_id}",
    }


def render_target_account(repo: Path, env: EnvSpec, r: dict[str, Any]) -> dict[str, Any]:
    """Every AWS::IAM::Role / Policy of infra/target-account-role.yaml, rendered for `env`."""
    path = repo / "infra" / "target-account-role.yaml"
    try:
        template = cfn_render.load_template(path)
        render = cfn_render.Renderer(template, target_account_parameters(env, r), env.account_id,
                                     env.region, f"{PREFIX}-deploy-{env.name}")
        return cfn_render.iam_resources(render)
    except cfn_render.RenderError as err:
        raise SeedError(f"{path}: {err}") from err


def ensure_deploy_role(aws: Aws, repo: Path, env: EnvSpec, r: dict[str, Any]) -> str:
    """The deploy role (and every other IAM resource of infra/target-account-role.yaml)."""
    resources = render_target_account(repo, env, r)
    arns = ensure_template_iam(aws, env.name, resources)
    deploy = [arn for logical, arn in arns.items()
              if resources["roles"][logical]["name"] == DEPLOY_ROLE_NAME]
    if not deploy:
        raise SeedError(f"infra/target-account-role.yaml declares no role named {DEPLOY_ROLE_NAME}")
    return deploy[0]


def ensure_mysql_agent(aws: Aws, env: EnvSpec) -> str:
    """infra/target-account-role.yaml's MySqlAgentFunction (named after the
    deploy role, as EnvironmentConfig::mysql_agent_arn expects), run by the
    emulator as the binary mysql-agent; it reaches this environment's MariaDB."""
    role = f"arn:aws:iam::{env.account_id}:role/{DEPLOY_ROLE_NAME}-mysql-agent"
    return ensure_function(aws, f"{DEPLOY_ROLE_NAME}-mysql", "mysql-agent", role,
                           dummy_lambda_zip())


def ensure_local_admin_role(aws: Aws, env: EnvSpec) -> str:
    """Local only: how the operator (tests, scripts) reaches an environment account.
    The deploy role's trust policy admits only the orchestrator's function roles, as
    in AWS; this role trusts the orchestrator account (so the operator's own admin
    policy decides) and may do everything there, like an operator's admin role."""
    trust = policy({
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ORCH_ACCOUNT}:root"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": env.external_id}},
    })
    return ensure_role(aws, env.name, LOCAL_ADMIN_ROLE_NAME, trust,
                       {"administrator": policy(allow("*", "*"))},
                       description="local stack only: operator access for tests and scripts")


def name_tag(name: str, resource_type: str) -> list[dict[str, Any]]:
    tags = [{"Key": "Name", "Value": name}, {"Key": "ManagedBy", "Value": f"{PREFIX}-seed"}]
    return [{"ResourceType": resource_type, "Tags": tags}]


def single(items: list[dict[str, Any]], what: str) -> dict[str, Any] | None:
    if len(items) > 1:
        raise SeedError(f"found {len(items)} {what}; expected at most one (remove the duplicates)")
    return items[0] if items else None


def ensure_vpc(aws: Aws, env: EnvSpec) -> str:
    ec2 = aws.client("ec2")
    name = f"{env.name}-vpc"
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [name]}])["Vpcs"]
    found = single(vpcs, f"VPCs named {name}")
    if found:
        if found["CidrBlock"] != env.cidr:
            raise SeedError(f"{name} has CIDR {found['CidrBlock']}, expected {env.cidr}")
        report(env.name, "vpc", name, f"exists {found['VpcId']}")
        return found["VpcId"]
    vpc_id = ec2.create_vpc(CidrBlock=env.cidr, TagSpecifications=name_tag(name, "vpc"))["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    report(env.name, "vpc", name, f"created {vpc_id}")
    return vpc_id


def ensure_private_subnets(aws: Aws, env: EnvSpec, vpc_id: str) -> list[str]:
    """Two /24s (second and third of the VPC) in the region's first two AZs."""
    ec2 = aws.client("ec2")
    available = ec2.describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}])
    zones = sorted(z["ZoneName"] for z in available["AvailabilityZones"])[:2]
    if len(zones) < 2:
        raise SeedError(f"{env.region} has fewer than two availability zones: {zones}")
    blocks = list(ipaddress.ip_network(env.cidr).subnets(new_prefix=24))[1:3]
    subnet_ids = []
    for zone, block in zip(zones, blocks):
        name = f"{env.name}-private-{zone[-1]}"
        found = single(
            ec2.describe_subnets(Filters=[
                {"Name": "vpc-id", "Values": [vpc_id]},
                {"Name": "tag:Name", "Values": [name]},
            ])["Subnets"],
            f"subnets named {name}",
        )
        if found:
            subnet_ids.append(found["SubnetId"])
            report(env.name, "subnet", name, f"exists {found['SubnetId']}")
            continue
        subnet_id = ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=str(block), AvailabilityZone=zone,
            TagSpecifications=name_tag(name, "subnet"),
        )["Subnet"]["SubnetId"]
        subnet_ids.append(subnet_id)
        report(env.name, "subnet", name, f"created {subnet_id} {block} {zone}")
    return subnet_ids


def ensure_tasks_security_group(aws: Aws, env: EnvSpec, vpc_id: str) -> str:
    ec2 = aws.client("ec2")
    name = f"{env.name}-ecs-tasks"
    found = single(
        ec2.describe_security_groups(Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": [name]},
        ])["SecurityGroups"],
        f"security groups named {name}",
    )
    if found:
        report(env.name, "security-group", name, f"exists {found['GroupId']}")
        return found["GroupId"]
    group_id = ec2.create_security_group(
        GroupName=name, Description="WordPress tasks behind the shared ALB", VpcId=vpc_id,
        TagSpecifications=name_tag(name, "security-group"),
    )["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
        "IpRanges": [{"CidrIp": env.cidr, "Description": "ALB to WordPress"}],
    }])
    report(env.name, "security-group", name, f"created {group_id}")
    return group_id


def ensure_cluster(aws: Aws, env: EnvSpec) -> str:
    ecs = aws.client("ecs")
    name = f"{env.name}-cluster"
    clusters = [c for c in ecs.describe_clusters(clusters=[name])["clusters"] if c["status"] == "ACTIVE"]
    if clusters:
        report(env.name, "ecs-cluster", name, "exists")
        return clusters[0]["clusterArn"]
    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    report(env.name, "ecs-cluster", name, "created")
    return arn


def load_balancer_name(env: EnvSpec, index: int) -> str:
    """`dev-alb`, `dev-alb-2`, `dev-alb-3`."""
    return f"{env.name}-alb" if index == 0 else f"{env.name}-alb-{index + 1}"


def ensure_load_balancer(aws: Aws, env: EnvSpec, subnets: list[str], index: int = 0) -> dict[str, Any]:
    elb = aws.client("elbv2")
    name = load_balancer_name(env, index)
    try:
        lb = elb.describe_load_balancers(Names=[name])["LoadBalancers"][0]
        report(env.name, "load-balancer", name, "exists")
        return lb
    except ClientError as err:
        if not is_missing(err, "LoadBalancerNotFound"):
            raise
    lb = elb.create_load_balancer(
        Name=name, Subnets=subnets,
        Scheme="internet-facing", Type="application", IpAddressType="ipv4",
        Tags=[{"Key": "Name", "Value": name}],
    )["LoadBalancers"][0]
    report(env.name, "load-balancer", name, "created")
    return lb


def ensure_certificate(aws: Aws, env: EnvSpec) -> str:
    acm = aws.client("acm")
    domain = f"*.{env.zone_name}"
    for page in acm.get_paginator("list_certificates").paginate():
        for cert in page["CertificateSummaryList"]:
            if cert["DomainName"] == domain:
                report(env.name, "acm-certificate", domain, "exists")
                return cert["CertificateArn"]
    arn = acm.request_certificate(
        DomainName=domain, ValidationMethod="DNS", IdempotencyToken=f"{PREFIX}{env.name}"
    )["CertificateArn"]
    report(env.name, "acm-certificate", domain, "requested")
    return arn


def ensure_https_listener(aws: Aws, env: EnvSpec, lb_arn: str, certificate_arn: str, index: int = 0) -> str:
    elb = aws.client("elbv2")
    default_actions = [{
        "Type": "fixed-response",
        "FixedResponseConfig": {
            "StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no such tenant",
        },
    }]
    label = f"{load_balancer_name(env, index)} HTTPS:443"
    for listener in elb.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]:
        if listener["Port"] == 443:
            actions = listener.get("DefaultActions", [])
            certs = [c["CertificateArn"] for c in listener.get("Certificates", [])]
            ok = (
                listener["Protocol"] == "HTTPS"
                and certificate_arn in certs
                and len(actions) == 1
                and actions[0]["Type"] == "fixed-response"
                and actions[0].get("FixedResponseConfig", {}).get("StatusCode") == "404"
            )
            if not ok:
                elb.modify_listener(
                    ListenerArn=listener["ListenerArn"], Protocol="HTTPS", Port=443,
                    Certificates=[{"CertificateArn": certificate_arn}], DefaultActions=default_actions,
                )
            report(env.name, "alb-listener", label, "exists" if ok else "updated")
            return listener["ListenerArn"]
    arn = elb.create_listener(
        LoadBalancerArn=lb_arn, Protocol="HTTPS", Port=443,
        SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
        Certificates=[{"CertificateArn": certificate_arn}],
        DefaultActions=default_actions,
    )["Listeners"][0]["ListenerArn"]
    report(env.name, "alb-listener", label, "created")
    return arn


def ensure_file_system(aws: Aws, env: EnvSpec) -> str:
    efs = aws.client("efs")
    token = f"{env.name}-wordpress"
    found = single(efs.describe_file_systems(CreationToken=token)["FileSystems"], f"EFS file systems {token}")
    if found:
        report(env.name, "efs", token, f"exists {found['FileSystemId']}")
        return found["FileSystemId"]
    fs_id = efs.create_file_system(
        CreationToken=token, PerformanceMode="generalPurpose", Encrypted=True,
        Tags=[{"Key": "Name", "Value": token}],
    )["FileSystemId"]
    report(env.name, "efs", token, f"created {fs_id}")
    return fs_id


def ensure_log_group(aws: Aws, env: EnvSpec) -> str:
    logs = aws.client("logs")
    name = f"/ecs/{env.name}"
    groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    if any(g["logGroupName"] == name for g in groups):
        report(env.name, "log-group", name, "exists")
        return name
    logs.create_log_group(logGroupName=name)
    logs.put_retention_policy(logGroupName=name, retentionInDays=14)
    report(env.name, "log-group", name, "created")
    return name


def ensure_task_roles(aws: Aws, env: EnvSpec, fs_id: str) -> tuple[str, str]:
    acct, region = env.account_id, env.region
    trust = service_trust("ecs-tasks.amazonaws.com")
    # Inline equivalent of AmazonECSTaskExecutionRolePolicy (moto only knows AWS
    # managed policies when told to load them). The tenant secrets: the
    # AWS::IAM::Policy of infra/target-account-role.yaml (ensure_deploy_role).
    execution = ensure_role(aws, env.name, f"{env.name}-ecs-task-execution", trust, {
        "task-execution": policy(
            allow(["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability",
                   "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"], "*"),
            allow(["logs:CreateLogStream", "logs:PutLogEvents"],
                  f"arn:aws:logs:{region}:{acct}:log-group:/ecs/{env.name}:*"),
        ),
    })
    task = ensure_role(aws, env.name, f"{env.name}-ecs-task", trust, {
        "wordpress-efs": policy(
            allow(["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                  f"arn:aws:elasticfilesystem:{region}:{acct}:file-system/{fs_id}"),
        ),
    })
    return execution, task


def ensure_hosted_zone(aws: Aws, env: EnvSpec) -> str:
    r53 = aws.client("route53")
    fqdn = env.zone_name + "."
    zones = r53.list_hosted_zones_by_name(DNSName=fqdn)["HostedZones"]
    found = single([z for z in zones if z["Name"] == fqdn], f"hosted zones {fqdn}")
    if found:
        zone_id = found["Id"].rsplit("/", 1)[-1]
        report(env.name, "hosted-zone", env.zone_name, f"exists {zone_id}")
        return zone_id
    created = r53.create_hosted_zone(
        Name=env.zone_name, CallerReference=f"{PREFIX}-seed-{uuid.uuid4()}",
        HostedZoneConfig={"Comment": f"{env.name} tenants", "PrivateZone": False},
    )["HostedZone"]
    zone_id = created["Id"].rsplit("/", 1)[-1]
    report(env.name, "hosted-zone", env.zone_name, f"created {zone_id}")
    return zone_id


def ensure_distribution(aws: Aws, env: EnvSpec, alb_dns: str, index: int = 0) -> str:
    cf = aws.client("cloudfront")
    comment = f"{env.name} tenants" if index == 0 else f"{env.name} tenants ({load_balancer_name(env, index)})"
    for page in cf.get_paginator("list_distributions").paginate():
        for dist in page["DistributionList"].get("Items", []):
            if dist["Comment"] == comment:
                report(env.name, "cloudfront", comment, f"exists {dist['DomainName']}")
                return dist["DomainName"]
    origin_id = load_balancer_name(env, index)
    dist = cf.create_distribution(DistributionConfig={
        "CallerReference": f"{PREFIX}-seed-{env.name}-{uuid.uuid4()}",
        "Comment": comment,
        "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{
            "Id": origin_id,
            "DomainName": alb_dns,
            "CustomOriginConfig": {
                "HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only",
                "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
            },
        }]},
        "DefaultCacheBehavior": {
            "TargetOriginId": origin_id,
            "ViewerProtocolPolicy": "redirect-to-https",
            "CachePolicyId": CACHE_POLICY_CACHING_DISABLED,
            "OriginRequestPolicyId": ORIGIN_REQUEST_POLICY_ALL_VIEWER,
        },
    })["Distribution"]
    report(env.name, "cloudfront", comment, f"created {dist['DomainName']}")
    return dist["DomainName"]


def ensure_rds_master(aws: Aws, env: EnvSpec, state_dir: Path) -> str:
    """Master secret in the env account, and the matching MariaDB user."""

    def build(current: str | None) -> str:
        password = None
        if current is not None:
            password = json.loads(current).get("password")
        return json.dumps({
            "username": RDS_MASTER_USER,
            "password": password or random_password(),
            "host": "127.0.0.1",
            "port": env.db_port,
            "engine": "mysql",
        })

    arn, value = ensure_secret(
        aws, env.name, f"{env.name}-rds-master", build, f"{env.name} RDS master credentials"
    )
    ensure_mariadb_master(env, state_dir, json.loads(value)["password"])
    return arn


def ensure_mariadb_master(env: EnvSpec, state_dir: Path, password: str) -> None:
    socket = state_dir / "mariadb" / env.name / "mysqld.sock"
    try:
        conn = pymysql.connect(unix_socket=str(socket), user="root", password="", connect_timeout=5)
    except pymysql.err.OperationalError as err:
        raise SeedError(
            f"cannot reach the {env.name} MariaDB through {socket} ({err.args[-1]}); "
            f"run `local/mariadb.sh start` first"
        ) from err
    user = f"'{RDS_MASTER_USER}'@'%%'"  # '%%': pymysql formats queries that take args
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY %s", (password,))
            cur.execute(f"ALTER USER {user} IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO {user} WITH GRANT OPTION", ())
        conn.commit()
    finally:
        conn.close()
    report(env.name, "mariadb-user", f"{RDS_MASTER_USER} on 127.0.0.1:{env.db_port}", "ready")


def example_config(repo: Path, env: EnvSpec) -> dict[str, Any]:
    """The checked-in example for this env (falls back to dev.json)."""
    folder = repo / "infra" / "environments"
    path = folder / f"{env.name}.json"
    if not path.is_file():
        path = folder / "dev.json"
    if not path.is_file():
        raise SeedError(f"no example environment config in {folder}")
    return json.loads(path.read_text())


# Local-only optional fields that the real configs leave out.
LOCAL_EXTRA_FIELDS = {"verify.base_url", "dns.check_base_url", "additional_load_balancers"}


def check_schema(example: Any, actual: Any, where: str = "") -> list[str]:
    """Field names that differ from the example (nested dicts; null in either side skipped)."""
    if not isinstance(example, dict) or not isinstance(actual, dict):
        return []
    problems = []
    for key in example.keys() - actual.keys():
        problems.append(f"missing {where}{key}")
    for key in actual.keys() - example.keys():
        if f"{where}{key}" not in LOCAL_EXTRA_FIELDS:
            problems.append(f"extra {where}{key}")
    for key in example.keys() & actual.keys():
        problems += check_schema(example[key], actual[key], f"{where}{key}.")
    return problems


# Every odd minute of every day, as one-minute allow windows (720 of them):
# sit's `window=odd-minutes` rule. Plans carry no windows (bootstrap reads
# them from its own config), so their number costs no state size.
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ODD_MINUTES = [
    {"days": ALL_DAYS, "from": f"{h:02}:{m:02}", "to": f"{h + (m + 1) // 60:02}:{(m + 1) % 60:02}"}
    for h in range(24) for m in range(1, 60, 2)
]


def environment_config(env: EnvSpec, example: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
    config = {
        "name": env.name,
        "account_id": env.account_id,
        "region": env.region,
        "deploy_role_arn": r["deploy_role_arn"],
        "external_id": env.external_id,
        "cluster": f"{env.name}-cluster",
        "vpc_id": r["vpc_id"],
        "private_subnets": r["subnets"],
        "ecs_security_group": r["security_group"],
        "alb_listener_arn": r["listener_arn"],
        "alb_priority_range": {"min": 10, "max": 109},
        "efs_id": r["efs_id"],
        "rds": {"endpoint": "127.0.0.1", "port": env.db_port, "master_secret_arn": r["master_secret_arn"], "tls": False},
        "task_execution_role_arn": r["task_execution_role_arn"],
        "task_role_arn": r["task_role_arn"],
        "log_group": r["log_group"],
        "domain": DOMAIN,
        "hosted_zone_id": r["hosted_zone_id"],
        "cloudfront": {"domain_name": r["cloudfront_domain"], "hosted_zone_id": CLOUDFRONT_ZONE_ID},
        "defaults": example["defaults"],
        "state_table": f"{PREFIX}-state-{env.name}",
        "config_bucket": f"{PREFIX}-config-{env.name}-{env.account_id}",
        "approval": PROD_APPROVAL if env.name == "prod" else None,
        "verify": {
            "enabled": env.name != "prod",
            "interval_seconds": 1,
            "max_attempts": 10,
            "base_url": LOCAL_SITE_URL,
        },
        "dns": {"enabled": env.name != "dev", "check_base_url": LOCAL_SITE_URL},
        "promote_to": env.promote_to,
    }
    if env.name == "sit":
        # Any hour, but tenants labelled window=frozen are in a freeze; an
        # override needs the quorum even though sit deploys need none.
        # Tenants labelled window=odd-minutes may start in odd minutes only
        # and wait (outside: wait) for the next one: a real window that
        # opens within a minute, so the demo and a test show a request
        # waiting for its window on the real clock.
        config["deployment_windows"] = {
            "time_zone": "Africa/Johannesburg", "allow": [], "freezes": [], "outside": "refuse",
            "by_label": [{"labels": {"window": "frozen"},
                          "freezes": [{"from": "2026-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z",
                                       "reason": "local freeze for the window tests"}]},
                         {"labels": {"window": "odd-minutes"}, "allow": ODD_MINUTES,
                          "outside": "wait", "max_wait_seconds": 120}],
        }
        config["override_approval"] = PROD_APPROVAL
    if env.name in ("sit", "prod"):
        # A request for a busy tenant waits its turn (5 min here; 1 h in
        # infra/environments); dev keeps failing with DeploymentLocked.
        config["queue"] = {"max_wait_seconds": 300, "supersede": True}
    if env.name == "prod":
        # Dumps before an image change, kept 35 days (as infra/environments/prod.json).
        config["database_backup"] = {"retention_days": 35}
        # Open at any hour locally (tests run whenever CI does), except for
        # tenants labelled window=frozen: a freeze the tests deploy into.
        config["deployment_windows"] = {
            "time_zone": "Africa/Johannesburg",
            "allow": [],
            "freezes": [],
            "outside": "refuse",
            "by_label": [{"labels": {"window": "frozen"},
                          "freezes": [{"from": "2026-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z",
                                       "reason": "local freeze for the window tests"}]}],
        }
    if r["more_load_balancers"]:
        # Each load balancer its own 100 priorities: 110-209, 210-309, ...
        config["additional_load_balancers"] = [
            {"listener_arn": lb["listener_arn"],
             "priority_range": {"min": 10 + 100 * i, "max": 109 + 100 * i},
             "cloudfront": {"domain_name": lb["cloudfront_domain"], "hosted_zone_id": CLOUDFRONT_ZONE_ID}}
            for i, lb in enumerate(r["more_load_balancers"], start=1)
        ]
    problems = check_schema(example, config)
    if problems:
        raise SeedError(
            f"local {env.name} config no longer matches infra/environments/{env.name}.json "
            f"({'; '.join(sorted(problems))}); update local/seed.py"
        )
    return config


def seed_environment(orchestrator: Aws, env: EnvSpec, repo: Path, state_dir: Path) -> Path:
    admin = f"arn:aws:iam::{env.account_id}:role/{LOCAL_ADMIN_ROLE_NAME}"
    aws = orchestrator.assume(admin, env.external_id, env.account_id, env.region)
    r: dict[str, Any] = {}
    ensure_local_admin_role(aws, env)
    r["vpc_id"] = ensure_vpc(aws, env)
    r["subnets"] = ensure_private_subnets(aws, env, r["vpc_id"])
    r["security_group"] = ensure_tasks_security_group(aws, env, r["vpc_id"])
    ensure_cluster(aws, env)
    lb = ensure_load_balancer(aws, env, r["subnets"])
    certificate = ensure_certificate(aws, env)
    r["listener_arn"] = ensure_https_listener(aws, env, lb["LoadBalancerArn"], certificate)
    r["efs_id"] = ensure_file_system(aws, env)
    r["log_group"] = ensure_log_group(aws, env)
    r["task_execution_role_arn"], r["task_role_arn"] = ensure_task_roles(aws, env, r["efs_id"])
    r["hosted_zone_id"] = ensure_hosted_zone(aws, env)
    r["cloudfront_domain"] = ensure_distribution(aws, env, lb["DNSName"])
    r["more_load_balancers"] = []
    for index in range(1, env.load_balancers):
        more = ensure_load_balancer(aws, env, r["subnets"], index)
        r["more_load_balancers"].append({
            "listener_arn": ensure_https_listener(aws, env, more["LoadBalancerArn"], certificate, index),
            "cloudfront_domain": ensure_distribution(aws, env, more["DNSName"], index),
        })
    r["master_secret_arn"] = ensure_rds_master(aws, env, state_dir)
    r["deploy_role_arn"] = ensure_deploy_role(aws, repo, env, r)
    ensure_mysql_agent(aws, env)
    path = state_dir / "environments" / f"{env.name}.json"
    write_json(path, environment_config(env, example_config(repo, env), r))
    report(env.name, "config", str(path), "written")
    return path


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        help="moto server URL (default: $AWS_ENDPOINT_URL or http://127.0.0.1:5000)",
    )
    parser.add_argument(
        "--repo", type=Path, default=here.parent,
        help="repository root with functions/, statemachines/ and infra/ (default: %(default)s)",
    )
    parser.add_argument(
        "--state-dir", type=Path, default=None,
        help="where the MariaDB sockets are and configs are written (default: <repo>/local/.state)",
    )
    args = parser.parse_args(argv)
    args.repo = args.repo.resolve()
    args.state_dir = (args.state_dir or args.repo / "local" / ".state").resolve()
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        orchestrator = orchestrator_aws(args.endpoint)
        stack = seed_orchestrator(orchestrator, args.repo)
        stack["environments"] = {
            env.name: str(seed_environment(orchestrator, env, args.repo, args.state_dir))
            for env in ENVIRONMENTS
        }
    except SeedError as err:
        print(f"seed: {err}", file=sys.stderr)
        return 1
    stack_path = args.state_dir / "stack.json"
    write_json(stack_path, stack)
    report("orchestrator", "stack", str(stack_path), "written")
    print(f"seed complete in {time.monotonic() - started:.1f}s against {args.endpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
