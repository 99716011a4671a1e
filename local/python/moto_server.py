"""moto's server (Secrets Manager, S3, ...) on loopback for the local stack and
the tests: `python local/python/moto_server.py PORT`. Prints
`{"event": "listening", "port": N}` when it answers."""

from __future__ import annotations

import copy
import functools
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.server import ThreadedMotoServer
from supervise import emit, stop_with_parent

# moto's threaded server runs requests in parallel, and its DynamoDB backend
# neither locks nor isolates: a TransactWriteItems checks and applies item by
# item and, when it fails, restores a copy of the whole table taken before,
# which undoes transactions other threads committed meanwhile. DynamoDB
# documents transactions as serializable with single-item writes and reads
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-isolation),
# so every item operation of the emulator runs under one lock.
_ITEM_OPERATIONS = (
    "put_item",
    "get_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "transact_write_items",
)
_lock = threading.RLock()


class _NoTableCopy:
    """Stands in for the `copy` module inside moto's transact_write_items."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value


_moto_transact = DynamoDBBackend.transact_write_items


def _transact_write_items(self, transact_items):
    """moto's TransactWriteItems with its rollback kept to the items the
    transaction touches: moto itself deep-copies the whole table once per
    action (O(actions x table) per call, seconds on a registry of thousands
    of members). Runs under the lock, so nothing else changes those items."""
    before = []
    for entry in transact_items:
        kind, op = next(iter(entry.items()))
        table = self.get_table(op["TableName"])
        attrs = op["Item"] if kind == "Put" else op["Key"]
        hash_key = DynamoType(attrs[table.hash_key_attr])
        range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
        before.append(
            (table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key)))
        )
    dynamodb_models.copy = _NoTableCopy
    try:
        return _moto_transact(self, transact_items)
    except Exception:
        for table, hash_key, range_key, item in reversed(before):
            if item is not None:
                if range_key is None:
                    table.items[hash_key] = item
                else:
                    table.items[hash_key][range_key] = item
            elif table.get_item(hash_key, range_key) is not None:
                table.delete_item(hash_key, range_key)
        raise
    finally:
        dynamodb_models.copy = copy


DynamoDBBackend.transact_write_items = _transact_write_items


def _serialized(method):
    @functools.wraps(method)
    def run(*args, **kwargs):
        with _lock:
            return method(*args, **kwargs)

    return run


for _name in _ITEM_OPERATIONS:
    setattr(DynamoDBBackend, _name, _serialized(getattr(DynamoDBBackend, _name)))


def main() -> None:
    port = int(sys.argv[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    emit("listening", port=port)
    stop_with_parent(server.stop).wait()


if __name__ == "__main__":
    main()
