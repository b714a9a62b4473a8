"""Lambda functions run in the emulator (`cargo lambda watch`), not Docker.

moto gap: LambdaFunction._invoke_lambda (moto/awslambda/models.py) starts a
Docker container; here it POSTs to the emulator (stack/emulator.py).
LambdaFunction.invoke flagged failures as 'Handled' and ran 'Event'
invocations synchronously; here failures are 'Unhandled' (what AWS reports
for an error returned by the runtime) and 'Event' invocations run in the
background (202 at once), retried twice after a function error.  Every path
that invokes a function (Invoke API, Step Functions, SNS, S3, EventBridge)
goes through LambdaFunction.invoke.

Checked against moto 5.2.5 (the pinned release, the newest on PyPI): gap
still there (Docker only; errors 'Handled'; Event runs inline).
Covered by test_lambda.py and the Step Functions checks.
"""

from __future__ import annotations

import json

from .. import emulator


def install() -> str:
    from moto.awslambda.models import LambdaFunction

    def _invoke_lambda(self, event=None):
        payload = event if isinstance(event, (str, bytes)) else json.dumps(event or {})
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        body, errored = emulator.invoke_emulator(self, payload)
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
            emulator.invoke_emulator_async(self, payload, "lambda Event invocation")
            return b""
        result, errored = emulator.invoke_emulator(self, payload)
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        response_headers["x-amz-log-result"] = ""
        return result

    LambdaFunction._invoke_lambda = _invoke_lambda
    LambdaFunction.invoke = invoke
    return (f"LambdaFunction.invoke/_invoke_lambda -> POST {emulator.endpoint}"
            "/2015-03-31/functions/<Handler>/invocations (errors: Unhandled)")
