"""Execution names as on AWS: an unnamed StartExecution gets a uuid4 name, and
a name AWS refuses is refused.

AWS (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html):
`name` is optional (AWS generates a UUID), 1 to 80 characters, and must not
contain white space, brackets < > { } [ ], wildcards ? *, the characters
" # % \\ ^ | ~ ` $ & , ; : / or control characters (U+0000-001F,
U+007F-009F); otherwise InvalidName.  It matters for a parent state machine
that derives a child's Name from its own ids (an execution ARN has ':', a
rollout id plus a tenant can pass 80 characters): in AWS the child start
fails with StepFunctions.InvalidNameException.

moto gaps: StepFunctionsParserBackend.start_execution
(moto/stepfunctions/parser/models.py) uses the name as given, so an unnamed
execution was called 'None' (and a second one with the same input was
deduplicated into the first), and it validates no name at all (moto's
non-executing backend checks the characters, not the length; the parser
backend overrides it: `exec_name = name  # TODO: validate name format`).

Checked against moto 5.2.5 (the pinned release, the newest on PyPI): gaps
still there.  Covered by test_sfn_unnamed_execution_gets_name and
test_rollout_sfn.py's test_child_names_are_validated_as_aws_does.
"""

from __future__ import annotations

import uuid

# moto's list (StepFunctionBackend.invalid_chars_for_name) plus the white
# space and control characters AWS names, and the 80-character limit.
_CONTROL = {chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]}
_INVALID = set(' <>{}[]?*"#%\\^|~`$&,;:/') | _CONTROL
MAX_NAME = 80


def name_is_valid(name: str) -> bool:
    return 1 <= len(name) <= MAX_NAME and not any(c in _INVALID or c.isspace() for c in name)


def install() -> str:
    from moto.stepfunctions.exceptions import InvalidName
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(self, state_machine_arn, name=None, execution_input=None,
                        trace_header=None):
        if name is not None and not name_is_valid(name):
            raise InvalidName(f"Invalid Name: '{name}'")
        return original(self, state_machine_arn, name or str(uuid.uuid4()),
                        execution_input, trace_header)

    StepFunctionsParserBackend.start_execution = start_execution
    return ("StepFunctionsParserBackend.start_execution: missing name -> uuid4; "
            "names validated as AWS does (InvalidName)")
