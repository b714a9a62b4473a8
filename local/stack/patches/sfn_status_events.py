"""Step Functions "Execution Status Change" events on the default bus.

AWS sends one EventBridge event (source aws.states, detail-type "Step
Functions Execution Status Change") to the account's default bus whenever a
standard execution changes status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT,
ABORTED).  stepdeploy's cleanup rule listens for the ends that skip the
state machine's own Catch (a StopExecution, a timeout, States.Runtime).
moto gap: moto emits none.  Checked against moto 5.2.5 (the pinned
release, the newest on PyPI): gap still there (no "Execution Status Change"
anywhere in moto).  Here every execution that ends puts one, with AWS's
detail fields, through moto's own put_events, so rules and targets see it
as they would in AWS.  RUNNING is not emitted.

StopExecution takes effect at once in AWS (the execution is ABORTED and its
status-change event sent), whatever the run is doing.  moto's engine only
notices a stop at its next state transition, so a run waiting at a
waitForTaskToken task stayed RUNNING until the task's timeout (a day in prod):
here a stop marks the execution ABORTED and sends its event at once; the
engine's own end later sends no second event.  Covered by
test_sfn_stop_while_a_task_waits_is_immediate (the events themselves: the
Rust cleanup tests).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

DETAIL_TYPE = "Step Functions Execution Status Change"


def _millis(value: Any) -> int | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp() * 1000)
    return None


def status_change(execution: Any) -> dict[str, Any]:
    """The put_events entry AWS would send for `execution`'s end."""
    status = getattr(execution.exec_status, "value", str(execution.exec_status))
    detail = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine.arn,
        "name": execution.name,
        "status": status,
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(getattr(execution, "stop_date", None)),
        "input": None,
        "output": None,
        "error": getattr(execution, "error", None),
        "cause": getattr(execution, "cause", None),
    }
    return {
        "Source": "aws.states",
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail),
        "Resources": [execution.exec_arn],
        "EventBusName": "default",
    }


def install() -> str:
    from moto.events.models import events_backends
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    original = BaseExecutionWorkerCommunication.terminated

    def send(execution: Any) -> None:
        if getattr(execution, "_stepdeploy_status_sent", False):
            return
        execution._stepdeploy_status_sent = True
        try:
            backend = events_backends[execution.account_id][execution.region_name]
            backend.put_events([status_change(execution)])
        except Exception as err:  # noqa: BLE001 - a lost event must not break the execution
            print(f"[moto_launcher] sfn status event for {execution.exec_arn} not sent: {err!r}",
                  flush=True)

    def terminated(self: Any) -> None:
        stopped = getattr(self.execution, "_stepdeploy_stopped", None)
        original(self)
        if stopped is not None:
            # Stopped earlier: keep what StopExecution answered.
            self.execution.exec_status, self.execution.stop_date = stopped
        send(self.execution)

    BaseExecutionWorkerCommunication.terminated = terminated

    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.backend.execution import Execution

    original_stop = Execution.stop

    def stop(self: Any, stop_date: Any, error: Any, cause: Any) -> None:
        original_stop(self, stop_date=stop_date, error=error, cause=cause)
        if self.exec_status == ExecutionStatus.RUNNING:
            self.exec_status = ExecutionStatus.ABORTED
            self.stop_date = stop_date
            self._stepdeploy_stopped = (self.exec_status, self.stop_date)
            send(self)

    Execution.stop = stop
    return ("BaseExecutionWorkerCommunication.terminated: puts 'Step Functions Execution "
            "Status Change' on the default bus (SUCCEEDED/FAILED/TIMED_OUT/ABORTED); "
            "Execution.stop: ABORTED at once, even while a task waits")
