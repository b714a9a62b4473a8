"""DynamoDB writes are serialized, so a cancelled transaction undoes only itself.

moto gap: DynamoDBBackend.transact_write_items
(moto/dynamodb/models/__init__.py) deep-copies each table it writes to
and, when any of its conditions fails (TransactionCanceledException), puts
the copies back: every write other requests made to those tables in the
meantime was lost (a lock, a ledger entry, another run's priority claim or
registry entry).  Writes (PutItem, UpdateItem, DeleteItem, batches,
transactions) now take one re-entrant lock per backend.

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

    names = ("put_item", "update_item", "delete_item", "transact_write_items")
    for name in names:
        setattr(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name)))
    return f"DynamoDBBackend.{'/'.join(names)}: one write lock per backend"
