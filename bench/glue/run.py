"""bench/glue: throughput and peak memory of the Glue jobs on local[2].

Runs ingest_fhir and legacy_members_to_fhir through their main() over
generated data at two sizes (N and 2N, after a warm-up at N/10) in one process, and prints resources
per second, the time ratio 2N/N, and peak memory (resident set size of the
driver JVM plus the Python processes, sampled from /proc every 50 ms).
The JVM's start is excluded from the job timings and reported on its own.

    .venv/bin/python bench/glue/run.py [--fhir 100000] [--legacy 100000]
Targets: at least 10,000 resources/s on local[2]; 2N costs at most 2.2x N.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "glue"), str(ROOT / "glue" / "jobs")]


def rss_of_tree(pid: int) -> int:
    """Resident bytes of a process and its descendants (Linux /proc)."""
    total = 0
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # Fields after the command name, which may hold spaces: "pid (comm) state ppid ..."
            ppid = int(text[text.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
        stack.extend(children.get(p, []))
    return total


class PeakMemory:
    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_of_tree(os.getpid()))
            time.sleep(0.05)

    def __enter__(self):
        self.peak = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def common(size: int, work: Path) -> list[str]:
    return [
        "--run_id", f"bench-{size}", "--org", "bench", "--ingest_date", "2026-11-22",
        "--quarantine_path", str(work / "q"), "--report_path", str(work / "r"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fhir", type=int, default=100_000)
    parser.add_argument("--legacy", type=int, default=100_000)
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    host, port = moto.get_host_and_port()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto accepts any credentials
        AWS_DEFAULT_REGION="us-east-1",
    )
    import boto3

    boto3.client("secretsmanager").create_secret(
        Name="bench/tokenization",
        SecretString=json.dumps({"key": base64.b64encode(os.urandom(32)).decode()}),
    )

    import ingest_fhir
    import legacy_members_to_fhir
    from hoth_glue.generate import fhir, legacy
    from hoth_glue.runtime import spark_session

    started = time.monotonic()
    spark = spark_session("hoth-bench")
    spark.sparkContext.setLogLevel("ERROR")
    spark.range(1000).count()  # warm the JVM and the Python worker
    jvm_start = time.monotonic() - started

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for label, n, run in (
            ("ingest_fhir", args.fhir, "fhir"),
            ("legacy_members_to_fhir", args.legacy, "legacy"),
        ):
            timings = {}
            # The first size is a warm-up (Python workers, JIT); it is not reported.
            for size in (n // 10, n, 2 * n):
                work = base / f"{run}-{size}"
                if run == "fhir":
                    fhir(size, 42, work / "in")
                    argv = [
                        *common(size, work),
                        "--input_path", str(work / "in"),
                        "--curated_path", str(work / "curated"),
                        "--tokenization_secret_id", "bench/tokenization",
                    ]  # fmt: skip
                    job = ingest_fhir.main
                else:
                    legacy(size, 42, work / "members.csv")
                    argv = [
                        *common(size, work),
                        "--input_path", str(work / "members.csv"),
                        "--landing_path", str(work / "out"),
                    ]  # fmt: skip
                    job = legacy_members_to_fhir.main
                with PeakMemory() as memory:
                    t = time.monotonic()
                    job(["job.py", *argv])
                    seconds = time.monotonic() - t
                timings[size] = seconds
                if size != n // 10:
                    rows.append((label, size, seconds, size / seconds, memory.peak / 2**20))
            rows.append((label, "ratio 2N/N", timings[2 * n] / timings[n], None, None))
    moto.stop()

    print(f"bench/glue on local[2], Python {sys.version.split()[0]}, Spark {spark.version}")
    print(f"JVM + session start (excluded below): {jvm_start:.1f} s\n")
    print("| job | input | seconds | resources/s | peak RSS (driver JVM + Python) |")
    print("|---|---|---|---|---|")
    for label, size, seconds, rate, peak in rows:
        if rate is None:
            print(f"| {label} | {size} | {seconds:.2f}x | | |")
        else:
            print(f"| {label} | {size:,} | {seconds:.2f} | {rate:,.0f} | {peak:,.0f} MiB |")
    spark.stop()


if __name__ == "__main__":
    main()
