"""Fleet scale on the local stack: many tenants deployed at once.

    local/up
    local/.venv/bin/python bench/fleet.py --tenants 100 --env dev     # 100 distinct tenants at once
    local/.venv/bin/python bench/fleet.py --fleet 13                  # 13 tenants x dev, sit, prod (prod approved over HTTP)
    local/.venv/bin/python bench/fleet.py --bootstrap-scale 1000      # the allocation path alone, as the registry grows

The first two put every `Tenant Deployment Requested` event on the bus at
once (PutEvents, 10 a call), approve the prod runs as their mails arrive (two
distinct approvers each, through the links, as people do), wait for every
execution and report: how many succeeded, the failures by error, the wall
time from the first event to the last run's end, the median and slowest run,
how many Lambda tasks the state machine retried, and whether the ALB
priorities are unique (the environment's listener rules and the registry,
read through its deploy role). The third runs bootstrap alone for N new
tenants in one environment, one after another, and reports how its time and
AWS calls grow with the number of tenants already there (see
bootstrap_scale).

Writes bench/results/fleet-<mode>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e import timing_fields  # noqa: E402  (same directory)

ROOT = Path(__file__).resolve().parent.parent
ENDPOINT = "http://127.0.0.1:5000"
REGION = "eu-west-1"
SM = f"arn:aws:states:{REGION}:123456789012:stateMachine:stepdeploy-deploy-tenant"
session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
sfn = session.client("stepfunctions", endpoint_url=ENDPOINT)
events = session.client("events", endpoint_url=ENDPOINT)
sqs = session.client("sqs", endpoint_url=ENDPOINT)


def env_config(name: str) -> dict:
    return json.loads((ROOT / "local" / ".state" / "environments" / f"{name}.json").read_text())


def env_session(name: str) -> boto3.session.Session:
    cfg = env_config(name)
    sts = session.client("sts", endpoint_url=ENDPOINT)
    creds = sts.assume_role(RoleArn=cfg["deploy_role_arn"], RoleSessionName="stepdeploy-bench",
                            ExternalId=cfg["external_id"])["Credentials"]
    return boto3.session.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                 aws_session_token=creds["SessionToken"], region_name=cfg["region"])


def put_all(requests: list[tuple[str, str]], detail_type: str = "Tenant Deployment Requested") -> dict[str, tuple[str, str]]:
    """Puts one event per (tenant, env); returns execution name -> (tenant, env)."""
    names = {}
    entries = []
    for tenant, env in requests:
        rid = str(uuid.uuid4())
        names[f"{tenant}-{env}-{rid}"] = (tenant, env)
        entries.append({"EventBusName": "stepdeploy", "Source": "stepdeploy", "DetailType": detail_type,
                        "Detail": json.dumps({"tenant": tenant, "environment": env, "requested_by": "bench@example.com",
                                              "request_id": rid})})
    for i in range(0, len(entries), 10):
        out = events.put_events(Entries=entries[i:i + 10])
        if out["FailedEntryCount"]:
            raise SystemExit(f"PutEvents refused entries: {out['Entries']}")
    return names


def http_post(url: str, data: str) -> int:
    req = urllib.request.Request(url, data=data.encode(), method="POST",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def approver_loop(tenants: set[str], stop: threading.Event, approved: dict[str, int]) -> None:
    """Approves prod runs of `tenants` as their mails arrive: two approvers each (lead and ops)."""
    queue = sqs.get_queue_url(QueueName="stepdeploy-approvals-inbox")["QueueUrl"]
    while not stop.is_set():
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            envelope = json.loads(m["Body"])
            text = envelope.get("Message", "")
            tenant = next((t for t in tenants if f"deploy {t} to" in text), None)
            if tenant is None:
                continue
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
            approver = envelope["MessageAttributes"]["approver"]["Value"]
            if approver == "cto@example.com":
                continue
            link = next(l.split("Approve:", 1)[1].strip() for l in text.splitlines() if l.startswith("Approve:"))
            base, query = link.split("?", 1)
            if http_post(base, query + "&reason=bench") == 200:
                approved[tenant] = approved.get(tenant, 0) + 1


def wait_all(names: dict[str, tuple[str, str]], timeout: float, machine: str = SM) -> dict[str, dict]:
    arns = {n: machine.replace(":stateMachine:", ":execution:") + f":{n}" for n in names}
    done: dict[str, dict] = {}
    deadline = time.time() + timeout
    while len(done) < len(arns) and time.time() < deadline:
        for name, arn in arns.items():
            if name in done:
                continue
            try:
                d = sfn.describe_execution(executionArn=arn)
            except sfn.exceptions.ExecutionDoesNotExist:
                continue
            if d["status"] != "RUNNING":
                done[name] = d
        time.sleep(2)
    missing = set(arns) - set(done)
    if missing:
        raise SystemExit(f"{len(missing)} runs did not finish in {timeout:.0f} s, e.g. {sorted(missing)[:3]}")
    return done


def retries(arn: str) -> int:
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    scheduled = sum(1 for e in history if e["type"] == "TaskScheduled")
    entered = sum(1 for e in history if e["type"] == "TaskStateEntered")
    return max(0, scheduled - entered)


def priorities(env: str, tenants: set[str]) -> dict:
    cfg = env_config(env)
    s = env_session(env)
    elb = s.client("elbv2", endpoint_url=ENDPOINT)
    rules = []
    for page in elb.get_paginator("describe_rules").paginate(ListenerArn=cfg["alb_listener_arn"]):
        rules += [r for r in page["Rules"] if r["Priority"] != "default"]
    hosts = {}
    for r in rules:
        for c in r.get("Conditions", []):
            for h in c.get("HostHeaderConfig", {}).get("Values", []) + c.get("Values", []):
                hosts[h] = int(r["Priority"])
    ours = {t: hosts.get(f"{t}.wp{env}.{cfg['domain']}") for t in tenants}
    values = [p for p in ours.values() if p is not None]
    all_priorities = [int(r["Priority"]) for r in rules]
    return {"rules_on_listener": len(rules), "tenants_with_rule": len(values),
            "unique_on_listener": len(all_priorities) == len(set(all_priorities)),
            "unique_among_tenants": len(values) == len(set(values))}


def deploy_at_once(requests: list[tuple[str, str]], timeout: float, keep: bool) -> dict:
    prod = {t for t, e in requests if e == "prod"}
    stop, approved = threading.Event(), {}
    approver = threading.Thread(target=approver_loop, args=(prod, stop, approved), daemon=True)
    if prod:
        approver.start()
    start = time.time()
    names = put_all(requests)
    done = wait_all(names, timeout)
    stop.set()
    wall = max(d["stopDate"].timestamp() for d in done.values()) - start
    durations = sorted((d["stopDate"] - d["startDate"]).total_seconds() for d in done.values())
    failures: dict[str, int] = {}
    for d in done.values():
        if d["status"] != "SUCCEEDED":
            key = d.get("error") or d["status"]
            failures[key] = failures.get(key, 0) + 1
    retried = sum(retries(d["executionArn"]) for d in done.values())
    envs = sorted({e for _, e in requests})
    result = {
        "runs": len(done),
        "succeeded": sum(1 for d in done.values() if d["status"] == "SUCCEEDED"),
        "failures": failures,
        "wall_seconds": round(wall, 1),
        "run_seconds_median": round(statistics.median(durations), 1),
        "run_seconds_slowest": round(durations[-1], 1),
        "task_retries": retried,
        "priorities": {e: priorities(e, {t for t, x in requests if x == e}) for e in envs},
    }
    if not keep:
        # Leave the shared local stack as it was: every tenant torn down (their priorities freed).
        gone = put_all(requests, "Tenant Teardown Requested")
        wait_all(gone, timeout, SM.replace("deploy-tenant", "teardown-tenant"))
    return result


class LocalRuntime:
    """A function's binary against a Lambda Runtime API served here: one
    invocation at a time, as Lambda runs it; its `phase timing` log lines
    (functions/shared/src/aws/timing.rs) are read from its output."""

    def __init__(self, binary: Path, env: dict[str, str]) -> None:

        self.events: "queue.Queue[bytes]" = queue.Queue()
        self.answers: "queue.Queue[tuple[bool, bytes]]" = queue.Queue()
        self.timings: "queue.Queue[dict]" = queue.Queue()
        runtime = self

        class Api(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                while True:
                    try:
                        body = runtime.events.get(timeout=1)
                        break
                    except queue.Empty:
                        if runtime.closed:
                            self.send_error(503)
                            return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Lambda-Runtime-Aws-Request-Id", str(uuid.uuid4()))
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 300_000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 f"arn:aws:lambda:{REGION}:123456789012:function:{binary.name}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if self.path.endswith("/response") or self.path.endswith("/error"):
                    runtime.answers.put((self.path.endswith("/error"), body))

        self.closed = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.proc = subprocess.Popen(
            [str(binary)], env={**env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.server.server_address[1]}",
                                "AWS_LAMBDA_FUNCTION_NAME": binary.name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
                                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read_output, daemon=True).start()

    def _read_output(self) -> None:
        for line in self.proc.stdout:
            fields = timing_fields(line)
            if fields is not None:
                self.timings.put(fields)

    def invoke(self, payload: object) -> tuple[object, bool, dict]:
        self.events.put(json.dumps(payload).encode())
        failed, body = self.answers.get(timeout=300)
        try:
            timing = self.timings.get(timeout=2)
        except queue.Empty:
            timing = {}
        return json.loads(body or b"null"), failed, timing

    def close(self) -> None:
        self.closed = True
        self.proc.kill()
        self.proc.wait()
        self.server.shutdown()


def bootstrap_scale(env: str, count: int) -> dict:
    """bootstrap alone for `count` new tenants in `env`, one after another:
    its time and AWS calls as the claims and the registry grow.

    Runs the bootstrap binary (target/debug, as the local stack runs it)
    against a Runtime API served here, with the local stack's environment
    configs except that `env`'s priority range is widened to fit `count`
    tenants (a listener holds at most 100 rules under the ALB's default
    quota, so this measures the allocation and registry paths, not a real
    listener with 1,000 rules). Every claim, lock and registry entry is given
    back afterwards by the rollback binary, run the same way.
    """

    configs = Path(tempfile.mkdtemp(prefix="stepdeploy-scale-"))
    for f in (ROOT / "local" / ".state" / "environments").glob("*.json"):
        shutil.copy(f, configs / f.name)
    cfg = json.loads((configs / f"{env}.json").read_text())
    span = cfg["alb_priority_range"]
    span["max"] = min(50_000, max(span["max"], span["min"] + count + 50))
    (configs / f"{env}.json").write_text(json.dumps(cfg, indent=2))
    run_env = {"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": ENDPOINT, "AWS_REGION": REGION,
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_EC2_METADATA_DISABLED": "true", "STEPDEPLOY_CONFIG_DIR": str(configs), "RUST_LOG": "info"}
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
    bootstrap = LocalRuntime(target / "bootstrap", run_env)
    stamp = int(time.time()) % 10**6
    points, plans = [], []
    try:
        for i in range(count):
            tenant = f"scale{stamp}x{i}"
            event = {"version": "0", "id": f"scale-{tenant}", "detail-type": "Tenant Deployment Requested",
                     "source": "stepdeploy", "account": "123456789012", "time": "2026-11-22T10:00:00Z",
                     "region": REGION, "resources": [],
                     "detail": {"tenant": tenant, "environment": env, "requested_by": "bench@example.com"}}
            execution = SM.replace(":stateMachine:", ":execution:") + f":{tenant}-{env}-scale"
            t0 = time.perf_counter()
            out, failed, timing = bootstrap.invoke(
                {"event": event, "execution": execution, "started_at": "2026-11-22T10:00:00Z"})
            took = time.perf_counter() - t0
            if failed:
                points.append({"existing": i, "error": out.get("errorType") if isinstance(out, dict) else out})
                print(f"  bootstrap {i}: {points[-1]['error']}: {out}", flush=True)
                break
            plans.append(out)
            points.append({"existing": i, "priority": out.get("alb_priority"), "seconds": round(took, 4),
                           "aws_calls": int(timing.get("aws_calls", 0)),
                           "own_ms": float(timing.get("own_ms", 0)), "aws_ms": float(timing.get("aws_ms", 0))})
            if i % 100 == 0 or i == count - 1:
                print(f"  {i + 1}/{count}: {points[-1]}", flush=True)
    finally:
        bootstrap.close()
        # Give every lock and priority claim back (rollback of a bootstrap-only run).
        rollback = LocalRuntime(target / "rollback", run_env)
        try:
            for plan in plans:
                rollback.invoke({"state": {"plan": {"output": plan}}})
        finally:
            rollback.close()
            shutil.rmtree(configs, ignore_errors=True)
    ok = [p for p in points if "error" not in p]
    marks = sorted({m for m in (1, 10, 100, 250, 500, 1000, 2000, 5000) if m <= len(ok)} | {len(ok)})

    def around(n: int) -> dict:
        window = ok[max(0, n - 10):n]  # the 10 bootstraps before the mark
        return {"existing_tenants": n - 1,
                "aws_calls_median": statistics.median(p["aws_calls"] for p in window),
                "seconds_median": round(statistics.median(p["seconds"] for p in window), 4),
                "own_ms_median": round(statistics.median(p["own_ms"] for p in window), 1),
                "aws_ms_median": round(statistics.median(p["aws_ms"] for p in window), 1)}

    priorities_given = [p["priority"] for p in ok]
    return {"env": env, "bootstraps": len(ok), "errors": [p for p in points if "error" in p],
            "priority_range": span, "priorities_unique": len(priorities_given) == len(set(priorities_given)),
            "growth": [around(m) for m in marks], "points": points}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tenants", type=int, help="distinct tenants deployed at once to --env")
    ap.add_argument("--env", default="dev")
    ap.add_argument("--fleet", type=int, help="tenants deployed at once to each of dev, sit, prod")
    ap.add_argument("--bootstrap-scale", type=int, help="bootstrap alone for N new tenants in --env")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--keep", action="store_true", help="leave the tenants deployed (default: tear them down / roll back)")
    args = ap.parse_args()
    stamp = int(time.time()) % 10**6
    if args.tenants:
        mode, result = f"{args.tenants}-{args.env}", deploy_at_once(
            [(f"fleet{stamp}x{i}", args.env) for i in range(args.tenants)], args.timeout, args.keep)
    elif args.fleet:
        mode, result = f"{args.fleet}x3", deploy_at_once(
            [(f"fleet{stamp}x{i}", e) for i in range(args.fleet) for e in ("dev", "sit", "prod")], args.timeout, args.keep)
    elif args.bootstrap_scale:
        mode, result = f"bootstrap-{args.bootstrap_scale}", bootstrap_scale(args.env, args.bootstrap_scale)
    else:
        ap.error("say --tenants N, --fleet N or --bootstrap-scale N")
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "mode": mode, **result}
    out = ROOT / "bench" / "results" / f"fleet-{mode}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
