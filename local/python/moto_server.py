"""moto's server (Secrets Manager, S3, ...) on loopback for the local stack and
the tests: `python local/python/moto_server.py PORT`. Prints
`{"event": "listening", "port": N}` when it answers."""

from __future__ import annotations

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
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
