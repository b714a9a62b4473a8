"""DynamoDB writes are serialized, so a cancelled transaction undoes only itself.

moto gap: DynamoDBBackend.transact_write_items
(moto/dynamodb/models/__init__.py) deep-copies each table it writes to
and, when any of its conditions fails (TransactionCanceledException), puts
the copies back: every write other requests made to those tables in the
meantime was lost (a lock, a ledger entry, another run's priority claim or
registry entry).  Writes (PutItem, UpdateItem, DeleteItem, batches,
transactions) now take one re-entrant lock per backend.

Second moto gap, the same copy: a table with a sort key keeps its items in
a defaultdict of partitions, so a *read* of a partition that does not exist
(GetItem or Query for a new tenant's items) adds one, and a read beside the
copy failed it with an HTTP 500 ("dictionary changed size during
iteration"; seen in the capacity test, 250 deployments at once). So every
public DynamoDBBackend method takes the lock, reads and table calls too:
DynamoDB is linearizable per item, and moto, one Python process, gains no
parallelism from running them side by side. Covered by
test_dynamodb_copies_a_table_while_other_calls_use_it (without it: a 500
within seconds).

Checked against moto 5.2.5 (the pinned release, the newest on PyPI): gap
still there (original_table_state deep copies, no lock).
Covered by test_dynamodb_cancelled_transactions_lose_no_other_writes (a
race: without the lock it failed 2 runs in 10 here, with it none).
"""

from __future__ import annotations

import threading
from typing import Callable


def install() -> str:
    from moto.dynamodb.models import DynamoDBBackend

    def locked(method: Callable) -> Callable:
        def call(self, *args, **kwargs):
            lock = self.__dict__.setdefault("_stepdeploy_write_lock", threading.RLock())
            with lock:
                return method(self, *args, **kwargs)
        call.__name__ = method.__name__
        return call

    import inspect

    names = [name for name, value in vars(DynamoDBBackend).items()
             if not name.startswith("_") and inspect.isfunction(value)]
    for name in names:
        setattr(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name)))
    return f"DynamoDBBackend: every call ({len(names)} methods) under one lock per backend"
