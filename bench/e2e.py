"""End to end on the local stack: event put -> execution SUCCEEDED, and where
each phase's time goes (our code vs. waiting on AWS, MySQL and the site).

    local/up && local/.venv/bin/python bench/e2e.py [--runs 5] [--env dev]

Run it on an idle stack (no tests or other benchmarks at the same time): it
deploys N fresh tenants one after the other through the bus (the event a
user sends) and, for each run, reads

- the client's wall time from PutEvents to the execution's end, and the
  execution's own start -> stop;
- from the execution history: each Lambda task's time (TaskScheduled ->
  TaskSucceeded: the Lambda invoke as Step Functions sees it) and the Wait
  states' time (verify's polling interval, short locally);
- from the functions' logs (`local/.state/logs/lambda.log`): the `phase
  timing` line every invocation writes (functions/shared/src/aws/timing.rs):
  the handler's total, the time with an AWS call in flight (every HTTP
  attempt through the SDK's HTTP client), with MySQL in flight, with an HTTP
  check in flight, and the rest: **our own code** (overlapping calls count
  once).

A run's timing lines are the ones written while it ran; the script checks
that there is one per Lambda task of the run plus the trigger's, and marks
the run otherwise (something else used the stack). The functions run as
`cargo lambda watch` runs them: debug builds, so "our code" here is an upper
bound of what the release build on Lambda spends.

Writes bench/results/e2e-<env>.json and prints the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faults import BASE, deploy, history  # noqa: E402  (same directory)

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "local/.state/logs/lambda.log"
TIMING = re.compile(r"phase timing (.*)$")
FIELD = re.compile(r'(\w+)=("[^"]*"|\S+)')
FIGURES = ("total_ms", "own_ms", "aws_ms", "mysql_ms", "http_ms")


def timing_fields(line: str) -> dict[str, str] | None:
    """The fields of a `phase timing` log line (None for any other line)."""
    m = TIMING.search(line)
    return {k: v.strip('"') for k, v in FIELD.findall(m.group(1))} if m else None


def timing_lines(start: int) -> list[dict[str, Any]]:
    """The `phase timing` lines written to the functions' log after byte `start`."""
    with LOG.open("rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    lines = []
    for line in text.splitlines():
        fields = timing_fields(line)
        if fields is None:
            continue
        lines.append({"phase": fields.get("phase", "?"),
                      **{k: float(fields.get(k, 0)) for k in FIGURES},
                      "aws_calls": int(fields.get("aws_calls", 0))})
    return lines


def from_history(log: list[dict[str, Any]]) -> dict[str, Any]:
    """Lambda task and Wait state times (seconds) from an execution history."""
    tasks, waits = [], 0.0
    scheduled_at, state, wait_entered = None, None, None
    for e in log:
        t = e["timestamp"].timestamp()
        if e["type"] == "TaskStateEntered":
            state = e["stateEnteredEventDetails"]["name"]
        elif e["type"] == "TaskScheduled":
            scheduled_at = t
        elif e["type"] in ("TaskSucceeded", "TaskFailed", "TaskTimedOut") and scheduled_at:
            tasks.append({"state": state, "seconds": t - scheduled_at, "ok": e["type"] == "TaskSucceeded"})
            scheduled_at = None
        elif e["type"] == "WaitStateEntered":
            wait_entered = t
        elif e["type"] == "WaitStateExited" and wait_entered:
            waits += t - wait_entered
            wait_entered = None
    return {"tasks": tasks, "wait_s": waits}


NESTED = "mysql-agent"
PHASE_ORDER = ["trigger", "bootstrap", "database", NESTED, "ecs", "verify", "dns", "notify"]


def one_run(sfn: Any, events: Any, env: str, timeout: float) -> dict[str, Any]:
    tenant = f"e2e{uuid.uuid4().int % 10**12:012d}"
    start = LOG.stat().st_size if LOG.exists() else 0
    run = deploy(sfn, events, tenant, env, timeout)
    run["tenant"] = tenant
    if not run.get("execution"):
        return run
    described = sfn.describe_execution(executionArn=run["execution"])
    run["execution_s"] = round((described["stopDate"] - described["startDate"]).total_seconds(), 3)
    h = from_history(history(sfn, run["execution"]))
    time.sleep(1.0)  # the last invocation's log line
    every = timing_lines(start)
    run["invocations"] = every
    # The MySQL agent runs inside database's and rollback's AWS calls (they
    # invoke it): listed as its own phase, left out of the totals (counted once).
    lines = [line for line in every if line["phase"] != NESTED]
    run["tasks"] = h["tasks"]
    run["wait_s"] = round(h["wait_s"], 3)
    run["timing_complete"] = len(lines) == len(h["tasks"]) + 1  # + the trigger
    per_phase: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for line in every:
        p = per_phase[line["phase"]]
        p["invocations"] += 1
        for k in FIGURES + ("aws_calls",):
            p[k] += line[k]
    run["phases"] = {k: {f: round(v, 1) for f, v in p.items()} for k, p in per_phase.items()}
    task_s = sum(t["seconds"] for t in h["tasks"])
    handler_s = sum(line["total_ms"] for line in lines) / 1000
    run["totals"] = {
        "own_ms": round(sum(line["own_ms"] for line in lines), 1),
        "aws_ms": round(sum(line["aws_ms"] for line in lines), 1),
        "mysql_ms": round(sum(line["mysql_ms"] for line in lines), 1),
        "http_ms": round(sum(line["http_ms"] for line in lines), 1),
        "handlers_ms": round(handler_s * 1000, 1),
        # Lambda tasks as Step Functions saw them, less the handlers (trigger excluded).
        "lambda_invoke_overhead_ms": round(
            (task_s - (handler_s - sum(line["total_ms"] for line in lines
                                       if line["phase"] == "trigger") / 1000)) * 1000, 1),
        "wait_states_ms": round(h["wait_s"] * 1000, 1),
        "tasks_ms": round(task_s * 1000, 1),
    }
    return run


def median(values: list[float]) -> float:
    return round(statistics.median(values), 1) if values else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--env", default="dev", choices=["dev", "sit"])
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    if not LOG.exists():
        raise SystemExit(f"{LOG} not found: is the local stack up? (local/up)")
    sfn, events = boto3.client("stepfunctions", **BASE), boto3.client("events", **BASE)
    runs = []
    for i in range(args.runs):
        run = one_run(sfn, events, args.env, args.timeout)
        runs.append(run)
        t = run.get("totals", {})
        print(f"  {i + 1}/{args.runs} {run['tenant']}: {run['status']} in {run['wall_s']} s; "
              f"our code {t.get('own_ms')} ms, AWS {t.get('aws_ms')} ms, MySQL {t.get('mysql_ms')} ms, "
              f"site {t.get('http_ms')} ms{'' if run.get('timing_complete') else ' (timing lines incomplete: stack not idle?)'}",
              flush=True)
    good = [r for r in runs if r["status"] == "SUCCEEDED" and r.get("timing_complete")]
    phases = sorted({p for r in good for p in r["phases"]},
                    key=lambda p: PHASE_ORDER.index(p) if p in PHASE_ORDER else 99)
    summary = {
        "runs": len(runs), "succeeded": sum(r["status"] == "SUCCEEDED" for r in runs),
        "runs_measured": len(good),
        "wall_s_median": median([r["wall_s"] for r in good]),
        "execution_s_median": median([r["execution_s"] for r in good]),
        "totals_median_ms": {k: median([r["totals"][k] for r in good]) for k in
                             ("own_ms", "aws_ms", "mysql_ms", "http_ms", "handlers_ms",
                              "lambda_invoke_overhead_ms", "wait_states_ms", "tasks_ms")},
        "phases_median": {p: {k: median([r["phases"][p][k] for r in good if p in r["phases"]])
                              for k in ("invocations", "total_ms", "own_ms", "aws_ms", "aws_calls",
                                        "mysql_ms", "http_ms")} for p in phases},
        "target_own_code_ms": 1000,
    }
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "env": args.env, "build": "debug (cargo lambda watch)", "summary": summary, "runs": runs,
    }
    path = ROOT / "bench" / "results" / f"e2e-{args.env}.json"
    path.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"\n{len(good)} of {len(runs)} runs measured; medians:")
    print("| phase | invocations | handler ms | our code ms | AWS ms (calls) | MySQL ms | site ms |")
    print("|---|---|---|---|---|---|---|")
    for p, v in summary["phases_median"].items():
        print(f"| {p} | {v['invocations']:.0f} | {v['total_ms']} | {v['own_ms']} | {v['aws_ms']} "
              f"({v['aws_calls']:.0f}) | {v['mysql_ms']} | {v['http_ms']} |")
    t = summary["totals_median_ms"]
    print(f"\nevent put -> SUCCEEDED {summary['wall_s_median']} s (execution {summary['execution_s_median']} s): "
          f"our code {t['own_ms']} ms, AWS {t['aws_ms']} ms, MySQL {t['mysql_ms']} ms, site {t['http_ms']} ms, "
          f"Lambda invoke path {t['lambda_invoke_overhead_ms']} ms, Wait states {t['wait_states_ms']} ms")
    print(f"written: {path.relative_to(ROOT)}")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
