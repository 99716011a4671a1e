"""bench/glue: the Glue jobs on local[2] against a single-process pyarrow floor.

In one process and one run, after a warm-up of every measured thing at a
tenth of the size, each figure the median of 3 (a job and its
baseline interleaved):

- ingest_fhir through its main() at N and 4N resources (Bulk Data NDJSON from
  hoth_glue.generate), the floor on the same files (pyarrow reads each NDJSON
  file and writes its rows to Parquet, one process), their ratio, resources
  per second, and the time ratio 4N/N;
- the same job as it was before issue 18 (bench/glue/ingest_before.py) at N;
- legacy_members_to_fhir through its main() at N members, the same job as it
  was before issue 18 (bench/glue/legacy_before.py, which read its input three
  times), and a pyarrow CSV floor (read the CSV, write its rows to Parquet).

The load average is printed before and after: the machine is shared.

    .venv/bin/python bench/glue/run.py [--fhir 400000] [--legacy 400000] [--small 100000]
Targets (issue 18): ingest_fhir <= 4x its floor at 400k and >= 100k
resources/s; 4x the input costs <= 4.2x the time; legacy 2x faster than before.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "glue"), str(ROOT / "glue" / "jobs"), str(Path(__file__).parent)]


def medians_of_3(*runs: Callable[[int], None]) -> list[float]:
    """Each run's median of 3, the runs interleaved (a, b, a, b, a, b): a machine
    whose speed drifts (shared cores) then slows every run alike."""
    times: list[list[float]] = [[] for _ in runs]
    for i in range(3):
        for run, own in zip(runs, times, strict=True):
            t = time.monotonic()
            run(i)
            own.append(time.monotonic() - t)
    return [statistics.median(own) for own in times]


def pyarrow_fhir_floor(src: Path, out: Path) -> None:
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob("*.ndjson")):
        pq.write_table(pj.read_json(f), out / f"{f.stem}.parquet")


def pyarrow_csv_floor(src: Path, out: Path) -> None:
    import pyarrow.csv as pc
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pc.read_csv(src), out / "members.parquet")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--fhir", type=int, default=400_000)
    parser.add_argument("--legacy", type=int, default=400_000)
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

    import ingest_before
    import legacy_before

    import ingest_fhir
    import legacy_members_to_fhir
    from hoth_glue.generate import fhir, legacy
    from hoth_glue.runtime import spark_session

    # The Python workers import the baselines' UDFs from bench/glue.
    paths = [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    load_before = load()
    spark = spark_session("hoth-bench")
    spark.sparkContext.setLogLevel("ERROR")
    spark.range(1000).count()

    def common(work: Path, i: int) -> list[str]:
        return [
            "job.py", "--run_id", f"bench-{i}", "--org", "bench", "--ingest_date", "2026-11-22",
            "--quarantine_path", str(work / f"q{i}"), "--report_path", str(work / f"r{i}"),
        ]  # fmt: skip

    results: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)

        def fhir_runs(size: int, before: bool) -> tuple[float, float, float | None]:
            work = base / f"fhir-{size}"
            fhir(size, 42, work / "in")

            def run_with(module) -> Callable[[int], None]:
                def job(i: int) -> None:
                    argv = [*common(work, i), "--input_path", str(work / "in")]
                    argv += ["--curated_path", str(work / "curated")]
                    argv += ["--tokenization_secret_id", "bench/tokenization"]
                    report = module.main(argv)
                    assert sum(report["written"].values()) == size, report

                return job

            jobs = [run_with(ingest_fhir)] + ([run_with(ingest_before)] if before else [])
            seconds, *previous = medians_of_3(*jobs)
            (floor,) = medians_of_3(lambda i: pyarrow_fhir_floor(work / "in", work / f"floor{i}"))
            shutil.rmtree(work)
            return seconds, floor, previous[0] if previous else None

        def legacy_runs(size: int) -> tuple[float, float, float]:
            work = base / f"legacy-{size}"
            legacy(size, 42, work / "members.csv")

            def run_with(module) -> Callable[[int], None]:
                def job(i: int) -> None:
                    report = module.main(
                        [
                            *common(work, i),
                            "--input_path",
                            str(work / "members.csv"),
                            "--landing_path",
                            str(work / f"out{i}"),
                        ]  # fmt: skip
                    )
                    assert report["written"]["Patient"] == size, report

                return job

            now, before = medians_of_3(run_with(legacy_members_to_fhir), run_with(legacy_before))
            (floor,) = medians_of_3(
                lambda i: pyarrow_csv_floor(work / "members.csv", work / f"floor{i}")
            )
            return now, before, floor

        # Warm-up: every code path once at a tenth of the size (Python workers, JIT).
        fhir_runs(args.small // 10, True)
        legacy_runs(args.legacy // 10)

        for size in (args.small, args.fhir, 4 * args.fhir):
            (
                results[f"fhir {size}"],
                results[f"fhir floor {size}"],
                results[f"fhir before {size}"],  # type: ignore[assignment]
            ) = fhir_runs(size, size == args.fhir)
        (
            results["legacy"],
            results["legacy before"],
            results["legacy floor"],
        ) = legacy_runs(args.legacy)
    moto.stop()

    print(f"bench/glue on local[2], Python {sys.version.split()[0]}, Spark {spark.version}")
    print(f"load average (1, 5, 15 min) before: {load_before}; after: {load()}")
    print("each figure the median of 3, after a warm-up at a tenth of the size\n")
    print("| job | input | seconds | resources/s | pyarrow floor | job / floor |")
    print("|---|---|---|---|---|---|")
    for size in (args.small, args.fhir, 4 * args.fhir):
        f = results[f"fhir floor {size}"]
        for label, key in (("ingest_fhir", "fhir"), ("... before issue 18", "fhir before")):
            s = results[f"{key} {size}"]
            if s is not None:
                print(
                    f"| {label} | {size:,} | {s:.2f} | {size / s:,.0f} | {f:.2f} s | {s / f:.1f}x |"
                )
    n = args.legacy
    for label, key in (
        ("legacy_members_to_fhir", "legacy"),
        ("... before issue 18", "legacy before"),
    ):
        s = results[key]
        f = results["legacy floor"]
        print(f"| {label} | {n:,} | {s:.2f} | {n / s:,.0f} | {f:.2f} s | {s / f:.1f}x |")
    print()
    ratio = results[f"fhir {4 * args.fhir}"] / results[f"fhir {args.fhir}"]
    print(f"ingest_fhir {4 * args.fhir:,} / {args.fhir:,}: {ratio:.2f}x the time (target <= 4.2x)")
    speedup = results[f"fhir before {args.fhir}"] / results[f"fhir {args.fhir}"]
    print(f"ingest_fhir before / now at {args.fhir:,}: {speedup:.2f}x")
    speedup = results["legacy before"] / results["legacy"]
    print(f"legacy_members_to_fhir before / now at {n:,}: {speedup:.2f}x (target >= 2x)")
    spark.stop()


if __name__ == "__main__":
    main()
