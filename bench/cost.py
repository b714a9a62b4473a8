"""Cost per deployment and idle cost per month, from real execution histories.

    local/up && local/demo           # or any deployments on the local stack
    local/.venv/bin/python bench/cost.py [--verify-rounds 10]

Reads every finished deploy execution on the local stack and, per
environment, takes the median SUCCEEDED run's history: state transitions
(every state entered, as Step Functions Standard bills them), Lambda tasks
and their durations (billed per started millisecond at 128 MB, arm64), the
events and messages the run sends. Prices are the public list prices for
eu-west-1 (below; change them here when AWS does). Local Lambda durations
come from debug builds under `cargo lambda watch`, so they overstate what
the release builds take; the figure is an upper bound. `--verify-rounds`
adds the Wait/Verify/Choice transitions and verify invocations a real
deployment spends while ECS starts the task (the local stack is healthy at
once; in AWS a task takes a few minutes: ~10 rounds at 15 s).

Writes bench/results/cost.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
ENDPOINT = "http://127.0.0.1:5000"
SM = "arn:aws:states:eu-west-1:123456789012:stateMachine:stepdeploy-deploy-tenant"

PRICES = {  # USD, eu-west-1 list prices
    "sfn_standard_per_transition": 0.025 / 1000,
    "lambda_arm64_per_gb_second": 0.0000133334,
    "lambda_per_request": 0.20 / 1_000_000,
    "eventbridge_per_custom_event": 1.00 / 1_000_000,
    "sns_per_publish": 0.50 / 1_000_000,
    "sns_per_email": 2.00 / 100_000,
    "secretsmanager_per_secret_month": 0.40,
    "secretsmanager_per_10k_calls": 0.05,
    "cloudwatch_alarm_month": 0.10,
    "cloudwatch_logs_per_gb_ingested": 0.57,
    "github_hosted_linux_per_minute": 0.008,
}
MEMORY_GB = 128 / 1024


def history(sfn, arn: str) -> list[dict]:
    events, token = [], None
    while True:
        kw = {"executionArn": arn, "maxResults": 1000}
        if token:
            kw["nextToken"] = token
        page = sfn.get_execution_history(**kw)
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def measure(events: list[dict]) -> dict:
    transitions = sum(1 for e in events if e["type"].endswith("StateEntered"))
    scheduled = {}
    billed_ms = 0
    invocations = 0
    for e in events:
        if e["type"] == "TaskScheduled":
            scheduled["current"] = e["timestamp"]
            invocations += 1
        elif e["type"] in ("TaskSucceeded", "TaskFailed", "TaskTimedOut") and "current" in scheduled:
            billed_ms += max(1, int((e["timestamp"] - scheduled.pop("current")).total_seconds() * 1000))
    states = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    return {"transitions": transitions, "lambda_invocations": invocations, "lambda_billed_ms": billed_ms,
            "approval_gate": "ApprovalGate" in states, "promotes": "Promote" in states}


def cost(m: dict, verify_rounds: int, approvers: int) -> dict:
    transitions = m["transitions"] + 3 * verify_rounds
    invocations = m["lambda_invocations"] + verify_rounds
    billed_s = m["lambda_billed_ms"] / 1000 + verify_rounds * 0.3
    parts = {
        "step_functions": transitions * PRICES["sfn_standard_per_transition"],
        "lambda_compute": billed_s * MEMORY_GB * PRICES["lambda_arm64_per_gb_second"],
        "lambda_requests": invocations * PRICES["lambda_per_request"],
        # request in, outcome out (+ promotion)
        "eventbridge": (2 + (1 if m["promotes"] else 0)) * PRICES["eventbridge_per_custom_event"],
        # outcome message, approval mails (one publish and one e-mail per approver)
        "sns": (1 + (approvers if m["approval_gate"] else 0)) * PRICES["sns_per_publish"]
        + (approvers if m["approval_gate"] else 0) * PRICES["sns_per_email"],
        # master secret, tenant secret reads/writes, HMAC key: ~10 calls
        "secrets_manager_calls": 10 * PRICES["secretsmanager_per_10k_calls"] / 10_000,
    }
    return {"transitions": transitions, "lambda_invocations": invocations,
            "lambda_billed_seconds": round(billed_s, 3),
            "usd": {k: round(v, 7) for k, v in parts.items()}, "usd_total": round(sum(parts.values()), 6)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--verify-rounds", type=int, default=10)
    args = ap.parse_args()
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="eu-west-1")
    sfn = session.client("stepfunctions", endpoint_url=ENDPOINT)
    runs: dict[str, list[dict]] = {}
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=SM, statusFilter="SUCCEEDED"):
        for e in page["executions"]:
            env = e["name"].split("-")[1] if e["name"].count("-") >= 2 else "?"
            runs.setdefault(env, []).append(e)
    if not runs:
        raise SystemExit("no succeeded deploy runs on the local stack: run local/demo first")
    per_env = {}
    for env, executions in sorted(runs.items()):
        sample = sorted(executions, key=lambda e: e["startDate"], reverse=True)[:15]
        measured = [measure(history(sfn, e["executionArn"])) for e in sample]
        median = min(measured, key=lambda m: abs(m["lambda_billed_ms"]
                                                - statistics.median(x["lambda_billed_ms"] for x in measured)))
        rounds = args.verify_rounds if env in ("dev", "sit") else 0
        per_env[env] = {"runs_read": len(measured), "measured": median, **cost(median, rounds, approvers=3)}
    idle = {
        "hmac_key_secret": PRICES["secretsmanager_per_secret_month"],
        "cloudwatch_alarms_2": 2 * PRICES["cloudwatch_alarm_month"],
        "logs_and_storage": 0.05,
        "tables_topics_queue_bus_functions": 0.0,
    }
    ci_runner = 10 * PRICES["github_hosted_linux_per_minute"]
    out = {"date": time.strftime("%Y-%m-%d"), "prices_usd": PRICES, "verify_rounds_assumed": args.verify_rounds,
           "per_deployment": per_env, "idle_per_month_usd": round(sum(idle.values()), 2), "idle_parts": idle,
           "replaced_pipeline_per_deployment_usd": ci_runner}
    path = ROOT / "bench" / "results" / "cost.json"
    path.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print("| environment | runs read | transitions | Lambda invocations | Lambda billed s (debug builds) | USD per deployment | vs. a 10-minute CI runner |")
    print("|---|---|---|---|---|---|---|")
    for env, r in per_env.items():
        print(f"| {env} | {r['runs_read']} | {r['transitions']} | {r['lambda_invocations']} | "
              f"{r['lambda_billed_seconds']} | ${r['usd_total']:.4f} | {ci_runner / r['usd_total']:.0f}x cheaper |")
    print(f"\nidle: ${out['idle_per_month_usd']:.2f} a month; written {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
