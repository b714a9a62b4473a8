"""Step Functions tasks call AWS as the account of their role.

moto gap: boto_client_for (moto/stepfunctions/parser/asl/utils/boto_client.py)
signs every task's call with the fixed key 'ak', i.e. moto's default
account, ignoring the execution role / Task 'Credentials'.  Here the key
belongs to the account of that role (AWS: the task runs as that role), and
a Lambda invoked by ARN is called in the ARN's account
(lambda_eval_utils._invoke_lambda_function).

Checked against moto 5.2.5 (the pinned release, the newest on PyPI): gap
still there (aws_access_key_id="ak").
Covered by test_sfn_in_environment_account_invokes_its_lambda.
"""

from __future__ import annotations

import re
import sys
import threading
from typing import Any

from ..emulator import EMULATOR_TIMEOUT_S

_credentials_cache: dict[str, tuple[str, str, str]] = {}
_credentials_lock = threading.Lock()


def _credentials_for(account: str, role_arn: str | None) -> tuple[str, str, str]:
    """Access key moto maps to `account`, from an in-process AssumeRole."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    role_arn = role_arn or f"arn:aws:iam::{account}:role/stepfunctions-local"
    with _credentials_lock:
        cached = _credentials_cache.get(role_arn)
        # A /moto-api/reset forgets the key: assume again then.
        if cached and cached[0] in iam_backends[account]["aws"].access_keys:
            return cached
        role = sts_backends[account]["aws"].assume_role(
            region_name="us-east-1", role_session_name="stepfunctions",
            role_arn=role_arn, policy=None, duration=43200, external_id=None,
        )
        cached = (role.access_key_id, role.secret_access_key, role.session_token)
        _credentials_cache[role_arn] = cached
        return cached


def install() -> str:
    import boto3
    from botocore.config import Config
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils,
    )
    from moto.stepfunctions.parser.asl.parse.asl_parser import (  # noqa: F401
        AmazonStateLanguageParser,  # imports every task module
    )
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for

    def client_for(region: str, service: str, state_credentials: Any = None,
                   account: str | None = None):
        role_arn = getattr(state_credentials, "role_arn", None) or None
        match = re.match(r"arn:aws[\w-]*:iam::(\d{12}):role/", role_arn or "")
        if account is None and match:
            account = match.group(1)
        if account is None:
            return original(region, service, state_credentials)
        if role_arn and match and match.group(1) != account:
            role_arn = None
        key, secret, token = _credentials_for(account, role_arn)
        return boto3.client(
            service_name=service,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            endpoint_url=f"http://127.0.0.1:{moto_server_port()}",
            config=Config(
                parameter_validation=False,
                retries={"max_attempts": 0, "total_max_attempts": 1},
                connect_timeout=60,
                read_timeout=EMULATOR_TIMEOUT_S + 60,
            ),
        )

    def _invoke_lambda_function(parameters, region, state_credentials):
        name = str(parameters.get("FunctionName", ""))
        match = re.match(r"arn:aws[\w-]*:lambda:([\w-]+):(\d{12}):", name)
        account = match.group(2) if match else None
        region = match.group(1) if match else region
        client = client_for(region, "lambda", state_credentials, account=account)
        response = client.invoke(**parameters)
        response["Payload"] = lambda_eval_utils._from_payload(response["Payload"])
        return response

    rebound = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith("moto.stepfunctions."):
            continue
        if getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = client_for
            rebound += 1
    lambda_eval_utils._invoke_lambda_function = _invoke_lambda_function
    return (f"boto_client_for (rebound in {rebound} modules) + "
            "lambda_eval_utils._invoke_lambda_function: sign as the role's account")
