"""The tenant-site stand-in (stack/standin.py) serves a host only while a
listener rule and a running service exist for it."""

from __future__ import annotations

import json
import time

from .flows import Flows
from .harness import DEV, TENANT_HOST, http_get, wait_for


def test_standin(flows: Flows) -> None:
    ecs, elb = flows.stack.client("ecs", DEV), flows.stack.client("elbv2", DEV)
    subnets, sg = flows.network(DEV)
    vpc = flows.stack.client("ec2", DEV).describe_subnets(
        SubnetIds=subnets)["Subnets"][0]["VpcId"]
    alb = elb.create_load_balancer(Name="stepdeploy-dev", Subnets=subnets,
                                   SecurityGroups=[sg])["LoadBalancers"][0]
    tg = elb.create_target_group(Name="acme", Protocol="HTTP", Port=80, VpcId=vpc,
                                 TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    listener = elb.create_listener(
        LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "404", "ContentType": "text/plain"}}])["Listeners"][0]
    # More rules than DescribeRules returns on its first page (50), before the tenant's.
    for priority in range(1, 61):
        elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=priority,
                        Conditions=[{"Field": "host-header", "HostHeaderConfig": {
                            "Values": [f"other{priority}.wpdev.kimmyai.io"]}}],
                        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                            "StatusCode": "404"}}])
    elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=100,
                    Conditions=[{"Field": "host-header", "HostHeaderConfig": {
                        "Values": [TENANT_HOST]}}],
                    Actions=[{"Type": "forward", "TargetGroupArn": tg}])
    time.sleep(1.2)
    assert flows.site(TENANT_HOST)[0] == 404, "served before its service runs"

    ecs.create_cluster(clusterName="tenants")
    flows.register_wordpress(ecs)
    ecs.create_service(
        cluster="tenants", serviceName="acme", taskDefinition="wordpress",
        desiredCount=1, launchType="FARGATE",
        loadBalancers=[{"targetGroupArn": tg, "containerName": "wordpress",
                        "containerPort": 80}],
        networkConfiguration={"awsvpcConfiguration": {
            "subnets": subnets, "securityGroups": [sg]}})
    status, body, _ = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
        flows.site(TENANT_HOST)), timeout=10, what="tenant served")
    assert f"WordPress (local stand-in) for {TENANT_HOST}" in body, body
    status, _, headers = flows.site(TENANT_HOST, "/wp-admin/")
    assert status == 302 and headers["Location"] == "/wp-login.php", status
    status, body, _ = flows.site("other.wpdev.kimmyai.io")
    assert status == 404 and "no tenant for other.wpdev.kimmyai.io" in body, body

    control = f"{flows.stack.standin_url}/__standin__/fail?host={TENANT_HOST}"
    assert http_get(control, method="POST")[0] == 200
    assert TENANT_HOST in json.loads(http_get(
        f"{flows.stack.standin_url}/__standin__/fail")[1])["fail"]
    status, body, _ = flows.site(TENANT_HOST)
    assert status == 500 and "stand-in" in body, (status, body)
    assert http_get(control, method="DELETE")[0] == 200
    assert flows.site(TENANT_HOST)[0] == 200

    ecs.update_service(cluster="tenants", service="acme", desiredCount=0)
    wait_for(lambda: flows.site(TENANT_HOST)[0] == 404, timeout=10,
             what="tenant no longer served at desiredCount 0")
