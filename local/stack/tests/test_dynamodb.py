"""DynamoDB: a cancelled transaction undoes only itself
(stack/patches/dynamodb_write_lock.py)."""

from __future__ import annotations

import threading

from .harness import Stack


def test_dynamodb_cancelled_transactions_lose_no_other_writes(stack: Stack) -> None:
    ddb = stack.client("dynamodb")
    ddb.create_table(TableName="concurrent", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    for i in range(300):  # a table worth copying
        ddb.put_item(TableName="concurrent", Item={"pk": {"S": f"filler-{i}"}})
    ddb.put_item(TableName="concurrent", Item={"pk": {"S": "taken"}})
    stop = threading.Event()

    def cancel_transactions() -> None:
        client = stack.client("dynamodb")
        while not stop.is_set():
            try:
                client.transact_write_items(TransactItems=[{"Put": {
                    "TableName": "concurrent", "Item": {"pk": {"S": "taken"}},
                    "ConditionExpression": "attribute_not_exists(pk)"}}])
            except client.exceptions.TransactionCanceledException:
                pass

    threads = [threading.Thread(target=cancel_transactions) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for i in range(150):
            ddb.put_item(TableName="concurrent", Item={"pk": {"S": f"written-{i}"}})
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    missing = [i for i in range(150) if "Item" not in ddb.get_item(
        TableName="concurrent", Key={"pk": {"S": f"written-{i}"}})]
    assert not missing, f"{len(missing)} writes undone by cancelled transactions: {missing[:10]}"


def test_dynamodb_copies_a_table_while_other_calls_use_it(stack: Stack) -> None:
    """A cancelled transaction deep-copies its table. moto keeps a table with
    a sort key as a defaultdict of partitions, so even a read of a partition
    that does not exist (GetItem, Query: a new tenant's items) adds one: run
    unlocked beside the copy it failed it with an HTTP 500 (RuntimeError:
    dictionary changed size during iteration), seen in the capacity test.
    Every DynamoDB call now takes the backend's lock. No retries here, so a
    500 fails the test."""
    from botocore.config import Config

    once = Config(retries={"max_attempts": 1})
    ddb = stack.client("dynamodb", config=once)
    arn = ddb.create_table(TableName="copied", BillingMode="PAY_PER_REQUEST",
                           AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                 {"AttributeName": "sk", "AttributeType": "S"}],
                           KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                      {"AttributeName": "sk", "KeyType": "RANGE"}])["TableDescription"]["TableArn"]
    for i in range(600):  # a copy long enough to be interrupted
        ddb.put_item(TableName="copied", Item={"pk": {"S": f"filler-{i}"}, "sk": {"S": "x"}})
    ddb.put_item(TableName="copied", Item={"pk": {"S": "taken"}, "sk": {"S": "x"}})
    stop = threading.Event()
    errors: list[str] = []

    def keep(call) -> None:
        client = stack.client("dynamodb", config=once)
        n = 0
        while not stop.is_set():
            n += 1
            try:
                call(client, n)
            except client.exceptions.TransactionCanceledException:
                pass
            except Exception as e:  # noqa: BLE001 - any other answer is the failure
                errors.append(f"{call.__name__}: {e}")
                return

    def cancel(c, n):
        c.transact_write_items(TransactItems=[{"Put": {
            "TableName": "copied", "Item": {"pk": {"S": "taken"}, "sk": {"S": "x"}},
            "ConditionExpression": "attribute_not_exists(pk)"}}])

    def read(c, n):
        # Partitions that do not exist: each read adds one to moto's defaultdict.
        c.query(TableName="copied", KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": f"fresh-q{n}-{threading.get_ident()}"}})
        c.get_item(TableName="copied", Key={"pk": {"S": f"fresh-g{n}-{threading.get_ident()}"}, "sk": {"S": "x"}})
        c.scan(TableName="copied", Limit=5)

    def table_calls(c, n):
        c.describe_table(TableName="copied")
        c.update_time_to_live(TableName="copied", TimeToLiveSpecification={"Enabled": n % 2 == 0, "AttributeName": "ttl"})
        c.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{n % 50}", "Value": "v"}])
        c.update_continuous_backups(TableName="copied", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
        c.put_item(TableName="copied", Item={"pk": {"S": f"written-{n}"}, "sk": {"S": "x"}})

    threads = [threading.Thread(target=keep, args=(f,)) for f in (cancel, cancel, read, read, table_calls)]
    for thread in threads:
        thread.start()
    try:
        stop.wait(8)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors
