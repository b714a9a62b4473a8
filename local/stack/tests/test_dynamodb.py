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
