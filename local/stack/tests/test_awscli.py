"""The AWS CLI the README sends people to (local/bin/aws after
`source local/env.sh`) reaches the local stack (stack/awscli_endpoints.py)."""

from __future__ import annotations

import json
import os
import subprocess

from .harness import DEV, LOCAL, ORCH, ROOT, Stack


def test_aws_cli_after_env_sh_reaches_the_local_stack(stack: Stack) -> None:
    sqs = stack.client("sqs")
    inbox = sqs.create_queue(QueueName="strict-approvals-inbox")["QueueUrl"]
    sqs.send_message(QueueUrl=inbox, MessageBody="approve me")
    sfn = stack.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="strict-cli", roleArn=f"arn:aws:iam::{ORCH}:role/strict-sfn",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass",
                                                               "End": True}}}))
    events = stack.client("events")
    try:
        events.create_event_bus(Name="stepdeploy")
    except events.exceptions.ResourceAlreadyExistsException:
        pass
    stepdeploy = ROOT / "target" / "debug" / "stepdeploy"
    raw_event = ("stepdeploy events example deploy --tenant acme | "
                 "aws events put-events --entries file:///dev/stdin"
                 if stepdeploy.exists() else "echo '(no target/debug/stepdeploy)'")
    script = f"""
        set -euo pipefail
        source local/env.sh
        echo "aws is $(command -v aws)"
        aws sqs list-queues
        aws sqs receive-message --queue-url {inbox}
        aws stepfunctions list-state-machines
        aws stepfunctions list-executions --state-machine-arn {machine['stateMachineArn']}
        aws sts get-caller-identity
        aws sts assume-role --role-arn arn:aws:iam::{DEV}:role/stepdeploy-deploy \\
            --role-session-name me --external-id stepdeploy-dev-local
        aws events put-events --entries file://events/bad/tenant-name.json
        {raw_event}
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["STEPDEPLOY_AWS_ENDPOINT"] = stack.endpoint
    run = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, (run.returncode, run.stdout[-2000:], run.stderr[-3000:])
    out = run.stdout
    assert f"aws is {LOCAL / 'bin' / 'aws'}" in out, out[:300]
    assert inbox in out, out  # sqs: the local endpoint (the stock CLI v1 went to AWS)
    assert "approve me" in out, out
    assert machine["stateMachineArn"] in out and '"executions": []' in out, out
    assert f"arn:aws:sts::{DEV}:assumed-role/stepdeploy-deploy/me" in out, out
    assert '"FailedEntryCount": 0' in out, out
