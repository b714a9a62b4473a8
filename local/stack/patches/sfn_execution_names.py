"""Unnamed StartExecution calls get a uuid4 name, as on AWS.

moto gap: StepFunctionsParserBackend.start_execution
(moto/stepfunctions/parser/models.py) uses the name as given, so an
unnamed execution was called 'None' (and a second one with the same input
was deduplicated into the first).

Checked against moto 5.2.5 (the pinned release, the newest on PyPI): gap
still there (`exec_name = name  # TODO: validate name format`).
Covered by test_sfn_unnamed_execution_gets_name.
"""

from __future__ import annotations

import uuid


def install() -> str:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(self, state_machine_arn, name=None, execution_input=None,
                        trace_header=None):
        return original(self, state_machine_arn, name or str(uuid.uuid4()),
                        execution_input, trace_header)

    StepFunctionsParserBackend.start_execution = start_execution
    return "StepFunctionsParserBackend.start_execution: missing name -> uuid4"
