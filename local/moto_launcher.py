"""Local stack: moto 5.2.5 server with the patches stepdeploy's pipeline needs.

Runs moto's werkzeug app in-process (so it can be patched) on 127.0.0.1:5000
until SIGTERM/SIGINT:

    python local/moto_launcher.py [--host 127.0.0.1] [--port 5000] \
        [--lambda-endpoint http://127.0.0.1:9000]

Readiness: GET http://127.0.0.1:5000/moto-api/ answers 200.

Stock moto cannot run the EventBridge -> Step Functions -> Lambda pipeline
without an AWS account or Docker; the patches below close the gaps.  Each one
logs a line at startup.  They patch moto internals, so they are tied to moto
5.2.5 (a warning is printed for any other version).

* Lambda functions are run by the Lambda emulator `cargo lambda watch`
  (--lambda-endpoint): the function's Handler is the binary name.  Function
  errors (emulator HTTP 500 with {"errorType", "errorMessage"}) reach callers
  as X-Amz-Function-Error: Unhandled, and Step Functions turns them into
  task failures whose Error is the errorType (Cause is the error payload JSON,
  as on AWS), so Retry/Catch on e.g. "ValidationFailed" work.
* EventBridge rules deliver to Step Functions (StartExecution) and Lambda
  (async invoke) targets, honouring Input / InputPath / InputTransformer.
* ECS services settle at once: one PRIMARY deployment, rollout COMPLETED,
  runningCount = desiredCount (the local stand-in for a healthy Fargate
  service).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

MOTO_VERSION = "5.2.5"
DEFAULT_LAMBDA_ENDPOINT = "http://127.0.0.1:9000"
# The emulator may compile the binary on its first invocation.
EMULATOR_TIMEOUT_S = 900

_lambda_endpoint = DEFAULT_LAMBDA_ENDPOINT


def log(msg: str) -> None:
    print(f"[moto_launcher] {msg}", flush=True)


# --------------------------------------------------------------------------
# Lambda emulator client (shared by Lambda Invoke and EventBridge targets)
# --------------------------------------------------------------------------


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def invoke_emulator(fn: Any, payload: bytes) -> tuple[bytes, bool]:
    """POST `payload` to the emulator for moto LambdaFunction `fn`.

    Returns (response body, is_function_error).  Every failure to get an
    answer is reported as a function error, so it is visible to the caller.
    """
    binary = (fn.handler or "").strip() or fn.function_name
    url = (
        f"{_lambda_endpoint.rstrip('/')}/2015-03-31/functions/"
        f"{urllib.parse.quote(binary, safe='')}/invocations"
    )
    request = urllib.request.Request(
        url,
        data=payload or b"{}",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=EMULATOR_TIMEOUT_S) as resp:
            body, status = resp.read(), resp.status
            errored = bool(resp.headers.get("X-Amz-Function-Error"))
    except urllib.error.HTTPError as e:
        body, status, errored = e.read(), e.code, True
        try:
            parsed = json.loads(body)
            well_formed = isinstance(parsed, dict) and "errorType" in parsed
        except ValueError:
            well_formed = False
        if not well_formed:
            text = body.decode("utf-8", "replace")[:2000]
            body = _error_payload(
                "Lambda.ServiceException",
                f"local Lambda emulator answered HTTP {status} for binary "
                f"'{binary}' ({url}): {text}",
            )
    except (TimeoutError, socket.timeout):
        status, errored = "timeout", True
        body = _error_payload(
            "Sandbox.Timedout",
            f"local Lambda emulator did not answer within {EMULATOR_TIMEOUT_S} s "
            f"for binary '{binary}' ({url})",
        )
    except (urllib.error.URLError, OSError) as e:
        status, errored = "unreachable", True
        reason = getattr(e, "reason", e)
        body = _error_payload(
            "Lambda.ServiceException",
            f"local Lambda emulator not reachable at {_lambda_endpoint} ({reason}): "
            f"is `cargo lambda watch` running? (function {fn.function_name}, "
            f"binary '{binary}')",
        )
    log(
        f"lambda {fn.function_name} -> {binary}: {status}"
        f"{' FunctionError' if errored else ''} ({time.monotonic() - started:.2f}s)"
    )
    return body, errored


def invoke_emulator_async(fn: Any, payload: bytes, what: str) -> None:
    """Invoke in a background thread; errors are logged, never raised."""

    def run() -> None:
        try:
            body, errored = invoke_emulator(fn, payload)
            if errored:
                log(f"{what}: async invoke of {fn.function_name} failed: "
                    f"{body.decode('utf-8', 'replace')[:500]}")
        except Exception as e:  # pragma: no cover - defensive
            log(f"{what}: async invoke of {fn.function_name} crashed: {e!r}")

    threading.Thread(target=run, name=f"async-{fn.function_name}", daemon=True).start()


# --------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------


def patch_stepfunctions_execute() -> str:
    """Make Step Functions interpret definitions.

    moto only runs state machines when the user config says so, and picks the
    executing backend per request from it, so it must be on before the first
    state machine is created (moto/core/config.py default_user_config,
    read in moto/stepfunctions/responses.py get_backend).
    """
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    return "stepfunctions.execute_state_machine = true (default_user_config)"


def patch_execution_names() -> str:
    """Give unnamed StartExecution calls a uuid4 name, like AWS.

    StepFunctionsParserBackend.start_execution (stepfunctions/parser/models.py)
    uses the name as given, so an unnamed execution was called 'None' (and a
    second one with the same input was deduplicated into the first).
    """
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(self, state_machine_arn, name=None, execution_input=None,
                        trace_header=None):
        return original(self, state_machine_arn, name or str(uuid.uuid4()),
                        execution_input, trace_header)

    StepFunctionsParserBackend.start_execution = start_execution
    return "StepFunctionsParserBackend.start_execution: missing name -> uuid4"


def patch_lambda_invoke() -> str:
    """Run Lambda functions with the emulator instead of Docker.

    LambdaFunction._invoke_lambda (awslambda/models.py) starts a Docker
    container; here it POSTs to `cargo lambda watch`.  LambdaFunction.invoke
    flagged failures as 'Handled' and ran 'Event' invocations synchronously;
    here failures are 'Unhandled' (what AWS reports for an error returned by
    the runtime) and 'Event' invocations run in the background (202 at once).
    Every path that invokes a function (Invoke API, Step Functions, SNS, S3,
    EventBridge) goes through LambdaFunction.invoke.
    """
    from moto.awslambda.models import LambdaFunction

    def _invoke_lambda(self, event=None):
        payload = event if isinstance(event, (str, bytes)) else json.dumps(event or {})
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        body, errored = invoke_emulator(self, payload)
        return body.decode("utf-8", "replace"), errored, ""

    def invoke(self, body, request_headers, response_headers):
        headers = {k.lower(): v for k, v in dict(request_headers or {}).items()}
        payload = body or "{}"
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        inv_type = headers.get("x-amz-invocation-type", "RequestResponse")
        if inv_type == "DryRun":
            return b""
        if inv_type == "Event":
            invoke_emulator_async(self, payload, "lambda Event invocation")
            return b""
        result, errored = invoke_emulator(self, payload)
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        response_headers["x-amz-log-result"] = ""
        return result

    LambdaFunction._invoke_lambda = _invoke_lambda
    LambdaFunction.invoke = invoke
    return (f"LambdaFunction.invoke/_invoke_lambda -> POST {_lambda_endpoint}"
            "/2015-03-31/functions/<Handler>/invocations (errors: Unhandled)")


_credentials_cache: dict[str, tuple[str, str, str]] = {}
_credentials_lock = threading.Lock()


def _credentials_for(account: str, role_arn: str | None) -> tuple[str, str, str]:
    """Access key moto maps to `account`, from an in-process AssumeRole."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    role_arn = role_arn or f"arn:aws:iam::{account}:role/stepfunctions-local"
    with _credentials_lock:
        cached = _credentials_cache.get(role_arn)
        # A /moto-api/reset forgets the key: assume again then.
        if cached and cached[0] in iam_backends[account]["aws"].access_keys:
            return cached
        role = sts_backends[account]["aws"].assume_role(
            region_name="us-east-1", role_session_name="stepfunctions",
            role_arn=role_arn, policy=None, duration=43200, external_id=None,
        )
        cached = (role.access_key_id, role.secret_access_key, role.session_token)
        _credentials_cache[role_arn] = cached
        return cached


def patch_stepfunctions_credentials() -> str:
    """Make Step Functions tasks call AWS as the right account.

    boto_client_for (stepfunctions/parser/asl/utils/boto_client.py) signs
    every task's call with the fixed key 'ak', i.e. moto's default account,
    ignoring the execution role / Task 'Credentials'.  Here the key belongs
    to the account of that role (AWS: the task runs as that role), and a
    Lambda invoked by ARN is called in the ARN's account
    (lambda_eval_utils._invoke_lambda_function).
    """
    import boto3
    from botocore.config import Config
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils,
    )
    from moto.stepfunctions.parser.asl.parse.asl_parser import (  # noqa: F401
        AmazonStateLanguageParser,  # imports every task module
    )
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for

    def client_for(region: str, service: str, state_credentials: Any = None,
                   account: str | None = None):
        role_arn = getattr(state_credentials, "role_arn", None) or None
        match = re.match(r"arn:aws[\w-]*:iam::(\d{12}):role/", role_arn or "")
        if account is None and match:
            account = match.group(1)
        if account is None:
            return original(region, service, state_credentials)
        if role_arn and match and match.group(1) != account:
            role_arn = None
        key, secret, token = _credentials_for(account, role_arn)
        return boto3.client(
            service_name=service,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            endpoint_url=f"http://127.0.0.1:{moto_server_port()}",
            config=Config(
                parameter_validation=False,
                retries={"max_attempts": 0, "total_max_attempts": 1},
                connect_timeout=60,
                read_timeout=EMULATOR_TIMEOUT_S + 60,
            ),
        )

    def _invoke_lambda_function(parameters, region, state_credentials):
        name = str(parameters.get("FunctionName", ""))
        match = re.match(r"arn:aws[\w-]*:lambda:([\w-]+):(\d{12}):", name)
        account = match.group(2) if match else None
        region = match.group(1) if match else region
        client = client_for(region, "lambda", state_credentials, account=account)
        response = client.invoke(**parameters)
        response["Payload"] = lambda_eval_utils._from_payload(response["Payload"])
        return response

    rebound = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith("moto.stepfunctions."):
            continue
        if getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = client_for
            rebound += 1
    lambda_eval_utils._invoke_lambda_function = _invoke_lambda_function
    return (f"boto_client_for (rebound in {rebound} modules) + "
            "lambda_eval_utils._invoke_lambda_function: sign as the role's account")


# ---- EventBridge ---------------------------------------------------------


def _event_time(value: Any) -> str:
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, tz=timezone.utc)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def aws_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge hands it to targets."""
    return {
        "version": event.get("version", "0"),
        "id": event.get("id"),
        "detail-type": event.get("detail-type"),
        "source": event.get("source"),
        "account": event.get("account"),
        "time": _event_time(event.get("time")),
        "region": event.get("region"),
        "resources": event.get("resources", []),
        "detail": event.get("detail", {}),
    }


def _json_path(path: str, document: Any) -> tuple[bool, Any]:
    from jsonpath_ng.ext import parse

    matches = parse(path).find(document)
    if not matches:
        return False, None
    return True, matches[0].value


def _placeholder_in_string(template: str, position: int) -> bool:
    """Is `position` inside a JSON string literal of `template`?"""
    in_string = escaped = False
    for ch in template[:position]:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = in_string
        elif ch == '"':
            in_string = not in_string
    return in_string


def transform_input(transformer: dict[str, Any], event: dict[str, Any],
                    rule: Any) -> str:
    """EventBridge InputTransformer: InputPathsMap + InputTemplate.

    A value replacing a placeholder inside a JSON string is inserted escaped
    and unquoted; elsewhere as JSON (strings quoted), as EventBridge does.
    """
    values: dict[str, tuple[bool, Any]] = {
        name: _json_path(path, event)
        for name, path in (transformer.get("InputPathsMap") or {}).items()
    }
    values.setdefault("aws.events.rule-arn", (True, rule.arn))
    values.setdefault("aws.events.rule-name", (True, rule.name))
    values.setdefault("aws.events.event.json", (True, event))
    values.setdefault("aws.events.event.ingestion-time", (True, event.get("time")))
    template = transformer.get("InputTemplate") or ""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        found, value = values[name]
        if _placeholder_in_string(template, match.start()):
            if not found or value is None:
                return ""
            text = value if isinstance(value, str) else json.dumps(value)
            return json.dumps(text)[1:-1]
        return json.dumps(value) if found else "null"

    return re.sub(r"<([\w.\-]+)>", replace, template)


def target_input(target: dict[str, Any], event: dict[str, Any], rule: Any) -> str:
    """Input a target receives: Input, InputPath, InputTransformer or the event."""
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath"):
        found, value = _json_path(target["InputPath"], event)
        return json.dumps(value if found else None)
    if target.get("InputTransformer"):
        return transform_input(target["InputTransformer"], event, rule)
    return json.dumps(event)


def _deliver_to_state_machine(rule: Any, target: dict[str, Any], arn: Any,
                              payload: str) -> None:
    from moto.stepfunctions.responses import get_backend

    try:
        json.loads(payload)
    except ValueError:
        log(f"events: rule {rule.name}: input for {target['Arn']} is not JSON, "
            f"not delivered: {payload[:300]}")
        return
    execution = get_backend(arn.account, arn.region).start_execution(
        target["Arn"], str(uuid.uuid4()), payload
    )
    log(f"events: rule {rule.name} -> StartExecution {execution.execution_arn}")


def _deliver_to_lambda(rule: Any, target: dict[str, Any], arn: Any,
                       payload: str) -> None:
    from moto.awslambda.utils import get_backend

    fn = get_backend(arn.account, arn.region).get_function(target["Arn"])
    log(f"events: rule {rule.name} -> async invoke {fn.function_name}")
    invoke_emulator_async(fn, payload.encode("utf-8"), f"events rule {rule.name}")


def patch_eventbridge_targets() -> str:
    """Deliver EventBridge events to Step Functions and Lambda targets.

    Rule.send_to_targets (events/models.py) raised NotImplementedError for
    both, so PutEvents failed with HTTP 500.  States targets now get a
    StartExecution (generated name), Lambda targets an async invoke; both
    honour Input / InputPath / InputTransformer, default input being the
    event.  Other targets keep moto's own handling.  Rules that are not
    ENABLED no longer deliver (moto ignored the rule state).
    """
    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    original = Rule.send_to_targets
    handlers: dict[str, Callable[..., None]] = {
        "states": _deliver_to_state_machine,
        "lambda": _deliver_to_lambda,
    }

    def send_to_targets(self, original_event, transform_input=True):
        if self.state == "DISABLED":
            return
        if not self.event_pattern.matches_event(original_event):
            return
        others = []
        for target in self.targets:
            arn = parse_arn(target["Arn"])
            handler = handlers.get(arn.service)
            if handler is None:
                others.append(target)
                continue
            try:
                event = aws_event(original_event)
                handler(self, target, arn, target_input(target, event, self))
            except Exception as e:  # AWS: a failed invocation, not a failed put
                log(f"events: rule {self.name}: delivery to {target['Arn']} "
                    f"failed: {e!r}")
        if others:
            rest = copy.copy(self)
            rest.targets = others
            original(rest, original_event, transform_input)

    Rule.send_to_targets = send_to_targets
    return ("events Rule.send_to_targets: states -> StartExecution, "
            "lambda -> async invoke (Input/InputPath/InputTransformer)")


# ---- ECS -----------------------------------------------------------------


def _register_service_targets(backend: Any, service: Any) -> None:
    """Register one ip target per running task in the service's target groups,
    as Fargate does, so target health shows the tasks (healthy at once in moto)."""
    import hashlib

    from moto.elbv2.models import elbv2_backends

    elbv2 = elbv2_backends[backend.account_id][backend.region_name]
    for lb in service.load_balancers or []:
        arn = lb.get("targetGroupArn")
        group = elbv2.target_groups.get(arn) if arn else None
        if group is None:
            continue
        wanted = {}
        for n in range(service.running_count):
            digest = hashlib.sha256(f"{service.arn}/{n}".encode()).digest()
            ip = f"10.{200 + digest[0] % 50}.{digest[1]}.{1 + digest[2] % 254}"
            wanted[ip] = {"Id": ip, "Port": lb.get("containerPort", 80)}
        stale = [{"Id": t} for t in group.targets if t not in wanted]
        if stale:
            group.deregister(stale)
        group.register(list(wanted.values()))


def _settle_service(backend: Any, service: Any, new_deployment: bool) -> None:
    from moto.core.utils import utcnow

    if service.task_definition and not service.task_definition.startswith("arn:"):
        service.task_definition = backend.describe_task_definition(
            service.task_definition).arn
    service.running_count = service.desired_count
    service.pending_count = 0
    now = utcnow()
    previous = service.deployments[0] if service.deployments else None
    if previous is None or new_deployment:
        deployment_id = f"ecs-svc/{uuid.uuid4().int % 10**19:019d}"
        created = now
    else:
        deployment_id, created = previous["id"], previous["createdAt"]
    network = getattr(service, "network_configuration", None) or None
    service.deployments = [{
        "id": deployment_id,
        "status": "PRIMARY",
        "taskDefinition": service.task_definition,
        "desiredCount": service.desired_count,
        "pendingCount": 0,
        "runningCount": service.desired_count,
        "failedTasks": 0,
        "createdAt": created,
        "updatedAt": now,
        "launchType": service.launch_type,
        "platformVersion": service.platform_version,
        "platformFamily": "EC2" if service.launch_type == "EC2" else "FARGATE",
        "networkConfiguration": network,
        "rolloutState": "COMPLETED",
        "rolloutStateReason": f"ECS deployment {deployment_id} completed.",
    }]
    service.events.insert(0, {
        "id": str(uuid.uuid4()),
        "createdAt": now,
        "message": f"(service {service.name}) has reached a steady state.",
    })


def patch_ecs_services() -> str:
    """Make ECS services reach a steady state at once.

    EC2ContainerServiceBackend.create_service/update_service (ecs/models.py)
    leave runningCount 0 and the deployment IN_PROGRESS forever, and
    update_service neither records a new deployment nor resolves the task
    definition to an ARN.  After either call the service now has exactly one
    PRIMARY deployment, rolloutState COMPLETED, runningCount = desiredCount,
    pendingCount 0, taskDefinition = the service's task definition ARN (a new
    deployment id when the task definition changes or on
    forceNewDeployment), plus a 'steady state' service event.
    """
    from moto.ecs.models import EC2ContainerServiceBackend

    original_create = EC2ContainerServiceBackend.create_service
    original_update = EC2ContainerServiceBackend.update_service

    def create_service(self, cluster_str, *args, **kwargs):
        cluster = self._get_cluster(cluster_str)
        running, pending = cluster.running_tasks_count, cluster.pending_tasks_count
        service = original_create(self, cluster_str, *args, **kwargs)
        _settle_service(self, service, new_deployment=True)
        cluster.running_tasks_count = running + service.running_count
        cluster.pending_tasks_count = pending
        return service

    def update_service(self, service_properties):
        props = dict(service_properties)
        cluster = self._get_cluster(props.get("cluster", "default"))
        before = self._get_service(cluster.name,
                                   str(props.get("service", "")).split("/")[-1])
        running, pending = cluster.running_tasks_count, cluster.pending_tasks_count
        old_running, old_pending = before.running_count, before.pending_count
        old_task_definition = before.task_definition
        service = original_update(self, service_properties)
        if props.get("task_definition"):
            new_arn = self.describe_task_definition(props["task_definition"]).arn
        else:
            new_arn = old_task_definition
        new_deployment = bool(
            new_arn != old_task_definition
            or props.get("force_new_deployment")
            or props.get("network_configuration")
            or props.get("load_balancers")
            or props.get("platform_version")
        )
        service.task_definition = new_arn
        _settle_service(self, service, new_deployment=new_deployment)
        cluster.running_tasks_count = running - old_running + service.running_count
        cluster.pending_tasks_count = pending - old_pending
        return service

    def create_service_with_targets(self, cluster_str, *args, **kwargs):
        service = create_service(self, cluster_str, *args, **kwargs)
        _register_service_targets(self, service)
        return service

    def update_service_with_targets(self, service_properties):
        service = update_service(self, service_properties)
        _register_service_targets(self, service)
        return service

    EC2ContainerServiceBackend.create_service = create_service_with_targets
    EC2ContainerServiceBackend.update_service = update_service_with_targets
    return ("ecs create_service/update_service: settle (PRIMARY, COMPLETED, running=desired), "
            "one ip target per running task in its target groups")


def patch_s3_bucket_versioning_response() -> str:
    """Answer GetBucketVersioning with S3's <VersioningConfiguration> root.

    moto serialises the result under a <GetBucketVersioningResponse> root,
    which the AWS SDK for Rust rejects (it expects <VersioningConfiguration>),
    so bootstrap could not check its config bucket
    (moto/s3/responses.py S3Response.get_bucket_versioning).
    """
    from moto.s3.responses import S3Response

    def get_bucket_versioning(self):
        status = self.backend.get_bucket_versioning(self.bucket_name)
        inner = f"<Status>{status}</Status>" if status else ""
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"{inner}</VersioningConfiguration>")
        return 200, {"Content-Type": "application/xml"}, body

    S3Response.get_bucket_versioning = get_bucket_versioning
    return "S3Response.get_bucket_versioning: <VersioningConfiguration> root, as S3"


def patch_send_task_failure_cause() -> str:
    """Pass SendTaskFailure's cause on to the waiting task.

    moto's response handler reads only taskToken and error
    (moto/stepfunctions/responses.py StepFunctionResponse.send_task_failure),
    so a rejected approval reached the state machine without its reason.
    """
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self):
        from moto.core.responses import EmptyResult

        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"),
            cause=self._get_param("cause"))
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure
    return "StepFunctionResponse.send_task_failure: keeps the cause"


PATCHES: list[Callable[[], str]] = [
    patch_stepfunctions_execute,
    patch_execution_names,
    patch_lambda_invoke,
    patch_stepfunctions_credentials,
    patch_eventbridge_targets,
    patch_ecs_services,
    patch_s3_bucket_versioning_response,
    patch_send_task_failure_cause,
]


def apply_patches(lambda_endpoint: str) -> None:
    global _lambda_endpoint
    _lambda_endpoint = lambda_endpoint
    import moto

    if moto.__version__ != MOTO_VERSION:
        log(f"WARNING: patches target moto {MOTO_VERSION}, found {moto.__version__}")
    for patch in PATCHES:
        log(f"patch {patch.__name__}: {patch()}")


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------

READ_PREFIXES = ("Describe", "Get", "List", "Query", "Scan", "Head", "Filter", "Receive", "BatchGet")


class CallCounter:
    """WSGI middleware counting the AWS API calls stepdeploy's Rust functions
    make (User-Agent aws-sdk-rust), by service and action, for the API-call
    benchmark: GET /__stepdeploy__/calls reads the counts (JSON),
    DELETE resets them.  The service comes from the SigV4 credential scope,
    the action from X-Amz-Target (JSON protocols), Action= (query protocols)
    or the method and path (REST protocols)."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    @staticmethod
    def _classify(environ: dict[str, Any], body: bytes) -> tuple[str, str]:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
        service = match.group(1) if match else "unknown"
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            return service, target.rsplit(".", 1)[-1]
        params = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        if "Action" not in params and environ.get("CONTENT_TYPE", "").startswith(
                "application/x-www-form-urlencoded"):
            params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if "Action" in params:
            return service, params["Action"][0]
        method = environ.get("REQUEST_METHOD", "GET")
        path = [p for p in environ.get("PATH_INFO", "").split("/") if p]
        query = environ.get("QUERY_STRING", "")
        if service == "s3":
            what = "object" if len(path) > 1 else "bucket"
            sub = query.split("=")[0].split("&")[0]
            return service, f"{method} {what}{'?' + sub if sub else ''}"
        # Other REST APIs: the last non-id path segment names the resource.
        words = [p for p in path if not re.search(r"\d{4}-\d{2}-\d{2}|^fs-|^fsap-|^[A-Z0-9]{12,}$|arn", p)]
        return service, f"{method} {words[-1] if words else '/'}"

    @staticmethod
    def is_read(action: str) -> bool:
        return action.startswith(READ_PREFIXES) or action.startswith(("GET ", "HEAD "))

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/__stepdeploy__/calls"):
            if environ.get("REQUEST_METHOD") == "DELETE":
                with self.lock:
                    self.counts.clear()
            with self.lock:
                body = json.dumps({"counts": dict(sorted(self.counts.items()))}).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        agent = environ.get("HTTP_USER_AGENT", "") + environ.get("HTTP_X_AMZ_USER_AGENT", "")
        # Only stepdeploy's own calls (the Rust SDK): not the stand-in's, the seed's or moto's internal ones.
        if not path.startswith("/moto-api") and "aws-sdk-rust" in agent:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            import io
            environ["wsgi.input"] = io.BytesIO(body)
            service, action = self._classify(environ, body)
            key = f"{service}:{action}"
            with self.lock:
                self.counts[key] = self.counts.get(key, 0) + 1
        return self.app(environ, start_response)



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--lambda-endpoint", default=DEFAULT_LAMBDA_ENDPOINT,
                        help="base URL of `cargo lambda watch`")
    args = parser.parse_args(argv)

    # moto's Step Functions interpreter calls back into the server on MOTO_PORT.
    os.environ["MOTO_PORT"] = str(args.port)
    apply_patches(args.lambda_endpoint)

    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    app = CallCounter(DomainDispatcherApplication(create_backend_app))
    try:
        server = make_server(args.host, args.port, app, threaded=True,
                             request_handler=MotoRequestHandler)
    except OSError as e:
        log(f"cannot listen on {args.host}:{args.port}: {e}")
        return 1

    def stop(signum: int, _frame: Any) -> None:
        log(f"signal {signum}: stopping")
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"moto {MOTO_VERSION} listening on http://{args.host}:{args.port} "
        f"(lambda emulator {args.lambda_endpoint})")
    server.serve_forever()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
