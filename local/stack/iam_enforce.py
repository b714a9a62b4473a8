"""Local IAM: stepdeploy's AWS calls authorised as AWS would, from the live IAM data.

A WSGI middleware (`IamEnforcer`) that the launcher (stack/__main__.py)
puts in front of moto.  Every call made by stepdeploy's code (User-Agent
aws-sdk-rust: the functions under `cargo lambda watch`, the CLI, the Rust
integration tests) is mapped to the IAM action(s), resource ARN(s) and condition keys AWS
evaluates for it (`map_request`), and evaluated (`evaluate`) against the
identity policies of the principal behind the request's access key, read
live from moto's IAM backend of that principal's account (inline policies
and attached managed policies).  sts:AssumeRole also evaluates the target
role's trust policy (`authorize_assume_role`).  A refused call answers the
AccessDenied error AWS sends, in the service's protocol shape, with AWS's
message ("User: <caller> is not authorized to perform: <action> on
resource: <arn> because no identity-based policy allows the <action>
action").  Also judged: the calls Step Functions makes with a state
machine's role for the states integration (a Task starting a child
execution, the `.sync` DescribeExecution polls: header ON_BEHALF_HEADER,
patches/sfn_nested_iam.py).  Calls that are not stepdeploy's (seed,
stand-in, AWS CLI, moto's other Step Functions calls) pass untouched.

Enforcement is always on.  For integrating only, STEPDEPLOY_IAM_AUDIT=1 in
the launcher's environment logs would-be denials ("iam: AUDIT would deny
...") and lets the calls through: a development aid, never for tests or CI
(local/test, CI and stack/tests do not set it).

Principals (access key id -> who)
---------------------------------
* `local-fn-<binary>`: the Lambda function(s) of the orchestrator account
  (123456789012) whose Handler is <binary> (the seed registers them with
  their roles from infra/template.yaml); for a binary no orchestrator
  function runs (the MySQL agent), the functions of the environment
  accounts, any of whose roles may allow a call.  The caller is
  arn:aws:sts::123456789012:assumed-role/<role name>/<function name>, its
  aws:PrincipalArn the role's ARN (arn:aws:iam::123456789012:role/stepdeploy/
  <role name>), its policies the role's.  Each crate's Cargo.toml sets the
  key in [package.metadata.lambda.env] (read by `cargo lambda watch` when it
  starts the function; AWS Lambda ignores that metadata, so in AWS the
  functions keep their execution role's credentials).  The approval binary
  serves two functions (stepdeploy-approval and stepdeploy-approval-links)
  with one key: a call passes if either function's role allows it (AWS
  checks each function on its own; documented looseness).
* `testing` (local/env.sh, the tests' and the CLI's dummy key): the
  operator, OPERATOR_ARN (moto's identity for that key), with an
  AdministratorAccess-like policy (Allow * on *), as an operator's SSO
  admin role would.  The deploy roles' trust policies do not admin it
  (aws:PrincipalArn is not under /stepdeploy/), as in AWS.
* keys moto's STS issued (AssumeRole): the assumed role's session,
  arn:aws:sts::<account>:assumed-role/<role name>/<session name>, with that
  role's policies in that account.  A role that does not exist has none.
* any other key: refused (AWS: InvalidClientTokenId; here AccessDenied
  naming the key, so the gap shows).

AWS authorisation rules modelled
--------------------------------
* Identity-based policies: inline + attached managed (default version).
  Explicit Deny wins, then any Allow, else implicit deny.
* Statement elements Effect, Action/NotAction (wildcards, case-insensitive),
  Resource/NotResource (wildcards * and ?, matched per ARN segment;
  "*" matches everything), Condition.
* Condition operators: String(Not)Equals(IgnoreCase), String(Not)Like,
  Arn(Not)Equals, Arn(Not)Like, Bool, Null, Numeric*, with IfExists and the
  ForAllValues:/ForAnyValue: set qualifiers; several keys/operators AND,
  several values OR; a missing key fails a positive operator, passes a
  negated one and ForAllValues.
* Condition keys supplied: aws:PrincipalArn, aws:PrincipalAccount,
  aws:PrincipalType, aws:username (users), aws:SourceAccount (never, no
  service principals here), sts:ExternalId, sts:RoleSessionName,
  iam:PassedToService, ecs:CreateAction, elasticloadbalancing:CreateAction,
  elasticfilesystem:CreateAction, aws:RequestTag/<k>, aws:TagKeys,
  aws:ResourceTag/<k> (EFS access points, secrets, ECS services and task
  definitions, ELBv2 target groups/rules, when moto has the resource),
  route53:ChangeResourceRecordSetsNormalizedRecordNames / RecordTypes /
  Actions, ecs:cluster, kms:ViaService (never: no KMS call is made here).
* sts:AssumeRole: the caller's identity policy must allow sts:AssumeRole on
  the role ARN (cross-account, or a trust policy naming only the account)
  AND the role's trust policy must allow the caller (Principal AWS: account
  id / arn:...:root = any principal of that account; a role ARN = its
  sessions; a user ARN; "*"), with its conditions.  A missing role, a
  wrong/missing ExternalId, a caller outside the trusted path: AccessDenied
  "User: <caller> is not authorized to perform: sts:AssumeRole on resource:
  <role arn>", as AWS's STS answers.
* Action names that differ from the API (see MAPPING below): S3 HeadObject
  -> s3:GetObject; GetObject/HeadObject with versionId ->
  s3:GetObjectVersion; CopyObject -> s3:PutObject on the target +
  s3:GetObject (s3:GetObjectVersion with ?versionId= in x-amz-copy-source)
  on the source; ListObjects(V2)/HeadBucket -> s3:ListBucket; ListObjectVersions
  -> s3:ListBucketVersions; Get/PutBucketEncryption ->
  s3:Get/PutEncryptionConfiguration; Get/PutPublicAccessBlock ->
  s3:Get/PutBucketPublicAccessBlock; DeleteObject with versionId ->
  s3:DeleteObjectVersion; PutObject with x-amz-tagging -> +s3:PutObjectTagging;
  DeleteObjects -> s3:DeleteObject per key; DynamoDB TransactWriteItems ->
  PutItem/UpdateItem/DeleteItem/ConditionCheckItem per item and table,
  TransactGetItems -> GetItem, BatchWriteItem -> PutItem/DeleteItem,
  BatchGetItem -> GetItem; tag-on-create: ECS RegisterTaskDefinition /
  CreateService with tags -> +ecs:TagResource (ecs:CreateAction), ELBv2
  CreateTargetGroup / CreateRule with tags -> +elasticloadbalancing:AddTags
  (elasticloadbalancing:CreateAction), EFS CreateAccessPoint with tags ->
  +elasticfilesystem:TagResource (elasticfilesystem:CreateAction), Secrets
  Manager CreateSecret with tags -> +secretsmanager:TagResource, DynamoDB
  CreateTable with tags -> +dynamodb:TagResource; ECS RegisterTaskDefinition
  with executionRoleArn/taskRoleArn -> +iam:PassRole on each
  (iam:PassedToService ecs-tasks.amazonaws.com); sts:GetCallerIdentity
  needs no permission.
* A Secrets Manager call naming (not ARN) a secret that does not exist is
  authorised against arn:...:secret:<name>, without the random suffix (so
  a "-??????" resource pattern refuses it instead of "not found").
* Resource ARNs of resources being created are built as AWS does, with a
  placeholder for the part AWS generates (target group / rule / access
  point ids, the secret's 6-character suffix, the next task definition
  revision from moto).

Not modelled (a green local run does not prove these)
----------------------------------------------------
SCPs and RCPs; permission boundaries; session policies (AssumeRole Policy /
PolicyArns); resource-based policies other than role trust policies (S3
bucket policies, SNS/SQS/Lambda/Secrets Manager resource policies, KMS key
policies and grants: KMS is not called here); kms:ViaService and any KMS
decryption (the local master secret has no customer key); service-linked
roles and what services do with roles passed to them (ECS pulling the
secret with the task execution role is the ECS start-up model's job, not
this one's); Step Functions' and EventBridge's own calls with their roles
(moto makes them in-process; not stepdeploy's code), except the states
integration's (above); the seed's, the
stand-in's and the AWS CLI's calls (not stepdeploy's code); policy
variables (${aws:username} ...); aws:SourceIp/VPC/TLS/time keys; MFA;
ecs:DescribeTaskDefinition's include=TAGS (authorised as
DescribeTaskDefinition only: AWS documents no extra action); the 10,240-
character and other IAM quotas (the quota model's job).
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import re
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

ORCH_ACCOUNT = "123456789012"
ORCH_REGION = "eu-west-1"
OPERATOR_KEY = "testing"
OPERATOR_ARN = f"arn:aws:iam::{ORCH_ACCOUNT}:user/moto"
FUNCTION_KEY_PREFIX = "local-fn-"
ADMIN_POLICY = {"Version": "2012-10-17",
                "Statement": [{"Sid": "OperatorAdministratorAccess", "Effect": "Allow",
                               "Action": "*", "Resource": "*"}]}
AUDIT_ENV = "STEPDEPLOY_IAM_AUDIT"
# Calls Step Functions makes with a state machine's role (the states
# integration: patches/sfn_nested_iam.py) carry this header; they are judged
# like stepdeploy's own.
ON_BEHALF_HEADER = "X-Stepdeploy-On-Behalf-Of"
ON_BEHALF_STATES = "states"


def log(msg: str) -> None:
    print(f"[moto_launcher] iam: {msg}", flush=True)


# ==========================================================================
# Policy evaluation
# ==========================================================================


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _wild(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcard match: * any run of characters, ? one character."""
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.S) is not None


def action_matches(pattern: str, action: str) -> bool:
    return _wild(pattern, action, ignore_case=True)


def arn_matches(pattern: str, arn: str) -> bool:
    """ARN match as IAM does it: "*" matches all, else the six segments one by one."""
    if pattern == "*":
        return True
    p, a = pattern.split(":", 5), arn.split(":", 5)
    if len(p) != 6 or len(a) != 6:
        return _wild(pattern, arn)
    return all(_wild(ps, as_) for ps, as_ in zip(p, a))


def _string_op(base: str) -> Callable[[str, str], bool] | None:
    return {
        "StringEquals": lambda p, v: p == v,
        "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
        "StringLike": lambda p, v: _wild(p, v),
        "ArnEquals": lambda p, v: p == v,
        "ArnLike": lambda p, v: arn_matches(p, v),
    }.get(base)


NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
           "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}
NUMERIC = {"NumericEquals": lambda a, b: a == b, "NumericNotEquals": lambda a, b: a != b,
           "NumericLessThan": lambda a, b: a < b, "NumericLessThanEquals": lambda a, b: a <= b,
           "NumericGreaterThan": lambda a, b: a > b,
           "NumericGreaterThanEquals": lambda a, b: a >= b}


class UnsupportedCondition(Exception):
    pass


def _single_match(op: str, patterns: list[str], value: str) -> bool:
    """Does one context value satisfy a (positive) operator with any of the patterns?"""
    if op in NUMERIC:
        try:
            return any(NUMERIC[op](float(value), float(p)) for p in patterns)
        except ValueError:
            return False
    if op == "Bool":
        return any(str(p).lower() == str(value).lower() for p in patterns)
    fn = _string_op(op)
    if fn is None:
        raise UnsupportedCondition(op)
    return any(fn(str(p), str(value)) for p in patterns)


def condition_holds(operator: str, key: str, patterns: Any, context: dict[str, Any]) -> bool:
    qualifier = None
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    if if_exists:
        operator = operator[: -len("IfExists")]
    patterns = [str(p).lower() if isinstance(p, bool) else str(p) for p in as_list(patterns)]
    present = key in context or key.lower() in {k.lower() for k in context}
    value = context.get(key)
    if value is None and present:
        value = next(v for k, v in context.items() if k.lower() == key.lower())
    if operator == "Null":
        want_absent = any(p.lower() == "true" for p in patterns)
        return (not present) if want_absent else present
    negated = operator in NEGATED or operator == "NumericNotEquals"
    base = NEGATED.get(operator, operator)
    if qualifier is not None:
        values = [str(v) for v in as_list(value)] if present else []
        if qualifier == "ForAllValues":
            if not values:
                return True
            return all((not _single_match(base, patterns, v)) if negated and base != operator
                       else _single_match(base, patterns, v) for v in values)
        if qualifier == "ForAnyValue":
            if not values:
                return False
            return any((not _single_match(base, patterns, v)) if negated and base != operator
                       else _single_match(base, patterns, v) for v in values)
        raise UnsupportedCondition(f"{qualifier}:{operator}")
    if not present:
        return True if (if_exists or (negated and base != operator)) else False
    values = [str(v).lower() if isinstance(v, bool) else str(v) for v in as_list(value)]
    if base != operator:  # negated string/arn operator: no value matches any pattern
        return not any(_single_match(base, patterns, v) for v in values)
    return any(_single_match(operator, patterns, v) for v in values)


def conditions_hold(block: dict[str, Any] | None, context: dict[str, Any]) -> bool:
    for operator, keys in (block or {}).items():
        for key, patterns in keys.items():
            if not condition_holds(operator, key, patterns, context):
                return False
    return True


def statement_applies(st: dict[str, Any], action: str, resource: str,
                      context: dict[str, Any]) -> bool:
    if "Action" in st:
        if not any(action_matches(p, action) for p in as_list(st["Action"])):
            return False
    elif "NotAction" in st:
        if any(action_matches(p, action) for p in as_list(st["NotAction"])):
            return False
    else:
        return False
    if "Resource" in st:
        if not any(arn_matches(p, resource) for p in as_list(st["Resource"])):
            return False
    elif "NotResource" in st:
        if any(arn_matches(p, resource) for p in as_list(st["NotResource"])):
            return False
    return conditions_hold(st.get("Condition"), context)


@dataclass
class Decision:
    allowed: bool
    explicit_deny: bool = False
    matched: list[str] = field(default_factory=list)  # "policy/sid" of the deciding statements


def evaluate(policies: Iterable[tuple[str, Any]], action: str, resource: str,
             context: dict[str, Any]) -> Decision:
    """AWS's identity-policy logic: explicit Deny > Allow > implicit deny."""
    allows, denies = [], []
    for name, document in policies:
        doc = json.loads(document) if isinstance(document, str) else document
        for i, st in enumerate(as_list((doc or {}).get("Statement"))):
            if statement_applies(st, action, resource, context):
                label = f"{name}/{st.get('Sid', i)}"
                (denies if st.get("Effect") == "Deny" else allows).append(label)
    if denies:
        return Decision(False, True, denies)
    return Decision(bool(allows), False, allows)


# ==========================================================================
# Principals
# ==========================================================================


@dataclass
class Principal:
    arn: str                       # as AWS names the caller in messages
    principal_arn: str             # aws:PrincipalArn
    account: str
    policy_sets: list[list[tuple[str, Any]]]  # one set per role (approval: two)
    session_name: str | None = None
    role_arns: list[str] = field(default_factory=list)

    def context(self) -> dict[str, Any]:
        ctx: dict[str, Any] = {"aws:PrincipalArn": self.principal_arn,
                               "aws:PrincipalAccount": self.account}
        if ":user/" in self.principal_arn:
            ctx["aws:PrincipalType"] = "User"
            ctx["aws:username"] = self.principal_arn.rsplit("/", 1)[-1]
        else:
            ctx["aws:PrincipalType"] = "AssumedRole"
        return ctx


def _iam(account: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account]["aws"]


def role_by_arn(role_arn: str) -> Any | None:
    match = re.match(r"arn:aws[\w-]*:iam::(\d{12}):role/(?:.*/)?([^/]+)$", role_arn or "")
    if not match:
        return None
    try:
        return _iam(match.group(1)).get_role(match.group(2))
    except Exception:
        return None


def role_policies(role: Any) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = [(f"{role.name}:{n}", d) for n, d in list(role.policies.items())]
    for arn, managed in list(role.managed_policies.items()):
        version = next((v for v in managed.versions if v.is_default), None)
        if version is not None:
            found.append((f"{role.name}:{arn}", version.document))
    return found


def _role_arn(role: Any) -> str:
    return role.arn


def function_principal(binary: str) -> Principal | None:
    """The role(s) of the functions whose Handler is `binary`: the
    orchestrator's, or else those of the environment accounts (the MySQL
    agent, one per environment account, all served by one binary here)."""
    from moto.awslambda.models import lambda_backends

    def functions(account: str, region: str) -> list[tuple[str, Any]]:
        try:
            backend = lambda_backends[account][region]
        except Exception:
            return []
        found = []
        for fn in list(backend.list_functions()):
            if (fn.handler or "").strip() == binary:
                role = role_by_arn(fn.role)
                if role is not None:
                    found.append((fn.function_name, role))
        return found

    roles = functions(ORCH_ACCOUNT, ORCH_REGION)
    account = ORCH_ACCOUNT
    if not roles:
        # One process answers for every environment's agent, so a call
        # passes if any of their roles allows it (in AWS each agent has its
        # own role in its own account: documented looseness, as for the two
        # approval functions).
        for acct, by_region in list(lambda_backends.items()):
            if acct == ORCH_ACCOUNT:
                continue
            for region in list(by_region.keys()):
                found = functions(acct, region)
                if found and not roles:
                    account = acct
                roles.extend(found)
    if not roles:
        return None
    roles.sort(key=lambda r: (r[0] != f"stepdeploy-{binary}", r[0]))
    first_fn, first_role = roles[0]
    return Principal(
        arn=f"arn:aws:sts::{account}:assumed-role/{first_role.name}/{first_fn}",
        principal_arn=_role_arn(first_role), account=account,
        policy_sets=[role_policies(r) for _, r in roles], session_name=first_fn,
        role_arns=[_role_arn(r) for _, r in roles])


def assumed_principal(key: str) -> Principal | None:
    from moto.sts.models import sts_backends

    for account, by_partition in list(sts_backends.items()):
        for backend in list(by_partition.values()):
            assumed = backend.get_assumed_role_from_access_key(key)
            if assumed is None:
                continue
            role = role_by_arn(assumed.role_arn)
            match = re.match(r"arn:aws[\w-]*:iam::(\d{12}):role/", assumed.role_arn)
            role_account = match.group(1) if match else assumed.account_id
            name = assumed.role_arn.rsplit("/", 1)[-1]
            return Principal(
                arn=f"arn:aws:sts::{role_account}:assumed-role/{name}/{assumed.session_name}",
                principal_arn=role.arn if role is not None else assumed.role_arn,
                account=role_account,
                policy_sets=[role_policies(role) if role is not None else []],
                session_name=assumed.session_name, role_arns=[assumed.role_arn])
    return None


def resolve_principal(key: str) -> Principal | None:
    if key == OPERATOR_KEY:
        return Principal(arn=OPERATOR_ARN, principal_arn=OPERATOR_ARN, account=ORCH_ACCOUNT,
                         policy_sets=[[("operator:AdministratorAccess", ADMIN_POLICY)]])
    if key.startswith(FUNCTION_KEY_PREFIX):
        return function_principal(key[len(FUNCTION_KEY_PREFIX):])
    return assumed_principal(key)


# ==========================================================================
# Request -> (action, resource, context) mapping
# ==========================================================================


@dataclass
class Check:
    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)


class Unmapped(Exception):
    pass


@dataclass
class Request:
    service: str          # SigV4 signing name
    operation: str        # API name (X-Amz-Target / Action=) or "METHOD path" for REST
    protocol: str
    region: str
    account: str          # the caller's account
    environ: dict[str, Any]
    body: bytes
    params: dict[str, Any]     # JSON body, query params (flattened) or {}
    query: dict[str, list[str]]
    path: list[str]

    def arn(self, service: str, resource: str, region: str | None = None,
            account: str | None = None) -> str:
        return (f"arn:aws:{service}:{self.region if region is None else region}:"
                f"{self.account if account is None else account}:{resource}")

    def header(self, name: str) -> str:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"), "")


def _members(params: dict[str, Any], prefix: str) -> list[str]:
    """Query-protocol list values: Prefix.member.N (in N order)."""
    found = []
    for k, v in params.items():
        m = re.fullmatch(re.escape(prefix) + r"\.member\.(\d+)", k)
        if m:
            found.append((int(m.group(1)), v))
    return [v for _, v in sorted(found)]


def _query_tags(params: dict[str, Any], prefix: str = "Tags") -> dict[str, str]:
    tags: dict[str, str] = {}
    for k, v in params.items():
        m = re.fullmatch(re.escape(prefix) + r"\.member\.(\d+)\.Key", k)
        if m:
            tags[v] = params.get(f"{prefix}.member.{m.group(1)}.Value", "")
    return tags


def _json_tags(value: Any, key: str = "key", val: str = "value") -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    tags = {}
    for t in as_list(value):
        if isinstance(t, dict):
            k = t.get(key, t.get(key.capitalize()))
            if k is not None:
                tags[str(k)] = str(t.get(val, t.get(val.capitalize(), "")))
    return tags


def _tag_context(tags: dict[str, str]) -> dict[str, Any]:
    ctx: dict[str, Any] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    if tags:
        ctx["aws:TagKeys"] = list(tags)
    return ctx


# ---- per-service resource helpers ---------------------------------------


def _ecs_cluster(req: Request, value: str | None) -> str:
    value = value or "default"
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


def _ecs_service_arn(req: Request, cluster: str | None, service: str) -> str:
    if service.startswith("arn:"):
        parts = service.split(":", 5)[5].split("/")
        if len(parts) == 3:
            return service
        return req.arn("ecs", f"service/{_ecs_cluster(req, cluster)}/{parts[-1]}")
    return req.arn("ecs", f"service/{_ecs_cluster(req, cluster)}/{service}")


def _ecs_resource_tags(req: Request, arn: str) -> dict[str, Any]:
    try:
        from moto.ecs.models import ecs_backends

        tags = ecs_backends[req.account][req.region].list_tags_for_resource(arn)
        return {f"aws:ResourceTag/{t['key']}": t["value"] for t in tags or []}
    except Exception:
        return {}


def _next_revision(req: Request, family: str) -> int:
    try:
        from moto.ecs.models import ecs_backends

        defs = ecs_backends[req.account][req.region].task_definitions.get(family, {})
        return (max(defs) if defs else 0) + 1
    except Exception:
        return 1


def map_ecs(req: Request) -> list[Check]:
    p, op = req.params, req.operation
    a = f"ecs:{op}"
    if op == "RegisterTaskDefinition":
        family = p.get("family", "")
        arn = req.arn("ecs", f"task-definition/{family}:{_next_revision(req, family)}")
        tags = _json_tags(p.get("tags"))
        checks = [Check(a, arn, _tag_context(tags))]
        for key in ("executionRoleArn", "taskRoleArn"):
            if p.get(key):
                checks.append(Check("iam:PassRole", p[key],
                                    {"iam:PassedToService": "ecs-tasks.amazonaws.com"}))
        if tags:
            checks.append(Check("ecs:TagResource", arn,
                                {"ecs:CreateAction": "RegisterTaskDefinition", **_tag_context(tags)}))
        return checks
    if op in ("DescribeTaskDefinition", "DeregisterTaskDefinition", "ListTaskDefinitions",
              "ListTaskDefinitionFamilies", "ListClusters", "DescribeCapacityProviders",
              "CreateCluster", "ListAccountSettings"):
        return [Check(a, "*")]
    if op == "CreateService":
        arn = _ecs_service_arn(req, p.get("cluster"), p.get("serviceName", ""))
        tags = _json_tags(p.get("tags"))
        cluster = req.arn("ecs", f"cluster/{_ecs_cluster(req, p.get('cluster'))}")
        checks = [Check(a, arn, {"ecs:cluster": cluster, **_tag_context(tags)})]
        if p.get("role"):
            checks.append(Check("iam:PassRole", p["role"], {"iam:PassedToService": "ecs.amazonaws.com"}))
        if tags:
            checks.append(Check("ecs:TagResource", arn,
                                {"ecs:CreateAction": "CreateService", **_tag_context(tags)}))
        return checks
    if op in ("UpdateService", "DeleteService"):
        arn = _ecs_service_arn(req, p.get("cluster"), p.get("service", ""))
        cluster = req.arn("ecs", f"cluster/{_ecs_cluster(req, p.get('cluster'))}")
        return [Check(a, arn, {"ecs:cluster": cluster, **_ecs_resource_tags(req, arn)})]
    if op == "DescribeServices":
        cluster = req.arn("ecs", f"cluster/{_ecs_cluster(req, p.get('cluster'))}")
        return [Check(a, _ecs_service_arn(req, p.get("cluster"), s), {"ecs:cluster": cluster})
                for s in as_list(p.get("services"))] or [Check(a, "*")]
    if op == "ListServices":
        return [Check(a, req.arn("ecs", f"cluster/{_ecs_cluster(req, p.get('cluster'))}"))]
    if op == "DescribeClusters":
        return [Check(a, req.arn("ecs", f"cluster/{_ecs_cluster(req, c)}"))
                for c in as_list(p.get("clusters")) or ["default"]]
    if op in ("ListTagsForResource", "TagResource", "UntagResource"):
        return [Check(a, p.get("resourceArn", "*"))]
    if op in ("ListTasks", "DescribeTasks"):
        return [Check(a, "*")]
    raise Unmapped(a)


def _elb_rule_prefix(listener_arn: str) -> str:
    head, _, tail = listener_arn.partition(":listener/")
    return f"{head}:listener-rule/{tail}"


def _elb_tags(req: Request, arn: str) -> dict[str, Any]:
    try:
        from moto.elbv2.models import elbv2_backends

        tags = elbv2_backends[req.account][req.region].tagging_service.get_tag_dict_for_resource(arn)
        return {f"aws:ResourceTag/{k}": v for k, v in tags.items()}
    except Exception:
        return {}


def map_elbv2(req: Request) -> list[Check]:
    p, op = req.params, req.operation
    a = f"elasticloadbalancing:{op}"
    if op.startswith("Describe"):
        return [Check(a, "*")]
    if op == "CreateTargetGroup":
        arn = req.arn("elasticloadbalancing", f"targetgroup/{p.get('Name', '')}/0000000000000000")
        tags = _query_tags(p)
        checks = [Check(a, arn, _tag_context(tags))]
        if tags:
            checks.append(Check("elasticloadbalancing:AddTags", arn, {
                "elasticloadbalancing:CreateAction": "CreateTargetGroup", **_tag_context(tags)}))
        return checks
    if op in ("ModifyTargetGroup", "DeleteTargetGroup", "RegisterTargets", "DeregisterTargets",
              "ModifyTargetGroupAttributes"):
        arn = p.get("TargetGroupArn", "")
        return [Check(a, arn, _elb_tags(req, arn))]
    if op == "CreateRule":
        listener = p.get("ListenerArn", "")
        rule = f"{_elb_rule_prefix(listener)}/0000000000000000"
        tags = _query_tags(p)
        checks = [Check(a, listener, _tag_context(tags))]
        if tags:
            checks.append(Check("elasticloadbalancing:AddTags", rule, {
                "elasticloadbalancing:CreateAction": "CreateRule", **_tag_context(tags)}))
        return checks
    if op in ("ModifyRule", "DeleteRule"):
        arn = p.get("RuleArn", "")
        return [Check(a, arn, _elb_tags(req, arn))]
    if op == "SetRulePriorities":
        arns = [v for k, v in sorted(p.items()) if re.fullmatch(r"RulePriorities\.member\.\d+\.RuleArn", k)]
        return [Check(a, r, _elb_tags(req, r)) for r in arns] or [Check(a, "*")]
    if op in ("AddTags", "RemoveTags"):
        return [Check(a, r, _tag_context(_query_tags(p))) for r in _members(p, "ResourceArns")]
    if op in ("CreateListener", "ModifyListener", "DeleteListener"):
        return [Check(a, p.get("ListenerArn") or p.get("LoadBalancerArn", "*"))]
    raise Unmapped(a)


def _efs_access_point_tags(req: Request, ap_id: str) -> dict[str, Any]:
    try:
        from moto.efs.models import efs_backends

        backend = efs_backends[req.account][req.region]
        ap = backend.access_points.get(ap_id)
        tags = backend.list_tags_for_resource(ap_id) if ap is not None else []
        return {f"aws:ResourceTag/{t['Key']}": t["Value"] for t in tags or []}
    except Exception:
        return {}


def map_efs(req: Request) -> list[Check]:
    method = req.environ.get("REQUEST_METHOD", "GET")
    path = [x for x in req.path if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", x)]
    fs = lambda i: req.arn("elasticfilesystem", f"file-system/{i}")  # noqa: E731
    ap = lambda i: req.arn("elasticfilesystem", f"access-point/{i}")  # noqa: E731
    q = {k: v[0] for k, v in req.query.items()}
    if path[:1] == ["access-points"]:
        if method == "POST" and len(path) == 1:
            body = json.loads(req.body or b"{}")
            tags = _json_tags(body.get("Tags"), "Key", "Value")
            checks = [Check("elasticfilesystem:CreateAccessPoint", fs(body.get("FileSystemId", "")),
                            _tag_context(tags))]
            if tags:
                checks.append(Check("elasticfilesystem:TagResource", ap("fsap-00000000000000000"), {
                    "elasticfilesystem:CreateAction": "CreateAccessPoint", **_tag_context(tags)}))
            return checks
        if method == "GET" and len(path) == 1:
            if q.get("AccessPointId"):
                return [Check("elasticfilesystem:DescribeAccessPoints", ap(q["AccessPointId"]))]
            if q.get("FileSystemId"):
                return [Check("elasticfilesystem:DescribeAccessPoints", fs(q["FileSystemId"]))]
            return [Check("elasticfilesystem:DescribeAccessPoints", "*")]
        if method == "DELETE" and len(path) == 2:
            return [Check("elasticfilesystem:DeleteAccessPoint", ap(path[1]),
                          _efs_access_point_tags(req, path[1]))]
    if path[:1] == ["file-systems"] and method == "GET" and len(path) == 1:
        target = q.get("FileSystemId")
        return [Check("elasticfilesystem:DescribeFileSystems", fs(target) if target else "*")]
    if path[:1] == ["resource-tags"] and len(path) == 2:
        rid = path[1]
        arn = ap(rid) if rid.startswith("fsap-") else fs(rid)
        action = {"POST": "TagResource", "DELETE": "UntagResource"}.get(method, "ListTagsForResource")
        return [Check(f"elasticfilesystem:{action}", arn)]
    raise Unmapped(f"elasticfilesystem {method} /{'/'.join(path)}")


def _secret_arn(req: Request, secret_id: str) -> tuple[str, dict[str, Any]]:
    # A secret named that does not exist: AWS authorises against the name
    # without the random suffix (a "-??????" pattern then refuses the call).
    arn = secret_id if secret_id.startswith("arn:") else req.arn("secretsmanager", f"secret:{secret_id}")
    try:
        from moto.secretsmanager.models import secretsmanager_backends

        backend = secretsmanager_backends[req.account][req.region]
        secret = backend.secrets.get(secret_id)
        if secret is not None:
            tags = {f"aws:ResourceTag/{t['Key']}": t["Value"] for t in (secret.tags or [])}
            return secret.arn, tags
    except Exception:
        pass
    return arn, {}


def map_secretsmanager(req: Request) -> list[Check]:
    p, op = req.params, req.operation
    a = f"secretsmanager:{op}"
    if op == "CreateSecret":
        arn = req.arn("secretsmanager", f"secret:{p.get('Name', '')}-000000")
        tags = _json_tags(p.get("Tags"), "Key", "Value")
        checks = [Check(a, arn, _tag_context(tags))]
        if tags:
            checks.append(Check("secretsmanager:TagResource", arn, _tag_context(tags)))
        return checks
    if op in ("ListSecrets", "GetRandomPassword", "BatchGetSecretValue"):
        return [Check(a, "*")]
    if "SecretId" in p:
        arn, ctx = _secret_arn(req, p["SecretId"])
        if op == "TagResource":
            ctx = {**ctx, **_tag_context(_json_tags(p.get("Tags"), "Key", "Value"))}
        return [Check(a, arn, ctx)]
    raise Unmapped(a)


def _iam_role_arn(req: Request, name: str) -> str:
    try:
        return _iam(req.account).get_role(name).arn
    except Exception:
        return f"arn:aws:iam::{req.account}:role/{name}"


def map_iam(req: Request) -> list[Check]:
    p, op = req.params, req.operation
    a = f"iam:{op}"
    if op.startswith("List") and "RoleName" not in p or op in ("GetAccountSummary",):
        return [Check(a, "*")]
    if "RoleName" in p:
        return [Check(a, _iam_role_arn(req, p["RoleName"]))]
    if "PolicyArn" in p:
        return [Check(a, p["PolicyArn"])]
    if op == "CreatePolicy":
        return [Check(a, f"arn:aws:iam::{req.account}:policy{p.get('Path', '/')}{p.get('PolicyName', '')}")]
    raise Unmapped(a)


def map_sts(req: Request) -> list[Check]:
    op = req.operation
    if op == "GetCallerIdentity":
        return []  # no permission needed, AWS answers every caller
    if op == "AssumeRole":
        return [Check("sts:AssumeRole", req.params.get("RoleArn", ""))]
    raise Unmapped(f"sts:{op}")


def _dynamo_table(req: Request, name: str) -> str:
    return name if name.startswith("arn:") else req.arn("dynamodb", f"table/{name}")


def map_dynamodb(req: Request) -> list[Check]:
    p, op = req.params, req.operation
    a = f"dynamodb:{op}"
    if op in ("ListTables", "DescribeLimits", "DescribeEndpoints"):
        return [Check(a, "*")]
    if op == "TransactWriteItems":
        kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                 "ConditionCheck": "ConditionCheckItem"}
        checks = []
        for item in as_list(p.get("TransactItems")):
            for kind, body in item.items():
                checks.append(Check(f"dynamodb:{kinds.get(kind, kind)}",
                                    _dynamo_table(req, body.get("TableName", ""))))
        return checks
    if op == "TransactGetItems":
        return [Check("dynamodb:GetItem", _dynamo_table(req, body.get("TableName", "")))
                for item in as_list(p.get("TransactItems")) for body in item.values()]
    if op == "BatchWriteItem":
        checks = []
        for table, writes in (p.get("RequestItems") or {}).items():
            for w in writes:
                for kind in w:
                    checks.append(Check("dynamodb:PutItem" if kind == "PutRequest" else "dynamodb:DeleteItem",
                                        _dynamo_table(req, table)))
        return checks
    if op == "BatchGetItem":
        return [Check("dynamodb:BatchGetItem", _dynamo_table(req, t)) for t in (p.get("RequestItems") or {})]
    if op in ("TagResource", "UntagResource", "ListTagsOfResource"):
        return [Check(a, p.get("ResourceArn", ""))]
    if "TableName" in p:
        table = _dynamo_table(req, p["TableName"])
        if op in ("Query", "Scan") and p.get("IndexName"):
            table = f"{table}/index/{p['IndexName']}"
        checks = [Check(a, table)]
        if op == "CreateTable" and p.get("Tags"):
            tags = _json_tags(p["Tags"], "Key", "Value")
            checks = [Check(a, table, _tag_context(tags)),
                      Check("dynamodb:TagResource", table, _tag_context(tags))]
        return checks
    raise Unmapped(a)


def map_logs(req: Request) -> list[Check]:
    p, op = req.params, req.operation
    a = f"logs:{op}"
    group = p.get("logGroupName") or p.get("logGroupIdentifier")
    if op in ("DescribeLogGroups",):
        return [Check(a, req.arn("logs", "log-group:*"))]
    if group:
        if group.startswith("arn:"):
            base = group[:-2] if group.endswith(":*") else group
        else:
            base = req.arn("logs", f"log-group:{group}")
        if op in ("PutLogEvents", "CreateLogStream", "GetLogEvents") and p.get("logStreamName"):
            return [Check(a, f"{base}:log-stream:{p['logStreamName']}")]
        return [Check(a, f"{base}:*")]
    raise Unmapped(a)


def map_sns(req: Request) -> list[Check]:
    p, op = req.params, req.operation
    a = f"sns:{op}"
    if op in ("ListTopics", "ListSubscriptions"):
        return [Check(a, "*")]
    if op == "CreateTopic":
        return [Check(a, req.arn("sns", p.get("Name", "")), _tag_context(_query_tags(p)))]
    target = p.get("TopicArn") or p.get("TargetArn") or p.get("ResourceArn")
    if target:
        return [Check(a, target)]
    raise Unmapped(a)


def map_states(req: Request) -> list[Check]:
    p, op = req.params, req.operation
    a = f"states:{op}"
    if op in ("ListStateMachines", "SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat",
              "ListActivities", "CreateStateMachine"):
        return [Check(a, "*")]
    if op in ("StartExecution", "StartSyncExecution", "ListExecutions", "DescribeStateMachine"):
        return [Check(a, p.get("stateMachineArn", ""))]
    for key in ("executionArn", "stateMachineArn", "resourceArn", "mapRunArn"):
        if p.get(key):
            return [Check(a, p[key])]
    raise Unmapped(a)


def map_events(req: Request) -> list[Check]:
    p, op = req.params, req.operation
    a = f"events:{op}"
    bus_arn = lambda b: b if (b or "").startswith("arn:") else req.arn(  # noqa: E731
        "events", f"event-bus/{b or 'default'}")
    if op == "PutEvents":
        buses = dict.fromkeys(bus_arn(e.get("EventBusName")) for e in as_list(p.get("Entries")))
        return [Check(a, b) for b in buses] or [Check(a, bus_arn(None))]
    if op in ("ListEventBuses", "ListRules"):
        return [Check(a, "*")]
    if op in ("DescribeEventBus", "CreateEventBus"):
        return [Check(a, bus_arn(p.get("Name")))]
    if "Rule" in p or "Name" in p:
        bus = p.get("EventBusName") or "default"
        name = p.get("Rule") or p.get("Name")
        prefix = "" if bus == "default" else f"{bus}/"
        return [Check(a, req.arn("events", f"rule/{prefix}{name}"))]
    raise Unmapped(a)


def map_lambda(req: Request) -> list[Check]:
    method = req.environ.get("REQUEST_METHOD", "GET")
    path = req.path
    if len(path) >= 3 and path[1] == "functions":
        name = urllib.parse.unquote(path[2])
        arn = name if name.startswith("arn:") else req.arn("lambda", f"function:{name}")
        rest = path[3:]
        if rest == ["invocations"] and method == "POST":
            return [Check("lambda:InvokeFunction", arn)]
        if not rest and method == "GET":
            return [Check("lambda:GetFunction", arn)]
        if rest == ["configuration"] and method == "GET":
            return [Check("lambda:GetFunctionConfiguration", arn)]
    if len(path) == 2 and path[1] == "functions" and method == "GET":
        return [Check("lambda:ListFunctions", "*")]
    raise Unmapped(f"lambda {method} /{'/'.join(path)}")


def _route53_change_context(body: bytes) -> dict[str, Any]:
    names, types, actions = [], [], []
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return {}
    for change in root.iter():
        if not change.tag.endswith("}Change") and change.tag != "Change":
            continue
        for child in change:
            tag = child.tag.rsplit("}", 1)[-1]
            if tag == "Action":
                actions.append((child.text or "").strip())
            if tag == "ResourceRecordSet":
                for rr in child:
                    rtag = rr.tag.rsplit("}", 1)[-1]
                    if rtag == "Name":
                        names.append((rr.text or "").strip().rstrip(".").lower())
                    if rtag == "Type":
                        types.append((rr.text or "").strip())
    return {"route53:ChangeResourceRecordSetsNormalizedRecordNames": names,
            "route53:ChangeResourceRecordSetsRecordTypes": types,
            "route53:ChangeResourceRecordSetsActions": actions}


def map_route53(req: Request) -> list[Check]:
    method = req.environ.get("REQUEST_METHOD", "GET")
    path = [x for x in req.path if x != "2013-04-01"]
    zone = lambda z: f"arn:aws:route53:::hostedzone/{z}"  # noqa: E731
    if path == ["hostedzone"]:
        return [Check("route53:ListHostedZones" if method == "GET" else "route53:CreateHostedZone", "*")]
    if path == ["hostedzonesbyname"]:
        return [Check("route53:ListHostedZonesByName", "*")]
    if len(path) == 2 and path[0] == "hostedzone" and method == "GET":
        return [Check("route53:GetHostedZone", zone(path[1]))]
    if len(path) == 3 and path[0] == "hostedzone" and path[2] == "rrset":
        if method == "POST":
            return [Check("route53:ChangeResourceRecordSets", zone(path[1]),
                          _route53_change_context(req.body))]
        return [Check("route53:ListResourceRecordSets", zone(path[1]))]
    if len(path) == 2 and path[0] == "change":
        return [Check("route53:GetChange", f"arn:aws:route53:::change/{path[1]}")]
    raise Unmapped(f"route53 {method} /{'/'.join(path)}")


S3_BUCKET_SUBRESOURCES = {
    ("GET", "versioning"): "GetBucketVersioning", ("PUT", "versioning"): "PutBucketVersioning",
    ("GET", "encryption"): "GetEncryptionConfiguration",
    ("PUT", "encryption"): "PutEncryptionConfiguration",
    ("DELETE", "encryption"): "PutEncryptionConfiguration",
    ("GET", "publicAccessBlock"): "GetBucketPublicAccessBlock",
    ("PUT", "publicAccessBlock"): "PutBucketPublicAccessBlock",
    ("DELETE", "publicAccessBlock"): "PutBucketPublicAccessBlock",
    ("GET", "tagging"): "GetBucketTagging", ("PUT", "tagging"): "PutBucketTagging",
    ("GET", "location"): "GetBucketLocation", ("GET", "policy"): "GetBucketPolicy",
    ("PUT", "policy"): "PutBucketPolicy", ("GET", "versions"): "ListBucketVersions",
    ("GET", "list-type"): "ListBucket", ("GET", "lifecycle"): "GetLifecycleConfiguration",
    ("PUT", "lifecycle"): "PutLifecycleConfiguration",
}


def map_s3(req: Request) -> list[Check]:
    method = req.environ.get("REQUEST_METHOD", "GET")
    path = [urllib.parse.unquote(x) for x in req.environ.get("PATH_INFO", "").split("/")]
    path = [x for x in path if x != ""] if len(path) <= 2 else path[1:]
    if not path:
        return [Check("s3:ListAllMyBuckets", "*")]
    bucket, key = path[0], "/".join(path[1:]) if len(path) > 1 else ""
    # The AWS SDKs add ?x-id=<Operation> to operations that share a URI.
    q = {k: v for k, v in req.query.items() if k != "x-id"}
    b = f"arn:aws:s3:::{bucket}"
    if not key:
        for name in q:
            action = S3_BUCKET_SUBRESOURCES.get((method, name))
            if action:
                return [Check(f"s3:{action}", b)]
        if method == "POST" and "delete" in q:
            try:
                root = ET.fromstring(req.body)
                keys = [e.text or "" for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Key"]
            except ET.ParseError:
                keys = []
            return [Check("s3:DeleteObject", f"{b}/{k}") for k in keys] or [Check("s3:DeleteObject", f"{b}/*")]
        if method in ("GET", "HEAD") and not q or (method == "GET" and set(q) <= {
                "prefix", "delimiter", "max-keys", "marker", "encoding-type", "list-type",
                "continuation-token", "start-after", "fetch-owner"}):
            return [Check("s3:ListBucket", b)]
        if method == "PUT" and not q:
            return [Check("s3:CreateBucket", b)]
        if method == "DELETE" and not q:
            return [Check("s3:DeleteBucket", b)]
        raise Unmapped(f"s3 {method} bucket?{'&'.join(q)}")
    o = f"{b}/{key}"
    version = q.get("versionId", [None])[0]
    if method in ("GET", "HEAD") and not (set(q) - {"versionId", "partNumber", "response-content-type"}):
        return [Check("s3:GetObjectVersion" if version else "s3:GetObject", o)]
    if method == "GET" and "tagging" in q:
        return [Check("s3:GetObjectVersionTagging" if version else "s3:GetObjectTagging", o)]
    if method == "PUT" and not q:
        checks = [Check("s3:PutObject", o)]
        source = urllib.parse.unquote(req.header("x-amz-copy-source"))
        if source:
            src, _, src_q = source.lstrip("/").partition("?")
            src_version = urllib.parse.parse_qs(src_q).get("versionId")
            checks.append(Check("s3:GetObjectVersion" if src_version else "s3:GetObject",
                                f"arn:aws:s3:::{src}"))
        if req.header("x-amz-tagging"):
            checks.append(Check("s3:PutObjectTagging", o))
        return checks
    if method == "PUT" and "tagging" in q:
        return [Check("s3:PutObjectTagging", o)]
    if method == "DELETE" and not (set(q) - {"versionId"}):
        return [Check("s3:DeleteObjectVersion" if version else "s3:DeleteObject", o)]
    raise Unmapped(f"s3 {method} object?{'&'.join(q)}")


def map_cloudfront(req: Request) -> list[Check]:
    method = req.environ.get("REQUEST_METHOD", "GET")
    path = [x for x in req.path if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", x)]
    dist = lambda d: f"arn:aws:cloudfront::{req.account}:distribution/{d}"  # noqa: E731
    if path == ["distribution"] and method == "GET":
        return [Check("cloudfront:ListDistributions", "*")]
    if len(path) == 2 and path[0] == "distribution" and method == "GET":
        return [Check("cloudfront:GetDistribution", dist(path[1]))]
    if len(path) == 3 and path[0] == "distribution" and path[2] == "invalidation" and method == "POST":
        return [Check("cloudfront:CreateInvalidation", dist(path[1]))]
    raise Unmapped(f"cloudfront {method} /{'/'.join(path)}")


def map_tag(req: Request) -> list[Check]:
    if req.operation in ("GetResources", "GetTagKeys", "GetTagValues"):
        return [Check(f"tag:{req.operation}", "*")]
    raise Unmapped(f"tag:{req.operation}")


def map_sqs(req: Request) -> list[Check]:
    p, op = req.params, req.operation
    a = f"sqs:{op}"
    if op in ("ListQueues",):
        return [Check(a, "*")]
    url = p.get("QueueUrl", "")
    if url:
        name = url.rstrip("/").rsplit("/", 1)[-1]
        return [Check(a, req.arn("sqs", name))]
    if op in ("GetQueueUrl", "CreateQueue"):
        return [Check(a, req.arn("sqs", p.get("QueueName", "")))]
    raise Unmapped(a)


# Signing name -> mapper.  The calls stepdeploy's code makes (grep '.send()'
# in functions/ and cli/) are each mapped; so are the read-only calls the
# fault checks of stack/tests make.  A call not in these tables is refused with
# "local IAM: no mapping for ...".
MAPPING: dict[str, Callable[[Request], list[Check]]] = {
    "ecs": map_ecs, "elasticloadbalancing": map_elbv2, "elasticfilesystem": map_efs,
    "secretsmanager": map_secretsmanager, "iam": map_iam, "sts": map_sts,
    "dynamodb": map_dynamodb, "logs": map_logs, "sns": map_sns, "states": map_states,
    "events": map_events, "lambda": map_lambda, "route53": map_route53, "s3": map_s3,
    "cloudfront": map_cloudfront, "tagging": map_tag, "tag": map_tag, "sqs": map_sqs,
}


def build_request(environ: dict[str, Any], body: bytes, account: str) -> Request:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/", auth)
    region, service = (m.group(1), m.group(2)) if m else (ORCH_REGION, "unknown")
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    path = [p for p in environ.get("PATH_INFO", "").split("/") if p]
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    params: dict[str, Any] = {}
    if target:
        operation, protocol = target.rsplit(".", 1)[-1], "json"
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
    else:
        flat = dict(query)
        if "Action" not in flat and environ.get("CONTENT_TYPE", "").startswith(
                "application/x-www-form-urlencoded"):
            flat = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        if "Action" in flat:
            params = {k: v[0] for k, v in flat.items()}
            operation, protocol = params["Action"], "query"
        else:
            operation = f"{environ.get('REQUEST_METHOD', 'GET')} /{'/'.join(path)}"
            protocol = {"s3": "s3", "route53": "route53"}.get(service, "rest-json")
    return Request(service, operation, protocol, region, account, environ, body, params, query, path)


# ==========================================================================
# STS AssumeRole: trust policy
# ==========================================================================


def principal_matches(spec: Any, caller: Principal) -> bool:
    """Does a trust policy's Principal element name the caller?"""
    if spec == "*":
        return True
    if not isinstance(spec, dict):
        return False
    for value in as_list(spec.get("AWS")):
        value = str(value)
        if value == "*":
            return True
        m = re.fullmatch(r"(\d{12})|arn:aws[\w-]*:iam::(\d{12}):root", value)
        if m:
            if (m.group(1) or m.group(2)) == caller.account:
                return True
            continue
        if value in (caller.principal_arn, caller.arn) or value in caller.role_arns:
            return True
    return False


def _account_only(spec: Any) -> bool:
    values = [str(v) for v in as_list(spec.get("AWS"))] if isinstance(spec, dict) else []
    return bool(values) and all(re.fullmatch(r"\d{12}|arn:aws[\w-]*:iam::\d{12}:root", v) for v in values)


def trust_decision(role: Any, caller: Principal, context: dict[str, Any]) -> tuple[bool, bool]:
    """(allowed, by an account-only Principal) for sts:AssumeRole on `role`."""
    doc = role.assume_role_policy_document
    doc = json.loads(doc) if isinstance(doc, str) else doc
    allowed = account_only = False
    for st in as_list((doc or {}).get("Statement")):
        if not principal_matches(st.get("Principal"), caller):
            continue
        if not any(action_matches(p, "sts:AssumeRole") for p in as_list(st.get("Action"))):
            continue
        if not conditions_hold(st.get("Condition"), context):
            continue
        if st.get("Effect") == "Deny":
            return False, False
        allowed = True
        account_only = account_only or _account_only(st.get("Principal"))
    return allowed, account_only


def identity_allows(caller: Principal, action: str, resource: str,
                    context: dict[str, Any]) -> Decision:
    """Any of the caller's policy sets (one per role; two for the approval binary) allows."""
    last = Decision(False)
    for policies in caller.policy_sets:
        decision = evaluate(policies, action, resource, context)
        if decision.allowed:
            return decision
        if decision.explicit_deny:
            last = decision
    return last


def authorize_assume_role(caller: Principal, req: Request) -> str | None:
    """None when AWS would let `caller` assume the role, else the AccessDenied message."""
    role_arn = req.params.get("RoleArn", "")
    context = {**caller.context(), "sts:RoleSessionName": req.params.get("RoleSessionName", "")}
    if req.params.get("ExternalId") is not None:
        context["sts:ExternalId"] = req.params["ExternalId"]
    denied = (f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: "
              f"{role_arn}")
    role = role_by_arn(role_arn)
    if role is None or role.arn != role_arn and not _same_role(role.arn, role_arn):
        return denied
    identity = identity_allows(caller, "sts:AssumeRole", role_arn, context)
    trusted, account_only = trust_decision(role, caller, context)
    if identity.explicit_deny or not trusted:
        return denied
    same_account = role.account_id == caller.account
    if not identity.allowed and (not same_account or account_only):
        return denied
    return None


def _same_role(actual: str, given: str) -> bool:
    # AWS matches the ARN as given; a path-less ARN for a role with a path is another role.
    return actual == given


# ==========================================================================
# Middleware
# ==========================================================================


class IamEnforcer:
    """WSGI middleware: authorises stepdeploy's calls (User-Agent aws-sdk-rust)."""

    def __init__(self, app: Callable, error_response: Callable[[str, str, str], tuple[int, list, bytes]],
                 audit: bool | None = None) -> None:
        self.app = app
        self.error_response = error_response
        self.audit = os.environ.get(AUDIT_ENV, "") not in ("", "0") if audit is None else audit
        self.lock = threading.Lock()
        self.stats = {"checked": 0, "denied": 0}
        self.denials: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/__stepdeploy__/iam"):
            return self.control(environ, start_response)
        agent = environ.get("HTTP_USER_AGENT", "") + environ.get("HTTP_X_AMZ_USER_AGENT", "")
        on_behalf = environ.get("HTTP_" + ON_BEHALF_HEADER.upper().replace("-", "_")) == ON_BEHALF_STATES
        if path.startswith("/moto-api") or ("aws-sdk-rust" not in agent and not on_behalf):
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        refusal = self.authorize(environ, body)
        if refusal is None:
            return self.app(environ, start_response)
        protocol, message, service = refusal
        with self.lock:
            self.stats["denied"] += 1
            if len(self.denials) < 2000:
                self.denials.append({"message": message})
        if self.audit:
            log(f"AUDIT would deny: {message}")
            return self.app(environ, start_response)
        log(f"denied: {message}")
        status, headers, answer = self.error_response(protocol, "error", _xml_escape(message)
                                                      if protocol not in ("json", "rest-json") else message)
        if service == "sns":  # SNS's own code for an authorisation failure
            answer = answer.replace(b"<Code>AccessDenied</Code>", b"<Code>AuthorizationError</Code>")
            headers = [(k, str(len(answer)) if k == "Content-Length" else v) for k, v in headers]
        headers = [(k, v) for k, v in headers if k != "x-stepdeploy-fault"] + [("x-stepdeploy-iam", "denied")]
        from http.client import responses

        start_response(f"{status} {responses.get(status, 'Error')}", headers)
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [answer]

    def authorize(self, environ: dict[str, Any], body: bytes) -> tuple[str, str, str] | None:
        """None if allowed, else (protocol, AccessDenied message, service)."""
        m = re.search(r"Credential=([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        key = m.group(1) if m else ""
        caller = resolve_principal(key)
        req = build_request(environ, body, caller.account if caller else ORCH_ACCOUNT)
        with self.lock:
            self.stats["checked"] += 1
        if caller is None and key.startswith(FUNCTION_KEY_PREFIX):
            binary = key[len(FUNCTION_KEY_PREFIX):]
            return req.protocol, (f"local IAM: access key {key!r}: no function of account "
                                  f"{ORCH_ACCOUNT} ({ORCH_REGION}) has Handler {binary!r} and a "
                                  "role that exists (is the stack seeded? a function crate needs "
                                  f'[package.metadata.lambda.env] AWS_ACCESS_KEY_ID = "{FUNCTION_KEY_PREFIX}<binary>")'), req.service
        if caller is None:
            return req.protocol, (f"local IAM: access key {key!r} belongs to no principal "
                                  f"(operator key {OPERATOR_KEY!r}, function keys "
                                  f"{FUNCTION_KEY_PREFIX}<binary> of a registered function, or "
                                  "keys from sts:AssumeRole)"), req.service
        mapper = MAPPING.get(req.service)
        try:
            if mapper is None:
                raise Unmapped(f"{req.service}:{req.operation}")
            checks = mapper(req)
        except Unmapped as e:
            return req.protocol, (f"local IAM: no mapping for {e} ({req.operation}), add one in "
                                  "local/stack/iam_enforce.py"), req.service
        if req.service == "sts" and req.operation == "AssumeRole":
            message = authorize_assume_role(caller, req)
            return None if message is None else (req.protocol, message, req.service)
        base = caller.context()
        for check in checks:
            context = {**base, **check.context}
            try:
                decision = identity_allows(caller, check.action, check.resource, context)
            except UnsupportedCondition as e:
                return req.protocol, f"local IAM: condition operator {e} is not modelled", req.service
            if not decision.allowed:
                why = ("with an explicit deny in an identity-based policy" if decision.explicit_deny
                       else f"because no identity-based policy allows the {check.action} action")
                return req.protocol, (f"User: {caller.arn} is not authorized to perform: "
                                      f"{check.action} on resource: {check.resource} {why}"), req.service
        return None

    def control(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        """GET /__stepdeploy__/iam: counts and the denials so far; DELETE resets them."""
        with self.lock:
            if environ.get("REQUEST_METHOD") == "DELETE":
                self.stats = {"checked": 0, "denied": 0}
                self.denials.clear()
            body = json.dumps({"audit": self.audit, **self.stats, "denials": self.denials},
                              indent=1).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
