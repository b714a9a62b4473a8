"""Local stand-in for the tenant sites behind the ALB and CloudFront.

On AWS a tenant's WordPress site is served by an ECS service behind an ALB
listener rule (host-header condition -> forward to the service's target
group), fronted by CloudFront.  Locally there are no containers, so this
small HTTP server plays that part, using the state the deployer left in moto:

    cd local && python -m stack.standin [--port 8088] [--aws-endpoint http://127.0.0.1:5000] \
        [--accounts 111111111111:eu-west-1,222222222222:eu-west-1,333333333333:af-south-1]

A request with Host header H (port stripped) gets:
  * 500 if H is in the fail list (simulated failure, for failure-path tests);
  * 200 "WordPress (local stand-in) for H" if H is served (302 to
    /wp-login.php for /wp-admin), i.e. in some environment account an ALB
    listener rule has a host-header condition matching H and forwards to a
    target group used by an ECS service with runningCount >= 1;
  * 404 "no tenant for H (local stand-in)" otherwise.

Control paths (any Host):
  GET /__standin__/health            -> 200 ok
  GET /__standin__/fail              -> JSON list of failing hosts
  POST/DELETE /__standin__/fail?host=H  add / remove H

Environment accounts are read by assuming arn:aws:iam::{acct}:role/stepdeploy-deploy
(moto does not check ExternalId).  Lookups are cached for about a second; when
moto is unreachable or an account has nothing, nothing is served.
"""

from __future__ import annotations

import argparse
import fnmatch
import html
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config

DEFAULT_ACCOUNTS = "111111111111:eu-west-1,222222222222:eu-west-1,333333333333:af-south-1"
ROLE_NAME = "stepdeploy-deploy"
CACHE_SECONDS = 1.0
CONTROL = "/__standin__"
BOTO_CONFIG = Config(connect_timeout=2, read_timeout=10,
                     retries={"total_max_attempts": 1})


def log(msg: str) -> None:
    print(f"[standin] {msg}", flush=True)


class TenantDirectory:
    """Which hosts the environment accounts in moto currently serve."""

    def __init__(self, endpoint: str, accounts: list[tuple[str, str]]):
        self.endpoint = endpoint
        self.accounts = accounts
        self._lock = threading.Lock()
        self._hosts: list[str] = []
        self._fetched = 0.0
        self._credentials: dict[str, dict[str, str]] = {}
        self._last_error: dict[str, str] = {}

    def _client(self, service: str, region: str, creds: dict[str, str] | None = None):
        creds = creds or {"AccessKeyId": "testing", "SecretAccessKey": "testing",
                          "SessionToken": None}
        return boto3.client(
            service, region_name=region, endpoint_url=self.endpoint,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds.get("SessionToken"), config=BOTO_CONFIG,
        )

    def _account_credentials(self, account: str, region: str) -> dict[str, str]:
        """Role credentials, re-assumed when moto no longer knows them."""
        creds = self._credentials.get(account)
        if creds:
            identity = self._client("sts", region, creds).get_caller_identity()
            if identity["Account"] == account:
                return creds
        creds = self._client("sts", region).assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{ROLE_NAME}",
            RoleSessionName="local-standin", ExternalId="local-standin",
        )["Credentials"]
        self._credentials[account] = creds
        return creds

    def _account_hosts(self, account: str, region: str) -> list[str]:
        creds = self._account_credentials(account, region)
        ecs = self._client("ecs", region, creds)
        elb = self._client("elbv2", region, creds)

        running_target_groups: set[str] = set()
        cluster_arns = [arn for page in ecs.get_paginator("list_clusters").paginate()
                        for arn in page["clusterArns"]]
        for cluster in cluster_arns:
            service_arns = [arn for page in ecs.get_paginator("list_services")
                            .paginate(cluster=cluster) for arn in page["serviceArns"]]
            for i in range(0, len(service_arns), 10):
                described = ecs.describe_services(cluster=cluster,
                                                  services=service_arns[i:i + 10])
                for service in described["services"]:
                    if service.get("status") == "ACTIVE" and service.get("runningCount", 0) >= 1:
                        running_target_groups.update(
                            lb["targetGroupArn"] for lb in service.get("loadBalancers", [])
                            if lb.get("targetGroupArn"))
        if not running_target_groups:
            return []

        hosts: list[str] = []
        for page in elb.get_paginator("describe_load_balancers").paginate():
            for lb in page["LoadBalancers"]:
                listeners = elb.describe_listeners(
                    LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
                for listener in listeners:
                    rules = self._rules(elb, listener["ListenerArn"])
                    for rule in rules:
                        if _forward_target_groups(rule) & running_target_groups:
                            hosts.extend(_host_header_values(rule))
        return hosts

    @staticmethod
    def _rules(elb: Any, listener_arn: str) -> list[dict[str, Any]]:
        """Every rule of the listener (DescribeRules pages: 50 rules a page by default)."""
        rules: list[dict[str, Any]] = []
        marker = None
        while True:
            page = elb.describe_rules(ListenerArn=listener_arn, PageSize=400,
                                      **({"Marker": marker} if marker else {}))
            rules.extend(page["Rules"])
            marker = page.get("NextMarker")
            if not marker:
                return rules

    def _refresh(self) -> list[str]:
        hosts: list[str] = []
        for account, region in self.accounts:
            try:
                hosts.extend(self._account_hosts(account, region))
                self._last_error.pop(account, None)
            except Exception as e:  # moto down, role missing, ...: nothing served
                message = f"{type(e).__name__}: {e}"
                if self._last_error.get(account) != message:
                    log(f"lookup in account {account}/{region} failed: {message}")
                self._last_error[account] = message
        return sorted({h.lower() for h in hosts})

    def hosts(self) -> list[str]:
        with self._lock:
            if time.monotonic() - self._fetched > CACHE_SECONDS:
                self._hosts = self._refresh()
                self._fetched = time.monotonic()
            return self._hosts

    def serves(self, host: str) -> bool:
        host = host.lower()
        return any(fnmatch.fnmatchcase(host, pattern) for pattern in self.hosts())


def _forward_target_groups(rule: dict[str, Any]) -> set[str]:
    groups: set[str] = set()
    for action in rule.get("Actions", []):
        if action.get("Type") != "forward":
            continue
        if action.get("TargetGroupArn"):
            groups.add(action["TargetGroupArn"])
        for tg in (action.get("ForwardConfig") or {}).get("TargetGroups", []):
            if tg.get("TargetGroupArn"):
                groups.add(tg["TargetGroupArn"])
    return groups


def _host_header_values(rule: dict[str, Any]) -> list[str]:
    values: list[str] = []
    for condition in rule.get("Conditions", []):
        if condition.get("Field") != "host-header":
            continue
        values.extend(condition.get("Values") or [])
        values.extend((condition.get("HostHeaderConfig") or {}).get("Values") or [])
    return values


class StandinHandler(BaseHTTPRequestHandler):
    server_version = "stepdeploy-local-standin/1"
    directory: TenantDirectory
    fail_hosts: set[str]
    fail_lock: threading.Lock

    def _host(self) -> str:
        host = (self.headers.get("Host") or "").strip().lower()
        if host.startswith("["):  # [::1]:8088
            return host.split("]")[0] + "]"
        return host.rsplit(":", 1)[0] if ":" in host else host

    def _send(self, status: int, body: str, content_type: str = "text/plain",
              extra: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Local-Standin", "stepdeploy")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _control(self, path: str, query: dict[str, list[str]]) -> None:
        if path == f"{CONTROL}/health" and self.command in ("GET", "HEAD"):
            return self._send(200, "ok\n")
        if path != f"{CONTROL}/fail":
            return self._send(404, f"unknown local stand-in control path {path}\n")
        host = (query.get("host") or [""])[0].strip().lower()
        with self.fail_lock:
            if self.command in ("GET", "HEAD"):
                pass
            elif not host:
                return self._send(400, "missing ?host=H\n")
            elif self.command == "POST":
                self.fail_hosts.add(host)
            elif self.command == "DELETE":
                self.fail_hosts.discard(host)
            else:
                return self._send(405, "use GET, POST or DELETE\n")
            listing = sorted(self.fail_hosts)
        self._send(200, json.dumps({"fail": listing}) + "\n", "application/json")

    def _site(self, path: str) -> None:
        host = self._host()
        with self.fail_lock:
            failing = host in self.fail_hosts
        if failing:
            return self._send(500, f"local stand-in: simulated failure for {host}\n")
        if not self.directory.serves(host):
            return self._send(404, f"no tenant for {host} (local stand-in)\n")
        if path in ("/wp-admin", "/wp-admin/"):
            return self._send(302, "redirecting to /wp-login.php (local stand-in)\n",
                              extra={"Location": "/wp-login.php"})
        name = html.escape(host)
        page = (f"<!doctype html>\n<html><head><title>WordPress (local stand-in) for {name}"
                f"</title></head>\n<body><h1>WordPress (local stand-in) for {name}</h1>\n"
                f"<p>Local stand-in for the tenant site behind the ALB and CloudFront; "
                f"no WordPress runs here.</p></body></html>\n")
        self._send(200, page, "text/html")

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        url = urlsplit(self.path)
        try:
            if url.path == CONTROL or url.path.startswith(CONTROL + "/"):
                self._control(url.path, parse_qs(url.query))
            else:
                self._site(url.path)
        except BrokenPipeError:
            pass

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        log(f'{self.client_address[0]} host={self._host() or "-"} {format % args}')


def parse_accounts(text: str) -> list[tuple[str, str]]:
    accounts = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        account, _, region = item.partition(":")
        if not account.isdigit() or len(account) != 12 or not region:
            raise argparse.ArgumentTypeError(f"expected ACCOUNT:REGION, got {item!r}")
        accounts.append((account, region))
    return accounts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument("--aws-endpoint", default="http://127.0.0.1:5000")
    parser.add_argument("--accounts", type=parse_accounts,
                        default=parse_accounts(DEFAULT_ACCOUNTS),
                        help="comma-separated ACCOUNT:REGION list")
    args = parser.parse_args(argv)

    handler = type("Handler", (StandinHandler,), {
        "directory": TenantDirectory(args.aws_endpoint, args.accounts),
        "fail_hosts": set(),
        "fail_lock": threading.Lock(),
    })
    server = ThreadingHTTPServer((args.host, args.port), handler)
    server.daemon_threads = True
    log(f"local stand-in for tenant sites on http://{args.host}:{args.port} "
        f"(moto {args.aws_endpoint}, accounts "
        f"{', '.join(f'{a}/{r}' for a, r in args.accounts)})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
