"""AWS API calls per phase, counted on the local stack.

For a fresh tenant, runs each phase once (first deployment) and again with
nothing changed (re-deploy), invoking the phase binaries through the Lambda
emulator exactly as the state machine would, and reads the counts kept by the
local stack's moto launcher (GET /__stepdeploy__/calls). Prints a Markdown
table and writes bench/results/api-calls-<env>.json.

    local/up && local/.venv/bin/python bench/api_calls.py [--env dev|sit|prod]

Reads are Describe*/Get*/List*/Query/Head/Filter*; everything else counts as
mutating. sts:AssumeRole happens once per cold start of a function (its
credentials are cached), so it shows in the first run only.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

MOTO = "http://127.0.0.1:5000"
EMULATOR = "http://127.0.0.1:9000/2015-03-31/functions"
READS = ("Describe", "Get", "List", "Query", "Scan", "Head", "Filter", "Receive", "BatchGet", "GET ", "HEAD ")


def request(url: str, method: str = "GET", payload: object | None = None) -> object:
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{url}: HTTP {e.code}: {e.read().decode()[:500]}") from e


def counted(phase: str, payload: object) -> tuple[object, dict[str, int]]:
    request(f"{MOTO}/__stepdeploy__/calls", "DELETE")
    result = request(f"{EMULATOR}/{phase}/invocations", "POST", payload)
    counts = request(f"{MOTO}/__stepdeploy__/calls")["counts"]
    return result, counts


def summarise(counts: dict[str, int]) -> dict[str, object]:
    mutating = {k: v for k, v in counts.items() if not k.split(":", 1)[1].startswith(READS)}
    return {"total": sum(counts.values()), "mutating": sum(mutating.values()), "mutating_calls": mutating, "calls": counts}


def wait_for_site(host: str, within: float = 60.0) -> None:
    """Until the stand-in serves `host` (the service's task has started), as the
    state machine's verify loop or dns retries would wait."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        req = urllib.request.Request("http://127.0.0.1:8088/", headers={"Host": host})
        try:
            with urllib.request.urlopen(req, timeout=5):
                return
        except urllib.error.HTTPError as e:
            if e.code in (301, 302, 401):
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{host} never served by the stand-in within {within:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="dev", choices=["dev", "sit", "prod"])
    args = parser.parse_args()
    tenant = f"bench{int(time.time()) % 10**9}"
    execution = f"arn:aws:states:eu-west-1:123456789012:execution:stepdeploy-deploy-tenant:{tenant}-{args.env}-bench"
    event = {
        "version": "0", "id": f"bench-{tenant}", "detail-type": "Tenant Deployment Requested", "source": "stepdeploy",
        "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "eu-west-1", "resources": [],
        "detail": {"tenant": tenant, "environment": args.env, "requested_by": "bench@example.com"},
    }
    bootstrap_input = {"event": event, "execution": execution, "started_at": "2026-11-22T10:00:00Z"}
    results: dict[str, dict[str, object]] = {}
    for run in ("first", "rerun"):
        plan, counts = counted("bootstrap", bootstrap_input)
        results.setdefault("bootstrap", {})[run] = summarise(counts)
        database, counts = counted("database", {"plan": plan})
        results.setdefault("database", {})[run] = summarise(counts)
        ecs, counts = counted("ecs", {"plan": plan, "database": database})
        results.setdefault("ecs", {})[run] = summarise(counts)
        if plan["phases"]["verify"]:
            _, counts = counted("verify", {"plan": plan, "ecs": ecs, "attempt": 0})
            results.setdefault("verify (one round)", {})[run] = summarise(counts)
        if plan["phases"]["dns"]:
            wait_for_site(plan["names"]["host"])
            _, counts = counted("dns", {"plan": plan})
            results.setdefault("dns", {})[run] = summarise(counts)

    print(f"AWS API calls per phase, environment {args.env}, tenant {tenant}\n")
    print("| phase | first run: calls (mutating) | no-change re-run: calls (mutating) | mutating calls on the re-run |")
    print("|---|---|---|---|")
    for phase, runs in results.items():
        first, rerun = runs["first"], runs["rerun"]
        print(f"| {phase} | {first['total']} ({first['mutating']}) | {rerun['total']} ({rerun['mutating']}) | "
              f"{', '.join(f'{k} ×{v}' for k, v in rerun['mutating_calls'].items()) or 'none'} |")
    out = Path(__file__).resolve().parent / "results" / f"api-calls-{args.env}.json"
    out.write_text(json.dumps({"environment": args.env, "tenant": tenant, "phases": results}, indent=2) + "\n")
    print(f"\nwritten: {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
