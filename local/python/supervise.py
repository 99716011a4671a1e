"""What the local stack's Python processes share: they stop on SIGTERM/SIGINT
and when the Node process that started them is gone (even after a SIGKILL),
so `npm start` never leaves an orphan behind."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable


def emit(event: str, **fields: object) -> None:
    """One JSON line on stdout: how the Node side follows progress."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def stop_with_parent(stop: Callable[[], None], poll_seconds: float = 0.5) -> threading.Event:
    """Calls `stop` once on SIGTERM, SIGINT or when the parent process dies."""
    parent = os.getppid()
    stopping = threading.Event()

    def trigger(*_: object) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=stop, daemon=True).start()

    signal.signal(signal.SIGTERM, trigger)
    signal.signal(signal.SIGINT, trigger)

    def watch() -> None:
        while not stopping.is_set():
            if os.getppid() != parent:
                trigger()
                return
            time.sleep(poll_seconds)

    threading.Thread(target=watch, daemon=True).start()
    return stopping
