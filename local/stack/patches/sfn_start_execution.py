"""The Step Functions integration `arn:aws:states:::states:startExecution`
(request-response, `.sync`, `.sync:2`, `.waitForTaskToken`): a state machine
starting a child execution works, with AWS's field names, as AWS documents it.

AWS (https://docs.aws.amazon.com/step-functions/latest/dg/connect-stepfunctions.html):
the Task's Parameters are StartExecution's members in the States Language's
PascalCase (StateMachineArn, Input, Name); `.sync` waits for the child and its
result is the child's DescribeExecution response with PascalCase keys
(ExecutionArn, Input, InputDetails, Name, Output, OutputDetails, StartDate,
StateMachineArn, Status, StopDate); `.sync:2` has Input/Output as JSON
instead of strings.  A child that does not succeed fails the Task with
States.TaskFailed, its Cause that DescribeExecution response as a JSON string
(recorded against AWS: localstack/localstack
tests/aws/services/stepfunctions/v2/callback/test_callback.snapshot.json,
test_start_execution_sync2 and test_start_execution_sync_delegate_failure).

moto gap: StateTaskService._normalise_parameters / _normalise_response
(moto/stepfunctions/parser/asl/component/state/exec/state_task/service/
state_task_service.py) are `pass` in moto (LocalStack, where the parser comes
from, maps the keys between the States Language and boto's member names with
botocore's shapes).  So the PascalCase Parameters reach boto3's
start_execution as they are and botocore's serializer raises KeyError
'StateMachineArn': every such Task failed with States.Runtime, cause
"'StateMachineArn'", and no child ever started.  The response side had the
same hole (the sync resolvers read submission_output["ExecutionArn"] from
boto's camelCase answer).  Services whose boto members are PascalCase
already (Lambda, SNS, DynamoDB) never noticed.  Here, for the states
integration only:

* Parameters -> StartExecution's members (stateMachineArn, input, name,
  traceHeader); StartExecution's and DescribeExecution's answers -> the
  PascalCase keys AWS gives the state machine, nested structures too
  (InputDetails.Included); timestamps as epoch milliseconds (moto gave
  datetimes, which its JSON encoder turned into ISO strings; the
  AWS-recorded snapshot masks the dates, so the number format is what Step
  Functions' integrations are known to emit, not verified here: a state
  machine should not parse StartDate/StopDate);
* DescribeExecution's answer has inputDetails {"included": true}, which
  AWS always sends for API calls and moto left out (so the `.sync` result
  had no InputDetails);
* a refused call's error name is AWS's "StepFunctions.<exception class>":
  StepFunctions.ExecutionAlreadyExistsException, StepFunctions.
  StateMachineDoesNotExistException (AWS-recorded: the snapshot of
  localstack's tests/aws/services/stepfunctions/v2/error_handling/
  test_task_service_sfn.py), and for an error code the Step Functions API
  does not model (AccessDeniedException from IAM) the SDK's generic
  StepFunctions.AWSStepFunctionsException (moto made it
  "StepFunctions.AccessDeniedExceptionException"; AWS does not document
  this case: the generic name is inferred from Lambda's documented
  Lambda.AWSLambdaException and from AWS's own Step Functions Local, which
  named an UnrecognizedClientException "StepFunctions-AWSStepFunctions
  Exception", localstack/localstack#1869).  The Cause keeps moto's
  (AWS's) "<message> (Service: AWSStepFunctions; Status Code: 400; Error
  Code: ...; Request ID: ...; Proxy: null)".

Checked against moto 5.2.5 (the pinned release, the newest on PyPI): gap
still there.  Upstream: getmoto/moto#10076 (open), fixes proposed in the
open pull requests #10094 and #10101; the master branch of the newest
snapshot read (2026-08-22, after 5.2.3) still has the `pass` bodies.
Covered by the checks of stack/tests/test_rollout_sfn.py (without it, every
child start fails with States.Runtime).
"""

from __future__ import annotations

import datetime
from typing import Any

_service_model = None


def _model() -> Any:
    global _service_model
    if _service_model is None:
        import botocore.session

        _service_model = botocore.session.get_session().get_service_model("stepfunctions")
    return _service_model


def _operation(action: str) -> Any:
    """The botocore operation model of a boto action name (start_execution)."""
    from botocore import xform_name

    model = _model()
    for name in model.operation_names:
        if xform_name(name) == action:
            return model.operation_model(name)
    raise KeyError(f"stepfunctions has no operation {action!r}")


def _sfn_cased(value: Any, shape: Any) -> Any:
    """boto's answer as Step Functions hands it to the state machine."""
    from botocore.model import ListShape, StructureShape

    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return {key[:1].upper() + key[1:]: _sfn_cased(item, shape.members.get(key))
                for key, item in value.items()}
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_sfn_cased(item, shape.member) for item in value]
    return value


def error_name(code: str) -> str:
    """AWS's error name for a refused Step Functions call: the SDK's exception class."""
    for shape in _model().error_shapes:
        if (shape.error_code or shape.name) == code:
            return f"StepFunctions.{shape.name if shape.name.endswith('Exception') else shape.name + 'Exception'}"
    return "StepFunctions.AWSStepFunctionsException"


def install() -> str:
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original_parameters = StateTaskServiceSfn._normalise_parameters
    original_from_error = StateTaskServiceSfn._from_error

    def _normalise_parameters(self, parameters, boto_service_name=None,
                              service_action_name=None) -> None:
        original_parameters(self, parameters, boto_service_name, service_action_name)
        action = service_action_name or self._get_boto_service_action()
        members = {m.lower(): m for m in _operation(action).input_shape.members}
        for key in list(parameters):
            member = members.get(key.lower())
            if member is not None and member != key:
                parameters[member] = parameters.pop(key)

    def _normalise_response(self, response, boto_service_name=None,
                            service_action_name=None) -> None:
        if not isinstance(response, dict):
            return
        action = service_action_name or self._get_boto_service_action()
        converted = _sfn_cased(response, _operation(action).output_shape)
        response.clear()
        response.update(converted)

    def _from_error(self, env, ex):
        if not isinstance(ex, ClientError):
            return original_from_error(self, env, ex)
        error = ex.response.get("Error", {})
        meta = ex.response.get("ResponseMetadata", {})
        code = error.get("Code", "")
        name = error_name(code)
        cause = (f"{error.get('Message', '')} (Service: AWSStepFunctions; Status Code: "
                 f"{meta.get('HTTPStatusCode')}; Error Code: {code}; Request ID: "
                 f"{meta.get('RequestId')}; Proxy: null)")
        return FailureEvent(
            env=env, error_name=CustomErrorName(name), event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
                error=name, cause=cause, resource=self._get_sfn_resource(),
                resourceType=self._get_sfn_resource_type())))

    from moto.stepfunctions.responses import StepFunctionResponse

    original_describe = StepFunctionResponse.describe_execution

    def describe_execution(self):
        answer = original_describe(self)
        result = getattr(answer, "result", None)
        if isinstance(result, dict):
            result.setdefault("inputDetails", {"included": True})
        return answer

    StepFunctionResponse.describe_execution = describe_execution
    StateTaskServiceSfn._normalise_parameters = _normalise_parameters
    StateTaskServiceSfn._normalise_response = _normalise_response
    StateTaskServiceSfn._from_error = _from_error
    return ("StateTaskServiceSfn._normalise_parameters/_normalise_response/_from_error: "
            "startExecution Parameters and results in AWS's casing, epoch-ms dates, "
            "StepFunctions.<Exception> error names; DescribeExecution: inputDetails")
