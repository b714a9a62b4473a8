"""Deployments under injected AWS faults, on the local stack.

    local/up && local/.venv/bin/python bench/faults.py [--runs 10] [--env dev]
        [--throttle 0.10] [--unavailable 0.05] [--drop 0.05]
        [--latency 0 --latency-ms 200] [--seed 1] [--scope tenant|global]

Deploys N fresh tenants one after the other through the bus (a `Tenant
Deployment Requested` event, as a user sends it) with a fault mix injected
by the local stack's moto launcher (/__stepdeploy__/faults), then N more
with no faults, and reports for each set: success rate, the state machine's
task retries (TaskScheduled events beyond TaskStateEntered in the execution
histories, with the errors retried), the faults injected by mode, wall time
per run (event put -> execution finished) and an inventory check per tenant:
a succeeded run left exactly one service, target group, listener rule,
secret, access point, ACTIVE task definition revision, priority claim,
registry entry, config document and secrets policy, the database and user,
and no lock; a failed run left nothing at all.

Scope (--scope tenant, the default): each run's rules match only calls whose
path, query or body names its tenant (match.contains), so other tests on a
shared stack are unaffected. That covers every call about the tenant: the
trigger's StartExecution, each phase's creates, reads and updates of the
tenant's resources, its ledger, lock, priority claim, registry entry, config
document, verify report and notifications; it leaves out the few calls that
name no tenant (the listener's rule list, table and bucket checks, STS). The
share of calls matched is reported. --scope global faults every stepdeploy
call on the stack: only on a stack no one else is using.

Writes bench/results/faults.json. The rule group's rates add up: the default
10% throttle + 5% unavailable + 5% drop faults 20% of the matching calls.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
MOTO = "http://127.0.0.1:5000"
REGION = "eu-west-1"
STATE_MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:stepdeploy-deploy-tenant"
BASE = {"region_name": REGION, "endpoint_url": MOTO,
        "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def faults(method: str, query: str = "", body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{MOTO}/__stepdeploy__/faults{query}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise SystemExit(f"faults {method}: HTTP {e.code}: {e.read().decode()[:300]} "
                         "(a launcher without the injector? local/down && local/up)") from e


class Account:
    """boto3 clients in an environment's account, through its deploy role."""

    def __init__(self, env: str) -> None:
        self.env = env
        self.config = json.loads((ROOT / f"local/.state/environments/{env}.json").read_text())
        sts = boto3.client("sts", **BASE)
        creds = sts.assume_role(RoleArn=self.config["deploy_role_arn"], RoleSessionName="bench-faults",
                                ExternalId=self.config["external_id"])["Credentials"]
        self.kw = {"region_name": self.config["region"], "endpoint_url": MOTO,
                   "aws_access_key_id": creds["AccessKeyId"],
                   "aws_secret_access_key": creds["SecretAccessKey"],
                   "aws_session_token": creds["SessionToken"]}

    def client(self, service: str) -> Any:
        return boto3.client(service, **self.kw)

    def mysql(self, tenant: str) -> tuple[int, int]:
        socket = ROOT / f"local/.state/mariadb/{self.env}/mysqld.sock"
        query = (f"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='{tenant}_db'; "
                 f"SELECT COUNT(*) FROM mysql.user WHERE User='{tenant}_user'")
        out = subprocess.run(["mariadb", "--no-defaults", "-u", "root", "--socket", str(socket),
                              "-N", "-e", query], capture_output=True, text=True, check=True)
        database, user = (int(v) for v in out.stdout.split())
        return database, user

    def inventory(self, tenant: str) -> dict[str, Any]:
        """Everything of the tenant, by kind (counts, and the registry entry)."""
        c, env = self.config, self.env
        host, family = f"{tenant}.wp{env}.{c['domain']}", f"{env}-{tenant}"
        ecs, elb, efs = self.client("ecs"), self.client("elbv2"), self.client("efs")
        found: dict[str, Any] = {}
        services = ecs.describe_services(cluster=c["cluster"], services=[f"{env}-{tenant}-service"])
        found["services"] = sum(s["status"] == "ACTIVE" for s in services["services"])
        arns = [a for page in ecs.get_paginator("list_task_definitions").paginate(
            familyPrefix=family, status="ACTIVE") for a in page["taskDefinitionArns"]]
        found["task_definition_revisions"] = sum(f"task-definition/{family}:" in a for a in arns)
        try:
            found["target_groups"] = len(elb.describe_target_groups(
                Names=[f"{env}-{tenant}-tg"])["TargetGroups"])
        except elb.exceptions.TargetGroupNotFoundException:
            found["target_groups"] = 0
        rules, marker = 0, None
        while True:
            page = elb.describe_rules(ListenerArn=c["alb_listener_arn"], PageSize=400,
                                      **({"Marker": marker} if marker else {}))
            rules += sum(any(host in cond.get("HostHeaderConfig", {}).get("Values", [])
                             for cond in r["Conditions"]) for r in page["Rules"])
            marker = page.get("NextMarker")
            if not marker:
                break
        found["listener_rules"] = rules
        points = efs.describe_access_points(FileSystemId=c["efs_id"])["AccessPoints"]
        found["access_points"] = sum(p.get("RootDirectory", {}).get("Path") == f"/{tenant}"
                                     for p in points)
        sm = self.client("secretsmanager")
        try:
            secret = sm.describe_secret(SecretId=f"{env}-{tenant}-db-credentials")
            found["secrets"] = 1
            found["secret_pending_deletion"] = "DeletedDate" in secret
        except sm.exceptions.ResourceNotFoundException:
            found["secrets"] = 0
        iam = self.client("iam")
        role = c["task_execution_role_arn"].rsplit("/", 1)[-1]
        policies = iam.list_role_policies(RoleName=role)["PolicyNames"]
        found["secrets_policies"] = sum(tenant in p for p in policies)
        found["mysql_databases"], found["mysql_users"] = self.mysql(tenant)
        s3 = self.client("s3")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=c["config_bucket"],
                                                      Prefix=f"{env}/{tenant}").get("Contents", [])]
        found["config_documents"] = sum(k == f"{env}/{tenant}.json" for k in keys)
        ddb = self.client("dynamodb")
        table = c["state_table"]
        registry = ddb.get_item(TableName=table, ConsistentRead=True, Key={
            "pk": {"S": f"TENANT#{tenant}"}, "sk": {"S": "REGISTRY"}}).get("Item")
        found["registry_entries"] = int(registry is not None)
        found["registry"] = {k: next(iter(v.values())) for k, v in (registry or {}).items()}
        found["locks"] = int("Item" in ddb.get_item(TableName=table, ConsistentRead=True, Key={
            "pk": {"S": f"LOCK#{tenant}"}, "sk": {"S": "LOCK"}}))
        # Priority claims share the partition "PRIORITY", sort key = the priority (5 digits).
        claims = [int(i["sk"]["S"]) for page in ddb.get_paginator("query").paginate(
            TableName=table, ConsistentRead=True, KeyConditionExpression="pk = :pk",
            FilterExpression="tenant = :t",
            ExpressionAttributeValues={":pk": {"S": "PRIORITY"}, ":t": {"S": tenant}})
            for i in page["Items"]]
        found["priority_claims"] = len(claims)
        found["claims"] = claims
        return found


EXACTLY_ONE = ["services", "task_definition_revisions", "target_groups", "listener_rules",
               "access_points", "secrets", "secrets_policies", "mysql_databases", "mysql_users",
               "config_documents", "registry_entries", "priority_claims"]


def check(inventory: dict[str, Any], succeeded: bool, execution_arn: str | None) -> list[str]:
    """What is wrong with the tenant's inventory after its run (empty: nothing)."""
    problems = []
    if succeeded:
        for kind in EXACTLY_ONE:
            if inventory[kind] != 1:
                problems.append(f"{kind}: {inventory[kind]}, expected 1")
        if inventory.get("secret_pending_deletion"):
            problems.append("the secret is pending deletion")
        if inventory["locks"]:
            problems.append("the lock is still held")
        registry = inventory["registry"]
        if registry.get("status") != "active" or registry.get("last_execution") != execution_arn:
            problems.append(f"registry entry {registry}")
        if [str(c) for c in inventory["claims"]] != [str(registry.get("alb_priority"))]:
            problems.append(f"claims {inventory['claims']} vs registry {registry.get('alb_priority')}")
    else:
        left = {k: v for k, v in inventory.items()
                if k not in ("registry", "claims", "secret_pending_deletion") and v}
        if left:
            problems.append(f"left behind: {left}")
    return problems


def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000,
                                         **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def deploy(sfn: Any, events: Any, tenant: str, env: str, timeout: float) -> dict[str, Any]:
    started = time.monotonic()
    events.put_events(Entries=[{
        "Source": "stepdeploy", "DetailType": "Tenant Deployment Requested", "EventBusName": "stepdeploy",
        "Detail": json.dumps({"tenant": tenant, "environment": env, "requested_by": "bench@kimmyai.io"})}])
    prefix = f"{tenant}-{env}-"
    while True:
        runs = [e for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=STATE_MACHINE)
                for e in page["executions"] if e["name"].startswith(prefix)]
        if runs and all(r["status"] != "RUNNING" for r in runs):
            break
        if time.monotonic() - started > timeout:
            return {"status": "TIMED_OUT" if runs else "NO_EXECUTION",
                    "wall_s": round(time.monotonic() - started, 2), "execution": None}
        time.sleep(0.5)
    wall = time.monotonic() - started
    run = runs[0]
    described = sfn.describe_execution(executionArn=run["executionArn"])
    log = history(sfn, run["executionArn"])
    entered = sum(e["type"] == "TaskStateEntered" for e in log)
    scheduled = sum(e["type"] == "TaskScheduled" for e in log)
    retried = Counter(e["taskFailedEventDetails"].get("error", "?") for e in log
                      if e["type"] == "TaskFailed")
    return {
        "status": described["status"], "error": described.get("error"),
        "execution": run["executionArn"], "executions": len(runs),
        "wall_s": round(wall, 2), "task_states": entered, "task_retries": scheduled - entered,
        "task_errors": dict(retried),
    }


def fault_rules(args: argparse.Namespace) -> list[dict[str, Any]]:
    rules = []
    for mode, rate in (("throttle", args.throttle), ("unavailable", args.unavailable),
                       ("drop", args.drop)):
        if rate > 0:
            rules.append({"mode": mode, "rate": rate})
    if args.latency > 0:
        rules.append({"mode": "latency", "rate": args.latency, "ms": args.latency_ms})
    return rules


def run_set(label: str, args: argparse.Namespace, rules: list[dict[str, Any]],
            account: Account) -> dict[str, Any]:
    sfn, events = boto3.client("stepfunctions", **BASE), boto3.client("events", **BASE)
    runs = []
    for i in range(args.runs):
        tenant = f"bf{uuid.uuid4().int % 10**12:012d}"
        group = f"bench-{tenant}"
        # Without faults, a rule that never fires still counts the calls naming the tenant.
        scoped = [dict(r, match={"contains": tenant}) if args.scope == "tenant" else dict(r)
                  for r in rules or [{"mode": "latency", "rate": 0, "ms": 0}]]
        if not rules:
            scoped = [dict(r, match={"contains": tenant}) for r in scoped]
        faults("POST", body={"id": group, "seed": args.seed + i, "rules": scoped})
        try:
            run = deploy(sfn, events, tenant, args.env, args.timeout)
        finally:
            state = faults("GET", f"?id={group}")
            faults("DELETE", f"?id={group}")
        injected = Counter()
        faulted = []
        for rule in state["rules"]:
            if rule["injected"]:
                injected[rule["mode"]] += rule["injected"]
            faulted += [(entry["n"], f"{rule['mode']} {entry['call']}") for entry in rule["log"]
                        if entry["fault"] == rule["mode"]]
        matched = max((r["matched"] for r in state["rules"]), default=0)
        inventory = account.inventory(tenant)
        problems = check(inventory, run["status"] == "SUCCEEDED", run.get("execution"))
        run.update(tenant=tenant, injected=dict(injected), calls_matched=matched,
                   faulted_calls=[call for _, call in sorted(faulted)],
                   inventory_ok=not problems, problems=problems,
                   inventory={k: v for k, v in inventory.items() if k not in ("registry", "claims")})
        runs.append(run)
        print(f"  {label} {i + 1}/{args.runs} {tenant}: {run['status']}"
              f"{' ' + run['error'] if run.get('error') else ''} in {run['wall_s']} s, "
              f"{sum(injected.values())} faults {dict(injected)} on {matched} calls, "
              f"task retries {run.get('task_retries')} {run.get('task_errors') or ''}, "
              f"inventory {'ok' if not problems else problems}", flush=True)
    walls = [r["wall_s"] for r in runs]
    succeeded = [r for r in runs if r["status"] == "SUCCEEDED"]
    injected_total = Counter()
    dropped = Counter()
    for r in runs:
        injected_total.update(r["injected"])
        dropped.update(c.split(" ", 1)[1] for c in r["faulted_calls"] if c.startswith("drop "))
    retried_errors = Counter()
    for r in runs:
        retried_errors.update(r.get("task_errors") or {})
    return {
        "runs": runs,
        "summary": {
            "runs": len(runs), "succeeded": len(succeeded),
            "success_rate": round(len(succeeded) / len(runs), 3) if runs else None,
            "inventory_ok": sum(r["inventory_ok"] for r in runs),
            "task_retries": sum(r.get("task_retries") or 0 for r in runs),
            "runs_with_task_retries": sum(bool(r.get("task_retries")) for r in runs),
            "task_errors_retried": dict(retried_errors),
            "faults_injected": dict(injected_total),
            "lost_answers_by_call": dict(dropped.most_common()),
            "calls_matched": sum(r["calls_matched"] for r in runs),
            "wall_s_median": round(statistics.median(walls), 2) if walls else None,
            "wall_s_min": min(walls, default=None), "wall_s_max": max(walls, default=None),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--env", default="dev", choices=["dev", "sit"])
    parser.add_argument("--throttle", type=float, default=0.10)
    parser.add_argument("--unavailable", type=float, default=0.05)
    parser.add_argument("--drop", type=float, default=0.05)
    parser.add_argument("--latency", type=float, default=0.0, help="share of calls delayed")
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1, help="run i uses seed + i")
    parser.add_argument("--scope", choices=["tenant", "global"], default="tenant")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--out", default=str(ROOT / "bench/results/faults.json"))
    args = parser.parse_args()
    rules = fault_rules(args)
    if args.scope == "global":
        print("warning: --scope global faults every stepdeploy call on the stack", file=sys.stderr)
    account = Account(args.env)
    print(f"{args.runs} {args.env} deployments with faults {rules} (scope {args.scope}, "
          f"seed {args.seed}), then {args.runs} without", flush=True)
    started = time.monotonic()
    sets = {"faults": run_set("faults", args, rules, account),
            "no_faults": run_set("no faults", args, [], account)}
    took = time.monotonic() - started

    print(f"\n| | runs | succeeded | inventory as expected | task retries (runs) | errors retried "
          f"| faults injected | median wall s (min-max) |")
    print("|---|---|---|---|---|---|---|---|")
    for label, result in sets.items():
        s = result["summary"]
        faults_text = ", ".join(f"{k} {v}" for k, v in sorted(s["faults_injected"].items())) or "none"
        faults_text += f" (of {s['calls_matched']} calls naming the tenants)"
        retried = ", ".join(f"{k} ×{v}" for k, v in sorted(s["task_errors_retried"].items())) or "none"
        print(f"| {label.replace('_', ' ')} | {s['runs']} | {s['succeeded']} ({s['success_rate']:.0%}) "
              f"| {s['inventory_ok']} | {s['task_retries']} ({s['runs_with_task_retries']}) "
              f"| {retried} | {faults_text} "
              f"| {s['wall_s_median']} ({s['wall_s_min']}-{s['wall_s_max']}) |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": "local/.venv/bin/python bench/faults.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "arch": platform.machine(), "system": platform.system()},
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "environment": args.env, "scope": args.scope, "seed": args.seed, "rules": rules,
        "took_s": round(took, 1), "sets": sets,
    }, indent=2) + "\n")
    print(f"\nwritten: {out} ({took:.0f} s)")
    failed = any(r["summary"]["inventory_ok"] != r["summary"]["runs"] for r in sets.values())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
