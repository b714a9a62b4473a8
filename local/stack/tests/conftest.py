"""Fixtures: the fake Lambda emulator, the launcher (`python -m stack`) and the
tenant-site stand-in, started once per session on free ports, and the
helpers built on them.  A failed test shows the last lines of their logs."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from .flows import Flows
from .harness import ECS_STARTUP_S, FakeEmulator, Process, Stack, free_port, http_get, wait_for
from .strict import Strict

# The checks share one moto: keep the order they were written to run in.
MODULE_ORDER = ["test_lambda", "test_stepfunctions", "test_events", "test_ecs", "test_dynamodb",
                "test_standin", "test_faults", "test_iam", "test_quotas", "test_ecs_startup",
                "test_awscli", "test_rollout_sfn"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        return MODULE_ORDER.index(name) if name in MODULE_ORDER else len(MODULE_ORDER)

    items.sort(key=rank)  # stable: definition order within a module


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for process in Process.started:
            report.sections.append((f"last lines of {process.name} ({process.logfile})",
                                    process.tail()))


@pytest.fixture(scope="session")
def logdir(request: pytest.FixtureRequest) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="stepdeploy-selftest-"))
    yield path
    if request.session.testsfailed == 0:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def emulator() -> Iterator[FakeEmulator]:
    fake = FakeEmulator()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def launcher(emulator: FakeEmulator, logdir: Path) -> Iterator[str]:
    """The patched moto (`python -m stack`); its endpoint."""
    port = free_port()
    env = dict(os.environ)
    env["STEPDEPLOY_LOCAL_ECS_STARTUP_SECONDS"] = str(ECS_STARTUP_S)
    # No relaunch back-off here (the checks create a missing secret and expect
    # the next launch at once); the stack's default (30 s, doubling) is AWS-like.
    env["STEPDEPLOY_LOCAL_ECS_BACKOFF_SECONDS"] = "0"
    process = Process("moto_launcher", ["-m", "stack", "--port", str(port),
                                        "--lambda-endpoint", emulator.url], logdir, env)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_get(f"{endpoint}/moto-api/")[0] == 200, timeout=60,
                 what="moto launcher")
        yield endpoint
    finally:
        process.stop()


@pytest.fixture(scope="session")
def standin(launcher: str, logdir: Path) -> Iterator[str]:
    """The tenant-site stand-in (`python -m stack.standin`) on the launcher; its URL."""
    port = free_port()
    process = Process("standin", ["-m", "stack.standin", "--port", str(port),
                                  "--aws-endpoint", launcher], logdir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_get(f"{url}/__standin__/health")[0] == 200, timeout=30,
                 what="standin")
        yield url
    finally:
        process.stop()


@pytest.fixture(scope="session")
def stack(launcher: str, standin: str, emulator: FakeEmulator) -> Stack:
    return Stack(launcher, standin, emulator)


@pytest.fixture(scope="session")
def flows(stack: Stack) -> Flows:
    return Flows(stack)


@pytest.fixture(scope="session")
def strict(stack: Stack) -> Strict:
    return Strict(stack, ECS_STARTUP_S)
