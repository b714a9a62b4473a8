"""<RequestId> is rewritten only in XML bodies, and only up to the next tag.

moto gap: BaseResponse._enrich_response (moto/core/responses.py) runs a
greedy `(?<=<RequestId>).*(?=</RequestId>)` over every response body, so a
JSON body quoting XML error responses (an execution history whose task
failure causes carry the raw answer of ELBv2, IAM or Route53) lost
everything between the first <RequestId> and the last </RequestId>:
GetExecutionHistory returned the events up to the first failed task only.

Checked against moto 5.2.5 (the pinned release, the newest on PyPI): gap
still there (same regex, applied to any body).
Covered by test_sfn_history_keeps_events_after_an_error_quoting_xml.
"""

from __future__ import annotations

import re
from typing import Any


def install() -> str:
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
