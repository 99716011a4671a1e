"""Glue job ingest_fhir: FHIR NDJSON (Bulk Data $export layout) -> curated Parquet.

Arguments: --run_id --org --ingest_date --input_path --curated_path
--quarantine_path --report_path --tokenization_secret_id (glue/README.md).
"""

from __future__ import annotations

import sys
import time

from pyspark.sql import functions as F

from hoth_glue.args import resolve
from hoth_glue.ingest import ingest, with_partition
from hoth_glue.runtime import join, spark_session, tokenization_key, write_json

REQUIRED = [
    "run_id",
    "org",
    "ingest_date",
    "input_path",
    "curated_path",
    "quarantine_path",
    "report_path",
    "tokenization_secret_id",
]


def main(argv: list[str] | None = None) -> dict:
    args = resolve(argv, REQUIRED)
    started = time.monotonic()
    key = tokenization_key(args["tokenization_secret_id"])
    spark = spark_session("hoth-ingest-fhir")
    lines = (
        spark.read.option("recursiveFileLookup", "true")
        .text(args["input_path"])
        .where(F.trim("value") != "")
        .select("value", F.input_file_name().alias("source_file"))
    )
    result = ingest(lines, key)
    result.classified.persist()
    try:
        counts = result.classified.groupBy("reason", "resource_type").count().collect()
        for table, df in result.tables.items():
            with_partition(df, args["org"], args["ingest_date"], args["run_id"]).write.mode(
                "overwrite"
            ).partitionBy("org", "ingest_date", "run_id").parquet(join(args["curated_path"], table))
        # Its own subfolder: an overwrite of the run's whole quarantine path
        # would delete what legacy_members_to_fhir put in <quarantine_path>/legacy/.
        result.quarantine.write.mode("overwrite").json(join(args["quarantine_path"], "fhir"))
    finally:
        result.classified.unpersist()
    read: dict[str, int] = {}
    written: dict[str, int] = {}
    quarantined: dict[str, int] = {}
    for row in counts:
        rt = row["resource_type"] or "(unknown)"
        read[rt] = read.get(rt, 0) + row["count"]
        if row["reason"] is None:
            written[rt] = written.get(rt, 0) + row["count"]
        else:
            quarantined[row["reason"]] = quarantined.get(row["reason"], 0) + row["count"]
    report = {
        "job": "ingest_fhir",
        "runId": args["run_id"],
        "org": args["org"],
        "ingestDate": args["ingest_date"],
        "read": dict(sorted(read.items())),
        "written": dict(sorted(written.items())),
        "quarantined": dict(sorted(quarantined.items())),
        "linesRead": sum(read.values()),
        "durationSeconds": round(time.monotonic() - started, 3),
    }
    write_json(join(args["report_path"], "report.json"), report)
    return report


if __name__ == "__main__":
    main(sys.argv)
