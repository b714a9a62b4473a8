"""The main job, end to end on the local stack, as a user runs it.

1. puts `Tenant Deployment Requested` for a tenant in dev on the bus and
   follows the execution phase by phase until it succeeds;
2. puts the same tenant's prod request, reads the approval mails from the
   approvals inbox (SNS -> SQS stands in for e-mail), opens two approvers'
   links (GET shows the confirmation page) and confirms them (POST), and
   follows the prod execution to the end;
3. prints where to look: the config documents, the site through the stand-in.

    local/demo [tenant]          (runs local/up first)
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request

import boto3

ENDPOINT = "http://127.0.0.1:5000"
SM = "arn:aws:states:eu-west-1:123456789012:stateMachine:stepdeploy-deploy-tenant"
session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1")
sfn = session.client("stepfunctions", endpoint_url=ENDPOINT)
events = session.client("events", endpoint_url=ENDPOINT)
sqs = session.client("sqs", endpoint_url=ENDPOINT)


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def put(tenant: str, env: str) -> None:
    detail = {"tenant": tenant, "environment": env, "requested_by": "jane@kimmyai.io"}
    events.put_events(Entries=[{"EventBusName": "stepdeploy", "Source": "stepdeploy",
                                "DetailType": "Tenant Deployment Requested", "Detail": json.dumps(detail)}])
    say(f"put Tenant Deployment Requested {json.dumps(detail)}")


def find(prefix: str, timeout: float = 60) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in sfn.list_executions(stateMachineArn=SM)["executions"]:
            if e["name"].startswith(prefix):
                return e["executionArn"]
        time.sleep(0.5)
    raise SystemExit(f"no execution {prefix}* started (see local/.state/logs/)")


def follow(arn: str, timeout: float = 600) -> dict:
    """Prints each state as it is entered and left; returns the execution when done."""
    seen: set[int] = set()
    started: dict[str, float] = {}
    deadline = time.time() + timeout
    while time.time() < deadline:
        for ev in sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]:
            if ev["id"] in seen:
                continue
            seen.add(ev["id"])
            kind, ts = ev["type"], ev["timestamp"].timestamp()
            if kind.endswith("StateEntered"):
                name = ev["stateEnteredEventDetails"]["name"]
                started[name] = ts
            elif kind.endswith("StateExited"):
                name = ev["stateExitedEventDetails"]["name"]
                took = ts - started.get(name, ts)
                say(f"  {name:<16} done in {took:5.1f} s")
            elif kind == "TaskFailed":
                d = ev["taskFailedEventDetails"]
                say(f"  task failed: {d.get('error')}: {d.get('cause', '')[:200]}")
        execution = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            say(f"execution {execution['name']}: {execution['status']}")
            return execution
        time.sleep(0.5)
    raise SystemExit("the execution did not finish in time")


def approval_links(tenant: str, count: int = 3) -> dict[str, tuple[str, str]]:
    queue = sqs.get_queue_url(QueueName="stepdeploy-approvals-inbox")["QueueUrl"]
    links: dict[str, tuple[str, str]] = {}
    deadline = time.time() + 120
    while len(links) < count and time.time() < deadline:
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            envelope = json.loads(m["Body"])
            text = envelope.get("Message", "")
            if f"deploy {tenant} to" not in text:
                continue
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
            approver = envelope["MessageAttributes"]["approver"]["Value"]
            line = lambda p: next(l.split(p, 1)[1].strip() for l in text.splitlines() if l.startswith(p))
            links[approver] = (line("Approve:"), line("Reject:"))
    return links


def http(url: str, data: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=data.encode() if data else None, method="POST" if data else "GET",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def main() -> int:
    tenant = sys.argv[1] if len(sys.argv) > 1 else f"demo{int(time.time()) % 10**6}"
    say(f"tenant {tenant}: dev first")
    put(tenant, "dev")
    dev = follow(find(f"{tenant}-dev-"))
    if dev["status"] != "SUCCEEDED":
        return 1
    say(f"tenant {tenant}: now prod (needs two approvals)")
    put(tenant, "prod")
    arn = find(f"{tenant}-prod-")
    links = approval_links(tenant)
    say(f"approval mails for: {', '.join(sorted(links))}")
    for approver in sorted(links)[1:]:
        approve = links[approver][0]
        status, _ = http(approve)
        say(f"  {approver} opens the link: GET {status} (a confirmation page; nothing decided yet)")
        status, body = http(approve.split("?", 1)[0], approve.split("?", 1)[1] + "&reason=looks+good")
        verdict = "continues" if "continues" in body else "recorded"
        say(f"  {approver} confirms: POST {status} ({verdict})")
    prod = follow(arn)
    say(f"site through the local stand-in: curl -H 'Host: {tenant}.wpprod.kimmyai.io' http://127.0.0.1:8088/")
    say(f"config documents: aws s3 ls s3://stepdeploy-config-dev-111111111111/dev/ (after assuming the dev deploy role)")
    return 0 if prod["status"] == "SUCCEEDED" else 1


if __name__ == "__main__":
    raise SystemExit(main())
