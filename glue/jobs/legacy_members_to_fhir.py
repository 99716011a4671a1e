"""Glue job legacy_members_to_fhir: legacy member CSV -> FHIR NDJSON in the landing zone.

Arguments: --run_id --org --ingest_date --input_path --landing_path
--quarantine_path --report_path (glue/README.md).
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor

from pyspark.sql import functions as F

from hoth_glue.args import resolve
from hoth_glue.legacy import COLUMNS, convert
from hoth_glue.runtime import join, release, spark_session, write_json

REQUIRED = [
    "run_id",
    "org",
    "ingest_date",
    "input_path",
    "landing_path",
    "quarantine_path",
    "report_path",
]


def main(argv: list[str] | None = None) -> dict:
    args = resolve(argv, REQUIRED)
    started = time.monotonic()
    spark = spark_session("hoth-legacy-members-to-fhir")
    schema = ", ".join(f"{c} string" for c in COLUMNS)
    members = (
        spark.read.option("header", "true")
        .option("mode", "PERMISSIVE")
        .schema(schema)
        .csv(args["input_path"])
    )
    # The extract is read and converted once, into a checkpoint; the counts and writes scan it.
    converted = convert(members, args["org"], cache=True)
    try:
        counts = {
            r["reason"]: r["count"] for r in converted.rows.groupBy("reason").count().collect()
        }

        def write_resources(resource_type: str) -> None:
            converted.resources.where(F.col("resource_type") == resource_type).select(
                "json"
            ).write.mode("overwrite").text(join(args["landing_path"], resource_type))

        def write_quarantine() -> None:
            path = join(args["quarantine_path"], "legacy")
            converted.quarantine.write.mode("overwrite").json(path)

        # Independent writes from the checkpoint: concurrent Spark jobs.
        with ThreadPoolExecutor(max_workers=3) as pool:
            writes = [pool.submit(write_resources, t) for t in ("Patient", "Coverage")]
            writes.append(pool.submit(write_quarantine))
            for write in writes:
                write.result()
    finally:
        for df in converted.cached:
            release(df)
    valid = counts.pop(None, 0)
    quarantined = counts
    written = {"Coverage": valid, "Patient": valid} if valid else {}
    report = {
        "job": "legacy_members_to_fhir",
        "runId": args["run_id"],
        "org": args["org"],
        "ingestDate": args["ingest_date"],
        "rowsRead": written.get("Patient", 0) + sum(quarantined.values()),
        "written": dict(sorted(written.items())),
        "quarantined": dict(sorted(quarantined.items())),
        "durationSeconds": round(time.monotonic() - started, 3),
    }
    write_json(join(args["report_path"], "legacy-report.json"), report)
    return report


if __name__ == "__main__":
    main(sys.argv)
