"""Fault injection for stepdeploy's own calls, controlled at run time through
/__stepdeploy__/faults (the interface: README.md next to this file).  The
call counter (counter.py) hands each call it sees here."""

from __future__ import annotations

import copy
import json
import random
import re
import threading
import time
import urllib.parse
from typing import Any, Callable

from . import log
from .protocol import REASONS, error_response, is_read, json_answer

FAULT_MODES = ("throttle", "unavailable", "latency", "drop", "error")
_MATCH_KEYS = {"action", "contains", "mutating", "caller"}


class FaultRule:
    """One rule: what to inject (mode) on which calls (match) how often (rate or nth)."""

    def __init__(self, spec: dict[str, Any], rule_id: str, group: "FaultGroup") -> None:
        if not isinstance(spec, dict):
            raise ValueError(f"a rule is a JSON object, got {spec!r}")
        unknown = set(spec) - {"id", "mode", "rate", "nth", "count", "ms", "status", "match"}
        if unknown:
            raise ValueError(f"unknown rule field(s) {sorted(unknown)}")
        self.mode = spec.get("mode")
        if self.mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {', '.join(FAULT_MODES)}, got {self.mode!r}")
        self.id, self.group = rule_id, group
        self.rate = spec.get("rate")
        self.nth = spec.get("nth")
        if self.rate is not None and self.nth is not None:
            raise ValueError("give rate or nth, not both")
        if self.rate is None and self.nth is None:
            if self.mode != "latency":
                raise ValueError(f"{self.mode}: give rate (0..1) or nth (1, 2, …)")
            self.rate = 1.0
        if self.rate is not None and (isinstance(self.rate, bool)
                                      or not isinstance(self.rate, (int, float))
                                      or not 0 <= self.rate <= 1):
            raise ValueError(f"rate must be a number in 0..1, got {self.rate!r}")
        if self.nth is not None and (isinstance(self.nth, bool) or not isinstance(self.nth, int)
                                     or self.nth < 1):
            raise ValueError(f"nth must be an integer >= 1, got {self.nth!r}")
        self.count = spec.get("count", 1)
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"count must be an integer >= 1, got {self.count!r}")
        self.ms = spec.get("ms", 200)
        if isinstance(self.ms, bool) or not isinstance(self.ms, (int, float)) or not 0 <= self.ms <= 60_000:
            raise ValueError(f"ms must be 0..60000, got {self.ms!r}")
        self.status = spec.get("status", 503)
        if self.status not in (500, 503):
            raise ValueError(f"status (unavailable) must be 500 or 503, got {self.status!r}")
        match = spec.get("match") or {}
        if not isinstance(match, dict) or set(match) - _MATCH_KEYS:
            raise ValueError(f"match takes {sorted(_MATCH_KEYS)}, got {match!r}")
        actions = match.get("action")
        self.actions = [actions] if isinstance(actions, str) else actions
        if self.actions is not None and not (isinstance(self.actions, list) and all(
                isinstance(a, str) and ":" in a for a in self.actions)):
            raise ValueError(f"match.action: 'service:Action' or a list of them, got {actions!r}")
        self.contains = match.get("contains")
        if self.contains is not None and not (isinstance(self.contains, str) and self.contains):
            raise ValueError(f"match.contains must be a non-empty string, got {self.contains!r}")
        self.mutating = match.get("mutating")
        if self.mutating is not None and not isinstance(self.mutating, bool):
            raise ValueError(f"match.mutating must be true or false, got {self.mutating!r}")
        self.caller = match.get("caller")
        if self.caller is not None and not (isinstance(self.caller, str) and self.caller):
            raise ValueError(f"match.caller must be a non-empty string, got {self.caller!r}")
        self.match = match
        self.matched = 0
        self.injected = 0
        self.log: list[dict[str, Any]] = []

    def matches(self, call: "Call") -> bool:
        if self.actions is not None and call.key not in self.actions:
            return False
        if self.mutating is not None and self.mutating == call.read:
            return False
        if self.contains is not None and self.contains not in call.text():
            return False
        if self.caller is not None and self.caller not in call.caller():
            return False
        return True

    def fires_nth(self) -> bool:
        return self.nth is not None and self.nth <= self.matched < self.nth + self.count

    def describe(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"id": self.id, "group": self.group.id, "mode": self.mode}
        if self.nth is not None:
            rule.update(nth=self.nth, count=self.count)
        else:
            rule["rate"] = self.rate
        if self.mode == "latency":
            rule["ms"] = self.ms
        if self.mode == "unavailable":
            rule["status"] = self.status
        rule.update(match=self.match, matched=self.matched, injected=self.injected,
                    log=self.log)
        return rule


class FaultGroup:
    """Rules sent together: one seeded RNG, one draw per matching call."""

    def __init__(self, group_id: str, seed: int) -> None:
        self.id, self.seed = group_id, seed
        self.rng = random.Random(seed)
        self.rules: list[FaultRule] = []


class Call:
    """One stepdeploy call as the injector sees it (text and caller computed on demand)."""

    def __init__(self, environ: dict[str, Any], body: bytes, service: str, action: str,
                 protocol: str, callers: "FaultInjector") -> None:
        self.environ, self.body = environ, body
        self.service, self.action, self.protocol = service, action, protocol
        self.key = f"{service}:{action}"
        self.read = is_read(action)
        self._callers = callers
        self._text: str | None = None
        self._caller: str | None = None

    def text(self) -> str:
        if self._text is None:
            raw = (f"{self.environ.get('PATH_INFO', '')}?{self.environ.get('QUERY_STRING', '')}\n"
                   + self.body.decode("utf-8", "replace"))
            self._text = raw + "\n" + urllib.parse.unquote_plus(raw)
        return self._text

    def caller(self) -> str:
        if self._caller is None:
            self._caller = self._callers.caller_of(self.environ)
        return self._caller


class FaultInjector:
    """Fault injection for stepdeploy's own calls, controlled at run time
    (README.md, "Fault injection")."""

    LOG_LIMIT = 2000

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.groups: list[FaultGroup] = []
        self.totals: dict[str, int] = {}
        self._next = 0
        self._callers: dict[str, str] = {}

    # -- control ----------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        self._next += 1
        return f"{prefix}{self._next}"

    def _parse(self, document: Any) -> FaultGroup:
        if isinstance(document, list):
            document = {"rules": document}
        elif isinstance(document, dict) and "mode" in document:
            document = {"rules": [document]}
        if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
            raise ValueError('send {"rules": [...], "seed": N, "id": "…"}, a list of rules or one rule')
        unknown = set(document) - {"rules", "seed", "id"}
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}")
        seed = document.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        group_id = document.get("id") or self._new_id("g")
        if not isinstance(group_id, str):
            raise ValueError(f"id must be a string, got {group_id!r}")
        group = FaultGroup(group_id, seed)
        for i, spec in enumerate(document["rules"]):
            rule_id = (spec.get("id") if isinstance(spec, dict) else None) or f"{group_id}.{i + 1}"
            try:
                group.rules.append(FaultRule(spec, str(rule_id), group))
            except ValueError as e:
                raise ValueError(f"rules[{i}]: {e}") from None
        return group

    def state(self, only: str | None = None) -> dict[str, Any]:
        with self.lock:
            rules = [r.describe() for g in self.groups for r in g.rules
                     if only is None or only in (r.id, g.id)]
            totals = dict(self.totals)
            if only is not None:
                totals = {}
                for rule in rules:
                    totals[rule["mode"]] = totals.get(rule["mode"], 0) + rule["injected"]
            return {"rules": copy.deepcopy(rules), "injected": totals,
                    "groups": [{"id": g.id, "seed": g.seed} for g in self.groups
                               if only is None or only == g.id
                               or any(r.id == only for r in g.rules)]}

    def control(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        only = query.get("id", [None])[0]
        if method == "GET":
            return json_answer(start_response, "200 OK", self.state(only))
        if method == "DELETE":
            with self.lock:
                if only is None:
                    self.groups.clear()
                    self.totals.clear()
                else:
                    for group in self.groups:
                        group.rules = [r for r in group.rules if r.id != only]
                    self.groups = [g for g in self.groups if g.id != only and g.rules]
            return json_answer(start_response, "200 OK", self.state())
        if method in ("PUT", "POST"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            try:
                group = self._parse(json.loads(raw or b"null"))
            except ValueError as e:
                return json_answer(start_response, "400 Bad Request", {"error": str(e)})
            with self.lock:
                taken = {g.id for g in self.groups} | {r.id for g in self.groups for r in g.rules}
                if method == "POST" and ({group.id} | {r.id for r in group.rules}) & taken:
                    return json_answer(start_response, "409 Conflict",
                                        {"error": f"id {group.id} (or one of its rules) is in use"})
                if method == "PUT":
                    self.groups = [group]
                    self.totals.clear()
                else:
                    self.groups.append(group)
            log(f"faults: {method} group {group.id} (seed {group.seed}): "
                f"{[r.describe()['mode'] for r in group.rules]}")
            return json_answer(start_response, "200 OK",
                                {"group": group.id, "rules": [r.id for r in group.rules]})
        return json_answer(start_response, "405 Method Not Allowed",
                            {"error": "GET, PUT, POST or DELETE"})

    # -- injection --------------------------------------------------------

    def caller_of(self, environ: dict[str, Any]) -> str:
        """The role session name behind the request's access key (e.g.
        stepdeploy-ecs), else the access key id."""
        match = re.search(r"Credential=([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        key = match.group(1) if match else ""
        if key in self._callers:
            return self._callers[key]
        from moto.sts.models import sts_backends

        for _account, by_partition in list(sts_backends.items()):
            for backend in list(by_partition.values()):
                role = backend.get_assumed_role_from_access_key(key)
                if role is not None:
                    self._callers[key] = role.session_name
                    return role.session_name
        return key

    def decide(self, call: Call) -> FaultRule | None:
        """The rule that fires for this call, if any (its counters updated)."""
        if not self.groups:
            return None
        chosen: FaultRule | None = None
        with self.lock:
            for group in self.groups:
                matching = [r for r in group.rules if r.matches(call)]
                if not matching:
                    continue
                for rule in matching:
                    rule.matched += 1
                fired = next((r for r in matching if r.fires_nth()), None)
                rated = [r for r in matching if r.rate is not None]
                if fired is None and rated:
                    draw, bound = group.rng.random(), 0.0
                    for rule in rated:
                        bound += rule.rate
                        if draw < bound:
                            fired = rule
                            break
                if fired is not None and chosen is None:
                    chosen = fired
                    fired.injected += 1
                    self.totals[fired.mode] = self.totals.get(fired.mode, 0) + 1
                for rule in matching:
                    if len(rule.log) < self.LOG_LIMIT:
                        rule.log.append({
                            "n": rule.matched, "call": call.key, "mutating": not call.read,
                            "caller": call.caller(),
                            "fault": rule.mode if rule is chosen else None,
                            "at": round(time.time(), 3)})
        return chosen

    def inject(self, rule: FaultRule, call: Call, app: Callable,
               environ: dict[str, Any], start_response: Callable) -> Any:
        message = f"stepdeploy fault injector: {rule.mode} (rule {rule.id})"
        if rule.mode == "latency":
            time.sleep(rule.ms / 1000)
            return app(environ, start_response)
        if rule.mode == "drop":
            # Let moto apply the call, then lose its answer.
            seen: list[str] = []

            def capture(status: str, headers: Any, exc_info: Any = None) -> Callable:
                seen.append(status)
                return lambda _data: None

            result = app(environ, capture)
            try:
                for _ in result:
                    pass
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()
            log(f"faults: drop {call.key} (moto answered {seen[0] if seen else '?'})")
            kind = "internal"
        elif rule.mode == "unavailable":
            kind = "unavailable" if rule.status == 503 else "internal"
        else:
            kind = rule.mode
        status, headers, body = error_response(call.protocol, kind, message)
        start_response(f"{status} {REASONS.get(status, 'Error')}", headers)
        if environ.get("REQUEST_METHOD") == "HEAD":
            return [b""]
        return [body]
