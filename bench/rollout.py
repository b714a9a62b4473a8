"""A fleet rollout on the local stack: how long one image takes to reach a fleet.

    local/up
    local/.venv/bin/python bench/rollout.py                      # 13 tenants of sit: canary wave (2) + 50% + the rest
    local/.venv/bin/python bench/rollout.py --tenants 40 --max-parallel 10 --env dev

Deploys N fresh tenants (labelled with a fleet tag of this run, two of them
`ring: canary`) at the old image, waits for them, then puts one
`Fleet Rollout Requested` event (canaries, then 50%, then the rest; bake 0)
and waits for the rollout run. Reports the wall time from the event to the
run's end, each wave's Map time and its slowest child, the time spent
outside the waves (plan, judges, report), and the children's median run
time, all read from the execution histories. Leaves the tenants deployed
(they are this run's own; `local/down` clears the stack).

Writes bench/results/rollout-<env>-<N>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
ENDPOINT = "http://127.0.0.1:5000"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
DEPLOY = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:stepdeploy-deploy-tenant"
ROLLOUT = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:stepdeploy-rollout-fleet"
session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
sfn = session.client("stepfunctions", endpoint_url=ENDPOINT)
events = session.client("events", endpoint_url=ENDPOINT)

OLD, NEW = "wordpress:6.4-apache", "wordpress:6.5-apache"


def put(detail_type: str, details: list[dict]) -> None:
    for i in range(0, len(details), 10):
        out = events.put_events(Entries=[
            {"Source": "stepdeploy", "DetailType": detail_type, "EventBusName": "stepdeploy",
             "Detail": json.dumps(d)} for d in details[i:i + 10]])
        assert out["FailedEntryCount"] == 0, out


def executions(machine: str, prefix: str) -> list[dict]:
    found, token = [], None
    while True:
        page = sfn.list_executions(stateMachineArn=machine, **({"nextToken": token} if token else {}))
        found += [e for e in page["executions"] if e["name"].startswith(prefix)]
        token = page.get("nextToken")
        if not token:
            return found


def wait_all(machine: str, prefixes: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        done = []
        for prefix in prefixes:
            runs = [e for e in executions(machine, prefix) if e["status"] != "RUNNING"]
            done += runs[:1]
        if len(done) == len(prefixes):
            return done
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(done)} of {len(prefixes)} runs ended within {timeout} s")
        time.sleep(1)


def history(arn: str) -> list[dict]:
    found, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        found += page["events"]
        token = page.get("nextToken")
        if not token:
            return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tenants", type=int, default=13)
    ap.add_argument("--env", default="sit", choices=["dev", "sit"])
    ap.add_argument("--max-parallel", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=1200)
    args = ap.parse_args()
    tag = "b" + uuid.uuid4().hex[:10]
    tenants = [f"{tag}{i:03d}" for i in range(args.tenants)]
    put("Tenant Deployment Requested", [
        {"tenant": t, "environment": args.env, "image": OLD, "requested_by": "bench@kimmyai.io",
         "labels": {"fleet": tag, "ring": "canary" if i < 2 else "main"}} for i, t in enumerate(tenants)])
    first = wait_all(DEPLOY, [f"{t}-{args.env}-" for t in tenants], args.timeout)
    failed = [e["name"] for e in first if e["status"] != "SUCCEEDED"]
    if failed:
        raise SystemExit(f"the fleet's first deployments failed: {failed}")

    started = time.monotonic()
    put("Fleet Rollout Requested", [{
        "environment": args.env, "image": NEW, "tenants": {"labels": {"fleet": tag}},
        "waves": [{"labels": {"ring": "canary"}}, {"percent": 50}], "max_parallel": args.max_parallel,
        "bake_seconds": 0, "requested_by": "bench@kimmyai.io", "request_id": tag}])
    (run,) = wait_all(ROLLOUT, [f"rollout-{args.env}-{tag}"], args.timeout)
    wall = time.monotonic() - started
    described = sfn.describe_execution(executionArn=run["executionArn"])
    events_ = history(run["executionArn"])
    waves, entered = [], {}
    for e in events_:
        kind = e["type"]
        if kind == "MapStateEntered":
            entered["map"] = e["timestamp"]
        elif kind == "MapStateExited":
            waves.append((e["timestamp"] - entered.pop("map")).total_seconds())
    children = []
    for t in tenants:
        for e in executions(DEPLOY, f"{t}-{args.env}-rollout-"):
            d = sfn.describe_execution(executionArn=e["executionArn"])
            children.append({"tenant": t, "status": d["status"],
                             "seconds": (d["stopDate"] - d["startDate"]).total_seconds()})
    execution_seconds = (described["stopDate"] - described["startDate"]).total_seconds()
    result = {
        "when": time.strftime("%Y-%m-%d"),
        "environment": args.env,
        "tenants": args.tenants,
        "max_parallel": args.max_parallel,
        "status": described["status"],
        "event_to_end_seconds": round(wall, 1),
        "execution_seconds": round(execution_seconds, 1),
        "wave_seconds": [round(w, 1) for w in waves],
        "outside_waves_seconds": round(execution_seconds - sum(waves), 1),
        "children": len(children),
        "children_succeeded": sum(c["status"] == "SUCCEEDED" for c in children),
        "child_median_seconds": round(statistics.median(c["seconds"] for c in children), 1) if children else None,
        "child_max_seconds": round(max(c["seconds"] for c in children), 1) if children else None,
        "history_events": len(events_),
    }
    out = ROOT / "bench" / "results" / f"rollout-{args.env}-{args.tenants}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
