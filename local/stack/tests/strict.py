"""What the quota and ECS start-up checks share: a network, load balancers and
services whose tasks read a secret, in the dev account (the `strict` fixture)."""

from __future__ import annotations

import json
from typing import Any, Callable

from .harness import DEV, REGION, Stack


class Strict:
    """Helpers of the quota (strict_quotas.py) and ECS start-up (ecs_startup.py) checks."""

    def __init__(self, stack: Stack, startup_seconds: float) -> None:
        self.stack = stack
        self.startup = startup_seconds
        self._vpc: dict[str, tuple[str, list[str], str]] = {}

    def network(self, account: str) -> tuple[str, list[str], str]:
        """(vpc, two subnets, security group) in `account`, made once."""
        if account not in self._vpc:
            ec2 = self.stack.client("ec2", account)
            vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
            subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24",
                                         AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
                       for i, az in ((1, "a"), (2, "b"))]
            sg = ec2.create_security_group(GroupName=f"strict-{vpc}", Description="strict",
                                           VpcId=vpc)["GroupId"]
            self._vpc[account] = (vpc, subnets, sg)
        return self._vpc[account]

    def alb(self, name: str) -> tuple[Any, str, str, str]:
        """(elbv2 client, vpc, load balancer ARN, listener ARN) in dev."""
        elb = self.stack.client("elbv2", DEV)
        vpc, subnets, sg = self.network(DEV)
        lb = elb.create_load_balancer(Name=name, Subnets=subnets,
                                      SecurityGroups=[sg])["LoadBalancers"][0]["LoadBalancerArn"]
        listener = elb.create_listener(
            LoadBalancerArn=lb, Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
                "StatusCode": "404"}}])["Listeners"][0]["ListenerArn"]
        return elb, vpc, lb, listener

    @staticmethod
    def rule(elb: Any, listener: str, priority: int, groups: list[str]) -> Callable[[], Any]:
        return lambda: elb.create_rule(
            ListenerArn=listener, Priority=priority,
            Conditions=[{"Field": "host-header", "HostHeaderConfig": {
                "Values": [f"t{priority}.wpdev.kimmyai.io"]}}],
            Actions=[{"Type": "forward", "ForwardConfig": {
                "TargetGroups": [{"TargetGroupArn": g} for g in groups]}}])

    def service_with_secret(self, name: str, value_from: str | None,
                            execution_role: str | None = None) -> tuple[Any, Any, str]:
        """A dev service of a task definition reading `value_from`, behind a target group."""
        ecs, elb = self.stack.client("ecs", DEV), self.stack.client("elbv2", DEV)
        vpc, subnets, sg = self.network(DEV)
        try:
            ecs.create_cluster(clusterName="strict")
        except Exception:
            pass
        group = elb.create_target_group(Name=f"strict-{name}", Protocol="HTTP", Port=80,
                                        VpcId=vpc, TargetType="ip")["TargetGroups"][0]
        container: dict[str, Any] = {"name": "wordpress", "image": "wordpress:6",
                                     "essential": True, "portMappings": [{"containerPort": 80}]}
        if value_from:
            container["secrets"] = [{"name": "WORDPRESS_DB_PASSWORD", "valueFrom": value_from}]
        extra = {"executionRoleArn": execution_role} if execution_role else {}
        ecs.register_task_definition(family=f"strict-{name}", networkMode="awsvpc",
                                     requiresCompatibilities=["FARGATE"], cpu="256",
                                     memory="512", containerDefinitions=[container], **extra)
        ecs.create_service(cluster="strict", serviceName=name, taskDefinition=f"strict-{name}",
                           desiredCount=1, launchType="FARGATE",
                           loadBalancers=[{"targetGroupArn": group["TargetGroupArn"],
                                           "containerName": "wordpress", "containerPort": 80}],
                           networkConfiguration={"awsvpcConfiguration": {
                               "subnets": subnets, "securityGroups": [sg]}})
        return ecs, elb, group["TargetGroupArn"]

    def execution_role(self, name: str, statements: list[dict[str, Any]]) -> str:
        """A task execution role in dev with these identity-policy statements."""
        iam = self.stack.client("iam", DEV)
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}))["Role"]["Arn"]
        if statements:
            iam.put_role_policy(RoleName=name, PolicyName="secrets", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": statements}))
        return arn

    @staticmethod
    def describe(ecs: Any, name: str) -> dict[str, Any]:
        return ecs.describe_services(cluster="strict", services=[name])["services"][0]

    @staticmethod
    def steady(service: dict[str, Any]) -> bool:
        primary = [d for d in service["deployments"] if d["status"] == "PRIMARY"]
        return (service["runningCount"] == service["desiredCount"] > 0
                and len(service["deployments"]) == 1
                and primary[0]["rolloutState"] == "COMPLETED")

    def stopped_reasons(self, ecs: Any, name: str) -> list[str]:
        arns = ecs.list_tasks(cluster="strict", serviceName=name,
                              desiredStatus="STOPPED")["taskArns"]
        if not arns:
            return []
        tasks = ecs.describe_tasks(cluster="strict", tasks=arns)["tasks"]
        assert all(t["lastStatus"] == "STOPPED" and t["stopCode"] == "TaskFailedToStart"
                   for t in tasks), tasks
        return [t["stoppedReason"] for t in tasks]
