"""SendTaskFailure passes its cause on to the waiting task.

moto gap: the response handler reads only taskToken and error
(moto/stepfunctions/responses.py StepFunctionResponse.send_task_failure),
so a rejected approval reached the state machine without its reason.

Checked against moto 5.2.5 (the pinned release, the newest on PyPI): gap
still there (the backend takes a cause; the handler does not pass it).  No
check of stack/tests covers it; tried by hand: without the patch a waitForTaskToken
execution failed by SendTaskFailure(cause="because") ends with cause None.
"""

from __future__ import annotations


def install() -> str:
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self):
        from moto.core.responses import EmptyResult

        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"),
            cause=self._get_param("cause"))
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure
    return "StepFunctionResponse.send_task_failure: keeps the cause"
