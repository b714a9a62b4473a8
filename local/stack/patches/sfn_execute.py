"""Step Functions interprets state machine definitions.

moto gap: moto only records executions unless its user config says
`execute_state_machine`, and picks the executing backend per request from
that config, so it must be on before the first state machine is created
(moto/core/config.py default_user_config, read by
moto/stepfunctions/responses.py get_backend).

Checked against moto 5.2.5 (the pinned release, the newest on PyPI): still
off by default.  A setting rather than a bug, so it stays.
"""

from __future__ import annotations


def install() -> str:
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    return "stepfunctions.execute_state_machine = true (default_user_config)"
