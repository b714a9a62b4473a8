"""The main job, end to end on the local stack, as a user runs it, with the
`stepdeploy` CLI (target/debug/stepdeploy, built by local/up):

1. `stepdeploy deploy <tenant> --env dev --wait`: puts `Tenant Deployment
   Requested` on the bus and follows the execution phase by phase;
2. `stepdeploy deploy <tenant> --env prod`, then `stepdeploy watch` on that
   run while two approvers open their links from the approvals inbox (SNS ->
   SQS stands in for e-mail; GET shows the confirmation page) and confirm
   them (POST); the watch shows the gate's "n of 2 approvals" and every phase;
3. `stepdeploy status <tenant>`: the tenant in both environments;
4. a bad release and the way back: dev gets another image, `stepdeploy
   releases` lists both releases, `stepdeploy rollback <tenant> --env dev
   --wait` puts the previous one back through the same pipeline, and
   `releases` shows it as release 3, "rollback to 1";
5. deployment windows: the same tenant into sit labelled `window=frozen` (the
   local sit freezes that label) is refused with `OutsideDeploymentWindow`,
   naming the freeze, before anything is made; then a new tenant into sit
   labelled `window=odd-minutes` (local sit lets that label start in odd
   minutes only, and `outside: wait`), sent in an even minute: the run waits
   in `WaitForWindow`, holding nothing, and deploys when the minute turns.

    local/demo [tenant]          (runs local/up first)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3

ENDPOINT = "http://127.0.0.1:5000"
ROOT = Path(__file__).resolve().parent.parent
# Where cargo put it: $CARGO_TARGET_DIR when set, as in bench/.
CLI = str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "stepdeploy")
REQUESTER = "jane@kimmyai.io"
session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1")
sqs = session.client("sqs", endpoint_url=ENDPOINT)
# What `source local/env.sh` sets, for the CLI.
CLI_ENV = {**os.environ, "AWS_ENDPOINT_URL": ENDPOINT, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "eu-west-1",
           "STEPDEPLOY_CONFIG_DIR": str(ROOT / "local" / ".state" / "environments"),
           "STEPDEPLOY_REQUESTED_BY": REQUESTER}


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def stepdeploy(*args: str) -> list[str]:
    say("$ stepdeploy " + " ".join(args))
    return [CLI, *args]


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
            if "Approve:" not in text:
                continue  # the requester's notice: no links in it
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


def waiting_request(tenant: str) -> int:
    """A request outside its window that waits for it: sit's `window=odd-minutes`
    rule (local/seed.py) opens in odd minutes only, on the real clock."""
    now = time.time()
    if int(now // 60) % 2 == 1 or now % 60 > 45:
        # Send it in an even minute with time to spare, so it has to wait.
        ahead = 60 - now % 60 + (60 if int(now // 60) % 2 == 0 else 0) + 1
        say(f"waiting {ahead:.0f} s for an even minute (sit opens to window=odd-minutes in odd minutes only)")
        time.sleep(ahead)
    say(f"tenant {tenant}: into sit in an even minute (label window=odd-minutes): waits for the window, then deploys")
    # Shown as it comes (the wait is the point), and kept to check it.
    run = subprocess.Popen(stepdeploy("deploy", tenant, "--env", "sit", "--label", "window=odd-minutes", "--wait"),
                           env=CLI_ENV, stdout=subprocess.PIPE, text=True)
    shown = []
    for line in run.stdout or []:
        sys.stdout.write(line)
        sys.stdout.flush()
        shown.append(line)
    if run.wait() != 0:
        return run.returncode
    if not any("WaitForWindow" in line for line in shown):
        say("the request outside its window did not wait for it")
        return 1
    return 0


def main() -> int:
    tenant = sys.argv[1] if len(sys.argv) > 1 else f"demo{int(time.time()) % 10**6}"
    say(f"tenant {tenant}: dev first (no approval; verify checks the site)")
    rc = subprocess.call(stepdeploy("deploy", tenant, "--env", "dev", "--wait"), env=CLI_ENV)
    if rc != 0:
        return rc
    say(f"tenant {tenant}: now prod (two distinct approvers must approve)")
    started = subprocess.run(stepdeploy("deploy", tenant, "--env", "prod", "--output", "json"),
                             env=CLI_ENV, check=True, capture_output=True, text=True)
    execution = json.loads(started.stdout)["execution"]
    watcher = subprocess.Popen(stepdeploy("watch", execution), env=CLI_ENV)
    links = approval_links(tenant)
    time.sleep(2)  # let the watch show the gate waiting before anyone decides
    print(f"[demo] approval mails for: {', '.join(sorted(links))}", flush=True)
    for approver in sorted(links)[1:]:
        approve = links[approver][0]
        status, _ = http(approve)
        print(f"[demo]   {approver} opens the link: GET {status} (a confirmation page; nothing decided yet)", flush=True)
        status, body = http(approve.split("?", 1)[0], approve.split("?", 1)[1] + "&reason=looks+good")
        verdict = "continues" if "continues" in body else "recorded"
        print(f"[demo]   {approver} confirms: POST {status} ({verdict})", flush=True)
    rc = watcher.wait()
    subprocess.call(stepdeploy("status", tenant), env=CLI_ENV)
    if rc != 0:
        return rc
    say(f"tenant {tenant}: a new image in dev, then back to the previous release")
    rc = subprocess.call(stepdeploy("deploy", tenant, "--env", "dev", "--image", "wordpress:6.5-apache", "--wait"),
                         env=CLI_ENV)
    if rc != 0:
        return rc
    subprocess.call(stepdeploy("releases", tenant, "--env", "dev"), env=CLI_ENV)
    rc = subprocess.call(stepdeploy("rollback", tenant, "--env", "dev", "--wait"), env=CLI_ENV)
    if rc != 0:
        return rc
    subprocess.call(stepdeploy("releases", tenant, "--env", "dev"), env=CLI_ENV)
    say(f"tenant {tenant}: into sit's freeze (label window=frozen): refused before anything is made")
    refused = subprocess.call(stepdeploy("deploy", tenant, "--env", "sit", "--label", "window=frozen", "--wait"),
                              env=CLI_ENV)
    if refused == 0:
        say("the frozen request was not refused")
        return 1
    rc = waiting_request(f"{tenant}w")
    if rc != 0:
        return rc
    say(f"site through the local stand-in: curl -H 'Host: {tenant}.wpprod.kimmyai.io' http://127.0.0.1:8088/")
    say(f"more: source local/env.sh && stepdeploy history {tenant} --env prod && stepdeploy stats")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
