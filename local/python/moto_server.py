"""moto's server (Secrets Manager, S3, ...) on loopback for the local stack and
the tests: `python local/python/moto_server.py PORT`. Prints
`{"event": "listening", "port": N}` when it answers."""

from __future__ import annotations

import sys

from moto.server import ThreadedMotoServer
from supervise import emit, stop_with_parent


def main() -> None:
    port = int(sys.argv[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    emit("listening", port=port)
    stop_with_parent(server.stop).wait()


if __name__ == "__main__":
    main()
