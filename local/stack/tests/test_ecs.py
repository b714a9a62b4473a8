"""ECS services settle as Fargate's do: deployments, rolling updates, scaling
(stack/patches/ecs_startup.py; the secrets and IAM side: test_ecs_startup.py)."""

from __future__ import annotations

from typing import Any

from .flows import Flows
from .harness import ECS_STARTUP_S, ORCH, wait_for


def test_ecs_service_settles(flows: Flows) -> None:
    ecs = flows.stack.client("ecs")
    subnets, sg = flows.network(ORCH)
    ecs.create_cluster(clusterName="selftest")
    td1, td2 = flows.register_wordpress(ecs), flows.register_wordpress(ecs)
    network = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}}
    ecs.create_service(cluster="selftest", serviceName="web", taskDefinition="wordpress:1",
                       desiredCount=2, launchType="FARGATE",
                       networkConfiguration=network)

    def describe() -> dict[str, Any]:
        return ecs.describe_services(cluster="selftest", services=["web"])["services"][0]

    def starting(desired: int, task_definition: str) -> str:
        """Just after the call: a PRIMARY deployment IN_PROGRESS, not yet running."""
        s = describe()
        primary = s["deployments"][0]
        assert primary["status"] == "PRIMARY" and primary["rolloutState"] == "IN_PROGRESS", s
        assert primary["runningCount"] == 0 and primary["desiredCount"] == desired, primary
        assert primary["taskDefinition"] == task_definition, primary
        return primary["id"]

    def check(desired: int, task_definition: str) -> str:
        """After the start-up delay: steady, one deployment."""
        s = wait_for(lambda: (lambda s: s if s["deployments"][0]["rolloutState"] == "COMPLETED"
                              and s["runningCount"] == desired else None)(describe()),
                     timeout=ECS_STARTUP_S * 5, what="steady state")
        assert s["runningCount"] == desired and s["pendingCount"] == 0, s
        assert s["taskDefinition"] == task_definition, s
        [d] = s["deployments"]
        assert d["status"] == "PRIMARY" and d["rolloutState"] == "COMPLETED", d
        assert d["runningCount"] == desired and d["pendingCount"] == 0, d
        assert d["desiredCount"] == desired and d["taskDefinition"] == task_definition, d
        return d["id"]

    first = starting(2, td1)
    assert check(2, td1) == first
    ecs.update_service(cluster="selftest", service="web", taskDefinition="wordpress:2",
                       desiredCount=3)
    second = starting(3, td2)
    assert second != first and describe()["runningCount"] == 2, "old tasks keep running"
    assert check(3, td2) == second
    ecs.update_service(cluster="selftest", service="web", desiredCount=1)
    assert check(1, td2) == second  # scaling in: at once, same deployment
    ecs.update_service(cluster="selftest", service="web", forceNewDeployment=True)
    third = starting(1, td2)
    assert third != second and check(1, td2) == third
    [cluster] = ecs.describe_clusters(clusters=["selftest"])["clusters"]
    assert cluster["runningTasksCount"] == 1 and cluster["pendingTasksCount"] == 0, cluster
