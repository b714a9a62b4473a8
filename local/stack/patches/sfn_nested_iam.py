"""Starting a child execution takes the permissions AWS documents for it.

AWS (https://docs.aws.amazon.com/step-functions/latest/dg/stepfunctions-iam.html):
a state machine whose Task starts another one
(`arn:aws:states:::states:startExecution[.sync[:2]]`) does so with its own
role, which needs states:StartExecution on the child state machine; for
`.sync` also states:DescribeExecution and states:StopExecution on the
child's executions, and events:PutTargets, events:PutRule and
events:DescribeRule on the managed rule
arn:aws:events:<region>:<account>:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule.
Two places where AWS refuses:

* at run time, a call the role does not allow is refused by IAM: the Task
  fails with StepFunctions.AWSStepFunctionsException (the error code
  AccessDeniedException is not one the Step Functions API models; error
  name: patches/sfn_start_execution.py), Cause "User: arn:aws:sts::<account>:
  assumed-role/<role>/<session> is not authorized to perform:
  states:StartExecution on resource: <child arn> because no identity-based
  policy allows the states:StartExecution action (Service: AWSStepFunctions;
  Status Code: 400; Error Code: AccessDeniedException; ...)", and no child
  starts;
* at CreateStateMachine/UpdateStateMachine, when the definition has a
  `.sync` start of a child and the role may not manage that rule:
  AccessDeniedException "'<role arn>' is not authorized to create
  managed-rule." (AWS does not document the message; users quote it from
  CreateStateMachine/UpdateStateMachine: nasa/cumulus#2693,
  aws-ia/terraform-aws-control_tower_account_factory#365,
  terraform-aws-modules/terraform-aws-step-functions#33 and #41).  Which of
  the three actions AWS checks there is not documented: all three are
  required here, as the docs' policy grants them together.

moto gap: none of it.  moto checks no IAM for Step Functions' own calls
(its task clients sign with a fixed key; patches/sfn_credentials.py makes
them the role's), and local IAM (stack/iam_enforce.py) only judged
stepdeploy's own calls (User-Agent aws-sdk-rust), so a role without
states:StartExecution started children all the same.  Here the states
integration's clients (StartExecution, the `.sync` DescribeExecution polls)
send the header `iam_enforce.ON_BEHALF_HEADER`, which makes local IAM judge
the call against the role's policies like any of stepdeploy's; and the
parser backend's create/update_state_machine check the managed-rule
permissions for definitions with a `.sync` child start.  Other
integrations' calls (lambda:invoke, sns:publish, ...) stay unchecked, as
before (iam_enforce.py: "Not modelled").

Checked against moto 5.2.5 (the pinned release, the newest on PyPI): gap
still there (boto_client_for signs with "ak"; create_state_machine only
parses the definition).  Upstream's newest snapshot read (2026-08-22, after
5.2.3): the same.  Covered by test_rollout_sfn.py's
test_child_start_without_states_start_execution_is_refused and
test_sync_child_start_needs_the_managed_rule_permissions.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from typing import Any

MANAGED_RULE = "StepFunctionsGetEventsForStepFunctionsExecutionRule"
MANAGED_RULE_ACTIONS = ("events:PutTargets", "events:PutRule", "events:DescribeRule")
_SYNC_CHILD = re.compile(r"^arn:aws[\w-]*:states:::states:startExecution\.sync(:2)?$")


def has_sync_child_start(definition: Any) -> bool:
    """Does the definition (any nesting: Map, Parallel) start a child with .sync?"""
    if isinstance(definition, dict):
        if definition.get("Type") == "Task" and _SYNC_CHILD.match(str(definition.get("Resource", ""))):
            return True
        return any(has_sync_child_start(v) for v in definition.values())
    if isinstance(definition, list):
        return any(has_sync_child_start(v) for v in definition)
    return False


def managed_rule_refusal(role_arn: str, region: str, account: str) -> str | None:
    """None if the role may manage Step Functions' execution rule, else AWS's message."""
    from .. import iam_enforce

    rule = f"arn:aws:events:{region}:{account}:rule/{MANAGED_RULE}"
    role = iam_enforce.role_by_arn(role_arn)
    policies = iam_enforce.role_policies(role) if role is not None else []
    context = {"aws:PrincipalArn": role_arn, "aws:PrincipalAccount": account,
               "aws:PrincipalType": "AssumedRole"}
    for action in MANAGED_RULE_ACTIONS:
        if not iam_enforce.evaluate(policies, action, rule, context).allowed:
            return f"'{role_arn}' is not authorized to create managed-rule."
    return None


def install() -> str:
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sfn,
    )
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    from .. import iam_enforce, log

    class AccessDeniedException(AWSError):
        TYPE = "AccessDeniedException"
        STATUS = 400

    # --- the states integration's calls: judged by local IAM as the role's ---
    signed_as_role = state_task_service_sfn.boto_client_for
    if not getattr(signed_as_role, "__module__", "").endswith(".sfn_credentials"):
        log("WARNING: sfn_nested_iam: sfn_credentials is not applied; the states "
            "integration still signs as moto's default account")

    def _mark(request: Any, **_: Any) -> None:
        request.headers[iam_enforce.ON_BEHALF_HEADER] = iam_enforce.ON_BEHALF_STATES

    def client_for(region: str, service: str, state_credentials: Any = None):
        client = signed_as_role(region, service, state_credentials)
        client.meta.events.register("before-sign", _mark)
        return client

    state_task_service_sfn.boto_client_for = client_for

    # --- CreateStateMachine / UpdateStateMachine: the managed rule ---
    def check(backend: Any, definition: str | None, role_arn: str | None) -> None:
        try:
            parsed = json.loads(definition or "{}")
        except ValueError:
            return  # moto's own validation answers for it
        if not role_arn or not has_sync_child_start(parsed):
            return
        message = managed_rule_refusal(role_arn, backend.region_name, backend.account_id)
        if message is None:
            return
        if os.environ.get(iam_enforce.AUDIT_ENV, "") not in ("", "0"):
            iam_enforce.log(f"AUDIT would deny: {message}")
            return
        iam_enforce.log(f"denied: {message}")
        raise AccessDeniedException(message)

    original_create = StepFunctionsParserBackend.create_state_machine
    original_update = StepFunctionsParserBackend.update_state_machine
    create_sig = inspect.signature(original_create)
    update_sig = inspect.signature(original_update)

    def create_state_machine(self, *args: Any, **kwargs: Any):
        bound = create_sig.bind(self, *args, **kwargs).arguments
        check(self, bound.get("definition"), bound.get("roleArn"))
        return original_create(self, *args, **kwargs)

    def update_state_machine(self, *args: Any, **kwargs: Any):
        bound = update_sig.bind(self, *args, **kwargs).arguments
        if bound.get("definition") or bound.get("role_arn"):
            current = self.describe_state_machine(bound["arn"])
            check(self, bound.get("definition") or current.definition,
                  bound.get("role_arn") or current.roleArn)
        return original_update(self, *args, **kwargs)

    StepFunctionsParserBackend.create_state_machine = create_state_machine
    StepFunctionsParserBackend.update_state_machine = update_state_machine
    return ("states integration clients: judged by local IAM as the state machine's role; "
            "Create/UpdateStateMachine: a .sync child start needs events:PutTargets/PutRule/"
            f"DescribeRule on rule/{MANAGED_RULE}")
