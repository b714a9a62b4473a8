"""moto's gaps for stepdeploy's pipeline, one module each (README.md has the table).

Each module's install() patches moto in-process and returns one line for
the launcher's log.  They reach into moto internals, so they are checked
against one moto release (stack.MOTO_VERSION); another one gets a warning.
"""

from __future__ import annotations

from types import ModuleType

from .. import MOTO_VERSION, emulator, log
from . import (dynamodb_write_lock, ecs_startup, eventbridge_targets, lambda_invoke,
               request_id, s3_versioning, sfn_credentials, sfn_execute,
               sfn_execution_names, sfn_nested_iam, sfn_start_execution,
               sfn_status_events, sfn_task_failure_cause, strict_quotas)

# The order they have always been applied in; sfn_execute must come before
# any state machine exists.
PATCHES: list[ModuleType] = [
    sfn_execute,
    sfn_execution_names,
    lambda_invoke,
    sfn_credentials,
    sfn_start_execution,
    sfn_nested_iam,  # after sfn_credentials: wraps its client
    eventbridge_targets,
    ecs_startup,
    s3_versioning,
    sfn_task_failure_cause,
    request_id,
    dynamodb_write_lock,
    sfn_status_events,
    strict_quotas,
]


def apply(lambda_endpoint: str) -> None:
    emulator.endpoint = lambda_endpoint
    import moto

    if moto.__version__ != MOTO_VERSION:
        log(f"WARNING: patches target moto {MOTO_VERSION}, found {moto.__version__}")
    for patch in PATCHES:
        log(f"patch {patch.__name__.rsplit('.', 1)[-1]}: {patch.install()}")
