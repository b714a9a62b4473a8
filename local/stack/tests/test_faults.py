"""The fault injector and its control API, /__stepdeploy__/faults
(stack/faults.py, stack/counter.py; the API: stack/README.md)."""

from __future__ import annotations

import time

from .harness import DEV, Stack, error_of


def test_faults_control(stack: Stack) -> None:
    assert stack.faults("DELETE")[0] == 200
    for bad in ({"mode": "explode", "rate": 1}, {"mode": "throttle"},
                {"mode": "error", "rate": 2}, {"mode": "drop", "nth": 0},
                {"mode": "error", "rate": 1, "match": {"tenant": "x"}},
                {"mode": "error", "rate": 0.5, "nth": 1}, "nonsense"):
        status, answer = stack.faults("PUT", bad)
        assert status == 400 and answer["error"], (bad, status, answer)
    status, answer = stack.faults("POST", {"id": "a", "seed": 3, "rules": [
        {"mode": "latency", "ms": 1}, {"id": "a-err", "mode": "error", "nth": 2}]})
    assert status == 200 and answer == {"group": "a", "rules": ["a.1", "a-err"]}, answer
    assert stack.faults("POST", {"id": "a", "rules": []})[0] == 409
    assert stack.faults("POST", {"mode": "throttle", "rate": 0.1})[0] == 200
    status, state = stack.faults("GET")
    assert [r["id"] for r in state["rules"]][:2] == ["a.1", "a-err"], state
    assert [r["mode"] for r in state["rules"]] == ["latency", "error", "throttle"], state
    assert state["rules"][1]["nth"] == 2 and state["rules"][1]["count"] == 1, state
    assert stack.faults("GET", query="?id=a")[1]["groups"] == [{"id": "a", "seed": 3}]
    stack.faults("DELETE", query="?id=a-err")
    assert [r["id"] for r in stack.faults("GET", query="?id=a")[1]["rules"]] == ["a.1"]
    stack.faults("DELETE", query="?id=a")
    assert [r["mode"] for r in stack.faults("GET")[1]["rules"]] == ["throttle"]
    stack.faults("DELETE")
    assert stack.faults("GET")[1] == {"rules": [], "injected": {}, "groups": []}


def test_faults_throttle_in_each_protocols_shape(stack: Stack) -> None:
    # The union of the SDKs' throttling codes (the Rust SDK's list is the same).
    from botocore.retries.standard import RetryContext, ThrottledRetryableChecker

    calls = [  # (service, action as the counter names it, call, status, code)
        ("dynamodb", "dynamodb:ListTables", lambda c: c.list_tables(), 400,
         "ThrottlingException"),
        ("ecs", "ecs:ListClusters", lambda c: c.list_clusters(), 400, "ThrottlingException"),
        ("elbv2", "elasticloadbalancing:DescribeLoadBalancers",
         lambda c: c.describe_load_balancers(), 400, "Throttling"),
        ("iam", "iam:ListRoles", lambda c: c.list_roles(), 400, "Throttling"),
        ("sts", "sts:GetCallerIdentity", lambda c: c.get_caller_identity(), 400,
         "Throttling"),
        ("sns", "sns:ListTopics", lambda c: c.list_topics(), 400, "Throttling"),
        ("s3", "s3:GET bucket?list-type", lambda c: c.list_objects_v2(Bucket="nope"), 503,
         "SlowDown"),
        ("route53", "route53:GET hostedzone", lambda c: c.list_hosted_zones(), 400,
         "Throttling"),
        ("efs", "elasticfilesystem:GET file-systems", lambda c: c.describe_file_systems(),
         400, "ThrottlingException"),
    ]
    checker = ThrottledRetryableChecker()
    for service, action, call, status, code in calls:
        stack.faults("PUT", {"mode": "throttle", "nth": 1, "match": {"action": action}})
        got = error_of(lambda: call(stack.rust_client(service)))
        assert got == (status, code), (service, got)
        context = RetryContext(attempt_number=1, parsed_response={"Error": {"Code": got[1]}})
        assert checker.is_retryable(context), (service, got)
        assert stack.faults("GET")[1]["injected"] == {"throttle": 1}, service
        # Fired once: the next call goes through to moto.
        assert error_of(lambda: call(stack.rust_client(service)))[1] != code, service
    stack.faults("DELETE")


def test_faults_unavailable_error_and_only_stepdeploy_calls(stack: Stack) -> None:
    ddb, plain = stack.rust_client("dynamodb"), stack.client("dynamodb")
    stack.faults("PUT", {"rules": [{"mode": "unavailable", "rate": 1,
                                    "match": {"action": "dynamodb:ListTables"}}]})
    assert error_of(ddb.list_tables) == (503, "ServiceUnavailableException")
    assert error_of(plain.list_tables) == (200, ""), "not a stepdeploy call"
    stack.faults("PUT", {"mode": "unavailable", "status": 500, "rate": 1})
    assert error_of(ddb.list_tables) == (500, "InternalFailure")
    assert error_of(stack.rust_client("elbv2").describe_load_balancers) == (
        500, "InternalError")
    stack.faults("PUT", {"mode": "error", "rate": 1})
    assert error_of(ddb.list_tables) == (400, "AccessDeniedException")
    assert error_of(stack.rust_client("iam").list_roles) == (403, "AccessDenied")
    assert error_of(lambda: stack.rust_client("s3").list_objects_v2(
        Bucket="nope")) == (403, "AccessDenied")
    stack.faults("DELETE")


def test_faults_match_contains_mutating_and_caller(stack: Stack) -> None:
    ddb = stack.rust_client("dynamodb")
    ddb.create_table(TableName="faults", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    stack.faults("PUT", {"rules": [{"mode": "error", "rate": 1, "match": {
        "contains": "tenantaaa", "mutating": True}}]})
    put = lambda pk: lambda: ddb.put_item(TableName="faults", Item={"pk": {"S": pk}})
    get = lambda pk: lambda: ddb.get_item(TableName="faults", Key={"pk": {"S": pk}})
    assert error_of(put("LOCK#tenantaaa"))[1] == "AccessDeniedException"
    assert error_of(get("LOCK#tenantaaa")) == (200, ""), "a read"
    assert error_of(put("LOCK#tenantbbb")) == (200, ""), "another tenant"
    [rule] = stack.faults("GET")[1]["rules"]
    assert rule["matched"] == 1 and rule["injected"] == 1, rule
    assert rule["log"][0]["call"] == "dynamodb:PutItem" and rule["log"][0]["mutating"], rule
    # caller: the role session behind the access key.
    stack.faults("PUT", {"mode": "error", "rate": 1, "match": {"caller": "selftest"}})
    assumed = stack.rust_client("sns", DEV)
    assert error_of(assumed.list_topics)[1] == "AccessDenied"
    assert error_of(stack.rust_client("sns").list_topics) == (200, "")
    stack.faults("DELETE")


def test_faults_drop_applies_the_call_and_nth_count(stack: Stack) -> None:
    stack.faults("PUT", {"mode": "drop", "nth": 1, "match": {"action": "sns:CreateTopic"}})
    sns = stack.rust_client("sns")
    assert error_of(lambda: sns.create_topic(Name="dropped")) == (500, "InternalError")
    topics = [t["TopicArn"] for t in stack.client("sns").list_topics()["Topics"]]
    assert any(t.endswith(":dropped") for t in topics), "applied before the answer was lost"
    stack.faults("PUT", {"mode": "throttle", "nth": 2, "count": 2,
                         "match": {"action": "sns:ListTopics"}})
    outcomes = [error_of(sns.list_topics)[1] for _ in range(4)]
    assert outcomes == ["", "Throttling", "Throttling", ""], outcomes
    stack.faults("DELETE")


def test_faults_latency_and_seeded_rate(stack: Stack) -> None:
    sns = stack.rust_client("sns")
    stack.faults("PUT", {"mode": "latency", "ms": 400, "match": {"action": "sns:ListTopics"}})
    t0 = time.monotonic()
    assert error_of(sns.list_topics) == (200, "")
    assert time.monotonic() - t0 >= 0.4
    runs = []
    for _ in range(2):
        stack.faults("PUT", {"seed": 11, "rules": [
            {"mode": "throttle", "rate": 0.3}, {"mode": "unavailable", "rate": 0.2}]})
        runs.append([error_of(sns.list_topics)[1] for _ in range(40)])
    assert runs[0] == runs[1], "same seed, same faults"
    throttled, unavailable = runs[0].count("Throttling"), runs[0].count("ServiceUnavailable")
    assert 4 <= throttled <= 22 and 2 <= unavailable <= 16, runs[0]
    state = stack.faults("GET")[1]
    assert state["injected"] == {"throttle": throttled, "unavailable": unavailable}, state
    stack.faults("DELETE")
