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
  A failed asynchronous invocation is retried twice, as Lambda does (after
  1 and 2 s here, about 1 and 2 min on AWS).
* ECS services start as Fargate's do, after a delay and only if their
  secrets resolve (local/ecs_startup.py; STEPDEPLOY_LOCAL_ECS_STARTUP_SECONDS,
  STEPDEPLOY_LOCAL_ECS_BACKOFF_SECONDS).
* AWS quotas the pipeline can reach are refused with AWS's errors
  (local/strict_quotas.py).
* Response bodies keep their content: moto rewrote everything between the
  first <RequestId> and the last </RequestId> of any body, so execution
  histories quoting XML errors lost their later events.
* DynamoDB writes are serialized: a cancelled TransactWriteItems put back a
  copy of the whole table, undoing other requests' writes made meanwhile.

Not patches of moto but a WSGI middleware in front of it (CallCounter), for
stepdeploy's own calls only (User-Agent aws-sdk-rust: not the seed's, the
stand-in's, the tests' AWS CLI or moto's internal Step Functions calls):

* API-call counter: GET /__stepdeploy__/calls (counts by service:action),
  DELETE resets (bench/api_calls.py).
* Fault injection, controlled at run time through /__stepdeploy__/faults:

    PUT     replace every rule with the body's rules (one group)
    POST    add the body's rules as one more group (tests on a shared stack
            each add their own, scoped with match.contains)
    GET     the rules, what each matched and injected, with a log of the
            calls it matched (?id=<group or rule id> for one)
    DELETE  clear everything (?id=<group or rule id>: only that)

  Body: {"seed": 7, "id": "my-group", "rules": [rule, ...]} (or a list of
  rules, or one rule).  A rule:

    {"mode": "throttle" | "unavailable" | "latency" | "drop" | "error",
     "rate": 0.1            -- share of matching calls (seeded RNG), or
     "nth": 3, "count": 1   -- the 3rd matching call (and count-1 after it),
     "ms": 200              -- latency only,
     "status": 503          -- unavailable only: 503 ServiceUnavailable or 500,
     "match": {"action": "ecs:CreateService" (or a list; names as the counter),
               "contains": "acme"   (substring of path, query or body),
               "mutating": true     (bench/api_calls.py's read/write split),
               "caller": "stepdeploy-ecs" (substring of the role session)}}

  throttle answers the service's own throttling error in its protocol's
  shape (JSON protocols {"__type": "ThrottlingException"} 400; query
  protocols - ELBv2, IAM, STS, SNS - <ErrorResponse><Error><Code>Throttling
  400; S3 SlowDown 503; Route53 Throttling 400), so the SDK retries it as
  throttling; unavailable answers 503 ServiceUnavailable (or 500
  InternalError); latency sleeps, then forwards; drop forwards the call to
  moto (the change is applied) and answers 500 InternalError instead of the
  real response; error answers AccessDenied (400 JSON, 403 elsewhere), which
  no SDK retries.  The rules of one group share one seeded RNG and one draw
  per matching call, so their rates add up (10% throttle + 5% unavailable +
  5% drop = 20% of the calls); nth rules fire first.  One fault per call:
  the first group that fires wins.
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


# Lambda retries a failed asynchronous invocation twice (AWS: after about
# one and two minutes; here after one and two seconds).
ASYNC_RETRY_DELAYS_S = (1.0, 2.0)


def invoke_emulator_async(fn: Any, payload: bytes, what: str) -> None:
    """Invoke in a background thread, retrying a function error twice as
    Lambda does for asynchronous invocations; errors are logged, never raised."""

    def run() -> None:
        for attempt, delay in enumerate((0.0, *ASYNC_RETRY_DELAYS_S), start=1):
            time.sleep(delay)
            try:
                body, errored = invoke_emulator(fn, payload)
            except Exception as e:  # pragma: no cover - defensive
                log(f"{what}: async invoke of {fn.function_name} crashed: {e!r}")
                return
            if not errored:
                return
            log(f"{what}: async invoke of {fn.function_name} failed (attempt {attempt}): "
                f"{body.decode('utf-8', 'replace')[:500]}")

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


def patch_ecs_services() -> str:
    """ECS services start as Fargate's do (local/ecs_startup.py).

    Stock moto leaves a service at runningCount 0 and its deployment
    IN_PROGRESS forever.  Here a deployment's tasks start
    STEPDEPLOY_LOCAL_ECS_STARTUP_SECONDS (default 1) after CreateService /
    UpdateService, evaluated lazily when the service is described, and only
    if every secret the task definition names exists (and, with
    local/iam_enforce.py, the execution role may read it); else they stop
    with Fargate's ResourceInitializationError, the deployment stays
    IN_PROGRESS and ECS relaunches (STEPDEPLOY_LOCAL_ECS_BACKOFF_SECONDS).
    Running tasks are registered as ip targets.  Still needed upstream: moto
    (5.2.5 and its main branch) has no service scheduler, only a fixed
    MOTO_ECS_SERVICE_RUNNING count set at creation, and fetches no secrets.
    """
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import ecs_startup

    return ecs_startup.install()


def patch_strict_quotas() -> str:
    """AWS quotas the pipeline can reach (local/strict_quotas.py): target groups
    and rules per ALB, inline policy size per role, SNS subject, Lambda
    environment size, Step Functions history events; each refused with AWS's
    error code.  Still needed upstream: moto checks none of them (ELBv2's
    create_rule has "TODO: check for error 'TooManyRules'", IAM lists the
    10,240 quota in GetAccountSummary only, SNS raises a bare ValueError for
    a subject over 100 characters)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import strict_quotas

    lines = strict_quotas.install()
    return "; ".join(lines)


def patch_sfn_status_events() -> str:
    """Step Functions "Execution Status Change" events on the default bus when
    an execution ends (local/sfn_status_events.py), as AWS sends them; the
    cleanup rule of runs stopped or timed out outside their Catch needs them.
    Still needed upstream: moto (5.2.5 and main) emits none."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import sfn_status_events

    return sfn_status_events.install()


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


def patch_response_request_id() -> str:
    """Rewrite <RequestId> only in XML bodies, and only up to the next tag.

    BaseResponse._enrich_response (moto/core/responses.py) ran a greedy
    `(?<=<RequestId>).*(?=</RequestId>)` over every response body, so a JSON
    body quoting XML error responses (an execution history whose task
    failure causes carry the raw answer of ELBv2, IAM or Route53) lost
    everything between the first <RequestId> and the last </RequestId>:
    GetExecutionHistory returned the events up to the first failed task only.
    """
    from moto.core.responses import BaseResponse
    from moto.utilities.aws_headers import gen_amzn_requestid_long

    def _enrich_response(headers: dict[str, Any], body: Any) -> tuple[dict[str, Any], Any]:
        if "status" in headers:
            headers["status"] = str(headers["status"])
        request_id = gen_amzn_requestid_long(headers)
        if isinstance(body, str) and body.lstrip().startswith("<"):
            body = re.sub(r"(?<=<RequestId>)[^<]*(?=</RequestId>)", request_id, body)
        return headers, body

    BaseResponse._enrich_response = staticmethod(_enrich_response)
    return "BaseResponse._enrich_response: <RequestId> rewritten in XML bodies only, tag-bounded"


def patch_dynamodb_write_lock() -> str:
    """Serialize DynamoDB writes, so a cancelled transaction undoes only itself.

    DynamoDBBackend.transact_write_items (moto/dynamodb/models/__init__.py)
    deep-copies each table it writes to and, when any of its conditions
    fails (TransactionCanceledException), puts the copies back: every write
    other requests made to those tables in the meantime was lost (a lock, a
    ledger entry, another run's priority claim or registry entry).  Writes
    (PutItem, UpdateItem, DeleteItem, batches, transactions) now take one
    re-entrant lock per backend.
    """
    from moto.dynamodb.models import DynamoDBBackend

    def locked(method: Callable) -> Callable:
        def call(self, *args, **kwargs):
            lock = self.__dict__.setdefault("_stepdeploy_write_lock", threading.RLock())
            with lock:
                return method(self, *args, **kwargs)
        call.__name__ = method.__name__
        return call

    names = ("put_item", "update_item", "delete_item", "transact_write_items")
    for name in names:
        setattr(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name)))
    return f"DynamoDBBackend.{'/'.join(names)}: one write lock per backend"


PATCHES: list[Callable[[], str]] = [
    patch_stepfunctions_execute,
    patch_execution_names,
    patch_lambda_invoke,
    patch_stepfunctions_credentials,
    patch_eventbridge_targets,
    patch_ecs_services,
    patch_s3_bucket_versioning_response,
    patch_send_task_failure_cause,
    patch_response_request_id,
    patch_dynamodb_write_lock,
    patch_sfn_status_events,
    patch_strict_quotas,
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


def classify_call(environ: dict[str, Any], body: bytes) -> tuple[str, str, str]:
    """(service, action, protocol) of an AWS API request.

    The service comes from the SigV4 credential scope, the action from
    X-Amz-Target (JSON protocols), Action= (query protocols) or the method
    and path (REST protocols).  The protocol (json, query, rest-json, s3,
    route53) says which error shape the service's SDK parses.
    """
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
    service = match.group(1) if match else "unknown"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rsplit(".", 1)[-1], "json"
    params = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" not in params and environ.get("CONTENT_TYPE", "").startswith(
            "application/x-www-form-urlencoded"):
        params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    if "Action" in params:
        return service, params["Action"][0], "query"
    method = environ.get("REQUEST_METHOD", "GET")
    path = [p for p in environ.get("PATH_INFO", "").split("/") if p]
    query = environ.get("QUERY_STRING", "")
    if service == "s3":
        what = "object" if len(path) > 1 else "bucket"
        sub = query.split("=")[0].split("&")[0]
        return service, f"{method} {what}{'?' + sub if sub else ''}", "s3"
    # Other REST APIs: the last non-id path segment names the resource.
    words = [p for p in path if not re.search(r"\d{4}-\d{2}-\d{2}|^fs-|^fsap-|^[A-Z0-9]{12,}$|arn", p)]
    protocol = "route53" if service == "route53" else "rest-json"
    return service, f"{method} {words[-1] if words else '/'}", protocol


def is_read(action: str) -> bool:
    """The read/write split of bench/api_calls.py: Describe*/Get*/List*/… and GET/HEAD are reads."""
    return action.startswith(READ_PREFIXES) or action.startswith(("GET ", "HEAD "))


def _json_answer(start_response: Callable, status: str, document: Any) -> list[bytes]:
    body = json.dumps(document, indent=1).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


# ---- fault injection -----------------------------------------------------

FAULT_MODES = ("throttle", "unavailable", "latency", "drop", "error")
_MATCH_KEYS = {"action", "contains", "mutating", "caller"}
_REASONS = {400: "Bad Request", 403: "Forbidden", 429: "Too Many Requests",
            500: "Internal Server Error", 503: "Service Unavailable"}
# (status, code) per protocol: throttle, unavailable (503 / 500), drop, error.
_ERROR_CODES: dict[str, dict[str, tuple[int, str]]] = {
    "json": {"throttle": (400, "ThrottlingException"),
             "unavailable": (503, "ServiceUnavailableException"),
             "internal": (500, "InternalFailure"),
             "error": (400, "AccessDeniedException")},
    "rest-json": {"throttle": (400, "ThrottlingException"),
                  "unavailable": (503, "ServiceUnavailableException"),
                  "internal": (500, "InternalFailure"),
                  "error": (403, "AccessDeniedException")},
    "query": {"throttle": (400, "Throttling"),
              "unavailable": (503, "ServiceUnavailable"),
              "internal": (500, "InternalError"),
              "error": (403, "AccessDenied")},
    "route53": {"throttle": (400, "Throttling"),
                "unavailable": (503, "ServiceUnavailable"),
                "internal": (500, "InternalError"),
                "error": (403, "AccessDenied")},
    "s3": {"throttle": (503, "SlowDown"),
           "unavailable": (503, "ServiceUnavailable"),
           "internal": (500, "InternalError"),
           "error": (403, "AccessDenied")},
}


def error_response(protocol: str, kind: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """An AWS error in the protocol's own shape, so the SDK parses its code.

    `kind`: throttle, unavailable, internal (500) or error (AccessDenied).
    """
    status, code = _ERROR_CODES.get(protocol, _ERROR_CODES["rest-json"])[kind]
    request_id = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id), ("x-stepdeploy-fault", kind)]
    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
        headers += [("Content-Type", "application/x-amz-json-1.1"),
                    ("x-amzn-ErrorType", code)]
    elif protocol == "s3":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message>"
                f"<RequestId>{request_id}</RequestId><HostId>stepdeploy</HostId></Error>").encode()
        headers += [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    else:  # query protocols and Route53: <ErrorResponse><Error>…
        namespace = (' xmlns="https://route53.amazonaws.com/doc/2013-04-01/"'
                     if protocol == "route53" else "")
        party = "Sender" if status < 500 else "Receiver"
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<ErrorResponse{namespace}><Error><Type>{party}</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
                "</ErrorResponse>").encode()
        headers += [("Content-Type", "text/xml")]
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body


class FaultRule:
    """One rule: what to inject (mode) on which calls (match) how often (rate or nth)."""

    def __init__(self, spec: dict[str, Any], rule_id: str, group: "FaultGroup") -> None:
        if not isinstance(spec, dict):
            raise ValueError(f"a rule is a JSON object, got {spec!r}")
        unknown = set(spec) - {"id", "mode", "rate", "nth", "count", "ms", "status", "match"}
        if unknown:
            raise ValueError(f"unknown rule field(s) {sorted(unknown)}")
        self.mode = spec.get("mode")
        if self.mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {', '.join(FAULT_MODES)}, got {self.mode!r}")
        self.id, self.group = rule_id, group
        self.rate = spec.get("rate")
        self.nth = spec.get("nth")
        if self.rate is not None and self.nth is not None:
            raise ValueError("give rate or nth, not both")
        if self.rate is None and self.nth is None:
            if self.mode != "latency":
                raise ValueError(f"{self.mode}: give rate (0..1) or nth (1, 2, …)")
            self.rate = 1.0
        if self.rate is not None and (isinstance(self.rate, bool)
                                      or not isinstance(self.rate, (int, float))
                                      or not 0 <= self.rate <= 1):
            raise ValueError(f"rate must be a number in 0..1, got {self.rate!r}")
        if self.nth is not None and (isinstance(self.nth, bool) or not isinstance(self.nth, int)
                                     or self.nth < 1):
            raise ValueError(f"nth must be an integer >= 1, got {self.nth!r}")
        self.count = spec.get("count", 1)
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"count must be an integer >= 1, got {self.count!r}")
        self.ms = spec.get("ms", 200)
        if isinstance(self.ms, bool) or not isinstance(self.ms, (int, float)) or not 0 <= self.ms <= 60_000:
            raise ValueError(f"ms must be 0..60000, got {self.ms!r}")
        self.status = spec.get("status", 503)
        if self.status not in (500, 503):
            raise ValueError(f"status (unavailable) must be 500 or 503, got {self.status!r}")
        match = spec.get("match") or {}
        if not isinstance(match, dict) or set(match) - _MATCH_KEYS:
            raise ValueError(f"match takes {sorted(_MATCH_KEYS)}, got {match!r}")
        actions = match.get("action")
        self.actions = [actions] if isinstance(actions, str) else actions
        if self.actions is not None and not (isinstance(self.actions, list) and all(
                isinstance(a, str) and ":" in a for a in self.actions)):
            raise ValueError(f"match.action: 'service:Action' or a list of them, got {actions!r}")
        self.contains = match.get("contains")
        if self.contains is not None and not (isinstance(self.contains, str) and self.contains):
            raise ValueError(f"match.contains must be a non-empty string, got {self.contains!r}")
        self.mutating = match.get("mutating")
        if self.mutating is not None and not isinstance(self.mutating, bool):
            raise ValueError(f"match.mutating must be true or false, got {self.mutating!r}")
        self.caller = match.get("caller")
        if self.caller is not None and not (isinstance(self.caller, str) and self.caller):
            raise ValueError(f"match.caller must be a non-empty string, got {self.caller!r}")
        self.match = match
        self.matched = 0
        self.injected = 0
        self.log: list[dict[str, Any]] = []

    def matches(self, call: "Call") -> bool:
        if self.actions is not None and call.key not in self.actions:
            return False
        if self.mutating is not None and self.mutating == call.read:
            return False
        if self.contains is not None and self.contains not in call.text():
            return False
        if self.caller is not None and self.caller not in call.caller():
            return False
        return True

    def fires_nth(self) -> bool:
        return self.nth is not None and self.nth <= self.matched < self.nth + self.count

    def describe(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"id": self.id, "group": self.group.id, "mode": self.mode}
        if self.nth is not None:
            rule.update(nth=self.nth, count=self.count)
        else:
            rule["rate"] = self.rate
        if self.mode == "latency":
            rule["ms"] = self.ms
        if self.mode == "unavailable":
            rule["status"] = self.status
        rule.update(match=self.match, matched=self.matched, injected=self.injected,
                    log=self.log)
        return rule


class FaultGroup:
    """Rules sent together: one seeded RNG, one draw per matching call."""

    def __init__(self, group_id: str, seed: int) -> None:
        self.id, self.seed = group_id, seed
        import random

        self.rng = random.Random(seed)
        self.rules: list[FaultRule] = []


class Call:
    """One stepdeploy call as the injector sees it (text and caller computed on demand)."""

    def __init__(self, environ: dict[str, Any], body: bytes, service: str, action: str,
                 protocol: str, callers: "FaultInjector") -> None:
        self.environ, self.body = environ, body
        self.service, self.action, self.protocol = service, action, protocol
        self.key = f"{service}:{action}"
        self.read = is_read(action)
        self._callers = callers
        self._text: str | None = None
        self._caller: str | None = None

    def text(self) -> str:
        if self._text is None:
            raw = (f"{self.environ.get('PATH_INFO', '')}?{self.environ.get('QUERY_STRING', '')}\n"
                   + self.body.decode("utf-8", "replace"))
            self._text = raw + "\n" + urllib.parse.unquote_plus(raw)
        return self._text

    def caller(self) -> str:
        if self._caller is None:
            self._caller = self._callers.caller_of(self.environ)
        return self._caller


class FaultInjector:
    """Fault injection for stepdeploy's own calls, controlled at run time.

    See the module docstring ("Fault injection") for the interface.
    """

    LOG_LIMIT = 2000

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.groups: list[FaultGroup] = []
        self.totals: dict[str, int] = {}
        self._next = 0
        self._callers: dict[str, str] = {}

    # -- control ----------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        self._next += 1
        return f"{prefix}{self._next}"

    def _parse(self, document: Any) -> FaultGroup:
        if isinstance(document, list):
            document = {"rules": document}
        elif isinstance(document, dict) and "mode" in document:
            document = {"rules": [document]}
        if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
            raise ValueError('send {"rules": [...], "seed": N, "id": "…"}, a list of rules or one rule')
        unknown = set(document) - {"rules", "seed", "id"}
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}")
        seed = document.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        group_id = document.get("id") or self._new_id("g")
        if not isinstance(group_id, str):
            raise ValueError(f"id must be a string, got {group_id!r}")
        group = FaultGroup(group_id, seed)
        for i, spec in enumerate(document["rules"]):
            rule_id = (spec.get("id") if isinstance(spec, dict) else None) or f"{group_id}.{i + 1}"
            try:
                group.rules.append(FaultRule(spec, str(rule_id), group))
            except ValueError as e:
                raise ValueError(f"rules[{i}]: {e}") from None
        return group

    def state(self, only: str | None = None) -> dict[str, Any]:
        with self.lock:
            rules = [r.describe() for g in self.groups for r in g.rules
                     if only is None or only in (r.id, g.id)]
            totals = dict(self.totals)
            if only is not None:
                totals = {}
                for rule in rules:
                    totals[rule["mode"]] = totals.get(rule["mode"], 0) + rule["injected"]
            return {"rules": copy.deepcopy(rules), "injected": totals,
                    "groups": [{"id": g.id, "seed": g.seed} for g in self.groups
                               if only is None or only == g.id
                               or any(r.id == only for r in g.rules)]}

    def control(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        only = query.get("id", [None])[0]
        if method == "GET":
            return _json_answer(start_response, "200 OK", self.state(only))
        if method == "DELETE":
            with self.lock:
                if only is None:
                    self.groups.clear()
                    self.totals.clear()
                else:
                    for group in self.groups:
                        group.rules = [r for r in group.rules if r.id != only]
                    self.groups = [g for g in self.groups if g.id != only and g.rules]
            return _json_answer(start_response, "200 OK", self.state())
        if method in ("PUT", "POST"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            try:
                group = self._parse(json.loads(raw or b"null"))
            except ValueError as e:
                return _json_answer(start_response, "400 Bad Request", {"error": str(e)})
            with self.lock:
                taken = {g.id for g in self.groups} | {r.id for g in self.groups for r in g.rules}
                if method == "POST" and ({group.id} | {r.id for r in group.rules}) & taken:
                    return _json_answer(start_response, "409 Conflict",
                                        {"error": f"id {group.id} (or one of its rules) is in use"})
                if method == "PUT":
                    self.groups = [group]
                    self.totals.clear()
                else:
                    self.groups.append(group)
            log(f"faults: {method} group {group.id} (seed {group.seed}): "
                f"{[r.describe()['mode'] for r in group.rules]}")
            return _json_answer(start_response, "200 OK",
                                {"group": group.id, "rules": [r.id for r in group.rules]})
        return _json_answer(start_response, "405 Method Not Allowed",
                            {"error": "GET, PUT, POST or DELETE"})

    # -- injection --------------------------------------------------------

    def caller_of(self, environ: dict[str, Any]) -> str:
        """The role session name behind the request's access key (e.g.
        stepdeploy-ecs), else the access key id."""
        match = re.search(r"Credential=([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        key = match.group(1) if match else ""
        if key in self._callers:
            return self._callers[key]
        from moto.sts.models import sts_backends

        for _account, by_partition in list(sts_backends.items()):
            for backend in list(by_partition.values()):
                role = backend.get_assumed_role_from_access_key(key)
                if role is not None:
                    self._callers[key] = role.session_name
                    return role.session_name
        return key

    def decide(self, call: Call) -> FaultRule | None:
        """The rule that fires for this call, if any (its counters updated)."""
        if not self.groups:
            return None
        chosen: FaultRule | None = None
        with self.lock:
            for group in self.groups:
                matching = [r for r in group.rules if r.matches(call)]
                if not matching:
                    continue
                for rule in matching:
                    rule.matched += 1
                fired = next((r for r in matching if r.fires_nth()), None)
                rated = [r for r in matching if r.rate is not None]
                if fired is None and rated:
                    draw, bound = group.rng.random(), 0.0
                    for rule in rated:
                        bound += rule.rate
                        if draw < bound:
                            fired = rule
                            break
                if fired is not None and chosen is None:
                    chosen = fired
                    fired.injected += 1
                    self.totals[fired.mode] = self.totals.get(fired.mode, 0) + 1
                for rule in matching:
                    if len(rule.log) < self.LOG_LIMIT:
                        rule.log.append({
                            "n": rule.matched, "call": call.key, "mutating": not call.read,
                            "caller": call.caller(),
                            "fault": rule.mode if rule is chosen else None,
                            "at": round(time.time(), 3)})
        return chosen

    def inject(self, rule: FaultRule, call: Call, app: Callable,
               environ: dict[str, Any], start_response: Callable) -> Any:
        message = f"stepdeploy fault injector: {rule.mode} (rule {rule.id})"
        if rule.mode == "latency":
            time.sleep(rule.ms / 1000)
            return app(environ, start_response)
        if rule.mode == "drop":
            # Let moto apply the call, then lose its answer.
            seen: list[str] = []

            def capture(status: str, headers: Any, exc_info: Any = None) -> Callable:
                seen.append(status)
                return lambda _data: None

            result = app(environ, capture)
            try:
                for _ in result:
                    pass
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()
            log(f"faults: drop {call.key} (moto answered {seen[0] if seen else '?'})")
            kind = "internal"
        elif rule.mode == "unavailable":
            kind = "unavailable" if rule.status == 503 else "internal"
        else:
            kind = rule.mode
        status, headers, body = error_response(call.protocol, kind, message)
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        if environ.get("REQUEST_METHOD") == "HEAD":
            return [b""]
        return [body]


class CallCounter:
    """WSGI middleware for stepdeploy's own AWS API calls (User-Agent
    aws-sdk-rust): counts them by service and action for the API-call
    benchmark (GET /__stepdeploy__/calls reads the counts as JSON, DELETE
    resets them) and injects the faults configured at
    /__stepdeploy__/faults (see the module docstring)."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.faults = FaultInjector()

    @staticmethod
    def _classify(environ: dict[str, Any], body: bytes) -> tuple[str, str]:
        service, action, _ = classify_call(environ, body)
        return service, action

    @staticmethod
    def is_read(action: str) -> bool:
        return is_read(action)

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
        if path.startswith("/__stepdeploy__/faults"):
            return self.faults.control(environ, start_response)
        agent = environ.get("HTTP_USER_AGENT", "") + environ.get("HTTP_X_AMZ_USER_AGENT", "")
        # Only stepdeploy's own calls (the Rust SDK): not the stand-in's, the seed's or moto's internal ones.
        if not path.startswith("/moto-api") and "aws-sdk-rust" in agent:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            import io
            environ["wsgi.input"] = io.BytesIO(body)
            service, action, protocol = classify_call(environ, body)
            key = f"{service}:{action}"
            with self.lock:
                self.counts[key] = self.counts.get(key, 0) + 1
            call = Call(environ, body, service, action, protocol, self.faults)
            rule = self.faults.decide(call)
            if rule is not None:
                return self.faults.inject(rule, call, self.app, environ, start_response)
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

    # ---- local IAM (local/iam_enforce.py): stepdeploy's calls are authorised
    # against their principal's policies behind the call counter / fault injector.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from iam_enforce import IamEnforcer

    app = CallCounter(IamEnforcer(DomainDispatcherApplication(create_backend_app), error_response))
    log(f"iam: stepdeploy's calls authorised by local/iam_enforce.py"
        f"{' (AUDIT mode: denials only logged; not for tests/CI)' if app.app.audit else ''}")
    # ---- end local IAM
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
