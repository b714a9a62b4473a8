"""EventBridge rules deliver to Step Functions and Lambda targets.

moto gap: Rule.send_to_targets (moto/events/models.py) raises
NotImplementedError for both, so PutEvents failed with HTTP 500.  States
targets now get a StartExecution (generated name), Lambda targets an async
invoke (stack/emulator.py: retried twice after a function error); both
honour Input / InputPath / InputTransformer, default input being the event
as EventBridge hands it to targets.  Other targets keep moto's own
handling.  Rules that are not ENABLED no longer deliver (moto ignores the
rule state there).

Checked against moto 5.2.5 (the pinned release, the newest on PyPI): gap
still there.  getmoto/moto#9132 ("EventBridge: Support StepFunctions as
RuleTarget", in moto since 5.1.10) only starts executions for moto's own S3
CreateBucket notifications (moto/events/notifications.py); PutEvents still
goes through Rule.send_to_targets, which still raises for states and lambda
targets: without this patch PutEvents answers HTTP 500 ("Expr not defined
for <class 'moto.events.models.Rule'>") and the 5 checks of test_events.py
fail.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

from .. import emulator, log

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
    emulator.invoke_emulator_async(fn, payload.encode("utf-8"), f"events rule {rule.name}")


def install() -> str:
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
