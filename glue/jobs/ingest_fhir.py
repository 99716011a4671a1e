"""Glue job ingest_fhir: FHIR NDJSON (Bulk Data $export layout) -> curated Parquet.

Arguments: --run_id --org --ingest_date --input_path --curated_path
--quarantine_path --report_path --tokenization_secret_id (glue/README.md).
"""

from __future__ import annotations

import functools
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from py4j.java_gateway import java_import
from pyspark.sql import functions as F

from hoth_glue.args import resolve
from hoth_glue.ingest import CORE, DUPLICATE_SUPERSEDED, classify, deduplicate, ingest
from hoth_glue.runtime import (
    join,
    read_once,
    release,
    spark_session,
    tokenization_key,
    write_json,
)

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


@functools.cache
def jvm_class(spark, name: str):
    """A JVM class, looked up once: py4j resolves `spark._jvm.a.b.C` one package at a
    time, each a failed class lookup across every jar (about a second per job run)."""
    java_import(spark._jvm, name)
    return getattr(spark._jvm, name.rpartition(".")[2])


def partition_path(spark, curated_path: str, table: str, args: dict[str, str]) -> str:
    """`<curated>/<table>/org=/ingest_date=/run_id=`, values escaped as Spark escapes them."""
    utils = "org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils"
    escape = jvm_class(spark, utils).escapePathName
    return join(
        curated_path,
        table,
        *[f"{name}={escape(args[name])}" for name in ("org", "ingest_date", "run_id")],
    )


def delete_path(spark, uri: str) -> None:
    path = jvm_class(spark, "org.apache.hadoop.fs.Path")(uri)
    fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
    if fs.exists(path):
        fs.delete(path, True)


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
    # The input is read once, into this checkpoint; everything else reads it.
    classified = read_once(classify(lines, key))
    cached = [classified]
    try:
        # One job: lines per (reason, type), and copies per resource for duplicates.
        per_resource = classified.groupBy("reason", "resource_type", "id").agg(
            F.count(F.lit(1)).alias("n")
        )
        counts = (
            per_resource.groupBy("reason", "resource_type")
            .agg(
                F.sum("n").alias("lines"),
                F.sum(F.when(F.col("reason").isNull(), F.col("n") - 1).otherwise(0)).alias(
                    "superseded"
                ),
            )
            .collect()
        )
        read: dict[str, int] = {}
        written: dict[str, int] = {}
        quarantined: dict[str, int] = {}
        for row in counts:
            rt = row["resource_type"] or "(unknown)"
            read[rt] = read.get(rt, 0) + row["lines"]
            if row["reason"] is None:
                written[rt] = written.get(rt, 0) + row["lines"] - row["superseded"]
                if row["superseded"]:
                    quarantined[DUPLICATE_SUPERSEDED] = (
                        quarantined.get(DUPLICATE_SUPERSEDED, 0) + row["superseded"]
                    )
            else:
                quarantined[row["reason"]] = quarantined.get(row["reason"], 0) + row["lines"]
        if quarantined.get(DUPLICATE_SUPERSEDED):
            # Filled here, before the concurrent writes read it; the first checkpoint goes.
            classified = read_once(deduplicate(classified))
            cached.append(classified)
            classified.count()
            release(cached.pop(0))
        result = ingest(lines, key, classified)
        rows_per_table = {table: written.get(rt, 0) for rt, table in CORE.items()}
        rows_per_table["resource"] = sum(n for rt, n in written.items() if rt not in CORE)

        def write_table(table: str) -> None:
            # The run's partition, written at its literal path: an overwrite
            # replaces exactly that partition, and a table the run has no rows
            # for loses what an earlier attempt of the same run wrote there.
            path = partition_path(spark, args["curated_path"], table, args)
            if rows_per_table[table]:
                result.tables[table].write.mode("overwrite").parquet(path)
            else:
                delete_path(spark, path)

        def write_quarantine() -> None:
            # Its own subfolder: an overwrite of the run's whole quarantine path
            # would delete what legacy_members_to_fhir put in <quarantine_path>/legacy/.
            result.quarantine.write.mode("overwrite").json(join(args["quarantine_path"], "fhir"))

        # The writes all read the cache and are independent: run as concurrent
        # Spark jobs, one's planning and commit overlap another's tasks.
        with ThreadPoolExecutor(max_workers=4) as pool:
            writes = [pool.submit(write_table, table) for table in result.tables]
            writes.append(pool.submit(write_quarantine))
            for write in writes:
                write.result()
    finally:
        for df in cached:
            release(df)
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
